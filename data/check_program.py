"""Check programs: the student writes the physics, a calculator does the arithmetic.

A 135M model copies the form of a computation well and its numbers badly ("2 × 0.48 × 3.4 =
1.34"), so a verdict it must reach by mental arithmetic follows the words of the scenario, not
its numbers. Program-aided answering (PAL, Gao et al. 2022) splits the work: the model writes
every check of the manipulation as arithmetic on the scenario's own numbers, and `run_program`
evaluates it with the same rules that labelled the data (physics_rules.Verdict). Which checks
apply, in which order, with which formula and which numbers -- the physics -- stays the model's.

    CHECKS:
    grip_crush: 3.2 > crushing 8.2
    grip_slip: 0.25 * (9.81 + 0.8) > slipping 3 * 0.17 * 3.2
    drop_impact: sqrt(2 * 9.81 * 80 / 100) > dropping 0.9

One line per check, in timeline order: `name: load > mode limit[, mode limit ...]`. A check
fails when its load exceeds its lowest limit, which names the mode; the first failing check is
the outcome, and none failing means "none". Numbers are copied as the prompt shows them, in its
units: lengths in cm or m, with `/ 100` where a formula needs metres; angles in degrees inside
tan(). The arithmetic allowed is + - * / **, parentheses, sqrt() and tan() -- nothing else runs.

Every check of the action is listed, also after a failing one: the student must never need the
outcome to know when to stop.
"""
import ast
import math
import operator
import re

from data import physics_rules as rules
from data.physics_reasoning import G
from data.physics_rules import Check, Verdict
from data.quantities import Units, plain

HEADER = "CHECKS:"
QUESTION = ("Will the manipulation fail? Write CHECKS: then each check in order, one per line, as "
            "`check: load > failure_mode limit`.")


def answered_by_program(record: dict) -> bool:
    """Whether a record's answer is a check program (physics_dataset marks it: meta answer_style "checks")."""
    return (record.get("meta") or {}).get("answer_style") == "checks"


# --- writing (the teacher) -------------------------------------------------------------------

def in_metres(metres: float, u: Units) -> str:
    """A length as the prompt shows it, converted to metres where a formula needs them."""
    return f"{u.length_number(metres)} / 100" if u.length == "cm" else u.length_number(metres)


def slope_load(check: Check, p: dict) -> str:
    if check.name.endswith("accel"):
        return f"{plain(p['accel_mps2'], 2)} / {G}"
    return f"tan({plain(p['angle_deg'], 1)})"


def slope_limit(mode: str, p: dict, u: Units) -> str:
    """tan θ_eff at which `mode` sets in (physics_rules.standing_limits and spill_ratio)."""
    if mode == "slipping":
        return plain(p["surface_friction"], 2)
    if mode == "tipping":
        return f"{u.length_number(p['width_m'])} / 2 / {u.length_number(p['com_height_m'])}"
    if mode == "rolling_away":
        return plain(p["rolling_resistance"], 4)
    return f"(1 - {round(p['fill'] * 100)} / 100) * {u.length_number(p['height_m'])} / " \
           f"({u.length_number(p['width_m'])} / 2)"


