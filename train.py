"""Teach a model physics with LoRA: `python train.py --rank 8 --alpha 32`.

One loop, read top to bottom (after nanoGPT's train.py):

  1. settings  the flags, or RUN/config.json's when continuing with --resume RUN
  2. model     the frozen base in --dtype, LoRA on --targets (A and B and AdamW's state stay fp32)
  3. data      every record in the model's chat template, labels on the target tokens only (some
               cut after their answer lines: --reasoning-share), in length-bucketed batches (or
               --pack'ed rows); see data/batching.py
  4. loop      each optimizer step: the learning rate (linear warmup, then cosine decay to 10%);
               forward and backward over the micro-batches of the accumulation window, each loss
               divided by the target tokens of the whole window; gradient clipping; AdamW.
               Every --eval-every steps: the val loss, a checkpoint, loss.svg
  5. finish    the adapter in PEFT format, a one-line summary, optionally --push-to-hub

RUN (default runs/<timestamp>/) receives config.json, metrics.jsonl, loss.svg, checkpoints/step-N/
and adapter_config.json + adapter_model.safetensors (load with generate.py --adapter RUN, or peft).

On several GPUs or machines, `torchrun --nproc_per_node 8 train.py ...`: the processes share the
rows of every micro-batch and DDP sums their gradients, so the run is the one a single process
would make with the same flags; rank 0 alone writes RUN (see common/distributed.py).
"""
import argparse
import importlib.metadata
import json
import math
import os
import platform
import time
from contextlib import nullcontext

import torch
from torch.nn.parallel import DistributedDataParallel

from common import distributed
from common.cli import (DTYPES, add_model_arguments, check_adapter_folder, check_at_least, check_model_flags, run_main,
                        seed_number)
from common.errors import Interrupted, PhysloraError, interrupted_means
from common.memory import peak_memory_mib
from common.progress import Progress, format_duration
from common.runs import (append_jsonl, check_run_dir, check_same_data, new_run_dir, push_to_hub, read_jsonl,
                         resumed_settings, start_run_dir)
from common.svg import write_line_chart
from data.batching import PAD_MULTIPLE, collate, evaluation_batches, load_examples, padding_share, training_windows
from data.schema import split_files
from lora.adapter import TARGETS, LoRASettings, inject, load_adapter, parameter_counts, parse_targets, save_adapter
from lora.checkpoint import latest_checkpoint, load_checkpoint, prune_checkpoints, rng_state, save_checkpoint
from model.loading import load_model
from model.loss import MicroBatchLoss

