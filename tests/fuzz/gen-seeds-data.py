#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Seed corpus for the data fuzz targets: fuzz-envelope-read, fuzz-etcd-response, fuzz-settings,
fuzz-kine-rows (the config targets have gen-seeds.py).

    tests/fuzz/gen-seeds-data.py OUTDIR    write OUTDIR/<target>/ for the four targets
    tests/fuzz/gen-seeds-data.py --merge   and minimise them, with the committed corpus, into
                                           tests/fuzz/corpus/<target>/ (libFuzzer -merge=1; needs
                                           `make fuzz`, and `make tests` for kine-seed), then add
                                           the regress-* inputs

Where the seeds come from:
  fuzz-envelope-read  the library's own values for every provider and key of the target's
                      configurations (SE_FUZZ_WRITE_SEEDS, fixed IVs), the reference vectors
                      (tests/data/k8s-encryption-vectors.json), KMS v1/v2 values, and corrupted
                      variants of each: cut at every field boundary, flipped bits in the IV, body
                      and tag or padding, other key names and prefixes. First byte: the target's
                      configuration.
  fuzz-etcd-response  real etcd 3.4.23 JSON-gateway answers (tests/fuzz/data/etcd-v3.4/, from
                      capture-etcd.py) to the requests each target operation sends, each also as
                      the answer to every other operation; multi-answer scripts (a txn conflict
                      then the retried txn, a 503 then the answer, two transactions for a key
                      named twice, raw HTTP); damaged variants (truncated, numbers as JSON
                      numbers or out of range, bad base64, wrong types, deep nesting). The 503
                      and raw answers are made up (one etcd member cannot lose its leader).
  fuzz-settings       the README's example and the settings files the integration tests and the
                      explorer write, every key with good and bad values, and YAML shapes
                      (flow, quoted, tags, anchors, multi-document, BOM, CRLF, NUL escapes).
  fuzz-kine-rows      kine's real row sequences (reference k8s-encryption-at-rest.md §5.2):
                      k3s's first rows, creates, updates, deletes in the v0.15 and v0.16 styles,
                      gap rows, compaction; the rows of databases written by tests/tools/kine-seed
                      (kine's DDL and writes); under every schema variant, with WAL, a held lock
                      and updates; each hostile SQL directive; hostile rows; damaged pages; the
                      kine-seed database files themselves (page size 512), whole and damaged.

The regress-* inputs are kept whether or not they add coverage. fuzz-kine-rows' two reproduce
known defects of the reader that the target checks only with SE_FUZZ_KNOWN_DEFECTS=1:
regress-nul-names-paging (names cut at a NUL byte make the paging loop run forever) and
regress-utf16-prefix-range (a UTF-16 database lists a key outside the prefix). Output is
deterministic.
"""

import base64
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "tests", "fuzz")
CORPUS = os.path.join(HERE, "corpus")
CAPTURES = os.path.join(HERE, "data", "etcd-v3.4")
VECTORS = json.load(open(os.path.join(ROOT, "tests", "data", "k8s-encryption-vectors.json")))
TARGETS = ("fuzz-envelope-read", "fuzz-etcd-response", "fuzz-settings", "fuzz-kine-rows")


def b64(b):
    return base64.b64encode(b if isinstance(b, bytes) else b.encode()).decode()


# ---- fuzz-envelope-read --------------------------------------------------------------------------

N_CONFIGS = 4  # fuzz-envelope-read.c: three configurations and kube's default identity


def pb_field(num, data):
    """A length-delimited protobuf field (field numbers < 16, lengths < 2^14)."""
    n = len(data)
    ln = bytes([n]) if n < 0x80 else bytes([(n & 0x7F) | 0x80, n >> 7])
    return bytes([(num << 3) | 2]) + ln + data


def envelope_seeds(out):
    seeds = {}
    lib = tempfile.mkdtemp(prefix="envelope.")
    binary = os.path.join(ROOT, "build-fuzz", "fuzz-envelope-read")
    subprocess.run([binary], check=True, env=dict(os.environ, SE_FUZZ_WRITE_SEEDS=lib), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    values = {}
    for n in sorted(os.listdir(lib)):
        with open(os.path.join(lib, n), "rb") as f:
            values[n] = f.read()
    shutil.rmtree(lib)
    seeds.update(values)

    # reference vectors under every configuration
    for v in VECTORS:
        for c in range(N_CONFIGS):
            seeds["vector-%s-c%d" % (v["name"], c)] = bytes([c]) + bytes.fromhex(v["stored_hex"])

    # KMS: v2 is an EncryptedObject protobuf, v1 a 2-byte DEK length, the DEK, the data
    eo = pb_field(1, b"\x01" * 40) + pb_field(2, b"key-id-1") + pb_field(3, b"\x02" * 32) + \
        pb_field(4, pb_field(1, b"kms.kubernetes.io/x") + pb_field(2, b"y"))
    kms = {
        "kms-v2": b"k8s:enc:kms:v2:vault:" + eo,
        "kms-v2-empty": b"k8s:enc:kms:v2:vault:",
        "kms-v2-other": b"k8s:enc:kms:v2:other:" + eo,
        "kms-v1": b"k8s:enc:kms:v1:vault:" + struct.pack(">H", 32) + b"\x03" * 32 + b"\x04" * 48,
        "kms-v1-short": b"k8s:enc:kms:v1:vault:\xff\xff\x00",
        "kms-no-name": b"k8s:enc:kms:v2::" + eo,
    }
    for k, v in kms.items():
        for c in range(N_CONFIGS):
            seeds["%s-c%d" % (k, c)] = bytes([c]) + v

    # corrupted variants of the library's values
    prefixes = (b"k8s:enc:aescbc:v1:", b"k8s:enc:aesgcm:v1:", b"k8s:enc:secretbox:v1:")
    for n, v in values.items():
        if not any(n.endswith(s) for s in ("-short", "-empty", "-block", "-secret")):
            continue
        c, val = v[:1], v[1:]
        pre = next((p for p in prefixes if val.startswith(p)), None)
        if pre is None:
            continue
        name_end = val.index(b":", len(pre)) + 1 if b":" in val[len(pre):] else len(pre)
        # "a:b" is a key name with a colon: the first colon is not the end of it
        body = len(val) - name_end
        variants = {
            "cut-prefix": val[:len(pre)],
            "cut-name": val[:name_end - 1],
            "cut-name-colon": val[:name_end],
            "cut-iv-half": val[:name_end + 6],
            "cut-1": val[:-1],
            "cut-16": val[:-16] if body > 16 else val[:name_end + 1],
            "flip-iv": val[:name_end] + bytes([val[name_end] ^ 1]) + val[name_end + 1:] if body else val,
            "flip-mid": val[:name_end + body // 2] + bytes([val[name_end + body // 2] ^ 0x80]) +
            val[name_end + body // 2 + 1:] if body else val,
            "flip-last": val[:-1] + bytes([val[-1] ^ 1]),
            "plus-1": val + b"\x00",
            "plus-16": val + b"\x10" * 16,
            "v2": val.replace(b":v1:", b":v2:", 1),
            "upper": val.replace(pre, pre.upper(), 1),
            "name-a": pre + b"a:" + val[name_end:],
            "name-ab": pre + b"a:b:" + val[name_end:],
            "name-empty": pre + b":" + val[name_end:],
            "name-key2": pre + b"key2:" + val[name_end:],
            "name-s": pre + b"s:" + val[name_end:],
        }
        for k, x in variants.items():
            seeds["%s-%s" % (n, k)] = c + x

    # prefixes alone, and plaintexts for the identity paths
    edge = [b"", b"k8s:enc:", b"k8s:enc:aescbc:v1:", b"k8s:enc:aescbc:v1:key1", b"k8s:enc:aescbc:v1:key1:",
            b"k8s:enc:aescbc:v1:a:b:", b"k8s:enc:secretbox:v1:s::", b"k8s:enc:unknown:v1:x:" + b"\x00" * 32,
            b"k8s:enc:identity:v1:x", b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret", b"plain text", b"\xff" * 40]
    for i, v in enumerate(edge):
        for c in range(N_CONFIGS):
            seeds["edge-%d-c%d" % (i, c)] = bytes([c]) + v
    return write_seeds(out, "fuzz-envelope-read", seeds)


# ---- fuzz-etcd-response --------------------------------------------------------------------------

ETCD_OPS = ["range", "get", "count", "update", "range-start", "put-lease", "put", "delete", "lease-grant",
            "lease-keepalive", "lease-revoke", "update-dup"]  # fuzz-etcd-response.c's op enum
FIRST_STATUS = [200, 200, 200, 400, 404, 500, 429, 503]
NEXT_STATUS = [200, 200, 200, 200, 400, 404, 500, 503, 502, 504, 429, 401, 405, 412, 200, "raw"]
SEP = b"\n=====\n"


def etcd_op_byte(op, status=200):
    i = ETCD_OPS.index(op)
    s = FIRST_STATUS.index(status) if status in FIRST_STATUS else 3  # any other status: 400
    return bytes([((i >> 2) << 5) | (s << 2) | (i & 3)])


def next_answer(status, body):
    return SEP + bytes([NEXT_STATUS.index(status)]) + body


def load_captures():
    caps = []
    for n in sorted(os.listdir(CAPTURES)):
        with open(os.path.join(CAPTURES, n), "rb") as f:
            head, _, body = f.read().partition(b"\n")
        status, op = head.decode().split(" ")
        caps.append((n[:-len(".http")], int(status), op, body))
    return caps


def etcd_seeds(out):
    seeds = {}
    caps = load_captures()
    byname = {n.split("-", 1)[1]: (s, op, body) for n, s, op, body in caps}
    for n, status, op, body in caps:
        seeds[n] = etcd_op_byte(op, status) + body
        if status not in FIRST_STATUS:  # also with its real status, as a second answer after a 503
            seeds[n + "-after-503"] = etcd_op_byte(op, 503) + UNAVAILABLE + next_answer(status, body)
        for other in ETCD_OPS:
            if other != op:
                seeds["%s-as-%s" % (n, other)] = etcd_op_byte(other, 200) + body

    def cap(name):
        return byname[name][2]

    scripts = {
        # the compare of b fails, a's holds: the library retries a alone
        "script-update-conflict-then-ok": etcd_op_byte("update") + cap("txn-conflict-b") +
        next_answer(200, cap("txn-a-alone-ok")),
        # a leader change, then the failure branch shows our own value landed: written
        "script-update-503-then-landed": etcd_op_byte("update", 503) + UNAVAILABLE +
        next_answer(200, cap("txn-conflict-both")),
        "script-update-dup-two-txns": etcd_op_byte("update-dup") + cap("txn-both-ok") +
        next_answer(200, cap("txn-a-alone-ok")),
        "script-update-dup-conflict": etcd_op_byte("update-dup") + cap("txn-conflict-b") +
        next_answer(200, cap("txn-a-alone-ok")) + next_answer(200, cap("txn-a-alone-ok")),
        "script-range-503-then-ok": etcd_op_byte("range", 503) + UNAVAILABLE + next_answer(200, cap("range-secrets")),
        "script-get-502-then-ok": etcd_op_byte("get", 503) + b"" + next_answer(502, b"Bad Gateway") +
        next_answer(200, cap("get-a")),
        "script-range-too-large": etcd_op_byte("range", 503) + UNAVAILABLE + next_answer(
            "raw", b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n{\"kvs\":["),
        "script-raw-chunked": etcd_op_byte("count", 503) + UNAVAILABLE + next_answer(
            "raw", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"cou\r\n0\r\n\r\n"),
        "script-raw-garbage": etcd_op_byte("get", 503) + UNAVAILABLE + next_answer("raw", b"\x16\x03\x01\x00\xa5"),
        "script-delete-retried": etcd_op_byte("delete", 503) + UNAVAILABLE + next_answer(200, cap("delete-gone")),
        "script-keepalive-504": etcd_op_byte("lease-keepalive", 503) + UNAVAILABLE +
        next_answer(504, b"") + next_answer(200, cap("lease-keepalive")),
        "script-revoke-404": etcd_op_byte("lease-revoke", 404) + cap("lease-revoke-again"),
        "script-put-lease-conflict": etcd_op_byte("put-lease") + cap("put-create-conflict"),
        "script-sep-at-end": etcd_op_byte("range") + cap("range-secrets") + SEP,
    }
    seeds.update(scripts)

    # damaged answers
    rs = cap("range-secrets").decode()
    damaged = {
        "range": [rs[:len(rs) // 2], rs.replace('"mod_revision":"3"', '"mod_revision":3'),
                  rs.replace('"mod_revision":"3"', '"mod_revision":"9223372036854775808"'),
                  rs.replace('"mod_revision":"3"', '"mod_revision":-3'),
                  rs.replace('"mod_revision":"3"', '"mod_revision":"3x"'),
                  rs.replace('"mod_revision":"3"', '"mod_revision":1e30'),
                  rs.replace('"key":"L3Jl', '"key":"!!!L3Jl', 1), rs.replace('"key":"L3Jl', '"key":null,"x":"', 1),
                  rs.replace('"kvs":[', '"kvs":{"a":[', 1) + "}", rs.replace('"kvs":[', '"kvs":[7,', 1),
                  rs.replace('"header"', '"more":"true","header"', 1),
                  rs.replace('"header"', '"more":true,"header"', 1),
                  rs.replace('"value":"', '"value":"=', 1), rs.replace('"value":"', '"value":"a\\u0000', 1),
                  '{"kvs":[' + ",".join('{"key":"%s"}' % b64("/registry/secrets/k%d" % i) for i in range(11)) + "]}",
                  '{"kvs":[{"key":"%s","value":"%s"}]}' % (b64("/registry/secrets/a\0b"), b64("v")),
                  "[" * 70 + "]" * 70, '{"a":' * 70 + "1" + "}" * 70, "{}", "null", "[]", '"x"', "{} {}",
                  '{"kvs":[]} trailing', "\ufeff{}", '{"kvs":[{"key":"' + "QUFB" * 3000 + '"}]}'],
        "count": ['{"count":"-1"}', '{"count":"18446744073709551615"}', '{"count":1.5}', '{"count":true}',
                  '{"count":"12","count":"13"}', '{"count":"0x10"}', '{"count":" 5"}'],
        "get": [cap("get-a").decode().replace("ZGVmYXVsdC9h", "ZGVmYXVsdC9i"),
                cap("get-a").decode().replace('"kvs":[', '"kvs":[{"key":"eA=="},', 1)],
        "update": ['{"succeeded":true,"header":{"revision":"0"}}', '{"succeeded":true}',
                   '{"succeeded":false,"header":{"revision":"9"},"responses":[{}]}',
                   '{"succeeded":false,"header":{"revision":"9"},"responses":[{"response_range":{}},'
                   '{"response_range":{}}]}',
                   '{"succeeded":"yes","header":{"revision":"9"}}', '{"header":[],"responses":{}}'],
        "lease-grant": ['{"ID":"0","TTL":"30"}', '{"ID":"1","TTL":"-1"}', '{"ID":"1","TTL":"30","error":"x"}',
                        '{"ID":1,"TTL":30}', '{"error":""}'],
        "lease-keepalive": ['{"error":{"grpc_code":5,"message":"lease not found"}}', '{"error":{"code":14}}',
                            '{"result":{"TTL":"0"}}', '{"result":[]}', '{"error":"x"}'],
        "lease-revoke": ['{"error":"x","code":5,"message":"etcdserver: requested lease not found"}'],
    }
    for op, bodies in damaged.items():
        for i, b in enumerate(bodies):
            seeds["damaged-%s-%d" % (op, i)] = etcd_op_byte(op) + b.encode()
    errors = [(400, {"code": 3}), (400, {"error": "x", "code": 11}), (500, {"code": 13, "message": "internal"}),
              (503, {"code": 14, "message": "etcdserver: leader changed"}), (404, {"code": 5}),
              (429, {"code": 8, "error": "too many requests"}), (400, {"code": "11"}), (400, {"code": 99999999999}),
              (400, {"code": -1}), (500, {"message": "no code"})]
    for i, (status, body) in enumerate(errors):
        seeds["error-%d" % i] = etcd_op_byte("range", status) + json.dumps(body).encode()
    return write_seeds(out, "fuzz-etcd-response", seeds)


UNAVAILABLE = b'{"error":"etcdserver: leader changed","message":"etcdserver: leader changed","code":14}'


# ---- fuzz-settings -------------------------------------------------------------------------------

def settings_seeds(out):
    seeds = {}
    # the README's example; the files the integration tests and the explorer write
    seeds["readme"] = ("state-dir: /var/lib/secrets-encrypt\n"
                       "datastore-endpoint: sqlite:///var/lib/rancher/k3s/server/db/state.db\nunit: k3s.service\n")
    base = "state-dir: /tmp/se.x1/state\nnode-name: node-1\ndatastore-endpoint: sqlite:///tmp/se.x1/db.sqlite\n" \
           "unit: stand-in.service\n"
    seeds["it-settings"] = base
    seeds["it-concurrency"] = base + "timeout: 30s\nreencrypt-rate: 200\n"
    seeds["it-restore-key"] = base + "removed-key-retention: 7d\n"
    seeds["it-fleet"] = base.replace("node-1", "fleet-node-1") + \
        "hooks-dir: /tmp/se.x1/hooks.d\nmetrics-file: /tmp/se.x1/metrics/secrets-encrypt.prom\n"
    seeds["it-ha"] = ("state-dir: /tmp/se.x1/s2/cred\nnode-name: server-2\n"
                      "datastore-endpoint: http://127.0.0.1:23791,http://127.0.0.1:23793,http://127.0.0.1:23795\n"
                      "unit: stand-in.service\ntoken-file: /tmp/se.x1/token\ntimeout: 2m\n")
    seeds["it-hook-systemd"] = base + "timeout: 5m\nreencrypt-rate: 50\nauto-advance: true\n"
    seeds["it-etcd-tls"] = ("datastore-endpoint: https://10.0.0.1:2379,https://10.0.0.2:2379\n"
                            "datastore-cafile: /var/lib/rancher/k3s/server/tls/etcd/server-ca.crt\n"
                            "datastore-certfile: /var/lib/rancher/k3s/server/tls/etcd/client.crt\n"
                            "datastore-keyfile: /var/lib/rancher/k3s/server/tls/etcd/client.key\n")
    seeds["explorer"] = base + "hooks-dir: /tmp/se.x1/hooks.d\nsecrets-encryption-provider: secretbox\n" \
        "reencrypt-rate: 300\n"
    seeds["all-keys"] = base + ("secrets-encryption-provider: aescbc\ndatastore-cafile: /a\ndatastore-certfile: /b\n"
                                "datastore-keyfile: /c\ntoken-file: /t\nhooks-dir: ''\nmetrics-file: ''\n"
                                "timeout: 1h30m5s\nreencrypt-rate: 12.5\nauto-advance: off\n"
                                "removed-key-retention: 0\n")
    values = {
        "timeout": ["10m", "90s", "1h30m", "0", "0s", "-1s", "1.5h", "99999999999h", "1ns", "1us", "1µs", "7d",
                    "1w", "", "m", "10", "10 m", "1h1h", "9223372036854775807ns"],
        "removed-key-retention": ["7d", "36h", "0", "1d12h", "-7d", "x", "18446744073709551616s"],
        "reencrypt-rate": ["0", "12.5", "1e308", "1e309", "nan", "inf", "-1", "-0", "0x10", " 5", "5 ", "", "1e-400"],
        "auto-advance": ["true", "yes", "on", "1", "True", "TRUE", "Yes", "On", "false", "no", "off", "0", "False",
                         "FALSE", "No", "Off", "y", "2", ""],
        "secrets-encryption-provider": ["aescbc", "secretbox", "aesgcm", "identity", "AESCBC", ""],
        "node-name": ["node-1", "/x", "-x", "a/b", "x-", "", "n\u00e9", "a" * 300],
        "datastore-endpoint": ["sqlite:///var/lib/rancher/k3s/server/db/state.db?_journal=WAL&cache=shared",
                               "sqlite://", "http://127.0.0.1:2379", "https://h1:2379,https://h2:2379", "mysql://x",
                               ""],
        "hooks-dir": ["", "/etc/secrets-encrypt/hooks.d"],
        "metrics-file": ["", "/var/lib/node_exporter/se.prom"],
        "state-dir": ["", "/", "relative/dir"],
    }
    for k, vs in values.items():
        for i, v in enumerate(vs):
            seeds["value-%s-%d" % (k, i)] = "%s: %s\n" % (k, json.dumps(v) if v == "" or v.strip() != v else v)
    shapes = {
        "flow": "{state-dir: /x, unit: u.service, timeout: 5m}\n",
        "quoted": "'state-dir': \"/x\"\n\"unit\": 'u.service'\n",
        "tags": "state-dir: !!str /x\ntimeout: !!str 5m\nreencrypt-rate: !!float 2\nauto-advance: !!bool true\n",
        "local-tag": "state-dir: !local /x\n",
        "anchor": "state-dir: &a /x\nhooks-dir: *a\n",
        "merge": "<<: {state-dir: /x}\n",
        "doc-markers": "---\nstate-dir: /x\n...\n",
        "multi-doc": "state-dir: /x\n---\nunit: y\n",
        "bom": "\ufeffstate-dir: /x\n",
        "crlf": "state-dir: /x\r\nunit: u.service\r\n",
        "tabs": "state-dir:\t/x\n",
        "comment-only": "# nothing\n",
        "empty": "",
        "null-doc": "~\n",
        "scalar-doc": "just a string\n",
        "list-doc": "- state-dir\n- /x\n",
        "nested": "state-dir:\n  a: b\n",
        "list-value": "state-dir: [/x]\n",
        "block-literal": "state-dir: |\n  /x\n",
        "block-folded": "node-name: >-\n  node\n  one\n",
        "dup": "state-dir: /x\nstate-dir: /y\n",
        "no-value": "state-dir:\n",
        "key-only": "state-dir\n",
        "nul-escape": "state-dir: \"/x\\0/etc\"\nnode-name: \"a\\0b\"\n",
        "unicode-escape": "node-name: \"\\u00e9\\U0001F600\"\n",
        "directive": "%YAML 1.1\n---\nstate-dir: /x\n",
        "tag-directive": "%TAG !e! tag:e,2020:\n---\nstate-dir: !e!x /x\n",
        "complex-key": "? state-dir\n: /x\n",
        "bad-indent": "state-dir: /x\n  unit: y\n",
        "unterminated": "state-dir: \"/x\n",
        "invalid-utf8": "node-name: \xff\xfe\n",
        "long-value": "state-dir: /" + "x" * 60000 + "\n",
        "many-keys": "".join("state-dir: /x%d\n" % i for i in range(3000)),
        "deep-flow": "state-dir: " + "[" * 500 + "]" * 500 + "\n",
    }
    for k, v in shapes.items():
        seeds["shape-" + k] = v
    seeds = {k: v.encode("utf-8", errors="surrogateescape") for k, v in seeds.items()}
    seeds["shape-invalid-utf8"] = b"node-name: \xff\xfe\n"
    seeds["shape-nul-byte"] = b"state-dir: /x\x00\nunit: y\n"
    return write_seeds(out, "fuzz-settings", seeds)


# ---- fuzz-kine-rows -------------------------------------------------------------------------------

class Kine:
    """kine's row log, written the way kine writes it (reference §5.2, tests/lib-kine.c)."""

    def __init__(self):
        self.rows = []  # [id, name, created, deleted, create_revision, prev_revision, lease, value, old_value]
        self.next_id = 1

    def current(self, name):
        rows = [r for r in self.rows if r[1] == name]
        return max(rows, key=lambda r: r[0]) if rows else None

    def insert(self, *cols):
        self.rows.append([self.next_id] + list(cols))
        self.next_id += 1
        return self.next_id - 1

    def create(self, name, value):
        c = self.current(name)
        assert not c or c[3]
        return self.insert(name, 1, 0, 0, c[0] if c else 0, 0, value, c[7] if c else None)

    def update(self, name, value):
        c = self.current(name)
        assert c and not c[3]
        return self.insert(name, 0, 0, c[0] if c[2] else c[4], c[0], c[6], value, c[7])

    def put(self, name, value):
        c = self.current(name)
        return self.update(name, value) if c and not c[3] else self.create(name, value)

    def delete(self, name, style):
        c = self.current(name)
        assert c and not c[3]
        if style == "v0.15":
            return self.insert(name, 0, 1, c[0] if c[2] else c[4], c[0], c[6], c[7], c[7])
        return self.insert(name, 0, 1, 0, c[0], 0, None, c[7])

    def gap(self):
        self.next_id += 1  # an id consumed by a writer that rolled back
        gid = self.next_id - 1
        self.rows.append([gid, "gap-%d" % gid, 0, 1, 0, 0, 0, None, None])
        return gid

    def compact(self, target):
        superseded = {r[5] for r in self.rows if r[0] <= target and r[1] != "compact_rev_key" and r[5] != 0}
        gone = superseded | {r[0] for r in self.rows if r[0] <= target and r[3] != 0}
        self.rows = [r for r in self.rows if r[0] not in gone]
        for r in self.rows:
            if r[1] == "compact_rev_key":
                r[5] = target  # kine's one in-place update


def k3s_start():
    k = Kine()
    k.create("compact_rev_key", b"")
    k.create("/registry/health", b'{"health":"true"}')
    return k


ENC = {v["name"]: bytes.fromhex(v["stored_hex"]) for v in VECTORS}
PLAIN = bytes.fromhex(VECTORS[0]["plaintext_hex"])


def histories():
    h = {}
    k = k3s_start()
    k.create("/registry/namespaces/default", b"k8s\0\n\x0f\n\x02v1\x12\tNamespace")
    k.create("/registry/secrets/default/a", ENC["cbc-32byte-key-short"])
    k.create("/registry/secrets/default/b", ENC["secretbox-short"])
    k.create("/registry/secrets/kube-system/k3s-serving", PLAIN)
    k.create("/registry/configmaps/default/c", b"k8s\0\n\x0f\n\x02v1\x12\tConfigMap")
    h["k3s-first-rows"] = k.rows

    k = k3s_start()
    for i in range(4):
        k.create("/registry/secrets/default/s%d" % i, ENC["cbc-32byte-key-short"])
    k.update("/registry/secrets/default/s0", ENC["cbc-rotation-key-A"])
    k.update("/registry/secrets/default/s0", ENC["cbc-rotation-key-B"])
    k.delete("/registry/secrets/default/s1", "v0.15")
    k.delete("/registry/secrets/default/s2", "v0.16")
    k.gap()
    k.create("/registry/secrets/default/s1", ENC["gcm-32byte-key-short"])  # after its tombstone
    k.update("/registry/secrets/default/s3", b"")
    h["rotation-delete-gap"] = [list(r) for r in k.rows]
    k.compact(9)
    h["compacted"] = k.rows

    k = k3s_start()
    for i in range(12):
        k.create("/registry/secrets/ns-%d/secret-%d" % (i % 3, i), b"k8s:enc:aescbc:v1:key1:" + bytes([i]) * 16)
    for i in range(0, 12, 3):
        k.update("/registry/secrets/ns-%d/secret-%d" % (i % 3, i), b"k8s:enc:aescbc:v1:key2:" + bytes([i]) * 16)
    k.delete("/registry/secrets/ns-1/secret-4", "v0.16")
    h["three-namespaces"] = k.rows
    return h


def kine_seed_db(path, count, extra=()):
    tool = os.path.join(ROOT, "build", "tests", "tools", "kine-seed")
    if not os.access(tool, os.X_OK):
        return False
    subprocess.run([tool, path, str(count), "--value-size", "60", "--seed", "7", "--namespaces", "2"] + list(extra),
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return True


def db_rows(path):
    db = sqlite3.connect(path)
    rows = [list(r) for r in db.execute("SELECT id, name, created, deleted, create_revision, prev_revision, lease, "
                                        "value, old_value FROM kine ORDER BY id")]
    db.close()
    return rows


def small_db_file(path):
    """The database as one file with 512-byte pages (small enough for -max_len)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = DELETE")
    db.execute("PRAGMA page_size = 512")
    db.execute("VACUUM")
    db.close()
    with open(path, "rb") as f:
        return f.read()


def k_len(n):
    return bytes([n]) if n < 0xFF else b"\xff" + struct.pack(">H", n)


def k_num(v):
    special = {None: 0x80, "0": 0x81, "1": 0x82, "abc": 0x8A}
    if isinstance(v, str) or v is None:
        return bytes([special[v]])
    if isinstance(v, bytes):
        return b"\x85"
    if isinstance(v, float):
        return {0.0: b"\x83", 1.5: b"\x84", 1e300: b"\x89"}[v]
    if 0 <= v < 0x60:
        return bytes([v])
    return b"\x8b" + struct.pack(">q", v)


def k_value(v):
    if v is None:
        return b"\x00"
    if isinstance(v, tuple):  # ("zero", index into ZEROBLOB_SIZES)
        return b"\x06" + bytes([v[1]])
    if isinstance(v, int):
        return b"\x04"
    if isinstance(v, str):
        v = v.encode()
        return b"\x03" + k_len(len(v)) + v
    if len(v) == 0:
        return b"\x01"
    return b"\x02" + k_len(len(v)) + v


NAME_PREFIXES = ["/registry/secrets/", "/registry/secrets/default/", "/registry/configmaps/default/", "/registry/"]


def k_name(n):
    if n is None:
        return b"\x00"
    if isinstance(n, int):
        return b"\x03" + struct.pack(">q", n)
    if isinstance(n, bytes):
        return b"\x04" + k_len(len(n)) + n
    if n == "compact_rev_key":
        return b"\x07"
    if n == "/registry/health":
        return b"\x08"
    raw = n.encode("utf-8", errors="surrogateescape")
    for i in (1, 0, 2, 3):
        p = NAME_PREFIXES[i].encode()
        if raw.startswith(p):
            rest = raw[len(p):]
            if i == 1 and len(rest) < 0x40:
                return bytes([0x20 + len(rest)]) + rest
            return bytes([0x10 + i]) + k_len(len(rest)) + rest
    return b"\x05" + k_len(len(raw)) + raw


def k_rows(rows, prev=0):
    out = b""
    for r in rows:
        rid = r[0]
        if isinstance(rid, int) and 0 <= rid - prev < 0x80:
            tag = bytes([rid - prev])
        elif rid is None:
            tag = b"\x80"
        else:
            tag = b"\x81" + struct.pack(">q", rid)
        out += tag + k_name(r[1]) + b"".join(k_num(x) for x in r[2:7]) + k_value(r[7]) + k_value(r[8])
        if isinstance(rid, int):
            prev = rid
    return out


def hostile_rows(first):
    """(name, rows) pairs of hostile rows, ids from first on."""
    S = "/registry/secrets/default/"
    i = first
    rows = {
        "null-name": [[i, None, 1, 0, 0, 0, 0, b"v", None]],
        "int-name": [[i, 12345, 1, 0, 0, 0, 0, b"v", None]],
        "blob-name": [[i, (S + "blob").encode(), 1, 0, 0, 0, 0, b"v", None]],
        "nul-name": [[i, S + "x\0y", 1, 0, 0, 0, 0, b"v", None]],
        "empty-name": [[i, "", 1, 0, 0, 0, 0, b"v", None]],
        "long-name": [[i, S + "n" * 300, 1, 0, 0, 0, 0, b"v", None]],
        "invalid-utf8-name": [[i, S + "\udcff\udcfe", 1, 0, 0, 0, 0, b"v", None]],
        "ff-names": [[i, "/registry/secrets/\udcff", 1, 0, 0, 0, 0, b"v", None],
                     [i + 1, "\udcff\udcff", 1, 0, 0, 0, 0, b"v", None],
                     [i + 2, "\udcff\udcff\udcff", 1, 0, 0, 0, 0, b"v", None]],
        "duplicate-id": [[i, S + "d1", 1, 0, 0, 0, 0, b"v", None], [i, S + "d2", 1, 0, 0, 0, 0, b"w", None]],
        "null-id": [[None, S + "n", 1, 0, 0, 0, 0, b"v", None]],
        "max-id": [[2**63 - 1, S + "max", 1, 0, 0, 0, 0, b"v", None], [None, S + "after-max", 1, 0, 0, 0, 0, b"v",
                                                                        None]],
        "negative-id": [[-5, S + "neg", 1, 0, 0, 0, 0, b"v", None]],
        "deleted-null": [[i, S + "a", 1, None, 0, 0, 0, b"v", None]],
        "deleted-text": [[i, S + "a", 1, "abc", 0, 0, 0, b"v", None], [i + 1, S + "b", 1, "0", 0, 0, 0, b"v", None]],
        "deleted-real": [[i, S + "a", 1, 0.0, 0, 0, 0, b"v", None], [i + 1, S + "b", 1, 1.5, 0, 0, 0, b"v", None]],
        "deleted-blob": [[i, S + "a", 1, b"\0", 0, 0, 0, b"v", None]],
        "created-text": [[i, S + "a", "abc", 0, 7, 0, 0, b"v", None]],
        "revisions-extreme": [[i, S + "a", 0, 0, 2**63 - 1, -(2**63), 1e300, b"v", None]],
        "value-null": [[i, S + "a", 1, 0, 0, 0, 0, None, None]],
        "value-text": [[i, S + "a", 1, 0, 0, 0, 0, "k8s:enc:aescbc:v1:key1:text", None]],
        "value-int": [[i, S + "a", 1, 0, 0, 0, 0, 42, None]],
        "value-1mib": [[i, S + "a", 1, 0, 0, 0, 0, ("zero", 3), None]],
        "value-64k": [[i, S + "a", 1, 0, 0, 0, 0, ("zero", 2), None]],
        "supersede-chain": [[i, S + "c", 1, 0, 0, 0, 0, b"1", None], [i + 1, S + "c", 0, 0, i, i, 0, b"2", b"1"],
                            [i + 2, S + "c", 0, 1, i, i + 1, 0, b"2", b"2"], [i + 3, S + "c", 1, 0, 0, i + 2, 0, b"3",
                                                                              b"2"]],
        "tombstone-newest": [[i, S + "t", 1, 0, 0, 0, 0, b"1", None], [i + 5, S + "t", 0, 1, 0, i, 0, None, b"1"]],
        "old-row-newer-prev": [[i, S + "p", 1, 0, 0, i + 1, 0, b"1", None], [i + 1, S + "p", 0, 0, i, i, 0, b"2",
                                                                           b"1"]],
        "prefix-edges": [[i, "/registry/secrets0", 1, 0, 0, 0, 0, b"v", None],
                         [i + 1, "/registry/secrets/", 1, 0, 0, 0, 0, b"v", None],
                         [i + 2, "/registry/secrets", 1, 0, 0, 0, 0, b"v", None],
                         [i + 3, "/registry/secrets/default/a", 0, 0, 0, 0, 0, b"v", None]],
    }
    return rows


DIRECTIVE_COUNT = 32  # fuzz-kine-rows.c DIRECTIVES[]


def kine_seeds(out):
    seeds = {}
    hist = histories()
    tmp = tempfile.mkdtemp(prefix="kine.")
    real_files = {}
    db = os.path.join(tmp, "seed.db")
    if kine_seed_db(db, 6):
        hist["kine-seed-6"] = db_rows(db)
        real_files["kine-seed-6"] = small_db_file(db)
        db2 = os.path.join(tmp, "seed2.db")
        kine_seed_db(db2, 3)
        kine_seed_db(db2, 3, ["--start", "1"])  # updates of keys that exist
        kine_seed_db(db2, 2, ["--prefix", "/registry/configmaps/"])
        hist["kine-seed-updates"] = db_rows(db2)
        real_files["kine-seed-updates"] = small_db_file(db2)
    else:
        print("note: build/tests/tools/kine-seed missing (make tests): no kine-seed rows or files", file=sys.stderr)
    shutil.rmtree(tmp)

    for name, rows in hist.items():
        body = k_rows(rows)
        for schema in range(8):
            seeds["%s-schema%d" % (name, schema)] = bytes([schema << 2]) + body
        seeds[name + "-wal"] = b"\x20" + body
        seeds[name + "-lock"] = b"\x40" + body
        seeds[name + "-wal-lock"] = b"\x60" + body
        seeds[name + "-update"] = b"\x80" + body
        seeds[name + "-update-wal"] = b"\xa0" + body
        seeds[name + "-update-schema3"] = bytes([0x80 | 3 << 2]) + body

    base = hist["rotation-delete-gap"]
    body = k_rows(base)
    last = max(r[0] for r in base)
    for d in range(DIRECTIVE_COUNT):
        seeds["directive-%02d" % d] = b"\x80" + body + bytes([0xC0 + d])
        seeds["directive-%02d-then-rows" % d] = b"\x00" + k_rows(base[:4]) + bytes([0xC0 + d]) + k_rows(base[4:],
                                                                                                        base[3][0])
    for name, rows in hostile_rows(last + 1).items():
        seeds["hostile-" + name] = b"\x80" + body + k_rows(rows, last)
        seeds["hostile-%s-schema3" % name] = bytes([0x80 | 3 << 2]) + body + k_rows(rows, last)

    # damaged pages: the header (magic, page size, page count), the first b-tree page, truncation
    for i, patches in enumerate([[(0, 0x00)], [(16, 0xFF), (17, 0xFF)], [(16, 0x00), (17, 0x01)], [(28, 0x7F)],
                                 [(100, 0x00)], [(100, 0x0D), (103, 0xFF)], [(0xFFFF, 1)], [(0xFFFF, 8)],
                                 [(4096 + 8, 0xFF)], [(8192, 0x05)], [(24, 0xFF), (92, 0xFF)], [(56, 0x03)]]):
        seeds["patched-%d" % i] = b"\x01" + body + b"\xfe" + b"".join(struct.pack(">HB", o, v) for o, v in patches)
        seeds["patched-%d-wal" % i] = b"\x21" + body + b"\xfe" + b"".join(struct.pack(">HB", o, v)
                                                                          for o, v in patches)

    # the database files themselves
    for name, data in real_files.items():
        seeds["file-" + name] = b"\x02" + data
        seeds["file-%s-cut" % name] = b"\x02" + data[:len(data) // 2]
        seeds["file-%s-header-only" % name] = b"\x02" + data[:100]
        seeds["file-%s-flipped" % name] = b"\x02" + data[:700] + bytes([data[700] ^ 0xFF]) + data[701:]
    seeds["file-not-sqlite"] = b"\x02this is not an SQLite database\n"
    seeds["file-empty"] = b"\x02"
    for i in range(4):
        seeds["special-%d" % i] = bytes([0x03, i])
    seeds["no-rows"] = b"\x00"
    seeds["no-rows-update"] = b"\x80"
    return write_seeds(out, "fuzz-kine-rows", seeds)


def nul_names_paging():
    """Four names that differ only after a NUL byte: the paging loop (page 2) never ends."""
    return b"\x00" + k_rows([[i + 1, "/registry/secrets/a\0" + chr(0x41 + i), 1, 0, 0, 0, 0, b"v", None]
                             for i in range(4)])


def utf16_prefix_range():
    """A UTF-16 database: "/registry/secretsį" lists under "/registry/secrets/"."""
    return bytes([7 << 2]) + k_rows([[1, "/registry/secrets/a", 1, 0, 0, 0, 0, b"v", None],
                                     [2, "/registry/secrets\u012f", 1, 0, 0, 0, 0, b"v", None]])


REGRESS = {"fuzz-kine-rows": {"regress-nul-names-paging": nul_names_paging,
                              "regress-utf16-prefix-range": utf16_prefix_range}}


# ---- common -------------------------------------------------------------------------------------

def write_seeds(out, target, seeds):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    for k, data in seeds.items():
        with open(os.path.join(d, k.replace("/", "_")), "wb") as f:
            f.write(data)
    return len(seeds)


def write_regress(dest_root):
    for target, seeds in REGRESS.items():
        d = os.path.join(dest_root, target)
        os.makedirs(d, exist_ok=True)
        for k, make in seeds.items():
            with open(os.path.join(d, k), "wb") as f:
                f.write(make())


def generate(out):
    return {
        "fuzz-envelope-read": envelope_seeds(out),
        "fuzz-etcd-response": etcd_seeds(out),
        "fuzz-settings": settings_seeds(out),
        "fuzz-kine-rows": kine_seeds(out),
    }


def merge(gen_dir, only):
    for target in only:
        binary = os.path.join(ROOT, "build-fuzz", target)
        corpus = os.path.join(CORPUS, target)
        new = tempfile.mkdtemp(prefix=target + ".", dir=os.path.dirname(corpus))
        old = tempfile.mkdtemp(prefix="old.")
        for n in os.listdir(corpus) if os.path.isdir(corpus) else []:
            if not n.startswith("regress-"):
                shutil.copy(os.path.join(corpus, n), old)
        subprocess.run([binary, "-merge=1", "-max_len=65536", "-timeout=10", "-rss_limit_mb=2048", new, old,
                        os.path.join(gen_dir, target)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1"))
        shutil.rmtree(old)
        shutil.rmtree(corpus, ignore_errors=True)
        os.rename(new, corpus)
        os.chmod(corpus, 0o755)
    write_regress(CORPUS)
    for target in only:
        print("%s: %d files" % (target, len(os.listdir(os.path.join(CORPUS, target)))))


def main():
    args = sys.argv[1:]
    only = [a for a in args if a.startswith("fuzz-")] or list(TARGETS)
    args = [a for a in args if not a.startswith("fuzz-")]
    for target in only:
        if not os.access(os.path.join(ROOT, "build-fuzz", target), os.X_OK):
            sys.exit("build-fuzz/%s missing: run `make fuzz` first" % target)
    if args == ["--merge"]:
        with tempfile.TemporaryDirectory() as tmp:
            n = generate(tmp)
            print("generated: " + ", ".join("%s %d" % kv for kv in n.items()))
            merge(tmp, only)
        return
    if len(args) != 1 or args[0].startswith("-"):
        sys.exit(__doc__)
    n = generate(args[0])
    write_regress(args[0])
    print("generated: " + ", ".join("%s %d" % kv for kv in n.items()))


if __name__ == "__main__":
    main()
