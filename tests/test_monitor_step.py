"""The monitor step on a real lake and a real MLflow registry: predictions against final actuals
into gold.forecast_monitoring, a status tag, an exit code only when asked for, idempotent reruns.

The predictions and silver rows are written as those tables' rows (the scoring and medallion
steps have their own tests); the champion is a real registered pyfunc with the training run's
metrics and params that monitoring reads.
"""

from __future__ import annotations

import deltalake
import mlflow
import numpy as np
import pandas as pd
import pytest

from gridcast.monitoring import EXIT_DEGRADED
from gridcast.pandas_io import merge_frame
from gridcast.registry import model_name
from gridcast.storage import LocalTableStore
from gridcast.tables import GOLD_MONITORING, GOLD_PREDICTIONS, SILVER_ENERGY
from registry_fixtures import register_champion
from steps import monitor as monitor_step

START = pd.Timestamp("2025-06-01", tz="UTC")
DAYS = 12
NAME = model_name("GR", 24)


def _actuals() -> pd.DataFrame:
    hours = pd.date_range(START, periods=24 * DAYS, freq="h")
    daily = 300 + 100 * np.sin(2 * np.pi * hours.hour / 24)
    frame = pd.DataFrame({"zone": "GR", "datetime": hours, "carbon_intensity": daily.round(),
                          "carbon_is_estimated": False, "renewable_percentage": 40.0,
                          "fossil_free_percentage": 45.0})
    frame.loc[frame.index[-2:], "carbon_is_estimated"] = True  # the newest hours: estimates
    return frame


def _predictions(actuals: pd.DataFrame, model_error: float) -> pd.DataFrame:
    """A forecast issued at midnight of each day from day 2 on, for the next 24 hours: the actual
    plus `model_error`; the seasonal-naive baseline is off by 10 g/kWh."""
    by_hour = actuals.set_index("datetime")["carbon_intensity"]
    rows = []
    for day in range(2, DAYS):
        issued = START + pd.Timedelta(days=day)
        for horizon in range(1, 25):
            target = issued + pd.Timedelta(hours=horizon)
            actual = by_hour.get(target, 300.0)
            rows.append({"zone": "GR", "issued_at": issued, "datetime": target, "horizon": horizon,
                         "prediction": actual + model_error, "p10": actual + model_error - 20,
                         "p90": actual + model_error + 20, "baseline_seasonal_naive": actual + 10,
                         "weather_missing": False, "weather_is_fallback": False,
                         "model_name": NAME, "model_version": "1", "run_id": "r",
                         "scored_at": issued})
    return pd.DataFrame(rows)


def _register_champion(tracking_uri: str, mae: float) -> None:
    register_champion(tracking_uri, NAME, mae=mae, params={
        "split.train_start": START.isoformat(),
        "split.calibration_start": (START + pd.Timedelta(days=2)).isoformat()})


@pytest.fixture
def lake(spark, tmp_path):
    store = LocalTableStore(tmp_path / "lake")
    actuals = _actuals()
    merge_frame(spark, store, SILVER_ENERGY, actuals)
    return store, actuals, f"sqlite:///{tmp_path / 'mlflow.db'}"


def _monitoring(store: LocalTableStore) -> pd.DataFrame:
    return deltalake.DeltaTable(store.identifier(GOLD_MONITORING)).to_pandas()


def test_no_predictions_is_a_clean_exit_with_a_status(lake, isolated, capsys):
    store, _, _ = lake
    assert monitor_step.main(isolated) == 0
    assert "no_actuals_yet" in capsys.readouterr().out
    assert not (store.root / "gold" / "forecast_monitoring").exists()


def test_good_forecasts_are_ok_and_a_rerun_writes_nothing(spark, lake, isolated):
    store, actuals, tracking_uri = lake
    merge_frame(spark, store, GOLD_PREDICTIONS, _predictions(actuals, model_error=3.0))
    _register_champion(tracking_uri, mae=3.0)

    assert monitor_step.main(isolated) == 0
    rows = _monitoring(store)
    assert set(rows["status"]) == {"ok"}
    latest = rows[(rows["window_kind"] == "rolling_7d") & (rows["horizon"] == 0)] \
        .sort_values("window_end").iloc[-1]
    assert latest["mae"] == pytest.approx(3.0) and latest["baseline_mae"] == pytest.approx(10.0)
    # estimated hours (the newest two) and hours past the data do not count as actuals
    predictions = _predictions(actuals, model_error=3.0)
    in_window = predictions[(predictions["datetime"] >= latest["window_start"])
                            & (predictions["datetime"] < latest["window_end"])]
    final = set(actuals.loc[~actuals["carbon_is_estimated"], "datetime"])
    assert latest["n_predictions"] == len(in_window)
    assert latest["n_actuals"] == in_window["datetime"].isin(final).sum() < len(in_window)
    version = store.version(spark, GOLD_MONITORING)

    assert monitor_step.main(isolated) == 0
    assert store.version(spark, GOLD_MONITORING) == version
    run = mlflow.search_runs(experiment_names=["gridcast"], filter_string="tags.step = 'monitor'",
                             order_by=["start_time DESC"]).iloc[0]
    assert run["tags.monitor.status"] == "ok"
    assert run["metrics.spark_jobs"] >= 1  # counted through the step's Spark job group


@pytest.mark.parametrize("fail_on_degraded, expected", [("false", 0), ("true", EXIT_DEGRADED)])
def test_forecasts_worse_than_the_baseline_are_degraded(spark, lake, isolated, fail_on_degraded,
                                                         expected):
    store, actuals, tracking_uri = lake
    merge_frame(spark, store, GOLD_PREDICTIONS, _predictions(actuals, model_error=40.0))
    _register_champion(tracking_uri, mae=3.0)

    code = monitor_step.main([*isolated, f"monitor.fail_on_degraded={fail_on_degraded}"])
    assert code == expected
    rows = _monitoring(store)
    assert rows.sort_values("window_end")["status"].iloc[-1] == "degraded"
