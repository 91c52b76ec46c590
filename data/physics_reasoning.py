"""The teacher's answer, written from the very computation that decided the label.

Target, one line each:
    YES | NO                        will the manipulation fail?
    FAILURE_MODE: <mode or none>
    REASONING: <the governing inequality with the scenario's numbers>

A failure cites the first failing check (and, on a surface, why that mode comes before the
next one); a success cites the check closest to its threshold. Lengths use the
record's units, except inside √(2·g·d) and v²/(2·c·g), which need metres.
"""
from data import physics_rules as rules
from data.physics_rules import Check, Verdict
from data.quantities import Units, force, plain, sig, speed

G = plain(rules.G, 2)
VERB = {"slipping": "slides", "tipping": "tips over", "rolling_away": "rolls away", "sloshing": "spills"}
INFINITIVE = {"slipping": "slide", "tipping": "tip over", "rolling_away": "roll away", "sloshing": "spill"}


def slope_load(check: Check, p: dict, u: Units) -> str:
    if check.name.endswith("accel"):
        return f"a/g = {plain(p['accel_mps2'], 2)}/{G} = {sig(check.load)}"
    return f"tan {u.angle_text(p['angle_deg'])} = {sig(check.load)}"


def slope_limit(mode: str, check: Check, p: dict, u: Units) -> str:
    """The limit of one mode in tan θ_eff units (sloshing is written separately, as a rise)."""
    if mode == "slipping":
        return f"the friction coefficient {plain(p['surface_friction'], 2)}"
    if mode == "tipping":
        half_base = u.length_number(p["width_m"] / 2, computed=True)
        com_height = u.length_number(p["com_height_m"])
        return f"the tipping ratio (b/2)/h = {half_base}/{com_height} = {sig(check.limits[mode])}"
    return f"the rolling resistance {plain(p['rolling_resistance'], 4)}"


def liquid_rise(check: Check, p: dict, u: Units) -> tuple:
    """(rise of the liquid at the wall, free board), both written out with their numbers."""
    radius = p["width_m"] / 2
    rise = f"{u.length_number(radius, computed=True)} × {sig(check.load)} = " \
           f"{u.length_text(radius * check.load, computed=True)}"
    board = f"(1 − {plain(p['fill'], 2)}) × {u.length_number(p['height_m'])} = " \
            f"{u.length_text((1 - p['fill']) * p['height_m'], computed=True)}"
    return rise, board


def slope_failure(check: Check, p: dict, u: Units, noun: str) -> str:
    mode = check.mode
    if mode == "sloshing":
        rise, board = liquid_rise(check, p, u)
        text = f"With {slope_load(check, p, u)} the liquid rises R·tan θ = {rise} at the wall, more than the " \
               f"free board (1 − fill)·H = {board}, so the {noun} spills."
    else:
        text = f"{slope_load(check, p, u)} exceeds {slope_limit(mode, check, p, u)}, so the {noun} {VERB[mode]}."
    passed = check.exceeded
    if len(passed) > 1:
        first, second = passed[0], passed[1]
        text += f" It {VERB[first].split()[0]} before it could {INFINITIVE[second]} " \
                f"({sig(check.limits[first])} < {sig(check.limits[second])})."
    return text


def slope_pass(check: Check, p: dict, u: Units) -> str:
    clauses = []
    solid = [mode for mode in check.limits if mode != "sloshing"]
    if solid:
        limits = " and ".join(slope_limit(mode, check, p, u) for mode in solid)
        clauses.append(f"{slope_load(check, p, u)} stays below {limits}")
    if "sloshing" in check.limits:
        rise, board = liquid_rise(check, p, u)
        lead = "" if solid else f"with {slope_load(check, p, u)} "
        clauses.append(f"{lead}the liquid rises {rise}, less than the free board {board}")
    return "; ".join(clauses)


def grip_friction(check: Check, p: dict) -> str:
    return f"{p['contacts']} × {plain(p['grip_friction'], 2)} × {plain(p['grip_n'], 1)} = " \
           f"{sig(check.limit)} N"


def lift_load(check: Check, p: dict) -> str:
    return f"m(g + a) = {plain(p['mass_kg'], 3)} × ({G} + {plain(p['lift_accel'], 2)}) = {sig(check.load)} N"


def gap_room(p: dict, u: Units) -> str:
    return f"{u.length_number(p['width_m'])} + {u.length_number(rules.CLEARANCE_MARGIN_M)} = " \
           f"{u.length_text(p['width_m'] + rules.CLEARANCE_MARGIN_M, computed=True)}"


