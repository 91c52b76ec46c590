"""train.py end to end, driven through main(argv) on a tiny random model saved as an HF folder."""
import json
import math
import os
import shutil

import peft
import pytest
import torch
import transformers
from safetensors.torch import load_file

import model.loss
import train
from common.errors import PhysloraError
from lora.adapter import load_adapter
from model.loading import load_model
from tiny_models import write_tiny_model

ALL_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
FAILURE_MODES = ["tipping", "slipping", "crushing", "sloshing", "collision", "dropping", "rolling_away", "none"]


def physics_record(split, i):
    return {"id": f"{split}-{i}", "task": "physics_scenario", "split": split,
            "prompt": f"Case {i}: a {'wide ' * (i % 3)}box rides on a tray. Will it fail?",
            "target": f"{'YES' if i % 2 else 'NO'}, {FAILURE_MODES[i % len(FAILURE_MODES)]}",
            "answer": None, "meta": {}}


def write_jsonl(path, records):
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)


def write_data(folder, train_size=8, val_size=4) -> str:
    os.makedirs(folder, exist_ok=True)
    write_jsonl(os.path.join(folder, "train.jsonl"), [physics_record("train", i) for i in range(train_size)])
    write_jsonl(os.path.join(folder, "val.jsonl"), [physics_record("val", i) for i in range(val_size)])
    return str(folder)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_data(tmp_path_factory.mktemp("data"))


def run(tiny, data, out, *flags):
    train.main(["--model", tiny, "--data", data, "--out", str(out), *map(str, flags)])
    return str(out)


def metrics(run_dir, key="loss") -> dict:
    """{step: value} of one metric in RUN/metrics.jsonl (each step must hold it once)."""
    steps = [(m["step"], m[key]) for m in records(run_dir) if key in m]
    assert len(steps) == len(dict(steps)), f"a step logs {key} twice: {steps}"
    return dict(steps)


MEASURED = ("tokens_per_s", "peak_memory_mib")  # depend on the machine and the moment, not on the run


def records(run_dir) -> list:
    """Every record of RUN/metrics.jsonl in order, less the MEASURED fields: what two equal runs share."""
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [{k: v for k, v in m.items() if k not in MEASURED} for m in map(json.loads, f)]


def test_overfits_eight_examples_below_0_05(tiny, data, tmp_path):
    out = run(tiny, data, tmp_path / "run", "--targets", ALL_TARGETS, "--rank", 16, "--alpha", 32, "--dropout", 0,
              "--lr", 5e-3, "--batch-size", 8, "--grad-accum", 1, "--epochs", 150, "--warmup-steps", 5,
              "--eval-every", 1000)
    losses = metrics(out)
    assert len(losses) == 150 and losses[1] > 5
    assert losses[150] < 0.05


def test_run_folder_holds_config_metrics_chart_checkpoint_and_peft_adapter(tiny, data, tmp_path):
    out = run(tiny, data, tmp_path / "run", "--max-steps", 2, "--batch-size", 2, "--grad-accum", 2, "--lr", 1e-2)
    assert sorted(os.listdir(out)) == ["adapter_config.json", "adapter_model.safetensors", "checkpoints",
                                       "config.json", "loss.svg", "metrics.jsonl"]
    assert os.listdir(os.path.join(out, "checkpoints")) == ["step-2"]
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["settings"]["rank"] == 8 and config["settings"]["targets"] == "q_proj,v_proj"
    assert config["versions"]["torch"] == torch.__version__ and len(config["data"]["train"]["sha256"]) == 64
    with open(os.path.join(out, "metrics.jsonl")) as f:
        step = next(m for m in map(json.loads, f) if m.get("step") == 1 and "loss" in m)
    assert set(step) == {"step", "epoch", "loss", "lr", "grad_norm", "tokens_per_s", "padding_share", "peak_memory_mib"}
    assert "<polyline" in open(os.path.join(out, "loss.svg")).read()


