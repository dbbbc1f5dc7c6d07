"""Benchmark: a year of GR history through the backfill, then silver and gold.

Fresh lake in a temp dir, the embedded recording over the replay server: Electricity Maps
past-range (240 h chunks), Visual Crossing history (31-day chunks) and one archived forecast per
location and day, then `steps.medallion` and `steps.features`. Prints seconds per phase and the
peak RSS of this process and of its Spark JVM. Goal (issue 8): backfill + medallion <= 90 s.

    .venv/bin/python benchmarks/backfill.py [--days 365] [--end 2025-12-24T00:00:00Z]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _jvm_peak_rss_mb() -> float | None:
    """VmHWM of the Spark driver JVM (a child of this process), Linux only."""
    try:
        children = Path(f"/proc/self/task/{__import__('os').getpid()}/children").read_text().split()
        for pid in children:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--end", default="2025-12-24T00:00:00Z")
    args = parser.parse_args()

    from gridcast.config import load_config
    from gridcast.spark import get_spark
    from steps import backfill, features, medallion

    phases: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gridcast-bench-backfill-") as work:
        root = Path(work)
        cfg = load_config(
            [
                f"storage.root={root / 'lake'}",
                f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}",
                f"backfill.end={args.end}",
                f"backfill.history_days={args.days}",
            ]
        )
        started = time.perf_counter()
        get_spark(cfg.spark)
        phases["spark session"] = time.perf_counter() - started
        for name, step in (
            ("backfill", backfill.run),
            ("medallion", medallion.run),
            ("features", features.run),
        ):
            print(f"\n== {name}", flush=True)
            started = time.perf_counter()
            step(cfg)
            phases[name] = time.perf_counter() - started
    print(f"\n== benchmarks/backfill.py: {args.days} days of GR history (wall time)")
    for name, seconds in phases.items():
        print(f"{name:14} {seconds:7.1f} s")
    goal = phases["backfill"] + phases["medallion"]
    print(f"{'backfill+medallion':18} {goal:7.1f} s (goal <= 90 s)")
    print(
        f"peak RSS: python {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, "
        f"spark JVM {_jvm_peak_rss_mb() or float('nan'):.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
