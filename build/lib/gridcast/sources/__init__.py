"""Upstream data sources: API clients, secrets and the local replay server.

`open_source(cfg)` is the one place that turns the `source` config group into clients and a
clock; the ingest logic is the same for replay and live.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterator

from gridcast.config import GridcastConfig
from gridcast.sources.electricitymaps import ElectricityMapsClient
from gridcast.sources.http import HttpClient, RetryPolicy
from gridcast.sources.secrets import ELECTRICITYMAPS, VISUALCROSSING, Secret, get_secret
from gridcast.sources.visualcrossing import VisualCrossingClient


@dataclass
class SourceSession:
    """Clients for both APIs, the run times to fetch at, and how to move the clock there."""

    kind: str
    electricitymaps: ElectricityMapsClient
    visualcrossing: VisualCrossingClient
    run_times: list[datetime]
    set_clock: Callable[[datetime], None]


def _clients(cfg: GridcastConfig, em_url: str, vc_url: str, em_token: Secret | None,
             vc_token: Secret | None) -> tuple[ElectricityMapsClient, VisualCrossingClient]:
    policy = RetryPolicy(
        timeout_s=cfg.source.timeout_s, max_retries=cfg.source.max_retries,
        backoff_s=cfg.source.backoff_s, backoff_max_s=cfg.source.backoff_max_s,
    )
    return (
        ElectricityMapsClient(em_url, em_token, HttpClient(policy)),
        VisualCrossingClient(vc_url, vc_token, HttpClient(policy)),
    )


@contextmanager
def open_source(cfg: GridcastConfig, now: datetime | None = None) -> Iterator[SourceSession]:
    """Start what the configured source needs and yield its session.

    replay: a local server over the recording, with the simulated schedule as run times.
    live: the real services (tokens from the environment or Databricks), one run at `now`.
    """
    if cfg.source.kind == "replay":
        from gridcast.replay import ReplayServer, load_recording, portal_energy_series

        run_times = cfg.ingest.schedule()
        recording = load_recording(cfg.source.recording)
        for path in cfg.source.portal_csv:
            series = portal_energy_series([path])
            recording.zones[series.zone] = series
        with ReplayServer(recording, now=run_times[0], faults=cfg.source.faults) as server:
            em, vc = _clients(cfg, server.electricitymaps_url, server.visualcrossing_url, None, None)
            yield SourceSession("replay", em, vc, run_times, server.set_now)
        return
    if cfg.source.kind == "live":
        em_token = get_secret(ELECTRICITYMAPS)
        vc_token = get_secret(VISUALCROSSING)
        assert cfg.source.electricitymaps_url and cfg.source.visualcrossing_url  # validated on load
        em, vc = _clients(cfg, cfg.source.electricitymaps_url, cfg.source.visualcrossing_url, em_token, vc_token)
        moment = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        yield SourceSession("live", em, vc, [moment], lambda _: None)
        return
    raise ValueError(f"unknown source kind {cfg.source.kind!r}")
