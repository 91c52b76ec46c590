"""How numbers and units are written in prompts and in reasoning.

A record picks one `Units` (lengths in cm or m, "m/s²" or "m/s^2", "°" or " degrees") and uses
it both in the prompt and in the reasoning, so the model never converts between the two.
Sampled values are rounded to the precision they are shown with *before* any physics is
computed: the numbers a reader sees are exactly the numbers that decided the label.
"""
import math
from dataclasses import dataclass


def round_sig(x: float, digits: int) -> float:
    """`x` rounded to `digits` significant digits (0.012345, 2 -> 0.012)."""
    if x == 0:
        return 0.0
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def sig(x: float, digits: int = 3) -> str:
    """A computed value with `digits` significant digits in fixed notation: 14.2, 0.0874, 1234."""
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def plain(x: float, decimals: int = 3) -> str:
    """A stored (already rounded) value without trailing zeros: 0.30 -> "0.3", 12.0 -> "12"."""
    text = f"{x:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True)
class Units:
    """The notation of one record. Forces are always N, masses kg, speeds m/s."""
    length: str = "cm"        # "cm" or "m"
    accel: str = "m/s²"       # "m/s²" or "m/s^2"
    angle: str = "°"          # "°" or " degrees"

    def length_number(self, metres: float, computed: bool = False) -> str:
        value = metres * 100 if self.length == "cm" else metres
        return sig(value) if computed else plain(value, 1 if self.length == "cm" else 3)

    def length_text(self, metres: float, computed: bool = False) -> str:
        return f"{self.length_number(metres, computed)} {self.length}"

    def accel_text(self, value: float) -> str:
        return f"{plain(value, 2)} {self.accel}"

    def angle_text(self, degrees: float) -> str:
        return f"{plain(degrees, 1)}{self.angle}"


def force(newtons: float) -> str:
    return f"{plain(newtons, 1)} N"


def mass(kg: float) -> str:
    return f"{plain(kg, 3)} kg"


def speed(mps: float) -> str:
    return f"{plain(mps, 2)} m/s"
