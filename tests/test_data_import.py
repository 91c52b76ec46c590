"""Importing users' data: every input format, stringified-JSON outputs, duplicates, broken lines, the hub."""
import json
import os

import pytest

import generate_data
from common.errors import PhysloraError
from data import importer
from data.schema import load_records

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "data")


def fixture(name):
    return os.path.join(FIXTURES, name)


def imported(name, skip_invalid=False, seed=0):
    splits, card = importer.import_file(fixture(name), seed, 0.0, 0.0, skip_invalid)
    return splits["train"], card


def test_alpaca_instruction_and_input_become_the_prompt():
    records, _ = imported("alpaca.json")
    assert records[1]["prompt"] == "Which failure comes first?\n\nA mug, brimming, carried at 3 m/s^2."
    assert records[0]["prompt"] == "Why does a tall box tip before it slides?"  # empty input adds nothing
    assert all(r["task"] == "instruction" and r["meta"]["family"] == "alpaca" for r in records)


def test_question_answer_pairs_are_imported_and_numbers_become_text():
    records, _ = imported("qa.jsonl")
    assert [(r["prompt"], r["target"]) for r in records][1] == ("What is 2 + 2?", "4")


def test_prompt_completion_pairs_are_imported():
    records, _ = imported("completion.jsonl")
    assert [(r["prompt"], r["target"]) for r in records] == [("Complete: F = m", "a"), ("Complete: E = m", "c²")]


def test_chat_keeps_the_last_exchange_and_moves_system_and_history_to_meta():
    records, _ = imported("chat.jsonl")
    assert records[0]["prompt"] == "Define momentum."
    assert records[0]["target"] == "Momentum is mass times velocity, p = m·v."
    assert records[0]["meta"]["system"] == "You are a physics tutor."
    assert records[1]["prompt"] == "Define work."
    assert records[1]["meta"]["history"] == [{"role": "user", "content": "Hi"},
                                             {"role": "assistant", "content": "Hello!"}]


def test_a_chat_whose_earlier_turns_are_not_user_or_assistant_is_refused(tmp_path):
    messages = [{"role": "user", "content": "2+2?"}, {"role": "tool", "content": "4"},
                {"role": "user", "content": "So?"}, {"role": "assistant", "content": "4"}]
    (tmp_path / "chat.jsonl").write_text(json.dumps({"messages": messages}) + "\n")
    with pytest.raises(PhysloraError, match="chat.jsonl:1: messages before the last two must be user and assistant"):
        importer.import_file(str(tmp_path / "chat.jsonl"), 0, 0.0, 0.0, False)


def test_stringified_json_outputs_take_the_data_sets_plain_text_form_and_are_counted():
    records, card = imported("stringified.jsonl")
    targets = {r["prompt"]: r["target"] for r in records}
    assert targets["Will the egg break from 50 cm?"] == \
        "Explanation: It lands at 3.13 m/s, faster than 1 m/s.\nAnswer: yes"
    assert targets["Will the cup crush at 20 N?"] == \
        "Explanation: 20 N exceeds the 10 N it withstands.\nAnswer: yes\nConfidence: 0.9"
    assert targets["Will the ball roll off?"] == "Explanation: It rolls 1.6 m, past the edge.\nAnswer: yes"
    assert targets["Is this JSON-looking text plain?"] == "{not json at all}"
    assert card["plain_text_form"] == ["Explanation", "Answer"]
    assert card["import"]["json_outputs_converted"] == 3


def test_exact_duplicates_are_dropped_and_counted():
    records, card = imported("stringified.jsonl")
    assert card["import"]["duplicates_dropped"] == 1 and card["import"]["kept"] == len(records) == 6
    _, card = imported("alpaca.json")
    assert card["import"]["duplicates_dropped"] == 1


def test_a_broken_line_stops_the_import_naming_file_and_line():
    with pytest.raises(PhysloraError, match=r"broken\.jsonl:2: invalid JSON .*--skip-invalid"):
        imported("broken.jsonl")


def test_skip_invalid_skips_and_counts_every_bad_record_with_its_reason():
    records, card = imported("broken.jsonl", skip_invalid=True)
    assert [r["prompt"] for r in records] == ["First, a good record.", "Fourth is good again."]
    assert card["import"]["invalid_skipped"] == 3
    reasons = card["invalid_examples"]
    assert reasons[0].endswith("broken.jsonl:2: invalid JSON (Expecting ',' delimiter)")
    assert "broken.jsonl:3: unrecognised record (keys: title)" in reasons[1]
    assert reasons[2].endswith("broken.jsonl:5: empty prompt or output")


def test_records_in_a_json_array_are_located_by_line(tmp_path):
    path = tmp_path / "array.json"
    path.write_text('[\n  {"prompt": "a", "completion": "b"},\n  {"prompt": "c"}\n]\n')
    with pytest.raises(PhysloraError, match=r"array\.json:3: unrecognised record"):
        importer.import_file(str(path), 0, 0.0, 0.0, False)


