"""Entry point `backfill`: history into bronze before the scheduled ingest.

    python -m steps.backfill zone=GR backfill.history_days=180
    python -m steps.backfill zone=ES backfill.portal_csv=[/data/ES_2022_hourly.csv]

Replay: the server answers as the data stood at the backfill's end (default ingest.start).
Live: past-range needs a paid Electricity Maps plan, and Visual Crossing bills a record per
hourly row (the expected cost is printed; see backfill.confirm_cost / backfill.max_records).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import mlflow

from gridcast.backfill import BackfillIncompleteError, check_cost, plan_backfill, run_backfill
from gridcast.config import GridcastConfig
from gridcast.lineage import step_run
from gridcast.runner import run_step
from gridcast.sources import open_source
from gridcast.spark import get_spark
from gridcast.storage import table_store
from gridcast.tables import BRONZE_TABLES


def run(cfg: GridcastConfig) -> None:
    settings = cfg.backfill
    live = cfg.source.kind == "live"
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    # Replay: end at the scheduled replay's start, on the server's simulated clock. Live: now.
    default_end = now if live else cfg.ingest.start
    assert default_end is not None  # replay needs ingest.start (validated on load)
    plan = plan_backfill(
        cfg.zone,
        settings,
        default_end=default_end,
        horizon_h=cfg.horizon,
        clock=now if live else None,
    )
    span = plan.range
    print(
        f"backfill {cfg.zone.id}: {span.start:%Y-%m-%dT%H:%MZ} .. {span.end:%Y-%m-%dT%H:%MZ}, "
        f"{len(plan.chunks)} chunks ({'fetch' if span.fetch else 'files only'}), clock "
        f"{plan.clock:%Y-%m-%dT%H:%MZ}; Visual Crossing cost at most {plan.expected_records} records"
        + (" (billed)" if live else " (replay: free)"),
        flush=True,
    )
    check_cost(plan.expected_records, settings, billed=live)
    spark = get_spark(cfg.spark)
    store = table_store(cfg.storage)
    with step_run(cfg, "backfill", store) as lineage, open_source(cfg) as source:
        lineage.record_http_source("electricitymaps", source.electricitymaps.base_url)
        lineage.record_http_source("visualcrossing", source.visualcrossing.base_url)
        summary = run_backfill(
            spark,
            store,
            source,
            cfg.zone,
            plan,
            run_id=lineage.run_id,
            concurrency=settings.concurrency,
            flush_every_chunks=settings.flush_every_chunks,
            progress_bar=True,
            on_commit=lineage.record_write,
        )
        # Like an ingest, a backfill leaves all three bronze tables: medallion reads them as one
        # stream and waits until each exists, so a files-only backfill (a portal CSV, no weather)
        # gets an empty weather table instead of a medallion that does nothing.
        for table in BRONZE_TABLES:
            if not store.exists(spark, table):
                store.ensure(spark, table)
                lineage.record_write(table, 0)
        mlflow.log_metrics(
            {
                "chunks": summary.chunks,
                "chunks_fetched": summary.fetched,
                "chunks_skipped": summary.skipped,
                "error_answers_unchanged": summary.unchanged,
                "file_payloads": summary.files,
                "records": summary.records,
                "requests_failed": len(summary.failures),
                "delta_commits": summary.commits,
                "seconds": summary.seconds,
                "write_seconds": summary.write_seconds,
                **{f"rows.{name}": count for name, count in summary.rows.items()},
            }
        )
        print(f"backfill {cfg.zone.id}: {summary.line()}", flush=True)
        if summary.http_errors:
            print(
                f"backfill {cfg.zone.id}: error answers kept in bronze: "
                + ", ".join(
                    f"{label} x{count}" for label, count in sorted(summary.http_errors.items())
                )
            )
        if summary.failures:
            shown = "\n  ".join(summary.failures[:10])
            more = (
                f"\n  ... and {len(summary.failures) - 10} more"
                if len(summary.failures) > 10
                else ""
            )
            raise BackfillIncompleteError(
                f"{len(summary.failures)} chunk(s) failed after retries (stored in bronze with their error; "
                f"rerun to continue):\n  {shown}{more}"
            )


def main(argv: list[str] | None = None) -> int:
    return run_step("backfill", run, argv)


if __name__ == "__main__":
    sys.exit(main())
