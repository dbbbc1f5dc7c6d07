"""Forecast monitoring: predictions against what really happened, drift, and a status.

Pure pandas in, pandas out; the step reads the Delta tables, calls these functions, MERGEs the
metrics into `gold.forecast_monitoring` on `MONITORING_KEY` and logs to the active MLflow run.

- `join_actuals`: each prediction with its final actual (estimated hours do not count by default).
- `window_metrics`: error and interval metrics per zone, UTC day of the target hour (`day`) and
  the rolling days ending at each day (`rolling_7d`), per horizon and for all horizons
  (`horizon == ALL_HORIZONS`), with the seasonal-naive baseline's metrics beside the model's.
- `attach_status` / `assess_status`: `ok`, `degraded` or `no_actuals_yet` (rules in
  docs/decisions/0014-monitoring.md); `exit_code` maps the status for schedulers.
- `psi` / `feature_drift`: population stability index of key features and the target against the
  training window.
- `log_monitoring`, `plot_error_over_time`, `plot_recent`: the MLflow and PNG edges.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from gridcast.config import ConfigError
from gridcast.errors import GridcastError
from gridcast.settings import settings_from_mapping

MONITORING_KEY = ("zone", "window_kind", "window_start", "horizon")
# The all-horizons row's horizon: 0 is never a real horizon (they start at 1) and, unlike a
# null, it matches itself in a MERGE condition.
ALL_HORIZONS = 0
DAY = "day"

STATUS_OK = "ok"
STATUS_DEGRADED = "degraded"
STATUS_NO_ACTUALS_YET = "no_actuals_yet"
# 1 and 2 are the runner's (step failed, bad config); a scheduler can tell degraded apart.
EXIT_DEGRADED = 3

DRIFT_STABLE = "stable"
DRIFT_MODERATE = "moderate"
DRIFT_SIGNIFICANT = "significant"
DRIFT_NO_DATA = "no_data"
# Stands in for an empty bin's share so that the log ratio stays finite.
PSI_EPSILON = 1e-4

PREDICTION_COLUMNS = (
    "zone", "issued_at", "datetime", "horizon", "prediction", "p10", "p90",
    "baseline_seasonal_naive", "model_version", "scored_at",
)
ACTUAL_COLUMNS = ("zone", "datetime", "carbon_intensity", "is_estimated")
JOINED_COLUMNS = (
    "zone", "issued_at", "datetime", "horizon", "prediction", "p10", "p90",
    "baseline_seasonal_naive", "actual",
)
METRIC_COLUMNS = (
    "zone", "window_kind", "window_start", "window_end", "horizon",
    "n_predictions", "n_actuals", "actuals_share",
    "mae", "rmse", "mape", "bias", "coverage_p10_p90", "interval_width",
    "n_baseline", "baseline_mae", "baseline_rmse", "baseline_mape", "baseline_bias",
    "skill_vs_baseline",
)
DRIFT_COLUMNS = (
    "feature", "psi", "drift", "reference_n", "current_n", "reference_mean", "current_mean",
)
# Rolling-window metrics that go to MLflow as time series.
LOGGED_METRICS = (
    "mae", "rmse", "mape", "bias", "coverage_p10_p90", "interval_width",
    "baseline_mae", "baseline_rmse", "skill_vs_baseline", "actuals_share", "n_actuals",
)

_ONE_DAY = pd.Timedelta(days=1)
_UTC_NS = "datetime64[ns, UTC]"


class MonitoringInputError(GridcastError, ValueError):
    """Predictions, actuals, metrics or reference frames that cannot be monitored as given."""


@dataclass(frozen=True)
class MonitorSettings:
    """The `monitor` config group.

    Attributes:
        rolling_days: length of the rolling window, in UTC days.
        use_estimates: count estimated actuals (not yet revised) as actuals.
        degraded_factor: a rolling MAE above training MAE × this factor counts against the model.
        consecutive_windows: this many breaching rolling windows in a row make `degraded`.
        fail_on_degraded: `exit_code` is non-zero for `degraded` (for schedulers).
        retrain_on_degraded: `main` retrains when the status is `degraded`.
        psi_bins: quantile bins of the reference for PSI.
        psi_moderate: PSI from which a feature's drift is `moderate`.
        psi_significant: PSI from which a feature's drift is `significant`.
        recent_days: days shown by the predicted-vs-actual plot.
    """

    rolling_days: int = 7
    use_estimates: bool = False
    degraded_factor: float = 1.5
    consecutive_windows: int = 2
    fail_on_degraded: bool = False
    retrain_on_degraded: bool = False
    psi_bins: int = 10
    psi_moderate: float = 0.1
    psi_significant: float = 0.25
    recent_days: int = 3

    def __post_init__(self) -> None:
        for name, low in (("rolling_days", 1), ("consecutive_windows", 1), ("psi_bins", 2),
                          ("recent_days", 1)):
            if getattr(self, name) < low:
                raise ConfigError(
                    f"monitor.{name} must be an integer of at least {low}, got {getattr(self, name)!r}")
        if self.degraded_factor < 1.0:
            raise ConfigError(
                f"monitor.degraded_factor must be at least 1, got {self.degraded_factor}"
            )
        if not 0.0 < self.psi_moderate < self.psi_significant:
            raise ConfigError(
                "monitor.psi_moderate must be positive and below monitor.psi_significant, got "
                f"{self.psi_moderate} and {self.psi_significant}"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> MonitorSettings:
        """Settings from a config mapping (Hydra's `monitor` node); missing keys keep defaults.

        Raises:
            ConfigError: an unknown key, a value of the wrong type or out of range.
        """
        return settings_from_mapping(cls, values, "monitor")


@dataclass(frozen=True)
class Status:
    """The monitor's verdict: `status` is one of ok, degraded, no_actuals_yet."""

    status: str
    reason: str
    window_end: pd.Timestamp | None = None


# ---------------------------------------------------------------------------------------------
# Predictions with their actuals


def join_actuals(
    predictions: pd.DataFrame, actuals: pd.DataFrame, *, use_estimates: bool = False
) -> pd.DataFrame:
    """Each prediction with the actual carbon intensity of its target hour.

    An estimated actual (`is_estimated`) is not final: Electricity Maps revises it later, so by
    default it does not count and the prediction's `actual` is NaN, as it is when the hour has no
    actual yet (a missing `is_estimated` counts as estimated). `use_estimates=True` counts
    estimates. When one (zone, issued_at, datetime) was
    scored more than once (a rerun after a new champion), the newest `scored_at` is the forecast
    that was published, and the only one kept.

    Args:
        predictions: rows of `gold.carbon_intensity_predictions`.
        actuals: rows of `silver.energy_data` (one per zone and hour: its newest revision).
        use_estimates: count estimated actuals as actuals.

    Returns:
        The predictions' columns plus `actual` (float, NaN when none counts) and
        `actual_is_estimated` (nullable boolean, NA when no actual counts), sorted by zone,
        issued_at, datetime.

    Raises:
        MonitoringInputError: missing columns, naive datetimes, a horizon below 1, or more than
            one actual for a zone and hour.
    """
    _require(predictions, PREDICTION_COLUMNS, "predictions")
    _require(actuals, ACTUAL_COLUMNS, "actuals")
    predictions = predictions.copy()
    for column in ("issued_at", "datetime", "scored_at"):
        predictions[column] = _as_utc(predictions[column], f"predictions.{column}")
    if predictions["horizon"].isna().any() or (predictions["horizon"] < 1).any():
        raise MonitoringInputError("predictions.horizon must be at least 1 (hours ahead)")
    predictions["horizon"] = predictions["horizon"].astype("int64")
    predictions = (
        predictions.sort_values(["zone", "issued_at", "datetime", "scored_at", "model_version"],
                                kind="mergesort")
        .drop_duplicates(["zone", "issued_at", "datetime"], keep="last")
    )

    actuals = actuals.loc[:, list(ACTUAL_COLUMNS)].copy()
    actuals["datetime"] = _as_utc(actuals["datetime"], "actuals.datetime")
    duplicated = actuals.duplicated(["zone", "datetime"], keep=False)
    if duplicated.any():
        first = actuals.loc[duplicated].iloc[0]
        raise MonitoringInputError(
            f"actuals must hold one row per zone and hour (the newest revision); "
            f"{int(duplicated.sum())} rows share a key, e.g. {first['zone']} {first['datetime']}"
        )
    estimated = actuals["is_estimated"].fillna(True).astype(bool)
    counted = actuals["carbon_intensity"].notna() & (use_estimates | ~estimated)
    actuals = actuals.loc[counted].rename(
        columns={"carbon_intensity": "actual", "is_estimated": "actual_is_estimated"}
    )
    actuals["actual"] = actuals["actual"].astype("float64")
    actuals["actual_is_estimated"] = estimated.loc[counted].astype("boolean")

    joined = predictions.drop(columns=["actual", "actual_is_estimated"], errors="ignore").merge(
        actuals, on=["zone", "datetime"], how="left", validate="many_to_one"
    )
    joined["actual_is_estimated"] = joined["actual_is_estimated"].astype("boolean")
    return joined.sort_values(["zone", "issued_at", "datetime"], kind="mergesort").reset_index(
        drop=True
    )


# ---------------------------------------------------------------------------------------------
# Window metrics

# Per-row sums and counts from which every metric is a ratio, so a day's sums add up to any
# window's sums exactly.
_SUMS = (
    "n_predictions", "n_actuals", "sum_abs", "sum_sq", "sum_err", "n_ape", "sum_ape",
    "n_interval", "sum_covered", "sum_width", "n_baseline", "sum_b_abs", "sum_b_sq",
    "sum_b_err", "n_b_ape", "sum_b_ape", "sum_common_abs",
)


def window_metrics(
    joined: pd.DataFrame, *, today: date | datetime | str | None = None, rolling_days: int = 7
) -> pd.DataFrame:
    """Error metrics per zone, window and horizon, over the predictions that have an actual.

    A prediction belongs to the UTC day of its target hour (`datetime`). Windows:
    `day` = [D, D + 1 day); `rolling_<n>d` = the `rolling_days` days ending with D,
    [D - (n - 1) days, D + 1 day). A window has a row per horizon present plus one with
    `horizon == ALL_HORIZONS`; a window without predictions has no row. Windows run from each
    zone's first target day to `today` (or, without it, the zone's last target day); targets after
    `today` are left out. Output depends only on the input rows, not on their order or the clock.

    Metrics (NaN when nothing to compute them on): `mae`, `rmse`, `bias` (mean of prediction -
    actual: positive = over-forecast), `mape` (percent, over actuals that are not 0),
    `coverage_p10_p90` (share of actuals inside [p10, p90]; nominal 0.8), `interval_width` (mean
    p90 - p10), all over predictions with an actual; the `baseline_*` ones over predictions with
    both an actual and a seasonal-naive value (`n_baseline`), and `skill_vs_baseline` = 1 - model
    MAE / baseline MAE on those same predictions (negative: worse than the baseline).

    Args:
        joined: `join_actuals` output.
        today: the last day to report (a date, or any time on it, UTC).
        rolling_days: length of the rolling window in days.

    Returns:
        One row per `MONITORING_KEY`, columns `METRIC_COLUMNS`, sorted by the key.

    Raises:
        MonitoringInputError: missing columns or naive datetimes.
    """
    _require(joined, JOINED_COLUMNS, "joined predictions")
    if rolling_days < 1:
        raise MonitoringInputError(f"rolling_days must be at least 1, got {rolling_days}")
    frame = joined.loc[:, list(JOINED_COLUMNS)].copy()
    for column in ("issued_at", "datetime"):
        frame[column] = _as_utc(frame[column], f"joined.{column}")
    # Sorted first so that the float sums below add in the same order whatever the input order.
    frame = frame.sort_values(["zone", "datetime", "issued_at", "horizon"], kind="mergesort")
    frame["day"] = frame["datetime"].dt.floor("D")
    if today is not None:
        frame = frame.loc[frame["day"] <= _utc_day(today)]
    if frame.empty:
        return _empty_metrics()

    daily = _row_sums(frame).groupby(["zone", "day", "horizon"], sort=True)[list(_SUMS)].sum()
    daily = daily.reset_index()
    daily = pd.concat(
        [daily, daily.groupby(["zone", "day"], sort=True)[list(_SUMS)].sum().reset_index()
         .assign(horizon=ALL_HORIZONS)],
        ignore_index=True,
    )
    last_day = (
        pd.Series(_utc_day(today), index=daily["zone"].unique())
        if today is not None else daily.groupby("zone")["day"].max()
    )

    day_windows = daily.assign(
        window_kind=DAY, window_start=daily["day"], window_end=daily["day"] + _ONE_DAY
    )
    # Each day's sums go to the rolling windows of the rolling_days days it ends or precedes.
    spread = pd.concat(
        [daily.assign(end_day=daily["day"] + offset * _ONE_DAY) for offset in range(rolling_days)],
        ignore_index=True,
    )
    spread = spread.loc[spread["end_day"] <= spread["zone"].map(last_day)]
    rolling = spread.groupby(["zone", "end_day", "horizon"], sort=True)[list(_SUMS)].sum()
    rolling = rolling.reset_index()
    rolling = rolling.assign(
        window_kind=f"rolling_{rolling_days}d",
        window_start=rolling["end_day"] - (rolling_days - 1) * _ONE_DAY,
        window_end=rolling["end_day"] + _ONE_DAY,
    )
    windows = pd.concat([day_windows, rolling], ignore_index=True)
    return _finish_metrics(windows)


def _row_sums(frame: pd.DataFrame) -> pd.DataFrame:
    actual = frame["actual"].astype("float64")
    prediction = frame["prediction"].astype("float64")
    baseline = frame["baseline_seasonal_naive"].astype("float64")
    p10, p90 = frame["p10"].astype("float64"), frame["p90"].astype("float64")
    evaluated = actual.notna() & prediction.notna()
    error = (prediction - actual).where(evaluated)
    with_ape = evaluated & (actual != 0)
    ape = (error.abs() / actual.abs() * 100.0).where(with_ape)
    with_interval = evaluated & p10.notna() & p90.notna()
    covered = ((actual >= p10) & (actual <= p90)).where(with_interval)
    with_baseline = evaluated & baseline.notna()
    baseline_error = (baseline - actual).where(with_baseline)
    baseline_ape = (baseline_error.abs() / actual.abs() * 100.0).where(with_baseline & with_ape)
    return pd.DataFrame({
        "zone": frame["zone"],
        "day": frame["day"],
        "horizon": frame["horizon"].astype("int64"),
        "n_predictions": 1,
        "n_actuals": evaluated.astype("int64"),
        "sum_abs": error.abs().fillna(0.0),
        "sum_sq": (error ** 2).fillna(0.0),
        "sum_err": error.fillna(0.0),
        "n_ape": with_ape.astype("int64"),
        "sum_ape": ape.fillna(0.0),
        "n_interval": with_interval.astype("int64"),
        "sum_covered": covered.astype("float64").fillna(0.0),
        "sum_width": (p90 - p10).where(with_interval).fillna(0.0),
        "n_baseline": with_baseline.astype("int64"),
        "sum_b_abs": baseline_error.abs().fillna(0.0),
        "sum_b_sq": (baseline_error ** 2).fillna(0.0),
        "sum_b_err": baseline_error.fillna(0.0),
        "n_b_ape": (with_baseline & with_ape).astype("int64"),
        "sum_b_ape": baseline_ape.fillna(0.0),
        "sum_common_abs": error.abs().where(with_baseline).fillna(0.0),
    })


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (numerator / denominator.where(denominator > 0)).astype("float64")


def _finish_metrics(windows: pd.DataFrame) -> pd.DataFrame:
    n = windows["n_actuals"]
    nb = windows["n_baseline"]
    baseline_mae = _ratio(windows["sum_b_abs"], nb)
    metrics = pd.DataFrame({
        "zone": windows["zone"].astype(str),
        "window_kind": windows["window_kind"].astype(str),
        "window_start": windows["window_start"].astype(_UTC_NS),
        "window_end": windows["window_end"].astype(_UTC_NS),
        "horizon": windows["horizon"].astype("int64"),
        "n_predictions": windows["n_predictions"].astype("int64"),
        "n_actuals": n.astype("int64"),
        "actuals_share": _ratio(n, windows["n_predictions"]),
        "mae": _ratio(windows["sum_abs"], n),
        "rmse": np.sqrt(_ratio(windows["sum_sq"], n)),
        "mape": _ratio(windows["sum_ape"], windows["n_ape"]),
        "bias": _ratio(windows["sum_err"], n),
        "coverage_p10_p90": _ratio(windows["sum_covered"], windows["n_interval"]),
        "interval_width": _ratio(windows["sum_width"], windows["n_interval"]),
        "n_baseline": nb.astype("int64"),
        "baseline_mae": baseline_mae,
        "baseline_rmse": np.sqrt(_ratio(windows["sum_b_sq"], nb)),
        "baseline_mape": _ratio(windows["sum_b_ape"], windows["n_b_ape"]),
        "baseline_bias": _ratio(windows["sum_b_err"], nb),
        "skill_vs_baseline": 1.0 - _ratio(_ratio(windows["sum_common_abs"], nb), baseline_mae),
    })
    return metrics.sort_values(list(MONITORING_KEY), kind="mergesort").reset_index(drop=True)


def _empty_metrics() -> pd.DataFrame:
    dtypes = {
        "zone": "object", "window_kind": "object", "window_start": _UTC_NS,
        "window_end": _UTC_NS, "horizon": "int64", "n_predictions": "int64",
        "n_actuals": "int64", "n_baseline": "int64",
    }
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, "float64")) for c in METRIC_COLUMNS})


