"""Rolling-origin walk-forward backtest: the `train` model refitted every few days, scored on what
it would have forecast, hour by hour, over a past range.

The frame is built once for the whole range (rows of an issue hour do not depend on which other
issue hours are built, docs/decisions/0011) and sliced per fold. Fold k's origin is
`start + k * retrain_days`; its test rows are the issue hours [origin, next origin) (optionally
only one hour of the day). Its windows, newest last:

    train | H-hour gap | calibration (`calibration_days`) | H-hour gap | test

with every training target strictly before the calibration window's first issue hour minus H and
every calibration target strictly before the origin minus H. Fitting and intervals are
`gridcast.model.fit_split`, the code `train` runs; no backtest-only model.

Result rows (`gold.backtest_results`, schema in `gridcast.tables`) carry the forecast, p10/p90,
the actual, each naive baseline's forecast of the same row, the fold's fit windows and where the
weather came from (`weather_source`: forecast | observed | none). `summarize` turns stored rows
into the summary table (overall and per lead-time day) and `error_by_hour` into MAE by hour of
day, so the printed and logged numbers are a function of the table alone.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import multiprocessing.forkserver
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from gridcast.config import ConfigError
from gridcast.frame import FrameSettings
from gridcast.medallion.sql import sql_text
from gridcast.model import (
    BASELINES, TARGET, NotEnoughDataError, Split, TrainSettings, error_by_hour_of_day,
    evaluate_forecasts, fit_split, scored_rows, seasonal_scale,
)
from gridcast.pandas_io import read_table, to_spark
from gridcast.scoring import parse_issue_hour
from gridcast.settings import settings_from_mapping
from gridcast.storage import TableStore
from gridcast.tables import GOLD_BACKTEST

_HOUR = pd.Timedelta(hours=1)
WEATHER_SOURCES = ("forecast", "observed", "none")
# Lead-time bands of the summary: the whole horizon, then each day ahead that the horizon reaches.
LEAD_BANDS = {"all": (1, 72), "day1": (1, 24), "day2": (25, 48), "day3": (49, 72)}
SUMMARY_BASELINES = ("persistence", "seasonal_naive", "weekly_naive")
RESULT_COLUMNS = (
    "zone", "model_config", "fold", "issued_at", "datetime", "horizon", "prediction", "p10",
    "p90", "actual", *(f"baseline_{name}" for name in BASELINES), "hour_local", "weather_source",
    "mase_scale", "fold_origin", "train_first_issued_at", "train_last_target",
    "calibration_last_target", "run_id",
)


@dataclass(frozen=True)
class BacktestSettings:
    """Hydra section `backtest`.

    Attributes:
        start, end: the issue hours [start, end) to backtest (ISO-8601, UTC when no offset).
        retrain_days: days between refits; each fold tests that many days of issue hours.
        issue_hour: issue forecasts only at this UTC hour of the day (None: every hour).
        train_days: days of training issue hours before the calibration window (None: all).
        min_train_days: a fold with fewer days of training issue hours is an error.
        calibration_days: days of issue hours the conformal intervals are calibrated on.
        weather: use the frame's weather columns (False: lag-only, weather left out).
        flush_every_folds: write the results after this many folds (resume granularity).
        workers: folds fitted at the same time, each in its own process (1: in this process).
    """

    start: str | None = None
    end: str | None = None
    retrain_days: int = 7
    issue_hour: int | None = None
    train_days: int | None = 365
    min_train_days: int = 28
    calibration_days: int = 7
    weather: bool = True
    flush_every_folds: int = 8
    workers: int = 2

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None:
                moment = parse_issue_hour(f"backtest.{name}", value)
                object.__setattr__(self, name, moment.isoformat())
        if self.start is not None and self.end is not None and self.end_at <= self.start_at:
            raise ConfigError(f"backtest.end ({self.end}) must be after backtest.start "
                              f"({self.start})")
        for name in ("retrain_days", "min_train_days", "calibration_days", "flush_every_folds",
                     "workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"backtest.{name} must be >= 1, got {getattr(self, name)}")
        if self.train_days is not None and self.train_days < self.min_train_days:
            raise ConfigError(f"backtest.train_days ({self.train_days}) must be >= "
                              f"backtest.min_train_days ({self.min_train_days}) or null")
        if self.issue_hour is not None and not 0 <= self.issue_hour <= 23:
            raise ConfigError(f"backtest.issue_hour must be 0..23 or null, got {self.issue_hour}")

    @property
    def start_at(self) -> pd.Timestamp:
        return pd.Timestamp(self.start)

    @property
    def end_at(self) -> pd.Timestamp:
        return pd.Timestamp(self.end)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "BacktestSettings":
        return settings_from_mapping(cls, values, "backtest")


@dataclass(frozen=True)
class Fold:
    """One refit: test issue hours [origin, test_end)."""

    fold: int
    origin: pd.Timestamp
    test_end: pd.Timestamp


def plan_folds(settings: BacktestSettings) -> list[Fold]:
    """The folds over [start, end), one every `retrain_days`, the last one cut at `end`.

    Raises:
        ConfigError: start or end is not set.
    """
    if settings.start is None or settings.end is None:
        raise ConfigError("backtest needs backtest.start and backtest.end "
                          "(e.g. backtest.start=2022-01-01 backtest.end=2023-01-01)")
    step = pd.Timedelta(days=settings.retrain_days)
    origins = pd.date_range(settings.start_at, settings.end_at - _HOUR, freq=step)
    return [Fold(k, origin, min(origin + step, settings.end_at))
            for k, origin in enumerate(origins)]


def first_issue_hour(settings: BacktestSettings, horizon: int) -> pd.Timestamp | None:
    """The oldest issue hour a fold trains on (None: all history, `train_days` unset)."""
    if settings.train_days is None:
        return None
    return settings.start_at - 2 * horizon * _HOUR - pd.Timedelta(
        days=settings.calibration_days + settings.train_days)


def model_config(train: TrainSettings, frame: FrameSettings, settings: BacktestSettings) -> str:
    """A short, stable name for everything that shapes the results: `<kind>-<target>-<hash>`.

    Threads, workers and the flush cadence change no number, so they are left out; start is in
    (fold numbers count from it), end is not (a longer range reuses the folds already stored).
    """
    model = {k: v for k, v in asdict(train.model).items()
             if k not in ("threads", "workers")}
    shaping = {
        "horizon": train.horizon, "model": model, "frame": asdict(frame),
        "interval": [train.interval_lower, train.interval_upper],
        "backtest": {k: v for k, v in asdict(settings).items()
                     if k not in ("end", "flush_every_folds", "workers")},
    }
    digest = hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()
    return f"{train.model.kind}-{train.model.target}-{digest[:10]}"


def lag_only(frame: pd.DataFrame, weather_columns: list[str]) -> pd.DataFrame:
    """The frame without weather inputs: the weather columns null, flagged `weather_missing`."""
    frame = frame.copy()
    present = [c for c in weather_columns if c in frame.columns]
    frame[present] = np.nan
    frame["weather_lead_h"] = np.nan
    frame["weather_is_fallback"] = False
    frame["weather_missing"] = True
    return frame


def weather_source(frame: pd.DataFrame) -> pd.Series:
    """Per row: `forecast` (a vintage as fetched by T), `observed` (the observation of T + h
    standing in for a forecast) or `none`."""
    source = np.where(frame["weather_missing"].astype(bool), "none",
                      np.where(frame["weather_is_fallback"].astype(bool), "observed", "forecast"))
    return pd.Series(source, index=frame.index, dtype=object)


def fold_split(labelled: pd.DataFrame, fold: Fold, horizon: int,
               settings: BacktestSettings) -> Split:
    """The fold's windows from labelled frame rows (see the module docstring).

    Raises:
        NotEnoughDataError: fewer than `min_train_days` of training issue hours, or no test rows.
    """
    gap = horizon * _HOUR
    calibration_start = fold.origin - gap - pd.Timedelta(days=settings.calibration_days)
    issued, target = labelled["issued_at"], labelled["datetime"]
    in_test = (issued >= fold.origin) & (issued < fold.test_end)
    if settings.issue_hour is not None:
        in_test &= issued.dt.hour == settings.issue_hour
    calibration = labelled[(issued >= calibration_start) & (target < fold.origin - gap)]
    in_train = target < calibration_start - gap
    if settings.train_days is not None:
        in_train &= issued >= calibration_start - gap - pd.Timedelta(days=settings.train_days)
    train = labelled[in_train]
    test = labelled[in_test]
    span = (train["issued_at"].max() - train["issued_at"].min()) / _HOUR + 1 if len(train) else 0
    if span < 24 * settings.min_train_days:
        raise NotEnoughDataError(
            f"fold {fold.fold} (origin {fold.origin:%Y-%m-%d %H:%M}Z) has {span:.0f} hours of "
            f"training issue times, needs {24 * settings.min_train_days} "
            f"(backtest.min_train_days); start the backtest later or backfill more history"
        )
    if test.empty:
        raise NotEnoughDataError(f"fold {fold.fold} (origin {fold.origin:%Y-%m-%d %H:%M}Z) "
                                 "has no labelled test rows")
    return Split(train, calibration, test, calibration_start, fold.origin,
                 fold.test_end - _HOUR)


def run_fold(labelled: pd.DataFrame, fold: Fold, train: TrainSettings,
             settings: BacktestSettings, config: str, run_id: str) -> pd.DataFrame:
    """Fit the fold and forecast its test rows: result rows with RESULT_COLUMNS.

    Test rows where the target or a baseline is unknown are left out, as in `train`'s scoring.
    """
    split = fold_split(labelled, fold, train.horizon, settings)
    fitted = fit_split(split, train)
    scored = scored_rows(split.test)
    forecast = fitted.predict(scored)
    rows = pd.DataFrame({
        "zone": scored["zone"].astype(str),
        "model_config": config,
        "fold": fold.fold,
        "issued_at": scored["issued_at"],
        "datetime": scored["datetime"],
        "horizon": scored["horizon"].astype("int64"),
        **{c: forecast[c] for c in ("prediction", "p10", "p90")},
        "actual": scored[TARGET],
        **{f"baseline_{name}": scored[column] for name, column in BASELINES.items()},
        "hour_local": scored["hour_local"].astype("int64"),
        "weather_source": weather_source(scored),
        "mase_scale": seasonal_scale(split.train),
        "fold_origin": fold.origin,
        "train_first_issued_at": split.train["issued_at"].min(),
        "train_last_target": split.train["datetime"].max(),
        "calibration_last_target": split.calibration["datetime"].max(),
        "run_id": run_id,
    })
    return rows.reset_index(drop=True)[list(RESULT_COLUMNS)]


# A worker process's copy of the labelled frame, received once when the worker starts.
_WORKER_FRAME: dict[str, pd.DataFrame] = {}


def _receive_frame(labelled: pd.DataFrame) -> None:
    _WORKER_FRAME["labelled"] = labelled


def _run_fold_in_worker(fold: Fold, train: TrainSettings, settings: BacktestSettings,
                        config: str, run_id: str) -> pd.DataFrame:
    return run_fold(_WORKER_FRAME["labelled"], fold, train, settings, config, run_id)


def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers forked from a fork server that imported this module once: not forked from this
    process, whose JVM gateway threads and OpenMP state do not survive a fork, and not spawned,
    which pays the imports (~4 s CPU) again in every worker."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def start_workers(settings: BacktestSettings) -> None:
    """Start the workers' fork server now when `forecast_folds` will use one, so that its imports
    overlap the frame's reads instead of delaying the first fits."""
    if settings.workers > 1:
        _worker_context()
        multiprocessing.forkserver.ensure_running()