def test_final_adapter_gives_the_same_logits_in_peft_and_in_our_loader(tiny, data, tmp_path):
    out = run(tiny, data, tmp_path / "run", "--max-steps", 2, "--lr", 1e-2, "--targets", "q_proj,v_proj,down_proj")
    ours, _ = load_model(tiny)
    load_adapter(ours, out)
    ours.eval()  # injected layers start in training mode (LoRA dropout on)
    hf = transformers.AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    theirs = peft.PeftModel.from_pretrained(hf, out).eval()
    ids = torch.randint(0, 259, (1, 12))
    with torch.no_grad():
        assert (ours(ids) - theirs(ids).logits).abs().max() <= 1e-4
        with theirs.disable_adapter():
            assert (ours(ids) - theirs(ids).logits).abs().max() > 1e-3  # and the adapter did learn something


def test_a_packed_step_has_the_loss_of_a_padded_step_over_the_same_examples(tiny, data, tmp_path):
    every_example = ("--max-steps", 1, "--dropout", 0, "--grad-accum", 1, "--batch-size", 8)  # one step, 8 rows
    padded = run(tiny, data, tmp_path / "padded", *every_example)
    packed = run(tiny, data, tmp_path / "packed", *every_example, "--pack", "--max-len", 512)
    assert abs(metrics(packed)[1] - metrics(padded)[1]) <= 1e-5


def test_refuses_to_overwrite_a_non_empty_out(tiny, data, tmp_path):
    out = run(tiny, data, tmp_path / "run", "--max-steps", 1)
    before = open(os.path.join(out, "adapter_model.safetensors"), "rb").read()
    with pytest.raises(PhysloraError, match="not empty.*--resume.*--overwrite"):
        run(tiny, data, out, "--max-steps", 1, "--seed", 1)
    assert open(os.path.join(out, "adapter_model.safetensors"), "rb").read() == before


def test_overwrite_replaces_the_run(tiny, data, tmp_path):
    out = run(tiny, data, tmp_path / "run", "--max-steps", 2, "--eval-every", 1)
    run(tiny, data, out, "--max-steps", 1, "--overwrite")
    assert os.listdir(os.path.join(out, "checkpoints")) == ["step-1"]
    assert len(metrics(out)) == 1


def test_overwrite_takes_a_half_written_adapter_left_by_a_crash_as_part_of_the_run(tiny, data, tmp_path):
    out = run(tiny, data, tmp_path / "run", "--max-steps", 1)
    open(os.path.join(out, "adapter_model.safetensors.partial"), "wb").close()
    run(tiny, data, out, "--max-steps", 1, "--overwrite")
    assert "adapter_model.safetensors.partial" not in os.listdir(out)


def test_overwrite_refuses_a_folder_that_holds_more_than_a_training_run(tiny, data, tmp_path):
    out = run(tiny, data, tmp_path / "run", "--max-steps", 1)
    open(os.path.join(out, "results.jsonl"), "w").close()  # e.g. evaluate.py's --out, or a user's file
    before = sorted(os.listdir(out))
    with pytest.raises(PhysloraError, match=r"--overwrite: replaces a training run only.*results\.jsonl"):
        run(tiny, data, out, "--max-steps", 1, "--overwrite")
    assert sorted(os.listdir(out)) == before


def test_an_overwrite_that_fails_before_training_leaves_the_old_run_whole(tiny, data, tmp_path):
    out = run(tiny, data, tmp_path / "run", "--max-steps", 1)
    before = {name: os.path.getmtime(os.path.join(out, name)) for name in os.listdir(out)}
    with pytest.raises(PhysloraError, match="nowhere"):
        run(tiny, str(tmp_path / "nowhere"), out, "--max-steps", 1, "--overwrite")
    assert {name: os.path.getmtime(os.path.join(out, name)) for name in os.listdir(out)} == before


