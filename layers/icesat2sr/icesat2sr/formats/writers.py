"""Writers usable as ``atl06p``/``atl03sp``/``atl08p`` callbacks: each granule's GeoDataFrame goes
to disk as it arrives, so results larger than memory never have to be held.

Every writer has ``run(resource, result, index, total)`` (the seed's callback signature; the
writer object itself is callable the same way) and ``finish()``; they are also context managers.
The seed's example runs as written::

    hdf5writer = Hdf5Writer(cfg["filename"], parms)
    icesat2.atl06p(parms, cfg["asset"], max_workers=cfg["max_workers"],
                   callback=lambda resource, result, index, total: hdf5writer.run(resource, result, index, total))
    hdf5writer.finish()

They are the shared file writers (:class:`icesat2sr.formats.output.OutputWriter`, those of the
CLI's ``-o``, the server and the aggregator) fed one frame at a time, so a callback's file holds
what ``icesat2sr atl06p -o`` writes for the same request:

| writer | file |
|---|---|
| :class:`Hdf5Writer` | HDF5: one dataset per column (``time`` in ns), the CRS and the request as attributes |
| :class:`GeoParquetWriter` | one GeoParquet file, one row group per granule |
| :class:`CsvWriter` | one CSV file (no geometry column; ``latitude``/``longitude`` columns) |

The file is written under a temporary name and renamed by ``finish()``: an interrupted run never
leaves a partial file under the final name. A write that fails (disk full, file size limit)
raises :class:`~icesat2sr.request.errors.WriteError` from the callback and removes the partial
file; the target is left as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..request.errors import WriteError
from .destination import write_error
from .frames import frame_rows
from .output import FinishOnExit, OutputWriter

T = TypeVar("T")


class _Writer(FinishOnExit):
    """A callback writer: frames in, one :class:`OutputWriter` file out."""

    format = ""

    def __init__(self, filename: str | os.PathLike, parameters: dict | None = None, *, kind: str = "atl06"):
        self.filename = Path(filename)
        self.parameters = dict(parameters or {})
        self.granules: list[str] = []
        self.rows = 0
        self._failed: WriteError | None = None
        self._out: OutputWriter | None = None
        self._out = self._guard(lambda: OutputWriter(self.filename, self.format, kind=kind, parms=self.parameters))

    def __call__(self, resource: str, result, index: int, total: int) -> None:
        self.run(resource, result, index, total)

    def run(self, resource: str, result, index: int, total: int) -> None:
        """Write one granule's result (a GeoDataFrame indexed by ``time``).

        Raises
        ------
        WriteError
            The file could not be written (disk full, file size limit); it is removed.
        """
        self.granules.append(resource)
        self.rows += len(result)
        out = self._open()
        self._guard(lambda: out.add_table(out.rows_table(*frame_rows(result))))

    def finish(self) -> Path:
        """Close the file and move it to its name (idempotent); returns its path.

        Raises
        ------
        WriteError
            The file could not be written; nothing was left behind.
        """
        return self._guard(self._open().finish)

    def abort(self) -> None:
        """Drop the partial file (the target is left as it was)."""
        if self._out is not None:
            self._out.abort()

    def _open(self) -> OutputWriter:
        if self._failed is not None:   # a failed file stays failed: never half a result
            raise self._failed
        return self._out

    def _guard(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except OSError as exc:
            self.abort()
            self._failed = write_error(self.filename, exc)
            raise self._failed from None


class Hdf5Writer(_Writer):
    """HDF5 output: one dataset per column, ``time`` in ns since the Unix epoch.

    Parameters
    ----------
    filename : path
        Output HDF5 file (replaced by ``finish``).
    parameters : dict, optional
        The request; stored as the ``parms`` attribute (JSON).
    kind : {"atl06", "atl03s", "atl08"}
        The results' kind: the columns of a file that receives no row.
    """

    format = "h5"


class GeoParquetWriter(_Writer):
    """One GeoParquet file, a row group per granule (parameters as :class:`Hdf5Writer`'s; the
    request is the ``sliderule`` metadata key, as in SlideRule's files)."""

    format = "geoparquet"


class CsvWriter(_Writer):
    """One CSV file: the header, then each granule's rows, geometry as ``latitude``/``longitude``
    (parameters as :class:`Hdf5Writer`'s; a CSV file carries no metadata)."""

    format = "csv"


def writer_for(filename: str | os.PathLike, parameters: dict | None = None, *, kind: str = "atl06") -> _Writer:
    """The writer that the file extension asks for (``.h5``, ``.parquet``, ``.csv``)."""
    suffix = Path(filename).suffix.lower()
    cls = {".h5": Hdf5Writer, ".hdf5": Hdf5Writer, ".parquet": GeoParquetWriter, ".csv": CsvWriter}.get(suffix)
    if cls is None:
        raise ValueError(f"no writer for '{suffix}' files (use .h5, .parquet or .csv)")
    return cls(filename, parameters, kind=kind)


__all__ = ["CsvWriter", "GeoParquetWriter", "Hdf5Writer", "writer_for"]
