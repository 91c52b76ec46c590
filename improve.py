"""Self-improvement on verifiable puzzles: `python improve.py` (expert iteration, as in STaR and ReST-EM).

The model writes programs, the sandbox says which ones are right, the model trains on those. No
teacher and no reference solution is trained on: the only signal is the puzzles' test cases.

  problems     generate_data.py puzzles: train / val / test, no test input in two splits
  iteration 0  the base model, evaluated
  iteration i  1. sample    --samples K programs per train problem from the current model (temperature > 0)
               2. verify    run each in the sandbox against its problem's tests; keep the distinct ones that
                            pass, at most --keep-per-problem per problem (else easy problems dominate)
               3. train     LoRA with train.py on the kept programs, each a ```python block as in the puzzle
                            data: continue the previous adapter, or with --restart a fresh one on the base
                            model (ReST-EM); an iteration that kept nothing keeps the previous model
               4. evaluate  greedy pass@1 on train, val and test, per puzzle type and difficulty

With --curriculum T only train problems up to the current difficulty are sampled, starting at the
lowest of --difficulty, and the difficulty rises by one once their train pass@1 reaches T. Test
problems are only ever evaluated. A jump of val pass@1 by >= 15 points after two flat iterations
(each moving it by < 5 points) is flagged as "grokking".

The defaults fit SmolLM2-135M-Instruct on a 2-core CPU. A loop without a single right sample cannot
start, and at difficulty 1, temperature 0.7, about 2% of that model's arithmetic samples pass (none
of its RPN or bracket samples did): K = 8 over 16 arithmetic problems gives a few to start from.

RUN (default runs/improve-<timestamp>/) holds config.json, problems/, metrics.jsonl (one line per
iteration), accuracy.svg, improve.log and iter-N/: samples.jsonl, data/ (the kept programs: train.jsonl,
card.json), train/ (the train.py run: its adapter is the iteration's checkpoint), eval.jsonl, done.json.
--resume RUN skips finished iterations and continues the unfinished stage.

Under torchrun the processes share the sampling and the evaluation batches and train together (see
common/distributed.py); rank 0 verifies, writes and logs, and tells the others each iteration's metrics.
"""
import argparse
import json
import math
import os
from collections import Counter, defaultdict

import generate_data
import train
from common import distributed
from common.cli import (add_model_arguments, as_argv, check_at_least, check_model_flags, check_sampling_flags,
                        load_model_from_args, run_main, seed_number)
from common.errors import Interrupted, PhysloraError
from common.progress import Log, Progress, format_duration
from common.runs import open_run_dir, read_timings, resumed_settings, run_stage, write_atomically
from common.svg import write_line_chart
from data.puzzles import parse_difficulty
from data.schema import load_records, make_record, write_dataset
from evaluation.generation import GenerationSettings, answer_records
from evaluation.metrics import rate, score_record
from evaluation.parsing import extract_code
from lora.adapter import WEIGHTS_FILE
from lora.checkpoint import latest_checkpoint

PER_INVOCATION = ("out", "resume")
SPLITS = ("train", "val", "test")
PASSED = "passed"
AT_LEAST_ONE = ("train", "val", "test", "cases", "iterations", "samples", "keep_per_problem", "batch_size",
                "max_new_tokens", "epochs", "min_steps", "train_batch_size", "rank")
