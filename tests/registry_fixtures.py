"""A real registered champion for tests of the steps that only read it (monitor, recommend,
serve): a trivial pyfunc in a real SQLite MLflow registry, with the training run's metrics and
params those steps read."""

from __future__ import annotations

import mlflow
import numpy as np

from gridcast.registry import CHAMPION


class ConstantModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):  # noqa: ANN001
        return np.zeros(len(model_input))


def register_champion(tracking_uri: str, name: str, *, mae: float = 3.0,
                      params: dict[str, str] | None = None) -> str:
    """Log and register a version of `name`, alias it champion; returns the version."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    mlflow.set_experiment("registry-fixture")
    with mlflow.start_run():
        mlflow.log_metric("mae", mae)
        if params:
            mlflow.log_params(params)
        info = mlflow.pyfunc.log_model(name="model", python_model=ConstantModel(),
                                       registered_model_name=name)
    version = str(info.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias(name, CHAMPION, version)
    return version
