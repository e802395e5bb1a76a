"""SlideRule's binary record stream (SPEC §7): framing, record definitions, encoder and decoder.

A record is an 8-byte big-endian header ``(version=2, len(type)+1, len(payload))``, the
NUL-terminated type name, then the little-endian payload. The payloads are the numpy structured
rows of :mod:`icesat2sr.science.records` (their dtypes ARE the wire layouts), so encoding a batch is a
``tobytes()``; :data:`DEFINITIONS` describes the same layouts to the clients
(``/source/definition``). The module imports only numpy: the API Lambda reuses it.

| record | payload |
|---|---|
| ``atl06rec`` / ``atl06rec-compact`` | 1..256 elevations (:data:`records.ELEVATION` / ``COMPACT``) |
| ``atl03rec`` | one photon extent (:data:`records.EXTENT`) followed by its photons (``PHOTON``) |
| ``atl03rec.index`` | one granule's index entry (:data:`INDEX`) |
| ``atl08rec`` | 1..256 PhoREAL extents (:data:`records.VEGETATION`) |
| ``waverec`` | one extent's canopy waveform (:data:`records.WAVEFORM` + its float32 bins) |
| ``exceptrec`` | code, level, text (a granule that failed, a warning) |
| ``eventrec`` | time, level, source, message (progress) |
| ``conrec`` | a container: a result record and its ancillary records together |
| ``ancfrec`` | one elevation's ancillary values (``ancfrec.field`` each: anc_type, index, datatype, 8 bytes) |
| ``ancerec`` | one field's values for the photons of one extent |
| ``ancfrec-icesat2sr``, ``ancerec-icesat2sr`` | the same for ``atl03_corr_fields`` (4), ``atl03_bckgrd_fields`` (5) |
| ``arrowrec.meta`` / ``.data`` / ``.eof`` | an output file streamed back: name and size, its bytes, its checksum |
| ``arrowrec.remote`` | an output file written to S3: its URL and size |
"""

from __future__ import annotations

import os
import re
import struct
import time as _time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ..science.ancillary import parse_key
from ..science.records import COMPACT, ELEVATION, EXTENT, PHOTON, VEGETATION, WAVEFORM, GranuleResult

RECORD_VERSION = 2
BATCH_SIZE = 256            # elevations per atl06rec, as SlideRule's dispatcher batches them
_HEADER = struct.Struct(">hhi")

# exception codes (both clients) and event levels
INFO, ERROR, TIMEOUT, RESOURCE_DOES_NOT_EXIST, EMPTY_SUBSET = 0, -1, -2, -3, -4
DEBUG_LEVEL, INFO_LEVEL, WARNING_LEVEL, ERROR_LEVEL, CRITICAL_LEVEL = 0, 1, 2, 3, 4
_SENDABLE_CODES = {0, -1, -2, -3, -4}  # never -5: the 4.x client answers it with RetryRequest

EXCEPT = np.dtype({"names": ["code", "level", "text"], "formats": ["<i4", "<u4", "S256"],
                   "offsets": [0, 4, 8], "itemsize": 264})
EVENT_HEAD = np.dtype({"names": ["time", "level", "ipv4", "source"], "formats": ["<i8", "<u4", "S16", "S32"],
                       "offsets": [0, 8, 12, 28], "itemsize": 60})
EVENT_MESSAGE_SIZE = 1024
EVENT_DATASIZE = 1088       # SlideRule's event struct: 60 + 1024, padded to 8 bytes
INDEX = np.dtype({"names": ["name", "t0", "t1", "lat0", "lon0", "lat1", "lon1", "cycle", "rgt"],
                  "formats": ["S150", "<f8", "<f8", "<f8", "<f8", "<f8", "<f8", "<u4", "<u4"],
                  "offsets": [0, 152, 160, 168, 176, 184, 192, 200, 204], "itemsize": 208})
"""``atl03rec.index`` (SlideRule v1 indexer): t0/t1 in GPS seconds, first/last reference positions."""

# ancillary records (SlideRule's AncillaryFields / ContainerRecord layouts)
ANCF_HEAD = np.dtype({"names": ["extent_id", "num_fields"], "formats": ["<u8", "<u4"], "offsets": [0, 8],
                      "itemsize": 12})
ANCF_FIELD = np.dtype({"names": ["anc_type", "field_index", "datatype", "value"], "formats": ["u1", "u1", "u1", "V8"],
                       "offsets": [0, 1, 2, 3], "itemsize": 11})
