"""Fused Triton kernels for LoRA (same interface and maths as `TorchOps` in lora/layer.py).

x: M×K tokens, W: N×K frozen, A: R×K, B: N×R, s = scaling, drop(x) = keep ⊙ x / (1 - p):

    forward    u  = drop(x) Aᵀ              ┐ _lora_matmul_kernel  M×N, written once
               y  = x Wᵀ + b + s · u Bᵀ      ┘ (dropout: u from _down_proj_kernel first)
    backward   g  = dy B                     ┐ _lora_matmul_kernel  M×K, written once
               dx = dy W + s · drop(g A)     ┘ (no dx wanted: g from _down_proj_kernel)
               dA = s · gᵀ drop(x)             _token_sum_kernel    R×K, fp32
               dB = s · dyᵀ u                  _token_sum_kernel    N×R, fp32

Each kernel serves two products through strides (a transposed operand is a stride swap).
_lora_matmul_kernel is one GEMM that also accumulates the rank-R down-projection (u or g)
from the same tiles of its input, and adds the rank-R term in its epilogue: after the K
loop, one more `tl.dot` of an M×R tile with an R×N tile, so the output is written once.

Dropout: keep(i, j) = rand(seed, i·K + j) ≥ p with Triton's Philox generator, for token i
and input feature j. Every kernel that needs the mask regenerates it; it is never stored.
`keep_mask` materialises it, for tests.

A and B may be fp32 while x is bf16/fp16: they are cast to x's dtype as they are loaded.
"""
import os

import torch
import triton
import triton.language as tl

# The interpreter runs each program in numpy: autotuning there would only cost time. The GPU tests ask for the
# same one small config (PHYSLORA_TRITON_ONE_CONFIG=1): autotuning compiles every candidate for every new
# argument specialization, ~900 compiles for tests/test_lora_kernels.py; benchmarks and training autotune.
_ONE_SMALL_CONFIG = "1" in (os.environ.get("TRITON_INTERPRET"), os.environ.get("PHYSLORA_TRITON_ONE_CONFIG"))
# Triton specializes integer arguments on their value (1, a multiple of 16): a dropout seed would then compile
# the kernel again mid-run, for one seed in sixteen.
_SEED = ["seed"]
_GROUP_M = 8            # output tiles visited in groups of 8 row-blocks, so W tiles stay in L2
_SPLIT_ALIGN = 128      # token-sum splits start on multiples of the largest BLOCK_M
_TARGET_PROGRAMS = 256  # about two programs per SM on an H100 (132 SMs)


def as_configs(candidates):
    """triton.Config of each (meta, num_warps, num_stages)."""
    return [triton.Config(meta, num_warps=warps, num_stages=stages) for meta, warps, stages in candidates]


def _configs(small, tuned):
    """The autotune candidates: the tuned ones, or the one small config (interpreter, GPU tests)."""
    return as_configs([(small, 4, 1)] if _ONE_SMALL_CONFIG else tuned)


def _mm(bm, bn, bk):
    return {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk}


