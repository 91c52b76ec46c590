"""Export a model as an HF-format folder (config.json, model.safetensors, tokenizer files).

    python export.py --model smollm2-135m-instruct --out exported/smollm2
    python export.py --adapter runs/my-run --out exported/merged     # LoRA merged into the weights

The folder loads in `transformers` and converts with llama.cpp's `convert_hf_to_gguf.py`.
"""
import argparse
import sys

from common.cli import add_model_arguments, load_model_from_args
from lora.adapter import merge_into_base
from common.errors import user_errors_are_one_line
from model.export import export_hf_folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--out", required=True, help="new (or empty) folder to write")
    args = parser.parse_args(argv)
    model, tokenizer = load_model_from_args(args)
    if args.adapter:
        merge_into_base(model)  # W += s·BA: a plain model that any HF-compatible tool reads
    export_hf_folder(model, tokenizer, args.out)
    source = f"{args.model} + {args.adapter} (merged)" if args.adapter else args.model
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"exported {source} ({millions:.1f}M parameters, {args.dtype}) to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    with user_errors_are_one_line():
        main()
