"""One equal-work step of physlora (Qwen2.5-0.5B shapes, 4 x 256 tokens, median of 5) with the
cross-entropy chunk set by CHUNK_MIB (MiB of fp32 logits) and ROW_MULTIPLE by ROWMUL. Run from the
repository root: [CHUNK_MIB=32] [ROWMUL=16] PYTHONPATH=. python .../chunk_equal_work.py bf16|fp32
Output line: dtype, chunk MiB, row multiple, rows per chunk, the median step seconds and peak RSS."""
import os
import sys
import tempfile

import model.loss
from benchmarks.shapes import QWEN25_05B, write_random_folder
from benchmarks.train_suite import measure

if os.environ.get("CHUNK_MIB"):
    model.loss.CHUNK_BYTES = int(os.environ["CHUNK_MIB"]) * 2**20
if os.environ.get("ROWMUL"):
    model.loss.ROW_MULTIPLE = int(os.environ["ROWMUL"])
with tempfile.TemporaryDirectory() as workdir:
    result = measure("physlora", write_random_folder(QWEN25_05B, os.path.join(workdir, "model")), sys.argv[1],
                     (4, 256), 5)
print(sys.argv[1], model.loss.CHUNK_BYTES // 2**20, model.loss.ROW_MULTIPLE, "rows",
      model.loss.default_chunk_rows(QWEN25_05B["vocab_size"]), result, flush=True)
