/* Unit tests for the in-process key store: every slot, duplicates, conflicts, limits, TTL,
 * remove, wiping, and a multi-threaded put/lookup run (build with -fsanitize=thread to check). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <cmocka.h>

#include "keys/keys.h"

static struct mmtls_keystore *store_new(uint32_t max, uint32_t ttl_ms)
{
    struct mmtls_keystore_opts o = {.max_entries = max, .ttl_ms = ttl_ms};
    struct mmtls_keystore *ks;

    assert_int_equal(mmtls_keystore_new(&ks, &o), 0);
    return ks;
}

/* An entry with client random cr_byte repeated and secret `len` bytes of `fill`. */
static struct mmtls_keylog_entry mk(enum mmtls_keylog_label label, uint32_t index, uint8_t cr_byte,
                                    uint8_t len, uint8_t fill)
{
    struct mmtls_keylog_entry e;

    memset(&e, 0, sizeof(e));
    e.label = label;
    e.index = index;
    memset(e.client_random, cr_byte, sizeof(e.client_random));
    e.secret.len = len;
    memset(e.secret.b, fill, len);
    return e;
}

static bool all_zero(const void *p, size_t len)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < len; i++) {
        if (b[i] != 0) {
            return false;
        }
    }
    return true;
}

static void test_new_args(void **state)
{
    struct mmtls_keystore_opts o = {.max_entries = 0};
    struct mmtls_keystore *ks = (struct mmtls_keystore *)&o;

    (void)state;
    assert_int_equal(mmtls_keystore_new(&ks, &o), MMTLS_E_INVAL);
    assert_int_equal(mmtls_keystore_new(&ks, NULL), MMTLS_E_INVAL);
    mmtls_keystore_free(NULL);
    /* a large table only allocates buckets */
    o.max_entries = UINT32_MAX;
    assert_int_equal(mmtls_keystore_new(&ks, &o), 0);
    mmtls_keystore_free(ks);
}

