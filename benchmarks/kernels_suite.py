"""Fused-kernel speed: RMSNorm, RoPE, SwiGLU and the cross-entropy against torch and transformers.

At Qwen2.5-0.5B's shapes (benchmarks/shapes.py), forward ("fwd") and forward plus backward
("fwd+bwd", the gradient of the activations; weights frozen as in LoRA training) of:
  rms_norm    x (N × 896)                          bytes fwd 2bNH,  fwd+bwd 5bNH
  rope        q (14 heads), k (2 heads) of 64      bytes fwd 2bND(14+2) + bND (half tables), ×2 with bwd
  swiglu      gate, up (N × 4864)                  bytes fwd 3bNI,  fwd+bwd 8bNI
  softmax_ce  one chunk of logits (R × 151936)     bytes fwd bRV (loss), fwd+bwd 2bRV (+ gradient)
  linear_ce   hidden (N × 896) through the tied lm_head to the summed loss: matmul-bound, TFLOP/s;
              fwd is the loss alone, under no_grad (with grad on, ours computes the gradient in forward)
  attention   causal, q (4 rows × N/4 tokens, 14 heads), k, v (2 heads) of 64: TFLOP/s of the causal
              half's products (fwd 2 of them, fwd+bwd 7); bytes q, k, v, out (×2 with bwd, and dO, dQ, dK, dV)
for each method:
  fused         our Triton kernels (model/kernels_triton.py); GPU only
  torch         our torch reference (TorchOps in model/kernels.py), the CPU path; for attention
                model/attention.py (our backward in bf16 on CPU, torch's attention elsewhere)
  transformers  what transformers runs: Qwen2RMSNorm, apply_rotary_pos_emb, ACT2FN["silu"](gate) * up,
                F.cross_entropy on fp32 logits (softmax_ce), and on all of them at once (linear_ce),
                F.scaled_dot_product_attention with enable_gqa (attention)
bytes: what the op must read and write once (b bytes an element); GB/s = bytes / median time;
of copy = GB/s / the device's own copy bandwidth (a 256 MiB copy_, read + write): the roofline of a
memory-bound op (the fused softmax_ce reads the logits twice, so it tops out at 2/3). vs tf = the
transformers time / this method's. The cross-entropies work in place: each repetition reads the
previous one's output, the same bytes and work.
"""
import torch
import torch.nn.functional as F

from benchmarks.shapes import QWEN25_05B
from benchmarks.timing import environment, format_row, median_ms, positive_int, save_results
from common.cli import DTYPES
from common.errors import PhysloraError
from model import kernels
from model.loss import CHUNK_BYTES, chunked_cross_entropy

OPS = ("rms_norm", "rope", "swiglu", "softmax_ce", "linear_ce", "attention")
DEFAULT_TOKENS = {"cuda": 4096, "cpu": 512}
COLUMNS = ("op", "pass", "method", "ms", "GB/s", "of copy", "TFLOP/s", "vs tf")
WIDTHS = (10, 7, 12, 9, 8, 7, 7, 6)


