"""PhoREAL end to end on the synthetic forest: truth recovery, and equality with the per-extent
reference (tests/science/reference_phoreal.py) on the engine's own extents.

Truth: the forest's stand heights and crown model (``synth.canopy_truth``) and its ground surface
(``synth.truth_height``), never the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest

from icesat2sr import synth
from icesat2sr.engine import process_granule
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.names import BEAMS, GT_CODE
from icesat2sr.request.params import Parms

from ..science.reference_phoreal import reference_geolocation, reference_metrics

TRUTH_PARMS = {"srt": 0, "cnf": 0, "len": 100.0, "res": 100.0, "phoreal": {"geoloc": "center"}}
PERCENTILES = np.array([25.0, 50.0, 75.0, 98.0])


def run(directory, kind: str, parms: dict):
    name = next(directory.glob("ATL03_*.h5")).name
    result = process_granule(resolve_asset("atlas-local", str(directory)), name, Parms.from_dict(parms), kind)
    assert result.error is None, result.error
    return result


@pytest.fixture(scope="module")
def forest(forest_dir):
    spec = synth.read_spec(next(forest_dir.glob("ATL03_*.h5")))
    return spec, run(forest_dir, "atl08", TRUTH_PARMS).vegetation


def _inside_forest(spec, beam, x):
    _, dist, length = synth.segment_grid(spec)
    stands = synth.feature_segments(spec, beam)["forest"]
    return (x - 50.0 >= dist[stands[0]]) & (x + 50.0 <= dist[stands[-1]] + length[stands[-1]])


def test_canopy_height_and_percentiles_recover_the_forest(forest):
    # binned percentiles take the highest photon of the first 1 m bin reaching p %: biased up by < 1 bin
    spec, veg = forest
    for beam in BEAMS:
        rows = veg[veg["gt"] == GT_CODE[beam]]
        x = rows["x_atc"].astype(np.float64)          # geoloc center: the window's middle (+- a shot)
        inside = _inside_forest(spec, beam, x)
        assert inside.sum() >= 40
        truth = synth.canopy_truth(x[inside] - 50.0, x[inside] + 50.0, spec, beam, PERCENTILES)
        got = np.column_stack([rows["canopy_h_metrics"][inside][:, [4, 9, 14]], rows["h_canopy"][inside]])
        error = got - truth
        strong = synth.is_strong(spec, beam)
        assert np.all(np.abs(error[:, 3]) <= 1.0), beam        # h_canopy: the 98th percentile
        assert np.percentile(np.abs(error[:, 3]), 90) <= 0.5, beam
        assert np.all((np.median(error, axis=0) >= -0.2) & (np.median(error, axis=0) <= 1.0)), beam
        # 25th, 50th, 75th: a broad mixture of stands, sampled by a few hundred photons
        assert np.all(np.percentile(np.abs(error[:, :3]), 90, axis=0) <= (2.0 if strong else 3.0)), beam
        # outside the forest there is no canopy (but a few background photons ATL08 calls canopy)
        assert np.median(rows["veg_ph_count"][~inside & (x < x[inside].min() - 100)]) == 0


def _ground_median(spec, beam, lo, hi):
    """Median truth ground height of the window's segments that have photons."""
    _, dist, _ = synth.segment_grid(spec)
    xs = np.arange(lo, hi, 0.05)
    empty = synth.feature_segments(spec, beam)["empty"]
    xs = xs[~np.isin(np.searchsorted(dist, xs, side="right") - 1, empty)]
    return np.median(synth.truth_height(xs, spec, beam))


def test_terrain_median_recovers_the_ground(forest):
    spec, veg = forest
    for beam in BEAMS:
        rows = veg[(veg["gt"] == GT_CODE[beam]) & (veg["gnd_ph_count"] >= 20)]
        x = rows["x_atc"].astype(np.float64)
        truth = np.array([_ground_median(spec, beam, v - 50.0, v + 50.0) for v in x])
        error = np.abs(rows["h_te_median"] - truth)
        # the median photon lies a few metres off the window's middle (Poisson), on a slope of ~0.02
        strong = synth.is_strong(spec, beam)
        assert len(rows) > 80
        assert np.median(error) < (0.05 if strong else 0.1) and np.percentile(error, 95) < (0.15 if strong else 0.3)


