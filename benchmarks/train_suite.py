"""Training speed and memory: one LoRA optimizer step of train.py against transformers + peft.

The same random-weight Qwen2.5-0.5B-shaped model (saved once as an HF folder, loaded by each side
the way a user would), the same batch of 4 × 256 tokens with every next token a target, LoRA r=8
(alpha 16, dropout 0.05) on q_proj and v_proj, AdamW, gradient clipping at 1.0, in each --dtype:
  peft       model(input_ids, labels=…).loss.backward() + clip + AdamW, as peft's examples do
  physlora   train.train_window (chunked cross-entropy, fp32 LoRA) + clip + AdamW: the same work
  physlora+gc  the same with --grad-checkpointing: each block recomputed in backward (more work, less memory)
Each configuration runs in a fresh process, so its peak RSS is its own: the peak is reset
(/proc/self/clear_refs) after the warm-up step and read (VmHWM) after the timed steps, so it is
the memory one optimizer step needs, weights included. tokens/s = tokens / median step time.
"""
import functools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
import os
import statistics
import tempfile
import time

import torch

from benchmarks.shapes import QWEN25_05B
from benchmarks.timing import environment, format_row, peak_rss_gib, reset_peak_rss, save_results
from common.errors import PhysloraError

COLUMNS = ("dtype", "method", "tokens/s", "step s", "peak GiB", "vs peft")
WIDTHS = (5, 11, 9, 7, 8, 22)


def add_arguments(parser):
    parser.add_argument("--dtypes", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=256, help="tokens per row")
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps after one warm-up step")
    parser.add_argument("--layers", type=int, default=QWEN25_05B["num_hidden_layers"],
                        help="fewer layers for a quick look (default: Qwen2.5-0.5B's 24)")
    parser.add_argument("--no-save", action="store_true", help="print the table only")


def write_random_model(folder, layers):
    """A random-weight Qwen2.5-0.5B-shaped HF folder (config.json + model.safetensors), fp32."""
    from model.config import ModelConfig
    from model.export import export_hf_folder
    from model.transformer import Transformer

    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_hf({**QWEN25_05B, "num_hidden_layers": layers}))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0, 0.02)

    export_hf_folder(model, None, folder)  # the benchmark feeds token ids


def physlora_step(folder, dtype, batch, lora, checkpointing=False):
    import train
    from data.batching import Batch
    from lora.adapter import LoRASettings, inject
    from model.weights import build_model, read_hf_folder

    model = build_model(*read_hf_folder(folder), dtype, "cpu", source=folder)  # no tokenizer: ids are given
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


def peft_step(folder, dtype, batch, lora):
    import peft
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
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


METHODS = {"peft": peft_step, "physlora": physlora_step,
           "physlora+gc": functools.partial(physlora_step, checkpointing=True)}


def measure(method, folder, dtype_name, batch_shape, steps):
    """In a fresh process: build the method's step, warm up, time `steps` steps, read the peak RSS."""
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    batch = torch.randint(0, QWEN25_05B["vocab_size"], batch_shape, generator=torch.Generator().manual_seed(0))
    lora = dict(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"])
    step = METHODS[method](folder, dtype, batch, lora)
    step()
    reset_peak_rss()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "peak_gib": peak_rss_gib()}


def run(args):
    try:
        import peft  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise PhysloraError("bench.py train: needs transformers and peft; "
                            "pip install -r requirements-dev.txt") from None
    env = environment("cpu")
    tokens = args.batch * args.tokens
    print(f"{env['device']}, torch {env['torch']}, {args.layers}-layer Qwen2.5-0.5B shape, batch {args.batch} × "
          f"{args.tokens} tokens, LoRA r=8 on q,v, median of {args.steps} steps")
    print(format_row(COLUMNS, WIDTHS))
    context = multiprocessing.get_context("spawn")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "qwen2.5-0.5b-random")
        write_random_model(folder, args.layers)
        for dtype_name in args.dtypes:
            measured = {}
            for method in METHODS:
                with ProcessPoolExecutor(max_workers=1, mp_context=context) as fresh_process:
                    measured[method] = fresh_process.submit(measure, method, folder, dtype_name,
                                                            (args.batch, args.tokens), args.steps).result()
            for method, m in measured.items():
                peft_m = measured["peft"]
                row = {"dtype": dtype_name, "method": method, "tokens_per_s": tokens / m["seconds"],
                       "step_s": m["seconds"], "peak_gib": m["peak_gib"],
                       "speedup": peft_m["seconds"] / m["seconds"], "memory_ratio": m["peak_gib"] / peft_m["peak_gib"]}
                rows.append(row)
                versus = f"{row['speedup']:.2f}x speed, {row['memory_ratio']:.2f}x mem"
                print(format_row((dtype_name, method, f"{row['tokens_per_s']:.0f}", f"{m['seconds']:.2f}",
                                  f"{m['peak_gib']:.2f}", versus), WIDTHS), flush=True)
    if not args.no_save:
        payload = {"batch": args.batch, "tokens": args.tokens, "layers": args.layers, "rows": rows}
        print("saved", save_results("cpu", "train", "+".join(args.dtypes), payload))
