"""Electricity Maps rows: totals, consumption breakdown, intensity, percentages and revisions.

Every revision (estimated or final) is a complete, self-consistent breakdown: its totals,
carbon intensities and percentages are computed from its own (integer) production and flows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recgen_common import (
    DIRECT_FACTORS, FOSSIL_FREE, LIFECYCLE_FACTORS, NEIGHBOURS, NULL_PRODUCTION, RENEWABLE,
    SOURCES, col, hourly_index, int_col, iso,
)

# Approximate generation mixes of the neighbours, used only to attribute imports in the
# consumption breakdown (the carbon intensity is production-based, see data/README.md).
NEIGHBOUR_MIX = {
    "AL": {"hydro": 0.95, "solar": 0.04, "unknown": 0.01},
    "BG": {"nuclear": 0.38, "coal": 0.32, "hydro": 0.08, "gas": 0.06, "solar": 0.10,
           "wind": 0.03, "biomass": 0.02, "unknown": 0.01},
    "IT-SO": {"gas": 0.42, "solar": 0.22, "wind": 0.25, "hydro": 0.04, "biomass": 0.04,
              "unknown": 0.03},
    "MK": {"coal": 0.45, "hydro": 0.22, "gas": 0.13, "solar": 0.12, "wind": 0.05,
           "unknown": 0.03},
    "TR": {"gas": 0.22, "coal": 0.36, "hydro": 0.20, "wind": 0.10, "solar": 0.07,
           "geothermal": 0.03, "biomass": 0.02},
}

# Deliberate gaps: hours Electricity Maps never published (start, number of hours).
GAPS = (
    ("2024-02-14T03:00:00Z", 1),
    ("2024-06-09T13:00:00Z", 3),
    ("2024-11-20T22:00:00Z", 1),
    ("2025-03-30T01:00:00Z", 1),
    ("2025-08-19T21:00:00Z", 2),
)
N_LATE = 24  # hours first published 4-10 h late (no estimate before) (chosen by the seeded RNG)

ESTIMATION_METHOD = "TIME_SLICER_AVERAGE"
CREATED_BEFORE = pd.Timedelta(days=3) - pd.Timedelta(minutes=47, seconds=12)
ESTIMATE_LEAD = pd.Timedelta(minutes=14)
REESTIMATE_MINUTE = pd.Timedelta(minutes=48)
FINAL_MINUTE = pd.Timedelta(minutes=13)
PUBLISH_LAG = pd.Timedelta(minutes=2)

ENERGY_COLUMNS = (
    ["datetime", "available_at", "updated_at", "created_at", "is_estimated",
     "estimation_method", "carbon_intensity", "carbon_intensity_direct"]
    + [col("production", s) for s in SOURCES]
    + [col("consumption", s) for s in SOURCES]
    + [f"import_{z}" for z in NEIGHBOURS] + [f"export_{z}" for z in NEIGHBOURS]
    + ["power_production_total", "power_consumption_total", "power_import_total",
       "power_export_total", "fossil_free_percentage", "renewable_percentage"]
)


def gap_hours() -> pd.DatetimeIndex:
    hours = [pd.Timestamp(start) + pd.Timedelta(hours=h) for start, k in GAPS for h in range(k)]
    return pd.DatetimeIndex(hours)


def _largest_remainder(values: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Round each row of non-negative `values` to integers summing exactly to `totals`."""
    base = np.floor(values)
    frac = values - base
    short = (totals - base.sum(axis=1)).astype(int)
    order = np.argsort(-frac, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(values.shape[1])[None, :].repeat(len(values), 0),
                      axis=1)
    return base + (ranks < short[:, None])


def derive(prod: dict[str, np.ndarray], flows: dict[str, np.ndarray]) -> pd.DataFrame:
    """All energy columns but the time/revision ones, from integer production and flows."""
    n = len(next(iter(prod.values())))
    out: dict[str, np.ndarray] = {}
    positive = {}
    for s in SOURCES:
        if s in NULL_PRODUCTION:
            out[col("production", s)] = np.full(n, np.nan)
            positive[s] = np.zeros(n)
        else:
            v = np.round(prod[s])
            out[col("production", s)] = v
            positive[s] = np.clip(v, 0, None)
    p_total = sum(positive.values())
    imports = {z: np.clip(np.round(flows[z]), 0, None) for z in NEIGHBOURS}
    exports = {z: np.clip(-np.round(flows[z]), 0, None) for z in NEIGHBOURS}
    i_total = sum(imports.values())
    e_total = sum(exports.values())
    pump = np.clip(-out[col("production", "hydro discharge")], 0, None)
    c_total = p_total + i_total - e_total - pump

    pool = np.column_stack([
        positive[s] + sum(imports[z] * NEIGHBOUR_MIX[z].get(s, 0.0) for z in NEIGHBOURS)
        for s in SOURCES
    ])
    share = pool / np.maximum(pool.sum(axis=1, keepdims=True), 1.0)
    cons = _largest_remainder(share * np.clip(c_total, 0, None)[:, None], np.clip(c_total, 0, None))
    for j, s in enumerate(SOURCES):
        out[col("consumption", s)] = cons[:, j]
    for z in NEIGHBOURS:
        out[f"import_{z}"] = imports[z]
    for z in NEIGHBOURS:
        out[f"export_{z}"] = exports[z]

    denom = np.maximum(p_total, 1.0)
    lca = sum(positive[s] * LIFECYCLE_FACTORS[s] for s in SOURCES) / denom
    direct = sum(positive[s] * DIRECT_FACTORS[s] for s in SOURCES) / denom
    out["carbon_intensity"] = np.round(lca)
    out["carbon_intensity_direct"] = np.round(direct)
    out["power_production_total"] = p_total
    out["power_consumption_total"] = c_total
    out["power_import_total"] = i_total
    out["power_export_total"] = e_total
    out["fossil_free_percentage"] = np.round(100 * sum(positive[s] for s in FOSSIL_FREE) / denom)
    out["renewable_percentage"] = np.round(100 * sum(positive[s] for s in RENEWABLE) / denom)
    return pd.DataFrame({k: int_col(v) for k, v in out.items()})


