#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A mock etcd v3 JSON gateway that misbehaves on /v3/kv/range the way no real etcd can.

    mock-etcd.py PORTFILE MODE LOGFILE

Listens on 127.0.0.1 (a free port, written to PORTFILE), answers /v3/kv/range by MODE and
appends one line per range request to LOGFILE:

    below     more:true with a key below the start key asked for
    outside   more:true with a key at or after range_end
    endless   more:true with one new key inside the range on every page: never ends
    empty     more:true and no keys
    repeat    more:true with the same first key whatever start is asked for

Every other path answers gRPC Unimplemented. Used by tests/test-cluster.c ("mock etcd").
"""
import base64
import http.server
import json
import sys

port_file, mode, log_file = sys.argv[1], sys.argv[2], sys.argv[3]


def b64(s):
    return base64.b64encode(s).decode()


def record(key):
    return {"key": b64(key), "value": b64(b'{"name":"x"}'), "mod_revision": "2", "create_revision": "1"}


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        if self.path != "/v3/kv/range":
            self.answer(501, {"error": "not implemented", "code": 12, "message": "not implemented"})
            return
        start = base64.b64decode(req.get("key", ""))
        end = base64.b64decode(req.get("range_end", ""))
        with open(log_file, "a") as f:
            f.write("range %r\n" % start)
        if mode == "below":
            kvs = [record(start[:-1] if len(start) > 1 else b"/")]
        elif mode == "outside":
            kvs = [record(end + b"x")]
        elif mode == "endless":
            kvs = [record(start + b"a")]
        elif mode == "repeat":
            kvs = [record(b"/secrets-encrypt/nodes/a")]
        else:
            kvs = []
        self.answer(200, {"header": {"revision": "5"}, "kvs": kvs, "more": True, "count": "100000"})


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os  # noqa: E402

os.rename(port_file + ".tmp", port_file)
server.serve_forever()
