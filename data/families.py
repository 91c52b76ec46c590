"""Scenario families: an object kind × an action template, and how to sample one scenario of each.

An action lists its checks in timeline order (see physics_rules); a family keeps the checks
that apply to its object (a rigid object has no crush check, an unbreakable one no drop check).
Splitting by family lets a test set hold object × action combinations never seen in training
while every failure mode stays governed by the same inequalities as in training.

Values come from the fixed physical ranges of the catalog, except gaps and shelves, which are
sized around the object (as a layout would be): 0.55 to 1.8 times the room it needs.
Every sampled number is rounded to the precision it is shown with before anything is judged.
"""
import math
import random
from dataclasses import dataclass
from typing import Callable

from data import physics_rules as rules
from data.catalog import GRIPPERS, OBJECTS, SURFACES, ObjectKind
from data.quantities import round_sig


@dataclass(frozen=True)
class Action:
    key: str
    checks: tuple                          # rule functions, in timeline order
    applies_to: Callable                   # ObjectKind -> bool
    grasp: bool = False                    # held in the gripper (grip force, lift acceleration)
    lift_accel: tuple = (0.3, 2.5)         # m/s², when grasped
    sample: Callable = lambda rng, p: None  # adds the action's own parameters to p


@dataclass(frozen=True)
class Family:
    obj: ObjectKind
    action: Action
    checks: tuple

    @property
    def name(self) -> str:
        return f"{self.obj.key}/{self.action.key}"

    @property
    def physics(self) -> tuple:
        """What decides its outcome: the object and its checks. Families alike in this differ only in
        their words and number ranges, and are never split apart (physics_dataset.split_families)."""
        return self.obj.key, tuple(check.__name__ for check in self.checks)


def log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def round_to(x: float, step: float) -> float:
    return round(round(x / step) * step, 6)


def round_length(metres: float) -> float:
    """Lengths are shown to 5 mm below 10 cm and to 1 cm above."""
    return round_to(metres, 0.005 if metres < 0.1 else 0.01)


def add_surface(rng: random.Random, p: dict) -> None:
    surface = rng.choice(SURFACES)
    p["surface"] = surface.adjective
    p["surface_friction"] = round(rng.uniform(*surface.friction), 2)
    p["rolling_resistance"] = round_sig(rng.uniform(*surface.rolling), 2)


def sample_accel(low: float, high: float, surface: bool = False):
    def sample(rng, p):
        if surface:
            add_surface(rng, p)
        p["accel_mps2"] = round_to(log_uniform(rng, low, high), 0.1)
    return sample


def sample_angle(low: float, high: float, surface: bool = False):
    def sample(rng, p):
        if surface:
            add_surface(rng, p)
        p["angle_deg"] = round_to(log_uniform(rng, low, high), 0.5)
    return sample


def sample_push(rng, p):
    add_surface(rng, p)
    p["push_height_m"] = round_length(p["height_m"] * rng.uniform(0.2, 0.95))


def sample_roll(rng, p):
    add_surface(rng, p)
    p["release_speed_mps"] = round(log_uniform(rng, 0.05, 1.5), 2)
    p["edge_distance_m"] = round(rng.uniform(0.1, 1.2), 2)


def sample_gap(rng, p):
    needed = p["width_m"] + rules.CLEARANCE_MARGIN_M
    p["gap_m"] = round_length(needed * math.exp(rng.uniform(-0.6, 0.6)))


def sample_shelf(rng, p):
    p["carry_height_m"] = round(rng.uniform(0.01, 0.15), 2)
    needed = p["carry_height_m"] + p["height_m"] + rules.CLEARANCE_MARGIN_M
    p["shelf_m"] = round_length(needed * math.exp(rng.uniform(-0.5, 0.5)))


def sample_drop(rng, p):
    p["drop_height_m"] = round(log_uniform(rng, 0.02, 1.2), 2)


def _any(obj) -> bool:
    return True


def _round(obj) -> bool:
    return obj.is_round


def _container(obj) -> bool:
    return obj.is_container


