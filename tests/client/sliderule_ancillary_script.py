"""Drive the UNMODIFIED official sliderule client with ancillary-field requests.

Run with a client environment's python; it imports nothing from icesat2sr. Usage::

    python sliderule_ancillary_script.py URL REQUESTS.json OUTDIR

REQUESTS.json: ``{"<key>": {"api": "atl06p" | "atl03sp" | "atl03s", "parms": {...}, "resources": [...]}}``;
each frame is written to ``OUTDIR/<key>.parquet``, errors to ``OUTDIR/errors.json``.
"""

import json
import sys
from pathlib import Path

import sliderule
from sliderule import icesat2


def main(url, request_file, outdir):
    requests = json.loads(Path(request_file).read_text())
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    sliderule.init(url, organization=None, rethrow=True)
    errors = {}
    for key, rq in requests.items():
        try:
            if rq["api"] == "atl03s":
                gdf = icesat2.atl03s(dict(rq["parms"]), rq["resources"][0])
            else:
                gdf = getattr(icesat2, rq["api"])(dict(rq["parms"]), resources=rq["resources"])
            gdf.to_parquet(out / f"{key}.parquet")
        except Exception as exc:  # reported to the test
            errors[key] = f"{type(exc).__name__}: {exc}"
    (out / "errors.json").write_text(json.dumps(errors))


if __name__ == "__main__":
    main(*sys.argv[1:4])
