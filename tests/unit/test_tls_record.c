/* Unit tests for tls record headers, fragment limits, GREASE and the handshake reassembler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "tls/tls.h"

/* ------------------------------------------------------------------------------------------ */
/* Record headers                                                                              */

struct hdr_case {
    const char *what;
    uint8_t b[5];
    int rc;
    uint8_t type;
    uint16_t version, len;
};

static const struct hdr_case hdr_cases[] = {
    /* handshake, 3.1, 0x0153: openssl s_client's first record */
    {"client hello record", {0x16, 0x03, 0x01, 0x01, 0x53}, 0, 22, 0x0301, 0x0153},
    /* change_cipher_spec, 3.3, 1 */
    {"ccs", {0x14, 0x03, 0x03, 0x00, 0x01}, 0, 20, 0x0303, 1},
    /* alert, 3.0 (SSL 3.0), 2 */
    {"ssl3 alert", {0x15, 0x03, 0x00, 0x00, 0x02}, 0, 21, 0x0300, 2},
    /* application_data, 3.3, 0x4100 (over any limit: the caller checks) */
    {"appdata big", {0x17, 0x03, 0x03, 0x41, 0x00}, 0, 23, 0x0303, 0x4100},
    /* heartbeat, 3.4, 0 */
    {"heartbeat", {0x18, 0x03, 0x04, 0x00, 0x00}, 0, 24, 0x0304, 0},
    /* content type 19 */
    {"type 19", {0x13, 0x03, 0x03, 0x00, 0x01}, MMTLS_E_MALFORMED, 0, 0, 0},
    /* content type 25 */
    {"type 25", {0x19, 0x03, 0x03, 0x00, 0x01}, MMTLS_E_MALFORMED, 0, 0, 0},
    /* SSLv2-compatible ClientHello: 2-byte length with the high bit, msg_type 1, version 3.1 */
    {"sslv2 hello", {0x80, 0x2e, 0x01, 0x03, 0x01}, MMTLS_E_MALFORMED, 0, 0, 0},
    /* version 2.0 */
    {"major 2", {0x16, 0x02, 0x00, 0x00, 0x10}, MMTLS_E_MALFORMED, 0, 0, 0},
    /* handshake, version 3.5 (framed: legacy_record_version is ignored), 16 */
    {"minor 5", {0x16, 0x03, 0x05, 0x00, 0x10}, 0, 22, 0x0305, 0x10},
    /* handshake, version 3.255, 16 */
    {"minor 255", {0x16, 0x03, 0xff, 0x00, 0x10}, 0, 22, 0x03ff, 0x10},
    /* version 0xfe 0xfd (DTLS 1.2) */
    {"dtls", {0x16, 0xfe, 0xfd, 0x00, 0x10}, MMTLS_E_MALFORMED, 0, 0, 0},
    /* plain text HTTP */
    {"http", {'G', 'E', 'T', ' ', '/'}, MMTLS_E_MALFORMED, 0, 0, 0},
};

static void test_hdr(void **state)
{
    struct mmtls_tls_hdr h;

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(hdr_cases); i++) {
        const struct hdr_case *t = &hdr_cases[i];

        print_message("record header: %s\n", t->what);
        memset(&h, 0, sizeof(h));
        assert_int_equal(mmtls_tls_hdr_parse(t->b, sizeof(t->b), &h), t->rc);
        if (t->rc == 0) {
            assert_int_equal(h.type, t->type);
            assert_int_equal(h.version, t->version);
            assert_int_equal(h.len, t->len);
        }
        /* every truncation asks for more, whatever the bytes */
        for (size_t n = 0; n < MMTLS_TLS_HDR_LEN; n++) {
            uint8_t *tr = malloc(n ? n : 1);
            assert_non_null(tr);
            memcpy(tr, t->b, n);
            assert_int_equal(mmtls_tls_hdr_parse(tr, n, &h), MMTLS_AGAIN);
            free(tr);
        }
    }
}

/* Walks a captured server flight (openssl s_server, TLS 1.3): ServerHello record, a
 * change_cipher_spec record and the first protected record, checking each against the
 * fragment limits. */
