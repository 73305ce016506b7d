/* Unit tests for libmmtls-keyshare internals (lib/keyshare/keyshare_int.h): key log line
 * parsing (truncated at every offset), bypass patterns, KEYS/BYPASS building checked by parsing
 * the result back with the codec, TLS <= 1.2 key blocks against vectors computed with an
 * independent PRF (Python hmac), and the queue's drop accounting through the public API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "keyshare_int.h"

#define CR_HEX "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
#define S32_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static void cr_bytes(uint8_t cr[32])
{
    for (int i = 0; i < 32; i++) {
        cr[i] = (uint8_t)(0xc0 + i % 16);
    }
}

static void hex(const char *h, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(h), 2 * n);
    assert_int_equal(mmtls_hex_decode(h, 2 * n, out, n), 0);
}

/* Parses a heap copy of exactly len bytes, so ASan sees any read past the end. */
static int parse_n(const char *line, size_t len, enum mmtls_keyshare_label *l, uint8_t cr[32],
                   struct mmtls_secret *s)
{
    char *copy = malloc(len > 0 ? len : 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, line, len);
    rc = mmtls_keyshare_line_parse(copy, len, l, cr, s);
    free(copy);
    return rc;
}

static void test_line_parse(void **state)
{
    static const struct {
        const char *line;
        int rc;
        enum mmtls_keyshare_label label;
        size_t secret_len;
    } cases[] = {
        /* the five TLS 1.3 labels the library sends, and the TLS 1.2 master secret */
        {"CLIENT_HANDSHAKE_TRAFFIC_SECRET " CR_HEX " " S32_HEX, 0, MMTLS_KEYSHARE_L_CHS, 32},
        {"SERVER_HANDSHAKE_TRAFFIC_SECRET " CR_HEX " " S32_HEX, 0, MMTLS_KEYSHARE_L_SHS, 32},
        {"CLIENT_TRAFFIC_SECRET_0 " CR_HEX " " S32_HEX, 0, MMTLS_KEYSHARE_L_CTS0, 32},
        {"SERVER_TRAFFIC_SECRET_0 " CR_HEX " " S32_HEX S32_HEX, 0, MMTLS_KEYSHARE_L_STS0, 64},
        {"CLIENT_EARLY_TRAFFIC_SECRET " CR_HEX " " S32_HEX, 0, MMTLS_KEYSHARE_L_EARLY, 32},
        {"CLIENT_RANDOM " CR_HEX " " S32_HEX "0001020304050607", 0, MMTLS_KEYSHARE_L_CLIENT_RANDOM,
         40},
        /* trailing newline (other writers) */
        {"CLIENT_TRAFFIC_SECRET_0 " CR_HEX " " S32_HEX "\r\n", 0, MMTLS_KEYSHARE_L_CTS0, 32},
        /* never sent: exporter secrets and KeyUpdate generations (docs/keyproto.md) */
        {"EXPORTER_SECRET " CR_HEX " " S32_HEX, MMTLS_DECLINED, 0, 0},
        {"EARLY_EXPORTER_SECRET " CR_HEX " " S32_HEX, MMTLS_DECLINED, 0, 0},
        {"CLIENT_TRAFFIC_SECRET_1 " CR_HEX " " S32_HEX, MMTLS_DECLINED, 0, 0},
        {"# comment", MMTLS_DECLINED, 0, 0},
        /* malformed */
        {"", MMTLS_E_MALFORMED, 0, 0},
        {"CLIENT_RANDOM", MMTLS_E_MALFORMED, 0, 0},
        {"CLIENT_RANDOM " CR_HEX, MMTLS_E_MALFORMED, 0, 0},
        {"CLIENT_RANDOM " CR_HEX " ", MMTLS_E_MALFORMED, 0, 0},
        {"CLIENT_RANDOM " CR_HEX " 0", MMTLS_E_MALFORMED, 0, 0},          /* odd hex */
        {"CLIENT_RANDOM " CR_HEX " zz", MMTLS_E_MALFORMED, 0, 0},         /* not hex */
        {"CLIENT_RANDOM " CR_HEX "00 " S32_HEX, MMTLS_E_MALFORMED, 0, 0}, /* 33-byte random */
        {"CLIENT_RANDOM xx" CR_HEX " " S32_HEX, MMTLS_E_MALFORMED, 0, 0},
        /* 65-byte secret: over MMTLS_SECRET_MAX */
        {"CLIENT_RANDOM " CR_HEX " " S32_HEX S32_HEX "00", MMTLS_E_MALFORMED, 0, 0},
    };
    uint8_t want_cr[32], cr[32], want_s[64];
    enum mmtls_keyshare_label l;
    struct mmtls_secret s;

    (void)state;
    cr_bytes(want_cr);
    hex(S32_HEX S32_HEX, want_s, 64);
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(cases); i++) {
        const char *line = cases[i].line;
        size_t len = strlen(line);
        int rc = parse_n(line, len, &l, cr, &s);

        assert_int_equal(rc, cases[i].rc);
        if (rc != 0) {
            continue;
        }
        assert_int_equal(l, cases[i].label);
        assert_memory_equal(cr, want_cr, 32);
        assert_int_equal(s.len, cases[i].secret_len);
        assert_memory_equal(s.b, want_s, s.len > 32 ? 32 : s.len);
        /* Truncated at every offset: an error, or (cut inside the secret at an even digit) a
         * shorter prefix of the same secret; never a read past the cut (ASan). */
        for (size_t n = 0; n < len; n++) {
            rc = parse_n(line, n, &l, cr, &s);
            assert_true(rc < 0 || rc == MMTLS_DECLINED || (rc == 0 && s.len < 64));
            if (rc == 0) {
                assert_memory_equal(cr, want_cr, 32);
            }
        }
    }
}

