"""The local HTTP server: framing on the wire, GET bodies, concurrency, client disconnects."""

import http.client
import json
import socket
import threading

import numpy as np
import pytest

from icesat2sr.formats import wire
from icesat2sr.service.routes import Config
from icesat2sr.service.server import Server

from .test_routes import _grandchildren, wait_for


@pytest.fixture(scope="module")
def server(synth_dir):
    srv = Server(Config(path=str(synth_dir), workers=2, heartbeat_s=0.05), "127.0.0.1", 0).start()
    yield srv.port
    srv.stop()


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers or {})
    return conn, conn.getresponse()


def test_get_with_a_json_body_and_exact_content_type(server):
    conn, r = request(server, "GET", "/source/definition", {"rectype": "exceptrec"},
                      {"x-sliderule-client": "python-v4.20.0"})
    assert r.status == 200 and r.getheader("Content-Type") == "application/json"
    assert json.loads(r.read()) == wire.DEFINITIONS["exceptrec"]
    conn.close()


def test_stream_is_chunked_octet_stream(server, synth_names):
    conn, r = request(server, "POST", "/source/atl06p", {"resources": synth_names, "parms": {"cnf": 2}})
    assert r.status == 200 and r.getheader("Content-Type") == "application/octet-stream"
    assert r.getheader("Transfer-Encoding") == "chunked" and r.getheader("Content-Length") is None
    tables = wire.decode(r.read())
    assert sum(len(e) for e in tables.elevations) > 1000
    conn.close()


def test_definitions_are_served_while_a_stream_is_open(server, synth_names):
    conn, r = request(server, "POST", "/source/atl06p", {"resources": synth_names, "parms": {"maxi": 10}})
    first = r.read1(8)                         # the stream has started and is still open
    assert len(first) > 0
    c2, d = request(server, "GET", "/source/definition", {"rectype": "atl06rec"})
    assert d.status == 200 and json.loads(d.read())["elevation"]["type"] == "atl06rec.elevation"
    c2.close()
    rest = first + r.read()
    assert sum(len(e) for e in wire.decode(rest).elevations) > 1000
    conn.close()


def test_concurrent_requests_get_identical_answers(server, synth_names):
    out = [None] * 3

    def run(i):
        conn, r = request(server, "POST", "/source/atl06p", {"resources": synth_names, "parms": {"cnf": 1}})
        rows = np.concatenate(wire.decode(r.read()).elevations)
        out[i] = np.sort(rows, order=["extent_id"])
        conn.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(o is not None and len(o) > 1000 for o in out)
    assert all(np.array_equal(o.tobytes(), out[0].tobytes()) for o in out[1:])


def test_a_client_that_disconnects_stops_the_work(server, synth_names):
    before = _grandchildren()
    body = json.dumps({"resources": synth_names, "parms": {"cnf": 0, "maxi": 50, "res": 1.0}}).encode()
    with socket.create_connection(("127.0.0.1", server)) as s:
        s.sendall(b"POST /source/atl06p HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%b" % (len(body), body))
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        assert wait_for(lambda: len(_grandchildren() - before) >= 2, 10)   # both granules in work
        workers = _grandchildren() - before
    # processing all of it takes ~5 s; the workers must be gone well before
    assert wait_for(lambda: not _grandchildren() & workers, 1.5)           # the server noticed


def test_bad_content_length_and_unknown_paths(server):
    conn, r = request(server, "GET", "/nothing")
    assert r.status == 404 and r.getheader("Content-Type") == "application/json"
    r.read()
    conn.close()
    with socket.create_connection(("127.0.0.1", server)) as s:
        s.sendall(b"POST /source/atl06p HTTP/1.1\r\nHost: x\r\nContent-Length: -4\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 400")
