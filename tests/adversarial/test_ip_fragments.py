#!/usr/bin/python3
"""IP-fragment evasions (Ptacek & Newsham 1998 §4.2; RFC 1858 tiny fragments; RFC 5722
overlaps) against the inline middlebox: mmtlsd -i c0:s0 on scripts/testbed.sh with the
EVILSTRING drop rule of test_tcp_evasion.py, a 2 s reassembly timeout and a table of 32
datagrams (--defrag-timeout 2 --defrag-max 32).  The receiver is the server namespace's Linux
stack (IPv4 fragment timeout 30 s): every TCP segment here is one IPv4 datagram split into
fragments, crafted and sent from the client's veth0.

What must hold: the middlebox sees every datagram the receiver can rebuild, whole.  A fragment
it does not keep is dropped, not forwarded: a conflicting overlap or a timeout makes the
datagram dead (its later fragments are dropped for one more timeout), and a full table refuses
new datagrams rather than evicting one whose last fragment is still to come.

Run: tests/adversarial/run.sh (root; exit 77 = skip).  ONLY=name1,name2 runs some cases.
"""
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import advlib  # noqa: E402
from advlib import EVIL, benign, connect, describe, expect_block, expect_pass, fragment_ipv4, observe  # noqa: E402,E501

ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("MMTLS_BUILDDIR", os.path.join(ROOT, "build"))
PREFIX = os.environ.get("ADV_PREFIX", "adf")
DEFRAG_TIMEOUT = 2
DEFRAG_MAX = 32
MBOX_ARGS = ["--defrag-timeout", str(DEFRAG_TIMEOUT), "--defrag-max", str(DEFRAG_MAX)]


def ident():
    return random.randrange(1, 1 << 16)


def send_all(bed, frags):
    for f in frags:
        bed.send(f)


def evil_data():
    """EVILSTRING at TCP payload offset 100: datagram payload (TCP header included) bytes
    120..130, across the 8-byte boundary at 128."""
    return benign(100) + EVIL + benign(100, b"g")


# ------------------------------------------------------------------------------------------


def case_frag_clean(bed):
    """Benign bytes in three fragments: reassembled, inspected, delivered byte-exact."""
    c = connect(bed)
    d = benign(600)
    send_all(bed, fragment_ipv4(c.seg(0, d), [208, 408], ident()))
    return expect_pass(observe(bed, c), d, "a fragmented benign segment")


def case_frag_evil_split(bed):
    """EVILSTRING cut across two fragments."""
    c = connect(bed)
    send_all(bed, fragment_ipv4(c.seg(0, evil_data()), [128], ident()))
    return expect_block(observe(bed, c), "EVIL across two fragments")


def case_frag_evil_reverse(bed):
    """The fragments last first: the last one gives the length before any data."""
    c = connect(bed)
    send_all(bed, reversed(fragment_ipv4(c.seg(0, evil_data()), [64, 128, 192], ident())))
    return expect_block(observe(bed, c), "EVIL in fragments sent in reverse order")


def case_frag_tiny_first(bed):
    """RFC 1858: the first fragment carries 8 bytes (the ports and sequence number), the TCP
    flags and the rest of the header come in the next ones."""
    c = connect(bed)
    send_all(bed, fragment_ipv4(c.seg(0, evil_data()), [8, 16, 24, 128], ident()))
    return expect_block(observe(bed, c), "EVIL behind a tiny first fragment")


def case_frag_overlap_conflict(bed):
    """Two versions of the middle fragment (benign, then EVIL): receivers that keep the first
    or the last copy would rebuild different segments.  The middlebox gives the datagram up and
    drops the conflicting copy and everything after it, so no receiver can rebuild either;
    the EVIL segment sent again whole is then inspected and blocked."""
    c = connect(bed)
    ev = evil_data()
    be = ev.replace(EVIL, b"x" * len(EVIL))
    i = ident()
    fe = fragment_ipv4(c.seg(0, ev), [112, 136], i)
    fb = fragment_ipv4(c.seg(0, be), [112, 136], i)
    send_all(bed, [fe[0], fb[1], fe[1], fe[2]])
    o = observe(bed, c)
    if EVIL in o["received"] or o["received"] not in (b"",):
        return "the receiver rebuilt a conflicting datagram: " + describe(o)
    c.send(0, ev)
    return expect_block(observe(bed, c), "EVIL sent whole after a conflicting overlap")