ANCE_HEAD = np.dtype({"names": ["extent_id", "num_elements", "anc_type", "field_index", "datatype"],
                      "formats": ["<u8", "<u4", "u1", "u1", "u1"], "offsets": [0, 8, 12, 13, 14], "itemsize": 15})
CONTAINER = np.dtype({"names": ["count", "start"], "formats": ["<u4", "<u4"], "offsets": [0, 4], "itemsize": 8})
CONTAINER_ENTRY = np.dtype({"names": ["size", "offset"], "formats": ["<u4", "<u4"], "offsets": [0, 4], "itemsize": 8})
# output files (SlideRule's OutputLib records)
FILE_NAME_SIZE, URL_SIZE = 128, 512
FILE_CHUNK = 1 << 20        # file bytes per arrowrec.data (the clients unpack each into a tuple of ints)
ARROW_META = np.dtype({"names": ["filename", "size"], "formats": [f"S{FILE_NAME_SIZE}", "<i8"],
                       "offsets": [0, FILE_NAME_SIZE], "itemsize": FILE_NAME_SIZE + 8})
ARROW_EOF = np.dtype({"names": ["filename", "checksum"], "formats": [f"S{FILE_NAME_SIZE}", "<u8"],
                      "offsets": [0, FILE_NAME_SIZE], "itemsize": FILE_NAME_SIZE + 8})
ARROW_REMOTE = np.dtype({"names": ["url", "size"], "formats": [f"S{URL_SIZE}", "<i8"], "offsets": [0, URL_SIZE],
                         "itemsize": URL_SIZE + 8})
SLIDERULE_ANC_TYPES = (0, 1, 2, 3)   # what the official clients name (ph, geo, atl08, atl06 fields)
DATATYPE = {"i1": 0, "i2": 1, "i4": 2, "i8": 3, "u1": 4, "u2": 5, "u4": 6, "u8": 7, "f4": 9, "f8": 10}
"""SlideRule's RecordObject field type codes (``datatype`` of ancillary records)."""
NUMPY_TYPE = {code: np.dtype("<" + name) for name, code in DATATYPE.items()}

_TYPE_NAMES = {"i1": "INT8", "i2": "INT16", "i4": "INT32", "i8": "INT64", "u1": "UINT8", "u2": "UINT16",
               "u4": "UINT32", "u8": "UINT64", "f4": "FLOAT", "f8": "DOUBLE"}


def _definition(dtype: np.dtype, flags: dict[str, str], *, time: tuple[str, ...] = (),
                hidden: tuple[str, ...] = (), size: int | None = None) -> dict:
    """SlideRule's JSON record definition of a structured dtype (offsets in bits)."""
    out: dict = {"__datasize": dtype.itemsize if size is None else size}
    for name in dtype.names:
        if name in hidden:
            continue
        sub, offset = dtype.fields[name][:2]
        if sub.kind == "S":
            kind, elements = "STRING", sub.itemsize
        elif sub.subdtype is not None:   # a fixed array, e.g. canopy_h_metrics
            kind, elements = _TYPE_NAMES[sub.base.str[1:]], int(np.prod(sub.shape))
        else:
            kind, elements = ("TIME8" if name in time else _TYPE_NAMES[sub.str[1:]]), 1
        out[name] = {"type": kind, "offset": offset * 8, "elements": elements,
                     "flags": "LE" + flags.get(name, "")}
    return out


def _batch(sub_type: str, size: int = 0) -> dict:
    return {"type": sub_type, "offset": size * 8, "elements": 0, "flags": "LE|BATCH"}


_AUX = "|AUX"
_ELEVATION_FLAGS = {"extent_id": "|I", "time": "|T", "latitude": "|Y", "longitude": "|X",
                    **{n: _AUX for n in ("n_fit_photons", "pflags", "rgt", "cycle", "region", "spot", "gt",
                                         "dh_fit_dx", "w_surface_window_final", "rms_misfit", "h_sigma")}}
_EXTENT_FLAGS = {"extent_id": "|I", **{n: _AUX for n in ("region", "track", "pair", "sc_orient", "rgt", "cycle",
                                                         "background_rate", "solar_elevation")}}
_VEGETATION_FLAGS = {"extent_id": "|I", "time": "|T", "latitude": "|Y", "longitude": "|X"}  # SlideRule 5.5
_PHOTON_FLAGS = {"time": "|T", "latitude": "|Y", "longitude": "|X",
                 **{n: _AUX for n in ("relief", "landcover", "snowcover", "atl08_class", "atl03_cnf",
                                      "quality_ph", "yapc_score")}}

