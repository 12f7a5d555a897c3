"""Shared pytest fixtures."""
import os

import numpy as np
import pytest

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "aihwkit_golden", "fixtures.npz")


@pytest.fixture(scope="session")
def golden():
    """Exact aihwkit 1.1.0 outputs for noise-free cases (see tests/data/aihwkit_golden/README.md)."""
    return np.load(GOLDEN)
