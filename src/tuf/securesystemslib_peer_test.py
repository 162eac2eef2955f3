"""Verifies Aloft's TUF signatures with securesystemslib (Debian's python3-securesystemslib), the
library python-tuf signs and verifies with: the canonical bytes, every key id and every signature.

Usage: /usr/bin/python3 securesystemslib_peer_test.py ENVELOPE.json KEYS.json
  KEYS.json: {keyid: key object}. Prints one line per signature: "<keyid[:8]> ok|bad".
"""
import hashlib
import json
import sys

from securesystemslib.formats import encode_canonical
from securesystemslib.keys import verify_signature

envelope = json.load(open(sys.argv[1]))
keys = json.load(open(sys.argv[2]))
data = encode_canonical(envelope["signed"]).encode("utf-8")
for sig in envelope["signatures"]:
    key = dict(keys[sig["keyid"]])
    # The key id is the SHA-256 of the canonical key object (the specification's definition).
    assert hashlib.sha256(encode_canonical(key).encode("utf-8")).hexdigest() == sig["keyid"]
    key["keyid"] = sig["keyid"]
    ok = verify_signature(key, {"keyid": sig["keyid"], "sig": sig["sig"]}, data)
    print(sig["keyid"][:8], "ok" if ok else "bad")
