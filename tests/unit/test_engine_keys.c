/* Keys from key channels, on the worker side: a real TLS 1.3 capture (from the fuzz corpus,
 * made by openssl s_server/s_client on 127.0.0.1) is replayed through an engine while key
 * messages built from its key log are pushed into the engine's ring at chosen moments.
 * Checks matching, ownership, first-wins, holding and replaying records until keys come, and
 * the bounded wait. */
#include "engine_capture_fixture.h"

/* Replays the capture; before packet `at[i]`, pushes msgs[i].  wait_ms: key wait. */
static void run(struct result *res, struct mmtls_engine_keymsg **msgs, const size_t *at, int n,
                uint32_t wait_ms, struct mmtls_engine_stats *st)
{
    struct mmtls_engine_opts o;
    struct mmtls_engine *e;
    struct mmtls_app app = {
        .sz = sizeof(app), .name = "t", .events = MMTLS_EV_ALL, .on_event = on_event, .arg = res};

    memset(res, 0, sizeof(*res));
    mmtls_engine_opts_default(&o);
    o.key_wait_ms = wait_ms;
    assert_int_equal(mmtls_engine_new(&e, &o), 0);
    assert_int_equal(mmtls_engine_app_register(e, &app, NULL), 0);
    for (size_t i = 0; i <= npkts; i++) {
        for (int k = 0; k < n; k++) {
            if (at[k] == i)
                assert_true(mmtls_ring_push(mmtls_engine_key_ring(e), msgs[k]));
        }
        if (i < npkts)
            (void)mmtls_engine_packet(e, pkts[i].lt, pkts[i].data, pkts[i].len, pkts[i].ts);
    }
    mmtls_engine_poll_keys(e);
    mmtls_engine_flush(e);
    *st = *mmtls_engine_get_stats(e);
    mmtls_engine_free(e);
}

static void test_keys_before_session(void **state)
{
    struct result r;
    struct mmtls_engine_stats st;
    struct mmtls_engine_keymsg *m[1] = {keymsg(false, false, false)};
    size_t at[1] = {0};

    (void)state;
    run(&r, m, at, 1, 2000, &st);
    assert_int_equal(r.sessions, 1);
    assert_int_equal(r.status, MMTLS_KEYS_DECRYPTED);
    assert_true(r.app_records >= 2);
    assert_int_equal(st.keys_matched, 1);
    assert_int_equal(st.records_held, 0); /* keys were there at the ClientHello */
}

static void test_keys_late_held_and_replayed(void **state)
{
    struct result r;
    struct mmtls_engine_stats st;
    struct mmtls_engine_keymsg *m[1] = {keymsg(false, false, false)};
    size_t at[1];

    (void)state;
    at[0] = npkts - 3; /* after nearly everything */
    run(&r, m, at, 1, 60000, &st);
    assert_int_equal(r.status, MMTLS_KEYS_DECRYPTED);
    assert_true(st.records_held > 0);
    assert_int_equal(st.records_held, st.records_released);
}

static void test_keys_late_without_holding(void **state)
{
    struct result r;
    struct mmtls_engine_stats st;
    struct mmtls_engine_keymsg *m[1] = {keymsg(false, false, false)};
    size_t at[1];

    (void)state;
    at[0] = npkts - 3;
    run(&r, m, at, 1, 0, &st);
    /* Without holding, the records that went by are lost to inspection. */
    assert_int_not_equal(r.status, MMTLS_KEYS_DECRYPTED);
    assert_true(r.undecrypted > 0);
}

static void test_conflict_first_wins(void **state)
{
    struct result r;
    struct mmtls_engine_stats st;
    struct mmtls_engine_keymsg *m[3] = {keymsg(false, false, false), keymsg(true, false, false),
                                        keymsg(false, false, false)};
    size_t at[3] = {0, 0, 0};

    (void)state;
    run(&r, m, at, 3, 2000, &st);
    assert_int_equal(r.status, MMTLS_KEYS_DECRYPTED); /* the first (right) keys stay */
    assert_int_equal(st.keys_conflict, 1);
    assert_int_equal(st.keys_duplicate, 1);
    assert_int_equal(r.rejected, 1);
}

static void test_wrong_first_keys_win(void **state)
{
    struct result r;
    struct mmtls_engine_stats st;
    struct mmtls_engine_keymsg *m[2] = {keymsg(true, false, false), keymsg(false, false, false)};
    size_t at[2] = {0, 0};

    (void)state;
    run(&r, m, at, 2, 2000, &st);
    /* First wins even when wrong: the session reports it cannot decrypt; never a crash. */
    assert_int_not_equal(r.status, MMTLS_KEYS_DECRYPTED);
    assert_int_equal(st.keys_conflict, 1);
}

static void test_owner_mismatch(void **state)
{
    struct result r;
    struct mmtls_engine_stats st;
    struct mmtls_engine_keymsg *m[1] = {keymsg(false, true, false)};
    size_t at[1] = {0};

    (void)state;
    run(&r, m, at, 1, 200, &st);
    assert_int_equal(st.keys_rejected_owner, 1);
    assert_int_equal(r.status, MMTLS_KEYS_NONE);
    assert_int_equal(r.rejected, 1);
}

static void test_owner_any(void **state)
{
    struct result r;
    struct mmtls_engine_stats st;
    struct mmtls_engine_keymsg *m[1] = {keymsg(false, true, true)};
    size_t at[1] = {0};

    (void)state;
    run(&r, m, at, 1, 200, &st);
    assert_int_equal(r.status, MMTLS_KEYS_DECRYPTED);
}

static void test_bypass(void **state)
{
    struct result r;
    struct mmtls_engine_stats st;
    struct mmtls_engine_keymsg *m[1] = {keymsg(false, false, false)};
    size_t at[1] = {0};

    (void)state;
    m[0]->type = MMTLS_KP_BYPASS;
    run(&r, m, at, 1, 200, &st);
    assert_int_equal(r.status, MMTLS_KEYS_BYPASS);
    assert_int_equal(st.bypass_received, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_before_session),
        cmocka_unit_test(test_keys_late_held_and_replayed),
        cmocka_unit_test(test_keys_late_without_holding),
        cmocka_unit_test(test_conflict_first_wins),
        cmocka_unit_test(test_wrong_first_keys_win),
        cmocka_unit_test(test_owner_mismatch),
        cmocka_unit_test(test_owner_any),
        cmocka_unit_test(test_bypass),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
