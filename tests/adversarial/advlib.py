"""Shared harness of the TCP evasion suite (tests/adversarial/test_tcp_evasion.py).

The testbed (scripts/testbed.sh, prefix PREFIX):

    PREFIX-client veth0 198.18.4.1 -- c0 [PREFIX-mbox: mmtlsd -i c0:s0] s0 -- veth0 198.18.4.2 PREFIX-server
                        fd00:4::1                                                 fd00:4::2

  (the IPv6 addresses are added here, without DAD; Conn(bed, v6=True) crafts IPv6 segments).

- The receiver is real: a Python TCP server in the server namespace (this file run with
  --server DIR) that appends every byte it receives on a connection to DIR/recv_<client port>,
  so a case compares what the receiver got with what the middlebox decided.
- The sender is this process: it enters the client namespace (setns) and crafts every segment
  itself on an AF_PACKET socket bound to veth0 (scapy builds and parses the frames).  The client
  kernel knows nothing of these connections: iptables drops the RSTs it would answer the
  server's segments with (only for the suite's source ports, SPORT_LO..SPORT_HI).
- Two more AF_PACKET sockets observe: one on the client's veth0 (the server's segments and the
  RSTs the middlebox sends as the server) and one on the server's veth0 (what passed the
  middlebox towards the server, and the RSTs the middlebox sends as the client).
- One mmtlsd for the whole suite, with a drop rule on EVIL (plain TCP streams are inspected
  when --rules is given) and --block-content EVIL; its eve.json gives alerts and anomalies.
"""
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

# ADV_MBOX_ARGS: more mmtlsd arguments for every file (e.g. "--io fast": another back end); the
# harness and some cases also look in it for what the back end changes.
EXTRA_MBOX_ARGS = os.environ.get("ADV_MBOX_ARGS", "")

CLIENT_IP = "198.18.4.1"
SERVER_IP = "198.18.4.2"
# IPv6 on the same link (unique local addresses, added by Bed.start without DAD)
CLIENT_IP6 = "fd00:4::1"
SERVER_IP6 = "fd00:4::2"
SPORT_LO, SPORT_HI = 21000, 28999
EVIL = b"EVILSTRING"
CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003


def log(msg):
    print(msg, flush=True)


class Skip(Exception):
    pass


# ------------------------------------------------------------------------------------------
# Namespaces


_libc = ctypes.CDLL(None, use_errno=True)


