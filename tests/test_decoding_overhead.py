"""A decoding step's operator calls. On CPU each call costs a few microseconds of Python and dispatch,
which at one token a row is as much as the products (benchmarks/README.md, Generation): the count per layer
is the part of a step's time that code changes can add to, and unlike a timing it is exact."""
import collections
import dataclasses

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from model.config import ModelConfig
from model.transformer import KVCache, Transformer

# A SmolLM2-shaped layer (Llama, 9 heads, 3 key-value heads, tied embeddings) at toy sizes.
CONFIG = ModelConfig.from_hf(dict(model_type="llama", vocab_size=97, hidden_size=72, intermediate_size=96,
                                  num_hidden_layers=2, num_attention_heads=9, num_key_value_heads=3,
                                  tie_word_embeddings=True))
# (dtype, rows) -> calls, measured 2026-12-01. bf16 takes more: one product per q/k/v and gate/up group
# with its reshapes (model/linear.py), and at several rows transposes. Before the KV cache was one tensor
# per layer, RoPE's sign moved into its table and RMSNorm became torch's own op: 67, 78 and 60.
MOST_CALLS_PER_LAYER = {(torch.bfloat16, 1): 43, (torch.bfloat16, 4): 54, (torch.float32, 1): 36, (torch.float32, 4): 36}


class CountCalls(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.calls = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def calls_of_one_decoding_step(layers, dtype, batch):
    config = dataclasses.replace(CONFIG, num_hidden_layers=layers)
    torch.manual_seed(0)
    model = Transformer(config).to(dtype).eval()
    model.fuse_projections()
    cache = KVCache(config, batch, 16, dtype, "cpu")
    with torch.inference_mode():
        model(torch.randint(0, 97, (batch, 5)), cache=cache)
        with CountCalls() as counter:
            model(torch.randint(0, 97, (batch, 1)), positions=torch.full((batch, 1), 5), cache=cache, cache_start=5)
    return counter.calls


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("batch", [1, 4])
def test_a_decoding_step_makes_few_operator_calls_per_layer(dtype, batch):
    two, three = calls_of_one_decoding_step(2, dtype, batch), calls_of_one_decoding_step(3, dtype, batch)
    per_layer = three - two
    assert sum(per_layer.values()) <= MOST_CALLS_PER_LAYER[dtype, batch], per_layer
