"""`main` end to end on a short window of the embedded recording: backfill, the scheduled ingest,
medallion, features, train, register, batch_score and monitor in one process; then the same run
again (adds nothing, trains nothing) and one day later (adds that day, scores it, no retrain).

It runs at the longest horizon, 72 h (24 h runs end to end in test_pipeline and
test_train_step), so the weather request, the frame, training, the gate and scoring are all
exercised where the recording's forecast vintages (54 h ahead, every 12 h) no longer reach.
Small settings keep it to a few minutes: 30 days of backfilled history, 4-day calibration and
test windows (each must be longer than H for every horizon to have rows), about two weeks of
training issue hours, few trees. With 22 days (4 training days) the model lost to the seasonal
naive and the gate rightly refused it. Tables are read back with delta-rs, so the checks cost no
Spark actions.
"""

from __future__ import annotations

import deltalake
import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from gridcast.registry import CHAMPION, model_name
from steps import main as main_step

START = pd.Timestamp("2025-06-10T00:00:00Z")
DAY = pd.Timedelta(days=1)
HORIZON = 72
NAME = model_name("GR", HORIZON)
MAIN_FLOW = [  # DESIGN.md's main flow, bronze through gold.forecast_monitoring
    "bronze/power_data", "bronze/carbon_data", "bronze/weather_forecast_data",
    "silver/energy_data", "silver/energy_revisions", "silver/weather_forecast_data",
    "gold/historic_data", "gold/weather_forecasts", "gold/carbon_intensity_predictions",
    "gold/forecast_monitoring",
]


def _overrides(root, end: pd.Timestamp) -> list[str]:
    return [
        f"storage.root={root / 'lake'}", f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}",
        f"ingest.start={START:%Y-%m-%dT%H:%M:%SZ}", f"ingest.end={end:%Y-%m-%dT%H:%M:%SZ}",
        f"horizon={HORIZON}", "ingest.every_hours=6", "backfill.history_days=30",
        "train.split.min_train_days=4", "train.split.calibration_days=4",
        "train.split.test_days=4", "train.importance_rows=200", "train.importance_repeats=1",
        "model.max_iter=40", "main.score_history_days=2",
        # A model small enough for two training weeks (the shipped one wants a year: min leaf 200,
        # every 3rd issue hour): residual over persistence, as the gate needs it to beat every
        # naive baseline for a champion to exist.
        "model.residual_base=ci_last", "model.relative_levels=false",
        "model.min_samples_leaf=40", "model.learning_rate=0.1", "model.train_issue_stride_h=1",
    ]


def _versions(lake) -> dict[str, int]:
    return {name: deltalake.DeltaTable(str(lake / name)).version() for name in MAIN_FLOW
            if (lake / name / "_delta_log").is_dir()}


def _table(lake, name: str) -> pd.DataFrame:
    return deltalake.DeltaTable(str(lake / name)).to_pandas()


@pytest.fixture(scope="module")
def first_run(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("main")
    assert main_step.main(_overrides(root, START + DAY)) == 0
    return root


def test_every_table_of_the_main_flow_exists_and_has_rows(first_run):
    lake = first_run / "lake"
    for name in MAIN_FLOW:
        assert len(_table(lake, name)) > 0, name


def test_the_champion_forecasts_the_next_horizon_and_monitoring_has_a_status(first_run):
    mlflow.set_tracking_uri(f"sqlite:///{first_run / 'mlflow.db'}")
    champion = MlflowClient().get_model_version_by_alias(NAME, CHAMPION)
    predictions = _table(first_run / "lake", "gold/carbon_intensity_predictions")
    newest = predictions[predictions["issued_at"] == predictions["issued_at"].max()]
    assert sorted(newest["horizon"]) == list(range(1, HORIZON + 1))
    assert set(newest["model_version"]) == {str(champion.version)}
    # the newest vintage reaches some hours ahead, not all 72: beyond it weather is null, flagged
    reached = newest.loc[~newest["weather_missing"].astype(bool), "horizon"]
    assert reached.min() == 1 and 24 <= reached.max() < HORIZON
    assert newest.loc[newest["horizon"] > reached.max(), "weather_missing"].all()
    # the history scored too: several issue hours, some of them with actuals already
    assert predictions["issued_at"].nunique() > 24
    monitoring = _table(first_run / "lake", "gold/forecast_monitoring")
    assert monitoring["status"].notna().all()
    assert set(monitoring["status"]) <= {"ok", "degraded", "no_actuals_yet"}


def test_a_second_run_adds_nothing_and_trains_nothing(first_run, capsys):
    lake = first_run / "lake"
    before = _versions(lake)
    mlflow.set_tracking_uri(f"sqlite:///{first_run / 'mlflow.db'}")
    models_before = len(MlflowClient().search_model_versions(f"name = '{NAME}'"))
    capsys.readouterr()

    assert main_step.main(_overrides(first_run, START + DAY)) == 0
    out = capsys.readouterr().out
    assert "not retraining" in out
    assert _versions(lake) == before
    # The summary's row counts (taken beside monitor, monitoring's after it) are the tables'.
    line = next(l for l in out.splitlines() if l.startswith("tables (rows of zone GR): "))
    counted = dict(item.rsplit(" ", 1) for item in line.split(": ", 1)[1].split(", "))
    for name in MAIN_FLOW:
        assert counted[name.replace("/", ".")] == f"{len(_table(lake, name)):,}", name
    assert len(MlflowClient().search_model_versions(f"name = '{NAME}'")) == models_before


def test_one_day_later_adds_that_day_and_scores_it_without_retraining(first_run):
    lake = first_run / "lake"
    energy_before = len(_table(lake, "silver/energy_data"))
    newest_before = _table(lake, "gold/carbon_intensity_predictions")["issued_at"].max()
    mlflow.set_tracking_uri(f"sqlite:///{first_run / 'mlflow.db'}")
    models_before = len(MlflowClient().search_model_versions(f"name = '{NAME}'"))

    assert main_step.main(_overrides(first_run, START + 2 * DAY)) == 0
    assert len(_table(lake, "silver/energy_data")) >= energy_before + 20
    newest = _table(lake, "gold/carbon_intensity_predictions")["issued_at"].max()
    assert newest - newest_before >= pd.Timedelta(hours=18)
    assert len(MlflowClient().search_model_versions(f"name = '{NAME}'")) == models_before
