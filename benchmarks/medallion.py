"""Benchmark: incremental medallion cost follows new data, not history.

For a history of one month and one of one year (GR, embedded recording, one ingest per day), it
builds silver and gold from scratch, then ingests the next 24 hours (every 3 h) and times the
incremental `medallion` + `features` run on top. Target (issue 3): incremental on one year
<= 1.5 x incremental on one month. Also prints the full rebuild of one year.

    .venv/bin/python benchmarks/medallion.py [--year-days 365] [--month-days 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HISTORY_END = datetime(2025, 12, 1, tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def scenario(root: Path, history_days: int) -> dict[str, float]:
    """Ingest `history_days` days, build silver+gold, then add 24 h and refresh incrementally."""
    from gridcast.config import load_config
    from steps import features, ingest, medallion

    base = [f"storage.root={root / 'lake'}", f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}"]
    history = load_config([*base, f"ingest.start={_iso(HISTORY_END - timedelta(days=history_days))}",
                           f"ingest.end={_iso(HISTORY_END)}", "ingest.every_hours=24"])
    extra_day = load_config([*base, f"ingest.start={_iso(HISTORY_END)}",
                             f"ingest.end={_iso(HISTORY_END + timedelta(days=1))}", "ingest.every_hours=3"])
    figures = {}
    ingest.run(history)
    started = time.perf_counter()
    medallion.run(history)
    features.run(history)
    figures["full build"] = time.perf_counter() - started
    ingest.run(extra_day)
    started = time.perf_counter()
    medallion.run(extra_day)
    features.run(extra_day)
    figures["incremental +24 h"] = time.perf_counter() - started
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year-days", type=int, default=365)
    parser.add_argument("--month-days", type=int, default=30)
    args = parser.parse_args()

    from gridcast.spark import get_spark

    get_spark()  # one session for every scenario, as `main` does
    results = {}
    for label, days in (("month", args.month_days), ("year", args.year_days)):
        with tempfile.TemporaryDirectory(prefix=f"gridcast-bench-{label}-") as work:
            print(f"\n== scenario: {label} ({days} days of history)", flush=True)
            results[label] = scenario(Path(work), days)
    ratio = results["year"]["incremental +24 h"] / results["month"]["incremental +24 h"]
    print("\n== benchmarks/medallion.py (medallion + features, wall time)")
    for label, figures in results.items():
        print(f"{label:6}: full build {figures['full build']:6.1f} s, incremental +24 h {figures['incremental +24 h']:6.1f} s")
    print(f"ratio incremental year / month: {ratio:.2f} (target <= 1.5)")
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
