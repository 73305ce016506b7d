/* Unit tests for reasm: in-order and out-of-order delivery, overlaps (first copy wins),
 * retransmissions, wrap-around, SYN/midstream start, FIN, ACK-detected gaps, flush_gap, caps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "reasm/reasm.h"
#include "reasm/reasm_int.h"

/* ------------------------------------------------------------------------------------------ */
/* A recording sink                                                                            */

#define OUT_MAX 4096
#define EV_MAX 64

struct rec_ev {
    enum mmtls_reasm_event ev;
    uint64_t off, len;
};

struct rec {
    uint8_t out[OUT_MAX]; /* out[o] = byte delivered at stream offset o */
    uint8_t seen[OUT_MAX];
    uint64_t next; /* offset the next data call must carry */
    size_t ndata;  /* data callbacks */
    struct rec_ev ev[EV_MAX];
    size_t nev;
};

static void rec_data(void *ud, uint64_t off, const uint8_t *p, size_t len)
{
    struct rec *rc = ud;

    assert_true(len > 0);
    assert_true(off == rc->next);
    assert_true(off + len <= OUT_MAX);
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(rc->seen[off + i], 0); /* never twice */
        rc->seen[off + i] = 1;
    }
    memcpy(rc->out + off, p, len);
    rc->next = off + len;
    rc->ndata++;
}

static void rec_event(void *ud, enum mmtls_reasm_event ev, uint64_t off, uint64_t len)
{
    struct rec *rc = ud;

    assert_true(rc->nev < EV_MAX);
    rc->ev[rc->nev].ev = ev;
    rc->ev[rc->nev].off = off;
    rc->ev[rc->nev].len = len;
    rc->nev++;
    if (ev == MMTLS_REASM_EV_GAP) {
        assert_true(off == rc->next);
        rc->next = off + len;
    }
}

static size_t rec_count(const struct rec *rc, enum mmtls_reasm_event ev)
{
    size_t n = 0;

    for (size_t i = 0; i < rc->nev; i++) {
        n += rc->ev[i].ev == ev;
    }
    return n;
}

static const struct rec_ev *rec_find(const struct rec *rc, enum mmtls_reasm_event ev)
{
    for (size_t i = 0; i < rc->nev; i++) {
        if (rc->ev[i].ev == ev) {
            return &rc->ev[i];
        }
    }
    return NULL;
}

/* A test fixture: stream + memcap + sink + recorder. */
struct fx {
    struct mmtls_reasm_opts opts;
    struct mmtls_memcap mc;
    struct mmtls_reasm r;
    struct rec rec;
    struct mmtls_reasm_sink sink;
};

static void fx_init(struct fx *f, size_t ooo, size_t kept, uint32_t segs, size_t memcap)
{
    memset(f, 0, sizeof(*f));
    f->opts.max_ooo_bytes = ooo;
    f->opts.max_kept_bytes = kept;
    f->opts.max_segments = segs;
    f->mc.limit = memcap;
    mmtls_reasm_init(&f->r, &f->opts, &f->mc);
    f->sink.ud = &f->rec;
    f->sink.data = rec_data;
    f->sink.event = rec_event;
}

static void fx_init_default(struct fx *f)
{
    fx_init(f, 1 << 16, 1 << 16, 256, 0);
}

/* Invariants hold and the memcap carries exactly this stream's charge. */
static void fx_check(const struct fx *f)
{
    assert_int_equal(mmtls_reasm_check(&f->r), 0);
    assert_int_equal(f->mc.used, mmtls_reasm_charged(&f->r));
    if (f->mc.limit != 0) {
        assert_true(f->mc.used <= f->mc.limit);
    }
}

static void fx_fini(struct fx *f)
{
    fx_check(f);
    mmtls_reasm_fini(&f->r);
    assert_int_equal(f->mc.used, 0);
}

/* Feeds stream bytes [off, off+len) of `data` (offset 0 = isn + 1). */
static int fx_seg(struct fx *f, uint32_t isn, const uint8_t *data, uint64_t off, size_t len,
                  bool fin)
{
    int rc = mmtls_reasm_segment(&f->r, isn + 1 + (uint32_t)off, data + off, len, fin, &f->sink);
    fx_check(f);
    return rc;
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* ------------------------------------------------------------------------------------------ */

static void test_in_order(void **state)
{
    /* "GET / HTTP/1.1\r\n" in three segments after a SYN, then a bare FIN */
    static const uint8_t msg[] = "GET / HTTP/1.1\r\n";
    const uint32_t isn = 1000;
    struct fx f;

    (void)state;
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, isn);
    assert_true(f.r.started);
    assert_false(f.r.midstream);
    assert_int_equal(fx_seg(&f, isn, msg, 0, 4, false), 0);
    assert_int_equal(fx_seg(&f, isn, msg, 4, 6, false), 0);
    assert_int_equal(fx_seg(&f, isn, msg, 10, 6, false), 0);
    assert_int_equal(f.r.next_off, 16);
    assert_int_equal(f.rec.ndata, 3); /* each straight from the caller's buffer */
    assert_memory_equal(f.rec.out, msg, 16);
    assert_int_equal(f.r.ooo_count, 0);
    assert_int_equal(f.rec.nev, 0);
    assert_int_equal(fx_seg(&f, isn, msg, 16, 0, true), 0);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_FIN), 1);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_FIN)->off, 16);
    assert_int_equal(f.r.stats.segments, 4);
    assert_int_equal(f.r.stats.bytes_delivered, 16);
    assert_int_equal(mmtls_reasm_seq_to_off(&f.r, isn + 1), 0);
    assert_int_equal(mmtls_reasm_seq_to_off(&f.r, isn + 17), 16);
    fx_fini(&f);
}

/* Runs all orders of nseg segments given by bounds [lo, hi) over a 64-byte stream and checks the
 * exact bytes come out exactly once. */
