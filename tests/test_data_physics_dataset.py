"""The physics scenario data set: balanced, leak-free, deterministic, and its reasoning tells the truth."""
import difflib
import json
import os
import random
import re
from collections import Counter

import pytest

import generate_data
from common.errors import PhysloraError
from data import physics_dataset
from data import physics_rules as rules
from data.families import all_families
from data.physics_prompts import QUESTION
from data.schema import load_records

SMALL = ["--train", "140", "--val", "28", "--test-seen", "42", "--test-unseen", "42"]


@pytest.fixture(scope="module")
def default_set(tmp_path_factory):
    """The default `generate_data.py physics` output, generated once."""
    out = str(tmp_path_factory.mktemp("physics") / "out")
    generate_data.main(["physics", "--out", out])
    return {split: load_records(out, split) for split in physics_dataset.SPLITS}


def files(folder):
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))}


def test_there_are_at_least_sixty_families():
    assert len(all_families()) >= 60


def test_default_sizes_meet_the_minimums(default_set):
    sizes = {split: len(records) for split, records in default_set.items()}
    assert sizes["train"] >= 1000 and sizes["val"] >= 200
    assert sizes["test_seen"] >= 400 and sizes["test_unseen"] >= 400


def test_every_mode_and_success_appear_in_every_split(default_set):
    for split, records in default_set.items():
        assert set(Counter(r["answer"]["mode"] for r in records)) == set(rules.OUTCOMES), split


def test_half_of_each_split_succeeds_and_failures_spread_evenly_over_modes(default_set):
    for records in default_set.values():
        counts = Counter(r["answer"]["mode"] for r in records)
        assert counts["none"] == len(records) // 2
        failure_counts = [counts[mode] for mode in rules.MODES]
        assert max(failure_counts) - min(failure_counts) <= 1


def test_no_family_is_shared_by_train_val_and_test_unseen(default_set):
    families = {split: {r["meta"]["family"] for r in default_set[split]} for split in default_set}
    assert not families["train"] & families["val"]
    assert not families["train"] & families["test_unseen"]
    assert not families["val"] & families["test_unseen"]
    assert families["test_seen"] <= families["train"]


@pytest.mark.parametrize("seed", range(4))
def test_no_held_out_family_runs_the_checks_of_a_training_family_on_the_same_object(seed):
    window = physics_dataset.margin_window(physics_dataset.DEFAULT_DIFFICULTY)
    families = physics_dataset.split_families(all_families(), random.Random(seed), window)
    trained = {family.physics for family in families["train"]}
    for split in ("val", "test_unseen"):
        twins = [f.name for f in families[split] if f.physics in trained]  # e.g. book/lift held out, book/release trained
        assert not twins, (split, twins)


@pytest.mark.parametrize("seed", range(4))
def test_every_object_and_every_action_keeps_a_training_family(seed):
    """A held-out family is a new combination of known parts (seed 0 once held out every soup bowl family)."""
    window = physics_dataset.margin_window(physics_dataset.DEFAULT_DIFFICULTY)
    train = physics_dataset.split_families(all_families(), random.Random(seed), window)["train"]
    assert {f.obj.key for f in train} == {f.obj.key for f in all_families()}
    assert {f.action.key for f in train} == {f.action.key for f in all_families()}


def test_no_prompt_appears_in_two_splits(default_set):
    prompts = [r["prompt"] for records in default_set.values() for r in records]
    assert len(prompts) == len(set(prompts))


def test_prompts_end_with_the_fixed_question_and_targets_have_three_lines(default_set):
    for record in default_set["train"]:
        assert record["prompt"].endswith("\n" + QUESTION)
        verdict, mode, reasoning = record["target"].split("\n")
        assert verdict == ("YES" if record["answer"]["fails"] else "NO")
        assert mode == f"FAILURE_MODE: {record['answer']['mode']}"
        assert reasoning.startswith("REASONING: ")


def test_labels_agree_with_the_stored_checks(default_set):
    for record in default_set["test_unseen"]:
        checks = record["answer"]["checks"]
        first_failure = next((c for c in checks if c["fails"]), None)
        expected = min(first_failure["limits"], key=first_failure["limits"].get) if first_failure else "none"
        assert record["answer"]["mode"] == expected


