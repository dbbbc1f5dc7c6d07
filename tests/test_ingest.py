"""The ingest step end to end: real replay server, real Spark + Delta, real SQLite MLflow store.

Bronze tables are read back with `deltalake` (delta-rs), a second Delta implementation, which
also keeps Spark actions out of the assertions.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import deltalake
import mlflow
import pandas as pd
import pytest
import yaml

from gridcast.replay import ReplayServer
from replay_fixtures import build_tiny_recording
from steps import ingest as ingest_step

START = datetime(2025, 3, 10, tzinfo=timezone.utc)
END = START + timedelta(days=7)
RUNS = 7 * 24 // 3
LOCATIONS = 3


def bronze(lake, name: str) -> pd.DataFrame:
    return deltalake.DeltaTable(str(lake / "bronze" / name)).to_pandas()


def version(lake, name: str) -> int:
    return deltalake.DeltaTable(str(lake / "bronze" / name)).version()


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return build_tiny_recording(tmp_path_factory.mktemp("recording"), start=START - timedelta(days=1), hours=24 * 9)


def replay_overrides(root, recording, end: datetime, every_hours: int) -> list[str]:
    """Overrides for a replay schedule from START, with the lake and MLflow store under root."""
    return [
        f"storage.root={root / 'lake'}", f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}",
        f"source.recording={recording}", f"ingest.start={START:%Y-%m-%dT%H:%M:%SZ}",
        f"ingest.end={end:%Y-%m-%dT%H:%M:%SZ}", f"ingest.every_hours={every_hours}",
    ]


@pytest.fixture(scope="module")
def seven_days(spark, recording, tmp_path_factory):
    """One 7-day, 3-hourly replay schedule through the step's own entry point."""
    root = tmp_path_factory.mktemp("seven_days")
    overrides = replay_overrides(root, recording.path, END, 3)
    exit_code = ingest_step.main(overrides)
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    run = mlflow.search_runs(experiment_names=["gridcast"], output_format="list", order_by=["start_time ASC"])[0]
    return root / "lake", exit_code, run


def test_seven_day_schedule_writes_one_raw_response_per_request(seven_days):
    lake, exit_code, _ = seven_days
    assert exit_code == 0
    assert len(bronze(lake, "carbon_data")) == RUNS
    assert len(bronze(lake, "power_data")) == RUNS
    weather = bronze(lake, "weather_forecast_data")
    assert len(weather) == RUNS * LOCATIONS
    assert weather.groupby("location").size().to_dict() == {"Athens": RUNS, "Patras": RUNS, "Thessaloniki": RUNS}


def test_schedule_writes_in_a_few_delta_commits(seven_days):
    lake, _, _ = seven_days
    # One append per table, which created it (version 0) with its declared properties.
    assert {name: version(lake, name) for name in ("carbon_data", "power_data", "weather_forecast_data")} == {
        "carbon_data": 0, "power_data": 0, "weather_forecast_data": 0,
    }
    assert deltalake.DeltaTable(str(lake / "bronze" / "power_data")).metadata().configuration["delta.appendOnly"] == "true"


def test_bronze_rows_carry_their_provenance(seven_days):
    lake, _, run = seven_days
    schedule = {START + timedelta(hours=3 * i) for i in range(RUNS)}
    for name, endpoint in (("carbon_data", "carbon-intensity/history"), ("power_data", "power-breakdown/history"),
                           ("weather_forecast_data", "timeline")):
        rows = bronze(lake, name)
        assert (rows["zone"] == "GR").all()
        assert (rows["endpoint"] == endpoint).all()
        assert (rows["http_status"] == 200).all() and rows["error"].isna().all()
        assert (rows["attempts"] == 1).all() and (rows["source"] == "replay").all()
        assert (rows["ingest_run_id"] == run.info.run_id).all()
        assert set(rows["ingested_at"].dt.tz_convert("UTC")) == {pd.Timestamp(t) for t in schedule}
        assert (rows["payload_hash"] == rows["response_body"].map(lambda b: hashlib.sha256(b.encode()).hexdigest())).all()
        params = rows["request_params"].map(json.loads)
        assert not any("key" in p or "auth-token" in p for p in params)
    carbon = json.loads(bronze(lake, "carbon_data")["response_body"].iloc[0])
    assert carbon["zone"] == "GR" and carbon["history"][0]["datetime"].endswith(".000Z")


