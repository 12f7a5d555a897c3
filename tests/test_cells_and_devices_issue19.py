"""Vector / reference unit cells, mixed precision, decay and diffusion, SoftBoundsPmax, the stochastic pulse type and
the sampled-target least-squares task (issue 19). Exact parity with aihwkit is in test_golden_issue19.py; here:
invariants, seeded statistics and errors."""
import numpy as np
import pytest

from crossbar_sim.device_models import ConstantStepDevice, SoftBoundsPmaxDevice, SoftBoundsReferenceDevice
from crossbar_sim.errors import ConfigError
from crossbar_sim.tiles.analog import AnalogTile
from crossbar_sim.tiles.mixed_precision import MixedPrecisionCompound, MixedPrecisionTile, MixedPrecisionTileConfig
from crossbar_sim.tiles.params import IOParameters, TileConfig, UpdateParameters
from crossbar_sim.tiles.vector import ReferenceUnitCell, VectorTile, VectorTileConfig, VectorUnitCell

PERFECT = IOParameters(is_perfect=True)
MC = UpdateParameters(pulse_type="mean_count")


def cs(dw=2.0 ** -7, **kw):
    d = dict(dw_min=dw, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)
    d.update(kw)
    return ConstantStepDevice(**d)


def vtile(policy, n=2, seed=0, **kw):
    cell = VectorUnitCell(unit_cell_devices=tuple(cs() for _ in range(n)), update_policy=policy, **kw)
    return VectorTile(1, 1, VectorTileConfig(device=cell, update=MC, forward=PERFECT, backward=PERFECT), seed=seed)


def test_vector_single_random_spreads_samples_per_sample():
    # CPU aihwkit picks a device per update vector (verified: one batch of 20 went 11 + 9); here 2000 samples in
    # batches of 20: Binomial(2000, 1/2) on device 0 (sd 22), 5 sd
    t = vtile("single_random", seed=4)
    t.set_weights(np.zeros((1, 1)))
    for _ in range(100):
        t.update(np.ones((20, 1), np.float32), -np.ones((20, 1), np.float32), 2.0 ** -7)
    n0 = t.devs[0].counters["n_pulses"]
    assert n0 + t.devs[1].counters["n_pulses"] == 2000 and abs(n0 - 1000) < 110


def test_vector_set_weights_and_hidden_index():
    t = vtile("all", n=3)
    t.set_weights(np.full((1, 1), 0.3))
    np.testing.assert_allclose([d.read_weights()[0, 0] for d in t.devs], 0.3)  # every device
    f = vtile("single_fixed", n=3)
    f.set_weights(np.full((1, 1), 0.3))
    np.testing.assert_allclose(f.read_weights(), 0.1, rtol=1e-6)  # only device 0, gammas 1/3 (aihwkit: W = 0.1)
    r = VectorTile(1, 2, VectorTileConfig(device=ReferenceUnitCell(unit_cell_devices=(cs(),)), forward=PERFECT,
                                          backward=PERFECT), seed=0)
    r.set_hidden_update_index(1)
    r.set_weights(np.full((1, 2), 0.25))  # the reference
    r.set_hidden_update_index(0)
    r.set_weights(np.full((1, 2), 0.5))
    np.testing.assert_allclose(r.read_weights(), 0.25)  # w_0 - w_1


def test_cell_errors_are_one_line():
    with pytest.raises(ConfigError, match="'gamma_vec' parameter of VectorUnitCell must be empty or have one entry"):
        VectorUnitCell(unit_cell_devices=(cs(), cs()), gamma_vec=(1.0,))
    with pytest.raises(ConfigError, match="ReferenceUnitCell must hold one or two devices"):
        ReferenceUnitCell(unit_cell_devices=(cs(), cs(), cs()))
    with pytest.raises(ConfigError, match="must hold at least one device"):
        VectorUnitCell(unit_cell_devices=())
    with pytest.raises(ConfigError, match="'update_policy' parameter of VectorUnitCell must be one of"):
        VectorUnitCell(update_policy="some")
    with pytest.raises(ConfigError, match="'n_x_bins' parameter of MixedPrecisionCompound must be 0"):
        MixedPrecisionCompound(n_x_bins=1)
    with pytest.raises(ConfigError, match="'transfer_every' parameter of MixedPrecisionCompound must be an int"):
        MixedPrecisionCompound(transfer_every=1.5)  # aihwkit: "Expected type <class 'int'> for field transfer_every"


def mp_tile(seed=0, **kw):
    cfg = MixedPrecisionTileConfig(device=MixedPrecisionCompound(device=cs(), **kw), update=MC, forward=PERFECT,
                                   backward=PERFECT)
    return MixedPrecisionTile(3, 4, cfg, seed=seed)


def test_mixed_precision_schedule_and_set_weights():
    t = mp_tile()
    t.set_weights(np.zeros((3, 4)))
    X, D = np.ones((4, 4), np.float32), -np.ones((4, 3), np.float32)
    t.update(X, D, 0.01)  # the first batch is only accumulated (transfer test before the counter advances)
    np.testing.assert_allclose(t.read_weights(), 0.0)
    np.testing.assert_allclose(t.chi, -0.04, rtol=1e-6)
    t.update(X, D, 0.01)  # after the first vector of batch 2: chi = -0.05 -> trunc(-0.05 / 2^-7) = -6 steps
    assert t.counters["n_transfers"] == 1
    assert np.all(t.read_weights() > 0)
    t.set_weights(np.zeros((3, 4)))
    assert np.all(t.chi == 0) and t.vectors_seen == 0 and t.row == 0


