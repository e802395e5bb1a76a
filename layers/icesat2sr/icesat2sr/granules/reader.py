"""Reading the beams of an ATL03 granule (and its ATL08 classes) for one request.

Only what the request needs is read (SPEC §1.2, §4.5): per beam first ``segment_ph_cnt`` (and,
for a polygon, the segment reference positions), which gives the segment run and its photon
range; then hyperslices of the segment and photon datasets of that run, for all beams at once.
Values are checked before any science runs: a granule with impossible values is rejected.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..request.errors import ResourceError
from ..request.names import BEAMS, parse_atl03_name, spot
from ..request.params import SPOTS, Parms
from ..request.polygon import inside
from . import ancillary
from .assets import Asset
from .atl08 import read_classes
from .beam import Beam
from .h5read import Granule, Read

_ORIENT = {"backward": 0, "forward": 1, "transition": 2}
# Rows of a granule's per-segment and per-50-shot tables: its longest span (~512 s) holds ~180 000
# segments and ~100 000 background rates; a larger dimension is a corrupt dataspace.
MAX_TABLE_ROWS = 1_000_000
_SEGMENT = ("segment_id", "segment_dist_x", "delta_time", "velocity_sc", "solar_elevation")
_PHOTON = ("delta_time", "lat_ph", "lon_ph", "h_ph", "dist_ph_along", "dist_ph_across", "quality_ph")


def read_beams(asset: Asset, resource: str, parms: Parms) -> list[Beam]:
    """Read the request's beams of one ATL03 granule, trimmed to its region.

    Parameters
    ----------
    asset : Asset
        Where the granule lives.
    resource : str
        ATL03 granule file name.
    parms : Parms
        The request (beams/track, poly/proj, srt, yapc version 0, atl08_class).

    Returns
    -------
    list of Beam
        Beams with photons in the region, in gt1l..gt3r order (absent beams are skipped).

    Raises
    ------
    ResourceError
        Bad name, missing/unreadable granule or ATL08 companion, missing dataset, impossible values.
    """
    name = parse_atl03_name(resource)
    with asset.open(resource) as h5:
        present = h5.groups("/")
        if present.isdisjoint(BEAMS):  # e.g. a corrupt root group: never an empty result in silence
            raise ResourceError(resource, f"has no beam group ({', '.join(BEAMS)}): corrupt, or not an ATL03 granule")
        beams = [b for b in parms.selected_beams if b in present]
        if not beams:
            return []
        sc_orient = _sc_orient(h5, beams[0], "orbit_info" in present)
        if parms.spots != SPOTS:   # SlideRule's laser spots 1-6, from the orientation (0 in transition)
            beams = [b for b in beams if spot(sc_orient, b) in parms.spots]
            if not beams:
                return []
        runs = _segment_runs(h5, beams, parms)
        beams = [b for b in beams if runs[b] is not None]
        fields = ancillary.requested_fields(parms)  # ancillary fields: read with the rest
        data = h5.read(_run_reads(beams, runs, parms) + ancillary.atl03_reads(beams, runs, fields))
    need08 = parms.atl08_class or parms.atl08_fields
    atl08 = (read_classes(asset, name.atl08, beams, runs, data, resource, phoreal=parms.phoreal is not None)
             if need08 else {})
    land = ancillary.read_land_segments(asset, name.atl08, beams, runs, data, fields, resource)
    out = []
    for b in beams:
        (s0, _), (p0, _), counts = runs[b]
        beam = _assemble(resource, b, name, sc_orient, data, counts, parms, s0, p0)
        for field, values in atl08.get(b, {}).items():  # atl08_class (+ relief, landcover, snowcover)
            setattr(beam, field, values)
        check_values(beam)
        if fields:
            beam.extra["ancillary"] = ancillary.photon_values(beam, data, fields, land.get(b))
        out.append(beam)
    return out


def _sc_orient(h5: Granule, beam: str, has_orbit_info: bool) -> int:
    """/orbit_info/sc_orient, or the beam attribute when a subsetter dropped orbit_info."""
    if has_orbit_info:
        value = h5.read([Read("/orbit_info/sc_orient", optional=True)])["/orbit_info/sc_orient"]
        if value is not None and value.size:
            return int(value.ravel()[0])
    text = h5.attribute(f"/{beam}/sc_orientation")
    if isinstance(text, str) and text.strip().lower() in _ORIENT:
        return _ORIENT[text.strip().lower()]
    raise ResourceError(h5.name, "spacecraft orientation unknown (no /orbit_info/sc_orient and "
                                 f"no readable /{beam} sc_orientation attribute)")


def _segment_runs(h5: Granule, beams: Sequence[str], parms: Parms) -> dict:
    """Per beam: ((s0, s1), (p0, p1), counts) of the first contiguous run in the region, or None."""
    reads = [Read(f"/{b}/geolocation/segment_ph_cnt", max_rows=MAX_TABLE_ROWS) for b in beams]
    if parms.poly:
        reads += [Read(f"/{b}/geolocation/reference_photon_{c}", max_rows=MAX_TABLE_ROWS)
                  for b in beams for c in ("lat", "lon")]
    data = h5.read(reads)
    runs = {}
    for b in beams:
        counts = data[f"/{b}/geolocation/segment_ph_cnt"].astype(np.int64)
        if np.any(counts < 0):
            raise ResourceError(h5.name, f"/{b}/geolocation/segment_ph_cnt has negative counts")
        if parms.poly:
            lat = data[f"/{b}/geolocation/reference_photon_lat"]
            lon = data[f"/{b}/geolocation/reference_photon_lon"]
            _check_range(h5.name, f"/{b}/geolocation/reference_photon_lat", lat, -90, 90)
            _check_range(h5.name, f"/{b}/geolocation/reference_photon_lon", lon, -180, 180)
            s0, s1 = polygon_run(inside(lon, lat, parms.poly, parms.proj), counts)
        else:
            s0, s1 = 0, len(counts)
        p0 = int(counts[:s0].sum())
        p1 = p0 + int(counts[s0:s1].sum())
        runs[b] = ((s0, s1), (p0, p1), counts[s0:s1]) if p1 > p0 else None
    return runs


def polygon_run(inside_mask: np.ndarray, counts: np.ndarray) -> tuple[int, int]:
    """SlideRule's segment run: first inside segment with photons, up to the first outside one
    with photons (zero-photon segments never end the run). ``(0, 0)`` when none.
    """
    has = counts != 0
    starts = np.flatnonzero(inside_mask & has)
    if starts.size == 0:
        return 0, 0
    s0 = int(starts[0])
    ends = np.flatnonzero(~inside_mask[s0:] & has[s0:])
    return s0, s0 + int(ends[0]) if ends.size else len(counts)


def _run_reads(beams: Sequence[str], runs: dict, parms: Parms) -> list[Read]:
    reads = []
    for b in beams:
        (s0, s1), (p0, p1), _ = runs[b]
        reads += [Read(f"/{b}/geolocation/{d}", [(s0, s1)]) for d in _SEGMENT]
        reads += [Read(f"/{b}/heights/{d}", [(p0, p1)]) for d in _PHOTON]
        cols = (0, 5) if parms.srt == -1 else (parms.srt, parms.srt + 1)
        reads.append(Read(f"/{b}/heights/signal_conf_ph", [(p0, p1), cols]))
        if parms.yapc is not None and parms.yapc.version == 0:
            reads.append(Read(f"/{b}/heights/weight_ph", [(p0, p1)]))
        if parms.podppd:   # 0, like none, filters nothing
            reads.append(Read(f"/{b}/geolocation/podppd_flag", [(s0, s1)]))
        reads += [Read(f"/{b}/bckgrd_atlas/{d}", max_rows=MAX_TABLE_ROWS) for d in ("delta_time", "bckgrd_rate")]
    return reads


def _assemble(resource: str, b: str, name, sc_orient: int, data: dict, counts: np.ndarray,
              parms: Parms, s0: int, p0: int) -> Beam:
    geo = {d: data[f"/{b}/geolocation/{d}"] for d in _SEGMENT}
    ph = {d: data[f"/{b}/heights/{d}"] for d in _PHOTON}
    conf = data[f"/{b}/heights/signal_conf_ph"]
    return Beam(
        granule=resource, beam=b, rgt=name.rgt, cycle=name.cycle, region=name.region,
        sc_orient=sc_orient,
        segment_id=geo["segment_id"].astype(np.int32, copy=False),
        segment_dist_x=geo["segment_dist_x"].astype(np.float64, copy=False),
        segment_ph_cnt=counts.astype(np.int32),
        segment_delta_time=geo["delta_time"].astype(np.float64, copy=False),
        velocity_sc=geo["velocity_sc"].astype(np.float32, copy=False).reshape(-1, 3),
        solar_elevation=geo["solar_elevation"].astype(np.float32, copy=False),
        delta_time=ph["delta_time"].astype(np.float64, copy=False),
        lat_ph=ph["lat_ph"].astype(np.float64, copy=False),
        lon_ph=ph["lon_ph"].astype(np.float64, copy=False),
        h_ph=ph["h_ph"].astype(np.float32, copy=False),
        dist_ph_along=ph["dist_ph_along"].astype(np.float32, copy=False),
        dist_ph_across=ph["dist_ph_across"].astype(np.float32, copy=False),
        signal_conf_ph=conf.ravel() if parms.srt != -1 else conf.reshape(-1, 5),
        quality_ph=ph["quality_ph"].astype(np.int8, copy=False),
        bckgrd_delta_time=data[f"/{b}/bckgrd_atlas/delta_time"].astype(np.float64, copy=False),
        bckgrd_rate=data[f"/{b}/bckgrd_atlas/bckgrd_rate"].astype(np.float32, copy=False),
        weight_ph=data.get(f"/{b}/heights/weight_ph"),
        podppd_flag=data.get(f"/{b}/geolocation/podppd_flag"),
        first_segment=s0, first_photon=p0,
    )


def _check_range(granule: str, path: str, values: np.ndarray, lo: float, hi: float) -> None:
    if values.size == 0:
        return
    with np.errstate(invalid="ignore"):
        bad = ~((values >= lo) & (values <= hi))
    if bad.any():
        first = values[np.flatnonzero(bad)[0]]
        raise ResourceError(granule, f"{path} has impossible values (e.g. {float(first):g}, expected "
                                     f"{lo:g}..{hi:g}); the file is corrupt or mis-decoded")


def check_values(beam: Beam) -> None:
    """Reject a beam whose values cannot be real ICESat-2 data (never fit garbage)."""
    g, b = beam.granule, f"/{beam.beam}"
    checks = (
        ("heights/lat_ph", beam.lat_ph, -90, 90),
        ("heights/lon_ph", beam.lon_ph, -180, 180),
        ("heights/h_ph", beam.h_ph, -20000, 20000),
        ("heights/delta_time", beam.delta_time, 0, 1e10),
        ("heights/dist_ph_along", beam.dist_ph_along, -1e4, 1e4),
        ("heights/dist_ph_across", beam.dist_ph_across, -1e5, 1e5),
        ("geolocation/segment_dist_x", beam.segment_dist_x, 0, 5e7),
        ("geolocation/delta_time", beam.segment_delta_time, 0, 1e10),
        ("geolocation/segment_id", beam.segment_id, 0, 1e8),
        ("bckgrd_atlas/delta_time", beam.bckgrd_delta_time, 0, 1e10),
        ("bckgrd_atlas/bckgrd_rate", beam.bckgrd_rate, 0, 1e12),
    )
    for path, values, lo, hi in checks:
        _check_range(g, f"{b}/{path}", values, lo, hi)
    speed = np.sqrt(np.sum(beam.velocity_sc.astype(np.float64) ** 2, axis=1))
    _check_range(g, f"{b}/geolocation/velocity_sc (norm)", speed, 1000, 20000)
    n_counted = int(beam.segment_ph_cnt.sum())
    if len(beam.h_ph) != n_counted:
        raise ResourceError(g, f"{b}: segment_ph_cnt counts {n_counted} photons, read {len(beam.h_ph)}")
    if len(beam.bckgrd_rate) == 0 or len(beam.bckgrd_rate) != len(beam.bckgrd_delta_time):
        raise ResourceError(g, f"{b}/bckgrd_atlas is empty or its datasets differ in length")


__all__ = ["BEAMS", "check_values", "polygon_run", "read_beams"]
