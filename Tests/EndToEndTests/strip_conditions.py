#!/usr/bin/env python3
"""A reverse proxy that forwards every request to an S3 server but drops `If-None-Match`
and `If-Match`: a store that ignores conditional writes, for BucketOutputTests. Put it in
front of a moto server that does not check signatures (a dropped header is a signed one).

    strip_conditions.py PORT UPSTREAM [--reject] [--log FILE]

With --log it appends "METHOD PATH" for every request to FILE (what a test counts).
With --reject it answers a request that carries either header `501 NotImplemented`, as
AWS words it for a header it does not implement: a store without conditional writes
(Backblaze B2, by its documentation). Prints "listening" once it accepts connections.
"""
import http.client
import http.server
import sys
import urllib.parse

port, upstream = int(sys.argv[1]), urllib.parse.urlparse(sys.argv[2])
rejecting = "--reject" in sys.argv[3:]
log = sys.argv[sys.argv.index("--log") + 1] if "--log" in sys.argv[3:] else None
dropped = {"if-none-match", "if-match"}
NOT_IMPLEMENTED = """<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message><Header>%s</Header></Error>"""


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        if log:
            with open(log, "a") as file:
                file.write("%s %s\n" % (self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conditions = [k for k in self.headers.keys() if k.lower() in dropped]
        if rejecting and conditions:
            data = (NOT_IMPLEMENTED % conditions[0]).encode()
            self.send_response(501, "Not Implemented")
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        connection.request(self.command, self.path, body=body, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
        self.send_response(answer.status, answer.reason)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        connection.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

    def log_message(self, *arguments):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Proxy)
print("listening", flush=True)
server.serve_forever()
