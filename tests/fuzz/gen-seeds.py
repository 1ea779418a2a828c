#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Seed corpus for the config fuzz targets (fuzz-config-yaml, fuzz-config-json).

Writes variants of every file of the conformance set (tests/data/k8s-encryption-config/, a copy of
shared/conformance/k8s-encryption-config/) in both formats: mutated fields and types, YAML tags
(!!binary, !!str, !!bool, !!null, !!int, !!float, local and %TAG ones) on keys and values, anchors and
aliases, merge keys, flow and block styles, quoting styles, multi-document streams, BOMs,
directives, NUL bytes and invalid UTF-8, and sizes around the parser's limits (1,000 keys, 32
levels of nesting, libyaml's 1,024-character implicit keys).

    tests/fuzz/gen-seeds.py OUTDIR     write OUTDIR/fuzz-config-yaml/ and OUTDIR/fuzz-config-json/
    tests/fuzz/gen-seeds.py --merge    and minimise them, with the committed corpus, into
                                       tests/fuzz/corpus/<target>/ (libFuzzer -merge=1; needs
                                       `make fuzz` first), then add the regress-* inputs

JSON seeds OMIT THE LEADING '{': fuzz-config-json.c prepends '{' to every input so that the JSON
path is always taken, so the seed for '{"kind":"x"}' is '"kind":"x"}'. The YAML target prepends a
comment line ("#\\n"), which changes nothing for a seed (a BOM seed thus tests a BOM after a line).

The regress-* inputs are kept whether or not they add coverage: each reproduces a bug once found
(issue 19: a !!binary mapping key read with strlen past its buffer; a secret starting with a NUL
byte looping the redaction forever).

