"""Bad command-line input stops with one line naming the flag, file or path and what to do, before any work."""
import json
import os
import subprocess
import sys

import pytest
import torch

import bench
import evaluate
import experiment
import generate
import improve
import train
from common import errors
from common.cli import check_adapter_folder, check_device
from common.errors import PhysloraError, user_errors_are_one_line
from common.runs import resumed_settings
from lora.adapter import read_adapter_settings
from tiny_models import write_tiny_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_cuda_device_without_cuda_is_refused():
    with pytest.raises(PhysloraError, match="--device cuda: no CUDA device is visible to torch here; use --device cpu"):
        check_device("cuda")


def test_a_device_torch_does_not_know_is_refused():
    with pytest.raises(PhysloraError, match="--device tpu9: not a torch device"):
        check_device("tpu9")


def test_a_device_type_without_a_backend_here_is_refused():
    with pytest.raises(PhysloraError, match="--device meta: meta is not available here; use --device cpu"):
        check_device("meta")


def test_a_nan_temperature_is_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        generate.parse_args(["--temperature", "nan", "hi"])
    assert stop.value.code == 2 and "need --temperature >= 0" in capsys.readouterr().err


def test_an_empty_raw_prompt_is_refused(tiny):
    with pytest.raises(PhysloraError, match="prompt 2 is empty"):
        generate.main(["--model", tiny, "--raw", "hi", ""])


def test_a_budget_beyond_the_context_is_refused_before_allocating_the_cache(tiny):
    with pytest.raises(PhysloraError, match=r"--max-new-tokens 100000000 exceeds .* context of 1024 tokens"):
        generate.main(["--model", tiny, "--raw", "--max-new-tokens", "100000000", "hi"])


@pytest.mark.parametrize("flags, message", [(["--top-p", "0"], "--top-p 0.0: the nucleus"),
                                            (["--top-p", "2"], "--top-p 2.0: the nucleus"),
                                            (["--code-timeout", "0"], "--code-timeout 0.0: must be > 0"),
                                            (["--temperature", "nan"], "--temperature nan: must be at least 0")])
def test_evaluate_refuses_sampling_flags_out_of_range(flags, message):
    with pytest.raises(PhysloraError, match=message):
        evaluate.parse_settings(["--data", "anything.jsonl", *flags])


def test_a_path_the_file_system_refuses_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as stop, user_errors_are_one_line():
        os.makedirs(blocker / "run")
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {blocker / 'run'}: Not a directory; check the path, its parent folders and their permissions"]


def test_train_refuses_an_unknown_lora_target_before_loading_the_model():
    with pytest.raises(PhysloraError, match=r"--targets q_proj,bogus_proj: unknown 'bogus_proj'; choose from q_proj,"):
        train.parse_settings(["--targets", "q_proj,bogus_proj"])


@pytest.mark.parametrize("flag, message", [
    (["--eval-batch-size", "0"], r"evaluation settings: --batch-size 0: must be at least 1 \(evaluate.py's --batch-size "
                                 r"is experiment.py's --eval-batch-size\)"),
    (["--rank", "0"], "training settings: --rank 0: must be at least 1")])
def test_experiment_checks_its_training_and_evaluation_settings_before_generating_data(flag, message, tmp_path):
    with pytest.raises(PhysloraError, match=message):
        experiment.parse_settings(["--quick", "--out", str(tmp_path / "run"), *flag])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv", [["lora", "--reps", "0"], ["generate", "--batches", "1", "0"],
                                  ["train", "--batch", "0"], ["train", "--physics-rounds", "-1"], ["kernels", "--tokens", "0"]])