static void test_bypass(void **state)
{
    static const struct {
        const char *pat, *sni;
        bool match;
    } cases[] = {
        {"*.bank.example", "www.bank.example", true},
        {"*.bank.example", "bank.example", false},
        {"a.test, *.Bank.Example ,c.test", "WWW.BANK.EXAMPLE", true}, /* blanks, case */
        {"a.test,,c.test", "c.test", true},                           /* empty item */
        {"a.test", "", false},
        {"", "a.test", false},
        {"health?.example", "health1.example", true},
        {"[ab].test", "c.test", false},
        {NULL, "a.test", false},
        {"*", NULL, false},
    };

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(cases); i++) {
        assert_int_equal(mmtls_keyshare_bypass_match(cases[i].pat, cases[i].sni), cases[i].match);
    }
}

static void fill_t13(struct mmtls_keyshare_tls13 *t, bool early)
{
    struct mmtls_secret *all[] = {&t->early, &t->chs, &t->shs, &t->cts0, &t->sts0};

    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(all); i++) {
        all[i]->len = 48;
        memset(all[i]->b, (int)(0x11 * (i + 1)), 48);
    }
    t->have = MMTLS_KEYSHARE_TLS13_COMPLETE | (early ? 1u << MMTLS_KEYSHARE_L_EARLY : 0);
}

static void test_build_tls13(void **state)
{
    struct mmtls_kp_tuple tu = {.ip_version = 4, .client_port = 40000, .server_port = 443};
    struct mmtls_keyshare_tls13 t;
    struct mmtls_kp_msg m;
    uint8_t cr[32], out[MMTLS_KP_MAX_MSG];
    size_t used;
    int len;

    (void)state;
    cr_bytes(cr);
    memcpy(tu.client_ip, "\x0a\x00\x00\x01", 4);
    memcpy(tu.server_ip, "\xc0\x00\x02\x01", 4);
    for (int early = 0; early <= 1; early++) {
        fill_t13(&t, early != 0);
        len = mmtls_keyshare_build_tls13(&t, cr, 0x0304, 0x1302, &tu, out, sizeof(out));
        /* header: version 1, KEYS, body = 32 cr + 1 flags + 13 tuple + 2+2+1 + n * (2 + 48) */
        assert_int_equal(len, 4 + 32 + 1 + 13 + 5 + (4 + early) * 50);
        assert_int_equal(mmtls_kp_parse(out, (size_t)len, &m, &used), 0);
        assert_int_equal(used, (size_t)len);
        assert_int_equal(m.type, MMTLS_KP_KEYS);
        assert_memory_equal(m.client_random, cr, 32);
        assert_int_equal(m.flags, MMTLS_KP_F_TUPLE | (early ? MMTLS_KP_F_EARLY : 0));
        assert_int_equal(m.tuple.client_port, 40000);
        assert_memory_equal(m.tuple.server_ip, "\xc0\x00\x02\x01", 4);
        assert_int_equal(m.tls_version, 0x0304);
        assert_int_equal(m.cipher_suite, 0x1302);
        assert_int_equal(m.n, 4 + early);
        assert_int_equal(m.kind[0], early ? MMTLS_KP_CLIENT_EARLY : MMTLS_KP_CLIENT_HS);
        assert_int_equal(m.kind[m.n - 1], MMTLS_KP_SERVER_APP0);
        assert_memory_equal(m.secret[m.n - 1].b, t.sts0.b, 48);
        mmtls_kp_msg_wipe(&m);
    }
    /* without tuple */
    len = mmtls_keyshare_build_tls13(&t, cr, 0x0304, 0x1301, NULL, out, sizeof(out));
    assert_true(len > 0);
    assert_int_equal(out[4 + 32], MMTLS_KP_F_EARLY);
    /* handshake secrets only (sent at the ServerHello): kinds 1..3; the server's alone: 1, 3;
     * without it: refused */
    t.have &= ~(1u << MMTLS_KEYSHARE_L_CTS0);
    len = mmtls_keyshare_build_tls13(&t, cr, 0x0304, 0x1301, NULL, out, sizeof(out));
    assert_true(len > 0);
    used = 0;
    assert_int_equal(mmtls_kp_parse(out, (size_t)len, &m, &used), 0);
    assert_int_equal(m.n, 3);
    assert_int_equal(m.kind[0], MMTLS_KP_CLIENT_EARLY);
    assert_int_equal(m.kind[1], MMTLS_KP_CLIENT_HS);
    assert_int_equal(m.kind[2], MMTLS_KP_SERVER_HS);
    mmtls_kp_msg_wipe(&m);
    t.have &= ~(1u << MMTLS_KEYSHARE_L_CHS);
    len = mmtls_keyshare_build_tls13(&t, cr, 0x0304, 0x1301, NULL, out, sizeof(out));
    used = 0;
    assert_int_equal(mmtls_kp_parse(out, (size_t)len, &m, &used), 0);
    assert_int_equal(m.n, 2);
    assert_int_equal(m.kind[1], MMTLS_KP_SERVER_HS);
    mmtls_kp_msg_wipe(&m);
    t.have &= ~(1u << MMTLS_KEYSHARE_L_SHS);
    assert_int_equal(mmtls_keyshare_build_tls13(&t, cr, 0x0304, 0x1301, NULL, out, sizeof(out)),
                     MMTLS_E_INVAL);
    fill_t13(&t, false);
    assert_true(mmtls_keyshare_build_tls13(&t, cr, 0x0304, 0x1301, NULL, out, 100) < 0);
    t.chs.len = 40;
    assert_true(mmtls_keyshare_build_tls13(&t, cr, 0x0304, 0x1301, NULL, out, sizeof(out)) < 0);
}

