"""train -> register -> batch_score on a lake built by the real pipeline (ingest, medallion,
features on a tiny replay recording), with real Spark, Delta and SQLite MLflow stores.

The lake is a copy of the session's replayed lake (12 simulated days, 6-hourly runs). Training uses small split
windows (4 + 2 + 2 days) and few trees so ~10 days suffice. The train -> register chain that
the scoring tests need shares one MLflow store (`trained`); every failure path gets its own.
Tables are read back with delta-rs, so assertions cost no Spark actions.
"""

from __future__ import annotations

import json
from datetime import timedelta

import deltalake
import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from gridcast.registry import CHALLENGER, CHAMPION
from conftest import (
    REPLAYED_END, REPLAYED_EVERY_HOURS, REPLAYED_START, copy_replayed_lake, shared_data, stamp,
)
from steps import backfill, batch_score, features, medallion, register, train

START, END, EVERY_HOURS = REPLAYED_START, REPLAYED_END, REPLAYED_EVERY_HOURS
LAST_RUN = END - timedelta(hours=EVERY_HOURS)
NAME = "gridcast_GR_24h"
SMALL_TRAINING = [
    "train.split.min_train_days=4", "train.split.calibration_days=2", "train.split.test_days=2",
    "model.max_iter=40", "train.importance_rows=200", "train.importance_repeats=1",
]
# A model sized for days, not the shipped year (min leaf 200, every 3rd issue hour).
SMALL_MODEL = [
    "model.residual_base=ci_last", "model.relative_levels=false", "model.min_samples_leaf=40",
    "model.learning_rate=0.1", "model.train_issue_stride_h=1",
]


@pytest.fixture(scope="module")
def lake(replayed_lake, tmp_path_factory):
    """This module's copy of the session's replayed GR lake (12 days of 6-hourly runs)."""
    root = tmp_path_factory.mktemp("train-lake")
    copy_replayed_lake(replayed_lake, root)
    base = [f"storage.root={root / 'lake'}", f"source.recording={replayed_lake['recording'].path}",
            f"mlflow.tracking_uri=sqlite:///{root / 'pipeline.db'}"]
    return {"root": root, "base": base, "recording": replayed_lake["recording"]}


def _overrides(lake, tmp_path, *extra: str) -> list[str]:
    # The lake's storage and recording, this test's own MLflow store.
    storage = [o for o in lake["base"] if not o.startswith("mlflow.")]
    return [*storage, f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
            f"ingest.start={stamp(START)}", f"ingest.end={stamp(END)}", *extra]


def _delta(lake, layer: str, name: str) -> deltalake.DeltaTable:
    return deltalake.DeltaTable(str(lake["root"] / "lake" / layer / name))


def _utc(column: pd.Series) -> pd.Series:
    # delta-rs returns UTC, tz-aware or naive depending on the version: never local time.
    return column.dt.tz_localize("UTC") if column.dt.tz is None else column.dt.tz_convert("UTC")


def _runs(step: str) -> list[mlflow.entities.Run]:
    return mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string=f"tags.step = '{step}'")


@pytest.fixture(scope="module")
def trained(lake, tmp_path_factory):
    """One MLflow store where train, then register ran on the lake."""
    store = tmp_path_factory.mktemp("trained")
    overrides = _overrides(lake, store, *SMALL_TRAINING)
    assert train.main(overrides) == 0
    assert register.main(overrides) == 0
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    return {"store": store, "overrides": overrides}


def test_train_records_the_frame_tables_and_versions_as_inputs_and_tags_its_version(
        lake, trained, capsys):
    run = _runs("train")[0]
    inputs = {d.dataset.name: (json.loads(d.dataset.source), {t.key: t.value for t in d.tags})
              for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"silver.energy_revisions", "gold.weather_forecasts"}
    for table, (source, tags) in inputs.items():
        layer, name = table.split(".")
        assert source["path"] == str(lake["root"] / "lake" / layer / name)
        assert tags["delta_version"] == str(_delta(lake, layer, name).version())
    assert run.data.tags["gridcast.model_version"] == "1"
    version = MlflowClient().get_model_version(NAME, "1")
    assert version.run_id == run.info.run_id
    issued_from = pd.Timestamp(run.data.params["frame.issued_from"])
    assert issued_from == pd.Timestamp(START)  # the first hour anything was known
    assert pd.Timestamp(run.data.params["frame.issued_to"]) == pd.Timestamp(LAST_RUN)
    assert run.data.metrics["frame.rows"] == run.data.metrics["frame.issue_hours"] * 24
    assert run.data.metrics["rows.test"] > 0


