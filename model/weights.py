"""Model weights: read an HF folder or a GGUF file into (config, state dict), build the module.

HF folders map 1:1 onto our module names. GGUF files use llama.cpp's names (`blk.N.attn_q`),
store quantized blocks (dequantized by `model.quants`), and for the Llama architecture hold
q/k rows permuted: llama.cpp's converter interleaves the two rotary halves of each head
(HF's rotate_half pairs dimension i with i + d/2; GGML's rope pairs 2i with 2i+1), so we
undo that permutation to get HF's weights back.
"""
import json
import os
import re

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from common.errors import PhysloraError
from model.config import ModelConfig
from model.transformer import Transformer, rope_inverse_frequencies

# Keys some HF checkpoints carry that are recomputed at run time, not learned.
_IGNORED_KEYS = re.compile(r".*rotary_emb\.inv_freq$")


def build_model(config: ModelConfig, state_dict: dict, dtype, device, source: str) -> Transformer:
    """Create the module on the meta device (no memory), then adopt the loaded tensors."""
    with torch.device("meta"):
        model = Transformer(config)
    expected = {k for k in model.state_dict() if not (config.tie_word_embeddings and k == "lm_head.weight")}
    state_dict = {k: v for k, v in state_dict.items() if not _IGNORED_KEYS.match(k)}
    if config.tie_word_embeddings:
        state_dict.pop("lm_head.weight", None)
    missing, unexpected = expected - state_dict.keys(), state_dict.keys() - expected
    if missing:
        raise PhysloraError(f"{source}: weights missing for {len(missing)} parameters, e.g. {sorted(missing)[0]}")
    if unexpected:
        raise PhysloraError(f"{source}: unexpected weights, e.g. {sorted(unexpected)[0]}; "
                            "is config.json for this checkpoint?")
    for key, param in model.state_dict().items():
        if key in state_dict and tuple(state_dict[key].shape) != tuple(param.shape):
            raise PhysloraError(f"{source}: {key} has shape {tuple(state_dict[key].shape)}, "
                                f"config.json implies {tuple(param.shape)}")
    state_dict = {k: v.to(device=device, dtype=dtype) for k, v in state_dict.items()}
    model.load_state_dict(state_dict, strict=False, assign=True)
    if config.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    model.inv_freq = rope_inverse_frequencies(config).to(device)  # buffers built on meta hold no values
    model.eval().requires_grad_(False)
    model.fuse_projections()  # CPU bf16: one product for q, k, v and one for gate, up (model/linear.py)
    return model


# ---- HF folders -----------------------------------------------------------------------------
def read_hf_folder(folder: str):
    config_path = os.path.join(folder, "config.json")
    if not os.path.exists(config_path):
        raise PhysloraError(f"{folder}: no config.json; pass an HF model folder, a .gguf file or a hub id")
    config = ModelConfig.from_file(config_path)
    state_dict = {}
    for shard in _weight_files(folder):
        try:
            state_dict.update(load_file(shard))
        except (SafetensorError, OSError) as err:
            raise PhysloraError(f"{shard}: unreadable safetensors file ({err}); is it truncated? "
                                "download it again") from None
    return config, state_dict


def _weight_files(folder: str) -> list:
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        try:
            with open(index) as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
        except (json.JSONDecodeError, KeyError) as err:
            raise PhysloraError(f"{index}: not a valid safetensors index ({err})") from None
        return [os.path.join(folder, s) for s in shards]
    single = os.path.join(folder, "model.safetensors")
    if not os.path.exists(single):
        raise PhysloraError(f"{folder}: no model.safetensors (or model.safetensors.index.json); "
                            "physlora reads safetensors weights only")
    return [single]


# ---- GGUF files ----------------------------------------------------------------------------
_GGUF_BLOCK_NAMES = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
_GGUF_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


def hf_name_of_gguf_tensor(name: str) -> str:
    """`blk.3.attn_q.weight` -> `model.layers.3.self_attn.q_proj.weight`."""
    stem, kind = name.rsplit(".", 1)
    if stem in _GGUF_TOP_NAMES:
        return f"{_GGUF_TOP_NAMES[stem]}.{kind}"
    match = re.fullmatch(r"blk\.(\d+)\.(\w+)", stem)
    if match and match.group(2) in _GGUF_BLOCK_NAMES:
        return f"model.layers.{match.group(1)}.{_GGUF_BLOCK_NAMES[match.group(2)]}.{kind}"
    raise KeyError(name)


def unpermute_rope_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Inverse of llama.cpp's permute: per head, rows (2j, 2j+1) go back to (j, j + d/2)."""
    rows = w.shape[0]
    return w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_state_dict(gguf, config: ModelConfig) -> dict:
    if "rope_freqs.weight" in gguf.tensors:
        raise PhysloraError(f"{gguf.path}: GGUF files with baked-in rope_freqs (Llama 3.1+ long-context "
                            "scaling) are not supported yet; load the HF folder or hub id instead")
    heads_of = {"attn_q": config.num_attention_heads, "attn_k": config.num_key_value_heads}
    state_dict = {}
    for name in gguf.tensors:
        try:
            hf_name = hf_name_of_gguf_tensor(name)
        except KeyError:
            raise PhysloraError(f"{gguf.path}: unknown tensor {name!r} for architecture "
                                f"{config.model_type}") from None
        array = gguf.load(name)
        role = name.split(".")[2] if name.startswith("blk.") else ""
        if config.model_type == "llama" and role in heads_of:
            array = unpermute_rope_rows(array, heads_of[role])
        state_dict[hf_name] = torch.from_numpy(np.ascontiguousarray(array))
    return state_dict
