"""improve.py: the self-improvement loop, driven by a stub sampler with known programs and by a tiny real model."""
import argparse
import copy
import json
import os

import pytest

import improve
from common.errors import PhysloraError
from common.runs import read_jsonl
from data.puzzles import generate
from evaluation import generation
from tiny_models import write_tiny_model

# Short right answers at difficulty 1 (the tiny model's byte-level tokens must fit train.py's --max-len).
RIGHT = {
    "puzzle_arithmetic": "def solve(e):\n    return int(eval(e))",
    "puzzle_rpn": "def solve(e):\n    s = []\n    for t in e.split():\n"
                  "        s.append(int(t) if t.isdigit() else int(eval(f'{s.pop(-2)}{t}{s.pop()}')))\n    return s[0]",
    "puzzle_brackets": "def solve(t):\n    while '()' in t or '[]' in t or '{}' in t:\n"
                       "        t = t.replace('()', '').replace('[]', '').replace('{}', '')\n    return not t",
}
WRONG = "def solve(x):\n    return 0"
CRASHING = "def solve(x):\n    return 1 // 0"
LOOPING = "def solve(x):\n    while True:\n        pass"


def block(program: str) -> str:
    return f"```python\n{program}\n```"


def samples_for(task: str) -> list:
    """Six samples: a wrong and a crashing one, then four right ones of which two are the same program."""
    right = RIGHT[task]
    return [block(WRONG), block(right), block(CRASHING), f"Here it is:\n{block(right)}\nIt uses a loop.",
            block(right + "  # second"), block(right + "  # third")]


class Stub:
    """A fake model: known samples; greedy answers right on arithmetic only (with `learns`: on every puzzle
    once it has an adapter)."""

    def __init__(self, learns=False):
        self.learns, self.sampled = learns, []

    def __call__(self, adapter, records, settings, path):
        if settings.samples > 1:
            self.sampled.append(records)
            return {r["id"]: {"outputs": samples_for(r["task"]), "hit_limit": [False] * 6} for r in records}
        right = RIGHT if self.learns and adapter else ("puzzle_arithmetic",)
        return {r["id"]: {"outputs": [block(RIGHT[r["task"]] if r["task"] in right else WRONG)],
                          "hit_limit": [False]} for r in records}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def settings(tiny, out, *extra) -> list:
    return ["--model", tiny, "--dtype", "fp32", "--device", "cpu", "--out", str(out), "--train", "6", "--val", "3",
            "--test", "3", "--samples", "6", "--code-timeout", "2", "--min-steps", "2", *extra]


@pytest.fixture(scope="module")
def one_iteration(tiny, tmp_path_factory):
    """One iteration driven by the stub (training is real, on the tiny model)."""
    stub = Stub()
    result = improve.main(settings(tiny, tmp_path_factory.mktemp("stub") / "run", "--iterations", "1"), answer=stub)
    with open(os.path.join(result["run"], "iter-1", "data", "train.jsonl")) as f:
        kept = [json.loads(line) for line in f]
    return result, stub, kept


def test_only_programs_that_pass_their_tests_reach_the_training_set(one_iteration):
    result, _, kept = one_iteration
    assert kept and all(r["target"].split("\n", 1)[1].startswith(RIGHT[r["task"]]) for r in kept)
    assert result["metrics"][1]["verdicts"] == {"passed": 24, "WrongAnswer": 6, "ZeroDivisionError": 6}


def test_duplicates_are_removed_and_at_most_the_cap_is_kept_per_problem(one_iteration):
    result, _, kept = one_iteration
    by_problem = {}
    for record in kept:
        by_problem.setdefault(record["meta"]["problem"], []).append(record["target"])
    assert len(by_problem) == 6 and result["metrics"][1]["kept"] == 12
    for problem, targets in by_problem.items():  # the first two distinct right programs, not the duplicate
        task = next(r["task"] for r in kept if r["meta"]["problem"] == problem)
        assert targets == [block(RIGHT[task]), block(RIGHT[task] + "  # second")]


