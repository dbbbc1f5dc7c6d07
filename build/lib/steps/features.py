"""Entry point `features`: silver into the gold tables, incrementally.

    python -m steps.features zone=GR

Gold remembers the silver versions it was built from. A run recomputes only the gold rows that
new or revised silver rows affect; a run with nothing new commits nothing.
"""

from __future__ import annotations

import sys
import time

import mlflow

from gridcast.config import GridcastConfig
from gridcast.lineage import step_run
from gridcast.medallion.gold_update import silver_versions, update_gold
from gridcast.runner import run_step
from gridcast.spark import get_spark
from gridcast.storage import table_store
from gridcast.tables import SILVER_ENERGY


def run(cfg: GridcastConfig) -> None:
    spark = get_spark(cfg.spark)
    store = table_store(cfg.storage)
    zone = cfg.zone.id
    with step_run(cfg, "features", store) as lineage:
        started = time.monotonic()
        versions = silver_versions(spark, store)
        if versions[SILVER_ENERGY] is None:
            print(f"features {zone}: {SILVER_ENERGY} does not exist yet "
                  f"({store.identifier(SILVER_ENERGY)}); run `python -m steps.medallion` first. "
                  "Nothing to do.", flush=True)
            mlflow.set_tag("features.outcome", "no silver")
            return
        read = {table: version for table, version in versions.items() if version is not None}
        for table, version in read.items():
            lineage.record_read(table, version)
        print(f"features {zone}: silver " + ", ".join(f"{t}@v{v}" for t, v in read.items())
              + f", MLflow run {lineage.run_id}", flush=True)

        updates = update_gold(spark, store, cfg.zone, versions,
                              progress=lambda line: print(line, flush=True))
        for update in updates:
            if update.written:
                lineage.record_write(update.table, update.version)
            mlflow.set_tag(f"features.mode.{update.table}", update.mode)
        seconds = time.monotonic() - started
        mlflow.log_metrics({**{f"rows.{u.table}": u.rows for u in updates}, "seconds": seconds})
        if all(update.mode == "no-data" for update in updates):
            print(f"features {zone}: silver has no data for zone {zone} yet. Nothing to do.")
        print(f"features {zone}: "
              + ", ".join(f"{u.table} {u.mode} ({u.rows} rows)" for u in updates)
              + f" in {seconds:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    return run_step("features", run, argv)


if __name__ == "__main__":
    sys.exit(main())
