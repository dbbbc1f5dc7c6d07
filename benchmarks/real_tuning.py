"""Walk-forward tuning windows on real data that `real_backtest.py` does not judge, in pandas.

Settings are chosen here and then measured once on the judged zone-years (docs/decisions/0025).
Each window is the product's backtest fold loop without the lake round trips: the frame is
`gridcast.frame.build_frame` over the zone's silver revisions (read once through
`load_frame_inputs` from a lake that `real_backtest.py --workdir` left, cached as parquet in
it), made lag-only; each fold is `backtest.fold_split` + `model.fit_split` (the code `train` and
`backtest` run) with the shipped config plus the given Hydra overrides. Per window it prints
MAE, the best naive MAE, skill against it, p10-p90 coverage, the worst horizon against the
seasonal naive, the lowest fold coverage, and the coverage other nominal interval levels would
have given on the same fits.

    PYTHONPATH=src:. .venv/bin/python benchmarks/real_backtest.py --workdir /tmp/real ES DE FR IT-NO
    PYTHONPATH=src:. .venv/bin/python benchmarks/real_tuning.py --workdir /tmp/real \
        model.learning_rate=0.1
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
)
OTHER_LEVELS = ((0.065, 0.935), (0.06, 0.94), (0.05, 0.95))


def zone_frame(workdir: Path, case: str, overrides: list[str]) -> pd.DataFrame:
    """The zone's labelled lag-only frame over every issue hour its lake can answer."""
    lake = workdir / case / "lake"
    cfg = load_config([f"zone={case}", f"storage.root={lake}", *overrides])
    cache = workdir / f"revisions-{case}.parquet"
    if cache.exists():
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
    hours = pd.date_range(revisions["available_at"].min().ceil("h"),
                          revisions["datetime"].max(), freq="h")
    frame = build_frame(revisions, zone=cfg.zone, issue_hours=hours, horizon=cfg.horizon,
                        settings=cfg.frame)
    frame = lag_only(frame, weather_columns(cfg.zone.locations))
    return frame[frame[TARGET].notna()]


def run_window(labelled: pd.DataFrame, case: str, start: str, end: str,
               overrides: list[str]) -> dict[str, float]:
    cfg = load_config([f"zone={case}", f"backtest.start={start}", f"backtest.end={end}",
                       "backtest.weather=false", *overrides])
    parts, inside = [], {levels: [] for levels in OTHER_LEVELS}
    started = time.monotonic()
    for fold in plan_folds(cfg.backtest):
        split = fold_split(labelled, fold, cfg.train.horizon, cfg.backtest)
        fitted = fit_split(split, cfg.train)
        test = scored_rows(split.test)
        forecast = fitted.predict(test)
        actual = test[TARGET].to_numpy()
        parts.append(pd.DataFrame({
            "fold": fold.fold, "horizon": test["horizon"].to_numpy(), "actual": actual,
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
