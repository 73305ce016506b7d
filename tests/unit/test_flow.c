/* Unit tests for the flow table: symmetric keys, client detection, LRU eviction, timeouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "flow/flow.h"

struct rel {
    int n;
    int why[16];
    uint64_t id[16];
};

static void on_release(void *ctx, struct mmtls_flow *f, enum mmtls_flow_end_reason why)
{
    struct rel *r = ctx;

    if (r->n < 16) {
        r->why[r->n] = (int)why;
        r->id[r->n] = f->id;
    }
    r->n++;
}

static struct mmtls_pkt mk(uint8_t a, uint16_t sp, uint8_t b, uint16_t dp, uint8_t flags)
{
    struct mmtls_pkt p;

    memset(&p, 0, sizeof(p));
    p.ip_version = 4;
    p.l4proto = 6;
    p.src[0] = 10, p.src[3] = a;
    p.dst[0] = 10, p.dst[3] = b;
    p.sport = sp;
    p.dport = dp;
    p.tcp_flags = flags;
    return p;
}

static void test_symmetric(void **state)
{
    struct mmtls_flow_table_opts o = {
        .max_flows = 4, .idle_timeout_ms = 1000, .closed_timeout_ms = 100};
    struct mmtls_flow_table *t;
    struct mmtls_flow *f1, *f2;
    struct rel r = {0};
    int s1, s2;
    struct mmtls_pkt syn = mk(9, 40000, 1, 443, MMTLS_TCP_SYN);
    struct mmtls_pkt synack = mk(1, 443, 9, 40000, MMTLS_TCP_SYN | MMTLS_TCP_ACK);

    (void)state;
    assert_int_equal(mmtls_flow_table_new(&t, &o, on_release, &r), 0);
    assert_int_equal(mmtls_flow_get(t, &syn, 1000, &f1, &s1), 0);
    assert_int_equal(mmtls_flow_get(t, &synack, 2000, &f2, &s2), 0);
    assert_ptr_equal(f1, f2);
    assert_int_not_equal(s1, s2);
    /* the SYN sender (10.0.0.9) is the client although its address is higher */
    assert_int_equal(mmtls_flow_dir(f1, s1), 0);
    assert_int_equal(mmtls_flow_dir(f1, s2), 1);
    assert_int_equal(f1->state, MMTLS_FLOW_ESTABLISHED);
    assert_int_equal(mmtls_flow_table_stats(t)->active, 1);
    mmtls_flow_table_free(t);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.why[0], MMTLS_FLOW_END_SHUTDOWN);
}

static void test_synack_first(void **state)
{
    struct mmtls_flow_table_opts o = {
        .max_flows = 4, .idle_timeout_ms = 1000, .closed_timeout_ms = 100};
    struct mmtls_flow_table *t;
    struct mmtls_flow *f;
    struct rel r = {0};
    int s;
    struct mmtls_pkt synack = mk(1, 443, 9, 40000, MMTLS_TCP_SYN | MMTLS_TCP_ACK);

    (void)state;
    assert_int_equal(mmtls_flow_table_new(&t, &o, on_release, &r), 0);
    assert_int_equal(mmtls_flow_get(t, &synack, 0, &f, &s), 0);
    assert_int_equal(mmtls_flow_dir(f, s), 1); /* SYN-ACK comes from the server */
    mmtls_flow_table_free(t);
}

static void test_evict_and_expire(void **state)
{
    struct mmtls_flow_table_opts o = {
        .max_flows = 3, .idle_timeout_ms = 1000, .closed_timeout_ms = 100};
    struct mmtls_flow_table *t;
    struct mmtls_flow *f;
    struct rel r = {0};
    int s;

    (void)state;
    assert_int_equal(mmtls_flow_table_new(&t, &o, on_release, &r), 0);
    for (uint16_t i = 0; i < 3; i++) {
        struct mmtls_pkt p = mk(2, (uint16_t)(1000 + i), 1, 443, MMTLS_TCP_SYN);
        assert_int_equal(mmtls_flow_get(t, &p, 1000 * (uint64_t)(i + 1), &f, &s), 0);
    }
    /* touch the first flow so the second is the least recently used */
    {
        struct mmtls_pkt p = mk(2, 1000, 1, 443, MMTLS_TCP_ACK);
        assert_int_equal(mmtls_flow_get(t, &p, 5000, &f, &s), 0);
        assert_int_equal(f->id, 1);
    }
    {
        struct mmtls_pkt p = mk(2, 2000, 1, 443, MMTLS_TCP_SYN);
        assert_int_equal(mmtls_flow_get(t, &p, 6000, &f, &s), 0);
    }
    assert_int_equal(r.n, 1);
    assert_int_equal(r.why[0], MMTLS_FLOW_END_EVICTED);
    assert_int_equal(r.id[0], 2);
    /* RST closes flow 1: it expires after the closed timeout, the others after idle */
    {
        struct mmtls_pkt p = mk(1, 443, 2, 1000, MMTLS_TCP_RST);
        assert_int_equal(mmtls_flow_get(t, &p, 7000, &f, &s), 0);
        assert_int_equal(f->state, MMTLS_FLOW_CLOSED);
    }
    assert_int_equal(mmtls_flow_expire(t, 7000 + 99 * 1000), 0);
    assert_int_equal(mmtls_flow_expire(t, 7000 + 100 * 1000), 1);
    assert_int_equal(r.why[1], MMTLS_FLOW_END_CLOSED);
    assert_int_equal(mmtls_flow_expire(t, 6000 + 1000 * 1000), 2);
    assert_int_equal(mmtls_flow_table_stats(t)->active, 0);
    mmtls_flow_table_free(t);
    assert_int_equal(r.n, 4);
}

static void test_ipv6_key(void **state)
{
    struct mmtls_flow_table_opts o = {
        .max_flows = 2, .idle_timeout_ms = 1000, .closed_timeout_ms = 100};
    struct mmtls_flow_table *t;
    struct mmtls_flow *f1, *f2;
    struct rel r = {0};
    int s1, s2;
    struct mmtls_pkt a = mk(1, 5, 2, 6, MMTLS_TCP_SYN), b;

    (void)state;
    a.ip_version = 6;
    a.src[15] = 7; /* only differs beyond the first 4 bytes */
    b = a;
    memcpy(b.src, a.dst, 16);
    memcpy(b.dst, a.src, 16);
    b.sport = 6;
    b.dport = 5;
    assert_int_equal(mmtls_flow_table_new(&t, &o, on_release, &r), 0);
    assert_int_equal(mmtls_flow_get(t, &a, 0, &f1, &s1), 0);
    assert_int_equal(mmtls_flow_get(t, &b, 0, &f2, &s2), 0);
    assert_ptr_equal(f1, f2);
    mmtls_flow_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_symmetric),
        cmocka_unit_test(test_synack_first),
        cmocka_unit_test(test_evict_and_expire),
        cmocka_unit_test(test_ipv6_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