def test_register_makes_the_first_trained_version_champion(trained):
    run = _runs("register")[0]
    assert run.data.tags["gridcast.model_version"] == "1"
    assert run.data.tags["gridcast.gate"] == "passed"
    aliases = MlflowClient().get_model_version(NAME, "1").aliases
    assert set(aliases) == {CHALLENGER, CHAMPION}


def test_the_registered_model_carries_the_signature_unity_catalog_requires(trained):
    """The Unity Catalog registry refuses a model without a signature: inputs are the frame's
    model columns (horizon first), outputs the p50 and the interval."""
    info = mlflow.models.get_model_info(f"models:/{NAME}/1")
    assert info.signature is not None
    inputs = info.signature.inputs.input_names()
    assert inputs[0] == "horizon" and "ci_last" in inputs and "target" not in inputs
    assert {"prediction", "p10", "p90"} <= set(info.signature.outputs.input_names())


def test_batch_score_forecasts_the_latest_issue_hours_next_24_hours_and_a_rerun_commits_nothing(
        lake, trained, capsys):
    assert batch_score.main(trained["overrides"]) == 0
    table = _delta(lake, "gold", "carbon_intensity_predictions")
    version = table.version()
    rows = table.to_pandas()
    rows = rows[_utc(rows["issued_at"]) == pd.Timestamp(LAST_RUN)]
    assert sorted(rows["horizon"]) == list(range(1, 25))
    assert list(_utc(rows.sort_values("horizon")["datetime"])) == [
        pd.Timestamp(LAST_RUN + timedelta(hours=h)) for h in range(1, 25)]
    assert (rows["model_version"] == "1").all() and (rows["model_name"] == NAME).all()
    assert ((rows["p10"] <= rows["prediction"]) & (rows["prediction"] <= rows["p90"])).all()
    assert rows["baseline_seasonal_naive"].notna().all() and not rows["weather_missing"].any()
    capsys.readouterr()

    assert batch_score.main(trained["overrides"]) == 0
    assert "24 already in gold.carbon_intensity_predictions, 0 written" in capsys.readouterr().out
    assert deltalake.DeltaTable(table.table_uri).version() == version


def test_batch_score_over_a_range_skips_and_counts_issue_hours_without_history(
        lake, trained, capsys):
    # Nothing is known before the first run at START: the two earlier issue hours are skipped.
    first, last = START - timedelta(hours=2), START + timedelta(hours=1)
    overrides = [*trained["overrides"], f"score.start={stamp(first)}", f"score.end={stamp(last)}"]
    assert batch_score.main(overrides) == 0
    assert "48 rows scored, 48 skipped (history absent)" in capsys.readouterr().out
    rows = _delta(lake, "gold", "carbon_intensity_predictions").to_pandas()
    issued = set(_utc(rows["issued_at"]))
    assert {pd.Timestamp(START), pd.Timestamp(START + timedelta(hours=1))} <= issued
    assert pd.Timestamp(first) not in issued


