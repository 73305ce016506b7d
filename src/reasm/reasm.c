/* reasm — TCP reassembly of one direction of a flow (see reasm.h for the contract).
 *
 * Layout of one stream:
 *
 *     kept_off          next_off            ooo segments (sorted, disjoint, all > next_off)
 *        |<-- kept -->|    |   [seg]   [seg]  [seg] ...
 *
 * - Bytes before next_off were delivered.  The newest of them, [kept_off, next_off), are kept
 *   (bounded by opts->max_kept_bytes, freed by ACKs) so that a retransmission can be compared
 *   with what the sink already saw.  With opts->keep_until_acked the bound is never reached:
 *   a segment that would need it is refused instead (keep_room).
 * - Out-of-order bytes live in a sorted singly linked list of disjoint segments.  A new segment
 *   only ever fills holes: where it overlaps bytes already held, the first copy wins and the
 *   bytes are compared (RFC 9293 §3.10.7.4 lets a receiver keep either copy; a middlebox must
 *   keep the one it inspected, as Suricata's "first" overlap policy does).
 * - Offsets are 64-bit; a 32-bit sequence number is turned into an offset relative to the
 *   sequence number of next_off (RFC 9293 §3.4 modular comparison), so wrap-around at 2^32 is
 *   invisible.
 *
 * Memory: every buffered byte, every kept byte and a fixed overhead per segment are charged to
 * the shared memcap; everything charged is released again by the time mmtls_reasm_fini returns.
 *
 * Re-entrancy: sink callbacks run inside mmtls_reasm_* calls and must not call back into the
 * same stream (they may touch other streams).
 */
#include <stdlib.h>

#include "reasm/reasm.h"
#include "reasm/reasm_int.h"

/* RFC 7323 §2.3: the largest window is 2^30 bytes.  A segment starting further ahead than that,
 * or an ACK acknowledging more than that, cannot belong to this stream. */
#define REASM_WINDOW_MAX ((uint64_t)1 << 30)

/* Used when the caller passes no options. */
static const struct mmtls_reasm_opts reasm_default_opts = {
    .max_ooo_bytes = 1u << 20,
    .max_kept_bytes = 256u << 10,
    .max_segments = 1024,
};

/* One buffered out-of-order segment: bytes [off, off + len).  A piece arriving right after a
 * segment is appended to it (up to REASM_SEG_MAX), so that the list holds about one segment per
 * hole and walking it stays short when data keeps arriving behind a loss. */
struct mmtls_reasm_seg {
    struct mmtls_reasm_seg *next; /* owned: next segment in offset order */
    uint64_t off;
    size_t len;
    size_t cap;     /* bytes allocated for data (charged to the memcap) */
    uint8_t data[]; /* owned with the segment */
};

/* keep_until_acked: out-of-order bytes may use at most this share of the memcap (numerator
 * over 4), so that a flood of data behind holes cannot take the room in-order bytes need to be
 * kept (keep_room), which would stop every flow's in-order data. */
#define REASM_OOO_SHARE_4THS 3

/* A kept buffer larger than this is freed when nothing in it is live any more (its slack
 * beyond the live bytes is not charged to the memcap). */
#define REASM_KEPT_IDLE_CAP ((size_t)256 << 10)

/* Largest segment built by appending; bounds the bytes a realloc copies. */
#define REASM_SEG_MAX ((size_t)64 << 10)

/* Memcap charge for one segment besides its bytes. */
#define REASM_SEG_OVERHEAD sizeof(struct mmtls_reasm_seg)

/* Offsets of the first and last differing byte seen while handling one segment. */
struct reasm_diff {
    bool any;
    uint64_t lo, hi; /* [lo, hi) */
};

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                               */

static void emit(const struct mmtls_reasm_sink *sink, enum mmtls_reasm_event ev, uint64_t off,
                 uint64_t len)
{
    if (sink != NULL && sink->event != NULL) {
        sink->event(sink->ud, ev, off, len);
    }
}

