"""One procedurally generated physics problem: question, exact answer, worked steps, typical mistakes.

A template is a function rng -> Problem. Its `mistakes` map a typical error (a missing factor
of 2, a unit not converted, a sign error, a swapped formula) to the value that error gives;
they become the distractors of the multiple-choice form.
"""
import random
from dataclasses import dataclass

from data.quantities import plain, sig

G = 9.81


@dataclass(frozen=True)
class Problem:
    question: str
    value: float
    unit: str
    steps: tuple
    mistakes: dict


def pick(rng: random.Random, low: float, high: float, step: float) -> float:
    """A given quantity: uniform on [low, high], rounded to `step` (the precision it is stated with)."""
    return round(round(rng.uniform(low, high) / step) * step, 6)


def show(x: float) -> str:
    """A given value as stated in the question."""
    return plain(x, 4)


def result(x: float, unit: str) -> str:
    """A computed value: 3 significant digits and its unit."""
    return f"{sig(x)} {unit}".rstrip()
