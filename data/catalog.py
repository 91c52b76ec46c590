"""What the scenarios are made of: materials, objects, grippers and surfaces, with realistic ranges.

Ranges are physical, not tuned to thresholds: a paper cup is fragile and a steel pot is heavy
whatever the action, so ordinary words (fragile, heavy, slippery) carry real information.
A material with no crush strength is rigid (no gripper here can crush it); one with no safe
impact speed survives every drop in these scenarios.
Shapes: box, upright_cylinder, sphere, lying_cylinder. Dimensions are SI metres: for a sphere
width = height = diameter; for a lying cylinder height is the diameter and width the length.

A rolling object carries kinetic energy ½·m·v²·(1 + k), k = I / (m·r²): 2/5 for a solid ball,
1/2 for a solid cylinder, 2/3 for a thin spherical shell, about 1 for a thin tube; for a shell of
inner/outer radius x, 2/5·(1 − x⁵)/(1 − x³) (sphere) or (1 + x²)/2 (cylinder). A drink lying in a
rolling bottle or can barely turns with it (the classic full-can-rolls-faster demonstration), so
only the container's share of the mass counts.
"""
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Material:
    name: str
    grip_friction: tuple                     # μ between gripper pads and the object
    crush_n: Optional[tuple] = None          # squeeze per finger that crushes it
    safe_impact_mps: Optional[tuple] = None  # fastest landing it survives


@dataclass(frozen=True)
class ObjectKind:
    key: str
    names: tuple           # ways a prompt may call it
    noun: str              # the short name reasoning uses
    shape: str
    material: Material
    mass_kg: tuple
    height_m: tuple
    width_m: tuple
    com_fraction: tuple = (0.45, 0.55)   # centre-of-mass height / height
    fill: Optional[tuple] = None         # open containers of liquid: fraction filled
    inertia: Optional[float] = None      # round objects: k = I / (m·r²) of the parts that turn as it rolls

    @property
    def is_round(self) -> bool:
        return self.shape in ("sphere", "lying_cylinder")

    @property
    def is_container(self) -> bool:
        return self.fill is not None


@dataclass(frozen=True)
class Gripper:
    name: str
    contacts: int
    grip_n: tuple          # force per finger


@dataclass(frozen=True)
class Surface:
    adjective: str         # "a rubber tray", "a wooden ramp"
    friction: tuple        # μ_s between the object and the surface
    rolling: tuple         # rolling-resistance coefficient c_rr for round objects


GLASS = Material("glass", (0.15, 0.35), safe_impact_mps=(1.0, 2.2))
THIN_GLASS = Material("thin glass", (0.15, 0.3), crush_n=(8, 30), safe_impact_mps=(0.8, 1.6))
CERAMIC = Material("ceramic", (0.3, 0.5), safe_impact_mps=(1.2, 2.5))
CARDBOARD = Material("cardboard", (0.4, 0.7), crush_n=(15, 90))
BOUND_PAPER = Material("bound paper", (0.35, 0.55))
SOFT_PAPER = Material("soft paper", (0.5, 0.8), crush_n=(5, 25))
PAPER = Material("paper", (0.4, 0.6), crush_n=(3, 14))
THIN_PLASTIC = Material("thin plastic", (0.25, 0.45), crush_n=(6, 40))
HARD_PLASTIC = Material("hard plastic", (0.3, 0.5))
ALUMINIUM = Material("thin aluminium", (0.2, 0.4), crush_n=(25, 90))
WOOD = Material("wood", (0.35, 0.6))
STEEL = Material("steel", (0.12, 0.3))
RUBBER = Material("rubber", (0.7, 1.0))
RESIN = Material("resin", (0.1, 0.25))
FRUIT = Material("fruit", (0.4, 0.7), crush_n=(20, 90), safe_impact_mps=(1.8, 4.0))
EGGSHELL = Material("eggshell", (0.3, 0.5), crush_n=(20, 45), safe_impact_mps=(0.6, 1.2))
WAX = Material("wax", (0.15, 0.3), safe_impact_mps=(2.5, 4.0))

BOX, UPRIGHT, SPHERE, LYING = "box", "upright_cylinder", "sphere", "lying_cylinder"
CONTAINER_COM = (0.35, 0.5)

