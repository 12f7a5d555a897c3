"""crossbar-sim: cycle-level simulation of neural-network training on analog crossbar tiles.

Five lines from a device to a convergence curve::

    from crossbar_sim import LeastSquaresTask, TrainConfig, train
    from crossbar_sim.device_models import asymmetric_linear_device
    device = asymmetric_linear_device(tau=0.6)
    result = train(LeastSquaresTask(noise_std=0.3), TrainConfig(algorithm="tiki_taka", device=device), seed=1)
    print(result.steps[-1], result.metrics["loss"][-1])

The public names below are imported on first use (PEP 562), so that ``import crossbar_sim`` -- and with it
``crossbar-sim --help`` -- does not load numba, scipy, h5py or matplotlib.
"""
from __future__ import annotations

import importlib

#: the package version (the one place it is written: pyproject.toml reads it, see [tool.setuptools.dynamic])
__version__ = "0.1.0"

#: public name -> module (relative to this package) that defines it
_PUBLIC = {
    **dict.fromkeys(("ConfigError", "DivergenceError", "FormatError", "NonFiniteError", "ShapeError",
                     "SimulatorError"), ".errors"),
    **dict.fromkeys(("IOParameters", "TileConfig", "UpdateParameters"), ".tiles.params"),
    "AnalogTile": ".tiles.analog",
    **dict.fromkeys(("OneSidedTile", "OneSidedTileConfig", "OneSidedUnitCell"), ".tiles.onesided"),
    **dict.fromkeys(("CompoundTileConfig", "TikiTakaTile", "TransferCompound", "TransferParams"),
                    ".tiles.tiki_taka"),
    **dict.fromkeys(("LeastSquares", "LeastSquaresTask"), ".least_squares.task"),
    **dict.fromkeys(("RunResult", "TrainConfig", "Trainer", "train"), ".least_squares.training"),
    **dict.fromkeys(("ReferenceUnitCell", "VectorTile", "VectorTileConfig", "VectorUnitCell"), ".tiles.vector"),
    **dict.fromkeys(("MixedPrecisionCompound", "MixedPrecisionTile", "MixedPrecisionTileConfig"),
                    ".tiles.mixed_precision"),
    "build_tile": ".tiles.factory",
    "build_config": ".presets",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'crossbar_sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