DEFINITIONS: dict[str, dict] = {
    "atl06rec": {"__datasize": 0, "elevation": _batch("atl06rec.elevation")},
    "atl06rec.elevation": _definition(ELEVATION, _ELEVATION_FLAGS, time=("time",)),
    "atl06rec-compact": {"__datasize": 0, "elevation": _batch("atl06rec-compact.elevation")},
    "atl06rec-compact.elevation": _definition(COMPACT, _ELEVATION_FLAGS, time=("time",)),
    # spacecraft_velocity and extent_length are in SlideRule's struct but not in its definition
    "atl03rec": {**_definition(EXTENT, _EXTENT_FLAGS, hidden=("spacecraft_velocity", "extent_length")),
                 "photons": _batch("atl03rec.photons", EXTENT.itemsize)},
    "atl03rec.photons": _definition(PHOTON, _PHOTON_FLAGS, time=("time",)),
    "atl03rec.index": _definition(INDEX, {}),
    # pflags is in SlideRule's vegetation struct but not in its definition
    "atl08rec": {"__datasize": 0, "vegetation": _batch("atl08rec.vegetation")},
    "atl08rec.vegetation": _definition(VEGETATION, _VEGETATION_FLAGS, time=("time",), hidden=("pflags",)),
    "waverec": {**_definition(WAVEFORM, {}),
                "waveform": {"type": "FLOAT", "offset": WAVEFORM.itemsize * 8, "elements": 0, "flags": "LE"}},
    **{rectype: {**_definition(ANCF_HEAD, {}), "fields": _batch("ancfrec.field", ANCF_HEAD.itemsize)}
       for rectype in ("ancfrec", "ancfrec-icesat2sr")},
    "ancfrec.field": {**_definition(ANCF_FIELD, {}, hidden=("value",)),
                      "value": {"type": "UINT8", "offset": 24, "elements": 8, "flags": "LE"}},
    **{rectype: {**_definition(ANCE_HEAD, {}), "data": {"type": "UINT8", "offset": ANCE_HEAD.itemsize * 8,
                                                        "elements": 0, "flags": "LE"}}
       for rectype in ("ancerec", "ancerec-icesat2sr")},
    "conrec": {**_definition(CONTAINER, {}, size=16), "records": {"type": "conrec.entry", "offset": 64,
                                                                 "elements": 0, "flags": "LE"}},
    "conrec.entry": _definition(CONTAINER_ENTRY, {}),
    "arrowrec.meta": _definition(ARROW_META, {}),
    "arrowrec.data": {"__datasize": FILE_NAME_SIZE,
                      "filename": {"type": "STRING", "offset": 0, "elements": FILE_NAME_SIZE, "flags": "LE"},
                      "data": {"type": "UINT8", "offset": FILE_NAME_SIZE * 8, "elements": 0, "flags": "LE"}},
    "arrowrec.eof": _definition(ARROW_EOF, {}),
    "arrowrec.remote": _definition(ARROW_REMOTE, {}),
    "exceptrec": _definition(EXCEPT, {}),
    "eventrec": {**_definition(EVENT_HEAD, {}, size=EVENT_DATASIZE),
                 "message": {"type": "STRING", "offset": EVENT_HEAD.itemsize * 8, "elements": 0, "flags": "LE"}},
}
"""Every record type we emit (and its sub-records), as ``/source/definition`` serves them."""


def definition(rectype: str) -> dict | None:
    """The JSON definition of a record type, or None when we do not define it."""
    return DEFINITIONS.get(rectype)


# ---------------------------------------------------------------------- encoding
def frame(rectype: str, payload: bytes) -> bytes:
    """One record: header, NUL-terminated type name, payload."""
    name = rectype.encode("ascii") + b"\0"
    return _HEADER.pack(RECORD_VERSION, len(name), len(payload)) + name + payload


def _ascii(text: str, size: int) -> bytes:
    """The clients decode STRING fields as ASCII: replace anything else, keep room for the NUL."""
    return text.encode("ascii", "replace")[: size - 1]


def exception_record(code: int, level: int, text: str) -> bytes:
    """An ``exceptrec`` (the clients log it; codes 0..-4 only, never -5)."""
    if code not in _SENDABLE_CODES:
        code = ERROR
    rec = np.zeros(1, dtype=EXCEPT)
    rec["code"], rec["level"], rec["text"] = code, level, _ascii(text, 256)
    return frame("exceptrec", rec.tobytes())


def event_record(level: int, message: str, source: str = "icesat2sr", when_ns: int | None = None) -> bytes:
    """An ``eventrec`` (log message; the clients print ``time:source: message``)."""
    head = np.zeros(1, dtype=EVENT_HEAD)
    head["time"] = _time.time_ns() if when_ns is None else when_ns
    head["level"], head["ipv4"], head["source"] = level, b"127.0.0.1", _ascii(source, 32)
    text = _ascii(message, EVENT_MESSAGE_SIZE) + b"\0"
    return frame("eventrec", head.tobytes() + text)


