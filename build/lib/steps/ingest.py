"""Entry point `ingest`: raw API responses into the bronze tables.

    python -m steps.ingest zone=GR ingest.start=2025-12-01T00:00:00Z ingest.end=2025-12-08T00:00:00Z
"""

from __future__ import annotations

import sys

import mlflow

from gridcast.config import GridcastConfig
from gridcast.ingest import IngestIncompleteError, ingest
from gridcast.lineage import step_run
from gridcast.runner import run_step
from gridcast.sources import open_source
from gridcast.spark import get_spark
from gridcast.storage import table_store


def run(cfg: GridcastConfig) -> None:
    spark = get_spark(cfg.spark)
    store = table_store(cfg.storage)
    with step_run(cfg, "ingest", store) as lineage, open_source(cfg) as source:
        lineage.record_http_source("electricitymaps", source.electricitymaps.base_url)
        lineage.record_http_source("visualcrossing", source.visualcrossing.base_url)
        print(f"ingest {cfg.zone.id}: {len(source.run_times)} run(s) from {cfg.source.kind}, MLflow run {lineage.run_id}", flush=True)
        summary = ingest(
            spark, store, source, cfg.zone, run_id=lineage.run_id, horizon_h=cfg.horizon,
            flush_every_runs=cfg.ingest.flush_every_runs, concurrency=cfg.ingest.concurrency,
            on_commit=lineage.record_write,
        )
        mlflow.log_metrics({
            "runs": summary.runs, "requests_failed": len(summary.failures), "delta_commits": summary.commits,
            "requests_skipped": summary.skipped, "error_answers_unchanged": summary.unchanged,
            "seconds": summary.seconds, "write_seconds": summary.write_seconds,
            **{f"rows.{name}": count for name, count in summary.rows.items()},
        })
        print(f"ingest {cfg.zone.id}: {sum(summary.rows.values())} responses in {summary.commits} Delta commits, "
              f"{summary.seconds:.1f} s ({summary.write_seconds:.1f} s writing); tables: " + ", ".join(f"{n}@v{v}" for n, v in summary.versions.items()))
        if summary.http_errors:
            print(f"ingest {cfg.zone.id}: error answers kept in bronze: "
                  + ", ".join(f"{label} x{count}" for label, count in sorted(summary.http_errors.items())))
        if summary.failures:
            shown = "\n  ".join(summary.failures[:10])
            more = f"\n  ... and {len(summary.failures) - 10} more" if len(summary.failures) > 10 else ""
            raise IngestIncompleteError(
                f"{len(summary.failures)} request(s) failed after retries (stored in bronze with their error):\n  {shown}{more}"
            )


def main(argv: list[str] | None = None) -> int:
    return run_step("ingest", run, argv)


if __name__ == "__main__":
    sys.exit(main())
