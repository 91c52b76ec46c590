"""The longest teacher target, in SmolLM2's tokens with the end-of-turn token, of the default physics data
(all four splits) for seeds 0-7 and both answer styles: what the evaluation budgets (136 for check programs,
160 for verdicts, evaluation/generation.py) must exceed. Run from the repository root."""
import sys

sys.path.insert(0, ".")
import torch  # noqa: E402

from data.batching import prompt_and_target_ids  # noqa: E402
from data.physics_dataset import DEFAULT_SIZES, generate  # noqa: E402
from model.loading import load_model  # noqa: E402

_, tokenizer = load_model("smollm2-135m-instruct", torch.bfloat16, "cpu")
for style in ("checks", "verdict"):
    longest = []
    for seed in range(8):
        splits, _ = generate(DEFAULT_SIZES, seed, 0.2, answer_style=style)
        longest.append(max(len(prompt_and_target_ids(tokenizer, r["prompt"], r["target"])[1])
                           for records in splits.values() for r in records))
    print(f"{style}: longest target per seed 0-7 {longest}, overall {max(longest)}")
