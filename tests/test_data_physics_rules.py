"""The physics teacher: every failure mode flips exactly at its inequality, and the first failure
along the timeline is the one reported."""
import math
import random

import pytest

from data import physics_rules as rules
from data.catalog import OBJECTS
from data.families import all_families, sample_params

G = rules.G
JUST = 1e-6  # relative step to either side of a threshold


def around(threshold):
    """(just below, just above) a threshold."""
    return threshold * (1 - JUST), threshold * (1 + JUST)


def box(**extra):
    return {"shape": "box", "width_m": 0.1, "height_m": 0.3, "com_height_m": 0.15, **extra}


def mode_of(check):
    return check.mode if check.fails else "none"


def test_crushing_flips_when_grip_force_passes_crush_strength():
    below, above = around(40.0)
    assert mode_of(rules.grip_crush({"grip_n": below, "crush_n": 40.0})) == "none"
    assert mode_of(rules.grip_crush({"grip_n": above, "crush_n": 40.0})) == "crushing"


def test_slipping_flips_when_grip_friction_drops_below_lift_load():
    p = {"mass_kg": 1.2, "lift_accel": 2.0, "contacts": 2, "grip_friction": 0.4}
    needed_grip = 1.2 * (G + 2.0) / (2 * 0.4)  # 2·μ·F = m(g + a)
    below, above = around(needed_grip)
    assert mode_of(rules.grip_slip({**p, "grip_n": above})) == "none"
    assert mode_of(rules.grip_slip({**p, "grip_n": below})) == "slipping"


def test_three_contacts_hold_what_two_cannot():
    p = {"mass_kg": 1.0, "lift_accel": 0.0, "grip_friction": 0.5, "grip_n": 8.0}  # m·g = 9.81 N
    assert rules.grip_slip({**p, "contacts": 2}).fails          # 8 N of friction
    assert not rules.grip_slip({**p, "contacts": 3}).fails      # 12 N of friction


def test_tipping_on_a_tray_flips_at_half_base_over_com_height():
    p = box(surface_friction=0.9)                     # (b/2)/h = 0.05/0.15 = 1/3 < μ
    below, above = around(G * (0.05 / 0.15))
    assert mode_of(rules.tray_accel({**p, "accel_mps2": below})) == "none"
    assert mode_of(rules.tray_accel({**p, "accel_mps2": above})) == "tipping"


def test_sliding_on_a_tray_flips_at_the_friction_coefficient():
    p = box(surface_friction=0.2)
    below, above = around(G * 0.2)
    assert mode_of(rules.tray_accel({**p, "accel_mps2": below})) == "none"
    assert mode_of(rules.tray_accel({**p, "accel_mps2": above})) == "slipping"


def test_tipping_on_an_incline_flips_at_tan_theta_equal_half_base_over_com_height():
    p = box(surface_friction=0.9)
    below, above = around(math.degrees(math.atan(0.05 / 0.15)))
    assert mode_of(rules.incline({**p, "angle_deg": below})) == "none"
    assert mode_of(rules.incline({**p, "angle_deg": above})) == "tipping"


def test_on_an_incline_a_low_friction_object_slides_before_it_can_tip():
    steep = {"angle_deg": 40.0}                     # tan 40° = 0.84, beyond both limits
    assert mode_of(rules.incline({**box(surface_friction=0.2), **steep})) == "slipping"
    assert mode_of(rules.incline({**box(surface_friction=0.6), **steep})) == "tipping"


def test_sliding_on_an_incline_flips_at_tan_theta_equal_friction():
    p = box(surface_friction=0.25)
    below, above = around(math.degrees(math.atan(0.25)))
    assert mode_of(rules.incline({**p, "angle_deg": below})) == "none"
    assert mode_of(rules.incline({**p, "angle_deg": above})) == "slipping"


def test_pushing_tips_when_friction_times_push_height_exceeds_half_the_base():
    p = box(surface_friction=0.5)                    # tips when 0.5·h > 0.05 m
    below, above = around(0.1)
    assert mode_of(rules.push_tip({**p, "push_height_m": below})) == "none"
    assert mode_of(rules.push_tip({**p, "push_height_m": above})) == "tipping"


def test_sloshing_flips_when_liquid_rise_exceeds_free_board():
    p = {"shape": "upright_cylinder", "width_m": 0.08, "height_m": 0.1, "fill": 0.9}
    rise_limit = (1 - 0.9) * 0.1 / 0.04             # R·a/g = (1 − fill)·H
    below, above = around(G * rise_limit)
    assert mode_of(rules.held_accel({**p, "accel_mps2": below})) == "none"
    assert mode_of(rules.held_accel({**p, "accel_mps2": above})) == "sloshing"


def test_sloshing_when_a_held_container_tilts_past_the_rim():
    p = {"shape": "upright_cylinder", "width_m": 0.08, "height_m": 0.1, "fill": 0.8}
    below, above = around(math.degrees(math.atan((1 - 0.8) * 0.1 / 0.04)))
    assert mode_of(rules.held_tilt({**p, "angle_deg": below})) == "none"
    assert mode_of(rules.held_tilt({**p, "angle_deg": above})) == "sloshing"


