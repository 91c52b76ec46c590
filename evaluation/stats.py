"""Small-sample statistics for accuracy numbers: Wilson intervals, exact McNemar, pass@k.

Wilson score interval for k successes in n trials, p = k/n, z = 1.959963984540054 (95 %):

    centre = (p + z²/2n) / (1 + z²/n)
    half   = z / (1 + z²/n) · sqrt(p(1−p)/n + z²/4n²)

Unlike the normal-approximation interval it never leaves [0, 1] and is not degenerate at
k = 0 or k = n, which matters for the few-dozen-example test sets this project reports on.

Exact McNemar test for two systems scored on the same examples: only discordant pairs carry
information, b = examples only A gets right, c = examples only B gets right. Under H0 each
discordant pair is a fair coin, so with X ~ Bin(b+c, 1/2)

    p = min(1, 2 · P(X ≤ min(b, c))),   p = 1 when b + c = 0.

The tail is summed as exact integers (Σ C(n, i)) and divided by 2ⁿ once; Python's int/int
division is correctly rounded, so the result is exact to the last bit at any n.

Unbiased pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"):
from n samples of which c pass, pass@k = 1 − C(n−c, k) / C(n, k).

A mean of per-record scores (pass@k, a judge's 1-10) gets the normal-approximation interval
mean ± z·s/√n, s the sample standard deviation, clipped to the scores' range: rough below a
few dozen records, and a single point when every record scored the same.
"""
import math
from dataclasses import dataclass
from typing import Mapping

from common.errors import PhysloraError

Z_95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for k/n; n = 0 says nothing, so the interval is all of [0, 1]."""
    _check_counts(k, n)
    if n == 0:
        return 0.0, 1.0
    p = k / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half_width = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At k = 0 (k = n) the exact lower (upper) bound is 0 (1); float round-off would miss it.
    low = 0.0 if k == 0 else centre - half_width
    high = 1.0 if k == n else centre + half_width
    return low, high


def format_rate(k: int, n: int) -> str:
    """'78.9% [56.7, 91.5] (15/19)': rate, Wilson 95 % interval in percent, raw counts."""
    _check_counts(k, n)
    if n == 0:
        return "n/a (0/0)"
    low, high = wilson_interval(k, n)
    return f"{100 * k / n:.1f}% [{100 * low:.1f}, {100 * high:.1f}] ({k}/{n})"


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b and c."""
    if b < 0 or c < 0:
        raise PhysloraError(f"mcnemar_exact: discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = 0
    term = 1  # C(n, 0), advanced in place to C(n, i) to avoid recomputing factorials
    for i in range(min(b, c) + 1):
        tail += term
        term = term * (n - i) // (i + 1)
    # 2 · tail / 2ⁿ, as one correctly rounded integer division.
    return min(1.0, tail / (1 << (n - 1)))


@dataclass(frozen=True)
class PairedComparison:
    """2×2 table of two systems on the same examples, plus the exact McNemar p-value."""

    both_correct: int
    only_a_correct: int  # b in McNemar's notation
    only_b_correct: int  # c
    both_wrong: int
    p_value: float

    @property
    def n(self) -> int:
        return self.both_correct + self.only_a_correct + self.only_b_correct + self.both_wrong


def compare_paired(a_correct: Mapping[str, bool], b_correct: Mapping[str, bool]) -> PairedComparison:
    """Pair per-example outcomes by example id (e.g. base vs. LoRA) and test the difference."""
    if a_correct.keys() != b_correct.keys():
        only_one = sorted(a_correct.keys() ^ b_correct.keys())
        raise PhysloraError(
            f"compare_paired: the two runs scored different examples ({len(only_one)} ids in only "
            f"one, e.g. {only_one[0]!r}); evaluate both on the same split"
        )
    table = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
    for example_id, a in a_correct.items():
        table[bool(a), bool(b_correct[example_id])] += 1
    return PairedComparison(
        both_correct=table[True, True],
        only_a_correct=table[True, False],
        only_b_correct=table[False, True],
        both_wrong=table[False, False],
        p_value=mcnemar_exact(table[True, False], table[False, True]),
    )


def mean_interval(values: list, low: float, high: float, z: float = Z_95) -> dict:
    """{"mean", "n", "ci95"} of scores bounded in [low, high]; mean and interval None without scores."""
    n = len(values)
    if n == 0:
        return {"mean": None, "n": 0, "ci95": None}
    mean = sum(values) / n
    if n == 1:
        return {"mean": mean, "n": 1, "ci95": [low, high]}  # one score says nothing of the spread
    half = z * math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)
    return {"mean": mean, "n": n, "ci95": [max(low, mean - half), min(high, mean + half)]}


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples passes, estimated without bias from n ≥ k."""
    _check_counts(c, n)
    if not 1 <= k <= n:
        raise PhysloraError(f"pass_at_k: k must be in 1..n={n}, got k={k}; sample more or lower k")
    # With fewer than k failures every k-subset contains a pass.
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _check_counts(k: int, n: int) -> None:
    if not 0 <= k <= n:
        raise PhysloraError(f"counts must satisfy 0 <= k <= n, got k={k}, n={n}")
