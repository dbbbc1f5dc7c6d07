"""Databricks deployment without a workspace: the wheel a job installs, the asset bundle's jobs
built with the maintained `databricks-bundles` classes, the notebooks, and the storage / MLflow /
secret seams under `storage=databricks`.

One test runs the monitor notebook's code locally against a real lake and MLflow store, with a
small stand-in for Databricks' `dbutils` (widgets in, task value and exit out): the notebook and
the `gridcast-monitor` entry point run the same step function.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from databricks.bundles.jobs import Job

from gridcast.config import ConfigError, load_config
from gridcast.registry import model_name
from gridcast.storage import table_store
from gridcast.tables import BRONZE_WEATHER, SILVER_ENERGY, SILVER_WEATHER

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCRIPTS: dict[str, str] = PYPROJECT["project"]["scripts"]
BUNDLE = yaml.safe_load((ROOT / "databricks.yml").read_text())
RESOURCE_FILES = sorted((ROOT / "resources").glob("*.yml"))
STEP_MODULES = sorted(p.stem for p in (ROOT / "steps").glob("*.py") if p.stem != "__init__")
NOTEBOOK_HEADER = "# Databricks notebook source"
CELL = "# COMMAND ----------"
# serve binds a local HTTP server to 127.0.0.1: nothing a job or a notebook should start.
NOT_NOTEBOOKS = {"serve"}
# Every step a deployment runs on a schedule (or once, for backfill).
SCHEDULED = {"backfill", "ingest", "medallion", "features", "batch_score", "train", "register",
             "promote", "monitor"}


def _jobs() -> dict[str, tuple[Path, dict[str, Any]]]:
    jobs = {}
    for path in RESOURCE_FILES:
        for key, job in yaml.safe_load(path.read_text())["resources"]["jobs"].items():
            assert key not in jobs, f"job {key} defined twice"
            jobs[key] = (path, job)
    return jobs


JOBS = _jobs()


def _tasks(tasks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every task, the ones nested in for_each tasks included."""
    for task in tasks:
        yield task
        if "for_each_task" in task:
            yield from _tasks([task["for_each_task"]["task"]])


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def _notebook_code(path: Path) -> str:
    """The notebook's Python cells; `# MAGIC` cells (markdown, %pip) are Databricks-only."""
    cells = path.read_text().removeprefix(NOTEBOOK_HEADER).split(CELL)
    code = [cell for cell in cells
            if any(line.strip() and not line.startswith("# MAGIC") for line in cell.splitlines())]
    return "\n".join(code)


# --- the wheel -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(ROOT),
                    "-w", str(out)], check=True, capture_output=True)
    (built,) = out.glob("gridcast-*.whl")
    return built


