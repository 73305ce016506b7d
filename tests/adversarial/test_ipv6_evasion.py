#!/usr/bin/python3
"""IPv6 evasions against the inline middlebox: extension headers (RFC 8200 §4), fragments
(§4.5; RFC 5722 overlaps; RFC 6946 atomic fragments; RFC 7112 first fragments without the
TCP header), urgent data behind extension headers, bad checksums.  mmtlsd -i c0:s0 on
scripts/testbed.sh with the EVILSTRING drop rule of test_tcp_evasion.py, a 2 s reassembly
timeout and a table of 32 datagrams (--defrag-timeout 2 --defrag-max 32).  The receiver is the
server namespace's Linux stack (IPv6 fragment timeout 60 s) on fd00:4::2; every segment is
crafted and sent from the client's veth0 (fd00:4::1).

What must hold: whatever the receiver accepts, the middlebox inspected as the receiver reads
it; what the middlebox cannot read (more than 8 extension headers) or keep (a fragment of a
dead or refused datagram) is dropped, not forwarded.

Run: tests/adversarial/run.sh (root; exit 77 = skip).  ONLY=name1,name2 runs some cases.
"""
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import advlib  # noqa: E402
from advlib import (EVIL, IP6_DSTOPTS, IP6_HOPOPTS, benign, describe, expect_block,  # noqa: E402
                    expect_pass, ext_opts, ext_routing, fragment_ipv6, observe)

ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("MMTLS_BUILDDIR", os.path.join(ROOT, "build"))
PREFIX = os.environ.get("ADV_PREFIX", "ad6")
DEFRAG_TIMEOUT = 2
DEFRAG_MAX = 32
MBOX_ARGS = ["--defrag-timeout", str(DEFRAG_TIMEOUT), "--defrag-max", str(DEFRAG_MAX)]


def connect6(bed):
    return advlib.connect(bed, v6=True)


def ident():
    return random.randrange(1, 1 << 32)


def send_all(bed, frags):
    for f in frags:
        bed.send(f)


def evil_data():
    """EVILSTRING at TCP payload offset 100 (fragmentable-part bytes 120..130 with a bare TCP
    header: across the 8-byte boundary at 128)."""
    return benign(100) + EVIL + benign(100, b"g")


def expect_nothing(o, what):
    """The receiver got no byte (the middlebox dropped what it could not vouch for)."""
    if EVIL in o["received"]:
        return "EVASION: the receiver got EVILSTRING (%s): %s" % (what, describe(o))
    if o["received"]:
        return "the receiver got bytes from %s: %s" % (what, describe(o))
    return None


# ------------------------------------------------------------------------------------------
# Extension headers


def case_v6_clean(bed):
    """Benign bytes over IPv6, no extension header: inspected, delivered byte-exact."""
    c = connect6(bed)
    d = benign(600)
    c.send(0, d)
    return expect_pass(observe(bed, c), d, "a benign IPv6 segment")


def case_v6_evil(bed):
    c = connect6(bed)
    c.send(0, evil_data())
    return expect_block(observe(bed, c), "EVIL in a plain IPv6 segment")


def case_v6_dstopts(bed):
    """EVIL behind a Destination Options header (PadN only): Linux skips it and reads TCP."""
    c = connect6(bed)
    c.send(0, evil_data(), ext=[ext_opts(IP6_DSTOPTS, bytes([1, 4]) + b"\0" * 4)])
    return expect_block(observe(bed, c), "EVIL behind a Destination Options header")


# Options a receiver discards the datagram for: Linux (ip6_parse_tlv) refuses more than 7
# bytes of padding in a row or padding that is not zero (RFC 4942 §2.1.9.5); RFC 8200 §4.2:
# an unknown option whose type has the action bits 01, 10 or 11.
BAD_OPTS = {
    "long_padding": bytes([1, 12]) + b"\0" * 12,
    "nonzero_padding": bytes([1, 4]) + b"abcd",
    "unknown_discard": bytes([0x5E, 4]) + b"abcd",  # 01: discard silently
    "unknown_icmp": bytes([0x9E, 4]) + b"abcd",  # 10: discard, ICMP Parameter Problem
}


