"""Specification of lora/kernels.py: the fused Triton LoRA kernels against a float64 reference.

Without CUDA the kernels run in Triton's interpreter, which TRITON_INTERPRET=1 selects only
if it is set before triton is first imported (triton's own tl.rand is decorated at import;
peft and parts of torch import triton) and stays set: tests/conftest.py sets it when there is
no CUDA, so this file runs in place on every machine (it is skipped only where TRITON_INTERPRET
was set to something else by hand). The interpreter's tl.dot is wrong on bf16 operands, so bf16
and the real-size shapes run on a GPU only.
"""
import os

import pytest
import torch

pytest.importorskip("triton")

from lora import kernels  # noqa: E402
from lora.layer import LoRALinear, TorchOps  # noqa: E402

ON_GPU = torch.cuda.is_available()
RUNS_HERE = ON_GPU or os.environ.get("TRITON_INTERPRET") == "1"
DEVICE = "cuda" if ON_GPU else "cpu"
pytestmark = pytest.mark.skipif(not RUNS_HERE, reason="no CUDA, and TRITON_INTERPRET is set to something other than 1")
needs_gpu = pytest.mark.skipif(not ON_GPU, reason="needs CUDA")
TOLERANCE = {torch.float32: 1e-4, torch.float16: 5e-3, torch.bfloat16: 2e-2}
DTYPES = [pytest.param(torch.float32, id="fp32"), pytest.param(torch.float16, id="fp16"),
          pytest.param(torch.bfloat16, id="bf16", marks=pytest.mark.skipif(
              not ON_GPU, reason="the interpreter's tl.dot is wrong on bf16; GPU only"))]

# (M, K, N, rank, bias, dropout): together every M in {1, 37, 300}, K and N in {64, 96, 200},
# rank in {1, 8, 16}; 32-wide interpreter tiles leave tails in M, K and N, M=300 spans two
# tile groups and splits the token sums into three partials.
SMALL_CASES = [(1, 64, 96, 1, True, 0.0), (37, 200, 64, 8, False, 0.1),
               (300, 96, 200, 16, True, 0.25), (300, 200, 96, 8, False, 0.0)]
# Real projections at 4096 tokens: Qwen2.5-0.5B gate/up and down, Llama-3.2-1B k/v.
GPU_CASES = [pytest.param(*case, marks=needs_gpu) for case in
             [(4096, 896, 4864, 16, False, 0.0), (4096, 4864, 896, 64, False, 0.1),
              (4096, 2048, 512, 8, True, 0.0), (4096, 896, 128, 128, True, 0.0)]]
CASES = SMALL_CASES + GPU_CASES
SCALING, SEED = 2.0, 1234
# On a GPU, fp32 and fp16 run this one case (every case runs in the interpreter) and bf16 runs them all: each
# new shape and dtype is a compile, and a GPU session is short.
GPU_CASE_OF_EVERY_DTYPE = (300, 96, 200, 16, True, 0.25)


def skip_repeats_on_gpu(case, dtype):
    if ON_GPU and dtype != torch.bfloat16 and case != GPU_CASE_OF_EVERY_DTYPE:
        pytest.skip("fp32 and fp16 run every case in the interpreter; on a GPU, one")


@pytest.fixture(autouse=True)
def poisoned_buffers(monkeypatch):
    """Every buffer the kernels write starts as NaN (ints as 1), so an unwritten element fails."""
    def full_of_poison(shape, dtype, device):
        return torch.full(shape, float("nan") if dtype.is_floating_point else 1, dtype=dtype, device=device)
    monkeypatch.setattr(kernels, "_empty", full_of_poison)


def make_problem(M, K, N, rank, bias, dropout, dtype):
    """Fresh random inputs in `dtype` and the mask.

    The adapters are fp32, as LoRALinear keeps them, holding values exact in `dtype`: the
    kernels cast them to x's dtype, and the reference must see the same numbers.
    """
    x = torch.randn(M, K, device=DEVICE).to(dtype)
    weight = (torch.randn(N, K, device=DEVICE) / K**0.5).to(dtype)
    b = torch.randn(N, device=DEVICE).to(dtype) if bias else None
    lora_A = (torch.randn(rank, K, device=DEVICE) / K**0.5).to(dtype).float()
    lora_B = torch.randn(N, rank, device=DEVICE).to(dtype).float()  # nonzero: the rank-r term shows
    keep = kernels.keep_mask(M, K, dropout, SEED, DEVICE)
    return x, weight, b, lora_A, lora_B, keep


