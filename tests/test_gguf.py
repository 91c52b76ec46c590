"""Our GGUF reader and dequantizer, checked against the reference `gguf` package (llama.cpp's gguf-py)."""
import re
import struct

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as T, GGUFValueType as V

from common.errors import PhysloraError
from model.gguf import read_gguf
from model.quants import GGML_TYPES, UNSUPPORTED_TYPE_NAMES, dequantize

# Byte offsets of the fp16 scale fields inside one block (ggml's block_* structs).
# Random bytes there could be NaN or inf; everything else in a block is fair game.
FP16_FIELDS = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "Q2_K": [80, 82],
               "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}


def random_tensor_bytes(rng, ggml_type: int, shape: tuple) -> np.ndarray:
    """Random data for a tensor of `shape`, as uint8 of shape (*shape[:-1], bytes_per_row), all values finite."""
    kind = GGML_TYPES[ggml_type]
    n_blocks = int(np.prod(shape)) // kind.block_size
    if kind.name in ("F32", "F16", "BF16"):
        values = rng.standard_normal(n_blocks).astype(np.float32)
        if kind.name == "F16":
            values = values.astype(np.float16)
        if kind.name == "BF16":
            values = (values.view(np.uint32) >> 16).astype(np.uint16)
        blocks = values.view(np.uint8).reshape(n_blocks, kind.type_size)
    else:
        blocks = rng.integers(0, 256, size=(n_blocks, kind.type_size), dtype=np.uint8)
        for at in FP16_FIELDS[kind.name]:
            scales = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
            blocks[:, at:at + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return blocks.reshape(*shape[:-1], -1)


def oracle_dequantize(data: np.ndarray, ggml_type: int) -> np.ndarray:
    return gguf.quants.dequantize(np.asarray(data).view(np.uint8), T(ggml_type))


# ---------------------------------------------------------------- the real SmolLM2 file

@pytest.fixture(scope="module")
def real(smollm2_gguf):
    return read_gguf(smollm2_gguf), gguf.GGUFReader(smollm2_gguf)


def test_real_file_tensor_table_matches_gguf(real):
    ours, oracle = real
    assert list(ours.tensors) == [t.name for t in oracle.tensors]
    for t in oracle.tensors:
        info = ours.tensors[t.name]
        assert (info.ggml_type, info.type_name) == (int(t.tensor_type), t.tensor_type.name)
        assert (info.offset, info.n_bytes) == (t.data_offset, t.n_bytes)
        assert info.shape == tuple(reversed(t.shape.tolist()))
    assert {info.type_name for info in ours.tensors.values()} == {"Q4_1", "Q8_0", "F32"}


def test_every_real_tensor_dequantizes_exactly_like_gguf(real):
    ours, oracle = real
    for t in oracle.tensors:
        expected = oracle_dequantize(t.data, t.tensor_type)
        weights = ours.load(t.name)
        assert weights.dtype == np.float32
        assert weights.shape == expected.shape == ours.tensors[t.name].shape, t.name
        assert np.array_equal(weights, expected), t.name


def test_real_weights_are_in_out_features_by_in_features_order(real):
    ours, _ = real
    hidden, ffn = ours.metadata["llama.embedding_length"], ours.metadata["llama.feed_forward_length"]
    assert ours.tensors["blk.0.ffn_up.weight"].shape == (ffn, hidden)
    assert ours.tensors["blk.0.ffn_down.weight"].shape == (hidden, ffn)


def test_real_metadata_equals_gguf_fields(real):
    ours, oracle = real
    expected = {key: field.contents() for key, field in oracle.fields.items() if not key.startswith("GGUF.")}
    assert list(ours.metadata) == list(expected)
    assert ours.metadata == expected
    assert len(ours.metadata["tokenizer.ggml.tokens"]) == 49152
    assert isinstance(ours.metadata["tokenizer.ggml.add_bos_token"], bool)


def test_raw_is_a_read_only_view_of_the_file(real):
    ours, _ = real
    norm, weight = ours.raw("output_norm.weight"), ours.raw("blk.0.attn_q.weight")
    assert norm.dtype == np.float32 and norm.shape == ours.tensors["output_norm.weight"].shape
    assert weight.dtype == np.uint8 and weight.shape == (576, 576 // 32 * 20)  # Q4_1: 20 bytes per 32 weights
    assert not weight.flags.writeable and weight.base is not None


def test_loading_an_unknown_tensor_name_names_the_file(real):
    ours, _ = real
    with pytest.raises(PhysloraError, match=r"SmolLM2.*\.gguf: has no tensor named 'blk\.99\.attn_q\.weight'"):
        ours.load("blk.99.attn_q.weight")


# ---------------------------------------------------------------- every supported type, random blocks

def test_type_table_agrees_with_ggml():
    for number, kind in GGML_TYPES.items():
        assert (kind.name, kind.block_size, kind.type_size) == (T(number).name, *gguf.GGML_QUANT_SIZES[T(number)])
    for number, name in UNSUPPORTED_TYPE_NAMES.items():
        assert name == T(number).name


@pytest.mark.parametrize("ggml_type", sorted(GGML_TYPES), ids=lambda t: GGML_TYPES[t].name)
@pytest.mark.parametrize("rows", [(1,), (3,), (2, 5)], ids=["1row", "3rows", "2x5rows"])
def test_random_blocks_dequantize_exactly_like_gguf(ggml_type, rows):
    rng = np.random.default_rng(ggml_type * 10 + len(rows))
    block = GGML_TYPES[ggml_type].block_size
    shape = (*rows, 3 * block if block > 1 else 37)
    data = random_tensor_bytes(rng, ggml_type, shape)
    weights = dequantize(data, ggml_type, shape)
    expected = oracle_dequantize(data, ggml_type)
    assert weights.shape == expected.shape == shape
    assert np.isfinite(weights).all()
    assert np.array_equal(weights, expected)


def test_dequantize_spans_several_numpy_passes_exactly():
    rng = np.random.default_rng(0)
    shape = (37, 256 * 31)  # > 2**18 weights: the decoder works on the tensor in several slices
    data = random_tensor_bytes(rng, T.Q6_K, shape)
    assert np.array_equal(dequantize(data, T.Q6_K, shape), oracle_dequantize(data, T.Q6_K))


def test_dequantize_rejects_data_of_the_wrong_length():
    with pytest.raises(ValueError, match="cannot hold a Q8_0 tensor"):
        dequantize(np.zeros(33, np.uint8), T.Q8_0, (1, 32))


# ---------------------------------------------------------------- a synthetic file from gguf.GGUFWriter

SCALARS = {"u8": (V.UINT8, 200), "i8": (V.INT8, -100), "u16": (V.UINT16, 60000), "i16": (V.INT16, -30000),
           "u32": (V.UINT32, 4_000_000_000), "i32": (V.INT32, -2_000_000_000), "f32": (V.FLOAT32, 0.1),
           "u64": (V.UINT64, 2**63 + 5), "i64": (V.INT64, -(2**62)), "f64": (V.FLOAT64, 0.1),
           "yes": (V.BOOL, True), "no": (V.BOOL, False), "text": (V.STRING, "Ω = 2π/T ✓")}
ARRAYS = {"u8s": (V.UINT8, [0, 255, 7]), "i16s": (V.INT16, [-1, 2]), "u64s": (V.UINT64, [2**64 - 1]),
          "f32s": (V.FLOAT32, [0.5, -1.25]), "f64s": (V.FLOAT64, [1e-300]), "bools": (V.BOOL, [True, False, True]),
          "strings": (V.STRING, ["a", "", "ünïcode"]), "nested": (V.ARRAY, [[1, 2], [3, 4, 5]]),
          "nested_strings": (V.ARRAY, [["x"], ["y", "z"]])}
TENSOR_SPECS = [("vec.f32", T.F32, (7,)), ("mat.f16", T.F16, (3, 5)), ("cube.bf16", T.BF16, (2, 3, 4)),
                ("w.q8_0", T.Q8_0, (3, 64)), ("w.q4_k", T.Q4_K, (2, 512)), ("w.q5_1", T.Q5_1, (5, 32))]


def expected_metadata() -> dict:
    expected = {"general.architecture": "llama", "general.alignment": 64}
    expected.update({f"s.{key}": value for key, (_, value) in SCALARS.items()})
    expected.update({f"a.{key}": value for key, (_, value) in ARRAYS.items()})
    expected["s.f32"] = float(np.float32(0.1))  # stored as float32, read back as the nearest Python float
    return expected


def write_synthetic_gguf(path, endianess=gguf.GGUFEndian.LITTLE) -> dict:
    """Write a small GGUF covering every value type; return {tensor name: (type, shape, data)}."""
    rng = np.random.default_rng(7)
    writer = gguf.GGUFWriter(path, arch="llama", endianess=endianess)
    writer.add_custom_alignment(64)
    for key, (value_type, value) in SCALARS.items():
        writer.add_key_value(f"s.{key}", value, value_type)
    for key, (item_type, value) in ARRAYS.items():
        writer.add_key_value(f"a.{key}", value, V.ARRAY, sub_type=item_type)
    tensors = {}
    for name, ggml_type, shape in TENSOR_SPECS:
        data = random_tensor_bytes(rng, ggml_type, shape)
        typed = {T.F32: np.float32, T.F16: np.float16, T.BF16: np.uint16}.get(ggml_type)
        stored = data.view(typed).reshape(shape) if typed else data
        writer.add_tensor(name, stored, raw_dtype=None if ggml_type in (T.F32, T.F16) else ggml_type)
        tensors[name] = (ggml_type, shape, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return tensors


@pytest.fixture
def synthetic(tmp_path):
    path = tmp_path / "synthetic.gguf"
    return str(path), write_synthetic_gguf(path)


def test_synthetic_metadata_of_every_value_type_reads_back(synthetic):
    path, _ = synthetic
    assert read_gguf(path).metadata == expected_metadata()


def test_synthetic_tensors_read_back_in_order_with_custom_alignment(synthetic):
    path, tensors = synthetic
    ours, oracle = read_gguf(path), gguf.GGUFReader(path)
    assert list(ours.tensors) == list(tensors)
    for t in oracle.tensors:
        ggml_type, shape, data = tensors[t.name]
        info = ours.tensors[t.name]
        assert (info.shape, info.ggml_type, info.offset) == (shape, ggml_type, t.data_offset)
        assert info.offset % 64 == 0
        assert np.array_equal(ours.load(t.name), oracle_dequantize(data, ggml_type))


def test_synthetic_plain_float_tensors_load_their_original_values(synthetic):
    path, tensors = synthetic
    ours = read_gguf(path)
    assert np.array_equal(ours.load("vec.f32"), tensors["vec.f32"][2].view(np.float32))
    assert np.array_equal(ours.load("mat.f16"), tensors["mat.f16"][2].view(np.float16).astype(np.float32))
    assert ours.raw("mat.f16").dtype == np.float16 and ours.raw("mat.f16").shape == (3, 5)


# ---------------------------------------------------------------- bad files: one clear line naming the file

def patched_copy(source, target, at: int, fmt: str, value) -> str:
    data = bytearray(open(source, "rb").read())
    struct.pack_into(fmt, data, at, value)
    target.write_bytes(bytes(data))
    return str(target)


def prefix_copy(source, target, n_bytes: int) -> str:
    with open(source, "rb") as f:
        target.write_bytes(f.read(n_bytes))
    return str(target)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(PhysloraError, match=r"nope\.gguf: no such file"):
        read_gguf(str(tmp_path / "nope.gguf"))


@pytest.mark.parametrize("content", [b"", b"GG", b'{"model_type": "llama"}'], ids=["empty", "tiny", "json"])
def test_file_that_is_not_gguf_is_named(tmp_path, content):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(PhysloraError, match=r"config\.json: not a GGUF file"):
        read_gguf(str(path))


@pytest.mark.parametrize("version", [1, 4, 0xFFFF])
def test_unsupported_version_is_named(synthetic, tmp_path, version):
    path = patched_copy(synthetic[0], tmp_path / "old.gguf", 4, "<I", version)
    with pytest.raises(PhysloraError, match=rf"old\.gguf: GGUF version {version} is not supported"):
        read_gguf(path)


def test_big_endian_file_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "big.gguf"
    write_synthetic_gguf(path, endianess=gguf.GGUFEndian.BIG)
    with pytest.raises(PhysloraError, match=r"big\.gguf: GGUF version .* big-endian"):
        read_gguf(str(path))


@pytest.mark.parametrize("cut, reading", [(6, "the header"), (30, "metadata entry 0"),
                                          (400_000, "metadata key 'tokenizer.ggml.tokens'"),
                                          (1_000_000, "metadata key 'tokenizer.ggml.merges'"),
                                          (1_785_000, "tensor info")])
def test_real_file_cut_inside_its_header_is_truncated(smollm2_gguf, tmp_path, cut, reading):
    path = prefix_copy(smollm2_gguf, tmp_path / "cut.gguf", cut)
    with pytest.raises(PhysloraError, match=rf"cut\.gguf: truncated file, .* while reading {reading}"):
        read_gguf(path)


@pytest.mark.parametrize("name", ["vec.f32", "w.q4_k", "w.q5_1"])
def test_file_cut_inside_tensor_data_names_the_first_incomplete_tensor(synthetic, tmp_path, name):
    source, _ = synthetic
    tensor = next(t for t in gguf.GGUFReader(source).tensors if t.name == name)
    path = prefix_copy(source, tmp_path / "cut.gguf", tensor.data_offset + tensor.n_bytes - 1)
    with pytest.raises(PhysloraError, match=rf"cut\.gguf: truncated file, tensor '{re.escape(name)}' needs bytes"):
        read_gguf(path)


def tensor_field_offset(path, name: str, part: int) -> int:
    """Byte offset in the file of a tensor info's part (1: name, 3: dims, 4: ggml type), found by the oracle reader."""
    field = next(t.field for t in gguf.GGUFReader(path).tensors if t.name == name)
    return field.offset + sum(p.nbytes for p in field.parts[:part])


@pytest.mark.parametrize("ggml_type, type_name", [(16, "IQ2_XXS"), (99, "unknown")])
def test_unsupported_quant_type_names_tensor_and_type(synthetic, tmp_path, ggml_type, type_name):
    at = tensor_field_offset(synthetic[0], "w.q8_0", part=4)
    path = patched_copy(synthetic[0], tmp_path / "odd.gguf", at, "<I", ggml_type)
    with pytest.raises(PhysloraError, match=rf"odd\.gguf: tensor 'w\.q8_0' has ggml type {ggml_type} \({type_name}\)"):
        read_gguf(path)


def test_row_not_a_multiple_of_the_block_size_is_refused(synthetic, tmp_path):
    at = tensor_field_offset(synthetic[0], "w.q8_0", part=3)
    path = patched_copy(synthetic[0], tmp_path / "odd.gguf", at, "<Q", 48)
    with pytest.raises(PhysloraError, match=r"odd\.gguf: tensor 'w\.q8_0' has rows of 48 weights"):
        read_gguf(path)


def test_bad_metadata_value_type_names_the_key(synthetic, tmp_path):
    field = gguf.GGUFReader(synthetic[0]).fields["s.u16"]
    at = field.offset + sum(p.nbytes for p in field.parts[:2])  # after the key's length and bytes
    path = patched_copy(synthetic[0], tmp_path / "odd.gguf", at, "<I", 13)
    with pytest.raises(PhysloraError, match=r"odd\.gguf: metadata key 's\.u16' has value type 13"):
        read_gguf(path)


def test_alignment_that_is_not_a_power_of_two_is_refused(synthetic, tmp_path):
    field = gguf.GGUFReader(synthetic[0]).fields["general.alignment"]
    path = patched_copy(synthetic[0], tmp_path / "odd.gguf", field.offset + sum(p.nbytes for p in field.parts[:3]),
                        "<I", 48)
    with pytest.raises(PhysloraError, match=r"odd\.gguf: metadata 'general\.alignment' is 48"):
        read_gguf(path)


def test_duplicate_tensor_name_is_refused(synthetic, tmp_path):
    at = tensor_field_offset(synthetic[0], "w.q5_1", part=1)
    path = patched_copy(synthetic[0], tmp_path / "odd.gguf", at, "6s", b"w.q8_0")
    with pytest.raises(PhysloraError, match=r"odd\.gguf: tensor 'w\.q8_0' appears twice"):
        read_gguf(path)
