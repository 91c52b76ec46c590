"""Export a model as an HF-format folder (config.json, model.safetensors, tokenizer files).

    python export.py --model smollm2-135m-instruct --out exported/smollm2

The folder loads in `transformers` and converts with llama.cpp's `convert_hf_to_gguf.py`.
"""
import argparse
import sys

from common.cli import DTYPES, add_model_arguments
from common.errors import user_errors_are_one_line
from model.export import export_hf_folder
from model.loading import load_model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--out", required=True, help="new (or empty) folder to write")
    args = parser.parse_args(argv)
    model, tokenizer = load_model(args.model, DTYPES[args.dtype], args.device)
    export_hf_folder(model, tokenizer, args.out)
    print(f"exported {args.model} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, "
          f"{args.dtype}) to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    with user_errors_are_one_line():
        main()
