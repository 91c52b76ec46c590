"""Flags shared by the command-line entry points, and the model they describe."""
import argparse
import os
import sys

import torch

from common import distributed
from common.errors import PhysloraError, user_errors_are_one_line
from model.registry import ALIASES, DEFAULT_MODEL, check_model_name

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def add_model_arguments(parser: argparse.ArgumentParser, adapter: bool = True) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"a local HF folder, a .gguf file, a hub id (owner/name) or an alias "
                             f"({', '.join(ALIASES)}); default: %(default)s")
    parser.add_argument("--dtype", choices=DTYPES, default="fp32",
                        help="dtype of the weights and activations; default: %(default)s")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device; default: %(default)s")
    if adapter:
        parser.add_argument("--adapter", default=None, metavar="DIR",
                            help="a LoRA adapter folder in PEFT format (a train.py run, or peft's "
                                 "save_pretrained) to apply on top of --model")


def seed_number(text: str) -> int:
    """argparse type of --seed: torch's generators take 64 bits, and seeds are offset per batch and iteration."""
    value = int(text)
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError(f"{text}: a seed is a whole number from 0 to 2^32 - 1")
    return value


def run_main(main) -> None:
    """An entry point that may run under torchrun: main(command-line arguments), a user's error as one
    line (exit code 2), and on success the processes leave together (distributed.finish says why)."""
    with user_errors_are_one_line():
        main(sys.argv[1:])
    distributed.finish()


def as_argv(*items) -> list:
    """Command-line arguments for another entry point's main(argv): numbers become strings."""
    return [str(item) for item in items]


def check_at_least(*bounds) -> None:
    """Each (flag, value, low): a value given (not None) must be at least `low`; `not >=` refuses nan too."""
    for flag, value, low in bounds:
        if value is not None and not value >= low:
            raise PhysloraError(f"{flag} {value}: must be at least {low}")


def check_sampling_flags(top_p: float, code_timeout: float) -> None:
    """evaluate.py's and improve.py's --top-p and --code-timeout."""
    if not 0 < top_p <= 1:
        raise PhysloraError(f"--top-p {top_p}: the nucleus is a probability mass in (0, 1]")
    if not code_timeout > 0:
        raise PhysloraError(f"--code-timeout {code_timeout}: must be > 0 seconds, or every program times out")


def check_device(name: str) -> None:
    """Refuse a --device torch can't parse or this machine doesn't have, before anything loads."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise PhysloraError(f"--device {name}: not a torch device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PhysloraError(f"--device {name}: no CUDA device is visible to torch here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise PhysloraError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    available = getattr(getattr(torch, device.type, None), "is_available", None)  # torch.xpu, torch.mps, ...
    if device.type not in ("cpu", "cuda") and not (callable(available) and available()):
        raise PhysloraError(f"--device {name}: {device.type} is not available here; use --device cpu")


def check_model_flags(args) -> None:
    """--device, --model (and --baseline-model) and --adapter, checked in a moment before any slow work starts."""
    check_device(args.device)
    for name in (args.model, getattr(args, "baseline_model", None)):
        if name:
            check_model_name(name)
    if getattr(args, "adapter", None):
        check_adapter_folder(args.adapter)


def check_adapter_folder(folder: str) -> None:
    """An adapter folder with a valid adapter_config.json and a weights file (their contents are checked on load)."""
    from lora.adapter import WEIGHTS_FILE, read_adapter_settings

    read_adapter_settings(folder)
    if not os.path.isfile(os.path.join(folder, WEIGHTS_FILE)):
        raise PhysloraError(f"{folder}: no {WEIGHTS_FILE}; pass a folder written by train.py or peft")


def load_model_from_args(args):
    """(model, tokenizer) for --model/--dtype/--device, with --adapter applied if given."""
    from lora.adapter import load_adapter
    from model.loading import load_model

    check_device(args.device)
    model, tokenizer = load_model(args.model, DTYPES[args.dtype], args.device)
    if getattr(args, "adapter", None):
        load_adapter(model, args.adapter)
        model.eval().requires_grad_(False)  # inject() builds layers in training mode: no dropout here
    return model, tokenizer