# ---------------------------------------------------------------------------------------------
# Status


def attach_status(
    metrics: pd.DataFrame, training_mae: float | None, settings: MonitorSettings
) -> pd.DataFrame:
    """Every metrics row with the `status` of the model as of its window's end.

    The status is decided on the all-horizon rolling windows, day by day. A rolling window is
    assessed when its last day has at least one actual; it breaches when its MAE is worse than the
    seasonal-naive baseline's on the same predictions (`skill_vs_baseline < 0`) or above
    `training_mae × settings.degraded_factor`. `degraded` = the assessed window and the
    `consecutive_windows - 1` assessed windows before it all breach; otherwise `ok`. A window
    whose last day has no actual yet adds no evidence and keeps the previous window's status
    (`no_actuals_yet` before the first actual). Day and per-horizon rows carry the status of the
    rolling window with the same zone and end.

    Args:
        metrics: `window_metrics` output computed with `settings.rolling_days`.
        training_mae: the model's test MAE, or None to judge against the baseline alone.
        settings: monitor settings.

    Returns:
        `metrics` with a `status` column.

    Raises:
        MonitoringInputError: missing columns, or a training MAE that is not a positive number.
    """
    verdicts = _window_verdicts(metrics, training_mae, settings)
    merged = metrics.drop(columns=["status"], errors="ignore").merge(
        verdicts[["zone", "window_end", "status"]], on=["zone", "window_end"], how="left",
        validate="many_to_one",
    )
    return merged


