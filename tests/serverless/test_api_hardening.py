"""The API Lambda with hostile requests (named cases), and the sync route's deadline."""

from __future__ import annotations

import base64
import json
import time

import pytest

from icesat2sr.formats import wire
from icesat2sr.service import apigw, processing, routes
from icesat2sr.service.routes import Config, Response

from .conftest import Context, load_event, load_function
from .test_e2e import api_call


def with_body(name: str, body: str | None, base64_encoded: bool = False) -> dict:
    event = load_event(name)
    event.update(body=body, isBase64Encoded=base64_encoded)
    return event


@pytest.mark.parametrize("name, body, b64, says", [
    ("api-atl06.json", "not base64!", True, "base64"),
    ("api-atl06p.json", "not base64!", True, "base64"),
    ("api-atl06.json", base64.b64encode(b'{"resource": "\xff"}').decode(), True, "UTF-8"),
    ("api-atl06p.json", "{\"resources\": [\"\udc80\"]}", False, "UTF-8"),
    ("api-atl06.json", "[" * 100_000 + "]" * 100_000, False, "nests deeper"),
    ("api-atl06p.json", '{"a":' * 5000 + "1" + "}" * 5000, False, "nests deeper"),
    ("api-indexer.json", '{"resources": [' + "1" * 5000 + "]}", False, "JSON"),
    ("api-time.json", '{"time": NaN, "input": "GPS", "output": "DATE"}', False, "NaN"),
    ("api-time.json", '{"time": 1e300, "input": "GPS", "output": "DATE"}', False, "milliseconds"),
    ("api-indexer.json", '{"resources": [], "parms": [1]}', False, "parms"),
    ("api-atl06.json", '{"parms": {"cnf": 1}}', False, "one granule"),
    ("api-atl06p.json", "{}", False, "no query"),
    ("api-atl06p.json", '{"timeout": 1e300, "resources": []}', False, "timeout"),
    ("api-atl06p.json", '{"parms": {"rqst_timeout": -1}, "resources": []}', False, "rqst_timeout"),
])
def test_malformed_requests_are_400_with_a_reason(stack, name, body, b64, says):
    status, answer = api_call(with_body(name, body, b64))
    assert status == 400 and says in answer["error"], answer


def test_more_granules_than_max_resources_is_400_saying_how_to_split(stack, monkeypatch):
    monkeypatch.setenv("MAX_RESOURCES", "2")
    names = [f"ATL03_2021060112000{i}_12340512_006_01.h5" for i in range(3)]
    for name in ("api-atl06p.json", "api-indexer.json"):
        status, answer = api_call(with_body(name, json.dumps({"resources": names})))
        assert status == 400 and "at most 2" in answer["error"] and "split" in answer["error"], answer
    status, answer = api_call(with_body("api-atl06p.json", json.dumps({"resources": names[:2]})))
    assert status == 202


WORK_S = 2.0   # what a request would take; answers must come well before (the machine may be loaded)


def slow_endpoint(marker):
    def endpoint(request, headers, config):
        def stream():
            time.sleep(WORK_S)
            marker.write_text("the work went on after the deadline")
            yield b"x"
        return Response(200, routes.OCTET, stream())
    return endpoint


def test_the_deadline_stops_the_work(tmp_path, monkeypatch):
    marker = tmp_path / "spilled"
    monkeypatch.setitem(routes._ROUTES, "/source/atl03s", slow_endpoint(marker))
    started = time.monotonic()
    answer = apigw.answer("POST", "/source/atl03s", {}, b"{}", Config(path=str(tmp_path)), deadline_s=0.3)
    assert answer.status == 504 and "/source/atl03sp" in json.loads(answer.body)["error"]
    assert time.monotonic() - started < WORK_S - 0.5
    time.sleep(WORK_S + 0.5 - (time.monotonic() - started))
    assert not marker.exists()   # nothing of that request runs after its answer


def test_discovery_and_parsing_count_against_the_deadline(tmp_path, monkeypatch):
    marker = tmp_path / "spilled"

    def slow_parse(*args, **kwargs):
        time.sleep(WORK_S)
        marker.write_text("parsed after the deadline")
        raise routes.BadRequest("too late")

    monkeypatch.setattr(processing, "parse_job", slow_parse)
    started = time.monotonic()
    answer = apigw.answer("POST", "/source/atl06", {}, b'{"resource": "x"}', Config(path=str(tmp_path)),
                          deadline_s=0.3)
    assert answer.status == 504 and time.monotonic() - started < WORK_S - 0.5
    time.sleep(WORK_S + 0.5 - (time.monotonic() - started))
    assert not marker.exists()


def test_rqst_timeout_shortens_the_deadline(tmp_path, monkeypatch):
    monkeypatch.setitem(routes._ROUTES, "/source/atl03s", slow_endpoint(tmp_path / "spilled"))
    started = time.monotonic()
    answer = apigw.answer("POST", "/source/atl03s", {}, b'{"parms": {"rqst_timeout": 0.2}}',
                          Config(path=str(tmp_path)))
    assert time.monotonic() - started < WORK_S - 0.5
    # the client's own limit: a stream ending with SlideRule's TIMEOUT record, as the local server answers
    assert answer.status == 200 and answer.content_type == routes.OCTET
    (message,) = wire.decode(answer.body).messages
    assert message.code == wire.TIMEOUT and "rqst_timeout of 0.2 s" in message.text


def test_the_handler_takes_the_lambda_time_left_into_account(stack, monkeypatch, tmp_path):
    monkeypatch.setitem(routes._ROUTES, "/source/atl03s", slow_endpoint(tmp_path / "spilled"))

    class Short(Context):
        def get_remaining_time_in_millis(self) -> int:
            return 2000   # 2 s left: answer after 0.5 s (1.5 s margin), well before the 2 s of work

    started = time.monotonic()
    out = load_function("api").handler(load_event("api-atl03s.json"), Short(function_name="api"))
    assert out["statusCode"] == 504 and time.monotonic() - started < WORK_S - 0.3
