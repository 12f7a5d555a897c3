"""Matrix-vector multiply with periphery (SPEC section 2), batch-aware, float32 as aihwkit.

Two kernels around one BLAS product run the whole pipeline of a forward or backward pass on a batch
(:func:`crossbar_sim.tiles.periphery.analog_mvm` drives them): :func:`mvm_prepare` (step 1), the GEMM (step 2,
done by the caller with NumPy for large products, where NumPy's BLAS threads may be used), :func:`mvm_finish`
(steps 3 and 4). Small products (at most 2^18 multiply-adds, where OpenBLAS stays on one thread) run all of it
in one compiled call, :func:`mvm_fused`, whose GEMM is numba's ``np.dot`` (SciPy's OpenBLAS, the same kernels
as NumPy's): one sample on a 512 x 512 tile then costs the GEMV plus ~10-30%, where the three calls from Python
cost ~50%:

1. per row (sample): noise management (multiply by ``(1/max|x|) / 2^r``, float32), DAC rounding to the input
   step ``f32(inp_res) * f32(2 inp_bound)`` (half to even, or stochastic), *then* clipping to
   ``+-inp_bound``, then input noise;
2. the array: ``Y = Xq @ W.T`` (``Xq @ W`` backward) as one float32 BLAS GEMM for the whole batch;
3. per row: weight read noise ``w_noise ||Xq||_2 xi`` (additive constant), output noise ``out_noise xi``
   (normalised domain), ADC rounding to the output step, bound test (an output strictly beyond
   ``+-out_bound`` fails it), clipping, rescaling;
4. iterative bound management: the rows that failed are prepared again with ``r + 1`` while ``2^r`` is at
   most ``bm_limit``, multiplied in one smaller GEMM, and finished again (the caller loops).

Every deterministic rounding is half to even (``rintf``, aihwkit's ``RPU_ROUNDFUNF``) in aihwkit's order
of float32 operations, so with the noises off the result is bit-identical to aihwkit 1.1.0
(``tests/test_golden.py``). An all-zero input row under noise management gives exactly 0 (no ADC, no bound
management).

Random numbers are counter based and drawn in branch-free form so that the element loops vectorise:
the row ``b`` of pass ``p`` of call ``c`` uses the stream ``sub_key(sub_key(sub_key(key, c), p), b)``,
with word blocks per use (input rounding, input noise, weight noise, output noise, output rounding).
Normal deviates come in pairs from :func:`.rng.normal_pair32` (Box-Muller with polynomial ``ln``, ``sin``,
``cos``): equal in distribution to the ziggurat draws of the update kernel up to float32 rounding and a tail
cut at 6.76 sigma (probability 1.4e-11 per draw).

The NumPy twin is :mod:`.reference_mvm` (same semantics, NumPy random generator).
"""
from __future__ import annotations

import math

import numpy as np
from numba import float32, float64, int32, njit, uint64
from numba.core import types
from numba.extending import intrinsic

from .rng import draw, normal_pair32, sub_key

NM_NONE = 0
NM_ABS_MAX = 1
NM_CONSTANT = 2

# layout of the float64 parameter vector P of mvm_periphery
P_INP_BOUND, P_INP_STEP, P_INP_NOISE, P_OUT_BOUND, P_OUT_STEP, P_OUT_NOISE, P_W_NOISE, P_NM_THRES, P_BM_LIMIT = \
    range(9)
N_P = 9
# layout of the int64 flag vector F
F_NM_MODE, F_INP_STO, F_OUT_STO, F_BM = range(4)
N_F = 4

# word blocks of a row stream (each block holds up to 2^32 words)
_BLK_INP_STO = 0
_BLK_INP_NOISE = 1
_BLK_W_NOISE = 2
_BLK_OUT_NOISE = 3
_BLK_OUT_STO = 4

_FINITE_BITS = 0x7F800000  # |x| bit patterns at or above this are inf or NaN


@njit(inline="always", error_model="numpy")
def rint(v):
    """Round half to even (C ``rint`` under the default rounding mode)."""
    r = math.floor(v + 0.5)
    if r - v == 0.5 and r % 2.0 != 0.0:
        r -= 1.0
    return r


