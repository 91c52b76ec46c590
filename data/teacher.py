"""An optional language-model teacher that writes the REASONING line, as in the reference experiment.

The teacher (any OpenAI-compatible chat endpoint, reached with the standard library only) gets
the same prompt as the student. Its answer is kept only if its YES/NO and FAILURE_MODE agree
with the physics and every number its REASONING cites is one the physics knows: a number of the
prompt, of the reasoning computed from physics, or of the governing check, in any unit from
milli- to kilo-, to the precision written (0.2 stands for 0.204, 20.4 for 0.204 m in cm; a whole
number below 10 only as it stands). A right label argued with wrong arithmetic would teach the
arithmetic. Then its REASONING line replaces ours. Anything else is rejected and counted
(`contradicted`: wrong label; `unverified`: a number the physics does not know, or no number at
all; `unparsable`: not in the answer format) and the record keeps the reasoning computed from
physics. The label therefore always comes from physics.
"""
import os
import re

from common.chat_api import chat

SYSTEM = ("You are a physics teacher. Answer exactly in three lines: YES or NO (will it fail?), "
          "FAILURE_MODE: <mode or none>, REASONING: <one sentence citing the governing inequality with the numbers>.")


def parse_answer(text: str):
    """(fails, mode, reasoning) from a teacher reply, or None when it is not in the answer format."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) < 3 or lines[0].upper().rstrip(".") not in ("YES", "NO"):
        return None
    if not lines[1].upper().startswith("FAILURE_MODE:") or not lines[2].upper().startswith("REASONING:"):
        return None
    reasoning = " ".join([lines[2].split(":", 1)[1].strip()] + lines[3:])
    if not reasoning:
        return None
    return lines[0].upper().startswith("YES"), lines[1].split(":", 1)[1].strip().lower(), reasoning


NUMBER = re.compile(r"\d+(?:\.\d+)?")
UNIT_SCALES = (1e-3, 1e-2, 1.0, 1e2, 1e3)  # m, cm, mm; kg, g; a fraction, a percentage


def cited_numbers(text: str) -> list:
    """(value, half a unit of its last written digit) for each number in `text`."""
    found = []
    for match in NUMBER.finditer(text):
        decimals = len(match.group().partition(".")[2])
        found.append((float(match.group()), 0.5 * 10 ** -decimals))
    return found


def known_values(record: dict) -> list:
    """The numbers the physics knows for a record: its prompt's, its reasoning's, its governing check's."""
    values = [value for value, _ in cited_numbers(record["prompt"] + " " + record["target"])]
    answer = record["answer"]
    for check in answer["checks"]:
        if check["check"] == answer["governing_check"]:
            values += [check["load"], *check["limits"].values()]
    return [abs(value) for value in values]


def verified(reasoning: str, record: dict) -> bool:
    """Whether every number in `reasoning` is a known one, in some unit, to the precision written, and there is
    at least one. A whole number below 10 must be one exactly: rounded, or in another unit, it would match
    nearly anything."""
    exact = known_values(record)
    known = [value * scale for value in exact for scale in UNIT_SCALES]

    def is_known(number, half_unit):
        if half_unit == 0.5 and number < 10:
            return number in exact
        return any(abs(number - value) <= half_unit for value in known)

    cited = cited_numbers(reasoning)
    return bool(cited) and all(is_known(number, half_unit) for number, half_unit in cited)


def apply_teacher(records: list, url: str, model: str, key_env: str, timeout: float) -> dict:
    """Ask the teacher about every record; keep its reasoning where it agrees with physics."""
    api_key = os.environ.get(key_env, "")
    stats = {"asked": 0, "accepted": 0, "contradicted": 0, "unverified": 0, "unparsable": 0}
    for record in records:
        stats["asked"] += 1
        parsed = parse_answer(chat(url, model, api_key, SYSTEM, record["prompt"], timeout, "--teacher-url"))
        if parsed is None:
            stats["unparsable"] += 1
            continue
        fails, mode, reasoning = parsed
        truth = record["answer"]
        if fails != truth["fails"] or mode != truth["mode"]:
            stats["contradicted"] += 1
            continue
        if not verified(reasoning, record):
            stats["unverified"] += 1
            continue
        label_lines = record["target"].split("\n")[:2]
        record["target"] = "\n".join(label_lines + [f"REASONING: {reasoning}"])
        record["meta"]["reasoning_source"] = "teacher"
        stats["accepted"] += 1
    return stats
