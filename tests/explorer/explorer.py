#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Scenario explorer: a seeded, randomized, model-based test that tries to make a stored value
unreadable (issue 12, SPEC §5.0).

    explorer.py --build DIR --steps N --seed S [--workdir W] [--keep-going] [--ignore CLASS,...]

Runs scenarios until N steps are done; scenario k of a run has seed S+k, so a violation is
replayed with the one-line command printed beside it (`--seed S+k --steps STEP`; the command
sequence is the same, the timing of kills and of the live writers is not, so a timing-dependent
violation may need a few replays).

Each scenario is a fresh directory with a kine SQLite database (created by
DIR/tests/tools/kine-seed, values of secrets, configmaps and deployments re-written here under a
random initial EncryptionConfiguration, or left in clear when the hook is left to generate the
config), a settings file, and the programs DIR/secrets-encrypt and DIR/secrets-encrypt-hook. Its
steps are random (guided towards the next stage now and then): every helper command with and
without -f/--skip, wrong-stage calls, calls with a mistyped datastore endpoint, restarts (stop the
live server, run the hook, start the server again on the config now on disk), SIGKILL of a command
or of the hook after a random short delay, and bursts of writes. While the "server" runs, two live
writers use the config it loaded at its start: DIR/tests/tools/stand-in-apiserver (secrets) and a
thread of this program (configmaps, deployments.apps and more secrets, kube's write path
re-implemented here).

