"""The shared file writers (formats/output.py) and the arrowrec records (formats/wire.py)."""

from __future__ import annotations

import json

import geopandas
import h5py
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from icesat2sr.engine import process_granule
from icesat2sr.formats import wire
from icesat2sr.formats.output import OutputWriter, format_of
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms
from icesat2sr.science.records import GranuleResult

READ = {"geoparquet": geopandas.read_parquet, "parquet": pd.read_parquet, "feather": pd.read_feather,
        "csv": pd.read_csv}


@pytest.fixture(scope="module")
def results(synth_dir, synth_names):
    asset = resolve_asset("atlas-local", str(synth_dir))
    out = {}
    for kind, parms in (("atl06", {"cnf": 1}), ("atl03s", {"cnf": 4, "beams": ["gt1r"]}),
                        ("atl03x", {"cnf": 4, "beams": ["gt1r"]})):
        p = Parms.from_dict(parms)
        out[kind] = (p, [process_granule(asset, n, p, kind) for n in synth_names])
    return out


@pytest.mark.parametrize("fmt", ["geoparquet", "parquet", "feather", "csv"])
def test_atl03x_values_round_trip(results, synth_names, tmp_path, fmt):
    parms, granules = results["atl03x"]
    path = tmp_path / f"x.{fmt}"
    with OutputWriter(path, fmt, kind="atl03x", parms=parms.to_dict(), granules=synth_names) as w:
        w.extend(granules)
    frame = READ[fmt](path)
    assert w.rows == len(frame) == sum(g.rows for g in granules) > 0
    for column in ("height", "x_atc", "atl03_cnf", "ph_index"):
        expected = np.concatenate([g.frame[column] for g in granules])
        # CSV: arrow writes each float in its own type's shortest round-trip form
        np.testing.assert_array_equal(frame[column].to_numpy().astype(expected.dtype), expected)
        if fmt != "csv":
            assert frame[column].dtype == expected.dtype
    srcid = np.concatenate([np.full(g.rows, i) for i, g in enumerate(granules)])
    np.testing.assert_array_equal(frame["srcid"].to_numpy(), srcid)
    if fmt == "geoparquet":
        lon = np.concatenate([g.frame["longitude"] for g in granules])
        np.testing.assert_array_equal(frame.geometry.x.to_numpy(), lon)
        assert "latitude" not in frame and frame.index.name == "time_ns" and frame.crs.to_epsg() == 7912
    elif fmt == "parquet":
        assert frame.index.name == "time_ns" and "latitude" in frame and "geometry" not in frame
    else:   # Feather and CSV carry no pandas metadata (as SlideRule's): time is a column
        assert "time_ns" in frame.columns and "geometry" not in frame


def test_p_series_parquet_has_slideRules_metadata_and_no_geometry(results, synth_names, tmp_path):
    parms, granules = results["atl06"]
    path = tmp_path / "e.parquet"
    with OutputWriter(path, "parquet", kind="atl06", parms=parms.to_dict(), granules=synth_names) as w:
        w.extend(granules)
    meta = pq.read_schema(path).metadata
    assert json.loads(meta[b"sliderule"]) == parms.to_dict() and b"geo" not in meta and b"meta" not in meta
    frame = pd.read_parquet(path)
    assert frame.index.name == "time" and {"latitude", "longitude", "lat", "lon", "h_mean"} <= set(frame.columns)
    assert len(frame) == sum(g.rows for g in granules)


def test_h5_appends_granules(results, synth_names, tmp_path):
    parms, granules = results["atl03s"]
    path = tmp_path / "p.h5"
    with OutputWriter(path, format_of(path), kind="atl03s", parms=parms.to_dict(), granules=synth_names) as w:
        w.extend(granules)
    with h5py.File(path) as f:
        heights = np.concatenate([np.sort(g.photons["height"]) for g in granules])
        assert len(f["height"]) == len(f["time"]) == len(heights) and f.attrs["crs"] == "EPSG:7912"
        assert np.array_equal(np.sort(f["height"][:]), np.sort(heights))
        assert json.loads(f.attrs["parms"])["cnf"] == [4]


def test_failed_and_empty_granules_add_no_rows(results, tmp_path):
    parms, granules = results["atl03x"]
    failed = GranuleResult("ATL03_20200101000000_00010101_006_01.h5", "atl03x", error=(-1, "broken"))
    path = tmp_path / "x.parquet"
    with OutputWriter(path, "geoparquet", kind="atl03x", parms=parms.to_dict()) as w:
        w.add(failed)
        w.extend(granules)
    assert len(geopandas.read_parquet(path)) == sum(g.rows for g in granules)


@pytest.mark.parametrize("kind, parms, column", [("atl06", {}, "h_mean"), ("atl03s", {}, "height"),
                                                 ("atl03x", {"fit": {}}, "h_mean"),
                                                 ("atl03x", {"atl03_geo_fields": ["dem_h"]}, "dem_h")])
def test_nothing_at_all_still_gives_the_request_columns(tmp_path, kind, parms, column):
    path = tmp_path / "empty.parquet"
    OutputWriter(path, "geoparquet", kind=kind, parms=Parms.from_dict(parms).to_dict()).finish()
    frame = geopandas.read_parquet(path)
    assert len(frame) == 0 and column in frame.columns


def test_an_aborted_file_leaves_the_target_alone(results, tmp_path):
    granules = results["atl06"][1]
    path = tmp_path / "precious.parquet"
    path.write_bytes(b"precious")
    with pytest.raises(RuntimeError), OutputWriter(path, "geoparquet", kind="atl06") as w:
        w.extend(granules)
        raise RuntimeError("interrupted")
    assert path.read_bytes() == b"precious" and [p.name for p in tmp_path.iterdir()] == ["precious.parquet"]


def test_file_records_round_trip(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, 2500, dtype=np.uint8).tobytes()
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    records = list(wire.file_records(path, "/home/me/out.parquet", checksum=True, chunk=1000))
    assert len(records) == 1 + 3 + 1
    files = wire.decode(b"".join(records)).files
    assert files[0] == {"rectype": "arrowrec.meta", "filename": "/home/me/out.parquet", "size": 2500}
    assert b"".join(f["data"] for f in files[1:4]) == data
    assert files[4] == {"rectype": "arrowrec.eof", "filename": "/home/me/out.parquet", "checksum": sum(data)}
    # the record sizes the clients compute from the definitions
    assert len(records[0]) - 8 - len(b"arrowrec.meta\0") == wire.definition("arrowrec.meta")["__datasize"]
    remote = wire.remote_record("s3://b/k", 7)
    assert len(remote) - 8 - len(b"arrowrec.remote\0") == wire.definition("arrowrec.remote")["__datasize"]


def test_unknown_formats():
    with pytest.raises(ValueError, match="txt"):
        format_of("x.txt")
    assert format_of("x.PARQUET") == "geoparquet" and format_of("x.arrow") == "feather"
