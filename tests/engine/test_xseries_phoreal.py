"""``phoreal`` as a step of atl03x: SlideRule's x-series PhoREAL frame (its columns and dtypes) holding
our atl08 records for the same request, field for field; chunked as the other kinds."""

from __future__ import annotations

import numpy as np
import pytest

from icesat2sr.engine import process_granule
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms
from icesat2sr.science import xseries

from ..conftest import FOREST

REQUESTS = [
    {"phoreal": {"binsize": 1.0}},
    {"podppd": 0, "len": 60.0, "res": 30.0, "phoreal": {"geoloc": "center", "binsize": 0.5}},
    {"srt": 0, "cnf": 1, "phoreal": {"geoloc": "mean", "above_classifier": True},
     "atl08_class": ["atl08_ground", "atl08_canopy", "atl08_top_of_canopy", "atl08_noise"]},
]


def granule(forest_dir):
    return resolve_asset("atlas-local", str(forest_dir)), next(p.name for p in forest_dir.glob("ATL03_*.h5"))


@pytest.mark.parametrize("parms", REQUESTS)
def test_phoreal_frame_holds_our_atl08_records(forest_dir, parms):
    asset, name = granule(forest_dir)
    request = Parms.from_dict({"podppd": 1, **parms})
    veg = process_granule(asset, name, request, "atl08").vegetation
    frame = process_granule(asset, name, request, "atl03x").frame
    assert len(veg) == len(frame["x_atc"]) > 100
    assert list(frame) == [*xseries.PHOREAL_COLUMNS, *xseries.META_COLUMNS]
    for column, dtype in xseries.PHOREAL_COLUMNS.items():
        assert frame[column].dtype == np.dtype(dtype).base, column
    assert frame["canopy_h_metrics"].shape == (len(veg), 20)
    renamed = {"time_ns": "time", "photon_count": "ph_count", "ground_photon_count": "gnd_ph_count",
               "vegetation_photon_count": "veg_ph_count"}
    for column in xseries.PHOREAL_COLUMNS:
        field = renamed.get(column, column)
        if field in veg.dtype.names:
            np.testing.assert_array_equal(frame[column], veg[field], err_msg=column)
    for column in ("rgt", "cycle", "spot", "gt"):
        np.testing.assert_array_equal(frame[column], veg[column], err_msg=column)
    assert np.all(frame["region"] == FOREST.region)


def test_phoreal_frame_extent_columns(forest_dir):
    """Columns our record does not have: the extent's first photon and its segment, its photons'
    across-track distance located as its position (median)."""
    import h5py

    asset, name = granule(forest_dir)
    request = Parms.from_dict({"podppd": 0, "beams": ["gt2l"], "phoreal": {}})
    frame = process_granule(asset, name, request, "atl03x").frame
    photons = process_granule(asset, name, request, "atl03s")
    with h5py.File(forest_dir / name) as f:
        key = zip(f["gt2l/heights/delta_time"][:].tolist(), f["gt2l/heights/h_ph"][:].tolist(), strict=True)
        index = {k: i for i, k in enumerate(key)}
        ids = f["gt2l/geolocation/segment_id"][:]
        counts = f["gt2l/geolocation/segment_ph_cnt"][:]
    segment_of = np.repeat(ids, counts)
    starts = np.concatenate(([0], np.cumsum(photons.extents["count"], dtype=np.int64)))
    firsts, ys = [], []
    for e in range(len(photons.extents)):
        members = photons.photons[starts[e]:starts[e + 1]]        # in extent order
        if len(members) == 0:
            continue
        positions = [index[(float(m["delta_time"]), float(m["height"]))] for m in members]
        firsts.append(positions[0])
        n = len(members)
        middle = (members["y_atc"][n // 2], members["y_atc"][n // 2 - (1 - n % 2)])
        ys.append(np.float32((float(middle[0]) + float(middle[1])) / 2))
    np.testing.assert_array_equal(frame["photon_start"], firsts)
    np.testing.assert_array_equal(frame["segment_id_beg"], segment_of[firsts])
    np.testing.assert_array_equal(frame["y_atc"], np.array(ys, dtype=np.float32))


def test_chunked_equals_whole(forest_dir):
    asset, name = granule(forest_dir)
    request = Parms.from_dict({"beams": ["gt1r", "gt3l"], "phoreal": {}, "atl03_geo_fields": ["solar_azimuth"]})
    whole = process_granule(asset, name, request, "atl03x", chunk_photons=10**9).frame
    chunked = process_granule(asset, name, request, "atl03x", chunk_photons=1500).frame
    assert list(chunked) == list(whole) and "solar_azimuth" in whole and len(whole["x_atc"]) > 50
    for column, values in whole.items():
        np.testing.assert_array_equal(chunked[column], values, err_msg=column)