static void test_slots(void **state)
{
    struct mmtls_keystore *ks = store_new(8, 0);
    struct mmtls_keystore_stats st;
    struct mmtls_keyset set;
    struct mmtls_keylog_entry e;
    uint8_t cr[32];
    static const struct {
        enum mmtls_keylog_label label;
        uint32_t index;
        uint8_t len, fill;
    } puts[] = {
        {MMTLS_KL_CLIENT_RANDOM, 0, 48, 1},
        {MMTLS_KL_CLIENT_EARLY_TRAFFIC_SECRET, 0, 32, 2},
        {MMTLS_KL_CLIENT_HANDSHAKE_TRAFFIC_SECRET, 0, 32, 3},
        {MMTLS_KL_SERVER_HANDSHAKE_TRAFFIC_SECRET, 0, 48, 4},
        {MMTLS_KL_CLIENT_TRAFFIC_SECRET, 0, 32, 5},
        {MMTLS_KL_CLIENT_TRAFFIC_SECRET, 15, 64, 6},
        {MMTLS_KL_SERVER_TRAFFIC_SECRET, 0, 32, 7},
        {MMTLS_KL_SERVER_TRAFFIC_SECRET, 3, 32, 8},
    };

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(puts); i++) {
        e = mk(puts[i].label, puts[i].index, 0xaa, puts[i].len, puts[i].fill);
        assert_int_equal(mmtls_keystore_put(ks, &e, 1), 0);
    }
    memset(cr, 0xaa, sizeof(cr));
    assert_int_equal(mmtls_keystore_lookup(ks, cr, &set), 0);
    assert_int_equal(set.have, MMTLS_KS_MASTER | MMTLS_KS_EARLY | MMTLS_KS_CHS | MMTLS_KS_SHS);
    assert_int_equal(set.cts_have, 1u | 1u << 15);
    assert_int_equal(set.sts_have, 1u | 1u << 3);
    assert_int_equal(set.master.len, 48);
    assert_int_equal(set.master.b[47], 1);
    assert_int_equal(set.early.b[0], 2);
    assert_int_equal(set.chs.b[31], 3);
    assert_int_equal(set.shs.len, 48);
    assert_int_equal(set.cts[0].b[0], 5);
    assert_int_equal(set.cts[15].len, 64);
    assert_int_equal(set.sts[0].b[0], 7);
    assert_int_equal(set.sts[3].b[0], 8);
    mmtls_keyset_wipe(&set);
    assert_true(all_zero(&set, sizeof(set)));

    /* exporters and N >= MMTLS_KEYS_MAX_UPDATES are declined and never stored */
    e = mk(MMTLS_KL_EXPORTER_SECRET, 0, 0xbb, 32, 9);
    assert_int_equal(mmtls_keystore_put(ks, &e, 1), MMTLS_DECLINED);
    e = mk(MMTLS_KL_EARLY_EXPORTER_SECRET, 0, 0xbb, 32, 9);
    assert_int_equal(mmtls_keystore_put(ks, &e, 1), MMTLS_DECLINED);
    e = mk(MMTLS_KL_SERVER_TRAFFIC_SECRET, MMTLS_KEYS_MAX_UPDATES, 0xbb, 32, 9);
    assert_int_equal(mmtls_keystore_put(ks, &e, 1), MMTLS_DECLINED);
    e = mk(MMTLS_KL_CLIENT_TRAFFIC_SECRET, UINT32_MAX - 1, 0xbb, 32, 9);
    assert_int_equal(mmtls_keystore_put(ks, &e, 1), MMTLS_DECLINED);
    memset(cr, 0xbb, sizeof(cr));
    assert_int_equal(mmtls_keystore_lookup(ks, cr, &set), MMTLS_E_NOTFOUND);
    assert_true(all_zero(&set, sizeof(set)));

    /* bad arguments */
    e = mk(MMTLS_KL_CLIENT_RANDOM, 0, 0xbb, 0, 9);
    assert_int_equal(mmtls_keystore_put(ks, &e, 1), MMTLS_E_INVAL);
    e = mk(MMTLS_KL_CLIENT_RANDOM, 0, 0xbb, 48, 9);
    e.secret.len = MMTLS_SECRET_MAX + 1;
    assert_int_equal(mmtls_keystore_put(ks, &e, 1), MMTLS_E_INVAL);
    e = mk((enum mmtls_keylog_label)0, 0, 0xbb, 32, 9);
    assert_int_equal(mmtls_keystore_put(ks, &e, 1), MMTLS_E_INVAL);

    mmtls_keystore_get_stats(ks, &st);
    assert_int_equal(st.puts, MMTLS_ARRAY_SIZE(puts));
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.lookups, 2);
    assert_int_equal(st.hits, 1);
    mmtls_keystore_free(ks);
}

static void test_duplicate_conflict(void **state)
{
    struct mmtls_keystore *ks = store_new(8, 0);
    struct mmtls_keystore_stats st;
    struct mmtls_keyset set;
    struct mmtls_keylog_entry e;

    (void)state;
    e = mk(MMTLS_KL_CLIENT_HANDSHAKE_TRAFFIC_SECRET, 0, 0x11, 32, 0x5a);
    assert_int_equal(mmtls_keystore_put(ks, &e, 1), 0);
    assert_int_equal(mmtls_keystore_put(ks, &e, 2), 0); /* identical: duplicate */
    e.secret.b[31] ^= 1;
    assert_int_equal(mmtls_keystore_put(ks, &e, 3), MMTLS_E_CONFLICT);
    e = mk(MMTLS_KL_CLIENT_HANDSHAKE_TRAFFIC_SECRET, 0, 0x11, 48, 0x5a); /* same prefix, longer */
    assert_int_equal(mmtls_keystore_put(ks, &e, 3), MMTLS_E_CONFLICT);
    assert_int_equal(mmtls_keystore_lookup(ks, e.client_random, &set), 0);
    assert_int_equal(set.chs.len, 32); /* the first value is kept */
    assert_int_equal(set.chs.b[31], 0x5a);
    mmtls_keyset_wipe(&set);
    mmtls_keystore_get_stats(ks, &st);
    assert_int_equal(st.puts, 1);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.conflicts, 2);
    mmtls_keystore_free(ks);
}

