"""Next-token cross-entropy that never holds the full-vocabulary logits of every token.

With h_t the final-normed hidden state at position t and W the output matrix (vocab × hidden),
the loss of a batch is the sum, over the positions whose next token is a target, of

    ℓ_t = logsumexp(z_t) − z_t[y_t],     z_t = W h_t  (the logits),  y_t = the token at t+1.

Two savings over `F.cross_entropy(lm_head(h), labels)`:

1. Positions whose next token is not a target (the prompt, padding: label IGNORE_INDEX) are
   dropped *before* the lm_head. A physics example has ~70 target tokens out of ~220, so this
   skips two thirds of the largest matmul of a small model.
2. The remaining rows go through W in chunks of `chunk_rows`; per chunk the logits are computed,
   used and freed (the per-chunk softmax is `cross_entropy_` in model/kernels.py: in torch on an
   fp32 copy, in Triton in place in the logits' dtype). The loss is the last operation of the
   graph, so its gradient is known already in the forward pass:

       ∂ℓ_t/∂z_t = softmax(z_t) − onehot(y_t),   so   ∂ℓ/∂h_t = (softmax(z_t) − onehot(y_t)) W
                                                       ∂ℓ/∂W   = Σ_t (softmax(z_t) − onehot(y_t))ᵀ h_t

   We compute it chunk by chunk right there and keep only ∂ℓ/∂h (tokens × hidden, as small as h);
   backward just scales it by the incoming gradient. Same matmuls as the unchunked loss, no
   recomputation, and peak memory is one chunk of fp32 logits (CHUNK_BYTES, 128 MiB) instead of
   all of them (4 × 512 tokens of Qwen2.5's 151,936-token vocabulary: 1.2 GiB, plus as much
   again for their gradient).
"""
import torch

from common.memory import release_free_heap
from model import kernels

IGNORE_INDEX = -100  # label of a position that is not scored (prompt, padding), as in PyTorch and HF
CHUNK_BYTES = 128 * 2**20  # fp32 logits per chunk at most: 192 rows of Qwen2.5's vocabulary, 640 of SmolLM2's
# The lm_head matmuls run on chunks padded with zero rows to a multiple of ROW_MULTIPLE: the number of
# target tokens differs in every batch, and on CPU oneDNN keeps kernels and buffers for each new shape.
# Full chunks are a multiple already (default_chunk_rows), so only the last one is padded.
ROW_MULTIPLE = 64


def default_chunk_rows(vocab_size: int) -> int:
    """As many rows of fp32 logits as fit in CHUNK_BYTES, rounded down to a multiple of ROW_MULTIPLE."""
    return max(ROW_MULTIPLE, CHUNK_BYTES // (4 * vocab_size) // ROW_MULTIPLE * ROW_MULTIPLE)


def _padded_matmul(rows: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """rows @ matrix, computed with rows padded by zeros to a multiple of ROW_MULTIPLE (same result)."""
    padding = -len(rows) % ROW_MULTIPLE
    if padding:
        rows = torch.cat((rows, rows.new_zeros(padding, rows.shape[1])))
    return (rows @ matrix)[:len(rows) - padding]


class _ChunkedCrossEntropy(torch.autograd.Function):
    """Σ_t ℓ_t for hidden (N, H), weight (V, H), targets (N,); its gradients are computed in forward."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk_rows, grad_enabled, ops):
        need_hidden, need_weight = (grad_enabled and needed for needed in ctx.needs_input_grad[:2])
        grad_hidden = torch.empty_like(hidden) if need_hidden else None
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_weight else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, len(hidden), chunk_rows):
            rows = slice(start, start + chunk_rows)
            logits = _padded_matmul(hidden[rows], weight.t())
            loss, grad_logits = ops.cross_entropy_(logits, targets[rows], need_hidden or need_weight)
            total += loss
            if need_hidden:
                grad_hidden[rows] = _padded_matmul(grad_logits.to(hidden.dtype), weight)
            if need_weight:
                grad_weight.addmm_(grad_logits.t().float(), hidden[rows].float())  # Triton's is in the logits' dtype
            del logits, grad_logits  # before the next chunk's logits exist: one chunk alive at a time, not two
        ctx.save_for_backward(grad_hidden, None if grad_weight is None else grad_weight.to(weight.dtype))
        return total

    @staticmethod
    def backward(ctx, grad_total):
        grad_hidden, grad_weight = ctx.saved_tensors
        return (None if grad_hidden is None else grad_hidden * grad_total.to(grad_hidden.dtype),
                None if grad_weight is None else grad_weight * grad_total.to(grad_weight.dtype),
                None, None, None, None)


def chunked_cross_entropy(hidden, weight, targets, chunk_rows: int = None) -> torch.Tensor:
    """Σ_t −log softmax(W h_t)[y_t] in fp32, for hidden (N, H), weight (V, H) and targets (N,).

    chunk_rows: rows of logits alive at a time; default: as many as fit in CHUNK_BYTES. Bigger chunks
    make faster matmuls, but a chunk adds to the peak memory: every activation is alive at that moment.
    """
    chunk_rows = chunk_rows or default_chunk_rows(weight.shape[0])
    # Under torch.no_grad (evaluation) no gradient is computed; forward itself always runs without grad mode.
    return _ChunkedCrossEntropy.apply(hidden, weight, targets, chunk_rows, torch.is_grad_enabled(),
                                      kernels.ops_for(hidden))


def next_token_loss(hidden, weight, labels, chunk_rows: int = None) -> torch.Tensor:
    """Summed loss of predicting labels[:, t+1] from hidden[:, t], over labels that are not IGNORE_INDEX.

    hidden: (batch, length, H) final-normed states; weight: the lm_head (V, H); labels: (batch, length).
    A sum, not a mean: the caller divides by the target tokens of the whole accumulation window.
    """
    if hidden.is_cpu and torch.is_grad_enabled():
        release_free_heap()  # the peak comes next (every activation alive): the holes need not stay resident
    next_labels = labels[:, 1:]
    scored = next_labels != IGNORE_INDEX
    return chunked_cross_entropy(hidden[:, :-1][scored], weight, next_labels[scored], chunk_rows)


class MicroBatchLoss(torch.nn.Module):
    """The summed loss of a micro-batch (data.batching's Batch) as a module's forward, which is what DDP wraps
    (its hooks need one)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, batch) -> torch.Tensor:
        hidden = self.model.hidden_states(batch.input_ids, positions=batch.positions, mask=batch.mask)
        return next_token_loss(hidden, self.model.lm_head.weight, batch.labels)
