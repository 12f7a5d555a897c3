"""Tile states as ``state_dict`` entries: what ``torch.save`` / ``torch.load(weights_only=True)`` can carry.

A tile's :meth:`get_state` (every array, the device parameters, counters, random-stream keys and positions) is
turned into nested dicts and lists of tensors, strings, ints, floats and bools, the types torch's safe unpickler
accepts: NumPy arrays become CPU tensors of the same dtype and shape (copies), NumPy scalars Python numbers,
tuples lists. :func:`from_torch` undoes it (tensors back to NumPy arrays of their dtype), so
``tile.set_state(from_torch(to_torch(tile.get_state())))`` restores the tile bit for bit.

A layer split over several tiles (:class:`~crossbar_sim.nn.layers.TileArray`) is stored as ``{"kind":
"TileArray", "parts": [state of each block]}``.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import FormatError
from ..nn.layers import TileArray

#: the format of the extra state of an analog layer
FORMAT = "crossbar_sim.torch.tile"
VERSION = 1


def to_torch(obj):
    """``obj`` with NumPy arrays as tensors and NumPy scalars as Python numbers (recursively)."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.array(obj, copy=True, order="C"))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {str(k): to_torch(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_torch(v) for v in obj]
    return obj


def from_torch(obj):
    """The inverse of :func:`to_torch`: tensors become NumPy arrays (copies) of the same dtype."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy().copy()
    if isinstance(obj, dict):
        return {k: from_torch(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_torch(v) for v in obj]
    return obj


def tile_state(tile) -> dict:
    """``get_state()`` of a tile, or of every block of a :class:`TileArray`."""
    if isinstance(tile, TileArray):
        return {"kind": "TileArray", "parts": [t.get_state() for _, _, t in tile.parts]}
    return tile.get_state()


def set_tile_state(tile, state: dict, where: str) -> None:
    """Restore :func:`tile_state` into ``tile`` (same kind and shape; :class:`FormatError` naming ``where``)."""
    kind = state.get("kind")
    if isinstance(tile, TileArray):
        parts = state.get("parts")
        if kind != "TileArray" or len(parts) != tile.n_tiles:
            raise FormatError(f"{where}: the stored state is of a {kind} "
                              f"{'' if parts is None else f'of {len(parts)} tiles '}, this layer is a TileArray of "
                              f"{tile.n_tiles} tiles; build the layer with the config it was saved with.")
        for (_, _, t), st in zip(tile.parts, parts):
            set_tile_state(t, st, where)
        return
    own = tile.get_state()["kind"]
    if kind != own:
        raise FormatError(f"{where}: the stored state is of a {kind}, this layer's tile is a {own}; build the layer "
                          f"with the config it was saved with.")
    tile.set_state(state)
