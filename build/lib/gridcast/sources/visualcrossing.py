"""Visual Crossing Timeline Weather API client: hourly CSV, metric units, UTC.

The key travels in the query string, so it is sent as a secret parameter and never recorded;
the 401 body echoes it and is scrubbed by the HTTP layer. Dates are UTC calendar days
(`timezone=Z`): local wall-clock time is ambiguous at the autumn daylight-saving change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from urllib.parse import quote

from gridcast.config import Location
from gridcast.sources.http import ApiResponse, HttpClient
from gridcast.sources.secrets import VISUALCROSSING, Secret

ENDPOINT = "timeline"
# Visual Crossing tags each hour: observations `obs`, forecasts `fcst`, archived ones `histfcst`.
ELEMENTS = "add:source"


def window_days(now: datetime, horizon_h: int) -> tuple[date, date]:
    """The UTC calendar days a scheduled fetch asks for: [now - 24 h, now + horizon].

    Args:
        now: the fetch time (timezone-aware).
        horizon_h: how far ahead the forecast must reach, in hours.

    Returns:
        (first day, last day), inclusive, as the timeline's date1/date2.
    """
    utc_now = now.astimezone(timezone.utc)
    return ((utc_now - timedelta(hours=24)).date(),
            (utc_now + timedelta(hours=horizon_h)).date())


@dataclass
class VisualCrossingClient:
    base_url: str
    token: Secret | None
    http: HttpClient

    def timeline(self, location: Location, date1: str | date = "yesterday",
                 date2: str | date = "tomorrow", *,
                 forecast_basis: date | None = None) -> ApiResponse:
        """Hourly weather for a location from date1 to date2 (observations, then forecasts).

        Args:
            location: where (sent as `lat,lon`).
            date1, date2: `YYYY-MM-DD` dates or the API's keywords (`yesterday`, `tomorrow`).
            forecast_basis: ask for the archived forecast issued on this date (`histfcst`).
        """
        where = f"{location.lat:.4f},{location.lon:.4f}"
        first, last = str(date1), str(date2)
        url = f"{self.base_url.rstrip('/')}/{quote(where, safe=',')}/{first}/{last}"
        query = {
            "unitGroup": "metric", "include": "hours", "contentType": "csv", "timezone": "Z",
            "elements": ELEMENTS,
        }
        if forecast_basis is not None:
            query["forecastBasisDate"] = forecast_basis.isoformat()
        secret_params = {"key": self.token.reveal()} if self.token is not None else {}
        response = self.http.get(
            url, endpoint=ENDPOINT, params=query, secret=self.token, secret_spec=VISUALCROSSING,
            secret_params=secret_params,
        )
        # location/date1/date2 travel in the path; keep them in the record too.
        response.params = {"location": where, "date1": first, "date2": last, **query}
        return response

    def history(self, location: Location, date1: date, date2: date) -> ApiResponse:
        """Observed hours (`obs`) of the UTC days date1..date2; costs a record per hour."""
        _check_days(date1, date2)
        return self.timeline(location, date1, date2)

    def archived_forecast(self, location: Location, basis_date: date, date1: date,
                          date2: date) -> ApiResponse:
        """The forecast as issued on `basis_date` (`histfcst` rows) for the days date1..date2."""
        _check_days(date1, date2)
        return self.timeline(location, date1, date2, forecast_basis=basis_date)


def _check_days(date1: date, date2: date) -> None:
    if date2 < date1:
        raise ValueError(f"date2 ({date2}) is before date1 ({date1})")
