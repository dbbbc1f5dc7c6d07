"""backtest: folds, gaps, idempotence, resume and the summary, on a lake built by the real
pipeline (ingest, medallion, features on a tiny replay recording) with real Spark, Delta and
SQLite MLflow stores; plus the pure fold arithmetic on a synthetic frame.

The base lake is the session's replayed lake (12 simulated days, 6-hourly runs), copied per
scenario (a Delta table is a directory). Tiny settings: H = 6, two 1-day folds, 3 days of training,
1 day of calibration, 20 trees. Tables are read back with delta-rs (no Spark actions).
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import deltalake
import mlflow
import numpy as np
import pandas as pd
import pytest

import steps.backtest as backtest_step
import gridcast.backtest as backtest
from gridcast.backtest import (
    BacktestSettings, Fold, fold_split, forecast_folds, lag_only, model_config, plan_folds,
    run_fold, store_folds, summarize,
)
from gridcast.config import ConfigError, load_config
from gridcast.model import ModelSettings, NotEnoughDataError, TrainSettings
from gridcast.storage import LocalTableStore
from conftest import REPLAYED_START, copy_replayed_lake

START = REPLAYED_START
END = START + timedelta(days=8)
H = 6
BACKTEST = [
    f"horizon={H}", "backtest.start=2025-03-16", "backtest.end=2025-03-18",
    "backtest.retrain_days=1", "backtest.min_train_days=3", "backtest.train_days=null",
    "backtest.calibration_days=1", "model.max_iter=20", "backtest.workers=1",
]


def _stamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


@pytest.fixture(scope="module")
def base_lake(replayed_lake, tmp_path_factory):
    """This module's copy of the session's replayed GR lake (12 days of 6-hourly runs)."""
    root = tmp_path_factory.mktemp("backtest-lake")
    copy_replayed_lake(replayed_lake, root)
    return {"root": root, "recording": replayed_lake["recording"]}


def _scenario(base_lake, name: str) -> dict:
    """A copy of the base lake and its own MLflow store, with the backtest overrides."""
    root = base_lake["root"] / name
    shutil.copytree(base_lake["root"] / "lake", root / "lake")
    overrides = [f"storage.root={root / 'lake'}",
                 f"source.recording={base_lake['recording'].path}",
                 f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}",
                 f"ingest.start={_stamp(START)}", f"ingest.end={_stamp(END)}", *BACKTEST]
    return {"root": root, "overrides": overrides}


def _results(root) -> deltalake.DeltaTable:
    return deltalake.DeltaTable(str(root / "lake" / "gold" / "backtest_results"))


def _utc(column: pd.Series) -> pd.Series:
    # delta-rs returns UTC, tz-aware or naive depending on the version: never local time.
    return column.dt.tz_localize("UTC") if column.dt.tz is None else column.dt.tz_convert("UTC")


def _rows(root) -> pd.DataFrame:
    rows = _results(root).to_pandas()
    for column in ("issued_at", "datetime", "fold_origin", "train_first_issued_at",
                   "train_last_target", "calibration_last_target"):
        rows[column] = _utc(rows[column])
    return rows.sort_values(["fold", "issued_at", "datetime"]).reset_index(drop=True)


def _backtest_runs(root) -> list[mlflow.entities.Run]:
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    return mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string="tags.step = 'backtest'",
                              order_by=["attributes.start_time ASC"])


@pytest.fixture(scope="module")
def uninterrupted(base_lake):
    scenario = _scenario(base_lake, "uninterrupted")
    assert backtest_step.main(scenario["overrides"]) == 0
    return scenario


def test_folds_never_train_or_calibrate_on_targets_at_or_after_first_issue_hour_minus_h(
        uninterrupted):
    rows = _rows(uninterrupted["root"])
    assert sorted(rows["fold"].unique()) == [0, 1]
    gap = pd.Timedelta(hours=H)
    for fold, fold_rows in rows.groupby("fold"):
        first_issue = fold_rows["issued_at"].min()
        assert first_issue == pd.Timestamp("2025-03-16", tz="UTC") + pd.Timedelta(days=fold)
        assert (fold_rows["issued_at"] < first_issue + pd.Timedelta(days=1)).all()
        assert (fold_rows["train_last_target"] < first_issue - gap).all()
        assert (fold_rows["calibration_last_target"] < first_issue - gap).all()
        # The calibration window itself sits H hours after the last training target.
        calibration_start = first_issue - gap - pd.Timedelta(days=1)
        assert (fold_rows["train_last_target"] < calibration_start - gap).all()
    assert set(rows["horizon"]) == set(range(1, H + 1))
    assert (rows["datetime"] - rows["issued_at"] == rows["horizon"] * pd.Timedelta(hours=1)).all()


def test_results_say_the_weather_came_from_archived_forecasts(uninterrupted):
    rows = _rows(uninterrupted["root"])
    assert set(rows["weather_source"]) == {"forecast"}
    run = _backtest_runs(uninterrupted["root"])[-1]
    assert run.data.tags[backtest_step.TAG_WEATHER_SOURCE] == "forecast"


def test_a_rerun_fits_nothing_and_commits_nothing(uninterrupted, capsys):
    before = _results(uninterrupted["root"]).version()
    assert backtest_step.main(uninterrupted["overrides"]) == 0
    assert _results(uninterrupted["root"]).version() == before
    out = capsys.readouterr().out
    assert "2 folds over" in out and "2 already stored" in out and "0 folds fitted" in out


def test_a_resumed_run_after_an_interruption_equals_an_uninterrupted_run(
        base_lake, uninterrupted, monkeypatch):
    scenario = _scenario(base_lake, "interrupted")
    overrides = [*scenario["overrides"], "backtest.flush_every_folds=1"]
    real_run_fold = backtest.run_fold

    def interrupted_after_fold_0(labelled, fold, *args):
        if fold.fold == 1:
            raise KeyboardInterrupt("simulated interruption")
        return real_run_fold(labelled, fold, *args)

    monkeypatch.setattr(backtest, "run_fold", interrupted_after_fold_0)
    with pytest.raises(KeyboardInterrupt, match="simulated interruption"):
        backtest_step.main(overrides)
    assert set(_rows(scenario["root"])["fold"]) == {0}
    monkeypatch.setattr(backtest, "run_fold", real_run_fold)
    assert backtest_step.main(overrides) == 0
    resumed = _rows(scenario["root"]).drop(columns="run_id")
    expected = _rows(uninterrupted["root"]).drop(columns="run_id")
    pd.testing.assert_frame_equal(resumed, expected)


def test_storing_folds_again_replaces_their_rows_and_leaves_the_other_folds(
        spark, uninterrupted, tmp_path):
    stored = _rows(uninterrupted["root"])
    store = LocalTableStore(tmp_path / "lake")
    first = store_folds(spark, store, stored)
    changed = stored[stored["fold"] == 1].assign(prediction=lambda rows: rows["prediction"] + 1)
    second = store_folds(spark, store, changed)
    assert second == first + 1
    again = _rows(tmp_path).sort_values(["fold", "issued_at", "datetime"]).reset_index(drop=True)
    assert len(again) == len(stored)
    pd.testing.assert_frame_equal(again[again["fold"] == 0], stored[stored["fold"] == 0])
    assert (again.loc[again["fold"] == 1, "prediction"].to_numpy()
            == changed["prediction"].to_numpy()).all()


def test_storing_rows_of_two_model_configs_at_once_is_refused(uninterrupted, tmp_path):
    rows = _rows(uninterrupted["root"])
    rows.loc[rows["fold"] == 1, "model_config"] = "other"
    with pytest.raises(ValueError, match="one zone and model config at a time, got 2"):
        store_folds(None, LocalTableStore(tmp_path / "lake"), rows)


def test_storing_no_rows_or_rows_with_a_duplicate_key_is_refused(tmp_path):
    store = LocalTableStore(tmp_path / "lake")
    empty = pd.DataFrame(columns=["zone", "model_config", "fold"])
    with pytest.raises(ValueError, match="no rows to store"):
        store_folds(None, store, empty)
    row = {"zone": "GR", "model_config": "c", "fold": 0, "issued_at": START,
           "datetime": START + timedelta(hours=1)}
    twice = pd.DataFrame([row, row])
    with pytest.raises(ValueError, match="duplicate keys"):
        store_folds(None, store, twice)
    assert not (tmp_path / "lake").exists()


def test_summary_metrics_equal_a_recomputation_from_the_stored_rows(uninterrupted):
    rows = _rows(uninterrupted["root"])
    metrics = _backtest_runs(uninterrupted["root"])[0].data.metrics
    error = (rows["prediction"] - rows["actual"]).abs()
    assert metrics["all.rows"] == len(rows)
    assert metrics["all.mae"] == pytest.approx(error.mean())
    assert metrics["all.rmse"] == pytest.approx(np.sqrt(((rows["prediction"] - rows["actual"])
                                                         ** 2).mean()))
    assert metrics["all.mape"] == pytest.approx(100 * (error / rows["actual"].abs()).mean())
    assert metrics["all.mase_m24"] == pytest.approx(error.mean() / rows["mase_scale"].mean())
    inside = (rows["actual"] >= rows["p10"]) & (rows["actual"] <= rows["p90"])
    assert metrics["all.coverage_p10_p90"] == pytest.approx(inside.mean())
    baseline_mae = {name: (rows[f"baseline_{name}"] - rows["actual"]).abs().mean()
                    for name in ("persistence", "seasonal_naive", "weekly_naive",
                                 "same_hour_mean_7d")}
    for name in ("persistence", "seasonal_naive", "weekly_naive"):
        expected = 1 - error.mean() / baseline_mae[name]
        assert metrics[f"all.skill_vs_{name}"] == pytest.approx(expected)
    assert metrics["all.skill"] == pytest.approx(1 - error.mean() / min(baseline_mae.values()))
    assert metrics["day1.mae"] == pytest.approx(error.mean())  # H = 6: day 1 is everything
    assert "day2.mae" not in metrics
    for h in range(1, H + 1):
        assert metrics[f"mae_h{h:02d}"] == pytest.approx(error[rows["horizon"] == h].mean())
    by_hour = error.groupby(rows["hour_local"]).mean()
    for hour, value in by_hour.items():
        assert metrics[f"mae_hod{hour:02d}"] == pytest.approx(value)


def test_lag_only_results_say_no_weather_and_get_their_own_model_config(base_lake):
    scenario = _scenario(base_lake, "lag-only")
    assert backtest_step.main([*scenario["overrides"], "backtest.weather=false"]) == 0
    rows = _rows(scenario["root"])
    assert set(rows["weather_source"]) == {"none"}
    weather_config = load_config(BACKTEST)
    assert rows["model_config"].iloc[0] != model_config(
        weather_config.train, weather_config.frame, weather_config.backtest)


def test_a_backtest_without_a_range_is_a_clear_error(base_lake, tmp_path, capsys):
    overrides = [f"storage.root={tmp_path / 'lake'}",
                 f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}"]
    assert backtest_step.main(overrides) == 1
    err = capsys.readouterr().err
    assert "backtest needs backtest.start and backtest.end" in err and "Traceback" not in err


# --- pure: settings and fold arithmetic on a synthetic frame ------------------------------------


@pytest.mark.parametrize("values, message", [
    ({"start": "2022-01-02", "end": "2022-01-01"}, "must be after backtest.start"),
    ({"start": "2022-01-01T00:30:00Z"}, "must be a whole hour"),
    ({"retrain_days": 0}, "backtest.retrain_days must be >= 1"),
    ({"issue_hour": 24}, "backtest.issue_hour must be 0..23"),
    ({"train_days": 7, "min_train_days": 28}, "must be >= backtest.min_train_days"),
    ({"folds": 3}, "folds"),
    ({"workers": 0}, "backtest.workers must be >= 1"),
])
def test_bad_backtest_settings_are_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        BacktestSettings.from_mapping(values)


def test_folds_step_by_retrain_days_and_the_last_is_cut_at_the_end():
    folds = plan_folds(BacktestSettings(start="2022-01-01", end="2022-01-20", retrain_days=7))
    assert [(f.origin.day, f.test_end.day) for f in folds] == [(1, 8), (8, 15), (15, 20)]


def _synthetic_frame(days: int = 40) -> pd.DataFrame:
    from forecast_frames import point_in_time_frame

    return point_in_time_frame(days=days, horizon=H)


def test_fold_split_keeps_h_hour_gaps_and_the_issue_hour(monkeypatch):
    frame = _synthetic_frame()
    labelled = frame[frame["target"].notna()]
    origin = labelled["issued_at"].min() + pd.Timedelta(days=30)
    fold = Fold(0, origin, origin + pd.Timedelta(days=2))
    settings = BacktestSettings(issue_hour=5, train_days=10, min_train_days=7,
                                calibration_days=3)
    split = fold_split(labelled, fold, H, settings)
    gap = pd.Timedelta(hours=H)
    assert split.calibration["datetime"].max() == origin - gap - pd.Timedelta(hours=1)
    assert split.train["datetime"].max() == split.calibration_start - gap - pd.Timedelta(hours=1)
    assert split.train["issued_at"].min() == split.calibration_start - gap - pd.Timedelta(days=10)
    assert set(split.test["issued_at"].dt.hour) == {5}
    assert len(split.test) == 2 * H


def test_a_fold_with_too_little_history_is_not_enough_data():
    frame = _synthetic_frame(days=20)
    labelled = frame[frame["target"].notna()]
    origin = labelled["issued_at"].min() + pd.Timedelta(days=10)
    with pytest.raises(NotEnoughDataError, match="fold 0 .* needs 672"):
        fold_split(labelled, Fold(0, origin, origin + pd.Timedelta(days=1)), H,
                   BacktestSettings())


def test_summary_has_one_line_per_lead_day_the_horizon_reaches():
    frame = _synthetic_frame()
    labelled = frame[frame["target"].notna()]
    origin = labelled["issued_at"].min() + pd.Timedelta(days=28)
    settings = BacktestSettings(train_days=None, min_train_days=20, calibration_days=3)
    train = TrainSettings(horizon=H, model=ModelSettings(max_iter=10))
    rows = run_fold(labelled, Fold(0, origin, origin + pd.Timedelta(days=1)), train, settings,
                    "cfg", "run")
    summary = summarize(rows)
    assert list(summary["band"]) == ["all", "day1"]
    assert summary["rows"].tolist() == [len(rows), len(rows)]
    assert set(rows["weather_source"]) <= {"forecast", "none", "observed"}


def _three_folds(days: int = 40) -> tuple[pd.DataFrame, list[Fold]]:
    labelled = _synthetic_frame(days).pipe(lambda frame: frame[frame["target"].notna()])
    origin = labelled["issued_at"].max().floor("D") - pd.Timedelta(days=3)
    return labelled, [Fold(k, origin + pd.Timedelta(days=k), origin + pd.Timedelta(days=k + 1))
                      for k in range(3)]


def test_folds_fitted_in_worker_processes_equal_the_folds_fitted_in_this_one():
    labelled, folds = _three_folds()
    train = TrainSettings(horizon=H, model=ModelSettings(max_iter=10))
    alone = BacktestSettings(train_days=None, min_train_days=20, calibration_days=3, workers=1)
    in_workers = BacktestSettings(train_days=None, min_train_days=20, calibration_days=3,
                                  workers=2)
    expected = list(forecast_folds(labelled, folds, train, alone, "cfg", "run"))
    parallel = list(forecast_folds(labelled, folds, train, in_workers, "cfg", "run"))
    assert [rows["fold"].iloc[0] for rows in parallel] == [0, 1, 2]
    for got, want in zip(parallel, expected):
        pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_a_fold_failing_in_a_worker_process_raises_its_own_error():
    labelled, folds = _three_folds(days=30)
    train = TrainSettings(horizon=H, model=ModelSettings(max_iter=10))
    settings = BacktestSettings(train_days=None, min_train_days=25, calibration_days=3,
                                workers=2)
    with pytest.raises(NotEnoughDataError, match="fold 0 .* needs 600"):
        list(forecast_folds(labelled, folds, train, settings, "cfg", "run"))


def test_lag_only_blanks_weather_and_flags_it_missing():
    frame = pd.DataFrame({"athens_temp": [1.0, 2.0], "weather_lead_h": [3.0, 4.0],
                          "weather_is_fallback": [True, False],
                          "weather_missing": [False, False]})
    blank = lag_only(frame, ["athens_temp", "patras_temp"])
    assert blank["athens_temp"].isna().all() and blank["weather_missing"].all()
    assert not blank["weather_is_fallback"].any()
