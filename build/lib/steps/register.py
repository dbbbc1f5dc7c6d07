"""Entry point `register`: gate the version the latest train run registered.

    python -m steps.register zone=GR horizon=24
    mlflow run . -e register

The latest train run is found by its tags (step=train, zone, horizon), newest finished first, in
the step's experiment; the version is the one it tagged (`gridcast.model_version`), never "the
highest version number". `register.*` sets the gate (docs/decisions/0010).
"""

from __future__ import annotations

import sys

import mlflow

from gridcast.config import GridcastConfig
from gridcast.lineage import step_run
from gridcast.registry import RegistryError, gate, model_name
from gridcast.runner import run_step
from gridcast.storage import table_store
from steps.train import TAG_MODEL_VERSION


def latest_trained_version(experiment_id: str, zone: str, horizon: int) -> tuple[str, str]:
    """(version, run id) of the newest finished train run for the zone and horizon.

    Raises:
        RegistryError: no such run, or it registered no version.
    """
    runs = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=(f"tags.step = 'train' AND tags.zone = '{zone}' AND "
                       f"tags.horizon = '{horizon}' AND attributes.status = 'FINISHED'"),
        order_by=["attributes.start_time DESC"], max_results=1, output_format="list",
    )
    if not runs:
        raise RegistryError(f"no finished train run for {zone} {horizon}h in this experiment; "
                            "run `-e train` first")
    run = runs[0]
    version = run.data.tags.get(TAG_MODEL_VERSION)
    if not version or version == "None":
        raise RegistryError(f"train run {run.info.run_id} registered no model version")
    return version, run.info.run_id


def run(cfg: GridcastConfig) -> None:
    name = model_name(cfg.zone.id, cfg.horizon, cfg.mlflow.model_prefix)
    with step_run(cfg, "register", table_store(cfg.storage)) as lineage:
        experiment_id = mlflow.get_run(lineage.run_id).info.experiment_id
        version, train_run = latest_trained_version(experiment_id, cfg.zone.id, cfg.horizon)
        mlflow.set_tags({"gridcast.model_name": name, "gridcast.model_version": version,
                         "gridcast.train_run_id": train_run})
        print(f"register: gating {name} v{version} (train run {train_run})", flush=True)
        decision = gate(name, version, cfg.register)
        mlflow.set_tags({"gridcast.gate": "passed" if decision.passed else "rejected",
                         "gridcast.promoted": str(decision.promoted).lower()})
        mlflow.log_metric("gate.candidate_mae", decision.candidate_mae)
        baselines = ", ".join(f"{b} {mae:.2f}" for b, mae in decision.baseline_mae.items())
        champion = ("" if decision.champion_mae is None else
                    f"; champion v{decision.champion_version} {decision.champion_mae:.2f}")
        print(f"register: MAE {decision.candidate_mae:.2f} vs baselines {baselines}{champion}")
        if decision.passed:
            alias = "challenger and champion" if decision.promoted else "challenger"
            print(f"register: {name} v{version} passed the gate -> {alias}")
        else:
            print(f"register: {name} v{version} rejected: " + "; ".join(decision.reasons))


def main(argv: list[str] | None = None) -> int:
    return run_step("register", run, argv)


if __name__ == "__main__":
    sys.exit(main())
