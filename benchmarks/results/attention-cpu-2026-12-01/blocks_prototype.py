"""Prototype, not adopted: the attention backward in query blocks that skip the causal half (blocks of ~144 or
~192 query rows, keys only up to the block's end), against torch's and model/attention.py's one-square backward,
taking turns 15 rounds (medians, ms). Run from the repository root: .venv/bin/python benchmarks/results/attention-cpu-2026-12-01/blocks_prototype.py"""
import sys, time, statistics; sys.path.insert(0, '.')
import torch, torch.nn.functional as F
from model.attention import _Attention, _hi_lo

class Blocked(_Attention):
    @staticmethod
    def forward(ctx, q, k, v, block):
        ctx.block = block
        return _Attention.forward(ctx, q, k, v)

    @staticmethod
    def backward(ctx, d_out):
        q, k, v, out, logsumexp = ctx.saved_tensors
        (batch, heads, length, dim), kv_heads = q.shape, k.shape[1]
        group, pairs, scale = heads // kv_heads, batch * kv_heads, dim ** -0.5
        ones = q.new_ones(batch, kv_heads, length, 2)
        delta = d_out.float().mul_(out).sum(dim=-1)
        q_scaled = (q * scale)
        q_ext = torch.cat((q_scaled, _hi_lo(-logsumexp)), dim=-1).view(pairs, group, length, dim + 2)
        k_ext = torch.cat((k, ones), dim=-1).view(pairs, length, dim + 2)
        d_out_ext = torch.cat((d_out, _hi_lo(-delta)), dim=-1).view(pairs, group, length, dim + 2)
        v_ext = torch.cat((v, ones), dim=-1).view(pairs, length, dim + 2)
        k = k.reshape(pairs, length, dim)
        q_scaled = q_scaled.reshape(pairs, group, length, dim)
        causal = torch.full((length, length), float("-inf"), dtype=q.dtype).triu_(1)
        dq = q.new_empty(pairs, group, length, dim); dk = k.new_zeros(pairs, length, dim); dv = v.new_zeros(pairs, length, dim)
        n = max(1, round(length / ctx.block)); bounds = [round(length * i / n) for i in range(n + 1)]
        for a, b in zip(bounds, bounds[1:]):
            rows = group * (b - a)
            qb = q_ext[:, :, a:b].reshape(pairs, rows, dim + 2)
            dob = d_out_ext[:, :, a:b].reshape(pairs, rows, dim + 2)
            p = torch.baddbmm(causal[a:b, :b].repeat(group, 1), qb, k_ext[:, :b].transpose(1, 2)).exp_()
            dv[:, :b] += torch.bmm(p.transpose(1, 2), dob[..., :dim])
            ds = torch.bmm(dob, v_ext[:, :b].transpose(1, 2)).mul_(p)
            dq[:, :, a:b] = torch.bmm(ds, k[:, :b]).view(pairs, group, b - a, dim)
            dk[:, :b] += torch.bmm(ds.transpose(1, 2), q_scaled[:, :, a:b].reshape(pairs, rows, dim))
        return (dq.mul_(scale).view(batch, heads, length, dim), dk.view(batch, kv_heads, length, dim),
                dv.view(batch, kv_heads, length, dim), None)

torch.manual_seed(0)
for B, H, Hk, L in ((8, 9, 3, 288), (8, 9, 3, 224), (4, 14, 2, 256), (8, 9, 3, 512)):
    q = (torch.randn(B, H, L, 64) * 2).bfloat16().requires_grad_(); k = (torch.randn(B, Hk, L, 64) * 2).bfloat16().requires_grad_()
    v = torch.randn(B, Hk, L, 64).bfloat16().requires_grad_(); g = torch.randn(B, H, L, 64).bfloat16()
    q64, k64, v64 = (x.detach().double().requires_grad_() for x in (q, k, v))
    F.scaled_dot_product_attention(q64, k64, v64, is_causal=True, enable_gqa=True).backward(g.double())
    ref = (q64.grad, k64.grad, v64.grad)
    ms = {"flash": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True),
          "ours": lambda: _Attention.apply(q, k, v),
          "blk144": lambda: Blocked.apply(q, k, v, 144), "blk192": lambda: Blocked.apply(q, k, v, 192)}
    times = {n: [] for n in ms}
    for r in range(16):
        for n, f in (ms.items() if r % 2 else reversed(list(ms.items()))):
            q.grad = k.grad = v.grad = None
            s = time.perf_counter(); f().backward(g); times[n].append(time.perf_counter() - s)
    q.grad = k.grad = v.grad = None; Blocked.apply(q, k, v, 144).backward(g)
    err = [round(((x.grad.double() - r).norm() / r.norm()).item(), 4) for x, r in zip((q, k, v), ref)]
    print((B, H, Hk, L), "  ".join(f"{n} {statistics.median(t[1:]) * 1e3:.1f}" for n, t in times.items()), "err blk144", err, flush=True)
