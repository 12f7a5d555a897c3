"""Weight modifier of hardware-aware training: one noisy copy of a weight matrix (aihwkit ``WeightModifierParameter``).

``W' = W + std a z`` (additive), ``W' = W (1 + std z)`` (multiplicative), then each element set to 0 with probability
``pdrop`` (drop connect). ``z`` are standard normal deviates of the counter-based stream ``key`` (element ``k`` and
``k + n/2`` share one 64-bit word, Box-Muller: :func:`.rng.normal_pair32`), the drop decisions uniform words of
``sub_key(key, 1)``. A copy is a pure function of ``(W, key)``: the same on any thread count, restartable from the
key alone. The wrapper (:func:`crossbar_sim.inference.hwa.modify_weights`) chooses ``a`` and the key; the NumPy twin
is :func:`.reference_modifier.weight_modifier` (same formulas, NumPy random generator).
"""
from __future__ import annotations

from numba import float32, float64, njit, uint64

from .rng import draw, normal_pair32, sub_key

MOD_NONE = 0
MOD_ADD_NORMAL = 1
MOD_MULT_NORMAL = 2


@njit(inline="always", error_model="numpy")
def _add_noise(w, o, s, key):
    """``o = w + s z`` (one loop per kind: branch-free bodies vectorise)."""
    n = w.shape[0]
    half = n >> 1
    for k in range(half):
        z1, z2 = normal_pair32(draw(key, uint64(k)))
        o[k] = float32(w[k] + float32(s * z1))
        o[k + half] = float32(w[k + half] + float32(s * z2))
    if n & 1:
        z1, z2 = normal_pair32(draw(key, uint64(half)))
        o[n - 1] = float32(w[n - 1] + float32(s * z1))


@njit(inline="always", error_model="numpy")
def _mult_noise(w, o, s, key):
    """``o = w (1 + s z)``."""
    n = w.shape[0]
    half = n >> 1
    one = float32(1.0)
    for k in range(half):
        z1, z2 = normal_pair32(draw(key, uint64(k)))
        o[k] = float32(w[k] * float32(one + float32(s * z1)))
        o[k + half] = float32(w[k + half] * float32(one + float32(s * z2)))
    if n & 1:
        z1, z2 = normal_pair32(draw(key, uint64(half)))
        o[n - 1] = float32(w[n - 1] * float32(one + float32(s * z1)))


@njit(cache=True, error_model="numpy")
def weight_modifier(W, out, kind, std, a, pdrop, key):
    """``out = modify(W)`` for C-contiguous float32 matrices of one shape.

    Parameters
    ----------
    W, out : ndarray of shape (rows, cols), float32, C-contiguous
    kind : int
        ``MOD_NONE``, ``MOD_ADD_NORMAL`` (``std`` is relative to ``a``) or ``MOD_MULT_NORMAL`` (relative to ``w``).
    std, a, pdrop : float
        Noise strength, the weight scale of the additive noise (abs-max or an assumed maximum), drop probability.
    key : uint64
        Stream key of this copy.
    """
    n = W.size
    w = W.reshape(n)
    o = out.reshape(n)
    s = float32(std * a) if kind == MOD_ADD_NORMAL else float32(std)
    if kind == MOD_ADD_NORMAL and std != 0.0:
        _add_noise(w, o, s, key)
    elif kind == MOD_MULT_NORMAL and std != 0.0:
        _mult_noise(w, o, s, key)
    else:
        for i in range(n):
            o[i] = w[i]
    if pdrop > 0.0:
        dkey = sub_key(key, 1)
        for i in range(n):
            u = float64(draw(dkey, uint64(i)) >> uint64(11)) * (1.0 / 9007199254740992.0)
            if u < pdrop:
                o[i] = float32(0.0)
