"""Entry point `monitor`: the champion's past forecasts against what really happened.

    python -m steps.monitor zone=GR

Joins `gold.carbon_intensity_predictions` with final actuals from `silver.energy_data`, writes
error windows, drift and a status (`ok`, `degraded`, `no_actuals_yet`) into
`gold.forecast_monitoring`, and logs them to MLflow (metrics over time, plots, tag
`monitor.status`). The exit code is non-zero for `degraded` only with
`monitor.fail_on_degraded=true` (for schedulers).
"""

from __future__ import annotations

import sys

from gridcast.config import GridcastConfig
from gridcast.lineage import step_run
from gridcast.monitor_lake import champion_reference, log_outcome, monitor_zone
from gridcast.monitoring import exit_code
from gridcast.registry import model_name
from gridcast.runner import run_step
from gridcast.spark import get_spark
from gridcast.storage import table_store
from gridcast.tables import GOLD_MONITORING


def run(cfg: GridcastConfig) -> int:
    spark = get_spark(cfg.spark)
    store = table_store(cfg.storage)
    zone, name = cfg.zone.id, model_name(cfg.zone.id, cfg.horizon, cfg.mlflow.model_prefix)
    with step_run(cfg, "monitor", store) as lineage:
        reference = champion_reference(name)
        if reference is None:
            print(f"monitor {zone}: no champion of {name} yet; monitoring past predictions "
                  "against the baseline only", flush=True)
        outcome = monitor_zone(spark, store, cfg.zone, model_name=name, settings=cfg.monitor,
                               reference=reference)
        for table, version in outcome.reads.items():
            lineage.record_read(table, version)
        if outcome.merge is not None and outcome.merge.committed:
            lineage.record_write(GOLD_MONITORING, outcome.merge.version)
        log_outcome(outcome, recent_days=cfg.monitor.recent_days)
        print(f"monitor {zone}: {outcome.status.status} — {outcome.status.reason}", flush=True)
        if not outcome.metrics.empty:
            rolling = outcome.metrics[(outcome.metrics["window_kind"] != "day")
                                      & (outcome.metrics["horizon"] == 0)]
            latest = rolling.sort_values("window_end").tail(1)
            for row in latest.itertuples():
                print(f"monitor {zone}: last {cfg.monitor.rolling_days} days to "
                      f"{row.window_end:%Y-%m-%d}: MAE {row.mae:.1f} vs seasonal naive "
                      f"{row.baseline_mae:.1f} g/kWh, p10-p90 coverage "
                      f"{row.coverage_p10_p90:.0%}, {row.n_actuals} of {row.n_predictions} "
                      "predictions with actuals", flush=True)
            written = ("nothing new" if not outcome.merge.committed else
                       f"{outcome.merge.inserted} rows inserted, {outcome.merge.updated} updated")
            print(f"monitor {zone}: {GOLD_MONITORING}: {written}", flush=True)
        return exit_code(outcome.status, cfg.monitor)


def main(argv: list[str] | None = None) -> int:
    return run_step("monitor", run, argv)


if __name__ == "__main__":
    sys.exit(main())
