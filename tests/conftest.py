import os
import sys

import torch

# Triton kernels run in its CPU interpreter when there is no GPU; it must be set before triton is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pytest


@pytest.fixture(scope="session")
def smollm2_gguf():
    """The real default model (SmolLM2-135M-Instruct, Q4_1 GGUF), fetched once into the cache."""
    from model.registry import DEFAULT_MODEL, resolve
    return resolve(DEFAULT_MODEL)
