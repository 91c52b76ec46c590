"""Score one model output against its record, and aggregate scores into the reported numbers.

Per record, `score_record(record, output)` returns a JSON-ready dict with `id`, `task`,
`correct` and what was parsed. An output that cannot be parsed is wrong, never skipped.

  physics_scenario  answer {"mode": str} (one of FAILURE_MODES; "fails" is implied by mode !=
                    "none" and not read). The prediction is reduced to one class:
                    NO (with FAILURE_MODE none or absent) -> "none"; YES with a failure mode ->
                    that mode; anything else -- no verdict, YES without a mode, NO with a failure
                    mode -- -> "unparsed". correct = predicted class == true class;
                    binary_correct = the YES/NO verdict alone is right. A record with meta
                    answer_style "checks" is answered by a check program: the verdict and mode
                    are the calculator's (data/check_program.py), unparsed if it cannot run it.
  physics_numeric   answer {"value": float, "unit": str, "rel_tol": float (optional, default
                    0.01)}: correct when |predicted - value| <= rel_tol * |value|.
  physics_mcq       answer {"choice": "B", "options": {...}}; valid letters: the keys of the
                    options dict, A, B, ... for an options list, else A-D.
  puzzle_*          answer {"function": name (default "solve"), "tests": [{"input" | "args",
                    "output"}]}: the extracted code must pass every test in the sandbox.
  instruction       answer {"reference": text} (else the record's target): correct = exact
                    match after SQuAD normalisation (lowercase, no punctuation, no articles,
                    single spaces); rouge_l = ROUGE-L F1 is reported alongside.

Aggregates carry counts and a Wilson 95 % interval: {"k", "n", "rate", "ci95"}. For physics
scenarios the headline is failure-mode accuracy on the truly failing cases.
"""
import re
import string
from collections import defaultdict

from common.errors import PhysloraError
from data.check_program import answered_by_program
from evaluation.parsing import (
    FAILURE_MODES, extract_choice, extract_code, extract_number, parse_check_program, parse_scenario,
)
from evaluation.rouge import rouge_l
from evaluation.sandbox import check_tests, run_tests
from evaluation.stats import wilson_interval

UNPARSED = "unparsed"
DEFAULT_REL_TOL = 0.01
CODE_TASKS = ("puzzle_arithmetic", "puzzle_rpn", "puzzle_brackets")


def score_record(record: dict, output: str, code_timeout_s: float = 5.0) -> dict:
    task = record.get("task")
    if task == "physics_scenario":
        fields = score_scenario(record, output)
    elif task == "physics_numeric":
        fields = score_numeric(record, output)
    elif task == "physics_mcq":
        fields = score_mcq(record, output)
    elif task in CODE_TASKS:
        fields = score_code(record, output, code_timeout_s)
    elif task == "instruction":
        fields = score_instruction(record, output)
    else:
        raise PhysloraError(f"{_where(record)}task: unknown task {task!r}; regenerate the data")
    return {"id": record.get("id"), "task": task, **fields}


def score_scenario(record: dict, output: str) -> dict:
    answer = _answer_dict(record)
    true_mode = _required(record, answer, "mode")
    if true_mode not in FAILURE_MODES:
        raise PhysloraError(f"{_where(record)}answer.mode: {true_mode!r} is not one of "
                            f"{', '.join(FAILURE_MODES)}; regenerate the data")
    true_fails = true_mode != "none"
    parsed = parse_check_program(output) if answered_by_program(record) else parse_scenario(output)
    predicted = _scenario_class(parsed.fails, parsed.mode)
    return {
        "correct": predicted == true_mode,
        "binary_correct": parsed.fails == true_fails,
        "true_fails": true_fails,
        "true_mode": true_mode,
        "pred_fails": parsed.fails,
        "pred_mode": parsed.mode,
        "pred_class": predicted,
        "format_ok": parsed.format_ok,
    }


def _scenario_class(fails: bool | None, mode: str | None) -> str:
    if fails is False and mode in (None, "none"):
        return "none"
    if fails is True and mode not in (None, "none"):
        return mode
    return UNPARSED


def score_numeric(record: dict, output: str) -> dict:
    answer = _answer_dict(record)
    value = _required(record, answer, "value")
    rel_tol = answer.get("rel_tol", DEFAULT_REL_TOL)
    if not isinstance(value, (int, float)) or not isinstance(rel_tol, (int, float)) or rel_tol < 0:
        raise PhysloraError(f"{_where(record)}answer: needs a numeric 'value' and a 'rel_tol' >= 0, "
                            f"got value={value!r}, rel_tol={rel_tol!r}")
    predicted = extract_number(output)
    correct = predicted is not None and abs(predicted - value) <= rel_tol * abs(value)
    return {"correct": correct, "pred_value": predicted, "true_value": value, "rel_tol": rel_tol}


def score_mcq(record: dict, output: str) -> dict:
    answer = _answer_dict(record)
    true_letter = _required(record, answer, "choice")
    letters = option_letters(answer)
    if not isinstance(true_letter, str) or len(true_letter) != 1 or true_letter not in letters:
        raise PhysloraError(f"{_where(record)}answer.choice: {true_letter!r} is not one of the "
                            f"options {letters}; fix the record")
    predicted = extract_choice(output, letters)
    return {"correct": predicted == true_letter, "pred_letter": predicted, "true_letter": true_letter}


