/* Differential fuzz target for reasm: the input is a list of segment / ACK / flush operations
 * on one stream; the result is checked against a naive byte-array model with first-copy-wins
 * semantics.
 *
 * Input:
 *   byte 0     mode: bit0 tiny caps (memory safety and accounting only), bit1 SYN first,
 *              bits 2-3 max_kept_bytes {0, 7, 64, 1 MiB}, bit4 keep_until_acked
 *   bytes 1-4  ISN (big endian): ISNs near 2^32 make the stream wrap
 *   bytes 5-7  tiny-caps mode: max_ooo_bytes/4, max_segments & 15, memcap/4 (+ overhead)
 *   then 5-byte records: op | pos (u16, & 0x7ff) | len (u16, & 0x1ff)
 *     op & 3: 0 data, 1 data + FIN, 2 ACK of pos, 3 flush_gap
 *     op & 4: conflicting content: byte (k*37 % len) flipped, or every byte when k == 31,
 *             with k = op >> 3
 * Positions are absolute indexes into a reference stream ref[]; sequence number = ISN + 1 + pos.
 *
 * Model (exact in the large-caps mode):
 *   - a byte is "held" when it is buffered or delivered-and-kept; a new copy of a held byte is
 *     compared (differences => exactly one OVERLAP_DIFF per segment, with the span of the
 *     differing bytes) and the first copy stays; bytes below kept_lo are not checked;
 *   - kept_lo = max(kept_lo, next - max_kept, min(ack, next)); after a gap kept_lo = next;
 *   - keep_until_acked (max_kept != 0): a segment with bytes past max(start, next) that reach
 *     beyond kept_lo + max_kept is refused whole (one KEEP_FULL over those bytes, nothing else
 *     changes), so kept_lo never moves for the bound;
 *   - the first FIN at or after next fixes the end; bytes beyond it are dropped;
 *   - conflicts at the FIN widen the same OVERLAP_DIFF span: a second FIN at another end
 *     ([min, max) of the two ends), data beyond the FIN ([max(fin, start), end of the data)),
 *     and, when the FIN is first seen, every buffered byte beyond it;
 *   - an ACK beyond next declares each hole up to it a gap, delivering held bytes between;
 *   - flush_gap declares the hole before the first buffered byte a gap.
 */
#include <stdio.h>
#include <stdlib.h>

#include "reasm/reasm.h"
#include "reasm/reasm_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define POS_MASK 0x7ff
#define LEN_MASK 0x1ff
#define NPOS (POS_MASK + LEN_MASK + 2)
#define MAX_EVENTS 64

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct ev {
    enum mmtls_reasm_event ev;
    uint64_t off, len;
};

/* What the implementation did (sink side). */
struct got {
    uint8_t out[NPOS]; /* by absolute position (stream offset + base) */
    uint64_t next;     /* stream offset the next data call must start at */
    uint64_t base;     /* absolute position of offset 0 (set once started) */
    struct ev ev[MAX_EVENTS];
    size_t nev;       /* events of the current operation */
    uint64_t gap_end; /* stream offset where the last gap ended */
    size_t fins;
};

struct model {
    bool started, fin_seen;
    uint64_t base, next, kept_lo, fin; /* absolute positions */
    uint8_t val[NPOS];
    bool held[NPOS];
    bool gap[NPOS];
    size_t max_kept;
    bool keep_until_acked;
    size_t fins;
    struct ev ev[MAX_EVENTS];
    size_t nev;
};

static uint8_t ref_byte(uint64_t pos)
{
    return (uint8_t)(pos * 131u + (pos >> 8) * 7u + 1u);
}

static void got_data(void *ud, uint64_t off, const uint8_t *p, size_t len)
{
    struct got *g = ud;

    CHECK(len > 0);
    CHECK(off == g->next); /* contiguous: no byte twice, none skipped silently */
    CHECK(g->base + off + len <= NPOS);
    memcpy(g->out + g->base + off, p, len);
    g->next = off + len;
}

static void got_event(void *ud, enum mmtls_reasm_event ev, uint64_t off, uint64_t len)
{
    struct got *g = ud;

    if (ev == MMTLS_REASM_EV_GAP) {
        CHECK(off == g->next);
        CHECK(len > 0);
        g->next = off + len;
        g->gap_end = off + len;
    }
    if (ev == MMTLS_REASM_EV_FIN) {
        g->fins++;
        CHECK(off == g->next);
    }
    if (g->nev < MAX_EVENTS) {
        g->ev[g->nev].ev = ev;
        g->ev[g->nev].off = off;
        g->ev[g->nev].len = len;
    }
    g->nev++;
}

/* ------------------------------------------------------------------------------------------ */
/* The model                                                                                   */

static void m_event(struct model *m, enum mmtls_reasm_event ev, uint64_t off, uint64_t len)
{
    if (m->nev < MAX_EVENTS) {
        m->ev[m->nev].ev = ev;
        m->ev[m->nev].off = off;
        m->ev[m->nev].len = len;
    }
    m->nev++;
}