def load_and_limits(check: Check, p: dict, u: Units) -> tuple:
    """(load expression, [(mode, limit expression)]) of one check, limits in the rules' order."""
    name, margin = check.name, u.length_number(rules.CLEARANCE_MARGIN_M)
    if name == "grip_crush":
        return plain(p["grip_n"], 1), [("crushing", plain(p["crush_n"], 1))]
    if name == "grip_slip":
        return (f"{plain(p['mass_kg'], 3)} * ({G} + {plain(p['lift_accel'], 2)})",
                [("slipping", f"{p['contacts']} * {plain(p['grip_friction'], 2)} * {plain(p['grip_n'], 1)}")])
    if name == "push_tip":
        return (f"{plain(p['surface_friction'], 2)} * {u.length_number(p['push_height_m'])}",
                [("tipping", f"{u.length_number(p['width_m'])} / 2")])
    if name == "gap":
        return f"{u.length_number(p['width_m'])} + {margin}", [("collision", u.length_number(p["gap_m"]))]
    if name == "shelf":
        return (f"{u.length_number(p['carry_height_m'])} + {u.length_number(p['height_m'])} + {margin}",
                [("collision", u.length_number(p["shelf_m"]))])
    if name == "drop_impact":
        return (f"sqrt(2 * {G} * {in_metres(p['drop_height_m'], u)})",
                [("dropping", plain(p["safe_impact_mps"], 2))])
    if name == "roll_out":
        return (f"(1 + {plain(p['inertia'], 2)}) * {plain(p['release_speed_mps'], 2)} ** 2 / "
                f"(2 * {plain(p['rolling_resistance'], 4)} * {G})",
                [("rolling_away", in_metres(p["edge_distance_m"], u))])
    return slope_load(check, p), [(mode, slope_limit(mode, p, u)) for mode in check.limits]


def write_program(verdict: Verdict, p: dict, u: Units) -> str:
    lines = [HEADER]
    for check in verdict.checks:
        load, limits = load_and_limits(check, p, u)
        lines.append(f"{check.name}: {load} > " + ", ".join(f"{mode} {limit}" for mode, limit in limits))
    return "\n".join(lines)


# --- running (the calculator) ----------------------------------------------------------------

_LINE = re.compile(r"^(\w+): (.+?) > (.+)$")
_LIMIT = re.compile(r"^(" + "|".join(rules.MODES) + r") (.+)$")
_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCTIONS = {"sqrt": math.sqrt, "tan": lambda degrees: math.tan(math.radians(degrees))}
MAX_EXPONENT = 4  # v ** 2 is all the physics needs; a bigger power is a runaway, not a formula


def evaluate(expression: str) -> float:
    """The value of an arithmetic expression; ValueError for anything that is not plain arithmetic."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        raise ValueError(f"not arithmetic: {expression!r}") from error
    return _value(tree.body)


def _real(value) -> float:
    """A finite real number, or ValueError: (-8) ** 0.5 is complex in Python, 1e999 is inf, inf - inf is nan."""
    if isinstance(value, complex) or not math.isfinite(value):
        raise ValueError(f"not a finite real number: {value}")
    return value


def _value(node) -> float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _real(float(node.value))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError(f"exponent {right} is larger than {MAX_EXPONENT}")
        try:
            return _real(_OPERATORS[type(node.op)](left, right))
        except (ZeroDivisionError, OverflowError) as error:
            raise ValueError(str(error)) from error
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
            and len(node.args) == 1 and not node.keywords):
        try:
            return _real(_FUNCTIONS[node.func.id](_value(node.args[0])))
        except ValueError as error:  # sqrt of a negative number
            raise ValueError(f"{node.func.id}: {error}") from error
    raise ValueError(f"not allowed in a check: {ast.dump(node)[:60]}")


def parse_check(line: str) -> Check:
    """One `name: load > mode limit, ...` line as a Check; ValueError when it is not one."""
    match = _LINE.match(line.strip())
    if not match:
        raise ValueError(f"not a check line: {line!r}")
    name, load, limits_text = match.groups()
    limits = {}
    for part in limits_text.split(", "):
        limit = _LIMIT.match(part.strip())
        if not limit or limit.group(1) in limits:
            raise ValueError(f"not a 'mode limit' pair: {part!r}")
        limits[limit.group(1)] = evaluate(limit.group(2))
    load_value = evaluate(load)
    if load_value <= 0 or min(limits.values()) <= 0:
        raise ValueError(f"loads and limits are positive: {line!r}")
    return Check(name, load_value, limits)


def run_program(text: str):
    """The Verdict of a check program, or None when the text is not exactly one (then the answer
    counts as unparsed: the calculator never guesses what a malformed line meant)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) < 2 or lines[0] != HEADER:
        return None
    try:
        return Verdict([parse_check(line) for line in lines[1:]])
    except ValueError:
        return None
