"""Green windows from constructed forecasts whose window means are computed by hand."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from gridcast.config import ConfigError
from gridcast.errors import GridcastError
from gridcast.windows import (
    NoForecastError,
    RecommendSettings,
    WindowError,
    candidate_windows,
    difference_probability,
    hindsight_comparison,
    green_window_rows,
    latest_forecast,
    recommend_windows,
    savings_summary,
)

T0 = pd.Timestamp("2025-03-11T00:00:00Z")
H = pd.Timedelta(hours=1)
# Hours 00..05: the cleanest hours are 02 and 03 (tied at 100).
VALUES = [300.0, 200.0, 100.0, 100.0, 250.0, 400.0]


def predictions(values=VALUES, *, zone="GR", issued_at=T0 - H, start=T0, version="3",
                half_width=20.0, hours=None) -> pd.DataFrame:
    """Rows in the gold.carbon_intensity_predictions contract for one forecast."""
    hours = hours if hours is not None else [start + i * H for i in range(len(values))]
    return pd.DataFrame({
        "zone": zone,
        "issued_at": pd.Timestamp(issued_at),
        "datetime": pd.DatetimeIndex(hours),
        "horizon": [int((h - issued_at) / H) for h in hours],
        "prediction": values,
        "p10": [v - half_width for v in values],
        "p90": [v + half_width for v in values],
        "model_name": "gridcast_GR_24h",
        "model_version": version,
        "run_id": "run-1",
        "scored_at": pd.Timestamp(issued_at) + pd.Timedelta(minutes=5),
    })


def starts_and_means(rec) -> list[tuple[str, float]]:
    return [(w.start.strftime("%H:%M"), round(w.mean_intensity, 6)) for w in rec.windows]


def test_one_hour_windows_are_the_hourly_values_best_first():
    rec = recommend_windows(predictions(), zone="GR", duration_h=1, top=3)
    assert starts_and_means(rec) == [("02:00", 100.0), ("03:00", 100.0), ("01:00", 200.0)]


def test_two_hour_window_means_are_the_averages_of_two_hours():
    windows = candidate_windows(latest_forecast(predictions(), "GR"), duration_h=2)
    assert windows["start"].tolist() == [T0 + i * H for i in range(5)]
    assert windows["mean_intensity"].tolist() == [250.0, 150.0, 100.0, 175.0, 325.0]
    assert windows["end"].tolist() == [T0 + (i + 2) * H for i in range(5)]


def test_fractional_duration_weights_the_last_hour_by_its_fraction():
    windows = candidate_windows(latest_forecast(predictions(), "GR"), duration_h=1.5)
    # (300 + 0.5 * 200) / 1.5, (200 + 0.5 * 100) / 1.5, ...; 05:00 + 1.5 h overruns the forecast.
    expected = [400 / 1.5, 250 / 1.5, 150 / 1.5, 225 / 1.5, 450 / 1.5]
    assert windows["mean_intensity"].tolist() == pytest.approx(expected)
    assert windows["end"].iloc[0] == T0 + pd.Timedelta(minutes=90)
    # p10 / p90 are time-weighted the same way (every hour is p50 -/+ 20).
    assert windows["p10"].tolist() == pytest.approx([m - 20 for m in expected])
    assert windows["p90"].tolist() == pytest.approx([m + 20 for m in expected])


def test_a_65_minute_window_ends_exactly_65_minutes_after_its_start():
    # 65 / 60 h is not exact in binary: as a Timedelta it is 1 ns short of 65 minutes.
    rec = recommend_windows(predictions(), zone="GR", duration_h=65 / 60)
    assert rec.run_now.end == T0 + pd.Timedelta(minutes=65)
    assert json.loads(rec.to_json())["run_now"]["end"] == "2025-03-11T01:05:00Z"


def test_windows_tied_with_the_last_reported_one_are_kept_beyond_top():
    rec = recommend_windows(predictions(), zone="GR", duration_h=1, top=1)
    assert starts_and_means(rec) == [("02:00", 100.0), ("03:00", 100.0)]


def test_ties_are_ordered_by_start_even_when_the_later_hour_comes_first_in_the_frame():
    frame = predictions().iloc[::-1].reset_index(drop=True)
    rec = recommend_windows(frame, zone="GR", duration_h=1, top=2)
    assert [w.start for w in rec.windows] == [T0 + 2 * H, T0 + 3 * H]


def test_windows_start_on_the_grid_at_or_after_earliest_and_end_by_the_deadline():
    windows = candidate_windows(latest_forecast(predictions(), "GR"), duration_h=1,
                                earliest="2025-03-11T01:30:00Z", deadline="2025-03-11T04:00:00Z")
    assert windows["start"].tolist() == [T0 + 2 * H, T0 + 3 * H]


def test_run_now_is_the_window_at_the_earliest_allowed_start():
    rec = recommend_windows(predictions(), zone="GR", duration_h=1,
                            earliest=T0 + H, deadline=T0 + 4 * H)
    assert (rec.run_now.start, rec.run_now.end, rec.run_now.mean_intensity) == (
        T0 + H, T0 + 2 * H, 200.0)
    assert rec.savings_g_per_kwh == 100.0
    assert rec.savings_pct == pytest.approx(50.0)


def test_savings_compare_running_now_with_the_best_window():
    rec = recommend_windows(predictions(), zone="GR", duration_h=2)
    assert (rec.run_now.mean_intensity, rec.best.mean_intensity) == (250.0, 100.0)
    assert rec.savings_g_per_kwh == 150.0
    assert rec.savings_pct == pytest.approx(60.0)


def test_earliest_before_the_forecast_means_its_first_hour():
    rec = recommend_windows(predictions(), zone="GR", duration_h=1, earliest=T0 - 5 * H)
    assert rec.earliest == T0 and rec.run_now.start == T0


def test_only_the_newest_issued_forecast_is_used():
    old = predictions([10.0] * 6, issued_at=T0 - 2 * H)
    rec = recommend_windows(pd.concat([old, predictions()]), zone="GR", duration_h=1)
    assert rec.generated_at == T0 - H
    assert rec.best.mean_intensity == 100.0


def test_model_version_filter_reads_that_versions_newest_forecast():
    champion = predictions([10.0] * 6, issued_at=T0 - 2 * H, version="2")
    rec = recommend_windows(pd.concat([champion, predictions(version="3")]), zone="GR",
                            duration_h=1, model_version="2")
    assert (rec.model_version, rec.generated_at, rec.best.mean_intensity) == ("2", T0 - 2 * H, 10.0)


def test_two_versions_in_the_newest_forecast_ask_for_a_model_version():
    both = pd.concat([predictions(version="2"), predictions(version="3")])
    with pytest.raises(WindowError, match="model versions 2, 3; pass model_version"):
        recommend_windows(both, zone="GR", duration_h=1)


def test_windows_over_a_missing_forecast_hour_are_not_candidates():
    hours = [T0, T0 + H, T0 + 3 * H, T0 + 4 * H]  # 02:00 is missing
    frame = predictions([300.0, 200.0, 100.0, 250.0], hours=hours)
    windows = candidate_windows(latest_forecast(frame, "GR"), duration_h=2)
    assert windows["start"].tolist() == [T0, T0 + 3 * H]


@pytest.mark.parametrize(("kwargs", "parameter", "message"), [
    ({"duration_h": 0}, "duration_h", "duration must be more than 0 hours, got 0"),
    ({"duration_h": -1.5}, "duration_h", "more than 0 hours, got -1.5"),
    ({"duration_h": 2, "earliest": T0 + 4 * H, "deadline": T0 + 5 * H}, "duration_h",
     "window 2025-03-11T04:00:00Z to 2025-03-11T05:00:00Z is shorter than the 2 h duration"),
    ({"duration_h": 7}, "duration_h", "shorter than the 7 h duration"),
    ({"duration_h": 1, "deadline": T0 + 7 * H}, "deadline",
     "deadline 2025-03-11T07:00:00Z is beyond the forecast, which ends at 2025-03-11T06:00:00Z"),
    ({"duration_h": 1, "earliest": T0 + 4 * H, "deadline": T0 + 3 * H}, "earliest",
     "earliest 2025-03-11T04:00:00Z is after the deadline 2025-03-11T03:00:00Z"),
    ({"duration_h": 1, "earliest": "2025-03-11T04:00:00"}, "earliest", "has no time zone"),
    ({"duration_h": 1, "deadline": "tomorrow-ish"}, "deadline", "cannot read 'tomorrow-ish'"),
    ({"duration_h": 1, "earliest": "now"}, "earliest", "cannot read 'now' as an ISO-8601"),
    ({"duration_h": 1, "top": 0}, "top", "top must be at least 1"),
])
def test_bad_window_requests_raise_window_error_naming_the_parameter(kwargs, parameter, message):
    with pytest.raises(WindowError, match=message) as raised:
        recommend_windows(predictions(), zone="GR", **kwargs)
    assert raised.value.parameter == parameter
    assert isinstance(raised.value, GridcastError)


def test_no_predictions_for_the_zone_is_a_no_forecast_error():
    with pytest.raises(NoForecastError, match="no forecast for zone DE yet"):
        recommend_windows(predictions(), zone="DE", duration_h=1)


def test_no_predictions_for_the_model_version_is_a_no_forecast_error():
    with pytest.raises(NoForecastError, match="no forecast for zone GR from model version 9"):
        recommend_windows(predictions(), zone="GR", duration_h=1, model_version="9")


def test_a_forecast_with_gaps_everywhere_has_no_complete_window():
    frame = predictions([100.0, 100.0], hours=[T0, T0 + 2 * H])
    with pytest.raises(WindowError, match="no complete 2 h window .* the forecast has gaps"):
        recommend_windows(frame, zone="GR", duration_h=2)


def test_naive_prediction_times_are_refused():
    frame = predictions()
    frame["datetime"] = frame["datetime"].dt.tz_localize(None)
    with pytest.raises(WindowError, match="predictions.datetime must be timezone-aware UTC"):
        recommend_windows(frame, zone="GR", duration_h=1)


# --- p_beats_run_now ------------------------------------------------------------------------
# sigma = (p90 - p10) / 2.563: a half-width of 12.8155 gives sigma = 10.
SIGMA_10 = 1.2815515655446004 * 10


def phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_equal_windows_beat_each_other_with_probability_one_half():
    forecast = latest_forecast(predictions(), "GR")
    assert difference_probability(forecast, T0 + 2 * H, T0 + 3 * H, duration_h=1) == \
        pytest.approx(0.5)


def test_a_clearly_better_window_beats_running_now_almost_surely():
    rec = recommend_windows(predictions(), zone="GR", duration_h=1)  # 100 vs 300, sigma 15.6
    assert rec.p_beats_run_now > 0.9999


def test_independent_hours_give_the_hand_computed_probability():
    # run now 110, best 100, each sigma 10: D ~ N(10, 10^2 + 10^2), P(D > 0) = Phi(0.7071).
    rec = recommend_windows(predictions([110.0, 100.0], half_width=SIGMA_10), zone="GR",
                            duration_h=1)
    assert rec.p_beats_run_now == pytest.approx(0.760250, abs=1e-5)


def test_hours_shared_by_both_windows_cancel_in_the_difference():
    # 2 h windows 105 (00-02) and 100 (01-03) share hour 01: D = (h0 - h2) / 2, var = 50.
    rec = recommend_windows(predictions([110.0, 100.0, 100.0], half_width=SIGMA_10), zone="GR",
                            duration_h=2)
    assert rec.p_beats_run_now == pytest.approx(phi(5 / math.sqrt(50)), abs=1e-9)
    assert rec.p_beats_run_now == pytest.approx(0.760250, abs=1e-5)


def test_correlated_hour_errors_make_a_difference_more_certain():
    # Adjacent hours correlate as exp(-1 / 1 h): var = 200 - 2 * 100 / e.
    rec = recommend_windows(predictions([110.0, 100.0], half_width=SIGMA_10), zone="GR",
                            duration_h=1, error_correlation_h=1.0)
    assert rec.p_beats_run_now == pytest.approx(phi(10 / math.sqrt(200 - 200 / math.e)), abs=1e-9)
    assert rec.p_beats_run_now == pytest.approx(0.81307, abs=1e-4)


def test_running_now_when_it_is_the_best_window_has_no_chance_of_being_beaten():
    rec = recommend_windows(predictions([100.0, 200.0, 300.0]), zone="GR", duration_h=1)
    assert (rec.best.start, rec.savings_g_per_kwh, rec.p_beats_run_now) == (T0, 0.0, 0.0)


def test_zero_width_intervals_give_certainty_for_a_lower_mean():
    rec = recommend_windows(predictions([110.0, 100.0], half_width=0.0), zone="GR", duration_h=1)
    assert rec.p_beats_run_now == 1.0


def test_missing_intervals_give_no_probability_and_json_null():
    frame = predictions([110.0, 100.0])
    frame["p10"] = float("nan")
    rec = recommend_windows(frame, zone="GR", duration_h=1)
    assert rec.p_beats_run_now is None
    assert json.loads(rec.to_json())["p_beats_run_now"] is None


# --- outputs --------------------------------------------------------------------------------
def test_json_is_one_object_with_utc_z_times():
    payload = json.loads(recommend_windows(predictions(), zone="GR", duration_h=1.5).to_json())
    assert set(payload) == {"zone", "generated_at", "model_version", "duration_h", "earliest",
                            "deadline", "windows", "run_now", "savings_g_per_kwh", "savings_pct",
                            "p_beats_run_now"}
    assert payload["generated_at"] == "2025-03-10T23:00:00Z"
    assert payload["windows"][0] == {"start": "2025-03-11T02:00:00Z",
                                     "end": "2025-03-11T03:30:00Z", "mean_intensity": 100.0,
                                     "p10": 80.0, "p90": 120.0}
    assert payload["run_now"]["start"] == "2025-03-11T00:00:00Z"
    assert payload["run_now"]["mean_intensity"] == pytest.approx(400 / 1.5)
    assert payload["savings_pct"] == pytest.approx(62.5)


def test_green_window_rows_are_keyed_and_ranked_with_shared_ranks_for_ties():
    rows = green_window_rows(recommend_windows(predictions(), zone="GR", duration_h=1, top=3))
    assert rows[["start", "rank", "mean_intensity", "savings_g_per_kwh"]].to_dict("list") == {
        "start": [T0 + 2 * H, T0 + 3 * H, T0 + H], "rank": [1, 1, 3],
        "mean_intensity": [100.0, 100.0, 200.0], "savings_g_per_kwh": [200.0, 200.0, 100.0]}
    assert not rows.duplicated(["zone", "generated_at", "duration_h", "start"]).any()
    assert set(rows["zone"]) == {"GR"} and set(rows["generated_at"]) == {T0 - H}
    for column in ("generated_at", "start", "end"):
        assert str(rows[column].dtype) == "datetime64[ns, UTC]"


def test_settings_from_a_mapping_keep_defaults_and_refuse_unknown_keys():
    assert RecommendSettings.from_mapping({"duration_h": 2.5}) == RecommendSettings(duration_h=2.5)
    with pytest.raises(ConfigError, match="unknown recommend setting.* durationh; choose from"):
        RecommendSettings.from_mapping({"durationh": 2})
    with pytest.raises(ConfigError, match="recommend.duration_h must be > 0 hours, got 0"):
        RecommendSettings.from_mapping({"duration_h": 0})


ISSUED = pd.Timestamp("2025-06-01T00:00", tz="UTC")


def backtest_rows(actual, prediction, seasonal, *, issued_at=ISSUED, first_lead_h=1):
    """One issue's rows in the `gold.backtest_results` shape, hourly from issued_at + lead."""
    hours = pd.date_range(issued_at + first_lead_h * H, periods=len(actual), freq="h")
    return pd.DataFrame({"zone": "GR", "issued_at": issued_at, "datetime": hours,
                         "actual": actual, "prediction": prediction,
                         "baseline_seasonal_naive": seasonal})


