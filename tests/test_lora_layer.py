"""Specification of lora/layer.py: LoRALinear and its torch path (the Triton path: test_lora_kernels.py)."""
import copy
import math

import pytest
import torch
from torch import nn

from common.errors import PhysloraError
from lora.layer import LoRALinear, TorchOps, lora_linear

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def make_layer(in_features=24, out_features=16, rank=4, alpha=8.0, bias=True, trained=True,
               dtype=torch.float32, device="cpu", **kwargs):
    """A LoRALinear on a fresh nn.Linear; `trained` gives B random values, as after some steps."""
    base = nn.Linear(in_features, out_features, bias=bias, dtype=dtype, device=device)
    layer = LoRALinear(base, rank, alpha, **kwargs)
    if trained:
        nn.init.normal_(layer.lora_B)
    return layer


def relative_error(actual, expected):
    return ((actual.double() - expected.double()).norm() / expected.double().norm()).item()


# ---- construction --------------------------------------------------------------------------

def test_starts_identical_to_the_base_linear():
    base = nn.Linear(24, 16)
    layer = LoRALinear(base, rank=4, alpha=8)
    x = torch.randn(5, 24)
    assert torch.equal(layer(x), base(x))


def test_initialises_A_kaiming_uniform_and_B_zero_as_peft():
    layer = make_layer(in_features=400, rank=64, trained=False)
    bound = 1 / math.sqrt(400)  # kaiming_uniform(a=√5) on an (r, in) weight
    assert layer.lora_A.abs().max() <= bound
    assert abs(layer.lora_A.std().item() - bound / math.sqrt(3)) < 0.02 * bound
    assert torch.count_nonzero(layer.lora_B) == 0


def test_keeps_base_frozen_and_adapters_trainable_fp32():
    params = dict(make_layer(dtype=torch.bfloat16).named_parameters())
    assert list(params) == ["weight", "bias", "lora_A", "lora_B"]
    assert [p.requires_grad for p in params.values()] == [False, False, True, True]
    assert params["lora_A"].shape == (4, 24) and params["lora_B"].shape == (16, 4)
    assert params["lora_A"].dtype == params["lora_B"].dtype == torch.float32


@pytest.mark.parametrize("rslora,expected", [(False, 16 / 8), (True, 16 / math.sqrt(8))])
def test_scaling_is_alpha_over_rank_or_over_root_rank_with_rslora(rslora, expected):
    assert make_layer(rank=8, alpha=16, rslora=rslora).scaling == pytest.approx(expected)


@pytest.mark.parametrize("kwargs", [dict(rank=0), dict(rank=-2), dict(rank=2.5), dict(alpha=0),
                                    dict(alpha=-1.0), dict(dropout=-0.1), dict(dropout=1.0),
                                    dict(backend="cuda")])
def test_rejects_bad_arguments_with_a_one_line_error(kwargs):
    arguments = dict(rank=4, alpha=8.0) | kwargs
    with pytest.raises(PhysloraError) as error:
        LoRALinear(nn.Linear(24, 16), **arguments)
    assert "\n" not in str(error.value) and ";" in str(error.value)


def test_rejects_a_base_that_is_not_a_linear():
    with pytest.raises(PhysloraError, match="nn.Linear"):
        LoRALinear(nn.Conv1d(3, 3, 1), rank=4, alpha=8)


@pytest.mark.parametrize("x", [torch.randn(2, 23), torch.randn(2, 24, dtype=torch.float64)],
                         ids=["wrong-width", "wrong-dtype"])
def test_rejects_an_input_that_does_not_fit_the_base(x):
    with pytest.raises(PhysloraError):
        make_layer()(x)


def test_extra_repr_shows_the_adapter_settings():
    text = repr(make_layer(rank=4, alpha=8.0, dropout=0.05))
    for setting in ("rank=4", "alpha=8.0", "scaling=2", "dropout=0.05", "merged=False"):
        assert setting in text


# ---- forward and backward ------------------------------------------------------------------

def test_forward_is_base_plus_scaled_low_rank_term():
    layer = make_layer(bias=False)
    x = torch.randn(7, 24)
    expected = x @ layer.weight.t() + layer.scaling * (x @ layer.lora_A.t()) @ layer.lora_B.t()
    assert relative_error(layer(x), expected) <= 1e-6


def test_accepts_inputs_of_any_leading_shape():
    layer = make_layer()
    x = torch.randn(2, 3, 5, 24)
    y = layer(x)
    assert y.shape == (2, 3, 5, 16)
    assert torch.allclose(y, layer(x.reshape(30, 24)).reshape(2, 3, 5, 16))


def test_auto_backend_runs_torch_on_cpu():
    assert make_layer().backend_for(torch.zeros(1, 24)) == "torch"


@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_torch_path_passes_gradcheck_in_float64(dropout):
    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 6, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64)
    lora_A = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    lora_B = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)

    def op(x, lora_A, lora_B):  # a fixed seed: every evaluation uses the same mask
        return lora_linear(x, weight, bias, lora_A, lora_B, 1.5, dropout, seed=99)

    assert torch.autograd.gradcheck(op, (x, lora_A, lora_B))


