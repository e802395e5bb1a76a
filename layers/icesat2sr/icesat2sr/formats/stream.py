"""Photon results written as they stream in: in time order, in bounded memory, one file.

A granule's partial results arrive chunk by chunk, beam after beam (``icesat2sr.engine.iter_granule``).
:class:`TimeOrder` releases their rows in the order a stable sort by time of the whole granule
would give (the order of :func:`icesat2sr.formats.frames.frame_columns`), holding back only the
rows a later part could still precede. :class:`FrameWriter` appends released rows to a
``.parquet``, ``.csv`` or ``.h5`` file holding what :func:`icesat2sr.formats.frames.write` writes
for the whole frame; like it, the target appears only when the file is complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..science.records import EXTENT, PHOTON, GranuleResult
from .frames import CRS, frame_columns

CSV_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_NEVER = np.iinfo(np.int64).max


@dataclass
class Rows:
    """Frame rows as numpy arrays: what :func:`icesat2sr.formats.frames.frame_columns` returns."""

    time_ns: np.ndarray
    columns: dict
    lon: np.ndarray
    lat: np.ndarray

    def __len__(self) -> int:
        return len(self.time_ns)

    def take(self, index) -> Rows:
        """The rows at ``index`` (a slice or an index array)."""
        return Rows(self.time_ns[index], {k: (None if v is None else v[index]) for k, v in self.columns.items()},
                    self.lon[index], self.lat[index])

    @classmethod
    def concat(cls, parts: list[Rows]) -> Rows:
        """Rows of several parts, one after the other."""
        columns = {k: (None if v is None else np.concatenate([p.columns[k] for p in parts]))
                   for k, v in parts[0].columns.items()}
        return cls(np.concatenate([p.time_ns for p in parts]), columns, np.concatenate([p.lon for p in parts]),
                   np.concatenate([p.lat for p in parts]))


def photon_rows(result: GranuleResult) -> Rows:
    """The frame rows of an atl03s (partial) result."""
    return Rows(*frame_columns(result))


def empty_photon_rows() -> Rows:
    """No photon rows, with the columns and dtypes of an atl03s frame."""
    empty = GranuleResult("", "atl03s", extents=np.zeros(0, EXTENT), photons=np.zeros(0, PHOTON),
                          offsets=np.zeros(1, np.int64))
    return photon_rows(empty)


class TimeOrder:
    """Partial results of one granule in, rows out in the order of a stable sort by time.

    Parameters
    ----------
    beams : int
        Beams of the granule. A part of beam ``b`` comes with a horizon: no later part of that
        beam has a row earlier than it. Rows earlier than every beam's horizon are released,
        sorted by time, ties in beam order then arrival order: exactly the whole granule's rows,
        concatenated beam after beam, stably sorted by time.
    """

    def __init__(self, beams: int):
        self.horizon = np.full(max(beams, 1), np.iinfo(np.int64).min, dtype=np.int64)
        self.pending: list[tuple[int, int, Rows]] = []
        self.count = 0

    def push(self, result: GranuleResult, beam: int, horizon_ns: int) -> Rows | None:
        """Add a part of beam ``beam``; returns the rows that can now be written (or None)."""
        if result.rows:
            self.pending.append((beam, self.count, photon_rows(result)))
            self.count += 1
        self.horizon[beam] = horizon_ns
        return self._release(int(self.horizon.min()))

    def flush(self) -> Rows | None:
        """The rows still held (call once every part has been pushed)."""
        return self._release(_NEVER)

    def _release(self, watermark: int) -> Rows | None:
        taken, kept = [], []
        for beam, seq, rows in self.pending:
            cut = int(np.searchsorted(rows.time_ns, watermark, side="left")) if watermark < _NEVER else len(rows)
            if cut:
                taken.append((beam, seq, rows.take(slice(0, cut))))
            if cut < len(rows):
                kept.append((beam, seq, rows.take(slice(cut, None))))
        self.pending = kept
        if not taken:
            return None
        taken.sort(key=lambda item: item[:2])
        rows = Rows.concat([t[2] for t in taken])
        return rows.take(np.argsort(rows.time_ns, kind="stable"))


class FrameWriter:
    """A ``.parquet`` (GeoParquet), ``.csv`` or ``.h5`` file written in batches of rows.

    The file holds what :func:`icesat2sr.formats.frames.write` writes for the whole frame. It is
    written under a temporary name beside the target and renamed by :meth:`close`; :meth:`abort`
    (or an exception inside a ``with`` block) leaves the target as it was.

    Parameters
    ----------
    path : path-like
        The target; its extension picks the format.
    parms : dict, optional
        Request parameters, stored as metadata (as ``frames.write`` does).
    empty : Rows, optional
        Zero rows with the frame's columns: what an empty file holds (default: an atl03s frame).
    """

    def __init__(self, path: str | os.PathLike, parms: dict | None = None, empty: Rows | None = None):
        self.path = Path(path)
        self.format = self.path.suffix.lower()
        if self.format not in (".parquet", ".csv", ".h5"):
            raise ValueError(f"unsupported output format '{self.path.suffix}' (use .parquet, .csv, .h5)")
        self.parms = parms
        self.empty = empty
        self.rows = 0
        directory = self.path.parent if str(self.path.parent) else Path(".")
        self._tmp = directory / f".{self.path.name}.{os.getpid()}.{id(self):x}.part"
        self._tmp.open("xb").close()      # default permissions (mkstemp's 0600 would survive the rename)
        self._handle = None
        self._done = False

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, rows: Rows | None) -> None:
        """Append rows (None: nothing)."""
        if rows is None or len(rows) == 0:
            return
        self.rows += len(rows)
        getattr(self, f"_write_{self.format[1:]}")(rows)

    def close(self) -> Path:
        """Finish the file and move it to the target (idempotent)."""
        if not self._done:
            if self._handle is None:
                empty = self.empty if self.empty is not None else empty_photon_rows()
                getattr(self, f"_write_{self.format[1:]}")(empty)
            self._close_handle()
            os.replace(self._tmp, self.path)
            self._done = True
        return self.path

    def abort(self) -> None:
        """Drop the partial file; the target is left as it was."""
        if not self._done:
            self._done = True
            try:
                self._close_handle()
            finally:
                self._tmp.unlink(missing_ok=True)

    def _close_handle(self) -> None:
        if self._handle is not None:
            self._handle.close()

    # -------------------------------------------------------------- formats
    def _write_parquet(self, rows: Rows) -> None:
        from .geoparquet import columns_table

        table = columns_table(rows.time_ns, rows.columns, rows.lon, rows.lat, self.parms, bbox=False)
        if self._handle is None:
            import pyarrow.parquet as pq

            self._handle = pq.ParquetWriter(self._tmp, table.schema)
        self._handle.write_table(table)

    def _write_csv(self, rows: Rows) -> None:
        import pandas as pd

        data = {name: values for name, values in rows.columns.items() if values is not None}
        frame = pd.DataFrame(data, index=pd.Index(rows.time_ns.view("datetime64[ns]"), name="time"))
        first = self._handle is None
        if first:
            self._handle = open(self._tmp, "w", newline="")
        frame.to_csv(self._handle, header=first, index=True, date_format=CSV_DATE_FORMAT, float_format="%.10g")

    def _write_h5(self, rows: Rows) -> None:
        import h5py

        if self._handle is None:
            self._handle = h5py.File(self._tmp, "w")
            self._handle.attrs["crs"] = CRS
            if self.parms is not None:
                self._handle.attrs["parms"] = json.dumps(self.parms)
        data = {"time": rows.time_ns, **{k: v for k, v in rows.columns.items() if v is not None}}
        for name, values in data.items():
            if name not in self._handle:
                self._handle.create_dataset(name, data=values, maxshape=(None, *values.shape[1:]), chunks=True)
                if name == "time":
                    self._handle[name].attrs["units"] = "ns since 1970-01-01T00:00:00Z (UTC)"
            else:
                ds = self._handle[name]
                ds.resize(ds.shape[0] + len(values), axis=0)
                ds[-len(values):] = values


def read_rows(path: str | os.PathLike, batch_rows: int = 1 << 20):
    """Rows of a ``.parquet`` file written by :class:`FrameWriter`, batch after batch."""
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    names = [n for n in source.schema_arrow.names if n != "time"]
    for batch in source.iter_batches(batch_size=batch_rows):
        columns = {n: (None if n == "geometry" else batch.column(n).to_numpy(zero_copy_only=False)) for n in names}
        time_ns = batch.column("time").to_numpy().astype("datetime64[ns]").view(np.int64)
        lon = columns.get("longitude", columns.get("lon"))
        lat = columns.get("latitude", columns.get("lat"))
        yield Rows(time_ns, columns, lon, lat)
