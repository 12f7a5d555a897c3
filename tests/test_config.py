"""Configs: JSON round trip, dotted overrides with unknown keys and wrong types rejected."""
import pytest

from crossbar_sim import ConfigError, TileConfig
from crossbar_sim.config import Config, apply_overrides
from crossbar_sim.device_models import ConstantStepDevice, SoftBoundsDevice
from crossbar_sim.least_squares.training import TrainConfig


def test_round_trip_nested():
    cfg = TrainConfig(algorithm="tiki_taka", device=SoftBoundsDevice(dw_min=2e-3), lr=0.05)
    assert Config.from_json(cfg.to_json()) == cfg
    t = TileConfig(device=ConstantStepDevice(up_down=0.1))
    assert Config.from_dict(t.to_dict()) == t


def test_dotted_overrides():
    cfg = TrainConfig()
    new = apply_overrides(cfg, {"device.dw_min": "1e-3", "lr": "0.2", "update.desired_bl": "15",
                                "update.update_management": "false", "transfer.fast_lr": 0.3})
    assert new.device.dw_min == 1e-3 and new.lr == 0.2 and new.update.desired_bl == 15
    assert new.update.update_management is False and new.transfer.fast_lr == 0.3
    swapped = apply_overrides(cfg, {"device": "ConstantStepDevice"})
    assert isinstance(swapped.device, ConstantStepDevice)


@pytest.mark.parametrize("overrides, match", [
    ({"device.dw_mn": "1"}, r"Unknown key 'device.dw_mn': SoftBoundsReferenceDevice has no parameter 'dw_mn'"),
    ({"lrr": "1"}, r"Unknown key 'lrr'"),
    ({"lr": "fast"}, r"Override 'lr' expects a float"),
    ({"update.desired_bl": "3.5"}, r"Override 'update.desired_bl' expects an int"),
    ({"update.closed_form": "maybe"}, r"Override 'update.closed_form' expects a bool"),
    ({"lr.value": "1"}, r"Unknown key 'lr.value': 'lr' of TrainConfig has no sub-parameters"),
    ({"device.dw_min": "-1"}, r"'dw_min' parameter of SoftBoundsReferenceDevice must be a float in \(0, inf\)"),
])
def test_bad_overrides(overrides, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(TrainConfig(), overrides)


def test_unknown_type_and_field_in_dict():
    with pytest.raises(ConfigError, match="Unknown config type 'Fancy'"):
        Config.from_dict({"type": "Fancy"})
    with pytest.raises(ConfigError, match=r"Unknown parameter\(s\) 'bogus' for TileConfig"):
        Config.from_dict({"type": "TileConfig", "bogus": 1})
