"""Balanced, leak-free splits of physics manipulation scenarios.

Families (object × action) are dealt to train, val and test_unseen; test_seen holds new
scenarios of the training families. So test_seen measures recall of familiar families and
test_unseen generalisation of the same inequalities to new object × action combinations.
Families that run the same checks on the same object (release and drop_in_bin, lift and
lift_fast) go to one split together, so no held-out family runs exactly the checks of a training
family of its object; and every object and every action keeps a training family, so a held-out
family is a new combination of known parts. Each held-out split gets at least
MIN_FAMILIES_PER_MODE such groups that show each mode: that show it as a clear case (see
difficulty) in seeded trial draws, not merely have a check for it (a cooking pot on a tray has a
tipping limit, yet practically never tips before it slides).

Balance: every split holds exactly ⌊n/2⌋ successes; its failures are shared as evenly as
possible by the seven modes (the counts differ by at most one).

Difficulty d ∈ [0, 1] sets how close to a threshold a case may be, in ln(limit/load) units:
every check must be at least lo = max(0.02, 0.5·(1 − d)) from its threshold (and, on a
surface, the two lowest limits that far apart), and the deciding check at most
hi = lo + 1.5·(1 − d) + 0.1. d = 0.2 (default): every check at least a factor 1.49 from its
threshold and the deciding one at most a factor 5.5; d = 1: the deciding one within 2%…13%.

Contrast twins (contrast=True, train split only). A model can score well by learning which mode an
action usually ends in (a drop usually breaks the object, a grip rarely slips) without reading a
number. So each drawn scenario is followed, when possible, by a twin: the same family, words and
units with one independent number redrawn (a grip force, a drop height, a gap) so that the outcome
changes to one the quotas still need. Only the numbers tell the two apart. The counts per outcome
stay exact; about nine in ten scenarios find a twin.

Answer style: "verdict" targets are YES/NO, FAILURE_MODE and a REASONING sentence
(physics_reasoning); "checks" targets are check programs that a calculator runs (check_program).
Both styles draw the same scenarios from the same seed: only prompts' questions and targets differ.
"""
import random
from functools import lru_cache
from typing import NamedTuple

from common.errors import PhysloraError
from data import check_program, physics_rules as rules
from data.families import Family, all_families, sample_params
from data.physics_prompts import QUESTION, prompt, scenario_text
from data.physics_reasoning import reasoning, target
from data.quantities import Units, round_sig
from data.schema import make_record

SPLITS = ("train", "val", "test_seen", "test_unseen")
DEFAULT_SIZES = {"train": 1400, "val": 280, "test_seen": 420, "test_unseen": 420}
FAMILY_SHARE = {"val": 0.12, "test_unseen": 0.2}
MIN_FAMILIES_PER_MODE = 3
MAX_ATTEMPTS = 20000
TRIAL_DRAWS, SHOWN_AT_LEAST = 400, 2  # a family shows an outcome seen clearly in 2 of 400 trial draws
TWIN_ATTEMPTS = 200  # per wanted outcome
DEFAULT_DIFFICULTY = 0.2
ANSWER_STYLES = ("verdict", "checks")  # YES/NO + mode + reasoning, or a check program (data/check_program.py)


def margin_window(difficulty: float) -> tuple:
    low = max(0.02, 0.5 * (1 - difficulty))
    return low, low + 1.5 * (1 - difficulty) + 0.1


def quotas(size: int) -> dict:
    """Exactly half successes; failures spread over the modes, the first modes taking any remainder."""
    failures = size - size // 2
    share, extra = divmod(failures, len(rules.MODES))
    counts = {mode: share + (i < extra) for i, mode in enumerate(rules.MODES)}
    counts["none"] = size // 2
    return counts


@lru_cache(maxsize=None)
def shown_outcomes(family: Family, window: tuple) -> frozenset:
    """The outcomes `family` shows as clear cases (is_clear in `window`) in its seeded trial draws."""
    rng = random.Random(family.name)  # the same trials whatever the data seed
    seen = {}
    for _ in range(TRIAL_DRAWS):
        verdict = rules.judge(family.checks, sample_params(family, rng))
        if is_clear(verdict, window):
            seen[verdict.mode] = seen.get(verdict.mode, 0) + 1
    return frozenset(outcome for outcome, count in seen.items() if count >= SHOWN_AT_LEAST)


