"""The data generator and the evaluator agree: every record's own target scores as correct."""
import random

import pytest

import generate_data
from data import physics_dataset
from data.batching import prompt_and_target_ids
from data.physics_dataset import ANSWER_STYLES
from data.schema import load_records
from evaluation.generation import GenerationSettings
from evaluation.metrics import score_record
from model.gguf import read_gguf
from model.tokenizer import Tokenizer


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


@pytest.mark.parametrize("style", ANSWER_STYLES)
def test_the_token_budget_exceeds_the_longest_target_of_each_answer_style(smollm2_gguf, style):
    tokenizer = Tokenizer.from_gguf_metadata(read_gguf(smollm2_gguf).metadata)
    splits, _ = physics_dataset.generate(physics_dataset.DEFAULT_SIZES, 3, physics_dataset.DEFAULT_DIFFICULTY,
                                         answer_style=style)
    records = [record for split in splits.values() for record in split]
    longest = max(len(prompt_and_target_ids(tokenizer, r["prompt"], r["target"])[1]) for r in records)
    assert longest < GenerationSettings().budget(records[0])
