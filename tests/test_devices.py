"""Device models: one contract for every model, device-to-device statistics, parameter validation."""
import numpy as np
import pytest

from crossbar_sim import AnalogTile, ConfigError, TileConfig, UpdateParameters
from crossbar_sim.device_models import (DEVICE_MODELS, ConstantStepDevice, ExpStepDevice, LinearStepDevice,
                                        PiecewiseStepDevice, PowStepDevice, SoftBoundsDevice,
                                        SoftBoundsReferenceDevice, asymmetric_linear_device, get_device)

ALL = sorted(DEVICE_MODELS)


@pytest.mark.parametrize("name", ALL)
def test_device_configs_round_trip_through_json(name):
    # the contract through a tile (bounds, symmetric point, states) is tests/test_device_contract.py
    dev = get_device(name)
    assert type(dev).from_json(dev.to_json()) == dev


def test_paper_device_decomposition():
    dev = asymmetric_linear_device(tau=0.7)
    w = np.linspace(-0.7, 0.7, 11)
    np.testing.assert_allclose(dev.F(w), 1.0)
    np.testing.assert_allclose(dev.G(w), w / 0.7)
    assert dev.symmetric_point() == pytest.approx(0.0, abs=1e-12)
    assert dev.dw_min_std == 0 and dev.dw_min_dtod == 0 and dev.w_max_dtod == 0


def test_device_to_device_statistics():
    """Drawn spreads match the parameters (seeded; 40,000 devices: relative tolerance 3%)."""
    dev = SoftBoundsDevice(dw_min=0.002, dw_min_dtod=0.3, w_max_dtod=0.2, w_min_dtod=0.1, up_down_dtod=0.0)
    arr = dev.build((200, 200), np.random.default_rng(0))
    su = arr.dp[..., 0].astype(np.float64)
    assert su.mean() == pytest.approx(0.002, rel=0.01)
    assert su.std() / su.mean() == pytest.approx(0.3, rel=0.03)
    hi = arr.dp[..., 6].astype(np.float64)
    assert hi.std() / 0.6 == pytest.approx(0.2, rel=0.03)
    lo = arr.dp[..., 5].astype(np.float64)
    assert lo.std() / 0.6 == pytest.approx(0.1, rel=0.03)
    # enforce_consistency: bounds keep their sign, steps are positive
    assert np.all(hi >= 0) and np.all(lo <= 0) and np.all(su > 0)


def test_up_down_asymmetry_and_its_spread():
    dev = ConstantStepDevice(dw_min=0.01, up_down=0.2, up_down_dtod=0.0, dw_min_dtod=0.0)
    arr = dev.build((3, 3), np.random.default_rng(0))
    np.testing.assert_allclose(arr.dp[..., 0], 0.01)          # up step keeps dw_min
    np.testing.assert_allclose(arr.dp[..., 1], 0.008, rtol=1e-6)  # down step shrinks by up_down
    dev2 = ConstantStepDevice(dw_min=0.01, up_down_dtod=0.1, dw_min_dtod=0.0)
    a2 = dev2.build((100, 100), np.random.default_rng(1))
    diff = (a2.dp[..., 0] - a2.dp[..., 1]) / 0.01  # = 2 r, r ~ N(0, up_down_dtod^2)
    assert diff.std() == pytest.approx(0.2, rel=0.05)


def test_same_construction_seed_same_devices():
    dev = LinearStepDevice(gamma_up=0.4)
    a = AnalogTile(5, 6, TileConfig(device=dev), seed=42)
    b = AnalogTile(5, 6, TileConfig(device=dev), seed=42)
    c = AnalogTile(5, 6, TileConfig(device=dev), seed=43)
    np.testing.assert_array_equal(a.devices.dp, b.devices.dp)
    assert not np.array_equal(a.devices.dp, c.devices.dp)


@pytest.mark.parametrize("kwargs, match", [
    (dict(dw_min=-0.1), r"The 'dw_min' parameter of SoftBoundsDevice must be a float in \(0, inf\). Got -0.1"),
    (dict(dw_min=0.0), r"'dw_min' parameter of SoftBoundsDevice must be a float in \(0, inf\)"),
    (dict(dw_min=float("nan")), r"'dw_min'.*Got nan"),
    (dict(w_min=0.1), r"'w_min' parameter of SoftBoundsDevice must be a float in \(-inf, 0\]. Got 0.1"),
    (dict(w_max=-0.1), r"'w_max' parameter of SoftBoundsDevice must be a float in \[0, inf\)"),
    (dict(w_max=0.0, w_min=0.0), r"'w_max' parameter of SoftBoundsDevice must be larger than 'w_min'"),
    (dict(dw_min_dtod=-1.0), r"'dw_min_dtod'"),
    (dict(dw_min_std="a lot"), r"'dw_min_std' parameter of SoftBoundsDevice must be a float"),
    (dict(mult_noise=1), r"'mult_noise' parameter of SoftBoundsDevice must be a bool"),
])
def test_bad_device_parameters(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SoftBoundsDevice(**kwargs)


def test_bad_model_specific_parameters():
    with pytest.raises(ConfigError, match="'pow_gamma' parameter of PowStepDevice"):
        PowStepDevice(pow_gamma=0.0)
    with pytest.raises(ConfigError, match="'piecewise_up' and 'piecewise_down'"):
        PiecewiseStepDevice(piecewise_up=(1.0, 2.0), piecewise_down=(1.0,))
    with pytest.raises(ConfigError, match="'piecewise_down' parameter of PiecewiseStepDevice must hold finite"):
        PiecewiseStepDevice(piecewise_up=(1.0,), piecewise_down=(-1.0,))
    with pytest.raises(ConfigError, match="'dw_min_std_add' parameter of ExpStepDevice"):
        ExpStepDevice(dw_min_std_add=-1.0)
    with pytest.raises(ConfigError, match="'reference_std' parameter of SoftBoundsReferenceDevice"):
        SoftBoundsReferenceDevice(reference_std=-0.1)


def test_registry_and_unknown_device():
    assert get_device("soft-bounds", w_max=0.8, w_min=-0.8).w_max == 0.8
    assert isinstance(get_device("ConstantStepDevice"), ConstantStepDevice)
    with pytest.raises(ConfigError, match=r"Unknown device 'memristor9000'; known devices: .*SoftBounds"):
        get_device("memristor9000")
    with pytest.raises(ConfigError, match=r"Unknown parameter\(s\) 'dw_mni' for SoftBoundsDevice"):
        get_device("SoftBounds", dw_mni=0.1)


def test_configs_are_frozen():
    dev = SoftBoundsDevice()
    with pytest.raises(Exception):
        dev.dw_min = 0.5  # aihw #106: edits after construction must not be silently ignored
    assert dev.replace(dw_min=0.5).dw_min == 0.5
    assert repr(SoftBoundsDevice(dw_min=0.5)) == "SoftBoundsDevice(dw_min=0.5)"


def test_bad_update_parameters():
    with pytest.raises(ConfigError, match=r"'desired_bl' parameter of UpdateParameters must be an int in \[1, 4096\]"):
        UpdateParameters(desired_bl=0)
    with pytest.raises(ConfigError, match="'pulse_type' parameter of UpdateParameters must be one of"):
        UpdateParameters(pulse_type="magic")