static void test_build_tls12(void **state)
{
    /* master = 30 31 .. 5f, client random c0..cf c0..cf, server random 50..6f; expected
     * key blocks from an independent RFC 5246 §5 / RFC 2246 §5 PRF (Python hmac). */
    static const struct {
        uint16_t suite, version;
        uint8_t n;
        uint8_t kind[6];
        const char *val[6];
    } cases[] = {
        {0xC02F,
         0x0303,
         4,
         {18, 19, 20, 21}, /* ECDHE_RSA_AES_128_GCM_SHA256: no MAC keys */
         {"886240d4647738915c477e7edc07e3cc", "2514be6cf92a2442f41249519f648865", "efa6781f",
          "3e847e29"}},
        {0xC027,
         0x0303,
         4,
         {16, 17, 18, 19}, /* ECDHE_RSA_AES_128_CBC_SHA256: no IVs (1.2) */
         {"886240d4647738915c477e7edc07e3cc2514be6cf92a2442f41249519f648865",
          "efa6781f3e847e2908914b413372b7aea119f3674e3e0538ade94d72f42aec1d",
          "af53bcf7b664b3fdf73e936057c32a00", "231308016d92b26c4d07fe50d9c48b56"}},
        {0xC013,
         0x0301,
         6,
         {16, 17, 18, 19, 20, 21}, /* TLS 1.0 CBC: MD5/SHA-1 PRF, IVs */
         {"61aca1f736794198d035ebfd25e7062ebedf0398", "faf54ce93432a872e00fd1f8aac0b53de6a50986",
          "5df10e7861d35b99c411c1c6153006e9", "357361e2d5080656fb3315cc1888e765",
          "34e49ca6b6f53ebc116fb9a0ae04dc61", "1fd0aa3cd54489cdb62cf85494d33b62"}},
    };
    struct mmtls_secret master = {.len = 48};
    uint8_t cr[32], sr[32], out[MMTLS_KP_MAX_MSG], want[48];
    struct mmtls_kp_msg m;
    size_t used;
    int len;

    (void)state;
    cr_bytes(cr);
    for (int i = 0; i < 48; i++) {
        master.b[i] = (uint8_t)(0x30 + i);
    }
    for (int i = 0; i < 32; i++) {
        sr[i] = (uint8_t)(0x50 + i);
    }
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(cases); i++) {
        len = mmtls_keyshare_build_tls12(&master, cr, sr, cases[i].version, cases[i].suite, NULL,
                                         out, sizeof(out));
        assert_true(len > 0);
        assert_int_equal(mmtls_kp_parse(out, (size_t)len, &m, &used), 0);
        assert_int_equal(m.flags, 0);
        assert_int_equal(m.tls_version, cases[i].version);
        assert_int_equal(m.cipher_suite, cases[i].suite);
        assert_int_equal(m.n, cases[i].n);
        for (uint8_t k = 0; k < m.n; k++) {
            size_t vlen = strlen(cases[i].val[k]) / 2;

            assert_int_equal(m.kind[k], cases[i].kind[k]);
            assert_int_equal(m.secret[k].len, vlen);
            hex(cases[i].val[k], want, vlen);
            assert_memory_equal(m.secret[k].b, want, vlen);
            assert_int_not_equal(m.kind[k], MMTLS_KP_MASTER);
        }
        /* the master secret never appears in the message */
        assert_null(memmem(out, (size_t)len, master.b, 16));
        mmtls_kp_msg_wipe(&m);
    }
    /* a TLS 1.3 suite, an unknown one, an AEAD suite with TLS 1.0 */
    assert_int_equal(
        mmtls_keyshare_build_tls12(&master, cr, sr, 0x0303, 0x1301, NULL, out, sizeof(out)),
        MMTLS_E_UNSUPPORTED);
    assert_int_equal(
        mmtls_keyshare_build_tls12(&master, cr, sr, 0x0303, 0x0000, NULL, out, sizeof(out)),
        MMTLS_E_UNSUPPORTED);
    assert_true(
        mmtls_keyshare_build_tls12(&master, cr, sr, 0x0301, 0xC02F, NULL, out, sizeof(out)) < 0);
}

