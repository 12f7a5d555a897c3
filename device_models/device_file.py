"""Device preset files (JSON): what ``crossbar-sim fit-device`` writes and the other commands read.

Format (``format = "crossbar-sim-device"``, ``version = 1``)::

    {"format": "crossbar-sim-device", "version": 1,
     "device": {"type": "SoftBoundsDevice", "dw_min": 0.0012, ...},     # Config.to_dict() of a device
     "source": "fit of softbounds to gong_et_al.csv", "fit": {...}}      # free-form provenance

A bare ``Config.to_dict()`` of a device (a JSON object with a ``"type"``) is accepted too, as is the name of a
preset or device model (``"EcRam"``) in place of a path.
"""
from __future__ import annotations

import json
import os

from crossbar_sim.config import Config
from crossbar_sim.errors import ConfigError, FormatError

from .base import PulsedDevice

FORMAT = "crossbar-sim-device"
VERSION = 1


def save_device_file(path: str, device: PulsedDevice, source: str = "", fit: dict | None = None) -> None:
    """Write ``device`` (and its provenance) to ``path`` atomically (temporary file renamed into place)."""
    doc = {"format": FORMAT, "version": VERSION, "device": device.to_dict(), "source": source, "fit": fit or {}}
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=1, sort_keys=False, default=float)
        fh.write("\n")
    os.replace(tmp, path)


def load_device_file(path: str) -> PulsedDevice:
    """The device config stored in ``path`` (a preset file or a bare device dict), or a preset/model name."""
    if not os.path.exists(path):
        from . import get_device

        try:
            return get_device(path)
        except ConfigError:
            raise ConfigError(f"Device file {path!r} not found (and it is not a preset or device model name).")
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path!r} is not a JSON device file: {exc}") from exc
    if isinstance(doc, dict) and doc.get("format") == FORMAT:
        if int(doc.get("version", 0)) > VERSION:
            raise FormatError(f"{path!r} has device-file version {doc.get('version')}; this crossbar-sim reads "
                              f"up to {VERSION}.")
        doc = doc.get("device")
    if not isinstance(doc, dict) or "type" not in doc:
        raise FormatError(f"{path!r} holds no device config (a JSON object with a 'type').")
    from crossbar_sim.tiles.onesided import is_array_device

    dev = Config.from_dict(doc)
    if not is_array_device(dev):
        raise FormatError(f"{path!r} holds a {type(dev).__name__}, not a device model (or a one-sided unit cell).")
    return dev