def setns(path):
    """Moves the calling thread into the network namespace at path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (path, os.strerror(e)))
    finally:
        os.close(fd)


class InNs:
    """with InNs("adt-server"): ... opens sockets inside that namespace, then comes back."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.home = os.open("/proc/self/task/%d/ns/net" % threading.get_native_id(), os.O_RDONLY)
        setns("/var/run/netns/" + self.name)
        return self

    def __exit__(self, *a):
        if _libc.setns(self.home, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back")
        os.close(self.home)


def ns_mac(ns, dev="veth0"):
    out = subprocess.run(["ip", "-n", ns, "-j", "link", "show", dev], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)[0]["address"]


# ------------------------------------------------------------------------------------------
# The receiver (run in the server namespace: advlib.py --server DIR PORT)


def server_main(d, port):
    """Listens on SERVER_IP and SERVER_IP6 (one thread each)."""
    socks = []
    for fam, addr in ((socket.AF_INET, SERVER_IP), (socket.AF_INET6, SERVER_IP6)):
        ls = socket.socket(fam, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((addr, port))
        ls.listen(64)
        socks.append(ls)
    open(os.path.join(d, "server.ready"), "w").close()

    def conn(c, peer):
        path = os.path.join(d, "recv_%d" % peer[1])
        c.settimeout(120)
        with open(path, "ab") as f:
            try:
                while True:
                    b = c.recv(65536)
                    if not b:
                        break
                    f.write(b)
                    f.flush()
            except OSError as e:
                f.flush()
                open(path + ".err", "w").write(str(e))
        open(path + ".closed", "w").close()
        c.close()

    def accept(ls):
        while True:
            c, peer = ls.accept()
            threading.Thread(target=conn, args=(c, peer), daemon=True).start()

    threading.Thread(target=accept, args=(socks[1],), daemon=True).start()
    accept(socks[0])


# ------------------------------------------------------------------------------------------
# Observation sockets


class Seg:
    """A TCP segment seen by a Tap."""
    __slots__ = ("flags", "seq", "ack", "win", "plen", "raw")

    def __init__(self, flags, seq, ack, win, plen, raw):
        self.flags, self.seq, self.ack, self.win, self.plen, self.raw = (
            flags, seq, ack, win, plen, raw)


F_FIN, F_SYN, F_RST, F_PSH, F_ACK, F_URG = 1, 2, 4, 8, 16, 32
FLAGS = {"F": F_FIN, "S": F_SYN, "R": F_RST, "P": F_PSH, "A": F_ACK, "U": F_URG}


def csum(b):
    if len(b) & 1:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frag_ranges(cuts, n):
    """cuts (offsets) as (start, end) pairs over n bytes; a list of pairs is kept as given."""
    if cuts and not isinstance(cuts[0], tuple):
        bounds = [0] + list(cuts) + [n]
        return list(zip(bounds[:-1], bounds[1:]))
    return cuts


def fragment_ipv4(dg, cuts, ident):
    """Splits an IPv4 datagram (20-byte header) into fragments at the payload offsets in
    cuts (multiples of 8): a list of datagrams, DF cleared, MF on all but the last, checksums
    complete.  cuts may overlap: (start, end) pairs are used as given when it is a list of
    pairs, so a test can craft overlapping or out-of-range fragments."""
    payload = dg[20:]
    out = []
    for start, end in frag_ranges(cuts, len(payload)):
        assert start % 8 == 0
        mf = 0x2000 if end < len(payload) else 0
        ip = bytearray(dg[:20])
        struct.pack_into("!HHH", ip, 2, 20 + end - start, ident & 0xFFFF, mf | (start // 8))
        struct.pack_into("!H", ip, 10, 0)
        struct.pack_into("!H", ip, 10, csum(bytes(ip)))
        out.append(bytes(ip) + payload[start:end])
    return out


def build_tcp(pseudo, sport, dport, seq, ack, flags, win, urg, data, bad_csum, options):
    """A TCP header and data, its checksum over pseudo (the IP pseudo-header without the
    length) complete, or wrong with bad_csum; options padded with zeros to a multiple of 4."""
    fl = 0
    for ch in flags:
        fl |= FLAGS[ch]
    options += b"\0" * (-len(options) % 4)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      (5 + len(options) // 4) << 4, fl, win, 0, urg) + options + data
    if len(pseudo) == 8:  # IPv4: zero, protocol, TCP length
        c = csum(pseudo + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    else:  # IPv6 (RFC 8200 §8.1): upper-layer length, zeros, next header
        c = csum(pseudo + struct.pack("!IxxxB", len(tcp), 6) + tcp)
    if bad_csum:
        c ^= 0x5A5A
    return tcp[:16] + struct.pack("!H", c) + tcp[18:]


def build_ipv4_tcp(src, dst, sport, dport, seq, ack, flags, win, urg, data, ttl=64,
                   bad_csum=False, ident=0, options=b""):
    """An IPv4 + TCP datagram, checksums complete (bad_csum: the TCP checksum is wrong);
    options: raw TCP option bytes (padded with zeros to a multiple of 4)."""
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = build_tcp(s + d, sport, dport, seq, ack, flags, win, urg, data, bad_csum, options)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ident & 0xFFFF, 0x4000, ttl, 6, 0,
                     s, d)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + tcp


IP6_HOPOPTS, IP6_ROUTING, IP6_FRAGMENT, IP6_DSTOPTS = 0, 43, 44, 60


def ext_opts(proto, opts=b""):
    """A Hop-by-Hop (IP6_HOPOPTS) or Destination Options (IP6_DSTOPTS) header (RFC 8200
    §4.3, §4.6) holding the TLV options opts, padded with PadN to a multiple of 8 bytes: (proto,
    bytes); the next-header byte is filled in by build_ipv6_tcp."""
    pad = -(2 + len(opts)) % 8
    if pad == 1:
        opts += b"\0"  # Pad1
    elif pad:
        opts += bytes([1, pad - 2]) + b"\0" * (pad - 2)  # PadN
    body = opts
    return proto, bytes([0, (2 + len(body)) // 8 - 1]) + body


def ext_routing(rtype, segs_left, addrs=()):
    """A Routing header (RFC 8200 §4.4) of type rtype listing addrs (IPv6 strings)."""
    a = b"".join(socket.inet_pton(socket.AF_INET6, x) for x in addrs)
    return IP6_ROUTING, bytes([0, len(a) // 8, rtype, segs_left]) + b"\0" * 4 + a


def build_ipv6_tcp(src, dst, sport, dport, seq, ack, flags, win, urg, data, hlim=64,
                   bad_csum=False, options=b"", ext=()):
    """An IPv6 + TCP datagram (checksum complete) with the extension headers ext (a list of
    (proto, bytes) from ext_opts / ext_routing, in order) between the fixed header and TCP."""
    s, d = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    tcp = build_tcp(s + d, sport, dport, seq, ack, flags, win, urg, data, bad_csum, options)
    chain = b""
    protos = [p for p, _ in ext] + [6]
    for i, (_, h) in enumerate(ext):
        chain += bytes([protos[i + 1]]) + h[1:]
    payload = chain + tcp
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), protos[0], hlim, s, d) + payload


def fragment_ipv6(dg, cuts, ident):
    """Splits an IPv6 datagram into fragments (RFC 8200 §4.5) at the offsets in cuts (multiples
    of 8) of its fragmentable part: what follows the fixed header and any Hop-by-Hop and Routing
    headers.  cuts may be a list of (start, end) pairs (overlaps, atomic fragments: as given)."""
    off, nh, nh_at = 40, dg[6], 6
    while nh in (IP6_HOPOPTS, IP6_ROUTING):
        nh_at, nh = off, dg[off]
        off += (dg[off + 1] + 1) * 8
    unfrag, payload = bytearray(dg[:off]), dg[off:]
    unfrag[nh_at] = IP6_FRAGMENT
    out = []
    for start, end in frag_ranges(cuts, len(payload)):
        assert start % 8 == 0
        m = 1 if end < len(payload) else 0
        fh = struct.pack("!BBHI", nh, 0, start | m, ident & 0xFFFFFFFF)
        h = bytearray(unfrag)
        struct.pack_into("!H", h, 4, len(h) - 40 + 8 + end - start)
        out.append(bytes(h) + fh + payload[start:end])
    return out


class Tap:
    """Reads an AF_PACKET socket (opened in some namespace) on a thread; keeps the TCP frames
    coming from one of srcs (IPv4 or IPv6 address strings) in per-port queues (keyed by the
    suite-side port).  IP fragments other than the first (no TCP header) are skipped."""

    def __init__(self, ns, srcs, dev="veth0"):
        from scapy.layers.l2 import Ether  # noqa: F401  (imported after setns)
        with InNs(ns):
            self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            # A burst (1,000 segments and their ACKs) while this thread waits for a CPU would
            # overflow the default buffer (~200 KB): the observer would miss ACKs and RSTs.
            self.s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE (root)
            self.s.bind((dev, 0))
        self.s.settimeout(0.2)
        self.src4 = [socket.inet_aton(a) for a in srcs if ":" not in a]
        self.src6 = [socket.inet_pton(socket.AF_INET6, a) for a in srcs if ":" in a]
        self.lock = threading.Lock()
        self.frames = {}  # port -> list of (time, raw ip+tcp bytes)
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _tcp_at(self, b):
        """(offset of the TCP header, IP total length) of the frame b, or None."""
        if b[12:14] == b"\x08\x00":
            if b[14 + 9] != 6 or b[14 + 12:14 + 16] not in self.src4:
                return None
            if struct.unpack("!H", b[20:22])[0] & 0x1FFF:
                return None
            return 14 + (b[14] & 0x0F) * 4, struct.unpack("!H", b[16:18])[0]
        if b[12:14] == b"\x86\xdd" and len(b) >= 14 + 40 and b[22:38] in self.src6:
            nh, off = b[20], 14 + 40
            while nh in (IP6_HOPOPTS, IP6_ROUTING, IP6_DSTOPTS, IP6_FRAGMENT) and off + 8 <= len(b):
                if nh == IP6_FRAGMENT:
                    if struct.unpack("!H", b[off + 2:off + 4])[0] & 0xFFF8:
                        return None
                    nh, off = b[off], off + 8
                else:
                    nh, off = b[off], off + (b[off + 1] + 1) * 8
            if nh != 6:
                return None
            return off, 40 + struct.unpack("!H", b[18:20])[0]
        return None

    def _run(self):
        while not self.stop:
            try:
                b, addr = self.s.recvfrom(70000)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr[2] == socket.PACKET_OUTGOING or len(b) < 14 + 40:
                continue
            at = self._tcp_at(b)
            if at is None or at[0] + 20 > len(b):
                continue
            tcp, iplen = at
            sport, dport = struct.unpack("!HH", b[tcp:tcp + 4])
            port = dport if SPORT_LO <= dport <= SPORT_HI else sport
            seq, ack, off, flags, win = struct.unpack("!IIBBH", b[tcp + 4:tcp + 16])
            plen = iplen - (tcp - 14) - (off >> 4) * 4
            with self.lock:
                self.frames.setdefault(port, []).append(
                    Seg(flags, seq, ack, win, plen, b[14:]))

    def segs(self, port):
        with self.lock:
            return list(self.frames.get(port, []))

    def get(self, port):
        """The frames as scapy packets (for debugging)."""
        from scapy.layers.inet import IP
        from scapy.layers.inet6 import IPv6
        return [(IPv6 if g.raw[0] >> 4 == 6 else IP)(g.raw) for g in self.segs(port)]

    def close(self):
        self.stop = True
        self.t.join(1)
        self.s.close()


# ------------------------------------------------------------------------------------------
# The testbed


def backend_offloads(prefix):
    """What another back end in ADV_MBOX_ARGS needs of the testbed, as in
    tests/integration/test_inline.sh: AF_XDP frames carry no offload state, so the end hosts
    must finish their checksums (tx off); DPDK's net_af_packet takes no GSO or GRO frames."""
    dpdk = "dpdk" in EXTRA_MBOX_ARGS
    if dpdk or "xdp" in EXTRA_MBOX_ARGS:
        off = ["tx", "off"] + (["tso", "off", "gso", "off", "gro", "off"] if dpdk else [])
        for role in ("client", "server"):
            subprocess.run(["ip", "netns", "exec", "%s-%s" % (prefix, role), "ethtool", "-K",
                            "veth0"] + off, check=True, stdout=subprocess.DEVNULL)
    if dpdk:
        for link in ("c0", "s0"):
            subprocess.run(["ip", "netns", "exec", prefix + "-mbox", "ethtool", "-K", link, "gro",
                            "off"], check=True, stdout=subprocess.DEVNULL)


class Bed:
    def __init__(self, prefix, root, build):
        self.p = prefix
        self.root = root
        self.mmtlsd = os.environ.get("MMTLSD", os.path.join(build, "tools/mmtlsd/mmtlsd"))
        self.w = tempfile.mkdtemp(prefix="mmtls-adv-")
        os.chmod(self.w, 0o755)
        self.procs = []
        self.up = False
        self.port = 8000 + random.randrange(900)
        self.sport = SPORT_LO + random.randrange(1000)

    def start(self, mbox_args=()):
        if os.geteuid() != 0:
            raise Skip("needs root")
        try:
            import scapy  # noqa: F401
        except ImportError:
            raise Skip("no scapy (apt install python3-scapy)")
        if not os.access(self.mmtlsd, os.X_OK):
            raise RuntimeError("build first: no %s" % self.mmtlsd)
        for c in ("ip", "iptables", "ip6tables"):
            if shutil.which(c) is None:
                raise Skip("no " + c)
        r = subprocess.run(["bash", os.path.join(self.root, "scripts/testbed.sh"), "up", self.p],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Skip("cannot build the testbed: " + r.stderr.strip())
        self.up = True
        backend_offloads(self.p)
        C, M, S = self.p + "-client", self.p + "-mbox", self.p + "-server"
        for ns, a in ((C, CLIENT_IP6), (S, SERVER_IP6)):
            subprocess.run(["ip", "-n", ns, "addr", "add", a + "/64", "dev", "veth0", "nodad"],
                           check=True)
        # The client kernel must not reset the connections this process crafts.
        for ipt in ("iptables", "ip6tables"):
            subprocess.run(["ip", "netns", "exec", C, ipt, "-A", "OUTPUT", "-p", "tcp",
                            "--tcp-flags", "RST", "RST", "--sport",
                            "%d:%d" % (SPORT_LO, SPORT_HI), "-j", "DROP"], check=True)
        # the receiver
        self.procs.append(subprocess.Popen(
            ["ip", "netns", "exec", S, sys.executable, os.path.abspath(__file__), "--server",
             self.w, str(self.port)], stdout=subprocess.DEVNULL, stderr=open(self.w + "/srv.err", "w")))
        # the middlebox
        rules = os.path.join(self.w, "evil.rules")
        with open(rules, "w") as f:
            f.write('drop tcp any any -> any any (msg:"adversarial EVIL"; content:"%s"; '
                    'sid:9300001; rev:1;)\n' % EVIL.decode())
        self.mlog = os.path.join(self.w, "mmtlsd.log")
        cmd = ["ip", "netns", "exec", M, self.mmtlsd, "-i", "c0:s0", "-l", self.w,
               "--rules", rules, "--block-content", EVIL.decode(), "-v"] + list(mbox_args)
        self.procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                           stderr=open(self.mlog, "w")))
        for _ in range(100):
            if (os.path.exists(self.w + "/server.ready") and
                    "bridging" in open(self.mlog, errors="replace").read()):
                break
            if any(p.poll() is not None for p in self.procs):
                break
            time.sleep(0.1)
        else:
            pass
        if "bridging" not in open(self.mlog, errors="replace").read():
            raise RuntimeError("mmtlsd did not start: " + open(self.mlog).read())
        if not os.path.exists(self.w + "/server.ready"):
            raise RuntimeError("receiver did not start: " + open(self.w + "/srv.err").read())
        # This process lives in the client namespace from now on (scapy reads its routes and
        # interfaces at import: import it only after this).
        setns("/var/run/netns/" + C)
        from scapy.config import conf
        conf.verb = 0
        self.cmac = ns_mac(C)
        self.smac = ns_mac(S)
        self.l2 = (bytes.fromhex(self.smac.replace(":", "")) +
                   bytes.fromhex(self.cmac.replace(":", "")))
        self.tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.tx.bind(("veth0", 0))
        # the server's segments, RSTs forged as the server
        self.ctap = Tap(C, [SERVER_IP, SERVER_IP6])
        # what reached the server from the client side
        self.stap = Tap(S, [CLIENT_IP, CLIENT_IP6])
        # Let the neighbours learn each other (ARP and neighbour discovery pass the middlebox).
        for a in (SERVER_IP, SERVER_IP6):
            subprocess.run(["ip", "netns", "exec", C, "ping", "-c1", "-W1", a],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        for t in ("ctap", "stap"):
            if hasattr(self, t):
                getattr(self, t).close()
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        if self.up:
            subprocess.run(["bash", os.path.join(self.root, "scripts/testbed.sh"), "down", self.p],
                           capture_output=True)
            self.up = False

    def cleanup(self, keep):
        if keep:
            log("kept " + self.w)
        else:
            shutil.rmtree(self.w, ignore_errors=True)

    def next_sport(self):
        self.sport += 1
        if self.sport > SPORT_HI:
            self.sport = SPORT_LO
        return self.sport

    def send(self, ip):
        """Sends an IPv4 or IPv6 datagram (bytes, or a scapy packet) from the client's veth0."""
        if not isinstance(ip, (bytes, bytearray)):
            ip = bytes(ip)
        self.tx.send(self.l2 + (b"\x86\xdd" if ip[0] >> 4 == 6 else b"\x08\x00") + ip)

    def eve(self, sport=None):
        out = []
        try:
            with open(os.path.join(self.w, "eve.json"), errors="replace") as f:
                for line in f:
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    if sport is None or ev.get("src_port") == sport:
                        out.append(ev)
        except FileNotFoundError:
            pass
        return out

    def received(self, sport):
        try:
            with open(os.path.join(self.w, "recv_%d" % sport), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""


# ------------------------------------------------------------------------------------------
# A crafted connection


class Conn:
    """One TCP connection from the client, every segment crafted.  Offsets are stream offsets
    (0 = the first byte after the SYN)."""

    def __init__(self, bed, sport=None, isn=None, v6=False):
        self.bed = bed
        self.v6 = v6
        self.sport = sport or bed.next_sport()
        self.isn = isn if isn is not None else random.randrange(1 << 32)
        self.srv_isn = None
        self.ack = 0
        self.win = 0

    def seq(self, off):
        return (self.isn + 1 + off) & 0xFFFFFFFF

    def seg(self, off, data=b"", flags="PA", ttl=64, bad_csum=False, seq=None, urgptr=0,
            window=65535, options=b"", ext=()):
        """One segment as an IPv4 datagram, or IPv6 (with the extension headers ext) when the
        connection is IPv6; ttl is the hop limit there."""
        s = self.seq(off) if seq is None else seq
        ack = self.ack if "A" in flags else 0
        if self.v6:
            return build_ipv6_tcp(CLIENT_IP6, SERVER_IP6, self.sport, self.bed.port, s, ack,
                                  flags, window, urgptr, data, ttl, bad_csum, options, ext)
        assert not ext
        return build_ipv4_tcp(CLIENT_IP, SERVER_IP, self.sport, self.bed.port, s, ack, flags,
                              window, urgptr, data, ttl, bad_csum, options=options)

    def send(self, off, data=b"", **kw):
        self.bed.send(self.seg(off, data, **kw))

    def spoof_server(self, ack_off, flags="A"):
        """A segment forged as the server's (its address and port as source, acknowledging
        stream offset ack_off) but sent from the client's side: the server drops a datagram
        with its own address as source; the middlebox must not believe it either."""
        srv_seq = (self.srv_isn + 1) & 0xFFFFFFFF
        if self.v6:
            dg = build_ipv6_tcp(SERVER_IP6, CLIENT_IP6, self.bed.port, self.sport, srv_seq,
                                self.seq(ack_off), flags, 65535, 0, b"")
        else:
            dg = build_ipv4_tcp(SERVER_IP, CLIENT_IP, self.bed.port, self.sport, srv_seq,
                                self.seq(ack_off), flags, 65535, 0, b"")
        self.bed.send(dg)

    def server_pkts(self):
        """Segments that reached the client from the server side (Seg)."""
        return self.bed.ctap.segs(self.sport)

    def synack(self):
        for t in self.server_pkts():
            if t.flags & F_SYN and t.flags & F_ACK:
                return t
        return None

    def connect(self, syn_data=b"", timeout=2.0, options=b""):
        """The handshake; options are the SYN's TCP options (e.g. a timestamp)."""
        self.bed.send(self.seg(-1, syn_data, flags="S", seq=self.isn, options=options))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for t in self.server_pkts():
                if t.flags & F_SYN and t.flags & F_ACK and t.ack == self.seq(0):
                    self.srv_isn = t.seq
                    self.ack = (t.seq + 1) & 0xFFFFFFFF
                    self.win = t.win
                    self.send(0, flags="A")
                    return True
            time.sleep(0.01)
        return False

    def acked(self):
        """Highest stream offset the server acknowledged (-1 if none)."""
        best = -1
        for t in self.server_pkts()[-64:]:
            if t.flags & F_ACK and not t.flags & F_RST:
                d = (t.ack - self.seq(0)) & 0xFFFFFFFF
                if d < 1 << 31:
                    best = max(best, d)
        return best

    def wait_acked(self, off, timeout=2.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.acked() >= off:
                return True
            time.sleep(0.01)
        return False

    def rst_to_client(self):
        """RSTs the client got "from the server" (the server's own or the middlebox's)."""
        return [t for t in self.server_pkts() if t.flags & F_RST]

    def rst_to_server(self):
        """RSTs that reached the server "from the client": this suite sends none except in the
        RST cases, and the client kernel's are dropped, so these are the middlebox's."""
        return [t for t in self.bed.stap.segs(self.sport) if t.flags & F_RST]

    def received(self):
        return self.bed.received(self.sport)

    def close(self, off):
        self.send(off, flags="FA")


# ------------------------------------------------------------------------------------------
# Verdicts


class Result:
    def __init__(self):
        self.fails = []
        self.xfails = []
        self.passes = []


def observe(bed, c, settle=0.5):
    """What happened to connection c: blocked (RSTs from the middlebox at both ends), the
    receiver's bytes, alerts and anomalies in eve."""
    time.sleep(settle)
    # A block resets both ends; on a loaded machine one watcher may see its RST later than
    # the other: give the second up to 3 s more before reporting.
    for _ in range(30):
        if bool(c.rst_to_client()) == bool(c.rst_to_server()):
            break
        time.sleep(0.1)
    ev = bed.eve(c.sport)
    return {
        "rst_client": len(c.rst_to_client()),
        "rst_server": len(c.rst_to_server()),
        "received": c.received(),
        "alerts": [e for e in ev if e.get("event_type") == "alert"],
        "anomalies": [e.get("anomaly", {}).get("event") for e in ev
                      if e.get("event_type") == "anomaly"],
    }


def describe(o):
    r = o["received"]
    return ("rst->client %d, rst->server %d, receiver got %d bytes%s, alerts %d, anomalies %s" %
            (o["rst_client"], o["rst_server"], len(r), " (with EVIL)" if EVIL in r else "",
             len(o["alerts"]), sorted(set(o["anomalies"]))))


def benign(n, tag=b"b"):
    """n bytes of harmless text, different per tag."""
    base = (b"harmless-" + tag + b"-payload-0123456789 ")
    return (base * (n // len(base) + 1))[:n]


def expect_block(o, what):
    """Blocked: an RST reached both ends, EVIL never reached the receiver."""
    if EVIL in o["received"]:
        return "EVASION: the receiver got EVILSTRING (%s); expected block. got: %s" % (
            what, describe(o))
    if o["rst_client"] < 1 or o["rst_server"] < 1:
        return "expected block (RST to both ends) for %s; got: %s" % (what, describe(o))
    return None


def expect_pass(o, want, what):
    """Passed and inspected as the receiver saw it: no RST, the receiver got exactly want."""
    if o["rst_client"] or o["rst_server"]:
        return "expected pass for %s; got: %s" % (what, describe(o))
    if o["received"] != want:
        return "expected the receiver to get %d bytes %r...; got %d bytes %r... (%s)" % (
            len(want), want[:40], len(o["received"]), o["received"][:40], describe(o))
    return None


def connect(bed, syn_options=b"", **kw):
    """A connection (Conn(bed, **kw)) after its handshake; syn_options: the SYN's TCP options."""
    c = Conn(bed, **kw)
    if not c.connect(options=syn_options):
        raise RuntimeError("no SYN-ACK for port %d" % c.sport)
    return c


def run_cases(bed, cases, only=None, tag="adv-tcp"):
    res = Result()
    for name, fn, xfail in cases:
        if only and not any(s in name for s in only):
            continue
        t0 = time.monotonic()
        try:
            err = fn(bed)
        except Exception as e:  # a harness error is a failure of the case
            import traceback
            traceback.print_exc()
            err = "exception: %r" % (e,)
        dt = time.monotonic() - t0
        if err is None:
            if xfail:
                log("[%s] XPASS %-34s (%.1fs) — expected to fail: %s" % (tag, name, dt, xfail))
            else:
                log("[%s] ok    %-34s (%.1fs)" % (tag, name, dt))
            res.passes.append(name)
        elif xfail:
            log("[%s] XFAIL %-34s (%.1fs): %s\n          reason: %s" % (tag, name, dt, err, xfail))
            res.xfails.append(name)
        else:
            log("[%s] FAIL  %-34s (%.1fs): %s" % (tag, name, dt, err))
            res.fails.append(name)
    return res


def main(tag, cases, prefix, root, build, mbox_args=()):
    """Runs a case file: one testbed and one mmtlsd (extra mbox_args) for every case.  Returns
    the exit code (77: skipped)."""
    bed = Bed(prefix, root, build)
    only = [s for s in os.environ.get("ONLY", "").split(",") if s]
    mbox_args = list(mbox_args) + EXTRA_MBOX_ARGS.split()
    t0 = time.monotonic()
    try:
        bed.start(mbox_args)
        res = run_cases(bed, cases, only, tag)
    except Skip as e:
        print("[%s] SKIP: %s" % (tag, e))
        bed.stop()
        bed.cleanup(False)
        return 77
    except Exception as e:
        print("[%s] FAIL: harness: %s" % (tag, e))
        bed.stop()
        bed.cleanup(True)
        return 1
    bed.stop()
    print("[%s] %d passed, %d failed, %d expected failures (%.0f s)" %
          (tag, len(res.passes), len(res.fails), len(res.xfails), time.monotonic() - t0))
    bed.cleanup(bool(os.environ.get("KEEP")) or bool(res.fails))
    return 1 if res.fails else 0


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--server":
    server_main(sys.argv[2], int(sys.argv[3]))
