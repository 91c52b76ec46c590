"""fp32 step memory: RSS (file-backed weights vs anonymous), the tensors autograd saves, and the peak of a second step.

Run from the repository root; MALLOC_MMAP_THRESHOLD_=131072 in the environment gives the glibc experiment of memory_breakdown.txt.
"""
import os, sys
sys.path.insert(0, "/work/main")
import torch
from benchmarks.shapes import QWEN25_05B, write_random_folder
from benchmarks.timing import reset_peak_rss, peak_rss_gib
def rss():
    d = {}
    for line in open("/proc/self/status"):
        if line.split(":")[0] in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            d[line.split(":")[0]] = round(int(line.split()[1]) / 2**20, 2)
    return d
layers = int(os.environ.get("LAYERS", "24"))
folder = "/tmp/prof_folder_%d" % layers
if not os.path.exists(folder):
    write_random_folder({**QWEN25_05B, "num_hidden_layers": layers}, folder)
dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[os.environ.get("DTYPE", "fp32")]
print("start", rss())
import train
from data.batching import Batch
from lora.adapter import LoRASettings, inject
from model.weights import build_model, read_hf_folder
model = build_model(*read_hf_folder(folder), dtype, "cpu", source=folder)
print("loaded", rss())
inject(model, LoRASettings(rank=8, alpha=16, dropout=0.05, targets=("q_proj", "v_proj")))
batch = torch.randint(0, QWEN25_05B["vocab_size"], (4, 256), generator=torch.Generator().manual_seed(0))
mb = Batch(batch, batch, None, None, batch.numel(), batch[:, 1:].numel(), 0)
saved = {}
def pack(t):
    key = (t.untyped_storage().data_ptr())
    saved[key] = (t.untyped_storage().nbytes(), tuple(t.shape), t.dtype)
    return t
with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
    train.train_window(model.train(), [mb])
tot = sum(v[0] for v in saved.values())
print("saved tensors GiB", round(tot / 2**30, 2), "count", len(saved))
from collections import Counter
c = Counter()
for nbytes, shape, dt in saved.values():
    c[(shape, str(dt))] += nbytes
for k, v in c.most_common(15): print(round(v / 2**20, 1), "MiB", k)
print("after step", rss())
reset_peak_rss()
train.train_window(model.train(), [mb])
print("peak of 2nd step GiB", round(peak_rss_gib(), 2), rss())
