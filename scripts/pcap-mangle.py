#!/usr/bin/env python3
"""pcap-mangle.py - rewrite the TCP segmentation of a capture without changing its byte streams.

    pcap-mangle.py [options] IN OUT      write a mangled copy of IN (pcap or pcapng) to OUT
    pcap-mangle.py --streams IN          print one JSON line per TCP connection (stream sizes,
                                         SHA-256 of each direction, first bytes in hex)

Mangling is done within each "run": consecutive payload segments of one direction of one
connection not interrupted by payload (or SYN/FIN/RST) of the other direction, so every
cross-direction ordering of the original exchange is kept.  Within a run, segments are
  - split into tiny pieces (1-10 bytes) at the start of some segments (--split),
  - followed by a retransmission of two consecutive segments merged into one segment that
    carries MORE data than the first original (--merge),
  - duplicated (--dup),
  - reordered within windows of --window segments,
with sequence numbers always matching the bytes they carry and the ACK field of the segment
they came from; IPv4/IPv6 lengths and all checksums are recomputed.  Link types: Ethernet
(with VLAN tags), Linux cooked SLL and SLL2, raw IP, BSD loopback.  After writing, OUT is
read back and its reassembled streams are compared with IN's (exit 1 if they differ).

Only the Python standard library is used.  Deterministic for a given --seed.
"""
import argparse
import hashlib
import json
import random
import struct
import sys

LT_NULL, LT_EN10MB, LT_RAW, LT_LINUX_SLL, LT_LINUX_SLL2 = 0, 1, 101, 113, 276
LT_RAW_ALIASES = (12, 14, 101)


class Pkt:
    """One captured frame; TCP fields parsed when it is TCP over IPv4/IPv6."""

    __slots__ = ('ts', 'data', 'link', 'l3off', 'ipver', 'l4off', 'tcphl', 'payoff', 'payend',
                 'src', 'dst', 'sport', 'dport', 'seq', 'ack', 'flags')

    def __init__(self, ts, data, link):
        self.ts = ts            # nanoseconds
        self.data = data
        self.link = link
        self.ipver = 0
        parse(self)

    def is_tcp(self):
        return self.ipver != 0

    def payload(self):
        return self.data[self.payoff:self.payend]

    def key(self):
        """(connection key, direction) with the direction 0 for the lower endpoint."""
        a, b = (self.src, self.sport), (self.dst, self.dport)
        return (min(a, b), max(a, b)), (0 if a < b else 1)


def l3_offset(link, d):
    if link == LT_EN10MB:
        off, et = 14, struct.unpack_from('>H', d, 12)[0]
        while et in (0x8100, 0x88a8) and len(d) >= off + 4:
            et = struct.unpack_from('>H', d, off + 2)[0]
            off += 4
        return off, et
    if link == LT_LINUX_SLL:
        return 16, struct.unpack_from('>H', d, 14)[0]
    if link == LT_LINUX_SLL2:
        return 20, struct.unpack_from('>H', d, 0)[0]
    if link in LT_RAW_ALIASES:
        return 0, 0x0800 if d and d[0] >> 4 == 4 else 0x86dd
    if link == LT_NULL:
        fam = struct.unpack_from('<I', d, 0)[0]
        if fam > 0xffff:
            fam = struct.unpack_from('>I', d, 0)[0]
        return 4, 0x0800 if fam == 2 else 0x86dd
    return None, None


