"""Walk-forward tuning windows on real data that `real_backtest.py` does not judge, in pandas.

Settings are chosen here and then measured once on the judged zone-years (docs/decisions/0025).
Each window is the product's backtest fold loop without the lake round trips: the frame is
`gridcast.frame.build_frame` over the zone's silver revisions (read once through
`load_frame_inputs` from a lake that `real_backtest.py --workdir` left, cached as parquet in
it), made lag-only; each fold is `backtest.fold_split` + `model.fit_split` (the code `train` and
`backtest` run) with the shipped config plus the given Hydra overrides. Per window it prints
MAE, the best naive MAE, skill against it, p10-p90 coverage, the worst horizon against the
seasonal naive, the lowest fold coverage, and the coverage other nominal interval levels would
have given on the same fits, and issue 12's green-window share of hindsight's saving (ours and
the seasonal naive's; daily 00:00 UTC decisions, and every issue hour as a less noisy view).
The DE+weather window keeps the observed weather as a perfect forecast (an upper bound, as the
DE+weather case of real_backtest.py).

    PYTHONPATH=src:. .venv/bin/python benchmarks/real_backtest.py --workdir /tmp/real \
        ES DE FR IT-NO DE+weather
    PYTHONPATH=src:. .venv/bin/python benchmarks/real_tuning.py --workdir /tmp/real \
        model.learning_rate=0.1 --only "DE"    # overrides before --only (it takes the rest)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from gridcast.backtest import fold_split, lag_only, per_horizon, plan_folds, summarize
from gridcast.config import load_config
from gridcast.frame import build_frame
from gridcast.medallion.gold import weather_columns
from gridcast.windows import hindsight_comparison, savings_summary
from gridcast.model import (
    BASELINES,
    TARGET,
    calibrate_intervals,
    fit_split,
    scored_rows,
    to_model_input,
)

# (label, lake case of real_backtest.py, start, end): none of them is judged there. ES 2021 H2
# trains on H1; DE and FR May-August on January-April; IT-NO is the tuning zone.
WINDOWS = (
    ("IT-NO Sep-Dec", "IT-NO", "2021-09-01", "2022-01-01"),
    ("IT-NO May-Aug", "IT-NO", "2021-05-01", "2021-09-01"),
    ("ES 2021 H2", "ES", "2021-07-01", "2022-01-01"),
    ("DE May-Aug", "DE", "2021-05-01", "2021-09-01"),
    ("FR May-Aug", "FR", "2021-05-01", "2021-09-01"),
    ("DE+weather May-Aug", "DE+weather", "2021-05-01", "2021-09-01"),
)
# Cases whose frame keeps the weather: the observations as a perfect forecast, as the
# DE+weather case of real_backtest.py (an upper bound; its lake holds gold.historic_data).
WEATHER_CASES = {"DE+weather": ("frame.weather_fallback=observations",)}
# The green-window measurement of issue 12 (benchmarks/green_windows.py): a 4 h job, a 24 h
# deadline, one decision a day from the 00:00 UTC issue.
GREEN_HOUR, GREEN_DURATION_H, GREEN_DEADLINE_H = 0, 4.0, 24
GREEN_CHOOSERS = ("prediction", "baseline_seasonal_naive")
OTHER_LEVELS = ((0.065, 0.935), (0.06, 0.94), (0.05, 0.95))


def _zone(case: str) -> str:
    return case.split("+")[0]


def zone_frame(workdir: Path, case: str, overrides: list[str]) -> pd.DataFrame:
    """The zone's labelled frame over every issue hour its lake can answer: lag-only, or for a
    weather case with the observed weather as a perfect forecast."""
    lake = workdir / case / "lake"
    extra = WEATHER_CASES.get(case, ())
    cfg = load_config([f"zone={_zone(case)}", f"storage.root={lake}", *extra, *overrides])
    cache = workdir / f"revisions-{_zone(case)}.parquet"
    weather_cache = workdir / f"observations-{case}.parquet"
    observations = pd.read_parquet(weather_cache) if weather_cache.exists() else None
    if cache.exists() and (not extra or observations is not None):
        revisions = pd.read_parquet(cache)
    else:
        if not (lake / "silver").exists():
            raise SystemExit(f"{lake} has no silver tables: run benchmarks/real_backtest.py "
                             f"--workdir {workdir} {case} first")
        from gridcast.frame_inputs import load_frame_inputs
        from gridcast.spark import get_spark
        from gridcast.storage import table_store

        inputs = load_frame_inputs(get_spark(cfg.spark), table_store(cfg.storage), cfg.zone,
                                   horizon=cfg.horizon, settings=cfg.frame)
        revisions = inputs.revisions
        revisions.to_parquet(cache, index=False)
        if extra:
            observations = inputs.observations
            observations.to_parquet(weather_cache, index=False)
    hours = pd.date_range(revisions["available_at"].min().ceil("h"),
                          revisions["datetime"].max(), freq="h")
    frame = build_frame(revisions, zone=cfg.zone, issue_hours=hours, horizon=cfg.horizon,
                        observations=observations, settings=cfg.frame)
    if not extra:
        frame = lag_only(frame, weather_columns(cfg.zone.locations))
    return frame[frame[TARGET].notna()]


def green_share(rows: pd.DataFrame) -> dict[str, float]:
    """Issue 12's figure on the window's test rows: the share of hindsight's saving that choosing
    by our forecast and by the seasonal naive achieve (`gridcast.windows`, as green_windows.py),
    for the daily 00:00 UTC decision and (`green_all_*`, 24 times the decisions, so less noisy
    for tuning) for every issue hour."""
    out = {}
    for name, decisions in (("green", rows[rows["issued_at"].dt.hour == GREEN_HOUR]),
                            ("green_all", rows)):
        compared = hindsight_comparison(decisions, duration_h=GREEN_DURATION_H,
                                        deadline_h=GREEN_DEADLINE_H, choosers=GREEN_CHOOSERS)
        summary = savings_summary(compared, GREEN_CHOOSERS).set_index("choice")
        share = summary["share_of_hindsight"]
        out.update({f"{name}_ours": share["prediction"],
                    f"{name}_seasonal": share["baseline_seasonal_naive"]})
    return out


def run_window(labelled: pd.DataFrame, case: str, start: str, end: str,
               overrides: list[str]) -> dict[str, float]:
    weather = "true" if case in WEATHER_CASES else "false"
    cfg = load_config([f"zone={_zone(case)}", f"backtest.start={start}", f"backtest.end={end}",
                       f"backtest.weather={weather}", *WEATHER_CASES.get(case, ()), *overrides])
    parts, inside = [], {levels: [] for levels in OTHER_LEVELS}
    started = time.monotonic()
    for fold in plan_folds(cfg.backtest):
        split = fold_split(labelled, fold, cfg.train.horizon, cfg.backtest)
        fitted = fit_split(split, cfg.train)
        test = scored_rows(split.test)
        forecast = fitted.predict(test)
        actual = test[TARGET].to_numpy()
        parts.append(pd.DataFrame({
            "fold": fold.fold, "zone": test["zone"].to_numpy(),
            "issued_at": pd.DatetimeIndex(test["issued_at"]),
            "datetime": pd.DatetimeIndex(test["datetime"]),
            "horizon": test["horizon"].to_numpy(), "actual": actual,
            "hour_local": test["hour_local"].to_numpy(), "mase_scale": 1.0,
            **{c: forecast[c].to_numpy() for c in ("prediction", "p10", "p90")},
            **{f"baseline_{name}": test[column].to_numpy() for name, column in BASELINES.items()},
        }))
        calibration = to_model_input(split.calibration, list(fitted.columns))
        residuals = (split.calibration[TARGET].to_numpy()
                     - fitted.forecaster.predict(calibration))
        for lower, upper in OTHER_LEVELS:
            offsets = calibrate_intervals(calibration["horizon"].to_numpy(), residuals,
                                          cfg.train.horizon, lower, upper)
            offsets = offsets.reindex(test["horizon"].to_numpy())
            point = forecast["prediction"].to_numpy()
            inside[(lower, upper)].append(
                (actual >= point + offsets["lower"].to_numpy())
                & (actual <= point + offsets["upper"].to_numpy()))
    rows = pd.concat(parts, ignore_index=True)
    overall = summarize(rows).set_index("band").loc["all"]
    _, table = per_horizon(rows)
    covered = (rows["actual"] >= rows["p10"]) & (rows["actual"] <= rows["p90"])
    return {
        "mae": overall["mae"],
        "best_naive_mae": min(overall[f"{name}_mae"] for name in BASELINES),
        "skill": overall["skill"],
        "coverage": overall["coverage_p10_p90"],
        "worst_h_vs_seasonal": (table["mae"] / table["baseline.seasonal_naive.mae"] - 1).max(),
        "min_fold_coverage": covered.groupby(rows["fold"]).mean().min(),
        **green_share(rows),
        **{f"coverage_{lo:g}_{hi:g}": float(np.concatenate(v).mean())
           for (lo, hi), v in inside.items()},
        "seconds": time.monotonic() - started,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True,
                        help="the --workdir of real_backtest.py (lakes in WORKDIR/<case>/lake)")
    parser.add_argument("--only", nargs="*", default=[],
                        help="window labels to run, by prefix (e.g. FR 'IT-NO Sep')")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model.max_iter=200")
    args = parser.parse_args(argv)
    frames: dict[str, pd.DataFrame] = {}
    lines = []
    for label, case, start, end in WINDOWS:
        if args.only and not any(label.startswith(prefix) for prefix in args.only):
            continue
        if case not in frames:
            frames[case] = zone_frame(args.workdir.resolve(), case, args.overrides)
        line = {"window": label, **run_window(frames[case], case, start, end, args.overrides)}
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in line.items()), flush=True)
        lines.append(line)
    table = pd.DataFrame(lines)
    print("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\noverrides: {' '.join(args.overrides) or 'none'}; mean skill "
          f"{table['skill'].mean():.3f}, min {table['skill'].min():.3f}; coverage "
          f"{table['coverage'].min():.3f} .. {table['coverage'].max():.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
