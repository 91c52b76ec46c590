"""The physics-transfer experiment in one command: data → LoRA training → base vs LoRA evaluation → report.

    python experiment.py                      # the default: SmolLM2-135M-Instruct, r=8, alpha=32, q_proj,v_proj
    python experiment.py --seed 1             # another seed: new data, new initialisation, new sample order
    python experiment.py --quick              # the whole chain on tiny sizes, in about a minute
    python experiment.py --resume runs/experiment-20261130-041500   # continue an interrupted experiment
    python experiment.py --model qwen2.5-0.5b-instruct --baseline-model qwen2.5-1.5b-instruct --device cuda
                                              # the reference set-up: a 1.5B baseline against a 0.5B student

Stages, each in its own folder of runs/experiment-<timestamp>/ and each resumable:
  data/   generate_data.py physics (labels from physics; test_unseen = families never trained on)
  train/  train.py with the LoRA settings below (its loss.svg is the loss curve)
  eval/   evaluate.py on test_seen and test_unseen: the baseline and the adapted model on the same records
and report.md: the side-by-side tables with 95% intervals and McNemar p, confusion matrices, the loss
curve, sample answers, the wall time of each stage and every setting. The last line names the report.

Under torchrun (`torchrun --nproc_per_node 8 experiment.py --device cuda`) rank 0 writes the data,
training shards the rows of each micro-batch and evaluation the generation batches over the
processes (see common/distributed.py), and rank 0 writes the report.
"""
import argparse
import os
import shutil
import time

import evaluate
import generate_data
import train
from common import distributed
from common.cli import add_model_arguments, as_argv, check_model_flags, run_main, seed_number
from common.errors import PhysloraError, interrupted_means
from common.progress import format_duration
from common.runs import open_run_dir, read_timings, resumed_settings, run_stage
from data.physics_dataset import ANSWER_STYLES
from evaluation.report import render
from lora.checkpoint import latest_checkpoint

PER_INVOCATION = ("out", "resume")
QUICK = {"train": 48, "val": 16, "test_seen": 8, "test_unseen": 16, "epochs": 1, "batch_size": 4, "grad_accum": 2,
         "eval_every": 3, "max_new_tokens": 48}
REFERENCE = ["Reference result (Qwen2.5-0.5B + LoRA vs a Qwen2.5-1.5B baseline, 34 held-out scenarios, one run): "
             "failure-mode accuracy 10.5% (2/19) → 78.9% (15/19); binary accuracy 47.1% (16/34) → 55.9% (19/34).", ""]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, adapter=False)
    parser.set_defaults(dtype="bf16")
    parser.add_argument("--baseline-model", default=None, metavar="MODEL",
                        help="compare against this model without adapter (e.g. a larger one); default: --model")
    parser.add_argument("--seed", type=seed_number, default=0, help="seed of the data, the training and the evaluation; "
                                                            "default: %(default)s")
    data = parser.add_argument_group("data (generate_data.py physics)")
    data.add_argument("--train", type=int, default=1400, help="training scenarios; default: %(default)s")
    data.add_argument("--val", type=int, default=280, help="validation scenarios; default: %(default)s")
    data.add_argument("--test-seen", type=int, default=420,
                      help="new scenarios of training families; default: %(default)s")
    data.add_argument("--test-unseen", type=int, default=420,
                      help="scenarios of families never trained on; default: %(default)s")
    data.add_argument("--difficulty", type=float, default=0.2, help="0-1, closer to thresholds; default: %(default)s")
    data.add_argument("--contrast", action=argparse.BooleanOptionalAction, default=False,
                      help="contrast twins in the train split (see generate_data.py physics --help); "
                           "default: %(default)s")
    data.add_argument("--answer-style", choices=ANSWER_STYLES, default="checks",
                      help="verdict: the student answers YES/NO, FAILURE_MODE and REASONING; checks: it writes a check "
                           "program and a calculator runs it (see generate_data.py physics --help); default: %(default)s")
    lora = parser.add_argument_group("training (train.py)")
    lora.add_argument("--rank", type=int, default=8, help="default: %(default)s")
    lora.add_argument("--alpha", type=float, default=32.0, help="default: %(default)s")
    lora.add_argument("--targets", default="q_proj,v_proj", help="default: %(default)s")
    lora.add_argument("--epochs", type=int, default=2, help="default: %(default)s")
    lora.add_argument("--lr", type=float, default=2e-3, help="peak learning rate; default: %(default)s")
    lora.add_argument("--batch-size", type=int, default=8, help="rows per micro-batch; default: %(default)s")
    lora.add_argument("--grad-accum", type=int, default=2, help="micro-batches per step; default: %(default)s")
    lora.add_argument("--max-steps", type=int, default=None, help="stop training after this step; default: all")
    lora.add_argument("--reasoning-share", type=float, default=1.0,
                      help="share of training targets kept whole; the others stop after FAILURE_MODE "
                           "(see train.py --help); default: %(default)s")
    lora.add_argument("--eval-every", type=int, default=88, help="steps between val losses; default: %(default)s")
    evaluation = parser.add_argument_group("evaluation (evaluate.py)")
    evaluation.add_argument("--eval-batch-size", type=int, default=48, help="default: %(default)s")
    evaluation.add_argument("--max-new-tokens", type=int, default=None,
                            help="token budget of each answer; default: evaluate.py's (136 for check "
                                 "programs, 160 for verdicts)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (48 training scenarios, 6 steps of 4 × 2, 24 test scenarios): checks the whole "
                             "chain in about a minute; its numbers mean nothing")
    parser.add_argument("--out", default=None, help="experiment folder; default: runs/experiment-<timestamp>")
    parser.add_argument("--resume", default=None, metavar="DIR",
                        help="continue an interrupted experiment: finished stages are kept, the others continue")
    return parser


