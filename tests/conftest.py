"""Shared fixtures: one SparkSession for the whole test session, per-test lake + MLflow store, and
one GR lake built by the real pipeline that modules copy instead of rebuilding."""

from __future__ import annotations

import shutil
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def spark():
    from gridcast.config import load_config
    from gridcast.spark import get_spark

    # conf/config.yaml's settings, with less driver memory: four test JVMs may share the machine.
    session = get_spark(load_config(["spark.driver_memory=1g"]).spark, "gridcast-tests")
    yield session
    session.stop()


@pytest.fixture
def isolated(tmp_path: Path) -> list[str]:
    """Overrides that send the lake and the MLflow store to a temporary directory."""
    return [
        f"storage.root={tmp_path / 'lake'}",
        f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
    ]


@pytest.fixture(autouse=True)
def _no_leftover_mlflow_run():
    """A failing test must not leave an active MLflow run that nests the next test's runs."""
    yield
    mlflow = sys.modules.get("mlflow")  # tests that never touched MLflow don't pay for importing it
    while mlflow is not None and mlflow.active_run() is not None:
        mlflow.end_run("FAILED")


def shared_data(relative: str) -> Path:
    """A file of ../shared/data, or skip: that folder exists beside the project in CI only."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} is not available (../shared/data exists only beside the project)")
    return path


REPLAYED_START = datetime(2025, 3, 10, tzinfo=timezone.utc)
REPLAYED_END = REPLAYED_START + timedelta(days=12)
REPLAYED_EVERY_HOURS = 6


def stamp(moment: datetime) -> str:
    """A UTC instant as the ISO 8601 string the Hydra overrides take."""
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


@pytest.fixture(scope="session")
def replayed_lake(spark, tmp_path_factory) -> dict:
    """A GR lake (bronze, silver, gold) from 12 days of replayed 6-hourly runs of a tiny recording,
    built once per test session (ingest, medallion and features cost a minute or more). Modules
    take their own copy with :func:`copy_replayed_lake` so that what one writes, another never
    sees."""
    from replay_fixtures import build_tiny_recording
    from steps import features, ingest, medallion

    root = tmp_path_factory.mktemp("replayed")
    recording = build_tiny_recording(root / "recording", start=REPLAYED_START - timedelta(days=1),
                                     hours=24 * 14)
    overrides = [f"storage.root={root / 'lake'}", f"source.recording={recording.path}",
                 f"mlflow.tracking_uri=sqlite:///{root / 'pipeline.db'}",
                 f"ingest.start={stamp(REPLAYED_START)}", f"ingest.end={stamp(REPLAYED_END)}",
                 f"ingest.every_hours={REPLAYED_EVERY_HOURS}"]
    for step in (ingest, medallion, features):
        assert step.main(overrides) == 0
    return {"lake": root / "lake", "recording": recording}


def copy_replayed_lake(replayed: dict, root: Path) -> Path:
    """A private copy of the replayed lake under ``root`` (a Delta table is a directory whose log
    holds relative paths, so a copied table is a table); returns the copy's lake directory."""
    lake = root / "lake"
    shutil.copytree(replayed["lake"], lake)
    return lake