/* Signed distance from the next expected byte to seq (|d| < 2^31). */
static int64_t rel_off(const struct mmtls_reasm *r, uint32_t seq)
{
    return (int64_t)MMTLS_SEQ_DIFF(seq, r->base_seq + (uint32_t)r->next_off);
}

uint64_t mmtls_reasm_seq_to_off(const struct mmtls_reasm *r, uint32_t seq)
{
    return r->next_off + (uint64_t)rel_off(r, seq);
}

/* Compares n bytes of a (new copy) with b (first copy) at stream offset off and widens d over
 * the differing bytes. */
static void diff_range(struct reasm_diff *d, const uint8_t *a, const uint8_t *b, size_t n,
                       uint64_t off)
{
    size_t i, j;

    if (n == 0 || memcmp(a, b, n) == 0) {
        return;
    }
    for (i = 0; i < n && a[i] == b[i]; i++) {
    }
    for (j = n; j > i && a[j - 1] == b[j - 1]; j--) {
    }
    if (!d->any || off + i < d->lo) {
        d->lo = off + i;
    }
    if (!d->any || off + j > d->hi) {
        d->hi = off + j;
    }
    d->any = true;
}

/* Widens d over [lo, hi): bytes in conflict that are not compared byte by byte (a FIN
 * contradicted by data). */
static void diff_note(struct reasm_diff *d, uint64_t lo, uint64_t hi)
{
    if (!d->any || lo < d->lo) {
        d->lo = lo;
    }
    if (!d->any || hi > d->hi) {
        d->hi = hi;
    }
    d->any = true;
}

/* ------------------------------------------------------------------------------------------ */
/* Kept bytes.  r->kept holds the live bytes [kept_off, next_off) at its END: a prefix of       */
/* kept.len - live dead bytes is left in place and compacted only when it is at least as large */
/* as the live part, so dropping old bytes costs O(1) amortised instead of a memmove per ACK.  */

static size_t kept_live(const struct mmtls_reasm *r)
{
    return (size_t)(r->next_off - r->kept_off);
}

static const uint8_t *kept_at(const struct mmtls_reasm *r, uint64_t off)
{
    return r->kept.p + (r->kept.len - kept_live(r)) + (size_t)(off - r->kept_off);
}

/* Frees the kept buffer and the memcap charge of room reserved in it and not filled. */
static void kept_buf_free(struct mmtls_reasm *r)
{
    mmtls_memcap_release(r->memcap, r->kept_resv);
    r->kept_resv = 0;
    r->kept_peak = 0;
    mmtls_buf_fini(&r->kept, false);
}

/* Frees kept bytes below off (off <= next_off). */
static void kept_drop_to(struct mmtls_reasm *r, uint64_t off)
{
    if (off <= r->kept_off) {
        return;
    }
    mmtls_memcap_release(r->memcap, (size_t)(off - r->kept_off));
    r->kept_off = off;
    if (kept_live(r) == 0) {
        r->kept.len = 0;
        if (r->kept.cap > REASM_KEPT_IDLE_CAP) {
            /* Everything acknowledged (a response ended).  The next one usually needs as much:
             * twice the most that was live (the dead prefix is compacted once it is as large
             * as the live part), so that it does not grow from small in doublings that each
             * copy the live bytes. */
            r->kept_regrow = MMTLS_MIN(r->kept.cap, 2 * r->kept_peak);
            kept_buf_free(r);
        }
    }
}

/* Reserves kept_regrow bytes for a kept buffer about to be allocated for n bytes, if the memcap
 * can spare the room beyond n: at most half of it may be used afterwards, so that room reserved
 * never makes the memcap refuse bytes that must be kept.  The reservation is charged until the
 * bytes kept fill it (kept_add) or the buffer is freed. */
static void kept_reserve(struct mmtls_reasm *r, size_t n)
{
    size_t want = r->kept_regrow, extra;
    const struct mmtls_memcap *m = r->memcap;

    r->kept_regrow = 0;
    if (want <= n || r->kept.cap != 0) {
        return;
    }
    extra = want - n;
    if (m != NULL && m->limit != 0 && (m->used > m->limit / 2 || extra > m->limit / 2 - m->used)) {
        return;
    }
    if (mmtls_memcap_charge(r->memcap, extra) != 0) {
        return;
    }
    if (mmtls_buf_reserve(&r->kept, want) != 0) {
        mmtls_memcap_release(r->memcap, extra);
        return;
    }
    r->kept_resv = extra;
}

