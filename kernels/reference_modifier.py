"""Pure-NumPy reference twin of the weight-modifier kernel (:mod:`.modifier`).

The same formulas in float32, with random numbers from a :class:`numpy.random.Generator`: equal to the kernel bit
for bit without noise (``std = 0``, ``pdrop = 0``), equal in distribution otherwise (``tests/test_hwa.py``).
"""
from __future__ import annotations

import numpy as np

from . import modifier as KM

f32 = np.float32


def weight_modifier(W, kind, std, a, pdrop, rng):
    """The modified copy of ``W`` (float32 array), see :func:`kernels.modifier.weight_modifier`."""
    W = np.asarray(W, f32)
    out = W.copy()
    if kind != KM.MOD_NONE and std != 0.0:
        z = rng.standard_normal(W.shape).astype(f32)
        if kind == KM.MOD_ADD_NORMAL:
            out = (W + (f32(std * a) * z).astype(f32)).astype(f32)
        elif kind == KM.MOD_MULT_NORMAL:
            out = (W * (f32(1) + (f32(std) * z).astype(f32))).astype(f32)
    if pdrop > 0.0:
        out[rng.random(W.shape) < pdrop] = f32(0)
    return out