static void run_permutations(const uint64_t (*seg)[2], size_t nseg, uint32_t isn, bool syn)
{
    uint8_t data[64];
    size_t idx[8], total = 0;
    uint64_t len = 0;

    assert_true(nseg <= 8);
    fill_pattern(data, sizeof(data), isn);
    for (size_t i = 0; i < nseg; i++) {
        idx[i] = i;
        len = MMTLS_MAX(len, seg[i][1]);
    }
    for (;;) {
        struct fx f;

        fx_init_default(&f);
        if (syn) {
            mmtls_reasm_syn(&f.r, isn);
        } else {
            /* midstream: start with segment 0 so offset 0 is byte 0 */
            assert_int_equal(
                fx_seg(&f, isn, data, seg[0][0], (size_t)(seg[0][1] - seg[0][0]), false), 0);
        }
        for (size_t i = 0; i < nseg; i++) {
            const uint64_t *s = seg[idx[i]];
            assert_int_equal(fx_seg(&f, isn, data, s[0], (size_t)(s[1] - s[0]), false), 0);
        }
        assert_int_equal(f.r.next_off, len);
        assert_int_equal(f.rec.next, len);
        assert_memory_equal(f.rec.out, data, len);
        assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF), 0);
        assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_GAP), 0);
        assert_null(f.r.ooo);
        fx_fini(&f);
        total++;

        /* next permutation (lexicographic) */
        size_t i = nseg - 1, j;
        while (i > 0 && idx[i - 1] >= idx[i]) {
            i--;
        }
        if (i == 0) {
            break;
        }
        for (j = nseg - 1; idx[j] <= idx[i - 1]; j--) {
        }
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
        for (size_t a = i, b = nseg - 1; a < b; a++, b--) {
            t = idx[a];
            idx[a] = idx[b];
            idx[b] = t;
        }
    }
    assert_true(total >= 120 || nseg < 5);
}

static void test_permutations(void **state)
{
    /* disjoint segments of uneven sizes */
    static const uint64_t disjoint[5][2] = {{0, 7}, {7, 20}, {20, 21}, {21, 40}, {40, 64}};
    /* overlapping segments with identical content */
    static const uint64_t overlapping[5][2] = {{0, 12}, {10, 22}, {5, 35}, {30, 45}, {44, 64}};
    /* segments that contain others */
    static const uint64_t nested[5][2] = {{0, 64}, {10, 20}, {3, 50}, {20, 21}, {40, 64}};

    (void)state;
    run_permutations(disjoint, 5, 7000, true);
    run_permutations(overlapping, 5, 0x12345678, true);
    run_permutations(nested, 5, 99, true);
    /* around the wrap: offset 0 = 0xfffffff0, the stream crosses 2^32 at offset 16 */
    run_permutations(disjoint, 5, 0xffffffefu, true);
    run_permutations(overlapping, 5, 0xffffffe0u, true);
    run_permutations(disjoint, 5, 0xffffffffu, false);
}

static void test_duplicates(void **state)
{
    uint8_t data[40];
    struct fx f;

    (void)state;
    fill_pattern(data, sizeof(data), 1);
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, 0);
    assert_int_equal(fx_seg(&f, 0, data, 0, 10, false), 0);
    assert_int_equal(fx_seg(&f, 0, data, 0, 10, false), 0);  /* delivered duplicate */
    assert_int_equal(fx_seg(&f, 0, data, 20, 10, false), 0); /* out of order */
    assert_int_equal(fx_seg(&f, 0, data, 20, 10, false), 0); /* buffered duplicate */
    assert_int_equal(fx_seg(&f, 0, data, 22, 5, false), 0);  /* inside a buffered one */
    assert_int_equal(f.r.ooo_count, 1);
    assert_int_equal(f.r.ooo_bytes, 10);
    assert_int_equal(fx_seg(&f, 0, data, 10, 10, false), 0);
    assert_int_equal(f.r.next_off, 30);
    assert_memory_equal(f.rec.out, data, 30);
    assert_int_equal(f.r.stats.retransmissions, 3);
    assert_int_equal(f.rec.nev, 0);
    fx_fini(&f);
}

static void test_retransmission_more_data(void **state)
{
    uint8_t data[40];
    struct fx f;

    (void)state;
    fill_pattern(data, sizeof(data), 2);
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, 500);
    assert_int_equal(fx_seg(&f, 500, data, 0, 10, false), 0);
    assert_int_equal(fx_seg(&f, 500, data, 30, 5, false), 0);
    /* retransmission of [0,10) carrying [10,32): new tail [10,30) is delivered, then the
     * buffered [30,35) */
    assert_int_equal(fx_seg(&f, 500, data, 0, 32, false), 0);
    assert_int_equal(f.r.next_off, 35);
    assert_memory_equal(f.rec.out, data, 35);
    assert_int_equal(f.r.stats.retransmissions, 1);
    assert_int_equal(f.rec.nev, 0);
    fx_fini(&f);
}

static void test_overlap_kept_diff(void **state)
{
    /* "AAAAAAAA" delivered, then a retransmission "AAXAAAYA" of the same bytes */
    static const uint8_t first[] = "AAAAAAAA";
    static const uint8_t evil[] = "AAXAAAYAzz";
    const struct rec_ev *e;
    struct fx f;

    (void)state;
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, 0);
    assert_int_equal(mmtls_reasm_segment(&f.r, 1, first, 8, false, &f.sink), 0);
    assert_int_equal(mmtls_reasm_segment(&f.r, 1, evil, 10, false, &f.sink), 0);
    fx_check(&f);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF), 1);
    e = rec_find(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF);
    assert_int_equal(e->off, 2); /* first differing byte */
    assert_int_equal(e->len, 5); /* up to the last one: [2, 7) */
    assert_int_equal(f.r.stats.overlaps_diff, 1);
    /* the event came before the new tail "zz" */
    assert_memory_equal(f.rec.out, "AAAAAAAAzz", 10);
    assert_int_equal(f.rec.ev[0].ev, MMTLS_REASM_EV_OVERLAP_DIFF);
    assert_int_equal(f.rec.ndata, 2);
    fx_fini(&f);
}

