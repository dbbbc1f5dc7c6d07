"""Upstream data sources: API clients, secrets and the local replay server."""
