"""One function that builds the tile of any tile config, and one that rebuilds any tile from its state."""
from __future__ import annotations

from ..errors import ConfigError, FormatError

#: tile config class name -> tile class name (every kind of tile there is)
TILE_OF_CONFIG = {
    "TileConfig": "AnalogTile",
    "OneSidedTileConfig": "OneSidedTile",
    "VectorTileConfig": "VectorTile",
    "CompoundTileConfig": None,  # TikiTakaTile or BufferedTransferTile, by the compound
    "MixedPrecisionTileConfig": "MixedPrecisionTile",
}


def _classes() -> dict:
    from .analog import AnalogTile
    from .buffered import BufferedTransferTile
    from .mixed_precision import MixedPrecisionTile
    from .onesided import OneSidedTile
    from .tiki_taka import TikiTakaTile
    from .vector import VectorTile

    return {c.__name__: c for c in (AnalogTile, OneSidedTile, VectorTile, TikiTakaTile, BufferedTransferTile,
                                    MixedPrecisionTile)}


def tile_class(config):
    """The tile class a tile config builds."""
    from .buffered import BufferedTransfer

    name = type(config).__name__
    for base in type(config).__mro__:
        if base.__name__ in TILE_OF_CONFIG:
            name = base.__name__
            break
    else:
        raise ConfigError(f"Not a tile config: {config!r} (expected one of {', '.join(TILE_OF_CONFIG)}).")
    kind = TILE_OF_CONFIG[name]
    if kind is None:
        kind = "BufferedTransferTile" if isinstance(config.device, BufferedTransfer) else "TikiTakaTile"
    return _classes()[kind]


def build_tile(out_size: int, in_size: int, config, seed=None, threads=None):
    """The tile of ``config`` (any tile config: ``TileConfig``, ``OneSidedTileConfig``, ``VectorTileConfig``,
    ``CompoundTileConfig``, ``MixedPrecisionTileConfig``, e.g. from :func:`crossbar_sim.presets.build_config`)."""
    return tile_class(config)(out_size, in_size, config, seed=seed, threads=threads)


def tile_from_state(state: dict, threads=None):
    """Any tile rebuilt from its ``get_state()`` (continues bit-identically)."""
    from .. import device_models  # noqa: F401 - registers the device configs the stored config JSON names

    cls = _classes().get(state.get("kind"))
    if cls is None:
        raise FormatError(f"Unknown tile kind {state.get('kind')!r} in the stored state; cannot rebuild the tile.")
    return cls.from_state(state, threads=threads)