def test_rerunning_a_schedule_fetches_and_commits_nothing(seven_days, capsys):
    lake, _, run = seven_days
    overrides = replay_overrides(lake.parent, run.data.params["cfg.source.recording"], END, 3)
    assert ingest_step.main(overrides) == 0
    assert f"0 responses, 0 failed, {RUNS * (2 + LOCATIONS)} already in bronze" in capsys.readouterr().out
    assert {name: version(lake, name) for name in ("carbon_data", "power_data", "weather_forecast_data")} == {
        "carbon_data": 0, "power_data": 0, "weather_forecast_data": 0,
    }


BRONZE_NAMES = ("carbon_data", "power_data", "weather_forecast_data")
ANSWER_KEY = ["zone", "endpoint", "request_params", "ingested_at", "http_status", "payload_hash", "error"]


@pytest.fixture(scope="module")
def faulty_reruns(spark, recording, tmp_path_factory):
    """One day, 6-hourly, with half the requests faulted and no retries, run twice."""
    root = tmp_path_factory.mktemp("faulty")
    overrides = [
        *replay_overrides(root, recording.path, START + timedelta(days=1), 6),
        "source.faults.rate=0.5", "source.faults.kinds=[status,malformed]",
        "source.faults.statuses=[503]", "source.faults.seed=5", "source.max_retries=0",
    ]
    lake = root / "lake"
    first = ingest_step.main(overrides)
    after_first = {name: (version(lake, name), bronze(lake, name)) for name in BRONZE_NAMES}
    second = ingest_step.main(overrides)
    return lake, (first, second), after_first


def test_a_rerun_with_faults_appends_nothing(faulty_reruns):
    lake, exit_codes, after_first = faulty_reruns
    # Every 503 exhausts the (zero) retries, so both runs end incomplete; the rerun draws the
    # same faults (same seed, same requests) and so gets the same error answers again.
    assert exit_codes == (1, 1)
    assert any((rows["http_status"] == 503).any() for _, rows in after_first.values())
    for name in BRONZE_NAMES:
        first_version, first_rows = after_first[name]
        assert version(lake, name) == first_version, name
        assert len(bronze(lake, name)) == len(first_rows), name


def test_bronze_holds_no_duplicate_answers_after_reruns(faulty_reruns):
    lake, _, _ = faulty_reruns
    for name in BRONZE_NAMES:
        rows = bronze(lake, name)
        key = ANSWER_KEY + (["location"] if name == "weather_forecast_data" else [])
        assert not rows.duplicated(subset=key).any(), name


def test_ingest_run_records_config_tags_and_table_versions(seven_days):
    lake, _, run = seven_days
    mlflow.set_tracking_uri(f"sqlite:///{lake.parent / 'mlflow.db'}")  # other fixtures move it
    tags, params = run.data.tags, run.data.params
    assert (tags["zone"], tags["horizon"], tags["step"]) == ("GR", "24", "ingest")
    assert len(tags["gridcast.git_commit"]) == 40
    assert params["cfg.zone.id"] == "GR" and params["cfg.horizon"] == "24"
    assert params["cfg.ingest.every_hours"] == "3"
    for name in ("carbon_data", "power_data", "weather_forecast_data"):
        assert tags[f"lineage.output.bronze.{name}"] == f"{lake / 'bronze' / name}@v0"
    client = mlflow.MlflowClient()
    with open(client.download_artifacts(run.info.run_id, "config/resolved.yaml")) as handle:
        resolved = yaml.safe_load(handle)
    assert resolved["zone"]["id"] == "GR" and resolved["horizon"] == 24
    lineage = json.loads(open(client.download_artifacts(run.info.run_id, "lineage/lineage.json")).read())
    assert {(w["table"], w["version"]) for w in lineage["writes"]} == {
        ("bronze.carbon_data", 0), ("bronze.power_data", 0), ("bronze.weather_forecast_data", 0),
    }
    sources = {d.dataset.name: json.loads(d.dataset.source) for d in run.inputs.dataset_inputs}
    assert set(sources) == {"electricitymaps", "visualcrossing"}
    assert sources["electricitymaps"]["url"].startswith("http://127.0.0.1:")


