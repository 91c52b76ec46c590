#!/usr/bin/env bash
# The GPU checks, in stages, most needed first: `benchmarks/gpu_check.sh [STAGE ...]` (default: all of them).
#   tests     the GPU tests: compiled Triton kernels in bf16 (fp32 and fp16 on one case: the interpreter covers
#             them on CPU), the LoRA layer and the fused ops on CUDA at real projection sizes, CUDA-graph
#             decoding against eager and fixed-shape decoding
#   kernels   each fused kernel against its torch reference, bf16, with its share of the bandwidth roofline
#   train     one LoRA training step, 8 × 1024 tokens, bf16, Qwen2.5-0.5B shape, against transformers + peft
#   generate  decoding tokens/s at batch 1 and 16, Qwen2.5-0.5B shape, bf16: CUDA graph, eager, transformers
#             (each timed generation captures its own graph, as a user's call does)
#   lora      the LoRA layer at M=4096, bf16, r=16 and 64; with dropout 0.05 and in fp16 at r=16 (Qwen shapes)
# Tables print; JSON lands in benchmarks/results/<gpu>-<date>.json. Where $OUT is set (the device tool), each
# stage logs straight into $OUT/gpu_check-<stage>.log and the JSON is copied there when the stage ends.
#
# Time: each stage has a limit (STAGE_LIMIT_S below; a stage past it is stopped and reported, and the next one
# runs). Under a 10-minute limit per command, run `gpu_check.sh tests kernels train` (at most 460 s of stages),
# then at once, while the machine is warm, `gpu_check.sh generate lora` (at most 300 s). The GPU tests
# compile one small config per kernel (PHYSLORA_TRITON_ONE_CONFIG=1, see lora/kernels.py) and each tuned
# config once; the benchmarks autotune, and the autotuning results are cached on disk
# (TRITON_CACHE_AUTOTUNING=1) for the processes after the first. Nothing is installed: the machine's own
# torch and triton are used (setup_env.sh would pin the CPU wheel of torch).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHON PYTHONUNBUFFERED=1 TRITON_CACHE_AUTOTUNING=1
"$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: no CUDA device visible')" \
    || exit 1
nvidia-smi -L 2>/dev/null || true
"$PYTHON" - <<'EOF'
import importlib.metadata as metadata, torch
names = ("torch", "triton", "transformers", "peft", "numpy", "safetensors", "tokenizers", "huggingface-hub")
versions = []
for name in names:
    try:
        versions.append(f"{name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        versions.append(f"{name} (absent)")
print(f"{torch.cuda.get_device_name()}, CUDA {torch.version.cuda}: " + ", ".join(versions))
EOF

declare -A STAGE_LIMIT_S=([tests]=210 [kernels]=90 [train]=160 [generate]=140 [lora]=160)

stage_tests() {
    local parallel=()
    "$PYTHON" -c "import xdist" 2>/dev/null && parallel=(-n 8)  # Triton's disk cache is shared between workers
    PHYSLORA_TRITON_ONE_CONFIG=1 "$PYTHON" -m pytest -q -rs "${parallel[@]}" tests/test_lora_kernels.py \
        tests/test_lora_layer.py tests/test_model_kernels.py tests/test_decode_step.py
}
stage_kernels() {
    "$PYTHON" bench.py kernels --device cuda --dtype bf16
}
stage_train() {
    "$PYTHON" bench.py train --device cuda --workloads equal --dtypes bf16 --batch 8 --tokens 1024 --steps 5
}
stage_generate() {
    "$PYTHON" bench.py generate --device cuda --models qwen2.5-0.5b-random --dtypes bf16
}
stage_lora() {
    local rc=0
    "$PYTHON" bench.py lora --device cuda --dtype bf16 --ranks 16 64 || rc=1
    "$PYTHON" bench.py lora --device cuda --dtype bf16 --ranks 16 --dropout 0.05 --shapes qwen2.5 || rc=1
    "$PYTHON" bench.py lora --device cuda --dtype fp16 --ranks 16 --shapes qwen2.5 || rc=1
    return $rc
}
export -f stage_tests stage_kernels stage_train stage_generate stage_lora

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(tests kernels train generate lora)
for stage in "${stages[@]}"; do
    if [ -z "${STAGE_LIMIT_S[$stage]:-}" ]; then
        echo "gpu_check: unknown stage '$stage' (${!STAGE_LIMIT_S[*]})" >&2
        exit 2
    fi
done
status=0
for stage in "${stages[@]}"; do
    echo "== $stage (at most ${STAGE_LIMIT_S[$stage]} s)"
    log=${OUT:+$OUT/gpu_check-$stage.log}
    log=${log:-$(mktemp)}
    started=$SECONDS
    # SIGKILL to the stage's whole process group (timeout makes one): a worker that outlived a TERM would hold
    # the GPU and tee's pipe. Output is unbuffered, so the log loses nothing.
    timeout --signal=KILL "${STAGE_LIMIT_S[$stage]}" bash -c "stage_$stage" 2>&1 | tee "$log"
    stage_status=${PIPESTATUS[0]}
    case $stage_status in
        0) echo "== $stage: passed in $((SECONDS - started)) s" ;;
        124|137) echo "== $stage: STOPPED at its limit of ${STAGE_LIMIT_S[$stage]} s" | tee -a "$log"; status=1 ;;
        *) echo "== $stage: FAILED (exit $stage_status) in $((SECONDS - started)) s" | tee -a "$log"; status=1 ;;
    esac
    if [ -n "${OUT:-}" ]; then
        for results in benchmarks/results/*-"$(date +%F)".json; do
            case "$results" in */cpu-*|*'*'*) ;; *) cp "$results" "$OUT"/ ;; esac
        done
    fi
done
exit $status
