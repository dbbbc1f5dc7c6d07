"""Visual Crossing Timeline Weather API client: hourly CSV, metric units, UTC.

The key travels in the query string, so it is sent as a secret parameter and never recorded;
the 401 body echoes it and is scrubbed by the HTTP layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from gridcast.config import Location
from gridcast.sources.http import ApiResponse, HttpClient
from gridcast.sources.secrets import VISUALCROSSING, Secret

ENDPOINT = "timeline"


@dataclass
class VisualCrossingClient:
    base_url: str
    token: Secret | None
    http: HttpClient

    def timeline(self, location: Location, date1: str = "yesterday", date2: str = "tomorrow") -> ApiResponse:
        """Hourly weather for a location from date1 to date2 (observations, then forecasts).

        `timezone=Z` asks for UTC timestamps: local wall-clock time is ambiguous at the autumn
        daylight-saving change.
        """
        where = f"{location.lat:.4f},{location.lon:.4f}"
        url = f"{self.base_url.rstrip('/')}/{quote(where, safe=',')}/{date1}/{date2}"
        params = {
            "location": where, "date1": date1, "date2": date2,
            "unitGroup": "metric", "include": "hours", "contentType": "csv", "timezone": "Z",
        }
        # location/date1/date2 are in the path; keep them in the record, not in the query.
        query = {k: v for k, v in params.items() if k not in ("location", "date1", "date2")}
        secret_params = {"key": self.token.reveal()} if self.token is not None else {}
        response = self.http.get(
            url, endpoint=ENDPOINT, params=query, secret=self.token, secret_spec=VISUALCROSSING,
            secret_params=secret_params,
        )
        response.params = params
        return response