DEFAULT_DATA = os.path.join("data_out", "physics")
WARMUP_SHARE = 0.05   # of all steps, unless --warmup-steps
MIN_LR_RATIO = 0.1    # the cosine decays to 10% of --lr (as nanoGPT)
# Flags that belong to one invocation, not to the run: --resume may change these, the rest come from config.json.
PER_INVOCATION = ("out", "resume", "overwrite", "max_steps", "push_to_hub")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, adapter=False)
    data = parser.add_argument_group("data")
    data.add_argument("--data", default=DEFAULT_DATA,
                      help="folder with train.jsonl and val.jsonl (records with prompt and target), or one .jsonl "
                           "file whose records' split field says train or val; the default is generated with "
                           "`generate_data.py physics` if absent; default: %(default)s")
    data.add_argument("--max-len", type=int, default=512,
                      help="tokens per example (and per packed row); longer prompts lose their start, the target "
                           "is kept; default: %(default)s")
    data.add_argument("--pack", action="store_true",
                      help="pack several examples per row (no attention or position leakage) instead of "
                           "length-bucketed padded batches")
    data.add_argument("--pad-multiple", type=int, default=PAD_MULTIPLE,
                      help="pad each micro-batch's length up to a multiple of this: a few distinct matmul shapes "
                           "instead of one per batch (on CPU, oneDNN keeps kernels and buffers per shape, which "
                           "grew a run's memory by GBs and slowed it by a third); default: %(default)s")
    data.add_argument("--reasoning-share", type=float, default=1.0,
                      help="share of the training targets that lead with their answer lines (physics: YES/NO and "
                           "FAILURE_MODE, then REASONING) trained whole; the others (seeded) are cut after the answer, "
                           "which weighs the decision more and skips their reasoning tokens; default: %(default)s")
    lora = parser.add_argument_group("LoRA")
    lora.add_argument("--rank", type=int, default=8, help="default: %(default)s")
    lora.add_argument("--alpha", type=float, default=16.0, help="the update is scaled by alpha / rank; "
                                                                "default: %(default)s")
    lora.add_argument("--dropout", type=float, default=0.05, help="on the LoRA branch's input; default: %(default)s")
    lora.add_argument("--targets", default="q_proj,v_proj",
                      help=f"comma-separated projections to adapt, from {','.join(TARGETS)}, or all-linear for all "
                           "of them; default: %(default)s")
    lora.add_argument("--rslora", action="store_true", help="scale by alpha / sqrt(rank) (rank-stabilised LoRA)")
    lora.add_argument("--init-adapter", default=None, metavar="DIR",
                      help="start from this adapter's weights, rank, alpha, dropout and targets (they replace the "
                           "flags above) instead of a fresh LoRA: e.g. continue an earlier run on new data; "
                           "default: a fresh LoRA")
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--epochs", type=int, default=3, help="default: %(default)s")
    optim.add_argument("--max-steps", type=int, default=None,
                       help="stop after this optimizer step (the schedule is unchanged: a dry run is the first "
                            "steps of the real run); default: run every epoch")
    optim.add_argument("--lr", type=float, default=2e-4, help="peak AdamW learning rate; default: %(default)s")
    optim.add_argument("--weight-decay", type=float, default=0.0, help="default: %(default)s")
    optim.add_argument("--warmup-steps", type=int, default=None,
                       help=f"linear warmup steps, then cosine decay; default: {100 * WARMUP_SHARE:.0f}%% of all steps")
    optim.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm, 0 = off; default: %(default)s")
    optim.add_argument("--batch-size", type=int, default=4, help="rows per micro-batch; default: %(default)s")
    optim.add_argument("--grad-accum", type=int, default=4,
                       help="micro-batches per optimizer step; default: %(default)s")
    optim.add_argument("--grad-checkpointing", action="store_true",
                       help="recompute each block in the backward pass: less memory, ~30%% more time")
    optim.add_argument("--seed", type=seed_number, default=0, help="same seed and data, same losses; default: %(default)s")
    run = parser.add_argument_group("run")
    run.add_argument("--out", default=None, help="run folder; default: runs/<timestamp>")
    run.add_argument("--resume", default=None, metavar="RUN",
                     help="continue RUN from its latest checkpoint, with its saved settings")
    run.add_argument("--overwrite", action="store_true", help="replace the training run (alone) in a non-empty --out")
    run.add_argument("--eval-every", type=int, default=50,
                     help="steps between val-loss evaluations (each also writes a checkpoint); default: %(default)s")
    run.add_argument("--push-to-hub", default=None, metavar="REPO_ID",
                     help="upload the final adapter to this hub repo (token: $HF_TOKEN); default: no upload")
    return parser


def parse_settings(argv) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.resume:
        if args.overwrite:
            raise PhysloraError("--resume with --overwrite: choose one (continue the run, or replace it)")
        args = resumed_settings(parser, argv, PER_INVOCATION, "train.py")
    check_settings(args)
    return args


