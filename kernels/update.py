"""Pulsed update kernels: the stochastic compressed pulse scheme of analog crossbars (SPEC section 3).

For one sample the rank-1 update ``W <- W - lr * d x^T`` is written as ``BL`` time slots. Input line ``j``
fires in a slot with probability ``min(B |x_j|, 1)``, output line ``i`` with ``min(A |d_i|, 1)``; device
``(i, j)`` receives one pulse per coincidence, of sign ``-sign(d_i x_j)``. Pulse trains are bit-packed
(one ``uint64`` word per 64 slots), so the coincidence count of a device is ``popcount(d_bits & x_bits)``.
All pulses a device receives in one sample have the same sign, so they are applied one after the other
on that device alone (order between devices is irrelevant).

Device response (per pulse, SPEC section 1), hidden weight ``w``, device parameters in ``dp``:

* linear family (ConstantStep, SoftBounds, SoftBoundsReference, LinearStep):
  up ``w += (su + lu (w+ref)) * (1 + sigma z)`` (multiplicative noise) or ``su + lu (w+ref) + su sigma z``
  (additive); down likewise with ``sd``, ``ld`` and a minus sign; then ``w + ref`` clipped to ``[lo, hi]``.
* ExpStep, PowStep, Piecewise: aihwkit's formulas (see :func:`one_pulse`).

Closed form (``closed_form=True``) for ``n`` same-sign pulses on the linear family
(:func:`_linear_closed_form`): with ``e = w + ref - w*`` (``w* = -s/l`` the fixed point of the step), one pulse
maps ``e -> a e + s sigma z`` (additive, ``a = 1 + l``) or ``e -> e (a + l sigma z)`` (multiplicative).
Additive noise and constant steps (``l = 0``) give an exact Gaussian after ``n`` pulses. Multiplicative noise
gives ``e_n = e_0 a^n prod(1 + r z_k)`` with ``r = l sigma / a``; we draw it with the exact mean and variance
and the exact leading skewness ``3 (n-1) r / sqrt(n)`` (Cornish-Fisher), and only when ``|r| sqrt(n) <= 0.01``
(skewness <= 0.03; the neglected cumulants are O(r^2 n) <= 1e-4 relative). One pulse (``n = 1``) is exact.
Whenever the 8-sigma envelope of the path could touch a device bound (where sequential clipping matters), or
the condition fails, or the device is not in the linear family, pulses are simulated one by one.
``tests/test_update_kernel.py`` compares both paths.

Vectorised rows. The closed form is written without branches, so the loop over the devices of a row compiles to
AVX-512/AVX2 code (8 devices per step): over every column when the trains fit one 64-bit word and at least a
quarter of the input lines fire (:func:`_row_dense`), otherwise over the devices that receive pulses, gathered
into contiguous buffers of up to COMPACT_CHUNK devices across rows (:func:`_rows_compact`). Device parameters
are read from a row-planar copy ``dpr`` (out, 7, in) and the counters are planar (2, out, in). Both give bit for
bit what the device-by-device path (:func:`_pulse_device`) gives; the tests check it.

Random numbers are counter based (:mod:`.rng`): sample ``t`` of a tile with key ``key`` uses stream
``sub_key(key, t)``; lines and devices use independent sub-streams, device ``(i, j)`` starts at word
``(i * in_size + 2m) << 20`` for the pair of columns ``2m, 2m + 1`` (:func:`_pair_word`): the closed form takes
the device's normal of the pair's first word (branch-free Box-Muller, :func:`.rng.normal_pair32`), write noise
that of the second; pulse-by-pulse simulation draws from the device's own later words (ziggurat). Results do
not depend on the number of threads or on the row path.
"""
from __future__ import annotations

import math

import numpy as np
from numba import float32, float64, int32, int64, njit, prange, uint64
from numba.core import types
from numba.extending import intrinsic

from .mvm import _bits_to_f32, rint
from .rng import draw, normal, normal_pair32, popcount64, sub_key

# device models (dp layout below) --------------------------------------------------------------------------
MODEL_LINEAR = 0
MODEL_EXP = 1
MODEL_POW = 2
MODEL_PIECEWISE = 3
MODEL_TABLE = 4  # measured lookup tables (dG quantiles vs G), tile params in ``tp``

# cycle-to-cycle noise forms
NOISE_MULT = 0
NOISE_ADD = 1
NOISE_COMPLEX = 2  # ExpStep with dw_min_std_add / dw_min_std_slope

# pulse types
PULSE_STOCHASTIC = 0
PULSE_MEAN_COUNT = 1
PULSE_DETERMINISTIC = 2
PULSE_EXPECTED = 3
PULSE_NONE = 4
PULSE_NONE_WITH_DEVICE = 5

# rows of the per-device parameter array dp (float32, shape (out, in, N_DP): the parameters of one device are
# contiguous, as the device-by-device paths read them; the vectorised rows read the row-planar copy of rows
# SU .. HI, see ``row_planar``)
SU, SD, LU, LD, REF, LO, HI = 0, 1, 2, 3, 4, 5, 6
# derived rows of the linear family, informational (per-device HDF5 dumps; see ``linear_derived``): fixed points
# ``w* = -s/l`` of an up / down pulse and the relative noise ``r = |l| sigma / (1 + l)`` of one pulse
WSU, WSD, RU, RD = 7, 8, 9, 10
N_DP = 12  # padded to 48 bytes per device; row 11 unused

# stats vector written by the drivers (int64)
ST_PULSES, ST_CYCLES, ST_SLOTS, ST_UP, ST_DOWN = 0, 1, 2, 3, 4
N_ST = 5

MAX_BL = 4096  # bit trains use words line * 4096 + k/2 of the line stream

# row paths of the stochastic update (all give the same result; PATH_AUTO picks the fastest)
PATH_AUTO, PATH_DENSE, PATH_COMPACT, PATH_SCALAR = 0, 1, 2, 3
#: the dense vectorised row runs when at least 1/DENSE_MIN_FRACTION of the input lines fire
DENSE_MIN_FRACTION = 4
#: devices gathered per batch of the compacted path
COMPACT_CHUNK = 512
_CF_MAX_RSQRTN = 0.01  # closed form for multiplicative noise only when |r| sqrt(n) <= this
_ENVELOPE = 8.0  # standard deviations kept away from the bounds by the closed form


