"""Specification of model/kernels.py: RMSNorm, RoPE, SwiGLU and the chunked cross-entropy, forward
and backward, for both backends against float64 computed from the same inputs.

'torch' is the CPU path. 'triton' runs the kernels of model/kernels_triton.py: compiled on a GPU,
in Triton's interpreter otherwise (tests/conftest.py sets TRITON_INTERPRET=1 before triton is first
imported when there is no CUDA). Every buffer a kernel writes starts as NaN, so an element left
unwritten fails. None of these kernels uses tl.dot (wrong on bf16 in the interpreter), so every
dtype runs here at small odd shapes; Qwen2.5-0.5B's real sizes run on a GPU only.

Tolerances, on the relative error ‖actual − expected‖ / ‖expected‖: the kernels compute in fp32 and
round each output once (the torch path and the cross-entropy's 16-bit matmuls a few times more), so
a few unit roundoffs of the dtype: fp32 1e-5, fp16 3e-3 (roundoff 4.9e-4), bf16 2e-2 (3.9e-3).
Measured here: at most 3.4e-7, 3.7e-4 and 6.1e-3; the interpreter rounds to bf16 by truncation,
which doubles its bf16 errors over the torch path's.
"""
import importlib.util
import os

import pytest
import torch
import torch.nn.functional as F

import train
from common.errors import PhysloraError
from data.batching import Example, collate
from lora.adapter import LoRASettings, inject, lora_layers
from model import kernels
from model.loss import IGNORE_INDEX, next_token_loss
from tiny_models import TINY, make_pair

ON_GPU = torch.cuda.is_available()
DEVICE = "cuda" if ON_GPU else "cpu"
RUNS_TRITON = importlib.util.find_spec("triton") is not None and (
    ON_GPU or os.environ.get("TRITON_INTERPRET") == "1")
needs_gpu = pytest.mark.skipif(not ON_GPU, reason="needs CUDA")
TOLERANCE = {torch.float32: 1e-5, torch.float16: 3e-3, torch.bfloat16: 2e-2}
DTYPES = [pytest.param(torch.float32, id="fp32"), pytest.param(torch.float16, id="fp16"),
          pytest.param(torch.bfloat16, id="bf16")]
EPS = 1e-6

# Odd sizes that leave tails in every block; the GPU cases are Qwen2.5-0.5B's (4096 tokens).
NORM_CASES = [(1, 24), (7, 40), (37, 72), pytest.param(4096, 896, marks=needs_gpu)]  # tokens, hidden
ROPE_CASES = [(1, 1, 2, 1, 8), (2, 7, 3, 1, 16), (1, 37, 4, 2, 8),  # batch, length, q heads, kv heads, head dim
              pytest.param(4, 1024, 14, 2, 64, marks=needs_gpu)]
SWIGLU_CASES = [(1, 24), (7, 40), (37, 72), pytest.param(4096, 4864, marks=needs_gpu)]  # tokens, inner
# batch, length, hidden, vocab, chunk_rows; labels -100 on prompts and on all of row 1 when batch > 1.
LOSS_CASES = [(1, 2, 24, 50, None), (1, 8, 40, 257, 3), (3, 13, 72, 257, 5),
              pytest.param(2, 512, 896, 151936, None, marks=needs_gpu)]


@pytest.fixture(params=["torch", pytest.param("triton", marks=pytest.mark.skipif(
    not RUNS_TRITON, reason="needs triton, and CUDA or TRITON_INTERPRET=1"))])
def backend(request):
    with kernels.use_backend(request.param):
        yield request.param


@pytest.fixture(autouse=True)
def poisoned_buffers(monkeypatch):
    """Every buffer the Triton kernels write starts as NaN."""
    if RUNS_TRITON:
        from model import kernels_triton
        monkeypatch.setattr(kernels_triton, "_empty", lambda shape, dtype, device: torch.full(
            shape, float("nan"), dtype=dtype, device=device))


def random(*shape, dtype=torch.float32, scale=1.0, grad=True):
    return (torch.randn(*shape, device=DEVICE) * scale).to(dtype).requires_grad_(grad)


def relative_error(actual, expected):
    return ((actual.double() - expected).norm() / expected.norm()).item()


def float64_grads(output, inputs, grad_output):
    return torch.autograd.grad(output, inputs, grad_output.double())


# RMSNorm

def rms_norm_inputs(tokens, hidden, dtype, weight_trains=False):
    """x, a weight around 1 (frozen unless it trains) and an output gradient."""
    torch.manual_seed(tokens + hidden)
    weight = (1 + random(hidden, grad=False) / 2).to(dtype).requires_grad_(weight_trains)
    return random(tokens, hidden, dtype=dtype, scale=3.0), weight, random(tokens, hidden, dtype=dtype, grad=False)