def check_settings(args) -> None:
    check_model_flags(args)
    check_at_least(("--rank", args.rank, 1), ("--epochs", args.epochs, 1), ("--batch-size", args.batch_size, 1),
                   ("--grad-accum", args.grad_accum, 1), ("--eval-every", args.eval_every, 1),
                   ("--max-len", args.max_len, 2), ("--max-steps", args.max_steps, 1),
                   ("--pad-multiple", args.pad_multiple, 1), ("--warmup-steps", args.warmup_steps, 0),
                   ("--weight-decay", args.weight_decay, 0), ("--grad-clip", args.grad_clip, 0))
    if not 0 < args.lr < math.inf or not 0 < args.alpha < torch.finfo(torch.float32).max:
        raise PhysloraError(f"--lr {args.lr} and --alpha {args.alpha}: both must be > 0 and finite in float32")
    if not 0 <= args.dropout < 1:
        raise PhysloraError(f"--dropout {args.dropout}: must be in [0, 1)")
    if not 0 <= args.reasoning_share <= 1:
        raise PhysloraError(f"--reasoning-share {args.reasoning_share}: must be in [0, 1]")
    parse_targets(args.targets)
    if args.init_adapter and not args.resume:  # a resumed run's weights come from its checkpoint
        check_adapter_folder(args.init_adapter)
    if args.dtype == "fp16":
        raise PhysloraError("--dtype fp16: training in fp16 needs loss scaling, which train.py does not do; "
                            "use --dtype bf16 (same speed, fp32's range) or fp32")


def load_split(args, tokenizer, split: str):
    """(examples, report) of one split; the default physics data is generated on first use."""
    if args.data == DEFAULT_DATA and not os.path.exists(DEFAULT_DATA):
        import generate_data
        print(f"data: {DEFAULT_DATA} is absent; generating it (generate_data.py physics, seed 0)")
        generate_data.main(["physics", "--out", DEFAULT_DATA])
    share = args.reasoning_share if split == "train" else 1.0  # val losses stay comparable between settings
    # A folder holds a file per split; one file is split by its records' split field.
    return load_examples(split_files(args.data, split)[0], tokenizer, args.max_len, share, args.seed,
                         split=split if os.path.isfile(args.data) else None)


def learning_rate(step: int, peak: float, warmup: int, total: int) -> float:
    """Linear warmup to `peak` over `warmup` steps, then cosine decay to MIN_LR_RATIO·peak at step `total`."""
    if step <= warmup:
        return peak * step / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress)))


def train_window(model, batches: list, ddp=None) -> float:
    """Forward and backward over one accumulation window; returns its loss per target token.

    Each micro-batch's summed loss is divided by the target tokens of the *whole window*, so the
    accumulated gradient is exactly the gradient of one big batch. (Averaging per micro-batch, as
    several popular trainers did, weighs a token of a short micro-batch more than one of a long one.)
    Under torchrun, `batches` hold this process's rows of each micro-batch, the target tokens are
    counted over every process, and `ddp` (MicroBatchLoss(model) in DDP) sums the processes'
    gradients during the window's last backward.
    """
    targets = distributed.total(sum(batch.target_tokens for batch in batches))
    # DDP averages the gradients over the processes: dividing by targets / world size makes it their sum.
    divisor = targets / distributed.world_size()
    loss_of = ddp or MicroBatchLoss(model)
    total = 0.0
    for i, batch in enumerate(batches):
        with ddp.no_sync() if ddp and i < len(batches) - 1 else nullcontext():  # one sync per window
            loss = loss_of(batch)
            (loss / divisor).backward()
        total += loss.item()
    return distributed.total(total) / targets


@torch.no_grad()
def evaluate(model, examples: list, batch_size: int, pad_id: int, device, pad_multiple: int = 1) -> float:
    """Mean loss per target token over every example (dropout off); under torchrun each process takes its
    share of the batches, and every process gets the same result."""
    model.eval()
    total = targets = 0
    loss_of = MicroBatchLoss(model)
    for rows in distributed.shard(evaluation_batches([len(e.input_ids) for e in examples], batch_size)):
        batch = collate(examples, rows, pad_id, device, pad_multiple)
        total += loss_of(batch).item()
        targets += batch.target_tokens
    model.train()
    return distributed.total(total) / distributed.total(targets)


