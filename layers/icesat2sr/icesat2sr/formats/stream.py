"""Results written as they stream in: in time order, in bounded memory.

A granule's partial results arrive chunk by chunk, beam after beam (``icesat2sr.engine.iter_granule``).
:class:`TimeOrder` releases their rows in the order a stable sort by time of the whole granule
would give (the order of :func:`icesat2sr.formats.frames.frame_columns`, i.e. of a result file
written whole), holding back only the rows a later part could still precede; the rows go to an
:class:`icesat2sr.formats.output.OutputWriter`. :class:`Spill` holds a granule's rows on disk until
the granule is done. :class:`OrderedOutput` puts the two together for any number of granules
arriving interleaved: the file holds each granule's rows in time order, granules in the request's
order, exactly as a file written from whole results (any kind but the x-series).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..science.records import GranuleResult
from .frames import frame_columns

_NEVER = np.iinfo(np.int64).max
BATCH_ROWS = 1 << 16   # rows released and gathered per write (Parquet row groups of a useful size, ~15 MB)


@dataclass
class Rows:
    """Frame rows as numpy arrays: what :func:`icesat2sr.formats.frames.frame_columns` returns."""

    time_ns: np.ndarray
    columns: dict
    lon: np.ndarray
    lat: np.ndarray

    def __len__(self) -> int:
        return len(self.time_ns)

    def take(self, index) -> Rows:
        """The rows at ``index`` (a slice or an index array)."""
        return Rows(self.time_ns[index], {k: (None if v is None else v[index]) for k, v in self.columns.items()},
                    self.lon[index], self.lat[index])

    @classmethod
    def gather(cls, parts: list[Rows], part: np.ndarray, index: np.ndarray) -> Rows:
        """Row ``index[i]`` of ``parts[part[i]]``, for every ``i``."""
        which = [(p, part == p) for p in np.unique(part)]

        def column(values: list[np.ndarray]) -> np.ndarray:
            out = np.empty((len(index), *values[0].shape[1:]), dtype=values[0].dtype)
            for p, mask in which:
                out[mask] = values[p][index[mask]]
            return out

        columns = {k: (None if v is None else column([q.columns[k] for q in parts]))
                   for k, v in parts[0].columns.items()}
        return cls(column([q.time_ns for q in parts]), columns, column([q.lon for q in parts]),
                   column([q.lat for q in parts]))


def result_rows(result: GranuleResult) -> Rows:
    """The frame rows of a (partial) result (atl06, atl03s or atl08)."""
    return Rows(*frame_columns(result))


def frame_rows(result: GranuleResult) -> Rows:
    """Time, track/pair and height (photon ``height``, fitted ``h_mean`` or PhoREAL ``h_canopy``) of
    an x-series (partial) result's rows, for summaries."""
    frame = result.frame
    gt = frame["gt"].astype(np.int64) // 10                  # 1..6: gt1l, gt1r, gt2l, ...
    height = frame[next(h for h in ("h_mean", "h_canopy", "height") if h in frame)]
    columns = {"track": (gt + 1) // 2, "pair": (gt + 1) % 2, "height": height}
    return Rows(frame["time_ns"], columns, frame["longitude"], frame["latitude"])


class TimeOrder:
    """Partial results of one granule in, rows out in the order of a stable sort by time.

    Parameters
    ----------
    beams : int
        Beams of the granule. A part of beam ``b`` comes with a horizon: no later part of that
        beam has a row earlier than it. Rows earlier than every beam's horizon are released,
        sorted by time, ties in beam order then arrival order: exactly the whole granule's rows,
        concatenated beam after beam, stably sorted by time.
    block : int
        Rows per released block.
    """

    def __init__(self, beams: int, block: int = BATCH_ROWS):
        self.block = block
        self.horizon = np.full(max(beams, 1), np.iinfo(np.int64).min, dtype=np.int64)
        self.pending: list[tuple[int, int, Rows]] = []
        self.count = 0

    def push(self, result: GranuleResult, beam: int, horizon_ns: int) -> Iterator[Rows]:
        """Add a part of beam ``beam``; returns the rows that can now be written, in blocks."""
        if result.rows:
            self.pending.append((beam, self.count, result_rows(result)))
            self.count += 1
        self.horizon[beam] = horizon_ns
        return self._release(int(self.horizon.min()))

    def flush(self) -> Iterator[Rows]:
        """The rows still held, in blocks (call once every part has been pushed)."""
        return self._release(_NEVER)

    def _release(self, watermark: int) -> Iterator[Rows]:
        taken, kept = [], []
        for beam, seq, rows in self.pending:
            cut = int(np.searchsorted(rows.time_ns, watermark, side="left")) if watermark < _NEVER else len(rows)
            if cut:
                taken.append((beam, seq, rows.take(slice(0, cut))))
            if cut < len(rows):
                kept.append((beam, seq, rows.take(slice(cut, None))))
        self.pending = kept
        taken.sort(key=lambda item: item[:2])
        return _merged([t[2] for t in taken], self.block)


def _merged(runs: list[Rows], block: int) -> Iterator[Rows]:
    """Rows of runs each sorted by time, as one stable sort by time of their concatenation gives
    them, ``block`` rows at a time: the rows are gathered block by block, never copied whole."""
    if len(runs) == 1:
        for i in range(0, len(runs[0]), block):
            yield runs[0].take(slice(i, i + block))
        return
    if not runs:
        return
    starts = np.cumsum([0] + [len(r) for r in runs])
    order = np.argsort(np.concatenate([r.time_ns for r in runs]), kind="stable")
    for i in range(0, len(order), block):
        index = order[i:i + block]
        run = np.searchsorted(starts, index, side="right") - 1
        yield Rows.gather(runs, run, index - starts[run])
class Spill:
    """Arrow tables held in a file beside a target (an Arrow IPC file) until kept or dropped.

    A granule's streamed rows wait here until the granule is done: a granule that fails midway
    is then left out of the result file, as a granule that fails at once is.
    """

    def __init__(self, beside: str | os.PathLike):
        target = Path(beside)
        directory = target.parent if str(target.parent) else Path(".")
        self.path = directory / f".{target.name}.{uuid.uuid4().hex}.spill"
        self._writer = None

    def add(self, table) -> None:
        """Hold a table (all with the first one's schema)."""
        import pyarrow as pa

        if self._writer is None:
            self._writer = pa.ipc.new_file(str(self.path), table.schema)
        self._writer.write_table(table)

    def tables(self) -> Iterator:
        """The held tables, batch by batch, then the file is removed."""
        import pyarrow as pa

        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        try:
            with pa.memory_map(str(self.path)) as source:
                reader = pa.ipc.open_file(source)
                for i in range(reader.num_record_batches):
                    yield pa.Table.from_batches([reader.get_batch(i)])
        finally:
            self.path.unlink(missing_ok=True)

    def drop(self) -> None:
        """Forget the held tables (quietly: a disk that failed the spill may fail its close too)."""
        try:
            if self._writer is not None:
                with contextlib.suppress(OSError):
                    self._writer.close()
                self._writer = None
        finally:
            self.path.unlink(missing_ok=True)



@dataclass
class _Granule:
    order: TimeOrder | None = None
    spill: Spill | None = None
    rows: int = 0
    blank: GranuleResult | None = None   # a zero-row part: the granule's columns if it gives no row
    ended: bool = False
    failed: bool = False


@dataclass
class OrderedOutput:
    """Partial results of several granules, arriving interleaved, into one results file.

    Parameters
    ----------
    writer : OutputWriter
        The file (its ``finish``/``abort`` stay with the caller).
    granules : sequence of str
        The granules in the file's order.
    atomic : bool
        Every granule's rows wait in a :class:`Spill` until it has ended, so a granule that fails
        midway leaves nothing in the file. Otherwise the first unfinished granule writes straight
        to the file (the caller drops the whole file when a granule fails).
    empty : callable, optional
        ``empty(granule)``: the zero-row result of a granule that gave no row, when none of its
        parts has every column (the columns make the file's schema when no granule gives a row,
        as a file written from whole results has them).
    on_rows : callable, optional
        Called with every :class:`Rows` block as it is released (e.g. a summary).

    Notes
    -----
    Memory: the rows a :class:`TimeOrder` holds back per running granule, plus at most
    :data:`BATCH_ROWS` rows gathered for a write. The rest waits on disk.
    """

    writer: object
    granules: Sequence[str]
    atomic: bool = True
    empty: Callable[[str], GranuleResult] | None = None
    on_rows: Callable[[Rows], None] | None = None
    _state: dict = field(default_factory=dict)
    _next: int = 0
    _batch: list = field(default_factory=list)
    _batched: int = 0

    def part(self, granule: str, result: GranuleResult, beam: int, horizon_ns: int, beams: int) -> None:
        """One partial result of ``granule`` (as :class:`icesat2sr.engine.Part` carries it)."""
        state = self._state.setdefault(granule, _Granule())
        state.order = state.order or TimeOrder(beams)
        if not result.rows and (state.blank is None or state.blank.ancillary is None):
            state.blank = result
        self._emit(granule, state, state.order.push(result, beam, horizon_ns))

    def end(self, granule: str, failed: bool = False) -> int:
        """``granule`` has ended (``failed``: its rows are dropped); returns the rows it gave."""
        state = self._state.setdefault(granule, _Granule())
        state.ended, state.failed = True, failed
        if not failed and state.order is not None:
            self._emit(granule, state, state.order.flush())
        if failed and state.spill is not None:
            state.spill.drop()
            state.spill = None
        self._advance()
        return 0 if failed else state.rows

    def close(self) -> None:
        """Write what is gathered; a granule that has not ended is left out (as a failed one)."""
        for name in self.granules[self._next:]:
            state = self._state.setdefault(name, _Granule())
            if not state.ended:
                self.end(name, failed=True)
        self._advance()
        self.discard(batch=False)   # parts of granules the file does not list
        self._write_batch()

    def discard(self, batch: bool = True) -> None:
        """Drop every held row (the file is being abandoned); ``batch=False`` keeps the gathered rows."""
        for state in self._state.values():
            if state.spill is not None:
                state.spill.drop()
                state.spill = None
        if batch:
            self._batch, self._batched = [], 0

    # ------------------------------------------------------------------ internals
    def _emit(self, granule: str, state: _Granule, blocks: Iterator[Rows]) -> None:
        for rows in blocks:
            self._emit_block(granule, state, rows)

    def _emit_block(self, granule: str, state: _Granule, rows: Rows) -> None:
        state.rows += len(rows)
        if self.on_rows is not None:
            self.on_rows(rows)
        table = self.writer.rows_table(rows.time_ns, rows.columns, rows.lon, rows.lat)
        if not self.atomic and state.spill is None and self._is_next(granule):
            self._add(table)
            return
        if state.spill is None:
            state.spill = Spill(self.writer.path)
        state.spill.add(table)

    def _is_next(self, granule: str) -> bool:
        return self._next < len(self.granules) and self.granules[self._next] == granule

    def _advance(self) -> None:
        """Write out the granules that have ended, in order, up to the first one still running."""
        while self._next < len(self.granules):
            name = self.granules[self._next]
            state = self._state.get(name)
            if state is None or not state.ended:
                return
            if state.spill is not None:
                for table in state.spill.tables():
                    self._add(table)
                state.spill = None
            if not state.failed and not state.rows:   # only its columns: it has no row
                blank = state.blank
                if self.empty is not None and (blank is None or blank.ancillary is None):
                    blank = self.empty(name)
                if blank is not None:
                    self.writer.add(blank)
            state.order, state.blank = None, None
            self._next += 1

    def _add(self, table) -> None:
        self._batch.append(table)
        self._batched += table.num_rows
        if self._batched >= BATCH_ROWS:
            self._write_batch()

    def _write_batch(self) -> None:
        if not self._batch:
            return
        import pyarrow as pa

        batch, self._batch, self._batched = self._batch, [], 0
        self.writer.add_table(batch[0] if len(batch) == 1 else pa.concat_tables(batch))