def shelf_room(p: dict, u: Units) -> str:
    need = p["carry_height_m"] + p["height_m"] + rules.CLEARANCE_MARGIN_M
    return f"{u.length_number(p['carry_height_m'])} + {u.length_number(p['height_m'])} + " \
           f"{u.length_number(rules.CLEARANCE_MARGIN_M)} = {u.length_text(need, computed=True)}"


def landing(check: Check, p: dict) -> str:
    return f"√(2 × {G} × {plain(p['drop_height_m'], 3)}) = {sig(check.load)} m/s"


def rolling(check: Check, p: dict, u: Units) -> str:
    return f"(1 + {plain(p['inertia'], 2)}) × {plain(p['release_speed_mps'], 2)}²/" \
           f"(2 × {plain(p['rolling_resistance'], 4)} × {G}) = {u.length_text(check.load, computed=True)}"


def push_torque(check: Check, p: dict, u: Units) -> str:
    return f"μ·h = {plain(p['surface_friction'], 2)} × {u.length_number(p['push_height_m'])} = " \
           f"{u.length_text(check.load, computed=True)}"


def failure_sentence(check: Check, p: dict, u: Units, noun: str) -> str:
    name = check.name
    if name == "grip_crush":
        return f"The {force(p['grip_n'])} grip exceeds the {force(p['crush_n'])} the {noun} withstands, " \
               f"so it is crushed."
    if name == "grip_slip":
        return f"Friction holds at most {grip_friction(check, p)}, less than {lift_load(check, p)}, " \
               f"so the {noun} slips out of the grip."
    if name == "push_tip":
        return f"Pushed {u.length_text(p['push_height_m'])} up, {push_torque(check, p, u)} exceeds half the base " \
               f"b/2 = {u.length_text(p['width_m'] / 2, computed=True)}, so the {noun} tips over."
    if name == "gap":
        return f"The {noun} needs {gap_room(p, u)} with the margin, more than the {u.length_text(p['gap_m'])} gap, " \
               f"so it collides."
    if name == "shelf":
        return f"Held {u.length_text(p['carry_height_m'])} up, its top plus the margin reaches {shelf_room(p, u)}, " \
               f"above the {u.length_text(p['shelf_m'])} under the shelf, so it collides."
    if name == "drop_impact":
        return f"Released {u.length_text(p['drop_height_m'])} up, it lands at {landing(check, p)}, faster than the " \
               f"{speed(p['safe_impact_mps'])} it survives, so the {noun} breaks."
    if name == "roll_out":
        return f"At {speed(p['release_speed_mps'])} it rolls (1 + k)·v²/(2·c·g) = {rolling(check, p, u)}, farther " \
               f"than the edge {u.length_text(p['edge_distance_m'])} away, so it rolls off."
    return slope_failure(check, p, u, noun)


def pass_clause(check: Check, p: dict, u: Units) -> str:
    name = check.name
    if name == "grip_crush":
        return f"the {force(p['grip_n'])} grip stays below the {force(p['crush_n'])} crush limit"
    if name == "grip_slip":
        return f"friction {grip_friction(check, p)} exceeds {lift_load(check, p)}"
    if name == "push_tip":
        return f"{push_torque(check, p, u)} stays below b/2 = {u.length_text(p['width_m'] / 2, computed=True)}"
    if name == "gap":
        return f"the {u.length_text(p['gap_m'])} gap exceeds {gap_room(p, u)}"
    if name == "shelf":
        return f"{shelf_room(p, u)} fits under the {u.length_text(p['shelf_m'])} shelf"
    if name == "drop_impact":
        return f"it lands at {landing(check, p)}, below the {speed(p['safe_impact_mps'])} it survives"
    if name == "roll_out":
        return f"it rolls only {rolling(check, p, u)}, short of the edge {u.length_text(p['edge_distance_m'])} away"
    return slope_pass(check, p, u)


def reasoning(verdict: Verdict, p: dict, u: Units, noun: str) -> str:
    if verdict.fails:
        return failure_sentence(verdict.primary, p, u, noun)
    return f"The closest limit holds: {pass_clause(verdict.governing, p, u)}."


def target(verdict: Verdict, reasoning_text: str) -> str:
    return f"{'YES' if verdict.fails else 'NO'}\nFAILURE_MODE: {verdict.mode}\nREASONING: {reasoning_text}"
