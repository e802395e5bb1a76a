"""GeoDataFrames and files from result tables.

Frames look like the official SlideRule client's (SPEC §8.3): index ``time`` (datetime64[ns],
UTC), point geometry from longitude/latitude, CRS EPSG:7912, ``extent_id`` dropped unless
``keep_id``; photon frames get the client's ``spot``. The seed's columns are added: elevations
keep ``lat``/``lon`` copies, photons keep ``latitude``/``longitude``. Writers pick the format
from the file extension and write atomically: on any error the target is left as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .names import spot_from_track_pair
from .records import GranuleResult

CRS = "EPSG:7912"
FORMATS = (".parquet", ".csv", ".h5")
# in the atl03rec struct but not in SlideRule's record definition, so not in the client's frame
_EXTENT_HIDDEN = ("spacecraft_velocity", "extent_length")


def elevations_frame(rows: np.ndarray, keep_id: bool = False):
    """GeoDataFrame of elevation rows (ELEVATION or COMPACT dtype).

    Examples
    --------
    >>> gdf = elevations_frame(result.elevations)   # doctest: +SKIP
    >>> gdf[["h_mean", "lat", "lon"]].describe()     # doctest: +SKIP
    """
    columns = {name: np.ascontiguousarray(rows[name]) for name in rows.dtype.names}
    columns["lat"], columns["lon"] = columns["latitude"], columns["longitude"]
    return _frame(columns, keep_id, keep_lat_lon=False)


def photons_frame(extents: np.ndarray, photons: np.ndarray, offsets: np.ndarray, keep_id: bool = False):
    """GeoDataFrame with one row per photon; extent fields repeated on their photons."""
    counts = np.diff(offsets).astype(np.int64)
    columns = {name: np.repeat(extents[name], counts) for name in extents.dtype.names
               if name not in _EXTENT_HIDDEN}
    for name in photons.dtype.names:
        columns[name] = np.ascontiguousarray(photons[name])
    gdf = _frame(columns, keep_id, keep_lat_lon=True)
    spots = np.zeros((3, 4, 2), dtype=np.uint8)
    for orient in range(3):
        for track in (1, 2, 3):
            for pair in (0, 1):
                spots[orient, track, pair] = spot_from_track_pair(orient, track, pair)
    gdf["spot"] = spots[np.minimum(gdf["sc_orient"].to_numpy(), 2), gdf["track"].to_numpy(),
                        gdf["pair"].to_numpy()]
    return gdf


def result_frame(result: GranuleResult, keep_id: bool = False):
    """GeoDataFrame of a (possibly merged) :class:`GranuleResult`."""
    if result.kind == "atl06":
        return elevations_frame(result.elevations, keep_id)
    return photons_frame(result.extents, result.photons, result.offsets, keep_id)


def _frame(columns: dict, keep_id: bool, keep_lat_lon: bool):
    import geopandas
    import pandas as pd

    geometry = geopandas.points_from_xy(columns["longitude"], columns["latitude"])
    if not keep_lat_lon:
        del columns["latitude"], columns["longitude"]
    if not keep_id:
        columns.pop("extent_id", None)
    time = columns.pop("time").astype("datetime64[ns]")
    frame = pd.DataFrame(columns, index=pd.Index(time, name="time"))
    gdf = geopandas.GeoDataFrame(frame, geometry=geometry, crs=CRS)
    return gdf.sort_index(kind="stable")


# ---------------------------------------------------------------------- files
def write(gdf, path: str | os.PathLike, parms: dict | None = None) -> Path:
    """Write a frame to ``.parquet`` (GeoParquet), ``.csv`` or ``.h5``, atomically.

    Parameters
    ----------
    gdf : GeoDataFrame
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
    gdf.drop(columns="geometry").to_csv(path, index=True, date_format="%Y-%m-%dT%H:%M:%S.%fZ", float_format="%.10g")


def _write_h5(gdf, path: str, parms: dict | None) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("time", data=gdf.index.to_numpy().astype("datetime64[ns]").astype(np.int64))
        f["time"].attrs["units"] = "ns since 1970-01-01T00:00:00Z (UTC)"
        for name in gdf.columns.drop("geometry"):
            f.create_dataset(name, data=gdf[name].to_numpy())
        f.attrs["crs"] = CRS
        if parms is not None:
            f.attrs["parms"] = json.dumps(parms)


_WRITERS = {".parquet": _write_parquet, ".csv": _write_csv, ".h5": _write_h5}
