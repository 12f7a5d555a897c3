"""Pure-NumPy reference twins of the Numba kernels (readable, slow; used by the tests).

Each function here has the same name and meaning as its kernel. Where the kernel uses the counter-based
random streams of :mod:`.rng`, the twin draws from a :class:`numpy.random.Generator`, so the two agree
exactly when noise is off (or when the twin is handed the kernel's pulse trains) and in distribution
otherwise. The update twin simulates every pulse one by one (no closed form).
"""
from __future__ import annotations

import math

import numpy as np

from . import update as K


def bl_ab(x_amax, d_amax, lr, g, desired_bl, ublm, um, um_grad_scale):
    """Twin of :func:`kernels.update.bl_ab` (float32 arithmetic in aihwkit's order)."""
    f = np.float32
    lr, g = f(lr), f(g)
    if lr <= 0:
        return 0, 0.0, 0.0
    bl = desired_bl
    a = b = f(np.sqrt(f(lr / f(g * f(bl)))))
    if ublm or um:
        if x_amax == 0.0 or d_amax == 0.0:
            return 0, 1.0, 1.0
        xv, dv = f(x_amax), f(f(um_grad_scale) * f(d_amax))
        k = f(f(f(lr * xv) * dv) / g)
        if ublm:
            bl = max(1, min(int(math.ceil(k)), desired_bl))
            a = b = f(np.sqrt(f(lr / f(g * f(bl)))))
        if um:
            if k > f(desired_bl):
                dv = f(dv * f(f(desired_bl) / k))
            a = f(a * f(np.sqrt(f(xv / dv))))
            b = f(b * f(np.sqrt(f(dv / xv))))
    return bl, float(a), float(b)


def make_bits(v, scale, bl, rng):
    """Stochastic pulse trains: boolean array (lines, bl), line k fires with p = min(scale |v_k|, 1)."""
    p = np.minimum(np.abs(np.asarray(v, np.float64)) * scale, 1.0)
    return rng.random((p.size, bl)) < p[:, None]


def one_pulse(w, up, su, sd, lu, ld, ref, lo, hi, model, noise_mode, sigma, tp, z):
    """Vectorised twin of :func:`kernels.update.one_pulse` (all array arguments broadcast)."""
    w = np.asarray(w, np.float64)
    up = np.asarray(up, bool)
    z = np.asarray(z, np.float64)
    if model == K.MODEL_LINEAR:
        wr = w + ref
        step = np.where(up, su + lu * wr, -(sd + ld * wr))
        if noise_mode == K.NOISE_MULT:
            wr = wr + step * (1.0 + sigma * z)
        else:
            wr = wr + step + np.where(up, su, -sd) * sigma * z
        return np.clip(wr, lo, hi) - ref
    if model == K.MODEL_EXP:
        bdiff = hi - lo
        zz = 2.0 * w / np.where(bdiff > 0, bdiff, 1.0) * tp[0] + tp[1]
        y_up = np.maximum(1.0 - tp[2] * np.exp(tp[4] * zz), 0.0)
        y_dn = np.maximum(1.0 - tp[3] * np.exp(-tp[5] * zz), 0.0)
        dw = np.where(up, y_up * su, -y_dn * sd)
        if noise_mode == K.NOISE_COMPLEX:
            wn = w + dw + sigma * (np.abs(dw) + tp[6] + tp[7] * np.abs(w)) * z
        else:
            wn = w + dw * (1.0 + sigma * z)
        return np.where(bdiff > 0, np.clip(wn, lo, hi), w)
    if model == K.MODEL_POW:
        rng_ = hi - lo
        safe = np.where(rng_ != 0, rng_, 1.0)
        wr = w + ref  # PowStepReference (PowStep: ref = 0)
        wn = np.where(
            up,
            wr + su * np.clip((hi - wr) / safe, 0, None) ** lu * (1.0 + sigma * z),
            wr - sd * np.clip((wr - lo) / safe, 0, None) ** ld * (1.0 + sigma * z),
        )
        return np.where(rng_ != 0, np.clip(wn, lo, hi) - ref, w)
    if model == K.MODEL_PIECEWISE:
        n = int(tp[0])
        upt = np.asarray(tp[1:1 + n])
        dnt = np.asarray(tp[1 + n:1 + 2 * n])
        ns = n - 1
        if ns <= 0:
            f = np.where(up, upt[0], dnt[0])
        else:
            ws = np.maximum((w - lo) / (hi - lo) * ns, 0.0)
            idx = np.minimum(np.floor(ws).astype(np.int64), ns - 1)
            t = np.minimum(ws - idx, 1.0)
            f = np.where(up, (1 - t) * upt[idx] + t * upt[idx + 1], (1 - t) * dnt[idx] + t * dnt[idx + 1])
        wn = np.where(up, w + su * f * (1.0 + sigma * z), w - sd * f * (1.0 + sigma * z))
        return np.clip(wn, lo, hi)
    if model == K.MODEL_TABLE:
        # z is the CDF level u in [0, 1); tp: n_g, n_cdf, g_lo, g_hi, cdf, up table, down table (rows = CDF)
        ng, nc = int(tp[0]), int(tp[1])
        glo, ghi = tp[2], tp[3]
        cdf = np.asarray(tp[4:4 + nc])
        upt = np.asarray(tp[4 + nc:4 + nc + nc * ng]).reshape(nc, ng)
        dnt = np.asarray(tp[4 + nc + nc * ng:4 + nc + 2 * nc * ng]).reshape(nc, ng)
        jb = np.clip(np.floor((w - glo) / (ghi - glo) * (ng - 1) + 0.5).astype(np.int64), 0, ng - 1)
        u = np.broadcast_to(z, w.shape)
        dg_up = np.array([np.interp(uu, cdf, upt[:, j]) for uu, j in zip(u.ravel(), np.broadcast_to(jb, w.shape).ravel())])
        dg_dn = np.array([np.interp(uu, cdf, dnt[:, j]) for uu, j in zip(u.ravel(), np.broadcast_to(jb, w.shape).ravel())])
        dg = np.where(up.ravel() if up.shape == w.shape else np.broadcast_to(up, w.shape).ravel(), dg_up * np.broadcast_to(su, w.shape).ravel(), dg_dn * np.broadcast_to(sd, w.shape).ravel())
        return np.clip(w + dg.reshape(w.shape), lo, hi)
    raise NotImplementedError(f"reference one_pulse has no model {model}")


