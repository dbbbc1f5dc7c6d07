"""Invariants of the embedded replay recording data/recordings/gr-2024-2025.

These read only the committed files (pandas), except the generator test at the end, which needs
the reference data (../shared/data or $GRIDCAST_SHARED_DATA) and skips without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"
REC = DATA / "recordings" / "gr-2024-2025"
SHARED = Path(os.environ.get("GRIDCAST_SHARED_DATA", REPO.parent / "shared" / "data"))

START = pd.Timestamp("2024-01-01T00:00:00Z")
END = pd.Timestamp("2026-01-01T00:00:00Z")
HOURS = pd.date_range(START, END, freq="h", inclusive="left")

# The deliberate gaps, as listed in data/README.md.
GAPS = pd.DatetimeIndex(pd.to_datetime([
    "2024-02-14T03:00:00Z",
    "2024-06-09T13:00:00Z", "2024-06-09T14:00:00Z", "2024-06-09T15:00:00Z",
    "2024-11-20T22:00:00Z",
    "2025-03-30T01:00:00Z",
    "2025-08-19T21:00:00Z", "2025-08-19T22:00:00Z",
]))

SOURCES = ["nuclear", "geothermal", "biomass", "coal", "wind", "solar", "hydro", "gas", "oil",
           "unknown", "hydro_discharge", "battery_discharge"]
NULL_SOURCES = ["nuclear", "geothermal", "battery_discharge"]  # as in the api-sample for GR
NEIGHBOURS = ["AL", "BG", "IT-SO", "MK", "TR"]
# gCO2eq/kWh: shared/data/README.md for GR; `unknown` and direct storage discharge are the
# Electricity Maps defaults (see data/README.md).
LIFECYCLE = {"nuclear": 5.1, "geothermal": 38, "biomass": 230, "coal": 1537, "wind": 12.6,
             "solar": 26.1, "hydro": 10.7, "gas": 503, "oil": 1125, "unknown": 700,
             "hydro_discharge": 336, "battery_discharge": 336}
DIRECT = {"nuclear": 0, "geothermal": 0, "biomass": 0, "coal": 1524, "wind": 0, "solar": 0,
          "hydro": 0, "gas": 383, "oil": 881, "unknown": 575, "hydro_discharge": 325,
          "battery_discharge": 325}
ENERGY_COLUMNS = (
    ["datetime", "available_at", "updated_at", "created_at", "is_estimated",
     "estimation_method", "carbon_intensity", "carbon_intensity_direct"]
    + [f"production_{s}" for s in SOURCES] + [f"consumption_{s}" for s in SOURCES]
    + [f"import_{z}" for z in NEIGHBOURS] + [f"export_{z}" for z in NEIGHBOURS]
    + ["power_production_total", "power_consumption_total", "power_import_total",
       "power_export_total", "fossil_free_percentage", "renewable_percentage"]
)
VC_COLUMNS = ["temp", "feelslike", "dew", "humidity", "precip", "precipprob", "preciptype",
              "snow", "snowdepth", "windgust", "windspeed", "winddir", "sealevelpressure",
              "cloudcover", "visibility", "solarradiation", "solarenergy", "uvindex",
              "severerisk", "conditions", "icon", "stations"]
LOCATIONS = {"Athens": (37.98, 23.73), "Thessaloniki": (40.64, 22.94), "Patras": (38.25, 21.73)}
TIME_COLUMNS = ["datetime", "available_at", "updated_at", "created_at", "issued_at"]


def _read(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    for c in TIME_COLUMNS:
        if c in df:
            df[c] = pd.to_datetime(df[c], format="%Y-%m-%dT%H:%M:%SZ", utc=True)
    return df


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((REC / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def energy() -> pd.DataFrame:
    return _read(REC / "energy" / "GR.csv.gz")


@pytest.fixture(scope="module")
def final(energy) -> pd.DataFrame:
    return energy[~energy.is_estimated].set_index("datetime").sort_index()


@pytest.fixture(scope="module")
def weather(manifest) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    return {name: (_read(REC / loc["observations"]), _read(REC / loc["forecasts"]))
            for name, loc in manifest["locations"].items()}


# --- manifest and size -----------------------------------------------------------------------
def test_manifest_is_valid(manifest):
    assert manifest["format"] == "gridcast-replay" and manifest["version"] == 1
    assert manifest["name"] == "gr-2024-2025"
    assert (manifest["start"], manifest["end"]) == ("2024-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
    assert manifest["zones"] == {"GR": {"energy": "energy/GR.csv.gz"}}
    assert set(manifest["locations"]) == set(LOCATIONS)
    for name, loc in manifest["locations"].items():
        assert (loc["lat"], loc["lon"]) == LOCATIONS[name]
        assert loc["timezone"] == "Europe/Athens"
        assert (REC / loc["observations"]).is_file() and (REC / loc["forecasts"]).is_file()
    assert "Weather data by Open-Meteo.com (CC BY 4.0)" in manifest["attribution"]
    assert "ENTSO-E Transparency Platform" in manifest["attribution"]


def test_data_folder_is_at_most_10_mb():
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    assert total <= 10 * 1024 * 1024, f"data/ is {total / 1e6:.2f} MB"


def test_gzip_files_carry_no_timestamp():
    for path in REC.rglob("*.csv.gz"):
        header = path.read_bytes()[:10]
        assert header[4:8] == b"\0\0\0\0", f"{path.name} has a gzip mtime"


# --- energy: continuity and totals -----------------------------------------------------------
def test_energy_columns_are_the_documented_ones(energy):
    assert list(energy.columns) == ENERGY_COLUMNS


def test_energy_is_hourly_apart_from_the_listed_gaps(energy):
    published = pd.DatetimeIndex(energy.datetime.unique()).sort_values()
    assert published.equals(HOURS.difference(GAPS))
    assert len(GAPS) <= 12


def test_every_published_hour_has_exactly_one_final_revision(energy):
    finals = energy[~energy.is_estimated].groupby("datetime").size()
    assert len(finals) == len(HOURS) - len(GAPS) and (finals == 1).all()


def test_null_sources_are_null_and_the_rest_are_numbers(energy):
    for s in NULL_SOURCES:
        assert energy[f"production_{s}"].isna().all()
    present = [f"production_{s}" for s in SOURCES if s not in NULL_SOURCES]
    assert energy[present].notna().all().all()
    assert (energy.production_oil == 0).all()
    assert energy[[f"consumption_{s}" for s in SOURCES]].notna().all().all()


def test_production_total_is_the_sum_of_positive_production(energy):
    prod = energy[[f"production_{s}" for s in SOURCES]].fillna(0).clip(lower=0)
    assert (prod.sum(axis=1) == energy.power_production_total).all()
    assert (energy[[f"production_{s}" for s in SOURCES if s != "hydro_discharge"]]
            .fillna(0) >= 0).all().all()


def test_import_export_totals_are_sums_and_links_are_net(energy):
    imp = energy[[f"import_{z}" for z in NEIGHBOURS]]
    exp = energy[[f"export_{z}" for z in NEIGHBOURS]]
    assert (imp.sum(axis=1) == energy.power_import_total).all()
    assert (exp.sum(axis=1) == energy.power_export_total).all()
    assert ((imp >= 0).all().all() and (exp >= 0).all().all())
    assert ((imp.to_numpy() == 0) | (exp.to_numpy() == 0)).all()


def test_consumption_balances_production_flows_and_pumping(energy):
    pumping = (-energy.production_hydro_discharge).clip(lower=0)
    expected = (energy.power_production_total + energy.power_import_total
                - energy.power_export_total - pumping)
    assert (energy.power_consumption_total == expected).all()
    cons = energy[[f"consumption_{s}" for s in SOURCES]]
    assert (cons.sum(axis=1) == energy.power_consumption_total).all()
    assert (cons >= 0).all().all()


def test_pumped_storage_pumps_at_solar_peaks(final):
    pumping = final[final.production_hydro_discharge < 0]
    assert len(pumping) > 1000
    assert pumping.index.hour.isin(range(5, 16)).mean() > 0.95


# --- intensity and percentages ---------------------------------------------------------------
@pytest.mark.parametrize("column,factors", [("carbon_intensity", LIFECYCLE),
                                            ("carbon_intensity_direct", DIRECT)])
def test_intensity_is_the_production_weighted_factor(energy, column, factors):
    prod = energy[[f"production_{s}" for s in SOURCES]].fillna(0).clip(lower=0)
    weights = np.array([factors[s] for s in SOURCES])
    expected = prod.to_numpy() @ weights / prod.sum(axis=1).to_numpy()
    assert np.abs(energy[column].to_numpy() - expected).max() <= 0.5 + 1e-6


def test_percentages_follow_the_production_mix(energy):
    """Electricity Maps defaults: coal, gas, oil, unknown are fossil; all else is fossil-free,
    and renewable unless nuclear (storage discharge counts as renewable)."""
    prod = energy[[f"production_{s}" for s in SOURCES]].fillna(0).clip(lower=0)
    total = prod.sum(axis=1)
    fossil = prod[[f"production_{s}" for s in ("coal", "gas", "oil", "unknown")]].sum(axis=1)
    fossil_free = 100 * (total - fossil) / total
    renewable = 100 * (total - fossil - prod.production_nuclear) / total
    assert (np.abs(energy.fossil_free_percentage - fossil_free) <= 0.5 + 1e-6).all()
    assert (np.abs(energy.renewable_percentage - renewable) <= 0.5 + 1e-6).all()


def test_yearly_mean_intensity_is_realistic(final):
    by_year = final.carbon_intensity.groupby(final.index.year).mean()
    assert 240 <= by_year[2024] <= 290  # Electricity Maps: about 265 for GR in 2024
    assert by_year[2025] < by_year[2024]
    daily = final.carbon_intensity.groupby(final.index.hour).mean()
    assert daily.idxmin() in range(8, 13) and daily.idxmax() in (*range(20, 24), *range(0, 4))


# --- revisions -------------------------------------------------------------------------------
def test_revision_timestamps_are_ordered(energy):
    assert (energy.created_at <= energy.updated_at).all()
    assert (energy.updated_at <= energy.available_at).all()
    for col in ("available_at", "updated_at"):
        steps = energy.groupby("datetime")[col].diff().dropna()
        assert (steps > pd.Timedelta(0)).all(), f"{col} not increasing within an hour"


def test_every_estimate_is_revised_later_by_exact_values(energy):
    last = energy.groupby("datetime").tail(1)
    assert not last.is_estimated.any()
    est = energy[energy.is_estimated]
    assert (est.estimation_method == "TIME_SLICER_AVERAGE").all()
    assert energy.loc[~energy.is_estimated, "estimation_method"].isna().all()
    fin = energy[~energy.is_estimated].set_index("datetime")
    joined = est.join(fin[["available_at", "updated_at", "production_gas"]], on="datetime",
                      rsuffix="_final")
    assert (joined.available_at_final > joined.available_at).all()
    assert (joined.updated_at_final > joined.updated_at).all()
    assert (joined.production_gas != joined.production_gas_final).mean() > 0.9


def _visible(energy: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """What the history endpoint shows at `now` (docs/replay-format.md): for each hour
    H-23 .. H, the revision with the greatest available_at <= now. `energy` is sorted by
    datetime."""
    hour = now.floor("h")
    lo = energy.datetime.searchsorted(hour - pd.Timedelta(hours=23), side="left")
    hi = energy.datetime.searchsorted(hour, side="right")
    window = energy.iloc[lo:hi]
    window = window[window.available_at <= now]
    return window.sort_values(["datetime", "available_at"]).groupby("datetime").tail(1)


def test_history_shows_the_newest_one_or_two_hours_estimated(energy):
    rng = np.random.default_rng(0)
    seconds = rng.integers(0, int((END - START).total_seconds()) - 86400, 120) + 86400
    counts, newest_estimated = [], []
    for s in seconds:
        now = START + pd.Timedelta(seconds=int(s))
        view = _visible(energy, now)
        counts.append(int(view.is_estimated.sum()))
        newest_estimated.append(bool(view.is_estimated.iloc[-1]))
        # only recent hours are still estimated: finals come at most 5 h 13 min after the hour
        age = now.floor("h") - view.loc[view.is_estimated, "datetime"]
        assert (age <= pd.Timedelta(hours=5)).all()
    assert np.mean(newest_estimated) > 0.9
    assert np.median(counts) in (1, 1.5, 2) and max(counts) <= 6


def test_some_hours_are_first_published_late(energy):
    first = energy.groupby("datetime").available_at.min()
    delay = first - first.index
    late = delay[delay >= pd.Timedelta(hours=4)]
    assert 10 <= len(late) <= 60
    late_rows = energy[energy.datetime.isin(late.index)]
    assert not late_rows.is_estimated.any()


# --- weather ---------------------------------------------------------------------------------
def test_observations_are_hourly_complete_with_stations(weather):
    for name, (obs, _) in weather.items():
        assert list(obs.columns) == ["datetime", *VC_COLUMNS]
        assert pd.DatetimeIndex(obs.datetime).equals(HOURS), name
        assert obs.stations.notna().all() and (obs.stations.str.len() > 0).all()
        numeric = [c for c in VC_COLUMNS
                   if c not in ("preciptype", "conditions", "icon", "stations", "severerisk")]
        assert obs[numeric].notna().all().all(), name


def test_observations_are_physically_plausible(weather):
    for name, (obs, _) in weather.items():
        assert obs.temp.between(-15, 46).all() and obs.humidity.between(0, 100).all()
        assert (obs.dew <= obs.temp).all()
        assert obs.windspeed.between(0, 120).all() and (obs.windgust >= obs.windspeed).all()
        assert obs.winddir.between(0, 360).all() and obs.cloudcover.between(0, 100).all()
        assert obs.sealevelpressure.between(960, 1060).all()
        assert ((obs.precip > 0) == obs.preciptype.notna()).all()
        # radiation at hour start: peak near local solar noon (~10:30 UTC), dark at night
        by_hour = obs.groupby(obs.datetime.dt.hour).solarradiation.mean()
        assert by_hour.idxmax() in (9, 10, 11), name
        assert by_hour.loc[[19, 20, 21, 22, 23, 0, 1, 2]].max() == 0, name


def test_forecast_vintages_cover_the_next_54_hours(weather):
    for name, (_, fc) in weather.items():
        assert list(fc.columns) == ["issued_at", "datetime", *VC_COLUMNS]
        assert fc.stations.isna().all()
        issued = pd.DatetimeIndex(fc.issued_at.unique())
        assert issued.equals(pd.date_range(START, END, freq="12h", inclusive="left")), name
        lead = (fc.datetime - fc.issued_at) / pd.Timedelta(hours=1)
        assert lead.min() == 1 and lead.max() == 54
        complete = fc[fc.issued_at <= END - pd.Timedelta(hours=54)]
        assert (complete.groupby("issued_at").size() == 54).all()
        assert (fc.datetime < END).all()


def test_forecast_error_grows_with_lead_time(weather):
    for name, (obs, fc) in weather.items():
        m = fc.merge(obs, on="datetime", suffixes=("_f", ""))
        lead = (m.datetime - m.issued_at) / pd.Timedelta(hours=1)
        bucket = pd.cut(lead, [0, 6, 24, 42, 54])
        for var in ("temp", "windspeed", "cloudcover", "humidity"):
            rmse = ((m[f"{var}_f"] - m[var]) ** 2).groupby(bucket, observed=True).mean() ** 0.5
            assert rmse.is_monotonic_increasing, (name, var, rmse.round(2).tolist())
            assert rmse.iloc[-1] > 2 * rmse.iloc[0], (name, var)


# --- generator -------------------------------------------------------------------------------
@pytest.mark.skipif(not (SHARED / "entsoe").is_dir(), reason="reference data not available")
def test_rerunning_the_generator_on_a_span_reproduces_the_committed_rows(tmp_path):
    """A fresh run (another process, another day) writes exactly the committed rows.

    The committed files come from an earlier run, so this is the re-run determinism check; it
    also fails when the generator changed and the recording was not rebuilt (then run
    scripts/build_recording.py). Byte identity of whole files is the gzip header check above
    plus identical text.
    """
    start, end = "2025-03-26", "2025-03-31"  # a late hour (03-26 23h), a gap, the DST change
    cmd = [sys.executable, str(REPO / "scripts" / "build_recording.py"), "--quiet",
           "--shared-data", str(SHARED), "--out", str(tmp_path), "--start", start, "--end", end]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.csv.gz"))
    assert len(files) == 7
    for f in files:
        span = pd.read_csv(tmp_path / f, dtype=str, keep_default_na=False)
        full = pd.read_csv(REC / f, dtype=str, keep_default_na=False)
        key = "issued_at" if "fcst" in f.name else "datetime"
        committed = full[(full[key] >= start) & (full[key] < end)].reset_index(drop=True)
        assert len(span) > 0
        pd.testing.assert_frame_equal(span, committed, obj=str(f))
