"""atl03x in chunks: the frame (photons, or their surface fit) equals the whole beam's, whatever the
chunk size: rows, columns, dtypes and values."""

from __future__ import annotations

import numpy as np
import pytest

from icesat2sr.engine import iter_granule, process_granule
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms
from icesat2sr.science import xseries

REQUESTS = [
    {"srt": 3, "cnf": 1, "beams": ["gt1l", "gt2r"]},
    {"srt": -1, "cnf": 0, "podppd": 0, "beams": ["gt3r"], "yapc": {"version": 3, "score": 0},
     "atl08_class": ["atl08_ground", "atl08_canopy", "atl08_unclassified"],
     "atl03_ph_fields": ["ph_id_channel"], "atl03_geo_fields": ["solar_azimuth"]},
    {"srt": 3, "cnf": 1, "beams": ["gt1r", "gt2l"], "fit": {}},
    {"srt": 3, "cnf": 0, "len": 100.0, "res": 7.5, "pass_invalid": True, "fit": {"maxi": 3}, "beams": ["gt2r"],
     "atl03_corr_fields": ["dem_h"]},
    {"srt": 0, "cnf": 2, "len": 20.0, "res": 0.5, "cnt": 5, "ats": 5.0, "fit": {}, "beams": ["gt1l"]},
]


def frame(synth_dir, name, parms: dict, chunk_photons: int | None) -> dict:
    asset = resolve_asset("atlas-local", str(synth_dir))
    result = process_granule(asset, name, Parms.from_dict(parms), "atl03x", chunk_photons=chunk_photons)
    assert result.error is None
    return result.frame


@pytest.mark.parametrize("parms", REQUESTS)
def test_chunked_equals_whole(synth_dir, synth_names, parms):
    name = synth_names[1]
    whole = frame(synth_dir, name, parms, 10**9)
    assert len(whole["x_atc"]) > 100
    for chunk_photons in (700, 5001):
        chunked = frame(synth_dir, name, parms, chunk_photons)
        assert list(chunked) == list(whole)
        for column, values in whole.items():
            assert chunked[column].dtype == values.dtype, column
            np.testing.assert_array_equal(chunked[column], values, err_msg=f"{column} @ {chunk_photons}")


def test_parts_come_in_many_chunks_beam_by_beam(synth_dir, synth_names):
    asset = resolve_asset("atlas-local", str(synth_dir))
    parts = list(iter_granule(asset, synth_names[1], Parms.from_dict({"cnf": 1, "fit": {}}), "atl03x",
                              chunk_photons=1000))
    beams = [p.beam for p in parts]
    assert beams == sorted(beams) and len(parts) > 2 * len(set(beams))
    assert max(len(p.result.frame["x_atc"]) for p in parts) < 1000


def test_resumed_walk_equals_one_walk():
    """extent_bounds fed a run of photons in pieces (locally out of order, with gaps and a jump back)
    decides the same extents as one walk over all of them."""
    rng = np.random.default_rng(7)
    x = np.sort(rng.uniform(0, 3000, 3000)) + rng.normal(0, 3.0, 3000)
    x[500:800] += 400.0
    x[2000:2100] -= 150.0
    for length, step in ((40.0, 20.0), (100.0, 7.5), (5.0, 30.0)):
        whole = xseries.extent_bounds(x, length, step)
        for cuts in ([1000, 2000], sorted(rng.choice(np.arange(1, 3000), 12, replace=False).tolist())):
            got, start, offset, rest = [], None, 0, np.zeros(0)
            for a, b in zip([0, *cuts], [*cuts, len(x)], strict=True):
                buffer = np.concatenate((rest, x[a:b]))
                bounds = xseries.extent_bounds(buffer, length, step, start, final=b == len(x))
                got += [(s, i + offset, j + offset) for s, i, j in zip(bounds.start, bounds.i0, bounds.i1, strict=True)]
                start, offset, rest = bounds.resume, offset + bounds.keep, buffer[bounds.keep:]
            assert got == list(zip(whole.start, whole.i0, whole.i1, strict=True))
