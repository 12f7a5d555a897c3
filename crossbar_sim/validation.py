"""Parameter checks with one message template (scikit-learn style).

``The 'dw_min' parameter of SoftBoundsDevice must be a float in (0, inf). Got -0.1 instead.``
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import ConfigError, NonFiniteError, ShapeError


def _num(v):
    return f"{v:g}" if isinstance(v, float) else str(v)


def _fmt_interval(lo, hi, closed_lo, closed_hi):
    left = "[" if (closed_lo and lo is not None) else "("
    right = "]" if (closed_hi and hi is not None) else ")"
    lo_s = "-inf" if lo is None else _num(lo)
    hi_s = "inf" if hi is None else _num(hi)
    return f"{left}{lo_s}, {hi_s}{right}"


def check_float(value, name, owner, lo=None, hi=None, closed_lo=True, closed_hi=True):
    """Return ``value`` as a finite float in the interval (None = unbounded), else raise :class:`ConfigError`."""
    interval = _fmt_interval(lo, hi, closed_lo, closed_hi)
    msg = f"The '{name}' parameter of {owner} must be a float in {interval}. Got {value!r} instead."
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(msg)
    v = float(value)
    ok = math.isfinite(v)
    if ok and lo is not None:
        ok = v >= lo if closed_lo else v > lo
    if ok and hi is not None:
        ok = v <= hi if closed_hi else v < hi
    if not ok:
        raise ConfigError(msg)
    return v


def check_int(value, name, owner, lo=None, hi=None):
    """Return ``value`` as int if it is an integer in [lo, hi], else raise :class:`ConfigError`."""
    interval = _fmt_interval(lo, hi, True, True)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be an int in {interval}. Got {value!r} instead."
        )
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be an int in {interval}. Got {value!r} instead."
        )
    return v


def check_bool(value, name, owner):
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"The '{name}' parameter of {owner} must be a bool. Got {value!r} instead.")
    return bool(value)


def check_choice(value, name, owner, choices):
    if value not in choices:
        opts = ", ".join(repr(c) for c in choices)
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be one of {opts}. Got {value!r} instead."
        )
    return value


def check_finite_array(a, name):
    """Raise :class:`NonFiniteError` naming ``name`` if ``a`` holds NaN or inf."""
    # fast path: a finite sum proves every element finite (an overflowing sum falls back to the full check)
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(np.add.reduce(a, axis=None, dtype=np.float64))
    if math.isfinite(total):
        return
    if not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise NonFiniteError(
            f"'{name}' contains {bad} non-finite value(s) (NaN or inf); analog tiles need finite inputs."
        )


def as_batch(a, name, size, dtype=np.float32, finite=True):
    """Return ``a`` as a C-contiguous 2-D array ``(batch, size)``; a 1-D input becomes a batch of one.

    Raises :class:`ShapeError` naming ``name`` on a size mismatch and :class:`NonFiniteError` on NaN/inf
    (``finite=False`` leaves that check to the caller, e.g. the periphery kernel, which finds inf/NaN in the
    pass it makes over the inputs anyway).
    """
    if type(a) is np.ndarray and a.dtype == dtype and (a.ndim == 2 or a.ndim == 1) and a.shape[-1] == size:
        # fast path (the common case of a tile's forward/backward): no conversion, no copy
        arr = a if a.ndim == 2 else a.reshape(1, size)
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        if finite:
            check_finite_array(arr, name)
        return arr
    arr = np.asarray(a)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != size:
        raise ShapeError(
            f"'{name}' must have shape ({size},) or (batch, {size}). Got shape {np.shape(a)} instead."
        )
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if finite:
        check_finite_array(arr, name)
    return arr
