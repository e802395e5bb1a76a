"""NASA CMR granule search for the ``nsidc-s3`` asset (ATL03 in NSIDC's cloud archive).

One query = ``GET {root}/search/granules.json`` with ``provider=NSIDC_CPRD``, ``short_name=ATL03``,
``version=vvv``, optional ``bounding_box``/``polygon``/``temporal`` and a ``producer_granule_id``
name pattern (rgt/cycle/region, as SlideRule's server builds it), sorted by start date. Every page
is fetched by echoing the ``CMR-Search-After`` response header; the search ends on an empty page,
a missing header, or when ``CMR-Hits`` entries have arrived. Long queries (> 6000 characters,
CMR's advice) are POSTed as a form instead.

Transient failures (HTTP 429/5xx, connection errors, timeouts) are retried with exponential
backoff by urllib3's ``Retry`` mounted on a ``requests`` session; what still fails raises
:class:`CmrError` with one clear sentence. ``ICESAT2SR_CMR_URL`` replaces the CMR root
(``https://cmr.earthdata.nasa.gov``), e.g. for a local test server.
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass
from urllib.parse import urlencode

from ..request.errors import ResourceError, ServiceError
from ..request.names import parse_name

log = logging.getLogger(__name__)

CMR_ROOT = "https://cmr.earthdata.nasa.gov"
ENV_URL = "ICESAT2SR_CMR_URL"
PROVIDER = "NSIDC_CPRD"        # NSIDC's cloud (Earthdata Cloud) provider
SHORT_NAME = "ATL03"
DEFAULT_VERSION = 7            # release SlideRule's server searches by default
PAGE_SIZE = 2000               # CMR's maximum
MAX_GET_CHARS = 6000           # CMR: keep GET URLs under this, POST longer queries
RETRY_STATUS = (429, 500, 502, 503, 504)


class CmrError(ServiceError):
    """The CMR search failed (after retries), or CMR answered something unusable."""


@dataclass(frozen=True)
class CmrGranule:
    """One ATL03 granule found in CMR.

    Attributes
    ----------
    name : str
        File name (``producer_granule_id``, else ``title``).
    concept_id : str
        CMR id, e.g. ``G1234567890-NSIDC_CPRD``.
    time_start, time_end : str or None
        As CMR reports them (ISO 8601 UTC).
    s3_url : str or None
        The entry's ``s3://`` link, when it has one.
    """

    name: str
    concept_id: str
    time_start: str | None = None
    time_end: str | None = None
    s3_url: str | None = None

    @property
    def key(self) -> str:
        """``bucket/key`` in NSIDC's archive, as :meth:`icesat2sr.granules.assets.Asset.locate` builds it."""
        from ..granules.assets import NSIDC_BUCKET, Asset

        return Asset("nsidc-s3", "s3", NSIDC_BUCKET, layout="nsidc").locate(self.name)


def name_pattern(rgt: int | None = None, cycle: int | None = None, region: int | None = None,
                 product: str = SHORT_NAME) -> str | None:
    """CMR ``producer_granule_id`` pattern selecting rgt/cycle/region (None when all are open)."""
    if rgt is None and cycle is None and region is None:
        return None
    fields = (f"{rgt:04d}" if rgt is not None else "????", f"{cycle:02d}" if cycle is not None else "??",
              f"{region:02d}" if region is not None else "??")
    return f"{product}_??????????????_{''.join(fields)}_*"


def make_session(retries: int = 5, backoff: float = 1.0):
    """A ``requests`` session retrying GET/POST on 429/5xx, connection errors and timeouts.

    Waits grow as ``backoff * 2**(n-1)`` seconds between attempts (urllib3's ``Retry``).
    """
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(total=retries, connect=retries, read=retries, status=retries, other=0,
                  backoff_factor=backoff, status_forcelist=RETRY_STATUS,
                  allowed_methods=frozenset({"GET", "POST"}), raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"Accept": "application/json", "Client-Id": "icesat2sr"})
    return session


def search(*, version: int | str = DEFAULT_VERSION, bounding_box: tuple[float, float, float, float] | None = None,
           polygon: list[tuple[float, float]] | None = None, temporal: tuple[str | None, str | None] | None = None,
           pattern: str | None = None, short_name: str = SHORT_NAME, provider: str = PROVIDER,
           page_size: int = PAGE_SIZE, limit: int | None = None, timeout: float | tuple[float, float] = (10.0, 60.0),
           retries: int = 5, backoff: float = 1.0, root: str | None = None, session=None) -> list[CmrGranule]:
    """Search CMR for granules; every page is fetched.

    Parameters
    ----------
    version : int or str
        Release, e.g. ``7`` or ``"007"``.
    bounding_box : (west, south, east, north), optional
        Degrees; ``west > east`` crosses the antimeridian.
    polygon : list of (lon, lat), optional
        A ring; sent closed and counter-clockwise, as CMR requires.
    temporal : (start, end), optional
        ``%Y-%m-%dT%H:%M:%SZ`` strings; either may be None (open-ended). CMR matches granules whose
        time span overlaps the range.
    pattern : str, optional
        ``producer_granule_id`` pattern with ``*``/``?`` (see :func:`name_pattern`).
    short_name, provider : str
        CMR collection short name (``ATL03``) and provider (``NSIDC_CPRD``).
    page_size : int
        Entries per page (at most 2000).
    limit : int, optional
        Raise :class:`CmrError` when more granules match.
    timeout : float or (connect, read)
        Seconds per attempt.
    retries, backoff : int, float
        Retries of a failed request and the backoff factor (see :func:`make_session`).
    root : str, optional
        CMR root URL (default: env ``ICESAT2SR_CMR_URL``, else ``https://cmr.earthdata.nasa.gov``).
    session : requests.Session, optional
        Reuse a session (its own retry settings then apply).

    Returns
    -------
    list of CmrGranule
        In CMR's order (start date, then name), without duplicates.

    Raises
    ------
    CmrError
        CMR unreachable after retries, an HTTP error, or a malformed page.
    """
    params = _params(version, bounding_box, polygon, temporal, pattern, short_name, provider, page_size)
    url = (root or os.environ.get(ENV_URL) or CMR_ROOT).rstrip("/") + "/search/granules.json"
    own = session is None
    session = make_session(retries, backoff) if own else session
    found: dict[str, CmrGranule] = {}
    headers: dict[str, str] = {}
    received, page = 0, 0
    try:
        while True:
            page += 1
            response = _request(session, url, params, headers, timeout, page)
            entries = _entries(response, page)
            received += len(entries)
            for entry in entries:
                granule = _granule(entry, page)
                if granule is not None:
                    found.setdefault(granule.name, granule)
            if limit is not None and len(found) > limit:
                raise CmrError(f"CMR search matched more than {limit} granules; narrow the region or time range")
            hits = _hits(response)
            after = response.headers.get("CMR-Search-After")
            if not entries or not after or (hits is not None and received >= hits):
                break
            headers["CMR-Search-After"] = after
    finally:
        if own:
            session.close()
    return list(found.values())