static void m_advance(struct model *m)
{
    while (m->next < NPOS && m->held[m->next] && !(m->fin_seen && m->next >= m->fin)) {
        m->next++;
    }
    if (m->max_kept != 0 && m->next > m->max_kept && m->next - m->max_kept > m->kept_lo) {
        /* keep_until_acked: the window check must have made this impossible */
        CHECK(!m->keep_until_acked);
        m->kept_lo = m->next - m->max_kept;
    }
    if (m->max_kept == 0) {
        m->kept_lo = m->next;
    }
}

static void m_fin_check(struct model *m, bool done_before)
{
    if (!done_before && m->fin_seen && m->next >= m->fin) {
        m->fins++;
        m_event(m, MMTLS_REASM_EV_FIN, m->fin - m->base, 0);
    }
}

static uint64_t m_first_buffered(const struct model *m)
{
    for (uint64_t p = m->next; p < NPOS; p++) {
        if (m->held[p]) {
            return p;
        }
    }
    return NPOS;
}

static void m_gap(struct model *m, uint64_t to)
{
    m_event(m, MMTLS_REASM_EV_GAP, m->next - m->base, to - m->next);
    for (uint64_t p = m->next; p < to; p++) {
        m->gap[p] = true;
    }
    m->next = to;
    m->kept_lo = to;
    m_advance(m);
}

/* Widens the segment's conflict span [*lo, *hi) over [a, b). */
static void m_widen(bool *diff, uint64_t *lo, uint64_t *hi, uint64_t a, uint64_t b)
{
    if (!*diff || a < *lo) {
        *lo = a;
    }
    if (!*diff || b > *hi) {
        *hi = b;
    }
    *diff = true;
}

/* Returns true when the segment was refused (keep_until_acked). */
static bool m_segment(struct model *m, uint64_t a, const uint8_t *c, size_t len, bool fin)
{
    uint64_t s = a, e = a + len, lo = 0, hi = 0, nw;
    bool done_before, diff = false;

    if (len == 0 && !fin) {
        return false;
    }
    if (!m->started) {
        m->started = true;
        m->base = m->next = m->kept_lo = a;
    }
    done_before = m->fin_seen && m->next >= m->fin;
    if (s < m->base) {
        if (e <= m->base) {
            return false;
        }
        s = m->base;
    }
    nw = s > m->next ? s : m->next;
    if (m->keep_until_acked && m->max_kept != 0 && e > nw && e - m->kept_lo > m->max_kept) {
        m_event(m, MMTLS_REASM_EV_KEEP_FULL, nw - m->base, e - nw);
        return true;
    }
    if (fin && m->fin_seen && e != m->fin) {
        m_widen(&diff, &lo, &hi, e < m->fin ? e : m->fin, e < m->fin ? m->fin : e);
    } else if (fin && !m->fin_seen && e >= m->next) {
        for (uint64_t p = e; p < NPOS; p++) {
            if (m->held[p]) {
                m_widen(&diff, &lo, &hi, p, p + 1);
            }
        }
        m->fin_seen = true;
        m->fin = e;
        for (uint64_t p = e; p < NPOS; p++) {
            m->held[p] = false;
        }
    }
    if (m->fin_seen && e > m->fin) {
        m_widen(&diff, &lo, &hi, s > m->fin ? s : m->fin, e);
        e = s > m->fin ? s : m->fin;
    }
    for (uint64_t p = s; p < e; p++) {
        uint8_t v = c[p - a];
        if (p < m->kept_lo) {
            continue;
        }
        if (m->held[p]) {
            if (m->val[p] != v) {
                m_widen(&diff, &lo, &hi, p, p + 1);
            }
        } else {
            /* a new buffered byte */
            m->held[p] = true;
            m->val[p] = v;
        }
    }
    if (diff) {
        m_event(m, MMTLS_REASM_EV_OVERLAP_DIFF, lo - m->base, hi - lo);
    }
    m_advance(m);
    m_fin_check(m, done_before);
    return false;
}

static void m_ack(struct model *m, uint64_t a)
{
    bool done_before;

    if (!m->started || a < m->base) {
        return;
    }
    if (m->fin_seen && a > m->fin) {
        a = m->fin;
    }
    if (a > m->kept_lo) {
        m->kept_lo = a < m->next ? a : m->next;
    }
    done_before = m->fin_seen && m->next >= m->fin;
    while (m->next < a) {
        uint64_t to = m_first_buffered(m);
        m_gap(m, to < a ? to : a);
    }
    m_fin_check(m, done_before);
}

static bool m_flush(struct model *m)
{
    uint64_t to;
    bool done_before;

    if (!m->started) {
        return false;
    }
    to = m_first_buffered(m);
    if (to >= NPOS) {
        return false;
    }
    done_before = m->fin_seen && m->next >= m->fin;
    m_gap(m, to);
    m_fin_check(m, done_before);
    return true;
}

/* ------------------------------------------------------------------------------------------ */

