"""ROUGE-L: hand-checked cases, and equality with the rouge-score package (the oracle)."""
import random

import pytest
from rouge_score import rouge_scorer

from evaluation.rouge import lcs_length, rouge_l, tokenize


def test_tokenizer_lowercases_and_splits_on_non_alphanumerics():
    assert tokenize("The box's CoM, at 0.5 m -- tips!") == ["the", "box", "s", "com", "at", "0", "5", "m", "tips"]


def test_tokenizer_drops_letters_outside_a_to_z_like_rouge_score():
    assert tokenize("naïve café") == ["na", "ve", "caf"]


def test_lcs_length_of_a_known_pair():
    # LCS of "a b c d e" and "a c e b" is "a c e".
    assert lcs_length("a b c d e".split(), "a c e b".split()) == 3


def test_rouge_l_by_hand():
    # reference 6 tokens, prediction 4 tokens, LCS "the box tips" = 3:
    # P = 3/4, R = 3/6, F = 2PR/(P+R) = 0.6
    score = rouge_l("the tall box tips over quickly", "the box tips sideways")
    assert (score.precision, score.recall) == (0.75, 0.5)
    assert score.fmeasure == pytest.approx(0.6, abs=1e-15)


def test_rouge_l_is_zero_when_either_side_has_no_tokens():
    assert rouge_l("", "something").fmeasure == 0.0
    assert rouge_l("something", "!!!").fmeasure == 0.0


VOCABULARY = [
    "the", "box", "tips", "over", "slides", "The", "BOX", "a", "robot", "arm", "cup", "is",
    "0.5", "m/s^2", "9.81", "friction", "torque,", "(centre", "of", "mass)", "won't", "x-axis",
    "café", "naïve", "--", "!", "?", "e.g.", "42", "3x", "tips.",
]


def _random_sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(0, 14)))


def test_rouge_l_equals_rouge_score_on_random_sentence_pairs():
    rng = random.Random(20241122)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pairs = [(_random_sentence(rng), _random_sentence(rng)) for _ in range(200)]
    pairs += [(sentence, sentence) for sentence, _ in pairs[:10]]  # identical pairs: F = 1
    for reference, prediction in pairs:
        expected = scorer.score(reference, prediction)["rougeL"]
        ours = rouge_l(reference, prediction)
        assert (ours.precision, ours.recall, ours.fmeasure) == (
            expected.precision, expected.recall, expected.fmeasure), (reference, prediction)
