"""Benchmark: build the point-in-time frame for one year of issue hours (target: well under 20 s).

Inputs come from the embedded recording (data/recordings/gr-2024-2025): the GR energy revisions
(`updated_at` as `available_at`, as the brief asks) and the forecast vintages of its three
locations pivoted into `<location>_<var>` columns (`issued_at` as `fetched_at`), i.e. the shapes
`gold.weather_forecasts` and `silver.energy_revisions` give after one `toPandas()` each. Prints
the wall time of `build_frame` (best of `--repeat`), then its peak traced memory (tracemalloc,
numpy allocations included; a separate run, since tracing slows allocation) and the process's
peak RSS.

    PYTHONPATH=src:. .venv/bin/python benchmarks/frame.py [--days 365] [--horizon 24]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gridcast.config import Location, ZoneConfig  # noqa: E402
from gridcast.frame import FrameSettings, build_frame  # noqa: E402
from gridcast.medallion.gold import location_prefix  # noqa: E402
from gridcast.tables import GOLD_WEATHER_VARIABLES as WEATHER_VARIABLES  # noqa: E402

RECORDING = Path(__file__).resolve().parents[1] / "data" / "recordings" / "gr-2024-2025"
FIRST_ISSUE = pd.Timestamp("2024-01-08T00:00Z")  # a week of history before the first issue hour
ZONE = ZoneConfig(
    id="GR", name="Greece", country="GR", timezone="Europe/Athens",
    neighbours=("AL", "BG", "IT-SO", "MK", "TR"),
    locations=(Location("Athens", 37.98, 23.73), Location("Thessaloniki", 40.64, 22.94),
               Location("Patras", 38.25, 21.73)),
)
TIME_COLUMNS = ("datetime", "available_at", "updated_at", "issued_at")


def _read(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    for column in TIME_COLUMNS:
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def load_inputs(end: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Energy revisions and pivoted forecast vintages up to `end` (the targets need what follows
    the last issue hour too)."""
    energy = _read(RECORDING / "energy" / "GR.csv.gz")
    revisions = energy.loc[energy["datetime"] < end].assign(available_at=lambda e: e["updated_at"])
    vintages = None
    for location in ZONE.locations:
        prefix = location_prefix(location.name)
        forecast = _read(RECORDING / "weather" / f"{prefix}.fcst.csv.gz")
        columns = ["issued_at", "datetime", *WEATHER_VARIABLES]
        forecast = forecast.loc[forecast["issued_at"] < end, columns]
        forecast = forecast.rename(columns={v: f"{prefix}_{v}" for v in WEATHER_VARIABLES})
        vintages = forecast if vintages is None else vintages.merge(
            forecast, on=["issued_at", "datetime"], how="outer")
    return revisions, vintages.rename(columns={"issued_at": "fetched_at"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    issue_hours = pd.date_range(FIRST_ISSUE, periods=args.days * 24, freq="h")
    revisions, vintages = load_inputs(issue_hours[-1] + pd.Timedelta(hours=args.horizon + 1))
    print(f"inputs: {len(revisions):,} revisions of {revisions['datetime'].nunique():,} hours, "
          f"{len(vintages):,} vintage rows of {vintages['fetched_at'].nunique():,} vintages")

    def build() -> pd.DataFrame:
        return build_frame(revisions, zone=ZONE, issue_hours=issue_hours, horizon=args.horizon,
                           vintages=vintages, settings=FrameSettings())

    timings = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        frame = build()
        timings.append(time.perf_counter() - started)
    tracemalloc.start()
    build()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"frame: {len(frame):,} rows x {frame.shape[1]} columns "
          f"({len(issue_hours):,} issue hours x {args.horizon} horizons), "
          f"{frame.memory_usage(deep=True).sum() / 2**20:.0f} MiB")
    print(f"build_frame: best {min(timings):.2f} s, all {', '.join(f'{t:.2f}' for t in timings)} s")
    print(f"peak traced memory during build: {peak / 2**20:.0f} MiB; "
          f"process peak RSS {rss_mb:.0f} MiB")
    print(f"weather missing: {frame['weather_missing'].mean():.1%} of rows; "
          f"target null: {frame['target'].isna().mean():.1%}")
    target_s = 20.0
    print(f"target: well under {target_s:.0f} s -> {'ok' if min(timings) < target_s else 'MISSED'}")
    return 0 if min(timings) < target_s else 1


if __name__ == "__main__":
    sys.exit(main())
