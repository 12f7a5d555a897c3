"""The one-sided pair (PCM): shared-train split of the update, refresh on schedule, bounds, one-sidedness,
bit-identical resume, bad input, and the pair in least squares, an MNIST-sized layer, Tiki-Taka and the CLI."""
import numpy as np
import pytest

from crossbar_sim import (AnalogTile, ConfigError, IOParameters, LeastSquaresTask, ShapeError, TileConfig,
                          TrainConfig, UpdateParameters, train)
from crossbar_sim.tiles.tiki_taka import TikiTakaTile
from crossbar_sim.device_models import ConstantStepDevice, SoftBoundsDevice, get_preset
from crossbar_sim.tiles.onesided import OneSidedTile, OneSidedTileConfig, OneSidedUnitCell, mirrored_devices
from crossbar_sim.engine.store import read_tree, tile_from_state, write_tree
from crossbar_sim.least_squares.training import Trainer

PERFECT = IOParameters(is_perfect=True)


def _linear_unit(dw_min=0.02, **kw):
    """A noise-free one-directional constant-step device on [0, 1] that resets exactly to 0."""
    base = dict(dw_min=dw_min, dw_min_std=0.0, dw_min_dtod=0.0, up_down_dtod=0.0, w_max=1.0, w_min=0.0,
                w_max_dtod=0.0, w_min_dtod=0.0, reset=0.0, reset_std=0.0)
    base.update(kw)
    return ConstantStepDevice(**base)


def _pair(cell, shape=(6, 5), seed=0, update=None):
    cfg = OneSidedTileConfig(device=cell, update=update or UpdateParameters(), forward=PERFECT, backward=PERFECT)
    return OneSidedTile(*shape, cfg, seed=seed)


def _samples(rng, n, out_size, in_size, scale=0.5):
    X = rng.normal(0, scale, (n, in_size)).astype(np.float32)
    D = rng.normal(0, scale, (n, out_size)).astype(np.float32)
    return X, D


def test_update_is_the_coincidences_of_one_tile_split_by_sign():
    """With the pair's update stream and granularity, a single tile receives exactly the pulses of the pair:
    its up pulses all on g_plus, its down pulses (as up pulses) all on g_minus; far from the bounds of a
    constant-step device, g_plus - g_minus moves as the single tile."""
    dev = ConstantStepDevice(dw_min=0.01, dw_min_std=0.0, dw_min_dtod=0.0, up_down_dtod=0.0, w_max=10.0,
                             w_min=-10.0, w_max_dtod=0.0, w_min_dtod=0.0)
    pair = _pair(OneSidedUnitCell(unit_device=dev))
    one = AnalogTile(6, 5, TileConfig(device=dev), seed=4)
    one._keys["update"] = pair._keys["update"]  # the same trains
    X, D = _samples(np.random.default_rng(2), 30, 6, 5)
    w_pair = pair.hidden_weights()
    one.set_weights(w_pair)
    pair.update(X, D, 0.1)
    one.update(X, D, 0.1, granularity=pair.granularity)
    np.testing.assert_allclose(pair.hidden_weights(), one.hidden_weights(), atol=1e-5)
    np.testing.assert_array_equal(pair.plus.pulse_counts[..., 0], one.pulse_counts[..., 0])
    np.testing.assert_array_equal(pair.minus.pulse_counts[..., 0], one.pulse_counts[..., 1])
    assert pair.plus.pulse_counts[..., 1].sum() == pair.minus.pulse_counts[..., 1].sum() == 0
    c = pair.counters
    assert c["n_pulses"] == one.counters["n_pulses"] > 0 and c["n_pulses_down"] == 0
    assert c["n_updates"] == 30 and c["n_pulse_cycles"] == one.counters["n_pulse_cycles"]  # a shared cycle counts once