static void test_hdr_walk(void **state)
{
    static uint8_t flight[5 + 0x7a + 6 + 5 + 0x20];
    struct mmtls_tls_hdr h;
    size_t off = 0, n = 0;
    static const uint8_t types[] = {22, 20, 23};

    (void)state;
    /* handshake 3.3 length 0x7a: a ServerHello (body bytes irrelevant here) */
    memcpy(flight, (const uint8_t[]){0x16, 0x03, 0x03, 0x00, 0x7a}, 5);
    memset(flight + 5, 0x02, 0x7a);
    /* change_cipher_spec 3.3 length 1: 0x01 */
    memcpy(flight + 5 + 0x7a, (const uint8_t[]){0x14, 0x03, 0x03, 0x00, 0x01, 0x01}, 6);
    /* application_data 3.3 length 0x20: encrypted EncryptedExtensions */
    memcpy(flight + 5 + 0x7a + 6, (const uint8_t[]){0x17, 0x03, 0x03, 0x00, 0x20}, 5);
    while (off < sizeof(flight)) {
        assert_int_equal(mmtls_tls_hdr_parse(flight + off, sizeof(flight) - off, &h), 0);
        assert_int_equal(h.type, types[n]);
        assert_true(h.len <= mmtls_tls_max_fragment(MMTLS_TLS_V13, h.type == 23));
        off += MMTLS_TLS_HDR_LEN + h.len;
        n++;
    }
    assert_int_equal(off, sizeof(flight));
    assert_int_equal(n, 3);
    assert_int_equal(mmtls_tls_hdr_parse(flight + off, 0, &h), MMTLS_AGAIN);
}

static void test_max_fragment(void **state)
{
    (void)state;
    assert_int_equal(mmtls_tls_max_fragment(MMTLS_TLS_V13, false), 16384);
    assert_int_equal(mmtls_tls_max_fragment(MMTLS_TLS_V12, false), 16384);
    assert_int_equal(mmtls_tls_max_fragment(MMTLS_TLS_V13, true), 16384 + 256);
    assert_int_equal(mmtls_tls_max_fragment(MMTLS_TLS_V12, true), 16384 + 2048);
    assert_int_equal(mmtls_tls_max_fragment(MMTLS_TLS_V10, true), 16384 + 2048);
    assert_int_equal(mmtls_tls_max_fragment(0, false), 16384);
}

static void test_grease(void **state)
{
    unsigned n = 0;

    (void)state;
    for (uint32_t v = 0; v <= 0xffff; v++) {
        if (mmtls_tls_is_grease((uint16_t)v)) {
            assert_int_equal(v >> 8, v & 0xff);
            assert_int_equal(v & 0x0f, 0x0a);
            n++;
        }
    }
    assert_int_equal(n, 16); /* RFC 8701 §2: 0x0A0A .. 0xFAFA */
    assert_true(mmtls_tls_is_grease(0x0a0a));
    assert_true(mmtls_tls_is_grease(0xfafa));
    assert_false(mmtls_tls_is_grease(0x0a1a));
    assert_false(mmtls_tls_is_grease(0x0304));
}

/* ------------------------------------------------------------------------------------------ */
/* Handshake reassembler                                                                       */

/* Four messages: HelloRequest (empty), ServerHello-sized, a 3000-byte Certificate, Finished. */
static const struct {
    uint8_t type;
    size_t len;
} msgs[] = {
    {MMTLS_HS_HELLO_REQUEST, 0},
    {MMTLS_HS_SERVER_HELLO, 118},
    {MMTLS_HS_CERTIFICATE, 3000},
    {MMTLS_HS_FINISHED, 32},
};

static size_t stream_build(uint8_t *out)
{
    size_t n = 0;

    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(msgs); i++) {
        out[n] = msgs[i].type;
        out[n + 1] = (uint8_t)(msgs[i].len >> 16);
        out[n + 2] = (uint8_t)(msgs[i].len >> 8);
        out[n + 3] = (uint8_t)msgs[i].len;
        for (size_t k = 0; k < msgs[i].len; k++) {
            out[n + 4 + k] = (uint8_t)(i * 31 + k);
        }
        n += 4 + msgs[i].len;
    }
    return n;
}

/* Drains every complete message, checking it against msgs[*got]. */
static void drain(struct mmtls_tls_hs_reasm *r, size_t *got)
{
    struct mmtls_slice body;
    uint8_t type;
    int rc;

    while ((rc = mmtls_tls_hs_reasm_next(r, &type, &body)) == 0) {
        assert_true(*got < MMTLS_ARRAY_SIZE(msgs));
        assert_int_equal(type, msgs[*got].type);
        assert_int_equal(body.len, msgs[*got].len);
        for (size_t k = 0; k < body.len; k++) {
            assert_int_equal(body.p[k], (uint8_t)(*got * 31 + k));
        }
        (*got)++;
    }
    assert_int_equal(rc, MMTLS_AGAIN);
}

