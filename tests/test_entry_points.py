"""Every MLproject entry point runs a step module with a `main`, and every step module is an
entry point: the README's `mlflow run . -e <name>` commands cannot point at nothing."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINTS = yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"]
STEP_MODULES = sorted(p.stem for p in (ROOT / "steps").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_entry_point_runs_its_step_module_with_the_common_parameters(name):
    entry = ENTRY_POINTS[name]
    module = re.match(r"python -m (steps\.\w+) ", entry["command"]).group(1)
    assert module == f"steps.{name}"
    assert callable(importlib.import_module(module).main)
    assert set(entry["parameters"]) == {"zone", "horizon", "overrides"}
    assert "{overrides}" in entry["command"]


def test_every_step_module_is_an_entry_point():
    assert STEP_MODULES == sorted(ENTRY_POINTS)
