"""Periphery of the MVM (SPEC section 2): each non-ideality alone, exactly once, twin agreement, counters.

Statistical tolerances: with N independent draws the relative standard error of a measured standard deviation
is 1/sqrt(2N); tests use N >= 20000 (0.5 %) and a 5 % tolerance, i.e. about 10 standard errors, so they do
not flake, while a noise applied twice (41 % too large) or forgotten fails by far.
"""
import numpy as np
import pytest

from crossbar_sim import AnalogTile, IOParameters, NonFiniteError, TileConfig
from crossbar_sim.device_models import ConstantStepDevice
from crossbar_sim.kernels import mvm as KM
from crossbar_sim.kernels import reference_mvm as RM
from crossbar_sim.tiles.periphery import analog_mvm, io_plan, io_steps

NOVAR = dict(dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)
#: every non-ideality off, but the pipeline (not the is_perfect shortcut) still runs
OFF = IOParameters(inp_res=0.0, out_res=0.0, out_noise=0.0, inp_bound=1e9, out_bound=1e12,
                   noise_management="none", bound_management="none")


def _tile(W, fwd, bwd=None, seed=0):
    dev = ConstantStepDevice(w_max=100.0, w_min=-100.0, **NOVAR)
    t = AnalogTile(W.shape[0], W.shape[1], TileConfig(device=dev, forward=fwd, backward=bwd or fwd), seed=seed)
    t.set_weights(W)
    return t


