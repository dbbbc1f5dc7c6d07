"""Generic writers for the medallion: newest-revision MERGE, idempotent append, incremental reads.

Nothing here knows about energy or weather; silver uses it, gold can too.

- `latest_per_key`: keep one row per key, the newest by an ordering (dedupe inside a batch
  before a MERGE, which refuses two source rows for one target row).
- `merge_revisions`: MERGE a batch into a Delta table where each `RevisionGroup` of columns is
  replaced only when the incoming row is newer for that group, so an older revision arriving
  late never overwrites a newer one, and two upstream sources can fill one row independently.
  New source columns are added to the table (MERGE schema evolution).
- `known_empty` / `append_into_empty`: a MERGE into a table without rows inserts every row; a
  plain append writes the same rows without the MERGE's join (the first batch of a fresh lake).
- `append_once`: a plain append Delta skips when the same (writer, batch) already committed:
  the cheap idempotent write for a streaming batch (one Spark job; a MERGE runs about ten).
- `process_new_rows`: feed the rows appended to Delta tables since the last call to a function,
  using Structured Streaming with `trigger(availableNow=True)` and a checkpoint: progress is
  tracked by Delta version, never by a timestamp column, and a call with nothing new runs no
  batch and commits nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F

from gridcast.medallion.sql import sql_name
from gridcast.storage import TableStore
from gridcast.tables import Table

# The column `process_new_rows` adds to every streamed row: the qualified name of its source table.
SOURCE_COLUMN = "_source_table"

# A Delta session setting used for one MERGE at a time (see `session_conf`): MERGE takes no
# writer options.
MERGE_MATERIALIZE_SOURCE = "spark.databricks.delta.merge.materializeSource"


# --- dedupe ------------------------------------------------------------------------------------

def latest_per_key(df: DataFrame, key: Sequence[str], order: Sequence[str]) -> DataFrame:
    """One row per `key`: the greatest by `order` (compared left to right, nulls lowest).

    Args:
        df: rows, possibly several per key.
        key: the columns that identify a row.
        order: the columns that rank revisions, most significant first; put a content column
            (e.g. a payload hash) last to make ties deterministic.

    Returns:
        `df` with one row per key and the same columns.
    """
    window = Window.partitionBy(*key).orderBy(*[F.col(c).desc_nulls_last() for c in order])
    rank = "__revision_rank"
    return df.withColumn(rank, F.row_number().over(window)).filter(F.col(rank) == 1).drop(rank)


# --- newest-revision MERGE -----------------------------------------------------------------------

@dataclass(frozen=True)
class RevisionGroup:
    """Columns one upstream source owns and revises together.

    A target row's group is replaced by the incoming one when the incoming row carries the group
    (its first `order` column is not null) and is newer: `order` compared left to right, a null
    in the target being older than anything. Equal on every `order` column: the target is kept.
    Columns named in `columns` or starting with one of `prefixes` belong to the group, whether
    they exist in the batch, in the table or both: a group column the newer revision lacks
    becomes null.
    """

    name: str
    order: tuple[str, ...]
    columns: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def owns(self, column: str) -> bool:
        return column in self.columns or column in self.order or column.startswith(self.prefixes)

    def newer(self, source: str = "s", target: str = "t") -> str:
        """SQL: the incoming row has this group and it is newer than the target's."""
        if not self.order:
            return "true"
        newer = "false"
        # "s > t lexicographically", built from the least significant column up.
        for column in reversed(self.order):
            s, t = f"{source}.{sql_name(column)}", f"{target}.{sql_name(column)}"
            newer = f"({t} IS NULL OR {s} > {t} OR ({s} = {t} AND {newer}))"
        return f"({source}.{sql_name(self.order[0])} IS NOT NULL AND {newer})"


@dataclass(frozen=True)
class MergeMetrics:
    inserted: int = 0
    updated: int = 0

    def __add__(self, other: "MergeMetrics") -> "MergeMetrics":
        return MergeMetrics(self.inserted + other.inserted, self.updated + other.updated)