def insertion_cases():
    """For each of BAD_OPTS: a FIN, an RST, or a benign copy of the bytes behind a Destination
    Options header holding that option (the receiver discards it), then EVIL (after the FIN or
    RST, or buffered before the FIN, or at the copy's offset).  A middlebox that took the
    decoy would think the stream ended there (and let EVIL pass beyond the FIN or RST) or hold
    different bytes at EVIL's offset."""
    out = []
    for name, opt in BAD_OPTS.items():
        ext = [ext_opts(IP6_DSTOPTS, opt)]

        def fin(bed, ext=ext):
            c = connect6(bed)
            c.send(0, b"0123456789")
            c.send(10, flags="FA", ext=ext)
            time.sleep(0.05)
            c.send(10, b"after-fin " + EVIL)
            return expect_block(observe(bed, c), "EVIL after a FIN the receiver discards")

        def rst(bed, ext=ext):
            c = connect6(bed)
            c.send(0, b"0123456789")
            c.wait_acked(10)
            c.send(10, flags="R", ext=ext)
            time.sleep(0.05)
            c.send(10, b"after-rst " + EVIL)
            return expect_block(observe(bed, c), "EVIL after an RST the receiver discards")

        def buffered(bed, ext=ext):
            c = connect6(bed)
            c.send(50, benign(20) + EVIL)
            time.sleep(0.05)
            c.send(50, flags="FA", ext=ext)
            time.sleep(0.05)
            c.send(0, benign(50, b"f"))
            return expect_block(observe(bed, c), "EVIL buffered beyond a FIN the receiver "
                                "discards")

        def data(bed, ext=ext):
            c = connect6(bed)
            ev = evil_data()
            c.send(0, ev.replace(EVIL, b"x" * len(EVIL)), ext=ext)
            time.sleep(0.05)
            c.send(0, ev)
            return expect_block(observe(bed, c), "EVIL over a benign copy the receiver discards")

        out += [("v6_fin_behind_" + name, fin, None),
                ("v6_fin_before_buffered_behind_" + name, buffered, None),
                ("v6_rst_behind_" + name, rst, None), ("v6_data_behind_" + name, data, None)]
    return out


def case_v6_ext_chain(bed):
    """Hop-by-Hop, a Routing header (type 0, no segment left: Linux ignores it and goes on),
    Destination Options, then TCP with EVIL."""
    c = connect6(bed)
    ext = [ext_opts(IP6_HOPOPTS), ext_routing(0, 0, [advlib.SERVER_IP6]),
           ext_opts(IP6_DSTOPTS)]
    c.send(0, evil_data(), ext=ext)
    return expect_block(observe(bed, c), "EVIL behind Hop-by-Hop, Routing and Dest. Options")


def case_v6_unknown_option_skip(bed):
    """A Destination Options header with an unknown option whose type says "skip over it"
    (RFC 8200 §4.2, action bits 00, type 0x1e): the receiver reads the segment."""
    c = connect6(bed)
    c.send(0, evil_data(), ext=[ext_opts(IP6_DSTOPTS, bytes([0x1E, 4]) + b"abcd")])
    return expect_block(observe(bed, c), "EVIL behind an unknown skippable option")


def case_v6_too_many_ext(bed):
    """EVIL behind 9 Destination Options headers (the decoder walks at most 8): the segment
    is dropped inline, not forwarded uninspected.  The benign bytes sent afterwards with one
    header pass byte-exact."""
    c = connect6(bed)
    c.send(0, evil_data(), ext=[ext_opts(IP6_DSTOPTS)] * 9)
    o = observe(bed, c)
    err = expect_nothing(o, "a segment behind 9 extension headers")
    if err:
        return err
    d = benign(len(evil_data()), b"n")
    c.send(0, d, ext=[ext_opts(IP6_DSTOPTS)])
    return expect_pass(observe(bed, c), d, "benign bytes behind one header afterwards")


def case_v6_bad_checksum(bed):
    """EVIL with a wrong TCP checksum (the receiver drops it), then benign bytes at the same
    offset: a middlebox that took the first would see a conflict or the wrong stream."""
    c = connect6(bed)
    c.send(0, evil_data(), bad_csum=True)
    d = benign(len(evil_data()), b"c")
    c.send(0, d)
    return expect_pass(observe(bed, c), d, "benign bytes after a bad-checksum EVIL copy")


def case_v6_spoofed_server_ack(bed):
    """A benign copy behind too much padding (the receiver discards it), an ACK of it forged as
    the server from the client's side, then EVIL in its place: the forged ACK is dropped, so
    the kept copy is compared and the session blocked (this was an evasion)."""
    c = connect6(bed)
    ev = evil_data()
    c.send(0, ev.replace(EVIL, b"x" * len(EVIL)), ext=[ext_opts(IP6_DSTOPTS, BAD_OPTS["long_padding"])])
    time.sleep(0.05)
    c.spoof_server(len(ev))
    time.sleep(0.05)
    c.send(0, ev)
    return expect_block(observe(bed, c), "EVIL after a forged server ACK of an insertion")


