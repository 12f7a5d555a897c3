"""Fit a device model to a measured pulse-response curve (conductance vs pulse number, up then down).

Accepted files (``read_curve``; ``--format`` on the CLI, ``auto`` detects):

* ``two-column``: CSV, no header, two numeric columns of equal length: column 0 the reading after each of
  consecutive up (potentiating) pulses, column 1 after each of consecutive down pulses (aihwkit's
  ``examples/csv/gong_et_al.csv``).
* ``sequence``: CSV with a header naming ``pulse`` and ``G`` (or ``conductance``) and optionally ``direction``
  (``up``/``down`` or ``+1``/``-1``): one reading per pulse, pulse index strictly increasing; without a
  ``direction`` column the curve is split at its maximum (up, then down).
* ``ramps``: CSV with a header, one ramp per column (columns may end early: empty fields), all ramps of the
  file in one direction: ``FILE`` holds up ramps, ``--down FILE2`` down ramps (CrossSim's ``set.csv`` /
  ``reset.csv``; the read currents may stay in amperes, the fit normalises).

Method: readings are normalised linearly so that the 0.5 % and 99.5 % quantiles of all readings map to -1 and
+1; each segment (ramp) is simulated from its own fitted start value with the model's *mean* response
``w <- w + dw_up q_plus(w)`` (up) or ``w <- w - dw_down q_minus(w)`` (down), and the squared differences to
the readings are minimised by ``scipy.optimize.least_squares``. Uncertainties are the square roots of the
diagonal of ``s^2 (J^T J)^-1`` at the optimum (``s^2`` = residual variance). Hard bounds of the models
without intrinsic bounds (linear-step, exp-step, piecewise) are fixed at the normalised data range [-1, 1];
device-to-device and cycle-to-cycle spreads are not fitted (set to 0 in the written device).
"""
from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field

import numpy as np

from crossbar_sim.errors import ConfigError, FormatError

MODELS = ("softbounds", "linear-step", "exp-step", "pow-step", "piecewise")
MIN_POINTS = 10  # readings per direction


@dataclass
class Curve:
    """Measured segments: ``segments[k]`` readings after consecutive pulses of direction ``dirs[k]`` (+1/-1)."""

    segments: list
    dirs: list
    source: str = ""
    units_scale: tuple = (0.0, 1.0)  # (center, half range): u = (G - center) / half

    def normalised(self):
        return [(s - self.units_scale[0]) / self.units_scale[1] for s in self.segments]


def _floats(rows, path):
    out = []
    for r in rows:
        vals = []
        for v in r:
            v = v.strip()
            if v == "":
                vals.append(np.nan)
                continue
            try:
                vals.append(float(v))
            except ValueError:
                raise FormatError(f"{path}: non-numeric value {_short(v)}.") from None
        out.append(vals)
    return out


def _check_segment(seg, what, path):
    seg = np.asarray(seg, float)
    if np.any(~np.isfinite(seg)):
        raise FormatError(f"{path}: {what} holds NaN or inf readings; remove or fill them.")
    return seg


def _short(v) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def read_rows(path: str) -> list:
    """The non-empty rows of a CSV text file; :class:`FormatError` (one line) for an unreadable, binary or
    non-UTF-8 file."""
    try:
        with open(path, "rb") as fh:
            if b"\0" in fh.read(8192):  # text never holds NUL bytes (the usual test for a binary file)
                raise FormatError(f"{path}: not a CSV text file (it holds NUL bytes: binary data?); fit-device "
                                  f"reads comma-separated numbers.")
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except OSError as exc:
        raise FormatError(f"Cannot read {path!r}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not a CSV text file (byte {exc.start} is not UTF-8 text: binary data?); "
                          f"fit-device reads comma-separated numbers.") from None
    except csv.Error as exc:  # NUL bytes, a field beyond the csv module's size limit
        raise FormatError(f"{path}: not a CSV text file ({exc}); fit-device reads comma-separated numbers.") \
            from None


