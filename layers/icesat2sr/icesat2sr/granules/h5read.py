"""Reading HDF5 datasets through h5coro: local files or S3, concurrent hyperslice reads.

h5coro 1.0.7 copies multi-dimensional chunks into its output one row at a time in Python and
pre-fills buffers with a per-element Python loop when a dataset declares a fill value. Both cost
seconds on a 2 M-photon beam (``signal_conf_ph``, ``velocity_sc``). :class:`_FastDataset`
replaces the row copy with one numpy slice assignment and skips the pre-fill (ICESat-2 granules
store every chunk, so the fill is always overwritten). It also inflates chunks with ISA-L (the
bulk of a read's time) and decodes each chunk B-tree key with one read instead of six; a read
that falls inside one cached file line skips h5coro's general path. Everything else is h5coro's
own reader.

h5coro 1.0.7 also trusts every offset and length it finds: past the end of the file its reads
come back short or empty, and its symbol-table walk then looks for a link name's NUL forever
(a truncated granule spins at 100 % CPU). :class:`_BoundedH5Coro` refuses any read that does not
lie wholly inside the file (the drivers know its size), and :class:`_FastDataset` reads link
names with one bounded read; a corrupt granule fails with :class:`ReadOutsideFile` at once.
"""

from __future__ import annotations

import functools
import os
import queue
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from h5coro import h5coro as _h5coro
from h5coro.filedriver import FileDriver
from h5coro.h5dataset import H5Dataset
from h5coro.h5metadata import H5Metadata
from h5coro.h5promise import massagePath
from isal import isal_zlib

from ..request.errors import ResourceError

Hyperslice = Sequence[tuple[int, int]]
MAX_THREADS = 32     # dataset reads at once from S3, where each waits on the network
LOCAL_THREADS = os.cpu_count() or 2   # from a local file, where each inflates: more threads only contend
MAX_LINK_NAME = 4096  # bytes; HDF5 sets no limit, ICESat-2's longest names are under 40
MAX_COLUMNS = 64      # ICESat-2 datasets are tables: signal_conf_ph has 5 columns, velocity_sc 3
T = TypeVar("T")


class ReadOutsideFile(RuntimeError):
    """A read that does not lie wholly inside the file: the granule is truncated or corrupt."""


class _LineCache(OrderedDict):
    """h5coro's cache of file lines (4 MiB reads), bounded: the least recently used lines go.

    h5coro keeps every line it has read until the file is closed, so reading a whole granule
    window by window would hold the whole file (~2 GB for a full granule). Here at most
    :data:`CACHE_LINES` are kept. A line evicted between h5coro's test for it and its use is read
    again (``__missing__``), so concurrent readers never miss. Lookups are the dict's own (no
    Python call: h5coro looks a line up for every field it decodes); :meth:`hit` also marks the
    line as recently used.
    """

    def __init__(self, read, line_size: int, max_lines: int):
        super().__init__()
        self._read, self._line_size, self._max = read, line_size, max_lines
        self._lock = threading.Lock()

    def hit(self, line) -> memoryview | None:
        """The cached line, marked as the most recently used, or None."""
        value = self.get(line)
        if value is not None:
            try:
                self.move_to_end(line)
            except KeyError:      # evicted meanwhile by another reader: the value is still good
                pass
        return value

    def __missing__(self, line):
        value = memoryview(self._read(line, self._line_size))
        self[line] = value
        return value

    def __setitem__(self, line, value) -> None:
        with self._lock:
            super().__setitem__(line, value)
            while len(self) > self._max:
                self.popitem(last=False)


CACHE_LINES = 48      # lines of h5coro's cache kept per open granule (4 MiB each: <= 192 MiB)