# --------------------------------------------------------------------------------------------------------
# update management (aihwkit PulsedUpdateMetaParameter::performUpdateManagement)
@njit(cache=True, error_model="numpy")
def bl_ab(x_amax, d_amax, lr, g, desired_bl, ublm, um, um_grad_scale):
    """Pulse-train length ``BL`` and probability scales ``A`` (for d) and ``B`` (for x) of one sample.

    ``g`` is the weight granularity. With UBLM ``BL = min(ceil(k), desired_bl)``,
    ``k = lr x_amax d_amax um_grad_scale / g``; with UM the scales are balanced so that
    ``B x_amax = A d_amax`` while ``k <= desired_bl``; for larger ``k`` the d probabilities saturate
    (``d_val *= desired_bl / k``). Float32 arithmetic in aihwkit's order (``ceilf(k)`` is sensitive to it).
    Returns ``(BL, A, B)``; ``BL == 0`` means no pulses.
    """
    lr32 = float32(lr)
    g32 = float32(g)
    if lr32 <= float32(0.0):
        return 0, 0.0, 0.0
    bl = desired_bl
    a = float32(math.sqrt(float32(lr32 / float32(g32 * float32(bl)))))
    b = a
    if ublm or um:
        if x_amax == 0.0 or d_amax == 0.0:
            return 0, 1.0, 1.0
        xv = float32(x_amax)
        dv = float32(float32(um_grad_scale) * float32(d_amax))
        k = float32(float32(float32(lr32 * xv) * dv) / g32)
        if ublm:
            bl = int64(math.ceil(k))
            if bl > desired_bl:
                bl = desired_bl
            if bl < 1:
                bl = 1
            a = float32(math.sqrt(float32(lr32 / float32(g32 * float32(bl)))))
            b = a
        if um:
            if k > float32(desired_bl):
                dv = float32(dv * float32(float32(desired_bl) / k))
            a = float32(a * float32(math.sqrt(float32(xv / dv))))
            b = float32(b * float32(math.sqrt(float32(dv / xv))))
    return bl, float64(a), float64(b)


@intrinsic
def _f32_bits(typingctx, x):
    """The bits of a float32 as an int32."""
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        from llvmlite import ir

        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@njit(inline="always", error_model="numpy")
def _absmax(v):
    """``max |v|`` of a float32 vector, as float64 (integer max over the bit patterns: vectorises; the
    inputs are finite)."""
    m = int32(0)
    for k in range(v.shape[0]):
        a = _f32_bits(v[k]) & int32(0x7FFFFFFF)
        m = a if a > m else m
    return float64(_bits_to_f32(m))


@njit(cache=True, error_model="numpy")
def make_bits(v, scale, bl, key, line0, bits, sign, thr):
    """:func:`_make_bits` (a compiled entry point, for the tests and ``tile.sample_trains``)."""
    return _make_bits(v, scale, bl, key, line0, bits, sign, thr)


@njit(inline="always", error_model="numpy")
def _make_bits(v, scale, bl, key, line0, bits, sign, thr):
    """Bit-packed stochastic pulse trains of a vector of lines.

    Line ``k`` (global line number ``line0 + k``) fires in each of the ``bl`` slots with probability
    ``min(scale |v_k|, 1)``: slots ``2m`` and ``2m + 1`` compare the low and high 32 bits of word ``m`` of
    the line's stream with ``p 2^32`` (``p >= 1``: always, ``p = 0``: never). Writes ``bits[k, :]`` and
    ``sign[k]`` (+1/-1, 0 when the line never fires); ``thr`` is a work array of ``len(v)`` floats.
    Returns the number of lines that fire at least once.
    """
    n = v.shape[0]
    nz = 0
    for k in range(n):
        t = abs(float64(v[k])) * scale * 4294967296.0
        thr[k] = t
        nz += t > 0.0
    nw = bits.shape[1]
    if nw == 1 and nz * 4 >= n:
        # one word per line, most lines active: slot-pair passes over all lines, branch-free (vectorises)
        for k in range(n):
            bits[k, 0] = uint64(0)
        for s in range(0, bl, 2):
            two = s + 1 < bl
            sh = uint64(s)
            for k in range(n):
                word = draw(key, (line0 + k) * MAX_BL + (s >> 1))
                b0 = uint64(float64(word & uint64(0xFFFFFFFF)) < thr[k])
                b1 = uint64(two & (float64(word >> uint64(32)) < thr[k]))
                bits[k, 0] |= (b0 | (b1 << uint64(1))) << sh
    else:
        # long trains or few active lines (sparse pixels, one-column transfers): line by line, active lines only
        for k in range(n):
            for wd in range(nw):
                bits[k, wd] = uint64(0)
            t = thr[k]
            if t <= 0.0:
                continue
            base = (line0 + k) * MAX_BL
            for s in range(0, bl, 2):
                word = draw(key, base + (s >> 1))
                if float64(word & uint64(0xFFFFFFFF)) < t:
                    bits[k, s >> 6] |= uint64(1) << uint64(s & 63)
                if s + 1 < bl and float64(word >> uint64(32)) < t:
                    bits[k, (s + 1) >> 6] |= uint64(1) << uint64((s + 1) & 63)
    active = 0
    for k in range(n):
        nz = bits[k, 0] != uint64(0)
        for wd in range(1, nw):
            nz |= bits[k, wd] != uint64(0)
        sign[k] = (1 if v[k] > 0 else -1) if nz else 0
        active += nz
    return active


# --------------------------------------------------------------------------------------------------------
# device response
@njit(inline="always", error_model="numpy")
def _clip(v, lo, hi):
    if v > hi:
        v = hi
    if v < lo:
        v = lo
    return v