def assess_status(
    metrics: pd.DataFrame, training_mae: float | None, settings: MonitorSettings
) -> Status:
    """The status as of the latest window (rules in `attach_status`).

    With several zones: `degraded` if any zone is, `no_actuals_yet` if none has an actual, else
    `ok`; the reason names each zone.

    Args:
        metrics: `window_metrics` output computed with `settings.rolling_days`.
        training_mae: the model's test MAE, or None to judge against the baseline alone.
        settings: monitor settings.

    Returns:
        The status, a one-line reason and the end of the latest window.
    """
    verdicts = _window_verdicts(metrics, training_mae, settings)
    if verdicts.empty:
        return Status(STATUS_NO_ACTUALS_YET, "no predictions to monitor yet")
    latest = verdicts.groupby("zone", sort=True).tail(1)
    states = set(latest["status"])
    if STATUS_DEGRADED in states:
        state = STATUS_DEGRADED
    elif states == {STATUS_NO_ACTUALS_YET}:
        state = STATUS_NO_ACTUALS_YET
    else:
        state = STATUS_OK
    if len(latest) == 1:
        reason = latest["reason"].iloc[0]
    else:
        reason = "; ".join(f"{row.zone}: {row.status}: {row.reason}" for row in latest.itertuples())
    return Status(state, reason, latest["window_end"].max())


