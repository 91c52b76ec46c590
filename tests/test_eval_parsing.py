"""Parsing model outputs: realistic outputs and the answer each must (or must not) yield."""
import pytest

from evaluation.parsing import extract_choice, extract_code, extract_number, parse_scenario

# (model output, verdict, mode, strict format) -- verdict True = YES, None = no verdict found.
SCENARIO_OUTPUTS = [
    ("YES\nFAILURE_MODE: tipping\nREASONING: The centre of mass passes the edge.", True, "tipping", True),
    ("NO\nFAILURE_MODE: none\nREASONING: Friction holds the box.", False, "none", True),
    ("\n  YES\nFAILURE_MODE: slipping\n", True, "slipping", True),
    ("YES\nFAILURE_MODE: rolling_away", True, "rolling_away", True),
    ("Yes.\nFailure mode: Tipping", True, "tipping", False),
    ("**YES**\n**FAILURE_MODE:** rolling away", True, "rolling_away", False),
    ("yes\nfailure_mode: rolling-away", True, "rolling_away", False),
    ("no\nFAILURE MODE - none", False, "none", False),
    ("Let me think. The cup sits near the edge.\nYES\nFAILURE_MODE: dropping", True, "dropping", False),
    ("Based on the acceleration, YES. FAILURE_MODE: sloshing", True, "sloshing", False),
    ("The answer is no. Failure mode: none", False, "none", False),
    ("Answer: NO\nFAILURE_MODE: none (the grip is strong enough)", False, "none", False),
    ("No, it will not fail.", False, None, False),
    ("Yes, it will tip over.\nFAILURE_MODE: Tipping.", True, "tipping", False),
    ("## Verdict: YES\n- FAILURE_MODE: `crushing`", True, "crushing", False),
    ("REASONING: The torque is too small.\nNO\nFAILURE_MODE: none", False, "none", False),
    ("NO\nFAILURE_MODE: none\nREASONING: Yes, it slides a little, but no, it does not fall.", False, "none", True),
    ("YES\nFAILURE_MODE: collision (the arm hits the shelf)", True, "collision", False),
    # Not answers: the parser must not guess.
    ("No friction acts on the box, so it slides.\nFAILURE_MODE: slipping", None, "slipping", False),
    ("YES or NO? Hard to say.\nFAILURE_MODE: tipping", None, "tipping", False),
    ("Maybe. It depends on the friction.", None, None, False),
    ("YES\nFAILURE_MODE: falling over", True, None, False),
    ("YES\nFAILURE_MODE: rolling", True, None, False),
    ("", None, None, False),
    ("yes\nFAILURE_MODE: tipping", True, "tipping", False),  # strict format is upper-case
    ("YES\nREASONING: tall and narrow\nFAILURE_MODE: tipping", True, "tipping", False),
    ("Yes it will fail.\nFAILURE_MODE: slipping", True, "slipping", False),
    ("No it holds.\nThe failure mode is none", False, "none", False),
]


@pytest.mark.parametrize("output, fails, mode, format_ok", SCENARIO_OUTPUTS)
def test_scenario_output_parses_to_expected_answer(output, fails, mode, format_ok):
    parsed = parse_scenario(output)
    assert (parsed.fails, parsed.mode, parsed.format_ok) == (fails, mode, format_ok)


NUMERIC_OUTPUTS = [
    ("9.8", 9.8),
    ("The answer is 1.2e-3 m.", 1.2e-3),
    ("v = 3.0 × 10^8 m/s", 3.0e8),
    ("E = 2.5 x 10^-3 J", 2.5e-3),
    ("3.0 \\times 10^{8}", 3.0e8),
    ("c ≈ 3×10⁸ m/s", 3.0e8),
    ("p = 10^5 Pa", 1e5),
    ("The energy is 12,345 J.", 12345.0),
    ("1,234,567.5", 1234567.5),
    ("a = 9.8 m/s^2", 9.8),
    ("a = 9.8 m/s²", 9.8),
    ("F = -4.5 N", -4.5),
    ("x = −2.5 m (unicode minus)", -2.5),
    ("t = 2.0 s, so d = 0.5 * 9.8 * 2.0^2 = 19.6 m", 19.6),
    ("Answer: **9.81** m/s^2", 9.81),
    ("The answer is 5 m/s, faster than the 3 m/s of the cart.", 5.0),
    ("\\boxed{42}", 42.0),
    ("#### -0.25", -0.25),
    ("It is .5 kg", 0.5),
    ("Final answer: 6.0e+2 W", 600.0),
    ("To answer this, note v = 9.8 m/s after 1 s, so after 2 s v = 19.6 m/s", 19.6),
    ("The acceleration is 9.8 m s^-2.", 9.8),       # a unit's power is never the answer
    ("9.8 m·s⁻²", 9.8),
    ("a = 9.8 m/s^{2}.", 9.8),
    ("F = 3 kg m s**-2", 3.0),
    ("Answer: F = m*a = 2 * 3 = 6 N", 6.0),          # after a marker: the number after its line's last '='
    ("Answer: KE = ½mv² = 0.5 × 2 × 3² = 9 J", 9.0),
    ("The answer is v ≈ 2 × 3.1 ≈ 6.2 m/s", 6.2),
    ("Answer:\n\n42 m/s", 42.0),                     # the marker alone on its line: the next line with text
    ("Answer: 3/4 m", 0.75),
    ("Answer: 2^10", 1024.0),
    ("Answer: 3²", 9.0),
    ("Answer: 2 000 000 J", 2e6),
    ("The answer is 5 m/s.\nCheck: 5 = 2.5 × 2", 5.0),  # later lines are not the answer
    ("Answer: v = 20 m/s at t = 2 s", 20.0),            # a condition, a given or a conversion is not the answer
    ("Answer: F = 20 N (using g = 10 m/s²)", 20.0),
    ("Answer: 9.9 m/s (≈ 35.6 km/h)", 9.9),
    ("Answer: 5 m/s = 18 km/h", 5.0),
    ("Answer: 5 m/s, where g = 9.8 m/s^2", 5.0),
    ("Answer: a = 10/2 = 5 m/s^2", 5.0),
    ("**Answer:**\n42 m/s", 42.0),                      # only markup after the marker: the next line
    ("The answer is:\n42 m/s", 42.0),
    ("The answer is **1.5 m/s**", 1.5),                  # bold is not a power
    ("So the answer is **-3.2 J**", -3.2),
]


