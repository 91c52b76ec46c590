"""Generation speed: tokens/s of our KV-cache sampler against transformers' generate, side by side.

Greedy, a 64-token prompt per row, 128 new tokens with no early stop, at batch 1 and batch 16 (rows
of the same length: no padding). Both stacks read the same HF folder, in the same dtype:
  smollm2               the default model's real weights (SmolLM2-135M-Instruct, exported from its GGUF)
  qwen2.5-0.5b-random   Qwen2.5-0.5B's shapes with random weights
  llama-3.2-1b-random   Llama-3.2-1B's shapes with random weights (slow on a CPU: opt in)
Each stack loads the model in a fresh process of its own, so its peak memory is its own, and the
stacks take turns: per batch size each is warmed up, then --reps rounds time one generation of each,
the order alternating from round to round. This machine's speed drifts, at times by 2× within minutes:
stacks timed in turn meet the same conditions, where stacks timed one after the other would not. The
ratio to transformers is the median of the rounds' ratios, tokens/s the median of each stack's rounds.
The floor: a decoding step reads every weight once, so at batch 1 tokens/s can't exceed
(measured bandwidth) / (weight bytes); the table gives the share of that bound reached. On CPU the
bandwidth is a large sum's read rate and the memory the peak RSS; on CUDA (--device cuda) it is a
device-to-device copy's rate (bytes read + written) and the memory torch's peak allocation, and our
decoding runs as a CUDA graph (`physlora`) and eagerly (`physlora eager`, what the graph saves).
"""
import contextlib
import functools
import os
import statistics
import tempfile
import time

import torch

from benchmarks.shapes import LLAMA32_1B, QWEN25_05B, write_random_folder
from benchmarks.timing import (Worker, alternating_rounds, environment, format_row, paired_ratios, peak_memory_gib,
                               positive_int, reset_peak_memory, save_results, synchronize)
from common.cli import DTYPES
from common.errors import PhysloraError

PROMPT_TOKENS, NEW_TOKENS = 64, 128
MODELS = ("smollm2", "qwen2.5-0.5b-random", "llama-3.2-1b-random")
COLUMNS = ("model", "dtype", "batch", "stack", "tokens/s", "% of floor", "peak GiB", "vs transformers", "rounds")
WIDTHS = (20, 5, 5, 14, 9, 10, 8, 15, 11)


def add_arguments(parser):
    parser.add_argument("--models", nargs="+", choices=MODELS, default=["smollm2", "qwen2.5-0.5b-random"],
                        help="default: smollm2 qwen2.5-0.5b-random")
    parser.add_argument("--dtypes", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"],
                        help="weights and activations of both stacks; default: fp32 bf16")
    parser.add_argument("--batches", nargs="+", type=positive_int, default=[1, 16],
                        help="rows generated at once; default: 1 16")
    parser.add_argument("--reps", type=positive_int, default=5,
                        help="timed rounds per batch size, after a warm-up; each round times every stack once; "
                             "default: 5")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="default: cpu")
    parser.add_argument("--no-save", action="store_true", help="print the table only")


def write_folder(name, folder):
    """An HF folder for `name` that both stacks read."""
    if name == "smollm2":
        from model.export import export_hf_folder
        from model.loading import load_model
        return export_hf_folder(*load_model("smollm2-135m-instruct"), folder)
    return write_random_folder(QWEN25_05B if name.startswith("qwen") else LLAMA32_1B, folder)


def bandwidth_gbs(device):
    """Memory bandwidth, best of 5 (GB/s): on CPU a 512 MiB fp32 sum's read rate, on CUDA a 1 GiB
    device-to-device copy's (bytes read + bytes written)."""
    if device == "cuda":
        source = torch.ones(2**28, device=device)
        target, moved = torch.empty_like(source), 2 * source.numel() * 4
        work = functools.partial(target.copy_, source)
    else:
        source = torch.ones(2**27)
        moved, work = source.numel() * 4, source.sum
    best = float("inf")
    for _ in range(5):
        synchronize(device)
        start = time.perf_counter()
        work()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return moved / best / 1e9


def ours(folder, dtype, device, decode="auto"):
    from model.sampler import SamplingParams, generate
    from model.weights import build_model, read_hf_folder

    model = build_model(*read_hf_folder(folder), dtype, device, source=folder)

    def run(prompts):
        outputs = generate(model, prompts, SamplingParams(max_new_tokens=NEW_TOKENS), [], 0, decode=decode)
        return sum(len(o) for o in outputs)
    return model, run


def theirs(folder, dtype, device):
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()

    def run(prompts):
        ids = torch.tensor(prompts, device=device)
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS,
                                 min_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0)
        return (out.shape[1] - ids.shape[1]) * len(prompts)
    return model, run


