"""Shared fixtures: synthetic granules (written once per session) and the real clips."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from icesat2sr.synth import GranuleSpec, write_granule

REAL = Path(__file__).resolve().parent / "data" / "real"  # see its README.md for provenance

# Real granule names of the clips (SPEC §1.1 naming; from their METADATA / the source README)
HARMONY_NAME = "ATL03_20181014002445_02350104_006_02.h5"
VEGR_NAME = "ATL03_20220401221822_01501506_005_01.h5"


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """Two small synthetic granules with ATL08 (different orientation, place and time)."""
    d = tmp_path_factory.mktemp("synth")
    write_granule(d, GranuleSpec(rgt=1234, cycle=5, region=12, segments=600, sc_orient=0, seed=1, atl08=True,
                                 start=dt.datetime(2021, 6, 1, 12, 0, 0, tzinfo=dt.UTC)))
    write_granule(d, GranuleSpec(rgt=567, cycle=9, region=10, segments=400, sc_orient=1, seed=2, atl08=True,
                                 lat0=-65.0, lon0=100.0, heading_deg=190.0,
                                 start=dt.datetime(2020, 11, 2, 3, 4, 5, tzinfo=dt.UTC)))
    return d


FOREST = GranuleSpec(rgt=111, cycle=7, region=12, segments=1200, sc_orient=1, seed=11, atl08=True, forest=True,
                     start=dt.datetime(2022, 7, 14, 9, 30, 0, tzinfo=dt.UTC))


@pytest.fixture(scope="session")
def forest_dir(tmp_path_factory) -> Path:
    """One synthetic granule with ATL08 over a forest of known stand heights (issue 14, PhoREAL)."""
    d = tmp_path_factory.mktemp("forest")
    write_granule(d, FOREST)
    return d


@pytest.fixture(scope="session")
def synth_names(synth_dir) -> list[str]:
    return sorted(p.name for p in synth_dir.glob("ATL03_*.h5"))


@pytest.fixture(scope="session")
def real_dir(tmp_path_factory) -> Path:
    """The real clips under their granule names (h5coro-readable versions)."""
    if not REAL.is_dir():
        pytest.fail(f"real test data not found at {REAL}")
    d = tmp_path_factory.mktemp("real")
    shutil.copy(REAL / "harmony-trajectory-subsetter" / "ATL03_gt1l.h5", d / HARMONY_NAME)
    vegr = REAL / "ICESat2VegR" / "repacked_single_deflate"
    shutil.copy(vegr / "atl03_clip.h5", d / VEGR_NAME)
    shutil.copy(vegr / "atl08_clip.h5", d / VEGR_NAME.replace("ATL03", "ATL08"))
    return d


@pytest.fixture(scope="session")
def places(tmp_path_factory) -> Path:
    """Discovery's synthetic granules at known places and times (see discovery_data.py)."""
    from .discovery import discovery_data

    return discovery_data.places(tmp_path_factory)


@pytest.fixture(scope="session")
def asset(places):
    """The ``atlas-local`` asset over :func:`places`."""
    from icesat2sr.granules.assets import resolve_asset

    return resolve_asset("atlas-local", str(places))
