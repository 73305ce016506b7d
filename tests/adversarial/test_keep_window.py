#!/usr/bin/python3
"""Retransmissions of bytes the middlebox no longer keeps.  mmtlsd compares every retransmitted
byte with the copy it inspected, for as long as it keeps that copy (--reasm-keep bytes per
direction).  If it freed a copy the receiver has not acknowledged, a sender could make the
receiver drop the inspected copy (an insertion: here a TCP MD5 option, which Linux refuses on
a connection without a key), push the kept window past it with more data the receiver buffers
out of order, and then send EVIL in its place: the middlebox, with nothing left to compare,
used to count it (`unchecked_bytes`) and forward it, and the receiver read it.

Inline with the closed reassembly policy (the default) a byte stays kept until the receiver
acknowledges it, and a segment that would need more than --reasm-keep bytes is dropped (the
sender sends it again later): --reasm-keep is a window.  This suite runs mmtlsd with a 16 KiB
window so that the receiver's initial window is larger than it.

What must hold: EVIL over the forgotten copy is blocked; a real Linux sender through the small
window still delivers every byte, slowed (segments dropped, counted), not broken.

Run: tests/adversarial/run.sh (root; exit 77 = skip).  ONLY=name1,name2 runs some cases.
"""
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import advlib  # noqa: E402
from advlib import EVIL, SERVER_IP, benign, expect_block, observe  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("MMTLS_BUILDDIR", os.path.join(ROOT, "build"))
PREFIX = os.environ.get("ADV_PREFIX", "adk")
KEEP = 16384
MBOX_ARGS = ["--reasm-keep", str(KEEP)]
# The policy under test can be changed to show the evasion it closes (EVASION reported):
#   ADV_KEEP_ARGS="--reasm-policy open" tests/adversarial/test_keep_window.py
MBOX_ARGS += os.environ.get("ADV_KEEP_ARGS", "").split()
MD5_OPTION = bytes([19, 18]) + b"\x11" * 16  # RFC 2385; same as test_tcp_evasion.py


def evil_payload():
    return benign(100) + EVIL + benign(100, b"g")


def push_window(c, start, n, seg=1000):
    """Sends [start, start + n) of filler in seg-byte segments (the receiver buffers them out
    of order behind the hole the insertion left)."""
    for off in range(start, start + n, seg):
        c.send(off, benign(min(seg, start + n - off), b"f"))
        time.sleep(0.002)


def case_evil_over_forgotten_copy(bed):
    """A benign copy the receiver drops (MD5 option), 1.5 windows of filler behind it, then
    EVIL in its place.  The filler beyond the window is dropped, so the benign copy is still
    kept when EVIL comes: compared, blocked."""
    c = advlib.connect(bed)
    ev = evil_payload()
    c.send(0, ev.replace(EVIL, b"x" * len(EVIL)), options=MD5_OPTION)
    time.sleep(0.05)
    push_window(c, len(ev), KEEP + KEEP // 2)
    time.sleep(0.1)
    c.send(0, ev)
    return expect_block(observe(bed, c), "EVIL over a copy pushed out of the kept window")


def case_evil_over_forgotten_copy_acked_part(bed):
    """The same with a first part the receiver acknowledges: the window moves with the ACKs
    (the acknowledged 8 KiB are freed, so filler up to 8 KiB + the window passes), and the
    copy the receiver dropped is still compared."""
    c = advlib.connect(bed)
    at = 8192
    push_window(c, 0, at)
    if not c.wait_acked(at):
        return "the receiver did not acknowledge the first 8 KiB"
    ev = evil_payload()
    c.send(at, ev.replace(EVIL, b"x" * len(EVIL)), options=MD5_OPTION)
    time.sleep(0.05)
    push_window(c, at + len(ev), KEEP + KEEP // 2)
    time.sleep(0.1)
    c.send(at, ev)
    return expect_block(observe(bed, c), "EVIL over a copy pushed out after acknowledged data")


def case_real_sender_through_window(bed):
    """A Linux sender (this process's socket, in the client namespace) writes 512 KiB through
    the 16 KiB window: every byte arrives in order, no RST, and the window was hit (the
    reassembly exception is logged).  Slow: a burst beyond the window loses its tail, which
    the sender finds only by timeout (about 160 KB/s here; 2-3 s)."""
    data = bytes((i * 7 + (i >> 11)) & 0xff for i in range(512 << 10))
    data = data.replace(EVIL, b"x" * len(EVIL))
    s = socket.create_connection((SERVER_IP, bed.port), timeout=30)
    sport = s.getsockname()[1]
    t0 = time.monotonic()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    path = os.path.join(bed.w, "recv_%d.closed" % sport)
    while not os.path.exists(path) and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    dt = time.monotonic() - t0
    s.close()
    got = bed.received(sport)
    if got != data:
        return "the receiver got %d of %d bytes (%s) in %.1f s" % (
            len(got), len(data), "equal prefix" if data.startswith(got) else "differing",
            dt)
    log = open(bed.mlog, errors="replace").read()
    if "exception reasm" not in log:
        return "the window was never hit (no 'exception reasm' in the log)"
    advlib.log("[adv-keep]       512 KiB through the %d-byte window in %.2f s" % (KEEP, dt))
    return None


CASES = [
    ("evil_over_forgotten_copy", case_evil_over_forgotten_copy, None),
    ("evil_over_forgotten_copy_acked_part", case_evil_over_forgotten_copy_acked_part, None),
    ("real_sender_through_window", case_real_sender_through_window, None),
]


if __name__ == "__main__":
    if "fast" in advlib.EXTRA_MBOX_ARGS:
        # docs/HARDENING.md "Known gaps": the fast path forwards copies before the engine
        # sees them, so it keeps no window (old retransmissions are counted, not compared).
        print("[adv-keep] SKIP: --io fast keeps no window (docs/HARDENING.md, Known gaps)")
        sys.exit(77)
    sys.exit(advlib.main("adv-keep", CASES, PREFIX, ROOT, BUILD, MBOX_ARGS))