/* Frees all kept bytes: nothing before next_off can be checked any more. */
static void kept_reset(struct mmtls_reasm *r)
{
    kept_drop_to(r, r->next_off);
    r->kept.len = 0;
}

/* Keeps n bytes just delivered at next_off (called before next_off moves past them). */
static void kept_add(struct mmtls_reasm *r, const uint8_t *p, size_t n)
{
    uint64_t end = r->next_off + n, lo;
    size_t max = r->opts->max_kept_bytes, live, dead, from_resv;

    if (max == 0) {
        r->kept_off = end;
        return;
    }
    /* The oldest bytes go first when over the bound. */
    lo = end > max ? end - max : 0;
    if (lo < r->kept_off) {
        lo = r->kept_off;
    }
    kept_drop_to(r, MMTLS_MIN(lo, r->next_off));
    if (lo > r->next_off) {
        /* The new bytes alone exceed the bound: keep only their tail (nothing else is live). */
        size_t skip = (size_t)(lo - r->next_off);
        p += skip;
        n -= skip;
        live = 0;
    } else {
        live = kept_live(r);
    }
    dead = r->kept.len - live;
    if (dead > 0 && dead >= live) {
        mmtls_buf_consume(&r->kept, dead);
    }
    /* Bytes that fill reserved room were charged with the reservation. */
    from_resv = MMTLS_MIN(n, r->kept_resv);
    if (mmtls_memcap_charge(r->memcap, n - from_resv) != 0) {
        goto out_reset;
    }
    r->kept_resv -= from_resv;
    if (r->kept.cap == 0 && r->kept_regrow != 0) {
        kept_reserve(r, n);
    }
    if (mmtls_buf_append(&r->kept, p, n) != 0) {
        mmtls_memcap_release(r->memcap, n - from_resv);
        r->kept_resv += from_resv;
        goto out_reset;
    }
    r->kept_off = lo; /* next_off moves to end right after: live = end - lo <= max */
    r->kept_peak = MMTLS_MAX(r->kept_peak, (size_t)(end - lo));
    return;

out_reset:
    /* Not keeping is safe: later retransmissions of these bytes are counted as unchecked. */
    kept_reset(r);
    r->kept_off = end;
}

/* ------------------------------------------------------------------------------------------ */
/* Out-of-order segments                                                                       */

/* Takes g (already unlinked) off the books: its memcap charge and the counters. */
static void seg_unaccount(struct mmtls_reasm *r, const struct mmtls_reasm_seg *g)
{
    mmtls_memcap_release(r->memcap, REASM_SEG_OVERHEAD + g->cap);
    r->ooo_count--;
    r->ooo_bytes -= g->len;
}

static void seg_free(struct mmtls_reasm *r, struct mmtls_reasm_seg *g)
{
    seg_unaccount(r, g);
    free(g);
}

/* Charges n bytes of out-of-order buffering (see REASM_OOO_SHARE_4THS). */
static int ooo_charge(struct mmtls_reasm *r, size_t n)
{
    const struct mmtls_memcap *m = r->memcap;

    if (r->opts->keep_until_acked && m != NULL && m->limit != 0 &&
        m->used + n > m->limit / 4 * REASM_OOO_SHARE_4THS) {
        return MMTLS_E_MEMCAP;
    }
    return mmtls_memcap_charge(r->memcap, n);
}

