"""Commands that process granules: ``atl06``/``atl03s``/``atl08`` (named granules), ``atl06p``/
``atl03sp``/``atl08p``/``atl03x`` (found by discovery), ``index``; results streamed to a file."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from ..request.errors import Icesat2srError
from .options import add_request_options, request_parms

# ---------------------------------------------------------------------- atl06 / atl03s / atl08
_WHAT = {"atl06": "ATL06-SR elevations", "atl03s": "photon extents",
         "atl08": "PhoREAL vegetation metrics (canopy heights; parms {\"phoreal\": {...}})"}


def add_process(sub, kind: str) -> None:
    """Register the command ``kind`` (``atl06``, ``atl03s``, ``atl08``): named granules of a data folder."""
    p = sub.add_parser(kind, help=f"{_WHAT[kind]} for named granules")
    p.add_argument("resources", nargs="+", metavar="RESOURCE", help="ATL03 granule file names")
    add_request_options(p)
    p.set_defaults(run=_run_process, kind=kind)


def _run_process(args) -> int:
    from ..pool import process_context, start_early

    start_early(process_context(["icesat2sr.batch"]))   # its imports overlap this process's checks
    from ..formats.destination import check_destination
    from ..formats.output import format_of
    from ..granules.assets import check_resource_name, resolve_asset

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


# ---------------------------------------------------------------------- atl06p / atl03sp / index
def add_discovered(sub, kind: str) -> None:
    """Register the command ``kind`` (``atl06p``, ``atl03sp``, ``atl08p``): the granules a request selects."""
    engine_kind = {"atl06p": "atl06", "atl03sp": "atl03s", "atl08p": "atl08"}[kind]
    p = sub.add_parser(kind, help=f"{_WHAT[engine_kind]} for every granule the request selects (region, time, rgt...)")
    add_request_options(p)
    p.set_defaults(run=_run_discovered, kind=engine_kind, resources=[])


def add_atl03x(sub) -> None:
    """Register ``atl03x``: SlideRule's x-series frame of named or selected granules."""
    p = sub.add_parser("atl03x", help="SlideRule's x-series photon frame (or its surface fit with a \"fit\" "
                                      "parameter) for named granules, or those the request selects")
    p.add_argument("resources", nargs="*", metavar="RESOURCE", help="ATL03 granule file names (none: discovery)")
    add_request_options(p)
    p.set_defaults(run=_run_discovered, kind="atl03x")


def _run_discovered(args) -> int:
    """Discovery, then the process pool. Granules that fail are reported on stderr and left out;
    exit 0 when at least one granule succeeded (or none matched: an empty result is written),
    1 when every selected granule failed (nothing is written)."""
    from ..discovery.find import find_granules
    from ..formats.destination import check_destination
    from ..formats.output import format_of
    from ..granules.assets import check_resource_name, resolve_asset

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

    from ..batch import pooled, worker_count
    from ..engine import Part, empty_result
    from ..formats.destination import write_error
    from ..formats.output import OutputWriter, preload
    from ..formats.stream import OrderedOutput

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
    from ..engine import iter_granule
    from ..formats.destination import write_error
    from ..formats.output import OutputWriter
    from ..formats.stream import Spill, frame_rows

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


def add_index(sub) -> None:
    """Register ``index``: write or update a data folder's granule catalogue."""
    p = sub.add_parser("index", help="write or update the granule catalogue of a data folder")
    p.add_argument("directory", help="data folder (atlas-local) or bucket/prefix (atlas-s3)")
    p.add_argument("--asset", default="atlas-local", choices=("atlas-local", "atlas-s3"))
    p.add_argument("--rebuild", action="store_true", help="index every granule again")
    p.add_argument("-q", "--quiet", action="store_true", help="only the summary line")
    p.set_defaults(run=_run_index)


def _run_index(args) -> int:
    from ..discovery.catalog import update_catalog
    from ..granules.assets import resolve_asset

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


