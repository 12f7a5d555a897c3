"""Issue 20: the tile API answers every bad argument with one of our errors, one line naming the parameter.

Each test here failed before the fix: complex input lost its imaginary part silently, strings raised a bare
NumPy error, ``granularity`` 0/negative/NaN applied no pulses, and ``update='bogus'``, ``io='bogus'``, a partial
``set_state`` dict and ``from_state({})`` raised AttributeError/KeyError.
"""
import numpy as np
import pytest

from crossbar_sim import AnalogTile, ConfigError, FormatError, ShapeError, TileConfig
from crossbar_sim.tiles.buffered import BufferedTransferTile, ChoppedTransfer, DynamicTransfer
from crossbar_sim.tiles.onesided import OneSidedTile
from crossbar_sim.tiles.tiki_taka import CompoundTileConfig, TikiTakaTile

KINDS = {
    "AnalogTile": lambda: AnalogTile(4, 3, seed=1),
    "OneSidedTile": lambda: OneSidedTile(4, 3, seed=1),
    "TikiTakaTile": lambda: TikiTakaTile(4, 3, seed=1),
    "BufferedTransferTile": lambda: BufferedTransferTile(4, 3, seed=1),
    "AGAD": lambda: BufferedTransferTile(4, 3, CompoundTileConfig(device=DynamicTransfer()), seed=1),
}


@pytest.fixture(params=list(KINDS))
def tile(request):
    return KINDS[request.param]()


def _one_line(exc_info):
    assert "\n" not in str(exc_info.value)


def test_complex_input_is_refused_not_cast(tile):
    x = np.ones(3) * (1 + 1j)
    for call in (lambda: tile.forward(x), lambda: tile.update(x, np.ones(4), 0.1),
                 lambda: tile.backward(np.ones(4, np.complex64))):
        with pytest.raises(ConfigError, match=r"must hold real numbers \(bool, int or float\)\. Got dtype complex"):
            call()
    with pytest.raises(ConfigError, match=r"'w' must hold real numbers"):
        tile.set_weights(np.ones((4, 3), complex))


@pytest.mark.parametrize("bad", ["abc", np.array(["a", "b", "c"]), [1, "a", 2], b"xyz",
                                 np.array(["2020-01-01"] * 3, "datetime64[D]"), [object(), 1, 2]])
def test_strings_dates_objects_are_refused(tile, bad):
    with pytest.raises(ConfigError, match=r"'x' must hold real numbers") as e:
        tile.forward(bad)
    _one_line(e)


def test_ragged_lists_are_a_shape_error(tile):
    with pytest.raises(ShapeError, match=r"'x' must be a rectangular array of numbers"):
        tile.forward([[1, 2, 3], [1, 2]])


def test_values_beyond_float32_are_refused_not_made_inf(tile):
    with pytest.raises(ConfigError, match=r"'x' has values beyond the float32 range .* Got 1e\+300"):
        tile.forward(np.array([1e300, 0.0, 0.0]))


def test_real_dtypes_and_lists_are_accepted(tile):
    ref = tile.forward(np.array([1.0, 0.0, 1.0], np.float32), io=tile.config.forward)
    assert ref.shape == (4,)
    for x in (np.array([1, 0, 1], np.int8), np.array([True, False, True]), [1.0, 0, 1],
              np.array([1, 0, 1], np.uint16), np.array([1, 0, 1], np.float16)):
        assert tile.forward(x).shape == (4,)


@pytest.mark.parametrize("g", [0, 0.0, -1e-3, float("nan"), float("inf"), "0.01", None])
def test_granularity_must_be_positive(g):
    for t in (AnalogTile(4, 3, seed=1), OneSidedTile(4, 3, seed=1)):
        before = t.hidden_weights()
        if g is None:  # the tile's own granularity: pulses are applied
            t.update(np.ones(3), np.ones(4), 0.1, granularity=g)
            assert not np.array_equal(before, t.hidden_weights())
            continue
        with pytest.raises(ConfigError, match=rf"The 'granularity' parameter of {type(t).__name__}.update must "
                                              r"be a float in \[1.17549e-38, 3.40282e\+38\]"):
            t.update(np.ones(3), np.ones(4), 0.1, granularity=g)
        assert np.array_equal(before, t.hidden_weights())


def test_explicit_granularity_applies_pulses():
    t = AnalogTile(4, 3, seed=1)
    t.update(np.ones(3), np.ones(4), 0.1, granularity=t.granularity)
    assert t.counters["n_pulses"] > 0


@pytest.mark.parametrize("kind", ["AnalogTile", "OneSidedTile"])
def test_update_parameters_are_checked(kind):
    t = KINDS[kind]()
    with pytest.raises(ConfigError, match=rf"The 'update' parameter of {kind}.update must be an "
                                          r"UpdateParameters or None. Got 'bogus'"):
        t.update(np.ones(3), np.ones(4), 0.1, update="bogus")
    with pytest.raises(ConfigError, match="'update' parameter"):
        t.update(np.ones(3), np.ones(4), 0.1, update=t.config.forward)  # an IOParameters is not one


