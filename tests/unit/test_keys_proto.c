/* Unit tests for the key protocol v1 codec (docs/keyproto.md): mmtls_kp_parse, mmtls_kp_encode,
 * mmtls_kp_msg_wipe, mmtls_kp_to_keyset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "keys/keys.h"

/* Hex helpers: X<n>(b) is n copies of the byte b. */
#define X4(b) b b b b
#define X16(b) X4(b) X4(b) X4(b) X4(b)
#define X20(b) X16(b) X4(b)
#define X32(b) X16(b) X16(b)
#define X48(b) X32(b) X16(b)
#define X64(b) X32(b) X32(b)

/* client random 01 02 .. 20 */
#define CR "0102030405060708090a0b0c0d0e0f10 1112131415161718191a1b1c1d1e1f20 "

/* ------------------------------------------------------------------------------------------ */
/* Valid messages                                                                              */

struct vec {
    const char *name;
    const char *hex;
    enum mmtls_kp_type type;
    uint8_t flags;
    uint16_t tls_version, cipher_suite;
    uint8_t n;
    const char *sni; /* BYPASS */
    /* mmtls_kp_to_keyset (KEYS only) */
    uint32_t have, cts_have, sts_have;
    uint8_t mac_len, key_len, iv_len;
};

enum {
    V_TLS13,
    V_TLS13_V4_EARLY,
    V_TLS13_V6,
    V_TLS12_GCM,
    V_TLS11_CBC,
    V_TLS10_CBC,
    V_KEYLOG,
    V_BYPASS,
    V_BYPASS_EMPTY,
    V_KEEPALIVE,
    V_COUNT
};

/* clang-format off */
static const struct vec vecs[V_COUNT] = {
    [V_TLS13] = {"tls13",
        "01 01 00ae "                 /* version 1, KEYS, body 174 */
        CR                            /* client_random */
        "00 "                         /* flags: none */
        "0304 1301 04 "               /* TLS 1.3, TLS_AES_128_GCM_SHA256, 4 secrets */
        "02 20" X32("22")             /* CLIENT_HANDSHAKE_TRAFFIC_SECRET, 32 bytes */
        "03 20" X32("33")             /* SERVER_HANDSHAKE_TRAFFIC_SECRET */
        "04 20" X32("44")             /* CLIENT_TRAFFIC_SECRET_0 */
        "05 20" X32("55"),            /* SERVER_TRAFFIC_SECRET_0 */
        MMTLS_KP_KEYS, 0, 0x0304, 0x1301, 4, NULL,
        MMTLS_KS_CHS | MMTLS_KS_SHS, 1, 1, 0, 0, 0},
    [V_TLS13_V4_EARLY] = {"tls13 ipv4 tuple, early, tag2, SHA-384",
        "01 01 012d "                 /* version 1, KEYS, body 301 */
        CR
        "07 "                         /* flags: TUPLE | TAG2 | EARLY */
        "04 c0a80002 c0a80001 c350 01bb " /* IPv4 192.168.0.2:50000 -> 192.168.0.1:443 */
        "0304 1302 05 "               /* TLS 1.3, TLS_AES_256_GCM_SHA384, 5 secrets */
        "01 30" X48("11")             /* CLIENT_EARLY_TRAFFIC_SECRET, 48 bytes */
        "02 30" X48("22")
        "03 30" X48("33")
        "04 30" X48("44")
        "05 30" X48("55"),
        MMTLS_KP_KEYS, 0x07, 0x0304, 0x1302, 5, NULL,
        MMTLS_KS_EARLY | MMTLS_KS_CHS | MMTLS_KS_SHS, 1, 1, 0, 0, 0},
    [V_TLS13_V6] = {"tls13 ipv6 tuple, application secrets only",
        "01 01 008f "                 /* version 1, KEYS, body 143 */
        CR
        "01 "                         /* flags: TUPLE */
        "06 20010db8000000000000000000000002 "   /* IPv6 2001:db8::2 */
        "20010db8000000000000000000000001 "      /*   -> 2001:db8::1 */
        "d431 01bb "                             /*   54321 -> 443 */
        "0304 1303 02 "               /* TLS 1.3, TLS_CHACHA20_POLY1305_SHA256, 2 secrets */
        "04 20" X32("44")             /* CLIENT_TRAFFIC_SECRET_0 */
        "05 20" X32("55"),            /* SERVER_TRAFFIC_SECRET_0 */
        MMTLS_KP_KEYS, 0x01, 0x0304, 0x1303, 2, NULL, 0, 1, 1, 0, 0, 0},
    [V_TLS12_GCM] = {"tls12 gcm: keys and implicit IVs",
        "01 01 0056 "                 /* version 1, KEYS, body 86 */
        CR
        "00 "
        "0303 c02f 04 "               /* TLS 1.2, ECDHE_RSA_WITH_AES_128_GCM_SHA256, 4 */
        "12 10" X16("aa")             /* CLIENT_WRITE_KEY, 16 */
        "13 10" X16("bb")             /* SERVER_WRITE_KEY, 16 */
        "14 04" X4("cc")              /* CLIENT_WRITE_IV, 4 (GCM salt) */
        "15 04" X4("dd"),             /* SERVER_WRITE_IV, 4 */
        MMTLS_KP_KEYS, 0, 0x0303, 0xc02f, 4, NULL, MMTLS_KS_KEY_BLOCK, 0, 0, 0, 16, 4},
    [V_TLS11_CBC] = {"tls11 cbc: mac keys and keys, no IVs",
        "01 01 0076 "                 /* version 1, KEYS, body 118 */
        CR
        "02 "                         /* flags: TAG2 */
        "0302 002f 04 "               /* TLS 1.1, RSA_WITH_AES_128_CBC_SHA, 4 */
        "10 14" X20("a1")             /* CLIENT_WRITE_MAC_KEY, 20 (HMAC-SHA1) */
        "11 14" X20("b1")             /* SERVER_WRITE_MAC_KEY, 20 */
        "12 10" X16("a2")             /* CLIENT_WRITE_KEY, 16 */
        "13 10" X16("b2"),            /* SERVER_WRITE_KEY, 16 */
        MMTLS_KP_KEYS, 0x02, 0x0302, 0x002f, 4, NULL, MMTLS_KS_KEY_BLOCK, 0, 0, 20, 16, 0},
    [V_TLS10_CBC] = {"tls10 cbc: mac keys, keys and IVs",
        "01 01 00ba "                 /* version 1, KEYS, body 186 */
        CR
        "00 "
        "0301 0035 06 "               /* TLS 1.0, RSA_WITH_AES_256_CBC_SHA, 6 */
        "10 14" X20("a1")             /* CLIENT_WRITE_MAC_KEY, 20 */
        "11 14" X20("b1")             /* SERVER_WRITE_MAC_KEY, 20 */
        "12 20" X32("a2")             /* CLIENT_WRITE_KEY, 32 */
        "13 20" X32("b2")             /* SERVER_WRITE_KEY, 32 */
        "14 10" X16("a3")             /* CLIENT_WRITE_IV, 16 */
        "15 10" X16("b3"),            /* SERVER_WRITE_IV, 16 */
        MMTLS_KP_KEYS, 0, 0x0301, 0x0035, 6, NULL, MMTLS_KS_KEY_BLOCK, 0, 0, 20, 32, 16},
    [V_KEYLOG] = {"keylog master secret",
        "01 01 0058 "                 /* version 1, KEYS, body 88 */
        CR
        "08 "                         /* flags: KEYLOG */
        "0303 c030 01 "               /* TLS 1.2, ECDHE_RSA_WITH_AES_256_GCM_SHA384, 1 */
        "20 30" X48("ee"),            /* MASTER_SECRET, 48 */
        MMTLS_KP_KEYS, 0x08, 0x0303, 0xc030, 1, NULL, MMTLS_KS_MASTER, 0, 0, 0, 0, 0},
    [V_BYPASS] = {"bypass with tuple and sni",
        "01 02 003a "                 /* version 1, BYPASS, body 58 */
        CR
        "01 "                         /* flags: TUPLE */
        "04 0a000002 5db8d822 e0f0 01bb " /* 10.0.0.2:57584 -> 93.184.216.34:443 */
        "0b 6578616d706c652e636f6d",  /* sni "example.com" */
        MMTLS_KP_BYPASS, 0x01, 0, 0, 0, "example.com", 0, 0, 0, 0, 0, 0},
    [V_BYPASS_EMPTY] = {"bypass without tuple, empty sni",
        "01 02 0022 "                 /* version 1, BYPASS, body 34 */
        CR
        "00 "                         /* flags: none */
        "00",                         /* sni "" */
        MMTLS_KP_BYPASS, 0, 0, 0, 0, "", 0, 0, 0, 0, 0, 0},
    [V_KEEPALIVE] = {"keepalive",
        "01 03 0000",                 /* version 1, KEEPALIVE, empty */
        MMTLS_KP_KEEPALIVE, 0, 0, 0, 0, NULL, 0, 0, 0, 0, 0, 0},
};
/* clang-format on */

