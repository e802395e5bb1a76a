"""Output files: results as GeoParquet, Parquet, Feather or CSV, written as granules arrive.

The one set of file writers: the CLI's ``-o``, the local server's and the serverless aggregator's
``output`` (SlideRule's ``OutputFields``) all write through :class:`OutputWriter`, with pyarrow
alone (the aggregator Lambda carries no pandas). A file holds what SlideRule's holds:

* columns: the frame's (:func:`icesat2sr.formats.frames.frame_columns` for atl06/atl03s;
  :mod:`icesat2sr.science.xseries` columns plus ``srcid`` for atl03x); with ``geoparquet`` the
  longitude/latitude columns become one WKB ``geometry`` column (GeoParquet 1.0, EPSG:7912);
  ``fields`` keeps only the listed columns (and always the time column);
* the time column (``time``, or ``time_ns`` for the x-series) as ``timestamp[ns]``, named as the
  frame index in the pandas metadata (Parquet formats), so the clients' ``read_parquet`` gives
  SlideRule's frame;
* Parquet key-value metadata: ``sliderule`` (the request parameters), for the x-series ``meta``
  (``{"endpoint", "srctbl": {srcid: granule}}``) and ``recordinfo`` (time/x/y/z column names). The
  clients copy these keys into ``gdf.attrs``. Feather and CSV files carry no metadata, as
  SlideRule's.

``h5`` (the CLI's, not an ``output`` format) holds one dataset per column (time as int64 ns) with
the CRS and the request as file attributes.

Rows are written per granule (a Parquet row group, a Feather record batch, CSV lines), so the
writer holds one granule at a time. Files are written under a temporary name beside the target and
renamed by :meth:`OutputWriter.finish`: an interrupted write leaves the target as it was.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import io
import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..science.records import GranuleResult
from ..science.xseries import TIME as XTIME
from .frames import frame_columns
from .geoparquet import arrow_column, geo_metadata, numpy_array, pandas_metadata, wkb_points

FORMATS = ("geoparquet", "parquet", "feather", "csv", "h5")
EXTENSIONS = {".parquet": "geoparquet", ".geoparquet": "geoparquet", ".feather": "feather", ".arrow": "feather",
              ".csv": "csv", ".h5": "h5", ".hdf5": "h5"}
"""File extension -> format, for the CLI's ``-o``."""
RECORD_INFO = {"atl03x": {"time": XTIME, "x": "longitude", "y": "latitude", "z": "height"},
               "atl03x-fit": {"time": XTIME, "x": "longitude", "y": "latitude", "z": "h_mean"},
               "atl03x-phoreal": {"time": XTIME, "x": "longitude", "y": "latitude", "z": "h_canopy"}}


def format_of(path: str | os.PathLike) -> str:
    """The format a file name asks for (by extension)."""
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise ValueError(f"no output format for '{suffix}' files (use {', '.join(sorted(EXTENSIONS))})")
    return EXTENSIONS[suffix]


def result_table(result: GranuleResult, *, geo: bool = True, fields: Sequence[str] | None = None,
                 srcid: int = 0, flat: bool = False):
    """A ``pyarrow.Table`` of one (possibly merged) result, without file metadata.

    Parameters
    ----------
    result : GranuleResult
        Tables of one granule, or of several merged.
    geo : bool
        One WKB ``geometry`` column instead of longitude/latitude (GeoParquet).
    fields : sequence of str, optional
        Keep only these columns (plus the time column, and ``geometry`` when ``geo``).
    srcid : int
        The x-series ``srcid`` of the result's granule (its position in the request).
    flat : bool
        Array columns (PhoREAL's) as CSV holds them: ``name_0..name_k`` for fixed-length arrays,
        space-separated numbers for variable-length ones (as :func:`icesat2sr.formats.frames.csv_table`).
    """
    if result.kind == "atl03x":
        time_name, columns, lon, lat = _xseries_columns(result, geo, srcid)
        return _table(time_name, columns, lon, lat, geo=geo, fields=fields, flat=flat)
    return rows_table(*frame_columns(result), geo=geo, fields=fields, flat=flat)


def rows_table(time_ns: np.ndarray, columns: dict, lon: np.ndarray, lat: np.ndarray, *, geo: bool = True,
               fields: Sequence[str] | None = None, flat: bool = False):
    """A ``pyarrow.Table`` of frame rows (:func:`icesat2sr.formats.frames.frame_columns`); options as
    :func:`result_table`'s."""
    if not geo and "latitude" not in columns:
        columns = {k: v for k, v in columns.items() if k != "geometry"} | {"latitude": lat, "longitude": lon}
    return _table("time", {"time": time_ns, **columns}, lon, lat, geo=geo, fields=fields, flat=flat)