static void test_build_bypass(void **state)
{
    char sni[300];
    uint8_t cr[32], out[MMTLS_KP_MAX_MSG];
    struct mmtls_kp_msg m;
    size_t used;
    int len;

    (void)state;
    cr_bytes(cr);
    len = mmtls_keyshare_build_bypass(cr, NULL, "bank.example", out, sizeof(out));
    /* 01 02 00 2e | cr[32] | flags 00 | 0c "bank.example" */
    assert_int_equal(len, 4 + 32 + 1 + 1 + 12);
    assert_memory_equal(out, "\x01\x02\x00\x2e", 4);
    assert_int_equal(mmtls_kp_parse(out, (size_t)len, &m, &used), 0);
    assert_int_equal(m.type, MMTLS_KP_BYPASS);
    assert_string_equal(m.sni, "bank.example");
    /* no SNI; an over-long one is cut to 255 bytes */
    assert_int_equal(mmtls_keyshare_build_bypass(cr, NULL, NULL, out, sizeof(out)), 38);
    memset(sni, 'a', sizeof(sni) - 1);
    sni[sizeof(sni) - 1] = '\0';
    len = mmtls_keyshare_build_bypass(cr, NULL, sni, out, sizeof(out));
    assert_int_equal(len, 4 + 32 + 1 + 1 + 255);
}

static int app_calls;
static void app_cb(const SSL *ssl, const char *line)
{
    (void)ssl;
    (void)line;
    app_calls++;
}

/* The public API without a key server: attach, callback chaining, drop accounting. */
static void test_api_queue(void **state)
{
    MMTLS_KEYSHARE_OPTS(o, .keyserver = "127.0.0.1:1", .queue_max = 2,
                        .flags = MMTLS_KEYSHARE_F_NO_ENV | MMTLS_KEYSHARE_F_NO_ATEXIT);
    MMTLS_KEYSHARE_OPTS(other, .keyserver = "127.0.0.1:2", .flags = MMTLS_KEYSHARE_F_NO_ENV);
    MMTLS_KEYSHARE_OPTS(none, .flags = MMTLS_KEYSHARE_F_NO_ENV);
    struct mmtls_keyshare_stats st = {.sz = sizeof(st)};
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method()), *ctx2 = SSL_CTX_new(TLS_client_method());
    SSL_CTX_keylog_cb_func cb;
    uint8_t msg[MMTLS_KP_MAX_MSG], cr[32];
    SSL *ssl;
    int len, rc;

    (void)state;
    assert_non_null(ctx);
    assert_non_null(ctx2);
    assert_int_equal(mmtls_keyshare_attach(NULL, &o), MMTLS_E_INVAL);
    assert_int_equal(mmtls_keyshare_attach(ctx, &none), MMTLS_E_INVAL); /* no key server */
    SSL_CTX_set_keylog_callback(ctx, app_cb);
    assert_int_equal(mmtls_keyshare_attach(ctx, &o), 0);
    assert_int_equal(mmtls_keyshare_attach(ctx, &o), 0); /* idempotent */
    assert_int_equal(mmtls_keyshare_attach(ctx2, &other), MMTLS_E_CONFLICT);
    cb = SSL_CTX_get_keylog_callback(ctx);
    assert_non_null(cb);
    assert_ptr_not_equal(cb, app_cb);

    /* A TLS 1.3 set on an SSL that never connected: the application's callback sees every
     * line (the exporter secret too); two KEYS are queued (no tuple: no socket): the
     * handshake secrets at once, then the whole set; one session is counted. */
    ssl = SSL_new(ctx);
    assert_non_null(ssl);
    cb(ssl, "CLIENT_HANDSHAKE_TRAFFIC_SECRET " CR_HEX " " S32_HEX);
    cb(ssl, "SERVER_HANDSHAKE_TRAFFIC_SECRET " CR_HEX " " S32_HEX);
    cb(ssl, "EXPORTER_SECRET " CR_HEX " " S32_HEX);
    cb(ssl, "SERVER_TRAFFIC_SECRET_0 " CR_HEX " " S32_HEX);
    cb(ssl, "CLIENT_TRAFFIC_SECRET_0 " CR_HEX " " S32_HEX);
    assert_int_equal(app_calls, 5);
    mmtls_keyshare_stats(&st);
    assert_int_equal(st.sessions, 1);
    assert_int_equal(st.dropped_other, 0);
    assert_int_equal(st.queued, 2);
    /* more lines for the finished session change nothing */
    cb(ssl, "CLIENT_TRAFFIC_SECRET_0 " CR_HEX " " S32_HEX);
    mmtls_keyshare_stats(&st);
    assert_int_equal(st.queued, 2);
    SSL_free(ssl);

    /* 100 messages into a 2-slot queue while the key server refuses: the thread holds at
     * most one batch, everything else is dropped and counted; flush gives up early. */
    cr_bytes(cr);
    len = mmtls_keyshare_build_bypass(cr, NULL, "x.test", msg, sizeof(msg));
    assert_true(len > 0);
    for (int i = 0; i < 100; i++) {
        mmtls_keyshare_chan_put(msg, (size_t)len);
    }
    mmtls_keyshare_stats(&st);
    assert_int_equal(st.queued + st.dropped_queue_full, 102);
    assert_true(st.dropped_queue_full >= 100 - 2 - 32);
    rc = mmtls_keyshare_flush(5000);
    assert_true(rc == MMTLS_E_IO || rc == MMTLS_AGAIN);
    mmtls_keyshare_stats(&st);
    assert_true(st.connect_failures >= 1);
    assert_int_equal(st.sent, 0);
    assert_int_equal(st.pending, st.queued);
    mmtls_keyshare_shutdown();
    mmtls_keyshare_stats(&st);
    assert_int_equal(st.dropped_no_channel, st.queued);
    assert_int_equal(st.pending, 0);
    /* after shutdown nothing is queued any more */
    mmtls_keyshare_chan_put(msg, (size_t)len);
    mmtls_keyshare_stats(&st);
    assert_int_equal(st.dropped_no_channel, st.queued + 1);
    /* a short stats struct gets only what fits */
    {
        struct mmtls_keyshare_stats small;

        memset(&small, 0xee, sizeof(small));
        small.sz = offsetof(struct mmtls_keyshare_stats, queued);
        mmtls_keyshare_stats(&small);
        assert_int_equal(small.sessions, 1);
        assert_int_equal(small.queued, 0xeeeeeeeeeeeeeeeeull);
    }
    SSL_CTX_free(ctx);
    SSL_CTX_free(ctx2);
}

