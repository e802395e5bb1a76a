"""Index records, SlideRule's indexer fields and the GeoParquet catalogue (local and S3)."""

from __future__ import annotations

import json
import os
import shutil
import time

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely

from icesat2sr.discovery import catalog
from icesat2sr.discovery import find as discovery
from icesat2sr.granules.assets import Asset, resolve_asset
from icesat2sr.request.errors import ResourceError
from icesat2sr.request.names import GT_CODE
from icesat2sr.request.params import Parms
from icesat2sr.request.timeutil import ATLAS_SDP_EPOCH_GPS, delta_time_to_ns

from ..conftest import HARMONY_NAME, VEGR_NAME
from . import discovery_data as dd

N = dd.NAMES




def test_index_record_from_h5py(places, asset):
    r = catalog.index_granule(asset, N["mid"])
    assert r["error"] is None and (r["rgt"], r["cycle"], r["region"], r["version"], r["revision"]) == (100, 10, 3, 6, 1)
    with h5py.File(places / N["mid"]) as f:
        times = np.concatenate([f[b]["geolocation/delta_time"][()] for b in GT_CODE])
        assert r["t0"] == delta_time_to_ns(times.min()) and r["t1"] == delta_time_to_ns(times.max())
        anc = f["ancillary_data"]
        assert r["gps_t0"] == anc["atlas_sdp_gps_epoch"][0] + anc["start_delta_time"][0]
        assert r["gps_t1"] == anc["atlas_sdp_gps_epoch"][0] + anc["end_delta_time"][0]
        assert r["n_segments"] == 6 * dd.SEGMENTS
        assert r["n_photons"] == sum(int(f[b]["geolocation/segment_ph_cnt"][()].sum()) for b in GT_CODE)
        for beam, code in GT_CODE.items():
            g = f[beam]["geolocation"]
            cnt, lat, lon = g["segment_ph_cnt"][()], g["reference_photon_lat"][()], g["reference_photon_lon"][()]
            keep = r["vertex_beam"] == code
            vlon, vlat = r["vertex_lon"][keep], r["vertex_lat"][keep]
            has = np.flatnonzero(cnt > 0)
            # vertices: every 100th segment with photons, and the last
            assert np.array_equal(vlon, lon[has[np.r_[0:len(has):100, len(has) - 1]]])
            assert np.array_equal(vlat, lat[has[np.r_[0:len(has):100, len(has) - 1]]])
            # every segment with photons is within radius_m of a vertex of its beam (brute force)
            d = catalog.great_circle(lon[has][:, None], lat[has][:, None], vlon[None, :], vlat[None, :])
            assert d.min(axis=1).max() <= r["radius_m"] + 1e-6
            assert r["lat_min"] <= lat[has].min() and lat[has].max() <= r["lat_max"]
    assert 900 < r["radius_m"] < 1300  # ~ half of 100 segments of 20 m (zero-photon segments add some)


def test_great_circle_against_a_known_distance():
    # one degree of latitude on the 6371008.8 m sphere; and Paris - London haversine (343.5 km)
    assert catalog.great_circle(0, 0, 0, 1) == pytest.approx(111195.08, abs=0.01)
    assert catalog.great_circle(2.3522, 48.8566, -0.1276, 51.5072) == pytest.approx(343_556, rel=1e-3)


def test_indexer_record_is_sliderules_definition(places, asset):
    rec = catalog.indexer_record(asset, N["europe"])
    with h5py.File(places / N["europe"]) as f:
        anc = f["ancillary_data"]
        assert rec == {
            "name": N["europe"],
            "t0": anc["atlas_sdp_gps_epoch"][0] + anc["start_delta_time"][0],
            "t1": anc["atlas_sdp_gps_epoch"][0] + anc["end_delta_time"][0],
            "lat0": f["gt3r/geolocation/reference_photon_lat"][0],
            "lon0": f["gt3r/geolocation/reference_photon_lon"][0],
            "lat1": f["gt1l/geolocation/reference_photon_lat"][-1],
            "lon1": f["gt1l/geolocation/reference_photon_lon"][-1],
            "cycle": int(f["orbit_info/cycle_number"][0]), "rgt": int(f["orbit_info/rgt"][0]),
        }
    # GPS seconds of the first shot = UTC unix time - 315964800 + 18 leap seconds
    assert rec["t0"] == pytest.approx(dd.SPECS["europe"].start.timestamp() - 315964800 + 18, abs=1e-6)


