"""From answered records to the numbers in results.json: scores, pass@k, judge, paired comparisons.

Every system (the base model, the model with the adapter, a larger baseline) answers exactly
the same records. Each record is scored on its first output (greedy by default); with several
samples per record, pass@k = 1 − C(n−c, k)/C(n, k) is averaged over records (with n and a 95%
interval, as the judge's score; evaluation/stats.py). Metrics are
grouped by split (test_seen, test_unseen, ...) and task, and every group compares the first
system with each other one on the same examples with the exact McNemar test.
"""
import hashlib
import json
import os
import random
import re
from collections import defaultdict

from common.chat_api import chat
from common.errors import PhysloraError
from data.schema import load_records, split_files
from evaluation.generation import resume_outputs
from evaluation.metrics import instruction_reference, score_record, summarize
from evaluation.stats import compare_paired, mean_interval, pass_at_k

JUDGE_SYSTEM = ("You grade answers. Compare the ANSWER with the REFERENCE for the QUESTION and rate its "
                "correctness and helpfulness from 1 (wrong) to 10 (as good as the reference). "
                'Reply with JSON: {"score": <1-10>, "reason": "<one sentence>"}.')
# The number after "score", else the reply's first number that is not the scale ("on a scale of 1 to 10, I
# give it 8", "out of 10, a 3"), kept when in 1-10: invalid JSON cannot crash a run, and "-3" or "0.5" are no
# score rather than a 3 or a 5.
_JUDGE_SCORE = re.compile(r'score"?\s*[:=]\s*"?(-?\d+(?:\.\d+)?)', re.IGNORECASE)
_ANY_SCORE = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)")
_SCALE = re.compile(r"\b[01]\s*(?:-|–|to)\s*10\b|(?:\bout\s+of|/)\s*10\b", re.IGNORECASE)
PASS_AT = (1, 5, 10)


def load_eval_records(data: str, split_pattern: str, limit, seed: int) -> list:
    """Records to evaluate: the split files matching `split_pattern` (a prefix ending in *, or a name), or, from
    one file, the records whose split field matches it (those without one are all kept); at most `limit` per
    split (a seeded sample kept in file order); every record checked up front."""
    def matches(split: str) -> bool:
        return split.startswith(split_pattern[:-1]) if split_pattern.endswith("*") else split == split_pattern

    paths = split_files(data)
    if os.path.isdir(data):
        paths = [path for path in paths if matches(os.path.basename(path)[:-6])]
        if not paths:
            raise PhysloraError(f"{data}: no split file matches --split {split_pattern}; "
                                f"there are {', '.join(os.path.basename(p) for p in split_files(data))}")
    records = []
    for path in paths:
        file_records = load_records(path)
        if not file_records:
            raise PhysloraError(f"{path}: no records; regenerate the data or pass another --data")
        stem = os.path.basename(path)[:-6]
        for number, record in enumerate(file_records):
            record.setdefault("id", f"{stem}-{number:05d}")
        if os.path.isfile(data):
            present = sorted({r["split"] for r in file_records if "split" in r})
            file_records = [r for r in file_records if "split" not in r or matches(r["split"])]
            if not file_records:
                raise PhysloraError(f"{path}: no record's split matches --split {split_pattern}; its records' splits "
                                    f"are {', '.join(present)}")
        by_split = {}
        for record in file_records:
            by_split.setdefault(record.setdefault("split", stem), []).append(record)
        for split_records in by_split.values():
            if limit is not None and len(split_records) > limit:
                keep = set(random.Random(seed).sample(range(len(split_records)), limit))
                split_records = [r for i, r in enumerate(split_records) if i in keep]
            records += split_records
    seen = set()
    for record in records:
        if record["id"] in seen:
            raise PhysloraError(f"{data}: id {record['id']!r} appears twice; ids must be unique")
        seen.add(record["id"])
        score_record(record, "")  # checks task and answer fields now, not after an hour of generation
    return records