@njit(forceinline=True, error_model="numpy")
def one_pulse(w, up, su, sd, lu, ld, ref, lo, hi, model, noise_mode, sigma, tp, z):
    """Hidden weight after one pulse (``up`` True: potentiation) with cycle-to-cycle deviate ``z``."""
    if model == MODEL_LINEAR:
        wr = w + ref
        if up:
            step = su + lu * wr
            if noise_mode == NOISE_MULT:
                wr += step * (1.0 + sigma * z)
            else:
                wr += step + su * sigma * z
        else:
            step = sd + ld * wr
            if noise_mode == NOISE_MULT:
                wr -= step * (1.0 + sigma * z)
            else:
                wr -= step + sd * sigma * z
        return _clip(wr, lo, hi) - ref
    if model == MODEL_EXP:
        # tp: a, b, A_up, A_down, gamma_up, gamma_down, dw_min_std_add, dw_min_std_slope
        bdiff = hi - lo
        if bdiff <= 0.0:
            return w
        zz = 2.0 * w / bdiff * tp[0] + tp[1]
        if up:
            y = max(1.0 - tp[2] * math.exp(tp[4] * zz), 0.0)
            dw = y * su
        else:
            y = max(1.0 - tp[3] * math.exp(-tp[5] * zz), 0.0)
            dw = -y * sd
        if noise_mode == NOISE_COMPLEX:
            w += dw + sigma * (abs(dw) + tp[6] + tp[7] * abs(w)) * z
        else:
            w += dw * (1.0 + sigma * z)
        return _clip(w, lo, hi)
    if model == MODEL_POW:
        # PowStep (ref = 0) and PowStepReference: the response is evaluated and clipped at w + ref
        rng_ = hi - lo
        if rng_ == 0.0:
            return w
        wr = w + ref
        # the base is >= 0 up to the rounding of w + ref - ref (PowStepReference): clamp it, a negative base ** a
        # fractional exponent is NaN
        if up:
            wr += su * max((hi - wr) / rng_, 0.0) ** lu * (1.0 + sigma * z)
        else:
            wr -= sd * max((wr - lo) / rng_, 0.0) ** ld * (1.0 + sigma * z)
        return _clip(wr, lo, hi) - ref
    if model == MODEL_PIECEWISE:
        # tp: n_nodes, up[0..n-1], down[0..n-1]
        nn = int64(tp[0])
        ns = nn - 1
        if ns <= 0 or hi <= lo:
            f = tp[1] if up else tp[1 + nn]
        else:
            ws = (w - lo) / (hi - lo) * ns
            if ws < 0.0:
                ws = 0.0
            idx = int64(math.floor(ws))
            if idx > ns - 1:
                idx = ns - 1
            t = ws - idx
            if t > 1.0:
                t = 1.0
            off = 1 if up else 1 + nn
            f = (1.0 - t) * tp[off + idx] + t * tp[off + idx + 1]
        if up:
            w += su * f * (1.0 + sigma * z)
        else:
            w -= sd * f * (1.0 + sigma * z)
        return _clip(w, lo, hi)
    if model == MODEL_TABLE:
        return _table_pulse(w, up, su, sd, lo, hi, tp, z)
    return w


@njit(forceinline=True, error_model="numpy")
def _table_pulse(w, up, su, sd, lo, hi, tp, u):
    """Measured lookup-table device: dG quantile table vs G, sampled at CDF level ``u`` in [0, 1).

    ``tp`` layout: n_g, n_cdf, g_lo, g_hi (normalised G range of the table), cdf[n_cdf], then the up table
    (n_cdf x n_g, row-major) and the down table. ``su``/``sd`` scale the sampled change (device-to-device
    gain). The state is the normalised conductance ``w``; the change is clipped to the device range.
    """
    ng = int64(tp[0])
    nc = int64(tp[1])
    glo = tp[2]
    ghi = tp[3]
    cdf0 = 4
    tab0 = cdf0 + nc + (0 if up else nc * ng)
    # G bin (nearest centre on an equally spaced grid)
    pos = (w - glo) / (ghi - glo) * (ng - 1)
    jb = int64(pos + 0.5)
    if jb < 0:
        jb = 0
    if jb > ng - 1:
        jb = ng - 1
    # CDF interpolation
    if u <= tp[cdf0]:
        dg = tp[tab0 + jb]
    elif u >= tp[cdf0 + nc - 1]:
        dg = tp[tab0 + (nc - 1) * ng + jb]
    else:
        lo_i = 0
        hi_i = nc - 1
        while hi_i - lo_i > 1:
            mid = (lo_i + hi_i) >> 1
            if tp[cdf0 + mid] <= u:
                lo_i = mid
            else:
                hi_i = mid
        c0 = tp[cdf0 + lo_i]
        c1 = tp[cdf0 + hi_i]
        t = (u - c0) / (c1 - c0) if c1 > c0 else 0.0
        dg = (1.0 - t) * tp[tab0 + lo_i * ng + jb] + t * tp[tab0 + hi_i * ng + jb]
    w += dg * (su if up else sd)
    return _clip(w, lo, hi)


def linear_derived(dp, sigma):
    """Fill rows WSU, WSD, RU, RD of ``dp`` (planar float64 work array, (N_DP, out, in)), linear family.

    Informational (they go into the per-device HDF5 dumps): fixed points ``w* = -s/l`` of an up / down
    pulse and the relative noise ``r = |l| sigma / (1 + l)`` of one pulse. The kernels recompute what they
    need from SU, SD, LU, LD.
    """
    for row_s, row_l, row_w, row_r, sgn in ((SU, LU, WSU, RU, 1.0), (SD, LD, WSD, RD, -1.0)):
        s_ = sgn * dp[row_s]
        l_ = sgn * dp[row_l]
        nz = l_ != 0.0
        dp[row_w] = np.where(nz, -s_ / np.where(nz, l_, 1.0), 0.0)
        a = 1.0 + l_
        dp[row_r] = np.where(a > 0.0, np.abs(l_) * sigma / np.where(a > 0.0, a, 1.0), np.inf)


N_DPR = 7  # rows SU .. HI