def reference(x, weight, b, lora_A, lora_B, keep, dropout, dy=None):
    """Float64 y, u = drop(x)Aᵀ and, given dy, autograd's {dx, dA, dB}: the oracle for every kernel."""
    x, lora_A, lora_B = (t.double().requires_grad_() for t in (x, lora_A, lora_B))
    u = (x * keep / (1 - dropout)) @ lora_A.t()
    y = x @ weight.double().t() + SCALING * u @ lora_B.t()
    if b is not None:
        y = y + b.double()
    grads = None if dy is None else dict(zip(("dx", "dA", "dB"),
                                             torch.autograd.grad(y, (x, lora_A, lora_B), dy.double())))
    return y.detach(), u.detach(), grads


def relative_error(actual, expected):
    return ((actual.double() - expected).norm() / expected.norm()).item()


def assert_close(actual, expected, dtype):
    """Relative error in norm within the dtype's tolerance, and no element off by more than 5× it relative to the
    largest value: the norm alone would let one wrong tile of a large output through."""
    assert relative_error(actual, expected) <= TOLERANCE[dtype]
    assert ((actual.double() - expected).abs().max() / expected.abs().max()).item() <= 5 * TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,K,N,rank,bias,dropout", CASES)
def test_forward_matches_float64_reference(M, K, N, rank, bias, dropout, dtype):
    skip_repeats_on_gpu((M, K, N, rank, bias, dropout), dtype)
    x, weight, b, lora_A, lora_B, keep = make_problem(M, K, N, rank, bias, dropout, dtype)
    y_ref, u_ref, _ = reference(x, weight, b, lora_A, lora_B, keep, dropout)
    y, u = kernels.lora_forward(x, weight, b, lora_A, lora_B, SCALING, dropout, SEED)
    assert y.dtype == dtype and y.shape == (M, N)
    assert_close(u, u_ref, dtype)
    assert_close(y, y_ref, dtype)


