"""Energy and latency model: counts of tile and digital events -> joules and seconds, by category.

SPEC section 6: every MVM is one read cycle (DAC conversions on the inputs, an array read, ADC conversions on the
outputs); every rank-1 update is one pulse cycle of BL slots; digital work (optimiser arithmetic, SVD, online
PCA, weight-gradient products, digital matrix products) counts flops and bytes of optimiser-state traffic. The
constants are a frozen :class:`EnergyConstants` (a :class:`~crossbar_sim.config.Config`, so
``apply_overrides(EnergyConstants(), {"e_pulse_fJ": "80"})`` and ``--energy e_pulse_fJ=80`` work); each field
cites its source (``/work/shared/ENERGY.md`` holds the quotes and how sure each value is) and
:func:`format_constants` prints them with every budget.

Categories (the total is their sum, by construction and by test):

==================  ===============================================================================
device_pulses       device pulses x ``e_pulse_fJ``
pulse_drivers       pulse-train slots x lines of the tile (rows + columns) x ``e_line_slot_pJ``
array_read          read passes x cells of the tile x ``e_cell_read_fJ``
dac                 input conversions x ``e_dac_bit_pJ`` x ``dac_bits``
adc                 output conversions x ``e_adc_pJ``
optimizer_compute   optimiser flops (moments, projections, SVD, online PCA) x ``e_flop_pJ``
gradient_compute    flops of the digital weight gradients ``G = dY^T X`` x ``e_flop_pJ``
model_compute       flops of digital matrix products (digital weights, attention scores, LM head) x ``e_flop_pJ``
state_memory        optimiser-state bytes moved x the per-byte energy of ``state_memory`` (SRAM or DRAM)
==================  ===============================================================================
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from . import validation as V
from .config import Config

CATEGORIES = ("device_pulses", "pulse_drivers", "array_read", "dac", "adc", "optimizer_compute",
              "gradient_compute", "model_compute", "state_memory")

#: the source of every constant (printed with every budget); quotes and confidence in ENERGY.md
SOURCES = {
    "e_pulse_fJ": "device write energy per pulse; ECRAM ~1 fJ projected (Tang et al., IEDM 2018) to ~80 fJ "
                  "measured (Melianas et al., Sci. Adv. 2020); ReRAM target <10 fJ (S. Yu 2017). Default 10 fJ: "
                  "the middle of that range (device-dependent: override it)",
    "e_line_slot_pJ": "ASSUMPTION: driving one row/column line for one pulse slot costs one ISAAC 1-bit DAC "
                      "event, 4 mW / 1024 DACs x 100 ns = 0.39 pJ (Shafiee et al., ISCA 2016, Table I)",
    "e_cell_read_fJ": "ISAAC 128x128 array, 2 bits/cell: 2.4 mW / 8 arrays x 100 ns / 16384 cells = 1.83 fJ "
                      "(Shafiee et al., ISCA 2016, Table I)",
    "e_dac_bit_pJ": "ISAAC 1-bit DAC: 4 mW / (1024 DACs) x 100 ns = 0.39 pJ per row per cycle (Shafiee et al., "
                    "ISCA 2016, Table I); a multi-bit input costs dac_bits such events (bit-serial, as ISAAC)",
    "dac_bits": "input resolution of aihwkit's default periphery, inp_res = 1/(2^7 - 2): 7 bits",
    "e_adc_pJ": "ISAAC 8-bit ADC: 16 mW / (8 ADCs x 1.2 GS/s) = 1.67 pJ per conversion (Shafiee et al., ISCA "
                "2016, Table I; the default periphery's out_res = 1/(2^9 - 2) is ~9 bits)",
    "e_flop_pJ": "FP32 multiply 3.7 pJ + add 0.9 pJ per fused pair = 2.3 pJ per flop (Horowitz, ISSCC 2014, "
                 "45 nm, 0.9 V)",
    "e_sram_pJ_per_byte": "64-bit read from a 1 MB SRAM 100 pJ = 12.5 pJ/byte (Horowitz, ISSCC 2014)",
    "e_dram_pJ_per_byte": "DRAM access 1.3-2.6 nJ per 64 bits: 1.3 nJ / 8 bytes = 162.5 pJ/byte (Horowitz, ISSCC "
                          "2014; HBM2 is ~31 pJ/byte, NeuroSim V2.1: set it to compare)",
    "state_memory": "where optimiser states live: 'sram' (the toy model's states fit in 1 MB) or 'dram'",
    "t_mvm_ns": "one MVM read cycle during training: 40 ns (Rasch et al., Nat. Commun. 15:7133, 2024, Table 1)",
    "t_pulse_ns": "one pulse slot: 5 ns (Rasch et al., Nat. Commun. 15:7133, 2024, Table 1)",
}

UNITS = {"e_pulse_fJ": "fJ/pulse", "e_line_slot_pJ": "pJ/line/slot", "e_cell_read_fJ": "fJ/cell/read",
         "e_dac_bit_pJ": "pJ/bit", "dac_bits": "bits", "e_adc_pJ": "pJ/conversion", "e_flop_pJ": "pJ/flop",
         "e_sram_pJ_per_byte": "pJ/byte", "e_dram_pJ_per_byte": "pJ/byte", "state_memory": "",
         "t_mvm_ns": "ns", "t_pulse_ns": "ns"}


@dataclass(frozen=True, repr=False)
class EnergyConstants(Config):
    """Per-event energies and times (see :data:`SOURCES` for where each default comes from)."""

    e_pulse_fJ: float = 10.0          # ECRAM 1-80 fJ (Tang 2018, Melianas 2020), ReRAM target <10 fJ (Yu 2017)
    e_line_slot_pJ: float = 0.39      # assumption: one ISAAC 1-bit DAC event per line per slot (ISAAC, Table I)
    e_cell_read_fJ: float = 1.83      # ISAAC array read, 2.4 mW / 8 arrays x 100 ns / 128^2 cells (Table I)
    e_dac_bit_pJ: float = 0.39        # ISAAC 1-bit DAC, 4 mW / 1024 x 100 ns (Table I)
    dac_bits: int = 7                 # aihwkit default inp_res 1/(2^7-2)
    e_adc_pJ: float = 1.67            # ISAAC 8-bit ADC, 16 mW / (8 x 1.2 GS/s) (Table I)
    e_flop_pJ: float = 2.3            # Horowitz ISSCC 2014, FP32 (3.7 mult + 0.9 add) / 2
    e_sram_pJ_per_byte: float = 12.5  # Horowitz ISSCC 2014, 1 MB SRAM, 100 pJ per 64 bits
    e_dram_pJ_per_byte: float = 162.5  # Horowitz ISSCC 2014, DRAM 1.3 nJ per 64 bits
    state_memory: str = "sram"
    t_mvm_ns: float = 40.0            # Rasch et al. 2024, Table 1
    t_pulse_ns: float = 5.0           # Rasch et al. 2024, Table 1

    @classmethod
    def preset(cls, name: str, **overrides) -> EnergyConstants:
        """The constants of scenario ``name`` (:data:`SCENARIOS`), with ``overrides`` on top."""
        if name not in SCENARIOS:
            from .errors import ConfigError

            raise ConfigError(f"Unknown energy scenario {name!r}; known: {', '.join(SCENARIOS)}.")
        return cls(**{**SCENARIOS[name]["constants"], **overrides})

    def validate(self) -> None:
        o = type(self).__name__
        for f in fields(self):
            if f.name == "state_memory":
                V.check_choice(self.state_memory, "state_memory", o, ("sram", "dram"))
            elif f.name == "dac_bits":
                V.check_int(self.dac_bits, "dac_bits", o, 0, 64)
            else:
                V.check_float(getattr(self, f.name), f.name, o, 0.0)


#: named scenarios over the sourced ranges of ENERGY.md: ``{name: {"description", "constants"}}`` (only the
#: constants that differ from the defaults). ASSUMPTION marks a value without a primary source.
SCENARIOS = {
    "default": {"description": "the defaults: Horowitz 45 nm FP32 arithmetic, SRAM state, 10 fJ per pulse "
                               "(ReRAM target <10 fJ, S. Yu 2017; middle of ECRAM's 1-80 fJ), ISAAC periphery",
                "constants": {}},
    "digital_7nm": {"description": "digital arithmetic at 7 nm: 0.4 pJ/flop. ASSUMPTION: Horowitz's 45 nm FP32 "
                                   "2.3 pJ/flop scaled ~0.16x (linear node scaling 45 -> 7 nm), consistent with "
                                   "the 0.75 pJ per FP32 FMA (0.375 pJ/flop) estimated for AMD Zen 2 (7 nm) in "
                                   "stillwater-sc/universal's cost models; no primary 7 nm measurement found. "
                                   "SRAM/DRAM energies kept at 45 nm",
                    "constants": {"e_flop_pJ": 0.4}},
    "ecram_1fJ": {"description": "Li/WO3 ECRAM, ~1 fJ per write projected for 100x100 nm^2 (Tang et al., IEDM "
                                 "2018)", "constants": {"e_pulse_fJ": 1.0}},
    "ecram_80fJ": {"description": "organic ECRAM, ~80 fJ per write measured (Melianas et al., Sci. Adv. 2020)",
                   "constants": {"e_pulse_fJ": 80.0}},
    "enode_10pJ": {"description": "ENODe, <10 pJ per write for 10^3 um^2 devices (van de Burgt et al., Nat. "
                                  "Mater. 2017): the top of the measured range", "constants": {"e_pulse_fJ": 1.0e4}},
    "state_hbm2": {"description": "optimiser state in HBM2, 3.9 pJ/bit = 31.2 pJ/byte (NeuroSim V2.1 DRAM.cpp)",
                   "constants": {"state_memory": "dram", "e_dram_pJ_per_byte": 31.2}},
    "state_dram": {"description": "optimiser state in DRAM, 1.3 nJ per 64 bits = 162.5 pJ/byte (Horowitz, ISSCC "
                                  "2014)", "constants": {"state_memory": "dram"}},
    "adc_kull": {"description": "ADC at Kull et al.'s 3.1 mW / 1.2 GS/s = 2.58 pJ per conversion (ISSCC 2013, the "
                                "SAR ADC ISAAC builds on)", "constants": {"e_adc_pJ": 2.58}},
    "drivers_x0.1": {"description": "ASSUMPTION: line drivers 10x cheaper than one ISAAC 1-bit DAC event per line "
                                    "and slot (0.039 pJ): the default driver energy is itself an assumption",
                     "constants": {"e_line_slot_pJ": 0.039}},
    "analog_best": {"description": "everything favouring analog updates: 1 fJ pulses (ECRAM, Tang 2018), drivers "
                                   "x0.1 (ASSUMPTION), 45 nm digital, state in DRAM (Horowitz)",
                    "constants": {"e_pulse_fJ": 1.0, "e_line_slot_pJ": 0.039, "state_memory": "dram"}},
    "analog_worst": {"description": "everything against analog updates: 10 pJ pulses (ENODe), ADC 2.58 pJ (Kull), "
                                    "7 nm digital (ASSUMPTION, as digital_7nm), state in SRAM",
                     "constants": {"e_pulse_fJ": 1.0e4, "e_adc_pJ": 2.58, "e_flop_pJ": 0.4}},
}


@dataclass
class EventCounts:
    """What happened, summed over tiles and optimisers (all counts, no units)."""

    n_pulses: int = 0
    n_pulse_cycles: int = 0
    n_slots: int = 0
    line_slots: int = 0       # sum over tiles of n_slots x (out + in)
    mvm: int = 0
    cell_reads: int = 0       # sum over tiles of read passes x out x in
    dac: int = 0
    adc: int = 0
    optimizer_flops: int = 0
    gradient_flops: int = 0
    model_flops: int = 0
    state_bytes_moved: int = 0

    def add_tile(self, counters: dict, shape) -> None:
        """Add one array's counters (``mvm``, ``dac``, ``adc``, ``n_pulses``, ``n_pulse_cycles``, ``n_slots``)."""
        out, inp = int(shape[0]), int(shape[1])
        self.n_pulses += int(counters.get("n_pulses", 0))
        self.n_pulse_cycles += int(counters.get("n_pulse_cycles", 0))
        self.n_slots += int(counters.get("n_slots", 0))
        self.line_slots += int(counters.get("n_slots", 0)) * (out + inp)
        self.mvm += int(counters.get("mvm", 0))
        self.cell_reads += int(counters.get("mvm", 0)) * out * inp
        self.dac += int(counters.get("dac", 0))
        self.adc += int(counters.get("adc", 0))

    def as_dict(self) -> dict:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_attrs(cls, attrs: dict) -> EventCounts:
        """The counts of a stored budget: ``count_<name>`` attributes (:meth:`Budget.as_attrs`) or a plain
        ``{name: count}`` dict (:attr:`Budget.counts`). A missing count raises :class:`FormatError`."""
        from .errors import FormatError

        out = {}
        for f in fields(cls):
            for key in (f"count_{f.name}", f.name):
                if key in attrs:
                    out[f.name] = int(attrs[key])
                    break
            else:
                raise FormatError(f"The stored budget has no count of {f.name!r} (attribute count_{f.name}); "
                                  f"it cannot be re-priced.")
        return cls(**out)


