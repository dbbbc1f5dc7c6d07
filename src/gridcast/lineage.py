"""One MLflow run per step, with lineage: config, code, and every Delta table read or written.

- tags `zone`, `horizon`, `step`, plus the code version (`gridcast.git_commit`, `gridcast.git_dirty`);
- the resolved configuration as `config/resolved.yaml` and as `cfg.`-prefixed params;
- each table read as an MLflow dataset input (a Delta source with its version, version 0 too);
- each table written as a tag `lineage.output.<layer>.<name>` = `<identifier>@v<version>`;
- both lists in `lineage/lineage.json`.
"""

from __future__ import annotations

import json
import os
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import mlflow
import yaml
from mlflow.data.delta_dataset_source import DeltaDatasetSource
from mlflow.data.http_dataset_source import HTTPDatasetSource
from mlflow.data.meta_dataset import MetaDataset

from gridcast import __version__
from gridcast.config import GridcastConfig, repo_root
from gridcast.storage import LocalTableStore, TableStore
from gridcast.tables import Table

MAX_PARAM_LENGTH = 6000


def configure_mlflow(cfg: GridcastConfig) -> str:
    """Point MLflow at the configured store and experiment; returns the experiment id.

    Under `mlflow run` the CLI has already created the run (MLFLOW_RUN_ID) in the experiment it
    was given (`--experiment-name`); the step then logs into that run and experiment.
    """
    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    # Unity Catalog on Databricks; locally the tracking store is the registry. Always set: a
    # registry URI set earlier in the process (another store) must not outlive the tracking URI.
    mlflow.set_registry_uri(cfg.mlflow.registry_uri or cfg.mlflow.tracking_uri)
    if os.environ.get("MLFLOW_RUN_ID") and os.environ.get("MLFLOW_EXPERIMENT_ID"):
        return os.environ["MLFLOW_EXPERIMENT_ID"]
    experiment = mlflow.get_experiment_by_name(cfg.mlflow.experiment)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    else:
        experiment_id = mlflow.create_experiment(
            cfg.mlflow.experiment, artifact_location=cfg.mlflow.artifact_location
        )
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def flatten_params(node: Any, prefix: str = "cfg") -> dict[str, str]:
    """Flatten a config tree into `cfg.a.b` params; lists become JSON."""
    if isinstance(node, dict):
        flat: dict[str, str] = {}
        for key, value in node.items():
            flat.update(flatten_params(value, f"{prefix}.{key}"))
        return flat
    text = json.dumps(node) if isinstance(node, list) else str(node)
    return {prefix: text[:MAX_PARAM_LENGTH]}


def code_version() -> dict[str, str]:
    """The git commit of the checkout and whether it has uncommitted changes."""
    root = repo_root()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"gridcast.version": __version__}
    return {"gridcast.version": __version__, "gridcast.git_commit": commit, "gridcast.git_dirty": str(bool(dirty)).lower()}


@dataclass
class TableVersion:
    table: str
    identifier: str
    version: int

    def as_text(self) -> str:
        return f"{self.identifier}@v{self.version}"


@dataclass
class StepRun:
    """The MLflow run of one step and the lineage it accumulates."""

    run_id: str
    store: TableStore
    reads: list[TableVersion] = field(default_factory=list)
    writes: list[TableVersion] = field(default_factory=list)
    # Spark job groups other than the step's own whose jobs are the step's too: a streaming
    # query's (Structured Streaming runs its batches under its run id, not the caller's group).
    job_groups: list[str] = field(default_factory=list)

    def count_jobs_of(self, group: str | None) -> None:
        """Count the Spark jobs of `group` in the step's `spark_jobs` (None: nothing to add)."""
        if group and group not in self.job_groups:
            self.job_groups.append(group)

    def _source(self, table: Table, version: int) -> DeltaDatasetSource:
        identifier = self.store.identifier(table)
        if isinstance(self.store, LocalTableStore):
            return DeltaDatasetSource(path=identifier, delta_table_version=version)
        return DeltaDatasetSource(delta_table_name=identifier, delta_table_version=version)

    def record_read(self, table: Table, version: int) -> None:
        """Log a Delta table version this step read as an MLflow dataset input."""
        dataset = MetaDataset(self._source(table, version), name=table.qualified_name)
        mlflow.log_input(dataset, context="read", tags={"delta_version": str(version)})
        self.reads.append(TableVersion(table.qualified_name, self.store.identifier(table), version))

    def record_write(self, table: Table, version: int) -> None:
        """Record a Delta table version this step wrote (the last one wins for the tag)."""
        entry = TableVersion(table.qualified_name, self.store.identifier(table), version)
        self.writes = [w for w in self.writes if w.table != entry.table] + [entry]
        mlflow.set_tag(f"lineage.output.{table.qualified_name}", entry.as_text())

    def record_http_source(self, name: str, url: str) -> None:
        """Log an upstream API (its base URL, never a credential) as a dataset input."""
        mlflow.log_input(MetaDataset(HTTPDatasetSource(url=url), name=name), context="source")

    def _write_manifest(self) -> None:
        mlflow.log_dict(
            {"reads": [vars(r) for r in self.reads], "writes": [vars(w) for w in self.writes]},
            "lineage/lineage.json",
        )


class SparkJobCounter:
    """Counts the Spark jobs run between its creation and `stop()`, through a job group and
    Spark's status tracker: the step budget is kept in actions, not rows.

    Jobs count when they run in the group: in the creating thread, in threads started with
    `pyspark.util.inheritable_thread_target` (which copy the group), and in the other groups
    given to `stop` (a streaming query's, which Spark sets on its own thread).

    Where there is no SparkContext to ask (Spark Connect: Databricks serverless and shared
    compute), `stop()` returns None and nothing is counted.
    """

    def __init__(self, group: str):
        from pyspark.sql import SparkSession

        self.group, self._context, self._previous = group, None, None
        session = SparkSession.getActiveSession()
        try:
            context = session.sparkContext if session is not None else None
        except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext
            context = None
        if context is not None:
            self._previous = context.getLocalProperty("spark.jobGroup.id")
            context.setJobGroup(group, group)
            self._context = context

    def stop(self, also: Sequence[str] = ()) -> int | None:
        if self._context is None:
            return None
        tracker = self._context.statusTracker()
        count = sum(len(tracker.getJobIdsForGroup(group)) for group in (self.group, *also))
        if self._previous:
            self._context.setJobGroup(self._previous, self._previous)
        else:
            self._context.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
        return count


@contextmanager
def step_run(cfg: GridcastConfig, step: str, store: TableStore) -> Iterator[StepRun]:
    """Open the step's MLflow run (nested under an active parent run) and log its context."""
    configure_mlflow(cfg)
    nested = mlflow.active_run() is not None
    with mlflow.start_run(run_name=f"{step}-{cfg.zone.id}-{cfg.horizon}h", nested=nested) as run:
        mlflow.set_tags({
            "zone": cfg.zone.id, "horizon": str(cfg.horizon), "step": step,
            "source": cfg.source.kind, "storage": cfg.storage.kind, **code_version(),
        })
        mlflow.log_params(flatten_params(cfg.raw))
        mlflow.log_text(yaml.safe_dump(cfg.raw, sort_keys=False), "config/resolved.yaml")
        step_run_ = StepRun(run_id=run.info.run_id, store=store)
        jobs = SparkJobCounter(f"gridcast-{step}-{run.info.run_id}")
        try:
            yield step_run_
        finally:
            step_run_._write_manifest()
            counted = jobs.stop(step_run_.job_groups)
            if counted is not None:
                mlflow.log_metric("spark_jobs", counted)
