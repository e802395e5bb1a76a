"""YAPC photon scores (SPEC §4.4): version 3, the legacy versions 1/2, and ATL03's own weights.

Version 3 reproduces SlideRule's ``YapcScore::yapcV3`` bit for bit, including its float
arithmetic: along-track distances are float64 (``segment_dist_x + dist_ph_along``), height
differences are float32 (C++ ``abs(float - float)``), weights are float64 sums of the sorted
proximities, smallest first.

The neighbour scan is vectorised over photons and over neighbour offsets ``d``: for a chunk of
photons, offset ``d`` pairs every photon ``i`` with ``i - d`` (backward) and ``i + d`` (forward)
(each pair's dx and p are computed once and serve both directions), and a per-photon "still
scanning" mask per direction carries SlideRule's stop rule along ``d``. Proximities go into an
``(n_chunk, 2 * n_offsets)`` float32 matrix padded with +inf, from which the smallest ``knn``
per photon come out of one ``np.partition``. When only a few photons of a chunk are still
scanning (out-of-order photons, long tails) or the matrix is full, the scan continues for those
photons alone and keeps their proximities as (row, value) pairs, pruned to the most any photon
can use. Memory stays below ~400 MB per chunk (typically ~60 MB); a strong beam runs at about
0.6 M photons/s on one core.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..granules.beam import Beam
from ..request.errors import ParameterError, ResourceError
from ..request.params import Yapc

V2_MAX_KNN = 25
V2_MAX_HSPREAD = 15000.0
V2_HSPREAD_BINSIZE = 1.0

_CHUNK = 16384             # photons per chunk
_MAX_DENSE = 1024          # offsets per direction in the dense matrix (<= 128 MiB per chunk)
_SPARSE_BELOW = 1 / 16     # switch to the per-photon scan below this fraction still scanning
_MAX_PAIRS = 1 << 22       # pending (row, p) pairs before they are pruned
SEGMENT = 20.0             # nominal segment length (m)


@dataclass(frozen=True)
class _Window:
    hwx: float             # half window along track (m)
    hwz: float             # half window in height (m)
    stop: float            # a direction's scan ends at dx >= stop
    p_max: np.float32      # float32 p <= p_max  <=>  float64(p) <= hwz
    min_knn: int
    cap: int               # no photon can use more than this many neighbours


# ---------------------------------------------------------------------- version 3
def yapc_v3(segment_dist_x: np.ndarray, segment_ph_cnt: np.ndarray, dist_ph_along: np.ndarray,
            h_ph: np.ndarray, *, win_x: float, win_h: float, min_knn: int,
            chunk: int = _CHUNK) -> np.ndarray:
    """YAPC version 3 scores of every photon of a beam (SPEC §4.4).

    Parameters
    ----------
    segment_dist_x : ndarray of float64, shape (M,)
        Along-track distance of each segment's start (m).
    segment_ph_cnt : ndarray of int32, shape (M,)
        Photons per segment; photon order is segment order.
    dist_ph_along : ndarray of float32, shape (N,)
        Photon distance from the start of its segment (m).
    h_ph : ndarray of float32, shape (N,)
        Photon heights (m).
    win_x, win_h : float
        Full window sizes along track and in height (m); ``win_h > 0``.
    min_knn : int
        Minimum number of nearest neighbours (>= 1).
    chunk : int
        Photons processed together (memory ~ ``chunk`` x offsets x 4 bytes).

    Returns
    -------
    ndarray of uint8, shape (N,)
        Scores 0..255. Photons past ``sum(segment_ph_cnt)`` (not covered by a segment) are 0
        and are nobody's neighbour.
    """
    if not win_h > 0 or min_knn < 1:
        raise ValueError(f"yapc v3 needs win_h > 0 and min_knn >= 1, got {win_h}, {min_knn}")
    counts = _counts(segment_ph_cnt)
    seg = np.repeat(np.arange(len(counts)), counts)[: len(h_ph)]
    n_cov = len(seg)
    x = np.asarray(segment_dist_x, dtype=np.float64)[seg] + \
        np.asarray(dist_ph_along[:n_cov], dtype=np.float32).astype(np.float64)
    h = np.asarray(h_ph[:n_cov], dtype=np.float32)
    win = _window(win_x, win_h, min_knn, n_cov)

    knn = np.empty(n_cov, dtype=np.int64)
    weight = np.empty(n_cov, dtype=np.float64)
    for a in range(0, n_cov, chunk):
        b = min(a + chunk, n_cov)
        knn[a:b], weight[a:b] = _chunk_weights(x, h, a, b, win)

    k_seg = np.full(len(counts), min_knn, dtype=np.int64)
    np.maximum.at(k_seg, seg, knn)
    score = np.zeros(len(h_ph), dtype=np.uint8)
    # SlideRule: Wt = w / (hWZ * max_knn); (uint8_t)MIN(Wt * 255, 255)
    wt = weight / (win.hwz * k_seg[seg].astype(np.float64))
    score[:n_cov] = np.minimum(wt * 255.0, 255.0).astype(np.uint8)
    return score


def _window(win_x: float, win_h: float, min_knn: int, n_cov: int) -> _Window:
    hwx, hwz = float(win_x) / 2.0, float(win_h) / 2.0
    p_max = np.float32(min(hwz, float(np.finfo(np.float32).max)))
    if float(p_max) > hwz:
        p_max = np.nextafter(p_max, np.float32(-np.inf))
    cap = max(int(min_knn), math.isqrt(max(n_cov - 1, 0)))
    return _Window(hwx, hwz, hwx + 1.0, p_max, int(min_knn), cap)


def _chunk_weights(x: np.ndarray, h: np.ndarray, a: int, b: int,
                   win: _Window) -> tuple[np.ndarray, np.ndarray]:
    """knn and weight sum of photons ``a..b-1``."""
    scan = _DenseScan(x, h, a, b, win)
    scan.run()
    pairs = _Pairs(b - a, win.cap)
    for step, alive in ((-1, scan.back), (1, scan.fwd)):
        _sparse_scan(x, h, a, np.flatnonzero(alive) + a, scan.d, step, win, pairs, scan.n)

    n = scan.n
    knn = np.maximum(np.floor(np.sqrt(n)).astype(np.int64), win.min_knn)
    take = np.minimum(knn, n)
    dense = scan.matrix()
    sparse_rows = pairs.rows()
    weight = _sum_smallest_dense(dense, np.where(sparse_rows, 0, take), win.hwz)
    if sparse_rows.any():
        idx = np.flatnonzero(sparse_rows)
        pairs.add_dense(dense, idx)
        weight[idx] = pairs.sum_smallest(idx, take[idx], win.hwz)
    return knn, weight


class _DenseScan:
    """Offsets d = 1, 2, ... for a whole chunk at once, while most of it is still scanning.

    At offset d the pairs (l, l + d) serve both directions: photon l + d looks back at l and
    photon l looks forward at l + d, with the same dx and p. Each direction keeps its own
    "still scanning" mask and adds one float32 column (+inf = not a neighbour) per offset.
    """

    def __init__(self, x: np.ndarray, h: np.ndarray, a: int, b: int, win: _Window):
        self.x, self.h, self.a, self.b, self.win = x, h, a, b, win
        size = b - a
        self.back = np.ones(size, dtype=bool)
        self.fwd = np.ones(size, dtype=bool)
        self.n = np.zeros(size, dtype=np.int64)
        self.mat = np.full((size, 256), np.inf, dtype=np.float32)
        self.cols = 0
        self.d = 1

    def run(self) -> None:
        a, b, size, n_cov = self.a, self.b, self.b - self.a, len(self.x)
        while self.d <= _MAX_DENSE:
            d = self.d
            self.back[: max(min(d - a, size), 0)] = False       # i - d < 0: scan over
            self.fwd[max(min(n_cov - d - a, size), 0):] = False  # i + d >= N: scan over
            n_alive = np.count_nonzero(self.back) + np.count_nonzero(self.fwd)
            if n_alive == 0 or n_alive < _SPARSE_BELOW * 2 * size:
                return
            lo, hi = max(a - d, 0), min(b, n_cov - d)
            dx = self.x[lo + d:hi + d] - self.x[lo:hi]
            p = np.abs(self.h[lo + d:hi + d] - self.h[lo:hi])  # float32: C++ abs(float - float)
            ok = (dx <= self.win.hwx) & (p <= self.win.p_max)
            go = ~(dx >= self.win.stop)  # the scan stops *after* the first dx >= hWX + 1
            # backward: row i = l + d for l in [max(a - d, lo), b - d)
            self._column(self.back, max(a - d, lo), min(b - d, hi), lo, d - a, ok, go, p)
            # forward: row i = l for l in [max(a, lo), min(b, hi))
            self._column(self.fwd, max(a, lo), min(b, hi), lo, -a, ok, go, p)
            self.d += 1

    def _column(self, alive: np.ndarray, l0: int, l1: int, lo: int, shift: int,
                ok: np.ndarray, go: np.ndarray, p: np.ndarray) -> None:
        """Add pairs l0..l1-1 (rows l + shift) for one direction."""
        if l1 <= l0 or not alive.any():
            return
        pair, rows = slice(l0 - lo, l1 - lo), slice(l0 + shift, l1 + shift)
        inside = alive[rows] & ok[pair]
        if self.cols == self.mat.shape[1]:
            grown = np.full((self.mat.shape[0], 2 * self.cols), np.inf, dtype=np.float32)
            grown[:, : self.cols] = self.mat
            self.mat = grown
        np.copyto(self.mat[rows, self.cols], p[pair], where=inside)
        self.cols += 1
        self.n[rows] += inside
        alive[rows] &= go[pair]

    def matrix(self) -> np.ndarray:
        return self.mat[:, : self.cols]


def _sparse_scan(x: np.ndarray, h: np.ndarray, a: int, rows: np.ndarray, d: int, step: int,
                 win: _Window, pairs: _Pairs, n: np.ndarray) -> None:
    """Continue the scan from offset ``d`` for the photons ``rows`` only."""
    n_cov = len(x)
    while rows.size:
        j = rows + step * d
        ok = (j >= 0) & (j < n_cov)
        rows, j = rows[ok], j[ok]
        dx = x[rows] - x[j] if step < 0 else x[j] - x[rows]
        p = np.abs(h[rows] - h[j])
        inside = (dx <= win.hwx) & (p <= win.p_max)
        if inside.any():
            local = rows[inside] - a
            pairs.add(local, p[inside])
            n[local] += 1                 # rows are unique: plain fancy += is exact
        rows = rows[~(dx >= win.stop)]
        d += 1


def _sum_smallest_dense(mat: np.ndarray, take: np.ndarray, hwz: float) -> np.ndarray:
    """Per row, sum of ``hwz - p`` over the ``take`` smallest p, added smallest first."""
    weight = np.zeros(mat.shape[0], dtype=np.float64)
    kmax = int(take.max()) if take.size else 0
    if kmax == 0:
        return weight
    if kmax < mat.shape[1]:
        mat = np.partition(mat, kmax - 1, axis=1)[:, :kmax]
    smallest = np.sort(mat, axis=1)
    for k in range(kmax):             # sequential, in SlideRule's order (not pairwise)
        weight += np.where(k < take, hwz - smallest[:, k].astype(np.float64), 0.0)
    return weight


class _Pairs:
    """(row, p) proximities of the photons scanned one by one, pruned to ``cap`` per row."""

    def __init__(self, size: int, cap: int):
        self.size = size
        self.cap = cap
        self.parts: list[np.ndarray] = []
        self.count = 0
        self.limit = _MAX_PAIRS

    def add(self, rows: np.ndarray, p: np.ndarray) -> None:
        # p >= 0, so its float32 bit pattern sorts like its value: one uint64 sort orders by (row, p)
        key = (rows.astype(np.uint64) << np.uint64(32)) | p.view(np.uint32).astype(np.uint64)
        self.parts.append(key)
        self.count += len(key)
        if self.count > self.limit:
            self._prune()

    def add_dense(self, mat: np.ndarray, idx: np.ndarray) -> None:
        """Add the finite entries of rows ``idx`` of the dense matrix."""
        sub = mat[idx]
        r, c = np.nonzero(np.isfinite(sub))
        self.add(idx[r], sub[r, c])

    def rows(self) -> np.ndarray:
        """Mask of the chunk's rows that have pairs."""
        mask = np.zeros(self.size, dtype=bool)
        for key in self.parts:
            mask[(key >> np.uint64(32)).astype(np.int64)] = True
        return mask

    def sum_smallest(self, idx: np.ndarray, take: np.ndarray, hwz: float) -> np.ndarray:
        """For rows ``idx`` (sorted), the sum of ``hwz - p`` over the ``take`` smallest p."""
        key = self._sorted()
        row = (key >> np.uint64(32)).astype(np.int64)
        p = (key & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.float32)
        first = np.searchsorted(row, idx)
        weight = np.zeros(len(idx), dtype=np.float64)
        for k in range(int(take.max()) if take.size else 0):
            sel = k < take
            weight[sel] += hwz - p[first[sel] + k].astype(np.float64)
        return weight

    def _sorted(self) -> np.ndarray:
        key = np.concatenate(self.parts) if self.parts else np.empty(0, dtype=np.uint64)
        key.sort()
        self.parts = [key]
        return key

    def _prune(self) -> None:
        """Keep the ``cap`` smallest p of each row: no photon can use more neighbours."""
        key = self._sorted()
        row = (key >> np.uint64(32)).astype(np.int64)
        rank = np.arange(len(key)) - np.searchsorted(row, row)
        self.parts = [key[rank < self.cap]]
        self.count = len(self.parts[0])
        self.limit = max(_MAX_PAIRS, 2 * self.count)