def test_samples_come_from_train_problems_only(one_iteration):
    _, stub, _ = one_iteration
    assert [{r["split"] for r in records} for records in stub.sampled] == [{"train"}]


def test_pass_at_1_is_reported_per_split_puzzle_type_and_difficulty(one_iteration):
    result, _, _ = one_iteration
    metrics = result["metrics"][1]
    assert {split: r["rate"] for split, r in metrics["pass@1"].items()} == pytest.approx(
        {"train": 1 / 3, "val": 1 / 3, "test": 1 / 3})
    assert {task: r["rate"] for task, r in metrics["pass@1_by_task"]["test"].items()} == {
        "puzzle_arithmetic": 1.0, "puzzle_brackets": 0.0, "puzzle_rpn": 0.0}
    assert metrics["pass@1_by_difficulty"]["val"]["1"]["n"] == 3
    assert metrics["train_loss"] > 0 and metrics["adapter"] == os.path.join("iter-1", "train")


def test_the_sandbox_passes_right_programs_and_names_what_is_wrong_with_the_others():
    record = generate({"train": 1}, 0, (1, 1), 5)[0]["train"][0]
    outputs = [block(RIGHT[record["task"]]), block(WRONG), block(CRASHING), block(LOOPING), "no code at all"]
    checked = improve.check_programs([record], {record["id"]: {"outputs": outputs}}, timeout_s=1.0)
    assert [verdict for _, verdict in checked[0]] == ["passed", "WrongAnswer", "ZeroDivisionError", "Timeout", "NoCode"]
    assert [r["target"] for r in improve.select([record], checked, cap=5)] == [block(RIGHT[record["task"]])]


@pytest.mark.parametrize("restart", [False, True])
def test_an_iteration_continues_the_previous_adapter_unless_restart(tiny, tmp_path, restart):
    result = improve.main(settings(tiny, tmp_path / "run", "--iterations", "2", *["--restart"] * restart),
                          answer=Stub())

    def val_losses(i):
        with open(os.path.join(result["run"], f"iter-{i}", "train", "metrics.jsonl")) as f:
            return [m["val_loss"] for m in map(json.loads, f) if "val_loss" in m]

    start = val_losses(1)[0] if restart else val_losses(1)[-1]  # the base model, or iteration 1's adapter
    assert val_losses(2)[0] == pytest.approx(start, abs=1e-6)
    assert val_losses(1)[-1] != pytest.approx(val_losses(1)[0], abs=1e-3)  # so the two cases differ


def test_the_curriculum_raises_the_difficulty_once_train_pass_at_1_reaches_the_threshold(tiny, tmp_path):
    stub = Stub(learns=True)  # train pass@1: 1/3 for the base model, 100% after the first iteration
    result = improve.main(settings(tiny, tmp_path / "run", "--iterations", "2", "--difficulty", "1-2",
                                   "--curriculum", "0.9"), answer=stub)
    assert [sorted({r["meta"]["difficulty"] for r in records}) for records in stub.sampled] == [[1], [1, 2]]
    assert [m["level"] for m in result["metrics"]] == [1, 1, 2]


@pytest.mark.parametrize("history, flagged", [
    ([0.0, 0.02, 0.01, 0.20], True),    # two flat iterations, then +19 points
    ([0.0, 0.10, 0.12, 0.30], False),   # the first step was not flat
    ([0.0, 0.01, 0.15], False),         # only one flat iteration before the jump
    ([0.0, 0.01, 0.02, 0.14], False),   # a jump of 12 points is not enough
    ([4 / 20, 4 / 20, 4 / 20, 7 / 20], True),      # exactly 15 points (0.14999999999999997 as fractions)
    ([4 / 20, 5 / 20, 5 / 20, 9 / 20], False),     # a move of exactly 5 points is not flat
])
def test_grokking_is_a_jump_of_15_points_in_val_pass_at_1_after_two_flat_iterations(history, flagged):
    assert improve.grokking(history) is flagged