def row_planar(dp):
    """Rows SU .. HI of ``dp`` (out, in, N_DP) as a row-planar float32 array (out, N_DPR, in): the layout
    of the vectorised update, where the devices of one row are contiguous for each parameter."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(dp, np.float32)[..., :N_DPR], 2, 1))


# --------------------------------------------------------------------------------------------------------
# closed form of n same-sign pulses (linear family), branch-free so that loops over devices vectorise
@njit(inline="always", error_model="numpy")
def _powi(a, m):
    """``a ** m`` for an integer ``0 <= m < 4096`` (= MAX_BL): 12 fixed squaring steps, no branches."""
    p = 1.0
    b = a
    for k in range(12):
        p *= b if (m >> k) & 1 else 1.0
        b *= b
    return p


@njit(inline="always", error_model="numpy")
def _linear_closed_form(w, n, up, su, sd, lu, ld, ref, lo, hi, sigma, mult, z):
    """``n >= 1`` same-sign pulses on a linear-family device at once, from one standard normal ``z``.

    Returns ``(w_new, ok)``: the hidden weight after the pulses (clipped to the bounds) and whether the
    closed form applies; where it does not the caller simulates the pulses one by one. With signed step
    ``s`` and slope ``l`` of the pulse direction, one pulse moves ``w + ref`` by ``s + l (w + ref)`` times
    ``(1 + sigma z)`` (multiplicative noise) or plus ``s sigma z`` (additive). In terms of the distance
    ``e`` to the fixed point, ``e -> a e (1 + r z)`` with ``a = 1 + l``, ``r = l sigma / a``, or
    ``e -> a e + s sigma z``. After ``n`` pulses the mean is ``w0 + step0 (a^n - 1) / l`` (``n step0``
    for ``l = 0``), ``step0`` the first step. Additive noise: exactly Gaussian with variance
    ``(s sigma)^2 (a^2n - 1) / (a^2 - 1)``. Multiplicative noise: ``e0 a^n prod(1 + r z_k)``, drawn with the
    exact mean, the standard deviation ``|r| sqrt(n) (1 + (n - 1) r^2 / 4)`` (series of
    ``sqrt((1 + r^2)^n - 1)``, relative error < 1e-9 here) and the skewness ``3 (n - 1) r / sqrt(n)``
    (Cornish-Fisher), only when ``|r| sqrt(n) <= 0.01``. ``n = 1`` is one exact pulse (then clipped); for
    ``n > 1`` the 8-sigma envelope of the path must stay inside the bounds (sequential clipping matters
    only there).
    """
    s = su if up else -sd
    l = lu if up else -ld
    wr0 = w + ref
    step0 = s + l * wr0
    a = 1.0 + l
    nf = float64(n)
    one = n == 1
    an1 = _powi(a, n - 1)
    an = an1 * a
    lz = l == 0.0
    phi = (an - 1.0) / (1.0 if lz else l)
    phi = nf if lz else phi
    mean = wr0 + step0 * phi
    sqn = math.sqrt(nf)
    if mult:
        r = l * sigma / a
        r = 0.0 if one else r  # one pulse: exact, whatever a
        gam = 3.0 * (nf - 1.0) * r / sqn
        y = (z + gam * (1.0 / 6.0) * (z * z - 1.0)) * (1.0 - gam * gam * (1.0 / 36.0))
        gn = sigma * an1 * sqn * (1.0 + 0.25 * (nf - 1.0) * r * r)
        sdv = abs(step0) * gn
        wn = mean + step0 * gn * y
        ok_noise = abs(r) * sqn <= _CF_MAX_RSQRTN
    else:
        den = l * (2.0 + l)
        s2 = (an * an - 1.0) / (1.0 if lz else den)
        s2 = nf if lz else s2
        s2 = 1.0 if one else s2
        sdv = abs(s) * sigma * math.sqrt(s2)
        wn = mean + s * sigma * math.sqrt(s2) * z
        ok_noise = True
    env = _ENVELOPE * sdv + abs(step0)
    ok = one | (ok_noise & (a > 0.0) & (min(wr0, mean) - env > lo) & (max(wr0, mean) + env < hi))
    return min(max(wn, lo), hi) - ref, ok


@njit(forceinline=True, error_model="numpy")
def _pulse_loop(w, n, up, su, sd, lu, ld, ref, lo, hi, model, noise_mode, sigma, tp, key, idx, ki, wi, fi):
    """``n`` pulses simulated one by one; returns ``(w_new, next idx)``."""
    for _ in range(n):
        z = 0.0
        if model == MODEL_TABLE:
            z = float64(draw(key, idx) >> uint64(11)) * (1.0 / 9007199254740992.0)
            idx += 1
        elif sigma > 0.0:
            z, idx = normal(key, idx, ki, wi, fi)
        w = one_pulse(w, up, su, sd, lu, ld, ref, lo, hi, model, noise_mode, sigma, tp, z)
    return w, idx


# --------------------------------------------------------------------------------------------------------
# one device: the semantics every path reproduces
@njit(inline="always", error_model="numpy")
def _pair_word(i, j, in_size):
    """First random word of the device pair ``(i, 2m), (i, 2m + 1)`` holding device ``(i, j)`` in a sample's
    device stream (2^20 words per pair). Word 0 gives the pair's two closed-form normals (the first for
    the even column), word 1 their two write-noise normals; pulse-by-pulse simulation draws from word 2
    (even column) or 2 + 2^19 (odd column) on. Pairs share one Box-Muller evaluation per word."""
    return (uint64(i) * uint64(in_size) + (uint64(j) & ~uint64(1))) << uint64(20)


@njit(inline="always", error_model="numpy")
def _pick(pair, j):
    """The normal of column ``j`` from its pair's word (:func:`_pair_word`)."""
    z1, z2 = pair
    return float64(z2) if j & 1 else float64(z1)


@njit(forceinline=True, error_model="numpy")
def _pulse_one_by_one(w, w_app, dp, i, j, n, up, model, noise_mode, sigma, wn_std, tp, dkey, ki, wi, fi):
    """``n`` same-sign pulses on device ``(i, j)`` simulated one by one from its own words of the pair's
    stream; write noise (if any) from the pair's word 1 (:func:`_pair_word`)."""
    base = _pair_word(i, j, w.shape[1])
    wv, _ = _pulse_loop(float64(w[i, j]), n, up, float64(dp[i, j, SU]), float64(dp[i, j, SD]),
                        float64(dp[i, j, LU]), float64(dp[i, j, LD]), float64(dp[i, j, REF]),
                        float64(dp[i, j, LO]), float64(dp[i, j, HI]), model, noise_mode, sigma, tp, dkey,
                        int64(base) + 2 + (j & 1) * (1 << 19), ki, wi, fi)
    w[i, j] = wv
    if wn_std > 0.0:
        w_app[i, j] = wv + wn_std * _pick(normal_pair32(draw(dkey, base + uint64(1))), j)


@njit(forceinline=True, error_model="numpy")
def _pulse_device(w, w_app, dp, cnt, i, j, n, up, model, noise_mode, sigma, wn_std, tp, closed_form, dkey,
                  ki, wi, fi):
    """``n`` same-sign pulses on device ``(i, j)``: new hidden weight, write noise, pulse counters.

    The reference semantics of one device in one sample, which the vectorised rows reproduce bit for bit:
    linear family with ``closed_form``: :func:`_linear_closed_form` from the device's normal of its pair's
    word 0 and write noise from word 1 (:func:`_pair_word`); where the closed form does not apply, and for
    the other models, pulse by pulse.
    """
    done = False
    if closed_form and model == MODEL_LINEAR:
        base = _pair_word(i, j, w.shape[1])
        wn, done = _linear_closed_form(float64(w[i, j]), n, up, float64(dp[i, j, SU]), float64(dp[i, j, SD]),
                                       float64(dp[i, j, LU]), float64(dp[i, j, LD]), float64(dp[i, j, REF]),
                                       float64(dp[i, j, LO]), float64(dp[i, j, HI]), sigma,
                                       noise_mode == NOISE_MULT, _pick(normal_pair32(draw(dkey, base)), j))
        if done:
            w[i, j] = wn
            if wn_std > 0.0:
                w_app[i, j] = wn + wn_std * _pick(normal_pair32(draw(dkey, base + uint64(1))), j)
    if not done:
        _pulse_one_by_one(w, w_app, dp, i, j, n, up, model, noise_mode, sigma, wn_std, tp, dkey, ki, wi, fi)
    cnt[0 if up else 1, i, j] += n


