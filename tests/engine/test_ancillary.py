"""Ancillary fields end to end, checked against independent h5py reads of the same datasets.

Per photon (atl03s): every family equals the dataset value read with h5py at the photon's own
index, its segment (from ``segment_ph_cnt``), its background sample (a plain loop of SlideRule's
x-series pointer) or its ATL08 land segment (a plain loop over ATL08's classified photons).
Per extent (atl06): ``h_ph`` gives back ``h_mean``, ``lat_ph`` gives back ``latitude``; fitted
fields equal a closed-form least-squares line through the final photons, integer fields their
most frequent value (collections.Counter).
"""

from __future__ import annotations

from collections import Counter

import h5py
import numpy as np
import pytest

from icesat2sr.engine import process_granule
from icesat2sr.granules.ancillary import requested_fields
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.granules.reader import read_beams
from icesat2sr.request.params import Parms
from icesat2sr.science.ancillary import column_key
from icesat2sr.science.extents import make_extents
from icesat2sr.science.records import pack, unpack
from icesat2sr.science.select import photon_confidence, photon_mask

FIELDS = {"atl03_geo_fields": ["solar_elevation", "dem_h", "surf_type", "tide_ocean", "podppd_flag"],
          "atl03_ph_fields": ["h_ph", "lat_ph", "ph_id_channel", "ph_id_count"],
          "atl08_fields": ["canopy/h_canopy", "segment_landcover", "h_dif_ref%", "terrain/h_te_best_fit"],
          "atl03_corr_fields": ["geoid", "dac"], "atl03_bckgrd_fields": ["bckgrd_counts", "bckgrd_hist_top"]}
BASE = {"cnf": 1, "ats": 20.0, "cnt": 10, "len": 40.0, "res": 20.0, "beams": ["gt1l", "gt2r"]}


@pytest.fixture(scope="module")
def granule(synth_dir, synth_names):
    return resolve_asset("atlas-local", str(synth_dir)), synth_dir, synth_names[-1]


def reference_photon_values(path08, path03, beam: str) -> dict[str, np.ndarray]:
    """Every field's value per photon of the whole beam, by plain reads and loops."""
    out = {}
    with h5py.File(path03) as f:
        g = f[beam]
        cnt = g["geolocation/segment_ph_cnt"][:]
        seg = np.repeat(np.arange(len(cnt)), cnt)
        seg_id = g["geolocation/segment_id"][:][seg]
        for name in FIELDS["atl03_ph_fields"]:
            out[f"0:{FIELDS['atl03_ph_fields'].index(name)}:{name}"] = g[f"heights/{name}"][:]
        for i, name in enumerate(FIELDS["atl03_geo_fields"]):
            group = "geophys_corr" if name[:3] in ("tid", "geo", "dem", "dac") else "geolocation"
            data = g[f"{group}/{name}"][:]
            out[f"1:{i}:{name}"] = (data[:, 0] if data.ndim == 2 else data)[seg]
        for i, name in enumerate(FIELDS["atl03_corr_fields"]):
            out[f"4:{i}:{name}"] = g[f"geophys_corr/{name}"][:][seg]
        bt, st = g["bckgrd_atlas/delta_time"][:], g["geolocation/delta_time"][:]
        pointer, index = 0, []
        for t in st:            # SlideRule's x-series background pointer
            while pointer < len(bt) - 1 and bt[pointer + 1] <= t:
                pointer += 1
            index.append(pointer)
        for i, name in enumerate(FIELDS["atl03_bckgrd_fields"]):
            out[f"5:{i}:{name}"] = g[f"bckgrd_atlas/{name}"][:][np.array(index)][seg]
        first = np.cumsum(cnt) - cnt
    with h5py.File(path08) as f:
        g = f[beam]
        classified = set(zip(g["signal_photons/ph_segment_id"][:].tolist(),
                             g["signal_photons/classed_pc_indx"][:].tolist(), strict=True))
        beg, end = g["land_segments/segment_id_beg"][:], g["land_segments/segment_id_end"][:]
        land = np.full(len(seg), -1)
        for p in range(len(seg)):
            if (int(seg_id[p]), int(p - first[seg[p]] + 1)) in classified:
                hit = np.flatnonzero((beg <= seg_id[p]) & (seg_id[p] <= end))
                land[p] = hit[0] if hit.size else -1
        for i, name in enumerate(FIELDS["atl08_fields"]):
            data = g[f"land_segments/{name.rstrip('%')}"][:]
            values = data[np.maximum(land, 0)]
            values[land < 0] = np.frombuffer(b"\xff" * data.dtype.itemsize, dtype=data.dtype)[0]
            out[f"2:{i}:{name}"] = values
    return out


