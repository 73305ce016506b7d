#!/usr/bin/env python3
"""evecheck.py EVE_JSON [EXPECT_SESSIONS EXPECT_PLAIN_TOCLIENT] [--nokeys]

Sums the "tls" events of an mmtlsd eve.json and prints one JSON object:
  sessions, by key_status, cipher suites seen, plaintext bytes to server / to client,
  TLS record bytes on the wire (headers + ciphertext + tags, both directions), records,
  application-data records.
With expectations: exits 1 unless every session is key_status "decrypted" with cipher
TLS_AES_256_GCM_SHA384 (with --nokeys: "no_keys"), there are EXPECT_SESSIONS of them and the
plaintext to the client adds up to EXPECT_PLAIN_TOCLIENT bytes (not checked with --nokeys).
"""
import json
import sys


def main(argv):
    nokeys = "--nokeys" in argv
    args = [a for a in argv[1:] if a != "--nokeys"]
    if len(args) not in (1, 3):
        print(__doc__, file=sys.stderr)
        return 2
    sessions, status, ciphers = 0, {}, {}
    ts = tc = wire = recs = app = 0
    with open(args[0], encoding="utf-8") as f:
        for line in f:
            ev = json.loads(line)
            if ev.get("event_type") != "tls":
                continue
            tls = ev.get("tls", ev)
            sessions += 1
            k = tls.get("key_status", "?")
            status[k] = status.get(k, 0) + 1
            c = tls.get("cipher_suite", "?")
            ciphers[c] = ciphers.get(c, 0) + 1
            ts += int(tls.get("plain_bytes_toserver", 0))
            tc += int(tls.get("plain_bytes_toclient", 0))
            wire += int(tls.get("bytes_toserver", 0)) + int(tls.get("bytes_toclient", 0))
            recs += int(tls.get("records_toserver", 0)) + int(tls.get("records_toclient", 0))
            app += (int(tls.get("app_records_toserver", 0))
                    + int(tls.get("app_records_toclient", 0)))
    out = {"sessions": sessions, "key_status": status, "cipher_suites": ciphers,
           "plain_bytes_toserver": ts, "plain_bytes_toclient": tc, "tls_wire_bytes": wire, "records": recs,
           "app_records": app}
    print(json.dumps(out))
    if len(args) == 3:
        want_n, want_tc = int(args[1]), int(args[2])
        want_status = "no_keys" if nokeys else "decrypted"
        problems = []
        if sessions != want_n:
            problems.append("%d sessions, expected %d" % (sessions, want_n))
        if status.get(want_status, 0) != sessions:
            problems.append("key_status %s, expected all %s" % (status, want_status))
        if ciphers.get("TLS_AES_256_GCM_SHA384", 0) != sessions:
            problems.append("cipher suites %s" % ciphers)
        if not nokeys and tc != want_tc:
            problems.append("plaintext to client %d bytes, expected %d" % (tc, want_tc))
        if problems:
            print("evecheck: " + "; ".join(problems), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