NUMBER = r"(-?\d+(?:\.\d+)?)"
LENGTH = NUMBER + r" (cm|m)\b"


def to_metres(value, unit):
    return float(value) * (0.01 if unit == "cm" else 1.0)


def length_in(record, text):
    """A length written in the record's units, back in metres."""
    return float(text) * (0.01 if record["meta"]["units"]["length"] == "cm" else 1.0)


def close(parsed, expected, rel=0.006):
    return parsed == pytest.approx(expected, rel=rel, abs=1e-9)


def search(pattern, text):
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in {text!r}"
    return match.groups()


def check_slope(record, p, text, check):
    """The a/g or tan θ load and every limit the sentence mentions match the parameters."""
    if "a/g" in text:
        accel, load = search(r"a/g = " + NUMBER + r"/9\.81 = " + NUMBER, text)
        assert float(accel) == p["accel_mps2"] and close(float(load), p["accel_mps2"] / rules.G)
    else:
        angle, load = search(r"tan " + NUMBER + r"(?:°| degrees) = " + NUMBER, text)
        assert float(angle) == p["angle_deg"]
    if "friction coefficient" in text:
        assert float(search(r"friction coefficient " + NUMBER, text)[0]) == p["surface_friction"]
    if "(b/2)/h" in text:
        half, com, ratio = search(r"\(b/2\)/h = " + NUMBER + "/" + NUMBER + " = " + NUMBER, text)
        assert close(length_in(record, half), p["width_m"] / 2)
        assert length_in(record, com) == pytest.approx(p["com_height_m"])
        assert close(float(ratio), check["limits"]["tipping"])
    if "rolling resistance" in text:
        assert float(search(r"rolling resistance " + NUMBER, text)[0]) == p["rolling_resistance"]
    if "free board" in text:
        fill, height, board, unit = search(r"\(1 − " + NUMBER + r"\) × " + NUMBER + " = " + LENGTH, text)
        assert float(fill) == p["fill"] and length_in(record, height) == pytest.approx(p["height_m"])
        assert close(to_metres(board, unit), (1 - p["fill"]) * p["height_m"])


def check_reasoning_numbers(record):
    p = record["params"] if "params" in record else record["meta"]["params"]
    text = record["target"].split("REASONING: ")[1]
    name = record["answer"]["governing_check"]
    check = next(c for c in record["answer"]["checks"] if c["check"] == name)
    if name == "grip_crush":
        grip, crush = search(NUMBER + r" N grip (?:exceeds|stays below) the " + NUMBER + " N", text)
        assert float(grip) == p["grip_n"] and float(crush) == p["crush_n"]
    elif name == "grip_slip":
        n, mu, grip, friction = search(r"(\d+) × " + NUMBER + " × " + NUMBER + " = " + NUMBER + " N", text)
        mass, accel, load = search(r"m\(g \+ a\) = " + NUMBER + r" × \(9\.81 \+ " + NUMBER + r"\) = " + NUMBER, text)
        assert (int(n), float(mu), float(grip)) == (p["contacts"], p["grip_friction"], p["grip_n"])
        assert (float(mass), float(accel)) == (p["mass_kg"], p["lift_accel"])
        assert close(float(friction), int(n) * float(mu) * float(grip))
        assert close(float(load), p["mass_kg"] * (rules.G + p["lift_accel"]))
    elif name == "push_tip":
        mu, height, torque, unit = search(r"μ·h = " + NUMBER + " × " + NUMBER + " = " + LENGTH, text)
        assert float(mu) == p["surface_friction"] and length_in(record, height) == pytest.approx(p["push_height_m"])
        assert close(to_metres(torque, unit), p["surface_friction"] * p["push_height_m"])
    elif name == "gap":
        width, margin, need, unit = search(NUMBER + r" \+ " + NUMBER + " = " + LENGTH, text)
        gap_width = search(LENGTH + " gap", text)
        assert length_in(record, width) == pytest.approx(p["width_m"])
        assert length_in(record, margin) == pytest.approx(rules.CLEARANCE_MARGIN_M)
        assert to_metres(*gap_width) == pytest.approx(p["gap_m"])
    elif name == "shelf":
        carry, height, margin, need, unit = search(NUMBER + r" \+ " + NUMBER + r" \+ " + NUMBER + " = " + LENGTH, text)
        assert length_in(record, carry) == pytest.approx(p["carry_height_m"])
        assert length_in(record, height) == pytest.approx(p["height_m"])
        assert close(to_metres(need, unit), p["carry_height_m"] + p["height_m"] + rules.CLEARANCE_MARGIN_M)
    elif name == "drop_impact":
        height, speed = search(r"√\(2 × 9\.81 × " + NUMBER + r"\) = " + NUMBER + " m/s", text)
        survives = search(r"the " + NUMBER + " m/s it survives", text)[0]
        assert float(height) == p["drop_height_m"] and float(survives) == p["safe_impact_mps"]
        assert close(float(speed), (2 * rules.G * p["drop_height_m"]) ** 0.5)
    elif name == "roll_out":
        inertia, speed, resistance, distance, unit = search(
            r"\(1 \+ " + NUMBER + r"\) × " + NUMBER + r"²/\(2 × " + NUMBER + r" × 9\.81\) = " + LENGTH, text)
        edge = search(r"edge " + LENGTH, text)
        assert (float(inertia), float(speed), float(resistance)) == \
               (p["inertia"], p["release_speed_mps"], p["rolling_resistance"])
        assert close(to_metres(distance, unit),
                     (1 + p["inertia"]) * p["release_speed_mps"] ** 2 / (2 * p["rolling_resistance"] * rules.G))
        assert to_metres(*edge) == pytest.approx(p["edge_distance_m"])
    else:
        check_slope(record, p, text, check)


