"""Adapters: injection, parameter counts, PEFT file-format interop both ways, merge and export."""
import json
import re

import peft
import pytest
import torch
import transformers

from common.errors import PhysloraError
from benchmarks.shapes import QWEN25_05B
from lora.adapter import (TARGETS, LoRASettings, inject, load_adapter, lora_layers, merge_into_base,
                          parse_targets, read_adapter_settings, save_adapter)
from model.config import ModelConfig
from model.transformer import Transformer
from tiny_models import TINY, make_pair



def randomize_lora(model, seed=0):
    """Give B non-zero values: a fresh adapter (B = 0) would hide every mapping bug."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_A.copy_(torch.randn(layer.lora_A.shape, generator=generator) * 0.3)
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=generator) * 0.3)


def test_trainable_parameters_on_qwen25_05b_q_v_rank_8_are_540672():
    with torch.device("meta"):
        model = Transformer(ModelConfig.from_hf(QWEN25_05B))
        counts = inject(model, LoRASettings(rank=8, alpha=32, targets=("q_proj", "v_proj")))
    assert counts["trainable"] == 540_672
    assert round(counts["percent"], 2) == 0.11


def test_only_lora_parameters_are_trainable():
    _, ours = make_pair("qwen2-tied")
    inject(ours, LoRASettings(rank=4, targets=("q_proj", "down_proj")))
    trainable = {name for name, p in ours.named_parameters() if p.requires_grad}
    assert trainable and all(name.endswith(("lora_A", "lora_B")) for name in trainable)
    assert len(trainable) == 2 * 2 * TINY["num_hidden_layers"]


def test_fresh_adapter_leaves_the_model_unchanged():
    _, ours = make_pair("llama3-gqa-rope-scaling")
    ids = torch.randint(0, TINY["vocab_size"], (2, 9))
    # Without autograd both times: with it, RMSNorm runs the Function that keeps r for its backward, whose
    # roundings differ from torch.rms_norm's (model/kernels.py), and inject freezes the weights it records for.
    with torch.no_grad():
        before = ours(ids)
        inject(ours, LoRASettings(rank=8, alpha=16, targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                             "up_proj", "down_proj")))
        assert torch.equal(ours(ids), before)


@pytest.mark.parametrize("name", ["qwen2-untied", "llama3-gqa-rope-scaling"])
@pytest.mark.parametrize("rslora", [False, True])
def test_our_saved_adapter_loads_in_peft_with_identical_logits(name, rslora, tmp_path):
    hf_model, ours = make_pair(name)
    inject(ours, LoRASettings(rank=4, alpha=12, targets=("q_proj", "v_proj", "gate_proj"), rslora=rslora))
    randomize_lora(ours)
    save_adapter(ours, str(tmp_path), base_model=name)
    peft_model = peft.PeftModel.from_pretrained(hf_model, str(tmp_path)).eval()
    ids = torch.randint(0, TINY["vocab_size"], (2, 11))
    with torch.no_grad():
        assert (ours(ids) - peft_model(ids).logits).abs().max().item() <= 1e-4


@pytest.mark.parametrize("name", ["qwen2-tied", "llama-head-dim-32"])
def test_peft_saved_adapter_loads_into_our_model_with_identical_logits(name, tmp_path):
    hf_model, ours = make_pair(name)
    config = peft.LoraConfig(r=6, lora_alpha=24, target_modules=["k_proj", "o_proj", "up_proj"],
                             task_type="CAUSAL_LM", init_lora_weights=False)  # random A and B
    peft_model = peft.get_peft_model(hf_model, config).eval()
    peft_model.save_pretrained(str(tmp_path))
    settings = load_adapter(ours, str(tmp_path))
    assert settings.rank == 6 and set(settings.targets) == {"k_proj", "o_proj", "up_proj"}
    ids = torch.randint(0, TINY["vocab_size"], (1, 13))
    with torch.no_grad():
        assert (ours(ids) - peft_model(ids).logits).abs().max().item() <= 1e-4


def test_adapter_files_follow_peft_naming(tmp_path):
    _, ours = make_pair("qwen2-tied")
    inject(ours, LoRASettings(rank=2, targets=("q_proj",)))
    save_adapter(ours, str(tmp_path))
    from safetensors.torch import load_file
    keys = sorted(load_file(str(tmp_path / "adapter_model.safetensors")))
    assert keys[:2] == ["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"]
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert (config["peft_type"], config["task_type"], config["r"]) == ("LORA", "CAUSAL_LM", 2)


def test_merged_export_loads_in_transformers_with_matching_logits(tmp_path):
    from model.export import export_hf_folder
    _, ours = make_pair("qwen2-untied")
    inject(ours, LoRASettings(rank=4, alpha=8, targets=("q_proj", "v_proj", "down_proj")))
    randomize_lora(ours)
    ids = torch.randint(0, TINY["vocab_size"], (2, 10))
    with torch.no_grad():
        adapted = ours(ids)
    merge_into_base(ours)
    assert not lora_layers(ours)
    export_hf_folder(ours, None, str(tmp_path / "merged"))
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged"), dtype=torch.float32).eval()
    with torch.no_grad():
        assert (hf(ids).logits - adapted).abs().max().item() <= 1e-4


def test_unknown_target_module_is_named():
    _, ours = make_pair("qwen2-tied")
    with pytest.raises(PhysloraError, match="unknown LoRA target module qkv_proj"):
        inject(ours, LoRASettings(targets=("q_proj", "qkv_proj")))


def test_adapter_for_another_base_shape_is_refused(tmp_path):
    _, small = make_pair("qwen2-tied")
    inject(small, LoRASettings(rank=2, targets=("k_proj",)))
    save_adapter(small, str(tmp_path))
    _, other = make_pair("qwen2-untied")  # 4 kv heads: k_proj is 64 -> 64 there, not 64 -> 32
    with pytest.raises(PhysloraError, match=r"adapter_model.safetensors: .*k_proj.lora_B.weight has shape \(32, 2\)"):
        load_adapter(other, str(tmp_path))


def test_corrupt_adapter_file_is_reported(tmp_path):
    _, ours = make_pair("qwen2-tied")
    inject(ours, LoRASettings(rank=2, targets=("q_proj",)))
    save_adapter(ours, str(tmp_path))
    (tmp_path / "adapter_model.safetensors").write_bytes(b"\x00garbage")
    _, fresh = make_pair("qwen2-tied")
    with pytest.raises(PhysloraError, match="adapter_model.safetensors: unreadable adapter weights"):
        load_adapter(fresh, str(tmp_path))


def test_adapter_for_a_model_with_other_layers_is_refused(tmp_path):
    _, three_layers = make_pair("qwen2-tied")
    inject(three_layers, LoRASettings(rank=2, targets=("q_proj",)))
    save_adapter(three_layers, str(tmp_path))
    _, two_layers = make_pair("llama-head-dim-32")
    with pytest.raises(PhysloraError, match="does not match this base model .* 2 unexpected tensors"):
        load_adapter(two_layers, str(tmp_path))


def test_folder_without_adapter_config_is_reported(tmp_path):
    _, ours = make_pair("qwen2-tied")
    with pytest.raises(PhysloraError, match="no adapter_config.json"):
        load_adapter(ours, str(tmp_path))


@pytest.mark.parametrize("written, read", [("all-linear", TARGETS), (r".*\.(q_proj|v_proj)", ("q_proj", "v_proj"))])
def test_target_modules_given_as_peft_strings_are_understood(tmp_path, written, read):
    (tmp_path / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": written}))
    assert read_adapter_settings(str(tmp_path)).targets == read


def test_targets_all_linear_names_every_projection():
    assert parse_targets("all-linear") == TARGETS and parse_targets("v_proj,q_proj") == ("v_proj", "q_proj")


@pytest.mark.parametrize("base_model, written", [("qwen2.5-0.5b-instruct", "Qwen/Qwen2.5-0.5B-Instruct"),
                                                 ("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"),
                                                 ("/models/mine", "/models/mine")])
def test_the_adapter_names_its_base_model_by_hub_id_so_peft_and_vllm_can_find_it(base_model, written, tmp_path):
    _, ours = make_pair("qwen2-tied")
    inject(ours, LoRASettings(rank=2, alpha=4))
    save_adapter(ours, str(tmp_path), base_model=base_model)
    assert json.loads((tmp_path / "adapter_config.json").read_text())["base_model_name_or_path"] == written


@pytest.mark.parametrize("field, value", [("init_lora_weights", "pissa"), ("init_lora_weights", "pissa_niter_4"),
                                          ("init_lora_weights", "olora"), ("init_lora_weights", "corda"),
                                          ("init_lora_weights", "loftq"), ("alora_invocation_tokens", [5, 6]),
                                          ("exclude_modules", ["model.layers.0.self_attn.q_proj"]),
                                          ("lora_bias", True), ("trainable_token_indices", [3, 4]),
                                          ("use_dora", True), ("layers_to_transform", [0])])
def test_an_adapter_that_is_not_plain_lora_on_the_unchanged_base_is_refused_naming_the_field(tmp_path, field, value):
    """peft would load these onto a rewritten base (PiSSA, OLoRA, ...), apply them to some tokens or
    layers only, or add weights of its own: applied as plain LoRA they give other logits."""
    (tmp_path / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], field: value}))
    with pytest.raises(PhysloraError, match=re.escape(f"{field}={value!r}")):
        read_adapter_settings(str(tmp_path))


@pytest.mark.parametrize("init", [True, False, "gaussian", "eva", "orthogonal"])
def test_initialisations_that_leave_the_base_weight_alone_are_accepted(tmp_path, init):
    (tmp_path / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "init_lora_weights": init}))
    assert read_adapter_settings(str(tmp_path)).targets == ("q_proj",)


def test_peft_writes_the_base_rewriting_initialisation_into_the_adapter_config(tmp_path):
    hf, _ = make_pair("qwen2-untied")
    model = peft.get_peft_model(hf, peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"],
                                                    init_lora_weights="pissa"))
    model.save_pretrained(str(tmp_path))
    with pytest.raises(PhysloraError, match="init_lora_weights='pissa'"):
        read_adapter_settings(str(tmp_path))