/* Decodes hex, skipping spaces, into out; returns the byte count. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    char pair[2];
    int k = 0;

    for (; *hex != '\0'; hex++) {
        if (*hex == ' ') {
            continue;
        }
        pair[k++] = *hex;
        if (k == 2) {
            assert_true(n < cap);
            assert_int_equal(mmtls_hex_decode(pair, 2, &out[n], 1), 0);
            n++;
            k = 0;
        }
    }
    assert_int_equal(k, 0);
    return n;
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

/* Nothing secret left in *m (after a failure). */
static void assert_no_secret(const struct mmtls_kp_msg *m)
{
    assert_true(all_zero(m->secret, sizeof(m->secret)));
}

static void assert_msg_eq(const struct mmtls_kp_msg *a, const struct mmtls_kp_msg *b)
{
    assert_int_equal(a->type, b->type);
    assert_memory_equal(a->client_random, b->client_random, 32);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->tuple.ip_version, b->tuple.ip_version);
    assert_memory_equal(a->tuple.client_ip, b->tuple.client_ip, 16);
    assert_memory_equal(a->tuple.server_ip, b->tuple.server_ip, 16);
    assert_int_equal(a->tuple.client_port, b->tuple.client_port);
    assert_int_equal(a->tuple.server_port, b->tuple.server_port);
    assert_int_equal(a->tls_version, b->tls_version);
    assert_int_equal(a->cipher_suite, b->cipher_suite);
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->kind, b->kind, sizeof(a->kind));
    for (size_t i = 0; i < MMTLS_KP_MAX_SECRETS; i++) {
        assert_int_equal(a->secret[i].len, b->secret[i].len);
        assert_memory_equal(a->secret[i].b, b->secret[i].b, MMTLS_SECRET_MAX);
    }
    assert_int_equal(a->sni_len, b->sni_len);
    assert_memory_equal(a->sni, b->sni, sizeof(a->sni));
}

static void test_valid(void **state)
{
    (void)state;
    for (size_t v = 0; v < V_COUNT; v++) {
        const struct vec *t = &vecs[v];
        uint8_t buf[MMTLS_KP_MAX_MSG];
        size_t len = unhex(t->hex, buf, sizeof(buf));
        struct mmtls_kp_msg m;
        size_t used = 99;

        print_message("%s\n", t->name);
        assert_int_equal(mmtls_kp_parse(buf, len, &m, &used), 0);
        assert_int_equal(used, len);
        assert_int_equal(m.type, t->type);
        assert_int_equal(m.flags, t->flags);
        assert_int_equal(m.tls_version, t->tls_version);
        assert_int_equal(m.cipher_suite, t->cipher_suite);
        assert_int_equal(m.n, t->n);
        if (t->type != MMTLS_KP_KEEPALIVE) {
            for (size_t i = 0; i < 32; i++) {
                assert_int_equal(m.client_random[i], i + 1);
            }
        }
        if (t->sni != NULL) {
            assert_int_equal(m.sni_len, strlen(t->sni));
            assert_string_equal(m.sni, t->sni);
        }
        /* secrets: value bytes are the repeated byte of the hex, length as declared */
        for (size_t i = 0; i < m.n; i++) {
            assert_true(m.secret[i].len >= 1);
            for (size_t j = 1; j < m.secret[i].len; j++) {
                assert_int_equal(m.secret[i].b[j], m.secret[i].b[0]);
            }
        }
        for (size_t i = m.n; i < MMTLS_KP_MAX_SECRETS; i++) {
            assert_int_equal(m.secret[i].len, 0);
        }
        mmtls_kp_msg_wipe(&m);
        assert_true(all_zero(&m, sizeof(m)));
    }
}

