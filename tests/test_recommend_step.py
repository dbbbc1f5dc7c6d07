"""recommend and serve as steps: the champion's latest forecast from the real predictions table,
one JSON object on stdout, gold.green_windows idempotent, and the HTTP API answering from the
same table through the step's provider."""

from __future__ import annotations

import json

import deltalake
import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from gridcast.pandas_io import merge_frame
from gridcast.registry import model_name
from gridcast.serve import ForecastServer, ServeSettings
from gridcast.storage import LocalTableStore
from gridcast.tables import GOLD_GREEN_WINDOWS, GOLD_PREDICTIONS
from registry_fixtures import register_champion
from steps import recommend as recommend_step
from steps.serve import predictions_provider

ISSUED = pd.Timestamp("2025-12-31T00:00", tz="UTC")
NAME = model_name("GR", 24)
# Cleanest at 12:00-15:00 UTC (solar), dirtiest at night.
PROFILE = [400 - 150 * max(0.0, np.sin(np.pi * (h - 6) / 12)) for h in range(1, 25)]


def _forecast(version: str, issued: pd.Timestamp = ISSUED) -> pd.DataFrame:
    hours = [issued + pd.Timedelta(hours=h) for h in range(1, 25)]
    return pd.DataFrame({
        "zone": "GR", "issued_at": issued, "datetime": hours, "horizon": range(1, 25),
        "prediction": PROFILE, "p10": [v - 30 for v in PROFILE], "p90": [v + 30 for v in PROFILE],
        "baseline_seasonal_naive": PROFILE, "weather_missing": False, "weather_is_fallback": False,
        "model_name": NAME, "model_version": version, "run_id": "r", "scored_at": issued,
    })


@pytest.fixture
def lake(spark, tmp_path):
    store = LocalTableStore(tmp_path / "lake")
    version = register_champion(f"sqlite:///{tmp_path / 'mlflow.db'}", NAME)
    merge_frame(spark, store, GOLD_PREDICTIONS, _forecast(version))
    return store, version


def test_recommend_prints_one_json_object_stores_the_windows_once_and_logs_the_plot(
        spark, lake, isolated, capsys, tmp_path):
    store, version = lake
    assert recommend_step.main([*isolated, "recommend.duration_h=3", "recommend.top=2"]) == 0
    out = capsys.readouterr().out
    answer = json.loads(out)  # stdout holds the JSON and nothing else
    best = answer["windows"][0]
    expected = int(np.argmin([sum(PROFILE[i:i + 3]) for i in range(22)])) + 1
    assert best["start"] == f"2025-12-31T{expected:02d}:00:00Z"
    assert answer["run_now"]["start"] == "2025-12-31T01:00:00Z"
    assert answer["savings_g_per_kwh"] == pytest.approx(
        sum(PROFILE[0:3]) / 3 - sum(PROFILE[expected - 1:expected + 2]) / 3)
    assert 0.5 < answer["p_beats_run_now"] <= 1.0
    windows = deltalake.DeltaTable(store.identifier(GOLD_GREEN_WINDOWS)).to_pandas()
    assert len(windows) >= 2 and set(windows["model_version"]) == {version}
    first = store.version(spark, GOLD_GREEN_WINDOWS)
    run = mlflow.search_runs(search_all_experiments=True, output_format="list",
                             filter_string="tags.step = 'recommend'")[0]
    plot = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                               artifact_path="plots/green_window.png",
                                               dst_path=str(tmp_path / "artifacts"))
    assert open(plot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    assert recommend_step.main([*isolated, "recommend.duration_h=3", "recommend.top=2"]) == 0
    assert store.version(spark, GOLD_GREEN_WINDOWS) == first


def test_recommend_without_predictions_says_what_to_run(isolated, capsys):
    assert recommend_step.main(isolated) == 1
    assert "run `python -m steps.batch_score` first" in capsys.readouterr().err


def test_a_deadline_beyond_the_forecast_is_a_clear_error(lake, isolated, capsys):
    assert recommend_step.main([*isolated, "recommend.deadline=2026-01-05T00:00:00Z"]) == 1
    assert "deadline" in capsys.readouterr().err


def test_serve_answers_from_the_table_and_rereads_only_a_new_version(spark, lake):
    store, version = lake
    provide = predictions_provider(spark, store, [NAME])
    assert provide() is provide()  # no new version: the cached frame
    settings = ServeSettings(port=0, zones=("GR",), model_version=version)
    with ForecastServer(provide, settings) as server:
        url = f"http://127.0.0.1:{server.port}/emissions/forecasts/current"
        answer = requests.get(url, params={"location": "GR", "windowSize": 60}, timeout=10).json()
        assert answer[0]["generatedAt"].startswith("2025-12-31T00:00")
        assert min(p["value"] for p in answer[0]["forecastData"]) == pytest.approx(min(PROFILE))
        bad = requests.get(url, params={"location": "GR", "windowSize": -5}, timeout=10)
        assert bad.status_code == 400 and "windowSize" in bad.json()["detail"] + bad.text
    merge_frame(spark, store, GOLD_PREDICTIONS, _forecast(version, ISSUED + pd.Timedelta(hours=1)))
    assert provide()["issued_at"].max() == ISSUED + pd.Timedelta(hours=1)
