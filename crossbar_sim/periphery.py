"""Forward and backward matrix-vector multiplies through the periphery of a tile (SPEC section 2).

:func:`analog_mvm` runs the pipeline of :class:`~crossbar_sim.params.IOParameters` around a dense float32
product done by BLAS: :func:`kernels.mvm.io_prepare` (noise management, bound-management scaling, DAC),
``Xq @ W.T``, :func:`kernels.mvm.io_finish` (noise, ADC, output bound, rescale), and repeats the rows whose
outputs saturated with halved inputs while bound management allows it (at most until ``2^r`` reaches
``min(max_bm_factor, max_bm_res / input step)``).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .kernels import mvm as KM
from .kernels.rng import sub_key_py as sub_key
from .params import IOParameters

_NM = {"none": KM.NM_NONE, "abs_max": KM.NM_ABS_MAX, "constant": KM.NM_CONSTANT}


def _step(res, bound):
    """aihwkit's quantisation step ``f32(res) * f32(2 bound)`` (res > 1 counts levels: 1/res)."""
    r = np.float32(res)
    if r < 0:
        r = np.float32(0)
    if r > 1:
        r = np.float32(np.float32(1) / r)
    return float(np.float32(r * np.float32(np.float32(2) * np.float32(bound))))


def io_steps(io: IOParameters) -> tuple[float, float]:
    """DAC and ADC quantisation steps ``(2 inp_bound inp_res, 2 out_bound out_res)`` (0 = none)."""
    return _step(io.inp_res, io.inp_bound), _step(io.out_res, io.out_bound)


def bm_limit(io: IOParameters) -> float:
    """Bound management runs another pass only while the last factor ``2^r`` is at most this."""
    inp_step, _ = io_steps(io)
    lim = float(io.max_bm_factor)
    if inp_step > 0:
        lim = min(lim, float(np.float32(np.float32(io.max_bm_res) / np.float32(inp_step))))
    return lim


@lru_cache(maxsize=256)
def _io_consts(io: IOParameters):
    """Per-configuration constants of :func:`analog_mvm` (computed once per IOParameters; configs are frozen)."""
    inp_step, out_step = io_steps(io)
    w_noise = io.w_noise if io.w_noise_type == "additive_constant" else 0.0
    return inp_step, out_step, bm_limit(io), _NM[io.noise_management], w_noise, io.bound_management == "iterative"


def analog_mvm(W, X, io: IOParameters, key, call: int, zig, transposed=False, allow_bm=True, counters=None):
    """``Y = X @ W.T`` (or ``X @ W`` when ``transposed``) through the periphery ``io``.

    Parameters
    ----------
    W : ndarray of shape (out_size, in_size), float32
        Apparent weights.
    X : ndarray of shape (batch, in_size) (or (batch, out_size) when transposed), float32
        Inputs, already validated.
    io : IOParameters
    key : numpy.uint64
        Stream key of this tile and direction; ``call`` is the per-direction call counter.
    zig : tuple
        Ziggurat tables.
    allow_bm : bool
        Bound management allowed (False for backward passes, as in aihwkit).
    counters : dict or None
        Incremented in place: ``mvm`` (array reads, one per row and pass), ``dac``, ``adc`` (conversions).

    Returns
    -------
    Y : ndarray of shape (batch, out_size) (or (batch, in_size)), float32
    """
    n_out = W.shape[1] if transposed else W.shape[0]
    batch, n_in = X.shape
    if io.is_perfect:
        Y = X @ W if transposed else X @ W.T
        if counters is not None:
            counters["mvm"] += batch
            counters["dac"] += batch * n_in
            counters["adc"] += batch * n_out
        return np.ascontiguousarray(Y, dtype=np.float32)
    ki, wi, fi = zig
    inp_step, out_step, limit, nm_code, w_noise, bm_iter = _io_consts(io)
    Xq = np.empty((batch, n_in), np.float32)  # every row is written by io_prepare
    Y = None
    out = np.empty((batch, n_out), np.float32)  # every row is written by io_finish
    factor = np.empty(batch, np.float64)
    xnorm = np.empty(batch, np.float64)
    rshift = np.zeros(batch, np.int64)
    at_bound = np.zeros(batch, np.int64)
    rows = np.arange(batch, dtype=np.int64)
    bm = allow_bm and bm_iter
    ckey = sub_key(np.uint64(key), np.uint64(call))
    p = 0
    while True:
        pkey = sub_key(ckey, np.uint64(p))
        KM.io_prepare(X, rows, nm_code, io.nm_thres, rshift, io.inp_bound, inp_step,
                      io.inp_sto_round, io.inp_noise, transposed, pkey, ki, wi, fi, Xq, factor, xnorm)
        xs = Xq if rows.size == batch else Xq[rows]
        ys = xs @ W if transposed else xs @ W.T
        if rows.size == batch:
            Y = np.ascontiguousarray(ys, dtype=np.float32)
        else:
            Y[rows] = ys  # Y is the full-batch array of pass 0
        nb = KM.io_finish(Y, rows, factor, xnorm, w_noise, io.out_noise, io.out_bound, out_step,
                          io.out_sto_round, pkey, ki, wi, fi, out, at_bound)
        if counters is not None:
            counters["mvm"] += rows.size
            counters["dac"] += rows.size * n_in
            counters["adc"] += rows.size * n_out
        if nb == 0 or not bm:
            break
        rows = rows[at_bound[rows] == 1]
        rows = rows[2.0 ** rshift[rows] <= limit]
        if rows.size == 0:
            break
        rshift[rows] += 1
        p += 1
    return out