def test_hindsight_comparison_scores_each_choice_by_what_really_happened():
    rows = backtest_rows(
        [100.0, 90.0, 50.0, 40.0, 80.0, 100.0],  # best 2-hour window starts at hour 3
        [100.0, 95.0, 60.0, 45.0, 85.0, 100.0],  # picks hour 3 too
        [100.0, 100.0, 100.0, 100.0, 10.0, 10.0])  # picks hour 5
    result = hindsight_comparison(rows, duration_h=2, deadline_h=6)
    assert result.to_dict("records") == [{
        "zone": "GR", "issued_at": ISSUED, "run_now": 95.0, "hindsight": 45.0,
        "prediction": 45.0, "baseline_seasonal_naive": 90.0, "hindsight_start": ISSUED + 3 * H,
        "prediction_start": ISSUED + 3 * H, "baseline_seasonal_naive_start": ISSUED + 5 * H,
    }]


@pytest.mark.parametrize("duration_h", [1.0, 1.5, 4.0])
def test_hindsight_comparison_picks_the_window_recommend_would_pick(duration_h):
    # Integer-valued hours with repeated values: tied windows must go to the earliest start.
    values = [300.0, 200.0, 100.0, 100.0, 250.0, 100.0, 100.0, 250.0, 400.0, 50.0, 60.0, 300.0]
    rows = backtest_rows(values, values, values[::-1])
    result = hindsight_comparison(rows, duration_h=duration_h, deadline_h=len(values))
    for column in ("prediction", "baseline_seasonal_naive"):
        forecast = rows.assign(prediction=rows[column], p10=rows[column], p90=rows[column],
                               model_version="1")
        best = recommend_windows(forecast, zone="GR", duration_h=duration_h).best
        assert result[f"{column}_start"].tolist() == [best.start]
    truth = candidate_windows(rows.assign(prediction=rows["actual"], p10=0.0, p90=0.0),
                              duration_h=duration_h).set_index("start")["mean_intensity"]
    assert result["run_now"].iloc[0] == pytest.approx(truth.iloc[0])
    assert result["baseline_seasonal_naive"].iloc[0] == pytest.approx(
        truth[result["baseline_seasonal_naive_start"].iloc[0]])


