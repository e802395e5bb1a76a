"""The other commands: ``synth``, ``demo``, ``bench``, ``serve`` and ``plot``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .options import UsageError, positive
from .process import print_summary


# ---------------------------------------------------------------------- synth
def add_synth(sub) -> None:
    """Register ``synth``: synthetic granules with a known truth."""
    p = sub.add_parser("synth", help="write synthetic ATL03 (and ATL08) granules with a known truth")
    p.add_argument("directory", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--atl08", action="store_true", help="also write the matching ATL08 granules")
    p.add_argument("--segments", type=int, default=2000, help="20 m segments per beam")
    p.add_argument("--granules", type=int, default=1)
    p.set_defaults(run=_run_synth)


def _run_synth(args) -> int:
    from ..synth import synthesize

    if args.segments < 1 or args.granules < 1:
        raise UsageError("--segments and --granules must be positive")
    args.directory.mkdir(parents=True, exist_ok=True)
    for path in synthesize(args.directory, seed=args.seed, segments=args.segments, atl08=args.atl08,
                           granules=args.granules):
        print(path)
    return 0


# ---------------------------------------------------------------------- demo
def add_demo(sub) -> None:
    """Register ``demo``: synthesis, ATL06-SR and PhoREAL, files and plots in one run."""
    p = sub.add_parser("demo", help="the whole story on synthetic granules: synth -> ATL06-SR and PhoREAL -> "
                                    "GeoParquet + plots")
    p.add_argument("--out", type=Path, default=Path("demo-output"))
    p.add_argument("--granules", type=int, default=3)
    p.add_argument("--segments", type=int, default=3000)
    p.add_argument("--seed", type=int, default=2024)
    p.set_defaults(run=_run_demo)


DEMO_PARMS = {"srt": 3, "cnf": 1, "ats": 20.0, "cnt": 10, "len": 40.0, "res": 20.0, "maxi": 6}  # seed §2.5
DEMO_VEGETATION = {"srt": 0, "len": 100.0, "res": 100.0, "phoreal": {"binsize": 1.0, "geoloc": "center"}}


def _run_demo(args) -> int:
    from ..client import icesat2
    from ..client.plot import plot
    from ..formats.frames import write
    from ..synth import synthesize

    data = args.out / "granules"
    data.mkdir(parents=True, exist_ok=True)
    names = sorted({p.name for p in data.glob("ATL03_*.h5")})
    if not names:
        print(f"synthesising {args.granules} granules in {data} ...")
        synthesize(data, seed=args.seed, segments=args.segments, atl08=True, granules=args.granules)
    started = time.perf_counter()   # the processing, its file and plot: not the synthesis
    icesat2.init(path=str(data))  # the embedded engine: this machine, no server, no AWS
    print(f"icesat2.atl06p on the granules of {data} with the seed's recommended parameters {DEMO_PARMS}")
    gdf = icesat2.atl06p(dict(DEMO_PARMS), progress=sys.stderr.isatty())  # resources=None: discovery
    for granule, reason in gdf.attrs.get("failed", {}).items():
        print(f"  {granule}: failed: {reason}")
    output = args.out / "atl06.parquet"
    write(gdf, output, dict(DEMO_PARMS))
    picture = args.out / "atl06.png"
    plot(gdf, picture, title="icesat2sr demo: ATL06-SR on synthetic granules")
    print_summary(gdf, "atl06", output, time.perf_counter() - started)
    print(f"plot -> {picture}")
    _demo_vegetation(args)
    return 0


def _demo_vegetation(args) -> None:
    """PhoREAL over a synthetic forest of known stand heights: GeoParquet and a vegetation panel."""
    import numpy as np

    from ..client import icesat2
    from ..client.plot import plot_vegetation
    from ..formats.frames import write
    from ..request.names import BEAMS
    from ..synth import GranuleSpec, canopy_truth, granule_name, read_spec, write_granule

    forest = args.out / "forest"
    spec = GranuleSpec(segments=max(args.segments, 600), seed=args.seed, forest=True, sc_orient=0)
    if not (forest / granule_name(spec)).exists():
        print(f"synthesising a forest granule in {forest} ...")
        write_granule(forest, spec)
    spec = read_spec(forest / granule_name(spec))
    started = time.perf_counter()
    icesat2.init(path=str(forest))
    print(f"icesat2.atl08p (PhoREAL) on the forest with {DEMO_VEGETATION}")
    gdf = icesat2.atl08p(json.loads(json.dumps(DEMO_VEGETATION)), resources=[granule_name(spec)], progress=False)
    output, picture = args.out / "atl08.parquet", args.out / "atl08.png"
    write(gdf, output, DEMO_VEGETATION)
    x = gdf["x_atc"].to_numpy(np.float64)
    beams = np.array(BEAMS)[gdf["gt"].to_numpy() // 10 - 1]
    truth = np.full(len(gdf), np.nan)
    for b in BEAMS:   # the forest's 98th percentile of canopy relief over each extent's 100 m
        m = beams == b
        truth[m] = canopy_truth(x[m] - 50.0, x[m] + 50.0, spec, b, np.array([98.0]))[:, 0]
    plot_vegetation(gdf, picture, title="icesat2sr demo: PhoREAL over a synthetic forest", truth=truth)
    print_summary(gdf, "atl08", output, time.perf_counter() - started)
    error = (gdf["h_canopy"].to_numpy() - truth)[np.isfinite(truth) & (gdf["veg_ph_count"].to_numpy() > 50)]
    if error.size:
        print(f"h_canopy - truth (98th percentile of the stands' canopy relief), {error.size} forest extents: "
              f"median {np.median(error):+.2f} m, 95 % within {np.percentile(np.abs(error), 95):.2f} m")
    print(f"plot -> {picture}")


# ---------------------------------------------------------------------- bench
def add_bench(sub) -> None:
    """Register ``bench``: the speed and memory figures of ``make bench``."""
    p = sub.add_parser("bench", help="speed, peak memory and the ratios of issues 3 and 11, in one run")
    p.add_argument("--out", type=Path, default=Path("bench-output"), help="folder for bench.json")
    p.add_argument("--segments", type=int, default=8300, help="segments per beam of the bench granule (~5 M photons)")
    p.add_argument("--full", action="store_true", help="also a full-size granule (140,000 segments per beam)")
    p.add_argument("--full-segments", type=int, default=None, help="segments per beam of the full-size granule")
    p.set_defaults(run=_run_bench)


def _run_bench(args) -> int:
    from ..bench import cache_dir, report, run

    full = args.full_segments or (140_000 if args.full else None)
    if args.segments < 1 or (full is not None and full < 1):
        raise UsageError("--segments and --full-segments must be positive")
    print(f"granules: {cache_dir()} (written once)", file=sys.stderr)
    print(report(run(args.out, args.segments, full)))
    print(f"figures: {args.out / 'bench.json'}")
    return 0


# ---------------------------------------------------------------------- serve
_SERVE_LIMITS = [   # flag, Limits field, type, metavar, help
    ("--max-processing", "max_processing", int, "N", "processing requests at once; more get 503 + Retry-After"),
    ("--max-connections", "max_connections", int, "N", "open connections; more get 503"),
    ("--max-body", "max_body", int, "BYTES", "largest request body; larger get 413"),
    ("--header-timeout", "header_timeout_s", float, "S", "seconds to send a request head"),
    ("--body-timeout", "body_timeout_s", float, "S", "seconds to send a request body"),
    ("--send-timeout", "send_timeout_s", float, "S", "seconds a client may take to accept a chunk of a stream"),
    ("--keepalive-timeout", "keepalive_s", float, "S", "seconds an idle connection is kept open"),
    ("--backlog", "backlog", int, "N", "listen backlog"),
    ("--shutdown-timeout", "shutdown_s", float, "S", "on SIGTERM, seconds open requests get before they are cancelled"),
]


def add_serve(sub) -> None:
    """Register ``serve``: the local SlideRule-compatible server and its limits."""
    from ..service.limits import DEFAULT_GRANULE_TIMEOUT_S, DEFAULT_MAX_RESOURCES, Limits

    p = sub.add_parser("serve", help="a local SlideRule-compatible server (the official sliderule client works)")
    p.add_argument("--path", required=True, help="data folder of the granules (asset atlas-local)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9081, help="0 picks a free port (printed)")
    p.add_argument("--workers", type=positive(int, "processes"), default=None,
                   help="processes per request (default: all cores)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    p.add_argument("--scratch", default=None, metavar="DIR",
                   help="folder for output files while they are written (default: a private temporary folder); "
                        "a request's output.path is the client's, never written here")
    p.add_argument("--s3-output", default=None, metavar="s3://BUCKET/PREFIX/",
                   help="accept output.path under this S3 prefix: files are uploaded (boto3 credentials), "
                        "not streamed back")
    lim = p.add_argument_group("limits (what a public deployment needs; the defaults suit one machine)")
    lim.add_argument("--max-resources", type=int, default=DEFAULT_MAX_RESOURCES, metavar="N",
                     help="granules one request may name or discover (default %(default)s)")
    lim.add_argument("--granule-timeout", type=positive(float, "seconds"), default=DEFAULT_GRANULE_TIMEOUT_S,
                     metavar="SECONDS", help="stop a granule that takes longer; a request's node_timeout may "
                                             "shorten it (default %(default)g)")
    for flag, field, kind, metavar, text in _SERVE_LIMITS:
        lim.add_argument(flag, dest=field, type=kind, default=getattr(Limits(), field), metavar=metavar,
                         help=f"{text} (default %(default)s)")
    p.set_defaults(run=_run_serve)


def _run_serve(args) -> int:
    import logging

    from ..service.routes import Config
    from ..service.server import Limits, serve

    if not Path(args.path).is_dir():
        raise UsageError(f"data folder {args.path} does not exist")
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be 0..65535")
    if args.max_resources < 1:
        raise UsageError("--max-resources must be positive")
    try:
        limits = Limits(**{field: getattr(args, field) for _, field, *_ in _SERVE_LIMITS})
    except ValueError as exc:
        raise UsageError(f"serve limits: {exc}") from None
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s")
    if args.s3_output is not None and not (args.s3_output.startswith("s3://") and args.s3_output.endswith("/")):
        raise UsageError("--s3-output must look like s3://bucket/prefix/")
    if args.scratch is not None and not Path(args.scratch).is_dir():
        raise UsageError(f"scratch folder {args.scratch} does not exist")
    config = Config(path=args.path, workers=args.workers, max_resources=args.max_resources, scratch=args.scratch,
                    remote_output=args.s3_output, granule_timeout=args.granule_timeout)
    try:
        serve(config, args.host, args.port, limits, access_log=args.verbose)
    except OSError as exc:   # the address is taken or cannot be bound
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0


# ---------------------------------------------------------------------- plot
def add_plot(sub) -> None:
    """Register ``plot``: a PNG of a result file."""
    p = sub.add_parser("plot", help="PNG of a result: along-track elevation per beam and a map")
    p.add_argument("result", type=Path, help="a GeoParquet result (atl06 / atl03s output)")
    p.add_argument("-o", "--output", required=True, type=Path, help="output .png")
    p.add_argument("--title", default=None)
    p.set_defaults(run=_run_plot)


def _run_plot(args) -> int:
    from ..client.plot import plot_file

    if not args.result.is_file():
        raise UsageError(f"result file {args.result} does not exist")
    if args.output.suffix.lower() != ".png":
        raise UsageError(f"output {args.output} must end in .png")
    plot_file(args.result, args.output, title=args.title)
    print(args.output)
    return 0


