"""Greedy generation time of the base model by evaluation batch size (the experiment's --eval-batch-size).

96 test_unseen check-program prompts (seed 0, default sizes), 64 new tokens each, bf16, same process,
after a warm-up; three rounds, each timing the batch sizes in turn; medians reported. Run from the repository root: .venv/bin/python benchmarks/results/eval-batch-cpu-2026-11-30/run.py
"""
import json
import statistics
import os
import sys
import tempfile
import time

sys.path.insert(0, os.getcwd())
import torch  # noqa: E402

from data.physics_dataset import DEFAULT_SIZES, generate  # noqa: E402
from evaluation.generation import GenerationSettings, answer_records  # noqa: E402
from model.loading import load_model  # noqa: E402

model, tokenizer = load_model("smollm2-135m-instruct", torch.bfloat16)
records = generate(DEFAULT_SIZES, 0, 0.2, answer_style="checks")[0]["test_unseen"][:96]
times = {batch: [] for batch in (32, 48, 96)}
with tempfile.TemporaryDirectory() as folder:
    answer_records(model, tokenizer, records[:8], GenerationSettings(batch_size=8, max_new_tokens=8),
                   os.path.join(folder, "warmup.jsonl"))
    for round_index in range(3):
        for batch in times:
            start = time.perf_counter()
            answer_records(model, tokenizer, records, GenerationSettings(batch_size=batch, max_new_tokens=64),
                           os.path.join(folder, f"round{round_index}-batch{batch}.jsonl"))
            times[batch].append(round(time.perf_counter() - start, 1))
medians = {batch: statistics.median(values) for batch, values in times.items()}
print(json.dumps({"prompts": len(records), "new_tokens": 64, "seconds_by_batch": times, "median_seconds": medians,
                  "median_tokens_per_second": {b: round(len(records) * 64 / s) for b, s in medians.items()}}))
