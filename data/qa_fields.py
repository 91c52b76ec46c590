"""Problem templates beyond mechanics: thermodynamics, waves and electricity.
Each returns a Problem (see qa_problem). Constants: c_water = 4186 J/(kg·K), L_fusion = 334 kJ/kg,
R = 8.314 J/(mol·K), k = 8.99e9 N·m²/C², T[K] = T[°C] + 273.15."""
import math

from data.qa_problem import Problem, pick, result, show

C_WATER, L_FUSION, R_GAS, K_COULOMB, KELVIN = 4186, 334, 8.314, 8.99e9, 273.15


def heat_water(rng):
    grams, t1, t2 = pick(rng, 100, 3000, 50), pick(rng, 5, 30, 1), pick(rng, 40, 95, 1)
    q = grams / 1000 * C_WATER * (t2 - t1) / 1000
    return Problem(f"How much heat, in kJ, warms {show(grams)} g of water from {show(t1)} °C to {show(t2)} °C?",
                   q, "kJ", (f"Q = m·c·ΔT with m = {show(grams / 1000)} kg, c = 4186 J/(kg·K), "
                             f"ΔT = {show(t2 - t1)} K.",
                             f"Q = {show(grams / 1000)} × 4186 × {show(t2 - t1)} = {result(q, 'kJ')}."),
                   {"kept grams": q * 1000, "sign error (ΔT = T1 − T2)": -q,
                    "used the final temperature, not the change": grams / 1000 * C_WATER * t2 / 1000})


def gas_pressure(rng):
    n, celsius, litres = pick(rng, 0.1, 5, 0.1), pick(rng, -20, 200, 5), pick(rng, 1, 50, 1)
    p = n * R_GAS * (celsius + KELVIN) / (litres / 1000) / 1000
    return Problem(f"{show(n)} mol of an ideal gas at {show(celsius)} °C fills {show(litres)} L. "
                   f"What is its pressure in kPa?", p, "kPa",
                   (f"p = n·R·T/V with T = {show(celsius + KELVIN)} K and V = {show(litres / 1000)} m³.",
                    f"p = {show(n)} × 8.314 × {show(celsius + KELVIN)} / {show(litres / 1000)} = "
                    f"{result(p, 'kPa')}."),
                   {"kept °C": n * R_GAS * celsius / (litres / 1000) / 1000,
                    "took litres as m³": p / 1000, "forgot R": p / R_GAS})


def melt_ice(rng):
    grams = pick(rng, 20, 5000, 10)
    q = grams / 1000 * L_FUSION
    return Problem(f"How much heat, in kJ, melts {show(grams)} g of ice that is already at 0 °C?", q, "kJ",
                   ("Melting at constant temperature: Q = m·L_f with L_f = 334 kJ/kg.",
                    f"Q = {show(grams / 1000)} × 334 = {result(q, 'kJ')}."),
                   {"kept grams": q * 1000, "used the heat of vaporisation (2260 kJ/kg)": grams / 1000 * 2260,
                    "divided by the mass": L_FUSION / (grams / 1000)})


def thermal_expansion(rng):
    alpha, length, warming = rng.choice([12, 17, 23, 9, 19]), pick(rng, 1, 100, 1), pick(rng, 10, 80, 5)
    mm = alpha * 1e-6 * length * warming * 1000
    return Problem(f"A rail {show(length)} m long with expansion coefficient {alpha} × 10⁻⁶ /K warms by "
                   f"{show(warming)} K. How much longer does it get, in mm?", mm, "mm",
                   ("ΔL = α·L·ΔT.",
                    f"ΔL = {alpha}e-6 × {show(length)} × {show(warming)} m = {result(mm, 'mm')}."),
                   {"answered in metres": mm / 1000, "forgot the 10⁻⁶": mm * 1e6,
                    "divided by ΔT": mm / warming ** 2})


