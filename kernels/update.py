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

Closed form (``closed_form=True``) for ``n`` same-sign pulses on the linear family: with ``e = w + ref - w*``
(``w* = -s/l`` the fixed point of the step), one pulse maps ``e -> a e + s sigma z`` (additive, ``a = 1 + l``)
or ``e -> e (a + l sigma z)`` (multiplicative). Additive noise and constant steps (``l = 0``) give an exact
Gaussian after ``n`` pulses. Multiplicative noise gives ``e_n = e_0 a^n prod(1 + r z_k)`` with
``r = l sigma / a``; we draw it with the exact mean and variance and the exact leading skewness
``3 (n-1) |r| / sqrt(n)`` (Cornish-Fisher), and only when ``|r| sqrt(n) <= 0.01`` (skewness <= 0.03; the
neglected cumulants are O(r^2 n) <= 1e-4 relative). Whenever the 8-sigma envelope of the path could touch
a device bound (where sequential clipping matters), or the condition fails, or the device is not in the
linear family, pulses are simulated one by one. ``tests/test_update_kernel.py`` compares both paths.

Random numbers are counter based (:mod:`.rng`): sample ``t`` of a tile with key ``key`` uses stream
``sub_key(key, t)``; lines and devices use independent sub-streams, device ``(i, j)`` starts at word
``(i * in_size + j) << 20``. Results do not depend on the number of threads.
"""
from __future__ import annotations

import math

import numpy as np
from numba import float32, float64, int64, njit, prange, uint64

from .mvm import rint
from .rng import draw, normal, popcount64, sub_key

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
# contiguous, so the update streams one 48-byte record per device instead of 11 planes that alias in cache)
SU, SD, LU, LD, REF, LO, HI = 0, 1, 2, 3, 4, 5, 6
# derived rows of the linear family, precomputed at construction (see ``linear_derived``): fixed points
# ``w* = -s/l`` of an up / down pulse and the relative noise ``r = |l| sigma / (1 + l)`` of one pulse
WSU, WSD, RU, RD = 7, 8, 9, 10
N_DP = 12  # padded to 48 bytes per device; row 11 unused

# stats vector written by the drivers (int64)
ST_PULSES, ST_CYCLES, ST_SLOTS, ST_UP, ST_DOWN = 0, 1, 2, 3, 4
N_ST = 5

MAX_BL = 4096  # bit trains use words line * 4096 + k/2 of the line stream
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


@njit(inline="always", error_model="numpy")
def _absmax(v):
    m = 0.0
    for k in range(v.shape[0]):
        a = abs(float64(v[k]))
        if a > m:
            m = a
    return m


@njit(cache=True, error_model="numpy")
def make_bits(v, scale, bl, key, line0, bits, sign):
    """Bit-packed stochastic pulse trains of a vector of lines.

    Line ``k`` (global line number ``line0 + k``) fires in each of the ``bl`` slots with probability
    ``min(scale |v_k|, 1)``. Writes ``bits[k, :]`` and ``sign[k]`` (+1/-1, 0 when the line never fires);
    returns the number of lines that fire at least once.
    """
    nw = bits.shape[1]
    active = 0
    for k in range(v.shape[0]):
        for wd in range(nw):
            bits[k, wd] = uint64(0)
        val = float64(v[k])
        p = abs(val) * scale
        sign[k] = 0
        if p <= 0.0:
            continue
        any_bit = uint64(0)
        if p >= 1.0:
            for s in range(bl):
                bits[k, s >> 6] |= uint64(1) << uint64(s & 63)
            any_bit = uint64(1)
        else:
            thr = p * 4294967296.0
            base = (line0 + k) * MAX_BL
            for s in range(0, bl, 2):
                word = draw(key, base + (s >> 1))
                if float64(word & uint64(0xFFFFFFFF)) < thr:
                    bits[k, s >> 6] |= uint64(1) << uint64(s & 63)
                    any_bit = uint64(1)
                if s + 1 < bl and float64(word >> uint64(32)) < thr:
                    bits[k, (s + 1) >> 6] |= uint64(1) << uint64((s + 1) & 63)
                    any_bit = uint64(1)
        if any_bit != uint64(0):
            sign[k] = 1 if val > 0 else -1
            active += 1
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
        rng_ = hi - lo
        if rng_ == 0.0:
            return w
        if up:
            w += su * ((hi - w) / rng_) ** lu * (1.0 + sigma * z)
        else:
            w -= sd * ((w - lo) / rng_) ** ld * (1.0 + sigma * z)
        return _clip(w, lo, hi)
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
    """Fill rows WSU, WSD, RU, RD of ``dp`` (planar float64 work array, (N_DP, out, in)), linear family."""
    for row_s, row_l, row_w, row_r, sgn in ((SU, LU, WSU, RU, 1.0), (SD, LD, WSD, RD, -1.0)):
        s_ = sgn * dp[row_s]
        l_ = sgn * dp[row_l]
        nz = l_ != 0.0
        dp[row_w] = np.where(nz, -s_ / np.where(nz, l_, 1.0), 0.0)
        a = 1.0 + l_
        dp[row_r] = np.where(a > 0.0, np.abs(l_) * sigma / np.where(a > 0.0, a, 1.0), np.inf)


@njit(forceinline=True, error_model="numpy")
def _closed_form_linear(dp, i, j, w, n, up, noise_mode, sigma, z, sq):
    """``n`` same-sign pulses on a linear-family device at once. Returns ``(ok, w_new)``.

    ``ok`` is False when the closed form does not apply (the caller then simulates pulse by pulse).
    With ``e = w + ref - w*`` one pulse maps ``e -> a e + s sigma z`` (additive noise, ``a = 1 + l``) or
    ``e -> e (a + l sigma z)`` (multiplicative). Multiplicative noise: mean ``e0 a^n``, relative std
    ``r sqrt(n) sqrt(1 + (n-1) r^2 / 2)`` and skewness ``3 (n-1) r / sqrt(n)`` of ``prod(1 + r z_k)``; the
    two square roots of numbers within 1e-4 of 1 use their second-order series (relative error < 1e-9).
    """
    ref = float64(dp[i, j, REF])
    lo = float64(dp[i, j, LO])
    hi = float64(dp[i, j, HI])
    if up:
        s = float64(dp[i, j, SU])
        l = float64(dp[i, j, LU])
    else:
        s = -float64(dp[i, j, SD])
        l = -float64(dp[i, j, LD])
    wr0 = w + ref
    step0 = abs(s + l * wr0)
    rn = sq[n]
    if l == 0.0:
        mean = wr0 + n * s
        sdv = abs(s) * sigma * rn
        wn = mean + sdv * z
    else:
        a = 1.0 + l
        if a <= 0.0:
            return False, w
        wstar = float64(dp[i, j, WSU]) if up else float64(dp[i, j, WSD])
        e0 = wr0 - wstar
        # a^n by squaring; branch-free for the usual n < 32 (the bits of n are unpredictable)
        an = 1.0
        base = a
        for b in range(5):
            an *= base if (n >> b) & 1 else 1.0
            base *= base
        m = n >> 5
        while m > 0:
            if m & 1:
                an *= base
            base *= base
            m >>= 1
        ean = e0 * an
        mean = wstar + ean
        if noise_mode == NOISE_MULT:
            r = float64(dp[i, j, RU]) if up else float64(dp[i, j, RD])
            rs = r * rn
            if rs > _CF_MAX_RSQRTN:
                return False, w
            std_rel = rs * (1.0 + 0.25 * (n - 1) * r * r)
            gam = 3.0 * (n - 1) * rs / n
            y = (z + gam * (1.0 / 6.0) * (z * z - 1.0)) * (1.0 - gam * gam * (1.0 / 36.0))
            sdv = abs(ean) * std_rel
            wn = mean + ean * std_rel * y
        else:
            if abs(l) > 1e-12:
                s2 = (1.0 - an * an) / (1.0 - a * a)
            else:
                s2 = float64(n)
            sdv = abs(s) * sigma * math.sqrt(s2)
            wn = mean + sdv * z
    env = _ENVELOPE * sdv + step0
    if min(wr0, mean) - env <= lo or max(wr0, mean) + env >= hi:
        return False, w
    return True, wn - ref


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


@njit(forceinline=True, error_model="numpy")
def _apply_device(dp, i, j, w, n, up, model, noise_mode, sigma, tp, closed_form, key, idx, ki, wi, fi, sq):
    """Apply ``n`` same-sign pulses to device ``(i, j)`` at hidden weight ``w``; returns (w_new, next idx)."""
    if closed_form and model == MODEL_LINEAR and n > 1:
        z = 0.0
        if sigma > 0.0:
            z, idx = normal(key, idx, ki, wi, fi)
        ok, wn = _closed_form_linear(dp, i, j, w, n, up, noise_mode, sigma, z, sq)
        if ok:
            return wn, idx
    return _pulse_loop(w, n, up, float64(dp[i, j, SU]), float64(dp[i, j, SD]), float64(dp[i, j, LU]),
                       float64(dp[i, j, LD]), float64(dp[i, j, REF]), float64(dp[i, j, LO]),
                       float64(dp[i, j, HI]), model, noise_mode, sigma, tp, key, idx, ki, wi, fi)


# --------------------------------------------------------------------------------------------------------
# rows workers
@njit(forceinline=True, error_model="numpy")
def _pulse_device(w, w_app, dp, cnt, i, j, n, up, model, noise_mode, sigma, wn_std, tp, closed_form, dkey,
                  ki, wi, fi, sq):
    """``n`` same-sign pulses on device ``(i, j)``: new hidden weight, write noise, pulse counters.

    The device's random words start at ``(i * in_size + j) << 20`` of the sample's device stream.
    """
    idx = int64((i * w.shape[1] + j) << 20)
    wv, idx = _apply_device(dp, i, j, float64(w[i, j]), n, up, model, noise_mode, sigma, tp, closed_form,
                            dkey, idx, ki, wi, fi, sq)
    w[i, j] = wv
    if wn_std > 0.0:
        zz, idx = normal(dkey, idx, ki, wi, fi)
        w_app[i, j] = wv + wn_std * zz
    cnt[i, j, 0 if up else 1] += n


@njit(forceinline=True, error_model="numpy")
def _rows_stochastic(r0, r1, w, w_app, dp, cnt, xbits, xsign, act, nact, dbits, dsign,
                     model, noise_mode, sigma, wn_std, tp, closed_form, dkey, ki, wi, fi, sq, sign_mode):
    """Apply the coincidences of rows ``r0..r1-1``. Returns (pulses, up pulses)."""
    in_size = w.shape[1]
    nw = xbits.shape[1]
    tot = int64(0)
    tot_up = int64(0)
    for i in range(r0, r1):
        ds = dsign[i]
        if ds == 0:
            continue
        for jj in range(nact):
            j = act[jj]
            if nw == 1:
                n = int64(popcount64(dbits[i, 0] & xbits[j, 0]))
            else:
                n = int64(0)
                for wd in range(nw):
                    n += int64(popcount64(dbits[i, wd] & xbits[j, wd]))
            if n == 0:
                continue
            up = ds * xsign[j] < 0
            if sign_mode != 0:
                if up != (sign_mode > 0):
                    continue
                up = True
            _pulse_device(w, w_app, dp, cnt, i, j, n, up, model, noise_mode, sigma, wn_std, tp, closed_form,
                          dkey, ki, wi, fi, sq)
            tot += n
            if up:
                tot_up += n
    return tot, tot_up


@njit(forceinline=True, error_model="numpy")
def _rows_counts(r0, r1, w, w_app, dp, cnt, xc, dc, bl, ptype,
                 model, noise_mode, sigma, wn_std, tp, closed_form, dkey, ki, wi, fi, sq, sign_mode):
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
            n = int64(abs(rint(float64(c))))  # rintf: half to even, as aihwkit
            if n == 0:
                continue
            up = c < 0
            if sign_mode != 0:
                if up != (sign_mode > 0):
                    continue
                up = True
            _pulse_device(w, w_app, dp, cnt, i, j, n, up, model, noise_mode, sigma, wn_std, tp, closed_form,
                          dkey, ki, wi, fi, sq)
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
@njit(cache=True, error_model="numpy")
def _prepare_sample(x, d, lr, g, desired_bl, ublm, um, um_grad_scale, ptype, lkey,
                    xbits, xsign, dbits, dsign, act, xc, dc):
    """Pulse trains (stochastic) or line counts (deterministic types) of one sample.

    Returns ``(bl, nact)``: ``bl == 0`` or ``nact == 0`` means the sample applies no pulse; for the
    stochastic type ``act[:nact]`` lists the input lines that fire.
    """
    in_size = x.shape[0]
    bl, A, B = bl_ab(_absmax(x), _absmax(d), lr, g, desired_bl, ublm, um, um_grad_scale)
    if bl == 0:
        return 0, 0
    if ptype == PULSE_STOCHASTIC:
        nx = make_bits(x, B, bl, lkey, 0, xbits, xsign)
        if nx == 0:
            return bl, 0
        nd = make_bits(d, A, bl, lkey, in_size, dbits, dsign)
        if nd == 0:
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
    columns, and the per-sample scaled copies of x and d."""
    nw = (desired_bl + 63) // 64
    return (np.zeros((in_size, nw), np.uint64), np.zeros(in_size, np.int8),
            np.zeros((out_size, nw), np.uint64), np.zeros(out_size, np.int8),
            np.zeros(in_size, np.int64), np.zeros(in_size, np.float32), np.zeros(out_size, np.float32))


