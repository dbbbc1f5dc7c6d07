"""The forecaster: chronological split, gradient boosting, conformal intervals, baselines, metrics.

Input is the point-in-time frame: one row per (issued_at T, horizon h), features as known at T,
`target` = the final carbon intensity at T + h. `train_forecaster` turns it into a `TrainResult`
(fitted model, per-horizon intervals, metrics of the model and of the naive baselines on the same
test rows); `log_training` records that result in the active MLflow run and registers the model.

Metric names (the same in every run; `hh` is a two-digit hour, `<m>` one of mae, rmse, mape,
mase_m24, bias):
- model, overall: `<m>`, `skill`, `coverage_p10_p90`, `interval_width`;
- model, per horizon: `<m>_hhh` (e.g. `mae_h07`), `skill_hhh`, `coverage_p10_p90_hhh`,
  `interval_width_hhh`; per hour of day of the target (local): `mae_hodhh`;
- baseline `<b>`: `baseline.<b>.<m>` and `baseline.<b>.mae_hhh`;
- counts: `rows.train`, `rows.calibration`, `rows.test`, `rows.test_dropped_baseline_nan`.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping, Sequence

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from gridcast.config import ConfigError
from gridcast.errors import GridcastError
from gridcast.frame import FrameError
from gridcast.settings import settings_from_mapping

KEY_COLUMNS = ("zone", "issued_at", "horizon", "datetime")
TARGET = "target"
# Naive forecasts as known at T, each one frame column.
BASELINES: dict[str, str] = {
    "persistence": "ci_last",
    "seasonal_naive": "ci_same_hour_last_day",
    "weekly_naive": "ci_target_m168",
    "same_hour_mean_7d": "ci_same_hour_mean_7d",
}
# `model.residual_base: blend`: a per-horizon least-squares mix of these naive anchors (the
# first, the level now, takes what the others leave of a total weight of one).
BLEND = "blend"
BLEND_ANCHORS = ("ci_last", "ci_same_hour_last_day", "ci_same_hour_mean_7d", "ci_profile_1d",
                 "ci_target_m168")
DEFAULT_BLOCKS = ((1, 6), (7, 12), (13, 24), (25, 48), (49, 72))
MODEL_KINDS = ("pooled", "blocks")
TARGET_MODES = ("residual", "direct")
METRICS = ("mae", "rmse", "mape", "mase_m24", "bias")
PREDICTION_COLUMNS = ("prediction", "p10", "p90")


class NotEnoughDataError(GridcastError):
    """The frame covers too few hours to split into train, calibration, gaps and test."""


@dataclass(frozen=True)
class ModelSettings:
    """Estimator choice and hyper-parameters (Hydra group `model/`).

    `kind`: `pooled` = one model over all horizons with h as a feature; `blocks` = one model per
    horizon block (blocks clipped to the forecast horizon). `target`: `residual` learns
    target - base (base = `residual_base`, then `ci_last`, then the training mean where unknown);
    `direct` learns the target itself.
    """

    kind: str = "pooled"
    target: str = "direct"
    residual_base: str = "ci_same_hour_last_day"
    blocks: tuple[tuple[int, int], ...] = DEFAULT_BLOCKS
    max_iter: int = 300
    learning_rate: float = 0.05
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    seed: int = 42
    # OpenMP threads for fit and predict (0 = one per core). One by default: on the shared
    # 2-core machine, OpenMP's spinning threads made the GR-year fit and its permutation
    # importance 14x slower under load (docs/decisions/0016).
    threads: int = 1
    # Python threads for the work that splits: horizon blocks fitted at once, permutation
    # importance repeats scored at once, each thread with `threads` OpenMP threads (1 = one after
    # another; the numbers are the same either way). A thread waiting on the GIL yields its core,
    # where OpenMP's spinning threads do not.
    workers: int = 2
    # Training rows weigh 0.5 ** (age / half-life), age in days before the newest training
    # issue hour (0 = every row weighs the same).
    recency_half_life_days: float = 0.0
    # Fit on the rows of every n-th training issue hour: neighbouring issue hours share all but
    # one hour of history, so a stride cuts fit time at little cost (docs/decisions/0017).
    train_issue_stride_h: int = 1
    # Give the trees carbon-intensity levels as differences from `ci_last` (the level now), so
    # a season with levels the training window never saw is not one big leaf.
    relative_levels: bool = False

    def __post_init__(self) -> None:
        if self.train_issue_stride_h < 1:
            raise ConfigError(
                f"model.train_issue_stride_h must be >= 1, got {self.train_issue_stride_h}")
        if self.recency_half_life_days < 0:
            raise ConfigError("model.recency_half_life_days must be >= 0 (0 = uniform weights), "
                              f"got {self.recency_half_life_days}")
        if self.workers < 1:
            raise ConfigError(
                "model.workers must be >= 1 (1 = one after another), "
                f"got {self.workers}")
        if self.threads < 0:
            raise ConfigError(f"model.threads must be >= 0 (0 = all cores), got {self.threads}")
        if self.kind not in MODEL_KINDS:
            raise ConfigError(
                f"model.kind must be one of {', '.join(MODEL_KINDS)}, got {self.kind!r}"
            )
        if self.target not in TARGET_MODES:
            raise ConfigError(
                f"model.target must be one of {', '.join(TARGET_MODES)}, got {self.target!r}"
            )
        object.__setattr__(self, "blocks", tuple((int(a), int(b)) for a, b in self.blocks))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "ModelSettings":
        return settings_from_mapping(cls, values, "model")


@dataclass(frozen=True)
class SplitSettings:
    """Window sizes, in days of issue hours, newest last: train | calibration | test.

    Between train and calibration and between calibration and test there is a gap of H hours:
    no target of an earlier window reaches the next window's first issue hour.
    `folds` > 1 gives walk-forward folds, each test window `test_days` before the next.
    """

    min_train_days: int = 28
    calibration_days: int = 14
    test_days: int = 14
    folds: int = 1

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "SplitSettings":
        return settings_from_mapping(cls, values, "train.split")


@dataclass(frozen=True)
class TrainSettings:
    """Everything `train_forecaster` needs besides the frame."""

    horizon: int = 24
    model: ModelSettings = field(default_factory=ModelSettings)
    split: SplitSettings = field(default_factory=SplitSettings)
    interval_lower: float = 0.1
    interval_upper: float = 0.9
    importance_rows: int = 2000
    importance_repeats: int = 3
    plot_days: int = 14
    # `main` retrains when the champion's newest training issue hour is this many days old.
    every_days: int = 7

    def __post_init__(self) -> None:
        if self.every_days < 1:
            raise ConfigError(f"train.every_days must be >= 1, got {self.every_days}")
        if not 1 <= self.horizon <= 72:
            raise ConfigError(f"horizon must be between 1 and 72, got {self.horizon}")
        if not 0 < self.interval_lower < self.interval_upper < 1:
            raise ConfigError(
                "interval levels need 0 < interval_lower < interval_upper < 1, got "
                f"{self.interval_lower}, {self.interval_upper}"
            )
        if min(self.split.calibration_days, self.split.test_days, self.split.folds) < 1:
            raise ConfigError(
                "split.calibration_days, split.test_days and split.folds must be >= 1"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "TrainSettings":
        return settings_from_mapping(cls, values, "train")


# ---------------------------------------------------------------------------------------- split


@dataclass(frozen=True)
class Split:
    """One chronological split of the labelled frame rows."""

    train: pd.DataFrame
    calibration: pd.DataFrame
    test: pd.DataFrame
    calibration_start: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp


def hours_needed(horizon: int, split: SplitSettings) -> int:
    """Issue hours a frame must span for one split: the three windows plus two gaps of H."""
    return 24 * (split.min_train_days + split.calibration_days + split.test_days) + 2 * horizon


def chronological_split(
    frame: pd.DataFrame, horizon: int, split: SplitSettings, end: pd.Timestamp | None = None
) -> Split:
    """Split labelled rows by issue time: train | gap | calibration | gap | test.

    Args:
        frame: point-in-time frame rows (unlabelled rows are dropped here).
        horizon: H; the gaps are H hours long.
        split: window sizes.
        end: last issue hour of the test window (default: the newest labelled issue hour).

    Returns:
        The three windows. Every training target is at least H hours before the first calibration
        issue hour, and every training or calibration target at least H hours before the first
        test issue hour.
    """
    labelled = frame[frame[TARGET].notna()]
    if labelled.empty:
        raise NotEnoughDataError(
            f"need at least {hours_needed(horizon, split)} hours of labelled issue times, "
            "have 0 (no row has a known target)"
        )
    test_end = labelled["issued_at"].max() if end is None else end
    labelled = labelled[labelled["issued_at"] <= test_end]
    first = labelled["issued_at"].min()
    available = int((test_end - first) / pd.Timedelta(hours=1)) + 1
    needed = hours_needed(horizon, split)
    if available < needed:
        raise NotEnoughDataError(
            f"need at least {needed} hours of labelled issue times (train {split.min_train_days} d"
            f" + calibration {split.calibration_days} d + test {split.test_days} d + 2 gaps of "
            f"{horizon} h), have {available}"
        )
    gap = pd.Timedelta(hours=horizon)
    test_start = test_end - pd.Timedelta(days=split.test_days) + pd.Timedelta(hours=1)
    calibration_start = test_start - gap - pd.Timedelta(days=split.calibration_days)
    test = labelled[labelled["issued_at"] >= test_start]
    calibration = labelled[
        (labelled["issued_at"] >= calibration_start) & (labelled["datetime"] <= test_start - gap)
    ]
    train = labelled[labelled["datetime"] <= calibration_start - gap]
    return Split(train, calibration, test, calibration_start, test_start, test_end)


def walk_forward_splits(frame: pd.DataFrame, horizon: int, split: SplitSettings) -> list[Split]:
    """`split.folds` chronological splits, oldest first, test windows `test_days` apart.

    Raises:
        NotEnoughDataError: if the oldest fold does not fit in the frame.
    """
    newest = frame.loc[frame[TARGET].notna(), "issued_at"].max()
    ends = [newest - pd.Timedelta(days=split.test_days * k) for k in range(split.folds)]
    return [chronological_split(frame, horizon, split, end) for end in reversed(ends)]


# ------------------------------------------------------------------------------------- features


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Model inputs: `horizon` and every column except the keys and the target, frame order.

    Raises:
        FrameError: if a key or the target is missing, or an input column is not numeric/bool.
    """
    missing = [c for c in (*KEY_COLUMNS, TARGET) if c not in frame.columns]
    if missing:
        raise FrameError(
            f"frame lacks column(s) {missing}; a point-in-time frame has {KEY_COLUMNS}"
        )
    columns = ["horizon"] + [c for c in frame.columns if c not in (*KEY_COLUMNS, TARGET)]
    bad = [
        c for c in columns
        if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
    ]
    if bad:
        raise FrameError(f"model input column(s) {bad} are neither numeric nor boolean")
    return columns