def forecast_folds(labelled: pd.DataFrame, folds: list[Fold], train: TrainSettings,
                   settings: BacktestSettings, config: str, run_id: str) -> Iterator[pd.DataFrame]:
    """`run_fold` of each fold, yielded in fold order as each one is ready.

    With `settings.workers` > 1 the folds fit in that many worker processes, each holding one
    copy of the frame: the fits are independent and single-threaded, so the rows are the ones
    this process would compute, bit for bit. A fold's error is raised here, in fold order;
    closing the iterator early cancels the folds not begun.
    """
    workers = min(settings.workers, len(folds))
    if workers <= 1:
        for fold in folds:
            yield run_fold(labelled, fold, train, settings, config, run_id)
        return
    # The processes hold the cores: each fits its blocks one after another.
    train = replace(train, model=replace(train.model, workers=1))
    pool = ProcessPoolExecutor(workers, mp_context=_worker_context(),
                               initializer=_receive_frame, initargs=(labelled,))
    try:
        pending = [pool.submit(_run_fold_in_worker, fold, train, settings, config, run_id)
                   for fold in folds]
        for future in pending:
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -------------------------------------------------------------------------------------- summary


def as_scored(rows: pd.DataFrame) -> pd.DataFrame:
    """Stored result rows in the column names `gridcast.model.evaluate_forecasts` scores."""
    renamed = {"actual": TARGET, **{f"baseline_{n}": c for n, c in BASELINES.items()}}
    return rows.rename(columns=renamed)


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """The summary table of stored result rows, one row per lead band (`all`, `day1`, ...) that
    has rows: MAE, RMSE, MAPE, `mase_m24` (MAE over the mean of the folds' in-sample 24 h
    seasonal-naive MAE, weighted by rows), p10-p90 coverage and width, each baseline's MAE and
    the model's skill (1 - MAE / baseline MAE) against each, and against the best."""
    table = []
    for band, (low, high) in LEAD_BANDS.items():
        chosen = rows[(rows["horizon"] >= low) & (rows["horizon"] <= high)]
        if chosen.empty:
            continue
        metrics, _ = evaluate_forecasts(as_scored(chosen), float(chosen["mase_scale"].mean()))
        line: dict[str, Any] = {"band": band, "rows": len(chosen)}
        for name in ("mae", "rmse", "mape", "mase_m24", "bias", "coverage_p10_p90",
                     "interval_width", "skill"):
            line[name] = metrics[name]
        for name in BASELINES:
            line[f"{name}_mae"] = metrics[f"baseline.{name}.mae"]
        for name in SUMMARY_BASELINES:
            line[f"skill_vs_{name}"] = 1 - metrics["mae"] / metrics[f"baseline.{name}.mae"]
        table.append(line)
    return pd.DataFrame(table)


