#!/usr/bin/env python3
"""Signs a table of requests with botocore's SigV4Auth / S3SigV4Auth at a fixed instant
and prints the table with botocore's headers as JSON: the oracle SigV4OracleTests holds
the Swift signer to, byte for byte. Exit status 3 (and a line on stderr) without botocore."""
import datetime
import json
import sys
from urllib.parse import quote

try:
    import botocore
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError as error:
    print(f"botocore is not installed for {sys.executable}: {error}", file=sys.stderr)
    sys.exit(3)

# 2026-11-28T13:05:09Z
EPOCH = 1795871109
botocore.auth.get_current_datetime = lambda: datetime.datetime.fromtimestamp(EPOCH, datetime.timezone.utc).replace(tzinfo=None)

KEY_ID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+token/with+slashes=="

CASES = [
    {"name": "get object, virtual-hosted, empty body",
     "method": "GET", "scheme": "https", "region": "eu-west-1", "host": "examplebucket.s3.eu-west-1.amazonaws.com", "path": "/photos/2026/cat.jpg"},
    {"name": "get object, path-style",
     "method": "GET", "scheme": "https", "region": "eu-west-1", "host": "s3.eu-west-1.amazonaws.com", "path": "/examplebucket/photos/cat.jpg"},
    {"name": "unicode, spaces and reserved characters in the key",
     "method": "GET", "scheme": "https", "region": "eu-west-1", "host": "s3.eu-west-1.amazonaws.com",
     "path": "/examplebucket/exports/2026 ü/naïve file (1)+x=y&z;a,b:c@d$e!~'*.csv"},
    {"name": "list with repeated, unsorted query keys and reserved characters",
     "method": "GET", "scheme": "https", "host": "examplebucket.s3.us-east-1.amazonaws.com", "path": "/",
     "query": [["prefix", "exports/2026 ü/"], ["list-type", "2"], ["a", "2"], ["a", "1"], ["continuation-token", "1/abc+def=="],
               ["max-keys", "3"], ["weird", "a b/c~d*e'f(g)!h+i=j&k"]]},
    {"name": "empty query value (uploads) and POST with empty body",
     "method": "POST", "scheme": "https", "host": "examplebucket.s3.us-east-1.amazonaws.com", "path": "/big.bin",
     "query": [["uploads", ""]], "headers": [["x-amz-checksum-algorithm", "SHA256"]], "body": ""},
    {"name": "put with a body hash and checksum header",
     "method": "PUT", "scheme": "https", "host": "examplebucket.s3.us-east-1.amazonaws.com", "path": "/hello.txt",
     "headers": [["x-amz-checksum-sha256", "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="], ["If-None-Match", "*"], ["Content-Type", "text/plain"]],
     "body": "hello\n", "payload": "hash"},
    {"name": "upload part with query and a computed body hash",
     "method": "PUT", "scheme": "https", "host": "s3.us-east-1.amazonaws.com", "path": "/examplebucket/big.bin",
     "query": [["uploadId", "VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA"], ["partNumber", "10"]],
     "body": "x" * 1000},
    {"name": "session token",
     "method": "HEAD", "scheme": "https", "region": "eu-central-1", "host": "examplebucket.s3.eu-central-1.amazonaws.com", "path": "/a/b.csv",
     "token": TOKEN, "headers": [["x-amz-checksum-mode", "ENABLED"]]},
    {"name": "unsigned payload",
     "method": "PUT", "scheme": "https", "host": "examplebucket.s3.us-east-1.amazonaws.com", "path": "/stream.bin",
     "headers": [["Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="]], "body": "streamed", "payload": "unsigned"},
    {"name": "header values with whitespace, mixed-case and repeated names",
     "method": "PUT", "scheme": "https", "host": "examplebucket.s3.us-east-1.amazonaws.com", "path": "/meta.txt",
     "headers": [["X-Amz-Meta-Note", "  a   b \t c  "], ["x-amz-meta-twice", "one"], ["X-AMZ-META-TWICE", " two  too "],
                 ["If-Match", "\"9b2cf535f27731c974343645a3985328\""]],
     "body": "", "token": TOKEN},
    {"name": "loopback endpoint with a port over http",
     "method": "DELETE", "scheme": "http", "host": "127.0.0.1", "port": 9000, "path": "/bucket/key with spaces",
     "query": [["uploadId", "2~abc"]]},
    {"name": "STS AssumeRoleWithWebIdentity form POST (service sts)",
     "service": "sts", "method": "POST", "scheme": "https", "host": "sts.us-east-1.amazonaws.com", "path": "/",
     "headers": [["Content-Type", "application/x-www-form-urlencoded; charset=utf-8"]],
     "body": "Action=AssumeRoleWithWebIdentity&Version=2011-06-15"},
]


class UnsignedPayloadConfig:
    s3 = {"payload_signing_enabled": False}


def sign(case):
    service = case.setdefault("service", "s3")
    region = case.setdefault("region", "us-east-1")
    case.setdefault("query", [])
    case.setdefault("headers", [])
    case.setdefault("payload", "body")
    host = case["host"] + (f":{case['port']}" if "port" in case else "")
    url = f"{case['scheme']}://{host}{quote(case['path'], safe='/~')}"
    body = case.get("body")
    request = AWSRequest(method=case["method"], url=url, data=body.encode() if body is not None else None,
                         params=[tuple(pair) for pair in case["query"]] or None)
    for name, value in case["headers"]:
        request.headers[name] = value  # appends: repeated names stay repeated
    if case["payload"] == "unsigned":
        request.context["client_config"] = UnsignedPayloadConfig()
    signer_class = botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth
    signer_class(Credentials(KEY_ID, SECRET, case.get("token")), service, region).add_auth(request)
    case["expected"] = {name.lower(): request.headers[name] for name in
                        ["Authorization", "X-Amz-Date", "X-Amz-Content-SHA256", "X-Amz-Security-Token"] if name in request.headers}
    return case


print(json.dumps({"botocore": botocore.__version__, "epoch": EPOCH, "accessKeyId": KEY_ID, "secretAccessKey": SECRET,
                  "cases": [sign(case) for case in CASES]}, indent=1, ensure_ascii=False))
