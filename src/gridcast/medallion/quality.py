"""Silver's quality gate: expectations declared once per table, evaluated as Spark column expressions.

An expectation is data: which columns, which rule. `evaluate` turns a table's suite into one
array column per row, `FAILURES`, listing every failed expectation (its name and a message with
the offending value), so a row carries all its reasons, not the first. Rows are judged while
their typed columns still hold the text that came over the wire: the type expectations come from
the table schema (a value that does not cast is a failure, never a silent null) and the range
rules compare the cast values. `conform` then casts the rows that passed.

Expectations render themselves as Spark SQL and a suite becomes one expression: for a 50-column
table that is one call into Spark instead of thousands of small ones.

Why not pandera: its PySpark backend answers pass/fail per check with one Spark job each and no
failing rows, so it cannot quarantine row by row (docs/decisions/0003-silver.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, DoubleType, StringType, StructField, StructType

from gridcast.hours import HOUR_S
from gridcast.medallion.sql import sql_name, sql_text
from gridcast.tables import SILVER_ENERGY, SILVER_WEATHER, Table

# Every failure of a row: array<struct<check, message>>, empty when the row passed.
FAILURES = "_failures"
FAILURE = StructType([StructField("check", StringType()), StructField("message", StringType())])
FAILURES_TYPE = ArrayType(FAILURE)

TypedValue = Callable[[str], str]  # column name -> SQL for its typed value


def failure(check: str, message: Column | str) -> Column:
    """One failure entry (for parse failures raised outside a suite)."""
    text = F.lit(message) if isinstance(message, str) else message
    return F.struct(F.lit(check).alias("check"), text.alias("message"))


def _failure(check: str, condition: str, message: str) -> str:
    """SQL: a list of one failure when `condition` holds, else an empty list (see `evaluate`)."""
    entry = f"named_struct('check', {sql_text(check)}, 'message', {message})"
    return f"CASE WHEN {condition} THEN array({entry}) ELSE array() END"


def _message(column: str, text: str) -> str:
    """`<column> = '<raw value>' <text>` (the value as it came, `null` when absent)."""
    shown = f"coalesce(concat('\\'', CAST({sql_name(column)} AS STRING), '\\''), 'null')"
    return f"concat({sql_text(column + ' = ')}, {shown}, {sql_text(' ' + text)})"


class Expectation(ABC):
    """A rule rows must satisfy; `violations` yields one SQL failure list per checked column
    (empty when the row passes)."""

    name: str

    @abstractmethod
    def violations(self, columns: Sequence[str], value: TypedValue) -> list[str]: ...


@dataclass(frozen=True)
class NotNull(Expectation):
    """The columns are not null, except in rows where `unless` (SQL over the row) holds."""

    columns: tuple[str, ...]
    unless: str | None = None
    name: str = "not_null"

    def violations(self, columns: Sequence[str], value: TypedValue) -> list[str]:
        exempt = f" AND NOT coalesce({self.unless}, false)" if self.unless else ""
        return [_failure(f"{self.name}:{c}", f"{sql_name(c)} IS NULL{exempt}", sql_text(f"{c} is null"))
                for c in self.columns if c in columns]


@dataclass(frozen=True)
class InRange(Expectation):
    """low <= value <= high (either bound may be None); null values pass (see NotNull)."""

    low: float | None
    high: float | None
    columns: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    name: str = "range"

    def violations(self, columns: Sequence[str], value: TypedValue) -> list[str]:
        checked = [c for c in columns if c in self.columns or (self.prefixes and c.startswith(self.prefixes))]
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        result = []
        for c in checked:
            outside = [f"{value(c)} < {self.low!r}" if self.low is not None else None,
                       f"{value(c)} > {self.high!r}" if self.high is not None else None]
            condition = " OR ".join(o for o in outside if o)
            result.append(_failure(f"{self.name}:{c}", f"({condition})", _message(c, f"outside [{low}, {high}]")))
        return result


@dataclass(frozen=True)
class OneOf(Expectation):
    column: str
    values: tuple[str, ...]
    name: str = "one_of"

    def violations(self, columns: Sequence[str], value: TypedValue) -> list[str]:
        if self.column not in columns:
            return []
        allowed = ", ".join(sql_text(v) for v in self.values)
        return [_failure(f"{self.name}:{self.column}", f"{value(self.column)} NOT IN ({allowed})",
                         _message(self.column, f"not one of {', '.join(self.values)}"))]


@dataclass(frozen=True)
class HourAligned(Expectation):
    """A timestamp on the hour (a UTC hour key), whatever the session time zone."""

    columns: tuple[str, ...]
    name: str = "hour_aligned"

    def violations(self, columns: Sequence[str], value: TypedValue) -> list[str]:
        return [_failure(f"{self.name}:{c}", f"unix_micros({value(c)}) % {HOUR_S * 1_000_000} != 0",
                         _message(c, "is not on the hour"))
                for c in self.columns if c in columns]


@dataclass(frozen=True)
class UniqueWithin(Expectation):
    """`key` is unique within each group of `within` (e.g. within one API response).

    Across responses a repeated key is a revision, resolved by the MERGE; inside one response it
    is ambiguous, so every copy fails.
    """

    key: tuple[str, ...]
    within: tuple[str, ...]
    name: str = "unique"

    def violations(self, columns: Sequence[str], value: TypedValue) -> list[str]:
        if not all(c in columns for c in (*self.key, *self.within)):
            return []
        partition = ", ".join([value(c) for c in self.key] + [sql_name(c) for c in self.within])
        message = sql_text(f"({', '.join(self.key)}) appears more than once in one response")
        return [_failure(f"{self.name}:{','.join(self.key)}", f"count(1) OVER (PARTITION BY {partition}) > 1", message)]


@dataclass(frozen=True)
class Suite:
    """A silver table's expectations; types come from its schema, plus `dynamic_types` for the
    columns it grows (by prefix)."""

    table: Table
    expectations: tuple[Expectation, ...]
    dynamic_types: Mapping[str, DataType] = field(default_factory=dict)

    def type_of(self, column: str) -> DataType | None:
        assert self.table.schema is not None
        if column in self.table.schema.names:
            return self.table.schema[column].dataType
        for prefix, data_type in self.dynamic_types.items():
            if column.startswith(prefix):
                return data_type
        return None


def _typed(frame: DataFrame, suite: Suite) -> TypedValue:
    """SQL for a column's typed value: `try_cast` from text where the table types it otherwise."""
    kinds = dict(frame.dtypes)

    def value(column: str) -> str:
        target = suite.type_of(column)
        if target is None or kinds.get(column) != "string" or isinstance(target, StringType):
            return sql_name(column)
        return f"try_cast({sql_name(column)} AS {target.simpleString()})"
    return value


