"""Champion / challenger: a registered version earns an alias only by beating what it replaces.

The gate re-scores, on the candidate's own test rows (stored by `log_training`), the candidate,
every naive baseline and the current `champion`, with `mlflow.models.evaluate`, and compares
them with `mlflow.validate_evaluation_results` on the mean absolute error. Aliases only, no
stages: `challenger` = passed the gate, `champion` = serving.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import MetricThreshold
from mlflow.models.evaluation.validation import ModelValidationFailedException
from mlflow.tracking import MlflowClient

from gridcast.config import ConfigError
from gridcast.errors import GridcastError
from gridcast.settings import settings_from_mapping
from gridcast.model import (
    BASELINES, EVALUATION_ROWS_ARTIFACT, KEY_COLUMNS, TARGET, to_model_input,
)

CHALLENGER = "challenger"
CHAMPION = "champion"
GATE_METRIC = "mean_absolute_error"  # mlflow.models.evaluate's name for the regressor MAE
TAG_GATE = "gridcast.gate"
TAG_REASON = "gridcast.gate.reason"


class RegistryError(GridcastError):
    """A registry action that cannot be done as asked; the message says why."""


@dataclass(frozen=True)
class GateSettings:
    """How much better a candidate must be, and whether passing makes it champion.

    `min_improvement_vs_baselines`: relative MAE reduction the candidate needs over every naive
    baseline (0.01 = at least 1 % lower). `champion_tolerance`: relative MAE reduction needed over
    the champion (0.0 = at least as good). `auto_promote`: a passing candidate becomes champion
    at once (local default); otherwise `promote` does it.
    """

    min_improvement_vs_baselines: float = 0.01
    champion_tolerance: float = 0.0
    auto_promote: bool = True

    def __post_init__(self) -> None:
        # mlflow's MetricThreshold takes relative changes in [0, 1]; say so before it raises.
        for name in ("min_improvement_vs_baselines", "champion_tolerance"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ConfigError(f"register.{name} must be in [0, 1) (a relative MAE "
                                  f"reduction; 0.01 = 1 % lower), got {value}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "GateSettings":
        return settings_from_mapping(cls, values, "register")


@dataclass(frozen=True)
class PromoteSettings:
    """Which version `promote` makes champion (Hydra section `promote`).

    `version`: a registered version number; null = the current `challenger`.
    """

    version: int | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "PromoteSettings":
        return settings_from_mapping(cls, values, "promote")


@dataclass(frozen=True)
class GateDecision:
    """The gate's outcome for one version, as also written to its tags and description."""

    name: str
    version: str
    passed: bool
    promoted: bool
    reasons: tuple[str, ...]
    candidate_mae: float
    baseline_mae: dict[str, float]
    champion_version: str | None
    champion_mae: float | None


def model_name(zone: str, horizon: int, prefix: str = "") -> str:
    """The registered model name for a zone and horizon: `<prefix>gridcast_<zone>_<horizon>h`.

    `prefix` is `cfg.mlflow.model_prefix`: empty locally, `<catalog>.<schema>.` for Unity
    Catalog, whose model names have three parts.
    """
    return f"{prefix}gridcast_{zone}_{horizon}h"


def evaluation_rows(run_id: str) -> pd.DataFrame:
    """The scored test rows a training run stored (keys, inputs, target)."""
    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=EVALUATION_ROWS_ARTIFACT
    )
    return pd.read_parquet(path)


def _evaluation_data(rows: pd.DataFrame) -> pd.DataFrame:
    # Every numeric column as float64: the models' signatures take doubles, extras are ignored.
    columns = [c for c in rows.columns if c not in KEY_COLUMNS or c == "horizon"]
    return to_model_input(rows, columns).reset_index(drop=True)


def _evaluate(label: str, data: pd.DataFrame, **kwargs) -> mlflow.models.EvaluationResult:
    # One run per evaluation: evaluate logs its metrics under fixed names into the active run.
    with mlflow.start_run(run_name=f"gate: {label}", nested=mlflow.active_run() is not None):
        mlflow.set_tag("gridcast.gate.evaluated", label)
        return mlflow.models.evaluate(
            data=data, targets=TARGET, model_type="regressor",
            evaluator_config={"log_model_explainability": False}, **kwargs,
        )


def _better_or_reason(
    label: str, candidate, baseline, min_relative_change: float
) -> str | None:
    threshold = MetricThreshold(
        min_relative_change=float(min_relative_change), greater_is_better=False
    )
    try:
        mlflow.validate_evaluation_results(
            validation_thresholds={GATE_METRIC: threshold},
            candidate_result=candidate, baseline_result=baseline,
        )
    except ModelValidationFailedException:
        return (
            f"MAE {candidate.metrics[GATE_METRIC]:.3f} is not at least "
            f"{min_relative_change:.1%} below {label}'s {baseline.metrics[GATE_METRIC]:.3f}"
        )
    return None


