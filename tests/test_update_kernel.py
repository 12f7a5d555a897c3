"""The pulsed-update kernel against its NumPy twin, and the physics invariants of the pulse scheme.

Three ways (STYLE.md): noise off equals the deterministic twin exactly; invariants (bounds, BL, counters,
batch = one by one, thread count); seeded statistics with explicit tolerances.
"""
import numpy as np
import pytest
from scipy import stats

from crossbar_sim import AnalogTile, TileConfig, UpdateParameters
from crossbar_sim.device_models import (ConstantStepDevice, ExpStepDevice, LinearStepDevice, PiecewiseStepDevice,
                                        PowStepDevice, PowStepReferenceDevice, SoftBoundsDevice,
                                        SoftBoundsReferenceDevice)
from crossbar_sim.kernels import reference as R
from crossbar_sim.kernels import update as K
from crossbar_sim.tiles.analog import sample_trains

MODELS = {
    "ConstantStep": ConstantStepDevice(),
    "SoftBounds": SoftBoundsDevice(),
    "SoftBoundsReference": SoftBoundsReferenceDevice(reference_std=0.05, slope_up_dtod=0.1),
    "LinearStep": LinearStepDevice(gamma_up=0.5, gamma_down=0.3),
    "ExpStep": ExpStepDevice(),
    "PowStep": PowStepDevice(pow_gamma=2.0),
    # per-device reference (the PowStep kernel evaluated at w + ref), symmetric points subtracted
    "PowStepReference": PowStepReferenceDevice(pow_gamma=1.5, pow_up_down=0.2, reference_std=0.05,
                                               subtract_symmetry_point=True),
    "Piecewise": PiecewiseStepDevice(piecewise_up=(0.4, 1.0, 1.6, 1.2, 0.2), piecewise_down=(0.1, 0.8, 1.0, 1.4, 2.0)),
}


def _samples(rng, batch, out_size, in_size, scale=0.5):
    X = rng.normal(0, scale, (batch, in_size)).astype(np.float32)
    D = rng.normal(0, scale, (batch, out_size)).astype(np.float32)
    return X, D


def _twin(tile, X, D, lr, trains=None, rng=None, ptype=K.PULSE_STOCHASTIC):
    """Run the NumPy twin on a copy of the tile's state; returns (weights, counts, stats)."""
    dev = tile.devices
    up = tile.config.update
    w = tile.hidden_weights()
    cnt = np.zeros_like(tile.pulse_counts)
    st = R.pulsed_update(w, w, dev.dp, cnt, X, D, lr, dev.granularity, up.desired_bl, up.update_bl_management,
                         up.update_management or up.update_bl_management, up.um_grad_scale, ptype, dev.model,
                         dev.noise_mode, dev.dw_min_std, 0.0, dev.tp,
                         rng if rng is not None else np.random.default_rng(0), trains=trains)
    return w, cnt, st


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("closed_form", [False, True])
def test_kernel_equals_twin_with_noise_off(name, closed_form):
    """Same pulse trains, no cycle-to-cycle noise: the kernel equals the pulse-by-pulse twin.

    Exact for pulse-by-pulse; the closed form (linear family) differs only by float rounding of a^n
    versus n multiplications (tolerance 2e-6 on weights ~0.5).
    """
    dev = MODELS[name].replace(dw_min_std=0.0, dw_min=0.01)
    tile = AnalogTile(12, 9, TileConfig(device=dev, update=UpdateParameters(closed_form=closed_form)), seed=3)
    rng = np.random.default_rng(1)
    tile.set_weights(rng.uniform(-0.3, 0.3, tile.shape))
    X, D = _samples(rng, 20, 12, 9)
    trains = sample_trains(tile, X, D, lr=0.05)
    w_twin, cnt_twin, st_twin = _twin(tile, X, D, 0.05, trains=trains)
    tile.update(X, D, 0.05)
    if closed_form and dev.model_code == K.MODEL_LINEAR:
        np.testing.assert_allclose(tile.hidden_weights(), w_twin, rtol=0, atol=2e-6)
    else:
        np.testing.assert_array_equal(tile.hidden_weights(), w_twin)
    np.testing.assert_array_equal(tile.pulse_counts, cnt_twin)
    assert tile.counters["n_pulses"] == st_twin[K.ST_PULSES] > 0