def fingerprint(path: str, names: tuple = ()) -> str:
    """sha256 of a file, or of a folder's files `names` (default: its weights and configs), name and content,
    in name order."""
    digest = hashlib.sha256()
    if os.path.isfile(path):
        files = [path]
    else:
        names = names or [n for n in os.listdir(path) if n.endswith((".safetensors", ".json", ".gguf"))]
        files = sorted(os.path.join(path, n) for n in names)
    for name in files:
        digest.update(os.path.basename(name).encode())
        with open(name, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                digest.update(block)
    return digest.hexdigest()


def judge_score(reply: str):
    match = _JUDGE_SCORE.search(reply) or _ANY_SCORE.search(_SCALE.sub(" ", reply))
    if not match:
        return None
    score = float(match.group(1))
    return score if 1 <= score <= 10 else None


def judge_outputs(records: list, entries: dict, judge: dict, path: str) -> dict:
    """id -> judge score (1-10, None when the reply had none) for instruction records; cached in `path`."""
    done = resume_outputs(path)  # cuts a reply half-written when a run stopped, or the next one joins it
    api_key = os.environ.get(judge["key_env"], "")
    with open(path, "a", encoding="utf-8") as out:
        for record in records:
            if record["task"] != "instruction" or record["id"] in done:
                continue
            prompt = (f"QUESTION:\n{record['prompt']}\n\nREFERENCE:\n{instruction_reference(record)}\n\n"
                      f"ANSWER:\n{entries[record['id']]['outputs'][0]}")
            reply = chat(judge["url"], judge["model"], api_key, JUDGE_SYSTEM, prompt, judge["timeout"], "--judge-url")
            done[record["id"]] = {"id": record["id"], "score": judge_score(reply), "reply": reply}
            out.write(json.dumps(done[record["id"]]) + "\n")
            out.flush()
    return {key: value["score"] for key, value in done.items()}


def score_system(records: list, entries: dict, code_timeout_s: float, judged=None) -> list:
    """Per record: the score of its first output, plus pass@k over its samples and the judge's score."""
    scores = []
    for record in records:
        entry = entries[record["id"]]
        samples = [score_record(record, output, code_timeout_s) for output in entry["outputs"]]
        score = {**samples[0], "split": record["split"], "hit_limit": entry["hit_limit"][0]}
        if len(samples) > 1:
            correct = sum(s["correct"] for s in samples)
            score["pass_at"] = {k: pass_at_k(len(samples), correct, k) for k in PASS_AT if k <= len(samples)}
        if judged is not None and record["task"] == "instruction":
            score["judge_score"] = judged.get(record["id"])
        scores.append(score)
    return scores


def group_metrics(scores: list) -> dict:
    """split -> task -> the task's metrics, plus how many outputs hit the token budget, pass@k, judge."""
    by_split = defaultdict(list)
    for s in scores:
        by_split[s["split"]].append(s)
    metrics = {}
    for split, split_scores in sorted(by_split.items()):
        metrics[split] = summarize(split_scores)
        for task, entry in metrics[split].items():
            task_scores = [s for s in split_scores if s["task"] == task]
            entry["hit_limit"] = sum(s["hit_limit"] for s in task_scores)
            if "pass_at" in task_scores[0]:
                entry["pass_at"] = {k: mean_interval([s["pass_at"][k] for s in task_scores], 0, 1)
                                    for k in task_scores[0]["pass_at"]}
            judged = [s["judge_score"] for s in task_scores if s.get("judge_score") is not None]
            if "judge_score" in task_scores[0]:
                entry["judge"] = mean_interval(judged, 1, 10)
    return metrics


def paired_comparisons(base: list, other: list) -> dict:
    """split -> task -> exact McNemar comparisons of two systems' scores on the same examples."""
    if [s["id"] for s in base] != [s["id"] for s in other]:
        raise PhysloraError("paired comparison: the two systems were scored on different examples")
    comparisons = defaultdict(dict)
    for split, task in sorted({(s["split"], s["task"]) for s in base}):
        pairs = [(a, b) for a, b in zip(base, other) if (a["split"], a["task"]) == (split, task)]

        def compare(field, keep=lambda score: True):
            kept = [(a, b) for a, b in pairs if keep(a)]
            return vars(compare_paired({a["id"]: a[field] for a, _ in kept}, {b["id"]: b[field] for _, b in kept}))

        entry = {"accuracy": compare("correct")}
        if task == "physics_scenario":
            entry["binary_accuracy"] = compare("binary_correct")
            entry["mode_accuracy_on_failing"] = compare("correct", keep=lambda score: score["true_fails"])
        comparisons[split][task] = entry
    return dict(comparisons)
