"""Flash attention forward+backward for one SmolLM2 layer of a 16 x 288 micro-batch: bf16, bf16 cast to fp32 around it, fp32.
2026-12-01 07:0x (slow machine): bf16 114.4 ms (backward 100.5), bf16->fp32 111.3 (74.6), fp32 92.8 (63.5): the cast gains nothing."""
import torch, time, torch.nn.functional as F
torch.manual_seed(0)
B, L, H, KH, D = 16, 288, 9, 3, 64
def make(dt):
    q = torch.randn(B, L, H, D, dtype=dt).transpose(1, 2).requires_grad_()
    k = torch.randn(B, L, KH, D, dtype=dt).transpose(1, 2).requires_grad_()
    v = torch.randn(B, L, KH, D, dtype=dt).transpose(1, 2).requires_grad_()
    return q, k, v
def run(dt, cast):
    q, k, v = make(dt)
    def f():
        qq, kk, vv = (t.float() for t in (q, k, v)) if cast else (q, k, v)
        o = F.scaled_dot_product_attention(qq, kk, vv, is_causal=True, enable_gqa=True)
        o = o.to(dt)
        t0 = time.perf_counter()
        o.backward(torch.ones_like(o))
        return time.perf_counter() - t0
    return f
fs = {"bf16": run(torch.bfloat16, False), "bf16->fp32": run(torch.bfloat16, True), "fp32": run(torch.float32, False)}
res = {k: [] for k in fs}
for i in range(6):
    for k, f in fs.items():
        s = time.perf_counter(); b = f(); res[k].append((time.perf_counter() - s, b))
for k, v in res.items():
    v = sorted(v)[1:-1]
    print(k, "fwd+bwd %.1f ms, bwd %.1f ms" % (sum(a for a, b in v) / len(v) * 1e3, sum(b for a, b in v) / len(v) * 1e3))
