"""Greek power system, hour by hour: real solar and wind, everything else from a simple dispatch.

Order of the model (all MW, hourly, UTC):
1. demand   = base x hour-of-day shape (local time) x day type (weekday, Saturday,
              Sunday / Greek public holiday, Christmas and August lulls)
              + heating (degrees below 15.5 degC) + cooling (degrees above 22 degC, convex)
              driven by a population-weighted, smoothed temperature of the three cities;
2. net load = demand - solar - wind (ENTSO-E, real);
3. hydro    : a daily energy budget by month (dry 2024, drier 2025) spent on the day's
              highest net-load hours, within 60 MW .. installed capacity;
4. pumped storage ("hydro discharge", 699 MW): pumps (negative) in low net-load hours of
              sunny days, returns 75 % of that energy at the day's evening peak;
5. interconnectors: a net import target (yearly level + a share of the net-load deviation
              + slow AR(1) market noise) split over AL, BG, IT-SO, MK, TR with per-link bias,
              share and capacity;
6. biomass ~80 MW and unknown ~70 MW with slow noise;
7. thermal  = what is left: lignite ("coal") on a weekly committed capacity that declines over
              2024-2025 and runs between 60 % and 100 % of it; gas (marginal) takes the rest,
              with a 350 MW must-run floor. A surplus below the floor is exported, then taken
              off lignite and hydro.
"""

from __future__ import annotations

from pathlib import Path

import holidays
import numpy as np
import pandas as pd

from recgen_common import CAPACITY_MW, LOCATIONS, NEIGHBOURS, TIMEZONE, ar1, hourly_index

# Demand shape by local hour (Europe/Athens), mean ~1.
HOUR_SHAPE = np.array([
    0.88, 0.82, 0.78, 0.76, 0.76, 0.79, 0.86, 0.94, 1.01, 1.05, 1.07, 1.07,
    1.06, 1.04, 1.02, 1.01, 1.03, 1.07, 1.12, 1.17, 1.18, 1.14, 1.06, 0.96,
])
DEMAND_BASE_MW = 5100.0
DEMAND_GROWTH_2025 = 1.015
HEATING_MW_PER_K = 120.0
COOLING_MW = 100.0  # x (T - 22)^1.25
GAS_MUST_RUN_MW = 350.0

HYDRO_MONTHLY_MW = {  # mean hydro output by month (2024 was dry; 2025 drier)
    2024: [620, 680, 700, 620, 500, 450, 560, 500, 320, 260, 330, 480],
    2025: [560, 610, 630, 560, 450, 400, 500, 450, 290, 240, 300, 430],
}
PUMP_THRESHOLD_MW = 2800.0
PUMP_EFFICIENCY = 0.75

NET_IMPORT_MW = {2024: 1000.0, 2025: 900.0}
NET_IMPORT_MONTHLY = [150, 100, -50, -250, -200, 0, 250, 250, 50, -100, 0, 100]
# Interconnectors: (bias MW, share of the net import target, import cap, export cap)
LINKS = {
    "AL": (-100.0, 0.10, 400.0, 400.0),
    "BG": (220.0, 0.40, 1200.0, 900.0),
    "IT-SO": (-250.0, 0.15, 500.0, 500.0),
    "MK": (100.0, 0.20, 500.0, 450.0),
    "TR": (130.0, 0.15, 600.0, 550.0),
}
LIGNITE_START_MW, LIGNITE_END_MW = 540.0, 200.0
LIGNITE_MONTHLY = [1.15, 1.1, 0.85, 0.6, 0.6, 0.9, 1.25, 1.25, 0.95, 0.75, 0.85, 1.1]