@pytest.mark.parametrize("output, value", NUMERIC_OUTPUTS)
def test_final_number_is_extracted(output, value):
    assert extract_number(output) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("output", ["", "I do not know.", "The block slides.", "H2O",
                                    "Answer: (skipped)\nWe had v = 3 m/s earlier.",  # not the line's answer
                                    "Answer: 3,14 m", "Answer: 1 234,5 N",  # a decimal comma: ambiguous
                                    "Answer: 5/0", "Answer: 9^99999"])
def test_output_without_a_number_gives_none(output):
    assert extract_number(output) is None


MCQ_OUTPUTS = [
    ("B", "B"),
    ("(B)", "B"),
    ("B.", "B"),
    ("Answer: B", "B"),
    ("The answer is B.", "B"),
    ("The correct answer is (C) 45 m/s", "C"),
    ("**D**", "D"),
    ("C) 12 N", "C"),
    ("A ball dropped from rest... the answer is D", "D"),
    ("Option A is too small.\nThe correct option is C.", "C"),
    ("Answer: **A**\nBecause gravity wins.", "A"),
    ("The correct answer is option B.", "B"),
    ("Answer: Option C", "C"),
    ("The answer is choice (D).", "D"),
    ("B\nB) 5 m/s, as the slope gives.", "B"),
    ("Answer: B, A is wrong because it ignores friction", "B"),  # other letters named in passing
    ("The correct answer is B, A and C violate energy conservation.", "B"),
    ("The answer is (B), (A) would need more energy.", "B"),
    ("Answer: D, A ball at rest stays at rest", "D"),
]


@pytest.mark.parametrize("output, letter", MCQ_OUTPUTS)
def test_choice_letter_is_extracted(output, letter):
    assert extract_choice(output) == letter


@pytest.mark.parametrize("output", [
    "A ball falls faster on Earth.",  # the article "A" is not a choice
    "the answer is b",  # lower case is not trusted
    "Answer: Because of gravity",  # a word starting with a letter is not a letter
    "I am not sure.",
    "E",  # not among the options A-D
    "A) 3 m/s\nB) 5 m/s\nC) 7 m/s\nI pick C",  # the options repeated: no line names one letter
    "Answer: A or B",  # a hedge names no choice
    "Answer: A, B or C.",
    "The answer is (A) or (C).",
])
def test_output_without_a_valid_choice_gives_none(output):
    assert extract_choice(output) is None


def test_choice_letters_follow_the_options():
    assert extract_choice("Answer: E", letters="ABCDE") == "E"


SOLUTION = "def solve(expression: str) -> int:\n    return eval(expression)"


def test_code_is_taken_from_a_python_fence():
    output = f"Here you go:\n```python\n{SOLUTION}\n```\nThis evaluates the expression."
    assert extract_code(output, "solve") == SOLUTION


def test_code_fence_that_defines_the_function_is_preferred():
    output = f"```python\nprint(solve('1+2'))\n```\n\n```py\n{SOLUTION}\n```"
    assert extract_code(output, "solve") == SOLUTION


def test_non_python_fences_are_ignored():
    output = f"```bash\npython solve.py\n```\n```\n{SOLUTION}\n```"
    assert extract_code(output, "solve") == SOLUTION


def test_unclosed_fence_runs_to_the_end():
    assert extract_code(f"```python\n{SOLUTION}\n", "solve") == SOLUTION


def test_bare_code_stops_at_the_prose_after_it():
    output = f"Sure.\nimport re\n\n{SOLUTION}\n\nThis function uses eval."
    assert extract_code(output, "solve") == f"import re\n\n{SOLUTION}\n"


def test_a_function_before_a_stray_closing_fence_is_read_as_bare_code():
    output = f"{SOLUTION}\n\n# Example usage:\nprint(solve('8 / 9'))\n```\n\nIn this implementation, eval() is used."
    assert extract_code(output, "solve") == f"{SOLUTION}\n\n# Example usage:\n"


def test_output_without_code_gives_none():
    assert extract_code("I cannot write that function.", "solve") is None
