"""The forecaster: split gap, determinism, intervals, metrics, both model kinds, logging."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pandas as pd
import pytest

from forecast_frames import point_in_time_frame
from gridcast.config import ConfigError
from gridcast.model import (
    BASELINES, ConfigError, Forecaster, FrameError, ModelSettings, NotEnoughDataError,
    SplitSettings, TrainSettings, feature_columns, recency_weights, to_model_input,
    calibrate_intervals, chronological_split, conformal_bounds, interval_coverage, log_training,
    point_metrics, seasonal_scale, train_forecaster, walk_forward_splits,
)

HORIZON = 12
SPLIT = SplitSettings(min_train_days=14, calibration_days=5, test_days=5)
FAST = ModelSettings(max_iter=40, max_leaf_nodes=15, min_samples_leaf=20)


def settings(kind: str = "pooled", **model: object) -> TrainSettings:
    return TrainSettings(
        horizon=HORIZON, split=SPLIT,
        model=ModelSettings(**{**FAST.__dict__, "kind": kind, **model}),
        importance_rows=300, importance_repeats=2, plot_days=3,
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return point_in_time_frame(days=34, horizon=HORIZON)


@pytest.fixture(scope="module")
def pooled(frame):
    return train_forecaster(frame, settings("pooled"))


def test_split_leaves_a_gap_of_exactly_h_hours_before_calibration_and_test(frame):
    split = chronological_split(frame, HORIZON, SPLIT)
    gap = pd.Timedelta(hours=HORIZON)

    assert split.test["issued_at"].min() - split.calibration["datetime"].max() == gap
    assert split.calibration["issued_at"].min() - split.train["datetime"].max() == gap
    assert split.test["issued_at"].min() == split.test_start
    assert split.test["issued_at"].nunique() == SPLIT.test_days * 24
    assert split.train["datetime"].max() < split.calibration["issued_at"].min()


def test_split_uses_only_labelled_rows_and_ends_at_the_newest_labelled_issue_hour():
    frame = point_in_time_frame(days=36, horizon=HORIZON, labelled_until=35 * 24)
    split = chronological_split(frame, HORIZON, SPLIT)

    assert split.test["target"].notna().all()
    assert split.test_end == frame.loc[frame["target"].notna(), "issued_at"].max()


def test_walk_forward_folds_step_back_by_the_test_window(frame):
    folds = walk_forward_splits(frame, HORIZON, SplitSettings(14, 3, 3, folds=2))

    assert folds[1].test_start - folds[0].test_start == pd.Timedelta(days=3)
    assert folds[0].test["datetime"].max() <= folds[1].test_start + pd.Timedelta(hours=HORIZON)


def test_too_little_data_says_hours_needed_and_available():
    frame = point_in_time_frame(days=20, horizon=HORIZON)
    needed = 24 * (14 + 5 + 5) + 2 * HORIZON
    available = frame.loc[frame["target"].notna(), "issued_at"].nunique()

    with pytest.raises(NotEnoughDataError, match=f"need at least {needed} hours.*have {available}"):
        train_forecaster(frame, settings())


def test_same_data_and_seed_give_identical_predictions(frame, pooled):
    again = train_forecaster(frame, settings("pooled"))

    pd.testing.assert_frame_equal(pooled.predict(frame), again.predict(frame))


@pytest.mark.parametrize("kind", ["pooled", "blocks"])
def test_both_model_kinds_fit_and_predict_every_horizon_with_ordered_bounds(
    frame, kind, request
):
    result = request.getfixturevalue("pooled") if kind == "pooled" else train_forecaster(
        frame, settings(kind)
    )
    forecast = result.predict(frame)

    assert len(result.forecaster.estimators_) == (1 if kind == "pooled" else 2)  # 1-6, 7-12
    assert forecast["prediction"].notna().all()
    assert (forecast["p10"] <= forecast["prediction"]).all()
    assert (forecast["prediction"] <= forecast["p90"]).all()
    assert result.metrics["mae"] < result.metrics["baseline.persistence.mae"]


def test_residual_target_adds_the_model_to_its_base(frame):
    residual = train_forecaster(frame, settings(target="residual"))
    rows = residual.scored_test
    zeroed = residual.forecaster.estimators_[0]
    from gridcast.model import to_model_input

    learned = zeroed.predict(to_model_input(rows, residual.feature_columns))

    assert residual.metrics["mae"] < residual.metrics["baseline.persistence.mae"]
    np.testing.assert_allclose(rows["prediction"], rows["ci_same_hour_last_day"] + learned)


def test_blocks_fitted_at_once_give_the_trees_fitted_one_after_another(frame):
    after_another = train_forecaster(frame, settings("blocks", workers=1))
    at_once = train_forecaster(frame, settings("blocks", workers=2))

    assert len(at_once.forecaster.estimators_) == 2
    pd.testing.assert_frame_equal(at_once.predict(frame), after_another.predict(frame),
                                  check_exact=True)


def test_blocks_are_clipped_to_the_horizon():
    from gridcast.model import horizon_blocks

    assert horizon_blocks(ModelSettings(kind="blocks"), 30) == [
        (1, 6), (7, 12), (13, 24), (25, 30)
    ]
    assert horizon_blocks(ModelSettings(kind="pooled"), 30) == [(1, 30)]


def test_metrics_have_stable_names_per_horizon_hour_and_baseline(pooled):
    metrics = pooled.metrics
    expected = {"mae", "rmse", "mape", "mase_m24", "bias", "skill", "coverage_p10_p90",
                "interval_width", "mae_h01", f"mae_h{HORIZON:02d}", "skill_h07", "mae_hod00",
                "mae_hod23", "rows.test", "rows.test_dropped_baseline_nan"}
    expected |= {f"baseline.{b}.{m}" for b in BASELINES for m in ("mae", "rmse", "mase_m24")}
    expected |= {f"baseline.{b}.mae_h03" for b in BASELINES}

    assert expected <= set(metrics)
    best = min(metrics[f"baseline.{b}.mae"] for b in BASELINES)
    assert metrics["skill"] == pytest.approx(1 - metrics["mae"] / best)


def test_baselines_are_scored_on_exactly_the_model_rows(pooled):
    scored = pooled.scored_test
    persistence = (scored["ci_last"] - scored["target"]).abs().mean()

    assert pooled.metrics["baseline.persistence.mae"] == pytest.approx(persistence)
    assert pooled.metrics["rows.test"] == len(scored)


def test_rows_with_an_unknown_baseline_are_dropped_and_counted(frame):
    holed = frame.copy()
    last_day = holed["issued_at"] >= holed["issued_at"].max() - pd.Timedelta(hours=23)
    holed.loc[last_day & (holed["horizon"] == 1), "ci_target_m168"] = np.nan

    holed_labelled = int((last_day & (holed["horizon"] == 1) & holed["target"].notna()).sum())

    result = train_forecaster(holed, settings())

    assert holed_labelled == 23  # the newest issue hour's 1-hour target is not known yet
    assert result.metrics["rows.test_dropped_baseline_nan"] == holed_labelled
    assert result.scored_test["ci_target_m168"].notna().all()


def test_point_metrics_on_a_small_example():
    metrics = point_metrics(np.array([100.0, 200.0]), np.array([110.0, 180.0]), scale=5.0)

    assert metrics == pytest.approx(
        {"mae": 15.0, "rmse": math.sqrt(250), "mape": 10.0, "mase_m24": 3.0, "bias": -5.0}
    )


def test_seasonal_scale_is_the_mae_of_the_24h_naive_on_training_targets():
    hours = pd.date_range("2025-01-01", periods=48, freq="h", tz="UTC")
    train = pd.DataFrame({"datetime": hours, "target": [0.0] * 24 + [3.0] * 24})

    assert seasonal_scale(train) == 3.0


def test_conformal_bounds_use_finite_sample_order_statistics():
    # n = 9: upper = r(ceil(10 * 0.9)) = r(9), lower = r(floor(10 * 0.1)) = r(1)
    assert conformal_bounds(np.arange(1.0, 10.0), 0.1, 0.9) == (1.0, 9.0)
    # n = 19: upper = r(18), lower = r(2)
    assert conformal_bounds(np.arange(1.0, 20.0), 0.1, 0.9) == (2.0, 18.0)


def test_conformal_bounds_need_enough_residuals():
    with pytest.raises(NotEnoughDataError, match="at least 9 calibration residuals, have 8"):
        conformal_bounds(np.arange(8.0), 0.1, 0.9)


def test_interval_coverage_counts_bounds_as_inside():
    actual = np.array([1.0, 2.0, 3.0, 4.0])

    assert interval_coverage(actual, [0.0, 2.5, 3.0, 5.0], [2.0, 3.0, 3.0, 6.0]) == 0.5


def test_conformal_intervals_cover_about_80_percent_of_a_known_distribution():
    rng = np.random.default_rng(7)
    horizons = np.repeat([1, 2], 1000)
    scale = np.where(horizons == 1, 1.0, 5.0)  # each horizon its own spread
    offsets = calibrate_intervals(horizons, rng.standard_t(4, 2000) * scale, 2, 0.1, 0.9)
    test_h = np.repeat([1, 2], 20000)
    residual = rng.standard_t(4, 40000) * np.where(test_h == 1, 1.0, 5.0)
    lower = offsets["lower"].reindex(test_h).to_numpy()
    upper = offsets["upper"].reindex(test_h).to_numpy()

    for h in (1, 2):
        rows = test_h == h
        assert interval_coverage(residual[rows], lower[rows], upper[rows]) == pytest.approx(
            0.8, abs=0.02
        )


def test_frame_without_a_key_column_is_rejected(frame):
    with pytest.raises(FrameError, match=r"frame lacks column\(s\) \['issued_at'\]"):
        train_forecaster(frame.drop(columns="issued_at"), settings())


def test_text_input_columns_are_rejected(frame):
    with pytest.raises(FrameError, match=r"\['weather_source'\] are neither numeric nor boolean"):
        train_forecaster(frame.assign(weather_source="fcst"), settings())


def test_settings_from_mapping_nest_and_reject_unknown_fields():
    parsed = TrainSettings.from_mapping(
        {"horizon": 48, "model": {"kind": "blocks", "max_iter": 10}, "split": {"test_days": 3}}
    )

    assert parsed.model == ModelSettings(kind="blocks", max_iter=10)
    assert parsed.split.test_days == 3
    with pytest.raises(ConfigError, match=r"unknown model setting\(s\) trees; choose from"):
        ModelSettings.from_mapping({"trees": 3})
    with pytest.raises(ConfigError, match="model.kind must be one of pooled, blocks"):
        ModelSettings(kind="forest")
    with pytest.raises(ConfigError, match="model.workers must be >= 1"):
        ModelSettings(workers=0)
    with pytest.raises(ConfigError, match="horizon must be between 1 and 72, got 100"):
        TrainSettings(horizon=100)


def test_log_training_records_metrics_artifacts_and_a_registered_pyfunc(tmp_path, pooled, frame):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_registry_uri(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = mlflow.create_experiment("t", artifact_location=str(tmp_path / "artifacts"))
    with mlflow.start_run(experiment_id=experiment) as run:
        logged = log_training(pooled, registered_model_name="gridcast_GR_12h")

    assert logged.version == "1"
    stored = mlflow.get_run(run.info.run_id)
    assert stored.data.metrics["mae"] == pytest.approx(pooled.metrics["mae"])
    assert stored.data.params["model.kind"] == "pooled"
    artifacts = {a.path for a in mlflow.artifacts.list_artifacts(run_id=run.info.run_id,
                                                                 artifact_path="plots")}
    assert {"plots/mae_by_horizon.png", "plots/forecast_vs_actual_h01.png",
            "plots/forecast_vs_actual_h12.png", "plots/permutation_importance.png",
            "plots/error_by_hour_of_day.png"} <= artifacts
    evaluation = {a.path for a in mlflow.artifacts.list_artifacts(
        run_id=run.info.run_id, artifact_path="evaluation")}
    assert {"evaluation/permutation_importance.csv", "evaluation/per_horizon.csv",
            "evaluation/test_rows.parquet"} <= evaluation
    loaded = mlflow.pyfunc.load_model("models:/gridcast_GR_12h/1")
    rows = pooled.scored_test.head(30)
    from gridcast.model import to_model_input

    served = loaded.predict(to_model_input(rows, pooled.feature_columns))
    pd.testing.assert_frame_equal(served, pooled.predict(rows).reset_index(drop=True))


def test_an_importance_failure_behind_the_model_logging_reaches_the_caller(
        tmp_path, pooled, monkeypatch):
    import gridcast.model as model

    def broken(result):
        raise FrameError("importance sample has no rows")

    monkeypatch.setattr(model, "permutation_importances", broken)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = mlflow.create_experiment("t", artifact_location=str(tmp_path / "artifacts"))
    with pytest.raises(FrameError, match="importance sample has no rows"):
        with mlflow.start_run(experiment_id=experiment) as run:
            log_training(pooled)

    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"
    logged = {a.path for a in mlflow.artifacts.list_artifacts(
        run_id=run.info.run_id, artifact_path="evaluation")}
    assert "evaluation/permutation_importance.csv" not in logged


@pytest.mark.parametrize("choice", ["pooled", "blocks"])
def test_hydra_model_group_files_parse_into_model_settings(choice):
    from pathlib import Path

    from omegaconf import OmegaConf

    path = Path(__file__).resolve().parents[1] / "conf" / "model" / f"{choice}.yaml"
    parsed = ModelSettings.from_mapping(OmegaConf.to_container(OmegaConf.load(path)))

    assert parsed.kind == choice
    # Both are the dataclass defaults but for the estimator chosen on the IT-NO 2021
    # walk-forward (docs/decisions/0017): residual over the blend, relative levels, 150 trees at
    # learning rate 0.05, leaves of at least 200 rows, every 3rd training issue hour; the
    # shipped `blocks` splits it into 6-hour blocks up to 24 h (0025).
    shipped = {"target": "residual", "residual_base": "blend", "relative_levels": True,
               "max_iter": 150, "learning_rate": 0.05, "min_samples_leaf": 200,
               "train_issue_stride_h": 3}
    if choice == "blocks":
        shipped["blocks"] = ((1, 6), (7, 12), (13, 18), (19, 24), (25, 48), (49, 72))
    assert parsed == ModelSettings(kind=choice, **shipped)


def test_a_block_whose_rows_never_know_an_input_fits_and_predicts_without_it(frame):
    labelled = frame[frame["target"].notna()]
    columns = [c for c in feature_columns(labelled) if labelled[c].notna().any()]
    X = to_model_input(labelled, columns)
    X.loc[X["horizon"] > 6, "ci_target_m24"] = np.nan  # as beyond 48 h: never known there
    forecaster = Forecaster(ModelSettings(**{**FAST.__dict__, "kind": "blocks"}), HORIZON)

    forecaster.fit(X, labelled["target"])

    assert "ci_target_m24" in forecaster.block_columns_[0]
    assert "ci_target_m24" not in forecaster.block_columns_[1]
    assert np.isfinite(forecaster.predict(X)).all()


def test_a_champion_pickled_before_block_columns_predicts_as_it_did_on_all_columns(frame):
    # Champions registered before 0025 fitted every block on all the inputs and carry no
    # `block_columns_`; they must still score (batch_score loads whatever is the champion).
    labelled = frame[frame["target"].notna()]
    columns = [c for c in feature_columns(labelled) if labelled[c].notna().any()]
    X = to_model_input(labelled, columns)
    forecaster = Forecaster(ModelSettings(**{**FAST.__dict__, "kind": "blocks"}), HORIZON)
    forecaster.fit(X, labelled["target"])
    assert all(used == list(forecaster.block_columns_[0]) for used in forecaster.block_columns_)
    expected = forecaster.predict(X)

    del forecaster.block_columns_

    np.testing.assert_array_equal(forecaster.predict(X), expected)


def test_the_shipped_default_is_six_hour_blocks_of_the_pooled_estimator():
    from gridcast.config import load_config
    from gridcast.model import horizon_blocks

    cfg = load_config([])
    assert cfg.train.model.kind == "blocks"
    assert horizon_blocks(cfg.train.model, 24) == [(1, 6), (7, 12), (13, 18), (19, 24)]


def test_an_input_never_known_in_the_training_rows_is_left_out_of_the_model(frame):
    # A zone without weather or power breakdown: HistGradientBoosting cannot bin such a column.
    result = train_forecaster(frame.assign(athens_temp=np.nan), settings())
    assert "athens_temp" not in result.feature_columns and "ci_last" in result.feature_columns


def test_the_blend_base_weighs_its_anchors_to_one_and_moves_with_the_level(frame):
    labelled = frame[frame["target"].notna()]
    columns = [c for c in feature_columns(labelled) if labelled[c].notna().any()]
    X = to_model_input(labelled, columns)
    forecaster = Forecaster(ModelSettings(target="residual", residual_base="blend", max_iter=5),
                            HORIZON).fit(X, labelled["target"])
    assert sorted(forecaster.blend_weights_) == list(range(1, HORIZON + 1))
    for weights in forecaster.blend_weights_.values():
        assert weights.sum() == pytest.approx(1.0)
    anchors = forecaster.blend_anchors_
    shifted = X.copy()
    shifted[anchors] += 100.0
    moved = forecaster._blend(shifted) - forecaster._blend(X)
    assert np.allclose(moved.dropna(), 100.0)


def test_relative_levels_give_the_trees_levels_minus_the_level_now_and_keep_spreads():
    X = pd.DataFrame({"horizon": [1.0], "ci_last": [300.0], "ci_lag_24h": [280.0],
                      "ci_same_hour_last_day": [350.0], "ci_std_24h": [12.0],
                      "ci_last_age_h": [1.0], "hour_local": [5.0]})
    relative = Forecaster(ModelSettings(relative_levels=True))._trees_input(X).iloc[0]
    assert relative.to_dict() == {"horizon": 1.0, "ci_last": 300.0, "ci_lag_24h": -20.0,
                                  "ci_same_hour_last_day": 50.0, "ci_std_24h": 12.0,
                                  "ci_last_age_h": 1.0, "hour_local": 5.0}


def test_recency_weights_halve_every_half_life_and_are_none_when_off():
    issued = pd.Series(pd.to_datetime(["2022-01-01", "2022-01-11", "2022-01-21"], utc=True))
    assert np.allclose(recency_weights(issued, 10.0), [0.25, 0.5, 1.0])
    assert recency_weights(issued, 0.0) is None


@pytest.mark.parametrize("values, message", [
    ({"train_issue_stride_h": 0}, "model.train_issue_stride_h must be >= 1"),
    ({"recency_half_life_days": -1.0}, "model.recency_half_life_days must be >= 0"),
])
def test_bad_fit_options_are_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        ModelSettings.from_mapping(values)


def test_permutation_importance_equals_scikit_learns_with_the_same_seed(pooled):
    from sklearn.inspection import permutation_importance

    from gridcast.model import TARGET, permutation_importances

    s = pooled.settings
    sample = pooled.scored_test.sample(n=s.importance_rows, random_state=s.model.seed)
    expected = permutation_importance(
        pooled.forecaster, to_model_input(sample, pooled.feature_columns), sample[TARGET],
        scoring="neg_mean_absolute_error", n_repeats=s.importance_repeats,
        random_state=s.model.seed,
    )
    ours = permutation_importances(pooled).set_index("feature").loc[list(pooled.feature_columns)]

    np.testing.assert_allclose(ours["mae_increase"], expected.importances_mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours["std"], expected.importances_std, rtol=1e-9, atol=1e-9)
    assert ours["mae_increase"].max() > 0  # some input matters: the check above compares numbers


def test_permutation_repeats_scored_at_once_equal_one_after_another(pooled):
    from gridcast.model import TARGET, permuted_mae_increase

    rows = pooled.scored_test.head(200)
    X, y = to_model_input(rows, pooled.feature_columns), rows[TARGET].to_numpy(dtype="float64")
    after_another = permuted_mae_increase(pooled.forecaster, X, y, 3, seed=5, workers=1)
    at_once = permuted_mae_increase(pooled.forecaster, X, y, 3, seed=5, workers=3)

    assert after_another.shape == (len(pooled.feature_columns), 3)
    np.testing.assert_array_equal(at_once, after_another)
    assert not np.array_equal(after_another[:, 0], after_another[:, 1])  # repeats differ


def test_the_forecast_and_its_band_are_cut_at_zero_and_coverage_does_not_change(frame, pooled):
    from gridcast.model import TARGET, predict_with_intervals

    raw = pooled.forecaster.predict(to_model_input(frame, pooled.feature_columns))
    # A lower offset that puts about half the rows' p10 below 0, as a low-carbon hour would.
    wide = pooled.intervals.assign(lower=-float(np.median(raw)))
    offsets = wide.reindex(frame["horizon"].astype(int).to_numpy())
    uncut_p10 = raw + offsets["lower"].to_numpy()
    uncut_p90 = raw + offsets["upper"].to_numpy()
    assert 0.3 < (uncut_p10 < 0).mean() < 0.7

    forecast = predict_with_intervals(pooled.forecaster, wide, pooled.feature_columns, frame)

    np.testing.assert_array_equal(forecast["p10"], np.maximum(uncut_p10, 0.0))
    np.testing.assert_array_equal(forecast["p90"], np.maximum(uncut_p90, 0.0))
    np.testing.assert_array_equal(forecast["prediction"], np.maximum(raw, 0.0))
    known = frame[TARGET].notna().to_numpy()
    actual = frame[TARGET].to_numpy()[known]
    assert (actual >= 0).all()
    assert interval_coverage(actual, forecast["p10"][known], forecast["p90"][known]) == \
        interval_coverage(actual, uncut_p10[known], uncut_p90[known])
