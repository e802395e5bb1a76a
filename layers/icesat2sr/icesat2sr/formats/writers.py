"""Writers usable as ``atl06p``/``atl03sp`` callbacks: each granule's GeoDataFrame goes to disk
as it arrives, so results larger than memory never have to be held.

Every writer has ``run(resource, result, index, total)`` (the seed's callback signature; the
writer object itself is callable the same way) and ``finish()``; they are also context managers.
The seed's example runs as written::

    hdf5writer = Hdf5Writer(cfg["filename"], parms)
    icesat2.atl06p(parms, cfg["asset"], max_workers=cfg["max_workers"],
                   callback=lambda resource, result, index, total: hdf5writer.run(resource, result, index, total))
    hdf5writer.finish()

| writer | file |
|---|---|
| :class:`Hdf5Writer` | HDF5: one group per granule, one dataset per column (+ ``time``, ``latitude``, ``longitude``) |
| :class:`GeoParquetWriter` | one GeoParquet file, one row group per granule |
| :class:`CsvWriter` | one CSV file (no geometry column; ``lat``/``lon`` or ``latitude``/``longitude`` columns) |

Parquet and CSV files are written under a temporary name and renamed by ``finish()``, so an
interrupted run never leaves a truncated file under the final name.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path

import numpy as np

from .frames import CRS, csv_table, h5_dataset

CSV_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class _Writer:
    """Common callback plumbing."""

    def __init__(self, filename: str | os.PathLike, parameters: dict | None = None):
        self.filename = Path(filename)
        self.parameters = dict(parameters or {})
        self.granules: list[str] = []
        self.rows = 0

    def __call__(self, resource: str, result, index: int, total: int) -> None:
        self.run(resource, result, index, total)

    def run(self, resource: str, result, index: int, total: int) -> None:
        """Write one granule's result (a GeoDataFrame indexed by ``time``)."""
        self.granules.append(resource)
        self.rows += len(result)
        if len(result):
            self._write(resource, result)

    def _write(self, resource: str, result) -> None:
        raise NotImplementedError

    def finish(self) -> Path:
        """Close the file (idempotent) and return its path."""
        return self.filename

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.finish()


class Hdf5Writer(_Writer):
    """HDF5 output, one group per granule (named after it without ``.h5``).

    Parameters
    ----------
    filename : path
        Output HDF5 file (overwritten).
    parameters : dict, optional
        The request; stored as file attributes (JSON text for lists and dicts).
    """

    def __init__(self, filename: str | os.PathLike, parameters: dict | None = None):
        import h5py

        super().__init__(filename, parameters)
        self.h5 = h5py.File(self.filename, "w")
        self.h5.attrs["title"] = "ICESat-2 ATL06-SR (icesat2sr, SlideRule algorithms)"
        self.h5.attrs["date_created"] = dt.datetime.now(dt.UTC).isoformat()
        self.h5.attrs["time_units"] = "ns since 1970-01-01T00:00:00Z (UTC)"
        self.h5.attrs["crs"] = CRS
        for key, value in self.parameters.items():
            self.h5.attrs[key] = value if isinstance(value, int | float | str | bool) else json.dumps(value)

    def run(self, resource: str, result, index: int, total: int) -> None:
        self.granules.append(resource)
        self.rows += len(result)
        self._write(resource, result)   # an empty granule still gets its (empty) group

    def _write(self, resource: str, result) -> None:
        group = self.h5.create_group(resource[:-3] if resource.endswith(".h5") else resource)
        group.create_dataset("time", data=result.index.to_numpy().astype("datetime64[ns]").astype(np.int64),
                             compression="gzip")
        for name in result.columns:
            if name == result.geometry.name:
                continue
            h5_dataset(group, name, result[name], compression="gzip")
        if "latitude" not in result.columns:
            group.create_dataset("latitude", data=result.geometry.y.to_numpy(), compression="gzip")
            group.create_dataset("longitude", data=result.geometry.x.to_numpy(), compression="gzip")
        group.attrs["crs"] = str(result.crs or CRS)

    def finish(self) -> Path:
        if self.h5 is not None:
            self.h5.close()
            self.h5 = None
        return self.filename

    def __del__(self):
        h5 = getattr(self, "h5", None)
        if h5 is not None:
            h5.close()


