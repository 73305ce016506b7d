/* The inline packet rules (DESIGN §3) on a real TLS 1.3 capture: frames from the client enter
 * on port 0, the server's on port 1; a TX sink records what the engine releases or builds.
 * Checked: forwarding with keys, frames held until late keys and released in order, the
 * missing-keys policies (block: drop + RST both ways; pass), and an app blocking a session. */
#include "engine_capture_fixture.h"

static int block_first_appdata = 0;

static void tx_send(void *ud, int port, const uint8_t *frame, size_t len, const uint8_t *meta,
                    size_t meta_len, bool built)
{
    struct result *r = ud;

    (void)frame;
    (void)len;
    (void)meta;
    (void)meta_len;
    r->sent++;
    if (built) {
        r->built++;
        /* port 1 leads to the server, port 0 to the client */
        if (port == 1)
            r->rst_to_server++;
        else
            r->rst_to_client++;
    }
}

static int blocker(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct result *r = arg;
    const uint8_t *p;
    size_t n;

    (void)s;
    if (block_first_appdata && ev->ev == MMTLS_EV_NEW_RECORD &&
        ev->rec->dir == MMTLS_DIR_TO_CLIENT && mmtls_record_plaintext(s, &p, &n) == 0 &&
        ev->rec->type == MMTLS_CT_APPLICATION_DATA) {
        r->blocked_app++;
        return MMTLS_VERDICT_BLOCK;
    }
    return on_event(s, ev, arg);
}

static int evasion_at = -1; /* after this frame, a copy with one payload byte changed */

static size_t hold_total_cap; /* 0: the default */

static void run_inline(struct result *res, struct mmtls_engine_keymsg *m, size_t at,
                       uint32_t wait_ms, int policy, struct mmtls_engine_stats *st)
{
    struct mmtls_engine_opts o;
    struct mmtls_engine *e;
    struct mmtls_app app = {
        .sz = sizeof(app), .name = "t", .events = MMTLS_EV_ALL, .on_event = blocker, .arg = res};
    struct mmtls_engine_tx tx = {.ud = res, .send = tx_send};

    memset(res, 0, sizeof(*res));
    mmtls_engine_opts_default(&o);
    o.key_wait_ms = wait_ms;
    o.on_missing_keys = policy;
    if (hold_total_cap != 0)
        o.key_hold_total = hold_total_cap;
    assert_int_equal(mmtls_engine_new(&e, &o), 0);
    assert_int_equal(mmtls_engine_app_register(e, &app, NULL), 0);
    mmtls_engine_set_tx(e, &tx);
    for (size_t i = 0; i < npkts; i++) {
        /* Ethernet | IPv4 | TCP: the client is the side whose port is not 4433 */
        const uint8_t *ip = pkts[i].data + 14;
        uint16_t sport = (uint16_t)(ip[20] << 8 | ip[21]);
        int port = sport == 4433 ? 1 : 0;
        int v;
        if (m != NULL && i == at)
            assert_true(mmtls_ring_push(mmtls_engine_key_ring(e), m));
        v = mmtls_engine_packet_inline(e, port, pkts[i].data, pkts[i].len, pkts[i].ts, NULL, 0);
        if (v == MMTLS_PKT_FORWARD)
            res->fwd++;
        else if (v == MMTLS_PKT_DROP)
            res->drop++;
        else
            res->hold++;
        if ((int)i == evasion_at) {
            /* The same segment again, its last payload byte changed, before any ACK: a
             * retransmission that differs from what was inspected (DESIGN §3 rule 5). */
            uint8_t *copy = malloc(pkts[i].len);
            assert_non_null(copy);
            memcpy(copy, pkts[i].data, pkts[i].len);
            copy[pkts[i].len - 1] ^= 0x5a;
            v = mmtls_engine_packet_inline(e, port, copy, pkts[i].len, pkts[i].ts, NULL, 0);
            res->evasion_verdict = v;
            free(copy);
        }
    }
    mmtls_engine_poll_keys(e);
    mmtls_engine_flush(e);
    *st = *mmtls_engine_get_stats(e);
    mmtls_engine_free(e);
}

static void test_forward_with_keys(void **state)
{
    struct result r;
    struct mmtls_engine_stats st;

    (void)state;
    run_inline(&r, keymsg(false, false, false), 0, 500, MMTLS_MISSING_BLOCK, &st);
    assert_int_equal(r.status, MMTLS_KEYS_DECRYPTED);
    assert_int_equal(r.fwd, (int)npkts); /* keys were there: nothing held */
    assert_int_equal(r.hold + r.drop + r.sent, 0);
}