def test_photon_values_equal_independent_reads(granule):
    asset, directory, name = granule
    parms = Parms.from_dict({**BASE, **FIELDS})
    beams = read_beams(asset, name, parms)
    result = process_granule(asset, name, parms, "atl03s")
    assert result.error is None
    start = 0
    for beam in beams:
        ref = reference_photon_values(directory / name.replace("ATL03", "ATL08"), directory / name, beam.beam)
        conf = photon_confidence(beam.signal_conf_ph, parms.srt)
        extents = make_extents(beam, photon_mask(conf, beam.quality_ph, parms, beam.atl08_class), parms)
        p = extents.photon
        stop = start + len(p)
        for f in requested_fields(parms):
            key = column_key(f)
            got = result.ancillary[key][start:stop]
            assert got.dtype == ref[key].dtype, key
            np.testing.assert_array_equal(got, ref[key][p], err_msg=key)
        start = stop
    assert start == len(result.photons)


def reference_line(x: np.ndarray, v: np.ndarray) -> float:
    """Least-squares line through (x, v) at x = 0, closed form (NaN values left out)."""
    ok = ~np.isnan(v)
    x, v = x[ok].astype(np.float64), v[ok]
    if not len(v):
        return np.nan
    n, sx, sxx, sv, sxv = len(v), x.sum(), (x * x).sum(), v.sum(), (x * v).sum()
    det = n * sxx - sx * sx
    return (sxx * sv - sx * sxv) / det if det > 0 else v.mean()


