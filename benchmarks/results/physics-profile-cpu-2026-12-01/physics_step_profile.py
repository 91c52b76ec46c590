"""Profile train.py's loop on the physics workload (bench.py train --workloads physics's setting): 1 warm-up
window of 8 × 2 examples, then 2 profiled; the top operators, the big ones by shape, and the products' rate."""
import sys, time, tempfile
sys.path.insert(0, ".")
import torch
from benchmarks.train_suite import physics_examples, physics_loop
folder, pad_id, examples = physics_examples(tempfile.mkdtemp(), 4 * 16)
step, windows = physics_loop(folder, pad_id, examples)
step(windows[0])
from torch.profiler import profile, ProfilerActivity
t = time.perf_counter()
with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
    for window in windows[1:3]: step(window)
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
