"""``icesat2sr serve``: a local SlideRule-compatible HTTP server over local granules.

A threaded HTTP/1.1 server in front of :func:`icesat2sr.service.routes.handle`, so the official
``sliderule`` client (and ours) can point at ``127.0.0.1:9081`` unchanged. Record streams go out
with chunked transfer encoding as granules complete; each request has its own thread, so the
clients' ``/source/definition`` calls are answered while their stream is still open. When a
client goes away (a failed write, or a closed socket noticed between results) the stream is
closed, which terminates its worker processes.
"""

from __future__ import annotations

import logging
import select
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from .. import __version__
from .routes import Config, Response, handle

log = logging.getLogger(__name__)
MAX_BODY = 16 << 20   # a request is JSON parameters; a 16384-point polygon is well under 1 MB


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # chunked responses and keep-alive
    server_version = f"icesat2sr/{__version__}"
    server: _Server

    def handle(self) -> None:
        try:
            super().handle()
        except ConnectionError:   # the client closed a kept-alive connection: nothing to answer
            self.close_connection = True

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args) -> None:
        log.info("%s %s", self.address_string(), format % args)

    # ------------------------------------------------------------------
    def _serve(self, method: str) -> None:
        body = self._read_body()
        if body is None:
            return
        response = handle(method, urlsplit(self.path).path, dict(self.headers.items()), body, self.server.config)
        if response.streaming:
            self._send_stream(response)
        else:
            self._send_whole(response)

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._send_whole(Response(400 if length < 0 else 413, "application/json",
                                      b'{"error": "bad or too large Content-Length"}'))
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        parts, total = [], 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                raise ValueError("request body too large")
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _start(self, response: Response, extra: dict[str, str]) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        for key, value in {**response.headers, **extra}.items():
            self.send_header(key, value)
        self.end_headers()

    def _send_whole(self, response: Response) -> None:
        self._start(response, {"Content-Length": str(len(response.body))})
        self.wfile.write(response.body)

    def _send_stream(self, response: Response) -> None:
        body = response.body
        try:
            self._start(response, {"Transfer-Encoding": "chunked"})
            for chunk in body:
                if not chunk:
                    if self._client_gone():
                        raise ConnectionAbortedError("client went away")
                    continue
                self.wfile.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (ConnectionError, TimeoutError) as exc:
            log.info("%s %s: stopped (%s)", self.address_string(), self.path, exc)
            self.close_connection = True
        finally:
            body.close()   # terminates the request's worker processes if it did not finish

    def _client_gone(self) -> bool:
        """True when the peer closed its end (readable socket with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], config: Config):
        super().__init__(address, _Handler)
        self.config = config


def make_server(config: Config, host: str = "127.0.0.1", port: int = 9081) -> ThreadingHTTPServer:
    """A ready server (not yet serving); ``port=0`` picks a free port (see ``server_address``)."""
    return _Server((host, port), config)


def serve(config: Config, host: str = "127.0.0.1", port: int = 9081) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM); prints the URL to stdout first."""
    server = make_server(config, host, port)
    real_host, real_port = server.server_address[:2]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # exit cleanly: worker pools are terminated
    print(f"icesat2sr serving {config.asset} granules of {config.path} on http://{real_host}:{real_port}"
          f"  (sliderule.init(\"{real_host}:{real_port}\", organization=None))", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
