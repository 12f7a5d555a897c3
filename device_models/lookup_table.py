"""Measured lookup-table device (CrossSim format): each pulse's change sampled from measured dG quantiles vs G.

The tables (``dG_increasing.txt`` / ``dG_decreasing.txt`` of CrossSim's ``create_lookup_table.py``) give the
quantiles of the conductance change ``dG`` caused by one SET (increasing) or RESET (decreasing) pulse, as a
function of the conductance bin ``G`` before the pulse. A pulse on a device at normalised conductance ``w``
picks the nearest G bin, draws ``u ~ U(0, 1)``, interpolates ``dG`` at CDF level ``u`` and adds it, then clips
``w`` to the measured range (kernel ``kernels.update._table_pulse``, NumPy twin in ``kernels.reference``).
There is no counterpart in aihwkit; the sampling is CrossSim's (manual v0.3 section 6.7.1) for one pulse.

Conductance is normalised to weights linearly: ``[G_first_bin, G_last_bin] -> [w_min, w_max]``. The tables
shipped with the package (``device_models/data/device_curves/*.npz``, made by :func:`convert_crosssim_table`
from the files in the team's ``shared/data/device_curves``, see ``SOURCES.md`` there and in this folder):

* ``ENODe``: van de Burgt et al., Nat. Mater. 16, 414 (2017) (organic ECRAM), 48 G bins x 122 CDF levels,
  kept whole.
* ``TaOx_dev1``, ``TaOx_dev2``: TaOx ReRAM measured at Sandia (Agarwal et al., VLSI 2017), 501 x 501 upstream,
  stored every 5th G bin and every 5th CDF level (101 x 101).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from crossbar_sim.errors import ConfigError, FormatError
from crossbar_sim.kernels import update as K

from .base import PulsedDevice

DATA_DIR = os.path.join(os.path.dirname(__file__), "data", "device_curves")
TABLES = {"ENODe": "ENODe.npz", "TaOx_dev1": "TaOx_dev1.npz", "TaOx_dev2": "TaOx_dev2.npz"}


def read_crosssim_table(path: str):
    """Read one CrossSim table: returns ``(g_bins (n_g,), cdf (n_cdf,), dG (n_cdf, n_g))`` in siemens."""
    try:
        with open(path) as fh:
            lines = fh.read().replace("\t", "").splitlines()
    except OSError as exc:
        raise FormatError(f"Cannot read lookup table {path!r}: {exc}") from exc

    def row(line):
        return np.array([float(v) for v in line.split(",") if v.strip()], np.float64)

    try:
        g = row(lines[1])
        cdf = row(lines[2])
        dg = np.array([row(ln) for ln in lines[3:] if ln.strip()])
    except (ValueError, IndexError) as exc:
        raise FormatError(f"{path!r} is not a CrossSim lookup table (G bins, CDF levels, dG matrix): {exc}") from exc
    if dg.shape != (cdf.size, g.size):
        raise FormatError(f"{path!r}: dG matrix has shape {dg.shape}, expected (CDF levels, G bins) = "
                          f"({cdf.size}, {g.size}).")
    return g, cdf, dg


def convert_crosssim_table(src_dir: str, out_path: str, g_every: int = 1, cdf_every: int = 1) -> None:
    """Write ``dG_increasing.txt`` / ``dG_decreasing.txt`` of ``src_dir`` as one compressed ``.npz``
    (float32), keeping every ``g_every``-th G bin and every ``cdf_every``-th CDF level (the last always)."""
    gi, ci, di = read_crosssim_table(os.path.join(src_dir, "dG_increasing.txt"))
    gd, cd, dd = read_crosssim_table(os.path.join(src_dir, "dG_decreasing.txt"))
    if not (np.allclose(gi, gd) and np.allclose(ci, cd)):
        raise FormatError(f"{src_dir!r}: the increasing and decreasing tables use different grids.")
    gsel = np.unique(np.r_[np.arange(0, gi.size, g_every), gi.size - 1])
    csel = np.unique(np.r_[np.arange(0, ci.size, cdf_every), ci.size - 1])
    np.savez_compressed(out_path, g=gi[gsel], cdf=ci[csel], up=di[np.ix_(csel, gsel)].astype(np.float32),
                        down=dd[np.ix_(csel, gsel)].astype(np.float32))


@functools.lru_cache(maxsize=8)
def load_table(table: str):
    """``(g, cdf, up, down)`` of a shipped table name, a ``.npz`` made by :func:`convert_crosssim_table`,
    or a directory holding CrossSim's two text files."""
    if table in TABLES:
        path = os.path.join(DATA_DIR, TABLES[table])
    else:
        path = table
    if os.path.isdir(path):
        g, cdf, up = read_crosssim_table(os.path.join(path, "dG_increasing.txt"))
        _, _, down = read_crosssim_table(os.path.join(path, "dG_decreasing.txt"))
        return g, cdf, up, down
    if not os.path.isfile(path):
        raise ConfigError(f"The 'table' parameter of LookupTableDevice must be one of {', '.join(TABLES)}, a .npz "
                          f"file or a directory with CrossSim tables. Got {table!r} instead.")
    with np.load(path) as z:
        return z["g"].astype(np.float64), z["cdf"].astype(np.float64), z["up"].astype(np.float64), \
            z["down"].astype(np.float64)