def pulsed_update(w, w_app, dp, cnt, X, D, lr, g, desired_bl, ublm, um, um_grad_scale, ptype,
                  model, noise_mode, sigma, wn_std, tp, rng, trains=None, sign_mode=0):
    """Pulse-by-pulse twin of :func:`kernels.update.pulsed_update` (stochastic and mean-count types).

    ``trains``, if given, is a list with one ``(x_bits, d_bits)`` pair of boolean arrays per sample (the
    kernel's own pulse trains, see ``crossbar_sim.tiles.analog.sample_trains``); otherwise trains are drawn from
    ``rng``. Cycle-to-cycle and write noise are drawn from ``rng``. ``sign_mode`` as the kernel's (+1: only
    up pulses; -1: only down pulses, applied as up pulses). Returns the stats vector.
    """
    stats = np.zeros(K.N_ST, np.int64)
    su, sd, lu, ld, ref, lo, hi = (dp[..., k].astype(np.float64) for k in range(7))
    for s in range(X.shape[0]):
        x = X[s].astype(np.float64)
        d = D[s].astype(np.float64)
        bl, A, B = bl_ab(np.abs(x).max(), np.abs(d).max(), lr, g, desired_bl, ublm, um, um_grad_scale)
        if bl == 0:
            continue
        stats[K.ST_CYCLES] += 1
        stats[K.ST_SLOTS] += bl
        if ptype == K.PULSE_STOCHASTIC:
            if trains is not None:
                xb, db = trains[s]
            else:
                xb = make_bits(x, B, bl, rng)
                db = make_bits(d, A, bl, rng)
            n = (db[:, None, :] & xb[None, :, :]).sum(-1)
            sgn = np.sign(d)[:, None] * np.sign(x)[None, :]
        else:
            xc = _count_line(x, B, bl, ptype)
            dc = _count_line(d, A, bl, ptype)
            if ptype == K.PULSE_MEAN_COUNT:
                c = (dc / np.float32(bl)).astype(np.float32)[:, None] * xc[None, :]
            else:
                c = (dc * np.float32(bl)).astype(np.float32)[:, None] * xc[None, :]
            c = c.astype(np.float32)
            n = np.abs(np.rint(c)).astype(np.int64)
            sgn = np.sign(c)
        up = sgn < 0
        if sign_mode != 0:
            n = np.where(up == (sign_mode > 0), n, 0)
            up = np.ones_like(up)
        wv = w.astype(np.float64)
        pulsed = n > 0
        for k in range(int(n.max(initial=0))):
            m = n > k
            z = rng.standard_normal(int(m.sum())) if sigma > 0 else np.zeros(int(m.sum()))
            wv[m] = one_pulse(wv[m], up[m], su[m], sd[m], lu[m], ld[m], ref[m], lo[m], hi[m], model,
                              noise_mode, sigma, tp, z)
        w[...] = wv.astype(np.float32)
        if wn_std > 0 and w_app is not w:
            w_app[pulsed] = (wv[pulsed] + wn_std * rng.standard_normal(int(pulsed.sum()))).astype(np.float32)
        cnt[..., 0] += np.where(up & pulsed, n, 0)
        cnt[..., 1] += np.where(~up & pulsed, n, 0)
        tot = int(n.sum())
        tot_up = int(n[up].sum())
        stats[K.ST_PULSES] += tot
        stats[K.ST_UP] += tot_up
        stats[K.ST_DOWN] += tot - tot_up
    return stats


