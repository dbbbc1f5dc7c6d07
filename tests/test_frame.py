"""The point-in-time frame: hand-checked values per column, gaps, late hours, leak canaries.

The history: hour i (from BASE) has carbon intensity 100 + i, published exactly one hour after
its start (available_at = hour + 1 h, so at issue hour T the newest known hour is T - 1 h), and
renewable_percentage i. T0 = BASE + 200 h, so at T0 hour 199 (ci 299) is the newest known.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gridcast.config import Location, ZoneConfig
from gridcast.errors import GridcastError
from gridcast.config import ConfigError
from gridcast.frame import (
    FRAME_KEYS, TARGET, FrameError, FrameSettings, build_frame, feature_columns,
)

BASE = pd.Timestamp("2024-03-01T00:00Z")
HOUR = pd.Timedelta(hours=1)
T0 = BASE + 200 * HOUR
ZONE = ZoneConfig(
    id="GR", name="Greece", country="GR", timezone="Europe/Athens", neighbours=(),
    locations=(Location("Athens", 37.98, 23.73),),
)
WEATHER = [f"athens_{v}" for v in ("temp", "humidity", "cloudcover", "solarradiation",
                                   "windspeed", "precip")]


def at(hour: int) -> pd.Timestamp:
    return BASE + hour * HOUR


def history(hours: int = 240, skip: tuple[int, ...] = ()) -> pd.DataFrame:
    kept = [i for i in range(hours) if i not in skip]
    stamps = pd.DatetimeIndex([at(i) for i in kept])
    return pd.DataFrame({
        "datetime": stamps,
        "available_at": stamps + HOUR,
        "carbon_intensity": [100.0 + i for i in kept],
        "is_estimated": False,
        "renewable_percentage": [float(i) for i in kept],
    })


def revision(hour: int, available: pd.Timestamp, ci: float, **extra) -> pd.DataFrame:
    return pd.DataFrame({"datetime": [at(hour)], "available_at": [available],
                         "carbon_intensity": [ci], "is_estimated": [True], **extra})


def vintage(fetched: pd.Timestamp, first: int, last: int, temp: float) -> pd.DataFrame:
    """One vintage with rows for hours first..last: temp = `temp` + hour offset / 1000."""
    hours = range(first, last + 1)
    return pd.DataFrame({"fetched_at": fetched, "datetime": [at(i) for i in hours],
                         "athens_temp": [temp + i / 1000 for i in hours]})


def frame(revisions: pd.DataFrame, *issued: pd.Timestamp, horizon: int = 24,
          **kwargs) -> pd.DataFrame:
    return build_frame(revisions, zone=ZONE, issue_hours=pd.DatetimeIndex(list(issued)),
                       horizon=horizon, **kwargs)


def row(result: pd.DataFrame, issued: pd.Timestamp, horizon: int) -> pd.Series:
    match = result[(result["issued_at"] == issued) & (result["horizon"] == horizon)]
    assert len(match) == 1
    return match.iloc[0]


def rows_for(result: pd.DataFrame, issued: pd.Timestamp, drop=(TARGET,)) -> pd.DataFrame:
    return result[result["issued_at"] == issued].drop(columns=list(drop)).reset_index(drop=True)


def test_older_same_hour_values_profiles_and_rolling_quantiles_as_known_at_t():
    # ci = 100 + i at hour i, known an hour later: at T0 (hour 200) the newest known hour is 199.
    result = frame(history(), T0)
    first = row(result, T0, 1)
    assert first["ci_same_hour_last_day"] == 277.0  # hour 177
    assert [first[f"ci_same_hour_d{d}"] for d in range(2, 8)] == [253.0, 229.0, 205.0, 181.0,
                                                                 157.0, 133.0]
    # A linear series: yesterday's (and last week's mean) movement from L to the target hour,
    # carried from the level now, lands on the target exactly.
    assert first["ci_profile_1d"] == first["target"] == 301.0
    assert first["ci_profile_7d"] == 301.0
    # h = 24: the same hour a day back (200) is not known at T0 yet, so the newest known one is
    # two days back (176), the second newest three days back.
    last = row(result, T0, 24)
    assert last["ci_same_hour_last_day"] == 276.0 and last["ci_same_hour_d2"] == 252.0
    assert first["ci_q10_24h"] == pytest.approx(278.3)
    assert first["ci_q90_24h"] == pytest.approx(296.7)


# --- the contract --------------------------------------------------------------------------------

def test_columns_are_the_documented_contract_in_order():
    result = frame(history(), T0)
    assert list(result.columns) == [
        "zone", "issued_at", "horizon", "datetime", "target", "ci_last", "ci_last_age_h",
        "renewable_percentage_last", "ci_lag_1h", "ci_lag_2h", "ci_lag_3h", "ci_lag_24h",
        "ci_target_m24", "ci_target_m48", "ci_target_m168", "ci_same_hour_last_day",
        "ci_same_hour_mean_7d", *[f"ci_same_hour_d{d}" for d in range(2, 8)], "ci_profile_1d",
        "ci_profile_7d", "ci_mean_24h", "ci_min_24h", "ci_max_24h", "ci_std_24h", "ci_q10_24h",
        "ci_q90_24h", "ci_mean_168h", "ci_min_168h", "ci_max_168h", "ci_std_168h",
        "ci_q10_168h", "ci_q90_168h", *WEATHER,
        "weather_lead_h", "weather_is_fallback", "weather_missing", "hour_local",
        "day_of_week_local", "month_local", "is_holiday", "is_weekend",
    ]
    assert FRAME_KEYS == ("zone", "issued_at", "horizon", "datetime") and TARGET == "target"


def test_key_dtypes_are_utc_nanoseconds_and_integer_horizon():
    result = frame(history(), T0)
    assert str(result["issued_at"].dtype) == "datetime64[ns, UTC]"
    assert str(result["datetime"].dtype) == "datetime64[ns, UTC]"
    assert result["horizon"].dtype == np.int64
    assert (result["datetime"] == result["issued_at"] + result["horizon"] * HOUR).all()
    assert set(result["zone"]) == {"GR"}


def test_feature_columns_are_all_but_zone_times_and_target():
    result = frame(history(), T0)
    features = feature_columns(result)
    assert "horizon" in features and "ci_last" in features and "athens_temp" in features
    assert not {"zone", "issued_at", "datetime", "target"} & set(features)
    assert len(features) == len(result.columns) - 4


@pytest.mark.parametrize("horizon", [1, 24, 48, 72])
def test_horizon_gives_rows_1_to_h_per_issue_hour(horizon):
    result = frame(history(), T0, T0 + HOUR, horizon=horizon)
    assert len(result) == 2 * horizon
    assert list(result["horizon"][:horizon]) == list(range(1, horizon + 1))


def test_rows_are_sorted_and_duplicate_issue_hours_built_once():
    result = frame(history(), T0 + HOUR, T0, T0, horizon=2)
    assert list(result["issued_at"]) == [T0, T0, T0 + HOUR, T0 + HOUR]
    assert list(result["horizon"]) == [1, 2, 1, 2]


# --- values, hand-checked ------------------------------------------------------------------------

def test_latest_known_value_and_its_age():
    result = row(frame(history(), T0), T0, 1)
    assert result["ci_last"] == 299 and result["ci_last_age_h"] == 1
    assert result["renewable_percentage_last"] == 199


def test_a_value_published_exactly_at_t_is_known_at_t():
    # hour 199 is available at exactly T0; one nanosecond later it is not yet known at T0
    late = history()
    late.loc[late["datetime"] == at(199), "available_at"] = T0 + pd.Timedelta(1, "ns")
    assert row(frame(history(), T0), T0, 1)["ci_lag_1h"] == 299
    assert math.isnan(row(frame(late, T0), T0, 1)["ci_lag_1h"])


def test_lags_are_hour_t_minus_k_as_known_at_t():
    result = row(frame(history(), T0), T0, 5)
    assert [result[f"ci_lag_{k}h"] for k in (1, 2, 3, 24)] == [299, 298, 297, 276]


def test_target_hour_history_is_nan_where_still_in_the_future():
    result = frame(history(hours=300), T0, horizon=30)
    first, late = row(result, T0, 1), row(result, T0, 30)
    # h = 1: t = 201, so 177, 153 and 33
    history_of_target = [first[f"ci_target_m{k}"] for k in (24, 48, 168)]
    assert history_of_target == [277, 253, 133]
    # h = 30: t = 230, t - 24 = 206 is after T0
    assert math.isnan(late["ci_target_m24"]) and late["ci_target_m48"] == 282


def test_same_hour_last_day_falls_back_to_two_days_when_yesterday_is_unknown():
    result = frame(history(), T0, horizon=30)
    assert row(result, T0, 1)["ci_same_hour_last_day"] == 277
    assert row(result, T0, 30)["ci_same_hour_last_day"] == 282


def test_same_hour_mean_is_over_the_seven_newest_known_days():
    assert row(frame(history(), T0), T0, 1)["ci_same_hour_mean_7d"] == pytest.approx(205)
    # hour 153 missing: the 8th day back (hour 9) joins the mean instead
    gap = row(frame(history(skip=(153,)), T0), T0, 1)
    expected = np.mean([277, 229, 205, 181, 157, 133, 109])
    assert gap["ci_same_hour_mean_7d"] == pytest.approx(expected)
    assert gap["ci_same_hour_last_day"] == 277


def test_rolling_windows_end_at_the_last_known_hour():
    result = row(frame(history(), T0), T0, 1)
    assert result["ci_mean_24h"] == pytest.approx(287.5)
    assert (result["ci_min_24h"], result["ci_max_24h"]) == (276, 299)
    assert result["ci_std_24h"] == pytest.approx(np.std(np.arange(276, 300), ddof=1))
    assert result["ci_mean_168h"] == pytest.approx(215.5)
    assert (result["ci_min_168h"], result["ci_max_168h"]) == (132, 299)
    assert result["ci_std_168h"] == pytest.approx(math.sqrt(168 * 169 / 12))


def test_rolling_windows_skip_gaps_instead_of_filling_them():
    result = row(frame(history(skip=(190, 191)), T0), T0, 1)
    values = [v for v in range(276, 300) if v not in (290, 291)]
    assert result["ci_mean_24h"] == pytest.approx(np.mean(values))
    assert result["ci_std_24h"] == pytest.approx(np.std(values, ddof=1))
    after_gap = T0 - 9 * HOUR  # hour 191: its lag 1 h is the missing hour 190, not hour 189
    assert math.isnan(row(frame(history(skip=(190,)), after_gap), after_gap, 1)["ci_lag_1h"])


def test_hours_not_yet_published_move_the_last_known_hour_back():
    # hours 198 and 199 arrive late (after T0): at T0 the newest known hour is 197
    late = history()
    late.loc[late["datetime"].isin([at(198), at(199)]), "available_at"] = T0 + 5 * HOUR
    result = row(frame(late, T0), T0, 1)
    assert (result["ci_last"], result["ci_last_age_h"]) == (297, 3)
    assert math.isnan(result["ci_lag_1h"]) and math.isnan(result["ci_lag_2h"])
    assert result["ci_lag_3h"] == 297
    assert result["ci_mean_24h"] == pytest.approx(np.mean(np.arange(274, 298)))


def test_a_late_hour_counts_only_from_when_it_arrived():
    # hour 150 (ci 250) is published at hour 198 instead of 151
    late = history()
    late.loc[late["datetime"] == at(150), "available_at"] = at(198)
    result = frame(late, at(174), at(197), at(198))
    assert math.isnan(row(result, at(174), 1)["ci_lag_24h"])
    before_arrival = [v for v in range(129, 297) if v != 250]
    assert row(result, at(197), 1)["ci_mean_168h"] == pytest.approx(np.mean(before_arrival))
    assert row(result, at(198), 1)["ci_mean_168h"] == pytest.approx(np.mean(range(130, 298)))


def test_mix_last_uses_that_columns_own_newest_known_value():
    # the newest revision of hour 199 carries no renewable_percentage: the value stays hour 198's
    revisions = history()
    revisions.loc[revisions["datetime"] == at(199), "renewable_percentage"] = np.nan
    result = row(frame(revisions, T0), T0, 1)
    assert result["ci_last"] == 299 and result["renewable_percentage_last"] == 198


def test_a_revision_without_a_value_keeps_the_previous_value_of_that_column():
    revisions = history()
    revisions.loc[revisions["datetime"] == at(199), "available_at"] = T0 - pd.Timedelta(minutes=10)
    revisions = pd.concat([revisions, revision(199, T0 - pd.Timedelta(minutes=5), np.nan,
                                               renewable_percentage=[55.0])])
    result = row(frame(revisions, T0), T0, 1)
    assert result["ci_lag_1h"] == 299 and result["renewable_percentage_last"] == 55


def test_an_estimate_is_a_feature_at_t_and_the_final_value_is_the_target():
    # hour 199: estimate 999 at 199h50m, final 299 only at 202h
    revisions = history()
    revisions.loc[revisions["datetime"] == at(199), "available_at"] = at(202)
    revisions = pd.concat([revisions, revision(199, at(199) + pd.Timedelta(minutes=50), 999.0)])
    result = frame(revisions, at(198), T0, at(202))
    assert row(result, at(198), 1)["target"] == 299
    assert row(result, T0, 1)["ci_last"] == 999 and row(result, T0, 1)["ci_lag_1h"] == 999
    assert row(result, at(202), 1)["ci_lag_3h"] == 299


def test_same_instant_revisions_are_ordered_by_updated_at():
    revisions = history()
    revisions["updated_at"] = revisions["available_at"] - pd.Timedelta(minutes=2)
    newer = revision(199, T0, 500.0, updated_at=[T0 - pd.Timedelta(minutes=1)])
    older = revision(199, T0, 400.0, updated_at=[T0 - pd.Timedelta(minutes=3)])
    result = row(frame(pd.concat([newer, revisions, older]), T0), T0, 1)
    assert result["ci_lag_1h"] == 500


def test_target_is_the_final_value_of_t_plus_h():
    result = frame(history(), T0, horizon=3)
    assert list(result["target"]) == [301, 302, 303]


def test_scoring_rows_at_the_newest_issue_hour_have_no_target():
    revisions = history(hours=240)
    latest = revisions["available_at"].max().floor("h")
    result = frame(revisions, latest, horizon=24)
    assert result["target"].isna().all()
    assert row(result, latest, 1)["ci_last"] == 339


def test_rows_of_an_issue_hour_are_the_same_in_a_range_and_alone():
    revisions = history()
    alone = frame(revisions, T0, horizon=48)
    issued = pd.date_range(T0 - 30 * HOUR, T0 + 30 * HOUR, freq="h")
    in_range = frame(revisions, *issued, horizon=48)
    pd.testing.assert_frame_equal(rows_for(in_range, T0, drop=()), rows_for(alone, T0, drop=()))


def test_rows_of_another_zone_are_ignored():
    other = history().assign(zone="DE", carbon_intensity=1.0)
    mine = history().assign(zone="GR")
    both = frame(pd.concat([other, mine]), T0)
    pd.testing.assert_frame_equal(both, frame(history(), T0))


def test_issue_hours_before_any_data_give_null_features_not_errors():
    result = row(frame(history(), BASE - 5 * HOUR), BASE - 5 * HOUR, 5)
    assert math.isnan(result["ci_last"]) and math.isnan(result["ci_last_age_h"])
    assert math.isnan(result["ci_mean_168h"]) and math.isnan(result["ci_std_24h"])
    assert result["target"] == 100


def test_build_is_deterministic_whatever_the_input_row_order():
    revisions = pd.concat([history(skip=(150, 190)), revision(199, T0 - HOUR, 999.0)])
    vintages = pd.concat([vintage(T0 - 6 * HOUR, 195, 230, 10.0),
                          vintage(T0 - 3 * HOUR, 198, 210, 20.0)])
    issued = pd.date_range(T0 - 48 * HOUR, T0 + 20 * HOUR, freq="h")
    first = build_frame(revisions, zone=ZONE, issue_hours=issued, horizon=24, vintages=vintages)
    shuffled = build_frame(revisions.sample(frac=1, random_state=3), zone=ZONE,
                           issue_hours=issued[::-1], horizon=24,
                           vintages=vintages.sample(frac=1, random_state=4))
    pd.testing.assert_frame_equal(first, shuffled)
    pd.testing.assert_frame_equal(first, build_frame(revisions, zone=ZONE, issue_hours=issued,
                                                     horizon=24, vintages=vintages))


# --- leak canaries: what becomes known after T never changes T's rows --------------------------

def _later_revision(revisions, vintages):
    return pd.concat([revisions, revision(199, T0 + pd.Timedelta(minutes=1), 5000.0)]), vintages


def _later_revision_of_every_hour(revisions, vintages):
    return pd.concat([revisions, revisions.assign(available_at=T0 + 2 * HOUR,
                                                  carbon_intensity=-1.0)]), vintages


def _later_vintage(revisions, vintages):
    return revisions, pd.concat([vintages, vintage(T0 + pd.Timedelta(minutes=1), 199, 260, 77.0)])


def _later_hours(revisions, vintages):
    return pd.concat([revisions, revision(200, T0 + 30 * pd.Timedelta(minutes=1), 7000.0),
                      revision(201, at(202), 7001.0)]), vintages


def _late_arriving_hour(revisions, vintages):
    # hour 190 was a gap at T0 and arrives after it
    return pd.concat([revisions, revision(190, T0 + HOUR, 8000.0)]), vintages


@pytest.mark.parametrize("change", [
    _later_revision, _later_revision_of_every_hour, _later_vintage, _later_hours,
    _late_arriving_hour,
])
def test_what_becomes_known_after_t_does_not_change_ts_rows(change):
    revisions = history(skip=(190,))
    vintages = vintage(T0 - 6 * HOUR, 195, 230, 10.0)
    issued = pd.date_range(T0 - 10 * HOUR, T0 + 10 * HOUR, freq="h")
    before = build_frame(revisions, zone=ZONE, issue_hours=issued, horizon=48, vintages=vintages)
    changed_revisions, changed_vintages = change(revisions, vintages)
    after = build_frame(changed_revisions, zone=ZONE, issue_hours=issued, horizon=48,
                        vintages=changed_vintages)
    pd.testing.assert_frame_equal(rows_for(after, T0), rows_for(before, T0))
    # the canary can fail: the change is visible to a later issue hour
    later = T0 + 3 * HOUR
    assert not rows_for(after, later).equals(rows_for(before, later))


# --- weather -------------------------------------------------------------------------------------

def test_weather_is_from_the_newest_vintage_fetched_at_or_before_t():
    vintages = pd.concat([
        vintage(T0 - 6 * HOUR, 195, 230, 10.0),
        vintage(T0 - HOUR, 200, 210, 20.0),            # newer but reaches only hour 210
        vintage(T0 + pd.Timedelta(minutes=1), 201, 260, 30.0),  # after T0: never used at T0
    ])
    result = frame(history(), T0, horizon=48, vintages=vintages)
    near, far, beyond = row(result, T0, 1), row(result, T0, 20), row(result, T0, 40)
    assert near["athens_temp"] == pytest.approx(20.201) and near["weather_lead_h"] == 2
    assert far["athens_temp"] == pytest.approx(10.220) and far["weather_lead_h"] == 26
    assert not near["weather_missing"] and not far["weather_is_fallback"]
    assert beyond["weather_missing"] and not beyond["weather_is_fallback"]
    assert all(math.isnan(beyond[c]) for c in [*WEATHER, "weather_lead_h"])


def test_a_vintage_fetched_exactly_at_t_is_used_and_lead_keeps_minutes():
    fetched = T0 - pd.Timedelta(minutes=30)
    vintages = pd.concat([vintage(fetched, 200, 230, 10.0), vintage(T0, 201, 230, 40.0)])
    result = frame(history(), T0 - HOUR, T0, vintages=vintages)
    assert row(result, T0, 1)["athens_temp"] == pytest.approx(40.201)
    assert row(result, T0 - HOUR, 1)["weather_missing"]
    later = frame(history(), T0, vintages=vintage(fetched, 200, 230, 10.0))
    assert row(later, T0, 1)["weather_lead_h"] == pytest.approx(1.5)


def test_weather_columns_absent_from_the_vintages_are_null_not_missing_rows():
    result = row(frame(history(), T0, vintages=vintage(T0 - HOUR, 199, 230, 10.0)), T0, 1)
    assert not result["weather_missing"] and math.isnan(result["athens_humidity"])


def test_observation_fallback_fills_unreached_hours_flagged_as_fallback():
    observations = pd.DataFrame({"datetime": [at(i) for i in range(190, 260)],
                                 "athens_temp": [float(i) for i in range(190, 260)]})
    vintages = vintage(T0 - HOUR, 200, 210, 20.0)
    settings = FrameSettings(weather_fallback="observations")
    result = frame(history(), T0, horizon=72, vintages=vintages, observations=observations,
                   settings=settings)
    forecast, observed, nothing = row(result, T0, 5), row(result, T0, 30), row(result, T0, 65)
    assert forecast["athens_temp"] == pytest.approx(20.205) and not forecast["weather_is_fallback"]
    assert observed["athens_temp"] == 230 and observed["weather_is_fallback"]
    assert math.isnan(observed["weather_lead_h"]) and not observed["weather_missing"]
    assert nothing["weather_missing"] and math.isnan(nothing["athens_temp"])


def test_observations_are_not_used_without_the_fallback_setting():
    observations = pd.DataFrame({"datetime": [at(230)], "athens_temp": [1.0]})
    result = row(frame(history(), T0, horizon=30, observations=observations), T0, 30)
    assert result["weather_missing"] and math.isnan(result["athens_temp"])


# --- calendar ------------------------------------------------------------------------------------

def test_calendar_is_local_time_across_the_spring_dst_change():
    # Greece moves to UTC+3 at 2024-03-31 01:00 UTC; that day is a Sunday
    issued = pd.Timestamp("2024-03-30T23:00Z")
    result = frame(history(hours=800), issued, horizon=2)
    before, after = row(result, issued, 1), row(result, issued, 2)
    assert (before["hour_local"], after["hour_local"]) == (2, 4)
    assert before["day_of_week_local"] == 7 and before["is_weekend"] and not before["is_holiday"]
    assert before["month_local"] == 3


def test_national_holidays_and_weekdays_of_the_local_date():
    # 2024-03-25 (Monday) is Greek Independence Day; 21:00 UTC on the 24th is already the 25th
    issued = pd.Timestamp("2024-03-24T20:00Z")
    result = frame(history(hours=800), issued, horizon=2)
    assert not row(result, issued, 1)["is_holiday"]  # 23:00 local on Sunday the 24th
    monday = row(result, issued, 2)
    assert monday["is_holiday"] and monday["day_of_week_local"] == 1 and not monday["is_weekend"]


# --- bad input -----------------------------------------------------------------------------------

def test_frame_error_is_a_gridcast_error():
    assert issubclass(FrameError, GridcastError)


@pytest.mark.parametrize("column", ["datetime", "available_at", "carbon_intensity", "is_estimated"])
def test_a_missing_revision_column_is_named(column):
    with pytest.raises(FrameError, match=f"revisions lacks required column.*{column}"):
        frame(history().drop(columns=[column]), T0)


def test_naive_datetimes_are_refused_with_the_column():
    naive = history()
    naive["available_at"] = naive["available_at"].dt.tz_localize(None)
    with pytest.raises(FrameError, match="revisions.available_at must be tz-aware UTC"):
        frame(naive, T0)
    with pytest.raises(FrameError, match="issue_hours.*tz-aware"):
        build_frame(history(), zone=ZONE, issue_hours=pd.DatetimeIndex([T0.tz_localize(None)]),
                    horizon=24)


def test_non_hourly_datetimes_are_refused_with_the_column():
    shifted = history()
    shifted.loc[0, "datetime"] = BASE + pd.Timedelta(minutes=30)
    with pytest.raises(FrameError, match="revisions.datetime must be whole hours"):
        frame(shifted, T0)
    with pytest.raises(FrameError, match="vintages.datetime must be whole hours"):
        frame(history(), T0, vintages=vintage(T0, 201, 205, 1.0).assign(
            datetime=lambda v: v["datetime"] + pd.Timedelta(minutes=5)))
    with pytest.raises(FrameError, match="issue_hours must be whole hours, got 2024-03-09 08:01"):
        frame(history(), T0 + pd.Timedelta(minutes=1))


def test_missing_vintage_column_is_named():
    with pytest.raises(FrameError, match="vintages lacks required column.*fetched_at"):
        frame(history(), T0, vintages=vintage(T0, 201, 205, 1.0).drop(columns=["fetched_at"]))


@pytest.mark.parametrize("horizon", [0, 73, -1, 2.5])
def test_horizon_outside_1_to_72_is_refused(horizon):
    with pytest.raises(FrameError, match="horizon must be an integer between 1 and 72"):
        frame(history(), T0, horizon=horizon)


def test_duplicate_observation_hours_are_refused():
    observations = pd.DataFrame({"datetime": [at(201), at(201)], "athens_temp": [1.0, 2.0]})
    with pytest.raises(FrameError, match="observations.datetime has duplicate hours"):
        frame(history(), T0, observations=observations,
              settings=FrameSettings(weather_fallback="observations"))


def test_settings_from_mapping_and_their_errors():
    settings = FrameSettings.from_mapping({
        "weather_fallback": "observations", "mix_columns": ["production_wind"],
        "same_hour_days": "5",
    })
    assert settings == FrameSettings(weather_fallback="observations",
                                     mix_columns=("production_wind",), same_hour_days=5)
    assert FrameSettings.from_mapping(None) == FrameSettings()
    with pytest.raises(ConfigError, match="unknown frame setting.*weather_fallbak"):
        FrameSettings.from_mapping({"weather_fallbak": "none"})
    with pytest.raises(ConfigError, match="weather_fallback must be one of observations, none"):
        FrameSettings.from_mapping({"weather_fallback": "forecast"})
    with pytest.raises(ConfigError, match="search_days .* must be >= frame.same_hour_days"):
        FrameSettings(same_hour_days=20)


def test_an_empty_history_gives_null_features_and_targets():
    empty = history().iloc[0:0]
    result = frame(empty, T0, horizon=3)
    assert len(result) == 3 and result["target"].isna().all() and result["ci_last"].isna().all()
    assert result["ci_same_hour_mean_7d"].isna().all()


def test_mix_columns_absent_from_the_revisions_get_no_last_column():
    result = frame(history().drop(columns=["renewable_percentage"]), T0)
    assert not [c for c in result.columns if c.endswith("_last") and c != "ci_last"]