def read_curve(path: str, down: str | None = None, fmt: str = "auto") -> Curve:
    """Read a measured pulse-response file (formats in the module docstring)."""
    rows = read_rows(path)
    if not rows:
        raise FormatError(f"{path}: empty file.")
    header = [c.strip().lower() for c in rows[0]]
    has_header = any(_is_text(c) for c in header)
    if fmt == "auto":
        if not has_header:
            fmt = "two-column"
        elif "pulse" in header:
            fmt = "sequence"
        else:
            fmt = "ramps"
    if fmt == "two-column":
        data = _floats(rows[1:] if has_header else rows, path)
        if any(len(r) != 2 for r in data):
            raise FormatError(f"{path}: the two-column format needs exactly 2 columns (up response, down response) "
                              f"on every row.")
        arr = np.array(data, float)
        up = _check_segment(arr[:, 0], "the up column", path)
        dn = _check_segment(arr[:, 1], "the down column", path)
        curve = Curve([up, dn], [1, -1], path)
    elif fmt == "sequence":
        if "pulse" not in header:
            raise FormatError(f"{path}: the sequence format needs a 'pulse' column. Got columns {header}.")
        gcol = next((header.index(c) for c in ("g", "conductance") if c in header), None)
        if gcol is None:
            raise FormatError(f"{path}: the sequence format needs a 'G' (or 'conductance') column. Got {header}.")
        dcol = header.index("direction") if "direction" in header else None
        body = rows[1:]
        need = max(header.index("pulse"), gcol, -1 if dcol is None else dcol) + 1
        short = next((i for i, r in enumerate(body) if len(r) < need), None)
        if short is not None:
            raise FormatError(f"{path}: data row {short + 1} has {len(body[short])} field(s); the header names "
                              f"{len(header)} columns.")
        pulse = np.array([_num(r[header.index("pulse")], path) for r in body])
        g = _check_segment([_num(r[gcol], path) for r in body], "the conductance column", path)
        if np.any(np.diff(pulse) <= 0):
            raise FormatError(f"{path}: the pulse index must increase strictly from row to row.")
        if dcol is not None:
            d = np.array([_dir(r[dcol], path) for r in body])
        else:
            k = int(np.argmax(g))
            d = np.where(np.arange(g.size) <= k, 1, -1)
        segs, dirs = [], []
        start = 0
        for i in range(1, g.size + 1):
            if i == g.size or d[i] != d[start]:
                segs.append(g[start:i])
                dirs.append(int(d[start]))
                start = i
        curve = Curve(segs, dirs, path)
    elif fmt == "ramps":
        curve = Curve(*_ramps(rows, path, 1), path)
        if down is not None:
            rows2 = read_rows(down)
            if not rows2:
                raise FormatError(f"{down}: empty file.")
            s2, d2 = _ramps(rows2, down, -1)
            curve.segments += s2
            curve.dirs += d2
    else:
        raise ConfigError(f"Unknown curve format {fmt!r}; use auto, two-column, sequence or ramps.")
    if down is not None and fmt != "ramps":
        raise ConfigError("--down is only used with the ramps format (one file of up ramps, one of down ramps).")
    n_up = sum(s.size for s, d in zip(curve.segments, curve.dirs) if d > 0)
    n_dn = sum(s.size for s, d in zip(curve.segments, curve.dirs) if d < 0)
    if n_up < MIN_POINTS or n_dn < MIN_POINTS:
        raise FormatError(f"{path}: too few points to fit: {n_up} up and {n_dn} down readings; need at least "
                          f"{MIN_POINTS} of each (up and down).")
    allv = np.concatenate(curve.segments)
    lo, hi = np.quantile(allv, [0.005, 0.995])
    if not hi > lo:
        raise FormatError(f"{path}: the readings do not change; nothing to fit.")
    curve.units_scale = (0.5 * (lo + hi), 0.5 * (hi - lo))
    return curve


def _is_text(c):
    try:
        float(c)
        return False
    except ValueError:
        return c != ""


def _num(v, path):
    try:
        return float(v)
    except ValueError:
        raise FormatError(f"{path}: non-numeric value {_short(v)}.") from None


def _dir(v, path):
    v = v.strip().lower()
    if v in ("up", "+1", "1", "set", "+"):
        return 1
    if v in ("down", "-1", "reset", "-"):
        return -1
    raise FormatError(f"{path}: direction must be up/down or +1/-1. Got {v!r}.")


def _ramps(rows, path, direction):
    if not any(_is_text(c) for c in rows[0]):
        raise FormatError(f"{path}: the ramps format needs a header row (one name per ramp column).")
    data = _floats(rows[1:], path)
    ncol = len(rows[0])
    segs = []
    for c in range(ncol):
        col = np.array([r[c] if c < len(r) else np.nan for r in data], float)
        finite = np.isfinite(col)
        if not finite.any():
            continue
        last = np.nonzero(finite)[0][-1]
        col = _check_segment(col[:last + 1], f"ramp column {rows[0][c]!r} (NaN before its end)", path)
        segs.append(col)
    return segs, [direction] * len(segs)


