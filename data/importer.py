"""Bring your own instruction data: normalise it into the record schema, clean it, split it.

Accepted records (JSON lines, or one JSON array), recognised by their keys:
  alpaca       {"instruction", "input" (optional), "output"}   prompt = instruction + blank line + input
  qa           {"question", "answer"}
  completion   {"prompt", "completion"}
  chat         {"messages": [{"role", "content"}, ...]}        the last message is the assistant's
               target and the one before it the user's prompt; earlier ones go to meta.history
               (a system message to meta.system), and training and evaluation put them back in
               the chat template before the prompt (data.batching.context_of).

Outputs that are JSON objects, or strings holding one ('{"explanation": ..., "answer": ...}'), are
rewritten in the plain-text form the rest of the data set uses ("Explanation: ...\\nAnswer: ..."):
the label order is the most common sequence of "Label: " line starts among the plain outputs.
A folder, or a hub dataset, is imported file by file (.json and .jsonl, sorted by name). Exact
duplicates are dropped. A record's split is a seeded hash of its prompt, so records that
share a prompt share a split and the split of a record never depends on the others.
"""
import hashlib
import json
import os
import re
from collections import Counter

from common.errors import PhysloraError
from data.schema import HISTORY_ROLES, make_record, read_text

FORMATS = {"alpaca": ("instruction", "output"), "qa": ("question", "answer"),
           "completion": ("prompt", "completion"), "chat": ("messages",)}
HUB_METADATA = {"dataset_infos.json", "dataset_info.json", "dataset_dict.json", "state.json"}
LABEL_LINE = re.compile(r"^([A-Z][A-Za-z _]{0,30}):\s")


def hub_files(dataset_id: str) -> list:
    """Download a hub dataset's JSON/JSONL files with huggingface-hub; local paths, sorted."""
    from huggingface_hub import hf_hub_download, list_repo_files
    try:
        files = sorted(list_repo_files(dataset_id, repo_type="dataset"))
        wanted = [f for f in files if f.endswith((".json", ".jsonl")) and os.path.basename(f) not in HUB_METADATA]
        if not wanted:
            if any(f.endswith(".parquet") for f in files):
                raise PhysloraError(
                    f"{dataset_id}: the hub dataset has only parquet files; convert one to JSONL elsewhere, e.g. "
                    f"python -c \"import pandas as p; p.read_parquet('F.parquet').to_json('F.jsonl', "
                    f"orient='records', lines=True)\", then run: generate_data.py import F.jsonl")
            raise PhysloraError(f"{dataset_id}: the hub dataset has no .json or .jsonl files to import")
        return [hf_hub_download(dataset_id, name, repo_type="dataset") for name in wanted]
    except PhysloraError:
        raise
    except Exception as err:  # network, authentication, missing repo: all the user's to fix
        raise PhysloraError(f"{dataset_id}: cannot fetch from the Hugging Face hub ({type(err).__name__}: "
                            f"{str(err).splitlines()[0] if str(err) else 'no detail'}); check the id and your access")


def source_files(source: str) -> list:
    if os.path.isfile(source):
        return [source]
    if os.path.isdir(source):  # a folder of shards, like a hub dataset's
        names = sorted(name for name in os.listdir(source)
                       if name.endswith((".json", ".jsonl")) and name not in HUB_METADATA)
        if not names:
            raise PhysloraError(f"{source}: a folder with no .json or .jsonl files to import")
        return [os.path.join(source, name) for name in names]
    if re.fullmatch(r"[\w.-]+/[\w.-]+", source) and not source.endswith((".json", ".jsonl")):
        return hub_files(source)
    raise PhysloraError(f"{source}: no such file, and not a hub dataset id (owner/name)")


def json_rows(path: str):
    """(line, parsed object or JSONDecodeError) for a JSON-lines file or a JSON array file."""
    text = read_text(path)
    if text.lstrip().startswith("["):
        yield from array_rows(path, text)
        return
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as err:
                yield number, err


def array_rows(path: str, text: str):
    """The elements of a JSON array with the line each starts on; a syntax error stops the file."""
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    while True:
        position = len(text) - len(text[position:].lstrip())
        if text.startswith("]", position):
            return
        try:
            item, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as err:
            raise PhysloraError(f"{path}:{err.lineno}: invalid JSON inside the array ({err.msg}); fix it "
                                f"(--skip-invalid cannot resynchronise inside a JSON array)") from None
        yield text.count("\n", 0, position) + 1, item
        position = len(text) - len(text[end:].lstrip())
        if text.startswith(",", position):
            position += 1
        elif not text.startswith("]", position):
            raise PhysloraError(f"{path}:{text.count(chr(10), 0, position) + 1}: expected ',' or ']' in the JSON array")


def as_text(value, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"field {field!r} is {type(value).__name__}, expected text")
    return str(value)


def detect_format(row: dict) -> str:
    for name, keys in FORMATS.items():
        if all(key in row for key in keys):
            return name
    raise ValueError(f"unrecognised record (keys: {', '.join(sorted(row)) or 'none'}); expected "
                     f"instruction/output, question/answer, prompt/completion or messages")


