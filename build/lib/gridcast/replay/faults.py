"""Fault injection: error statuses, latency, truncated and malformed bodies.

Random faults are decided per request from the seed and the request's identity (method, path,
query without credentials, simulated now, and how many times that same request was already
served: its attempt number), never from an RNG consumed in arrival order. So the same seed gives
the same faults whatever order concurrent requests arrive in, and a retry of a request draws
afresh. Scripted faults (``ReplayServer.fail_next``) come first, in the order they were added.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from gridcast.config import FaultSettings
from gridcast.replay.wire import JSON_TYPE, TEXT_TYPE, Response, dumps

# Query parameters that carry credentials: dropped from the request log and fault matching.
CREDENTIAL_PARAMS = frozenset({"key", "apikey", "api_key", "token", "auth-token", "auth_token"})


@dataclass(frozen=True)
class Fault:
    kind: str
    status: int = 500


@dataclass
class ScriptedFault:
    path_contains: str
    fault: Fault
    remaining: int


def request_identity(method: str, logged_path: str, now_ms: int, attempt: int) -> str:
    """What identifies one request for fault decisions: the query in a canonical order (the
    client's parameter order must not matter), credentials already removed, the simulated now
    and the attempt number (1 for the first time this request is served at this now)."""
    path, _, query = logged_path.partition("?")
    canonical = "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(query, keep_blank_values=True)))
    return f"{method} {path}?{canonical} @{now_ms} #{attempt}"


def decide_fault(settings: FaultSettings, identity: str) -> Fault | None:
    """The random fault (or none) for a request: a pure function of seed and identity.

    Three independent uniform draws come from a SHA-256 of (seed, identity): whether a fault
    happens (probability ``rate``), which kind, which status.
    """
    if settings.rate <= 0:
        return None
    digest = hashlib.sha256(f"{settings.seed}\x1f{identity}".encode()).digest()
    happens, kind, status = (int.from_bytes(digest[i:i + 8], "big") / 2**64 for i in (0, 8, 16))
    if happens >= settings.rate:
        return None
    return Fault(settings.kinds[int(kind * len(settings.kinds))],
                 settings.statuses[int(status * len(settings.statuses))])


_EM_STATUS_MESSAGES = {
    400: "Bad request", 404: "Not found", 429: "Too many requests",
    500: "Internal server error", 502: "Bad gateway", 503: "Service unavailable",
    504: "Gateway timeout",
}
_VC_STATUS_TEXTS = {
    429: "Maximum daily cost exceeded", 500: "Internal server error",
    502: "Bad gateway", 503: "Service unavailable", 504: "Gateway timeout",
}


def fault_status_response(api: str, status: int, key: str) -> Response:
    """An injected error status, with the body the provider would send."""
    if api == "vc":
        if status == 401:
            text = f"No account found with API key '{key}'"
        elif status == 400:
            text = "Bad API Request:Invalid location parameter value."
        else:
            text = _VC_STATUS_TEXTS.get(status, f"HTTP error {status}")
        return Response(status, TEXT_TYPE, text.encode("utf-8"), api)
    if status == 401:
        return Response(status, JSON_TYPE, dumps({"error": "Invalid auth-token"}), api)
    if status == 403:
        return Response(status, TEXT_TYPE, b"Access denied", api)
    message = _EM_STATUS_MESSAGES.get(status, f"HTTP error {status}")
    return Response(status, JSON_TYPE, dumps({"status": "error", "message": message}), api)


def truncate_body(body: bytes, is_csv: bool) -> bytes:
    """Cut a payload mid-way; a CSV is cut inside a line, so its last row is incomplete."""
    if len(body) < 2:
        return b""
    middle = len(body) // 2
    if not is_csv:
        return body[:middle]
    line_start = body.rfind(b"\n", 0, middle) + 1
    line_end = body.find(b"\n", middle)
    line_end = len(body) if line_end < 0 else line_end
    return body[: line_start + max(1, (line_end - line_start) // 2)]


def garble_body(body: bytes, is_csv: bool) -> bytes:
    """Corrupt a payload so it no longer parses: JSON loses its colons in the second half;
    CSV rows alternately get ';' separators (wrong field count)."""
    if not is_csv:
        middle = len(body) // 2
        garbled = body[:middle] + body[middle:].replace(b":", b"")
        try:
            json.loads(garbled)
        except ValueError:
            return garbled
        return b"{" + body  # no colon to remove (a tiny payload): unbalance it instead
    lines = body.split(b"\n")
    data_lines = [i for i in range(1, len(lines)) if lines[i]]
    if not data_lines:
        return body + b"\x00\x00garbled\x00\n"
    for n, i in enumerate(data_lines):
        if n % 2 == 0:
            lines[i] = lines[i].replace(b",", b";")
    return b"\n".join(lines)


def mangle(response: Response, kind: str) -> Response:
    if response.status != 200:
        return response  # only successful payloads get cut or garbled
    is_csv = response.content_type.startswith("text/csv")
    body = truncate_body(response.body, is_csv) if kind == "truncated" else (
        garble_body(response.body, is_csv))
    return Response(200, response.content_type, body, response.api, response.headers)


def strip_credentials(raw_path: str) -> str:
    """Path with query, credential parameters removed (original encoding of the rest kept)."""
    path, _, query = raw_path.partition("?")
    if not query:
        return path
    kept = [part for part in query.split("&")
            if unquote(part.partition("=")[0]).casefold() not in CREDENTIAL_PARAMS]
    return f"{path}?{'&'.join(kept)}" if kept else path


