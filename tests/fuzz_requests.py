"""Hypothesis strategies for hostile requests, shared by the server and the Lambda API fuzz tests.

Bodies range from request-shaped JSON with wrong values (every parameter key, NaN, 1e300, huge
and negative numbers, wrong types) to raw bytes: deep nesting, 5000-digit integers, non-UTF-8,
invalid JSON. Paths cover every route, near misses and junk; headers include the clients'
version header with non-ASCII digits and over-long values.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields

from hypothesis import strategies as st

from icesat2sr.request.params import Parms
from icesat2sr.service import routes

GRANULE = "ATL03_20210601120000_12340512_006_01.h5"
ROUTES = sorted(routes._ROUTES)
PATHS = [*ROUTES, "/", "/source", "/source/", "/source/atl06p/x", "/jobs", "/jobs/x", "/source/atl08p", "/SOURCE/atl06"]

numbers = (st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([0, -1, 1e300, -1e300, 5e-324, math.nan, math.inf, -math.inf, 2**63, 86401]))
scalars = st.none() | st.booleans() | numbers | st.text(max_size=30)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
names = st.sampled_from([GRANULE, GRANULE.replace("_01.h5", "_02.h5"), "../etc/passwd", "/etc/passwd", "x", "",
                         "ATL03_x.h5", GRANULE + " ", "A" * 300, "ATL03_20210601120000_12340512_006_01.h5\x00"])
parm_keys = st.sampled_from([f.name for f in fields(Parms)] + ["resources", "output", "rqst-timeout", "cluster",
                                                               "nope", "yapc.score", ""])
parms = st.dictionaries(parm_keys, json_values | names, max_size=6)
time_values = numbers | st.sampled_from(["NOW", "2019-02-27T19:33:36Z", "2019:58:19:33:36", "9999:999:99:99:99"])
request = st.fixed_dictionaries({}, optional={
    "resources": st.none() | st.lists(names, max_size=4) | json_values,
    "resource": names | json_values,
    "parms": parms | json_values,
    "timeout": numbers | json_values,
    "atl03-asset": st.sampled_from(["atlas-local", "atlas-s3", "nsidc-s3", "icesat2", "nope"]) | json_values,
    "rectype": st.sampled_from(["atl06rec", "atl03rec", "exceptrec", "nope"]) | json_values,
    "time": time_values | json_values,
    "input": st.sampled_from(["NOW", "GPS", "GMT", "DATE", "x"]) | json_values,
    "output": st.sampled_from(["GPS", "GMT", "DATE", "x"]) | json_values,
})


def _dumps(value: object) -> bytes:
    return json.dumps(value).encode()   # NaN and Infinity come out as the non-JSON tokens


raw_bodies = st.sampled_from([
    b"", b" ", b"{", b"[]", b"null", b"1", b'"x"', b"NaN", b'{"time": NaN, "input": "GPS"}',
    b'{"time": Infinity}', b'{"time": 1e300}', b'{"timeout": NaN}', b'{"timeout": 1e300, "resource": "x"}',
    b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000, b"[" * 60 + b"]" * 60,
    b'{"resources": [' + b"1" * 5000 + b"]}", b'{"time": ' + b"9" * 5000 + b"}", b"\xff\xfe{}", b'{"x": "\xc3"}',
    b'{"resources": ["' + GRANULE.encode() + b'"], "parms": {"max_resources": 0}}',
    b'{"parms": "x"}', b'{"parms": [1]}', b'{"atl03-asset": ["x"], "resources": []}',
])
bodies = request.map(_dumps) | raw_bodies | st.binary(max_size=200)
digits = st.text(alphabet=st.characters(categories=["Nd"]), min_size=1, max_size=6)
versions = (st.builds(lambda a, b, c: f"python-v{a}.{b}.{c}", digits, digits, digits)
            | st.sampled_from(["python-v4.20.0", "v" + "9" * 5000, "1.2.3" * 1000, ""]) | st.text(max_size=80))
header_values = st.text(max_size=60)
headers = st.dictionaries(
    st.sampled_from(["x-sliderule-client", "content-type", "accept", "user-agent", "x-a", "expect", "range"]),
    header_values, max_size=4).flatmap(
    lambda h: versions.map(lambda v: {**h, "x-sliderule-client": v}) | st.just(h))
paths = st.sampled_from(PATHS) | st.text(max_size=30).map(lambda t: "/" + t)
methods = st.sampled_from(["GET", "POST"] * 4 + ["PUT", "DELETE", "OPTIONS", "PATCH", "HEAD"])
