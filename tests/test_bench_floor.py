"""The training benchmark's compute floor counts exactly the matrix products a LoRA step must run.

`bench.py train` reports each method's step time against a floor: the step's matmul FLOPs at the
measured matmul rate. These tests count the products physlora's step really runs (every mm /
addmm call, with its shapes) and the attention calls, and compare them with `step_flops`.
"""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import train
from benchmarks.train_suite import step_flops
from data.batching import Batch
from lora.adapter import LoRASettings, inject
from model.config import ModelConfig
from model.transformer import Transformer

CONFIG = dict(model_type="qwen2", vocab_size=101, hidden_size=48, intermediate_size=80, num_hidden_layers=3,
              num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, max_position_embeddings=64,
              rope_theta=10000.0, rms_norm_eps=1e-6)
ROWS, TOKENS, RANK = 4, 17, 4  # 64 targets: the lm_head's products need no padding rows (model/loss.py)
MATMULS = {"aten.mm.default", "aten.addmm.default", "aten.addmm_.default"}
ATTENTION = "aten._scaled_dot_product_flash_attention_for_cpu"


class CountFlops(TorchDispatchMode):
    """FLOPs of the matrix products run under it (2·m·k·n each) and the attention calls' query shapes."""

    def __init__(self):
        super().__init__()
        self.matmul, self.attention = 0, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if name in MATMULS:
            a, b = args[-2:]
            self.matmul += 2 * a.shape[0] * a.shape[1] * b.shape[1]
        elif name.startswith(ATTENTION):
            self.attention.append((name.endswith("backward.default"), tuple(args[0].shape)))
        return func(*args, **(kwargs or {}))


@pytest.fixture(scope="module")
def counted_step():
    """What one physlora step on CONFIG runs, counted once for the tests below."""
    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_hf(CONFIG))
    inject(model, LoRASettings(rank=RANK, alpha=8, dropout=0.0, targets=("q_proj", "v_proj")))
    ids = torch.randint(0, CONFIG["vocab_size"], (ROWS, TOKENS))
    every_token_a_target = Batch(ids, ids, None, None, ids.numel(), ids[:, 1:].numel(), 0)
    with CountFlops() as counter:
        train.train_window(model.train(), [every_token_a_target])
    return counter


def test_the_floor_counts_the_linear_and_lora_products_physlora_runs(counted_step):
    floor = step_flops(CONFIG, ROWS, TOKENS, RANK)
    assert counted_step.matmul == floor["linear"] + floor["lora"]


def test_the_floor_counts_causal_attention_forward_once_and_backward_twice(counted_step):
    calls = counted_step.attention
    layers = CONFIG["num_hidden_layers"]
    assert sorted(calls) == [(False, (ROWS, 4, TOKENS, 12))] * layers + [(True, (ROWS, 4, TOKENS, 12))] * layers
    one_forward = 2 * 2 * ROWS * CONFIG["hidden_size"] * TOKENS * (TOKENS + 1) / 2  # q·kᵀ and p·v, causal half
    assert step_flops(CONFIG, ROWS, TOKENS, RANK)["attention"] == layers * 3 * one_forward
