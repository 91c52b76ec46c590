#!/usr/bin/env bash
# One command for a CUDA machine: the lora, fused-kernel and CUDA-graph decoding GPU tests (compiled
# kernels, bf16, real projection sizes, the layer on CUDA, graph replay against eager decoding), then
# the lora benchmark at M=4096 in bf16 (all ranks, and with dropout 0.05 at r=16) and fp16 (r=16), the
# kernels suite, generation (graph, eager and transformers, batch 1 and 16) and one training step at
# 8 × 1024 tokens against transformers + peft. Tables print; JSON lands in
# benchmarks/results/<gpu>-<date>.json. The first run autotunes every shape: allow ~15 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
"$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: no CUDA device visible')"
"$PYTHON" -m pytest -q -rs tests/test_lora_kernels.py tests/test_lora_layer.py tests/test_model_kernels.py \
    tests/test_decode_step.py
"$PYTHON" bench.py lora --device cuda --dtype bf16
"$PYTHON" bench.py lora --device cuda --dtype bf16 --ranks 16 --dropout 0.05
"$PYTHON" bench.py lora --device cuda --dtype fp16 --ranks 16
"$PYTHON" bench.py kernels --device cuda --dtype bf16
"$PYTHON" bench.py generate --device cuda --dtypes bf16
"$PYTHON" bench.py train --device cuda --workloads equal --dtypes bf16 --batch 8 --tokens 1024