def test_dropout_drops_input_features_of_the_low_rank_branch_only():
    x = torch.randn(9, 6, dtype=torch.float64)
    weight, lora_A, lora_B = (torch.randn(*shape, dtype=torch.float64) for shape in [(4, 6), (3, 6), (4, 3)])
    keep = TorchOps.keep_mask(9, 6, 0.5, 42, "cpu")
    expected = x @ weight.t() + 1.5 * ((x * keep / 0.5) @ lora_A.t()) @ lora_B.t()
    assert torch.allclose(lora_linear(x, weight, None, lora_A, lora_B, 1.5, 0.5, seed=42), expected)
    assert 0 < keep.sum() < keep.numel()


def test_dropout_is_off_in_eval_mode():
    layer = make_layer(dropout=0.5).eval()
    x = torch.randn(7, 24)
    assert torch.equal(layer(x), layer(x))


@pytest.mark.parametrize("rslora", [False, True])
def test_matches_peft_lora_linear_in_output_and_adapter_gradients(rslora):
    peft = pytest.importorskip("peft")
    model = nn.Sequential(nn.Linear(24, 16))
    ours = LoRALinear(copy.deepcopy(model[0]), rank=4, alpha=12, rslora=rslora)
    nn.init.normal_(ours.lora_B)
    config = peft.LoraConfig(r=4, lora_alpha=12, lora_dropout=0.0, target_modules=["0"], use_rslora=rslora)
    theirs = peft.get_peft_model(model, config).base_model.model[0]
    theirs.lora_A["default"].weight.data.copy_(ours.lora_A)
    theirs.lora_B["default"].weight.data.copy_(ours.lora_B)
    x = torch.randn(3, 5, 24)
    y_ours, y_theirs = ours(x), theirs(x)
    (y_ours.sin().sum()).backward()
    (y_theirs.sin().sum()).backward()
    assert relative_error(y_ours, y_theirs) <= 1e-6
    assert relative_error(ours.lora_A.grad, theirs.lora_A["default"].weight.grad) <= 1e-6
    assert relative_error(ours.lora_B.grad, theirs.lora_B["default"].weight.grad) <= 1e-6


def test_base_weight_gets_no_gradient():
    layer = make_layer()
    layer(torch.randn(5, 24, requires_grad=True)).sum().backward()
    assert layer.weight.grad is None and layer.bias.grad is None


def test_backward_skips_dx_when_the_input_needs_no_gradient(monkeypatch):
    requested = []
    original = TorchOps.lora_backward

    def recording(*args):
        requested.append(args[-3:])
        return original(*args)

    monkeypatch.setattr(TorchOps, "lora_backward", staticmethod(recording))
    layer = make_layer()
    layer(torch.randn(5, 24)).sum().backward()
    assert requested == [(False, True, True)]
    assert layer.lora_A.grad is not None and layer.lora_B.grad is not None


def test_trains_B_alone_when_A_is_frozen():
    layer = make_layer()
    layer.lora_A.requires_grad_(False)  # LoRA-FA
    x = torch.randn(5, 24)
    layer(x).sum().backward()
    expected = layer.scaling * torch.ones(16, 5) @ (x @ layer.lora_A.t())
    assert layer.lora_A.grad is None
    assert relative_error(layer.lora_B.grad, expected) <= 1e-6


def test_bf16_base_keeps_bf16_activations_and_fp32_adapter_gradients():
    layer = make_layer(dtype=torch.bfloat16)
    x = torch.randn(5, 24, dtype=torch.bfloat16, requires_grad=True)
    y = layer(x)
    y.float().sum().backward()
    assert y.dtype == x.grad.dtype == torch.bfloat16
    assert layer.lora_A.grad.dtype == layer.lora_B.grad.dtype == torch.float32


# ---- merge ---------------------------------------------------------------------------------

def test_merged_forward_equals_unmerged_forward():
    layer = make_layer()
    x = torch.randn(7, 24)
    unmerged = layer(x)
    layer.merge()
    assert layer.merged
    assert relative_error(layer(x), unmerged) <= 1e-5


def test_unmerge_restores_the_base_weight():
    layer = make_layer()
    original = layer.weight.clone()
    layer.merge()
    layer.unmerge()
    assert not layer.merged
    assert (layer.weight - original).abs().max() <= 1e-6


def test_merge_twice_adds_the_update_once():
    layer = make_layer()
    layer.merge()
    once = layer.weight.clone()
    layer.merge()
    assert torch.equal(layer.weight, once)


# ---- GPU -----------------------------------------------------------------------------------

@needs_gpu
@pytest.mark.parametrize("dtype,tolerance", [(torch.bfloat16, 2e-2), (torch.float32, 1e-4)], ids=["bf16", "fp32"])
def test_layer_on_cuda_matches_float64_reference(dtype, tolerance):
    layer = make_layer(2048, 512, rank=16, alpha=32, dtype=dtype, device="cuda")
    x = torch.randn(4, 1024, 2048, device="cuda", dtype=dtype, requires_grad=True)
    dy = torch.randn(4, 1024, 512, device="cuda", dtype=dtype)
    y = layer(x)
    y.backward(dy)
    x64, A64, B64 = (t.detach().double().requires_grad_() for t in (x, layer.lora_A, layer.lora_B))
    y64 = x64 @ layer.weight.double().t() + layer.bias.double() + layer.scaling * (x64 @ A64.t()) @ B64.t()
    y64.backward(dy.double())
    assert relative_error(y, y64) <= tolerance
    for actual, expected in ((x.grad, x64.grad), (layer.lora_A.grad, A64.grad), (layer.lora_B.grad, B64.grad)):
        assert relative_error(actual, expected) <= tolerance
