/* The inline packet rules (DESIGN §3) on a real TLS 1.3 capture: frames from the client enter
 * on port 0, the server's on port 1; a TX sink records what the engine releases or builds.
 * Checked: forwarding with keys, frames held until late keys and released in order, the
 * missing-keys policies (block: drop + RST both ways; pass), and an app blocking a session. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/engine.h"
#include "io/io.h"
#include "keys/keys.h"

#define CAP "/fuzz/corpus/fuzz_engine_pcap/tls13-ccm8.pcap"
#define KEYLOG "/fuzz/corpus/fuzz_engine_pcap.keylog"

struct pkt {
    uint8_t *data;
    size_t len;
    uint64_t ts;
    int lt;
};

static struct pkt pkts[4096];
static size_t npkts;
static struct mmtls_keyset capture_keys; /* the TLS 1.3 secrets of the capture's session */
static uint8_t capture_cr[32];

struct result {
    int fwd, drop, hold, sent, built, rst_to_client, rst_to_server;
    int blocked_app;
    int sessions;
    enum mmtls_key_status status;
    uint64_t app_records, undecrypted;
    uint32_t errors;
    int rejected;
};

static int on_event(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct result *r = arg;
    const struct mmtls_session_info *in = mmtls_session_info(s);

    if (ev->ev == MMTLS_EV_ERROR && ev->err->code == MMTLS_TLSERR_KEY_REJECTED)
        r->rejected++;
    if (ev->ev == MMTLS_EV_SESSION_END) {
        r->sessions++;
        r->status = in->key_status;
        r->app_records = in->dir[0].app_records + in->dir[1].app_records;
        r->undecrypted = in->dir[0].undecrypted_records + in->dir[1].undecrypted_records;
        r->errors = in->errors;
    }
    return MMTLS_VERDICT_CONTINUE;
}

static const char *srcdir(void)
{
    const char *d = getenv("MMTLS_SRCDIR");
    return d != NULL ? d : ".";
}

static int setup(void **state)
{
    char path[1024], err[256];
    struct mmtls_pcap_reader *r;
    struct mmtls_io_pkt p;
    struct mmtls_keystore_opts ko = {.max_entries = 64};
    struct mmtls_keystore *ks;
    FILE *fp;
    char line[512];

    (void)state;
    snprintf(path, sizeof(path), "%s%s", srcdir(), CAP);
    if (mmtls_pcap_open(&r, path, NULL, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    while (npkts < 4096 && mmtls_pcap_next(r, &p, err, sizeof(err)) == 0) {
        pkts[npkts].data = malloc(p.caplen);
        memcpy(pkts[npkts].data, p.data, p.caplen);
        pkts[npkts].len = p.caplen;
        pkts[npkts].ts = p.ts_us;
        pkts[npkts].lt = p.linktype;
        npkts++;
    }
    mmtls_pcap_close(r);
    /* The key log holds several sessions; the capture's is the one whose client random the
     * capture's ClientHello carries: take the TLS 1.3 secrets of every entry and keep the one
     * that decrypts (first: find the random in the capture bytes). */
    snprintf(path, sizeof(path), "%s%s", srcdir(), KEYLOG);
    fp = fopen(path, "r");
    if (fp == NULL || mmtls_keystore_new(&ks, &ko) != 0)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL) {
        struct mmtls_keylog_entry e;
        if (mmtls_keylog_line_parse(line, strlen(line), &e) != 0)
            continue;
        for (size_t i = 0; i < npkts; i++) {
            for (size_t o = 0; o + 32 <= pkts[i].len; o++) {
                if (memcmp(pkts[i].data + o, e.client_random, 32) == 0) {
                    memcpy(capture_cr, e.client_random, 32);
                    i = npkts;
                    break;
                }
            }
        }
        if (mmtls_keystore_put(ks, &e, 0) < 0)
            fprintf(stderr, "key log line not stored\n");
        mmtls_secret_wipe(&e.secret);
    }
    fclose(fp);
    if (mmtls_keystore_lookup(ks, capture_cr, &capture_keys) != 0)
        return -1;
    mmtls_keystore_free(ks);
    return npkts > 10 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < npkts; i++)
        free(pkts[i].data);
    mmtls_keyset_wipe(&capture_keys);
    return 0;
}

static struct mmtls_engine_keymsg *keymsg(bool tamper, bool other_owner, bool any)
{
    struct mmtls_engine_keymsg *m = calloc(1, sizeof(*m));

    m->type = MMTLS_KP_KEYS;
    memcpy(m->client_random, capture_cr, 32);
    m->ks.have = capture_keys.have & (MMTLS_KS_CHS | MMTLS_KS_SHS);
    m->ks.chs = capture_keys.chs;
    m->ks.shs = capture_keys.shs;
    m->ks.cts_have = 1;
    m->ks.sts_have = 1;
    m->ks.cts[0] = capture_keys.cts[0];
    m->ks.sts[0] = capture_keys.sts[0];
    if (tamper)
        m->ks.cts[0].b[0] ^= 1;
    m->ks.owner_ip_version = 4;
    m->ks.owner_ip[0] = 127;
    m->ks.owner_ip[3] = other_owner ? 2 : 1;
    m->ks.owner_any = any;
    return m;
}

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
    assert_int_equal(r.sent, r.hold); /* every held frame released, after inspection */
    assert_int_equal(r.fwd + r.hold, (int)npkts);
    assert_int_equal(st.frames_released, (uint64_t)r.hold);
    assert_int_equal(r.built, 0);
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
    assert_int_equal(r.sent, r.hold);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_with_keys),  cmocka_unit_test(test_held_until_late_keys),
        cmocka_unit_test(test_missing_keys_block), cmocka_unit_test(test_missing_keys_pass),
        cmocka_unit_test(test_app_blocks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