def _champion(client: MlflowClient, name: str):
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def gate(name: str, version: str | int, settings: GateSettings = GateSettings()) -> GateDecision:
    """Score a registered version against the baselines and the champion; set aliases.

    Passing = lower MAE than every naive baseline by `min_improvement_vs_baselines` AND, when a
    champion exists, no worse than the champion re-scored on the same rows now. A passing version
    gets `challenger` (and `champion` when `settings.auto_promote`); a failing one keeps no alias
    and carries the reasons in its tags and description.

    Returns:
        The decision. Evaluations are nested runs under the active run (if any).
    """
    client = MlflowClient()
    version = str(version)
    try:
        candidate_version = client.get_model_version(name, version)
        rows = evaluation_rows(candidate_version.run_id)
    except MlflowException as error:
        raise RegistryError(
            f"cannot gate {name} v{version}: no such version or its run has no "
            f"{EVALUATION_ROWS_ARTIFACT} ({error.error_code})"
        ) from None
    data = _evaluation_data(rows)
    candidate = _evaluate(
        f"{name} v{version}", data, model=f"models:/{name}/{version}", predictions="prediction"
    )
    reasons: list[str] = []
    baseline_mae = {}
    for baseline, column in BASELINES.items():
        result = _evaluate(f"baseline {baseline}", data, predictions=column)
        baseline_mae[baseline] = float(result.metrics[GATE_METRIC])
        reason = _better_or_reason(
            f"baseline {baseline}", candidate, result, settings.min_improvement_vs_baselines
        )
        if reason:
            reasons.append(reason)

    champion = _champion(client, name)
    champion_version = champion_mae = None
    if champion is not None and champion.version != version:
        champion_version = str(champion.version)
        try:
            result = _evaluate(
                f"{name} v{champion_version} ({CHAMPION})", data,
                model=f"models:/{name}@{CHAMPION}", predictions="prediction",
            )
        except MlflowException as error:
            reasons.append(f"champion v{champion_version} could not score these rows: {error}")
        else:
            champion_mae = float(result.metrics[GATE_METRIC])
            reason = _better_or_reason(
                f"champion v{champion_version}", candidate, result, settings.champion_tolerance
            )
            if reason:
                reasons.append(reason)

    decision = GateDecision(
        name=name, version=version, passed=not reasons, promoted=False, reasons=tuple(reasons),
        candidate_mae=float(candidate.metrics[GATE_METRIC]), baseline_mae=baseline_mae,
        champion_version=champion_version, champion_mae=champion_mae,
    )
    _record(client, decision)
    if decision.passed:
        client.set_registered_model_alias(name, CHALLENGER, version)
        if settings.auto_promote:
            promote(name, version)
            decision = replace(decision, promoted=True)
    else:
        for alias in client.get_model_version(name, version).aliases:
            client.delete_registered_model_alias(name, alias)
    return decision


def _record(client: MlflowClient, decision: GateDecision) -> None:
    name, version = decision.name, decision.version
    status = "passed" if decision.passed else "rejected"
    client.set_model_version_tag(name, version, TAG_GATE, status)
    client.set_model_version_tag(name, version, "gridcast.gate.mae",
                                 f"{decision.candidate_mae:.6g}")
    for baseline, mae in decision.baseline_mae.items():
        client.set_model_version_tag(name, version, f"gridcast.gate.baseline.{baseline}.mae",
                                     f"{mae:.6g}")
    if decision.champion_version is not None:
        client.set_model_version_tag(name, version, "gridcast.gate.champion_version",
                                     decision.champion_version)
    if decision.champion_mae is not None:
        client.set_model_version_tag(name, version, "gridcast.gate.champion_mae",
                                     f"{decision.champion_mae:.6g}")
    if decision.passed:
        client.set_model_version_tag(name, version, TAG_REASON, "")
        description = (
            f"Passed the gate: test MAE {decision.candidate_mae:.3f} beats every naive baseline"
            + (f" and champion v{decision.champion_version}" if decision.champion_version else "")
            + "."
        )
    else:
        reason = "; ".join(decision.reasons)
        client.set_model_version_tag(name, version, TAG_REASON, reason[:5000])
        description = f"Rejected by the gate: {reason}"
    client.update_model_version(name, version, description=description[:5000])


def challenger_version(name: str) -> str:
    """The version the `challenger` alias points to.

    Raises:
        RegistryError: no such model or no challenger.
    """
    try:
        return str(MlflowClient().get_model_version_by_alias(name, CHALLENGER).version)
    except MlflowException:
        raise RegistryError(
            f"{name} has no challenger: register (gate) a trained version first, or name one "
            "with promote.version=N"
        ) from None


def promote(name: str, version: str | int) -> None:
    """Make a version that passed the gate the `champion` (explicit promotion).

    Raises:
        RegistryError: the version does not exist or did not pass the gate.
    """
    client = MlflowClient()
    version = str(version)
    try:
        model_version = client.get_model_version(name, version)
    except MlflowException:
        raise RegistryError(f"no registered model {name!r} version {version}") from None
    status = model_version.tags.get(TAG_GATE)
    if status != "passed":
        raise RegistryError(
            f"{name} v{version} did not pass the gate (gate: {status or 'not run'}); "
            "only a challenger can be promoted"
        )
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, "gridcast.promoted", "true")
