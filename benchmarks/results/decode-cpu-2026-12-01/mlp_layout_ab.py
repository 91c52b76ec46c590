"""Same-process A/B, alternating: bf16 SmolLM2 decoding with the MLP's gate, up product copied back into
x Wᵀ's layout (`copied`, as before) or left in (W xᵀ)ᵀ's (`kept`, model/transformer.py's MLP now).
Run from the repository root: .venv/bin/python benchmarks/results/decode-cpu-2026-12-01/mlp_layout_ab.py"""
import sys
import time

sys.path.insert(0, ".")
import torch

from model import kernels
from model.linear import project
from model.loading import load_model
from model.sampler import SamplingParams, generate
from model.transformer import MLP

kept = MLP.forward


def copied(self, x):
    return self.down_proj(kernels.swiglu(*project(x, self.gate_proj, self.up_proj)))


model, _ = load_model("smollm2-135m-instruct")
model = model.to(torch.bfloat16).eval()
params = SamplingParams(max_new_tokens=128)
for batch in (1, 16):
    prompts = [list(range(100, 164))] * batch
    speeds = {"copied": [], "kept": []}
    with torch.inference_mode():
        generate(model, prompts, params, [], 0)
        for _ in range(4):
            for name, forward in (("copied", copied), ("kept", kept)):
                MLP.forward = forward
                start = time.perf_counter()
                generate(model, prompts, params, [], 0)
                speeds[name].append(round(batch * 128 / (time.perf_counter() - start), 1))
    MLP.forward = kept
    print(f"batch {batch}: tokens/s {speeds}", flush=True)
