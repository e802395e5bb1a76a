"""Photon results written as they stream in: in time order, in bounded memory.

A granule's partial results arrive chunk by chunk, beam after beam (``icesat2sr.engine.iter_granule``).
:class:`TimeOrder` releases their rows in the order a stable sort by time of the whole granule
would give (the order of :func:`icesat2sr.formats.frames.frame_columns`, i.e. of a result file
written whole), holding back only the rows a later part could still precede; the rows go to an
:class:`icesat2sr.formats.output.OutputWriter`. :class:`Spill` holds a granule's rows on disk until
the granule is done.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..science.records import GranuleResult
from .frames import frame_columns

_NEVER = np.iinfo(np.int64).max


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
    def concat(cls, parts: list[Rows]) -> Rows:
        """Rows of several parts, one after the other."""
        columns = {k: (None if v is None else np.concatenate([p.columns[k] for p in parts]))
                   for k, v in parts[0].columns.items()}
        return cls(np.concatenate([p.time_ns for p in parts]), columns, np.concatenate([p.lon for p in parts]),
                   np.concatenate([p.lat for p in parts]))


def photon_rows(result: GranuleResult) -> Rows:
    """The frame rows of an atl03s (partial) result."""
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
    """

    def __init__(self, beams: int):
        self.horizon = np.full(max(beams, 1), np.iinfo(np.int64).min, dtype=np.int64)
        self.pending: list[tuple[int, int, Rows]] = []
        self.count = 0

    def push(self, result: GranuleResult, beam: int, horizon_ns: int) -> Rows | None:
        """Add a part of beam ``beam``; returns the rows that can now be written (or None)."""
        if result.rows:
            self.pending.append((beam, self.count, photon_rows(result)))
            self.count += 1
        self.horizon[beam] = horizon_ns
        return self._release(int(self.horizon.min()))

    def flush(self) -> Rows | None:
        """The rows still held (call once every part has been pushed)."""
        return self._release(_NEVER)

    def _release(self, watermark: int) -> Rows | None:
        taken, kept = [], []
        for beam, seq, rows in self.pending:
            cut = int(np.searchsorted(rows.time_ns, watermark, side="left")) if watermark < _NEVER else len(rows)
            if cut:
                taken.append((beam, seq, rows.take(slice(0, cut))))
            if cut < len(rows):
                kept.append((beam, seq, rows.take(slice(cut, None))))
        self.pending = kept
        if not taken:
            return None
        taken.sort(key=lambda item: item[:2])
        rows = Rows.concat([t[2] for t in taken])
        return rows.take(np.argsort(rows.time_ns, kind="stable"))


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
        """Forget the held tables."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.path.unlink(missing_ok=True)
