"""Did the fine-tune help? `python evaluate.py --data data_out/physics --adapter runs/RUN`.

Evaluates the base model (or --baseline-model) and, with --adapter, the adapted model on exactly
the same held-out records: greedy, batched generation in the chat template, each output scored
by its record's task (evaluation/metrics.py), rates with Wilson 95% intervals and the exact
McNemar test on the paired outcomes. Prints the side-by-side table and a one-line summary.

OUT (default results/<timestamp>/, never overwritten) receives config.json, outputs-<system>.jsonl
(every answer, written batch by batch), results.json (settings, model and adapter hashes, every
example with both answers and scores, the metrics), report.md and eval.log. An interrupted run
continues with --resume OUT and ends with the same results as an uninterrupted one.

On several GPUs, `torchrun --nproc_per_node 8 evaluate.py ...`: the processes share the batches
of every system, rank 0 gathers the answers, scores them and writes OUT; the results are those
of a single process (see common/distributed.py).
"""
import argparse
import gc
import hashlib
import json
import os
import random
import time

from common import distributed
from common.chat_api import check_reachable
from common.cli import (add_model_arguments, check_at_least, check_model_flags, check_sampling_flags,
                        load_model_from_args, run_main, seed_number)
from common.errors import PhysloraError, interrupted_means
from common.progress import Log, format_duration
from common.runs import ADAPTER_FILES, check_run_dir, open_run_dir, resumed_settings
from evaluation.generation import GenerationSettings, answer_records, resume_outputs_on_rank0
from evaluation.harness import (fingerprint, group_metrics, judge_outputs, load_eval_records, paired_comparisons,
                                score_system)
from evaluation.loglik import choose_option
from evaluation.report import metric_table, render
from model.registry import resolve

PER_INVOCATION = ("out", "resume")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None,
                        help="a data folder (its test*.jsonl files, see --split) or one .jsonl file of records "
                             "(required unless --resume)")
    parser.add_argument("--split", default="test*",
                        help="which split files of a data folder, or which records of one file by their split "
                             "field: a name (val) or a prefix ending in * (each split is reported separately); "
                             "default: %(default)s")
    add_model_arguments(parser)
    parser.add_argument("--baseline-model", default=None, metavar="MODEL",
                        help="evaluate this model (without adapter) as the baseline instead of --model, e.g. a "
                             "larger one; default: --model itself")
    parser.add_argument("--limit", type=int, default=None,
                        help="at most N records per split: a seeded random sample kept in file order; default: all")
    parser.add_argument("--batch-size", type=int, default=16, help="prompts generated together; default: %(default)s")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="token budget of every answer; default: per kind of answer (160 for "
                             "scenario verdicts, 136 for check programs, 384 for problems and code, 512 for free text)")
    parser.add_argument("--num-samples", type=int, default=1,
                        help="outputs per record; with more than 1, pass@k is reported and sampling uses "
                             "--temperature (default then 0.8); default: %(default)s")
    parser.add_argument("--temperature", type=float, default=None,
                        help="0 = greedy; default: 0, or 0.8 with --num-samples > 1")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass; default: %(default)s")
    parser.add_argument("--seed", type=seed_number, default=0,
                        help="seed of --limit's sample, of sampling and of --samples; default: %(default)s")
    parser.add_argument("--mcq-mode", choices=("generate", "loglik"), default="generate",
                        help="multiple choice: read the letter from the generated answer, or pick the option "
                             "whose `Answer: <letter>` is likeliest without generating; default: %(default)s")
    parser.add_argument("--code-timeout", type=float, default=5.0,
                        help="sandbox seconds per program (all its test cases together); default: %(default)s")
    parser.add_argument("--samples", type=int, default=3,
                        help="example questions shown with every system's answer; default: %(default)s")
    parser.add_argument("--judge-url", default=None,
                        help="an OpenAI-compatible endpoint (e.g. http://localhost:8000/v1) that grades free-text "
                             "answers 1-10 against the reference; default: no judge")
    parser.add_argument("--judge-model", default=None, help="the judge's model name (needed with --judge-url)")
    parser.add_argument("--judge-key-env", default="OPENAI_API_KEY",
                        help="environment variable holding the judge's API key; default: %(default)s")
    parser.add_argument("--out", default=None, help="output folder; default: results/<timestamp>")
    parser.add_argument("--resume", default=None, metavar="OUT",
                        help="continue an interrupted evaluation in OUT with its saved settings")
    return parser


