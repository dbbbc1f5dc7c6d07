"""Time-zone-proof comparisons for rows that come back from Spark.

PySpark turns a TimestampType value into a *naive* `datetime` in the Python process's local time
zone (whatever the session time zone says), so a test that compares collected rows with naive UTC
literals passes only on a machine whose clock is on UTC. Compare aware values instead:
`as_utc(row["datetime"]) == datetime(2025, 3, 11, 6, tzinfo=UTC)`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Iterable, Mapping


def as_utc(value: datetime | None) -> datetime | None:
    """The same instant as an aware UTC datetime; a naive value is read as local time, which is
    how PySpark produced it."""
    if value is None:
        return None
    return value.astimezone(UTC)


def utc_rows(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Collected Rows (or mappings) as dicts with every datetime made aware UTC."""
    converted = []
    for row in rows:
        mapping: Mapping[str, Any] = row.asDict() if hasattr(row, "asDict") else row
        converted.append({k: as_utc(v) if isinstance(v, datetime) else v for k, v in mapping.items()})
    return converted


def utc(*args: int) -> datetime:
    """`utc(2025, 3, 11, 6)`: an aware UTC datetime, shorter to read in expectations."""
    return datetime(*args, tzinfo=UTC)