def _pushable(obj) -> bool:
    return not obj.is_round and not obj.is_container


GRASP = (rules.grip_crush, rules.grip_slip)
ACTIONS = (
    Action("lift", GRASP, _any, grasp=True),
    Action("lift_fast", GRASP, _any, grasp=True, lift_accel=(3.0, 12.0)),
    Action("carry", GRASP + (rules.held_accel,), _container, grasp=True, sample=sample_accel(0.3, 6.0)),
    Action("pour", GRASP + (rules.held_accel,), _container, grasp=True, sample=sample_accel(0.5, 8.0)),
    Action("tilt_container", GRASP + (rules.held_tilt,), _container, grasp=True,
           sample=sample_angle(3.0, 50.0)),
    Action("carry_tray", (rules.tray_accel,), _any, sample=sample_accel(0.2, 6.0, surface=True)),
    Action("tilt_tray", (rules.incline,), _any, sample=sample_angle(0.5, 40.0, surface=True)),
    Action("place_incline", GRASP + (rules.incline,), _any, grasp=True, sample=sample_angle(0.5, 35.0, surface=True)),
    Action("push", (rules.push_tip,), _pushable, sample=sample_push),
    Action("nudge", (rules.roll_out,), _round, sample=sample_roll),
    Action("pass_gap", GRASP + (rules.gap,), _any, grasp=True, sample=sample_gap),
    Action("pass_under_shelf", GRASP + (rules.shelf,), _any, grasp=True, sample=sample_shelf),
    Action("release", GRASP + (rules.drop_impact,), _any, grasp=True, sample=sample_drop),
    Action("drop_in_bin", GRASP + (rules.drop_impact,), _any, grasp=True, sample=sample_drop),
    Action("release_moving", GRASP + (rules.roll_out,), _round, grasp=True, sample=sample_roll),
)


def applies(check, obj: ObjectKind) -> bool:
    """Whether the object has the property a check needs (a crush strength, a drop tolerance)."""
    if check is rules.grip_crush:
        return obj.material.crush_n is not None
    if check is rules.drop_impact:
        return obj.material.safe_impact_mps is not None
    return True


def all_families() -> list:
    return [Family(obj, action, tuple(c for c in action.checks if applies(c, obj)))
            for action in ACTIONS for obj in OBJECTS if action.applies_to(obj)]


def sample_object(rng: random.Random, obj: ObjectKind) -> dict:
    width = round_length(rng.uniform(*obj.width_m))
    height = width if obj.shape == "sphere" else round_length(rng.uniform(*obj.height_m))
    com_fraction = 0.5 if obj.is_round else rng.uniform(*obj.com_fraction)
    p = {"object": obj.key, "shape": obj.shape, "material": obj.material.name,
         "mass_kg": round_sig(log_uniform(rng, *obj.mass_kg), 2),
         "height_m": height, "width_m": width, "com_height_m": round_length(height * com_fraction),
         "grip_friction": round(rng.uniform(*obj.material.grip_friction), 2)}
    if obj.material.crush_n:
        p["crush_n"] = round_sig(log_uniform(rng, *obj.material.crush_n), 2)
    if obj.material.safe_impact_mps:
        p["safe_impact_mps"] = round(rng.uniform(*obj.material.safe_impact_mps), 1)
    if obj.is_container:
        p["fill"] = round(rng.uniform(*obj.fill), 2)
    if obj.is_round:
        p["inertia"] = obj.inertia
    return p


def sample_params(family: Family, rng: random.Random) -> dict:
    """One scenario of the family: object, gripper (when grasped), action and environment."""
    p = sample_object(rng, family.obj)
    if family.action.grasp:
        gripper = rng.choice(GRIPPERS)
        p["gripper"] = gripper.name
        p["contacts"] = gripper.contacts
        p["grip_n"] = round_sig(log_uniform(rng, *gripper.grip_n), 2)
        p["lift_accel"] = round_to(log_uniform(rng, *family.action.lift_accel), 0.1)
    family.action.sample(rng, p)
    return p
