"""Training speed and memory: one LoRA optimizer step of train.py against transformers + peft.

The same random-weight Qwen2.5-0.5B-shaped model (saved once as an HF folder, loaded by each side
the way a user would), the same batch of 4 × 256 tokens with every next token a target, LoRA r=8
(alpha 16, dropout 0.05) on q_proj and v_proj, AdamW, gradient clipping at 1.0, in each --dtype:
  peft       model(input_ids, labels=…).loss.backward() + clip + AdamW, as peft's examples do
  physlora   train.train_window (chunked cross-entropy, fp32 LoRA) + clip + AdamW: the same work
  physlora+gc  the same with --grad-checkpointing: each block recomputed in backward (more work, less memory)
Each configuration runs in a fresh process of its own, so its peak RSS is its own: the peak is reset
(/proc/self/clear_refs) after a warm-up step and read (VmHWM) after the timed steps, so it is the
memory one optimizer step needs, weights included. The processes take turns: --steps rounds time one
step of each, the order alternating (this machine's speed drifts, at times by 2× within minutes).
tokens/s = tokens / median step time; the ratio to peft is the median of the rounds' ratios.
The floor: the step's matmul FLOPs (`step_flops`: the least any stack must compute) at the rate
torch.matmul reaches on this machine for the step's most common product (the MLP's 896 → 4864
projection, forward and input gradient, over all the batch's tokens); "of floor" = floor / step time.

--workloads physics: the realistic workload, useful (target) tokens per second. The default model
(SmolLM2-135M-Instruct, real weights, exported once as an HF folder) trains on the physics train
set (generate_data.py physics, seed 0), batch 8 × 2 accumulation, LoRA r=8 alpha 32 on q,v:
  trainer    transformers' Trainer + peft, every example padded to one fixed length (the reference
             notebook's recipe; here the longest example rounded up to 64 tokens, so none is cut),
             labels on every real token, as its causal-LM collator does
  physlora   train.py's loop: length-bucketed batches (the longest first) padded to a multiple of 32 as
             train.py's default --pad-multiple, loss on the answer only, the lm_head skipped for
             positions without a target
Both see the same token ids (our tokenizer and chat template) and the same examples. The first
optimizer step is a warm-up; the next --physics-steps are timed; useful tokens/s = the answer
tokens of the timed steps / their time. Each run is a fresh process; --physics-rounds rounds run
both methods, the order alternating, and the ratio is the median of the rounds' ratios.
"""
import contextlib
import functools
import os
import statistics
import tempfile
import time

import torch

from benchmarks.shapes import QWEN25_05B, write_random_folder
from benchmarks.timing import (Worker, alternating_rounds, environment, format_row, in_fresh_process, median_ms,
                               paired_ratios, peak_memory_gib, positive_int, reset_peak_memory, save_results,
                               synchronize)
from common.cli import DTYPES
from common.errors import PhysloraError

COLUMNS = ("dtype", "method", "tokens/s", "step s", "of floor", "peak GiB", "vs peft")
WIDTHS = (5, 11, 9, 7, 8, 8, 34)


def add_arguments(parser):
    parser.add_argument("--dtypes", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"])
    parser.add_argument("--batch", type=positive_int, default=4)
    parser.add_argument("--tokens", type=positive_int, default=256, help="tokens per row")
    parser.add_argument("--steps", type=positive_int, default=5,
                        help="timed rounds after one warm-up step; each round times one optimizer step of every "
                             "method, in turn; default: 5")
    parser.add_argument("--layers", type=positive_int, default=QWEN25_05B["num_hidden_layers"],
                        help="fewer layers for a quick look (default: Qwen2.5-0.5B's 24)")
    parser.add_argument("--workloads", nargs="+", choices=("equal", "physics"), default=["equal", "physics"],
                        help="equal: every token labelled (speed and memory); physics: the realistic workload "
                             "(useful tokens/s); default: both")
    parser.add_argument("--physics-steps", type=positive_int, default=6,
                        help="timed optimizer steps of the physics workload (16 examples each); default: 6")
    parser.add_argument("--physics-rounds", type=positive_int, default=2,
                        help="physics workload: rounds of one run of each method, the order alternating "
                             "(Trainer first in odd rounds); the ratio is the median of the rounds'; default: 2")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the equal-work step runs (the physics workload runs on CPU); on CUDA the "
                             "memory column is torch's peak allocation instead of the peak RSS; default: cpu")
    parser.add_argument("--no-save", action="store_true", help="print the table only")