/* Feeds the stream in chunks of the given sizes (cycled), draining after each feed. */
static void feed_chunks(const uint8_t *s, size_t len, const size_t *chunks, size_t n_chunks)
{
    struct mmtls_tls_hs_reasm r;
    size_t off = 0, got = 0, i = 0;

    mmtls_tls_hs_reasm_init(&r, 4096);
    assert_true(mmtls_tls_hs_reasm_empty(&r));
    while (off < len) {
        size_t c = MMTLS_MIN(chunks[i++ % n_chunks], len - off);
        assert_int_equal(mmtls_tls_hs_reasm_feed(&r, s + off, c), 0);
        off += c;
        drain(&r, &got);
        /* empty exactly at message boundaries */
        if (off < len) {
            size_t b = 0, k = 0;
            while (b < off) {
                b += 4 + msgs[k++].len;
            }
            assert_int_equal(mmtls_tls_hs_reasm_empty(&r), b == off);
        }
    }
    assert_int_equal(got, MMTLS_ARRAY_SIZE(msgs));
    assert_true(mmtls_tls_hs_reasm_empty(&r));
    mmtls_tls_hs_reasm_fini(&r);
}

static void test_reasm_chunks(void **state)
{
    static uint8_t s[4096];
    static const size_t one[] = {1};
    static const size_t all[] = {sizeof(s)};
    static const size_t odd[] = {3, 1, 7, 200, 5, 1000, 2};
    static const size_t rec[] = {16384};
    size_t len = stream_build(s);

    (void)state;
    feed_chunks(s, len, one, 1);                     /* a byte at a time */
    feed_chunks(s, len, all, 1);                     /* all four messages in one feed */
    feed_chunks(s, len, odd, MMTLS_ARRAY_SIZE(odd)); /* arbitrary splits */
    feed_chunks(s, len, rec, 1);                     /* one record's worth */
    for (size_t c = 2; c < 130; c += 7) {
        feed_chunks(s, len, &c, 1);
    }
}

static void test_reasm_limit(void **state)
{
    /* Certificate declaring 101 bytes with max_msg 100 */
    static const uint8_t over[] = {0x0b, 0x00, 0x00, 0x65, 0xaa};
    /* Finished declaring 100 bytes: exactly the cap */
    static uint8_t exact[4 + 100] = {0x14, 0x00, 0x00, 0x64};
    /* declared 2^24-1 */
    static const uint8_t huge[] = {0x0b, 0xff, 0xff, 0xff};
    struct mmtls_tls_hs_reasm r;
    struct mmtls_slice body;
    uint8_t type;

    (void)state;
    /* whole header in one feed: refused before buffering */
    mmtls_tls_hs_reasm_init(&r, 100);
    assert_int_equal(mmtls_tls_hs_reasm_feed(&r, over, sizeof(over)), MMTLS_E_LIMIT);
    assert_int_equal(r.buf.len, 0);
    assert_int_equal(mmtls_tls_hs_reasm_next(&r, &type, &body), MMTLS_E_LIMIT);
    assert_int_equal(mmtls_tls_hs_reasm_feed(&r, exact, sizeof(exact)), MMTLS_E_LIMIT);
    assert_false(mmtls_tls_hs_reasm_empty(&r));
    mmtls_tls_hs_reasm_fini(&r);

    /* header split over feeds, one byte at a time */
    mmtls_tls_hs_reasm_init(&r, 100);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(mmtls_tls_hs_reasm_feed(&r, huge + i, 1), 0);
        assert_int_equal(mmtls_tls_hs_reasm_next(&r, &type, &body), MMTLS_AGAIN);
    }
    assert_int_equal(mmtls_tls_hs_reasm_feed(&r, huge + 3, 1), MMTLS_E_LIMIT);
    assert_int_equal(mmtls_tls_hs_reasm_next(&r, &type, &body), MMTLS_E_LIMIT);
    mmtls_tls_hs_reasm_fini(&r);

    /* exact cap passes; an over-limit header after it in the same feed is found by next */
    {
        uint8_t s[sizeof(exact) + sizeof(over)];
        memcpy(s, exact, sizeof(exact));
        memcpy(s + sizeof(exact), over, sizeof(over));
        mmtls_tls_hs_reasm_init(&r, 100);
        assert_int_equal(mmtls_tls_hs_reasm_feed(&r, s, sizeof(s)), 0);
        assert_int_equal(mmtls_tls_hs_reasm_next(&r, &type, &body), 0);
        assert_int_equal(type, MMTLS_HS_FINISHED);
        assert_int_equal(body.len, 100);
        assert_int_equal(mmtls_tls_hs_reasm_next(&r, &type, &body), MMTLS_E_LIMIT);
        mmtls_tls_hs_reasm_fini(&r);
    }
}

