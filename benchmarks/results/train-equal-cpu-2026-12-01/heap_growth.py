"""Where fp32 training memory goes beyond the tensors: glibc heap size vs bytes in use (mallinfo2) after each
layer's forward, step 1 and step 2, 24-layer Qwen2.5-0.5B shape, 4 x 256 tokens, r=8 q,v; PREGRAD=1 makes the
LoRA gradients before step 1. Run from the repository root; glibc settings through MALLOC_* variables."""
import os, sys, time, threading, ctypes
sys.path.insert(0, "/work/main")
import torch
from benchmarks.shapes import QWEN25_05B, write_random_folder
class MI2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6"); libc.mallinfo2.restype = MI2
def mi():
    m = libc.mallinfo2(); g = lambda x: round(x / 2**30, 2)
    return dict(heap=g(m.arena), inuse=g(m.uordblks), free=g(m.fordblks), mmapped=g(m.hblkhd), nmmap=m.hblks)
def rss():
    d = {}
    for line in open("/proc/self/status"):
        k = line.split(":")[0]
        if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            d[k] = round(int(line.split()[1]) / 2**20, 2)
    return d
folder = "/tmp/prof_folder_24"
if not os.path.exists(folder):
    write_random_folder(QWEN25_05B, folder)
import train
from data.batching import Batch
from lora.adapter import LoRASettings, inject
from model.weights import build_model, read_hf_folder
model = build_model(*read_hf_folder(folder), torch.float32, "cpu", source=folder)
print("loaded", rss(), mi())
inject(model, LoRASettings(rank=8, alpha=16, dropout=0.05, targets=("q_proj", "v_proj")))
batch = torch.randint(0, QWEN25_05B["vocab_size"], (4, 256), generator=torch.Generator().manual_seed(0))
mb = Batch(batch, batch, None, None, batch.numel(), batch[:, 1:].numel(), 0)
orig = train.MicroBatchLoss.forward
marks = []
def fwd(self, b):
    out = orig(self, b)
    marks.append(("end of forward", time.perf_counter(), rss(), mi()))
    return out
train.MicroBatchLoss.forward = fwd
samples = []; stop = False
layer_marks = []
for i, layer in enumerate(model.model.layers):
    layer.register_forward_hook(lambda mod, inp, out, i=i: layer_marks.append((i, mi())))

def sampler():
    while not stop:
        samples.append((time.perf_counter(), rss()["VmRSS"])); time.sleep(0.005)
import os
if os.environ.get("PREGRAD"):
    for p in model.parameters():
        if p.requires_grad: p.grad = torch.zeros_like(p)
train.train_window(model.train(), [mb])
for i, m in layer_marks: print("step1 layer", i, m)
print("after step 1", rss(), mi())
from benchmarks.timing import reset_peak_rss, peak_rss_gib
reset_peak_rss(); marks.clear()
t = threading.Thread(target=sampler); t0 = time.perf_counter(); t.start()
train.train_window(model.train(), [mb])
stop = True; t.join(); t1 = time.perf_counter()
print("peak step 2", round(peak_rss_gib(), 2), "step", round(t1 - t0, 2), "s")
for i, m in layer_marks[len(layer_marks)//2:]: print("layer", i, m)
for name, tm, r, m in marks: print(name, "at", round(tm - t0, 2), r, m)
tp, vp = max(samples, key=lambda s: s[1]); print("sampled max", vp, "at", round(tp - t0, 2))
for tm, v in samples[::40]: print(round(tm - t0, 2), v)
print("after step 2", rss(), mi())