Needs PyYAML (python3-yaml) to read the YAML conformance files. Output is deterministic.
"""

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFORMANCE = os.path.join(ROOT, "tests", "data", "k8s-encryption-config")
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
TARGETS = ("fuzz-config-yaml", "fuzz-config-json")

HDR = "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\n"
JHDR = '{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1",'
SECRET = "c2VjcmV0IGlzIHNlY3VyZQ=="
B64 = lambda b: base64.b64encode(b if isinstance(b, bytes) else b.encode()).decode()

# Regression inputs, named; YAML as the file would be, JSON without its leading '{'.
REGRESS_YAML = {
    "regress-binary-key": "!!binary aGVsbG8=: 1\n",
    "regress-binary-key-noeol": "!!binary aGVsbG8=: 1",
    "regress-binary-key-flow": "a: {!!binary aGVsbG8=: 1}\n",
    "regress-binary-key-explicit": "? !!binary aGVsbG8=\n: 1\n",
    "regress-binary-key-known": "!!binary a2luZA==: EncryptionConfiguration\n"
    "!!binary YXBpVmVyc2lvbg==: apiserver.config.k8s.io/v1\n!!binary cmVzb3VyY2Vz: []\n",
    "regress-binary-key-nul": "!!binary a2luZABY: 1\n",
    "regress-binary-key-nul-only": HDR + "!!binary AA==: 1\n",
    "regress-binary-key-empty": HDR + "!!binary : 1\n",
    "regress-binary-key-dup": HDR + "!!binary cmVzb3VyY2Vz: []\nresources: []\n",
    "regress-binary-key-alias": HDR + "x: &k !!binary AA==\n*k : 1\n",
    "regress-binary-key-merge": "<<: {!!binary a2luZA==: EncryptionConfiguration}\n"
    "apiVersion: apiserver.config.k8s.io/v1\n",
    "regress-binary-values": HDR + "resources:\n- resources: [!!binary c2VjcmV0cw==]\n  providers:\n"
    "  - aescbc:\n      keys:\n      - name: !!binary YQBi\n        secret: !!binary " + B64(SECRET) + "\n"
    "  - kms: {name: !!binary /w==, endpoint: !!binary dW5peDovLy9t, timeout: !!binary M3MA}\n",
    "regress-binary-kind-nul": "kind: !!binary RW5jcnlwdGlvbkNvbmZpZ3VyYXRpb24A\n"
    "apiVersion: apiserver.config.k8s.io/v1\n",
    "regress-nul-secret-redact": "apiVersion: v1\nresources:\n- providers:\n  - aescbc:\n      keys:\n"
    "      - name: a\n        secret: \"\\0abcd\"\n",
}
REGRESS_JSON = {
    "regress-nul-key": '"kind\\u0000x":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1"}',
    "regress-nul-value": JHDR[1:] + '"resources":[{"resources":["secrets"],"providers":[{"kms":{"name":"k\\u0000"}}]}]}',
    "regress-nul-secret-redact": '"apiVersion":"v1","resources":[{"providers":[{"aescbc":{"keys":[{"name":"a",'
    '"secret":"\\u0000abcd"}]}}]}]}',
    "regress-nul-key-dropped-dup": JHDR[1:] + '"resources":[{"a\\u0000":1}],"resources":[]}',
}

# ---- a small YAML writer over the model, with hooks for tags, anchors and styles ----

YAML11_SPECIAL = re.compile(
    r"^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|"
    r"~|null|Null|NULL|<<|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)|[-+]?[0-9][0-9_.eExXoObB+-]*|)$"
)
PLAIN_OK = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./+=:-]*$")


def scalar(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    if PLAIN_OK.match(v) and not YAML11_SPECIAL.match(v) and ": " not in v:
        return v
    return json.dumps(v)


class Writer:
    """key(k, path) / value(v, path) give the text of a key / scalar; flow: one-line style."""

    def __init__(self, flow=False, key=None, value=None, anchors=False, merge=False):
        self.flow, self.anchors, self.merge = flow, anchors, merge
        self.key = key or (lambda k, path: scalar(k))
        self.value = value or (lambda v, path: scalar(v))
        self.n = 0

    def anchor(self):
        if not self.anchors:
            return ""
        self.n += 1
        return "&a%d " % self.n

    def flow_text(self, v, path):
        if isinstance(v, dict):
            items = ["%s: %s" % (self.key(k, path + (k,)), self.flow_text(x, path + (k,))) for k, x in v.items()]
            if self.merge and len(items) >= 2:
                items = ["<<: {%s}" % items[0]] + items[1:]
            return self.anchor() + "{" + ", ".join(items) + "}"
        if isinstance(v, list):
            return self.anchor() + "[" + ", ".join(self.flow_text(x, path + (i,)) for i, x in enumerate(v)) + "]"
        return self.value(v, path)

    def block(self, v, path, ind):
        pad = " " * ind
        if isinstance(v, dict) and v:
            out = []
            items = list(v.items())
            if self.merge and len(items) >= 2:
                out.append("%s<<: %s\n" % (pad, self.flow_text(dict(items[:1]), path)))
                items = items[1:]
            for k, x in items:
                kt = self.key(k, path + (k,))
                if isinstance(x, (dict, list)) and x:
                    out.append("%s%s: %s\n%s" % (pad, kt, self.anchor().rstrip(), self.block(x, path + (k,), ind + 2)))
                else:
                    out.append("%s%s: %s\n" % (pad, kt, self.flow_text(x, path + (k,))))
            return "".join(out)
        if isinstance(v, list) and v:
            out = []
            for i, x in enumerate(v):
                if isinstance(x, dict) and x:
                    body = self.block(x, path + (i,), ind + 2)
                    out.append("%s- %s" % (pad, body[ind + 2 :]))
                else:
                    out.append("%s- %s\n" % (pad, self.flow_text(x, path + (i,))))
            return "".join(out)
        return pad + self.flow_text(v, path) + "\n"

    def text(self, doc):
        self.n = 0
        if self.flow:
            return self.flow_text(doc, ()) + "\n"
        return self.block(doc, (), 0)


def leaves(v, path=()):
    if isinstance(v, dict):
        for k, x in v.items():
            yield from leaves(x, path + (k,))
        if not v:
            yield path
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from leaves(x, path + (i,))
        if not v:
            yield path
    else:
        yield path


def replace(v, path, new):
    if not path:
        return new
    if isinstance(v, dict):
        return {k: (replace(x, path[1:], new) if k == path[0] else x) for k, x in v.items()}
    return [replace(x, path[1:], new) if i == path[0] else x for i, x in enumerate(v)]


def rename_keys(v, fn, path=()):
    if isinstance(v, dict):
        return {fn(k, path + (k,)): rename_keys(x, fn, path + (k,)) for k, x in v.items()}
    if isinstance(v, list):
        return [rename_keys(x, fn, path + (i,)) for i, x in enumerate(v)]
    return v


def all_dicts(v, path=()):
    if isinstance(v, dict):
        yield path, v
        for k, x in v.items():
            yield from all_dicts(x, path + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from all_dicts(x, path + (i,))


# values a leaf is replaced with: (YAML text, JSON text)
MUTATIONS = [
    ("1", "1"), ("true", "true"), ("null", "null"), ("[]", "[]"), ("{}", "{}"), ("1.5", "1.5"),
    ("yes", '"yes"'), ("0x10", "16"), (".inf", "1e999"), ("~", "null"), ("!!binary AA==", '"\\u0000"'),
    ("!!int 08", "08"), ('"\\0"', '"\\ud800"'), ("!!str 10", '"10"'), ("2147483648", "2147483648"),
    ("-1", "-1"), ("!!bool on", "-0"), ("!!null ''", "1e3"), ("!!float 1", "1.0"), ("''", '""'),
    ("[a, b]", '["a","b"]'), ("{a: 1}", '{"a":1}'), ("\"\\xff\"", '"\udcff"'), ("!!binary /w==", '"\\u00ff"'),
]
CASE = [str.upper, str.capitalize, lambda s: s + "x", lambda s: "x" + s, lambda s: s[:-1]]


def tag_value(tag):
    def f(v, path):
        if isinstance(v, str):
            if tag == "!!binary":
                return "!!binary " + B64(v)
            return "%s %s" % (tag, json.dumps(v))
        if tag == "!!int" and isinstance(v, int) and not isinstance(v, bool):
            return "!!int %d" % v
        if v is None:
            return "!!null null"
        if isinstance(v, bool):
            return "!!bool " + scalar(v)
        return scalar(v)

    return f


def tag_key(tag):
    return lambda k, path: ("!!binary " + B64(k)) if tag == "!!binary" else "%s %s" % (tag, scalar(k))


def yaml_variants(name, raw, doc, others):
    v = {}
    if raw is not None:
        v["raw"] = raw
        v["bom"] = "\ufeff" + raw
        v["yaml11"] = "%YAML 1.1\n---\n" + raw
        v["yaml12"] = "%YAML 1.2\n---\n" + raw + "...\n"
        v["crlf"] = raw.replace("\n", "\r\n")
        v["tabs-comments"] = re.sub(r"(?m)$", "  # c", raw)
    if doc is None:
        return v
    block = Writer().text(doc)
    v["block"] = block
    v["flow"] = Writer(flow=True).text(doc)
    v["json-as-yaml"] = json.dumps(doc, indent=1) + "\n"
    v["tag-binary-values"] = Writer(value=tag_value("!!binary")).text(doc)
    v["tag-binary-keys"] = Writer(key=tag_key("!!binary")).text(doc)
    v["tag-binary-all-flow"] = Writer(flow=True, key=tag_key("!!binary"), value=tag_value("!!binary")).text(doc)
    v["tag-str"] = Writer(key=tag_key("!!str"), value=tag_value("!!str")).text(doc)
    v["tag-int-bool-null"] = Writer(value=tag_value("!!int")).text(doc)
    v["tag-local"] = Writer(value=lambda x, p: "!local " + scalar(x)).text(doc)
    v["tag-directive"] = "%TAG !e! tag:yaml.org,2002:\n---\n" + Writer(
        key=lambda k, p: "!e!str " + scalar(k), value=lambda x, p: "!e!str " + scalar(x)
        if isinstance(x, str) else scalar(x)).text(doc)
    v["tag-verbatim"] = Writer(value=lambda x, p: "!<tag:yaml.org,2002:str> " + scalar(x)
                               if isinstance(x, str) else scalar(x)).text(doc)
    v["anchors"] = Writer(anchors=True).text(doc)
    v["anchors-flow"] = Writer(anchors=True, flow=True).text(doc)
    v["merge"] = Writer(merge=True).text(doc)
    v["merge-flow"] = Writer(merge=True, flow=True).text(doc)
    v["single-quoted"] = Writer(value=lambda x, p: "'%s'" % x.replace("'", "''") if isinstance(x, str)
                                else scalar(x)).text(doc)
    v["double-escaped"] = Writer(value=lambda x, p: '"%s"' % "".join("\\x%02x" % ord(c) if c.isalpha() else c
                                                                      for c in x) if isinstance(x, str)
                                 else scalar(x)).text(doc)
    v["literal-blocks"] = Writer(value=lambda x, p: "|-\n" + " " * (2 * len(p) + 4) + x
                                 if isinstance(x, str) and p and p[-1] == "secret" else scalar(x)).text(doc)
    v["explicit-keys"] = Writer(flow=True, key=lambda k, p: "? " + scalar(k)).text(doc)
    v["multi-doc"] = "---\n" + block + "---\n" + (others or "kind: Other\n")
    v["multi-doc-empty-first"] = "---\n...\n---\n" + block
    v["doc-end"] = "--- " + Writer(flow=True).text(doc) + "...\n---\nbogus: [\n"
    # anchored first value, aliased as a later key and a later value
    if isinstance(doc, dict) and doc:
        k0, x0 = next(iter(doc.items()))
        rest = Writer().text({k: x for k, x in doc.items() if k != k0})
        v["alias-key"] = "%s: &k %s\n*k : 1\n" % (scalar(k0), Writer(flow=True).text(x0).strip()) + rest
        v["alias-key-anchor"] = "&kk %s: %s\nx: *kk\n" % (scalar(k0), Writer(flow=True).text(x0).strip()) + rest
        v["dup-key"] = block + "%s: %s\n" % (scalar(k0), Writer(flow=True).text(x0).strip())
    # providers reused through an alias
    for path, d in all_dicts(doc):
        if "providers" in d and isinstance(d["providers"], list) and d["providers"]:
            lines = Writer(flow=True).text(d["providers"][0]).strip()
            v["alias-provider"] = HDR + "resources:\n- resources: [secrets]\n  providers:\n  - &p %s\n  - *p\n" % lines
            break
    # every leaf mutated, one mutation each, round robin; every key renamed
    for i, path in enumerate(leaves(doc)):
        m = MUTATIONS[(i + len(name)) % len(MUTATIONS)][0]
        v["mut-%d" % i] = Writer(value=lambda x, p, path=path, m=m: m if p == path else scalar(x)).text(
            replace(doc, path, "\0placeholder"))
    for i, (path, d) in enumerate(all_dicts(doc)):
        for j, k in enumerate(d):
            fn = CASE[(i + j) % len(CASE)]
            v["rename-%d-%d" % (i, j)] = Writer().text(
                rename_keys(doc, lambda kk, p, path=path, k=k, fn=fn: fn(kk) if p == path + (k,) else kk))
    return v


def json_variants(name, raw, doc):
    """Full JSON texts (with '{'); the caller strips it."""
    v = {}
    if raw is not None and raw.lstrip().startswith("{"):
        v["raw"] = raw.lstrip()
    if not isinstance(doc, dict):
        return v
    v["compact"] = json.dumps(doc, separators=(",", ":"))
    v["pretty"] = json.dumps(doc, indent=2)
    v["ws"] = json.dumps(doc, separators=(" ,\t", "\r\n:  "))
    v["escaped"] = json.dumps(doc, separators=(",", ":"), ensure_ascii=True).replace("kind", "\\u006bind")
    v["nul-key"] = json.dumps(doc, separators=(",", ":")).replace('"kind"', '"kind\\u0000"', 1)
    v["case-keys"] = json.dumps(doc).replace('"kind"', '"KIND"').replace('"apiVersion"', '"APIVERSION"')
    v["dup-keys"] = json.dumps(doc)[:-1] + ',"kind":"EncryptionConfiguration","resources":[]}'
    v["utf8-invalid"] = json.dumps(doc, ensure_ascii=False).replace("secret\"", "s\udcffcret\"", 1)
    for i, path in enumerate(leaves(doc)):
        m = MUTATIONS[(i + len(name)) % len(MUTATIONS)][1]
        v["mut-%d" % i] = json.dumps(replace(doc, path, "\0placeholder"), separators=(",", ":")).replace(
            '"\\u0000placeholder"', m)
    for i, (path, d) in enumerate(all_dicts(doc)):
        for j, k in enumerate(d):
            fn = CASE[(i + j) % len(CASE)]
            v["rename-%d-%d" % (i, j)] = json.dumps(
                rename_keys(doc, lambda kk, p, path=path, k=k, fn=fn: fn(kk) if p == path + (k,) else kk))
    return v


def limit_variants():
    """Sizes around the limits, once: keys, nesting, implicit key length, value lengths."""
    y, j = {}, {}
    # compact, so that they stay cheap to mutate: aliases in YAML, empty objects in JSON
    for n in (999, 1000, 1001):
        y["keys-%d" % n] = (HDR + "resources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys: "
                            "[&k {name: k, secret: %s}%s]\n" % (SECRET, ",*k" * (n - 1)))
        j["keys-%d" % n] = (JHDR + '"resources":[{"resources":["secrets"],"providers":[{"aescbc":{"keys":'
                            '[{"name":"k","secret":"%s"}%s]}}]}]}' % (SECRET, ",{}" * (n - 1)))
    for n in (31, 32, 33):
        y["depth-%d" % n] = HDR + "resources: " + "[" * (n - 1) + "]" * (n - 1) + "\n"
        y["depth-map-%d" % n] = HDR + "x: " + "{a: " * (n - 1) + "1" + "}" * (n - 1) + "\n"
        j["depth-%d" % n] = JHDR + '"resources":' + "[" * (n - 1) + "]" * (n - 1) + "}"
    for n in (1023, 1024, 1025):
        y["long-key-%d" % n] = HDR + "k" * n + ": 1\n"
        y["long-key-explicit-%d" % n] = HDR + "? " + "k" * n + "\n: 1\n"
        y["long-name-%d" % n] = (HDR + "resources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n"
                                 "      - name: %s\n        secret: %s\n" % ("n" * n, SECRET))
        j["long-key-%d" % n] = JHDR + '"%s":1}' % ("k" * n)
    for n in (15, 16, 17, 23, 24, 25, 31, 32, 33):
        y["secret-%d" % n] = (HDR + "resources:\n- resources: [secrets]\n  providers:\n  - aesgcm:\n      keys:\n"
                              "      - name: k\n        secret: %s\n" % B64(bytes(range(n))))
    y["alias-bomb"] = HDR + "".join("%s: &%s [%s]\n" % (c, c, ",".join(["*" + p] * 9 if p else ["x"] * 9))
                                    for c, p in zip("abcdefg", ["", "a", "b", "c", "d", "e", "f"]))
    y["anchor-self"] = HDR + "a: &a [*a]\n"
    y["unknown-anchor"] = HDR + "a: *nope\n"
    y["utf16-bom"] = "\ufeffkind: x\n"
    return y, j


def generate(out):
    ys, js = {}, {}
    files = []
    for dirpath, _, names in os.walk(CONFORMANCE):
        files += [os.path.join(dirpath, n) for n in names if n.endswith((".yaml", ".json"))]
    files.sort()
    raws = {f: open(f, encoding="utf-8", errors="surrogateescape").read() for f in files}
    for idx, f in enumerate(files):
        rel = os.path.relpath(f, CONFORMANCE).replace("/", "_").rsplit(".", 1)[0]
        raw = raws[f]
        try:
            doc = json.loads(raw) if f.endswith(".json") else yaml.safe_load(raw)
        except (ValueError, yaml.YAMLError):
            doc = None
        other = raws[files[(idx + 1) % len(files)]]
        for k, t in yaml_variants(rel, raw, doc, other).items():
            ys["%s.%s" % (rel, k)] = t
        for k, t in json_variants(rel, raw if f.endswith(".json") else None, doc).items():
            js["%s.%s" % (rel, k)] = t
    y, j = limit_variants()
    ys.update(y)
    js.update(j)
    written = {}
    for target, seeds, ext in (("fuzz-config-yaml", ys, "yaml"), ("fuzz-config-json", js, "json")):
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for k, t in seeds.items():
            data = t.encode("utf-8", errors="surrogateescape")
            if target == "fuzz-config-json":
                # the target prepends '{': a seed starts right after it
                assert data.startswith(b"{"), k
                data = data[1:]
            with open(os.path.join(d, "%s.%s" % (k, ext)), "wb") as fp:
                fp.write(data)
        written[target] = len(seeds)
    return written


def write_regress(dest_root):
    for target, seeds, ext in (("fuzz-config-yaml", REGRESS_YAML, "yaml"), ("fuzz-config-json", REGRESS_JSON, "json")):
        d = os.path.join(dest_root, target)
        os.makedirs(d, exist_ok=True)
        for k, t in seeds.items():
            with open(os.path.join(d, "%s.%s" % (k, ext)), "wb") as fp:
                fp.write(t.encode())


def merge(gen_dir):
    for target in TARGETS:
        binary = os.path.join(ROOT, "build-fuzz", target)
        if not os.access(binary, os.X_OK):
            sys.exit("%s missing: run `make fuzz` first" % binary)
        corpus = os.path.join(CORPUS, target)
        new = tempfile.mkdtemp(prefix=target + ".", dir=os.path.dirname(corpus))
        # regress-* files are re-added below; everything else competes on coverage
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
    for target in TARGETS:
        print("%s: %d files" % (target, len(os.listdir(os.path.join(CORPUS, target)))))


def main():
    args = sys.argv[1:]
    if args == ["--merge"]:
        with tempfile.TemporaryDirectory() as tmp:
            n = generate(tmp)
            print("generated: " + ", ".join("%s %d" % kv for kv in n.items()))
            merge(tmp)
        return
    if len(args) != 1 or args[0].startswith("-"):
        sys.exit(__doc__)
    n = generate(args[0])
    write_regress(args[0])
    print("generated: " + ", ".join("%s %d" % kv for kv in n.items()))


if __name__ == "__main__":
    main()