def parse_settings(argv) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.resume:
        args = resumed_settings(parser, argv, PER_INVOCATION, "experiment.py")
    elif args.quick:
        for name, value in QUICK.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    check_model_flags(args)
    if not args.resume:
        check_stage_settings(args)
    return args


def train_argv(args, data: str) -> list:
    """train.py's arguments for this experiment (but --out)."""
    train_args = ["--model", args.model, "--dtype", args.dtype, "--device", args.device, "--data", data,
                  "--rank", args.rank, "--alpha", args.alpha, "--targets", args.targets, "--epochs", args.epochs,
                  "--lr", args.lr, "--batch-size", args.batch_size, "--grad-accum", args.grad_accum,
                  "--reasoning-share", args.reasoning_share,
                  "--eval-every", args.eval_every, "--seed", args.seed]
    return train_args + (["--max-steps", args.max_steps] if args.max_steps else [])


def evaluate_argv(args, data: str, adapter: str) -> list:
    """evaluate.py's arguments for this experiment (but --out); experiment.py's --eval-batch-size is its --batch-size."""
    eval_args = ["--model", args.model, "--adapter", adapter, "--data", data, "--split", "test*", "--dtype", args.dtype,
                 "--device", args.device, "--batch-size", args.eval_batch_size, "--seed", args.seed, "--samples", "4"]
    if args.baseline_model:
        eval_args += ["--baseline-model", args.baseline_model]
    return eval_args + (["--max-new-tokens", args.max_new_tokens] if args.max_new_tokens else [])


def check_stage_settings(args) -> None:
    """The training and evaluation flags, checked by train.py's and evaluate.py's own parsers now rather than
    when their stage starts, after data generation and training."""
    stages = (("training", train.parse_settings, train_argv(args, "DATA"), ""),
              ("evaluation", evaluate.parse_settings, evaluate_argv(args, "DATA", "ADAPTER"),
               " (evaluate.py's --batch-size is experiment.py's --eval-batch-size)"))
    for stage, parse, argv, note in stages:
        try:
            parse(as_argv(*argv))
        except PhysloraError as err:
            raise PhysloraError(f"{stage} settings: {err}{note}") from None