def test_sampling_at_temperature_0_is_refused(tiny, tmp_path):
    with pytest.raises(PhysloraError, match="--temperature 0.0: must be > 0"):
        improve.main(settings(tiny, tmp_path / "run", "--temperature", "0"), answer=Stub())


@pytest.mark.parametrize("flags, message", [(["--lr", "0"], "--lr 0.0 and --alpha 32.0: both must be > 0"),
                                           (["--alpha", "-1"], "--lr .* and --alpha -1.0: both must be > 0")])
def test_training_flags_are_refused_before_any_problem_is_made(tiny, tmp_path, flags, message):
    with pytest.raises(PhysloraError, match=f"training settings: {message}"):
        improve.main(settings(tiny, tmp_path / "run", *flags), answer=Stub())
    assert not (tmp_path / "run").exists()


class TinyModel:
    """The real sampler on the tiny model, plus one right program per train problem (a random model never
    writes one, and the loop needs something to train on). With `cut_at`, that iteration's sampling is
    interrupted after its first batch (one puzzle type: two problems) while the second batch's second line
    was being written."""

    def __init__(self, tiny, cut_at=None):
        self.tiny, self.real = tiny, None  # the sampler is made on first use: the object pickles to a process
        self.cut_at, self.paths = cut_at, []

    def __call__(self, adapter, records, settings, path):
        self.paths.append(os.path.relpath(path, os.path.dirname(os.path.dirname(path))))
        if self.real is None:
            self.real = improve.model_answerer(argparse.Namespace(model=self.tiny, dtype="fp32", device="cpu"))
        entries = self.real(adapter, records, settings, path)
        if self.cut_at and path.endswith(os.path.join(f"iter-{self.cut_at}", "samples.jsonl")):
            with open(path) as f:
                lines = f.readlines()
            with open(path, "w") as f:
                f.writelines(lines[:3] + [lines[3][:10]])
            raise KeyboardInterrupt
        if settings.samples > 1:
            for record in records:
                if record["id"] in entries:  # under torchrun, processes other than rank 0 hold their share only
                    entries[record["id"]]["outputs"].append(block(RIGHT[record["task"]]))
        return entries


def tiny_run(tiny, out, answer, *extra) -> dict:
    return improve.main(settings(tiny, out, "--iterations", "2", "--samples", "2", "--max-new-tokens", "8",
                                 "--batch-size", "8", *extra), answer=answer)


FIELDS = {"iteration", "level", "pass@1", "pass@1_by_task", "pass@1_by_difficulty", "samples", "verdicts", "kept",
          "kept_by_task", "cut_off", "greedy_cut_off", "train_loss", "val_loss", "adapter", "seconds", "grokking"}


def test_a_tiny_real_run_writes_one_metrics_line_per_iteration(tiny, tmp_path):
    run = tiny_run(tiny, tmp_path / "run", TinyModel(tiny))["run"]
    with open(os.path.join(run, "metrics.jsonl")) as f:
        lines = [json.loads(line) for line in f]
    assert [m["iteration"] for m in lines] == [0, 1, 2] and all(set(m) == FIELDS for m in lines)
    assert [m["kept"] for m in lines] == [0, 6, 6] and lines[0]["train_loss"] is None
    assert all(set(m["pass@1"]) == {"train", "val", "test"} for m in lines)
    for i in (1, 2):
        assert os.path.exists(os.path.join(run, f"iter-{i}", "train", "adapter_model.safetensors"))
    assert open(os.path.join(run, "accuracy.svg")).read().count('class="series"') == 3
    for split in ("train", "val", "test"):
        assert os.path.exists(os.path.join(run, "problems", f"{split}.jsonl"))


