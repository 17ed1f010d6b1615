#!/usr/bin/env python3
"""Creates one export on a segsync-emulator (seed dialect) and prints its download link.

    link.py BASE_URL API_KEY SEGMENT TYPE START END

The baseline rows of benchmarks/run fetch the same bytes segsync fetches, with curl.
Only ever talks to the emulator the benchmark started on 127.0.0.1.
"""
import json
import sys
import time
import urllib.request

base, key, segment, kind, start, end = sys.argv[1:7]
headers = {"Authorization": "Basic " + key, "Content-Type": "application/json"}


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.load(response)


body = {"segmentId": segment, "type": kind, "format": "json", "timeRange": {"start": start, "end": end}}
created = call("POST", "/segments/v1/exports", body)
operation = created.get("operationId") or created["id"]
while True:
    status = call("GET", "/operations/v1/" + operation)
    if status.get("state") == "COMPLETED":
        print(status["results"]["downloadUrl"])
        break
    if status.get("state") == "FAILED":
        sys.exit("the export failed: %s" % status)
    time.sleep(0.2)
