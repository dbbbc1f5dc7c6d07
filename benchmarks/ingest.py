"""Benchmark: 30 simulated days of 3-hourly ingest runs for GR against the embedded recording.

Target (issue 2): 240 runs, >= 4 requests each, in under 30 s on a 2-core machine, Spark start
included. Prints the figures; writes into a temporary lake and MLflow store.

    .venv/bin/python benchmarks/ingest.py [--days 30] [--every-hours 3]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--every-hours", type=int, default=3)
    parser.add_argument("--start", default="2025-06-01T00:00:00Z")
    args = parser.parse_args()

    started = time.perf_counter()
    from datetime import datetime, timedelta

    import deltalake

    from gridcast.spark import get_spark
    from steps import ingest as ingest_step

    imported = time.perf_counter()
    get_spark()  # the step reuses this session; timed apart to show where the time goes
    spark_started = time.perf_counter()
    start = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
    end = start + timedelta(days=args.days)
    runs = args.days * 24 // args.every_hours
    with tempfile.TemporaryDirectory(prefix="gridcast-bench-") as work:
        root = Path(work)
        overrides = [
            f"storage.root={root / 'lake'}", f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}",
            f"ingest.start={start:%Y-%m-%dT%H:%M:%SZ}", f"ingest.end={end:%Y-%m-%dT%H:%M:%SZ}",
            f"ingest.every_hours={args.every_hours}",
        ]
        exit_code = ingest_step.main(overrides)
        finished = time.perf_counter()
        rows = {
            name: len(deltalake.DeltaTable(str(root / "lake" / "bronze" / name)).to_pandas(columns=["zone"]))
            for name in ("carbon_data", "power_data", "weather_forecast_data")
        }
    requests = sum(rows.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("\n== benchmarks/ingest.py")
    print(f"schedule            : {args.days} days every {args.every_hours} h = {runs} runs")
    print(f"responses written   : {requests} ({requests / runs:.1f} per run) {rows}")
    print(f"imports             : {imported - started:6.1f} s")
    print(f"Spark start         : {spark_started - imported:6.1f} s")
    print(f"step (MLflow, replay server, fetch, Delta writes): {finished - spark_started:6.1f} s")
    print(f"total wall time     : {finished - started:6.1f} s  (target < 30 s)")
    print(f"peak RSS (driver)   : {peak_mb:6.0f} MB")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