def _type_violations(frame: DataFrame, suite: Suite, value: TypedValue) -> list[str]:
    result = []
    for column, kind in frame.dtypes:
        target = suite.type_of(column)
        if column.startswith("_") or target is None or kind != "string" or isinstance(target, StringType):
            continue
        result.append(_failure(f"type:{column}", f"{sql_name(column)} IS NOT NULL AND {value(column)} IS NULL",
                               _message(column, f"is not a valid {target.simpleString()}")))
    return result


def evaluate(frame: DataFrame, suite: Suite) -> DataFrame:
    """Add `FAILURES`: every expectation of `suite` the row fails (types first).

    Args:
        frame: rows with columns named as in the table, typed columns still as text where they
            came as text. Columns starting with `_` are plumbing: only `UniqueWithin` groups by
            them. A `FAILURES` column already present (a parse failure) is kept as the only
            verdict for its rows.

    Returns:
        `frame` with `FAILURES` (an empty array when the row passed).
    """
    columns = [c for c in frame.columns if c != FAILURES]
    value = _typed(frame, suite)
    checks = _type_violations(frame, suite, value)
    for expectation in suite.expectations:
        checks.extend(expectation.violations(columns, value))
    # The lists concatenated, not nullable entries compacted: `array_compact` is a lambda
    # (`filter`), and one lambda in a projection makes Spark evaluate the whole projection row by
    # row without generated code (measured: the year's weather gate 6 s slower).
    found = f"concat({', '.join(checks)})" if checks else "array()"
    if FAILURES in frame.columns:
        found = f"CASE WHEN size({FAILURES}) > 0 THEN {FAILURES} ELSE {found} END"
    found_column, verdict = "__found", "__verdict"
    # The verdict comes out of a generator (one element, so one row per row): a filter on it then
    # refers to a plain column the optimizer cannot substitute. Inlined instead, the expression
    # mentions every column; Spark's constraint propagation then doubles its constraint set for
    # each aliased column above it (2^n: a driver OOM for a 30-column table).
    return (frame.withColumn(found_column, F.expr(found).cast(FAILURES_TYPE))
            .withColumn(verdict, F.explode(F.array(found_column)))
            .drop(FAILURES, found_column).withColumnRenamed(verdict, FAILURES))