# ---------------------------------------------------------------------- the per-extent reference
@pytest.mark.parametrize("phoreal", [
    {},
    {"geoloc": "mean", "binsize": 0.5, "send_waveform": True},
    {"geoloc": "center", "binsize": 2.5, "use_abs_h": True, "send_waveform": True},
    {"above_classifier": True, "binsize": 0.05},
])
def test_vegetation_equals_the_reference_on_the_engines_extents(forest_dir, phoreal):
    parms = {"srt": 0, "cnf": 0, "len": 40.0, "res": 20.0, "beams": ["gt1l", "gt3r"], "phoreal": phoreal}
    photons = run(forest_dir, "atl03s", parms)       # the same extents' photons, with their ATL08 values
    veg = run(forest_dir, "atl08", parms)
    settings = Parms.from_dict(parms).phoreal
    emitted = np.flatnonzero(photons.extents["count"] > 0)
    assert len(veg.vegetation) == len(emitted) > 500
    rows = veg.vegetation[np.argsort(veg.vegetation["extent_id"])]
    head = photons.extents[emitted]
    order = np.argsort(head["extent_id"])
    assert np.array_equal(rows["extent_id"], head["extent_id"][order] | np.uint64(2))
    wave_at = by_id = None
    if veg.waveforms is not None:
        wave_at = np.concatenate(([0], np.cumsum(veg.waveforms["num_bins"], dtype=np.int64)))
        by_id = np.argsort(veg.waveforms["extent_id"])
    for k, e in enumerate(emitted[order]):
        ph = photons.photons[photons.offsets[e]:photons.offsets[e + 1]]
        relief = ph["height"] if settings.use_abs_h else ph["relief"]
        m = reference_metrics(ph["atl08_class"], ph["height"], relief, settings.binsize)
        g = reference_geolocation(ph["time"], ph["latitude"], ph["longitude"], ph["x_atc"],
                                  float(photons.extents["segment_dist"][e]), settings.geoloc)
        row = rows[k]
        for name in ("ph_count", "gnd_ph_count", "veg_ph_count", "pflags", "h_te_median", "h_min_canopy",
                     "h_max_canopy", "h_mean_canopy", "canopy_openness", "h_canopy"):
            assert row[name] == m[name], (k, name)
        assert np.array_equal(row["canopy_h_metrics"], np.array(m["canopy_h_metrics"], np.float32))
        for name in ("time", "latitude", "longitude", "x_atc"):
            assert row[name] == g[name], (k, name)
        assert (row["landcover"], row["snowcover"]) == (ph["landcover"][g["photon"]], ph["snowcover"][g["photon"]])
        assert (row["segment_id"], row["solar_elevation"]) == (photons.extents["segment_id"][e],
                                                               photons.extents["solar_elevation"][e])
        if wave_at is not None:
            w = by_id[k]
            assert veg.waveforms["num_bins"][w] == m["num_bins"]
            assert np.array_equal(veg.waveform[wave_at[w]:wave_at[w + 1]], np.array(m["waveform"], np.float32))
    assert np.all(rows["rgt"] == 111) and np.all(rows["cycle"] == 7)
    assert set(np.unique(rows["gt"])) == {10, 60} and set(np.unique(rows["spot"])) == {6, 1}  # forward


def test_use_abs_h_keeps_the_classes(forest_dir):
    # SlideRule puts every photon in the ground set with use_abs_h; here only the relief changes
    parms = {"srt": 0, "cnf": 0, "len": 100.0, "res": 100.0, "beams": ["gt1l"]}
    relative = run(forest_dir, "atl08", {**parms, "phoreal": {}}).vegetation
    absolute = run(forest_dir, "atl08", {**parms, "phoreal": {"use_abs_h": True}}).vegetation
    for name in ("ph_count", "gnd_ph_count", "veg_ph_count", "h_te_median"):
        assert np.array_equal(relative[name], absolute[name]), name
    canopy = relative["veg_ph_count"] > 50
    assert canopy.sum() > 20
    # absolute canopy heights are ellipsoidal: about the terrain plus the relative ones
    assert np.median(np.abs(absolute["h_canopy"] - relative["h_canopy"] - absolute["h_te_median"])[canopy]) < 1.0


def test_atl08_without_phoreal_runs_it_with_defaults(forest_dir):
    parms = {"srt": 0, "cnf": 0, "len": 100.0, "res": 100.0, "beams": ["gt2l"]}
    bare = run(forest_dir, "atl08", parms).vegetation
    default = run(forest_dir, "atl08", {**parms, "phoreal": {}}).vegetation
    assert len(bare) > 50
    for name in bare.dtype.names:
        assert np.array_equal(bare[name], default[name]), name


def test_above_classifier_moves_canopy_not_ground(tmp_path):
    # at night (solar elevation < 5 deg) on strong spots, high-confidence canopy photons become top of canopy
    spec = synth.GranuleSpec(segments=300, seed=5, forest=True, solar_elevation=-10.0, sc_orient=0)
    synth.write_granule(tmp_path, spec)
    parms = {"srt": 0, "cnf": 0, "len": 100.0, "res": 100.0, "beams": ["gt1l", "gt1r"]}
    plain = run(tmp_path, "atl03s", {**parms, "phoreal": {}}).photons
    above = run(tmp_path, "atl03s", {**parms, "phoreal": {"above_classifier": True}}).photons
    moved = plain["atl08_class"] != above["atl08_class"]
    assert moved.sum() > 100 and np.all(above["atl08_class"][moved] == 3)
    assert np.all(plain["atl08_class"][moved] == 2) and np.all(above["atl03_cnf"][moved] == 4)
    assert np.array_equal(plain["atl08_class"] == 1, above["atl08_class"] == 1)     # ground kept


def test_a_beam_missing_from_atl08_is_unclassified_not_an_error(forest_dir, tmp_path):
    import shutil

    import h5py

    for path in forest_dir.glob("ATL0*.h5"):
        shutil.copy(path, tmp_path / path.name)
    with h5py.File(next(tmp_path.glob("ATL08_*.h5")), "a") as f:
        del f["gt1l"]
    parms = {"srt": 0, "len": 100.0, "res": 100.0, "beams": ["gt1l", "gt1r"]}
    unclassified = run(tmp_path, "atl08", {**parms, "atl08_class": [1, 2, 3, 4]}).vegetation
    gt1l = unclassified[unclassified["gt"] == 10]
    assert len(gt1l) > 50 and gt1l["gnd_ph_count"].sum() == gt1l["veg_ph_count"].sum() == 0
    assert set(gt1l["landcover"]) == {255} and set(gt1l["snowcover"]) == {255}
    assert set(run(tmp_path, "atl08", parms).vegetation["gt"]) == {20}   # default classes: gt1l has none
