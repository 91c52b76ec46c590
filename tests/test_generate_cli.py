"""`generate.py` on the real default model: prints only the new text, then a one-line summary."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_generate(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "generate.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_raw_completion_prints_only_the_new_text(smollm2_gguf):
    result = run_generate("--model", smollm2_gguf, "--raw", "--max-new-tokens", "4", "The capital of France is")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(" Paris")
    assert "The capital of France" not in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("generated 4 tokens for 1 prompt(s)")


def test_several_prompts_print_one_answer_each_in_order(smollm2_gguf):
    result = run_generate("--model", smollm2_gguf, "--raw", "--max-new-tokens", "2",
                          "The capital of France is", "The capital of Italy is")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()[:2]
    assert "Paris" in first and "Rome" in second


def test_jsonl_prints_each_prompt_with_its_output_as_one_json_line(smollm2_gguf):
    prompts = ["The capital of France is", "The capital of Italy is"]
    result = run_generate("--model", smollm2_gguf, "--raw", "--max-new-tokens", "2", "--jsonl", *prompts)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["prompt"] for line in lines] == prompts
    assert "Paris" in lines[0]["output"] and "Rome" in lines[1]["output"]


def test_adapter_changes_the_answer_and_a_fresh_adapter_does_not(smollm2_gguf, tmp_path):
    import torch
    from lora.adapter import LoRASettings, inject, lora_layers, save_adapter
    from model.loading import load_model

    model, _ = load_model(smollm2_gguf)
    inject(model, LoRASettings(rank=4, alpha=8, targets=("q_proj", "v_proj")))
    save_adapter(model, str(tmp_path / "fresh"))
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_B.normal_(0, 0.5)
    save_adapter(model, str(tmp_path / "noisy"))
    prompt = ("--model", smollm2_gguf, "--raw", "--max-new-tokens", "4", "The capital of France is")
    base = run_generate(*prompt).stdout
    assert run_generate(*prompt, "--adapter", str(tmp_path / "fresh")).stdout == base
    assert run_generate(*prompt, "--adapter", str(tmp_path / "noisy")).stdout != base


def test_graph_decoding_on_cpu_is_a_one_line_error(smollm2_gguf):
    result = run_generate("--model", smollm2_gguf, "--device", "cpu", "--decode", "graph", "--raw",
                          "--max-new-tokens", "2", "The capital of France is")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: decoding with a CUDA graph needs the model on a CUDA device, not cpu: move it to CUDA or "
        "decode eagerly"]


def test_a_prompt_on_stdin_loses_the_newline_echo_ends_it_with(smollm2_gguf):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "generate.py"), "--model", smollm2_gguf, "--raw",
                             "--max-new-tokens", "1", "--jsonl"], input="The capital of France is\n",
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert json.loads(result.stdout)["prompt"] == "The capital of France is"