static void test_valid_fields(void **state)
{
    uint8_t buf[MMTLS_KP_MAX_MSG];
    struct mmtls_kp_msg m;
    size_t used, len;
    static const uint8_t v6c[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 2};

    (void)state;
    len = unhex(vecs[V_TLS13_V4_EARLY].hex, buf, sizeof(buf));
    assert_int_equal(mmtls_kp_parse(buf, len, &m, &used), 0);
    assert_int_equal(m.tuple.ip_version, 4);
    assert_memory_equal(m.tuple.client_ip, "\xc0\xa8\x00\x02", 4);
    assert_memory_equal(m.tuple.server_ip, "\xc0\xa8\x00\x01", 4);
    assert_true(all_zero(m.tuple.client_ip + 4, 12));
    assert_int_equal(m.tuple.client_port, 50000);
    assert_int_equal(m.tuple.server_port, 443);
    assert_int_equal(m.kind[0], MMTLS_KP_CLIENT_EARLY);
    assert_int_equal(m.secret[0].len, 48);
    assert_int_equal(m.secret[0].b[47], 0x11);
    assert_int_equal(m.kind[4], MMTLS_KP_SERVER_APP0);
    mmtls_kp_msg_wipe(&m);

    len = unhex(vecs[V_TLS13_V6].hex, buf, sizeof(buf));
    assert_int_equal(mmtls_kp_parse(buf, len, &m, &used), 0);
    assert_int_equal(m.tuple.ip_version, 6);
    assert_memory_equal(m.tuple.client_ip, v6c, 16);
    assert_int_equal(m.tuple.server_ip[15], 1);
    assert_int_equal(m.tuple.client_port, 54321);
    mmtls_kp_msg_wipe(&m);

    len = unhex(vecs[V_BYPASS].hex, buf, sizeof(buf));
    assert_int_equal(mmtls_kp_parse(buf, len, &m, &used), 0);
    assert_memory_equal(m.tuple.server_ip, "\x5d\xb8\xd8\x22", 4);
    assert_int_equal(m.tuple.client_port, 57584);
}

/* Every valid message cut at every offset: MMTLS_AGAIN, never OK, with *used the bytes needed
 * in total (the header, then the whole message). */
