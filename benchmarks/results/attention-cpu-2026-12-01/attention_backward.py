"""Attention forward + backward, bf16 on CPU: torch's flash kernel (F.scaled_dot_product_attention) against
model/attention.py (the same forward, our backward), at the physics workload's micro-batch shapes (8 rows, SmolLM2's
9 query / 3 kv heads, 192 and 288 tokens), the equal-work shape (4 rows, Qwen2.5-0.5B's 14 / 2 heads, 256 tokens)
a small odd one, and 512 tokens; median of 9 taking turns after two warm-ups (benchmarks.timing.median_ms), in ms. err = ‖grad − float64 grad‖ / ‖float64 grad‖ for q, k, v.
Run from the repository root: .venv/bin/python benchmarks/results/attention-cpu-2026-12-01/attention_backward.py"""
import sys
sys.path.insert(0, ".")
import torch
import torch.nn.functional as F
from benchmarks.timing import median_ms
from model.attention import _Attention


torch.manual_seed(0)
for batch, heads, kv_heads, length in ((8, 9, 3, 288), (8, 9, 3, 192), (4, 14, 2, 256), (3, 4, 4, 37),
                                        (8, 9, 3, 512), (4, 14, 2, 512)):
    q = (torch.randn(batch, heads, length, 64) * 2).bfloat16().requires_grad_()
    k = (torch.randn(batch, kv_heads, length, 64) * 2).bfloat16().requires_grad_()
    v = torch.randn(batch, kv_heads, length, 64).bfloat16().requires_grad_()
    d_out = torch.randn(batch, heads, length, 64).bfloat16()
    q64, k64, v64 = (x.detach().double().requires_grad_() for x in (q, k, v))
    F.scaled_dot_product_attention(q64, k64, v64, is_causal=True, enable_gqa=True).backward(d_out.double())
    expected = (q64.grad, k64.grad, v64.grad)

    attends = {"flash": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True),
               "ours": lambda: _Attention.apply(q, k, v)}  # directly: what attention() runs up to LONGEST tokens

    def step(attend):
        q.grad = k.grad = v.grad = None
        attend().backward(d_out)

    def errors(attend):
        step(attend)
        return ", ".join(f"{((x.grad.double() - e).norm() / e.norm()).item():.4f}" for x, e in zip((q, k, v), expected))

    ms = median_ms({name: (lambda a=attend: step(a)) for name, attend in attends.items()}, "cpu", 9)
    print(f"{(batch, heads, kv_heads, length)}  " + "  ".join(
        f"{name} {ms[name]:6.1f} ms (err {errors(attend)})" for name, attend in attends.items()), flush=True)
