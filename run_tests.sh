#!/usr/bin/env bash
# The test suite, from a fresh clone: sets up .venv (runtime + test oracles), then runs pytest.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh --dev
exec .venv/bin/python -m pytest -q tests "$@"
