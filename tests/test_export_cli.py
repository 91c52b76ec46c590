"""`export.py` writes an HF folder transformers loads; with --adapter, the LoRA is merged in."""
import os
import subprocess
import sys

import torch
import transformers

from lora.adapter import LoRASettings, inject, lora_layers, save_adapter
from model.loading import load_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_merged_export_of_real_model_with_adapter_matches_adapted_logits(smollm2_gguf, tmp_path):
    model, tokenizer = load_model(smollm2_gguf)
    inject(model, LoRASettings(rank=4, alpha=8, targets=("q_proj", "v_proj", "down_proj")))
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_B.normal_(0, 0.05)
    save_adapter(model, str(tmp_path / "adapter"))
    ids = torch.tensor([tokenizer.encode("Friction opposes relative motion between surfaces.")])
    with torch.no_grad():
        adapted = model(ids)
    result = subprocess.run([sys.executable, os.path.join(ROOT, "export.py"), "--model", smollm2_gguf,
                             "--adapter", str(tmp_path / "adapter"), "--out", str(tmp_path / "merged")],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "(merged)" in result.stderr.strip().splitlines()[-1]
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged"), dtype=torch.float32).eval()
    with torch.no_grad():
        assert (hf(ids).logits - adapted).abs().max().item() <= 1e-4


def test_export_refuses_a_non_empty_folder(smollm2_gguf, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("precious")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "export.py"), "--model", smollm2_gguf,
                             "--out", str(tmp_path / "taken")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "already exists and is not empty" in result.stderr
    assert (tmp_path / "taken" / "keep.txt").read_text() == "precious"
