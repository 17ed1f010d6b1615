"""Signs a table of S3 requests with botocore's S3SigV4Auth at a fixed instant and prints
them as JSON: the oracle segsync's own SigV4 signer is checked against.

Input (stdin): {"time": "2026-12-04T12:00:00Z", "cases": [{"method", "url", "headers":
[[name, value]], "body" (text), "signPayload" (bool), "key", "secret", "token", "region"}]}
Output (stdout): [{"authorization", "x-amz-date", "x-amz-content-sha256"}] in order.
"""
import datetime
import json
import sys
import types
from unittest import mock

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

table = json.load(sys.stdin)
instant = datetime.datetime.strptime(table["time"], "%Y-%m-%dT%H:%M:%SZ")
out = []
for case in table["cases"]:
    request = AWSRequest(method=case["method"], url=case["url"], data=case["body"].encode("utf-8"))
    for name, value in case["headers"]:
        request.headers[name] = value
    request.context["client_config"] = types.SimpleNamespace(s3={"payload_signing_enabled": case["signPayload"]})
    credentials = Credentials(case["key"], case["secret"], case.get("token"))
    with mock.patch("botocore.auth.get_current_datetime", return_value=instant):
        S3SigV4Auth(credentials, "s3", case["region"]).add_auth(request)
    out.append({name: request.headers[name] for name in ("Authorization", "X-Amz-Date", "X-Amz-Content-SHA256")})
json.dump(out, sys.stdout)
