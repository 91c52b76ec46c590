"""The words of a scenario: the object, the grasp, the action, then one fixed question.

A prompt states every number its checks use (and few others), in the record's `Units`, with
several templates per action and synonyms for objects and grippers. Ordinary cue words
(tall and narrow, slippery, fragile, brimming, heavy; a sharp acceleration, a steep ramp, a
firm grip, a full metre's drop) follow from single numbers by fixed thresholds, exactly as a
person would describe them; they never look at the label.
"""
import math
import random
from dataclasses import dataclass

from data.families import Family
from data.quantities import Units, force, mass, plain, speed

MODE_LIST = "tipping, slipping, crushing, sloshing, collision, dropping, rolling_away or none"
QUESTION = (f"Will the manipulation fail? Answer YES or NO, then FAILURE_MODE: {MODE_LIST}, "
            f"then REASONING: one sentence.")

# Which object properties each check reads ("stance": how it stands on a surface).
CHECK_FIELDS = {"grip_slip": ("mass",), "tray_accel": ("stance",), "incline": ("stance",), "held_accel": ("liquid",),
                "held_tilt": ("liquid",), "push_tip": ("width", "height"), "gap": ("width",),
                "shelf": ("height",)}

GRASP = (
    "{A_gripper} grips {obj} with {F} per finger ({n} fingers, friction {mu}){crush}.",
    "A robot holds {obj} in its {gripper}: {n} fingers press {F} each, friction {mu}{crush}.",
    "{Obj} is picked up by {a_gripper} whose {n} fingers squeeze {F} each (friction {mu}){crush}.",
)
CRUSH = ("; it crushes above {C}", "; the {noun} gives way under more than {C}", "; it withstands at most {C}")
SURVIVE = ("; the {noun} survives landings up to {v_safe}", "; it breaks if it lands faster than {v_safe}")
UNBREAKABLE = "; the {noun} cannot break"


@dataclass(frozen=True)
class Grades:
    """Words for a value at or below `low` or at or above `high`; `{}` stands for the number."""
    low: float
    low_forms: tuple
    high: float
    high_forms: tuple = ()


ACCEL_WORDS = Grades(0.8, ("a gentle {}", "a slow {}"), 3.0, ("a sharp {}", "a brisk {}"))
ANGLE_WORDS = Grades(3.0, ("a slight {}", "a gentle {}"), 20.0, ("a steep {}",))
GRIP_WORDS = Grades(4.0, ("a light {}", "a soft {}"), 80.0, ("a firm {}", "a strong {}"))
DROP_WORDS = Grades(0.05, ("just {}", "only {}"), 0.5, ("a full {}",))
SPEED_WORDS = Grades(0.15, ("a slow {}", "a gentle {}"), 0.8, ("a brisk {}", "a fast {}"))
EDGE_WORDS = Grades(0.25, ("just {}", "only {}"), math.inf)
PUSH_WORDS = Grades(0.3, ("low, {}",), 0.7, ("near its top, {}",))  # push height / object height