STACKS = {"transformers": theirs, "physlora": ours, "physlora eager": functools.partial(ours, decode="eager")}


def prompts_of(batch, vocab):
    return torch.randint(3, vocab, (batch, PROMPT_TOKENS), generator=torch.Generator().manual_seed(batch)).tolist()


def timed(run, prompts, device):
    """Seconds of one generation, checked to produce every token."""
    synchronize(device)
    start = time.perf_counter()
    produced = run(prompts)
    synchronize(device)
    if produced != len(prompts) * NEW_TOKENS:
        raise RuntimeError(f"a generation produced {produced} tokens, expected {len(prompts) * NEW_TOKENS}")
    return time.perf_counter() - start


def serve_stack(stack, folder, dtype_name, device):
    """A worker's functions (benchmarks.timing.Worker): the stack loaded once, then 'timed' (seconds of one
    generation at a batch size) and 'memory' (its weight bytes, and its peak since loading)."""
    model, run = STACKS[stack](folder, DTYPES[dtype_name], device)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())  # tied matrices counted once
    reset_peak_memory(device)
    return {"timed": lambda batch: timed(run, prompts_of(batch, model.config.vocab_size), device),
            "memory": lambda: {"weight_bytes": weight_bytes, "peak_gib": peak_memory_gib(device)}}


def time_stacks(workers: dict, batches, reps) -> dict:
    """{stack: {batch: [seconds of each round]}}: per batch size a warm-up generation each, then `reps` rounds."""
    seconds = {stack: {} for stack in workers}
    for batch in batches:
        for worker in workers.values():
            worker.call("timed", batch)  # warm-up
        timers = {stack: functools.partial(worker.call, "timed", batch) for stack, worker in workers.items()}
        for stack, times in alternating_rounds(timers, reps).items():
            seconds[stack][batch] = times
    return seconds


def run(args):
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise PhysloraError("bench.py generate: needs transformers; pip install -r requirements-dev.txt") from None
    if args.device == "cuda" and not torch.cuda.is_available():
        raise PhysloraError("bench.py generate --device cuda: no CUDA device is visible")
    env = environment(args.device)
    bandwidth = bandwidth_gbs(args.device)
    stacks = ("transformers", "physlora") + (("physlora eager",) if args.device == "cuda" else ())
    print(f"{env['device']}, torch {env['torch']}, prompt {PROMPT_TOKENS} + {NEW_TOKENS} new tokens, greedy, "
          f"{args.reps} alternating rounds, medians; bandwidth {bandwidth:.1f} GB/s")
    print(format_row(COLUMNS, WIDTHS))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            folder = write_folder(name, os.path.join(tmp, name))
            for dtype_name in args.dtypes:
                with contextlib.ExitStack() as workers_alive:
                    workers = {stack: workers_alive.enter_context(Worker(serve_stack, stack, folder, dtype_name,
                                                                         args.device)) for stack in stacks}
                    seconds = time_stacks(workers, args.batches, args.reps)
                    memory = {stack: worker.call("memory") for stack, worker in workers.items()}
                for batch in args.batches:
                    theirs_seconds = seconds["transformers"][batch]
                    for stack, m in memory.items():
                        speed = batch * NEW_TOKENS / statistics.median(seconds[stack][batch])
                        ratios = paired_ratios(theirs_seconds, seconds[stack][batch])
                        floor = bandwidth * 1e9 / m["weight_bytes"] * batch  # tokens/s if bandwidth-bound
                        row = {"model": name, "dtype": dtype_name, "batch": batch, "stack": stack,
                               "tokens_per_s": speed, "share_of_bandwidth_floor": speed / floor if batch == 1 else None,
                               "peak_gib": m["peak_gib"], "speedup": statistics.median(ratios),
                               "speedup_range": [min(ratios), max(ratios)]}
                        rows.append(row)
                        share = f"{100 * row['share_of_bandwidth_floor']:.0f}%" if batch == 1 else "-"
                        print(format_row((name, dtype_name, batch, stack, f"{speed:.1f}", share,
                                          f"{m['peak_gib']:.2f}", f"{row['speedup']:.2f}x", "{:.2f}-{:.2f}x".format(
                                              *row["speedup_range"])), WIDTHS), flush=True)
    if not args.no_save:
        payload = {"prompt_tokens": PROMPT_TOKENS, "new_tokens": NEW_TOKENS, "reps": args.reps,
                   "bandwidth_gbs": bandwidth, "rows": rows}
        print("saved", save_results(args.device, "generate", "+".join(args.dtypes), payload))