def load_entsoe(shared: Path) -> tuple[pd.DataFrame, list[str]]:
    """ENTSO-E solar and onshore wind (MW) on the recording's hours, gaps filled.

    Returns the frame and a note per filled hour.
    """
    idx = hourly_index()
    raw = pd.read_csv(shared / "entsoe" / "GR_solar_wind_2024_2025.csv")
    raw["datetime_utc"] = pd.to_datetime(raw["datetime_utc"], utc=True)
    raw = raw.set_index("datetime_utc")[["Solar_MW", "WindOnshore_MW"]]
    df = raw.reindex(idx).rename(columns={"Solar_MW": "solar", "WindOnshore_MW": "wind"})
    notes = [f"{t:%Y-%m-%dT%H:%MZ}" for t in df.index[df.isna().any(axis=1)]]
    # Solar: the explicit-UTC 2025 export covers the two hours missing at the end of 2025.
    s25 = pd.read_csv(shared / "entsoe" / "GR_solar_2025.csv")
    s25.index = pd.to_datetime(s25["MTU (UTC)"].str[:19], format="%d/%m/%Y %H:%M:%S", utc=True)
    df["solar"] = df["solar"].fillna(s25["Generation (MW)"].reindex(idx))
    # Remaining holes (night hours, DST changes): linear in time; the last hours carry forward.
    df = df.interpolate(limit_direction="both")
    return df, notes


def _local_calendar(idx: pd.DatetimeIndex) -> pd.DataFrame:
    local = idx.tz_convert(TIMEZONE)
    years = sorted(set(local.year))
    gr_holidays = holidays.country_holidays("GR", years=years)
    dates = local.date
    is_holiday = np.array([d in gr_holidays for d in dates])
    return pd.DataFrame({
        "hour": local.hour, "weekday": local.weekday, "month": local.month, "day": local.day,
        "holiday": is_holiday,
    }, index=idx)


