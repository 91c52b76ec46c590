"""Load a model and its tokenizer from an HF folder, a hub id, an alias or a GGUF file."""
import os

import torch

from common.errors import PhysloraError
from model.config import ModelConfig
from model.gguf import read_gguf
from model.registry import resolve
from model.tokenizer import Tokenizer
from model.weights import build_model, gguf_state_dict, read_hf_folder


def load_model(name: str, dtype: torch.dtype = torch.float32, device: str = "cpu"):
    """Return (Transformer in eval mode, Tokenizer) for a path, alias or hub id."""
    path = resolve(name)
    if os.path.isdir(path):
        config, state_dict = read_hf_folder(path)
        model = build_model(config, state_dict, dtype, device, source=path)
        tokenizer = Tokenizer.from_folder(path)
    elif path.endswith(".gguf") or _has_gguf_magic(path):
        gguf = read_gguf(path)
        config = ModelConfig.from_gguf_metadata(gguf.metadata, gguf.tensors, source=path)
        model = build_model(config, gguf_state_dict(gguf, config), dtype, device, source=path)
        tokenizer = Tokenizer.from_gguf_metadata(gguf.metadata, source=path)
    else:
        raise PhysloraError(f"{path}: neither a model folder (with config.json) nor a .gguf file")
    model.source = name
    return model, tokenizer


def _has_gguf_magic(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"GGUF"
