"""Compare our ATL06-SR with SlideRule's own C++ on one granule, column by column, and time both.

    .venv/bin/python tools/compare_sliderule.py GRANULE.h5 [PARMS_JSON ...]

Runs ``run_atl06.sh`` (SlideRule's server code, built at ``SR_ROOT``; see
/work/shared/tools/sliderule-cpp/README.md) and our ``process_granule`` with the same parameters,
sorts both by ``extent_id`` and reports, per parameter set, the rows of each, the columns that
differ (bit for bit: CSV doubles are written with 17 digits) and both processing times (SlideRule:
reader start to last record; ours: ``process_granule``, imports excluded). Without arguments
after the granule, the parameter sets of issue 11 are used; ``{}`` there means our defaults, made
explicit for SlideRule (its own defaults differ: docs/decisions.md, "Defaults are the seed's").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from icesat2sr.engine import process_granule
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms

OURS_DEFAULTS = {"srt": 3, "cnf": 0, "quality_ph": [0], "len": 40.0, "res": 20.0, "ats": 20.0, "cnt": 10, "maxi": 5,
                 "H_min_win": 3.0, "sigma_r_max": 5.0}
SETS = [{"srt": 3, "cnf": 1, "ats": 20.0, "cnt": 10, "len": 40.0, "res": 20.0, "maxi": 6},
        {}, {"cnf": 4, "maxi": 1}, {"len": 20.0, "res": 10.0, "ats": 5.0}, {"dist_in_seg": True, "len": 2, "res": 1}]
COLUMNS = ("extent_id", "segment_id", "n_fit_photons", "pflags", "rgt", "cycle", "region", "spot", "gt", "time",
           "latitude", "longitude", "h_mean", "dh_fit_dx", "x_atc", "y_atc", "w_surface_window_final", "rms_misfit",
           "h_sigma")
SCRIPT = Path(os.environ.get("SR_TOOLS", "/work/shared/tools/sliderule-cpp")) / "run_atl06.sh"


def compare(granule: Path, parms: dict) -> dict:
    """Run SlideRule's C++ and ours on ``granule`` with ``parms``: rows, differing columns and processing seconds."""
    explicit = {**OURS_DEFAULTS, **parms}
    with tempfile.TemporaryDirectory() as tmp:
        csv, timing = Path(tmp) / "sr.csv", Path(tmp) / "timing.json"
        env = {**os.environ, "SR_ROOT": os.environ.get("SR_ROOT", "/work/sliderule-build")}
        subprocess.run(["bash", str(SCRIPT), str(granule), json.dumps(explicit), str(csv), str(timing)], check=True,
                       capture_output=True, env=env)
        theirs = pd.read_csv(csv, dtype={"extent_id": np.uint64}).sort_values("extent_id").reset_index(drop=True)
        seconds = json.loads(timing.read_text())["seconds_processing"]
    started = time.perf_counter()
    result = process_granule(resolve_asset("atlas-local", str(granule.parent)), granule.name, Parms.from_dict(parms))
    ours_s = time.perf_counter() - started
    rows = np.sort(result.elevations, order="extent_id")
    out = {"parms": parms, "rows_sliderule": len(theirs), "rows_ours": len(rows), "sliderule_s": seconds,
           "ours_s": ours_s, "differing_columns": []}
    if len(theirs) != len(rows):
        out["differing_columns"] = ["(row count)"]
        return out
    for name in COLUMNS:
        mine = rows[name]
        other = theirs[name].to_numpy().astype(mine.dtype)
        if not np.array_equal(mine, other, equal_nan=mine.dtype.kind == "f"):
            out["differing_columns"].append(name)
    return out


def main(argv: list[str]) -> int:
    """Compare every parameter set of ``argv[1:]`` (default :data:`SETS`) on the granule ``argv[0]``."""
    granule = Path(argv[0]).resolve()
    sets = [json.loads(a) for a in argv[1:]] or SETS
    for parms in sets:
        r = compare(granule, parms)
        same = "bit-identical" if not r["differing_columns"] else f"DIFFER: {', '.join(r['differing_columns'])}"
        print(f"{json.dumps(parms):60s} rows {r['rows_ours']:>7} / {r['rows_sliderule']:>7}  {same}; "
              f"processing: ours {r['ours_s']:.2f} s, SlideRule {r['sliderule_s']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