def parse_settings(argv) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.resume:
        args = resumed_settings(parser, argv, PER_INVOCATION, "evaluate.py")
    elif args.data is None:
        parser.error("--data is required (a data folder or a .jsonl file)")
    if args.temperature is None:
        args.temperature = 0.8 if args.num_samples > 1 else 0.0
    check_at_least(("--limit", args.limit, 1), ("--batch-size", args.batch_size, 1),
                   ("--max-new-tokens", args.max_new_tokens, 1), ("--num-samples", args.num_samples, 1),
                   ("--samples", args.samples, 0), ("--temperature", args.temperature, 0))
    check_sampling_flags(args.top_p, args.code_timeout)
    if args.num_samples > 1 and args.temperature == 0:
        raise PhysloraError(f"--num-samples {args.num_samples} with --temperature 0: greedy samples are all the "
                            "same; set --temperature > 0")
    if bool(args.judge_url) != bool(args.judge_model):
        raise PhysloraError("--judge-url and --judge-model go together")
    return args


def systems_to_run(args) -> dict:
    """name -> (model, adapter): the baseline first, then the adapted model if there is an adapter."""
    systems = {"base": (args.baseline_model or args.model, None)}
    if args.adapter:
        systems["lora"] = (args.model, args.adapter)
    return systems


def answer_with(args, name: str, model_name: str, adapter, records: list, out: str, log: Log) -> tuple:
    """(id -> outputs entry, seconds) of one system, generated (or read back when resuming) into outputs-<name>.jsonl."""
    path = os.path.join(out, f"outputs-{name}.jsonl")
    finished = resume_outputs_on_rank0(path)
    if len(finished) == len(records):
        log(f"{name}: all {len(records)} answers already in {path}")
        return finished, 0.0
    load_args = argparse.Namespace(model=model_name, adapter=adapter, dtype=args.dtype, device=args.device)
    with distributed.rank0_first():  # a model to download is fetched once
        model, tokenizer = load_model_from_args(load_args)
    started = time.perf_counter()
    settings = GenerationSettings(args.batch_size, args.max_new_tokens, args.num_samples, args.temperature,
                                  args.top_p, args.seed)
    by_loglik = args.mcq_mode == "loglik"
    log(f"{name}: answering {len(records)} records with {model_name}" + (f" + adapter {adapter}" if adapter else "")
        + (f" ({len(finished)} already answered in {path}, kept)" if finished else ""))
    # Multiple choice by likelihood: one forward pass per question (under torchrun, each process its share)
    questions = [r for r in records if by_loglik and r["task"] == "physics_mcq" and r["id"] not in finished]
    chosen = [{"id": record["id"], "outputs": [choose_option(model, tokenizer, record)], "hit_limit": [False]}
              for record in distributed.shard(questions)]
    order = {record["id"]: i for i, record in enumerate(questions)}  # the file as one process writes it
    chosen = sorted(distributed.gather(chosen), key=lambda entry: order[entry["id"]])
    with open(path, "a", encoding="utf-8") as f:
        f.writelines(json.dumps(entry) + "\n" for entry in chosen)
    generated = [r for r in records if not (by_loglik and r["task"] == "physics_mcq")]
    entries = answer_records(model, tokenizer, generated, settings, path)
    seconds = time.perf_counter() - started
    log(f"{name}: done in {format_duration(seconds)}")
    del model
    gc.collect()
    return entries, seconds


def system_identities(systems: dict) -> dict:
    """name -> its model and adapter, with their sha256 (the adapter's: its weights and its config)."""
    identities, model_hashes = {}, {}
    for name, (model_name, adapter) in systems.items():
        if model_name not in model_hashes:  # base and adapted model usually share one (maybe multi-GB) file
            model_hashes[model_name] = fingerprint(resolve(model_name))
        identities[name] = {"model": model_name, "model_sha256": model_hashes[model_name], "adapter": adapter,
                            "adapter_sha256": fingerprint(adapter, ADAPTER_FILES) if adapter else None}
    return identities


