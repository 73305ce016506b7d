/* Flow table full: which flow goes, and when the new flow is refused instead.
 * Order of victims: closed flows, BARE flows (nothing inspected), HANDSHAKE flows idle for
 * evict_idle_ms; PINNED flows (sessions under inspection) are never evicted for a new flow,
 * whatever their age: the new flow gets MMTLS_E_LIMIT (an attacker flooding the table cannot
 * end an inspection).  mmtls_flow_evict_lru (the offline fallback) evicts any class.  Expiry
 * still reaches every class. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "flow/flow.h"

struct rel {
    int n;
    int why[64];
    uint64_t id[64];
};

static void on_release(void *ctx, struct mmtls_flow *f, enum mmtls_flow_end_reason why)
{
    struct rel *r = ctx;

    if (r->n < 64) {
        r->why[r->n] = (int)why;
        r->id[r->n] = f->id;
    }
    r->n++;
}

/* 10.0.0.a:sp -> 10.0.0.1:443 with the given flags */
static struct mmtls_pkt mk(uint8_t a, uint16_t sp, uint8_t flags)
{
    struct mmtls_pkt p;

    memset(&p, 0, sizeof(p));
    p.ip_version = 4;
    p.l4proto = 6;
    p.src[0] = 10, p.src[3] = a;
    p.dst[0] = 10, p.dst[3] = 1;
    p.sport = sp;
    p.dport = 443;
    p.tcp_flags = flags;
    return p;
}

static struct mmtls_flow_table *table(struct rel *r, uint32_t max, uint32_t evict_idle_ms)
{
    struct mmtls_flow_table_opts o = {.max_flows = max,
                                      .idle_timeout_ms = 60000,
                                      .closed_timeout_ms = 10000,
                                      .evict_idle_ms = evict_idle_ms};
    struct mmtls_flow_table *t;

    memset(r, 0, sizeof(*r));
    assert_int_equal(mmtls_flow_table_new(&t, &o, on_release, r), 0);
    return t;
}

static struct mmtls_flow *get(struct mmtls_flow_table *t, uint16_t sp, uint8_t flags,
                              uint64_t now_us, int want_rc)
{
    struct mmtls_pkt p = mk(9, sp, flags);
    struct mmtls_flow *f = NULL;
    int s;

    assert_int_equal(mmtls_flow_get(t, &p, now_us, &f, &s), want_rc);
    return f;
}

/* Full of PINNED flows: the newcomer is refused, counted, nothing evicted; table unchanged. */
static void test_pinned_never_evicted(void **state)
{
    struct rel r;
    struct mmtls_flow_table *t = table(&r, 4, 0);
    struct mmtls_flow *f;

    (void)state;
    for (uint16_t i = 0; i < 4; i++) {
        f = get(t, (uint16_t)(1000 + i), MMTLS_TCP_SYN, 1000 + i, 0);
        mmtls_flow_set_class(t, f, MMTLS_FLOW_CLASS_PINNED);
    }
    assert_int_equal(mmtls_flow_class_count(t, MMTLS_FLOW_CLASS_PINNED), 4);
    /* even a very old pinned flow stays: 50 s later, 100 newcomers all refused */
    for (uint16_t i = 0; i < 100; i++)
        assert_null(get(t, (uint16_t)(2000 + i), MMTLS_TCP_SYN, 50000000, MMTLS_E_LIMIT));
    assert_int_equal(r.n, 0);
    assert_int_equal(mmtls_flow_table_stats(t)->refused, 100);
    assert_int_equal(mmtls_flow_table_stats(t)->active, 4);
    /* an existing pinned flow is still found (no refusal for known flows) */
    assert_non_null(get(t, 1000, MMTLS_TCP_ACK, 50000001, 0));
    /* the offline fallback evicts the least recently used whatever its class: 1001 */
    assert_true(mmtls_flow_evict_lru(t));
    assert_int_equal(r.n, 1);
    assert_int_equal(r.why[0], MMTLS_FLOW_END_EVICTED);
    assert_int_equal(r.id[0], 2);
    assert_non_null(get(t, 3000, MMTLS_TCP_SYN, 50000002, 0));
    mmtls_flow_table_free(t);
}

/* Victim order: closed first, then BARE (least recently used), never PINNED. */
static void test_victim_order(void **state)
{
    struct rel r;
    struct mmtls_flow_table *t = table(&r, 4, 1000);
    struct mmtls_flow *a, *b, *c, *d;

    (void)state;
    a = get(t, 1, MMTLS_TCP_SYN, 100, 0); /* id 1: pinned, oldest */
    mmtls_flow_set_class(t, a, MMTLS_FLOW_CLASS_PINNED);
    b = get(t, 2, MMTLS_TCP_SYN, 200, 0); /* id 2: bare */
    c = get(t, 3, MMTLS_TCP_SYN, 300, 0); /* id 3: bare, more recent */
    d = get(t, 4, MMTLS_TCP_SYN, 400, 0); /* id 4: pinned, then closed by an RST */
    mmtls_flow_set_class(t, d, MMTLS_FLOW_CLASS_PINNED);
    (void)b;
    (void)c;
    assert_non_null(get(t, 4, MMTLS_TCP_RST, 500, 0));
    assert_non_null(get(t, 10, MMTLS_TCP_SYN, 600, 0)); /* evicts 4 (closed) */
    assert_int_equal(r.id[0], 4);
    assert_non_null(get(t, 11, MMTLS_TCP_SYN, 700, 0)); /* evicts 2 (oldest bare) */
    assert_int_equal(r.id[1], 2);
    assert_non_null(get(t, 12, MMTLS_TCP_SYN, 800, 0)); /* evicts 3 */
    assert_int_equal(r.id[2], 3);
    assert_non_null(get(t, 13, MMTLS_TCP_SYN, 900, 0)); /* evicts 10 (bare), not 1 (pinned) */
    assert_int_equal(r.id[3], 5);
    for (int i = 0; i < 4; i++)
        assert_int_equal(r.why[i], MMTLS_FLOW_END_EVICTED);
    mmtls_flow_table_free(t);
}