def _params(version, bounding_box, polygon, temporal, pattern, short_name, provider, page_size) -> list:
    if not 1 <= page_size <= PAGE_SIZE:
        raise ValueError(f"page_size must be 1..{PAGE_SIZE}")
    version = f"{int(version):03d}" if str(version).isdigit() else str(version)
    params = [("provider", provider), ("short_name", short_name), ("version", version),
              ("page_size", str(page_size)), ("sort_key[]", "start_date"), ("sort_key[]", "producer_granule_id")]
    if bounding_box is not None:
        west, south, east, north = bounding_box
        params.append(("bounding_box", ",".join(f"{v:.10g}" for v in (west, south, east, north))))
    if polygon is not None:
        params.append(("polygon", ",".join(f"{v:.10g}" for xy in ccw_ring(polygon) for v in xy)))
    if temporal is not None and any(temporal):
        params.append(("temporal", f"{temporal[0] or ''},{temporal[1] or ''}"))
    if pattern:
        params += [("options[producer_granule_id][pattern]", "true"), ("producer_granule_id[]", pattern)]
    return params


def ccw_ring(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The ring closed and counter-clockwise (in the lon/lat plane), as CMR's ``polygon`` wants."""
    ring = [(float(x), float(y)) for x, y in points]
    if ring[0] != ring[-1]:
        ring.append(ring[0])
    area2 = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring))
    return ring if area2 > 0 else ring[::-1]


def _request(session, url: str, params: list, headers: dict, timeout, page: int):
    import requests

    query = urlencode(params)
    try:
        if len(url) + 1 + len(query) > MAX_GET_CHARS:
            response = session.post(url, data=query, timeout=timeout,
                                    headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})
        else:
            response = session.get(f"{url}?{query}", headers=headers, timeout=timeout)
    except requests.exceptions.RequestException as exc:
        reason = "timed out" if _timed_out(exc) else "could not be reached"
        raise CmrError(f"CMR ({url}) {reason} on page {page}, after retries: {_short(exc)}") from None
    if response.status_code != 200:
        raise CmrError(f"CMR search failed on page {page}: HTTP {response.status_code} {_cmr_errors(response)}")
    return response


def _timed_out(exc: Exception) -> bool:
    import requests

    return isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc).lower()


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _cmr_errors(response) -> str:
    try:
        errors = response.json().get("errors")
    except ValueError:
        errors = None
    if isinstance(errors, list) and errors:
        return "; ".join(str(e) for e in errors)
    return (response.reason or "").strip()


def _entries(response, page: int) -> list:
    try:
        body = response.json()
    except ValueError:
        raise CmrError(f"CMR returned a malformed page {page}: not JSON "
                       f"(starts {response.text[:60]!r})") from None
    feed = body.get("feed") if isinstance(body, dict) else None
    entries = feed.get("entry") if isinstance(feed, dict) else None
    if not isinstance(entries, list):
        raise CmrError(f"CMR returned a malformed page {page}: no feed.entry list")
    return entries


def _hits(response) -> int | None:
    try:
        return int(response.headers["CMR-Hits"])
    except (KeyError, ValueError):
        return None


def _granule(entry: dict, page: int) -> CmrGranule | None:
    if not isinstance(entry, dict):
        raise CmrError(f"CMR returned a malformed page {page}: an entry is not an object")
    name = entry.get("producer_granule_id") or entry.get("title")
    if not isinstance(name, str) or not name:
        raise CmrError(f"CMR returned a malformed page {page}: entry {entry.get('id')!r} has no "
                       "producer_granule_id or title")
    try:
        product = parse_name(name).product
    except ResourceError:
        product = None
    if product != 3:
        log.warning("CMR entry %s is not an ATL03 granule file (%s); skipped", entry.get("id"), name)
        return None
    s3 = next((link.get("href") for link in entry.get("links") or []
               if isinstance(link, dict) and str(link.get("href", "")).startswith("s3://")), None)
    granule = CmrGranule(name, str(entry.get("id", "")), entry.get("time_start"), entry.get("time_end"), s3)
    if s3 and s3 != f"s3://{granule.key}":
        log.warning("CMR lists %s at %s, not at the expected s3://%s", name, s3, granule.key)
    return granule


__all__ = ["DEFAULT_VERSION", "CmrError", "CmrGranule", "ccw_ring", "make_session", "name_pattern", "search"]