JUMP, FLAT = 15, 5  # grokking: val pass@1 up by >= 15 points after two iterations moving it by < 5


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, adapter=False)
    parser.set_defaults(dtype="bf16")  # on CPUs with AMX/AVX-512 bf16, batched generation is ~1.7x fp32's speed
    run = parser.add_argument_group("run")
    run.add_argument("--seed", type=seed_number, default=0, help="seed of the problems, the samples and the training; "
                                                         "default: %(default)s")
    run.add_argument("--out", default=None, help="run folder; default: runs/improve-<timestamp>")
    run.add_argument("--resume", default=None, metavar="RUN",
                     help="continue an interrupted run: finished iterations are kept, the unfinished stage continues")
    problems = parser.add_argument_group("problems (generate_data.py puzzles)")
    problems.add_argument("--difficulty", default="1",
                          help="difficulty or range, 1-10 (1: two numbers or two bracket pairs); default: %(default)s")
    problems.add_argument("--train", type=int, default=48, help="train problems; default: %(default)s")
    problems.add_argument("--val", type=int, default=30, help="val problems; default: %(default)s")
    problems.add_argument("--test", type=int, default=60, help="test problems; default: %(default)s")
    problems.add_argument("--cases", type=int, default=24,
                          help="test cases per problem: the prompt shows the first, the others stay hidden, so that "
                               "a program fitting a few strings (a lookup) fails; default: %(default)s")
    loop = parser.add_argument_group("the loop")
    loop.add_argument("--iterations", type=int, default=5, help="sample-verify-train rounds; default: %(default)s")
    loop.add_argument("--samples", type=int, default=8, help="programs sampled per train problem (K); "
                                                             "default: %(default)s")
    loop.add_argument("--temperature", type=float, default=0.7, help="of the samples; default: %(default)s")
    loop.add_argument("--top-p", type=float, default=0.95, help="nucleus mass of the samples; default: %(default)s")
    loop.add_argument("--keep-per-problem", type=int, default=2,
                      help="at most this many distinct passing programs per problem; default: %(default)s")
    loop.add_argument("--restart", action="store_true",
                      help="train a fresh adapter on the base model every iteration (ReST-EM) instead of "
                           "continuing the previous one")
    loop.add_argument("--curriculum", type=float, default=None, metavar="T",
                      help="sample the easiest difficulty first and move up once train pass@1 reaches T (0-1); "
                           "default: every train problem from the start")
    generation = parser.add_argument_group("generation and verification")
    generation.add_argument("--batch-size", type=int, default=32, help="prompts generated together; "
                                                                       "default: %(default)s")
    generation.add_argument("--max-new-tokens", type=int, default=128,
                            help="token budget of every program, sampled or greedy; default: %(default)s")
    generation.add_argument("--code-timeout", type=float, default=2.0,
                            help="sandbox seconds per program (all its test cases); default: %(default)s")
    training = parser.add_argument_group("training (train.py, each iteration)")
    training.add_argument("--rank", type=int, default=8, help="default: %(default)s")
    training.add_argument("--alpha", type=float, default=32.0, help="default: %(default)s")
    training.add_argument("--lr", type=float, default=1e-3, help="peak learning rate; default: %(default)s")
    training.add_argument("--epochs", type=int, default=3, help="default: %(default)s")
    training.add_argument("--min-steps", type=int, default=8,
                          help="more epochs when the kept programs are too few for this many optimizer steps; "
                               "default: %(default)s")
    training.add_argument("--train-batch-size", type=int, default=4, help="programs per optimizer step; "
                                                                          "default: %(default)s")
    return parser


def parse_settings(argv) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    args = resumed_settings(parser, argv, PER_INVOCATION, "improve.py") if args.resume else args
    parse_difficulty(args.difficulty)
    check_at_least(*((f"--{name.replace('_', '-')}", getattr(args, name), 1) for name in AT_LEAST_ONE))
    if not args.temperature > 0:
        raise PhysloraError(f"--temperature {args.temperature}: must be > 0 (greedy samples are all the same)")
    check_sampling_flags(args.top_p, args.code_timeout)
    check_model_flags(args)
    if args.curriculum is not None and not 0 < args.curriculum <= 1:
        raise PhysloraError(f"--curriculum {args.curriculum}: a train pass@1 threshold in (0, 1]")
    try:  # train.py's own checks now, not after the first sampling and verification
        train.parse_settings(as_argv(*training_argv(args, "DATA", "OUT", args.epochs)))
    except PhysloraError as err:
        raise PhysloraError(f"training settings: {err}") from None
    return args


def model_answerer(args):
    """answer(adapter, records, settings, path) -> id -> {"outputs", "hit_limit"} with --model plus `adapter`.

    The model stays loaded between calls with the same adapter: an iteration samples from the model
    the previous iteration evaluated. Tests pass a stub with the same signature instead.
    """
    loaded = {}

    def answer(adapter, records, settings, path):
        if adapter not in loaded:
            loaded.clear()  # one model in memory at a time
            loaded[adapter] = load_model_from_args(argparse.Namespace(model=args.model, adapter=adapter,
                                                                      dtype=args.dtype, device=args.device))
        return answer_records(*loaded[adapter], records, settings, path)

    return answer


