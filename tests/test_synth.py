"""Synthetic ATL03/ATL08 granules: layout, h5coro compatibility, physics against the stated truth."""

from __future__ import annotations

import dataclasses
import datetime as dt

import h5coro
import h5py
import numpy as np
import pytest
from h5coro import filedriver

from icesat2sr import synth
from icesat2sr.request.names import BEAMS, parse_name, spot

SPEC = synth.GranuleSpec(segments=300, seed=11)


@pytest.fixture(scope="module")
def granule(tmp_path_factory) -> tuple:
    """The ATL03 and ATL08 paths of SPEC."""
    return tuple(synth.write_granule(tmp_path_factory.mktemp("synth"), SPEC))


@pytest.fixture(scope="module")
def forward_r7(tmp_path_factory) -> tuple:
    """A small forward-oriented release-007 revision-02 granule without features."""
    spec = dataclasses.replace(SPEC, segments=120, sc_orient=1, version=7, revision=2, heading_deg=190.0,
                               lat0=-70.0, lon0=-179.995, gap=False, canopy=False,
                               zero_photon_segments=False)
    return spec, tuple(synth.write_granule(tmp_path_factory.mktemp("fwd"), spec))


def _read(path, beam: str, *names: str) -> list[np.ndarray]:
    with h5py.File(path, "r") as f:
        return [f[f"{beam}/{n}"][()] for n in names]


def _photon_x(path, beam: str) -> tuple[np.ndarray, np.ndarray]:
    """Along-track distance and segment index of every photon."""
    cnt, dist, along = _read(path, beam, "geolocation/segment_ph_cnt", "geolocation/segment_dist_x",
                             "heights/dist_ph_along")
    seg = np.repeat(np.arange(len(cnt)), cnt)
    return dist[seg] + along.astype(np.float64), seg


# ------------------------------------------------------------------------------------------------
# layout and readers


def test_h5coro_reads_what_h5py_reads(granule):
    atl03, atl08 = granule
    paths = [f"/{b}/{d}" for b in ("gt1l", "gt2r") for d in (
        "heights/h_ph", "heights/lat_ph", "heights/delta_time", "heights/signal_conf_ph",
        "heights/quality_ph", "heights/weight_ph", "geolocation/segment_ph_cnt", "geolocation/velocity_sc",
        "geolocation/segment_dist_x", "bckgrd_atlas/bckgrd_rate")]
    paths += ["/orbit_info/sc_orient", "/orbit_info/rgt", "/ancillary_data/atlas_sdp_gps_epoch"]
    h5 = h5coro.H5Coro(str(atl03), filedriver.FileDriver, errorChecking=True)
    try:
        full = h5.readDatasets(paths, block=True)
        sliced = h5.readDatasets([
            {"dataset": "/gt1l/heights/h_ph", "hyperslice": [(9995, 20005)]},
            {"dataset": "/gt1l/heights/signal_conf_ph", "hyperslice": [(9990, 30010), (3, 4)]},
        ], block=True)
        with h5py.File(atl03, "r") as f:
            assert f["gt1l/heights/h_ph"].shape[0] > 30010  # the slices cross chunk boundaries
            for p in paths:
                np.testing.assert_array_equal(full[p], f[p][()], err_msg=p)
            np.testing.assert_array_equal(sliced["/gt1l/heights/h_ph"], f["gt1l/heights/h_ph"][9995:20005])
            conf = sliced["/gt1l/heights/signal_conf_ph"]
            assert conf.shape == (20020, 1)
            np.testing.assert_array_equal(conf, f["gt1l/heights/signal_conf_ph"][9990:30010, 3:4])
        assert full["/ancillary_data/atlas_sdp_gps_epoch"][0] == 1198800018.0
    finally:
        h5.close()
    h5 = h5coro.H5Coro(str(atl08), filedriver.FileDriver, errorChecking=True)
    try:
        names = [f"/gt3r/signal_photons/{n}" for n in ("ph_segment_id", "classed_pc_indx", "classed_pc_flag")]
        got = h5.readDatasets(names, block=True)
        with h5py.File(atl08, "r") as f:
            for p in names:
                np.testing.assert_array_equal(got[p], f[p][()], err_msg=p)
    finally:
        h5.close()