def as_layout(rows: np.ndarray, layout: np.dtype) -> np.ndarray:
    """``rows`` in exactly the wire layout ``layout`` (offsets and padding included), contiguous.

    ``np.concatenate`` of structured arrays returns a packed copy of the dtype (same fields, no
    padding); this puts such rows back into the layout the definitions describe.
    """
    if rows.dtype == layout:
        return np.ascontiguousarray(rows)
    if set(rows.dtype.names or ()) != set(layout.names):
        raise TypeError(f"rows with fields {rows.dtype.names} do not fit the layout {layout.names}")
    out = np.zeros(len(rows), dtype=layout)
    for name in layout.names:
        out[name] = rows[name]
    return out


def elevation_records(rows: np.ndarray, batch: int = BATCH_SIZE,
                      ancillary: dict[str, np.ndarray] | None = None) -> Iterator[bytes]:
    """``atl06rec`` (or ``atl06rec-compact``) records of at most ``batch`` elevations; none when empty.

    With ``ancillary`` columns (aligned with ``rows``), each batch goes in a ``conrec`` with one
    ``ancfrec`` per elevation after it, as SlideRule's ``Atl06Dispatch`` posts them.
    """
    compact = set(rows.dtype.names or ()) == set(COMPACT.names)
    rows = as_layout(rows, COMPACT if compact else ELEVATION)
    rectype = "atl06rec-compact" if compact else "atl06rec"
    for start in range(0, len(rows), batch):
        record = frame(rectype, rows[start:start + batch].tobytes())
        if not ancillary:
            yield record
            continue
        part = {key: v[start:start + batch] for key, v in ancillary.items()}
        ids = rows["extent_id"][start:start + batch]
        yield container([record, *_field_records(ids, part)])


def _field_records(extent_ids: np.ndarray, columns: dict[str, np.ndarray]) -> list[bytes]:
    """``ancfrec`` (SlideRule's anc_types) then ``ancfrec-icesat2sr`` (ours) per elevation."""
    out = []
    for rectype, keys in _by_record(columns):
        k, n = len(extent_ids), len(keys)
        body = np.zeros((k,), dtype=np.dtype([("head", ANCF_HEAD), ("fields", ANCF_FIELD, (n,))]))
        body["head"]["extent_id"], body["head"]["num_fields"] = extent_ids, n
        for j, key in enumerate(keys):
            anc_type, index, _ = parse_key(key)
            values = columns[key]
            code = 3 if values.dtype.kind in "iu" else 10
            body["fields"]["anc_type"][:, j], body["fields"]["field_index"][:, j] = anc_type, index
            body["fields"]["datatype"][:, j] = code
            body["fields"]["value"][:, j] = values.astype(NUMPY_TYPE[code]).view("V8")
        out.append(_frames(rectype, body.view(np.uint8).reshape(k, -1)))
    return [bytes(row) for pair in zip(*out, strict=True) for row in pair]


def _by_record(columns: dict) -> list[tuple[str, list[str]]]:
    ours = [k for k in columns if parse_key(k)[0] not in SLIDERULE_ANC_TYPES]
    theirs = [k for k in columns if parse_key(k)[0] in SLIDERULE_ANC_TYPES]
    suffix = "-icesat2sr"
    return [(r, keys) for r, keys in (("ancfrec", theirs), ("ancfrec" + suffix, ours)) if keys]


def _frames(rectype: str, payloads: np.ndarray) -> np.ndarray:
    """Records of one type and payload size at once: (k, L) payload bytes -> (k, 8 + name + L) bytes."""
    head = np.frombuffer(_HEADER.pack(RECORD_VERSION, len(rectype) + 1, payloads.shape[1])
                         + rectype.encode("ascii") + b"\0", dtype=np.uint8)
    return np.hstack([np.broadcast_to(head, (len(payloads), head.size)), payloads])


def container(records: list[bytes]) -> bytes:
    """A ``conrec`` holding ``records`` (SlideRule's ContainerRecord: count, start, entries, records)."""
    start = CONTAINER.itemsize + CONTAINER_ENTRY.itemsize * len(records)
    sizes = np.array([len(r) for r in records], dtype=np.int64)
    entries = np.zeros(len(records), dtype=CONTAINER_ENTRY)
    entries["size"] = sizes
    entries["offset"] = start + np.concatenate(([0], np.cumsum(sizes)[:-1]))
    head = np.array([(len(records), start)], dtype=CONTAINER).tobytes()
    return frame("conrec", head + entries.tobytes() + b"".join(records))


