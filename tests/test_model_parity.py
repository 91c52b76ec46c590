"""Our transformer is numerically the reference one: logits, KV-cache decoding and greedy
generation against `transformers` on tiny random Qwen2 and Llama configs (fp32)."""
import pytest
import torch
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from model.sampler import SamplingParams, generate, sample_next, sampling_probabilities
from tiny_models import CONFIGS, TINY, make_pair


@pytest.mark.parametrize("name", CONFIGS)
def test_logits_match_transformers(name):
    hf_model, ours = make_pair(name)
    ids = torch.randint(0, TINY["vocab_size"], (2, 37))
    with torch.no_grad():
        expected = hf_model(ids).logits
        got = ours(ids)
    assert (got - expected).abs().max().item() <= 1e-4


@pytest.mark.parametrize("name", CONFIGS)
def test_logits_match_transformers_over_300_positions(name):
    hf_model, ours = make_pair(name, seed=1)
    ids = torch.randint(0, TINY["vocab_size"], (1, 300))
    with torch.no_grad():
        assert (ours(ids) - hf_model(ids).logits).abs().max().item() <= 1e-4


@pytest.mark.parametrize("name", ["qwen2-tied", "llama3-gqa-rope-scaling"])
def test_incremental_decoding_with_kv_cache_equals_full_forward(name):
    from model.transformer import KVCache
    _, ours = make_pair(name)
    ids = torch.randint(0, TINY["vocab_size"], (2, 20))
    with torch.no_grad():
        full = ours(ids)
        cache = KVCache(ours.config, 2, 32, torch.float32, "cpu")
        pieces = [ours(ids[:, :7], cache=cache, cache_start=0),   # prefill
                  ours(ids[:, 7:12], cache=cache, cache_start=7)]  # a chunk continuing the prefix
        pieces += [ours(ids[:, t:t + 1], cache=cache, cache_start=t) for t in range(12, 20)]
    assert (torch.cat(pieces, dim=1) - full).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name", CONFIGS)
def test_greedy_generation_is_token_identical_to_transformers_generate(name):
    hf_model, ours = make_pair(name)
    prompt = torch.randint(3, TINY["vocab_size"], (1, 11))
    with torch.no_grad():
        hf_out = hf_model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=20,
                                   min_new_tokens=20, do_sample=False, pad_token_id=0, eos_token_id=None)
    ours_out = generate(ours, [prompt[0].tolist()], SamplingParams(max_new_tokens=20), stop_ids=[], pad_id=0)
    assert ours_out[0] == hf_out[0, 11:].tolist()


@pytest.mark.parametrize("name", ["qwen2-untied", "llama3-gqa-rope-scaling"])
def test_batched_generation_with_left_padding_equals_each_prompt_alone(name):
    _, ours = make_pair(name)
    lengths = [5, 13, 9, 1]
    prompts = [torch.randint(3, TINY["vocab_size"], (n,)).tolist() for n in lengths]
    params = SamplingParams(max_new_tokens=12)
    batched = generate(ours, prompts, params, stop_ids=[], pad_id=0)
    alone = [generate(ours, [p], params, stop_ids=[], pad_id=0)[0] for p in prompts]
    assert batched == alone


def test_generation_stops_at_stop_token_per_sequence_and_omits_it():
    _, ours = make_pair("qwen2-tied")
    prompts = [torch.randint(3, TINY["vocab_size"], (n,)).tolist() for n in (4, 8)]
    free = generate(ours, prompts, SamplingParams(max_new_tokens=10), stop_ids=[], pad_id=0)
    stop_token = free[0][3]  # make row 0 stop at its 4th new token
    stopped = generate(ours, prompts, SamplingParams(max_new_tokens=10), stop_ids=[stop_token], pad_id=0)
    assert stopped[0] == free[0][:free[0].index(stop_token)]
    expected_row1 = free[1][:free[1].index(stop_token)] if stop_token in free[1] else free[1]
    assert stopped[1] == expected_row1


def test_sampling_with_fixed_seed_is_reproducible_and_seed_dependent():
    _, ours = make_pair("llama3-gqa-rope-scaling")
    prompt = [[5, 6, 7, 8]]
    params = lambda seed: SamplingParams(max_new_tokens=15, temperature=1.5, top_k=50, top_p=0.95, seed=seed)
    first = generate(ours, prompt, params(1), stop_ids=[], pad_id=0)
    assert first == generate(ours, prompt, params(1), stop_ids=[], pad_id=0)
    assert first != generate(ours, prompt, params(2), stop_ids=[], pad_id=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_greedy_choice_breaks_ties_at_the_first_maximum_as_argmax_does(dtype):
    logits = torch.zeros(3, 1000, dtype=dtype)
    logits[0, [7, 700]] = 2.0
    logits[1, [0, 999]] = 1.0
    logits[2, 500:] = 3.0
    chosen = sample_next(logits, SamplingParams(), torch.Generator())
    assert chosen.tolist() == [7, 0, 500]


def transformers_sampling_probabilities(logits, temperature, top_k, top_p):
    """What transformers' generate samples from: its warpers in its order (temperature, top-k, top-p)."""
    warpers = [TemperatureLogitsWarper(temperature)]
    if top_k:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    scores = logits.clone()
    for warp in warpers:
        scores = warp(None, scores)
    return scores.softmax(dim=-1)


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, 0, 1.0), (0.7, 13, 1.0), (1.3, 0, 0.9),
                                                       (0.8, 40, 0.5), (2.0, 5, 0.99), (1.0, 0, 0.05)])
def test_sampling_distribution_equals_transformers_warpers(temperature, top_k, top_p):
    logits = torch.randn(7, 397) * 3  # fresh values: no ties at the top-k / top-p boundaries
    got = sampling_probabilities(logits, SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p))
    expected = transformers_sampling_probabilities(logits, temperature, top_k, top_p)
    assert torch.equal(got > 0, expected > 0)  # the same tokens survive the filters
    assert (got - expected).abs().max().item() <= 1e-6


@pytest.mark.parametrize("temperature", [1e-20, 1e-45, 1e-300])
def test_a_tiny_temperature_samples_the_best_token(temperature):
    logits = torch.randn(5, 397) * 3
    params = SamplingParams(temperature=temperature, top_p=0.5)
    drawn = sample_next(logits, params, torch.Generator().manual_seed(0))
    assert torch.equal(drawn, logits.argmax(dim=-1))


def test_sampled_tokens_come_from_the_filtered_distribution_only():
    logits = torch.randn(1, 101).expand(4000, -1)
    params = SamplingParams(temperature=1.0, top_k=10, top_p=0.6)
    allowed = sampling_probabilities(logits[:1], params)[0] > 0
    drawn = sample_next(logits, params, torch.Generator().manual_seed(0))
    assert allowed[drawn].all() and len(drawn.unique()) > 1
