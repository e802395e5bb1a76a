"""The x-series (atl03x) photon frame and surface fit against a photon-by-photon reference.

``reference_xseries`` reads the granule with h5py and follows SlideRule's loops one photon and one
extent at a time; every column must agree exactly. (On the synthetic and real granules these
columns agree with SlideRule's own C++ x-series except where we do what it intends:
test_xseries_sliderule.py, docs/decisions.md.)
"""

from __future__ import annotations

import numpy as np
import pytest

from icesat2sr.engine import process_granule
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms
from icesat2sr.science import xseries

from . import reference_xseries as ref

CNF = {-2: range(-2, 5), 0: range(0, 5), 1: range(1, 5), 4: (4,)}


def frame(synth_dir, name, parms: dict) -> dict:
    result = process_granule(resolve_asset("atlas-local", str(synth_dir)), name, Parms.from_dict(parms), "atl03x")
    assert result.error is None
    return result.frame


def reference_photons(synth_dir, name, beams, srt, cnf, podppd=1) -> list[dict]:
    return [row for b in beams for row in ref.photons(str(synth_dir / name), b, srt, set(CNF[cnf]), podppd)]


def assert_columns(ours: dict, rows: list[dict], dtypes: dict) -> None:
    assert len(rows) > 0
    for name, dtype in dtypes.items():
        expected = np.array([r[name] for r in rows]).astype(dtype)
        assert ours[name].dtype == np.dtype(dtype), name
        np.testing.assert_array_equal(ours[name], expected, err_msg=name)


@pytest.mark.parametrize("srt, cnf, podppd", [(3, 1, 1), (-1, 0, 0), (0, 4, 255)])
def test_photon_frame_equals_the_reference(synth_dir, synth_names, srt, cnf, podppd):
    name = synth_names[0]
    beams = ["gt1l", "gt2r"]
    ours = frame(synth_dir, name, {"srt": srt, "cnf": cnf, "podppd": podppd, "beams": beams})
    rows = reference_photons(synth_dir, name, beams, srt, cnf, podppd)
    assert_columns(ours, rows, xseries.PHOTON_COLUMNS)
    assert list(ours) == [*xseries.PHOTON_COLUMNS, *xseries.META_COLUMNS]   # no optional columns asked for
    assert set(np.unique(ours["gt"])) == {10, 40}


def test_podppd_drops_the_flagged_segments(synth_dir, synth_names):
    """synth flags two runs of segments (podppd_flag 1 and 2): atl03x's default mask (nominal only)
    drops their photons, 0 keeps every photon, 2 keeps only the flag-1 run."""
    import h5py

    base = {"srt": 3, "cnf": 1, "beams": ["gt1l"]}
    nominal = frame(synth_dir, synth_names[0], base)
    everything = frame(synth_dir, synth_names[0], {**base, "podppd": 0})
    degraded = frame(synth_dir, synth_names[0], {**base, "podppd": 2})
    with h5py.File(synth_dir / synth_names[0]) as f:
        flags = dict(zip(f["gt1l/geolocation/segment_id"][:].tolist(), f["gt1l/geolocation/podppd_flag"][:].tolist(),
                         strict=True))
    flag_of = np.array([flags[s] for s in everything["segment_id"].tolist()])
    np.testing.assert_array_equal(nominal["ph_index"], everything["ph_index"][flag_of == 0])
    np.testing.assert_array_equal(degraded["ph_index"], everything["ph_index"][flag_of == 1])
    assert len(degraded["ph_index"]) > 0 and set(np.unique(flag_of)) == {0, 1, 2}


FITS = [
    ({"srt": 3, "cnf": 1, "fit": {"maxi": 3}}, False),
    ({"srt": 3, "cnf": 4, "len": 20.0, "res": 10.0, "fit": {"maxi": 6, "H_min_win": 2.0}}, True),
    ({"srt": 0, "cnf": 1, "cnt": 50, "ats": 30.0, "len": 100.0, "res": 7.5, "fit": {"sigma_r_max": 1.0}}, False),
]


@pytest.mark.parametrize("parms, pass_invalid", FITS)
def test_surface_fit_equals_the_reference(synth_dir, synth_names, parms, pass_invalid):
    name = synth_names[1]
    beams = ["gt3l"]
    checked = Parms.from_dict({**parms, "pass_invalid": pass_invalid, "beams": beams})
    ours = frame(synth_dir, name, {**parms, "pass_invalid": pass_invalid, "beams": beams})
    settings = {"cnt": checked.cnt, "ats": checked.ats, "maxi": checked.maxi, "H_min_win": checked.H_min_win,
                "sigma_r_max": checked.sigma_r_max}
    rows = ref.surface_fit(reference_photons(synth_dir, name, beams, parms["srt"], parms["cnf"]), checked.len,
                           checked.res, settings, pass_invalid)
    assert_columns(ours, rows, xseries.FIT_COLUMNS)
    assert list(ours) == [*xseries.FIT_COLUMNS, *xseries.META_COLUMNS]
    if pass_invalid:
        assert np.any(ours["pflags"] != 0)
    else:
        assert np.all(ours["pflags"] == 0)


