import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pytest


@pytest.fixture(scope="session")
def smollm2_gguf():
    """The real default model (SmolLM2-135M-Instruct, Q4_1 GGUF), fetched once into the cache."""
    from model.registry import DEFAULT_MODEL, resolve
    return resolve(DEFAULT_MODEL)