def _count_line(v, scale, bl, ptype):
    """Twin of the mean-count / deterministic-implicit line counts (float32 arithmetic, as aihwkit)."""
    v = v.astype(np.float32)
    pp = (np.abs(v) * np.float32(scale)).astype(np.float32)
    if ptype == K.PULSE_MEAN_COUNT:
        nt = np.minimum(np.rint((np.float32(bl) * pp).astype(np.float32)), bl)
        out = np.where(v >= 0, nt, -nt)
    else:
        pp = np.minimum(pp, np.float32(1.0))
        out = np.where(v >= 0, pp, -pp)
    return np.where(pp == 0, 0.0, out).astype(np.float32)


def expected_update(w, dp, X, D, lr, g, model, tp):
    """Twin of :func:`kernels.update.expected_update`."""
    su, sd, lu, ld, ref, lo, hi = (dp[..., k].astype(np.float64) for k in range(7))
    for s in range(X.shape[0]):
        delta = -lr * np.outer(D[s].astype(np.float64), X[s].astype(np.float64))
        wv = w.astype(np.float64)
        up = delta > 0
        wp = one_pulse(wv, up, su, sd, lu, ld, ref, lo, hi, model, K.NOISE_MULT, 0.0, tp, 0.0)
        wn = wv + (wp - wv) * (np.abs(delta) / g)
        wn = np.clip(wn + ref, lo, hi) - ref
        w[...] = np.where(delta != 0, wn, wv).astype(np.float32)


def float_update(w, dp, X, D, lr, clip):
    """Twin of :func:`kernels.update.float_update`."""
    ref, lo, hi = (dp[..., k].astype(np.float64) for k in (K.REF, K.LO, K.HI))
    wv = w.astype(np.float64)
    for s in range(X.shape[0]):
        wv = wv - lr * np.outer(D[s].astype(np.float64), X[s].astype(np.float64))
        if clip:
            wv = np.clip(wv + ref, lo, hi) - ref
        wv = wv.astype(np.float32).astype(np.float64)
    w[...] = wv.astype(np.float32)


# ------------------------------------------------------------------------------------------------------------
# twins of kernels/nn.py (convolution layers)
def im2col(x, k, stride, padding, out):
    """Twin of :func:`kernels.nn.im2col` (sliding windows)."""
    from numpy.lib.stride_tricks import sliding_window_view

    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    B, C, H, W = x.shape
    win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]  # B, C, Ho, Wo, k, k
    Ho, Wo = win.shape[2], win.shape[3]
    out[...] = win.transpose(0, 2, 3, 1, 4, 5).reshape(B * Ho * Wo, C * k * k)


def col2im(cols, k, stride, padding, out):
    """Twin of :func:`kernels.nn.col2im`."""
    B, C, H, W = out.shape
    Hp, Wp = H + 2 * padding, W + 2 * padding
    Ho = (Hp - k) // stride + 1
    Wo = (Wp - k) // stride + 1
    c = cols.reshape(B, Ho, Wo, C, k, k)
    acc = np.zeros((B, C, Hp, Wp), cols.dtype)
    for ky in range(k):
        for kx in range(k):
            acc[:, :, ky:ky + stride * Ho:stride, kx:kx + stride * Wo:stride] += c[:, :, :, :, ky, kx].transpose(0, 3, 1, 2)
    out[...] = acc[:, :, padding:padding + H, padding:padding + W]


def maxpool2d(x, k, y, idx):
    """Twin of :func:`kernels.nn.maxpool2d`."""
    B, C, H, W = x.shape
    r = x.reshape(B, C, H // k, k, W // k, k).transpose(0, 1, 2, 4, 3, 5).reshape(B, C, H // k, W // k, k * k)
    idx[...] = np.argmax(r, axis=-1)
    y[...] = np.take_along_axis(r, idx[..., None], axis=-1)[..., 0]


def maxpool2d_backward(dy, idx, k, out):
    """Twin of :func:`kernels.nn.maxpool2d_backward`."""
    B, C, H, W = out.shape
    g = np.zeros((B, C, H // k, W // k, k * k), dy.dtype)
    np.put_along_axis(g, idx[..., None], dy[..., None], axis=-1)
    out[...] = g.reshape(B, C, H // k, W // k, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(B, C, H, W)


def rows_to_images(rows, out):
    """Twin of :func:`kernels.nn.rows_to_images`."""
    B, O, Ho, Wo = out.shape
    out[...] = rows.reshape(B, Ho, Wo, O).transpose(0, 3, 1, 2)


def images_to_rows(img, out):
    """Twin of :func:`kernels.nn.images_to_rows`."""
    B, O, Ho, Wo = img.shape
    out[...] = img.transpose(0, 2, 3, 1).reshape(B * Ho * Wo, O)
