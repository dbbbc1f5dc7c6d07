"""Shared fixtures: one SparkSession for the whole test session, and per-test lake + MLflow store."""

from __future__ import annotations

import sys
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
