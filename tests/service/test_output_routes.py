"""``output`` on the streaming endpoints: where the server writes, what it streams, what it refuses.

The client names a path on ITS machine; the server writes the file in its own scratch folder, streams
it back (``arrowrec.meta``/``data``/``eof`` naming the client's path) and deletes it. A client path
is never opened on the server, even when it names a server file (a granule: it stays untouched).
"""

from __future__ import annotations

import io
import json

import geopandas
import numpy as np
import pyarrow.parquet as pq
import pytest

from icesat2sr.cli import main as cli
from icesat2sr.formats import wire
from icesat2sr.service import routes

from .test_routes import as_json, body_of, call


@pytest.fixture
def config(synth_dir, tmp_path):
    return routes.Config(path=str(synth_dir), workers=1, heartbeat_s=0.05, scratch=str(tmp_path / "scratch"))


def streamed_file(tables: wire.Tables, name: str) -> bytes:
    head, *data = [f for f in tables.files if f["rectype"] in ("arrowrec.meta", "arrowrec.data")]
    assert head == {"rectype": "arrowrec.meta", "filename": name, "size": head["size"]}
    assert all(f["filename"] == name for f in data)
    content = b"".join(f["data"] for f in data)
    assert len(content) == head["size"]
    return content


def test_the_file_comes_back_and_nothing_stays_on_the_server(config, synth_dir, synth_names, tmp_path):
    granule = synth_dir / synth_names[0]
    before = granule.read_bytes()
    target = str(granule)                  # a hostile client path: the server's own input
    request = {"resources": synth_names, "parms": {"cnf": 1, "output": {"path": target, "format": "geoparquet",
                                                                        "with_checksum": True}}}
    tables = wire.decode(body_of(call(config, "/source/atl06p", request)))
    content = streamed_file(tables, target)
    assert granule.read_bytes() == before                                   # never written on the server
    (eof,) = [f for f in tables.files if f["rectype"] == "arrowrec.eof"]
    assert eof["checksum"] == int(np.frombuffer(content, np.uint8).sum(dtype=np.uint64))
    assert not tables.elevations and not any(m.code for m in tables.messages if m.code)   # rows are in the file
    assert list((tmp_path / "scratch").iterdir()) == []                     # the scratch file was deleted
    ours = geopandas.read_parquet(io.BytesIO(content))
    reference = tmp_path / "cli.parquet"
    assert cli(["atl06", *synth_names, "--path", str(synth_dir), "--parms", '{"cnf": 1}', "-o", str(reference),
                "-q", "--workers", "1"]) == 0
    theirs = geopandas.read_parquet(reference)
    assert len(ours) == len(theirs) > 1000
    cols = sorted(c for c in ours.columns if c != "geometry")
    key = ["time", *cols]
    a = ours.reset_index()[key].sort_values(key).reset_index(drop=True)
    b = theirs.reset_index()[key].sort_values(key).reset_index(drop=True)
    assert a.equals(b)
    meta = pq.read_metadata(io.BytesIO(content)).metadata
    assert json.loads(meta[b"sliderule"])["output"]["path"] == target and b"geo" in meta


@pytest.mark.parametrize("endpoint, command, parms", [
    ("/source/atl06p", "atl06", {"cnf": 1, "len": 40.0, "res": 10.0}),
    ("/source/atl08p", "atl08", {"phoreal": {"send_waveform": True}}),
    ("/source/atl03sp", "atl03s", {"cnf": 3}),
])
def test_a_file_written_chunk_by_chunk_equals_the_cli_file_row_for_row(synth_dir, synth_names, tmp_path, endpoint,
                                                                       command, parms):
    """Two worker processes, their granules' parts interleaved: each granule's rows in time order, granules
    in the request's order, as in the CLI's file."""
    config = routes.Config(path=str(synth_dir), workers=2, heartbeat_s=0.05, scratch=str(tmp_path / "scratch"))
    names = list(reversed(synth_names))
    request = {"resources": names, "parms": {**parms, "output": {"path": "x.parquet", "format": "parquet"}}}
    content = streamed_file(wire.decode(body_of(call(config, endpoint, request))), "x.parquet")
    reference = tmp_path / "cli.parquet"
    assert cli([command, *names, "--path", str(synth_dir), "--parms", json.dumps(parms), "-o", str(reference), "-q",
                "--format", "parquet"]) == 0
    ours, theirs = pq.read_table(io.BytesIO(content)), pq.read_table(reference)
    assert ours.num_rows > 1000 and ours.equals(theirs)