static void test_truncated(void **state)
{
    (void)state;
    for (size_t v = 0; v < V_COUNT; v++) {
        uint8_t buf[MMTLS_KP_MAX_MSG];
        size_t len = unhex(vecs[v].hex, buf, sizeof(buf));

        for (size_t cut = 0; cut < len; cut++) {
            /* a heap copy of exactly `cut` bytes, so ASan sees any over-read */
            uint8_t *p = malloc(cut > 0 ? cut : 1);
            struct mmtls_kp_msg m;
            size_t used = 0;

            assert_non_null(p);
            memcpy(p, buf, cut);
            assert_int_equal(mmtls_kp_parse(cut > 0 ? p : NULL, cut, &m, &used), MMTLS_AGAIN);
            assert_int_equal(used, cut < MMTLS_KP_HDR_LEN ? MMTLS_KP_HDR_LEN : len);
            assert_no_secret(&m);
            free(p);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Single-field violations: one valid message with bytes replaced at an offset                 */

struct mutation {
    int vec;
    size_t off;
    const char *hex; /* replacement bytes */
    int rc;
    const char *what;
};

/* clang-format off */
static const struct mutation mutations[] = {
    /* header */
    {V_TLS13, 0, "02", MMTLS_E_UNSUPPORTED, "version 2"},
    {V_TLS13, 0, "00", MMTLS_E_UNSUPPORTED, "version 0"},
    {V_TLS13, 0, "ff", MMTLS_E_UNSUPPORTED, "version 255"},
    {V_KEEPALIVE, 0, "02", MMTLS_E_UNSUPPORTED, "keepalive version 2"},
    {V_TLS13, 1, "00", MMTLS_E_MALFORMED, "type 0"},
    {V_TLS13, 1, "04", MMTLS_E_MALFORMED, "type 4"},
    {V_TLS13, 1, "ff", MMTLS_E_MALFORMED, "type 255"},
    {V_TLS13, 1, "02", MMTLS_E_MALFORMED, "KEYS body as BYPASS"},
    {V_TLS13, 1, "03", MMTLS_E_MALFORMED, "KEYS body as KEEPALIVE"},
    {V_BYPASS, 1, "01", MMTLS_E_MALFORMED, "BYPASS body as KEYS"},
    {V_TLS13, 2, "0201", MMTLS_E_MALFORMED, "length 513"},
    {V_TLS13, 2, "ffff", MMTLS_E_MALFORMED, "length 65535"},
    {V_TLS13, 2, "00ad", MMTLS_E_MALFORMED, "length one short"},
    {V_TLS13, 2, "0000", MMTLS_E_MALFORMED, "length 0"},
    {V_KEEPALIVE, 2, "0201", MMTLS_E_MALFORMED, "keepalive length 513"},
    /* KEYS flags and tuple */
    {V_TLS13, 36, "10", MMTLS_E_MALFORMED, "flags bit 4"},
    {V_TLS13, 36, "80", MMTLS_E_MALFORMED, "flags bit 7"},
    {V_TLS13, 36, "f0", MMTLS_E_MALFORMED, "flags bits 4-7"},
    {V_TLS13, 36, "01", MMTLS_E_MALFORMED, "TUPLE flag without a tuple"},
    {V_TLS13_V4_EARLY, 36, "06", MMTLS_E_MALFORMED, "tuple without TUPLE flag"},
    {V_TLS13_V4_EARLY, 36, "03", MMTLS_E_MALFORMED, "kind 1 without EARLY"},
    {V_TLS13_V4_EARLY, 37, "00", MMTLS_E_MALFORMED, "ip_version 0"},
    {V_TLS13_V4_EARLY, 37, "05", MMTLS_E_MALFORMED, "ip_version 5"},
    {V_TLS13_V4_EARLY, 37, "06", MMTLS_E_MALFORMED, "ip_version 6 over an IPv4 tuple"},
    {V_TLS13_V6, 37, "04", MMTLS_E_MALFORMED, "ip_version 4 over an IPv6 tuple"},
    {V_TLS13_V6, 37, "41", MMTLS_E_MALFORMED, "ip_version 0x41"},
    /* KEYS tls_version */
    {V_TLS13, 37, "0300", MMTLS_E_MALFORMED, "tls_version SSL 3.0"},
    {V_TLS13, 37, "0305", MMTLS_E_MALFORMED, "tls_version 0x0305"},
    {V_TLS13, 37, "0000", MMTLS_E_MALFORMED, "tls_version 0"},
    {V_TLS13, 37, "ffff", MMTLS_E_MALFORMED, "tls_version 0xffff"},
    {V_TLS13, 37, "0404", MMTLS_E_MALFORMED, "tls_version 0x0404"},
    {V_TLS13, 37, "0303", MMTLS_E_MALFORMED, "TLS 1.3 kinds with TLS 1.2"},
    {V_TLS12_GCM, 37, "0304", MMTLS_E_MALFORMED, "TLS 1.2 kinds with TLS 1.3"},
    {V_TLS12_GCM, 37, "0200", MMTLS_E_MALFORMED, "tls_version 0x0200"},
    {V_KEYLOG, 37, "0304", MMTLS_E_MALFORMED, "master secret with TLS 1.3"},
    /* KEYS count */
    {V_TLS13, 41, "00", MMTLS_E_MALFORMED, "count 0"},
    {V_TLS13, 41, "09", MMTLS_E_MALFORMED, "count 9"},
    {V_TLS13, 41, "ff", MMTLS_E_MALFORMED, "count 255"},
    {V_TLS13, 41, "05", MMTLS_E_MALFORMED, "count one more than present"},
    {V_TLS13, 41, "03", MMTLS_E_MALFORMED, "count one less (trailing secret)"},
    {V_TLS12_GCM, 41, "08", MMTLS_E_MALFORMED, "count 8"},
    /* KEYS kinds */
    {V_TLS13, 42, "00", MMTLS_E_MALFORMED, "kind 0"},
    {V_TLS13, 42, "06", MMTLS_E_MALFORMED, "kind 6"},
    {V_TLS13, 42, "0f", MMTLS_E_MALFORMED, "kind 15"},
    {V_TLS13, 42, "16", MMTLS_E_MALFORMED, "kind 22"},
    {V_TLS13, 42, "21", MMTLS_E_MALFORMED, "kind 33"},
    {V_TLS13, 42, "40", MMTLS_E_MALFORMED, "kind 64"},
    {V_TLS13, 42, "ff", MMTLS_E_MALFORMED, "kind 255"},
    {V_TLS13, 42, "01", MMTLS_E_MALFORMED, "kind 1 (early) without EARLY"},
    {V_TLS13, 42, "03", MMTLS_E_MALFORMED, "kind 3 twice"},
    {V_TLS13, 76, "05", MMTLS_E_MALFORMED, "kind 5 twice"},
    {V_TLS13, 42, "10", MMTLS_E_MALFORMED, "kind 16 with TLS 1.3"},
    {V_TLS13, 42, "12", MMTLS_E_MALFORMED, "kind 18 with TLS 1.3"},
    {V_TLS13, 42, "20", MMTLS_E_MALFORMED, "kind 32 with TLS 1.3"},
    {V_TLS13_V4_EARLY, 55, "20", MMTLS_E_MALFORMED, "kind 32 with TLS 1.3 and a 48-byte value"},
    {V_TLS12_GCM, 42, "02", MMTLS_E_MALFORMED, "kind 2 with TLS 1.2"},
    {V_TLS12_GCM, 42, "13", MMTLS_E_MALFORMED, "kind 19 twice"},
    {V_TLS12_GCM, 84, "14", MMTLS_E_MALFORMED, "kind 20 twice"},
    {V_TLS12_GCM, 42, "20", MMTLS_E_MALFORMED, "kind 32 without KEYLOG"},
    {V_KEYLOG, 36, "00", MMTLS_E_MALFORMED, "master secret without KEYLOG"},
    {V_KEYLOG, 42, "01", MMTLS_E_MALFORMED, "kind 1 with TLS 1.2"},
    /* KEYS secret lengths */
    {V_TLS13, 43, "00", MMTLS_E_MALFORMED, "TLS 1.3 secret length 0"},
    {V_TLS13, 43, "1f", MMTLS_E_MALFORMED, "TLS 1.3 secret length 31"},
    {V_TLS13, 43, "21", MMTLS_E_MALFORMED, "TLS 1.3 secret length 33"},
    {V_TLS13, 43, "30", MMTLS_E_MALFORMED, "TLS 1.3 secret length 48, past the body"},
    {V_TLS13, 43, "41", MMTLS_E_MALFORMED, "secret length 65"},
    {V_TLS13, 43, "ff", MMTLS_E_MALFORMED, "secret length 255"},
    {V_TLS12_GCM, 43, "00", MMTLS_E_MALFORMED, "write key length 0"},
    {V_TLS12_GCM, 43, "21", MMTLS_E_MALFORMED, "write key length 33"},
    {V_TLS12_GCM, 79, "00", MMTLS_E_MALFORMED, "IV length 0"},
    {V_TLS12_GCM, 85, "05", MMTLS_E_MALFORMED, "IV length 5, past the body"},
    {V_TLS12_GCM, 85, "03", MMTLS_E_MALFORMED, "IV length 3, trailing byte"},
    {V_TLS11_CBC, 43, "00", MMTLS_E_MALFORMED, "MAC key length 0"},
    {V_TLS11_CBC, 43, "31", MMTLS_E_MALFORMED, "MAC key length 49"},
    {V_KEYLOG, 43, "2f", MMTLS_E_MALFORMED, "master secret length 47"},
    {V_KEYLOG, 43, "20", MMTLS_E_MALFORMED, "master secret length 32"},
    /* BYPASS */
    {V_BYPASS, 36, "03", MMTLS_E_MALFORMED, "BYPASS flag TAG2"},
    {V_BYPASS, 36, "05", MMTLS_E_MALFORMED, "BYPASS flag EARLY"},
    {V_BYPASS, 36, "09", MMTLS_E_MALFORMED, "BYPASS flag KEYLOG"},
    {V_BYPASS, 36, "00", MMTLS_E_MALFORMED, "BYPASS tuple without TUPLE"},
    {V_BYPASS_EMPTY, 36, "01", MMTLS_E_MALFORMED, "BYPASS TUPLE without a tuple"},
    {V_BYPASS_EMPTY, 36, "80", MMTLS_E_MALFORMED, "BYPASS flag bit 7"},
    {V_BYPASS, 37, "07", MMTLS_E_MALFORMED, "BYPASS ip_version 7"},
    {V_BYPASS, 50, "0c", MMTLS_E_MALFORMED, "sni_len one past the body"},
    {V_BYPASS, 50, "0a", MMTLS_E_MALFORMED, "sni_len one short (trailing byte)"},
    {V_BYPASS, 50, "ff", MMTLS_E_MALFORMED, "sni_len 255"},
    {V_BYPASS_EMPTY, 37, "01", MMTLS_E_MALFORMED, "sni_len 1 with no name"},
};

/* Messages that break a rule with a consistent length (not reachable by a byte change). */
struct bad {
    const char *hex;
    int rc;
    const char *what;
};

static const struct bad bads[] = {
    {"01 03 0001 00", MMTLS_E_MALFORMED, "KEEPALIVE with a 1-byte body"},
    {"01 03 0200" X64("00") X64("00") X64("00") X64("00") X64("00") X64("00") X64("00") X64("00"),
     MMTLS_E_MALFORMED, "KEEPALIVE with a 512-byte body"},
    {"01 01 0000", MMTLS_E_MALFORMED, "KEYS with an empty body"},
    {"01 02 0000", MMTLS_E_MALFORMED, "BYPASS with an empty body"},
    {"01 01 0021" CR "00", MMTLS_E_MALFORMED, "KEYS that stops after the flags"},
    {"01 01 0039" CR "00 0303 c02f 01 12 10" X16("aa") "00", MMTLS_E_MALFORMED,
     "KEYS with a trailing byte inside the body"},
    {"01 01 0049" CR "00 0303 c02f 01 12 21" X32("aa") "aa", MMTLS_E_MALFORMED,
     "write key 33 bytes"},
    {"01 01 0059" CR "00 0303 c02f 01 10 31" X48("aa") "aa", MMTLS_E_MALFORMED,
     "MAC key 49 bytes"},
    {"01 01 0039" CR "00 0303 c02f 01 14 11" X16("aa") "aa", MMTLS_E_MALFORMED,
     "IV 17 bytes"},
    {"01 01 0057" CR "08 0303 c030 01 20 2f" X32("ee") X4("ee") X4("ee") X4("ee") "ee ee ee",
     MMTLS_E_MALFORMED, "master secret 47 bytes"},
    {"01 01 0068" CR "00 0304 1301 01 02 40" X64("22"), MMTLS_E_MALFORMED,
     "TLS 1.3 secret 64 bytes"},
    {"01 01 0050" CR "00 0304 1301 01 02 28" X32("22") X4("22") X4("22"), MMTLS_E_MALFORMED,
     "TLS 1.3 secret 40 bytes"},
    {"01 01 0028" CR "00 0303 c02f 01 10 00", MMTLS_E_MALFORMED, "secret length 0"},
    {"01 01 0027" CR "00 0303 c02f 01 10", MMTLS_E_MALFORMED, "secret without a length"},
    {"01 01 0026" CR "00 0303 c02f 01", MMTLS_E_MALFORMED, "count 1 and no secret"},
    {"01 02 0023" CR "00 00 00", MMTLS_E_MALFORMED, "BYPASS with a trailing byte"},
    {"01 02 0021" CR "00", MMTLS_E_MALFORMED, "BYPASS without sni_len"},
};
/* clang-format on */

static void test_mutations(void **state)
{
    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(mutations); i++) {
        const struct mutation *t = &mutations[i];
        uint8_t buf[MMTLS_KP_MAX_MSG], rep[8];
        size_t len = unhex(vecs[t->vec].hex, buf, sizeof(buf));
        size_t rlen = unhex(t->hex, rep, sizeof(rep));
        struct mmtls_kp_msg m;
        size_t used = 77;
        int rc;

        assert_true(t->off + rlen <= len);
        memcpy(buf + t->off, rep, rlen);
        rc = mmtls_kp_parse(buf, len, &m, &used);
        if (rc != t->rc) {
            print_error("mutation %zu (%s): rc %d, expected %d\n", i, t->what, rc, t->rc);
        }
        assert_int_equal(rc, t->rc);
        assert_int_equal(used, 0);
        assert_no_secret(&m);
        assert_true(all_zero(&m, sizeof(m)));
    }
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(bads); i++) {
        uint8_t buf[MMTLS_KP_MAX_MSG + 16];
        size_t len = unhex(bads[i].hex, buf, sizeof(buf));
        struct mmtls_kp_msg m;
        size_t used = 77;
        int rc = mmtls_kp_parse(buf, len, &m, &used);

        if (rc != bads[i].rc) {
            print_error("bad %zu (%s): rc %d, expected %d\n", i, bads[i].what, rc, bads[i].rc);
        }
        assert_int_equal(rc, bads[i].rc);
        assert_no_secret(&m);
    }
}

/* A header that is in bounds is accepted before the body arrives: *used asks for all of it. */
static void test_header_limits(void **state)
{
    uint8_t hdr[4] = {0x01, 0x01, 0x02, 0x00}; /* KEYS, length 512: the maximum */
    struct mmtls_kp_msg m;
    size_t used;

    (void)state;
    assert_int_equal(mmtls_kp_parse(hdr, 4, &m, &used), MMTLS_AGAIN);
    assert_int_equal(used, MMTLS_KP_MAX_MSG);
    hdr[3] = 0x01; /* 513 */
    assert_int_equal(mmtls_kp_parse(hdr, 4, &m, &used), MMTLS_E_MALFORMED);
    hdr[0] = 0x02; /* a bad version is refused before the body */
    hdr[3] = 0x10;
    assert_int_equal(mmtls_kp_parse(hdr, 4, &m, &used), MMTLS_E_UNSUPPORTED);
    assert_int_equal(mmtls_kp_parse(NULL, 0, &m, &used), MMTLS_AGAIN);
    assert_int_equal(used, MMTLS_KP_HDR_LEN);
}

/* A valid message followed by one byte more: the length field says where the message ends, so
 * the extra byte is the next message (parse consumes one); counted in the body it is trailing
 * garbage. */
static void test_trailing(void **state)
{
    (void)state;
    for (size_t v = 0; v < V_COUNT; v++) {
        uint8_t buf[MMTLS_KP_MAX_MSG + 1];
        size_t len = unhex(vecs[v].hex, buf, sizeof(buf));
        uint16_t blen = mmtls_be16(buf + 2);
        struct mmtls_kp_msg m;
        size_t used;

        buf[len] = 0x00;
        assert_int_equal(mmtls_kp_parse(buf, len + 1, &m, &used), 0);
        assert_int_equal(used, len);
        mmtls_kp_msg_wipe(&m);
        mmtls_put_be16(buf + 2, (uint16_t)(blen + 1));
        assert_int_equal(mmtls_kp_parse(buf, len + 1, &m, &used), MMTLS_E_MALFORMED);
        assert_no_secret(&m);
        /* without the extra byte it is incomplete */
        assert_int_equal(mmtls_kp_parse(buf, len, &m, &used), MMTLS_AGAIN);
        assert_int_equal(used, len + 1);
    }
}

/* Several messages in one buffer: each parse consumes exactly one. */
static void test_back_to_back(void **state)
{
    static const int order[] = {V_TLS13,     V_KEEPALIVE,     V_BYPASS,   V_TLS12_GCM,
                                V_KEEPALIVE, V_KEYLOG,        V_TLS13_V6, V_BYPASS_EMPTY,
                                V_TLS10_CBC, V_TLS13_V4_EARLY};
    uint8_t buf[4096];
    size_t lens[MMTLS_ARRAY_SIZE(order)];
    size_t total = 0, off = 0;

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(order); i++) {
        lens[i] = unhex(vecs[order[i]].hex, buf + total, sizeof(buf) - total);
        total += lens[i];
    }
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(order); i++) {
        struct mmtls_kp_msg m;
        size_t used;

        assert_int_equal(mmtls_kp_parse(buf + off, total - off, &m, &used), 0);
        assert_int_equal(used, lens[i]);
        assert_int_equal(m.type, vecs[order[i]].type);
        assert_int_equal(m.n, vecs[order[i]].n);
        off += used;
        /* a stream reader that got only part of the next message */
        if (i + 1 < MMTLS_ARRAY_SIZE(order)) {
            assert_int_equal(mmtls_kp_parse(buf + off, 3, &m, &used), MMTLS_AGAIN);
            assert_int_equal(used, 4);
            assert_int_equal(mmtls_kp_parse(buf + off, lens[i + 1] - 1, &m, &used), MMTLS_AGAIN);
            assert_int_equal(used, lens[i + 1]);
        }
    }
    assert_int_equal(off, total);
}