/* ------------------------------------------------------------------------------------------ */
/* Neutral collection (mmtls_keyshare_sess_secret / _finish) with a fake TLS library          */

struct fake_conn {
    uint16_t version, suite; /* suite 0: not known yet (GnuTLS during the handshake) */
    bool has_sr, has_tuple;
    uint8_t sr[32];
    const char *sni;
};

static bool fake_tuple(const void *conn, struct mmtls_kp_tuple *t)
{
    const struct fake_conn *c = conn;

    if (!c->has_tuple) {
        return false;
    }
    memset(t, 0, sizeof(*t));
    t->ip_version = 4;
    memcpy(t->client_ip, "\x7f\x00\x00\x01", 4);
    memcpy(t->server_ip, "\x7f\x00\x00\x02", 4);
    t->client_port = 50000;
    t->server_port = 443;
    return true;
}

static bool fake_server_random(const void *conn, uint8_t sr[32])
{
    const struct fake_conn *c = conn;

    memcpy(sr, c->sr, 32);
    return c->has_sr;
}

static uint16_t fake_version(const void *conn)
{
    return ((const struct fake_conn *)conn)->version;
}

static uint16_t fake_suite(const void *conn)
{
    return ((const struct fake_conn *)conn)->suite;
}

static const char *fake_sni(const void *conn, char *buf, size_t cap)
{
    (void)buf;
    (void)cap;
    return ((const struct fake_conn *)conn)->sni;
}

static const struct mmtls_keyshare_conn_ops fake_ops = {
    .tuple = fake_tuple,
    .server_random = fake_server_random,
    .version = fake_version,
    .suite = fake_suite,
    .sni = fake_sni,
    .suite_late = true,
};

/* secret of length len filled with byte v */
static struct mmtls_secret sec_of(uint8_t v, uint8_t len)
{
    struct mmtls_secret s = {.len = len};

    memset(s.b, v, len);
    return s;
}

/* Parses exactly one message of len bytes. */
static void parse_one(const uint8_t *out, int len, struct mmtls_kp_msg *m)
{
    size_t used = 0;

    assert_true(len > 0);
    assert_int_equal(mmtls_kp_parse(out, (size_t)len, m, &used), 0);
    assert_int_equal(used, (size_t)len);
}

static int feed(struct mmtls_keyshare_sess *s, struct fake_conn *c, enum mmtls_keyshare_label l,
                const uint8_t cr[32], uint8_t v, const char *bypass, uint8_t *out)
{
    struct mmtls_secret sec = sec_of(v, 48);

    return mmtls_keyshare_sess_secret(s, &fake_ops, c, l, cr, &sec, bypass, out, MMTLS_KP_MAX_MSG);
}

