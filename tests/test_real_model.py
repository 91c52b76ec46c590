"""The real default model (SmolLM2-135M-Instruct, Q4_1 GGUF) loads with our own code exactly as
transformers (with the gguf package) loads it, and behaves like the real model."""
import os

import pytest
import torch
import transformers

from model.export import export_hf_folder
from model.loading import load_model
from model.sampler import SamplingParams, generate

SENTENCE = "Newton's second law says that the net force on an object equals its mass times its acceleration."


@pytest.fixture(scope="module")
def ours(smollm2_gguf):
    return load_model(smollm2_gguf)


@pytest.fixture(scope="module")
def reference(smollm2_gguf):
    folder, name = os.path.split(smollm2_gguf)
    return transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def exported(ours, tmp_path_factory):
    model, tokenizer = ours
    return export_hf_folder(model, tokenizer, str(tmp_path_factory.mktemp("export") / "smollm2"))


def test_dequantized_weights_equal_transformers_gguf_loader(ours, reference):
    model, _ = ours
    expected = reference.state_dict()
    got = model.state_dict()
    assert set(got) == set(expected)
    worst = max((got[k] - expected[k]).abs().max().item() for k in got)
    assert worst <= 1e-6


def test_config_read_from_gguf_metadata_equals_transformers(ours, reference):
    config, expected = ours[0].config, reference.config
    for field in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                  "num_key_value_heads", "rope_theta", "rms_norm_eps", "tie_word_embeddings", "max_position_embeddings"):
        expected_value = getattr(expected, field, None)
        if expected_value is None:  # transformers 5 keeps rope_theta in rope_parameters
            expected_value = expected.rope_parameters[field]
        assert getattr(config, field) == expected_value, field


def test_logits_equal_transformers_gguf_loader(ours, reference):
    # The oracle independent of our config: transformers reads the GGUF metadata itself, so a wrong
    # rope_theta or rms_norm_eps of ours shows here (an exported folder would carry it to both sides).
    model, tokenizer = ours
    ids = torch.tensor([tokenizer.encode(SENTENCE)])
    with torch.no_grad():
        assert (model(ids) - reference(ids).logits).abs().max().item() <= 1e-4


def test_exported_folder_loads_in_transformers_with_matching_logits(ours, exported):
    model, tokenizer = ours
    hf = transformers.AutoModelForCausalLM.from_pretrained(exported, dtype=torch.float32).eval()
    ids = torch.tensor([tokenizer.encode(SENTENCE)])
    with torch.no_grad():
        assert (model(ids) - hf(ids).logits).abs().max().item() <= 1e-4


def test_exported_tokenizer_loads_in_transformers_and_encodes_identically(ours, exported):
    _, tokenizer = ours
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(exported)
    assert hf_tokenizer(SENTENCE, add_special_tokens=False)["input_ids"] == tokenizer.encode(SENTENCE)


def test_greedy_completion_knows_the_capital_of_france(ours):
    model, tokenizer = ours
    prompt = tokenizer.encode("The capital of France is", add_special_tokens=True)
    new = generate(model, [prompt], SamplingParams(max_new_tokens=8), tokenizer.stop_ids, tokenizer.pad_id)[0]
    assert "Paris" in tokenizer.decode(new)


def test_chat_answer_stops_at_end_of_turn(ours):
    model, tokenizer = ours
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Say hello."}], add_generation_prompt=True)
    new = generate(model, [tokenizer.encode(text)], SamplingParams(max_new_tokens=64), tokenizer.stop_ids,
                   tokenizer.pad_id)[0]
    assert 0 < len(new) < 64
    # Without stop tokens the same greedy answer goes on, and the token it stopped at is an end of turn.
    free = generate(model, [tokenizer.encode(text)], SamplingParams(max_new_tokens=len(new) + 1), [],
                    tokenizer.pad_id)[0]
    assert free[:len(new)] == new and free[len(new)] in tokenizer.stop_ids