def test_the_reasoning_cites_the_stored_parameters_and_the_computed_load(default_set):
    records = [r for split in ("train", "test_unseen") for r in default_set[split]]
    governing = Counter(r["answer"]["governing_check"] for r in records)
    assert len(governing) == 11  # every kind of check is exercised
    for record in records:
        check_reasoning_numbers(record)


def test_the_reasoning_is_one_or_two_sentences(default_set):
    for record in default_set["val"]:
        reasoning = record["target"].split("REASONING: ")[1]
        assert reasoning.endswith(".")
        assert len(re.split(r"(?<=\.) (?=[A-Z])", reasoning)) <= 2, reasoning


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        generate_data.main(["physics", "--out", str(tmp_path / name), "--seed", seed] + SMALL)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert files(tmp_path / "a")["train.jsonl"] != files(tmp_path / "c")["train.jsonl"]


@pytest.mark.parametrize("seed", range(12))
def test_every_seed_generates_the_default_sizes(seed):
    splits, _ = physics_dataset.generate(physics_dataset.DEFAULT_SIZES, seed, physics_dataset.DEFAULT_DIFFICULTY)
    assert {split: len(records) for split, records in splits.items()} == physics_dataset.DEFAULT_SIZES


def test_a_family_shows_only_the_modes_it_produces_as_clear_cases():
    families = {f.name: f for f in all_families()}
    window = physics_dataset.margin_window(physics_dataset.DEFAULT_DIFFICULTY)
    # A cooking pot on a tray has a tipping limit but slides long before it tips.
    assert "tipping" not in physics_dataset.shown_outcomes(families["cooking_pot/carry_tray"], window)
    assert {"tipping", "none"} <= physics_dataset.shown_outcomes(families["thermos/push"], window)


def test_higher_difficulty_moves_cases_closer_to_their_thresholds():
    sizes = {"train": 140, "val": 28, "test_seen": 42, "test_unseen": 42}
    mean_distance = {}
    for difficulty in (0.0, 0.9):
        splits, card = physics_dataset.generate(sizes, 0, difficulty)
        low, high = card["margin_window_ln"]
        distances = [abs(r["answer"]["margin"]) for records in splits.values() for r in records]
        assert all(low - 1e-4 <= d <= high + 1e-4 for d in distances)
        mean_distance[difficulty] = sum(distances) / len(distances)
    assert mean_distance[0.9] < mean_distance[0.0] / 3


