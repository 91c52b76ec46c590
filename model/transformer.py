"""A Qwen2 / Llama decoder-only transformer in one file.

    h₀ = embed(tokens)
    for each block:  h = h + Attention(RMSNorm(h))      (GQA, RoPE, causal)
                     h = h + SwiGLU(RMSNorm(h))         down(silu(gate(h)) · up(h))
    logits = lm_head(RMSNorm(h))                        (lm_head may share the embedding matrix)

RMSNorm(x) = w · x / sqrt(mean(x²) + ε), normalised in fp32 and cast back *before* the weight
multiply, in HF's order (the sum of squares and the other roundings may differ from HF's slightly).

RoPE rotates each (x_i, x_{i+d/2}) pair of a query/key head by the angle pos · θ_i with
θ_i = base^(-2i/d); Llama 3.1+ stretches the low frequencies (`llama3` scaling) so that
long contexts reuse the wavelengths seen in pre-training.

Module and parameter names follow HF (`model.layers.N.self_attn.q_proj`, ...), so a HF state
dict loads 1:1 and PEFT adapter keys come for free.

The norms, the rotation and the SwiGLU product run as fused Triton kernels on CUDA tensors
(model/kernels.py); elsewhere as the plain torch shown there. Attention is torch's, with a faster
backward of our own for bf16 training on CPU (model/attention.py). The linear layers are nn.Linear
with a faster path for decoding in bf16 on CPU (model/linear.py).

Incremental decoding writes each step's keys/values into a preallocated `KVCache` and attends
over the filled prefix. Padded batches (left padding) pass a boolean `mask` of real tokens and
explicit `positions`, so a padded prompt gives the same numbers as the prompt alone.
"""
import math
from typing import Optional

import torch
import torch.utils.checkpoint
from torch import nn

from model import kernels
from model.attention import attention
from model.config import ModelConfig
from model.linear import Linear, fuse_storage, joint_parameters, project


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return kernels.rms_norm(x, self.weight, self.eps)


def rope_inverse_frequencies(config: ModelConfig) -> torch.Tensor:
    dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    scaling = config.rope_scaling
    if scaling is None:
        return inv_freq
    # Llama 3 frequency stretch: long wavelengths are divided by `factor`, short ones kept,
    # and the band in between is interpolated smoothly.
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_context = scaling["original_max_position_embeddings"]
    wavelength = 2 * math.pi / inv_freq
    stretched = torch.where(wavelength > old_context / low, inv_freq / factor, inv_freq)
    smooth = (old_context / wavelength - low) / (high - low)
    interpolated = (1 - smooth) * stretched / factor + smooth * stretched
    in_band = (wavelength >= old_context / high) & (wavelength <= old_context / low)
    return torch.where(in_band, interpolated, stretched)


