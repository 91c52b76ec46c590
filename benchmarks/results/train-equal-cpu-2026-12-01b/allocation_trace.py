"""One fp32 equal-work step under torch.profiler with profile_memory; writes /tmp/step_trace.json for heap_gaps.py.
Needs /tmp/prof_folder_24 (step_memory.py writes it). Run from the repository root."""
import sys, os, json
sys.path.insert(0, ".")
import torch
from benchmarks.shapes import QWEN25_05B
from benchmarks.train_suite import physlora_step
folder = "/tmp/prof_folder_24"
batch = torch.randint(0, QWEN25_05B["vocab_size"], (4, 256), generator=torch.Generator().manual_seed(0))
lora = dict(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"])
step = physlora_step(folder, torch.float32, "cpu", batch, lora)
step()
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=False) as prof:
    step()
prof.export_chrome_trace("/tmp/step_trace.json")
