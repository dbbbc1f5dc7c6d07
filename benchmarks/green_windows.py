"""Does choosing the window by our forecast save carbon? Measured on walk-forward backtests.

    .venv/bin/python benchmarks/green_windows.py --lake LAKE [LAKE ...] [--hour 0] [--duration 4]

Reads `gold.backtest_results` of every zone in each lake (what `steps.backtest` and
`benchmarks/real_backtest.py --workdir` write). Each day is one decision: the forecast issued at
`--hour` UTC (one issue, horizons 1..`--deadline`), a `--duration`-hour job that may start at
any of those hours and must end by the last. The window is chosen three ways: by our forecast
(`prediction`), by the seasonal-naive forecast of the same rows, and by hindsight (the actual
greenest window among the same candidates). Each choice is scored by the actual mean intensity
of its window against running at the earliest start (the issue's first hour): saved =
actual(run now) - actual(chosen). A day counts only if all its hours have an actual and both
forecasts (`gridcast.windows.hindsight_comparison`).

Per case it prints the days, the mean run-now intensity and for each choice the mean saving
(g/kWh and % of the run-now intensity), the share of hindsight's saving it achieves, the share
of days it picked hindsight's very window and the share of days it got within `--near` g/kWh of
it. Goal (issue 12): ours >= 90 % of hindsight's saving, and more than seasonal naive's.
`--hour all` makes every issue hour a decision (a robustness view, not the judged figure).
`--by-month` adds each calendar month's share of hindsight's saving (where a season misses).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

GOAL_SHARE = 0.90
CHOOSERS = ("prediction", "baseline_seasonal_naive")
LABELS = {"hindsight": "hindsight", "prediction": "ours", "baseline_seasonal_naive": "seasonal"}


def _case_label(lake: Path) -> str:
    return lake.parent.name if lake.name == "lake" else lake.name


def _issue_hour(text: str) -> int | None:
    if text == "all":
        return None
    hour = int(text)
    if not 0 <= hour <= 23:
        raise argparse.ArgumentTypeError(f"--hour must be 0..23 or 'all', got {text}")
    return hour


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, nargs="+", required=True,
                        help="lakes with gold/backtest_results (the case is the lake's folder)")
    parser.add_argument("--hour", type=_issue_hour, default=0,
                        help="UTC issue hour of the daily decision, or 'all' (default 0)")
    parser.add_argument("--duration", type=float, default=4.0, help="job length in hours")
    parser.add_argument("--deadline", type=int, default=24,
                        help="the job must end within this many forecast hours of the issue")
    parser.add_argument("--near", type=float, default=10.0,
                        help="g/kWh within which a choice counts as near hindsight's")
    parser.add_argument("--by-month", action="store_true",
                        help="also print each month's share of hindsight's saving")
    args = parser.parse_args()

    import deltalake
    import pandas as pd

    from gridcast.windows import hindsight_comparison, savings_summary

    lines, verdicts, months = [], [], []
    for lake in args.lake:
        path = lake / "gold" / "backtest_results"
        if not (path / "_delta_log").is_dir():
            print(f"no backtest results at {path}: run steps.backtest or "
                  "benchmarks/real_backtest.py --workdir DIR", file=sys.stderr)
            return 1
        results = deltalake.DeltaTable(str(path)).to_pandas()
        for column in ("issued_at", "datetime"):
            results[column] = pd.to_datetime(results[column], utc=True)
        if args.hour is not None:
            results = results[results["issued_at"].dt.hour == args.hour]
        for (zone, config), rows in results.groupby(["zone", "model_config"]):
            case = _case_label(lake)
            compared = hindsight_comparison(rows, duration_h=args.duration,
                                            deadline_h=args.deadline, choosers=CHOOSERS)
            if compared.empty:
                print(f"{case} {zone} {config}: no complete {args.deadline} h forecast issued at "
                      f"hour {args.hour}", file=sys.stderr)
                continue
            summary = savings_summary(compared, CHOOSERS, near_g_per_kwh=args.near)
            first, last = compared["issued_at"].min(), compared["issued_at"].max()
            weather = ",".join(sorted(rows["weather_source"].unique()))
            for line in summary.to_dict("records"):
                lines.append({
                    "case": case, "zone": zone, "weather": weather,
                    "span": f"{first:%Y-%m-%d}..{last:%Y-%m-%d}",
                    "days" if args.hour is not None else "issues": line["days"],
                    "run_now": compared["run_now"].mean(), "choice": LABELS[line["choice"]],
                    "saved_g": line["saved_g_per_kwh"], "saved_%": line["saved_pct"],
                    "of_hindsight_%": 100 * line["share_of_hindsight"],
                    "same_window_%": 100 * line["same_window"],
                    f"within_{args.near:g}g_%": 100 * line["near_hindsight"],
                })
            for month, days in compared.groupby(compared["issued_at"].dt.strftime("%Y-%m")):
                by_month = savings_summary(days, CHOOSERS).set_index("choice")
                months.append({"case": case, "config": config, "month": month,
                               "days": len(days),
                               **{f"{LABELS[c]}_of_hindsight_%":
                                  100 * by_month.loc[c, "share_of_hindsight"] for c in CHOOSERS},
                               "hindsight_saved_g": by_month.loc["hindsight", "saved_g_per_kwh"]})
            share = summary.set_index("choice")["share_of_hindsight"]
            ours, seasonal = share["prediction"], share["baseline_seasonal_naive"]
            met = ours >= GOAL_SHARE and ours > seasonal
            verdicts.append(f"{case} ({zone}, {config}): ours {ours:.1%} of hindsight's saving, "
                            f"seasonal naive {seasonal:.1%} -> goal "
                            f"{'met' if met else 'MISSED'} (>= {GOAL_SHARE:.0%} and above "
                            "seasonal naive)")
    if not lines:
        return 1
    hour = "every issue hour" if args.hour is None else f"issued {args.hour:02d}:00 UTC"
    print(f"{args.duration:g} h job, deadline {args.deadline} h after the issue, {hour}; "
          "actual mean intensity of each choice vs running at the first forecast hour (g/kWh)\n")
    table = pd.DataFrame(lines)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    if args.by_month:
        print("\n" + pd.DataFrame(months).to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print("\n" + "\n".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
