"""Reading beams: what is read for a request, empty and absent beams, equality with h5py."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from icesat2sr.granules.assets import resolve_asset
from icesat2sr.granules.reader import read_beams
from icesat2sr.request.params import Parms

NAME = "ATL03_20210601120000_12340512_006_01.h5"


def test_full_read_equals_h5py(synth_dir):
    beams = read_beams(resolve_asset("atlas-local", str(synth_dir)), NAME, Parms.from_dict({"srt": 0}))
    assert [b.beam for b in beams] == ["gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"]
    with h5py.File(synth_dir / NAME) as f:
        for b in beams:
            g = f[b.beam]
            assert np.array_equal(b.h_ph, g["heights/h_ph"][()])
            assert np.array_equal(b.signal_conf_ph, g["heights/signal_conf_ph"][:, 0])
            assert np.array_equal(b.velocity_sc, g["geolocation/velocity_sc"][()])
            assert np.array_equal(b.bckgrd_rate, g["bckgrd_atlas/bckgrd_rate"][()])
            assert b.sc_orient == f["orbit_info/sc_orient"][0] and (b.rgt, b.cycle, b.region) == (1234, 5, 12)


def test_dynamic_srt_reads_all_columns(synth_dir):
    beam = read_beams(resolve_asset("atlas-local", str(synth_dir)), NAME, Parms.from_dict({"srt": -1}))[0]
    with h5py.File(synth_dir / NAME) as f:
        assert np.array_equal(beam.signal_conf_ph, f["gt1l/heights/signal_conf_ph"][()])


def test_polygon_reads_only_the_run(synth_dir):
    with h5py.File(synth_dir / NAME) as f:
        lat = f["gt2r/geolocation/reference_photon_lat"][()]
        lon = f["gt2r/geolocation/reference_photon_lon"][()]
        counts = f["gt2r/geolocation/segment_ph_cnt"][()]
        h = f["gt2r/heights/h_ph"][()]
    s0, s1 = 200, 260  # a box around segments 200..259 of gt2r, narrower than the pair spacing
    pad = 1e-4
    box = [(lon[s0:s1].min() - pad, lat[s0:s1].min()), (lon[s0:s1].max() + pad, lat[s0:s1].min()),
           (lon[s0:s1].max() + pad, lat[s0:s1].max()), (lon[s0:s1].min() - pad, lat[s0:s1].max())]
    poly = [{"lon": x, "lat": y} for x, y in box]
    beams = read_beams(resolve_asset("atlas-local", str(synth_dir)), NAME, Parms.from_dict({"poly": poly}))
    beam = next(b for b in beams if b.beam == "gt2r")
    first = beam.first_segment
    assert abs(first - s0) <= 2 and len(beam.segment_id) <= (s1 - s0) + 4
    p0 = int(counts[:first].sum())
    assert beam.first_photon == p0 and np.array_equal(beam.h_ph, h[p0:p0 + len(beam.h_ph)])
    assert "gt1l" not in [b.beam for b in beams]  # 3.3 km away: outside


def test_empty_and_absent_beams(synth_dir, tmp_path):
    shutil.copy(synth_dir / NAME, tmp_path / NAME)
    with h5py.File(tmp_path / NAME, "a") as f:
        del f["gt1l"]  # absent beam (as in NSIDC subsets)
        for group in ("heights", "geolocation"):  # empty beam: zero-length datasets, no chunk written
            for key in list(f[f"gt3r/{group}"]):
                old = f[f"gt3r/{group}/{key}"]
                shape, dtype, chunks = (0, *old.shape[1:]), old.dtype, old.chunks
                del f[f"gt3r/{group}/{key}"]
                f.create_dataset(f"gt3r/{group}/{key}", shape=shape, maxshape=(None, *shape[1:]), dtype=dtype,
                                 chunks=chunks, compression="gzip")
    beams = read_beams(resolve_asset("atlas-local", str(tmp_path)), NAME, Parms())
    assert [b.beam for b in beams] == ["gt1r", "gt2l", "gt2r", "gt3l"]


@pytest.mark.parametrize("parms, beams", [({"track": 3}, ["gt3l", "gt3r"]), ({"beams": ["gt2r"]}, ["gt2r"])])
def test_track_and_beams_select_what_is_read(synth_dir, parms, beams):
    got = read_beams(resolve_asset("atlas-local", str(synth_dir)), NAME, Parms.from_dict(parms))
    assert [b.beam for b in got] == beams
