"""Entry point `batch_score`: the champion's forecasts into gold.carbon_intensity_predictions.

    python -m steps.batch_score zone=GR horizon=24                 # the latest issue hour
    python -m steps.batch_score score.start=2025-12-25T00:00:00Z score.end=2025-12-26T00:00:00Z

Loads `models:/gridcast_<zone>_<horizon>h@champion`, builds the scoring rows with the frame code
training used, skips rows whose history is absent (counted), and MERGEs the rest. A key already
in the table keeps its first row, so a rerun commits nothing.
"""

from __future__ import annotations

import sys
import time

import mlflow
import pandas as pd
from pyspark.sql import functions as F

from gridcast.config import GridcastConfig
from gridcast.frame_inputs import build_scoring_frame, latest_issue_hour, load_frame_inputs
from gridcast.lineage import step_run
from gridcast.pandas_io import merge_frame, read_table
from gridcast.registry import model_name
from gridcast.runner import run_step
from gridcast.scoring import load_champion, new_predictions, score_rows
from gridcast.spark import get_spark
from gridcast.storage import table_store
from gridcast.tables import GOLD_PREDICTIONS


def run(cfg: GridcastConfig) -> None:
    spark = get_spark(cfg.spark)
    store = table_store(cfg.storage)
    zone, horizon = cfg.zone, cfg.horizon
    name = model_name(zone.id, horizon, cfg.mlflow.model_prefix)
    with step_run(cfg, "batch_score", store) as lineage:
        started = time.monotonic()
        champion = load_champion(name)
        start, end = cfg.score.issue_range()
        if start is None:
            start = end = latest_issue_hour(spark, store, zone)
        inputs = load_frame_inputs(spark, store, zone, horizon=horizon, settings=cfg.frame,
                                   start=start, end=end)
        for table, version in inputs.versions.items():
            lineage.record_read(table, version)
        issue_hours = pd.date_range(start, end, freq="h")
        frame = build_scoring_frame(inputs, zone, horizon, cfg.frame, issue_hours)
        scored = score_rows(frame, champion, max_age_h=cfg.score.max_age_h,
                            scored_at=pd.Timestamp.now(tz="UTC").floor("s"))
        existing = pd.DataFrame(columns=list(GOLD_PREDICTIONS.key))
        if store.exists(spark, GOLD_PREDICTIONS):
            existing = read_table(
                spark, store, GOLD_PREDICTIONS, columns=list(GOLD_PREDICTIONS.key),
                where=(F.col("zone") == zone.id) & (F.col("model_name") == name)
                & (F.col("model_version") == champion.version)
                & F.col("issued_at").between(start.to_pydatetime(), end.to_pydatetime()),
            )
        fresh = new_predictions(scored.predictions, existing)
        written = 0
        if not fresh.empty:
            outcome = merge_frame(spark, store, GOLD_PREDICTIONS, fresh)
            written = outcome.inserted + outcome.updated
            if outcome.committed and outcome.version is not None:
                lineage.record_write(GOLD_PREDICTIONS, outcome.version)
        mlflow.set_tags({"gridcast.model_name": name, "gridcast.model_version": champion.version,
                         "score.issued_from": start.isoformat(),
                         "score.issued_to": end.isoformat()})
        mlflow.log_metrics({
            "rows.frame": len(frame), "rows.scored": len(scored.predictions),
            "rows.skipped_history_absent": scored.skipped,
            "rows.already_scored": len(scored.predictions) - len(fresh), "rows.written": written,
            "rows.weather_missing": int(scored.predictions["weather_missing"].sum())
            if len(scored.predictions) else 0,
            "seconds": time.monotonic() - started,
        })
        print(f"batch_score {zone.id} {horizon}h: {name} v{champion.version}, issue hours "
              f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC: {len(scored.predictions)} "
              f"rows scored, {scored.skipped} skipped (history absent), "
              f"{len(scored.predictions) - len(fresh)} already in {GOLD_PREDICTIONS}, "
              f"{written} written in {time.monotonic() - started:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    return run_step("batch_score", run, argv)


if __name__ == "__main__":
    sys.exit(main())
