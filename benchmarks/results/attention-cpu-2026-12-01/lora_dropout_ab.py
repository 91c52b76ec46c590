"""One bf16 LoRA layer (2304 tokens x 576 -> 576, SmolLM2's q_proj at a physics micro-batch; r=8, dropout 0.05),
forward + backward through lora.layer.lora_linear: the code before (f9804b0: torch.where on a bool mask, then a
scale) against now (a 0/1 mask in bf16 multiplied in, 1/(1-p) folded into A and the gradients' scales), alternating,
30 each; and how far apart their outputs and gradients are (‖old − new‖ / ‖old‖).
Run from the repository root: .venv/bin/python benchmarks/results/attention-cpu-2026-12-01/lora_dropout_ab.py"""
import importlib.util, statistics, subprocess, sys, tempfile, time
sys.path.insert(0, ".")
import torch
from lora import layer as new

with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as file:
    file.write(subprocess.run(["git", "show", "f9804b0:lora/layer.py"], capture_output=True, text=True, check=True).stdout)
spec = importlib.util.spec_from_file_location("layer_before", file.name)
old = importlib.util.module_from_spec(spec)
spec.loader.exec_module(old)

torch.manual_seed(0)
x = torch.randn(2304, 576).bfloat16().requires_grad_()
weight = torch.randn(576, 576).bfloat16() * 0.02
lora_A = (torch.randn(8, 576) * 0.02).requires_grad_()
lora_B = (torch.randn(576, 8) * 0.02).requires_grad_()
dy = torch.randn(2304, 576).bfloat16()


def run(module):
    x.grad = lora_A.grad = lora_B.grad = None
    y = module.lora_linear(x, weight, None, lora_A, lora_B, 4.0, 0.05, 7)
    y.backward(dy)
    return [t.detach().float().clone() for t in (y, x.grad, lora_A.grad, lora_B.grad)]


for name, a, b in zip(("y", "dx", "dA", "dB"), run(old), run(new)):
    print(f"{name}: relative difference {((a - b).norm() / a.norm()).item():.2e}")
times = {old: [], new: []}
for i in range(30):
    for module in ((old, new) if i % 2 else (new, old)):
        start = time.perf_counter(); run(module); times[module].append(time.perf_counter() - start)
print(f"median: before {statistics.median(times[old]) * 1e3:.2f} ms, now {statistics.median(times[new]) * 1e3:.2f} ms")
