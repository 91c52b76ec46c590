"""The fixed-shape decoding step (model/decode_step.py) is the ordinary step with other shapes: same
logits, same tokens. On CPU it runs eagerly; on CUDA its CUDA-graph replay must generate the tokens
of eager decoding (those tests need a GPU)."""
import pytest
import torch

from common.errors import PhysloraError
from lora.adapter import LoRASettings, inject
from model import sampler
from model.decode_step import DecodeStep
from model.sampler import SamplingParams, generate
from model.transformer import KVCache
from tiny_models import TINY, make_pair

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def random_prompts(lengths):
    return [torch.randint(3, TINY["vocab_size"], (n,)).tolist() for n in lengths]


@pytest.mark.parametrize("name", ["qwen2-untied", "llama3-gqa-rope-scaling"])
def test_fixed_shape_step_gives_the_logits_of_the_ordinary_step_over_a_left_padded_batch(name):
    _, model = make_pair(name)
    prompt_len, steps, batch = 9, 6, 3
    is_real = torch.ones(batch, prompt_len + steps, dtype=torch.bool)
    is_real[1, :4] = False  # row 1 has 4 left-padding slots, row 2 one
    is_real[2, :1] = False
    ids = torch.randint(3, TINY["vocab_size"], (batch, prompt_len + steps))
    positions = (is_real.cumsum(-1) - 1).clamp(min=0)
    prefill_mask = (torch.ones(prompt_len, prompt_len, dtype=torch.bool).tril()
                    & is_real[:, None, :prompt_len]) | torch.eye(prompt_len, dtype=torch.bool)
    caches = [KVCache(model.config, batch, prompt_len + steps, torch.float32, "cpu") for _ in range(2)]
    with torch.inference_mode():
        for cache in caches:
            model(ids[:, :prompt_len], positions=positions[:, :prompt_len], mask=prefill_mask[:, None], cache=cache)
        fixed_step = DecodeStep(model, caches[1], is_real, graph=False)
        for slot in range(prompt_len, prompt_len + steps):
            ordinary = model(ids[:, slot:slot + 1], positions=positions[:, slot:slot + 1],
                             mask=is_real[:, None, None, :slot + 1], cache=caches[0], cache_start=slot)[:, -1]
            fixed = fixed_step(ids[:, slot], positions[:, slot], slot)
            assert (fixed - ordinary).abs().max().item() <= 1e-5, f"slot {slot}"


@pytest.mark.parametrize("name", ["qwen2-tied", "llama3-gqa-rope-scaling"])
def test_fixed_shape_decoding_generates_the_tokens_of_eager_decoding_with_padding_and_stops(name):
    _, model = make_pair(name)
    prompts = random_prompts([5, 13, 9, 1])
    params = SamplingParams(max_new_tokens=14)
    free = generate(model, prompts, params, stop_ids=[], pad_id=0, decode="eager")
    stop_token = free[0][2]  # row 0 stops early: eager decoding then drops it from the batch, a fixed step can't
    eager = generate(model, prompts, params, stop_ids=[stop_token], pad_id=0, decode="eager")
    fixed = generate(model, prompts, params, stop_ids=[stop_token], pad_id=0, decode="fixed")
    assert fixed == eager
    assert len(eager[0]) == free[0].index(stop_token) < max(len(row) for row in eager)


def test_auto_decoding_on_cpu_is_the_ordinary_step(monkeypatch):
    _, model = make_pair("qwen2-tied")

    def refuse(*args, **kwargs):
        raise AssertionError("auto built a fixed-shape step on CPU")
    monkeypatch.setattr(sampler, "DecodeStep", refuse)
    assert len(generate(model, random_prompts([4]), SamplingParams(max_new_tokens=3), [], 0)[0]) == 3


def test_unknown_decode_mode_is_refused():
    _, model = make_pair("qwen2-tied")
    with pytest.raises(ValueError, match="decode: got 'compiled'"):
        generate(model, random_prompts([4]), SamplingParams(max_new_tokens=3), [], 0, decode="compiled")


def test_a_cuda_graph_needs_a_cuda_model():
    _, model = make_pair("qwen2-tied")
    with pytest.raises(PhysloraError, match="CUDA graph needs the model on a CUDA device, not cpu"):
        generate(model, random_prompts([4]), SamplingParams(max_new_tokens=3), [], 0, decode="graph")


@needs_gpu
@pytest.mark.parametrize("name", ["qwen2-untied", "llama3-gqa-rope-scaling"])
def test_cuda_graph_decoding_generates_the_tokens_of_eager_decoding(name):
    _, model = make_pair(name)
    model = model.to("cuda")
    prompts = random_prompts([5, 13, 9, 1])
    params = SamplingParams(max_new_tokens=24)
    eager = generate(model, prompts, params, stop_ids=[], pad_id=0, decode="eager")
    assert generate(model, prompts, params, stop_ids=[], pad_id=0, decode="graph") == eager


@needs_gpu
@pytest.mark.parametrize("name", ["qwen2-untied", "llama3-gqa-rope-scaling"])
def test_cuda_graph_decoding_in_bf16_replays_the_fixed_shape_step_exactly(name):
    # Against the same step run without a graph, not against eager decoding: in bf16 eager attention over the
    # filled prefix may round differently from the masked whole cache, and a near tie would flip a token.
    _, model = make_pair(name)
    model = model.to("cuda", torch.bfloat16)
    prompts = random_prompts([5, 13, 9, 1])
    params = SamplingParams(max_new_tokens=24)
    fixed = generate(model, prompts, params, stop_ids=[], pad_id=0, decode="fixed")
    assert generate(model, prompts, params, stop_ids=[], pad_id=0, decode="graph") == fixed


@needs_gpu
def test_cuda_graph_decoding_with_a_lora_adapter_generates_the_tokens_of_eager_decoding():
    _, model = make_pair("llama3-gqa-rope-scaling")
    inject(model, LoRASettings(rank=8, alpha=16, targets=("q_proj", "v_proj", "down_proj")))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.2)  # B starts at zero: make the adapter change the output
    model = model.to("cuda").eval()
    prompts = random_prompts([6, 11])
    params = SamplingParams(max_new_tokens=20)
    eager = generate(model, prompts, params, stop_ids=[], pad_id=0, decode="eager")
    assert generate(model, prompts, params, stop_ids=[], pad_id=0, decode="graph") == eager


@needs_gpu
def test_a_generation_captures_its_graph_once(monkeypatch):
    _, model = make_pair("qwen2-tied")
    model = model.to("cuda")
    captures = []
    original = DecodeStep._capture
    monkeypatch.setattr(DecodeStep, "_capture", lambda self: (captures.append(1), original(self)))
    generate(model, random_prompts([4, 6]), SamplingParams(max_new_tokens=10), [], 0, decode="graph")
    assert captures == [1]
