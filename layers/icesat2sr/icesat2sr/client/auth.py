"""Authentication for a deployed API (template.yaml: SigV4 by default, or an API key).

:class:`SigV4` is a ``requests`` auth that signs each request with the caller's AWS credentials
(the default boto3 chain: environment, profile, SSO, instance role) for API Gateway
(``execute-api``). It works with our client (``icesat2.init(url, auth=SigV4())``) and with the
official one (``sliderule.sliderule.slideruleSession.session.auth = SigV4()``).
"""

from __future__ import annotations

import re

_REGION = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com", re.ASCII)


class SigV4:
    """Sign requests with AWS Signature Version 4 for ``execute-api``.

    Parameters
    ----------
    region : str, optional
        The API's region; by default read from its ``*.execute-api.<region>.amazonaws.com`` URL.
    credentials : botocore.credentials.Credentials, optional
        By default the boto3 credential chain's.
    """

    def __init__(self, region: str | None = None, credentials=None):
        if credentials is None:
            import botocore.session

            credentials = botocore.session.get_session().get_credentials()
            if credentials is None:
                raise ValueError("no AWS credentials found for signing (environment, profile or role)")
        self.region, self.credentials = region, credentials

    def __call__(self, request):
        """Sign ``request`` (a prepared ``requests`` request) with SigV4 for API Gateway; return it."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        region = self.region or _region_of(request.url)
        signed = AWSRequest(method=request.method, url=request.url, data=request.body or b"",
                            headers={k: v for k, v in request.headers.items()
                                     if k.lower() in ("content-type", "x-sliderule-client")})
        SigV4Auth(self.credentials.get_frozen_credentials(), "execute-api", region).add_auth(signed)
        request.headers.update({k: v for k, v in signed.headers.items()
                                if k.lower() in ("authorization", "x-amz-date", "x-amz-security-token")})
        return request


def _region_of(url: str) -> str:
    match = _REGION.search(url)
    if match is None:
        raise ValueError(f"cannot tell the region of {url}: pass SigV4(region=...)")
    return match[1]