# Hopper-sized tiles for the big GEMMs; BLOCK_K=32 ones fit the shared memory of fp32 inputs.
MATMUL_TUNED = [
    (_mm(128, 256, 64), 8, 3), (_mm(256, 128, 64), 8, 3), (_mm(128, 128, 64), 8, 4),
    (_mm(128, 128, 64), 4, 4), (_mm(128, 64, 64), 4, 4), (_mm(64, 128, 64), 4, 4),
    (_mm(64, 64, 64), 4, 4), (_mm(128, 128, 32), 4, 4), (_mm(64, 64, 32), 4, 4),
]
# The rank-R products are memory-bound: many small row blocks keep every SM streaming.
DOWN_TUNED = [
    ({"BLOCK_M": 32, "BLOCK_K": 128}, 4, 3), ({"BLOCK_M": 64, "BLOCK_K": 128}, 4, 3),
    ({"BLOCK_M": 64, "BLOCK_K": 64}, 4, 4), ({"BLOCK_M": 128, "BLOCK_K": 64}, 8, 3),
    ({"BLOCK_M": 32, "BLOCK_K": 64}, 4, 4),
]
TOKEN_SUM_TUNED = [
    ({"BLOCK_P": 64, "BLOCK_M": 64}, 4, 3), ({"BLOCK_P": 128, "BLOCK_M": 64}, 4, 3),
    ({"BLOCK_P": 64, "BLOCK_M": 128}, 4, 3), ({"BLOCK_P": 128, "BLOCK_M": 128}, 8, 3),
]
_MATMUL_CONFIGS = _configs(_mm(32, 32, 32), MATMUL_TUNED)
_DOWN_CONFIGS = _configs({"BLOCK_M": 32, "BLOCK_K": 32}, DOWN_TUNED)
_TOKEN_SUM_CONFIGS = _configs({"BLOCK_P": 32, "BLOCK_M": 32}, TOKEN_SUM_TUNED)


@triton.jit
def _keep(seed, rows, cols, n_cols, p):
    """Dropout keep-mask of the tile rows × cols of an (M × n_cols) input."""
    return tl.rand(seed, rows.to(tl.int64)[:, None] * n_cols + cols[None, :]) >= p


