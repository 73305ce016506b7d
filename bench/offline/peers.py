#!/usr/bin/env python3
"""TLS 1.3 peers for the offline benchmark capture (bench/offline/make-capture.sh).

  peers.py server ADDR PORT CERT KEY CONNS
      Accepts CONNS connections (threads). Each client sends "SEND <n>\\n"; the server answers
      with n bytes written by sendall() in 16384-byte chunks, so every record carries exactly
      16384 bytes of plaintext, then closes with close_notify (unwrap).

  peers.py client ADDR PORT CAFILE KEYLOG CONNS PARALLEL BYTES_PER_CONN
      Opens CONNS connections, PARALLEL at a time, asks each for BYTES_PER_CONN bytes, reads
      and counts them, and checks the count, the protocol (TLSv1.3) and the cipher suite.
      Writes the session secrets to KEYLOG (SSLContext.keylog_filename, NSS format) and one
      JSON line per connection on stdout.

Both sides run with OPENSSL_CONF pointing at a file that restricts TLS 1.3 to
TLS_AES_256_GCM_SHA384 (python 3.11's ssl module has no set_ciphersuites()).
Every socket has a timeout, so nothing here can hang for long.
"""
import json
import os
import socket
import ssl
import sys
import threading
import time

CHUNK = 16384
WANT_CIPHER = "TLS_AES_256_GCM_SHA384"
SOCK_TIMEOUT = 60.0


def server(addr, port, cert, key, conns):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)
    # 16384 bytes of incompressible filler (the content does not matter for decryption).
    payload = os.urandom(CHUNK)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((addr, port))
    lsock.listen(128)
    lsock.settimeout(SOCK_TIMEOUT)
    print("listening", flush=True)
    errors = []

    def handle(raw):
        try:
            raw.settimeout(SOCK_TIMEOUT)
            with ctx.wrap_socket(raw, server_side=True) as s:
                line = b""
                while not line.endswith(b"\n") and len(line) < 64:
                    b = s.recv(64 - len(line))
                    if not b:
                        break
                    line += b
                n = int(line.split()[1])
                if n % CHUNK != 0:
                    raise ValueError("byte count must be a multiple of 16384")
                for _ in range(n // CHUNK):
                    s.sendall(payload)
                try:
                    s.unwrap()
                except (OSError, ssl.SSLError):
                    pass
        except Exception as e:  # noqa: BLE001 - report every failure
            errors.append(repr(e))

    threads = []
    for _ in range(conns):
        raw, _peer = lsock.accept()
        t = threading.Thread(target=handle, args=(raw,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join(SOCK_TIMEOUT * 4)
    lsock.close()
    if errors:
        print("server errors: " + "; ".join(errors[:5]), file=sys.stderr)
        return 1
    return 0


def client(addr, port, cafile, keylog, conns, parallel, nbytes):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(cafile)
    ctx.keylog_filename = keylog
    lock = threading.Lock()
    todo = list(range(conns))
    results = []

    def one(i):
        t0 = time.monotonic()
        got = 0
        buf = bytearray(1 << 20)
        with socket.create_connection((addr, port), timeout=SOCK_TIMEOUT) as raw:
            with ctx.wrap_socket(raw, server_hostname="server.test") as s:
                s.sendall(b"SEND %d\n" % nbytes)
                while got < nbytes:
                    k = s.recv_into(buf)
                    if k == 0:
                        break
                    got += k
                version, cipher = s.version(), s.cipher()[0]
                try:
                    s.unwrap()
                except (OSError, ssl.SSLError):
                    pass
        return {"conn": i, "bytes": got, "version": version, "cipher": cipher,
                "ok": got == nbytes and version == "TLSv1.3" and cipher == WANT_CIPHER,
                "secs": round(time.monotonic() - t0, 3)}

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop(0)
            try:
                r = one(i)
            except Exception as e:  # noqa: BLE001
                r = {"conn": i, "ok": False, "error": repr(e)}
            with lock:
                results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = 0
    for r in sorted(results, key=lambda r: r["conn"]):
        print(json.dumps(r))
        bad += not r["ok"]
    if len(results) != conns or bad:
        print("client: %d of %d connections failed" % (bad + conns - len(results), conns),
              file=sys.stderr)
        return 1
    return 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "server" and len(argv) == 7:
        return server(argv[2], int(argv[3]), argv[4], argv[5], int(argv[6]))
    if len(argv) >= 2 and argv[1] == "client" and len(argv) == 9:
        return client(argv[2], int(argv[3]), argv[4], argv[5], int(argv[6]), int(argv[7]),
                      int(argv[8]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