@pytest.mark.parametrize("name", sorted(MODELS))
def test_mean_count_kernel_equals_twin(name):
    dev = MODELS[name].replace(dw_min_std=0.0)
    tile = AnalogTile(7, 11, TileConfig(device=dev, update=UpdateParameters(pulse_type="mean_count")), seed=2)
    rng = np.random.default_rng(5)
    X, D = _samples(rng, 15, 7, 11)
    w_twin, cnt_twin, _ = _twin(tile, X, D, 0.1, ptype=K.PULSE_MEAN_COUNT)
    tile.update(X, D, 0.1)
    np.testing.assert_allclose(tile.hidden_weights(), w_twin, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(tile.pulse_counts, cnt_twin)


def _same_pulses_everywhere(dev, n_pulses, up, shape=(160, 160), closed_form=True, seed=0, w0=0.0):
    """Every device of a tile receives exactly ``n_pulses`` same-sign pulses (mean-count, one sample)."""
    upd = UpdateParameters(pulse_type="mean_count", desired_bl=n_pulses, update_bl_management=False,
                           update_management=False, closed_form=closed_form)
    tile = AnalogTile(*shape, TileConfig(device=dev, update=upd), seed=seed)
    tile.set_weights(np.full(shape, w0, np.float32))
    x = np.ones(shape[1], np.float32)
    d = np.full(shape[0], -1.0 if up else 1.0, np.float32)
    # lr large enough that every count saturates at BL = n_pulses
    tile.update(x, d, lr=1e3)
    assert np.all(tile.pulse_counts[..., 0 if up else 1] == n_pulses)
    return tile.hidden_weights().ravel().astype(np.float64)


def _twin_same_pulses(dev, n_pulses, up, shape=(160, 160), seed=0, w0=0.0):
    tile = AnalogTile(*shape, TileConfig(device=dev), seed=seed)
    d = tile.devices
    w = np.full(shape, w0, np.float64)
    rng = np.random.default_rng(seed + 100)
    su, sd, lu, ld, ref, lo, hi = (d.dp[..., k].astype(np.float64) for k in range(7))
    for _ in range(n_pulses):
        w = R.one_pulse(w, np.full(shape, up), su, sd, lu, ld, ref, lo, hi, d.model, d.noise_mode, d.dw_min_std,
                        d.tp, rng.standard_normal(shape))
    return w.astype(np.float32).ravel().astype(np.float64)


@pytest.mark.parametrize("case", [
    # (device, n pulses, up): multiplicative noise near the closed form's limit r sqrt(n) = 0.01
    (SoftBoundsDevice(dw_min=0.005, w_max=0.6, w_min=-0.6, dw_min_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
                      up_down_dtod=0.0), 16, True),
    (SoftBoundsDevice(dw_min=0.001, w_max=0.6, w_min=-0.6), 31, False),
    (SoftBoundsReferenceDevice(dw_min=0.004, w_max=0.7, w_min=-0.7, dw_min_dtod=0.0, up_down_dtod=0.0,
                               w_max_dtod=0.0, w_min_dtod=0.0), 25, True),
    (ConstantStepDevice(dw_min=0.002, w_max=2.0, w_min=-2.0, dw_min_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
                        up_down_dtod=0.0), 31, False),
    (LinearStepDevice(gamma_up=0.8, gamma_down=0.8, dw_min=0.003), 20, True),
])
def test_closed_form_matches_pulse_by_pulse_in_distribution(case):
    """25,600 devices, identical pulse counts: closed form vs pulse-by-pulse vs NumPy twin.

    Tolerances: means agree within 4 standard errors; standard deviations within 3%; two-sample
    Kolmogorov-Smirnov p > 1e-3 (a false alarm rate of 0.1% per comparison). Where the closed form is an
    approximation (multiplicative noise) its neglected cumulants are O(r^2 n) <= 1e-4 of the spread: far below
    what 25,600 samples can resolve, which is the point.
    """
    dev, n, up = case
    cf = _same_pulses_everywhere(dev, n, up, closed_form=True, seed=4)
    pp = _same_pulses_everywhere(dev, n, up, closed_form=False, seed=4)
    tw = _twin_same_pulses(dev, n, up, seed=4)
    # device-to-device variation is the same (same construction seed): compare the cycle-to-cycle part,
    # i.e. the deviations from the noise-free result of each device
    ref = _same_pulses_everywhere(dev.replace(dw_min_std=0.0), n, up, closed_form=False, seed=4)
    for a, b in ((cf, pp), (cf, tw), (pp, tw)):
        da, db = a - ref, b - ref
        se = np.sqrt(da.var() / da.size + db.var() / db.size)
        assert abs(da.mean() - db.mean()) < 4 * se + 1e-9
        assert abs(da.std() / db.std() - 1) < 0.03
        assert stats.ks_2samp(da, db).pvalue > 1e-3


def test_pulse_scheme_unbiased_on_constant_step():
    """Mean change per sample equals -lr d x^T (no saturation: k = lr max|x| max|d| / dw_min <= BL).

    2000 repetitions of one sample; each device's pulse count per sample is a sum of BL Bernoulli trials
    with mean m = lr |d_i x_j| / dw_min, so its average has std <= sqrt(m / 2000): tolerance 5 of those.
    """
    dev = ConstantStepDevice(dw_min=0.001, w_max=100.0, w_min=-100.0, dw_min_dtod=0.0, dw_min_std=0.0,
                             up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, 8).astype(np.float32)
    d = rng.uniform(-1, 1, 6).astype(np.float32)
    lr = 0.02
    tile = AnalogTile(6, 8, TileConfig(device=dev), seed=11)
    N = 2000
    tile.update(np.tile(x, (N, 1)), np.tile(d, (N, 1)), lr)
    mean_change = tile.hidden_weights().astype(np.float64) / N
    expected = -lr * np.outer(d, x)
    m = np.abs(expected) / dev.dw_min
    tol = 5 * np.sqrt(np.maximum(m, 0.05) / N) * dev.dw_min
    assert np.all(np.abs(mean_change - expected) <= tol)


def test_pulses_never_exceed_bl_and_counters_match():
    dev = SoftBoundsDevice()
    tile = AnalogTile(9, 13, TileConfig(device=dev, update=UpdateParameters(desired_bl=17)), seed=1)
    rng = np.random.default_rng(0)
    total = 0
    for s in range(40):
        x, d = _samples(rng, 1, 9, 13, scale=2.0)
        before = tile.pulse_counts.sum(axis=-1).copy()
        tile.update(x, d, lr=1.0)  # strongly saturated: k >> 17
        inc = tile.pulse_counts.sum(axis=-1) - before
        assert inc.max() <= 17
        total += int(inc.sum())
    assert tile.counters["n_pulses"] == total == tile.pulse_counts.sum() > 0
    assert tile.counters["n_pulses_up"] == tile.pulse_counts[..., 0].sum()
    assert tile.counters["n_pulses_down"] == tile.pulse_counts[..., 1].sum()
    assert tile.counters["n_pulse_cycles"] == 40


@pytest.mark.parametrize("name", sorted(MODELS))
def test_weights_never_leave_device_bounds(name):
    dev = MODELS[name].replace(dw_min=0.05)  # big steps hit the bounds often
    tile = AnalogTile(16, 16, TileConfig(device=dev), seed=9)
    lo, hi = tile.w_min_bound, tile.w_max_bound
    tile.set_weights(np.full(tile.shape, 5.0))  # far outside: clipped per device
    assert np.all(tile.hidden_weights() <= hi) and np.all(tile.hidden_weights() >= lo)
    rng = np.random.default_rng(2)
    for _ in range(30):
        X, D = _samples(rng, 8, 16, 16, scale=1.0)
        tile.update(X, D, lr=0.5)
        w = tile.hidden_weights()
        assert np.all(w <= hi) and np.all(w >= lo)
    assert tile.counters["n_pulses"] > 0


def test_batch_equals_one_by_one_bit_exact():
    """aihw PR#763: a batched update must apply every sample, in order (noise on, any batch sizes)."""
    cfg = TileConfig(device=SoftBoundsDevice(write_noise_std=0.5))
    rng = np.random.default_rng(4)
    X, D = _samples(rng, 23, 10, 14)
    a = AnalogTile(10, 14, cfg, seed=5)
    b = AnalogTile(10, 14, cfg, seed=5)
    a.update(X, D, 0.05)
    start = 0
    for size in (1, 3, 5, 1, 8, 5):
        b.update(X[start:start + size], D[start:start + size], 0.05)
        start += size
    assert start == 23
    np.testing.assert_array_equal(a.hidden_weights(), b.hidden_weights())
    np.testing.assert_array_equal(a.read_weights(), b.read_weights())
    np.testing.assert_array_equal(a.pulse_counts, b.pulse_counts)


def test_result_independent_of_thread_count():
    cfg = TileConfig(device=SoftBoundsDevice())
    rng = np.random.default_rng(8)
    X, D = _samples(rng, 3, 256, 256)
    a = AnalogTile(256, 256, cfg, seed=1, threads=1)
    b = AnalogTile(256, 256, cfg, seed=1, threads=2)
    a.update(X, D, 0.05)
    b.update(X, D, 0.05)
    np.testing.assert_array_equal(a.hidden_weights(), b.hidden_weights())
    # and directly through the kernel with many row blocks
    from crossbar_sim.tiles.analog import zig_tables
    dev = a.devices
    outs = []
    for nblocks in (1, 7, 64):
        w = np.zeros((256, 256), np.float32)
        cnt = np.zeros((2, 256, 256), np.int64)
        K.pulsed_update(w, w, dev.dp, dev.dpr, cnt, X, D, 0.05, dev.granularity, 31, True, True, 1.0,
                        K.PULSE_STOCHASTIC, dev.model, dev.noise_mode, dev.dw_min_std, 0.0, dev.tp, True,
                        np.uint64(3), np.uint64(0), *zig_tables(), np.zeros(K.N_ST, np.int64), 0, K.PATH_AUTO,
                        nblocks)
        outs.append(w)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


def test_counters_are_64_bit():
    """aihw PR#732: counters beyond 2^31 must not wrap."""
    tile = AnalogTile(2, 2, TileConfig(device=ConstantStepDevice(w_max=100, w_min=-100)), seed=0)
    tile.pulse_counts[...] = 2**31 - 3
    tile.update(np.ones((4, 2)), np.ones((4, 2)), lr=1.0)
    assert tile.pulse_counts.dtype == np.int64
    assert np.all(tile.pulse_counts[..., 1] > 2**31)


def test_expected_and_float_updates_equal_twins():
    rng = np.random.default_rng(3)
    X, D = _samples(rng, 6, 5, 7)
    for name, dev in MODELS.items():
        for ptype in ("expected", "none", "none_with_device"):
            tile = AnalogTile(5, 7, TileConfig(device=dev, update=UpdateParameters(pulse_type=ptype)), seed=1)
            tile.set_weights(rng.uniform(-0.2, 0.2, (5, 7)))
            w = tile.hidden_weights()
            dv = tile.devices
            if ptype == "expected":
                R.expected_update(w, dv.dp, X, D, 0.05, dv.granularity, dv.model, dv.tp)
            else:
                R.float_update(w, dv.dp, X, D, 0.05, ptype == "none_with_device")
            tile.update(X, D, 0.05)
            np.testing.assert_allclose(tile.hidden_weights(), w, atol=1e-6, err_msg=f"{name} {ptype}")
            assert tile.counters["n_pulses"] == 0  # no pulses: the counters say so


def test_expected_update_is_the_mean_of_the_stochastic_one():
    """For small steps the stochastic scheme averages to the 'expected' type (tolerance: 5 standard errors
    of the mean over 3000 repetitions of one sample)."""
    dev = SoftBoundsDevice(dw_min=1e-3, dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)
    rng = np.random.default_rng(12)
    x = rng.uniform(-1, 1, 5).astype(np.float32)
    d = rng.uniform(-1, 1, 4).astype(np.float32)
    w0 = rng.uniform(-0.4, 0.4, (4, 5)).astype(np.float32)
    N = 3000
    # independent repetitions of the same sample, each from w0 (pulse trains are fresh per sample)
    tile = AnalogTile(4, 5, TileConfig(device=dev), seed=2)
    changes = np.empty((N, 4, 5))
    for k in range(N):
        tile.set_weights(w0)
        tile.update(x, d, lr=0.01)
        changes[k] = tile.hidden_weights().astype(np.float64) - w0
    ex = AnalogTile(4, 5, TileConfig(device=dev, update=UpdateParameters(pulse_type="expected")), seed=2)
    ex.set_weights(w0)
    ex.update(x, d, lr=0.01)
    expected = ex.hidden_weights().astype(np.float64) - w0
    se = changes.std(axis=0) / np.sqrt(N)
    assert np.all(np.abs(changes.mean(axis=0) - expected) <= 5 * se + 1e-6)


def test_write_noise_only_on_read_weights():
    dev = ConstantStepDevice(write_noise_std=2.0, dw_min_std=0.0, dw_min_dtod=0.0, up_down_dtod=0.0,
                             w_max_dtod=0.0, w_min_dtod=0.0)
    tile = AnalogTile(100, 100, TileConfig(device=dev), seed=0)
    tile.set_weights(np.zeros((100, 100)))
    diff = tile.read_weights() - tile.hidden_weights()
    # redrawn on every device when weights are set: std = write_noise_std * dw_min (tolerance 5%)
    assert abs(diff.std() / (2.0 * dev.dw_min) - 1) < 0.05
    assert np.all(tile.hidden_weights() == 0)
    before = tile.read_weights()
    x = np.zeros(100, np.float32)
    x[:10] = 1.0  # only the first 10 columns receive pulses
    tile.update(x, np.ones(100, np.float32), lr=0.01)
    after = tile.read_weights()
    assert np.all(after[:, 10:] == before[:, 10:])  # untouched devices keep their read noise
    assert np.all(after[:, :10] != before[:, :10])


@pytest.mark.parametrize("sign_mode", [1, -1])
def test_sign_mode_equals_twin_with_noise_off(sign_mode):
    """One-sided updates (the devices of a plus-minus pair): only the pulses of one sign are applied, and
    the down pulses of ``sign_mode=-1`` are applied as up pulses; the same trains give the twin exactly."""
    dev = SoftBoundsDevice(dw_min_std=0.0, dw_min=0.01)
    tile = AnalogTile(12, 9, TileConfig(device=dev, update=UpdateParameters(closed_form=False)), seed=3)
    rng = np.random.default_rng(4)
    tile.set_weights(rng.uniform(-0.3, 0.3, tile.shape))
    X, D = _samples(rng, 20, 12, 9)
    trains = sample_trains(tile, X, D, lr=0.05)
    dvc = tile.devices
    w_twin = tile.hidden_weights()
    cnt_twin = np.zeros_like(tile.pulse_counts)
    R.pulsed_update(w_twin, w_twin, dvc.dp, cnt_twin, X, D, 0.05, dvc.granularity, 31, True, True, 1.0,
                    K.PULSE_STOCHASTIC, dvc.model, dvc.noise_mode, 0.0, 0.0, dvc.tp, np.random.default_rng(0),
                    trains=trains, sign_mode=sign_mode)
    tile._update(X, D, 0.05, sign_mode=sign_mode)
    np.testing.assert_array_equal(tile.hidden_weights(), w_twin)
    np.testing.assert_array_equal(tile.pulse_counts, cnt_twin)
    assert tile.pulse_counts[..., 1].sum() == 0 and tile.counters["n_pulses_down"] == 0
    assert tile.counters["n_pulses"] == tile.pulse_counts.sum() > 0


def test_plus_minus_pair_splits_the_pulses_of_one_tile():
    """Two tiles with the same update stream, one with sign_mode +1 and one with -1, receive exactly the
    pulses one tile receives (up pulses on the plus device, down pulses as up pulses on the minus device):
    on constant-step devices far from their bounds, w_plus - w_minus moves exactly as the single tile."""
    dev = ConstantStepDevice(dw_min=0.01, dw_min_std=0.0, dw_min_dtod=0.0, up_down_dtod=0.0,
                             w_max=10.0, w_min=-10.0, w_max_dtod=0.0, w_min_dtod=0.0)
    cfg = TileConfig(device=dev)
    one, plus, minus = (AnalogTile(6, 5, cfg, seed=8) for _ in range(3))
    rng = np.random.default_rng(2)
    X, D = _samples(rng, 30, 6, 5)
    one._update(X, D, 0.1)
    plus._update(X, D, 0.1, sign_mode=1)
    minus._update(X, D, 0.1, sign_mode=-1)
    np.testing.assert_allclose(plus.hidden_weights() - minus.hidden_weights(), one.hidden_weights(), atol=1e-5)
    np.testing.assert_array_equal(plus.pulse_counts[..., 0], one.pulse_counts[..., 0])
    np.testing.assert_array_equal(minus.pulse_counts[..., 0], one.pulse_counts[..., 1])
    assert one.counters["n_pulses"] == plus.counters["n_pulses"] + minus.counters["n_pulses"] > 0


def _run_path(tile, X, D, lr, path, sign_mode=0, desired_bl=31, w0=None):
    """One kernel call along ``path`` on copies of the tile's arrays: (w, w_app, counters, stats)."""
    from crossbar_sim.tiles.analog import zig_tables
    dev = tile.devices
    w = tile.hidden_weights() if w0 is None else w0.copy()
    w_app = w if dev.write_noise == 0.0 else tile.read_weights()
    cnt = np.zeros((2,) + tile.shape, np.int64)
    st = np.zeros(K.N_ST, np.int64)
    K.pulsed_update(w, w_app, dev.dp, dev.dpr, cnt, X, D, lr, dev.granularity, desired_bl, True, True, 1.0,
                    K.PULSE_STOCHASTIC, dev.model, dev.noise_mode, dev.dw_min_std, dev.write_noise, dev.tp, True,
                    np.uint64(11), np.uint64(0), *zig_tables(), st, sign_mode, path, 1)
    return w, w_app, cnt, st


@pytest.mark.parametrize("case", [
    "soft_bounds", "reference_additive", "constant_step", "linear_step", "write_noise", "sign_plus", "sign_minus",
    "sparse_inputs", "near_bounds", "long_trains",
])
def test_vectorised_rows_equal_device_by_device(case):
    """The dense and compacted vectorised rows give the same bits as the device-by-device path.

    The three paths share one closed form and one random word per device, so they must agree exactly,
    including the devices near their bounds that fall back to pulse-by-pulse simulation, write noise,
    one-sided updates, sparse inputs and trains longer than one 64-bit word (no dense path there).
    """
    dev = {"soft_bounds": SoftBoundsDevice(), "reference_additive": SoftBoundsReferenceDevice(reference_std=0.05),
           "constant_step": ConstantStepDevice(), "linear_step": LinearStepDevice(gamma_up=0.5, gamma_down=0.3),
           "write_noise": SoftBoundsDevice(write_noise_std=2.0),
           "near_bounds": SoftBoundsDevice(dw_min=0.02, w_max=0.3, w_min=-0.3)}.get(case, SoftBoundsDevice())
    tile = AnalogTile(40, 70, TileConfig(device=dev), seed=6)
    rng = np.random.default_rng(3)
    tile.set_weights(rng.uniform(-0.29, 0.29, tile.shape))
    X, D = _samples(rng, 6, 40, 70)
    if case == "sparse_inputs":
        X[:, rng.random(70) < 0.85] = 0.0
    sign_mode = {"sign_plus": 1, "sign_minus": -1}.get(case, 0)
    bl = 100 if case == "long_trains" else 31
    lr = 0.5 if case in ("near_bounds", "long_trains") else 0.05
    paths = [K.PATH_COMPACT, K.PATH_SCALAR, K.PATH_AUTO, K.PATH_DENSE]  # dense needs one word: BL 100 compacts
    runs = [_run_path(tile, X, D, lr, p, sign_mode, bl) for p in paths]
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)
    assert runs[0][3][K.ST_PULSES] > 0
    if case == "near_bounds":  # some devices did fall back to pulse-by-pulse: their weights sit at a bound
        w = runs[0][0]
        assert np.any((w == tile.w_max_bound) | (w == tile.w_min_bound))