def test_refresh_on_schedule_resets_and_rewrites_within_one_pulse():
    """Pairs whose larger device is above 0.75 w_max and smaller above 0.25 w_max are refreshed after every
    second update call (refresh_every=2, in mini-batches), and only then: both devices reset to 0, the
    difference written back onto the larger side. Exact reads and MeanCount writes of a constant step of
    0.05: the weight is preserved to within one pulse (0.05); untouched pairs stay bit for bit."""
    cell = OneSidedUnitCell(unit_device=_linear_unit(dw_min=0.05), refresh_every=2, refresh_forward=PERFECT,
                            refresh_update=UpdateParameters(pulse_type="mean_count"))
    pair = _pair(cell, (8, 6))
    rng = np.random.default_rng(1)
    pair.plus.set_weights(rng.uniform(0, 1, pair.shape))
    pair.minus.set_weights(rng.uniform(0, 1, pair.shape))
    gp, gm, w0 = pair.plus.read_weights(), pair.minus.read_weights(), pair.read_weights()
    due = (np.maximum(gp, gm) > 0.75) & (np.minimum(gp, gm) > 0.25)
    assert 5 <= due.sum() <= 40  # the draw has both kinds of pairs
    x, d = np.zeros(6, np.float32), np.zeros(8, np.float32)  # an update without pulses: only the schedule acts
    pair.update(x, d, 0.1)
    assert pair.counters["n_refresh_checks"] == 0 and np.array_equal(pair.read_weights(), w0)
    pair.update(x, d, 0.1)
    c = pair.counters
    assert c["n_refresh_checks"] == 1 and c["n_refreshed"] == due.sum()
    gp1, gm1, w1 = pair.plus.read_weights(), pair.minus.read_weights(), pair.read_weights()
    assert np.all(np.abs(w1 - w0)[due] <= 0.05 + 1e-6)
    assert np.all(np.minimum(gp1, gm1)[due] == 0.0)  # the losing side is reset
    assert np.all(np.maximum(gp1, gm1)[due] < 0.75)  # both end low: only |w| is left
    assert np.array_equal(gp1[~due], gp[~due]) and np.array_equal(gm1[~due], gm[~due])
    assert pair.plus.pulse_counts[..., 1].sum() == pair.minus.pulse_counts[..., 1].sum() == 0
    assert c["n_refresh_writes"] == np.count_nonzero((due & (gp > gm)).any(0)) + np.count_nonzero((due & (gp <= gm)).any(0))


def test_refresh_period_in_samples_splits_batches():
    """units_in_mbatch=False: refresh after every refresh_every samples, mid-batch (aihwkit counts vectors);
    True: after every refresh_every batches of the current call's size."""
    for units, every, batches, expected in ((False, 3, [5, 5], 3), (True, 2, [5, 5, 5, 5, 5], 2), (True, 0, [5], 0)):
        cell = OneSidedUnitCell(unit_device=_linear_unit(), refresh_every=every, units_in_mbatch=units)
        pair = _pair(cell, (3, 4))
        for b in batches:
            pair.update(np.zeros((b, 4)), np.zeros((b, 3)), 0.1)
        assert pair.counters["n_refresh_checks"] == expected, (units, every)
        assert pair.samples_seen == sum(batches)


