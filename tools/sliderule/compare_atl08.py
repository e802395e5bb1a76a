"""Compare our PhoREAL with SlideRule's C++ on one granule (development aid, not part of the tests).

Run SlideRule first (shared/tools/sliderule-cpp, already built), then this with the same parameters::

    SR_ROOT=/work/sliderule-build bash run_atl08.sh DIR/ATL03_....h5 'PARMS' OUT/prefix
    .venv/bin/python tools/sliderule/compare_atl08.py DIR ATL03_....h5 'PARMS' OUT/prefix

It prints, per column of ``OUT/prefix_vegetation.csv`` (and ``_waveform.csv`` with
``send_waveform``), how many extents differ and examples. Expected differences are the departures
of docs/decisions.md, PhoREAL (e.g. ``canopy_h_metrics_19``).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd

from icesat2sr.engine import process_granule
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms


def main(directory: str, name: str, parms: str, prefix: str) -> int:
    """Compare our PhoREAL rows with SlideRule's CSVs at ``prefix``, printing what differs; 1 if the extents do."""
    result = process_granule(resolve_asset("atlas-local", directory), name, Parms.from_dict(json.loads(parms)), "atl08")
    if result.error:
        print(f"error: {result.error[1]}")
        return 1
    ours = np.sort(result.vegetation, order="extent_id")
    theirs = pd.read_csv(f"{prefix}_vegetation.csv").sort_values("extent_id")
    ids = theirs["extent_id"].to_numpy(np.uint64)
    print(f"extents: ours {len(ours)}, SlideRule {len(theirs)}, common {len(np.intersect1d(ours['extent_id'], ids))}")
    if len(ours) != len(theirs) or not np.array_equal(ours["extent_id"], ids):
        return 1
    same = 0
    for column in theirs.columns:
        if column.startswith("canopy_h_metrics_"):
            a = ours["canopy_h_metrics"][:, int(column.rsplit("_", 1)[1])]
        else:
            a = ours[column]
        b = theirs[column].to_numpy().astype(a.dtype)
        equal = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b
        if equal.all():
            same += 1
        else:
            print(f"  {column}: {int((~equal).sum())} differ, e.g. ours {a[~equal][:3]} SlideRule {b[~equal][:3]}")
    print(f"{same} of {len(theirs.columns)} columns identical on every extent")
    if result.waveforms is not None:
        waves = pd.read_csv(f"{prefix}_waveform.csv").sort_values("extent_id")
        at = np.concatenate(([0], np.cumsum(result.waveforms["num_bins"], dtype=np.int64)))
        mine = {int(e): result.waveform[at[i]:at[i + 1]] for i, e in enumerate(result.waveforms["extent_id"])}
        bins = [c for c in waves.columns if c.startswith("waveform_")]
        differ = sum(not np.array_equal(mine[int(e)], row[:n].astype(np.float32))
                     for e, n, row in zip(waves["extent_id"], waves["num_bins"], waves[bins].to_numpy(), strict=True))
        print(f"waveforms: {len(waves)}, {differ} differ")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
