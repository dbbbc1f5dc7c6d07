"""Entry point `main` (what `make run` runs): the whole loop in one process and one SparkSession,
each step an MLflow run nested under one parent run.

    python -m steps.main zone=GR horizon=24
    python -m steps.main ingest.end=2026-01-01T00:00:00Z    # one day later: adds that day

backfill -> ingest -> medallion -> features -> train -> register -> batch_score -> monitor.
Train and register run only when there is no champion yet, when the champion's data is
`train.every_days` old, or when monitoring says `degraded` and `monitor.retrain_on_degraded` is
set (then scoring runs again with the new champion). Batch scoring covers the last
`main.score_history_days` of issue hours up to the latest, whose forecast is the next H hours.
A rerun with nothing new adds nothing.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import mlflow
from pyspark.util import inheritable_thread_target

from gridcast.config import GridcastConfig
from gridcast.lineage import code_version, configure_mlflow
from gridcast.orchestration import (
    MAIN_TABLES,
    StepTiming,
    attach_child_runs,
    count_zone_rows,
    retrain_reason,
    scoring_config,
    summary_lines,
)
from gridcast.runner import run_step
from gridcast.spark import get_spark
from gridcast.storage import table_store
from gridcast.tables import GOLD_MONITORING
from steps import backfill, batch_score, features, ingest, medallion, monitor, register, train

Step = Callable[[GridcastConfig], "int | None"]


def _step(name: str, body: Step, cfg: GridcastConfig, timings: list[StepTiming]) -> int | None:
    print(f"== {name}", flush=True)
    started = time.monotonic()
    try:
        return body(cfg)
    finally:
        timings.append(StepTiming(name, time.monotonic() - started))


def run(cfg: GridcastConfig) -> int:
    from gridcast.frame_inputs import latest_issue_hour

    configure_mlflow(cfg)
    spark = get_spark(cfg.spark)
    store = table_store(cfg.storage)
    timings: list[StepTiming] = []
    started = time.monotonic()
    with mlflow.start_run(run_name=f"main-{cfg.zone.id}-{cfg.horizon}h") as parent:
        mlflow.set_tags({"zone": cfg.zone.id, "horizon": str(cfg.horizon), "step": "main",
                         "source": cfg.source.kind, "storage": cfg.storage.kind,
                         **code_version()})
        if cfg.main.backfill:
            _step("backfill", backfill.run, cfg, timings)
        for name, body in (("ingest", ingest.run), ("medallion", medallion.run),
                           ("features", features.run)):
            _step(name, body, cfg, timings)
        latest = latest_issue_hour(spark, store, cfg.zone)
        scoring = scoring_config(cfg, latest)
        reason = retrain_reason(cfg, latest)
        if reason:
            print(f"main: training because {reason}", flush=True)
            _step("train", train.run, cfg, timings)
            _step("register", register.run, cfg, timings)
        else:
            print("main: the champion is current; not retraining", flush=True)
        _step("batch_score", batch_score.run, scoring, timings)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="summary-counts") as pool:
            # The summary's row counts of the tables monitor does not write, taken while it runs.
            behind = pool.submit(inheritable_thread_target(spark)(count_zone_rows), spark, store,
                                 cfg.zone.id, [t for t in MAIN_TABLES if t is not GOLD_MONITORING])
            code = _step("monitor", monitor.run, cfg, timings)
            counted: dict[str, int] | None = behind.result()
        status = mlflow.get_run(_last_child(parent.info.run_id)).data.tags.get("monitor.status")
        degraded = retrain_reason(cfg, latest, degraded=status == "degraded")
        if status == "degraded" and degraded and not reason:
            print(f"main: retraining because {degraded}", flush=True)
            _step("train", train.run, cfg, timings)
            _step("register", register.run, cfg, timings)
            _step("batch_score", batch_score.run, scoring, timings)
            counted = None  # the predictions changed: count everything again
        else:
            counted.update(count_zone_rows(spark, store, cfg.zone.id, [GOLD_MONITORING]))
        seconds = time.monotonic() - started
        attach_child_runs(parent.info.run_id, timings)
        mlflow.log_metrics({"seconds": seconds,
                            **{f"seconds.{t.name}": t.seconds for t in timings},
                            **{f"spark_jobs.{t.name}": t.spark_jobs for t in timings
                               if t.spark_jobs is not None}})
        print("\n".join(summary_lines(spark, store, cfg, timings, seconds, status, counted)),
              flush=True)
    return code or 0


def _last_child(parent_run_id: str) -> str:
    runs = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
                              order_by=["start_time DESC"], max_results=1)
    return runs["run_id"].iloc[0]


def main(argv: list[str] | None = None) -> int:
    return run_step("main", run, argv)


if __name__ == "__main__":
    sys.exit(main())