@njit(inline="always", error_model="numpy")
def _one_sided(n, up, sign_mode):
    """Pulse count and direction under ``sign_mode`` (0: as is; +1: up pulses only; -1: down pulses only,
    applied as up pulses). Branch-free."""
    keep = (sign_mode == 0) | (up == (sign_mode > 0))
    return (n if keep else 0), (up | (sign_mode != 0))


# --------------------------------------------------------------------------------------------------------
# rows: scalar (any model), dense vectorised and compacted vectorised (linear family, closed form)
@njit(inline="always", error_model="numpy")
def _coincidences(dbits, xbits, i, j, ds, xsj, sign_mode):
    """Pulses of device ``(i, j)`` in one sample (popcount over the train words) and their direction, under
    ``sign_mode`` (:func:`_one_sided`)."""
    n = int64(0)
    for wd in range(xbits.shape[1]):
        n += int64(popcount64(dbits[i, wd] & xbits[j, wd]))
    return _one_sided(n, ds * xsj < 0, sign_mode)


@njit(forceinline=True, error_model="numpy")
def _row_scalar(i, w, w_app, dp, cnt, xbits, xsign, act, nact, dbits, ds,
                model, noise_mode, sigma, wn_std, tp, closed_form, dkey, ki, wi, fi, sign_mode):
    """Row ``i``, device by device with :func:`_pulse_device`. Returns (pulses, up pulses)."""
    tot = int64(0)
    tot_up = int64(0)
    for jj in range(nact):
        j = act[jj]
        n, up = _coincidences(dbits, xbits, i, j, ds, xsign[j], sign_mode)
        if n == 0:
            continue
        _pulse_device(w, w_app, dp, cnt, i, j, n, up, model, noise_mode, sigma, wn_std, tp, closed_form,
                      dkey, ki, wi, fi)
        tot += n
        if up:
            tot_up += n
    return tot, tot_up


@njit(inline="always", error_model="numpy")
def _row_normals(i, in_size, dkey, word, zb):
    """``zb[j]`` = the normal of device ``(i, j)`` from word ``word`` of its pair (:func:`_pair_word`), for
    every column: one Box-Muller evaluation per pair (vectorises)."""
    row = uint64(i) * uint64(in_size)
    for m in range((in_size + 1) >> 1):
        z1, z2 = normal_pair32(draw(dkey, ((row + uint64(2 * m)) << uint64(20)) + uint64(word)))
        zb[2 * m] = z1
        zb[2 * m + 1] = z2


@njit(inline="always", error_model="numpy")
def _row_dense(i, w, w_app, dpr, cnt, xbits, xsign, dbi, ds, sigma, mult, wn_std, write_app, dkey,
               sign_mode, fb, zb):
    """Row ``i`` over every column (one 64-bit train word, ``BL <= 64``), as :func:`_pulse_device` does it
    with the closed form, in one loop without branches (it vectorises: 8 devices per AVX-512 step), after
    the row's normals are drawn into ``zb`` (2, in_size + 1). Columns whose closed form does not apply are
    flagged in ``fb`` (left unchanged but for the counters) for :func:`_pulse_one_by_one`. Returns
    (pulses, up pulses, flagged)."""
    in_size = w.shape[1]
    _row_normals(i, in_size, dkey, 0, zb[0])
    if write_app:
        _row_normals(i, in_size, dkey, 1, zb[1])
    tot = int64(0)
    tot_up = int64(0)
    nfb = int64(0)
    for j in range(in_size):
        n, up = _one_sided(int64(popcount64(dbi & xbits[j, 0])), ds * xsign[j] < 0, sign_mode)
        wn, ok = _linear_closed_form(float64(w[i, j]), max(n, 1), up, float64(dpr[i, SU, j]),
                                     float64(dpr[i, SD, j]), float64(dpr[i, LU, j]), float64(dpr[i, LD, j]),
                                     float64(dpr[i, REF, j]), float64(dpr[i, LO, j]), float64(dpr[i, HI, j]),
                                     sigma, mult, float64(zb[0, j]))
        apply = (n > 0) & ok
        w[i, j] = float32(wn) if apply else w[i, j]
        if write_app:
            w_app[i, j] = float32(wn + wn_std * float64(zb[1, j])) if apply else w_app[i, j]
        f = (n > 0) & (not ok)
        fb[j] = f
        nfb += f
        nu = n if up else 0
        cnt[0, i, j] += nu
        cnt[1, i, j] += n - nu
        tot += n
        tot_up += nu
    return tot, tot_up, nfb


@njit(inline="always", error_model="numpy")
def _lanes(in_size, m, bi, bj, bn, bup, bw, bpar, bout, bok, sigma, mult, wn_std, write_app, dkey):
    """The closed form of :func:`_row_dense` on ``m`` compacted devices ``(bi[q], bj[q])`` (vectorises);
    writes the new hidden weight to ``bout[0, q]``, the apparent one to ``bout[1, q]``, ``ok`` to ``bok``."""
    for q in range(m):
        j = bj[q]
        base = _pair_word(bi[q], j, in_size)
        wn, ok = _linear_closed_form(float64(bw[q]), bn[q], bup[q] != 0, float64(bpar[SU, q]),
                                     float64(bpar[SD, q]), float64(bpar[LU, q]), float64(bpar[LD, q]),
                                     float64(bpar[REF, q]), float64(bpar[LO, q]), float64(bpar[HI, q]),
                                     sigma, mult, _pick(normal_pair32(draw(dkey, base)), j))
        bout[0, q] = wn
        if write_app:
            bout[1, q] = wn + wn_std * _pick(normal_pair32(draw(dkey, base + uint64(1))), j)
        bok[q] = ok


