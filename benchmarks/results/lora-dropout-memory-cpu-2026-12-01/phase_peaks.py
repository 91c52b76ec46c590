"""Our fp32 equal-work step: the peak RSS of the forward + loss and of the backward, measured apart, then the RSS
just before and after the trim that next_token_loss makes before the cross-entropy. Run from the repository root."""
import sys, os
sys.path.insert(0, ".")
import torch
from benchmarks.timing import reset_peak_rss, peak_rss_gib
from benchmarks.train_suite import build_step
folder = "/tmp/s13/qwen24"  # written by mem_ab.py
step = build_step("physlora", folder, "fp32", "cpu", (4, 256))  # the bench's batch and LoRA, warmed up once
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 2**20
# Split train_window's work: the loss (forward) and its backward, peaks measured separately.
orig_backward = torch.Tensor.backward
def traced_backward(self, *a, **k):
    print("forward+loss peak %.3f GiB, rss now %.3f" % (peak_rss_gib(), rss()), flush=True)
    reset_peak_rss()
    out = orig_backward(self, *a, **k)
    print("backward peak %.3f GiB, rss now %.3f" % (peak_rss_gib(), rss()), flush=True)
    return out
torch.Tensor.backward = traced_backward
for _ in range(2):
    reset_peak_rss()
    step()
    print("after step (clip+adamw) peak %.3f" % peak_rss_gib())
print("--- around the trim")
import model.loss as L
orig_trim = L.release_free_heap
def traced_trim():
    print("before trim: peak %.3f rss %.3f" % (peak_rss_gib(), rss()), flush=True)
    orig_trim()
    print("after trim: rss %.3f" % rss(), flush=True)
L.release_free_heap = traced_trim
for _ in range(2):
    reset_peak_rss()
    step()
