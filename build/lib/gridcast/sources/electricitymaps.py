"""Electricity Maps API v3 client: carbon intensity and power breakdown.

Free tier: `latest` and `history` (the last 24 hourly entries). `past-range` (paid) serves at most
10 days per call; `past_range` chunks longer spans.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from gridcast.sources.http import ApiResponse, HttpClient
from gridcast.sources.secrets import ELECTRICITYMAPS, Secret

SIGNALS = ("carbon-intensity", "power-breakdown")
PAST_RANGE_MAX = timedelta(hours=240)  # the API's limit per call at hourly granularity
PAID_PLAN_NOTE = ("past-range needs a paid Electricity Maps plan: the free tier serves only "
                  "the latest and the last 24 hours (history).")


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class ElectricityMapsClient:
    base_url: str
    token: Secret | None
    http: HttpClient

    def _get(self, signal: str, kind: str, params: dict[str, str],
             access_note: str = "") -> ApiResponse:
        if signal not in SIGNALS:
            raise ValueError(f"unknown signal {signal!r}; choose one of {SIGNALS}")
        endpoint = f"{signal}/{kind}"
        headers = {"auth-token": self.token.reveal()} if self.token is not None else {}
        return self.http.get(
            f"{self.base_url.rstrip('/')}/{endpoint}", endpoint=endpoint, params=params,
            secret=self.token, secret_spec=ELECTRICITYMAPS, headers=headers,
            access_note=access_note,
        )

    def history(self, signal: str, zone: str, *, emission_factor_type: str | None = None,
                disable_estimations: bool | None = None) -> ApiResponse:
        """The last 24 hourly entries for a zone, oldest first."""
        return self._get(signal, "history", _params(zone, emission_factor_type, disable_estimations))

    def latest(self, signal: str, zone: str, *, emission_factor_type: str | None = None) -> ApiResponse:
        return self._get(signal, "latest", _params(zone, emission_factor_type, None))

    def past_range(self, signal: str, zone: str, start: datetime, end: datetime) -> list[ApiResponse]:
        """Hourly entries in [start, end), one request per chunk of at most 240 hours.

        Args:
            signal: `carbon-intensity` or `power-breakdown`.
            zone: the zone key, e.g. `GR`.
            start, end: timezone-aware instants, end after start.

        Returns:
            One response per chunk, oldest first.

        Raises:
            ValueError: naive datetimes or end not after start.
            AuthError: the token may not use past-range (the message says a paid plan is needed).
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("past_range needs timezone-aware start and end (UTC)")
        if end <= start:
            raise ValueError(f"end ({end}) must be after start ({start})")
        responses = []
        chunk_start = start
        while chunk_start < end:
            chunk_end = min(chunk_start + PAST_RANGE_MAX, end)
            params = {**_params(zone, None, None), "start": _iso(chunk_start), "end": _iso(chunk_end)}
            responses.append(self._get(signal, "past-range", params, PAID_PLAN_NOTE))
            chunk_start = chunk_end
        return responses


def _params(zone: str, emission_factor_type: str | None, disable_estimations: bool | None) -> dict[str, str]:
    params = {"zone": zone}
    if emission_factor_type is not None:
        if emission_factor_type not in ("lifecycle", "direct"):
            raise ValueError("emission_factor_type must be 'lifecycle' or 'direct'")
        params["emissionFactorType"] = emission_factor_type
    if disable_estimations is not None:
        params["disableEstimations"] = "true" if disable_estimations else "false"
    return params