def main(argv=None) -> str:
    """Runs the experiment; returns the path of its report.md (None on the other processes under torchrun)."""
    args = parse_settings(argv)
    distributed.start(args.device)  # under torchrun: join the other processes
    rank0 = distributed.rank() == 0
    out = distributed.from_rank0(open_run_dir(args, PER_INVOCATION, prefix="experiment-") if rank0 else None)
    data, run, evaluation = (os.path.join(out, name) for name in ("data", "train", "eval"))
    timings_path = os.path.join(out, "timings.json")
    started = time.perf_counter()

    with interrupted_means(f"python experiment.py --resume {out}"):  # train.py and evaluate.py would name themselves
        sizes = ["--train", args.train, "--val", args.val, "--test-seen", args.test_seen, "--test-unseen",
                 args.test_unseen]
        with distributed.rank0_first():  # rank 0 writes the data; the others then find it done
            run_stage("data", os.path.exists(os.path.join(data, "card.json")), lambda: generate_data.main(
                as_argv("physics", "--out", data, "--seed", args.seed, "--difficulty", args.difficulty, "--overwrite",
                        "--answer-style", args.answer_style, *sizes, *(["--contrast"] if args.contrast else []))),
                timings_path)

        train_args = train_argv(args, data)

        def train_stage():  # continue from the last checkpoint, or (re)start: a run without one has nothing to keep
            checkpoint = distributed.from_rank0(latest_checkpoint(run) if os.path.isdir(run) else None)
            resumed = ["--resume", run, *(["--max-steps", args.max_steps] if args.max_steps else [])]  # per invocation
            train.main(as_argv(*resumed) if checkpoint else as_argv(*train_args, "--out", run, "--overwrite"))

        run_stage("train", os.path.exists(os.path.join(run, "adapter_model.safetensors")), train_stage, timings_path)

        eval_args = evaluate_argv(args, data, run)
        summary = {}
        resume_evaluation = distributed.from_rank0(os.path.exists(os.path.join(evaluation, "config.json")))
        run_stage("evaluate", False, lambda: summary.update(evaluate.main(
            as_argv("--resume", evaluation) if resume_evaluation else as_argv(*eval_args, "--out", evaluation)) or {}),
            timings_path)
    if not rank0:
        return None  # rank 0 writes the report

    shutil.copyfile(os.path.join(run, "loss.svg"), os.path.join(out, "loss.svg"))
    report, timings = os.path.join(out, "report.md"), read_timings(timings_path)
    with open(report, "w") as f:
        f.write(experiment_report(args, summary, timings))
    print(f"experiment done in {format_duration(time.perf_counter() - started)} (stages: "
          f"{', '.join(f'{k} {format_duration(v)}' for k, v in timings.items())}) | {headline(summary)} | "
          f"report: {report}")
    return report


def headline(summary: dict) -> str:
    """test_unseen failure-mode and binary accuracy of each system, for the last line."""
    parts = []
    for name, metrics in summary["metrics"].items():
        entry = metrics.get("test_unseen", {}).get("physics_scenario")
        if entry:
            parts.append(f"{name}: failure mode {entry['mode_accuracy_on_failing']['rate']:.1%}, "
                         f"binary {entry['binary_accuracy']['rate']:.1%}")
    return "test_unseen " + "; ".join(parts)


def experiment_report(args, summary: dict, timings: dict) -> str:
    stages = ["| stage | wall time |", "|---|---|", *(f"| {name} | {format_duration(seconds)} |"
                                                      for name, seconds in timings.items()),
              f"| total | {format_duration(sum(timings.values()))} |", ""]
    evaluation_times = ", ".join(f"{name} {format_duration(s)}" for name, s in summary["seconds"].items())
    preamble = [*REFERENCE, *stages, f"Evaluation time per system: {evaluation_times}.", "",
                "Training and validation loss per target token:", "", "![loss curve](loss.svg)", ""]
    settings = {k: v for k, v in vars(args).items() if k not in PER_INVOCATION}
    return render("Physics-transfer experiment", summary["systems"], summary["metrics"], summary["comparisons"],
                  summary["samples"], settings, preamble=preamble)


if __name__ == "__main__":
    run_main(main)
