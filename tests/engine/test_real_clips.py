"""Real ATL03/ATL08 clips (shared/data/real): every selected photon once, sane elevations, bad files rejected.

Expected values are computed here with h5py, independently of the reader under test.
"""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from icesat2sr.engine import process_granule
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms

from ..conftest import HARMONY_NAME, REAL, VEGR_NAME

ONCE = {"len": 20.0, "res": 20.0, "pass_invalid": True}


def _run(real_dir, name, kind, **parms):
    result = process_granule(resolve_asset("atlas-local", str(real_dir)), name, Parms.from_dict(parms), kind)
    assert result.error is None, result.error
    return result


def _selected_heights(path, beam, srt, cnf_min):
    with h5py.File(path) as f:
        conf = f[f"{beam}/heights/signal_conf_ph"][:, srt]
        quality = f[f"{beam}/heights/quality_ph"][()]
        heights = f[f"{beam}/heights/h_ph"][()]
    return heights[(conf >= cnf_min) & (quality == 0)]


@pytest.mark.parametrize("name, beam, srt", [(HARMONY_NAME, "gt1l", 1), (VEGR_NAME, "gt1r", 0)])
def test_atl03s_returns_every_selected_photon_once(real_dir, name, beam, srt):
    result = _run(real_dir, name, "atl03s", srt=srt, cnf=0, **ONCE)
    expected = _selected_heights(real_dir / name, beam, srt, 0)
    assert len(result.photons) == len(expected) > 1000
    assert np.array_equal(np.sort(result.photons["height"]), np.sort(expected))
    assert result.extents["count"].sum() == len(result.photons)


@pytest.mark.parametrize("name, beam, srt", [(HARMONY_NAME, "gt1l", 1), (VEGR_NAME, "gt1r", 0)])
def test_atl06_inside_the_clip_height_range(real_dir, name, beam, srt):
    rows = _run(real_dir, name, "atl06", srt=srt, cnf=1).elevations
    heights = _selected_heights(real_dir / name, beam, srt, 1)
    assert len(rows) >= 10
    assert np.all((rows["h_mean"] >= heights.min()) & (rows["h_mean"] <= heights.max()))


def test_subsetter_output_without_orbit_info(real_dir):
    # no /orbit_info: orientation from the beam attribute (Forward: gt1l is spot 6, weak); rgt/cycle/region
    # from the file name; the two runs of segments ~400 km apart are walked separately
    rows = _run(real_dir, HARMONY_NAME, "atl06", srt=1, cnf=1).elevations
    assert set(np.unique(rows["spot"])) == {6} and set(np.unique(rows["gt"])) == {10}
    assert set(np.unique(rows["rgt"])) == {235} and set(np.unique(rows["cycle"])) == {1}
    assert set(np.unique(rows["region"])) == {4}
    with h5py.File(real_dir / HARMONY_NAME) as f:
        ids = f["gt1l/geolocation/segment_id"][()]
    assert rows["segment_id"].min() >= ids.min() and rows["segment_id"].max() <= ids.max() + 1
    assert np.any(rows["segment_id"] < 490810) and np.any(rows["segment_id"] > 510940)