/* Grows the segment *gp so that it can take `extra` more bytes; *gp follows a realloc. */
static int seg_grow(struct mmtls_reasm *r, struct mmtls_reasm_seg **gp, size_t extra)
{
    struct mmtls_reasm_seg *g = *gp, *ng;
    size_t need = g->len + extra, ncap;

    if (need <= g->cap) {
        return 0;
    }
    ncap = MMTLS_MIN(MMTLS_MAX(need, 2 * g->cap), REASM_SEG_MAX);
    if (ooo_charge(r, ncap - g->cap) != 0) {
        return MMTLS_E_MEMCAP;
    }
    ng = realloc(g, REASM_SEG_OVERHEAD + ncap);
    if (ng == NULL) {
        mmtls_memcap_release(r->memcap, ncap - g->cap);
        return MMTLS_E_NOMEM;
    }
    ng->cap = ncap;
    *gp = ng;
    return 0;
}

/* Buffers the hole [off, off + len) (bytes p) at **link, behind the segment linked from
 * **prev_link (*prev_link NULL at the head).  Caps: segment count, per-stream bytes, the shared
 * memcap.  On a cap the piece is dropped, counted and an event raised.  On success *prev_link
 * and *link are moved so that **link is again the segment that followed the hole. */
static int hole_fill(struct mmtls_reasm *r, struct mmtls_reasm_seg ***prev_link,
                     struct mmtls_reasm_seg ***link, uint64_t off, const uint8_t *p, size_t len,
                     const struct mmtls_reasm_sink *sink)
{
    struct mmtls_reasm_seg *g, *prev = *prev_link != NULL ? **prev_link : NULL;
    int rc;

    if (len > r->opts->max_ooo_bytes || r->ooo_bytes > r->opts->max_ooo_bytes - len) {
        rc = MMTLS_E_MEMCAP;
        goto out_drop;
    }
    if (prev != NULL && prev->off + prev->len == off && prev->len + len <= REASM_SEG_MAX) {
        rc = seg_grow(r, *prev_link, len);
        if (rc != 0) {
            goto out_drop;
        }
        prev = **prev_link;
        memcpy(prev->data + prev->len, p, len);
        prev->len += len;
        r->ooo_bytes += len;
        *link = &prev->next;
        return 0;
    }
    if (r->ooo_count >= r->opts->max_segments) {
        rc = MMTLS_E_LIMIT;
        goto out_drop;
    }
    rc = ooo_charge(r, REASM_SEG_OVERHEAD + len);
    if (rc != 0) {
        goto out_drop;
    }
    g = malloc(REASM_SEG_OVERHEAD + len);
    if (g == NULL) {
        rc = MMTLS_E_NOMEM;
        goto out_release;
    }
    g->off = off;
    g->len = len;
    g->cap = len;
    memcpy(g->data, p, len);
    g->next = **link;
    **link = g;
    *prev_link = *link;
    *link = &g->next;
    r->ooo_count++;
    r->ooo_bytes += len;
    return 0;

out_release:
    mmtls_memcap_release(r->memcap, REASM_SEG_OVERHEAD + len);
out_drop:
    r->stats.memcap_drops++;
    emit(sink, rc == MMTLS_E_LIMIT ? MMTLS_REASM_EV_SEGMENT_LIMIT : MMTLS_REASM_EV_MEMCAP, off,
         len);
    return rc;
}

/* Compares [s, e) of the new segment (bytes q, starting at s) with the buffered segments. */
static bool ooo_compare(const struct mmtls_reasm *r, uint64_t s, uint64_t e, const uint8_t *q,
                        struct reasm_diff *d)
{
    const struct mmtls_reasm_seg *g;
    bool overlap = false;

    for (g = r->ooo; g != NULL && g->off < e; g = g->next) {
        uint64_t lo = MMTLS_MAX(s, g->off), hi = MMTLS_MIN(e, g->off + g->len);
        if (lo < hi) {
            overlap = true;
            diff_range(d, q + (lo - s), g->data + (lo - g->off), (size_t)(hi - lo), lo);
        }
    }
    return overlap;
}

/* Buffers the holes of [s, e) (bytes q) that no segment covers yet.  Returns the first cap
 * error, after trying every hole. */