ACTION_TEMPLATES = {
    "lift": ("The robot lifts it at {a_lift}.",
             "It then raises the {noun} with an upward acceleration of {a_lift}.",
             "The arm picks it up, accelerating upward at {a_lift}."),
    "carry": ("The robot lifts it at {a_lift} and carries it across the room, accelerating at {a}.",
              "It raises the {noun} at {a_lift}, then moves it sideways with an acceleration of {a}.",
              "After lifting it at {a_lift}, the arm sweeps it to the next table at {a}."),
    "pour": ("The robot lifts it at {a_lift} and swings it toward a glass to pour, accelerating at {a}.",
             "It raises the {noun} at {a_lift}, then moves it over the sink to pour, accelerating at {a}.",
             "After lifting at {a_lift}, the arm brings the {noun} to the bowl for pouring at {a}."),
    "tilt_container": ("The robot lifts it at {a_lift} and tilts it by {angle} to show it to the camera.",
                       "It raises the {noun} at {a_lift}, then tips it {angle} sideways.",
                       "After a lift at {a_lift}, the wrist rotates the {noun} by {angle}."),
    "carry_tray": ("A mobile robot carries {obj} on {surface_a} tray ({surface_coef}) and accelerates at {a}.",
                   "{Obj} rides on {surface_a} tray ({surface_coef}) of a delivery robot that speeds up at {a}.",
                   "A serving robot with {obj} on its {surface} tray ({surface_coef}) brakes at {a}."),
    "tilt_tray": ("{Obj} rests on {surface_a} tray ({surface_coef}) that the robot tilts by {angle}.",
                  "The robot tips {surface_a} tray ({surface_coef}) holding {obj} to {angle}.",
                  "{Surface_a} platform ({surface_coef}) carrying {obj} is tilted {angle}."),
    "place_incline": ("The robot lifts it at {a_lift} and sets it on {surface_a} ramp ({surface_coef}) "
                      "inclined at {angle}.",
                      "It raises the {noun} at {a_lift} and places it on {surface_a} slope tilted {angle} "
                      "({surface_coef}).",
                      "After lifting at {a_lift}, the arm puts it on {surface_a} ramp tilted {angle} "
                      "({surface_coef})."),
    "push": ("The robot pushes {obj} across {surface_a} table ({surface_coef}), pressing {push_h} above the table.",
             "A robot finger shoves {obj} along {surface_a} bench ({surface_coef}), {push_h} up.",
             "{Obj} is pushed over {surface_a} counter ({surface_coef}) by a paddle {push_h} above its base."),
    "nudge": ("The robot nudges {obj} across {surface_a} table ({surface_coef}) and lets it go rolling at {v}; "
              "the edge is {L} away.{inertia}",
              "A robot finger flicks {obj} so it leaves rolling at {v} on {surface_a} bench ({surface_coef}), "
              "{L} from the edge.{inertia}",
              "{Obj} is set rolling at {v} across {surface_a} counter ({surface_coef}) whose edge lies {L} ahead."
              "{inertia}"),
    "pass_gap": ("The robot lifts it at {a_lift} and carries it through a {gap} gap between two shelves.",
                 "It raises the {noun} at {a_lift}, then passes it through an opening {gap} wide.",
                 "After lifting at {a_lift}, the arm moves it between two posts {gap} apart."),
    "pass_under_shelf": ("The robot lifts it at {a_lift}, holds it {carry_h} above the table and moves it "
                         "under a shelf {shelf} above the table.",
                         "It raises the {noun} at {a_lift} and carries it {carry_h} above the counter, "
                         "under a cabinet whose underside is {shelf} up.",
                         "After lifting at {a_lift}, the arm moves it {carry_h} above the desk beneath a "
                         "shelf with {shelf} of clearance."),
    "release": ("The robot lifts it at {a_lift} and lets go {d} above the floor{survive}.",
                "It raises the {noun} at {a_lift}, then opens the gripper {d} above a hard table{survive}.",
                "After lifting at {a_lift}, the arm drops it from {d} onto a tiled floor{survive}."),
    "drop_in_bin": ("The robot lifts it at {a_lift} and drops it into a bin whose bottom is {d} below{survive}.",
                    "It raises the {noun} at {a_lift}, then lets it fall {d} into a crate{survive}.",
                    "After lifting at {a_lift}, the arm releases it over a bin, {d} above the bin floor{survive}."),
    "release_moving": ("The robot lifts it at {a_lift} and sets it down on {surface_a} table ({surface_coef}) "
                       "already rolling at {v}; the edge is {L} away.{inertia}",
                       "It raises the {noun} at {a_lift} and lets it go rolling at {v} on {surface_a} bench "
                       "({surface_coef}) that ends {L} ahead.{inertia}",
                       "After lifting at {a_lift}, the arm releases it rolling at {v} onto {surface_a} counter "
                       "({surface_coef}), {L} from the edge.{inertia}"),
}
ACTION_TEMPLATES["lift_fast"] = ACTION_TEMPLATES["lift"]


def article(phrase: str) -> str:
    return f"{'an' if phrase[0].lower() in 'aeiou' else 'a'} {phrase}"


def capitalised(text: str) -> str:
    return text[0].upper() + text[1:]


def object_fields(family: Family) -> set:
    """The object properties the family's checks read, in the words of the description."""
    wanted = {field for check in family.checks for field in CHECK_FIELDS.get(check.__name__, ())}
    obj = family.obj
    fields = wanted - {"stance", "liquid"}
    if "stance" in wanted and not obj.is_round:
        fields |= {"width", "com"} | ({"height", "fill"} if obj.is_container else set())
    if "liquid" in wanted:
        fields |= {"width", "height", "fill"}
    return fields


def cue_words(p: dict, family: Family, fields: set, rng: random.Random) -> list:
    """Everyday adjectives implied by the numbers that matter in this family."""
    names = {check.__name__ for check in family.checks}
    cues = []
    if "com" in fields and p["height_m"] >= 3 * p["width_m"]:
        cues.append(rng.choice(("tall, narrow", "slender")))
    if "com" in fields and p["height_m"] <= 0.8 * p["width_m"]:
        cues.append(rng.choice(("squat", "low, wide")))
    if "grip_slip" in names and p["grip_friction"] <= 0.2:
        cues.append(rng.choice(("slippery", "smooth", "polished")))
    if ("grip_crush" in names and p["crush_n"] <= 20) or ("drop_impact" in names and p["safe_impact_mps"] <= 1.2):
        cues.append(rng.choice(("fragile", "delicate")))
    if "fill" in fields and p["fill"] >= 0.9:
        cues.append(rng.choice(("brimming", "nearly overflowing")))
    if "fill" in fields and p["fill"] <= 0.5:
        cues.append("half-empty")
    if "mass" in fields and p["mass_kg"] >= 3:
        cues.append("heavy")
    return cues[:2]


