"""Ingest: fetch raw API responses at each run time and append them to the bronze tables.

Bronze keeps what the API said, as it said it: the raw body, the HTTP status, the request
parameters (never credentials), when it was fetched and by which run. A malformed body or an
error status is stored like any other response: parsing and judging it is silver's job.
Responses are buffered and appended in a few Delta commits, not one per request.

Idempotent: a rerun adds nothing bronze already has. A request whose 2xx answer bronze holds
for that run time is not fetched again. A request whose stored answers are all errors is
fetched again (the failure may have been transient: that is what a rerun is for), and its new
answer is appended only if it differs from every stored one in request parameters, status,
payload hash and error (docs/decisions/0005-idempotent-bronze.md).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Hashable, Protocol

from pyspark.sql import Column, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.util import inheritable_thread_target

from gridcast.errors import GridcastError
from gridcast.config import ZoneConfig
from gridcast.sources import SourceSession
from gridcast.sources.http import ApiResponse, RetriesExhaustedError
from gridcast.sources.visualcrossing import window_days
from gridcast.storage import TableStore
from gridcast.tables import (
    BRONZE_CARBON,
    BRONZE_POWER,
    BRONZE_TABLES,
    BRONZE_WEATHER,
    SCHEDULED_ORIGIN,
    Table,
)

Progress = Callable[[str], None]
MERGE_SCHEMA = {"mergeSchema": "true"}


class IngestIncompleteError(GridcastError, RuntimeError):
    """Some requests failed after every retry; what did arrive was still written."""


@dataclass(frozen=True)
class Request:
    """One thing to fetch at a run time, and which bronze table its answer goes to."""

    table: Table
    location: str | None = None


@dataclass
class IngestSummary:
    runs: int = 0
    rows: dict[str, int] = field(default_factory=lambda: {t.qualified_name: 0 for t in BRONZE_TABLES})
    failures: list[str] = field(default_factory=list)
    skipped: int = 0  # requests already in bronze with a 2xx answer for the same run time
    unchanged: int = 0  # re-fetched error answers identical to one bronze holds: not appended
    # Answers the API gave with a non-2xx status, per "endpoint HTTP status" (kept in bronze).
    http_errors: dict[str, int] = field(default_factory=dict)
    commits: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    write_seconds: float = 0.0  # creating and appending to the Delta tables


class WriteCounts(Protocol):
    """What a summary counts of its bronze writes (ingest's and backfill's)."""

    write_seconds: float
    commits: int
    versions: dict[str, int]


class BronzeBuffer:
    """Rows waiting to be appended, per bronze table."""

    def __init__(self) -> None:
        self.rows: dict[Table, list[tuple]] = {t: [] for t in BRONZE_TABLES}

    def add(self, table: Table, row: tuple) -> None:
        self.rows[table].append(row)

    def __len__(self) -> int:
        return sum(len(r) for r in self.rows.values())

    def flush(self, spark: SparkSession, store: TableStore) -> dict[Table, int]:
        """Append every non-empty buffer (one commit per table); returns the versions written."""
        written = {}
        for table, rows in self.rows.items():
            if not rows:
                continue
            # Schema evolution: a table written before a column was declared (bronze `origin`)
            # gains it on this append instead of refusing it (a writer option, not the session
            # setting, which serverless may refuse).
            store.append(spark.createDataFrame(rows, schema=table.schema), table, MERGE_SCHEMA)
            written[table] = store.version(spark, table)
            rows.clear()
        return written

    def take(self) -> "BronzeBuffer":
        """A buffer holding this one's rows; this one is left empty."""
        taken = BronzeBuffer()
        taken.rows, self.rows = self.rows, {t: [] for t in BRONZE_TABLES}
        return taken

    def flush_into(self, spark: SparkSession, store: TableStore, summary: "WriteCounts",
                   on_commit: Callable[[Table, int], None] | None = None) -> None:
        """`flush`, counting the seconds, commits and versions in `summary` and reporting each
        commit to `on_commit` (lineage)."""
        started = time.monotonic()
        written = self.flush(spark, store)
        _count_writes(summary, written, time.monotonic() - started, on_commit)


def _count_writes(summary: "WriteCounts", written: dict[Table, int], seconds: float,
                  on_commit: Callable[[Table, int], None] | None) -> None:
    summary.write_seconds += seconds
    for table, version in written.items():
        summary.commits += 1
        summary.versions[table.qualified_name] = version
        if on_commit:
            on_commit(table, version)


