"""Chunked cross-entropy alone, forward + backward, Qwen2.5 vocabulary: before/after the chunk rounding (commit after 6593b9d).

Run from the repository root: .venv/bin/python benchmarks/results/train-equal-cpu-2026-11-30/cross_entropy_chunks.py
"""
import sys, time, statistics, torch
sys.path.insert(0, "/work/main")
from model.loss import chunked_cross_entropy
g = torch.Generator().manual_seed(0)
for dtype in (torch.bfloat16, torch.float32):
    h = (torch.randn(1020, 896, generator=g) * 0.5).to(dtype).requires_grad_()
    w = (torch.randn(151936, 896, generator=g) * 0.02).to(dtype)
    y = torch.randint(0, 151936, (1020,), generator=g)
    def run():
        h.grad = None
        chunked_cross_entropy(h, w, y).backward()
    run(); run()
    ts = []
    for _ in range(7):
        t = time.perf_counter(); run(); ts.append(time.perf_counter() - t)
    print(dtype, "CE fwd+bwd median ms", round(statistics.median(ts) * 1e3, 1), "min", round(min(ts) * 1e3, 1))