@njit(forceinline=True, error_model="numpy")
def _flush_compact(m, w, w_app, dp, cnt, model, noise_mode, sigma, wn_std, tp, dkey, ki, wi, fi,
                   bi, bj, bn, bup, bw, bpar, bout, bok):
    """Apply ``m`` gathered devices: :func:`_lanes`, then scatter (pulse by pulse where the closed form
    does not apply). Returns (pulses, up pulses)."""
    if wn_std > 0.0:
        _lanes(w.shape[1], m, bi, bj, bn, bup, bw, bpar, bout, bok, sigma, noise_mode == NOISE_MULT, wn_std, True,
               dkey)
    else:
        _lanes(w.shape[1], m, bi, bj, bn, bup, bw, bpar, bout, bok, sigma, noise_mode == NOISE_MULT, wn_std, False,
               dkey)
    tot = int64(0)
    tot_up = int64(0)
    for q in range(m):
        i = bi[q]
        j = bj[q]
        n = bn[q]
        up = bup[q] != 0
        if bok[q]:
            w[i, j] = bout[0, q]
            if wn_std > 0.0:
                w_app[i, j] = bout[1, q]
        else:
            _pulse_one_by_one(w, w_app, dp, i, j, n, up, model, noise_mode, sigma, wn_std, tp, dkey, ki, wi, fi)
        cnt[0 if up else 1, i, j] += n
        tot += n
        if up:
            tot_up += n
    return tot, tot_up


@njit(forceinline=True, error_model="numpy")
def _rows_compact(r0, r1, w, w_app, dp, dpr, cnt, xbits, xsign, act, nact, dbits, dsign, model, noise_mode,
                  sigma, wn_std, tp, dkey, ki, wi, fi, sign_mode, bi, bj, bn, bup, bw, bpar, bout, bok):
    """Rows ``r0..r1-1`` for sparse inputs, long trains or few rows: the devices that receive pulses are
    gathered (whatever row they are on) into buffers of ``len(bj)`` devices, each full buffer is applied
    by :func:`_flush_compact`. Same results as :func:`_row_scalar`. Returns (pulses, up pulses)."""
    cap = bj.shape[0]
    m = 0
    tot = int64(0)
    tot_up = int64(0)
    for i in range(r0, r1):
        ds = dsign[i]
        if ds == 0:
            continue
        for jj in range(nact):
            j = act[jj]
            n, up = _coincidences(dbits, xbits, i, j, ds, xsign[j], sign_mode)
            if n == 0:
                continue
            bi[m] = i
            bj[m] = j
            bn[m] = n
            bup[m] = up
            bw[m] = w[i, j]
            for k in range(N_DPR):
                bpar[k, m] = dpr[i, k, j]
            m += 1
            if m == cap:
                t, tu = _flush_compact(m, w, w_app, dp, cnt, model, noise_mode, sigma, wn_std, tp, dkey, ki, wi,
                                       fi, bi, bj, bn, bup, bw, bpar, bout, bok)
                tot += t
                tot_up += tu
                m = 0
    t, tu = _flush_compact(m, w, w_app, dp, cnt, model, noise_mode, sigma, wn_std, tp, dkey, ki, wi, fi,
                           bi, bj, bn, bup, bw, bpar, bout, bok)
    return tot + t, tot_up + tu


@njit(forceinline=True, error_model="numpy")
def _rows_stochastic(r0, r1, w, w_app, dp, dpr, cnt, xbits, xsign, act, nact, dbits, dsign, model, noise_mode,
                     sigma, wn_std, tp, closed_form, dkey, ki, wi, fi, sign_mode, path, fb, zb, bi, bj, bn, bup,
                     bw, bpar, bout, bok):
    """Apply the coincidences of rows ``r0..r1-1`` along ``path`` (PATH_DENSE, PATH_COMPACT or
    PATH_SCALAR; all three give the same result). Returns (pulses, up pulses)."""
    if path == PATH_COMPACT:
        return _rows_compact(r0, r1, w, w_app, dp, dpr, cnt, xbits, xsign, act, nact, dbits, dsign, model,
                             noise_mode, sigma, wn_std, tp, dkey, ki, wi, fi, sign_mode, bi, bj, bn, bup, bw,
                             bpar, bout, bok)
    in_size = w.shape[1]
    mult = noise_mode == NOISE_MULT
    tot = int64(0)
    tot_up = int64(0)
    for i in range(r0, r1):
        ds = dsign[i]
        if ds == 0:
            continue
        if path == PATH_DENSE:
            if wn_std > 0.0:
                t, tu, nfb = _row_dense(i, w, w_app, dpr, cnt, xbits, xsign, dbits[i, 0], ds, sigma, mult,
                                        wn_std, True, dkey, sign_mode, fb, zb)
            else:
                t, tu, nfb = _row_dense(i, w, w_app, dpr, cnt, xbits, xsign, dbits[i, 0], ds, sigma, mult,
                                        wn_std, False, dkey, sign_mode, fb, zb)
            if nfb > 0:
                for j in range(in_size):
                    if fb[j]:
                        n, up = _coincidences(dbits, xbits, i, j, ds, xsign[j], sign_mode)
                        _pulse_one_by_one(w, w_app, dp, i, j, n, up, model, noise_mode, sigma, wn_std, tp,
                                          dkey, ki, wi, fi)
        else:
            t, tu = _row_scalar(i, w, w_app, dp, cnt, xbits, xsign, act, nact, dbits, ds, model, noise_mode,
                                sigma, wn_std, tp, closed_form, dkey, ki, wi, fi, sign_mode)
        tot += t
        tot_up += tu
    return tot, tot_up


@njit(forceinline=True, error_model="numpy")
def _rows_counts(r0, r1, w, w_app, dp, cnt, xc, dc, bl, ptype,
                 model, noise_mode, sigma, wn_std, tp, closed_form, dkey, ki, wi, fi, sign_mode):
    """Deterministic coincidences (mean count / deterministic implicit) for rows ``r0..r1-1``."""
    in_size = w.shape[1]
    tot = int64(0)
    tot_up = int64(0)
    blf = float32(bl)
    for i in range(r0, r1):
        dci = dc[i]
        if dci == 0.0:
            continue
        for j in range(in_size):
            xcj = xc[j]
            if xcj == 0.0:
                continue
            if ptype == PULSE_MEAN_COUNT:
                c = float32(dci / blf) * xcj
            else:
                c = float32(dci * blf) * xcj
            n, up = _one_sided(int64(abs(rint(float64(c)))), c < 0, sign_mode)  # rintf: half to even, as aihwkit
            if n == 0:
                continue
            _pulse_device(w, w_app, dp, cnt, i, j, n, up, model, noise_mode, sigma, wn_std, tp, closed_form,
                          dkey, ki, wi, fi)
            tot += n
            if up:
                tot_up += n
    return tot, tot_up


