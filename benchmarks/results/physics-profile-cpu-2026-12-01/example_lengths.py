"""Lengths of the 112 physics train examples (seed 0) that bench.py train --workloads physics uses: whole
examples, prompts and answers, in tokens of the default model. Run from the repository root."""
import sys, tempfile; sys.path.insert(0, ".")
from benchmarks.train_suite import physics_examples
_, _, ex = physics_examples(tempfile.mkdtemp(), 112)  # the bench's own examples
L = [len(e.input_ids) for e in ex]; P = [e.prompt_length for e in ex]
import statistics as s
print("n", len(L), "max", max(L), "mean", s.mean(L), "prompt mean", s.mean(P), "answer mean", s.mean(l-p for l,p in zip(L,P)))