class BackgroundFlusher:
    """Appends a buffer's rows in a writer thread while the caller goes on fetching.

    One write at a time, in the order flushed: `flush` first waits for the previous write.
    `summary` and `on_commit` (MLflow lineage, which is per thread) are updated in the caller's
    thread when a write is collected; a write's error is raised there too, by the next
    `flush` (which first puts the rows that write did not append back into the caller's
    buffer, so a later flush tries them again) or by `close`. The writer thread inherits the
    caller's Spark job group, so the step's job count includes its jobs.
    """

    def __init__(self, spark: SparkSession, store: TableStore, summary: "WriteCounts",
                 on_commit: Callable[[Table, int], None] | None = None) -> None:
        self._spark, self._store, self._summary, self._on_commit = spark, store, summary, on_commit
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bronze-write")
        self._pending: tuple[Future, BronzeBuffer] | None = None

    def _write(self, rows: BronzeBuffer) -> tuple[dict[Table, int], float]:
        started = time.monotonic()
        written = rows.flush(self._spark, self._store)
        return written, time.monotonic() - started

    def flush(self, buffer: BronzeBuffer) -> None:
        """Start appending `buffer`'s rows (it is left empty), after the previous write ends."""
        self.collect(buffer)
        if len(buffer):
            rows = buffer.take()
            write = inheritable_thread_target(self._spark)(self._write)
            self._pending = (self._pool.submit(write, rows), rows)

    def collect(self, buffer: BronzeBuffer | None = None) -> None:
        """Wait for the write in flight, if any, and count it. If it failed, the rows it did not
        append go back to the front of `buffer` (when given) before its error is raised."""
        if self._pending is None:
            return
        (pending, rows), self._pending = self._pending, None
        try:
            written, seconds = pending.result()
        except BaseException:
            if buffer is not None:
                for table, unwritten in rows.rows.items():
                    buffer.rows[table][:0] = unwritten
            raise
        _count_writes(self._summary, written, seconds, self._on_commit)

    def close(self) -> None:
        """Wait for the last write and stop the writer thread."""
        try:
            self.collect()
        finally:
            self._pool.shutdown()


def plan_requests(zone: ZoneConfig) -> list[Request]:
    """What one run fetches: both Electricity Maps histories and each location's weather."""
    return [Request(BRONZE_CARBON), Request(BRONZE_POWER)] + [
        Request(BRONZE_WEATHER, location.name) for location in zone.locations
    ]


def _fetch(source: SourceSession, zone: ZoneConfig, request: Request, run_time: datetime,
           horizon_h: int) -> tuple[ApiResponse, str | None]:
    """Fetch one request; a retryable failure that persisted comes back as a response with an error.

    The weather request covers [run_time - 24 h, run_time + horizon] in explicit UTC dates, so
    a fetch late in the day still reaches the whole horizon.
    """
    try:
        if request.table is BRONZE_CARBON:
            response = source.electricitymaps.history("carbon-intensity", zone.id)
        elif request.table is BRONZE_POWER:
            response = source.electricitymaps.history("power-breakdown", zone.id)
        else:
            location = next(loc for loc in zone.locations if loc.name == request.location)
            first_day, last_day = window_days(run_time, horizon_h)
            response = source.visualcrossing.timeline(location, first_day, last_day)
    except RetriesExhaustedError as error:
        return error.response, str(error)
    return response, None


def bronze_row(zone: str, request: Request, response: ApiResponse, *, source: str,
               ingested_at: datetime, run_id: str, failure: str | None,
               origin: str = SCHEDULED_ORIGIN) -> tuple:
    """The bronze row for a response, in the column order of the table's schema.

    `origin` is one of `BRONZE_ORIGINS`: the scheduled fetch (`history`) or a backfill path.
    """
    common = (
        response.endpoint, response.params_json, response.status, response.body,
        failure or response.error, response.attempts, source, ingested_at, run_id,
        response.payload_hash, origin,
    )
    if request.table is BRONZE_WEATHER:
        return (zone, request.location, *common)
    return (zone, *common)


# (request params JSON, HTTP status, payload hash, error): what makes two answers the same.
AnswerSignature = tuple[str, int | None, str | None, str | None]
RequestKey = tuple[str, str | None, int]  # (table, location, epoch seconds of ingested_at)


@dataclass
class StoredAnswers:
    """What bronze holds for one request at one run time."""

    ok: bool = False  # a 2xx answer without error: nothing left to fetch
    signatures: set[AnswerSignature] = field(default_factory=set)


def answer_signature(response: ApiResponse, failure: str | None) -> AnswerSignature:
    """The identity of an answer, as bronze stores it (see `bronze_row`)."""
    return (response.params_json, response.status, response.payload_hash, failure or response.error)


