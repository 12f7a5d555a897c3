"""Energy model: totals are the sum of the categories, every category is its count times its constant,
constants are validated, overridable and printed with their sources."""
import numpy as np
import pytest

from crossbar_sim.config import apply_overrides
from crossbar_sim.energy import (CATEGORIES, SOURCES, EnergyConstants, EventCounts, compute_budget, format_budget,
                                 format_constants)
from crossbar_sim.errors import ConfigError


def _counts():
    ev = EventCounts()
    ev.add_tile({"mvm": 10, "dac": 640, "adc": 1280, "n_pulses": 5000, "n_pulse_cycles": 7, "n_slots": 100},
                (128, 64))
    ev.add_tile({"mvm": 3, "dac": 192, "adc": 192, "n_pulses": 20, "n_pulse_cycles": 2, "n_slots": 9}, (64, 64))
    ev.optimizer_flops, ev.gradient_flops, ev.model_flops, ev.state_bytes_moved = 1000, 2000, 3000, 400
    return ev


def test_event_counts_from_tiles():
    ev = _counts()
    assert ev.n_pulses == 5020 and ev.n_pulse_cycles == 9 and ev.n_slots == 109 and ev.mvm == 13
    assert ev.cell_reads == 10 * 128 * 64 + 3 * 64 * 64
    assert ev.line_slots == 100 * (128 + 64) + 9 * 128


@pytest.mark.parametrize("memory", ["sram", "dram"])
def test_total_is_sum_of_categories_and_each_is_count_times_constant(memory):
    c = EnergyConstants(state_memory=memory)
    ev = _counts()
    b = compute_budget(ev, c)
    assert tuple(b.energy_J) == CATEGORIES
    assert b.total_J == pytest.approx(sum(b.energy_J.values()), rel=1e-15)
    e = b.energy_J
    assert e["device_pulses"] == pytest.approx(5020 * 10e-15)
    assert e["pulse_drivers"] == pytest.approx(ev.line_slots * 0.39e-12)
    assert e["array_read"] == pytest.approx(ev.cell_reads * 1.83e-15)
    assert e["dac"] == pytest.approx(832 * 0.39e-12 * 7)
    assert e["adc"] == pytest.approx(1472 * 1.67e-12)
    assert e["optimizer_compute"] == pytest.approx(1000 * 2.3e-12)
    assert e["gradient_compute"] == pytest.approx(2000 * 2.3e-12)
    assert e["model_compute"] == pytest.approx(3000 * 2.3e-12)
    assert e["state_memory"] == pytest.approx(400 * (12.5 if memory == "sram" else 162.5) * 1e-12)
    assert b.latency_s == pytest.approx(13 * 40e-9 + 109 * 5e-9)
    attrs = b.as_attrs()
    assert attrs["energy_total_J"] == pytest.approx(sum(attrs[f"energy_{k}_J"] for k in CATEGORIES))
    assert attrs["const_state_memory"] == memory and attrs["count_n_pulses"] == 5020


def test_overrides_scale_their_category_only():
    ev = _counts()
    base = compute_budget(ev).energy_J
    c = apply_overrides(EnergyConstants(), {"e_pulse_fJ": "80", "dac_bits": "8"})
    new = compute_budget(ev, c).energy_J
    assert new["device_pulses"] == pytest.approx(8 * base["device_pulses"])
    assert new["dac"] == pytest.approx(base["dac"] * 8 / 7)
    for k in CATEGORIES:
        if k not in ("device_pulses", "dac"):
            assert new[k] == base[k]


def test_constants_validation_and_printing():
    with pytest.raises(ConfigError, match="The 'e_pulse_fJ' parameter of EnergyConstants must be a float in"):
        EnergyConstants(e_pulse_fJ=-1.0)
    with pytest.raises(ConfigError, match="The 'state_memory' parameter of EnergyConstants must be one of"):
        EnergyConstants(state_memory="flash")
    with pytest.raises(ConfigError, match="Unknown key 'e_foo'"):
        apply_overrides(EnergyConstants(), {"e_foo": "1"})
    text = format_constants()
    for name, src in SOURCES.items():
        assert name in text and src in text
    assert "total" in format_budget(compute_budget(_counts()))
    assert set(SOURCES) == {f for f in EnergyConstants.__dataclass_fields__}


def test_zero_counts_zero_energy():
    b = compute_budget(EventCounts())
    assert b.total_J == 0.0 and all(np.isfinite(list(b.energy_J.values())))


def test_scenarios_are_presets_of_changed_constants():
    from crossbar_sim.energy import SCENARIOS, energy_from_overrides, format_scenarios

    assert EnergyConstants.preset("default") == EnergyConstants()
    for name, sc in SCENARIOS.items():
        c = EnergyConstants.preset(name)
        assert c.non_default() == sc["constants"], name  # exactly the constants the scenario names change
        assert name in format_scenarios() and sc["description"]
    assert EnergyConstants.preset("ecram_80fJ").e_pulse_fJ == 80.0
    assert EnergyConstants.preset("ecram_80fJ", state_memory="dram").state_memory == "dram"
    with pytest.raises(ConfigError, match="Unknown energy scenario 'pcm'; known: default"):
        EnergyConstants.preset("pcm")
    c = energy_from_overrides({"scenario": "digital_7nm", "e_pulse_fJ": "80"})
    assert c.e_flop_pJ == 0.4 and c.e_pulse_fJ == 80.0
    assert energy_from_overrides({}) == EnergyConstants()


def test_reprice_stored_counts_equals_a_fresh_budget():
    """A stored budget (as_attrs, what HDF5 holds) re-priced under other constants equals the budget computed
    from the original counts under those constants; memory attributes are carried over."""
    from crossbar_sim.energy import reprice
    from crossbar_sim.errors import FormatError

    ev = _counts()
    attrs = compute_budget(ev, memory_bytes={"optimizer_state_total": 123}).as_attrs()
    for name in ("default", "enode_10pJ", "state_dram"):
        c = EnergyConstants.preset(name)
        b = reprice(attrs, name)
        assert b.energy_J == compute_budget(ev, c).energy_J
        assert b.memory_bytes == {"optimizer_state_total": 123}
    assert reprice(ev, EnergyConstants(e_pulse_fJ=80)).energy_J["device_pulses"] == pytest.approx(5020 * 80e-15)
    assert reprice(compute_budget(ev).counts).total_J == compute_budget(ev).total_J
    del attrs["count_n_pulses"]
    with pytest.raises(FormatError, match="no count of 'n_pulses'"):
        reprice(attrs)
