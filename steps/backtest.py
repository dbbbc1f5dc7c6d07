"""Entry point `backtest`: walk-forward forecasts of a past range into gold.backtest_results.

    python -m steps.backtest zone=ES backtest.start=2022-01-01 backtest.end=2023-01-01
    mlflow run . -e backtest -P zone=ES \
        -P overrides="backtest.start=2022-01-01 backtest.end=2023-01-01"

Reads the frame's inputs once (versions recorded), builds the frame once for the whole range,
refits the `train` model every `backtest.retrain_days` (`backtest.workers` folds at a time, each
in its own process) and writes the forecasts every `backtest.flush_every_folds` folds, replacing
those folds' rows. Folds already stored for this model config are skipped, so a rerun commits
nothing and an interrupted run resumes. The summary (overall and per lead day, by horizon, by
hour of day) is computed from the stored rows and logged to MLflow with plots.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import pandas as pd
from tqdm import tqdm

from gridcast.backtest import (
    first_issue_hour, forecast_folds, lag_only, model_config, per_horizon, plan_folds,
    start_workers, store_folds, stored_folds, stored_results, summarize, error_by_hour,
)
from gridcast.config import GridcastConfig
from gridcast.frame_inputs import build_scoring_frame, load_frame_inputs
from gridcast.lineage import step_run
from gridcast.medallion.gold import weather_columns
from gridcast.plots import plot_error_by_hour, plot_forecast_vs_actual, plot_mae_by_horizon
from gridcast.runner import run_step
from gridcast.spark import get_spark
from gridcast.storage import table_store
from gridcast.tables import GOLD_BACKTEST

TAG_MODEL_CONFIG = "gridcast.model_config"
TAG_WEATHER_SOURCE = "gridcast.weather_source"


def run(cfg: GridcastConfig) -> None:
    spark = get_spark(cfg.spark)
    store = table_store(cfg.storage)
    zone, horizon, settings = cfg.zone, cfg.horizon, cfg.backtest
    folds = plan_folds(settings)
    config = model_config(cfg.train, cfg.frame, settings)
    with step_run(cfg, "backtest", store) as lineage:
        started = time.monotonic()
        mlflow.set_tag(TAG_MODEL_CONFIG, config)
        done = stored_folds(spark, store, zone.id, config)
        pending = [fold for fold in folds if fold.fold not in done]
        print(f"backtest {zone.id} {horizon}h {config}: {len(folds)} folds over "
              f"{settings.start_at:%Y-%m-%d %H:%M} .. {settings.end_at:%Y-%m-%d %H:%M} UTC, "
              f"{len(folds) - len(pending)} already stored, MLflow run {lineage.run_id}",
              flush=True)
        written, write_seconds = 0, 0.0
        if pending:
            if len(pending) > 1:
                start_workers(settings)
            inputs = load_frame_inputs(
                spark, store, zone, horizon=horizon, settings=cfg.frame,
                start=first_issue_hour(settings, horizon), end=settings.end_at,
            )
            for table, version in inputs.versions.items():
                lineage.record_read(table, version)
            known_from = inputs.revisions["available_at"].min().ceil("h")
            first = max(known_from, first_issue_hour(settings, horizon) or known_from)
            issue_hours = pd.date_range(first, settings.end_at - pd.Timedelta(hours=1), freq="h")
            frame = build_scoring_frame(inputs, zone, horizon, cfg.frame, issue_hours)
            if not settings.weather:
                frame = lag_only(frame, weather_columns(zone.locations))
            labelled = frame[frame["target"].notna()]
            mlflow.log_metric("seconds.frame", time.monotonic() - started)
            del frame
            buffer: list[pd.DataFrame] = []
            fold_started = time.monotonic()
            # Closed on the way out, so an error stops the worker processes at once.
            with contextlib.closing(forecast_folds(labelled, pending, cfg.train, settings,
                                                   config, lineage.run_id)) as forecasts:
                for fold, rows in tqdm(zip(pending, forecasts), total=len(pending),
                                       desc=f"backtest {zone.id} folds", unit="fold"):
                    # With parallel workers: the time since the previous fold arrived.
                    mlflow.log_metrics({
                        "fold.mae": float((rows["prediction"] - rows["actual"]).abs().mean()),
                        "fold.seconds": time.monotonic() - fold_started,
                    }, step=fold.fold)
                    buffer.append(rows)
                    if len(buffer) >= settings.flush_every_folds or fold is pending[-1]:
                        batch = pd.concat(buffer)
                        write_started = time.monotonic()
                        lineage.record_write(GOLD_BACKTEST, store_folds(spark, store, batch))
                        write_seconds += time.monotonic() - write_started
                        written += len(batch)
                        buffer = []
                    fold_started = time.monotonic()
            mlflow.log_metric("seconds.write", write_seconds)
        read_started = time.monotonic()
        results = stored_results(spark, store, zone.id, config, [f.fold for f in folds])
        mlflow.log_metric("seconds.read_back", time.monotonic() - read_started)
        _log_summary(results, written, time.monotonic() - started)
        print(_summary_text(results), flush=True)
        print(f"backtest {zone.id} {horizon}h: {len(pending)} folds fitted, {written} rows "
              f"written to {GOLD_BACKTEST} in {time.monotonic() - started:.1f} s", flush=True)


def _log_summary(results: pd.DataFrame, written: int, seconds: float) -> None:
    summary = summarize(results)
    metrics, horizon_table = per_horizon(results)
    for line in summary.to_dict("records"):
        for name, value in line.items():
            if name != "band":
                metrics[f"{line['band']}.{name}"] = float(value)
    metrics.update({"rows.results": len(results), "rows.written": written, "seconds": seconds})
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
    sources = sorted(results["weather_source"].unique())
    mlflow.set_tag(TAG_WEATHER_SOURCE, ",".join(sources))
    hours = error_by_hour(results)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        summary.to_csv(out / "summary.csv", index=False)
        horizon_table.to_csv(out / "per_horizon.csv", index=False)
        hours.to_csv(out / "by_hour_of_day.csv", index=False)
        mlflow.log_artifacts(tmp, artifact_path="backtest")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        plot_mae_by_horizon(horizon_table, out / "mae_by_horizon.png")
        plot_error_by_hour(hours, out / "error_by_hour_of_day.png")
        scored = results.rename(columns={"actual": "target"})
        for h in sorted({1, int(results["horizon"].max())}):
            plot_forecast_vs_actual(scored, h, 14, out / f"forecast_vs_actual_h{h:02d}.png")
        mlflow.log_artifacts(tmp, artifact_path="plots")


def _summary_text(results: pd.DataFrame) -> str:
    summary = summarize(results)
    shown = summary[["band", "rows", "mae", "rmse", "mape", "mase_m24", "coverage_p10_p90",
                     "skill_vs_persistence", "skill_vs_seasonal_naive", "skill_vs_weekly_naive"]]
    sources = ",".join(sorted(results["weather_source"].unique()))
    hours = error_by_hour(results).set_index("hour_local")["model"]
    by_hour = " ".join(f"{h:02d}:{v:.0f}" for h, v in hours.items())
    return (shown.to_string(index=False, float_format=lambda v: f"{v:.3f}")
            + f"\nweather: {sources}\nMAE by local hour of day: {by_hour}")


def main(argv: list[str] | None = None) -> int:
    return run_step("backtest", run, argv)


if __name__ == "__main__":
    sys.exit(main())
