"""Entry point `recommend`: the greenest time to run a flexible job, from our own forecast.

    python -m steps.recommend zone=GR recommend.duration_h=4 recommend.deadline=2025-12-31T18:00:00Z

Reads the champion's latest forecast from `gold.carbon_intensity_predictions`, ranks every
window of `recommend.duration_h` hours between `recommend.earliest` and `recommend.deadline`,
and prints one JSON object on stdout (logs go to stderr, so `| jq` works); the windows are also
MERGEd into `gold.green_windows` and logged to MLflow with a plot.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pyspark.sql import functions as F

from gridcast.config import GridcastConfig
from gridcast.lineage import step_run
from gridcast.pandas_io import merge_frame, read_table
from gridcast.registry import CHAMPION, model_name
from gridcast.runner import run_step
from gridcast.spark import get_spark
from gridcast.storage import table_store
from gridcast.tables import GOLD_GREEN_WINDOWS, GOLD_PREDICTIONS
from gridcast.windows import NoForecastError, green_window_rows, latest_forecast, recommend_windows


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def champion_version(name: str) -> str | None:
    """The registered version the `champion` alias points at, or None."""
    try:
        return str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def run(cfg: GridcastConfig) -> None:
    spark = get_spark(cfg.spark)
    store = table_store(cfg.storage)
    settings, zone = cfg.recommend, cfg.zone.id
    name = model_name(zone, cfg.horizon, cfg.mlflow.model_prefix)
    with step_run(cfg, "recommend", store) as lineage:
        if not store.exists(spark, GOLD_PREDICTIONS):
            raise NoForecastError(f"no predictions yet ({store.identifier(GOLD_PREDICTIONS)}); "
                                  "run `python -m steps.batch_score` first", parameter="zone")
        version = settings.model_version or champion_version(name)
        lineage.record_read(GOLD_PREDICTIONS, store.version(spark, GOLD_PREDICTIONS))
        predictions = read_table(spark, store, GOLD_PREDICTIONS, where=(
            (F.col("zone") == zone) & (F.col("model_name") == name)))
        rec = recommend_windows(
            predictions, zone=zone, duration_h=settings.duration_h, earliest=settings.earliest,
            deadline=settings.deadline, top=settings.top, model_version=version,
            error_correlation_h=settings.error_correlation_h,
        )
        document = rec.to_json()
        outcome = merge_frame(spark, store, GOLD_GREEN_WINDOWS, green_window_rows(rec))
        if outcome.committed:
            lineage.record_write(GOLD_GREEN_WINDOWS, outcome.version)
        mlflow.log_dict(json.loads(document), "recommendation.json")
        mlflow.log_metrics({"savings_g_per_kwh": rec.savings_g_per_kwh,
                            "best_mean_intensity": rec.best.mean_intensity,
                            "run_now_mean_intensity": rec.run_now.mean_intensity})
        with tempfile.TemporaryDirectory() as tmp:
            from gridcast.plots import plot_recommendation

            forecast = latest_forecast(predictions, zone, rec.model_version)
            path = plot_recommendation(forecast, rec, Path(tmp) / "green_window.png")
            mlflow.log_artifact(str(path), artifact_path="plots")
        _log(f"recommend {zone}: best {rec.best.start:%Y-%m-%d %H:%M}Z, "
             f"{rec.best.mean_intensity:.0f} vs {rec.run_now.mean_intensity:.0f} g/kWh now "
             f"({rec.savings_g_per_kwh:.0f} g/kWh saved), MLflow run {lineage.run_id}")
        print(document, flush=True)


def main(argv: list[str] | None = None) -> int:
    return run_step("recommend", run, argv)


if __name__ == "__main__":
    sys.exit(main())
