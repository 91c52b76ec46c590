"""Layers that read one input share one product in bf16 decoding on CPU (model/linear.py): `fuse_storage`
changes where the weights live, nothing else, and `project` takes the joint product only when that is
the same maths."""
import copy

import pytest
import torch
from torch import nn

from lora.adapter import LoRASettings, inject
from lora.layer import LoRALinear
from model.config import ModelConfig
from model.export import export_hf_folder
from model.linear import SKINNY_ROWS, Linear, fuse_storage, joint_parameters, project
from model.sampler import SamplingParams, generate
from model.transformer import MLP, Transformer
from model.weights import build_model, read_hf_folder
from test_linear import RecordCalls, reference
from tiny_models import TINY, make_pair

PRODUCTS = {"mv", "addmv", "matmul", "addmm", "linear"}


def qkv_layers(bias=True, dtype=torch.bfloat16):
    torch.manual_seed(0)
    return [Linear(24, rows, bias=bias).to(dtype) for rows in (40, 8, 8)]


def products(fn):
    with RecordCalls() as calls:
        fn()
    return sum(name in PRODUCTS for name in calls.names)


def test_fuse_storage_keeps_the_parameters_their_values_and_the_state_dict():
    layers = qkv_layers()
    before = [(layer.weight, layer.bias, layer.state_dict()) for layer in layers]
    before_values = copy.deepcopy([state for _, _, state in before])
    fuse_storage(*layers)
    for layer, (weight, bias, _), values in zip(layers, before, before_values):
        assert layer.weight is weight and layer.bias is bias
        assert layer.state_dict().keys() == values.keys()
        assert all(torch.equal(layer.state_dict()[key], values[key]) for key in values)
    assert joint_parameters(layers) is not None
    assert len({layer.weight.untyped_storage().data_ptr() for layer in layers}) == 1


@pytest.mark.parametrize("rows, dtype", [(1, torch.bfloat16), (3, torch.bfloat16), (SKINNY_ROWS, torch.bfloat16),
                                         (SKINNY_ROWS + 1, torch.bfloat16), (5, torch.float32)])
@pytest.mark.parametrize("bias", [False, True])
def test_project_multiplies_layers_laid_out_together_in_one_product(rows, dtype, bias):
    layers = qkv_layers(bias, dtype)
    fuse_storage(*layers)
    x = torch.randn(rows, 24, dtype=dtype)
    with torch.inference_mode():
        assert products(lambda: project(x, *layers)) == 1
        outputs = project(x, *layers)
    for layer, got in zip(layers, outputs):
        exact, scale = reference(x, layer.weight, layer.bias)
        assert got.shape == (rows, layer.out_features)
        assert (got.double() - exact).abs().le(2**-8 * exact.abs() + 1e-5 * scale + 1e-6).all()


def replace_a_weight(layers):
    layers[1].weight = nn.Parameter(layers[1].weight.detach().clone(), requires_grad=False)
    return layers


def wrap_one_in_lora(layers):
    layers[2] = LoRALinear(layers[2], rank=2, alpha=4.0)  # as LoRA on v_proj alone: q_proj still holds the joint
    return layers


@pytest.mark.parametrize("change", [
    None,               # never laid out together
    replace_a_weight,   # one weight no longer in the joint storage
    wrap_one_in_lora,   # an adapter must add its own term
])
def test_project_runs_each_layer_alone_where_one_product_would_not_be_the_same(change):
    layers = qkv_layers()
    if change is not None:
        fuse_storage(*layers)
        layers = change(layers)
    x = torch.randn(1, 24).bfloat16()
    with torch.inference_mode():
        assert products(lambda: project(x, *layers)) >= 3


@pytest.mark.parametrize("rows", [1, 3, SKINNY_ROWS])
def test_mlp_of_laid_out_bf16_layers_matches_the_mlp_of_separate_ones(rows):
    torch.manual_seed(rows)
    mlp = MLP(ModelConfig(model_type="llama", head_dim=16, num_key_value_heads=2, **TINY)).bfloat16()
    with torch.no_grad():
        for param in mlp.parameters():
            param.normal_(0, 0.2)
    x = torch.randn(rows, 1, TINY["hidden_size"]).bfloat16()
    with torch.inference_mode():
        separate = mlp(x)
        fuse_storage(mlp.gate_proj, mlp.up_proj)
        assert products(lambda: mlp(x)) == 2  # gate and up in one, down
        laid_out = mlp(x)
    assert laid_out.shape == separate.shape and laid_out.is_contiguous()
    # The same bf16 roundings; only down_proj's sums may run in another order.
    assert torch.allclose(laid_out.float(), separate.float(), rtol=2**-7, atol=2**-7 * separate.abs().max().item())


