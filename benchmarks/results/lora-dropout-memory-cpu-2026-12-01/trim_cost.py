"""Time spent in release_free_heap during our fp32 equal-work step, with a trim after every layer of the forward:
model/transformer.py must call model.transformer.release_free_heap there (the change tried and not kept)."""
import sys, time
sys.path.insert(0, ".")
import torch
from benchmarks.train_suite import build_step
import common.memory as M, model.transformer as T, model.loss as L
folder = "/tmp/s13/qwen24"  # written by mem_ab.py
step = build_step("physlora", folder, "fp32", "cpu", (4, 256))  # the bench's batch and LoRA, warmed up once
spent = []
orig = M.release_free_heap
def timed():
    t = time.perf_counter(); orig(); spent.append(time.perf_counter() - t)
T.release_free_heap = timed; L.release_free_heap = timed
for _ in range(2):
    spent.clear(); t = time.perf_counter(); step(); total = time.perf_counter() - t
    print("step %.2f s, %d trims took %.3f s (max %.1f ms)" % (total, len(spent), sum(spent), max(spent) * 1e3))
