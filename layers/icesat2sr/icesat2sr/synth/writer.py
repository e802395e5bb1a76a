"""Writing synthetic granules as HDF5 files in the real layout, and reading their spec back."""

from __future__ import annotations

import datetime as dt
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..request.names import BEAMS, parse_name, spot
from ..request.timeutil import ATLAS_SDP_EPOCH_GPS
from .ancillary import ancillary_background_values
from .photons import beam_data, shots
from .spec import (
    CHUNK,
    FILL_F4,
    ORIENTATION,
    PRF,
    SPEC_ATTR,
    GranuleSpec,
    background_rate,
    granule_name,
    is_strong,
    segment_grid,
    start_delta_time,
)

# ------------------------------------------------------------------------------------------------
# writing

_FILLS = {
    "geolocation/segment_ph_cnt": 0,
    "geolocation/ph_index_beg": 0,
    "geolocation/reference_photon_index": 0,
    "geolocation/velocity_sc": FILL_F4,
    "geolocation/solar_elevation": FILL_F4,
    "geophys_corr/tide_ocean": FILL_F4,
}


def _deflate(chunk: np.ndarray, shuffle: bool) -> bytes:
    """HDF5's filter pipeline (shuffle, then deflate level 6) applied to one full chunk."""
    raw = chunk.reshape(-1).view(np.uint8).reshape(-1, chunk.dtype.itemsize)
    return zlib.compress((raw.T if shuffle else raw).tobytes(), 6)


def _dataset(group, name: str, data: np.ndarray, pool: ThreadPoolExecutor, fill=None) -> None:
    """Chunked dataset as in released granules: (10000, ...) chunks, gzip 6, shuffle on integers.

    Chunks are compressed here, in threads (zlib releases the GIL), and stored with
    ``write_direct_chunk``; the bytes are those HDF5's own pipeline would write.
    """
    data = np.ascontiguousarray(data)
    tail = data.shape[1:]
    shuffle = data.dtype.kind in "iu"
    # real signal_conf_ph is (None, None)-extendable, velocity_sc (None, 3)
    maxshape = (None, None) if tail == (5,) else (None, *tail)
    ds = group.create_dataset(name, shape=data.shape, dtype=data.dtype, chunks=(CHUNK, *tail),
                              maxshape=maxshape, compression="gzip", compression_opts=6, shuffle=shuffle,
                              fillvalue=fill)
    if fill is not None:
        ds.attrs["_FillValue"] = np.asarray(fill, dtype=data.dtype)

    def compress(start: int) -> bytes:
        chunk = data[start: start + CHUNK]
        if len(chunk) < CHUNK:  # edge chunks are stored full size
            full = np.full((CHUNK, *tail), 0 if fill is None else fill, dtype=data.dtype)
            full[: len(chunk)] = chunk
            chunk = full
        return _deflate(chunk, shuffle and data.dtype.itemsize > 1)

    starts = range(0, len(data), CHUNK)
    for start, blob in zip(starts, pool.map(compress, starts), strict=True):
        ds.id.write_direct_chunk((start,) + (0,) * len(tail), blob)


def _utc(delta_time: float) -> str:
    """``YYYY-MM-DDThh:mm:ss.ffffffZ`` of a delta_time."""
    when = dt.datetime(2018, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=delta_time)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _write_common(f, spec: GranuleSpec, product: str, name: str, t0: float, t1: float) -> None:
    """Root attributes, METADATA, orbit_info and ancillary_data shared by ATL03 and ATL08."""
    attrs = {
        "short_name": product, "granule_type": product, "identifier_product_type": product,
        "level": "L2" if product == "ATL03" else "L3A", "Conventions": "CF-1.6",
        "description": f"icesat2sr synthetic {product} granule (not real data)",
        "date_created": spec.start.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        "time_coverage_start": _utc(t0), "time_coverage_end": _utc(t1),
        SPEC_ATTR: spec.to_json(),
    }
    for key, value in attrs.items():
        f.attrs[key] = np.bytes_(value)
    meta = f.create_group("METADATA/DatasetIdentification")
    for key, value in {"fileName": name, "shortName": product, "VersionID": f"{spec.version:03d}"}.items():
        meta.attrs[key] = np.bytes_(value)
    orbit = f.create_group("orbit_info")
    for key, value, dtype in (("sc_orient", spec.sc_orient, np.int8), ("rgt", spec.rgt, np.int16),
                              ("cycle_number", spec.cycle, np.int8),
                              ("sc_orient_time", t0 - 3600.0, np.float64)):
        orbit.create_dataset(key, data=np.array([value], dtype=dtype), chunks=(16,), maxshape=(None,))
    anc = f.create_group("ancillary_data")
    for key, value in (("atlas_sdp_gps_epoch", ATLAS_SDP_EPOCH_GPS), ("start_delta_time", t0),
                       ("end_delta_time", t1)):
        anc.create_dataset(key, data=np.array([value], dtype=np.float64))
    for key, value in (("start_rgt", spec.rgt), ("end_rgt", spec.rgt), ("start_cycle", spec.cycle),
                       ("end_cycle", spec.cycle), ("start_region", spec.region), ("end_region", spec.region)):
        anc.create_dataset(key, data=np.array([value], dtype=np.int32))
    for key, value in (("data_start_utc", _utc(t0)), ("data_end_utc", _utc(t1)),
                       ("release", f"{spec.version:03d}".ljust(80)),
                       ("version", f"{spec.revision:02d}".ljust(80))):
        anc.create_dataset(key, data=np.array([value.encode()]))


