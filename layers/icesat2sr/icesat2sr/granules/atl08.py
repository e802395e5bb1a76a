"""The ATL08 companion of an ATL03 granule: reading its photon classes and joining them to ATL03.

ATL08 lists classified photons by (ATL03 segment id, 1-based index within the segment); the join
(SPEC §2) gives every ATL03 photon of a region-trimmed beam its class, 4 (unclassified) when ATL08
has none.
"""

from __future__ import annotations

import numpy as np

from ..request.errors import ResourceError
from .assets import Asset
from .h5read import Read

ATL08_UNCLASSIFIED = 4       # classes 0 noise, 1 ground, 2 canopy, 3 top of canopy
_I32_MIN, _I32_MAX = -(2 ** 31), 2 ** 31 - 1


_FIELDS = ("ph_segment_id", "classed_pc_indx", "classed_pc_flag")


class Atl08Classes:
    """The ATL08 companion of one request's beams, joined to ATL03 photons one window at a time.

    Opening reads each beam's ``signal_photons/ph_segment_id`` once to find, for every ATL03
    segment of the beam's run, its block of ATL08 rows; :meth:`classes` then reads only the rows
    of a window's segments. That is the whole-beam join restricted to the window whenever the
    run's segment ids increase and ATL08 is sorted by segment (always, in released granules);
    otherwise the beam is joined whole once, as SlideRule's merge needs (see :func:`atl08_classes`).

    Parameters
    ----------
    asset : Asset
    atl08_name : str
        The ATL08 granule.
    runs : dict
        Beam -> ATL03 ``segment_id`` and ``segment_ph_cnt`` of its region-trimmed run.
    resource : str
        The ATL03 granule (for error messages).
    """

    def __init__(self, asset: Asset, atl08_name: str, runs: dict[str, tuple[np.ndarray, np.ndarray]],
                 resource: str):
        self.resource = resource
        self.name = atl08_name
        try:
            self._h5 = asset.open(atl08_name)
            present = self._h5.groups("/")
            index = self._h5.read([Read(f"/{b}/signal_photons/ph_segment_id") for b in runs if b in present])
        except ResourceError as exc:
            self.close()
            raise self._error(exc) from None
        self._blocks: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
        self._whole: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        try:
            for b, (segment_id, counts) in runs.items():
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
            rows = self._rows(b, 0, len(seg08))
            first = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
            self._whole[b] = (atl08_classes(segment_id, counts, int(first[-1]), *rows, self.resource), first)

    def classes(self, beam: str, segment_id: np.ndarray, counts: np.ndarray, s0: int) -> np.ndarray:
        """ATL08 class (0-4) of every photon of the run's segments ``s0 .. s0 + len(counts) - 1``.

        ``segment_id`` and ``counts`` are those segments' ATL03 ids and photon counts.
        """
        n = int(counts.sum())
        if beam in self._whole:
            classes, first = self._whole[beam]
            return classes[first[s0]:first[s0] + n]
        blocks = self._blocks.get(beam)
        if blocks is None or len(counts) == 0:
            return np.full(n, ATL08_UNCLASSIFIED, dtype=np.uint8)
        lo, hi = int(blocks[0][s0]), int(blocks[1][s0 + len(counts) - 1])
        if hi <= lo:
            return np.full(n, ATL08_UNCLASSIFIED, dtype=np.uint8)
        return atl08_classes(segment_id, counts, n, *self._rows(beam, lo, hi), self.resource)

    def _rows(self, beam: str, lo: int, hi: int) -> list[np.ndarray]:
        paths = [f"/{beam}/signal_photons/{f}" for f in _FIELDS]
        try:
            data = self._h5.read([Read(p, [(lo, hi)]) for p in paths])
        except ResourceError as exc:
            raise self._error(exc) from None
        return [data[p] for p in paths]

    def _error(self, exc: ResourceError) -> ResourceError:
        return ResourceError(self.resource, f"atl08_class needs the ATL08 granule {self.name}: {exc}",
                             ResourceError.RESOURCE_DOES_NOT_EXIST)

    def close(self) -> None:
        """Close the ATL08 granule."""
        h5 = getattr(self, "_h5", None)
        if h5 is not None:
            h5.close()
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
    counts = _segment_counts(segment_ph_cnt, granule)
    seg_of_ph = np.repeat(np.asarray(segment_id, dtype=np.int64), counts)[:n_photons]
    n_cov = len(seg_of_ph)
    starts = np.repeat(np.cumsum(counts) - counts, counts)[:n_cov]
    index_in_seg = np.arange(1, n_cov + 1, dtype=np.int64) - starts
    q = _key(seg_of_ph, index_in_seg)

    seg08 = np.asarray(ph_segment_id, dtype=np.int64)
    idx08 = np.asarray(classed_pc_indx, dtype=np.int64)
    flags = np.asarray(classed_pc_flag)
    if not len(seg08) == len(idx08) == len(flags):
        raise ResourceError(granule, "ATL08 signal_photons arrays differ in length")
    key08 = _key(seg08, idx08)
    if np.any(key08[1:] < key08[:-1]):
        order = np.argsort(key08, kind="stable")
        key08, flags = key08[order], flags[order]

    row = _merge_rows(q, key08)
    out = np.full(n_photons, ATL08_UNCLASSIFIED, dtype=np.uint8)
    matched = row >= 0
    assigned = flags[row[matched]]
    if assigned.size and (assigned.min() < 0 or assigned.max() > ATL08_UNCLASSIFIED):
        bad = assigned[(assigned < 0) | (assigned > ATL08_UNCLASSIFIED)][0]
        raise ResourceError(granule, f"invalid atl08 classification: {int(bad)}")
    out[:n_cov][matched] = assigned
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