static void test_overlap_ooo_both_orders(void **state)
{
    /* Stream bytes 0..29 "0123456789abcdefghijABCDEFGHIJ"; a conflicting copy of [5,15) is
     * "#####!!!!!". */
    static const uint8_t good[] = "0123456789abcdefghijABCDEFGHIJ";
    static const uint8_t bad[] = "#####!!!!!";
    uint8_t want[30];
    struct fx f;

    (void)state;
    /* order 1: [10,20) good first, then [5,15) bad: bad[5..10) loses, bad[0..5) fills [5,10) */
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, 0);
    assert_int_equal(mmtls_reasm_segment(&f.r, 11, good + 10, 10, false, &f.sink), 0);
    assert_int_equal(mmtls_reasm_segment(&f.r, 6, bad, 10, false, &f.sink), 0);
    fx_check(&f);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF), 1);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF)->off, 10);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF)->len, 5);
    assert_int_equal(f.r.ooo_count, 2);
    assert_int_equal(mmtls_reasm_segment(&f.r, 1, good, 30, false, &f.sink), 0);
    memcpy(want, good, 30);
    memcpy(want + 5, "#####", 5);
    assert_int_equal(f.r.next_off, 30);
    assert_memory_equal(f.rec.out, want, 30);
    /* the final segment overlapped [5,10) with different content too */
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF), 2);
    fx_fini(&f);

    /* order 2: [5,15) bad first, then [10,20) good: good[10..15) loses */
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, 0);
    assert_int_equal(mmtls_reasm_segment(&f.r, 6, bad, 10, false, &f.sink), 0);
    assert_int_equal(mmtls_reasm_segment(&f.r, 11, good + 10, 10, false, &f.sink), 0);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF), 1);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF)->off, 10);
    assert_int_equal(mmtls_reasm_segment(&f.r, 1, good, 5, false, &f.sink), 0);
    memcpy(want, good, 30);
    memcpy(want + 5, bad, 10);
    assert_int_equal(f.r.next_off, 20);
    assert_memory_equal(f.rec.out, want, 20);
    fx_fini(&f);

    /* same content in both orders: no event */
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, 0);
    assert_int_equal(mmtls_reasm_segment(&f.r, 11, good + 10, 10, false, &f.sink), 0);
    assert_int_equal(mmtls_reasm_segment(&f.r, 6, good + 5, 10, false, &f.sink), 0);
    assert_int_equal(mmtls_reasm_segment(&f.r, 1, good, 20, false, &f.sink), 0);
    assert_int_equal(f.rec.nev, 0);
    assert_memory_equal(f.rec.out, good, 20);
    fx_fini(&f);
}

static void test_overlap_straddling(void **state)
{
    /* Kept [0,10), buffered [15,20); a segment [5,25) differing at 7 and at 17: one event
     * spanning [7,18), delivered bytes keep the first copies, [10,15) and [20,25) are new. */
    uint8_t data[30], evil[30];
    struct fx f;

    (void)state;
    fill_pattern(data, sizeof(data), 3);
    memcpy(evil, data, sizeof(evil));
    evil[7] ^= 1;
    evil[17] ^= 1;
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, 77);
    assert_int_equal(fx_seg(&f, 77, data, 0, 10, false), 0);
    assert_int_equal(fx_seg(&f, 77, data, 15, 5, false), 0);
    assert_int_equal(fx_seg(&f, 77, evil, 5, 20, false), 0);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF), 1);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF)->off, 7);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF)->len, 11);
    assert_int_equal(f.r.next_off, 25);
    assert_memory_equal(f.rec.out, data, 25);
    fx_fini(&f);
}

static void test_wrap(void **state)
{
    /* offset 0 = seq 0xfffffffa; the stream crosses 2^32 at offset 6; out of order around it */
    uint8_t data[64];
    const uint32_t isn = 0xfffffff9u;
    struct fx f;

    (void)state;
    fill_pattern(data, sizeof(data), 4);
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, isn);
    assert_int_equal(fx_seg(&f, isn, data, 8, 8, false), 0); /* seq 2 (after the wrap) */
    assert_int_equal(fx_seg(&f, isn, data, 3, 4, false), 0); /* seq 0xfffffffd..0 */
    assert_int_equal(fx_seg(&f, isn, data, 20, 30, false), 0);
    assert_int_equal(f.r.ooo_count, 3);
    assert_int_equal(mmtls_reasm_seq_to_off(&f.r, 2), 8);
    assert_int_equal(fx_seg(&f, isn, data, 0, 3, false), 0);
    assert_int_equal(f.r.next_off, 7);
    assert_int_equal(fx_seg(&f, isn, data, 6, 15, false), 0);
    assert_int_equal(f.r.next_off, 50);
    assert_memory_equal(f.rec.out, data, 50);
    mmtls_reasm_ack(&f.r, isn + 1 + 50, &f.sink);
    assert_int_equal(f.r.acked_off, 50);
    assert_int_equal(f.r.kept_off, 50);
    assert_int_equal(f.rec.nev, 0);
    fx_fini(&f);
}

