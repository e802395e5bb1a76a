"""Result tables and their msgpack form.

Rows are numpy structured arrays whose dtypes ARE the wire layouts of SPEC §7.3/§7.4 (field
offsets, sizes and padding), so the SlideRule record stream is a ``tobytes()`` away and every
number keeps its unit and dtype across Lambda, S3 and HTTP boundaries.

| table | dtype | one row per |
|---|---|---|
| elevations | :data:`ELEVATION` (104 B) or :data:`COMPACT` | fitted extent |
| extents | :data:`EXTENT` (56 B) | emitted photon extent (atl03s) |
| photons | :data:`PHOTON` (64 B) | photon of an extent, CSR by ``offsets`` |
| vegetation | :data:`VEGETATION` (176 B) | PhoREAL extent (atl08) |
| waveforms | :data:`WAVEFORM` (16 B) + ``waveform`` (f4 bins, CSR by ``num_bins``) | PhoREAL extent (waveform on) |
| frame | dict of named columns (:mod:`icesat2sr.science.xseries`) | x-series row (photon or fit) |
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgpack
import numpy as np

from ..granules.beam import Beam
from ..request.timeutil import delta_time_to_ns
from .extents import Extents


def _struct(spec: list[tuple[str, str, int]], itemsize: int) -> np.dtype:
    names, formats, offsets = zip(*spec, strict=True)
    return np.dtype({"names": list(names), "formats": list(formats), "offsets": list(offsets),
                     "itemsize": itemsize})


ELEVATION = _struct([
    ("extent_id", "<u8", 0), ("segment_id", "<u4", 8), ("n_fit_photons", "<i4", 12),
    ("pflags", "<u2", 16), ("rgt", "<u2", 18), ("cycle", "u1", 20), ("region", "u1", 21),
    ("spot", "u1", 22), ("gt", "u1", 23), ("time", "<i8", 24), ("latitude", "<f8", 32),
    ("longitude", "<f8", 40), ("h_mean", "<f8", 48), ("dh_fit_dx", "<f4", 56), ("x_atc", "<f4", 60),
    ("y_atc", "<f4", 64), ("w_surface_window_final", "<f4", 68), ("rms_misfit", "<f4", 72),
    ("h_sigma", "<f4", 76), ("distance", "<f8", 80), ("delta_time", "<f8", 88),
    ("dh_fit_dy", "<f4", 96),
], 104)
"""ATL06-SR elevation: SlideRule v4 ``atl06rec.elevation`` plus the seed's columns (SPEC §7.4)."""

COMPACT = _struct([
    ("extent_id", "<u8", 0), ("time", "<i8", 8), ("latitude", "<f8", 16), ("longitude", "<f8", 24),
    ("h_mean", "<f8", 32), ("delta_time", "<f8", 40),
], 48)
"""``compact`` elevation: time, position and height only (+ extent_id the clients need)."""

EXTENT = _struct([
    ("region", "u1", 0), ("track", "u1", 1), ("pair", "u1", 2), ("sc_orient", "u1", 3),
    ("rgt", "<u2", 4), ("cycle", "u1", 6), ("segment_id", "<u4", 8), ("count", "<u4", 12),
    ("solar_elevation", "<f4", 16), ("spacecraft_velocity", "<f4", 20), ("segment_dist", "<f8", 24),
    ("extent_length", "<f8", 32), ("background_rate", "<f8", 40), ("extent_id", "<u8", 48),
], 56)
"""Photon extent header: SlideRule ``atl03rec`` (SPEC §7.3)."""

PHOTON = _struct([
    ("time", "<i8", 0), ("latitude", "<f8", 8), ("longitude", "<f8", 16), ("x_atc", "<f4", 24),
    ("y_atc", "<f4", 28), ("height", "<f4", 32), ("relief", "<f4", 36), ("landcover", "u1", 40),
    ("snowcover", "u1", 41), ("atl08_class", "u1", 42), ("atl03_cnf", "i1", 43),
    ("quality_ph", "i1", 44), ("yapc_score", "u1", 45), ("delta_time", "<f8", 48),
    ("distance", "<f8", 56),
], 64)
"""Photon: SlideRule ``atl03rec.photons`` plus the seed's ``delta_time`` and ``distance``."""

