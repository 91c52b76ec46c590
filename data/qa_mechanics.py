"""Mechanics problem templates: kinematics, Newton's laws, friction, energy, momentum,
circular motion and oscillations (g = 9.81 m/s²). Each returns a Problem (see qa_problem)."""
import math

from data.qa_problem import G, Problem, pick, result, show


def final_speed(rng):
    v0, a, t = pick(rng, 1, 20, 0.5), pick(rng, 0.5, 6, 0.5), pick(rng, 2, 12, 1)
    v = v0 + a * t
    return Problem(f"A cart moving at {show(v0)} m/s speeds up at {show(a)} m/s² for {show(t)} s. "
                   f"What is its final speed in m/s?", v, "m/s",
                   ("Constant acceleration: v = v0 + a·t.",
                    f"v = {show(v0)} + {show(a)} × {show(t)} = {result(v, 'm/s')}."),
                   {"forgot the initial speed": a * t, "sign error": v0 - a * t, "used ½·a·t": v0 + a * t / 2})


def distance_from_rest(rng):
    a, t = pick(rng, 0.5, 8, 0.5), pick(rng, 2, 15, 1)
    s = a * t ** 2 / 2
    return Problem(f"A sled starts from rest and accelerates at {show(a)} m/s² for {show(t)} s. "
                   f"How far does it travel, in metres?", s, "m",
                   ("From rest: s = ½·a·t².", f"s = ½ × {show(a)} × {show(t)}² = {result(s, 'm')}."),
                   {"missing factor ½": a * t ** 2, "used s = a·t": a * t, "forgot to square t": a * t / 2})


def free_fall_time(rng):
    h = pick(rng, 2, 120, 0.5)
    t = math.sqrt(2 * h / G)
    return Problem(f"A stone is dropped from rest from a height of {show(h)} m. Ignoring air resistance, "
                   f"how long does it take to reach the ground, in seconds?", t, "s",
                   ("h = ½·g·t², so t = √(2h/g).", f"t = √(2 × {show(h)} / 9.81) = {result(t, 's')}."),
                   {"missing factor 2": math.sqrt(h / G), "forgot the square root": 2 * h / G,
                    "used the speed formula √(2gh)": math.sqrt(2 * G * h)})


def projectile_range(rng):
    v, angle = pick(rng, 5, 40, 1), rng.choice([15, 20, 25, 30, 35, 40, 50, 55, 60, 65, 70])
    r = v ** 2 * math.sin(math.radians(2 * angle)) / G
    return Problem(f"A ball is launched at {show(v)} m/s at {angle}° above level ground. Ignoring air resistance, "
                   f"how far away does it land, in metres?", r, "m",
                   ("Range on level ground: R = v²·sin(2θ)/g.",
                    f"R = {show(v)}² × sin({2 * angle}°) / 9.81 = {result(r, 'm')}."),
                   {"used sin θ instead of sin 2θ": v ** 2 * math.sin(math.radians(angle)) / G,
                    "extra factor ½": r / 2, "forgot to square v": v * math.sin(math.radians(2 * angle)) / G})


def braking_distance(rng):
    kmh, mu = pick(rng, 30, 130, 5), pick(rng, 0.3, 0.9, 0.05)
    v = kmh / 3.6
    d = v ** 2 / (2 * mu * G)
    return Problem(f"A car travelling at {show(kmh)} km/h brakes with locked wheels on a road with friction "
                   f"coefficient {show(mu)}. What is its stopping distance in metres?", d, "m",
                   (f"v = {show(kmh)} / 3.6 = {result(v, 'm/s')}; friction decelerates at μ·g, so d = v²/(2μg).",
                    f"d = {v:.2f}² / (2 × {show(mu)} × 9.81) = {result(d, 'm')}."),
                   {"kept km/h": kmh ** 2 / (2 * mu * G), "missing factor 2": v ** 2 / (mu * G),
                    "forgot to square v": v / (2 * mu * G)})