After every step it checks, with its own reader (Python `cryptography` + PyNaCl; nothing of the
project's code): every current kine row under /registry/secrets/, /registry/configmaps/ and
/registry/deployments/ is readable (kube-apiserver's transformer choice and prefix walk, decrypt,
authenticate, a `k8s\\0` plaintext) both with the config on disk and with the config the server
loaded at its last start; then the command contracts. Violation classes (for --ignore):

  unreadable-disk, unreadable-server   the invariant (SPEC §5.0)
  config-missing, config-unloadable    no config, or one kube-apiserver would refuse to load
  plaintext-changed                    a value decrypts to a plaintext nobody wrote
  success-line-on-failure:LINE         a k3s success line and a non-zero exit
  success-line-wrong-stage:LINE        `prepare completed successfully` and not at prepare, …
  failure-changed-files                a non-zero exit that changed encryption-config.json,
                                       encryption-state.json or secrets-encrypt.json (timestamps
                                       aside); relaxed after a SIGKILL until the next hook success
  state-inconsistent                   after a success, encryption-state.json is not
                                       <stage>-<sha256 of the config>
  bad-datastore-accepted, -changed-files, -created   a mistyped datastore endpoint must exit
                                       non-zero (status aside), change nothing, create nothing
  hook-blocked-start                   the hook fails although the config is valid and every value
                                       readable (issue 12: unfinishable work never blocks a start)
  server-refused-start                 the stand-in refused the config the hook let through
  verify-false-alarm                   `verify` fails while every value is readable
  crash, hang                          exit 70, >= 128 or a signal not ours; no exit in 120 s

Output is TAP-ish: `ok - explorer seed S: N steps, 0 violations` per scenario, `not ok - ...` with
the step log and a replay line on a violation (exit 1; exit 2 for a fault of the explorer).
"""

import argparse
import base64
import binascii
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback

try:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.exceptions import InvalidTag
    import nacl.secret
    import nacl.exceptions
except ImportError as exc:  # the caller decides whether that is a skip
    print("explorer: missing Python module: %s (Debian: python3-cryptography python3-nacl)" % exc,
          file=sys.stderr)
    sys.exit(77)

# The helper's success lines (hooks/cmd-stage.c; k3s's own wording).
SUCCESS_LINES = (
    "prepare completed successfully",
    "rotate completed successfully",
    "reencryption started",
    "reencryption finished",
    "keys rotated, reencryption finished",
    "keys rotated, reencryption started",
    "secrets-encryption enabled",
    "secrets-encryption disabled",
    "secrets-encrypt enabled",
    "secrets-encrypt disabled",
)
# A success line that names a stage the command must have reached.
SUCCESS_STAGE = {
    "prepare completed successfully": ("prepare",),
    "rotate completed successfully": ("rotate",),
    "reencryption finished": ("reencrypt_finished",),  # without --skip (k3s: --skip goes back to the file's stage)
    "keys rotated, reencryption finished": ("reencrypt_finished",),
}
FILES = ("encryption-config.json", "encryption-state.json", "secrets-encrypt.json")
STAGES = ("start", "prepare", "rotate", "reencrypt_request", "reencrypt_active", "reencrypt_finished")
MUTATING = ("enable", "disable", "prepare", "rotate", "reencrypt", "rotate-keys")

# datastore key prefix -> (group, resource), as kube-apiserver stores them
PREFIXES = (
    ("/registry/secrets/", ("", "secrets")),
    ("/registry/configmaps/", ("", "configmaps")),
    ("/registry/deployments/", ("apps", "deployments")),
)
RESOURCE_POOL = ("secrets", "configmaps", "*.*", "*.apps", "*.", "deployments.apps")
PLAIN_MAGIC = b"k8s\x00"
ENC = b"k8s:enc:"


def slug(line):
    """A violation class suffix: no spaces or commas, so classes can be listed with --ignore."""
    return line.replace(",", "").replace(" ", "-")


def resource_of(name):
    for prefix, gr in PREFIXES:
        if name.startswith(prefix):
            return gr
    return None


# ---- kube-apiserver's envelope formats ---------------------------------------------------------

def standin_unit(unit_dir, state):
    """The stand-in API server's unit, whose command reads this state dir: secrets-encrypt refuses to
    change a config no server reads (as lib-common.sh's se_standin_unit). Each scenario has its own
    unit directory, the programs' $SYSTEMD_UNIT_PATH."""
    os.makedirs(unit_dir, exist_ok=True)
    path = os.path.join(unit_dir, "stand-in.service")
    line = "ExecStart=/bin/true --encryption-provider-config=%s/encryption-config.json --\n" % state
    old = open(path).read() if os.path.exists(path) else \
        "[Unit]\nDescription=Stand-in API server (never started here)\n\n[Service]\nType=oneshot\n"
    if line not in old:
        with open(path, "w") as f:
            f.write(old + line)


class DecryptError(Exception):
    pass


def aescbc_seal(key, plain):
    iv = os.urandom(16)
    pad = 16 - len(plain) % 16
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return iv + enc.update(plain + bytes([pad]) * pad) + enc.finalize()


def aescbc_open(key, body):
    if len(body) < 16 or (len(body) - 16) % 16 != 0 or len(body) == 16:
        raise DecryptError("aescbc: bad length %d" % len(body))
    dec = Cipher(algorithms.AES(key), modes.CBC(body[:16])).decryptor()
    out = dec.update(body[16:]) + dec.finalize()
    p = out[-1]
    if p == 0 or p > len(out) or out[-p:] != bytes([p]) * p:
        raise DecryptError("aescbc: invalid padding")
    return out[:-p]


def aesgcm_seal(key, plain, aad):
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plain, aad)


def aesgcm_open(key, body, aad):
    if len(body) < 12:
        raise DecryptError("aesgcm: too short")
    try:
        return AESGCM(key).decrypt(body[:12], body[12:], aad)
    except InvalidTag:
        raise DecryptError("aesgcm: message authentication failed")


def secretbox_seal(key, plain):
    return bytes(nacl.secret.SecretBox(key).encrypt(plain, os.urandom(24)))


def secretbox_open(key, body):
    if len(body) < 24 + 16:
        raise DecryptError("secretbox: too short")
    try:
        return nacl.secret.SecretBox(key).decrypt(body[24:], body[:24])
    except nacl.exceptions.CryptoError:
        raise DecryptError("secretbox: authentication failed")


# ---- EncryptionConfiguration as kube-apiserver loads it ----------------------------------------

class ConfigError(Exception):
    pass


def parse_gr(s):
    if "." in s:
        r, g = s.split(".", 1)
        return (g, r)
    return ("", s)


def b64_std(s):
    s = s.replace("\r", "").replace("\n", "")
    if len(s) % 4 != 0:
        raise ConfigError("secret is not base64")
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("secret is not base64")


class Provider:
    def __init__(self, kind, keys=(), name=""):
        self.kind = kind  # aescbc aesgcm secretbox identity kms
        self.keys = list(keys)  # [(name, bytes)]
        self.name = name  # kms

    def summary(self):
        if self.kind == "identity":
            return "identity"
        if self.kind == "kms":
            return "kms(%s)" % self.name
        return "%s(%s)" % (self.kind, ",".join(n for n, _ in self.keys))


class Config:
    """Parse, validate (the parts of kube-apiserver's rules that can fail here) and build the
    resource -> providers overrides exactly as kube-apiserver's getTransformerOverrides does."""

    def __init__(self, raw):
        self.raw = raw
        self.hash = hashlib.sha256(raw).hexdigest()
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ConfigError("not JSON: %s" % exc)
        if not isinstance(doc, dict):
            raise ConfigError("not an object")
        if (doc.get("kind"), doc.get("apiVersion")) not in (
                ("EncryptionConfiguration", "apiserver.config.k8s.io/v1"), ("EncryptionConfig", "v1")):
            raise ConfigError("kind/apiVersion %r/%r" % (doc.get("kind"), doc.get("apiVersion")))
        entries = doc.get("resources")
        if not isinstance(entries, list) or not entries:
            raise ConfigError("resources: at least one resources is required")
        self.entries = []
        for i, ent in enumerate(entries):
            if not isinstance(ent, dict):
                raise ConfigError("resources[%d]: not an object" % i)
            res = ent.get("resources")
            provs = ent.get("providers")
            if not isinstance(res, list) or not res or not all(isinstance(x, str) for x in res):
                raise ConfigError("resources[%d].resources: required" % i)
            if not isinstance(provs, list) or not provs:
                raise ConfigError("resources[%d].providers: required" % i)
            self._check_resources(i, res)
            plist = [self._provider(i, j, p) for j, p in enumerate(provs)]
            self.entries.append((list(res), plist))
        # build step: masking, concatenation
        self.overrides = {}
        for res, plist in self.entries:
            for s in res:
                g, r = parse_gr(s)
                if (g, "*") in self.overrides:
                    raise ConfigError('resource "%s" is masked by earlier rule "*.%s"' % (s, g))
                if ("*", "*") in self.overrides:
                    raise ConfigError('resource "%s" is masked by earlier rule "*.*"' % s)
                self.overrides.setdefault((g, r), []).extend(plist)

    @staticmethod
    def _check_resources(i, res):
        for s in res:
            if s.lower() != s or s == "*":
                raise ConfigError("resources[%d].resources: invalid %r" % (i, s))
            g, r = parse_gr(s)
            if g in ("events.k8s.io", "extensions") or (g == "*" and r != "*"):
                raise ConfigError("resources[%d].resources: invalid %r" % (i, s))
        if len(res) >= 2:
            grs = [parse_gr(s) for s in res]
            if len(set(grs)) != len(grs):
                raise ConfigError("resources[%d].resources: duplicate" % i)
            for a in range(len(grs)):
                for b in range(len(grs)):
                    if a == b:
                        continue
                    ga, ra = grs[a]
                    gb, rb = grs[b]
                    if grs[a] == ("*", "*") or (ga == gb and (ra == "*" or rb == "*")):
                        raise ConfigError("resources[%d].resources: overlapping %r" % (i, res))

    @staticmethod
    def _provider(i, j, p):
        where = "resources[%d].providers[%d]" % (i, j)
        if not isinstance(p, dict):
            raise ConfigError(where + ": not an object")
        set_ = [k for k in ("aesgcm", "aescbc", "secretbox", "identity", "kms") if p.get(k) is not None]
        if len(set_) != 1 or len(p) != 1:
            raise ConfigError(where + ": exactly one provider expected, got %r" % sorted(p))
        kind = set_[0]
        body = p[kind]
        if kind == "identity":
            return Provider("identity")
        if kind == "kms":
            return Provider("kms", name=str(body.get("name", "")))
        keys = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(keys, list) or not keys:
            raise ConfigError(where + ".%s.keys: at least one keys is required" % kind)
        out = []
        for k, key in enumerate(keys):
            if not isinstance(key, dict) or not key.get("name") or not key.get("secret"):
                raise ConfigError(where + ".%s.keys[%d]: name and secret required" % (kind, k))
            raw = b64_std(key["secret"])
            sizes = (32,) if kind == "secretbox" else (16, 24, 32)
            if len(raw) not in sizes:
                raise ConfigError(where + ".%s.keys[%d].secret: length %d" % (kind, k, len(raw)))
            out.append((key["name"], raw))
        return Provider(kind, out)

    def providers_for(self, gr):
        g, r = gr
        for k in ((g, r), (g, "*"), ("*", "*")):
            if k in self.overrides:
                return self.overrides[k]
        return None  # kube's default: identity that refuses encrypted data

    def write(self, name, gr, plain):
        plist = self.providers_for(gr)
        if not plist or plist[0].kind == "identity":
            return plain
        p = plist[0]
        kname, key = p.keys[0]
        if p.kind == "aescbc":
            body = aescbc_seal(key, plain)
        elif p.kind == "aesgcm":
            body = aesgcm_seal(key, plain, name.encode())
        elif p.kind == "secretbox":
            body = secretbox_seal(key, plain)
        else:
            raise ConfigError("cannot write with %s" % p.kind)
        return b"k8s:enc:%s:v1:%s:" % (p.kind.encode(), kname.encode()) + body

    def read(self, name, gr, value):
        """kube-apiserver's read: returns (plaintext, None) or (None, reason)."""
        plist = self.providers_for(gr)
        if plist is None:
            if value.startswith(ENC):
                return None, "resource not covered: identity refuses encrypted data"
            return self._plain(value)
        errors = []
        for p in plist:
            if p.kind == "identity":
                if not value.startswith(ENC):
                    return self._plain(value)
                continue
            if p.kind == "kms":
                if value.startswith(b"k8s:enc:kms:v1:%s:" % p.name.encode()) or \
                        value.startswith(b"k8s:enc:kms:v2:%s:" % p.name.encode()):
                    errors.append("kms %s not readable here" % p.name)
                continue
            outer = b"k8s:enc:%s:v1:" % p.kind.encode()
            if not value.startswith(outer):
                continue
            rest = value[len(outer):]
            for kname, key in p.keys:
                inner = kname.encode() + b":"
                if not rest.startswith(inner):
                    continue
                body = rest[len(inner):]
                try:
                    if p.kind == "aescbc":
                        plain = aescbc_open(key, body)
                    elif p.kind == "aesgcm":
                        plain = aesgcm_open(key, body, name.encode())
                    else:
                        plain = secretbox_open(key, body)
                except DecryptError as exc:
                    errors.append("%s key %s: %s" % (p.kind, kname, exc))
                    continue
                if plain.startswith(PLAIN_MAGIC):
                    return plain, None
                errors.append("%s key %s: decrypted to garbage" % (p.kind, kname))
        if errors:
            return None, "; ".join(errors)
        return None, "no matching prefix found"

    @staticmethod
    def _plain(value):
        if value.startswith(PLAIN_MAGIC):
            return value, None
        return None, "plaintext is not a kube object"

    def summary(self):
        parts = []
        for res, plist in self.entries:
            parts.append("[%s]: %s" % (",".join(res), " ".join(p.summary() for p in plist)))
        return "sha256:%s… %s" % (self.hash[:12], " | ".join(parts))


def describe_value(v):
    """The envelope prefix of a stored value, without body bytes."""
    if v.startswith(ENC):
        head = v[:160].decode("latin-1")
        n = 0
        while n < len(head) and 0x21 <= ord(head[n]) < 0x7f:
            n += 1
        return head[:head.rfind(":", 0, n) + 1] if ":" in head[:n] else head[:n]
    return "plaintext %r" % v[:8]


# ---- kine SQLite: kine's own row rules (reference §5.2) ------------------------------------------

class Kine:
    def __init__(self, path):
        self.db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA busy_timeout = 60000")

    def close(self):
        self.db.close()

    def current(self):
        """(name, value) of every live current row under the checked prefixes, one snapshot."""
        rows = []
        cur = self.db.execute(
            "SELECT kv.name, kv.value FROM kine AS kv JOIN "
            "(SELECT name, MAX(id) AS mid FROM kine WHERE name >= '/registry/' AND name < '/registry0' "
            "GROUP BY name) AS m ON kv.id = m.mid WHERE kv.deleted = 0")
        for name, value in cur.fetchall():
            if resource_of(name) is None:
                continue
            if isinstance(value, str):
                value = value.encode("utf-8", "surrogateescape")
            rows.append((name, value or b""))
        return rows

    def _tx(self, fn):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            fn()
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _current_row(self, name):
        return self.db.execute(
            "SELECT id, created, deleted, create_revision, lease, value FROM kine "
            "WHERE id = (SELECT MAX(id) FROM kine WHERE name = ?)", (name,)).fetchone()

    def put(self, name, value):
        def fn():
            c = self._current_row(name)
            if c is None or c[2] != 0:
                self.db.execute(
                    "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value) "
                    "VALUES(?, 1, 0, 0, ?, 0, ?, ?)",
                    (name, c[0] if c else 0, sqlite3.Binary(value), c[5] if c else None))
            else:
                cid, created, _, crev, lease, old = c
                self.db.execute(
                    "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value) "
                    "VALUES(?, 0, 0, ?, ?, ?, ?, ?)",
                    (name, cid if created else crev, cid, lease, sqlite3.Binary(value), old))
        self._tx(fn)

    def delete(self, name):
        def fn():
            c = self._current_row(name)
            if c is None or c[2] != 0:
                return
            self.db.execute(
                "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value) "
                "VALUES(?, 0, 1, 0, ?, 0, NULL, ?)", (name, c[0], c[5]))
        self._tx(fn)


# ---- the live writer of other resources ----------------------------------------------------------

class Writer(threading.Thread):
    """Writes as kube-apiserver would, with the config the server loaded at its start."""

    def __init__(self, db_path, config, seed, known, lock):
        super().__init__(daemon=True)
        self.db_path = db_path
        self.config = config
        self.rng = random.Random(seed)
        self.stop_event = threading.Event()
        self.known = known  # name -> set of plaintext hashes ever written by us (shared)
        self.lock = lock
        self.writes = 0
        self.error = None

    def run(self):
        kine = Kine(self.db_path)
        try:
            while not self.stop_event.wait(self.rng.uniform(0.005, 0.04)):
                self.write_one(kine)
        except Exception as exc:  # reported in the step log, not a violation
            self.error = "%s: %s" % (type(exc).__name__, exc)
        finally:
            kine.close()

    def write_one(self, kine):
        x = self.rng.random()
        if x < 0.45:
            name = "/registry/configmaps/explorer/cm-%d" % self.rng.randrange(8)
        elif x < 0.70:
            name = "/registry/deployments/explorer/deploy-%d" % self.rng.randrange(6)
        else:
            name = "/registry/secrets/explorer/secret-%d" % self.rng.randrange(8)
        if self.rng.random() < 0.08:
            kine.delete(name)
        else:
            plain = PLAIN_MAGIC + b"explorer %s #%d %s" % (name.encode(), self.writes, os.urandom(8).hex().encode())
            value = self.config.write(name, resource_of(name), plain)
            with self.lock:
                self.known.setdefault(name, set()).add(hashlib.sha256(plain).hexdigest())
            kine.put(name, value)
        self.writes += 1

    def stop(self):
        self.stop_event.set()
        self.join(timeout=120)


# ---- one scenario --------------------------------------------------------------------------------

class Terminated(BaseException):
    pass


class Critical:
    """SIGTERM/SIGINT take effect only outside this block (a child is started and registered in
    it), so an interrupted run always knows every process it has to kill. (Blocking the signals
    instead would hand the blocked mask down to the children.)"""

    depth = 0
    pending = False

    def __enter__(self):
        Critical.depth += 1

    def __exit__(self, *exc):
        Critical.depth -= 1
        if Critical.depth == 0 and Critical.pending and exc[0] is None:
            raise Terminated()

    @staticmethod
    def on_signal(sig, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if Critical.depth:
            Critical.pending = True
        else:
            raise Terminated()


class Violation(Exception):
    def __init__(self, cls, msg):
        super().__init__(msg)
        self.cls = cls
        self.msg = msg


def trunc(text, lines):
    t = text.rstrip("\n").split("\n") if text.strip() else []
    if len(t) > lines:
        t = t[:lines] + ["… (%d more lines)" % (len(t) - lines)]
    return t


class Scenario:
    def __init__(self, ex, seed, steps):
        self.ex = ex
        self.seed = seed
        self.rng = random.Random(seed)  # the step sequence: the same on every replay
        self.aux_rng = random.Random(seed ^ 0x5EED)  # writers: drawn at moments that depend on timing
        self.length = min(self.rng.randint(15, 60), steps)
        self.log = []  # [(step, title, [lines])]
        self.step = 0
        self.server = None  # Popen of the stand-in
        self.server_config = None  # Config the server loaded at its last start
        self.server_log = None
        self.server_copy = 0
        self.writer = None
        self.known = {}
        self.known_lock = threading.Lock()
        self.kill_dirty = False  # a SIGKILL happened and no hook has succeeded since
        self.key_seen = {}  # (kind, name) -> [step it entered the config on disk, step it left or None]
        self.last_keys = set()
        self.last_entries = []
        self.secret_seen = {}
        self.server_started = 0
        self.stats = {"ok": 0, "failed": 0, "killed": 0, "restarts": 0, "added": 0, "removed": 0}

    # -- setup --

    def setup(self):
        rng = self.rng
        self.dir = tempfile.mkdtemp(prefix="se-explorer-%d." % self.seed, dir=self.ex.workdir)
        self.state = os.path.join(self.dir, "state")
        self.db = os.path.join(self.dir, "db.sqlite")
        self.settings = os.path.join(self.dir, "settings.yaml")
        os.mkdir(self.state, 0o700)
        os.mkdir(os.path.join(self.dir, "hooks.d"), 0o700)
        slow = rng.random() < 0.15
        n_sec = rng.randint(60, 150) if slow else rng.randint(3, 30)
        n_cm = rng.randint(0, 12)
        n_dep = rng.randint(0, 6)
        provider = rng.choice(("aescbc", "aescbc", "secretbox"))
        with open(self.settings, "w") as f:
            f.write("state-dir: %s\nnode-name: node-1\ndatastore-endpoint: sqlite://%s\nunit: stand-in.service\n"
                    "hooks-dir: %s\nsecrets-encryption-provider: %s\n"
                    % (self.state, self.db, os.path.join(self.dir, "hooks.d"), provider))
            if slow:
                f.write("reencrypt-rate: %d\n" % rng.choice((300, 600)))
        standin_unit(os.path.join(self.dir, "units"), self.state)
        seed_tool = os.path.join(self.ex.build, "tests", "tools", "kine-seed")
        for prefix, count in (("/registry/secrets/", n_sec), ("/registry/configmaps/", n_cm),
                              ("/registry/deployments/", n_dep)):
            if count == 0 and prefix != "/registry/secrets/":
                continue
            r = subprocess.run([seed_tool, self.db, str(max(count, 1)), "--prefix", prefix, "--value-size",
                                str(rng.randint(80, 700)), "--namespaces", str(rng.randint(1, 4)),
                                "--seed", str(rng.randrange(1 << 30))],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                raise RuntimeError("kine-seed failed: %s" % r.stdout)
        self.kine = Kine(self.db)
        initial = None
        if rng.random() < 0.8:
            initial = self.gen_config()
        desc = ["settings: provider %s%s; %d secrets, %d configmaps, %d deployments"
                % (provider, ", slow re-encryption" if slow else "", n_sec, n_cm, n_dep)]
        for name, value in self.kine.current():
            self.known.setdefault(name, set()).add(hashlib.sha256(value).hexdigest())
        if initial is not None:
            cfg = Config(initial)
            # existing values under any key of the initial config (the write key most often)
            for name, value in self.kine.current():
                plist = cfg.providers_for(resource_of(name))
                if not plist:
                    continue
                p = plist[0] if rng.random() < 0.6 else rng.choice(plist)
                if p.kind == "identity":
                    continue
                k = p.keys[0] if rng.random() < 0.6 else rng.choice(p.keys)
                one = Provider(p.kind, [k])
                tmp = Config.__new__(Config)
                tmp.overrides = {resource_of(name): [one]}
                self.kine.put(name, tmp.write(name, resource_of(name), value))
            path = os.path.join(self.state, "encryption-config.json")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(initial)
            desc.append("initial config: " + cfg.summary())
        else:
            desc.append("no initial config: the hook generates one")
        self.add_log("setup", desc)
        self.track_config()

    def gen_config(self):
        rng = self.rng
        # mostly a shape a rotation can act on: exactly one entry covers secrets
        rotatable = rng.random() < 0.75
        for _ in range(500):
            entries = []
            counter = [0]

            def keyname(kind):
                counter[0] += 1
                x = rng.random()
                if kind == "aescbc" and counter[0] == 1 and x < 0.2:
                    return "aescbckey"
                if kind == "secretbox" and counter[0] == 1 and x < 0.2:
                    return "secretboxkey"
                if x < 0.3:
                    return "%skey-2024-0%d-1%dT10:00:0%dZ" % (kind, rng.randint(1, 9), rng.randint(0, 9), counter[0] % 10)
                return "%s-%d" % (kind, counter[0])

            for _ in range(rng.randint(1, 4)):
                res = rng.sample(RESOURCE_POOL, rng.choice((1, 1, 1, 2)))
                kinds = rng.sample(("aescbc", "secretbox", "aesgcm", "identity"), rng.randint(1, 4))
                if "identity" in kinds and rng.random() < 0.6:
                    kinds.remove("identity")
                    kinds.append("identity")
                provs = []
                for kind in kinds:
                    if kind == "identity":
                        provs.append({"identity": {}})
                    else:
                        provs.append({kind: {"keys": [
                            {"name": keyname(kind), "secret": base64.b64encode(os.urandom(32)).decode()}
                            for _ in range(rng.randint(1, 3))]}})
                entries.append({"resources": res, "providers": provs})
            doc = {"kind": "EncryptionConfiguration", "apiVersion": "apiserver.config.k8s.io/v1",
                   "resources": entries}
            raw = (json.dumps(doc, indent=2) + "\n" if rng.random() < 0.3
                   else json.dumps(doc, separators=(",", ":"))).encode()
            try:
                cfg = Config(raw)
            except ConfigError:
                continue
            names = [n for _, pl in cfg.entries for p in pl for n, _ in p.keys]
            if len(names) != len(set(names)):
                continue
            if rotatable and sum(1 for res, _ in cfg.entries if set(res) & {"secrets", "*.", "*.*"}) != 1:
                continue
            return raw
        raise RuntimeError("no valid config generated")

    # -- files --

    def path(self, name):
        return os.path.join(self.state, name)

    def read(self, name):
        try:
            with open(self.path(name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def own_state(self):
        """secrets-encrypt.json without its timestamps: the pending work, intent, stage annotation."""
        raw = self.read("secrets-encrypt.json")
        if raw is None:
            return None
        try:
            doc = json.loads(raw)
        except ValueError:
            return raw
        if not isinstance(doc, dict):
            return raw
        return json.dumps({k: v for k, v in doc.items() if "time" not in k}, sort_keys=True).encode()

    def files(self):
        return (self.read("encryption-config.json"), self.read("encryption-state.json"), self.own_state())

    @staticmethod
    def stage_of(s):
        if not s:
            return None
        if isinstance(s, bytes):
            s = s.decode("latin-1")
        return s[:-65] if len(s) > 65 and s[-65] == "-" else s

    def stage(self):
        """The current stage as `status` shows it: the node annotation (kept in secrets-encrypt.json,
        as k3s keeps it on the node), else encryption-state.json."""
        raw = self.read("secrets-encrypt.json")
        try:
            ann = json.loads(raw).get("annotation") if raw else None
        except (ValueError, AttributeError):
            ann = None
        if isinstance(ann, str) and self.stage_of(ann) in STAGES:
            return self.stage_of(ann)
        return self.stage_of(self.read("encryption-state.json"))

    # -- processes --

    def env(self):
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM", "INVOCATION_ID", "LISTEN_FDS", "LISTEN_PID")}
        env["SECRETS_ENCRYPT_CONFIG"] = self.settings
        env["SECRETS_ENCRYPT_LOG_TARGET"] = "stderr"
        env["SYSTEMD_UNIT_PATH"] = os.path.join(self.dir, "units")
        return env

    def run(self, argv, kill_after=None, timeout=120):
        t0 = time.monotonic()
        with Critical():
            p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env(),
                                 cwd=self.dir)
            self.ex.children.add(p)
        killed = False
        try:
            if kill_after is not None:
                time.sleep(kill_after)
                if p.poll() is None:
                    p.kill()
                    killed = True
            try:
                out, err = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                raise Violation("hang", "%s did not finish within %ds" % (" ".join(argv[-3:]), timeout))
        finally:
            self.ex.children.discard(p)
        return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), killed, \
            time.monotonic() - t0

    def cli(self):
        return os.path.join(self.ex.build, "secrets-encrypt")

    def hook(self):
        return os.path.join(self.ex.build, "secrets-encrypt-hook")

    def start_server(self):
        raw = self.read("encryption-config.json")
        try:
            cfg = Config(raw)
        except ConfigError as exc:
            raise Violation("config-unloadable", "the config on disk would not load in kube-apiserver: %s" % exc)
        self.server_copy += 1
        copy = os.path.join(self.dir, "server-config-%d.json" % self.server_copy)
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        self.spawn_server(copy)
        self.server_config = cfg
        self.server_started = self.step
        self.writer = Writer(self.db, cfg, self.aux_rng.randrange(1 << 30), self.known, self.known_lock)
        self.writer.start()

    def spawn_server(self, copy):
        self.server_log = os.path.join(self.dir, "stand-in-%d.log" % self.server_copy)
        self.server_copy_path = copy
        with open(self.server_log, "wb") as logf, Critical():
            p = subprocess.Popen([os.path.join(self.ex.build, "tests", "tools", "stand-in-apiserver"),
                                  "--encryption-provider-config", copy, "--datastore", "sqlite://" + self.db,
                                  "--write-interval-ms", str(self.aux_rng.choice((10, 20, 40)))],
                                 stdout=logf, stderr=subprocess.STDOUT, env=self.env(), cwd=self.dir)
            self.ex.children.add(p)
            self.server = p
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "secrets readable" in self.server_output():
                return
            if p.poll() is not None:
                self.ex.children.discard(p)
                self.server = None
                raise Violation("server-refused-start",
                                "stand-in-apiserver refused to start on the config the hook accepted (exit %d): %s"
                                % (p.returncode, self.server_output().strip()[-600:]))
            time.sleep(0.005)
        raise Violation("hang", "stand-in-apiserver did not start within 30s")

    def server_output(self):
        try:
            with open(self.server_log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def respawn_if_dead(self, lines):
        """kube-apiserver does not die on a failed write: a stand-in that exited is started again on
        the same config (not a restart: the hook does not run)."""
        if self.server is not None and self.server.poll() is not None:
            lines.append("stand-in-apiserver exited on its own (exit %d): %s; started again on the same config"
                         % (self.server.returncode, self.server_output().strip()[-300:]))
            self.ex.children.discard(self.server)
            self.server = None
            self.spawn_server(self.server_copy_path)
        if self.writer is not None and self.writer.error:
            lines.append("explorer writer stopped: %s; started again" % self.writer.error)
            self.writer = Writer(self.db, self.server_config, self.aux_rng.randrange(1 << 30), self.known,
                                 self.known_lock)
            self.writer.start()

    def stop_server(self, lines):
        if self.writer is not None:
            self.writer.stop()
            if self.writer.error:
                lines.append("explorer writer: %s" % self.writer.error)
            self.writer = None
        if self.server is not None:
            p = self.server
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            elif p.returncode != 0:
                lines.append("stand-in-apiserver had exited (%d): %s" % (p.returncode, self.server_output()[-300:]))
            self.ex.children.discard(p)
            self.server = None
        self.server_config = None

    # -- the log --

    def add_log(self, title, lines):
        self.log.append((self.step, title, lines))

    def cmd_lines(self, argv, rc, out, err, killed, dt):
        argv = [os.path.basename(argv[0])] + list(argv[1:])
        lines = ["$ %s -> %s (%.0f ms)" % (" ".join(argv), "SIGKILL" if killed else "exit %d" % rc, dt * 1000)]
        lines += ["  | " + x for x in trunc(out, 30)]
        lines += ["  ! " + x for x in trunc(err, 30)]
        return lines

    # -- checks --

    def readability(self):
        """Returns (disk config or None, [problems]) after reading every current row."""
        problems = []
        raw = self.read("encryption-config.json")
        disk = None
        if raw is None:
            problems.append(("config-missing", "encryption-config.json is missing"))
        else:
            try:
                disk = Config(raw)
            except ConfigError as exc:
                problems.append(("config-unloadable", "the config on disk would not load in kube-apiserver: %s" % exc))
        rows = self.kine.current()
        with self.known_lock:
            known = {k: set(v) for k, v in self.known.items()}
        configs = []
        if disk is not None:
            configs.append(("disk", disk))
        if self.server_config is not None:
            configs.append(("server", self.server_config))
        for label, cfg in configs:
            bad = []
            for name, value in rows:
                plain, why = cfg.read(name, resource_of(name), value)
                if plain is None:
                    bad.append("%s (%s): %s%s" % (name, describe_value(value), why, self.hint(label, name, value)))
                elif name in known and not name.startswith("/registry/secrets/stand-in/") and \
                        hashlib.sha256(plain).hexdigest() not in known[name]:
                    problems.append(("plaintext-changed", "%s decrypts with the %s config to a plaintext nobody "
                                     "wrote" % (name, label)))
            if bad:
                what = ("the config on disk (%s)" % cfg.summary() if label == "disk" else
                        "the config the running server loaded at its start (%s)" % cfg.summary())
                problems.append(("unreadable-" + label, "%d of %d stored values unreadable with %s:\n      %s"
                                 % (len(bad), len(rows), what, "\n      ".join(bad[:8] + (
                                     ["… %d more" % (len(bad) - 8)] if len(bad) > 8 else [])))))
        return disk, problems

    def key_of(self, value):
        """The key name of an envelope, matched against every key this scenario has seen."""
        best = None
        for kind, name in self.key_seen:
            pre = b"k8s:enc:%s:v1:%s:" % (kind.encode(), name.encode())
            if value.startswith(pre) and (best is None or len(name) > len(best[1])):
                best = (kind, name)
        return best

    def hint(self, label, name, value):
        k = self.key_of(value)
        if k is None:
            return ""
        gr = resource_of(name)
        out = []
        hist = self.key_seen[k]
        if hist[1] is not None:
            out.append("key %s left the config on disk at step %d" % (k[1], hist[1]))
        if label == "disk" and self.server_config is not None:
            plist = self.server_config.providers_for(gr) or []
            if plist and plist[0].kind == k[0] and plist[0].keys and plist[0].keys[0][0] == k[1]:
                out.append("it is the write key of the running server")
        if label == "server" and hist[0] is not None and hist[0] > 0:
            out.append("key %s entered the config on disk at step %d, after the server's start" % (k[1], hist[0])
                       if hist[0] > self.server_started else "key %s entered the config at step %d" % (k[1], hist[0]))
        return " [%s]" % "; ".join(out) if out else ""

    def track_config(self):
        """Log key and entry changes of the config on disk; remember when each key came and went."""
        raw = self.read("encryption-config.json")
        try:
            cfg = Config(raw) if raw is not None else None
        except ConfigError:
            cfg = None
        keys = set()
        entries = []
        if cfg is not None:
            for res, plist in cfg.entries:
                entries.append(",".join(res))
                for p in plist:
                    for n, _ in p.keys:
                        keys.add((p.kind, n))
        lines = []
        added = keys - self.last_keys
        removed = self.last_keys - keys
        if self.step > 0:
            self.stats["added"] += len(added)
            self.stats["removed"] += len(removed)
        for k in added:
            if k not in self.key_seen or self.key_seen[k][1] is not None:
                self.key_seen[k] = [self.step, None]
        if cfg is not None:
            for _, plist in cfg.entries:
                for p in plist:
                    for n, secret in p.keys:
                        fp = hashlib.sha256(secret).hexdigest()
                        old = self.secret_seen.setdefault((p.kind, n), (fp, self.step))
                        if old[0] != fp:
                            lines.append("key name %s reused with a different secret (first seen at step %d)"
                                         % (n, old[1]))
                            self.secret_seen[(p.kind, n)] = (fp, self.step)
        for k in removed:
            self.key_seen[k][1] = self.step
        if self.step > 0 and (added or removed):
            lines.append("keys on disk: %s%s" % ("+" + ",".join(sorted(n for _, n in added)) if added else "",
                                                 " -" + ",".join(sorted(n for _, n in removed)) if removed else ""))
        if self.step > 0 and cfg is not None and self.last_entries and entries != self.last_entries:
            lines.append("resources entries on disk: [%s] -> [%s]" % ("] [".join(self.last_entries),
                                                                       "] [".join(entries)))
        if cfg is not None:
            self.last_entries = entries
        self.last_keys = keys
        if lines and self.log:
            self.log[-1][2].extend("  " + x for x in lines)

    def check_invariant(self, pending):
        self.track_config()
        disk, problems = self.readability()
        found = [(c, m) for c, m in problems + pending if c not in self.ex.ignore]
        if found:
            raise Violation(found[0][0], "\n".join(m if i == 0 else "also %s: %s" % (c, m)
                                                   for i, (c, m) in enumerate(found)))
        return disk

    def state_consistent(self, what):
        cfg, st, _ = self.files()
        if cfg is None or st is None:
            return [("state-inconsistent", "after %s: encryption-config.json or encryption-state.json missing" % what)]
        want = hashlib.sha256(cfg).hexdigest()
        s = st.decode("latin-1")
        if not (len(s) > 65 and s[-65] == "-" and s[:-65] in STAGES and s[-64:] == want):
            return [("state-inconsistent", "after %s: encryption-state.json is %r, the config's hash is %s"
                     % (what, s, want))]
        return []

    # -- steps --

    def guided_command(self):
        st = self.stage()
        nxt = {"start": ["prepare", "rotate-keys"], "reencrypt_finished": ["prepare", "rotate-keys"],
               "prepare": ["RESTART", "rotate"], "rotate": ["RESTART", "reencrypt"],
               "reencrypt_request": ["RESTART"], "reencrypt_active": ["RESTART", "reencrypt -f"]}.get(st, ["RESTART"])
        return self.rng.choice(nxt)

    def random_command(self):
        return self.rng.choice((
            "status", "status", "status -o json", "verify", "verify", "verify", "enable", "enable", "disable",
            "prepare", "prepare", "prepare -f", "rotate", "rotate", "rotate -f", "reencrypt", "reencrypt",
            "reencrypt -f", "reencrypt --skip", "reencrypt -f --skip", "rotate-keys", "rotate-keys"))

    def do_command(self, cmd, kill_after=None, typo=None):
        words = cmd.split()
        argv = [self.cli()]
        if typo is not None:
            argv += ["--datastore-endpoint", "sqlite://" + typo[1]]
        argv += words
        before = self.files()
        rc, out, err, killed, dt = self.run(argv, kill_after=kill_after)
        title = "command" if kill_after is None and typo is None else (
            "command with SIGKILL after %.1f ms" % (kill_after * 1000) if typo is None else
            "command with a mistyped datastore (%s)" % typo[0])
        lines = self.cmd_lines(argv, rc, out, err, killed, dt)
        after = self.files()
        if after != before:
            lines.append("  changed: " + ", ".join(n for n, a, b in zip(FILES, before, after) if a != b)
                         + "; stage now %s" % self.stage())
        pending = []
        self.stats["killed" if killed else "ok" if rc == 0 else "failed"] += 1
        if killed:
            self.kill_dirty = True
            lines.append("  (killed)")
            self.add_log(title, lines)
            return pending
        self.add_log(title, lines)
        if rc < 0 or rc >= 128 or rc == 70:
            pending.append(("crash", "`%s` exited %d (a crash or an internal error)" % (cmd, rc)))
        printed = [x.strip() for x in (out + "\n" + err).split("\n")]
        succ = [x for x in printed if x in SUCCESS_LINES]
        # "reencryption started" announces that the pass began (issue 15: each success line only after
        # what it announces happened); a pass that then fails (a value no key reads: 65) has started,
        # as its reencrypt-started event shows. Without that event the line is a false success.
        if rc != 0 and "Re-encryption of secrets started" in err:
            succ = [x for x in succ if x != "reencryption started"]
        if rc != 0 and succ:
            pending.append(("success-line-on-failure:" + slug(succ[0]),
                            "`%s` printed %r but exited %d" % (cmd, succ[0], rc)))
        if rc != 0 and after != before and not self.kill_dirty and typo is None:
            pending.append(("failure-changed-files", "`%s` exited %d but changed %s" % (
                cmd, rc, " and ".join(n for n, a, b in zip(FILES, before, after) if a != b))))
        if rc == 0:
            for line in succ:
                want = SUCCESS_STAGE.get(line)
                if line == "reencryption finished" and "--skip" in words:
                    want = None
                if want and self.stage() not in want:
                    pending.append(("success-line-wrong-stage:" + slug(line),
                                    "`%s` printed %r but the stage is %s" % (cmd, line, self.stage())))
            if words[0] in MUTATING and typo is None:
                pending += self.state_consistent("`%s` (exit 0)" % cmd)
        if typo is not None:
            path = typo[1]
            if words[0] != "status" and rc == 0:
                pending.append(("bad-datastore-accepted", "`--datastore-endpoint sqlite://%s %s` (%s) exited 0"
                                % (path, cmd, typo[0])))
            if after != before and not self.kill_dirty:
                pending.append(("bad-datastore-changed-files",
                                "`%s` with the mistyped datastore %s changed the state files" % (cmd, path)))
            if typo[0] in ("missing file", "missing directory"):
                if any(os.path.exists(path + x) for x in ("", "-wal", "-shm", "-journal")) or \
                        os.path.exists(os.path.dirname(path)) != typo[2]:
                    pending.append(("bad-datastore-created", "`%s` created the mistyped datastore path %s"
                                    % (cmd, path)))
            elif typo[0] == "empty file" and os.path.getsize(path) != 0:
                pending.append(("bad-datastore-created", "`%s` wrote into the empty file %s given as datastore"
                                % (cmd, path)))
        if words[0] == "verify" and typo is None and rc != 0:
            disk, problems = self.readability()
            if disk is not None and not problems:
                pending.append(("verify-false-alarm", "`verify` exited %d but every value is readable with the "
                                "config on disk" % rc))
        return pending

    def do_restart(self, kill_after=None):
        lines = []
        self.stop_server(lines)
        pending = []
        argv = [self.hook(), "--unit=stand-in.service"]
        rc, out, err, killed, dt = self.run(argv, kill_after=kill_after)
        lines += self.cmd_lines(argv, rc, out, err, killed, dt)
        if killed:
            self.kill_dirty = True
            lines.append("  (hook killed; systemd runs it again)")
            rc, out, err, killed, dt = self.run(argv)
            lines += self.cmd_lines(argv, rc, out, err, killed, dt)
        self.stats["restarts"] += 1
        title = "restart" if kill_after is None else "restart with SIGKILL of the hook after %.1f ms" % (
            kill_after * 1000)
        if rc == 0:
            self.kill_dirty = False
            pending += self.state_consistent("the hook (exit 0)")
            lines.append("  stage %s, config %s" % (self.stage(), self.config_summary()))
            self.add_log(title, lines)
            try:
                self.start_server()
                self.log[-1][2].append("  server started (stand-in + explorer writer) on config sha256:%s…"
                                       % self.server_config.hash[:12])
            except Violation as v:
                self.log[-1][2].append("  server did not start: %s" % v.msg)
                pending.append((v.cls, v.msg))
        else:
            lines.append("  hook failed: the server stays down")
            self.add_log(title, lines)
            if rc < 0 or rc >= 128 or rc == 70:
                pending.append(("crash", "the hook exited %d (a crash or an internal error)" % rc))
            disk, problems = self.readability()
            if disk is not None and not problems:
                pending.append(("hook-blocked-start", "the hook exited %d although the config on disk is valid and "
                                "every stored value is readable with it" % rc))
        return pending

    def config_summary(self):
        raw = self.read("encryption-config.json")
        if raw is None:
            return "(none)"
        try:
            return Config(raw).summary()
        except ConfigError as exc:
            return "(unloadable: %s)" % exc

    def do_typo(self, cmd):
        rng = self.rng
        kind = rng.choice(("missing file", "missing directory", "empty file", "not kine"))
        if kind == "missing file":
            path = os.path.join(self.dir, rng.choice(("db.sqllite", "state.db", "db.sqlite.bak")))
            parent_exists = True
        elif kind == "missing directory":
            path = os.path.join(self.dir, "server", "db", "state.db")
            parent_exists = False
        elif kind == "empty file":
            path = os.path.join(self.dir, "empty.db")
            open(path, "wb").close()
            parent_exists = True
        else:
            path = os.path.join(self.dir, "other.db")
            if not os.path.exists(path):
                c = sqlite3.connect(path)
                c.execute("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT, value BLOB)")
                c.execute("INSERT INTO things(name, value) VALUES('/registry/secrets/x/y', x'00')")
                c.commit()
                c.close()
            parent_exists = True
        return self.do_command(cmd, typo=(kind, path, parent_exists))

    def do_burst(self):
        lines = []
        if self.server_config is None:
            self.add_log("writes", ["server down: no writes"])
            return []
        w = Writer(self.db, self.server_config, self.rng.randrange(1 << 30), self.known, self.known_lock)
        n = self.rng.randint(5, 30)
        for _ in range(n):
            w.write_one(self.kine)
        lines.append("%d writes of configmaps/deployments/secrets with the server's config" % n)
        self.add_log("writes", lines)
        return []

    def one_step(self):
        rng = self.rng
        x = rng.random()
        if x < 0.40:
            cmd = self.random_command()
            return self.do_restart() if cmd == "RESTART" else self.do_command(cmd)
        if x < 0.58:
            cmd = self.guided_command()
            return self.do_restart() if cmd == "RESTART" else self.do_command(cmd)
        if x < 0.75:
            return self.do_restart()
        if x < 0.87:
            delay = rng.choice((rng.uniform(0, 0.004), rng.uniform(0.002, 0.02), rng.uniform(0.01, 0.12)))
            if rng.random() < 0.3:
                return self.do_restart(kill_after=delay)
            cmd = rng.choice(("prepare", "prepare -f", "rotate", "rotate -f", "reencrypt", "reencrypt -f",
                              "reencrypt -f --skip", "rotate-keys", "rotate-keys", "enable", "disable"))
            return self.do_command(cmd, kill_after=delay)
        if x < 0.94:
            return self.do_typo(rng.choice(("status", "verify", "enable", "disable", "prepare", "prepare -f",
                                            "rotate", "rotate -f", "reencrypt", "reencrypt -f",
                                            "reencrypt -f --skip", "rotate-keys")))
        return self.do_burst()

    def run_all(self):
        """Returns None, or the Violation."""
        self.setup()
        try:
            for self.step in range(1, self.length + 1):
                try:
                    if self.step == 1:
                        pending = self.do_restart()  # the server's first start
                    else:
                        lines = []
                        self.respawn_if_dead(lines)
                        if lines:
                            self.add_log("server", lines)
                        pending = self.one_step()
                    self.check_invariant(pending)
                except Violation as v:
                    if v.cls in self.ex.ignore:
                        continue
                    return v
            return None
        finally:
            lines = []
            self.stop_server(lines)
            self.kine.close()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def print_log(self, v):
        out = sys.stdout
        print("# violation: %s" % v.cls, file=out)
        for line in v.msg.split("\n"):
            print("#   " + line, file=out)
        print("# config on disk: %s" % self.config_summary(), file=out)
        if self.server_config is not None:
            print("# config the server loaded: %s" % self.server_config.summary(), file=out)
        print("# stage: %s" % self.stage(), file=out)
        print("# scenario directory: %s" % self.dir, file=out)
        print("# step log:", file=out)
        for step, title, lines in self.log:
            print("#  [%d] %s" % (step, title), file=out)
            for line in lines:
                print("#      " + line, file=out)


class Explorer:
    def __init__(self, args):
        self.build = os.path.abspath(args.build)
        self.workdir = args.workdir or tempfile.gettempdir()
        self.ignore = set(x for x in (args.ignore or "").split(",") if x)
        self.children = set()

    def kill_children(self):
        for p in list(self.children):
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        self.children.clear()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", required=True, help="build directory with secrets-encrypt, secrets-encrypt-hook and "
                    "tests/tools/{kine-seed,stand-in-apiserver}")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--workdir", help="where scenario directories are made (default $TMPDIR)")
    ap.add_argument("--keep-going", action="store_true", help="after a violation, go on with the next scenario")
    ap.add_argument("--ignore", help="comma-separated violation classes not to report (triage aid)")
    ap.add_argument("--keep", action="store_true", help="keep the scenario directories")
    args = ap.parse_args()

    ex = Explorer(args)
    for f in ("secrets-encrypt", "secrets-encrypt-hook", "tests/tools/kine-seed", "tests/tools/stand-in-apiserver"):
        if not os.access(os.path.join(ex.build, f), os.X_OK):
            print("not ok - explorer: %s/%s is missing (make tests)" % (ex.build, f))
            return 1

    # Terminated unwinds: the finally blocks stop the server and kill what we started (doing that
    # in the handler could deadlock on a lock the interrupted code holds).
    signal.signal(signal.SIGTERM, Critical.on_signal)
    signal.signal(signal.SIGINT, Critical.on_signal)

    me = os.path.relpath(os.path.abspath(__file__), os.environ.get("SE_EXPLORER_ROOT", os.getcwd()))
    done = 0
    k = 0
    violations = 0
    t0 = time.monotonic()
    try:
        while done < args.steps:
            if Critical.pending:
                raise Terminated()
            seed = args.seed + k
            k += 1
            sc = Scenario(ex, seed, args.steps - done)
            ts = time.monotonic()
            try:
                v = sc.run_all()
            except Exception:  # a fault of the explorer or of its tools, not of the product
                print("not ok - explorer seed %d: harness error at step %d" % (seed, sc.step))
                for line in traceback.format_exc().rstrip().split("\n"):
                    print("# " + line)
                if sc.log:
                    sc.print_log(Violation("harness-error", "see the traceback above"))
                return 2
            if v is None:
                print("ok - explorer seed %d: %d steps, 0 violations (%.1f s; commands %d ok, %d refused, %d "
                      "killed; %d restarts; keys %d added, %d removed)"
                      % (seed, sc.length, time.monotonic() - ts, sc.stats["ok"], sc.stats["failed"],
                         sc.stats["killed"], sc.stats["restarts"], sc.stats["added"], sc.stats["removed"]))
                done += sc.length
                if not args.keep:
                    sc.cleanup()
            else:
                violations += 1
                first = v.msg.split("\n")[0]
                print("not ok - explorer seed %d: violation at step %d/%d: %s: %s"
                      % (seed, sc.step, sc.length, v.cls, first))
                print("# replay: %s --build %s --seed %d --steps %d%s" % (
                    me, os.environ.get("SE_EXPLORER_BUILD_LABEL", args.build), seed, sc.step,
                    " --ignore " + args.ignore if args.ignore else ""))
                print("#     or: SEED=%d SE_EXPLORER_STEPS=%d ONLY=scenario-explorer SE_BUILD=%s tests/run-tests.sh"
                      % (seed, sc.step, os.environ.get("SE_EXPLORER_BUILD_LABEL", args.build)))
                sc.print_log(v)
                sys.stdout.flush()
                done += sc.step
                if not args.keep_going:
                    return 1
            sys.stdout.flush()
    except Terminated:
        print("# explorer: terminated")
        return 130
    finally:
        ex.kill_children()
    dt = time.monotonic() - t0
    print("# %d steps in %.1f s (%.1f steps/s), %d violation%s" % (done, dt, done / dt if dt else 0, violations,
                                                                    "" if violations == 1 else "s"))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
