"""One training step (random Qwen2.5-0.5B shape, LAYERS, DTYPE, METHOD=physlora|peft): median of 3 step times, then a torch.profiler table (NOPROF=1: times only)."""
import os, sys, time
sys.path.insert(0, "/work/main")
import torch
from benchmarks.shapes import QWEN25_05B, write_random_folder
from benchmarks.train_suite import physlora_step, peft_step
layers = int(os.environ.get("LAYERS", "4"))
dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[os.environ.get("DTYPE", "bf16")]
method = os.environ.get("METHOD", "physlora")
folder = "/tmp/prof_folder_%d" % layers
if not os.path.exists(folder):
    write_random_folder({**QWEN25_05B, "num_hidden_layers": layers}, folder)
batch = torch.randint(0, QWEN25_05B["vocab_size"], (4, 256), generator=torch.Generator().manual_seed(0))
lora = dict(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"])
step = {"physlora": physlora_step, "peft": peft_step}[method](folder, dtype, batch, lora)
step(); step()
ts = []
for _ in range(3):
    t = time.perf_counter(); step(); ts.append(time.perf_counter() - t)
print(method, dtype, "step s", sorted(ts)[1])
if os.environ.get("NOPROF"): sys.exit()
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
    step()
print(prof.key_averages(group_by_input_shape=os.environ.get("SHAPES") == "1").table(sort_by="self_cpu_time_total", row_limit=int(os.environ.get("ROWS", "25")), max_name_column_width=40, max_shapes_column_width=70))
