"""Accuracy of `train` on the embedded default, per horizon, without a `make run` per setting.

The frame comes from a lake that `python -m steps.main` built (the product's
`load_frame_inputs` + `build_training_frame`, one Spark session), cached as parquet next to the
lake; every further run reads the cache. Then `train_forecaster` (the `train` step's fit,
intervals and scoring) runs on the issue hours of `--history-days` before `--end` with the given
Hydra overrides, and the per-horizon table is printed: model MAE, each baseline's MAE, skill
against the best baseline at that horizon, p10-p90 coverage; then the overall line.

    # once: a lake with the embedded recording's history (700 days covers 2024-01-24 onwards)
    MLFLOW_TRACKING_URI=sqlite:////tmp/acc/mlflow.db PYTHONPATH=src:. .venv/bin/python \
        -m steps.main storage.root=/tmp/acc/lake backfill.history_days=700
    # the embedded default's test window (the newest 14 days of `make run`)
    PYTHONPATH=src:. .venv/bin/python benchmarks/embedded_accuracy.py /tmp/acc/lake
    # a tuning window that ends before it, with a setting changed
    PYTHONPATH=src:. .venv/bin/python benchmarks/embedded_accuracy.py /tmp/acc/lake \
        --end 2025-11-30T23:00Z --history-days 365 model.learning_rate=0.1

`--end` (the last test issue hour, default: the newest labelled one) lets settings be chosen on
windows before the judged one; `--history-days` (default `backfill.history_days`) emulates the
backfill length: issue hours older than the backfill's start (`history_days` before
`ingest.start`, shifted with `--end`) are dropped, as if never fetched.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from gridcast.config import load_config  # noqa: E402
from gridcast.model import train_forecaster  # noqa: E402
from steps.train import summary  # noqa: E402


def lake_frame(lake: Path, overrides: list[str]) -> pd.DataFrame:
    """The training frame of the lake's zone, built once through the product's code and cached
    as `<lake>/../frame-<zone>-<H>h.parquet`."""
    cfg = load_config([f"storage.root={lake}", *overrides])
    cache = lake.parent / f"frame-{cfg.zone.id}-{cfg.horizon}h.parquet"
    if cache.exists():
        return pd.read_parquet(cache)
    from gridcast.frame_inputs import build_training_frame, load_frame_inputs
    from gridcast.spark import get_spark
    from gridcast.storage import table_store

    spark = get_spark(cfg.spark)
    inputs = load_frame_inputs(spark, table_store(cfg.storage), cfg.zone, horizon=cfg.horizon,
                               settings=cfg.frame)
    frame = build_training_frame(inputs, cfg.zone, cfg.horizon, cfg.frame)
    frame.to_parquet(cache, index=False)
    return frame


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lake", type=Path, help="storage root of a lake steps.main built")
    parser.add_argument("--end", nargs="*", default=[],
                        help="last test issue hour(s) (ISO, UTC); default: the newest labelled")
    parser.add_argument("--brief", action="store_true", help="overall lines only")
    parser.add_argument("--history-days", type=int, default=None)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model.max_iter=200")
    args = parser.parse_args()
    cfg = load_config(args.overrides)
    frame = lake_frame(args.lake.resolve(), args.overrides)
    newest = frame.loc[frame["target"].notna(), "issued_at"].max()
    days = cfg.backfill.history_days if args.history_days is None else args.history_days
    results = []
    for end in [pd.Timestamp(e) for e in args.end] or [newest]:
        # The backfill starts `days` before the scheduled ingest, which the newest labelled
        # issue hour follows by about a week: keep that offset for earlier windows too.
        first = end - (newest - pd.Timestamp(cfg.ingest.start)) - pd.Timedelta(days=days)
        window = frame[(frame["issued_at"] >= first) & (frame["issued_at"] <= end)]
        started = time.perf_counter()
        result = train_forecaster(window, cfg.train)
        seconds = time.perf_counter() - started
        split = result.split
        print(f"history {days} d (issue hours {first:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M}), "
              f"train {len(split.train):,} rows from {split.train['issued_at'].min():%Y-%m-%d}, "
              f"calibration from {split.calibration_start:%Y-%m-%d}, test "
              f"{split.test_start:%Y-%m-%d} .. {split.test_end:%Y-%m-%d}; fit + evaluate "
              f"{seconds:.1f} s; overrides {' '.join(args.overrides) or 'none'}")
        table = result.horizon_table
        seasonal = table["mae"] / table["baseline.seasonal_naive.mae"] - 1
        if not args.brief:
            print(summary(result))
        m = result.metrics
        worst_h = int(table["horizon"][seasonal.idxmax()])
        print(f"  skill {m['skill']:.3f}, coverage {m['coverage_p10_p90']:.3f}, worst horizon "
              f"vs seasonal naive {seasonal.max():+.3f} (h{worst_h})", flush=True)
        results.append((m["skill"], m["coverage_p10_p90"], seasonal.max()))
    if len(results) > 1:
        skill, coverage, worst = (sum(r[i] for r in results) / len(results) for i in range(3))
        print(f"mean over {len(results)} windows: skill {skill:.3f}, coverage {coverage:.3f}, "
              f"worst horizon vs seasonal {worst:+.3f}; min skill "
              f"{min(r[0] for r in results):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
