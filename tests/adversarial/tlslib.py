"""TLS- and key-level adversarial tests against the inline middlebox (issue 7): the testbed,
mmtlsd, a recording TLS server, a TLS client whose records the test can re-frame or craft,
and a key channel client (docs/keyproto.md) that delivers keys when the test says.

Standard library + python3-cryptography (Debian).  Run as root with /usr/bin/python3.

  client ns 198.18.4.1 (and .3)  --  mbox: mmtlsd -i c0:s0, key server 198.18.6.2:4433  --
  server ns 198.18.4.2: this file run as `tlslib.py serve DIR` (ports 443 normal, 444 sends
  0.5-RTT data before the client's Finished)

The test process moves itself into the client namespace (setns), so its sockets are the
client's; helpers run in the other namespaces through `ip netns exec`.
"""
import ctypes
import hashlib
import hmac
import json
import os
import select
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

import advlib  # noqa: E402 (same directory: the offloads other back ends need)
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD = os.environ.get("MMTLS_BUILDDIR", os.path.join(ROOT, "build"))
MMTLSD = os.environ.get("MMTLSD", os.path.join(BUILD, "tools", "mmtlsd", "mmtlsd"))
CLIENT_IP, CLIENT2_IP, SERVER_IP, KEYSRV = "198.18.4.1", "198.18.4.3", "198.18.4.2", "198.18.6.2"
KEYPORT = 4433
EVIL = b"EVILSTRING-7f3a"
# A KeyChannel: when set, every Client shares its TLS 1.3 server handshake secret as soon as its
# key log has it (at the ServerHello), as the preload shim and mmtls-keyagent do: the middlebox
# holds the server's flight until they come (mmtlsd --server-flight hold, the default).
HS_KEYS = None

# ---------------------------------------------------------------------------------------------
# verdicts


class Verdicts:
    """Each case: expected vs got, printed; the file's exit status from the failures."""

    def __init__(self, name):
        self.name, self.fails, self.xfails, self.oks = name, [], [], 0

    def check(self, case, cond, expected, got, xfail=None):
        tag = "ok" if cond else ("XFAIL" if xfail else "FAIL")
        print("[%s] %s: %s\n      expected: %s\n      got:      %s%s" % (
            self.name, tag, case, expected, got, ("\n      xfail: " + xfail) if xfail and
            not cond else ""), flush=True)
        if cond:
            self.oks += 1
        elif xfail:
            self.xfails.append(case)
        else:
            self.fails.append(case)
        return cond

    def finish(self):
        print("[%s] %d ok, %d xfail, %d failed%s" % (
            self.name, self.oks, len(self.xfails), len(self.fails),
            (": " + "; ".join(self.fails)) if self.fails else ""), flush=True)
        return 1 if self.fails else 0


# ---------------------------------------------------------------------------------------------
# namespaces, testbed, mmtlsd

CLONE_NEWNET = 0x40000000


def enter_netns(name):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/var/run/netns/" + name, os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns " + name)
    os.close(fd)


