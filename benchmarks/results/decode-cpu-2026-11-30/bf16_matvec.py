"""bf16 matrix-vector products on this CPU: where a bf16 decoding step's product time goes.

Each shape's product runs over enough distinct weights that they stream from memory, as in a
decoding step (one weight read once per token); median of 9 passes. GB/s = weight bytes / time.
  mv            torch.mv(W, x), what model/linear.py uses for one row in bf16 (oneDNN brgemm, AMX)
  F.linear      x @ W.t(), torch's default
  mv, no oneDNN torch.mv with torch.backends.mkldnn disabled (torch's own kernel)
  packed        oneDNN's linear on a weight reordered for batch 1 (_reorder_linear_weight)
  to fp32, mv   the weight converted to fp32 into a reused buffer, then MKL's sgemv
  fp32 mv       the same product in fp32 (MKL sgemv), twice the bytes: the bandwidth reference
Then one small product, cache-resident, called 2,000 times: the fixed cost of a call.
Run: PYTHONPATH=. .venv/bin/python benchmarks/results/decode-cpu-2026-11-30/bf16_matvec.py
"""
import time

import torch
import torch.nn.functional as F

SHAPES = {"SmolLM2 q,o 576x576": (576, 576), "SmolLM2 k,v 192x576": (192, 576),
          "SmolLM2 gate,up 1536x576": (1536, 576), "SmolLM2 down 576x1536": (576, 1536),
          "SmolLM2 q+k+v fused 960x576": (960, 576), "SmolLM2 gate+up fused 3072x576": (3072, 576),
          "SmolLM2 lm_head 49152x576": (49152, 576), "Qwen2.5-0.5B gate 4864x896": (4864, 896)}
STREAM_BYTES = 200e6


def per_call_us(fn, weights, x, passes=9):
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        for w in weights:
            fn(w, x)
        times.append(time.perf_counter() - start)
    return sorted(times)[passes // 2] / len(weights) * 1e6


def no_onednn_mv(w, x):
    with torch.backends.mkldnn.flags(enabled=False):
        return torch.mv(w, x)


def to_fp32_mv(w, x, buffers={}):
    buffer = buffers.setdefault(w.shape, torch.empty(w.shape))
    return torch.mv(buffer.copy_(w), x.float())


def main():
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'shape':32s}" + "".join(f"{name:>17s}" for name in ("mv", "F.linear", "mv, no oneDNN", "packed",
                                                                "to fp32, mv", "fp32 mv")))
    with torch.inference_mode():
        for name, (rows, cols) in SHAPES.items():
            count = max(2, int(STREAM_BYTES / (rows * cols * 2)))
            weights = [torch.randn(rows, cols).bfloat16() for _ in range(count)]
            x = torch.randn(cols).bfloat16()
            packed = [torch.ops.mkldnn._reorder_linear_weight(w, 1) for w in weights]
            cells = {
                "mv": per_call_us(torch.mv, weights, x),
                "F.linear": per_call_us(lambda w, v: F.linear(v[None], w), weights, x),
                "mv, no oneDNN": per_call_us(no_onednn_mv, weights, x),
                "packed": per_call_us(lambda w, v: torch.ops.mkldnn._linear_pointwise(v[None], w, None, "none", [], ""),
                                      packed, x),
                "to fp32, mv": per_call_us(to_fp32_mv, weights, x),
            }
            fp32 = [w.float() for w in weights[:max(2, count // 2)]]
            cells["fp32 mv"] = per_call_us(torch.mv, fp32, x.float())
            megabytes = rows * cols * 2 / 1e6
            line = " ".join(f"{us:7.1f}us {megabytes / us * 1e3 * (2 if k == 'fp32 mv' else 1):4.1f}GB/s"
                            for k, us in cells.items())
            print(f"{name:32s} {line}", flush=True)
        w, x = torch.randn(192, 576).bfloat16(), torch.randn(576).bfloat16()
        for label, fn in (("mv", torch.mv), ("mv, no oneDNN", no_onednn_mv)):
            print(f"cache-resident 192x576, {label}: {per_call_us(fn, [w] * 2000, x):.1f} us a call")
        wf, xf = w.float(), x.float()
        print(f"cache-resident 192x576, fp32 mv: {per_call_us(torch.mv, [wf] * 2000, xf):.1f} us a call")


if __name__ == "__main__":
    main()
