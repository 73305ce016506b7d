#!/usr/bin/python3
"""TCP-level IDS evasions (Ptacek & Newsham 1998, "Insertion, Evasion, and Denial of Service")
against the inline middlebox: mmtlsd -i c0:s0 on scripts/testbed.sh, a drop rule on EVILSTRING
over plain TCP streams.  Every case uses a fresh connection (new source port), crafts its
segments with scapy, and asserts a verdict:

  block    both ends get an RST from the middlebox and the receiver never gets EVILSTRING;
  pass     no RST, and the receiver got exactly the bytes the middlebox inspected.

The middlebox's guarantees (docs in tests/adversarial/README.md): bytes it inspected and bytes
the receiver accepts never differ without the session being blocked — a conflicting copy of
any byte (overlap, retransmission, a FIN contradicted by data) blocks; segments the receiver
drops (bad checksum) are not inspected; urgent data is delivered in band (URG cleared).

Run: tests/adversarial/run.sh (root; exit 77 = skip).  ONLY=name1,name2 runs some cases;
KEEP=1 keeps the work directory (eve.json, mmtlsd.log, recv_<port> files).
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import advlib  # noqa: E402
from advlib import EVIL, Conn, benign, connect, describe, expect_block, expect_pass, observe  # noqa: E402,E501

ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("MMTLS_BUILDDIR", os.path.join(ROOT, "build"))
PREFIX = os.environ.get("ADV_PREFIX", "adt")


def stream(c, data, start=0, seg=1000, flags="PA"):
    """Sends data from offset start in segments of seg bytes, keeping at most 32 KB in flight
    (the receiver's window) by waiting for its ACKs."""
    off = start
    while off < start + len(data):
        if off - c.acked() > 32768:
            if not c.wait_acked(off - 16384, 2.0):
                raise RuntimeError("the receiver stopped acknowledging at %d" % c.acked())
        n = min(seg, start + len(data) - off)
        c.send(off, data[off - start:off - start + n], flags=flags)
        off += n
    return off


# ------------------------------------------------------------------------------------------
# Baselines: the rule blocks, clean data passes.


def case_baseline_clean(bed):
    c = connect(bed)
    d = benign(3000)
    end = stream(c, d)
    c.wait_acked(end)
    c.close(end)
    return expect_pass(observe(bed, c), d, "a clean 3000-byte stream")


def case_baseline_evil(bed):
    c = connect(bed)
    c.send(0, b"hello " + EVIL + b" world")
    return expect_block(observe(bed, c), "EVILSTRING in one segment")


# ------------------------------------------------------------------------------------------
# Overlaps (Ptacek & Newsham §4.2: the receiver's overlap policy is unknown to the middlebox;
# any conflicting copy blocks, whichever copy the receiver keeps).


def case_overlap_old_benign_new_evil(bed):
    """Out-of-order [5,15) benign first, then [0,20) carrying EVIL over it: a receiver that
    keeps the newer copy (last wins) would get EVIL."""
    c = connect(bed)
    c.send(5, b"XXXXXXXXXX")
    time.sleep(0.05)
    c.send(0, b"abcde" + EVIL + b"fghij")
    return expect_block(observe(bed, c), "a new segment overlapping older bytes with EVIL")


def case_overlap_old_evil_new_benign(bed):
    """Out-of-order [5,15) = EVIL first, then [0,20) benign over it: a first-wins receiver
    would get EVIL."""
    c = connect(bed)
    c.send(5, EVIL)
    time.sleep(0.05)
    c.send(0, b"abcdeXXXXXXXXXXfghij")
    return expect_block(observe(bed, c), "EVIL first, benign overlap later")


def case_overlap_inside_earlier(bed):
    """A later segment wholly inside an earlier buffered one, with different bytes."""
    c = connect(bed)
    c.send(5, benign(40))
    time.sleep(0.05)
    c.send(15, EVIL)
    time.sleep(0.05)
    c.send(0, b"01234")
    return expect_block(observe(bed, c), "a segment inside an earlier one, conflicting")


def case_overlap_fin_data(bed):
    """A FIN segment whose data overlaps earlier buffered bytes with other content."""
    c = connect(bed)
    c.send(10, b"YYYYYYYYYYYYYYYYYYYY")
    time.sleep(0.05)
    c.send(10, b"YYYYY" + EVIL + b"YYYYY", flags="FPA")
    time.sleep(0.05)
    c.send(0, b"0123456789")
    return expect_block(observe(bed, c), "FIN+data overlapping with other content")


def case_retrans_identical(bed):
    """Identical retransmissions and overlaps are normal TCP: no block, exact delivery."""
    c = connect(bed)
    d = benign(3000)
    c.send(1000, d[1000:2000])
    c.send(1500, d[1500:2500])
    c.send(0, d[0:1200])
    c.send(0, d[0:1000])
    c.send(2500, d[2500:])
    c.wait_acked(3000)
    c.send(2000, d[2000:])
    c.close(3000)
    return expect_pass(observe(bed, c), d, "identical retransmissions")


# ------------------------------------------------------------------------------------------
# The receiver's window (Ptacek & Newsham §4.3: data the receiver drops must not be taken as
# delivered; where the middlebox kept it, the real bytes conflict and block).


def case_below_window_acked(bed):
    """Old, acknowledged bytes re-sent with other content: the receiver drops them (below
    RCV.NXT), so they are harmless; the middlebox must not block or inspect them."""
    c = connect(bed)
    d = benign(30)
    c.send(0, d)
    if not c.wait_acked(30):
        return "the receiver did not acknowledge the first 30 bytes"
    c.send(0, b"0123456789" + EVIL + b"0123456789")
    time.sleep(0.1)
    d2 = benign(20, b"c")
    c.send(30, d2)
    c.wait_acked(50)
    c.close(50)
    return expect_pass(observe(bed, c), d + d2, "a re-sent acknowledged range with EVIL")


def case_beyond_window_insertion(bed):
    """Benign bytes far beyond the receiver's window (it drops them), then the real stream
    with EVIL at that offset: the middlebox must not keep the dropped copy as the stream."""
    c = connect(bed)
    far = max(c.win, 1024) + 4096
    c.send(far, b"XXXXXXXXXX")
    time.sleep(0.05)
    d = benign(far) + EVIL + benign(100)
    try:
        stream(c, d)
    except RuntimeError:
        pass  # blocked midway: no more ACKs
    return expect_block(observe(bed, c, 1.0), "EVIL where a beyond-window copy was benign")


def case_beyond_window_evil_never_filled(bed):
    """EVIL beyond the window and never made contiguous: neither side ever delivers it; the
    clean data before it passes.  (No FIN: bytes buffered beyond a FIN are a conflict, see
    fin_before_buffered.)"""
    c = connect(bed)
    far = max(c.win, 1024) + 4096
    c.send(far, EVIL)
    d = benign(2000)
    end = stream(c, d)
    c.wait_acked(end)
    o = observe(bed, c)
    if o["rst_client"] or o["rst_server"]:
        return "expected pass; got: %s" % describe(o)
    if not o["received"].startswith(d) or EVIL in o["received"]:
        return "the receiver got %r..." % o["received"][:40]
    return None


# ------------------------------------------------------------------------------------------
# Checksums (§4.1: the receiver drops a bad checksum; the middlebox must not reassemble it).


def case_bad_csum_evil_then_good(bed):
    """EVIL with a bad TCP checksum (the receiver drops it), then the real benign bytes: the
    middlebox inspects what the receiver gets — the session passes."""
    c = connect(bed)
    c.send(0, b"0123456789" + EVIL, bad_csum=True)
    time.sleep(0.1)
    d = b"0123456789" + b"harmless!!"
    c.send(0, d)
    c.wait_acked(len(d))
    c.close(len(d))
    return expect_pass(observe(bed, c), d, "a bad-checksum EVIL copy then the real bytes")


def case_bad_csum_benign_then_evil(bed):
    """The insertion: a benign bad-checksum copy first, then EVIL with a good checksum."""
    c = connect(bed)
    c.send(0, b"0123456789harmless!!", bad_csum=True)
    time.sleep(0.1)
    c.send(0, b"0123456789" + EVIL)
    return expect_block(observe(bed, c), "EVIL after a bad-checksum benign copy")


def case_bad_csum_decoy_syn(bed):
    """A decoy SYN with a bad checksum and another ISN before the real one: the middlebox must
    follow the ISN of the connection the receiver accepted."""
    c = Conn(bed)
    decoy = Conn(bed, sport=c.sport, isn=(c.isn + 0x40000000) & 0xFFFFFFFF)
    bed.send(decoy.seg(-1, flags="S", seq=decoy.isn, bad_csum=True))
    time.sleep(0.05)
    if not c.connect():
        return "no SYN-ACK"
    c.send(0, b"hi " + EVIL)
    return expect_block(observe(bed, c), "EVIL after a bad-checksum decoy SYN")


# ------------------------------------------------------------------------------------------
# TTL (§4.1: a low-TTL insertion expires before the receiver; on this one-hop testbed it
# arrives, so the guarantee is the conflict rule: whichever copy the receiver keeps, a
# different copy blocks).


def case_low_ttl_insertion(bed):
    c = connect(bed)
    c.send(10, b"XXXXXXXXXX", ttl=1)
    time.sleep(0.05)
    c.send(0, b"0123456789" + EVIL + b"tail")
    return expect_block(observe(bed, c), "EVIL over a low-TTL benign insertion")


# ------------------------------------------------------------------------------------------
# RST and FIN injection.


def case_rst_out_of_window(bed):
    """An RST with a sequence number the receiver does not accept (RFC 5961 §3.2) must not end
    inspection, even after the middlebox's closed-flow timeout (10 s)."""
    c = connect(bed)
    c.send(0, b"0123456789")
    c.wait_acked(10)
    c.send(0, flags="R", seq=c.seq(0) + 100000)
    c.send(0, flags="R", seq=c.seq(0) + 5)  # in the window but not RCV.NXT: challenge ACK
    time.sleep(11)
    c.send(10, b"more " + EVIL)
    return expect_block(observe(bed, c), "EVIL after forged out-of-window RSTs + 11 s")


def case_rst_valid_ends_flow(bed):
    """A valid RST (exact RCV.NXT) ends the connection at the receiver; a new connection on
    the same 4-tuple with a new ISN is inspected from its start."""
    c = connect(bed)
    c.send(0, b"0123456789")
    c.wait_acked(10)
    c.send(10, flags="R")
    time.sleep(0.3)
    if not os.path.exists(os.path.join(bed.w, "recv_%d.closed" % c.sport)):
        return "the receiver did not see the valid RST"
    c2 = Conn(bed, sport=c.sport, isn=(c.isn + 0x50000000) & 0xFFFFFFFF)
    if not c2.connect():
        return "no SYN-ACK for the reused 4-tuple"
    c2.send(0, b"again " + EVIL)
    o = observe(bed, c2)
    o["received"] = o["received"][len(b"0123456789"):]  # the file holds both connections
    return expect_block(o, "EVIL on a reused 4-tuple after a valid RST")


def blocked_then_reused(bed, second):
    """c sends EVIL (blocked, both ends reset), then a new connection from the same port with a
    new ISN sends `second`; returns (observation of the new connection, error or None)."""
    c = connect(bed)
    c.send(0, b"hello " + EVIL + b" world")
    o = observe(bed, c)
    err = expect_block(o, "EVILSTRING before the port is reused")
    if err:
        return None, err
    c2 = Conn(bed, sport=c.sport, isn=(c.isn + 0x40000000) & 0xFFFFFFFF)
    if not c2.connect():
        return None, "no SYN-ACK for the reused 4-tuple of a blocked connection"
    end = stream(c2, second)
    c2.wait_acked(end, 1.0)
    o2 = observe(bed, c2)
    o2["received"] = o2["received"][len(o["received"]):]  # the watchers and file are per port
    o2["rst_client"] -= o["rst_client"]
    o2["rst_server"] -= o["rst_server"]
    return o2, None


def case_blocked_then_port_reused(bed):
    """A blocked connection (both ends reset by the middlebox), then a new connection from the
    same source port (the client's stack frees a reset port at once): it must get through and
    be inspected from its own SYN, not dropped as part of the blocked flow (the soak test found
    clients hanging in SYN-SENT this way)."""
    d = benign(2000, b"reuse")
    o, err = blocked_then_reused(bed, d)
    if err:
        return err
    err = expect_pass(o, d, "a clean connection on the reused 4-tuple")
    if err:
        return err
    o, err = blocked_then_reused(bed, b"again " + EVIL)
    return err or expect_block(o, "EVIL on the reused 4-tuple")


def case_fin_then_data(bed):
    """A FIN in order, then data after it.  This receiver took the FIN and ignores the data,
    but one that discarded the FIN (an insertion: a hop limit, an option or a window it
    refuses; test_ipv6_evasion.py has the IPv6 ones) reads it, and the middlebox cannot tell
    which happened: data beyond a FIN is a conflict, blocked."""
    c = connect(bed)
    c.send(0, b"0123456789")
    c.send(10, flags="FA")
    time.sleep(0.05)
    c.send(10, b"after-fin " + EVIL)
    return expect_block(observe(bed, c), "data after a FIN")


def case_fin_before_buffered(bed):
    """Bytes 50.. with EVIL buffered out of order, then a FIN at 50, then bytes 0..50: a
    receiver that took the FIN purges the buffered bytes, one that discarded it delivers them
    once 0..50 arrive.  Buffered bytes beyond a new FIN are a conflict, blocked."""
    c = connect(bed)
    c.send(50, benign(20) + EVIL)
    time.sleep(0.05)
    c.send(50, flags="FA")
    time.sleep(0.05)
    c.send(0, benign(50, b"f"))
    return expect_block(observe(bed, c), "EVIL buffered beyond a later FIN")


def case_fin_spanned_by_buffered(bed):
    """A segment buffered out of order, then a FIN inside it, then the hole: the receiver
    delivers the buffered segment whole (it starts before the FIN) and drops the FIN."""
    c = connect(bed)
    c.send(5, EVIL + b"fghij")
    time.sleep(0.05)
    c.send(8, flags="FA")
    time.sleep(0.05)
    c.send(0, b"abcde")
    return expect_block(observe(bed, c), "EVIL in a segment spanning a later FIN")


def case_fin_ooo_then_data(bed):
    """A FIN ahead of the data (out of order), then data covering it: a receiver that
    delivers the data past the stale FIN gets EVIL; the middlebox must not cut the stream at
    the FIN and miss it."""
    c = connect(bed)
    c.send(8, flags="FA")
    time.sleep(0.05)
    c.send(0, b"abcde" + EVIL + b"fghij")
    return expect_block(observe(bed, c), "EVIL across an out-of-order FIN")


# ------------------------------------------------------------------------------------------
# Fragmentation of the pattern over segments.


def case_one_byte_segments(bed):
    c = connect(bed)
    d = b"xx" + EVIL + b"yy"
    for i in range(len(d)):
        c.send(i, d[i:i + 1])
    return expect_block(observe(bed, c), "EVIL one byte per segment")


def case_split_out_of_order(bed):
    c = connect(bed)
    d = b"head-" + EVIL + b"-tail"
    cuts = [(11, len(d)), (7, 11), (3, 7), (0, 3)]
    for a, b in cuts:
        c.send(a, d[a:b])
        time.sleep(0.01)
    return expect_block(observe(bed, c), "EVIL split over out-of-order segments")


def case_seq_wrap_overlap(bed):
    """Sequence numbers that wrap past 2^32 inside the stream (ISN 2^32 - 100): a benign copy
    across the wrap with an MD5 option (the receiver drops it), then EVIL across the wrap, out
    of order (the part after the wrap first): the conflict rule blocks."""
    c = connect(bed, isn=0xFFFFFFFF - 100)
    first = benign(90)
    c.send(0, first)
    if not c.wait_acked(len(first)):
        return "the receiver did not acknowledge the first bytes"
    ev = EVIL + benign(30)  # stream offset 90..: the wrap is at offset 100
    c.send(90, ev.replace(EVIL, b"x" * len(EVIL)), options=MD5_OPTION)
    time.sleep(0.05)
    c.send(98, ev[8:])
    c.send(90, ev[:8])
    return expect_block(observe(bed, c), "EVIL across the sequence wrap over a benign copy")


def case_seq_wrap_clean(bed):
    """A stream across the 2^32 wrap in 1-byte-to-500-byte segments, some out of order: passes
    byte-exact."""
    c = connect(bed, isn=0xFFFFFFFF - 1000)
    d = benign(3000, b"w")
    for a, b in [(0, 500), (500, 990), (1010, 1500), (990, 999), (999, 1000), (1000, 1010),
                 (1500, 2200), (2200, 3000)]:
        c.send(a, d[a:b])
        time.sleep(0.01)
    if not c.wait_acked(len(d)):
        return "the receiver did not acknowledge the stream across the wrap"
    c.close(len(d))
    return expect_pass(observe(bed, c), d, "a stream across the sequence wrap")


def case_long_stream_1000_clean(bed):
    c = connect(bed)
    d = benign(48000, b"L")
    end = stream(c, d, seg=48)
    c.wait_acked(end, 3.0)
    c.close(end)
    return expect_pass(observe(bed, c), d, "1000 segments of 48 bytes")


def case_long_stream_1000_evil(bed):
    c = connect(bed)
    d = bytearray(benign(48000, b"M"))
    d[43195:43205] = EVIL  # straddles segments 899 and 900
    try:
        stream(c, bytes(d), seg=48)
    except RuntimeError:
        pass
    return expect_block(observe(bed, c, 1.0), "EVIL at byte 43195 of 1000 segments")


# ------------------------------------------------------------------------------------------
# SYNs.


def case_syn_with_data(bed):
    """Data on the SYN (TCP Fast Open delivers it; a server without TFO drops it and the
    client sends it again): the middlebox inspects it, and a different copy later conflicts."""
    c = Conn(bed)
    c.bed.send(c.seg(-1, b"syn " + EVIL, flags="S", seq=c.isn))
    time.sleep(0.3)
    o = observe(bed, c, 0.2)
    if c.synack() is not None:
        return "expected the SYN carrying EVIL to be dropped; the server answered: %s" % (
            describe(o))
    if EVIL in o["received"]:
        return "EVASION: the receiver got EVIL from the SYN"
    return None


def case_syn_benign_data_then_evil(bed):
    """Benign SYN data the server drops (no TFO), then EVIL at offset 0."""
    c = Conn(bed)
    if not c.connect(syn_data=b"0123456789"):
        return "no SYN-ACK"
    c.send(0, b"0123" + EVIL)
    return expect_block(observe(bed, c), "EVIL after benign SYN data")


def case_second_syn_other_isn(bed):
    """Two SYNs with different ISNs on one 4-tuple: the middlebox follows the ISN the server
    acknowledged, so the data is inspected."""
    c = Conn(bed)
    first = Conn(bed, sport=c.sport, isn=(c.isn + 0x3000000) & 0xFFFFFFFF)
    bed.send(first.seg(-1, flags="S", seq=first.isn))
    time.sleep(0.05)
    bed.send(c.seg(-1, flags="S", seq=c.isn))
    end = time.monotonic() + 2
    use = None
    while time.monotonic() < end and use is None:
        for t in c.server_pkts():
            if t.flags & advlib.F_SYN and t.flags & advlib.F_ACK:
                use = c if t.ack == c.seq(0) else first if t.ack == first.seq(0) else None
                if use is not None:
                    use.srv_isn, use.ack = t.seq, (t.seq + 1) & 0xFFFFFFFF
                    break
        time.sleep(0.01)
    if use is None:
        return "no SYN-ACK"
    use.send(0, flags="A")
    use.send(0, b"second-syn " + EVIL)
    return expect_block(observe(bed, use), "EVIL after two SYNs (server chose %s)" %
                        ("the first" if use is first else "the second"))


# ------------------------------------------------------------------------------------------
# Urgent data: with the default (RFC 6093 §3.4: BSD) semantics the receiver takes the byte
# before the urgent pointer out of band, so "EVIxLSTRING" with x urgent reads "EVILSTRING".


def case_urgent_byte(bed):
    c = connect(bed)
    d = b"EVI" + b"x" + b"LSTRING"
    c.send(0, d, flags="PAU", urgptr=4)
    o = observe(bed, c)
    if EVIL in o["received"]:
        return "EVASION: the receiver read EVILSTRING around an urgent byte: " + describe(o)
    if o["rst_client"] or o["rst_server"]:
        return None  # blocking urgent data is acceptable too
    if o["received"] != d:
        return "expected the urgent byte in band (%r); got %r" % (d, o["received"])
    return None


# ------------------------------------------------------------------------------------------
# Malformed TCP options: Linux (tcp_parse_options) stops at a length below 2 or past the option
# area and ignores an MSS or window scale of the wrong length, and accepts the segment.  A
# middlebox that refuses to decode such a segment forwards bytes it never inspected (it did,
# before this case was written).

BAD_OPTIONS = [
    b"\x02\x05\x05\xb4\x00",  # MSS of length 5
    b"\x01\x01\x08\x20",      # a length past the option area
    b"\x08\x01\x00\x00",      # a length of 1
    b"\x03\x04\x07\x00",      # window scale of length 4
    b"\x01\x01\x01\x05",      # a kind without its length byte
]


def case_bad_options_evil(bed):
    for opts in BAD_OPTIONS:
        c = connect(bed)
        c.send(0, b"hello " + EVIL + b" world", options=opts)
        err = expect_block(observe(bed, c), "EVIL in a segment with options %r" % opts)
        if err:
            return err
    return None


def case_bad_options_clean(bed):
    c = connect(bed)
    want = b""
    for k, opts in enumerate(BAD_OPTIONS):
        d = benign(100, b"o%d" % k)
        c.send(len(want), d, options=opts)
        want += d
        if not c.wait_acked(len(want), 2.0):
            return "segment %d with options %r was not acknowledged" % (k, opts)
    return expect_pass(observe(bed, c), want, "benign segments with malformed options")


# ------------------------------------------------------------------------------------------
# Insertions the receiver drops for a reason the middlebox does not check: a TCP MD5 signature
# option (RFC 2385) on a connection without a key (Linux: TCPMD5Unexpected), and segments
# forged as the server but sent from the client's side (the server drops a datagram with its
# own address as source).

MD5_OPTION = bytes([19, 18]) + b"\x11" * 16


def md5_evil():
    return benign(100) + EVIL + benign(100, b"g")


def case_md5_insertion_data(bed):
    """A benign copy carrying an MD5 option (dropped by the receiver), then EVIL in its place:
    the conflict rule blocks."""
    c = connect(bed)
    ev = md5_evil()
    c.send(0, ev.replace(EVIL, b"x" * len(EVIL)), options=MD5_OPTION)
    time.sleep(0.05)
    c.send(0, ev)
    return expect_block(observe(bed, c), "EVIL over a benign MD5-option copy")


def case_md5_insertion_fin(bed):
    """A FIN carrying an MD5 option (the receiver drops it), then EVIL after it: data beyond a
    FIN is a conflict (this was an evasion: the middlebox ended the stream at the FIN)."""
    c = connect(bed)
    c.send(0, b"0123456789")
    c.send(10, flags="FA", options=MD5_OPTION)
    time.sleep(0.05)
    c.send(10, b"after-fin " + EVIL)
    return expect_block(observe(bed, c), "EVIL after a FIN the receiver drops")


def case_spoofed_server_ack(bed):
    """A benign copy with an MD5 option (the receiver drops it; the middlebox keeps it to
    compare retransmissions), an ACK of it forged as the server from the client's side (it
    would free the kept copy), then EVIL in its place.  The forged ACK is dropped
    (`wrong_side_dropped`), so the copies are compared and the session blocked (this was an
    evasion: EVIL counted as an old retransmission and went through uninspected)."""
    c = connect(bed)
    ev = md5_evil()
    c.send(0, ev.replace(EVIL, b"x" * len(EVIL)), options=MD5_OPTION)
    time.sleep(0.05)
    c.spoof_server(len(ev))
    time.sleep(0.05)
    c.send(0, ev)
    return expect_block(observe(bed, c), "EVIL after a forged server ACK of an insertion")


def md5_rst_after_first(bed):
    """A connection whose receiver acknowledged 40 bytes, then an exact RST carrying an MD5
    option (the receiver drops it and stays in the connection): (connection, the bytes)."""
    c = connect(bed)
    first = benign(40)
    c.send(0, first)
    if not c.wait_acked(len(first)):
        raise RuntimeError("the receiver did not acknowledge the first bytes")
    c.send(len(first), flags="RA", options=MD5_OPTION)
    time.sleep(0.05)
    return c, first


def case_md5_rst_then_syn(bed):
    """An RST carrying an MD5 option (the receiver drops it and stays in the connection), then
    a SYN with a new ISN on the same 4-tuple (the receiver answers with a challenge ACK, never
    a SYN-ACK), then EVIL at the old connection's next sequence number.  The middlebox believed
    the RST and reopened the flow at the SYN; data before the SYN-ACK is dropped
    (`data_before_synack_dropped`).  This was an evasion: EVIL went through as bytes from
    before the new flow's start and the receiver read it."""
    c, first = md5_rst_after_first(bed)
    c.send(0, flags="S", seq=(c.seq(len(first)) + 5000) & 0xFFFFFFFF)
    time.sleep(0.05)
    c.send(len(first), EVIL + benign(20))
    o = observe(bed, c)
    if EVIL in o["received"]:
        return "EVASION: the receiver got EVILSTRING after an MD5 RST and a new SYN: " + \
            describe(o)
    if o["received"] != first:
        return "expected the receiver to keep only the first %d bytes: %s" % (len(first),
                                                                             describe(o))
    return None


# ------------------------------------------------------------------------------------------
# PAWS (RFC 7323 §5): on a connection with timestamps the receiver drops a segment whose TSval
# is older than the last one it accepted (Linux: PAWSEstabRejected), RSTs excepted.  The
# middlebox does not track timestamps, so such a segment is an insertion like the MD5 ones:
# the kept copy and the conflict rule must catch the real bytes that follow it.

TS_NOW = 0x40000000


def ts_option(tsval, tsecr=0):
    """NOP, NOP, Timestamps (kind 8, length 10)."""
    return b"\x01\x01\x08\x0a" + tsval.to_bytes(4, "big") + tsecr.to_bytes(4, "big")


def paws_rejected(bed):
    """The receiver's count of segments dropped by PAWS (TcpExt PAWSEstab)."""
    out = subprocess.run(["ip", "netns", "exec", bed.p + "-server", "cat", "/proc/net/netstat"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    for names, values in zip(out[::2], out[1::2]):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split()))["PAWSEstab"])
    raise RuntimeError("no TcpExt in the receiver's /proc/net/netstat")