def exit_code(status: Status, settings: MonitorSettings) -> int:
    """0, or `EXIT_DEGRADED` for a degraded status when `settings.fail_on_degraded` is set.

    `no_actuals_yet` is a clean exit: nothing is wrong yet, there is just nothing to judge.
    """
    if status.status == STATUS_DEGRADED and settings.fail_on_degraded:
        return EXIT_DEGRADED
    return 0


def _window_verdicts(
    metrics: pd.DataFrame, training_mae: float | None, settings: MonitorSettings
) -> pd.DataFrame:
    """Status and reason per (zone, window_end), from the all-horizon rolling rows."""
    _require(metrics, METRIC_COLUMNS, "metrics")
    if training_mae is not None and not (math.isfinite(training_mae) and training_mae > 0):
        raise MonitoringInputError(f"training MAE must be a positive number, got {training_mae}")
    kind = f"rolling_{settings.rolling_days}d"
    overall = metrics.loc[metrics["horizon"] == ALL_HORIZONS]
    rolling = overall.loc[overall["window_kind"] == kind].sort_values(["zone", "window_end"])
    if rolling.empty and (overall["window_kind"] == DAY).any():
        raise MonitoringInputError(
            f"metrics have no {kind} windows: "
            f"compute them with rolling_days={settings.rolling_days}"
        )
    day_actuals = overall.loc[overall["window_kind"] == DAY].set_index(["zone", "window_end"])[
        "n_actuals"
    ]
    threshold = None if training_mae is None else training_mae * settings.degraded_factor
    records = []
    for zone, windows in rolling.groupby("zone", sort=True):
        status, reason, streak = STATUS_NO_ACTUALS_YET, _no_actuals_reason(settings), 0
        for row in windows.itertuples(index=False):
            if day_actuals.get((zone, row.window_end), 0) > 0:
                breaches = _breaches(row, training_mae, threshold, settings)
                streak = streak + 1 if breaches else 0
                status = STATUS_DEGRADED if streak >= settings.consecutive_windows else STATUS_OK
                reason = _reason(row, status, breaches, streak, training_mae, threshold, settings)
            records.append({"zone": zone, "window_end": row.window_end, "status": status,
                            "reason": reason})
    return pd.DataFrame(records, columns=["zone", "window_end", "status", "reason"])