def case_v6_urgent_behind_ext(bed):
    """Urgent data behind a Destination Options header: "EVI", an urgent "x", "LSTRING".  The
    middlebox clears URG wherever the TCP header is, so the receiver reads the byte in band,
    as inspected (no EVILSTRING), instead of taking it out and reading EVILSTRING."""
    c = connect6(bed)
    d = benign(24) + b"EVI" + b"x" + b"LSTRING"
    c.send(0, d, flags="PAU", urgptr=28, ext=[ext_opts(IP6_DSTOPTS)])
    o = observe(bed, c)
    if EVIL in o["received"]:
        return "EVASION: the receiver read EVILSTRING around an urgent byte: " + describe(o)
    return expect_pass(o, d, "urgent data behind an extension header")


# ------------------------------------------------------------------------------------------
# Fragments


def case_v6_frag_clean(bed):
    c = connect6(bed)
    d = benign(600)
    send_all(bed, fragment_ipv6(c.seg(0, d), [208, 408], ident()))
    return expect_pass(observe(bed, c), d, "a fragmented benign IPv6 segment")


def case_v6_frag_evil_split(bed):
    c = connect6(bed)
    send_all(bed, fragment_ipv6(c.seg(0, evil_data()), [128], ident()))
    return expect_block(observe(bed, c), "EVIL across two IPv6 fragments")


def case_v6_frag_reverse(bed):
    c = connect6(bed)
    send_all(bed, reversed(fragment_ipv6(c.seg(0, evil_data()), [64, 128, 192], ident())))
    return expect_block(observe(bed, c), "EVIL in IPv6 fragments sent last first")


def case_v6_frag_dstopts_inside(bed):
    """A Destination Options header in the fragmentable part (after the Fragment header),
    Hop-by-Hop before it: the TCP header starts 8 bytes into the first fragment."""
    c = connect6(bed)
    dg = c.seg(0, evil_data(), ext=[ext_opts(IP6_HOPOPTS), ext_opts(IP6_DSTOPTS)])
    send_all(bed, fragment_ipv6(dg, [64, 136], ident()))
    return expect_block(observe(bed, c), "EVIL in fragments with Dest. Options inside")


def case_v6_frag_overlap_conflict(bed):
    """Two versions of the middle fragment (benign, then EVIL at the same offsets): Linux keeps
    the first copy of an exact duplicate, other stacks the last.  The middlebox gives the
    datagram up and drops the conflicting copy and everything after it, so the receiver
    rebuilds nothing; EVIL sent again whole is inspected and blocked."""
    c = connect6(bed)
    ev = evil_data()
    be = ev.replace(EVIL, b"x" * len(EVIL))
    i = ident()
    fe = fragment_ipv6(c.seg(0, ev), [112, 136], i)
    fb = fragment_ipv6(c.seg(0, be), [112, 136], i)
    send_all(bed, [fe[0], fb[1], fe[1], fe[2]])
    err = expect_nothing(observe(bed, c), "a datagram with conflicting fragments")
    if err:
        return err
    c.send(0, ev)
    return expect_block(observe(bed, c), "EVIL sent whole after a conflicting overlap")


def case_v6_atomic_fragment(bed):
    """EVIL in an atomic fragment (offset 0, M clear: RFC 6946, a whole datagram)."""
    c = connect6(bed)
    dg = c.seg(0, evil_data())
    send_all(bed, fragment_ipv6(dg, [(0, len(dg) - 40)], ident()))
    return expect_block(observe(bed, c), "EVIL in an atomic fragment")


def case_v6_atomic_beside_pending(bed):
    """The first fragment of a benign datagram with identification X is pending; an atomic
    fragment with the same X carries EVIL.  RFC 6946: the atomic fragment is processed on its
    own (Linux does), so the middlebox must not merge it into X's queue and miss it."""
    c = connect6(bed)
    i = ident()
    bed.send(fragment_ipv6(c.seg(0, benign(300)), [128], i)[0])
    dg = c.seg(0, evil_data())
    bed.send(fragment_ipv6(dg, [(0, len(dg) - 40)], i)[0])
    return expect_block(observe(bed, c), "EVIL in an atomic fragment beside a pending one")


