"""The ATL08 companion of an ATL03 granule: reading its photon classes and joining them to ATL03.

ATL08 lists classified photons by (ATL03 segment id, 1-based index within the segment); the join
(SPEC §2) gives every ATL03 photon of a region-trimmed beam its class, 4 (unclassified) when ATL08
has none.
"""

from __future__ import annotations

import numpy as np

from ..request.errors import ResourceError
from .ancillary import land_segment_index
from .assets import Asset
from .h5read import Read

ATL08_UNCLASSIFIED = 4       # classes 0 noise, 1 ground, 2 canopy, 3 top of canopy
INVALID_FLAG = 0xFF          # landcover/snowcover of photons without an ATL08 land segment
_I32_MIN, _I32_MAX = -(2 ** 31), 2 ** 31 - 1


_FIELDS = ("ph_segment_id", "classed_pc_indx", "classed_pc_flag")
_LAND = ("segment_id_beg", "segment_id_end", "segment_landcover", "segment_snowcover")


class Atl08Join:
    """The ATL08 companion of one request's beams, joined to ATL03 photons one window at a time.

    Opening reads each beam's ``signal_photons/ph_segment_id`` once to find, for every ATL03
    segment of the beam's run, its block of ATL08 rows (and, for PhoREAL, the beam's land
    segments: one per 100 m); :meth:`values` then reads only the rows of a window's segments. That
    is the whole-beam join restricted to the window whenever the run's segment ids increase and
    ATL08 is sorted by segment (always, in released granules); otherwise the beam is joined whole
    once, as SlideRule's merge needs (see :func:`atl08_rows`).

    Parameters
    ----------
    asset : Asset
    atl08_name : str
        The ATL08 granule.
    runs : dict
        Beam -> ATL03 ``segment_id`` and ``segment_ph_cnt`` of its region-trimmed run.
    resource : str
        The ATL03 granule (for error messages).
    phoreal : bool
        Also PhoREAL's per-photon inputs (``relief``, ``landcover``, ``snowcover``).
    """

    def __init__(self, asset: Asset, atl08_name: str, runs: dict[str, tuple[np.ndarray, np.ndarray]],
                 resource: str, phoreal: bool = False):
        self.resource, self.name, self.phoreal = resource, atl08_name, phoreal
        self._blocks: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
        self._whole: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] = {}
        self._land: dict[str, dict[str, np.ndarray | None]] = {}
        self._h5 = None
        try:
            self._h5 = asset.open(atl08_name)
            present = self._h5.groups("/")
            here = [b for b in runs if b in present]
            reads = [Read(f"/{b}/signal_photons/ph_segment_id") for b in here]
            if phoreal:
                reads += [Read(f"/{b}/land_segments/{f}") for b in here for f in _LAND]
            index = self._h5.read(reads)
        except ResourceError as exc:
            self.close()
            raise self._error(exc) from None
        try:
            for b, (segment_id, counts) in runs.items():
                if phoreal:
                    self._land[b] = {f: index.get(f"/{b}/land_segments/{f}") for f in _LAND}
                self._index(b, segment_id, counts, index.get(f"/{b}/signal_photons/ph_segment_id"))
        except BaseException:
            self.close()
            raise

    def _index(self, b: str, segment_id: np.ndarray, counts: np.ndarray, seg08: np.ndarray | None) -> None:
        if seg08 is None:
            self._blocks[b] = None          # beam absent from ATL08: unclassified
        elif np.all(np.diff(segment_id.astype(np.int64)) > 0) and np.all(seg08[1:] >= seg08[:-1]):
            self._blocks[b] = (np.searchsorted(seg08, segment_id, side="left"),
                               np.searchsorted(seg08, segment_id, side="right"))
        else:
            first = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
            values = self._join(b, segment_id, counts, 0, len(seg08))
            self._whole[b] = (values, first)

    def values(self, beam: str, segment_id: np.ndarray, counts: np.ndarray, s0: int) -> dict[str, np.ndarray]:
        """ATL08 values of every photon of the run's segments ``s0 .. s0 + len(counts) - 1``.

        ``segment_id`` and ``counts`` are those segments' ATL03 ids and photon counts. Returns
        ``{"atl08_class": u1}`` (0-4) and, with ``phoreal``, ``relief``, ``landcover`` and
        ``snowcover`` (as :func:`phoreal_inputs`).
        """
        n = int(counts.sum())
        if beam in self._whole:
            values, first = self._whole[beam]
            return {k: v[first[s0]:first[s0] + n] for k, v in values.items()}
        blocks = self._blocks.get(beam)
        if blocks is None or len(counts) == 0:
            return self._unclassified(n)
        lo, hi = int(blocks[0][s0]), int(blocks[1][s0 + len(counts) - 1])
        return self._join(beam, segment_id, counts, lo, hi) if hi > lo else self._unclassified(n)

    def _join(self, beam: str, segment_id: np.ndarray, counts: np.ndarray, lo: int, hi: int) -> dict:
        n = int(counts.sum())
        rows = self._rows(beam, lo, hi)
        if len(rows["classed_pc_flag"]) != len(rows["ph_segment_id"]):
            raise ResourceError(self.resource, f"ATL08 /{beam}/signal_photons arrays differ in length")
        row = atl08_rows(segment_id, counts, n, rows["ph_segment_id"], rows["classed_pc_indx"], self.resource)
        out = {"atl08_class": classes_of_rows(row, rows["classed_pc_flag"], self.resource)}
        if self.phoreal:
            if not len(rows["classed_pc_flag"]):
                out.update(self._unclassified(n))
            else:
                out.update(phoreal_inputs(row, segment_id, counts, {"ph_h": rows["ph_h"], **self._land[beam]},
                                          self.resource))
        return out

    def _unclassified(self, n: int) -> dict[str, np.ndarray]:
        out = {"atl08_class": np.full(n, ATL08_UNCLASSIFIED, dtype=np.uint8)}
        if self.phoreal:   # nothing classified: no relief, no land segment
            out.update(relief=np.zeros(n, dtype=np.float32), landcover=np.full(n, INVALID_FLAG, dtype=np.uint8),
                       snowcover=np.full(n, INVALID_FLAG, dtype=np.uint8))
        return out

    def _rows(self, beam: str, lo: int, hi: int) -> dict[str, np.ndarray]:
        names = _FIELDS + (("ph_h",) if self.phoreal else ())
        paths = {f: f"/{beam}/signal_photons/{f}" for f in names}
        try:
            data = self._h5.read([Read(p, [(lo, hi)], optional=f == "ph_h") for f, p in paths.items()])
        except ResourceError as exc:
            raise self._error(exc) from None
        return {f: data[p] for f, p in paths.items()}

    def _error(self, exc: ResourceError) -> ResourceError:
        stage = "PhoREAL" if self.phoreal else "atl08_class"
        return ResourceError(self.resource, f"{stage} needs the ATL08 granule {self.name}: {exc}",
                             ResourceError.RESOURCE_DOES_NOT_EXIST)

    def close(self) -> None:
        """Close the ATL08 granule."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None


def atl08_classes(segment_id: np.ndarray, segment_ph_cnt: np.ndarray, n_photons: int,
                  ph_segment_id: np.ndarray, classed_pc_indx: np.ndarray,
                  classed_pc_flag: np.ndarray, granule: str = "") -> np.ndarray:
    """ATL08 class of every ATL03 photon: SlideRule's two-pointer merge (SPEC §2), vectorised.

    Every ATL03 photon gets the key (segment id, 1-based index within its segment); an ATL08
    row (``ph_segment_id``, ``classed_pc_indx``) with the same key gives its class, photons
    without one are 4 (unclassified). The result equals SlideRule's ``Atl08Class::classify``
    for any ATL03 segment order and for ATL08 rows sorted by key, including rows for segments
    outside the trimmed range (skipped) and duplicate keys (each ATL03 photon consumes one
    row, the first in file order; a later duplicate can only be consumed by a later ATL03
    photon with the same key, e.g. when a segment id repeats).

    ATL08 rows *not* sorted by key are not expected (ATL08 is written sorted). They are
    stably sorted first, so the join is by key with the first row in file order winning;
    SlideRule's merge would instead silently miss rows that appear after a larger key.

    Parameters
    ----------
    segment_id, segment_ph_cnt : ndarray of int32, shape (M,)
        Region-trimmed ATL03 ``geolocation/segment_id`` and ``segment_ph_cnt``.
    n_photons : int
        Photons in the region-trimmed beam. Photons past ``sum(segment_ph_cnt)`` are 4.
    ph_segment_id, classed_pc_indx : ndarray of int32, shape (K,)
        ATL08 ``signal_photons/ph_segment_id`` and ``classed_pc_indx`` (1-based in segment).
    classed_pc_flag : ndarray of int8, shape (K,)
        ATL08 ``signal_photons/classed_pc_flag``.
    granule : str
        Granule name for error messages.

    Returns
    -------
    ndarray of uint8, shape (n_photons,)

    Raises
    ------
    ResourceError
        If a negative segment count is found, or a flag given to a photon is outside 0..4
        (SlideRule: "invalid atl08 classification"). Flags of unmatched rows are not checked.
    """
    row = atl08_rows(segment_id, segment_ph_cnt, n_photons, ph_segment_id, classed_pc_indx, granule)
    flags = np.asarray(classed_pc_flag)
    if len(flags) != len(np.asarray(ph_segment_id)):
        raise ResourceError(granule, "ATL08 signal_photons arrays differ in length")
    return classes_of_rows(row, flags, granule)


def atl08_rows(segment_id: np.ndarray, segment_ph_cnt: np.ndarray, n_photons: int,
               ph_segment_id: np.ndarray, classed_pc_indx: np.ndarray, granule: str = "") -> np.ndarray:
    """ATL08 ``signal_photons`` row (file order) of every ATL03 photon, -1 where none matches.

    The matching rule is :func:`atl08_classes`'s; arguments as there.
    """
    counts = _segment_counts(segment_ph_cnt, granule)
    seg_of_ph = np.repeat(np.asarray(segment_id, dtype=np.int64), counts)[:n_photons]
    n_cov = len(seg_of_ph)
    starts = np.repeat(np.cumsum(counts) - counts, counts)[:n_cov]
    index_in_seg = np.arange(1, n_cov + 1, dtype=np.int64) - starts
    q = _key(seg_of_ph, index_in_seg)

    seg08 = np.asarray(ph_segment_id, dtype=np.int64)
    idx08 = np.asarray(classed_pc_indx, dtype=np.int64)
    if len(seg08) != len(idx08):
        raise ResourceError(granule, "ATL08 signal_photons arrays differ in length")
    key08 = _key(seg08, idx08)
    order = None
    if np.any(key08[1:] < key08[:-1]):
        order = np.argsort(key08, kind="stable")
        key08 = key08[order]

    row = _merge_rows(q, key08)
    if order is not None:
        row = np.where(row >= 0, order[np.maximum(row, 0)], -1)
    out = np.full(n_photons, -1, dtype=np.int64)
    out[:n_cov] = row
    return out


def classes_of_rows(row: np.ndarray, classed_pc_flag: np.ndarray, granule: str = "") -> np.ndarray:
    """Class (0-4) of every photon from its ATL08 row (:func:`atl08_rows`); 4 where none.

    Raises
    ------
    ResourceError
        If a flag given to a photon is outside 0..4 ("invalid atl08 classification").
    """
    out = np.full(len(row), ATL08_UNCLASSIFIED, dtype=np.uint8)
    matched = row >= 0
    assigned = np.asarray(classed_pc_flag)[row[matched]]
    if assigned.size and (assigned.min() < 0 or assigned.max() > ATL08_UNCLASSIFIED):
        bad = assigned[(assigned < 0) | (assigned > ATL08_UNCLASSIFIED)][0]
        raise ResourceError(granule, f"invalid atl08 classification: {int(bad)}")
    out[matched] = assigned
    return out


def phoreal_inputs(row: np.ndarray, segment_id: np.ndarray, segment_ph_cnt: np.ndarray,
                   atl08: dict[str, np.ndarray | None], granule: str = "") -> dict[str, np.ndarray]:
    """PhoREAL's per-photon ATL08 values: ``relief`` (``ph_h``), ``landcover``, ``snowcover``.

    A classified photon takes ``ph_h`` of its ATL08 row and the cover flags of the land segment
    whose ``segment_id_beg..segment_id_end`` holds its ATL03 segment. SlideRule takes the last land
    segment starting at or before the photon's segment and never checks the end, so photons in a
    gap between land segments (or past the last) get the previous segment's flags; here they get
    255 like unclassified photons (docs/decisions.md, PhoREAL).

    Parameters
    ----------
    row : ndarray of int64, shape (N,)
        :func:`atl08_rows` of the beam's photons.
    segment_id, segment_ph_cnt : ndarray, shape (M,)
        The region-trimmed ATL03 segments.
    atl08 : dict
        ``ph_h`` (K,) and the land segments' ``segment_id_beg``, ``segment_id_end``,
        ``segment_landcover``, ``segment_snowcover`` (S,) of the beam (None: dataset missing).
    granule : str
        For error messages.
    """
    missing = [name for name, value in atl08.items() if value is None]
    if missing:
        raise ResourceError(granule, f"PhoREAL needs ATL08 {', '.join(missing)}, missing from the ATL08 granule")
    n = len(row)
    matched = row >= 0
    ph_h = np.asarray(atl08["ph_h"], dtype=np.float32)
    lengths = {len(np.asarray(atl08[f"segment_{k}"])) for k in ("id_beg", "id_end", "landcover", "snowcover")}
    if (matched.any() and row.max() >= len(ph_h)) or len(lengths) != 1:
        raise ResourceError(granule, "ATL08 signal_photons/ph_h or the land_segments arrays differ in length")
    relief = np.zeros(n, dtype=np.float32)
    relief[matched] = ph_h[row[matched]]
    if not np.isfinite(relief).all():
        raise ResourceError(granule, "ATL08 signal_photons/ph_h is not finite for a classified photon: "
                                     "the file is corrupt or mis-decoded")
    counts = _segment_counts(segment_ph_cnt, granule)
    seg_of_ph = np.repeat(np.asarray(segment_id, dtype=np.int64), counts)[:n]
    land = land_segment_index(seg_of_ph, np.asarray(atl08["segment_id_beg"], dtype=np.int64),
                              np.asarray(atl08["segment_id_end"], dtype=np.int64), None)
    land = np.concatenate((land, np.full(n - len(land), -1, dtype=np.int64)))
    covered = matched & (land >= 0)
    out = {"relief": relief}
    for name in ("landcover", "snowcover"):
        flags = np.full(n, INVALID_FLAG, dtype=np.uint8)
        flags[covered] = np.asarray(atl08[f"segment_{name}"])[land[covered]].astype(np.uint8)
        out[name] = flags
    return out


def _segment_counts(segment_ph_cnt: np.ndarray, granule: str) -> np.ndarray:
    counts = np.asarray(segment_ph_cnt, dtype=np.int64)
    if np.any(counts < 0):
        raise ResourceError(granule, f"negative segment_ph_cnt {int(counts.min())}")
    return counts


def _key(seg: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Order-preserving int64 key of (segment id, index) pairs of int32 values."""
    for a in (seg, idx):
        if a.size and (a.min() < _I32_MIN or a.max() > _I32_MAX):
            raise ValueError("segment ids and photon indices must fit in int32")
    return (seg << 32) + (idx - _I32_MIN)


