#!/usr/bin/env bash
# One command for a CUDA machine: the lora and fused-kernel GPU tests (compiled kernels, bf16, real projection
# sizes, the layer on CUDA), then the lora benchmark at M=4096 in bf16 (all ranks, and with
# dropout 0.05 at r=16) and fp16 (r=16). Tables print; JSON lands in
# benchmarks/results/<gpu>-<date>.json. The first run autotunes every shape: allow ~10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
"$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: no CUDA device visible')"
"$PYTHON" -m pytest -q -rs tests/test_lora_kernels.py tests/test_lora_layer.py tests/test_model_kernels.py
"$PYTHON" bench.py lora --device cuda --dtype bf16
"$PYTHON" bench.py lora --device cuda --dtype bf16 --ranks 16 --dropout 0.05
"$PYTHON" bench.py lora --device cuda --dtype fp16 --ranks 16
"$PYTHON" bench.py kernels --device cuda --dtype bf16