def test_the_card_lists_the_family_split_and_the_counts(tmp_path):
    out = tmp_path / "out"
    generate_data.main(["physics", "--out", str(out)] + SMALL)
    card = json.load(open(out / "card.json"))
    assert card["counts"]["train"]["labels"]["none"] == 70
    assert set(card["families"]) == {"train", "val", "test_unseen"}


def test_an_existing_non_empty_output_folder_is_refused_unless_overwrite(tmp_path, capsys):
    out = str(tmp_path / "out")
    generate_data.main(["physics", "--out", out] + SMALL)
    with pytest.raises(Exception, match="not empty.*--overwrite"):
        generate_data.main(["physics", "--out", out] + SMALL)
    generate_data.main(["physics", "--out", out, "--overwrite"] + SMALL)
    assert "physics: wrote 252 records" in capsys.readouterr().out


def test_difficulty_outside_zero_to_one_is_a_user_error():
    with pytest.raises(Exception, match="--difficulty 1.5"):
        physics_dataset.generate(physics_dataset.DEFAULT_SIZES, 0, 1.5)


def test_a_train_set_too_small_for_test_seen_names_the_missing_modes_and_the_way_out():
    sizes = {**physics_dataset.DEFAULT_SIZES, "train": 5}
    with pytest.raises(PhysloraError, match=r"--test-seen 420 asks for '\w+'.* cases, and no family of the --train 5 "
                                            r"scenarios can show them .* --train 14 or more .* or --test-seen 0"):
        physics_dataset.generate(sizes, 0, 0.2)
    assert len(physics_dataset.generate({**sizes, "test_seen": 0}, 0, 0.2)[0]["train"]) == 5
    assert len(physics_dataset.generate({**sizes, "train": 14}, 0, 0.2)[0]["test_seen"]) == 420


@pytest.fixture(scope="module")
def contrast_train():
    sizes = {"train": 280, "val": 28, "test_seen": 42, "test_unseen": 42}
    splits, card = physics_dataset.generate(sizes, 0, physics_dataset.DEFAULT_DIFFICULTY, contrast=True)
    assert "contrast_twins" in card
    return splits


def twin_pairs(records):
    """Neighbouring records of one family whose parameters differ in exactly one number."""
    return [(a, b) for a, b in zip(records, records[1:]) if a["meta"]["family"] == b["meta"]["family"]
            and len([k for k in a["meta"]["params"] if a["meta"]["params"][k] != b["meta"]["params"][k]]) == 1]


def test_contrast_twins_change_one_number_and_the_outcome_and_keep_the_words(contrast_train):
    pairs = twin_pairs(contrast_train["train"])
    assert len(pairs) >= 0.35 * len(contrast_train["train"])  # most scenarios are half of a pair
    for a, b in pairs:
        assert a["answer"]["mode"] != b["answer"]["mode"]
        assert a["meta"]["units"] == b["meta"]["units"] and a["meta"]["template"] == b["meta"]["template"]
    # The words differ in the number and the words grading it ("a soft 2 N", "brimming"), rarely in more.
    changed = [sum(op[0] in "+-" for op in difflib.ndiff(a["prompt"].split(), b["prompt"].split())) for a, b in pairs]
    assert sum(n <= 6 for n in changed) >= 0.8 * len(pairs)


def test_contrast_twins_keep_exact_counts_disjoint_families_and_true_reasoning(contrast_train):
    train = contrast_train["train"]
    counts = Counter(r["answer"]["mode"] for r in train)
    assert counts["none"] == 140 and {counts[mode] for mode in rules.MODES} == {20}
    unseen = {r["meta"]["family"] for r in contrast_train["test_unseen"]}
    assert not {r["meta"]["family"] for r in train} & unseen
    for record in train:
        check_reasoning_numbers(record)


def test_only_contrast_makes_twins(tmp_path):
    generate_data.main(["physics", "--out", str(tmp_path / "plain")] + SMALL)
    generate_data.main(["physics", "--out", str(tmp_path / "twins"), "--contrast"] + SMALL)
    plain, twins = files(tmp_path / "plain"), files(tmp_path / "twins")
    assert plain["train.jsonl"] != twins["train.jsonl"]
    assert not twin_pairs(load_records(str(tmp_path / "plain"), "train"))
