"""Thin entry points, one per MLflow Projects entry point: read config, open the run, call the library."""
