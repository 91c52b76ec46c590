"""RoPE in plain torch on CPU: HF's x·cos + rotate_half(x)·sin against x·cos + roll(x)·(−s₁, s₂) (model/kernels.py
since 2026-12-01), at a physics training micro-batch (8 × 288 tokens) and decoding (1 and 16 rows), SmolLM2's heads.
Median µs of 20 calls for q and k together; err = max relative error against float64."""
import time

import torch


def per_call_us(fn, n=20):
    fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[n // 2] * 1e6


def rotate_half(x):
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def hf_order(q, k, cos, sin):
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def rolled(q, k, cos, sin):
    half = q.shape[-1] // 2
    signed_sin = torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)
    return tuple(torch.addcmul(x * cos, x.roll(half, dims=-1), signed_sin) for x in (q, k))


for dtype in (torch.bfloat16, torch.float32):
    for batch, length in ((8, 288), (1, 1), (16, 1)):
        q, k = torch.randn(batch, 9, length, 64, dtype=dtype), torch.randn(batch, 3, length, 64, dtype=dtype)
        angles = torch.randn(batch, 1, length, 32)
        angles = torch.cat((angles, angles), -1)
        cos, sin = angles.cos().to(dtype), angles.sin().to(dtype)
        exact = hf_order(*(t.double() for t in (q, k, cos, sin)))

        def error(pair):
            return max(((x.double() - r).abs().max() / r.abs().max()).item() for x, r in zip(pair, exact))

        print(f"{str(dtype):15s} {batch:2d} x {length:3d}  HF order {per_call_us(lambda: hf_order(q, k, cos, sin)):6.0f} us"
              f" err {error(hf_order(q, k, cos, sin)):.1e}   rolled {per_call_us(lambda: rolled(q, k, cos, sin)):6.0f} us"
              f" err {error(rolled(q, k, cos, sin)):.1e}")
