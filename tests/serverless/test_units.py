"""GeoParquet without GeoPandas (formats/output.py), Earthdata credentials, the retrying S3 reader."""

from __future__ import annotations

import json

import geopandas
import pandas as pd
import pyproj
import pytest
from botocore.exceptions import ClientError

from icesat2sr.engine import process_granule
from icesat2sr.formats import frames, geoparquet
from icesat2sr.formats.output import OutputWriter
from icesat2sr.granules import earthdata
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.granules.s3driver import RetryingS3Driver, TransientReadError, transient_failures
from icesat2sr.request.params import Parms


def test_embedded_crs_is_epsg_7912():
    assert pyproj.CRS.from_json_dict(geoparquet.CRS_7912) == pyproj.CRS("EPSG:7912")


@pytest.mark.parametrize("kind, parms", [("atl06", {"cnf": 1}), ("atl06", {"cnf": 1, "compact": True}),
                                         ("atl03s", {"cnf": 3, "track": 2})])
def test_geoparquet_reads_back_like_frames(synth_dir, synth_names, kind, parms, tmp_path):
    """The writers' GeoParquet (pyarrow alone: the aggregator's) is the client's frame."""
    result = process_granule(resolve_asset("atlas-local", str(synth_dir)), synth_names[0], Parms.from_dict(parms), kind)
    theirs = frames.result_frame(result)
    with OutputWriter(tmp_path / "x.parquet", "geoparquet", kind=kind, parms=parms) as writer:
        writer.add(result)
    ours = geopandas.read_parquet(writer.path)
    assert len(ours) > 100 and ours.crs.to_epsg() == 7912 and ours.index.name == "time"
    assert list(ours.columns) == list(theirs.columns)
    pd.testing.assert_frame_equal(pd.DataFrame(ours.drop(columns="geometry")),
                                  pd.DataFrame(theirs.drop(columns="geometry")), check_exact=True)
    assert ours.geometry.geom_equals_exact(theirs.geometry, 0.0).all()


def test_earthdata_secret_with_login_and_with_keys():
    class Secrets:
        def __init__(self, value):
            self.value, self.calls = value, 0

        def get_secret_value(self, SecretId):
            self.calls += 1
            return {"SecretString": json.dumps(self.value)}

    keys = {"accessKeyId": "AK", "secretAccessKey": "SK", "sessionToken": "ST",
            "expiration": "2999-01-01 00:00:00+00:00"}
    seen = []
    login = Secrets({"username": "u", "password": "p"})
    creds = earthdata.credentials_from_secret(login, "arn:secret:1", fetch=lambda u, p: seen.append((u, p)) or keys)
    assert creds == {"aws_access_key_id": "AK", "aws_secret_access_key": "SK", "aws_session_token": "ST"}
    assert seen == [("u", "p")]
    earthdata.credentials_from_secret(login, "arn:secret:1", fetch=lambda u, p: 1 / 0)  # cached: no second fetch
    assert login.calls == 1
    direct = Secrets(keys)
    assert earthdata.credentials_from_secret(direct, "arn:secret:2", fetch=lambda u, p: 1 / 0) == creds


class _Body:
    def read(self):
        return b"data"


class _Client:
    def __init__(self, errors):
        self.errors, self.calls = list(errors), 0

    def get_object(self, **kw):
        self.calls += 1
        if self.errors:
            code, status = self.errors.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                              "GetObject")
        return {"Body": _Body()}


def _driver(errors, attempts=4):
    d = RetryingS3Driver.__new__(RetryingS3Driver)
    d.client, d.bucket_name, d.key, d._closed = _Client(errors), "b", "k/ATL03_x.h5", False
    d.attempts, d.base_s, d.max_s = attempts, 0.0, 0.0
    return d


def test_reader_retries_throttling_then_reads():
    d = _driver([("SlowDown", 503), ("InternalError", 500)])
    assert d.read(0, 4) == b"data" and d.client.calls == 3


def test_reader_gives_up_and_counts():
    before = transient_failures()
    with pytest.raises(TransientReadError) as info:
        _driver([("SlowDown", 503)] * 10, attempts=3).read(0, 4)
    assert info.value.code == -2 and transient_failures() == before + 1


def test_reader_missing_is_none_and_denied_is_an_error():
    assert _driver([("NoSuchKey", 404)]).read(0, 4) is None
    with pytest.raises(Exception, match="AccessDenied"):
        _driver([("AccessDenied", 403)]).read(0, 4)
