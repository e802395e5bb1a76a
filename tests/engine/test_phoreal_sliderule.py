"""Our PhoREAL against SlideRule's own: record streams its C++ server wrote for the VegR clip
(tests/data/sliderule/README.md), decoded with our wire decoder, field by field.

The only expected difference is docs/decisions.md PhoREAL 2: ``canopy_h_metrics[19]`` is the
100th percentile here (``h_max_canopy``), a copy of the 95th in SlideRule.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from icesat2sr.engine import process_granule
from icesat2sr.formats import wire
from icesat2sr.granules.ancillary import requested_fields
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms

from ..conftest import VEGR_NAME

STREAMS = Path(__file__).resolve().parents[1] / "data" / "sliderule"
RUNS = {
    "atl08_vegr_median_waveform.bin": {"srt": 0, "cnf": 0, "beams": ["gt1r"],
                                       "phoreal": {"binsize": 1.0, "send_waveform": True}},
    "atl08_vegr_center_len100.bin": {"srt": 0, "cnf": 1, "beams": ["gt1r"], "len": 100, "res": 50,
                                     "phoreal": {"binsize": 1.0, "geoloc": "center"}},
}


@pytest.mark.parametrize("stream", list(RUNS))
def test_vegetation_equals_sliderules_records(real_dir, stream):
    theirs = wire.decode((STREAMS / stream).read_bytes()).result(VEGR_NAME, "atl08")
    ours = process_granule(resolve_asset("atlas-local", str(real_dir)), VEGR_NAME, Parms.from_dict(RUNS[stream]),
                           "atl08")
    assert ours.error is None
    a = np.sort(ours.vegetation, order="extent_id")
    b = np.sort(theirs.vegetation, order="extent_id")
    assert len(a) == len(b) >= 16
    for name in a.dtype.names:
        if name in ("pflags", "canopy_h_metrics"):   # pflags: not in SlideRule's definition, not compared
            continue
        assert np.array_equal(a[name], b[name]), name
    assert np.array_equal(a["canopy_h_metrics"][:, :19], b["canopy_h_metrics"][:, :19])
    assert np.array_equal(b["canopy_h_metrics"][:, 19], b["canopy_h_metrics"][:, 18])      # SlideRule's copy
    assert np.array_equal(a["canopy_h_metrics"][:, 19], a["h_max_canopy"])                 # our 100th percentile
    if theirs.waveforms is None:
        assert ours.waveforms is None
        return
    for result in (ours, theirs):
        assert len(result.waveforms) == len(result.vegetation)
    bins_a = dict(zip(ours.waveforms["extent_id"].tolist(),
                      np.split(ours.waveform, np.cumsum(ours.waveforms["num_bins"], dtype=np.int64)[:-1]), strict=True))
    bins_b = dict(zip(theirs.waveforms["extent_id"].tolist(),
                      np.split(theirs.waveform, np.cumsum(theirs.waveforms["num_bins"], dtype=np.int64)[:-1]),
                      strict=True))
    assert bins_a.keys() == bins_b.keys()
    assert all(np.array_equal(bins_a[k], bins_b[k]) for k in bins_a)
    assert np.all(theirs.waveforms["binsize"] == 1.0) and np.all(ours.waveforms["binsize"] == 1.0)


def test_our_definitions_are_sliderules():
    # the definitions SlideRule 5.5 serves for these records (offsets in bits; pflags absent)
    vegetation = wire.DEFINITIONS["atl08rec.vegetation"]
    assert vegetation["__datasize"] == 176 and "pflags" not in vegetation
    assert vegetation["canopy_h_metrics"] == {"type": "FLOAT", "offset": 768, "elements": 20, "flags": "LE"}
    assert vegetation["time"] == {"type": "TIME8", "offset": 320, "elements": 1, "flags": "LE|T"}
    assert vegetation["landcover"]["offset"] == 256 and vegetation["x_atc"]["offset"] == 512
    assert wire.DEFINITIONS["waverec"]["waveform"] == {"type": "FLOAT", "offset": 128, "elements": 0, "flags": "LE"}
    assert wire.DEFINITIONS["atl08rec"]["vegetation"]["flags"] == "LE|BATCH"


ANCILLARY_RUNS = {
    "atl08_vegr_ancillary.bin": {
        "srt": 0, "cnf": 0, "beams": ["gt1r"], "phoreal": {"binsize": 1.0},
        "atl08_fields": ["segment_landcover", "canopy/h_canopy", "h_dif_ref%", "segment_snowcover%",
                         "canopy/canopy_openness"],
        "atl03_geo_fields": ["solar_elevation", "tide_ocean"], "atl03_ph_fields": ["ph_id_channel"]},
    "atl08_vegr_ancillary_len100.bin": {
        "srt": 0, "cnf": 1, "beams": ["gt1r"], "len": 100, "res": 50,
        "atl08_class": ["atl08_unclassified", "atl08_ground", "atl08_canopy", "atl08_top_of_canopy"],
        "phoreal": {"binsize": 1.0, "geoloc": "mean"},
        "atl08_fields": ["h_dif_ref", "segment_landcover%", "canopy/n_ca_photons", "dem_h%"],
        "atl03_geo_fields": ["dem_h"]},
}


@pytest.mark.parametrize("stream", list(ANCILLARY_RUNS))
def test_ancillary_values_equal_sliderules(real_dir, stream):
    """Per-extent ancillary values of PhoREAL rows: SlideRule's ``ancfrec`` values, dtype and value
    (most frequent value, ``%`` means of floats without fills, truncated integer means; ATL08
    fields of unclassified photons, float fills), and the same vegetation rows as without them."""
    parms = Parms.from_dict(ANCILLARY_RUNS[stream])
    theirs = wire.decode((STREAMS / stream).read_bytes()).result(VEGR_NAME, "atl08", fields=requested_fields(parms))
    ours = process_granule(resolve_asset("atlas-local", str(real_dir)), VEGR_NAME, parms, "atl08")
    assert ours.error is None and theirs.ancillary is not None
    a, b = np.argsort(ours.vegetation["extent_id"]), np.argsort(theirs.vegetation["extent_id"])
    assert np.array_equal(ours.vegetation["extent_id"][a], theirs.vegetation["extent_id"][b])
    assert len(a) >= 16 and set(ours.ancillary) == set(theirs.ancillary)
    for key, values in theirs.ancillary.items():
        assert ours.ancillary[key].dtype == values.dtype, key
        assert np.array_equal(ours.ancillary[key][a], values[b], equal_nan=True), key
    plain = {k: v for k, v in ANCILLARY_RUNS[stream].items() if not k.endswith("_fields")}
    without = process_granule(resolve_asset("atlas-local", str(real_dir)), VEGR_NAME, Parms.from_dict(plain), "atl08")
    assert np.array_equal(without.vegetation, ours.vegetation)
