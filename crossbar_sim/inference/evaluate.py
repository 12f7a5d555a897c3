"""Accuracy (networks) or loss (least squares) of trained weights at times after programming onto inference tiles.

* :func:`program` puts a weight matrix, a tile, a network or a trainer onto inference tiles (one draw);
* :class:`InferenceEvalConfig` describes an evaluation (noise model, compensations, times, draws): a field of
  :class:`~crossbar_sim.nn.training.NetConfig` and :class:`~crossbar_sim.least_squares.training.TrainConfig`
  (``inference``; None: no evaluation), so its fields are sweep axes (``inference.noise_model``,
  ``inference.compensation``, ``inference.draws``, ...);
* :func:`evaluate_after_training` runs one at the end of a run (the engine's hook), :func:`evaluate_trained` the
  same on weights read from a result file (:func:`~crossbar_sim.inference.weights.final_weights`,
  ``crossbar-sim evaluate``).

One draw = one programming of every tile (programming noise and drift exponents) followed by
:meth:`drift_to` at every time in increasing order (a new read-noise sample each); every compensation is
measured on the same drifted conductances (a paired comparison), each with its own forward-periphery noise.
Draw ``d`` is seeded by child ``d`` of ``SeedSequence([seed, 18])``: independent of the training streams of the
same seed, and the first draws do not change when more are asked for.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import Config
from ..errors import ConfigError
from ..rng import make_seedseq
from ..tiles.params import IOParameters
from ..validation import check_bool, check_choice, check_int
from .compensation import COMPENSATIONS, READOUTS, get_compensation
from .network import LAYER_CHOICES, InferenceNet
from .noise import PCMLikeNoiseModel, get_noise_model
from .tile import InferenceTile
from .weights import TrainedWeights, model_layers, tile_source, trained_weights

#: 1 s, 1 hour, 1 day, 1 month (30 days), 1 year (365 days): the times of PCM inference papers
DEFAULT_TIMES = (1.0, 3600.0, 86400.0, 2592000.0, 31536000.0)
#: second entropy word of the evaluation seed (keeps the draws independent of a training run's streams)
SEED_SALT = 18


@dataclass(frozen=True, repr=False)
class InferenceEvalConfig(Config):
    """An evaluation of trained weights on inference tiles.

    Parameters
    ----------
    noise_model : InferenceNoiseModel
        ``PCMLikeNoiseModel`` (default), ``GenericNoiseModel`` or ``DriftOnlyNoiseModel``.
    compensation : tuple of str
        Drift compensations to measure, each on the same draws: ``none``, ``global``, ``per_column``.
    times : tuple of float
        Times after programming (s), >= 0 (default 1 s, 1 h, 1 day, 30 days, 365 days).
    draws : int
        Independent programmings (mean and spread are over these).
    layers : str
        ``all`` (every weight layer on inference tiles) or ``analog`` (only those trained on analog tiles).
    forward : IOParameters or None
        Periphery of the inference reads (None: the run's forward periphery).
    compensation_readout : str
        Calibration reads ``forward`` (through the periphery, aihwkit) or ``exact``.
    exact_reference : bool
        Compensation reference from the unprogrammed weights (aihwkit ``...WithExactReference``).
    n_test : int
        Test images (networks; 0: the run's test set).
    eval_batch : int
        Images per forward call.
    label : str
        Prefix of the result groups (default: the noise model's short name): ``<label>_<compensation>``.
    """

    noise_model: Config = field(default_factory=PCMLikeNoiseModel)
    compensation: tuple = ("none", "global")
    times: tuple = DEFAULT_TIMES
    draws: int = 10
    layers: str = "all"
    forward: Any = None
    compensation_readout: str = "forward"
    exact_reference: bool = False
    n_test: int = 0
    eval_batch: int = 1000
    label: str = ""

    def validate(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "noise_model", get_noise_model(self.noise_model))
        comp = (self.compensation,) if isinstance(self.compensation, str) else tuple(self.compensation)
        if not comp:
            raise ConfigError(f"The 'compensation' parameter of {owner} must name at least one of "
                              f"{', '.join(COMPENSATIONS)}. Got an empty list.")
        for c in comp:
            if c not in COMPENSATIONS:
                raise ConfigError(f"The 'compensation' parameter of {owner} must hold names among "
                                  f"{', '.join(COMPENSATIONS)}. Got {c!r} instead.")
        if len(set(comp)) != len(comp):
            raise ConfigError(f"The 'compensation' parameter of {owner} names {comp!r}: each at most once.")
        object.__setattr__(self, "compensation", comp)
        object.__setattr__(self, "times", check_times(self.times, owner))
        check_int(self.draws, "draws", owner, 1, 100000)
        check_choice(self.layers, "layers", owner, LAYER_CHOICES)
        if self.forward is not None and not isinstance(self.forward, IOParameters):
            raise ConfigError(f"The 'forward' parameter of {owner} must be an IOParameters or None. "
                              f"Got {self.forward!r} instead.")
        check_choice(self.compensation_readout, "compensation_readout", owner, READOUTS)
        check_bool(self.exact_reference, "exact_reference", owner)
        check_int(self.n_test, "n_test", owner, 0, 10**7)
        check_int(self.eval_batch, "eval_batch", owner, 1, 1 << 20)
        if not isinstance(self.label, str) or any(ch in self.label for ch in "/ "):
            raise ConfigError(f"The 'label' parameter of {owner} must be a string without '/' or spaces. "
                              f"Got {self.label!r} instead.")

    @property
    def group_prefix(self) -> str:
        return self.label or self.noise_model.short_name

    def compensations(self) -> list:
        """``[(name, DriftCompensation or None)]`` in the configured order."""
        return [(c, get_compensation(c, self.compensation_readout, self.exact_reference)) for c in self.compensation]


def check_times(times, owner: str = "InferenceEvalConfig") -> tuple:
    """``times`` as a tuple of floats, each finite and >= 0 (seconds after programming); raises ConfigError."""
    if isinstance(times, (int, float)) and not isinstance(times, bool):
        times = (times,)
    if not isinstance(times, (list, tuple)) or not times:
        raise ConfigError(f"The 'times' parameter of {owner} must be a non-empty list of times in seconds. "
                          f"Got {times!r} instead.")
    out = []
    for t in times:
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise ConfigError(f"The 'times' parameter of {owner} must hold finite times >= 0 (s after programming). "
                              f"Got {t!r} instead.")
        out.append(float(t))
    return tuple(out)


def as_eval_config(value, owner: str):
    """``value`` of a config's ``inference`` field as an :class:`InferenceEvalConfig` or None (a type name or a
    dict from a dotted override is accepted)."""
    if value is None or isinstance(value, InferenceEvalConfig):
        return value
    if isinstance(value, str) and value in ("InferenceEvalConfig", "default", "true", "on"):
        return InferenceEvalConfig()
    if isinstance(value, str) and value in ("none", "false", "off"):
        return None
    if isinstance(value, dict):
        cfg = Config.from_dict({"type": "InferenceEvalConfig", **value})
        if isinstance(cfg, InferenceEvalConfig):
            return cfg
    raise ConfigError(f"The 'inference' parameter of {owner} must be None or an InferenceEvalConfig. "
                      f"Got {value!r} instead.")


def _draw_root(seed) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    ss = make_seedseq(seed)
    return np.random.SeedSequence([int(x) for x in np.atleast_1d(ss.entropy)] + [SEED_SALT])


# ---------------------------------------------------------------------------------------------- programming
def network_structure(net_config_dict: dict):
    """A network of the run's architecture (weights irrelevant), from the ``net`` config of a run."""
    from .. import device_models  # noqa: F401 - registers the device configs named in the JSON
    from ..nn.models import build_model
    from ..nn.training import NetConfig

    cfg = NetConfig.from_dict(net_config_dict) if isinstance(net_config_dict, dict) else net_config_dict
    return build_model(cfg.replace(algorithm="digital_sgd"), 0)


def program(tile_or_model, noise_model=None, seed=None, *, forward=None, compensation=None, layers="all"):
    """Program trained weights onto inference tiles (one draw of programming noise and drift exponents).

    Parameters
    ----------
    tile_or_model : array, tile, network, trainer or TrainedWeights
        A weight matrix (out, in) or any tile (analog, one-sided pair: ``g_plus``/``g_minus`` as they are,
        Tiki-Taka: ``gamma A + C``, digital) -> :class:`InferenceTile`; a network (``Sequential``), a
        :class:`~crossbar_sim.nn.training.NetTrainer` or network :class:`TrainedWeights` -> :class:`InferenceNet`;
        a least-squares ``Trainer`` -> :class:`InferenceTile`.
    noise_model : InferenceNoiseModel or str
        Default ``PCMLikeNoiseModel()``.
    seed : int, SeedSequence or None
    forward : IOParameters or 'perfect', optional
        Periphery of the reads (default: the tile's / run's forward periphery; aihwkit's defaults for an array).
    compensation : str or DriftCompensation, optional
        ``global``, ``per_column`` or ``none`` (default).
    layers : str
        Networks: ``all`` or ``analog`` weight layers on inference tiles.

    Returns
    -------
    InferenceTile or InferenceNet
        Call ``drift_to(t)`` to move it to ``t`` seconds after programming; reads go through the periphery.
    """
    model = PCMLikeNoiseModel() if noise_model is None else get_noise_model(noise_model)
    obj = tile_or_model
    if isinstance(obj, (np.ndarray, list, tuple)):
        return InferenceTile(np.asarray(obj), model, seed, forward, compensation=compensation)
    if hasattr(obj, "task") and hasattr(obj, "model"):  # least-squares Trainer
        w, pair = tile_source(obj.model)
        io = forward if forward is not None else obj.config.forward
        return InferenceTile(w, model, seed, io, pair=pair, compensation=compensation)
    if hasattr(obj, "history") and hasattr(obj, "model"):  # NetTrainer
        io = forward if forward is not None else obj.config.forward
        return InferenceNet(obj.model, trained_weights(obj), model, seed, io, layers, obj.config.max_input_size,
                            obj.config.max_output_size, compensation)
    if isinstance(obj, TrainedWeights):
        return _program_trained(obj, model, seed, forward, compensation, layers)
    if hasattr(obj, "weight_layers"):  # a Sequential
        io = forward if forward is not None else _first_forward(obj)
        return InferenceNet(obj, TrainedWeights("network", {}, 0, 0, model_layers(obj)), model, seed, io, layers,
                            compensation=compensation)
    if hasattr(obj, "read_weights"):
        w, pair = tile_source(obj)
        io = forward
        if io is None:
            cfg = getattr(obj, "config", None)
            io = getattr(cfg, "forward", None) if cfg is not None else None
        return InferenceTile(w, model, seed, io, pair=pair, compensation=compensation)
    raise ConfigError(f"program() takes a weight matrix, a tile, a network, a trainer or TrainedWeights. "
                      f"Got {type(obj).__name__}.")


def _first_forward(model) -> IOParameters:
    """The forward periphery of a network's first analog tile (aihwkit's defaults if it has none)."""
    for layer in model.weight_layers().values():
        tile = layer.tile
        t = tile.parts[0][2] if hasattr(tile, "parts") else tile
        cfg = getattr(t, "config", None)
        if cfg is not None and hasattr(cfg, "forward"):
            return cfg.forward
    return IOParameters()


def _program_trained(trained: TrainedWeights, model, seed, forward, compensation, layers, structure=None):
    """One draw of ``trained`` on inference tiles; a network on ``structure`` (default: rebuilt from its config)."""
    if trained.kind == "least_squares":
        from ..least_squares.training import TrainConfig

        (_si, _so, w, pair), = trained.layers["linear"].parts
        io = forward if forward is not None else TrainConfig.from_dict(trained.config["train"]).forward
        return InferenceTile(w, model, seed, io, pair=pair, compensation=compensation)
    from ..nn.training import NetConfig

    net = NetConfig.from_dict(trained.config["net"])
    io = forward if forward is not None else net.forward
    return InferenceNet(network_structure(net) if structure is None else structure, trained, model, seed, io, layers,
                        net.max_input_size, net.max_output_size, compensation)


# ---------------------------------------------------------------------------------------------- evaluation
def evaluate_after_training(trainer_or_model, config: InferenceEvalConfig, seed) -> dict:
    """Evaluate the trained weights of a live run on inference tiles (the engine's hook at the end of a run).

    Parameters
    ----------
    trainer_or_model : NetTrainer or least-squares Trainer
    config : InferenceEvalConfig
    seed : int
        The run's seed (the draws use ``SeedSequence([seed, 18])``).

    Returns
    -------
    dict
        See :func:`evaluate_trained`.
    """
    tr = trainer_or_model
    trained = trained_weights(tr)
    if trained.kind == "least_squares":
        return evaluate_trained(trained, config, seed, task=tr.task)
    data = tr.data
    return evaluate_trained(trained, config, seed, structure=tr.model, data=data)


def evaluate_trained(trained: TrainedWeights, config: InferenceEvalConfig, seed, structure=None, data=None,
                     task=None, progress=None) -> dict:
    """Mean and spread over ``config.draws`` programmings of the metric at every time and compensation.

    Parameters
    ----------
    trained : TrainedWeights
    config : InferenceEvalConfig
    seed : int or SeedSequence
    structure : Sequential, optional
        The network (default: rebuilt from the run's config).
    data : dict, optional
        ``x_test``, ``y_test`` as :func:`crossbar_sim.nn.training.prepare_data` returns them (default: loaded).
    task : LeastSquares, optional
        The least-squares problem (default: rebuilt from the run's config).
    progress : callable, optional
        Called with ``(draw, draws)`` after each draw.

    Returns
    -------
    dict
        ``metric`` (``test_acc`` or ``loss``), ``reference`` (the metric of the trained weights on the training
        tiles), ``times`` (n_t,) in s, and per compensation ``c``: ``c/values`` (draws, n_t), ``c/mean`` and
        ``c/std`` (n_t,; std over draws with ddof 1, 0 for one draw); ``config`` (the evaluation config as a
        dict) and ``seed``.
    """
    if not isinstance(config, InferenceEvalConfig):
        raise ConfigError(f"The 'config' parameter must be an InferenceEvalConfig. Got {config!r}.")
    comps = config.compensations()
    times = np.asarray(config.times, np.float64)
    order = np.argsort(times, kind="stable")
    values = {name: np.zeros((config.draws, times.size)) for name, _ in comps}
    metric_fn = _metric_function(trained, config, structure, data, task)
    root = _draw_root(seed)
    model = config.noise_model
    if trained.kind == "network" and structure is None:
        structure = network_structure(trained.config["net"])
    for d, ds in enumerate(root.spawn(config.draws)):
        target = _program_trained(trained, model, ds, config.forward, None, config.layers, structure)
        for i in order:  # increasing time: each drift_to starts from the programmed state anyway
            target.drift_to(float(times[i]))
            for name, comp in comps:
                _set_comp(target, comp)
                values[name][d, i] = metric_fn(target)
        if progress is not None:
            progress(d + 1, config.draws)
    out = {"metric": trained.metric, "reference": float(trained.reference), "times": times,
           "config": config.to_dict(), "seed": int(seed) if not isinstance(seed, np.random.SeedSequence) else 0}
    for name, _ in comps:
        v = values[name]
        out[f"{name}/values"] = v
        out[f"{name}/mean"] = v.mean(axis=0)
        out[f"{name}/std"] = v.std(axis=0, ddof=1) if config.draws > 1 else np.zeros(times.size)
    return out


def _set_comp(target, comp):
    if isinstance(target, InferenceNet):
        target.set_compensation(comp)
    else:
        target.compensation = comp


def _metric_function(trained, config, structure, data, task):
    if trained.kind == "least_squares":
        if task is None:
            from ..least_squares.task import LeastSquares, LeastSquaresTask

            task = LeastSquares(LeastSquaresTask.from_dict(trained.config["task"]))
        A = np.ascontiguousarray(task.A, np.float32)
        B = np.asarray(task.B, np.float64)

        def ls_loss(tile):
            y = tile._forward(A).astype(np.float64)
            return 0.5 * float(np.sum((y - B) ** 2))

        return ls_loss
    if data is None:
        from ..nn.training import NetConfig, prepare_data

        net = NetConfig.from_dict(trained.config["net"])
        if config.n_test:
            net = net.replace(n_test=config.n_test)
        data = prepare_data(net.replace(n_train=1))
    x, y = data["x_test"], data["y_test"]
    if config.n_test:
        x, y = x[:config.n_test], y[:config.n_test]

    def accuracy(net):
        return net.evaluate(x, y, config.eval_batch)["test_acc"]

    return accuracy
