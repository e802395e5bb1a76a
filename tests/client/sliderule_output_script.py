"""Drive the UNMODIFIED official sliderule client's ``output`` handling and ``sliderule.run``.

Run with a client environment's python (``.venv-sr4`` = 4.20.0, ``.venv-sr5`` = 5.7.0); it imports
nothing from icesat2sr. Usage::

    python sliderule_output_script.py URL CASES.json OUTDIR

CASES.json: ``{key: {"api": "atl06p" | "atl03sp" | "run:<endpoint>", "parms": {...}, "resources": [...],
"aoi": [...] | null}}``. For every case OUTDIR/summary.json gets what the call returned (type, rows,
columns, index name, attrs keys, or the path it returned); a frame returned by ``sliderule.run`` is
also saved as OUTDIR/<key>.parquet. Files the server streams back land where ``output.path`` says.
"""

import json
import sys
from pathlib import Path

import sliderule
from sliderule import icesat2


def describe(result) -> dict:
    if isinstance(result, str):
        return {"type": "str", "path": result}
    if result is None:
        return {"type": "None"}
    return {"type": type(result).__name__, "rows": len(result), "columns": [str(c) for c in result.columns],
            "index": result.index.name, "attrs": sorted(result.attrs)}


def main(url, cases_file, outdir):
    cases = json.loads(Path(cases_file).read_text())
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    sliderule.init(url, organization=None, rethrow=True)
    summary = {"client": sliderule.version.full_version}
    for key, case in cases.items():
        api, parms = case["api"], case["parms"]
        if api.startswith("run:"):
            result = sliderule.run(api[4:], parms, case.get("aoi"), case.get("resources"))
            if result is not None and not isinstance(result, str):
                result.to_parquet(out / f"{key}.parquet")
        else:
            result = getattr(icesat2, api)(parms, resources=case["resources"])
        summary[key] = describe(result)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:4])
