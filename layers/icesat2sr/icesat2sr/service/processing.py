"""The processing endpoints: a request's granules, run in child processes and streamed back as
SlideRule's records or as an output file (:func:`stream_job`)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..formats import wire
from ..granules.assets import Asset, check_resource_name
from ..request.errors import ParameterError
from ..request.params import Parms
from ..science.records import GranuleResult
from .protocol import CHUNK_BYTES, OCTET, BadRequest, Config, Response, public_message, shorten

log = logging.getLogger(__name__)


@dataclass
class Job:
    """A validated processing request."""

    kind: str                 # "atl06", "atl03s" or "atl08"
    asset: Asset
    parms: Parms
    resources: list[str]
    timeout: float | None     # rqst_timeout: the whole request
    granule_timeout: float | None = None   # one granule: node_timeout, at most the server's limit
    limit_name: str = "node_timeout"       # which limit granule_timeout is


def parse_job(kind: str, request: dict, config: Config, *, single: bool = False) -> Job:
    """Validate a processing request (seed or client shape) and find its granules.

    Parameters
    ----------
    kind : {"atl06", "atl03s", "atl08"}
        The engine kind the endpoint runs.
    request : dict
        The request body.
    config : Config
        What the deployment serves (limits, assets).
    single : bool
        A single-granule endpoint (``/source/atl06``, ``/source/atl03s``, ``/source/atl08``): exactly one granule
        must be named.

    Raises
    ------
    ParameterError, ResourceError, BadRequest
        A bad parameter, a malformed granule name, or too many granules.
    """
    parms = request.get("parms", {})
    if parms is None:
        parms = {}
    if not isinstance(parms, dict):
        raise ParameterError("parms", "must be a JSON object")
    parms = dict(parms)
    asset_name = request.get("atl03-asset") or parms.get("asset") or "icesat2"
    parms["asset"] = asset_name
    if request.get("timeout") is not None:   # the seed's top-level timeout: validated as parms' own
        parms["timeout"] = request["timeout"]
    resources = _resources(request, parms)
    parms.pop("resources", None)
    checked = Parms.from_dict(parms)
    checked.for_kind(kind)  # what the kind cannot do is a 400 before any work
    if single and (resources is None or len(resources) != 1):
        raise ParameterError("resource", "this endpoint processes one granule: name it in \"resource\" "
                                         "(the ...p endpoints take a list or a query)")
    asset = config.resolve(asset_name)
    limit = max_resources(checked, config)
    if resources is None:
        resources = discover(checked, asset, limit)
    names = [check_resource_name(r) for r in dict.fromkeys(resources)]
    check_count(len(names), limit)
    if checked.output is not None and not config.output_files:
        raise ParameterError("output", "this deployment writes output files in its asynchronous jobs: send the "
                                       "request to atl06p, atl03sp or atl03x")
    check_output(kind, checked, config.remote_output)
    rqst_timeout, node_timeout, _ = checked.deadlines
    return Job(kind, asset, checked, names, rqst_timeout, *granule_limit(node_timeout, config))


def granule_limit(node_timeout: float | None, config: Config) -> tuple[float | None, str]:
    """A granule's time limit and its name: the request's ``node_timeout`` when it is shorter than
    the server's :attr:`Config.granule_timeout` (a request may shorten the limit, never lift it)."""
    if config.inline:
        return None, "none"
    server = config.granule_timeout
    if node_timeout is not None and (server is None or node_timeout <= server):
        return node_timeout, "node_timeout"
    return server, "the server's granule time limit"


def max_resources(parms: Parms, config: Config) -> int:
    """The request's granule limit: its ``max_resources``, never above the server's."""
    return min(parms.max_resources or config.max_resources, config.max_resources)


def check_count(count: int, limit: int, what: str = "granules requested") -> None:
    """Refuse (:class:`BadRequest`) a request of more than ``limit`` granules, saying how to split it."""
    if count > limit:
        raise BadRequest(f"{count} {what}; at most {limit} per request (max_resources): split the "
                         f"request into lists of at most {limit} resources, or narrow it (t0/t1, poly, rgt, "
                         "cycle, region)")


_FILTERS = ("poly", "t0", "t1", "rgt", "cycle", "region")


def check_output(kind: str, parms: Parms, remote_prefix: str | None = None) -> None:
    """Where a request's results may go: ``atl03x`` only to an ``output`` file, ``s3://`` only
    under the deployment's ``remote_prefix``.

    Raises
    ------
    ParameterError
    """
    if kind == "atl03x" and parms.output is None:
        raise ParameterError("output", "atl03x returns a file: give output {\"path\": ..., \"format\": ...} "
                                       "(sliderule.run sets it)")
    if parms.output is None or not parms.output.remote:
        return
    if not remote_prefix:
        raise ParameterError("output.path", "this server writes no s3:// output (it streams the file back): "
                                            "name a client-side path")
    if not parms.output.path.startswith(remote_prefix):
        raise ParameterError("output.path", f"s3:// output must be under {remote_prefix}")


