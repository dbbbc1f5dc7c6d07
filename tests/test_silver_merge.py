"""Silver writes: newest-revision MERGE, one-sided arrival, schema evolution, quarantine,
incremental runs equal to a full rebuild, idempotent reruns, the medallion step and its lineage.

One scenario, fed to two lakes: batch by batch with a silver run after each (the first through
the `medallion` step), and all at once with a single run. The tests assert on what the module
fixture collected.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import mlflow
import pytest
from fixtures.connect_mode import as_on_spark_connect
from fixtures.silver_bronze import bronze_row, carbon_entry, history, past_range, power_entry, utc, weather_csv
from utc import utc_rows

from delta.tables import DeltaTable
from pyspark.sql.streaming.readwriter import DataStreamWriter
from pyspark.sql.types import IntegerType, StringType, StructField, StructType, TimestampType

from gridcast.medallion.silver import STREAM_NAME, SilverSummary, refresh_silver
from gridcast.medallion.upsert import MergeMetrics, RevisionGroup, append_once, merge_revisions
from gridcast.storage import STAGING_LAYER, LocalTableStore
from gridcast.tables import (BRONZE_CARBON, BRONZE_POWER, BRONZE_WEATHER, GENERATION_EXPRESSION,
                             SILVER_ENERGY, SILVER_ENERGY_REVISIONS, SILVER_QUARANTINE,
                             SILVER_WEATHER, Table)
from steps import medallion

H = [utc("2025-03-11T00:00") + timedelta(hours=i) for i in range(6)]  # energy hours
W6, W9 = utc("2025-03-11T06:00"), utc("2025-03-11T09:00")  # first hours of the weather CSVs
# Batch 1 is fetched at B1. Batch 2 holds a replay back in time (fetched at EARLY) and a later
# fetch (LATE), as one bronze commit often holds many fetches; it has no carbon rows at all.
B1, EARLY, LATE = utc("2025-03-11T10:13"), utc("2025-03-11T08:13"), utc("2025-03-11T13:13")
SILVER = (SILVER_ENERGY, SILVER_ENERGY_REVISIONS, SILVER_WEATHER, SILVER_QUARANTINE)
RUN_SPECIFIC = ("quarantined_at", "medallion_run_id")
NEIGHBOURS = ("AL", "BG", "IT-SO")


def _batches() -> list[dict[Table, list[tuple]]]:
    truncated = weather_csv(W9, 12, LATE)
    truncated = truncated[: truncated.index("2025-03-11T15:00:00") + 25]
    return [
        {
            BRONZE_POWER: [
                bronze_row(BRONZE_POWER, history([
                    power_entry(H[0], H[0] + timedelta(hours=9), renewablePercentage=40, neighbours=NEIGHBOURS),
                    power_entry(H[1], H[1] + timedelta(hours=8), neighbours=NEIGHBOURS),
                    power_entry(H[2], utc("2025-03-11T10:00"), renewablePercentage=70, neighbours=NEIGHBOURS),
                ]), B1),  # no H3 yet: that hour lands with its carbon side only
                bronze_row(BRONZE_POWER, '{"zone": "GR", "history": [{"datetime": "2025-03-11T0', B1),
            ],
            BRONZE_CARBON: [
                bronze_row(BRONZE_CARBON, history([
                    carbon_entry(H[0], H[0] + timedelta(hours=9), 300),
                    carbon_entry(H[1], H[1] + timedelta(hours=8), 310),
                    carbon_entry(H[2], utc("2025-03-11T10:00"), 400),
                    carbon_entry(H[3], utc("2025-03-11T10:05"), 410, estimated=True),
                ]), B1),
                bronze_row(BRONZE_CARBON, '{"status": "error", "message": "Internal server error"}', B1, status=500),
            ],
            BRONZE_WEATHER: [bronze_row(BRONZE_WEATHER, weather_csv(W6, 12, B1), B1)],
        },
        {
            BRONZE_POWER: [
                bronze_row(BRONZE_POWER, history([
                    power_entry(H[1], H[1] + timedelta(hours=8), renewablePercentage=11,
                                neighbours=NEIGHBOURS),  # same updatedAt, fetched earlier: ignored
                    power_entry(H[2], utc("2025-03-11T08:05"), estimated=True, renewablePercentage=10,
                                neighbours=NEIGHBOURS),  # an older revision arriving late: ignored
                ]), EARLY),
                bronze_row(BRONZE_POWER, history([
                    power_entry(H[0], H[0] + timedelta(hours=9), renewablePercentage=45,
                                neighbours=NEIGHBOURS),  # same updatedAt, fetched later: wins
                    power_entry(H[3], LATE - timedelta(minutes=8), neighbours=NEIGHBOURS),  # completes H3
                    power_entry(H[4], LATE - timedelta(minutes=8), neighbours=(*NEIGHBOURS, "XK")),
                    power_entry(H[5], LATE - timedelta(minutes=8), renewablePercentage=120),  # out of range
                ]), LATE),
            ],
            BRONZE_WEATHER: [
                bronze_row(BRONZE_WEATHER, weather_csv(W6, 12, utc("2025-03-11T08:00"), temp0=9.0), EARLY),
                bronze_row(BRONZE_WEATHER, weather_csv(W9, 12, LATE, temp0=11.0), LATE),
                bronze_row(BRONZE_WEATHER, truncated, LATE, location="Patras"),
            ],
        },
    ]


def _append(spark, store: LocalTableStore, batch: dict[Table, list[tuple]]) -> None:
    for table, rows in batch.items():
        store.append(spark.createDataFrame(rows, table.schema), table)


def _snapshot(spark, store: LocalTableStore) -> dict[str, tuple[list[str], list[tuple]]]:
    """Each silver table: its sorted column names and its rows (in that column order), sorted."""
    result = {}
    for table in SILVER:
        frame = store.read(spark, table)
        columns = sorted(c for c in frame.columns if c not in RUN_SPECIFIC)
        rows = [tuple(row[c] for c in columns) for row in utc_rows(frame.select(*columns).collect())]
        result[table.name] = (columns, sorted(rows, key=repr))
    return result


@dataclass
class Scenario:
    operations: dict[str, list[str]] = field(default_factory=dict)  # per table, by version
    no_bronze_exit: int = -1
    no_bronze_output: str = ""
    step_exit: int = -1
    step_run_id: str | None = None
    after_first: dict = field(default_factory=dict)
    second: SilverSummary | None = None
    versions_before_rerun: dict = field(default_factory=dict)
    versions_after_rerun: dict = field(default_factory=dict)
    rerun: SilverSummary | None = None
    incremental: dict = field(default_factory=dict)
    full: dict = field(default_factory=dict)
    tracking_uri: str = ""
    quarantine_after_replay: int = 0
    rerun_streams: int = -1  # streaming queries the rerun started
    connect_functions_shipped: int = -1  # foreachBatch functions pickled in the Connect-like run
    full_staged: bool = False  # the full rebuild (staging_table mode) left its staging table
    incremental_staged: bool = True  # the incremental lake (local_checkpoint) has none


def _versions(spark, store) -> dict[str, int | None]:
    return {t.name: store.version(spark, t) for t in SILVER}


def _bronze(spark, store: LocalTableStore) -> None:
    for table in (BRONZE_POWER, BRONZE_CARBON, BRONZE_WEATHER):
        store.ensure(spark, table)


@pytest.fixture(scope="module")
def scenario(spark, tmp_path_factory) -> Scenario:
    root = tmp_path_factory.mktemp("silver")
    result = Scenario(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    overrides = [f"storage.root={root / 'incremental'}", f"mlflow.tracking_uri={result.tracking_uri}"]
    store = LocalTableStore(root / "incremental")
    checkpoints = str(root / "incremental" / "_checkpoints")  # the default for storage=local
    first, second = _batches()

    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        result.no_bronze_exit = medallion.main(overrides)
    result.no_bronze_output = output.getvalue()

    _bronze(spark, store)
    _append(spark, store, first)
    with contextlib.redirect_stdout(io.StringIO()):
        result.step_exit = medallion.main(overrides)
    mlflow.set_tracking_uri(result.tracking_uri)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.step = 'medallion'",
                              order_by=["attributes.start_time DESC"], output_format="list")
    result.step_run_id = runs[0].info.run_id if runs else None
    result.after_first = {row["datetime"]: row for row in utc_rows(store.read(spark, SILVER_ENERGY).collect())}

    _append(spark, store, second)
    # The second batch runs as on Spark Connect; the tests of `second` and `incremental` (and
    # incremental == full, built the ordinary way) then hold for that mode too.
    with as_on_spark_connect() as shipped:
        result.second = refresh_silver(spark, store, checkpoints, run_id="run-2",
                                       progress=lambda _: None)
    result.connect_functions_shipped = len(shipped)
    result.versions_before_rerun = _versions(spark, store)
    started, start = [], DataStreamWriter.start
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DataStreamWriter, "start",
                      lambda writer, *a, **k: started.append(1) or start(writer, *a, **k))
        result.rerun = refresh_silver(spark, store, checkpoints, run_id="run-3",
                                      progress=lambda _: None)
    result.rerun_streams = len(started)
    result.versions_after_rerun = _versions(spark, store)
    result.incremental = _snapshot(spark, store)
    result.operations = {
        t.name: [c.operation for c in sorted(store.delta_table(spark, t).history().collect(),
                                              key=lambda c: c.version)]
        for t in (SILVER_ENERGY, SILVER_ENERGY_REVISIONS, SILVER_WEATHER)
    }

    # A quarantine batch written twice (a re-run after a crash) lands once.
    one_row = store.read(spark, SILVER_QUARANTINE).limit(1).localCheckpoint()
    for _ in range(2):
        append_once(store, SILVER_QUARANTINE, one_row, writer="a-stream:silver.quarantine",
                    version=0)
    result.quarantine_after_replay = store.read(spark, SILVER_QUARANTINE).count()

    # The full rebuild stages its batch in a Delta table (`storage.materialize: staging_table`,
    # the Databricks mode) where the incremental lake keeps localCheckpoint: incremental == full
    # then also proves both modes give the same silver (decision 0026), without a run of its own.
    full = LocalTableStore(root / "full", materialize="staging_table")
    _bronze(spark, full)
    _append(spark, full, {t: first[t] + second.get(t, []) for t in first})
    refresh_silver(spark, full, str(root / "full" / "_checkpoints"), run_id="run-full", progress=lambda _: None)
    result.full = _snapshot(spark, full)
    staged = root / "full" / STAGING_LAYER / f"{STREAM_NAME}_batch"
    result.full_staged = (staged / "_delta_log").is_dir()
    result.incremental_staged = (root / "incremental" / STAGING_LAYER).exists()
    return result


def _energy(scenario: Scenario) -> dict[datetime, dict]:
    columns, rows = scenario.incremental["energy_data"]
    return {row[columns.index("datetime")]: dict(zip(columns, row)) for row in rows}


def test_step_without_bronze_exits_cleanly(scenario):
    assert scenario.no_bronze_exit == 0
    assert "no bronze tables yet" in scenario.no_bronze_output


def test_one_sided_hour_lands_then_is_completed(scenario):
    first = scenario.after_first[H[3]]
    assert (first["carbon_intensity"], first["power_production_total"]) == (410, None)
    assert first["is_estimated"] is True and first["updated_at"] == utc("2025-03-11T10:05")
    final = _energy(scenario)[H[3]]
    assert (final["carbon_intensity"], final["power_updated_at"]) == (410, LATE - timedelta(minutes=8))
    assert final["is_estimated"] is True  # the carbon side still is
    assert final["updated_at"] == LATE - timedelta(minutes=8)  # the newer side
    assert _energy(scenario)[H[4]]["carbon_intensity"] is None  # power only, still lands


def test_a_batch_without_one_side_leaves_that_side_as_it_is(scenario):
    energy = _energy(scenario)
    assert [energy[h]["carbon_intensity"] for h in H[:4]] == [300, 310, 400, 410]
    assert energy[H[0]]["carbon_ingested_at"] == B1


def test_a_late_older_revision_is_ignored(scenario):
    h2 = _energy(scenario)[H[2]]
    assert (h2["renewable_percentage"], h2["power_is_estimated"]) == (70.0, False)
    assert h2["power_updated_at"] == utc("2025-03-11T10:00") and h2["power_ingested_at"] == B1
    assert h2["is_estimated"] is False


def test_a_tie_on_updated_at_goes_to_the_later_fetch(scenario):
    energy = _energy(scenario)
    assert (energy[H[0]]["renewable_percentage"], energy[H[0]]["power_ingested_at"]) == (45.0, LATE)
    assert (energy[H[1]]["renewable_percentage"], energy[H[1]]["power_ingested_at"]) == (85.0, B1)
    assert (energy[H[1]]["first_ingested_at"], energy[H[1]]["last_ingested_at"]) == (EARLY, B1)


def test_a_new_neighbour_evolves_the_schema(scenario):
    assert "import_xk" not in scenario.after_first[H[0]]
    energy = _energy(scenario)
    assert {"import_xk", "export_xk", "import_it_so"} <= set(energy[H[0]])
    assert (energy[H[4]]["import_xk"], energy[H[4]]["export_xk"]) == (40.0, 400.0)
    assert energy[H[0]]["import_xk"] is None and energy[H[0]]["import_it_so"] == 30.0


def test_weather_keeps_every_vintage(scenario):
    columns, rows = scenario.incremental["weather_forecast_data"]
    athens = [dict(zip(columns, r)) for r in rows if r[columns.index("location")] == "Athens"]
    assert sorted({r["fetched_at"] for r in athens}) == [EARLY, B1, LATE]  # exact fetch times
    assert len(athens) == 36
    patras = [r for r in rows if r[columns.index("location")] == "Patras"]
    assert len(patras) == 6  # the lines before the cut


def test_failures_are_quarantined_with_reason_and_bronze_pointer(scenario):
    columns, rows = scenario.incremental["quarantine"]
    by_check = {tuple(r["failed_checks"]): r for r in (dict(zip(columns, row)) for row in rows)}
    assert set(by_check) == {("json",), ("http_status",), ("range:renewable_percentage",), ("csv_row",)}
    out_of_range = by_check[("range:renewable_percentage",)]
    assert out_of_range["reason"] == "renewable_percentage = '120' outside [0, 100]"
    assert (out_of_range["source_table"], out_of_range["target_table"]) == ("bronze.power_data", "silver.energy_data")
    assert (out_of_range["zone"], out_of_range["ingested_at"], out_of_range["ingest_run_id"]) == ("GR", LATE, "ingest-run")
    assert out_of_range["payload_hash"] and '"renewablePercentage":120' in out_of_range["record"]
    truncated = by_check[("csv_row",)]
    assert (truncated["location"], truncated["target_table"]) == ("Patras", "silver.weather_forecast_data")
    assert by_check[("http_status",)]["reason"].startswith("HTTP 500: ")


def test_incremental_runs_equal_a_full_rebuild(scenario):
    for table in ("energy_data", "weather_forecast_data", "quarantine"):
        assert scenario.incremental[table][0] == scenario.full[table][0], f"{table} columns"
        assert scenario.incremental[table][1] == scenario.full[table][1], f"{table} rows"


def test_the_full_rebuild_staged_its_batch_in_a_table_and_the_incremental_runs_did_not(scenario):
    # With incremental == full above: silver is the same in both materialize modes.
    assert scenario.full_staged and not scenario.incremental_staged


def test_a_rerun_with_nothing_new_commits_nothing(scenario):
    assert scenario.rerun is not None and scenario.rerun.batches == 0
    assert scenario.versions_after_rerun == scenario.versions_before_rerun
    assert scenario.rerun.writes == {} and scenario.rerun.reads == {}


def test_runs_report_bronze_versions_read_and_silver_versions_written(scenario):
    second = scenario.second
    # bronze: version 0 (created), one append per batch; the second batch had no carbon rows
    assert {t.qualified_name: v for t, v in second.reads.items()} == {
        "bronze.power_data": 2, "bronze.weather_forecast_data": 2}
    assert {t.name: v for t, v in second.writes.items()} == scenario.versions_before_rerun
    assert second.quarantined == {"bronze.power_data": 1, "bronze.weather_forecast_data": 1}


def test_the_step_logs_lineage_to_mlflow(scenario):
    assert scenario.step_exit == 0 and scenario.step_run_id
    run = mlflow.MlflowClient(tracking_uri=scenario.tracking_uri).get_run(scenario.step_run_id)
    tags = run.data.tags
    for table in ("energy_data", "weather_forecast_data", "quarantine"):
        assert tags[f"lineage.output.silver.{table}"].endswith(f"/silver/{table}@v1")
    inputs = {d.dataset.name: {t.key: t.value for t in d.tags} for d in run.inputs.dataset_inputs}
    assert {name: tags_["delta_version"] for name, tags_ in inputs.items()} == {
        "bronze.power_data": "1", "bronze.carbon_data": "1", "bronze.weather_forecast_data": "1"}
    assert (run.data.metrics["quarantined"], run.data.metrics["energy.inserted"]) == (2.0, 4.0)


def test_a_batch_appended_twice_to_quarantine_lands_once(scenario):
    assert scenario.quarantine_after_replay == len(scenario.incremental["quarantine"][1]) + 1


# --- silver.energy_revisions: what was known when ------------------------------------------------

X, Y, Z = utc("2025-03-11T09:00"), utc("2025-03-01T09:00"), utc("2025-02-01T09:00")


@pytest.fixture(scope="module")
def revisions(spark, tmp_path_factory) -> dict:
    """Hour X estimated at 10:13, revised at 13:13; hour Y from a past-range backfill; hour Z from
    a data-portal row (no updatedAt); then the same responses fetched again and a rerun."""
    root = tmp_path_factory.mktemp("revisions")
    store, checkpoints = LocalTableStore(root), str(root / "_checkpoints")
    _bronze(spark, store)
    estimate, final = utc("2025-03-11T10:13"), utc("2025-03-11T13:13")
    portal_entry = {"zone": "GR", "datetime": "2025-02-01T09:00:00.000Z", "carbonIntensity": 333,
                    "emissionFactorType": "lifecycle", "isEstimated": False, "estimationMethod": None,
                    "updatedAt": None, "renewablePercentage": 41.5, "fossilFreePercentage": 44.0}
    carbon = [
        bronze_row(BRONZE_CARBON, history([carbon_entry(X, utc("2025-03-11T10:05"), 410, estimated=True)]), estimate),
        bronze_row(BRONZE_CARBON, past_range([carbon_entry(Y, utc("2025-03-01T10:40"), 250)]), estimate,
                   endpoint="carbon-intensity/past-range"),
        bronze_row(BRONZE_CARBON, past_range([portal_entry]), estimate, endpoint="portal-csv"),
    ]
    power = [bronze_row(BRONZE_POWER, past_range([power_entry(Y, utc("2025-03-01T10:45"))]), estimate,
                        endpoint="power-breakdown/past-range")]
    revised = [bronze_row(BRONZE_CARBON, history([carbon_entry(X, utc("2025-03-11T12:40"), 395)]), final)]

    def fetched_again(rows: list[tuple]) -> list[tuple]:
        return [row[:8] + (utc("2025-03-11T16:13"),) + row[9:] for row in rows]  # ingested_at later

    batches = [{BRONZE_CARBON: carbon, BRONZE_POWER: power}, {BRONZE_CARBON: revised},
               {BRONZE_CARBON: fetched_again(carbon + revised), BRONZE_POWER: fetched_again(power)}, {}]
    summaries = []
    for batch in batches:
        _append(spark, store, batch)
        summaries.append(refresh_silver(spark, store, checkpoints, run_id="run", progress=lambda _: None))
    table = {(r["datetime"], r["side"], r["updated_at"]): r
             for r in utc_rows(store.read(spark, SILVER_ENERGY_REVISIONS).collect())}
    energy = {r["datetime"]: r for r in utc_rows(store.read(spark, SILVER_ENERGY).collect())}
    return {"table": table, "energy": energy, "summaries": summaries}


def test_revisions_keep_the_estimate_and_the_final_value_with_when_they_were_known(revisions):
    x = sorted((r for (hour, _, _), r in revisions["table"].items() if hour == X), key=lambda r: r["updated_at"])
    assert [(r["carbon_intensity"], r["is_estimated"]) for r in x] == [(410, True), (395, False)]
    assert [r["first_seen_at"] for r in x] == [utc("2025-03-11T10:13"), utc("2025-03-11T13:13")]
    assert [r["available_at"] for r in x] == [r["first_seen_at"] for r in x]
    assert {r["origin"] for r in x} == {"history"}
    assert x[0]["production_solar"] is None  # a carbon revision carries no power columns
    assert revisions["energy"][X]["carbon_intensity"] == 395  # energy_data keeps the final value


def test_past_range_and_portal_rows_parse_with_their_publication_time(revisions):
    table = revisions["table"]
    carbon_y = table[(Y, "carbon", utc("2025-03-01T10:40"))]
    assert (carbon_y["origin"], carbon_y["available_at"], carbon_y["carbon_intensity"]) == (
        "past-range", utc("2025-03-01T10:40"), 250)
    power_y = table[(Y, "power", utc("2025-03-01T10:45"))]
    assert (power_y["origin"], power_y["production_hydro_discharge"]) == ("past-range", -380.0)
    portal = table[(Z, "carbon", Z + timedelta(hours=2))]  # no updatedAt: hour + publication delay
    assert (portal["origin"], portal["available_at"], portal["carbon_intensity"]) == ("portal", Z + timedelta(hours=2), 333)
    assert revisions["energy"][Z]["carbon_origin"] == "portal"


def test_revisions_seen_again_or_rerun_change_nothing(revisions):
    assert len(revisions["table"]) == 5
    assert [s.revisions for s in revisions["summaries"]] == [4, 1, 0, 0]
    assert revisions["summaries"][3].batches == 0


def test_silver_runs_as_on_spark_connect_with_a_pickled_batch_function_and_no_session_settings(
        scenario):
    assert scenario.connect_functions_shipped == 1
    assert scenario.second.energy.inserted and scenario.second.quarantined_total


def test_a_rerun_with_nothing_new_starts_no_stream(scenario):
    # The checkpoint already covers every bronze version: no query is planned at all.
    assert scenario.rerun_streams == 0
    assert scenario.rerun.batches == 0


def test_the_first_batch_appends_into_the_empty_tables_and_the_next_one_merges(scenario):
    # v0: created empty; v1: the first batch, nothing to match; v2: the second batch.
    for table, operations in scenario.operations.items():
        assert operations[1:] == ["WRITE", "MERGE"], table


def test_a_merge_into_an_empty_table_appends_and_running_it_again_changes_nothing(spark, tmp_path):
    # What a batch re-run after a crash does: its append committed, so the re-run MERGEs.
    store = LocalTableStore(tmp_path)
    table = Table("silver", "readings", key=("k",), schema=StructType([
        StructField("k", StringType(), False), StructField("seen", TimestampType()),
        StructField("v", IntegerType())]))
    store.ensure(spark, table)
    rows = spark.createDataFrame([("a", H[0], 1, 10.0), ("b", H[1], 2, None)],
                                 "k string, seen timestamp, v int, grown double")
    group = (RevisionGroup("all", order=("seen",), columns=("v", "grown")),)
    first = merge_revisions(spark, store, table, rows, groups=group)
    again = merge_revisions(spark, store, table, rows, groups=group)
    history = store.delta_table(spark, table).history().orderBy("version").collect()
    operations = [commit.operation for commit in history]
    assert (first, again) == (MergeMetrics(2, 0), MergeMetrics(0, 0))
    assert operations[1:] == ["WRITE", "MERGE"]
    kept = store.read(spark, table).select("k", "v", "grown").collect()
    assert sorted(tuple(r) for r in kept) == [("a", 1, 10.0), ("b", 2, None)]


def test_a_first_batch_without_the_columns_a_generated_column_reads_appends_them_as_null(
        spark, tmp_path):
    # A carbon-only first batch (a life-cycle-only portal file) into silver.energy_data, whose
    # generated `is_estimated` reads the power side too: a MERGE inserts NULL for the power
    # columns, and the append must carry them or Delta cannot compute the generated column.
    store = LocalTableStore(tmp_path)
    table = Table("silver", "readings", key=("k",), schema=StructType([
        StructField("k", StringType(), False), StructField("seen", TimestampType()),
        StructField("a", IntegerType()), StructField("b", IntegerType()),
        StructField("total", IntegerType(), True,
                    {GENERATION_EXPRESSION: "coalesce(a, 0) + coalesce(b, 0)"})]))
    store.ensure(spark, table)
    rows = spark.createDataFrame([("x", H[0], 1)], "k string, seen timestamp, a int")

    merged = merge_revisions(spark, store, table, rows,
                             groups=(RevisionGroup("a", order=("seen",), columns=("a",)),))

    kept = store.read(spark, table).select("k", "a", "b", "total").collect()
    assert (merged, [tuple(r) for r in kept]) == (MergeMetrics(1, 0), [("x", 1, None, 1)])
    assert store.delta_table(spark, table).history(1).collect()[0].operation == "WRITE"


def test_a_table_with_commits_after_its_creation_is_merged_into_without_describing_it(
        spark, tmp_path, monkeypatch):
    # Emptied by a delete, so only a MERGE (never the append) is right without looking; and no
    # DESCRIBE DETAIL is spent on a table that has been written to.
    store = LocalTableStore(tmp_path)
    table = Table("silver", "readings", key=("k",), schema=StructType([
        StructField("k", StringType(), False), StructField("seen", TimestampType()),
        StructField("v", IntegerType())]))
    store.ensure(spark, table)
    rows = spark.createDataFrame([("a", H[0], 1)], "k string, seen timestamp, v int")
    store.append(rows, table)
    store.delta_table(spark, table).delete()
    described = []
    monkeypatch.setattr(DeltaTable, "detail", lambda self: described.append(self) or None)
    merged = merge_revisions(spark, store, table, rows,
                             groups=(RevisionGroup("all", order=("seen",), columns=("v",)),))
    last = store.delta_table(spark, table).history(1).collect()[0]
    assert (merged, last.operation, described) == (MergeMetrics(1, 0), "MERGE", [])
