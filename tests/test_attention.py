"""Specification of model/attention.py: causal attention whose bf16 backward on CPU is our own.

Gradients are compared with float64 attention on the same bf16 inputs, by the relative error
‖actual − expected‖ / ‖expected‖. bf16 keeps 8 bits (unit roundoff 3.9e-3) and the backward rounds
P, dS and each product's output once, so the bound is a few roundoffs: 1e-2. Measured here: at most
5.1e-3 (5.3e-3 with scores in the tens); the flash kernel's own backward, which rounds dS once from fp32,
2.6–3.8e-3 (5.0e-3) for dQ and dK, and more than ours for dV. Subtracting logsumexp after the product
instead of inside it gives 1.7e-2 with large scores: `test_large_scores_keep_their_precision` fails.
"""
import pytest
import torch
import torch.nn.functional as F

from model import attention as attention_module
from model.attention import attention

TOLERANCE = 1e-2
# batch, query heads, kv heads, length; odd lengths, grouped and plain heads, two tokens (one has no dQ).
CASES = [(1, 1, 1, 2), (2, 4, 4, 37), (3, 6, 2, 29), (2, 9, 3, 64)]


def relative_error(actual, expected):
    return ((actual.double() - expected).norm() / expected.norm()).item()


def inputs(batch, heads, kv_heads, length, score_scale=1.0, dim=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    q = (torch.randn(batch, heads, length, dim, generator=generator) * score_scale).bfloat16().requires_grad_()
    k = (torch.randn(batch, kv_heads, length, dim, generator=generator) * score_scale).bfloat16().requires_grad_()
    v = torch.randn(batch, kv_heads, length, dim, generator=generator).bfloat16().requires_grad_()
    d_out = torch.randn(batch, heads, length, dim, generator=generator).bfloat16()
    return q, k, v, d_out


def gradients(attend, q, k, v, d_out):
    q.grad = k.grad = v.grad = None
    attend(q, k, v).backward(d_out)
    return q.grad, k.grad, v.grad


def float64_gradients(q, k, v, d_out):
    q, k, v = (x.detach().double().requires_grad_() for x in (q, k, v))
    return gradients(lambda *x: F.scaled_dot_product_attention(*x, is_causal=True, enable_gqa=True), q, k, v,
                     d_out.double())


def ours(q, k, v):
    return attention(q, k, v, None, causal=True)


def flash(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)


def test_bf16_training_on_cpu_takes_our_backward():
    q, k, v, _ = inputs(*CASES[2])
    assert type(ours(q, k, v).grad_fn).__name__ == "_AttentionBackward"


def test_without_torchs_cpu_flash_op_training_falls_back_to_torch(monkeypatch):
    monkeypatch.setattr(attention_module, "_FLASH_FOR_CPU", None)
    q, k, v, _ = inputs(*CASES[2])
    assert type(ours(q, k, v).grad_fn).__name__ != "_AttentionBackward"


def test_long_blocks_take_torch_attention():
    q, k, v, _ = inputs(1, 2, 1, attention_module.LONGEST + 1)
    assert type(ours(q, k, v).grad_fn).__name__ != "_AttentionBackward"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_other_dtypes_take_torch_attention(dtype):
    q, k, v, _ = (x.detach().to(dtype).requires_grad_() for x in inputs(*CASES[2]))
    assert type(ours(q, k, v).grad_fn).__name__ != "_AttentionBackward"


def test_forward_is_torch_attention_exactly():
    q, k, v, _ = inputs(*CASES[2])
    assert torch.equal(ours(q, k, v), flash(q, k, v))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradients_match_float64(case):
    q, k, v, d_out = inputs(*case)
    for actual, expected in zip(gradients(ours, q, k, v, d_out), float64_gradients(q, k, v, d_out)):
        assert relative_error(actual, expected) < TOLERANCE


def test_large_scores_keep_their_precision():
    """Scores in the tens, as trained models have: log P computed in the product, not after it."""
    q, k, v, d_out = inputs(4, 9, 3, 96, score_scale=2.0, seed=1)
    for actual, expected in zip(gradients(ours, q, k, v, d_out), float64_gradients(q, k, v, d_out)):
        assert relative_error(actual, expected) < TOLERANCE


def test_chunked_backward_gives_the_same_gradients(monkeypatch):
    q, k, v, d_out = inputs(3, 6, 2, 29)
    whole = gradients(ours, q, k, v, d_out)
    monkeypatch.setattr(attention_module, "SLAB_BYTES", 1)  # one (batch, kv head) pair at a time
    for chunked, reference in zip(gradients(ours, q, k, v, d_out), whole):
        assert torch.equal(chunked, reference)


def lora_gradients(dtype):
    """LoRA gradients of a tiny GQA model on 3 rows of 37 tokens, its weights and inputs fixed by the seed."""
    from lora.adapter import LoRASettings, inject, lora_layers
    from tiny_models import make_pair

    _, model = make_pair("qwen2-tied")
    inject(model, LoRASettings(rank=4, alpha=8, targets=("q_proj", "v_proj")))
    torch.manual_seed(1)
    for _, layer in lora_layers(model):
        torch.nn.init.normal_(layer.lora_B, std=0.2)  # B starts at zero: no gradient would reach A
    model.to(dtype)
    ids = torch.randint(0, model.config.vocab_size, (3, 37))
    weights = torch.randn(3, 37, model.config.vocab_size)
    (model(ids).float() * weights).sum().backward()
    return torch.cat([p.grad.flatten().double() for _, layer in lora_layers(model)
                      for p in (layer.lora_A, layer.lora_B)])


def test_a_bf16_models_lora_gradients_match_fp32(monkeypatch):
    """Through the model: transposed q, k, v views in, dO from o_proj's backward; our backward is the one that runs.
    Measured: 9.3e-3 from fp32's gradients, and 9.2e-3 with torch's backward in bf16 instead of ours."""
    calls = []
    backward = attention_module._Attention.backward
    monkeypatch.setattr(attention_module._Attention, "backward",
                        staticmethod(lambda ctx, d_out: calls.append(1) or backward(ctx, d_out)))
    expected = lora_gradients(torch.float32)
    assert not calls
    actual = lora_gradients(torch.bfloat16)
    assert len(calls) == 3  # one per layer
    assert relative_error(actual, expected) < 3e-2