def _resources(request: dict, parms: dict) -> list[str] | None:
    if "resource" in request:  # the seed's single-granule endpoints
        value = request["resource"]
        if not isinstance(value, str):
            raise ParameterError("resource", f"expected a granule name, got {shorten(repr(value), 80)}")
        return [value]
    value = request.get("resources", parms.get("resources"))
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParameterError("resources", f"expected a list of granule names, got {shorten(repr(value), 80)}")
    return value


def discover(parms: Parms, asset: Asset, limit: int | None = None) -> list[str]:
    """Granules matching the request (``resources: null``), through the discovery module.

    A query needs at least one filter (``poly``, ``t0``/``t1``, ``rgt``, ``cycle``, ``region``):
    an empty request does not list a whole bucket. More than ``limit`` matches is a
    :class:`BadRequest` saying how to split the request.
    """
    require_query(parms)
    try:
        from ..discovery.find import find_granules
    except ImportError:
        raise BadRequest("no granules named and granule discovery is not available: "
                         "name the granules in \"resources\"") from None
    names = list(find_granules(parms, asset))
    if limit is not None:
        check_count(len(names), limit, "granules match the query")
    return names


def require_query(parms: Parms) -> None:
    """A discovery query must select something: an empty one would list a whole bucket."""
    if not any(getattr(parms, key) for key in _FILTERS):
        raise BadRequest("no granules named and no query: name them in \"resources\" or select them with "
                         f"{', '.join(_FILTERS)}")


def stream_job(job: Job, config: Config) -> Iterator[bytes]:
    """The record stream of a job: per-granule records as granules complete, in ~1 MB chunks.

    Empty chunks are heartbeats. Closing the iterator stops the work.
    """
    total = len(job.resources)
    yield wire.event_record(wire.INFO_LEVEL, f"{job.kind}: processing {total} granule(s)")
    output = job.parms.output
    writer = _output_writer(job, config) if output is not None else None
    if not total:
        yield wire.exception_record(wire.EMPTY_SUBSET, wire.WARNING_LEVEL, "no granules match the request")
        if writer is None:
            return
    ordered = _ordered_output(writer, job) if writer is not None and job.kind in TIME_ORDERED_KINDS else None
    done = 0
    counts: dict[str, tuple[int, int]] = {}   # rows and extents sent in parts, per granule
    results = run_granules(job.asset, job.resources, job.parms, job.kind, workers=config.workers,
                           heartbeat_s=config.heartbeat_s, timeout=job.timeout, granule_timeout=job.granule_timeout,
                           limit_name=job.limit_name)
    try:
        for item in results:
            if item is None:
                yield b""
            elif isinstance(item, Partial):   # a chunk of a granule: passed on as it comes
                rows, extents = counts.get(item.result.granule, (0, 0))
                more = wire.table_counts(item.result)
                counts[item.result.granule] = (rows + more[0], extents + more[1])
                if ordered is not None:
                    ordered.part(item.result.granule, item.result, item.beam, item.horizon_ns, item.beams)
                elif writer is not None:   # x-series frames: written as they come
                    writer.add(item.result)
                else:
                    yield from _coalesce(wire.data_records(item.result))
            elif isinstance(item, str):  # the request's deadline passed: the names not done
                yield wire.exception_record(wire.TIMEOUT, wire.ERROR_LEVEL,
                                            shorten(f"request timed out after {job.timeout:g} s (rqst_timeout); "
                                                     f"not processed: {item}", 250))
                return
            else:
                done += 1
                if item.error:
                    item.error = (item.error[0], public_message(item.error[1], config))
                if ordered is not None:
                    ordered.end(item.granule, failed=item.error is not None)
                if item.granule in counts:   # its rows came in parts: only its end is left
                    yield from _coalesce(wire.end_records(item, done, total, rows=writer is None,
                                                          counted=counts.pop(item.granule)))
                    continue
                if writer is not None and ordered is None and item.rows:
                    writer.add(item)
                yield from _coalesce(wire.result_records(item, done, total, rows=writer is None))
        if ordered is not None:
            ordered.close()
        if writer is not None:
            yield from _send_file(writer, output)
    except Exception as exc:  # a bug: end the stream cleanly (a broken stream makes clients retry)
        log.exception("%s stream failed", job.kind)
        yield wire.exception_record(wire.ERROR, wire.CRITICAL_LEVEL, f"internal error ({type(exc).__name__})")
    finally:
        results.close()
        if ordered is not None:
            ordered.discard()
        if writer is not None:
            writer.abort()
            writer.path.unlink(missing_ok=True)


def _output_writer(job: Job, config: Config):
    from ..formats.output import OutputWriter

    output = job.parms.output
    return OutputWriter(config.scratch_file(output.format), output.format, kind=job.kind, parms=job.parms.to_dict(),
                        granules=job.resources, fields=output.fields, validate=output.with_validation)