def parse(p):
    d = p.data
    try:
        off, et = l3_offset(p.link, d)
    except struct.error:
        return
    if off is None or len(d) < off + 20:
        return
    if et == 0x0800 and d[off] >> 4 == 4:
        ihl = (d[off] & 15) * 4
        tot = struct.unpack_from('>H', d, off + 2)[0]
        frag = struct.unpack_from('>H', d, off + 6)[0]
        if d[off + 9] != 6 or frag & 0x3fff or ihl < 20:
            return
        l4, end = off + ihl, off + tot
        src, dst = d[off + 12:off + 16], d[off + 16:off + 20]
        ver = 4
    elif et == 0x86dd and d[off] >> 4 == 6 and len(d) >= off + 40:
        plen = struct.unpack_from('>H', d, off + 4)[0]
        nh, l4 = d[off + 6], off + 40
        end = off + 40 + plen
        while nh in (0, 43, 60):  # hop-by-hop, routing, destination options
            nh, l4 = d[l4], l4 + 8 + d[l4 + 1] * 8
        if nh != 6:
            return
        src, dst = d[off + 8:off + 24], d[off + 24:off + 40]
        ver = 6
    else:
        return
    if end > len(d) or len(d) < l4 + 20:
        return
    thl = (d[l4 + 12] >> 4) * 4
    if thl < 20 or l4 + thl > end:
        return
    p.l3off, p.ipver, p.l4off, p.tcphl = off, ver, l4, thl
    p.payoff, p.payend = l4 + thl, end
    p.src, p.dst = bytes(src), bytes(dst)
    p.sport, p.dport, p.seq, p.ack = struct.unpack_from('>HHII', d, l4)
    p.flags = d[l4 + 13]


def csum(data):
    if len(data) & 1:
        data += b'\0'
    s = sum(struct.unpack('>%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def rebuild(p, seq, payload, ts):
    """A copy of TCP packet p carrying payload at sequence number seq."""
    d = bytearray(p.data[:p.payoff])
    off, l4 = p.l3off, p.l4off
    tcplen = p.tcphl + len(payload)
    if p.ipver == 4:
        struct.pack_into('>H', d, off + 2, l4 - off + tcplen)
        struct.pack_into('>H', d, off + 10, 0)
        struct.pack_into('>H', d, off + 10, csum(bytes(d[off:l4])))
        pseudo = p.src + p.dst + struct.pack('>BBH', 0, 6, tcplen)
    else:
        struct.pack_into('>H', d, off + 4, l4 - off - 40 + tcplen)
        pseudo = p.src + p.dst + struct.pack('>IxxxB', tcplen, 6)
    struct.pack_into('>I', d, l4 + 4, seq & 0xffffffff)
    struct.pack_into('>H', d, l4 + 16, 0)
    seg = bytes(d[l4:]) + payload
    struct.pack_into('>H', d, l4 + 16, csum(pseudo + seg))
    q = Pkt.__new__(Pkt)
    q.ts, q.data, q.link = ts, bytes(d) + payload, p.link
    q.ipver = 0
    parse(q)
    return q


# ------------------------------------------------------------------------------ file formats

def read_capture(path):
    """-> (linktype, [Pkt]) from a pcap or pcapng file ("-" = stdin)."""
    f = sys.stdin.buffer if path == '-' else open(path, 'rb')
    buf = f.read()
    if len(buf) < 24:
        raise ValueError('%s: too short for a capture file' % path)
    magic = buf[:4]
    if magic == b'\x0a\x0d\x0d\x0a':
        return read_pcapng(buf, path)
    for endian, nano in (('<', False), ('>', False), ('<', True), ('>', True)):
        m = 0xa1b23c4d if nano else 0xa1b2c3d4
        if struct.unpack(endian + 'I', magic)[0] == m:
            break
    else:
        raise ValueError('%s: not a pcap or pcapng file' % path)
    link = struct.unpack_from(endian + 'I', buf, 20)[0] & 0x0fffffff
    pkts, off = [], 24
    while off + 16 <= len(buf):
        sec, frac, incl, _orig = struct.unpack_from(endian + 'IIII', buf, off)
        off += 16
        if off + incl > len(buf):
            break  # a truncated last record
        ts = sec * 10**9 + (frac if nano else frac * 1000)
        pkts.append(Pkt(ts, buf[off:off + incl], link))
        off += incl
    return link, pkts


def read_pcapng(buf, path):
    pkts, links, tsres, off, endian, link = [], [], [], 0, '<', None
    while off + 12 <= len(buf):
        btype = struct.unpack_from(endian + 'I', buf, off)[0]
        if btype == 0x0a0d0d0a:
            bom = buf[off + 8:off + 12]
            endian = '<' if bom == b'\x4d\x3c\x2b\x1a' else '>'
            links, tsres = [], []
        blen = struct.unpack_from(endian + 'I', buf, off + 4)[0]
        if blen < 12 or off + blen > len(buf):
            break
        body = buf[off + 8:off + blen - 4]
        if btype == 1:  # IDB
            links.append(struct.unpack_from(endian + 'H', body, 0)[0])
            res = 10**6
            o = 8
            while o + 4 <= len(body):
                code, ln = struct.unpack_from(endian + 'HH', body, o)
                if code == 0:
                    break
                if code == 9 and ln >= 1:
                    v = body[o + 4]
                    res = 2 ** (v & 0x7f) if v & 0x80 else 10 ** v
                o += 4 + ((ln + 3) & ~3)
            tsres.append(res)
        elif btype == 6:  # EPB
            ifc, th, tl, cap, _ln = struct.unpack_from(endian + 'IIIII', body, 0)
            t = (th << 32) | tl
            ts = t * 10**9 // tsres[ifc]
            if link is None:
                link = links[ifc]
            elif links[ifc] != link:
                raise ValueError('%s: interfaces with different link types' % path)
            pkts.append(Pkt(ts, body[20:20 + cap], links[ifc]))
        elif btype == 3:  # SPB
            if link is None:
                link = links[0]
            ln = struct.unpack_from(endian + 'I', body, 0)[0]
            pkts.append(Pkt(pkts[-1].ts if pkts else 0, body[4:4 + ln], links[0]))
        off += blen
    if link is None:
        link = links[0] if links else LT_EN10MB
    return link, pkts


def write_pcap(path, link, pkts):
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, link))
        for p in pkts:
            f.write(struct.pack('<IIII', p.ts // 10**9, (p.ts % 10**9) // 1000,
                                len(p.data), len(p.data)))
            f.write(p.data)