static int ooo_fill(struct mmtls_reasm *r, uint64_t s, uint64_t e, const uint8_t *q,
                    const struct mmtls_reasm_sink *sink)
{
    struct mmtls_reasm_seg **link = &r->ooo, **prev_link = NULL;
    uint64_t pos = s;
    int rc = 0, rc2;

    /* Bounded: every iteration moves link at least one segment further (ooo_count + 1). */
    while (pos < e) {
        struct mmtls_reasm_seg *g = *link;
        uint64_t hole_end;

        if (g != NULL && g->off + g->len <= pos) {
            prev_link = link;
            link = &g->next;
            continue;
        }
        hole_end = g != NULL ? MMTLS_MIN(e, g->off) : e;
        if (pos < hole_end) {
            rc2 =
                hole_fill(r, &prev_link, &link, pos, q + (pos - s), (size_t)(hole_end - pos), sink);
            if (rc2 != 0 && rc == 0) {
                rc = rc2;
            }
        }
        if (g == NULL) {
            break;
        }
        MMTLS_DEBUG_ASSERT(*link == g);
        pos = MMTLS_MAX(pos, g->off + g->len);
        prev_link = link;
        link = &g->next;
    }
    return rc;
}

/* Drops buffered bytes at or beyond off (a FIN ended the stream there).  True if any. */
static bool ooo_trim(struct mmtls_reasm *r, uint64_t off)
{
    struct mmtls_reasm_seg **link = &r->ooo, *g;
    bool trimmed = false;

    while ((g = *link) != NULL) {
        if (g->off >= off) {
            *link = g->next;
            seg_free(r, g);
            trimmed = true;
        } else {
            if (g->off + g->len > off) {
                size_t cut = (size_t)(g->off + g->len - off);
                g->len -= cut; /* the allocation (and its charge) stays until freed */
                r->ooo_bytes -= cut;
                trimmed = true;
            }
            link = &g->next;
        }
    }
    return trimmed;
}

/* ------------------------------------------------------------------------------------------ */
/* Delivery                                                                                    */

static void deliver(struct mmtls_reasm *r, const struct mmtls_reasm_sink *sink, const uint8_t *p,
                    size_t n)
{
    if (n == 0) {
        return;
    }
    if (sink != NULL && sink->data != NULL) {
        sink->data(sink->ud, r->next_off, p, n);
    }
    r->stats.bytes_delivered += n;
    kept_add(r, p, n);
    r->next_off += n;
}

/* Delivers everything contiguous from next_off: buffered segments first (first copy wins) and,
 * between them, the caller's bytes p covering [pstart, pend) (zero copy).  p may be NULL. */
static void advance(struct mmtls_reasm *r, const struct mmtls_reasm_sink *sink, const uint8_t *p,
                    uint64_t pstart, uint64_t pend)
{
    /* Bounded: each iteration delivers a segment or a non-empty piece of p. */
    for (;;) {
        struct mmtls_reasm_seg *g = r->ooo;

        if (g != NULL && g->off <= r->next_off) {
            MMTLS_DEBUG_ASSERT(g->off == r->next_off);
            r->ooo = g->next;
            /* Its charge goes before its bytes are kept: the kept copy never needs more
             * memcap room than the segment frees (keep_room relies on it). */
            seg_unaccount(r, g);
            if (g->off + g->len > r->next_off) {
                size_t skip = (size_t)(r->next_off - g->off);
                deliver(r, sink, g->data + skip, g->len - skip);
            }
            free(g);
        } else if (p != NULL && r->next_off >= pstart && r->next_off < pend) {
            uint64_t lim = g != NULL ? MMTLS_MIN(pend, g->off) : pend;
            deliver(r, sink, p + (r->next_off - pstart), (size_t)(lim - r->next_off));
        } else {
            break;
        }
    }
}

/* Declares [next_off, to) lost and goes on delivering from `to`. */
static void skip_to(struct mmtls_reasm *r, const struct mmtls_reasm_sink *sink, uint64_t to)
{
    uint64_t len = to - r->next_off;

    r->stats.gaps++;
    r->stats.gap_bytes += len;
    emit(sink, MMTLS_REASM_EV_GAP, r->next_off, len);
    /* The kept bytes must stay contiguous with next_off: bytes before a gap are not checked. */
    kept_reset(r);
    r->next_off = to;
    r->kept_off = to;
    advance(r, sink, NULL, 0, 0);
}

