"""GeoDataFrames and files from result tables.

Frames look like the official SlideRule client's (SPEC §8.3): index ``time`` (datetime64[ns],
UTC), point geometry from longitude/latitude, CRS EPSG:7912, ``extent_id`` dropped unless
``keep_id``; photon frames get the client's ``spot``. The seed's columns are added: elevations
keep ``lat``/``lon`` copies, photons keep ``latitude``/``longitude``. Writers pick the format
from the file extension and write atomically: on any error the target is left as it was.

PhoREAL frames (``atl08``) are the client's ``atl08p`` frame: the vegetation record's columns with
``canopy_h_metrics`` as ONE column of 20-value arrays, and with ``send_waveform`` the waveform
record's ``num_bins``, ``binsize`` and ``waveform`` (an array per row) merged by extent. Array
columns become list columns in Parquet, 2-D or variable-length datasets in HDF5, and in CSV
``canopy_h_metrics_0..19`` columns (fixed length) or space-separated numbers (``waveform``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..request.names import spot_from_track_pair
from ..science.ancillary import parse_key
from ..science.records import GranuleResult

CRS = "EPSG:7912"
FORMATS = (".parquet", ".csv", ".h5")
# in the atl03rec / atl08rec.vegetation structs but not in SlideRule's record definitions,
# so not in the client's frame
_EXTENT_HIDDEN = ("spacecraft_velocity", "extent_length")
_VEGETATION_HIDDEN = ("pflags",)


def frame_columns(result: GranuleResult, keep_id: bool = False) -> tuple[np.ndarray, dict, np.ndarray, np.ndarray]:
    """What a result's frame holds, as numpy arrays (the one definition; no pandas needed).

    Used by :func:`result_frame` (GeoDataFrames) and :mod:`icesat2sr.formats.geoparquet` (the Lambda's
    GeoParquet writer), so both give the same columns in the same order.

    Returns
    -------
    time_ns : ndarray[int64]
        Index values (ns since the Unix epoch, UTC), sorted (stable).
    columns : dict of str -> ndarray
        Columns in frame order; the key ``"geometry"`` (value None) marks where geometry goes.
        Array-valued columns (atl08) are 2-D (fixed length) or object arrays of 1-D arrays.
    lon, lat : ndarray[float64]
        Point coordinates, in the same (sorted) order.
    """
    spot = None
    if result.kind == "atl06":
        rows = result.elevations
        columns = {name: np.ascontiguousarray(rows[name]) for name in rows.dtype.names}
        columns["lat"], columns["lon"] = columns["latitude"], columns["longitude"]
        lon, lat = columns.pop("longitude"), columns.pop("latitude")
    elif result.kind == "atl08":
        columns, lon, lat = _vegetation_columns(result)
    else:
        counts = np.diff(result.offsets).astype(np.int64)
        columns = {name: np.repeat(result.extents[name], counts) for name in result.extents.dtype.names
                   if name not in _EXTENT_HIDDEN}
        for name in result.photons.dtype.names:
            columns[name] = np.ascontiguousarray(result.photons[name])
        lon, lat = columns["longitude"], columns["latitude"]
        spot = spots(columns["sc_orient"], columns["track"], columns["pair"])  # as the client adds it
    if result.ancillary:
        add_ancillary(columns, result.ancillary, result.kind)
    if not keep_id:
        columns.pop("extent_id", None)
    time_ns = columns.pop("time").astype(np.int64)
    order = np.argsort(time_ns, kind="stable")
    columns = {name: values[order] for name, values in columns.items()}
    columns["geometry"] = None
    if spot is not None:
        columns["spot"] = spot[order]
    return time_ns[order], columns, lon[order], lat[order]


def _vegetation_columns(result: GranuleResult) -> tuple[dict, np.ndarray, np.ndarray]:
    rows = result.vegetation
    columns = {name: np.ascontiguousarray(rows[name]) for name in rows.dtype.names if name not in _VEGETATION_HIDDEN}
    lon, lat = columns.pop("longitude"), columns.pop("latitude")
    if result.waveforms is not None:   # the client merges waverec by extent_id (left join)
        heads = result.waveforms
        bins = np.split(result.waveform, np.cumsum(heads["num_bins"], dtype=np.int64)[:-1])
        order = np.argsort(heads["extent_id"], kind="stable")
        position = np.searchsorted(heads["extent_id"], rows["extent_id"], sorter=order)
        found = order[np.minimum(position, len(order) - 1)] if len(order) else position
        if len(rows) and not np.array_equal(heads["extent_id"][found], rows["extent_id"]):
            raise ValueError("a vegetation record has no waveform record")
        columns["num_bins"] = heads["num_bins"][found]
        columns["binsize"] = heads["binsize"][found]
        columns["waveform"] = _objects([bins[i] for i in found])
    return columns, lon, lat


def _objects(items: list) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def add_ancillary(columns: dict, ancillary: dict, kind: str) -> None:
    """Ancillary columns named as the official client names them (the requested name, e.g.
    ``h_dif_ref%`` or ``canopy/h_canopy``).

    A name equal to a result column: for elevations and PhoREAL rows the client's ``pd.merge`` renames the two
    ``<name>_x`` (result) and ``<name>_y`` (ancillary); for photons the client keeps the result's
    value under the name (in the ancillary field's dtype) and loses the ancillary one, which we keep
    as ``<name>_y``.
    """
    record = set(columns)
    for key, values in ancillary.items():
        name = parse_key(key)[2]
        if name not in record:
            columns[name] = values
        elif kind in ("atl06", "atl08"):
            columns[f"{name}_x"] = columns.pop(name)
            columns[f"{name}_y"] = values
        else:
            columns[name] = columns[name].astype(values.dtype)
            columns[f"{name}_y"] = values


def spots(sc_orient: np.ndarray, track: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """Laser spot of every row from (sc_orient, track, pair), vectorised."""
    table = np.zeros((3, 4, 2), dtype=np.uint8)
    for orient in range(3):
        for t in (1, 2, 3):
            for p in (0, 1):
                table[orient, t, p] = spot_from_track_pair(orient, t, p)
    return table[np.minimum(sc_orient, 2), track, pair]


def result_frame(result: GranuleResult, keep_id: bool = False):
    """GeoDataFrame of a (possibly merged) :class:`GranuleResult`.

    Examples
    --------
    >>> gdf = result_frame(result)                    # doctest: +SKIP
    >>> gdf[["h_mean", "lat", "lon"]].describe()      # doctest: +SKIP
    """
    import geopandas
    import pandas as pd

    time_ns, columns, lon, lat = frame_columns(result, keep_id)
    data = {name: _objects(list(values)) if values.ndim == 2 else values
            for name, values in columns.items() if name != "geometry"}
    frame = pd.DataFrame(data, index=pd.Index(time_ns.view("datetime64[ns]"), name="time"))
    gdf = geopandas.GeoDataFrame(frame, geometry=geopandas.points_from_xy(lon, lat), crs=CRS)
    return gdf[list(columns)]


def frame_rows(gdf) -> tuple[np.ndarray, dict, np.ndarray, np.ndarray]:
    """A frame of :func:`result_frame` back as :func:`frame_columns` gives it (for the file writers).

    Array columns held as objects come back 2-D when the record declares them fixed-length
    (PhoREAL's ``canopy_h_metrics``), so a file holds them as it holds a result's.
    """
    import pandas as pd

    from ..science.records import VEGETATION

    fixed = {name for name in VEGETATION.names if VEGETATION[name].shape}
    columns: dict = {}
    for name in gdf.columns:
        if name == gdf.geometry.name:
            columns["geometry"] = None
            continue
        values = gdf[name].to_numpy()
        if name in fixed and values.dtype == object:
            values = np.stack([np.asarray(v) for v in values]) if len(values) else \
                np.zeros((0, *VEGETATION[name].shape), dtype=VEGETATION[name].base)
        columns[name] = values
    time_ns = pd.DatetimeIndex(gdf.index).as_unit("ns").asi8   # UTC ns, naive or not
    points = gdf.geometry
    return time_ns, columns, points.x.to_numpy(), points.y.to_numpy()


# ---------------------------------------------------------------------- files
def write(gdf, path: str | os.PathLike, parms: dict | None = None) -> Path:
    """Write a frame to ``.parquet`` (GeoParquet), ``.csv`` or ``.h5``, atomically.

    Parameters
    ----------
    gdf : GeoDataFrame
        A result frame (:func:`result_frame`).
    path : path-like
        Output file; its extension picks the format.
    parms : dict, optional
        Request parameters, stored as metadata (Parquet key ``icesat2sr``, HDF5 attribute).
    """
    path = Path(path)
    writer = _WRITERS.get(path.suffix.lower())
    if writer is None:
        raise ValueError(f"unsupported output format '{path.suffix}' (use {', '.join(FORMATS)})")
    return _atomic(path, lambda tmp: writer(gdf, tmp, parms))


def _atomic(path: Path, write_to: Callable[[str], None]) -> Path:
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    os.close(fd)
    try:
        write_to(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; results are ordinary files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _write_parquet(gdf, path: str, parms: dict | None) -> None:
    import pyarrow.parquet as pq

    gdf.to_parquet(path, index=True)
    if parms is not None:  # add our metadata beside GeoParquet's "geo" and pandas' keys
        table = pq.read_table(path)
        meta = dict(table.schema.metadata or {})
        meta[b"icesat2sr"] = json.dumps({"parms": parms}).encode()
        pq.write_table(table.replace_schema_metadata(meta), path)


def _write_csv(gdf, path: str, parms: dict | None) -> None:
    csv_table(gdf.drop(columns="geometry")).to_csv(path, index=True, date_format="%Y-%m-%dT%H:%M:%S.%fZ",
                                                   float_format="%.10g")


def csv_table(frame):
    """The frame as CSV writes it: array columns as ``name_0..name_k`` when every row has the same
    length, else as space-separated numbers in one column."""
    import pandas as pd

    parts = []
    for name in frame.columns:
        column = frame[name]
        if column.dtype != object or not len(column) or not isinstance(column.iloc[0], np.ndarray | tuple | list):
            parts.append(column)
            continue
        lengths = {len(v) for v in column}
        if len(lengths) == 1:
            values = np.stack([np.asarray(v) for v in column])
            parts.append(pd.DataFrame(values, index=frame.index,
                                      columns=[f"{name}_{k}" for k in range(values.shape[1])]))
        else:
            parts.append(column.map(lambda v: " ".join(f"{x:.10g}" for x in v)))
    return pd.concat(parts, axis=1) if parts else frame


def h5_dataset(group, name: str, column, **options) -> None:
    """One frame column as an HDF5 dataset: array columns as a 2-D dataset (same lengths) or a
    variable-length one."""
    values = column.to_numpy()
    if values.dtype == object and len(values) and isinstance(values[0], np.ndarray | tuple | list):
        import h5py

        items = [np.asarray(v) for v in values]
        dtype = np.result_type(*items)
        if len({len(v) for v in items}) == 1:
            group.create_dataset(name, data=np.stack(items).astype(dtype), **options)
        else:
            group.create_dataset(name, data=items, dtype=h5py.vlen_dtype(dtype), **options)
        return
    group.create_dataset(name, data=values, **options)


def _write_h5(gdf, path: str, parms: dict | None) -> None:
    """HDF5 built in memory, then written with one plain file write: a failing disk (full, file
    size limit) is then an ordinary OSError, never the HDF5 library failing in mid-file (which
    leaves h5py objects that crash the interpreter when they are freed)."""
    import io

    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.create_dataset("time", data=gdf.index.to_numpy().astype("datetime64[ns]").astype(np.int64))
        f["time"].attrs["units"] = "ns since 1970-01-01T00:00:00Z (UTC)"
        for name in gdf.columns.drop("geometry"):
            h5_dataset(f, name, gdf[name])
        f.attrs["crs"] = CRS
        if parms is not None:
            f.attrs["parms"] = json.dumps(parms)
    with open(path, "wb") as out:
        out.write(buffer.getbuffer())


_WRITERS = {".parquet": _write_parquet, ".csv": _write_csv, ".h5": _write_h5}
