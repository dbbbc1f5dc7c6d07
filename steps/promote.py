"""Entry point `promote`: make a version that passed the gate the champion.

    python -m steps.promote promote.version=3     # an explicit version
    mlflow run . -e promote                       # the current challenger

For production configs (`register.auto_promote=false`), where passing the gate only makes a
version the challenger.
"""

from __future__ import annotations

import sys

import mlflow

from gridcast.config import GridcastConfig
from gridcast.lineage import step_run
from gridcast.registry import challenger_version, model_name, promote
from gridcast.runner import run_step
from gridcast.storage import table_store


def run(cfg: GridcastConfig) -> None:
    name = model_name(cfg.zone.id, cfg.horizon, cfg.mlflow.model_prefix)
    with step_run(cfg, "promote", table_store(cfg.storage)):
        version = (str(cfg.promote.version) if cfg.promote.version is not None
                   else challenger_version(name))
        promote(name, version)
        mlflow.set_tags({"gridcast.model_name": name, "gridcast.model_version": version})
        print(f"promote: {name} v{version} is now champion")


def main(argv: list[str] | None = None) -> int:
    return run_step("promote", run, argv)


if __name__ == "__main__":
    sys.exit(main())