class Testbed:
    def __init__(self, prefix, work):
        self.p, self.w = prefix, work
        self.procs = []

    def ns(self, role):
        return "%s-%s" % (self.p, role)

    def up(self):
        subprocess.run(["bash", os.path.join(ROOT, "scripts/testbed.sh"), "up", self.p],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["bash", os.path.join(ROOT, "scripts/mkcerts.sh"),
                        os.path.join(self.w, "pki")], check=True, stdout=subprocess.DEVNULL)
        advlib.backend_offloads(self.p)
        # a second client address ("another client") on the client's link
        subprocess.run(["ip", "-n", self.ns("client"), "addr", "add", CLIENT2_IP + "/24",
                        "dev", "veth0"], check=True)

    def popen(self, role, argv, **kw):
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(role)] + argv, **kw)
        self.procs.append(p)
        return p

    def down(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        subprocess.run(["bash", os.path.join(ROOT, "scripts/testbed.sh"), "down", self.p],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start_server(self):
        d = os.path.join(self.w, "srv")
        os.makedirs(d, exist_ok=True)
        p = self.popen("server", ["timeout", "300", "/usr/bin/python3", os.path.abspath(__file__),
                                  "serve", d, os.path.join(self.w, "pki")],
                       stdout=open(os.path.join(self.w, "srv.out"), "w"), stderr=subprocess.STDOUT)
        for _ in range(100):
            if os.path.exists(os.path.join(d, "ready")):
                return p
            time.sleep(0.05)
        raise RuntimeError("server did not start: " + open(os.path.join(self.w, "srv.out")).read())

    def start_mbox(self, tag, extra):
        pki = os.path.join(self.w, "pki")
        logdir = os.path.join(self.w, tag)
        os.makedirs(logdir, exist_ok=True)
        logf = os.path.join(self.w, tag + ".log")
        p = self.popen("mbox", ["timeout", "300", MMTLSD, "-i", "c0:s0", "--key-listen",
                                "%s:%d" % (KEYSRV, KEYPORT), "--cert", pki + "/mbox.crt",
                                "--key", pki + "/mbox.key", "--client-ca", pki + "/ca.crt",
                                "-l", logdir, "-v"] + extra +
                       advlib.EXTRA_MBOX_ARGS.split(),
                       stdout=subprocess.DEVNULL, stderr=open(logf, "w"))
        for _ in range(100):
            if "bridging" in open(logf).read():
                return Mbox(p, logdir, logf)
            if p.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("mmtlsd did not start: " + open(logf).read())


class Mbox:
    def __init__(self, p, logdir, logf):
        self.p, self.logdir, self.logf = p, logdir, logf

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        """Stops mmtlsd (sessions end, stats written); returns its exit status."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        try:
            return self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()

    def eve(self):
        out = []
        path = os.path.join(self.logdir, "eve.json")
        if os.path.exists(path):
            for line in open(path):
                line = line.strip()
                if line:
                    out.append(json.loads(line))
        return out


def eve_verdict(t, want):
    """Whether a session's eve tls event t (tls_by_port) shows the expected verdict: want
    "blocked..." (a suffix is the caller's own extra check), "clean" (decrypted, not blocked),
    anything else: logged.  Returns (ok, what was expected)."""
    if want.startswith("blocked"):
        return t is not None and t.get("blocked") is True, "session blocked"
    if want == "clean":
        return (t is not None and not t.get("blocked") and t.get("key_status") == "decrypted",
                "session decrypted, not blocked")
    return t is not None, "session logged"


def tls_by_port(events):
    """Client port -> the eve tls event of its session (with its anomalies and alerts)."""
    m = {}
    for e in events:
        port = e.get("src_port") if e.get("event_type") != "alert" else None
        if e.get("event_type") == "tls":
            m.setdefault(port, {}).update(e["tls"])
        elif e.get("event_type") == "anomaly":
            m.setdefault(port, {}).setdefault("anomalies", []).append(e["anomaly"]["event"])
        elif e.get("event_type") == "alert":
            cp = e["src_port"] if e.get("direction", "to_server") == "to_server" else \
                e.get("dest_port")
            for p in (e.get("src_port"), e.get("dest_port")):
                if p not in (443, 444, 445):
                    cp = p
            m.setdefault(cp, {}).setdefault("alerts", []).append(e["alert"]["signature_id"])
    return m


def stats(events):
    s = [e["stats"] for e in events if e.get("event_type") == "stats"]
    return s[-1] if s else {}


def summary(t):
    if t is None:
        return "no session logged"
    return "blocked=%s key_status=%s errors=%s anomalies=%s alerts=%s plain=%s/%s" % (
        t.get("blocked"), t.get("key_status"), sorted(x["code"] for x in t.get("errors", [])),
        sorted(set(t.get("anomalies", []))), t.get("alerts", []),
        t.get("plain_bytes_toserver"), t.get("plain_bytes_toclient"))


# ---------------------------------------------------------------------------------------------
# TLS crypto for crafted records

TLS13_SUITES = {"TLS_AES_128_GCM_SHA256": (AESGCM, 16, hashes.SHA256),
                "TLS_AES_256_GCM_SHA384": (AESGCM, 32, hashes.SHA384),
                "TLS_CHACHA20_POLY1305_SHA256": (ChaCha20Poly1305, 32, hashes.SHA256)}
# OpenSSL name -> (AEAD, key length, fixed IV length, PRF hash)
TLS12_SUITES = {"ECDHE-RSA-AES128-GCM-SHA256": (AESGCM, 16, 4, "sha256"),
                "ECDHE-RSA-AES256-GCM-SHA384": (AESGCM, 32, 4, "sha384"),
                "ECDHE-RSA-CHACHA20-POLY1305": (ChaCha20Poly1305, 32, 12, "sha256")}


def hkdf_expand_label(secret, label, context, length, h):
    """RFC 8446 §7.1 HKDF-Expand-Label."""
    full = b"tls13 " + label
    info = struct.pack(">H", length) + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(algorithm=h(), length=length, info=info).derive(secret)


def prf12(secret, label, seed, n, hname):
    """RFC 5246 §5 P_hash."""
    out, a = b"", label + seed
    while len(out) < n:
        a = hmac.new(secret, a, hname).digest()
        out += hmac.new(secret, a + label + seed, hname).digest()
    return out[:n]


class Sealer13:
    """TLS 1.3 record protection for one direction (RFC 8446 §5.2, §5.3)."""

    def __init__(self, suite, secret, seq=0):
        aead, klen, h = TLS13_SUITES[suite]
        self.aead = aead(hkdf_expand_label(secret, b"key", b"", klen, h))
        self.iv = hkdf_expand_label(secret, b"iv", b"", 12, h)
        self.seq = seq

    def seal(self, content, inner_type=23, pad=0, outer_type=23, version=0x0303):
        inner = content + bytes([inner_type]) + b"\0" * pad
        ln = len(inner) + 16
        hdr = struct.pack(">BHH", outer_type, version, ln & 0xFFFF)
        nonce = bytes(a ^ b for a, b in zip(self.iv, self.seq.to_bytes(12, "big")))
        self.seq += 1
        return hdr + self.aead.encrypt(nonce, inner, hdr)


class Sealer12:
    """TLS 1.2 AEAD record protection, client to server (RFC 5288, RFC 7905)."""

    def __init__(self, suite, master, client_random, server_random, seq=1, server=False):
        aead, klen, ivlen, hname = TLS12_SUITES[suite]
        kb = prf12(master, b"key expansion", server_random + client_random,
                   2 * klen + 2 * ivlen, hname)
        ck, sk = kb[:klen], kb[klen:2 * klen]
        civ, siv = kb[2 * klen:2 * klen + ivlen], kb[2 * klen + ivlen:]
        self.aead = aead(sk if server else ck)
        self.iv = siv if server else civ
        self.chacha = aead is ChaCha20Poly1305
        self.seq = seq

    def seal(self, content, outer_type=23, version=0x0303):
        seqb = self.seq.to_bytes(8, "big")
        aad = seqb + struct.pack(">BHH", outer_type, version, len(content))
        if self.chacha:
            nonce = bytes(a ^ b for a, b in zip(self.iv, self.seq.to_bytes(12, "big")))
            body = self.aead.encrypt(nonce, content, aad)
        else:
            nonce = self.iv + seqb
            body = seqb + self.aead.encrypt(nonce, content, aad)
        self.seq += 1
        return struct.pack(">BHH", outer_type, version, len(body)) + body


def parse_keylog(path):
    """client random (bytes) -> {label: secret bytes}."""
    out = {}
    if not os.path.exists(path):
        return out
    for line in open(path):
        f = line.split()
        if len(f) == 3:
            out.setdefault(bytes.fromhex(f[1]), {})[f[0]] = bytes.fromhex(f[2])
    return out


def records(data):
    """Splits whole TLS records; returns ([(type, body)], rest)."""
    out, off = [], 0
    while len(data) - off >= 5:
        t, _, ln = struct.unpack(">BHH", data[off:off + 5])
        if len(data) - off - 5 < ln:
            break
        out.append((t, data[off + 5:off + 5 + ln]))
        off += 5 + ln
    return out, data[off:]


def reframe(data, size, rtype=None):
    """The records in data cut into records of at most `size` bytes of body each."""
    recs, rest = records(data)
    out = b""
    for t, body in recs:
        if rtype is not None and t != rtype:
            out += struct.pack(">BHH", t, 0x0303, len(body)) + body
            continue
        for i in range(0, len(body), size):
            out += struct.pack(">BHH", t, 0x0301 if t == 22 else 0x0303,
                               len(body[i:i + size])) + body[i:i + size]
    return out + rest


# ---------------------------------------------------------------------------------------------
# key channel (docs/keyproto.md)

KIND = {"CLIENT_EARLY_TRAFFIC_SECRET": 1, "CLIENT_HANDSHAKE_TRAFFIC_SECRET": 2,
        "SERVER_HANDSHAKE_TRAFFIC_SECRET": 3, "CLIENT_TRAFFIC_SECRET_0": 4,
        "SERVER_TRAFFIC_SECRET_0": 5, "CLIENT_RANDOM": 32}


class KeyChannel:
    def __init__(self, pki):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(pki + "/ca.crt")
        ctx.load_cert_chain(pki + "/client.crt", pki + "/client.key")
        ctx.check_hostname = False
        raw = socket.create_connection((KEYSRV, KEYPORT), timeout=5)
        self.s = ctx.wrap_socket(raw)

    def send_keys(self, client_random, secrets, tls13=True, tup=None, early=False):
        """secrets: {label: bytes} (key log labels).  tup: (client ip, client port, server ip,
        server port) to send a TUPLE.  early: the early traffic secret goes too (EARLY flag)."""
        flags = 8  # KEYLOG: suite and version come from the ServerHello
        body = client_random
        tb = b""
        if tup is not None:
            flags |= 1
            tb = b"\x04" + socket.inet_aton(tup[0]) + socket.inet_aton(tup[2]) + \
                struct.pack(">HH", tup[1], tup[3])
        items = [(KIND[k], v) for k, v in secrets.items() if k in KIND and
                 (KIND[k] == 32) != tls13 and (KIND[k] != 1 or early)]
        if any(k == 1 for k, _ in items):
            flags |= 4
        body += bytes([flags]) + tb + struct.pack(">HHB", 0x0304 if tls13 else 0x0303, 0,
                                                  len(items))
        for k, v in items:
            body += bytes([k, len(v)]) + v
        self.s.sendall(struct.pack(">BBH", 1, 1, len(body)) + body)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# the client


class Client:
    """A TLS client over a kernel socket; ssl runs on memory BIOs so every byte sent is under
    the test's control.  After the handshake, send() crafts records (the ssl object's writer is
    no longer used); recv() still decrypts what the server sends."""

    def __init__(self, work, tag, tls12=None, src=None, port=443, sni="server.test",
                 pki=None, timeout=5.0):
        self.tag, self.work = tag, work
        self.keylog = os.path.join(work, "kl-%s.txt" % tag)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.keylog_filename = self.keylog
        if tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(tls12)
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=sni)
        self.sock = socket.socket()
        self.sock.settimeout(timeout)
        if src:
            self.sock.bind((src, 0))
        self.sock.connect((SERVER_IP, port))
        self.cport = self.sock.getsockname()[1]
        self.tls12 = tls12
        self.sent_hello = b""
        self.server_bytes = b""
        self.reset = False
        self.eof = False
        self.plain_in = b""
        self.sealer = None
        self.hs_shared = False

    def share_hs(self):
        """Sends the handshake secrets over HS_KEYS once the key log has the server's."""
        if HS_KEYS is None or self.hs_shared or self.tls12 or not self.sent_hello:
            return
        # OpenSSL logs the server's at the ServerHello, its own after the server Finished
        sec = {k: v for k, v in self.secrets().items() if "HANDSHAKE" in k}
        if "SERVER_HANDSHAKE_TRAFFIC_SECRET" in sec:
            HS_KEYS.send_keys(self.client_random, sec)
            self.hs_shared = True

    # -- raw I/O --
    def send_raw(self, data):
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            self.reset = True
            return False

    def _pull(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return None
        try:
            d = self.sock.recv(65536)
        except ConnectionResetError:
            self.reset = True
            return b""
        except OSError:
            self.reset = True
            return b""
        if not d:
            self.eof = True
        return d

    def handshake(self, hello_frame=None, deadline=5.0):
        """hello_frame: function rewriting the client's first flight bytes (the ClientHello)."""
        first = True
        end = time.time() + deadline
        while time.time() < end:
            try:
                self.obj.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            except ssl.SSLError:
                return False
            data = self.out.read()
            if data:
                if first:
                    self.sent_hello = data
                    if hello_frame:
                        data = hello_frame(data)
                    first = False
                self.share_hs()
                if not self.send_raw(data):
                    return False
            self.share_hs()
            if done:
                return True
            d = self._pull(end - time.time())
            if not d:
                return False
            self.server_bytes += d
            self.inc.write(d)
        return False

    @property
    def client_random(self):
        return self.sent_hello[11:43]

    def secrets(self):
        return parse_keylog(self.keylog).get(self.client_random, {})

    def suite(self):
        return self.obj.cipher()[0]

    def tuple(self, src=CLIENT_IP, port=443):
        return (self.sock.getsockname()[0], self.cport, SERVER_IP, port)

    # -- crafted application records --
    def _sealer(self):
        if self.sealer is None:
            sec = self.secrets()
            if self.tls12:
                sr = self.server_bytes[11:43]
                self.sealer = Sealer12(self.suite(), sec["CLIENT_RANDOM"], self.client_random, sr)
            else:
                self.sealer = Sealer13(self.suite(), sec["CLIENT_TRAFFIC_SECRET_0"])
        return self.sealer

    def record(self, content, **kw):
        return self._sealer().seal(content, **kw)

    def send(self, content, per_record=None, pad=0, **kw):
        """Crafts records of at most per_record bytes of content (each padded by pad zeros in
        TLS 1.3) and sends them in one write."""
        n = per_record or max(1, len(content))
        out = b""
        for i in range(0, max(1, len(content)), n):
            if self.tls12:
                out += self.record(content[i:i + n], **kw)
            else:
                out += self.record(content[i:i + n], pad=pad, **kw)
        return self.send_raw(out)

    def recv(self, wait=1.0):
        """Reads what comes within `wait` s: decrypted bytes appended to plain_in."""
        end = time.time() + wait
        d = b""
        while True:
            if d:
                self.inc.write(d)
            while True:
                try:
                    b = self.obj.read(65536)
                except ssl.SSLError:  # want-read, close_notify, alerts
                    break
                if not b:
                    break
                self.plain_in += b
            if time.time() >= end or self.eof or self.reset:
                break
            d = self._pull(max(0.0, end - time.time()))
            if d is None:
                break
        return self.plain_in

    def close(self, rst=False):
        try:
            if rst:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass


def server_got(work, cport):
    """What the server received (plaintext) on the connection from client port cport, and its
    status lines."""
    d = os.path.join(work, "srv")
    p = os.path.join(d, "c%d.bin" % cport)
    s = os.path.join(d, "c%d.log" % cport)
    data = open(p, "rb").read() if os.path.exists(p) else b""
    st = open(s).read() if os.path.exists(s) else ""
    return data, st


# ---------------------------------------------------------------------------------------------
# the server (runs in the server namespace: `tlslib.py serve DIR PKI`)


def _serve_conn(conn, addr, d, pki, lport):
    cport = addr[1]
    datf = open(os.path.join(d, "c%d.bin" % cport), "wb")
    logf = open(os.path.join(d, "c%d.log" % cport), "w")

    def log(msg):
        logf.write("%.3f %s\n" % (time.time(), msg))
        logf.flush()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki + "/rsa.crt", pki + "/rsa.key")
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"
                    "ECDHE-RSA-CHACHA20-POLY1305")
    ctx.num_tickets = 0
    kl = os.path.join(d, "keylog-%d.txt" % cport)
    ctx.keylog_filename = kl
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=True)
    conn.settimeout(20)
    hs_done = False
    sent_half = False
    got = b""
    try:
        while True:
            if not hs_done:
                try:
                    obj.do_handshake()
                    hs_done = True
                    log("handshake %s %s" % (obj.version(), obj.cipher()[0]))
                except ssl.SSLWantReadError:
                    pass
            o = out.read()
            if o:
                conn.sendall(o)
            if lport == 444 and not sent_half and not hs_done and o:
                # 0.5-RTT (RFC 8446 §2): application data right after the server's Finished
                for v in parse_keylog(kl).values():
                    if "SERVER_TRAFFIC_SECRET_0" in v:
                        sec = v["SERVER_TRAFFIC_SECRET_0"]
                        suite = obj.cipher()[0] if obj.cipher() else (
                            "TLS_AES_256_GCM_SHA384" if len(sec) == 48 else
                            "TLS_AES_128_GCM_SHA256")
                        sl = Sealer13(suite, sec)
                        conn.sendall(sl.seal(b"half-rtt:" + EVIL))
                        sent_half = True
                        log("sent 0.5-RTT data")
            if hs_done:
                while True:
                    try:
                        b = obj.read(65536)
                    except ssl.SSLWantReadError:
                        break
                    if not b:
                        break
                    datf.write(b)
                    datf.flush()
                    got = (got + b)[-16:]
                    log("data %d" % len(b))
                    if lport == 445 and not sent_half and obj.version() == "TLSv1.3":
                        # padded responses (RFC 8446 §5.4): 1 byte of content per record, then
                        # the string; depth must count plaintext, not padding
                        for v in parse_keylog(kl).values():
                            if "SERVER_TRAFFIC_SECRET_0" in v:
                                sl = Sealer13(obj.cipher()[0], v["SERVER_TRAFFIC_SECRET_0"])
                                conn.sendall(b"".join(sl.seal(b"a", pad=16000)
                                                      for _ in range(8)) + sl.seal(EVIL))
                                sent_half = True
                                log("sent padded response")
                    if got.endswith(b"PING\n") and lport == 443:
                        obj.write(b"PONG\n")
                        got = b""
                        conn.sendall(out.read())
            o = out.read()  # a renegotiation's handshake messages, written by read()
            if o:
                conn.sendall(o)
            d_ = conn.recv(65536)
            if not d_:
                log("eof")
                break
            inc.write(d_)
    except ConnectionResetError:
        log("reset")
    except ssl.SSLError as ex:
        log("tls error %s" % ex.reason)
        try:
            conn.sendall(out.read())
        except OSError:
            pass
    except OSError as ex:
        log("error %s" % ex)
    finally:
        conn.close()


def serve(d, pki):
    socks = []
    for port in (443, 444, 445):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((SERVER_IP, port))
        s.listen(64)
        socks.append(s)
    open(os.path.join(d, "ready"), "w").close()
    while True:
        r, _, _ = select.select(socks, [], [], 1)
        for s in r:
            conn, addr = s.accept()
            threading.Thread(target=_serve_conn, args=(conn, addr, d, pki,
                                                       s.getsockname()[1]), daemon=True).start()


if __name__ == "__main__" and len(sys.argv) >= 4 and sys.argv[1] == "serve":
    serve(sys.argv[2], sys.argv[3])