def check_programs(records: list, entries: dict, timeout_s: float) -> list:
    """Per record, (program, verdict) for each of its outputs; the verdict is "passed" or why not (the first
    failing test's error, "NoCode" without a program). Each distinct program of a record runs once."""
    progress = Progress(len(records))
    checked = []
    for number, record in enumerate(records, start=1):
        verdicts, results = {}, []
        for output in entries[record["id"]]["outputs"]:
            program = (extract_code(output, record["answer"].get("function", "solve")) or "").strip()
            if program not in verdicts:
                score = score_record(record, output, timeout_s)
                verdicts[program] = PASSED if score["correct"] else next(e for e in score["errors"] if e)
            results.append((program, verdicts[program]))
        checked.append(results)
        progress.update(number, "programs checked in the sandbox")
    progress.close()
    return checked


def select(records: list, checked: list, cap: int) -> list:
    """Training records: per problem, its first `cap` distinct passing programs as ```python blocks."""
    kept = []
    for record, results in zip(records, checked):
        chosen = []
        for program, verdict in results:
            if verdict == PASSED and program not in chosen and len(chosen) < cap:
                chosen.append(program)
        kept += [make_record(f"{record['id']}-{n}", record["task"], "train", record["prompt"],
                             f"```python\n{program}\n```", record["answer"],
                             {**record["meta"], "problem": record["id"]}) for n, program in enumerate(chosen)]
    return kept


def pass_rates(records: list, checked: list, key) -> dict:
    """split -> key(record) -> rate of records whose first (greedy) program passes."""
    counts = defaultdict(lambda: [0, 0])
    for record, results in zip(records, checked):
        count = counts[record["split"], key(record)]
        count[0] += results[0][1] == PASSED
        count[1] += 1
    rates = defaultdict(dict)
    for (split, value), (k, n) in sorted(counts.items()):
        rates[split][str(value)] = rate(k, n)
    return dict(rates)


def grokking(val: list) -> bool:
    """Did the last iteration lift val pass@1 by >= JUMP points after two iterations that each moved it by < FLAT?"""
    # In points, rounded: in fractions 7/20 - 4/20 is 0.14999999999999997, short of 0.15.
    moves = [round(100 * (val[j] - val[j - 1]), 9) for j in (-1, -2, -3)] if len(val) >= 4 else []
    return bool(moves) and moves[0] >= JUMP and all(abs(move) < FLAT for move in moves[1:])


def next_level(args, history: list) -> int:
    """The highest difficulty sampled in the next iteration (--curriculum moves it up by one at a time)."""
    low, high = parse_difficulty(args.difficulty)
    if args.curriculum is None:
        return high
    if not history:
        return low
    last = history[-1]
    solved = [r for d, r in last["pass@1_by_difficulty"]["train"].items() if int(d) <= last["level"]]
    reached = sum(r["k"] for r in solved) >= args.curriculum * sum(r["n"] for r in solved)
    return min(high, last["level"] + 1) if reached else last["level"]


def adapter_after(run: str, iteration: int):
    """The adapter of the model after `iteration`: that of the latest iteration that trained one (None: the base)."""
    for i in range(iteration, 0, -1):
        folder = os.path.join(run, f"iter-{i}", "train")
        if os.path.exists(os.path.join(folder, WEIGHTS_FILE)):
            return folder
    return None


def train_on_kept(args, data: str, out: str, previous, kept: int) -> None:
    """train.py on the kept programs (val loss: the val problems' reference solutions); resumes its checkpoint."""
    if latest_checkpoint(out):
        train.main(["--resume", out])
        return
    steps_per_epoch = math.ceil(kept / args.train_batch_size)
    argv = training_argv(args, data, out, epochs=max(args.epochs, math.ceil(args.min_steps / steps_per_epoch)))
    if previous and not args.restart:
        argv += ["--init-adapter", previous]
    train.main(as_argv(*argv))


def training_argv(args, data: str, out: str, epochs: int) -> list:
    return ["--model", args.model, "--dtype", args.dtype, "--device", args.device, "--data", data, "--out", out,
            "--overwrite", "--rank", args.rank, "--alpha", args.alpha, "--lr", args.lr, "--seed", args.seed,
            "--epochs", epochs, "--batch-size", args.train_batch_size, "--grad-accum", 1, "--eval-every", 10]


