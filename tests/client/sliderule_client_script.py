"""Drive the UNMODIFIED official sliderule client against ``icesat2sr serve``.

Run with a client environment's python (``.venv-sr4/bin/python`` = sliderule 4.20.0,
``.venv-sr5/bin/python`` = 5.7.0); it imports nothing from icesat2sr. Usage::

    python sliderule_client_script.py URL REQUEST.json OUTDIR

REQUEST.json: ``{"names": [...], "atl06": {...}, "atl03": {...}, "atl08": {...}, "atl08_discovered": {...},
"missing": "<granule name>"}``.
Writes GeoParquet files and ``summary.json`` to OUTDIR for the test to compare with the CLI.
"""

import json
import logging
import sys
from pathlib import Path

import sliderule
from sliderule import icesat2


class Alerts(logging.Handler):
    """Collects what the client logs for exceptrec/eventrec records."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append([record.levelname, record.getMessage()])


def main(url, request_file, outdir):
    request = json.loads(Path(request_file).read_text())
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    names, p06, p03 = request["names"], request["atl06"], request["atl03"]
    alerts = Alerts()
    for name in ("sliderule", "sliderule.session"):
        logging.getLogger(name).addHandler(alerts)
        logging.getLogger(name).setLevel(logging.DEBUG)
    summary = {"client": sliderule.version.full_version}

    summary["init"] = sliderule.init(url, organization=None, rethrow=True)
    summary["server_version"] = sliderule.get_version()["server"]["version"]
    summary["gps2utc"] = sliderule.gps2utc(1235331234)

    icesat2.atl06p(dict(p06), resources=names).to_parquet(out / "atl06p.parquet")
    icesat2.atl06(dict(p06), names[0]).to_parquet(out / "atl06.parquet")
    icesat2.atl03sp(dict(p03), resources=names).to_parquet(out / "atl03sp.parquet")
    icesat2.atl03s(dict(p03), names[0]).to_parquet(out / "atl03s.parquet")

    # record callbacks: every atl06rec goes to the callback instead of into the frame
    batches = []
    frame = icesat2.atl06p(dict(p06), resources=names,
                           callbacks={"atl06rec": lambda rec, session: batches.append(
                               [e["h_mean"] for e in rec["elevation"]])})
    summary["callback_frame_rows"] = len(frame)
    summary["callback_batches"] = [len(b) for b in batches]
    summary["callback_h_mean"] = sorted(h for b in batches for h in b)

    # a missing granule among good ones: an exceptrec (logged), the others' rows still arrive
    errors = []
    with_missing = icesat2.atl06p(dict(p06), resources=[request["missing"], *names],
                                  callbacks={"exceptrec": lambda rec, session: errors.append(
                                      [rec["code"], rec["level"], rec["text"]])})
    summary["missing_rows"] = len(with_missing)
    summary["missing_errors"] = errors

    # PhoREAL: with waveforms, and with only {"phoreal": {"binsize": 1.0}} (the server's defaults otherwise);
    # the names are every granule of the server (a query without any filter is refused)
    icesat2.atl08p(dict(request["atl08"]), resources=names).to_parquet(out / "atl08p.parquet")
    icesat2.atl08p(dict(request["atl08_discovered"]), resources=names).to_parquet(out / "atl08p_discovered.parquet")

    # resources=None: the server finds the granules (here: by rgt)
    summary["discovered_rows"] = len(icesat2.atl06p({**p06, "rgt": request["rgt"]}))
    summary["log"] = alerts.messages
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:4])
