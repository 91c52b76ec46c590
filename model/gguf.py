"""Read GGUF files (versions 2 and 3, little-endian): metadata, tensor table, tensor data.

Layout, every integer little-endian:

    magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
    kv_count times:      string key | u32 value_type | value
    tensor_count times:  string name | u32 n_dims | n_dims x u64 dims | u32 ggml_type | u64 offset
    padding up to a multiple of `general.alignment` (default 32)
    tensor data; each tensor starts at data_start + offset

A string is a u64 byte length followed by UTF-8 bytes. A value is a scalar (u8 i8 u16 i16
u32 i32 f32 bool u64 i64 f64), a string, or an array: u32 item_type | u64 count | items,
where items may themselves be arrays. ggml lists dims innermost first, so (in_features,
out_features) for a weight; we reverse them to numpy's (out_features, in_features).

The file is memory-mapped: `raw` returns views into it without copying, and only `load`
(which dequantizes to float32) touches the bytes of a tensor.
"""
import os
from dataclasses import dataclass

import numpy as np

from common.errors import PhysloraError
from model.quants import GGML_TYPES, UNSUPPORTED_TYPE_NAMES, dequantize, n_bytes

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

STRING, ARRAY = 8, 9
SCALAR_DTYPES = {
    0: np.dtype("u1"), 1: np.dtype("i1"), 2: np.dtype("<u2"), 3: np.dtype("<i2"),
    4: np.dtype("<u4"), 5: np.dtype("<i4"), 6: np.dtype("<f4"), 7: np.dtype("u1"),
    10: np.dtype("<u8"), 11: np.dtype("<i8"), 12: np.dtype("<f8"),
}
BOOL = 7

# Plain float types are handed out by `raw` as typed arrays; bf16 has no numpy type, so its raw bits.
RAW_DTYPES = {0: np.dtype("<f4"), 1: np.dtype("<f2"), 30: np.dtype("<u2")}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple       # numpy order: ggml's dims reversed
    ggml_type: int
    type_name: str     # e.g. "Q4_1"
    offset: int        # absolute byte offset of the data in the file
    n_bytes: int


class _Cursor:
    """Walks the header, turning each field into Python values; a read past the end is a truncated file."""

    def __init__(self, path: str, buffer: np.ndarray):
        self.path, self.buffer, self.bytes, self.pos = path, buffer, memoryview(buffer), 0
        self.reading = "the header"  # named in the error if the file ends early

    def take(self, n: int) -> int:
        """Claim the next n bytes and return where they start."""
        start = self.pos
        if n > len(self.bytes) - start:
            raise PhysloraError(f"{self.path}: truncated file, it ends at byte {len(self.bytes)} while reading "
                                f"{self.reading}; download or convert the file again")
        self.pos += n
        return start

    def scalars(self, dtype: np.dtype, count: int) -> np.ndarray:
        return np.frombuffer(self.buffer, dtype, count, self.take(dtype.itemsize * count))

    def u32(self) -> int:
        return int(self.scalars(SCALAR_DTYPES[4], 1)[0])

    def u64(self) -> int:
        return int(self.scalars(SCALAR_DTYPES[10], 1)[0])

    def string(self) -> str:
        length = self.u64()
        start = self.take(length)
        try:
            return str(self.bytes[start:start + length], "utf-8")
        except UnicodeDecodeError:
            raise PhysloraError(f"{self.path}: the string at byte {start} in {self.reading} is not valid UTF-8; "
                                f"the file is corrupt") from None

    def value(self, value_type: int):
        if value_type == STRING:
            return self.string()
        if value_type == ARRAY:
            item_type, count = self.u32(), self.u64()
            if item_type in (STRING, ARRAY):
                return [self.value(item_type) for _ in range(count)]
            # Scalars of an array are read in one numpy call: token lists hold tens of thousands.
            return self._typed(item_type, count).tolist()
        return self._typed(value_type, 1).tolist()[0]

    def _typed(self, value_type: int, count: int) -> np.ndarray:
        dtype = SCALAR_DTYPES.get(value_type)
        if dtype is None:
            raise PhysloraError(f"{self.path}: {self.reading} has value type {value_type}, which GGUF does not "
                                f"define (0-12); the file is corrupt or from an unknown GGUF variant")
        values = self.scalars(dtype, count)
        return values != 0 if value_type == BOOL else values


