# gridcast: `make run` sets everything up and runs the pipeline; `make test` sets up and tests.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test setup jars ingest benchmark clean

run: setup
	$(BIN)/python -m steps.main

# The whole suite in the machine's time zone, then the time-sensitive tests (marker `tz`) again
# under a zone far from UTC: PySpark hands naive local datetimes to Python, so a suite that only
# ever ran on UTC can hide an offset bug.
TEST_TZ ?= America/New_York
test: setup
	$(BIN)/python -m pytest
	TZ=$(TEST_TZ) $(BIN)/python -m pytest -m tz -q

setup: $(INSTALLED) jars

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "gridcast needs Python 3.11+; set PYTHON=/path/to/python3.11")'
	@command -v java >/dev/null || { echo "gridcast needs Java 17 (Spark): install e.g. openjdk-17-jre-headless" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

# Delta Lake's JARs, fetched once into ~/.cache/gridcast/jars (a no-op when cached).
jars: $(INSTALLED)
	$(BIN)/python -m gridcast.jars

ingest: setup
	$(BIN)/python -m steps.ingest

benchmark: setup
	$(BIN)/python benchmarks/ingest.py

# Generated state only: the lake, the MLflow store and its artifacts.
clean:
	rm -rf lake mlflow.db mlartifacts spark-warehouse metastore_db
