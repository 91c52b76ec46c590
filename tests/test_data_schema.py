"""The record schema: deterministic writing, a loader with file:line errors, careful output folders."""
import argparse
import json
import re
import os

import pytest

import generate_data
from common.errors import PhysloraError
from data.schema import FIELDS, check_output_dir, load_records, make_record, write_dataset


def record(i, split="train"):
    return make_record(f"r{i}", "instruction", split, f"prompt {i}", f"target {i}", {"reference": i}, {"family": "x"})


def test_records_keep_the_schema_field_order():
    assert tuple(record(0)) == FIELDS


def test_written_splits_load_back_per_split_or_all_together(tmp_path):
    write_dataset(str(tmp_path), {"train": [record(0), record(1)], "test": [record(2, "test")]}, {"kind": "t"})
    assert [r["id"] for r in load_records(str(tmp_path), "train")] == ["r0", "r1"]
    assert [r["id"] for r in load_records(str(tmp_path))] == ["r2", "r0", "r1"]  # files in name order
    assert [r["id"] for r in load_records(str(tmp_path / "test.jsonl"))] == ["r2"]
    assert load_records(str(tmp_path / "test.jsonl"), "train") == []


def test_the_card_counts_records_per_split_and_label(tmp_path):
    card = write_dataset(str(tmp_path), {"train": [record(0), record(1)]}, {"kind": "t"}, lambda r: r["meta"]["family"])
    assert card["counts"] == {"train": {"total": 2, "labels": {"x": 2}}}
    assert json.load(open(tmp_path / "card.json")) == card


def test_malformed_json_is_reported_with_file_and_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(record(0)) + "\n{not json\n")
    with pytest.raises(PhysloraError, match=r"train\.jsonl:2: malformed JSON"):
        load_records(str(path))


@pytest.mark.parametrize("missing", ["prompt", "target", "task"])
def test_a_record_without_a_required_field_is_reported_with_file_line_and_field(tmp_path, missing):
    broken = dict(record(1))
    del broken[missing]
    path = tmp_path / "val.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (record(0), broken)) + "\n")
    with pytest.raises(PhysloraError, match=rf"val\.jsonl:2: field '{missing}' is missing"):
        load_records(str(tmp_path), "val")


def test_asking_for_a_missing_split_lists_the_splits_present(tmp_path):
    write_dataset(str(tmp_path), {"train": [record(0)], "val": [record(1, "val")]}, {})
    with pytest.raises(PhysloraError, match=r"test\.jsonl: no such split file; splits here: train, val"):
        load_records(str(tmp_path), "test")


def test_a_non_empty_output_folder_is_refused_without_overwrite(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(PhysloraError, match="not empty; choose another --out or pass --overwrite"):
        check_output_dir(str(tmp_path), overwrite=False)


def test_writing_a_data_set_replaces_only_the_generators_own_files(tmp_path):
    for name in ("train.jsonl", "test_old.jsonl", "card.json", "notes.txt"):
        (tmp_path / name).write_text("x")
    write_dataset(str(tmp_path), {"val": [record(1, "val")]}, {})
    assert sorted(os.listdir(tmp_path)) == ["card.json", "notes.txt", "val.jsonl"]


def test_an_overwrite_that_fails_before_writing_leaves_the_old_data_set_whole(tmp_path):
    out = tmp_path / "data"
    generate_data.main(["puzzles", "--out", str(out), "--train", "5", "--val", "2", "--test", "2"])
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"foo": 1}\n')
    with pytest.raises(PhysloraError, match="bad.jsonl:1"):
        generate_data.main(["import", str(bad), "--out", str(out), "--overwrite"])
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before


def test_the_cli_turns_user_errors_into_one_line_and_exit_code_2(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "train.jsonl").write_text("x")
    with pytest.raises(SystemExit) as exit_info:
        with generate_data.user_errors_are_one_line():
            generate_data.main(["puzzles", "--out", str(tmp_path / "taken")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("size", ["-1", "2.5", "ten"])
def test_a_split_size_that_is_not_a_count_of_records_is_refused(size, capsys):
    with pytest.raises(SystemExit) as stop:
        generate_data.build_parser().parse_args(["qa", "--val", size])
    assert stop.value.code == 2 and f"argument --val: '{size}' is not a number of records" in capsys.readouterr().err


def test_help_explains_every_flag_with_its_default(capsys):
    commands = next(a for a in generate_data.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) == {"physics", "qa", "puzzles", "import"}
    for command, parser in commands.choices.items():
        with pytest.raises(SystemExit):
            generate_data.main([command, "--help"])
        text = capsys.readouterr().out
        for action in parser._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            flag = action.option_strings[-1]
            assert flag in text and action.help, f"{command} {flag}: no help"
            if action.default not in (None, False, argparse.SUPPRESS):  # SUPPRESS: --help
                assert "default" in action.help, f"{command} {flag}: help does not give the default"


@pytest.mark.parametrize("command", [
    ["qa", "--train", "40", "--val", "10", "--test", "10"],
    ["puzzles", "--train", "30", "--val", "9", "--test", "9"],
    ["import", os.path.join(os.path.dirname(__file__), "fixtures", "data", "stringified.jsonl"),
     "--val-fraction", "0.3", "--test-fraction", "0.3"],
])
def test_every_generator_writes_byte_identical_files_for_a_seed_and_other_files_for_another(tmp_path, command):
    def written(name, seed):
        out = tmp_path / name
        generate_data.main(command + ["--out", str(out), "--seed", seed])
        return {f: (out / f).read_bytes() for f in sorted(os.listdir(out))}
    first = written("a", "0")
    assert written("b", "0") == first
    assert written("c", "3") != first


def test_a_data_file_that_is_not_utf8_is_refused_naming_its_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(json.dumps(record(0)).encode() + b"\n" + b'{"task": "x", "prompt": "caf\xe9"}\n')
    with pytest.raises(PhysloraError, match=r"train\.jsonl:2: not UTF-8 text"):
        load_records(str(path))


@pytest.mark.parametrize("field, value, message", [
    ("split", None, "field 'split' must be a string, not NoneType"),
    ("id", ["a"], "field 'id' must be a string, not list"),
    ("meta", "abc", "field 'meta' must be an object, not str"),
    ("meta", {"system": 3}, "meta.system must be a string"),
    ("meta", {"history": [{"role": "bot", "content": "x"}]}, "meta.history must be a list of"),
])
def test_a_field_of_the_wrong_type_is_refused_naming_file_and_line(tmp_path, field, value, message):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(record(0)) + "\n" + json.dumps({**record(1), field: value}) + "\n")
    with pytest.raises(PhysloraError, match=re.escape(f"train.jsonl:2: {message}")):
        load_records(str(path))
