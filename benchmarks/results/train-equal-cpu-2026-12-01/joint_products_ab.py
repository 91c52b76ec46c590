"""bf16 equal-work training step (24-layer Qwen2.5-0.5B shape, 4 x 256, r=8 q,v), two copies of the model in one
process, alternating steps: `separate` with the layers as build_model made them before 2026-12-01, `joint` with q, k, v
and gate, up laid out together (what build_model does now for CPU bf16). Run from the repository root."""
import os, sys, time
sys.path.insert(0, os.getcwd())
import torch
from benchmarks.shapes import QWEN25_05B, write_random_folder
import train
from data.batching import Batch
from lora.adapter import LoRASettings, inject
from model.transformer import Transformer
from model.weights import build_model, read_hf_folder
layers = int(os.environ.get("LAYERS", "24"))
dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[os.environ.get("DTYPE", "bf16")]
folder = "/tmp/prof_folder_%d" % layers
if not os.path.exists(folder):
    write_random_folder({**QWEN25_05B, "num_hidden_layers": layers}, folder)
models = {}
for name in ("separate", "joint"):
    lay_out = Transformer.fuse_projections
    if name == "separate":
        Transformer.fuse_projections = lambda self: None  # build_model as before 2026-12-01
    model = build_model(*read_hf_folder(folder), dtype, "cpu", source=folder)
    Transformer.fuse_projections = lay_out
    inject(model, LoRASettings(rank=8, alpha=16, dropout=0.05, targets=("q_proj", "v_proj")))
    models[name] = model.train()
tokens = torch.randint(0, QWEN25_05B["vocab_size"], (4, 256), generator=torch.Generator().manual_seed(0))
batch = Batch(tokens, tokens, None, None, tokens.numel(), tokens[:, 1:].numel(), 0)
times = {name: [] for name in models}
losses = {}
for rep in range(5):
    for name, model in models.items():
        start = time.perf_counter()
        losses[name] = train.train_window(model, [batch])
        times[name].append(round(time.perf_counter() - start, 2))
        model.zero_grad(set_to_none=True)
print({name: (t, sorted(t[1:])[len(t[1:]) // 2]) for name, t in times.items()}, "losses", losses)