def pushed_block(rng):
    m, f, mu = pick(rng, 2, 30, 1), pick(rng, 20, 200, 5), pick(rng, 0.1, 0.4, 0.05)
    a = (f - mu * m * G) / m
    if a <= 0.2:
        return pushed_block(rng)
    return Problem(f"A {show(m)} kg crate is pushed horizontally with {show(f)} N across a floor with kinetic "
                   f"friction coefficient {show(mu)}. What is its acceleration in m/s²?", a, "m/s²",
                   ("Newton's second law: m·a = F − μ·m·g.",
                    f"a = ({show(f)} − {show(mu)} × {show(m)} × 9.81) / {show(m)} = {result(a, 'm/s²')}."),
                   {"forgot friction": f / m, "sign error on friction": (f + mu * m * G) / m,
                    "friction without the mass": (f - mu * G) / m})


def elevator_tension(rng):
    m, a = pick(rng, 200, 1500, 50), pick(rng, 0.5, 3, 0.1)
    t = m * (G + a)
    return Problem(f"An elevator of mass {show(m)} kg accelerates upward at {show(a)} m/s². "
                   f"What is the tension in its cable in newtons?", t, "N",
                   ("Newton's second law upward: T − m·g = m·a, so T = m(g + a).",
                    f"T = {show(m)} × (9.81 + {show(a)}) = {result(t, 'N')}."),
                   {"sign error": m * (G - a), "forgot the acceleration": m * G, "forgot gravity": m * a})


def incline_acceleration(rng):
    angle, thing = pick(rng, 5, 60, 0.5), rng.choice(("block", "puck", "crate", "toy car"))
    a = G * math.sin(math.radians(angle))
    return Problem(f"A {thing} slides down a frictionless ramp inclined at {show(angle)}°. "
                   f"What is its acceleration in m/s²?", a, "m/s²",
                   ("Along the ramp only g·sin θ acts.", f"a = 9.81 × sin {show(angle)}° = {result(a, 'm/s²')}."),
                   {"used cos instead of sin": G * math.cos(math.radians(angle)),
                    "took degrees as radians": G * math.sin(angle), "used tan": G * math.tan(math.radians(angle))})


def sliding_angle(rng):
    mu, thing = pick(rng, 0.1, 0.9, 0.01), rng.choice(("book", "phone", "coin", "brick"))
    angle = math.degrees(math.atan(mu))
    return Problem(f"A {thing} rests on a board with static friction coefficient {show(mu)}. "
                   f"The board is tilted slowly. "
                   f"At what angle in degrees does the book start to slide?", angle, "°",
                   ("Sliding starts when tan θ = μ.", f"θ = arctan {show(mu)} = {result(angle, '°')}."),
                   {"used arcsin": math.degrees(math.asin(mu)), "used arccos": math.degrees(math.acos(mu)),
                    "gave radians": math.atan(mu)})


def drop_speed(rng):
    h = pick(rng, 1, 80, 0.5)
    v = math.sqrt(2 * G * h)
    return Problem(f"A ball falls from rest through {show(h)} m. Ignoring air resistance, how fast is it moving "
                   f"at the bottom, in m/s?", v, "m/s",
                   ("Energy: m·g·h = ½·m·v², so v = √(2gh).",
                    f"v = √(2 × 9.81 × {show(h)}) = {result(v, 'm/s')}."),
                   {"missing factor 2": math.sqrt(G * h), "forgot the square root": 2 * G * h,
                    "used the time formula √(2h/g)": math.sqrt(2 * h / G)})


def spring_energy(rng):
    k, x_cm = pick(rng, 50, 2000, 50), pick(rng, 1, 30, 0.5)
    x = x_cm / 100
    e = k * x ** 2 / 2
    return Problem(f"A spring with constant {show(k)} N/m is compressed by {show(x_cm)} cm. "
                   f"How much energy does it store, in joules?", e, "J",
                   (f"x = {show(x_cm)} cm = {show(x)} m; E = ½·k·x².",
                    f"E = ½ × {show(k)} × {show(x)}² = {result(e, 'J')}."),
                   {"kept centimetres": k * x_cm ** 2 / 2, "missing factor ½": k * x ** 2,
                    "forgot to square x": k * x / 2})