def write_pcapng(path, link, pkts):
    def block(btype, body):
        body += b'\0' * ((4 - len(body) % 4) % 4)
        n = len(body) + 12
        return struct.pack('<II', btype, n) + body + struct.pack('<I', n)

    with open(path, 'wb') as f:
        shb = struct.pack('<IHHq', 0x1a2b3c4d, 1, 0, -1)
        opt = b'pcap-mangle.py'
        shb += struct.pack('<HH', 4, len(opt)) + opt + b'\0' * ((4 - len(opt) % 4) % 4)
        shb += struct.pack('<HH', 0, 0)
        f.write(block(0x0a0d0d0a, shb))
        # IDB with if_tsresol = 9 (nanoseconds).
        idb = struct.pack('<HHI', link, 0, 262144) + struct.pack('<HHB3x', 9, 1, 9)
        idb += struct.pack('<HH', 0, 0)
        f.write(block(1, idb))
        for p in pkts:
            epb = struct.pack('<IIIII', 0, p.ts >> 32, p.ts & 0xffffffff,
                              len(p.data), len(p.data)) + p.data
            f.write(block(6, epb))


# ------------------------------------------------------------------------------ streams

def streams(pkts):
    """{conn: {'dirs': {dir: bytes}, 'first': (src, sport)}} reassembled from seq numbers.
    Raises ValueError if two segments disagree on a byte or a direction has a hole."""
    conns = {}
    for p in pkts:
        if not p.is_tcp():
            continue
        k, dr = p.key()
        c = conns.setdefault(k, {'segs': ([], []), 'isn': [None, None], 'first': None})
        if p.flags & 0x02:  # SYN
            c['isn'][dr] = p.seq
            if not p.flags & 0x10 and c['first'] is None:
                c['first'] = dr
        if p.payend > p.payoff:
            c['segs'][dr].append((p.seq, p.payload()))
    out = {}
    for k, c in conns.items():
        dirs = {}
        for dr in (0, 1):
            segs = c['segs'][dr]
            base = c['isn'][dr] + 1 if c['isn'][dr] is not None else (
                min(s for s, _ in segs) if segs else 0)
            buf, have = bytearray(), bytearray()
            for seq, pl in segs:
                o = (seq - base) & 0xffffffff
                if o > 1 << 30:
                    raise ValueError('segment before the stream start in %r' % (k,))
                if len(buf) < o + len(pl):
                    buf.extend(b'\0' * (o + len(pl) - len(buf)))
                    have.extend(b'\0' * (o + len(pl) - len(have)))
                for i, b in enumerate(pl):
                    if have[o + i] and buf[o + i] != b:
                        raise ValueError('inconsistent retransmission in %r' % (k,))
                buf[o:o + len(pl)] = pl
                have[o:o + len(pl)] = b'\1' * len(pl)
            if 0 in have:
                raise ValueError('hole in the stream at offset %d in %r' % (have.index(0), k))
            dirs[dr] = bytes(buf)
        out[k] = {'dirs': dirs, 'first': c['first']}
    return out


