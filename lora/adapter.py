"""Put LoRA into a model, and save / load / merge adapters in PEFT's file format.

`inject` swaps the chosen projections of every block for `LoRALinear` and freezes everything
else: only A and B train. On Qwen2.5-0.5B with r=8 on q_proj and v_proj that is
24 layers × (8·(896+896) + 8·(896+128)) = 540,672 parameters, 0.11% of the model.

An adapter folder is what `peft` writes, so peft, vLLM and this project read each other's:
  adapter_config.json        peft_type LORA, r, lora_alpha, target_modules, ...
  adapter_model.safetensors  base_model.model.<module path>.lora_A.weight (r × in)
                             base_model.model.<module path>.lora_B.weight (out × r)
"""
import json
import math
import os
from dataclasses import dataclass

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from common.errors import PhysloraError
from common.runs import write_atomically
from lora.layer import LoRALinear
from model.linear import Linear
from model.registry import hub_id

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PEFT_PREFIX = "base_model.model."
# adapter_config.json fields that make an adapter compute something other than W x + s·B A x on every
# token of every targeted layer, with the value that leaves plain LoRA unchanged
PLAIN_LORA = {"use_dora": False, "bias": "none", "lora_bias": False, "modules_to_save": None,
              "exclude_modules": None, "layers_to_transform": None, "rank_pattern": {}, "alpha_pattern": {},
              "fan_in_fan_out": False, "alora_invocation_tokens": None, "trainable_token_indices": None,
              "layer_replication": None, "target_parameters": None, "use_qalora": False, "use_bdlora": None,
              "arrow_config": None, "kasa_config": None, "monteclora_config": None}
# PiSSA, OLoRA, CorDA, LoftQ and LoRA-GA start from the base's own singular vectors (or quantization
# error) and subtract that start from the base weight, which peft redoes when it loads the adapter
INITS_THAT_KEEP_THE_BASE = (True, False, "gaussian", "eva", "orthogonal")
CONFIG_FILE, WEIGHTS_FILE = "adapter_config.json", "adapter_model.safetensors"


@dataclass
class LoRASettings:
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple = ("q_proj", "v_proj")
    rslora: bool = False


def parse_targets(text: str) -> tuple:
    """The projections a comma-separated --targets names, each one checked; `all-linear` (PEFT's name) is all."""
    names = TARGETS if text == "all-linear" else tuple(text.split(","))
    unknown = [name for name in names if name not in TARGETS]
    if unknown:
        raise PhysloraError(f"--targets {text}: unknown {', '.join(map(repr, unknown))}; "
                            f"choose from {','.join(TARGETS)} (or all-linear)")
    return names


def inject(model: nn.Module, settings: LoRASettings) -> dict:
    """Replace the target linears by LoRALinear, freeze the rest; returns the parameter counts."""
    unknown = sorted(set(settings.targets) - set(TARGETS))
    if unknown or not settings.targets:
        raise PhysloraError(f"unknown LoRA target module {', '.join(unknown) or '(none given)'}; "
                            f"choose from {', '.join(TARGETS)}")
    model.requires_grad_(False)
    for path, parent, attr, linear in _target_linears(model, settings.targets):
        setattr(parent, attr, LoRALinear(linear, settings.rank, settings.alpha, settings.dropout, settings.rslora))
    model.lora_settings = settings
    return parameter_counts(model)


def parameter_counts(model: nn.Module) -> dict:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total, "percent": 100.0 * trainable / total}


def lora_layers(model: nn.Module):
    """(module path, LoRALinear) for every adapted projection, in model order."""
    return [(path, module) for path, module in model.named_modules() if isinstance(module, LoRALinear)]


