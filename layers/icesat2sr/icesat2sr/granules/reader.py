"""Reading the beams of an ATL03 granule (and its ATL08 classes) for one request, in windows.

Only what the request needs is read (SPEC §1.2, §4.5). Opening a :class:`GranuleReader` reads
per beam ``segment_ph_cnt`` (and, for a polygon, the segment reference positions), which gives
the beam's segment run and its photon range; then the segment and background datasets of that
run. Photons are read on demand, a window at a time (:meth:`GranuleReader.photons`: hyperslices
of the photon datasets), so memory follows the window, not the granule. Values are checked before
any science runs on them: a granule with impossible values is rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..request.errors import ResourceError
from ..request.names import BEAMS, parse_atl03_name, spot
from ..request.params import SPOTS, Parms
from ..request.polygon import inside
from . import ancillary
from .assets import Asset
from .atl08 import Atl08Join
from .beam import Beam
from .h5read import Granule, Read

_ORIENT = {"backward": 0, "forward": 1, "transition": 2}
_SEGMENT = ("segment_id", "segment_dist_x", "delta_time", "velocity_sc", "solar_elevation")
_PHOTON = ("delta_time", "lat_ph", "lon_ph", "h_ph", "dist_ph_along", "dist_ph_across", "quality_ph")
# Rows of a granule's per-segment and per-50-shot tables: its longest span (~512 s) holds ~180 000
# segments and ~100 000 background rates; a larger dimension is a corrupt dataspace.
MAX_TABLE_ROWS = 1_000_000
_PHOTON_DTYPES = {"delta_time": np.float64, "lat_ph": np.float64, "lon_ph": np.float64, "h_ph": np.float32,
                  "dist_ph_along": np.float32, "dist_ph_across": np.float32, "quality_ph": np.int8}


@dataclass
class BeamPlan:
    """One beam of a request: its region-trimmed run of segments and how many photons it holds.

    ``segments`` is a :class:`Beam` whose segment and background arrays are the whole run and
    whose photon arrays are empty; :meth:`GranuleReader.photons` reads photons into it.
    """

    segments: Beam
    n_photons: int
    land: dict | None = None     # ATL08 land segments of the run (ancillary atl08_fields)

    @property
    def beam(self) -> str:
        """Beam name, gt1l .. gt3r."""
        return self.segments.beam


class GranuleReader:
    """An open ATL03 granule (and its ATL08 companion when the request needs it), for one request.

    Parameters
    ----------
    asset : Asset
        Where the granule lives.
    resource : str
        ATL03 granule file name.
    parms : Parms
        The request (beams/track, poly/proj, srt, yapc version 0, atl08_class).

    Attributes
    ----------
    beams : list of BeamPlan
        Beams with photons in the region, in gt1l..gt3r order (absent or empty beams skipped).

    Raises
    ------
    ResourceError
        Bad name, missing/unreadable granule or ATL08 companion, missing dataset, impossible values.

    Examples
    --------
    >>> with GranuleReader(asset, name, parms) as reader:            # doctest: +SKIP
    ...     plan = reader.beams[0]
    ...     window = reader.photons(plan, 0, 100_000)               # the first 100,000 photons
    """

    def __init__(self, asset: Asset, resource: str, parms: Parms):
        self.resource = resource
        self.parms = parms
        name = parse_atl03_name(resource)
        self._atl08: Atl08Join | None = None
        self._data: dict = {}
        self.fields = ancillary.requested_fields(parms)
        self._h5: Granule | None = asset.open(resource)
        try:
            self.beams = self._plan(asset, name)
            if (parms.atl08_class or parms.atl08_fields) and self.beams:
                runs = {p.beam: (p.segments.segment_id, p.segments.segment_ph_cnt) for p in self.beams}
                self._atl08 = Atl08Join(asset, name.atl08, runs, resource, phoreal=parms.phoreal is not None)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> GranuleReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the granule (and its ATL08 companion)."""
        if self._atl08 is not None:
            self._atl08.close()
            self._atl08 = None
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    # ------------------------------------------------------------------ opening
    def _plan(self, asset: Asset, name) -> list[BeamPlan]:
        h5, parms = self._h5, self.parms
        present = h5.groups("/")
        if present.isdisjoint(BEAMS):  # e.g. a corrupt root group: never an empty result in silence
            raise ResourceError(self.resource, f"has no beam group ({', '.join(BEAMS)}): corrupt, or not an "
                                               "ATL03 granule")
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
        reads = []
        for b in beams:
            (s0, s1), _, _ = runs[b]
            reads += [Read(f"/{b}/geolocation/{d}", [(s0, s1)]) for d in _SEGMENT]
            if parms.podppd:   # 0, like none, filters nothing
                reads.append(Read(f"/{b}/geolocation/podppd_flag", [(s0, s1)]))
            reads += [Read(f"/{b}/bckgrd_atlas/{d}", max_rows=MAX_TABLE_ROWS) for d in ("delta_time", "bckgrd_rate")]
        self._data = h5.read(reads + ancillary.atl03_reads(beams, runs, self.fields, photons=False))
        land = ancillary.read_land_segments(asset, name.atl08, beams, runs, self._data, self.fields, self.resource)
        plans = []
        for b in beams:
            (s0, _), (p0, p1), counts = runs[b]
            beam = _segment_beam(self.resource, b, name, sc_orient, self._data, counts, s0, p0)
            check_segments(beam)
            plans.append(BeamPlan(beam, p1 - p0, land.get(b)))
        return plans

    # ------------------------------------------------------------------ photons
    def photons(self, plan: BeamPlan, a: int, b: int) -> dict[str, np.ndarray]:
        """Photon arrays of photons ``a .. b-1`` of a beam's run (indices in the run), checked.

        Returns
        -------
        dict
            :class:`Beam` photon field -> array: the ``_PHOTON`` datasets, ``signal_conf_ph``
            ((n,) for one surface type, (n, 5) for ``srt = -1``), ``weight_ph`` (YAPC version 0)
            and ``atl08_class`` (when ATL08 is needed), each of length ``b - a``; and, when the
            request has ancillary fields, ``extra = {"ancillary": {AncField: values}}`` of those photons.
        """
        beam, parms = plan.segments, self.parms
        g, p0 = beam.beam, beam.first_photon
        lo, hi = p0 + a, p0 + b
        reads = [Read(f"/{g}/heights/{d}", [(lo, hi)]) for d in _PHOTON]
        cols = (0, 5) if parms.srt == -1 else (parms.srt, parms.srt + 1)
        reads.append(Read(f"/{g}/heights/signal_conf_ph", [(lo, hi), cols]))
        if parms.yapc is not None and parms.yapc.version == 0:
            reads.append(Read(f"/{g}/heights/weight_ph", [(lo, hi)]))
        extra = ancillary.photon_reads(g, lo, hi, self.fields)
        data = self._h5.read(reads + extra)
        out = {}
        for r in reads:
            values = data[r.path]
            if len(values) != b - a:
                raise ResourceError(self.resource, f"/{g}: segment_ph_cnt counts {p0 + plan.n_photons} photons, "
                                                   f"{r.path} has fewer ({p0 + a + len(values)} read)")
            field = r.path.rsplit("/", 1)[1]
            if field == "signal_conf_ph":
                values = values.ravel() if parms.srt != -1 else values.reshape(-1, 5)
            elif field in _PHOTON_DTYPES:
                values = values.astype(_PHOTON_DTYPES[field], copy=False)
            out[field] = values
        check_photons(self.resource, g, out)
        if self._atl08 is not None:
            out.update(self._atl08_values(plan, a, b))
        if self.fields:
            window = with_photons(beam, out)
            seg = np.searchsorted(np.cumsum(beam.segment_ph_cnt, dtype=np.int64), np.arange(a, b), side="right")
            values = ancillary.photon_values(window, {**self._data, **{r.path: data[r.path] for r in extra}},
                                             self.fields, plan.land, seg)
            out["extra"] = {"ancillary": values}
        return out

    def _atl08_values(self, plan: BeamPlan, a: int, b: int) -> dict[str, np.ndarray]:
        """ATL08 values of photons a..b-1: the join of their whole segments, cut to the window."""
        counts = plan.segments.segment_ph_cnt
        ends = np.cumsum(counts, dtype=np.int64)
        s0 = int(np.searchsorted(ends, a, side="right"))
        s1 = int(np.searchsorted(ends, b - 1, side="right")) + 1 if b > a else s0
        first = int(ends[s0 - 1]) if s0 else 0
        values = self._atl08.values(plan.beam, plan.segments.segment_id[s0:s1], counts[s0:s1], s0)
        return {k: v[a - first:b - first] for k, v in values.items()}