static void test_syn_and_midstream(void **state)
{
    uint8_t data[40];
    struct fx f;

    (void)state;
    fill_pattern(data, sizeof(data), 5);
    /* SYN: offset 0 is isn + 1; a byte at seq isn is before the stream */
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, 5000);
    mmtls_reasm_syn(&f.r, 100); /* another SYN before any byte: the latest ISN counts */
    assert_int_equal(f.r.base_seq, 101);
    assert_int_equal(mmtls_reasm_segment(&f.r, 100, data, 5, false, &f.sink), 0);
    fx_check(&f);
    assert_int_equal(f.r.stats.old_unchecked_bytes, 1);
    assert_int_equal(f.r.next_off, 4);
    assert_memory_equal(f.rec.out, data + 1, 4);
    fx_fini(&f);

    /* midstream: the first segment defines offset 0; an earlier retransmission is partly
     * unchecked (before the stream) and partly compared */
    fx_init_default(&f);
    mmtls_reasm_ack(&f.r, 12345, &f.sink); /* not started: ignored */
    assert_false(f.r.started);
    assert_int_equal(mmtls_reasm_segment(&f.r, 1010, data + 10, 10, false, &f.sink), 0);
    assert_true(f.r.started);
    assert_true(f.r.midstream);
    assert_int_equal(f.r.base_seq, 1010);
    assert_int_equal(mmtls_reasm_segment(&f.r, 1000, data, 25, false, &f.sink), 0);
    fx_check(&f);
    assert_int_equal(f.r.stats.old_unchecked_bytes, 10);
    assert_int_equal(f.r.next_off, 15);
    assert_memory_equal(f.rec.out, data + 10, 15);
    assert_int_equal(f.rec.nev, 0);
    mmtls_reasm_syn(&f.r, 0); /* SYN after data: ignored */
    assert_true(f.r.midstream);
    fx_fini(&f);

    /* zero-length segments do not start a stream; a NULL sink is allowed */
    fx_init_default(&f);
    assert_int_equal(mmtls_reasm_segment(&f.r, 7, NULL, 0, false, NULL), 0);
    assert_false(f.r.started);
    assert_int_equal(mmtls_reasm_segment(&f.r, 7, NULL, 3, false, NULL), MMTLS_E_INVAL);
    assert_int_equal(mmtls_reasm_segment(&f.r, 7, data, 3, false, NULL), 0);
    assert_int_equal(f.r.next_off, 3);
    fx_fini(&f);
}

static void test_fin(void **state)
{
    uint8_t data[40];
    struct fx f;

    (void)state;
    fill_pattern(data, sizeof(data), 6);
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, 9);
    /* the FIN segment [20,30) arrives first, with 5 extra bytes after it later */
    assert_int_equal(fx_seg(&f, 9, data, 20, 10, true), 0);
    assert_true(f.r.fin_seen);
    assert_int_equal(f.r.fin_off, 30);
    /* [25,35) runs across the FIN: [30,35) dropped and reported as a conflict */
    assert_int_equal(fx_seg(&f, 9, data, 25, 10, false), 0);
    assert_int_equal(f.r.stats.malformed, 1);
    assert_int_equal(f.rec.nev, 1);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF)->off, 30);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF)->len, 5);
    /* wholly beyond the FIN: dropped, and a conflict too (a receiver that discarded the FIN
     * as an insertion reads it) */
    assert_int_equal(fx_seg(&f, 9, data, 30, 5, false), 0);
    assert_int_equal(f.r.stats.malformed, 2);
    assert_int_equal(f.rec.nev, 2);
    assert_int_equal(f.rec.ev[1].ev, MMTLS_REASM_EV_OVERLAP_DIFF);
    assert_int_equal(f.rec.ev[1].off, 30);
    assert_int_equal(f.rec.ev[1].len, 5);
    assert_int_equal(f.r.ooo_bytes, 10);
    assert_int_equal(fx_seg(&f, 9, data, 10, 10, false), 0);
    assert_int_equal(f.rec.nev, 2);
    assert_int_equal(fx_seg(&f, 9, data, 0, 10, false), 0);
    assert_int_equal(f.r.next_off, 30);
    assert_memory_equal(f.rec.out, data, 30);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_FIN), 1);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_FIN)->off, 30);
    /* retransmitted FIN: no second event; the ACK of the FIN (fin_off + 1) is no gap */
    assert_int_equal(fx_seg(&f, 9, data, 20, 10, true), 0);
    mmtls_reasm_ack(&f.r, 9 + 1 + 31, &f.sink);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_FIN), 1);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_GAP), 0);
    assert_int_equal(f.r.acked_off, 30);
    fx_fini(&f);

    /* a FIN arriving after data buffered beyond it trims that data */
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, 9);
    assert_int_equal(fx_seg(&f, 9, data, 10, 20, false), 0);
    assert_int_equal(fx_seg(&f, 9, data, 30, 5, false), 0);
    assert_int_equal(fx_seg(&f, 9, data, 5, 10, true), 0); /* FIN at 15 */
    assert_int_equal(f.r.ooo_bytes, 10); /* [10,15) kept of the first, [5,10) new */
    /* the buffered [10,35) (appended into one segment) ran across the FIN: a conflict (a
     * receiver delivers it whole and drops the FIN as old) */
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF), 1);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF)->off, 15);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF)->len, 20);
    assert_int_equal(fx_seg(&f, 9, data, 0, 5, false), 0);
    assert_int_equal(f.r.next_off, 15);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_FIN), 1);
    fx_fini(&f);
    /* buffered pieces wholly beyond a later FIN: trimmed, one conflict over all of them */
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, 9);
    assert_int_equal(fx_seg(&f, 9, data, 20, 5, false), 0);
    assert_int_equal(fx_seg(&f, 9, data, 30, 5, false), 0);
    assert_int_equal(fx_seg(&f, 9, data, 10, 0, true), 0); /* bare FIN at 10 */
    assert_int_equal(f.r.ooo_bytes, 0);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF), 1);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF)->off, 20);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF)->len, 15);
    assert_int_equal(fx_seg(&f, 9, data, 0, 10, false), 0);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_FIN), 1);
    /* a FIN before delivered bytes is ignored */
    fx_fini(&f);
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, 9);
    assert_int_equal(fx_seg(&f, 9, data, 0, 20, false), 0);
    assert_int_equal(fx_seg(&f, 9, data, 0, 10, true), 0);
    assert_false(f.r.fin_seen);
    assert_int_equal(fx_seg(&f, 9, data, 20, 0, true), 0); /* bare FIN at 20 */
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_FIN), 1);
    fx_fini(&f);
}