def test_hindsight_comparison_skips_forecasts_without_every_actual():
    rows = backtest_rows([1.0, None, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert hindsight_comparison(rows, duration_h=1, deadline_h=3).empty


def test_hindsight_comparison_skips_a_forecast_whose_first_hour_is_missing():
    # Without horizon 1, "run now" would silently become the second hour.
    rows = backtest_rows([500.0, 100.0, 300.0], [500.0, 100.0, 300.0], [1.0, 2.0, 3.0])
    complete = backtest_rows([200.0, 100.0, 300.0, 400.0], [1.0, 2.0, 3.0, 4.0],
                             [1.0, 2.0, 3.0, 4.0], issued_at=ISSUED + 24 * H)
    result = hindsight_comparison(pd.concat([rows.iloc[1:], complete]), duration_h=1,
                                  deadline_h=4)
    assert result["issued_at"].tolist() == [ISSUED + 24 * H]
    assert result["run_now"].tolist() == [200.0]


def test_hindsight_comparison_skips_a_day_a_chooser_cannot_forecast_for_every_choice():
    rows = backtest_rows([300.0, 100.0], [300.0, 100.0], [None, 1.0])
    assert hindsight_comparison(rows, duration_h=1, deadline_h=2).empty


def test_hindsight_comparison_chooses_only_among_hours_before_the_deadline():
    # A 48-hour forecast judged with a 24-hour deadline: the clean hour 30 is out of reach.
    actual = [300.0] * 48
    actual[5], actual[29] = 200.0, 10.0
    rows = backtest_rows(actual, actual, actual)
    result = hindsight_comparison(rows, duration_h=1, deadline_h=24)
    assert result[["run_now", "hindsight", "prediction"]].to_dict("records") == [
        {"run_now": 300.0, "hindsight": 200.0, "prediction": 200.0}]
    assert result["hindsight_start"].tolist() == [ISSUED + 6 * H]


def test_hindsight_comparison_refuses_rows_of_two_folds_for_one_issue():
    rows = backtest_rows([1.0, 2.0], [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(WindowError, match="issued 2025-06-01T00:00:00Z has more than one row "
                                          "for 2025-06-01T01:00:00Z: keep one fold"):
        hindsight_comparison(pd.concat([rows, rows]), duration_h=1, deadline_h=2)


def test_savings_summary_reports_each_choice_as_a_share_of_hindsight_savings():
    compared = pd.DataFrame({
        "run_now": [300.0, 200.0], "hindsight": [100.0, 100.0],
        "prediction": [100.0, 195.0], "baseline_seasonal_naive": [250.0, 150.0],
        "hindsight_start": [ISSUED, ISSUED], "prediction_start": [ISSUED, ISSUED + H],
        "baseline_seasonal_naive_start": [ISSUED + H, ISSUED + H],
    })
    summary = savings_summary(compared, near_g_per_kwh=10.0).set_index("choice")
    assert summary.loc["hindsight", "share_of_hindsight"] == 1.0
    # saved: ours 200 + 5 of run-now's 300 + 200, hindsight 200 + 100, seasonal 50 + 50
    assert summary.loc["prediction"].to_dict() == pytest.approx({
        "days": 2, "saved_g_per_kwh": 102.5, "saved_pct": 41.0, "share_of_hindsight": 205 / 300,
        "same_window": 0.5, "near_hindsight": 0.5})
    assert summary.loc["baseline_seasonal_naive", "share_of_hindsight"] == pytest.approx(1 / 3)
    assert summary.loc["baseline_seasonal_naive", "near_hindsight"] == 0.0
