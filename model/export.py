"""Write a loaded model as an HF-format folder that `transformers` (and llama.cpp's converter) reads.

config.json + model.safetensors + tokenizer files. A tied lm_head is not stored twice, as HF
does. The folder appears atomically: everything is written under a temporary name first.
"""
import json
import os
import shutil

import torch
from safetensors.torch import save_file

from common.errors import PhysloraError

DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def export_hf_folder(model, tokenizer, folder: str) -> str:
    """tokenizer may be None (random-weight benchmarks and tests feed token ids)."""
    if os.path.exists(folder) and (not os.path.isdir(folder) or os.listdir(folder)):
        raise PhysloraError(f"{folder}: already exists and is not empty; choose a new output folder")
    partial = folder.rstrip("/") + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    config = model.config.to_hf()
    weights = {name: tensor.contiguous() for name, tensor in model.state_dict().items()
               if not (model.config.tie_word_embeddings and name == "lm_head.weight")}
    config["torch_dtype"] = DTYPE_NAMES[next(iter(weights.values())).dtype]
    with open(os.path.join(partial, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    save_file(weights, os.path.join(partial, "model.safetensors"), metadata={"format": "pt"})
    if tokenizer is not None:
        tokenizer.save(partial)
    if os.path.isdir(folder):
        os.rmdir(folder)  # empty, checked above
    os.replace(partial, folder)
    return folder