def preload(fmt: str) -> None:
    """Import what writing ``fmt`` needs, e.g. in a thread while the first results are computed."""
    import pyarrow

    if fmt in ("geoparquet", "parquet"):
        import pyarrow.parquet  # noqa: F401


def _table(time_name: str, columns: dict, lon: np.ndarray, lat: np.ndarray, *, geo: bool,
           fields: Sequence[str] | None, flat: bool):
    import pyarrow as pa

    if not geo:
        columns.pop("geometry", None)
    if fields:
        keep = {*fields, time_name, "geometry"}
        columns = {k: v for k, v in columns.items() if k in keep}
    names, arrays = [], []
    for name, values in columns.items():
        if flat and values is not None and (values.ndim == 2 or values.dtype == object):
            _flat_column(name, values, names, arrays)
            continue
        names.append(name)
        if name == "geometry":
            arrays.append(_geometry(lon, lat))
        elif name == time_name:
            arrays.append(numpy_array(np.asarray(values, dtype=np.int64).view("datetime64[ns]")))
        else:
            arrays.append(arrow_column(values))
    return pa.Table.from_arrays(arrays, names=names)


def _flat_column(name: str, values: np.ndarray, names: list, arrays: list) -> None:
    import pyarrow as pa

    if values.ndim == 2:
        for k in range(values.shape[1]):
            names.append(f"{name}_{k}")
            arrays.append(numpy_array(values[:, k]))
    else:
        names.append(name)
        arrays.append(pa.array([" ".join(f"{x:.10g}" for x in v) for v in values], type=pa.string()))


def _xseries_columns(result: GranuleResult, geo: bool, srcid: int) -> tuple[str, dict, np.ndarray, np.ndarray]:
    frame = dict(result.frame)
    lon, lat = frame["longitude"], frame["latitude"]
    frame["srcid"] = np.full(len(lon), srcid, dtype=np.int32)
    if geo:
        del frame["longitude"], frame["latitude"]
        frame["geometry"] = None
    return XTIME, frame, lon, lat


def _geometry(lon: np.ndarray, lat: np.ndarray):
    import pyarrow as pa

    offsets, data = wkb_points(lon, lat)
    large = len(data) >= 2**31 - 1
    return pa.Array.from_buffers(pa.large_binary() if large else pa.binary(), len(lon),
                                 [None, pa.py_buffer(offsets if large else offsets.astype(np.int32)),
                                  pa.py_buffer(data)])


def file_metadata(schema, kind: str, parms: Mapping | None, *, geo: bool, granules: Sequence[str] = (),
                  fit: bool = False) -> dict[bytes, bytes]:
    """Parquet key-value metadata of a results file (see the module notes)."""
    time_name = XTIME if kind == "atl03x" else "time"
    meta = {b"pandas": json.dumps(pandas_metadata(schema, time_name)).encode()}
    if geo:
        meta[b"geo"] = json.dumps(geo_metadata()).encode()
    meta[b"sliderule"] = json.dumps(dict(parms or {})).encode()
    if kind == "atl03x":
        srctbl = {str(i): g for i, g in enumerate(granules)}
        meta[b"meta"] = json.dumps({"endpoint": "atl03x", "srctbl": srctbl}).encode()
        stage = "atl03x-fit" if fit else "atl03x-phoreal" if (parms or {}).get("phoreal") is not None else "atl03x"
        meta[b"recordinfo"] = json.dumps(RECORD_INFO[stage]).encode()
    return meta