def read_beams(asset: Asset, resource: str, parms: Parms) -> list[Beam]:
    """Read the request's beams of one ATL03 granule whole, trimmed to its region (arguments as
    :class:`GranuleReader`'s; for tests and tools: the engine reads windows).

    Returns
    -------
    list of Beam
        Beams with photons in the region, in gt1l..gt3r order (absent beams are skipped).

    Raises
    ------
    ResourceError
        Bad name, missing/unreadable granule or ATL08 companion, missing dataset, impossible values.
    """
    with GranuleReader(asset, resource, parms) as reader:
        return [with_photons(p.segments, reader.photons(p, 0, p.n_photons)) for p in reader.beams]


def with_photons(segments: Beam, photons: dict) -> Beam:
    """A beam's segment arrays together with a window of its photons (:meth:`GranuleReader.photons`)."""
    return replace(segments, **photons)


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


def _segment_beam(resource: str, b: str, name, sc_orient: int, data: dict, counts: np.ndarray,
                  s0: int, p0: int) -> Beam:
    geo = {d: data[f"/{b}/geolocation/{d}"] for d in _SEGMENT}
    empty = {f: np.zeros(0, dtype=t) for f, t in _PHOTON_DTYPES.items()}
    return Beam(
        granule=resource, beam=b, rgt=name.rgt, cycle=name.cycle, region=name.region,
        sc_orient=sc_orient,
        segment_id=geo["segment_id"].astype(np.int32, copy=False),
        segment_dist_x=geo["segment_dist_x"].astype(np.float64, copy=False),
        segment_ph_cnt=counts.astype(np.int32),
        segment_delta_time=geo["delta_time"].astype(np.float64, copy=False),
        velocity_sc=geo["velocity_sc"].astype(np.float32, copy=False).reshape(-1, 3),
        solar_elevation=geo["solar_elevation"].astype(np.float32, copy=False),
        delta_time=empty["delta_time"], lat_ph=empty["lat_ph"], lon_ph=empty["lon_ph"], h_ph=empty["h_ph"],
        dist_ph_along=empty["dist_ph_along"], dist_ph_across=empty["dist_ph_across"],
        signal_conf_ph=np.zeros(0, dtype=np.int8), quality_ph=empty["quality_ph"],
        bckgrd_delta_time=data[f"/{b}/bckgrd_atlas/delta_time"].astype(np.float64, copy=False),
        bckgrd_rate=data[f"/{b}/bckgrd_atlas/bckgrd_rate"].astype(np.float32, copy=False),
        podppd_flag=data.get(f"/{b}/geolocation/podppd_flag"),
        first_segment=s0, first_photon=p0,
    )