class KVCache:
    """Preallocated keys and values, one (batch, kv_heads, max_len, head_dim) tensor per layer.

    Per-layer tensors rather than one 5-d buffer: indexing a 5-d tensor anew for every layer of every
    decoding step costs more than the copy of one token's keys does."""

    def __init__(self, config: ModelConfig, batch: int, max_len: int, dtype, device):
        shape = (batch, config.num_key_value_heads, max_len, config.head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.num_hidden_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.num_hidden_layers)]

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Keep only these batch rows (the others finished generating), in this order."""
        self.keys, self.values = [k[rows] for k in self.keys], [v[rows] for v in self.values]

    def update(self, layer: int, start, k: torch.Tensor, v: torch.Tensor):
        """Store this step's k, v at [start, start+T) and return the keys and values to attend over.

        start: an int, and the filled prefix [0, start+T) comes back; or a tensor holding the T slot
        indices (a fixed-shape step, model/decode_step.py), and the whole cache comes back: the
        caller's mask hides the slots not written yet.
        """
        keys, values = self.keys[layer], self.values[layer]
        if isinstance(start, torch.Tensor):
            keys.index_copy_(2, start, k)
            values.index_copy_(2, start, v)
            return keys, values
        length = k.shape[2]
        keys.narrow(2, start, length).copy_(k)
        values.narrow(2, start, length).copy_(v)
        return keys.narrow(2, 0, start + length), values.narrow(2, 0, start + length)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig, layer_index: int):
        super().__init__()
        self.layer_index = layer_index
        self.n_heads, self.n_kv_heads, self.head_dim = (
            config.num_attention_heads, config.num_key_value_heads, config.head_dim)
        hidden, q_dim, kv_dim = config.hidden_size, self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        self.q_proj = Linear(hidden, q_dim, bias=config.qkv_bias)
        self.k_proj = Linear(hidden, kv_dim, bias=config.qkv_bias)
        self.v_proj = Linear(hidden, kv_dim, bias=config.qkv_bias)
        self.o_proj = Linear(q_dim, hidden, bias=config.o_proj_bias)

    def forward(self, x, cos, sin, mask, cache: Optional[KVCache], cache_start: int):
        batch, length, _ = x.shape
        q, k, v = project(x, self.q_proj, self.k_proj, self.v_proj)
        q = q.view(batch, length, self.n_heads, self.head_dim).transpose(1, 2)
        k = k.view(batch, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(batch, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = kernels.rope(q, k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.layer_index, cache_start, k, v)
        # With no mask, plain causal attention over a block that starts at position 0.
        out = attention(q, k, v, mask, causal=mask is None and length > 1)
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, -1))


class MLP(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        hidden, inner, bias = config.hidden_size, config.intermediate_size, config.mlp_bias
        self.gate_proj = Linear(hidden, inner, bias=bias)
        self.up_proj = Linear(hidden, inner, bias=bias)
        self.down_proj = Linear(inner, hidden, bias=bias)

    def forward(self, x):
        # Any layout: silu(gate)·up is elementwise, and down_proj reads the product's own layout best.
        return self.down_proj(kernels.swiglu(*project(x, self.gate_proj, self.up_proj, contiguous=False)))


class Block(nn.Module):
    def __init__(self, config: ModelConfig, layer_index: int):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config, layer_index)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MLP(config)

    def forward(self, h, cos, sin, mask, cache, cache_start):
        # Attention's sum goes into its fresh output: on CPU each freed temporary leaves a heap hole that the
        # next tensor of its size can't use (common/memory.py). The MLP's stays out of place: in place it
        # cost 0.26 GiB under checkpointing (benchmarks/results/train-equal-cpu-2026-12-01b/alloc_ab.txt).
        h = self.self_attn(self.input_layernorm(h), cos, sin, mask, cache, cache_start).add_(h)
        return h + self.mlp(self.post_attention_layernorm(h))


class Decoder(nn.Module):
    """Everything but the lm_head: HF calls this `model`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class Transformer(nn.Module):
    # Gradient checkpointing (training): keep only each block's input and recompute the block in
    # the backward pass, trading one more forward for activations of one block instead of all.
    checkpoint_layers = False

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.model = Decoder(config)
        self.lm_head = Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.register_buffer("inv_freq", rope_inverse_frequencies(config), persistent=False)

    def hidden_states(self, input_ids: torch.Tensor, positions: Optional[torch.Tensor] = None,
                      mask: Optional[torch.Tensor] = None, cache: Optional[KVCache] = None,
                      cache_start: int = 0) -> torch.Tensor:
        """Final-normed hidden states (batch, length, hidden).

        positions: (batch, length) token positions; default cache_start + 0..length-1.
        mask: boolean (batch, 1, length, keys) — True where a query may attend a key. Needed only
              for padded batches; without it attention is causal over [0, cache_start + length).
        cache_start: where this block's keys go in the cache: an int, or a tensor of the slot indices
              for a fixed-shape step, which then attends over the whole cache (pass positions and mask).
        """
        batch, length = input_ids.shape
        if positions is None:
            positions = torch.arange(cache_start, cache_start + length, device=input_ids.device).expand(batch, -1)
        h = self.model.embed_tokens(input_ids)
        cos, sin = kernels.rope_tables(positions[:, None, :, None].float() * self.inv_freq, h.dtype)  # one head: broadcast
        if mask is None and length > 1 and cache_start > 0:  # a chunk continuing a cached prefix
            mask = causal_mask(length, cache_start + length, cache_start, input_ids.device)
        for layer in self.model.layers:
            if self.checkpoint_layers and torch.is_grad_enabled():
                # The RNG state is replayed, so LoRA dropout draws the same mask when recomputed.
                h = torch.utils.checkpoint.checkpoint(layer, h, cos, sin, mask, cache, cache_start,
                                                      use_reentrant=False)
            else:
                h = layer(h, cos, sin, mask, cache, cache_start)
        return self.model.norm(h)

    def forward(self, input_ids: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.lm_head(self.hidden_states(input_ids, **kwargs))

    def fuse_projections(self) -> None:
        """Lay out each layer's q, k, v weights back to back in memory, and its gate, up weights, so that
        bf16 on CPU runs one product per group (model/linear.py): in decoding, and for frozen layers in
        training. Only bf16 weights on CPU, where it pays; elsewhere nothing happens. Values, parameters
        and state dict stay the same; layers already laid out, or wrapped by LoRA, are left as they are."""
        weight = self.model.embed_tokens.weight
        if weight.dtype is not torch.bfloat16 or not weight.is_cpu:
            return
        for block in self.model.layers:
            for group in ((block.self_attn.q_proj, block.self_attn.k_proj, block.self_attn.v_proj),
                          (block.mlp.gate_proj, block.mlp.up_proj)):
                if all(type(layer) is Linear for layer in group) and joint_parameters(group) is None:
                    fuse_storage(*group)


def causal_mask(queries: int, keys: int, query_start: int, device) -> torch.Tensor:
    """(1, 1, queries, keys) boolean: query i (at absolute position query_start + i) sees keys ≤ it."""
    query_pos = torch.arange(query_start, query_start + queries, device=device)[:, None]
    return (torch.arange(keys, device=device)[None, :] <= query_pos)[None, None]
