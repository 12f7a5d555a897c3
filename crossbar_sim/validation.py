"""Parameter checks with one message template (scikit-learn style).

``The 'dw_min' parameter of SoftBoundsDevice must be a float in (0, inf). Got -0.1 instead.``
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import ConfigError, NonFiniteError, ShapeError

#: the largest and the smallest normal float32: scalars the float32 kernels read (lr, granularity) stay in range
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_TINY = float(np.finfo(np.float32).tiny)


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
    # the message is only built on failure: this check runs on every tile update (learning rate)
    if not isinstance(value, bool) and isinstance(value, numbers.Real):
        try:
            v = float(value)
        except OverflowError:  # an int beyond the float range
            v = math.inf
        ok = math.isfinite(v)
        if ok and lo is not None:
            ok = v >= lo if closed_lo else v > lo
        if ok and hi is not None:
            ok = v <= hi if closed_hi else v < hi
        if ok:
            return v
    interval = _fmt_interval(lo, hi, closed_lo, closed_hi)
    raise ConfigError(f"The '{name}' parameter of {owner} must be a float in {interval}. Got {short_repr(value)} instead.")


def check_int(value, name, owner, lo=None, hi=None):
    """Return ``value`` as int if it is an integer in [lo, hi], else raise :class:`ConfigError`."""
    interval = _fmt_interval(lo, hi, True, True)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be an int in {interval}. Got {short_repr(value)} instead."
        )
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be an int in {interval}. Got {short_repr(value)} instead."
        )
    return v


def check_bool(value, name, owner):
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"The '{name}' parameter of {owner} must be a bool. Got {short_repr(value)} instead.")
    return bool(value)


def check_choice(value, name, owner, choices):
    if value not in choices:
        opts = ", ".join(repr(c) for c in choices)
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be one of {opts}. Got {short_repr(value)} instead."
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


#: dtype kinds an analog input may have: bool, signed and unsigned int, float
REAL_KINDS = "biuf"


def as_real_array(a, name, dtype=np.float32) -> np.ndarray:
    """``a`` as an ndarray of ``dtype``, or :class:`ConfigError` naming ``name`` unless it holds real numbers.

    Complex values (whose imaginary part a cast would silently drop), strings, dates and objects that are not
    numbers are refused; so are finite values beyond the range of ``dtype`` (a cast would make them inf).
    NaN and inf pass (the caller decides: :func:`check_finite_array`). Not for the fast path: it converts.
    """
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise ShapeError(f"'{name}' must be a rectangular array of numbers. Got {short_repr(a)} ({exc}).") from None
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (ValueError, TypeError):
            pass
    if arr.dtype.kind not in REAL_KINDS:
        raise ConfigError(f"'{name}' must hold real numbers (bool, int or float). Got dtype {arr.dtype} "
                          f"({short_repr(a)}) instead.")
    if arr.dtype == dtype:
        return arr
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(dtype)
    if arr.dtype.kind == "f" and out.dtype.kind == "f" and out.size:
        info = np.finfo(dtype)
        big = np.isinf(out) & np.isfinite(arr)
        if big.any():
            raise ConfigError(f"'{name}' has values beyond the {np.dtype(dtype).name} range (|value| <= "
                              f"{float(info.max):.3g}). Got {float(arr[big].flat[0]):.6g} instead.")
    return out


def short_repr(a) -> str:
    """``repr(a)`` on one line, cut to 60 characters (for one-line messages)."""
    r = " ".join(repr(a).split())
    return r if len(r) <= 60 else r[:57] + "..."


def as_batch(a, name, size, dtype=np.float32, finite=True):
    """Return ``a`` as a C-contiguous 2-D array ``(batch, size)``; a 1-D input becomes a batch of one.

    Raises :class:`ShapeError` naming ``name`` on a size mismatch, :class:`ConfigError` unless ``a`` holds
    real numbers (:func:`as_real_array`) and :class:`NonFiniteError` on NaN/inf (``finite=False`` leaves that
    check to the caller, e.g. the periphery kernel, which finds inf/NaN in the pass it makes over the inputs
    anyway).
    """
    if type(a) is np.ndarray and a.dtype == dtype and (a.ndim == 2 or a.ndim == 1) and a.shape[-1] == size:
        # fast path (the common case of a tile's forward/backward): no conversion, no copy
        arr = a if a.ndim == 2 else a.reshape(1, size)
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        if finite:
            check_finite_array(arr, name)
        return arr
    arr = as_real_array(a, name, dtype)
    if (arr.ndim != 1 and arr.ndim != 2) or arr.shape[-1] != size:
        raise ShapeError(
            f"'{name}' must have shape ({size},) or (batch, {size}). Got shape {arr.shape} instead."
        )
    if arr.ndim == 1:
        arr = arr[None, :]
    arr = np.ascontiguousarray(arr)
    if finite:
        check_finite_array(arr, name)
    return arr


def as_matrix(a, name, shape, dtype=np.float32) -> np.ndarray:
    """``a`` as a finite ``dtype`` array of exactly ``shape`` (weights, masks), else :class:`ShapeError`,
    :class:`ConfigError` (not real numbers) or :class:`NonFiniteError`."""
    arr = as_real_array(a, name, dtype)
    if arr.shape != tuple(shape):
        raise ShapeError(f"'{name}' must have shape {tuple(shape)}. Got shape {arr.shape} instead.")
    if arr.dtype.kind == "f":
        check_finite_array(arr, name)
    return arr


# ------------------------------------------------------------------ command-line options
def arg_float(lo=None, hi=None, closed_lo=True, closed_hi=True):
    """An argparse ``type=`` for a finite float in the interval (None = unbounded), checked by
    :func:`check_float`: ``--near nan`` or ``--near -1`` become argparse's one-line usage error (exit 2)."""
    interval = _fmt_interval(lo, hi, closed_lo, closed_hi)

    def parse(text: str) -> float:
        try:
            return check_float(float(text), "", "", lo, hi, closed_lo, closed_hi)
        except (ValueError, OverflowError):  # ConfigError is a ValueError
            import argparse

            raise argparse.ArgumentTypeError(f"must be a float in {interval}. Got {text!r}.") from None

    parse.__name__ = "float"  # argparse names the type in its own messages
    return parse


def arg_int(lo=None, hi=None):
    """An argparse ``type=`` for an int in [lo, hi] (None = unbounded), checked by :func:`check_int`."""
    interval = _fmt_interval(lo, hi, True, True)

    def parse(text: str) -> int:
        try:
            return check_int(int(text), "", "", lo, hi)
        except ValueError:
            import argparse

            raise argparse.ArgumentTypeError(f"must be an int in {interval}. Got {text!r}.") from None

    parse.__name__ = "int"
    return parse
