"""Chunked cross-entropy: the same value and gradients as the full one, without keeping the logits."""
import weakref

import pytest
import torch
import torch.nn.functional as F

from torch.utils._python_dispatch import TorchDispatchMode

import model.loss
from model import kernels
from model.loss import IGNORE_INDEX, ROW_MULTIPLE, chunked_cross_entropy, next_token_loss

VOCAB, HIDDEN = 97, 16


def inputs(rows=23, seed=0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(rows, HIDDEN, generator=generator).to(dtype).requires_grad_()
    weight = torch.randn(VOCAB, HIDDEN, generator=generator).to(dtype).requires_grad_()
    targets = torch.randint(0, VOCAB, (rows,), generator=generator)
    return hidden, weight, targets


@pytest.mark.parametrize("chunk_rows", [1, 5, 23, 64])
def test_chunked_equals_full_cross_entropy_in_value_and_gradients(chunk_rows):
    hidden, weight, targets = inputs()
    full = F.cross_entropy(hidden @ weight.t(), targets, reduction="sum")
    full_grads = torch.autograd.grad(full, (hidden, weight))
    chunked = chunked_cross_entropy(hidden, weight, targets, chunk_rows)
    chunked_grads = torch.autograd.grad(chunked, (hidden, weight))
    assert abs(chunked.item() - full.item()) <= 1e-5 * full.item()
    for ours, reference in zip(chunked_grads, full_grads):
        assert (ours - reference).abs().max() <= 1e-5


def test_bf16_inputs_give_the_fp32_loss_of_their_bf16_logits():
    hidden, weight, targets = inputs(dtype=torch.bfloat16)
    reference = F.cross_entropy((hidden @ weight.t()).float(), targets, reduction="sum")
    loss = chunked_cross_entropy(hidden, weight, targets, chunk_rows=8)
    assert loss.dtype == torch.float32 and abs(loss.item() - reference.item()) <= 1e-4 * reference.item()


def test_bf16_gradients_match_float64_and_the_weight_gradient_accumulates_in_fp32():
    # 75 chunks of 8 rows: a weight gradient summed in bf16 chunk after chunk is off by 1.1–1.7% of its
    # largest entry (measured on seeds 0–2), the fp32 sum by 0.2–0.4%. The hidden gradient's 0.7–0.9%
    # is bf16's logits and its final rounding, the same either way.
    hidden, weight, targets = inputs(rows=600, dtype=torch.bfloat16)
    hidden64, weight64 = (t.detach().double().requires_grad_() for t in (hidden, weight))
    reference = torch.autograd.grad(F.cross_entropy(hidden64 @ weight64.t(), targets, reduction="sum"),
                                    (hidden64, weight64))
    ours = torch.autograd.grad(chunked_cross_entropy(hidden, weight, targets, chunk_rows=8), (hidden, weight))
    assert [g.dtype for g in ours] == [torch.bfloat16, torch.bfloat16]
    (hidden_error, weight_error) = ((g.double() - r).abs().max() / r.abs().max() for g, r in zip(ours, reference))
    assert hidden_error <= 1.5e-2 and weight_error <= 7e-3


def test_no_logits_are_kept_for_the_backward_pass_only_the_gradients_of_hidden_and_weight():
    # The gradients are computed in the forward pass: what backward needs is ∂ℓ/∂h (as big as hidden) and
    # ∂ℓ/∂W (as big as weight), nothing of any chunk's logits (chunks of 8 rows × VOCAB: 64 × VOCAB in all).
    hidden, weight, targets = inputs(rows=64)
    storages = {}  # everything saved for backward, by the memory it keeps alive

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes() // tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        chunked_cross_entropy(hidden, weight, targets, chunk_rows=8)
    assert storages and sum(storages.values()) <= hidden.numel() + weight.numel()


def test_next_token_loss_scores_only_labelled_next_tokens():
    generator = torch.Generator().manual_seed(3)
    hidden = torch.randn(2, 7, HIDDEN, generator=generator, requires_grad=True)
    weight = torch.randn(VOCAB, HIDDEN, generator=generator)
    labels = torch.randint(0, VOCAB, (2, 7), generator=generator)
    labels[0, :4] = labels[1, :2] = labels[1, 6:] = IGNORE_INDEX  # prompts and a pad
    reference = F.cross_entropy((hidden @ weight.t())[:, :-1].reshape(-1, VOCAB), labels[:, 1:].reshape(-1),
                                ignore_index=IGNORE_INDEX, reduction="sum")
    loss = next_token_loss(hidden, weight, labels, chunk_rows=3)
    assert abs(loss.item() - reference.item()) <= 1e-5 * reference.item()
    grad, = torch.autograd.grad(loss, hidden)
    assert grad[0, :3].abs().sum() == 0 and grad[1, 5:].abs().sum() == 0  # positions with no labelled next token


class MatmulRows(TorchDispatchMode):
    """Records the row count of every matrix product run inside it."""

    def __init__(self):
        super().__init__()
        self.rows = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default):
            self.rows.append(args[-2].shape[0])
        return func(*args, **(kwargs or {}))


