"""Settings sections as frozen dataclasses, built from Hydra's plain mappings in one way.

Each library module declares its section (`frame`, `monitor`, `recommend`, ...) as a frozen
dataclass with defaults and range checks in `__post_init__`; `settings_from_mapping` turns the
config node into it: unknown keys are an error naming the valid ones (a typo in an override must
not be ignored silently), and values are coerced to the declared field types with an error that
names `<section>.<key>`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Mapping, TypeVar

from gridcast.config import ConfigError

T = TypeVar("T")


def _coerce(section: str, name: str, kind: Any, value: Any) -> Any:
    """`value` as the annotated type `kind` (bool, int, float, str, tuple[...], X | None, or a
    nested settings dataclass)."""
    where = f"{section}.{name}"
    if dataclasses.is_dataclass(kind):
        if isinstance(value, kind):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping of settings, got {value!r}")
        return settings_from_mapping(kind, value, where)
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if value is None:
            return None
        return _coerce(section, name, options[0], value)
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        args = typing.get_args(kind)
        item = args[0] if args else str
        return tuple(_coerce(section, name, item, v) for v in value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be an integer, got {value!r}") from None
    if kind is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return number
    if kind is str:
        if isinstance(value, (dict, list, tuple)):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return str(value)
    return value


def settings_from_mapping(cls: type[T], mapping: Mapping[str, Any] | None, section: str) -> T:
    """`cls(**mapping)` with unknown keys rejected and values coerced to the field types.

    Missing keys keep their defaults; `cls.__post_init__` checks ranges and consistency.

    Raises:
        ConfigError: an unknown key, a value of the wrong type, or one `__post_init__` rejects.
    """
    values = dict(mapping or {})
    declared = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - declared)
    if unknown:
        raise ConfigError(f"unknown {section} setting(s) {', '.join(unknown)}; "
                          f"choose from: {', '.join(sorted(declared))}")
    hints = typing.get_type_hints(cls)
    coerced = {name: _coerce(section, name, hints[name], value) for name, value in values.items()}
    return cls(**coerced)