def stop(what: str, value: float, step: int, run_dir: str, args) -> PhysloraError:
    return PhysloraError(f"step {step}: {what} is {value}; stopped before it could spoil the adapter "
                         f"(last good checkpoint: {latest_checkpoint(run_dir) or 'none yet'}); "
                         f"lower --lr (now {args.lr:g}){' or use --dtype fp32' if args.dtype != 'fp32' else ''}")


def write_loss_chart(run_dir: str, metrics: list) -> None:
    write_line_chart(os.path.join(run_dir, "loss.svg"),
                     {"train": [(m["step"], m["loss"]) for m in metrics if "loss" in m],
                      "val": [(m["step"], m["val_loss"]) for m in metrics if "val_loss" in m]},
                     title=os.path.basename(os.path.normpath(run_dir)), x_label="step", y_label="loss per target token")


def main(argv=None):
    # ---- 1. settings and the run folder ------------------------------------------------------
    args = parse_settings(argv)
    distributed.start(args.device)  # under torchrun: join the other processes (see common/distributed.py)
    rank0, world = distributed.rank() == 0, distributed.world_size()
    if args.batch_size < world:
        raise PhysloraError(f"--batch-size {args.batch_size}: the rows of each micro-batch are shared among the "
                            f"{world} processes; use at least {world} (a multiple of {world} keeps all busy)")
    run_dir = distributed.from_rank0((args.out or new_run_dir()) if rank0 else None)
    if not args.resume and rank0:  # rank 0 alone writes the run folder; the others log to /dev/null
        check_run_dir(run_dir, args.overwrite)  # refused now if it holds another run; replaced with config.json
    metrics_path = os.path.join(run_dir, "metrics.jsonl") if rank0 else os.devnull

    # ---- 2. model -----------------------------------------------------------------------------
    with distributed.rank0_first():  # a model to download is fetched once
        model, tokenizer = load_model(args.model, DTYPES[args.dtype], args.device)
    torch.manual_seed(args.seed + distributed.rank())  # each process its own dropout masks (DDP copies rank 0's LoRA)
    if args.resume:
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None:
            raise PhysloraError(f"--resume {run_dir}: no checkpoint in {run_dir}/checkpoints; start it again "
                                f"with --overwrite")
        # LoRA weights and this process's RNG states as they were at that step
        state = load_checkpoint(checkpoint, model, distributed.rank())
    else:
        if args.init_adapter:  # the adapter's own settings go into config.json, so it says what was trained
            lora = load_adapter(model, args.init_adapter)
            args.rank, args.alpha, args.dropout, args.targets, args.rslora = (
                lora.rank, lora.alpha, lora.dropout, ",".join(lora.targets), lora.rslora)
        else:
            inject(model, LoRASettings(args.rank, args.alpha, args.dropout, parse_targets(args.targets),
                                       args.rslora))
        state = {"step": 0, "best": None}
    model.checkpoint_layers = args.grad_checkpointing
    counts = parameter_counts(model)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=args.lr, weight_decay=args.weight_decay)
    if args.resume:
        optimizer.load_state_dict(state["optimizer"])
    # Under torchrun, DDP sums the processes' gradients in backward, of the parameters that require grad only
    # (LoRA's A and B); at the start it copies rank 0's weights to the others.
    ddp = DistributedDataParallel(MicroBatchLoss(model)) if world > 1 else None

    # ---- 3. data ------------------------------------------------------------------------------
    with distributed.rank0_first():  # the default data, if absent, is generated once
        train_examples, train_report = load_split(args, tokenizer, "train")
    val_examples, val_report = load_split(args, tokenizer, "val")
    if args.resume:
        check_same_data(run_dir, {"train": train_report, "val": val_report})
    windows = training_windows([len(e.input_ids) for e in train_examples], args.batch_size, args.grad_accum,
                               args.epochs, args.seed, args.max_len if args.pack else None)
    total_steps = len(windows)
    warmup = args.warmup_steps if args.warmup_steps is not None else max(1, round(WARMUP_SHARE * total_steps))
    last_step = min(total_steps, args.max_steps or total_steps)
    if state["step"] > last_step:  # at last_step the loop is done: the adapter is (re)written from that checkpoint
        raise PhysloraError(f"--resume {run_dir}: already at step {state['step']}, past --max-steps {last_step}; "
                            "pass a larger --max-steps")
    plan_padding = padding_share(train_examples, [rows for _, batches in windows for rows in batches],
                                 args.pad_multiple)
    print(f"model {args.model} ({args.dtype}): {counts['total']:,} parameters, {counts['trainable']:,} trainable "
          f"({counts['percent']:.2f}%, LoRA r={args.rank} on {args.targets})")
    for name, report in (("train", train_report), ("val", val_report)):
        print(f"data {name}: {report['examples']} examples from {report['path']} ({report['truncated']} prompts "
              f"truncated to --max-len {args.max_len}, {report['dropped']} targets too long and left out, "
              f"{report['answer_only']} cut after their answer lines)")
    print(f"plan: {total_steps} steps over --epochs {args.epochs}, each step --grad-accum × --batch-size = "
          f"{args.grad_accum} × {args.batch_size} {'packed ' if args.pack else ''}rows, warmup {warmup}, "
          f"padding {plan_padding:.1%} of tokens; run folder {run_dir}")

    if args.resume:  # forget what was logged after the checkpoint: those steps run again
        metrics = [m for m in read_jsonl(metrics_path) if m["step"] <= state["step"]]
        with open(metrics_path, "w") as f:
            f.writelines(json.dumps(m) + "\n" for m in metrics)
    else:
        metrics = []
        settings = {k: v for k, v in vars(args).items() if k not in PER_INVOCATION}
        config = {"settings": settings, "invocation": {k: getattr(args, k) for k in PER_INVOCATION},
                  "versions": {"python": platform.python_version(), **{name: importlib.metadata.version(name)
                               for name in ("torch", "safetensors", "tokenizers", "numpy", "huggingface-hub")}},
                  "data": {"train": train_report, "val": val_report},
                  "model": {k: v for k, v in vars(model.config).items() if k != "extra"}, "parameters": counts,
                  "plan": {"steps": total_steps, "warmup_steps": warmup, "padding_share": plan_padding}}
        if rank0:
            start_run_dir(run_dir)  # only now: a run that failed before leaves no folder, or --overwrite's old run
            with open(os.path.join(run_dir, "config.json"), "w") as f:
                json.dump(config, f, indent=2)
        val_loss = evaluate(model, val_examples, args.batch_size, tokenizer.pad_id, args.device, args.pad_multiple)
        metrics.append({"step": 0, "epoch": 0.0, "val_loss": val_loss})
        append_jsonl(metrics_path, metrics[-1])
        print(f"step 0: val loss {val_loss:.4f} ({'the initial adapter' if args.init_adapter else 'the base model'})")

    # ---- 4. the loop --------------------------------------------------------------------------
    model.train()
    progress = Progress(last_step, start=state["step"])
    started, step = time.perf_counter(), state["step"]
    tokens_seen = step_seconds = 0  # over training steps only, evaluations excluded
    try:
        for step in range(state["step"] + 1, last_step + 1):
            began = time.perf_counter()
            epoch, micro_batches = windows[step - 1]
            lr = learning_rate(step, args.lr, warmup, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            # Under torchrun each process takes its share of the rows of every micro-batch; one left without
            # rows runs a row of padding (no target: zero gradient), as every process joins DDP's gradient sum.
            batches = [collate(train_examples, distributed.shard(rows) or [[]], tokenizer.pad_id, args.device,
                               args.pad_multiple) for rows in micro_batches]
            loss = train_window(model, batches, ddp)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(parameters, args.grad_clip or math.inf))
            for what, value in (("the training loss", loss), ("the gradient norm", grad_norm)):
                if not math.isfinite(value):
                    raise stop(what, value, step, run_dir, args)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

            tokens = distributed.total(sum(batch.tokens for batch in batches))
            padding = distributed.total(sum(batch.padding_tokens for batch in batches))
            seconds = time.perf_counter() - began
            tokens_seen, step_seconds = tokens_seen + tokens, step_seconds + seconds
            metrics.append({"step": step, "epoch": round(epoch, 4), "loss": loss, "lr": lr, "grad_norm": grad_norm,
                            "tokens_per_s": tokens / seconds, "padding_share": padding / (tokens + padding),
                            "peak_memory_mib": peak_memory_mib(args.device)})
            append_jsonl(metrics_path, metrics[-1])
            progress.update(step, f"loss {loss:.4f} | {tokens / seconds:.0f} tok/s")

            if step % args.eval_every == 0 or step == last_step:
                val_loss = evaluate(model, val_examples, args.batch_size, tokenizer.pad_id, args.device, args.pad_multiple)
                if not math.isfinite(val_loss):
                    raise stop("the val loss", val_loss, step, run_dir, args)
                if state["best"] is None or val_loss < state["best"]["val_loss"]:
                    state["best"] = {"step": step, "val_loss": val_loss}
                metrics.append({"step": step, "epoch": round(epoch, 4), "val_loss": val_loss})
                append_jsonl(metrics_path, metrics[-1])
                rng_states = distributed.gather([rng_state()])  # every process's, for its dropout after a resume
                if rank0:
                    save_checkpoint(run_dir, step, model, optimizer, {"epoch": epoch, "best": state["best"]},
                                    base_model=args.model, rng_states=rng_states)
                    prune_checkpoints(run_dir, keep={step, state["best"]["step"]})
                    write_loss_chart(run_dir, metrics)
                progress.print(f"step {step}: val loss {val_loss:.4f} (best {state['best']['val_loss']:.4f} "
                               f"at step {state['best']['step']})")
    except KeyboardInterrupt:
        checkpoint = latest_checkpoint(run_dir)
        raise Interrupted(f"interrupted at step {step}; " + (
            f"continue from {checkpoint} with: python train.py --resume {run_dir}" if checkpoint else
            f"no checkpoint yet (one every --eval-every {args.eval_every} steps): start again with --overwrite")
        ) from None
    finally:
        progress.close()

    # ---- 5. finish ----------------------------------------------------------------------------
    if not rank0:
        return  # rank 0 saves the adapter
    with interrupted_means(f"python train.py --resume {run_dir}"):
        write_loss_chart(run_dir, metrics)
        save_adapter(model, run_dir, base_model=args.model)
    best = state["best"]
    loss, val_loss = (next(m[key] for m in reversed(metrics) if key in m) for key in ("loss", "val_loss"))
    print(f"done: step {last_step}/{total_steps} (epoch {windows[last_step - 1][0]:.2f}) in "
          f"{format_duration(time.perf_counter() - started)} | train loss {loss:.4f} | val loss {val_loss:.4f} "
          f"(best {best['val_loss']:.4f} at step {best['step']}, checkpoints/step-{best['step']}) | "
          f"{f'{tokens_seen / step_seconds:.0f} tok/s' if step_seconds else 'no step left to run'} | "
          f"padding {plan_padding:.1%} | peak memory "
          f"{peak_memory_mib(args.device) / 1024:.2f} GiB | adapter in {run_dir}")
    if args.push_to_hub:
        print(f"pushed the adapter to {push_to_hub(run_dir, args.push_to_hub)}")


if __name__ == "__main__":
    run_main(main)
