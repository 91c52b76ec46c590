"""Parse free-form model outputs into the structured answers the metrics compare.

Every parser is lenient about harmless presentation (case, markdown emphasis, a label such as
"Answer:", a sentence before the answer) and returns None, never a guess, when the answer is
genuinely absent or ambiguous. The metrics then count None as wrong: an unparseable output is
a failure of the model, not a reason to drop the example.

Physics scenarios additionally get a strict format check (`format_ok`), reported separately
as format compliance: the first non-empty line is exactly `YES` or `NO` and the next non-empty
line is exactly `FAILURE_MODE: <mode>` with a known mode, as in the training targets. Records
written as check programs (meta answer_style "checks") are read by `parse_check_program`.
"""
import re
from dataclasses import dataclass

from data.check_program import run_program
from data.physics_rules import OUTCOMES as FAILURE_MODES  # the seven modes, then "none"

_MARKDOWN = re.compile(r"[*`#>]+")
_MODE_LABEL = re.compile(r"\bfailure[ _-]?mode\b\s*(?:[:=-]|is\b)?\s*", re.IGNORECASE)
_REASONING_LABEL = re.compile(r"\breasoning\s*:", re.IGNORECASE)
_ANSWER_LABEL = re.compile(r"^(?:(?:final\s+)?answer|verdict|prediction)\s*[:=-]\s*", re.IGNORECASE)
# A verdict line: "Yes", "NO.", "Yes, it tips", "No it holds" -- but not "No friction acts here".
_VERDICT_LINE = re.compile(r"^(yes|no)\b\s*(?:[.,!:;)\u2014-]|$|it\b)", re.IGNORECASE)
_VERDICT_PHRASE = re.compile(r"\b(?:answer|verdict)\s+is\s*:?\s*(yes|no)\b", re.IGNORECASE)
_SHOUTED_VERDICT = re.compile(r"\b(YES|NO)\b")
_MODE_WORDS = re.compile(r"^[\W_]*([a-z]+)(?:[\s_-]+([a-z]+))?", re.IGNORECASE)
_STRICT_MODE_LINE = re.compile(r"^FAILURE_MODE: (" + "|".join(FAILURE_MODES) + r")$")


@dataclass(frozen=True)
class ScenarioAnswer:
    fails: bool | None  # YES -> True, NO -> False, None when no verdict was found
    mode: str | None  # one of FAILURE_MODES, None when no known mode was named
    format_ok: bool  # the exact training format (see module docstring)


def parse_scenario(text: str) -> ScenarioAnswer:
    lines = [_MARKDOWN.sub("", line).strip() for line in text.splitlines()]
    return ScenarioAnswer(fails=_find_verdict(lines), mode=_find_mode(lines), format_ok=_is_strict(text))


def parse_check_program(text: str) -> ScenarioAnswer:
    """A check program's answer is what the calculator makes of it (data/check_program.py); its
    format is right when every line is a check the calculator can run."""
    verdict = run_program(text)
    if verdict is None:
        return ScenarioAnswer(fails=None, mode=None, format_ok=False)
    return ScenarioAnswer(fails=verdict.fails, mode=verdict.mode, format_ok=True)


def _find_verdict(lines: list[str]) -> bool | None:
    # The verdict lives outside the labelled fields, so "REASONING: no, it ..." cannot vote.
    heads = [_ANSWER_LABEL.sub("", _cut_at_labels(line)).strip() for line in lines]
    for head in heads:
        match = _VERDICT_LINE.match(head)
        if match:
            return match.group(1).lower() == "yes"
    phrases = [m.group(1) for head in heads for m in _VERDICT_PHRASE.finditer(head)]
    if phrases:
        return phrases[-1].lower() == "yes"
    # Capitalised YES/NO inside a sentence imitates the target format; trust it only if unanimous.
    shouted = {m.group(1) for head in heads for m in _SHOUTED_VERDICT.finditer(head)}
    if len(shouted) == 1:
        return shouted == {"YES"}
    return None


def _cut_at_labels(line: str) -> str:
    for label in (_MODE_LABEL, _REASONING_LABEL):
        match = label.search(line)
        if match:
            line = line[: match.start()]
    return line


def _find_mode(lines: list[str]) -> str | None:
    for line in lines:
        label = _MODE_LABEL.search(line)
        if label:
            return _canonical_mode(line[label.end():])
    return None


def _canonical_mode(value: str) -> str | None:
    """'Rolling away.' / 'rolling-away' / '"tipping" (it falls over)' -> canonical; else None."""
    words = _MODE_WORDS.match(value)
    if not words:
        return None
    first, second = words.group(1).lower(), (words.group(2) or "").lower()
    if second and f"{first}_{second}" in FAILURE_MODES:
        return f"{first}_{second}"
    return first if first in FAILURE_MODES else None