def test_io_parameters_are_checked(tile):
    name = type(tile).__name__
    with pytest.raises(ConfigError, match=rf"The 'io' parameter of {name}.forward must be an IOParameters or "
                                          r"None. Got 'bogus'"):
        tile.forward(np.ones(3), io="bogus")
    with pytest.raises(ConfigError, match=rf"The 'io' parameter of {name}.backward"):
        tile.backward(np.ones(4), io={"is_perfect": True})


def test_lr_beyond_float32_is_refused():
    with pytest.raises(ConfigError, match=r"The 'lr' parameter of AnalogTile.update must be a float in \[0, "):
        AnalogTile(4, 3, seed=1).update(np.ones(3), np.ones(4), 1e300)


@pytest.mark.parametrize("key", ["weights", "rng", "counters", "device_params", "config", "shape"])
def test_partial_analog_state_is_a_format_error_and_changes_nothing(key):
    t = AnalogTile(4, 3, seed=1)
    st = AnalogTile(4, 3, seed=2).get_state()
    del st[key]
    before = t.get_state()
    with pytest.raises(FormatError, match=rf"The tile state given to AnalogTile.set_state lacks '{key}'") as e:
        t.set_state(st)
    _one_line(e)
    after = t.get_state()
    assert np.array_equal(before["weights"], after["weights"]) and before["rng"] == after["rng"]


def test_partial_state_of_every_kind(tile):
    name = type(tile).__name__
    st = tile.get_state()
    for key in [k for k in st if k not in ("kind", "seed_entropy")]:
        part = {k: v for k, v in st.items() if k != key}
        with pytest.raises(FormatError, match=rf"The tile state given to {name}.set_state lacks '{key}'"):
            tile.set_state(part)
    tile.set_state(st)  # the whole state still restores


def test_damaged_nested_state_rolls_back_the_compound():
    t = TikiTakaTile(4, 3, seed=1)
    t.update(np.ones(3), np.ones(4), 0.1)
    st = TikiTakaTile(4, 3, seed=2).get_state()
    st["C"] = dict(st["C"], weights=np.zeros((3, 4)))  # A is fine, C's weights have the wrong shape
    before = t.get_state()
    with pytest.raises(FormatError, match=r"'weights' of the tile state given to AnalogTile.set_state must have "
                                          r"shape \(4, 3\)"):
        t.set_state(st)
    after = t.get_state()
    assert np.array_equal(before["A"]["weights"], after["A"]["weights"])
    assert before["A"]["rng"] == after["A"]["rng"]


@pytest.mark.parametrize("state, match", [
    ({}, r"AnalogTile.from_state lacks 'shape', 'config'"),
    (None, r"AnalogTile.from_state needs a tile state \(the dict get_state\(\) returns\)\. Got NoneType"),
    ("{}", r"needs a tile state"),
    ({"shape": [4], "config": "{}"}, r"The 'shape' of the tile state .* must be \[out_size, in_size\]"),
    ({"shape": [4, 3], "config": "not json"}, r"The 'config' of the tile state .* is not a valid config"),
    ({"shape": [4, 3], "config": CompoundTileConfig(), "kind": "TikiTakaTile"},
     r"AnalogTile.from_state needs the state of a AnalogTile. Got a 'TikiTakaTile' state"),
])
def test_from_state_of_foreign_dicts(state, match):
    with pytest.raises(FormatError, match=match) as e:
        AnalogTile.from_state(state)
    _one_line(e)


def test_from_state_round_trips_every_kind(tile):
    tile.update(np.ones((2, 3)), np.ones((2, 4)), 0.05)
    st = tile.get_state()
    back = type(tile).from_state(st)
    x = np.linspace(-1, 1, 3)
    assert np.array_equal(back.forward(x), tile.forward(x))


def test_state_of_another_compound_is_refused():
    chopped = BufferedTransferTile(4, 3, CompoundTileConfig(device=ChoppedTransfer()), seed=1)
    agad = KINDS["AGAD"]()
    with pytest.raises(FormatError, match=r"(lacks 'running_mean'|is for a ChoppedTransfer compound)"):
        agad.set_state(chopped.get_state())


@pytest.mark.parametrize("field, value, match", [
    ("rng", {"update": ["1", 0]}, r"'rng' of the tile state .* must map the streams"),
    ("rng", "x", r"'rng' of the tile state"),
    ("counters", [1, 2], r"'counters' of the tile state .* must map counter names to ints"),
    ("pulse_counts", np.zeros((4, 3)), r"'pulse_counts' of the tile state .* must have shape \(4, 3, 2\)"),
    ("weights", "abc", r"'weights' of the tile state .* is not a float32 array"),
])
def test_damaged_fields_of_a_state(field, value, match):
    t = AnalogTile(4, 3, seed=1)
    st = t.get_state()
    st[field] = value
    with pytest.raises(FormatError, match=match):
        t.set_state(st)


def test_reset_arguments_are_checked():
    t = AnalogTile(4, 3, TileConfig(), seed=1)
    with pytest.raises(ConfigError, match=r"'cols' must be column indices"):
        t.reset_columns([0.5])
    with pytest.raises(ConfigError, match=r"The 'reset_prob' parameter of AnalogTile.reset_columns"):
        t.reset_columns([0], reset_prob=2.0)
    with pytest.raises(ShapeError, match=r"'mask' must have shape \(4, 3\)"):
        t.reset_devices(np.ones((3, 4), bool))