def photon_records(extents: np.ndarray, photons: np.ndarray, offsets: np.ndarray,
                   ancillary: dict[str, np.ndarray] | None = None) -> Iterator[bytes]:
    """One ``atl03rec`` per extent, carrying that extent's photons.

    With ``ancillary`` columns (aligned with ``photons``), each extent goes in a ``conrec`` with one
    ``ancerec`` per field after it (``ancerec-icesat2sr`` for our anc_types), as SlideRule's reader
    posts them.
    """
    extents, photons = as_layout(extents, EXTENT), as_layout(photons, PHOTON)
    keys = [(key, parse_key(key)) for key in ancillary or ()]
    for i in range(len(extents)):
        a, b = offsets[i], offsets[i + 1]
        record = frame("atl03rec", extents[i:i + 1].tobytes() + photons[a:b].tobytes())
        if not keys:
            yield record
            continue
        parts = [record]
        for key, (anc_type, index, _) in keys:
            values = ancillary[key][a:b]
            head = np.array([(extents["extent_id"][i], b - a, anc_type, index, DATATYPE[values.dtype.str[1:]])],
                            dtype=ANCE_HEAD)
            rectype = "ancerec" if anc_type in SLIDERULE_ANC_TYPES else "ancerec-icesat2sr"
            parts.append(frame(rectype, head.tobytes() + values.astype(values.dtype.newbyteorder("<")).tobytes()))
        yield container(parts)


def vegetation_records(rows: np.ndarray, batch: int = BATCH_SIZE,
                       ancillary: dict[str, np.ndarray] | None = None) -> Iterator[bytes]:
    """``atl08rec`` records of at most ``batch`` PhoREAL extents; none when empty.

    With ``ancillary`` columns (aligned with ``rows``), each batch goes in a ``conrec`` with one
    ``ancfrec`` per extent after it, as SlideRule's ``Atl08Dispatch`` posts them.
    """
    rows = as_layout(rows, VEGETATION)
    for start in range(0, len(rows), batch):
        record = frame("atl08rec", rows[start:start + batch].tobytes())
        if not ancillary:
            yield record
            continue
        part = {key: v[start:start + batch] for key, v in ancillary.items()}
        yield container([record, *_field_records(rows["extent_id"][start:start + batch], part)])


def waveform_records(heads: np.ndarray, waveform: np.ndarray) -> Iterator[bytes]:
    """One ``waverec`` per extent: its head and its ``num_bins`` float32 bins."""
    heads = as_layout(heads, WAVEFORM)
    waveform = np.ascontiguousarray(waveform, dtype="<f4")
    start = 0
    for i in range(len(heads)):
        end = start + int(heads["num_bins"][i])
        yield frame("waverec", heads[i:i + 1].tobytes() + waveform[start:end].tobytes())
        start = end


def file_records(path: str | os.PathLike, filename: str, checksum: bool = False,
                 chunk: int = FILE_CHUNK) -> Iterator[bytes]:
    """An output file as SlideRule streams it: ``arrowrec.meta``, ``arrowrec.data`` records of at
    most ``chunk`` bytes, and with ``checksum`` an ``arrowrec.eof`` (the byte sum, modulo 2**64).

    ``filename`` is where the client writes the file (the request's ``output.path``).
    """
    name = _ascii(filename, FILE_NAME_SIZE)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = np.zeros(1, dtype=ARROW_META)
        head["filename"], head["size"] = name, size
        yield frame("arrowrec.meta", head.tobytes())
        padded = name.ljust(FILE_NAME_SIZE, b"\0")
        total = np.uint64(0)
        while piece := f.read(chunk):
            if checksum:
                total += np.frombuffer(piece, dtype=np.uint8).sum(dtype=np.uint64)
            yield frame("arrowrec.data", padded + piece)
    if checksum:
        eof = np.zeros(1, dtype=ARROW_EOF)
        eof["filename"], eof["checksum"] = name, total
        yield frame("arrowrec.eof", eof.tobytes())


def remote_record(url: str, size: int) -> bytes:
    """``arrowrec.remote``: the output file went to ``url`` (``s3://...``), ``size`` bytes."""
    rec = np.zeros(1, dtype=ARROW_REMOTE)
    rec["url"], rec["size"] = _ascii(url, URL_SIZE), size
    return frame("arrowrec.remote", rec.tobytes())


