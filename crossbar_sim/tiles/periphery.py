"""Forward and backward matrix-vector multiplies through the periphery of a tile (SPEC section 2).

:func:`analog_mvm` runs the pipeline of :class:`~crossbar_sim.tiles.params.IOParameters` around a dense float32
product done by BLAS, with two kernel calls per pass: :func:`kernels.mvm.mvm_prepare` (noise management, bound-management
scaling, DAC), ``Xq @ W.T`` (NumPy's BLAS), :func:`kernels.mvm.mvm_finish` (noise, ADC, output bound,
rescale); the rows whose outputs saturated are repeated while ``2^r`` is at most
``min(max_bm_factor, max_bm_res / input step)``.
The scalar settings of an ``IOParameters`` are converted once and kept with it (:func:`io_plan`), so a call
costs one kernel dispatch. The NumPy twin of the whole pipeline is :func:`kernels.reference_mvm.analog_mvm`.
"""
from __future__ import annotations

import threading

import numpy as np

from ..validation import check_finite_array
from ..kernels import mvm as KM
from .params import IOParameters

_NM = {"none": KM.NM_NONE, "abs_max": KM.NM_ABS_MAX, "constant": KM.NM_CONSTANT}
_PLAN_ATTR = "_crossbar_sim_plan"


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


def io_plan(io: IOParameters, allow_bm: bool):
    """``(P, F)`` arrays of the :mod:`kernels.mvm` kernels for ``io``; cached on the (frozen) object."""
    plans = io.__dict__.get(_PLAN_ATTR)
    if plans is None:
        inp_step, out_step = io_steps(io)
        P = np.zeros(KM.N_P, np.float64)
        P[KM.P_INP_BOUND] = io.inp_bound
        P[KM.P_INP_STEP] = inp_step
        P[KM.P_INP_NOISE] = io.inp_noise
        P[KM.P_OUT_BOUND] = io.out_bound
        P[KM.P_OUT_STEP] = out_step
        P[KM.P_OUT_NOISE] = io.out_noise
        P[KM.P_W_NOISE] = io.w_noise if io.w_noise_type == "additive_constant" else 0.0
        P[KM.P_NM_THRES] = io.nm_thres
        P[KM.P_BM_LIMIT] = bm_limit(io)
        plans = []
        for bm in (False, True):
            F = np.zeros(KM.N_F, np.int64)
            F[KM.F_NM_MODE] = _NM[io.noise_management]
            F[KM.F_INP_STO] = int(io.inp_sto_round)
            F[KM.F_OUT_STO] = int(io.out_sto_round)
            F[KM.F_BM] = int(bm and io.bound_management == "iterative")
            P.flags.writeable = False
            F.flags.writeable = False
            plans.append((P, F))
        object.__setattr__(io, _PLAN_ATTR, plans)  # not a field: configs stay frozen and comparable
    return plans[1 if allow_bm else 0]


_LOCAL = threading.local()


def _scratch(batch: int, n: int):
    """Work arrays of the periphery kernels for this thread, reused between calls of the same shape."""
    cache = getattr(_LOCAL, "cache", None)
    if cache is None:
        cache = _LOCAL.cache = {}
    sc = cache.get((batch, n))
    if sc is None:
        if len(cache) > 16:
            cache.clear()
        sc = (np.zeros((3, batch), np.int64), np.zeros((2, batch), np.float64), np.zeros((batch, n), np.float32))
        cache[(batch, n)] = sc
    return sc


#: products of at most this many multiply-adds (batch x in x out) run in one compiled call (kernels.mvm.mvm_fused,
#: whose GEMM is SciPy's OpenBLAS); larger ones call NumPy's GEMM between the two periphery kernels. 2^18 is
#: OpenBLAS's single-thread limit for GEMM (65536 x GEMM_MULTITHREAD_THRESHOLD 4), so SciPy's BLAS never wakes
#: threads of its own: two OpenBLAS thread pools taking turns (each spinning while the other works) slowed
#: 10 x 784 x 256 products from 0.1 to 2-30 ms on a loaded 2-core machine.
FUSED_MAX_MACS = 1 << 18


def _count(counters, passes: int, n_in: int, n_out: int) -> None:
    """Energy-model counters of ``passes`` array reads: one MVM, ``n_in`` DAC and ``n_out`` ADC conversions each."""
    if counters is not None:
        counters["mvm"] += passes
        counters["dac"] += passes * n_in
        counters["adc"] += passes * n_out