@njit(cache=True, error_model="numpy")
def _count_line(v, scale, bl, ptype, out):
    """Mean-count (rounded counts, signed) or deterministic-implicit (clipped probabilities) per line."""
    blf = float32(bl)
    for k in range(v.shape[0]):
        val = float32(v[k])
        pp = float32(abs(val) * float32(scale))
        if pp == 0.0:
            out[k] = 0.0
            continue
        if ptype == PULSE_MEAN_COUNT:
            nt = rint(float64(float32(blf * pp)))
            if nt > bl:
                nt = bl
            out[k] = nt if val >= 0 else -nt
        else:
            if pp > 1.0:
                pp = float32(1.0)
            out[k] = pp if val >= 0 else -pp


# --------------------------------------------------------------------------------------------------------
# drivers
@njit(inline="always", error_model="numpy")
def _prepare_sample(x, d, lr, g, desired_bl, ublm, um, um_grad_scale, ptype, lkey,
                    xbits, xsign, dbits, dsign, act, xc, dc, thx, thd):
    """Pulse trains (stochastic) or line counts (deterministic types) of one sample.

    Returns ``(bl, nact)``: ``bl == 0`` or ``nact == 0`` means the sample applies no pulse; for the
    stochastic type ``act[:nact]`` lists the input lines that fire.
    """
    in_size = x.shape[0]
    bl, A, B = bl_ab(_absmax(x), _absmax(d), lr, g, desired_bl, ublm, um, um_grad_scale)
    if bl == 0:
        return 0, 0
    if ptype == PULSE_STOCHASTIC:
        nd = _make_bits(d, A, bl, lkey, in_size, dbits, dsign, thd)  # lines use their own streams: any order
        if nd == 0:
            return bl, 0
        nx = _make_bits(x, B, bl, lkey, 0, xbits, xsign, thx)
        if nx == 0:
            return bl, 0
        nact = 0
        for j in range(in_size):
            if xsign[j] != 0:
                act[nact] = j
                nact += 1
        return bl, nact
    _count_line(x, B, bl, ptype, xc)
    _count_line(d, A, bl, ptype, dc)
    return bl, in_size


@njit(forceinline=True)
def _sample_workspace(out_size, in_size, desired_bl):
    """Per-call work arrays of the update kernels: bit-packed trains and signs of x and d, the active
    columns, the per-sample scaled copies of x and d, and the firing thresholds of x and d."""
    nw = (desired_bl + 63) // 64
    return (np.zeros((in_size, nw), np.uint64), np.zeros(in_size, np.int8),
            np.zeros((out_size, nw), np.uint64), np.zeros(out_size, np.int8),
            np.zeros(in_size, np.int64), np.zeros(in_size, np.float32), np.zeros(out_size, np.float32),
            np.empty(in_size, np.float64), np.empty(out_size, np.float64))


@njit(inline="always", error_model="numpy")
def _update_samples(w, w_app, dp, dpr, cnt, X, D, lr, g, desired_bl, ublm, um, um_grad_scale, model, noise_mode,
                    sigma, wn_std, tp, closed_form, key, t0, ki, wi, fi, stats, sign_mode, path, nblocks):
    """Body of :func:`pulsed_update` and :func:`pulsed_update_serial` (``prange`` is ``range`` in the
    serial one)."""
    out_size, in_size = w.shape
    xbits, xsign, dbits, dsign, act, xc, dc, thx, thd = _sample_workspace(out_size, in_size, desired_bl)
    nw = xbits.shape[1]
    vec = closed_form and model == MODEL_LINEAR and path != PATH_SCALAR
    nb = nblocks if vec else 1  # per-block buffers of the vectorised rows (empty when unused; never read
    fb = np.empty((nb, in_size if vec else 0), np.uint8)  # before written, so not zeroed)
    zb = np.empty((nb, 2, in_size + 1 if vec else 0), np.float32)
    cap = min(COMPACT_CHUNK, out_size * in_size) if vec else 0
    bi = np.empty((nb, cap), np.int64)
    bj = np.empty((nb, cap), np.int64)
    bn = np.empty((nb, cap), np.int64)
    bup = np.empty((nb, cap), np.uint8)
    bw = np.empty((nb, cap), np.float32)
    bpar = np.empty((nb, N_DPR, cap), np.float32)
    bout = np.empty((nb, 2, cap), np.float64)
    bok = np.empty((nb, cap), np.bool_)
    part = np.zeros((nblocks, 2), np.int64)
    bs = (out_size + nblocks - 1) // nblocks
    for s in range(X.shape[0]):
        skey = sub_key(key, t0 + s)
        dkey = sub_key(skey, 2)
        bl, nact = _prepare_sample(X[s], D[s], lr, g, desired_bl, ublm, um, um_grad_scale, PULSE_STOCHASTIC,
                                   sub_key(skey, 1), xbits, xsign, dbits, dsign, act, xc, dc, thx, thd)
        if bl == 0:
            continue
        stats[ST_CYCLES] += 1
        stats[ST_SLOTS] += bl
        if nact == 0:
            continue
        rp = PATH_SCALAR
        if vec:
            rp = PATH_COMPACT
            if nw == 1 and (path == PATH_DENSE or (path == PATH_AUTO and nact * DENSE_MIN_FRACTION >= in_size)):
                rp = PATH_DENSE
        for b in prange(nblocks):
            r0 = b * bs
            r1 = min(out_size, r0 + bs)
            k = int64(b) if vec else int64(0)
            t, tu = _rows_stochastic(r0, r1, w, w_app, dp, dpr, cnt, xbits, xsign, act, nact, dbits, dsign,
                                     model, noise_mode, sigma, wn_std, tp, closed_form, dkey, ki, wi, fi,
                                     sign_mode, rp, fb[k], zb[k], bi[k], bj[k], bn[k], bup[k], bw[k], bpar[k],
                                     bout[k], bok[k])
            part[b, 0] = t
            part[b, 1] = tu
        tot = int64(0)
        tot_up = int64(0)
        for b in range(nblocks):
            tot += part[b, 0]
            tot_up += part[b, 1]
        stats[ST_PULSES] += tot
        stats[ST_UP] += tot_up
        stats[ST_DOWN] += tot - tot_up


