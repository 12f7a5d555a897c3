"""crossbar-sim: cycle-level simulation of neural-network training on analog crossbar tiles.

Five lines from a device to a convergence curve::

    from crossbar_sim import LeastSquaresTask, TrainConfig, train
    from crossbar_sim.device_models import asymmetric_linear_device
    device = asymmetric_linear_device(tau=0.6)
    result = train(LeastSquaresTask(noise_std=0.3), TrainConfig(algorithm="tiki_taka", device=device), seed=1)
    print(result.steps[-1], result.metrics["loss"][-1])
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import (ConfigError, DivergenceError, FormatError, NonFiniteError, ShapeError,  # noqa: F401
                     SimulatorError)
from .tiles.params import IOParameters, TileConfig, UpdateParameters  # noqa: F401
from .tiles.analog import AnalogTile  # noqa: F401
from .tiles.onesided import OneSidedTile, OneSidedTileConfig, OneSidedUnitCell  # noqa: F401
from .tiles.tiki_taka import CompoundTileConfig, TikiTakaTile, TransferCompound, TransferParams  # noqa: F401
from .least_squares.task import LeastSquares, LeastSquaresTask  # noqa: F401
from .least_squares.training import RunResult, TrainConfig, Trainer, train  # noqa: F401
from .tiles.vector import ReferenceUnitCell, VectorTile, VectorTileConfig, VectorUnitCell  # noqa: F401
from .tiles.mixed_precision import (MixedPrecisionCompound, MixedPrecisionTile,  # noqa: F401
                                    MixedPrecisionTileConfig)
from .tiles.factory import build_tile  # noqa: F401
from .presets import build_config  # noqa: F401