def send_stale(bed, c, off, data=b"", flags="PA"):
    """Sends a segment with an old TSval; returns an error unless the receiver dropped it."""
    before = paws_rejected(bed)
    c.send(off, data, flags=flags, options=ts_option(TS_NOW - 1000))
    for _ in range(20):
        time.sleep(0.025)
        if paws_rejected(bed) > before:
            return None
    return "the receiver did not count a PAWS drop: timestamps not in effect"


def paws_connect(bed, first):
    """A connection that negotiated timestamps (the SYN-ACK echoes one) and whose receiver
    accepted `first` with TSval TS_NOW + 1, so that TS_NOW - 1000 is too old."""
    c = connect(bed, syn_options=ts_option(TS_NOW))
    c.send(0, first, options=ts_option(TS_NOW + 1))
    if not c.wait_acked(len(first)):
        raise RuntimeError("the receiver did not acknowledge the first bytes")
    return c


def case_paws_insertion_data(bed):
    """A benign copy with an old TSval (the receiver drops it), then EVIL in its place with a
    fresh one: the conflict rule blocks."""
    first = benign(40)
    c = paws_connect(bed, first)
    ev = md5_evil()
    err = send_stale(bed, c, len(first), ev.replace(EVIL, b"x" * len(EVIL)))
    if err:
        return err
    c.send(len(first), ev, options=ts_option(TS_NOW + 2))
    return expect_block(observe(bed, c), "EVIL over a benign copy with an old TSval")


