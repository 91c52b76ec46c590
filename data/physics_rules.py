"""The physics teacher: which failure mode a manipulation scenario runs into, and by how much.

Every check compares a *load* with one or more *limits*; the check fails when load > limit.
g = 9.81 m/s², and the scenario parameters are SI (keys in brackets).

  crushing      grasp:  F_grip > F_crush                      [grip_n, crush_n]
                the force each finger presses with exceeds what the object withstands.
  slipping      lift:   n·μ·F_grip < m·(g + a)               [contacts, grip_friction, grip_n, mass_kg, lift_accel]
                n fingers each give at most μ·F of friction; lifting at a needs m(g + a).
  effective     A surface accelerating at a, or tilted by θ, pulls an object sideways like a slope
  slope         with tan θ_eff = a/g (or tan θ). Standing on that surface the object
                - slides    (slipping)     when tan θ_eff > μ_s                       [surface_friction]
                - tips      (tipping)      when tan θ_eff > (b/2)/h_com                [width_m, com_height_m]
                - rolls     (rolling_away) when tan θ_eff > c_rr, if it is round      [rolling_resistance]
                - spills    (sloshing)     when R·tan θ_eff > (1 − fill)·H, an open container:
                  the liquid surface tilts with the slope and rises R·tan θ_eff at the wall,
                  more than the free board (R = b/2, H the height)                    [fill, height_m]
                A container held in the gripper can only spill. The limit crossed first as the
                slope grows is the lowest one, so that mode wins: a box slides rather than tips
                when μ_s < (b/2)/h_com (the sliding friction then cannot build the tipping torque).
  tipping       push:   μ_s·h_push > b/2                      [surface_friction, push_height_m, width_m]
                pushed at height h, friction μ_s·m·g at the base turns the object about its
                front edge harder than its weight m·g·b/2 holds it down.
  collision     gap:    b + margin > gap width               [width_m, gap_m]
                shelf:  h_carry + H + margin > shelf clearance [carry_height_m, height_m, shelf_m]
                with a fixed tracking margin of CLEARANCE_MARGIN_M.
  dropping      release: √(2·g·d) > v_safe                   [drop_height_m, safe_impact_mps]
                released from height d, it lands faster than the speed it survives.
  rolling_away  released rolling: (1 + k)·v² / (2·c_rr·g) > L
                                    [inertia, release_speed_mps, rolling_resistance, edge_distance_m]
                a round object rolling at v carries ½·m·v²·(1 + k), k = I/(m·r²), and rolling
                resistance takes c_rr·m·g per metre: it stops beyond the edge L away.

Timeline: an action lists its checks in the order they happen (grasp → lift → transport →
place/release); the primary failure is the first check that fails. Later failures never
happen because the manipulation has already gone wrong.

Margin: ln(limit / load) of the check that decides the outcome (the primary failure, or the
tightest check of a success): > 0 safe, < 0 fails, and 0.1 means about 10% from the threshold.
"""
import math
from dataclasses import dataclass

G = 9.81
CLEARANCE_MARGIN_M = 0.02
MODES = ("tipping", "slipping", "crushing", "sloshing", "collision", "dropping", "rolling_away")
OUTCOMES = MODES + ("none",)
ROUND_SHAPES = ("sphere", "lying_cylinder")


@dataclass(frozen=True)
class Check:
    """One inequality: it fails when `load` exceeds the lowest of `limits` (failure mode -> limit)."""
    name: str
    load: float
    limits: dict

    @property
    def mode(self) -> str:
        return min(self.limits, key=self.limits.get)  # ties go to the mode listed first

    @property
    def limit(self) -> float:
        return self.limits[self.mode]

    @property
    def fails(self) -> bool:
        return self.load > self.limit

    @property
    def margin(self) -> float:
        return math.log(self.limit / self.load)

    @property
    def exceeded(self) -> list:
        """The modes whose limits the load passes, lowest limit first."""
        return sorted((m for m in self.limits if self.load > self.limits[m]), key=self.limits.get)

    @property
    def clearness(self) -> float:
        """How far from any threshold this outcome is, in ln units: the distance of the load from
        its limit, and, when the load passes two limits, how far apart those two are."""
        distance = abs(self.margin)
        passed = self.exceeded
        if len(passed) > 1:
            distance = min(distance, math.log(self.limits[passed[1]] / self.limits[passed[0]]))
        return distance