def carnot_efficiency(rng):
    cold, hot = pick(rng, 0, 60, 5), pick(rng, 150, 600, 10)
    eta = (1 - (cold + KELVIN) / (hot + KELVIN)) * 100
    return Problem(f"What is the Carnot efficiency, in percent, of an engine working between {show(hot)} °C and "
                   f"{show(cold)} °C?", eta, "%",
                   ("η = 1 − T_c/T_h in kelvin.",
                    f"η = 1 − {show(cold + KELVIN)} / {show(hot + KELVIN)} = {result(eta, '%')}."),
                   {"used °C": (1 - cold / hot) * 100, "gave T_c/T_h": (cold + KELVIN) / (hot + KELVIN) * 100,
                    "sign error (T_c/T_h − 1)": -eta})


def wavelength(rng):
    v, f = rng.choice([343, 1480, 340, 5000]), pick(rng, 50, 5000, 10)
    lam = v / f
    return Problem(f"A wave travels at {v} m/s with frequency {show(f)} Hz. What is its wavelength in metres?",
                   lam, "m", ("λ = v/f.", f"λ = {v} / {show(f)} = {result(lam, 'm')}."),
                   {"swapped (f/v)": f / v, "multiplied": v * f, "extra factor ½": lam / 2})


def doppler_approaching(rng):
    f, vs = pick(rng, 200, 2000, 10), pick(rng, 5, 60, 1)
    heard = f * 343 / (343 - vs)
    return Problem(f"A siren of {show(f)} Hz approaches a listener at {show(vs)} m/s (sound speed 343 m/s). "
                   f"What frequency does the listener hear, in Hz?", heard, "Hz",
                   ("Approaching source: f' = f·v/(v − v_s).",
                    f"f' = {show(f)} × 343 / (343 − {show(vs)}) = {result(heard, 'Hz')}."),
                   {"sign error (receding formula)": f * 343 / (343 + vs), "inverted the ratio": f * (343 - vs) / 343,
                    "used the moving-listener formula": f * (343 + vs) / 343})


def string_fundamental(rng):
    cm, v = pick(rng, 30, 120, 1), pick(rng, 100, 600, 10)
    f = v / (2 * cm / 100)
    return Problem(f"A string {show(cm)} cm long carries waves at {show(v)} m/s. What is its fundamental "
                   f"frequency in Hz?", f, "Hz",
                   (f"The fundamental fits half a wavelength: f = v/(2L) with L = {show(cm / 100)} m.",
                    f"f = {show(v)} / (2 × {show(cm / 100)}) = {result(f, 'Hz')}."),
                   {"missing factor 2": 2 * f, "kept centimetres": v / (2 * cm), "swapped (2L/v)": 2 * cm / 100 / v})


def period_from_frequency(rng):
    f = pick(rng, 2, 2000, 1)
    ms = 1000 / f
    return Problem(f"A tuning signal has frequency {show(f)} Hz. What is its period in milliseconds?", ms, "ms",
                   ("T = 1/f, then convert seconds to milliseconds.", f"T = 1 / {show(f)} s = {result(ms, 'ms')}."),
                   {"left it in seconds": 1 / f, "used 2π/f": 2 * math.pi / f * 1000, "inverted (f in ms)": f / 1000})


def ohm_current(rng):
    volts, kilo_ohms = pick(rng, 1.5, 48, 0.5), pick(rng, 0.1, 20, 0.1)
    ma = volts / (kilo_ohms * 1000) * 1000
    return Problem(f"A {show(volts)} V battery drives a {show(kilo_ohms)} kΩ resistor. What current flows, in mA?",
                   ma, "mA", ("Ohm's law: I = V/R.",
                              f"I = {show(volts)} / {show(kilo_ohms * 1000)} Ω = {result(ma, 'mA')}."),
                   {"took kΩ as Ω": ma * 1000, "multiplied (V·R)": volts * kilo_ohms,
                    "inverted (R/V)": kilo_ohms / volts})