static void test_held_until_late_keys(void **state)
{
    struct result r;
    struct mmtls_engine_stats st;

    (void)state;
    run_inline(&r, keymsg(false, false, false), npkts - 3, 60000, MMTLS_MISSING_BLOCK, &st);
    assert_int_equal(r.status, MMTLS_KEYS_DECRYPTED);
    assert_true(r.hold > 0);
    /* every held frame released, after inspection; the server flight's frame was split (its
     * ServerHello went on at once, --server-flight hold) */
    assert_int_equal(st.frames_split, 1);
    assert_int_equal(r.sent, r.hold + 1);
    assert_int_equal(r.fwd + r.hold, (int)npkts);
    assert_int_equal(st.frames_released, (uint64_t)r.hold);
    assert_int_equal(r.built, 0);
}

/* The worker's cap on held records: over it, the session is handled as without keys (policy
 * block: dropped and reset), even though its keys would come later. */
static void test_hold_total_cap(void **state)
{
    struct result r;
    struct mmtls_engine_stats st;

    (void)state;
    hold_total_cap = 100;
    run_inline(&r, keymsg(false, false, false), npkts - 3, 60000, MMTLS_MISSING_BLOCK, &st);
    hold_total_cap = 0;
    assert_true(st.holds_over_cap >= 1);
    assert_int_equal(st.blocked_missing_keys, 1);
    assert_int_equal(r.rst_to_server, 1);
    assert_int_equal(r.rst_to_client, 1);
}

static void test_missing_keys_block(void **state)
{
    struct result r;
    struct mmtls_engine_stats st;

    (void)state;
    run_inline(&r, NULL, 0, 100, MMTLS_MISSING_BLOCK, &st);
    assert_true(r.hold > 0);
    assert_int_equal(st.frames_released, 0);
    assert_int_equal(st.blocked_missing_keys, 1);
    assert_int_equal(r.rst_to_server, 1);
    assert_int_equal(r.rst_to_client, 1);
    assert_true(r.drop > 0); /* later frames of the blocked flow */
}

static void test_missing_keys_pass(void **state)
{
    struct result r;
    struct mmtls_engine_stats st;

    (void)state;
    run_inline(&r, NULL, 0, 100, MMTLS_MISSING_PASS, &st);
    assert_true(r.hold > 0);
    assert_int_equal(r.sent, r.hold + (int)st.frames_split); /* + the ServerHello's head */
    assert_int_equal(r.drop, 0);
    assert_int_equal(r.built, 0);
    assert_int_equal(r.status, MMTLS_KEYS_NONE);
}

static void test_app_blocks(void **state)
{
    struct result r;
    struct mmtls_engine_stats st;

    (void)state;
    block_first_appdata = 1;
    run_inline(&r, keymsg(false, false, false), 0, 500, MMTLS_MISSING_BLOCK, &st);
    block_first_appdata = 0;
    assert_int_equal(r.blocked_app, 1);
    assert_true(r.drop >= 1); /* the completing frame and everything after */
    assert_int_equal(r.rst_to_server, 1);
    assert_int_equal(r.rst_to_client, 1);
    assert_int_equal(st.blocked_sessions, 1);
}

/* The first server frame with at least 200 bytes of TCP payload after its first 4 frames. */
static int server_data_frame(void)
{
    int seen = 0;

    for (size_t i = 0; i < npkts; i++) {
        const uint8_t *ip = pkts[i].data + 14;
        size_t ihl = (size_t)(ip[0] & 0x0f) * 4, doff = (size_t)(ip[ihl + 12] >> 4) * 4;
        uint16_t sport = (uint16_t)(ip[ihl] << 8 | ip[ihl + 1]);
        if (sport == 4433 && pkts[i].len >= 14 + ihl + doff + 200 && ++seen > 4)
            return (int)i;
    }
    return -1;
}

static void test_evasion_blocked(void **state)
{
    struct result r;
    struct mmtls_engine_stats st;

    (void)state;
    evasion_at = server_data_frame();
    assert_true(evasion_at > 0);
    run_inline(&r, keymsg(false, false, false), 0, 500, MMTLS_MISSING_BLOCK, &st);
    evasion_at = -1;
    assert_true(st.reasm_overlap_diff >= 1);
    assert_int_equal(st.evasion_blocked, 1);
    assert_int_equal(st.blocked_sessions, 1);
    assert_int_equal(r.evasion_verdict, MMTLS_PKT_DROP); /* the differing copy never leaves */
    assert_int_equal(r.rst_to_server, 1);
    assert_int_equal(r.rst_to_client, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_with_keys),  cmocka_unit_test(test_held_until_late_keys),
        cmocka_unit_test(test_missing_keys_block), cmocka_unit_test(test_missing_keys_pass),
        cmocka_unit_test(test_app_blocks),         cmocka_unit_test(test_evasion_blocked),
        cmocka_unit_test(test_hold_total_cap),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