def _counts(segment_ph_cnt: np.ndarray) -> np.ndarray:
    counts = np.asarray(segment_ph_cnt, dtype=np.int64)
    if np.any(counts < 0):
        raise ValueError(f"negative segment_ph_cnt {int(counts.min())}")
    return counts


# ---------------------------------------------------------------------- versions 1 and 2
def yapc_v2(segment_ph_cnt: np.ndarray, dist_ph_along: np.ndarray, h_ph: np.ndarray, *,
            knn: int, win_x: float, win_h: float, min_photons: int, first: int = 0,
            segments: tuple[int, int] | None = None, n_photons: int | None = None,
            head: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Legacy YAPC versions 1/2 (SPEC §4.4), as SlideRule's ``YapcScore::yapcV2``.

    Per segment s with N photons: ``knn`` (or ``max(1, int((sqrt(N) + 0.5) / 2))`` when 0),
    capped at 25; the segment is skipped (scores 0) when ``N <= knn`` or ``N < min_photons``.
    SlideRule's quirks are kept: the height/distance spread test looks at the beam's first N
    photons (not the segment's), the neighbour pool ends ``segment_ph_cnt[0]`` photons before
    the end of segment s+1, and along-track distances are the raw segment-relative
    ``dist_ph_along``. The sum of the kept proximities is added largest first, where SlideRule
    adds them in the order of its replacement buffer; the two can differ in the last bit, which
    changes a score only when ``sum / half_win_h * 255`` lands within ~1e-13 of an integer.

    Parameters
    ----------
    segment_ph_cnt : ndarray of int32, shape (M,)
        Photons per segment of the whole beam.
    dist_ph_along, h_ph : ndarray of float32, shape (N,)
        The beam's photons, or a window of them: photons ``first .. first + N - 1``.
    knn : int
        Nearest neighbours (0 = from the segment's photon count).
    win_x, win_h : float
        Full windows (m); ``win_h == 0`` derives the height window from the photons.
    min_photons : int
        The request's ``cnt``: SlideRule skips segments with fewer photons.
    first : int
        Index in the beam of the first photon given.
    segments : (int, int), optional
        Score only segments ``s0 .. s1 - 1``; the photons given must then cover segments
        ``s0 - 1 .. s1`` (the neighbour pools). Default: every segment (the whole beam given).
    n_photons : int, optional
        Photons in the beam (default ``first + N``).
    head : (ndarray, ndarray), optional
        ``dist_ph_along`` and ``h_ph`` of the beam's first ``max(segment_ph_cnt)`` photons (the
        spread test looks there); default: the photons given (``first`` must be 0).

    Returns
    -------
    ndarray of uint8, shape (N,)
        Scores of the photons given (0 outside the scored segments).
    """
    counts = _counts(segment_ph_cnt)
    n_ph = first + len(h_ph) if n_photons is None else n_photons
    xs = np.asarray(dist_ph_along, dtype=np.float32)
    hs = np.asarray(h_ph, dtype=np.float32)
    score = np.zeros(len(hs), dtype=np.uint8)
    if n_ph == 0 or len(counts) == 0:
        return score
    ends = np.minimum(np.cumsum(counts), n_ph)
    starts = np.minimum(np.cumsum(counts) - counts, n_ph)
    head_x, head_h = (xs, hs) if head is None else head
    h64 = np.asarray(head_h, dtype=np.float32).astype(np.float64)
    x64 = np.asarray(head_x, dtype=np.float32).astype(np.float64)
    spans = (np.minimum.accumulate(h64), np.maximum.accumulate(h64),
             np.minimum.accumulate(x64), np.maximum.accumulate(x64))
    last = len(counts) - 1
    s0, s1 = segments if segments is not None else (0, len(counts))
    for s in range(s0, s1):
        n = int(counts[s])
        k = _v2_knn(knn, n)
        if n <= k or n < min_photons:
            continue
        half_win_h = _v2_half_win_h(h64, spans, min(n, n_ph), k, win_h)
        if half_win_h is None:
            continue
        pool_lo = int(starts[max(s - 1, 0)])
        pool_hi = max(int(ends[min(s + 1, last)]) - int(counts[0]), 0)  # SlideRule's off-by-one-segment
        _v2_score_targets(xs, hs, int(starts[s]) - first, int(ends[s]) - first, pool_lo - first,
                          min(pool_hi, n_ph) - first, k, win_x / 2.0, half_win_h, score)
    return score


def _v2_knn(knn: int, n: int) -> int:
    k = knn if knn != 0 else max(1, int((math.sqrt(n) + 0.5) / 2))
    return min(k, V2_MAX_KNN)


def _v2_half_win_h(h64: np.ndarray, spans: tuple[np.ndarray, ...], n: int, k: int,
                   win_h: float) -> float | None:
    """Half height window, or None when SlideRule rejects the spread (of photons 0..n-1)."""
    min_h, max_h, min_x, max_x = (a[n - 1] for a in spans)
    hspread, xspread = max_h - min_h, max_x - min_x
    if hspread <= 0.0 or hspread > V2_MAX_HSPREAD or xspread <= 0.0:
        return None
    if win_h != 0.0:
        return win_h / 2.0
    nonzero_bins = len(np.unique(((h64[:n] - min_h) / V2_HSPREAD_BINSIZE).astype(np.int64)))
    h_span = (nonzero_bins * V2_HSPREAD_BINSIZE) / float(n) * float(k)
    return h_span / 2.0


def _v2_score_targets(xs: np.ndarray, hs: np.ndarray, c0: int, c1: int, b0: int, b1: int,
                      k: int, half_win_x: float, half_win_h: float, score: np.ndarray) -> None:
    """Scores of photons c0..c1-1 against the pool b0..b1-1 (row blocks bound the memory)."""
    pool = np.arange(b0, max(b0, b1))
    block = max(1, (1 << 22) // max(len(pool), 1))
    for t0 in range(c0, c1, block):
        targets = np.arange(t0, min(t0 + block, c1))
        if len(pool) == 0:
            score[targets] = 0
            continue
        dx = np.abs(xs[pool][None, :] - xs[targets][:, None]).astype(np.float64)
        dh = np.abs(hs[pool][None, :] - hs[targets][:, None]).astype(np.float64)
        prox = half_win_h - dh
        skip = (dx > half_win_x) | (pool[None, :] == targets[:, None])
        prox[skip] = -np.inf
        if prox.shape[1] > k:
            prox = np.partition(prox, prox.shape[1] - k, axis=1)[:, -k:]
        top = -np.sort(-prox, axis=1)
        total = np.where(top > 0.0, top, 0.0).sum(axis=1) / float(k)
        score[targets] = ((total / half_win_h) * 255.0).astype(np.uint8)


# ---------------------------------------------------------------------- windows of a beam
def context_segments(yapc: Yapc, segment_dist_x: np.ndarray, s0: int, s1: int,
                     widen: int = 1) -> tuple[int, int]:
    """Segments to read around segments ``s0 .. s1 - 1`` so that their photons' scores are exact.

    Version 3 needs the photons within half a window (plus 1 m) along track on each side (more
    when photons are far out of order: :func:`yapc_window` says so and ``widen`` doubles the
    margin); versions 1 and 2 need one segment on each side (the neighbour pools).
    """
    m = len(segment_dist_x)
    if yapc.version in (1, 2):
        return max(0, s0 - 1), min(m, s1 + 1)
    margin = widen * (yapc.win_x / 2.0 + 1.0 + 2.0 * SEGMENT) + SEGMENT
    lo = int(np.searchsorted(segment_dist_x, segment_dist_x[s0] - margin, side="right")) - 1
    hi = int(np.searchsorted(segment_dist_x, segment_dist_x[s1 - 1] + margin, side="left")) + 1
    return max(0, min(lo, s0)), min(m, max(hi, s1))


def yapc_window(yapc: Yapc, segment_dist_x: np.ndarray, segment_ph_cnt: np.ndarray, first: int,
                dist_ph_along: np.ndarray, h_ph: np.ndarray, a: int, b: int, *, min_photons: int,
                head: Callable[[int], tuple[np.ndarray, np.ndarray]]) -> np.ndarray | None:
    """YAPC scores of photons ``a .. b - 1`` of a beam, from a window of its photons.

    Parameters
    ----------
    yapc : Yapc
        Version 1, 2 or 3.
    segment_dist_x, segment_ph_cnt : ndarray, shape (M,)
        The whole beam's segments.
    first : int
        Index in the beam of the window's first photon, the first photon of a segment; the window
        ends at the end of a segment (:func:`context_segments` gives such windows).
    dist_ph_along, h_ph : ndarray
        The window's photons.
    a, b : int
        The photons (indices in the beam) whose scores are wanted, inside the window.
    min_photons : int
        The request's ``cnt`` (versions 1 and 2).
    head : callable
        ``head(n)`` gives ``(dist_ph_along, h_ph)`` of the beam's first ``n`` photons (versions 1, 2).

    Returns
    -------
    ndarray or None
        Scores of photons ``a .. b - 1``, exactly those of the whole beam; None when the window
        is too narrow for that (photons far out of order): widen it and call again.
    """
    counts = _counts(segment_ph_cnt)
    ends = np.cumsum(counts)
    n = len(h_ph)
    w0 = int(np.searchsorted(ends, first, side="right"))
    w1 = int(np.searchsorted(ends, first + n - 1, side="right")) + 1 if n else w0
    s0 = int(np.searchsorted(ends, a, side="right"))
    s1 = int(np.searchsorted(ends, b - 1, side="right")) + 1 if b > a else s0
    if yapc.version == 3:
        scores = yapc_v3(segment_dist_x[w0:w1], counts[w0:w1], dist_ph_along, h_ph, win_x=yapc.win_x,
                         win_h=yapc.win_h, min_knn=yapc.min_knn)
        i0 = (int(ends[s0 - 1]) if s0 else 0) - first
        i1 = int(ends[s1 - 1]) - first
        if not _scans_inside(segment_dist_x[w0:w1], counts[w0:w1], dist_ph_along, i0, i1, yapc.win_x / 2.0 + 1.0,
                             first == 0, first + n >= int(ends[-1])):
            return None
    else:
        n_head = min(int(counts.max()), int(ends[-1]))
        scores = yapc_v2(counts, dist_ph_along, h_ph, knn=yapc.knn, win_x=yapc.win_x, win_h=yapc.win_h,
                         min_photons=min_photons, first=first, segments=(s0, s1), n_photons=int(ends[-1]),
                         head=head(n_head))
    return scores[a - first:b - first]


def _scans_inside(sdx: np.ndarray, counts: np.ndarray, dpa: np.ndarray, i0: int, i1: int, stop: float,
                  at_start: bool, at_end: bool) -> bool:
    """Whether every version 3 neighbour scan of photons i0..i1-1 ends inside the window.

    A scan ends after the first photon at least ``stop`` metres away; one such photon before the
    leftmost photon of i0..i1-1 (and one after the rightmost) stops every scan in time.
    """
    seg = np.repeat(np.arange(len(counts)), counts)
    x = np.asarray(sdx, dtype=np.float64)[seg] + np.asarray(dpa, dtype=np.float32).astype(np.float64)
    inner = x[i0:i1]
    if inner.size == 0:
        return True
    back = at_start or bool(np.any(inner.min() - x[:i0] >= stop))
    forward = at_end or bool(np.any(x[i1:] - inner.max() >= stop))
    return back and forward


# ---------------------------------------------------------------------- dispatch
def yapc_scores(beam: Beam, yapc: Yapc, *, min_photons: int = 10) -> np.ndarray:
    """YAPC scores of every photon of a region-trimmed beam, by ``yapc.version``.

    Parameters
    ----------
    beam : Beam
        Region-trimmed beam (all photons, before any other selection).
    yapc : Yapc
        The request's YAPC settings.
    min_photons : int
        The request's ``cnt``; only versions 1 and 2 use it (segment skip rule).

    Returns
    -------
    ndarray of uint8 (versions 1-3, release 006 weights) or uint16 (release >= 007 weights),
    shape (N,)

    Raises
    ------
    ResourceError
        Version 0 on a beam without ``heights/weight_ph``.
    ParameterError
        Unknown version.
    """
    if yapc.version == 3:
        return yapc_v3(beam.segment_dist_x, beam.segment_ph_cnt, beam.dist_ph_along, beam.h_ph,
                       win_x=yapc.win_x, win_h=yapc.win_h, min_knn=yapc.min_knn)
    if yapc.version in (1, 2):
        return yapc_v2(beam.segment_ph_cnt, beam.dist_ph_along, beam.h_ph, knn=yapc.knn,
                       win_x=yapc.win_x, win_h=yapc.win_h, min_photons=min_photons)
    if yapc.version == 0:
        if beam.weight_ph is None:
            raise ResourceError(beam.granule, "yapc version 0 needs heights/weight_ph "
                                              "(ATL03 release 006 or later)")
        return np.asarray(beam.weight_ph)
    raise ParameterError("yapc.version", f"must be 0..3, got {yapc.version}")


__all__ = ["yapc_scores", "yapc_v2", "yapc_v3"]
