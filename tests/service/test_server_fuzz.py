"""Property: no request, however malformed, gets a 5xx or no answer from ``icesat2sr serve``.

Requests go over real HTTP (raw sockets, so framing can be wrong too) to a server over an
empty data folder: granules named in a request are missing, so each example is answered in
milliseconds while every parsing and validation path is exercised. After the run the server
must still answer. ``pytest --hypothesis-show-statistics`` lists what was tried (route -> status).
"""

from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from icesat2sr.service.routes import Config
from icesat2sr.service.server import Limits, Server

from ..fuzz_requests import GRANULE, PATHS, ROUTES, bodies, headers, methods, paths

FRAMINGS = st.sampled_from(["length"] * 6 + ["chunked", "bad-chunk", "short-length", "none"])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    empty = tmp_path_factory.mktemp("empty")
    srv = Server(Config(path=str(empty), workers=1, heartbeat_s=0.05), "127.0.0.1", 0,
                 Limits(max_body=1 << 20, header_timeout_s=2.0, body_timeout_s=0.3)).start()
    yield srv
    srv.stop()


def frame(method: str, path: bytes, head: dict[str, str], body: bytes, framing: str) -> bytes:
    lines = [b"%b %b HTTP/1.1" % (method.encode(), path), b"Host: fuzz", b"Connection: close"]
    lines += [b"%b: %b" % (k.encode(), v.encode("utf-8", "surrogateescape").replace(b"\r", b"").replace(b"\n", b""))
              for k, v in head.items()]
    if framing == "length":
        lines.append(b"Content-Length: %d" % len(body))
    elif framing == "short-length":    # more announced than sent: the body timeout answers
        lines.append(b"Content-Length: %d" % (len(body) + 10))
    elif framing in ("chunked", "bad-chunk"):
        lines.append(b"Transfer-Encoding: chunked")
        size = b"%x" % len(body) if framing == "chunked" else b"%xg" % len(body)
        body = (size + b"\r\n" + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    else:
        body = b""
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def status_of(port: int, raw: bytes) -> int | None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(raw)
        except OSError:   # the server answered and closed before reading everything
            pass
        answer = b""
        while b"\r\n" not in answer:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
    head = answer.split(b"\r\n", 1)[0].split()
    return int(head[1]) if len(head) >= 2 and head[0].startswith(b"HTTP/") and head[1].isdigit() else None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(method=methods, path=st.one_of(st.sampled_from(ROUTES), st.sampled_from(ROUTES), paths), head=headers,
       body=bodies, framing=FRAMINGS)
def test_no_request_gets_a_5xx_or_no_answer(server, method, path, head, body, framing):
    raw_path = path.encode("utf-8", "surrogateescape").replace(b" ", b"%20").replace(b"\r", b"").replace(b"\n", b"")
    status = status_of(server.port, frame(method, raw_path, head, body, framing))
    event(f"{path if path in PATHS else 'other path'} -> {status}")
    assert status is not None and 200 <= status < 500, (status, method, path, head, body[:200], framing)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(min_size=1, max_size=300))
def test_raw_bytes_get_an_answer_or_a_close(server, raw):
    status = status_of(server.port, raw + b"\r\n\r\n")
    event(f"raw bytes -> {status}")
    assert status is None or 200 <= status < 500


def test_the_server_still_answers_after_the_fuzz(server):
    assert status_of(server.port, b"GET /source/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 200
    body = b'{"resource": "%b"}' % GRANULE.encode()
    assert status_of(server.port, b"POST /source/atl06 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                  b"Content-Length: %d\r\n\r\n%b" % (len(body), body)) == 200
