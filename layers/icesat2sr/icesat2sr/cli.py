"""The ``icesat2sr`` command.

Bad input exits with status 2 and one stderr line starting ``error:`` (no traceback), and never
writes the output file. Unexpected failures exit 1 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from .request.errors import Icesat2srError, ParameterError, ServiceError, WriteError
from .request.output import FORMATS as _OUTPUT_FORMATS

FORMATS = (*_OUTPUT_FORMATS, "h5")

EXIT_BAD_INPUT = 2
GRANULE_TIMEOUT_S = 1800.0   # per granule; a full ATL03 granule takes well under a minute per core


class UsageError(Icesat2srError):
    """Bad command-line input (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise UsageError(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``icesat2sr`` console script."""
    parser = _build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "run", None):
            parser.print_help()
            return EXIT_BAD_INPUT
        return args.run(args) or 0
    except (ServiceError, WriteError) as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except (Icesat2srError, ValueError) as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        print(f"error: internal failure ({type(exc).__name__}: {_one_line(exc)}); "
              "rerun with --debug for details", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="icesat2sr", description="SlideRule ATL06-SR processing of ICESat-2 ATL03 granules")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(parser_class=_Parser, metavar="COMMAND")
    _add_synth(sub)
    for kind in ("atl06", "atl03s", "atl08"):
        _add_process(sub, kind)
    for kind in ("atl06p", "atl03sp", "atl08p"):
        _add_discovered(sub, kind)
    _add_atl03x(sub)
    _add_index(sub)
    _add_demo(sub)
    _add_bench(sub)
    _add_serve(sub)
    _add_plot(sub)
    return parser


# ---------------------------------------------------------------------- synth
def _add_synth(sub) -> None:
    p = sub.add_parser("synth", help="write synthetic ATL03 (and ATL08) granules with a known truth")
    p.add_argument("directory", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--atl08", action="store_true", help="also write the matching ATL08 granules")
    p.add_argument("--segments", type=int, default=2000, help="20 m segments per beam")
    p.add_argument("--granules", type=int, default=1)
    p.set_defaults(run=_run_synth)


def _run_synth(args) -> int:
    from .synth import synthesize

    if args.segments < 1 or args.granules < 1:
        raise UsageError("--segments and --granules must be positive")
    args.directory.mkdir(parents=True, exist_ok=True)
    for path in synthesize(args.directory, seed=args.seed, segments=args.segments, atl08=args.atl08,
                           granules=args.granules):
        print(path)
    return 0


# ---------------------------------------------------------------------- atl06 / atl03s / atl08
_WHAT = {"atl06": "ATL06-SR elevations", "atl03s": "photon extents",
         "atl08": "PhoREAL vegetation metrics (canopy heights; parms {\"phoreal\": {...}})"}


def _add_process(sub, kind: str) -> None:
    p = sub.add_parser(kind, help=f"{_WHAT[kind]} for named granules")
    p.add_argument("resources", nargs="+", metavar="RESOURCE", help="ATL03 granule file names")
    _add_request_options(p)
    p.set_defaults(run=_run_process, kind=kind)


def _add_request_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--path", help="data folder (asset atlas-local) or bucket/prefix (atlas-s3)")
    p.add_argument("--asset", default="atlas-local", help="atlas-local (default), atlas-s3 or nsidc-s3")
    p.add_argument("--parms", default=None, metavar="JSON|@FILE", help="request parameters")
    p.add_argument("--poly", default=None, metavar="GEOJSON", help="region: a GeoJSON file")
    p.add_argument("-o", "--output", required=True, type=Path,
                   help="output file: .parquet (GeoParquet), .feather, .csv or .h5")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="file format instead of the extension's (e.g. parquet: no geometry column)")
    p.add_argument("--workers", type=_positive(int, "processes"), default=None,
                   help="processes (default: all cores)")
    p.add_argument("--granule-timeout", type=_positive(float, "seconds"), default=GRANULE_TIMEOUT_S,
                   metavar="SECONDS", help=f"stop a granule that takes longer (default {GRANULE_TIMEOUT_S:g})")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")


def _positive(kind: type, unit: str):
    """argparse type: a positive finite number (``--workers 0`` is an error, not "the default")."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of {unit}, got {text!r}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive number of {unit}, got {text}")
        return value
    return parse


def request_parms(text: str | None, poly_file: str | None, asset: str):
    """Build :class:`Parms` from ``--parms`` (JSON text or ``@file``) and ``--poly``."""
    from .request.params import Parms
    from .request.polygon import region_from_geojson

    data: dict = {}
    if text:
        if text.startswith("@"):
            try:
                text = Path(text[1:]).read_text()
            except OSError as exc:
                raise ParameterError("parms", f"cannot read {text[1:]}: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ParameterError("parms", f"not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ParameterError("parms", "must be a JSON object")
    if poly_file:
        try:
            geojson = json.loads(Path(poly_file).read_text())
        except OSError as exc:
            raise ParameterError("poly", f"cannot read {poly_file}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ParameterError("poly", f"{poly_file} is not valid GeoJSON ({exc})") from None
        data["poly"] = region_from_geojson(geojson)
    data.setdefault("asset", asset)
    return Parms.from_dict(data)


def _run_process(args) -> int:
    from .pool import process_context, start_early

    start_early(process_context(["icesat2sr.batch"]))   # its imports overlap this process's checks
    from .formats.destination import check_destination
    from .formats.output import format_of
    from .granules.assets import check_resource_name, resolve_asset

    check_destination(args.output, fmt=args.format)
    fmt = args.format or format_of(args.output)
    parms = request_parms(args.parms, args.poly, args.asset)
    parms.for_kind(args.kind)
    asset = resolve_asset(args.asset, args.path)
    for name in args.resources:
        check_resource_name(name)
    check_destination(args.output, asset, args.resources, fmt=args.format)
    failed = stream_results(asset, list(dict.fromkeys(args.resources)), parms, args.kind, args.output, fmt,
                            quiet=args.quiet, workers=args.workers, timeout=args.granule_timeout, atomic=False)
    if failed:
        raise Icesat2srError("; ".join(r.error[1] for r in failed))
    return 0


def print_summary(gdf, kind: str, output: Path, elapsed: float) -> None:
    """Rows per beam, time span, elapsed time."""
    units = {"atl06": "elevations", "atl03s": "photons", "atl08": "vegetation extents", "atl03x": "rows"}
    what = units[kind.rstrip("p")]
    print(f"{len(gdf)} {what} -> {output} ({elapsed:.1f} s)")
    if len(gdf) == 0:
        return
    print(f"time span: {gdf.index.min()} .. {gdf.index.max()} UTC")
    if "gt" in gdf.columns:
        keys, label = ["gt"], "gt"
    elif "track" in gdf.columns:
        keys, label = ["track", "pair"], "track/pair"
    else:
        return
    height = next(h for h in ("h_mean", "h_canopy", "height") if h in gdf.columns)
    table = gdf.groupby(keys)[height].agg(["count", "median", "min", "max"])
    print(f"{label:>10} {'rows':>8} {'median_h':>10} {'min_h':>10} {'max_h':>10}")
    for key, row in table.iterrows():
        label_value = "/".join(str(k) for k in key) if isinstance(key, tuple) else str(key)
        print(f"{label_value:>10} {int(row['count']):>8} {row['median']:>10.2f} {row['min']:>10.2f} "
              f"{row['max']:>10.2f}")


# ---------------------------------------------------------------------- demo
def _add_demo(sub) -> None:
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
    from .client import icesat2
    from .client.plot import plot
    from .formats.frames import write
    from .synth import synthesize

    started = time.perf_counter()
    data = args.out / "granules"
    data.mkdir(parents=True, exist_ok=True)
    names = sorted({p.name for p in data.glob("ATL03_*.h5")})
    if not names:
        print(f"synthesising {args.granules} granules in {data} ...")
        synthesize(data, seed=args.seed, segments=args.segments, atl08=True, granules=args.granules)
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

    from .client import icesat2
    from .client.plot import plot_vegetation
    from .formats.frames import write
    from .request.names import BEAMS
    from .synth import GranuleSpec, canopy_truth, granule_name, read_spec, write_granule

    started = time.perf_counter()
    forest = args.out / "forest"
    spec = GranuleSpec(segments=max(args.segments, 600), seed=args.seed, forest=True, sc_orient=0)
    if not (forest / granule_name(spec)).exists():
        print(f"synthesising a forest granule in {forest} ...")
        write_granule(forest, spec)
    spec = read_spec(forest / granule_name(spec))
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
def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="speed, peak memory and the ratios of issues 3 and 11, in one run")
    p.add_argument("--out", type=Path, default=Path("bench-output"), help="folder for bench.json")
    p.add_argument("--segments", type=int, default=8300, help="segments per beam of the bench granule (~5 M photons)")
    p.add_argument("--full", action="store_true", help="also a full-size granule (140,000 segments per beam)")
    p.add_argument("--full-segments", type=int, default=None, help="segments per beam of the full-size granule")
    p.set_defaults(run=_run_bench)


def _run_bench(args) -> int:
    from .bench import cache_dir, report, run

    full = args.full_segments or (140_000 if args.full else None)
    if args.segments < 1 or (full is not None and full < 1):
        raise UsageError("--segments and --full-segments must be positive")
    print(f"granules: {cache_dir()} (written once)", file=sys.stderr)
    print(report(run(args.out, args.segments, full)))
    print(f"figures: {args.out / 'bench.json'}")
    return 0


# ---------------------------------------------------------------------- atl06p / atl03sp / index
def _add_discovered(sub, kind: str) -> None:
    engine_kind = {"atl06p": "atl06", "atl03sp": "atl03s", "atl08p": "atl08"}[kind]
    p = sub.add_parser(kind, help=f"{_WHAT[engine_kind]} for every granule the request selects (region, time, rgt...)")
    _add_request_options(p)
    p.set_defaults(run=_run_discovered, kind=engine_kind, resources=[])


def _add_atl03x(sub) -> None:
    p = sub.add_parser("atl03x", help="SlideRule's x-series photon frame (or its surface fit with a \"fit\" "
                                      "parameter) for named granules, or those the request selects")
    p.add_argument("resources", nargs="*", metavar="RESOURCE", help="ATL03 granule file names (none: discovery)")
    _add_request_options(p)
    p.set_defaults(run=_run_discovered, kind="atl03x")


def _run_discovered(args) -> int:
    """Discovery, then the process pool. Granules that fail are reported on stderr and left out;
    exit 0 when at least one granule succeeded (or none matched: an empty result is written),
    1 when every selected granule failed (nothing is written)."""
    from .discovery.find import find_granules
    from .formats.destination import check_destination
    from .formats.output import format_of
    from .granules.assets import check_resource_name, resolve_asset

    check_destination(args.output, fmt=args.format)
    fmt = args.format or format_of(args.output)
    parms = request_parms(args.parms, args.poly, args.asset)
    parms.for_kind(args.kind)
    asset = resolve_asset(args.asset, args.path)
    check_destination(args.output, asset, args.resources, fmt=args.format)
    started = time.perf_counter()
    if args.resources:
        names = [check_resource_name(r) for r in dict.fromkeys(args.resources)]
    else:
        names = find_granules(parms, asset)
    if not args.quiet and not args.resources:
        print(f"{len(names)} granule{'s' * (len(names) != 1)} selected ({time.perf_counter() - started:.1f} s)",
              file=sys.stderr)
    if args.kind == "atl03x":   # frames stream to the file, a granule at a time
        results = stream_frames(asset, list(names), parms, args.output, fmt, args.quiet)
    else:   # rows stream to the file, a chunk at a time
        results = stream_results(asset, list(names), parms, args.kind, args.output, fmt, quiet=args.quiet,
                                 workers=args.workers, timeout=args.granule_timeout, atomic=True)
    failed = sorted((r for r in results if r.error), key=lambda r: r.granule)
    for r in failed:
        print(f"failed: {r.error[1]}", file=sys.stderr)
    if names and len(failed) == len(names):
        print(f"error: all {len(names)} selected granules failed; nothing written", file=sys.stderr)
        return 1
    if not names:
        print(f"no granule matched the request; wrote an empty result to {args.output}", file=sys.stderr)
    elif failed:
        print(f"{len(failed)} of {len(names)} granules failed; the others' results are in {args.output}",
              file=sys.stderr)
    return 0


def stream_results(asset, names: list[str], parms, kind: str, output: Path, fmt: str, *, quiet: bool = False,
                   workers: int | None = None, timeout: float | None = None, atomic: bool) -> list:
    """Granules' results (atl06, atl03s or atl08) written to ``output`` as they are computed, in
    bounded memory.

    Each granule runs in a child process of its own (at most ``workers`` at a time, each on every
    core; ``timeout`` seconds at most), sending its partial results back chunk by chunk; the file
    holds each granule's rows in time order, granules in the given order, as a file written from
    whole results does (:class:`icesat2sr.formats.stream.OrderedOutput`). With ``atomic`` a granule
    that fails is left out (its rows wait in a spill file until it is done) and the file is
    written unless every granule failed; otherwise the first failure stops everything and nothing
    is written. Returns the failed granules' results.
    """

    from .batch import pooled, worker_count
    from .engine import Part, empty_result
    from .formats.destination import write_error
    from .formats.output import OutputWriter, preload
    from .formats.stream import OrderedOutput

    started = time.perf_counter()
    failed: dict = {}
    bar = None if quiet or not sys.stderr.isatty() else _granule_bar(len(names))
    summary = _Summary(kind)
    runs = pooled(asset, names, parms, kind, workers=worker_count(workers, len(names)), timeout=timeout, parts=True)
    threading.Thread(target=preload, args=(fmt,), daemon=True).start()   # while the granules start
    try:
        with OutputWriter(output, fmt, kind=kind, parms=parms.to_dict(), granules=names) as writer:
            out = OrderedOutput(writer, names, atomic=atomic, empty=lambda name: empty_result(name, parms, kind),
                                on_rows=summary.add)
            try:
                for item in runs:
                    if isinstance(item, Part):
                        out.part(item.result.granule, item.result, item.beam, item.horizon_ns, item.beams)
                        continue
                    if item.error is not None:
                        failed[item.granule] = item
                    out.end(item.granule, failed=item.error is not None)
                    if bar is not None:
                        bar.update(1)
                    if failed and not atomic:
                        break
                written = not failed or (atomic and len(failed) < len(names))
                if not written:
                    out.discard()
                    writer.abort()
                else:
                    out.close()
            except BaseException:
                out.discard()
                raise
    except OSError as exc:
        raise write_error(output, exc) from None
    finally:
        runs.close()
        if bar is not None:
            bar.close()
    if not quiet and written:
        summary.print(output, time.perf_counter() - started)
    return [failed[name] for name in names if name in failed]


def stream_frames(asset, names: list[str], parms, output: Path, fmt: str, quiet: bool) -> list:
    """x-series frames (``atl03x``) of granules written to ``output`` as they are computed, in
    bounded memory: granules one after the other, in the given order (each on every core), their
    rows beam after beam in frame order, as a file written whole holds them. A granule that fails
    is left out (its rows wait in a spill file until it is done); the file is written unless every
    granule failed. Returns the failed granules' results."""
    from .engine import iter_granule
    from .formats.destination import write_error
    from .formats.output import OutputWriter
    from .formats.stream import Spill, frame_rows

    started = time.perf_counter()
    failed: list = []
    bar = None if quiet or not sys.stderr.isatty() else _granule_bar(len(names))
    summary = _Summary("atl03x")
    try:
        with OutputWriter(output, fmt, kind="atl03x", parms=parms.to_dict(), granules=names) as writer:
            for name in names:
                spill = Spill(output)
                error = None
                for part in iter_granule(asset, name, parms, "atl03x"):
                    if part.result.error is not None:
                        error = part.result
                        break
                    if part.result.rows:
                        spill.add(writer.table(part.result))
                        summary.add(frame_rows(part.result))
                if bar is not None:
                    bar.update(1)
                if error is not None:
                    failed.append(error)
                    spill.drop()
                    continue
                for table in spill.tables():
                    writer.add_table(table)
            if names and len(failed) == len(names):
                writer.abort()
    except OSError as exc:
        raise write_error(output, exc) from None
    finally:
        if bar is not None:
            bar.close()
    if not quiet and not (names and len(failed) == len(names)):
        summary.print(output, time.perf_counter() - started)
    return failed


def _granule_bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="granule", desc="granules", leave=False)


_UNITS = {"atl06": "elevations", "atl03s": "photons", "atl08": "vegetation extents", "atl03x": "rows"}
_HEIGHT = {"atl06": "h_mean", "atl03s": "height", "atl08": "h_canopy", "atl03x": "height"}


class _Summary:
    """Row counts, time span and heights per beam, gathered as rows stream past."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.rows, self.t0, self.t1, self.per = 0, None, None, {}

    def add(self, rows) -> None:
        import numpy as np

        self.rows += len(rows)
        t = rows.time_ns
        self.t0 = t.min() if self.t0 is None else min(self.t0, t.min())
        self.t1 = t.max() if self.t1 is None else max(self.t1, t.max())
        key = self._keys(rows.columns)
        height = rows.columns[_HEIGHT[self.kind]].astype(np.float64)
        for k in np.unique(key):
            h = height[key == k]
            n, total, lo, hi = self.per.get(int(k), (0, 0.0, np.inf, -np.inf))
            h = h[np.isfinite(h)]
            if len(h):
                total, lo, hi = total + h.sum(), min(lo, h.min()), max(hi, h.max())
            self.per[int(k)] = (n + len(h), total, lo, hi)

    def _keys(self, columns: dict):
        import numpy as np

        if self.kind in ("atl03s", "atl03x"):
            return columns["track"].astype(np.int64) * 2 + columns["pair"]
        if "gt" not in columns:   # compact elevations carry no beam
            return np.zeros(len(columns[_HEIGHT[self.kind]]), dtype=np.int64)
        return columns["gt"].astype(np.int64)

    def _label(self, key: int) -> str:
        return f"{key // 2}/{key % 2}" if self.kind in ("atl03s", "atl03x") else str(key or "all")

    def print(self, output: Path, elapsed: float) -> None:
        import numpy as np

        print(f"{self.rows} {_UNITS[self.kind]} -> {output} ({elapsed:.1f} s)")
        if not self.rows:
            return
        span = np.array([self.t0, self.t1], dtype="datetime64[ns]")
        print(f"time span: {span[0]} .. {span[1]} UTC")
        label = "track/pair" if self.kind in ("atl03s", "atl03x") else "gt"
        print(f"{label:>10} {'heights':>8} {'mean_h':>10} {'min_h':>10} {'max_h':>10}")
        for k, (n, total, lo, hi) in sorted(self.per.items()):
            mean = total / n if n else np.nan
            print(f"{self._label(k):>10} {n:>8} {mean:>10.2f} {lo:>10.2f} {hi:>10.2f}")


def _add_index(sub) -> None:
    p = sub.add_parser("index", help="write or update the granule catalogue of a data folder")
    p.add_argument("directory", help="data folder (atlas-local) or bucket/prefix (atlas-s3)")
    p.add_argument("--asset", default="atlas-local", choices=("atlas-local", "atlas-s3"))
    p.add_argument("--rebuild", action="store_true", help="index every granule again")
    p.add_argument("-q", "--quiet", action="store_true", help="only the summary line")
    p.set_defaults(run=_run_index)


def _run_index(args) -> int:
    from .discovery.catalog import update_catalog
    from .granules.assets import resolve_asset

    asset = resolve_asset(args.asset, args.directory)
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(unit="granule", desc="indexing", leave=False)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        update = update_catalog(asset, rebuild=args.rebuild, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        for label, names in (("added", update.added), ("updated", update.updated), ("removed", update.removed)):
            for name in names:
                print(f"{label:>8} {name}")
        for reason in sorted(update.failed.values()):
            print(f"  failed {reason}")
    indexed = len(update.added) + len(update.updated)
    per = f", {update.seconds / indexed:.2f} s per granule indexed" if indexed else ""
    where = update.written or "catalogue unchanged"
    print(f"{len(update.records)} granules: {len(update.added)} added, {len(update.updated)} updated, "
          f"{len(update.removed)} removed, {update.unchanged} unchanged, {len(update.failed)} failed "
          f"({update.seconds:.1f} s{per}) -> {where}")
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


def _add_serve(sub) -> None:
    from .service.limits import DEFAULT_GRANULE_TIMEOUT_S, DEFAULT_MAX_RESOURCES, Limits

    p = sub.add_parser("serve", help="a local SlideRule-compatible server (the official sliderule client works)")
    p.add_argument("--path", required=True, help="data folder of the granules (asset atlas-local)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9081, help="0 picks a free port (printed)")
    p.add_argument("--workers", type=_positive(int, "processes"), default=None,
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
    lim.add_argument("--granule-timeout", type=_positive(float, "seconds"), default=DEFAULT_GRANULE_TIMEOUT_S,
                     metavar="SECONDS", help="stop a granule that takes longer; a request's node_timeout may "
                                             "shorten it (default %(default)g)")
    for flag, field, kind, metavar, text in _SERVE_LIMITS:
        lim.add_argument(flag, dest=field, type=kind, default=getattr(Limits(), field), metavar=metavar,
                         help=f"{text} (default %(default)s)")
    p.set_defaults(run=_run_serve)


def _run_serve(args) -> int:
    import logging

    from .service.routes import Config
    from .service.server import Limits, serve

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
def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="PNG of a result: along-track elevation per beam and a map")
    p.add_argument("result", type=Path, help="a GeoParquet result (atl06 / atl03s output)")
    p.add_argument("-o", "--output", required=True, type=Path, help="output .png")
    p.add_argument("--title", default=None)
    p.set_defaults(run=_run_plot)


def _run_plot(args) -> int:
    from .client.plot import plot_file

    if not args.result.is_file():
        raise UsageError(f"result file {args.result} does not exist")
    if args.output.suffix.lower() != ".png":
        raise UsageError(f"output {args.output} must end in .png")
    plot_file(args.result, args.output, title=args.title)
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