def test_splits_are_reproducible_and_follow_the_prompt(tmp_path):
    path = tmp_path / "many.jsonl"
    rows = [{"question": f"q{i % 150}", "answer": f"a{i}"} for i in range(300)]
    path.write_text("\n".join(json.dumps(row) for row in rows))
    first, _ = importer.import_file(str(path), 1, 0.1, 0.2, False)
    again, _ = importer.import_file(str(path), 1, 0.1, 0.2, False)
    other, _ = importer.import_file(str(path), 2, 0.1, 0.2, False)
    assert first == again and first != other
    prompts = {split: {r["prompt"] for r in records} for split, records in first.items()}
    assert not prompts["train"] & prompts["test"] and not prompts["train"] & prompts["val"]
    assert not prompts["val"] & prompts["test"]
    assert 30 <= len(first["test"]) <= 90 and len(first["val"]) >= 10


def test_the_cli_writes_the_splits_and_reports_the_counts(tmp_path, capsys):
    out = str(tmp_path / "out")
    generate_data.main(["import", fixture("stringified.jsonl"), "--out", out, "--val-fraction", "0",
                        "--test-fraction", "0"])
    printed = capsys.readouterr().out
    assert "json_outputs_converted 3" in printed and "duplicates_dropped 1" in printed
    assert len(load_records(out, "train")) == 6


def test_a_hub_dataset_with_only_parquet_files_gets_a_conversion_hint(monkeypatch):
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "list_repo_files",
                        lambda repo, repo_type: ["README.md", "data/train-00000.parquet"])
    with pytest.raises(PhysloraError, match=r"someone/physics: .*only parquet.*to_json\('F.jsonl'.*import F.jsonl"):
        importer.import_file("someone/physics", 0, 0.0, 0.0, False)


def test_a_hub_dataset_with_json_files_is_downloaded_then_imported(monkeypatch):
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "list_repo_files",
                        lambda repo, repo_type: ["dataset_infos.json", "qa.jsonl", "data.parquet"])
    fetched = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download",
                        lambda repo, name, repo_type: fetched.append((repo, name, repo_type)) or fixture(name))
    splits, card = importer.import_file("someone/physics", 0, 0.0, 0.0, False)
    assert fetched == [("someone/physics", "qa.jsonl", "dataset")]
    assert len(splits["train"]) == 2 and card["files"] == ["qa.jsonl"]


def test_a_missing_file_that_is_not_a_hub_id_is_a_user_error():
    with pytest.raises(PhysloraError, match="no_such.jsonl: no such file"):
        importer.import_file("no_such.jsonl", 0, 0.0, 0.0, False)


def test_a_folder_is_imported_file_by_file_without_asking_the_hub(tmp_path, monkeypatch):
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "list_repo_files", lambda *a, **k: pytest.fail("asked the hub"))
    for name in ("qa.jsonl", "completion.jsonl"):
        (tmp_path / name).write_text(open(fixture(name)).read())
    (tmp_path / "notes.txt").write_text("not data")
    alone = {name: importer.import_file(fixture(name), 0, 0.0, 0.0, False)[0]["train"]
             for name in ("completion.jsonl", "qa.jsonl")}
    splits, card = importer.import_file(str(tmp_path), 0, 0.0, 0.0, False)
    assert card["files"] == ["completion.jsonl", "qa.jsonl"]
    assert [r["prompt"] for r in splits["train"]] == [r["prompt"] for name in card["files"] for r in alone[name]]


def test_a_folder_without_json_files_is_a_user_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not data")
    with pytest.raises(PhysloraError, match="a folder with no .json or .jsonl files"):
        importer.import_file(str(tmp_path), 0, 0.0, 0.0, False)


def test_a_file_that_is_not_utf8_is_refused_naming_its_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"question": "ok?", "answer": "y"}\n{"question": "caf\xe9?", "answer": "y"}\n')
    with pytest.raises(PhysloraError, match=r"latin1\.jsonl:2: not UTF-8 text \(byte 0xe9\)"):
        importer.import_file(str(path), 0, 0.0, 0.0, False)


def test_a_byte_order_mark_is_not_part_of_the_first_record(tmp_path):
    for name, text in (("lines.jsonl", '{"question": "q?", "answer": "a"}\n'),
                       ("array.json", '[{"question": "q?", "answer": "a"}]')):
        path = tmp_path / name
        path.write_bytes("\ufeff".encode() + text.encode())
        splits, _ = importer.import_file(str(path), 0, 0.0, 0.0, False)
        assert [r["prompt"] for r in splits["train"]] == ["q?"]


def test_a_line_separator_inside_a_string_does_not_split_the_record(tmp_path):
    path = tmp_path / "unicode.jsonl"
    path.write_text(json.dumps({"question": "one\u2028two?", "answer": "a"}, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    splits, _ = importer.import_file(str(path), 0, 0.0, 0.0, False)
    assert [r["prompt"] for r in splits["train"]] == ["one\u2028two?"]