static void test_ack_gap(void **state)
{
    uint8_t data[100];
    const struct rec_ev *e;
    struct fx f;

    (void)state;
    fill_pattern(data, sizeof(data), 7);
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, 0);
    assert_int_equal(fx_seg(&f, 0, data, 0, 10, false), 0);
    mmtls_reasm_ack(&f.r, 1 + 5, &f.sink); /* frees kept [0,5) */
    fx_check(&f);
    assert_int_equal(f.r.kept_off, 5);
    assert_int_equal(f.r.acked_off, 5);
    mmtls_reasm_ack(&f.r, 1 + 3, &f.sink); /* older ACK: nothing */
    assert_int_equal(f.r.acked_off, 5);
    /* the peer acknowledges 20: [10,20) was lost by the capture */
    mmtls_reasm_ack(&f.r, 1 + 20, &f.sink);
    fx_check(&f);
    e = rec_find(&f.rec, MMTLS_REASM_EV_GAP);
    assert_non_null(e);
    assert_int_equal(e->off, 10);
    assert_int_equal(e->len, 10);
    assert_int_equal(f.r.next_off, 20);
    assert_int_equal(f.r.stats.gaps, 1);
    assert_int_equal(f.r.stats.gap_bytes, 10);
    /* delivery continues at 20; a late copy of the lost bytes is unchecked */
    assert_int_equal(fx_seg(&f, 0, data, 20, 10, false), 0);
    assert_int_equal(fx_seg(&f, 0, data, 12, 4, false), 0);
    assert_int_equal(f.r.stats.old_unchecked_bytes, 4);
    assert_int_equal(f.r.next_off, 30);
    assert_memory_equal(f.rec.out + 20, data + 20, 10);
    /* buffered data behind a gap: ACK 80 with [40,50) and [60,65) buffered -> GAP [30,40),
     * deliver [40,50), GAP [50,60), deliver [60,65), GAP [65,80) */
    assert_int_equal(fx_seg(&f, 0, data, 40, 10, false), 0);
    assert_int_equal(fx_seg(&f, 0, data, 60, 5, false), 0);
    f.rec.nev = 0;
    mmtls_reasm_ack(&f.r, 1 + 80, &f.sink);
    fx_check(&f);
    assert_int_equal(f.rec.nev, 3);
    assert_int_equal(f.rec.ev[0].off, 30);
    assert_int_equal(f.rec.ev[0].len, 10);
    assert_int_equal(f.rec.ev[1].off, 50);
    assert_int_equal(f.rec.ev[2].off, 65);
    assert_int_equal(f.rec.ev[2].len, 15);
    assert_int_equal(f.r.next_off, 80);
    assert_memory_equal(f.rec.out + 40, data + 40, 10);
    assert_memory_equal(f.rec.out + 60, data + 60, 5);
    assert_null(f.r.ooo);
    /* absurd ACKs: more than 2^30 ahead, or before the stream */
    mmtls_reasm_ack(&f.r, 1 + 80 + (1u << 30) + 1, &f.sink);
    mmtls_reasm_ack(&f.r, 0xffff0000u, &f.sink);
    assert_int_equal(f.r.next_off, 80);
    assert_int_equal(f.rec.nev, 3);
    fx_fini(&f);
}

static void test_flush_gap(void **state)
{
    uint8_t data[60];
    struct fx f;

    (void)state;
    fill_pattern(data, sizeof(data), 8);
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, 42);
    assert_false(mmtls_reasm_flush_gap(&f.r, &f.sink));
    assert_int_equal(fx_seg(&f, 42, data, 0, 10, false), 0);
    assert_int_equal(fx_seg(&f, 42, data, 20, 10, false), 0);
    assert_int_equal(fx_seg(&f, 42, data, 35, 10, true), 0);
    assert_true(mmtls_reasm_flush_gap(&f.r, &f.sink));
    fx_check(&f);
    assert_int_equal(f.r.next_off, 30);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_GAP)->off, 10);
    assert_int_equal(f.r.kept_off, 20); /* bytes before a gap are no longer kept */
    assert_true(mmtls_reasm_flush_gap(&f.r, &f.sink));
    assert_int_equal(f.r.next_off, 45);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_FIN), 1);
    assert_false(mmtls_reasm_flush_gap(&f.r, &f.sink));
    assert_memory_equal(f.rec.out + 20, data + 20, 10);
    assert_memory_equal(f.rec.out + 35, data + 35, 10);
    assert_int_equal(f.r.stats.gaps, 2);
    assert_int_equal(f.r.stats.gap_bytes, 15);
    fx_fini(&f);
}

