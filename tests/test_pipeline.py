"""A 7-day replay schedule through ingest -> medallion -> features: row counts and unique keys.

Read back with delta-rs, so the assertions cost no Spark actions.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import deltalake
import pytest

from gridcast.config import load_config
from replay_fixtures import build_tiny_recording
from steps import main as main_step

START = datetime(2025, 3, 10, tzinfo=timezone.utc)
END = START + timedelta(days=7)
RUNS = 7 * 24 // 3


def table(lake, layer: str, name: str):
    return deltalake.DeltaTable(str(lake / layer / name)).to_pandas()


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    recording = build_tiny_recording(root / "recording", start=START - timedelta(days=1), hours=24 * 9)
    overrides = [
        f"storage.root={root / 'lake'}", f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}",
        f"source.recording={recording.path}", f"ingest.start={START:%Y-%m-%dT%H:%M:%SZ}",
        f"ingest.end={END:%Y-%m-%dT%H:%M:%SZ}", "ingest.every_hours=3",
    ]
    assert main_step.main(overrides) == 0
    return root / "lake"


def test_silver_energy_has_each_hour_the_histories_covered_once(lake):
    energy = table(lake, "silver", "energy_data").sort_values("datetime")
    # Histories at START .. END-3h cover the 24 hours up to each run time, START-23h .. END-3h,
    # except the run hour itself: its first estimate is published 10 minutes into the hour.
    hours = int((END - timedelta(hours=4) - (START - timedelta(hours=23))) / timedelta(hours=1)) + 1
    assert len(energy) == hours
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
    assert len(historic) == len(energy)
    assert not historic.duplicated(["zone", "datetime"]).any()
    forecasts = table(lake, "gold", "weather_forecasts")
    assert not forecasts.duplicated(["zone", "fetched_at", "datetime"]).any()
    assert (forecasts["forecast_offset"] >= 1).all()
    assert forecasts["fetched_at"].nunique() == RUNS
