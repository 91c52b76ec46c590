"""Fused ops for the rest of the training step: RMSNorm, RoPE, SwiGLU and the cross-entropy's softmax.

Each op has two implementations of the same maths behind one autograd Function with an explicit
backward, as LoRA does (lora/layer.py): `TorchOps` below, the readable reference and the CPU
path (its forward is exactly what the model computed before), and the Triton kernels in
`model/kernels_triton.py`, for CUDA tensors, which compute in fp32 and round each output once to
the activations' dtype. N tokens, H hidden size, I MLP inner size, D head size, V vocabulary,
b bytes per activation (2 in bf16); "moves" counts the memory traffic of the Triton kernels.

RMSNorm   n = x·r,  r = 1/sqrt(mean(x²) + ε),  y = w · cast(n)           (HF's cast order)
          dx = r · (g − n · mean(g·n)),  g = dy · w
          dw = Σ_tokens dy · cast(n)                                     only if w trains
          saves x (alive anyway) and r (4 bytes a token); autograd on the plain expression
          keeps x in fp32 as well, a copy in a bf16 model.
          moves forward 2bNH + 4N, backward 3bNH + 4N (+ fp32 partial sums of dw, 4H bytes for
          each of 1024 programs, when w trains)
RoPE      per head, with c = cos(p·θ), s = sin(p·θ) at the token's own position p (packed rows
          restart p), y₁ = x₁c − x₂s,  y₂ = x₂c + x₁s  for the halves x₁ = x[:D/2], x₂ = x[D/2:]
          (HF's x·cos + rotate_half(x)·sin). A rotation: the backward is the inverse, s → −s.
          The tables hold (c, c) and (−s, s) for each token, made once per forward (`rope_tables`):
          then y = x·cos + roll(x)·sin, roll(x) = (x₂, x₁), with no sign to apply per layer.
          q and k in one launch, one program per token. saves only the cos and sin tables.
          moves 2bND·(heads_q + heads_kv) + bND (half of each table) per pass
SwiGLU    y = silu(g)·u,  silu(g) = g·σ(g)
          dg = dy · u · σ(g)·(1 + g·(1 − σ(g))),  du = dy · silu(g)      σ recomputed in backward
          saves g and u only (autograd would also keep silu(g), N×I more).
          moves forward 3bNI, backward 5bNI
Cross-entropy, per chunk of logits z (rows × V, model/loss.py's chunk loop)
          ℓ = logsumexp(z) − z[y];  then z is overwritten by its gradient softmax(z) − onehot(y)
          The Triton kernel keeps z in the model's dtype (the torch path makes an fp32 copy): an
          online logsumexp pass, then a pass writing the gradient in place.
          moves 3bV a row (read twice, written once), 1bV without gradient

The backend ('auto': Triton for CUDA tensors, torch otherwise) is chosen per call with
`use_backend`; tests force 'triton' on CPU tensors under TRITON_INTERPRET=1.
"""
import contextlib
import functools
import importlib.util

import torch
import torch.nn.functional as F

from common.errors import PhysloraError

BACKENDS = ("auto", "torch", "triton")
_backend = "auto"


@contextlib.contextmanager
def use_backend(name: str):
    """Run the fused ops with backend `name` inside the block: 'auto', 'torch' or 'triton'."""
    global _backend
    if name not in BACKENDS:
        raise PhysloraError(f"fused kernels backend: got {name!r}; use one of {', '.join(BACKENDS)}")
    previous, _backend = _backend, name
    try:
        yield
    finally:
        _backend = previous


@functools.cache
def _triton_kernels():
    """model.kernels_triton, or None without triton: imported lazily so the package imports where it is absent."""
    if importlib.util.find_spec("triton") is None:
        return None
    from model import kernels_triton
    return kernels_triton


def ops_for(x: torch.Tensor):
    """The implementation the current backend runs for tensor x: TorchOps or model.kernels_triton."""
    if _backend == "torch" or (_backend == "auto" and not x.is_cuda):
        return TorchOps
    kernels = _triton_kernels()
    if kernels is None:
        if _backend == "auto":
            return TorchOps
        raise PhysloraError("fused kernels backend 'triton': triton is not installed; "
                            "pip install triton, or use backend 'torch'")
    return kernels


