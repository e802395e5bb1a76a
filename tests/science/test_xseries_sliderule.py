"""Our x-series surface fit against SlideRule's own C++ (frames its server computed for the VegR
clip: tests/data/sliderule/README.md), showing exactly where we depart from it.

SlideRule's SurfaceFitter passes ``cnt`` and ``ats`` (the checks before a fit) and ``len`` (the
background density) through ``operator bool``. ``reference_xseries.surface_fit`` with
``sliderule_defects=True`` differs from the default reference only at those three places; with it the
reference equals SlideRule's frames bit for bit, and ours equals the default reference bit for bit
(docs/decisions.md, x-series 5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from icesat2sr.engine import process_granule
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms
from icesat2sr.science import xseries

from ..conftest import VEGR_NAME
from . import reference_xseries as ref

FRAMES = Path(__file__).resolve().parents[1] / "data" / "sliderule"
RUNS = {
    "atl03x_vegr_fit_pass_invalid.csv": {"srt": 0, "cnf": 1, "beams": ["gt1r"], "pass_invalid": True,
                                         "fit": {"maxi": 5}},
    "atl03x_vegr_fit_len20.csv": {"srt": 0, "cnf": 0, "beams": ["gt1r"], "len": 20.0, "res": 10.0, "cnt": 15,
                                  "ats": 12.0, "fit": {"maxi": 6}},
}


def sliderule_frame(name: str) -> dict[str, np.ndarray]:
    """SlideRule's frame (CSV of run_atl03x.lua: doubles printed exactly), in our dtypes."""
    import pandas as pd

    table = pd.read_csv(FRAMES / name)
    return {c: table[c].to_numpy().astype(d) for c, d in xseries.FIT_COLUMNS.items()}


def reference_frame(real_dir: Path, parms: dict, defects: bool) -> dict[str, np.ndarray]:
    checked = Parms.from_dict(parms)
    conf = set(range(parms["cnf"], 5))
    photons = ref.photons(str(real_dir / VEGR_NAME), "gt1r", parms["srt"], conf)
    settings = {k: getattr(checked, k) for k in ("cnt", "ats", "maxi", "H_min_win", "sigma_r_max")}
    rows = ref.surface_fit(photons, checked.len, checked.res, settings, checked.pass_invalid,
                           sliderule_defects=defects)
    return {c: np.array([r[c] for r in rows]).astype(d) for c, d in xseries.FIT_COLUMNS.items()}


def same(a: dict, b: dict) -> bool:
    return len(a["x_atc"]) == len(b["x_atc"]) and all(
        np.array_equal(a[c], b[c], equal_nan=a[c].dtype.kind == "f") for c in xseries.FIT_COLUMNS)


@pytest.mark.parametrize("name", list(RUNS))
def test_we_depart_from_sliderule_only_at_its_bool_conversions(real_dir, name):
    parms = RUNS[name]
    theirs = sliderule_frame(name)
    ours = process_granule(resolve_asset("atlas-local", str(real_dir)), VEGR_NAME, Parms.from_dict(parms), "atl03x")
    assert ours.error is None
    assert len(theirs["x_atc"]) >= 40
    assert same(reference_frame(real_dir, parms, defects=True), theirs)      # the reference is SlideRule's loop
    assert same(ours.frame, reference_frame(real_dir, parms, defects=False))  # ours is what it intends
    assert not same(ours.frame, theirs)                                        # and that is a real departure