def test_a_brimming_container_on_a_tray_spills_before_it_slides_or_tips():
    p = {"shape": "upright_cylinder", "width_m": 0.08, "height_m": 0.1, "com_height_m": 0.05, "fill": 0.95,
         "surface_friction": 0.5, "accel_mps2": 6.0}
    assert rules.tray_accel(p).exceeded == ["sloshing", "slipping"]
    assert rules.tray_accel(p).mode == "sloshing"


def test_collision_flips_when_the_gap_is_narrower_than_width_plus_margin():
    needed = 0.09 + rules.CLEARANCE_MARGIN_M
    below, above = around(needed)
    assert mode_of(rules.gap({"width_m": 0.09, "gap_m": above})) == "none"
    assert mode_of(rules.gap({"width_m": 0.09, "gap_m": below})) == "collision"


def test_collision_under_a_shelf_counts_carry_height_height_and_margin():
    p = {"carry_height_m": 0.05, "height_m": 0.2}
    below, above = around(0.05 + 0.2 + rules.CLEARANCE_MARGIN_M)
    assert mode_of(rules.shelf({**p, "shelf_m": above})) == "none"
    assert mode_of(rules.shelf({**p, "shelf_m": below})) == "collision"


def test_dropping_flips_when_impact_speed_exceeds_what_the_object_survives():
    survivable_height = 1.5 ** 2 / (2 * G)          # √(2·g·d) = v_safe
    below, above = around(survivable_height)
    assert mode_of(rules.drop_impact({"safe_impact_mps": 1.5, "drop_height_m": below})) == "none"
    assert mode_of(rules.drop_impact({"safe_impact_mps": 1.5, "drop_height_m": above})) == "dropping"


def test_rolling_away_on_a_slope_flips_at_the_rolling_resistance():
    p = {"shape": "sphere", "rolling_resistance": 0.02}
    below, above = around(math.degrees(math.atan(0.02)))
    assert mode_of(rules.incline({**p, "angle_deg": below})) == "none"
    assert mode_of(rules.incline({**p, "angle_deg": above})) == "rolling_away"


@pytest.mark.parametrize("inertia", [0.4, 0.5, 2 / 3, 1.0])  # solid ball, solid cylinder, thin shell, thin tube
def test_rolling_away_when_released_rolling_flips_where_resistance_has_taken_all_its_kinetic_energy(inertia):
    p = {"release_speed_mps": 0.5, "rolling_resistance": 0.01, "inertia": inertia}
    radius = 0.03
    spin = 0.5 / radius  # rolling without slipping
    energy_per_kg = 0.5 * 0.5 ** 2 + 0.5 * inertia * radius ** 2 * spin ** 2  # ½v² + ½(I/m)ω²
    roll = energy_per_kg / (0.01 * G)  # the resisting force per kg is c_rr·g
    below, above = around(roll)
    assert mode_of(rules.roll_out({**p, "edge_distance_m": above})) == "none"
    assert mode_of(rules.roll_out({**p, "edge_distance_m": below})) == "rolling_away"


def test_every_round_object_and_only_those_say_how_much_of_their_mass_turns():
    for obj in OBJECTS:
        assert (obj.inertia is not None) == obj.is_round, obj.key
        assert obj.inertia is None or 0 < obj.inertia <= 1, obj.key  # a thin tube, all mass at r, has k = 1


def family(name):
    return next(f for f in all_families() if f.name == name)


def test_the_first_failure_along_the_timeline_is_the_primary_mode():
    gap_family = family("paper_cup/pass_gap")
    p = sample_params(gap_family, random.Random(0))
    p.update(grip_n=50.0, crush_n=10.0, mass_kg=5.0, grip_friction=0.1, gap_m=0.01)  # crush, slip, collide
    verdict = rules.judge(gap_family.checks, p)
    assert [check.fails for check in verdict.checks] == [True, True, True]
    assert verdict.mode == "crushing"
    p["crush_n"] = 100.0
    assert rules.judge(gap_family.checks, p).mode == "slipping"


def test_success_reports_the_tightest_check_as_governing():
    lift = family("soda_can/lift")
    p = sample_params(lift, random.Random(0))
    p.update(grip_n=20.0, crush_n=21.0, mass_kg=0.1, grip_friction=0.5, contacts=2, lift_accel=1.0)
    verdict = rules.judge(lift.checks, p)
    assert not verdict.fails and verdict.governing.name == "grip_crush"
    assert verdict.margin == pytest.approx(math.log(21 / 20))


def test_the_margin_is_negative_exactly_when_the_check_fails():
    assert rules.grip_crush({"grip_n": 11.0, "crush_n": 10.0}).margin < 0
    assert rules.grip_crush({"grip_n": 9.0, "crush_n": 10.0}).margin > 0