def main(argv=None) -> dict:
    """Runs the evaluation; returns {"out", "metrics", "comparisons", "systems", "seconds" per system}
    (on rank 0; None on the other processes under torchrun)."""
    args = parse_settings(argv)
    check_model_flags(args)  # here, not in parse_settings: experiment.py checks its flags before the adapter exists
    if args.judge_url:
        check_reachable(args.judge_url, "--judge-url")  # now, not after every answer is generated
    distributed.start(args.device)  # under torchrun: join the other processes (see common/distributed.py)
    rank0 = distributed.rank() == 0
    started = time.perf_counter()
    records = load_eval_records(args.data, args.split, args.limit, args.seed)  # bad data: no folder left behind
    systems, answers, scores, seconds = systems_to_run(args), {}, {}, {}
    if rank0 and args.out and not args.resume:  # refused now, before a multi-GB model is hashed
        check_run_dir(args.out, overwrite=False, has_overwrite_flag=False)
    identities = system_identities(systems) if rank0 else None
    # What a resumed run must still answer with: the same records, models and adapters (one continued in place
    # since would mix two adapters' answers).
    evaluated = {"records": {"sha256": hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()}}
    for name, identity in (identities or {}).items():
        evaluated[f"{name} model"] = {"sha256": identity["model_sha256"], "path": identity["model"]}
        if identity["adapter"]:
            evaluated[f"{name} adapter"] = {"sha256": identity["adapter_sha256"], "path": identity["adapter"]}
    # rank 0 alone creates OUT; the others wait until it exists
    out = distributed.from_rank0(open_run_dir(args, PER_INVOCATION, root="results", data=evaluated) if rank0 else None)
    log = Log(os.path.join(out, "eval.log")) if rank0 else lambda message: None
    splits = sorted({r["split"] for r in records})
    log(f"data: {len(records)} records from {args.data} ({', '.join(splits)}); output in {out}")

    # The adapted model answers first: an adapter made for another base model fails when it loads, in seconds,
    # not after the whole baseline has answered.
    with interrupted_means(f"python evaluate.py --resume {out} (the answers so far are kept)"):
        for name, (model_name, adapter) in reversed(systems.items()):
            answers[name], seconds[name] = answer_with(args, name, model_name, adapter, records, out, log)
    if not rank0:
        return None  # the other processes only answer their share; rank 0 has every answer
    for name in systems:
        entries = answers[name]
        judged = None
        if args.judge_url:
            judged = judge_outputs(records, entries, {"url": args.judge_url, "model": args.judge_model,
                                                      "key_env": args.judge_key_env, "timeout": 60.0},
                                   os.path.join(out, f"judge-{name}.jsonl"))
        scores[name] = score_system(records, entries, args.code_timeout, judged)
        for score, record in zip(scores[name], records):
            score["output"] = entries[record["id"]]["outputs"][0]
            if args.num_samples > 1:
                score["outputs"] = entries[record["id"]]["outputs"]

    names = list(systems)
    metrics = {name: group_metrics(scores[name]) for name in names}
    comparisons = {name: paired_comparisons(scores[names[0]], scores[name]) for name in names[1:]}
    examples = [{"id": r["id"], "split": r["split"], "task": r["task"], "prompt": r["prompt"], "target": r["target"],
                 **{name: scores[name][i] for name in names}} for i, r in enumerate(records)]
    shown = random.Random(args.seed).sample(examples, min(args.samples, len(examples)))
    settings = {k: v for k, v in vars(args).items() if k not in PER_INVOCATION}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"settings": settings, "systems": identities, "metrics": metrics, "comparisons": comparisons,
                   "examples": examples}, f, indent=1)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(render(f"Evaluation of {args.data}", identities, metrics, comparisons, shown, settings))

    for split in metrics[names[0]]:
        for task in metrics[names[0]][split]:
            log("\n".join(["", *metric_table(split, task, names, metrics, comparisons)]))
    for sample in shown:
        log(f"\n{sample['id']}: {sample['prompt']}\n  reference: {sample['target']}" + "".join(
            f"\n  {name} ({'right' if sample[name]['correct'] else 'wrong'}): {sample[name]['output']}"
            for name in names))
    headline = "; ".join(f"{name} {_headline(metrics[name])}" for name in names)
    log(f"\nevaluated {len(records)} records × {len(names)} system(s) in "
        f"{format_duration(time.perf_counter() - started)} | {headline} | report: {os.path.join(out, 'report.md')}")
    return {"out": out, "metrics": metrics, "comparisons": comparisons, "systems": identities, "seconds": seconds,
            "samples": shown}


def _headline(metrics: dict) -> str:
    """Accuracy over every split and task, for the one-line summary."""
    k = sum(entry["accuracy"]["k"] for split in metrics.values() for entry in split.values())
    n = sum(entry["accuracy"]["n"] for split in metrics.values() for entry in split.values())
    return f"accuracy {k}/{n} = {k / n:.1%}"


if __name__ == "__main__":
    run_main(main)
