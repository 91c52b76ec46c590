"""The two pieces of arithmetic in train.py's loop: one accumulation window, and the learning rate."""
import pytest
import torch

import train
from data.batching import Example, collate
from lora.adapter import LoRASettings, inject, lora_layers
from model.loss import next_token_loss
from tiny_models import TINY, make_pair

LENGTHS_AND_PROMPTS = [(5, 2), (9, 6), (14, 3), (20, 11)]  # different lengths and target counts


def adapted_model_and_examples():
    _, model = make_pair("qwen2-untied")
    inject(model, LoRASettings(rank=4, alpha=8, targets=("q_proj", "v_proj", "down_proj")))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # B = 0 would leave A without gradient
        for _, layer in lora_layers(model):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=generator) * 0.2)
    examples = [Example(torch.randint(0, TINY["vocab_size"], (n,), generator=generator).tolist(), prompt)
                for n, prompt in LENGTHS_AND_PROMPTS]
    return model, examples


def lora_gradients(model):
    grads = [p.grad.clone() for _, layer in lora_layers(model) for p in (layer.lora_A, layer.lora_B)]
    model.zero_grad(set_to_none=True)
    return grads


def max_difference(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def test_accumulating_four_micro_batches_of_one_equals_one_batch_of_four():
    model, examples = adapted_model_and_examples()
    whole_loss = train.train_window(model, [collate(examples, [[0], [1], [2], [3]], pad_id=0)])
    whole = lora_gradients(model)
    accumulated_loss = train.train_window(model, [collate(examples, [[i]], pad_id=0) for i in range(4)])
    accumulated = lora_gradients(model)
    assert abs(whole_loss - accumulated_loss) <= 1e-6
    assert max_difference(whole, accumulated) <= 1e-5


def test_averaging_per_micro_batch_instead_gives_other_gradients():
    model, examples = adapted_model_and_examples()
    train.train_window(model, [collate(examples, [[0], [1], [2], [3]], pad_id=0)])
    whole = lora_gradients(model)
    for i in range(4):  # the known bug: each micro-batch's mean, divided by the number of micro-batches
        batch = collate(examples, [[i]], pad_id=0)
        loss = next_token_loss(model.hidden_states(batch.input_ids), model.lm_head.weight, batch.labels)
        (loss / batch.target_tokens / 4).backward()
    assert max_difference(whole, lora_gradients(model)) > 1e-3


def test_learning_rate_warms_up_linearly_then_decays_by_cosine_to_a_tenth():
    lrs = [train.learning_rate(step, 1.0, warmup=4, total=20) for step in range(1, 21)]
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a > b for a, b in zip(lrs[3:], lrs[4:]))
    assert lrs[-1] == pytest.approx(0.1)
    assert train.learning_rate(12, 1.0, warmup=4, total=20) == pytest.approx(0.55)  # halfway: (1 + 0.1) / 2


def test_gradient_checkpointing_gives_the_same_gradients_even_with_lora_dropout():
    model, examples = adapted_model_and_examples()
    for _, layer in lora_layers(model):
        layer.dropout = 0.3
    batch = collate(examples, [[0], [1], [2], [3]], pad_id=0)
    blocks, calls = model.model.layers, []
    for block in blocks:
        # a pre-hook: the recomputation stops once it has what backward needs, before a forward hook would run
        block.register_forward_pre_hook(lambda block, args: calls.append(block))
    gradients, forwards_per_block = {}, {}
    for checkpointing in (False, True):
        model.checkpoint_layers = checkpointing
        calls.clear()
        torch.manual_seed(0)  # the same dropout masks
        train.train_window(model.train(), [batch])
        gradients[checkpointing] = lora_gradients(model)
        forwards_per_block[checkpointing] = [sum(call is block for call in calls) for block in blocks]
    # Checkpointing did run: each block is recomputed once in the backward pass
    assert forwards_per_block == {False: [1] * len(blocks), True: [2] * len(blocks)}
    assert max_difference(gradients[False], gradients[True]) <= 1e-6
