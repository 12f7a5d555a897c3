"""What the theory of analog SGD predicts for one least-squares run, computed from the run's own record.

Wu, Gokmen, Rasch & Chen, "Towards exact gradient-based training on analog in-memory computing", arXiv
2406.12774 (NeurIPS 2024). Its model of analog SGD on the asymmetric linear device (``w_max = -w_min = tau``,
response ``q_+- = 1 -+ w / tau``; :func:`~crossbar_sim.device_models.asymmetric_linear_device`) is, entry by
entry::

    W_{k+1} = W_k - alpha g_k - (alpha / tau) |g_k| * W_k,      g_k = grad f(W_k) + eps_k,

with ``E eps_k = 0`` and ``E ||eps_k||_F^2 <= sigma^2``. Its convergence theorem for analog SGD (Theorem 2 in the
numbering this project uses) bounds the average squared gradient norm by a term that vanishes as the number of
steps K grows (it carries ``1 / (1 - W_max^2 / tau^2)`` and ``f(W_0) - f*``) plus the *asymptotic error*
``4 sigma^2 S_K`` with::

    S_K = (1/K) sum_{k<K} q_k / (1 - q_k),      q_k = ||W_k||_inf^2 / tau^2,

where ``||W||_inf = max_ij |W_ij|``. Its lower-bound construction (Theorem 3) shows that an asymptotic error of
that order is really reached, with a state-dependent two-point noise. Tiki-Taka's theorem has no asymptotic
term: it converges to a critical point, its floor at a constant learning rate is a noise floor that falls with
the learning rate, as digital SGD's does.

The statements were not at hand in full text while this module was written (only the abstract was); the parts
used here were derived again, and the derivations say which choices they force:

* **sigma^2 is the total variance** ``E ||eps||_F^2 = noise_std^2 * out_size * in_size``, not the variance of one
  entry. The asymmetric term enters the descent inequality as ``sum_i grad_i |g_i| W_i / tau``; Young's
  inequality per entry and ``|W_i| <= ||W||_inf`` leave ``(||W||_inf^2 / tau^2) sum_i E eps_i^2``: the sum over
  all entries. Every analog SGD run of the default sweep exceeds ``4 * noise_std^2 * S`` (the per-entry
  reading), by 1.3x to 4x with Gaussian noise and 6x to 10x on the lower-bound instance below, so the
  per-entry reading cannot be the theorem's.
* **The bound is reached up to its factor 4.** At a stationary point of the expected update,
  ``grad_i = -E|g_i| W_i / tau`` for every entry. A noise of variance ``s_i^2`` gives ``E|g_i| <=
  sqrt(grad_i^2 + s_i^2)``, with equality exactly for the two-point noise ``g_i = +-sqrt(grad_i^2 + s_i^2)``
  (:func:`crossbar_sim.least_squares.task.two_point_noisy`); then ``grad_i^2 = s_i^2 q_i / (1 - q_i)`` with
  ``q_i = W_i^2 / tau^2``. If every ``|W_i|`` equals ``||W||_inf`` (``w_star_dist = "sign"`` puts every
  ``|W*_i|`` there), ``||grad f||^2 = sigma^2 q / (1 - q) = sigma^2 S``: a quarter of the bound. Gaussian noise
  gives ``E|g_i| ~ sqrt(2/pi) s_i`` and entries of W below ``||W||_inf``, so its floor sits further below.

What is measured and what is compared (:func:`run_theory`): the *asymptotic squared gradient norm* ``G`` of a run
is the mean of the exact ``||grad f(W_k)||_F^2`` (at the weights read from the tile, without periphery) over the
recorded steps of the last ``fraction`` of training, the window of the stored error floor
(:func:`error_floor`); ``S`` is the mean of ``q_k / (1 - q_k)`` over the same steps,
and the run's *bound* is ``4 sigma^2 S``. Theorem 2, applied from the first step of that window on, bounds the
window's mean of ``E ||grad f||^2`` by ``4 sigma^2 S`` *plus* positive terms (the transient and the
learning-rate-proportional noise floor of SGD), so ``G <= 4 sigma^2 S`` is a stricter test than the theorem asks.
It is one sample path, averaged over the window, not an expectation.
"""
from __future__ import annotations

import math