# --------------------------------------------------------------------------------------------------------
# models of the mean response in normalised units
def _steps(model, p, w, nodes):
    """Mean up step and down step magnitude at ``w`` for parameter vector ``p``."""
    if model == "softbounds":
        dwu, dwd, bmax, bmin = p[:4]
        return dwu * (1 - w / bmax), dwd * (1 - w / bmin)
    if model == "linear-step":
        dwu, dwd, gu, gd = p[:4]
        return dwu * (1 - gu * w), dwd * (1 + gd * w)
    if model == "exp-step":
        dwu, dwd, au, gu, ad, gd = p[:6]
        return dwu * np.maximum(1 - au * np.exp(gu * w), 0), dwd * np.maximum(1 - ad * np.exp(-gd * w), 0)
    if model == "pow-step":
        dwu, dwd, gu, gd, bmax, bmin = p[:6]
        r = bmax - bmin
        return (dwu * np.clip((bmax - w) / r, 0, None) ** gu, dwd * np.clip((w - bmin) / r, 0, None) ** gd)
    if model == "piecewise":
        dw = p[0]
        up = np.asarray(p[1:1 + nodes])
        dn = np.asarray(p[1 + nodes:1 + 2 * nodes])
        x = np.linspace(-1, 1, nodes)
        return dw * np.interp(w, x, up), dw * np.interp(w, x, dn)
    raise ConfigError(f"Unknown model {model!r}; choose one of {', '.join(MODELS)}.")


def _bounds(model, p):
    """Hard bounds of the simulated trajectory: the fitted soft bounds, or the normalised data range."""
    if model == "softbounds":
        return p[3], p[2]
    if model == "pow-step":
        return p[5], p[4]
    return -1.0, 1.0


def _param_spec(model, nodes, step0):
    """Names, initial values, lower and upper limits of the model parameters (normalised units)."""
    inf = np.inf
    if model == "softbounds":
        return (["dw_up", "dw_down", "b_max", "b_min"], [step0, step0, 1.2, -1.2],
                [1e-9, 1e-9, 1e-3, -50], [1, 1, 50, -1e-3])
    if model == "linear-step":
        return (["dw_up", "dw_down", "gamma_up", "gamma_down"], [step0, step0, 0.5, 0.5],
                [1e-9, 1e-9, -5, -5], [1, 1, 5, 5])
    if model == "exp-step":
        return (["dw_up", "dw_down", "A_up", "gamma_up", "A_down", "gamma_down"],
                [step0, step0, 0.1, 1.0, 0.1, 1.0], [1e-9, 1e-9, -50, -20, -50, -20], [1, 1, 50, 20, 50, 20])
    if model == "pow-step":
        return (["dw_up", "dw_down", "gamma_up", "gamma_down", "b_max", "b_min"],
                [2 * step0, 2 * step0, 1.0, 1.0, 1.1, -1.1], [1e-9, 1e-9, 1e-3, 1e-3, 0.5, -50],
                [1, 1, 20, 20, 50, -0.5])
    names = ["dw"] + [f"up_{k}" for k in range(nodes)] + [f"down_{k}" for k in range(nodes)]
    return names, [step0] + [1.0] * (2 * nodes), [1e-9] + [0.0] * (2 * nodes), [1] + [inf] * (2 * nodes)


def simulate(model, p, starts, dirs, lengths, nodes=5):
    """Mean trajectories of all segments (padded with NaN to the longest), shape (n_seg, max_len)."""
    lo, hi = _bounds(model, p)
    n = max(lengths)
    out = np.full((len(lengths), n), np.nan)
    w = np.array(starts, float)
    d = np.asarray(dirs)
    L = np.asarray(lengths)
    for k in range(n):
        live = k < L
        out[live, k] = w[live]
        up, dn = _steps(model, p, w, nodes)
        w = np.clip(np.where(d > 0, w + up, w - dn), lo, hi)
    return out


@dataclass
class FitResult:
    model: str
    names: list
    params: np.ndarray
    stderr: np.ndarray
    rmse: float            # normalised units
    rmse_units: float      # original units
    r2: float
    n_points: int
    device: object = None
    curve: Curve = None
    starts: np.ndarray = None
    nodes: int = 5
    extra: dict = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"model {self.model}: {self.n_points} readings in {len(self.curve.segments)} segment(s)"]
        for n, v, e in zip(self.names, self.params, self.stderr):
            lines.append(f"  {n:12s} = {v: .6g} +- {e:.2g}")
        lines.append(f"  RMSE {self.rmse:.4g} (normalised units, data range = 2), {self.rmse_units:.4g} "
                     f"(file units); R^2 {self.r2:.4f}")
        return "\n".join(lines)