class TorchOps:
    """The maths in plain torch. Norm rows are tokens (N × H); the forward takes any leading dimensions."""

    @staticmethod
    def rms_norm_forward(x, weight, eps):
        """(y, r) with r = 1/sqrt(mean(x²) + ε) in fp32, kept for the backward. The sum of squares is
        taken in fp32 straight from x, and x·r promotes to fp32: no fp32 copy of x is made."""
        squares = torch.linalg.vector_norm(x, dim=-1, keepdim=True, dtype=torch.float32).square_()
        rstd = squares.div_(x.shape[-1]).add_(eps).rsqrt_()
        return (x * rstd).to(x.dtype).mul_(weight), rstd  # in place: in fp32 one N×H tensor made, not two

    @staticmethod
    def rms_norm(x, weight, eps):
        """y alone, where no backward follows: torch's own op (fp32 inside, cast before the weight multiply)
        gives HF's numbers bit for bit, in two operator calls instead of eight, ~25% faster at decoding's
        one row a sequence."""
        return F.rms_norm(x, x.shape[-1:], eps=eps).mul_(weight)

    @staticmethod
    def rms_norm_backward(dy, x, weight, rstd, need_dweight):
        """(dx, dw); dw is None unless asked for. With g = dy·w (fp32),
        dx = r·g − x·r³·mean(g·x): no fp32 copy of x or of the normalised rows is made."""
        g = dy * weight.float()
        coefficient = (g * x).mean(-1, keepdim=True).mul_(rstd.pow(3))
        dx = torch.addcmul(g.mul_(rstd), x, coefficient, value=-1)
        dw = (dy.float() * (x * rstd).to(x.dtype)).sum(0).to(weight.dtype) if need_dweight else None
        return dx.to(x.dtype), dw

    @staticmethod
    def rope(q, k, cos, sin, inverse=False):
        """q and k rotated by the angles of the tables (the inverse rotation if asked).

        HF's x·cos + rotate_half(x)·sin, rotate_half(x) = (−x₂, x₁), written as x·cos + roll(x)·sin with
        roll(x) = (x₂, x₁) and sin's first half negated in the table: three passes over x (a product, a roll,
        a multiply-add) instead of five, ~27% less time for a bf16 training micro-batch on CPU
        (benchmarks/results/kernels-cpu-2026-12-01/).
        The multiply-add goes into x·cos in place, which keeps x's memory layout (q is a transposed view:
        rolling first would give a contiguous result, and attention's output would then need a copy)."""
        half = q.shape[-1] // 2
        return tuple((x * cos).addcmul_(x.roll(half, dims=-1), sin, value=-1 if inverse else 1) for x in (q, k))

    @staticmethod
    def swiglu_forward(gate, up):
        return F.silu(gate).mul_(up)

    @staticmethod
    def swiglu_backward(dy, gate, up):
        """(d gate, d up): autograd's numbers, as fast on CPU (silu_backward is its fused kernel for
        dy·σ(g)(1 + g(1 − σ(g))), a third of the time of writing that out), one N×I tensor less saved."""
        return torch.ops.aten.silu_backward(dy * up, gate), F.silu(gate).mul_(dy)

    @staticmethod
    def cross_entropy_(logits, targets, need_grad):
        """(Σ_rows logsumexp(z) − z[y] in fp32, softmax(z) − onehot(y) or None) for logits z (rows × V).

        May overwrite the logits: the gradient is written over their fp32 version (the logits
        themselves when they are fp32).
        """
        logits = logits.float()
        target_logits = logits.gather(1, targets[:, None]).squeeze(1)
        peak = logits.amax(dim=-1, keepdim=True)
        exp = logits.sub_(peak).exp_()  # in place: exp(z − max z), one pass for the loss and the softmax
        sums = exp.sum(dim=-1)
        loss = (peak.squeeze(1) + sums.log() - target_logits).sum()  # logsumexp(z) − z[y]
        if not need_grad:
            return loss, None
        grad = exp.div_(sums[:, None])  # softmax(z)
        grad[torch.arange(len(grad)), targets] -= 1
        return loss, grad


class _RMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps, ops):
        y, rstd = ops.rms_norm_forward(x, weight, eps)
        ctx.save_for_backward(x, weight, rstd)
        ctx.ops = ops
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, rstd = ctx.saved_tensors
        dx, dw = ctx.ops.rms_norm_backward(dy, x, weight, rstd, ctx.needs_input_grad[1])
        return dx, dw, None, None


class _RoPE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, cos, sin, ops):
        ctx.save_for_backward(cos, sin)
        ctx.ops = ops
        return ops.rope(q, k, cos, sin)

    @staticmethod
    def backward(ctx, dq, dk):
        cos, sin = ctx.saved_tensors
        return *ctx.ops.rope(dq, dk, cos, sin, inverse=True), None, None, None


class _SwiGLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gate, up, ops):
        ctx.save_for_backward(gate, up)
        ctx.ops = ops
        return ops.swiglu_forward(gate, up)

    @staticmethod
    def backward(ctx, dy):
        return *ctx.ops.swiglu_backward(dy, *ctx.saved_tensors), None


def needs_graph(*tensors) -> bool:
    """Whether autograd must record the op; without it (inference, frozen inputs) the Functions'
    bookkeeping is skipped, which is most of an op's cost at decoding's one token a row."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """w · x / sqrt(mean(x²) + ε) over the last dimension, normalised in fp32 and cast to x's dtype
    before the weight multiply (HF's order). w gets a gradient only if it requires one."""
    ops = ops_for(x)
    if needs_graph(x, weight):
        return _RMSNorm.apply(x.reshape(-1, x.shape[-1]), weight, eps, ops).view(x.shape)
    return ops.rms_norm(x, weight, eps)


def rope_tables(angles: torch.Tensor, dtype) -> tuple:
    """(cos, sin) tables (..., D) for the angles (..., D/2) of each token, as `rope` takes them: cos θ in
    both halves, and −sin θ then sin θ."""
    angles = torch.cat((angles, angles), dim=-1)
    cos, sin = angles.cos().to(dtype), angles.sin().to(dtype)
    sin[..., :angles.shape[-1] // 2].neg_()
    return cos, sin


def rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """(q, k) rotated: HF's x·cos + rotate_half(x)·sin for q (batch, heads, length, D), k (batch, kv_heads,
    length, D) and tables (batch or 1, 1, length, D) of each token's angles made by `rope_tables`."""
    if needs_graph(q, k):
        return _RoPE.apply(q, k, cos, sin, ops_for(q))
    return ops_for(q).rope(q, k, cos, sin)


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """silu(gate) · up, elementwise."""
    if needs_graph(gate, up):
        return _SwiGLU.apply(gate, up, ops_for(gate))
    return ops_for(gate).swiglu_forward(gate, up)
