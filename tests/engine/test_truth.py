"""End-to-end science on synthetic granules with a known truth: accuracy, and what every parameter does."""

from __future__ import annotations

import numpy as np
import pytest

from icesat2sr.engine import process_granule
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.names import BEAMS, GT_CODE
from icesat2sr.request.params import Parms
from icesat2sr.synth import feature_segments, is_strong, read_spec, segment_grid, truth_height, truth_mean

RECOMMENDED = {"srt": 3, "cnf": 1, "ats": 20.0, "cnt": 10, "len": 40.0, "res": 20.0, "maxi": 6}  # seed §2.5


@pytest.fixture(scope="module")
def granule(synth_dir, synth_names):
    name = synth_names[-1]  # the 600-segment granule (rgt 1234, sc_orient 0)
    return resolve_asset("atlas-local", str(synth_dir)), name, read_spec(synth_dir / name)


def run(granule, kind="atl06", **parms):
    asset, name, _ = granule
    result = process_granule(asset, name, Parms.from_dict(parms), kind)
    assert result.error is None, result.error
    return result


def truth_slope(x, spec, beam):
    return (truth_height(x + 0.5, spec, beam) - truth_height(x - 0.5, spec, beam)) / 1.0


def test_recommended_parameters_recover_the_truth(granule):
    _, _, spec = granule
    e = run(granule, **RECOMMENDED).elevations
    canopy = segment_grid(spec)[1][feature_segments(spec, "gt1l")["canopy"]]
    for beam in BEAMS:
        rows = e[e["gt"] == GT_CODE[beam]]
        # away from the canopy patch (where all photons, canopy included, are fitted)
        rows = rows[(rows["distance"] < canopy.min() - 40) | (rows["distance"] > canopy.max() + 60)]
        error = rows["h_mean"] - truth_mean(rows["distance"], spec, beam)
        slope_error = np.abs(rows["dh_fit_dx"] - truth_slope(rows["distance"], spec, beam))
        assert len(rows) > 400
        if is_strong(spec, beam):
            assert np.median(np.abs(error)) < 0.05
            assert np.mean(slope_error < 0.005) >= 0.9
        else:
            assert np.median(np.abs(error)) < 0.10


def test_atl08_ground_recovers_ground_under_canopy(granule):
    _, _, spec = granule
    canopy_sdx = segment_grid(spec)[1][feature_segments(spec, "gt1l")["canopy"]]
    lo, hi = canopy_sdx.min() + 20, canopy_sdx.max() - 20
    common = {"srt": 0, "cnf": 0, "len": 40.0, "res": 20.0, "maxi": 6}
    ground = run(granule, **common, atl08_class=["atl08_ground"]).elevations
    everything = run(granule, **common).elevations
    for rows, biased in ((ground, False), (everything, True)):
        strong = np.isin(rows["gt"], [GT_CODE[b] for b in BEAMS if is_strong(spec, b)])
        inside = rows[strong & (rows["distance"] > lo) & (rows["distance"] < hi)]
        truth = np.concatenate([truth_mean(inside["distance"][inside["gt"] == GT_CODE[b]], spec, b)
                                for b in BEAMS if is_strong(spec, b)])
        heights = np.concatenate([inside["h_mean"][inside["gt"] == GT_CODE[b]] for b in BEAMS if is_strong(spec, b)])
        assert len(heights) >= 6
        if biased:  # canopy photons pull the all-photon fit well above the ground
            assert np.median(heights - truth) > 1.0
        else:
            assert np.median(np.abs(heights - truth)) < 0.10


def photons(granule, **parms):
    r = run(granule, "atl03s", **parms)
    return r.extents, r.photons, r.offsets


def selected(granule, **parms):
    """Every selected photon exactly once (len = res = 20, all extents kept)."""
    return photons(granule, len=20.0, res=20.0, pass_invalid=True, cnt=0, ats=0.0, **parms)[1]


def test_cnf_srt_and_quality(granule):
    high = selected(granule, cnf="atl03_high")
    some = selected(granule, cnf=[2, 3])
    everything = selected(granule, cnf=0)
    assert set(np.unique(high["atl03_cnf"])) == {4}
    assert set(np.unique(some["atl03_cnf"])) == {2, 3}
    assert len(high) + len(some) + np.sum(everything["atl03_cnf"] <= 1) == len(everything)
    land = selected(granule, srt=0, cnf=4)
    assert len(land) != len(high)  # land and land-ice confidences differ in the synthetic files
    nominal = selected(granule, cnf=0, quality_ph=0)
    assert len(nominal) == len(everything) and set(np.unique(nominal["quality_ph"])) == {0}
    afterpulse = selected(granule, cnf=0, quality_ph="atl03_quality_afterpulse")
    assert len(afterpulse) > 0 and set(np.unique(afterpulse["quality_ph"])) == {1}
    both = selected(granule, cnf=0, quality_ph=[0, 1])
    assert len(both) == len(nominal) + len(afterpulse)