def collect_answers(spark: SparkSession, store: TableStore, zone: str, where: Column,
                    key: Callable[[Row], Hashable | None]) -> dict[Hashable, StoredAnswers]:
    """The answers bronze holds for a zone's rows matching `where`, grouped by `key(row)` (a
    row whose key is None is ignored): one Spark action over the bronze tables that exist,
    bodies left out (the payload hash stands for them).

    Rows carry table (qualified name), location, endpoint, epoch (ingested_at, seconds),
    request_params, http_status, payload_hash, error, origin (null: `history`).
    """
    parts = []
    for table in BRONZE_TABLES:
        if not store.exists(spark, table):
            continue
        rows = store.read(spark, table)
        location = F.col("location") if table is BRONZE_WEATHER else F.lit(None).cast("string")
        # Tables written before the origin column existed hold scheduled fetches only.
        origin = F.col("origin") if "origin" in rows.columns else F.lit(None).cast("string")
        parts.append(
            rows.where(F.col("zone") == zone)
            .select(F.lit(table.qualified_name).alias("table"), location.alias("location"),
                    "endpoint", F.col("ingested_at").cast("long").alias("epoch"), "request_params",
                    "http_status", "payload_hash", "error",
                    F.coalesce(origin, F.lit(SCHEDULED_ORIGIN)).alias("origin"))
            .where(where)
        )
    if not parts:
        return {}
    rows = parts[0]
    for part in parts[1:]:
        rows = rows.unionByName(part)
    answers: dict[Hashable, StoredAnswers] = {}
    for row in rows.distinct().collect():
        request_key = key(row)
        if request_key is None:
            continue
        stored = answers.setdefault(request_key, StoredAnswers())
        status = row["http_status"]
        stored.ok = stored.ok or (status is not None and 200 <= status < 300 and row["error"] is None)
        stored.signatures.add((row["request_params"], status, row["payload_hash"], row["error"]))
    return answers


def stored_answers(spark: SparkSession, store: TableStore, zone: str,
                   run_times: list[datetime]) -> dict[RequestKey, StoredAnswers]:
    """The answers bronze already holds for these run times, per request (scheduled fetches
    only: a backfill row stamped with the same time answers another request).

    In live mode the run time is "now", which bronze never holds yet.
    """
    if not run_times:
        return {}
    first, last = min(run_times), max(run_times)
    scheduled = (F.col("origin") == SCHEDULED_ORIGIN) & F.col("epoch").between(
        int(first.timestamp()), int(last.timestamp()))
    return collect_answers(spark, store, zone, scheduled,
                           lambda row: (row["table"], row["location"], row["epoch"]))


def ingest(
    spark: SparkSession,
    store: TableStore,
    source: SourceSession,
    zone: ZoneConfig,
    *,
    run_id: str,
    horizon_h: int = 24,
    flush_every_runs: int = 500,
    concurrency: int = 4,
    progress: Progress = print,
    on_commit: Callable[[Table, int], None] | None = None,
) -> IngestSummary:
    """Fetch every planned request at every run time and append the new answers to bronze.

    `horizon_h` is how far ahead the weather request reaches. AuthError stops at once (after writing what was already fetched). Requests that fail after
    every retry are written with their error and reported by `IngestIncompleteError` at the end.
    """
    started = time.monotonic()
    buffer, summary = BronzeBuffer(), IngestSummary()
    requests_ = plan_requests(zone)
    stored = stored_answers(spark, store, zone.id, source.run_times)
    total = len(source.run_times)
    report_every = max(1, total // 10)

    def flush() -> None:
        buffer.flush_into(spark, store, summary, on_commit)

    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ingest") as pool:
            for index, run_time in enumerate(source.run_times, start=1):
                epoch = int(run_time.timestamp())
                known = {r: stored.get((r.table.qualified_name, r.location, epoch), StoredAnswers())
                         for r in requests_}
                pending = [r for r in requests_ if not known[r].ok]
                summary.skipped += len(requests_) - len(pending)
                source.set_clock(run_time)
                results = list(pool.map(
                    lambda r: _fetch(source, zone, r, run_time, horizon_h), pending))
                for request, (response, failure) in zip(pending, results):
                    if failure:
                        summary.failures.append(f"{run_time:%Y-%m-%dT%H:%MZ} {failure}")
                    if response.status is not None and not 200 <= response.status < 300:
                        label = f"{response.endpoint} HTTP {response.status}"
                        summary.http_errors[label] = summary.http_errors.get(label, 0) + 1
                    if answer_signature(response, failure) in known[request].signatures:
                        summary.unchanged += 1
                        continue
                    buffer.add(request.table, bronze_row(
                        zone.id, request, response, source=source.kind, ingested_at=run_time,
                        run_id=run_id, failure=failure,
                    ))
                    summary.rows[request.table.qualified_name] += 1
                summary.runs = index
                if index % flush_every_runs == 0:
                    flush()
                if index % report_every == 0 or index == total:
                    progress(
                        f"ingest {zone.id}: run {index}/{total} at {run_time:%Y-%m-%dT%H:%MZ}, "
                        f"{sum(summary.rows.values())} responses, {len(summary.failures)} failed, "
                        f"{summary.skipped} already in bronze, "
                        f"{summary.unchanged} error answers unchanged, "
                        f"{time.monotonic() - started:.1f} s"
                    )
    finally:
        # Whatever arrived is kept, even when an AuthError stops the run.
        flush()
        summary.seconds = time.monotonic() - started
    return summary