static void test_sess_tls13(void **state)
{
    /* GnuTLS: CHS, SHS, (EXPORTER_SECRET: never handed over), CTS0, STS0 with the suite
     * unknown until the handshake is over; OpenSSL: STS0 before CTS0, suite known. */
    static const enum mmtls_keyshare_label gnutls_order[] = {
        MMTLS_KEYSHARE_L_CHS, MMTLS_KEYSHARE_L_SHS, MMTLS_KEYSHARE_L_CTS0, MMTLS_KEYSHARE_L_STS0};
    static const enum mmtls_keyshare_label ossl_order[] = {
        MMTLS_KEYSHARE_L_EARLY, MMTLS_KEYSHARE_L_CHS, MMTLS_KEYSHARE_L_SHS, MMTLS_KEYSHARE_L_STS0,
        MMTLS_KEYSHARE_L_CTS0};
    struct mmtls_keyshare_sess s;
    struct fake_conn c = {.version = 0x0304, .has_tuple = true};
    uint8_t cr[32], out[MMTLS_KP_MAX_MSG];
    struct mmtls_kp_msg m;
    int len;

    (void)state;
    cr_bytes(cr);
    /* GnuTLS: the handshake secrets at once (suite unknown: 0), the rest at finish, when the
     * suite is known */
    memset(&s, 0, sizeof(s));
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(gnutls_order); i++) {
        len = feed(&s, &c, gnutls_order[i], cr, (uint8_t)(0x10 + gnutls_order[i]), NULL, out);
        if (gnutls_order[i] != MMTLS_KEYSHARE_L_SHS) {
            assert_int_equal(len, 0);
            continue;
        }
        parse_one(out, len, &m);
        assert_int_equal(m.n, 2);
        assert_int_equal(m.kind[0], MMTLS_KP_CLIENT_HS);
        assert_int_equal(m.kind[1], MMTLS_KP_SERVER_HS);
        assert_int_equal(m.cipher_suite, 0);
        mmtls_kp_msg_wipe(&m);
    }
    c.suite = 0x1302;
    len = mmtls_keyshare_sess_finish(&s, &fake_ops, &c, out, sizeof(out));
    assert_true(len > 0);
    parse_one(out, len, &m);
    assert_int_equal(m.type, MMTLS_KP_KEYS);
    assert_memory_equal(m.client_random, cr, 32);
    assert_int_equal(m.flags, MMTLS_KP_F_TUPLE);
    assert_int_equal(m.tuple.client_port, 50000);
    assert_int_equal(m.tls_version, 0x0304);
    assert_int_equal(m.cipher_suite, 0x1302);
    assert_int_equal(m.n, 4);
    for (unsigned i = 0; i < 4; i++) {
        struct mmtls_secret want = sec_of((uint8_t)(0x10 + MMTLS_KEYSHARE_L_CHS + i), 48);

        assert_int_equal(m.kind[i], MMTLS_KP_CLIENT_HS + i);
        assert_int_equal(m.secret[i].len, 48);
        assert_memory_equal(m.secret[i].b, want.b, 48);
    }
    mmtls_kp_msg_wipe(&m);
    /* once sent: finish again, a late secret, nothing more; the secrets are wiped */
    assert_int_equal(mmtls_keyshare_sess_finish(&s, &fake_ops, &c, out, sizeof(out)), 0);
    assert_int_equal(feed(&s, &c, MMTLS_KEYSHARE_L_STS0, cr, 1, NULL, out), 0);
    assert_int_equal(s.t13.have, 0);

    /* OpenSSL: the handshake secrets with SHS, all with the last secret, EARLY flag and kind
     * 1, no tuple */
    memset(&s, 0, sizeof(s));
    c.has_tuple = false;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(ossl_order); i++) {
        len = feed(&s, &c, ossl_order[i], cr, 0x20, NULL, out);
        assert_int_equal(len > 0, i + 1 == MMTLS_ARRAY_SIZE(ossl_order) ||
                                      ossl_order[i] == MMTLS_KEYSHARE_L_SHS);
    }
    parse_one(out, len, &m);
    assert_int_equal(m.flags, MMTLS_KP_F_EARLY);
    assert_int_equal(m.n, 5);
    assert_int_equal(m.kind[0], MMTLS_KP_CLIENT_EARLY);
    mmtls_kp_msg_wipe(&m);
    assert_int_equal(mmtls_keyshare_sess_finish(&s, &fake_ops, &c, out, sizeof(out)), 0);

    /* suite still unknown after the handshake (GnuTLS < 3.7.3): TLS 1.3 goes with suite 0 */
    memset(&s, 0, sizeof(s));
    c.suite = 0;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(gnutls_order); i++) {
        len = feed(&s, &c, gnutls_order[i], cr, 0x30, NULL, out);
        assert_int_equal(len > 0, gnutls_order[i] == MMTLS_KEYSHARE_L_SHS);
    }
    len = mmtls_keyshare_sess_finish(&s, &fake_ops, &c, out, sizeof(out));
    parse_one(out, len, &m);
    assert_int_equal(m.cipher_suite, 0);
    mmtls_kp_msg_wipe(&m);

    /* a library whose answer is final (OpenSSL, never-connected SSL): suite 0 at once */
    {
        struct mmtls_keyshare_conn_ops now = fake_ops;

        now.suite_late = false;
        memset(&s, 0, sizeof(s));
        for (size_t i = 0; i < MMTLS_ARRAY_SIZE(gnutls_order); i++) {
            struct mmtls_secret sec = sec_of(0x35, 32);

            len = mmtls_keyshare_sess_secret(&s, &now, &c, gnutls_order[i], cr, &sec, NULL, out,
                                             sizeof(out));
            assert_int_equal(len > 0, i + 1 == MMTLS_ARRAY_SIZE(gnutls_order) ||
                                          gnutls_order[i] == MMTLS_KEYSHARE_L_SHS);
        }
        parse_one(out, len, &m);
        assert_int_equal(m.cipher_suite, 0);
        assert_int_equal(m.secret[0].len, 32);
        mmtls_kp_msg_wipe(&m);
    }

    /* an incomplete session is never sent, not even by finish */
    memset(&s, 0, sizeof(s));
    assert_int_equal(mmtls_keyshare_sess_finish(&s, &fake_ops, &c, out, sizeof(out)), 0);
    assert_int_equal(feed(&s, &c, MMTLS_KEYSHARE_L_CHS, cr, 0x40, NULL, out), 0);
    assert_int_equal(mmtls_keyshare_sess_finish(&s, &fake_ops, &c, out, sizeof(out)), 0);

    /* a new client random restarts the collection: only the second handshake's secrets */
    c.suite = 0x1301;
    memset(&s, 0, sizeof(s));
    assert_int_equal(feed(&s, &c, MMTLS_KEYSHARE_L_CHS, cr, 0x50, NULL, out), 0);
    assert_true(feed(&s, &c, MMTLS_KEYSHARE_L_SHS, cr, 0x50, NULL, out) > 0);
    cr[0] ^= 0xff;
    assert_int_equal(feed(&s, &c, MMTLS_KEYSHARE_L_CTS0, cr, 0x60, NULL, out), 0);
    assert_int_equal(feed(&s, &c, MMTLS_KEYSHARE_L_STS0, cr, 0x60, NULL, out), 0);
    assert_int_equal(feed(&s, &c, MMTLS_KEYSHARE_L_CHS, cr, 0x60, NULL, out), 0);
    len = feed(&s, &c, MMTLS_KEYSHARE_L_SHS, cr, 0x60, NULL, out);
    parse_one(out, len, &m);
    assert_memory_equal(m.client_random, cr, 32);
    for (unsigned i = 0; i < m.n; i++) {
        assert_int_equal(m.secret[i].b[0], 0x60);
    }
    mmtls_kp_msg_wipe(&m);
}