def work_at_angle(rng):
    f, d, angle = pick(rng, 10, 200, 5), pick(rng, 2, 50, 1), rng.choice([10, 20, 25, 30, 35, 40, 50, 55, 60, 70])
    w = f * d * math.cos(math.radians(angle))
    return Problem(f"A rope pulls a sledge {show(d)} m along flat snow with {show(f)} N at {angle}° above the "
                   f"horizontal. How much work does the rope do, in joules?", w, "J",
                   ("Only the component along the motion does work: W = F·d·cos θ.",
                    f"W = {show(f)} × {show(d)} × cos {angle}° = {result(w, 'J')}."),
                   {"used sin instead of cos": f * d * math.sin(math.radians(angle)), "ignored the angle": f * d,
                    "sign error": -w})


def lifting_power(rng):
    m, h, minutes = pick(rng, 50, 800, 10), pick(rng, 2, 30, 1), pick(rng, 0.5, 5, 0.5)
    p = m * G * h / (minutes * 60)
    return Problem(f"A winch lifts {show(m)} kg by {show(h)} m at constant speed in {show(minutes)} min. "
                   f"What is its average power output in watts?", p, "W",
                   (f"P = m·g·h / t with t = {show(minutes)} min = {show(minutes * 60)} s.",
                    f"P = {show(m)} × 9.81 × {show(h)} / {show(minutes * 60)} = {result(p, 'W')}."),
                   {"kept minutes": m * G * h / minutes, "forgot g": m * h / (minutes * 60),
                    "multiplied by the time": m * G * h * minutes * 60})


def inelastic_collision(rng):
    m1, v1, m2, v2 = pick(rng, 1, 10, 0.5), pick(rng, 1, 10, 0.5), pick(rng, 1, 10, 0.5), pick(rng, 1, 10, 0.5)
    v = (m1 * v1 - m2 * v2) / (m1 + m2)
    if abs(v) < 0.05:
        return inelastic_collision(rng)
    return Problem(f"A {show(m1)} kg cart moving east at {show(v1)} m/s hits a {show(m2)} kg cart moving west at "
                   f"{show(v2)} m/s and they stick together. What is their velocity in m/s (east positive)?", v, "m/s",
                   ("Momentum is conserved: (m1 + m2)·v = m1·v1 − m2·v2 (west is negative).",
                    f"v = ({show(m1)} × {show(v1)} − {show(m2)} × {show(v2)}) / ({show(m1)} + {show(m2)}) = "
                    f"{result(v, 'm/s')}."),
                   {"sign error on the westward cart": (m1 * v1 + m2 * v2) / (m1 + m2),
                    "divided by the first mass only": (m1 * v1 - m2 * v2) / m1, "averaged the speeds": (v1 - v2) / 2})


def bounce_force(rng):
    m, v_in, v_out, ms = pick(rng, 0.05, 0.6, 0.01), pick(rng, 3, 30, 1), pick(rng, 1, 20, 1), pick(rng, 2, 40, 1)
    f = m * (v_in + v_out) / (ms / 1000)
    return Problem(f"A {show(m)} kg ball hits a wall at {show(v_in)} m/s and bounces straight back at "
                   f"{show(v_out)} m/s; "
                   f"the contact lasts {show(ms)} ms. What is the average force on the ball in newtons?", f, "N",
                   ("The velocity reverses, so Δv = v_in + v_out; F = m·Δv/Δt.",
                    f"F = {show(m)} × ({show(v_in)} + {show(v_out)}) / {show(ms / 1000)} = {result(f, 'N')}."),
                   {"sign error (Δv = v_in − v_out)": m * (v_in - v_out) / (ms / 1000),
                    "kept milliseconds": m * (v_in + v_out) / ms, "ignored the rebound": m * v_in / (ms / 1000)})


