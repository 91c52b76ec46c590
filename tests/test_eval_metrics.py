"""Scoring records and aggregating scores, on hand-made records in the data schema."""
import os

import pytest

from common.errors import PhysloraError
from data.schema import load_records
from evaluation.metrics import (
    normalize_text, rate, scenario_report, score_record, score_scenario, summarize,
)

RECORDS = {r["id"]: r for r in load_records(os.path.join(os.path.dirname(__file__), "fixtures", "eval", "records.jsonl"))}


def _scenario(mode: str) -> dict:
    return {"id": f"s-{mode}", "task": "physics_scenario", "prompt": "", "target": "",
            "answer": {"fails": mode != "none", "mode": mode}}


# --- physics scenarios ---------------------------------------------------------------------

def test_scenario_in_the_exact_format_is_correct_and_compliant():
    score = score_record(RECORDS["scenario-tipping"], "YES\nFAILURE_MODE: tipping\nREASONING: tall.")
    assert score["correct"] and score["binary_correct"] and score["format_ok"]
    assert (score["id"], score["task"], score["pred_class"]) == ("scenario-tipping", "physics_scenario", "tipping")


def test_scenario_with_the_wrong_mode_is_right_only_in_the_binary_sense():
    score = score_record(RECORDS["scenario-tipping"], "YES\nFAILURE_MODE: slipping")
    assert score["binary_correct"] and not score["correct"]


def test_unparseable_scenario_output_is_scored_wrong_not_skipped():
    score = score_record(RECORDS["scenario-safe"], "The book is fine, I think.")
    assert (score["correct"], score["binary_correct"], score["pred_class"]) == (False, False, "unparsed")


@pytest.mark.parametrize("output", ["YES", "YES\nFAILURE_MODE: none"])
def test_yes_without_a_failure_mode_is_unparsed_but_keeps_its_verdict(output):
    score = score_record(RECORDS["scenario-tipping"], output)
    assert (score["pred_class"], score["binary_correct"], score["correct"]) == ("unparsed", True, False)


def test_no_that_names_a_failure_mode_is_unparsed():
    assert score_record(RECORDS["scenario-safe"], "NO\nFAILURE_MODE: tipping")["pred_class"] == "unparsed"


def test_no_without_a_mode_line_means_no_failure():
    score = score_record(RECORDS["scenario-safe"], "No.")
    assert score["correct"] and not score["format_ok"]


def test_scenario_report_on_a_hand_counted_set():
    outputs = [
        ("tipping", "YES\nFAILURE_MODE: tipping"),  # right
        ("tipping", "YES\nFAILURE_MODE: slipping"),  # right verdict, wrong mode
        ("tipping", "I am not sure."),  # unparsed
        ("slipping", "Yes.\nFailure mode: slipping"),  # right, not compliant
        ("slipping", "NO\nFAILURE_MODE: none"),  # missed failure
        ("none", "NO\nFAILURE_MODE: none"),  # right
        ("none", "YES\nFAILURE_MODE: tipping"),  # false alarm
        ("none", "No."),  # right, not compliant
    ]
    report = scenario_report([score_scenario(_scenario(mode), output) for mode, output in outputs])
    counts = lambda name: (report[name]["k"], report[name]["n"])  # noqa: E731
    assert counts("mode_accuracy_on_failing") == (2, 5)
    assert counts("binary_accuracy") == (5, 8)
    assert counts("accuracy") == (4, 8)
    assert counts("format_compliance") == (5, 8)
    assert {mode: (r["k"], r["n"]) for mode, r in report["per_mode_accuracy"].items()} == {
        "tipping": (1, 3), "slipping": (1, 2), "none": (2, 3)}
    nonzero = {(true, pred): count for true, row in report["confusion"].items()
               for pred, count in row.items() if count}
    assert nonzero == {
        ("tipping", "tipping"): 1, ("tipping", "slipping"): 1, ("tipping", "unparsed"): 1,
        ("slipping", "slipping"): 1, ("slipping", "none"): 1,
        ("none", "none"): 2, ("none", "tipping"): 1,
    }
    assert list(report["confusion"]["none"]) == [
        "tipping", "slipping", "crushing", "sloshing", "collision", "dropping", "rolling_away", "none", "unparsed"]


