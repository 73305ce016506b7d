/* Keys from key channels, on the worker side: a real TLS 1.3 capture (from the fuzz corpus,
 * made by openssl s_server/s_client on 127.0.0.1) is replayed through an engine while key
 * messages built from its key log are pushed into the engine's ring at chosen moments.
 * Checks matching, ownership, first-wins, holding and replaying records until keys come, and
 * the bounded wait. */
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
