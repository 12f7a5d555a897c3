"""Pure-NumPy reference twin of the periphery kernels (:mod:`.mvm`): readable, vectorised over the batch.

:func:`analog_mvm` follows SPEC section 2 step by step, in aihwkit's order of float32 operations, for a
whole batch at once; random numbers (input, weight and output noise, stochastic rounding) come from a
:class:`numpy.random.Generator`. With the noises off it agrees with the kernels bit for bit; with noise on,
in distribution (``tests/test_periphery.py``).
"""
from __future__ import annotations

import numpy as np

from . import mvm as KM

f32 = np.float32


def _quantize(v, step, sto, rng):
    """Round ``v`` (float32 array) to multiples of ``step``: half to even, or stochastically."""
    if step <= 0:
        return v
    step = f32(step)
    q = (v / step).astype(f32)
    if sto:
        fl = np.floor(q.astype(np.float64))
        up = rng.random(q.shape) < (q.astype(np.float64) - fl)
        return ((fl + up).astype(f32) * step).astype(f32)
    return (np.rint(q) * step).astype(f32)


def prepare(X, rshift, P, F, backward, rng):
    """DAC inputs of every row of ``X`` (batch, n) with bound-management exponents ``rshift`` (batch,).

    Returns ``(Xq, factor, xnorm)`` like :func:`kernels.mvm.mvm_prepare` (``factor`` 0 marks an all-zero
    row under noise management).
    """
    X = np.asarray(X, f32)
    batch = X.shape[0]
    nm_mode = int(F[KM.F_NM_MODE])
    ib = f32(P[KM.P_INP_BOUND])
    inp_noise = float(P[KM.P_INP_NOISE])
    if nm_mode == KM.NM_ABS_MAX:
        nm = np.abs(X).max(axis=1).astype(f32)
        scaling = np.ones(batch, bool)
    elif nm_mode == KM.NM_CONSTANT:
        nm = np.full(batch, f32(P[KM.P_NM_THRES]))
        scaling = np.ones(batch, bool)
    else:
        nm = np.ones(batch, f32)
        scaling = np.zeros(batch, bool)
    zero = scaling & (nm <= 0) & (inp_noise <= 0)
    scale = np.ones(batch, f32)
    safe_nm = np.where(nm > 0, nm, f32(1))
    scale = np.where(scaling, (f32(1) / safe_nm).astype(f32), scale)
    red = (f32(2) ** rshift.astype(f32)).astype(f32)
    scale = np.where(rshift > 0, (scale / red).astype(f32), scale)
    scaling = scaling | (rshift > 0)
    v = np.where(scaling[:, None], (X * scale[:, None]).astype(f32), X)
    v = _quantize(v, P[KM.P_INP_STEP], F[KM.F_INP_STO], rng)
    v = np.clip(v, -ib, ib)
    if inp_noise > 0:
        v = (v + (inp_noise * rng.standard_normal(v.shape)).astype(f32)).astype(f32)
    v[zero] = 0
    xnorm = np.sqrt((v.astype(np.float64) ** 2).sum(axis=1))
    if backward:
        factor = np.where(scaling, nm, f32(1))
    else:
        factor = np.where(scaling, (f32(1) / scale).astype(f32), f32(1))
    factor = np.where(zero, f32(0), factor).astype(f32)
    return v.astype(f32), factor, xnorm


def finish(Y, factor, xnorm, P, F, rng):
    """ADC outputs of array outputs ``Y`` (batch, m): returns ``(out, hit)``."""
    Y = np.asarray(Y, f32)
    w_noise = float(P[KM.P_W_NOISE])
    out_noise = float(P[KM.P_OUT_NOISE])
    ob = f32(P[KM.P_OUT_BOUND])
    v = Y.copy()
    if w_noise > 0:
        v = (v + (w_noise * xnorm[:, None] * rng.standard_normal(v.shape)).astype(f32)).astype(f32)
    if out_noise > 0:
        v = (v + (out_noise * rng.standard_normal(v.shape)).astype(f32)).astype(f32)
    v = _quantize(v, P[KM.P_OUT_STEP], F[KM.F_OUT_STO], rng)
    hit = ((v > ob) | (v < -ob)).any(axis=1)
    out = (np.clip(v, -ob, ob) * factor[:, None]).astype(f32)
    zero = factor == 0
    out[zero] = 0
    hit &= ~zero
    return out, hit


def analog_mvm(W, X, P, F, rng, transposed=False):
    """Twin of :func:`crossbar_sim.tiles.periphery.analog_mvm` (kernel parameters ``P``, ``F`` from
    :func:`crossbar_sim.tiles.periphery.io_plan`). Returns ``(out, passes)``."""
    W = np.asarray(W, f32)
    X = np.asarray(X, f32)
    if not np.all(np.isfinite(X)):
        raise ValueError("non-finite input")
    batch = X.shape[0]
    rshift = np.zeros(batch, np.int64)
    rows = np.arange(batch)
    out = None
    passes = 0
    while rows.size:
        Xq, factor, xnorm = prepare(X[rows], rshift[rows], P, F, transposed, rng)
        Y = Xq @ W if transposed else Xq @ W.T
        o, hit = finish(Y, factor, xnorm, P, F, rng)
        if out is None:
            out = np.empty((batch, o.shape[1]), f32)
        out[rows] = o
        passes += rows.size
        if not F[KM.F_BM]:
            break
        again = hit & (2.0 ** rshift[rows] <= P[KM.P_BM_LIMIT])
        rows = rows[again]
        rshift[rows] += 1
    return out, passes