def rms_norm_float64(x, weight):
    x = x.double()
    return weight.double() * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tokens,hidden", NORM_CASES)
def test_rms_norm_forward_matches_float64(backend, tokens, hidden, dtype):
    x, weight, _ = rms_norm_inputs(tokens, hidden, dtype)
    y = kernels.rms_norm(x, weight, EPS)
    assert y.dtype == dtype and y.shape == x.shape
    assert relative_error(y, rms_norm_float64(x, weight)) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm_without_autograd_takes_batch_and_length_dimensions(backend, dtype):
    x, weight, _ = rms_norm_inputs(6, 40, dtype)
    x = x.detach().view(2, 3, 40)
    with torch.no_grad():
        y = kernels.rms_norm(x, weight, EPS)
    assert y.shape == x.shape and relative_error(y, rms_norm_float64(x, weight)) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("tokens,hidden", [(1, 24), (7, 40), (37, 72), (300, 896)])
def test_rms_norm_without_autograd_on_cpu_is_transformers_rms_norm_bit_for_bit(tokens, hidden, dtype):
    from transformers.models.llama.modeling_llama import LlamaRMSNorm
    x, weight, _ = rms_norm_inputs(tokens, hidden, dtype)
    theirs = LlamaRMSNorm(hidden, eps=EPS).to(dtype)
    with torch.no_grad(), kernels.use_backend("torch"):
        theirs.weight.copy_(weight)
        assert torch.equal(kernels.rms_norm(x.cpu(), weight.cpu(), EPS), theirs.cpu()(x.cpu()))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tokens,hidden", NORM_CASES)
def test_rms_norm_input_gradient_matches_float64(backend, tokens, hidden, dtype):
    x, weight, dy = rms_norm_inputs(tokens, hidden, dtype)
    dx, = torch.autograd.grad(kernels.rms_norm(x, weight, EPS), x, dy)
    x64 = x.detach().double().requires_grad_()
    assert dx.dtype == dtype
    assert relative_error(dx, float64_grads(rms_norm_float64(x64, weight), x64, dy)[0]) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tokens,hidden", NORM_CASES)
def test_rms_norm_weight_gradient_matches_float64_when_the_weight_trains(backend, tokens, hidden, dtype):
    x, weight, dy = rms_norm_inputs(tokens, hidden, dtype, weight_trains=True)
    dw, = torch.autograd.grad(kernels.rms_norm(x, weight, EPS), weight, dy)
    w64 = weight.detach().double().requires_grad_()
    assert dw.dtype == dtype
    assert relative_error(dw, float64_grads(rms_norm_float64(x, w64), w64, dy)[0]) <= TOLERANCE[dtype]


def test_rms_norm_backward_computes_no_weight_gradient_for_a_frozen_weight(backend):
    x, weight, dy = rms_norm_inputs(7, 40, torch.float32)
    ops = kernels.ops_for(x)
    _, rstd = ops.rms_norm_forward(x.detach(), weight, EPS)
    dx, dw = ops.rms_norm_backward(dy, x.detach(), weight, rstd, need_dweight=False)
    assert dw is None and dx.shape == x.shape


def test_rms_norm_saves_only_its_input_weight_and_one_scale_per_token(backend):
    x, weight, _ = rms_norm_inputs(37, 72, torch.bfloat16)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        kernels.rms_norm(x, weight, EPS)
    assert sorted(t.numel() for t in saved) == [37, 72, 37 * 72]
    assert [t.dtype for t in saved if t.numel() == 37 * 72] == [torch.bfloat16]  # no fp32 copy of x


# RoPE

def rope_inputs(batch, length, q_heads, kv_heads, head_dim, dtype):
    """q, k laid out as the projections write them, and the tables of packed rows: row r holds
    examples of 3 + 2r tokens, positions restarting at 0 for each (+ 1000 so the angles are large)."""
    torch.manual_seed(length + head_dim)
    q = random(batch, length, q_heads, head_dim, dtype=dtype).detach().transpose(1, 2).requires_grad_()
    k = random(batch, length, kv_heads, head_dim, dtype=dtype).detach().transpose(1, 2).requires_grad_()
    positions = torch.stack([torch.arange(length, device=DEVICE) % (3 + 2 * row) + 1000 * row for row in range(batch)])
    inv_freq = 1.0 / 10000 ** (torch.arange(0, head_dim, 2, device=DEVICE).float() / head_dim)
    return q, k, *kernels.rope_tables(positions[:, None, :, None].float() * inv_freq, dtype)


