"""Entry point `serve`: our forecasts over HTTP in the carbon-aware SDK's shape, on 127.0.0.1.

    python -m steps.serve zone=GR serve.port=8090
    curl 'http://127.0.0.1:8090/emissions/forecasts/current?location=GR&windowSize=240'

Answers from `gold.carbon_intensity_predictions` (the champion's rows), re-read only when the
table has a new version. Stops on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Callable

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from gridcast.config import GridcastConfig
from gridcast.lineage import configure_mlflow
from gridcast.pandas_io import read_table
from gridcast.registry import model_name
from gridcast.runner import run_step
from gridcast.serve import HOST, serve_until_signalled
from gridcast.spark import get_spark
from gridcast.storage import TableStore, table_store
from gridcast.tables import GOLD_PREDICTIONS
from steps.recommend import champion_version


def predictions_provider(spark: SparkSession, store: TableStore,
                         model_names: list[str]) -> Callable[[], pd.DataFrame]:
    """A provider for the server: the predictions of `model_names`, cached per table version
    (a request costs a Delta log listing, not a table scan, until the next batch_score)."""
    cache: dict[str, object] = {"version": None, "frame": None}

    def provide() -> pd.DataFrame:
        version = store.version(spark, GOLD_PREDICTIONS)
        if version is None:
            return pd.DataFrame(columns=[f.name for f in GOLD_PREDICTIONS.schema.fields])
        if version != cache["version"]:
            cache["frame"] = read_table(spark, store, GOLD_PREDICTIONS,
                                        where=F.col("model_name").isin(model_names))
            cache["version"] = version
        return cache["frame"]  # type: ignore[return-value]

    return provide


def run(cfg: GridcastConfig) -> None:
    spark = get_spark(cfg.spark)
    store = table_store(cfg.storage)
    configure_mlflow(cfg)
    zones = list(cfg.serve.zones) or [cfg.zone.id]
    names = [model_name(zone, cfg.horizon, cfg.mlflow.model_prefix) for zone in zones]
    settings = cfg.serve
    if settings.model_version is None and len(zones) == 1:
        settings = replace(settings, model_version=champion_version(names[0]))
    settings = replace(settings, zones=tuple(zones))
    print(f"serve: http://{HOST}:{settings.port}/emissions/forecasts/current?location="
          f"{zones[0]} (zones {', '.join(zones)}; Ctrl-C stops)", file=sys.stderr, flush=True)
    serve_until_signalled(predictions_provider(spark, store, names), settings)


def main(argv: list[str] | None = None) -> int:
    return run_step("serve", run, argv)


if __name__ == "__main__":
    sys.exit(main())