def _beam_attrs(group, spec: GranuleSpec, beam: str) -> None:
    s = spot(spec.sc_orient, beam)
    attrs = {"atlas_beam_type": "strong" if is_strong(spec, beam) else "weak",
             "atlas_spot_number": str(s), "atlas_pce": f"pce{(s + 1) // 2}" if s else "pce0",
             "groundtrack_id": beam, "sc_orientation": ORIENTATION[spec.sc_orient]}
    for key, value in attrs.items():
        group.attrs[key] = np.bytes_(value)


def _end_delta_time(spec: GranuleSpec, grid: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
    xs, _ = shots(spec, grid[1], grid[2])
    return start_delta_time(spec) + (len(xs) - 1) / PRF


def write_granule(directory: str | Path, spec: GranuleSpec) -> list[Path]:
    """Write the ATL03 granule of ``spec`` (and its ATL08 companion when ``spec.atl08``).

    Parameters
    ----------
    directory : str or Path
        Output directory (created if missing).
    spec : GranuleSpec
        The granule's synthesis parameters.

    Returns
    -------
    list of Path
        ``[ATL03 path]`` or ``[ATL03 path, ATL08 path]``.
    """
    import h5py

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = granule_name(spec)
    atl08_name = parse_name(name).atl08
    grid = segment_grid(spec)
    t0, t1 = start_delta_time(spec), _end_delta_time(spec, grid)
    bt = np.arange(t0 - 0.05, t1 + 0.05, 50 / PRF)
    background = {"bckgrd_atlas/delta_time": bt,
                  "bckgrd_atlas/bckgrd_rate": background_rate(bt + 25 / PRF, spec).astype(np.float32),
                  **ancillary_background_values(bt, spec)}
    atl08: dict[str, dict[str, np.ndarray]] = {}
    pool = ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1))
    with pool, h5py.File(directory / name, "w") as f:
        _write_common(f, spec, "ATL03", name, t0, t1)
        for beam in BEAMS:
            data, atl08[beam] = beam_data(spec, beam, grid)
            group = f.create_group(beam)
            _beam_attrs(group, spec, beam)
            for key, value in {**data, **background}.items():
                _dataset(group, key, value, pool, _FILLS.get(key))
            del data
    paths = [directory / name]
    if spec.atl08:
        pool = ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1))
        with pool, h5py.File(directory / atl08_name, "w") as f:
            _write_common(f, spec, "ATL08", atl08_name, t0, t1)
            for beam in BEAMS:
                group = f.create_group(beam)
                _beam_attrs(group, spec, beam)
                for key, value in atl08[beam].items():
                    _dataset(group, key, value, pool)
        paths.append(directory / atl08_name)
    return paths


def read_spec(path: str | Path) -> GranuleSpec:
    """The :class:`GranuleSpec` stored in a synthetic ATL03 or ATL08 file.

    Raises
    ------
    KeyError
        If the file is not a synthetic granule (no ``icesat2sr_synth_spec`` root attribute).
    """
    import h5py

    with h5py.File(path, "r") as f:
        text = f.attrs[SPEC_ATTR]
    return GranuleSpec.from_json(text.decode() if isinstance(text, bytes) else str(text))


def synthesize(directory: str | Path, seed: int = 0, segments: int = 2000, atl08: bool = False,
               granules: int = 1) -> list[Path]:
    """Write ``granules`` synthetic granules with different rgt, times and places.

    Places are Antarctic (lat -60 .. -80, any longitude) so segment ids have 7 digits; tracks are
    ascending (heading ~ -10 deg, region 12) or descending (~190 deg, region 10) and the
    spacecraft orientation backward or forward, all drawn from ``seed``.

    Parameters
    ----------
    directory : str or Path
        Output directory (created if missing).
    seed : int
        Seed of every random draw: the same seed writes the same files.
    segments : int
        Segments per beam of every granule.
    atl08 : bool
        Also write the ATL08 companions.
    granules : int
        How many granules.

    Returns
    -------
    list of Path
        All files written, ATL03 (then its ATL08) per granule.
    """
    rng = np.random.default_rng([seed, 999])
    rgt0 = int(rng.integers(1, 1388))
    paths: list[Path] = []
    for i in range(granules):
        descending = bool(rng.integers(0, 2))
        start = (dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
                 + dt.timedelta(days=int(rng.integers(0, 1800)), seconds=int(rng.integers(0, 86400))))
        spec = GranuleSpec(
            rgt=(rgt0 + 97 * i) % 1387 + 1, cycle=int(rng.integers(1, 26)), region=10 if descending else 12,
            start=start, lat0=float(rng.uniform(-80.0, -60.0)), lon0=float(rng.uniform(-180.0, 180.0)),
            heading_deg=float((190.0 if descending else -10.0) + rng.uniform(-3.0, 3.0)),
            segments=segments, sc_orient=int(rng.integers(0, 2)), seed=seed * 1000 + i, atl08=atl08,
            height0=float(rng.uniform(200.0, 3000.0)), slope=float(rng.uniform(-0.03, 0.03)),
            phase=float(rng.uniform(0.0, 2 * np.pi)))
        paths += write_granule(directory, spec)
    return paths