def index_records(rows: np.ndarray) -> Iterator[bytes]:
    """One ``atl03rec.index`` per granule (rows with the :data:`INDEX` fields)."""
    out = as_layout(rows, INDEX)
    for i in range(len(out)):
        yield frame("atl03rec.index", out[i:i + 1].tobytes())


GRANULE_SOURCE = "icesat2sr.granules.reader"
_UNITS = {"atl06": "elevations", "atl03s": "photons", "atl08": "vegetation extents", "atl03x": "rows"}
_GRANULE_DONE = re.compile(r"^(?P<granule>\S+): (?P<what>.*) \((?P<done>\d+)/(?P<total>\d+) granules\)$")


def result_records(result: GranuleResult, done: int | None = None, total: int | None = None,
                   rows: bool = True) -> Iterator[bytes]:
    """Everything one granule's result puts on the wire, then an ``eventrec`` marking its end.

    A failed granule gives an ``exceptrec`` with its code; an empty one a warning (code -4). The
    closing event (source :data:`GRANULE_SOURCE`) lets a reader attribute the preceding records
    to their granule; the official clients just log it. ``rows=False`` leaves the result's rows
    out (they go to an output file).
    """
    if result.error is None and rows:
        yield from data_records(result)
    yield from end_records(result, done, total, rows=rows)


def data_records(result: GranuleResult) -> Iterator[bytes]:
    """The records of a (partial) result's rows."""
    if result.rows == 0:
        return
    if result.kind == "atl06":
        yield from elevation_records(result.elevations, ancillary=result.ancillary)
    elif result.kind == "atl08":
        yield from vegetation_records(result.vegetation, ancillary=result.ancillary)
        if result.waveforms is not None:
            yield from waveform_records(result.waveforms, result.waveform)
    else:
        yield from photon_records(result.extents, result.photons, result.offsets, result.ancillary)


def table_counts(result: GranuleResult) -> tuple[int, int]:
    """Rows of a (partial) result, and its photon extents (atl03s)."""
    return result.rows, 0 if result.extents is None else len(result.extents)


def end_records(result: GranuleResult, done: int | None = None, total: int | None = None, *,
                rows: bool = True, counted: tuple[int, int] | None = None) -> Iterator[bytes]:
    """What closes a granule on the wire once its rows are sent: its error, or a warning when it
    had no rows, and the event naming it (with ``done``/``total``). ``counted`` gives the rows and
    extents of a granule whose rows were sent in parts (its closing result holds none)."""
    n_rows, n_extents = counted if counted is not None else table_counts(result)
    if result.error is not None:
        code, message = result.error
        yield exception_record(code, ERROR_LEVEL, message)
        what = "failed"
    elif n_rows == 0:
        yield exception_record(EMPTY_SUBSET, WARNING_LEVEL, f"{result.granule}: no data in the requested subset")
        what = "0 " + _UNITS[result.kind]
    elif not rows:
        what = f"{n_rows} rows"
    elif result.kind == "atl06":
        what = f"{n_rows} elevations"
    elif result.kind == "atl08":
        what = f"{n_rows} vegetation extents"
    else:
        what = f"{n_rows} photons in {n_extents} extents"
    if done is not None and total is not None:
        yield event_record(INFO_LEVEL, f"{result.granule}: {what} ({done}/{total} granules)", GRANULE_SOURCE)


# ---------------------------------------------------------------------- decoding
class StreamError(ValueError):
    """The byte stream is not a valid record stream."""


def iter_records(chunks: Iterable[bytes]) -> Iterator[tuple[str, bytes]]:
    """Split a record stream (in chunks of any size) into ``(rectype, payload)`` pairs.

    Raises
    ------
    StreamError
        Wrong record version, or a stream that ends inside a record.
    """
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        start = 0
        while len(buffer) - start >= _HEADER.size:
            version, type_size, data_size = _HEADER.unpack_from(buffer, start)
            if version != RECORD_VERSION:
                raise StreamError(f"invalid record version {version} (expected {RECORD_VERSION})")
            end = start + _HEADER.size + type_size + data_size
            if len(buffer) < end:
                break
            if type_size > 0:
                head = start + _HEADER.size
                rectype = bytes(buffer[head:head + type_size]).split(b"\0", 1)[0].decode("ascii")
                yield rectype, bytes(buffer[head + type_size:end])
            start = end
        del buffer[:start]
    if buffer:
        raise StreamError(f"stream ended inside a record ({len(buffer)} bytes left)")


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


