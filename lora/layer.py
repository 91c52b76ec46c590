"""LoRA: a frozen linear layer plus a trainable low-rank update.

For a frozen base weight W (out×in) and bias b, LoRA trains A (r×in) and B (out×r):

    y = x Wᵀ + b + s · (drop(x) Aᵀ) Bᵀ,        s = alpha / r   (rsLoRA: alpha / √r)

where drop(x) = keep ⊙ x / (1 - p) is inverted dropout on the LoRA branch only. With
u = drop(x) Aᵀ (tokens × r) and g = dy B (tokens × r), the backward pass is

    dx = dy W + s · drop(g A)        (the derivative of dropout is dropout with the same mask)
    dA = s · gᵀ drop(x)
    dB = s · dyᵀ u

A starts kaiming-uniform and B at zero (as PEFT), so training starts from the base model.
The only saved activations are x (which autograd keeps alive anyway as the previous
layer's output) and u (tokens × r); the dropout mask is regenerated from a seed (once per
backward: dx and dA share it).

Two implementations of the same maths share one autograd Function: `TorchOps` below (the
readable reference, and the CPU path) and the fused Triton kernels in `lora/kernels.py`
(used for CUDA tensors). Both expose `lora_forward`, `lora_backward` and `keep_mask`.
"""
import importlib.util
import math

import numpy as np
import torch
from torch import nn

from common.errors import PhysloraError
from model.kernels import needs_graph
from model.linear import linear

BACKENDS = ("auto", "torch", "triton")


