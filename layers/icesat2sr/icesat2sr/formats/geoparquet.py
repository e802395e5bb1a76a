"""GeoParquet's pieces with pyarrow alone (no pandas, GeoPandas or shapely), for the file writers.

The aggregator Lambda cannot carry GeoPandas and pandas (~150 MB with their libraries) beside the
science layer, so :mod:`icesat2sr.formats.output` writes GeoParquet itself from these:

* WKB points (:func:`wkb_points`) and the GeoParquet 1.0 ``geo`` metadata of one ``geometry``
  column, CRS EPSG:7912 as PROJJSON (:func:`geo_metadata`);
* pandas metadata naming the time column the frame index (:func:`pandas_metadata`), so pandas and
  GeoPandas restore the frame the official client builds (tests compare the two through
  ``geopandas.read_parquet``).
"""

from __future__ import annotations

import numpy as np

from .. import __version__

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


def geo_metadata(bbox: list[float] | None = None) -> dict:
    """GeoParquet 1.0 ``geo`` metadata of one WKB point column in EPSG:7912 (optional bbox)."""
    column = {"encoding": "WKB", "geometry_types": ["Point"], "crs": CRS_7912, **({"bbox": bbox} if bbox else {})}
    return {"version": GEOPARQUET_VERSION, "primary_column": "geometry", "columns": {"geometry": column},
            "creator": {"library": "icesat2sr", "version": __version__}}


def numpy_array(values: np.ndarray):
    """A 1-D numpy array as an Arrow array without nulls (NaN stays a value), as ``pa.array`` makes it.

    Numbers, booleans and datetimes are wrapped from their buffer: ``pa.array`` would also import
    pandas (0.3-0.4 s) on its first call, to look for pandas types. Other dtypes go to ``pa.array``.
    """
    import pyarrow as pa

    if values.dtype.kind not in "biufM":
        return pa.array(values)
    values = np.ascontiguousarray(values)
    if values.dtype == bool:
        bits = pa.py_buffer(np.packbits(values, bitorder="little"))
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, bits])
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def arrow_column(values: np.ndarray):
    """A column as Arrow: array columns (2-D, or objects holding arrays) as lists, like pandas writes them."""
    import pyarrow as pa

    if values.ndim == 2 or values.dtype == object:
        items = list(values)
        lengths = np.array([len(v) for v in items], dtype=np.int64)
        offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int32)
        flat = np.concatenate(items) if items else np.zeros(0, dtype=np.float32)
        return pa.ListArray.from_arrays(numpy_array(offsets), numpy_array(flat))
    return numpy_array(values)


def pandas_metadata(schema, index: str) -> dict:
    """pandas metadata naming ``index`` the frame index (how pandas and GeoPandas restore it)."""
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

    return {"index_columns": [index],
            "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                                "metadata": {"encoding": "UTF-8"}}],
            "columns": [describe(f) for f in schema],
            "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.0"}