def test_atl08_classes_and_yapc(granule):
    ground = selected(granule, srt=0, cnf=0, atl08_class=["atl08_ground", "atl08_canopy"])
    assert set(np.unique(ground["atl08_class"])) == {1, 2}
    every_class = selected(granule, srt=0, cnf=0, atl08_class=[0, 1, 2, 3, 4])
    plain = selected(granule, srt=0, cnf=0)
    assert len(every_class) == len(plain) and set(np.unique(every_class["atl08_class"])) == {0, 1, 2, 3, 4}
    assert set(np.unique(plain["atl08_class"])) == {4}  # no ATL08 requested: unclassified
    assert np.all(plain["yapc_score"] == 0)
    scored = selected(granule, srt=0, cnf=0, yapc={"score": 0})
    strict = selected(granule, srt=0, cnf=0, yapc={"score": 100})
    assert len(scored) == len(plain) and len(strict) < len(scored)
    assert strict["yapc_score"].min() >= 100
    # signal scores high, noise low: the median score of kept photons near the truth is higher
    assert np.median(scored["yapc_score"][scored["atl03_cnf"] == 4]) > np.median(
        scored["yapc_score"][scored["atl03_cnf"] == 0])


def test_track_and_beams(granule):
    e = run(granule, **RECOMMENDED, track=2).elevations
    assert set(np.unique(e["gt"])) == {30, 40}
    e = run(granule, **RECOMMENDED, beams=["gt3r"]).elevations
    assert set(np.unique(e["gt"])) == {60}


def test_extent_parameters(granule):
    head, _, _ = photons(granule, cnf=4, len=40.0, res=20.0)
    base = head[head["track"] == 1]
    assert np.all(head["count"] >= 10)
    steps = np.diff(base["segment_dist"][base["pair"] == 0])
    assert np.isclose(np.median(steps), 20.0, atol=0.05)
    head10, _, _ = photons(granule, cnf=4, len=20.0, res=10.0, ats=5.0, cnt=5)
    steps = np.diff(head10["segment_dist"][(head10["track"] == 1) & (head10["pair"] == 0)])
    assert np.isclose(np.median(steps), 10.0, atol=0.05)
    with_invalid, _, _ = photons(granule, cnf=4, pass_invalid=True)
    assert len(with_invalid) > len(head)
    strict, _, _ = photons(granule, cnf=4, cnt=60, ats=35.0)
    assert len(strict) < len(head) and np.all(strict["count"] >= 60)


def test_dist_in_seg_matches_metres(granule):
    # 2 segments / step 1 segment is the 40 m / 20 m extent in whole segments (SlideRule test_gs)
    a = run(granule, **RECOMMENDED).elevations
    b = run(granule, **{**RECOMMENDED, "len": 2, "res": 1, "dist_in_seg": True}).elevations
    common = np.intersect1d(a["segment_id"][a["gt"] == 20], b["segment_id"][b["gt"] == 20])
    assert len(common) > 0.9 * np.sum(a["gt"] == 20)
    ha = a["h_mean"][a["gt"] == 20][np.isin(a["segment_id"][a["gt"] == 20], common)]
    hb = b["h_mean"][b["gt"] == 20][np.isin(b["segment_id"][b["gt"] == 20], common)]
    assert np.median(np.abs(ha - hb)) < 0.05


def test_fit_parameters(granule):
    one = run(granule, **{**RECOMMENDED, "maxi": 1}).elevations
    six = run(granule, **RECOMMENDED).elevations
    assert np.mean(one["pflags"] & 0x4 > 0) > np.mean(six["pflags"] & 0x4 > 0)
    wide = run(granule, **{**RECOMMENDED, "H_min_win": 8.0}).elevations
    assert wide["w_surface_window_final"].min() >= 8.0
    assert np.median(wide["n_fit_photons"]) > np.median(six["n_fit_photons"])
    capped = run(granule, **{**RECOMMENDED, "cnf": 0, "sigma_r_max": 0.1, "H_min_win": 0.5}).elevations
    # the window is at most max(H_min_win, 6 sigma_expected, 6 sigma_r_max) or 0.75 of the previous one
    assert np.median(capped["w_surface_window_final"]) < np.median(
        run(granule, **{**RECOMMENDED, "cnf": 0, "H_min_win": 0.5}).elevations["w_surface_window_final"])


def test_compact(granule):
    e = run(granule, **RECOMMENDED, compact=True).elevations
    assert set(e.dtype.names) == {"extent_id", "time", "latitude", "longitude", "h_mean", "delta_time"}
    full = run(granule, **RECOMMENDED).elevations
    assert np.array_equal(e["h_mean"], full["h_mean"])


def test_polygon_keeps_first_run_inside(granule):
    _, _, _spec = granule
    everything = run(granule, **RECOMMENDED).elevations
    rows = everything[everything["gt"] == 10]
    lat, lon = rows["latitude"], rows["longitude"]
    mid = len(rows) // 2
    lo, hi = min(lat[mid - 50], lat[mid + 50]), max(lat[mid - 50], lat[mid + 50])
    w, e = lon.min() - 0.5, lon.max() + 0.5
    poly = [{"lon": w, "lat": lo}, {"lon": e, "lat": lo}, {"lon": e, "lat": hi}, {"lon": w, "lat": hi},
            {"lon": w, "lat": lo}]
    sub = run(granule, **RECOMMENDED, poly=poly).elevations
    sub1 = sub[sub["gt"] == 10]
    assert 80 <= len(sub1) <= 110
    assert np.all((sub1["latitude"] > lo - 0.001) & (sub1["latitude"] < hi + 0.001))
    # identical fits where the extents coincide (same photons)
    same = np.isin(rows["segment_id"], sub1["segment_id"])
    assert np.median(np.abs(np.sort(rows["h_mean"][same])[:50] - np.sort(sub1["h_mean"])[:50])) < 0.05


def test_empty_region_gives_no_rows(granule):
    far = [{"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 1, "lat": 1}, {"lon": 0, "lat": 0}]
    assert len(run(granule, **RECOMMENDED, poly=far).elevations) == 0