def test_the_frame_read_back_from_the_replayed_lake_sees_at_t_only_what_was_fetched_by_t(
        spark, lake):
    """Leak canaries through the real ingest, medallion and features: at an ingest hour T0 the
    last two hours are the estimates fetched then (their finals came 2 h 13 min later) and T0
    itself is unknown; three hours later, between ingests, nothing newer is known (a scheduled
    fetch's rows are available when fetched, decision 0007), though the final of T0 was
    published by then; and no weather vintage fetched after T is used."""
    from gridcast.config import load_config
    from gridcast.frame_inputs import build_scoring_frame, load_frame_inputs
    from gridcast.storage import table_store

    cfg = load_config(_overrides(lake, lake["root"]))
    t0 = pd.Timestamp(START + timedelta(days=5))  # an ingest hour (every 6 h from START)
    issue_hours = pd.DatetimeIndex([t0, t0 + pd.Timedelta(hours=3)])
    inputs = load_frame_inputs(spark, table_store(cfg.storage), cfg.zone, horizon=24,
                               settings=cfg.frame, start=issue_hours[0], end=issue_hours[-1])
    frame = build_scoring_frame(inputs, cfg.zone, 24, cfg.frame, issue_hours)
    first = frame[frame["horizon"] == 1].set_index("issued_at")
    recording, hour = lake["recording"], pd.Timedelta(hours=1)

    def ci(row: pd.Series) -> float:
        return pytest.approx(float(row["carbon_intensity"]), abs=0.01)

    at_t0 = first.loc[t0]
    assert at_t0["ci_last_age_h"] == 1
    assert at_t0["ci_last"] == ci(recording.estimate_row(t0 - hour))
    assert at_t0["ci_lag_2h"] == ci(recording.estimate_row(t0 - 2 * hour))
    assert at_t0["ci_lag_3h"] == ci(recording.final_row(t0 - 3 * hour))
    assert at_t0["target"] == ci(recording.final_row(t0 + hour))  # the target is always final
    later = first.loc[t0 + pd.Timedelta(hours=3)]
    assert later["ci_last_age_h"] == 4
    assert later["ci_last"] == ci(recording.estimate_row(t0 - hour))
    known = frame[frame["weather_lead_h"].notna()]
    assert len(known) > 0 and (known["weather_lead_h"] >= known["horizon"]).all()


def test_batch_score_without_a_champion_is_a_clear_error(lake, tmp_path, capsys):
    assert batch_score.main(_overrides(lake, tmp_path)) == 1
    err = capsys.readouterr().err
    assert f"error: batch_score failed: no champion for {NAME}" in err
    assert "Traceback" not in err


def test_train_with_too_little_data_exits_with_the_hours_needed_and_available(
        lake, tmp_path, capsys):
    # The default windows (28 + 14 + 14 days) need far more than the lake's 12 days.
    assert train.main(_overrides(lake, tmp_path)) == 1
    err = capsys.readouterr().err
    assert "error: train failed: need at least 1392 hours of labelled issue times" in err
    assert ", have 2" in err and "Traceback" not in err


def test_register_without_a_train_run_is_a_clear_error(lake, tmp_path, capsys):
    assert register.main(_overrides(lake, tmp_path)) == 1
    err = capsys.readouterr().err
    assert "error: register failed: no finished train run for GR 24h" in err


def test_a_portal_zone_backfilled_from_files_alone_trains_and_gates_72_hours_ahead(
        tmp_path, capsys):
    """The README's backtesting recipe (a portal CSV backfilled with no fetch, so no weather),
    then medallion, features, train and register at the longest horizon, on a fresh lake."""
    portal = shared_data("electricitymaps/ES_2021_hourly.csv")
    eight_weeks = tmp_path / "ES_2021_eight_weeks.csv"
    with portal.open(encoding="utf-8") as lines:
        eight_weeks.write_text("".join(next(lines) for _ in range(1 + 56 * 24)), encoding="utf-8")
    overrides = [f"storage.root={tmp_path / 'lake'}",
                 f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                 "zone=ES", "horizon=72", f"backfill.portal_csv=[{eight_weeks}]",
                 *SMALL_TRAINING, *SMALL_MODEL,
                 # Calibration targets end H hours before the test window, test targets at the
                 # newest hour: 4 days of each leave 24 issue hours for h = 72.
                 "train.split.calibration_days=4", "train.split.test_days=4"]
    for step in (backfill, medallion, features, train, register):
        assert step.main(overrides) == 0, step.__name__
    out = capsys.readouterr().out
    assert "bronze incomplete" not in out
    assert "registered gridcast_ES_72h v1" in out
    run = _runs("train")[0]
    assert run.data.tags["zone"] == "ES"
    assert {f"mae_h{h:02d}" for h in (1, 48, 72)} <= set(run.data.metrics)
    gate = MlflowClient().get_model_version("gridcast_ES_72h", "1").tags["gridcast.gate"]
    assert gate in {"passed", "rejected"}