def _ordered_output(writer, job: Job):
    """The output file's rows as they stream in: each granule's in time order, granules in the
    request's order, a granule that fails left out (as a file written from whole results)."""
    from ..engine import empty_result
    from ..formats.stream import OrderedOutput

    return OrderedOutput(writer, job.resources, atomic=True,
                         empty=lambda name: empty_result(name, job.parms, job.kind))


def _send_file(writer, output) -> Iterator[bytes]:
    """Close the output file and deliver it as SlideRule does: streamed back (the client writes
    ``output.path``), or uploaded to its ``s3://`` path and announced by ``arrowrec.remote``."""
    path = writer.finish()
    size = path.stat().st_size
    yield wire.event_record(wire.INFO_LEVEL, f"output: {writer.rows} rows, {size} bytes of {output.format} "
                                             f"to {output.path}")
    if output.remote:
        yield from upload_output(path, output)
    else:
        yield from _coalesce(wire.file_records(path, output.path, checksum=output.with_checksum))


def upload_output(path: str | os.PathLike, output, s3=None) -> Iterator[bytes]:
    """Upload a finished output file to its ``s3://`` path; yield the ``arrowrec.remote`` record."""
    import boto3

    bucket, key = output.s3_location()
    size = os.path.getsize(path)
    (s3 or boto3.client("s3")).upload_file(str(path), bucket, key)
    yield wire.remote_record(output.path, size)


def _coalesce(records: Iterable[bytes], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    buffer: list[bytes] = []
    length = 0
    for record in records:
        buffer.append(record)
        length += len(record)
        if length >= size:
            yield b"".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield b"".join(buffer)


@dataclass
class Partial:
    """A chunk of a granule's result, passed on before the granule is done (``beam``,
    ``horizon_ns`` and ``beams`` as :class:`icesat2sr.engine.Part` has them)."""

    result: GranuleResult
    beam: int = 0
    horizon_ns: int = 2**63 - 1
    beams: int = 1


STREAMED_KINDS = ("atl03s", "atl06", "atl08", "atl03x")   # every kind's rows come chunk by chunk
TIME_ORDERED_KINDS = ("atl03s", "atl06", "atl08")   # their files hold each granule's rows in time order


def run_granules(asset: Asset, names: list[str], parms: Parms, kind: str, *, workers: int | None = None,
                 heartbeat_s: float = 0.5, timeout: float | None = None, granule_timeout: float | None = None,
                 limit_name: str = "node_timeout") -> Iterator[GranuleResult | Partial | str | None]:
    """Process granules, yielding each result as it completes.

    Each granule runs in a process of its own (:func:`icesat2sr.batch.pooled`, at most
    ``workers`` at a time), so a process that dies (e.g. killed for lack of memory) fails only its
    granule, and its memory is returned after every granule. Yields ``None`` every
    ``heartbeat_s`` while waiting. When ``timeout`` seconds have passed since the start, yields a
    comma-separated string of the unfinished names (then stops); a granule still running after
    ``granule_timeout`` seconds is killed and reported as that granule's TIMEOUT error
    (``limit_name`` names the limit). Closing the generator kills the running processes at once.
    ``workers=1`` without a ``granule_timeout`` runs in the calling thread instead (no processes;
    the timeout is then only noticed between granules).
    A granule of a streamed kind (:data:`STREAMED_KINDS`) first comes in :class:`Partial` results
    (rows are never held whole); its final result then has no rows.
    """
    from .. import pool
    from ..batch import granule_results, pooled, worker_count
    from ..engine import Part

    workers = worker_count(workers, len(names))
    streamed = kind in STREAMED_KINDS
    if workers == 1 and granule_timeout is None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for i, name in enumerate(names):
            if deadline is not None and time.monotonic() > deadline:
                yield ", ".join(names[i:])
                return
            for item in granule_results(asset, name, parms, kind, streamed):
                yield Partial(item.result, item.beam, item.horizon_ns, item.beams) if isinstance(item, Part) else item
        return
    events = pooled(asset, names, parms, kind, workers=workers, timeout=granule_timeout, deadline=timeout,
                    heartbeat_s=heartbeat_s, parts=streamed, limit_name=limit_name)
    try:
        for item in events:
            if isinstance(item, Part):
                yield Partial(item.result, item.beam, item.horizon_ns, item.beams)
            elif isinstance(item, pool.Expired):
                yield ", ".join(item.keys)
                return
            else:
                yield item
    finally:
        events.close()


def endpoint(kind: str, single: bool = False) -> Callable[[dict, dict, Config], Response]:
    """The route handler of a processing kind (``single``: one named granule): it parses the request
    and streams its records."""
    def endpoint(request: dict, headers: dict, config: Config) -> Response:
        job = parse_job(kind, request, config, single=single)
        return Response(200, OCTET, stream_job(job, config))
    endpoint.__name__ = f"_{kind}{'' if single else 'p'}"
    return endpoint