def test_project_runs_each_layer_alone_when_autograd_records_a_weight_gradient():
    layers = qkv_layers()
    fuse_storage(*layers)
    x = torch.randn(1, 24).bfloat16().requires_grad_()
    assert products(lambda: project(x, *layers)) == 3


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.bfloat16, 2**-7)])
def test_frozen_layers_laid_out_together_share_one_product_and_give_the_same_input_gradient(dtype, tolerance):
    layers = [layer.requires_grad_(False) for layer in qkv_layers(dtype=dtype)]
    x = torch.randn(37, 24, dtype=dtype, requires_grad=True)
    upstream = [torch.randn(37, layer.out_features, dtype=dtype) for layer in layers]

    def input_gradient():
        outputs = project(x, *layers)
        return torch.autograd.grad(sum((y.float() * g.float()).sum() for y, g in zip(outputs, upstream)), x)[0]

    separate = input_gradient()
    fuse_storage(*layers)
    assert products(lambda: project(x, *layers)) == 1
    joint = input_gradient()
    assert torch.allclose(joint.float(), separate.float(), rtol=tolerance, atol=tolerance * separate.abs().max().item())


@pytest.mark.parametrize("dtype, laid_out", [(torch.bfloat16, True), (torch.float32, False)])
def test_build_model_lays_out_cpu_bf16_models_only(dtype, laid_out):
    hf_model, _ = make_pair("qwen2-untied")
    config = ModelConfig.from_hf(hf_model.config.to_dict())
    model = build_model(config, dict(hf_model.state_dict()), dtype, "cpu", source="tiny")
    for block in model.model.layers:
        attention, mlp = block.self_attn, block.mlp
        assert (joint_parameters((attention.q_proj, attention.k_proj, attention.v_proj)) is not None) == laid_out
        assert (joint_parameters((mlp.gate_proj, mlp.up_proj)) is not None) == laid_out


@pytest.mark.parametrize("name", ["qwen2-untied", "llama3-gqa-rope-scaling"])
def test_bf16_generation_on_cpu_lays_out_q_k_v_and_gate_up_together_and_gives_the_same_tokens(name, monkeypatch):
    prompts = [torch.randint(3, TINY["vocab_size"], (n,)).tolist() for n in (6, 11)]
    params = SamplingParams(max_new_tokens=16)
    separate = make_pair(name)[1].to(torch.bfloat16)
    with monkeypatch.context() as patch:
        patch.setattr(Transformer, "fuse_projections", lambda self: None)
        expected = generate(separate, prompts, params, stop_ids=[], pad_id=0)
    fused = make_pair(name)[1].to(torch.bfloat16)
    assert generate(fused, prompts, params, stop_ids=[], pad_id=0) == expected
    for block in fused.model.layers:
        attention, mlp = block.self_attn, block.mlp
        assert joint_parameters([attention.q_proj, attention.k_proj, attention.v_proj]) is not None
        assert joint_parameters([mlp.gate_proj, mlp.up_proj]) is not None


def test_fp32_generation_leaves_the_weights_where_they_are():
    model = make_pair("qwen2-tied")[1]
    generate(model, [[5, 6, 7]], SamplingParams(max_new_tokens=2), stop_ids=[], pad_id=0)
    attention = model.model.layers[0].self_attn
    assert joint_parameters([attention.q_proj, attention.k_proj, attention.v_proj]) is None


def test_a_model_laid_out_by_generation_still_trains_with_lora_and_exports(tmp_path):
    model = make_pair("qwen2-untied")[1].to(torch.bfloat16)
    generate(model, [[5, 6, 7]], SamplingParams(max_new_tokens=2), stop_ids=[], pad_id=0)  # inference mode
    state = {key: value.clone() for key, value in model.state_dict().items()}
    folder = export_hf_folder(model, None, str(tmp_path / "export"))
    config, exported = read_hf_folder(folder)
    assert all(torch.equal(exported[key], state[key]) for key in exported)
    inject(model, LoRASettings(rank=4, alpha=8, targets=("q_proj", "v_proj", "up_proj")))
    model.train()
    model(torch.tensor([[5, 6, 7, 8]])).float().sum().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "lora_" in n)
    reloaded = build_model(config, exported, torch.bfloat16, "cpu", source=folder)
    assert reloaded.state_dict().keys() == state.keys()
