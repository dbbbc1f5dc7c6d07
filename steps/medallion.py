"""Entry point `medallion`: bronze -> silver (parse, dedupe, quality gate, MERGE), incrementally.

    python -m steps.medallion zone=GR

Reads only the bronze rows appended since the last run (by Delta version); a run with nothing
new commits nothing. Silver holds every zone, so every new bronze row is processed.
"""

from __future__ import annotations

import sys

import mlflow

from gridcast.config import GridcastConfig
from gridcast.lineage import step_run
from gridcast.medallion.silver import SilverSummary, refresh_silver
from gridcast.runner import run_step
from gridcast.spark import get_spark
from gridcast.storage import table_store


def _metrics(summary: SilverSummary) -> dict[str, float]:
    return {
        "batches": summary.batches, "seconds": summary.seconds,
        "energy.inserted": summary.energy.inserted, "energy.updated": summary.energy.updated,
        "weather.inserted": summary.weather.inserted, "weather.updated": summary.weather.updated,
        "revisions.inserted": summary.revisions,
        "quarantined": summary.quarantined_total,
        **{f"quarantined.{name}": count for name, count in summary.quarantined.items()},
    }


def run(cfg: GridcastConfig) -> None:
    spark = get_spark(cfg.spark)
    store = table_store(cfg.storage)
    assert cfg.storage.checkpoints is not None  # validated by load_config
    with step_run(cfg, "medallion", store) as lineage:
        print(f"medallion {cfg.zone.id}: bronze -> silver, MLflow run {lineage.run_id}", flush=True)
        summary = refresh_silver(
            spark, store, cfg.storage.checkpoints, run_id=lineage.run_id,
            publication_delay=cfg.backfill.publication_delay,
            progress=lambda message: print(message, flush=True),
        )
        lineage.count_jobs_of(summary.job_group)  # the stream's batches run in a group of their own
        if summary.missing:
            what = ("no bronze tables yet" if len(summary.missing) == 3 else
                    "bronze incomplete, missing " + ", ".join(map(str, summary.missing)))
            print(f"medallion {cfg.zone.id}: {what}; nothing to do (run `python -m steps.ingest` first)")
            mlflow.log_metrics(_metrics(summary))
            return
        for table, version in summary.reads.items():
            lineage.record_read(table, version)
        for table, version in summary.writes.items():
            lineage.record_write(table, version)
        mlflow.log_metrics(_metrics(summary))
        if not summary.batches:
            print(f"medallion {cfg.zone.id}: nothing new in bronze since the last run; silver unchanged "
                  f"({summary.seconds:.1f} s)")
            return
        print(
            f"medallion {cfg.zone.id}: {summary.batches} batch(es) of new bronze rows, "
            f"{summary.seconds:.1f} s; energy {summary.energy.inserted} inserted / {summary.energy.updated} updated, "
            f"weather {summary.weather.inserted} inserted / {summary.weather.updated} updated, "
            f"{summary.quarantined_total} quarantined"
        )
        print(f"medallion {cfg.zone.id}: read " + ", ".join(f"{t}@v{v}" for t, v in summary.reads.items())
              + "; wrote " + ", ".join(f"{t}@v{v}" for t, v in summary.writes.items()))


def main(argv: list[str] | None = None) -> int:
    return run_step("medallion", run, argv)


if __name__ == "__main__":
    sys.exit(main())