def test_extents_follow_slideRules_forward_scan():
    """Photons out of order along track: an extent starts at the first photon at or past its start."""
    rng = np.random.default_rng(5)
    x = np.sort(rng.uniform(0, 500, 400)) + rng.normal(0, 2.0, 400)   # locally unordered
    x[100:140] += 200.0                                              # and a big jump back after
    b = xseries.extent_bounds(x, 40.0, 20.0)
    start, i0, i1 = b.start, b.i0, b.i1
    expected, s, j = [], x[0], 0
    while j < len(x):
        k = j
        while k < len(x) - 1 and (x[k + 1] - s) < 40.0:
            k += 1
        expected.append((s, j, k))
        while j < len(x):
            s += 20.0
            while j < len(x) and x[j] < s:
                j += 1
            if j < len(x) and (x[j] - s) < 40.0:
                break
    assert list(zip(start.tolist(), i0.tolist(), i1.tolist(), strict=True)) == expected


def test_optional_columns(synth_dir, synth_names):
    ours = frame(synth_dir, synth_names[0], {"cnf": 1, "beams": ["gt1r"], "yapc": {"score": 0},
                                            "atl08_class": ["atl08_ground", "atl08_canopy", "atl08_unclassified"]})
    assert ours["yapc_score"].dtype == np.uint16 and ours["atl08_class"].dtype == np.uint8
    assert set(np.unique(ours["atl08_class"])) <= {1, 2, 4}


def test_missing_podppd_flag_fails_the_granule(synth_dir, synth_names, tmp_path):
    import shutil

    import h5py

    name = synth_names[0]
    shutil.copy(synth_dir / name, tmp_path / name)
    with h5py.File(tmp_path / name, "a") as f:
        for beam in ("gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"):
            del f[f"{beam}/geolocation/podppd_flag"]
    asset = resolve_asset("atlas-local", str(tmp_path))
    result = process_granule(asset, name, Parms.from_dict({"cnf": 1}), "atl03x")
    assert result.error is not None and "podppd_flag" in result.error[1]
    assert process_granule(asset, name, Parms.from_dict({"cnf": 1, "podppd": 0}), "atl03x").rows > 0


def test_ancillary_columns_per_photon_and_per_extent(synth_dir, synth_names):
    """Per photon: the photon's (heights) or its segment's (geolocation, geophys_corr) value; with the
    fit, each extent's mean of its photons' values (SlideRule's default reduction)."""
    import h5py

    name, beam = synth_names[1], "gt2l"
    base = {"srt": 3, "cnf": 1, "beams": [beam], "atl03_ph_fields": ["ph_id_channel"],
            "atl03_geo_fields": ["solar_azimuth"], "atl03_corr_fields": ["dem_h"]}
    ours = frame(synth_dir, name, base)
    with h5py.File(synth_dir / name) as f:
        channel = f[f"{beam}/heights/ph_id_channel"][:]
        seg = {int(s): i for i, s in enumerate(f[f"{beam}/geolocation/segment_id"][:])}
        azimuth, dem = f[f"{beam}/geolocation/solar_azimuth"][:], f[f"{beam}/geophys_corr/dem_h"][:]
    rows = np.array([seg[int(s)] for s in ours["segment_id"]])
    np.testing.assert_array_equal(ours["ph_id_channel"], channel[ours["ph_index"]])
    np.testing.assert_array_equal(ours["solar_azimuth"], azimuth[rows])
    np.testing.assert_array_equal(ours["dem_h"], dem[rows])
    assert ours["ph_id_channel"].dtype == channel.dtype

    fitted = frame(synth_dir, name, {**base, "fit": {}})
    reference_rows = reference_photons(synth_dir, name, [beam], 3, 1)
    for row, a, b, c in zip(reference_rows, ours["ph_id_channel"], ours["solar_azimuth"], ours["dem_h"], strict=True):
        row.update(ph_id_channel=float(a), solar_azimuth=float(b), dem_h=float(c))
    settings = {"cnt": 10, "ats": 20.0, "maxi": 5, "H_min_win": 3.0, "sigma_r_max": 5.0}
    extras = ("ph_id_channel", "solar_azimuth", "dem_h")
    rows = ref.surface_fit(reference_rows, 40.0, 20.0, settings, extras=extras)
    assert_columns(fitted, rows, {**xseries.FIT_COLUMNS, **dict.fromkeys(extras, "<f8")})