def resistor_power(rng):
    volts, ohms = pick(rng, 1, 240, 1), pick(rng, 2, 2000, 1)
    p = volts ** 2 / ohms
    return Problem(f"What power, in watts, does a {show(ohms)} Ω resistor dissipate with {show(volts)} V across it?",
                   p, "W", ("P = V²/R.", f"P = {show(volts)}² / {show(ohms)} = {result(p, 'W')}."),
                   {"forgot to square V": volts / ohms, "multiplied by R": volts ** 2 * ohms, "extra factor ½": p / 2})


def parallel_resistance(rng):
    r1, r2 = pick(rng, 10, 1000, 10), pick(rng, 10, 1000, 10)
    r = r1 * r2 / (r1 + r2)
    return Problem(f"Resistors of {show(r1)} Ω and {show(r2)} Ω are connected in parallel. What is the combined "
                   f"resistance in ohms?", r, "Ω",
                   ("Parallel: 1/R = 1/R1 + 1/R2, so R = R1·R2/(R1 + R2).",
                    f"R = {show(r1)} × {show(r2)} / ({show(r1)} + {show(r2)}) = {result(r, 'Ω')}."),
                   {"added them as in series": r1 + r2, "averaged them": (r1 + r2) / 2,
                    "forgot to invert": 1 / r1 + 1 / r2})


def capacitor_energy(rng):
    microfarads, volts = pick(rng, 1, 1000, 1), pick(rng, 5, 400, 5)
    mj = microfarads * 1e-6 * volts ** 2 / 2 * 1000
    return Problem(f"How much energy, in mJ, does a {show(microfarads)} µF capacitor store at {show(volts)} V?",
                   mj, "mJ", ("E = ½·C·V².",
                              f"E = ½ × {show(microfarads)}e-6 × {show(volts)}² J = {result(mj, 'mJ')}."),
                   {"missing factor ½": 2 * mj, "forgot to square V": mj / volts, "took µF as F": mj * 1e6})


def coulomb_force(rng):
    q1, q2, cm = pick(rng, 0.5, 10, 0.5), pick(rng, 0.5, 10, 0.5), pick(rng, 2, 100, 1)
    f = K_COULOMB * q1 * 1e-6 * q2 * 1e-6 / (cm / 100) ** 2
    return Problem(f"Two charges of {show(q1)} µC and {show(q2)} µC are {show(cm)} cm apart. What is the force "
                   f"between them in newtons?", f, "N",
                   (f"Coulomb's law: F = k·q1·q2/r² with r = {show(cm / 100)} m.",
                    f"F = 8.99e9 × {show(q1)}e-6 × {show(q2)}e-6 / {show(cm / 100)}² = {result(f, 'N')}."),
                   {"forgot to square r": f * cm / 100, "kept centimetres": f / 10000, "took µC as C": f * 1e12})


def charge_flow(rng):
    amps, minutes = pick(rng, 0.1, 20, 0.1), pick(rng, 1, 90, 1)
    q = amps * minutes * 60
    return Problem(f"A current of {show(amps)} A flows for {show(minutes)} min. How much charge passes, in coulombs?",
                   q, "C", (f"Q = I·t with t = {show(minutes * 60)} s.",
                            f"Q = {show(amps)} × {show(minutes * 60)} = {result(q, 'C')}."),
                   {"kept minutes": amps * minutes, "divided (I/t)": amps / (minutes * 60),
                    "divided (t/I)": minutes * 60 / amps})


TOPICS = {
    "thermodynamics": (heat_water, gas_pressure, melt_ice, thermal_expansion, carnot_efficiency),
    "waves": (wavelength, doppler_approaching, string_fundamental, period_from_frequency),
    "electricity": (ohm_current, resistor_power, parallel_resistance, capacitor_energy, coulomb_force, charge_flow),
}