def _vegr_join(real_dir) -> dict[str, np.ndarray]:
    """Per photon of the VegR clip, by a plain loop over ATL08 rows: class (4 = none), ph_h (NaN = none),
    land confidence, quality and h_ph."""
    with h5py.File(real_dir / VEGR_NAME) as f03, h5py.File(real_dir / VEGR_NAME.replace("ATL03", "ATL08")) as f08:
        seg_id = f03["gt1r/geolocation/segment_id"][()]
        counts = f03["gt1r/geolocation/segment_ph_cnt"][()].astype(np.int64)
        out = {"conf": f03["gt1r/heights/signal_conf_ph"][:, 0], "quality": f03["gt1r/heights/quality_ph"][()],
               "h_ph": f03["gt1r/heights/h_ph"][()]}
        ph_seg, idx, flag, ph_h = (f08[f"gt1r/signal_photons/{k}"][()] for k in
                                   ("ph_segment_id", "classed_pc_indx", "classed_pc_flag", "ph_h"))
    n = len(out["conf"])
    out["class"] = np.full(n, 4, dtype=np.uint8)
    out["ph_h"] = np.full(n, np.nan, dtype=np.float32)
    # first photon of each segment from the counts (this clip's ph_index_beg is off by one after its
    # first segment: the R clipper re-based it wrongly; SlideRule never reads it either)
    first = np.cumsum(counts) - counts
    where = {int(s): (int(b), int(c)) for s, b, c in zip(seg_id, first, counts, strict=True)}
    for s, i, c, h in zip(ph_seg, idx, flag, ph_h, strict=True):
        if int(s) in where and 1 <= i <= where[int(s)][1]:  # classed_pc_indx is 1-based within the segment
            out["class"][where[int(s)][0] + int(i) - 1] = c
            out["ph_h"][where[int(s)][0] + int(i) - 1] = h
    return out


def test_atl08_join_matches_an_independent_join(real_dir):
    result = _run(real_dir, VEGR_NAME, "atl03s", srt=0, cnf=0, atl08_class=[0, 1, 2, 3, 4], **ONCE)
    join = _vegr_join(real_dir)
    keep = (join["conf"] >= 0) & (join["quality"] == 0)
    expected = np.bincount(join["class"][keep], minlength=5)
    assert np.array_equal(np.bincount(result.photons["atl08_class"], minlength=5), expected)
    assert expected[:4].sum() > 1000  # the clip's classified photons are really joined


def test_phoreal_counts_and_heights_on_the_vegr_forest(real_dir):
    # every selected photon in one extent (len = res, pass_invalid), PhoREAL's default classes 1-3
    veg = _run(real_dir, VEGR_NAME, "atl08", srt=0, cnf=0, beams=["gt1r"], phoreal={}, **ONCE).vegetation
    join = _vegr_join(real_dir)
    selected = (join["conf"] >= 0) & (join["quality"] == 0) & np.isin(join["class"], [1, 2, 3])
    ground, canopy = selected & (join["class"] == 1), selected & (join["class"] >= 2)
    assert veg["ph_count"].sum() == selected.sum() > 1000
    assert veg["gnd_ph_count"].sum() == ground.sum() and veg["veg_ph_count"].sum() == canopy.sum()
    with_ground, with_canopy = veg["gnd_ph_count"] > 0, veg["veg_ph_count"] > 0
    assert with_ground.sum() > 20 and with_canopy.sum() > 20
    terrain = veg["h_te_median"][with_ground]
    assert np.all((terrain >= join["h_ph"][ground].min()) & (terrain <= join["h_ph"][ground].max()))
    relief = join["ph_h"][canopy]
    for name in ("h_min_canopy", "h_mean_canopy", "h_canopy", "h_max_canopy"):
        values = veg[name][with_canopy]
        assert np.all((values >= relief.min()) & (values <= relief.max())), name
    assert np.all(veg["h_canopy"] <= veg["h_max_canopy"]) and np.all(veg["h_min_canopy"] <= veg["h_mean_canopy"])
    # the clip's land segments: landcover 121 (shrubs) or 111 (closed forest), snow free (1)
    assert set(np.unique(veg["landcover"])) <= {111, 121} and set(np.unique(veg["snowcover"])) == {1}


def test_doubled_deflate_clip_is_rejected(tmp_path):
    # stored with the deflate filter applied twice: h5coro fails or returns garbage (latitudes like -475)
    shutil.copy(REAL / "ICESat2VegR" / "atl03_clip.h5", tmp_path / VEGR_NAME)
    result = process_granule(resolve_asset("atlas-local", str(tmp_path)), VEGR_NAME, Parms.from_dict({"srt": 0}))
    assert result.error is not None and result.elevations is None
