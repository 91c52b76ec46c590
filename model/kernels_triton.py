"""Triton kernels for the ops of model/kernels.py (same interface and maths as its TorchOps).

Memory-bound, so each kernel reads its inputs once, computes in fp32 registers and writes each
output once: one program per token row (RMSNorm: a block of rows, to sum dw; SwiGLU: a block of
elements). A whole norm row or a token's heads fit one block; the vocabulary is walked in blocks.
"""
import os

import torch
import triton
import triton.language as tl

_INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
# Interpreted, blocks are small so the tests' rows span several blocks and programs.
_VOCAB_BLOCK = 64 if _INTERPRETED else 4096
_NORM_BACKWARD_PROGRAMS = 4 if _INTERPRETED else 1024  # each adds an fp32 partial dw of H values
_ELEMENTWISE_BLOCK = 1024


def _empty(shape, dtype, device):
    """Every buffer a kernel writes comes from here (tests swap in NaN-filled ones)."""
    return torch.empty(shape, dtype=dtype, device=device)


def _warps(block):
    """Enough warps that each thread holds a handful of a row's elements."""
    return min(max(block // 256, 1), 16)


@triton.jit
def _rms_norm_forward_kernel(X, W, Y, Rstd, H, stride_x, stride_y, eps, BLOCK_H: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_H)
    mask = cols < H
    x = tl.load(X + row * stride_x + cols, mask=mask, other=0.0)
    x32 = x.to(tl.float32)
    rstd = tl.rsqrt(tl.sum(x32 * x32, axis=0) / H + eps)
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    # HF's order: round the normalised row to x's dtype, then multiply by the weight.
    y = w * (x32 * rstd).to(x.dtype).to(tl.float32)
    tl.store(Y + row * stride_y + cols, y.to(Y.dtype.element_ty), mask=mask)
    tl.store(Rstd + row, rstd)


@triton.jit
def _rms_norm_backward_kernel(DY, X, W, Rstd, DX, DW, M, H, rows_per_program, stride_dy, stride_x, stride_dx,
                              HAS_DW: tl.constexpr, BLOCK_H: tl.constexpr):
    """dx for this program's rows; with HAS_DW their Σ dy·cast(n) goes to DW[program] (fp32 partials
    that the host adds: deterministic, unlike atomics)."""
    cols = tl.arange(0, BLOCK_H)
    mask = cols < H
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    dw = tl.zeros((BLOCK_H,), dtype=tl.float32)
    first = tl.program_id(0).to(tl.int64) * rows_per_program
    for row in range(first, tl.minimum(first + rows_per_program, M)):
        x = tl.load(X + row * stride_x + cols, mask=mask, other=0.0)
        dy = tl.load(DY + row * stride_dy + cols, mask=mask, other=0.0).to(tl.float32)
        rstd = tl.load(Rstd + row)
        normed = x.to(tl.float32) * rstd
        grad_normed = dy * w
        dx = rstd * (grad_normed - normed * (tl.sum(grad_normed * normed, axis=0) / H))
        tl.store(DX + row * stride_dx + cols, dx.to(DX.dtype.element_ty), mask=mask)
        if HAS_DW:
            dw += dy * normed.to(x.dtype).to(tl.float32)
    if HAS_DW:
        tl.store(DW + tl.program_id(0) * H + cols, dw, mask=mask)


@triton.jit
def _rotate_heads(X, Out, batch, pos, heads, half, c, s,
                  stride_xb, stride_xh, stride_xl, stride_xd, stride_ob, stride_oh, stride_ol, stride_od,
                  BLOCK_HEADS: tl.constexpr, BLOCK_HALF: tl.constexpr):
    """One token's heads of X (batch, heads, length, D) rotated by (c, s) into Out."""
    hs = tl.arange(0, BLOCK_HEADS)[:, None]
    ds = tl.arange(0, BLOCK_HALF)[None, :]
    mask = (hs < heads) & (ds < half)
    x_first = X + batch * stride_xb + pos * stride_xl + hs * stride_xh + ds * stride_xd
    x1 = tl.load(x_first, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(x_first + half * stride_xd, mask=mask, other=0.0).to(tl.float32)
    out_first = Out + batch * stride_ob + pos * stride_ol + hs * stride_oh + ds * stride_od
    tl.store(out_first, (x1 * c - x2 * s).to(Out.dtype.element_ty), mask=mask)
    tl.store(out_first + half * stride_od, (x2 * c + x1 * s).to(Out.dtype.element_ty), mask=mask)


@triton.jit
def _rope_kernel(Q, K, QOut, KOut, Cos, Sin, length, q_heads, k_heads, half, stride_table, sign,
                 stride_qb, stride_qh, stride_ql, stride_qd, stride_qob, stride_qoh, stride_qol, stride_qod,
                 stride_kb, stride_kh, stride_kl, stride_kd, stride_kob, stride_koh, stride_kol, stride_kod,
                 BLOCK_Q_HEADS: tl.constexpr, BLOCK_K_HEADS: tl.constexpr, BLOCK_HALF: tl.constexpr):
    """Every q and k head of one token; the tables are (tokens × D): cos read in its first half, sin in
    its second (the first holds −sin)."""
    token = tl.program_id(0).to(tl.int64)
    batch, pos = token // length, token % length
    ds = tl.arange(0, BLOCK_HALF)[None, :]
    c = tl.load(Cos + token * stride_table + ds, mask=ds < half, other=0.0).to(tl.float32)
    s = sign * tl.load(Sin + token * stride_table + half + ds, mask=ds < half, other=0.0).to(tl.float32)
    _rotate_heads(Q, QOut, batch, pos, q_heads, half, c, s, stride_qb, stride_qh, stride_ql, stride_qd,
                  stride_qob, stride_qoh, stride_qol, stride_qod, BLOCK_Q_HEADS, BLOCK_HALF)
    _rotate_heads(K, KOut, batch, pos, k_heads, half, c, s, stride_kb, stride_kh, stride_kl, stride_kd,
                  stride_kob, stride_koh, stride_kol, stride_kod, BLOCK_K_HEADS, BLOCK_HALF)


@triton.jit
def _swiglu_forward_kernel(G, U, Y, N, BLOCK: tl.constexpr):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < N
    g = tl.load(G + offsets, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(U + offsets, mask=mask, other=0.0).to(tl.float32)
    tl.store(Y + offsets, (g * tl.sigmoid(g) * u).to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _swiglu_backward_kernel(DY, G, U, DG, DU, N, BLOCK: tl.constexpr):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < N
    dy = tl.load(DY + offsets, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(G + offsets, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(U + offsets, mask=mask, other=0.0).to(tl.float32)
    sigmoid = tl.sigmoid(g)
    tl.store(DG + offsets, (dy * u * sigmoid * (1 + g * (1 - sigmoid))).to(DG.dtype.element_ty), mask=mask)
    tl.store(DU + offsets, (dy * g * sigmoid).to(DU.dtype.element_ty), mask=mask)


@triton.jit
def _cross_entropy_kernel(Z, Targets, Loss, V, stride_zr, stride_zv, WRITE_GRAD: tl.constexpr,
                          BLOCK_V: tl.constexpr):
    """Loss[row] = logsumexp(z) − z[y]; with WRITE_GRAD, z ← softmax(z) − onehot(y) in place."""
    row = tl.program_id(0).to(tl.int64)
    z_row = Z + row * stride_zr
    target = tl.load(Targets + row)
    # Online logsumexp: a running max m and Σ exp(z − m), rescaled whenever m grows.
    m = float("-inf")
    total = 0.0
    for start in range(0, V, BLOCK_V):
        cols = start + tl.arange(0, BLOCK_V)
        z = tl.load(z_row + cols * stride_zv, mask=cols < V, other=float("-inf")).to(tl.float32)
        new_m = tl.maximum(m, tl.max(z, axis=0))
        total = total * tl.exp(m - new_m) + tl.sum(tl.exp(z - new_m), axis=0)
        m = new_m
    lse = m + tl.log(total)
    tl.store(Loss + row, lse - tl.load(z_row + target * stride_zv).to(tl.float32))
    if WRITE_GRAD:
        for start in range(0, V, BLOCK_V):
            cols = start + tl.arange(0, BLOCK_V)
            z = tl.load(z_row + cols * stride_zv, mask=cols < V, other=0.0).to(tl.float32)
            grad = tl.exp(z - lse) - tl.where(cols == target, 1.0, 0.0)
            tl.store(z_row + cols * stride_zv, grad.to(Z.dtype.element_ty), mask=cols < V)


def rms_norm_forward(x, weight, eps):
    """(y, r) for x (..., H): y shaped as x, r (rows,) fp32 for its rows."""
    rows = x.reshape(-1, x.shape[-1]).contiguous()
    (M, H), block = rows.shape, triton.next_power_of_2(rows.shape[1])
    y = _empty((M, H), torch.promote_types(x.dtype, weight.dtype), x.device)
    rstd = _empty((M,), torch.float32, x.device)
    _rms_norm_forward_kernel[(M,)](rows, weight, y, rstd, H, rows.stride(0), y.stride(0), eps,
                                   BLOCK_H=block, num_warps=_warps(block))
    return y.view(x.shape), rstd


def rms_norm(x, weight, eps):
    """y alone, where no backward follows."""
    return rms_norm_forward(x, weight, eps)[0]


def rms_norm_backward(dy, x, weight, rstd, need_dweight):
    """(dx, dw); dw is None unless asked for."""
    dy, x = dy.contiguous(), x.contiguous()
    (M, H), block = x.shape, triton.next_power_of_2(x.shape[1])
    rows_per_program = triton.cdiv(M, _NORM_BACKWARD_PROGRAMS)
    programs = triton.cdiv(M, rows_per_program)
    dx = _empty((M, H), x.dtype, x.device)
    # Without dw, any tensor serves as the DW pointer: the kernel never touches it.
    partials = _empty((programs, H), torch.float32, x.device) if need_dweight else dx
    _rms_norm_backward_kernel[(programs,)](dy, x, weight, rstd, dx, partials, M, H, rows_per_program,
                                           dy.stride(0), x.stride(0), dx.stride(0),
                                           HAS_DW=need_dweight, BLOCK_H=block, num_warps=_warps(block))
    return dx, partials.sum(0).to(weight.dtype) if need_dweight else None


def _rotated_like(x):
    """A (batch, heads, length, D) buffer laid out as (batch, length, heads, D), as the q/k projections
    write it, so that autograd's view back to the projection's output needs no copy."""
    batch, heads, length, head_dim = x.shape
    return _empty((batch, length, heads, head_dim), x.dtype, x.device).transpose(1, 2)


def rope(q, k, cos, sin, inverse=False):
    """q and k rotated by the angles whose cos and sin are given (the inverse rotation if asked)."""
    batch, q_heads, length, head_dim = q.shape
    tables = [t.expand(batch, 1, length, head_dim).reshape(batch * length, head_dim).contiguous()
              for t in (cos, sin)]
    q_out, k_out = _rotated_like(q), _rotated_like(k)
    half = head_dim // 2
    _rope_kernel[(batch * length,)](q, k, q_out, k_out, *tables, length, q_heads, k.shape[1], half, tables[0].stride(0),
                                    -1.0 if inverse else 1.0,
                                    *q.stride(), *q_out.stride(), *k.stride(), *k_out.stride(),
                                    BLOCK_Q_HEADS=triton.next_power_of_2(q_heads),
                                    BLOCK_K_HEADS=triton.next_power_of_2(k.shape[1]),
                                    BLOCK_HALF=triton.next_power_of_2(half))
    return q_out, k_out


def _elementwise_grid(n):
    return (triton.cdiv(n, _ELEMENTWISE_BLOCK),)


def swiglu_forward(gate, up):
    gate, up = gate.contiguous(), up.contiguous()
    y = _empty(gate.shape, gate.dtype, gate.device)
    _swiglu_forward_kernel[_elementwise_grid(gate.numel())](gate, up, y, gate.numel(), BLOCK=_ELEMENTWISE_BLOCK)
    return y


def swiglu_backward(dy, gate, up):
    """(d gate, d up)."""
    dy, gate, up = dy.contiguous(), gate.contiguous(), up.contiguous()
    d_gate, d_up = _empty(gate.shape, gate.dtype, gate.device), _empty(up.shape, up.dtype, up.device)
    _swiglu_backward_kernel[_elementwise_grid(gate.numel())](dy, gate, up, d_gate, d_up, gate.numel(),
                                                             BLOCK=_ELEMENTWISE_BLOCK)
    return d_gate, d_up


def cross_entropy_(logits, targets, need_grad):
    """(Σ_rows logsumexp(z) − z[y] in fp32, softmax(z) − onehot(y) or None) for logits z (rows × V).

    With need_grad the gradient overwrites the logits, in their dtype.
    """
    rows, vocab = logits.shape
    losses = _empty((rows,), torch.float32, logits.device)
    block = min(_VOCAB_BLOCK, triton.next_power_of_2(vocab))
    _cross_entropy_kernel[(rows,)](logits, targets, losses, vocab, *logits.stride(),
                                   WRITE_GRAD=need_grad, BLOCK_V=block, num_warps=_warps(block))
    return losses.sum(), logits if need_grad else None