@dataclass
class Budget:
    """Energy (J) by category, their total, and the analog latency estimate (s)."""

    energy_J: dict
    counts: dict
    constants: dict
    latency_s: float
    memory_bytes: dict = field(default_factory=dict)

    @property
    def total_J(self) -> float:
        return float(sum(self.energy_J.values()))

    def as_attrs(self) -> dict:
        """Flat ``{name: value}`` for HDF5 attributes (``energy_<category>_J``, counts, memory, constants)."""
        out = {f"energy_{k}_J": float(v) for k, v in self.energy_J.items()}
        out["energy_total_J"] = self.total_J
        out["latency_analog_s"] = float(self.latency_s)
        out.update({f"count_{k}": int(v) for k, v in self.counts.items()})
        out.update({f"memory_{k}_bytes": int(v) for k, v in self.memory_bytes.items()})
        out.update({f"const_{k}": v for k, v in self.constants.items()})
        return out


def compute_budget(counts: EventCounts, constants: EnergyConstants | None = None,
                   memory_bytes: dict | None = None) -> Budget:
    """Turn counts into joules by category (:data:`CATEGORIES`) and an analog latency.

    The latency is ``mvm x t_mvm + slots x t_pulse``: every read cycle and pulse slot of every tile one after the
    other (an upper bound; tiles working in parallel divide it).
    """
    c = EnergyConstants() if constants is None else constants
    mem = c.e_sram_pJ_per_byte if c.state_memory == "sram" else c.e_dram_pJ_per_byte
    e = {
        "device_pulses": counts.n_pulses * c.e_pulse_fJ * 1e-15,
        "pulse_drivers": counts.line_slots * c.e_line_slot_pJ * 1e-12,
        "array_read": counts.cell_reads * c.e_cell_read_fJ * 1e-15,
        "dac": counts.dac * c.e_dac_bit_pJ * c.dac_bits * 1e-12,
        "adc": counts.adc * c.e_adc_pJ * 1e-12,
        "optimizer_compute": counts.optimizer_flops * c.e_flop_pJ * 1e-12,
        "gradient_compute": counts.gradient_flops * c.e_flop_pJ * 1e-12,
        "model_compute": counts.model_flops * c.e_flop_pJ * 1e-12,
        "state_memory": counts.state_bytes_moved * mem * 1e-12,
    }
    latency = counts.mvm * c.t_mvm_ns * 1e-9 + counts.n_slots * c.t_pulse_ns * 1e-9
    return Budget(energy_J=e, counts=counts.as_dict(), constants=c.to_dict(), latency_s=latency,
                  memory_bytes=dict(memory_bytes or {}))


