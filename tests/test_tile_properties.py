"""Property-based tests (hypothesis) of the tile API's argument checks (issue 20).

Random shapes, dtypes, NaN/inf, complex numbers, strings, objects and learning rates go into ``forward``,
``backward``, ``update`` and ``set_weights`` of every tile kind. An oracle written independently of
``crossbar_sim.validation`` says whether an argument is valid; then a valid call must succeed with a result of
the right shape, finite and inside the device bounds, and an invalid one must raise one of our errors
(:class:`~crossbar_sim.errors.SimulatorError`) with a one-line message, never another exception type.

The examples are derandomised (the same cases on every run, as every other test here) and not stored.
"""
import math
import numbers

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crossbar_sim import AnalogTile, SimulatorError
from crossbar_sim.tiles.buffered import BufferedTransferTile
from crossbar_sim.tiles.onesided import OneSidedTile
from crossbar_sim.tiles.tiki_taka import TikiTakaTile

OUT, IN = 3, 4
F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).tiny)
KINDS = (AnalogTile, OneSidedTile, TikiTakaTile, BufferedTransferTile)
#: derandomised, no example database; a few hundred cases per property keep the file at a few seconds
SETTINGS = settings(max_examples=150, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int64, np.uint8, np.bool_, np.complex64,
          np.complex128, np.dtype("<U3"), np.dtype("datetime64[s]"), np.dtype(object)]


def _elements(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":  # NaN, inf, huge and tiny values, at the dtype's own width
        return st.floats(allow_nan=True, allow_infinity=True, width=min(64, 8 * dtype.itemsize))
    if dtype.kind == "O":
        return st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.none(),
                         st.text(max_size=2), st.complex_numbers(max_magnitude=10))
    return None  # hypothesis's default elements for the dtype


@st.composite
def arrays_for(draw, size):
    """An array whose last axis is often ``size`` (so that many cases reach the value checks)."""
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(st.one_of(st.just((size,)), st.tuples(st.integers(0, 3), st.just(size)),
                           hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)))
    return draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))


def inputs(size):
    """Arrays, nested lists (ragged too), strings, bytes, None, dicts and scalars."""
    lists = st.lists(st.one_of(st.floats(allow_nan=True), st.integers(-3, 3), st.text(max_size=1)),
                     min_size=0, max_size=size + 1)
    return st.one_of(arrays_for(size), lists, st.lists(lists, max_size=3), st.text(max_size=4), st.binary(max_size=4),
                     st.none(), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
                     st.floats(allow_nan=True), st.integers(-3, 3), st.complex_numbers(max_magnitude=3))


def _valid(size):
    """A valid batch of two samples (a third of them with values up to 1e3, the rest up to 1)."""
    small = st.floats(-1, 1, width=32)
    return hnp.arrays(np.float32, (2, size), elements=st.one_of(small, small, st.floats(-1e3, 1e3, width=32)))


def _mostly_valid(size):
    """Two cases in three a valid batch (one_of would flatten into the many branches of :func:`inputs`)."""
    return st.integers(0, 2).flatmap(lambda i: _valid(size) if i else inputs(size))


LRS = st.one_of(st.floats(0, 1), st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**1100, 2**1100),
                st.booleans(), st.text(max_size=3), st.none(), st.complex_numbers(max_magnitude=3),
                st.just(np.float32(0.05)), st.just(np.int64(0)))


# ------------------------------------------------------------------ the oracle (independent of validation.py)
def _as_real(a):
    """A float32 array of ``a``, or None if ``a`` is not an array of finite real numbers within float32."""
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError):
        return None
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (ValueError, TypeError):
            return None
    if arr.dtype.kind not in "biuf":
        return None
    with np.errstate(all="ignore"):
        f = arr.astype(np.float32)
    return f if np.all(np.isfinite(f)) else None


def valid_batch(a, size):
    """``(batch, is_1d)`` of a valid input of ``size`` columns, else None."""
    f = _as_real(a)
    if f is None or f.ndim not in (1, 2) or f.shape[-1] != size:
        return None
    return (1 if f.ndim == 1 else f.shape[0]), f.ndim == 1


def valid_lr(lr):
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        return False
    try:
        v = float(lr)
    except OverflowError:
        return False
    return math.isfinite(v) and 0.0 <= v <= F32_MAX


def _our_error(call):
    """Run ``call``; return the SimulatorError it raised (a one-line message) or None; anything else fails."""
    try:
        call()
    except SimulatorError as exc:
        assert "\n" not in str(exc), repr(str(exc))
        assert str(exc), "an empty message"
        event(f"refused: {type(exc).__name__}")  # --hypothesis-show-statistics counts the outcomes
        return exc
    event("accepted")
    return None


def _check_weights(tile):
    w = tile.read_weights()
    assert w.shape == (OUT, IN) and w.dtype == np.float32 and np.all(np.isfinite(w))
    if isinstance(tile, (AnalogTile, OneSidedTile)):
        assert np.all(w >= tile.w_min_bound - 1e-6) and np.all(w <= tile.w_max_bound + 1e-6)