# ---------------------------------------------------------------------- PhoREAL (atl08)
NUM_PERCENTILES = 20

VEGETATION = _struct([
    ("extent_id", "<u8", 0), ("segment_id", "<u4", 8), ("pflags", "<u2", 12), ("rgt", "<u2", 14),
    ("cycle", "<u2", 16), ("spot", "u1", 18), ("gt", "u1", 19), ("ph_count", "<u4", 20),
    ("gnd_ph_count", "<u4", 24), ("veg_ph_count", "<u4", 28), ("landcover", "u1", 32), ("snowcover", "u1", 33),
    ("time", "<i8", 40), ("latitude", "<f8", 48), ("longitude", "<f8", 56), ("x_atc", "<f4", 64),
    ("solar_elevation", "<f4", 68), ("h_te_median", "<f4", 72), ("h_max_canopy", "<f4", 76),
    ("h_min_canopy", "<f4", 80), ("h_mean_canopy", "<f4", 84), ("h_canopy", "<f4", 88),
    ("canopy_openness", "<f4", 92), ("canopy_h_metrics", ("<f4", (NUM_PERCENTILES,)), 96),
], 176)
"""PhoREAL vegetation metrics: SlideRule's ``atl08rec.vegetation`` (``pflags`` is in its struct, not its definition)."""

WAVEFORM = _struct([("extent_id", "<u8", 0), ("num_bins", "<u2", 8), ("binsize", "<f4", 12)], 16)
"""Head of SlideRule's ``waverec``; its ``num_bins`` float32 bins follow on the wire."""
# ---------------------------------------------------------------------- end PhoREAL

INVALID_FLAG = 0xFF  # landcover/snowcover without PhoREAL, as SlideRule sends them
EXTENT_ID_ELEVATION = 0x2


def extent_ids(rgt: int, cycle: int, region: int, track: int, pair: int,
               counter: np.ndarray) -> np.ndarray:
    """SlideRule's 64-bit extent id: rgt | cycle | region | track | counter | 0 (photons) | pair.

    Examples
    --------
    >>> int(extent_ids(315, 1, 11, 2, 1, np.array([7]))[0] | EXTENT_ID_ELEVATION) == (
    ...     (315 << 52) | (1 << 36) | (11 << 32) | (2 << 30) | (7 << 2) | 0x2 | 1)
    True
    """
    counter = np.asarray(counter, dtype=np.uint64) & np.uint64(0xFFFFFFF)
    head = (rgt << 52) | (cycle << 36) | (region << 32) | (track << 30) | pair
    return np.uint64(head) | (counter << np.uint64(2))


def elevation_rows(beam: Beam, extents: Extents, fit: dict[str, np.ndarray], compact: bool) -> np.ndarray:
    """Elevation rows of one beam: one per extent with at least one photon (fit outputs).

    Parameters
    ----------
    beam : Beam
        The beam the extents belong to (its segment arrays).
    extents : Extents
        The beam's emitted extents.
    fit : dict
        Output of :func:`icesat2sr.science.fit.fit_extents` for these extents.
    compact : bool
        Use the :data:`COMPACT` layout.
    """
    done = np.flatnonzero(fit["fitted"])
    rows = np.zeros(len(done), dtype=COMPACT if compact else ELEVATION)
    ids = extent_ids(beam.rgt, beam.cycle, beam.region, beam.track, beam.pair, extents.counter[done])
    rows["extent_id"] = ids | np.uint64(EXTENT_ID_ELEVATION)
    rows["time"] = fit["time_ns"][done]
    rows["latitude"] = fit["latitude"][done]
    rows["longitude"] = fit["longitude"][done]
    rows["h_mean"] = fit["h_mean"][done]
    rows["delta_time"] = fit["delta_time"][done]
    if compact:
        return rows
    rows["segment_id"] = extents.segment_id[done]
    for name in ("n_fit_photons", "pflags", "dh_fit_dx", "y_atc", "w_surface_window_final",
                 "rms_misfit", "h_sigma"):
        rows[name] = fit[name][done]
    rows["rgt"], rows["cycle"], rows["region"] = beam.rgt, beam.cycle, beam.region
    rows["spot"], rows["gt"] = beam.spot, beam.gt
    rows["distance"] = extents.distance[done]
    rows["x_atc"] = extents.distance[done]
    return rows


