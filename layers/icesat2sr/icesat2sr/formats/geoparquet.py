"""GeoParquet from result tables with pyarrow alone (no pandas, GeoPandas or shapely).

The aggregator Lambda cannot carry GeoPandas and pandas (~150 MB with their libraries) beside the
science layer, so it writes the file itself: the same columns, order, dtypes, ``time`` index and
row order as :func:`icesat2sr.formats.frames.result_frame` followed by :func:`icesat2sr.formats.frames.write`
(tests compare the two through ``geopandas.read_parquet``). The file carries

* GeoParquet 1.0 ``geo`` metadata: one WKB ``geometry`` column of 2-D points, CRS EPSG:7912 as
  PROJJSON, its bbox;
* pandas metadata naming ``time`` (datetime64[ns], UTC) as the index, so pandas and GeoPandas
  restore the frame the official client builds;
* the request parameters under the key ``icesat2sr``, like :func:`icesat2sr.formats.frames.write`.
"""

from __future__ import annotations

import io
import json

import numpy as np

from .. import __version__
from ..science.records import GranuleResult
from .frames import frame_columns

GEOPARQUET_VERSION = "1.0.0"
# PROJJSON of EPSG:7912 (ITRF2014, geographic 3-D), as PROJ 9 gives it; tests check it with pyproj.
CRS_7912 = {
    "$schema": "https://proj.org/schemas/v0.7/projjson.schema.json",
    "type": "GeographicCRS", "name": "ITRF2014",
    "datum": {"type": "DynamicGeodeticReferenceFrame", "name": "International Terrestrial Reference Frame 2014",
              "frame_reference_epoch": 2010,
              "ellipsoid": {"name": "GRS 1980", "semi_major_axis": 6378137, "inverse_flattening": 298.257222101}},
    "coordinate_system": {"subtype": "ellipsoidal", "axis": [
        {"name": "Geodetic latitude", "abbreviation": "Lat", "direction": "north", "unit": "degree"},
        {"name": "Geodetic longitude", "abbreviation": "Lon", "direction": "east", "unit": "degree"},
        {"name": "Ellipsoidal height", "abbreviation": "h", "direction": "up", "unit": "metre"}]},
    "scope": "Geodesy.", "area": "World.",
    "bbox": {"south_latitude": -90, "west_longitude": -180, "north_latitude": 90, "east_longitude": 180},
    "id": {"authority": "EPSG", "code": 7912},
}
_WKB_POINT = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])  # 21 bytes, packed


def wkb_points(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, bytes]:
    """Little-endian WKB of 2-D points: (int64 offsets, concatenated bytes)."""
    wkb = np.zeros(len(lon), dtype=_WKB_POINT)
    wkb["order"], wkb["type"], wkb["x"], wkb["y"] = 1, 1, lon, lat
    return np.arange(len(lon) + 1, dtype=np.int64) * _WKB_POINT.itemsize, wkb.tobytes()


def to_table(result: GranuleResult, parms: dict | None = None):
    """A ``pyarrow.Table`` of the result with GeoParquet and pandas metadata."""
    import pyarrow as pa

    time_ns, columns, lon, lat = frame_columns(result)
    offsets, data = wkb_points(lon, lat)
    large = len(data) >= 2**31 - 1
    geometry = pa.Array.from_buffers(pa.large_binary() if large else pa.binary(), len(lon),
                                     [None, pa.py_buffer(offsets if large else offsets.astype(np.int32)),
                                      pa.py_buffer(data)])
    names, arrays = [], []
    for name, values in columns.items():
        names.append(name)
        arrays.append(geometry if name == "geometry" else _arrow(values))
    names.append("time")
    arrays.append(pa.array(time_ns.view("datetime64[ns]"), type=pa.timestamp("ns")))
    table = pa.Table.from_arrays(arrays, names=names)
    bbox = [float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())] if len(lon) else []
    geo = {"version": GEOPARQUET_VERSION, "primary_column": "geometry",
           "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Point"], "crs": CRS_7912,
                                    **({"bbox": bbox} if bbox else {})}},
           "creator": {"library": "icesat2sr", "version": __version__}}
    meta = {b"geo": json.dumps(geo).encode(), b"pandas": json.dumps(_pandas_metadata(table)).encode()}
    if parms is not None:
        meta[b"icesat2sr"] = json.dumps({"parms": parms}).encode()
    return table.replace_schema_metadata(meta)


def _arrow(values: np.ndarray):
    """A column as Arrow: array columns (2-D, or objects holding arrays) as lists, like pandas writes them."""
    import pyarrow as pa

    if values.ndim == 2 or values.dtype == object:
        items = list(values)
        lengths = np.array([len(v) for v in items], dtype=np.int64)
        offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int32)
        flat = np.concatenate(items) if items else np.zeros(0, dtype=np.float32)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))
    return pa.array(values)


def _pandas_metadata(table) -> dict:
    import pyarrow as pa

    def describe(field) -> dict:
        if pa.types.is_timestamp(field.type):
            kind, numpy_type = "datetime", "datetime64[ns]"
        elif pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            kind, numpy_type = "bytes", "object"
        elif pa.types.is_list(field.type):
            kind, numpy_type = f"list[{field.type.value_type.to_pandas_dtype().__name__}]", "object"
        else:
            kind = numpy_type = field.type.to_pandas_dtype().__name__
        return {"name": field.name, "field_name": field.name, "pandas_type": kind, "numpy_type": numpy_type,
                "metadata": None}

    return {"index_columns": ["time"],
            "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                                "metadata": {"encoding": "UTF-8"}}],
            "columns": [describe(f) for f in table.schema],
            "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.0"}


def to_bytes(result: GranuleResult, parms: dict | None = None, compression: str = "zstd") -> bytes:
    """The GeoParquet file of a (merged) result, in memory.

    Examples
    --------
    >>> data = to_bytes(merged, parms)                     # doctest: +SKIP
    >>> geopandas.read_parquet(io.BytesIO(data)).crs       # doctest: +SKIP
    <Geographic 3D CRS: EPSG:7912>
    """
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(to_table(result, parms), buffer, compression=compression)
    return buffer.getvalue()