class _BoundedH5Coro(_h5coro.H5Coro):
    """h5coro's reader with every read checked against the file's size (``driver.size``), and a
    bounded cache (:class:`_LineCache`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cache = _LineCache(lambda line, size: self.driver.read(line, size), self.cacheLineSize, CACHE_LINES)

    def ioRequest(self, pos, size, caching=True, prefetch=False):
        start = pos + self.baseAddress
        limit = getattr(self.driver, "size", None)  # None until an S3 driver has seen a response
        if caching and pos >= 0 and size >= 0 and (limit is None or start + size <= limit) \
                and isinstance(self.cache, _LineCache):   # h5coro opens the file with a plain dict
            # the common case, a read inside one cached line, without h5coro's general loop
            line = start & self.cacheLineMask
            data = self.cache.hit(line)
            offset = start - line
            if data is not None and offset + size <= len(data):
                return data[offset:offset + size]
        if pos < 0 or size < 0 or (limit is not None and start + size > limit):
            raise ReadOutsideFile(f"a read of {size} bytes at offset {start} lies outside the file "
                                  f"({limit if limit is not None else 'unknown'} bytes)")
        data = super().ioRequest(pos, size, caching, prefetch)
        if not prefetch and len(data) != size:
            raise ReadOutsideFile(f"a read of {size} bytes at offset {start} returned {len(data)}")
        return data


class _SizedFileDriver(FileDriver):
    """h5coro's file driver, knowing the file's size."""

    def __init__(self, resource, credentials):
        super().__init__(resource, credentials)
        self.size = os.fstat(self.f.fileno()).st_size

    def copy(self, max_connections=None):
        return _SizedFileDriver(self.resource, None)


class _FastDataset(H5Dataset):
    """h5coro dataset reader with a vectorised chunk-to-output copy, ISA-L's inflate and one read
    per chunk B-tree key."""

    def inflateChunk(self, input):
        """A deflated chunk inflated by ISA-L: the same bytes as zlib's, ~1.7x faster, and the GIL is
        released meanwhile (the fit's threads go on)."""
        return isal_zlib.decompress(input)

    def readSlice(self, output_buffer, output_dimensions, output_slice,
                  input_buffer, input_dimensions, input_slice):
        size = self.meta.typeSize
        n_in = int(np.prod(input_dimensions)) * size
        if len(input_buffer) < n_in:  # contiguous layouts pass a short buffer: keep h5coro's loop
            return super().readSlice(output_buffer, output_dimensions, output_slice,
                                     input_buffer, input_dimensions, input_slice)
        src = np.frombuffer(input_buffer, dtype=np.uint8, count=n_in).reshape(*input_dimensions, size)
        dst = np.frombuffer(output_buffer, dtype=np.uint8).reshape(*output_dimensions, size)
        dst[tuple(slice(a, b) for a, b in output_slice)] = src[tuple(slice(a, b) for a, b in input_slice)]
        return None

    def attributeMsgHandler(self, msg_size, obj_hdr_flags, dlvl):
        """Attribute messages v2/v3 (dense attribute storage) carry no padding; h5coro pads them.

        Version 1 keeps h5coro's handler. Layout (HDF5 format spec, attribute message):
        version, flags, name size, datatype size, dataspace size, [encoding (v3)], name,
        datatype message, dataspace message, data.
        """
        start = self.pos
        version = self.readField(1)
        if version == 1:
            self.pos = start
            return super().attributeMsgHandler(msg_size, obj_hdr_flags, dlvl)
        flags = self.readField(1)
        name_size, datatype_size, dataspace_size = (self.readField(2) for _ in range(3))
        if flags != 0:
            raise RuntimeError(f"shared attribute datatypes are not supported (flags {flags})")
        encoding = "utf-8"
        if version == 3 and self.readField(1) == 0:
            encoding = "ascii"
        name = bytes(self.readArray(name_size)).decode(encoding).strip("\0")
        meta = H5Metadata()
        for handler, size in ((self.datatypeMsgHandler, datatype_size),
                              (self.dataspaceMsgHandler, dataspace_size)):
            begin = self.pos
            handler(size, obj_hdr_flags, dlvl, meta)
            self.pos = begin + size
        meta.isattribute = True
        meta.layout = self.CONTIGUOUS_LAYOUT
        meta.filter = dict.fromkeys(meta.filter, False)
        meta.address = self.pos
        meta.size = msg_size - (self.pos - start)
        attr_path = "/".join([*self.datasetPath[:dlvl], name])
        self.resourceObject.metadataTable[attr_path] = meta
        self.resourceObject.pathAddresses[attr_path] = self.currObjHdrPos
        self.pos += meta.size
        if dlvl + 1 == len(self.datasetPath) and name == self.datasetPath[dlvl]:
            self.datasetFound = True
            self.meta = meta
        return self.pos - start

    def hypersliceIntersection(self, node_slice, node_level):
        """h5coro's test, also counting the selected values each data chunk holds: a chunk index
        whose keys were damaged leaves values unread (zeros) or reads a chunk twice."""
        hit = super().hypersliceIntersection(node_slice, node_level)
        if hit and node_level == 0:
            start = tuple(int(a) for a, _ in node_slice)
            seen = self.__dict__.setdefault("chunks_seen", set())
            if start in seen:
                raise RuntimeError(f"the chunk index lists the chunk at {start} twice")
            seen.add(start)
            n = 1
            for (a, b), (h0, h1) in zip(node_slice, self.hyperslice, strict=False):
                n *= max(0, min(b, h1) - max(a, h0))
            self.values_covered = getattr(self, "values_covered", 0) + n
        return hit

    def readBTreeNodeV1(self, ndims):
        """A chunk B-tree key (chunk size, filter mask, chunk offsets, trailing zero) in one read."""
        layout = struct.Struct(f"<II{ndims + 1}Q")
        fields = layout.unpack(self.resourceObject.ioRequest(self.pos, layout.size))
        self.pos += layout.size
        if self.resourceObject.errorChecking and fields[-1] % self.meta.typeSize != 0:
            raise RuntimeError(f"key did not include a trailing zero: {fields[-1]}")
        return {"chunk_size": fields[0], "filter_mask": fields[1], "slice": list(fields[2:-1])}

    def readSymbolTable(self, heap_address, dlvl):
        """A symbol table node (``SNOD``): its links, each name read at once (bounded), not byte by byte."""
        start = self.pos
        signature, version = self.readField(4), self.readField(1)
        if signature != self.H5_SNOD_SIGNATURE_LE or version != 1:
            raise RuntimeError(f"invalid symbol table node at offset {start}")
        self.pos += 1
        for _ in range(self.readField(2)):
            name_offset = self.readField(self.resourceObject.offsetSize)
            header_address = self.readField(self.resourceObject.offsetSize)
            cache_type = self.readField(4)
            self.pos += 20  # reserved, scratch pad
            name = self._link_name(heap_address + name_offset)
            self.resourceObject.pathAddresses["/".join([*self.datasetPath[:dlvl], name])] = header_address
            if dlvl < len(self.datasetPath) and name == self.datasetPath[dlvl]:
                if cache_type == 2:
                    raise RuntimeError(f"symbolic links are unsupported: {name}")
                back = self.pos
                self.pos = header_address
                self.readObjHdr(dlvl + 1)
                self.pos = back
                if self.earlyExit:
                    break
        return self.pos - start

    def _link_name(self, address: int) -> str:
        limit = getattr(self.resourceObject.driver, "size", None)
        if limit is not None and not 0 <= address < limit:
            raise ReadOutsideFile(f"a link name at offset {address} lies outside the file ({limit} bytes)")
        size = MAX_LINK_NAME if limit is None else min(MAX_LINK_NAME, limit - address)
        raw = bytes(self.resourceObject.ioRequest(address, size))
        end = raw.find(b"\0")
        if end < 0:
            raise ReadOutsideFile(f"link name at offset {address} has no end within {size} bytes")
        return raw[:end].decode("utf-8")


class ReadTimeout(Exception):
    """The result of ``items[index]`` did not come within the time allowed."""

    def __init__(self, index: int):
        super().__init__(index)
        self.index = index


def daemon_map(fn: Callable[[object], T], items: Sequence, threads: int, timeout: float | None = None) -> list[T]:
    """``[fn(item) for item in items]`` in up to ``threads`` daemon threads.

    Each result is awaited in turn, at most ``timeout`` seconds (None: no limit), as SlideRule
    joins its dataset reads with ``read_timeout``. A call that never returns (a stuck read) is
    abandoned: its thread is a daemon, so it never holds the process at exit (a thread pool's
    would). Calls not started when one fails or times out are dropped.

    Raises
    ------
    ReadTimeout
        A result did not come in time (``.index`` says which).
    Exception
        The first failing call's exception, in item order.
    """
    futures = [Future() for _ in items]
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for pair in zip(items, futures, strict=True):
        todo.put(pair)

    def work() -> None:
        while True:
            try:
                item, future = todo.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(item))
                except BaseException as exc:  # handed to the caller
                    future.set_exception(exc)

    for _ in range(max(1, min(threads, len(items)))):
        threading.Thread(target=work, name="icesat2sr-read", daemon=True).start()
    try:
        out = []
        for index, future in enumerate(futures):
            try:
                out.append(future.result(timeout=timeout))
            except FutureTimeout:
                raise ReadTimeout(index) from None
        return out
    finally:
        for future in futures:
            future.cancel()