def centripetal_acceleration(rng):
    v, r = pick(rng, 2, 40, 1), pick(rng, 0.5, 100, 0.5)
    a = v ** 2 / r
    return Problem(f"A car drives around a circle of radius {show(r)} m at {show(v)} m/s. "
                   f"What is its centripetal acceleration in m/s²?", a, "m/s²",
                   ("a = v²/r.", f"a = {show(v)}² / {show(r)} = {result(a, 'm/s²')}."),
                   {"forgot to square v": v / r, "multiplied by r": v ** 2 * r, "extra factor ½": a / 2})


def curve_speed(rng):
    mu, r = pick(rng, 0.2, 1.0, 0.05), pick(rng, 10, 300, 5)
    v = math.sqrt(mu * G * r)
    return Problem(f"What is the highest speed, in m/s, at which a car can take a flat curve of radius {show(r)} m "
                   f"if the tyre friction coefficient is {show(mu)}?", v, "m/s",
                   ("Friction supplies the centripetal force: μ·m·g = m·v²/r, so v = √(μ·g·r).",
                    f"v = √({show(mu)} × 9.81 × {show(r)}) = {result(v, 'm/s')}."),
                   {"converted to km/h": v * 3.6, "forgot the square root": mu * G * r,
                    "divided by μ": math.sqrt(G * r / mu)})


def pendulum_period(rng):
    length = pick(rng, 0.1, 5, 0.01)
    t = 2 * math.pi * math.sqrt(length / G)
    return Problem(f"What is the period, in seconds, of a simple pendulum {show(length)} m long for small swings?",
                   t, "s", ("T = 2π·√(L/g).", f"T = 2π × √({show(length)} / 9.81) = {result(t, 's')}."),
                   {"missing factor 2": t / 2, "swapped L and g": 2 * math.pi * math.sqrt(G / length),
                    "forgot the square root": 2 * math.pi * length / G})


def spring_period(rng):
    grams, k = pick(rng, 50, 2000, 10), pick(rng, 5, 500, 5)
    m = grams / 1000
    t = 2 * math.pi * math.sqrt(m / k)
    return Problem(f"A {show(grams)} g mass hangs from a spring with constant {show(k)} N/m. "
                   f"What is the period of its oscillation in seconds?", t, "s",
                   (f"m = {show(grams)} g = {show(m)} kg; T = 2π·√(m/k).",
                    f"T = 2π × √({show(m)} / {show(k)}) = {result(t, 's')}."),
                   {"kept grams": 2 * math.pi * math.sqrt(grams / k), "swapped m and k": 2 * math.pi * math.sqrt(k / m),
                    "missing factor 2": t / 2})


def shm_max_speed(rng):
    amplitude_cm, f = pick(rng, 1, 20, 0.5), pick(rng, 0.5, 10, 0.5)
    amplitude = amplitude_cm / 100
    v = amplitude * 2 * math.pi * f
    return Problem(f"An object oscillates harmonically with amplitude {show(amplitude_cm)} cm at {show(f)} Hz. "
                   f"What is its maximum speed in m/s?", v, "m/s",
                   (f"v_max = A·ω with ω = 2π·f and A = {show(amplitude)} m.",
                    f"v = {show(amplitude)} × 2π × {show(f)} = {result(v, 'm/s')}."),
                   {"used f instead of 2π·f": amplitude * f, "kept centimetres": v * 100, "missing factor 2": v / 2})


TEMPLATES = {f.__name__: f for f in (
    final_speed, distance_from_rest, free_fall_time, projectile_range, braking_distance, pushed_block,
    elevator_tension, incline_acceleration, sliding_angle, drop_speed, spring_energy, work_at_angle,
    lifting_power, inelastic_collision, bounce_force, centripetal_acceleration, curve_speed,
    pendulum_period, spring_period, shm_max_speed)}
