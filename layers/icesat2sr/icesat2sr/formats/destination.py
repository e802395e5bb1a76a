"""Where a result file may go: checked before any work, written without touching the inputs.

:func:`check_destination` refuses an output that is, or would replace, something the request
reads: a granule, its ATL08 companion, any ATL03/ATL08-named file of the data folder or the
folder's catalogue (compared by resolved path and by inode, so symbolic and hard links count). It
also proves the folder writable by creating (and removing) a file there, so a missing folder, a
permission or a read-only file system is reported at once, not after the processing.
:func:`write_results` (the CLI's, through :class:`icesat2sr.formats.output.OutputWriter`) and
:func:`write_result` (a frame) turn a failed write (disk full, file size limit) into :class:`WriteError`.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ..granules.assets import CATALOG_NAME, Asset
from ..request.errors import DestinationError, ResourceError, WriteError
from ..request.names import parse_name
from .frames import write
from .output import EXTENSIONS, OutputWriter


def check_destination(output: str | os.PathLike, asset: Asset | None = None,
                      resources: Iterable[str] = (), fmt: str | None = None) -> Path:
    """Check an output path before any work is done.

    Parameters
    ----------
    output : path-like
        The result file (an extension of :data:`icesat2sr.formats.output.EXTENSIONS`, unless
        ``fmt`` names the format).
    asset : Asset, optional
        The request's granule store; a local folder's granules and catalogue are protected.
    resources : iterable of str
        Granules named by the request (their ATL08 companions are protected too).
    fmt : str, optional
        The file format, when not the extension's.

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    DestinationError
        Unknown format, a folder, an input of the request, or a folder that cannot be written.
    """
    path = Path(output)
    if fmt is None and path.suffix.lower() not in EXTENSIONS:
        raise DestinationError(f"output {path} must end in {', '.join(sorted(EXTENSIONS))} (or name a --format)")
    if path.is_dir():
        raise DestinationError(f"output {path} is a folder")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise DestinationError(f"output folder {parent} does not exist")
    if asset is not None and asset.driver == "file":
        _refuse_inputs(path, Path(asset.root), list(resources))
    _prove_writable(parent)
    return path


def _is_granule_name(name: str) -> bool:
    try:
        parse_name(name)
    except ResourceError:
        return False
    return True


def _refuse_inputs(path: Path, root: Path, resources: list[str]) -> None:
    folder = os.path.realpath(root)
    target = os.path.realpath(path)
    if os.path.dirname(target) == folder and (_is_granule_name(os.path.basename(target))
                                              or os.path.basename(target) == CATALOG_NAME):
        raise DestinationError(f"output {path} would replace a granule or the catalogue of the data "
                               f"folder {root}; write results elsewhere")
    inputs = {os.path.join(root, n) for n in resources if _is_granule_name(n)}
    inputs |= {os.path.join(root, parse_name(n).atl08) for n in resources if _is_granule_name(n)}
    try:
        with os.scandir(root) as entries:
            inputs |= {e.path for e in entries if _is_granule_name(e.name) or e.name == CATALOG_NAME}
    except OSError:
        pass   # the asset's own checks report an unreadable folder
    same_inode = _inode(path)
    for item in sorted(inputs):
        if os.path.realpath(item) == target or (same_inode is not None and _inode(item) == same_inode):
            raise DestinationError(f"output {path} is an input of this request ({os.path.basename(item)}, "
                                   "by path or by link); write results elsewhere")


def _inode(path: str | os.PathLike) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _prove_writable(folder: Path) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=".icesat2sr-probe.", dir=folder)
    except OSError as exc:
        raise DestinationError(f"cannot write in output folder {folder}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(probe)


def write_result(gdf, output: str | os.PathLike, parms: dict | None = None) -> Path:
    """:func:`~icesat2sr.formats.frames.write`, with an OS failure as :class:`WriteError`.

    The frame is written to a temporary file that is renamed into place only when complete, so a
    failure leaves neither a partial file nor a changed target.
    """
    try:
        return write(gdf, output, parms)
    except OSError as exc:
        raise write_error(output, exc) from None


def write_results(results: list, kind: str, output: str | os.PathLike, fmt: str, parms: dict | None,
                  granules: list[str]) -> Path:
    """Write granules' results (in ``granules`` order) with the shared file writers, atomically;
    an OS failure is :class:`WriteError` and leaves nothing."""
    order = {name: i for i, name in enumerate(granules)}
    try:
        with OutputWriter(output, fmt, kind=kind, parms=parms, granules=granules) as writer:
            writer.extend(sorted(results, key=lambda r: order.get(r.granule, len(order))))
    except OSError as exc:
        raise write_error(output, exc) from None
    return writer.path


def write_error(output: str | os.PathLike, exc: OSError) -> WriteError:
    """An OS failure while writing ``output`` as a :class:`WriteError` that says why in words."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    hint = {errno.EFBIG: " (the file size limit)", errno.ENOSPC: " (disk full)",
            errno.EDQUOT: " (disk quota)"}.get(exc.errno, "")
    return WriteError(f"cannot write {output}: {reason}{hint}; nothing was written")