def _breaches(row: Any, training_mae: float | None, threshold: float | None,
              settings: MonitorSettings) -> list[str]:
    found = []
    if not math.isnan(row.skill_vs_baseline) and row.skill_vs_baseline < 0:
        found.append(
            f"worse than the seasonal-naive baseline (skill {row.skill_vs_baseline:.3f}, "
            f"baseline MAE {row.baseline_mae:.2f})"
        )
    if threshold is not None and row.mae > threshold:
        found.append(
            f"above training MAE {training_mae:.2f} × {settings.degraded_factor:g} "
            f"= {threshold:.2f}"
        )
    return found


def _reason(row: Any, status: str, breaches: list[str], streak: int, training_mae: float | None,
            threshold: float | None, settings: MonitorSettings) -> str:
    window = (
        f"MAE {row.mae:.2f} over the {settings.rolling_days} days to {_day_label(row.window_end)}"
    )
    if breaches:
        run = f"{streak} consecutive window(s), {settings.consecutive_windows} make degraded"
        return f"{window} is {' and '.join(breaches)}: {run}"
    against = [f"skill vs seasonal-naive {row.skill_vs_baseline:.3f}"]
    if threshold is not None:
        against.append(
            f"training MAE {training_mae:.2f} × {settings.degraded_factor:g} = {threshold:.2f}"
        )
    return f"{window} is within bounds ({', '.join(against)})"