@dataclass
class Message:
    """A decoded ``exceptrec`` (``code`` set) or ``eventrec`` (``code`` None)."""

    level: int
    text: str
    code: int | None = None
    source: str = ""

    @property
    def granule_done(self) -> tuple[str, int, int] | None:
        """``(granule, done, total)`` if this is the end-of-granule event of :func:`result_records`."""
        if self.code is not None or self.source != GRANULE_SOURCE:
            return None
        m = _GRANULE_DONE.match(self.text)
        return (m["granule"], int(m["done"]), int(m["total"])) if m else None


def decode_message(rectype: str, payload: bytes) -> Message:
    """Decode an ``exceptrec`` or ``eventrec`` payload."""
    if rectype == "exceptrec":
        rec = np.frombuffer(payload[:EXCEPT.itemsize], dtype=EXCEPT)[0]
        return Message(int(rec["level"]), _text(rec["text"]), code=int(rec["code"]))
    head = np.frombuffer(payload[:EVENT_HEAD.itemsize], dtype=EVENT_HEAD)[0]
    return Message(int(head["level"]), _text(payload[EVENT_HEAD.itemsize:]), source=_text(head["source"]))


_FILE_RECORDS = {"arrowrec.meta": ARROW_META, "arrowrec.eof": ARROW_EOF, "arrowrec.remote": ARROW_REMOTE,
                 "arrowrec.data": None}


def decode_file_record(rectype: str, payload: bytes) -> dict:
    """An ``arrowrec.*`` record as a dict of its fields (``data`` as bytes)."""
    layout = _FILE_RECORDS[rectype]
    if layout is None:
        return {"rectype": rectype, "filename": _text(payload[:FILE_NAME_SIZE]), "data": payload[FILE_NAME_SIZE:]}
    rec = np.frombuffer(payload[:layout.itemsize], dtype=layout)[0]
    out = {"rectype": rectype}
    for name in layout.names:
        out[name] = _text(rec[name]) if layout[name].kind == "S" else int(rec[name])
    return out