def physlora_step(folder, dtype, device, batch, lora, checkpointing=False):
    import train
    from data.batching import Batch
    from lora.adapter import LoRASettings, inject
    from model.weights import build_model, read_hf_folder

    model = build_model(*read_hf_folder(folder), dtype, device, source=folder)  # no tokenizer: ids are given
    inject(model, LoRASettings(rank=lora["r"], alpha=lora["lora_alpha"], dropout=lora["lora_dropout"],
                               targets=tuple(lora["target_modules"])))
    model.checkpoint_layers = checkpointing
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-4)
    micro_batch = Batch(batch, batch, None, None, batch.numel(), batch[:, 1:].numel(), 0)  # every token a target

    def step():
        train.train_window(model.train(), [micro_batch])
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def peft_step(folder, dtype, device, batch, lora):
    import peft
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device)
    model = peft.get_peft_model(model, peft.LoraConfig(task_type="CAUSAL_LM", **lora))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-4)

    def step():
        model.train()
        model(input_ids=batch, labels=batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def step_flops(config: dict, rows: int, tokens: int, lora_rank: int) -> dict:
    """Matmul FLOPs of one step with every next token a target and LoRA on q and v: the least any stack computes.

    Forward: 2 per weight per token through every linear layer (the lm_head only where there is a
    target), plus attention's q·kᵀ and p·v over the causal half of each square. Backward: frozen
    weights need only the input gradient, 2 per weight per token again, except in the first layer's
    q, k and v, whose input (the embeddings) needs none; attention's backward is twice its forward.
    LoRA, x → (x Aᵀ) Bᵀ: two products forward, four backward (A's and B's gradients, the gradient of
    x Aᵀ, and of x but in the first layer). Norms, RoPE, SiLU and the softmax are left out: they
    move bytes more than they compute. Returns the three parts, in FLOPs.
    """
    hidden, heads, layers = config["hidden_size"], config["num_attention_heads"], config["num_hidden_layers"]
    head_dim = config.get("head_dim", hidden // heads)
    q_features, kv_features = heads * head_dim, config["num_key_value_heads"] * head_dim
    per_layer = 2 * hidden * q_features + 2 * hidden * kv_features + 3 * hidden * config["intermediate_size"]
    positions, targets = rows * tokens, rows * (tokens - 1)
    forward = 2 * (positions * layers * per_layer + targets * config["vocab_size"] * hidden)
    first_layer_inputs = 2 * positions * hidden * (q_features + 2 * kv_features)
    lora_in, lora_out = 2 * hidden, q_features + kv_features  # summed over q_proj and v_proj
    lora_products = 2 * positions * lora_rank * (lora_in + lora_out)
    return {"linear": 2 * forward - first_layer_inputs,
            "lora": 3 * layers * lora_products - 2 * positions * lora_rank * lora_in,
            "attention": 3 * layers * rows * 2 * 2 * q_features * tokens * (tokens + 1) / 2}


def matmul_flops_per_s(dtype_name: str, positions: int, device: str = "cpu", reps: int = 20) -> float:
    """FLOP/s of the MLP up-projection's products at this many positions: forward x·Wᵀ and input gradient dy·W."""
    dtype = DTYPES[dtype_name]
    generator = torch.Generator().manual_seed(0)
    hidden, intermediate = QWEN25_05B["hidden_size"], QWEN25_05B["intermediate_size"]
    x = torch.randn(positions, hidden, generator=generator).to(device, dtype)
    weight = torch.randn(intermediate, hidden, generator=generator).to(device, dtype)
    dy = torch.randn(positions, intermediate, generator=generator).to(device, dtype)

    def products():
        torch.nn.functional.linear(x, weight)
        dy @ weight
    milliseconds = median_ms({"products": products}, device, reps)["products"]
    return 2 * 2 * positions * hidden * intermediate / (milliseconds / 1e3)


METHODS = {"peft": peft_step, "physlora": physlora_step,
           "physlora+gc": functools.partial(physlora_step, checkpointing=True)}


def build_step(method, folder, dtype_name, device, batch_shape):
    """The method's optimizer step on a fixed random batch, warmed up once; returns a function timing one step."""
    batch = torch.randint(0, QWEN25_05B["vocab_size"], batch_shape, generator=torch.Generator().manual_seed(0))
    lora = dict(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"])
    step = METHODS[method](folder, DTYPES[dtype_name], device, batch.to(device), lora)
    step()

    def timed_step():
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        return time.perf_counter() - start
    return timed_step


def serve_method(method, folder, dtype_name, device, batch_shape):
    """A worker's functions (benchmarks.timing.Worker): the method's step built and warmed up, then 'timed'
    (seconds of one more step) and 'peak' (the peak memory of the steps since the warm-up, weights included)."""
    timed_step = build_step(method, folder, dtype_name, device, batch_shape)
    reset_peak_memory(device)
    return {"timed": timed_step, "peak": lambda: peak_memory_gib(device)}


def run(args):
    if args.device == "cuda" and "physics" in args.workloads:
        raise PhysloraError("bench.py train --device cuda: the physics workload runs on CPU only; "
                            "add --workloads equal")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise PhysloraError("bench.py train --device cuda: no CUDA device is visible")
    if "equal" in args.workloads:
        run_equal_work(args)
    if "physics" in args.workloads:
        run_physics(args)


def require_oracles():
    try:
        import peft  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise PhysloraError("bench.py train: needs transformers and peft; "
                            "pip install -r requirements-dev.txt") from None


def run_equal_work(args):
    require_oracles()
    env = environment(args.device)
    tokens = args.batch * args.tokens
    print(f"{env['device']}, torch {env['torch']}, {args.layers}-layer Qwen2.5-0.5B shape, batch {args.batch} × "
          f"{args.tokens} tokens, LoRA r=8 on q,v, {args.steps} alternating rounds, medians")
    flops = sum(step_flops({**QWEN25_05B, "num_hidden_layers": args.layers}, args.batch, args.tokens, 8).values())
    floors = {}
    for dtype_name in args.dtypes:
        rate = in_fresh_process(matmul_flops_per_s, dtype_name, tokens, args.device)
        floors[dtype_name] = {"step_tflop": flops / 1e12, "matmul_tflop_per_s": rate / 1e12, "floor_s": flops / rate}
        print(f"floor {dtype_name}: {flops / 1e12:.2f} TFLOP a step at {rate / 1e12:.2f} TFLOP/s "
              f"(torch.matmul, {tokens} × 896 → 4864) = {flops / rate:.2f} s", flush=True)
    print(format_row(COLUMNS, WIDTHS))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "qwen2.5-0.5b-random")
        write_random_folder({**QWEN25_05B, "num_hidden_layers": args.layers}, folder)
        for dtype_name in args.dtypes:
            shape = (args.batch, args.tokens)
            with contextlib.ExitStack() as workers_alive:
                workers = {method: workers_alive.enter_context(Worker(serve_method, method, folder, dtype_name,
                                                                      args.device, shape)) for method in METHODS}
                seconds = alternating_rounds({method: functools.partial(worker.call, "timed")
                                              for method, worker in workers.items()}, args.steps)
                peak = {method: worker.call("peak") for method, worker in workers.items()}
            for method in METHODS:
                step_s, ratios = statistics.median(seconds[method]), paired_ratios(seconds["peft"], seconds[method])
                row = {"dtype": dtype_name, "method": method, "tokens_per_s": tokens / step_s, "step_s": step_s,
                       "share_of_floor": floors[dtype_name]["floor_s"] / step_s, "peak_gib": peak[method],
                       "speedup": statistics.median(ratios), "speedup_range": [min(ratios), max(ratios)],
                       "memory_ratio": peak[method] / peak["peft"]}
                rows.append(row)
                versus = "{:.2f}x speed ({:.2f}-{:.2f}), {:.2f}x mem".format(
                    row["speedup"], *row["speedup_range"], row["memory_ratio"])
                print(format_row((dtype_name, method, f"{row['tokens_per_s']:.0f}", f"{step_s:.2f}",
                                  f"{row['share_of_floor']:.0%}", f"{peak[method]:.2f}", versus), WIDTHS), flush=True)
    if not args.no_save:
        payload = {"batch": args.batch, "tokens": args.tokens, "layers": args.layers, "floors": floors, "rows": rows}
        print("saved", save_results(args.device, "train", "+".join(args.dtypes), payload))


PHYSICS_LORA = dict(r=8, lora_alpha=32, lora_dropout=0.05, target_modules=["q_proj", "v_proj"])
PHYSICS_BATCH, PHYSICS_ACCUMULATION = 8, 2


def physics_examples(workdir, count):
    """(HF folder of the default model, written in workdir, its pad id, `count` encoded physics train examples)."""
    from data.batching import encode_records
    from data.physics_dataset import generate
    from model.export import export_hf_folder
    from model.loading import load_model

    folder = os.path.join(workdir, "smollm2-135m-instruct")
    model, tokenizer = load_model("smollm2-135m-instruct")
    export_hf_folder(model, tokenizer, folder)
    splits, _ = generate({"train": count, "val": 0, "test_seen": 0, "test_unseen": 0}, seed=0, difficulty=0.2)
    return folder, tokenizer.pad_id, encode_records(splits["train"][:count], tokenizer, 512).examples


def physics_loop(folder, pad_id, examples):
    """train.py's loop set up for the physics workload: (step, windows). step(window) runs one optimizer
    step over the window's micro-batches, collating included, and returns their answer tokens."""
    import train
    from data.batching import PAD_MULTIPLE, collate, training_windows
    from lora.adapter import LoRASettings, inject
    from model.weights import build_model, read_hf_folder

    model = build_model(*read_hf_folder(folder), torch.bfloat16, "cpu", source=folder)
    inject(model, LoRASettings(rank=PHYSICS_LORA["r"], alpha=PHYSICS_LORA["lora_alpha"],
                               dropout=PHYSICS_LORA["lora_dropout"], targets=tuple(PHYSICS_LORA["target_modules"])))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-4)
    windows = training_windows([len(e.input_ids) for e in examples], PHYSICS_BATCH, PHYSICS_ACCUMULATION, 1, seed=0)

    def step(window):
        batches = [collate(examples, rows, pad_id, multiple=PAD_MULTIPLE) for rows in window]
        train.train_window(model.train(), batches)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return sum(batch.target_tokens for batch in batches)

    return step, [window for _, window in windows]


def physlora_physics(folder, pad_id, examples, steps):
    """Seconds and answer tokens of `steps` optimizer steps of train.py's loop, after one warm-up step."""
    step, windows = physics_loop(folder, pad_id, examples)
    seconds, answer_tokens = 0.0, 0
    for index, window in enumerate(windows[:steps + 1]):
        start = time.perf_counter()
        tokens = step(window)
        if index > 0:  # the first step warms up
            seconds += time.perf_counter() - start
            answer_tokens += tokens
    return {"seconds": seconds, "answer_tokens": answer_tokens}


def trainer_physics(folder, pad_id, examples, steps):
    """The same for transformers' Trainer + peft, every example padded to one length."""
    import peft
    import transformers

    length = -(-max(len(e.input_ids) for e in examples) // 64) * 64
    rows = [{"input_ids": e.input_ids + [pad_id] * (length - len(e.input_ids)),
             "attention_mask": [1] * len(e.input_ids) + [0] * (length - len(e.input_ids)),
             "labels": e.input_ids + [-100] * (length - len(e.input_ids)),
             "answer_tokens": len(e.input_ids) - e.prompt_length} for e in examples]
    answer_tokens = []  # per micro-batch, in the order the Trainer (which shuffles) consumed them

    def collate(features):
        answer_tokens.append(sum(f["answer_tokens"] for f in features))
        return transformers.default_data_collator([{k: v for k, v in f.items() if k != "answer_tokens"}
                                                   for f in features])

    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    model = peft.get_peft_model(model, peft.LoraConfig(task_type="CAUSAL_LM", **PHYSICS_LORA))
    step_times = []

    class StepTimer(transformers.TrainerCallback):
        def on_step_begin(self, *_, **__):
            self.start = time.perf_counter()

        def on_step_end(self, *_, **__):
            step_times.append(time.perf_counter() - self.start)

    settings = transformers.TrainingArguments(
        output_dir=os.path.join(os.path.dirname(folder), "trainer"), per_device_train_batch_size=PHYSICS_BATCH,
        gradient_accumulation_steps=PHYSICS_ACCUMULATION, max_steps=steps + 1, learning_rate=2e-4,
        max_grad_norm=1.0, lr_scheduler_type="constant", logging_strategy="no", save_strategy="no",
        report_to=[], use_cpu=True, dataloader_num_workers=0, seed=0, disable_tqdm=True,
        remove_unused_columns=False)  # keeps answer_tokens for the count above
    transformers.Trainer(model=model, args=settings, train_dataset=rows, data_collator=collate,
                         callbacks=[StepTimer()]).train()
    return {"seconds": sum(step_times[1:]), "answer_tokens": sum(answer_tokens[PHYSICS_ACCUMULATION:]),
            "padded_length": length}


def physics_run(method, measure_physics, *args):
    """measure_physics(*args) in a fresh process, with its useful tokens/s, printed as it comes."""
    run = in_fresh_process(measure_physics, *args)
    run["useful_tokens_per_s"] = run["answer_tokens"] / run["seconds"]
    print(f"  {method:9s} {run['useful_tokens_per_s']:8.1f} answer tokens/s "
          f"({run['answer_tokens']} in {run['seconds']:.1f}s)", flush=True)
    return run


def run_physics(args):
    require_oracles()
    env = environment("cpu")
    print(f"{env['device']}, torch {env['torch']}, SmolLM2-135M-Instruct bf16 on the physics train set, "
          f"{args.physics_steps} optimizer steps of {PHYSICS_BATCH} × {PHYSICS_ACCUMULATION} examples after a warm-up")
    with tempfile.TemporaryDirectory(prefix="physlora-bench-") as workdir:  # removed even if a measurement fails
        folder, pad_id, examples = physics_examples(workdir,
                                                    (args.physics_steps + 1) * PHYSICS_BATCH * PHYSICS_ACCUMULATION)
        # The Trainer's loop can't be stepped from outside, so the methods take turns run by run.
        measured = alternating_rounds(
            {method: functools.partial(physics_run, method, measure, folder, pad_id, examples, args.physics_steps)
             for method, measure in (("trainer", trainer_physics), ("physlora", physlora_physics))},
            args.physics_rounds)
    ratios = [ours["useful_tokens_per_s"] / theirs["useful_tokens_per_s"]
              for ours, theirs in zip(measured["physlora"], measured["trainer"])]
    rows = []
    for method, runs in measured.items():
        useful = statistics.median(run["useful_tokens_per_s"] for run in runs)
        speedup = statistics.median(ratios) if method == "physlora" else 1.0
        rows.append({"method": method, "useful_tokens_per_s": useful, "speedup": speedup, "runs": runs})
        spread = f" (rounds {min(ratios):.2f}-{max(ratios):.2f})" if method == "physlora" else ""
        print(f"  {method:9s} {useful:8.1f} answer tokens/s (median of {len(runs)})  "
              f"{speedup:.2f}x the Trainer{spread}", flush=True)
    if not args.no_save:
        payload = {"model": "smollm2-135m-instruct", "dtype": "bf16", "steps": args.physics_steps,
                   "batch": PHYSICS_BATCH, "accumulation": PHYSICS_ACCUMULATION,
                   "trainer_padded_length": measured["trainer"][0]["padded_length"], "rows": rows}
        print("saved", save_results("cpu", "train", "physics", payload))