def test_a_data_portal_csv_replays_any_zone(spark, tmp_path, isolated, capsys):
    portal = tmp_path / "ES_2022_hourly.csv"
    lines = ["Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO\u2082eq/kWh (direct),"
             "Carbon Intensity gCO\u2082eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
             "Data Source,Data Estimated,Data Estimation Method"]
    lines += [f"2022-05-{1 + h // 24:02d} {h % 24:02d}:00:00,Spain,Spain,ES,{150 + h},{200 + h},60,45,ree.es,false,"
              for h in range(72)]
    portal.write_text("\n".join(lines) + "\n", encoding="utf-8")
    overrides = [*isolated, "zone=ES", f"source.portal_csv=[{portal}]", "ingest.start=2022-05-02T00:00:00Z",
                 "ingest.end=2022-05-02T12:00:00Z", "ingest.every_hours=6"]
    assert ingest_step.main(overrides) == 0
    lake = tmp_path / "lake"
    carbon = bronze(lake, "carbon_data")
    assert (carbon["zone"] == "ES").all() and (carbon["http_status"] == 200).all() and len(carbon) == 2
    history = json.loads(carbon.sort_values("ingested_at")["response_body"].iloc[-1])["history"]
    # At 06:00 the portal hour 06:00 is not published yet (one hour publication delay).
    assert history[-1] == {**history[-1], "zone": "ES", "datetime": "2022-05-02T05:00:00.000Z", "carbonIntensity": 229}
    # The portal files hold no breakdown, and the recording has no Spanish weather: the
    # answers are kept as they came, and the summary says so.
    assert (bronze(lake, "power_data")["http_status"] == 404).all()
    assert (bronze(lake, "weather_forecast_data")["http_status"] == 400).all()
    out = capsys.readouterr().out
    assert "error answers kept in bronze: power-breakdown/history HTTP 404 x2, timeline HTTP 400 x8" in out


def test_an_unreadable_recording_is_a_clear_error(tmp_path, isolated, capsys):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json")
    assert ingest_step.main([*isolated, f"source.recording={tmp_path / 'broken'}"]) == 1
    err = capsys.readouterr().err
    assert "error: ingest failed: " in err and "manifest.json" in err and "Traceback" not in err


# --- failure paths: one live-mode run against a replay server the test controls ---------------

EM_TOKEN = "EMTOKEN-d41d8cd98f00b204e9800998ecf8427e"
VC_KEY = "VCKEY-9e107d9d372bb6826bd81d3542a419d6"


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory):
    # One store for the failure-path runs: creating a SQLite store costs seconds of migrations.
    return tmp_path_factory.mktemp("mlflow") / "mlflow.db"


@pytest.fixture
def live(recording, monkeypatch, tmp_path, mlflow_db):
    """A replay server with tokens, and overrides that point `source=live` at it."""
    monkeypatch.setenv("ELECTRICITYMAPS_TOKEN", EM_TOKEN)
    monkeypatch.setenv("VISUALCROSSING_TOKEN", VC_KEY)
    with ReplayServer(recording.path, now=START + timedelta(days=2, minutes=20),
                      tokens={"electricitymaps": EM_TOKEN, "visualcrossing": VC_KEY}) as server:
        overrides = [
            f"storage.root={tmp_path / 'lake'}", f"mlflow.tracking_uri=sqlite:///{mlflow_db}",
            "source=live", f"source.electricitymaps_url={server.electricitymaps_url}",
            f"source.visualcrossing_url={server.visualcrossing_url}", "source.backoff_s=0",
            "source.max_retries=3",
        ]
        yield server, overrides, tmp_path / "lake"


def test_malformed_bodies_are_kept_in_bronze_and_the_run_goes_on(spark, live):
    server, overrides, lake = live
    server.fail_next("power-breakdown/history", "malformed")
    server.fail_next("timeline", "truncated")
    assert ingest_step.main(overrides) == 0
    power = bronze(lake, "power_data")
    assert len(power) == 1 and power["http_status"].iloc[0] == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(power["response_body"].iloc[0])
    weather = bronze(lake, "weather_forecast_data")
    assert len(weather) == LOCATIONS and (weather["http_status"] == 200).all()
    assert len(bronze(lake, "carbon_data")) == 1


