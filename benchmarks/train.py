"""Benchmark: frame + fit + evaluate + log + register (gate) on one year of GR (goal <= 60 s).

Inputs are the embedded recording's GR revisions and forecast vintages, shaped as the lake gives
them (`benchmarks/frame.py`'s `load_inputs`), so no Spark is involved; the phases then call the
same library functions as `steps.train` and `steps.register`, against a temporary SQLite MLflow
store. Prints seconds per phase, peak RSS, and the per-horizon table on the test window.

    PYTHONPATH=src:. .venv/bin/python benchmarks/train.py [--days 365] [--horizon 24]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from frame import FIRST_ISSUE, ZONE, load_inputs  # noqa: E402

from gridcast.config import load_config  # noqa: E402
from gridcast.frame import build_frame  # noqa: E402
from gridcast.model import log_training, train_forecaster  # noqa: E402
from gridcast.registry import gate, model_name  # noqa: E402
from steps.train import summary  # noqa: E402

GOAL_S = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model.max_iter=200")
    args = parser.parse_args()
    cfg = load_config([f"horizon={args.horizon}", *args.overrides])
    phases: dict[str, float] = {}

    def phase(name: str, started: float) -> None:
        phases[name] = time.perf_counter() - started

    started = time.perf_counter()
    issue_hours = pd.date_range(FIRST_ISSUE, periods=args.days * 24, freq="h")
    revisions, vintages = load_inputs(issue_hours[-1] + pd.Timedelta(hours=args.horizon + 1))
    phase("read inputs", started)

    started = time.perf_counter()
    frame = build_frame(revisions, zone=ZONE, issue_hours=issue_hours, horizon=args.horizon,
                        vintages=vintages, settings=cfg.frame)
    phase("frame", started)

    started = time.perf_counter()
    result = train_forecaster(frame, cfg.train)
    phase("fit + evaluate", started)

    with tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
        mlflow.set_experiment(experiment_id=mlflow.create_experiment(
            "benchmark", artifact_location=Path(tmp, "artifacts").as_uri()))
        name = model_name(ZONE.id, args.horizon)
        started = time.perf_counter()
        with mlflow.start_run(run_name="train"):
            logged = log_training(result, registered_model_name=name)
        phase("log + register", started)
        started = time.perf_counter()
        with mlflow.start_run(run_name="register"):
            decision = gate(name, logged.version, cfg.register)
        phase("gate", started)

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"frame: {len(frame):,} rows x {frame.shape[1]} columns; "
          f"train {len(result.split.train):,}"
          f" rows, test window {result.split.test_start:%Y-%m-%d} .. "
          f"{result.split.test_end:%Y-%m-%d}")
    print(summary(result))
    print("gate: " + ("passed" if decision.passed else "rejected: " + "; ".join(decision.reasons)))
    total = sum(phases.values())
    print(", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items())
          + f"; total {total:.1f} s; peak RSS {rss:.0f} MiB")
    print(f"goal: <= {GOAL_S:.0f} s -> {'ok' if total <= GOAL_S else 'MISSED'}")
    return 0 if total <= GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