def demand(temps: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    idx = hourly_index()
    cal = _local_calendar(idx)
    t = sum(loc.demand_weight * temps[loc.name] for loc in LOCATIONS)
    t_eff = 0.5 * t + 0.5 * pd.Series(t).ewm(halflife=24).mean().to_numpy()
    shape = HOUR_SHAPE[cal.hour.to_numpy()]
    daytype = np.where(cal.weekday.to_numpy() == 5, 0.93, 1.0)
    daytype = np.where((cal.weekday.to_numpy() == 6) | cal.holiday.to_numpy(), 0.87, daytype)
    m, d = cal.month.to_numpy(), cal.day.to_numpy()
    lull = ((m == 12) & (d >= 24)) | ((m == 1) & (d <= 6)) | ((m == 8) & (d >= 5) & (d <= 25))
    daytype = daytype * np.where(lull, 0.95, 1.0)
    growth = np.where(idx.year == 2025, DEMAND_GROWTH_2025, 1.0)
    heat = HEATING_MW_PER_K * np.clip(15.5 - t_eff, 0, None) * (0.7 + 0.3 * shape)
    cool = COOLING_MW * np.clip(t_eff - 22.0, 0, None) ** 1.25 * (0.5 + 0.5 * shape)
    noise = 1 + ar1(rng, len(idx), 0.97, 0.02)
    return (DEMAND_BASE_MW * shape * daytype * growth + heat + cool) * noise


def _daily(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, 24)


def hydro(net_load: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    idx = hourly_index()
    day_idx = idx[::24]
    budget = np.array([HYDRO_MONTHLY_MW[t.year][t.month - 1] for t in day_idx], dtype=float)
    budget *= np.clip(1 + ar1(rng, len(day_idx), 0.8, 0.15), 0.5, 1.6)
    nl = _daily(net_load)
    low = np.quantile(nl, 0.2, axis=1, keepdims=True)
    w = (np.clip(nl - low, 0, None) + 200.0) ** 1.5
    h = budget[:, None] * 24 * w / w.sum(axis=1, keepdims=True)
    return np.clip(h, 60.0, CAPACITY_MW["hydro"]).ravel()


def pumped_storage(net_load: np.ndarray, solar: np.ndarray) -> np.ndarray:
    cap = CAPACITY_MW["hydro storage"]
    nl = _daily(net_load)
    sun = _daily(solar)
    pump = np.where((nl < PUMP_THRESHOLD_MW) & (sun > 2000),
                    np.clip(0.3 * (PUMP_THRESHOLD_MW - nl) + 100.0, 0, cap), 0.0)
    energy_back = PUMP_EFFICIENCY * pump.sum(axis=1)
    order = np.argsort(-nl, axis=1, kind="stable")  # highest net load first
    rank_alloc = np.clip(energy_back[:, None] - 650.0 * np.arange(24)[None, :], 0, 650.0)
    gen = np.zeros_like(nl)
    np.put_along_axis(gen, order, rank_alloc, axis=1)
    gen = np.where(pump > 0, 0.0, gen)
    return (gen - pump).ravel()


def interconnectors(net_load: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    idx = hourly_index()
    level = np.array([NET_IMPORT_MW[y] for y in idx.year]) \
        + np.asarray(NET_IMPORT_MONTHLY, dtype=float)[idx.month - 1]
    deviation = net_load - pd.Series(net_load).rolling(168, min_periods=1, center=True).mean()
    target = level + 0.25 * deviation.to_numpy() + ar1(rng, len(idx), float(np.exp(-1 / 72)), 350)
    total_bias = sum(b for b, *_ in LINKS.values())
    flows = {}
    for zone in NEIGHBOURS:
        bias, share, imp_cap, exp_cap = LINKS[zone]
        f = bias + share * (target - total_bias) + ar1(rng, len(idx), 0.95, 80.0)
        flows[zone] = np.clip(f, -exp_cap, imp_cap)
    return flows


def lignite_commitment(rng: np.random.Generator) -> np.ndarray:
    idx = hourly_index()
    frac = (idx - idx[0]) / (idx[-1] - idx[0])
    trend = LIGNITE_START_MW + (LIGNITE_END_MW - LIGNITE_START_MW) * np.asarray(frac)
    week = ((idx - idx[0]).days // 7).to_numpy()
    z = rng.standard_normal(week.max() + 1)[week]
    on = trend * np.asarray(LIGNITE_MONTHLY)[idx.month - 1] * np.exp(0.35 * z)
    on = np.where(z < -1.6, 0.0, on)
    return np.clip(np.round(on / 150) * 150, 0, CAPACITY_MW["coal"])


def dispatch(solar_wind: pd.DataFrame, temps: dict[str, np.ndarray],
             rng: np.random.Generator) -> pd.DataFrame:
    """The final (true) hourly breakdown: production by source and flow per neighbour (MW)."""
    idx = hourly_index()
    n = len(idx)
    solar = solar_wind["solar"].to_numpy()
    wind = solar_wind["wind"].to_numpy()
    load = demand(temps, rng)
    net_load = load - solar - wind
    hyd = hydro(net_load, rng)
    ps = pumped_storage(net_load, solar)
    flows = interconnectors(net_load, rng)
    biomass = np.clip(80 + ar1(rng, n, 0.995, 15.0), 40, CAPACITY_MW["biomass"])
    unknown = np.clip(70 + ar1(rng, n, 0.99, 18.0), 20, CAPACITY_MW["unknown"])
    on = lignite_commitment(rng)

    net_import = sum(flows.values())
    need = net_load - hyd - ps - net_import - biomass - unknown
    lig = on * (0.6 + 0.4 * np.clip((need - 1500) / 4000, 0, 1))
    gas = need - lig

    # Surplus: export more (links with headroom), then back off lignite, then hydro.
    surplus = np.clip(GAS_MUST_RUN_MW - gas, 0, None)
    headroom = {z: flows[z] + LINKS[z][3] for z in NEIGHBOURS}
    total_head = sum(headroom.values())
    take = np.minimum(surplus, total_head)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(total_head > 0, take / total_head, 0.0)
    for z in NEIGHBOURS:
        flows[z] = flows[z] - frac * headroom[z]
    surplus -= take
    cut = np.minimum(surplus, lig - 0.5 * on)
    lig -= cut
    surplus -= cut
    cut = np.minimum(surplus, hyd - 60.0)
    hyd -= cut
    surplus -= cut
    net_import = sum(flows.values())
    gas = net_load - hyd - ps - net_import - biomass - unknown - lig
    # Whatever is still out of range stays unbalanced: the consumption total absorbs it.
    gas = np.clip(gas, 0, CAPACITY_MW["gas"])

    out = pd.DataFrame(index=idx)
    out["demand_model"] = load
    out["lignite_committed"] = on
    prod = {
        "biomass": biomass, "coal": lig, "wind": wind, "solar": solar, "hydro": hyd,
        "gas": gas, "oil": np.zeros(n), "unknown": unknown, "hydro discharge": ps,
    }
    for source, values in prod.items():
        out[source] = np.round(values)
    for z in NEIGHBOURS:
        out[f"flow_{z}"] = np.round(flows[z])
    return out