def test_retries_exhausted_fail_the_step_clearly_and_keep_the_rest(spark, live, capsys):
    server, overrides, lake = live
    server.fail_next("carbon-intensity/history", "status", count=10, status=503)
    assert ingest_step.main(overrides) == 1
    err = capsys.readouterr().err
    assert "error: ingest failed: 1 request(s) failed after retries" in err
    assert "Electricity Maps carbon-intensity/history failed after 4 attempts: HTTP 503" in err
    carbon = bronze(lake, "carbon_data")
    assert carbon["http_status"].tolist() == [503] and carbon["attempts"].tolist() == [4]
    assert "failed after 4 attempts" in carbon["error"].iloc[0]
    assert len(bronze(lake, "power_data")) == 1
    assert len(bronze(lake, "weather_forecast_data")) == LOCATIONS


def test_rejected_token_stops_the_step_naming_the_secret(spark, live, monkeypatch, capsys):
    _, overrides, _ = live
    monkeypatch.setenv("ELECTRICITYMAPS_TOKEN", "EMTOKEN-wrong-0000000000000000")
    assert ingest_step.main(overrides) == 1
    err = capsys.readouterr().err
    assert "Electricity Maps rejected the credentials" in err and "ELECTRICITYMAPS_TOKEN" in err
    assert "EMTOKEN-wrong" not in err and "Traceback" not in err


def test_missing_token_is_a_clear_error(spark, live, monkeypatch, capsys):
    _, overrides, _ = live
    monkeypatch.delenv("VISUALCROSSING_TOKEN")
    assert ingest_step.main(overrides) == 1
    assert "No Visual Crossing token: set the environment variable VISUALCROSSING_TOKEN" in capsys.readouterr().err


def _power_row(hour: int) -> tuple:
    from gridcast.ingest import Request, bronze_row
    from gridcast.sources.http import ApiResponse
    from gridcast.tables import BRONZE_POWER

    response = ApiResponse("power-breakdown/history", {"zone": "GR"}, 200, f'{{"hour": {hour}}}', 1)
    return bronze_row("GR", Request(BRONZE_POWER), response, source="replay",
                      ingested_at=START + timedelta(hours=hour), run_id="run", failure=None)


def test_a_background_flush_writes_in_order_and_is_counted_in_the_callers_thread(spark, tmp_path):
    import threading

    from gridcast.ingest import BackgroundFlusher, BronzeBuffer, IngestSummary
    from gridcast.storage import LocalTableStore
    from gridcast.tables import BRONZE_POWER

    summary, commits = IngestSummary(), []
    flusher = BackgroundFlusher(spark, LocalTableStore(tmp_path), summary,
                                lambda table, v: commits.append((v, threading.current_thread())))
    buffer = BronzeBuffer()
    context = spark.sparkContext
    context.setJobGroup("background-flush", "background-flush")
    try:
        for batch in range(2):
            buffer.add(BRONZE_POWER, _power_row(batch))
            flusher.flush(buffer)
            assert len(buffer) == 0  # handed to the writer: the caller fills the buffer again
        flusher.close()
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    # The writer's Spark jobs count in the caller's job group (a step's `spark_jobs`).
    assert context.statusTracker().getJobIdsForGroup("background-flush")

    assert [v for v, _ in commits] == [0, 1]
    assert {thread for _, thread in commits} == {threading.current_thread()}
    assert summary.commits == 2 and summary.versions == {BRONZE_POWER.qualified_name: 1}
    stored = bronze(tmp_path, "power_data").sort_values("ingested_at")
    assert stored["response_body"].tolist() == ['{"hour": 0}', '{"hour": 1}']


def test_a_failed_background_write_is_raised_by_the_next_flush(spark, tmp_path):
    from gridcast.ingest import BackgroundFlusher, BronzeBuffer, IngestSummary
    from gridcast.storage import LocalTableStore
    from gridcast.tables import BRONZE_POWER

    class FullDisk(LocalTableStore):
        def append(self, *args, **kwargs):
            raise OSError("No space left on device")

    flusher = BackgroundFlusher(spark, FullDisk(tmp_path), IngestSummary())
    buffer = BronzeBuffer()
    buffer.add(BRONZE_POWER, _power_row(0))
    flusher.flush(buffer)
    buffer.add(BRONZE_POWER, _power_row(1))
    with pytest.raises(OSError, match="No space left"):
        flusher.flush(buffer)
    # Nothing is lost: the failed write's row is back in the buffer, ahead of the newer one.
    body = BRONZE_POWER.schema.names.index("response_body")
    assert [row[body] for row in buffer.rows[BRONZE_POWER]] == ['{"hour": 0}', '{"hour": 1}']
    flusher.close()
