"""Does choosing the window by our forecast save carbon? Measured on walk-forward backtests.

    .venv/bin/python benchmarks/green_windows.py --lake <lake> [--hour 0] [--duration 4]

Reads `gold.backtest_results` of every zone in the lake (what `steps.backtest` and
`benchmarks/real_backtest.py` write), takes each day's forecast issued at `--hour` UTC, and for a
`--duration`-hour job with a 24-hour deadline picks the window by our forecast, by the
seasonal-naive forecast and by hindsight (the actual greenest window). Each choice is scored by
the actual intensity it got, against running at the earliest start; the figure is the share of
the hindsight savings each achieves. Goal: ours >= 90 % of hindsight, and better than seasonal
naive.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, required=True, help="a lake with gold/backtest_results")
    parser.add_argument("--hour", type=int, default=0, help="issue hour of the daily forecast (UTC)")
    parser.add_argument("--duration", type=float, default=4.0, help="job length in hours")
    args = parser.parse_args()

    import deltalake
    import pandas as pd

    from gridcast.windows import hindsight_comparison

    path = args.lake / "gold" / "backtest_results"
    if not (path / "_delta_log").is_dir():
        print(f"no backtest results at {path}: run steps.backtest or benchmarks/real_backtest.py",
              file=sys.stderr)
        return 1
    results = deltalake.DeltaTable(str(path)).to_pandas()
    for column in ("issued_at", "datetime"):
        results[column] = pd.to_datetime(results[column], utc=True)
    daily = results[results["issued_at"].dt.hour == args.hour]
    print(f"{'zone':<8}{'config':<28}{'days':>5}  {'run now':>8}{'hindsight':>10}{'ours':>8}"
          f"{'seasonal':>9}  {'ours %':>7}{'seasonal %':>11}")
    for (zone, config), rows in daily.groupby(["zone", "model_config"]):
        # one fold per issue hour (the newest, should folds overlap)
        rows = rows.sort_values("fold").drop_duplicates(["issued_at", "datetime"], keep="last")
        compared = hindsight_comparison(rows, duration_h=args.duration)
        if compared.empty:
            continue
        saved = compared["run_now"] - compared[["hindsight", "prediction",
                                                "baseline_seasonal_naive"]].T
        best = saved.loc["hindsight"].sum()
        ours = saved.loc["prediction"].sum() / best if best else float("nan")
        seasonal = saved.loc["baseline_seasonal_naive"].sum() / best if best else float("nan")
        print(f"{zone:<8}{config[:27]:<28}{len(compared):>5}  {compared['run_now'].mean():8.1f}"
              f"{compared['hindsight'].mean():10.1f}{compared['prediction'].mean():8.1f}"
              f"{compared['baseline_seasonal_naive'].mean():9.1f}  {ours:7.1%}{seasonal:11.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