EXPECTED_DTYPES = {
    "heights/delta_time": "f8", "heights/lat_ph": "f8", "heights/lon_ph": "f8", "heights/h_ph": "f4",
    "heights/dist_ph_along": "f4", "heights/dist_ph_across": "f4", "heights/signal_conf_ph": "i1",
    "heights/quality_ph": "i1", "heights/weight_ph": "u1", "geolocation/segment_id": "i4",
    "geolocation/segment_dist_x": "f8", "geolocation/segment_length": "f8",
    "geolocation/segment_ph_cnt": "i4", "geolocation/ph_index_beg": "i8",
    "geolocation/reference_photon_lat": "f8", "geolocation/reference_photon_lon": "f8",
    "geolocation/delta_time": "f8", "geolocation/velocity_sc": "f4", "geolocation/solar_elevation": "f4",
    "bckgrd_atlas/delta_time": "f8", "bckgrd_atlas/bckgrd_rate": "f4",
}


def test_storage_is_earliest_chunked_gzip(granule):
    with h5py.File(granule[0], "r") as f:
        assert f.libver[0] == "earliest"
        assert f.id.get_create_plist().get_version()[0] == 0  # superblock v0
        assert f["orbit_info/sc_orient"].dtype == np.int8 and f["orbit_info/rgt"].dtype == np.int16
        assert f["orbit_info/cycle_number"].dtype == np.int8
        for beam in BEAMS:
            for name, dtype in EXPECTED_DTYPES.items():
                ds = f[f"{beam}/{name}"]
                assert ds.dtype == np.dtype(dtype), name
                assert ds.chunks == (10000, *ds.shape[1:]), name
                assert (ds.compression, ds.compression_opts) == ("gzip", 6), name
                assert ds.shuffle == (ds.dtype.kind in "iu"), name
            assert f[f"{beam}/heights/signal_conf_ph"].shape[1] == 5
            assert f[f"{beam}/geolocation/velocity_sc"].shape[1] == 3
            assert f[f"{beam}/geolocation/segment_ph_cnt"].attrs["_FillValue"] == 0
            assert f[f"{beam}/geolocation/velocity_sc"].fillvalue == np.float32(3.4028235e38)


def test_release_007_weight_and_atl08_name(forward_r7):
    spec, (atl03, atl08) = forward_r7
    g = parse_name(atl03.name)
    assert (g.rgt, g.cycle, g.region, g.version, g.revision) == (spec.rgt, spec.cycle, spec.region, 7, 2)
    assert atl08.name == g.atl08 and atl08.name.endswith("_007_01.h5")
    (weight,) = _read(atl03, "gt1l", "heights/weight_ph")
    assert weight.dtype == np.uint16


def test_track_can_cross_the_antimeridian(forward_r7):
    _, (atl03, _) = forward_r7
    (lon,) = _read(atl03, "gt2l", "heights/lon_ph")
    assert lon.min() < -179.99 and lon.max() > 179.99
    assert np.all((lon > 179.9) | (lon < -179.9))


