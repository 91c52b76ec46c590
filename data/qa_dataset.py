"""Physics QA records: every template in a numeric and a multiple-choice form, split by template.

Numeric (task physics_numeric): the answer is a value and a unit, scored with a relative
tolerance REL_TOL. Multiple choice (physics_mcq): four options, the right value and three
distractors produced by the template's typical mistakes, in random order.
Both targets are the worked explanation ending in an `Answer: ...` line.

Templates are dealt to splits within each topic (about 20% test, 10% val, at least one each),
so the test set asks about formulas the model was never trained on.
"""
import math
import random

from common.errors import PhysloraError
from data import qa_fields, qa_mechanics
from data.qa_problem import Problem
from data.quantities import round_sig, sig
from data.schema import make_record

DEFAULT_SIZES = {"train": 2000, "val": 300, "test": 600}
REL_TOL = 0.01
LETTERS = "ABCD"
TOPICS = {"mechanics": tuple(qa_mechanics.TEMPLATES.values()), **qa_fields.TOPICS}
NUMERIC_ASK = "Give the result on the last line as `Answer: <value> <unit>`."
MCQ_ASK = "Answer with the letter of the correct option on the last line, as `Answer: <letter>`."


def split_templates(rng: random.Random) -> dict:
    """Template functions per split: within each topic ~20% test and ~10% val, at least one each."""
    splits = {"train": [], "val": [], "test": []}
    for templates in TOPICS.values():
        order = list(templates)
        rng.shuffle(order)
        n_test, n_val = max(1, round(0.2 * len(order))), max(1, round(0.1 * len(order)))
        splits["test"] += order[:n_test]
        splits["val"] += order[n_test:n_test + n_val]
        splits["train"] += order[n_test + n_val:]
    return splits


def topic_of(template) -> str:
    return next(topic for topic, templates in TOPICS.items() if template in templates)


def distinct(values: list) -> bool:
    """Whether every two values differ by more than 2% (so they also differ in print)."""
    return all(abs(a - b) > 0.02 * max(abs(a), abs(b)) for i, a in enumerate(values) for b in values[i + 1:])


def sample_problem(template, rng: random.Random) -> Problem:
    """A problem whose answer and three first distractors are finite and tell apart in print."""
    for _ in range(100):
        problem = template(rng)
        values = [problem.value] + list(problem.mistakes.values())[:3]
        if all(map(math.isfinite, values)) and distinct(values) and problem.value != 0:
            return problem
    raise PhysloraError(f"qa template {template.__name__}: cannot produce distinct distractors")


def worked(problem: Problem) -> str:
    return "\n".join(problem.steps)


def numeric_record(problem: Problem) -> tuple:
    target = f"{worked(problem)}\nAnswer: {sig(problem.value)} {problem.unit}"
    answer = {"value": round_sig(problem.value, 6), "unit": problem.unit, "rel_tol": REL_TOL}
    return "physics_numeric", f"{problem.question}\n{NUMERIC_ASK}", target, answer


def mcq_record(problem: Problem, rng: random.Random) -> tuple:
    options = [(problem.value, None)] + [(value, mistake) for mistake, value in list(problem.mistakes.items())[:3]]
    rng.shuffle(options)
    letter = LETTERS[next(i for i, (_, mistake) in enumerate(options) if mistake is None)]
    lines = [f"{LETTERS[i]}) {sig(value)} {problem.unit}".rstrip() for i, (value, _) in enumerate(options)]
    prompt = "\n".join([problem.question, *lines, MCQ_ASK])
    target = f"{worked(problem)}\nAnswer: {letter}"
    answer = {"choice": letter, "value": round_sig(problem.value, 6), "unit": problem.unit,
              "options": {LETTERS[i]: {"value": round_sig(value, 6), "mistake": mistake}
                          for i, (value, mistake) in enumerate(options)}}
    return "physics_mcq", prompt, target, answer


def generate(sizes: dict, seed: int) -> tuple:
    rng = random.Random(seed)
    templates = split_templates(rng)
    seen_prompts = set()
    splits = {}
    for split, size in sizes.items():
        records = []
        for index in range(size):
            template = templates[split][index // 2 % len(templates[split])]
            for _ in range(100):
                problem = sample_problem(template, rng)
                task, prompt, target, answer = numeric_record(problem) if index % 2 == 0 else mcq_record(problem, rng)
                if prompt not in seen_prompts:
                    break
            else:
                raise PhysloraError(f"qa template {template.__name__}: ran out of new problems; ask for fewer records")
            seen_prompts.add(prompt)
            meta = {"family": template.__name__, "topic": topic_of(template), "form": task.split("_")[1]}
            records.append(make_record(f"qa-{split}-{index:05d}", task, split, prompt, target, answer, meta))
        splits[split] = records
    card = {"kind": "qa", "seed": seed, "rel_tol": REL_TOL,
            "templates": {split: sorted(t.__name__ for t in ts) for split, ts in templates.items()}}
    return splits, card


def label_of(record: dict) -> str:
    return record["task"]