def photon_rows(beam: Beam, extents: Extents, conf: np.ndarray,
                yapc_score: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Extent headers, photons and CSR offsets of one beam (the atl03s result).

    Returns
    -------
    (extents, photons, offsets) : ndarray[EXTENT], ndarray[PHOTON], ndarray[int64]
    """
    head = np.zeros(len(extents), dtype=EXTENT)
    head["region"], head["track"], head["pair"] = beam.region, beam.track, beam.pair
    head["sc_orient"], head["rgt"], head["cycle"] = beam.sc_orient, beam.rgt, beam.cycle
    head["segment_id"] = extents.segment_id
    head["count"] = extents.count
    head["solar_elevation"] = extents.solar_elevation
    head["spacecraft_velocity"] = extents.velocity
    head["segment_dist"] = extents.distance
    head["extent_length"] = extents.length
    head["background_rate"] = extents.background_rate
    head["extent_id"] = extent_ids(beam.rgt, beam.cycle, beam.region, beam.track, beam.pair,
                                   extents.counter)
    p = extents.photon
    ph = np.zeros(len(p), dtype=PHOTON)
    ph["time"] = delta_time_to_ns(beam.delta_time[p])
    ph["latitude"], ph["longitude"] = beam.lat_ph[p], beam.lon_ph[p]
    ph["x_atc"] = extents.x_rel
    ph["y_atc"] = beam.dist_ph_across[p]
    ph["height"] = beam.h_ph[p]
    ph["landcover"] = ph["snowcover"] = INVALID_FLAG
    if beam.relief is not None:  # PhoREAL on: SlideRule's photons carry its ATL08 inputs
        ph["relief"], ph["landcover"], ph["snowcover"] = beam.relief[p], beam.landcover[p], beam.snowcover[p]
    ph["atl08_class"] = beam.atl08_class[p] if beam.atl08_class is not None else 4
    ph["atl03_cnf"] = conf[p]
    ph["quality_ph"] = beam.quality_ph[p]
    ph["yapc_score"] = np.minimum(yapc_score[p], 255) if yapc_score is not None else 0
    ph["delta_time"] = beam.delta_time[p]
    ph["distance"] = extents.x_rel
    return head, ph, extents.offsets.astype(np.int64)


@dataclass
class GranuleResult:
    """Everything one granule produced for one request.

    ``kind`` is ``atl06`` (``elevations``), ``atl03s`` (``extents``, ``photons``, ``offsets``),
    ``atl08`` (``vegetation``, and with ``send_waveform`` ``waveforms`` and ``waveform``) or
    ``atl03x`` (``frame``: SlideRule's x-series columns, in order).
    ``error`` holds ``(code, message)`` when the granule failed (other tables then empty).
    ``ancillary`` holds the requested ancillary fields, one array per field (keys from
    :func:`icesat2sr.science.ancillary.column_key`) aligned with ``elevations`` or ``photons``.
    """

    granule: str
    kind: str
    elevations: np.ndarray | None = None
    extents: np.ndarray | None = None
    photons: np.ndarray | None = None
    offsets: np.ndarray | None = None
    vegetation: np.ndarray | None = None
    waveforms: np.ndarray | None = None
    waveform: np.ndarray | None = None
    error: tuple[int, str] | None = None
    stats: dict = field(default_factory=dict)
    ancillary: dict[str, np.ndarray] | None = None
    frame: dict[str, np.ndarray] | None = None

    @property
    def rows(self) -> int:
        """Rows of the main table (elevations, photons for atl03s, vegetation for atl08, frame rows
        for atl03x)."""
        if self.kind == "atl03x":
            return len(next(iter(self.frame.values()))) if self.frame else 0
        table = {"atl06": self.elevations, "atl08": self.vegetation}.get(self.kind, self.photons)
        return 0 if table is None else len(table)


_TABLES = ("elevations", "extents", "photons", "offsets", "vegetation", "waveforms", "waveform")


def _pack_array(a: np.ndarray) -> dict:
    if a.dtype.names:  # columnar: one contiguous buffer per field
        return {"columns": {n: _pack_array(np.ascontiguousarray(a[n])) for n in a.dtype.names},
                "layout": a.dtype.descr, "itemsize": a.dtype.itemsize, "length": len(a)}
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def _unpack_array(d: dict) -> np.ndarray:
    if "columns" in d:
        dtype = _dtype_from(d)
        out = np.zeros(d["length"], dtype=dtype)
        for name, col in d["columns"].items():
            out[name] = _unpack_array(col)
        return out
    return np.frombuffer(d["data"], dtype=np.dtype(d["dtype"])).reshape(d["shape"]).copy()


def _dtype_from(d: dict) -> np.dtype:
    for known in (ELEVATION, COMPACT, EXTENT, PHOTON, VEGETATION, WAVEFORM):
        if d["itemsize"] == known.itemsize and set(d["columns"]) == set(known.names):
            return known
    names = list(d["columns"])
    return np.dtype([(n, np.dtype(d["columns"][n]["dtype"])) for n in names])


def pack(result: GranuleResult, part: tuple[int, int] | None = None) -> bytes:
    """Serialise a result to msgpack (columnar numpy buffers; lossless).

    ``part = (beam, seq)`` marks a partial result of a granule (``icesat2sr.engine.iter_granule``):
    the packed parts of a granule, concatenated and closed by its packed (table-less) result, are
    what :func:`unpack` merges back into the granule's result.
    """
    body = {"format": "icesat2sr-result/1", "granule": result.granule, "kind": result.kind,
            "error": list(result.error) if result.error else None, "stats": result.stats}
    if part is not None:
        body["part"] = list(part)
    for name in _TABLES:
        value = getattr(result, name)
        if value is not None:
            body[name] = _pack_array(value)
    for name in ("ancillary", "frame"):
        columns = getattr(result, name)
        if columns is not None:
            body[name] = [[key, _pack_array(np.ascontiguousarray(v))] for key, v in columns.items()]
    return msgpack.packb(body, use_bin_type=True)


def unpack(data: bytes) -> GranuleResult:
    """Inverse of :func:`pack`; a granule's packed parts and closing result give the whole result."""
    bodies = list(msgpack.Unpacker(io.BytesIO(data), raw=False, max_buffer_size=len(data) + 1))
    if not bodies or not all(isinstance(b, dict) and b.get("format") == "icesat2sr-result/1" for b in bodies):
        raise ValueError("not an icesat2sr result")
    results = [_result(b) for b in bodies]
    if len(results) == 1:
        return results[0]
    last = results[-1]
    parts = sorted(range(len(bodies) - 1), key=lambda i: tuple(bodies[i].get("part") or (0, 0)))
    merged = concat([results[i] for i in parts], last.kind, compact=_compact(results))
    merged.granule, merged.error, merged.stats = last.granule, last.error, last.stats
    return merged


def iter_unpack(stream) -> Iterator[GranuleResult]:
    """The results packed one after the other in a binary stream (a granule's parts, then its
    closing result), one at a time: a granule's parts are never held together."""
    for body in msgpack.Unpacker(stream, raw=False, max_buffer_size=1 << 31):
        if not (isinstance(body, dict) and body.get("format") == "icesat2sr-result/1"):
            raise ValueError("not an icesat2sr result")
        yield _result(body)


def _result(body: dict) -> GranuleResult:
    tables = {name: _unpack_array(body[name]) for name in _TABLES if name in body}
    error = tuple(body["error"]) if body.get("error") else None
    columns = {name: {key: _unpack_array(v) for key, v in body[name]} if name in body else None
               for name in ("ancillary", "frame")}
    return GranuleResult(body["granule"], body["kind"], error=error, stats=body.get("stats") or {},
                         **columns, **tables)


def _compact(results: list[GranuleResult]) -> bool:
    return any(r.elevations is not None and r.elevations.dtype == COMPACT for r in results)


def stack(parts: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """Concatenate row tables keeping the wire layout (plain ``np.concatenate`` drops the padding)."""
    return np.concatenate(parts, dtype=dtype) if parts else np.zeros(0, dtype=dtype)


def _stack_tables(results: list[GranuleResult], name: str, dtype: np.dtype, consume: bool) -> np.ndarray:
    """The ``name`` tables of ``results`` stacked (see :func:`concat` for ``consume``)."""
    tables = [getattr(r, name) for r in results if getattr(r, name) is not None]
    if not consume or any(t.dtype != dtype for t in tables):
        return stack(tables, dtype)
    out = np.zeros(sum(len(t) for t in tables), dtype=dtype)   # zeroed: the padding is written too
    del tables
    at = 0
    for r in results:
        table = getattr(r, name)
        if table is not None:
            out[at:at + len(table)] = table
            at += len(table)
            setattr(r, name, None)
            del table
    return out


def concat_ancillary(parts: list[dict[str, np.ndarray] | None]) -> dict[str, np.ndarray] | None:
    """Ancillary columns of several tables, stacked in order (None when none has any)."""
    given = [p for p in parts if p is not None]
    if not given:
        return None
    out = {}
    for key in given[0]:
        arrays = [p[key] for p in given]
        filled = [a for a in arrays if len(a)] or arrays[:1]   # an empty part must not change the dtype
        out[key] = np.concatenate(filled)
    return out


def concat_frames(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Column dicts with the same columns, stacked in order (empty dict when there are none)."""
    if not parts:
        return {}
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def concat(results: list[GranuleResult], kind: str, compact: bool = False, consume: bool = False) -> GranuleResult:
    """Merge several granules' results (in the given order) into one table set; failed ones skipped.

    With ``consume`` the row tables (elevations, vegetation, extents, photons) are copied into the
    merged table one result at a time and taken from ``results`` as they are copied, so merging
    needs about the output's memory once rather than twice.
    """
    ok = [r for r in results if r.error is None]
    merged = GranuleResult(",".join(r.granule for r in results), kind)
    if kind == "atl03x":
        merged.frame = concat_frames([r.frame for r in ok if r.frame])
        return merged
    merged.ancillary = concat_ancillary([r.ancillary for r in ok])
    if kind == "atl06":
        first = next((r.elevations for r in ok if r.elevations is not None), None)
        dtype = first.dtype if first is not None else COMPACT if compact else ELEVATION
        del first
        merged.elevations = _stack_tables(ok, "elevations", dtype, consume)
        return merged
    if kind == "atl08":
        merged.vegetation = _stack_tables(ok, "vegetation", VEGETATION, consume)
        if any(r.waveforms is not None for r in ok):
            merged.waveforms = stack([r.waveforms for r in ok if r.waveforms is not None], WAVEFORM)
            parts = [r.waveform for r in ok if r.waveform is not None]
            merged.waveform = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return merged
    merged.extents = _stack_tables(ok, "extents", EXTENT, consume)
    merged.photons = _stack_tables(ok, "photons", PHOTON, consume)
    counts = merged.extents["count"].astype(np.int64)
    merged.offsets = np.concatenate(([0], np.cumsum(counts)))
    return merged