@triton.autotune(configs=_DOWN_CONFIGS, key=["M_BUCKET", "K", "R"])
@triton.jit(do_not_specialize=_SEED)
def _down_proj_kernel(X, V, Out, M, K, R, M_BUCKET,
                      stride_xm, stride_xk, stride_vr, stride_vk, stride_om, stride_or,
                      seed, p,
                      DROPOUT: tl.constexpr, PRECISION: tl.constexpr, BLOCK_R: tl.constexpr,
                      BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    """Out (M×R) = drop(X) Vᵀ, for X: M×K and V: R×K. Each program owns BLOCK_M whole rows."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    ranks = tl.arange(0, BLOCK_R)
    acc = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        cols = k0 + tl.arange(0, BLOCK_K)
        x = tl.load(X + rows[:, None] * stride_xm + cols[None, :] * stride_xk,
                    mask=(rows[:, None] < M) & (cols[None, :] < K), other=0.0)
        if DROPOUT:
            x = tl.where(_keep(seed, rows, cols, K, p), x, 0.0).to(x.dtype)
        v_t = tl.load(V + ranks[None, :] * stride_vr + cols[:, None] * stride_vk,
                      mask=(ranks[None, :] < R) & (cols[:, None] < K), other=0.0).to(x.dtype)
        acc = tl.dot(x, v_t, acc, input_precision=PRECISION)
    if DROPOUT:
        acc = acc / (1 - p)
    tl.store(Out + rows[:, None] * stride_om + ranks[None, :] * stride_or, acc.to(Out.dtype.element_ty),
             mask=(rows[:, None] < M) & (ranks[None, :] < R))


@triton.autotune(configs=_MATMUL_CONFIGS, key=["M_BUCKET", "N", "K", "R"])
@triton.jit(do_not_specialize=_SEED)
def _lora_matmul_kernel(X, W, D, U, V, Bias, Out, M, N, K, R, M_BUCKET,
                        stride_xm, stride_xk, stride_wn, stride_wk, stride_dr, stride_dk,
                        stride_um, stride_ur, stride_vn, stride_vr, stride_om, stride_on,
                        scaling, seed, p,
                        DOWN_IN_LOOP: tl.constexpr, HAS_BIAS: tl.constexpr, DROPOUT: tl.constexpr,
                        PRECISION: tl.constexpr, BLOCK_R: tl.constexpr, GROUP_M: tl.constexpr,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """Out (M×N) = X Wᵀ + s · drop(U Vᵀ) + bias, for X: M×K, W: N×K, U: M×R, V: N×R.

    U = X Dᵀ (D: R×K) is either given or, with DOWN_IN_LOOP, accumulated in the same pass over
    X (every column of tiles recomputes it, costing R/BLOCK_N more dot work instead of a
    second read of X) and written out by the first column. The dropout here is on the
    rank-R term of the output (dx's); the forward's is inside a given U.
    """
    pid = tl.program_id(0)
    tiles_m, tiles_n = tl.cdiv(M, BLOCK_M), tl.cdiv(N, BLOCK_N)
    group = pid // (GROUP_M * tiles_n)
    group_rows = min(tiles_m - group * GROUP_M, GROUP_M)
    pid_m = group * GROUP_M + (pid % (GROUP_M * tiles_n)) % group_rows
    pid_n = (pid % (GROUP_M * tiles_n)) // group_rows
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    ranks = tl.arange(0, BLOCK_R)
    row_ok, rank_ok = rows[:, None] < M, ranks[None, :] < R

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    u_acc = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        x = tl.load(X + rows[:, None] * stride_xm + ks[None, :] * stride_xk,
                    mask=row_ok & (ks[None, :] < K), other=0.0)
        w_t = tl.load(W + cols[None, :] * stride_wn + ks[:, None] * stride_wk,
                      mask=(cols[None, :] < N) & (ks[:, None] < K), other=0.0)
        acc = tl.dot(x, w_t, acc, input_precision=PRECISION)
        if DOWN_IN_LOOP:
            d_t = tl.load(D + ranks[None, :] * stride_dr + ks[:, None] * stride_dk,
                          mask=rank_ok & (ks[:, None] < K), other=0.0).to(x.dtype)
            u_acc = tl.dot(x, d_t, u_acc, input_precision=PRECISION)

    # Epilogue: the rank-R term, then the bias, while the tile is still in registers.
    u_ptrs = U + rows[:, None] * stride_um + ranks[None, :] * stride_ur
    if DOWN_IN_LOOP:
        u = u_acc.to(Out.dtype.element_ty)
        if pid_n == 0:
            tl.store(u_ptrs, u, mask=row_ok & rank_ok)
    else:
        u = tl.load(u_ptrs, mask=row_ok & rank_ok, other=0.0)
    v_t = tl.load(V + cols[None, :] * stride_vn + ranks[:, None] * stride_vr,
                  mask=(cols[None, :] < N) & (ranks[:, None] < R), other=0.0).to(u.dtype)
    if DROPOUT:
        # The mask acts on the rank-R term alone, so it needs its own accumulator.
        low_rank = tl.dot(u, v_t, input_precision=PRECISION)
        acc += tl.where(_keep(seed, rows, cols, N, p), low_rank * (scaling / (1 - p)), 0.0)
    else:
        # Scaling u (one rounding in 16-bit) lets the dot accumulate straight into acc.
        acc = tl.dot((u * scaling).to(u.dtype), v_t, acc, input_precision=PRECISION)
    if HAS_BIAS:
        acc += tl.load(Bias + cols, mask=cols < N, other=0.0).to(tl.float32)[None, :]
    tl.store(Out + rows[:, None] * stride_om + cols[None, :] * stride_on, acc.to(Out.dtype.element_ty),
             mask=row_ok & (cols[None, :] < N))


@triton.autotune(configs=_TOKEN_SUM_CONFIGS, key=["M_BUCKET", "P", "R"])
@triton.jit(do_not_specialize=_SEED)
def _token_sum_kernel(X, Y, Out, M, P, R, M_BUCKET, rows_per_split,
                      stride_xm, stride_xp, stride_ym, stride_yr, stride_os, stride_op, stride_or,
                      scale, seed, p,
                      DROPOUT: tl.constexpr, PRECISION: tl.constexpr, BLOCK_R: tl.constexpr,
                      BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr):
    """Out[split] (P×R) = scale · drop(X)ᵀ Y over the split's tokens, for X: M×P, Y: M×R.

    The sum runs over all M tokens but the output is small, so the tokens are split across
    programs (axis 1) into fp32 partials that the host adds: deterministic, unlike atomics.
    """
    cols = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    first_row = tl.program_id(1) * rows_per_split
    end_row = min(first_row + rows_per_split, M)
    ranks = tl.arange(0, BLOCK_R)
    acc = tl.zeros((BLOCK_P, BLOCK_R), dtype=tl.float32)
    for m0 in range(first_row, end_row, BLOCK_M):
        rows = m0 + tl.arange(0, BLOCK_M)
        x = tl.load(X + rows[:, None] * stride_xm + cols[None, :] * stride_xp,
                    mask=(rows[:, None] < end_row) & (cols[None, :] < P), other=0.0)
        if DROPOUT:
            x = tl.where(_keep(seed, rows, cols, P, p), x, 0.0).to(x.dtype)
        y = tl.load(Y + rows[:, None] * stride_ym + ranks[None, :] * stride_yr,
                    mask=(rows[:, None] < end_row) & (ranks[None, :] < R), other=0.0).to(x.dtype)
        acc = tl.dot(tl.trans(x), y, acc, input_precision=PRECISION)
    if DROPOUT:
        scale = scale / (1 - p)
    tl.store(Out + tl.program_id(1) * stride_os + cols[:, None] * stride_op + ranks[None, :] * stride_or,
             acc * scale, mask=(cols[:, None] < P) & (ranks[None, :] < R))


@triton.jit(do_not_specialize=_SEED)
def _keep_mask_kernel(Out, M, K, seed, p, BLOCK: tl.constexpr):
    """Out (M×K, int8) = the keep-mask, materialised for tests."""
    rows = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    tl.store(Out + rows[:, None] * K + cols[None, :], _keep(seed, rows, cols, K, p).to(tl.int8),
             mask=(rows[:, None] < M) & (cols[None, :] < K))


def _empty(shape, dtype, device):
    """Every buffer a kernel writes comes from here (tests swap in NaN-filled ones)."""
    return torch.empty(shape, dtype=dtype, device=device)


def _precision(dtype):
    """fp32 operands use TF32 tensor cores only where torch's matmuls would."""
    highest = dtype == torch.float32 and torch.get_float32_matmul_precision() == "highest"
    return "ieee" if highest else "tf32"


def _block_r(rank):
    return max(16, triton.next_power_of_2(rank))  # tl.dot needs every dimension ≥ 16


def _down_proj(x, v, p, seed):
    """drop(x) vᵀ in x's dtype, for x: M×K and v: R×K (any strides)."""
    (M, K), R = x.shape, v.shape[0]
    out = _empty((M, R), x.dtype, x.device)
    grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]),)
    _down_proj_kernel[grid](x, v, out, M, K, R, triton.next_power_of_2(M),
                            *x.stride(), *v.stride(), *out.stride(), seed, p,
                            DROPOUT=p > 0, PRECISION=_precision(x.dtype), BLOCK_R=_block_r(R))
    return out


