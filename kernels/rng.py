"""Counter-based random numbers for the kernels.

Every random number is a pure function of ``(key, counter)``: SplitMix64's output function applied to a
Weyl sequence position. Streams are therefore reproducible whatever the number of threads or the order in
which rows are processed, and a tile's RNG state is just its key and its sample counter (so save/restore
is exact). Normal deviates use a 256-layer ziggurat (Marsaglia & Tsang 2000) on 64-bit draws; the tables
come from :func:`ziggurat_tables` and are passed to kernels as arguments.
"""
from __future__ import annotations

import math

import numpy as np
from numba import float32, float64, int64, njit, uint64
from numba.core import types
from numba.extending import intrinsic

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@intrinsic
def popcount64(typingctx, x):
    """Number of set bits of a uint64 (LLVM ``ctpop``; one instruction with POPCNT)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(inline="always", error_model="numpy")
def mix64(z):
    """SplitMix64 output function (Stafford variant 13): a bijective 64-bit mixer."""
    z = (z ^ (z >> uint64(30))) * uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> uint64(27))) * uint64(0x94D049BB133111EB)
    return z ^ (z >> uint64(31))


@njit(inline="always", error_model="numpy")
def draw(key, idx):
    """The 64-bit random word number ``idx`` of stream ``key``."""
    return mix64(key + uint64(idx) * uint64(0x9E3779B97F4A7C15))


@njit(inline="always", error_model="numpy")
def sub_key(key, tag):
    """An independent stream key derived from ``key`` and an integer ``tag``."""
    return mix64(key ^ mix64(uint64(tag) + uint64(0x632BE59BD9B4E019)))


@njit(inline="always", error_model="numpy")
def uniform01(key, idx):
    """Uniform double in [0, 1) with 53 random bits."""
    return float64(draw(key, idx) >> uint64(11)) * (1.0 / 9007199254740992.0)


def ziggurat_tables():
    """Tables ``(ki, wi, fi)`` of the 256-layer ziggurat for the standard normal density (unnormalised).

    Layer edges x_i: x_1 = r, f(x_{i+1}) = f(x_i) + v / x_i, with r = 3.6541528853610088 and layer area
    v = 0.00492867323399 (Marsaglia & Tsang 2000). Layer 0 is the base strip with the tail beyond r.
    ``ki[i]`` is the 52-bit threshold below which a draw lies inside the rectangle, ``wi[i]`` the scale from
    52-bit integers to x, ``fi[i] = f(x_i)``.
    """
    n = 256
    r = 3.6541528853610088
    v = 0.00492867323399
    f = lambda x: math.exp(-0.5 * x * x)  # noqa: E731
    x = np.zeros(n + 1)
    x[0] = v / f(r)
    x[1] = r
    for i in range(1, n - 1):
        x[i + 1] = math.sqrt(-2.0 * math.log(f(x[i]) + v / x[i]))
    x[n] = 0.0
    m = 2.0**52
    ki = np.zeros(n, np.uint64)
    wi = np.zeros(n)
    fi = np.zeros(n + 1)
    for i in range(n):
        ki[i] = np.uint64(math.floor(m * x[i + 1] / x[i]))
        wi[i] = x[i] / m
    for i in range(1, n + 1):
        fi[i] = f(x[i])
    fi[0] = f(r)  # unused: layer 0 falls back to the exact tail sampler
    return ki, wi, fi


@njit(error_model="numpy")
def _zig_slow(key, idx, i, x, wi, fi):
    """Rejection part of the ziggurat: tail (layer 0) or wedge (other layers). Returns (x, accepted, idx)."""
    if i == 0:
        r = 3.6541528853610088
        while True:
            u1 = 1.0 - uniform01(key, idx)
            u2 = 1.0 - uniform01(key, idx + 1)
            idx += 2
            xx = -math.log(u1) / r
            yy = -math.log(u2)
            if 2.0 * yy > xx * xx:
                return (r + xx) if x > 0 else -(r + xx), True, idx
    u = uniform01(key, idx)
    idx += 1
    ax = abs(x)
    # wedge between f(x_i) (lower, wider layer edge) and f(x_{i+1})
    y = fi[i] + u * (fi[i + 1] - fi[i])
    if y < math.exp(-0.5 * ax * ax):
        return x, True, idx
    return x, False, idx


@njit(forceinline=True, error_model="numpy")
def normal(key, idx, ki, wi, fi):
    """A standard normal deviate from stream ``key`` starting at word ``idx``; returns (z, next idx)."""
    while True:
        b = draw(key, idx)
        idx += 1
        i = int64(b & uint64(0xFF))
        rabs = b >> uint64(12)
        x = float64(rabs) * wi[i]
        if (b >> uint64(8)) & uint64(1):
            x = -x
        if rabs < ki[i]:
            return x, idx
        z, ok, idx = _zig_slow(key, idx, i, x, wi, fi)
        if ok:
            return z, idx


_M64 = (1 << 64) - 1


def _mix64_py(z: int) -> int:
    z &= _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def sub_key_py(key, tag) -> np.uint64:
    """Pure-Python :func:`sub_key` (same value) returning ``numpy.uint64``, for host-side key derivation."""
    return np.uint64(_mix64_py(int(key) ^ _mix64_py(int(tag) + 0x632BE59BD9B4E019)))


# ------------------------------------------------------------------------------------------------------------
# branch-free deviates for vectorised loops (periphery): one 64-bit word -> two normals or one uniform
@intrinsic
def clz64(typingctx, x):
    """Number of leading zero bits of a uint64 (LLVM ``ctlz``; one instruction with LZCNT)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        from llvmlite import ir

        return builder.ctlz(args[0], ir.Constant(ir.IntType(1), 0))

    return sig, codegen


