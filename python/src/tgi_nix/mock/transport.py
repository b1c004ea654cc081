"""HTTP plumbing: the threaded server and the request/response helpers, including server-sent
events (SSE) the way axum streams them."""

from __future__ import annotations

import json
import socket
import socketserver
import sys
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from .constants import UNHEALTHY
from .model import MockTGI
from .parsing import ApiError, Body, Rejection


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        app: MockTGI,
        handler: type[BaseHTTPRequestHandler],
        metrics_only: bool = False,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app, self.metrics_only = app, metrics_only
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (reset, closed mid-answer) is one line on stderr, not a traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            sys.stderr.write(f"client {client_address[0]} closed the connection: {type(exc).__name__}\n")
            return
        super().handle_error(request, client_address)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls socket.getfqdn(), a reverse DNS lookup that can hang offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


class Exchange(BaseHTTPRequestHandler):
    """One HTTP exchange: reading the request body, answering with JSON, plain text or SSE."""

    protocol_version = "HTTP/1.1"
    timeout = 300  # idle keep-alive connections end eventually
    # Headers and body are written separately; without TCP_NODELAY the body waits for the
    # client's delayed ACK (~40 ms per response), which real TGI (hyper) does not do.
    disable_nagle_algorithm = True

    @property
    def app(self) -> MockTGI:
        return cast(Server, self.server).app

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence http.server's stderr log
        return

    # -- response helpers
    def _head(self, status: int, headers: Mapping[str, str]) -> None:
        self.responded = True
        self.send_response_only(status)
        self.send_header("date", self.date_time_string())
        if self.headers.get("Origin"):
            self.send_header("access-control-allow-origin", "*")
            self.send_header("vary", "origin, access-control-request-method, access-control-request-headers")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        all_headers = dict(headers or {})
        if content_type:
            all_headers["content-type"] = content_type
        all_headers["content-length"] = str(len(body))
        self._head(status, all_headers)
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        self.send(status, body, "application/json", headers)

    def send_error_json(self, err: ApiError) -> None:
        if err.status == 503:
            self.send_json(503, UNHEALTHY)
        else:
            self.send_json(err.status, err.body())

    def sse(self, events: Iterator[str], headers: Mapping[str, str]) -> None:
        """axum Sse: `data: ...\\n\\n` per event, chunked on HTTP/1.1, close-delimited on HTTP/1.0."""
        chunked = self.request_version != "HTTP/1.0"
        all_headers = {"content-type": "text/event-stream", "cache-control": "no-cache", **headers}
        if chunked:
            all_headers["transfer-encoding"] = "chunked"
        else:
            self.close_connection = True
        self._head(200, all_headers)
        try:
            for data in events:
                payload = f"data: {data}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload) if chunked else payload)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    # -- request plumbing
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
                if sum(map(len, chunks)) > self.app.s.payload_limit:
                    self.close_connection = True
                    raise Rejection(413, "Failed to buffer the request body: length limit exceeded")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise Rejection(400, "Bad Request") from None
        if length > self.app.s.payload_limit:
            self.close_connection = True
            raise Rejection(413, "Failed to buffer the request body: length limit exceeded")
        return self.rfile.read(length) if length > 0 else b""

    def _json(self, raw: bytes) -> tuple[Any, Body]:
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if not (
            ctype == "application/json" or (ctype.startswith("application/") and ctype.endswith("+json"))
        ):
            raise Rejection(415, "Expected request with `Content-Type: application/json`")
        text = raw.decode("utf-8", errors="replace")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            kind = {
                "Expecting value": "expected value",
                "Extra data": "trailing characters",
                "Expecting property name enclosed in double quotes": "key must be a string",
            }.get(err.msg, "EOF while parsing a value" if err.pos >= len(text) else "expected value")
            raise Rejection(
                400,
                f"Failed to parse the request body as JSON: {kind} at line {err.lineno} column {err.colno}",
            ) from err
        return data, Body(text)

    def _authorized(self) -> bool:
        key = self.app.s.api_key
        if key is None:
            return True
        given = self.headers.get("Authorization")
        return given is not None and given.lower() == f"Bearer {key}".lower()
