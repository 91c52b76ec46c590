"""train.py and evaluate.py on the real default model (SmolLM2-135M-Instruct) and real physics data."""
import json
import os

import pytest

import evaluate
import generate_data
import train


@pytest.fixture(scope="module")
def trained(smollm2_gguf, tmp_path_factory):
    """(data folder, run folder) after two training steps on the real model."""
    root = tmp_path_factory.mktemp("real")
    data, out = str(root / "physics"), str(root / "run")
    generate_data.main(["physics", "--out", data, "--train", "8", "--val", "4",
                        "--test-seen", "2", "--test-unseen", "20"])
    train.main(["--model", smollm2_gguf, "--data", data, "--out", out, "--dtype", "bf16", "--max-steps", "2",
                "--batch-size", "4", "--grad-accum", "1", "--lr", "2e-3", "--warmup-steps", "1"])
    return data, out


def test_two_steps_on_the_real_model_lower_the_physics_val_loss(trained):
    with open(os.path.join(trained[1], "metrics.jsonl")) as f:
        val = {m["step"]: m["val_loss"] for m in map(json.loads, f) if "val_loss" in m}
    assert set(val) == {0, 2}
    assert val[2] < val[0] - 0.1


def test_evaluating_the_real_model_with_and_without_its_adapter_reports_both(smollm2_gguf, trained, tmp_path):
    data, run = trained
    evaluate.main(["--model", smollm2_gguf, "--adapter", run, "--data", data, "--split", "test_unseen",
                   "--dtype", "bf16", "--max-new-tokens", "40", "--out", str(tmp_path / "eval")])
    with open(tmp_path / "eval" / "results.json") as f:
        results = json.load(f)
    assert len(results["examples"]) == 20
    for system in ("base", "lora"):
        assert results["metrics"][system]["test_unseen"]["physics_scenario"]["binary_accuracy"]["n"] == 20
    assert any(e["base"]["output"] != e["lora"]["output"] for e in results["examples"])
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "| test_unseen · physics_scenario | base | lora | McNemar p (base vs lora) |" in report
