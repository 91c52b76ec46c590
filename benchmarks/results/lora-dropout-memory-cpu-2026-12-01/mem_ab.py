"""Our fp32 equal-work step's peak RSS in fresh processes, two checkouts taking turns. argv: ROOT_A ROOT_B ROUNDS"""
import sys, os, subprocess
a, b, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
child = r'''
import sys, os, time
sys.path.insert(0, os.environ["ROOT"])
import torch
from benchmarks.shapes import QWEN25_05B, write_random_folder
from benchmarks.train_suite import build_step
from benchmarks.timing import reset_peak_rss, peak_rss_gib
folder = "/tmp/s13/qwen24"
if not os.path.exists(folder):
    write_random_folder(QWEN25_05B, folder)
timed = build_step("physlora", folder, os.environ["DT"], "cpu", (4, 256))
reset_peak_rss()
s = [timed() for _ in range(2)]
print(os.environ["ROOT"], os.environ["DT"], "step %.2f s peak %.3f GiB" % (min(s), peak_rss_gib()), flush=True)
'''
for r in range(rounds):
    for root in ((a, b) if r % 2 == 0 else (b, a)):
        subprocess.run([sys.executable, "-c", child], env=dict(os.environ, ROOT=root, DT=os.environ.get("DT", "fp32")))