@njit(cache=True, parallel=True, error_model="numpy")
def pulsed_update(w, w_app, dp, cnt, X, D, lr, g, desired_bl, ublm, um, um_grad_scale, ptype,
                  model, noise_mode, sigma, wn_std, tp, closed_form, key, t0, ki, wi, fi, sq, stats, sign_mode,
                  nblocks):
    """Apply the samples of ``X`` (batch, in) and ``D`` (batch, out) one after the other.

    ``w`` (out, in) float32 hidden weights, updated in place; ``w_app`` apparent weights (the same array
    when there is no write noise); ``dp`` (out, in, N_DP) device parameters; ``cnt`` (out, in, 2) int64
    up/down pulse counters; sample ``s`` uses random stream ``sub_key(key, t0 + s)``; ``stats`` (5,) int64
    accumulates pulses, pulse cycles, slots, up and down pulses. Within a sample the rows are split into
    ``nblocks`` blocks run in parallel (``nblocks=1``: one thread). Results do not depend on ``nblocks``
    or the thread count: random numbers depend only on (key, sample, device). ``sign_mode`` 0 applies every
    pulse; +1 only the up (potentiation) pulses; -1 only the down pulses, applied as *up* pulses (the minus
    device of a one-sided pair, ``w = w_plus - w_minus``: both devices only potentiate). ``ptype`` is
    ``PULSE_STOCHASTIC`` here; the deterministic types go through :func:`pulsed_update_counts` (a separate
    kernel so that each compiles only what it runs).

    The kernel is compiled with ``parallel=True`` even when run on one block: numba then compiles the
    row loop with its arguments marked ``noalias``, which measured 2-4x faster than the same loop in a
    plain ``@njit`` function.
    """
    out_size, in_size = w.shape
    xbits, xsign, dbits, dsign, act, xc, dc = _sample_workspace(out_size, in_size, desired_bl)
    part = np.zeros((nblocks, 2), np.int64)
    bs = (out_size + nblocks - 1) // nblocks
    for s in range(X.shape[0]):
        skey = sub_key(key, t0 + s)
        dkey = sub_key(skey, 2)
        bl, nact = _prepare_sample(X[s], D[s], lr, g, desired_bl, ublm, um, um_grad_scale, PULSE_STOCHASTIC,
                                   sub_key(skey, 1), xbits, xsign, dbits, dsign, act, xc, dc)
        if bl == 0:
            continue
        stats[ST_CYCLES] += 1
        stats[ST_SLOTS] += bl
        if nact == 0:
            continue
        for b in prange(nblocks):
            r0 = b * bs
            r1 = min(out_size, r0 + bs)
            t, tu = _rows_stochastic(r0, r1, w, w_app, dp, cnt, xbits, xsign, act, nact, dbits, dsign,
                                     model, noise_mode, sigma, wn_std, tp, closed_form, dkey, ki, wi, fi, sq,
                                     sign_mode)
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


