"""Dequantize ggml tensor data to float32 with numpy, one whole array of blocks at a time.

A quantized row is cut into blocks of `block_size` weights; each block is stored as
`type_size` bytes holding a few scales and many small integers q, and a weight is
rebuilt as  w = d * q  (symmetric types)  or  w = d * q + m  / d * q - m  (types with a min).
All multi-byte fields are little-endian; d and m are fp16 unless said otherwise.

Plain formats (block_size 1): F32, F16, BF16 (the top 16 bits of a float32).

Legacy formats, blocks of 32 weights:
  Q4_0  d | 16 bytes of nibbles                 w = d * (q - 8)
  Q4_1  d, m | 16 bytes of nibbles              w = d * q + m
  Q5_0  d | 4 bytes high bits | 16 bytes nibbles   w = d * (q - 16)
  Q5_1  d, m | 4 bytes high bits | 16 bytes nibbles w = d * q + m
  Q8_0  d | 32 int8                             w = d * q
  Nibble order: byte j holds weight j in its low 4 bits and weight j + 16 in its high 4 bits.
  Q5 high bits: bit j of the 32-bit word is the fifth bit (value 16) of weight j.

K-quants, "super-blocks" of 256 weights split into sub-blocks, each sub-block having its
own small integer scale (and min) that is itself multiplied by the super-block's fp16 d (dmin):
  Q2_K  16 bytes scales | 64 bytes 2-bit q | d, dmin     16 sub-blocks of 16;
        scale byte: low nibble = scale, high nibble = min;  w = d*sc * q - dmin*mn
  Q3_K  32 bytes high bits | 64 bytes 2-bit q | 12 bytes scales | d   16 sub-blocks of 16;
        3-bit q = low 2 bits - 4 if the high bit is 0;  16 6-bit scales, offset by 32:
        low 4 bits from the nibbles of bytes 0..7, high 2 bits from the 2-bit fields of bytes 8..11
        w = d * (sc - 32) * q
  Q4_K  d, dmin | 12 bytes scales | 128 bytes nibbles   8 sub-blocks of 32;  w = d*sc * q - dmin*mn
  Q5_K  d, dmin | 12 bytes scales | 32 bytes high bits | 128 bytes nibbles;  same, 5-bit q
        Q4_K/Q5_K pack 8 scales and 8 mins, 6 bits each, into 12 bytes:
          bytes 0..3: low 6 bits = scales 0..3, top 2 bits = high bits of scales 4..7
          bytes 4..7: low 6 bits = mins 0..3,   top 2 bits = high bits of mins 4..7
          bytes 8..11: low nibble = low bits of scales 4..7, high nibble = low bits of mins 4..7
  Q6_K  128 bytes low nibbles | 64 bytes 2-bit high parts | 16 int8 scales | d
        16 sub-blocks of 16;  w = d * sc * (q - 32)

Packed small fields follow one pattern in every K-quant: take a run of consecutive bytes
(32 or 64), emit field 0 (lowest bits) of every byte in the run, then field 1, and so on.
`_unpack` does exactly that, so each format's decoder is a few lines of slicing and broadcasting.
The arithmetic order matches ggml's C reference, so results are bit-identical to it.
"""
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

QK_K = 256  # weights per K-quant super-block

# Weights decoded per numpy pass: enough to amortise numpy's per-call cost, few enough that the
# temporaries stay in cache and a big tensor does not need gigabytes of scratch memory.
WEIGHTS_PER_PASS = 1 << 18


def _half(blocks: np.ndarray, at: int) -> np.ndarray:
    """The fp16 field at byte `at` of every block, as a float32 column (n_blocks, 1)."""
    return blocks[:, at:at + 2].view(np.float16).astype(np.float32)


def _unpack(packed: np.ndarray, width: int, run: int) -> np.ndarray:
    """Split bytes into `width`-bit fields, ggml order: per run of bytes, field 0 of all, then field 1..."""
    n_blocks = packed.shape[0]
    shifts = np.arange(0, 8, width, dtype=np.uint8).reshape(1, 1, -1, 1)
    fields = (packed.reshape(n_blocks, -1, 1, run) >> shifts) & np.uint8((1 << width) - 1)
    return fields.reshape(n_blocks, -1)


