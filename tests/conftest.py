"""Shared pytest fixtures."""
import os

import numpy as np
import pytest

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "aihwkit_golden", "fixtures.npz")


@pytest.fixture(scope="session")
def golden():
    """Exact aihwkit 1.1.0 outputs for noise-free cases (see tests/data/aihwkit_golden/README.md)."""
    return np.load(GOLDEN)


@pytest.fixture(params=["fused", "split"])
def mvm_path(request, monkeypatch):
    """Run a test through the periphery's one-call path (small products, kernels.mvm.mvm_fused) and through
    NumPy's GEMM between the two periphery kernels (large products)."""
    from crossbar_sim.tiles import periphery

    monkeypatch.setattr(periphery, "FUSED_MAX_MACS", 1 << 62 if request.param == "fused" else 0)
    return request.param
