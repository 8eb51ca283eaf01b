"""Strict configs: typed dataclasses loaded from YAML, with `--set a.b=value` overrides.

An unknown key, a missing required field or a value of the wrong type is a `ConfigError` naming the
dotted key, what was expected and what was given. The resolved config (`to_dict`) is saved beside every
artifact (recording, checkpoint, report, ONNX metadata).

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Train:
    ...     steps: int = 10
    ...     lr: float = 1e-3
    >>> load_config(Train, {"steps": 5}, ["lr=0.01"])
    Train(steps=5, lr=0.01)
    >>> load_config(Train, {"step": 5})  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    common.strict_config.ConfigError: unknown config key 'step'; valid keys here: ['lr', 'steps']
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config key or value is wrong; the message names the dotted key."""


class Dispatched:
    """Base of a config field whose dataclass is picked by a tag in the data (a registry key).

    E.g. `sim: {backend: carla, port: 2002}` or the shorthand `sim: carla`: the tag (`tag_key`) names an
    entry of a registry, and the remaining keys are strictly loaded into that entry's dataclass.
    Subclasses implement `registry_config` (tag -> dataclass, a ConfigError for an unknown tag) and
    `from_tagged` (build the field from the tag and the loaded dataclass), and `to_config` for saving.
    A mapping without the tag takes the subclass's default tag (a dataclass field named `tag_key`).
    `load_config` overrides such as `sim.port=2002` expand the shorthand first.
    """

    tag_key: str = "backend"

    @classmethod
    def registry_config(cls, tag: str, key: str) -> type:
        """The dataclass registered under `tag`; ConfigError naming `key` if there is none."""
        raise NotImplementedError

    @classmethod
    def from_tagged(cls, tag: str, config: Any) -> Any:
        """The field's value from its tag and its loaded dataclass."""
        raise NotImplementedError

    def to_config(self) -> dict[str, Any]:
        """The field as config data: `{tag_key: tag, **fields}` (inverse of `from_config`)."""
        raise NotImplementedError

    @classmethod
    def _default_tag(cls) -> Any:
        """The tag field's default when the data leaves it out (`sim: {render: false}`), else None."""
        # Through a plain `type` so that is_dataclass narrows it (on `type[Self]` mypy would call the
        # branch unreachable: Dispatched itself is no dataclass, only its subclasses are).
        klass: type = cls
        if dataclasses.is_dataclass(klass):
            for f in dataclasses.fields(klass):
                if f.name == cls.tag_key and f.default is not dataclasses.MISSING:
                    return f.default
        return None

    @classmethod
    def from_config(cls, value: Any, key: str) -> Any:
        """Strictly load `value` (a tag string, or a mapping with the tag) found at dotted `key`."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            value = {cls.tag_key: value}
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a {cls.tag_key} name or a mapping, got {value!r}")
        rest = dict(value)
        tag = rest.pop(cls.tag_key, cls._default_tag())
        prefix = f"{key}." if key else ""
        if not isinstance(tag, str):
            raise ConfigError(f"missing config key '{prefix}{cls.tag_key}' (a name, got {tag!r})")
        config_cls = cls.registry_config(tag, f"{prefix}{cls.tag_key}")
        return cls.from_tagged(tag, from_dict(config_cls, rest, prefix))


def load_config(
    cls: type[T], source: str | Path | dict[str, Any] | None = None, overrides: Sequence[str] = ()
) -> T:
    """Build a `cls` dataclass from a YAML file or a dict, then apply `key.path=value` overrides.

    Override values are parsed as YAML scalars/lists (`lr=3e-4`, `seeds=[0,1]`, `name=foo`).
    """
    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, dict):
        data = _deep_copy(source)
    else:
        path = Path(source)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top, got {type(data).__name__}")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like a.b=value")
        _set_dotted(data, key.strip().split("."), yaml.safe_load(raw) if raw.strip() else "", cls)
    return from_dict(cls, data)


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Strictly convert a nested dict into dataclass `cls` (unknown keys and wrong types are errors)."""
    if issubclass(cls, Dispatched):  # e.g. loading a `sim:` section on its own
        loaded: T = cls.from_config(data, prefix.rstrip("."))  # from_config returns Any by design
        return loaded
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    # T is unbounded (Dispatched subclasses come here too), so mypy cannot see that every other `cls`
    # is a dataclass; fields() raises TypeError for one that is not, as it always did.
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = f"{prefix}{unknown[0]}"
        raise ConfigError(f"unknown config key {key!r}; valid keys here: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, f"{prefix}{name}")
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"missing required config key {prefix}{missing[0]!r}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {err}") from None


def to_dict(config: Any) -> dict[str, Any]:
    """The resolved config as plain JSON/YAML-able data (`Dispatched` fields as `to_config` gives them)."""
    plain: dict[str, Any] = json.loads(json.dumps(_plain(config), default=list))
    return plain


def _plain(value: Any) -> Any:
    # Like dataclasses.asdict, but a Dispatched field is saved in the form `from_config` reads back.
    if isinstance(value, Dispatched):
        return _plain(value.to_config())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def digest(config: Any) -> str:
    """A short, stable hash of the resolved config."""
    return hashlib.sha256(json.dumps(to_dict(config), sort_keys=True).encode()).hexdigest()[:16]


def save_config(config: Any, path: str | Path) -> None:
    """Write the resolved config as YAML."""
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if isinstance(tp, type) and issubclass(tp, Dispatched):
        return tp.from_config(value, key)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{key}: {value!r} does not fit {_name(tp)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):  # a type hint is a class, never an instance
        return from_dict(tp, value, f"{key}.")
    if origin in (list, tuple):
        if isinstance(value, str) and "," in value:  # `--set seeds=0,1,2`
            value = [yaml.safe_load(v) for v in value.split(",")]
        if not isinstance(value, (list, tuple)):
            value = [value]
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} values, got {value!r}")
            return tuple(_convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        items = [_convert(args[0], v, f"{key}[{i}]") if args else v for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads `3e-4` (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):  # inf/nan would pass `x > 0` checks and fail much later
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{key}: expected {_name(tp)}, got {value!r}")


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _set_dotted(data: dict[str, Any], keys: list[str], value: Any, cls: Any = None) -> None:
    node, tp = data, cls
    for k in keys[:-1]:
        tp = _field_type(tp, k)
        child = node.setdefault(k, {})
        if isinstance(child, str) and isinstance(tp, type) and issubclass(tp, Dispatched):
            child = node[k] = {tp.tag_key: child}  # `sim: carla` + `sim.port=2002`
        if not isinstance(child, dict):
            raise ConfigError(f"override {'.'.join(keys)}: {k!r} is not a section")
        node = child
    node[keys[-1]] = value


def _field_type(cls: Any, name: str) -> Any:
    """The declared type of field `name` of dataclass `cls` (Optional unwrapped), or None."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        return None
    tp = typing.get_type_hints(cls).get(name)
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else None
    return tp


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}