def case_paws_insertion_fin(bed):
    """A FIN with an old TSval (the receiver drops it), then EVIL after it: data beyond a FIN
    is a conflict."""
    first = benign(40)
    c = paws_connect(bed, first)
    err = send_stale(bed, c, len(first), flags="FA")
    if err:
        return err
    c.send(len(first), b"after-fin " + EVIL, options=ts_option(TS_NOW + 2))
    return expect_block(observe(bed, c), "EVIL after a FIN with an old TSval")


def case_paws_same_bytes_again(bed):
    """A segment with an old TSval, then the same bytes with a fresh one (what a sender whose
    clock went back would do): an identical copy is no conflict, the data passes."""
    first = benign(40)
    c = paws_connect(bed, first)
    more = benign(300, b"p")
    err = send_stale(bed, c, len(first), more)
    if err:
        return err
    c.send(len(first), more, options=ts_option(TS_NOW + 2))
    if not c.wait_acked(len(first) + len(more)):
        return "the receiver did not acknowledge the fresh copy"
    return expect_pass(observe(bed, c), first + more, "the same bytes with an old TSval first")


def case_md5_rst_then_data(bed):
    """An RST carrying an MD5 option (the receiver drops it and stays in the connection), then
    EVIL at the next sequence number, with no new SYN.  The middlebox closed the flow at the
    RST but keeps it, and inspects its data, for --flow-closed-timeout after its last packet
    (should the table evict or expire it first, the data is a midstream pickup: dropped by the
    default policy): block."""
    c, first = md5_rst_after_first(bed)
    c.send(len(first), EVIL + benign(20))
    return expect_block(observe(bed, c), "EVIL after an RST the receiver drops")