static void test_full_and_remove(void **state)
{
    enum { N = 1000 };
    struct mmtls_keystore *ks = store_new(N, 0);
    struct mmtls_keystore_stats st;
    struct mmtls_keyset set;
    struct mmtls_keylog_entry e;

    (void)state;
    for (uint32_t i = 0; i < N; i++) {
        e = mk(MMTLS_KL_CLIENT_RANDOM, 0, 0, 48, (uint8_t)i);
        memcpy(e.client_random, &i, sizeof(i));
        assert_int_equal(mmtls_keystore_put(ks, &e, i), 0);
    }
    e = mk(MMTLS_KL_CLIENT_RANDOM, 0, 0xff, 48, 1);
    assert_int_equal(mmtls_keystore_put(ks, &e, N), MMTLS_E_LIMIT);
    /* adding a secret to an existing entry still works when full */
    e = mk(MMTLS_KL_CLIENT_EARLY_TRAFFIC_SECRET, 0, 0, 32, 1);
    assert_int_equal(mmtls_keystore_put(ks, &e, N), 0);
    mmtls_keystore_get_stats(ks, &st);
    assert_int_equal(st.full, 1);
    assert_int_equal(st.entries, N);

    /* remove the even ones; the odd ones stay findable with the right value */
    for (uint32_t i = 0; i < N; i += 2) {
        e = mk(MMTLS_KL_CLIENT_RANDOM, 0, 0, 48, 0);
        memcpy(e.client_random, &i, sizeof(i));
        mmtls_keystore_remove(ks, e.client_random);
        mmtls_keystore_remove(ks, e.client_random); /* second time: no-op */
    }
    for (uint32_t i = 0; i < N; i++) {
        e = mk(MMTLS_KL_CLIENT_RANDOM, 0, 0, 48, 0);
        memcpy(e.client_random, &i, sizeof(i));
        if (i % 2 == 0) {
            assert_int_equal(mmtls_keystore_lookup(ks, e.client_random, &set), MMTLS_E_NOTFOUND);
        } else {
            assert_int_equal(mmtls_keystore_lookup(ks, e.client_random, &set), 0);
            assert_int_equal(set.master.b[0], (uint8_t)i);
        }
    }
    mmtls_keyset_wipe(&set);
    mmtls_keystore_get_stats(ks, &st);
    assert_int_equal(st.removed, N / 2);
    assert_int_equal(st.entries, N / 2);
    /* room again */
    e = mk(MMTLS_KL_CLIENT_RANDOM, 0, 0xff, 48, 1);
    assert_int_equal(mmtls_keystore_put(ks, &e, N), 0);
    mmtls_keystore_remove(NULL, e.client_random);
    mmtls_keystore_free(ks);
}

static void test_ttl(void **state)
{
    struct mmtls_keystore *ks = store_new(100, 1000);
    struct mmtls_keystore_stats st;
    struct mmtls_keyset set;
    struct mmtls_keylog_entry a, b, c;

    (void)state;
    a = mk(MMTLS_KL_CLIENT_RANDOM, 0, 0xa, 48, 1);
    b = mk(MMTLS_KL_CLIENT_RANDOM, 0, 0xb, 48, 1);
    c = mk(MMTLS_KL_CLIENT_RANDOM, 0, 0xc, 48, 1);
    assert_int_equal(mmtls_keystore_put(ks, &a, 10000), 0);
    assert_int_equal(mmtls_keystore_put(ks, &b, 10500), 0);
    /* a later secret for `a` does not refresh its insertion time */
    a.label = MMTLS_KL_CLIENT_EARLY_TRAFFIC_SECRET;
    a.secret.len = 32;
    assert_int_equal(mmtls_keystore_put(ks, &a, 10900), 0);
    mmtls_keystore_expire(ks, 5000);  /* clock before the entries: nothing */
    mmtls_keystore_expire(ks, 11000); /* age exactly the TTL: kept */
    mmtls_keystore_get_stats(ks, &st);
    assert_int_equal(st.expired, 0);
    mmtls_keystore_expire(ks, 11001);
    assert_int_equal(mmtls_keystore_lookup(ks, a.client_random, &set), MMTLS_E_NOTFOUND);
    assert_int_equal(mmtls_keystore_lookup(ks, b.client_random, &set), 0);
    assert_int_equal(mmtls_keystore_put(ks, &c, 11100), 0);
    mmtls_keystore_expire(ks, 11501);
    assert_int_equal(mmtls_keystore_lookup(ks, b.client_random, &set), MMTLS_E_NOTFOUND);
    assert_int_equal(mmtls_keystore_lookup(ks, c.client_random, &set), 0);
    mmtls_keystore_expire(ks, UINT64_MAX);
    mmtls_keystore_get_stats(ks, &st);
    assert_int_equal(st.expired, 3);
    assert_int_equal(st.entries, 0);
    mmtls_keyset_wipe(&set);
    mmtls_keystore_free(ks);

    /* ttl 0: never expires */
    ks = store_new(100, 0);
    assert_int_equal(mmtls_keystore_put(ks, &b, 0), 0);
    mmtls_keystore_expire(ks, UINT64_MAX);
    assert_int_equal(mmtls_keystore_lookup(ks, b.client_random, &set), 0);
    mmtls_keyset_wipe(&set);
    mmtls_keystore_free(ks);
}

