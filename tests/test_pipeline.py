"""A 7-day replay schedule through ingest -> medallion -> features: row counts and unique keys,
an hour the API never served inside the window, then half a day more ingested on top: gold
updated incrementally equals gold built from scratch out of the same silver.

Read back with delta-rs, so the assertions cost no Spark actions beyond the runs themselves.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import datetime, timedelta, timezone

import deltalake
import pandas as pd
import pytest

from gridcast.config import load_config
from replay_fixtures import build_tiny_recording
from steps import features as features_step
from steps import ingest as ingest_step
from steps import medallion as medallion_step

START = datetime(2025, 3, 10, tzinfo=timezone.utc)
END = START + timedelta(days=7)
RUNS = 7 * 24 // 3
GAP = START + timedelta(days=2, hours=5)  # the recording lacks this hour: a gap inside the window
MORE = timedelta(hours=12)  # the second schedule: END .. END + 12 h


def table(lake, layer: str, name: str):
    return deltalake.DeltaTable(str(lake / layer / name)).to_pandas()


def _marker_job(spark) -> int:
    """The id of one Spark job run now: Spark numbers jobs in the order they start."""
    context, group = spark.sparkContext, f"marker-{uuid.uuid4()}"
    context.setJobGroup(group, group)
    try:
        context.parallelize([1], 1).count()
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    return max(context.statusTracker().getJobIdsForGroup(group))


def _refine(overrides: list[str], jobs: dict[str, int] | None = None) -> int:
    """ingest -> medallion -> features, the data half of `main` (tests/test_main.py runs it all).
    `jobs`: filled with every Spark job each step ran, whatever its job group (by job id)."""
    from gridcast.spark import get_spark

    for step in (ingest_step, medallion_step, features_step):
        before = _marker_job(get_spark()) if jobs is not None else 0
        code = step.main(overrides)
        if jobs is not None:
            jobs[step.__name__.rsplit(".", 1)[-1]] = _marker_job(get_spark()) - before - 1
        if code:
            return code
    return 0


def _overrides(root, recording, start: datetime, end: datetime) -> list[str]:
    return [
        f"storage.root={root / 'lake'}", f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}",
        f"source.recording={recording.path}", f"ingest.start={start:%Y-%m-%dT%H:%M:%SZ}",
        f"ingest.end={end:%Y-%m-%dT%H:%M:%SZ}", "ingest.every_hours=3",
    ]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    start = START - timedelta(days=1)
    tiny = build_tiny_recording(root / "recording", start=start, hours=24 * 9,
                                missing_hour_index=int((GAP - start) / timedelta(hours=1)))
    return root, tiny


@pytest.fixture(scope="module")
def first_jobs(spark, recording) -> dict[str, int]:
    """The first schedule's Spark jobs per step, counted by job id (the lake is `lake`)."""
    root, tiny = recording
    jobs: dict[str, int] = {}
    assert _refine(_overrides(root, tiny, START, END), jobs) == 0
    return jobs


@pytest.fixture(scope="module")
def lake(first_jobs, recording):
    return recording[0] / "lake"