def test_pcm_pairs_driven_to_saturation_are_refreshed():
    """Updates of alternating sign make both devices of the PCM preset climb. Without refresh most pairs end
    saturated; with the preset's refresh (every mini-batch) almost none do. No device ever receives a down
    pulse and every device stays within its bounds after every update."""
    x = np.ones(8, np.float32)
    saturated = {}
    for every in (0, 1):
        pair = OneSidedTile(8, 8, OneSidedTileConfig(device=get_preset("PCM", refresh_every=every)), seed=0)
        pair.set_weights(np.random.default_rng(1).uniform(-0.3, 0.3, pair.shape))
        for k in range(40):
            pair.update(x, np.full(8, 0.2 if k % 2 else -0.2, np.float32), 0.5)
            for a in pair.tiles.values():
                w = a.hidden_weights()
                assert np.all(w >= a.w_min_bound) and np.all(w <= a.w_max_bound)
            w = pair.hidden_weights()
            assert np.all(w >= pair.w_min_bound) and np.all(w <= pair.w_max_bound)
        gp, gm = pair.plus.read_weights(), pair.minus.read_weights()
        saturated[every] = np.mean((np.maximum(gp, gm) > 1.5) & (np.minimum(gp, gm) > 0.5))
        assert pair.counters["n_refresh_checks"] == 40 * every
        assert pair.counters["n_pulses_down"] == 0 and pair.counters["n_pulses"] > 0
        assert pair.plus.pulse_counts[..., 1].sum() == pair.minus.pulse_counts[..., 1].sum() == 0
        assert (pair.counters["n_refreshed"] > 0) == bool(every)
    assert saturated[0] > 0.5 and saturated[1] < 0.1


def test_set_weights_programs_the_positive_and_negative_parts():
    pair = OneSidedTile(4, 5, OneSidedTileConfig(device=get_preset("PCM")), seed=2)
    w = np.random.default_rng(0).uniform(-3, 3, pair.shape).astype(np.float32)
    pair.set_weights(w)
    gp, gm = pair.plus.read_weights(), pair.minus.read_weights()
    np.testing.assert_array_equal(gp, np.minimum(np.maximum(w, 0), pair.plus.w_max_bound))
    np.testing.assert_array_equal(gm, np.minimum(np.maximum(-w, 0), pair.minus.w_max_bound))
    np.testing.assert_array_equal(pair.read_weights(), gp - gm)
    assert np.all(pair.read_weights() >= pair.w_min_bound) and np.all(pair.read_weights() <= pair.w_max_bound)
    assert np.any(np.abs(w) > 2.3) and np.all(np.abs(pair.read_weights()) <= 2.0 * 1.5)  # clipped at ~2 per device


def _drive(tile, rng, n):
    for _ in range(n):
        X, D = _samples(rng, 4, tile.out_size, tile.in_size)
        tile.forward(X)
        tile.backward(D)
        tile.update(X, D, 0.3)


@pytest.mark.parametrize("kind", ["pair", "tiki_taka"])
def test_stopped_and_resumed_pair_continues_bit_identically(kind):
    """get_state -> HDF5 tree (write_tree/read_tree) -> a fresh tile: the continuation equals the uninterrupted
    run bit for bit (weights, pulse counts, counters), refreshes and periphery noise included."""
    import h5py

    if kind == "pair":
        def make():
            return OneSidedTile(5, 7, OneSidedTileConfig(device=get_preset("PCM")), seed=11)
    else:
        def make():
            cfg = TrainConfig(algorithm="tiki_taka", device=get_preset("PCM"))
            from crossbar_sim.least_squares.training import build_model

            return build_model((5, 7), cfg, np.random.SeedSequence(11))
    a = make()
    steps = 15 if kind == "pair" else 30  # Tiki-Taka's A pair saturates more slowly (fast_lr on A)
    _drive(a, np.random.default_rng(3), steps)
    pair = a if kind == "pair" else a.a
    refreshed_before = pair.counters["n_refreshed"]
    state = a.get_state()
    with h5py.File("mem.h5", "w", driver="core", backing_store=False) as f:
        write_tree(f.create_group("s"), state)
        b = tile_from_state(read_tree(f["s"]))
    _drive(a, np.random.default_rng(4), steps)
    _drive(b, np.random.default_rng(4), steps)
    assert repr(a) == repr(b)
    np.testing.assert_array_equal(a.read_weights(), b.read_weights())
    pa = a.tiles if kind == "pair" else {**{f"A{k}": v for k, v in a.a.tiles.items()},
                                          **{f"C{k}": v for k, v in a.c.tiles.items()}}
    pb = b.tiles if kind == "pair" else {**{f"A{k}": v for k, v in b.a.tiles.items()},
                                          **{f"C{k}": v for k, v in b.c.tiles.items()}}
    for k in pa:
        np.testing.assert_array_equal(pa[k].hidden_weights(), pb[k].hidden_weights())
        np.testing.assert_array_equal(pa[k].pulse_counts, pb[k].pulse_counts)
    assert a.counters == b.counters
    assert pair.counters["n_refreshed"] > refreshed_before  # the resumed stretch went through refreshes


