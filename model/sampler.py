"""Batched generation with a preallocated KV cache.

1. Prefill: left-pad the prompts to one length, run them in one forward pass, filling the cache.
   Each row's positions count only its real tokens, so padding changes nothing numerically.
2. Decode: feed the last sampled token of every row, one step at a time, attending over the
   cache; a row stops at its first stop token, the loop when every row has stopped. Once a
   quarter of the running rows have stopped, they leave the batch (and the cache): answers of
   very different lengths no longer make every row pay for the longest.
   On a GPU the decoding step is instead replayed as a CUDA graph (model/decode_step.py): fixed
   shapes, so every row stays in the batch to the end.

Sampling: greedy at temperature 0; otherwise softmax(logits / T) restricted to the top-k
tokens and to the smallest set whose probability mass reaches top-p (nucleus), drawn from
a seeded generator so that a fixed seed gives the same text.

Only new tokens are returned — never the prompt echoed back — and without the stop token.
"""
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from model.decode_step import DecodeStep
from model.transformer import KVCache, Transformer

# How each decoding step runs: 'eager' the ordinary step, 'graph' a CUDA graph replay of the
# fixed-shape step, 'fixed' that step without the graph (what the graph replays: for tests),
# 'auto' a graph on CUDA and eager elsewhere.
DECODE_MODES = ("auto", "eager", "fixed", "graph")


@dataclass
class SamplingParams:
    max_new_tokens: int = 128
    temperature: float = 0.0
    top_k: int = 0      # 0 = no top-k filter
    top_p: float = 1.0  # 1 = no nucleus filter
    seed: int = 0


def sample_next(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> torch.Tensor:
    """(batch, vocab) logits -> (batch,) token ids."""
    if params.temperature <= 0:
        # The first maximum, as argmax; torch's CPU argmax is 3-5× slower than max over a vocabulary row.
        return logits.max(dim=-1).indices
    return torch.multinomial(sampling_probabilities(logits, params), 1, generator=generator).squeeze(-1)


def sampling_probabilities(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """(batch, vocab) logits -> the distribution sampling draws from: softmax(logits / T), with the
    tokens outside the top_k best and outside the top_p nucleus at probability zero."""
    # Shifted by the row's best logit the scaled logits are <= 0: a tiny temperature sends the others to -inf,
    # never the best to +inf (inf - inf is nan); below float32's range it stays at the smallest normal value.
    logits = logits.float()
    logits = (logits - logits.amax(dim=-1, keepdim=True)) / max(params.temperature, torch.finfo(torch.float32).tiny)
    if 0 < params.top_k < logits.shape[-1]:
        kth_best = torch.topk(logits, params.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth_best, float("-inf"))
    if params.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # Drop a token when the mass before it already reaches top_p (the best token always stays).
        drop_sorted = probs.cumsum(dim=-1) - probs >= params.top_p
        logits = logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))
    return logits.softmax(dim=-1)


@torch.inference_mode()
def generate(model: Transformer, prompts: list, params: SamplingParams, stop_ids, pad_id: int,
             on_token: Optional[Callable[[int, int], None]] = None, decode: str = "auto") -> list:
    """Generate for each prompt (a list of token ids); returns the new token ids per prompt.

    on_token(row, token) is called for every kept token as soon as it is sampled (streaming).
    decode: one of DECODE_MODES.
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    if decode not in DECODE_MODES:
        raise ValueError(f"decode: got {decode!r}; use one of {', '.join(DECODE_MODES)}")
    device = model.inv_freq.device
    if decode == "auto":
        decode = "graph" if device.type == "cuda" else "eager"
    dtype = model.model.embed_tokens.weight.dtype
    batch, prompt_len = len(prompts), max(len(p) for p in prompts)
    total_len = prompt_len + params.max_new_tokens

    tokens = torch.full((batch, prompt_len), pad_id, dtype=torch.long, device=device)
    is_real = torch.zeros(batch, total_len, dtype=torch.bool, device=device)
    for row, prompt in enumerate(prompts):
        tokens[row, prompt_len - len(prompt):] = torch.tensor(prompt, device=device)
        is_real[row, prompt_len - len(prompt):] = True
    is_real[:, prompt_len:] = True
    padded = any(len(p) != prompt_len for p in prompts)

    model.fuse_projections()  # for a model converted to CPU bf16 after build_model; a no-op otherwise
    cache = KVCache(model.config, batch, total_len, dtype, device)
    positions = (is_real[:, :prompt_len].cumsum(-1) - 1).clamp(min=0)
    mask = _prefill_mask(is_real[:, :prompt_len]) if padded else None
    # Only the last position's logits are needed: the lm_head over every prompt token would cost
    # as much as the rest of the prefill, and its output (batch × prompt × vocabulary) the most memory.
    logits = model.lm_head(model.hidden_states(tokens, positions=positions, mask=mask, cache=cache)[:, -1])
    fixed_step = None if decode == "eager" else DecodeStep(model, cache, is_real, graph=decode == "graph")

    generator = torch.Generator(device=device).manual_seed(params.seed)
    stop = torch.tensor(sorted(stop_ids), dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    outputs = [[] for _ in range(batch)]
    prompt_of = list(range(batch))  # the prompt each row of the running batch answers
    next_pos = positions[:, -1:] + 1
    for step in range(params.max_new_tokens):
        next_token = sample_next(logits, params, generator)
        finished |= torch.isin(next_token, stop)
        tokens = next_token.tolist()  # one call, not one per row
        for row in (~finished).nonzero().flatten().tolist():
            outputs[prompt_of[row]].append(tokens[row])
            if on_token:
                on_token(prompt_of[row], outputs[prompt_of[row]][-1])
        if finished.all() or step == params.max_new_tokens - 1:
            break
        # Drop the finished rows (a copy of the cache: not every step); a fixed-shape step keeps them.
        if fixed_step is None and 4 * int(finished.sum()) >= len(prompt_of):
            running = (~finished).nonzero().flatten()
            cache.keep_rows(running)
            is_real, next_pos, next_token, finished = is_real[running], next_pos[running], next_token[running], \
                finished[running]
            prompt_of = [prompt_of[row] for row in running.tolist()]
        start = prompt_len + step
        if fixed_step is not None:
            logits = fixed_step(next_token, next_pos, start)
        else:
            step_mask = is_real[:, None, None, :start + 1] if padded else None
            logits = model(next_token[:, None], positions=next_pos, mask=step_mask, cache=cache,
                           cache_start=start)[:, -1]
        next_pos = next_pos + 1
    return outputs


def _prefill_mask(is_real: torch.Tensor) -> torch.Tensor:
    """Causal and ignoring pad keys; a pad query sees itself so its softmax row is never empty."""
    length = is_real.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=is_real.device).tril()
    diagonal = torch.eye(length, dtype=torch.bool, device=is_real.device)
    return ((causal & is_real[:, None, :]) | diagonal)[:, None]
