"""Batch scoring: the champion's forecasts for issue hours, as rows of
`gold.carbon_intensity_predictions`.

The scoring rows come from the same frame code as the training rows
(`gridcast.frame_inputs.build_scoring_frame`). A row whose required history is absent at T
(`ci_last` unknown, or older than `ScoreSettings.max_age_h`) is skipped and counted, never
scored on made-up inputs; missing weather is tolerated and flagged (`weather_missing`).

Idempotence: the table's key is (zone, issued_at, datetime, model_name, model_version). A key
already in the table is dropped before the MERGE, so the first `scored_at` stays and a rerun
commits nothing; another horizon's model (its own name, versions from 1 again) never collides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from gridcast.config import ConfigError
from gridcast.errors import GridcastError
from gridcast.model import to_model_input
from gridcast.registry import CHAMPION
from gridcast.settings import settings_from_mapping
from gridcast.tables import GOLD_PREDICTIONS

PREDICTION_COLUMNS = tuple(field.name for field in GOLD_PREDICTIONS.schema.fields)


class NoChampionError(GridcastError):
    """The registered model has no `champion` alias to score with."""


def parse_issue_hour(name: str, value: str | None) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(str(value).strip())
    except ValueError:
        raise ConfigError(
            f"{name} must be an ISO-8601 UTC hour like 2025-12-24T00:00:00Z, got {value!r}"
        ) from None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if stamp != stamp.floor("h"):
        raise ConfigError(f"{name} must be a whole hour, got {value!r}")
    return stamp


@dataclass(frozen=True)
class ScoreSettings:
    """Which issue hours batch scoring forecasts from (Hydra section `score`).

    Attributes:
        start, end: issue hours (ISO-8601 UTC, inclusive) to score history; both null = the
            latest issue hour the lake can answer for. Either alone is an error.
        max_age_h: a row is skipped when the newest known carbon intensity at T is older than
            this many hours (or unknown): its history is absent.
    """

    start: str | None = None
    end: str | None = None
    max_age_h: int = 6

    def __post_init__(self) -> None:
        start, end = self.issue_range()
        if (start is None) != (end is None):
            raise ConfigError("set both score.start and score.end (or neither: the latest hour)")
        if start is not None and end < start:
            raise ConfigError(f"score.end ({self.end}) must not be before score.start "
                              f"({self.start})")
        if self.max_age_h < 1:
            raise ConfigError(f"score.max_age_h must be >= 1, got {self.max_age_h}")

    def issue_range(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """(start, end) as UTC timestamps, or (None, None) for the latest issue hour."""
        return parse_issue_hour("score.start", self.start), parse_issue_hour("score.end", self.end)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "ScoreSettings":
        return settings_from_mapping(cls, values, "score")


@dataclass(frozen=True)
class Champion:
    """The model version `champion` points to, loaded."""

    name: str
    version: str
    run_id: str
    model: Any  # mlflow.pyfunc.PyFuncModel

    @property
    def input_columns(self) -> list[str]:
        return self.model.metadata.get_input_schema().input_names()


def load_champion(name: str) -> Champion:
    """Load `models:/<name>@champion` (by the version the alias names, so the version recorded
    with each prediction is the one that made it).

    Raises:
        NoChampionError: the model or its champion alias does not exist.
    """
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        raise NoChampionError(
            f"no champion for {name}: train and register a model first "
            "(`-e train`, then `-e register`, or `-e promote` without auto_promote)"
        ) from None
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version.version}")
    return Champion(name, str(version.version), version.run_id, model)


@dataclass(frozen=True)
class ScoredRows:
    """Prediction rows and the frame rows skipped for absent history."""

    predictions: pd.DataFrame
    skipped: int


def score_rows(frame: pd.DataFrame, champion: Champion, *, max_age_h: int,
               scored_at: pd.Timestamp) -> ScoredRows:
    """Forecast every frame row whose history is present; skip (and count) the others.

    Args:
        frame: scoring rows from `build_scoring_frame`.
        champion: the model to score with.
        max_age_h: rows whose `ci_last_age_h` is unknown or above this are skipped.
        scored_at: when the rows were scored (UTC).

    Returns:
        Rows with the `gold.carbon_intensity_predictions` columns, and the skipped count.
    """
    present = frame["ci_last"].notna() & (frame["ci_last_age_h"] <= max_age_h)
    rows = frame[present]
    if rows.empty:
        return ScoredRows(pd.DataFrame(columns=list(PREDICTION_COLUMNS)), int(len(frame)))
    forecast = champion.model.predict(to_model_input(rows, champion.input_columns))
    forecast.index = rows.index
    predictions = pd.DataFrame({
        "zone": rows["zone"],
        "issued_at": rows["issued_at"],
        "datetime": rows["datetime"],
        "horizon": rows["horizon"].astype("int32"),
        "prediction": forecast["prediction"].astype("float64"),
        "p10": forecast["p10"].astype("float64"),
        "p90": forecast["p90"].astype("float64"),
        "baseline_seasonal_naive": rows["ci_same_hour_last_day"].astype("float64"),
        "weather_missing": rows["weather_missing"].astype(bool),
        "weather_is_fallback": rows["weather_is_fallback"].astype(bool),
        "model_name": champion.name,
        "model_version": champion.version,
        "run_id": champion.run_id,
        "scored_at": scored_at,
    })
    return ScoredRows(predictions.reset_index(drop=True), int(len(frame) - len(rows)))


def new_predictions(predictions: pd.DataFrame, existing_keys: pd.DataFrame) -> pd.DataFrame:
    """The predictions whose key is not in `existing_keys` yet: an existing row keeps its first
    `scored_at`, so scoring the same hours again writes nothing."""
    key = list(GOLD_PREDICTIONS.key)
    if existing_keys.empty or predictions.empty:
        return predictions
    seen = existing_keys[key].assign(_seen=True)
    merged = predictions.merge(seen, on=key, how="left")
    return merged.loc[merged["_seen"].isna(), list(predictions.columns)].reset_index(drop=True)