def to_model_input(frame: pd.DataFrame, columns: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """The model's input: `columns` as float64 (booleans 0/1, missing as NaN), in that order.

    Every input is a double in the model signature, so that an integer column that gains a NaN
    (and becomes float) in a later frame still matches it.

    Raises:
        FrameError: if a column the model was fitted with is missing.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FrameError(f"frame lacks model input column(s) {missing}")
    return pd.DataFrame(
        {c: pd.to_numeric(frame[c].astype("float64"), errors="raise") for c in columns},
        index=frame.index,
    )


# ------------------------------------------------------------------------------------- estimator


def horizon_blocks(settings: ModelSettings, horizon: int) -> list[tuple[int, int]]:
    """The horizon blocks a model fits: one block 1..H when pooled, else the blocks clipped to H."""
    if settings.kind == "pooled":
        return [(1, horizon)]
    blocks = [(lo, min(hi, horizon)) for lo, hi in settings.blocks if lo <= horizon]
    covered = {h for lo, hi in blocks for h in range(lo, hi + 1)}
    if covered != set(range(1, horizon + 1)):
        raise ConfigError(f"model.blocks {settings.blocks} do not cover horizons 1..{horizon}")
    return blocks


def is_level_column(name: str) -> bool:
    """A carbon-intensity level input (`ci_lag_1h`, `ci_mean_24h`, `ci_profile_1d`, ...), as
    opposed to `ci_last` itself, an age or a spread."""
    return (name.startswith("ci_") and name != "ci_last" and not name.startswith("ci_std_")
            and name != "ci_last_age_h")


class Forecaster(BaseEstimator, RegressorMixin):
    """Gradient-boosted forecaster over frame inputs (`to_model_input`), one model per block.

    A scikit-learn regressor, so `permutation_importance` and `clone` work on it.
    """

    def __init__(self, settings: ModelSettings = ModelSettings(), horizon: int = 24):
        self.settings = settings
        self.horizon = horizon

    def _fit_blend(self, X: pd.DataFrame, y: np.ndarray) -> None:
        """Per horizon, least-squares weights of the naive anchors present, summing to one and
        without an intercept (fitted as target - ci_last on anchor - ci_last), on the training
        rows where all are known: a base that moves with the level, whatever the level is."""
        anchors = [c for c in BLEND_ANCHORS if c in X.columns]
        self.blend_anchors_ = anchors
        self.blend_weights_ = {}
        horizons = X["horizon"].to_numpy()
        values = X[anchors].to_numpy()
        for h in np.unique(horizons):
            rows = (horizons == h) & ~np.isnan(values).any(axis=1)
            if rows.sum() <= len(anchors):
                continue
            level = values[rows, :1]
            others = np.linalg.lstsq(values[rows, 1:] - level, y[rows] - level[:, 0],
                                     rcond=None)[0]
            self.blend_weights_[int(h)] = np.concatenate([[1 - others.sum()], others])

    def _blend(self, X: pd.DataFrame) -> pd.Series:
        horizons = X["horizon"].to_numpy()
        values = X[self.blend_anchors_].to_numpy()
        base = np.full(len(X), np.nan)
        for h, weights in self.blend_weights_.items():
            rows = horizons == h
            base[rows] = values[rows] @ weights
        return pd.Series(base, index=X.index)

    def _base(self, X: pd.DataFrame) -> np.ndarray:
        if self.settings.target == "direct":
            return np.zeros(len(X))
        if self.settings.residual_base == BLEND:
            base = self._blend(X)
        else:
            base = X[self.settings.residual_base]
        if "ci_last" in X.columns:
            base = base.fillna(X["ci_last"])
        return base.fillna(self.fallback_level_).to_numpy()

    def _trees_input(self, X: pd.DataFrame) -> pd.DataFrame:
        """The inputs the trees see: with `relative_levels`, every carbon-intensity level column
        as its difference from `ci_last`."""
        if not getattr(self.settings, "relative_levels", False) or "ci_last" not in X.columns:
            return X
        levels = [c for c in X.columns if is_level_column(c)]
        relative = X.copy()
        relative[levels] = X[levels].sub(X["ci_last"], axis=0)
        return relative

    def _threads(self):
        threads = getattr(self.settings, "threads", 0)
        return threadpool_limits(limits=threads or None, user_api="openmp")

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray,
            sample_weight: np.ndarray | None = None) -> "Forecaster":
        with self._threads():
            return self._fit(X, y, sample_weight)

    def _fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray,
             sample_weight: np.ndarray | None) -> "Forecaster":
        s = self.settings
        if s.target == "residual" and s.residual_base not in (*X.columns, BLEND):
            raise FrameError(f"model.residual_base {s.residual_base!r} is not a model input")
        y = np.asarray(y, dtype="float64")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.fallback_level_ = float(np.mean(y))
        if s.target == "residual" and s.residual_base == BLEND:
            self._fit_blend(X, y)
        residual = y - self._base(X)
        trees_input = self._trees_input(X)
        horizons = X["horizon"].to_numpy()
        self.blocks_ = horizon_blocks(s, self.horizon)
        # Per block, the inputs known in some of its rows: at horizons beyond 48 the target-hour
        # lags of 24 and 48 h are never known, and HistGradientBoosting cannot bin an
        # all-missing column.
        self.block_columns_ = []
        fits = []
        for lo, hi in self.blocks_:
            rows = (horizons >= lo) & (horizons <= hi)
            if not rows.any():
                raise NotEnoughDataError(f"no training rows for horizons {lo}..{hi}")
            known = trees_input[rows].notna().any().to_numpy()
            self.block_columns_.append(list(trees_input.columns[known]))
            weight = None if sample_weight is None else np.asarray(sample_weight)[rows]
            fits.append((trees_input.loc[rows, self.block_columns_[-1]], residual[rows], weight))
        self.estimators_ = self._fit_blocks(fits)
        return self

    def _fit_blocks(self, fits: list[tuple[pd.DataFrame, np.ndarray, np.ndarray | None]]
                    ) -> list[HistGradientBoostingRegressor]:
        """One regressor per block, up to `workers` at once, each thread with `threads` OpenMP
        threads: the same trees as one after another, bit for bit."""
        s = self.settings

        def fit_one(X: pd.DataFrame, y: np.ndarray, weight: np.ndarray | None
                    ) -> HistGradientBoostingRegressor:
            estimator = HistGradientBoostingRegressor(
                max_iter=s.max_iter,
                learning_rate=s.learning_rate,
                max_leaf_nodes=s.max_leaf_nodes,
                min_samples_leaf=s.min_samples_leaf,
                l2_regularization=s.l2_regularization,
                early_stopping=False,
                random_state=s.seed,
            )
            with self._threads():
                return estimator.fit(X, y, sample_weight=weight)

        return _in_threads(lambda args: fit_one(*args), fits, s.workers, "fit-block")

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        horizons = X["horizon"].to_numpy()
        outside = ~((horizons >= 1) & (horizons <= self.horizon))
        if outside.any():
            raise FrameError(
                f"horizon {horizons[outside][0]:g} is outside this model's 1..{self.horizon}"
            )
        X = X[list(self.feature_names_in_)]
        prediction = self._base(X).astype("float64")
        trees_input = self._trees_input(X)
        with self._threads():
            columns = getattr(self, "block_columns_",
                              [list(trees_input.columns)] * len(self.blocks_))
            for (lo, hi), estimator, used in zip(self.blocks_, self.estimators_, columns):
                rows = (horizons >= lo) & (horizons <= hi)
                if rows.any():
                    prediction[rows] += estimator.predict(trees_input.loc[rows, used])
        return prediction


# ------------------------------------------------------------------------------------- intervals


def conformal_bounds(residuals: np.ndarray, lower: float, upper: float) -> tuple[float, float]:
    """Split-conformal offsets from calibration residuals (target - prediction).

    With n residuals sorted r(1) <= ... <= r(n), the upper offset is r(ceil((n + 1) * upper)) and
    the lower offset r(floor((n + 1) * lower)): each one-sided bound then holds with probability
    at least `upper` (resp. 1 - `lower`) for an exchangeable new residual, so the band
    [prediction + lower offset, prediction + upper offset] covers at least upper - lower.

    Raises:
        NotEnoughDataError: if n is too small for those order statistics to exist.
    """
    r = np.sort(np.asarray(residuals, dtype="float64")[~np.isnan(residuals)])
    n = len(r)
    k_hi = math.ceil((n + 1) * upper)
    k_lo = math.floor((n + 1) * lower)
    if k_hi > n or k_lo < 1:
        need = next(
            m for m in range(1, 10**6)
            if math.ceil((m + 1) * upper) <= m and math.floor((m + 1) * lower) >= 1
        )
        raise NotEnoughDataError(
            f"conformal interval needs at least {need} calibration residuals, have {n}"
        )
    return float(r[k_lo - 1]), float(r[k_hi - 1])


def calibrate_intervals(
    horizons: np.ndarray, residuals: np.ndarray, horizon: int, lower: float, upper: float
) -> pd.DataFrame:
    """Per-horizon conformal offsets: a frame indexed by horizon 1..H with `lower`, `upper`."""
    rows = []
    for h in range(1, horizon + 1):
        try:
            lo, hi = conformal_bounds(residuals[horizons == h], lower, upper)
        except NotEnoughDataError as error:
            raise NotEnoughDataError(f"horizon {h}: {error}") from None
        rows.append((h, lo, hi))
    return pd.DataFrame(rows, columns=["horizon", "lower", "upper"]).set_index("horizon")


def interval_coverage(actual: np.ndarray, p10: np.ndarray, p90: np.ndarray) -> float:
    """Share of actuals inside [p10, p90], bounds included."""
    actual = np.asarray(actual, dtype="float64")
    return float(np.mean((actual >= np.asarray(p10)) & (actual <= np.asarray(p90))))


# --------------------------------------------------------------------------------------- metrics


def seasonal_scale(train: pd.DataFrame) -> float:
    """In-sample MAE of the 24-hour seasonal naive on the training targets (MASE scale).

    Uses the hourly series of training targets (one value per datetime): mean |y(t) - y(t-24h)|
    over the hours where both are known.
    """
    series = train.drop_duplicates("datetime").set_index("datetime")[TARGET].sort_index()
    previous = series.reindex(series.index - pd.Timedelta(hours=24)).to_numpy()
    scale = float(np.nanmean(np.abs(series.to_numpy() - previous)))
    if not np.isfinite(scale) or scale == 0:
        raise NotEnoughDataError("training targets give no 24-hour seasonal naive error to scale")
    return scale


def point_metrics(actual: np.ndarray, forecast: np.ndarray, scale: float) -> dict[str, float]:
    """mae, rmse, mape (percent, over non-zero actuals), mase_m24, bias (forecast - actual)."""
    actual = np.asarray(actual, dtype="float64")
    error = np.asarray(forecast, dtype="float64") - actual
    nonzero = actual != 0
    mae = float(np.mean(np.abs(error)))
    return {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mape": float(100 * np.mean(np.abs(error[nonzero] / actual[nonzero]))),
        "mase_m24": mae / scale,
        "bias": float(np.mean(error)),
    }


def scored_rows(test: pd.DataFrame) -> pd.DataFrame:
    """The test rows every forecast is scored on: target and every baseline known.

    A row where any baseline is unknown at T is left out of every score (the model's too), so
    model and baselines are always compared on identical rows; the number left out is reported.
    """
    missing = [c for c in BASELINES.values() if c not in test.columns]
    if missing:
        raise FrameError(f"frame lacks baseline column(s) {missing}")
    known = test[TARGET].notna()
    for column in BASELINES.values():
        known &= test[column].notna()
    return test[known]


def evaluate_forecasts(scored: pd.DataFrame, scale: float) -> tuple[dict[str, float], pd.DataFrame]:
    """Metrics of the model (columns prediction, p10, p90) and every baseline on `scored` rows.

    Returns:
        The flat metric dict (names in the module docstring) and the per-horizon table (one row
        per horizon: the model's metrics, coverage, width, skill and each baseline's MAE).
    """
    actual = scored[TARGET].to_numpy()
    metrics = point_metrics(actual, scored["prediction"].to_numpy(), scale)
    baseline_mae = {}
    for name, column in BASELINES.items():
        for metric, value in point_metrics(actual, scored[column].to_numpy(), scale).items():
            metrics[f"baseline.{name}.{metric}"] = value
        baseline_mae[name] = metrics[f"baseline.{name}.mae"]
    metrics["skill"] = 1 - metrics["mae"] / min(baseline_mae.values())
    metrics["coverage_p10_p90"] = interval_coverage(actual, scored["p10"], scored["p90"])
    metrics["interval_width"] = float(np.mean(scored["p90"] - scored["p10"]))

    table_rows = []
    for h, rows in scored.groupby("horizon", sort=True):
        y = rows[TARGET].to_numpy()
        row = {"horizon": int(h), "rows": len(rows), **point_metrics(y, rows["prediction"], scale)}
        for name, column in BASELINES.items():
            row[f"baseline.{name}.mae"] = float(np.mean(np.abs(rows[column].to_numpy() - y)))
        row["skill"] = 1 - row["mae"] / min(row[f"baseline.{n}.mae"] for n in BASELINES)
        row["coverage_p10_p90"] = interval_coverage(y, rows["p10"], rows["p90"])
        row["interval_width"] = float(np.mean(rows["p90"] - rows["p10"]))
        table_rows.append(row)
    table = pd.DataFrame(table_rows)
    for row in table_rows:
        suffix = f"_h{row['horizon']:02d}"
        for metric in ("mae", "rmse", "bias", "skill", "coverage_p10_p90", "interval_width"):
            metrics[metric + suffix] = row[metric]
        for name in BASELINES:
            metrics[f"baseline.{name}.mae{suffix}"] = row[f"baseline.{name}.mae"]
    if "hour_local" in scored.columns:
        error = (scored["prediction"] - scored[TARGET]).abs()
        for hour, value in error.groupby(scored["hour_local"].astype(int)).mean().items():
            metrics[f"mae_hod{hour:02d}"] = float(value)
    return metrics, table


def error_by_hour_of_day(scored: pd.DataFrame) -> pd.DataFrame:
    """MAE of the model and each baseline by the target's local hour of day."""
    hour = scored["hour_local"].astype(int).rename("hour_local")
    columns = {"model": scored["prediction"], **{n: scored[c] for n, c in BASELINES.items()}}
    errors = pd.DataFrame({n: (f - scored[TARGET]).abs() for n, f in columns.items()})
    return errors.groupby(hour).mean().reset_index()


# ------------------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainResult:
    """What training produced: the fitted forecaster, its intervals and how it scored."""

    zone: str
    settings: TrainSettings
    forecaster: Forecaster
    feature_columns: tuple[str, ...]
    intervals: pd.DataFrame
    split: Split
    scored_test: pd.DataFrame
    metrics: dict[str, float]
    horizon_table: pd.DataFrame
    hour_table: pd.DataFrame
    mase_scale: float
    best_baseline: str

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`prediction`, `p10`, `p90` for frame rows (index kept)."""
        return predict_with_intervals(self.forecaster, self.intervals, self.feature_columns, frame)

    def evaluation_rows(self) -> pd.DataFrame:
        """The scored test rows as stored for the registry gate: keys, inputs, baselines, target.

        Baseline columns are kept even when they are not model inputs (left out because never
        known in the training rows): the gate scores each baseline from its column.
        """
        columns = [*KEY_COLUMNS, *self.feature_columns[1:]]
        columns += [c for c in BASELINES.values() if c not in columns]
        return self.scored_test[[*columns, TARGET]]


def predict_with_intervals(
    forecaster: Forecaster,
    intervals: pd.DataFrame,
    columns: tuple[str, ...] | list[str],
    frame: pd.DataFrame,
) -> pd.DataFrame:
    """Point forecast plus the horizon's conformal offsets, as a frame with PREDICTION_COLUMNS.

    Carbon intensity is never negative, so the forecast and its band are cut at 0: the additive
    offsets otherwise put p10 below 0 at low forecasts (-20 g/kWh at a 67 g/kWh hour of the
    embedded default). Cutting changes no coverage (an actual >= 0 is inside the cut band
    exactly when it is inside the band) and no error can grow (the cut prediction is nearer to
    every actual). The calibration residuals stay those of the uncut forecaster.
    """
    X = to_model_input(frame, columns)
    prediction = forecaster.predict(X)
    offsets = intervals.reindex(X["horizon"].astype(int).to_numpy())
    return pd.DataFrame(
        {
            "prediction": np.maximum(prediction, 0.0),
            "p10": np.maximum(prediction + offsets["lower"].to_numpy(), 0.0),
            "p90": np.maximum(prediction + offsets["upper"].to_numpy(), 0.0),
        },
        index=frame.index,
    )


def _check_frame(frame: pd.DataFrame, horizon: int) -> str:
    feature_columns(frame)
    zones = frame["zone"].unique()
    if len(zones) != 1:
        raise FrameError(f"train one zone at a time; frame has zones {sorted(map(str, zones))}")
    if frame["horizon"].max() > horizon or frame["horizon"].min() < 1:
        raise FrameError(
            f"frame horizons {frame['horizon'].min()}..{frame['horizon'].max()} are outside "
            f"1..{horizon}"
        )
    if frame.duplicated(["issued_at", "horizon"]).any():
        raise FrameError("frame has duplicate (issued_at, horizon) rows")
    return str(zones[0])


@dataclass(frozen=True)
class FittedForecaster:
    """A forecaster fitted on a split's training rows, with its inputs and conformal intervals
    calibrated on the split's calibration rows."""

    forecaster: Forecaster
    columns: tuple[str, ...]
    intervals: pd.DataFrame

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`prediction`, `p10`, `p90` for frame rows (index kept)."""
        return predict_with_intervals(self.forecaster, self.intervals, self.columns, frame)


def recency_weights(issued_at: pd.Series, half_life_days: float) -> np.ndarray | None:
    """0.5 ** (days before the newest issue hour / half-life) per row; None when 0 (uniform)."""
    if not half_life_days:
        return None
    age_days = (issued_at.max() - issued_at) / pd.Timedelta(days=1)
    return np.power(0.5, age_days.to_numpy(dtype="float64") / half_life_days)


def fit_split(split: Split, settings: TrainSettings) -> FittedForecaster:
    """Fit on `split.train`, calibrate the per-horizon intervals on `split.calibration`.

    The one fitting path of `train` and `backtest`.

    Raises:
        NotEnoughDataError: no training rows for a horizon block, or too few calibration
            residuals for the interval levels.
    """
    if split.train.empty:
        raise NotEnoughDataError("no training rows before the calibration window")
    stride = settings.model.train_issue_stride_h
    train = split.train
    if stride > 1:
        hours = (train["issued_at"] - train["issued_at"].max()) // pd.Timedelta(hours=1)
        train = train[hours % stride == 0]
    # An input never known in the training rows (a zone without a power breakdown or weather)
    # carries nothing, and HistGradientBoosting cannot bin an all-missing column: leave it out.
    columns = [c for c in feature_columns(train) if train[c].notna().any()]
    forecaster = Forecaster(settings.model, settings.horizon).fit(
        to_model_input(train, columns), train[TARGET],
        recency_weights(train["issued_at"], settings.model.recency_half_life_days),
    )
    calibration_input = to_model_input(split.calibration, columns)
    residuals = split.calibration[TARGET].to_numpy() - forecaster.predict(calibration_input)
    intervals = calibrate_intervals(
        calibration_input["horizon"].to_numpy(), residuals, settings.horizon,
        settings.interval_lower, settings.interval_upper,
    )
    return FittedForecaster(forecaster, tuple(columns), intervals)


def train_forecaster(frame: pd.DataFrame, settings: TrainSettings = TrainSettings()) -> TrainResult:
    """Split, fit, calibrate intervals, then score the model and the baselines on the test rows.

    Args:
        frame: the point-in-time frame of one zone (contract in the module docstring).
        settings: horizon, estimator, window sizes, interval levels.

    Returns:
        The fitted result; nothing is logged (see `log_training`).

    Raises:
        NotEnoughDataError: the frame spans fewer hours than the split needs.
        FrameError: the frame breaks the contract.
    """
    zone = _check_frame(frame, settings.horizon)
    split = chronological_split(frame, settings.horizon, settings.split)
    fitted = fit_split(split, settings)
    forecaster, columns, intervals = fitted.forecaster, list(fitted.columns), fitted.intervals
    scored = scored_rows(split.test)
    if scored.empty:
        raise NotEnoughDataError("no test row has its target and every baseline known")
    scored = pd.concat(
        [scored, predict_with_intervals(forecaster, intervals, columns, scored)], axis=1
    )
    scale = seasonal_scale(split.train)
    metrics, table = evaluate_forecasts(scored, scale)
    metrics.update({
        "rows.train": len(split.train),
        "rows.calibration": len(split.calibration),
        "rows.test": len(scored),
        "rows.test_dropped_baseline_nan": int(split.test[TARGET].notna().sum() - len(scored)),
    })
    best = min(BASELINES, key=lambda name: metrics[f"baseline.{name}.mae"])
    hours = error_by_hour_of_day(scored) if "hour_local" in scored.columns else pd.DataFrame()
    return TrainResult(
        zone=zone, settings=settings, forecaster=forecaster, feature_columns=tuple(columns),
        intervals=intervals, split=split, scored_test=scored, metrics=metrics,
        horizon_table=table, hour_table=hours, mase_scale=scale, best_baseline=best,
    )


def permutation_importances(result: TrainResult) -> pd.DataFrame:
    """Permutation importance (increase in MAE) of each input on a sample of the test rows.

    The same estimate as scikit-learn's `permutation_importance` with MAE scoring and the same
    seed, permutation for permutation (`permuted_mae_increase`), in one prediction per repeat
    instead of one per input and repeat.
    """
    s = result.settings
    sample = result.scored_test.sample(
        n=min(s.importance_rows, len(result.scored_test)), random_state=s.model.seed
    )
    increases = permuted_mae_increase(
        result.forecaster, to_model_input(sample, result.feature_columns),
        sample[TARGET].to_numpy(dtype="float64"), s.importance_repeats, s.model.seed,
        workers=s.model.workers,
    )
    return (
        pd.DataFrame({
            "feature": result.feature_columns,
            "mae_increase": increases.mean(axis=1),
            "std": increases.std(axis=1),
        })
        .sort_values("mae_increase", ascending=False)
        .reset_index(drop=True)
    )


def _in_threads(function: Callable[[Any], Any], items: Sequence[Any], workers: int,
               name: str) -> list[Any]:
    """`function` of each item, in order, up to `workers` at once in threads named `name`; in
    the calling thread when one worker (or one item) is enough."""
    workers = min(workers, len(items))
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        return list(pool.map(function, items))


def permuted_mae_increase(estimator, X: pd.DataFrame, y: np.ndarray, repeats: int,
                          seed: int, workers: int = 1) -> np.ndarray:
    """MAE with one input permuted minus MAE with none, per input (rows) and repeat (columns).

    The permutations are scikit-learn's (`sklearn.inspection.permutation_importance` with
    `random_state=seed`): one seed drawn from `seed`, the same row shuffles for every input;
    each repeat shuffles the index again and reorders the already permuted column by it.
    Each repeat predicts every input's permuted copy of `X` at once: the forecaster's cost per
    call (one predictor per horizon block, pandas indexing) is paid `repeats` times, not
    `repeats` x inputs times. Up to `workers` repeats are predicted at once, in threads.
    """
    n, columns = len(X), list(X.columns)
    values = X.to_numpy(dtype="float64")
    baseline = float(np.mean(np.abs(y - estimator.predict(X))))
    shuffles = np.random.RandomState(
        np.random.RandomState(seed).randint(np.iinfo(np.int32).max + 1))
    index, order, orders = np.arange(n), np.arange(n), []
    for _ in range(repeats):
        shuffles.shuffle(index)
        order = order[index]
        orders.append(order)

    def increase(order: np.ndarray) -> np.ndarray:
        stacked = np.tile(values, (len(columns), 1))
        for j in range(len(columns)):
            stacked[j * n:(j + 1) * n, j] = values[order, j]
        predicted = estimator.predict(pd.DataFrame(stacked, columns=columns))
        errors = np.abs(np.tile(y, len(columns)) - predicted).reshape(len(columns), n)
        return errors.mean(axis=1) - baseline

    per_repeat = _in_threads(increase, orders, workers, "importance")
    return np.column_stack(per_repeat) if per_repeat else np.empty((len(columns), 0))


def settings_params(settings: TrainSettings) -> dict[str, Any]:
    """Flat MLflow params from the settings (`model.max_iter`, `split.test_days`, ...)."""
    params: dict[str, Any] = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, (ModelSettings, SplitSettings)):
            for sub in fields(value):
                params[f"{f.name}.{sub.name}"] = getattr(value, sub.name)
        else:
            params[f.name] = value
    return params


# ------------------------------------------------------------------------------------ MLflow I/O


class ForecastModel(mlflow.pyfunc.PythonModel):
    """The registered artifact: `predict(frame rows)` -> `prediction`, `p10`, `p90`.

    Input: frame rows with the model's input columns as float64 (`to_model_input`); extra
    columns such as the keys are ignored.
    """

    def __init__(self, forecaster: Forecaster, intervals: pd.DataFrame, columns: tuple[str, ...]):
        self.forecaster = forecaster
        self.intervals = intervals
        self.columns = tuple(columns)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return predict_with_intervals(
            self.forecaster, self.intervals, self.columns, model_input
        ).reset_index(drop=True)


def pyfunc_model(result: TrainResult) -> ForecastModel:
    """The result as an `mlflow.pyfunc.PythonModel`: forecaster, input columns, intervals."""
    return ForecastModel(result.forecaster, result.intervals, result.feature_columns)


@dataclass(frozen=True)
class LoggedForecaster:
    """Where `log_training` put the model: run, model URI and, when registered, name and version."""

    run_id: str
    model_uri: str
    name: str | None
    version: str | None


EVALUATION_ROWS_ARTIFACT = "evaluation/test_rows.parquet"


def _pip_requirements() -> list[str]:
    import sklearn

    # Pinned explicitly: inferring them would run the model in a subprocess on every log.
    return [
        f"mlflow=={mlflow.__version__}",
        f"scikit-learn=={sklearn.__version__}",
        f"pandas=={pd.__version__}",
        f"numpy=={np.__version__}",
    ]


def _log_model(result: TrainResult, artifact_name: str,
               registered_model_name: str | None) -> "mlflow.models.model.ModelInfo":
    """The pyfunc model with its signature and input example, registered when named."""
    from mlflow.models import infer_signature

    example_rows = result.scored_test.head(5)
    example = to_model_input(example_rows, result.feature_columns).reset_index(drop=True)
    signature = infer_signature(example, result.predict(example_rows).reset_index(drop=True))
    return mlflow.pyfunc.log_model(
        name=artifact_name,
        python_model=pyfunc_model(result),
        signature=signature,
        input_example=example,
        registered_model_name=registered_model_name,
        pip_requirements=_pip_requirements(),
    )


def log_training(
    result: TrainResult,
    *,
    registered_model_name: str | None = None,
    artifact_name: str = "model",
    plots: bool = True,
) -> LoggedForecaster:
    """Log the result into the active MLflow run and (optionally) register the model.

    Logs params (`settings_params`, plus `zone`, `best_baseline`, feature count), every metric,
    `evaluation/per_horizon.csv`, `evaluation/by_hour_of_day.csv`, `evaluation/intervals.csv`,
    `evaluation/permutation_importance.csv`, the scored test rows (`EVALUATION_ROWS_ARTIFACT`,
    which the registry gate re-scores), the plots under `plots/`, and the pyfunc model with
    signature and input example.

    Returns:
        The run id, model URI and the registered version read from the returned ModelInfo.
    """
    import tempfile
    from pathlib import Path

    run = mlflow.active_run()
    if run is None:
        raise GridcastError("log_training needs an active MLflow run (mlflow.start_run())")
    mlflow.log_params({
        **settings_params(result.settings),
        "zone": result.zone,
        "best_baseline": result.best_baseline,
        "features.count": len(result.feature_columns),
        "split.train_start": result.split.train["issued_at"].min().isoformat(),
        "split.test_start": result.split.test_start.isoformat(),
        "split.test_end": result.split.test_end.isoformat(),
        "split.calibration_start": result.split.calibration_start.isoformat(),
    })
    mlflow.log_metrics({k: float(v) for k, v in result.metrics.items()})
    mlflow.log_metric("mase_scale", result.mase_scale)
    # Permutation importance (its predictions release the GIL) runs behind the model logging and
    # the other plots (MLflow, pickling, SQLite, matplotlib: mostly the GIL's side).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-importance") as pool, \
            tempfile.TemporaryDirectory() as tmp:
        pending = pool.submit(permutation_importances, result)
        out = Path(tmp)
        (out / "evaluation").mkdir()
        result.horizon_table.to_csv(out / "evaluation" / "per_horizon.csv", index=False)
        result.hour_table.to_csv(out / "evaluation" / "by_hour_of_day.csv", index=False)
        result.intervals.to_csv(out / "evaluation" / "intervals.csv")
        (out / "evaluation" / "features.txt").write_text("\n".join(result.feature_columns) + "\n")
        result.evaluation_rows().to_parquet(out / EVALUATION_ROWS_ARTIFACT, index=False)
        mlflow.log_artifacts(str(out / "evaluation"), artifact_path="evaluation")
        info = _log_model(result, artifact_name, registered_model_name)
        if plots:
            from gridcast.plots import plot_permutation_importance, save_training_plots

            (out / "plots").mkdir()
            save_training_plots(result, None, out / "plots")
        importance = pending.result()
        importance.to_csv(out / "permutation_importance.csv", index=False)
        mlflow.log_artifact(str(out / "permutation_importance.csv"), artifact_path="evaluation")
        if plots:
            plot_permutation_importance(importance, out / "plots" / "permutation_importance.png")
            mlflow.log_artifacts(str(out / "plots"), artifact_path="plots")
    version = info.registered_model_version
    return LoggedForecaster(
        run_id=run.info.run_id,
        model_uri=info.model_uri,
        name=registered_model_name,
        version=None if version is None else str(version),
    )


__all__ = [
    "BASELINES", "EVALUATION_ROWS_ARTIFACT", "FrameError", "ForecastModel", "Forecaster",
    "FittedForecaster", "LoggedForecaster", "ModelSettings", "NotEnoughDataError", "ConfigError",
    "Split",
    "SplitSettings", "TrainResult", "TrainSettings", "calibrate_intervals", "chronological_split",
    "conformal_bounds", "evaluate_forecasts", "feature_columns", "fit_split", "interval_coverage",
    "log_training", "permutation_importances", "permuted_mae_increase", "predict_with_intervals",
    "pyfunc_model", "to_model_input", "train_forecaster", "walk_forward_splits",
]