def test_rates_carry_the_wilson_interval():
    report = scenario_report([score_scenario(_scenario("none"), "NO\nFAILURE_MODE: none")])
    assert report["accuracy"]["rate"] == 1.0
    assert report["accuracy"]["ci95"][1] == 1.0
    assert report["mode_accuracy_on_failing"] == {"k": 0, "n": 0, "rate": None, "ci95": [0.0, 1.0]}
    # Computed independently from the Wilson formula, z = 1.959964 (a Wald interval gives [0.606, 0.973]).
    assert rate(15, 19)["ci95"] == pytest.approx([0.5666572, 0.9149232])


def test_scenario_record_with_an_unknown_mode_is_refused():
    with pytest.raises(PhysloraError, match="answer.mode"):
        score_scenario(_scenario("exploding"), "YES")


# --- numeric -------------------------------------------------------------------------------

@pytest.mark.parametrize("record_id, output, correct", [
    ("numeric-default-tol", "v = 9.8 m/s", True),  # 0.1 % off
    ("numeric-default-tol", "v = 9.6 m/s", False),  # 2.1 % off, default tolerance 1 %
    ("numeric-default-tol", "The answer is 9.81 m/s, not 5 m/s.", True),
    ("numeric-own-tol", "About 96 W", True),  # 4 % off, record allows 5 %
    ("numeric-own-tol", "About 94 W", False),
    ("numeric-negative", "v_x = -4.52 m/s", True),
    ("numeric-negative", "v_x = 4.5 m/s", False),  # the sign matters
    ("numeric-negative", "I cannot compute this.", False),
])
def test_numeric_answer_is_right_within_relative_tolerance(record_id, output, correct):
    assert score_record(RECORDS[record_id], output)["correct"] is correct


def test_numeric_score_reports_what_was_parsed():
    score = score_record(RECORDS["numeric-own-tol"], "P = 1.02e2 W")
    assert (score["pred_value"], score["true_value"], score["rel_tol"]) == (102.0, 100.0, 0.05)


def test_numeric_zero_answer_needs_an_exact_zero():
    record = {"id": "zero", "task": "physics_numeric", "answer": {"value": 0.0, "unit": "N"}}
    assert score_record(record, "0 N")["correct"]
    assert not score_record(record, "1e-9 N")["correct"]


def test_numeric_record_without_value_is_refused():
    record = {"id": "broken", "task": "physics_numeric", "answer": {"unit": "m"}}
    with pytest.raises(PhysloraError, match="'broken'.*answer.value"):
        score_record(record, "3 m")


# --- multiple choice -----------------------------------------------------------------------

@pytest.mark.parametrize("record_id, output, correct", [
    ("mcq-letter", "The answer is B.", True),
    ("mcq-letter", "(C)", False),
    ("mcq-letter", "Neither: they fall together.", False),  # no letter: wrong
    ("mcq-five-options", "Answer: E", True),  # letters come from the options
])
def test_mcq_letter_is_compared_with_the_key(record_id, output, correct):
    assert score_record(RECORDS[record_id], output)["correct"] is correct


def test_mcq_record_whose_key_is_not_an_option_is_refused():
    record = {"id": "bad-mcq", "task": "physics_mcq", "answer": {"choice": "F", "options": {"A": 1, "B": 2}}}
    with pytest.raises(PhysloraError, match="answer.choice"):
        score_record(record, "A")


# --- code ----------------------------------------------------------------------------------

RPN_SOLUTION = """```python
def solve(expression: str) -> int:
    stack = []
    for token in expression.split():
        if token in "+-*":
            b, a = stack.pop(), stack.pop()
            stack.append(a + b if token == "+" else a - b if token == "-" else a * b)
        else:
            stack.append(int(token))
    return stack[0]
```"""


def test_code_answer_passing_every_test_is_correct():
    score = score_record(RECORDS["puzzle-rpn"], "Here is the solution:\n" + RPN_SOLUTION, code_timeout_s=2.0)
    assert (score["correct"], score["tests_passed"], score["tests_total"]) == (True, 2, 2)


