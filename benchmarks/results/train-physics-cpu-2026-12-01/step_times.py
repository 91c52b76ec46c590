"""Per-step times of the physics workload in train.py's loop (run from the repository root; MULT=1 pads to no multiple)."""
import sys, time, tempfile, os
sys.path.insert(0, os.getcwd())
import torch
from benchmarks import train_suite as ts
import train
from data.batching import collate, training_windows, PAD_MULTIPLE
from lora.adapter import LoRASettings, inject
from model.weights import build_model, read_hf_folder
mult = int(os.environ.get("MULT", PAD_MULTIPLE))
with tempfile.TemporaryDirectory() as d:
    folder, pad_id, examples = ts.physics_examples(d, 7 * 16)
    model = build_model(*read_hf_folder(folder), torch.bfloat16, "cpu", source=folder)
    inject(model, LoRASettings(rank=8, alpha=32, dropout=0.05, targets=("q_proj", "v_proj")))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-4)
    windows = training_windows([len(e.input_ids) for e in examples], 8, 2, 1, seed=0)
    for step, (_, window) in enumerate(windows[:7]):
        s = time.perf_counter()
        batches = [collate(examples, rows, pad_id, multiple=mult) for rows in window]
        train.train_window(model.train(), batches)
        torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step(); opt.zero_grad(set_to_none=True)
        print(step, "widths", [b.input_ids.shape[1] for b in batches], "answer", sum(b.target_tokens for b in batches),
              "%.2f s" % (time.perf_counter() - s), flush=True)
