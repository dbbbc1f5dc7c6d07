"""settings_from_mapping: how every config section becomes its frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gridcast.config import ConfigError
from gridcast.settings import settings_from_mapping


@dataclass(frozen=True)
class Example:
    count: int = 1
    ratio: float = 0.5
    enabled: bool = False
    name: str = "a"
    columns: tuple[str, ...] = ("x",)
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigError(f"example.count must be >= 1, got {self.count}")


def test_missing_keys_keep_their_defaults():
    assert settings_from_mapping(Example, None, "example") == Example()
    assert settings_from_mapping(Example, {"name": "b"}, "example") == Example(name="b")


def test_values_are_coerced_to_the_declared_types():
    built = settings_from_mapping(
        Example, {"count": "3", "ratio": 2, "columns": ["p", "q"], "limit": 7}, "example")
    assert built == Example(count=3, ratio=2.0, columns=("p", "q"), limit=7)
    assert isinstance(built.ratio, float) and isinstance(built.columns, tuple)
    assert settings_from_mapping(Example, {"limit": None}, "example").limit is None


@pytest.mark.parametrize("values, message", [
    ({"cuont": 2}, r"unknown example setting\(s\) cuont; choose from: columns, count"),
    ({"count": 1.5}, "example.count must be an integer, got 1.5"),
    ({"count": True}, "example.count must be an integer, got True"),
    ({"enabled": "yes"}, "example.enabled must be true or false, got 'yes'"),
    ({"ratio": "fast"}, "example.ratio must be a number, got 'fast'"),
    ({"ratio": float("nan")}, "example.ratio must be a finite number"),
    ({"columns": "p"}, "example.columns must be a list, got 'p'"),
    ({"name": ["a"]}, "example.name must be a string"),
    ({"count": 0}, "example.count must be >= 1, got 0"),
])
def test_bad_values_name_the_setting(values, message):
    with pytest.raises(ConfigError, match=message):
        settings_from_mapping(Example, values, "example")