def split_families(families: list, rng: random.Random, window: tuple) -> dict:
    """Deal families to train / val / test_unseen, each held-out split covering every mode.

    The unit dealt is a family's physics (Family.physics): families that run the same checks on the
    same object (release and drop_in_bin, lift and lift_fast, or a release of an object that cannot
    break, whose only check left is the grip, as in lift) go to one split together, so a held-out
    family is not the same inequalities in other words. A group is held out only if its object and
    its actions keep a training family.
    """
    groups = {}
    for family in families:
        groups.setdefault(family.physics, []).append(family)
    order = list(groups.values())
    rng.shuffle(order)
    assigned = {"val": [], "test_unseen": []}
    taken = set()

    def shows(group: list, mode: str) -> bool:
        return any(mode in shown_outcomes(family, window) for family in group)

    def leaves_training_something_of_each(group: list) -> bool:
        """Whether, once `group` is held out, its object and each of its actions still have a training family."""
        rest = [f for g in order if id(g) not in taken and g is not group for f in g]
        return group[0].obj in {f.obj for f in rest} and {f.action for f in group} <= {f.action for f in rest}

    def take(split: str, wanted_mode=None) -> None:
        group = next((g for g in order if id(g) not in taken and (wanted_mode is None or shows(g, wanted_mode))
                      and leaves_training_something_of_each(g)), None)
        if group is None:
            raise PhysloraError(f"family split: too few families show {wanted_mode} at this --difficulty; "
                                f"lower --difficulty")
        assigned[split].append(group)
        taken.add(id(group))

    rarest_first = sorted(rules.MODES, key=lambda mode: sum(shows(g, mode) for g in order))
    for mode in rarest_first:
        for split in assigned:
            while sum(shows(g, mode) for g in assigned[split]) < MIN_FAMILIES_PER_MODE:
                take(split, mode)
    for split, share in FAMILY_SHARE.items():
        while sum(map(len, assigned[split])) < round(share * len(families)):
            take(split)
    train = [g for g in order if id(g) not in taken]
    for mode in rules.MODES:
        if sum(shows(g, mode) for g in train) < MIN_FAMILIES_PER_MODE:
            raise PhysloraError(f"family split: too few training families show {mode} at this --difficulty; "
                                f"lower --difficulty")
    return {split: [family for group in split_groups for family in group]
            for split, split_groups in {"train": train, **assigned}.items()}


class Drawn(NamedTuple):
    """One scenario before it becomes a record."""
    family: Family
    params: dict
    verdict: rules.Verdict
    units: Units
    scenario: str       # the words of the scenario (the prompt without its question)
    frames: tuple       # indices of its action template and grasp sentence (physics_prompts.scenario_text)
    words_state: tuple  # the random state its words were chosen from (a twin reuses it)


def is_clear(verdict: rules.Verdict, window: tuple) -> bool:
    low, high = window
    return all(check.clearness >= low for check in verdict.checks) and abs(verdict.margin) <= high


def draw(outcome: str, families: list, window: tuple, rng: random.Random, seen_scenarios: set) -> Drawn:
    """Sample scenarios of random families until one has `outcome` at the wanted distance."""
    if not families:
        raise PhysloraError(f"no family of this split can show {outcome!r} at this --difficulty; lower --difficulty")
    for _ in range(MAX_ATTEMPTS):
        family = rng.choice(families)
        p = sample_params(family, rng)
        verdict = rules.judge(family.checks, p)
        if verdict.mode != outcome or not is_clear(verdict, window):
            continue
        units = Units(length=rng.choice(("cm", "m")), accel=rng.choice(("m/s²", "m/s^2")),
                      angle=rng.choice(("°", " degrees")))
        words_state = rng.getstate()
        scenario, frames = scenario_text(p, family, units, rng)
        if scenario not in seen_scenarios:
            seen_scenarios.add(scenario)
            return Drawn(family, p, verdict, units, scenario, frames, words_state)
    raise PhysloraError(f"--difficulty: found no clear enough {outcome!r} case in {MAX_ATTEMPTS} tries; "
                        f"lower --difficulty")


# Parameters a twin may change: numbers drawn independently of the others (geometry is left alone:
# a centre of mass or a sphere's height follows from it).
TWIN_KEYS = ("mass_kg", "grip_friction", "crush_n", "safe_impact_mps", "fill", "grip_n", "lift_accel",
             "surface_friction", "rolling_resistance", "accel_mps2", "angle_deg", "push_height_m",
             "release_speed_mps", "edge_distance_m", "gap_m", "carry_height_m", "shelf_m", "drop_height_m")


def twin(original: Drawn, outcome: str, window: tuple, rng: random.Random, seen_scenarios: set):
    """A contrast twin of `original` with `outcome`, or None: the same family, words and units, one number
    redrawn. Told apart only by their numbers, a pair teaches the model to read them."""
    keys = [key for key in TWIN_KEYS if key in original.params]
    for _ in range(TWIN_ATTEMPTS):
        key = rng.choice(keys)
        p = {**original.params, key: sample_params(original.family, rng)[key]}
        verdict = rules.judge(original.family.checks, p)
        if verdict.mode != outcome or not is_clear(verdict, window):
            continue
        words = random.Random()
        words.setstate(original.words_state)
        scenario, _ = scenario_text(p, original.family, original.units, words, original.frames)
        if scenario not in seen_scenarios:
            seen_scenarios.add(scenario)
            return original._replace(params=p, verdict=verdict, scenario=scenario)
    return None