static void test_sess_tls12(void **state)
{
    struct mmtls_keyshare_sess s;
    struct fake_conn c = {.version = 0x0303, .has_sr = true, .has_tuple = true};
    struct mmtls_secret master;
    struct mmtls_kp_tuple tu;
    uint8_t cr[32], out[MMTLS_KP_MAX_MSG], want[MMTLS_KP_MAX_MSG];
    int len, wlen;

    (void)state;
    cr_bytes(cr);
    for (int i = 0; i < 32; i++) {
        c.sr[i] = (uint8_t)(0x50 + i);
    }
    master = sec_of(0x77, 48);
    assert_true(fake_tuple(&c, &tu));
    wlen = mmtls_keyshare_build_tls12(&master, cr, c.sr, 0x0303, 0xC02F, &tu, want, sizeof(want));
    assert_true(wlen > 0);
    /* GnuTLS: master secret while the suite is unknown, keys at the end of the handshake */
    memset(&s, 0, sizeof(s));
    assert_int_equal(feed(&s, &c, MMTLS_KEYSHARE_L_CLIENT_RANDOM, cr, 0x77, NULL, out), 0);
    c.suite = 0xC02F;
    len = mmtls_keyshare_sess_finish(&s, &fake_ops, &c, out, sizeof(out));
    assert_int_equal(len, wlen);
    assert_memory_equal(out, want, (size_t)wlen);
    assert_int_equal(s.t13.have, 0); /* the master secret is wiped once used */
    /* OpenSSL: suite known at once */
    memset(&s, 0, sizeof(s));
    len = feed(&s, &c, MMTLS_KEYSHARE_L_CLIENT_RANDOM, cr, 0x77, NULL, out);
    assert_int_equal(len, wlen);
    assert_memory_equal(out, want, (size_t)wlen);
    assert_int_equal(mmtls_keyshare_sess_finish(&s, &fake_ops, &c, out, sizeof(out)), 0);
    /* suite unknown for good, or a suite the table lacks: a counted failure, not a message */
    memset(&s, 0, sizeof(s));
    c.suite = 0;
    assert_int_equal(feed(&s, &c, MMTLS_KEYSHARE_L_CLIENT_RANDOM, cr, 0x77, NULL, out), 0);
    assert_int_equal(mmtls_keyshare_sess_finish(&s, &fake_ops, &c, out, sizeof(out)),
                     MMTLS_E_UNSUPPORTED);
    memset(&s, 0, sizeof(s));
    c.suite = 0x0041; /* TLS_RSA_WITH_CAMELLIA_128_CBC_SHA */
    assert_int_equal(feed(&s, &c, MMTLS_KEYSHARE_L_CLIENT_RANDOM, cr, 0x77, NULL, out),
                     MMTLS_E_UNSUPPORTED);
    /* no server random */
    memset(&s, 0, sizeof(s));
    c.suite = 0xC02F;
    c.has_sr = false;
    assert_true(feed(&s, &c, MMTLS_KEYSHARE_L_CLIENT_RANDOM, cr, 0x77, NULL, out) < 0);
}

