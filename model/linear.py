"""The model's linear layer, y = x Wᵀ + b, with a faster CPU path for decoding's few rows in bf16.

Decoding multiplies each weight W (out × in) by one row per sequence. On CPU, torch computes a
bf16 `x @ W.t()` with few rows well below the speed that the same products reach as `W @ x.t()`
(W as the left operand, not transposed), and with one row as the matrix-vector product `torch.mv`.
For the 211 products of a SmolLM2 decoding step: 1.3–1.4× faster at one row, from 1.3× at 2 rows
to 1.1× at 16 after copying (W xᵀ)ᵀ back into x Wᵀ's layout (without the copy the gain is larger, but a
transposed q sends the attention to its slow path and the cache writes become strided copies);
from about 24 rows on the copy costs what the product gains (benchmarks/results/linear-cpu-2026-11-30/).
A whole decoding step gets 1.3× faster at batch 1 and 1.1× at batch 16. In fp32 and fp16
`x @ W.t()` is as fast or faster, so they keep it. The MLP skips the copy (`contiguous=False`):
silu(gate)·up keeps (W xᵀ)ᵀ's layout, which is the layout down_proj's `W @ x.t()` reads without a
copy, and each layer saves a 16 × 3,072 transposing copy (+2.6% at SmolLM2 batch 16 in an A/B).

The fast path runs only where nothing is recorded for autograd (inference, and LoRA's own
forward, whose backward is written out) and for at most SKINNY_ROWS rows; prefills and training
batches, with more rows, use `F.linear`.

Each such bf16 product also pays a fixed ~12 µs in torch's oneDNN call, as long as a small product
itself (benchmarks/results/decode-cpu-2026-11-30/). Layers that read the same input — q, k, v;
gate, up — can share one call: `fuse_storage` lays their weights out back to back in one tensor
(each parameter a view of its rows: same values, same Parameter objects, same state dict) and
`project` then multiplies by all of them at once: a SmolLM2 bf16 decoding step gets ~6% faster.
`build_model` lays out every CPU bf16 model so (and `generate()` one converted to bf16 later). In
training the frozen gate and up then share one product too, and so does their input gradient:
bf16 products with a long inner dimension run nearly twice as fast here, and a bf16 training step
of the Qwen2.5-0.5B shape gets ~4% faster (benchmarks/results/train-equal-cpu-2026-12-01/).
"""
import torch
import torch.nn.functional as F
from torch import nn

from model.kernels import needs_graph

SKINNY_ROWS = 16


def linear(x: torch.Tensor, weight: torch.Tensor, bias=None, contiguous: bool = True) -> torch.Tensor:
    """x Wᵀ + b for x (..., in), W (out, in), b (out,) or None; contiguous=False lets the result be a
    transposed view (no copy), for callers whose next operations are elementwise."""
    rows = x.numel() // x.shape[-1]
    if x.dtype is not torch.bfloat16 or not x.is_cpu or rows > SKINNY_ROWS or needs_graph(x, weight, bias):
        return F.linear(x, weight, bias)
    if rows == 1:
        vector = x.reshape(-1)
        out = torch.mv(weight, vector) if bias is None else torch.addmv(bias, weight, vector)
    else:
        flat = x.reshape(rows, x.shape[-1]).t()
        out = (weight @ flat if bias is None else torch.addmm(bias[:, None], weight, flat)).t()
        out = out.contiguous() if contiguous else out
    return out.view(*x.shape[:-1], weight.shape[0])


class Linear(nn.Linear):
    """nn.Linear (same parameters and state dict) whose forward is `linear` above."""

    # Set by fuse_storage on the first layer of a group: (weight, bias, where each layer's rows are). It keeps
    # that storage alive, so the addresses checked in joint_parameters can't be reused by other tensors.
    joint = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


def fuse_storage(*layers: Linear) -> None:
    """Move the layers' weights (and biases) into one tensor, back to back, each parameter a view of its rows."""
    # Outside inference mode even when called from generate(): the parameters must still train later.
    with torch.inference_mode(False), torch.no_grad():
        joint = []
        for name in ("weight", "bias"):
            params = [getattr(layer, name) for layer in layers]
            if any(p is None for p in params):
                joint.append(None)
                continue
            joint.append(torch.cat([p.detach() for p in params]))
            for param, rows in zip(params, joint[-1].split([len(p) for p in params])):
                param.data = rows
    layers[0].joint = (*joint, _addresses(layers))


def _addresses(layers) -> tuple:
    return tuple((layer.weight.data_ptr(), None if layer.bias is None else layer.bias.data_ptr()) for layer in layers)


def joint_parameters(layers) -> tuple:
    """(weight, bias) of the layers as one, if `fuse_storage` laid them out and they are still plain
    `Linear`s reading those rows (not wrapped by LoRA, no parameter replaced since); else None."""
    joint = getattr(layers[0], "joint", None)
    if joint is None or not all(type(layer) is Linear for layer in layers) or _addresses(layers) != joint[2]:
        return None
    return joint[:2]


def project(x: torch.Tensor, *layers: nn.Module, contiguous: bool = True) -> tuple:
    """(layer(x) for each layer): one `linear` over the joint parameters when the layers have them and
    none of those needs a gradient (none could flow back through the joint tensors); each layer on its
    own otherwise. contiguous=False: as in `linear`.

    Under autograd the input's gradient then comes from one product too, [∂y₁ | ∂y₂] · [W₁; W₂]: in
    bf16 on CPU products with a long inner dimension run nearly twice as fast."""
    joint = joint_parameters(layers)
    # is_grad_enabled first: decoding never walks the parameters.
    if joint is None or torch.is_grad_enabled() and any(p.requires_grad for layer in layers for p in layer.parameters()):
        return tuple(layer(x) for layer in layers)
    return linear(x, *joint, contiguous=contiguous).split([layer.out_features for layer in layers], dim=-1)
