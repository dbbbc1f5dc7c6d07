"""A local HTTP server run in a background thread: the lifecycle the replay server and the
forecast API share (start, stop, port, with-block)."""

from __future__ import annotations

import threading
from http.server import HTTPServer
from typing import TypeVar

HOST = "127.0.0.1"  # loopback only: neither server has authentication

S = TypeVar("S", bound="BackgroundServer")


class BackgroundServer:
    """Subclasses build their `HTTPServer` in `_make_server()`; this class serves it in a daemon
    thread and releases the port on `stop()` (idempotent)."""

    _thread_name = "gridcast-http"
    _poll_interval_s = 0.1
    _join_timeout_s = 10.0

    def __init__(self) -> None:
        self._http: HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _make_server(self) -> HTTPServer:
        raise NotImplementedError

    def _started(self) -> None:
        """Hook after the thread started (log the address, ...)."""

    def _stopped(self) -> None:
        """Hook after the port was released."""

    def start(self: S) -> S:
        """Bind and serve in a daemon thread (a no-op when already serving)."""
        if self._http is None:
            self._http = self._make_server()
            self._thread = threading.Thread(
                target=self._http.serve_forever, kwargs={"poll_interval": self._poll_interval_s},
                name=f"{self._thread_name}-{self.port}", daemon=True)
            self._thread.start()
            self._started()
        return self

    def stop(self) -> None:
        """Stop accepting, finish the requests in flight, release the port (idempotent)."""
        if self._http is None:
            return
        self._http.shutdown()
        self._http.server_close()
        close_connections = getattr(self._http, "close_connections", None)
        if close_connections is not None:
            close_connections()
        if self._thread is not None:
            self._thread.join(timeout=self._join_timeout_s)
        self._http, self._thread = None, None
        self._stopped()

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError(f"{type(self).__name__} is not started: call start() or use a "
                               "with block")
        return int(self._http.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"