def option_letters(answer: dict) -> str:
    options = answer.get("options")
    if isinstance(options, dict):
        return "".join(sorted(options))
    if isinstance(options, list):
        return string.ascii_uppercase[: len(options)]
    return "ABCD"


def score_code(record: dict, output: str, timeout_s: float) -> dict:
    answer = _answer_dict(record)
    tests = _required(record, answer, "tests")
    function_name = answer.get("function", "solve")
    try:
        check_tests(tests)
    except PhysloraError as error:  # name the record whose tests are malformed
        raise PhysloraError(f"{_where(record)}{error}") from None
    if not (isinstance(function_name, str) and function_name.isidentifier()):
        raise PhysloraError(f"{_where(record)}answer.function: {function_name!r} is not a Python function name")
    code = extract_code(output, function_name)
    if code is None:
        return {"correct": False, "code_found": False, "tests_passed": 0, "tests_total": len(tests),
                "errors": ["NoCode"] * len(tests)}
    result = run_tests(code, function_name, tests, timeout_s=timeout_s)
    return {
        "correct": result.passed,
        "code_found": True,
        "tests_passed": result.n_passed,
        "tests_total": len(tests),
        "errors": [outcome.error for outcome in result.outcomes],
    }


def instruction_reference(record: dict) -> str:
    """The text an instruction's answer is compared with: answer.reference when the answer holds one, else
    the target."""
    answer = record.get("answer")
    reference = answer["reference"] if isinstance(answer, dict) and "reference" in answer else record["target"]
    if not isinstance(reference, str):
        raise PhysloraError(f"{_where(record)}answer.reference: must be text, got {type(reference).__name__}")
    return reference


def score_instruction(record: dict, output: str) -> dict:
    reference = instruction_reference(record)
    exact = normalize_text(output) == normalize_text(reference)
    return {"correct": exact, "exact_match": exact, "rouge_l": rouge_l(reference, output).fmeasure}


def normalize_text(text: str) -> str:
    """SQuAD answer normalisation: lowercase, drop punctuation and articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


# --- aggregates ----------------------------------------------------------------------------


def rate(k: int, n: int) -> dict:
    low, high = wilson_interval(k, n)
    return {"k": k, "n": n, "rate": k / n if n else None, "ci95": [low, high]}


def scenario_report(scores: list[dict]) -> dict:
    """Physics-scenario metrics from `score_scenario` results."""
    failing = [s for s in scores if s["true_fails"]]
    confusion = {true: {pred: 0 for pred in FAILURE_MODES + (UNPARSED,)} for true in FAILURE_MODES}
    for s in scores:
        confusion[s["true_mode"]][s["pred_class"]] += 1
    per_mode = {}
    for mode in FAILURE_MODES:
        of_mode = [s for s in scores if s["true_mode"] == mode]
        if of_mode:
            per_mode[mode] = rate(sum(s["correct"] for s in of_mode), len(of_mode))
    return {
        "mode_accuracy_on_failing": rate(sum(s["correct"] for s in failing), len(failing)),
        "binary_accuracy": rate(sum(s["binary_correct"] for s in scores), len(scores)),
        "accuracy": rate(sum(s["correct"] for s in scores), len(scores)),
        "format_compliance": rate(sum(s["format_ok"] for s in scores), len(scores)),
        "per_mode_accuracy": per_mode,
        "confusion": confusion,  # confusion[true mode][predicted class]
    }


def summarize(scores: list[dict]) -> dict:
    """Per task: accuracy, plus the task's own metrics (scenario report, ROUGE-L, test pass rate)."""
    by_task = defaultdict(list)
    for s in scores:
        by_task[s["task"]].append(s)
    summary = {}
    for task, task_scores in sorted(by_task.items()):
        entry = {"accuracy": rate(sum(s["correct"] for s in task_scores), len(task_scores))}
        if task == "physics_scenario":
            entry.update(scenario_report(task_scores))  # its "accuracy" is the same number
        elif task == "instruction":
            entry["rouge_l"] = sum(s["rouge_l"] for s in task_scores) / len(task_scores)
        elif task in CODE_TASKS:
            entry["tests_passed"] = rate(sum(s["tests_passed"] for s in task_scores),
                                         sum(s["tests_total"] for s in task_scores))
        summary[task] = entry
    return summary


def _answer_dict(record: dict) -> dict:
    answer = record.get("answer")
    if not isinstance(answer, dict):
        raise PhysloraError(f"{_where(record)}answer: expected an object for task {record.get('task')!r}, "
                            f"got {type(answer).__name__}; regenerate the data")
    return answer


def _required(record: dict, answer: dict, key: str):
    if key not in answer:
        raise PhysloraError(f"{_where(record)}answer.{key}: missing; regenerate the data")
    return answer[key]


def _where(record: dict) -> str:
    return f"record {record.get('id')!r}: "
