#!/usr/bin/env bash
# The main job, from a fresh clone: sets up .venv, fetches the default model (SmolLM2-135M-Instruct,
# once, into ~/.cache/physlora) and runs the physics-transfer experiment (experiment.py: data ->
# LoRA training -> base vs LoRA evaluation -> runs/experiment-<timestamp>/report.md).
# Extra arguments go to experiment.py, e.g. --seed 1, --quick, --resume DIR.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh
exec .venv/bin/python experiment.py "$@"