def reprice(counts, constants: EnergyConstants | str | None = None, memory_bytes: dict | None = None) -> Budget:
    """The budget of stored event counts under other constants, without retraining.

    ``counts``: an :class:`EventCounts`, a stored budget's attributes (``count_*``, as the HDF5 ``budget`` group
    and :func:`crossbar_sim.engine.results.lm_records` give them; their ``memory_*_bytes`` are kept), or a
    ``{name: count}`` dict. ``constants``: an :class:`EnergyConstants` or a scenario name (:data:`SCENARIOS`).
    """
    if isinstance(constants, str):
        constants = EnergyConstants.preset(constants)
    if isinstance(counts, EventCounts):
        ev = counts
    else:
        ev = EventCounts.from_attrs(counts)
        if memory_bytes is None:
            memory_bytes = {k[len("memory_"):-len("_bytes")]: int(v) for k, v in counts.items()
                            if k.startswith("memory_") and k.endswith("_bytes")}
    return compute_budget(ev, constants, memory_bytes)


def energy_from_overrides(overrides: dict) -> EnergyConstants:
    """``--energy`` items as a dict (``{"scenario": "ecram_80fJ", "state_memory": "dram"}``): the scenario's
    constants (default: ``default``) with the other keys applied on top (strings coerced, unknown keys raise
    :class:`~crossbar_sim.errors.ConfigError`)."""
    from .config import apply_overrides

    rest = dict(overrides)
    base = EnergyConstants.preset(str(rest.pop("scenario", "default")))
    return apply_overrides(base, rest)


