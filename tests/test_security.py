"""Credentials never appear anywhere: output, logs, exceptions, MLflow, Delta tables, files.

Live mode against the replay server with recognisable fake tokens: one successful ingest (with
faults, so retries and error bodies are exercised) and one where Visual Crossing rejects the key
and echoes it in its 401 body, as the real service does.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import deltalake
import mlflow
import pytest

from gridcast.replay import FaultSettings, ReplayServer
from replay_fixtures import build_tiny_recording
from steps import ingest as ingest_step

EM_TOKEN = "EMSECRET7f3a9c1e5b2d4f60a8"
VC_KEY = "VCSECRETb4e8d2a6c0f1e3d5b7"
WRONG_VC_KEY = "VCWRONGKEY91c3e5a7b9d1f3e5"
SECRETS = (EM_TOKEN, VC_KEY, WRONG_VC_KEY)


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.fixture(scope="module")
def ingested(spark, tmp_path_factory):
    """Run the two live ingests once; return where they wrote and everything they printed."""
    root = tmp_path_factory.mktemp("security")
    recording = build_tiny_recording(root / "recording", hours=72)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("ELECTRICITYMAPS_TOKEN", EM_TOKEN)
    monkeypatch.setenv("VISUALCROSSING_TOKEN", VC_KEY)
    capture = logging.getLogger()
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect(level=logging.DEBUG)
    previous_level = capture.level
    capture.addHandler(handler)
    capture.setLevel(logging.DEBUG)
    # Random faults only garble 200 answers; error statuses are scripted, two per endpoint, fewer
    # than source=live's 4 retries: the first run sees retries and error bodies and still
    # completes, so its exit code is known exactly.
    faults = FaultSettings(rate=0.5, kinds=("malformed", "truncated"), seed=3)
    exit_codes = []
    try:
        with ReplayServer(recording.path, now=recording.start + timedelta(hours=50), faults=faults,
                          tokens={"electricitymaps": EM_TOKEN, "visualcrossing": VC_KEY}) as server:
            for path, status in (("carbon-intensity", 503), ("power-breakdown", 429), ("timeline", 503)):
                server.fail_next(path, "status", count=2, status=status)
            overrides = [
                f"storage.root={root / 'lake'}", f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}",
                "source=live", f"source.electricitymaps_url={server.electricitymaps_url}",
                f"source.visualcrossing_url={server.visualcrossing_url}", "source.backoff_s=0",
            ]
            exit_codes.append(ingest_step.main(overrides))
            server.faults = FaultSettings()
            monkeypatch.setenv("VISUALCROSSING_TOKEN", WRONG_VC_KEY)
            exit_codes.append(ingest_step.main(overrides))
            served_paths = [r.path for r in server.requests]
    finally:
        capture.removeHandler(handler)
        capture.setLevel(previous_level)
        monkeypatch.undo()
    return root, exit_codes, records, served_paths


def test_both_runs_ended_as_expected(ingested):
    _, exit_codes, _, _ = ingested
    # Run 1: every scripted 503/429 is retried away (2 < 4 retries) and garbled 200s are stored,
    # not errors, so it succeeds: 0. Run 2: Visual Crossing answers the wrong key with 401, an
    # AuthError that stops the step: 1.
    assert exit_codes == [0, 1]


def test_the_first_run_went_through_retries_and_error_bodies(ingested):
    root, _, _, served_paths = ingested
    carbon = deltalake.DeltaTable(str(root / "lake" / "bronze" / "carbon_data")).to_pandas()
    assert carbon["attempts"].tolist() == [3] and carbon["http_status"].tolist() == [200]
    assert sum("timeline" in path for path in served_paths) > 3  # retried, then the 401 run


def test_no_secret_in_stdout_stderr_or_logs(ingested, capfd):
    _, _, records, served_paths = ingested
    out, err = capfd.readouterr()
    assert not _leaks(out + err)
    assert records, "DEBUG logging was captured"
    assert not _leaks("\n".join(records))
    assert not _leaks("\n".join(served_paths))


def test_no_secret_in_bronze_rows(ingested):
    root, _, _, _ = ingested
    for name in ("carbon_data", "power_data", "weather_forecast_data"):
        frame = deltalake.DeltaTable(str(root / "lake" / "bronze" / name)).to_pandas()
        assert len(frame) > 0
        text = frame.astype(str).to_csv()
        assert not _leaks(text), name
    weather = deltalake.DeltaTable(str(root / "lake" / "bronze" / "weather_forecast_data")).to_pandas()
    # The rejected key's 401 body was not stored raw; the step stopped before it.
    assert "VCWRONG" not in weather.to_csv()


def test_no_secret_in_mlflow_params_tags_metrics_or_artifacts(ingested):
    root, _, _, _ = ingested
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    runs = mlflow.search_runs(experiment_names=["gridcast"], output_format="list")
    assert len(runs) == 2
    for run in runs:
        assert not _leaks(repr(run.data.params) + repr(run.data.tags) + repr(run.data.metrics))
        assert not _leaks(repr(run.inputs))
        local = client.download_artifacts(run.info.run_id, "", dst_path=str(root / "artifacts" / run.info.run_id))
        for path in __import__("pathlib").Path(local).rglob("*"):
            if path.is_file():
                assert not _leaks(path.read_text(errors="replace")), path


def test_no_secret_in_any_file_written(ingested):
    root, _, _, _ = ingested
    for path in root.rglob("*"):
        if path.is_file() and "recording" not in path.parts:
            data = path.read_bytes()
            assert not any(secret.encode() in data for secret in SECRETS), path