@njit(inline="always", error_model="numpy")
def normal_pair32(h):
    """Two independent standard normal float32 deviates from the 64-bit word ``h`` (Box-Muller).

    ``u1 = k 2^-33`` with ``k`` the top 33 bits of ``h`` made odd (so ``0 < u1 < 1``; the radius
    ``sqrt(-2 ln u1)`` reaches 6.76, i.e. tails beyond 6.76 sigma, probability 1.4e-11, are cut), angle from
    the low 24 bits. ``ln`` (atanh series after an exact power-of-two reduction), ``sin`` and ``cos``
    (Taylor series on [-pi/2, pi/2], half angle) are polynomials with no branches, so loops over elements
    vectorise; their float32 errors (< 1e-6 relative) are far below the float32 resolution of the
    outputs they perturb. The pair is exactly independent normal in the limit of exact arithmetic.
    """
    k = (h >> uint64(31)) | uint64(1)
    lz = clz64(k)
    m = float32((k << lz) >> uint64(40)) * float32(5.960464477539063e-08)  # top 24 bits: [0.5, 1)
    e = float32(int64(31) - int64(lz))
    sm = m < float32(0.70710677)
    m = m * float32(2.0) if sm else m
    e = e - float32(1.0) if sm else e
    s = (m - float32(1.0)) / (m + float32(1.0))
    s2 = s * s
    p = float32(1.0 / 9.0)
    p = p * s2 + float32(1.0 / 7.0)
    p = p * s2 + float32(1.0 / 5.0)
    p = p * s2 + float32(1.0 / 3.0)
    p = p * s2 + float32(1.0)
    lg = float32(2.0) * s * p + e * float32(0.6931471805599453)
    r = np.sqrt(float32(-2.0) * lg)
    x = (float32(h & uint64(0xFFFFFF)) * float32(5.960464477539063e-08) - float32(0.5)) * float32(math.pi)
    x2 = x * x
    sn = float32(-1.0 / 39916800.0)
    sn = sn * x2 + float32(1.0 / 362880.0)
    sn = sn * x2 - float32(1.0 / 5040.0)
    sn = sn * x2 + float32(1.0 / 120.0)
    sn = sn * x2 - float32(1.0 / 6.0)
    sn = x + x * x2 * sn
    cs = float32(1.0 / 479001600.0)
    cs = cs * x2 - float32(1.0 / 3628800.0)
    cs = cs * x2 + float32(1.0 / 40320.0)
    cs = cs * x2 - float32(1.0 / 720.0)
    cs = cs * x2 + float32(1.0 / 24.0)
    cs = cs * x2 - float32(0.5)
    cs = float32(1.0) + x2 * cs
    return r * (cs * cs - sn * sn), r * (float32(2.0) * sn * cs)