# ------------------------------------------------------------------ properties
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
@SETTINGS
@given(data=st.data())
def test_mvm_is_correct_or_our_error(kind, direction, data):
    tile = kind(OUT, IN, seed=1)
    n_in, n_out = (IN, OUT) if direction == "forward" else (OUT, IN)
    x = data.draw(inputs(n_in), label="x")
    out = []
    err = _our_error(lambda: out.append(getattr(tile, direction)(x)))
    expect = valid_batch(x, n_in)
    if expect is None:
        assert err is not None, f"accepted an invalid input {x!r}"
        return
    assert err is None, f"refused a valid input {x!r}: {err}"
    y = out[0]
    batch, one_d = expect
    assert y.shape == ((n_out,) if one_d else (batch, n_out)) and y.dtype == np.float32 and np.all(np.isfinite(y))


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
@SETTINGS
@given(x=_mostly_valid(IN), d=_mostly_valid(OUT), lr=st.integers(0, 1).flatmap(lambda i: [st.floats(0, 1), LRS][i]))
def test_update_is_correct_or_our_error(kind, x, d, lr):
    tile = kind(OUT, IN, seed=1)
    err = _our_error(lambda: tile.update(x, d, lr))
    ex, ed = valid_batch(x, IN), valid_batch(d, OUT)
    valid = ex is not None and ed is not None and ex[0] == ed[0] and valid_lr(lr)
    if not valid:
        assert err is not None, f"accepted an invalid update x={x!r} d={d!r} lr={lr!r}"
        return
    assert err is None, f"refused a valid update x={x!r} d={d!r} lr={lr!r}: {err}"
    _check_weights(tile)


@pytest.mark.parametrize("kind", (AnalogTile, OneSidedTile), ids=lambda k: k.__name__)
@SETTINGS
@given(g=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.floats(1e-6, 1e-2),
                   st.integers(-3, 3), st.text(max_size=2), st.booleans()),
       up=st.one_of(st.none(), st.text(max_size=3), st.integers(), st.just({"desired_bl": 1})))
def test_update_options_are_correct_or_our_error(kind, g, up):
    tile = kind(OUT, IN, seed=1)
    err = _our_error(lambda: tile.update(np.ones(IN), np.ones(OUT), 0.1, granularity=g, update=up))
    g_ok = g is None or (not isinstance(g, bool) and isinstance(g, numbers.Real) and math.isfinite(g)
                         and F32_TINY <= g <= F32_MAX)
    if not (g_ok and up is None):
        assert err is not None, f"accepted granularity={g!r} update={up!r}"
        return
    assert err is None, err
    if g is not None and g <= 0.1 / 31:
        # lr |x| |d| / g >= BL: update management saturates every probability, so every coincidence pulses
        assert tile.counters["n_pulses"] > 0, "a valid granularity must let the update pulse"
    _check_weights(tile)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
@SETTINGS
@given(w=st.one_of(inputs(IN), hnp.arrays(st.sampled_from(DTYPES), (OUT, IN)),
                   hnp.arrays(np.float64, (OUT, IN), elements=st.floats(-2, 2))))
def test_set_weights_is_correct_or_our_error(kind, w):
    tile = kind(OUT, IN, seed=1)
    err = _our_error(lambda: tile.set_weights(w))
    f = _as_real(w)
    if f is None or f.shape != (OUT, IN):
        assert err is not None, f"accepted invalid weights {w!r}"
        return
    assert err is None, f"refused valid weights {w!r}: {err}"
    _check_weights(tile)


_STATE = AnalogTile(OUT, IN, seed=2).get_state()
_JUNK = st.one_of(st.none(), st.integers(-2, 2), st.text(max_size=3), st.lists(st.integers(), max_size=3),
                  st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
                  hnp.arrays(np.float32, hnp.array_shapes(max_dims=3, max_side=4)))


@SETTINGS
@given(drop=st.sets(st.sampled_from(sorted(_STATE))),
       damage=st.dictionaries(st.sampled_from(sorted(_STATE)), _JUNK, max_size=2))
def test_damaged_states_are_our_error_and_change_nothing(drop, damage):
    tile = AnalogTile(OUT, IN, seed=1)
    state = {k: v for k, v in _STATE.items() if k not in drop}
    state.update(damage)
    before = tile.get_state()
    err = _our_error(lambda: tile.set_state(state))
    if err is not None:  # refused: the tile is as it was
        after = tile.get_state()
        assert np.array_equal(before["weights"], after["weights"]) and before["rng"] == after["rng"]
        assert before["config"] == after["config"]
    else:
        _check_weights(tile)
    rebuilt = []
    if _our_error(lambda: rebuilt.append(AnalogTile.from_state(state))) is None:
        _check_weights(rebuilt[0])
