"""crossbar-sim: cycle-level simulation of neural-network training on analog crossbar tiles.

Five lines from a device to a convergence curve::

    from crossbar_sim import LeastSquares, TrainConfig, train
    from crossbar_sim.device_models import asymmetric_linear_device
    task = LeastSquares(seed=0)
    result = train(task, TrainConfig(algorithm="tiki_taka", device=asymmetric_linear_device(tau=0.6)), seed=1)
    print(result.metrics["loss"][-1])
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import (ConfigError, DivergenceError, FormatError, NonFiniteError, ShapeError,  # noqa: F401
                     SimulatorError)
from .params import IOParameters, TileConfig, UpdateParameters  # noqa: F401
from .tile import AnalogTile  # noqa: F401