import numpy as np

#: the factor of the asymptotic term of Theorem 2
BOUND_FACTOR = 4.0

#: where the theorems are
PAPER = "arXiv 2406.12774"

_DEVICE_TYPE = "SoftBoundsReferenceDevice"
#: device parameters that must be 0 for the run to be the theorem's model (asymmetry, offsets, variations of
#: the bounds, read noise); cycle-to-cycle noise and step-size variation only add zero-mean update noise
_DEVICE_ZEROS = ("up_down", "up_down_dtod", "w_max_dtod", "w_min_dtod", "reference_mean", "reference_std",
                 "slope_up_dtod", "slope_down_dtod", "write_noise_std")


def s_terms(w_inf, tau: float) -> np.ndarray:
    """``q / (1 - q)`` with ``q = (w_inf / tau)^2`` for each recorded step (``inf`` where ``q >= 1``).

    Parameters
    ----------
    w_inf : array_like
        ``||W_k||_inf`` at the recorded steps (weight units).
    tau : float
        The device's ``w_max = -w_min`` (> 0).

    Returns
    -------
    ndarray of float64, the shape of ``w_inf``
    """
    if not (tau > 0 and math.isfinite(tau)):
        raise ValueError(f"tau must be a finite float > 0. Got {tau!r}.")
    q = (np.asarray(w_inf, np.float64) / float(tau)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q < 1.0, q / (1.0 - q), np.inf)


def theorem2_bound(w_inf, tau: float, sigma2: float) -> float:
    """The asymptotic term ``4 sigma^2 S_K`` of Theorem 2 for the steps whose ``||W_k||_inf`` are ``w_inf``.

    ``S_K`` is the mean of :func:`s_terms` over the given steps; ``sigma2`` is the total gradient-noise variance
    ``E ||eps||_F^2`` (:func:`noise_variance`). ``inf`` if some ``||W_k||_inf >= tau`` (the bound says nothing).
    """
    s = s_terms(w_inf, tau)
    if s.size == 0:
        return float("nan")
    return BOUND_FACTOR * float(sigma2) * float(np.mean(s))


def noise_variance(task: dict) -> float:
    """``sigma^2 = E ||eps||_F^2``, the total variance of one step's gradient noise, of a task config
    (``LeastSquaresTask.to_dict()``): ``noise_std^2 * out_size * in_size`` (both noise distributions have
    variance ``noise_std^2`` per entry)."""
    return float(task.get("noise_std", 0.0)) ** 2 * int(task.get("out_size", 1)) * int(task.get("in_size", 1))


def theorem2_applies(config: dict) -> tuple[bool, str]:
    """Whether a run (``{"task": ..., "train": ...}`` as stored) is the model of Theorem 2, and if not, why.

    It is when the run is analog SGD on the asymmetric linear device (a ``SoftBoundsReferenceDevice`` with
    ``w_max = -w_min`` and no asymmetry, offset, bound variation or read noise), with exact reads (perfect
    forward periphery) and the noisy *full* gradient written entry by entry (``gradient = "full"``, every row
    of A in each step), so that the gradient noise is exactly the configured one.
    """
    train = config.get("train") or {}
    task = config.get("task") or {}
    if train.get("algorithm") != "analog_sgd":
        return False, f"Theorem 2 is about analog SGD, not {train.get('algorithm')!r}"
    dev = train.get("device") or {}
    if dev.get("type") != _DEVICE_TYPE:
        return False, f"the device is {dev.get('type')!r}, not the asymmetric linear device ({_DEVICE_TYPE})"
    w_max, w_min = float(dev.get("w_max", 0.0)), float(dev.get("w_min", 0.0))
    if not (w_max > 0 and w_min == -w_max):
        return False, f"the device bounds are not symmetric (w_max {w_max:g}, w_min {w_min:g})"
    nonzero = [k for k in _DEVICE_ZEROS if float(dev.get(k, 0.0) or 0.0) != 0.0]
    if nonzero:
        return False, "the device has " + ", ".join(f"{k} = {dev[k]:g}" for k in nonzero) + " (the theorem: 0)"
    if task.get("gradient", "full") != "full":
        return False, "the gradient is pulsed sample by sample (gradient = 'per_sample'), not the model's update"
    bs, n = int(task.get("batch_size", 0)), int(task.get("n_samples", 1))
    if bs not in (0, n):
        return False, f"mini-batches of {bs} add sampling noise of unknown variance to sigma^2"
    fwd = train.get("forward") or {}
    if not fwd.get("is_perfect", False):
        return False, "the forward periphery is not perfect (its noise and quantisation add gradient noise)"
    return True, ""


