"""atl03x's surface fit gives our atl06 numbers for the same photons and parameters.

SlideRule's two fits differ by design in how they lay extents (SurfaceFitter: over the selected
photons, from the first one, a forward-only scan; the p-series: from segment boundaries), in the
background rate (the x-series frame carries the ``bckgrd_atlas`` sample at or before the segment,
the p-series interpolates) and in their float arithmetic (float64 against float32 between
passes). On a granule where those coincide (segments exactly 20 m apart, the first photon at a
segment start, photons in along-track order, a constant background) the two must agree: the same
extents, photon counts and flags, values within float32 rounding. Without ``pass_invalid``
SurfaceFitter keeps only extents whose fit raised no flag; the p-series also reports those its fit
flagged (after passing ``cnt``/``ats`` before the fit) (docs/decisions.md, x-series 5).
"""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from icesat2sr.engine import process_granule
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms

BEAM = "gt1l"


@pytest.fixture(scope="module")
def aligned(synth_dir, synth_names, tmp_path_factory):
    """A copy of a synthetic granule where SurfaceFitter's extents are the p-series' extents."""
    d = tmp_path_factory.mktemp("aligned")
    name = synth_names[0]
    shutil.copy(synth_dir / name, d / name)
    with h5py.File(d / name, "a") as f:
        g = f[BEAM]
        sdx = g["geolocation/segment_dist_x"]
        sdx[...] = np.round(sdx[0]) + 20.0 * np.arange(len(sdx))
        rate = g["bckgrd_atlas/bckgrd_rate"]
        rate[...] = np.full(rate.shape, rate[...].mean(), dtype=rate.dtype)
        counts = g["geolocation/segment_ph_cnt"][...]
        segment = np.repeat(np.arange(len(counts)), counts)
        n = len(g["heights/dist_ph_along"])
        order = np.lexsort((g["heights/dist_ph_along"][: len(segment)], segment))
        for key in g["heights"]:
            values = g[f"heights/{key}"][...]
            if values.shape[:1] == (n,):
                values[: len(segment)] = values[order]
                g[f"heights/{key}"][...] = values
        for key, value in (("dist_ph_along", 0.0), ("quality_ph", 0)):
            values = g[f"heights/{key}"][...]
            values[0] = value
            g[f"heights/{key}"][...] = values
        conf = g["heights/signal_conf_ph"][...]
        conf[0] = 4
        g["heights/signal_conf_ph"][...] = conf
    return resolve_asset("atlas-local", str(d)), name


def run(aligned, parms: dict, kind: str):
    asset, name = aligned
    extra = {"podppd": 0, "fit": {}} if kind == "atl03x" else {}
    result = process_granule(asset, name, Parms.from_dict({**parms, **extra}), kind)
    assert result.error is None
    return result.frame if kind == "atl03x" else result.elevations


@pytest.mark.parametrize("cnf", [0, 1])
def test_atl03x_fit_equals_atl06(aligned, cnf):
    parms = {"srt": 3, "cnf": cnf, "beams": [BEAM]}
    p, x = run(aligned, parms, "atl06"), run(aligned, parms, "atl03x")
    _, i, j = np.intersect1d(p["distance"], x["x_atc"], return_indices=True)
    assert len(j) == len(x["x_atc"]) > 200                         # every x-series extent is a p-series one
    for name in ("n_fit_photons", "pflags"):
        np.testing.assert_array_equal(x[name][j], p[name][i], err_msg=name)
    np.testing.assert_array_equal(x["y_atc"][j], p["y_atc"][i])
    tolerances = {"h_mean": 1e-4, "dh_fit_dx": 1e-7, "w_surface_window_final": 1e-5, "rms_misfit": 1e-6,
                  "h_sigma": 1e-6, "latitude": 1e-9, "longitude": 1e-9}
    for name, tolerance in tolerances.items():
        np.testing.assert_allclose(x[name][j], p[name][i], rtol=0, atol=tolerance, err_msg=name)
    assert np.max(np.abs(x["time_ns"][j] - p["time"][i].astype(np.int64))) < 10_000
    only_p = np.setdiff1d(np.arange(len(p)), i)
    assert np.all(p["pflags"][only_p] != 0)                          # flagged fits: reported by the p-series only
    everything = run(aligned, {**parms, "pass_invalid": True}, "atl03x")
    assert np.isin(p["distance"], everything["x_atc"]).all()
