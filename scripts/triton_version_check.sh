#!/usr/bin/env bash
# Run the Triton kernel tests in the interpreter (CPU) under another Triton release than the one installed:
#   scripts/triton_version_check.sh 3.6.0 [NUMPY_VERSION]
# The GPU machines carry triton 3.6 while this machine has 3.9; the interpreter parses and runs every kernel
# with the chosen release's front end, so an API that release lacks fails here first. Triton 3.6's
# interpreter turns one-element arrays into ints in a way numpy 2.4 refuses, hence the second argument
# (default 2.2.6). Both are installed into a cache folder and put ahead of .venv's on PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: scripts/triton_version_check.sh TRITON_VERSION [NUMPY_VERSION]}
numpy_version=${2:-2.2.6}
target="${PHYSLORA_CACHE:-$HOME/.cache/physlora}/triton-$version-numpy-$numpy_version"
if [ ! -d "$target/triton" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --target "$target" \
        "triton==$version" "numpy==$numpy_version"
fi
PYTHONPATH="$target" .venv/bin/python -c "import triton, numpy; print('triton', triton.__version__, 'numpy', numpy.__version__)"
PYTHONPATH="$target" .venv/bin/python -m pytest -q -p no:warnings tests/test_lora_kernels.py tests/test_model_kernels.py \
    tests/test_lora_layer.py tests/test_decode_step.py
