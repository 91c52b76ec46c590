"""bf16 products on this CPU: the rate against the inner dimension K (M=1024, N=896), and the MLP's input gradient as two products or one."""
import statistics
import time

import torch


def median_ms(f, n=9):
    f(), f()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


generator = torch.Generator().manual_seed(0)
for K in (2432, 4096, 4864, 5120, 8192, 9728):
    a = torch.randn(1024, K, generator=generator).bfloat16()
    b = torch.randn(K, 896, generator=generator).bfloat16()
    ms = median_ms(lambda: a @ b)
    print(f"K {K}: {ms:.2f} ms, {2 * 1024 * K * 896 / ms / 1e9:.2f} TFLOP/s")
for dtype in (torch.bfloat16, torch.float32):
    d_gate, d_up = (torch.randn(1024, 4864, generator=generator).to(dtype) for _ in range(2))
    w_gate, w_up = (torch.randn(4864, 896, generator=generator).to(dtype) for _ in range(2))
    d_both, w_both = torch.cat([d_gate, d_up], 1), torch.cat([w_gate, w_up])
    print(f"{dtype}: d_gate @ W_gate + d_up @ W_up {median_ms(lambda: d_gate @ w_gate + d_up @ w_up):.1f} ms, "
          f"[d_gate | d_up] @ [W_gate; W_up] {median_ms(lambda: d_both @ w_both):.1f} ms")
