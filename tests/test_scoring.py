"""Batch scoring's pure parts: which rows are scored or skipped, the prediction rows' shape,
idempotence by key, and the `score` settings. The model is a real fitted forecaster saved and
loaded as an MLflow pyfunc (no tracking store needed)."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature

from forecast_frames import point_in_time_frame
from gridcast.config import ConfigError
from gridcast.model import ModelSettings, SplitSettings, TrainSettings, pyfunc_model, to_model_input
from gridcast.model import train_forecaster
from gridcast.scoring import (
    PREDICTION_COLUMNS, Champion, ScoreSettings, new_predictions, score_rows,
)
from gridcast.tables import GOLD_PREDICTIONS

HORIZON = 6
SCORED_AT = pd.Timestamp("2025-03-01T12:00:00Z")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return point_in_time_frame(days=30, horizon=HORIZON)


@pytest.fixture(scope="module")
def champion(frame, tmp_path_factory) -> Champion:
    settings = TrainSettings(
        horizon=HORIZON, split=SplitSettings(min_train_days=10, calibration_days=4, test_days=4),
        model=ModelSettings(max_iter=20, max_leaf_nodes=15, min_samples_leaf=20),
    )
    result = train_forecaster(frame, settings)
    example = to_model_input(frame.head(5), result.feature_columns)
    path = tmp_path_factory.mktemp("model") / "model"
    mlflow.pyfunc.save_model(
        str(path), python_model=pyfunc_model(result), input_example=example,
        signature=infer_signature(example, result.predict(frame.head(5))),
    )
    return Champion("gridcast_GR_6h", "3", "run-abc", mlflow.pyfunc.load_model(str(path)))


def _latest(frame: pd.DataFrame, issue_hours: int = 1) -> pd.DataFrame:
    newest = frame["issued_at"].drop_duplicates().nlargest(issue_hours)
    return frame[frame["issued_at"].isin(newest)].reset_index(drop=True)


def test_score_rows_have_the_predictions_table_columns_and_the_champion_identity(
        frame, champion):
    rows = _latest(frame)
    scored = score_rows(rows, champion, max_age_h=6, scored_at=SCORED_AT)
    predictions = scored.predictions
    assert tuple(predictions.columns) == PREDICTION_COLUMNS
    assert scored.skipped == 0 and len(predictions) == HORIZON
    assert (predictions["model_version"] == "3").all()
    assert (predictions["run_id"] == "run-abc").all()
    assert (predictions["scored_at"] == SCORED_AT).all()
    assert np.allclose(predictions["baseline_seasonal_naive"], rows["ci_same_hour_last_day"])
    assert ((predictions["p10"] <= predictions["prediction"])
            & (predictions["prediction"] <= predictions["p90"])).all()


def test_rows_whose_newest_value_is_unknown_or_too_old_are_skipped_and_counted(frame, champion):
    rows = _latest(frame, issue_hours=3)
    issued = sorted(rows["issued_at"].unique())
    rows.loc[rows["issued_at"] == issued[0], "ci_last"] = np.nan
    rows.loc[rows["issued_at"] == issued[1], "ci_last_age_h"] = 7.0
    scored = score_rows(rows, champion, max_age_h=6, scored_at=SCORED_AT)
    assert scored.skipped == 2 * HORIZON
    assert set(scored.predictions["issued_at"]) == {issued[2]}


def test_missing_weather_is_scored_and_flagged(frame, champion):
    rows = _latest(frame).assign(athens_temp=np.nan, weather_missing=True)
    scored = score_rows(rows, champion, max_age_h=6, scored_at=SCORED_AT)
    assert scored.skipped == 0 and scored.predictions["weather_missing"].all()
    assert scored.predictions["prediction"].notna().all()


def test_keys_already_in_the_table_are_dropped_so_the_first_scored_at_stays(frame, champion):
    first = score_rows(_latest(frame, 2), champion, max_age_h=6, scored_at=SCORED_AT).predictions
    later = score_rows(_latest(frame, 3), champion, max_age_h=6,
                       scored_at=SCORED_AT + pd.Timedelta(hours=1)).predictions
    fresh = new_predictions(later, first[list(GOLD_PREDICTIONS.key)])
    assert len(fresh) == HORIZON
    assert fresh["issued_at"].nunique() == 1
    assert fresh["issued_at"].iloc[0] < first["issued_at"].min()
    assert new_predictions(first, first).empty


def test_another_model_version_is_a_new_key(frame, champion):
    rows = score_rows(_latest(frame), champion, max_age_h=6, scored_at=SCORED_AT).predictions
    keys = rows[list(GOLD_PREDICTIONS.key)].assign(model_version="2")
    assert len(new_predictions(rows, keys)) == len(rows)


def test_another_horizons_model_with_the_same_version_number_is_a_new_key(frame, champion):
    """Versions restart per registered model: v1 of the 72 h model is not v1 of this one."""
    rows = score_rows(_latest(frame), champion, max_age_h=6, scored_at=SCORED_AT).predictions
    keys = rows[list(GOLD_PREDICTIONS.key)].assign(model_name="gridcast_GR_72h")
    assert len(new_predictions(rows, keys)) == len(rows)


@pytest.mark.parametrize(("values", "message"), [
    ({"start": "2025-03-01T00:00:00Z"}, "set both score.start and score.end"),
    ({"start": "2025-03-02T00:00:00Z", "end": "2025-03-01T00:00:00Z"}, "must not be before"),
    ({"start": "2025-03-01T00:30:00Z", "end": "2025-03-02T00:00:00Z"}, "must be a whole hour"),
    ({"start": "yesterday-ish", "end": "2025-03-02T00:00:00Z"}, "ISO-8601 UTC hour"),
    ({"max_age_h": 0}, "score.max_age_h must be >= 1"),
    ({"maxage": 3}, "unknown score setting"),
])
def test_bad_score_settings_are_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        ScoreSettings.from_mapping(values)


def test_score_range_is_read_as_utc_hours():
    settings = ScoreSettings.from_mapping({"start": "2025-03-01T02:00:00+02:00",
                                           "end": "2025-03-01T05:00:00Z"})
    assert settings.issue_range() == (pd.Timestamp("2025-03-01T00:00Z"),
                                      pd.Timestamp("2025-03-01T05:00Z"))