/* 2 threads put, 2 threads look up, a bounded number of operations each. */
enum { MT_KEYS = 2000, MT_ROUNDS = 3 };

struct mt_arg {
    struct mmtls_keystore *ks;
    int id;
    uint64_t hits, bad;
};

static void *mt_put(void *p)
{
    struct mt_arg *a = p;

    for (int r = 0; r < MT_ROUNDS; r++) {
        for (uint32_t i = (uint32_t)a->id; i < MT_KEYS; i += 2) {
            struct mmtls_keylog_entry e = mk(MMTLS_KL_CLIENT_RANDOM, 0, 0, 48, (uint8_t)i);

            memcpy(e.client_random, &i, sizeof(i));
            /* the first round stores, later rounds are duplicates */
            if (mmtls_keystore_put(a->ks, &e, i) != 0) {
                a->bad++;
            }
        }
        if (r == 1) {
            /* the even writer also drops its keys once, exercising remove under load */
            for (uint32_t i = (uint32_t)a->id; i < MT_KEYS && a->id == 0; i += 16) {
                uint8_t cr[32] = {0};

                memcpy(cr, &i, sizeof(i));
                mmtls_keystore_remove(a->ks, cr);
            }
        }
    }
    return NULL;
}

static void *mt_lookup(void *p)
{
    struct mt_arg *a = p;
    struct mmtls_keyset set;

    for (int r = 0; r < MT_ROUNDS; r++) {
        for (uint32_t i = 0; i < MT_KEYS; i++) {
            uint8_t cr[32] = {0};

            memcpy(cr, &i, sizeof(i));
            if (mmtls_keystore_lookup(a->ks, cr, &set) == 0) {
                a->hits++;
                /* a hit is always a whole, correct value */
                if (set.have != MMTLS_KS_MASTER || set.master.len != 48 ||
                    set.master.b[47] != (uint8_t)i) {
                    a->bad++;
                }
            }
        }
        mmtls_keystore_expire(a->ks, 0); /* ttl set, but nothing is old at time 0 */
    }
    mmtls_keyset_wipe(&set);
    return NULL;
}

static void test_threads(void **state)
{
    struct mmtls_keystore *ks = store_new(MT_KEYS, 1u << 30);
    struct mmtls_keystore_stats st;
    struct mt_arg args[4];
    pthread_t th[4];

    (void)state;
    for (int i = 0; i < 4; i++) {
        args[i] = (struct mt_arg){.ks = ks, .id = i % 2};
        assert_int_equal(pthread_create(&th[i], NULL, i < 2 ? mt_put : mt_lookup, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(args[i].bad, 0);
    }
    mmtls_keystore_get_stats(ks, &st);
    assert_int_equal(st.lookups, 2 * MT_ROUNDS * MT_KEYS);
    assert_int_equal(st.hits, args[2].hits + args[3].hits);
    assert_int_equal(st.removed, (MT_KEYS + 15) / 16);
    /* keys removed in round 1 came back in round 2 */
    assert_int_equal(st.entries, MT_KEYS);
    assert_int_equal(st.puts, MT_KEYS + st.removed);
    mmtls_keystore_free(ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_args),
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_duplicate_conflict),
        cmocka_unit_test(test_full_and_remove),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
