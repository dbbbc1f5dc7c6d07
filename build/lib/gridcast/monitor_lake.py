"""The monitor's reads and writes: predictions and actuals from the lake, the champion's training
reference from MLflow, metrics and status into `gold.forecast_monitoring`.

The judging itself is `gridcast.monitoring` (pure pandas); this module only wires it to Delta and
MLflow, reading each table once.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from gridcast.config import ZoneConfig
from gridcast.medallion.gold import location_prefix
from gridcast.monitoring import (
    STATUS_NO_ACTUALS_YET,
    MonitorSettings,
    Status,
    assess_status,
    attach_status,
    feature_drift,
    join_actuals,
    log_monitoring,
    plot_error_over_time,
    plot_recent,
    window_metrics,
)
from gridcast.pandas_io import MergeOutcome, merge_frame, read_table
from gridcast.registry import CHAMPION
from gridcast.storage import TableStore
from gridcast.tables import GOLD_HISTORIC, GOLD_MONITORING, GOLD_PREDICTIONS, SILVER_ENERGY, Table

# Energy columns whose distribution is compared with the training window (the target first).
DRIFT_ENERGY_COLUMNS = ("renewable_percentage", "fossil_free_percentage")
# Observed weather variables compared per location.
DRIFT_WEATHER_VARIABLES = ("temp", "solarradiation", "windspeed")


@dataclass(frozen=True)
class TrainingReference:
    """What the champion was trained on: its version, test MAE and training issue-hour window."""

    version: str
    run_id: str
    mae: float | None
    start: pd.Timestamp | None
    end: pd.Timestamp | None


@dataclass
class MonitorOutcome:
    status: Status
    metrics: pd.DataFrame
    drift: pd.DataFrame
    joined: pd.DataFrame
    reference: TrainingReference | None
    merge: MergeOutcome | None = None
    reads: dict[Table, int] = field(default_factory=dict)


def champion_reference(name: str) -> TrainingReference | None:
    """The champion of `name` and what its training run recorded, or None without a champion."""
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    run = client.get_run(version.run_id)
    params, metrics = run.data.params, run.data.metrics

    def when(key: str) -> pd.Timestamp | None:
        return pd.Timestamp(params[key]).tz_convert("UTC") if key in params else None

    return TrainingReference(
        version=str(version.version), run_id=version.run_id, mae=metrics.get("mae"),
        start=when("split.train_start"), end=when("split.calibration_start"),
    )


def _drift_frames(energy: pd.DataFrame, weather: pd.DataFrame, weather_columns: list[str],
                  reference: TrainingReference | None, last_actual: pd.Timestamp | None,
                  rolling_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference rows, current rows) with `target` and the drift columns, by hour."""
    hours = energy.rename(columns={"carbon_intensity": "target"})
    if not weather.empty:
        hours = hours.merge(weather[["datetime", *weather_columns]], on="datetime", how="left")
    else:
        hours = hours.assign(**{c: float("nan") for c in weather_columns})
    empty = hours.iloc[0:0]
    current = empty if last_actual is None else hours[
        (hours["datetime"] > last_actual - pd.Timedelta(days=rolling_days))
        & (hours["datetime"] <= last_actual)]
    if reference is None or reference.start is None or reference.end is None:
        return empty, current
    return hours[(hours["datetime"] >= reference.start) & (hours["datetime"] < reference.end)], current


