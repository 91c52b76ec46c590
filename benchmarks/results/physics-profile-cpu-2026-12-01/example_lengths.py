"""Lengths of the 112 physics train examples (seed 0) that bench.py train --workloads physics uses: whole
examples, prompts and answers, in tokens of the default model. Run from the repository root."""
import sys; sys.path.insert(0, ".")
from data.batching import encode_records
from data.physics_dataset import generate
from model.loading import load_model
m, tok = load_model("smollm2-135m-instruct")
splits, _ = generate({"train": 112, "val": 0, "test_seen": 0, "test_unseen": 0}, seed=0, difficulty=0.2)
ex = encode_records(splits["train"][:112], tok, 512).examples
L = [len(e.input_ids) for e in ex]; P = [e.prompt_length for e in ex]
import statistics as s
print("n", len(L), "max", max(L), "mean", s.mean(L), "prompt mean", s.mean(P), "answer mean", s.mean(l-p for l,p in zip(L,P)))
