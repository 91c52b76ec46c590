#!/usr/bin/env bash
# Create (or reuse) ./.venv with the runtime dependencies; with `--dev`, also the test oracles.
# torch==2.13.0 is installed first and on its own: with no torch present, an unpinned or open
# requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
wanted="requirements.txt"
[ "${1:-}" = "--dev" ] && wanted="requirements.txt requirements-dev.txt"
stamp=".venv/.installed-$(cat $wanted | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
  for file in $wanted; do
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$file"
  done
  touch "$stamp"
fi
