"""Synthetic granules at known places and times for the discovery, catalogue and CLI tests.

Written once per session (:func:`places`) and shared; tests that change a folder work on a copy
(:func:`copy_folder`). Each granule has 300 segments per beam (a 6 km track) and a low background
rate so that writing all of them takes a few seconds.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from icesat2sr.synth import GranuleSpec, granule_name, write_granule

SEGMENTS = 300


def _spec(rgt, cycle, region, lat0, lon0, heading, start, version=6, seed=0, atl08=False) -> GranuleSpec:
    return GranuleSpec(rgt=rgt, cycle=cycle, region=region, version=version, lat0=lat0, lon0=lon0,
                       heading_deg=heading, start=start, segments=SEGMENTS, seed=seed, atl08=atl08,
                       background_rate=2e5, sc_orient=seed % 2)


def _t(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


# key -> spec; the keys name the places the tests talk about
SPECS = {
    "mid": _spec(100, 10, 3, 40.0, -105.0, 0.0, _t(2020, 1, 1), seed=1, atl08=True),
    "mid_repeat": _spec(100, 11, 3, 40.0, -105.0, 0.0, _t(2020, 4, 1, 10), seed=2),
    "europe": _spec(200, 10, 5, 45.0, 10.0, 180.0, _t(2020, 1, 2, 5), version=5, seed=3),
    "north_pole": _spec(300, 10, 4, 89.98, 0.0, 0.0, _t(2020, 1, 3), seed=4),
    "dateline": _spec(400, 10, 8, -20.0, 179.97, 90.0, _t(2020, 1, 4), seed=5),
    "greenwich": _spec(500, 10, 8, -20.0, 0.0, 90.0, _t(2020, 1, 5), seed=6),
    "antarctic": _spec(600, 10, 11, -85.0, 45.0, 90.0, _t(2020, 1, 6), seed=7),
}
NAMES = {key: granule_name(spec) for key, spec in SPECS.items()}
JUNK = {  # files that are not ATL03 granules and must be ignored
    "notes.txt": b"not a granule",
    "ATL03_bad_name.h5": b"\x89HDF\r\n\x1a\n",
    "ATL06_20200101000000_01001003_006_01.h5": b"not read",
}
CORRUPT = "ATL03_20200107000000_07001008_006_01.h5"

_cache: dict[str, Path] = {}


def places(tmp_path_factory) -> Path:
    """The folder with every granule of :data:`SPECS`, an ATL08 companion and junk files."""
    if "places" not in _cache:
        d = tmp_path_factory.mktemp("places")
        for spec in SPECS.values():
            write_granule(d, spec)
        for name, data in JUNK.items():
            (d / name).write_bytes(data)
        sub = d / "subfolder"
        sub.mkdir()
        shutil.copy(d / NAMES["mid"], sub / NAMES["mid"])  # not in the flat layout: ignored
        _cache["places"] = d
    return _cache["places"]


def copy_folder(src: Path, dst: Path, keys=None, corrupt: bool = False, junk: bool = True) -> Path:
    """Copy some granules (default all) and the junk files of ``src`` into ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for key in SPECS if keys is None else keys:
        shutil.copy(src / NAMES[key], dst / NAMES[key])
    if junk:
        for name in JUNK:
            shutil.copy(src / name, dst / name)
    if corrupt:
        (dst / CORRUPT).write_bytes(os.urandom(4096))
    return dst