@intrinsic
def _bits_to_f32(typingctx, x):
    """Reinterpret the bits of an int32 as a float32."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        from llvmlite import ir

        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@njit(inline="always", error_model="numpy")
def _absmax_bits(xi):
    """Largest ``|x|`` bit pattern of a float32 row viewed as int32 (integer max: vectorises, and a result
    ``>= 0x7F800000`` flags inf or NaN)."""
    m = int32(0)
    for j in range(xi.shape[0]):
        a = xi[j] & int32(0x7FFFFFFF)
        if a > m:
            m = a
    return m


@njit(inline="always", error_model="numpy")
def _add_noise(v, sigma, key, blk):
    """``v[i] += f32(sigma * z_i)`` in place, normal deviates in pairs (elements ``k`` and ``k + half``)."""
    n = v.shape[0]
    half = n >> 1
    base = uint64(blk) << uint64(32)
    for k in range(half):
        z1, z2 = normal_pair32(draw(key, base + uint64(k)))
        v[k] = float32(v[k] + float32(sigma * z1))
        v[k + half] = float32(v[k + half] + float32(sigma * z2))
    if n & 1:
        z1, z2 = normal_pair32(draw(key, base + uint64(half)))
        v[n - 1] = float32(v[n - 1] + float32(sigma * z1))


@njit(inline="always", error_model="numpy")
def _quantize_sto(v, step, key, blk):
    """Stochastic rounding to multiples of ``step`` in place: up with probability equal to the remainder."""
    base = uint64(blk) << uint64(32)
    for i in range(v.shape[0]):
        q = float64(float32(v[i] / step))
        u = float64(draw(key, base + uint64(i)) >> uint64(11)) * (1.0 / 9007199254740992.0)
        fl = math.floor(q)
        v[i] = float32(float32(fl + (1.0 if u < q - fl else 0.0)) * step)


@njit(inline="always", error_model="numpy")
def _prepare_row(x, xi, xq, P, F, rshift, backward, rkey, need_norm):
    """DAC input of one row: NM, BM scaling, quantisation, clipping, input noise.

    Returns ``(status, factor, xnorm)``: status 1 if ``x`` holds inf/NaN; ``factor`` is what the ADC output
    is multiplied by (``1/scale`` forward, ``max|x|`` backward, as aihwkit), 0 for an all-zero row under
    noise management; ``xnorm = ||xq||_2`` when ``need_norm``.
    """
    n = x.shape[0]
    mb = _absmax_bits(xi)
    if mb >= _FINITE_BITS:
        return 1, float32(0.0), 0.0
    nm_mode = F[F_NM_MODE]
    ib = float32(P[P_INP_BOUND])
    step = float32(P[P_INP_STEP])
    inp_noise = P[P_INP_NOISE]
    scaling = False
    nm = float32(1.0)
    if nm_mode == NM_ABS_MAX:
        nm = _bits_to_f32(mb)
        scaling = True
    elif nm_mode == NM_CONSTANT:
        nm = float32(P[P_NM_THRES])
        scaling = True
    if scaling and nm <= float32(0.0) and inp_noise <= 0.0:
        for j in range(n):
            xq[j] = float32(0.0)
        return 0, float32(0.0), 0.0
    scale = float32(1.0)
    if scaling:
        scale = float32(scale / nm)
    if rshift > 0:
        scale = float32(scale / float32(2.0 ** rshift))
        scaling = True
    if F[F_INP_STO] != 0 and step > float32(0.0):
        for j in range(n):
            xq[j] = float32(x[j] * scale) if scaling else x[j]
        _quantize_sto(xq, step, rkey, _BLK_INP_STO)
        for j in range(n):
            xq[j] = min(max(xq[j], -ib), ib)
    elif step > float32(0.0):
        if scaling:
            for j in range(n):
                v = float32(np.rint(float32(float32(x[j] * scale) / step))) * step
                xq[j] = min(max(v, -ib), ib)
        else:
            for j in range(n):
                v = float32(np.rint(float32(x[j] / step))) * step
                xq[j] = min(max(v, -ib), ib)
    else:
        for j in range(n):
            v = float32(x[j] * scale) if scaling else x[j]
            xq[j] = min(max(v, -ib), ib)
    if inp_noise > 0.0:
        _add_noise(xq, float32(inp_noise), rkey, _BLK_INP_NOISE)
    xnorm = 0.0
    if need_norm:
        for j in range(n):
            xnorm += float64(xq[j]) * float64(xq[j])
        xnorm = math.sqrt(xnorm)
    if backward:
        factor = nm if scaling else float32(1.0)
    else:
        factor = float32(float32(1.0) / scale) if scaling else float32(1.0)
    return 0, factor, xnorm


@njit(inline="always", error_model="numpy")
def _finish_row(y, o, factor, xnorm, P, F, rkey):
    """ADC output of one row: weight and output noise, quantisation, bound test, clipping, rescaling.

    ``y`` (the array output, modified in place) -> ``o``. Returns 1 if an output was strictly beyond
    ``+-out_bound`` after the ADC.
    """
    m = y.shape[0]
    if factor == float32(0.0):
        for i in range(m):
            o[i] = float32(0.0)
        return 0
    w_noise = P[P_W_NOISE]
    out_noise = P[P_OUT_NOISE]
    ob = float32(P[P_OUT_BOUND])
    step = float32(P[P_OUT_STEP])
    if w_noise > 0.0:
        _add_noise(y, float32(w_noise * xnorm), rkey, _BLK_W_NOISE)
    if out_noise > 0.0:
        _add_noise(y, float32(out_noise), rkey, _BLK_OUT_NOISE)
    if step > float32(0.0):
        if F[F_OUT_STO] != 0:
            _quantize_sto(y, step, rkey, _BLK_OUT_STO)
        else:
            for i in range(m):
                y[i] = float32(np.rint(float32(y[i] / step))) * step
    hit = int32(0)
    for i in range(m):
        v = y[i]
        hit |= int32(v > ob) | int32(v < -ob)
        o[i] = float32(min(max(v, -ob), ob) * factor)
    return 1 if hit != 0 else 0


# rows of the int64 work array ``iw`` (3, batch) of mvm_prepare / mvm_finish
IW_ROWS, IW_RSHIFT, IW_HIT = 0, 1, 2


@njit(cache=True, error_model="numpy")
def mvm_prepare(X, iw, fw, Xq, P, F, backward, key, call, p, nr):
    """DAC inputs of pass ``p`` of call ``call`` (step 1) for the rows ``iw[IW_ROWS, :nr]`` of ``X``.

    ``X`` (batch, n) float32 C-contiguous. Work arrays (caller-allocated, reused): ``iw`` (3, batch) int64
    (row list, bound-management exponents, bound hits; pass 0 initialises them), ``fw`` (2, batch) float64
    (output factor and ``||Xq||_2`` per listed row), ``Xq`` (batch, n) float32: row ``t < nr`` receives
    the DAC output of row ``iw[IW_ROWS, t]``. Returns 1 if ``X`` holds inf or NaN (else 0).
    """
    if p == 0:
        for b in range(X.shape[0]):
            iw[IW_ROWS, b] = b
            iw[IW_RSHIFT, b] = 0
            iw[IW_HIT, b] = 0
    Xi = X.view(np.int32)
    need_norm = P[P_W_NOISE] > 0.0
    pkey = sub_key(sub_key(key, uint64(call)), uint64(p))
    for t in range(nr):
        b = iw[IW_ROWS, t]
        st, f, xn = _prepare_row(X[b], Xi[b], Xq[t], P, F, iw[IW_RSHIFT, b], backward,
                                 sub_key(pkey, uint64(b)), need_norm)
        if st != 0:
            return 1
        fw[0, t] = f
        fw[1, t] = xn
    return 0


@njit(cache=True, error_model="numpy")
def mvm_finish(Y, out, iw, fw, P, F, key, call, p, nr):
    """ADC outputs (steps 3-4) of pass ``p`` from the array outputs ``Y`` (nr, m) of the listed rows.

    Writes ``out[iw[IW_ROWS, t]]`` from ``Y[t]`` (``Y`` is scratch; ``out`` may be ``Y`` itself on pass 0,
    where the rows are in order) and the bound hits. Returns the number of rows bound management must
    repeat (hit and ``2^r`` at most ``bm_limit``; 0 when it is off): their exponent is incremented and they
    are listed first in ``iw[IW_ROWS]`` for the next pass.
    """
    pkey = sub_key(sub_key(key, uint64(call)), uint64(p))
    for t in range(nr):
        b = iw[IW_ROWS, t]
        iw[IW_HIT, b] = _finish_row(Y[t], out[b], float32(fw[0, t]), fw[1, t], P, F, sub_key(pkey, uint64(b)))
    if F[F_BM] == 0:
        return 0
    limit = P[P_BM_LIMIT]
    cnt = 0
    for t in range(nr):
        b = iw[IW_ROWS, t]
        if iw[IW_HIT, b] != 0 and 2.0 ** iw[IW_RSHIFT, b] <= limit:
            iw[IW_RSHIFT, b] += 1
            iw[IW_ROWS, cnt] = b
            cnt += 1
    return cnt


@njit(cache=True, error_model="numpy")
def mvm_fused(W, X, Y, iw, fw, Xq, P, F, backward, key, call):
    """The whole pipeline in one call: :func:`mvm_prepare`, ``Y = Xq @ W.T`` (``Xq @ W`` backward),
    :func:`mvm_finish` and the bound-management passes. ``W`` C-contiguous; ``Y`` (batch, m) receives the
    outputs. Returns the number of array reads (rows times passes), or -1 if ``X`` holds inf or NaN."""
    batch = X.shape[0]
    if mvm_prepare(X, iw, fw, Xq, P, F, backward, key, call, 0, batch):
        return -1
    if backward:
        Y[...] = np.dot(Xq, W)
    else:
        Y[...] = np.dot(Xq, W.T)
    nr = mvm_finish(Y, Y, iw, fw, P, F, key, call, 0, batch)
    passes = batch
    p = 0
    while nr:  # bound management: the rows listed first in iw, with halved inputs
        p += 1
        mvm_prepare(X, iw, fw, Xq, P, F, backward, key, call, p, nr)
        Ys = np.dot(Xq[:nr], W) if backward else np.dot(Xq[:nr], W.T)
        passes += nr
        nr = mvm_finish(Ys, Y, iw, fw, P, F, key, call, p, nr)
    return passes


@njit(cache=True, error_model="numpy")
def mvm_columns(W, E, cols, Y, iw, fw, Xq, P, F, key, call):
    """:func:`mvm_fused` (forward) for one-hot inputs ``E[t] = e_{cols[t]}`` (transfer reads): the array product of
    a one-hot row is one scaled column of ``W`` (the zeros add exactly nothing), so no GEMM. Same kernels, keys
    and results as the general path. Returns the number of array reads."""
    n = cols.shape[0]
    m = W.shape[0]
    mvm_prepare(E, iw, fw, Xq, P, F, False, key, call, 0, n)  # one-hot rows are finite
    for t in range(n):
        c = cols[t]
        xc = Xq[t, c]
        for i in range(m):
            Y[t, i] = xc * W[i, c]
    nr = mvm_finish(Y, Y, iw, fw, P, F, key, call, 0, n)
    passes = n
    p = 0
    Ys = np.empty_like(Y) if nr else Y[:0]
    while nr:  # bound management: the rows listed first in iw, with halved inputs
        p += 1
        mvm_prepare(E, iw, fw, Xq, P, F, False, key, call, p, nr)
        for t in range(nr):
            c = cols[iw[IW_ROWS, t]]
            xc = Xq[t, c]
            for i in range(m):
                Ys[t, i] = xc * W[i, c]
        passes += nr
        nr = mvm_finish(Ys, Y, iw, fw, P, F, key, call, p, nr)
    return passes
