"""train.py on the real default model (SmolLM2-135M-Instruct) and the real physics data."""
import json
import os

import generate_data
import train


def test_two_steps_on_the_real_model_lower_the_physics_val_loss(smollm2_gguf, tmp_path):
    data, out = str(tmp_path / "physics"), str(tmp_path / "run")
    generate_data.main(["physics", "--out", data, "--train", "8", "--val", "4",
                        "--test-seen", "1", "--test-unseen", "1"])
    train.main(["--model", smollm2_gguf, "--data", data, "--out", out, "--dtype", "bf16", "--max-steps", "2",
                "--batch-size", "4", "--grad-accum", "1", "--lr", "2e-3", "--warmup-steps", "1"])
    with open(os.path.join(out, "metrics.jsonl")) as f:
        val = {m["step"]: m["val_loss"] for m in map(json.loads, f) if "val_loss" in m}
    assert set(val) == {0, 2}
    assert val[2] < val[0] - 0.1