def test_the_lm_head_products_see_row_counts_in_multiples_only():
    # The number of target tokens changes with every batch; on CPU each new matmul shape costs oneDNN
    # kernels and buffers that are kept, so the chunks are padded to a few shapes.
    hidden, weight, targets = inputs(rows=37)
    weight.requires_grad_(False)
    with MatmulRows() as recorded:
        chunked_cross_entropy(hidden, weight, targets, chunk_rows=20).backward()
    assert recorded.rows and all(rows % ROW_MULTIPLE == 0 for rows in recorded.rows)


def test_default_chunks_are_whole_multiples_so_only_the_last_chunk_is_padded():
    # 150 rows of this vocabulary's fp32 logits fit in CHUNK_BYTES: chunks of 150 would pad every chunk
    vocab, rows = 223_696, 256
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(rows, HIDDEN, generator=generator).requires_grad_()
    weight = torch.randn(vocab, HIDDEN, generator=generator)
    targets = torch.randint(0, vocab, (rows,), generator=generator)
    with MatmulRows() as recorded:
        chunked_cross_entropy(hidden, weight, targets).backward()
    assert sum(recorded.rows) == 2 * rows  # logits and the hidden states' gradient, no padding row at all


def test_one_chunk_of_logits_is_alive_at_a_time(monkeypatch):
    # Each chunk's logits (and their gradient, written over them) must be freed before the next chunk's
    # product runs: otherwise the peak holds two chunks (2 × 117 MB for Qwen2.5 in fp32).
    seen = []

    class Spy(kernels.TorchOps):
        @staticmethod
        def cross_entropy_(logits, targets, need_grad):
            seen.append(weakref.ref(logits))
            return kernels.TorchOps.cross_entropy_(logits, targets, need_grad)

    class LogitsProducts(TorchDispatchMode):
        """Counts, at each logits product, the earlier chunks' logits still alive."""

        def __init__(self):
            super().__init__()
            self.alive_at_products = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.mm.default and args[1].shape[-1] == VOCAB:
                self.alive_at_products.append(sum(ref() is not None for ref in seen))
            return func(*args, **(kwargs or {}))

    monkeypatch.setattr(model.loss.kernels, "ops_for", lambda tensor: Spy)
    hidden, weight, targets = inputs(rows=64)
    with LogitsProducts() as products:
        chunked_cross_entropy(hidden, weight, targets, chunk_rows=16)
    assert len(seen) == 4 and products.alive_at_products == [0, 0, 0, 0]


def test_training_loss_on_cpu_first_hands_freed_heap_pages_back(monkeypatch):
    # The cross-entropy is the step's peak; the forward's freed temporaries need not be resident then.
    calls = []
    monkeypatch.setattr(model.loss, "release_free_heap", lambda: calls.append("released"))
    hidden, weight, _ = inputs(rows=6)
    labels = torch.randint(0, VOCAB, (2, 3))
    next_token_loss(hidden.view(2, 3, HIDDEN), weight, labels)
    with torch.no_grad():  # evaluation: no backward follows, nothing to release
        next_token_loss(hidden.view(2, 3, HIDDEN), weight, labels)
    assert calls == ["released"]