def _rand(shape, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def test_all_off_equals_perfect_exactly():
    W, X, D = _rand((24, 40), 1, 0.3), _rand((7, 40), 2), _rand((7, 24), 3)
    t = _tile(W, OFF)
    np.testing.assert_array_equal(t.forward(X), X @ W.T)
    np.testing.assert_array_equal(t.backward(D), D @ W)
    tp = _tile(W, IOParameters.perfect())
    np.testing.assert_array_equal(tp.forward(X), t.forward(X))
    np.testing.assert_array_equal(tp.backward(D), t.backward(D))


def test_dac_levels_counted():
    # identity weights, no ADC: the outputs are the DAC levels; inp_res 1/126 and bound 1 -> 2*63 + 1 levels
    n = 64
    io = OFF.replace(inp_res=1 / 126, inp_bound=1.0, noise_management="abs_max")
    t = _tile(np.eye(n, dtype=np.float32), io)
    x = np.linspace(-1, 1, 5000, dtype=np.float32).reshape(-1, 50)
    X = np.zeros((x.shape[0], n), np.float32)
    X[:, :50] = x
    X[:, 50] = 1.0  # max|x| = 1: noise management leaves the scale at 1
    y = t.forward(X)[:, :50]
    step, _ = io_steps(io)
    assert step == pytest.approx(1 / 63, rel=1e-6)
    k = y / np.float32(step)
    np.testing.assert_allclose(k, np.round(k), atol=1e-4)
    assert np.unique(y).size == 127


def test_adc_levels_counted_and_clipping_at_bound():
    io = OFF.replace(out_res=1 / 510, out_bound=12.0)
    _, step = io_steps(io)
    assert step == pytest.approx(24 / 510, rel=1e-6)
    t = _tile(np.array([[20.0]], np.float32), io)
    x = np.linspace(-1, 1, 20001, dtype=np.float32)[:, None]
    y = t.forward(x)[:, 0]
    assert y.max() == np.float32(12.0) and y.min() == np.float32(-12.0)  # clipped at the bound
    inside = np.abs(20 * x[:, 0]) < 11.9
    np.testing.assert_allclose(y[inside], 20 * x[inside, 0], atol=step / 2 + 1e-5)
    k = y / np.float32(step)
    np.testing.assert_allclose(k, np.round(k), atol=1e-3)
    assert np.unique(y).size == 511  # -255 .. 255 steps; +-12 is level 255 exactly


@pytest.mark.parametrize("amax", [1.0, 2.5])
def test_output_noise_std_measured_equals_configured(amax):
    # W = 0: the output is the noise alone, in the normalised domain, times max|x| (noise management)
    io = OFF.replace(out_noise=0.06, noise_management="abs_max")
    t = _tile(np.zeros((256, 32), np.float32), io)
    X = np.full((100, 32), amax, np.float32)
    y = t.forward(X)
    assert np.std(y) == pytest.approx(0.06 * amax, rel=0.05)
    assert abs(np.mean(y)) < 0.06 * amax * 0.05
    # twin: same distribution
    P, F = io_plan(io, True)
    yr, _ = RM.analog_mvm(t.read_weights(), X, P, F, np.random.default_rng(0))
    assert np.std(yr) == pytest.approx(np.std(y), rel=0.05)


def test_output_noise_is_gaussian():
    from scipy import stats

    io = OFF.replace(out_noise=1.0)
    t = _tile(np.zeros((500, 8), np.float32), io)
    y = t.forward(np.ones((100, 8), np.float32)).ravel()
    assert stats.kstest(y, "norm").pvalue > 1e-3  # 50000 draws: a KS p-value below 1e-3 would be a bug


def test_forward_noise_does_not_touch_weights():
    W = _rand((16, 16), 4, 0.2)
    t = _tile(W, IOParameters(out_noise=0.5, inp_noise=0.1, w_noise=0.1, w_noise_type="additive_constant"))
    before = t.read_weights()
    for _ in range(5):
        t.forward(_rand((8, 16), 5))
        t.backward(_rand((8, 16), 6))
    np.testing.assert_array_equal(t.read_weights(), before)


def test_input_noise_std():
    n = 64
    io = OFF.replace(inp_noise=0.05, noise_management="abs_max")
    t = _tile(np.eye(n, dtype=np.float32), io)
    X = np.zeros((500, n), np.float32)
    X[:, 0] = 1.0  # max|x| = 1: factor 1, outputs = DAC inputs + noise
    y = t.forward(X)
    assert np.std(y[:, 1:]) == pytest.approx(0.05, rel=0.05)
    assert np.mean(y[:, 0]) == pytest.approx(1.0, abs=0.01)


def test_weight_noise_additive_constant_and_w_noise_alone_does_nothing():
    W = np.zeros((400, 64), np.float32)
    X = np.ones((60, 64), np.float32)  # ||Xq||_2 = 8 after noise management
    io = OFF.replace(w_noise=0.02, w_noise_type="additive_constant", noise_management="abs_max")
    y = _tile(W, io).forward(X)
    assert np.std(y) == pytest.approx(0.02 * 8.0, rel=0.05)
    # w_noise without w_noise_type: no effect at all
    y0 = _tile(W, OFF.replace(w_noise=0.02)).forward(X)
    np.testing.assert_array_equal(y0, 0.0)


@pytest.mark.parametrize("where", ["inp", "out"])
def test_stochastic_rounding_unbiased(where):
    v = 0.3
    if where == "inp":
        io = OFF.replace(inp_res=0.1, inp_bound=1.0, inp_sto_round=True, noise_management="none")  # step 0.2
        step = 0.2
        t = _tile(np.eye(2, dtype=np.float32), io)
        X = np.tile(np.array([[v, v]], np.float32), (20000, 1))
    else:
        io = OFF.replace(out_res=0.1, out_bound=1.0, out_sto_round=True, noise_management="none")
        step = 0.2
        t = _tile(np.array([[v]], np.float32), io)
        X = np.ones((40000, 1), np.float32)
    y = t.forward(X).ravel()
    levels = np.unique(np.round(y / step).astype(int))
    assert set(levels) == {1, 2}  # only the two neighbouring levels 0.2 and 0.4
    # unbiased: mean 0.3; with 40000 draws of a two-level variable the std error is 0.1/200 = 5e-4
    assert np.mean(y) == pytest.approx(v, abs=3e-3)
    # deterministic rounding of 0.3 (= 1.5 steps, half to even) gives 0.4 every time: biased
    det = _tile(t.read_weights(), io.replace(inp_sto_round=False, out_sto_round=False)).forward(X[:10]).ravel()
    np.testing.assert_allclose(det, 0.4, atol=1e-6)


def test_bound_management_recovers_clipped_outputs():
    # 2 x 1000 weights 0.6, inputs with k leading ones: exact output 0.6 k
    W = np.full((2, 1000), 0.6, np.float32)
    X = np.zeros((3, 1000), np.float32)
    for r, k in enumerate((100, 150, 1000)):
        X[r, :k] = 1.0
    exact = X @ W.T
    y_bm = _tile(W, IOParameters(out_noise=0.0)).forward(X)
    y_no = _tile(W, IOParameters(out_noise=0.0, bound_management="none")).forward(X)
    np.testing.assert_array_equal(y_no, 12.0)  # every output saturates without BM
    # BM recovers them while the needed factor stays <= 16 (60 and 90 need 8); 600 would need 64 -> 12*16
    np.testing.assert_allclose(y_bm[:2], exact[:2], rtol=0.02)
    np.testing.assert_array_equal(y_bm[2], 192.0)


def test_zero_row_gives_zero_and_is_not_converted_twice():
    t = _tile(_rand((8, 5), 7), IOParameters())
    X = np.zeros((2, 5), np.float32)
    X[1] = 1.0
    y = t.forward(X)
    np.testing.assert_array_equal(y[0], 0.0)


def test_fused_and_split_paths_agree_with_noise_on(monkeypatch):
    """Both paths run the same kernels on the same random streams; only the GEMM call differs (numba's
    np.dot, SciPy's OpenBLAS, vs NumPy's). Their products agree to float32 rounding, so the outputs agree
    exactly except where a rounding difference crosses an ADC level (at most one step; none on this data)."""
    from crossbar_sim.tiles import periphery

    rng = np.random.default_rng(21)
    W = rng.uniform(-0.6, 0.6, (40, 300)).astype(np.float32)
    X = rng.normal(0, 1, (16, 300)).astype(np.float32)
    X[2, :200] = 3.0
    W[0] = 0.5  # a saturating row: bound management passes
    out = {}
    for name, limit in (("fused", 1 << 62), ("split", 0)):
        monkeypatch.setattr(periphery, "FUSED_MAX_MACS", limit)
        counters = {"mvm": 0, "dac": 0, "adc": 0}
        out[name] = (analog_mvm(W, X, IOParameters(), np.uint64(5), 2, None, False, True, counters),
                     analog_mvm(W, X[:, :40].copy(), IOParameters(), np.uint64(6), 2, None, True, False, None),
                     counters["mvm"])
    step = io_steps(IOParameters())[1]
    for a, b in zip(out["fused"][:2], out["split"][:2]):
        assert np.mean(a == b) > 0.999
        np.testing.assert_allclose(a, b, rtol=0, atol=step * np.abs(X).max() * 16 * 1.001)
    assert out["fused"][2] == out["split"][2] > X.shape[0]


def test_twin_agrees_exactly_with_noise_off(mvm_path):
    rng = np.random.default_rng(11)
    W = rng.uniform(-0.6, 0.6, (30, 200)).astype(np.float32)
    X = rng.normal(0, 1, (12, 200)).astype(np.float32)
    X[3] = 0.0
    X[5, :150] = 3.0  # with W[0] = 0.5 this row saturates: bound management repeats it
    W[0] = 0.5
    D = rng.normal(0, 1, (12, 30)).astype(np.float32)
    for io in (IOParameters(out_noise=0.0), IOParameters(out_noise=0.0, noise_management="constant", nm_thres=2.0),
               IOParameters(out_noise=0.0, noise_management="none", bound_management="none")):
        for transposed, A, allow_bm in ((False, X, True), (True, D, False)):
            counters = {"mvm": 0, "dac": 0, "adc": 0}
            y = analog_mvm(W, A, io, np.uint64(3), 0, None, transposed, allow_bm, counters)
            P, F = io_plan(io, allow_bm)
            yr, passes = RM.analog_mvm(W, A, P, F, np.random.default_rng(0), transposed)
            np.testing.assert_array_equal(y, yr)
            assert counters["mvm"] == passes
    counters = {"mvm": 0, "dac": 0, "adc": 0}
    analog_mvm(W, X, IOParameters(out_noise=0.0), np.uint64(3), 0, None, False, True, counters)
    assert counters["mvm"] > X.shape[0]  # the saturated row was repeated


def test_twin_agrees_in_distribution_with_noise_on():
    rng = np.random.default_rng(12)
    W = rng.uniform(-0.3, 0.3, (64, 64)).astype(np.float32)
    X = rng.normal(0, 1, (400, 64)).astype(np.float32)
    io = IOParameters(out_noise=0.1, inp_noise=0.02, w_noise=0.01, w_noise_type="additive_constant")
    io0 = IOParameters(out_noise=0.0)
    y0 = analog_mvm(W, X, io0, np.uint64(1), 0)
    y = analog_mvm(W, X, io, np.uint64(1), 0)
    P, F = io_plan(io, True)
    yr, _ = RM.analog_mvm(W, X, P, F, np.random.default_rng(1))
    e, er = (y - y0), (yr - y0)
    assert np.std(e) == pytest.approx(np.std(er), rel=0.05)
    assert abs(np.mean(e)) < 0.05 * np.std(e) and abs(np.mean(er)) < 0.05 * np.std(er)


def test_batch_equals_rows_one_by_one_with_noise_off():
    W = _rand((20, 50), 21, 0.5)
    X = _rand((9, 50), 22, 2.0)
    t = _tile(W, IOParameters(out_noise=0.0))
    yb = t.forward(X)
    for b in range(X.shape[0]):
        np.testing.assert_array_equal(t.forward(X[b]), yb[b])


def test_counters_mvm_dac_adc():
    W = np.full((2, 1000), 0.6, np.float32)
    X = np.zeros((3, 1000), np.float32)
    X[0, :10] = 1.0    # 6: no BM
    X[1, :100] = 1.0   # 60: passes r = 0..3 (12 -> 24 -> 48 -> 96: fits at 2^3)
    X[2, :1000] = 1.0  # 600: r = 0..4, stops at 16
    t = _tile(W, IOParameters(out_noise=0.0))
    t.forward(X)
    passes = 1 + 4 + 5
    assert t.counters["mvm"] == passes
    assert t.counters["dac"] == passes * 1000 and t.counters["adc"] == passes * 2
    t.backward(np.ones((4, 2), np.float32))  # backward: no BM, 4 reads of 2 inputs -> 1000 outputs
    assert t.counters["mvm"] == passes + 4
    assert t.counters["dac"] == passes * 1000 + 4 * 2 and t.counters["adc"] == passes * 2 + 4 * 1000
    assert t.counters["n_forward"] == 3 and t.counters["n_backward"] == 4
    t.update(np.ones(1000, np.float32), np.ones(2, np.float32), 0.01)
    assert t.counters["mvm"] == passes + 4  # updates are not reads


def test_counters_perfect_io():
    t = _tile(_rand((3, 4), 1), IOParameters.perfect())
    t.forward(np.ones((5, 4), np.float32))
    assert (t.counters["mvm"], t.counters["dac"], t.counters["adc"]) == (5, 20, 15)


@pytest.mark.parametrize("io", [IOParameters(), IOParameters.perfect()])
def test_non_finite_inputs_raise(io):
    t = _tile(_rand((3, 4), 1), io)
    x = np.ones(4, np.float32)
    x[2] = np.nan
    with pytest.raises(NonFiniteError, match="'x' contains 1 non-finite"):
        t.forward(x)
    d = np.ones(3, np.float32)
    d[0] = np.inf
    with pytest.raises(NonFiniteError, match="'d' contains 1 non-finite"):
        t.backward(d)


def test_kernel_flags_layout():
    P, F = io_plan(IOParameters(inp_sto_round=True), True)
    assert F[KM.F_INP_STO] == 1 and F[KM.F_BM] == 1 and F[KM.F_NM_MODE] == KM.NM_ABS_MAX
    _, F2 = io_plan(IOParameters(), False)
    assert F2[KM.F_BM] == 0
    assert P[KM.P_BM_LIMIT] == pytest.approx(15.75)
