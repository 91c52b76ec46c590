"""The data generator and the evaluator agree: every record's own target scores as correct."""
import random

import pytest

import generate_data
from data.schema import load_records
from evaluation.metrics import score_record


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    generate_data.main(["physics", "--out", str(root / "physics"), "--seed", "3"])
    generate_data.main(["qa", "--out", str(root / "qa"), "--seed", "3"])
    generate_data.main(["puzzles", "--out", str(root / "puzzles"), "--seed", "3"])
    return root


@pytest.mark.parametrize("kind", ["physics", "qa"])
def test_every_target_scores_correct(generated, kind):
    records = load_records(str(generated / kind))
    wrong = [r["id"] for r in records if not score_record(r, r["target"])["correct"]]
    assert not wrong, wrong[:5]


def test_physics_targets_are_format_compliant(generated):
    records = load_records(str(generated / "physics"))
    assert all(score_record(r, r["target"])["format_ok"] for r in records)


def test_puzzle_reference_solutions_pass_in_the_sandbox(generated):
    records = random.Random(0).sample(load_records(str(generated / "puzzles")), 6)
    assert all(score_record(r, r["target"])["correct"] for r in records)
