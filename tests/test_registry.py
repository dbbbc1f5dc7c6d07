"""The registry gate on a real SQLite MLflow store: challenger, champion, rejection, promotion."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from forecast_frames import point_in_time_frame
from gridcast.model import (
    ModelSettings, SplitSettings, TrainSettings, log_training, train_forecaster,
)
from gridcast.registry import (
    CHALLENGER, CHAMPION, TAG_GATE, TAG_REASON, GateSettings, RegistryError, gate, model_name,
    promote,
)

HORIZON = 12
NAME = model_name("GR", HORIZON)
# The candidates only need to be ordered, not good: no improvement margin over the baselines.
LENIENT = GateSettings(min_improvement_vs_baselines=0.0)


def _train(frame, trees: int):
    return train_forecaster(frame, TrainSettings(
        horizon=HORIZON, split=SplitSettings(min_train_days=14, calibration_days=5, test_days=5),
        model=ModelSettings(max_iter=trees, learning_rate=0.1, max_leaf_nodes=15,
                            min_samples_leaf=20),
        importance_rows=200, importance_repeats=1,
    ))


@pytest.fixture(scope="module")
def candidates():
    """Three fits of one frame, worst to best (test MAE about 41, 15.3, 14.4; best naive 15.5)."""
    frame = point_in_time_frame(days=34, horizon=HORIZON, shift_at=1.0)
    return {"poor": _train(frame, 5), "fair": _train(frame, 30), "good": _train(frame, 40)}


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment("gridcast", artifact_location=str(tmp_path / "artifacts"))
    mlflow.set_experiment(experiment_id=experiment)
    return MlflowClient()


def _register(result) -> str:
    with mlflow.start_run():
        return log_training(result, registered_model_name=NAME, plots=False).version


def _aliases(client: MlflowClient, version: str) -> set[str]:
    return set(client.get_model_version(NAME, version).aliases)


def test_first_model_that_beats_the_baselines_becomes_challenger_and_champion(store, candidates):
    version = _register(candidates["good"])

    decision = gate(NAME, version)

    assert decision.passed and decision.promoted
    assert _aliases(store, version) == {CHALLENGER, CHAMPION}
    assert store.get_model_version(NAME, version).tags[TAG_GATE] == "passed"
    assert decision.candidate_mae == pytest.approx(candidates["good"].metrics["mae"])
    assert decision.baseline_mae["seasonal_naive"] == pytest.approx(
        candidates["good"].metrics["baseline.seasonal_naive.mae"]
    )


def test_better_model_than_the_champion_is_promoted(store, candidates):
    first = _register(candidates["fair"])
    gate(NAME, first, LENIENT)
    second = _register(candidates["good"])

    decision = gate(NAME, second, LENIENT)

    assert decision.passed and decision.champion_version == first
    assert decision.champion_mae == pytest.approx(candidates["fair"].metrics["mae"])
    assert _aliases(store, second) == {CHALLENGER, CHAMPION}
    assert _aliases(store, first) == set()


def test_worse_model_than_the_champion_is_rejected_without_alias_and_with_the_reason(
    store, candidates
):
    champion = _register(candidates["good"])
    gate(NAME, champion, LENIENT)
    worse = _register(candidates["fair"])

    decision = gate(NAME, worse, LENIENT)

    assert not decision.passed and not decision.promoted
    assert _aliases(store, worse) == set()
    assert _aliases(store, champion) == {CHALLENGER, CHAMPION}
    version = store.get_model_version(NAME, worse)
    assert version.tags[TAG_GATE] == "rejected"
    assert f"below champion v{champion}" in version.tags[TAG_REASON]
    assert version.description.startswith("Rejected by the gate: ")


def test_model_that_loses_to_a_naive_baseline_is_rejected_naming_it(store, candidates):
    version = _register(candidates["poor"])

    decision = gate(NAME, version)

    assert not decision.passed
    assert _aliases(store, version) == set()
    reason = store.get_model_version(NAME, version).tags[TAG_REASON]
    assert "below baseline seasonal_naive" in reason
    with pytest.raises(RegistryError, match=f"v{version} did not pass the gate"):
        promote(NAME, version)


def test_without_auto_promote_a_passing_model_waits_as_challenger_until_promoted(
    store, candidates
):
    version = _register(candidates["good"])

    decision = gate(NAME, version, GateSettings(auto_promote=False))

    assert decision.passed and not decision.promoted
    assert _aliases(store, version) == {CHALLENGER}
    promote(NAME, version)
    assert _aliases(store, version) == {CHALLENGER, CHAMPION}


def test_gating_an_unknown_version_says_so(store):
    with pytest.raises(RegistryError, match=f"cannot gate {NAME} v7: no such version"):
        gate(NAME, 7)


def test_model_name_is_zone_and_horizon():
    assert model_name("DE", 48) == "gridcast_DE_48h"
