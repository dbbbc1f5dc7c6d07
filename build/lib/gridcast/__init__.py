"""gridcast: carbon-intensity forecasting on a Delta Lake medallion, tracked in MLflow."""

__version__ = "0.1.0"