@njit(cache=True, error_model="numpy")
def pulsed_update_counts(w, w_app, dp, cnt, X, D, lr, g, desired_bl, ublm, um, um_grad_scale, ptype,
                         model, noise_mode, sigma, wn_std, tp, closed_form, key, t0, ki, wi, fi, sq, stats,
                         sign_mode):
    """As :func:`pulsed_update` for the deterministic pulse types (``PULSE_MEAN_COUNT``: aihwkit MeanCount,
    ``PULSE_DETERMINISTIC``: deterministic implicit). Single-threaded: these exist to reproduce aihwkit's
    deterministic cases and to fix pulse counts in tests, not for speed."""
    out_size, in_size = w.shape
    row0 = out_size - out_size  # a runtime, not literal, 0 (a literal makes numba specialise the worker)
    xbits, xsign, dbits, dsign, act, xc, dc = _sample_workspace(out_size, in_size, desired_bl)
    for s in range(X.shape[0]):
        skey = sub_key(key, t0 + s)
        dkey = sub_key(skey, 2)
        bl, nact = _prepare_sample(X[s], D[s], lr, g, desired_bl, ublm, um, um_grad_scale, ptype,
                                   sub_key(skey, 1), xbits, xsign, dbits, dsign, act, xc, dc)
        if bl == 0:
            continue
        stats[ST_CYCLES] += 1
        stats[ST_SLOTS] += bl
        if nact == 0:
            continue
        tot, tot_up = _rows_counts(row0, out_size, w, w_app, dp, cnt, xc, dc, bl, ptype, model, noise_mode,
                                   sigma, wn_std, tp, closed_form, dkey, ki, wi, fi, sq, sign_mode)
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
