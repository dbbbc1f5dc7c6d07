"""Entry point `train`: the point-in-time frame from the lake, a fitted forecaster, a registered
model version.

    python -m steps.train zone=GR horizon=24
    mlflow run . -e train -P zone=GR -P horizon=24

Reads silver.energy_revisions and gold.weather_forecasts (each once, at one Delta version, both
recorded as dataset inputs), builds the frame over every issue hour of the history, trains and
evaluates against the naive baselines, and registers `gridcast_<zone>_<horizon>h`. The version
it registered is tagged on the run (`gridcast.model_version`), which is how `register` finds it.
"""

from __future__ import annotations

import sys
import time

import mlflow
import pandas as pd

from gridcast.config import GridcastConfig
from gridcast.frame_inputs import build_training_frame, load_frame_inputs
from gridcast.lineage import step_run
from gridcast.model import BASELINES, TrainResult, log_training, train_forecaster
from gridcast.registry import model_name
from gridcast.runner import run_step
from gridcast.spark import get_spark
from gridcast.storage import table_store

TAG_MODEL_NAME = "gridcast.model_name"
TAG_MODEL_VERSION = "gridcast.model_version"


def summary(result: TrainResult) -> str:
    """A short per-horizon table (model MAE, each baseline's MAE, skill vs the best baseline at
    that horizon, p10-p90 coverage) and the overall line."""
    table = result.horizon_table
    shown = pd.DataFrame({"h": table["horizon"], "mae": table["mae"]})
    for baseline in BASELINES:
        shown[baseline] = table[f"baseline.{baseline}.mae"]
    shown["skill"] = table["skill"]
    shown["coverage"] = table["coverage_p10_p90"]
    m = result.metrics
    overall = (
        f"overall: MAE {m['mae']:.1f} vs {result.best_baseline} "
        f"{m[f'baseline.{result.best_baseline}.mae']:.1f}, skill {m['skill']:.3f}, "
        f"p10-p90 coverage {m['coverage_p10_p90']:.1%} ({int(m['rows.test'])} test rows)"
    )
    return shown.to_string(index=False, float_format=lambda v: f"{v:.2f}") + "\n" + overall


def run(cfg: GridcastConfig) -> None:
    spark = get_spark(cfg.spark)
    store = table_store(cfg.storage)
    zone, horizon = cfg.zone, cfg.horizon
    name = model_name(zone.id, horizon, cfg.mlflow.model_prefix)
    with step_run(cfg, "train", store) as lineage:
        started = time.monotonic()
        inputs = load_frame_inputs(spark, store, zone, horizon=horizon, settings=cfg.frame)
        for table, version in inputs.versions.items():
            lineage.record_read(table, version)
        frame = build_training_frame(inputs, zone, horizon, cfg.frame)
        issued = frame["issued_at"]
        mlflow.log_params({
            "frame.issued_from": issued.min().isoformat(),
            "frame.issued_to": issued.max().isoformat(),
        })
        mlflow.log_metrics({
            "frame.rows": len(frame), "frame.issue_hours": issued.nunique(),
            "frame.rows_labelled": int(frame["target"].notna().sum()),
            "frame.revisions": len(inputs.revisions),
        })
        print(f"train {zone.id} {horizon}h: frame {len(frame):,} rows, issue hours "
              f"{issued.min():%Y-%m-%d %H:%M} .. {issued.max():%Y-%m-%d %H:%M} UTC, from "
              + ", ".join(f"{t}@v{v}" for t, v in inputs.versions.items())
              + f", MLflow run {lineage.run_id}", flush=True)
        result = train_forecaster(frame, cfg.train)
        logged = log_training(result, registered_model_name=name)
        mlflow.set_tags({TAG_MODEL_NAME: name, TAG_MODEL_VERSION: str(logged.version)})
        mlflow.log_metric("seconds", time.monotonic() - started)
        print(summary(result))
        print(f"train {zone.id} {horizon}h: registered {name} v{logged.version} "
              f"in {time.monotonic() - started:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    return run_step("train", run, argv)


if __name__ == "__main__":
    sys.exit(main())