def test_copy_inverted_mirrors_the_minus_device():
    """copy_inverted: g_plus is g_minus reflected (w -> -w): its up pulse is g_minus's down pulse."""
    dev = SoftBoundsDevice(dw_min=0.01, dw_min_std=0.0)
    pair = _pair(OneSidedUnitCell(unit_device=dev, copy_inverted=True))
    m, p = pair.minus.devices, pair.plus.devices
    np.testing.assert_array_equal(p.w_hi, -m.w_lo)
    np.testing.assert_array_equal(p.w_lo, -m.w_hi)
    # behaviour: down pulses on a tile with m's parameters from -v equal (negated) up pulses on the mirror from v
    cfg = TileConfig(device=dev, update=UpdateParameters(closed_form=False))
    orig, mirr = AnalogTile(6, 5, cfg, seed=1), AnalogTile(6, 5, cfg, seed=1)
    mirr.devices = mirrored_devices(orig.devices, 0.0)
    v = np.random.default_rng(0).uniform(-0.2, 0.2, orig.shape)
    orig.set_weights(-v)
    mirr.set_weights(v)
    X = np.ones((10, 5), np.float32)
    D = np.full((10, 6), 0.5, np.float32)
    orig.update(X, D, 0.05)   # d > 0, x > 0: down pulses
    mirr.update(X, -D, 0.05)  # the same trains as up pulses
    assert orig.counters["n_pulses_down"] == mirr.counters["n_pulses_up"] > 0
    np.testing.assert_allclose(mirr.hidden_weights(), -orig.hidden_weights(), atol=1e-6)


