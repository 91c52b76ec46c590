"""Causal attention, with a faster backward for bf16 training on CPU.

    O = softmax(Q Kᵀ·s + M) V,   s = 1/sqrt(D),  M = −∞ above the diagonal (a query sees itself and the past)

The forward is torch's flash kernel, which also gives ℓ = logsumexp of each query's row of scores.
The backward is the one flash attention computes, written as five batched products:

    P  = exp(Q Kᵀ·s + M − ℓ)        the probabilities, recomputed from ℓ: no softmax pass
    dV = Pᵀ dO
    dS = P ⊙ (dO Vᵀ − δ),            δ = rowsum(dO ⊙ O)   (= rowsum(P ⊙ dO Vᵀ))
    dQ = dS K·s,   dK = dSᵀ Q·s

Why: in torch 2.13 the CPU flash kernel's bf16 backward takes ~9× its forward; these products take
about half its time at a few hundred tokens (benchmarks/results/attention-cpu-2026-12-01/). They fill
the whole L × L square where the flash kernel skips the causal half, so by ~600 tokens it catches up.
Grouped-query attention needs no copies: the G query heads sharing a kv head are stacked as G·L rows,
so the products that make dK and dV sum over the group by themselves.

Precision. A bf16 product rounds its output to 8 bits; rounding the scores Q Kᵀ·s (tens, in trained
models) and only then subtracting ℓ would put a few % of error into P. So ℓ rides inside the product,
as two extra columns: Q′ = [Q·s, −ℓ_hi, −ℓ_lo], K′ = [K, 1, 1] with ℓ_hi = bf16(ℓ), ℓ_lo = bf16(ℓ − ℓ_hi).
The product accumulates in fp32 and rounds log P ≤ 0, whose error vanishes where P is large. δ rides
in dO Vᵀ − δ the same way. M is the product's additive input (baddbmm). The gradients' errors are of
the flash kernel's size: a little more for dQ and dK (dS is rounded twice), less for dV
(tests/test_attention.py).

Elsewhere (fp32, CUDA, a mask, blocks over LONGEST tokens, no gradient) this is plain
F.scaled_dot_product_attention.
"""
from typing import Optional

import torch
import torch.nn.functional as F

# Largest P and dS slab (bytes) held at once: beyond it the (batch, kv head) pairs go in chunks.
SLAB_BYTES = 64 << 20
# Our products fill the whole L × L square, the flash kernel only the causal half: ours is 1.16-1.25x faster at
# 384-512 tokens, 0.69-0.80x at 768-1024 (benchmarks/results/attention-cpu-2026-12-01/crossover.txt), so longer
# blocks are left to it. train.py's default --max-len 512 stays below.
LONGEST = 576
# torch's CPU flash kernel, which returns the logsumexp our backward needs; a private op, so if a torch release
# drops it, training falls back to torch's own backward instead of failing.
_FLASH_FOR_CPU = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor],
              causal: bool) -> torch.Tensor:
    """Attention of q (batch, heads, L, D) over k, v (batch, kv_heads, keys, D): causal, or under the boolean mask."""
    if (_FLASH_FOR_CPU is not None and mask is None and causal and q.dtype is torch.bfloat16 and q.device.type == "cpu"
            and q.shape[2] == k.shape[2] <= LONGEST
            and torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)):
        return _Attention.apply(q, k, v)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                          enable_gqa=k.shape[1] != q.shape[1])


def _hi_lo(x: torch.Tensor) -> torch.Tensor:
    """fp32 x as two bf16 numbers whose sum is x to ~16 bits, in a last dimension of 2."""
    hi = x.to(torch.bfloat16)
    return torch.stack((hi, (x - hi.float()).to(torch.bfloat16)), dim=-1)


class _Attention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v):
        out, logsumexp = _FLASH_FOR_CPU(q, k, v, 0.0, True)
        ctx.save_for_backward(q, k, v, out, logsumexp)
        return out

    @staticmethod
    def backward(ctx, d_out):
        q, k, v, out, logsumexp = ctx.saved_tensors
        batch, heads, length, dim = q.shape
        kv_heads = k.shape[1]
        group, pairs, scale = heads // kv_heads, batch * kv_heads, dim ** -0.5
        rows = group * length  # a kv head's queries, stacked
        ones = q.new_ones(batch, kv_heads, length, 2)
        # In fp32 (a product of two bf16 numbers is exact in it): a row's dO Vᵀ − δ then cancels where it should.
        delta = d_out.float().mul_(out).sum(dim=-1)
        q_scaled = (q * scale).reshape(pairs, rows, dim)
        q_ext = torch.cat((q_scaled.view(batch, heads, length, dim), _hi_lo(-logsumexp)), dim=-1)
        q_ext = q_ext.view(pairs, rows, dim + 2)
        k_ext = torch.cat((k, ones), dim=-1).view(pairs, length, dim + 2)
        d_out_ext = torch.cat((d_out, _hi_lo(-delta)), dim=-1).view(pairs, rows, dim + 2)
        v_ext = torch.cat((v, ones), dim=-1).view(pairs, length, dim + 2)
        d_out, k = d_out.reshape(pairs, rows, dim), k.reshape(pairs, length, dim)
        above_diagonal = torch.full((length, length), float("-inf"), dtype=q.dtype, device=q.device).triu_(1)
        above_diagonal = above_diagonal.repeat(group, 1)

        dq, dk, dv = q.new_empty(pairs, rows, dim), k.new_empty(pairs, length, dim), v.new_empty(pairs, length, dim)
        step = max(1, SLAB_BYTES // (2 * rows * length * q.element_size()))
        for s in range(0, pairs, step):
            e = min(pairs, s + step)
            p = torch.baddbmm(above_diagonal, q_ext[s:e], k_ext[s:e].transpose(1, 2)).exp_()
            torch.bmm(p.transpose(1, 2), d_out[s:e], out=dv[s:e])
            ds = torch.bmm(d_out_ext[s:e], v_ext[s:e].transpose(1, 2)).mul_(p)
            torch.bmm(ds, k[s:e], out=dq[s:e])
            torch.bmm(ds.transpose(1, 2), q_scaled[s:e], out=dk[s:e])
        return (dq.mul_(scale).view(batch, heads, length, dim), dk.view(batch, kv_heads, length, dim),
                dv.view(batch, kv_heads, length, dim))