def per_horizon(rows: pd.DataFrame) -> tuple[dict[str, float], pd.DataFrame]:
    """`evaluate_forecasts` over all stored rows: the flat metrics (per horizon `mae_h01`, ...,
    per local hour `mae_hod00`, ...) and the per-horizon table."""
    return evaluate_forecasts(as_scored(rows), float(rows["mase_scale"].mean()))


def error_by_hour(rows: pd.DataFrame) -> pd.DataFrame:
    """MAE of the model and each baseline by the target's local hour of day."""
    return error_by_hour_of_day(as_scored(rows))


# ------------------------------------------------------------------------------------- lake I/O


def stored_folds(spark: SparkSession, store: TableStore, zone: str, config: str) -> set[int]:
    """The folds `gold.backtest_results` already holds for the zone and model config (one
    Spark action; an empty set before the table exists)."""
    if not store.exists(spark, GOLD_BACKTEST):
        return set()
    rows = (store.read(spark, GOLD_BACKTEST)
            .where((F.col("zone") == zone) & (F.col("model_config") == config))
            .select("fold").distinct().collect())
    return {int(row["fold"]) for row in rows}


def store_folds(spark: SparkSession, store: TableStore, rows: pd.DataFrame) -> int:
    """Write the result rows of whole folds (one zone and model config) in one commit, replacing
    whatever `gold.backtest_results` holds for those folds: a fold written twice is there once.

    A replace-where on (zone, model_config, fold), not a MERGE: nothing joins against the rows
    already stored, and the files of other folds are skipped by their statistics, so the cost is
    the batch's, not the table's. Returns the table's version after the write.

    Raises:
        ValueError: no rows, rows of several zones or configs, or duplicate keys.
    """
    if rows.empty:
        raise ValueError(f"{GOLD_BACKTEST}: no rows to store")
    owners = rows[["zone", "model_config"]].drop_duplicates()
    if len(owners) != 1:
        raise ValueError(f"{GOLD_BACKTEST}: rows of one zone and model config at a time, got "
                         f"{len(owners)}")
    if rows.duplicated(list(GOLD_BACKTEST.key)).any():
        raise ValueError(f"{GOLD_BACKTEST}: the rows have duplicate keys {list(GOLD_BACKTEST.key)}")
    zone, config = owners.iloc[0]
    written = to_spark(spark, rows[list(RESULT_COLUMNS)], GOLD_BACKTEST.schema)
    if store.exists(spark, GOLD_BACKTEST):
        folds = ", ".join(str(int(fold)) for fold in sorted(rows["fold"].unique()))
        store.replace_where(written, GOLD_BACKTEST, f"zone = {sql_text(zone)} AND model_config = "
                                                    f"{sql_text(config)} AND fold IN ({folds})")
    else:
        store.append(written, GOLD_BACKTEST)
    return store.version(spark, GOLD_BACKTEST)