def write_selection(args, data: str, pool: list, samples: dict, val: list) -> None:
    """Verify the samples and write the training data: the kept programs, and as val (train.py's val loss)
    the val problems with their reference solutions; card.json, written last, says what was kept."""
    checked = check_programs(pool, samples, args.code_timeout)
    kept = select(pool, checked, args.keep_per_problem)
    verdicts = Counter(verdict for results in checked for _, verdict in results)
    os.makedirs(data, exist_ok=True)
    write_dataset(data, {"train": kept, "val": val},
                  {"samples": sum(verdicts.values()), "verdicts": dict(verdicts.most_common()), "kept": len(kept),
                   "kept_by_task": dict(Counter(r["task"] for r in kept)),
                   "cut_off": sum(sum(samples[r["id"]]["hit_limit"]) for r in pool)})


def run_iteration(args, run: str, i: int, problems: dict, answer, history: list) -> dict:
    """Sample, verify and train (from iteration 1 on), then evaluate; returns the iteration's metrics line."""
    folder = os.path.join(run, f"iter-{i}")
    os.makedirs(folder, exist_ok=True)
    timings_path = os.path.join(folder, "timings.json")

    def stage(name: str, done: bool, action) -> None:
        run_stage(f"iteration {i}: {name}", done, action, timings_path)

    level, trained = next_level(args, history), os.path.join(folder, "train")
    selection = {"samples": 0, "verdicts": {}, "kept": 0, "kept_by_task": {}, "cut_off": 0}
    if i > 0:
        previous, data, samples = adapter_after(run, i - 1), os.path.join(folder, "data"), {}
        card = os.path.join(data, "card.json")
        selected = distributed.from_rank0(os.path.exists(card))  # every process takes the same branches
        pool = [r for r in problems["train"] if r["meta"]["difficulty"] <= level]
        sampling = GenerationSettings(args.batch_size, args.max_new_tokens, args.samples, args.temperature,
                                      args.top_p, args.seed + 1000 * i)  # fresh samples every iteration
        stage(f"sample {args.samples} programs for each of {len(pool)} train problems (difficulty <= {level})",
              selected,
              lambda: samples.update(answer(previous, pool, sampling, os.path.join(folder, "samples.jsonl"))))
        with distributed.rank0_first():  # rank 0 has every sample (the others, their share): it verifies
            stage("verify", selected or distributed.rank() > 0,
                  lambda: write_selection(args, data, pool, samples, problems["val"]))
        with open(card) as f:
            selection = {key: value for key, value in json.load(f).items() if key in selection}
        if selection["kept"]:
            stage(f"train on {selection['kept']} kept programs", os.path.exists(os.path.join(trained, WEIGHTS_FILE)),
                  lambda: train_on_kept(args, data, trained, previous, selection["kept"]))
        else:
            print(f"== iteration {i}: no sample passed, nothing to train on: the model stays as it was", flush=True)

    records, adapter, greedy, checked = [r for split in SPLITS for r in problems[split]], adapter_after(run, i), {}, []

    def evaluate():
        greedy.update(answer(adapter, records, GenerationSettings(args.batch_size, args.max_new_tokens),
                             os.path.join(folder, "eval.jsonl")))
        if distributed.rank() == 0:
            checked.extend(check_programs(records, greedy, args.code_timeout))

    stage(f"evaluate pass@1 (greedy) on {len(records)} problems", False, evaluate)
    if distributed.rank() > 0:
        return None  # rank 0 alone has every answer; it sends the metrics to the others
    losses = []
    if os.path.exists(os.path.join(trained, "metrics.jsonl")):
        with open(os.path.join(trained, "metrics.jsonl")) as f:
            losses = list(map(json.loads, f))
    overall = pass_rates(records, checked, lambda r: "all")
    return {"iteration": i, "level": level, "pass@1": {split: overall[split]["all"] for split in SPLITS},
            "pass@1_by_task": pass_rates(records, checked, lambda r: r["task"]),
            "pass@1_by_difficulty": pass_rates(records, checked, lambda r: r["meta"]["difficulty"]),
            **selection, "greedy_cut_off": sum(greedy[r["id"]]["hit_limit"][0] for r in records),
            "train_loss": next((m["loss"] for m in reversed(losses) if "loss" in m), None),
            "val_loss": next((m["val_loss"] for m in reversed(losses) if "val_loss" in m), None),
            "adapter": adapter and os.path.relpath(adapter, run), "seconds": sum(read_timings(timings_path).values()),
            "grokking": grokking([m["pass@1"]["val"]["rate"] for m in history] + [overall["val"]["all"]["rate"]])}