def test_names_times_and_orbit_info(granule):
    atl03, atl08 = granule
    g = parse_name(atl03.name)
    assert (g.product, g.rgt, g.cycle, g.region, g.version, g.revision) == (
        3, SPEC.rgt, SPEC.cycle, SPEC.region, SPEC.version, SPEC.revision)
    assert g.start == SPEC.start
    assert atl08.name == g.atl08
    with h5py.File(atl03, "r") as f:
        t0 = f["ancillary_data/start_delta_time"][0]
        assert t0 == (SPEC.start - dt.datetime(2018, 1, 1, tzinfo=dt.UTC)).total_seconds()
        assert f["gt1l/heights/delta_time"][0] == t0
        assert f["ancillary_data/end_delta_time"][0] >= f["gt1l/heights/delta_time"][-1]
        start_utc = SPEC.start.strftime("%Y-%m-%dT%H:%M:%S.000000Z").encode()
        assert f["ancillary_data/data_start_utc"][0] == start_utc
        assert f["orbit_info/sc_orient"][0] == SPEC.sc_orient and f["orbit_info/rgt"][0] == SPEC.rgt
        assert f.attrs["short_name"] == b"ATL03"


# ------------------------------------------------------------------------------------------------
# segments, photons, geometry


@pytest.mark.parametrize("beam", BEAMS)
def test_segments_index_photons(granule, beam):
    (cnt, beg, sid, dist, length, seg_dt, h, t, along) = _read(
        granule[0], beam, "geolocation/segment_ph_cnt", "geolocation/ph_index_beg", "geolocation/segment_id",
        "geolocation/segment_dist_x", "geolocation/segment_length", "geolocation/delta_time", "heights/h_ph",
        "heights/delta_time", "heights/dist_ph_along")
    assert cnt.sum() == len(h) == len(t)
    first = np.cumsum(cnt) - cnt
    np.testing.assert_array_equal(beg, np.where(cnt > 0, first + 1, 0))
    assert np.all(np.diff(sid) == 1) and 1_000_000 <= sid[0] <= 9_999_999
    np.testing.assert_allclose(np.diff(dist), length[:-1], rtol=0, atol=1e-6)
    assert np.all(np.abs(length - 20.0) <= 0.01) and np.any(length != 20.0)
    assert dist[0] > 1e6
    assert np.all(np.diff(t) >= 0) and np.all(np.diff(seg_dt) > 0)
    assert along.min() > -1.0 and along.max() < 21.0
    # time follows distance at the ground speed
    x, _ = _photon_x(granule[0], beam)
    speed = np.polyfit(t - t[0], x, 1)[0]
    assert 6800 < speed < 7100


