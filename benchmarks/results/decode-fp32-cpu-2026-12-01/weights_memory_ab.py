"""fp32 SmolLM2 decoding's 211 products (F.linear of one row) over the weights as build_model leaves them
against the same weights cloned, rounds alternating; and where each set lives (/proc/self/smaps: file-backed
or anonymous, huge pages). Run from the repository root: python weights_memory_ab.py HF_FOLDER [fp32|bf16]"""
import sys, time, statistics
sys.path.insert(0, ".")
import torch
import torch.nn.functional as F
from model.weights import build_model, read_hf_folder

folder = sys.argv[1]
dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[sys.argv[2] if len(sys.argv) > 2 else "fp32"]
model = build_model(*read_hf_folder(folder), dtype, "cpu", source=folder).eval()
loaded = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
cloned = [w.detach().clone() for w in loaded]

def mapping(ptr):
    with open("/proc/self/smaps") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        head = line.split()
        if "-" in head[0] and len(head) >= 5:
            lo, hi = (int(x, 16) for x in head[0].split("-"))
            if lo <= ptr < hi:
                fields = dict(l.split(":", 1) for l in lines[i + 1:i + 25] if ":" in l and not l[0].isdigit())
                return (f"{head[-1] if len(head) > 5 else '[anonymous]'} size {fields['Size'].strip()}, "
                        f"AnonHugePages {fields.get('AnonHugePages', '?').strip()}, FilePmdMapped {fields.get('FilePmdMapped', '?').strip()}")
    return "?"

print("loaded q_proj weight:", mapping(loaded[0].data_ptr()))
print("cloned q_proj weight:", mapping(cloned[0].data_ptr()))
print("loaded lm_head weight:", mapping(loaded[-1].data_ptr()))
xs = {w.shape[1]: torch.randn(1, w.shape[1], dtype=dtype) for w in loaded}

def products(weights):
    start = time.perf_counter()
    for w in weights:
        F.linear(xs[w.shape[1]], w)
    return time.perf_counter() - start

times = {"loaded": [], "cloned": []}
with torch.inference_mode():
    for weights in (loaded, cloned):
        products(weights); products(weights)
    for round_ in range(30):
        order = ("loaded", "cloned") if round_ % 2 == 0 else ("cloned", "loaded")
        for name in order:
            times[name].append(products(loaded if name == "loaded" else cloned))
ratios = [l / c for l, c in zip(times["loaded"], times["cloned"])]
for name, ts in times.items():
    print(f"{name}: median {statistics.median(ts) * 1e3:.2f} ms, min {min(ts) * 1e3:.2f} ms")
print(f"loaded / cloned: median {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})")
