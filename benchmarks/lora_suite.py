"""LoRA layer speed: fused Triton kernels, our torch path, PEFT's unfused layer, the bare frozen linear.

At the real projection shapes of Qwen2.5-0.5B and Llama-3.2-1B, forward ("fwd") and forward
plus backward ("fwd+bwd": dx, dA, dB; the bare linear's dx only) for:
  fused   LoRALinear(backend="triton"): one GEMM with the rank-r term in its epilogue (GPU only)
  torch   LoRALinear(backend="torch"): the same maths in plain torch
  peft    peft's LoRA Linear as get_peft_model builds it: base(x) + B(A(drop(x)))·s, with
          fp32 adapters on a 16-bit base, as PEFT does by default
  linear  the frozen base linear alone: the floor no LoRA layer can beat
Times are medians; TFLOP/s counts each method's useful work; x floor = time / linear's time.
"""
import copy

import torch
from torch import nn

from benchmarks.timing import environment, format_row, median_ms, positive_int, save_results
from common.cli import DTYPES
from common.errors import PhysloraError
from lora.layer import LoRALinear

SHAPES = {  # name: (in_features, out_features, bias); Qwen2 has biases on q, k and v
    "qwen2.5-0.5b/q,o": (896, 896, True), "qwen2.5-0.5b/k,v": (896, 128, True),
    "qwen2.5-0.5b/gate,up": (896, 4864, False), "qwen2.5-0.5b/down": (4864, 896, False),
    "llama-3.2-1b/q,o": (2048, 2048, False), "llama-3.2-1b/k,v": (2048, 512, False),
    "llama-3.2-1b/gate,up": (2048, 8192, False), "llama-3.2-1b/down": (8192, 2048, False),
}
DEFAULT_TOKENS = {"cuda": 4096, "cpu": 512}  # CPU: small enough for the table to take minutes
COLUMNS = ("shape", "r", "pass", "method", "ms", "TFLOP/s", "x floor")
WIDTHS = (22, 3, 7, 6, 9, 8, 7)


def add_arguments(parser):
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default=None, help="default: bf16 on cuda, fp32 on cpu")
    parser.add_argument("--shapes", nargs="+", default=None, metavar="NAME",
                        help=f"shape names or model prefixes, from: {', '.join(SHAPES)} (default: all)")
    parser.add_argument("--ranks", nargs="+", type=positive_int, default=[8, 16, 64])
    parser.add_argument("--tokens", type=positive_int, default=None, help="M, rows of x (default: 4096 cuda, 512 cpu)")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--reps", type=positive_int, default=7, help="timed runs per measurement on cpu (cuda: do_bench)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="cpu threads (default: torch's); 1 is steadiest on a shared machine")
    parser.add_argument("--no-save", action="store_true", help="print the table only")


def select_shapes(names):
    if names is None:
        return dict(SHAPES)
    chosen = {shape: dims for shape, dims in SHAPES.items() if any(shape.startswith(name) for name in names)}
    if not chosen:
        raise PhysloraError(f"--shapes {' '.join(names)}: no such shape; choose from {', '.join(SHAPES)}")
    return chosen


def flops(tokens, in_features, out_features, rank, backward, lora):
    """Useful FLOPs: base GEMM(s), plus the rank-r products when `lora`."""
    base = 2 * tokens * in_features * out_features * (2 if backward else 1)
    if not lora:
        return base
    low_rank = 2 * tokens * rank * (in_features + out_features)  # u = x Aᵀ and u Bᵀ
    return base + low_rank * (3 if backward else 1)  # backward: g, g A, dA and dB


def peft_layer(base, rank, alpha, dropout):
    import peft
    config = peft.LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=["0"])
    return peft.get_peft_model(nn.Sequential(base), config).base_model.model[0]


def lora_layers(base, rank, dropout, device):
    """The LoRA implementations to time, name -> (module, trainable adapter tensors)."""
    layers = {}
    for backend in (("triton", "torch") if device == "cuda" else ("torch",)):
        layer = LoRALinear(copy.deepcopy(base), rank, alpha=2 * rank, dropout=dropout, backend=backend)
        layers["fused" if backend == "triton" else "torch"] = (layer, [layer.lora_A, layer.lora_B])
    try:
        layer = peft_layer(copy.deepcopy(base), rank, 2 * rank, dropout)
        layers["peft"] = (layer, [layer.lora_A["default"].weight, layer.lora_B["default"].weight])
    except ImportError:
        print("peft is not installed: its column is skipped (pip install -r requirements-dev.txt)")
    return layers


def passes(module, inputs, x):
    """{"fwd": ..., "fwd+bwd": ...} callables, the backward asking for the grads of `inputs`."""
    dy = torch.randn(*x.shape[:-1], module.out_features, device=x.device, dtype=x.dtype)
    return {"fwd": lambda: module(x), "fwd+bwd": lambda: torch.autograd.grad(module(x), inputs, dy)}


def run(args):
    device, dtype_name = args.device, args.dtype or ("bf16" if args.device == "cuda" else "fp32")
    if device == "cuda" and not torch.cuda.is_available():
        raise PhysloraError("--device cuda: no CUDA device is visible; run on a GPU machine or use --device cpu")
    dtype, tokens = DTYPES[dtype_name], args.tokens or DEFAULT_TOKENS[device]
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = select_shapes(args.shapes)
    env = environment(device)
    print(f"{env['device']}, torch {env['torch']}, triton {env['triton']}, {dtype_name}, "
          f"M={tokens} tokens, dropout={args.dropout}")
    print(format_row(COLUMNS, WIDTHS))
    rows = []
    for shape, (in_features, out_features, bias) in shapes.items():
        torch.manual_seed(0)
        base = nn.Linear(in_features, out_features, bias=bias, device=device, dtype=dtype).requires_grad_(False)
        x = torch.randn(tokens, in_features, device=device, dtype=dtype, requires_grad=True)
        fns = {(0, "linear", name): fn for name, fn in passes(base, [x], x).items()}
        for rank in args.ranks:
            for method, (layer, adapters) in lora_layers(base, rank, args.dropout, device).items():
                fns.update({(rank, method, name): fn for name, fn in passes(layer.train(), [x, *adapters], x).items()})
        times = median_ms(fns, device, args.reps)
        for (rank, method, pass_name), ms in times.items():
            work = flops(tokens, in_features, out_features, rank, pass_name == "fwd+bwd", lora=method != "linear")
            row = {"shape": shape, "in": in_features, "out": out_features, "rank": rank, "pass": pass_name,
                   "method": method, "ms": ms, "tflops": work / ms / 1e9,
                   "vs_floor": ms / times[0, "linear", pass_name]}
            rows.append(row)
            print(format_row((shape, rank or "-", pass_name, method, f"{ms:.3f}", f"{row['tflops']:.2f}",
                              f"{row['vs_floor']:.2f}"), WIDTHS), flush=True)
    if not args.no_save:
        payload = {"dtype": dtype_name, "tokens": tokens, "dropout": args.dropout, "ranks": args.ranks, "rows": rows}
        variant = dtype_name + (f"-dropout{args.dropout}" if args.dropout else "")
        print("saved", save_results(device, "lora", variant, payload))