def rope_float64(x, cos, sin):
    """HF's x·cos + rotate_half(x)·sin, with sin θ taken from the table's second half."""
    first, second = x.double().chunk(2, dim=-1)
    sin_theta = sin.double().chunk(2, dim=-1)[1]
    return x.double() * cos.double() + torch.cat((-second, first), dim=-1) * torch.cat((sin_theta, sin_theta), dim=-1)


def test_rope_tables_hold_cos_twice_and_minus_sin_then_sin():
    angles = torch.rand(3, 1, 5, 8, device=DEVICE) * 100
    cos, sin = kernels.rope_tables(angles, torch.float32)
    assert torch.equal(cos, torch.cat((angles.cos(), angles.cos()), dim=-1))
    assert torch.equal(sin, torch.cat((-angles.sin(), angles.sin()), dim=-1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,length,q_heads,kv_heads,head_dim", ROPE_CASES)
def test_rope_forward_matches_float64(backend, batch, length, q_heads, kv_heads, head_dim, dtype):
    q, k, cos, sin = rope_inputs(batch, length, q_heads, kv_heads, head_dim, dtype)
    for actual, x in zip(kernels.rope(q, k, cos, sin), (q, k)):
        assert actual.dtype == dtype and actual.shape == x.shape
        assert relative_error(actual, rope_float64(x, cos, sin)) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,length,q_heads,kv_heads,head_dim", ROPE_CASES)
def test_rope_backward_matches_float64(backend, batch, length, q_heads, kv_heads, head_dim, dtype):
    q, k, cos, sin = rope_inputs(batch, length, q_heads, kv_heads, head_dim, dtype)
    dq_out, dk_out = torch.randn_like(q), torch.randn_like(k)
    grads = torch.autograd.grad(kernels.rope(q, k, cos, sin), (q, k), (dq_out, dk_out))
    q64, k64 = (x.detach().double().requires_grad_() for x in (q, k))
    expected = torch.autograd.grad((rope_float64(q64, cos, sin), rope_float64(k64, cos, sin)), (q64, k64),
                                   (dq_out.double(), dk_out.double()))
    for actual, wanted in zip(grads, expected):
        assert actual.dtype == dtype and relative_error(actual, wanted) <= TOLERANCE[dtype]


# SwiGLU

def swiglu_inputs(tokens, inner, dtype):
    torch.manual_seed(tokens + inner)
    return (random(tokens, inner, dtype=dtype, scale=3.0), random(tokens, inner, dtype=dtype),
            random(tokens, inner, dtype=dtype, grad=False))


def swiglu_float64(gate, up):
    return F.silu(gate.double()) * up.double()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tokens,inner", SWIGLU_CASES)
def test_swiglu_forward_matches_float64(backend, tokens, inner, dtype):
    gate, up, _ = swiglu_inputs(tokens, inner, dtype)
    y = kernels.swiglu(gate, up)
    assert y.dtype == dtype and relative_error(y, swiglu_float64(gate, up)) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tokens,inner", SWIGLU_CASES)
def test_swiglu_backward_matches_float64(backend, tokens, inner, dtype):
    gate, up, dy = swiglu_inputs(tokens, inner, dtype)
    grads = torch.autograd.grad(kernels.swiglu(gate, up), (gate, up), dy)
    gate64, up64 = (x.detach().double().requires_grad_() for x in (gate, up))
    for actual, wanted in zip(grads, float64_grads(swiglu_float64(gate64, up64), (gate64, up64), dy)):
        assert actual.dtype == dtype and relative_error(actual, wanted) <= TOLERANCE[dtype]


def test_swiglu_saves_only_gate_and_up(backend):
    gate, up, _ = swiglu_inputs(7, 40, torch.float32)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        kernels.swiglu(gate, up)
    assert len(saved) == 2 and saved[0] is gate and saved[1] is up


# Cross-entropy

def loss_inputs(batch, length, hidden, vocab, dtype):
    """Hidden states, lm_head weight and labels: -100 on each row's first third (the prompt) and on
    all of row 1, which has no label at all."""
    torch.manual_seed(length + vocab)
    labels = torch.randint(0, vocab, (batch, length), device=DEVICE)
    labels[:, :length // 3] = IGNORE_INDEX
    labels[1:2] = IGNORE_INDEX
    return random(batch, length, hidden, dtype=dtype), random(vocab, hidden, dtype=dtype, scale=hidden**-0.5), labels


def loss_float64(hidden, weight, labels):
    logits = hidden[:, :-1].double() @ weight.double().t()
    return F.cross_entropy(logits.flatten(0, 1), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX, reduction="sum")


LOSS_DTYPES = [pytest.param(torch.float32, id="fp32"), pytest.param(torch.bfloat16, id="bf16")]


@pytest.mark.parametrize("dtype", LOSS_DTYPES)
@pytest.mark.parametrize("batch,length,hidden,vocab,chunk_rows", LOSS_CASES)
def test_next_token_loss_matches_float64(backend, batch, length, hidden, vocab, chunk_rows, dtype):
    h, weight, labels = loss_inputs(batch, length, hidden, vocab, dtype)
    loss = next_token_loss(h, weight, labels, chunk_rows)
    expected = loss_float64(h, weight, labels).item()
    assert loss.dtype == torch.float32 and abs(loss.item() - expected) <= TOLERANCE[dtype] * expected


@pytest.mark.parametrize("dtype", LOSS_DTYPES)
@pytest.mark.parametrize("batch,length,hidden,vocab,chunk_rows", LOSS_CASES)
def test_next_token_loss_gradients_match_float64(backend, batch, length, hidden, vocab, chunk_rows, dtype):
    h, weight, labels = loss_inputs(batch, length, hidden, vocab, dtype)
    grads = torch.autograd.grad(next_token_loss(h, weight, labels, chunk_rows), (h, weight))
    h64, weight64 = (x.detach().double().requires_grad_() for x in (h, weight))
    for actual, wanted in zip(grads, torch.autograd.grad(loss_float64(h64, weight64, labels), (h64, weight64))):
        assert actual.dtype == dtype and relative_error(actual, wanted) <= TOLERANCE[dtype]


def test_next_token_loss_of_a_batch_without_labels_is_zero_with_zero_gradient(backend):
    h, weight, labels = loss_inputs(2, 7, 24, 50, torch.float32)
    loss = next_token_loss(h, weight, torch.full_like(labels, IGNORE_INDEX))
    grad, = torch.autograd.grad(loss, h)
    assert loss.item() == 0 and torch.equal(grad, torch.zeros_like(h))


# The training step, and the backend switch

def adapted_tiny_model(dtype):
    """The tiny Qwen2 model with LoRA on attention and MLP (B random, so A gets gradients) and
    two rows of two packed examples each."""
    _, model = make_pair("qwen2-untied")
    model.to(DEVICE, dtype)
    inject(model, LoRASettings(rank=4, alpha=8, targets=("q_proj", "v_proj", "up_proj", "down_proj")))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=generator) * 0.2)
    examples = [Example(torch.randint(0, TINY["vocab_size"], (n,), generator=generator).tolist(), prompt)
                for n, prompt in [(5, 2), (9, 6), (14, 3), (11, 4)]]
    return model, collate(examples, [[0, 1], [2, 3]], pad_id=0, device=DEVICE)


@pytest.mark.parametrize("dtype", [pytest.param(torch.float32, id="fp32"),
                                   pytest.param(torch.bfloat16, id="bf16", marks=needs_gpu)])
def test_training_step_with_every_fused_kernel_matches_the_torch_path(dtype):
    if not RUNS_TRITON:
        pytest.skip("needs triton, and CUDA or TRITON_INTERPRET=1")
    model, batch = adapted_tiny_model(dtype)
    losses, grads = {}, {}
    for backend in ("torch", "triton"):
        for _, layer in lora_layers(model):
            layer.backend = backend
        with kernels.use_backend(backend):
            losses[backend] = train.train_window(model, [batch])
        grads[backend] = [p.grad for _, layer in lora_layers(model) for p in (layer.lora_A, layer.lora_B)]
        model.zero_grad(set_to_none=True)
    # bf16 gradients of this model are themselves ~4% from float64's (torch path, measured on CPU).
    tolerance = 1e-4 if dtype == torch.float32 else 1e-1
    assert abs(losses["triton"] - losses["torch"]) <= tolerance * losses["torch"]
    for fused, plain in zip(grads["triton"], grads["torch"]):
        assert relative_error(fused, plain.double()) <= tolerance


def test_auto_backend_runs_torch_on_cpu_tensors():
    assert kernels.ops_for(torch.zeros(1)) is kernels.TorchOps


@needs_gpu
def test_auto_backend_runs_triton_on_cuda_tensors():
    from model import kernels_triton
    assert kernels.ops_for(torch.zeros(1, device="cuda")) is kernels_triton


def test_unknown_backend_is_a_one_line_error():
    with pytest.raises(PhysloraError, match="use one of auto, torch, triton"):
        with kernels.use_backend("cuda"):
            pass


def test_triton_backend_without_triton_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(kernels, "_triton_kernels", lambda: None)
    with kernels.use_backend("triton"), pytest.raises(PhysloraError, match="triton is not installed"):
        kernels.swiglu(torch.zeros(2), torch.zeros(2))