def _time_slicer_average(x: np.ndarray, days: int = 7) -> np.ndarray:
    """Mean of the same hour over the previous `days` days (fewer at the very start)."""
    s = pd.Series(x)
    lagged = pd.concat([s.shift(24 * d) for d in range(1, days + 1)], axis=1)
    return lagged.mean(axis=1).fillna(s).to_numpy()


def _estimate(truth: dict[str, np.ndarray], tsa: dict[str, np.ndarray], rows: np.ndarray,
              weight: float, noise: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """An estimated revision: blend of the truth and the time-slicer average, perturbed."""
    est = {}
    for k, v in truth.items():
        blend = weight * v[rows] + (1 - weight) * tsa[k][rows]
        est[k] = np.round(blend * (1 + noise * rng.standard_normal(len(rows))))
    for k in ("biomass", "coal", "wind", "solar", "hydro", "gas", "unknown"):
        est[k] = np.clip(est[k], 0, None)
    return est


def revisions(grid: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    """All revisions of every published hour, sorted by (datetime, available_at)."""
    idx = hourly_index()
    n = len(idx)
    truth = {s: grid[s].to_numpy(dtype=float) for s in SOURCES if s not in NULL_PRODUCTION}
    truth.update({f"flow_{z}": grid[f"flow_{z}"].to_numpy(dtype=float) for z in NEIGHBOURS})
    tsa = {k: _time_slicer_average(v) for k, v in truth.items()}

    gaps = np.isin(idx, gap_hours())
    candidates = np.nonzero(~gaps & (np.arange(n) < n - 48))[0]
    late = np.zeros(n, dtype=bool)
    late[rng.choice(candidates, N_LATE, replace=False)] = True
    published = ~gaps
    normal = published & ~late

    td = pd.to_timedelta
    # Electricity Maps updates in batches: estimates for hour H at H-0:14 (and, for about a
    # fifth of the hours, a re-estimate at H+0:48); the final values at H + d h + 0:13 with
    # d = 1 (85 %), 2 (12 %) or 3-5 (3 %); late hours at d = 4..10. A revision is visible
    # PUBLISH_LAG after its updatedAt.
    delay_h = np.where(rng.random(n) < 0.85, 1, np.where(rng.random(n) < 0.8, 2,
                                                          rng.integers(3, 6, n)))
    delay_h = np.where(late, rng.integers(4, 11, n), delay_h)
    final_upd = idx + td(delay_h, unit="h") + FINAL_MINUTE
    est1_upd = idx - ESTIMATE_LEAD
    est2 = normal & (rng.random(n) < 0.2)
    est2_upd = idx + REESTIMATE_MINUTE

    parts = []

    def frame(rows: np.ndarray, values: dict[str, np.ndarray], updated: pd.DatetimeIndex,
              estimated: bool) -> pd.DataFrame:
        prod = {s: values[s] for s in truth if not s.startswith("flow_")}
        flows = {z: values[f"flow_{z}"] for z in NEIGHBOURS}
        df = derive(prod, flows)
        hours = idx[rows]
        df.insert(0, "datetime", iso(hours))
        df.insert(1, "available_at", iso(updated + PUBLISH_LAG))
        df.insert(2, "updated_at", iso(updated))
        df.insert(3, "created_at", iso(hours - CREATED_BEFORE))
        df.insert(4, "is_estimated", "true" if estimated else "false")
        df.insert(5, "estimation_method", ESTIMATION_METHOD if estimated else None)
        df["_order"] = rows
        return df

    rows = np.nonzero(published)[0]
    parts.append(frame(rows, {k: v[rows] for k, v in truth.items()}, final_upd[rows], False)
                 .assign(_rank=2))
    rows = np.nonzero(normal)[0]
    parts.append(frame(rows, _estimate(truth, tsa, rows, 0.7, 0.04, rng), est1_upd[rows], True)
                 .assign(_rank=0))
    rows = np.nonzero(est2)[0]
    parts.append(frame(rows, _estimate(truth, tsa, rows, 0.85, 0.025, rng), est2_upd[rows], True)
                 .assign(_rank=1))
    energy = pd.concat(parts, ignore_index=True)
    energy = energy.sort_values(["_order", "_rank"], kind="stable")
    energy = energy.drop(columns=["_order", "_rank"]).reset_index(drop=True)
    events = {
        "gaps": [f"{t:%Y-%m-%dT%H:%M:%SZ}" for t in idx[gaps]],
        "late": [f"{t:%Y-%m-%dT%H:%M:%SZ}" for t in idx[late]],
    }
    return energy[ENERGY_COLUMNS], events