def case_spoofed_server_rst(bed):
    """An RST forged as the server (right sequence number) from the client's side, then EVIL:
    the server never sees the RST, the middlebox must not end the flow for it."""
    c = connect(bed)
    c.send(0, b"0123456789")
    c.wait_acked(10)
    c.spoof_server(10, flags="RA")
    time.sleep(0.05)
    c.send(10, b"after-rst " + EVIL)
    return expect_block(observe(bed, c), "EVIL after a forged server RST")


CASES = [
    ("baseline_clean", case_baseline_clean, None),
    ("baseline_evil", case_baseline_evil, None),
    ("overlap_old_benign_new_evil", case_overlap_old_benign_new_evil, None),
    ("overlap_old_evil_new_benign", case_overlap_old_evil_new_benign, None),
    ("overlap_inside_earlier", case_overlap_inside_earlier, None),
    ("overlap_fin_data", case_overlap_fin_data, None),
    ("retrans_identical", case_retrans_identical, None),
    ("below_window_acked", case_below_window_acked, None),
    ("beyond_window_insertion", case_beyond_window_insertion, None),
    ("beyond_window_never_filled", case_beyond_window_evil_never_filled, None),
    ("bad_csum_evil_then_good", case_bad_csum_evil_then_good, None),
    ("bad_csum_benign_then_evil", case_bad_csum_benign_then_evil, None),
    ("bad_csum_decoy_syn", case_bad_csum_decoy_syn, None),
    ("low_ttl_insertion", case_low_ttl_insertion, None),
    ("fin_then_data", case_fin_then_data, None),
    ("fin_before_buffered", case_fin_before_buffered, None),
    ("fin_ooo_then_data", case_fin_ooo_then_data, None),
    ("fin_spanned_by_buffered", case_fin_spanned_by_buffered, None),
    ("one_byte_segments", case_one_byte_segments, None),
    ("split_out_of_order", case_split_out_of_order, None),
    ("seq_wrap_overlap", case_seq_wrap_overlap, None),
    ("seq_wrap_clean", case_seq_wrap_clean, None),
    ("long_stream_1000_clean", case_long_stream_1000_clean, None),
    ("long_stream_1000_evil", case_long_stream_1000_evil, None),
    ("syn_with_data", case_syn_with_data, None),
    ("syn_benign_data_then_evil", case_syn_benign_data_then_evil, None),
    ("second_syn_other_isn", case_second_syn_other_isn, None),
    ("urgent_byte", case_urgent_byte, None),
    ("rst_valid_ends_flow", case_rst_valid_ends_flow, None),
    ("rst_out_of_window", case_rst_out_of_window, None),
    ("blocked_then_port_reused", case_blocked_then_port_reused, None),
    ("bad_options_evil", case_bad_options_evil, None),
    ("bad_options_clean", case_bad_options_clean, None),
    ("md5_insertion_data", case_md5_insertion_data, None),
    ("md5_insertion_fin", case_md5_insertion_fin, None),
    ("spoofed_server_ack", case_spoofed_server_ack, None),
    ("spoofed_server_rst", case_spoofed_server_rst, None),
    ("md5_rst_then_syn", case_md5_rst_then_syn, None),
    ("md5_rst_then_data", case_md5_rst_then_data, None),
    ("paws_insertion_data", case_paws_insertion_data, None),
    ("paws_insertion_fin", case_paws_insertion_fin, None),
    ("paws_same_bytes_again", case_paws_same_bytes_again, None),
]


if __name__ == "__main__":
    sys.exit(advlib.main("adv-tcp", CASES, PREFIX, ROOT, BUILD))
