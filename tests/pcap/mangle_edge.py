#!/usr/bin/python3
"""Derives edge-case captures from one real capture (used by test_engine_edge.sh).

Every variant keeps what the endpoints saw; only what the capture shows changes:
  frag      every IPv4 packet with payload split into 200-byte IP fragments, shuffled per datagram
  vlan      every Ethernet frame given an 802.1Q tag and an 802.1ad outer tag (QinQ)
  evasion   after one server data segment, a retransmission of it with different bytes
  drop      one server data segment in the middle of the transfer removed (capture loss)
  ackfirst  server data segments moved behind the client ACKs that acknowledge them
  midstream the capture starts after the ClientHello
  dsb       pcapng with the key log in a Decryption Secrets Block before the first packet
Needs Debian's python3-scapy (run with /usr/bin/python3).
"""
import random
import struct
import sys

from scapy.all import IP, TCP, Raw, Ether, Dot1Q, Dot1AD, fragment, rdpcap, wrpcap

SERVER_PORT = int(sys.argv[4]) if len(sys.argv) > 4 else 4433


def server_data(pkts):
    return [i for i, p in enumerate(pkts)
            if TCP in p and p[TCP].sport == SERVER_PORT and Raw in p and len(p[Raw].load) > 100]


def variant(name, pkts, keylog):
    rnd = random.Random(7)
    if name == "frag":
        out = []
        for p in pkts:
            if IP in p and Raw in p:
                frags = fragment(p[IP], fragsize=200)
                rnd.shuffle(frags)
                for f in frags:
                    e = Ether(src=p[Ether].src, dst=p[Ether].dst) / f
                    e.time = p.time
                    out.append(e)
            else:
                out.append(p)
        return out
    if name == "vlan":
        out = []
        for p in pkts:
            inner = p[Ether].payload
            e = Ether(src=p[Ether].src, dst=p[Ether].dst, type=0x88a8) / \
                Dot1AD(vlan=100, type=0x8100) / Dot1Q(vlan=42) / inner
            e.time = p.time
            out.append(e)
        return out
    if name == "evasion":
        idx = server_data(pkts)
        k = idx[len(idx) // 2]
        orig = pkts[k]
        bad = orig.copy()
        load = bytearray(bytes(bad[Raw].load))
        for j in range(20, 40):
            load[j] ^= 0x55
        bad[Raw].load = bytes(load)
        del bad[IP].chksum
        del bad[TCP].chksum
        bad.time = orig.time
        return pkts[:k + 1] + [bad] + pkts[k + 1:]
    if name == "drop":
        idx = server_data(pkts)
        k = idx[len(idx) // 2]
        return pkts[:k] + pkts[k + 1:]
    if name == "ackfirst":
        # Each server data segment is moved behind the next 3 client packets, so the client's
        # ACKs for it come first in the capture (as seen from a capture point near the client).
        out = list(pkts)
        idx = server_data(out)
        for k in reversed(idx[5:]):
            p = out.pop(k)
            j, seen = k, 0
            while j < len(out) and seen < 3:
                if TCP in out[j] and out[j][TCP].dport == SERVER_PORT:
                    seen += 1
                j += 1
            p.time = out[j - 1].time  # the capture's clock stays monotonic
            out.insert(j, p)
        return out
    if name == "midstream":
        first_data = next(i for i, p in enumerate(pkts) if Raw in p)
        return pkts[first_data + 1:]
    raise SystemExit("unknown variant " + name)


def write_pcapng_dsb(path, pkts, keylog):
    """pcapng: SHB, IDB (Ethernet, us), DSB (TLS key log), then one EPB per packet."""
    def block(btype, body):
        body += b"\0" * ((4 - len(body) % 4) % 4)
        total = 12 + len(body)
        return struct.pack("<II", btype, total) + body + struct.pack("<I", total)
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(0x00000001, struct.pack("<HHI", 1, 0, 0))
    out += block(0x0000000A, struct.pack("<II", 0x544C534B, len(keylog)) + keylog)
    for p in pkts:
        raw = bytes(p)
        ts = int(float(p.time) * 1e6)
        out += block(0x00000006, struct.pack("<IIIII", 0, ts >> 32, ts & 0xffffffff,
                                              len(raw), len(raw)) + raw)
    with open(path, "wb") as f:
        f.write(out)


def main():
    src, name, dst = sys.argv[1], sys.argv[2], sys.argv[3]
    pkts = list(rdpcap(src))
    keylog = open(sys.argv[5], "rb").read() if len(sys.argv) > 5 else b""
    if name == "dsb":
        write_pcapng_dsb(dst, pkts, keylog)
    else:
        wrpcap(dst, variant(name, pkts, keylog))


if __name__ == "__main__":
    main()
