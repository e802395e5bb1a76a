"""The ATL08 companion of an ATL03 granule: reading its photon classes and joining them to ATL03.

ATL08 lists classified photons by (ATL03 segment id, 1-based index within the segment); the join
(SPEC §2) gives every ATL03 photon of a region-trimmed beam its class, 4 (unclassified) when ATL08
has none.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..request.errors import ResourceError
from .ancillary import land_segment_index
from .assets import Asset
from .h5read import Read

ATL08_UNCLASSIFIED = 4       # classes 0 noise, 1 ground, 2 canopy, 3 top of canopy
INVALID_FLAG = 0xFF          # landcover/snowcover of photons without an ATL08 land segment
_I32_MIN, _I32_MAX = -(2 ** 31), 2 ** 31 - 1


def read_classes(asset: Asset, atl08_name: str, beams: Sequence[str], runs: dict, data: dict,
                 resource: str, phoreal: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """ATL08 values of every photon of each beam's run (SPEC §2).

    Returns, per beam, ``{"atl08_class": u1}`` (0-4) and, with ``phoreal``, PhoREAL's inputs:
    ``relief`` (f4, ATL08 ``ph_h``; 0 for unclassified photons), ``landcover`` and ``snowcover``
    (u1, the photon's ATL08 land segment's ``segment_landcover``/``segment_snowcover``; 255 for
    unclassified photons and photons outside every land segment).
    """
    fields = ("ph_segment_id", "classed_pc_indx", "classed_pc_flag") + (("ph_h",) if phoreal else ())
    segment_fields = ("segment_id_beg", "segment_id_end", "segment_landcover", "segment_snowcover")
    try:
        with asset.open(atl08_name) as h5:
            present = h5.groups("/")
            reads = [Read(f"/{b}/signal_photons/{f}") for b in beams if b in present for f in fields]
            if phoreal:
                reads += [Read(f"/{b}/land_segments/{f}") for b in beams if b in present for f in segment_fields]
            atl08 = h5.read(reads)
    except ResourceError as exc:
        stage = "PhoREAL" if phoreal else "atl08_class"
        raise ResourceError(resource, f"{stage} needs the ATL08 granule {atl08_name}: {exc}",
                            ResourceError.RESOURCE_DOES_NOT_EXIST) from None
    out = {}
    for b in beams:
        (_, _), (p0, p1), counts = runs[b]
        seg_id = data[f"/{b}/geolocation/segment_id"]
        n = p1 - p0
        if f"/{b}/signal_photons/ph_segment_id" not in atl08:  # beam absent from ATL08: unclassified
            row = np.full(n, -1, dtype=np.int64)
            flags = np.zeros(0, dtype=np.int8)
        else:
            row = atl08_rows(seg_id, counts, n, atl08[f"/{b}/signal_photons/ph_segment_id"],
                             atl08[f"/{b}/signal_photons/classed_pc_indx"], resource)
            flags = atl08[f"/{b}/signal_photons/classed_pc_flag"]
            if len(flags) != len(atl08[f"/{b}/signal_photons/ph_segment_id"]):
                raise ResourceError(resource, f"ATL08 /{b}/signal_photons arrays differ in length")
        out[b] = {"atl08_class": classes_of_rows(row, flags, resource)}
        if phoreal and not len(flags):   # nothing classified: no relief, no land segment
            out[b].update(relief=np.zeros(n, dtype=np.float32), landcover=np.full(n, INVALID_FLAG, dtype=np.uint8),
                          snowcover=np.full(n, INVALID_FLAG, dtype=np.uint8))
        elif phoreal:
            group = {f: atl08.get(f"/{b}/{g}/{f}") for g, names in (("signal_photons", ("ph_h",)),
                                                                     ("land_segments", segment_fields))
                     for f in names}
            out[b].update(phoreal_inputs(row, seg_id, counts, group, resource))
    return out


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