static void test_reasm_memcap(void **state)
{
    /* three complete 50-byte messages with max_msg 100 */
    static uint8_t three[3 * 54];
    struct mmtls_tls_hs_reasm r;
    struct mmtls_slice body;
    uint8_t type;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        three[54 * i] = MMTLS_HS_CERTIFICATE_STATUS;
        three[54 * i + 3] = 50;
    }
    mmtls_tls_hs_reasm_init(&r, 100);
    /* one feed may hold several messages */
    assert_int_equal(mmtls_tls_hs_reasm_feed(&r, three, sizeof(three)), 0);
    /* feeding again without draining: 162 bytes pending > 100 + 4 */
    assert_int_equal(mmtls_tls_hs_reasm_feed(&r, three, 1), MMTLS_E_MEMCAP);
    /* draining one leaves 108 > 104: still refused */
    assert_int_equal(mmtls_tls_hs_reasm_next(&r, &type, &body), 0);
    assert_int_equal(mmtls_tls_hs_reasm_feed(&r, three, 1), MMTLS_E_MEMCAP);
    /* draining the second leaves 54: accepted */
    assert_int_equal(mmtls_tls_hs_reasm_next(&r, &type, &body), 0);
    assert_int_equal(mmtls_tls_hs_reasm_feed(&r, three, 4), 0);
    assert_int_equal(mmtls_tls_hs_reasm_next(&r, &type, &body), 0);
    assert_int_equal(body.len, 50);
    assert_int_equal(mmtls_tls_hs_reasm_next(&r, &type, &body), MMTLS_AGAIN);
    assert_false(mmtls_tls_hs_reasm_empty(&r)); /* the 4-byte header fed last */
    /* compaction kept only the pending header */
    assert_int_equal(mmtls_tls_hs_reasm_feed(&r, three + 4, 50), 0);
    assert_int_equal(r.buf.len, 54);
    assert_int_equal(mmtls_tls_hs_reasm_next(&r, &type, &body), 0);
    assert_true(mmtls_tls_hs_reasm_empty(&r));
    /* empty feeds are fine */
    assert_int_equal(mmtls_tls_hs_reasm_feed(&r, NULL, 0), 0);
    mmtls_tls_hs_reasm_fini(&r);
    /* fini on a never-used reassembler, and twice */
    mmtls_tls_hs_reasm_init(&r, 100);
    mmtls_tls_hs_reasm_fini(&r);
    mmtls_tls_hs_reasm_fini(&r);
}

/* A large message fed a byte at a time must not be copied once per byte: the buffer only
 * grows (amortised) and nothing moves until a message has been handed out. */
static void test_reasm_large(void **state)
{
    const size_t body_len = 1 << 20;
    uint8_t *s = malloc(4 + body_len);
    struct mmtls_tls_hs_reasm r;
    struct mmtls_slice body;
    uint8_t type;

    (void)state;
    assert_non_null(s);
    s[0] = MMTLS_HS_CERTIFICATE;
    s[1] = 0x10;
    s[2] = 0;
    s[3] = 0;
    for (size_t i = 0; i < body_len; i++) {
        s[4 + i] = (uint8_t)(i * 7);
    }
    mmtls_tls_hs_reasm_init(&r, body_len);
    for (size_t off = 0; off < 4 + body_len; off++) {
        assert_int_equal(mmtls_tls_hs_reasm_feed(&r, s + off, 1), 0);
    }
    assert_int_equal(mmtls_tls_hs_reasm_next(&r, &type, &body), 0);
    assert_int_equal(body.len, body_len);
    assert_memory_equal(body.p, s + 4, body_len);
    mmtls_tls_hs_reasm_fini(&r);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr),          cmocka_unit_test(test_hdr_walk),
        cmocka_unit_test(test_max_fragment), cmocka_unit_test(test_grease),
        cmocka_unit_test(test_reasm_chunks), cmocka_unit_test(test_reasm_limit),
        cmocka_unit_test(test_reasm_memcap), cmocka_unit_test(test_reasm_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
