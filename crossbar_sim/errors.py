"""Exceptions raised by crossbar-sim.

Every error a user can trigger derives from :class:`SimulatorError`; configuration mistakes are also
``ValueError`` so that generic code catching ``ValueError`` still works.
"""


class SimulatorError(Exception):
    """Base class of every error raised on purpose by crossbar-sim."""


class ConfigError(SimulatorError, ValueError):
    """A parameter is out of its allowed range, has the wrong type, or is unknown."""


class ShapeError(SimulatorError, ValueError):
    """Arrays passed to a tile or kernel do not have the shapes the operation needs."""


class NonFiniteError(SimulatorError, ValueError):
    """An input contains NaN or infinity where only finite values make physical sense."""


class DivergenceError(SimulatorError, ArithmeticError):
    """A training run produced a non-finite loss; the run is stopped, its record so far is kept."""


class FormatError(SimulatorError):
    """A file is not a crossbar-sim result file, is truncated, or has an unknown format version."""


class DatasetNotFoundError(SimulatorError):
    """A dataset is neither cached nor installed, or fails its checks; the message says how to get it."""


class DiskFullError(SimulatorError, OSError):
    """The disk filled up while results were being saved; the runs saved before are kept."""


class OutputBusyError(SimulatorError):
    """Another crossbar-sim process is writing the same output file."""