def test_an_interrupted_tiny_run_resumes_to_the_same_metrics(tiny, tmp_path, monkeypatch):
    # Near-uniform sampling: at the default temperature the tiny model writes newlines whatever the seed.
    hot = ("--temperature", "20.0", "--top-p", "1.0")
    whole_run = tiny_run(tiny, tmp_path / "whole", TinyModel(tiny), *hot)
    whole = whole_run["metrics"]
    with pytest.raises(PhysloraError, match=r"interrupted in iteration 2; continue with: python improve.py --resume"):
        tiny_run(tiny, tmp_path / "cut", TinyModel(tiny, cut_at=2), *hot)
    sampled = {}  # batch number -> its entries, for the batches sampled again

    def answer_batch(model, tokenizer, records, prompts, batches, number, settings):
        entries = real_answer_batch(model, tokenizer, records, prompts, batches, number, settings)
        if settings.samples > 1:  # a copy: TinyModel appends a right program to the outputs afterwards
            sampled[number] = copy.deepcopy(entries)
        return entries

    real_answer_batch = generation.answer_batch
    monkeypatch.setattr(generation, "answer_batch", answer_batch)
    again = TinyModel(tiny)
    resumed = improve.main(["--resume", str(tmp_path / "cut")], answer=again)["metrics"]
    assert again.paths == [os.path.join("iter-2", "samples.jsonl"), os.path.join("iter-2", "eval.jsonl")]
    assert [{k: v for k, v in m.items() if k != "seconds"} for m in resumed] == \
        [{k: v for k, v in m.items() if k != "seconds"} for m in whole]
    assert list(sampled) == [1, 2]  # the finished batch is kept, the half-written one redone
    # ... and redone exactly as in the uninterrupted run: the metrics alone would not show other samples.
    samples_path = os.path.join(whole_run["run"], "iter-2", "samples.jsonl")
    whole_samples = {entry["id"]: entry for entry in read_jsonl(samples_path)}
    assert [entry for entries in sampled.values() for entry in entries] == \
        [whole_samples[entry["id"]] for entries in sampled.values() for entry in entries]


def test_a_run_stopped_after_its_last_done_json_gets_its_metrics_lines_on_resume(tiny, tmp_path):
    run = tiny_run(tiny, tmp_path / "run", TinyModel(tiny))["run"]
    with open(os.path.join(run, "metrics.jsonl")) as f:
        lines = f.readlines()
    with open(os.path.join(run, "metrics.jsonl"), "w") as f:  # as if stopped before the last line was written
        f.writelines(lines[:-1])
    improve.main(["--resume", run], answer=TinyModel(tiny))
    with open(os.path.join(run, "metrics.jsonl")) as f:
        assert f.readlines() == lines


def test_an_iteration_that_keeps_nothing_trains_nothing_and_says_so(tiny, tmp_path, capsys):
    random_model = improve.model_answerer(argparse.Namespace(model=tiny, dtype="fp32", device="cpu"))
    result = improve.main(settings(tiny, tmp_path / "run", "--iterations", "1", "--samples", "2",
                                   "--max-new-tokens", "8", "--batch-size", "8"), answer=random_model)
    assert result["metrics"][1]["kept"] == 0 and result["metrics"][1]["adapter"] is None
    assert not os.path.exists(os.path.join(result["run"], "iter-1", "train"))
    assert "iteration 1: no sample passed, nothing to train on" in capsys.readouterr().out


def test_help_shows_every_flag_with_its_default():
    parser = improve.build_parser()
    for action in parser._actions:
        if action.option_strings and action.default not in (None, False, "==SUPPRESS=="):
            assert "default" in action.help, action.option_strings


def test_default_problems_hide_cases_that_a_lookup_of_the_example_fails():
    """A program that only knows the prompt's example (answers it, or answers its output everywhere)
    must fail: the earlier default of five cases let such lookups pass and be trained on."""
    cases = improve.build_parser().get_default("cases")
    splits, _ = generate({"train": 48, "val": 30, "test": 60}, 0, (1, 1), cases)
    for record in (r for records in splits.values() for r in records):
        tests = record["answer"]["tests"]
        example = tests[0]
        assert any(t["output"] != example["output"] for t in tests[1:]), record["id"]
        assert any(t["input"] != example["input"] for t in tests[1:]), record["id"]