static void test_caps(void **state)
{
    uint8_t data[200];
    struct fx f;

    (void)state;
    fill_pattern(data, sizeof(data), 9);
    /* per-stream out-of-order bytes: 20 */
    fx_init(&f, 20, 100, 100, 0);
    mmtls_reasm_syn(&f.r, 0);
    assert_int_equal(fx_seg(&f, 0, data, 10, 10, false), 0);
    assert_int_equal(fx_seg(&f, 0, data, 20, 10, false), 0);
    assert_int_equal(fx_seg(&f, 0, data, 30, 10, false), MMTLS_E_MEMCAP);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_MEMCAP), 1);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_MEMCAP)->off, 30);
    assert_int_equal(f.r.stats.memcap_drops, 1);
    /* a segment partly over the cap: the part that is a duplicate is fine, the rest dropped */
    assert_int_equal(fx_seg(&f, 0, data, 15, 20, false), MMTLS_E_MEMCAP);
    assert_int_equal(f.r.ooo_bytes, 20);
    /* in-order data needs no buffer: delivered despite the cap */
    assert_int_equal(fx_seg(&f, 0, data, 0, 10, false), 0);
    assert_int_equal(f.r.next_off, 30);
    assert_int_equal(fx_seg(&f, 0, data, 30, 10, false), 0);
    assert_memory_equal(f.rec.out, data, 40);
    fx_fini(&f);

    /* segment count: 2 */
    fx_init(&f, 1000, 100, 2, 0);
    mmtls_reasm_syn(&f.r, 0);
    assert_int_equal(fx_seg(&f, 0, data, 10, 2, false), 0);
    assert_int_equal(fx_seg(&f, 0, data, 20, 2, false), 0);
    assert_int_equal(fx_seg(&f, 0, data, 30, 2, false), MMTLS_E_LIMIT);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_SEGMENT_LIMIT), 1);
    /* a segment over both buffered segments: of its three holes, [12,20) and [22,30) are
     * appended to the segments before them; [5,10) would need a third segment: dropped */
    assert_int_equal(fx_seg(&f, 0, data, 5, 25, false), MMTLS_E_LIMIT);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_SEGMENT_LIMIT), 2);
    assert_int_equal(f.r.ooo_count, 2);
    assert_int_equal(f.r.ooo_bytes, 20);
    assert_true(mmtls_reasm_flush_gap(&f.r, &f.sink));
    assert_int_equal(f.r.next_off, 30);
    assert_int_equal(fx_seg(&f, 0, data, 12, 50, false), 0);
    assert_int_equal(f.r.next_off, 62);
    assert_memory_equal(f.rec.out + 10, data + 10, 52);
    fx_fini(&f);

    /* shared memcap: room for one small segment and nothing else */
    fx_init(&f, 1000, 100, 100, mmtls_reasm_seg_overhead() + 10);
    mmtls_reasm_syn(&f.r, 0);
    assert_int_equal(fx_seg(&f, 0, data, 20, 10, false), 0);
    assert_int_equal(fx_seg(&f, 0, data, 40, 10, false), MMTLS_E_MEMCAP);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_MEMCAP), 1);
    assert_true(f.mc.refused >= 1);
    /* in-order data is delivered though nothing can be kept */
    assert_int_equal(fx_seg(&f, 0, data, 0, 20, false), 0);
    assert_int_equal(f.r.next_off, 30);
    assert_memory_equal(f.rec.out, data, 30);
    /* the buffer was freed: kept bytes fit now, and the stream goes on */
    assert_int_equal(fx_seg(&f, 0, data, 30, 10, false), 0);
    assert_int_equal(fx_seg(&f, 0, data, 40, 10, false), 0);
    assert_int_equal(f.r.next_off, 50);
    assert_memory_equal(f.rec.out, data, 50);
    fx_fini(&f);
}

static void test_kept_bound(void **state)
{
    uint8_t data[100], evil[100];
    struct fx f;

    (void)state;
    fill_pattern(data, sizeof(data), 10);
    fx_init(&f, 1000, 8, 100, 0);
    mmtls_reasm_syn(&f.r, 0);
    assert_int_equal(fx_seg(&f, 0, data, 0, 20, false), 0);
    assert_int_equal(f.r.kept_off, 12); /* the oldest bytes went first */
    assert_int_equal(f.mc.used, 8);
    /* a difference at 5 cannot be seen any more; at 15 it can */
    memcpy(evil, data, sizeof(evil));
    evil[5] ^= 0xff;
    assert_int_equal(fx_seg(&f, 0, evil, 0, 20, false), 0);
    assert_int_equal(f.r.stats.old_unchecked_bytes, 12);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF), 0);
    evil[15] ^= 0xff;
    assert_int_equal(fx_seg(&f, 0, evil, 0, 20, false), 0);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF), 1);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF)->off, 15);
    /* small appends slide the window; many of them exercise the compaction */
    for (uint64_t off = 20; off < 100; off += 3) {
        size_t n = (size_t)MMTLS_MIN(3, 100 - off);
        assert_int_equal(fx_seg(&f, 0, data, off, n, false), 0);
        assert_int_equal(f.r.kept_off, f.r.next_off - 8);
        assert_memory_equal(f.r.kept.p + f.r.kept.len - 8, data + f.r.next_off - 8, 8);
    }
    /* ACK frees kept bytes and their memcap charge */
    mmtls_reasm_ack(&f.r, 1 + 96, &f.sink);
    assert_int_equal(f.r.kept_off, 96);
    assert_int_equal(f.mc.used, 4);
    fx_fini(&f);

    /* no kept bytes at all */
    fx_init(&f, 1000, 0, 100, 0);
    mmtls_reasm_syn(&f.r, 0);
    assert_int_equal(fx_seg(&f, 0, data, 0, 20, false), 0);
    assert_int_equal(fx_seg(&f, 0, evil, 0, 20, false), 0);
    assert_int_equal(f.rec.nev, 0);
    assert_int_equal(f.r.stats.old_unchecked_bytes, 20);
    assert_int_equal(f.mc.used, 0);
    fx_fini(&f);
}

/* A kept buffer freed once everything in it is acknowledged comes back at its size when bytes
 * are kept again (no doubling, no copy of the live bytes); the room reserved is charged to the
 * memcap until bytes fill it, and it is not taken when the memcap is more than half used. */