/* ------------------------------------------------------------------------------------------ */
/* Encoder                                                                                     */

static void test_roundtrip(void **state)
{
    (void)state;
    for (size_t v = 0; v < V_COUNT; v++) {
        uint8_t in[MMTLS_KP_MAX_MSG], out[MMTLS_KP_MAX_MSG];
        size_t len = unhex(vecs[v].hex, in, sizeof(in));
        struct mmtls_kp_msg m, m2;
        size_t used;

        assert_int_equal(mmtls_kp_parse(in, len, &m, &used), 0);
        assert_int_equal(mmtls_kp_encode(&m, out, sizeof(out)), (int)len);
        assert_memory_equal(in, out, len);
        assert_int_equal(mmtls_kp_parse(out, len, &m2, &used), 0);
        assert_msg_eq(&m, &m2);
        /* exactly the length fits; one byte less does not */
        assert_int_equal(mmtls_kp_encode(&m, out, len), (int)len);
        for (size_t cap = 0; cap < len; cap++) {
            assert_int_equal(mmtls_kp_encode(&m, out, cap), MMTLS_E_LIMIT);
        }
        assert_int_equal(mmtls_kp_encode(&m, NULL, 0), MMTLS_E_LIMIT);
        mmtls_kp_msg_wipe(&m);
        mmtls_kp_msg_wipe(&m2);
    }
}