def test_each_step_counts_every_spark_job_it_ran(first_jobs, recording):
    """`spark_jobs` (the step budget) includes the jobs of the medallion's stream, which Spark
    runs under the query's own job group, and of its writes in threads."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{recording[0] / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["gridcast"], order_by=["start_time ASC"])
    counted = {step: runs.loc[runs["tags.step"] == step, "metrics.spark_jobs"].iloc[0] for step in first_jobs}
    assert first_jobs["medallion"] > 10  # a stream's start-up alone reads the Delta logs in several jobs
    assert counted == first_jobs


@pytest.fixture(scope="module")
def extended(spark, lake, recording):
    """The lake after a second schedule (ingest, medallion, features incrementally on top), and
    a copy of its silver whose gold is built from scratch."""
    root, tiny = recording
    assert _refine(_overrides(root, tiny, END, END + MORE)) == 0
    scratch = root / "scratch"
    shutil.copytree(lake / "silver", scratch / "silver")
    from gridcast.config import load_config
    from gridcast.medallion.gold_update import update_gold
    from gridcast.storage import LocalTableStore

    updates = update_gold(spark, LocalTableStore(scratch), load_config([]).zone, progress=lambda _: None)
    assert {u.mode for u in updates} == {"full"}
    return lake, scratch


def test_silver_energy_has_each_hour_the_histories_covered_once(lake):
    energy = table(lake, "silver", "energy_data").sort_values("datetime")
    # Histories at START .. END-3h cover the 24 hours up to each run time, START-23h .. END-3h,
    # except the run hour itself: its first estimate is published 10 minutes into the hour.
    hours = int((END - timedelta(hours=4) - (START - timedelta(hours=23))) / timedelta(hours=1)) + 1
    assert len(energy) == hours - 1  # all but the hour the API never served
    assert GAP not in set(_utc(energy["datetime"]))
    assert not energy.duplicated(["zone", "datetime"]).any()
    assert energy["carbon_intensity"].notna().all() and energy["production_solar"].notna().all()
    assert not energy["is_estimated"].iloc[:-2].any(), "every hour but the newest was revised to measured"


def test_silver_weather_keeps_one_vintage_per_run_and_location(lake):
    weather = table(lake, "silver", "weather_forecast_data")
    assert not weather.duplicated(["zone", "location", "fetched_at", "datetime"]).any()
    vintages = weather.groupby("location")["fetched_at"].nunique().to_dict()
    assert vintages == {location.name: RUNS for location in load_config([]).zone.locations}
    assert len(table(lake, "silver", "quarantine")) == 0


def test_gold_has_one_row_per_hour_and_unique_forecast_keys(lake):
    energy = table(lake, "silver", "energy_data")
    historic = table(lake, "gold", "historic_data")
    assert len(historic) == len(energy) + 1  # the gap is a row
    assert not historic.duplicated(["zone", "datetime"]).any()
    forecasts = table(lake, "gold", "weather_forecasts")
    assert not forecasts.duplicated(["zone", "fetched_at", "datetime"]).any()
    assert (forecasts["forecast_offset"] >= 1).all()
    assert forecasts["fetched_at"].nunique() == RUNS


def _utc(column):
    return column.dt.tz_localize("UTC") if column.dt.tz is None else column.dt.tz_convert("UTC")


def test_gold_keeps_the_unserved_hour_as_a_row_of_nulls_and_lags_do_not_cross_it(lake):
    historic = table(lake, "gold", "historic_data")
    historic = historic.assign(datetime=_utc(historic["datetime"])).set_index("datetime")
    assert pd.isna(historic.loc[GAP, "carbon_intensity"])
    assert pd.isna(historic.loc[GAP + timedelta(hours=1), "lag_carbon_intensity_1h"])
    assert historic.loc[GAP, "rolling_count_carbon_intensity_24h"] == 24
    assert historic.loc[GAP + timedelta(hours=1), "rolling_count_carbon_intensity_24h"] == 23


@pytest.mark.parametrize("name", ["historic_data", "weather_forecasts"])
def test_gold_updated_incrementally_equals_gold_built_from_scratch(extended, name):
    lake, scratch = extended
    incremental, rebuilt = table(lake, "gold", name), table(scratch, "gold", name)
    key = ["zone", "datetime"] if name == "historic_data" else ["zone", "fetched_at", "datetime"]
    assert sorted(incremental.columns) == sorted(rebuilt.columns)
    columns = sorted(incremental.columns)
    incremental = incremental[columns].sort_values(key).reset_index(drop=True)
    rebuilt = rebuilt[columns].sort_values(key).reset_index(drop=True)
    assert len(incremental) > len(table(lake, "silver", "energy_data")) / 2 and len(incremental) == len(rebuilt)
    pd.testing.assert_frame_equal(incremental, rebuilt, check_dtype=False)