def add_arguments(parser):
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default=None, help="default: bf16 on cuda, fp32 on cpu")
    parser.add_argument("--ops", nargs="+", choices=OPS, default=list(OPS))
    parser.add_argument("--tokens", type=positive_int, default=None, help="N, tokens (default: 4096 cuda, 512 cpu)")
    parser.add_argument("--reps", type=positive_int, default=7, help="timed runs per measurement on cpu, at least 5 "
                                                            "(cuda: do_bench)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="cpu threads (default: torch's); 1 is steadiest on a shared machine")
    parser.add_argument("--no-save", action="store_true", help="print the table only")


def autograd_passes(forward, inputs, grad_outputs):
    """{"fwd": forward, "fwd+bwd": forward then the gradients of `inputs`}."""
    def forward_backward():
        outputs = forward()
        return torch.autograd.grad(outputs if isinstance(outputs, tuple) else (outputs,), inputs, grad_outputs)
    return {"fwd": forward, "fwd+bwd": forward_backward}


def with_backend(backend, passes):
    def run_with(fn):
        def run():
            with kernels.use_backend(backend):
                return fn()
        return run
    return {name: run_with(fn) for name, fn in passes.items()}


def ours_and_theirs(ours, theirs, device):
    """{method: passes}: ours under the fused (GPU only) and torch backends, and transformers'."""
    methods = {"fused": with_backend("triton", ours)} if device == "cuda" else {}
    return {**methods, "torch": with_backend("torch", ours), "transformers": theirs}


def rms_norm_case(n, dtype, device):
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm
    hidden, eps = QWEN25_05B["hidden_size"], QWEN25_05B["rms_norm_eps"]
    x = torch.randn(n, hidden, device=device, dtype=dtype, requires_grad=True)
    theirs = Qwen2RMSNorm(hidden, eps).to(device, dtype).requires_grad_(False)
    dy = (torch.randn_like(x),)
    methods = ours_and_theirs(autograd_passes(lambda: kernels.rms_norm(x, theirs.weight, eps), (x,), dy),
                              autograd_passes(lambda: theirs(x), (x,), dy), device)
    return methods, {"fwd": 2 * x.nbytes, "fwd+bwd": 5 * x.nbytes}, None


def rope_case(n, dtype, device):
    from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb
    heads, kv_heads = QWEN25_05B["num_attention_heads"], QWEN25_05B["num_key_value_heads"]
    head_dim = QWEN25_05B["hidden_size"] // heads
    batch, length = 4, n // 4  # the train suite's rows
    q, k = (torch.randn(batch, length, h, head_dim, device=device, dtype=dtype).transpose(1, 2).requires_grad_()
            for h in (heads, kv_heads))
    inv_freq = 1.0 / QWEN25_05B["rope_theta"] ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim)
    angles = (torch.arange(length, device=device).float()[:, None] * inv_freq).expand(batch, length, head_dim // 2)
    cos, sin = kernels.rope_tables(angles[:, None], dtype)
    sin_theta = sin[..., head_dim // 2:]
    hf_sin = torch.cat((sin_theta, sin_theta), dim=-1)  # transformers' table: sin θ in both halves
    grads = (torch.randn_like(q), torch.randn_like(k))
    methods = ours_and_theirs(autograd_passes(lambda: kernels.rope(q, k, cos, sin), (q, k), grads),
                              autograd_passes(lambda: apply_rotary_pos_emb(q, k, cos[:, 0], hf_sin[:, 0]), (q, k),
                                              grads), device)
    per_pass = 2 * (q.nbytes + k.nbytes) + cos.nbytes
    return methods, {"fwd": per_pass, "fwd+bwd": 2 * per_pass}, None


def swiglu_case(n, dtype, device):
    from transformers.activations import ACT2FN
    gate, up = (torch.randn(n, QWEN25_05B["intermediate_size"], device=device, dtype=dtype, requires_grad=True)
                for _ in range(2))
    act, dy = ACT2FN["silu"], (torch.randn_like(gate),)
    methods = ours_and_theirs(autograd_passes(lambda: kernels.swiglu(gate, up), (gate, up), dy),
                              autograd_passes(lambda: act(gate) * up, (gate, up), dy), device)
    return methods, {"fwd": 3 * gate.nbytes, "fwd+bwd": 8 * gate.nbytes}, None


def softmax_ce_case(n, dtype, device):
    vocab = QWEN25_05B["vocab_size"]
    rows = min(n, CHUNK_BYTES // (4 * vocab))  # one chunk of model/loss.py
    targets = torch.randint(0, vocab, (rows,), device=device)
    ours, theirs = (torch.randn(rows, vocab, device=device, dtype=dtype) for _ in range(2))

    def ce_passes(logits):  # kernels.ops_for is asked at call time, inside with_backend
        return {"fwd": lambda: kernels.ops_for(logits).cross_entropy_(logits, targets, False),
                "fwd+bwd": lambda: kernels.ops_for(logits).cross_entropy_(logits, targets, True)}

    theirs.requires_grad_()
    methods = ours_and_theirs(ce_passes(ours), autograd_passes(
        lambda: F.cross_entropy(theirs.float(), targets, reduction="sum"), (theirs,), None), device)
    return methods, {"fwd": ours.nbytes, "fwd+bwd": 2 * ours.nbytes}, None


def linear_ce_case(n, dtype, device):
    hidden_size, vocab = QWEN25_05B["hidden_size"], QWEN25_05B["vocab_size"]
    hidden = torch.randn(n, hidden_size, device=device, dtype=dtype, requires_grad=True)
    weight = torch.randn(vocab, hidden_size, device=device, dtype=dtype) / hidden_size**0.5
    targets = torch.randint(0, vocab, (n,), device=device)

    def loss_passes(loss):
        def forward():
            with torch.no_grad():  # the loss alone: with grad on, ours computes the gradient inside the forward
                return loss()
        return {"fwd": forward, "fwd+bwd": lambda: torch.autograd.grad(loss(), hidden)}

    methods = ours_and_theirs(
        loss_passes(lambda: chunked_cross_entropy(hidden, weight, targets)),
        loss_passes(lambda: F.cross_entropy((hidden @ weight.t()).float(), targets, reduction="sum")), device)
    flops = 2 * n * vocab * hidden_size
    return (methods, {"fwd": hidden.nbytes + weight.nbytes, "fwd+bwd": 2 * hidden.nbytes + weight.nbytes},
            {"fwd": flops, "fwd+bwd": 2 * flops})


def attention_case(n, dtype, device):
    from model.attention import attention
    heads, kv_heads = QWEN25_05B["num_attention_heads"], QWEN25_05B["num_key_value_heads"]
    head_dim = QWEN25_05B["hidden_size"] // heads
    batch, length = 4, n // 4  # the train suite's rows
    q, k, v = (torch.randn(batch, length, h, head_dim, device=device, dtype=dtype).transpose(1, 2).requires_grad_()
               for h in (heads, kv_heads, kv_heads))
    inputs, grads = (q, k, v), (torch.randn_like(q),)
    methods = {"torch": autograd_passes(lambda: attention(q, k, v, None, causal=True), inputs, grads),
               "transformers": autograd_passes(lambda: F.scaled_dot_product_attention(
                   q, k, v, is_causal=True, enable_gqa=True), inputs, grads)}
    flops = 2 * batch * heads * length * length * head_dim  # QKᵀ and PV over the causal half
    per_pass = 2 * q.nbytes + 2 * k.nbytes
    return methods, {"fwd": per_pass, "fwd+bwd": 2 * per_pass}, {"fwd": flops, "fwd+bwd": 3.5 * flops}


CASES = {"rms_norm": rms_norm_case, "rope": rope_case, "swiglu": swiglu_case,
         "softmax_ce": softmax_ce_case, "linear_ce": linear_ce_case, "attention": attention_case}


def copy_gbps(device, reps):
    """Device-to-device copy bandwidth, counting the read and the write."""
    source = torch.empty(2**26, device=device)
    target = torch.empty_like(source)
    ms = median_ms({"copy": lambda: target.copy_(source)}, device, reps)["copy"]
    return 2 * source.nbytes / ms / 1e6


def run(args):
    device, dtype_name = args.device, args.dtype or ("bf16" if args.device == "cuda" else "fp32")
    if device == "cuda" and not torch.cuda.is_available():
        raise PhysloraError("--device cuda: no CUDA device is visible; run on a GPU machine or use --device cpu")
    if args.reps < 5:
        raise PhysloraError(f"--reps {args.reps}: use at least 5, the median of fewer is noise")
    dtype, tokens = DTYPES[dtype_name], args.tokens or DEFAULT_TOKENS[device]
    if args.threads:
        torch.set_num_threads(args.threads)
    env = environment(device)
    bandwidth = copy_gbps(device, args.reps)
    print(f"{env['device']}, torch {env['torch']}, triton {env['triton']}, {dtype_name}, N={tokens} tokens, "
          f"copy {bandwidth:.1f} GB/s")
    if device != "cuda":
        print("fused: not timed here, the Triton kernels need a GPU (the interpreter is no timing)")
    print(format_row(COLUMNS, WIDTHS))
    rows = []
    for op in args.ops:
        torch.manual_seed(0)
        methods, op_bytes, op_flops = CASES[op](tokens, dtype, device)
        times = median_ms({(method, name): fn for method, passes in methods.items() for name, fn in passes.items()},
                          device, args.reps)
        for (method, pass_name), ms in times.items():
            gbps = op_bytes[pass_name] / ms / 1e6
            tflops = op_flops[pass_name] / ms / 1e9 if op_flops else None
            row = {"op": op, "pass": pass_name, "method": method, "ms": ms, "bytes": op_bytes[pass_name],
                   "gbps": gbps, "of_copy": gbps / bandwidth, "tflops": tflops,
                   "vs_transformers": times["transformers", pass_name] / ms}
            rows.append(row)
            print(format_row((op, pass_name, method, f"{ms:.3f}", f"{gbps:.1f}", f"{row['of_copy']:.2f}",
                              "-" if tflops is None else f"{tflops:.2f}", f"{row['vs_transformers']:.2f}"), WIDTHS),
                  flush=True)
    if not args.no_save:
        payload = {"dtype": dtype_name, "tokens": tokens, "copy_gbps": bandwidth, "rows": rows,
                   "fused_timed": device == "cuda"}
        print("saved", save_results(device, "kernels", dtype_name, payload))
