"""One equal-work step of physlora (Qwen2.5-0.5B shapes, 4 x 256 tokens, median of 5) with the
cross-entropy chunk set by CHUNK_MIB (MiB of fp32 logits) and ROW_MULTIPLE by ROWMUL. Run from the
repository root: [CHUNK_MIB=32] [ROWMUL=16] PYTHONPATH=. python .../chunk_equal_work.py bf16|fp32"""
import os
import sys
import tempfile

import torch
import model.loss as L
if os.environ.get("CHUNK_MIB"): L.CHUNK_BYTES = int(os.environ["CHUNK_MIB"]) * 2**20
if os.environ.get("ROWMUL"): L.ROW_MULTIPLE = int(os.environ["ROWMUL"])
from benchmarks.shapes import QWEN25_05B, write_random_folder
from benchmarks.train_suite import measure
with tempfile.TemporaryDirectory() as d:
    folder = write_random_folder(QWEN25_05B, d + "/m")
    r = measure("physlora", folder, sys.argv[1], (4, 256), 5)
print(sys.argv[1], os.environ.get("CHUNK_MIB", "128"), os.environ.get("ROWMUL", "64"), "rows", L.default_chunk_rows(151936), r, flush=True)