def merge_revisions(
    spark: SparkSession,
    store: TableStore,
    table: Table,
    updates: DataFrame,
    *,
    groups: Sequence[RevisionGroup] | None = None,
    on_match: Mapping[str, str] | None = None,
) -> MergeMetrics:
    """MERGE `updates` into `table` on its key, keeping the newest revision of each group.

    Args:
        updates: at most one row per key (see `latest_per_key`), deterministic (it is read
            twice; materialise it first if computing it again could give other rows).
        groups: the revision groups; None = one group owning every non-key column, always
            newer (a plain upsert).
        on_match: SQL expressions (`s.` = incoming, `t.` = target) for columns combined on every
            match whichever side is newer, e.g. `least(t.first_seen, s.first_seen)`. On insert
            these columns take the incoming value.

    Every column of `updates` must be a key column, owned by a group or in `on_match`. A group
    whose first `order` column is not in `updates` is left as it is. Table columns that are none
    of these (e.g. generated columns) are left to Delta. A table without rows gets a plain
    append of `updates` instead (`append_into_empty`): the same rows and columns.

    Returns:
        Rows inserted and updated.

    Raises:
        ValueError: a column of `updates` belongs to no group, or the table has no key.
    """
    if not table.key:
        raise ValueError(f"{table} has no key to MERGE on")
    on_match = dict(on_match or {})
    key = list(table.key)
    source_columns = updates.columns
    if groups is None:
        owned = tuple(c for c in source_columns if c not in key and c not in on_match)
        groups = (RevisionGroup("all", order=(), columns=owned),)
    target_columns = set(store.read(spark, table).columns)
    orphans = [c for c in source_columns
               if c not in key and c not in on_match and not any(g.owns(c) for g in groups)]
    if orphans:
        raise ValueError(f"MERGE into {table}: column(s) {', '.join(orphans)} belong to no revision group")

    if known_empty(spark, store, table):
        return MergeMetrics(inserted=append_into_empty(spark, store, table, updates))
    # A group the batch does not carry at all (e.g. no power rows in it) keeps the table's values.
    groups = [g for g in groups if not g.order or g.order[0] in source_columns]
    # SQL text: one string per column, parsed by Spark, rather than thousands of small calls.
    assignments: dict[str, str] = {}
    for group in groups:
        newer = group.newer()
        for column in sorted(c for c in set(source_columns) | target_columns if group.owns(c)):
            incoming = f"s.{sql_name(column)}" if column in source_columns else "NULL"
            current = f"t.{sql_name(column)}" if column in target_columns else "NULL"
            assignments[column] = f"CASE WHEN {newer} THEN {incoming} ELSE {current} END"
    assignments.update(on_match)
    changed = [f"NOT (t.{sql_name(c)} <=> ({e}))" for c, e in on_match.items()]
    update_when = " OR ".join([g.newer() for g in groups] + changed)
    condition = " AND ".join(f"t.{sql_name(c)} = s.{sql_name(c)}" for c in key)
    # The source is read twice (matching, then writing) and is deterministic: no need for Delta
    # to materialise it first (one Spark job fewer).
    with session_conf(spark, MERGE_MATERIALIZE_SOURCE, "none", optional=True):
        result = (
            store.delta_table(spark, table).alias("t")
            .merge(updates.alias("s"), condition)
            .whenMatchedUpdate(condition=update_when, set=assignments)
            .whenNotMatchedInsert(values={c: f"s.{sql_name(c)}" for c in source_columns})
            .withSchemaEvolution()
            .execute()
            .collect()[0]
        )
    return MergeMetrics(inserted=result["num_inserted_rows"], updated=result["num_updated_rows"])


def known_empty(spark: SparkSession, store: TableStore, table: Table) -> bool:
    """Whether the Delta table certainly has no rows: only its creating commit (version 0) and
    no data file in it (`DESCRIBE DETAIL`).

    A table with later commits is taken to have rows without a look (its version is a file
    listing locally; DESCRIBE DETAIL cost a query before every MERGE): a MERGE is right
    whatever the table holds, the append only when it holds nothing.
    """
    if store.version(spark, table) != 0:
        return False
    return store.delta_table(spark, table).detail().select("numFiles").first()[0] == 0