def test_extent_values_are_the_final_fit_at_the_centre(granule):
    asset, _, name = granule
    parms = Parms.from_dict({**BASE, **FIELDS})
    result = process_granule(asset, name, parms, "atl06")
    e, anc = result.elevations, result.ancillary
    assert len(e) > 100
    # a correct pairing of values and photons gives the fit's own outputs back
    np.testing.assert_allclose(anc["0:0:h_ph"], e["h_mean"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(anc["0:1:lat_ph"], e["latitude"])
    assert anc["1:2:surf_type"].dtype == np.int64 and anc["0:2:ph_id_channel"].dtype == np.int64
    assert np.isnan(anc["1:3:tide_ocean"]).any() and np.isfinite(anc["1:3:tide_ocean"]).any()   # fill = no value

    # straightforward per-extent reductions over the final photon set of each extent
    from icesat2sr.science.fit import FitSettings, fit_extents
    done = 0
    for beam in read_beams(asset, name, parms):
        conf = photon_confidence(beam.signal_conf_ph, parms.srt)
        ext = make_extents(beam, photon_mask(conf, beam.quality_ph, parms, beam.atl08_class), parms)
        fit = fit_extents(ext.offsets, ext.x_rel, beam.h_ph[ext.photon], ext.length, ext.velocity,
                          ext.background_rate, FitSettings(cnt=parms.cnt, ats=parms.ats))
        values = beam.extra["ancillary"]
        rows = np.flatnonzero(fit["fitted"])
        for k, r in enumerate(rows[:400]):
            lo, hi = ext.offsets[r], ext.offsets[r + 1]
            members = fit["in_fit"][lo:hi]
            photons, x = ext.photon[lo:hi][members], ext.x_rel[lo:hi][members]
            for f, v in values.items():
                got = anc[column_key(f)][done + k]
                vals = v[photons]
                if v.dtype.kind == "f" or f.interpolate:
                    fv = vals.astype(np.float64)
                    fv[~np.isfinite(fv) | (np.abs(fv) >= float(np.finfo(v.dtype).max))] = np.nan
                    np.testing.assert_allclose(got, reference_line(x, fv), rtol=1e-9, atol=1e-9, err_msg=f.name)
                else:
                    marker = np.frombuffer(b"\xff" * v.dtype.itemsize, dtype=v.dtype)[0]
                    have = [int(a) for a in vals if not (f.key == "atl08_fields" and a == marker)]
                    counts = Counter(have)
                    best = min(counts, key=lambda a: (-counts[a], a)) if counts else None
                    assert best is None or got == best, f.name
        done += len(rows)
    assert done == len(e)


def test_ancillary_fields_do_not_change_the_elevations(granule):
    asset, _, name = granule
    plain = process_granule(asset, name, Parms.from_dict(BASE), "atl06")
    with_fields = process_granule(asset, name, Parms.from_dict({**BASE, **FIELDS}), "atl06")
    np.testing.assert_array_equal(plain.elevations, with_fields.elevations)


def test_a_missing_field_is_an_error_naming_it(granule):
    asset, _, name = granule
    for key, field in (("atl03_geo_fields", "no_such_thing"), ("atl08_fields", "canopy/nope%"),
                       ("atl03_bckgrd_fields", "nope")):
        result = process_granule(asset, name, Parms.from_dict({**BASE, key: [field]}), "atl06")
        assert result.error is not None and f"'{field}'" in result.error[1] and key in result.error[1]


def test_results_with_ancillary_survive_the_lambda_format(granule):
    asset, _, name = granule
    for kind in ("atl06", "atl03s"):
        result = process_granule(asset, name, Parms.from_dict({**BASE, **FIELDS}), kind)
        back = unpack(pack(result))
        assert list(back.ancillary) == list(result.ancillary)
        for key, values in result.ancillary.items():
            assert back.ancillary[key].dtype == values.dtype
            np.testing.assert_array_equal(back.ancillary[key], values)


def test_cli_files_carry_the_ancillary_columns(granule, tmp_path):
    import json

    import pandas as pd

    from icesat2sr.cli import main as cli

    asset, directory, name = granule
    parms = {**BASE, "beams": ["gt1l"], "atl08_fields": ["canopy/h_canopy", "h_dif_ref%"],
             "atl03_geo_fields": ["dem_h"]}
    expected = process_granule(asset, name, Parms.from_dict(parms), "atl06").ancillary
    for ext in ("h5", "csv", "parquet"):
        out = tmp_path / f"out.{ext}"
        assert cli(["atl06", name, "--path", str(directory), "--parms", json.dumps(parms), "-o", str(out), "-q",
                    "--workers", "1"]) == 0
        if ext == "h5":
            with h5py.File(out) as f:
                got = {n: f[n][:] for n in ("canopy/h_canopy", "h_dif_ref%", "dem_h")}
        else:
            frame = pd.read_csv(out) if ext == "csv" else pd.read_parquet(out)
            got = {n: frame[n].to_numpy() for n in ("canopy/h_canopy", "h_dif_ref%", "dem_h")}
        for key, values in expected.items():   # rows are time-sorted in files: compare sorted values
            ours = np.sort(got[key.split(":", 2)[2]])
            np.testing.assert_allclose(ours, np.sort(values), rtol=1e-9, equal_nan=True, err_msg=f"{ext} {key}")


def test_phoreal_rows_carry_each_fields_extent_value(granule, synth_dir):
    """atl08 (PhoREAL) with every family: per extent, SlideRule's rule over the extent's photons
    (the most frequent value; ``name%``: the mean) of values read here independently (h5py); the
    vegetation rows are those without fields; the values survive the Lambda format."""
    from ..science.reference_ancillary import mean, nearest

    asset, _, name = granule
    plain = {**BASE, "len": 100.0, "res": 100.0, "phoreal": {}}
    parms = Parms.from_dict({**plain, **FIELDS, "atl08_fields": [*FIELDS["atl08_fields"], "segment_landcover%"]})
    result = process_granule(asset, name, parms, "atl08")
    assert result.error is None and len(result.vegetation) > 50
    assert list(result.ancillary) == [column_key(f) for f in requested_fields(parms)]
    np.testing.assert_array_equal(result.vegetation, process_granule(asset, name, Parms.from_dict(plain),
                                                                     "atl08").vegetation)
    done = 0
    for beam in read_beams(asset, name, parms):
        reference = reference_photon_values(synth_dir / name.replace("ATL03", "ATL08"), synth_dir / name, beam.beam)
        reference["2:4:segment_landcover%"] = reference["2:1:segment_landcover"]
        conf = photon_confidence(beam.signal_conf_ph, parms.srt)
        ext = make_extents(beam, photon_mask(conf, beam.quality_ph, parms, beam.atl08_class), parms)
        rows = np.flatnonzero(np.diff(ext.offsets) > 0)
        for k, r in enumerate(rows):
            photons = ext.photon[ext.offsets[r]:ext.offsets[r + 1]]
            for f in requested_fields(parms):
                values = reference[column_key(f)][photons]
                floats = values.dtype.kind == "f"
                members = [float(v) if floats else int(v) for v in values]
                want = mean(members, floats) if f.interpolate else nearest(members, floats)
                got = result.ancillary[column_key(f)][done + k]
                assert got == want or (np.isnan(got) and np.isnan(want)), (f.name, r)
        done += len(rows)
    assert done == len(result.vegetation)
    back = unpack(pack(result))
    for key, values in result.ancillary.items():
        assert back.ancillary[key].dtype == values.dtype
        np.testing.assert_array_equal(back.ancillary[key], values)
