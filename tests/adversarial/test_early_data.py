#!/usr/bin/python3
"""TLS 1.3 0-RTT against the inline middlebox: real `openssl s_client -sess_in -early_data`
resuming with a ticket to a real `openssl s_server -early_data` (which accepts the early data),
mmtlsd at its defaults (--on-missing-keys block, --server-flight hold) with --block-content
EVILSTRING.  The client shares its secrets over the real key channel as a key-log follower would,
choosing which ones.

  without_early_secret   EVIL as 0-RTT data; every secret shared except the early traffic
                         secret: blocked.  This was an evasion (found in review): the 0-RTT
                         records were counted "skipped", their frames released, and the server
                         read EVIL.
  one_segment_no_secret  the same with the ClientHello and the early data in one TCP segment:
                         blocked (the frame waits for the early secret until --key-wait).
  with_early_secret      EVIL as 0-RTT data, the early secret shared: inspected and blocked.
  clean_with_secret      benign 0-RTT data, the early secret shared: inspected and delivered.

Each of the client's records goes out in its own TCP segment (a relay in the client namespace)
except in one_segment_no_secret.

Run: tests/adversarial/run.sh, or alone as root:
  MMTLS_BUILDDIR=build /usr/bin/python3 tests/adversarial/test_early_data.py  (ONLY=case,...)
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tlslib as T  # noqa: E402

NAME = "test_early_data"
PREFIX = os.environ.get("ADV_PREFIX", "ade")
ONLY = os.environ.get("ONLY", "")
V = T.Verdicts(NAME)
SPORT = 8443  # s_server -early_data (the harness's own server on 443 does no 0-RTT)

ALL13 = {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
         "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"}
EARLY = "CLIENT_EARLY_TRAFFIC_SECRET"


class Sharer(threading.Thread):
    """Follows a key log and shares, for every client random in it, the labels chosen as soon
    as they appear (the early secret first, then the handshake and application secrets)."""

    def __init__(self, kc, keylog, labels):
        super().__init__(daemon=True)
        self.kc, self.kl, self.labels = kc, keylog, labels
        self.sent = {}
        self.stop = False
        self.start()

    def run(self):
        while not self.stop:
            for cr, sec in T.parse_keylog(self.kl).items():
                want = {k: v for k, v in sec.items() if k in self.labels}
                if want and want != self.sent.get(cr):
                    self.kc.send_keys(cr, want, early=EARLY in self.labels)
                    self.sent[cr] = dict(want)
            time.sleep(0.005)


class Relay(threading.Thread):
    """A TCP relay in the client namespace (the server sees the client's own address): the
    client's bytes go out one TLS record per TCP segment, 50 ms apart, as a client that
    controls its own TCP stack can write them.  ports: the relay's client ports, in order."""

    def __init__(self):
        super().__init__(daemon=True)
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        self.ports = []
        self.start()

    def run(self):
        while True:
            a, _ = self.ls.accept()
            b = socket.socket()
            b.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            b.bind((T.CLIENT_IP, 0))
            try:
                b.connect((T.SERVER_IP, SPORT))
            except OSError:
                a.close()
                b.close()
                continue
            self.ports.append(b.getsockname()[1])
            threading.Thread(target=self.up, args=(a, b), daemon=True).start()
            threading.Thread(target=self.down, args=(b, a), daemon=True).start()

    @staticmethod
    def up(a, b):
        buf = b""
        while True:
            try:
                d = a.recv(65536)
            except OSError:
                d = b""
            if not d:
                try:
                    b.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            buf += d
            while len(buf) >= 5 and len(buf) >= 5 + struct.unpack(">H", buf[3:5])[0]:
                n = 5 + struct.unpack(">H", buf[3:5])[0]
                try:
                    b.sendall(buf[:n])
                except OSError:
                    return
                buf = buf[n:]
                time.sleep(0.05)

    @staticmethod
    def down(b, a):
        while True:
            try:
                d = b.recv(65536)
            except OSError:
                d = b""
            try:
                if not d:
                    a.close()
                    return
                a.sendall(d)
            except OSError:
                return


def s_client(W, tag, extra, relay):
    kl = os.path.join(W, "kl-%s.txt" % tag)
    dst = "127.0.0.1:%d" % relay.port if relay else "%s:%d" % (T.SERVER_IP, SPORT)
    p = subprocess.Popen(["openssl", "s_client", "-connect", dst, "-tls1_3", "-keylogfile", kl,
                          "-servername", "server.test"] + extra,
                         stdin=subprocess.PIPE, stdout=open(os.path.join(W, "sc-%s.out" % tag),
                                                            "wb"), stderr=subprocess.STDOUT)
    return p, kl


def finish(p):
    try:
        p.stdin.close()
    except OSError:
        pass
    try:
        p.wait(3)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def server_out(W):
    return open(os.path.join(W, "ss.out"), "rb").read()


def ticket(W, kc, tag, relay):
    """A full handshake, every secret shared: the session file with the server's ticket."""
    sess = os.path.join(W, "sess-%s.pem" % tag)
    p, kl = s_client(W, tag + "-t", ["-sess_out", sess], relay)
    sh = Sharer(kc, kl, ALL13)
    p.stdin.write(b"first connection\n")
    p.stdin.flush()
    time.sleep(1.5)
    finish(p)
    sh.stop = True
    return sess if os.path.exists(sess) else None


def zero_rtt(W, kc, tag, early, labels, relay):
    """Resumes with `early` as 0-RTT data, sharing `labels`; returns (what the server printed
    since, what s_client printed, the relay's client port or None)."""
    sess = ticket(W, kc, tag, relay)
    if sess is None:
        return None, b"", None
    ed = os.path.join(W, "early-%s.txt" % tag)
    open(ed, "wb").write(early)
    before = len(server_out(W))
    n = len(relay.ports) if relay else 0
    p, kl = s_client(W, tag, ["-sess_in", sess, "-early_data", ed], relay)
    sh = Sharer(kc, kl, labels)
    time.sleep(0.5)
    try:
        p.stdin.write(b"after the early data\n")
        p.stdin.flush()
    except OSError:
        pass
    time.sleep(2.5)
    finish(p)
    sh.stop = True
    sc = open(os.path.join(W, "sc-%s.out" % tag), "rb").read()
    port = relay.ports[n] if relay and len(relay.ports) > n else None
    return server_out(W)[before:], sc, port


def accepted(sc):
    return b"Early data was accepted" in sc


EXPECT = {}  # relay client port -> (case, "blocked" | "clean")


def case_without_early_secret(W, kc, relay):
    name = "0-RTT EVIL, every secret but the early one shared"
    new, sc, port = zero_rtt(W, kc, "noearly", b"early:" + T.EVIL + b"\n", ALL13, relay)
    V.check(name, new is not None and T.EVIL not in new,
            "the server never reads EVIL (blocked)",
            "server read EVIL=%s; s_client offered early data: %s" % (
                new is not None and T.EVIL in new, b"Early data" in sc))
    if port:
        EXPECT[port] = (name, "blocked")


def case_one_segment_no_secret(W, kc, relay):
    name = "0-RTT EVIL in the ClientHello's segment, the early secret withheld"
    new, sc, _ = zero_rtt(W, kc, "oneseg", b"early:" + T.EVIL + b"\n", ALL13, None)
    V.check(name, new is not None and T.EVIL not in new,
            "the server never reads EVIL (blocked at --key-wait)",
            "server read EVIL=%s" % (new is not None and T.EVIL in new))


def case_with_early_secret(W, kc, relay):
    name = "0-RTT EVIL, the early secret shared"
    new, sc, port = zero_rtt(W, kc, "early", b"early:" + T.EVIL + b"\n", ALL13 | {EARLY},
                             relay)
    V.check(name, new is not None and T.EVIL not in new,
            "the server never reads EVIL (inspected, blocked)",
            "server read EVIL=%s" % (new is not None and T.EVIL in new))
    if port:
        EXPECT[port] = (name, "blocked")


def case_clean_with_secret(W, kc, relay):
    name = "benign 0-RTT data, the early secret shared"
    data = b"early:benign-zero-rtt-request\n"
    new, sc, port = zero_rtt(W, kc, "clean", data, ALL13 | {EARLY}, relay)
    V.check(name, new is not None and accepted(sc) and data.strip() in new and
            b"after the early data" in new,
            "the server accepts and reads the early data and what follows",
            "server output %r; early data accepted by the server: %s" % (
                (new or b"")[-200:], accepted(sc)))
    if port:
        EXPECT[port] = (name, "clean")


CASES = [case_without_early_secret, case_one_segment_no_secret, case_with_early_secret,
         case_clean_with_secret]


def main():
    if os.geteuid() != 0:
        print("[%s] SKIP: needs root" % NAME)
        return 77
    W = tempfile.mkdtemp(prefix="mmtls-early.")
    os.chmod(W, 0o755)
    tb = T.Testbed(PREFIX, W)
    rc = 1
    try:
        tb.up()
        pki = os.path.join(W, "pki")
        if subprocess.run(["openssl", "version"], capture_output=True).returncode != 0:
            print("[%s] SKIP: no openssl" % NAME)
            return 77
        tb.popen("server", ["timeout", "300", "stdbuf", "-o0", "openssl", "s_server", "-accept",
                            "%s:%d" % (T.SERVER_IP, SPORT), "-cert", pki + "/rsa.crt",
                            "-key", pki + "/rsa.key", "-early_data", "-tls1_3"],
                 stdin=subprocess.PIPE, stdout=open(os.path.join(W, "ss.out"), "wb"),
                 stderr=subprocess.STDOUT)
        mb = tb.start_mbox("tls", ["--block-content", T.EVIL.decode(), "--key-wait", "1500"])
        T.enter_netns(tb.ns("client"))
        for _ in range(50):  # s_server listening
            try:
                socket.create_connection((T.SERVER_IP, SPORT), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        kc = T.KeyChannel(pki)
        relay = Relay()
        for c in CASES:
            name = c.__name__[5:]
            if ONLY and name not in ONLY.split(","):
                continue
            c(W, kc, relay)
        alive = mb.alive()
        mb.stop()
        by = T.tls_by_port(mb.eve())
        for port, (case, want) in sorted(EXPECT.items()):
            t = by.get(port)
            ok, exp = T.eve_verdict(t, want)
            if want == "blocked":
                ok = ok and t.get("early_data") is True
                exp += ", 0-RTT offered"
            V.check("eve: " + case, ok, exp, T.summary(t))
        V.check("mmtlsd did not crash", alive, "alive until stopped", "alive=%s" % alive)
        rc = V.finish()
    finally:
        tb.down()
        print("[%s] work directory: %s" % (NAME, W))
    return rc


if __name__ == "__main__":
    sys.exit(main())
