"""What `main` decides and reports around the steps: whether to retrain, which issue hours to
score, and the closing summary (tables, model, error, status, the next hours' forecast)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import reduce
from typing import Any, Mapping, Sequence

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from gridcast.config import ConfigError, GridcastConfig
from gridcast.registry import CHAMPION, model_name
from gridcast.settings import settings_from_mapping
from gridcast.storage import TableStore
from gridcast.tables import (
    BRONZE_TABLES,
    GOLD_HISTORIC,
    GOLD_MONITORING,
    GOLD_PREDICTIONS,
    GOLD_WEATHER_FORECASTS,
    SILVER_ENERGY,
    SILVER_QUARANTINE,
    SILVER_ENERGY_REVISIONS,
    SILVER_WEATHER,
    Table,
)

MAIN_TABLES: tuple[Table, ...] = (
    *BRONZE_TABLES, SILVER_ENERGY, SILVER_ENERGY_REVISIONS, SILVER_WEATHER, SILVER_QUARANTINE,
    GOLD_HISTORIC, GOLD_WEATHER_FORECASTS, GOLD_PREDICTIONS, GOLD_MONITORING,
)
_BARS = " ▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class MainSettings:
    """The `main` section: which steps run and how much history is scored.

    Attributes:
        backfill: run the backfill step first (history before the scheduled ingest).
        score_history_days: score the issue hours of this many days before the latest one, so
            monitoring has predictions with actuals on the first run.
    """

    backfill: bool = True
    score_history_days: int = 7

    def __post_init__(self) -> None:
        if self.score_history_days < 0:
            raise ConfigError(f"main.score_history_days must be >= 0, got {self.score_history_days}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "MainSettings":
        return settings_from_mapping(cls, values, "main")


@dataclass
class StepTiming:
    """One step as main ran it: wall seconds and the Spark jobs its MLflow run counted."""

    name: str
    seconds: float
    run_id: str | None = None
    spark_jobs: int | None = None


def champion_run(name: str) -> tuple[str, str] | None:
    """(version, training run id) of the champion, or None."""
    try:
        version = MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    return str(version.version), version.run_id


def retrain_reason(cfg: GridcastConfig, latest_issue: pd.Timestamp | None,
                   *, degraded: bool = False) -> str | None:
    """Why main should (re)train now, or None to keep the champion.

    Reasons: no champion; monitoring said degraded and `monitor.retrain_on_degraded`; the
    champion's newest training issue hour is `train.every_days` or more before the latest issue
    hour the lake can answer for.
    """
    champion = champion_run(model_name(cfg.zone.id, cfg.horizon))
    if champion is None:
        return "there is no champion yet"
    if degraded and cfg.monitor.retrain_on_degraded:
        return "monitoring says degraded (monitor.retrain_on_degraded)"
    issued_to = MlflowClient().get_run(champion[1]).data.params.get("frame.issued_to")
    if issued_to is None or latest_issue is None:
        return None
    age = latest_issue - pd.Timestamp(issued_to).tz_convert("UTC")
    if age >= pd.Timedelta(days=cfg.train.every_days):
        return (f"the champion's data ends {age / pd.Timedelta(days=1):.1f} days before the "
                f"latest issue hour (train.every_days={cfg.train.every_days})")
    return None


def scoring_config(cfg: GridcastConfig, latest_issue: pd.Timestamp) -> GridcastConfig:
    """`cfg` with `score` covering the last `main.score_history_days` up to the latest hour."""
    start = latest_issue - pd.Timedelta(days=cfg.main.score_history_days)
    score = replace(cfg.score, start=start.isoformat(), end=latest_issue.isoformat())
    return replace(cfg, score=score)


def attach_child_runs(parent_run_id: str, timings: list[StepTiming]) -> None:
    """Fill each timing's run id and Spark job count from main's nested runs (in order)."""
    runs = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
                              order_by=["start_time ASC"])
    for timing, (_, run) in zip(timings, runs.iterrows()):
        timing.run_id = run["run_id"]
        jobs = run.get("metrics.spark_jobs")
        timing.spark_jobs = None if jobs is None or pd.isna(jobs) else int(jobs)


def sparkline(values: pd.Series) -> str:
    """A one-line text chart of `values` (low to high: ▁ to █)."""
    low, high = float(values.min()), float(values.max())
    span = (high - low) or 1.0
    return "".join(_BARS[1 + int((v - low) / span * (len(_BARS) - 2))] for v in values)


def count_zone_rows(spark: SparkSession, store: TableStore, zone: str,
                    tables: Sequence[Table]) -> dict[str, int]:
    """Rows of `zone` per table (by qualified name) in one Spark job, not one per table; a table
    that does not exist is left out."""
    existing = [table for table in tables if store.exists(spark, table)]
    if not existing:
        return {}
    per_table = reduce(DataFrame.unionByName, [
        store.read(spark, table).where(F.col("zone") == zone)
        .select(F.lit(table.qualified_name).alias("t"))
        for table in existing])
    counted = {row["t"]: row["count"] for row in per_table.groupBy("t").count().collect()}
    return {table.qualified_name: counted.get(table.qualified_name, 0) for table in existing}


def summary_lines(spark: SparkSession, store: TableStore, cfg: GridcastConfig,
                  timings: list[StepTiming], seconds: float, status: str | None,
                  counted: Mapping[str, int] | None = None) -> list[str]:
    """The closing summary of a `main` run, as lines of text.

    `counted`: rows of the zone per table (`count_zone_rows`) when the caller has them already;
    None counts every table of the main flow here.
    """
    zone, name = cfg.zone.id, model_name(cfg.zone.id, cfg.horizon)
    lines = [f"== gridcast {zone} {cfg.horizon}h: done in {seconds:.1f} s"]
    lines.append("steps: " + ", ".join(
        f"{t.name} {t.seconds:.1f} s" + (f" ({t.spark_jobs} Spark jobs)"
                                         if t.spark_jobs is not None else "")
        for t in timings))
    if counted is None:
        counted = count_zone_rows(spark, store, zone, MAIN_TABLES)
    counts = [f"{table} {counted[table.qualified_name]:,}" if table.qualified_name in counted
              else f"{table} (none)" for table in MAIN_TABLES]
    lines.append("tables (rows of zone " + zone + "): " + ", ".join(counts))
    champion = champion_run(name)
    if champion is None:
        lines.append(f"model: {name} has no champion")
    else:
        version, run_id = champion
        run = MlflowClient().get_run(run_id)
        metrics, best = run.data.metrics, run.data.params.get("best_baseline")
        baseline = (f" vs {best} {metrics[f'baseline.{best}.mae']:.1f}"
                    if best and f"baseline.{best}.mae" in metrics else "")
        lines.append(f"model: {name} v{version} @{CHAMPION}: test MAE "
                     f"{metrics.get('mae', float('nan')):.1f}{baseline} g/kWh, skill "
                     f"{metrics.get('skill', float('nan')):.3f}, p10-p90 coverage "
                     f"{metrics.get('coverage_p10_p90', float('nan')):.0%}")
        if store.exists(spark, GOLD_PREDICTIONS):
            latest = (store.read(spark, GOLD_PREDICTIONS)
                      .where((F.col("zone") == zone) & (F.col("model_version") == version)))
            newest = latest.agg(F.max("issued_at")).first()[0]
            if newest is not None:
                from gridcast.pandas_io import to_pandas

                forecast = to_pandas(latest.where(F.col("issued_at") == newest)
                                     .select("issued_at", "datetime", "prediction", "p10", "p90")
                                     .orderBy("datetime"))
                lines.append(
                    f"forecast issued {forecast['issued_at'].iloc[0]:%Y-%m-%d %H:%M}Z for the "
                    f"next {len(forecast)} h: {forecast['prediction'].min():.0f}.."
                    f"{forecast['prediction'].max():.0f} g/kWh")
                lines.append("  " + sparkline(forecast["prediction"]))
                cleanest = forecast.loc[forecast["prediction"].idxmin()]
                lines.append(f"  cleanest hour {cleanest['datetime']:%Y-%m-%d %H:%M}Z: "
                             f"{cleanest['prediction']:.0f} g/kWh "
                             f"(p10-p90 {cleanest['p10']:.0f}..{cleanest['p90']:.0f})")
    lines.append(f"monitoring: {status or 'not run'}")
    lines.append(f"look: .venv/bin/mlflow ui --backend-store-uri {cfg.mlflow.tracking_uri} "
                 f"then http://127.0.0.1:5000 (experiment {cfg.mlflow.experiment})")
    return lines
