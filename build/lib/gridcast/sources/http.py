"""HTTP with a timeout on every call and bounded retries with exponential backoff.

Retryable: 429, 5xx, timeouts and connection errors; a `Retry-After` (seconds) on 429/503 is
honoured, capped at `backoff_max_s`. 401 raises `AuthError` (check the token), 403
`AccessDeniedError` (the token's plan or zone does not allow the request), both at once. Every
message, stored body and exception passes through `scrub`, and exceptions never chain the
underlying `requests` error (its text may contain a URL with a key in it). A redirect to another
host loses the `auth-token` header, as `requests` already drops `Authorization`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import requests

from gridcast.errors import GridcastError
from gridcast.sources.secrets import Secret, SecretSpec, scrub

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_AFTER_STATUSES = frozenset({429, 503})
CREDENTIAL_HEADERS = ("auth-token",)
USER_AGENT = "gridcast/0.1 (+https://github.com/gridcast)"


_QUERY_SECRET = re.compile(r"(?i)\b(key|token|auth-token|apikey)=[^&\s\"']+")


class _RedactQuerySecrets(logging.Filter):
    """urllib3 logs each request line at DEBUG, query string (and so the Visual Crossing key)
    included; this filter masks credential parameters in those records."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _QUERY_SECRET.sub(r"\1=***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_URLLIB3_LOGGER = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(f, _RedactQuerySecrets) for f in _URLLIB3_LOGGER.filters):
    _URLLIB3_LOGGER.addFilter(_RedactQuerySecrets())


class SourceError(GridcastError, RuntimeError):
    """A request to an upstream API failed for good."""


class AuthError(SourceError):
    """The API rejected the credentials (401): fatal, names the secret to check."""


class AccessDeniedError(AuthError):
    """The API refused this request for this token (403): its plan or zone does not allow it."""


class RetriesExhaustedError(SourceError):
    """A retryable failure persisted through every attempt."""

    def __init__(self, message: str, response: "ApiResponse"):
        super().__init__(message)
        self.response = response


@dataclass(frozen=True)
class RetryPolicy:
    timeout_s: float = 10.0
    max_retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0

    def delay(self, attempt: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        """Exponential backoff with full jitter; attempt counts from 1.

        A server's `Retry-After` replaces the backoff, capped at `backoff_max_s`: waiting
        longer than the policy allows would stall the run for one request.
        """
        if retry_after_s is not None:
            return min(self.backoff_max_s, max(0.0, retry_after_s))
        return rng.uniform(0, min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1)))


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` in seconds; an HTTP date or garbage is ignored (the backoff applies)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class _CredentialSafeSession(requests.Session):
    """`requests` drops `Authorization` on a redirect to another host but not custom headers:
    drop Electricity Maps' `auth-token` the same way."""

    def rebuild_auth(self, prepared_request: requests.PreparedRequest,
                     response: requests.Response) -> None:
        super().rebuild_auth(prepared_request, response)
        if self.should_strip_auth(response.request.url, prepared_request.url):
            for name in CREDENTIAL_HEADERS:
                prepared_request.headers.pop(name, None)


@dataclass
class ApiResponse:
    """What one logical request produced, safe to store: no credentials anywhere."""

    endpoint: str
    params: dict[str, str]
    status: int | None
    body: str | None
    attempts: int
    error: str | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and self.error is None

    @property
    def params_json(self) -> str:
        return json.dumps(self.params, sort_keys=True)

    @property
    def payload_hash(self) -> str | None:
        return None if self.body is None else hashlib.sha256(self.body.encode()).hexdigest()


@dataclass
class HttpClient:
    """A `requests.Session` plus the retry loop, shared by the API clients."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    seed: int | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        """One session per thread: ingest fetches a run's requests concurrently."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = _CredentialSafeSession()
            session.headers["User-Agent"] = USER_AGENT
        return session

    def get(
        self,
        url: str,
        *,
        endpoint: str,
        params: Mapping[str, str],
        secret: Secret | None,
        secret_spec: SecretSpec,
        headers: Mapping[str, str] | None = None,
        secret_params: Mapping[str, str] | None = None,
        access_note: str = "",
    ) -> ApiResponse:
        """GET with retries. `params` are safe to record; `secret_params` are sent, never kept.

        `access_note` is added to a 401/403 message: what the endpoint needs (e.g. a paid plan).

        Returns the final response (2xx, or a non-retryable 4xx such as 400/404).

        Raises:
            AuthError: 401 (the credentials).
            AccessDeniedError: 403 (the token's plan or zone).
            RetriesExhaustedError: 429/5xx/timeouts on every attempt.
        """
        query = {**params, **(secret_params or {})}
        safe_params = dict(params)
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            status, body, error, retry_after = None, None, None, None
            try:
                reply = self.session.get(url, params=query, headers=headers, timeout=self.policy.timeout_s)
                status, body = reply.status_code, scrub(reply.text, [secret])
                if status in RETRY_AFTER_STATUSES:
                    retry_after = retry_after_seconds(reply.headers.get("Retry-After"))
            except requests.Timeout:
                error = f"timed out after {self.policy.timeout_s:g} s"
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {scrub(str(exc), [secret])}"
            response = ApiResponse(
                endpoint=endpoint, params=safe_params, status=status, body=body, attempts=attempt,
                error=error, elapsed_s=time.monotonic() - started,
            )
            note = f" {access_note}" if access_note else ""
            if status == 401:
                raise AuthError(
                    f"{secret_spec.provider} rejected the credentials for {endpoint} (HTTP 401). "
                    f"Check the {secret_spec.where()}.{note}"
                )
            if status == 403:
                raise AccessDeniedError(
                    f"{secret_spec.provider} refused {endpoint} for this token (HTTP 403): its plan "
                    f"or zone does not allow this request.{note}"
                )
            retryable = error is not None or status in RETRYABLE_STATUSES
            if not retryable:
                return response
            if attempt > self.policy.max_retries:
                reason = error or f"HTTP {status}"
                raise RetriesExhaustedError(
                    f"{secret_spec.provider} {endpoint} failed after {attempt} attempts: {reason}",
                    response,
                )
            self.sleep(self.policy.delay(attempt, self._rng, retry_after))