def passed() -> Column:
    return F.size(FAILURES) == 0


def conform(frame: DataFrame, suite: Suite) -> DataFrame:
    """Cast the table's columns to their types, in schema order, then the grown columns sorted;
    plumbing (`_`) columns are kept at the end, other columns dropped."""
    assert suite.table.schema is not None
    value = _typed(frame, suite)
    declared = [c for c in suite.table.schema.names if c in frame.columns]
    grown = sorted(c for c in frame.columns
                   if c not in declared and not c.startswith("_") and suite.type_of(c) is not None)
    plumbing = [c for c in frame.columns if c.startswith("_")]
    return frame.selectExpr(
        *[f"CAST({value(c)} AS {suite.type_of(c).simpleString()}) AS {sql_name(c)}" for c in declared + grown],
        *[sql_name(c) for c in plumbing],
    )


# --- the silver suites ---------------------------------------------------------------------------

# One response, identified by its bronze row.
_ONE_RESPONSE = ("_source_table", "_payload_hash", "_ingest_run_id", "_ingested_at")

_PRODUCTION = tuple(f.name for f in SILVER_ENERGY.schema.fields if f.name.startswith("production_"))
# Storage output is negative while it charges (pumping): no lower bound for it.
_STORAGE = ("production_hydro_discharge", "production_battery_discharge")

ENERGY = Suite(
    SILVER_ENERGY,
    expectations=(
        NotNull(("zone", "datetime")),
        HourAligned(("datetime",)),
        UniqueWithin(("zone", "datetime"), within=_ONE_RESPONSE),
        # Revisions are ordered by updatedAt: a side without one cannot be placed. A portal CSV
        # gives none; its publication time is assumed (`with_publication_time`).
        NotNull(("carbon_updated_at",), unless="carbon_origin = 'portal'"),
        NotNull(("power_updated_at",), unless="power_origin = 'portal'"),
        NotNull(("carbon_intensity",)),
        InRange(0, 2000, ("carbon_intensity",)),
        OneOf("emission_factor_type", ("lifecycle", "direct")),
        InRange(0, 100, ("fossil_free_percentage", "renewable_percentage")),
        InRange(0, None, tuple(c for c in _PRODUCTION if c not in _STORAGE)),
        InRange(0, None, ("power_production_total", "power_consumption_total",
                          "power_import_total", "power_export_total"),
                prefixes=("consumption_", "import_", "export_")),
    ),
    dynamic_types={"import_": DoubleType(), "export_": DoubleType()},
)

WEATHER = Suite(
    SILVER_WEATHER,
    expectations=(
        NotNull(("zone", "location", "fetched_at", "datetime")),
        HourAligned(("datetime",)),
        UniqueWithin(("location", "datetime"), within=_ONE_RESPONSE),
        InRange(-90, 60, ("temp", "dew")),
        InRange(-100, 75, ("feelslike",)),
        InRange(0, 100, ("humidity", "precipprob", "cloudcover", "severerisk")),
        InRange(0, None, ("precip", "snow", "snowdepth", "windgust", "windspeed", "visibility",
                          "solarradiation", "solarenergy", "uvindex")),
        InRange(0, 360, ("winddir",)),
        InRange(850, 1090, ("sealevelpressure",)),
    ),
)
