"""Local replay server: Electricity Maps v3 and Visual Crossing Timeline over a recording.

:class:`ReplayServer` serves a :class:`~gridcast.replay.recording.Recording` on 127.0.0.1 (ephemeral
port, daemon thread) in both providers' wire formats, on a simulated clock: asked at simulated
time N, it answers what the real API would have answered at N (``docs/replay-format.md``).
It can inject faults (error statuses, latency, truncated and malformed bodies), randomly (decided
from a seed and each request's identity, see :mod:`gridcast.replay.faults`) or scripted per
request, so that clients' retry and quarantine paths get exercised.

It never writes to stderr per request: the default ``BaseHTTPRequestHandler`` logs the request
line, which carries the Visual Crossing key. The request log (``ReplayServer.requests``) keeps
the path with credential parameters removed.

Usage::

    now = datetime(2025, 3, 11, 9, tzinfo=UTC)
    with ReplayServer("data/recordings/gr-2024-2025", now=now) as srv:
        requests.get(f"{srv.electricitymaps_url}/carbon-intensity/history", params={"zone": "GR"})
        srv.set_now(now + timedelta(hours=1))
"""

from __future__ import annotations

import argparse
import logging
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from gridcast.config import FAULT_KINDS, FaultSettings
from gridcast.httpserver import HOST, BackgroundServer
from gridcast.replay.apis import EM_PREFIX, VC_PREFIX, ElectricityMapsApi, VisualCrossingApi
from gridcast.replay.faults import (
    Fault,
    ScriptedFault,
    decide_fault,
    fault_status_response,
    mangle,
    request_identity,
    strip_credentials,
)
from gridcast.replay.reader import load_recording
from gridcast.replay.recording import Recording
from gridcast.replay.wire import TEXT_TYPE, ApiError, Response

log = logging.getLogger(__name__)


