"""ROUGE-L: F1 of the longest common subsequence (LCS) of reference and prediction tokens.

With L = |LCS(reference, prediction)| over tokens:

    precision = L / |prediction|,   recall = L / |reference|,   F1 = 2PR / (P + R)

and all three are 0 when either side has no tokens. This reproduces
`rouge_score.rouge_scorer.RougeScorer(['rougeL'], use_stemmer=False)` bit for bit, including
its tokenizer: lowercase, every run of characters outside [a-z0-9] becomes a separator
(so accented letters and non-Latin scripts are dropped, as there), no stemming.
"""
import re
from dataclasses import dataclass

_NON_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class RougeScore:
    precision: float
    recall: float
    fmeasure: float


def tokenize(text: str) -> list[str]:
    return _NON_ALPHANUMERIC.sub(" ", text.lower()).split()


def lcs_length(a: list[str], b: list[str]) -> int:
    """Classic O(|a|·|b|) dynamic programme, keeping one row of the table."""
    previous = [0] * (len(b) + 1)
    for token_a in a:
        current = [0]
        for j, token_b in enumerate(b):
            if token_a == token_b:
                current.append(previous[j] + 1)
            else:
                current.append(max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(reference: str, prediction: str) -> RougeScore:
    reference_tokens = tokenize(reference)
    prediction_tokens = tokenize(prediction)
    if not reference_tokens or not prediction_tokens:
        return RougeScore(0.0, 0.0, 0.0)
    common = lcs_length(reference_tokens, prediction_tokens)
    precision = common / len(prediction_tokens)
    recall = common / len(reference_tokens)
    # Same operation order as rouge_score.scoring.fmeasure, so the floats agree exactly.
    fmeasure = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return RougeScore(precision, recall, fmeasure)
