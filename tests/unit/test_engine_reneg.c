/* TLS 1.2 renegotiation (RFC 5746) and its keys: a second handshake inside the encrypted
 * session has its own client random and master secret.  A synthetic session (tls12_synth.h,
 * AES-128-GCM) renegotiates once; the tests check that the second handshake finds its keys —
 * from a key channel (arriving late, or before its ClientHello) or from the key store — that
 * its records wait for them, that without them nothing after the renegotiation is decrypted
 * (no_keys), that the session's first event is SESSION_START with the ClientHello's fields,
 * and that a session that renegotiated leaves no stale entry in the client-random map (run
 * under ASan: keys for its randoms after it ended). */
#include "tls12_synth.h"

#define GCM 0xc02f /* TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 */

static const uint8_t cr1[32] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0x11};
static const uint8_t sr1[32] = {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
                                2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0x22};
static const uint8_t cr2[32] = {3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
                                3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0x33};
static const uint8_t sr2[32] = {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
                                4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 0x44};
static uint8_t ms1[48], ms2[48];

struct seen {
    char plain[256]; /* client application data, as decrypted */
    size_t plain_len;
    int first_event; /* the session's first event */
    char sni_at_start[32];
    int no_keys, bad_mac, unsupported;
    uint32_t handshakes;
    enum mmtls_key_status status;
    uint64_t undecrypted;
    int ended;
};

static int on_ev(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct seen *z = arg;
    const struct mmtls_session_info *in = mmtls_session_info(s);
    const uint8_t *p;
    size_t n;

    if (z->first_event == 0) {
        z->first_event = (int)ev->ev;
        snprintf(z->sni_at_start, sizeof(z->sni_at_start), "%s", in->sni);
    }
    switch (ev->ev) {
    case MMTLS_EV_NEW_RECORD:
        if (ev->rec->dir == MMTLS_DIR_TO_SERVER && ev->rec->type == MMTLS_CT_APPLICATION_DATA &&
            mmtls_record_plaintext(s, &p, &n) == 0 && n < sizeof(z->plain) - z->plain_len) {
            memcpy(z->plain + z->plain_len, p, n);
            z->plain_len += n;
        }
        break;
    case MMTLS_EV_ERROR:
        z->no_keys += ev->err->code == MMTLS_TLSERR_NO_KEYS;
        z->bad_mac += ev->err->code == MMTLS_TLSERR_BAD_RECORD_MAC;
        z->unsupported += ev->err->code == MMTLS_TLSERR_UNSUPPORTED_SUITE;
        break;
    case MMTLS_EV_SESSION_END:
        z->ended++;
        z->handshakes = in->handshakes;
        z->status = in->key_status;
        z->undecrypted = in->dir[0].undecrypted_records + in->dir[1].undecrypted_records;
        break;
    default: break;
    }
    return MMTLS_VERDICT_CONTINUE;
}

static struct mmtls_engine *new_engine(struct seen *z, uint32_t wait_ms, struct mmtls_keystore *ks)
{
    struct mmtls_engine_opts o;
    struct mmtls_engine *e;
    struct mmtls_app app = {
        .sz = sizeof(app), .name = "t", .events = MMTLS_EV_ALL, .on_event = on_ev, .arg = z};

    memset(z, 0, sizeof(*z));
    mmtls_engine_opts_default(&o);
    o.key_wait_ms = wait_ms;
    o.keys = ks;
    assert_int_equal(mmtls_engine_new(&e, &o), 0);
    assert_int_equal(mmtls_engine_app_register(e, &app, NULL), 0);
    return e;
}

static void push(struct mmtls_engine *e, const uint8_t ms[48], const uint8_t cr[32])
{
    assert_true(mmtls_ring_push(mmtls_engine_key_ring(e), synth_keymsg(ms, cr)));
}

static void app(struct synth *y, const char *text)
{
    synth_record(y, 0, 23, (const uint8_t *)text, strlen(text));
}

/* keys2_at: 0 never, 1 before the renegotiation's ClientHello, 2 after its handshake (late:
 * the records under the new keys wait for them). */
static void run(struct seen *z, int keys2_at, struct mmtls_engine_stats *st)
{
    struct mmtls_engine *e = new_engine(z, 2000, NULL);
    struct synth y;

    push(e, ms1, cr1);
    synth_start(&y, e, GCM);
    synth_handshake(&y, ms1, cr1, sr1);
    app(&y, "before|");
    if (keys2_at == 1)
        push(e, ms2, cr2);
    synth_handshake(&y, ms2, cr2, sr2); /* encrypted under the first keys, then the new ones */
    if (keys2_at == 2)
        push(e, ms2, cr2);
    app(&y, "after|");
    mmtls_engine_tick(e, y.ts_us + 5000000); /* past the key wait */
    synth_end(&y);
    mmtls_engine_flush(e);
    *st = *mmtls_engine_get_stats(e);
    /* The session is gone: keys for either of its randoms must find no stale map entry. */
    push(e, ms1, cr1);
    push(e, ms2, cr2);
    mmtls_engine_poll_keys(e);
    mmtls_engine_free(e);
}

/* A server that picks a compression method (RFC 3749 DEFLATE): the records carry compressed
 * plaintext, which inspection would read as it is.  Such a session is not decryptable for
 * mmtls (unsupported_suite; inline, --on-missing-keys blocks it), even with its keys. */
