"""Verifiable puzzles: answers checked by independent evaluators, reference solutions pass, no leakage."""
import ast
import random
import re

import pytest

import generate_data
from common.errors import PhysloraError
from data import puzzles
from data.schema import load_records
from evaluation.sandbox import run_tests

CASES_PER_TASK = 3000


def truncating_division(a, b):
    """Division toward zero, written differently from the generator's: floor, then step back up
    when a negative quotient was rounded down."""
    quotient = a // b
    return quotient + 1 if quotient < 0 and quotient * b != a else quotient


def ast_value(node):
    """Evaluate Python's own parse of the expression, with / truncating toward zero."""
    if isinstance(node, ast.Expression):
        return ast_value(node.body)
    if isinstance(node, ast.Constant):
        return node.value
    a, b = ast_value(node.left), ast_value(node.right)
    return {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
            ast.Div: lambda: truncating_division(a, b)}[type(node.op)]()


def stack_rpn(text):
    stack = []
    for token in text.split():
        if token.isdigit():
            stack.append(int(token))
        else:
            right, left = stack.pop(), stack.pop()
            stack.append({"+": left + right, "-": left - right, "*": left * right}.get(token)
                         if token != "/" else truncating_division(left, right))
    assert len(stack) == 1
    return stack[0]


def reduced_brackets(text):
    """Balanced iff deleting adjacent matched pairs again and again leaves nothing."""
    while any(pair in text for pair in ("()", "[]", "{}")):
        text = text.replace("()", "").replace("[]", "").replace("{}", "")
    return text == ""


def cases(task):
    rng = random.Random(7)
    return [(level, *puzzles.make_case(task, rng, level)) for level in range(1, 11)
            for _ in range(CASES_PER_TASK // 10)]


def test_arithmetic_answers_match_an_ast_evaluator():
    for _, text, value in cases("puzzle_arithmetic"):
        assert ast_value(ast.parse(text, mode="eval")) == value, text


def test_rpn_answers_match_a_stack_evaluator():
    for _, text, value in cases("puzzle_rpn"):
        assert stack_rpn(text) == value, text


def test_bracket_answers_match_pair_reduction_and_about_half_are_balanced():
    results = [(reduced_brackets(text), balanced) for _, text, balanced in cases("puzzle_brackets")]
    assert all(expected == balanced for expected, balanced in results)
    share = sum(balanced for _, balanced in results) / len(results)
    assert 0.4 < share < 0.6


def test_division_truncates_toward_zero():
    assert [puzzles.divide(a, b) for a, b in ((7, 2), (-7, 2), (7, -2), (-7, -2))] == [3, -3, -3, 3]


def test_difficulty_sets_the_number_of_operands_and_bracket_pairs():
    rng = random.Random(0)
    for level in (1, 5, 10):
        text, _ = puzzles.make_case("puzzle_arithmetic", rng, level)
        assert len(re.findall(r"\d+", text)) == level + 1
        rpn, _ = puzzles.make_case("puzzle_rpn", rng, level)
        assert len(re.findall(r"\d+", rpn)) == level + 1
    balanced = [puzzles.balanced_string(rng, 6, 2) for _ in range(50)]
    assert all(len(text) == 12 and puzzles.is_balanced(text) for text in balanced)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("puzzles") / "out")
    generate_data.main(["puzzles", "--out", out, "--train", "300", "--val", "60", "--test", "90"])
    return {split: load_records(out, split) for split in ("train", "val", "test")}


def test_the_reference_solution_in_each_target_passes_its_test_cases(generated):
    for record in generated["test"] + generated["val"]:
        code = re.fullmatch(r"```python\n(.*)\n```", record["target"], re.S).group(1)
        namespace = {}
        exec(code, namespace)
        for case in record["answer"]["tests"]:
            assert namespace["solve"](case["input"]) == case["output"]


def test_python_eval_fails_every_arithmetic_problem(generated):
    """eval() divides truly (7 / 2 == 3.5, 8 / 2 == 4.0): the first case of each problem divides, so it fails."""
    arithmetic = [r for r in generated["train"] if r["task"] == "puzzle_arithmetic"]
    for record in arithmetic:
        first = record["answer"]["tests"][0]
        assert "/" in first["input"]
        assert not (isinstance(eval(first["input"]), int) and eval(first["input"]) == first["output"])
    result = run_tests("def solve(expression):\n    return eval(expression)", "solve", arithmetic[0]["answer"]["tests"])
    assert not result.passed


def test_prompts_ask_for_the_signature_and_show_the_first_case(generated):
    for record in generated["train"][:30]:
        first = record["answer"]["tests"][0]
        assert f"`{record['answer']['signature']}`" in record["prompt"]
        assert record["prompt"].endswith(f"solve({first['input']!r}) == {first['output']!r}")


def test_no_test_input_appears_in_two_splits(generated):
    inputs = {split: {case["input"] for r in records for case in r["answer"]["tests"]}
              for split, records in generated.items()}
    assert not inputs["train"] & inputs["val"] and not inputs["train"] & inputs["test"]
    assert not inputs["val"] & inputs["test"]


def test_the_test_cases_of_a_problem_are_distinct_inputs_even_at_the_easiest_level():
    splits, _ = puzzles.generate({"train": 60, "val": 30, "test": 30}, 0, (1, 1), 5)
    for records in splits.values():
        for record in records:
            inputs = [case["input"] for case in record["answer"]["tests"]]
            assert len(set(inputs)) == len(inputs), record["id"]


def test_each_split_holds_the_three_tasks_equally(generated):
    for records in generated.values():
        tasks = [r["task"] for r in records]
        assert {tasks.count(t) for t in puzzles.SOLUTIONS} == {len(records) // 3}


@pytest.mark.parametrize("text, parsed", [("4", (4, 4)), ("1-10", (1, 10)), ("3-7", (3, 7))])
def test_difficulty_accepts_a_level_or_a_range(text, parsed):
    assert puzzles.parse_difficulty(text) == parsed


@pytest.mark.parametrize("text", ["0", "5-3", "1-11", "easy"])
def test_a_bad_difficulty_is_a_user_error(text):
    with pytest.raises(PhysloraError, match="--difficulty"):
        puzzles.parse_difficulty(text)


def test_a_split_that_no_easy_input_hashes_into_stops_with_a_message_instead_of_looping(monkeypatch):
    monkeypatch.setattr(puzzles, "MAX_DRAWS", 2_000)  # the same search, cut sooner
    # With seed 0 none of the 90 dividing difficulty-1 arithmetic inputs hashes into a val of 2 in 204.
    with pytest.raises(PhysloraError, match="val: no new puzzle_arithmetic test case of difficulty 1 belongs to this "
                                            "split"):
        puzzles.generate({"train": 200, "val": 2, "test": 2}, 0, (1, 1), 5)
