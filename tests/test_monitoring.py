"""Monitoring: joins, window metrics, PSI, status rules, MLflow logging and plots (pure pandas)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gridcast.config import ConfigError
from gridcast.monitoring import (
    ALL_HORIZONS,
    EXIT_DEGRADED,
    METRIC_COLUMNS,
    MONITORING_KEY,
    PSI_EPSILON,
    STATUS_DEGRADED,
    STATUS_NO_ACTUALS_YET,
    STATUS_OK,
    MonitoringInputError,
    MonitorSettings,
    Status,
    assess_status,
    attach_status,
    exit_code,
    feature_drift,
    join_actuals,
    log_monitoring,
    plot_error_over_time,
    plot_recent,
    psi,
    window_metrics,
)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def prediction(target: str, horizon: int, value: float, *, p10: float | None = None,
               p90: float | None = None, baseline: float = math.nan, zone: str = "GR",
               version: str = "1", scored_at: str | None = None) -> dict:
    target_at = ts(target)
    issued = target_at - pd.Timedelta(hours=horizon)
    return {
        "zone": zone, "issued_at": issued, "datetime": target_at, "horizon": horizon,
        "prediction": value, "p10": value - 10 if p10 is None else p10,
        "p90": value + 10 if p90 is None else p90, "baseline_seasonal_naive": baseline,
        "model_name": "gbm", "model_version": version, "run_id": "run",
        "scored_at": ts(scored_at) if scored_at else issued,
    }


def actual(hour: str, value: float, *, estimated: bool = False, zone: str = "GR") -> dict:
    return {"zone": zone, "datetime": ts(hour), "carbon_intensity": value,
            "is_estimated": estimated}


def frames(predictions: list[dict], actuals: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.DataFrame(predictions), pd.DataFrame(
        actuals, columns=["zone", "datetime", "carbon_intensity", "is_estimated"])


def daily_joined(model_errors: list[float], baseline_errors: list[float] | None = None,
                 *, start: str = "2025-06-01",
                 missing_actual_days: tuple[int, ...] = ()) -> pd.DataFrame:
    """One prediction per day (12:00, horizon 1) with actual 100 and the given errors."""
    baseline_errors = baseline_errors or [50.0] * len(model_errors)
    rows, actuals = [], []
    for index, (error, baseline_error) in enumerate(zip(model_errors, baseline_errors)):
        hour = f"{(ts(start) + pd.Timedelta(days=index)):%Y-%m-%d} 12:00"
        rows.append(prediction(hour, 1, 100.0 + error, baseline=100.0 + baseline_error))
        if index not in missing_actual_days:
            actuals.append(actual(hour, 100.0))
    predictions, actuals_frame = frames(rows, actuals)
    return join_actuals(predictions, actuals_frame)


def row(metrics: pd.DataFrame, kind: str, start: str, horizon: int = ALL_HORIZONS) -> pd.Series:
    selected = metrics.loc[(metrics["window_kind"] == kind) & (metrics["window_start"] == ts(start))
                           & (metrics["horizon"] == horizon)]
    assert len(selected) == 1, selected
    return selected.iloc[0]


# --- join_actuals ------------------------------------------------------------------------------

def test_join_leaves_estimated_actuals_out_by_default():
    predictions, actuals = frames(
        [prediction("2025-06-01 10:00", 1, 110.0), prediction("2025-06-01 11:00", 1, 120.0)],
        [actual("2025-06-01 10:00", 100.0), actual("2025-06-01 11:00", 130.0, estimated=True)],
    )
    joined = join_actuals(predictions, actuals)
    assert joined["actual"].tolist()[0] == 100.0
    assert math.isnan(joined["actual"].tolist()[1])
    assert joined["actual_is_estimated"].tolist() == [False, pd.NA]


def test_join_counts_estimated_actuals_when_asked():
    predictions, actuals = frames(
        [prediction("2025-06-01 11:00", 1, 120.0)],
        [actual("2025-06-01 11:00", 130.0, estimated=True)],
    )
    joined = join_actuals(predictions, actuals, use_estimates=True)
    assert joined["actual"].tolist() == [130.0]
    assert joined["actual_is_estimated"].tolist() == [True]


def test_join_gives_nan_actual_to_a_target_hour_without_one():
    predictions, actuals = frames([prediction("2025-06-02 00:00", 24, 100.0)],
                                  [actual("2025-06-01 00:00", 90.0)])
    joined = join_actuals(predictions, actuals)
    assert len(joined) == 1 and math.isnan(joined["actual"].iloc[0])


def test_join_keeps_the_newest_scored_forecast_of_an_issue_time():
    predictions, actuals = frames(
        [prediction("2025-06-01 10:00", 1, 110.0, version="1", scored_at="2025-06-01 09:00"),
         prediction("2025-06-01 10:00", 1, 105.0, version="2", scored_at="2025-06-01 09:30")],
        [actual("2025-06-01 10:00", 100.0)],
    )
    joined = join_actuals(predictions, actuals)
    assert joined[["model_version", "prediction"]].values.tolist() == [["2", 105.0]]


def test_join_converts_other_time_zones_to_utc():
    predictions, actuals = frames([prediction("2025-06-01 10:00", 1, 110.0)],
                                  [actual("2025-06-01 10:00", 100.0)])
    actuals["datetime"] = actuals["datetime"].dt.tz_convert("Europe/Athens")
    joined = join_actuals(predictions, actuals)
    assert joined["actual"].tolist() == [100.0]
    assert str(joined["datetime"].dtype) == "datetime64[ns, UTC]"


def test_join_rejects_naive_datetimes():
    predictions, actuals = frames([prediction("2025-06-01 10:00", 1, 110.0)],
                                  [actual("2025-06-01 10:00", 100.0)])
    actuals["datetime"] = actuals["datetime"].dt.tz_localize(None)
    with pytest.raises(MonitoringInputError, match="actuals.datetime must be time-zone-aware UTC"):
        join_actuals(predictions, actuals)


def test_join_rejects_two_actuals_for_one_hour():
    predictions, actuals = frames([prediction("2025-06-01 10:00", 1, 110.0)],
                                  [actual("2025-06-01 10:00", 100.0),
                                   actual("2025-06-01 10:00", 99.0)])
    with pytest.raises(MonitoringInputError, match="one row per zone and hour"):
        join_actuals(predictions, actuals)


@pytest.mark.parametrize("horizon", [0, math.nan])
def test_join_rejects_a_horizon_below_one_hour(horizon):
    predictions, actuals = frames([prediction("2025-06-01 10:00", 1, 110.0)],
                                  [actual("2025-06-01 10:00", 100.0)])
    with pytest.raises(MonitoringInputError, match="horizon must be at least 1"):
        join_actuals(predictions.assign(horizon=horizon), actuals)


def test_join_names_the_missing_columns():
    predictions, actuals = frames([prediction("2025-06-01 10:00", 1, 110.0)],
                                  [actual("2025-06-01 10:00", 100.0)])
    with pytest.raises(MonitoringInputError, match="predictions lack column.*p10, p90"):
        join_actuals(predictions.drop(columns=["p10", "p90"]), actuals)


# --- window_metrics ----------------------------------------------------------------------------

@pytest.fixture
def one_day() -> pd.DataFrame:
    """Four predictions on 2025-06-01; errors +10, -10, +30 and one without an actual."""
    predictions, actuals = frames(
        [prediction("2025-06-01 01:00", 1, 110.0, p10=95.0, p90=115.0, baseline=90.0),
         prediction("2025-06-01 02:00", 1, 190.0, p10=185.0, p90=195.0, baseline=220.0),
         prediction("2025-06-01 03:00", 2, 80.0, p10=60.0, p90=100.0),
         prediction("2025-06-01 04:00", 2, 70.0, p10=50.0, p90=90.0, baseline=60.0)],
        [actual("2025-06-01 01:00", 100.0), actual("2025-06-01 02:00", 200.0),
         actual("2025-06-01 03:00", 50.0)],
    )
    return join_actuals(predictions, actuals)


def test_day_metrics_over_all_horizons_match_hand_computed_values(one_day):
    metrics = window_metrics(one_day)
    day = row(metrics, "day", "2025-06-01")
    assert day["window_end"] == ts("2025-06-02")
    assert (day["n_predictions"], day["n_actuals"], day["actuals_share"]) == (4, 3, 0.75)
    assert day["mae"] == pytest.approx(50 / 3)
    assert day["rmse"] == pytest.approx(math.sqrt(1100 / 3))
    assert day["bias"] == pytest.approx(10.0)
    assert day["mape"] == pytest.approx((0.1 + 0.05 + 0.6) / 3 * 100)
    assert day["coverage_p10_p90"] == pytest.approx(1 / 3)
    assert day["interval_width"] == pytest.approx(70 / 3)
    assert day["n_baseline"] == 2
    assert day["baseline_mae"] == pytest.approx(15.0)
    assert day["baseline_rmse"] == pytest.approx(math.sqrt(250))
    assert day["baseline_bias"] == pytest.approx(5.0)
    assert day["baseline_mape"] == pytest.approx(10.0)
    # On the two predictions that have a baseline the model's MAE is 10.
    assert day["skill_vs_baseline"] == pytest.approx(1 - 10 / 15)


def test_day_metrics_per_horizon_match_hand_computed_values(one_day):
    metrics = window_metrics(one_day)
    first = row(metrics, "day", "2025-06-01", horizon=1)
    assert (first["mae"], first["bias"], first["coverage_p10_p90"], first["interval_width"]) == (
        pytest.approx(10.0), pytest.approx(0.0), pytest.approx(0.5), pytest.approx(15.0))
    second = row(metrics, "day", "2025-06-01", horizon=2)
    assert (second["n_predictions"], second["n_actuals"], second["n_baseline"]) == (2, 1, 0)
    assert second["mae"] == pytest.approx(30.0)
    assert math.isnan(second["baseline_mae"]) and math.isnan(second["skill_vs_baseline"])


def test_mape_leaves_out_zero_actuals():
    predictions, actuals = frames(
        [prediction("2025-06-01 01:00", 1, 5.0), prediction("2025-06-01 02:00", 1, 110.0)],
        [actual("2025-06-01 01:00", 0.0), actual("2025-06-01 02:00", 100.0)],
    )
    day = row(window_metrics(join_actuals(predictions, actuals)), "day", "2025-06-01")
    assert day["mae"] == pytest.approx(7.5)
    assert day["mape"] == pytest.approx(10.0)


def test_rolling_window_pools_the_days_ending_at_each_day():
    metrics = window_metrics(daily_joined([10.0, 20.0, 40.0]), rolling_days=2)
    rolling = metrics.loc[(metrics["window_kind"] == "rolling_2d") & (metrics["horizon"] == 0)]
    assert rolling["window_start"].tolist() == [
        ts("2025-05-31"), ts("2025-06-01"), ts("2025-06-02")]
    assert rolling["window_end"].tolist() == [ts("2025-06-02"), ts("2025-06-03"), ts("2025-06-04")]
    assert rolling["mae"].tolist() == pytest.approx([10.0, 15.0, 30.0])
    assert rolling["n_predictions"].tolist() == [1, 2, 2]


def test_default_rolling_window_is_seven_days():
    metrics = window_metrics(daily_joined([float(e) for e in range(1, 10)]))
    last = row(metrics, "rolling_7d", "2025-06-03")
    assert last["window_end"] == ts("2025-06-10")
    assert last["mae"] == pytest.approx(np.mean(range(3, 10)))


def test_windows_stop_at_today():
    metrics = window_metrics(daily_joined([10.0, 20.0, 40.0]), today="2025-06-02T15:00:00Z")
    assert metrics["window_end"].max() == ts("2025-06-03")
    assert row(metrics, "rolling_7d", "2025-05-27")["n_predictions"] == 2


def test_metrics_are_identical_whatever_the_row_order(one_day):
    joined = pd.concat([one_day, daily_joined([3.3, 7.1, 11.9, 0.7])], ignore_index=True)
    shuffled = joined.sample(frac=1.0, random_state=7).reset_index(drop=True)
    first, again = window_metrics(joined), window_metrics(shuffled)
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert not first.duplicated(list(MONITORING_KEY)).any()
    assert list(first.columns) == list(METRIC_COLUMNS)


def test_predictions_without_actuals_give_counts_and_no_metrics():
    predictions, actuals = frames([prediction("2025-06-01 10:00", 1, 110.0)],
                                  [actual("2025-06-01 10:00", 100.0, estimated=True)])
    metrics = window_metrics(join_actuals(predictions, actuals))
    day = row(metrics, "day", "2025-06-01")
    assert (day["n_predictions"], day["n_actuals"], day["actuals_share"]) == (1, 0, 0.0)
    assert math.isnan(day["mae"]) and math.isnan(day["coverage_p10_p90"])


def test_no_predictions_give_an_empty_metrics_frame_with_every_column(one_day):
    metrics = window_metrics(one_day.iloc[0:0])
    assert metrics.empty and list(metrics.columns) == list(METRIC_COLUMNS)


# --- status ------------------------------------------------------------------------------------

DAILY = MonitorSettings(rolling_days=1)


def status_of(model_errors, baseline_errors=None, training_mae=None, settings=DAILY, **kwargs):
    metrics = window_metrics(daily_joined(model_errors, baseline_errors, **kwargs),
                             rolling_days=settings.rolling_days)
    return assess_status(metrics, training_mae, settings)


def test_status_is_ok_when_the_model_beats_baseline_and_training_bound():
    status = status_of([5.0, 6.0, 4.0], training_mae=5.0)
    assert status.status == STATUS_OK
    assert "within bounds" in status.reason
    assert status.window_end == ts("2025-06-04")


def test_one_window_worse_than_the_baseline_is_not_degraded():
    status = status_of([5.0, 5.0, 60.0])
    assert status.status == STATUS_OK
    assert "worse than the seasonal-naive baseline" in status.reason


def test_two_consecutive_windows_worse_than_the_baseline_are_degraded():
    status = status_of([5.0, 60.0, 60.0])
    assert status.status == STATUS_DEGRADED
    assert "2 consecutive" in status.reason


def test_windows_above_training_mae_times_factor_are_degraded_even_when_beating_the_baseline():
    # Training MAE 10 × 1.5 = 15: 16 breaches, the baseline (error 50) is still worse.
    status = status_of([16.0, 16.0], training_mae=10.0)
    assert status.status == STATUS_DEGRADED
    assert "above training MAE 10.00 × 1.5 = 15.00" in status.reason


def test_training_bound_is_not_breached_below_the_factor():
    assert status_of([14.0, 14.0], training_mae=10.0).status == STATUS_OK


@pytest.mark.parametrize("consecutive, expected", [(1, STATUS_DEGRADED), (3, STATUS_DEGRADED),
                                                    (4, STATUS_OK)])
def test_degraded_needs_the_configured_number_of_consecutive_windows(consecutive, expected):
    settings = MonitorSettings(rolling_days=1, consecutive_windows=consecutive)
    assert status_of([5.0, 60.0, 60.0, 60.0], settings=settings).status == expected


def test_a_good_window_resets_the_breach_streak():
    assert status_of([60.0, 5.0, 60.0]).status == STATUS_OK


def test_a_day_without_new_actuals_keeps_the_previous_status():
    # With 7-day windows the window ending on the last day still holds day 2's breach; counting it
    # again would make "degraded" from no new evidence.
    settings = MonitorSettings()
    status = status_of([5.0, 60.0, 60.0], training_mae=10.0, settings=settings,
                       missing_actual_days=(2,))
    assert status.status == STATUS_OK
    assert "1 consecutive" in status.reason
    assert status.window_end == ts("2025-06-04")


def test_every_metrics_row_carries_its_window_status():
    metrics = window_metrics(daily_joined([5.0, 60.0, 60.0]), rolling_days=1)
    with_status = attach_status(metrics, None, DAILY)
    by_end = with_status.groupby("window_end")["status"].unique().map(list).to_dict()
    assert by_end == {ts("2025-06-02"): [STATUS_OK], ts("2025-06-03"): [STATUS_OK],
                      ts("2025-06-04"): [STATUS_DEGRADED]}
    assert len(with_status) == len(metrics)


def test_status_is_no_actuals_yet_when_no_prediction_has_an_actual():
    status = status_of([5.0, 5.0], missing_actual_days=(0, 1))
    assert status.status == STATUS_NO_ACTUALS_YET
    assert "no prediction has a final actual yet" in status.reason


def test_status_of_no_predictions_is_no_actuals_yet(one_day):
    status = assess_status(window_metrics(one_day.iloc[0:0]), 10.0, MonitorSettings())
    assert status == Status(STATUS_NO_ACTUALS_YET, "no predictions to monitor yet")


def test_status_needs_rolling_windows_of_the_configured_length():
    metrics = window_metrics(daily_joined([5.0]), rolling_days=7)
    with pytest.raises(MonitoringInputError, match="rolling_days=3"):
        assess_status(metrics, None, MonitorSettings(rolling_days=3))


def test_status_rejects_a_training_mae_that_is_not_positive():
    metrics = window_metrics(daily_joined([5.0]))
    with pytest.raises(MonitoringInputError, match="training MAE must be a positive number"):
        assess_status(metrics, 0.0, MonitorSettings())


@pytest.mark.parametrize("state, fail_on_degraded, expected", [
    (STATUS_DEGRADED, False, 0), (STATUS_DEGRADED, True, EXIT_DEGRADED),
    (STATUS_OK, True, 0), (STATUS_NO_ACTUALS_YET, True, 0),
])
def test_exit_code_is_non_zero_only_for_degraded_when_asked(state, fail_on_degraded, expected):
    settings = MonitorSettings(fail_on_degraded=fail_on_degraded)
    assert exit_code(Status(state, "why"), settings) == expected


# --- settings ----------------------------------------------------------------------------------

def test_settings_from_mapping_override_the_given_keys_only():
    settings = MonitorSettings.from_mapping({"degraded_factor": 2, "fail_on_degraded": True})
    assert settings == MonitorSettings(degraded_factor=2.0, fail_on_degraded=True)
    assert MonitorSettings.from_mapping(None) == MonitorSettings()


@pytest.mark.parametrize("values, message", [
    ({"degraded_factr": 2.0}, "unknown monitor setting.*degraded_factr; choose from"),
    ({"use_estimates": "yes"}, "monitor.use_estimates must be true or false"),
    ({"consecutive_windows": 0}, "monitor.consecutive_windows must be an integer of at least 1"),
    ({"degraded_factor": 0.5}, "monitor.degraded_factor must be at least 1"),
    ({"psi_moderate": 0.3}, "psi_moderate must be positive and below monitor.psi_significant"),
])
def test_settings_from_mapping_reject_bad_values(values, message):
    with pytest.raises(ConfigError, match=message):
        MonitorSettings.from_mapping(values)


# --- drift -------------------------------------------------------------------------------------

def test_psi_of_identical_samples_is_zero():
    sample = np.random.default_rng(1).normal(400, 50, 2000)
    assert psi(sample, sample) == pytest.approx(0.0, abs=1e-12)


def test_psi_of_two_samples_of_one_distribution_is_below_the_moderate_threshold():
    rng = np.random.default_rng(2)
    assert psi(rng.normal(400, 50, 5000), rng.normal(400, 50, 5000)) < 0.1


def test_psi_of_a_shifted_distribution_is_significant():
    rng = np.random.default_rng(3)
    assert psi(rng.normal(400, 50, 5000), rng.normal(450, 50, 5000)) > 0.25


def test_psi_matches_a_hand_computed_value():
    # Median 2.5 splits the reference in halves; current has 3/4 and 1/4 of its values there.
    expected = 0.25 * math.log(1.5) + 0.25 * math.log(2.0)
    assert psi([1, 2, 3, 4], [1, 1, 1, 4], bins=2) == pytest.approx(expected)


def test_psi_puts_values_beyond_the_reference_range_in_the_outer_bins_with_epsilon_for_empty_ones():
    reference = np.arange(100.0)
    expected = 0.9 * math.log(10.0) + 9 * (PSI_EPSILON - 0.1) * math.log(PSI_EPSILON / 0.1)
    assert psi(reference, np.full(50, 1000.0)) == pytest.approx(expected)


def test_psi_needs_values_on_both_sides():
    with pytest.raises(MonitoringInputError, match="0 reference and 2 current"):
        psi([math.nan], [1.0, 2.0])


def test_feature_drift_labels_each_feature_against_the_training_window():
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"ci_last": rng.normal(400, 50, 3000),
                              "target": rng.normal(400, 50, 3000),
                              "athens_temp": rng.normal(20, 5, 3000)})
    current = pd.DataFrame({"ci_last": rng.normal(400, 50, 500), "target": rng.normal(480, 50, 500),
                            "athens_temp": [math.nan] * 500})
    drift = feature_drift(reference, current, ["ci_last", "target", "athens_temp"])
    assert drift["feature"].tolist() == ["ci_last", "target", "athens_temp"]
    assert drift["drift"].tolist() == ["stable", "significant", "no_data"]
    assert drift["current_n"].tolist() == [500, 500, 0]
    assert math.isnan(drift["psi"].iloc[2])


def test_feature_drift_names_a_missing_column():
    frame = pd.DataFrame({"ci_last": [1.0, 2.0]})
    with pytest.raises(MonitoringInputError, match="current frame lack column.*ci_mean_24h"):
        feature_drift(frame.assign(ci_mean_24h=1.0), frame, ["ci_last", "ci_mean_24h"])


# --- MLflow and plots --------------------------------------------------------------------------

@pytest.fixture
def mlflow_store(tmp_path):
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("monitor", artifact_location=(tmp_path / "art").as_uri())
    yield mlflow, experiment
    mlflow.set_tracking_uri(previous)


def test_log_monitoring_writes_rolling_series_drift_and_status(mlflow_store):
    mlflow, experiment = mlflow_store
    settings = MonitorSettings(rolling_days=1)
    metrics = attach_status(window_metrics(daily_joined([5.0, 60.0, 60.0]), rolling_days=1),
                            None, settings)
    drift = pd.DataFrame([{"feature": "ci_last", "psi": 0.31, "drift": "significant",
                           "reference_n": 10, "current_n": 3, "reference_mean": 1.0,
                           "current_mean": 2.0}])
    status = assess_status(metrics, None, settings)
    with mlflow.start_run(experiment_id=experiment) as run:
        log_monitoring(metrics, drift, status)
    client = mlflow.MlflowClient()
    history = sorted(client.get_metric_history(run.info.run_id, "monitor.rolling_1d.mae"),
                     key=lambda m: m.step)
    first_day = (ts("2025-06-01") - ts("1970-01-01")).days
    assert [(m.step, m.value) for m in history] == [
        (first_day, 5.0), (first_day + 1, 60.0), (first_day + 2, 60.0)]
    assert history[0].timestamp == ts("2025-06-01").value // 1_000_000
    degraded = client.get_metric_history(run.info.run_id, "monitor.rolling_1d.degraded")
    assert sorted((m.step, m.value) for m in degraded)[-1] == (first_day + 2, 1.0)
    logged = client.get_run(run.info.run_id).data
    assert logged.metrics["monitor.drift.psi.ci_last"] == pytest.approx(0.31)
    assert logged.tags["monitor.status"] == STATUS_DEGRADED
    assert logged.tags["monitor.drift.significant"] == "ci_last"
    assert "2 consecutive" in logged.tags["monitor.status_reason"]


def test_log_monitoring_needs_an_active_run(one_day):
    with pytest.raises(MonitoringInputError, match="needs an active MLflow run"):
        log_monitoring(window_metrics(one_day), pd.DataFrame(), Status(STATUS_OK, "fine"))


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plots_are_written_as_png(tmp_path):
    joined = daily_joined([5.0, 6.0, 30.0, 40.0])
    metrics = attach_status(window_metrics(joined), 10.0, MonitorSettings())
    error_plot = plot_error_over_time(metrics, tmp_path / "plots" / "error.png", training_mae=10.0)
    recent_plot = plot_recent(joined, tmp_path / "plots" / "recent.png", days=3)
    assert _png_size(error_plot) == (1000, 450)
    assert _png_size(recent_plot) == (1000, 450)


def test_error_plot_without_actuals_still_writes_a_png(tmp_path):
    metrics = window_metrics(daily_joined([5.0], missing_actual_days=(0,)))
    assert _png_size(plot_error_over_time(metrics, tmp_path / "error.png")) == (1000, 450)


def test_status_of_several_zones_is_degraded_when_one_zone_is():
    good = daily_joined([5.0, 5.0])
    bad = daily_joined([60.0, 60.0]).assign(zone="DE")
    metrics = window_metrics(pd.concat([good, bad], ignore_index=True), rolling_days=1)
    status = assess_status(metrics, None, DAILY)
    assert status.status == STATUS_DEGRADED
    assert status.reason.startswith("DE: degraded: ") and "; GR: ok: " in status.reason


def test_log_monitoring_refuses_several_zones_in_one_run(mlflow_store):
    mlflow, experiment = mlflow_store
    joined = pd.concat([daily_joined([5.0]), daily_joined([5.0]).assign(zone="DE")])
    with mlflow.start_run(experiment_id=experiment):
        with pytest.raises(MonitoringInputError, match="one zone per run, got DE, GR"):
            log_monitoring(window_metrics(joined), pd.DataFrame(), Status(STATUS_OK, "fine"))