static void test_compression_not_decrypted(void **state)
{
    struct seen z;
    struct mmtls_engine *e = new_engine(&z, 2000, NULL);
    struct synth y;

    (void)state;
    push(e, ms1, cr1);
    synth_start(&y, e, GCM);
    y.compression = 1;
    synth_handshake(&y, ms1, cr1, sr1);
    app(&y, "compressed|");
    synth_end(&y);
    mmtls_engine_flush(e);
    mmtls_engine_free(e);
    assert_int_equal(z.unsupported, 1);
    assert_int_equal(z.plain_len, 0);
    assert_true(z.undecrypted > 0);
    assert_int_equal(z.ended, 1);
}

static void test_second_keys_late(void **state)
{
    struct seen z;
    struct mmtls_engine_stats st;

    (void)state;
    run(&z, 2, &st);
    assert_int_equal(z.ended, 1);
    assert_int_equal(z.handshakes, 2);
    assert_string_equal(z.plain, "before|after|");
    assert_int_equal(z.status, MMTLS_KEYS_DECRYPTED);
    assert_int_equal(z.undecrypted, 0);
    assert_int_equal(z.no_keys + z.bad_mac, 0);
    assert_int_equal(st.keys_matched, 2);
    assert_true(st.records_held >= 2); /* both Finished messages waited for the new keys */
}

static void test_second_keys_before_hello(void **state)
{
    struct seen z;
    struct mmtls_engine_stats st;

    (void)state;
    run(&z, 1, &st);
    assert_int_equal(z.handshakes, 2);
    assert_string_equal(z.plain, "before|after|");
    assert_int_equal(z.status, MMTLS_KEYS_DECRYPTED);
    assert_int_equal(st.keys_matched, 2);
    assert_int_equal(st.keys_conflict, 0); /* not "first wins" against the first handshake */
    assert_int_equal(st.records_held, 0);
}

static void test_second_keys_missing(void **state)
{
    struct seen z;
    struct mmtls_engine_stats st;

    (void)state;
    run(&z, 0, &st);
    assert_int_equal(z.handshakes, 2);
    assert_string_equal(z.plain, "before|"); /* nothing after the renegotiation decrypted */
    assert_true(z.undecrypted >= 3);         /* both Finished, the application data */
    assert_true(z.no_keys >= 1);
    assert_int_equal(z.bad_mac, 0);
    assert_int_equal(z.status, MMTLS_KEYS_PARTIAL);
    assert_true(st.holds_expired >= 1);
}

/* Key store (key logs): both handshakes' master secrets are looked up at their ServerHello,
 * and both are removed from the store when the session ends. */
static void test_keystore(void **state)
{
    struct mmtls_keystore_opts ko = {.max_entries = 16};
    struct mmtls_keystore *ks;
    struct mmtls_keyset got;
    struct mmtls_engine *e;
    struct mmtls_engine_stats st;
    struct seen z;
    struct synth y;
    const uint8_t *ms[2] = {ms1, ms2}, *cr[2] = {cr1, cr2};

    (void)state;
    assert_int_equal(mmtls_keystore_new(&ks, &ko), 0);
    for (int i = 0; i < 2; i++) {
        char line[256];
        int n = snprintf(line, sizeof(line), "CLIENT_RANDOM ");
        struct mmtls_keylog_entry ent;
        for (int k = 0; k < 32; k++)
            n += snprintf(line + n, sizeof(line) - (size_t)n, "%02x", cr[i][k]);
        n += snprintf(line + n, sizeof(line) - (size_t)n, " ");
        for (int k = 0; k < 48; k++)
            n += snprintf(line + n, sizeof(line) - (size_t)n, "%02x", ms[i][k]);
        assert_int_equal(mmtls_keylog_line_parse(line, (size_t)n, &ent), 0);
        assert_true(mmtls_keystore_put(ks, &ent, 0) >= 0);
    }
    e = new_engine(&z, 0, ks);
    synth_start(&y, e, GCM);
    synth_handshake(&y, ms1, cr1, sr1);
    app(&y, "one|");
    synth_handshake(&y, ms2, cr2, sr2);
    app(&y, "two|");
    synth_end(&y);
    mmtls_engine_flush(e);
    st = *mmtls_engine_get_stats(e);
    mmtls_engine_free(e);
    assert_string_equal(z.plain, "one|two|");
    assert_int_equal(z.status, MMTLS_KEYS_DECRYPTED);
    assert_int_equal(z.first_event, MMTLS_EV_SESSION_START);
    assert_int_equal(st.records_undecrypted, 0);
    assert_int_not_equal(mmtls_keystore_lookup(ks, cr1, &got), 0);
    assert_int_not_equal(mmtls_keystore_lookup(ks, cr2, &got), 0);
    mmtls_keystore_free(ks);
}

/* SESSION_START is the first event and comes after the ClientHello is parsed: the server name
 * is valid then (docs/API.md). */
static void test_session_start_after_client_hello(void **state)
{
    struct seen z;
    struct mmtls_engine_stats st;

    (void)state;
    run(&z, 2, &st);
    assert_int_equal(z.first_event, MMTLS_EV_SESSION_START);
    assert_string_equal(z.sni_at_start, "server.test");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compression_not_decrypted),
        cmocka_unit_test(test_second_keys_late),
        cmocka_unit_test(test_second_keys_before_hello),
        cmocka_unit_test(test_second_keys_missing),
        cmocka_unit_test(test_keystore),
        cmocka_unit_test(test_session_start_after_client_hello),
    };

    for (int i = 0; i < 48; i++) {
        ms1[i] = (uint8_t)(0x50 + i);
        ms2[i] = (uint8_t)(0xa0 + i);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