#: function evaluations least_squares may make (its max_nfev; the Jacobian's differences come on top)
MAX_NFEV = 100


def fit_cost(curve: Curve, model: str, nodes: int = 5) -> tuple[float, int]:
    """``(seconds, evaluations)``: the measured time of one model evaluation of ``curve`` and the most
    evaluations :func:`fit_curve` can make (MAX_NFEV steps, each with its finite-difference Jacobian).

    The time comes from simulating at most 2000 pulses of every segment, scaled to the longest segment
    (:func:`simulate` steps all segments together, one pulse at a time).
    """
    lengths = [s.size for s in curve.segments]
    n = max(lengths)
    k = min(n, 2000)
    names, p0, _, _ = _param_spec(model, nodes, 1e-3)
    t0 = time.perf_counter()
    simulate(model, np.asarray(p0, float), [0.0] * len(lengths), curve.dirs, [min(m, k) for m in lengths], nodes)
    per_eval = (time.perf_counter() - t0) * n / k
    jac_cols = len(names) + (1 if len(lengths) > 2 else len(lengths))
    return per_eval, MAX_NFEV * (1 + jac_cols)


def fit_curve(curve: Curve, model: str, nodes: int = 5, w_scale: float = 1.0, progress=None,
              progress_every: float = 10.0) -> FitResult:
    """Fit ``model`` to ``curve``; returns parameters, uncertainties, goodness of fit and the device config.

    ``progress``: called with a one-line message (evaluations so far, elapsed time, current RMSE) at most
    every ``progress_every`` seconds while the fit runs (None: silent). See :func:`fit_cost` for its length.
    """
    from scipy.optimize import least_squares

    if model not in MODELS:
        raise ConfigError(f"Unknown model {model!r}; choose one of {', '.join(MODELS)}.")
    segs = curve.normalised()
    dirs = curve.dirs
    lengths = [s.size for s in segs]
    data = np.full((len(segs), max(lengths)), np.nan)
    for k, s in enumerate(segs):
        data[k, :s.size] = s
    mask = np.isfinite(data)
    steps = np.concatenate([np.abs(np.diff(s)) for s in segs if s.size > 1])
    # typical step: total travel of the segments over their pulses (robust to read noise)
    travel = np.median([abs(np.median(s[-5:]) - np.median(s[:5])) / max(s.size - 1, 1) for s in segs])
    step0 = float(max(travel, 1e-4, 0.05 * np.median(steps)))
    names, p0, lb, ub = _param_spec(model, nodes, step0)
    npar = len(names)
    s0 = [float(np.median(s[:3])) for s in segs]

    clock = {"start": time.perf_counter(), "last": time.perf_counter(), "n": 0}

    def resid(theta):
        sim = simulate(model, theta[:npar], theta[npar:], dirs, lengths, nodes)
        r = (sim - data)[mask]
        clock["n"] += 1
        now = time.perf_counter()
        if progress is not None and now - clock["last"] >= progress_every:
            clock["last"] = now
            progress(f"fit: {clock['n']} model evaluation(s) in {now - clock['start']:.0f} s, RMSE "
                     f"{math.sqrt(float(r @ r) / max(r.size, 1)):.4g} (normalised units)")
        return r

    x0 = np.r_[p0, s0]
    lo = np.r_[lb, [-5.0] * len(segs)]
    hi = np.r_[ub, [5.0] * len(segs)]
    x0 = np.clip(x0, lo + 1e-12, np.where(np.isfinite(hi), hi - 1e-12, hi))
    # each segment's residuals depend on the model parameters and on its own start only: telling
    # least_squares so lets it difference all starts in one evaluation (npar + 1 evaluations per Jacobian
    # instead of npar + n_segments; 35 ramps of CrossSim's set.csv: ~10x fewer)
    seg_of = np.broadcast_to(np.arange(len(segs))[:, None], data.shape)[mask]
    sparsity = np.zeros((seg_of.size, npar + len(segs)), np.int8)
    sparsity[:, :npar] = 1
    sparsity[np.arange(seg_of.size), npar + seg_of] = 1
    sol = least_squares(resid, x0, bounds=(lo, hi), x_scale="jac", max_nfev=MAX_NFEV,
                        jac_sparsity=sparsity if len(segs) > 2 else None)
    r = sol.fun
    n = r.size
    dof = max(n - sol.x.size, 1)
    s2 = float(r @ r) / dof
    J = sol.jac.toarray() if hasattr(sol.jac, "toarray") else np.asarray(sol.jac)
    cov = np.linalg.pinv(J.T @ J) * s2
    err = np.sqrt(np.clip(np.diag(cov), 0, None))[:npar]
    yall = data[mask]
    r2 = 1.0 - float(r @ r) / float(((yall - yall.mean()) ** 2).sum())
    rmse = math.sqrt(float(r @ r) / n)
    res = FitResult(model, names, sol.x[:npar], err, rmse, rmse * curve.units_scale[1], r2, n, curve=curve,
                    starts=sol.x[npar:], nodes=nodes)
    res.device = to_device(model, sol.x[:npar], nodes, w_scale)
    return res