def _is_strict(text: str) -> bool:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return len(lines) >= 2 and lines[0] in ("YES", "NO") and bool(_STRICT_MODE_LINE.match(lines[1]))


# --- numbers -------------------------------------------------------------------------------

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_SUPERSCRIPT_RUN = re.compile(r"[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+")
# The power of a unit (s^-2, s^{2}, s**-2, s⁻²): after a letter or a bracket, never a number of the answer.
_UNIT_EXPONENT = re.compile(r"(?<=[A-Za-z)])\s*(?:\^|\*\*)\s*\{?[-+]?\d+\}?")
# "answer" must be followed by is/:/= -- "To answer this, ..." opens many replies.
_ANSWER_MARKER = re.compile(r"(?:\banswer\s*(?:is\b|[:=])|\\boxed\{|####)", re.IGNORECASE)
# Bold markup around a number (**1.5 m/s**), which would otherwise read as a power (s**-2).
_BOLD = re.compile(r"(?:(?<=\s)|^)\*\*|\*\*(?=\s|$|[.,;:!?)])", re.M)
# Where an answer's clause ends: a bracket, "; ", ", " (not a thousands comma) or a condition ("at t = 2 s").
_CLAUSE_END = re.compile(r"[(\[]|;\s|,\s|\s(?:at|when|where|using|for|since|if|with)\s", re.IGNORECASE)
# An operator before the last '=': the '=' ends a computation, and the number after it is the result.
_COMPUTATION = re.compile(r"[*×·+^]|\s-\s|\d\s*[-/]\s*\d")  # not a unit's slash: "5 m/s = 18 km/h" is 5
_NUMBER = re.compile(
    r"""
    (?<![\w.^,/])(?<![\w)]\*\*)                      # not inside a word, a decimal, "3,14", "s^2" or "km/2"
    (?P<sign>[-+]?)
    (?P<mantissa>(?:\d{1,3}(?:,\d{3})+(?!\d)               # 12,345
                 |\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?!\d)   # 12 345 (SI: thin or plain spaces)
                 |\d+)(?:\.\d+)?|\.\d+)
    (?![,.]?\d|[ \u00a0\u202f]\d)                      # 3,14 (a decimal comma), 1 234,5: no number at all
    (?:[eE](?P<e_exponent>[-+]?\d+))?
    (?:\s*(?:[x×*·]|\\times|\\cdot)\s*10\s*(?:\^|\*\*)\s*\{?(?P<times_exponent>[-+]?\d+)\}?   # 3 × 10^8
      |\s*(?:\^|\*\*)\s*\{?(?P<power>[-+]?\d+)\}?                                            # 10^5, 2^10, 3²
      |\s*/\s*(?P<denominator>\d+(?:\.\d+)?)(?![\w.])                                         # 3/4
    )?
    """,
    re.VERBOSE,
)


def extract_number(text: str) -> float | None:
    """The answer after the last 'answer is' / 'Answer:' / \\boxed{ / ####, else the last number.

    After a marker only its clause counts: the rest of its line (the next line with text, when nothing but
    markup is left on it) up to a bracket, '; ', ', ' or ' at / when / where / using / for / since / if '.
    In it, the first number after the last '=' or '≈' when a computation comes before that sign
    ("Answer: F = m·a = 2 × 3 = 6 N" is 6), else its first number ("Answer: 5 m/s = 18 km/h" is 5), else None.
    Understands signs (also U+2212), thousands separators (12,345 and 12 345), decimals, 1.2e-3,
    3 × 10^8, 3.0 \\times 10^{8}, 3×10⁸, powers (10^5, 2^10, 3²) and fractions (3/4); units after
    the number are ignored, and exponents of units (m/s^2, m/s²) are not mistaken for the answer.
    A decimal comma (3,14) is ambiguous and gives None.
    """
    text = _BOLD.sub("", text.replace("\u2212", "-"))
    text = _SUPERSCRIPT_RUN.sub(lambda run: "^" + run.group().translate(_SUPERSCRIPTS), text)
    text = _UNIT_EXPONENT.sub("", text)
    markers = list(_ANSWER_MARKER.finditer(text))
    if not markers:
        numbers = list(_NUMBER.finditer(text))
        return _number_value(numbers[-1]) if numbers else None
    start = markers[-1].end()
    end = _line_end(text, start)
    if not re.search(r"\w", text[start:end]):  # "**Answer:**" or "The answer is:" alone on its line
        start = next((m.start() for m in re.finditer(r"^.*\w", text[end:], re.M)), len(text) - end) + end
        end = _line_end(text, start)
    clause = _CLAUSE_END.search(text, start, end)
    end = clause.start() if clause else end
    sign = max(text.rfind("=", start, end), text.rfind("≈", start, end))
    if sign >= 0 and _COMPUTATION.search(text, start, sign):
        start = sign + 1
    found = _NUMBER.search(text, start, end)  # searched in the whole text: the look-behind sees what precedes
    return _number_value(found) if found else None


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end