def case_v6_tiny_first(bed):
    """A first fragment of 8 bytes, without the whole TCP header (RFC 7112 says drop it; Linux
    does, with an ICMP error): whatever the middlebox makes of it, EVIL must not reach the
    receiver; EVIL sent whole afterwards is blocked."""
    c = connect6(bed)
    send_all(bed, fragment_ipv6(c.seg(0, evil_data()), [8, 16, 24, 128], ident()))
    o = observe(bed, c)
    if EVIL in o["received"]:
        return "EVASION: EVIL behind a tiny first fragment reached the receiver: " + describe(o)
    c.send(0, evil_data())
    return expect_block(observe(bed, c), "EVIL sent whole after a tiny first fragment")


def case_v6_frag_urgent(bed):
    """Urgent data in a fragmented IPv6 segment: the TCP header left with the first fragment,
    URG cannot be cleared, so the fragment completing the datagram is dropped; the bytes sent
    whole afterwards arrive with URG cleared."""
    c = connect6(bed)
    d = benign(24) + b"EVI" + b"x" + b"LSTRING"
    send_all(bed, fragment_ipv6(c.seg(0, d, flags="PAU", urgptr=28), [24], ident()))
    err = expect_nothing(observe(bed, c), "a fragmented urgent segment")
    if err:
        return err
    c.send(0, d, flags="PAU", urgptr=28)
    o = observe(bed, c)
    if EVIL in o["received"]:
        return "EVASION: the receiver read EVILSTRING (unfragmented): " + describe(o)
    return expect_pass(o, d, "the urgent segment sent whole")


def case_v6_frag_late_last_after_timeout(bed):
    """The last fragment after the middlebox's timeout (2 s), within the receiver's (60 s): it
    is dropped (dead datagram); benign bytes sent whole afterwards pass byte-exact."""
    c = connect6(bed)
    fr = fragment_ipv6(c.seg(0, evil_data()), [64, 128], ident())
    send_all(bed, fr[:-1])
    time.sleep(DEFRAG_TIMEOUT + 0.7)
    bed.send(fr[-1])
    err = expect_nothing(observe(bed, c), "an expired datagram")
    if err:
        return err
    d = benign(len(evil_data()), b"h")
    c.send(0, d)
    return expect_pass(observe(bed, c), d, "benign bytes whole after the expired datagram")


def case_v6_frag_flood_full_table(bed):
    """The first fragment of EVIL, 40 never-completed datagrams (more than the table's 32),
    then EVIL's last fragment: a full table refuses newcomers rather than evicting EVIL's
    datagram, so EVIL is rebuilt, inspected, blocked.  Runs last (the flood fills the table
    for two timeouts)."""
    c = connect6(bed)
    fr = fragment_ipv6(c.seg(0, evil_data()), [128], ident())
    bed.send(fr[0])
    for _ in range(40):
        junk = c.seg(1 << 20, benign(64, b"j"))  # far beyond the window: never delivered
        bed.send(fragment_ipv6(junk, [48], ident())[0])
    bed.send(fr[1])
    err = expect_block(observe(bed, c), "EVIL completed after an IPv6 fragment flood")
    time.sleep(2 * DEFRAG_TIMEOUT + 0.5)
    return err


CASES = [
    ("v6_clean", case_v6_clean, None),
    ("v6_evil", case_v6_evil, None),
    ("v6_dstopts", case_v6_dstopts, None),
    ("v6_ext_chain", case_v6_ext_chain, None),
    ("v6_unknown_option_skip", case_v6_unknown_option_skip, None),
    ("v6_too_many_ext", case_v6_too_many_ext, None),
] + insertion_cases() + [
    ("v6_bad_checksum", case_v6_bad_checksum, None),
    ("v6_spoofed_server_ack", case_v6_spoofed_server_ack, None),
    ("v6_urgent_behind_ext", case_v6_urgent_behind_ext, None),
    ("v6_frag_clean", case_v6_frag_clean, None),
    ("v6_frag_evil_split", case_v6_frag_evil_split, None),
    ("v6_frag_reverse", case_v6_frag_reverse, None),
    ("v6_frag_dstopts_inside", case_v6_frag_dstopts_inside, None),
    ("v6_frag_overlap_conflict", case_v6_frag_overlap_conflict, None),
    ("v6_atomic_fragment", case_v6_atomic_fragment, None),
    ("v6_atomic_beside_pending", case_v6_atomic_beside_pending, None),
    ("v6_tiny_first", case_v6_tiny_first, None),
    ("v6_frag_urgent", case_v6_frag_urgent, None),
    ("v6_frag_late_last_after_timeout", case_v6_frag_late_last_after_timeout, None),
    ("v6_frag_flood_full_table", case_v6_frag_flood_full_table, None),
]


if __name__ == "__main__":
    sys.exit(advlib.main("adv-ip6", CASES, PREFIX, ROOT, BUILD, MBOX_ARGS))