def read_columns(W, cols, io: IOParameters, key, call: int, zig, counters=None):
    """``analog_mvm(W, E, io, ...)`` for the one-hot inputs ``E[k] = e_{cols[k]}`` (transfer reads), bit for bit.

    The DAC output of a one-hot row is zero except at its column, so the array product reduces to one scaled
    column of ``W`` per row (the zeros add exactly nothing) instead of a full ``(n, in) @ (in, out)`` GEMM; noise
    management, DAC, output noise, ADC, bound management and the random streams are those of :func:`analog_mvm`.
    Falls back to :func:`analog_mvm` with input noise (which makes every input line non-zero) or a perfect read.
    """
    cols = np.asarray(cols, np.int64)
    n, in_size = cols.size, W.shape[1]
    E = np.zeros((n, in_size), np.float32)
    E[np.arange(n), cols] = 1.0
    if io.is_perfect or io.inp_noise > 0.0:
        return analog_mvm(W, E, io, key, call, zig, transposed=False, allow_bm=True, counters=counters)
    ki, wi, fi = zig
    inp_step, out_step, limit, nm_code, w_noise, bm_iter = _io_consts(io)
    n_out = W.shape[0]
    Xq = np.empty((n, in_size), np.float32)
    out = np.empty((n, n_out), np.float32)
    factor = np.empty(n, np.float64)
    xnorm = np.empty(n, np.float64)
    rshift = np.zeros(n, np.int64)
    at_bound = np.zeros(n, np.int64)
    rows = np.arange(n, dtype=np.int64)
    ckey = sub_key(np.uint64(key), np.uint64(call))
    Y = np.empty((n, n_out), np.float32)
    p = 0
    while True:
        pkey = sub_key(ckey, np.uint64(p))
        KM.io_prepare(E, rows, nm_code, io.nm_thres, rshift, io.inp_bound, inp_step, io.inp_sto_round, 0.0, False,
                      pkey, ki, wi, fi, Xq, factor, xnorm)
        for r in rows:
            Y[r] = Xq[r, cols[r]] * W[:, cols[r]]
        nb = KM.io_finish(Y, rows, factor, xnorm, w_noise, io.out_noise, io.out_bound, out_step,
                          io.out_sto_round, pkey, ki, wi, fi, out, at_bound)
        if counters is not None:
            counters["mvm"] += rows.size
            counters["dac"] += rows.size * in_size
            counters["adc"] += rows.size * n_out
        if nb == 0 or not bm_iter:
            break
        rows = rows[at_bound[rows] == 1]
        rows = rows[2.0 ** rshift[rows] <= limit]
        if rows.size == 0:
            break
        rshift[rows] += 1
        p += 1
    return out