@njit(cache=True, parallel=True, error_model="numpy")
def pulsed_update(w, w_app, dp, dpr, cnt, X, D, lr, g, desired_bl, ublm, um, um_grad_scale, ptype,
                  model, noise_mode, sigma, wn_std, tp, closed_form, key, t0, ki, wi, fi, stats, sign_mode,
                  path, nblocks):
    """Apply the samples of ``X`` (batch, in) and ``D`` (batch, out) one after the other.

    ``w`` (out, in) float32 hidden weights, updated in place; ``w_app`` apparent weights (the same array
    when there is no write noise); ``dp`` (out, in, N_DP) device parameters and ``dpr`` their row-planar
    copy (:func:`row_planar`; any array for models outside the linear family); ``cnt`` (2, out, in) int64
    up/down pulse counters; sample ``s`` uses random stream ``sub_key(key, t0 + s)``; ``stats`` (5,) int64
    accumulates pulses, pulse cycles, slots, up and down pulses. Within a sample the rows are split into
    ``nblocks`` blocks run in parallel (``nblocks=1``: one thread). Results do not depend on ``nblocks``
    or the thread count: random numbers depend only on (key, sample, device). ``sign_mode`` 0 applies every
    pulse; +1 only the up (potentiation) pulses; -1 only the down pulses, applied as *up* pulses (the minus
    device of a one-sided pair, ``w = w_plus - w_minus``: both devices only potentiate). ``ptype`` is
    ``PULSE_STOCHASTIC`` here; the deterministic types go through :func:`pulsed_update_counts` (a separate
    kernel so that each compiles only what it runs).

    ``path`` (PATH_AUTO in use; the others for tests and benchmarks, all give the same bits): the linear
    family with the closed form runs vectorised, over every column of a row (PATH_DENSE, for trains of one
    64-bit word and at least 1/DENSE_MIN_FRACTION of the columns firing; forced, it still needs one word) or over
    the compacted devices that receive pulses (PATH_COMPACT); PATH_SCALAR and the other models go device by device.

    Callers with one thread use :func:`pulsed_update_serial` (the same code without the parallel
    launch, which costs ~10 us per call: it dominates small tiles and one-column transfers).
    """
    _update_samples(w, w_app, dp, dpr, cnt, X, D, lr, g, desired_bl, ublm, um, um_grad_scale, model, noise_mode,
                    sigma, wn_std, tp, closed_form, key, t0, ki, wi, fi, stats, sign_mode, path, nblocks)


@njit(cache=True, error_model="numpy")
def pulsed_update_serial(w, w_app, dp, dpr, cnt, X, D, lr, g, desired_bl, ublm, um, um_grad_scale, ptype,
                         model, noise_mode, sigma, wn_std, tp, closed_form, key, t0, ki, wi, fi, stats, sign_mode,
                         path):
    """:func:`pulsed_update` on the calling thread only (one row block); same arguments but ``nblocks``,
    same results."""
    _update_samples(w, w_app, dp, dpr, cnt, X, D, lr, g, desired_bl, ublm, um, um_grad_scale, model, noise_mode,
                    sigma, wn_std, tp, closed_form, key, t0, ki, wi, fi, stats, sign_mode, path, 1)


@njit(cache=True, error_model="numpy")
def pulsed_update_counts(w, w_app, dp, cnt, X, D, lr, g, desired_bl, ublm, um, um_grad_scale, ptype,
                         model, noise_mode, sigma, wn_std, tp, closed_form, key, t0, ki, wi, fi, stats,
                         sign_mode):
    """As :func:`pulsed_update` for the deterministic pulse types (``PULSE_MEAN_COUNT``: aihwkit MeanCount,
    ``PULSE_DETERMINISTIC``: deterministic implicit), device by device. Single-threaded: these exist to
    reproduce aihwkit's deterministic cases and to fix pulse counts in tests, not for speed."""
    out_size, in_size = w.shape
    row0 = out_size - out_size  # a runtime, not literal, 0 (a literal makes numba specialise the worker)
    xbits, xsign, dbits, dsign, act, xc, dc, thx, thd = _sample_workspace(out_size, in_size, desired_bl)
    for s in range(X.shape[0]):
        skey = sub_key(key, t0 + s)
        dkey = sub_key(skey, 2)
        bl, nact = _prepare_sample(X[s], D[s], lr, g, desired_bl, ublm, um, um_grad_scale, ptype,
                                   sub_key(skey, 1), xbits, xsign, dbits, dsign, act, xc, dc, thx, thd)
        if bl == 0:
            continue
        stats[ST_CYCLES] += 1
        stats[ST_SLOTS] += bl
        if nact == 0:
            continue
        tot, tot_up = _rows_counts(row0, out_size, w, w_app, dp, cnt, xc, dc, bl, ptype, model, noise_mode,
                                   sigma, wn_std, tp, closed_form, dkey, ki, wi, fi, sign_mode)
        stats[ST_PULSES] += tot
        stats[ST_UP] += tot_up
        stats[ST_DOWN] += tot - tot_up


# --------------------------------------------------------------------------------------------------------
# pulse-free update types
@njit(cache=True, error_model="numpy")
def expected_update(w, dp, X, D, lr, g, model, tp):
    """``expected`` pulse type: each sample's expected change ``-lr d_i x_j`` through the device response.

    One deterministic step per device and sample: ``dW = (|lr d_i x_j| / g) * (mean step of one pulse at
    w)``, signed, then clipped to the bounds; it is the limit of the stochastic scheme for small updates
    (no pulse-count quantisation, no saturation, no noise).
    """
    out_size, in_size = w.shape
    for s in range(X.shape[0]):
        for i in range(out_size):
            di = float64(D[s, i])
            if di == 0.0:
                continue
            for j in range(in_size):
                delta = -lr * di * float64(X[s, j])
                if delta == 0.0:
                    continue
                up = delta > 0.0
                wv = float64(w[i, j])
                lo = float64(dp[i, j, LO])
                hi = float64(dp[i, j, HI])
                ref = float64(dp[i, j, REF])
                # one pulse without noise, then scale the change by the expected number of pulses
                wp = one_pulse(wv, up, float64(dp[i, j, SU]), float64(dp[i, j, SD]), float64(dp[i, j, LU]),
                               float64(dp[i, j, LD]), ref, lo, hi, model, NOISE_MULT, 0.0, tp,
                               0.5 if model == MODEL_TABLE else 0.0)
                wn = wv + (wp - wv) * (abs(delta) / g)
                w[i, j] = _clip(wn + ref, lo, hi) - ref


@njit(cache=True, error_model="numpy")
def float_update(w, dp, X, D, lr, clip):
    """``none`` (``clip`` False) and ``none_with_device`` (``clip`` True): exact ``W -= lr sum_s d_s x_s^T``."""
    out_size, in_size = w.shape
    for s in range(X.shape[0]):
        for i in range(out_size):
            di = float64(D[s, i])
            if di == 0.0:
                continue
            for j in range(in_size):
                wn = float64(w[i, j]) - lr * di * float64(X[s, j])
                if clip:
                    ref = float64(dp[i, j, REF])
                    wn = _clip(wn + ref, float64(dp[i, j, LO]), float64(dp[i, j, HI])) - ref
                w[i, j] = wn