def stored_results(spark: SparkSession, store: TableStore, zone: str, config: str,
                   folds: list[int]) -> pd.DataFrame:
    """The stored result rows of the zone, model config and folds, sorted by key.

    Raises:
        NotEnoughDataError: no rows (every fold lacked test rows).
    """
    if not store.exists(spark, GOLD_BACKTEST):
        raise NotEnoughDataError(f"{GOLD_BACKTEST} does not exist: no fold produced a forecast")
    rows = read_table(
        spark, store, GOLD_BACKTEST,
        where=(F.col("zone") == zone) & (F.col("model_config") == config)
        & F.col("fold").isin(folds),
    )
    if rows.empty:
        raise NotEnoughDataError(f"no rows in {GOLD_BACKTEST} for {zone} {config}")
    return rows.sort_values(["fold", "issued_at", "datetime"]).reset_index(drop=True)


__all__ = [
    "BacktestSettings", "Fold", "LEAD_BANDS", "RESULT_COLUMNS", "WEATHER_SOURCES", "as_scored",
    "error_by_hour", "first_issue_hour", "fold_split", "forecast_folds", "lag_only",
    "model_config", "per_horizon", "plan_folds", "run_fold", "start_workers", "store_folds",
    "stored_folds", "stored_results", "summarize", "weather_source",
]