def test_three_steps_then_resume_equals_six_steps(tiny, tmp_path):
    data = write_data(tmp_path / "data", train_size=12)  # 6 steps of 2 × 1 rows per epoch
    flags = ("--batch-size", 1, "--grad-accum", 2, "--dropout", 0.1, "--lr", 1e-2, "--epochs", 2, "--eval-every", 2)
    straight = run(tiny, data, tmp_path / "straight", *flags, "--max-steps", 6)
    stopped = run(tiny, data, tmp_path / "stopped", *flags, "--max-steps", 3)
    train.main(["--resume", stopped, "--max-steps", "6"])
    assert len(metrics(straight)) == 6
    # the same records, and one more: the val loss of step 3, where the first part ended
    assert [m for m in records(stopped) if not ("val_loss" in m and m["step"] == 3)] == records(straight)
    assert len(records(stopped)) == len(records(straight)) + 1
    a, b = (load_file(os.path.join(run_dir, "adapter_model.safetensors")) for run_dir in (straight, stopped))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_metrics_line_left_half_written_by_a_killed_run_is_dropped_on_resume(tiny, data, tmp_path):
    out = run(tiny, data, tmp_path / "run", "--max-steps", 2, "--eval-every", 1)
    with open(os.path.join(out, "metrics.jsonl"), "a") as f:
        f.write('{"step": 3, "epo')  # killed while writing step 3's line
    train.main(["--resume", out, "--max-steps", "3"])
    assert sorted(metrics(out)) == [1, 2, 3]


def test_a_run_stopped_after_its_last_checkpoint_but_before_its_adapter_finishes_on_resume(tiny, data, tmp_path,
                                                                                             capsys):
    out = run(tiny, data, tmp_path / "run", "--max-steps", 2, "--eval-every", 1)
    adapter = open(os.path.join(out, "adapter_model.safetensors"), "rb").read()
    for name in ("adapter_model.safetensors", "adapter_config.json", "loss.svg"):
        os.remove(os.path.join(out, name))  # as if stopped in write_loss_chart or save_adapter
    capsys.readouterr()
    train.main(["--resume", out, "--max-steps", "2"])
    assert open(os.path.join(out, "adapter_model.safetensors"), "rb").read() == adapter
    assert os.path.exists(os.path.join(out, "loss.svg")) and "done: step 2/" in capsys.readouterr().out
    train.main(["--resume", out, "--max-steps", "2"])  # a finished run: the same adapter, written again
    assert open(os.path.join(out, "adapter_model.safetensors"), "rb").read() == adapter
    with pytest.raises(PhysloraError, match="already at step 2, past --max-steps 1"):
        train.main(["--resume", out, "--max-steps", "1"])


def test_an_adapter_left_by_a_dry_run_does_not_pass_for_the_resumed_runs_own(tiny, data, tmp_path):
    out = run(tiny, data, tmp_path / "run", "--max-steps", 1, "--eval-every", 1)
    dry_run = open(os.path.join(out, "adapter_model.safetensors"), "rb").read()
    train.main(["--resume", out, "--max-steps", "3"])
    finished = open(os.path.join(out, "adapter_model.safetensors"), "rb").read()
    os.remove(os.path.join(out, "adapter_model.safetensors"))
    with open(os.path.join(out, "adapter_model.safetensors"), "wb") as f:
        f.write(dry_run)  # as if stopped while saving step 3's adapter: the dry run's is still there
    train.main(["--resume", out, "--max-steps", "3"])
    assert open(os.path.join(out, "adapter_model.safetensors"), "rb").read() == finished


def test_resume_refuses_training_data_changed_since_the_run_started(tiny, tmp_path):
    data = write_data(tmp_path / "data", train_size=8)
    out = run(tiny, data, tmp_path / "run", "--max-steps", 1)
    write_data(tmp_path / "data", train_size=5)
    with pytest.raises(PhysloraError, match=r"the train data \(.*train.jsonl\) changed since the run started"):
        train.main(["--resume", out, "--max-steps", "2"])


def test_resuming_a_run_started_from_an_adapter_does_not_need_that_adapter_any_more(tiny, data, tmp_path):
    first = run(tiny, data, tmp_path / "first", "--max-steps", 1)
    out = run(tiny, data, tmp_path / "run", "--max-steps", 1, "--init-adapter", first)
    shutil.rmtree(first)  # the checkpoint holds the weights
    train.main(["--resume", out, "--max-steps", "2"])
    assert sorted(metrics(out)) == [1, 2]