@pytest.mark.parametrize("grad", ["dx", "dA", "dB"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,K,N,rank,bias,dropout", CASES)
def test_backward_gradient_matches_float64_reference(M, K, N, rank, bias, dropout, dtype, grad):
    skip_repeats_on_gpu((M, K, N, rank, bias, dropout), dtype)
    x, weight, b, lora_A, lora_B, keep = make_problem(M, K, N, rank, bias, dropout, dtype)
    dy = torch.randn(M, N, device=DEVICE).to(dtype)
    _, u_ref, grads_ref = reference(x, weight, b, lora_A, lora_B, keep, dropout, dy)
    grads = dict(zip(("dx", "dA", "dB"), kernels.lora_backward(
        dy, x, weight, lora_A, lora_B, u_ref.to(dtype), SCALING, dropout, SEED,
        need_dx=grad == "dx", need_dA=grad == "dA", need_dB=grad == "dB")))
    assert [name for name, value in grads.items() if value is not None] == [grad]
    expected_dtype = dtype if grad == "dx" else torch.float32  # adapter grads land in the fp32 params
    assert grads[grad].dtype == expected_dtype and grads[grad].shape == grads_ref[grad].shape
    assert_close(grads[grad], grads_ref[grad], dtype)


TUNED = {"_lora_matmul_kernel": kernels.MATMUL_TUNED, "_down_proj_kernel": kernels.DOWN_TUNED,
         "_token_sum_kernel": kernels.TOKEN_SUM_TUNED}


@needs_gpu  # the interpreter takes minutes a config at these tile sizes
@pytest.mark.parametrize("kernel", list(TUNED))
def test_every_tuned_config_of_a_kernel_matches_the_reference(kernel, monkeypatch, dtype=torch.bfloat16):
    """Each autotune candidate launched alone (the other GPU tests run one small config, and autotuning only
    ever runs its winner), on a shape with tails in every dimension, forward and every gradient. No dropout:
    its mask does not depend on the tiles, and its variants take longest to compile."""
    M, K, N, rank, bias, dropout = 300, 200, 520, 16, True, 0.0
    x, weight, b, lora_A, lora_B, keep = make_problem(M, K, N, rank, bias, dropout, dtype)
    dy = torch.randn(M, N, device=DEVICE).to(dtype)
    y_ref, u_ref, grads_ref = reference(x, weight, b, lora_A, lora_B, keep, dropout, dy)
    for config in kernels.as_configs(TUNED[kernel]):
        monkeypatch.setattr(getattr(kernels, kernel), "configs", [config])
        y, u = kernels.lora_forward(x, weight, b, lora_A, lora_B, SCALING, dropout, SEED)
        dx, dA, dB = kernels.lora_backward(dy, x, weight, lora_A, lora_B, u_ref.to(dtype), SCALING, dropout, SEED,
                                           need_dx=True, need_dA=True, need_dB=True)
        for actual, expected in ((y, y_ref), (u, u_ref), (dx, grads_ref["dx"]), (dA, grads_ref["dA"]),
                                 (dB, grads_ref["dB"])):
            assert_close(actual, expected, dtype)


def test_keep_mask_is_a_function_of_the_seed():
    first = kernels.keep_mask(45, 70, 0.5, SEED, DEVICE)
    assert torch.equal(first, kernels.keep_mask(45, 70, 0.5, SEED, DEVICE))
    assert not torch.equal(first, kernels.keep_mask(45, 70, 0.5, SEED + 1, DEVICE))


def test_keep_mask_keeps_a_fraction_one_minus_p():
    keep = kernels.keep_mask(101, 333, 0.3, SEED, DEVICE)
    assert abs(keep.float().mean().item() - 0.7) < 0.01


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_layer_dropout_mask_is_drawn_from_torch_seed_and_shared_by_backward(backend):
    torch.manual_seed(0)
    layer = LoRALinear(torch.nn.Linear(96, 64, device=DEVICE), rank=8, alpha=16, dropout=0.3, backend=backend)
    torch.nn.init.normal_(layer.lora_B)
    x = torch.randn(37, 96, device=DEVICE, requires_grad=True)
    dy = torch.randn(37, 64, device=DEVICE)
    torch.manual_seed(7)
    seed = int(torch.randint(2**31 - 1, ()))
    keep = (kernels if backend == "triton" else TorchOps).keep_mask(37, 96, 0.3, seed, DEVICE)
    y_ref, _, grads_ref = reference(x.detach(), layer.weight, layer.bias, layer.lora_A.detach(),
                                    layer.lora_B.detach(), keep, 0.3, dy)
    torch.manual_seed(7)
    y = layer(x)
    y.backward(dy)
    assert relative_error(y, y_ref) <= 1e-5
    for grad, actual in (("dx", x.grad), ("dA", layer.lora_A.grad), ("dB", layer.lora_B.grad)):
        assert relative_error(actual, grads_ref[grad]) <= 1e-5, grad


def test_layer_triton_backend_matches_torch_backend_on_batched_input():
    torch.manual_seed(0)
    base = torch.nn.Linear(200, 96, device=DEVICE)
    layers = [LoRALinear(base, rank=16, alpha=32, backend=backend) for backend in ("torch", "triton")]
    torch.nn.init.normal_(layers[0].lora_B)
    layers[1].load_state_dict(layers[0].state_dict())
    x = torch.randn(3, 13, 200, device=DEVICE)
    outputs, grads = [], []
    for layer in layers:
        xi = x.clone().requires_grad_()
        y = layer(xi)
        y.square().sum().backward()
        outputs.append(y)
        grads.append((xi.grad, layer.lora_A.grad, layer.lora_B.grad))
    assert outputs[1].shape == (3, 13, 96)
    assert relative_error(outputs[1], outputs[0].double()) <= 1e-5
    for triton_grad, torch_grad in zip(grads[1], grads[0]):
        assert relative_error(triton_grad, torch_grad.double()) <= 1e-5


@needs_gpu
def test_layer_auto_backend_runs_triton_on_cuda():
    layer = LoRALinear(torch.nn.Linear(64, 64, device="cuda"), rank=4, alpha=8)
    assert layer.backend_for(torch.zeros(1, 64, device="cuda")) == "triton"