def _no_actuals_reason(settings: MonitorSettings) -> str:
    counted = "estimates included" if settings.use_estimates else "estimated hours not counted"
    return f"no prediction has a final actual yet ({counted})"


def _day_label(window_end: pd.Timestamp) -> str:
    return f"{(window_end - _ONE_DAY):%Y-%m-%d}"


# ---------------------------------------------------------------------------------------------
# Drift


def psi(reference: Sequence[float] | pd.Series, current: Sequence[float] | pd.Series,
        bins: int = 10) -> float:
    """Population stability index of `current` against `reference`.

    PSI = Σ (c_i - r_i) · ln(c_i / r_i) over bins cut at the reference's quantiles (so each bin
    holds about 1 / bins of the reference; tied quantiles merge bins), the outer bins open-ended
    so values outside the reference range still count. A share of 0 counts as `PSI_EPSILON`.
    Rule of thumb: below 0.1 stable, 0.1-0.25 moderate shift, 0.25 and above significant.
    Missing values are dropped on both sides.

    Args:
        reference: the training window's values.
        current: the monitored window's values.
        bins: number of quantile bins (at least 2).

    Returns:
        The PSI, 0 for identical samples.

    Raises:
        MonitoringInputError: fewer than 2 bins, or no values on one side.
    """
    if bins < 2:
        raise MonitoringInputError(f"psi needs at least 2 bins, got {bins}")
    ref = _finite(reference)
    cur = _finite(current)
    if ref.size == 0 or cur.size == 0:
        raise MonitoringInputError(
            f"psi needs values on both sides, got {ref.size} reference and {cur.size} current"
        )
    edges = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    ref_share = _bin_shares(ref, edges)
    cur_share = _bin_shares(cur, edges)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def _finite(values: Sequence[float] | pd.Series) -> np.ndarray:
    array = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64")
    return array[np.isfinite(array)]


def _bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # Right-closed bins: (-inf, e0], (e0, e1], ..., (e_last, inf).
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
    return np.maximum(counts / values.size, PSI_EPSILON)


def feature_drift(
    reference_frame: pd.DataFrame, current_frame: pd.DataFrame, columns: Sequence[str],
    *, settings: MonitorSettings | None = None,
) -> pd.DataFrame:
    """PSI of each column of `current_frame` against the same column of `reference_frame`.

    For the target, give the monitored window's actual carbon intensity as the `target` column of
    `current_frame`.

    Args:
        reference_frame: the training frame (features and target).
        current_frame: the monitored window's feature rows.
        columns: the features (and `target`) to compare.
        settings: bins and thresholds (defaults when None).

    Returns:
        One row per column, in the given order: `feature`, `psi` (NaN when a side has no values),
        `drift` (stable / moderate / significant / no_data), value counts and means.

    Raises:
        MonitoringInputError: a column missing from either frame.
    """
    settings = settings or MonitorSettings()
    _require(reference_frame, columns, "reference frame")
    _require(current_frame, columns, "current frame")
    rows = []
    for column in columns:
        ref, cur = _finite(reference_frame[column]), _finite(current_frame[column])
        if ref.size and cur.size:
            value = psi(ref, cur, bins=settings.psi_bins)
            label = (
                DRIFT_SIGNIFICANT if value >= settings.psi_significant
                else DRIFT_MODERATE if value >= settings.psi_moderate else DRIFT_STABLE
            )
        else:
            value, label = math.nan, DRIFT_NO_DATA
        rows.append({
            "feature": column, "psi": value, "drift": label,
            "reference_n": int(ref.size), "current_n": int(cur.size),
            "reference_mean": float(ref.mean()) if ref.size else math.nan,
            "current_mean": float(cur.mean()) if cur.size else math.nan,
        })
    return pd.DataFrame(rows, columns=list(DRIFT_COLUMNS))


