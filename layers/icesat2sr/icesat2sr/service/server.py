"""``icesat2sr serve``: a local SlideRule-compatible HTTP server over local granules.

uvicorn (its strict, pure-Python h11 parser) runs a small ASGI application in front of
:func:`icesat2sr.service.routes.handle`, so the official ``sliderule`` client (and ours) can point
at ``127.0.0.1:9081`` unchanged. Record streams go out chunked as granules complete; the
clients' ``/source/definition`` calls are answered while their stream is still open. When a
client goes away the stream is closed within a heartbeat, which terminates its worker processes.

What a public deployment needs is bounded by :class:`Limits`: processing requests at once (beyond:
503 + Retry-After), connections, request head and body read time, body size (413, then the
connection is closed: the rest of the body is never read as a request), the time a client may
take to accept a stream chunk, keep-alive idle time and the listen backlog. h11 refuses malformed
framing (conflicting Content-Length, bad chunk sizes, oversized heads) with a 400. SIGTERM stops
the open streams (their workers terminated) and exits with status 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .. import __version__
from ..formats import wire
from .limits import Limits
from .protocol import JSON, PROCESSING, Config, Response
from .routes import handle

log = logging.getLogger(__name__)


MAX_HEAD_BYTES = 64 << 10   # request line + headers (431 beyond)
_SERVER_HEADER = (b"server", f"icesat2sr/{__version__}".encode())
_SHUTDOWN = "server shutting down: request stopped"


def _error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol, with

    * a deadline on request heads (uvicorn has none: a client dribbling a request line, or
      sending nothing at all, would hold its connection forever);
    * a lingering close: an answer sent before the request was read whole (400, 408, 413, 431)
      is followed by a half-close, and what the client still sends is read and dropped for a
      moment. Closing at once would reset the connection and the client could lose the answer.
    """

    header_timeout_s = 10.0

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        self.draining = False
        super().connection_made(_LingeringTransport(transport, self))
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        if self.draining:
            return
        super().data_received(data)
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _watch_head(self) -> None:
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if waiting and self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)
        elif not waiting:
            self._stop_head_timer()

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.trailing_data[0]:   # a request was started: say why it is dropped
            body = _error_body(f"request head not received within {self.header_timeout_s:g} s")
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                                 b"Connection: close\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))
        self.transport.close()


LINGER_S = 2.0   # how long what a refused client still sends is read and dropped


