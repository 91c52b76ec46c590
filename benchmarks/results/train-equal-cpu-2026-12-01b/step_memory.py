"""Our equal-work step alone in a fresh process: step time and peak RSS. Run from the repository root:
.venv/bin/python benchmarks/results/train-equal-cpu-2026-12-01b/step_memory.py fp32|bf16 STEPS (METHOD=physlora+gc for
checkpointing; ROOT=<other checkout> to time another version of the code). Writes the 24-layer folder once."""
import sys, os, time
sys.path.insert(0, os.environ.get("ROOT", "."))  # ROOT: another checkout, for old/new A/Bs
import torch
from benchmarks.shapes import QWEN25_05B, write_random_folder
from benchmarks.train_suite import measure
folder = "/tmp/prof_folder_24"
if not os.path.exists(folder):
    write_random_folder(QWEN25_05B, folder)
r = measure(os.environ.get("METHOD", "physlora"), folder, sys.argv[1], "cpu", (4, 256), int(sys.argv[2]))
print(os.environ.get("TAG", ""), sys.argv[1], "step %.2f s peak %.2f GiB" % (r["seconds"], r["peak_gib"]), flush=True)
