"""Flags shared by the command-line entry points."""
import argparse

import torch

from model.registry import ALIASES, DEFAULT_MODEL

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"a local HF folder, a .gguf file, a hub id (owner/name) or an alias "
                             f"({', '.join(ALIASES)}); default: %(default)s")
    parser.add_argument("--dtype", choices=DTYPES, default="fp32",
                        help="dtype of the weights and activations; default: %(default)s")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device; default: %(default)s")
