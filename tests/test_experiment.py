"""experiment.py --quick: the whole chain on the real default model (data, training, evaluation, report)."""
import json
import os

import pytest

import experiment
import train
from common.errors import Interrupted
from tiny_models import write_tiny_model


@pytest.fixture(scope="module")
def quick(smollm2_gguf, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("experiment") / "quick")
    return experiment.main(["--quick", "--model", smollm2_gguf, "--out", out]), out


def test_quick_experiment_writes_the_report_with_both_systems_on_both_test_splits(quick):
    report_path, out = quick
    assert report_path == os.path.join(out, "report.md")
    report = open(report_path).read()
    for split in ("test_seen", "test_unseen"):
        assert f"| {split} · physics_scenario | base | lora | McNemar p (base vs lora) |" in report
        assert f"Confusion matrix, lora, {split}" in report
    assert "![loss curve](loss.svg)" in report and os.path.getsize(os.path.join(out, "loss.svg")) > 0
    assert "| train |" in report and "| evaluate |" in report and "## Sample answers" in report
    assert "- `--rank` 8" in report and "- `--alpha` 32.0" in report


def test_quick_experiment_trains_and_evaluates_at_its_tiny_sizes(quick):
    _, out = quick
    with open(os.path.join(out, "eval", "results.json")) as f:
        results = json.load(f)
    assert len(results["examples"]) == 8 + 16
    with open(os.path.join(out, "train", "metrics.jsonl")) as f:
        assert max(m["step"] for m in map(json.loads, f)) == 6


def test_a_finished_experiment_resumes_without_redoing_any_stage(quick, capsys):
    report_path, out = quick
    before = open(report_path).read()
    experiment.main(["--resume", out])
    printed = capsys.readouterr().out
    assert "== data: already done" in printed and "== train: already done" in printed
    assert "base: all 24 answers already in" in printed and "lora: all 24 answers already in" in printed
    after = open(report_path).read()
    assert after.split("| system |")[1].split("## Settings")[0] == before.split("| system |")[1].split("## Settings")[0]


def test_ctrl_c_in_training_says_to_resume_the_experiment_not_train_py(tmp_path, monkeypatch):
    def interrupted(step, *rest):
        raise KeyboardInterrupt
    monkeypatch.setattr(train, "learning_rate", interrupted)
    out = tmp_path / "experiment"
    with pytest.raises(Interrupted, match=f"^interrupted; continue with: python experiment.py --resume {out}$"):
        experiment.main(["--quick", "--model", write_tiny_model(tmp_path / "tiny"), "--out", str(out)])


def test_an_experiment_stopped_before_its_adapter_resumes_to_the_same_max_steps(tmp_path, monkeypatch):
    flags = ["--quick", "--model", write_tiny_model(tmp_path / "tiny"), "--out", str(tmp_path / "experiment"),
             "--max-steps", "3", "--eval-every", "1"]
    save_adapter = train.save_adapter

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(train, "save_adapter", stopped)
    with pytest.raises(Interrupted):
        experiment.main(flags)
    monkeypatch.setattr(train, "save_adapter", save_adapter)
    experiment.main(["--resume", str(tmp_path / "experiment")])
    with open(tmp_path / "experiment" / "train" / "metrics.jsonl") as f:
        assert max(m["step"] for m in map(json.loads, f)) == 3  # finished at --max-steps, not trained on