def monitor_zone(spark: SparkSession, store: TableStore, zone: ZoneConfig, *, model_name: str,
                 settings: MonitorSettings, reference: TrainingReference | None) -> MonitorOutcome:
    """Join the zone's predictions of `model_name` with the actuals, compute error windows,
    drift and status, and MERGE them into `gold.forecast_monitoring`.

    Returns:
        The outcome; with no predictions yet, status `no_actuals_yet` and nothing written.
    """
    reads: dict[Table, int] = {}
    if not store.exists(spark, GOLD_PREDICTIONS):
        status = Status(STATUS_NO_ACTUALS_YET, "no predictions yet: run batch_score first")
        return MonitorOutcome(status, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), reference)
    reads[GOLD_PREDICTIONS] = store.version(spark, GOLD_PREDICTIONS)
    predictions = read_table(spark, store, GOLD_PREDICTIONS, where=(
        (F.col("zone") == zone.id) & (F.col("model_name") == model_name)))
    if predictions.empty:
        status = Status(STATUS_NO_ACTUALS_YET, f"no predictions of {model_name} yet")
        return MonitorOutcome(status, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), reference,
                              reads=reads)

    first_needed = predictions["datetime"].min()
    if reference is not None and reference.start is not None:
        first_needed = min(first_needed, reference.start)
    reads[SILVER_ENERGY] = store.version(spark, SILVER_ENERGY)
    energy = read_table(spark, store, SILVER_ENERGY, where=(
        (F.col("zone") == zone.id) & (F.col("datetime") >= first_needed.to_pydatetime())),
        columns=["zone", "datetime", "carbon_intensity", "carbon_is_estimated",
                 *DRIFT_ENERGY_COLUMNS])
    actuals = energy.rename(columns={"carbon_is_estimated": "is_estimated"})
    joined = join_actuals(predictions, actuals[["zone", "datetime", "carbon_intensity",
                                                "is_estimated"]],
                          use_estimates=settings.use_estimates)
    training_mae = reference.mae if reference is not None else None
    metrics = window_metrics(joined, rolling_days=settings.rolling_days)
    metrics = attach_status(metrics, training_mae, settings)
    status = assess_status(metrics, training_mae, settings)

    weather_columns = [f"{location_prefix(loc.name)}_{variable}"
                       for loc in zone.locations for variable in DRIFT_WEATHER_VARIABLES]
    weather = pd.DataFrame()
    if store.exists(spark, GOLD_HISTORIC):
        historic_columns = store.read(spark, GOLD_HISTORIC).columns
        present = [c for c in weather_columns if c in historic_columns]
        reads[GOLD_HISTORIC] = store.version(spark, GOLD_HISTORIC)
        weather = read_table(spark, store, GOLD_HISTORIC, where=(
            (F.col("zone") == zone.id) & (F.col("datetime") >= first_needed.to_pydatetime())),
            columns=["datetime", *present])
        weather = weather.assign(**{c: float("nan") for c in weather_columns if c not in present})
    final = actuals[~actuals["is_estimated"].fillna(True).astype(bool)] \
        if not settings.use_estimates else actuals
    last_actual = final["datetime"].max() if not final.empty else None
    reference_rows, current_rows = _drift_frames(
        energy.drop(columns=["carbon_is_estimated"]), weather, weather_columns, reference,
        last_actual, settings.rolling_days)
    drift = feature_drift(reference_rows, current_rows,
                          ["target", *DRIFT_ENERGY_COLUMNS, *weather_columns], settings=settings)

    table_rows = _with_drift(metrics, drift)
    merge = merge_frame(spark, store, GOLD_MONITORING, table_rows) if not table_rows.empty else None
    return MonitorOutcome(status, metrics, drift, joined, reference, merge, reads)


def _with_drift(metrics: pd.DataFrame, drift: pd.DataFrame) -> pd.DataFrame:
    """The monitoring rows, with the target's PSI and the largest feature PSI on the latest
    window's rows (drift is measured once, as of now)."""
    rows = metrics.copy()
    rows["psi_target"] = float("nan")
    rows["psi_max"] = float("nan")
    rows["psi_max_feature"] = None
    if rows.empty or drift.empty:
        return rows
    latest = rows["window_end"] == rows["window_end"].max()
    target = drift.loc[drift["feature"] == "target", "psi"]
    features = drift[(drift["feature"] != "target") & drift["psi"].notna()]
    rows.loc[latest, "psi_target"] = float(target.iloc[0]) if len(target) else float("nan")
    if not features.empty:
        top = features.loc[features["psi"].idxmax()]
        rows.loc[latest, "psi_max"] = float(top["psi"])
        rows.loc[latest, "psi_max_feature"] = str(top["feature"])
    return rows


def log_outcome(outcome: MonitorOutcome, *, recent_days: int) -> None:
    """Metrics over time, drift, status tag and the two PNGs into the active MLflow run."""
    mlflow.set_tag("monitor.status", outcome.status.status)
    if outcome.metrics.empty:
        mlflow.set_tag("monitor.status_reason", outcome.status.reason)
        return
    log_monitoring(outcome.metrics, outcome.drift, outcome.status)
    training_mae = outcome.reference.mae if outcome.reference is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        plot_error_over_time(outcome.metrics, out / "error_over_time.png", training_mae=training_mae)
        if outcome.joined["actual"].notna().any() or len(outcome.joined):
            plot_recent(outcome.joined, out / "recent_forecasts.png", days=recent_days)
        outcome.drift.to_csv(out / "drift.csv", index=False)
        mlflow.log_artifacts(str(out), artifact_path="monitoring")
