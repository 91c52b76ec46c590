"""The model's linear layer, y = x Wᵀ + b, with a faster CPU path for decoding's few rows in bf16.

Decoding multiplies each weight W (out × in) by one row per sequence. On CPU, torch computes a
bf16 `x @ W.t()` with few rows well below the speed that the same products reach as `W @ x.t()`
(W as the left operand, not transposed), and with one row as the matrix-vector product `torch.mv`.
For the 211 products of a SmolLM2 decoding step: 1.3–1.4× faster at one row, from 1.3× at 2 rows
to 1.1× at 16 after copying (W xᵀ)ᵀ back into x Wᵀ's layout (without the copy the gain is larger, but a
transposed q sends the attention to its slow path and the cache writes become strided copies);
from about 24 rows on the copy costs what the product gains (benchmarks/results/linear-cpu-2026-11-30/).
A whole decoding step gets 1.3× faster at batch 1 and 1.1× at batch 16. In fp32 and fp16
`x @ W.t()` is as fast or faster, so they keep it.

The fast path runs only where nothing is recorded for autograd (inference, and LoRA's own
forward, whose backward is written out) and for at most SKINNY_ROWS rows; prefills and training
batches, with more rows, use `F.linear`.
"""
import torch
import torch.nn.functional as F
from torch import nn

from model.kernels import needs_graph

SKINNY_ROWS = 16


def linear(x: torch.Tensor, weight: torch.Tensor, bias=None) -> torch.Tensor:
    """x Wᵀ + b for x (..., in), W (out, in), b (out,) or None."""
    if (x.dtype is not torch.bfloat16 or x.device.type != "cpu" or x.numel() > SKINNY_ROWS * x.shape[-1]
            or needs_graph(x, weight, *(() if bias is None else (bias,)))):
        return F.linear(x, weight, bias)
    rows = x.numel() // x.shape[-1]
    if rows == 1:
        vector = x.reshape(-1)
        out = torch.mv(weight, vector) if bias is None else torch.addmv(bias, weight, vector)
    else:
        flat = x.reshape(rows, x.shape[-1]).t()
        out = (weight @ flat if bias is None else torch.addmm(bias[:, None], weight, flat)).t().contiguous()
    return out.view(*x.shape[:-1], weight.shape[0])


class Linear(nn.Linear):
    """nn.Linear (same parameters and state dict) whose forward is `linear` above."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
