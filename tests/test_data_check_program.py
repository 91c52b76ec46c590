"""Check programs: the teacher writes every check as arithmetic, the calculator runs it with the
rules that labelled the data, and nothing but arithmetic ever runs."""
import json
import math
import os
import re

import pytest

import generate_data
from common.errors import PhysloraError
from data import check_program, physics_dataset
from data.check_program import evaluate, run_program
from data.schema import load_records
from evaluation.metrics import score_record
from evaluation.report import judgement

SMALL = ["--train", "140", "--val", "28", "--test-seen", "42", "--test-unseen", "42"]


@pytest.fixture(scope="module")
def checks_set(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("checks") / "out")
    generate_data.main(["physics", "--out", out, "--answer-style", "checks", "--seed", "3", *SMALL])
    return out, [r for split in physics_dataset.SPLITS for r in load_records(out, split)]


def test_running_the_teachers_program_gives_the_label_of_every_record(checks_set):
    _, records = checks_set
    for record in records:
        verdict = run_program(record["target"])
        assert verdict is not None, record["target"]
        assert verdict.mode == record["answer"]["mode"], record["id"]
        assert [c.name for c in verdict.checks] == [c["check"] for c in record["answer"]["checks"]]


def test_every_check_is_written_also_after_the_first_failure(checks_set):
    _, records = checks_set
    early = [r for r in records if r["answer"]["checks"][0]["fails"] and len(r["answer"]["checks"]) > 1]
    assert early, "the fixture should hold a failure decided before the last check"
    for record in early:
        assert len(record["target"].splitlines()) == 1 + len(record["answer"]["checks"])


def test_the_programs_numbers_are_copied_from_the_prompt(checks_set):
    """The student never computes: every number is in the prompt, or g, or a fixed constant of a formula."""
    _, records = checks_set
    constants = {"9.81", "2", "1", "100", "0.02"}
    for record in records:
        prompt_numbers = set(re.findall(r"\d+(?:\.\d+)?", record["prompt"]))
        for number in re.findall(r"\d+(?:\.\d+)?", record["target"]):
            assert number in prompt_numbers or number in constants, (number, record["id"])


def test_checks_records_ask_for_a_program_and_say_so_in_meta_and_card(checks_set):
    out, records = checks_set
    assert all(r["prompt"].endswith("\n" + check_program.QUESTION) for r in records)
    assert all(r["meta"]["answer_style"] == "checks" and r["target"].startswith("CHECKS:\n") for r in records)
    assert "answer_style" in json.load(open(os.path.join(out, "card.json")))


def test_the_answer_style_changes_only_prompts_and_targets(tmp_path):
    generate_data.main(["physics", "--out", str(tmp_path / "v"), *SMALL])
    generate_data.main(["physics", "--out", str(tmp_path / "c"), "--answer-style", "checks", *SMALL])
    for split in physics_dataset.SPLITS:
        verdicts, programs = load_records(str(tmp_path / "v"), split), load_records(str(tmp_path / "c"), split)
        for v, c in zip(verdicts, programs, strict=True):
            assert v["answer"] == c["answer"]
            assert v["prompt"].split("\n")[0] == c["prompt"].split("\n")[0]
            assert {**v["meta"], "answer_style": "checks"} == c["meta"]


def test_the_first_failing_check_decides_and_within_it_the_lowest_exceeded_limit():
    program = ("CHECKS:\n"
               "grip_crush: 3 > crushing 8\n"
               "tray_accel: 0.5 > slipping 0.4, tipping 0.3\n"
               "gap: 10 > collision 5")
    verdict = run_program(program)
    assert verdict.fails and verdict.mode == "tipping"
    assert run_program("CHECKS:\ngrip_crush: 3 > crushing 8").mode == "none"
    assert run_program("CHECKS:\nincline: tan(30) > slipping 0.5, tipping 0.6").mode == "slipping"  # tan 30° = 0.577


def test_the_calculator_knows_sqrt_tan_in_degrees_and_powers():
    assert evaluate("sqrt(2 * 9.81 * 80 / 100)") == pytest.approx(math.sqrt(2 * 9.81 * 0.8))
    assert evaluate("tan(45)") == pytest.approx(1.0)
    assert evaluate("0.5 ** 2 / (2 * 0.05 * 9.81)") == pytest.approx(0.25 / 0.981)
    assert evaluate("-(1 - 82 / 100)") == pytest.approx(-0.18)


@pytest.mark.parametrize("expression", [
    "__import__('os').system('true')", "x + 1", "(1).real", "abs(-2)", "sqrt(4, 2)", "sqrt(x=4)",
    "2 ** 1000", "10 ** 10 ** 10", "1 / 0", "sqrt(-1)", "'2' * 3", "[1][0]", "1 if 2 else 3", "1 +", "True + 1",
    "(-8) ** 0.5", "1e999", "1e308 * 10 - 1e308 * 10",  # complex, inf, nan: no verdict can come from them
])
def test_the_calculator_refuses_anything_but_arithmetic(expression):
    with pytest.raises(ValueError):
        evaluate(expression)


@pytest.mark.parametrize("text", [
    "",
    "grip_crush: 3 > crushing 8",                      # no header
    "CHECKS:",                                         # no check
    "CHECKS:\ngrip_crush: 3 > smashing 8",             # unknown mode
    "CHECKS:\ngrip_crush: 3 crushing 8",               # no comparison
    "CHECKS:\ngrip_crush: 3 > crushing 8, crushing 9",  # a mode twice
    "CHECKS:\ngrip_crush: 3 > crushing 0",             # a limit that is not positive
    "CHECKS:\ngrip_crush: 3 > crushing 8\nYES",        # a line that is not a check
    "CHECKS:\ngrip_crush: (-8) ** 0.5 > crushing 3",   # a complex load (it crashed the scoring)
    "CHECKS:\ngrip_crush: 3 > crushing (1 - 2) ** 0.5",  # a complex limit
    "CHECKS:\ngrip_crush: 1e308 * 10 - 1e308 * 10 > crushing 3",  # a nan load (it read as no failure)
])
def test_a_malformed_program_is_unparsed_not_guessed(text):
    assert run_program(text) is None


def test_a_checks_record_is_scored_by_the_calculator(checks_set):
    _, records = checks_set
    record = next(r for r in records if r["answer"]["mode"] == "dropping")
    right = score_record(record, record["target"])
    assert right["correct"] and right["binary_correct"] and right["format_ok"] and right["pred_class"] == "dropping"
    verdict_text = score_record(record, "YES\nFAILURE_MODE: dropping\nREASONING: it falls.")
    assert not verdict_text["correct"] and verdict_text["pred_class"] == "unparsed" and not verdict_text["format_ok"]


def test_the_teacher_endpoint_is_refused_with_check_programs(tmp_path):
    with pytest.raises(PhysloraError, match="--answer-style checks"):
        generate_data.main(["physics", "--out", str(tmp_path), "--answer-style", "checks",
                            "--teacher-url", "http://127.0.0.1:9/v1", "--teacher-model", "m", *SMALL])


def test_the_report_says_what_a_program_was_read_as(checks_set):
    _, records = checks_set
    record = next(r for r in records if r["answer"]["mode"] == "tipping")
    assert judgement(score_record(record, record["target"])) == "right, read as tipping"
    assert judgement({"correct": False}) == "wrong"