def test_ctrl_c_names_the_checkpoint_and_resuming_from_it_equals_the_uninterrupted_run(tiny, data, tmp_path,
                                                                                       monkeypatch):
    flags = ("--batch-size", 1, "--grad-accum", 2, "--dropout", 0.1, "--lr", 1e-2, "--max-steps", 5,
             "--eval-every", 2)
    straight = run(tiny, data, tmp_path / "straight", *flags)
    learning_rate = train.learning_rate

    def interrupted_at_step_4(step, *rest):
        if step == 4:
            raise KeyboardInterrupt
        return learning_rate(step, *rest)

    monkeypatch.setattr(train, "learning_rate", interrupted_at_step_4)
    with pytest.raises(PhysloraError, match=r"interrupted at step 4; continue from \S*checkpoints.step-2 with: "
                                            r"python train.py --resume \S*interrupted$"):
        run(tiny, data, tmp_path / "interrupted", *flags)
    monkeypatch.undo()
    assert metrics(tmp_path / "interrupted").keys() == {1, 2, 3}  # step 3 was logged after the checkpoint
    train.main(["--resume", str(tmp_path / "interrupted"), "--max-steps", "5"])
    assert records(tmp_path / "interrupted") == records(straight)  # step 3 once, as run again after the resume
    a, b = (load_file(os.path.join(run_dir, "adapter_model.safetensors"))
            for run_dir in (straight, tmp_path / "interrupted"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_changed_settings(tiny, data, tmp_path):
    out = run(tiny, data, tmp_path / "run", "--max-steps", 1, "--lr", "1e-3")
    with pytest.raises(PhysloraError, match="settings come from .*config.json; drop --lr"):
        train.main(["--resume", out, "--lr", "0.1"])
    with pytest.raises(PhysloraError, match="settings come from .*config.json; drop --lr"):
        train.main(["--resume", out, "--lr", "2e-4"])  # the default, given: refused all the same
    train.main(["--resume", out, "--lr", "1e-3", "--max-steps", "2"])  # the run's own value is no change


def test_a_run_saved_before_a_setting_existed_resumes_with_its_default(tiny, data, tmp_path):
    out = run(tiny, data, tmp_path / "run", "--max-steps", 1, "--batch-size", 1, "--grad-accum", 1)
    config_path = os.path.join(out, "config.json")
    config = json.load(open(config_path))
    del config["settings"]["reasoning_share"]
    json.dump(config, open(config_path, "w"))
    train.main(["--resume", out, "--max-steps", "2"])
    assert len(metrics(out)) == 2


def test_bf16_first_loss_is_within_1_percent_of_fp32(tiny, data, tmp_path):
    fp32 = metrics(run(tiny, data, tmp_path / "fp32", "--max-steps", 1, "--dtype", "fp32"))[1]
    bf16 = metrics(run(tiny, data, tmp_path / "bf16", "--max-steps", 1, "--dtype", "bf16"))[1]
    assert abs(bf16 - fp32) <= 0.01 * fp32


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tiny, data, tmp_path, monkeypatch):
    next_token_loss, calls = model.loss.next_token_loss, []

    def loss_turning_nan(*args):
        calls.append(1)
        loss = next_token_loss(*args)
        return loss * math.nan if len(calls) == 3 else loss  # one micro-batch per step: step 3

    monkeypatch.setattr(model.loss, "next_token_loss", loss_turning_nan)  # what MicroBatchLoss calls
    monkeypatch.setattr(train, "evaluate", lambda *args: 1.0)
    with pytest.raises(PhysloraError, match=r"step 3: the training loss is nan; .*checkpoints/step-2\).*lower --lr"):
        run(tiny, data, tmp_path / "run", "--max-steps", 5, "--eval-every", 2, "--grad-accum", 1)
    assert os.listdir(tmp_path / "run" / "checkpoints") == ["step-2"]
    assert not os.path.exists(tmp_path / "run" / "adapter_model.safetensors")


def test_push_to_hub_without_network_fails_clearly_after_saving(tiny, data, tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    with pytest.raises(PhysloraError, match=r"--push-to-hub someone/adapter: upload failed .*saved in .*run"):
        run(tiny, data, tmp_path / "run", "--max-steps", 1, "--push-to-hub", "someone/adapter")
    assert os.path.exists(tmp_path / "run" / "adapter_model.safetensors")


def test_long_prompts_are_truncated_and_counted(tiny, tmp_path, capsys):
    data = write_data(tmp_path / "data")
    write_jsonl(os.path.join(data, "train.jsonl"), [physics_record("train", 0) | {"prompt": "x" * 300}])
    run(tiny, data, tmp_path / "run", "--max-steps", 1, "--max-len", 150)
    assert "(1 prompts truncated to --max-len 150, 0 targets too long and left out, 0 cut after" in capsys.readouterr().out


@pytest.mark.parametrize("content, error", [
    ("", "train.jsonl: no records"),
    ('{"task": "x", "prompt": "p"}\n', r"train.jsonl:1: field 'target' is missing"),
])
def test_bad_training_data_is_named_and_leaves_no_run_folder(tiny, tmp_path, content, error):
    data = write_data(tmp_path / "data")
    with open(os.path.join(data, "train.jsonl"), "w") as f:
        f.write(content)
    with pytest.raises(PhysloraError, match=error):
        run(tiny, data, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing to --overwrite before trying again


def test_one_data_file_is_split_by_its_records_split_field(tiny, tmp_path):
    records = [physics_record("train", i) for i in range(6)] + [physics_record("val", i) for i in range(3)]
    write_jsonl(tmp_path / "all.jsonl", records[::2] + records[1::2])
    out = run(tiny, str(tmp_path / "all.jsonl"), tmp_path / "run", "--max-steps", 1)
    data = json.loads(open(os.path.join(out, "config.json")).read())["data"]
    assert (data["train"]["records"], data["val"]["records"]) == (6, 3)


def test_one_data_file_without_val_records_is_refused(tiny, tmp_path):
    write_jsonl(tmp_path / "train_only.jsonl", [physics_record("train", i) for i in range(6)])
    with pytest.raises(PhysloraError, match='train_only.jsonl: no record with "split": "val"; one file is split'):
        run(tiny, str(tmp_path / "train_only.jsonl"), tmp_path / "run")


def test_missing_data_folder_is_named(tiny, tmp_path):
    with pytest.raises(PhysloraError, match="nowhere: no such file or folder"):
        run(tiny, str(tmp_path / "nowhere"), tmp_path / "run")


@pytest.mark.parametrize("flags, error", [
    (["--grad-accum", "0"], "--grad-accum 0: must be at least 1"),
    (["--dtype", "fp16"], "--dtype fp16: .*loss scaling"),
    (["--dropout", "1"], r"--dropout 1.0: must be in \[0, 1\)"),
    (["--reasoning-share", "1.5"], r"--reasoning-share 1.5: must be in \[0, 1\]"),
    (["--resume", "somewhere", "--overwrite"], "--resume with --overwrite"),
])
def test_invalid_flags_are_refused(flags, error):
    with pytest.raises(PhysloraError, match=error):
        train.main(flags)


def test_help_renders_and_every_flag_shows_its_default():
    parser = train.build_parser()
    assert "--grad-checkpointing" in parser.format_help()
    for action in parser._actions:
        if action.option_strings and action.help and action.default not in (None, False, "==SUPPRESS=="):
            assert "default" in action.help, action.option_strings


def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path, monkeypatch):
    import datetime

    from common import runs

    class FrozenClock(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 12, 1, 12, 0, 0)
    monkeypatch.setattr(runs.datetime, "datetime", FrozenClock)
    first, second = runs.new_run_dir(str(tmp_path)), runs.new_run_dir(str(tmp_path))
    assert (os.path.basename(first), os.path.basename(second)) == ("20261201-120000", "20261201-120000-2")
    assert os.path.isdir(first) and os.path.isdir(second)  # taken when named, not when the run first writes