def device_tau(config: dict) -> float | None:
    """``tau = w_max`` of a run's device (None if the device has no ``w_max`` or the run is digital SGD)."""
    train = config.get("train") or {}
    if train.get("algorithm") == "digital_sgd":
        return None
    w_max = (train.get("device") or {}).get("w_max")
    return float(w_max) if w_max is not None else None


def run_theory(config: dict, steps, metrics: dict, fraction: float = 0.2) -> dict:
    """The measured asymptotic squared gradient norm of one run and, where Theorem 2 applies, its own bound.

    Parameters
    ----------
    config : dict
        ``{"task": ..., "train": ...}`` (as stored in a run's ``config`` attribute).
    steps : ndarray of int
        The recorded steps.
    metrics : dict of str -> ndarray
        The run's metrics (``grad_norm2``, ``loss``, ``w_inf``; :data:`~.training.METRIC_UNITS`).
    fraction : float
        The tail of training averaged (the sweep's ``floor_fraction``).

    Returns
    -------
    dict
        ``grad_norm2`` (G, the tail mean of ``||grad f||^2``), ``loss_floor`` (tail mean of the loss), ``S``
        (tail mean of ``q/(1-q)``), ``w_inf`` (tail mean of ``||W||_inf``), ``sigma2``, ``tau``, ``bound``
        (``4 sigma^2 S``, nan where the theorem does not apply), ``ratio`` (``G / bound``), ``applies`` and
        ``reason`` (why not).
    """

    steps = np.asarray(steps)
    total = int((config.get("train") or {}).get("steps", int(steps.max()) if steps.size else 0))
    nan = float("nan")

    def tail(name):
        v = metrics.get(name)
        return error_floor(steps, v, total, fraction) if v is not None and len(v) else nan

    out = {"grad_norm2": tail("grad_norm2"), "loss_floor": tail("loss"), "w_inf": tail("w_inf"), "S": nan,
           "sigma2": noise_variance(config.get("task") or {}), "tau": device_tau(config), "bound": nan,
           "ratio": nan}
    applies, reason = theorem2_applies(config)
    if applies and metrics.get("w_inf") is None:
        applies, reason = False, "the run has no w_inf record (written by an older crossbar-sim)"
    if applies and metrics.get("grad_norm2") is None:
        applies, reason = False, "the run has no grad_norm2 record"
    if applies:
        out["S"] = error_floor(steps, s_terms(metrics["w_inf"], out["tau"]), total, fraction)
        out["bound"] = BOUND_FACTOR * out["sigma2"] * out["S"]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["ratio"] = float(np.float64(out["grad_norm2"]) / np.float64(out["bound"]))
    out["applies"], out["reason"] = applies, reason
    return out


def loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (nan with fewer than two positive points): 1 for a
    floor proportional to the learning rate, 0 for one that does not move, 2 for one proportional to sigma^2."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    if np.count_nonzero(ok) < 2 or np.ptp(np.log(x[ok])) == 0:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def error_floor(steps: np.ndarray, loss: np.ndarray, total_steps: int, fraction: float = 0.2) -> float:
    """Mean of ``loss`` over the recorded steps in the last ``fraction`` of training (``step >= (1-f) T``).

    This is the *error floor* the least-squares sweeps store and plot: the level where a run stalls, averaged
    over the tail to reduce the gradient-noise jitter of single readings.
    """
    steps = np.asarray(steps)
    loss = np.asarray(loss, np.float64)
    if loss.size == 0:
        return float("nan")
    sel = steps >= (1.0 - fraction) * total_steps
    if not np.any(sel):
        sel = steps == steps.max()
    return float(np.mean(loss[sel]))


def error_floor_definition(fraction: float = 0.2) -> str:
    return (f"mean of the recorded loss over the last {fraction:.0%} of the training steps "
            f"(recorded steps t >= {1 - fraction:g} * steps)")
