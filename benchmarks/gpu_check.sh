#!/usr/bin/env bash
# The GPU checks, in stages, most needed first: `benchmarks/gpu_check.sh [STAGE ...]` (default: all of them).
#   tests     the GPU tests: compiled Triton kernels in bf16, the LoRA layer and the fused ops on CUDA at real
#             projection sizes, CUDA-graph decoding against eager decoding
#   train     one LoRA training step, 8 × 1024 tokens, bf16, Qwen2.5-0.5B shape, against transformers + peft
#   generate  decoding tokens/s at batch 1 and 16, Qwen2.5-0.5B shape, bf16: CUDA graph, eager, transformers
#   kernels   each fused kernel against its torch reference, bf16, with its share of the bandwidth roofline
#   lora      the LoRA layer at M=4096: bf16 all ranks, with dropout 0.05 at r=16, and fp16 at r=16
# Tables print; JSON lands in benchmarks/results/<gpu>-<date>.json. Where $OUT is set (the device tool), each
# stage's log and the JSON are copied there as soon as the stage ends. Triton autotunes every new shape on its
# first run: the first stages take longest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONUNBUFFERED=1
"$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: no CUDA device visible')"

stage_tests() {
    "$PYTHON" -m pytest -q -rs tests/test_lora_kernels.py tests/test_lora_layer.py tests/test_model_kernels.py \
        tests/test_decode_step.py
}
stage_train() {
    "$PYTHON" bench.py train --device cuda --workloads equal --dtypes bf16 --batch 8 --tokens 1024 --steps 5
}
stage_generate() {
    "$PYTHON" bench.py generate --device cuda --models qwen2.5-0.5b-random --dtypes bf16
}
stage_kernels() {
    "$PYTHON" bench.py kernels --device cuda --dtype bf16
}
stage_lora() {
    "$PYTHON" bench.py lora --device cuda --dtype bf16
    "$PYTHON" bench.py lora --device cuda --dtype bf16 --ranks 16 --dropout 0.05
    "$PYTHON" bench.py lora --device cuda --dtype fp16 --ranks 16
}

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(tests train generate kernels lora)
for stage in "${stages[@]}"; do
    if ! declare -F "stage_$stage" >/dev/null; then
        echo "gpu_check: unknown stage '$stage' (tests, train, generate, kernels, lora)" >&2
        exit 2
    fi
done
status=0
for stage in "${stages[@]}"; do
    echo "== $stage"
    log=$(mktemp)
    "stage_$stage" 2>&1 | tee "$log" || status=1  # a failing stage is reported; the next ones still run
    if [ -n "${OUT:-}" ]; then
        cp "$log" "$OUT/gpu_check-$stage.log"
        for results in benchmarks/results/*-"$(date +%F)".json; do
            case "$results" in */cpu-*|*'*'*) ;; *) cp "$results" "$OUT"/ ;; esac
        done
    fi
done
exit $status