def _lora_matmul(x, w, v, bias, scaling, p, seed, u=None, down=None):
    """(x wᵀ + s · drop(u vᵀ) + bias, u) in x's dtype, for x: M×K, w: N×K, v: N×R.

    Pass u (M×R), or `down` (R×K) to have the kernel compute u = x downᵀ on its way.
    """
    (M, K), N, R = x.shape, w.shape[0], v.shape[1]
    out = _empty((M, N), x.dtype, x.device)
    down_in_loop = u is None
    if down_in_loop:
        u = _empty((M, R), x.dtype, x.device)
    else:
        down = u  # never read: any tensor serves as the pointer
    grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]) * triton.cdiv(N, meta["BLOCK_N"]),)
    _lora_matmul_kernel[grid](x, w, down, u, v, out if bias is None else bias, out, M, N, K, R,
                              triton.next_power_of_2(M), *x.stride(), *w.stride(), *down.stride(),
                              *u.stride(), *v.stride(), *out.stride(), scaling, seed, p,
                              DOWN_IN_LOOP=down_in_loop, HAS_BIAS=bias is not None, DROPOUT=p > 0,
                              PRECISION=_precision(x.dtype), BLOCK_R=_block_r(R), GROUP_M=_GROUP_M)
    return out, u


def _token_splits(M, P):
    """(splits, rows per split) for a token sum: enough programs to fill the GPU, and no
    more partials than that (their P×R fp32 buffers cost memory and a final sum)."""
    programs_along_p = triton.cdiv(P, 64)  # at the smallest tuned BLOCK_P
    wanted = max(1, min(triton.cdiv(_TARGET_PROGRAMS, programs_along_p), triton.cdiv(M, _SPLIT_ALIGN)))
    rows_per_split = triton.cdiv(triton.cdiv(M, wanted), _SPLIT_ALIGN) * _SPLIT_ALIGN
    return triton.cdiv(M, rows_per_split), rows_per_split