static bool fin_done(const struct mmtls_reasm *r)
{
    return r->fin_seen && r->next_off >= r->fin_off;
}

/* Raises FIN the first time the stream is complete up to fin_off.  fin_off never changes once
 * seen and next_off never passes it, so "done now but not before this call" happens once. */
static void fin_check(struct mmtls_reasm *r, const struct mmtls_reasm_sink *sink, bool done_before)
{
    if (!done_before && fin_done(r)) {
        emit(sink, MMTLS_REASM_EV_FIN, r->fin_off, 0);
    }
}

/* A FIN ending at `end`.  The first plausible FIN wins (RFC 9293 §3.10.7.4: a FIN fixes the end of
 * the stream); a FIN before bytes already delivered is ignored. */
static void fin_note(struct mmtls_reasm *r, uint64_t end, struct reasm_diff *d)
{
    if (r->fin_seen) {
        if (end != r->fin_off) {
            r->stats.malformed++;
            /* Two ends of one stream: a receiver keeps either (an evasion, Ptacek & Newsham
             * §5.3), reported as differing bytes from the earlier end on. */
            diff_note(d, MMTLS_MIN(end, r->fin_off), MMTLS_MAX(end, r->fin_off));
        }
        return;
    }
    if (end < r->next_off) {
        r->stats.malformed++;
        return;
    }
    r->fin_seen = true;
    r->fin_off = end;
    /* Buffered bytes beyond the FIN are a conflict.  A segment running across it: a receiver
     * that reaches it first delivers it whole and drops the FIN as old.  Segments wholly
     * beyond it: a receiver that took the FIN purges them (Linux tcp_fin()), one that
     * discarded it (an insertion: an option or hop limit the receiver refuses, a FIN beyond
     * its window) delivers them; which one happened is not visible here. */
    for (const struct mmtls_reasm_seg *g = r->ooo; g != NULL; g = g->next) {
        if (g->off + g->len > end) {
            diff_note(d, MMTLS_MAX(g->off, end), g->off + g->len);
        }
    }
    if (ooo_trim(r, end)) {
        r->stats.malformed++;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* API                                                                                         */

void mmtls_reasm_init(struct mmtls_reasm *r, const struct mmtls_reasm_opts *opts,
                      struct mmtls_memcap *memcap)
{
    memset(r, 0, sizeof(*r));
    r->opts = opts != NULL ? opts : &reasm_default_opts;
    r->memcap = memcap;
}

void mmtls_reasm_fini(struct mmtls_reasm *r)
{
    struct mmtls_reasm_seg *g;

    while ((g = r->ooo) != NULL) {
        r->ooo = g->next;
        seg_free(r, g);
    }
    kept_reset(r);
    kept_buf_free(r);
    r->kept_regrow = 0;
    r->started = false;
    r->fin_seen = false;
}

void mmtls_reasm_syn(struct mmtls_reasm *r, uint32_t isn)
{
    /* Another SYN before any byte of the stream: the ISN of the latest one counts (the
     * engine also passes the ISN a SYN-ACK acknowledged), so a decoy SYN the receiver never
     * took cannot shift the stream. */
    if (r->started && (r->midstream || r->next_off != 0 || r->ooo != NULL || r->fin_seen)) {
        return;
    }
    /* RFC 9293 §3.4: the SYN occupies sequence number isn; data starts at isn + 1. */
    r->started = true;
    r->midstream = false;
    r->base_seq = isn + 1;
}

/* keep_until_acked: whether the new bytes of [start, end) can be taken without freeing a kept
 * byte the peer has not acknowledged.  Kept bytes are [kept_off, next_off) and, in this mode,
 * only ACKs free them, so kept_off is the oldest unacknowledged byte: every byte taken must lie
 * below kept_off + max_kept_bytes (buffered segments were checked against an older, lower
 * kept_off, so delivering them later stays under the bound too).  Delivering in order also
 * keeps the segment's own bytes: the memcap must have room for them (buffered segments that
 * become contiguous hand their own charge over, see advance). */
static bool keep_room(struct mmtls_reasm *r, uint64_t start, uint64_t end)
{
    size_t max = r->opts->max_kept_bytes;
    uint64_t s = MMTLS_MAX(start, r->next_off);

    if (!r->opts->keep_until_acked || max == 0 || end <= s) {
        return true;
    }
    if (end - r->kept_off > max) {
        return false;
    }
    return s != r->next_off || mmtls_memcap_fits(r->memcap, (size_t)(end - s));
}

int mmtls_reasm_segment(struct mmtls_reasm *r, uint32_t seq, const uint8_t *p, size_t len, bool fin,
                        const struct mmtls_reasm_sink *sink)
{
    struct reasm_diff d = {0};
    bool done_before, retrans = false;
    uint64_t start, end, s;
    int64_t rel;
    int rc = 0;

    r->stats.segments++;
    if (len == 0 && !fin) {
        /* A pure ACK or a keep-alive probe carries no data and may sit one byte early. */
        return 0;
    }
    if (p == NULL && len != 0) {
        return MMTLS_E_INVAL;
    }
    if (len > REASM_WINDOW_MAX) {
        r->stats.malformed++;
        return MMTLS_E_MALFORMED;
    }
    if (!r->started) {
        r->started = true;
        r->midstream = true;
        r->base_seq = seq;
    }
    done_before = fin_done(r);
    rel = rel_off(r, seq);
    if (rel > (int64_t)REASM_WINDOW_MAX) {
        r->stats.malformed++;
        return MMTLS_E_MALFORMED;
    }
    if (rel < 0 && (uint64_t)-rel > r->next_off) {
        /* Bytes before offset 0: sent before the capture started or before the SYN.  They can
         * never be checked; a FIN among them is nonsense and ignored. */
        uint64_t before = (uint64_t)-rel - r->next_off;
        if (before >= len) {
            r->stats.old_unchecked_bytes += len;
            r->stats.retransmissions++;
            return 0;
        }
        r->stats.old_unchecked_bytes += before;
        retrans = true;
        p += before;
        len -= (size_t)before;
        start = 0;
    } else {
        start = r->next_off + (uint64_t)rel;
    }
    end = start + len;

    if (!keep_room(r, start, end)) {
        /* Nothing of it is taken, the FIN included: the sender sends it again once the peer
         * acknowledged more. */
        r->stats.keep_refused++;
        emit(sink, MMTLS_REASM_EV_KEEP_FULL, MMTLS_MAX(start, r->next_off),
             end - MMTLS_MAX(start, r->next_off));
        return MMTLS_E_LIMIT;
    }
    if (fin) {
        fin_note(r, end, &d);
    }
    if (r->fin_seen && end > r->fin_off) {
        /* Data beyond the FIN is not part of the stream as the middlebox sees it, and is a
         * conflict: no sender writes past its own FIN, so either that FIN was an insertion
         * the receiver discarded (it then reads these bytes uninspected: Ptacek & Newsham
         * §5.3), or a segment running across the FIN reaches a receiver that has not got the
         * FIN yet (it came out of order, ahead) and is delivered whole. */
        r->stats.malformed++;
        diff_note(&d, MMTLS_MAX(start, r->fin_off), end);
        end = MMTLS_MAX(start, r->fin_off);
    }

    /* Already delivered bytes: compare with the kept copy where there is one. */
    if (start < r->next_off) {
        uint64_t lo = start, hi = MMTLS_MIN(end, r->next_off);
        retrans = true;
        if (lo < r->kept_off) {
            uint64_t unchecked = MMTLS_MIN(hi, r->kept_off) - lo;
            r->stats.old_unchecked_bytes += unchecked;
            lo += unchecked;
        }
        if (lo < hi) {
            diff_range(&d, p + (lo - start), kept_at(r, lo), (size_t)(hi - lo), lo);
        }
    }
    s = MMTLS_MAX(start, r->next_off);
    if (s < end && ooo_compare(r, s, end, p + (s - start), &d)) {
        retrans = true;
    }
    if (retrans) {
        r->stats.retransmissions++;
    }
    if (d.any) {
        /* Raised before any new byte of this segment reaches the sink. */
        r->stats.overlaps_diff++;
        emit(sink, MMTLS_REASM_EV_OVERLAP_DIFF, d.lo, d.hi - d.lo);
    }

    if (s < end) {
        if (s == r->next_off) {
            advance(r, sink, p + (s - start), s, end);
        } else {
            r->stats.ooo_segments++;
            rc = ooo_fill(r, s, end, p + (s - start), sink);
        }
    }
    fin_check(r, sink, done_before);
    return rc;
}

void mmtls_reasm_ack(struct mmtls_reasm *r, uint32_t ack, const struct mmtls_reasm_sink *sink)
{
    bool done_before;
    uint64_t off, to;
    int64_t rel;

    if (!r->started) {
        return;
    }
    rel = rel_off(r, ack);
    if (rel > (int64_t)REASM_WINDOW_MAX || (rel < 0 && (uint64_t)-rel > r->next_off)) {
        return; /* absurd, or before the stream started */
    }
    off = r->next_off + (uint64_t)rel;
    /* RFC 9293 §3.4: the FIN occupies one sequence number, acknowledged as fin_off + 1. */
    if (r->fin_seen && off > r->fin_off) {
        off = r->fin_off;
    }
    if (off > r->acked_off) {
        r->acked_off = off;
    }
    kept_drop_to(r, MMTLS_MIN(off, r->next_off));
    if (off <= r->next_off) {
        return;
    }
    /* The peer has bytes we never saw: the capture lost them.  Every hole before `off` is a
     * gap; buffered segments between the holes are delivered.  Bounded: each round after the
     * first consumes at least one buffered segment. */
    done_before = fin_done(r);
    while (r->next_off < off) {
        to = off;
        if (r->ooo != NULL && r->ooo->off < to) {
            to = r->ooo->off;
        }
        skip_to(r, sink, to);
    }
    fin_check(r, sink, done_before);
}

bool mmtls_reasm_flush_gap(struct mmtls_reasm *r, const struct mmtls_reasm_sink *sink)
{
    bool done_before;

    if (r->ooo == NULL) {
        return false;
    }
    done_before = fin_done(r);
    skip_to(r, sink, r->ooo->off);
    fin_check(r, sink, done_before);
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Internal (reasm_int.h)                                                                      */

size_t mmtls_reasm_seg_overhead(void)
{
    return REASM_SEG_OVERHEAD;
}

size_t mmtls_reasm_charged(const struct mmtls_reasm *r)
{
    const struct mmtls_reasm_seg *g;
    size_t n = kept_live(r) + r->kept_resv;

    for (g = r->ooo; g != NULL; g = g->next) {
        n += REASM_SEG_OVERHEAD + g->cap;
    }
    return n;
}

int mmtls_reasm_check(const struct mmtls_reasm *r)
{
    const struct mmtls_reasm_seg *g;
    uint64_t prev_end = r->next_off;
    uint32_t count = 0;
    size_t bytes = 0;

    if (r->kept_off > r->next_off || r->kept.len < kept_live(r)) {
        return MMTLS_E_INTERNAL;
    }
    if (r->opts->max_kept_bytes != 0 && kept_live(r) > r->opts->max_kept_bytes) {
        return MMTLS_E_INTERNAL;
    }
    for (g = r->ooo; g != NULL; g = g->next) {
        /* sorted, disjoint, strictly after next_off (else it would have been delivered) */
        if (g->len == 0 || g->len > g->cap ||
            (g == r->ooo ? g->off <= r->next_off : g->off < prev_end)) {
            return MMTLS_E_INTERNAL;
        }
        if (r->fin_seen && g->off + g->len > r->fin_off) {
            return MMTLS_E_INTERNAL;
        }
        prev_end = g->off + g->len;
        count++;
        bytes += g->len;
    }
    if (count != r->ooo_count || bytes != r->ooo_bytes) {
        return MMTLS_E_INTERNAL;
    }
    if (r->fin_seen && r->next_off > r->fin_off) {
        return MMTLS_E_INTERNAL;
    }
    return 0;
}
