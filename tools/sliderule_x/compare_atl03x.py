"""Compare our atl03x frame with SlideRule's (tools/sliderule_x/run_atl03x.lua), column by column.

Development aid, not part of the tests (it needs SlideRule's C++ build):

    $SR_ROOT/install/bin/sliderule tools/sliderule_x/run_atl03x.lua DIR GRANULE 'PARMS' theirs.csv < /dev/null
    .venv/bin/python tools/sliderule_x/compare_atl03x.py DIR GRANULE 'PARMS' theirs.csv

Prints the row counts and, per column, the number of values that differ (exact comparison).
"""

import json
import sys

import numpy as np
import pandas as pd

from icesat2sr.engine import process_granule
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms


def main(folder: str, name: str, parms_json: str, reference: str) -> int:
    """Compare our atl03x frame with SlideRule's CSV ``reference``; 0 when every column is equal."""
    result = process_granule(resolve_asset("atlas-local", folder), name, Parms.from_dict(json.loads(parms_json)),
                             "atl03x")
    if result.error is not None:
        print("ours failed:", result.error)
        return 1
    ours, theirs = pd.DataFrame(result.frame), pd.read_csv(reference)
    print("rows ours", len(ours), "theirs", len(theirs))
    columns = [c for c in theirs.columns if c != "beam"]
    print("missing", set(columns) - set(ours.columns), "extra", set(ours.columns) - set(columns))
    n = min(len(ours), len(theirs))
    bad = 0
    for c in columns:
        if c not in ours:
            continue
        a = ours[c].to_numpy()[:n]
        b = theirs[c].to_numpy()[:n].astype(a.dtype)
        same = (a == b) | (np.isnan(a.astype(float)) & np.isnan(b.astype(float)))
        print(f"{c:25s} {ours[c].dtype!s:8s} differing values: {int((~same).sum())}")
        bad += int((~same).sum())
    return int(bad > 0 or len(ours) != len(theirs))


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
