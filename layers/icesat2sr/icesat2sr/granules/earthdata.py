"""Earthdata Login -> temporary S3 credentials for NSIDC's cloud bucket (asset ``nsidc-s3``).

NSIDC serves ATL03 from ``nsidc-cumulus-prod-protected`` in us-west-2, readable only with
temporary keys that its ``s3credentials`` endpoint hands to an Earthdata Login user (valid one
hour, usable only from us-west-2). In AWS the worker reads the login from a Secrets Manager secret
(template parameter ``EarthdataSecretArn``), whose value is JSON, either

* ``{"username": "...", "password": "..."}``: keys are fetched here and cached until 5 minutes
  before they expire, or
* ``{"accessKeyId": "...", "secretAccessKey": "...", "sessionToken": "..."}``: keys obtained
  elsewhere (e.g. refreshed by a scheduled job), used as they are.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable

from ..request.errors import Icesat2srError

S3CREDENTIALS_URL = "https://data.nsidc.earthdatacloud.nasa.gov/s3credentials"
URS = "https://urs.earthdata.nasa.gov"
REFRESH_MARGIN_S = 300.0

_cache: dict[str, tuple[float, dict]] = {}


class EarthdataError(Icesat2srError):
    """No usable Earthdata credentials."""


def fetch_s3_credentials(username: str, password: str, url: str = S3CREDENTIALS_URL, opener=None) -> dict:
    """Ask NSIDC's ``s3credentials`` endpoint for temporary keys (follows the Earthdata Login redirect).

    Returns
    -------
    dict
        ``accessKeyId``, ``secretAccessKey``, ``sessionToken``, ``expiration`` (as NSIDC sends them).
    """
    import http.cookiejar
    import urllib.request

    if opener is None:
        passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        passwords.add_password(None, URS, username, password)
        opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(passwords),
                                             urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    try:
        with opener.open(url, timeout=30) as response:
            return json.loads(response.read())
    except Exception as exc:
        raise EarthdataError(f"cannot get S3 credentials from {url}: {exc}") from None


def h5coro_credentials(keys: dict) -> dict:
    """NSIDC's key names -> the ``credentials`` dict h5coro's S3 driver takes."""
    try:
        return {"aws_access_key_id": keys["accessKeyId"], "aws_secret_access_key": keys["secretAccessKey"],
                "aws_session_token": keys["sessionToken"]}
    except KeyError as exc:
        raise EarthdataError(f"S3 credentials lack {exc.args[0]}") from None


def credentials_from_secret(secrets_client, secret_arn: str,
                            fetch: Callable[[str, str], dict] = fetch_s3_credentials) -> dict:
    """h5coro credentials for ``nsidc-s3`` from the Earthdata secret (cached per container).

    Parameters
    ----------
    secrets_client : boto3 Secrets Manager client
        Reads the secret.
    secret_arn : str
        The secret holding the Earthdata login (``{"username", "password"}``).
    fetch : callable
        ``fetch(username, password) -> keys`` (tests pass a fake: no network).
    """
    cached = _cache.get(secret_arn)
    if cached and cached[0] - REFRESH_MARGIN_S > time.time():
        return cached[1]
    try:
        value = json.loads(secrets_client.get_secret_value(SecretId=secret_arn)["SecretString"])
    except Exception as exc:
        raise EarthdataError(f"cannot read the Earthdata secret: {exc}") from None
    keys = value if "accessKeyId" in value else fetch(value.get("username", ""), value.get("password", ""))
    credentials = h5coro_credentials(keys)
    _cache[secret_arn] = (_expiry(keys.get("expiration")), credentials)
    return credentials


def _expiry(text: str | None) -> float:
    """Expiry as a Unix time (NSIDC: ``2026-01-01 12:00:00+00:00``); unknown -> in 55 minutes."""
    if text:
        try:
            return dt.datetime.fromisoformat(text).timestamp()
        except ValueError:
            pass
    return time.time() + 3300.0
