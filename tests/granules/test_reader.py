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


def test_windows_equal_the_whole_read(synth_dir):
    """Any window of photons (classes, ancillary values, weights included) is that slice of the whole beam."""
    from icesat2sr.granules.reader import GranuleReader

    parms = Parms.from_dict({"atl08_class": ["atl08_ground"], "yapc": {"version": 0, "score": 0},
                             "atl03_ph_fields": ["ph_id_count"], "atl03_geo_fields": ["dem_h"],
                             "atl03_bckgrd_fields": ["bckgrd_counts"], "atl08_fields": ["h_dif_ref%"],
                             "beams": ["gt1l", "gt3r"]})
    asset = resolve_asset("atlas-local", str(synth_dir))
    whole = read_beams(asset, NAME, parms)
    rng = np.random.default_rng(4)
    with GranuleReader(asset, NAME, parms) as reader:
        for plan, beam in zip(reader.beams, whole, strict=True):
            assert plan.n_photons == len(beam.h_ph)
            for _ in range(6):
                a = int(rng.integers(0, plan.n_photons))
                b = int(rng.integers(a + 1, plan.n_photons + 1))
                got = reader.photons(plan, a, b)
                for field in ("h_ph", "delta_time", "lat_ph", "signal_conf_ph", "quality_ph", "weight_ph",
                              "atl08_class"):
                    assert np.array_equal(got[field], getattr(beam, field)[a:b]), field
                anc = beam.extra["ancillary"]
                for f, values in got["extra"]["ancillary"].items():
                    assert np.array_equal(values, anc[f][a:b], equal_nan=values.dtype.kind == "f"), f.name


def test_atl08_classes_of_a_window_equal_the_whole_join():
    from icesat2sr.granules.atl08 import Atl08Join, atl08_classes

    rng = np.random.default_rng(8)
    segment_id = np.arange(1000, 1060, dtype=np.int32)
    counts = rng.integers(0, 9, 60).astype(np.int32)
    ph_seg = np.repeat(segment_id, counts)
    idx = np.concatenate([np.arange(1, c + 1) for c in counts]).astype(np.int32)
    listed = rng.random(len(ph_seg)) < 0.7
    flags = rng.integers(0, 4, listed.sum()).astype(np.int8)
    whole = atl08_classes(segment_id, counts, int(counts.sum()), ph_seg[listed], idx[listed], flags)

    class Stub(Atl08Join):             # the join's windows without a file: rows come from arrays
        def __init__(self):
            self.resource, self.name, self.phoreal, self._whole, self._land = "g", "a8", False, {}, {}
            self._blocks = {"gt1l": (np.searchsorted(ph_seg[listed], segment_id, "left"),
                                     np.searchsorted(ph_seg[listed], segment_id, "right"))}

        def _rows(self, beam, lo, hi):
            return {"ph_segment_id": ph_seg[listed][lo:hi], "classed_pc_indx": idx[listed][lo:hi],
                    "classed_pc_flag": flags[lo:hi]}

    stub = Stub()
    first = np.concatenate(([0], np.cumsum(counts)))
    for s0 in range(0, 60, 7):
        for s1 in (s0 + 1, s0 + 5, 60):
            s1 = min(s1, 60)
            got = stub.values("gt1l", segment_id[s0:s1], counts[s0:s1], s0)["atl08_class"]
            assert np.array_equal(got, whole[first[s0]:first[s1]])