def main(argv=None, answer=None) -> dict:
    """Runs the loop; returns {"run": folder, "metrics": one dict per iteration}. `answer`: see model_answerer."""
    args = parse_settings(argv)
    distributed.start(args.device)  # under torchrun: join the other processes
    rank0 = distributed.rank() == 0
    run = distributed.from_rank0(open_run_dir(args, PER_INVOCATION, prefix="improve-") if rank0 else None)
    log = Log(os.path.join(run, "improve.log") if rank0 else os.devnull)
    folder = os.path.join(run, "problems")
    with distributed.rank0_first():  # rank 0 writes the problems; the others then find them done
        run_stage("problems", os.path.exists(os.path.join(folder, "card.json")), lambda: generate_data.main(
            as_argv("puzzles", "--out", folder, "--seed", args.seed, "--difficulty", args.difficulty,
                    "--train", args.train, "--val", args.val, "--test", args.test, "--cases", args.cases,
                    "--overwrite")), os.path.join(run, "timings.json"))
    problems = {split: load_records(folder, split) for split in SPLITS}
    answer = answer or model_answerer(args)

    history = []  # finished iterations are read back, so a resumed run continues after the last one
    while len(history) <= args.iterations and os.path.exists(os.path.join(run, f"iter-{len(history)}", "done.json")):
        with open(os.path.join(run, f"iter-{len(history)}", "done.json")) as f:
            history.append(json.load(f))
    if history and rank0:  # a run stopped between an iteration's done.json and its metrics line
        write_progress(run, history)
    for i in range(len(history), args.iterations + 1):
        try:
            metrics = distributed.from_rank0(run_iteration(args, run, i, problems, answer, history))
        except (KeyboardInterrupt, Interrupted):  # train.py's own message would say to resume train.py
            raise Interrupted(f"interrupted in iteration {i}; continue with: python improve.py --resume {run}") \
                from None
        history.append(metrics)
        if not rank0:
            continue
        write_atomically(os.path.join(run, f"iter-{i}", "done.json"),
                         lambda tmp: write_text(tmp, json.dumps(metrics, indent=1)))
        write_progress(run, history)
        log(iteration_line(metrics))

    first, last = history[0]["pass@1"], history[-1]["pass@1"]
    grokked = [m["iteration"] for m in history if m["grokking"]]
    log(f"improve: {args.iterations} iterations in {format_duration(sum(m['seconds'] for m in history))} | "
        f"pass@1 " + ", ".join(f"{s} {first[s]['rate']:.1%} → {last[s]['rate']:.1%}" for s in SPLITS) +
        f" | grokking: {', '.join(f'iteration {i}' for i in grokked) or 'no'} | {os.path.join(run, 'metrics.jsonl')}")
    return {"run": run, "metrics": history}


def write_text(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def write_progress(run: str, history: list) -> None:
    """metrics.jsonl and accuracy.svg of the iterations finished so far."""
    write_atomically(os.path.join(run, "metrics.jsonl"),
                     lambda tmp: write_text(tmp, "".join(json.dumps(m) + "\n" for m in history)))
    write_line_chart(os.path.join(run, "accuracy.svg"),
                     {split: [(m["iteration"], 100 * m["pass@1"][split]["rate"]) for m in history] for split in SPLITS},
                     title=os.path.basename(os.path.normpath(run)), x_label="iteration", y_label="pass@1 (%)")


def iteration_line(m: dict) -> str:
    """The log line of one iteration: pass@1 per split (and per puzzle type for val), what was kept, the loss."""
    splits = " | ".join(f"{s} {m['pass@1'][s]['rate']:.1%}" for s in SPLITS)
    tasks = ", ".join(f"{task.removeprefix('puzzle_')} {r['rate']:.0%}"
                      for task, r in m["pass@1_by_task"]["val"].items())
    loop = (f"kept {m['kept']} programs of {m['samples']} samples ({m['verdicts'].get(PASSED, 0)} passed) | " +
            (f"train loss {m['train_loss']:.3f}" if m["kept"] else "nothing to train on") if m["iteration"]
            else "the base model")
    return (f"iteration {m['iteration']}: pass@1 {splits} (val: {tasks}) | {loop} | {format_duration(m['seconds'])}"
            + (" | GROKKING: val pass@1 jumped after a plateau" if m["grokking"] else ""))


if __name__ == "__main__":
    run_main(main)
