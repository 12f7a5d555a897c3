"""Frozen, validated configuration dataclasses that round-trip through JSON.

Every configuration class of the simulator (devices, update and IO parameters, tiles, algorithms, tasks)
derives from :class:`Config`. A config is frozen: changing one means a new object
(``dataclasses.replace`` or :meth:`Config.replace`), so a tile can never silently ignore an edit made after
it was built. ``to_dict`` / ``from_dict`` round-trip through JSON (that is what goes into HDF5 attributes),
and :func:`apply_overrides` applies dotted overrides such as ``device.dw_min=1e-3`` with unknown keys and
wrong types rejected.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, ClassVar

from .errors import ConfigError

_REGISTRY: dict[str, type] = {}


class Config:
    """Mixin for frozen dataclass configs: validation hook, JSON round trip, short repr."""

    _validate_owner: ClassVar[str] = ""
    #: name of a nested config field that receives the overrides and ``replace`` changes naming one of *its*
    #: fields rather than one of this config's (a unit cell forwards device parameters to its unit device)
    _delegate: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:  # overridden by subclasses
        """Check the parameter contract; raise :class:`ConfigError` naming the offending field."""

    # ------------------------------------------------------------------ round trip
    def to_dict(self) -> dict:
        out: dict[str, Any] = {"type": type(self).__name__}
        for f in dataclasses.fields(self):
            out[f.name] = _to_jsonable(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        data = dict(data)
        tname = data.pop("type", cls.__name__)
        target = _REGISTRY.get(tname)
        if target is None:
            raise ConfigError(f"Unknown config type {tname!r}; known: {', '.join(sorted(_REGISTRY))}.")
        if not issubclass(target, cls) and cls is not Config:
            raise ConfigError(f"Config type {tname!r} is not a {cls.__name__}.")
        names = {f.name: f for f in dataclasses.fields(target)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(
                f"Unknown parameter(s) {', '.join(map(repr, unknown))} for {tname}; "
                f"allowed: {', '.join(sorted(names))}."
            )
        kwargs = {}
        hints = typing.get_type_hints(target)
        for k, v in data.items():
            kwargs[k] = _from_jsonable(v, hints.get(k))
        return target(**kwargs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        return cls.from_dict(json.loads(text))

    def replace(self, **changes) -> "Config":
        """A copy with ``changes`` applied (validated again)."""
        names = {f.name for f in dataclasses.fields(self)}
        sub = self._delegated(set(changes) - names)
        if sub:
            base = changes.get(self._delegate, getattr(self, self._delegate))
            changes[self._delegate] = base.replace(**{k: changes.pop(k) for k in sub})
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(
                f"Unknown parameter(s) {', '.join(map(repr, unknown))} for {type(self).__name__}; "
                f"allowed: {', '.join(sorted(names))}."
            )
        return dataclasses.replace(self, **changes)

    def _delegated(self, keys) -> set:
        """The ``keys`` that are not fields of this config but of its :attr:`_delegate` field."""
        if not self._delegate or not keys:
            return set()
        inner = getattr(self, self._delegate)
        if not dataclasses.is_dataclass(inner):
            return set()
        return set(keys) & {f.name for f in dataclasses.fields(inner)}

    def non_default(self) -> dict:
        """The fields whose value differs from the class default."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.default is not dataclasses.MISSING:
                d = f.default
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                d = f.default_factory()  # type: ignore[misc]
            else:
                out[f.name] = v
                continue
            if _to_jsonable(v) != _to_jsonable(d):
                out[f.name] = v
        return out

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.non_default().items())
        return f"{type(self).__name__}({inner})"


def _to_jsonable(v):
    if isinstance(v, Config):
        return v.to_dict()
    if isinstance(v, (list, tuple)):
        return [_to_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _to_jsonable(x) for k, x in v.items()}
    if hasattr(v, "item") and callable(v.item):  # numpy scalar
        return v.item()
    return v


def _from_jsonable(v, hint):
    if isinstance(v, dict) and "type" in v and v["type"] in _REGISTRY:
        return Config.from_dict(v)
    if isinstance(v, list):
        origin = typing.get_origin(hint)
        if origin is tuple or hint is tuple:
            return tuple(_from_jsonable(x, None) for x in v)
        return tuple(_from_jsonable(x, None) for x in v)
    return v


def config_from_dict(data: dict) -> Config:
    """Build any registered config from its ``to_dict`` form."""
    return Config.from_dict(data)


