"""GeoParquet from result tables with pyarrow alone (no pandas, GeoPandas or shapely).

The aggregator Lambda cannot carry GeoPandas and pandas (~150 MB with their libraries) beside the
science layer, so it writes the file itself: the same columns, order, dtypes, ``time`` index and
row order as :func:`icesat2sr.formats.frames.result_frame` followed by :func:`icesat2sr.formats.frames.write`
(tests compare the two through ``geopandas.read_parquet``). The file carries

* GeoParquet 1.0 ``geo`` metadata: one WKB ``geometry`` column of 2-D points, CRS EPSG:7912 as
  PROJJSON, its bbox;
* pandas metadata naming ``time`` (datetime64[ns], UTC) as the index, so pandas and GeoPandas
  restore the frame the official client builds;
* the request parameters under the key ``sliderule``, as SlideRule's files (:mod:`icesat2sr.formats.output`).
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


def geo_metadata(bbox: list[float] | None = None) -> dict:
    """GeoParquet 1.0 ``geo`` metadata of one WKB point column in EPSG:7912 (optional bbox)."""
    column = {"encoding": "WKB", "geometry_types": ["Point"], "crs": CRS_7912, **({"bbox": bbox} if bbox else {})}
    return {"version": GEOPARQUET_VERSION, "primary_column": "geometry", "columns": {"geometry": column},
            "creator": {"library": "icesat2sr", "version": __version__}}


def pandas_metadata(schema, index: str) -> dict:
    """pandas metadata naming ``index`` the frame index (how pandas and GeoPandas restore it)."""
    import pyarrow as pa

    def describe(field) -> dict:
        if pa.types.is_timestamp(field.type):
            kind, numpy_type = "datetime", "datetime64[ns]"
        elif pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            kind, numpy_type = "bytes", "object"
        else:
            kind = numpy_type = field.type.to_pandas_dtype().__name__
        return {"name": field.name, "field_name": field.name, "pandas_type": kind, "numpy_type": numpy_type,
                "metadata": None}

    return {"index_columns": [index],
            "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                                "metadata": {"encoding": "UTF-8"}}],
            "columns": [describe(f) for f in schema],
            "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.0"}


def to_table(result: GranuleResult, parms: dict | None = None):
    """A ``pyarrow.Table`` of the result with GeoParquet, pandas and ``sliderule`` metadata."""
    from .output import file_metadata, result_table

    table = result_table(result, geo=True)
    lon, lat = _coordinates(result)
    bbox = [float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())] if len(lon) else None
    meta = file_metadata(table.schema, result.kind, parms, geo=True)
    meta[b"geo"] = json.dumps(geo_metadata(bbox)).encode()
    return table.replace_schema_metadata(meta)


def _coordinates(result: GranuleResult) -> tuple[np.ndarray, np.ndarray]:
    if result.kind == "atl03x":
        return result.frame["longitude"], result.frame["latitude"]
    _, _, lon, lat = frame_columns(result)
    return lon, lat


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