def append_into_empty(spark: SparkSession, store: TableStore, table: Table, rows: DataFrame) -> int:
    """Append `rows` to a table `known_empty` found empty: what a MERGE (every row an insert)
    would write, new columns added the same way, in one write instead of a join and a write.

    Idempotent like the MERGE it replaces: a batch re-run after this commit finds rows and
    MERGEs (matching every row, changing none). Table columns the rows lack (generated ones
    aside) are appended as NULL, as the MERGE would insert them.

    Returns:
        Rows written.
    """
    # The declared schema is the table's: it was created empty from it (`known_empty`).
    schema = table.schema or store.read(spark, table).schema
    missing = [f for f in schema
               if f.name not in rows.columns and f.name not in table.generated_columns]
    if missing:
        # A MERGE inserts NULL into a column the batch lacks; an append must carry it, or Delta
        # cannot compute a generated column that reads it (a carbon-only first batch into
        # silver.energy_data, whose `is_estimated` reads the power side too).
        rows = rows.select("*", *[F.lit(None).cast(f.dataType).alias(f.name) for f in missing])
    store.append(rows, table, {"mergeSchema": "true"})
    return appended_rows(store.delta_table(spark, table).history(1).collect()[0])


def appended_rows(commit: Row) -> int:
    """Rows a `WRITE` commit (a history row) appended; 0 for any other operation."""
    if commit.operation != "WRITE":
        return 0
    return int((commit.operationMetrics or {}).get("numOutputRows", 0))


@contextmanager
def session_conf(
    spark: SparkSession, key: str, value: str, *, optional: bool = False,
) -> Iterator[None]:
    """Set a Spark session configuration for the duration of a block (one write), then restore it.

    `optional`: the setting is only an optimisation; a session that refuses it (serverless
    rejects most `spark.databricks.*` settings with an AnalysisException) runs the block without.
    """
    try:
        previous = spark.conf.get(key, None)
        spark.conf.set(key, value)
    except AnalysisException:
        if not optional:
            raise
        yield
        return
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, previous)


def append_once(store: TableStore, table: Table, rows: DataFrame, *, writer: str, version: int,
                options: Mapping[str, str] | None = None) -> None:
    """Append `rows` unless `writer` already committed `version` (or a later one) to `table`.

    Delta keeps the newest version per writer id in the table's log (idempotent writes) and
    skips a write whose version is not newer. Give every stream its own writer id (see
    `Batch.writer`) and the batch id as version: a batch re-run after a crash appends once.
    The writer id travels as writer options (`txnAppId` / `txnVersion`), not as session
    settings: per write, and accepted by Spark Connect.
    """
    store.append(rows, table, {"txnAppId": writer, "txnVersion": str(version), **(options or {})})


# --- incremental reads ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Batch:
    """One micro-batch of new source rows, as `process_new_rows` hands it over."""

    rows: DataFrame
    id: int  # the same when a batch interrupted by a crash is re-run
    query_id: str  # the stream's id: stable for the life of its checkpoint

    def writer(self, table: Table) -> str:
        """A writer id for `append_once` into `table`, unique to this stream and table."""
        return f"{self.query_id}:{table.qualified_name}"


@dataclass
class IncrementalRun:
    """What one `process_new_rows` call did."""

    batches: int = 0
    # Per source table that had new rows: the Delta version read up to (inclusive).
    versions: dict[Table, int] = field(default_factory=dict)
    seconds: float = 0.0
    # The Spark job group the query's batches ran under (its run id; None: no query started):
    # Structured Streaming sets it on its own thread, so the caller's group does not see them.
    job_group: str | None = None


def _version_read(end_offset: str | None) -> int | None:
    """The last Delta version a stream has fully read, from its end offset.

    A Delta source offset points at the next file to read: `reservoirVersion` v with `index` -1
    means every version before v has been read.
    """
    if not end_offset:
        return None
    offset = json.loads(end_offset)
    version, index = int(offset["reservoirVersion"]), int(offset.get("index", -1))
    return version - 1 if index == -1 else version


def _caught_up(
    spark: SparkSession, store: TableStore, sources: Sequence[Table], checkpoint: str,
) -> bool:
    """Whether the stream's last batch is committed and read every source up to its current
    Delta version: then a run would find nothing new, and starting the query (seconds of
    planning and Delta log reads for no batch) can be skipped.

    Read from the checkpoint's newest `offsets/<batch>` file (a version line, the batch's
    metadata, then one offset per source in plan order) and `commits/<batch>`. Anything
    unexpected answers False: the stream then runs and decides itself.
    """
    offsets, commits = Path(checkpoint) / "offsets", Path(checkpoint) / "commits"
    if not offsets.is_dir():
        return False
    batches = [int(p.name) for p in offsets.iterdir() if p.name.isdigit()]
    if not batches or not (commits / str(max(batches))).exists():
        return False
    lines = (offsets / str(max(batches))).read_text().splitlines()[2:]
    if len(lines) != len(sources) or any(line.strip() in ("", "-") for line in lines):
        return False
    for table, line in zip(sources, lines):
        read, current = _version_read(line), store.version(spark, table)
        if read is None or current is None or read < current:
            return False
    return True