def test_indexer_record_of_a_subsetted_real_granule(real_dir):
    # one beam, no ancillary_data, no orbit_info: times from the segments, ends from gt1l
    asset = resolve_asset("atlas-local", str(real_dir))
    rec = catalog.indexer_record(asset, HARMONY_NAME)
    with h5py.File(real_dir / HARMONY_NAME) as f:
        g = f["gt1l/geolocation"]
        assert rec["t0"] == ATLAS_SDP_EPOCH_GPS + g["delta_time"][0]
        assert rec["t1"] == ATLAS_SDP_EPOCH_GPS + g["delta_time"][-1]
        assert (rec["lat0"], rec["lon0"]) == (g["reference_photon_lat"][0], g["reference_photon_lon"][0])
        assert (rec["lat1"], rec["lon1"]) == (g["reference_photon_lat"][-1], g["reference_photon_lon"][-1])
    assert (rec["rgt"], rec["cycle"]) == (235, 1)
    # ~2018-10-14T00:26:51Z (data README): GPS 1223512029
    assert rec["t0"] == pytest.approx(1223512029, abs=2)
    record = catalog.index_granule(asset, HARMONY_NAME)
    assert record["beams"] == "gt1l" and record["n_photons"] == 2909
    assert catalog.index_granule(asset, VEGR_NAME)["beams"] == "gt1r"


def test_indexer_record_of_a_bad_file_raises(tmp_path):
    (tmp_path / dd.CORRUPT).write_bytes(os.urandom(2048))
    with pytest.raises(ResourceError, match=dd.CORRUPT):
        catalog.indexer_record(resolve_asset("atlas-local", str(tmp_path)), dd.CORRUPT)


def test_geometry_splits_at_the_antimeridian(asset):
    record = catalog.index_granule(asset, N["dateline"])
    geom = catalog.track_geometry(record)
    assert geom.geom_type == "MultiLineString" and len(geom.geoms) == 12  # 6 beams x 2 sides
    for part in geom.geoms:
        x = np.asarray(part.coords)[:, 0]
        assert (x > 0).all() or (x < 0).all()


def test_catalogue_file_columns_and_round_trip(places, tmp_path):
    folder = dd.copy_folder(places, tmp_path / "d", keys=["mid", "dateline", "north_pole"], corrupt=True)
    a = resolve_asset("atlas-local", str(folder))
    update = catalog.update_catalog(a)
    path = folder / catalog.CATALOG_NAME
    assert update.written == str(path) and sorted(update.added) == sorted([N["mid"], N["dateline"],
                                                                           N["north_pole"], dd.CORRUPT])
    assert list(update.failed) == [dd.CORRUPT] and "not an HDF5 file" in update.failed[dd.CORRUPT]
    assert oct(path.stat().st_mode & 0o777) != "0o600"
    geo = json.loads(pq.read_schema(path).metadata[b"geo"])
    assert geo["primary_column"] == "geometry"
    assert geo["columns"]["geometry"]["encoding"] == "WKB"
    assert geo["columns"]["geometry"]["geometry_types"] == ["MultiLineString"]
    gdf = catalog.load_catalog(a)
    for column, dtype in catalog.COLUMNS.items():
        assert str(gdf[column].dtype) == dtype, column
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == 4
    bad = gdf.set_index("name").loc[dd.CORRUPT]
    assert bad["geometry"] is None and "not an HDF5 file" in bad["error"]
    back = catalog.records_from_frame(gdf)
    for name, r in update.records.items():
        for key, value in r.items():
            if isinstance(value, np.ndarray):
                assert np.array_equal(back[name][key], value) and back[name][key].dtype == value.dtype
            elif isinstance(value, float) and np.isnan(value):
                assert np.isnan(back[name][key])
            else:
                assert back[name][key] == value, (name, key)
    assert shapely.equals(gdf.set_index("name").loc[N["mid"], "geometry"], catalog.track_geometry(back[N["mid"]]))


def test_incremental_updates(places, tmp_path):
    folder = dd.copy_folder(places, tmp_path / "inc", keys=["mid", "europe"])
    a = resolve_asset("atlas-local", str(folder))
    first = catalog.update_catalog(a)
    assert sorted(first.added) == sorted([N["mid"], N["europe"]]) and first.unchanged == 0
    again = catalog.update_catalog(a)
    assert not again.changed and again.unchanged == 2 and again.written is None
    # add one, remove one, modify one (same name, another place)
    shutil.copy(places / N["dateline"], folder / N["dateline"])
    (folder / N["europe"]).unlink()
    mid = dd.SPECS["mid"]
    time.sleep(0.01)
    moved = type(mid)(**{**{f: getattr(mid, f) for f in mid.__dataclass_fields__}, "lon0": -100.0, "atl08": False})
    dd.write_granule(folder, moved)
    update = catalog.update_catalog(a)
    assert (update.added, update.updated, update.removed, update.unchanged) == ([N["dateline"]], [N["mid"]],
                                                                               [N["europe"]], 0)
    gdf = catalog.load_catalog(a)
    assert sorted(gdf["name"]) == sorted([N["mid"], N["dateline"]])
    assert gdf.set_index("name").loc[N["mid"], "lon_min"] > -100.1  # re-indexed at its new place
    # a new vertex spacing re-indexes everything
    assert len(catalog.update_catalog(a, step=50).updated) == 2