@dataclass
class Tables:
    """Rows decoded from a stream, ready for :mod:`icesat2sr.formats.frames` (one granule or many)."""

    elevations: list[np.ndarray] = field(default_factory=list)
    extents: list[np.ndarray] = field(default_factory=list)
    photons: list[np.ndarray] = field(default_factory=list)
    index: list[np.ndarray] = field(default_factory=list)
    vegetation: list[np.ndarray] = field(default_factory=list)
    waveforms: list[np.ndarray] = field(default_factory=list)
    waveform: list[np.ndarray] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    # ancillary values: (anc_type, field_index) -> {extent_id: value (ancfrec) or array (ancerec)}
    anc_values: dict = field(default_factory=dict)
    # output files: [{"rectype", "filename"|"url", "size"|"checksum"|"data"}] in arrival order
    files: list = field(default_factory=list)

    def add(self, rectype: str, payload: bytes) -> Message | None:
        """Decode one record into the tables; returns it if it is a message."""
        if rectype == "conrec":
            start = int(np.frombuffer(payload[:CONTAINER.itemsize], dtype=CONTAINER)[0]["start"])
            for sub_type, sub_payload in iter_records([payload[start:]]):
                self.add(sub_type, sub_payload)
        elif rectype in ("ancfrec", "ancfrec-icesat2sr"):
            head = np.frombuffer(payload[:ANCF_HEAD.itemsize], dtype=ANCF_HEAD)[0]
            n = int(head["num_fields"])
            fields = np.frombuffer(payload, dtype=ANCF_FIELD, count=n, offset=ANCF_HEAD.itemsize)
            for f in fields:
                value = np.frombuffer(f["value"].tobytes(), dtype=NUMPY_TYPE[int(f["datatype"])], count=1)[0]
                key = (int(f["anc_type"]), int(f["field_index"]))
                self.anc_values.setdefault(key, {})[int(head["extent_id"])] = value
        elif rectype in ("ancerec", "ancerec-icesat2sr"):
            head = np.frombuffer(payload[:ANCE_HEAD.itemsize], dtype=ANCE_HEAD)[0]
            data = np.frombuffer(payload, dtype=NUMPY_TYPE[int(head["datatype"])], count=int(head["num_elements"]),
                                 offset=ANCE_HEAD.itemsize)
            key = (int(head["anc_type"]), int(head["field_index"]))
            self.anc_values.setdefault(key, {})[int(head["extent_id"])] = data
        elif rectype == "atl06rec":
            self.elevations.append(np.frombuffer(payload, dtype=ELEVATION))
        elif rectype == "atl06rec-compact":
            self.elevations.append(np.frombuffer(payload, dtype=COMPACT))
        elif rectype == "atl03rec":
            self.extents.append(np.frombuffer(payload[:EXTENT.itemsize], dtype=EXTENT))
            self.photons.append(np.frombuffer(payload[EXTENT.itemsize:], dtype=PHOTON))
        elif rectype == "atl03rec.index":
            self.index.append(np.frombuffer(payload, dtype=INDEX))
        elif rectype == "atl08rec":
            self.vegetation.append(np.frombuffer(payload, dtype=VEGETATION))
        elif rectype == "waverec":
            head = np.frombuffer(payload[:WAVEFORM.itemsize], dtype=WAVEFORM)
            bins = np.frombuffer(payload[WAVEFORM.itemsize:], dtype="<f4")
            if len(bins) != int(head["num_bins"][0]):
                raise StreamError(f"waverec with {len(bins)} bins, its head says {int(head['num_bins'][0])}")
            self.waveforms.append(head)
            self.waveform.append(bins)
        elif rectype in _FILE_RECORDS:
            self.files.append(decode_file_record(rectype, payload))
        elif rectype in ("exceptrec", "eventrec"):
            message = decode_message(rectype, payload)
            self.messages.append(message)
            return message
        else:
            raise StreamError(f"unknown record type {rectype!r}")
        return None

    @property
    def empty(self) -> bool:
        """Whether no rows were decoded."""
        return not (self.elevations or self.extents or self.index or self.vegetation)

    def result(self, granule: str, kind: str, compact: bool = False, fields: list | None = None) -> GranuleResult:
        """The decoded rows as one :class:`GranuleResult` (``kind`` ``atl06``, ``atl03s`` or ``atl08``).

        ``fields`` (:func:`icesat2sr.granules.ancillary.requested_fields` of the request) names the
        ancillary values; without it they are named ``field<index>``.
        """
        out = GranuleResult(granule, kind)
        if kind == "atl08":
            out.vegetation = np.concatenate(self.vegetation) if self.vegetation else np.zeros(0, dtype=VEGETATION)
            if self.waveforms:
                out.waveforms = np.concatenate(self.waveforms)
                out.waveform = np.concatenate(self.waveform)
            out.ancillary = self._columns(out.vegetation["extent_id"], None, fields)
            return out
        if kind == "atl06":
            dtype = COMPACT if compact else ELEVATION
            parts = [p for p in self.elevations if p.dtype == dtype]
            out.elevations = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
            out.ancillary = self._columns(out.elevations["extent_id"], None, fields)
            return out
        out.extents = np.concatenate(self.extents) if self.extents else np.zeros(0, dtype=EXTENT)
        out.photons = np.concatenate(self.photons) if self.photons else np.zeros(0, dtype=PHOTON)
        counts = [len(p) for p in self.photons]
        out.offsets = np.concatenate(([0], np.cumsum(counts, dtype=np.int64))).astype(np.int64)
        out.ancillary = self._columns(out.extents["extent_id"], counts, fields)
        return out

    def _columns(self, extent_ids: np.ndarray, counts: list[int] | None, fields: list | None) -> dict | None:
        """Ancillary columns aligned with the rows (one value per extent id, or its photons)."""
        names = {(f.anc_type, f.index): f.name for f in fields or ()}
        keys = list(names) if fields else sorted(self.anc_values)
        if not keys:
            return None
        out = {}
        for anc_type, index in keys:
            by_id = self.anc_values.get((anc_type, index), {})
            key = f"{anc_type}:{index}:{names.get((anc_type, index), f'field{index}')}"
            if counts is None:
                values = [by_id.get(int(e), np.nan) for e in extent_ids]
                out[key] = np.array(values) if values else np.zeros(0)
            else:
                parts = [by_id.get(int(e), np.full(n, np.nan)) for e, n in zip(extent_ids, counts, strict=True)]
                out[key] = np.concatenate(parts) if parts else np.zeros(0)
        return out

    def index_rows(self) -> np.ndarray:
        """Decoded index entries as one :data:`INDEX` array."""
        return np.concatenate(self.index) if self.index else np.zeros(0, dtype=INDEX)


def decode(data: bytes | Iterable[bytes]) -> Tables:
    """Decode a whole record stream.

    Examples
    --------
    >>> from icesat2sr.science.records import ELEVATION
    >>> rows = np.zeros(300, dtype=ELEVATION)
    >>> t = decode(b"".join(elevation_records(rows)))
    >>> [len(p) for p in t.elevations]
    [256, 44]
    """
    tables = Tables()
    for rectype, payload in iter_records([data] if isinstance(data, bytes | bytearray) else data):
        tables.add(rectype, payload)
    return tables
