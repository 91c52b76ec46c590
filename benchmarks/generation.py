"""Generation speed, ours vs transformers, side by side in one run.

    python benchmarks/generation.py [--models smollm2,qwen2.5-0.5b-random] [--dtype fp32] [--reps 3]

Batch 1, a 64-token prompt, 128 new tokens, greedy, no early stop. Both stacks read the same
HF folder (the real SmolLM2-135M-Instruct weights exported from its GGUF, and a random-weight
model with Qwen2.5-0.5B's shapes), in the same dtype. Each stack runs in its own subprocess so
that peak RSS is its own. Reports the median tokens/s of `--reps` timed runs after one warm-up.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.shapes import QWEN25_05B  # noqa: E402
from benchmarks.timing import peak_rss_gib  # noqa: E402

PROMPT_TOKENS, NEW_TOKENS = 64, 128


def prepare_folders(workdir: str, names):
    """HF folders both stacks can read: {name: folder}."""
    import torch
    from model.config import ModelConfig
    from model.export import export_hf_folder
    from model.loading import load_model
    from model.transformer import Transformer
    from model.weights import build_model

    folders = {}
    for name in names:
        folder = os.path.join(workdir, name)
        if name == "smollm2":
            model, tokenizer = load_model("smollm2-135m-instruct")
            export_hf_folder(model, tokenizer, folder)
        elif name == "qwen2.5-0.5b-random":
            torch.manual_seed(0)
            config = ModelConfig.from_hf(QWEN25_05B)
            with torch.device("meta"):
                shapes = {k: v.shape for k, v in Transformer(config).state_dict().items()}
            weights = {k: torch.randn(s) * 0.02 for k, s in shapes.items() if k != "lm_head.weight"}
            model = build_model(config, weights, torch.float32, "cpu", source=name)
            export_hf_folder(model, None, folder)  # prompts are random ids: no tokenizer needed
        else:
            raise SystemExit(f"unknown model {name}")
        folders[name] = folder
    return folders


def worker(stack: str, folder: str, dtype_name: str, reps: int) -> dict:
    import torch
    torch.manual_seed(0)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    if stack == "ours":
        from model.weights import build_model, read_hf_folder
        from model.sampler import SamplingParams, generate
        config, weights = read_hf_folder(folder)
        model = build_model(config, weights, dtype, "cpu", source=folder)
        vocab = config.vocab_size

        def run(prompt):
            return len(generate(model, [prompt], SamplingParams(max_new_tokens=NEW_TOKENS), [], 0)[0])
    else:
        import transformers
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()
        vocab = model.config.vocab_size

        def run(prompt):
            ids = torch.tensor([prompt])
            with torch.inference_mode():
                out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS,
                                     min_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0)
            return out.shape[1] - ids.shape[1]

    prompt = torch.randint(3, vocab, (PROMPT_TOKENS,)).tolist()
    run(prompt)  # warm-up
    seconds = []
    for _ in range(reps):
        start = time.perf_counter()
        produced = run(prompt)
        seconds.append(time.perf_counter() - start)
        assert produced == NEW_TOKENS, produced
    return {"median_s": statistics.median(seconds), "tokens_per_s": NEW_TOKENS / statistics.median(seconds),
            "peak_rss_mb": peak_rss_gib() * 1024}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="smollm2,qwen2.5-0.5b-random")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default=None, help="JSON results file (default benchmarks/results/...)")
    parser.add_argument("--worker", nargs=2, metavar=("STACK", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.dtype, args.reps)))
        return

    import torch
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        folders = prepare_folders(workdir, args.models.split(","))
        for name, folder in folders.items():
            result = {"model": name, "dtype": args.dtype}
            for stack in ("ours", "transformers"):
                cmd = [sys.executable, __file__, "--worker", stack, folder, "--dtype", args.dtype,
                       "--reps", str(args.reps)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                result[stack] = json.loads(out.strip().splitlines()[-1])
            result["speedup"] = result["ours"]["tokens_per_s"] / result["transformers"]["tokens_per_s"]
            result["rss_ratio"] = result["ours"]["peak_rss_mb"] / result["transformers"]["peak_rss_mb"]
            rows.append(result)
            print(f"{name:22s} {args.dtype}: ours {result['ours']['tokens_per_s']:7.1f} tok/s "
                  f"({result['ours']['peak_rss_mb']:.0f} MB) | transformers "
                  f"{result['transformers']['tokens_per_s']:7.1f} tok/s ({result['transformers']['peak_rss_mb']:.0f} MB)"
                  f" | speedup {result['speedup']:.2f}x, memory {result['rss_ratio']:.2f}x", flush=True)
    import transformers
    report = {"benchmark": "generation", "batch": 1, "prompt_tokens": PROMPT_TOKENS, "new_tokens": NEW_TOKENS,
              "reps": args.reps, "device": f"cpu ({platform.processor() or platform.machine()}, "
                                            f"{os.cpu_count()} cores)",
              "torch": torch.__version__, "transformers": transformers.__version__,
              "date": time.strftime("%Y-%m-%d"), "results": rows}
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"cpu-generation-{args.dtype}-{time.strftime('%Y-%m-%d')}.json")
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
