"""Wilson intervals, exact McNemar, paired comparison, pass@k against hand-computed values."""
import math
from fractions import Fraction

import pytest

from common.errors import PhysloraError
from evaluation.stats import (
    Z_95, compare_paired, format_rate, mcnemar_exact, mean_interval, pass_at_k, wilson_interval,
)


def _wilson_by_quadratic(k: int, n: int) -> tuple[float, float]:
    """The Wilson bounds as the roots of (k/n - p)^2 = z^2 p(1-p)/n, an independent derivation."""
    z2 = Z_95 ** 2
    a, b, c = n + z2, -(2 * k + z2), k * k / n
    root = math.sqrt(b * b - 4 * a * c)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


@pytest.mark.parametrize("k, n, low, high", [
    (15, 19, 0.5666572, 0.9149232),  # the README's example, "78.9% [56.7, 91.5]"
    (0, 10, 0.0, 0.2775328),  # = z²/(n+z²)
    (10, 10, 0.7224672, 1.0),  # = n/(n+z²)
    (1, 2, 0.0945312, 0.9054688),
])
def test_wilson_interval_matches_hand_computed_bounds(k, n, low, high):
    ours = wilson_interval(k, n)
    assert ours == pytest.approx((low, high), abs=5e-8)
    assert ours == pytest.approx(_wilson_by_quadratic(k, n), abs=1e-12)


def test_wilson_interval_is_exactly_closed_at_zero_and_n():
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0


def test_wilson_interval_of_no_trials_is_everything():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_impossible_counts_are_refused():
    with pytest.raises(PhysloraError):
        wilson_interval(5, 3)


def test_rate_formats_with_interval_and_counts():
    assert format_rate(15, 19) == "78.9% [56.7, 91.5] (15/19)"
    assert format_rate(0, 10) == "0.0% [0.0, 27.8] (0/10)"
    assert format_rate(0, 0) == "n/a (0/0)"


@pytest.mark.parametrize("b, c, p", [
    (1, 9, 0.021484375),  # 2 * (1 + 10) / 2^10 = 22/1024
    (9, 1, 0.021484375),  # symmetric
    (0, 5, 0.0625),  # 2 / 2^5
    (0, 1, 1.0),  # 2 * 1/2, capped at 1
    (5, 5, 1.0),
    (0, 0, 1.0),  # no discordant pairs: no evidence
    (3, 12, 0.03515625),  # 2 * (1 + 15 + 105 + 455) / 2^15 = 1152/32768
])
def test_mcnemar_exact_p_value_is_exact(b, c, p):
    assert mcnemar_exact(b, c) == p


def test_mcnemar_stays_exact_for_large_counts():
    b, c = 2000, 2150  # far beyond float factorials; (c - b) / sqrt(b + c) = 2.3 sigma
    n = b + c
    exact = 2 * Fraction(sum(math.comb(n, i) for i in range(b + 1)), 2 ** n)
    assert mcnemar_exact(b, c) == float(exact)
    assert 0.01 < mcnemar_exact(b, c) < 0.05


def test_mcnemar_refuses_negative_counts():
    with pytest.raises(PhysloraError):
        mcnemar_exact(-1, 3)


def test_paired_comparison_builds_the_two_by_two_table_by_example_id():
    base = {"e1": True, "e2": False, "e3": False, "e4": True, "e5": False}
    lora = {"e5": True, "e4": True, "e3": True, "e2": False, "e1": False}  # order does not matter
    table = compare_paired(base, lora)
    assert (table.both_correct, table.only_a_correct, table.only_b_correct, table.both_wrong) == (1, 1, 2, 1)
    assert table.n == 5
    assert table.p_value == mcnemar_exact(1, 2)


def test_paired_comparison_refuses_different_examples():
    with pytest.raises(PhysloraError, match="different examples"):
        compare_paired({"e1": True, "e2": True}, {"e1": True, "e3": False})


@pytest.mark.parametrize("n, c, k, expected", [
    (10, 3, 1, 0.3),  # pass@1 = c/n
    (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
    (4, 3, 2, 1.0),  # fewer failures than k: every pair holds a pass
    (6, 0, 3, 0.0),
])
def test_pass_at_k_is_the_unbiased_estimator(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-15)


def test_pass_at_k_needs_at_least_k_samples():
    with pytest.raises(PhysloraError):
        pass_at_k(3, 1, 5)


def test_mean_interval_is_the_normal_approximation_clipped_to_the_score_range():
    # 0, 1, 1, 1: mean 0.75, s = 0.5, half width 1.96 · 0.5 / √4; the top is clipped from 1.24 to 1
    assert mean_interval([0, 1, 1, 1], 0, 1) == {"mean": 0.75, "n": 4,
                                                 "ci95": [pytest.approx(0.75 - Z_95 / 4), 1]}


def test_mean_interval_of_one_score_is_the_whole_range_and_of_none_is_empty():
    assert mean_interval([7], 1, 10) == {"mean": 7, "n": 1, "ci95": [1, 10]}
    assert mean_interval([], 1, 10) == {"mean": None, "n": 0, "ci95": None}
