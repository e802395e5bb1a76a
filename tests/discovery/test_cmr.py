"""NASA CMR search against CMR-shaped responses served by a local HTTP server (offline).

Fixtures: ``tests/data/cmr`` (see its README). The server answers requests from a script, one
response per request, and records what it was asked.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from icesat2sr.discovery import cmr
from icesat2sr.discovery import find as discovery
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms

DATA = Path(__file__).parents[1] / "data" / "cmr"
NAMES = ["ATL03_20181017222812_02950102_006_02.h5", "ATL03_20190117180804_02950202_006_02.h5",
         "ATL03_20190418134740_02950302_006_02.h5", "ATL03_20190718091757_02950402_006_02.h5",
         "ATL03_20191017045813_02950502_006_02.h5"]
AFTER = ['["atl03_20190117180804_02950202_006_02.h5",1547748484925,2596911870]',
         '["atl03_20190718091757_02950402_006_02.h5",1563441477301,2596994015]',
         '["atl03_20191017045813_02950502_006_02.h5",1571288293982,2597036254]']


def reply(file=None, status=200, hits=None, after=None, delay=0.0, body=None):
    headers = {"Content-Type": "application/json;charset=utf-8", "CMR-Request-Id": "0c1d2e3f-test"}
    if hits is not None:
        headers["CMR-Hits"] = str(hits)
    if after is not None:
        headers["CMR-Search-After"] = after
    data = body if body is not None else (DATA / file).read_bytes() if file else b""
    return status, data, headers, delay


class Handler(BaseHTTPRequestHandler):
    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        url = urlsplit(self.path)
        self.server.requests.append({"method": self.command, "path": url.path,
                                     "query": parse_qsl(url.query or body, keep_blank_values=True),
                                     "headers": dict(self.headers)})
        script = self.server.script
        status, data, headers, delay = script.pop(0) if script else reply(status=599, body=b"script exhausted")
        time.sleep(delay)
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            pass

    do_GET = do_POST = _serve

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.script, srv.requests = [], []
    srv.handle_error = lambda *a: None
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    root = f"http://127.0.0.1:{srv.server_address[1]}"
    monkeypatch.setenv(cmr.ENV_URL, root)
    yield srv
    srv.shutdown()
    srv.server_close()


def fast(**kw):
    """Search with test-friendly retry timing."""
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 2.0)
    return cmr.search(**kw)


def paged_script():
    return [reply("page1.json", hits=5, after=AFTER[0]), reply("page2.json", hits=5, after=AFTER[1]),
            reply("page3.json", hits=5, after=AFTER[2])]


def test_paging_through_every_page(server):
    server.script = paged_script()
    found = fast(version=6, bounding_box=(-108.3, 38.8, -107.7, 39.2), temporal=("2018-10-01T00:00:00Z", None),
                 pattern=cmr.name_pattern(rgt=295), page_size=2)
    assert [g.name for g in found] == NAMES
    assert len(server.requests) == 3  # stopped once CMR-Hits entries arrived
    first = server.requests[0]
    assert first["path"] == "/search/granules.json" and first["method"] == "GET"
    assert first["query"] == [
        ("provider", "NSIDC_CPRD"), ("short_name", "ATL03"), ("version", "006"), ("page_size", "2"),
        ("sort_key[]", "start_date"), ("sort_key[]", "producer_granule_id"),
        ("bounding_box", "-108.3,38.8,-107.7,39.2"), ("temporal", "2018-10-01T00:00:00Z,"),
        ("options[producer_granule_id][pattern]", "true"), ("producer_granule_id[]", "ATL03_??????????????_0295????_*")]
    assert "CMR-Search-After" not in first["headers"]
    for request, token in zip(server.requests[1:], AFTER, strict=False):
        assert request["headers"]["CMR-Search-After"] == token and request["query"] == first["query"]
    g = found[0]
    assert g.concept_id == "G2596866338-NSIDC_CPRD" and g.time_start == "2018-10-17T22:28:12.373Z"
    assert g.key == "nsidc-cumulus-prod-protected/ATLAS/ATL03/006/2018/10/17/" + NAMES[0]
    assert g.s3_url == "s3://" + g.key
    assert resolve_asset("nsidc-s3").locate(g.name) == g.key


def test_paging_ends_on_an_empty_page_without_hits(server):
    server.script = [reply("page1.json", after=AFTER[0]), reply("page3.json", after=AFTER[2]),
                     reply("empty.json")]
    assert [g.name for g in fast()] == [*NAMES[:2], NAMES[4]]
    assert len(server.requests) == 3


def test_paging_ends_without_a_search_after_header(server):
    server.script = [reply("page1.json", hits=99)]
    assert len(fast()) == 2 and len(server.requests) == 1


def test_empty_result(server):
    server.script = [reply("empty.json", hits=0)]
    assert fast(bounding_box=(0, 0, 1, 1)) == []
    assert len(server.requests) == 1


def test_server_error_then_success(server):
    server.script = [reply(status=500, body=b'{"errors":["An Internal Error has occurred."]}'),
                     reply(status=503, body=b"busy"), *paged_script()]
    assert [g.name for g in fast()] == NAMES
    assert len(server.requests) == 5
    assert "CMR-Search-After" not in server.requests[2]["headers"]  # the retried first page


def test_persistent_server_errors_give_a_clear_error(server):
    server.script = [reply(status=503, body=b'{"errors":["Service Unavailable"]}')] * 4
    with pytest.raises(cmr.CmrError, match=r"page 1: HTTP 503 Service Unavailable"):
        fast(retries=3)
    assert len(server.requests) == 4  # 1 + 3 retries


def test_backoff_grows_between_retries(server):
    server.script = [reply(status=502)] * 3 + paged_script()
    started = time.perf_counter()
    assert len(fast(retries=3, backoff=0.1)) == 5
    # urllib3 waits 0, 0.2, 0.4 s before the 2nd, 3rd, 4th attempt
    assert 0.55 < time.perf_counter() - started < 3.0


def test_bad_request_is_not_retried(server):
    server.script = [reply("error_400.json", status=400)]
    with pytest.raises(cmr.CmrError, match=r"HTTP 400 The bounding box coordinates .* West must be within"):
        fast(bounding_box=(200, -20.1, -179.9, -19.9))
    assert len(server.requests) == 1


def test_malformed_page(server):
    server.script = [reply("page1.json", hits=5, after=AFTER[0]), reply("truncated.json", hits=5, after=AFTER[1])]
    with pytest.raises(cmr.CmrError, match="malformed page 2: not JSON"):
        fast()
    server.script = [reply("no_entry_list.json", hits=1)]
    with pytest.raises(cmr.CmrError, match=r"malformed page 1: no feed\.entry list"):
        fast()
    entry = json.loads((DATA / "page1.json").read_text())
    for e in entry["feed"]["entry"]:
        del e["producer_granule_id"], e["title"]
    server.script = [reply(body=json.dumps(entry).encode(), hits=2)]
    with pytest.raises(cmr.CmrError, match=r"G2596866338-NSIDC_CPRD.* has no producer_granule_id or title"):
        fast()


def test_timeout_then_success(server):
    server.script = [reply("page1.json", hits=2, delay=1.0), reply("page1.json", hits=2)]
    assert len(fast(timeout=0.3)) == 2
    assert len(server.requests) == 2


def test_timeouts_exhaust_the_retries(server):
    server.script = [reply("page1.json", delay=0.6)] * 3
    with pytest.raises(cmr.CmrError, match="timed out on page 1, after retries"):
        fast(timeout=0.2, retries=2)
    assert len(server.requests) == 3


def test_unreachable_cmr(monkeypatch):
    with pytest.raises(cmr.CmrError, match="could not be reached"):
        cmr.search(root="http://127.0.0.1:9", retries=1, backoff=0.01, timeout=1.0)


def test_long_polygon_is_posted_counter_clockwise(server):
    import numpy as np

    t = np.linspace(0, -2 * np.pi, 400, endpoint=False)  # clockwise
    ring = [(float(-108 + 0.3 * np.cos(a)), float(39 + 0.2 * np.sin(a))) for a in t]
    server.script = [reply("page3.json", hits=1)]
    assert [g.name for g in fast(polygon=ring)] == [NAMES[4]]
    request = server.requests[0]
    assert request["method"] == "POST" and request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    values = [float(v) for v in dict(request["query"])["polygon"].split(",")]
    xy = list(zip(values[::2], values[1::2], strict=True))
    assert xy[0] == xy[-1] and len(xy) == 401
    area2 = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(xy))
    assert area2 > 0  # counter-clockwise


def test_short_polygon_is_a_get(server):
    server.script = [reply("empty.json", hits=0)]
    fast(polygon=[(-108, 38.8), (-107.7, 38.8), (-107.7, 39.2), (-108, 39.2)])
    request = server.requests[0]
    assert request["method"] == "GET"
    assert dict(request["query"])["polygon"] == "-108,38.8,-107.7,38.8,-107.7,39.2,-108,39.2,-108,38.8"


def test_name_pattern_and_ring():
    assert cmr.name_pattern() is None
    assert cmr.name_pattern(rgt=5, region=2) == "ATL03_??????????????_0005??02_*"
    assert cmr.name_pattern(cycle=7) == "ATL03_??????????????_????07??_*"
    assert cmr.ccw_ring([(0, 0), (0, 1), (1, 1)]) == [(0, 0), (1, 1), (0, 1), (0, 0)]  # was clockwise
    assert cmr.ccw_ring([(0, 0), (1, 0), (1, 1), (0, 0)]) == [(0, 0), (1, 0), (1, 1), (0, 0)]


# ---------------------------------------------------------------------- through discovery
def _discover(server, **kw):
    server.script, server.requests = paged_script(), []
    if "ring" in kw:
        kw["poly"] = [{"lon": x, "lat": y} for x, y in kw.pop("ring")]
    names = discovery.find_granules(Parms.from_dict(kw), resolve_asset("nsidc-s3"))
    return names, dict(server.requests[0]["query"])


def test_nsidc_asset_searches_cmr(server):
    ring = [(-108.3, 38.8), (-107.7, 38.8), (-107.7, 39.2), (-108.3, 39.2), (-108.3, 38.8)]
    names, query = _discover(server, ring=ring, t0="2019-01-01T00:00:00Z", t1="2019-12-31T00:00:00Z", rgt=295)
    assert names == NAMES  # CMR's answer (the fixtures do not know about the time range)
    assert query["bounding_box"] == "-108.3,38.8,-107.7,39.2"
    assert query["temporal"] == "2019-01-01T00:00:00Z,2019-12-31T00:00:00Z"
    assert query["version"] == "007" and query["producer_granule_id[]"] == "ATL03_??????????????_0295????_*"
    # names CMR returns are still checked against the name filters
    names, query = _discover(server, cycle=3, version=6)
    assert names == [NAMES[2]] and query["version"] == "006" and "bounding_box" not in query


def test_nsidc_boxes_for_the_antimeridian_and_a_pole(server):
    ring = [(179.9, -20.1), (-179.9, -20.1), (-179.9, -19.9), (179.9, -19.9), (179.9, -20.1)]
    assert _discover(server, ring=ring)[1]["bounding_box"] == "179.9,-20.1,-179.9,-19.9"
    cap = [(-180, 80), (-90, 80), (0, 80), (90, 80), (180, 80), (180, 90), (-180, 90), (-180, 80)]
    assert _discover(server, ring=cap)[1]["bounding_box"] == "-180,80,180,90"
