"""fp32 step peak RSS with glibc malloc_trim(0) at various points (TRIM= none, 1: before the lm_head, 2: also after it, 3: also before each block backward). Needs /tmp/prof_folder_24 (step_profile.py with LAYERS=24 writes it)."""
import os, sys, ctypes, time
sys.path.insert(0, "/work/main")
import torch
from benchmarks.timing import reset_peak_rss, peak_rss_gib
import train
from data.batching import Batch
from lora.adapter import LoRASettings, inject
from model.weights import build_model, read_hf_folder
import model.loss as loss_module
libc = ctypes.CDLL("libc.so.6")
folder = "/tmp/prof_folder_24"
model = build_model(*read_hf_folder(folder), torch.float32, "cpu", source=folder)
inject(model, LoRASettings(rank=8, alpha=16, dropout=0.05, targets=("q_proj", "v_proj")))
batch = torch.randint(0, 151936, (4, 256), generator=torch.Generator().manual_seed(0))
mb = Batch(batch, batch, None, None, batch.numel(), batch[:, 1:].numel(), 0)
where = os.environ.get("TRIM", "")
if where:
    orig = loss_module.chunked_cross_entropy
    def patched(*a, **k):
        libc.malloc_trim(0)  # before the lm_head: the forward's temporaries are freed
        out = orig(*a, **k)
        if where == "2":
            libc.malloc_trim(0)
        return out
    loss_module.chunked_cross_entropy = patched
if where == "3":
    for block in model.model.layers:
        block.register_full_backward_pre_hook(lambda *a: (libc.malloc_trim(0), None)[1])
train.train_window(model.train(), [mb])
ts = []
for i in range(3):
    reset_peak_rss()
    t = time.perf_counter(); train.train_window(model.train(), [mb]); ts.append(time.perf_counter() - t)
print("trim", where or "no", "peak GiB", round(peak_rss_gib(), 2), "fwd+bwd s", [round(x, 2) for x in ts])