class GGUFFile:
    """An opened GGUF file: `metadata`, `tensors` (in file order), and their data on demand."""

    def __init__(self, path: str, metadata: dict, tensors: dict, file_bytes: np.ndarray):
        self.path, self.metadata, self.tensors, self._file_bytes = path, metadata, tensors, file_bytes

    def info(self, name: str) -> TensorInfo:
        if name not in self.tensors:
            raise PhysloraError(f"{self.path}: has no tensor named '{name}' (it has {len(self.tensors)} tensors, "
                                f"e.g. {', '.join(list(self.tensors)[:3])}); check the model architecture")
        return self.tensors[name]

    def raw(self, name: str) -> np.ndarray:
        """The stored data without copying: a typed array for F32/F16 (BF16 as uint16 bits), else
        uint8 of shape (*shape[:-1], bytes_per_row). Read-only: it is a view of the mapped file."""
        info = self.info(name)
        data = self._file_bytes[info.offset:info.offset + info.n_bytes]
        if info.ggml_type in RAW_DTYPES:
            return data.view(RAW_DTYPES[info.ggml_type]).reshape(info.shape)
        return data.reshape(*info.shape[:-1], n_bytes(info.ggml_type, info.shape[-1:]))

    def load(self, name: str) -> np.ndarray:
        """The tensor as a new float32 array in numpy order, e.g. (out_features, in_features)."""
        info = self.info(name)
        return dequantize(self.raw(name), info.ggml_type, info.shape)


def read_gguf(path: str) -> GGUFFile:
    """Parse the header of the GGUF file at `path` and check that every tensor's data is in it."""
    path = str(path)
    if not os.path.isfile(path):
        raise PhysloraError(f"{path}: no such file; check the path or the --model name")
    if os.path.getsize(path) < len(MAGIC):
        raise PhysloraError(f"{path}: not a GGUF file (only {os.path.getsize(path)} bytes); check the path")
    file_bytes = np.memmap(path, dtype=np.uint8, mode="r")
    if bytes(file_bytes[:4]) != MAGIC:
        raise PhysloraError(f"{path}: not a GGUF file (it starts with {bytes(file_bytes[:4])!r}, not b'GGUF'); "
                            f"check the path")
    cursor = _Cursor(path, file_bytes)
    cursor.take(len(MAGIC))
    version = cursor.u32()
    if version not in SUPPORTED_VERSIONS:
        byte_swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
        hint = ("it is a big-endian file; use a little-endian GGUF" if byte_swapped in SUPPORTED_VERSIONS
                else "re-convert it with a recent llama.cpp")
        raise PhysloraError(f"{path}: GGUF version {version} is not supported (only 2 and 3); {hint}")
    tensor_count, kv_count = cursor.u64(), cursor.u64()
    metadata = _read_metadata(cursor, kv_count)
    alignment = _alignment(path, metadata)
    tensors = _read_tensor_infos(cursor, tensor_count)
    data_start = -(-cursor.pos // alignment) * alignment
    return GGUFFile(path, metadata, _place_tensors(path, tensors, data_start, len(file_bytes)), file_bytes)


def _read_metadata(cursor: _Cursor, kv_count: int) -> dict:
    metadata = {}
    for index in range(kv_count):
        cursor.reading = f"metadata entry {index}"
        key = cursor.string()
        cursor.reading = f"metadata key '{key}'"
        metadata[key] = cursor.value(cursor.u32())
    return metadata


def _alignment(path: str, metadata: dict) -> int:
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise PhysloraError(f"{path}: metadata 'general.alignment' is {alignment!r}, not a positive power of two; "
                            f"the file is corrupt")
    return alignment


def _read_tensor_infos(cursor: _Cursor, tensor_count: int) -> list:
    """(name, numpy shape, ggml type, offset relative to the data section) for each tensor."""
    infos = []
    for index in range(tensor_count):
        cursor.reading = f"tensor info {index}"
        name = cursor.string()
        cursor.reading = f"tensor info '{name}'"
        n_dims = cursor.u32()
        ggml_dims = cursor.scalars(SCALAR_DTYPES[10], n_dims).tolist()
        infos.append((name, tuple(reversed(ggml_dims)), cursor.u32(), cursor.u64()))
    return infos


def _place_tensors(path: str, infos: list, data_start: int, file_size: int) -> dict:
    tensors = {}
    for name, shape, ggml_type, relative_offset in infos:
        kind = GGML_TYPES.get(ggml_type)
        if kind is None:
            type_name = UNSUPPORTED_TYPE_NAMES.get(ggml_type, "unknown")
            supported = ", ".join(k.name for k in GGML_TYPES.values())
            raise PhysloraError(f"{path}: tensor '{name}' has ggml type {ggml_type} ({type_name}), which physlora "
                                f"cannot dequantize; use a file quantized as one of {supported}")
        row_length = shape[-1] if shape else 1
        if row_length % kind.block_size:
            raise PhysloraError(f"{path}: tensor '{name}' has rows of {row_length} weights, not a multiple of the "
                                f"{kind.name} block size {kind.block_size}; the file is corrupt")
        if name in tensors:
            raise PhysloraError(f"{path}: tensor '{name}' appears twice; the file is corrupt")
        info = TensorInfo(name, shape, ggml_type, kind.name, data_start + relative_offset, n_bytes(ggml_type, shape))
        if info.offset + info.n_bytes > file_size:
            raise PhysloraError(f"{path}: truncated file, tensor '{name}' needs bytes {info.offset}.."
                                f"{info.offset + info.n_bytes} but the file has {file_size}; "
                                f"download or convert the file again")
        tensors[name] = info
    return tensors