def save_adapter(model: nn.Module, folder: str, base_model: str = None) -> None:
    settings = model.lora_settings
    config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": hub_id(base_model),
        "r": settings.rank, "lora_alpha": settings.alpha, "lora_dropout": settings.dropout,
        "target_modules": list(settings.targets), "use_rslora": settings.rslora,
        "bias": "none", "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True,
        "modules_to_save": None, "layers_to_transform": None, "use_dora": False,
    }
    tensors = {}
    for path, layer in lora_layers(model):
        tensors[f"{PEFT_PREFIX}{path}.lora_A.weight"] = layer.lora_A.detach().float().contiguous()
        tensors[f"{PEFT_PREFIX}{path}.lora_B.weight"] = layer.lora_B.detach().float().contiguous()
    os.makedirs(folder, exist_ok=True)
    write_atomically(os.path.join(folder, WEIGHTS_FILE), lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    write_atomically(os.path.join(folder, CONFIG_FILE), lambda tmp: _write_json(config, tmp))


def read_adapter_settings(folder: str) -> LoRASettings:
    path = os.path.join(folder, CONFIG_FILE)
    if not os.path.exists(path):
        raise PhysloraError(f"{folder}: no {CONFIG_FILE}; pass a folder written by train.py or peft")
    try:
        with open(path) as f:
            config = json.load(f)
    except json.JSONDecodeError as err:
        raise PhysloraError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise PhysloraError(f"{path}: holds a JSON {type(config).__name__}, not an adapter config object")
    if config.get("peft_type") != "LORA":
        raise PhysloraError(f"{path}: peft_type {config.get('peft_type')!r} is not LORA")
    for key, harmless in PLAIN_LORA.items():
        if config.get(key, harmless) not in (harmless, None, [], {}):
            raise PhysloraError(f"{path}: {key}={config[key]!r} is not supported (plain LoRA only)")
    if config.get("init_lora_weights", True) not in INITS_THAT_KEEP_THE_BASE:
        raise PhysloraError(f"{path}: init_lora_weights={config['init_lora_weights']!r} trains against a base weight "
                            f"peft rewrites when it loads the adapter (W - s·B₀A₀); physlora applies plain LoRA to "
                            f"the unchanged base, so only {', '.join(map(repr, INITS_THAT_KEEP_THE_BASE))} are supported")
    targets = config.get("target_modules")
    if targets is not None and not isinstance(targets, str) and not (
            isinstance(targets, list) and all(isinstance(t, str) for t in targets)):
        raise PhysloraError(f"{path}: target_modules={targets!r} must be a list of module names or a regex string")
    if targets == "all-linear":  # PEFT's name for every linear but the output layer
        targets = TARGETS
    elif isinstance(targets, str):
        targets = [t for t in TARGETS if t in targets]  # PEFT also allows a regex naming the modules
    try:
        settings = LoRASettings(rank=int(config["r"]), alpha=float(config["lora_alpha"]),
                                dropout=float(config.get("lora_dropout", 0.0)), targets=tuple(targets or ()),
                                rslora=bool(config.get("use_rslora", False)))
    except KeyError as err:
        raise PhysloraError(f"{path}: no {err.args[0]!r}; an adapter config needs r and lora_alpha") from None
    except (TypeError, ValueError) as err:
        raise PhysloraError(f"{path}: r, lora_alpha and lora_dropout must be numbers ({err})") from None
    unknown = [name for name in settings.targets if name not in TARGETS]
    whole_rank = settings.rank >= 1 and settings.rank == config["r"]
    problems = [f"r={config['r']!r} must be a whole number >= 1" if not whole_rank else "",
                f"lora_alpha={config['lora_alpha']!r} must be finite" if not math.isfinite(settings.alpha) else "",
                f"lora_dropout={settings.dropout!r} must be in [0, 1)" if not 0 <= settings.dropout < 1 else "",
                f"target_modules={config.get('target_modules')!r} names none of {', '.join(TARGETS)}"
                if not settings.targets else "",
                f"target_modules: unknown {', '.join(map(repr, unknown))}; choose from {', '.join(TARGETS)}"
                if unknown else ""]
    if any(problems):
        raise PhysloraError(f"{path}: {'; '.join(filter(None, problems))}")
    return settings


def load_adapter(model: nn.Module, folder: str) -> LoRASettings:
    """Inject LoRA as the adapter describes and load its weights; the base must match."""
    settings = read_adapter_settings(folder)
    weights_path = os.path.join(folder, WEIGHTS_FILE)
    try:
        tensors = load_file(weights_path)
    except (SafetensorError, OSError) as err:
        raise PhysloraError(f"{weights_path}: unreadable adapter weights ({err})") from None
    inject(model, settings)
    expected = {}
    for path, layer in lora_layers(model):
        expected[f"{PEFT_PREFIX}{path}.lora_A.weight"] = layer.lora_A
        expected[f"{PEFT_PREFIX}{path}.lora_B.weight"] = layer.lora_B
    tensors = {k.replace(".default.", "."): v for k, v in tensors.items()}
    missing, unexpected = expected.keys() - tensors.keys(), tensors.keys() - expected.keys()
    if missing or unexpected:
        example = sorted(missing or unexpected)[0]
        raise PhysloraError(f"{weights_path}: does not match this base model ({len(missing)} missing, "
                            f"{len(unexpected)} unexpected tensors, e.g. {example}); was it trained on another model, "
                            f"or on some of its layers only (physlora adapts every layer)?")
    with torch.no_grad():
        for key, param in expected.items():
            if tensors[key].shape != param.shape:
                raise PhysloraError(f"{weights_path}: {key} has shape {tuple(tensors[key].shape)}, this base "
                                    f"model needs {tuple(param.shape)}; was it trained on another model?")
            param.copy_(tensors[key])
    return settings


def merge_into_base(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight (W += s·BA) and put the model's plain Linear back."""
    for path, parent, attr, layer in _target_linears(model, TARGETS, kind=LoRALinear):
        layer.merge()
        plain = Linear(layer.weight.shape[1], layer.weight.shape[0], bias=layer.bias is not None, device="meta")
        plain.weight, plain.bias = nn.Parameter(layer.weight.detach(), requires_grad=False), layer.bias
        setattr(parent, attr, plain)
    del model.lora_settings
    return model


def _target_linears(model: nn.Module, targets, kind=nn.Linear):
    found = []
    for path, module in model.named_modules():
        parent_path, _, attr = path.rpartition(".")
        if attr in targets and isinstance(module, kind):
            found.append((path, model.get_submodule(parent_path), attr, module))
    return found


def _write_json(value, path: str) -> None:
    with open(path, "w") as f:
        json.dump(value, f, indent=2)