def test_bench_refuses_a_count_below_one(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(argv)
    assert stop.value.code == 2 and "must be a whole number, at least 1" in capsys.readouterr().err


def test_resuming_a_run_whose_config_is_corrupt_names_the_file(tmp_path):
    (tmp_path / "config.json").write_text("{bad")
    with pytest.raises(PhysloraError, match=r"config.json is not a run's config.json \(JSONDecodeError"):
        resumed_settings(evaluate.build_parser(), ["--resume", str(tmp_path)], evaluate.PER_INVOCATION, "evaluate.py")


@pytest.mark.parametrize("config, message", [
    ({"peft_type": "LORA", "lora_alpha": 16}, "no 'r'; an adapter config needs r and lora_alpha"),
    ({"peft_type": "LORA", "r": "eight", "lora_alpha": 16}, "r, lora_alpha and lora_dropout must be numbers"),
    (["peft_type", "LORA"], "holds a JSON list, not an adapter config object"),
    ({"peft_type": "LORA", "r": 0, "lora_alpha": 16, "target_modules": ["q_proj"]}, "r=0 must be a whole number >= 1"),
    ({"peft_type": "LORA", "r": 4.5, "lora_alpha": 16, "target_modules": ["q_proj"]}, "r=4.5 must be a whole number"),
    ({"peft_type": "LORA", "r": 4, "lora_alpha": "inf", "target_modules": ["q_proj"]}, "lora_alpha='inf' must be finite"),
    ({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "lora_dropout": 1, "target_modules": ["q_proj"]},
     r"lora_dropout=1.0 must be in \[0, 1\)"),
    ({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": []}, r"target_modules=\[\] names none of q_proj"),
    ({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": 5}, "target_modules=5 must be a list of module"),
    ({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "lm_head"]},
     "target_modules: unknown 'lm_head'")])
def test_a_hand_edited_adapter_config_names_the_file_and_the_field(tmp_path, config, message):
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(PhysloraError, match=f"adapter_config.json: {message}"):
        read_adapter_settings(str(tmp_path))


def test_evaluate_refuses_a_missing_adapter_before_answering_and_leaves_no_folder(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(evaluate, "answer_with", lambda *a, **k: pytest.fail("answered before checking the adapter"))
    with pytest.raises(PhysloraError, match="nowhere: no adapter_config.json"):
        evaluate.main(["--model", tiny, "--data", "data_out/any", "--adapter", str(tmp_path / "nowhere")])
    assert not (tmp_path / "results").exists()


def test_evaluate_refuses_an_unreachable_judge_before_answering(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(evaluate, "answer_with", lambda *a, **k: pytest.fail("answered before checking the judge"))
    with pytest.raises(PhysloraError, match="--judge-url http://127.0.0.1:9/v1: cannot reach the server"):
        evaluate.main(["--model", tiny, "--data", "data_out/any", "--judge-url", "http://127.0.0.1:9/v1",
                       "--judge-model", "j"])


def test_an_adapter_folder_without_weights_is_refused(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}))
    with pytest.raises(PhysloraError, match="no adapter_model.safetensors; pass a folder written by train.py or peft"):
        check_adapter_folder(str(tmp_path))


@pytest.mark.parametrize("command", [improve.main, experiment.main, train.main])
def test_an_unknown_model_is_refused_before_any_data_or_folder_is_made(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PhysloraError, match="qwen9-instruct: no such file or folder, and not a known alias"):
        command(["--model", "qwen9-instruct", "--out", str(tmp_path / "run")])
    assert os.listdir(tmp_path) == []


def test_train_refuses_a_missing_init_adapter_before_loading_the_model(tiny, tmp_path):
    with pytest.raises(PhysloraError, match="nowhere: no adapter_config.json"):
        train.parse_settings(["--model", tiny, "--init-adapter", str(tmp_path / "nowhere")])


def test_under_torchrun_a_bad_flag_every_process_meets_is_said_once(tmp_path):
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "train.py", "--lr", "nan", "--out", str(tmp_path / "run")], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode != 0
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")] == [
        "error: --lr nan and --alpha 16.0: both must be > 0 and finite in float32"]


def test_an_error_of_another_rank_alone_is_said_with_its_rank(monkeypatch, capsys):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setattr(errors, "OTHER_RANKS_WAIT_S", 0)
    with pytest.raises(SystemExit) as stop, user_errors_are_one_line():
        raise PhysloraError("process 3 of this machine has no GPU")
    assert stop.value.code == 2
    assert capsys.readouterr().err == "error: (rank 3) process 3 of this machine has no GPU\n"


@pytest.mark.parametrize("command, saved", [(evaluate, {"lr": 2e-4, "rank": 8, "grad_accum": 2}),
                                            (train, {"split": "test*", "judge_url": None, "limit": None})])
def test_resume_refuses_the_folder_of_another_command(tmp_path, command, saved):
    (tmp_path / "config.json").write_text(json.dumps({"settings": saved}))
    with pytest.raises(PhysloraError, match=rf"its settings \(.*\) are not {command.__name__}\.py's"):
        command.parse_settings(["--resume", str(tmp_path)])


@pytest.mark.parametrize("command", [train, evaluate, improve, experiment])
@pytest.mark.parametrize("seed", ["-1", str(2 ** 32), "99999999999999999999"])
def test_a_seed_torch_cannot_take_is_refused_by_the_parser(command, seed, capsys):
    with pytest.raises(SystemExit):
        command.parse_settings(["--seed", seed])
    assert "a seed is a whole number from 0 to 2^32 - 1" in capsys.readouterr().err


@pytest.mark.parametrize("alpha", ["inf", "1e308"])
def test_an_alpha_beyond_float32_is_refused(alpha):
    with pytest.raises(PhysloraError, match="both must be > 0 and finite in float32"):
        train.parse_settings(["--alpha", alpha])


def test_ctrl_c_where_no_command_says_how_to_continue_is_one_line(capsys):
    with pytest.raises(SystemExit) as stop, user_errors_are_one_line():
        raise KeyboardInterrupt
    assert stop.value.code == 130 and capsys.readouterr().err == "error: interrupted\n"
