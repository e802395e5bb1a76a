"""SigV4 signing of our client's requests (what a default deployment requires)."""

import datetime as dt
import hashlib
import hmac
from unittest import mock

import pytest
import requests
from botocore.credentials import Credentials

from icesat2sr.client.auth import SigV4

URL = "https://abc123.execute-api.us-west-2.amazonaws.com/prod/source/atl06p"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def test_signature_is_aws_sigv4_for_execute_api():
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "token")
    body = b'{"resources": []}'
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
        prepared = requests.Request("POST", URL, data=body, headers={"Content-Type": "application/json"},
                                    auth=SigV4(credentials=creds)).prepare()
    amz_date = "20260102T030405Z"
    assert prepared.headers["X-Amz-Date"] == amz_date and prepared.headers["X-Amz-Security-Token"] == "token"
    # the signature, computed independently from the SigV4 specification
    signed = "content-type;host;x-amz-date;x-amz-security-token"
    canonical = "\n".join(["POST", "/prod/source/atl06p", "", "content-type:application/json",
                           "host:abc123.execute-api.us-west-2.amazonaws.com", f"x-amz-date:{amz_date}",
                           "x-amz-security-token:token", "", signed, hashlib.sha256(body).hexdigest()])
    scope = "20260102/us-west-2/execute-api/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = b"AWS4" + creds.secret_key.encode()
    for part in ("20260102", "us-west-2", "execute-api", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    assert prepared.headers["Authorization"] == (f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, "
                                                 f"SignedHeaders={signed}, Signature={signature}")


def test_region_comes_from_the_url_or_must_be_given():
    creds = Credentials("a", "b")
    with pytest.raises(ValueError, match="region"):
        requests.Request("GET", "http://127.0.0.1:9081/source/version", auth=SigV4(credentials=creds)).prepare()
    ok = requests.Request("GET", "http://127.0.0.1:9081/x", auth=SigV4("eu-west-1", creds)).prepare()
    assert "/eu-west-1/execute-api/" in ok.headers["Authorization"]