OBJECTS = (
    ObjectKind("cardboard_box", ("cardboard box", "carton", "shipping box"), "box", BOX, CARDBOARD,
               (0.2, 3.0), (0.1, 0.4), (0.1, 0.4), (0.3, 0.6)),
    ObjectKind("wooden_crate", ("wooden crate", "wooden box", "crate"), "crate", BOX, WOOD,
               (1.0, 6.0), (0.2, 0.4), (0.2, 0.5), (0.35, 0.55)),
    ObjectKind("book", ("hardcover book standing on end", "upright hardcover book", "book standing upright"),
               "book", BOX, BOUND_PAPER, (0.3, 1.5), (0.2, 0.3), (0.02, 0.05)),
    ObjectKind("cereal_box", ("cereal box", "box of cereal"), "cereal box", BOX, CARDBOARD,
               (0.2, 0.6), (0.25, 0.35), (0.06, 0.09)),
    ObjectKind("toolbox", ("metal toolbox", "steel toolbox", "toolbox"), "toolbox", BOX, STEEL,
               (2.0, 10.0), (0.15, 0.25), (0.2, 0.4), (0.3, 0.5)),
    ObjectKind("wine_bottle", ("wine bottle", "glass bottle of wine", "bottle of wine"), "bottle", UPRIGHT, GLASS,
               (0.8, 1.5), (0.28, 0.33), (0.07, 0.08), (0.35, 0.5)),
    ObjectKind("soda_can", ("soda can", "can of soda", "drink can"), "can", UPRIGHT, ALUMINIUM,
               (0.25, 0.4), (0.115, 0.125), (0.064, 0.068)),
    ObjectKind("water_bottle", ("plastic water bottle", "bottle of water", "PET bottle"), "bottle", UPRIGHT,
               THIN_PLASTIC, (0.3, 1.6), (0.2, 0.33), (0.06, 0.09)),
    ObjectKind("candle", ("pillar candle", "wax candle", "candle"), "candle", UPRIGHT, WAX,
               (0.2, 1.0), (0.1, 0.25), (0.05, 0.1)),
    ObjectKind("thermos", ("steel thermos", "vacuum flask", "thermos"), "thermos", UPRIGHT, STEEL,
               (0.4, 1.2), (0.2, 0.32), (0.07, 0.09)),
    ObjectKind("mug", ("mug of coffee", "coffee mug", "ceramic mug of coffee"), "mug", UPRIGHT, CERAMIC,
               (0.25, 0.5), (0.09, 0.11), (0.07, 0.09), CONTAINER_COM, (0.4, 0.98)),
    ObjectKind("glass_of_water", ("glass of water", "drinking glass of water", "tumbler of water"), "glass",
               UPRIGHT, GLASS, (0.2, 0.45), (0.1, 0.15), (0.06, 0.08), CONTAINER_COM, (0.4, 0.98)),
    ObjectKind("paper_cup", ("paper cup of tea", "paper cup of coffee", "takeaway cup of tea"), "cup", UPRIGHT,
               PAPER, (0.1, 0.35), (0.09, 0.14), (0.07, 0.09), CONTAINER_COM, (0.4, 0.98)),
    ObjectKind("soup_bowl", ("bowl of soup", "soup bowl", "ceramic bowl of soup"), "bowl", UPRIGHT, CERAMIC,
               (0.4, 1.0), (0.05, 0.08), (0.14, 0.2), (0.3, 0.45), (0.4, 0.98)),
    ObjectKind("cooking_pot", ("pot of water", "steel pot of water", "saucepan of water"), "pot", UPRIGHT, STEEL,
               (1.5, 5.0), (0.12, 0.22), (0.18, 0.28), CONTAINER_COM, (0.4, 0.98)),
    ObjectKind("beaker", ("beaker of solution", "glass beaker of liquid", "lab beaker of solution"), "beaker",
               UPRIGHT, THIN_GLASS, (0.1, 0.8), (0.08, 0.18), (0.05, 0.1), CONTAINER_COM, (0.4, 0.98)),
    ObjectKind("pitcher", ("pitcher of juice", "plastic jug of juice", "jug of lemonade"), "pitcher", UPRIGHT,
               HARD_PLASTIC, (0.6, 2.0), (0.18, 0.25), (0.09, 0.13), CONTAINER_COM, (0.4, 0.98)),
    ObjectKind("vase", ("vase of flowers", "glass vase with water", "flower vase"), "vase", UPRIGHT, GLASS,
               (0.5, 2.0), (0.2, 0.35), (0.08, 0.15), CONTAINER_COM, (0.4, 0.98)),
    # k: a rubber shell 3 mm thick, x ≈ 0.9
    ObjectKind("tennis_ball", ("tennis ball",), "ball", SPHERE, RUBBER,
               (0.056, 0.06), (0.065, 0.068), (0.065, 0.068), inertia=0.6),
    # k: a solid ball
    ObjectKind("orange", ("orange", "ripe orange"), "orange", SPHERE, FRUIT,
               (0.12, 0.25), (0.07, 0.09), (0.07, 0.09), inertia=0.4),
    # k: a solid ball
    ObjectKind("billiard_ball", ("billiard ball", "pool ball"), "ball", SPHERE, RESIN,
               (0.16, 0.17), (0.057, 0.057), (0.057, 0.057), inertia=0.4),
    # k: raw: the shell (~11% of the mass, a thin shell) turns, the insides barely
    ObjectKind("egg", ("egg", "raw egg", "chicken egg"), "egg", SPHERE, EGGSHELL,
               (0.05, 0.07), (0.04, 0.045), (0.04, 0.045), inertia=0.07),
    # k: a thin glass shell
    ObjectKind("bauble", ("glass bauble", "glass Christmas ornament", "glass ornament"), "bauble", SPHERE,
               THIN_GLASS, (0.02, 0.08), (0.06, 0.1), (0.06, 0.1), inertia=0.67),
    # k: a solid ball
    ObjectKind("steel_ball", ("steel ball", "solid steel sphere", "steel ball bearing"), "ball", SPHERE, STEEL,
               (0.1, 2.0), (0.03, 0.08), (0.03, 0.08), inertia=0.4),
    # k: a solid cylinder
    ObjectKind("rolling_pin", ("rolling pin", "wooden rolling pin"), "rolling pin", LYING, WOOD,
               (0.3, 0.8), (0.05, 0.06), (0.3, 0.45), inertia=0.5),
    # k: a tube, its wall a tenth of the radius: x ≈ 0.9
    ObjectKind("steel_pipe", ("steel pipe", "length of steel pipe", "metal tube"), "pipe", LYING, STEEL,
               (0.5, 4.0), (0.03, 0.08), (0.3, 1.0), inertia=0.9),
    # k: paper around a cardboard core, x ≈ 0.35
    ObjectKind("paper_towel_roll", ("paper towel roll", "roll of kitchen paper"), "roll", LYING, SOFT_PAPER,
               (0.1, 0.3), (0.1, 0.12), (0.2, 0.28), inertia=0.56),
    # k: the glass, ~40% of the mass, turns; the wine barely
    ObjectKind("bottle_on_side", ("wine bottle lying on its side", "glass bottle lying on its side"), "bottle",
               LYING, GLASS, (0.8, 1.5), (0.07, 0.08), (0.28, 0.33), inertia=0.4),
    # k: the can, ~15 g of ~350 g, turns; the drink barely
    ObjectKind("can_on_side", ("soda can lying on its side", "drink can on its side"), "can", LYING, ALUMINIUM,
               (0.25, 0.4), (0.064, 0.068), (0.115, 0.125), inertia=0.04),
)

GRIPPERS = (
    Gripper("two-finger gripper", 2, (4, 60)),
    Gripper("three-finger hand", 3, (3, 40)),
    Gripper("soft silicone gripper", 2, (1, 12)),
    Gripper("industrial gripper", 2, (40, 250)),
)

SURFACES = (
    Surface("rubber", (0.7, 1.0), (0.03, 0.06)),
    Surface("carpeted", (0.5, 0.7), (0.05, 0.1)),
    Surface("foam", (0.6, 0.9), (0.08, 0.15)),
    Surface("wooden", (0.3, 0.5), (0.004, 0.012)),
    Surface("plastic", (0.25, 0.4), (0.005, 0.015)),
    Surface("steel", (0.15, 0.3), (0.002, 0.006)),
    Surface("glass", (0.1, 0.25), (0.002, 0.005)),
)
