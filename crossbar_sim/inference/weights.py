"""The trained weights of a run, from a live trainer or from a result file: what inference tiles are programmed with.

:func:`final_weights` is the one reader of result files (the HDF5 layout of ``crossbar-sim sweep`` and
``crossbar-sim train`` today); :func:`trained_weights` takes the same from a live trainer. Both return a
:class:`TrainedWeights`: per weight layer the weights of every tile (a layer larger than ``max_input_size`` /
``max_output_size`` lives on several), the one-sided pairs' device states where known, the digital bias and the
learnable output scales, plus the run's config and the metric of the trained weights.

Effective weights per tile: ``W`` of an analog tile (the apparent weights) or of digital weights; ``gamma A + C``
of a Tiki-Taka-family tile (``gamma`` from the run's transfer parameters; 0 by default, i.e. ``C``); a one-sided pair
contributes ``g_plus - g_minus`` and, from a live tile or a least-squares file (whole tile state), its ``g_plus``
and ``g_minus`` arrays, which are programmed as they are. A network file stores only the pair's weight, so there
the pair is programmed as a differential pair of that weight.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, FormatError

#: where a network run's digital parameters are written among its tile snapshots (``NetTrainer.snapshot``)
DIGITAL_BIAS = "digital/bias"
DIGITAL_OUT_SCALE = "digital/out_scale"


@dataclass
class LayerWeights:
    """One weight layer: ``parts`` lists ``(in_slice, out_slice, weights, pair)`` per tile (pair: ``(g_plus, g_minus)``
    device states of a one-sided pair, or None); ``analog``: trained on analog tiles."""

    parts: list
    analog: bool
    bias: np.ndarray | None = None
    out_scale: np.ndarray | None = None

    def weights(self) -> np.ndarray:
        """The whole weight matrix (tile blocks put together)."""
        rows = max(_stop(so, w.shape[0]) for _si, so, w, _p in self.parts)
        cols = max(_stop(si, w.shape[1]) for si, _so, w, _p in self.parts)
        out = np.zeros((rows, cols), np.float32)
        for si, so, w, _p in self.parts:
            out[so, si] = w
        return out


def _stop(sl, n):
    return n if sl.stop is None else sl.stop


@dataclass
class TrainedWeights:
    """What :func:`final_weights` / :func:`trained_weights` return.

    Attributes
    ----------
    kind : str
        ``network`` or ``least_squares``.
    config : dict
        The run's config (``{"net": ...}`` or ``{"task": ..., "train": ...}``, ``to_dict`` forms).
    seed : int
    step : int
        Epoch (networks) or step (least squares) of the weights.
    layers : dict of str -> LayerWeights
        ``layer<k>`` (k: position in the network) or ``linear`` (least squares).
    metric : str
        ``test_acc`` or ``loss``.
    reference : float
        That metric for the trained weights on the training tiles (NaN if not recorded).
    point : dict
        The run's sweep point (axis values), if it came from a sweep.
    """

    kind: str
    config: dict
    seed: int
    step: int
    layers: dict = field(default_factory=dict)
    metric: str = "test_acc"
    reference: float = float("nan")
    point: dict = field(default_factory=dict)

    def weights(self) -> dict:
        """``{layer: whole weight matrix}``."""
        return {name: lw.weights() for name, lw in self.layers.items()}


def tile_source(tile):
    """``(weights, pair)`` a tile is programmed from (see the module docstring)."""
    if hasattr(tile, "plus") and hasattr(tile, "minus"):
        gp, gm = tile.plus.read_weights(), tile.minus.read_weights()
        return (gp - gm).astype(np.float32), (gp, gm)
    return np.asarray(tile.read_weights(), np.float32), None


def trained_weights(trainer) -> TrainedWeights:
    """The weights of a live :class:`~crossbar_sim.nn.training.NetTrainer` or least-squares
    :class:`~crossbar_sim.least_squares.training.Trainer`."""
    if hasattr(trainer, "task") and hasattr(trainer, "model"):  # least squares
        w, pair = tile_source(trainer.model)
        lw = LayerWeights([(slice(None), slice(None), w, pair)], analog=trainer.config.algorithm != "digital_sgd")
        return TrainedWeights("least_squares", {"task": trainer.task.spec.to_dict(), "train": trainer.config.to_dict()},
                              _int_seed(trainer.seed), int(trainer.step), {"linear": lw}, "loss",
                              float(trainer.task.loss(trainer.model.read_weights())))
    acc = trainer.history.get("test_acc", [])
    return TrainedWeights("network", {"net": trainer.config.to_dict()}, _int_seed(trainer.seed), int(trainer.epoch),
                          model_layers(trainer.model), "test_acc", float(acc[-1]) if acc else float("nan"))


def model_layers(model) -> dict:
    """``{layer: LayerWeights}`` of a live network (``Sequential``)."""
    from ..nn.layers import DigitalTile

    layers = {}
    for name, layer in model.weight_layers().items():
        tile = layer.tile
        blocks = tile.parts if hasattr(tile, "parts") else [(slice(None), slice(None), tile)]
        parts = [(si, so) + tile_source(t) for si, so, t in blocks]
        layers[name] = LayerWeights(parts, analog=not isinstance(tile, DigitalTile),
                                    bias=None if layer.bias is None else layer.bias.value.copy(),
                                    out_scale=None if layer.alpha is None else layer.alpha.value.copy())
    return layers


def _int_seed(seed) -> int:
    return int(seed) if isinstance(seed, (int, np.integer)) else 0


def final_weights(file, run_id: str) -> TrainedWeights:
    """The final weights of run ``run_id`` of a result file (``crossbar-sim sweep`` or ``crossbar-sim train``).

    Raises :class:`~crossbar_sim.errors.FormatError` (one line) for a missing run, a run that did not complete, or a
    run without stored final weights.
    """
    from ..engine.store import open_results

    with open_results(str(file)) as f:
        runs = f.get("runs", {})
        if run_id not in runs:
            raise FormatError(f"{file}: no run {run_id!r}; runs: {', '.join(sorted(runs)) or 'none'}.")
        g = runs[run_id]
        status = str(g.attrs.get("status", ""))
        if status != "complete":
            raise FormatError(f"{file}: run {run_id} has status {status!r}, not 'complete': no final weights.")
        cfg = json.loads(g.attrs.get("config", "{}"))
        seed = int(g.attrs.get("seed", 0))
        if "net" in cfg:
            out = _network_from_file(file, run_id, g, cfg, seed)
        elif "train" in cfg:
            out = _least_squares_from_file(file, run_id, g, cfg, seed)
        else:
            out = None
        if out is not None:
            out.point = json.loads(g.attrs.get("point", "{}"))
            return out
        raise FormatError(f"{file}: run {run_id} is neither a network nor a least-squares run (config keys "
                          f"{sorted(cfg)}).")


def _snapshot_arrays(layer_group) -> dict:
    """``{array name: {step: dataset}}`` of a layer group (array names may nest: ``tile0_0/A``, ``digital/bias``)."""
    import h5py

    found = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and name.endswith("snapshots"):
            arr = name[: -len("snapshots")].rstrip("/")
            found[arr] = {int(k): obj[k]["weights"] for k in obj if "weights" in obj[k]}

    layer_group.visititems(visit)
    return found


def _effective(arrays: dict, step: int, gamma: float, where: str) -> np.ndarray:
    if "W" in arrays:
        return np.asarray(arrays["W"][step][()], np.float32)
    if "C" in arrays and "A" in arrays:
        c = np.asarray(arrays["C"][step][()], np.float32)
        return c if gamma == 0.0 else (np.float32(gamma) * np.asarray(arrays["A"][step][()], np.float32) + c)
    raise FormatError(f"{where}: no weight array (W, or A and C) among {sorted(arrays)}.")


def _network_from_file(file, run_id, g, cfg, seed) -> TrainedWeights:
    from .. import device_models  # noqa: F401 - registers the device configs named in the config JSON
    from ..nn.layers import split_sizes
    from ..nn.models import LAYER_SPECS
    from ..nn.training import NetConfig

    net = NetConfig.from_dict(cfg["net"])
    if "tiles" not in g:
        raise FormatError(f"{file}: run {run_id} has no final weights (no tile snapshots).")
    specs = LAYER_SPECS[net.model]
    mask = net.analog_mask()
    gamma = float(net.transfer.gamma)
    layer_names = sorted(g["tiles"], key=lambda s: int(s[5:]) if s[5:].isdigit() else 0)
    if len(layer_names) != len(specs):
        raise FormatError(f"{file}: run {run_id} has {len(layer_names)} weight layers stored, its model "
                          f"{net.model} has {len(specs)}.")
    per_layer = {name: _snapshot_arrays(g["tiles"][name]) for name in layer_names}
    common = None
    for arrays in per_layer.values():
        steps = set.intersection(*(set(v) for v in arrays.values())) if arrays else set()
        common = steps if common is None else common & steps
    if not common:
        raise FormatError(f"{file}: run {run_id} has no final weights (no epoch with a snapshot of every layer).")
    step = max(common)
    layers = {}
    for k, name in enumerate(layer_names):
        arrays = per_layer[name]
        spec = specs[k]
        n_out, n_in = (spec[2], spec[1]) if spec[0] == "linear" else (spec[2], spec[1] * spec[3] * spec[3])
        tiles = {a: v for a, v in arrays.items() if not a.startswith("digital/")}
        blocks = sorted({a.split("/", 1)[0] for a in tiles if "/" in a and a.startswith("tile")})
        where = f"{file}: run {run_id} {name}"
        analog = bool(mask[k]) and net.algorithm != "digital_sgd"
        # the digital parameters the layer must have (models.build_model's rules)
        need = [] if (not net.digital_bias and analog and not blocks) else [DIGITAL_BIAS]
        if analog and net.learn_out_scaling:
            need.append(DIGITAL_OUT_SCALE)
        missing = [a for a in need if a not in arrays]
        if missing:
            raise FormatError(f"{file}: run {run_id} has no stored {name}/{missing[0]} (written before crossbar-sim "
                              f"kept biases and output scales): train it again to evaluate it.")
        if blocks:
            in_sizes, out_sizes = split_sizes(n_in, net.max_input_size), split_sizes(n_out, net.max_output_size)
            ins, outs = np.cumsum([0] + in_sizes), np.cumsum([0] + out_sizes)
            parts = []
            for i in range(len(in_sizes)):
                for j in range(len(out_sizes)):
                    pref = f"tile{i}_{j}/"
                    sub = {a[len(pref):]: v for a, v in tiles.items() if a.startswith(pref)}
                    parts.append((slice(int(ins[i]), int(ins[i + 1])), slice(int(outs[j]), int(outs[j + 1])),
                                  _effective(sub, step, gamma, where), None))
        else:
            parts = [(slice(None), slice(None), _effective(tiles, step, gamma, where), None)]
        bias, osc = arrays.get(DIGITAL_BIAS), arrays.get(DIGITAL_OUT_SCALE)
        bias = None if bias is None else np.asarray(bias[step][()], np.float32).ravel()
        out_scale = None if osc is None else np.asarray(osc[step][()], np.float32).ravel()
        layers[name] = LayerWeights(parts, analog=analog, bias=bias, out_scale=out_scale)
    reference = float("nan")
    if "metrics" in g and "test_acc" in g["metrics"]:
        steps = g["metrics"]["steps"][()]
        hit = np.flatnonzero(steps == step)
        if hit.size:
            reference = float(g["metrics"]["test_acc"][int(hit[-1])])
    return TrainedWeights("network", cfg, seed, int(step), layers, "test_acc", reference)


def _least_squares_from_file(file, run_id, g, cfg, seed) -> TrainedWeights:
    from ..engine.store import LS_LAYER, load_tile

    if "tiles" not in g or LS_LAYER not in g["tiles"]:
        raise FormatError(f"{file}: run {run_id} has no final weights (no tiles/{LS_LAYER}).")
    layer = g["tiles"][LS_LAYER]
    step = -1
    if "state" in layer:
        tile = load_tile(g.file, g.name)
        w, pair = tile_source(tile)
        if "metrics" in g:
            step = int(g["metrics"]["steps"][-1])
    else:  # digital SGD: the last snapshot of W
        arrays = _snapshot_arrays(layer)
        if "W" not in arrays or not arrays["W"]:
            raise FormatError(f"{file}: run {run_id} has no final weights (no tile state, no W snapshot).")
        step = max(arrays["W"])
        w, pair = np.asarray(arrays["W"][step][()], np.float32), None
    analog = cfg["train"].get("algorithm", "analog_sgd") != "digital_sgd"
    lw = LayerWeights([(slice(None), slice(None), w, pair)], analog=analog)
    return TrainedWeights("least_squares", cfg, seed, step, {LS_LAYER: lw}, "loss",
                          float(g.attrs.get("final_loss", np.nan)))


def check_run_ids(file, run_ids) -> list:
    """The runs of ``file`` to evaluate: ``run_ids`` (checked to exist), or every run if empty."""
    from ..engine.store import open_results

    with open_results(str(file)) as f:
        runs = sorted(f["runs"]) if "runs" in f else []
    if not runs:
        raise FormatError(f"{file}: the file holds no runs.")
    if not run_ids:
        return runs
    missing = [r for r in run_ids if r not in runs]
    if missing:
        raise ConfigError(f"{file}: no run {missing[0]!r}; runs: {', '.join(runs)}.")
    return list(run_ids)