class RequestRecord(NamedTuple):
    """One served request: method, path with query (credentials removed), status sent."""

    method: str
    path: str
    status: int


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------
class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, server: ReplayServer) -> None:
        self.replay = server
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((HOST, 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on kept-alive clients, so a stopped server answers nothing more."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; a client hanging up is routine here.
        log.debug("replay server: connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a requests.Session reuses its connection
    disable_nagle_algorithm = True  # headers and body are two writes; avoid a 40 ms stall
    server_version = "gridcast-replay/1"
    sys_version = ""
    timeout = 60  # idle keep-alive connections free their thread eventually
    server: _QuietHTTPServer

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        response = self.server.replay._respond(self.command, self.path, self.headers)
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silenced: the request line carries the Visual Crossing key."""


class ReplayServer(BackgroundServer):
    """Serves a recording over HTTP in Electricity Maps v3 and Visual Crossing wire formats.

    Bound to 127.0.0.1 on an ephemeral port, served in a daemon thread.

    Args:
        recording: a recording directory or a loaded :class:`Recording`.
        now: the simulated clock's start (timezone-aware).
        faults: random fault injection, off by default.
        tokens: ``{"electricitymaps": ..., "visualcrossing": ...}``; a missing key (or None)
            accepts any token or none.
    """

    _thread_name = "replay-server"
    _poll_interval_s = 0.05
    _join_timeout_s = 5.0

    def __init__(
        self,
        recording: str | Path | Recording,
        *,
        now: datetime,
        faults: FaultSettings | None = None,
        tokens: Mapping[str, str] | None = None,
    ) -> None:
        self.recording = (
            recording if isinstance(recording, Recording) else load_recording(recording))
        self.faults = faults or FaultSettings()
        tokens = dict(tokens or {})
        self._em = ElectricityMapsApi(self.recording, tokens.get("electricitymaps"))
        self._vc = VisualCrossingApi(self.recording, tokens.get("visualcrossing"))
        self._now_ms = _to_epoch_ms(now)
        # How often each (request, simulated now) was served: the attempt number of a retry.
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()
        self._scripted: list[ScriptedFault] = []
        self.requests: list[RequestRecord] = []
        super().__init__()

    # -- lifecycle (start / stop / port / with-block: BackgroundServer) -------------------------
    def _make_server(self) -> _QuietHTTPServer:
        return _QuietHTTPServer(self)

    @property
    def electricitymaps_url(self) -> str:
        return f"{self.base_url}{EM_PREFIX}"

    @property
    def visualcrossing_url(self) -> str:
        return f"{self.base_url}{VC_PREFIX}"

    # -- simulated clock and scripted faults -------------------------------------------------
    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now_ms / 1000, UTC)

    def set_now(self, now: datetime) -> None:
        """Move the simulated clock (timezone-aware; any direction)."""
        self._now_ms = _to_epoch_ms(now)

    def fail_next(self, path_contains: str, kind: str = "status", count: int = 1,
                  status: int = 500) -> None:
        """Give the next ``count`` requests whose logged path (credentials removed, query
        included) contains ``path_contains`` the fault ``kind``. Scripted faults take
        precedence over random ones and are consumed in the order they were added."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}, got {kind!r}")
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._scripted.append(ScriptedFault(path_contains, Fault(kind, status), count))

    def clear_faults(self) -> None:
        """Drop scripted faults not yet consumed."""
        with self._lock:
            self._scripted.clear()

    # -- request handling --------------------------------------------------------------------
    def _next_fault(self, method: str, logged_path: str, now_ms: int) -> Fault | None:
        with self._lock:
            for scripted in self._scripted:
                if scripted.path_contains in logged_path:
                    scripted.remaining -= 1
                    if scripted.remaining == 0:
                        self._scripted.remove(scripted)
                    return scripted.fault
            key = request_identity(method, logged_path, now_ms, 0)
            attempt = self._served[key] = self._served.get(key, 0) + 1
        return decide_fault(self.faults, request_identity(method, logged_path, now_ms, attempt))

    def _respond(self, method: str, raw_path: str, headers: Mapping[str, str]) -> Response:
        logged_path = strip_credentials(raw_path)
        path, _, query = raw_path.partition("?")
        params = dict(parse_qsl(query, keep_blank_values=True))
        api = "em" if path.startswith(EM_PREFIX + "/") else (
            "vc" if path.startswith(VC_PREFIX + "/") else "other")
        now_ms = self._now_ms
        fault = self._next_fault(method, logged_path, now_ms)
        if fault is not None and fault.kind == "status":
            response = fault_status_response(api, fault.status, params.get("key", ""))
        else:
            if fault is not None and fault.kind == "latency":
                time.sleep(self.faults.latency_s)
            response = self._route(method, api, path, params, headers, now_ms)
            if fault is not None and fault.kind in ("truncated", "malformed"):
                response = mangle(response, fault.kind)
        with self._lock:
            self.requests.append(RequestRecord(method, logged_path, response.status))
        return response

    def _route(self, method: str, api: str, path: str, params: Mapping[str, str],
               headers: Mapping[str, str], now_ms: int) -> Response:
        try:
            if method != "GET":
                raise ApiError(Response(405, TEXT_TYPE, b"Method not allowed", api))
            if api == "em":
                return self._em.handle(path, params, headers, now_ms)
            if api == "vc":
                return self._vc.handle(path, params, now_ms)
            raise ApiError(Response(404, TEXT_TYPE, b"Not found", api))
        except ApiError as error:
            return error.response
        except Exception:  # a bug must not kill the connection; never echo the URL
            log.exception("replay server: internal error on %s", strip_credentials(path))
            return fault_status_response(api, 500, "")


def _to_epoch_ms(now: datetime) -> int:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("the simulated clock needs a timezone-aware datetime (UTC)")
    return int(round(now.timestamp() * 1000))


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a recording until interrupted: ``python -m gridcast.replay DIR --now T``."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("recording", type=Path)
    parser.add_argument("--now", required=True, help="simulated time, ISO-8601 (UTC if naive)")
    args = parser.parse_args(argv)
    now = datetime.fromisoformat(args.now)
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    with ReplayServer(args.recording, now=now) as server:
        print(f"Electricity Maps: {server.electricitymaps_url}")
        print(f"Visual Crossing:  {server.visualcrossing_url}")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