@dataclass(frozen=True, repr=False)
class LookupTableDevice(PulsedDevice):
    """A device whose every pulse is sampled from a measured table of dG quantiles vs G.

    Parameters (besides :class:`PulsedDevice`)
    ----------
    table : str
        ``ENODe``, ``TaOx_dev1``, ``TaOx_dev2`` (shipped), a ``.npz`` from :func:`convert_crosssim_table`, or
        a directory with CrossSim's ``dG_increasing.txt`` / ``dG_decreasing.txt``.
    dw_min : float
        Scale of the sampled changes: 0 (default) means "as measured"; it then becomes the measured median
        SET change at mid-range (in weight units). Another value rescales every sampled change by
        ``dw_min / measured``. ``dw_min_dtod`` and ``up_down`` act on this scale as for other devices.
    w_max, w_min : float
        The measured conductance range maps linearly onto ``[w_min, w_max]`` (default [-1, 1]).

    The cycle-to-cycle spread is the table's own (``dw_min_std`` is ignored); device-to-device spreads
    default to 0 (one measured device).
    """

    table: str = "ENODe"
    dw_min: float = 0.0
    dw_min_dtod: float = 0.0
    dw_min_std: float = 0.0
    up_down_dtod: float = 0.0
    w_max: float = 1.0
    w_min: float = -1.0
    w_max_dtod: float = 0.0
    w_min_dtod: float = 0.0

    name = "LookupTable"
    model_code = K.MODEL_TABLE

    def validate(self) -> None:
        if not isinstance(self.table, str):
            raise ConfigError(f"The 'table' parameter of LookupTableDevice must be a str. Got {self.table!r}.")
        if self.dw_min == 0.0:
            object.__setattr__(self, "dw_min", self.measured_dw_min())
        super().validate()

    def measured_dw_min(self) -> float:
        """Median SET change at the middle G bin, in weight units (mean |change| if that median is 0)."""
        g, cdf, up, _ = load_table(self.table)
        if not g[-1] > g[0]:
            raise ConfigError(f"Lookup table {self.table!r} needs at least two increasing G bins.")
        scale = (self.w_max - self.w_min) / (g[-1] - g[0])
        med = float(abs(np.interp(0.5, cdf, up[:, g.size // 2]))) * scale
        return med if med > 0 else float(np.mean(np.abs(up))) * scale

    def _tables(self):
        """Tables in units of the measured ``dw_min``: ``(g_w (n_g,), cdf, up_rel, down_rel)``; a pulse
        changes the weight by ``table value * dw_min`` (times the device's gain)."""
        g, cdf, up, down = load_table(self.table)
        scale = (self.w_max - self.w_min) / (g[-1] - g[0])
        gw = self.w_min + (g - g[0]) * scale
        rel = scale / self.measured_dw_min()
        return gw, cdf, up * rel, down * rel

    def _mean_rel(self, w, which):
        gw, cdf, up, down = self._tables()
        t = up if which == "up" else down
        mean = np.trapezoid(t, cdf, axis=0) / max(cdf[-1] - cdf[0], 1e-300)
        pos = (np.asarray(w, float) - gw[0]) / (gw[-1] - gw[0]) * (gw.size - 1)
        jb = np.clip(np.floor(pos + 0.5).astype(int), 0, gw.size - 1)
        return mean[jb]

    def q_plus(self, w):
        return self._mean_rel(w, "up")

    def q_minus(self, w):
        return -self._mean_rel(w, "down")

    def tile_params(self) -> np.ndarray:
        gw, cdf, up, down = self._tables()
        return np.concatenate([[gw.size, cdf.size, gw[0], gw[-1]], cdf, up.ravel(), down.ravel()]).astype(np.float64)