def test_atl03x_fields_and_metadata(config, synth_names):
    request = {"resources": synth_names[:1],
               "parms": {"cnf": 4, "beams": ["gt2l"], "output": {"path": "x.parquet", "format": "parquet",
                                                                "fields": ["height", "x_atc", "atl03_cnf"]}}}
    content = streamed_file(wire.decode(body_of(call(config, "/source/atl03x", request))), "x.parquet")
    table = pq.read_table(io.BytesIO(content))
    assert table.column_names == ["time_ns", "x_atc", "height", "atl03_cnf"] and table.num_rows > 100
    meta = table.schema.metadata
    assert json.loads(meta[b"meta"]) == {"endpoint": "atl03x", "srctbl": {"0": synth_names[0]}}
    assert json.loads(meta[b"recordinfo"]) == {"time": "time_ns", "x": "longitude", "y": "latitude", "z": "height"}
    assert json.loads(meta[b"pandas"])["index_columns"] == ["time_ns"]


def test_an_empty_request_still_delivers_a_file(config, synth_names):
    request = {"resources": synth_names[:1], "parms": {"cnf": 4, "poly": [
        {"lon": 0, "lat": 0}, {"lon": 0.001, "lat": 0}, {"lon": 0.001, "lat": 0.001}, {"lon": 0, "lat": 0}],
        "fit": {}, "output": {"path": "empty.parquet", "format": "geoparquet"}}}
    content = streamed_file(wire.decode(body_of(call(config, "/source/atl03x", request))), "empty.parquet")
    frame = geopandas.read_parquet(io.BytesIO(content))
    assert len(frame) == 0 and frame.index.name == "time_ns" and "h_mean" in frame.columns


def test_closing_the_stream_removes_the_scratch_file(config, synth_names, tmp_path):
    request = {"resources": synth_names, "parms": {"cnf": 1, "output": {"path": "a.csv", "format": "csv"}}}
    stream = call(config, "/source/atl03sp", request).body
    next(stream)
    next(stream)
    assert len(list((tmp_path / "scratch").iterdir())) == 1               # being written
    stream.close()
    assert list((tmp_path / "scratch").iterdir()) == []


@pytest.mark.parametrize("endpoint, parms, needle", [
    ("/source/atl03x", {"cnf": 1}, "output"),
    ("/source/atl06p", {"output": {"path": "s3://bucket/key.parquet"}}, "s3://"),
    ("/source/atl06p", {"output": {"path": "file:///tmp/x.parquet"}}, "file://"),
    ("/source/atl06p", {"output": {"path": "../../x\u00e9.parquet"}}, "ASCII"),
    ("/source/atl03sp", {"output": {"path": "x.h5", "format": "h5"}}, "format"),
    ("/source/atl03sp", {"output": {"path": "x", "with_openapi": True}}, "OpenAPI"),
])
def test_output_refused_with_400(config, synth_names, endpoint, parms, needle):
    answer = call(config, endpoint, {"resources": synth_names[:1], "parms": parms})
    assert answer.status == 400 and needle in as_json(answer)["error"]


def test_s3_output_on_a_server_that_writes_s3(synth_dir, synth_names, tmp_path, monkeypatch):
    """With remote_output set, the file is uploaded and announced (arrowrec.remote), never streamed."""
    uploads = []

    class FakeS3:
        def upload_file(self, filename, bucket, key):
            uploads.append((open(filename, "rb").read(), bucket, key))

    import boto3

    monkeypatch.setattr(boto3, "client", lambda name: FakeS3())
    config = routes.Config(path=str(synth_dir), workers=1, scratch=str(tmp_path), remote_output="s3://bkt/out/")
    outside = call(config, "/source/atl06p", {"resources": synth_names[:1],
                                              "parms": {"output": {"path": "s3://bkt/other/x.parquet"}}})
    assert outside.status == 400 and "s3://bkt/out/" in as_json(outside)["error"]
    request = {"resources": synth_names[:1], "parms": {"cnf": 4, "output": {"path": "s3://bkt/out/x.feather",
                                                                            "format": "feather"}}}
    tables = wire.decode(body_of(call(config, "/source/atl06p", request)))
    ((data, bucket, key),) = uploads
    assert (bucket, key) == ("bkt", "out/x.feather") and data[:6] == b"ARROW1"
    assert tables.files == [{"rectype": "arrowrec.remote", "url": "s3://bkt/out/x.feather", "size": len(data)}]
