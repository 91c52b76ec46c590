"""Where the realistic physics training step spends its time: train.py's loop on the default model in
bf16 (batch 8 x 2 accumulation, LoRA r=8 alpha 32 on q,v), one warm-up step, then six timed steps,
each with its minor page faults; then a profile of a later step. Run from the repository root:
  PYTHONPATH=. python benchmarks/results/train-physics-cpu-2026-11-30/steps.py [--profile]
Environment: CHUNK_MIB=N sets the cross-entropy's chunk (model.loss.CHUNK_BYTES) to N MiB."""
import os
import re
import resource
import sys
import tempfile
import time

import torch

import model.loss
import train
from benchmarks.train_suite import PHYSICS_ACCUMULATION, PHYSICS_BATCH, physics_examples
from data.batching import collate, training_windows
from lora.adapter import LoRASettings, inject
from model.weights import build_model, read_hf_folder

if os.environ.get("CHUNK_MIB"):
    model.loss.CHUNK_BYTES = int(os.environ["CHUNK_MIB"]) * 2**20
with tempfile.TemporaryDirectory() as workdir:
    folder, pad_id, examples = physics_examples(workdir, 7 * PHYSICS_BATCH * PHYSICS_ACCUMULATION)
    net = build_model(*read_hf_folder(folder), torch.bfloat16, "cpu", source=folder)
inject(net, LoRASettings(rank=8, alpha=32, dropout=0.05, targets=("q_proj", "v_proj")))
params = [p for p in net.parameters() if p.requires_grad]
optimizer = torch.optim.AdamW(params, lr=2e-4)
windows = training_windows([len(e.input_ids) for e in examples], PHYSICS_BATCH, PHYSICS_ACCUMULATION, 1, seed=0)


def step(window):
    batches = [collate(examples, rows, pad_id) for rows in window]
    train.train_window(net.train(), batches)
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return batches


step(windows[0][1])
seconds = answer_tokens = 0
for _, window in windows[1:7]:
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    batches = step(window)
    took = time.perf_counter() - start
    seconds, answer_tokens = seconds + took, answer_tokens + sum(b.target_tokens for b in batches)
    print(f"step {took:.2f} s, {resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults} page faults, "
          f"micro-batches {[tuple(b.input_ids.shape) for b in batches]}")
peak = int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1)) / 2**20
print(f"answer tokens/s {answer_tokens / seconds:.1f}, peak RSS {peak:.2f} GiB")
if "--profile" in sys.argv:
    with torch.profiler.profile() as profile:
        step(windows[7 % len(windows)][1])
    print(profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
