#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""An independent look at a kine SQLite database and an EncryptionConfiguration, for the
integration tests: it shares no code with the library under test.

  kine-inspect.py count DB KEY_PREFIX VALUE_PREFIX   current values under KEY_PREFIX whose bytes
                                                     start with VALUE_PREFIX ("" = all)
  kine-inspect.py put DB KEY VALUE                   a kine create row with VALUE (UTF-8 bytes)
  kine-inspect.py entry CONFIG INDEX                 entry INDEX of the config, canonical JSON
  kine-inspect.py keys CONFIG INDEX                  "type:name" of every key of entry INDEX
"""
import json
import sqlite3
import sys

CURRENT = ("SELECT kv.name, kv.value FROM kine AS kv WHERE kv.name >= ? AND kv.name < ? AND "
           "kv.id = (SELECT MAX(m.id) FROM kine AS m WHERE m.name = kv.name) AND kv.deleted = 0")


def prefix_end(p):
    return p[:-1] + chr(ord(p[-1]) + 1)


def main(argv):
    cmd = argv[1]
    if cmd == "count":
        db = sqlite3.connect("file:%s?mode=ro" % argv[2], uri=True)
        want = argv[4].encode()
        n = sum(1 for _, v in db.execute(CURRENT, (argv[3], prefix_end(argv[3])))
                if bytes(v or b"").startswith(want))
        print(n)
    elif cmd == "put":
        db = sqlite3.connect(argv[2])
        with db:
            db.execute("INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, "
                       "value, old_value) VALUES(?, 1, 0, 0, 0, 0, ?, NULL)",
                       (argv[3], argv[4].encode()))
    elif cmd == "entry":
        c = json.load(open(argv[2]))
        print(json.dumps(c["resources"][int(argv[3])], sort_keys=True))
    elif cmd == "keys":
        c = json.load(open(argv[2]))
        for p in c["resources"][int(argv[3])]["providers"]:
            for t, v in p.items():
                for k in (v or {}).get("keys") or []:
                    print("%s:%s" % (t, k["name"]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
