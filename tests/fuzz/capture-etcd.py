#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Capture real etcd v3 JSON-gateway answers for the fuzz-etcd-response seeds.

    tests/fuzz/capture-etcd.py URL     e.g. http://127.0.0.1:21379

URL must be a FRESH, EMPTY single-member etcd (revision 1; the script relies on the revisions its
own writes get: /registry/secrets/default/a lands at mod_revision 7, the revision the fuzz
target's update expects). Start one with, for example:

    etcd --data-dir "$(mktemp -d)" --listen-client-urls http://127.0.0.1:21379 \\
         --advertise-client-urls http://127.0.0.1:21379 --listen-peer-urls http://127.0.0.1:21380 \\
         --initial-advertise-peer-urls http://127.0.0.1:21380 \\
         --initial-cluster default=http://127.0.0.1:21380 --max-request-bytes 1048576

Every request is the one the library sends for the target's operation (module/store/store-etcd.c:
range with key/range_end/limit, count_only, get, the compare/success/failure txn of an update,
lease grant/keepalive/revoke), plus malformed and refused requests for etcd's error bodies. Each
answer is written to tests/fuzz/data/etcd-v3.4/NN-NAME.http as "STATUS OP\\n" and the body as
received; gen-seeds-data.py turns them into seeds. The committed captures came from Debian's
etcd-server 3.4.23.
"""

import base64
import json
import os
import sys
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "etcd-v3.4")


def b64(b):
    return base64.b64encode(b if isinstance(b, bytes) else b.encode()).decode()


def prefix_end(p):
    b = bytearray(p.encode())
    while b and b[-1] == 0xFF:
        b.pop()
    b[-1] += 1
    return bytes(b)


VECTORS = json.load(open(os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "data",
                                      "k8s-encryption-vectors.json")))
ENC = {v["name"]: bytes.fromhex(v["stored_hex"]) for v in VECTORS}
PLAIN_SECRET = bytes.fromhex(VECTORS[0]["plaintext_hex"])  # a real Secret in kube's protobuf


class Etcd:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.n = 0
        os.makedirs(OUT, exist_ok=True)
        for f in os.listdir(OUT):
            os.unlink(os.path.join(OUT, f))

    def post(self, path, body, raw=False):
        data = body if raw else json.dumps(body, separators=(",", ":")).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def cap(self, name, op, path, body, raw=False):
        status, resp = self.post(path, body, raw)
        self.n += 1
        with open(os.path.join(OUT, "%02d-%s.http" % (self.n, name)), "wb") as f:
            f.write(b"%d %s\n" % (status, op.encode()) + resp)
        return status, resp

    def put(self, key, value):
        s, r = self.post("/v3/kv/put", {"key": b64(key), "value": b64(value)})
        assert s == 200, r
        return int(json.loads(r)["header"]["revision"])


def txn(items):
    """The library's txn_body(): items = [(key, expected, value or None for delete)]."""
    return {
        "compare": [{"target": "MOD", "result": "EQUAL", "key": b64(k), "mod_revision": str(e)} for k, e, _ in items],
        "success": [{"request_put": {"key": b64(k), "value": b64(v)}} if v is not None else
                    {"request_delete_range": {"key": b64(k)}} for k, _, v in items],
        "failure": [{"request_range": {"key": b64(k)}} for k, _, _ in items],
    }