def normalise(row) -> dict:
    """{format, prompt, output (text or a JSON object), meta}; ValueError says what is wrong."""
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    kind = detect_format(row)
    meta = {}
    if kind == "chat":
        messages = row["messages"]
        if not isinstance(messages, list) or len(messages) < 2 or not all(
                isinstance(m, dict) and "role" in m and "content" in m for m in messages):
            raise ValueError("messages must be a list of {role, content} objects, at least a user and an assistant")
        *history, user, assistant = messages
        if user["role"] != "user" or assistant["role"] != "assistant":
            raise ValueError("messages must end with a user message and the assistant's reply")
        if history and history[0]["role"] == "system":
            meta["system"] = as_text(history.pop(0)["content"], "system")
        if any(m["role"] not in HISTORY_ROLES for m in history):
            raise ValueError("messages before the last two must be user and assistant turns (a system message "
                             "may come first)")
        if history:
            meta["history"] = [{"role": m["role"], "content": as_text(m["content"], "content")} for m in history]
        prompt, output, output_key = as_text(user["content"], "content"), assistant["content"], "content"
    else:
        prompt_key, output_key = FORMATS[kind]
        prompt, output = as_text(row[prompt_key], prompt_key), row[output_key]
        extra = row.get("input") if kind == "alpaca" else None
        if extra is not None and as_text(extra, "input").strip():
            prompt = f"{prompt}\n\n{as_text(extra, 'input')}"
    if not isinstance(output, dict):
        output = as_text(output, output_key)
    if not prompt.strip() or not output or (isinstance(output, str) and not output.strip()):
        raise ValueError("empty prompt or output")
    return {"format": kind, "prompt": prompt, "output": output, "meta": meta}


def stringified_object(output):
    """The JSON object an output holds (itself, or parsed from a string), or None for plain text."""
    if isinstance(output, dict):
        return output
    text = output.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) and parsed else None


def plain_text_form(outputs: list) -> list:
    """The most common sequence of "Label:" line starts among plain-text outputs ([] if none)."""
    forms = Counter()
    for output in outputs:
        labels = tuple(m.group(1) for line in output.splitlines() if (m := LABEL_LINE.match(line)))
        if labels:
            forms[labels] += 1
    return list(forms.most_common(1)[0][0]) if forms else []


def label_key(label: str) -> str:
    return label.lower().replace("_", " ").strip()


def to_plain_text(obj: dict, form: list) -> str:
    """'Label: value' lines, in the data set's label order first, then the object's own order."""
    order = [label_key(label) for label in form]

    def rank(key: str) -> int:
        return order.index(label_key(key)) if label_key(key) in order else len(order)

    lines = []
    for key in sorted(obj, key=rank):  # a stable sort keeps the object's order among unknown keys
        label = form[rank(key)] if rank(key) < len(form) else key.replace("_", " ").strip().capitalize()
        value = obj[key]
        lines.append(f"{label}: {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}")
    return "\n".join(lines)


def split_of(prompt: str, seed: int, val_fraction: float, test_fraction: float) -> str:
    point = int.from_bytes(hashlib.sha256(f"{seed}:{prompt}".encode()).digest()[:8], "big") / 2 ** 64
    return "test" if point < test_fraction else "val" if point < test_fraction + val_fraction else "train"


def read_all(files: list, skip_invalid: bool) -> tuple:
    """Normalised rows with their origin, and the reasons of the rows skipped as invalid."""
    rows, invalid = [], []
    for path in files:
        for line, parsed in json_rows(path):
            try:
                if isinstance(parsed, json.JSONDecodeError):
                    raise ValueError(f"invalid JSON ({parsed.msg})")
                row = normalise(parsed)
            except ValueError as err:
                message = f"{path}:{line}: {err}"
                if not skip_invalid:
                    raise PhysloraError(f"{message}; fix the record or pass --skip-invalid") from None
                invalid.append(message)
                continue
            rows.append({**row, "source": f"{os.path.basename(path)}:{line}"})
    return rows, invalid


def import_file(source: str, seed: int, val_fraction: float, test_fraction: float, skip_invalid: bool) -> tuple:
    if not (0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1):
        raise PhysloraError("--val-fraction and --test-fraction must be ≥ 0 and add up to less than 1")
    files = source_files(source)
    rows, invalid = read_all(files, skip_invalid)
    if not rows:
        raise PhysloraError(f"{source}: no valid records to import")
    form = plain_text_form([row["output"] for row in rows if stringified_object(row["output"]) is None])
    splits = {"train": [], "val": [], "test": []}
    seen, converted, duplicates, formats = set(), 0, 0, Counter()
    for row in rows:
        obj = stringified_object(row["output"])
        target = row["output"] if obj is None else to_plain_text(obj, form)
        key = json.dumps([row["prompt"], target, row["meta"]], sort_keys=True, ensure_ascii=False)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        converted += obj is not None
        formats[row["format"]] += 1
        split = split_of(row["prompt"], seed, val_fraction, test_fraction)
        meta = {"family": row["format"], "source": row["source"], "converted_from_json": obj is not None, **row["meta"]}
        splits[split].append(make_record(f"import-{split}-{len(splits[split]):05d}", "instruction", split,
                                         row["prompt"], target, {"reference": target}, meta))
    card = {"kind": "import", "source": source, "files": [os.path.basename(f) for f in files], "seed": seed,
            "val_fraction": val_fraction, "test_fraction": test_fraction, "plain_text_form": form,
            "import": {"read": len(rows) + len(invalid), "kept": len(seen), "json_outputs_converted": converted,
                       "duplicates_dropped": duplicates, "invalid_skipped": len(invalid),
                       "formats": dict(sorted(formats.items()))},
            "invalid_examples": invalid[:20]}
    return splits, card


def label_of(record: dict) -> str:
    return record["meta"]["family"]