def test_catalogue_of_another_version_is_rebuilt(places, tmp_path):
    folder = dd.copy_folder(places, tmp_path / "v", keys=["mid"])
    a = resolve_asset("atlas-local", str(folder))
    catalog.update_catalog(a)
    gdf = catalog.load_catalog(a)
    gdf.drop(columns=["radius_m"]).to_parquet(folder / catalog.CATALOG_NAME)
    assert catalog.load_catalog(a) is None
    assert catalog.update_catalog(a).added == [N["mid"]]
    (folder / catalog.CATALOG_NAME).write_bytes(b"garbage")
    assert catalog.load_catalog(a) is None


def test_empty_folder_catalogue(tmp_path):
    a = resolve_asset("atlas-local", str(tmp_path))
    update = catalog.update_catalog(a)
    assert update.records == {} and update.written
    assert len(catalog.load_catalog(a)) == 0
    assert catalog.update_catalog(a).written is None


def test_listing(places, asset):
    listing = catalog.list_granules(asset)
    assert sorted(listing) == sorted(N.values())
    assert listing[N["mid"]][0] == (places / N["mid"]).stat().st_size
    with pytest.raises(Exception, match="CMR"):
        catalog.list_granules(resolve_asset("nsidc-s3"))


# ---------------------------------------------------------------------- S3 (moto)
@pytest.fixture
def s3_bucket(places, monkeypatch):
    from moto import mock_aws

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-west-2"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="us-west-2")
        s3.create_bucket(Bucket="bkt-test", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        for key in ("mid", "europe", "dateline"):
            s3.upload_file(str(places / N[key]), "bkt-test", f"data/ATLAS/{N[key]}")
        s3.put_object(Bucket="bkt-test", Key="data/ATLAS/notes.txt", Body=b"x")
        s3.put_object(Bucket="bkt-test", Key="data/ATLAS/deeper/" + N["greenwich"], Body=b"x")
        s3.put_object(Bucket="bkt-test", Key="data/" + N["greenwich"], Body=b"x")
        yield s3


def test_s3_listing_catalogue_and_discovery(s3_bucket, monkeypatch):
    monkeypatch.setattr(catalog, "S3_PAGE_SIZE", 2)  # several pages
    a = Asset("atlas-s3", "s3", "bkt-test/data/ATLAS")
    listing = catalog.list_granules(a)
    assert sorted(listing) == sorted([N["mid"], N["europe"], N["dateline"]])
    update = catalog.update_catalog(a)
    assert update.written == f"s3://bkt-test/data/ATLAS/{catalog.CATALOG_NAME}" and not update.failed
    body = s3_bucket.get_object(Bucket="bkt-test", Key=f"data/ATLAS/{catalog.CATALOG_NAME}")["Body"].read()
    assert body[:4] == b"PAR1"
    local = catalog.index_granule(resolve_asset("atlas-local", str(dd._cache["places"])), N["mid"])
    remote = update.records[N["mid"]]
    assert np.array_equal(remote["vertex_lon"], local["vertex_lon"]) and remote["t0"] == local["t0"]
    assert len(catalog.load_catalog(a)) == 3
    ring = [(179.9, -20.1), (-179.9, -20.1), (-179.9, -19.9), (179.9, -19.9), (179.9, -20.1)]
    p = Parms.from_dict({"poly": [{"lon": x, "lat": y} for x, y in ring]})
    assert discovery.find_granules(p, a) == [N["dateline"]]
    assert catalog.update_catalog(a).unchanged == 3
    s3_bucket.delete_object(Bucket="bkt-test", Key=f"data/ATLAS/{N['europe']}")
    assert catalog.update_catalog(a).removed == [N["europe"]]
    assert catalog.indexer_record(a, N["mid"])["rgt"] == 100


def test_local_catalogue_is_cached_until_it_changes(places, tmp_path, monkeypatch):
    folder = dd.copy_folder(places, tmp_path / "c", keys=["mid"])
    a = resolve_asset("atlas-local", str(folder))
    catalog.update_catalog(a)
    first = catalog.load_records(a)
    assert list(first) == [N["mid"]]
    monkeypatch.setattr(catalog, "load_catalog", lambda asset: pytest.fail("read the file again"))
    assert catalog.load_records(a) is first
    path = folder / catalog.CATALOG_NAME
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    monkeypatch.undo()
    again = catalog.load_records(a)
    assert again is not first and list(again) == [N["mid"]]