class FinishOnExit(abc.ABC):
    """A file as a context manager: ``finish()`` when the block ends, ``abort()`` when it raises."""

    @abc.abstractmethod
    def finish(self):
        """Complete the file."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Drop the partial file."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()


class OutputWriter(FinishOnExit):
    """A results file written granule by granule: ``add()`` each result, then ``finish()``.

    Parameters
    ----------
    path : path-like
        The file to write (created under a temporary name beside it, renamed by ``finish``).
    fmt : {"geoparquet", "parquet", "feather", "csv", "h5"}
    kind : {"atl06", "atl03s", "atl03x"}
    parms : mapping, optional
        The request parameters (``sliderule`` metadata).
    granules : sequence of str
        The request's granules, in order: an x-series row's ``srcid`` is its granule's position.
    fields : sequence of str, optional
        Keep only these columns.
    validate : bool
        Check every table fully before writing it (SlideRule's ``with_validation``).

    Examples
    --------
    >>> with OutputWriter("out.parquet", "geoparquet", kind="atl06") as w:   # doctest: +SKIP
    ...     for result in results:
    ...         w.add(result)
    """

    def __init__(self, path: str | os.PathLike, fmt: str, *, kind: str, parms: Mapping | None = None,
                 granules: Sequence[str] = (), fields: Sequence[str] | None = None, validate: bool = False):
        if fmt not in FORMATS:
            raise ValueError(f"unsupported output format {fmt!r} (use {', '.join(FORMATS)})")
        self.path = Path(path)
        self.format, self.kind, self.parms = fmt, kind, parms
        self.granules = list(granules)
        self.fields, self.validate = fields, validate
        self.rows = 0
        self._srcid = {g: i for i, g in enumerate(self.granules)}
        self._schema = None
        self._writer = None
        self._empty = None
        directory = self.path.parent if str(self.path.parent) else Path(".")
        self._tmp = directory / f".{self.path.name}.{uuid.uuid4().hex}.part"
        self._tmp.open("xb").close()   # default permissions (mkstemp's 0600 would survive the rename)
        self._done = False

    # ------------------------------------------------------------------ writing
    def add(self, result: GranuleResult) -> None:
        """Append one result's rows (a failed granule adds nothing)."""
        if result.error is not None:
            return
        table = self.table(result)
        if table.num_rows == 0:   # its dtypes may be placeholders: only used when nothing else comes
            if self._empty is None:
                self._empty = table
            return
        self._write(table)

    def table(self, result: GranuleResult):
        """The table this file holds for a (partial) result (:func:`result_table` with its options)."""
        return result_table(result, geo=self.format == "geoparquet", fields=self.fields,
                            srcid=self._srcid.get(result.granule, 0), flat=self.format == "csv")

    def rows_table(self, time_ns: np.ndarray, columns: dict, lon: np.ndarray, lat: np.ndarray):
        """The table this file holds for some frame rows (:func:`rows_table` with its options)."""
        return rows_table(time_ns, columns, lon, lat, geo=self.format == "geoparquet", fields=self.fields,
                          flat=self.format == "csv")

    def add_table(self, table) -> None:
        """Append a table made by :meth:`rows_table` (rows streamed in, in the order given)."""
        if table.num_rows:
            self._write(table)

    def extend(self, results: Iterable[GranuleResult]) -> None:
        """:meth:`add` every result."""
        for result in results:
            self.add(result)

    def _write(self, table) -> None:
        if self._writer is None:
            self._open(table.schema)
        elif table.schema != self._schema:
            table = table.cast(self._schema)
        if self.validate:
            table.validate(full=True)
        self._writer.write_table(table)   # Parquet: a row group per granule (at most pyarrow's 1 Mi rows)
        self.rows += table.num_rows

    def _open(self, schema) -> None:
        import pyarrow as pa

        if self.format in ("geoparquet", "parquet"):
            import pyarrow.parquet as pq

            fit = bool(self.parms and self.parms.get("fit") is not None)
            meta = file_metadata(schema, self.kind, self.parms, geo=self.format == "geoparquet",
                                 granules=self.granules, fit=fit)
            self._schema = schema.with_metadata(meta)
            self._writer = pq.ParquetWriter(str(self._tmp), self._schema, compression="zstd")
        elif self.format == "feather":
            self._schema = schema
            options = pa.ipc.IpcWriteOptions(compression="lz4")
            self._writer = pa.ipc.new_file(str(self._tmp), schema, options=options)
        elif self.format == "csv":
            import pyarrow.csv as csv

            self._schema = schema
            self._writer = csv.CSVWriter(str(self._tmp), schema)
        else:
            self._schema = schema
            self._writer = _Hdf5Columns(self._tmp, schema, self.parms)

    def _no_rows(self):
        """The zero-row table of the request (no granule gave a row, or there were none)."""
        from ..request.params import Parms
        from ..science.records import concat
        from ..science.xseries import empty_frame

        parms = Parms.from_dict(dict(self.parms)) if self.parms else Parms()
        if self.kind == "atl03x":
            empty = GranuleResult("", self.kind, frame=empty_frame(parms))
        else:
            empty = concat([], self.kind, compact=parms.compact)
        return result_table(empty, geo=self.format == "geoparquet", fields=self.fields, flat=self.format == "csv")

    # ------------------------------------------------------------------ closing
    def finish(self) -> Path:
        """Close the file and move it to its name (idempotent); returns the path."""
        if not self._done:
            try:
                if self._writer is None:
                    self._write(self._empty if self._empty is not None else self._no_rows())
                self._writer.close()
            except BaseException:   # e.g. disk full while flushing: leave nothing behind
                self.abort()
                raise
            self._done = True
            os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file; the target is left as it was."""
        if not self._done:
            self._done = True
            try:
                if self._writer is not None:
                    with contextlib.suppress(Exception):   # being discarded: a failing flush does not matter
                        getattr(self._writer, "discard", self._writer.close)()
            finally:
                self._tmp.unlink(missing_ok=True)



class _Hdf5Columns:
    """One resizable HDF5 dataset per column, appended table by table.

    The HDF5 library writes through a :class:`GuardedFile`, so a failing disk (full, file size
    limit) never fails inside the library (whose h5py objects then crash the interpreter when
    freed): the first failure is kept and raised between tables and at ``close``.
    """

    def __init__(self, path: Path, schema, parms: Mapping | None):
        import h5py

        from .frames import CRS

        self.file = GuardedFile(path)
        self.h5 = h5py.File(self.file, "w")
        self.h5.attrs["crs"] = CRS
        if parms is not None:
            self.h5.attrs["parms"] = json.dumps(dict(parms))
        self.schema = schema

    def _create(self, table) -> None:
        """Datasets after the first table: a list column is 2-D when its arrays have one length,
        else variable-length (as :func:`icesat2sr.formats.frames.h5_dataset`)."""
        import h5py
        import pyarrow as pa

        for field in self.schema:
            stamp = pa.types.is_timestamp(field.type)
            if pa.types.is_list(field.type):
                dtype = field.type.value_type.to_pandas_dtype()
                lengths = set(pa.compute.list_value_length(table[field.name]).to_pylist())
                if len(lengths) == 1:
                    (k,) = lengths
                    self.h5.create_dataset(field.name, shape=(0, k), maxshape=(None, k), dtype=dtype,
                                           chunks=(4096, max(k, 1)), compression="gzip")
                else:
                    self.h5.create_dataset(field.name, shape=(0,), maxshape=(None,), dtype=h5py.vlen_dtype(dtype),
                                           chunks=(4096,))
                continue
            dataset = self.h5.create_dataset(field.name, shape=(0,), maxshape=(None,), chunks=(65536,),
                                             dtype=np.int64 if stamp else field.type.to_pandas_dtype(),
                                             compression="gzip")
            if stamp:
                dataset.attrs["units"] = "ns since 1970-01-01T00:00:00Z (UTC)"

    def write_table(self, table) -> None:
        import pyarrow as pa

        self.file.check()
        if not len(self.h5):
            self._create(table)
        for name in table.column_names:
            column = table[name]
            dataset = self.h5[name]
            if pa.types.is_list(column.type):
                items = [np.asarray(v, dtype=dataset.dtype.base if dataset.ndim == 2 else None)
                         for v in column.to_pylist()]
                values = np.stack(items) if dataset.ndim == 2 and items else items
            else:
                if pa.types.is_timestamp(column.type):
                    column = column.cast(pa.int64())
                values = column.to_numpy(zero_copy_only=False)
            n = dataset.shape[0]
            dataset.resize((n + len(values), *dataset.shape[1:]))
            if len(values):
                dataset[n:] = values
            self.file.check()   # stop feeding the library once the disk has failed

    def close(self) -> None:
        self.h5.close()
        self.file.close()

    def discard(self) -> None:
        self.h5.close()
        self.file.close(quiet=True)


class GuardedFile(io.RawIOBase):
    """A file for h5py (its ``fileobj`` driver) that never fails inside the HDF5 library.

    The first write error (disk full, file size limit) is kept, later writes are dropped, and
    reads past what is on disk come back as zeros (as HDF5's own POSIX driver gives them);
    :meth:`check` and :meth:`close` raise the kept error. Nothing is buffered in memory.
    """

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self._f = open(path, "w+b", buffering=0)
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        n = self._f.readinto(view) or 0
        view[n:] = bytes(len(view) - n)
        return len(view)

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while self.error is None and done < len(view):   # a raw write may be short: finish it or fail
            try:
                n = self._f.write(view[done:])
            except OSError as exc:
                self.error = exc
                break
            if not n:
                self.error = OSError(errno.EIO, "short write")
                break
            done += n
        if self.error is not None:
            self._f.seek(len(view) - done, os.SEEK_CUR)
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self._f.truncate(size)
            except OSError as exc:
                self.error = exc
        return self.tell() if size is None else size

    def flush(self) -> None:
        pass   # unbuffered

    def check(self) -> None:
        """Raise the first write error, if any."""
        if self.error is not None:
            raise self.error

    def close(self, quiet: bool = False) -> None:
        """Close the file; raise the first write error unless ``quiet``."""
        if not self.closed:
            self._f.close()
            super().close()
        if not quiet:
            self.check()

    def __del__(self) -> None:
        self.close(quiet=True)


__all__ = ["FORMATS", "FinishOnExit", "OutputWriter", "file_metadata", "format_of", "result_table"]