def _check_range(granule: str, path: str, values: np.ndarray, lo: float, hi: float) -> None:
    if values.size == 0 or (values.min() >= lo and values.max() <= hi):   # a NaN fails both tests
        return
    with np.errstate(invalid="ignore"):
        bad = ~((values >= lo) & (values <= hi))
    if bad.any():
        first = values[np.flatnonzero(bad)[0]]
        raise ResourceError(granule, f"{path} has impossible values (e.g. {float(first):g}, expected "
                                     f"{lo:g}..{hi:g}); the file is corrupt or mis-decoded")


_PHOTON_RANGES = (("lat_ph", -90, 90), ("lon_ph", -180, 180), ("h_ph", -20000, 20000), ("delta_time", 0, 1e10),
                  ("dist_ph_along", -1e4, 1e4), ("dist_ph_across", -1e5, 1e5))


def check_photons(granule: str, beam: str, photons: dict[str, np.ndarray]) -> None:
    """Reject photons whose values cannot be real ICESat-2 data (never fit garbage)."""
    for name, lo, hi in _PHOTON_RANGES:
        _check_range(granule, f"/{beam}/heights/{name}", photons[name], lo, hi)


def check_segments(beam: Beam) -> None:
    """Reject a beam whose segment or background values cannot be real ICESat-2 data."""
    g, b = beam.granule, f"/{beam.beam}"
    checks = (
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
    if len(beam.bckgrd_rate) == 0 or len(beam.bckgrd_rate) != len(beam.bckgrd_delta_time):
        raise ResourceError(g, f"{b}/bckgrd_atlas is empty or its datasets differ in length")


def check_values(beam: Beam) -> None:
    """Reject a whole beam whose values cannot be real ICESat-2 data (never fit garbage)."""
    check_photons(beam.granule, beam.beam, {n: getattr(beam, n) for n, _, _ in _PHOTON_RANGES})
    check_segments(beam)
    n_counted = int(beam.segment_ph_cnt.sum())
    if len(beam.h_ph) != n_counted:
        raise ResourceError(beam.granule, f"/{beam.beam}: segment_ph_cnt counts {n_counted} photons, "
                                          f"read {len(beam.h_ph)}")


__all__ = ["BEAMS", "BeamPlan", "GranuleReader", "check_values", "polygon_run", "read_beams", "with_photons"]
