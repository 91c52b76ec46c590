#!/usr/bin/env bash
# The main job, from a fresh clone: sets up .venv, fetches the default model
# (SmolLM2-135M-Instruct, once, into ~/.cache/physlora) and asks it a physics question.
# It grows into the full experiment (data -> base eval -> LoRA training -> eval -> report).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh
exec .venv/bin/python generate.py "$@" \
  "A 2 kg box, 0.5 m tall with a 0.1 m wide base, is carried by a robot that accelerates at 3 m/s^2. Will it tip over? Explain briefly."
