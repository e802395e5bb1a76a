"""Ancillary fields through the official sliderule clients (4.20.0, 5.7.0, unmodified) and ``icesat2sr serve``.

Every family SlideRule's clients can name (``atl03_ph_fields``, ``atl03_geo_fields``,
``atl08_fields``, also with ``%`` and ``canopy/...`` names) goes through atl06p, atl08p and atl03sp, and
SlideRule's documented examples run unchanged; each frame equals the CLI's for the same request
(rows, columns, values, dtypes). ``atl03_corr_fields``/``atl03_bckgrd_fields`` (icesat2sr's
extension records) are ignored by these clients without failing the request.
"""

import json
from pathlib import Path

import geopandas
import pytest

from icesat2sr.cli import main as cli

from .test_sliderule_clients import ATL03, ATL06, CLIENTS, assert_same_rows, region, run_client, server_url  # noqa: F401

SCRIPT = Path(__file__).with_name("sliderule_ancillary_script.py")
GEO = ["solar_elevation", "dem_h", "surf_type", "ref_azimuth"]
PH = ["h_ph", "ph_id_channel", "ph_id_count"]
ATL08 = ["canopy/h_canopy", "segment_landcover", "h_dif_ref%", "rgt"]
DOC = {"srt": 0, "cnf": 4, "len": 40.0, "res": 20.0}   # SlideRule's ancillary_fields notebook
PHOREAL = {"srt": 0, "cnf": 0, "len": 100.0, "res": 100.0, "phoreal": {"binsize": 1.0}}

pytestmark = pytest.mark.client


def requests(names, poly):
    both = [names[1], names[0]]
    return {
        "atl06p_all": ("atl06p", both, {**ATL06, "atl03_geo_fields": GEO, "atl03_ph_fields": PH,
                                        "atl08_fields": ATL08}),
        "atl03sp_all": ("atl03sp", both, {**ATL03, "poly": poly, "atl03_geo_fields": GEO, "atl03_ph_fields": PH,
                                          "atl08_fields": ATL08}),
        "doc_atl06p": ("atl06p", both, {**DOC, "atl03_geo_fields": ["ref_azimuth", "ref_elev"]}),
        "doc_atl03sp": ("atl03sp", both, {**DOC, "poly": poly, "atl03_geo_fields": ["ref_azimuth", "ref_elev"],
                                          "atl03_ph_fields": ["ph_id_channel"]}),
        "doc_atl03s": ("atl03s", both[:1], {**DOC, "poly": poly, "srt": 0, "cnf": 0,
                                           "atl03_ph_fields": ["ph_id_count"]}),
        "atl08p_all": ("atl08p", both, {**PHOREAL, "atl03_geo_fields": GEO, "atl03_ph_fields": PH,
                                        "atl08_fields": [*ATL08, "segment_landcover%"]}),
        "ours_only": ("atl06p", both, {**ATL06, "atl03_corr_fields": ["geoid"],
                                       "atl03_bckgrd_fields": ["bckgrd_counts"], "atl03_geo_fields": ["dac"]}),
    }


@pytest.fixture(scope="module")
def cases(synth_names, region):  # noqa: F811
    return requests(synth_names, region)


@pytest.fixture(scope="module")
def cli_frames(synth_dir, cases, tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-anc")
    out = {}
    for key, (api, names, parms) in cases.items():
        path = d / f"{key}.parquet"
        kind = api[:5] if api.startswith(("atl06", "atl08")) else "atl03s"
        assert cli([kind, *names, "--path", str(synth_dir), "--parms", json.dumps(parms), "-o", str(path), "-q",
                    "--workers", "1"]) == 0
        out[key] = geopandas.read_parquet(path)
    return out


@pytest.fixture(scope="module", params=list(CLIENTS))
def client_frames(request, server_url, cases, tmp_path_factory):  # noqa: F811
    spec = {key: {"api": api, "resources": names, "parms": parms} for key, (api, names, parms) in cases.items()}
    out = run_client(request.param, SCRIPT, server_url, spec, tmp_path_factory.mktemp(f"anc-{request.param}"))
    errors = json.loads((out / "errors.json").read_text())
    assert errors == {}
    return {key: geopandas.read_parquet(out / f"{key}.parquet") for key in cases}


def test_elevation_ancillary_columns_equal_the_cli(client_frames, cli_frames):
    client, ours = client_frames["atl06p_all"], cli_frames["atl06p_all"]
    assert_same_rows(client, ours)
    expected = {*GEO, *PH, *(f for f in ATL08 if f != "rgt"), "rgt_x", "rgt_y"}
    assert expected <= set(client.columns)
    assert client["h_ph"].dtype == "float64" and client["segment_landcover"].dtype == "int64"


def test_phoreal_ancillary_columns_equal_the_cli(client_frames, cli_frames):
    client, ours = client_frames["atl08p_all"], cli_frames["atl08p_all"]
    assert_same_rows(client.drop(columns="canopy_h_metrics"), ours.drop(columns="canopy_h_metrics"))
    clash = {"rgt", "solar_elevation"}          # also PhoREAL columns: the client's merge suffixes both
    expected = {*GEO, *PH, *ATL08, "segment_landcover%"} - clash | {f"{c}_{s}" for c in clash for s in "xy"}
    assert expected <= set(client.columns)
    assert client["h_ph"].dtype == "float64" and client["segment_landcover%"].dtype == "int64"


def test_photon_ancillary_columns_equal_the_cli(client_frames, cli_frames):
    client, ours = client_frames["atl03sp_all"], cli_frames["atl03sp_all"]
    assert_same_rows(client, ours, loose_dtype=("spot",))
    assert {*GEO, *PH, *ATL08} <= set(client.columns)
    assert str(client["ph_id_channel"].dtype) == "uint8" and str(client["segment_landcover"].dtype) == "int16"


@pytest.mark.parametrize("key", ["doc_atl06p", "doc_atl03sp", "doc_atl03s"])
def test_sliderule_documented_examples(client_frames, cli_frames, key):
    loose = () if key == "doc_atl06p" else ("spot",)
    assert_same_rows(client_frames[key], cli_frames[key], loose_dtype=loose)
    assert {"ref_azimuth", "ref_elev"} <= set(client_frames[key].columns) or "ph_id_count" in client_frames[key]


def test_extension_families_do_not_break_the_official_clients(client_frames, cli_frames):
    client, ours = client_frames["ours_only"], cli_frames["ours_only"]
    assert {"geoid", "bckgrd_counts", "dac"} <= set(ours.columns)
    assert "dac" in client.columns and not {"geoid", "bckgrd_counts"} & set(client.columns)
    assert_same_rows(client, ours)