static void test_sess_bypass(void **state)
{
    struct mmtls_keyshare_sess s;
    struct fake_conn c = {.version = 0x0304, .suite = 0x1301, .sni = "Bypass.Test"};
    uint8_t cr[32], out[MMTLS_KP_MAX_MSG];
    struct mmtls_kp_msg m;
    int len;

    (void)state;
    cr_bytes(cr);
    memset(&s, 0, sizeof(s));
    len = feed(&s, &c, MMTLS_KEYSHARE_L_CHS, cr, 0x11, "*.example.org, bypass.*", out);
    parse_one(out, len, &m);
    assert_int_equal(m.type, MMTLS_KP_BYPASS);
    assert_int_equal(m.sni_len, 11);
    assert_memory_equal(m.sni, "Bypass.Test", 11);
    mmtls_kp_msg_wipe(&m);
    /* nothing else for that session, and no secret kept */
    assert_int_equal(s.t13.have, 0);
    assert_int_equal(feed(&s, &c, MMTLS_KEYSHARE_L_SHS, cr, 0x11, "bypass.*", out), 0);
    assert_int_equal(mmtls_keyshare_sess_finish(&s, &fake_ops, &c, out, sizeof(out)), 0);
    /* another name: KEYS as usual */
    memset(&s, 0, sizeof(s));
    c.sni = "www.example.com";
    assert_int_equal(feed(&s, &c, MMTLS_KEYSHARE_L_CHS, cr, 0x11, "bypass.*", out), 0);
}

static void test_lookups(void **state)
{
    static const struct {
        const char *name;
        uint16_t id;
    } suites[] = {
        {"TLS_AES_128_GCM_SHA256", 0x1301},
        {"TLS_AES_256_GCM_SHA384", 0x1302},
        {"TLS_CHACHA20_POLY1305_SHA256", 0x1303},
        {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 0xC02C},
        {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", 0xC00A},
        {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 0xCCA8},
        {"TLS_RSA_CAMELLIA_128_CBC_SHA1", 0}, /* GnuTLS's name of a suite the table lacks */
        {"tls_aes_128_gcm_sha256", 0},
        {"", 0},
    };
    static const char *const labels[] = {"CLIENT_RANDOM",
                                         "CLIENT_EARLY_TRAFFIC_SECRET",
                                         "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                                         "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                                         "CLIENT_TRAFFIC_SECRET_0",
                                         "SERVER_TRAFFIC_SECRET_0"};
    struct mmtls_kp_tuple t;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    int l, c, sp[2];

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(suites); i++) {
        assert_int_equal(mmtls_keyshare_suite_by_name(suites[i].name), suites[i].id);
    }
    assert_int_equal(mmtls_keyshare_suite_by_name(NULL), 0);
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(labels); i++) {
        assert_int_equal(mmtls_keyshare_label_of(labels[i], strlen(labels[i])),
                         MMTLS_KEYSHARE_L_CLIENT_RANDOM + (int)i);
        /* a prefix is not the label */
        assert_int_equal(mmtls_keyshare_label_of(labels[i], strlen(labels[i]) - 1), 0);
    }
    assert_int_equal(mmtls_keyshare_label_of("EXPORTER_SECRET", 15), 0);
    assert_int_equal(mmtls_keyshare_label_of("CLIENT_TRAFFIC_SECRET_1", 23), 0);

    /* the tuple of a loopback TCP connection; none for a bad fd or a unix socket */
    assert_false(mmtls_keyshare_fd_tuple(-1, &t));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    assert_false(mmtls_keyshare_fd_tuple(sp[0], &t));
    close(sp[0]);
    close(sp[1]);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
    c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_true(mmtls_keyshare_fd_tuple(c, &t));
    assert_int_equal(t.ip_version, 4);
    assert_memory_equal(t.client_ip, "\x7f\x00\x00\x01", 4);
    assert_memory_equal(t.server_ip, "\x7f\x00\x00\x01", 4);
    assert_int_equal(t.server_port, ntohs(a.sin_port));
    assert_true(t.client_port != 0);
    assert_false(mmtls_keyshare_fd_tuple(l, &t)); /* listening: no peer */
    close(c);
    close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_parse),   cmocka_unit_test(test_bypass),
        cmocka_unit_test(test_build_tls13),  cmocka_unit_test(test_build_tls12),
        cmocka_unit_test(test_build_bypass), cmocka_unit_test(test_api_queue),
        cmocka_unit_test(test_sess_tls13),   cmocka_unit_test(test_sess_tls12),
        cmocka_unit_test(test_sess_bypass),  cmocka_unit_test(test_lookups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
