"""The products of one SmolLM2-135M decoding step (30 layers × q, k, v, o, gate, up, down, then the
lm_head), random weights, timed as a whole for several ways of computing x Wᵀ under
torch.inference_mode (as decoding runs): median of 7 after a warm-up, the ways taking turns rep
after rep (benchmarks.timing.median_ms), in ms. Run from the repository root:
    PYTHONPATH=. python benchmarks/results/linear-cpu-2026-11-30/products.py"""
import functools

import torch
import torch.nn.functional as F

from benchmarks.timing import median_ms
from model.linear import linear

LAYER = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)]
LM_HEAD = (49152, 576)
WAYS = {
    "F.linear": lambda x, w: F.linear(x, w),
    "mv (1 row)": lambda x, w: torch.mv(w, x[0]) if len(x) == 1 else None,
    "(W xT)T view": lambda x, w: (w @ x.t()).t(),
    "(W xT)T copied": lambda x, w: (w @ x.t()).t().contiguous(),
    "model.linear": linear,
}


def run_layers(way, inputs, weights):
    return [way(inputs[w.shape[1]], w) for w in weights]


def main():
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        weights = [torch.randn(*shape).to(dtype) for _ in range(30) for shape in LAYER]
        head = torch.randn(*LM_HEAD).to(dtype)
        for rows in (1, 2, 4, 8, 16, 24, 32, 64):
            inputs = {k: torch.randn(rows, k).to(dtype) for k in (576, 1536)}
            ways = {name: way for name, way in WAYS.items() if way(inputs[576], weights[0]) is not None}
            layers = median_ms({name: functools.partial(run_layers, way, inputs, weights) for name, way in ways.items()},
                               "cpu", 7)
            lm_head = median_ms({name: functools.partial(way, inputs[576], head) for name, way in ways.items()}, "cpu", 7)
            cells = [f"{name} {layers[name]:6.2f} + {lm_head[name]:5.2f}" for name in ways]
            print(f"{str(dtype)[6:]:8} rows {rows:2}: " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    with torch.inference_mode():
        main()