def _token_sum(x, y, scale, p, seed, rank_major):
    """scale · drop(x)ᵀ y in fp32, for x: M×P and y: M×R; shaped R×P if rank_major, else P×R."""
    (M, P), R = x.shape, y.shape[1]
    splits, rows_per_split = _token_splits(M, P)
    partials = _empty((splits, R, P) if rank_major else (splits, P, R), torch.float32, x.device)
    stride_split, stride_rank, stride_col = partials.stride() if rank_major else (
        partials.stride(0), partials.stride(2), partials.stride(1))
    grid = lambda meta: (triton.cdiv(P, meta["BLOCK_P"]), splits)
    _token_sum_kernel[grid](x, y, partials, M, P, R, triton.next_power_of_2(M), rows_per_split,
                            *x.stride(), *y.stride(), stride_split, stride_col, stride_rank,
                            scale, seed, p,
                            DROPOUT=p > 0, PRECISION=_precision(x.dtype), BLOCK_R=_block_r(R))
    return partials[0] if splits == 1 else partials.sum(0)


def keep_mask(rows, cols, p, seed, device):
    """The dropout keep-mask (True = kept) that the kernels use for a rows×cols input."""
    out = _empty((rows, cols), torch.int8, device)
    block = 32
    _keep_mask_kernel[(triton.cdiv(rows, block), triton.cdiv(cols, block))](out, rows, cols, seed, p, BLOCK=block)
    return out.bool()


def lora_forward(x, weight, bias, lora_A, lora_B, scaling, p, seed):
    """Returns (y, u): y = x Wᵀ + b + s·u Bᵀ with u = drop(x) Aᵀ."""
    if p > 0:  # every column of tiles would regenerate the mask: compute u once instead
        u = _down_proj(x, lora_A, p, seed)
        return _lora_matmul(x, weight, lora_B, bias, scaling, 0.0, seed, u=u)
    return _lora_matmul(x, weight, lora_B, bias, scaling, 0.0, seed, down=lora_A)


def lora_backward(dy, x, weight, lora_A, lora_B, u, scaling, p, seed, need_dx, need_dA, need_dB):
    """Returns (dx, dA, dB), each None unless asked for; dA and dB accumulate in fp32."""
    dx = dA = dB = None
    if need_dx:  # one pass over dy yields both dy W and g = dy B
        dx, g = _lora_matmul(dy, weight.t(), lora_A.t(), None, scaling, p, seed, down=lora_B.t())
    elif need_dA:
        g = _down_proj(dy, lora_B.t(), 0.0, seed)
    if need_dA:
        dA = _token_sum(x, g, scaling, p, seed, rank_major=True).to(lora_A.dtype)
    if need_dB:
        dB = _token_sum(dy, u, scaling, 0.0, seed, rank_major=False).to(lora_B.dtype)
    return dx, dA, dB