def rng(key, end, limit=None, count_only=False):
    body = {"key": b64(key), "range_end": b64(end)}
    if limit:
        body["limit"] = str(limit)
    if count_only:
        body["count_only"] = True
    return body


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    c = Etcd(sys.argv[1])
    s, r = c.post("/v3/kv/range", rng(b"\0", b"\0"))
    if s != 200 or json.loads(r)["header"]["revision"] != "1":
        sys.exit("etcd at %s is not fresh (revision 1 expected): %s" % (sys.argv[1], r[:200]))

    S = "/registry/secrets/"
    A, B = S + "default/a", S + "default/b"
    # revisions 2..7: a cluster's first objects; /registry/secrets/default/a ends at revision 7
    c.put("/registry/configmaps/kube-system/extension-apiserver-authentication", b"k8s\0\n\x0f\n\x02v1\x12\tConfigMap")
    c.put(S + "default/0-identity", PLAIN_SECRET)
    c.put(S + "kube-system/k3s-serving", ENC["cbc-16byte-key-secret-proto"])
    c.put("/registry/namespaces/default", b"k8s\0\n\x0f\n\x02v1\x12\tNamespace")
    c.put(S + "default/c", ENC["secretbox-secret-proto"])
    assert c.put(A, ENC["cbc-32byte-key-short"]) == 7

    # the target's range: prefix /registry/secrets/, limit 10 (and the paging of read_page())
    c.cap("range-secrets", "range", "/v3/kv/range", rng(S, prefix_end(S), 10))
    c.cap("range-secrets-limit2", "range", "/v3/kv/range", rng(S, prefix_end(S), 2))
    c.cap("range-start-a", "range-start", "/v3/kv/range", rng(A, prefix_end(S), 2))
    c.cap("range-none", "range", "/v3/kv/range", rng("/registry/nothing/", prefix_end("/registry/nothing/"), 10))
    c.cap("range-all-from-nul", "range", "/v3/kv/range", rng(b"\0", b"\0", 3))
    c.cap("count-secrets", "count", "/v3/kv/range", rng(S, prefix_end(S), count_only=True))
    c.cap("count-none", "count", "/v3/kv/range", rng("/registry/nothing/", prefix_end("/registry/nothing/"),
                                                       count_only=True))
    c.cap("get-a", "get", "/v3/kv/range", {"key": b64(A)})
    c.cap("get-missing", "get", "/v3/kv/range", {"key": b64(B)})

    # update(): a at 7 -> "x", b created -> "y". First b appears elsewhere: conflict on b only,
    # then the retried txn of a alone succeeds; then both conflict (a now holds "x").
    c.put(B, b"someone else")  # revision 8
    c.cap("txn-conflict-b", "update", "/v3/kv/txn", txn([(A, 7, b"x"), (B, 0, b"y")]))
    c.cap("txn-a-alone-ok", "update", "/v3/kv/txn", txn([(A, 7, b"x")]))
    c.cap("txn-conflict-both", "update", "/v3/kv/txn", txn([(A, 7, b"x"), (B, 0, b"y")]))
    c.cap("txn-delete-b-ok", "delete", "/v3/kv/txn", txn([(B, 8, None)]))
    c.cap("txn-both-ok", "update", "/v3/kv/txn", txn([(A, 9, b"x2"), (B, 0, b"y")]))
    c.cap("txn-duplicate-key", "update", "/v3/kv/txn", txn([(A, 11, b"x"), (A, 11, b"y")]))
    c.cap("txn-too-many-ops", "update", "/v3/kv/txn", txn([(S + "k%d" % i, 0, b"v") for i in range(129)]))

    # HA records: put_cas / delete_cas on one key, leases
    H = "/secrets-encrypt/fuzz"
    c.cap("put-create-ok", "put", "/v3/kv/txn", txn([(H, 0, b"v")]))
    c.cap("put-create-conflict", "put", "/v3/kv/txn", txn([(H, 0, b"v")]))
    s, r = c.cap("lease-grant", "lease-grant", "/v3/lease/grant", {"TTL": "30"})
    lease = json.loads(r)["ID"]
    t = txn([(H, 12, b"w")])
    t["success"][0]["request_put"]["lease"] = lease
    c.cap("put-lease-ok", "put-lease", "/v3/kv/txn", t)
    c.cap("range-with-lease", "get", "/v3/kv/range", {"key": b64(H)})
    c.cap("lease-keepalive", "lease-keepalive", "/v3/lease/keepalive", {"ID": lease})
    c.cap("lease-revoke", "lease-revoke", "/v3/lease/revoke", {"ID": lease})
    c.cap("lease-revoke-again", "lease-revoke", "/v3/lease/revoke", {"ID": lease})
    c.cap("lease-keepalive-revoked", "lease-keepalive", "/v3/lease/keepalive", {"ID": lease})
    c.cap("lease-grant-zero-ttl", "lease-grant", "/v3/lease/grant", {"TTL": "0"})
    c.cap("delete-gone", "delete", "/v3/kv/txn", txn([(H, 13, None)]))

    # errors etcd really sends
    s, r = c.post("/v3/kv/range", rng(b"\0", b"\0"))
    rev = int(json.loads(r)["header"]["revision"])
    c.post("/v3/kv/compaction", {"revision": str(rev), "physical": True})
    c.cap("range-compacted", "range", "/v3/kv/range", dict(rng(S, prefix_end(S), 10), revision="3"))
    c.cap("range-future", "range", "/v3/kv/range", dict(rng(S, prefix_end(S), 10), revision=str(rev + 100)))
    c.cap("range-bad-json", "range", "/v3/kv/range", b"{\"key\":", raw=True)
    c.cap("range-bad-base64", "range", "/v3/kv/range", b"{\"key\":\"!!\"}", raw=True)
    c.cap("range-empty-key", "get", "/v3/kv/range", {"key": ""})
    c.cap("put-too-large", "put", "/v3/kv/txn", txn([(H, 0, b"z" * (1200 * 1024))]))
    c.cap("put-over-grpc-limit", "put", "/v3/kv/txn", txn([(H, 0, b"z" * (2 * 1024 * 1024))]))
    c.cap("unknown-path", "range", "/v3/kv/nope", {})
    c.cap("v3beta-range", "range", "/v3beta/kv/range", rng(S, prefix_end(S), 1))
    c.cap("maintenance-status", "count", "/v3/maintenance/status", {})
    c.cap("auth-disabled", "range", "/v3/auth/authenticate", {"name": "root", "password": "x"})

    # a value larger than typical (a 24 KiB Secret) and every-byte key
    c.put(S + "default/big", b"k8s:enc:aescbc:v1:key1:" + bytes(range(256)) * 96)
    c.put(S + "default/\u00e9\u6f22\U0001f600", b"")
    c.cap("range-big-and-unicode", "range", "/v3/kv/range", rng(S + "default/", prefix_end(S), 10))
    print("%d captures in %s" % (c.n, OUT))


if __name__ == "__main__":
    main()
