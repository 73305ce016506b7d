#!/usr/bin/env python3
"""pcapout_check.py PCAP OUTDIR - independent check of an mmtlsd --pcap-out file (standard
library only).

Checks the classic pcap header (LINKTYPE_ETHERNET, microseconds), timestamps never going back,
and for every frame: Ethernet II, IPv4 (header checksum) or IPv6, TCP checksum, payload <= 1460
bytes.  Per connection: SYN, SYN-ACK, ACK first with consistent numbers; every data segment at
the next sequence number of its side or after it (a gap: counted); every acknowledgement
equal to the other side's next sequence number; the end FIN/ACK, FIN/ACK, ACK (or RST).

Writes OUTDIR/<client port>.c2s / .s2c (the payload of each direction, in order) and prints
one line per connection: "<client port> <server port> <ip version> <c2s bytes> <s2c bytes>
<c2s gaps> <s2c gaps> <end>" with end "fin" or "rst".  Exit 1 with messages on any problem.
"""
import os
import struct
import sys


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def main():
    path, outdir = sys.argv[1], sys.argv[2]
    raw = open(path, "rb").read()
    errs = []
    if len(raw) < 24:
        print("short file", file=sys.stderr)
        return 1
    magic, vmaj, vmin, _, _, snap, link = struct.unpack("<IHHiIII", raw[:24])
    if magic != 0xA1B2C3D4 or (vmaj, vmin) != (2, 4) or link != 1:
        errs.append("bad header magic=%x version=%d.%d link=%d" % (magic, vmaj, vmin, link))
    off, last_ts, nfr = 24, 0, 0
    flows = {}  # key (client ip, client port, server ip, server port) -> state
    order = []
    while off < len(raw) and not errs:
        if len(raw) - off < 16:
            errs.append("truncated record header at %d" % off)
            break
        sec, usec, incl, orig = struct.unpack("<IIII", raw[off:off + 16])
        fr = raw[off + 16:off + 16 + incl]
        off += 16 + incl
        nfr += 1
        where = "frame %d" % nfr
        if len(fr) != incl or incl != orig:
            errs.append("%s: truncated or snapped" % where)
            break
        ts = sec * 1000000 + usec
        if usec >= 1000000 or ts < last_ts:
            errs.append("%s: timestamp goes back or bad usec" % where)
        last_ts = ts
        et = struct.unpack("!H", fr[12:14])[0]
        if et == 0x0800:
            ip = fr[14:]
            if ip[0] != 0x45 or csum(ip[:20]) != 0xFFFF:
                errs.append("%s: bad IPv4 header or checksum" % where)
            tot = struct.unpack("!H", ip[2:4])[0]
            if tot != len(ip) or ip[9] != 6:
                errs.append("%s: IPv4 length %d for %d bytes / not TCP" % (where, tot, len(ip)))
            src, dst, tcp, v = ip[12:16], ip[16:20], ip[20:tot], 4
            pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
        elif et == 0x86DD:
            ip = fr[14:]
            plen = struct.unpack("!H", ip[4:6])[0]
            if ip[0] >> 4 != 6 or ip[6] != 6 or plen != len(ip) - 40:
                errs.append("%s: bad IPv6 header" % where)
            src, dst, tcp, v = ip[8:24], ip[24:40], ip[40:], 6
            pseudo = src + dst + struct.pack("!IxxxB", len(tcp), 6)
        else:
            errs.append("%s: ethertype %x" % (where, et))
            continue
        if csum(pseudo + tcp) != 0xFFFF:
            errs.append("%s: bad TCP checksum" % where)
        sp, dp, seq, ack, doff, fl = struct.unpack("!HHIIBB", tcp[:14])
        pay = tcp[(doff >> 4) * 4:]
        if len(pay) > 1460 or (v == 6 and len(pay) > 1440):
            errs.append("%s: payload %d bytes" % (where, len(pay)))
        syn, fin, rst, ackf = fl & 2, fl & 1, fl & 4, fl & 16
        if syn and not ackf:
            key = (src, sp, dst, dp)
            if key in flows:
                errs.append("%s: second SYN for a connection" % where)
            flows[key] = {"v": v, "state": "syn", "nxt": [seq + 1, None], "data": [b"", b""],
                          "gaps": [0, 0], "end": None, "fins": 0, "cport": sp, "sport": dp}
            order.append(key)
            continue
        if (src, sp, dst, dp) in flows:
            f, side = flows[(src, sp, dst, dp)], 0
        elif (dst, dp, src, sp) in flows:
            f, side = flows[(dst, dp, src, sp)], 1
        else:
            errs.append("%s: segment of an unknown connection" % where)
            continue
        if (f["end"] == "rst" and not fl & 4) or f["state"] == "closed":
            errs.append("%s: segment after the end" % where)
            continue
        if syn:
            if side != 1 or f["state"] != "syn" or ack != f["nxt"][0]:
                errs.append("%s: bad SYN-ACK" % where)
            f["nxt"][1] = seq + 1
            f["state"] = "synack"
            continue
        if f["state"] == "synack":
            if side != 0 or not ackf or seq != f["nxt"][0] or ack != f["nxt"][1] or pay:
                errs.append("%s: bad handshake ACK" % where)
            f["state"] = "est"
            continue
        if f["state"] not in ("est", "fin"):
            errs.append("%s: data before the handshake ended" % where)
            continue
        nxt = f["nxt"][side] & 0xFFFFFFFF
        d = (seq - nxt) & 0xFFFFFFFF
        if d >= 0x80000000:
            errs.append("%s: sequence %u before the next %u (overlap)" % (where, seq, nxt))
            continue
        if d:
            f["gaps"][side] += 1  # bytes missing before this segment
        f["nxt"][side] = (seq + len(pay) + (1 if fin else 0)) & 0xFFFFFFFF
        f["data"][side] += pay
        pn = f["nxt"][1 - side] & 0xFFFFFFFF
        ahead = (ack - pn) & 0xFFFFFFFF
        if ackf and 0 < ahead < 0x80000000:
            # Acknowledges bytes of the peer that are not in the file: a gap on the peer's
            # side (its next segment must continue from there).
            f["gaps"][1 - side] += 1
            f["nxt"][1 - side] = ack
        elif not ackf or ahead:
            errs.append("%s: ack %u, the peer's next is %u" % (where, ack, pn))
        if rst:
            f["end"] = "rst"
        elif fin:
            f["fins"] += 1
            f["state"] = "fin"
        elif f["fins"] == 2 and not pay:
            f["state"] = "closed"
            f["end"] = "fin"
    for key in order:
        f = flows[key]
        if f["end"] is None:
            errs.append("connection from port %d: no FIN/FIN/ACK or RST end" % f["cport"])
        for side, ext in ((0, "c2s"), (1, "s2c")):
            with open(os.path.join(outdir, "%d.%s" % (f["cport"], ext)), "wb") as fp:
                fp.write(f["data"][side])
        print(f["cport"], f["sport"], f["v"], len(f["data"][0]), len(f["data"][1]),
              f["gaps"][0], f["gaps"][1], f["end"])
    for e in errs[:20]:
        print("    pcap-out: " + e, file=sys.stderr)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