static void kept_regrow_run(size_t memcap, bool expect_reserved)
{
    enum { N = 600 << 10, PIECE = 1448 };
    uint8_t *data = malloc(N + 100); /* N + 100: the small response at the end */
    struct fx f;
    size_t big;

    assert_non_null(data);
    fill_pattern(data, N + 100, 11);
    fx_init(&f, 1 << 20, 1 << 20, 100, memcap);
    f.sink.data = NULL; /* more bytes than the recorder holds; the kept copy is checked */
    mmtls_reasm_syn(&f.r, 0);
    for (uint64_t off = 0; off < N / 2; off += PIECE) {
        assert_int_equal(fx_seg(&f, 0, data, off, (size_t)MMTLS_MIN(PIECE, N / 2 - off), false), 0);
    }
    big = f.r.kept.cap;
    assert_true(big > (256u << 10));
    assert_int_equal(f.r.kept_regrow, 0);
    /* all acknowledged: the idle buffer is freed, the room for the next response remembered */
    mmtls_reasm_ack(&f.r, 1 + N / 2, &f.sink);
    assert_null(f.r.kept.p);
    assert_int_equal(f.r.kept.cap, 0);
    assert_int_equal(f.r.kept_regrow, big); /* min(capacity, twice the peak of N / 2) */
    assert_int_equal(f.mc.used, 0);
    /* the next response */
    assert_int_equal(fx_seg(&f, 0, data, N / 2, PIECE, false), 0);
    assert_int_equal(f.r.kept_regrow, 0);
    if (expect_reserved) {
        /* one allocation of the old size, charged whole */
        assert_int_equal(f.r.kept.cap, big);
        assert_int_equal(f.r.kept_resv, big - PIECE);
        assert_int_equal(f.mc.used, big);
    } else {
        assert_true(f.r.kept.cap < big);
        assert_int_equal(f.r.kept_resv, 0);
        assert_int_equal(f.mc.used, PIECE);
    }
    for (uint64_t off = N / 2 + PIECE; off < N; off += PIECE) {
        assert_int_equal(fx_seg(&f, 0, data, off, (size_t)MMTLS_MIN(PIECE, N - off), false), 0);
    }
    if (expect_reserved) {
        assert_int_equal(f.r.kept.cap, big);
        assert_int_equal(f.r.kept_resv, big - N / 2);
    }
    assert_int_equal(f.r.kept_off, N / 2);
    assert_memory_equal(f.r.kept.p + f.r.kept.len - N / 2, data + N / 2, N / 2);
    /* a retransmission is still checked against the kept copy */
    data[N - 10] ^= 0xff;
    assert_int_equal(fx_seg(&f, 0, data, N - PIECE, PIECE, false), 0);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF), 1);
    /* a small response after it: the room follows what was used, not the old capacity */
    mmtls_reasm_ack(&f.r, 1 + N, &f.sink);
    assert_int_equal(f.mc.used, 0);
    assert_int_equal(fx_seg(&f, 0, data, N, 100, false), 0);
    mmtls_reasm_ack(&f.r, 1 + N + 100, &f.sink);
    assert_int_equal(f.mc.used, expect_reserved ? f.r.kept_resv : 0);
    fx_fini(&f); /* the memcap is back to 0: the reservation was released */
    free(data);
}

static void test_kept_regrow(void **state)
{
    (void)state;
    kept_regrow_run(0, true);        /* no memcap */
    kept_regrow_run(8u << 20, true); /* room to spare */
    kept_regrow_run(1000000, false); /* the reservation would pass half of it */
}

/* keep_until_acked: no unacknowledged byte leaves the kept copy; what would need it is refused
 * whole, before any state changes, and taken once ACKs make room. */
static void test_keep_until_acked(void **state)
{
    uint8_t data[100], evil[100];
    struct fx f;

    (void)state;
    fill_pattern(data, sizeof(data), 11);
    memcpy(evil, data, sizeof(evil));
    evil[2] ^= 0xff;
    fx_init(&f, 1000, 8, 100, 0);
    f.opts.keep_until_acked = true;
    mmtls_reasm_syn(&f.r, 0);
    assert_int_equal(fx_seg(&f, 0, data, 0, 6, false), 0);
    /* [6, 10) would push bytes 0-1 out: refused, nothing taken, the FIN neither */
    assert_int_equal(fx_seg(&f, 0, data, 6, 4, true), MMTLS_E_LIMIT);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_KEEP_FULL), 1);
    assert_int_equal(rec_find(&f.rec, MMTLS_REASM_EV_KEEP_FULL)->off, 6);
    assert_int_equal(f.r.next_off, 6);
    assert_false(f.r.fin_seen);
    assert_int_equal(f.r.stats.keep_refused, 1);
    /* out of order beyond the window: refused too; inside it: buffered */
    assert_int_equal(fx_seg(&f, 0, data, 8, 2, false), MMTLS_E_LIMIT);
    assert_int_equal(fx_seg(&f, 0, data, 7, 1, false), 0);
    assert_int_equal(f.r.ooo_count, 1);
    /* exactly up to the bound: taken, the buffered byte delivered after it */
    assert_int_equal(fx_seg(&f, 0, data, 6, 1, false), 0);
    assert_int_equal(f.r.next_off, 8);
    assert_int_equal(f.r.kept_off, 0);
    /* a retransmission of the oldest byte is still compared */
    assert_int_equal(fx_seg(&f, 0, evil, 0, 4, false), 0);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_OVERLAP_DIFF), 1);
    assert_int_equal(f.r.stats.old_unchecked_bytes, 0);
    /* an ACK makes room: the refused segment goes through now */
    mmtls_reasm_ack(&f.r, 1 + 4, &f.sink);
    assert_int_equal(fx_seg(&f, 0, data, 8, 2, true), 0);
    assert_int_equal(f.r.next_off, 10);
    assert_true(f.r.fin_seen);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_FIN), 1);
    assert_int_equal(f.rec.next, 10);
    assert_memory_equal(f.rec.out, data, 10);
    fx_fini(&f);

    /* the memcap: in-order bytes the memcap cannot keep are refused (not kept and forgotten);
     * a buffered segment that becomes contiguous hands its own charge over */
    fx_init(&f, 1000, 64, 100, 0);
    f.opts.keep_until_acked = true;
    mmtls_reasm_syn(&f.r, 0);
    assert_int_equal(fx_seg(&f, 0, data, 4, 4, false), 0);
    f.mc.limit = f.mc.used + 4;
    assert_int_equal(fx_seg(&f, 0, data, 0, 4, false), 0); /* 4 new + the segment's charge */
    assert_int_equal(f.r.next_off, 8);
    assert_int_equal(f.mc.used, 8);
    f.mc.limit = 10;
    assert_int_equal(fx_seg(&f, 0, data, 8, 4, false), MMTLS_E_LIMIT);
    assert_int_equal(f.r.next_off, 8);
    assert_int_equal(f.r.kept_off, 0);
    mmtls_reasm_ack(&f.r, 1 + 8, &f.sink);
    assert_int_equal(fx_seg(&f, 0, data, 8, 4, false), 0);
    assert_int_equal(f.r.stats.keep_refused, 1);
    fx_fini(&f);
}