@pytest.mark.parametrize("ptype", ["none_with_device", "expected"])
def test_non_pulsed_updates_are_split_exactly(ptype):
    """Without pulse trains the split is done on the outer product: g_plus receives the positive part of every
    sample's -lr d x^T, g_minus the negative part."""
    dev = ConstantStepDevice(dw_min=0.001, dw_min_std=0.0, dw_min_dtod=0.0, up_down_dtod=0.0, w_max=10.0,
                             w_min=-10.0, w_max_dtod=0.0, w_min_dtod=0.0)
    pair = _pair(OneSidedUnitCell(unit_device=dev), update=UpdateParameters(pulse_type=ptype))
    X, D = _samples(np.random.default_rng(5), 12, 6, 5)
    gp0, gm0 = pair.plus.hidden_weights(), pair.minus.hidden_weights()
    pair.update(X, D, 0.1)
    dw = -0.1 * D[:, :, None] * X[:, None, :]  # per sample
    np.testing.assert_allclose(pair.plus.hidden_weights() - gp0, np.maximum(dw, 0).sum(0), atol=1e-5)
    np.testing.assert_allclose(pair.minus.hidden_weights() - gm0, np.maximum(-dw, 0).sum(0), atol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    ({"refresh_every": -1}, r"'refresh_every' parameter of OneSidedUnitCell must be an int in \[0, 2147483647\]"),
    ({"refresh_every": 1.5}, r"'refresh_every' parameter of OneSidedUnitCell must be an int"),
    ({"refresh_upper_thres": -0.1}, r"'refresh_upper_thres' parameter of OneSidedUnitCell must be a float in "
                                    r"\[0, inf\)"),
    ({"refresh_lower_thres": 0.8}, r"'refresh_lower_thres' parameter of OneSidedUnitCell must be a float in "
                                   r"\[0, 0.75\]"),
    ({"units_in_mbatch": 1}, r"'units_in_mbatch' parameter of OneSidedUnitCell must be a bool"),
    ({"refresh_forward": UpdateParameters()}, r"'refresh_forward' parameter of OneSidedUnitCell must be an IOParameters"),
    ({"refresh_update": PERFECT}, r"'refresh_update' parameter of OneSidedUnitCell must be an UpdateParameters"),
    ({"unit_device": "PCM"}, r"'unit_device' parameter of OneSidedUnitCell must be a device model"),
    ({"unit_device": SoftBoundsDevice(w_max=0.0)}, r"'unit_device' parameter of OneSidedUnitCell must have w_max > 0"),
    ({"unit_device": get_preset("PCMUnit"), "copy_inverted": True}, r"'copy_inverted' parameter of OneSidedUnitCell "
                                                                    r"needs a unit device with w_min < 0"),
])
def test_bad_unit_cell_parameters_are_rejected(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        OneSidedUnitCell(**kwargs)


def test_bad_tile_input_is_rejected():
    pair = OneSidedTile(3, 4, OneSidedTileConfig(device=get_preset("PCM")), seed=0)
    with pytest.raises(ConfigError, match=r"'config' parameter of OneSidedTile must be a OneSidedTileConfig"):
        OneSidedTile(3, 4, TileConfig())
    with pytest.raises(ConfigError, match=r"'device' parameter of OneSidedTileConfig must be a OneSidedUnitCell"):
        OneSidedTileConfig(device=SoftBoundsDevice())
    with pytest.raises(ShapeError, match=r"'x' and 'd' must have the same batch size"):
        pair.update(np.ones((2, 4)), np.ones((3, 3)), 0.1)
    with pytest.raises(ConfigError, match=r"'lr' parameter of OneSidedTile.update must be a float in "
                                          r"\[0, 3.40282e\+38\]"):
        pair.update(np.ones(4), np.ones(3), -0.1)
    with pytest.raises(ConfigError, match=r"'granularity' parameter of OneSidedTile.update must be a float in "
                                          r"\[1.17549e-38"):
        pair.update(np.ones(4), np.ones(3), 0.1, granularity=0.0)
    with pytest.raises(ShapeError, match=r"'w' must have shape \(3, 4\)"):
        pair.set_weights(np.zeros((4, 3)))
    with pytest.raises(ShapeError, match=r"'mask' must have shape \(3, 4\)"):
        pair.plus.reset_devices(np.zeros(3, bool))
    with pytest.raises(ConfigError, match=r"'device' parameter of TrainConfig must be a device model, a "
                                          r"OneSidedUnitCell or a VectorUnitCell"):
        TrainConfig(device="PCM")
    with pytest.raises(ConfigError, match=r"Unknown parameter\(s\) 'colour' for OneSidedUnitCell"):
        get_preset("PCM", colour=1)


def test_pair_in_a_least_squares_run_and_in_tiki_taka():
    """From the public API: analog SGD on the PCM pair learns (the single unit device cannot hold negative
    weights), Tiki-Taka builds its A and C as pairs; a stopped and resumed run equals the uninterrupted one."""
    task = LeastSquaresTask(in_size=20, n_samples=50)
    # six seeds: single runs on the pair are erratic (each open-loop refresh re-write is noisy), the mean is not
    # (seeds 0-5: the pair ends at 0.73 of its initial loss on average, the unit device at 0.85)
    ratio = {"PCM": [], "PCMUnit": []}
    tails = {"PCM": [], "PCMUnit": []}
    for seed in range(6):
        runs = {name: train(task, TrainConfig(algorithm="analog_sgd", device=get_preset(name), lr=0.02, steps=300,
                                              record_every=10), seed=seed) for name in ("PCM", "PCMUnit")}
        for name, r in runs.items():
            tails[name].append(r.metrics["loss"][-10:].mean())
            ratio[name].append(tails[name][-1] / r.metrics["loss"][0])
    assert runs["PCM"].tile_state["kind"] == "OneSidedTile" and runs["PCMUnit"].tile_state["kind"] == "AnalogTile"
    assert np.mean(ratio["PCM"]) < 0.8 and np.mean(tails["PCM"]) < 0.95 * np.mean(tails["PCMUnit"])
    w_star = task.build().W_star
    w = {name: r.snapshots[300]["W"] for name, r in runs.items()}
    assert w["PCMUnit"].min() >= 0.0 and w["PCM"].min() < -0.2  # only the pair holds negative weights
    assert np.mean(np.sign(w["PCM"]) == np.sign(w_star)) > 0.6
    tt = TrainConfig(algorithm="tiki_taka", device=get_preset("PCM"), lr=0.1, steps=40)
    full = Trainer(task, tt, seed=2)
    full.run()
    assert isinstance(full.model, TikiTakaTile) and all(isinstance(t, OneSidedTile) for t in full.model.tiles.values())
    assert full.model.a.counters["n_pulses"] > 0 and full.model.a.counters["n_pulses_down"] == 0
    part = Trainer(task, tt, seed=2)
    part.run(20)
    resumed = Trainer(task, tt, seed=2)
    resumed.load_state_dict(part.state_dict())
    resumed.run()
    np.testing.assert_array_equal(resumed.model.read_weights(), full.model.read_weights())
    assert resumed.rec["loss"] == full.rec["loss"]


def test_mnist_sized_layer_learns_with_refresh_and_saturates_without():
    """A 784 -> 10 softmax layer on PCM pairs (public nn API), MNIST-shaped binary inputs of 10 noisy templates,
    lr 0.5: with the preset's refresh it learns the task and no pair is left saturated; without refresh a large
    share of the pairs ends with both devices high (how far that costs accuracy varies with the seed)."""
    from crossbar_sim.nn import AnalogLinear
    from crossbar_sim.nn import functional as F

    rng = np.random.default_rng(0)
    templates = rng.random((10, 784)) < 0.2

    def make(n):
        y = rng.integers(0, 10, n)
        return (templates[y] ^ (rng.random((n, 784)) < 0.05)).astype(np.float32), y

    x_train, y_train = make(300)
    x_test, y_test = make(200)
    acc, saturated = {}, {}
    for every in (1, 0):
        tile = OneSidedTile(10, 784, OneSidedTileConfig(device=get_preset("PCM", refresh_every=every)), seed=1)
        layer = AnalogLinear(784, 10, tile, rng=np.random.default_rng(2))
        for _ in range(3):
            for b in range(0, 300, 10):
                _, dz, _ = F.nll_loss(layer.forward(x_train[b:b + 10]), y_train[b:b + 10])
                layer.backward(dz, need_dx=False)
                layer.step(0.5)
        layer.train(False)
        acc[every] = float(np.mean(layer.forward(x_test).argmax(1) == y_test))
        gp, gm = tile.plus.read_weights(), tile.minus.read_weights()
        saturated[every] = float(np.mean((np.maximum(gp, gm) > 1.5) & (np.minimum(gp, gm) > 0.5)))
        assert tile.counters["n_pulses_down"] == 0 and (tile.counters["n_refreshed"] > 0) == bool(every)
    assert acc[1] > 0.9 and saturated[1] < 0.02, (acc, saturated)
    assert saturated[0] > 0.2, saturated


def test_pair_layers_in_a_network_are_dumped_per_device():
    """NetTrainer (nn public API) with the PCM preset: every analog array is a pair, dumped as W/g_plus and
    W/g_minus (A/..., C/... for Tiki-Taka) with their own device parameters and pulse counts."""
    from crossbar_sim.nn import NetConfig, NetTrainer

    rng = np.random.default_rng(0)
    data = {"x_train": (rng.random((20, 28, 28)) < 0.2).astype(np.uint8) * 255, "y_train": rng.integers(0, 10, 20),
            "x_test": (rng.random((10, 28, 28)) < 0.2).astype(np.uint8) * 255, "y_test": rng.integers(0, 10, 10)}
    for alg, names in (("analog_sgd", {"W/g_plus", "W/g_minus"}),
                       ("tiki_taka", {"A/g_plus", "A/g_minus", "C/g_plus", "C/g_minus"})):
        tr = NetTrainer(NetConfig(model="fcn", algorithm=alg, device=get_preset("PCM"), epochs=1, batch_size=10),
                        seed=0, data=data)
        m = tr.run_epoch()
        assert np.isfinite(m["train_loss"])
        assert set(tr.tile_dump()["layer0"]) == {f"tile{i}_0/{n}" for i in (0, 1) for n in names}  # 784 = 2 x 392
        dump = tr.tile_dump()["layer2"]
        assert set(dump) == names
        assert all(v["counters"]["pulse_counts"][..., 1].sum() == 0 for v in dump.values())
        assert sum(v["counters"]["n_pulses"] for v in dump.values()) > 0
        assert tr.record({})["pulses"] > 0


def test_devices_cli_lists_the_pair_with_its_source(capsys):
    from crossbar_sim.cli import main

    assert main(["devices", "PCM"]) == 0
    out = capsys.readouterr().out
    assert "OneSidedUnitCell" in out and "Nandakumar" in out and "refresh_every=1" in out
    assert main(["devices", "PCMUnit"]) == 0
    assert "ExpStepDevice" in capsys.readouterr().out


def test_device_files_and_network_configs_take_the_pair(tmp_path):
    import json

    from crossbar_sim.device_models import load_device_file, save_device_file
    from crossbar_sim.errors import FormatError
    from crossbar_sim.nn import NetConfig

    path = str(tmp_path / "pcm.json")
    save_device_file(path, get_preset("PCM", refresh_every=3), source="test")
    assert load_device_file(path) == get_preset("PCM").replace(refresh_every=3)
    bad = tmp_path / "io.json"
    bad.write_text(json.dumps(PERFECT.to_dict()))
    with pytest.raises(FormatError, match=r"holds a IOParameters, not a device model \(or a one-sided unit cell\)"):
        load_device_file(str(bad))
    assert NetConfig(device=get_preset("PCM")).resolved_device() == get_preset("PCM")
    with pytest.raises(ConfigError, match=r"'device' parameter of NetConfig must be a device model, a "
                                          r"OneSidedUnitCell or a VectorUnitCell or None"):
        NetConfig(device=PERFECT)


@pytest.mark.parametrize("algorithm", ["ttv2", "chopped_ttv2", "agad"])
def test_buffered_transfers_run_on_pair_arrays(algorithm):
    """TTv2, chopped TTv2 and AGAD build A and C through the same factory: both are pairs, only potentiated."""
    from crossbar_sim.least_squares.training import Trainer

    tr = Trainer(LeastSquaresTask(in_size=10, n_samples=20),
                 TrainConfig(algorithm=algorithm, device=get_preset("PCM"), lr=0.05, steps=60), seed=0)
    tr.run()
    assert np.isfinite(tr.rec["loss"][-1]) and tr.model.counters["n_transfers"] > 0
    assert tr.model.a.counters["n_pulses"] > 0  # (C may not have crossed a transfer threshold yet)
    for arr in (tr.model.a, tr.model.c):
        assert isinstance(arr, OneSidedTile) and arr.pulse_counts.shape == (1, 10, 2)
        assert arr.counters["n_pulses_down"] == 0 and all(t.pulse_counts[..., 1].sum() == 0 for t in arr.tiles.values())
