"""Profile train.py's loop on the physics workload (bench.py train --workloads physics's setting): 1 warm-up
window of 8 × 2 examples, then 2 profiled; the top operators, the big ones by shape, and the products' rate."""
import sys, time, tempfile
sys.path.insert(0, ".")
import torch
from benchmarks.train_suite import physics_examples, PHYSICS_LORA, PHYSICS_BATCH, PHYSICS_ACCUMULATION
import train
from data.batching import PAD_MULTIPLE, collate, training_windows
from lora.adapter import LoRASettings, inject
from model.weights import build_model, read_hf_folder
work = tempfile.mkdtemp()
folder, pad_id, examples = physics_examples(work, 4 * 16)
model = build_model(*read_hf_folder(folder), torch.bfloat16, "cpu", source=folder)
inject(model, LoRASettings(rank=8, alpha=32, dropout=0.05, targets=("q_proj", "v_proj")))
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=2e-4)
windows = training_windows([len(e.input_ids) for e in examples], PHYSICS_BATCH, PHYSICS_ACCUMULATION, 1, seed=0)
def step(window):
    batches = [collate(examples, rows, pad_id, multiple=PAD_MULTIPLE) for rows in window]
    train.train_window(model.train(), batches)
    torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step(); opt.zero_grad(set_to_none=True)
step(windows[0][1])
from torch.profiler import profile, ProfilerActivity
t = time.perf_counter()
with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
    for _, w in windows[1:3]: step(w)
print("profiled 2 windows: %.1f s" % (time.perf_counter() - t))
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=40))
ka = prof.key_averages(group_by_input_shape=True)
for name in ("aten::copy_", "aten::mul", "aten::cat", "aten::mul_", "aten::silu", "aten::add", "aten::addcmul", "aten::sum"):
    rows = sorted([e for e in ka if e.key == name], key=lambda e: -e.self_cpu_time_total)[:6]
    for e in rows:
        print(name, "%.0f ms" % (e.self_cpu_time_total / 1e3), e.count, str(e.input_shapes)[:150])
# The matrix products' achieved rate: 2·M·K·N FLOPs of every aten::mm (and bmm) over their self time.
flops = seconds = 0.0
for e in ka:
    if e.key in ("aten::mm", "aten::bmm") and e.input_shapes and len(e.input_shapes[0]) >= 2:
        a, b = e.input_shapes[0], e.input_shapes[1]
        batch = a[0] if e.key == "aten::bmm" else 1
        flops += 2 * batch * a[-2] * a[-1] * b[-1] * e.count
        seconds += e.self_cpu_time_total / 1e6
print("products: %.2f TFLOP in %.2f s = %.2f TFLOP/s" % (flops / 1e12, seconds, flops / seconds / 1e12))