class _LingeringTransport:
    """A transport whose ``close`` half-closes first (see :class:`_Protocol`)."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol):
        self._transport, self._protocol, self._closing = transport, protocol, False

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._protocol.draining = True
        transport = self._transport
        if transport.is_closing() or not transport.can_write_eof():
            transport.close()
            return
        transport.resume_reading()
        transport.write_eof()   # after what is buffered: the client reads the whole answer
        self._protocol.loop.call_later(LINGER_S, transport.close)

    def is_closing(self) -> bool:
        return self._closing or self._transport.is_closing()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


class App:
    """The ASGI application: body limits, the processing-request cap, streams and disconnects."""

    def __init__(self, config: Config, limits: Limits):
        self.config, self.limits = config, limits
        self.processing = 0
        self.stopping = threading.Event()
        # processing requests hold a thread each for parsing/discovery and for driving their stream
        self.executor = ThreadPoolExecutor(max_workers=limits.max_processing + 4, thread_name_prefix="icesat2sr")

    async def __call__(self, scope, receive, send) -> None:
        """The ASGI application: bound the request, read its body, answer it from a worker thread."""
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if len(scope["raw_path"]) + sum(len(k) + len(v) + 4 for k, v in scope["headers"]) > MAX_HEAD_BYTES:
            # h11 only bounds a head that arrives in pieces; one that arrives whole is measured here
            await self._refuse(send, 431, f"request head over {MAX_HEAD_BYTES} bytes")
            return
        body = await self._read_body(scope, receive, send)
        if body is None:
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if path.rstrip("/") not in PROCESSING:
            await self._send_whole(send, handle(method, path, headers, body, self.config))
            return
        if self.processing >= self.limits.max_processing or self.stopping.is_set():
            await self._send_whole(send, Response(503, JSON, _error_body(
                f"busy: {self.limits.max_processing} processing requests are running; retry later"),
                {"Retry-After": str(self.limits.retry_after_s)}))
            return
        self.processing += 1
        try:
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(self.executor, handle, method, path, headers, body, self.config)
            if response.streaming:
                await self._stream(path, response, receive, send)
            else:
                await self._send_whole(send, response)
        finally:
            self.processing -= 1

    # ------------------------------------------------------------------ requests
    async def _read_body(self, scope, receive, send) -> bytes | None:
        """The whole body, or None once an error was answered (or the client left)."""
        limit = self.limits.max_body
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and int(declared) > limit:   # h11 checked it is digits
            await self._refuse(send, 413, f"request body of {int(declared)} bytes; at most {limit} bytes")
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.body_timeout_s
        parts, size = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                await self._refuse(send, 408, f"request body not received within {self.limits.body_timeout_s:g} s")
                return None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(send, 413, f"request body over {limit} bytes")
                return None
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)

    async def _refuse(self, send, status: int, message: str) -> None:
        """An error that also closes the connection: an unread body is never parsed as a request."""
        await self._send_whole(send, Response(status, JSON, _error_body(message), {"Connection": "close"}))

    # ------------------------------------------------------------------ responses
    @staticmethod
    def _head(response: Response, extra: dict[str, str]) -> dict:
        headers = [_SERVER_HEADER, (b"content-type", response.content_type.encode())]
        headers += [(k.lower().encode(), str(v).encode()) for k, v in {**response.headers, **extra}.items()]
        return {"type": "http.response.start", "status": response.status, "headers": headers}

    async def _send_whole(self, send, response: Response) -> None:
        body = bytes(response.body)
        await send(self._head(response, {"Content-Length": str(len(body))}))
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _stream(self, path: str, response: Response, receive, send) -> None:
        """Send a record stream chunk by chunk; stop it when the client leaves, stalls, or the
        server shuts down. The stream is always closed (its workers terminated) at the end."""
        loop = asyncio.get_running_loop()
        body: Iterator[bytes] = response.body  # type: ignore[assignment]
        gone = asyncio.ensure_future(_disconnected(receive))
        pending = None
        try:
            await send(self._head(response, {}))   # no Content-Length: h11 sends it chunked
            while True:
                pending = loop.run_in_executor(self.executor, next, body, None)
                chunk = await pending
                if chunk is None or gone.done():
                    break
                if self.stopping.is_set():
                    chunk = wire.exception_record(wire.ERROR, wire.CRITICAL_LEVEL, _SHUTDOWN)
                if chunk:
                    await asyncio.wait_for(send({"type": "http.response.body", "body": chunk, "more_body": True}),
                                           self.limits.send_timeout_s)
                if self.stopping.is_set():
                    break
            if not gone.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:   # the client stopped reading: drop it (uvicorn closes the connection)
            log.info("%s: client did not read for %g s; stream stopped", path, self.limits.send_timeout_s)
        finally:
            gone.cancel()
            if pending is not None and not pending.done():
                await asyncio.wait([pending])
            await loop.run_in_executor(self.executor, body.close)


async def _disconnected(receive) -> None:
    """Returns when the client has gone (the request body was already read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class Server:
    """A bound, listening server; :meth:`run` serves in this thread, :meth:`start` in another.

    Parameters
    ----------
    config : Config
        What is served.
    host, port : str, int
        Where; ``port=0`` picks a free port (see :attr:`port`).
    limits : Limits, optional
    access_log : bool
        Log every request (``icesat2sr serve -v``).
    """

    def __init__(self, config: Config, host: str = "127.0.0.1", port: int = 9081, limits: Limits | None = None,
                 access_log: bool = False):
        self.limits = limits or Limits()
        self.app = App(config, self.limits)
        protocol = type("Protocol", (_Protocol,), {"header_timeout_s": self.limits.header_timeout_s})
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family, backlog=self.limits.backlog)
        self.host, self.port = self.socket.getsockname()[:2]
        self._uvicorn = _Uvicorn(self.app, uvicorn.Config(
            self.app, http=protocol, lifespan="off", log_config=None, access_log=access_log, server_header=False,
            date_header=True, backlog=self.limits.backlog, limit_concurrency=self.limits.max_connections,
            timeout_keep_alive=max(1, round(self.limits.keepalive_s)),
            timeout_graceful_shutdown=max(1, round(self.limits.shutdown_s)),
            h11_max_incomplete_event_size=MAX_HEAD_BYTES))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The server's base URL, ``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM (main thread) or :meth:`stop`."""
        try:
            self._uvicorn.run(sockets=[self.socket])
        finally:
            self.socket.close()
            self.app.executor.shutdown(wait=False, cancel_futures=True)

    def start(self) -> Server:
        """Serve from a background thread (tests, embedding); returns once it is accepting."""
        self._thread = threading.Thread(target=self.run, name="icesat2sr-serve", daemon=True)
        self._thread.start()
        while not self._uvicorn.started and self._thread.is_alive():
            self._thread.join(0.01)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """What SIGTERM does: stop open streams (workers terminated), close, return when done."""
        self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)


class _Uvicorn(uvicorn.Server):
    """Tells the application to stop its streams as soon as shutdown starts."""

    def __init__(self, app: App, config: uvicorn.Config):
        super().__init__(config)
        self.app = app

    async def shutdown(self, sockets=None) -> None:
        self.app.stopping.set()
        await super().shutdown(sockets=sockets)


def serve(config: Config, host: str = "127.0.0.1", port: int = 9081, limits: Limits | None = None,
          access_log: bool = False) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM); prints the URL to stdout first."""
    server = Server(config, host, port, limits, access_log)
    print(f"icesat2sr serving {config.asset} granules of {config.path} on {server.url}"
          f"  (sliderule.init(\"{server.host}:{server.port}\", organization=None))", flush=True)
    # uvicorn handles SIGTERM/SIGINT itself, then re-raises the signal to the handler found here:
    # after a clean shutdown that must not kill the process (exit status 0)
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)
    server.run()
