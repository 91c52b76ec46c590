"""The record every generator writes and every trainer reads, plus the writer and the loader.

A data set is a folder of JSONL files, one record per line, one file per split
(`train.jsonl`, `val.jsonl`, `test*.jsonl`), and a `card.json` that says how it was made
and how many records of each label each split holds.

Record fields, always in this order:
  id      unique within the data set, e.g. "physics-train-00042"
  task    what kind of problem: physics_scenario, physics_numeric, physics_mcq,
          puzzle_arithmetic, puzzle_rpn, puzzle_brackets or instruction
  split   the file it lives in: train, val, test, test_seen, test_unseen
  prompt  the user message
  target  the assistant completion to train on
  answer  structured ground truth used for scoring (its shape depends on the task)
  meta    provenance: family or template, difficulty, parameters

Files are written byte-for-byte reproducibly: fixed key order, no timestamps, "\\n" line ends.
"""
import json
import os
from collections import Counter
from typing import Callable, Optional, TypedDict

from common.errors import PhysloraError

TASKS = ("physics_scenario", "physics_numeric", "physics_mcq",
         "puzzle_arithmetic", "puzzle_rpn", "puzzle_brackets", "instruction")
FIELDS = ("id", "task", "split", "prompt", "target", "answer", "meta")
REQUIRED_FIELDS = ("task", "prompt", "target")
HISTORY_ROLES = ("user", "assistant")  # the turns of meta.history, an imported chat's conversation before the prompt
CARD = "card.json"


class Record(TypedDict):
    id: str
    task: str
    split: str
    prompt: str
    target: str
    answer: object
    meta: dict


def make_record(id: str, task: str, split: str, prompt: str, target: str, answer, meta: dict) -> Record:
    return Record(id=id, task=task, split=split, prompt=prompt, target=target, answer=answer, meta=meta)


def is_our_file(name: str) -> bool:
    """The files a generator owns inside its output folder (and may replace with --overwrite)."""
    return name in (CARD, "train.jsonl", "val.jsonl") or (name.startswith("test") and name.endswith(".jsonl"))


def check_output_dir(out: str, overwrite: bool) -> None:
    """Refuse a file, or a non-empty folder unless `overwrite`. What it holds stays until `write_dataset`
    replaces it, so a generator that fails on the way (a malformed import) leaves the old data set whole."""
    if os.path.isfile(out):
        raise PhysloraError(f"{out}: is a file; pass a folder to --out")
    existing = sorted(os.listdir(out)) if os.path.isdir(out) else []
    if existing and not overwrite:
        raise PhysloraError(f"{out}: folder is not empty; choose another --out or pass --overwrite")


def write_dataset(out: str, splits: dict, card: dict,
                  label_of: Callable[[dict], str] = lambda record: record["task"]) -> dict:
    """Write `{split}.jsonl` for each split and `card.json`; return the card with counts added.

    `splits` maps split name to its records in order; `label_of` names the label the summary counts.
    The generator's own files from before (--overwrite) are removed first, anything else in `out` is kept.
    """
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if is_our_file(name):
            os.remove(os.path.join(out, name))
    counts = {}
    for split, records in splits.items():
        with open(os.path.join(out, f"{split}.jsonl"), "w", encoding="utf-8", newline="\n") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        counts[split] = {"total": len(records), "labels": dict(sorted(Counter(map(label_of, records)).items()))}
    card = {**card, "counts": counts}
    with open(os.path.join(out, CARD), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(card, ensure_ascii=False, indent=1) + "\n")
    return card


def summary_lines(card: dict) -> list:
    """Human-readable counts per split and label, as printed at the end of a generator run."""
    lines = []
    for split, count in card["counts"].items():
        labels = ", ".join(f"{label} {n}" for label, n in count["labels"].items())
        lines.append(f"  {split:<12} {count['total']:>6}  ({labels})")
    return lines


def split_files(path_or_dir: str, split: Optional[str] = None) -> list:
    """The JSONL files that `load_records` reads for this path and split, in a stable order."""
    if os.path.isdir(path_or_dir):
        if split is not None:
            path = os.path.join(path_or_dir, f"{split}.jsonl")
            if not os.path.isfile(path):
                present = sorted(n[:-6] for n in os.listdir(path_or_dir) if n.endswith(".jsonl"))
                raise PhysloraError(f"{path}: no such split file; splits here: {', '.join(present) or 'none'}")
            return [path]
        files = sorted(os.path.join(path_or_dir, n) for n in os.listdir(path_or_dir) if n.endswith(".jsonl"))
        if not files:
            raise PhysloraError(f"{path_or_dir}: no .jsonl files; run generate_data.py first")
        return files
    if not os.path.isfile(path_or_dir):
        raise PhysloraError(f"{path_or_dir}: no such file or folder; pass a data folder or a .jsonl file")
    return [path_or_dir]


def read_text(path: str) -> str:
    """A data file's text. A UTF-8 byte-order mark is dropped; other bytes than UTF-8 are refused naming
    the line. (Split it on "\\n" alone: str.splitlines would also cut at a U+2028 inside a JSON string.)"""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise PhysloraError(f"{path}:{line}: not UTF-8 text (byte "
                            f"{data[err.start]:#04x}); save it as UTF-8, or export a binary format such as "
                            "parquet to JSON lines first") from None


def check_fields(record: dict, where: str) -> None:
    """The fields every reader relies on: the required strings, and id, split and meta when present (meta's
    system message and earlier turns, an imported chat's context, go into the chat template)."""
    for name in REQUIRED_FIELDS:
        if not isinstance(record.get(name), str):
            raise PhysloraError(f"{where}: field {name!r} is missing or not a string; "
                                f"every record needs {', '.join(REQUIRED_FIELDS)}")
    for name, kind in (("id", str), ("split", str), ("meta", dict)):
        if name in record and not isinstance(record[name], kind):
            raise PhysloraError(f"{where}: field {name!r} must be {'a string' if kind is str else 'an object'}, "
                                f"not {type(record[name]).__name__}")
    meta = record.get("meta", {})
    if not isinstance(meta.get("system", ""), str):
        raise PhysloraError(f"{where}: meta.system must be a string")
    history = meta.get("history", [])
    if not isinstance(history, list) or not all(
            isinstance(turn, dict) and turn.get("role") in HISTORY_ROLES and isinstance(turn.get("content"), str)
            for turn in history):
        raise PhysloraError(f"{where}: meta.history must be a list of {{\"role\": \"user\" or \"assistant\", "
                            f"\"content\": text}} turns, the conversation before the prompt")


def load_records(path_or_dir: str, split: Optional[str] = None) -> list:
    """Read records from a data folder (`split`.jsonl, or every split file) or one .jsonl file
    (then `split` keeps the records whose split field matches).

    Every line must be a JSON object with string `task`, `prompt` and `target` fields;
    anything else raises a PhysloraError that names file:line.
    """
    records = []
    for path in split_files(path_or_dir, split):
        for number, line in enumerate(read_text(path).split("\n"), start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise PhysloraError(f"{where}: malformed JSON ({err.msg}); fix or remove the line") from None
            if not isinstance(record, dict):
                raise PhysloraError(f"{where}: expected a JSON object, got {type(record).__name__}")
            check_fields(record, where)
            records.append(record)
    if split is not None and os.path.isfile(path_or_dir):
        records = [record for record in records if record.get("split") == split]
    return records