def format_scenarios() -> str:
    """One line per scenario: name, the constants it changes, and its source."""
    lines = ["energy scenarios (EnergyConstants.preset(name)):"]
    for name, sc in SCENARIOS.items():
        ch = ", ".join(f"{k}={v}" for k, v in sc["constants"].items()) or "(defaults)"
        lines.append(f"  {name:<13} {ch}: {sc['description']}")
    return "\n".join(lines)


def format_constants(constants: EnergyConstants | None = None) -> str:
    """One line per constant: name, value, unit and source."""
    c = EnergyConstants() if constants is None else constants
    lines = ["energy model constants (override with --energy NAME=VALUE):"]
    for f in fields(c):
        v = getattr(c, f.name)
        lines.append(f"  {f.name:<20} = {v!s:<8} {UNITS[f.name]:<14} {SOURCES[f.name]}")
    return "\n".join(lines)


def format_budget(b: Budget) -> str:
    """Energy by category with shares, and the total."""
    tot = b.total_J
    lines = [f"  {k:<18} {v:11.4e} J  {100 * v / tot if tot else 0.0:5.1f}%" for k, v in b.energy_J.items()]
    lines.append(f"  {'total':<18} {tot:11.4e} J   (analog latency upper bound {b.latency_s:.3e} s)")
    return "\n".join(lines)