def fmt_ep(ep):
    ip, port = ep
    if len(ip) == 4:
        return '%s:%d' % ('.'.join(str(b) for b in ip), port)
    return '[%s]:%d' % (':'.join('%x' % struct.unpack_from('>H', ip, i)[0]
                                 for i in range(0, 16, 2)), port)


# ------------------------------------------------------------------------------ mangling

def mangle(pkts, rnd, a):
    out_slots = [[] for _ in pkts]   # what to emit at each original position
    runs, cur = [], {}               # conn -> (dir, [indices])
    for i, p in enumerate(pkts):
        if not p.is_tcp():
            out_slots[i].append(p)
            continue
        k, dr = p.key()
        has_data = p.payend > p.payoff
        special = p.flags & 0x07  # FIN, SYN, RST
        run = cur.get(k)
        if special or (has_data and run and run[0] != dr):
            if run:
                runs.append(run[1])
            cur.pop(k, None)
            run = None
        if has_data and not special:
            if run is None:
                run = cur[k] = (dr, [])
            run[1].append(i)
        else:
            out_slots[i].append(p)
    runs.extend(r[1] for r in cur.values())

    for idx in runs:
        segs = []   # (seq, payload, template)
        for i in idx:
            p = pkts[i]
            pl = p.payload()
            seq = p.seq
            if rnd.random() < a.split:
                n = min(len(pl), rnd.randint(20, a.tiny_bytes))
                o = 0
                while o < n:
                    s = min(rnd.randint(1, 10), n - o)
                    segs.append((seq + o, pl[o:o + s], p))
                    o += s
                if o < len(pl):
                    segs.append((seq + o, pl[o:], p))
            else:
                segs.append((seq, pl, p))
        res = []
        for j, sg in enumerate(segs):
            res.append(sg)
            if rnd.random() < a.dup:
                res.append(sg)
            if j > 0 and rnd.random() < a.merge:
                prev = segs[j - 1]
                if (prev[0] + len(prev[1])) & 0xffffffff == sg[0] and \
                        len(prev[1]) + len(sg[1]) < 60000:
                    res.append((prev[0], prev[1] + sg[1], sg[2]))
        if a.window > 1:
            for s in range(0, len(res), a.window):
                w = res[s:s + a.window]
                rnd.shuffle(w)
                res[s:s + a.window] = w
        # Spread the new segments over the run's original positions, in order.
        per = -(-len(res) // len(idx))
        for n, i in enumerate(idx):
            for seq, pl, tpl in res[n * per:(n + 1) * per]:
                out_slots[i].append((seq, pl, tpl))
    out = []
    for i, slot in enumerate(out_slots):
        for x in slot:
            ts = pkts[i].ts
            out.append(Pkt(ts, x.data, x.link) if isinstance(x, Pkt) else
                       rebuild(x[2], x[0], x[1], ts))
    out = delay_acks(out, pkts)
    last = 0
    for q in out:
        q.ts = max(q.ts, last + 1000)
        last = q.ts
    return out


def delay_acks(out, pkts):
    """A receiver cannot acknowledge bytes it has not seen: move every pure ACK to after the
    last data segment it acknowledges (reordering may have put such a segment after it)."""
    isn = {}
    for p in pkts:
        if p.is_tcp() and p.flags & 0x02:
            isn[p.key()] = p.seq
    def rel(k, seq):
        return (seq - isn.get(k, 0)) & 0xffffffff
    res = list(out)
    i = 0
    while i < len(res):
        q = res[i]
        if not q.is_tcp() or q.payend > q.payoff or q.flags & 0x07 or not q.flags & 0x10:
            i += 1
            continue
        k, dr = q.key()
        peer = (k, 1 - dr)
        if peer not in isn:
            i += 1
            continue
        acked = rel(peer, q.ack)
        last = i
        for j in range(i + 1, min(len(res), i + 5000)):
            x = res[j]
            if not x.is_tcp() or x.key()[0] != k:
                continue
            if x.key()[1] == dr and (x.payend > x.payoff or x.flags & 0x07):
                break  # the receiver's own next data or FIN: the stretch ends here
            if x.key()[1] == 1 - dr and x.payend > x.payoff and rel(peer, x.seq) < acked:
                last = j
        if last > i:
            res.insert(last, res.pop(i))
            continue  # res[i] is a new packet now
        i += 1
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('input', help='pcap or pcapng file, - for stdin')
    ap.add_argument('output', nargs='?')
    ap.add_argument('--streams', action='store_true', help='print the TCP streams and exit')
    ap.add_argument('--pcapng', action='store_true', help='write pcapng (default: pcap)')
    ap.add_argument('--copy', action='store_true', help='no mangling: format conversion only')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--split', type=float, default=0.3,
                    help='share of segments whose first bytes become 1-10 byte segments')
    ap.add_argument('--tiny-bytes', type=int, default=400,
                    help='at most this many bytes of a segment are cut into tiny pieces')
    ap.add_argument('--dup', type=float, default=0.1, help='share of segments duplicated')
    ap.add_argument('--merge', type=float, default=0.1,
                    help='share of segments followed by a merged retransmission')
    ap.add_argument('--window', type=int, default=4, help='reordering window (segments)')
    a = ap.parse_args()
    try:
        link, pkts = read_capture(a.input)
        ref = streams(pkts)
    except (ValueError, struct.error, IndexError) as ex:
        print('pcap-mangle.py: %s' % ex, file=sys.stderr)
        return 2
    if a.streams:
        for k, c in ref.items():
            cl = c['first'] if c['first'] is not None else 0
            for_c, for_s = c['dirs'][cl], c['dirs'][1 - cl]
            print(json.dumps({
                'client': fmt_ep(k[cl]), 'server': fmt_ep(k[1 - cl]),
                'c2s_len': len(for_c), 's2c_len': len(for_s),
                'c2s_sha256': hashlib.sha256(for_c).hexdigest(),
                's2c_sha256': hashlib.sha256(for_s).hexdigest(),
                'c2s_head': for_c[:64].hex(), 's2c_head': for_s[:64].hex()}))
        return 0
    if not a.output:
        ap.error('OUT is required')
    rnd = random.Random(a.seed)
    out = pkts if a.copy else mangle(pkts, rnd, a)
    (write_pcapng if a.pcapng else write_pcap)(a.output, link, out)
    link2, back = read_capture(a.output)
    got = streams(back)
    if link2 != link or {k: v['dirs'] for k, v in got.items()} != \
            {k: v['dirs'] for k, v in ref.items()}:
        print('pcap-mangle.py: BUG: the output streams differ from the input', file=sys.stderr)
        return 1
    print('pcap-mangle.py: %d packets in, %d out, link type %d, %d TCP connection(s) kept'
          % (len(pkts), len(back), link, len(ref)), file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