def test_mixed_precision_quantisation_is_unbiased_with_stochastic_rounding():
    # one-sided quantisation (x only, 3 bins: levels -1, 0, 1 times max|x|) with stochastic rounding keeps the
    # expectation: 4000 samples, the mean of chi's column of x = 0.3 * max|x| is 0.3 * lr; sd of one sample's
    # quantised value 0.46, of the mean 0.0073 (x lr): 5 sd
    t = mp_tile(seed=2, n_x_bins=3, transfer_every=0)
    t.set_weights(np.zeros((3, 4)))
    x = np.array([[1.0, 0.3, -0.6, 0.0]], np.float32)
    for _ in range(4000):
        t.update(x, np.array([[1.0, 0.0, 0.0]], np.float32), 1.0)
    np.testing.assert_allclose(t.chi[0] / 4000, x[0], atol=0.04)
    assert np.all(t.chi[1:] == 0)


def test_decay_and_diffusion_statistics_and_state():
    dev = SoftBoundsReferenceDevice(diffusion=0.01, lifetime=50.0, lifetime_dtod=0.2, reset_std=0.0, w_max=1.0,
                                    w_min=-1.0, **{k: 0.0 for k in ("dw_min_dtod", "dw_min_std", "up_down_dtod",
                                                                    "w_max_dtod", "w_min_dtod")})
    t = AnalogTile(50, 50, TileConfig(device=dev, forward=PERFECT, backward=PERFECT), seed=1)
    assert t.devices.decay_scale.shape == (50, 50) and 0.97 < t.devices.decay_scale.mean() < 0.99
    t.set_weights(np.zeros((50, 50)))
    twin = AnalogTile.from_state(t.get_state())
    t.post_update_step()
    twin.post_update_step()
    np.testing.assert_array_equal(t.read_weights(), twin.read_weights())  # stream positions in the state
    w = t.read_weights()
    # one diffusion step of rho = 0.01 from 0, then decay by ~0.98: std 0.0098 over 2500 devices (5 sd: 7 %)
    assert abs(w.std() - 0.01 * t.devices.decay_scale.mean()) < 0.0007
    # a device without lifetime/diffusion builds exactly as before (its draws are unchanged)
    plain = dev.replace(diffusion=0.0, lifetime=0.0, lifetime_dtod=0.0)
    a = AnalogTile(4, 4, TileConfig(device=plain), seed=5).devices
    b = AnalogTile(4, 4, TileConfig(device=dev), seed=5).devices
    np.testing.assert_array_equal(a.dp, b.dp)
    assert a.decay_scale is None and a.diffusion_rate is None


def test_soft_bounds_pmax_errors():
    with pytest.raises(ConfigError, match="'w_max' parameter of SoftBoundsPmaxDevice is derived"):
        SoftBoundsPmaxDevice(w_max=2.0)
    with pytest.raises(ConfigError, match="range of SoftBoundsPmaxDevice must contain 0"):
        SoftBoundsPmaxDevice(range_min=0.1, range_max=1.0)
    d = SoftBoundsPmaxDevice().replace(alpha=0.001)  # derived fields follow
    assert d.dw_min == pytest.approx(0.001 * (d.w_max - d.w_min) / (1 - np.exp(-1.0)) / (d.w_max - d.w_min) *
                                     (d.range_max - d.range_min))


def test_stochastic_pulse_type_is_the_compressed_one():
    # aihwkit's uncompressed CPU type draws the same trains and applies the positive and negative inputs in two
    # passes: the same statistics (rpu sparse_bit_line_maker.cpp); ours runs one kernel for both
    dev = SoftBoundsReferenceDevice()
    out = []
    for ptype in ("stochastic", "stochastic_compressed"):
        t = AnalogTile(5, 6, TileConfig(device=dev, update=UpdateParameters(pulse_type=ptype)), seed=7)
        rng = np.random.default_rng(0)
        t.update(rng.normal(size=(8, 6)).astype(np.float32), rng.normal(size=(8, 5)).astype(np.float32), 0.05)
        out.append(t.read_weights())
    np.testing.assert_array_equal(out[0], out[1])


def test_sampled_target_task():
    from crossbar_sim.least_squares.task import LeastSquaresTask

    spec = LeastSquaresTask(inputs="gaussian", out_size=10, in_size=40, w_star_scale=0.4, noise_std=0.0,
                            gradient="per_sample", batch_size=3)
    task = spec.build()
    assert np.abs(task.W_star).max() <= 0.4 and task.loss(np.zeros((10, 40))) == pytest.approx(
        0.5 * float(np.sum(task.W_star.astype(np.float64) ** 2)))
    rng = np.random.default_rng(0)
    X, B, scale = task.batch(rng)
    assert X.shape == (3, 40) and scale == 1.0
    np.testing.assert_allclose(B, X @ task.W_star.T, rtol=1e-5, atol=1e-6)
    W = np.full((10, 40), 0.1, np.float32)
    Xu, Du = task.update_signals(X, X @ W.T, B, scale, rng)
    np.testing.assert_allclose(Du, X @ (W - task.W_star).T, rtol=1e-5, atol=1e-6)  # noise-free d = W x - W* x
    g = LeastSquaresTask(inputs="gaussian", w_star_dist="gaussian", w_star_scale=0.2, out_size=50, in_size=40).build()
    assert abs(g.W_star.std() - 0.2) < 0.02  # 2000 draws: sd of the std 0.0032
    with pytest.raises(ConfigError, match="'inputs' parameter of LeastSquaresTask must be one of"):
        LeastSquaresTask(inputs="uniform")
