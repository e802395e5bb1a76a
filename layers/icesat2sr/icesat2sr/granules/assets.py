"""Assets: where granules live and how to open them (seed §1.1).

| asset | driver | root |
|---|---|---|
| ``atlas-local`` | local file | a folder (``--path``) |
| ``atlas-s3`` | S3 | ``bucket/prefix`` (env ``ICESAT2SR_ATLAS_S3``; default ``icesat2-sliderule/data/ATLAS``) |
| ``nsidc-s3`` | S3 | ``nsidc-cumulus-prod-protected``, keys ``ATLAS/ATL03/vvv/YYYY/MM/DD/<name>`` |

``icesat2`` (what the official client sends) means the deployment's default asset, env
``ICESAT2SR_DEFAULT_ASSET`` (``atlas-local`` when unset). S3 credentials come from the
environment (the default boto3 chain, e.g. Earthdata's temporary keys exported as AWS_*);
``AWS_ENDPOINT_URL_S3`` points the S3 driver at another endpoint (tests use moto).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from ..request.errors import ParameterError, ResourceError
from ..request.names import parse_name
from ..request.params import Parms
from .h5read import Granule

NSIDC_BUCKET = "nsidc-cumulus-prod-protected"
DATA_REGION = "us-west-2"  # both S3 assets live there
ATLAS_S3_DEFAULT = "icesat2-sliderule/data/ATLAS"
CATALOG_NAME = ".icesat2sr-catalog.parquet"   # a folder's granule catalogue (discovery.catalog)


@dataclass(frozen=True)
class Asset:
    """A granule store.

    Parameters
    ----------
    name : str
        Asset name as requested (``atlas-local``, ``atlas-s3``, ``nsidc-s3``).
    driver : {"file", "s3"}
    root : str
        Folder, or ``bucket`` / ``bucket/prefix``.
    layout : {"flat", "nsidc"}
        ``flat`` = ``root/<name>``; ``nsidc`` = NSIDC Cumulus dated keys.
    credentials : dict
        h5coro S3 credentials (empty = default boto3 chain).
    read_timeout : float, optional
        SlideRule's ``read_timeout`` for the granules opened (see :class:`Granule`).
    """

    name: str
    driver: str
    root: str
    layout: str = "flat"
    credentials: dict = field(default_factory=dict)
    read_timeout: float | None = None

    def for_request(self, parms: Parms) -> Asset:
        """This asset with the request's ``read_timeout`` (else ``timeout``) applied to its reads."""
        seconds = parms.deadlines[2]
        return self if seconds == self.read_timeout else replace(self, read_timeout=seconds)

    def locate(self, resource: str) -> str:
        """Path or ``bucket/key`` of a granule; rejects names that are not plain granule names."""
        check_resource_name(resource)
        if self.layout == "nsidc":
            g = parse_name(resource)
            key = f"ATLAS/ATL0{g.product}/{g.version:03d}/{g.start:%Y/%m/%d}/{resource}"
            return f"{self.root.rstrip('/')}/{key}"
        if self.driver == "file":
            root = os.path.realpath(self.root)
            path = os.path.realpath(os.path.join(root, resource))
            if os.path.dirname(path) != root:
                raise ResourceError(resource, f"resource is outside the data folder {self.root}")
            return path
        return f"{self.root.rstrip('/')}/{resource}"

    def open(self, resource: str) -> Granule:
        """Open a granule for reading (a context manager)."""
        if self.driver == "s3":  # h5coro's S3 driver takes the region from the environment only
            os.environ.setdefault("AWS_DEFAULT_REGION", DATA_REGION)
        return Granule(self.locate(resource), self.driver, self.credentials, name=resource,
                       read_timeout=self.read_timeout)


def check_resource_name(resource: object) -> str:
    """A resource must be a bare granule file name: no folders, no ``..``, a valid ATLAS name."""
    if not isinstance(resource, str) or not resource:
        raise ResourceError(str(resource), "resource must be a granule file name")
    if "/" in resource or "\\" in resource or "\0" in resource or resource.startswith("."):
        raise ResourceError(resource, "resource must be a bare granule file name (no folders)")
    parse_name(resource)
    return resource


def resolve_asset(name: str, path: str | None = None) -> Asset:
    """Build the :class:`Asset` for a requested asset name.

    Parameters
    ----------
    name : str
        ``atlas-local``, ``atlas-s3``, ``nsidc-s3`` or ``icesat2`` (the deployment default).
    path : str, optional
        Folder for ``atlas-local`` (else env ``ICESAT2SR_DATA_DIR``), or ``bucket/prefix`` for
        ``atlas-s3`` (else env ``ICESAT2SR_ATLAS_S3``).
    """
    if name == "icesat2":
        name = os.environ.get("ICESAT2SR_DEFAULT_ASSET", "atlas-local")
    if name == "atlas-local":
        root = path or os.environ.get("ICESAT2SR_DATA_DIR")
        if not root:
            raise ParameterError("asset", "atlas-local needs a data folder (--path or ICESAT2SR_DATA_DIR)")
        if not os.path.isdir(root):
            raise ParameterError("asset", f"data folder {root} does not exist")
        return Asset(name, "file", root)
    if name == "atlas-s3":
        return Asset(name, "s3", path or os.environ.get("ICESAT2SR_ATLAS_S3", ATLAS_S3_DEFAULT))
    if name == "nsidc-s3":
        return Asset(name, "s3", path or NSIDC_BUCKET, layout="nsidc")
    raise ParameterError("asset", f"unknown asset {name!r}")