def test_code_answer_passing_some_tests_is_wrong():
    wrong = RPN_SOLUTION.replace("a - b", "b - a")  # wrong operand order for "-"
    score = score_record(RECORDS["puzzle-rpn"], wrong, code_timeout_s=2.0)
    assert (score["correct"], score["tests_passed"], score["errors"]) == (False, 1, [None, "WrongAnswer"])


def test_answer_without_code_is_wrong_without_running_anything():
    score = score_record(RECORDS["puzzle-rpn"], "You push operands and pop on operators.")
    assert (score["correct"], score["code_found"], score["errors"]) == (False, False, ["NoCode", "NoCode"])


@pytest.mark.parametrize("answer, message", [({"tests": [{"input": "1"}]}, r"answer.tests\[0\]"),
                                             ({"tests": []}, "answer.tests: .*at least one test case"),
                                             ({"tests": 5}, "answer.tests: 5"),
                                             ({"tests": [{"input": 1, "output": 1}], "function": 5},
                                              "answer.function: 5 is not a Python function name")])
@pytest.mark.parametrize("output", ["def solve(e):\n    return 1\n", ""])  # "": as records are checked before answering
def test_code_record_with_malformed_tests_is_refused_naming_the_record_whatever_the_answer(answer, message, output):
    record = {"id": "bad-puzzle", "task": "puzzle_rpn", "answer": answer}
    with pytest.raises(PhysloraError, match=f"'bad-puzzle'.*{message}"):
        score_record(record, output)


# --- instruction ---------------------------------------------------------------------------

def test_an_instruction_reference_that_is_not_text_is_refused_naming_the_record():
    with pytest.raises(PhysloraError, match="'odd': answer.reference: must be text, got int"):
        score_record({"id": "odd", "task": "instruction", "target": "t", "answer": {"reference": 5}}, "")


def test_normalisation_ignores_case_punctuation_articles_and_spacing():
    assert normalize_text("  The Box -- tips, over!  ") == "box tips over"


def test_instruction_exact_match_after_normalisation_and_rouge_l():
    reference = RECORDS["instruction-1"]["answer"]["reference"]
    exact = score_record(RECORDS["instruction-1"], reference.upper() + "  ")
    assert exact["correct"] and exact["rouge_l"] == 1.0
    # 15 reference tokens, 4 predicted, all in order: P = 1, R = 4/15, F = 2*(4/15)/(1 + 4/15) = 8/19
    partial = score_record(RECORDS["instruction-1"], "centre of mass high")
    assert not partial["correct"]
    assert partial["rouge_l"] == pytest.approx(8 / 19)


# --- summary -------------------------------------------------------------------------------

def test_summary_gives_each_task_its_accuracy_and_own_metrics():
    scores = [
        score_record(RECORDS["scenario-tipping"], "YES\nFAILURE_MODE: tipping"),
        score_record(RECORDS["scenario-safe"], "YES\nFAILURE_MODE: tipping"),
        score_record(RECORDS["mcq-letter"], "B"),
        score_record(RECORDS["instruction-1"], "centre of mass high"),
        score_record(RECORDS["puzzle-rpn"], "no code"),
    ]
    summary = summarize(scores)
    assert sorted(summary) == ["instruction", "physics_mcq", "physics_scenario", "puzzle_rpn"]
    assert (summary["physics_scenario"]["accuracy"]["k"], summary["physics_scenario"]["accuracy"]["n"]) == (1, 2)
    assert summary["physics_scenario"]["mode_accuracy_on_failing"]["rate"] == 1.0
    assert summary["physics_mcq"]["accuracy"]["rate"] == 1.0
    assert summary["instruction"]["rouge_l"] == pytest.approx(8 / 19)
    assert summary["puzzle_rpn"]["tests_passed"]["k"] == 0


def test_unknown_task_is_refused():
    with pytest.raises(PhysloraError, match="unknown task"):
        score_record({"id": "x", "task": "poetry", "answer": "roses"}, "violets")