/* The largest messages the rules allow: built by hand, encoded, parsed back. */
static void test_max_sizes(void **state)
{
    static const struct {
        uint8_t kind, len;
    } k12[] = {{16, 48}, {17, 48}, {18, 32}, {19, 32}, {20, 16}, {21, 16}, {32, 48}};
    struct mmtls_kp_msg m, m2;
    uint8_t out[MMTLS_KP_MAX_MSG];
    size_t used;
    int n;

    (void)state;
    memset(&m, 0, sizeof(m));
    m.type = MMTLS_KP_KEYS;
    m.flags = MMTLS_KP_F_TUPLE | MMTLS_KP_F_TAG2 | MMTLS_KP_F_EARLY | MMTLS_KP_F_KEYLOG;
    m.tuple.ip_version = 6;
    memset(m.tuple.client_ip, 0xfe, 16);
    memset(m.tuple.server_ip, 0xfd, 16);
    m.tuple.client_port = 65535;
    m.tuple.server_port = 1;
    m.tls_version = 0x0303;
    m.cipher_suite = 0xffff;
    m.n = (uint8_t)MMTLS_ARRAY_SIZE(k12);
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(k12); i++) {
        m.kind[i] = k12[i].kind;
        m.secret[i].len = k12[i].len;
        memset(m.secret[i].b, (int)(0x80 + i), k12[i].len);
    }
    n = mmtls_kp_encode(&m, out, sizeof(out));
    /* 32 + 1 + 37 + 5 + 7 * 2 + 48 + 48 + 32 + 32 + 16 + 16 + 48 */
    assert_int_equal(n, 4 + 32 + 1 + 37 + 5 + 14 + 240);
    assert_int_equal(mmtls_kp_parse(out, (size_t)n, &m2, &used), 0);
    assert_msg_eq(&m, &m2);

    /* TLS 1.3: all five kinds at 48 bytes, IPv6 tuple */
    m.tls_version = 0x0304;
    m.n = 5;
    for (uint8_t i = 0; i < 5; i++) {
        m.kind[i] = (uint8_t)(i + 1);
        m.secret[i].len = 48;
    }
    memset(&m.kind[5], 0, 3);
    mmtls_wipe(&m.secret[5], 3 * sizeof(m.secret[0]));
    n = mmtls_kp_encode(&m, out, sizeof(out));
    assert_int_equal(n, 4 + 32 + 1 + 37 + 5 + 5 * 50);
    assert_int_equal(mmtls_kp_parse(out, (size_t)n, &m2, &used), 0);
    assert_msg_eq(&m, &m2);

    /* BYPASS: IPv6 tuple and a 255-byte server name holding every byte value but NUL */
    memset(&m, 0, sizeof(m));
    m.type = MMTLS_KP_BYPASS;
    m.flags = MMTLS_KP_F_TUPLE;
    m.tuple.ip_version = 6;
    m.sni_len = 255;
    for (int i = 0; i < 255; i++) {
        m.sni[i] = (char)(i + 1);
    }
    n = mmtls_kp_encode(&m, out, sizeof(out));
    assert_int_equal(n, 4 + 32 + 1 + 37 + 1 + 255);
    assert_int_equal(mmtls_kp_parse(out, (size_t)n, &m2, &used), 0);
    assert_msg_eq(&m, &m2);
    assert_int_equal(m2.sni[255], '\0');
    mmtls_kp_msg_wipe(&m2);
}

/* The encoder refuses what the parser would refuse. */
static void test_encode_invalid(void **state)
{
    uint8_t in[MMTLS_KP_MAX_MSG], out[MMTLS_KP_MAX_MSG];
    struct mmtls_kp_msg base, m;
    size_t len, used;

    (void)state;
    len = unhex(vecs[V_TLS13_V4_EARLY].hex, in, sizeof(in));
    assert_int_equal(mmtls_kp_parse(in, len, &base, &used), 0);

#define ENC_BAD(mutate)                                                                            \
    do {                                                                                           \
        m = base;                                                                                  \
        mutate;                                                                                    \
        assert_int_equal(mmtls_kp_encode(&m, out, sizeof(out)), MMTLS_E_INVAL);                    \
    } while (0)

    ENC_BAD(m.type = (enum mmtls_kp_type)0);
    ENC_BAD(m.type = (enum mmtls_kp_type)4);
    ENC_BAD(m.flags |= 0x10);
    ENC_BAD(m.flags &= (uint8_t)~MMTLS_KP_F_EARLY); /* kind 1 needs EARLY */
    ENC_BAD(m.tuple.ip_version = 5);
    ENC_BAD(m.tuple.ip_version = 0);
    ENC_BAD(m.tls_version = 0x0300);
    ENC_BAD(m.tls_version = 0x0305);
    ENC_BAD(m.tls_version = 0x0303);
    ENC_BAD(m.n = 0);
    ENC_BAD(m.n = 9);
    ENC_BAD(m.n = 6); /* kind[5] = 0 */
    ENC_BAD(m.kind[1] = 1);
    ENC_BAD(m.kind[0] = 16);
    ENC_BAD(m.kind[0] = 32);
    ENC_BAD(m.kind[0] = 200);
    ENC_BAD(m.secret[2].len = 33);
    ENC_BAD(m.secret[2].len = 0);
    ENC_BAD(m.secret[2].len = 64);
    ENC_BAD((m.type = MMTLS_KP_BYPASS, m.flags = MMTLS_KP_F_TUPLE | MMTLS_KP_F_TAG2));
    ENC_BAD((m.type = MMTLS_KP_BYPASS, m.flags = 0x80));
    /* ... and accepts what it would accept */
    m = base;
    m.tuple.ip_version = 6;
    assert_true(mmtls_kp_encode(&m, out, sizeof(out)) > 0);
    m = base;
    m.type = MMTLS_KP_KEEPALIVE; /* other fields are ignored */
    assert_int_equal(mmtls_kp_encode(&m, out, sizeof(out)), 4);
    assert_memory_equal(out, "\x01\x03\x00\x00", 4);
    mmtls_kp_msg_wipe(&base);
    mmtls_kp_msg_wipe(&m);
#undef ENC_BAD
}