def stream_id(checkpoint: str) -> str:
    """The id of the stream whose progress `checkpoint` keeps: stable for the checkpoint's life.

    Structured Streaming keeps its query id in the checkpoint's `metadata` file and takes it from
    there when one exists; a new checkpoint gets an id written here, before the query starts, so
    the driver knows the id without asking the running query (`spark.streams`), which the
    foreachBatch function cannot do under Spark Connect. The file is read and written with
    Python's file I/O: on Databricks the checkpoint is in a Unity Catalog volume
    (`/Volumes/...`), which Python on the driver reaches as files through the volume's FUSE
    mount, serverless included; only JVM file APIs cannot (decision 0026).
    """
    metadata = Path(checkpoint) / "metadata"
    if metadata.exists():
        return str(json.loads(metadata.read_text())["id"])
    metadata.parent.mkdir(parents=True, exist_ok=True)
    query_id = str(uuid.uuid4())
    metadata.write_text(json.dumps({"id": query_id}))
    return query_id


@dataclass(frozen=True)
class _BatchFunction:
    """What `foreachBatch` calls: `process` on each micro-batch, with the stream's id.

    It holds no SparkSession: under Spark Connect the function is pickled and runs in a separate
    Python process next to the server, where the driver's session does not exist; the batch's
    rows carry their own (`rows.sparkSession`).
    """

    process: Callable[[Batch], None]
    query_id: str

    def __call__(self, rows: DataFrame, batch_id: int) -> None:
        self.process(Batch(rows, batch_id, self.query_id))


def process_new_rows(
    spark: SparkSession,
    store: TableStore,
    sources: Sequence[Table],
    checkpoint: str,
    process: Callable[[Batch], None],
    *,
    name: str,
) -> IncrementalRun:
    """Call `process(batch)` on the rows appended to `sources` since the last call.

    The sources are read as Delta streams, unioned by column name (missing columns are null;
    `SOURCE_COLUMN` names each row's table), and processed with `trigger(availableNow=True)`:
    everything new at call time, then stop. The checkpoint directory remembers which Delta
    versions were processed; it belongs to this (target, sources) pair: changing the set of
    sources needs a new checkpoint. `process` must be idempotent per batch (a batch interrupted
    by a crash is re-run with the same id): MERGE-based writes are, appends via `append_once`.
    `name` must be unique among the session's active streams. `process` must not hold the
    driver's session nor report back by mutating itself: under Spark Connect it runs on a pickled
    copy in another process (use `batch.rows.sparkSession`; leave results in tables).

    The sources must be append-only (a Delta stream refuses updates and deletes).

    Returns:
        Batches processed, per source that had new rows the Delta version read up to, and the
        Spark job group the batches' jobs ran under (for a step's job count).
    """
    started = time.monotonic()
    if _caught_up(spark, store, sources, checkpoint):
        return IncrementalRun(seconds=time.monotonic() - started)
    streams = [store.read_stream(spark, t).withColumn(SOURCE_COLUMN, F.lit(t.qualified_name))
               for t in sources]
    union = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), streams)

    query = (
        union.writeStream.queryName(name)
        .foreachBatch(_BatchFunction(process, stream_id(checkpoint)))
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    run = IncrementalRun(job_group=str(query.runId))
    for progress in query.recentProgress:
        # Progress lists the sources in the order they appear in the plan: the union's order.
        # (Its row counts come from the plan's metrics, which a batch read several times inflates:
        # a source advanced when its offset moved.)
        advanced = {table: source for table, source in zip(sources, progress["sources"])
                    if source.get("endOffset") and source.get("endOffset") != source.get("startOffset")}
        if not advanced:
            continue
        run.batches += 1
        for table, source in advanced.items():
            version = _version_read(source["endOffset"])
            if version is not None:
                run.versions[table] = version
    run.seconds = time.monotonic() - started
    return run