# ---------------------------------------------------------------------------------------------
# MLflow and plots


def log_monitoring(metrics: pd.DataFrame, drift: pd.DataFrame, status: Status) -> None:
    """Log to the active MLflow run: the all-horizon rolling metrics as time series, PSI per
    feature, and tags `monitor.status` / `monitor.status_reason`.

    Time series are keyed `monitor.<window_kind>.<metric>` with step = the window's last day as
    days since 1970-01-01 (the same day has the same step in every run) and timestamp = that
    day's start; NaN values are left out. `monitor.<window_kind>.degraded` (0/1) follows the
    `status` column when present. PSI goes to `monitor.drift.psi.<feature>` at the latest step.

    Raises:
        MonitoringInputError: no active run, or metrics of more than one zone (one run per zone).
    """
    import mlflow
    from mlflow.entities import Metric

    run = mlflow.active_run()
    if run is None:
        raise MonitoringInputError("log_monitoring needs an active MLflow run")
    zones = sorted(metrics["zone"].unique())
    if len(zones) > 1:
        raise MonitoringInputError(f"log_monitoring logs one zone per run, got {', '.join(zones)}")
    overall = metrics.loc[
        (metrics["horizon"] == ALL_HORIZONS) & metrics["window_kind"].str.startswith("rolling_")
    ]
    entries: list[Metric] = []
    latest_step, latest_ms = None, None
    for row in overall.sort_values("window_end").to_dict("records"):
        day = row["window_end"] - _ONE_DAY
        step = int((day - pd.Timestamp(0, tz="UTC")) / _ONE_DAY)
        timestamp = int(day.value // 1_000_000)
        latest_step, latest_ms = step, timestamp
        values = {name: row[name] for name in LOGGED_METRICS}
        if "status" in row and row["status"] != STATUS_NO_ACTUALS_YET:
            values["degraded"] = float(row["status"] == STATUS_DEGRADED)
        for name, value in values.items():
            if value is not None and not pd.isna(value):
                key = f"monitor.{row['window_kind']}.{name}"
                entries.append(Metric(key, float(value), timestamp, step))
    significant = []
    for row in drift.to_dict("records"):
        if pd.isna(row["psi"]):
            continue
        entries.append(Metric(
            f"monitor.drift.psi.{_metric_name(row['feature'])}", float(row["psi"]),
            latest_ms if latest_ms is not None else _now_ms(), latest_step or 0,
        ))
        if row["drift"] == DRIFT_SIGNIFICANT:
            significant.append(row["feature"])
    tags = {
        "monitor.status": status.status,
        "monitor.status_reason": status.reason[:5000],
        "monitor.drift.significant": ",".join(significant) or "none",
    }
    if status.window_end is not None:
        tags["monitor.window_end"] = status.window_end.isoformat()
    client = mlflow.MlflowClient()
    client.log_batch(run.info.run_id, metrics=entries)
    mlflow.set_tags(tags)


def _metric_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", str(name))


def _now_ms() -> int:
    return int(pd.Timestamp.now(tz="UTC").value // 1_000_000)


def _placeholder(axes: Any, text: str) -> None:
    """An empty plot that says why it is empty."""
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def plot_error_over_time(
    metrics: pd.DataFrame, path: str | Path, *, training_mae: float | None = None
) -> Path:
    """PNG of the model's and the seasonal-naive baseline's rolling MAE (all horizons) per day,
    the day MAE as points, the training MAE as a line when given, and degraded days shaded when
    `metrics` has a `status` column.

    Returns:
        The written path.
    """
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    overall = metrics.loc[metrics["horizon"] == ALL_HORIZONS]
    rolling = overall.loc[overall["window_kind"].str.startswith("rolling_")]
    rolling = rolling.sort_values("window_end")
    days = overall.loc[overall["window_kind"] == DAY].sort_values("window_end")
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    axes = figure.subplots()
    zones = ", ".join(sorted(metrics["zone"].unique())) or "no zone"
    if rolling["mae"].notna().any():
        kind = rolling["window_kind"].iloc[0]
        for zone, zone_rows in rolling.groupby("zone"):
            label = "" if metrics["zone"].nunique() == 1 else f" {zone}"
            day = zone_rows["window_end"] - _ONE_DAY
            axes.plot(day, zone_rows["mae"], marker="o", label=f"model {kind} MAE{label}")
            axes.plot(day, zone_rows["baseline_mae"], marker="s", linestyle="--",
                      label=f"seasonal-naive {kind} MAE{label}")
        axes.scatter(days["window_start"], days["mae"], s=14, color="grey", alpha=0.6,
                     label="model day MAE")
        if training_mae is not None:
            axes.axhline(training_mae, color="black", linewidth=1, linestyle=":",
                         label=f"training MAE {training_mae:.1f}")
        if "status" in rolling.columns:
            for start in rolling.loc[rolling["status"] == STATUS_DEGRADED, "window_end"]:
                # Centred on the window's point, which sits at its last day.
                day = start - _ONE_DAY
                axes.axvspan(day - _ONE_DAY / 2, day + _ONE_DAY / 2, color="tab:red", alpha=0.12,
                             linewidth=0)
        axes.legend(loc="upper left", fontsize=8)
        figure.autofmt_xdate()
    else:
        _placeholder(axes, "no actuals yet")
    axes.set_title(f"Forecast error over time ({zones})")
    axes.set_xlabel("day (UTC)")
    axes.set_ylabel("MAE (gCO₂eq/kWh)")
    axes.grid(alpha=0.3)
    figure.savefig(path, dpi=100)
    return path


def plot_recent(joined: pd.DataFrame, path: str | Path, days: int = 3, *,
                horizon: int | None = None) -> Path:
    """PNG of predicted vs actual carbon intensity with the p10-p90 band over the latest `days`
    days of target hours (to the last predicted hour, so the newest forecast shows beyond the
    actuals).

    Each target hour shows one forecast: the one issued for that `horizon`, or by default the
    earliest issued (the longest lead time, as a day-ahead user saw it).

    Returns:
        The written path.
    """
    from matplotlib.figure import Figure

    _require(joined, JOINED_COLUMNS, "joined predictions")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = joined.copy()
    frame["datetime"] = _as_utc(frame["datetime"], "joined.datetime")
    frame["issued_at"] = _as_utc(frame["issued_at"], "joined.issued_at")
    if horizon is not None:
        frame = frame.loc[frame["horizon"] == horizon]
    frame = (
        frame.sort_values(["zone", "datetime", "issued_at"], kind="mergesort")
        .drop_duplicates(["zone", "datetime"], keep="first")
    )
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    axes = figure.subplots()
    if frame.empty:
        _placeholder(axes, "no predictions")
    else:
        end = frame["datetime"].max()
        recent = frame.loc[frame["datetime"] > end - days * _ONE_DAY]
        for zone, rows in recent.groupby("zone"):
            label = "" if recent["zone"].nunique() == 1 else f" {zone}"
            axes.fill_between(rows["datetime"], rows["p10"], rows["p90"], alpha=0.25,
                              label=f"p10-p90{label}")
            axes.plot(rows["datetime"], rows["prediction"], label=f"predicted{label}")
            axes.plot(rows["datetime"], rows["actual"], color="black", marker=".",
                      label=f"actual{label}")
        axes.legend(loc="upper left", fontsize=8)
        figure.autofmt_xdate()
    which = f"horizon {horizon} h" if horizon is not None else "earliest issued forecast per hour"
    zones = ", ".join(sorted(joined["zone"].unique())) or "no zone"
    axes.set_title(f"Predicted vs actual, last {days} days ({zones}; {which})")
    axes.set_xlabel("target hour (UTC)")
    axes.set_ylabel("carbon intensity (gCO₂eq/kWh)")
    axes.grid(alpha=0.3)
    figure.savefig(path, dpi=100)
    return path


# ---------------------------------------------------------------------------------------------
# Input checks


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MonitoringInputError(f"{what} lack column(s) {', '.join(missing)}")


def _as_utc(values: pd.Series, what: str) -> pd.Series:
    """Aware datetimes as datetime64[ns, UTC]; naive ones are refused, not guessed (PySpark hands
    out naive local times)."""
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        if values.empty or values.isna().all():
            return pd.to_datetime(values, utc=True).astype(_UTC_NS)
        raise MonitoringInputError(
            f"{what} must be time-zone-aware UTC datetimes, got {values.dtype}"
        )
    return values.dt.tz_convert("UTC").astype(_UTC_NS)


def _utc_day(value: date | datetime | str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.floor("D").as_unit("ns")
