"""Physics QA: exact answers, honest distractors, worked explanations, split by template."""
import math
import random
import re

import pytest

from data import qa_dataset, qa_fields, qa_mechanics

SIZES = {"train": 400, "val": 100, "test": 150}


@pytest.fixture(scope="module")
def generated():
    splits, card = qa_dataset.generate(SIZES, 0)
    return splits, card


def all_records(generated):
    return [r for records in generated[0].values() for r in records]


def test_no_template_appears_in_two_splits_and_every_topic_is_tested(generated):
    splits, card = generated
    templates = {split: {r["meta"]["family"] for r in records} for split, records in splits.items()}
    assert not templates["train"] & templates["val"] and not templates["train"] & templates["test"]
    assert not templates["val"] & templates["test"]
    assert {r["meta"]["topic"] for r in splits["test"]} == set(qa_dataset.TOPICS)


def test_numeric_targets_end_with_the_answer_value_and_unit(generated):
    for record in all_records(generated):
        if record["task"] != "physics_numeric":
            continue
        value, unit = re.fullmatch(r"Answer: (\S+) ?(.*)", record["target"].splitlines()[-1]).groups()
        assert unit == record["answer"]["unit"]
        assert float(value) == pytest.approx(record["answer"]["value"], rel=record["answer"]["rel_tol"])


def test_each_question_has_four_distinct_options_and_exactly_one_is_right(generated):
    for record in all_records(generated):
        if record["task"] != "physics_mcq":
            continue
        options = record["answer"]["options"]
        right = [letter for letter, option in options.items() if option["mistake"] is None]
        assert right == [record["answer"]["choice"]]
        assert record["target"].endswith(f"Answer: {record['answer']['choice']}")
        shown = re.findall(r"^[A-D]\) (\S+)", record["prompt"], re.M)
        assert len(shown) == 4 and len(set(shown)) == 4
        values = [option["value"] for option in options.values()]
        assert all(abs(a - b) > 0.019 * max(abs(a), abs(b)) for i, a in enumerate(values) for b in values[i + 1:])


def test_the_right_option_is_not_always_in_the_same_place(generated):
    letters = {r["answer"]["choice"] for r in all_records(generated) if r["task"] == "physics_mcq"}
    assert letters == set("ABCD")


def test_every_template_gives_finite_answers_with_three_distractors():
    rng = random.Random(3)
    for template in list(qa_mechanics.TEMPLATES.values()) + [t for ts in qa_fields.TOPICS.values() for t in ts]:
        for _ in range(20):
            problem = qa_dataset.sample_problem(template, rng)
            assert math.isfinite(problem.value) and len(problem.mistakes) >= 3


def numbers(text):
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", text)]


@pytest.mark.parametrize("template, formula", [
    (qa_mechanics.free_fall_time, lambda h: math.sqrt(2 * h / 9.81)),
    (qa_mechanics.pendulum_period, lambda length: 2 * math.pi * math.sqrt(length / 9.81)),
    (qa_fields.melt_ice, lambda grams: grams / 1000 * 334),
    (qa_fields.period_from_frequency, lambda hz: 1000 / hz),
])
def test_answers_agree_with_the_textbook_formula_on_the_numbers_in_the_question(template, formula):
    rng = random.Random(11)
    for _ in range(50):
        problem = template(rng)
        assert problem.value == pytest.approx(formula(numbers(problem.question)[0]), rel=1e-9)


def test_a_known_textbook_case():
    class Fixed(random.Random):
        def uniform(self, low, high):
            return 20.0  # a 20 m drop
    assert qa_mechanics.free_fall_time(Fixed()).value == pytest.approx(2.019, abs=1e-3)


def test_same_seed_same_records_other_seed_other_records():
    first, _ = qa_dataset.generate(SIZES, 5)
    again, _ = qa_dataset.generate(SIZES, 5)
    other, _ = qa_dataset.generate(SIZES, 6)
    assert first == again and first != other