@dataclass(frozen=True)
class Read:
    """One dataset to read: HDF5 path and optional hyperslice (one [start, stop) per dimension).

    ``max_rows`` bounds the dataset's first dimension: a larger one (a corrupt dataspace) is an
    error before anything is allocated, not gigabytes of zeros.
    """

    path: str
    hyperslice: Hyperslice = ()
    optional: bool = False
    max_rows: int | None = None


class Granule:
    """An open HDF5 file read through h5coro; use as a context manager (closes the driver).

    Parameters
    ----------
    resource : str
        Local path (``driver="file"``) or ``bucket/key`` (``driver="s3"``).
    driver : {"file", "s3"}
    credentials : dict, optional
        h5coro S3 credentials (``{"role": True}`` = default boto3 chain).
    name : str, optional
        Name used in error messages (defaults to the resource).
    read_timeout : float, optional
        SlideRule's ``read_timeout``: seconds to wait for the file to open, for a listing, and for
        each dataset of :meth:`read` (in turn, as SlideRule joins its reads); then a
        :class:`ResourceError` with code -2 (TIMEOUT). The read that did not return is abandoned
        in its daemon thread. On S3 it also shortens the socket timeouts of each ranged GET.
    """

    def __init__(self, resource: str, driver: str = "file", credentials: dict | None = None,
                 name: str | None = None, read_timeout: float | None = None):
        self.name = name or os.path.basename(resource)
        self.read_timeout = read_timeout
        self.threads = min(MAX_THREADS, LOCAL_THREADS) if driver == "file" else MAX_THREADS
        if driver == "file":
            driver_class = _SizedFileDriver
            if not os.path.isfile(resource):
                raise ResourceError(self.name, "granule not found", ResourceError.RESOURCE_DOES_NOT_EXIST)
        else:
            from .s3driver import RetryingS3Driver  # survives S3 throttling

            driver_class = functools.partial(RetryingS3Driver, read_timeout=read_timeout)
        try:
            self._h5 = self._within("open the file", lambda: _BoundedH5Coro(
                resource, driver_class, credentials=credentials or {}, errorChecking=True, verbose=False))
        except ResourceError:
            raise
        except Exception as exc:  # h5coro raises bare errors on non-HDF5 or truncated files
            raise _unreadable(self.name, resource, driver, exc) from None
        self._lock = threading.Lock()

    def _within(self, what: str, action: Callable[[], T]) -> T:
        """``action()``, given at most ``read_timeout`` seconds."""
        if self.read_timeout is None:   # no limit: no thread to wait on
            return action()
        return self._map(lambda _: action(), [what], 1, describe=lambda _: what)[0]

    def _map(self, fn: Callable, items: list, threads: int, describe: Callable[[object], str]) -> list:
        try:
            return daemon_map(fn, items, threads, self.read_timeout)
        except ReadTimeout as exc:
            raise ResourceError(self.name, f"cannot {describe(items[exc.index])}: no answer within "
                                           f"{self.read_timeout:g} s (read_timeout)", ResourceError.TIMEOUT) from None

    def __enter__(self) -> Granule:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the driver (file handle or S3 client) and h5coro's cache."""
        self._h5.close()
        self._h5.cache.clear()

    def read(self, reads: Iterable[Read], threads: int | None = None) -> dict[str, np.ndarray | None]:
        """Read datasets concurrently: ``threads`` at once (default: one per core for a local file,
        :data:`MAX_THREADS` on S3).

        Returns
        -------
        dict
            HDF5 path -> numpy array (``None`` for a missing ``optional`` dataset).

        Raises
        ------
        ResourceError
            A required dataset is missing or cannot be decoded.
        """
        reads = list(reads)
        if not reads:
            return {}
        workers = max(1, min(threads or self.threads, len(reads)))
        values = self._map(self._read_one, reads, workers, describe=lambda r: f"read {r.path}")
        return {r.path: v for r, v in zip(reads, values, strict=True)}

    def _empty(self, path: str, max_rows: int | None = None) -> np.ndarray | None:
        """A zero-length array of the dataset's type when it has no elements, else None."""
        meta = _FastDataset(self._h5, path, None, earlyExit=True, metaOnly=True, enableAttributes=False).meta
        if max_rows is not None and meta.dimensions and meta.dimensions[0] > max_rows:
            raise ResourceError(self.name, f"cannot read /{path}: {meta.dimensions[0]} rows, more than a granule "
                                           f"holds ({max_rows}); the file is corrupt")
        if any(d > MAX_COLUMNS for d in (meta.dimensions or [])[1:]):
            raise ResourceError(self.name, f"cannot read /{path}: shape {tuple(meta.dimensions)} is not a table "
                                           f"of at most {MAX_COLUMNS} columns; the file is corrupt")
        if not meta.dimensions or all(d > 0 for d in meta.dimensions):
            return None
        dtype = H5Metadata.TO_NUMPY_TYPE[meta.type][meta.signedval][meta.typeSize]
        return np.zeros(meta.dimensions, dtype=dtype)

    def _chunked(self, path: str) -> bool:
        meta = _FastDataset(self._h5, path, None, earlyExit=True, metaOnly=True, enableAttributes=False).meta
        return meta.layout == H5Dataset.CHUNKED_LAYOUT

    def exists(self, path: str) -> bool:
        """Whether a dataset (not a group) exists at ``path``."""
        try:
            ds = _FastDataset(self._h5, path.lstrip("/"), None, earlyExit=True, metaOnly=True,
                              enableAttributes=False)
        except Exception:
            return False
        return ds.meta.typeSize > 0

    def groups(self, path: str = "/") -> set[str]:
        """Names of the links (groups and datasets) directly under ``path``."""
        path = massagePath(path)
        try:  # h5coro's inspectPath, through _FastDataset's bounded symbol-table walk
            self._within(f"list {path or '/'}", lambda: _FastDataset(self._h5, path, None, earlyExit=False,
                                                                     metaOnly=True, enableAttributes=False))
        except ResourceError:
            raise
        except Exception as exc:
            raise ResourceError(self.name, f"cannot list {path or '/'}: {_describe(exc)}") from None
        prefix = f"{path}/" if path else ""
        table = self._h5.metadataTable
        return {p[len(prefix):].split("/")[0] for p in list(self._h5.pathAddresses)
                if p.startswith(prefix) and len(p) > len(prefix) and not (p in table and table[p].isattribute)}

    def attribute(self, path: str) -> object | None:
        """Value of an attribute given as ``/group/attribute`` (None when absent)."""
        try:
            ds = _FastDataset(self._h5, path.lstrip("/"), None, earlyExit=False, metaOnly=False,
                              enableAttributes=True, enableFill=False)
        except Exception:
            return None
        return ds.values

    def _read_one(self, r: Read) -> np.ndarray | None:
        path = r.path.lstrip("/")
        hyperslice = [tuple(s) for s in r.hyperslice]
        try:
            empty = self._empty(path, r.max_rows)
            if hyperslice and not self._chunked(path):
                # h5coro 1.0.7 mis-places hyperslices of contiguous/compact data: read whole, slice here
                whole = self._read_one(Read(r.path, (), r.optional, r.max_rows))
                return None if whole is None else whole[tuple(slice(a, b) for a, b in hyperslice)]
            if empty is not None:  # no chunk allocated: h5coro reports an invalid data address
                return empty[tuple(slice(a, b) for a, b in hyperslice)] if hyperslice else empty
            ds = _FastDataset(self._h5, path, hyperslice, enableFill=False,
                              earlyExit=True, metaOnly=False, enableAttributes=False)
        except ResourceError:
            raise
        except Exception as exc:
            if r.optional and "missing data type" in str(exc):
                return None
            message = "dataset is missing" if "missing data type" in str(exc) else _describe(exc)
            raise ResourceError(self.name, f"cannot read {r.path}: {message}") from None
        if ds.meta.layout == H5Dataset.CHUNKED_LAYOUT and getattr(ds, "values_covered", 0) != ds.numElements:
            raise ResourceError(self.name, f"cannot read {r.path}: its chunk index covers "
                                           f"{getattr(ds, 'values_covered', 0)} of {ds.numElements} values; "
                                           "the file is corrupt")
        values = ds.values
        if not isinstance(values, np.ndarray):
            if r.optional:
                return None
            raise ResourceError(self.name, f"cannot read {r.path}: not a numeric dataset")
        return values


def _describe(exc: Exception) -> str:
    """h5coro's low-level failures in words a user can act on."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ReadOutsideFile | struct.error) or "buffer" in text or "unpack" in text:
        return f"the file is truncated or corrupt ({text})"
    return f"the data cannot be decoded: corrupt or unsupported storage ({text})"


def _unreadable(name: str, resource: str, driver: str, exc: Exception) -> ResourceError:
    text = str(exc)
    if "signature" in text:
        return ResourceError(name, "not an HDF5 file")
    if driver == "s3" and ("NoneType" in text or "memoryview" in text):
        return ResourceError(name, f"object not found or unreadable at s3://{resource}",
                             ResourceError.RESOURCE_DOES_NOT_EXIST)
    return ResourceError(name, f"unreadable HDF5 file: {_describe(exc)}")