/* HANDSHAKE flows (half-open sessions) go only once idle for evict_idle_ms. */
static void test_handshake_idle(void **state)
{
    struct rel r;
    struct mmtls_flow_table *t = table(&r, 2, 1000);
    struct mmtls_flow *a, *b;

    (void)state;
    a = get(t, 1, MMTLS_TCP_SYN, 0, 0);
    mmtls_flow_set_class(t, a, MMTLS_FLOW_CLASS_HANDSHAKE);
    b = get(t, 2, MMTLS_TCP_SYN, 500000, 0);
    mmtls_flow_set_class(t, b, MMTLS_FLOW_CLASS_HANDSHAKE);
    /* at 0.9 s nothing has been idle 1 s: refused */
    assert_null(get(t, 3, MMTLS_TCP_SYN, 900000, MMTLS_E_LIMIT));
    /* at 1.0 s the first one has: evicted */
    assert_non_null(get(t, 3, MMTLS_TCP_SYN, 1000000, 0));
    assert_int_equal(r.n, 1);
    assert_int_equal(r.id[0], 1);
    /* activity resets idleness: b touched at 1.2 s is kept at 2.1 s, the new flow (bare,
     * 3) is the victim instead */
    assert_non_null(get(t, 2, MMTLS_TCP_ACK, 1200000, 0));
    assert_non_null(get(t, 4, MMTLS_TCP_SYN, 2100000, 0));
    assert_int_equal(r.n, 2);
    assert_int_equal(r.id[1], 3);
    assert_int_equal(mmtls_flow_class_count(t, MMTLS_FLOW_CLASS_HANDSHAKE), 1);
    assert_int_equal(mmtls_flow_class_count(t, MMTLS_FLOW_CLASS_BARE), 1);
    mmtls_flow_table_free(t);
}

/* Idle expiry reaches every class, whatever the order of class changes; a class change of a
 * closed flow keeps it in the closed list. */
static void test_expiry_all_classes(void **state)
{
    struct rel r;
    struct mmtls_flow_table *t = table(&r, 8, 0);
    struct mmtls_flow *f;

    (void)state;
    for (uint16_t i = 0; i < 6; i++) {
        f = get(t, (uint16_t)(100 + i), MMTLS_TCP_SYN, 1000 + i, 0);
        mmtls_flow_set_class(t, f, (int)(i % MMTLS_FLOW_CLASS_N));
    }
    f = get(t, 200, MMTLS_TCP_SYN, 2000, 0);
    assert_non_null(get(t, 200, MMTLS_TCP_RST, 2001, 0)); /* closed */
    mmtls_flow_set_class(t, f, MMTLS_FLOW_CLASS_PINNED);
    mmtls_flow_set_class(t, f, 99); /* out of range: ignored */
    assert_int_equal(f->cls, MMTLS_FLOW_CLASS_PINNED);
    assert_int_equal(mmtls_flow_class_count(t, MMTLS_FLOW_CLASS_PINNED), 2);
    /* 30 s: only the closed one (closed timeout 10 s), pinned or not */
    assert_int_equal(mmtls_flow_expire(t, 30000000), 1);
    assert_int_equal(r.why[0], MMTLS_FLOW_END_CLOSED);
    assert_int_equal(mmtls_flow_expire(t, 61000000), 6);
    assert_int_equal(mmtls_flow_table_stats(t)->active, 0);
    for (int c = 0; c < MMTLS_FLOW_CLASS_N; c++)
        assert_int_equal(mmtls_flow_class_count(t, c), 0);
    mmtls_flow_table_free(t);
    assert_int_equal(r.n, 7);
}

/* A flood of 10,000 SYNs through a table of 16 holding 8 pinned sessions: the pinned ones all
 * survive, the flood recycles the other 8 slots, nothing is refused (bare flows go). */
static void test_syn_flood_keeps_pinned(void **state)
{
    struct rel r;
    struct mmtls_flow_table *t = table(&r, 16, 1000);
    struct mmtls_flow *pinned[8];

    (void)state;
    for (uint16_t i = 0; i < 8; i++) {
        pinned[i] = get(t, (uint16_t)(1 + i), MMTLS_TCP_SYN, 1, 0);
        mmtls_flow_set_class(t, pinned[i], MMTLS_FLOW_CLASS_PINNED);
    }
    for (uint32_t i = 0; i < 10000; i++)
        assert_non_null(get(t, (uint16_t)(10000 + i), MMTLS_TCP_SYN, 2 + i, 0));
    assert_int_equal(mmtls_flow_table_stats(t)->refused, 0);
    assert_int_equal(mmtls_flow_table_stats(t)->active, 16);
    for (uint16_t i = 0; i < 8; i++) {
        struct mmtls_flow *f = get(t, (uint16_t)(1 + i), MMTLS_TCP_ACK, 20000, 0);
        assert_ptr_equal(f, pinned[i]);
    }
    mmtls_flow_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pinned_never_evicted),   cmocka_unit_test(test_victim_order),
        cmocka_unit_test(test_handshake_idle),         cmocka_unit_test(test_expiry_all_classes),
        cmocka_unit_test(test_syn_flood_keeps_pinned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