class _Atomic(_Writer):
    """Writes to a hidden temporary file beside the target; ``finish()`` renames it."""

    def __init__(self, filename: str | os.PathLike, parameters: dict | None = None):
        super().__init__(filename, parameters)
        directory = self.filename.parent if str(self.filename.parent) else Path(".")
        tmp = directory / f".{self.filename.name}.{uuid.uuid4().hex}.part"
        tmp.open("xb").close()   # default permissions (mkstemp's 0600 would survive the rename)
        self._tmp = str(tmp)
        self._done = False

    def finish(self) -> Path:
        if not self._done:
            self._done = True
            self._close()
            os.replace(self._tmp, self.filename)
        return self.filename

    def abort(self) -> None:
        """Drop the partial file (the target is left as it was)."""
        if not self._done:
            self._done = True
            try:
                self._close()
            finally:
                if os.path.exists(self._tmp):
                    os.unlink(self._tmp)

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()

    def _close(self) -> None:
        raise NotImplementedError


class GeoParquetWriter(_Atomic):
    """One GeoParquet file; each granule is appended as row groups (GeoParquet ``geo`` metadata
    from the first granule, without its bounding box)."""

    def __init__(self, filename: str | os.PathLike, parameters: dict | None = None):
        super().__init__(filename, parameters)
        self._writer = None
        self._schema = None

    def _write(self, resource: str, result) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = _arrow_table(result)
        if self._writer is None:
            meta = dict(table.schema.metadata or {})
            geo = json.loads(meta[b"geo"])
            for column in geo.get("columns", {}).values():
                column.pop("bbox", None)   # the first granule's box would be wrong for the file
            meta[b"geo"] = json.dumps(geo).encode()
            meta[b"icesat2sr"] = json.dumps({"parms": self.parameters}).encode()
            self._schema = table.schema.with_metadata(meta)
            self._writer = pq.ParquetWriter(self._tmp, self._schema)
        self._writer.write_table(pa.Table.from_batches(table.to_batches(), schema=self._schema))

    def _close(self) -> None:
        if self._writer is None:   # nothing arrived: still a valid (empty) file
            import geopandas

            empty = geopandas.GeoDataFrame(geometry=geopandas.GeoSeries([], crs=CRS))
            empty.to_parquet(self._tmp)
        else:
            self._writer.close()


def _arrow_table(gdf):
    """A GeoDataFrame as the Arrow table ``to_parquet`` would write (with its ``geo`` metadata)."""
    import io

    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    gdf.to_parquet(buffer, index=True)
    buffer.seek(0)
    return pq.read_table(buffer)


class CsvWriter(_Atomic):
    """One CSV file: the header once, then each granule's rows (geometry dropped)."""

    def __init__(self, filename: str | os.PathLike, parameters: dict | None = None):
        super().__init__(filename, parameters)
        self._header = True

    def _write(self, resource: str, result) -> None:
        frame = result.drop(columns=result.geometry.name)
        if "lat" not in frame.columns and "latitude" not in frame.columns:
            frame = frame.assign(latitude=result.geometry.y.to_numpy(), longitude=result.geometry.x.to_numpy())
        csv_table(frame).to_csv(self._tmp, mode="w" if self._header else "a", header=self._header, index=True,
                                date_format=CSV_DATE_FORMAT, float_format="%.10g")
        self._header = False

    def _close(self) -> None:
        pass


def writer_for(filename: str | os.PathLike, parameters: dict | None = None) -> _Writer:
    """The writer that the file extension asks for (``.h5``, ``.parquet``, ``.csv``)."""
    suffix = Path(filename).suffix.lower()
    cls = {".h5": Hdf5Writer, ".hdf5": Hdf5Writer, ".parquet": GeoParquetWriter, ".csv": CsvWriter}.get(suffix)
    if cls is None:
        raise ValueError(f"no writer for '{suffix}' files (use .h5, .parquet or .csv)")
    return cls(filename, parameters)


__all__ = ["CsvWriter", "GeoParquetWriter", "Hdf5Writer", "writer_for"]
