"""Matrix-vector multiply with periphery (SPEC section 2), batch-aware, float32 as aihwkit.

The analog array itself is a dense product ``Y = Xq @ W.T`` (done by the caller with BLAS, float32).
These kernels do the periphery around it, one row (sample) at a time:

``io_prepare``  noise management (multiply by ``(1/max|x|) / 2^r``, float32), DAC rounding to the input
                step ``f32(inp_res) * f32(2 inp_bound)``, *then* clipping to ``+-inp_bound``, input noise;
``io_finish``   weight read noise, output noise (normalised domain), ADC rounding to the output step,
                bound test (an output strictly beyond ``+-out_bound`` fails it), clipping, rescaling.

Every rounding is half to even (``rintf``, aihwkit's ``RPU_ROUNDFUNF``) or stochastic. An all-zero input row
under noise management gives exactly 0 (no ADC, no bound management). Random numbers are counter based:
row ``b`` of a pass uses words ``b << 24`` of the pass's stream. The semantics were checked bit for bit
against aihwkit 1.1.0 (``tests/test_golden.py``).
"""
from __future__ import annotations

import math

from numba import float32, float64, int64, njit, uint64

from .rng import draw, normal

NM_NONE = 0
NM_ABS_MAX = 1
NM_CONSTANT = 2


@njit(inline="always", error_model="numpy")
def rint(v):
    """Round half to even (C ``rint`` under the default rounding mode)."""
    r = math.floor(v + 0.5)
    if r - v == 0.5 and r % 2.0 != 0.0:
        r -= 1.0
    return r


@njit(inline="always", error_model="numpy")
def _quantize32(v, step, sto, key, idx):
    """``rint(v / step) * step`` in float32 (``step <= 0``: unchanged). Returns (value, idx)."""
    if step <= float32(0.0):
        return v, idx
    q = float32(v / step)
    if sto:
        u = float64(draw(key, idx) >> uint64(11)) * (1.0 / 9007199254740992.0)
        idx += 1
        fl = math.floor(float64(q))
        qq = float32(fl + (1.0 if u < float64(q) - fl else 0.0))
    else:
        qq = float32(rint(float64(q)))
    return float32(qq * step), idx


@njit(cache=True, error_model="numpy")
def io_prepare(X, rows, nm_mode, nm_thres, rshift, inp_bound, inp_step, inp_sto, inp_noise, backward, key,
               ki, wi, fi, Xq, out_factor, xnorm):
    """Inputs of the rows listed in ``rows`` as the DAC delivers them.

    ``X`` (batch, n) float32; ``rshift[b]`` the bound-management exponent of row b. Writes ``Xq[b]``,
    ``out_factor[b]`` (what the ADC output is multiplied by: ``1/scale`` forward, ``max|d|`` backward, as
    aihwkit; 0 marks an all-zero row) and ``xnorm[b] = ||Xq[b]||_2``.
    """
    n = X.shape[1]
    ib = float32(inp_bound)
    step = float32(inp_step)
    for t in range(rows.shape[0]):
        b = rows[t]
        scaling = False
        nm = float32(1.0)
        if nm_mode == NM_ABS_MAX:
            nm = float32(0.0)
            for j in range(n):
                a = abs(X[b, j])
                if a > nm:
                    nm = a
            scaling = True
        elif nm_mode == NM_CONSTANT:
            nm = float32(nm_thres)
            scaling = True
        if scaling and nm <= float32(0.0) and inp_noise <= 0.0:
            out_factor[b] = 0.0
            xnorm[b] = 0.0
            for j in range(n):
                Xq[b, j] = 0.0
            continue
        scale = float32(1.0)
        if scaling:
            scale = float32(scale / nm)
        red = float32(2.0 ** rshift[b])
        if rshift[b] > 0:
            scale = float32(scale / red)
            scaling = True
        idx = int64(b) << 24
        acc = 0.0
        for j in range(n):
            v = X[b, j]
            if scaling:
                v = float32(v * scale)
            v, idx = _quantize32(v, step, inp_sto, key, idx)
            if v > ib:
                v = ib
            elif v < -ib:
                v = -ib
            if inp_noise > 0.0:
                z, idx = normal(key, idx, ki, wi, fi)
                v = float32(v + float32(inp_noise * z))
            Xq[b, j] = v
            acc += float64(v) * float64(v)
        if backward:
            out_factor[b] = nm if scaling else 1.0
        else:
            out_factor[b] = float32(float32(1.0) / scale) if scaling else 1.0
        xnorm[b] = math.sqrt(acc)


@njit(cache=True, error_model="numpy")
def io_finish(Y, rows, out_factor, xnorm, w_noise, out_noise, out_bound, out_step, out_sto, key, ki, wi, fi,
              out, at_bound):
    """Outputs of the rows listed in ``rows``: noise, ADC, bound test, clipping, rescaling.

    ``Y`` (batch, m) float32 array outputs (rows not listed are ignored); writes ``out[b]`` and
    ``at_bound[b]`` (1 if an output was strictly beyond ``+-out_bound`` after the ADC). Returns the number
    of such rows.
    """
    m = Y.shape[1]
    ob = float32(out_bound)
    step = float32(out_step)
    nb = 0
    for t in range(rows.shape[0]):
        b = rows[t]
        f = float32(out_factor[b])
        if f == 0.0:
            for i in range(m):
                out[b, i] = 0.0
            at_bound[b] = 0
            continue
        hit = 0
        idx = (int64(b) << 24) + (int64(1) << 23)
        for i in range(m):
            v = Y[b, i]
            if w_noise > 0.0:
                z, idx = normal(key, idx, ki, wi, fi)
                v = float32(v + float32(w_noise * xnorm[b] * z))
            if out_noise > 0.0:
                z, idx = normal(key, idx, ki, wi, fi)
                v = float32(v + float32(out_noise * z))
            v, idx = _quantize32(v, step, out_sto, key, idx)
            if v > ob:
                v = ob
                hit = 1
            elif v < -ob:
                v = -ob
                hit = 1
            out[b, i] = float32(v * f)
        at_bound[b] = hit
        nb += hit
    return nb