def test_geometry_of_beams(granule):
    def ref(beam):
        lat, lon = _read(granule[0], beam, "geolocation/reference_photon_lat",
                         "geolocation/reference_photon_lon")
        return np.radians(lat), np.radians(lon)

    def dist(a, b):
        (la1, lo1), (la2, lo2) = a, b
        s = np.sin((la2 - la1) / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin((lo2 - lo1) / 2) ** 2
        return 2 * synth.R_EARTH * np.arcsin(np.sqrt(s))

    gt1l, gt1r, gt2l = ref("gt1l"), ref("gt1r"), ref("gt2l")
    np.testing.assert_allclose(dist(gt1l, gt1r), 90.0, atol=0.5)
    np.testing.assert_allclose(dist(gt1l, gt2l), 3300.0, atol=1.0)
    step = dist((gt1l[0][:-1], gt1l[1][:-1]), (gt1l[0][1:], gt1l[1][1:]))
    np.testing.assert_allclose(step, 20.0, atol=0.02)
    assert np.degrees(gt1l[0][-1]) > np.degrees(gt1l[0][0])  # heading -10 deg: going north
    (vel,) = _read(granule[0], "gt1l", "geolocation/velocity_sc")
    np.testing.assert_allclose(np.linalg.norm(vel, axis=1), 7100.0, rtol=1e-3)


def test_photon_positions_follow_the_track(granule):
    lat, lon, across = _read(granule[0], "gt2r", "heights/lat_ph", "heights/lon_ph", "heights/dist_ph_across")
    rlat, = _read(granule[0], "gt2r", "geolocation/reference_photon_lat")
    assert rlat.min() - 1e-3 < lat.min() and lat.max() < rlat.max() + 1e-3
    assert np.all(np.abs(across - synth.BEAM_Y["gt2r"]) <= 1.0)
    assert np.all(np.abs(lon - SPEC.lon0) < 0.5)


# ------------------------------------------------------------------------------------------------
# physics against the truth


def _truth_residual(path, beam: str, spec: synth.GranuleSpec = SPEC) -> np.ndarray:
    x, _ = _photon_x(path, beam)
    (h,) = _read(path, beam, "heights/h_ph")
    return h.astype(np.float64) - synth.truth_height(x, spec, beam)


@pytest.mark.parametrize("beam", ["gt1l", "gt3r"])
def test_signal_photons_sit_on_the_truth(granule, beam):
    r = _truth_residual(granule[0], beam)
    (conf, quality) = _read(granule[0], beam, "heights/signal_conf_ph", "heights/quality_ph")
    _, seg = _photon_x(granule[0], beam)
    outside = ~np.isin(seg, synth.feature_segments(SPEC, beam)["canopy"])
    sig = (conf[:, 0] == 4) & (quality == 0) & outside
    assert abs(np.median(r[sig])) < 0.01
    assert 0.09 < np.std(r[sig]) < 0.11


def test_strong_and_weak_beams(granule, forward_r7):
    spec_fwd, (atl03_fwd, _) = forward_r7
    for spec, path in ((SPEC, granule[0]), (spec_fwd, atl03_fwd)):
        density = {}
        with h5py.File(path, "r") as f:
            for beam in BEAMS:
                s = spot(spec.sc_orient, beam)
                assert f[beam].attrs["atlas_spot_number"] == str(s).encode()
                strong = s in (1, 3, 5)
                assert f[beam].attrs["atlas_beam_type"] == (b"strong" if strong else b"weak")
                assert f[beam].attrs["sc_orientation"] == (b"Backward", b"Forward")[spec.sc_orient]
                assert synth.is_strong(spec, beam) == strong
        for beam in BEAMS:
            r = _truth_residual(path, beam, spec)
            density[beam] = np.count_nonzero(np.abs(r) < 0.5)
        strong_beams = [b for b in BEAMS if synth.is_strong(spec, b)]
        assert strong_beams == (["gt1l", "gt2l", "gt3l"] if spec.sc_orient == 0 else ["gt1r", "gt2r", "gt3r"])
        weak = sum(density[b] for b in BEAMS if b not in strong_beams)
        ratio = sum(density[b] for b in strong_beams) / weak
        assert 3.3 < ratio < 4.7


@pytest.mark.parametrize("beam", BEAMS)
def test_background_rate_is_the_stated_one(granule, beam):
    cnt, length, seg_dt, bt, rate = _read(granule[0], beam, "geolocation/segment_ph_cnt",
                                          "geolocation/segment_length", "geolocation/delta_time",
                                          "bckgrd_atlas/delta_time", "bckgrd_atlas/bckgrd_rate")
    assert np.all(np.abs(np.diff(bt) - 0.005) < 1e-6)
    (t,) = _read(granule[0], beam, "heights/delta_time")
    assert bt[0] <= t[0] and bt[-1] >= t[-1]
    r = _truth_residual(granule[0], beam)
    far = np.count_nonzero(np.abs(r) > 25.0)     # only background lives > 25 m from the ground
    noise = far * synth.WINDOW / (synth.WINDOW - 50.0)
    shots = length[cnt > 0].sum() / (synth.GROUND_SPEED / synth.PRF)
    measured = noise / (shots * 2 * synth.WINDOW / synth.C)
    stated = np.mean(np.interp(seg_dt[cnt > 0], bt + 0.0025, rate))
    assert abs(measured / stated - 1) < 0.06
    assert abs(stated / SPEC.background_rate - 1) <= SPEC.background_variation
    np.testing.assert_allclose(rate, synth.background_rate(bt + 0.0025, SPEC), rtol=1e-6)


@pytest.mark.parametrize("beam", BEAMS)
def test_gap_and_empty_segments(granule, beam):
    (cnt,) = _read(granule[0], beam, "geolocation/segment_ph_cnt")
    feats = synth.feature_segments(SPEC, beam)
    empty = np.flatnonzero(cnt == 0)
    np.testing.assert_array_equal(empty, feats["empty"])
    runs = np.split(empty, np.flatnonzero(np.diff(empty) != 1) + 1)
    assert max(len(r) for r in runs) >= 10
    assert sum(len(r) == 1 for r in runs) >= 1  # scattered single empty segments too
    assert np.all(cnt[:5] > 0) and np.all(cnt[-5:] > 0)


def test_canopy_patch(granule):
    r = _truth_residual(granule[0], "gt2l")
    _, seg = _photon_x(granule[0], "gt2l")
    canopy = np.isin(seg, synth.feature_segments(SPEC, "gt2l")["canopy"])
    assert 100.0 <= 20.0 * len(synth.feature_segments(SPEC, "gt2l")["canopy"]) <= 400.0
    above = (r > 2.0) & (r < 20.0)
    assert np.count_nonzero(above & canopy) / canopy.sum() > 0.4
    assert np.count_nonzero(above & ~canopy) / (~canopy).sum() < 0.15  # background only
    ground = np.abs(r) < 0.5
    assert np.count_nonzero(ground & canopy) / canopy.sum() < 0.5 * np.count_nonzero(ground & ~canopy) / (
        ~canopy).sum()


def test_confidence_and_quality(granule):
    for beam in BEAMS:
        conf, quality = _read(granule[0], beam, "heights/signal_conf_ph", "heights/quality_ph")
        assert conf.min() >= -2 and conf.max() <= 4
        assert set(np.unique(conf[:, [1, 2, 4]])) <= {-1, -2}
        assert np.any(conf[:, 0] != conf[:, 3])
        assert set(np.unique(quality)) <= {0, 1, 2, 3}
        np.testing.assert_array_equal(np.all(conf == -2, axis=1), quality == 3)
        r = _truth_residual(granule[0], beam)
        after = quality == 1
        if synth.is_strong(SPEC, beam):
            assert np.count_nonzero(after) > 100
            assert r[after].max() < -0.1 and r[after].min() > -6.6
            assert set(np.unique(conf[after][:, [0, 3]])) <= {0, 1}
            assert np.any(quality == 3)
        else:
            assert not after.any()
        far = (r < -12.0) | (r > 21.0)  # beyond afterpulses and canopy: background only
        assert set(np.unique(conf[far & (quality != 3)][:, [0, 3]])) == {0}
        assert np.any(quality == 2)


def test_atl08_refers_to_atl03_photons_and_matches_truth(granule):
    atl03, atl08 = granule
    for beam in BEAMS:
        cnt, sid = _read(atl03, beam, "geolocation/segment_ph_cnt", "geolocation/segment_id")
        (t03,) = _read(atl03, beam, "heights/delta_time")
        ph_sid, idx, flag, t08 = _read(atl08, beam, "signal_photons/ph_segment_id",
                                       "signal_photons/classed_pc_indx", "signal_photons/classed_pc_flag",
                                       "signal_photons/delta_time")
        assert ph_sid.dtype == np.int32 and idx.dtype == np.int32 and flag.dtype == np.int8
        s = np.searchsorted(sid, ph_sid)
        assert np.all(sid[s] == ph_sid)
        assert np.all((idx >= 1) & (idx <= cnt[s]))
        key = ph_sid.astype(np.int64) * 100_000 + idx
        assert np.all(np.diff(key) > 0)  # sorted by (segment, index), no duplicates
        photon = (np.cumsum(cnt) - cnt)[s] + idx - 1
        np.testing.assert_array_equal(t08, t03[photon])
        assert set(np.unique(flag)) == {0, 1, 2, 3}
        assert len(photon) < len(t03)  # some photons stay unclassified
        r = _truth_residual(atl03, beam)[photon]
        assert np.all(np.abs(r[flag == 1]) < 1.0)
        assert np.all(r[(flag == 2) | (flag == 3)] > 1.9)
        # under the canopy ATL08 ground still finds the ground; all signal photons do not
        _, seg = _photon_x(atl03, beam)
        canopy = np.isin(seg[photon], synth.feature_segments(SPEC, beam)["canopy"])
        assert abs(np.median(r[canopy & (flag == 1)])) < 0.05
        assert np.median(r[canopy & (flag >= 1)]) > 2.0
    with h5py.File(atl08, "r") as f:
        beg, end = f["gt1l/land_segments/segment_id_beg"][()], f["gt1l/land_segments/segment_id_end"][()]
        assert np.all(end - beg == 4) and np.all(np.diff(beg) % 5 == 0)
        assert f["gt1l/land_segments/latitude"].dtype == np.float32
        assert f.attrs["short_name"] == b"ATL08"


# ------------------------------------------------------------------------------------------------
# truth model, spec, determinism


def test_truth_is_smooth_and_line_fits_recover_it():
    beam = "gt2l"
    x0 = synth.start_distance(SPEC)
    x = x0 + np.arange(0.0, 20000.0, 0.5)
    h = synth.truth_height(x, SPEC, beam)
    curvature = np.diff(h, 2) / 0.25
    assert np.abs(curvature).max() < 1.5e-5
    centres = x0 + np.linspace(100.0, 19000.0, 25)
    for c in centres:
        u = np.linspace(-20.0, 20.0, 401)
        fit = np.polyfit(u, synth.truth_height(c + u, SPEC, beam), 1)
        assert abs(fit[1] - synth.truth_height(c, SPEC, beam)) < 1e-3
        assert abs(fit[1] - synth.truth_mean(c, SPEC, beam, 40.0)) < 1e-5
    assert synth.truth_height(x0, SPEC, "gt1l") != synth.truth_height(x0, SPEC, "gt3r")  # across-track slope


def test_read_spec_round_trip(granule):
    assert synth.read_spec(granule[0]) == SPEC
    assert synth.read_spec(granule[1]) == SPEC
    assert synth.GranuleSpec.from_json(SPEC.to_json()) == SPEC


def test_determinism(tmp_path):
    spec = dataclasses.replace(SPEC, segments=100, seed=5)
    a = synth.write_granule(tmp_path / "a", spec)
    b = synth.write_granule(tmp_path / "b", spec)
    c = synth.write_granule(tmp_path / "c", dataclasses.replace(spec, seed=6))
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes()
    assert not np.array_equal(_read(a[0], "gt1l", "heights/h_ph")[0][:100],
                              _read(c[0], "gt1l", "heights/h_ph")[0][:100])


def test_synthesize_several_granules(tmp_path):
    paths = synth.synthesize(tmp_path, seed=3, segments=100, atl08=True, granules=2)
    assert len(paths) == 4 and all(p.exists() for p in paths)
    names = [parse_name(p.name) for p in paths]
    assert [n.product for n in names] == [3, 8, 3, 8]
    assert names[0].rgt != names[2].rgt
    assert paths[1].name == names[0].atl08
    specs = [synth.read_spec(p) for p in paths[::2]]
    assert specs[0].lat0 != specs[1].lat0
    with h5py.File(paths[2], "r") as f:
        assert f["gt1l/geolocation/segment_id"][0] >= 1_000_000


@pytest.mark.parametrize("change", [
    {"segments": 50},
    {"amplitude": 50.0},
    {"start": dt.datetime(2021, 1, 1)},
    {"sc_orient": 3},
])
def test_spec_validation(change):
    with pytest.raises(ValueError):
        dataclasses.replace(SPEC, **change)