def dimensions(p: dict, fields: set, shape: str, units: Units) -> list:
    parts = [mass(p["mass_kg"])] if "mass" in fields else []
    if shape == "sphere" and fields & {"width", "height"}:
        parts.append(f"{units.length_text(p['width_m'])} across")
    elif shape == "lying_cylinder":
        if "width" in fields:
            parts.append(f"{units.length_text(p['width_m'])} long")
        if "height" in fields:
            parts.append(f"{units.length_text(p['height_m'])} thick")
    else:
        if "width" in fields:
            parts.append(f"{units.length_text(p['width_m'])} wide")
        if "height" in fields:
            parts.append(f"{units.length_text(p['height_m'])} tall")
    if "com" in fields:
        parts.append(f"centre of mass {units.length_text(p['com_height_m'])} up")
    if "fill" in fields:
        parts.append(f"filled to {round(p['fill'] * 100)}%")
    return parts


def describe_object(p: dict, family: Family, units: Units, rng: random.Random) -> str:
    fields = object_fields(family)
    name = rng.choice(family.obj.names)
    cues = cue_words(p, family, fields, rng)
    words = f"{', '.join(cues)} {name}" if cues else name
    parts = dimensions(p, fields, family.obj.shape, units)
    return f"{article(words)} ({', '.join(parts)})" if parts else article(words)


def graded(text: str, value: float, grades: Grades, rng: random.Random) -> str:
    if value <= grades.low:
        return rng.choice(grades.low_forms).format(text)
    if value >= grades.high:
        return rng.choice(grades.high_forms).format(text)
    return text


def values(p: dict, family: Family, units: Units, rng: random.Random) -> dict:
    """Everything a template may mention, formatted in the record's units."""
    obj = describe_object(p, family, units, rng)
    v = {"obj": obj, "Obj": capitalised(obj), "noun": family.obj.noun}
    if "grip_n" in p:
        v.update(gripper=p["gripper"], a_gripper=article(p["gripper"]), A_gripper=capitalised(article(p["gripper"])),
                 n=p["contacts"], F=graded(force(p["grip_n"]), p["grip_n"], GRIP_WORDS, rng),
                 mu=plain(p["grip_friction"], 2),
                 a_lift=graded(units.accel_text(p["lift_accel"]), p["lift_accel"], ACCEL_WORDS, rng))
        v["crush"] = rng.choice(CRUSH).format(C=force(p["crush_n"]), noun=v["noun"]) if "crush_n" in p else ""
    if "surface" in p:
        round_object = family.obj.is_round
        v.update(surface=p["surface"], surface_a=article(p["surface"]), Surface_a=capitalised(article(p["surface"])),
                 surface_coef=f"rolling resistance {plain(p['rolling_resistance'], 4)}" if round_object
                 else f"friction {plain(p['surface_friction'], 2)}")
    if "release_speed_mps" in p:  # rolling away depends on how much of its energy is in turning (catalog)
        v["inertia"] = f" Its moment of inertia is {plain(p['inertia'], 2)}·m·r²."
    if "drop_height_m" in p:
        if "safe_impact_mps" in p:
            v["survive"] = rng.choice(SURVIVE).format(noun=v["noun"], v_safe=speed(p["safe_impact_mps"]))
        else:
            v["survive"] = UNBREAKABLE.format(noun=v["noun"])
    for key, name, show, grades in (
            ("accel_mps2", "a", units.accel_text, ACCEL_WORDS), ("angle_deg", "angle", units.angle_text, ANGLE_WORDS),
            ("drop_height_m", "d", units.length_text, DROP_WORDS), ("release_speed_mps", "v", speed, SPEED_WORDS),
            ("edge_distance_m", "L", units.length_text, EDGE_WORDS), ("gap_m", "gap", units.length_text, None),
            ("carry_height_m", "carry_h", units.length_text, None), ("shelf_m", "shelf", units.length_text, None)):
        if key in p:
            v[name] = graded(show(p[key]), p[key], grades, rng) if grades else show(p[key])
    if "push_height_m" in p:
        v["push_h"] = graded(units.length_text(p["push_height_m"]), p["push_height_m"] / p["height_m"], PUSH_WORDS, rng)
    return v


def scenario_text(p: dict, family: Family, units: Units, rng: random.Random, frames=None) -> tuple:
    """(the scenario in words, its frames): the frames are the indices of the action template and of
    the grasp sentence, drawn, or given (a contrast twin keeps its original's sentences)."""
    v = values(p, family, units, rng)
    templates = ACTION_TEMPLATES[family.action.key]
    index = rng.randrange(len(templates)) if frames is None else frames[0]
    text, grasp = templates[index].format_map(v), None
    if family.action.grasp:
        grasp = rng.randrange(len(GRASP)) if frames is None else frames[1]
        text = GRASP[grasp].format_map(v) + " " + text
    return text.replace("  ", " ").replace(" ,", ","), (index, grasp)


def prompt(scenario: str, question: str = QUESTION) -> str:
    return f"{scenario}\n{question}"