def case_frag_late_last_after_timeout(bed):
    """All but the last fragment, then the last one after the middlebox's timeout (2 s) but
    within the receiver's (30 s): forwarded, it would complete at the receiver a datagram the
    middlebox no longer holds.  It is dropped (dead datagram); the receiver never gets the
    segment, and the benign bytes sent whole afterwards pass byte-exact."""
    c = connect(bed)
    fr = fragment_ipv4(c.seg(0, evil_data()), [64, 128], ident())
    send_all(bed, fr[:-1])
    time.sleep(DEFRAG_TIMEOUT + 0.7)
    bed.send(fr[-1])
    o = observe(bed, c)
    if EVIL in o["received"]:
        return "EVASION: a late last fragment completed EVIL at the receiver: " + describe(o)
    if o["received"]:
        return "the receiver got bytes from an expired datagram: " + describe(o)
    d = benign(len(evil_data()), b"h")
    c.send(0, d)
    return expect_pass(observe(bed, c), d, "benign bytes whole after the expired datagram")


def case_frag_urgent(bed):
    """Urgent data in a fragmented segment: "EVI", an urgent "x", "LSTRING".  Unfragmented,
    the middlebox clears URG in the forwarded header (the receiver then reads the byte in band,
    as inspected); here the header left with the first fragment, so the receiver would take
    the urgent byte out and read EVILSTRING.  The fragment that completes the datagram is
    dropped; the same bytes sent whole afterwards arrive with URG cleared."""
    c = connect(bed)
    d = benign(24) + b"EVI" + b"x" + b"LSTRING"
    send_all(bed, fragment_ipv4(c.seg(0, d, flags="PAU", urgptr=28), [24], ident()))
    o = observe(bed, c)
    if EVIL in o["received"]:
        return "EVASION: the receiver read EVILSTRING around an urgent byte: " + describe(o)
    if o["received"]:
        return "the receiver got the fragmented urgent segment: " + describe(o)
    c.send(0, d, flags="PAU", urgptr=28)
    o = observe(bed, c)
    if EVIL in o["received"]:
        return "EVASION: the receiver read EVILSTRING (unfragmented): " + describe(o)
    return expect_pass(o, d, "the urgent segment sent whole")


def case_frag_flood_full_table(bed):
    """The first fragment of an EVIL segment, then first fragments of 40 datagrams that never
    complete (more than the table's 32; fewer than Linux's ipfrag_max_dist, 64 fragments from
    one source in between, past which the receiver itself drops the older queue), then the EVIL
    segment's last fragment.  Evicting the oldest would let that last fragment pass alone and
    complete EVIL at the receiver; a full table refuses the newcomers (dropped, exception
    'defrag'), so EVIL is rebuilt, inspected, blocked.  Runs last: the flood's datagrams fill
    the table for two timeouts."""
    c = connect(bed)
    fr = fragment_ipv4(c.seg(0, evil_data()), [128], ident())
    bed.send(fr[0])
    for _ in range(40):
        junk = c.seg(1 << 20, benign(64, b"j"))  # far beyond the window: never delivered
        bed.send(fragment_ipv4(junk, [48], ident())[0])
    bed.send(fr[1])
    err = expect_block(observe(bed, c), "EVIL completed after a fragment flood")
    with open(bed.mlog, errors="replace") as f:
        if err is None and "exception defrag" not in f.read():
            err = "no 'exception defrag' line in mmtlsd's log for the refused fragments"
    time.sleep(2 * DEFRAG_TIMEOUT + 0.5)  # the flood's datagrams are gone for later cases
    return err


CASES = [
    ("frag_clean", case_frag_clean, None),
    ("frag_evil_split", case_frag_evil_split, None),
    ("frag_evil_reverse", case_frag_evil_reverse, None),
    ("frag_tiny_first", case_frag_tiny_first, None),
    ("frag_overlap_conflict", case_frag_overlap_conflict, None),
    ("frag_late_last_after_timeout", case_frag_late_last_after_timeout, None),
    ("frag_urgent", case_frag_urgent, None),
    ("frag_flood_full_table", case_frag_flood_full_table, None),
]


if __name__ == "__main__":
    sys.exit(advlib.main("adv-frag", CASES, PREFIX, ROOT, BUILD, MBOX_ARGS))