static void compare(const struct model *m, const struct got *g, const struct mmtls_reasm *r)
{
    CHECK(r->started == m->started);
    if (!m->started) {
        return;
    }
    CHECK(g->base == m->base);
    CHECK(r->next_off == m->next - m->base);
    CHECK(g->next == r->next_off);
    CHECK(r->kept_off == m->kept_lo - m->base);
    CHECK(r->fin_seen == m->fin_seen);
    if (m->fin_seen) {
        CHECK(r->fin_off == m->fin - m->base);
    }
    CHECK(g->fins == m->fins);
    CHECK(g->nev == m->nev);
    for (size_t i = 0; i < g->nev && i < MAX_EVENTS; i++) {
        CHECK(g->ev[i].ev == m->ev[i].ev);
        CHECK(g->ev[i].off == m->ev[i].off);
        CHECK(g->ev[i].len == m->ev[i].len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t kept_sel[4] = {0, 7, 64, 1u << 20};
    static struct model m;
    static struct got g;
    struct mmtls_reasm_opts opts;
    struct mmtls_memcap mc = {0};
    struct mmtls_reasm r;
    struct mmtls_reasm_sink sink = {&g, got_data, got_event};
    uint8_t buf[LEN_MASK + 1];
    bool tiny, exact;
    uint32_t isn;

    if (size < 8) {
        return 0;
    }
    tiny = data[0] & 1;
    exact = !tiny;
    isn = mmtls_be32(data + 1);
    memset(&m, 0, sizeof(m));
    memset(&g, 0, sizeof(g));
    if (tiny) {
        opts.max_ooo_bytes = (size_t)data[5] * 4;
        opts.max_segments = data[6] & 15;
        opts.max_kept_bytes = kept_sel[(data[0] >> 2) & 3];
        mc.limit = mmtls_reasm_seg_overhead() + (size_t)data[7] * 4;
    } else {
        opts.max_ooo_bytes = 1u << 24;
        opts.max_segments = 1u << 20;
        opts.max_kept_bytes = kept_sel[(data[0] >> 2) & 3];
    }
    opts.keep_until_acked = (data[0] & 16) != 0;
    m.max_kept = opts.max_kept_bytes;
    m.keep_until_acked = opts.keep_until_acked;
    mmtls_reasm_init(&r, &opts, &mc);
    if (data[0] & 2) {
        mmtls_reasm_syn(&r, isn);
        m.started = true; /* base 0 */
    }
    data += 8;
    size -= 8;

    /* Bounded by the input size: one operation per 5 bytes. */
    for (; size >= 5; data += 5, size -= 5) {
        uint8_t op = data[0], k = op >> 3;
        uint64_t pos = mmtls_be16(data + 1) & POS_MASK;
        size_t len = mmtls_be16(data + 3) & LEN_MASK;
        uint32_t seq = isn + 1 + (uint32_t)pos;
        bool was_started = r.started;

        g.nev = 0;
        m.nev = 0;
        switch (op & 3) {
        case 0:
        case 1:
            for (size_t i = 0; i < len; i++) {
                buf[i] = ref_byte(pos + i);
            }
            if ((op & 4) && len > 0) {
                if (k == 31) {
                    for (size_t i = 0; i < len; i++) {
                        buf[i] ^= 0x55;
                    }
                } else {
                    buf[(k * 37u) % len] ^= (uint8_t)(0x80 | k);
                }
            }
            {
                int rc;
                bool refused;
                if (!was_started) {
                    g.base = pos; /* in case this segment starts the stream (midstream) */
                }
                rc = mmtls_reasm_segment(&r, seq, buf, len, op & 1, &sink);
                refused = m_segment(&m, pos, buf, len, op & 1);
                if (exact) {
                    CHECK(rc == (refused ? MMTLS_E_LIMIT : 0));
                }
            }
            break;
        case 2:
            mmtls_reasm_ack(&r, seq, &sink);
            m_ack(&m, pos);
            break;
        default: {
            bool a = mmtls_reasm_flush_gap(&r, &sink);
            bool b = m_flush(&m);
            if (exact) {
                CHECK(a == b);
            }
            break;
        }
        }
        CHECK(mmtls_reasm_check(&r) == 0);
        CHECK(mc.used == mmtls_reasm_charged(&r));
        CHECK(mc.limit == 0 || mc.used <= mc.limit);
        CHECK(g.next == r.next_off);
        if (opts.keep_until_acked && opts.max_kept_bytes != 0 && r.started) {
            /* in every mode (tiny memcaps too): only an ACK or a gap frees kept bytes */
            CHECK(r.kept_off <= MMTLS_MAX(r.acked_off, g.gap_end));
        }
        if (exact) {
            compare(&m, &g, &r);
        }
    }
    if (exact && m.started) {
        /* every delivered byte is the model's first copy */
        for (uint64_t p = m.base; p < m.next; p++) {
            if (!m.gap[p]) {
                CHECK(g.out[p] == m.val[p]);
            }
        }
    }
    mmtls_reasm_fini(&r);
    CHECK(mc.used == 0);
    return 0;
}