def analog_mvm(W, X, io: IOParameters, key, call: int, zig=None, transposed=False, allow_bm=True,
               counters=None):
    """``Y = X @ W.T`` (or ``X @ W`` when ``transposed``) through the periphery ``io``.

    Parameters
    ----------
    W : ndarray of shape (out_size, in_size), float32
        Apparent weights.
    X : ndarray of shape (batch, in_size) (or (batch, out_size) when transposed), float32, C-contiguous
        Inputs (shape already validated; inf/NaN raise :class:`~crossbar_sim.errors.NonFiniteError`).
    io : IOParameters
    key : numpy.uint64
        Stream key of this tile and direction; ``call`` is the per-direction call counter.
    zig : ignored
        Kept for callers of the former interface (the periphery no longer uses ziggurat tables).
    allow_bm : bool
        Bound management allowed (False for backward passes, as in aihwkit).
    counters : dict or None
        Incremented in place: ``mvm`` (array reads, one per row and pass), ``dac`` (input conversions, one
        per input line and read), ``adc`` (output conversions, one per output line and read).

    Returns
    -------
    Y : ndarray of shape (batch, out_size) (or (batch, in_size)), float32
    """
    batch, n_in = X.shape
    n_out = W.shape[1] if transposed else W.shape[0]
    if io.is_perfect:
        check_finite_array(X, "d" if transposed else "x")
        Y = X @ W if transposed else X @ W.T
        passes = batch
        Y = np.ascontiguousarray(Y, dtype=np.float32)
    else:
        P, F = io_plan(io, allow_bm)
        if type(key) is not np.uint64:
            key = np.uint64(key)
        iw, fw, Xq = _scratch(batch, n_in)
        if batch * n_in * n_out <= FUSED_MAX_MACS and W.flags.c_contiguous:
            Y = np.empty((batch, n_out), np.float32)
            passes = KM.mvm_fused(W, X, Y, iw, fw, Xq, P, F, transposed, key, call)
            if passes < 0:
                check_finite_array(X, "d" if transposed else "x")
            _count(counters, passes, n_in, n_out)
            return Y
        if KM.mvm_prepare(X, iw, fw, Xq, P, F, transposed, key, call, 0, batch):
            check_finite_array(X, "d" if transposed else "x")
        Y = Xq @ W if transposed else Xq @ W.T
        nr = KM.mvm_finish(Y, Y, iw, fw, P, F, key, call, 0, batch)
        passes = batch
        p = 0
        while nr:  # bound management: repeat the saturated rows with halved inputs
            p += 1
            KM.mvm_prepare(X, iw, fw, Xq, P, F, transposed, key, call, p, nr)
            Ys = Xq[:nr] @ W if transposed else Xq[:nr] @ W.T
            passes += nr
            nr = KM.mvm_finish(Ys, Y, iw, fw, P, F, key, call, p, nr)
    _count(counters, passes, n_in, n_out)
    return Y


def read_columns(W, cols, io: IOParameters, key, call: int, zig=None, counters=None, allow_bm=True, E=None):
    """``analog_mvm(W, E, io, key, call, allow_bm=allow_bm)`` for the one-hot inputs ``E[k] = e_{cols[k]}``
    (transfer reads), bit for bit (up to the sign of an exact zero).

    The DAC output of a one-hot row is zero except at its column, so the array product reduces to one scaled
    column of ``W`` per row (the zeros add exactly nothing) instead of a full ``(n, in) @ (in, out)`` GEMM; noise
    management, DAC, output noise, ADC, bound management and the random streams are those of :func:`analog_mvm`
    (the same kernels on the same keys, in one compiled call: :func:`kernels.mvm.mvm_columns`). Falls back to
    :func:`analog_mvm` with input noise (which makes every input line non-zero) or a perfect read. ``E``: the
    one-hot rows if the caller has them already (float32, C-contiguous). ``zig`` is ignored (kept for call
    compatibility).
    """
    cols = np.asarray(cols, np.int64)
    n, in_size = cols.size, W.shape[1]
    if E is None:
        E = np.zeros((n, in_size), np.float32)
        E[np.arange(n), cols] = 1.0
    if io.is_perfect or io.inp_noise > 0.0:
        return analog_mvm(W, E, io, key, call, None, False, allow_bm, counters)
    P, F = io_plan(io, allow_bm)
    if type(key) is not np.uint64:
        key = np.uint64(key)
    iw, fw, Xq = _scratch(n, in_size)
    Y = np.empty((n, W.shape[0]), np.float32)
    passes = KM.mvm_columns(W, E, cols, Y, iw, fw, Xq, P, F, key, call)
    _count(counters, passes, in_size, W.shape[0])
    return Y