def _merge_rows(q: np.ndarray, key08: np.ndarray) -> np.ndarray:
    """ATL08 row matched by each ATL03 key in SlideRule's merge, or -1 (``key08`` sorted).

    The merge's pointer before photon i is ``max(pointer after i-1, lower_bound(q_i))`` and a
    photon matches iff that pointer is inside the block of rows equal to ``q_i``. While the
    ATL03 keys increase strictly the pointer is simply ``lower_bound(q_i)``; only after a key
    that does not increase (a segment id that repeats or goes back) can the carried pointer be
    ahead, and that is resolved run by run with binary searches.
    """
    lo = np.searchsorted(key08, q, side="left")
    hi = np.searchsorted(key08, q, side="right")
    row = np.where(lo < hi, lo, -1)
    breaks = np.flatnonzero(q[1:] <= q[:-1]) + 1
    if breaks.size == 0:
        return row
    bounds = np.concatenate(([0], breaks, [len(q)]))
    pointer = 0
    for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        i = s
        while i < e:
            # photons whose key block ends at or before the pointer cannot match
            j = i + int(np.searchsorted(hi[i:e], pointer, side="right"))
            row[i:j] = -1
            if j >= e:
                break
            if lo[j] >= pointer:  # the pointer caught up: plain merge to the end of the run
                pointer = int(lo[e - 1]) + int(lo[e - 1] < hi[e - 1])
                break
            row[j] = pointer      # a duplicate of q_j is still ahead of the pointer
            pointer += 1
            i = j + 1
    return row