def draw_pairs(quota: dict, by_outcome: dict, window: tuple, rng: random.Random, seen_scenarios: set) -> list:
    """Scenarios filling `quota` (outcome -> count), each followed by a contrast twin when one is found."""
    quota, drawn = dict(quota), []
    while sum(quota.values()):
        outcome = rng.choices(list(quota), weights=list(quota.values()))[0]
        drawn.append(draw(outcome, by_outcome[outcome], window, rng, seen_scenarios))
        quota[outcome] -= 1
        others = [o for o, n in quota.items() if n and o != outcome and o in shown_outcomes(drawn[-1].family, window)]
        rng.shuffle(others)
        for other in others:
            pair = twin(drawn[-1], other, window, rng, seen_scenarios)
            if pair:
                drawn.append(pair)
                quota[other] -= 1
                break
    return drawn


def physics_record(split: str, index: int, drawn: Drawn, difficulty: float, answer_style: str) -> dict:
    family, p, verdict, units = drawn.family, drawn.params, drawn.verdict, drawn.units
    checks = [{"check": c.name, "load": round_sig(c.load, 6),
               "limits": {mode: round_sig(limit, 6) for mode, limit in c.limits.items()}, "fails": c.fails}
              for c in verdict.checks]
    answer = {"fails": verdict.fails, "mode": verdict.mode, "margin": round(verdict.margin, 4),
              "governing_check": verdict.governing.name, "checks": checks}
    meta = {"family": family.name, "object": family.obj.key, "action": family.action.key, "template": drawn.frames[0],
            "difficulty": difficulty, "units": {"length": units.length, "accel": units.accel, "angle": units.angle},
            "reasoning_source": "physics", "params": p}
    if answer_style == "checks":
        meta["answer_style"] = "checks"
        question, answer_text = check_program.QUESTION, check_program.write_program(verdict, p, units)
    else:
        question, answer_text = QUESTION, target(verdict, reasoning(verdict, p, units, family.obj.noun))
    return make_record(f"physics-{split}-{index:05d}", "physics_scenario", split, prompt(drawn.scenario, question),
                       answer_text, answer, meta)


def generate(sizes: dict, seed: int, difficulty: float, contrast: bool = False, answer_style: str = "verdict") -> tuple:
    """Records per split and the card fields describing how they were made."""
    if not 0 <= difficulty <= 1:
        raise PhysloraError(f"--difficulty {difficulty}: must be between 0 and 1")
    if answer_style not in ANSWER_STYLES:
        raise PhysloraError(f"--answer-style {answer_style!r}: choose one of {', '.join(ANSWER_STYLES)}")
    rng = random.Random(seed)
    window = margin_window(difficulty)
    families = split_families(all_families(), rng, window)
    seen_scenarios = set()
    splits = {}
    for split in SPLITS:
        if split == "test_seen":  # only families that training really showed
            trained = {r["meta"]["family"] for r in splits["train"]}
            families["test_seen"] = [f for f in families["train"] if f.name in trained]
        by_outcome = {o: [f for f in families[split] if o in shown_outcomes(f, window)] for o in rules.OUTCOMES}
        missing = [o for o, n in quotas(sizes[split]).items() if n and not by_outcome[o]]
        if split == "test_seen" and missing:
            raise PhysloraError(f"--test-seen {sizes[split]} asks for {', '.join(map(repr, missing))} cases, and "
                                f"no family of the --train {sizes['train']} scenarios can show them (test_seen reuses train's "
                                "families); pass --train 14 or more (every failure mode then appears) or --test-seen 0")
        if split == "train" and contrast:
            drawn = draw_pairs(quotas(sizes[split]), by_outcome, window, rng, seen_scenarios)
        else:
            plan = [outcome for outcome, n in quotas(sizes[split]).items() for _ in range(n)]
            rng.shuffle(plan)
            drawn = [draw(o, by_outcome[o], window, rng, seen_scenarios) for o in plan]
        splits[split] = [physics_record(split, i, d, difficulty, answer_style) for i, d in enumerate(drawn)]
    card = {"kind": "physics", "seed": seed, "difficulty": difficulty,
            "margin_window_ln": [round(x, 4) for x in window],
            "balance": "per split: floor(n/2) successes (mode none); failures split evenly over the 7 modes",
            "families": {split: sorted(f.name for f in families[split]) for split in ("train", "val", "test_unseen")},
            "test_seen": "new scenarios of the train families that appear in train.jsonl"}
    if answer_style == "checks":
        card["answer_style"] = "checks: the target is a check program (data/check_program.py), run by a calculator"
    if contrast:
        card["contrast_twins"] = "train: each scenario followed by a twin with one number redrawn, when one exists"
    return splits, card


def label_of(record: dict) -> str:
    return record["answer"]["mode"]

