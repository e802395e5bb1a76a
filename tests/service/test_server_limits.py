"""The local server's limits: framing attacks, slow clients, busy servers, backlog, SIGTERM."""

import json
import signal
import socket
import subprocess
import sys
import time

import pytest

from icesat2sr.service.routes import Config
from icesat2sr.service.server import Limits, Server

from .test_routes import _grandchildren, process_parents, wait_for

LIMITS = Limits(max_processing=1, max_body=4096, header_timeout_s=0.5, body_timeout_s=0.5, keepalive_s=1.0,
                send_timeout_s=5.0)
SLOW = {"cnf": 0, "maxi": 50, "res": 1.0}   # ~5 s of work on the two synthetic granules


@pytest.fixture(scope="module")
def server(synth_dir):
    srv = Server(Config(path=str(synth_dir), workers=2, heartbeat_s=0.05), "127.0.0.1", 0, LIMITS).start()
    yield srv
    srv.stop()


def exchange(port: int, raw: bytes, wait: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes the connection (or ``wait`` passes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(raw)
        out = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            out += chunk
    return out


def statuses(raw: bytes) -> list[int]:
    return [int(line.split()[1]) for line in raw.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


def test_an_oversized_body_is_413_and_its_rest_never_a_request(server):
    hidden = b"GET /source/health HTTP/1.1\r\nHost: x\r\n\r\n"
    body = hidden * 200   # 8 KB > max_body
    out = exchange(server.port, b"POST /source/atl06p HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                b"Content-Length: %d\r\n\r\n%b" % (len(body), body))
    assert statuses(out) == [413] and b"healthy" not in out
    chunked = b"%x\r\n%b\r\n" % (len(body), body)
    out = exchange(server.port, b"POST /source/atl06p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                + chunked + b"0\r\n\r\n" + hidden)
    assert statuses(out) == [413] and b"healthy" not in out


@pytest.mark.parametrize("head", [
    b"POST /source/health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}",
    b"POST /source/health HTTP/1.1\r\nHost: x\r\nContent-Length: -4\r\n\r\n",
    b"POST /source/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST /source/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
    b"GARBAGE\r\n\r\n",
])
def test_malformed_framing_is_a_400(server, head):
    out = exchange(server.port, head)
    assert statuses(out) == [400], out[:200]
    assert b"healthy" not in out


@pytest.mark.parametrize("size", [70_000, 200_000])
def test_oversized_heads_are_refused(server, size):
    out = exchange(server.port, b"GET /source/health HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * size + b"\r\n\r\n")
    assert statuses(out) in ([400], [431]) and b"healthy" not in out


def test_slow_clients_are_dropped(server):
    started = time.monotonic()
    out = exchange(server.port, b"GET /source/health HTTP/1.1\r\nHost: x\r\n", wait=5)   # head never ends
    assert statuses(out) == [408] and time.monotonic() - started < 2.5
    started = time.monotonic()
    assert exchange(server.port, b"", wait=5) == b"" and time.monotonic() - started < 2.5   # never says anything
    started = time.monotonic()
    out = exchange(server.port, b"POST /source/health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", wait=5)
    assert statuses(out) == [408] and time.monotonic() - started < 2.5   # body never ends


def test_idle_keepalive_connections_are_closed(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET /source/health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b"true}"):
            answer += s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert s.recv(4096) == b""   # closed by the server, not by the 5 s socket timeout
        assert time.monotonic() - started < 3


def post(port: int, path: str, body: dict) -> socket.socket:
    data = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"POST %b HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
              % (path.encode(), len(data), data))
    return s


def test_processing_requests_beyond_the_limit_get_503(server, synth_names):
    before = _grandchildren()
    first = post(server.port, "/source/atl06p", {"resources": synth_names, "parms": SLOW})
    try:
        assert first.recv(4096).startswith(b"HTTP/1.1 200")
        second = post(server.port, "/source/indexer", {"resources": synth_names})
        answer = second.recv(4096)
        second.close()
        assert statuses(answer) == [503] and b"retry-after: 5" in answer.lower()
        # small endpoints are still answered while the processing slot is taken
        out = exchange(server.port, b"GET /source/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert statuses(out) == [200]
    finally:
        first.close()
    assert wait_for(lambda: not (_grandchildren() - before), 3)
    # the slot is free again
    assert wait_for(lambda: statuses(exchange(server.port, b"POST /source/indexer HTTP/1.1\r\nHost: x\r\n"
                                              b"Connection: close\r\nContent-Length: 2\r\n\r\n{}")) == [400], 3)


def test_the_listen_backlog_holds_a_burst_of_connections(synth_dir):
    srv = Server(Config(path=str(synth_dir)), "127.0.0.1", 0, Limits(backlog=256))   # listening, not accepting
    sockets = []
    try:
        for _ in range(100):   # with http.server's backlog of 5, connections past ~6 hang in SYN_SENT
            sockets.append(socket.create_connection(("127.0.0.1", srv.port), timeout=2))
    finally:
        for s in sockets:
            s.close()
        srv.socket.close()
    assert len(sockets) == 100


def test_sigterm_stops_open_streams_and_exits_cleanly(synth_dir, synth_names):
    proc = subprocess.Popen([sys.executable, "-m", "icesat2sr.cli", "serve", "--path", str(synth_dir), "--port", "0",
                             "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline().split(" on http://", 1)[1].split()[0].rsplit(":", 1)[1])
        stream = post(port, "/source/atl06p", {"resources": synth_names, "parms": SLOW})
        assert stream.recv(4096).startswith(b"HTTP/1.1 200")

        def serving() -> set[int]:   # the server's grandchildren: forked by its forkserver
            return _grandchildren(proc.pid)

        assert wait_for(lambda: len(serving()) >= 2, 10)
        serving_pids = serving()
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5            # the ~5 s of work was not waited for
        assert wait_for(lambda: not (serving_pids & set(process_parents())), 2)
        rest = b""
        while chunk := stream.recv(65536):
            rest += chunk
        assert b"server shutting down" in rest and rest.endswith(b"0\r\n\r\n")   # a complete chunked body
        stream.close()
    finally:
        if proc.poll() is None:
            proc.kill()