static void test_out_of_window(void **state)
{
    uint8_t data[16] = {0};
    struct fx f;

    (void)state;
    fx_init_default(&f);
    mmtls_reasm_syn(&f.r, 0);
    assert_int_equal(mmtls_reasm_segment(&f.r, 1 + (1u << 30) + 1, data, 16, false, &f.sink),
                     MMTLS_E_MALFORMED);
    assert_int_equal(f.r.stats.malformed, 1);
    assert_int_equal(f.r.ooo_count, 0);
    /* exactly at the edge of the window: buffered */
    assert_int_equal(mmtls_reasm_segment(&f.r, 1 + (1u << 30), data, 16, false, &f.sink), 0);
    assert_int_equal(f.r.ooo_count, 1);
    assert_true(mmtls_reasm_flush_gap(&f.r, NULL));
    assert_int_equal(f.r.next_off, (1u << 30) + 16);
    fx_fini(&f);
}

static void test_coalesce(void **state)
{
    /* 100 segments of 1448 bytes behind a 10-byte hole arrive in order: they are appended to
     * one another (up to 64 KiB per segment), so the list holds 3 segments, not 100 */
    static uint8_t data[10 + 100 * 1448];
    struct fx f;

    (void)state;
    fill_pattern(data, sizeof(data), 12);
    fx_init(&f, 1 << 20, 1 << 10, 8, 0);
    mmtls_reasm_syn(&f.r, 0xfffff000u);
    for (uint64_t off = 10; off < sizeof(data); off += 1448) {
        assert_int_equal(
            mmtls_reasm_segment(&f.r, 0xfffff001u + (uint32_t)off, data + off, 1448, false, NULL),
            0);
        fx_check(&f);
    }
    assert_int_equal(f.r.ooo_count, 3);
    assert_int_equal(f.r.ooo_bytes, 100 * 1448);
    /* a shared memcap too small for a new segment: the piece is dropped, nothing leaks */
    f.mc.limit = f.mc.used + 10;
    assert_int_equal(mmtls_reasm_segment(&f.r, 0xfffff001u + (uint32_t)sizeof(data) + 5, data, 100,
                                         false, &f.sink),
                     MMTLS_E_MEMCAP);
    assert_int_equal(rec_count(&f.rec, MMTLS_REASM_EV_MEMCAP), 1);
    fx_check(&f);
    f.mc.limit = 0;
    assert_int_equal(mmtls_reasm_segment(&f.r, 0xfffff001u, data, 10, false, NULL), 0);
    assert_int_equal(f.r.next_off, sizeof(data));
    assert_null(f.r.ooo);
    assert_int_equal(f.r.kept_off, sizeof(data) - (1 << 10));
    fx_fini(&f);
}

/* Long stream across the wrap with random segmentation, reordering, duplicates and ACKs,
 * delivering exactly the source. */
static void test_random_stream(void **state)
{
    enum { N = 3000 };
    static uint8_t data[N];
    uint32_t rnd = 12345;
    const uint32_t isn = 0xffffff00u;
    struct fx f;

    (void)state;
    fill_pattern(data, N, 11);
    for (int round = 0; round < 20; round++) {
        fx_init(&f, 1 << 20, 512, 4096, 1 << 20);
        mmtls_reasm_syn(&f.r, isn);
        for (int i = 0; i < 3000 && f.r.next_off < N; i++) {
            rnd = rnd * 1103515245u + 12345u;
            uint64_t off = f.r.next_off + (rnd >> 8) % 200;
            off = off >= 40 ? off - 40 : 0;
            size_t len = 1 + (rnd >> 20) % 60;
            if (off >= N) {
                continue;
            }
            len = (size_t)MMTLS_MIN(len, N - off);
            assert_int_equal(fx_seg(&f, isn, data, off, len, off + len == N), 0);
            if ((rnd & 7) == 0) {
                mmtls_reasm_ack(&f.r, isn + 1 + (uint32_t)f.r.next_off - 10, &f.sink);
                fx_check(&f);
            }
        }
        assert_true(f.r.next_off <= N);
        assert_memory_equal(f.rec.out, data, (size_t)f.r.next_off);
        assert_int_equal(f.rec.nev, f.r.next_off == N ? 1 : 0);
        fx_fini(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_permutations),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_retransmission_more_data),
        cmocka_unit_test(test_overlap_kept_diff),
        cmocka_unit_test(test_overlap_ooo_both_orders),
        cmocka_unit_test(test_overlap_straddling),
        cmocka_unit_test(test_wrap),
        cmocka_unit_test(test_syn_and_midstream),
        cmocka_unit_test(test_fin),
        cmocka_unit_test(test_ack_gap),
        cmocka_unit_test(test_flush_gap),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_kept_bound),
        cmocka_unit_test(test_kept_regrow),
        cmocka_unit_test(test_keep_until_acked),
        cmocka_unit_test(test_out_of_window),
        cmocka_unit_test(test_coalesce),
        cmocka_unit_test(test_random_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
