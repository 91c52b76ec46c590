"""bf16 (and SmolLM2-shaped) input gradient of gate, up: two products summed against one over the concatenation."""
import time, torch
def t(fn, n=7):
    fn(); ts = []
    for _ in range(n):
        s = time.perf_counter(); fn(); ts.append(time.perf_counter() - s)
    return sorted(ts)[n // 2] * 1e3
for N, H, I in ((2304, 576, 1536), (1024, 896, 4864)):
    dt = torch.bfloat16
    dg, du = torch.randn(N, I, dtype=dt), torch.randn(N, I, dtype=dt)
    Wg, Wu = torch.randn(I, H, dtype=dt), torch.randn(I, H, dtype=dt)
    W = torch.cat((Wg, Wu))
    sep = lambda: (dg @ Wg).add_(du @ Wu)
    joint_cat = lambda: torch.cat((dg, du), 1) @ W
    print((N, H, I), "separate %.1f ms" % t(sep), "joint incl. cat %.1f ms" % t(joint_cat))
