"""Where torch's flash backward catches up with ours: bf16 forward + backward at 384-1024 tokens, the two taking turns
(11 rounds, medians, ms; and the median of the per-round ratios). Run from the repository root:
.venv/bin/python benchmarks/results/attention-cpu-2026-12-01/crossover.py"""
import statistics, sys, time
sys.path.insert(0, ".")
import torch
import torch.nn.functional as F
from model.attention import _Attention

torch.manual_seed(0)
for batch, heads, kv_heads, length in ((8, 9, 3, 384), (8, 9, 3, 512), (8, 9, 3, 768), (4, 14, 2, 512),
                                       (4, 14, 2, 768), (2, 14, 2, 1024)):
    q = torch.randn(batch, heads, length, 64).bfloat16().requires_grad_()
    k = torch.randn(batch, kv_heads, length, 64).bfloat16().requires_grad_()
    v = torch.randn(batch, kv_heads, length, 64).bfloat16().requires_grad_()
    d_out = torch.randn(batch, heads, length, 64).bfloat16()
    methods = {"flash": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True),
               "ours": lambda: _Attention.apply(q, k, v)}
    times = {name: [] for name in methods}
    for round_index in range(12):
        for name in (("flash", "ours") if round_index % 2 else ("ours", "flash")):
            start = time.perf_counter()
            methods[name]().backward(d_out)
            if round_index:  # the first round warms up
                times[name].append((time.perf_counter() - start) * 1e3)
    ratios = [f / o for f, o in zip(times["flash"], times["ours"])]
    print(f"{(batch, heads, kv_heads, length)}  flash {statistics.median(times['flash']):6.1f} ms  "
          f"ours {statistics.median(times['ours']):6.1f} ms  flash/ours {statistics.median(ratios):.2f} "
          f"({min(ratios):.2f}-{max(ratios):.2f})", flush=True)