def _coerce(value, current, key, strict: bool = False):
    """Coerce an override ``value`` to the type of ``current``. Strings are parsed as numbers or booleans
    unless ``strict`` (a spec's values are typed: ``steps = "300"`` is an error there)."""
    if strict and isinstance(value, str) and not isinstance(current, str) and current is not None:
        kind = ("a bool (true/false)" if isinstance(current, bool) else "an int" if isinstance(current, int)
                else "a float" if isinstance(current, float) else "a list" if isinstance(current, tuple)
                else f"a {type(current).__name__}")
        raise ConfigError(f"'{key}' expects {kind}, not the string {value!r} (write it without quotes).")
    if strict and isinstance(current, str) and not isinstance(value, str):
        raise ConfigError(f"'{key}' expects a string. Got {value!r}.")
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"Override '{key}' expects a bool (true/false). Got {value!r}.")
    if isinstance(current, int) and not isinstance(current, bool):
        if isinstance(value, bool):
            raise ConfigError(f"Override '{key}' expects an int. Got {value!r}.")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"Override '{key}' expects an int. Got {value!r}.")
    if isinstance(current, float):
        if isinstance(value, bool):
            raise ConfigError(f"Override '{key}' expects a float. Got {value!r}.")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"Override '{key}' expects a float. Got {value!r}.")
    if isinstance(current, str):
        if not isinstance(value, str):
            raise ConfigError(f"Override '{key}' expects a string. Got {value!r}.")
        return value
    if isinstance(current, tuple):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"Override '{key}' expects a list, e.g. [1, 2]. Got {value!r}.") from exc
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"Override '{key}' expects a list. Got {value!r}.")
        return tuple(value)
    if isinstance(current, dict):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"Override '{key}' expects a table, e.g. {{\"in_chop_prob\": 0.05}}. Got "
                                  f"{value!r}.") from exc
        if not isinstance(value, dict):
            raise ConfigError(f"Override '{key}' expects a table (a dict). Got {value!r}.")
        return dict(value)
    if current is None:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value
    raise ConfigError(f"Override '{key}' cannot be set from the command line (type {type(current).__name__}).")


def apply_overrides(cfg: Config, overrides: dict[str, Any], strict: bool = False) -> Config:
    """Apply dotted overrides (``{"device.dw_min": "1e-3"}``) to a config, returning a new one.

    A key naming a nested config by its type (``{"device": "ConstantStepDevice"}``) swaps that config for
    the default of the named type. Unknown keys and values of the wrong type raise :class:`ConfigError`.
    ``strict``: values are already typed (a spec, or :func:`parse_value` output); a string where a number or a
    boolean belongs is an error instead of being parsed.
    """
    for key, value in overrides.items():
        cfg = _apply_one(cfg, key.split("."), value, key, strict)
    return cfg


# ---------------------------------------------------------------------------------------------- KEY=VALUE
def parse_value(text: str):
    """The value of a command-line ``KEY=VALUE`` (``--set``, ``--where``, ``--lr``, ``--energy``; one parser for
    all): JSON if it parses (numbers, lists, ``true``/``false``/``null``, ``"quoted strings"``), ``True``/``False``
    in any case, else the text itself as a string."""
    text = text.strip()
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        low = text.lower()
        if low in ("true", "false"):
            return low == "true"
        return text


def parse_assignments(items, option: str = "--set") -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}`` (values by :func:`parse_value`); a malformed item is one
    :class:`ConfigError` naming ``option``."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{option} expects KEY=VALUE (e.g. {option} device.dw_min=1e-3). Got {item!r}.")
        out[key] = parse_value(text)
    return out


def flatten(d: dict, prefix: str = "") -> dict:
    """A nested dict as dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def set_path(d: dict, dotted: str, value) -> None:
    """``d["a"]["b"] = value`` for ``dotted = "a.b"`` (creating the tables on the way); :class:`ConfigError`
    when a part of the path is a value, not a table."""
    parts = dotted.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(f"Cannot set {dotted}: {p} is a value, not a table.")
    d[parts[-1]] = value


def _apply_one(cfg: Config, path: list[str], value, full_key, strict: bool = False):
    names = {f.name for f in dataclasses.fields(cfg)}
    head = path[0]
    if head not in names and cfg._delegated({head}):
        return cfg.replace(**{cfg._delegate: _apply_one(getattr(cfg, cfg._delegate), path, value, full_key, strict)})
    if head not in names:
        raise ConfigError(
            f"Unknown key '{full_key}': {type(cfg).__name__} has no parameter '{head}'; "
            f"allowed: {', '.join(sorted(names))}."
        )
    current = getattr(cfg, head)
    if len(path) == 1:
        if isinstance(current, Config):
            if isinstance(value, Config):
                new = value
            elif isinstance(value, dict):
                new = Config.from_dict(value)
            elif isinstance(value, str) and value in _REGISTRY:
                new = _REGISTRY[value]()
            else:
                raise ConfigError(
                    f"Override '{full_key}' expects a config type name (e.g. {type(current).__name__}). "
                    f"Got {value!r}."
                )
        else:
            new = _coerce(value, current, full_key, strict)
        return cfg.replace(**{head: new})
    if isinstance(current, dict):  # a free-form table (e.g. transfer_extra): a dotted key sets one entry
        new = dict(current)
        inner = new
        for p in path[1:-1]:
            inner[p] = dict(inner.get(p) or {})
            inner = inner[p]
        inner[path[-1]] = value
        return cfg.replace(**{head: new})
    if not isinstance(current, Config):
        raise ConfigError(f"Unknown key '{full_key}': '{head}' of {type(cfg).__name__} has no sub-parameters.")
    return cfg.replace(**{head: _apply_one(current, path[1:], value, full_key, strict)})