class TorchOps:
    """The LoRA maths in plain torch, on 2-D inputs (tokens × features)."""

    @staticmethod
    def keep_mask(rows, cols, p, seed, device, dtype=torch.bool):
        """Dropout keep-mask (True, or 1 in `dtype`, = kept) for a rows×cols input, a pure function of the seed.

        Drawn as 16-bit integers from numpy's PCG64, which is 3× faster than torch's serial CPU
        generator (mt19937) and made this mask the largest cost of a CPU training step: each raw
        64-bit output is four of them (a third faster than asking numpy for bounded integers). p is
        thereby rounded to a multiple of 2⁻¹⁶ (0.05 keeps 1 − 0.0500031).
        """
        count = rows * cols
        words = np.random.default_rng(seed).bit_generator.random_raw(-(-count // 4))
        keep = words.view(np.uint16)[:count].reshape(rows, cols) >= round(p * 2**16)
        return torch.from_numpy(keep.view(np.uint8)).to(device, dtype)  # uint8: the layer's, no cast at all

    @staticmethod
    def lora_forward(x, weight, bias, lora_A, lora_B, scaling, p, seed):
        """Returns (y, u) with u = drop(x) Aᵀ saved for dB."""
        # Dropout multiplies x by a uint8 0/1 mask (exact, in x's dtype, and 5× faster than torch.where on
        # bf16); its 1/(1 − p) goes into A, a product the rounding to x's dtype happens in anyway. The dropped
        # copy of x lives for this one line, freed before y exists: on CPU a temporary freed after a kept
        # tensor leaves a heap hole (common/memory.py; fp32 step peak −0.04 GiB,
        # benchmarks/results/lora-dropout-memory-cpu-2026-12-01/).
        if p > 0:
            u = (x * TorchOps.keep_mask(*x.shape, p, seed, x.device, torch.uint8)) @ (lora_A / (1 - p)).to(x.dtype).t()
        else:
            u = x @ lora_A.to(x.dtype).t()
        y = linear(x, weight, bias)
        y.addmm_(u, lora_B.to(x.dtype).t(), alpha=scaling)  # in place: no second out-sized tensor
        return y, u

    @staticmethod
    def lora_backward(dy, x, weight, lora_A, lora_B, u, scaling, p, seed, need_dx, need_dA, need_dB):
        """Returns (dx, dA, dB), each None unless asked for; dA and dB in the parameters' dtype."""
        dx = dA = dB = None
        A = lora_A.to(dy.dtype)
        keep = None
        if p > 0 and (need_dx or need_dA):  # one mask for both; x is not saved when dA is not needed
            keep = TorchOps.keep_mask(dy.shape[0], lora_A.shape[1], p, seed, dy.device, torch.uint8)
        if need_dx or need_dA:
            g = dy @ lora_B.to(dy.dtype)
        if need_dx:
            dx = dy @ weight
            if p == 0:
                dx.addmm_(g, A, alpha=scaling)
            else:
                dx.addcmul_(g @ A, keep, value=scaling / (1 - p))
        if need_dA:
            dA = (g.t() @ (x if p == 0 else x * keep)).to(lora_A.dtype).mul_(scaling / (1 - p))
        if need_dB:
            dB = (dy.t() @ u).to(lora_B.dtype).mul_(scaling)
        return dx, dA, dB


def _ops(backend):
    if backend == "torch":
        return TorchOps
    if importlib.util.find_spec("triton") is None:
        raise PhysloraError("LoRA backend 'triton': triton is not installed; "
                            "pip install triton, or use backend='torch'")
    from lora import kernels  # lazily: the package must import where triton is absent (macOS)
    return kernels


class _LoRAFunction(torch.autograd.Function):
    """Autograd glue: the maths lives in `ops` (TorchOps or lora.kernels)."""

    @staticmethod
    def forward(ctx, x, weight, bias, lora_A, lora_B, scaling, p, seed, ops):
        y, u = ops.lora_forward(x, weight, bias, lora_A, lora_B, scaling, p, seed)
        need_dx, _, _, need_dA, need_dB = ctx.needs_input_grad[:5]
        # Save only what the requested gradients read: x for dA, u for dB, the weights for dx/dA.
        ctx.save_for_backward(x if need_dA else None, weight if need_dx else None,
                              lora_A, lora_B, u if need_dB else None)
        ctx.scaling, ctx.p, ctx.seed, ctx.ops = scaling, p, seed, ops
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, lora_A, lora_B, u = ctx.saved_tensors
        need_dx, _, _, need_dA, need_dB = ctx.needs_input_grad[:5]
        dx, dA, dB = ctx.ops.lora_backward(dy, x, weight, lora_A, lora_B, u, ctx.scaling, ctx.p, ctx.seed,
                                           need_dx, need_dA, need_dB)
        return dx, None, None, dA, dB, None, None, None, None


def lora_linear(x, weight, bias, lora_A, lora_B, scaling, dropout_p=0.0, seed=0, backend="torch"):
    """y = x Wᵀ + b + s·(drop(x) Aᵀ) Bᵀ for x of any leading shape; W and b get no gradient.

    The dropout mask is a function of `seed` alone, so forward and backward agree and a test
    can rebuild it with `ops.keep_mask`. backend: 'torch' or 'triton'.
    """
    rows, ops = x.reshape(-1, x.shape[-1]), _ops(backend)
    if needs_graph(x, lora_A, lora_B):
        y = _LoRAFunction.apply(rows, weight, bias, lora_A, lora_B, scaling, dropout_p, seed, ops)
    else:  # inference: nothing to save, so skip autograd's bookkeeping
        y = ops.lora_forward(rows, weight, bias, lora_A, lora_B, scaling, dropout_p, seed)[0]
    return y.reshape(*x.shape[:-1], weight.shape[0])


class LoRALinear(nn.Module):
    """A frozen `nn.Linear` with a trainable low-rank update; state keys weight, bias, lora_A, lora_B.

    A and B stay fp32 whatever the base dtype (they are cast to the input's dtype inside the
    op, and their gradients flow back in fp32). backend 'auto' runs the Triton kernels for
    CUDA tensors and plain torch otherwise.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0,
                 rslora: bool = False, backend: str = "auto"):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise PhysloraError(f"LoRALinear base: got {type(base).__name__}; wrap an nn.Linear")
        if not isinstance(rank, int) or rank <= 0:
            raise PhysloraError(f"LoRA rank: got {rank!r}, must be a positive integer; use e.g. 8 or 16")
        if not alpha > 0:
            raise PhysloraError(f"LoRA alpha: got {alpha!r}, must be > 0; use e.g. alpha = 2 * rank")
        if not 0 <= dropout < 1:
            raise PhysloraError(f"LoRA dropout: got {dropout!r}, must be in [0, 1); use e.g. 0.05")
        if backend not in BACKENDS:
            raise PhysloraError(f"LoRA backend: got {backend!r}; use one of {', '.join(BACKENDS)}")
        self.in_features, self.out_features = base.in_features, base.out_features
        self.rank, self.alpha, self.dropout, self.rslora, self.backend = rank, alpha, dropout, rslora, backend
        self.weight = base.weight.requires_grad_(False)
        self.bias = None if base.bias is None else base.bias.requires_grad_(False)
        device = base.weight.device
        self.lora_A = nn.Parameter(torch.empty(rank, self.in_features, device=device))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, device=device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's default init, as PEFT
        self.merged = False

    @property
    def scaling(self) -> float:
        return self.alpha / (math.sqrt(self.rank) if self.rslora else self.rank)

    def backend_for(self, x) -> str:
        """The implementation `forward` runs for input x: 'torch' or 'triton'."""
        if self.backend != "auto":
            return self.backend
        return "triton" if x.is_cuda and importlib.util.find_spec("triton") is not None else "torch"

    def forward(self, x):
        if self.merged:
            return linear(x, self.weight, self.bias)
        if x.shape[-1] != self.in_features:
            raise PhysloraError(f"LoRALinear input: last dimension is {x.shape[-1]}, the layer takes "
                                f"{self.in_features}; reshape the input or wrap a matching nn.Linear")
        if x.dtype != self.weight.dtype:
            raise PhysloraError(f"LoRALinear input: dtype {x.dtype} differs from the base weight's "
                                f"{self.weight.dtype}; cast the input or the model to one dtype")
        p = self.dropout if self.training else 0.0
        # Drawn from torch's global generator, so torch.manual_seed makes training reproducible.
        seed = int(torch.randint(2**31 - 1, ())) if p > 0 else 0
        return lora_linear(x, self.weight, self.bias, self.lora_A, self.lora_B, self.scaling, p, seed,
                           self.backend_for(x))

    def delta_weight(self):
        """s · B A, the update that `merge` adds to W (computed in fp32, cast to W's dtype)."""
        return (self.scaling * (self.lora_B @ self.lora_A)).to(self.weight.dtype)

    @torch.no_grad()
    def merge(self):
        """W += s·BA, so that forward is one plain linear (for inference: no dropout, no grads to A, B).

        No copy of W is kept: `unmerge` subtracts the same update, which restores W up to one
        rounding in W's dtype (about 1e-7 relative in fp32, 4e-3 in bf16).
        """
        if not self.merged:
            self.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self):
        if self.merged:
            self.weight -= self.delta_weight()
            self.merged = False

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, rank={self.rank}, alpha={self.alpha}, "
                f"scaling={self.scaling:.4g}, dropout={self.dropout}, rslora={self.rslora}, "
                f"backend={self.backend}, merged={self.merged}")
