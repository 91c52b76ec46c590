"""train.py's loop alone on the physics workload (benchmarks.train_suite.physlora_physics), answer tokens/s of N timed steps.
Run from the repository root: TAG=new .venv/bin/python benchmarks/results/train-physics-cpu-2026-12-01b/loop_alone.py 4
(ROOT=<other checkout> for the old code)."""
import os, sys, pickle, time
sys.path.insert(0, os.environ.get("ROOT", "."))
import torch
from benchmarks import train_suite
cache = "/tmp/phys.pkl"
if not os.path.exists(cache):
    os.makedirs("/tmp/physwork", exist_ok=True)
    folder, pad_id, examples = train_suite.physics_examples("/tmp/physwork", 7 * 16)
    pickle.dump((folder, pad_id, examples), open(cache, "wb"))
folder, pad_id, examples = pickle.load(open(cache, "rb"))
r = train_suite.physlora_physics(folder, pad_id, examples, int(sys.argv[1]))
print(os.environ.get("TAG"), "%.1f answer tokens/s (%d in %.1f s)" % (r["answer_tokens"] / r["seconds"], r["answer_tokens"], r["seconds"]), flush=True)