/* ------------------------------------------------------------------------------------------ */
/* KEYS -> keyset                                                                              */

static void assert_owner_kept(const struct mmtls_keyset *ks)
{
    assert_true(ks->owner_any);
    assert_int_equal(ks->owner_ip_version, 6);
    for (size_t i = 0; i < 16; i++) {
        assert_int_equal(ks->owner_ip[i], 0xa0 + i);
    }
}

static void set_owner(struct mmtls_keyset *ks)
{
    memset(ks, 0x5a, sizeof(*ks)); /* stale data everywhere */
    ks->owner_any = true;
    ks->owner_ip_version = 6;
    for (size_t i = 0; i < 16; i++) {
        ks->owner_ip[i] = (uint8_t)(0xa0 + i);
    }
}

static void test_to_keyset(void **state)
{
    (void)state;
    for (size_t v = 0; v < V_COUNT; v++) {
        const struct vec *t = &vecs[v];
        uint8_t buf[MMTLS_KP_MAX_MSG];
        size_t len = unhex(t->hex, buf, sizeof(buf));
        struct mmtls_kp_msg m;
        struct mmtls_keyset ks;
        size_t used;

        assert_int_equal(mmtls_kp_parse(buf, len, &m, &used), 0);
        set_owner(&ks);
        if (t->type != MMTLS_KP_KEYS) {
            assert_int_equal(mmtls_kp_to_keyset(&m, &ks), MMTLS_E_INVAL);
            assert_int_equal(ks.have, 0);
            assert_owner_kept(&ks);
            continue;
        }
        print_message("%s\n", t->name);
        assert_int_equal(mmtls_kp_to_keyset(&m, &ks), 0);
        assert_owner_kept(&ks);
        assert_int_equal(ks.have, t->have);
        assert_int_equal(ks.cts_have, t->cts_have);
        assert_int_equal(ks.sts_have, t->sts_have);
        assert_int_equal(ks.tls_version, t->tls_version);
        assert_int_equal(ks.cipher_suite, t->cipher_suite);
        assert_int_equal(ks.tag2, (t->flags & MMTLS_KP_F_TAG2) != 0);
        assert_int_equal(ks.kb.mac_len, t->mac_len);
        assert_int_equal(ks.kb.key_len, t->key_len);
        assert_int_equal(ks.kb.iv_len, t->iv_len);
        /* the values landed in the right slots */
        for (size_t i = 0; i < m.n; i++) {
            const struct mmtls_secret *s = &m.secret[i];
            const uint8_t *dst = NULL;

            switch (m.kind[i]) {
            case MMTLS_KP_CLIENT_EARLY: dst = ks.early.b; break;
            case MMTLS_KP_CLIENT_HS: dst = ks.chs.b; break;
            case MMTLS_KP_SERVER_HS: dst = ks.shs.b; break;
            case MMTLS_KP_CLIENT_APP0: dst = ks.cts[0].b; break;
            case MMTLS_KP_SERVER_APP0: dst = ks.sts[0].b; break;
            case MMTLS_KP_CLIENT_MAC: dst = ks.kb.mac[0]; break;
            case MMTLS_KP_SERVER_MAC: dst = ks.kb.mac[1]; break;
            case MMTLS_KP_CLIENT_KEY: dst = ks.kb.key[0]; break;
            case MMTLS_KP_SERVER_KEY: dst = ks.kb.key[1]; break;
            case MMTLS_KP_CLIENT_IV: dst = ks.kb.iv[0]; break;
            case MMTLS_KP_SERVER_IV: dst = ks.kb.iv[1]; break;
            case MMTLS_KP_MASTER: dst = ks.master.b; break;
            default: fail();
            }
            assert_memory_equal(dst, s->b, s->len);
        }
        if (t->have & MMTLS_KS_CHS) {
            assert_int_equal(ks.chs.len, m.secret[0].len == 48 ? 48 : 32);
        }
        if (t->have & MMTLS_KS_MASTER) {
            assert_int_equal(ks.master.len, 48);
        }
        /* stale data cleared: unused update slots, unused secrets */
        assert_true(all_zero(&ks.cts[1], sizeof(ks.cts) - sizeof(ks.cts[0])));
        assert_true(all_zero(&ks.sts[1], sizeof(ks.sts) - sizeof(ks.sts[0])));
        if (!(t->have & MMTLS_KS_KEY_BLOCK)) {
            assert_true(all_zero(&ks.kb, sizeof(ks.kb)));
        }
        if (!(t->have & MMTLS_KS_MASTER)) {
            assert_true(all_zero(&ks.master, sizeof(ks.master)));
        }
        mmtls_keyset_wipe(&ks);
        mmtls_kp_msg_wipe(&m);
    }
}