def _dw(dwu, dwd):
    dw_min = max(dwu, dwd)
    up_down = dwu / dw_min - 1.0 if dwu < dwd else 1.0 - dwd / dw_min
    return dw_min, up_down


NOVAR = dict(dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)


def to_device(model, p, nodes=5, w_scale=1.0):
    """Device config of our model classes from fitted parameters (normalised units times ``w_scale``)."""
    from . import ExpStepDevice, LinearStepDevice, PiecewiseStepDevice, PowStepDevice, SoftBoundsDevice

    s = float(w_scale)
    if model == "softbounds":
        dwu, dwd, bmax, bmin = (float(v) for v in p)
        dw_min, ud = _dw(dwu, dwd)
        return SoftBoundsDevice(dw_min=dw_min * s, up_down=ud, w_max=bmax * s, w_min=bmin * s, **NOVAR)
    if model == "linear-step":
        dwu, dwd, gu, gd = (float(v) for v in p)
        dw_min, ud = _dw(dwu, dwd)
        return LinearStepDevice(dw_min=dw_min * s, up_down=ud, w_max=s, w_min=-s, gamma_up=gu, gamma_down=gd,
                                gamma_up_dtod=0.0, gamma_down_dtod=0.0, allow_increasing=(gu < 0 or gd < 0),
                                **NOVAR)
    if model == "exp-step":
        dwu, dwd, au, gu, ad, gd = (float(v) for v in p)
        dw_min, ud = _dw(dwu, dwd)
        # our z = 2 a w / (w_max - w_min) + b with bounds +-s: a = 1, b = 0 gives z = w / s (normalised w)
        return ExpStepDevice(dw_min=dw_min * s, up_down=ud, w_max=s, w_min=-s, a=1.0, b=0.0, A_up=au,
                             gamma_up=gu, A_down=ad, gamma_down=gd, **NOVAR)
    if model == "pow-step":
        dwu, dwd, gu, gd, bmax, bmin = (float(v) for v in p)
        dw_min, ud = _dw(dwu, dwd)
        gamma = max(gu, gd)
        beta = gu / gamma - 1.0 if gu < gd else 1.0 - gd / gamma
        return PowStepDevice(dw_min=dw_min * s, up_down=ud, w_max=bmax * s, w_min=bmin * s, pow_gamma=gamma,
                             pow_up_down=beta, pow_gamma_dtod=0.0, **NOVAR)
    dw = float(p[0])
    return PiecewiseStepDevice(dw_min=dw * s, w_max=s, w_min=-s, piecewise_up=tuple(float(v) for v in p[1:1 + nodes]),
                               piecewise_down=tuple(float(v) for v in p[1 + nodes:1 + 2 * nodes]), **NOVAR)


def plot_fit(ax, res: FitResult):
    """Data vs fitted mean response, segments one after the other along the pulse axis."""
    segs = res.curve.normalised()
    sim = simulate(res.model, res.params, res.starts, res.curve.dirs, [s.size for s in segs], res.nodes)
    x0 = 0
    labelled = set()
    for k, s in enumerate(segs):
        x = np.arange(x0, x0 + s.size)
        ax.plot(x, s, ".", ms=2, color="0.6", label="data" if k == 0 else None)
        kind = "up" if res.curve.dirs[k] > 0 else "down"
        ax.plot(x, sim[k, :s.size], "-", color="C3" if kind == "up" else "C0", lw=1,
                label=None if kind in labelled else f"model ({kind})")
        labelled.add(kind)
        x0 += s.size
    ax.set_xlabel("pulse (segments concatenated)")
    ax.set_ylabel("normalised conductance")
    ax.set_title(f"{res.model}: RMSE {res.rmse:.3g}, R^2 {res.r2:.3f}")
    ax.legend(loc="best", fontsize=8)
