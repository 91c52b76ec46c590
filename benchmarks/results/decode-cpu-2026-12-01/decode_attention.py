"""Decoding attention (one query per row, SmolLM2 heads: 9 q, 3 kv, head_dim 64) over 65-192 cached keys:
torch's flash kernel (sdpa) against explicit matmul, softmax, matmul (fp32 softmax), us a call."""
import time, torch, torch.nn.functional as F
def t(fn, n=2000):
    for _ in range(50): fn()
    best = 1e9
    for _ in range(5):
        s = time.perf_counter()
        for _ in range(n): fn()
        best = min(best, (time.perf_counter() - s) / n * 1e6)
    return best
bf = torch.bfloat16
with torch.inference_mode():
  for dt in (bf, torch.float32):
    for B in (1, 16):
      for S in (65, 128, 192):
        H, Hk, D = 9, 3, 64
        cache_k = torch.randn(B, Hk, 200, D, dtype=dt); cache_v = torch.randn(B, Hk, 200, D, dtype=dt)
        q = torch.randn(B, H, 1, D, dtype=dt)
        k, v = cache_k[:, :, :S], cache_v[:, :, :S]
        flash = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
        def math():
            qg = q.view(B, Hk, H // Hk, D)
            s = (qg @ k.transpose(-1, -2)).float().mul_(D ** -0.5)
            p = torch.softmax(s, -1).to(dt)
            return (p @ v).view(B, H, 1, D)
        def math32():
            qg = q.view(B, Hk, H // Hk, D)
            s = torch.matmul(qg, k.transpose(-1, -2)) * (D ** -0.5)
            return (torch.softmax(s, -1, dtype=torch.float32).to(dt) @ v).view(B, H, 1, D)
        a, b = flash(), math()
        print(dt, B, S, "flash %.1f" % t(flash), "math %.1f" % t(math), "math2 %.1f" % t(math32), "maxdiff %.2e" % (a.float() - b.float()).abs().max().item())