@dataclass(frozen=True)
class Verdict:
    checks: list

    @property
    def primary(self):
        """The first check along the timeline that fails, or None when the manipulation succeeds."""
        return next((check for check in self.checks if check.fails), None)

    @property
    def fails(self) -> bool:
        return self.primary is not None

    @property
    def mode(self) -> str:
        return self.primary.mode if self.fails else "none"

    @property
    def governing(self) -> Check:
        """The check the reasoning is about: the primary failure, or the tightest pass."""
        return self.primary or min(self.checks, key=lambda check: check.margin)

    @property
    def margin(self) -> float:
        return self.governing.margin


def is_round(p: dict) -> bool:
    return p["shape"] in ROUND_SHAPES


def is_container(p: dict) -> bool:
    return "fill" in p


def grip_crush(p: dict) -> Check:
    return Check("grip_crush", p["grip_n"], {"crushing": p["crush_n"]})


def grip_slip(p: dict) -> Check:
    load = p["mass_kg"] * (G + p["lift_accel"])
    return Check("grip_slip", load, {"slipping": p["contacts"] * p["grip_friction"] * p["grip_n"]})


def spill_ratio(p: dict) -> float:
    """The slope tan θ_eff at which liquid reaches the rim: (1 − fill)·H / R."""
    return (1 - p["fill"]) * p["height_m"] / (p["width_m"] / 2)


def standing_limits(p: dict) -> dict:
    """Limits on tan θ_eff for an object standing on a surface, in tie-breaking order."""
    if is_round(p):
        return {"rolling_away": p["rolling_resistance"]}
    limits = {"slipping": p["surface_friction"], "tipping": p["width_m"] / 2 / p["com_height_m"]}
    if is_container(p):
        limits["sloshing"] = spill_ratio(p)
    return limits


def tray_accel(p: dict) -> Check:
    """Standing on a tray that accelerates at a: tan θ_eff = a/g."""
    return Check("tray_accel", p["accel_mps2"] / G, standing_limits(p))


def incline(p: dict) -> Check:
    """Standing on a surface tilted by θ: tan θ_eff = tan θ."""
    return Check("incline", math.tan(math.radians(p["angle_deg"])), standing_limits(p))


def held_accel(p: dict) -> Check:
    """An open container held in the gripper while it accelerates at a: only the liquid moves."""
    return Check("held_accel", p["accel_mps2"] / G, {"sloshing": spill_ratio(p)})


def held_tilt(p: dict) -> Check:
    """An open container held in the gripper and tilted by θ."""
    return Check("held_tilt", math.tan(math.radians(p["angle_deg"])), {"sloshing": spill_ratio(p)})


def push_tip(p: dict) -> Check:
    return Check("push_tip", p["surface_friction"] * p["push_height_m"], {"tipping": p["width_m"] / 2})


def gap(p: dict) -> Check:
    return Check("gap", p["width_m"] + CLEARANCE_MARGIN_M, {"collision": p["gap_m"]})


def shelf(p: dict) -> Check:
    return Check("shelf", p["carry_height_m"] + p["height_m"] + CLEARANCE_MARGIN_M, {"collision": p["shelf_m"]})


def impact_speed(p: dict) -> float:
    return math.sqrt(2 * G * p["drop_height_m"])


def drop_impact(p: dict) -> Check:
    return Check("drop_impact", impact_speed(p), {"dropping": p["safe_impact_mps"]})


def roll_distance(p: dict) -> float:
    return (1 + p["inertia"]) * p["release_speed_mps"] ** 2 / (2 * p["rolling_resistance"] * G)


def roll_out(p: dict) -> Check:
    return Check("roll_out", roll_distance(p), {"rolling_away": p["edge_distance_m"]})


def judge(checks: tuple, p: dict) -> Verdict:
    """Run the action's checks, in timeline order, on scenario parameters `p`."""
    return Verdict([check(p) for check in checks])