def _number_value(match: re.Match) -> float | None:
    sign = -1.0 if match.group("sign") == "-" else 1.0
    exponent = int(match.group("e_exponent") or 0) + int(match.group("times_exponent") or 0)
    magnitude = float(re.sub(r"[,\s]", "", match.group("mantissa")) + f"e{exponent}")
    try:
        if match.group("power") is not None:
            magnitude **= int(match.group("power"))
        elif match.group("denominator") is not None:
            magnitude /= float(match.group("denominator"))
    except (OverflowError, ZeroDivisionError):
        return None
    return sign * magnitude


# --- multiple choice -----------------------------------------------------------------------


def extract_choice(text: str, letters: str = "ABCD") -> str | None:
    """The chosen option letter: after the last 'answer is' / 'Answer:' / 'option is' (also 'answer is option B'),
    else the letter every line that starts with a bare letter names ('B', '(B)', 'B.', 'B) 12 m/s'): a reply
    that lists the options A) … D) names none. Only capitals count: a lowercase 'a' is far more often an
    article than an answer."""
    if not letters:
        return None
    text = _MARKDOWN.sub("", text)
    letter_class = "[" + re.escape(letters) + "]"
    # "A or B (or C)" chooses nothing; "B, A is wrong" chooses B: a run of letters must end its clause to hedge.
    hedge = (r"(?!(?:[)\]]?\s*(?i:or|and|/|,)\s*[(\[]?" + letter_class + r"(?![\w]))+[)\]]?\s*(?:[.;!?,]|$))")
    marked = re.findall(
        r"(?i:\b(?:answer|option|choice)\s*(?:is\s*:?|:))\s*(?i:(?:option|choice)\s*)?[(\[]?(" + letter_class
        + r")(?![\w])" + hedge,
        text,
    )
    if marked:
        return marked[-1]
    bare = {match.group(1) for line in text.splitlines()
            if (match := re.match(r"^\s*[(\[]?(" + letter_class + r")(?:[)\]]|[.:,](?!\w)|\s*$)", line))}
    return bare.pop() if len(bare) == 1 else None


# --- code ----------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*```\s*([\w+-]*)")
_PYTHON_FENCE_LANGUAGES = ("", "python", "python3", "py")
# Top-level lines that keep a bare (unfenced) program going.
_CODE_CONTINUATION = re.compile(
    r"^(?:\s|$|def |class |import |from \S+ import |@|#|if __name__|[A-Za-z_]\w*\s*=)"
)
_CODE_START = re.compile(r"^(?:def |class |import |from \S+ import |@)")


def extract_code(text: str, function_name: str | None = None) -> str | None:
    """Python source from a model answer: the first ```python block (unclosed blocks run to the
    end) or bare run of code (from the first def/class/import line to the prose after it) that
    defines `function_name` -- else the first Python block -- else the bare code. None when there
    is no code at all. The bare code counts even beside fences: an answer that starts with its
    function and then closes a block it never opened holds one fenced "block", of prose."""
    blocks = _python_fenced_blocks(text)
    bare = _bare_code(text)
    if function_name:
        defines = re.compile(rf"^\s*def {re.escape(function_name)}\s*\(", re.M)
        defining = [code for code in blocks + [bare] if code and defines.search(code)]
        if defining:
            return defining[0]
    return blocks[0] if blocks else bare


def _python_fenced_blocks(text: str) -> list[str]:
    blocks, current, language = [], None, ""
    for line in text.splitlines():
        fence = _FENCE.match(line)
        if fence and current is None:
            current, language = [], fence.group(1).lower()
        elif fence and line.strip() == "```":
            if language in _PYTHON_FENCE_LANGUAGES:
                blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    if current is not None and language in _PYTHON_FENCE_LANGUAGES:
        blocks.append("\n".join(current))
    return [block for block in blocks if block.strip()]


def _bare_code(text: str) -> str | None:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _CODE_START.match(line)), None)
    if start is None:
        return None
    end = start + 1
    while end < len(lines) and _CODE_CONTINUATION.match(lines[end]):
        end += 1
    return "\n".join(lines[start:end]).rstrip() + "\n"