def _per_sub_block(scale: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Multiply each sub-block of `values` (n, n_sub * size) by its `scale` (n, n_sub)."""
    n_blocks, n_sub = scale.shape
    return (scale[:, :, None] * values.reshape(n_blocks, n_sub, -1)).reshape(n_blocks, -1)


def _f32(blocks):
    return blocks.view(np.float32)


def _f16(blocks):
    return blocks.view(np.float16).astype(np.float32)


def _bf16(blocks):
    return (blocks.view(np.uint16).astype(np.uint32) << 16).view(np.float32)


def _q4_0(blocks):
    q = _unpack(blocks[:, 2:], 4, 16).astype(np.int8) - np.int8(8)
    return _half(blocks, 0) * q.astype(np.float32)


def _q4_1(blocks):
    q = _unpack(blocks[:, 4:], 4, 16).astype(np.float32)
    return _half(blocks, 0) * q + _half(blocks, 2)


def _q5_0(blocks):
    q = _unpack(blocks[:, 6:], 4, 16) | (_unpack(blocks[:, 2:6], 1, 1) << np.uint8(4))
    return _half(blocks, 0) * (q.astype(np.int8) - np.int8(16)).astype(np.float32)


def _q5_1(blocks):
    q = _unpack(blocks[:, 8:], 4, 16) | (_unpack(blocks[:, 4:8], 1, 1) << np.uint8(4))
    return _half(blocks, 0) * q.astype(np.float32) + _half(blocks, 2)


def _q8_0(blocks):
    return blocks[:, 2:].view(np.int8).astype(np.float32) * _half(blocks, 0)


def _q2_k(blocks):
    scales, d, dmin = blocks[:, :16], _half(blocks, 80), _half(blocks, 82)
    q = _unpack(blocks[:, 16:80], 2, 32).astype(np.float32)
    sc, mn = (scales & np.uint8(0x0F)).astype(np.float32), (scales >> np.uint8(4)).astype(np.float32)
    return _per_sub_block(d * sc, q) - np.repeat(dmin * mn, 16, axis=1)


def _q3_k(blocks):
    high_bits, low_bits, packed, d = blocks[:, :32], blocks[:, 32:96], blocks[:, 96:108], _half(blocks, 108)
    sc_low = np.concatenate([packed[:, :8] & np.uint8(0x0F), packed[:, :8] >> np.uint8(4)], axis=1)
    sc = (sc_low | (_unpack(packed[:, 8:], 2, 4) << np.uint8(4))).astype(np.float32) - np.float32(32)
    missing_high_bit = _unpack(high_bits, 1, 32) ^ np.uint8(1)
    q = _unpack(low_bits, 2, 32).astype(np.int8) - (missing_high_bit << np.uint8(2)).astype(np.int8)
    return _per_sub_block(d * sc, q.astype(np.float32))


def _k_scales_and_mins(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unpack Q4_K/Q5_K's 12 bytes into 8 six-bit scales and 8 six-bit mins, as float32."""
    low, high, extra = packed[:, 0:4], packed[:, 4:8], packed[:, 8:12]
    six_bits, top_two = np.uint8(0x3F), np.uint8(6)
    scales = np.concatenate([low & six_bits, (extra & np.uint8(0x0F)) | ((low >> top_two) << np.uint8(4))], axis=1)
    mins = np.concatenate([high & six_bits, (extra >> np.uint8(4)) | ((high >> top_two) << np.uint8(4))], axis=1)
    return scales.astype(np.float32), mins.astype(np.float32)


def _k_quant_with_min(blocks, q):
    sc, mn = _k_scales_and_mins(blocks[:, 4:16])
    return _per_sub_block(_half(blocks, 0) * sc, q.astype(np.float32)) - np.repeat(_half(blocks, 2) * mn, 32, axis=1)


def _q4_k(blocks):
    return _k_quant_with_min(blocks, _unpack(blocks[:, 16:], 4, 32))


def _q5_k(blocks):
    return _k_quant_with_min(blocks, _unpack(blocks[:, 48:], 4, 32) | (_unpack(blocks[:, 16:48], 1, 32) << np.uint8(4)))


def _q6_k(blocks):
    low, high, scales, d = blocks[:, :128], blocks[:, 128:192], blocks[:, 192:208], _half(blocks, 208)
    q = (_unpack(low, 4, 64) | (_unpack(high, 2, 32) << np.uint8(4))).astype(np.int8) - np.int8(32)
    return _per_sub_block(d * scales.view(np.int8).astype(np.float32), q.astype(np.float32))


@dataclass(frozen=True)
class GGMLType:
    """How one ggml tensor type is stored: `type_size` bytes encode `block_size` weights."""
    name: str
    block_size: int
    type_size: int
    # (n_blocks, type_size) uint8 -> (n_blocks, block_size) float32
    dequantize_blocks: Callable[[np.ndarray], np.ndarray]


# ggml's type numbers (enum ggml_type), for the types we can read.
GGML_TYPES: dict[int, GGMLType] = {
    0: GGMLType("F32", 1, 4, _f32),
    1: GGMLType("F16", 1, 2, _f16),
    2: GGMLType("Q4_0", 32, 2 + 16, _q4_0),
    3: GGMLType("Q4_1", 32, 2 + 2 + 16, _q4_1),
    6: GGMLType("Q5_0", 32, 2 + 4 + 16, _q5_0),
    7: GGMLType("Q5_1", 32, 2 + 2 + 4 + 16, _q5_1),
    8: GGMLType("Q8_0", 32, 2 + 32, _q8_0),
    10: GGMLType("Q2_K", QK_K, QK_K // 16 + QK_K // 4 + 2 + 2, _q2_k),
    11: GGMLType("Q3_K", QK_K, QK_K // 8 + QK_K // 4 + 12 + 2, _q3_k),
    12: GGMLType("Q4_K", QK_K, 2 + 2 + 12 + QK_K // 2, _q4_k),
    13: GGMLType("Q5_K", QK_K, 2 + 2 + 12 + QK_K // 8 + QK_K // 2, _q5_k),
    14: GGMLType("Q6_K", QK_K, QK_K // 2 + QK_K // 4 + QK_K // 16 + 2, _q6_k),
    30: GGMLType("BF16", 1, 2, _bf16),
}

# Types that exist in ggml but that we do not decode, named so that errors can say which one a file uses.
UNSUPPORTED_TYPE_NAMES = {
    9: "Q8_1", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL",
    21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
    29: "IQ1_M", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
}


def n_bytes(ggml_type: int, shape: tuple) -> int:
    """Bytes that a tensor of `shape` (numpy order; rows are the last axis) takes in this type."""
    kind = GGML_TYPES[ggml_type]
    return math.prod(shape) // kind.block_size * kind.type_size


def dequantize(data: np.ndarray, ggml_type: int, shape: tuple) -> np.ndarray:
    """Decode the bytes of a tensor stored as `ggml_type` into a float32 array of `shape`."""
    kind = GGML_TYPES.get(ggml_type)
    if kind is None:
        raise ValueError(f"cannot dequantize ggml type {ggml_type} "
                         f"({UNSUPPORTED_TYPE_NAMES.get(ggml_type, 'unknown')})")
    if shape and shape[-1] % kind.block_size:
        raise ValueError(f"rows of {shape[-1]} weights do not split into {kind.name} blocks of {kind.block_size}")
    if data.nbytes != n_bytes(ggml_type, shape):
        raise ValueError(f"{data.nbytes} bytes cannot hold a {kind.name} tensor of shape {tuple(shape)}")
    blocks = np.ascontiguousarray(data).view(np.uint8).reshape(-1, kind.type_size)
    out = np.empty((blocks.shape[0], kind.block_size), dtype=np.float32)
    step = WEIGHTS_PER_PASS // kind.block_size
    for start in range(0, blocks.shape[0], step):
        out[start:start + step] = kind.dequantize_blocks(blocks[start:start + step])
    return out.reshape(shape)
