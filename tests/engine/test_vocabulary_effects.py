"""What SlideRule's wider vocabulary does to results: ``spots`` and ``podppd`` (issue 12, item 2)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from icesat2sr.engine import process_granule
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms

BACKWARD = "ATL03_20210601120000_12340512_006_01.h5"   # conftest: sc_orient 0
FORWARD = "ATL03_20201102030405_05670910_006_01.h5"    # conftest: sc_orient 1
# ATL03 ATBD: spot of each beam gt1l..gt3r, by spacecraft orientation (strong spots are 1, 3, 5)
SPOT_OF_BEAM = {0: dict(zip((10, 20, 30, 40, 50, 60), (1, 2, 3, 4, 5, 6), strict=True)),
                1: dict(zip((10, 20, 30, 40, 50, 60), (6, 5, 4, 3, 2, 1), strict=True))}


@pytest.mark.parametrize("granule, orient", [(BACKWARD, 0), (FORWARD, 1)])
@pytest.mark.parametrize("spots", [[1, 2], [5], [2, 4, 6]])
def test_spots_select_beams_by_orientation(synth_dir, granule, orient, spots):
    asset = resolve_asset("atlas-local", str(synth_dir))
    rows = process_granule(asset, granule, Parms.from_dict({"spots": spots, "cnf": 4})).elevations
    assert set(rows["gt"].tolist()) == {gt for gt, s in SPOT_OF_BEAM[orient].items() if s in spots}
    assert set(rows["spot"].tolist()) == set(spots)


def _degraded_runs(path, beam: str) -> dict[int, np.ndarray]:
    """segment_id of every segment per POD/PPD flag value, read with h5py."""
    with h5py.File(path) as f:
        flags = f[f"{beam}/geolocation/podppd_flag"][()]
        ids = f[f"{beam}/geolocation/segment_id"][()]
    return {int(v): ids[flags == v] for v in np.unique(flags)}


def _near(ids: np.ndarray, segments: np.ndarray, margin: int) -> np.ndarray:
    return np.isin(ids, (segments[:, None] + np.arange(-margin, margin + 1)).ravel())


def test_podppd_drops_photons_of_degraded_segments(synth_dir):
    asset = resolve_asset("atlas-local", str(synth_dir))
    runs = _degraded_runs(synth_dir / BACKWARD, "gt1l")
    assert set(runs) == {0, 1, 2} and len(runs[1]) >= 3 and len(runs[2]) >= 3
    interior = {flag: ids[1:-1] for flag, ids in runs.items() if flag}

    def rows(**kw):
        return process_granule(asset, BACKWARD, Parms.from_dict({"beams": "gt1l", **kw})).elevations

    everything, nominal, pod = rows(), rows(podppd=1), rows(podppd=0b011)
    # no mask (SlideRule's atl06 and atl03s endpoints never read the flag): degraded segments are fitted
    assert all(_near(everything["segment_id"], interior[flag], 0).any() for flag in (1, 2))
    assert not _near(nominal["segment_id"], np.concatenate([interior[1], interior[2]]), 0).any()
    assert _near(pod["segment_id"], interior[1], 0).any() and not _near(pod["segment_id"], interior[2], 0).any()
    # extents away from the degraded runs are the same
    far = ~_near(everything["segment_id"], np.concatenate([runs[1], runs[2]]), 3)
    kept = ~_near(nominal["segment_id"], np.concatenate([runs[1], runs[2]]), 3)
    assert np.array_equal(everything[far], nominal[kept])
    assert np.array_equal(rows(podppd=0), everything)   # 0 filters nothing (SlideRule: usePodppd = mask != 0)
