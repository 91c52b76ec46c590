"""train.py's loop on the physics workload (benchmarks.train_suite's setting: SmolLM2-135M bf16, 8 x 2 examples a
step, LoRA r=8 q,v), one process, alternating by step: attention with model/attention.py's backward ('own') against
torch's flash attention for the backward too ('flash'). Prints each step and the paired ratios.
Run from the repository root: .venv/bin/python benchmarks/results/attention-cpu-2026-12-01/physics_step_ab.py [steps]"""
import os, pickle, statistics, sys, time
sys.path.insert(0, ".")
import torch
import torch.nn.functional as F
import train
from benchmarks import train_suite
from data.batching import PAD_MULTIPLE, collate, training_windows
from lora.adapter import LoRASettings, inject
from model import transformer
from model.attention import attention
from model.weights import build_model, read_hf_folder

cache = "/tmp/physlora-physics-examples.pkl"
if not os.path.exists(cache):
    os.makedirs("/tmp/physlora-physics", exist_ok=True)
    pickle.dump(train_suite.physics_examples("/tmp/physlora-physics", 40 * 16), open(cache, "wb"))
folder, pad_id, examples = pickle.load(open(cache, "rb"))


def flash(q, k, v, mask, causal):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=k.shape[1] != q.shape[1])


model = build_model(*read_hf_folder(folder), torch.bfloat16, "cpu", source=folder)
inject(model, LoRASettings(rank=8, alpha=32, dropout=0.05, targets=("q_proj", "v_proj")))
params = [p for p in model.parameters() if p.requires_grad]
optimizer = torch.optim.AdamW(params, lr=2e-4)
windows = training_windows([len(e.input_ids) for e in examples], 8, 2, 1, seed=0)
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 16
times = {"own": [], "flash": []}
for step, (_, window) in enumerate(windows[:steps + 2]):
    # Both variants see every window: the same window runs twice, once each, the order alternating.
    order = ("own", "flash") if step % 2 == 0 else ("flash", "own")
    batches = [collate(examples, rows, pad_id, multiple=PAD_MULTIPLE) for rows in window]
    for name in order:
        transformer.attention = attention if name == "own" else flash
        start = time.perf_counter()
        train.train_window(model.train(), batches)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.zero_grad(set_to_none=True)  # no optimizer step: both see the same weights
        seconds = time.perf_counter() - start
        if step >= 2:
            times[name].append(seconds)
    if step >= 2:
        print(f"step {step}: widths {[b.input_ids.shape[1] for b in batches]} own {times['own'][-1]:.2f} s "
              f"flash {times['flash'][-1]:.2f} s", flush=True)
ratios = [f / o for o, f in zip(times["own"], times["flash"])]
print(f"median own {statistics.median(times['own']):.2f} s, flash {statistics.median(times['flash']):.2f} s; "
      f"flash/own per step: median {statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}), "
      f"{len(ratios)} steps")