def test_wheel_ships_every_package_step_and_config_but_not_the_recording(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = [p.parent.relative_to(ROOT / "src") for p in (ROOT / "src").rglob("__init__.py")]
    for package in packages:
        assert f"{package.as_posix()}/__init__.py" in names, f"{package} missing from the wheel"
    for step in STEP_MODULES:
        assert f"steps/{step}.py" in names
    for config in (ROOT / "conf").rglob("*.yaml"):
        assert f"gridcast/conf/{config.relative_to(ROOT / 'conf').as_posix()}" in names
    assert "gridcast/log4j2.properties" in names
    recording = {p.name for p in (ROOT / "data" / "recordings").rglob("*") if p.is_file()}
    assert recording and not [n for n in names if Path(n).name in recording or "recordings/" in n]


def test_wheel_declares_one_entry_point_per_step(wheel):
    with zipfile.ZipFile(wheel) as archive:
        entry_points = next(archive.read(n).decode() for n in archive.namelist()
                            if n.endswith("entry_points.txt"))
    for step in STEP_MODULES:
        assert f"gridcast-{step.replace('_', '-')} = steps.{step}:main" in entry_points


def test_installed_wheel_finds_its_packaged_config_without_a_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = ("import gridcast, gridcast.config as c; cfg = c.load_config(['zone=DE']); "
             "print(gridcast.__file__); print(c.conf_dir()); print(cfg.zone.id)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                            text=True, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    package, conf, zone = result.stdout.split()
    assert Path(package).is_relative_to(site)
    assert Path(conf) == site / "gridcast" / "conf"
    assert zone == "DE"


def test_spark_is_an_extra_so_databricks_keeps_its_own():
    base = " ".join(PYPROJECT["project"]["dependencies"])
    assert "pyspark" not in base and "delta-spark" not in base
    extra = PYPROJECT["project"]["optional-dependencies"]["spark"]
    assert any(d.startswith("pyspark==") for d in extra)


# --- the bundle ------------------------------------------------------------------------------

@pytest.mark.parametrize("key", sorted(JOBS))
def test_job_builds_with_the_bundle_job_class(key):
    _, job = JOBS[key]
    built = Job.from_dict(job)  # rejects unknown fields, wrong shapes and enum values
    assert built.name and built.tasks


def test_bundle_targets_dev_by_default_in_development_mode_and_prod():
    targets = BUNDLE["targets"]
    assert targets["dev"]["mode"] == "development" and targets["dev"]["default"] is True
    assert targets["prod"]["mode"] == "production"
    assert {"catalog", "schema", "zone", "horizon"} <= set(BUNDLE["variables"])


def test_every_bundle_variable_is_declared_and_used():
    declared = set(BUNDLE["variables"])
    used = {m for text in _strings([job for _, job in JOBS.values()])
            for m in re.findall(r"\$\{var\.(\w+)\}", text)}
    assert used <= declared
    assert declared <= used, f"unused variables: {declared - used}"
    for target in BUNDLE["targets"].values():
        assert set(target.get("variables", {})) <= declared


@pytest.mark.parametrize("key", sorted(JOBS))
def test_job_parameters_resolve_and_are_used(key):
    _, job = JOBS[key]
    declared = {p["name"] for p in job.get("parameters", [])}
    text = list(_strings(job["tasks"]))
    used = {m for t in text for m in re.findall(r"\{\{job\.parameters\.(\w+)\}\}", t)}
    assert used == declared


@pytest.mark.parametrize("key", sorted(JOBS))
def test_task_dependencies_and_task_values_resolve(key):
    _, job = JOBS[key]
    tasks = {t["task_key"]: t for t in job["tasks"]}
    for task in job["tasks"]:
        for dependency in task.get("depends_on", []):
            upstream = tasks[dependency["task_key"]]
            # An outcome only exists for a condition task.
            assert ("outcome" in dependency) == ("condition_task" in upstream)
    for text in _strings(job["tasks"]):
        for upstream, value in re.findall(r"\{\{tasks\.(\w+)\.values\.(\w+)\}\}", text):
            notebook = ROOT / "resources" / tasks[upstream]["notebook_task"]["notebook_path"]
            assert f'taskValues.set(key="{value}"' in notebook.read_text()


@pytest.mark.parametrize("key", sorted(JOBS))
def test_every_entry_point_notebook_environment_and_job_reference_resolves(key):
    path, job = JOBS[key]
    environments = {e["environment_key"]: e for e in job.get("environments", [])}
    for task in _tasks(job["tasks"]):
        if "python_wheel_task" in task:
            wheel_task = task["python_wheel_task"]
            assert wheel_task["package_name"] == PYPROJECT["project"]["name"]
            module, function = SCRIPTS[wheel_task["entry_point"]].split(":")
            assert callable(getattr(importlib.import_module(module), function))
            spec = environments[task["environment_key"]]["spec"]
            # The bundle replaces a local wheel path by the uploaded artifact it built.
            (dependency,) = spec["dependencies"]
            assert (path.parent / dependency).parent.resolve() == ROOT / "dist"
            assert BUNDLE["artifacts"]["gridcast"]["build"].endswith("-w dist")
        if "notebook_task" in task:
            notebook = path.parent / task["notebook_task"]["notebook_path"]
            assert notebook.read_text().startswith(NOTEBOOK_HEADER)
        if "run_job_task" in task:
            job_id = task["run_job_task"]["job_id"]
            target = re.fullmatch(r"\$\{resources\.jobs\.(\w+)\.id\}", job_id)
            _, started = JOBS[target.group(1)]
            names = {p["name"] for p in started["parameters"]}
            assert set(task["run_job_task"]["job_parameters"]) <= names
        if "for_each_task" in task:
            assert task["for_each_task"]["inputs"] == "{{job.parameters.zones}}"


def test_every_scheduled_step_runs_in_a_job_and_schedules_are_utc():
    started = set()
    for _, job in JOBS.values():
        for task in _tasks(job["tasks"]):
            if "python_wheel_task" in task:
                started.add(SCRIPTS[task["python_wheel_task"]["entry_point"]].split(":")[0])
            if "notebook_task" in task:
                started.add("steps." + Path(task["notebook_task"]["notebook_path"]).stem)
        if "schedule" in job:
            assert job["schedule"]["timezone_id"] == "UTC"
    assert {f"steps.{s}" for s in SCHEDULED} <= started


def test_degraded_monitoring_starts_the_training_job():
    _, job = JOBS["gridcast_zone_monitoring"]
    tasks = {t["task_key"]: t for t in job["tasks"]}
    assert tasks["degraded"]["condition_task"] == {
        "left": "{{tasks.monitor.values.status}}", "op": "EQUAL_TO", "right": "degraded"}
    assert tasks["retrain"]["depends_on"] == [{"task_key": "degraded", "outcome": "true"}]
    retrain = tasks["retrain"]["run_job_task"]["job_id"]
    assert retrain == "${resources.jobs.gridcast_zone_training.id}"


def test_prod_promotes_in_an_explicit_task_and_dev_in_register():
    assert BUNDLE["variables"]["auto_promote"]["default"] == "true"
    assert BUNDLE["targets"]["prod"]["variables"]["auto_promote"] == "false"
    _, job = JOBS["gridcast_zone_training"]
    tasks = {t["task_key"]: t for t in job["tasks"]}
    assert tasks["explicit_promotion"]["condition_task"]["left"] == "${var.auto_promote}"
    assert tasks["promote"]["depends_on"] == [{"task_key": "explicit_promotion", "outcome": "true"}]
    parameters = tasks["register"]["python_wheel_task"]["parameters"]
    assert "register.auto_promote=${var.auto_promote}" in parameters


# --- notebooks -------------------------------------------------------------------------------

@pytest.mark.parametrize("step", [s for s in STEP_MODULES if s not in NOT_NOTEBOOKS])
def test_notebook_calls_its_steps_main(step):
    notebook = ROOT / "notebooks" / f"{step}.py"
    text = notebook.read_text()
    assert text.startswith(NOTEBOOK_HEADER) and CELL in text
    code = _notebook_code(notebook)
    assert f"from steps import {step}\n" in code and f"code = {step}.main(parameters)" in code
    assert "dbutils.notebook.exit(str(code))" in code
    assert callable(importlib.import_module(f"steps.{step}").main)


class _Exit(Exception):
    """dbutils.notebook.exit: ends the notebook with a value."""


class FakeDbutils:
    """The parts of Databricks' dbutils a gridcast notebook uses."""

    def __init__(self, parameters: dict[str, str]):
        self.parameters, self.values = dict(parameters), {}
        self.widgets = self.jobs = self.notebook = self
        self.taskValues = self

    def text(self, name: str, default: str) -> None:  # widgets.text: a job parameter wins
        self.parameters.setdefault(name, default)

    def get(self, name: str) -> str:  # widgets.get
        return self.parameters[name]

    def set(self, key: str, value: str) -> None:  # jobs.taskValues.set
        self.values[key] = value

    def exit(self, value: str) -> None:  # notebook.exit
        raise _Exit(value)


def _run_notebook(name: str, parameters: dict[str, str]) -> tuple[str, dict[str, str]]:
    dbutils = FakeDbutils(parameters)
    code = _notebook_code(ROOT / "notebooks" / f"{name}.py")
    with pytest.raises(_Exit) as exited:
        exec(compile(code, f"notebooks/{name}.py", "exec"), {"dbutils": dbutils})
    return str(exited.value), dbutils.values


def test_monitor_notebook_publishes_a_degraded_status_for_the_retrain_condition(
        spark, tmp_path, isolated):
    from test_monitor_step import _actuals, _predictions, _register_champion

    from gridcast.pandas_io import merge_frame
    from gridcast.storage import LocalTableStore
    from gridcast.tables import GOLD_PREDICTIONS

    store = LocalTableStore(tmp_path / "lake")
    actuals = _actuals()
    merge_frame(spark, store, SILVER_ENERGY, actuals)
    merge_frame(spark, store, GOLD_PREDICTIONS, _predictions(actuals, model_error=40.0))
    _register_champion(f"sqlite:///{tmp_path / 'mlflow.db'}", mae=3.0)
    exit_value, values = _run_notebook("monitor", {
        "zone": "GR", "horizon": "24", "overrides": " ".join(isolated)})
    assert values == {"status": "degraded"}
    assert exit_value == "0"


def test_notebook_fails_its_task_on_a_step_error():
    dbutils = FakeDbutils({"zone": "XX", "horizon": "24", "overrides": ""})
    code = _notebook_code(ROOT / "notebooks" / "promote.py")
    with pytest.raises(RuntimeError, match="promote exited with code 2"):
        exec(compile(code, "notebooks/promote.py", "exec"), {"dbutils": dbutils})


# --- storage=databricks ----------------------------------------------------------------------

DATABRICKS = ["storage=databricks", "source=live", "storage.catalog=main", "storage.schema=grid"]


def test_unity_catalog_tables_are_catalog_schema_layer_name():
    store = table_store(load_config(DATABRICKS).storage)
    assert store.identifier(SILVER_ENERGY) == "main.grid.silver_energy_data"
    # The layer stays in the name: bronze and silver both have a weather_forecast_data.
    assert store.identifier(BRONZE_WEATHER) != store.identifier(SILVER_WEATHER)


def test_databricks_mlflow_is_the_workspace_and_the_unity_catalog_registry(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = load_config(DATABRICKS + ["zone=DE", "horizon=48"])
    assert cfg.mlflow.tracking_uri == "databricks"
    assert cfg.mlflow.registry_uri == "databricks-uc"
    assert cfg.mlflow.experiment == "/Shared/gridcast"
    assert cfg.storage.checkpoints == "/Volumes/main/grid/checkpoints"
    name = model_name(cfg.zone.id, cfg.horizon, cfg.mlflow.model_prefix)
    assert name == "main.grid.gridcast_DE_48h"


def test_local_mlflow_names_are_unchanged(isolated):
    cfg = load_config(isolated)
    assert cfg.mlflow.registry_uri is None and cfg.mlflow.experiment == "gridcast"
    assert model_name("GR", 24, cfg.mlflow.model_prefix) == "gridcast_GR_24h"


def test_databricks_stages_silver_batches_in_a_table_and_local_runs_checkpoint_them(isolated):
    # Serverless has neither caching nor a reliable localCheckpoint (decision 0026).
    databricks, local = table_store(load_config(DATABRICKS).storage), table_store(
        load_config(isolated).storage)
    assert databricks.materialize_mode == "staging_table"
    assert local.materialize_mode == "local_checkpoint"


def test_an_unknown_materialize_mode_is_a_config_error(isolated):
    with pytest.raises(ConfigError, match="storage.materialize='cache' is not one of "
                                          "local_checkpoint, staging_table"):
        load_config([*isolated, "storage.materialize=cache"])


def test_databricks_storage_needs_a_schema():
    with pytest.raises(ConfigError, match="needs storage.catalog and storage.schema"):
        load_config(["storage=databricks", "source=live", "storage.schema=null"])


def test_configure_mlflow_sets_the_configured_registry(tmp_path):
    import mlflow

    from gridcast.lineage import configure_mlflow

    cfg = load_config(DATABRICKS + [f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                                    f"+mlflow.registry_uri=sqlite:///{tmp_path / 'registry.db'}"])
    try:
        configure_mlflow(cfg)
        assert mlflow.get_registry_uri() == f"sqlite:///{tmp_path / 'registry.db'}"
        assert mlflow.get_experiment_by_name("/Shared/gridcast") is not None
    finally:
        mlflow.set_registry_uri("")


def test_secrets_come_from_the_databricks_runtime_dbutils(monkeypatch):
    import types

    from gridcast.sources.secrets import ELECTRICITYMAPS, get_secret

    asked = []

    class Secrets:
        def get(self, scope: str, key: str) -> str:
            asked.append((scope, key))
            return "token-from-scope"

    runtime = types.ModuleType("databricks.sdk.runtime")
    runtime.dbutils = types.SimpleNamespace(secrets=Secrets())
    monkeypatch.setitem(sys.modules, "databricks.sdk.runtime", runtime)
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "client.4.0")
    assert get_secret(ELECTRICITYMAPS, environ={}).reveal() == "token-from-scope"
    assert asked == [("APIs", "electricitymaps-token")]
