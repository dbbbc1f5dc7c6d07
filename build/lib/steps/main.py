"""Entry point `main`: every step in order, in one process and one SparkSession, each step an
MLflow run nested under one parent run.

    python -m steps.main zone=GR horizon=24
"""

from __future__ import annotations

import sys

import mlflow

from gridcast.config import GridcastConfig
from gridcast.lineage import code_version, configure_mlflow
from gridcast.runner import run_step
from steps import features, ingest, medallion

STEPS = (("ingest", ingest.run), ("medallion", medallion.run), ("features", features.run))


def run(cfg: GridcastConfig) -> None:
    configure_mlflow(cfg)
    with mlflow.start_run(run_name=f"main-{cfg.zone.id}-{cfg.horizon}h"):
        mlflow.set_tags({"zone": cfg.zone.id, "horizon": str(cfg.horizon), "step": "main", **code_version()})
        for name, step in STEPS:
            print(f"== {name}", flush=True)
            step(cfg)


def main(argv: list[str] | None = None) -> int:
    return run_step("main", run, argv)


if __name__ == "__main__":
    sys.exit(main())