/* KEYS that parse but do not make a consistent key block or TLS 1.3 set. */
/* clang-format off */
static const struct bad keyset_bads[] = {
    {"01 01 0038" CR "00 0303 c02f 01 "
     "12 10" X16("aa"),                                   /* CLIENT_WRITE_KEY only */
     MMTLS_E_MALFORMED, "client write key without the server's"},
    {"01 01 005a" CR "00 0303 c02f 02 "
     "12 10" X16("aa") "13 20" X32("bb"),                 /* write keys 16 and 32 */
     MMTLS_E_MALFORMED, "write keys of different lengths"},
    {"01 01 0060" CR "00 0303 002f 03 "
     "10 14" X20("a1") "12 10" X16("aa") "13 10" X16("bb"), /* client MAC key only */
     MMTLS_E_MALFORMED, "client MAC key without the server's"},
    {"01 01 0060" CR "00 0303 002f 03 "
     "11 14" X20("a1") "12 10" X16("aa") "13 10" X16("bb"), /* server MAC key only */
     MMTLS_E_MALFORMED, "server MAC key without the client's"},
    {"01 01 005a" CR "00 0303 c02f 04 "
     "12 10" X16("aa") "13 10" X16("bb") "14 04" X4("cc") "15 08" X4("dd") X4("dd"),
     MMTLS_E_MALFORMED, "IVs of different lengths"},
    {"01 01 0032" CR "00 0303 c02f 02 "
     "14 04" X4("cc") "15 04" X4("dd"),                   /* IVs, no keys */
     MMTLS_E_MALFORMED, "IVs without write keys"},
    {"01 01 0052" CR "00 0303 002f 02 "
     "10 14" X20("a1") "11 14" X20("b1"),                 /* MAC keys, no keys */
     MMTLS_E_MALFORMED, "MAC keys without write keys"},
    {"01 01 007a" CR "00 0304 1301 02 "
     "02 20" X32("22") "03 30" X48("33"),                 /* 32- and 48-byte secrets */
     MMTLS_E_MALFORMED, "TLS 1.3 secrets of different lengths"},
};
/* clang-format on */

static void test_to_keyset_bad(void **state)
{
    struct mmtls_kp_msg m;
    struct mmtls_keyset ks;
    uint8_t buf[MMTLS_KP_MAX_MSG];
    size_t used, len;

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(keyset_bads); i++) {
        len = unhex(keyset_bads[i].hex, buf, sizeof(buf));
        print_message("%s\n", keyset_bads[i].what);
        assert_int_equal(mmtls_kp_parse(buf, len, &m, &used), 0);
        set_owner(&ks);
        assert_int_equal(mmtls_kp_to_keyset(&m, &ks), keyset_bads[i].rc);
        assert_owner_kept(&ks);
        /* nothing secret left behind */
        assert_int_equal(ks.have, 0);
        assert_true(all_zero(&ks.kb, sizeof(ks.kb)));
        assert_true(all_zero(&ks.chs, sizeof(ks.chs)));
        assert_true(all_zero(&ks.master, sizeof(ks.master)));
        mmtls_kp_msg_wipe(&m);
    }

    /* master secret together with record keys: both kept */
    len = unhex("01 01 0058" CR "08 0303 c030 01 20 30" X48("ee"), buf, sizeof(buf));
    assert_int_equal(mmtls_kp_parse(buf, len, &m, &used), 0);
    m.n = 3;
    m.kind[1] = MMTLS_KP_CLIENT_KEY;
    m.kind[2] = MMTLS_KP_SERVER_KEY;
    m.secret[1].len = m.secret[2].len = 32;
    assert_int_equal(mmtls_kp_to_keyset(&m, &ks), 0);
    assert_int_equal(ks.have, MMTLS_KS_MASTER | MMTLS_KS_KEY_BLOCK);
    assert_int_equal(ks.kb.key_len, 32);
    assert_int_equal(ks.kb.mac_len, 0);
    /* a hand-built message the parser would refuse */
    m.kind[2] = MMTLS_KP_CLIENT_KEY;
    assert_int_equal(mmtls_kp_to_keyset(&m, &ks), MMTLS_E_INVAL);
    assert_int_equal(ks.have, 0);
    mmtls_kp_msg_wipe(&m);
    mmtls_keyset_wipe(&ks);
}

/* ------------------------------------------------------------------------------------------ */
/* Random input                                                                                */

static uint32_t rng_state = 0x12345678u;

static uint32_t rng(void)
{
    /* xorshift32: deterministic, so a failure reproduces */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* 10,000 random buffers, half with a plausible header and some from mutated valid messages:
 * never a crash; OK only when the bytes re-encode to themselves (i.e. are valid). */
static void test_random(void **state)
{
    unsigned ok = 0, again = 0, bad = 0;

    (void)state;
    for (int iter = 0; iter < 10000; iter++) {
        uint8_t buf[MMTLS_KP_MAX_MSG + 64], out[MMTLS_KP_MAX_MSG];
        size_t len = rng() % sizeof(buf);
        struct mmtls_kp_msg m;
        struct mmtls_keyset ks;
        size_t used = 0;
        int rc;

        for (size_t i = 0; i < len; i++) {
            buf[i] = (uint8_t)rng();
        }
        switch (iter % 4) {
        case 1: /* plausible header */
            if (len >= 4) {
                buf[0] = 1;
                buf[1] = (uint8_t)(1 + rng() % 3);
                mmtls_put_be16(buf + 2, (uint16_t)(len - 4 > 512 ? 512 : len - 4));
            }
            break;
        case 2: /* a valid message with a few bytes flipped */
        case 3: {
            size_t flips = 1 + rng() % 3;

            len = unhex(vecs[rng() % V_COUNT].hex, buf, sizeof(buf));
            for (size_t f = 0; f < flips; f++) {
                buf[rng() % len] ^= (uint8_t)(1u << (rng() % 8));
            }
            break;
        }
        default: break;
        }
        rc = mmtls_kp_parse(buf, len, &m, &used);
        if (rc == 0) {
            ok++;
            assert_true(used >= MMTLS_KP_HDR_LEN && used <= len && used <= MMTLS_KP_MAX_MSG);
            assert_int_equal(mmtls_kp_encode(&m, out, sizeof(out)), (int)used);
            assert_memory_equal(out, buf, used);
            set_owner(&ks);
            rc = mmtls_kp_to_keyset(&m, &ks);
            assert_true(rc == 0 || rc == MMTLS_E_MALFORMED ||
                        (rc == MMTLS_E_INVAL && m.type != MMTLS_KP_KEYS));
            assert_owner_kept(&ks);
            mmtls_keyset_wipe(&ks);
        } else if (rc == MMTLS_AGAIN) {
            again++;
            assert_true(used > len && used <= MMTLS_KP_MAX_MSG);
            assert_no_secret(&m);
        } else {
            bad++;
            assert_true(rc == MMTLS_E_MALFORMED || rc == MMTLS_E_UNSUPPORTED);
            assert_int_equal(used, 0);
            assert_no_secret(&m);
        }
        mmtls_kp_msg_wipe(&m);
    }
    print_message("random: %u ok, %u again, %u refused\n", ok, again, bad);
    assert_int_equal(ok + again + bad, 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),         cmocka_unit_test(test_valid_fields),
        cmocka_unit_test(test_truncated),     cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_header_limits), cmocka_unit_test(test_trailing),
        cmocka_unit_test(test_back_to_back),  cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_max_sizes),     cmocka_unit_test(test_encode_invalid),
        cmocka_unit_test(test_to_keyset),     cmocka_unit_test(test_to_keyset_bad),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
