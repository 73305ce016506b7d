/* Unit tests for the tls hello parsers: ClientHello, ServerHello (and HelloRetryRequest),
 * EncryptedExtensions, on real captured messages and on adversarial edits of them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "tls/tls.h"

/* ------------------------------------------------------------------------------------------ */
/* Real messages.  Each array is a whole handshake message (4-byte header, then the body the   */
/* parsers take).                                                                              */

/* Captured on loopback with OpenSSL 3.0 s_client/s_server -msg (openssl), gnutls-cli 3.7 and
 * curl (OpenSSL backend); certificates are throwaway test keys. */

#include "tls_captures.h" /* ch13_openssl, ch12_openssl, ch13_psk, ch13_gnutls, ch13_curl, ch13_after_hrr */

/* s_server reply to ch13_openssl (TLS 1.3, X25519) */
/* clang-format off */
static const uint8_t sh13_openssl[] = {
    0x02, 0x00, 0x00, 0x76, /* handshake ServerHello, length 118 */
    0x03, 0x03, /* legacy_version 0x0303 */
    /* random */
    0xc9, 0x98, 0x28, 0x5f, 0xfc, 0x5c, 0x57, 0x90, 0x6e, 0x40, 0xe6, 0xd8, 0x92, 0x77, 0x56, 0x29,
    0x47, 0x16, 0xea, 0xaf, 0x20, 0x34, 0x9e, 0xde, 0xec, 0xd2, 0x47, 0xfd, 0xe9, 0x0d, 0x80, 0x5c,
    0x20, /* session_id length 32 */
    0xdd, 0x7d, 0xf7, 0xfc, 0x8a, 0x48, 0x6c, 0xf1, 0x87, 0xb0, 0x73, 0xe3, 0xa1, 0x1b, 0xcb, 0x4e,
    0x07, 0xa5, 0x2c, 0x32, 0x89, 0x51, 0x00, 0x89, 0x62, 0xbf, 0x80, 0x5e, 0x55, 0x6d, 0x4a, 0x65,
    0x13, 0x02, 0x00, /* cipher_suite 0x1302, compression 0 */
    0x00, 0x2e, /* extensions length 46 */
    0x00, 0x2b, 0x00, 0x02, /* supported_versions (43), length 2 selected TLS 1.3 */
    0x03, 0x04,
    0x00, 0x33, 0x00, 0x24, /* key_share (51), length 36 group X25519, key 32 bytes */
    0x00, 0x1d, 0x00, 0x20, 0x8a, 0xa3, 0x1b, 0x17, 0xd4, 0x7d, 0x26, 0x42, 0x08, 0xa4, 0xb7, 0x70,
    0xe5, 0x8c, 0x7b, 0xbb, 0xda, 0x40, 0x7f, 0x41, 0x6b, 0xc7, 0xe5, 0xfd, 0xbf, 0x78, 0xa7, 0x2e,
    0x09, 0x10, 0x7c, 0x45,
};
/* clang-format on */

/* s_server -groups P-256: HelloRetryRequest */
/* clang-format off */
static const uint8_t sh13_hrr[] = {
    0x02, 0x00, 0x00, 0x54, /* handshake ServerHello, length 84 */
    0x03, 0x03, /* legacy_version 0x0303 */
    /* random = SHA-256("HelloRetryRequest") */
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
    0x20, /* session_id length 32 */
    0x12, 0xe1, 0xb3, 0xf5, 0xbc, 0xf6, 0x83, 0xdc, 0xe3, 0xf3, 0x03, 0x42, 0xc1, 0x3c, 0x7b, 0x58,
    0xfd, 0x45, 0xe7, 0xa3, 0xb9, 0x95, 0xc8, 0x56, 0xd5, 0x35, 0x49, 0x83, 0x59, 0x43, 0x5b, 0xd7,
    0x13, 0x02, 0x00, /* cipher_suite 0x1302, compression 0 */
    0x00, 0x0c, /* extensions length 12 */
    0x00, 0x2b, 0x00, 0x02, /* supported_versions (43), length 2 selected TLS 1.3 */
    0x03, 0x04,
    0x00, 0x33, 0x00, 0x02, /* key_share (51), length 2 HRR selected group P-256 */
    0x00, 0x17,
};
/* clang-format on */

/* s_server reply to ch13_psk: PSK accepted */
/* clang-format off */
static const uint8_t sh13_psk[] = {
    0x02, 0x00, 0x00, 0x7c, /* handshake ServerHello, length 124 */
    0x03, 0x03, /* legacy_version 0x0303 */
    /* random */
    0x4c, 0x4a, 0x5c, 0x3f, 0xe8, 0xd1, 0x1a, 0x0c, 0x79, 0x80, 0x4d, 0x69, 0x1e, 0x66, 0xc9, 0xb0,
    0xf9, 0x44, 0x58, 0x59, 0xde, 0x76, 0x89, 0x66, 0x18, 0xdf, 0xa1, 0x5d, 0x3e, 0x2a, 0xb3, 0x5b,
    0x20, /* session_id length 32 */
    0x9f, 0xf2, 0x85, 0x38, 0xbf, 0xba, 0x75, 0x3c, 0x34, 0x33, 0x97, 0x11, 0x75, 0xac, 0xf7, 0xe9,
    0x12, 0x71, 0x44, 0x9b, 0x7b, 0xa5, 0x10, 0x56, 0x2d, 0x38, 0x84, 0x83, 0x52, 0x51, 0xba, 0x0f,
    0x13, 0x02, 0x00, /* cipher_suite 0x1302, compression 0 */
    0x00, 0x34, /* extensions length 52 */
    0x00, 0x2b, 0x00, 0x02, /* supported_versions (43), length 2 selected TLS 1.3 */
    0x03, 0x04,
    0x00, 0x33, 0x00, 0x24, /* key_share (51), length 36 group X25519, key 32 bytes */
    0x00, 0x1d, 0x00, 0x20, 0xce, 0xe1, 0x62, 0x4b, 0xb7, 0xd0, 0xf9, 0x8a, 0x7e, 0x63, 0xbe, 0x6d,
    0xed, 0x2c, 0xd3, 0xe0, 0xec, 0x3b, 0x84, 0x88, 0x68, 0x08, 0x72, 0xb4, 0x8b, 0xa6, 0x5b, 0xb1,
    0xc6, 0xfb, 0x0a, 0x34,
    0x00, 0x29, 0x00, 0x02, /* pre_shared_key (41), length 2 selected identity 0 */
    0x00, 0x00,
};
/* clang-format on */

/* s_server -alpn http/1.1 reply to ch12_openssl (TLS 1.2) */
/* clang-format off */
static const uint8_t sh12_openssl[] = {
    0x02, 0x00, 0x00, 0x4c, /* handshake ServerHello, length 76 */
    0x03, 0x03, /* legacy_version 0x0303 */
    /* random */
    0xdc, 0x56, 0xb3, 0x5d, 0xff, 0xd9, 0x37, 0xda, 0xcc, 0xcf, 0xa9, 0xb7, 0x9d, 0xe9, 0xa2, 0x52,
    0xc5, 0x12, 0xd1, 0xaa, 0xe0, 0xfc, 0x52, 0x50, 0x44, 0x4f, 0x57, 0x4e, 0x47, 0x52, 0x44, 0x01,
    0x00, /* session_id length 0 */
    0xc0, 0x2c, 0x00, /* cipher_suite 0xc02c, compression 0 */
    0x00, 0x24, /* extensions length 36 */
    0xff, 0x01, 0x00, 0x01, /* renegotiation_info (65281), length 1  */
    0x00,
    0x00, 0x0b, 0x00, 0x04, /* ec_point_formats (11), length 4  */
    0x03, 0x00, 0x01, 0x02,
    0x00, 0x23, 0x00, 0x00, /* session_ticket (35), length 0  */
    0x00, 0x10, 0x00, 0x0b, /* alpn (16), length 11 protocols http/1.1 */
    0x00, 0x09, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31,
    0x00, 0x17, 0x00, 0x00, /* extended_master_secret (23), length 0  */
};
/* clang-format on */

/* s_server reply to s_client -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA (CBC: encrypt_then_mac) */
/* clang-format off */
static const uint8_t sh12_etm[] = {
    0x02, 0x00, 0x00, 0x41, /* handshake ServerHello, length 65 */
    0x03, 0x03, /* legacy_version 0x0303 */
    /* random */
    0x5c, 0xd8, 0x15, 0x53, 0x43, 0xe7, 0x8c, 0x03, 0xa0, 0xb9, 0x12, 0x89, 0x8b, 0x86, 0x9a, 0xc4,
    0xcb, 0x2a, 0x2e, 0xf6, 0xf7, 0x52, 0x5b, 0x81, 0x44, 0x4f, 0x57, 0x4e, 0x47, 0x52, 0x44, 0x01,
    0x00, /* session_id length 0 */
    0xc0, 0x09, 0x00, /* cipher_suite 0xc009, compression 0 */
    0x00, 0x19, /* extensions length 25 */
    0xff, 0x01, 0x00, 0x01, /* renegotiation_info (65281), length 1  */
    0x00,
    0x00, 0x0b, 0x00, 0x04, /* ec_point_formats (11), length 4  */
    0x03, 0x00, 0x01, 0x02,
    0x00, 0x23, 0x00, 0x00, /* session_ticket (35), length 0  */
    0x00, 0x16, 0x00, 0x00, /* encrypt_then_mac (22), length 0  */
    0x00, 0x17, 0x00, 0x00, /* extended_master_secret (23), length 0  */
};
/* clang-format on */

/* s_server -alpn h2,http/1.1: EncryptedExtensions after ch13_openssl */
/* clang-format off */
static const uint8_t ee_alpn[] = {
    0x08, 0x00, 0x00, 0x0b, /* handshake EncryptedExtensions, length 11 */
    0x00, 0x09, /* extensions length 9 */
    0x00, 0x10, 0x00, 0x05, /* alpn (16), length 5 protocols h2 */
    0x00, 0x03, 0x02, 0x68, 0x32,
};
/* clang-format on */

/* s_server -early_data -alpn h2: EncryptedExtensions after ch13_psk (0-RTT accepted) */
/* clang-format off */
static const uint8_t ee_alpn_early[] = {
    0x08, 0x00, 0x00, 0x0f, /* handshake EncryptedExtensions, length 15 */
    0x00, 0x0d, /* extensions length 13 */
    0x00, 0x10, 0x00, 0x05, /* alpn (16), length 5 protocols h2 */
    0x00, 0x03, 0x02, 0x68, 0x32,
    0x00, 0x2a, 0x00, 0x00, /* early_data (42), length 0  */
};
/* clang-format on */

/* after the HRR: EncryptedExtensions without extensions */
/* clang-format off */
static const uint8_t ee_empty[] = {
    0x08, 0x00, 0x00, 0x02, /* handshake EncryptedExtensions, length 2 */
    0x00, 0x00, /* extensions length 0 */
};
/* clang-format on */

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                     */

#define BODY(m) ((m) + 4), (sizeof(m) - 4)

static uint8_t scratch[70000]; /* room for a ClientHello with a full 2^16-1 extensions block */

/* Offset of the extensions-block length field in a hello body (the vector after compression
 * for a ClientHello, after the compression byte for a ServerHello). */
static size_t hello_ext_off(const uint8_t *b, bool server)
{
    size_t off = 2 + 32;

    off += 1 + b[off]; /* session_id */
    if (server) {
        return off + 3;
    }
    off += 2 + mmtls_be16(b + off); /* cipher_suites */
    off += 1 + b[off];              /* compression_methods */
    return off;
}

/* Copies body into scratch with `ins` inserted at offset `at` of the extensions block (0 = in
 * front of the first extension) and the block length fixed up.  Returns the new length. */
static size_t ext_insert(const uint8_t *b, size_t len, size_t ext_len_off, size_t at,
                         const uint8_t *ins, size_t ins_len)
{
    size_t pos = ext_len_off + 2 + at;
    uint16_t blk = mmtls_be16(b + ext_len_off);

    assert_true(pos <= len && ins_len + len <= sizeof(scratch));
    memcpy(scratch, b, pos);
    memcpy(scratch + pos, ins, ins_len);
    memcpy(scratch + pos + ins_len, b + pos, len - pos);
    mmtls_put_be16(scratch + ext_len_off, (uint16_t)(blk + ins_len));
    return len + ins_len;
}

/* Finds extension `type` in the block at ext_len_off; returns the offset of its 4-byte
 * header, or 0 when absent. */
static size_t ext_find(const uint8_t *b, size_t len, size_t ext_len_off, uint16_t type)
{
    size_t p = ext_len_off + 2;

    while (p + 4 <= len) {
        if (mmtls_be16(b + p) == type) {
            return p;
        }
        p += 4 + mmtls_be16(b + p + 2);
    }
    return 0;
}

typedef int (*parse_fn)(const uint8_t *b, size_t len);

static int ch_parse(const uint8_t *b, size_t len)
{
    struct mmtls_tls_client_hello ch;
    return mmtls_tls_client_hello_parse(b, len, &ch);
}

static int sh_parse(const uint8_t *b, size_t len)
{
    struct mmtls_tls_server_hello sh;
    return mmtls_tls_server_hello_parse(b, len, &sh);
}

static int ee_parse(const uint8_t *b, size_t len)
{
    struct mmtls_tls_encrypted_extensions ee;
    return mmtls_tls_encrypted_extensions_parse(b, len, &ee);
}

/* The adversarial battery run on every valid message:
 *  - truncation at every offset fails, except exactly before an (optional) extensions block,
 *    where a shorter hello is valid (RFC 5246 §7.4.1.2);
 *  - one byte of trailing garbage fails;
 *  - every extension's length field and every known extension's first inner length, bumped
 *    up or down by one, fails;
 *  - a copy of the first extension inserted in front of it (a duplicate) fails. */
static void battery(const uint8_t *b, size_t len, parse_fn fn, size_t ext_len_off,
                    bool known_only_inner)
{
    static uint8_t copy[70000];
    size_t p;

    assert_true(len + 1 <= sizeof(copy));
    assert_int_equal(fn(b, len), 0);
    for (size_t n = 0; n < len; n++) {
        /* a heap copy of exactly n bytes lets ASan see any over-read */
        uint8_t *t = malloc(n ? n : 1);
        int rc;

        assert_non_null(t);
        memcpy(t, b, n);
        rc = fn(t, n);
        free(t);
        if (n == ext_len_off && fn != ee_parse) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, MMTLS_E_MALFORMED);
        }
    }
    memcpy(copy, b, len);
    copy[len] = 0x00;
    assert_int_equal(fn(copy, len + 1), MMTLS_E_MALFORMED);

    /* outer extensions length, +1 and -1 */
    for (int d = -1; d <= 1; d += 2) {
        memcpy(copy, b, len);
        mmtls_put_be16(copy + ext_len_off, (uint16_t)(mmtls_be16(b + ext_len_off) + d));
        assert_int_equal(fn(copy, len), MMTLS_E_MALFORMED);
    }
    for (p = ext_len_off + 2; p + 4 <= len; p += 4 + mmtls_be16(b + p + 2)) {
        uint16_t type = mmtls_be16(b + p);
        size_t dlen = mmtls_be16(b + p + 2);
        bool u8_len = type == MMTLS_EXT_SUPPORTED_VERSIONS || type == MMTLS_EXT_EC_POINT_FORMATS ||
                      type == MMTLS_EXT_RENEGOTIATION_INFO;
        bool inner = type == MMTLS_EXT_SERVER_NAME || type == MMTLS_EXT_SUPPORTED_GROUPS ||
                     type == MMTLS_EXT_SIGNATURE_ALGORITHMS || type == MMTLS_EXT_ALPN ||
                     type == MMTLS_EXT_PRE_SHARED_KEY || type == MMTLS_EXT_KEY_SHARE || u8_len;

        /* the extension's own length: +1 runs into the next extension or past the block */
        memcpy(copy, b, len);
        mmtls_put_be16(copy + p + 2, (uint16_t)(dlen + 1));
        if (p + 4 + dlen == len || !known_only_inner) {
            assert_int_equal(fn(copy, len), MMTLS_E_MALFORMED);
        }
        if (!inner || fn == sh_parse) {
            continue; /* server extensions hold scalars, not vectors */
        }
        for (int d = -1; d <= 1; d += 2) {
            memcpy(copy, b, len);
            if (u8_len) {
                copy[p + 4] = (uint8_t)(copy[p + 4] + d);
            } else {
                mmtls_put_be16(copy + p + 4, (uint16_t)(mmtls_be16(b + p + 4) + d));
            }
            assert_int_equal(fn(copy, len), MMTLS_E_MALFORMED);
        }
    }
    /* duplicate of the first extension, inserted in front */
    p = ext_len_off + 2;
    if (p + 4 <= len) {
        size_t first = 4 + mmtls_be16(b + p + 2);
        size_t n = ext_insert(b, len, ext_len_off, 0, b + p, first);
        assert_int_equal(fn(scratch, n), MMTLS_E_MALFORMED);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* ClientHello                                                                                 */

struct ch_case {
    const char *name;
    const uint8_t *msg;
    size_t len;
    uint16_t max_version;
    const char *alpn; /* raw ProtocolNameList contents */
    size_t alpn_len;
    uint8_t n_ext;
    uint8_t n_key_share;
    uint16_t first_group;
    uint16_t psk_ids;
    bool early, etm, ems, ticket, reneg;
    size_t sid_len, n_suites;
};

#define CH(m) #m, m, sizeof(m)
static const struct ch_case ch_cases[] = {
    {CH(ch13_openssl), 0x0304, "\x02h2\x08http/1.1", 12, 11, 1, 0x001d, 0, false, true, true, true,
     false, 32, 31},
    {CH(ch12_openssl), 0x0303, "\x08http/1.1", 9, 8, 0, 0, 0, false, true, true, true, false, 0,
     28},
    {CH(ch13_psk), 0x0304, "\x02h2", 3, 13, 1, 0x001d, 1, true, true, true, true, false, 32, 31},
    {CH(ch13_gnutls), 0x0304, "\x02h2", 3, 14, 2, 0x0017, 0, false, true, true, true, true, 32, 29},
    {CH(ch13_curl), 0x0304, "\x02h2\x08http/1.1", 12, 12, 1, 0x001d, 0, false, true, true, false,
     false, 32, 31},
    {CH(ch13_after_hrr), 0x0304, NULL, 0, 10, 1, 0x0017, 0, false, true, true, true, false, 32, 31},
};

static void test_ch_real(void **state)
{
    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(ch_cases); i++) {
        const struct ch_case *t = &ch_cases[i];
        const uint8_t *body = t->msg + 4;
        size_t len = t->len - 4;
        struct mmtls_tls_client_hello ch;

        print_message("ClientHello %s\n", t->name);
        assert_int_equal(mmtls_tls_client_hello_parse(body, len, &ch), 0);
        assert_int_equal(ch.legacy_version, 0x0303);
        assert_memory_equal(ch.random, body + 2, 32);
        assert_int_equal(ch.session_id.len, t->sid_len);
        assert_int_equal(ch.cipher_suites.len, 2 * t->n_suites);
        assert_int_equal(ch.compression.len, 1);
        assert_int_equal(ch.compression.p[0], 0);
        assert_int_equal(ch.max_version, t->max_version);
        assert_true(ch.has_sni);
        assert_int_equal(ch.sni.len, strlen("server.mmtls.example"));
        assert_memory_equal(ch.sni.p, "server.mmtls.example", ch.sni.len);
        assert_int_equal(ch.alpn.len, t->alpn_len);
        if (t->alpn_len != 0) {
            assert_memory_equal(ch.alpn.p, t->alpn, t->alpn_len);
        }
        assert_int_equal(ch.n_ext, t->n_ext);
        assert_int_equal(ch.ext_types[0], mmtls_be16(ch.extensions.p));
        assert_int_equal(ch.n_key_share, t->n_key_share);
        if (t->n_key_share != 0) {
            assert_int_equal(ch.key_share_groups[0], t->first_group);
        }
        assert_int_equal(ch.has_psk, t->psk_ids != 0);
        assert_int_equal(ch.psk_identities, t->psk_ids);
        assert_int_equal(ch.early_data, t->early);
        assert_int_equal(ch.encrypt_then_mac, t->etm);
        assert_int_equal(ch.extended_master_secret, t->ems);
        assert_int_equal(ch.session_ticket, t->ticket);
        assert_int_equal(ch.renegotiation_info, t->reneg);
        assert_true(ch.supported_groups.len >= 2);
        assert_true(ch.sig_algs.len >= 2);
        assert_int_equal(ch.extensions.p + ch.extensions.len, body + len);

        battery(body, len, ch_parse, hello_ext_off(body, false), true);
    }
}

/* Key details of individual captures. */
static void test_ch_details(void **state)
{
    struct mmtls_tls_client_hello ch;

    (void)state;
    assert_int_equal(mmtls_tls_client_hello_parse(BODY(ch13_gnutls), &ch), 0);
    assert_int_equal(ch.key_share_groups[1], 0x001d); /* P-256 then X25519 */
    assert_int_equal(ch.ext_types[0], 5);             /* status_request */
    assert_int_equal(ch.ext_types[13], 28);           /* record_size_limit */
    /* versions 1.3,1.2,1.1,1.0 */
    assert_int_equal(ch.supported_versions.len, 8);
    assert_int_equal(ch.ec_point_formats.len, 1);
    assert_int_equal(mmtls_tls_client_hello_parse(BODY(ch13_curl), &ch), 0);
    assert_int_equal(ch.ext_types[11], 21); /* padding is recorded, skipped */
    assert_int_equal(mmtls_tls_client_hello_parse(BODY(ch12_openssl), &ch), 0);
    assert_int_equal(ch.supported_versions.len, 0);
    assert_int_equal(ch.ec_point_formats.len, 3);
}

/* A ClientHello built around an extensions block given by the test. */
static size_t ch_build(uint8_t *out, const uint8_t *exts, size_t ext_len, bool with_block)
{
    /* legacy_version 1.2, random 0x11.., session_id <0>, suites {TLS_AES_128_GCM_SHA256},
     * compression {null} */
    static const uint8_t head[] = {0x03, 0x03};
    static const uint8_t mid[] = {0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00};
    size_t n = 0;

    memcpy(out, head, sizeof(head));
    n += sizeof(head);
    memset(out + n, 0x11, 32);
    n += 32;
    memcpy(out + n, mid, sizeof(mid));
    n += sizeof(mid);
    if (with_block) {
        mmtls_put_be16(out + n, (uint16_t)ext_len);
        n += 2;
        if (ext_len != 0) {
            memcpy(out + n, exts, ext_len);
        }
        n += ext_len;
    }
    return n;
}

static void test_ch_no_extensions(void **state)
{
    /* An SSL 3.0 / TLS 1.0 era ClientHello: no extensions block at all. */
    static const uint8_t old[] = {
        0x03, 0x01, /* legacy_version TLS 1.0 */
        0x53, 0x43, 0x5b, 0x90, 0x9d, 0x9b, 0x72, 0x0b, 0xbc, 0x0c, 0xbc,
        0x2b, 0x92, 0xa8, 0x48, 0x97, 0xcf, 0xbd, 0x39, 0x04, 0xcc, 0x16,
        0x0a, 0x85, 0x03, 0x90, 0x9f, 0x77, 0x04, 0x33, 0xd4, 0xde, /* random */
        0x00,                                                       /* session_id <0> */
        0x00, 0x04, 0x00, 0x2f, 0x00, 0x0a, /* suites: AES128-SHA, DES-CBC3-SHA */
        0x01, 0x00,                         /* compression: null */
    };
    struct mmtls_tls_client_hello ch;
    uint8_t buf[64];
    size_t n;

    (void)state;
    assert_int_equal(mmtls_tls_client_hello_parse(old, sizeof(old), &ch), 0);
    assert_int_equal(ch.legacy_version, 0x0301);
    assert_int_equal(ch.max_version, 0x0301);
    assert_int_equal(ch.extensions.len, 0);
    assert_int_equal(ch.n_ext, 0);
    assert_false(ch.has_sni);
    for (size_t i = 0; i < sizeof(old); i++) {
        assert_int_equal(mmtls_tls_client_hello_parse(old, i, &ch), MMTLS_E_MALFORMED);
    }
    /* an empty but present block is fine too */
    n = ch_build(buf, NULL, 0, true);
    assert_int_equal(mmtls_tls_client_hello_parse(buf, n, &ch), 0);
    /* one lone byte where the block would start */
    buf[n - 2] = 0;
    assert_int_equal(mmtls_tls_client_hello_parse(buf, n - 1, &ch), MMTLS_E_MALFORMED);
}

static void test_ch_fixed_fields(void **state)
{
    struct mmtls_tls_client_hello ch;
    uint8_t buf[128];
    size_t n = ch_build(buf, NULL, 0, true);

    (void)state;
    assert_int_equal(mmtls_tls_client_hello_parse(buf, n, &ch), 0);
    /* session_id of 33 bytes (max is 32) */
    {
        uint8_t b2[128];
        memcpy(b2, buf, 34);
        b2[34] = 33;
        memset(b2 + 35, 0x22, 33);
        memcpy(b2 + 35 + 33, buf + 35, n - 35);
        assert_int_equal(mmtls_tls_client_hello_parse(b2, n + 33, &ch), MMTLS_E_MALFORMED);
        b2[34] = 32; /* 32 bytes of id then 0x22 as the suites length byte: overlong */
        assert_int_equal(mmtls_tls_client_hello_parse(b2, n + 33, &ch), MMTLS_E_MALFORMED);
    }
    /* cipher_suites of odd length: 00 03 13 01 01, compression 00?? */
    {
        static const uint8_t odd[] = {0x00, 0x03, 0x13, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00};
        uint8_t b2[128];
        memcpy(b2, buf, 35);
        memcpy(b2 + 35, odd, sizeof(odd));
        assert_int_equal(mmtls_tls_client_hello_parse(b2, 35 + sizeof(odd), &ch),
                         MMTLS_E_MALFORMED);
    }
    /* empty cipher_suites, then compression {null}, extensions <0> */
    {
        static const uint8_t none[] = {0x00, 0x00, 0x01, 0x00, 0x00, 0x00};
        uint8_t b2[128];
        memcpy(b2, buf, 35);
        memcpy(b2 + 35, none, sizeof(none));
        assert_int_equal(mmtls_tls_client_hello_parse(b2, 35 + sizeof(none), &ch),
                         MMTLS_E_MALFORMED);
    }
    /* empty compression_methods */
    {
        static const uint8_t nocomp[] = {0x00, 0x02, 0x13, 0x01, 0x00, 0x00, 0x00};
        uint8_t b2[128];
        memcpy(b2, buf, 35);
        memcpy(b2 + 35, nocomp, sizeof(nocomp));
        assert_int_equal(mmtls_tls_client_hello_parse(b2, 35 + sizeof(nocomp), &ch),
                         MMTLS_E_MALFORMED);
    }
}

/* Table of single-extension ClientHellos: extension bytes and the expected result. */
struct ext_case {
    const char *what;
    const uint8_t *ext;
    size_t len;
    int rc;
};
#define EXT(what, rc, ...)                                                                         \
    {                                                                                              \
        what, (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}), rc           \
    }

static const struct ext_case ch_ext_cases[] = {
    /* server_name: list <0> */
    EXT("sni empty list", MMTLS_E_MALFORMED, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00),
    /* server_name: host_name "" */
    EXT("sni empty name", MMTLS_E_MALFORMED, 0x00, 0x00, 0x00, 0x05, 0x00, 0x03, 0x00, 0x00, 0x00),
    /* server_name: host_name "a", trailing byte in the extension */
    EXT("sni trailing", MMTLS_E_MALFORMED, 0x00, 0x00, 0x00, 0x07, 0x00, 0x04, 0x00, 0x00, 0x01,
        'a', 0x00),
    /* server_name: type 7 "x" then host_name "a": the host_name is taken */
    EXT("sni other type first", 0, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x08, 0x07, 0x00, 0x01, 'x', 0x00,
        0x00, 0x01, 'a'),
    /* alpn: list <0> */
    EXT("alpn empty list", MMTLS_E_MALFORMED, 0x00, 0x10, 0x00, 0x02, 0x00, 0x00),
    /* alpn: "h2", "" */
    EXT("alpn empty name", MMTLS_E_MALFORMED, 0x00, 0x10, 0x00, 0x06, 0x00, 0x04, 0x02, 'h', '2',
        0x00),
    /* supported_versions: <0> */
    EXT("versions empty", MMTLS_E_MALFORMED, 0x00, 0x2b, 0x00, 0x01, 0x00),
    /* supported_versions: 3 bytes */
    EXT("versions odd", MMTLS_E_MALFORMED, 0x00, 0x2b, 0x00, 0x04, 0x03, 0x03, 0x04, 0x03),
    /* supported_groups: odd */
    EXT("groups odd", MMTLS_E_MALFORMED, 0x00, 0x0a, 0x00, 0x03, 0x00, 0x01, 0x17),
    /* signature_algorithms: <0> */
    EXT("sigalgs empty", MMTLS_E_MALFORMED, 0x00, 0x0d, 0x00, 0x02, 0x00, 0x00),
    /* ec_point_formats: <0> */
    EXT("ecpf empty", MMTLS_E_MALFORMED, 0x00, 0x0b, 0x00, 0x01, 0x00),
    /* key_share: client_shares <0> (asks for an HRR): valid */
    EXT("key_share empty list", 0, 0x00, 0x33, 0x00, 0x02, 0x00, 0x00),
    /* key_share: X25519 with an empty key */
    EXT("key_share empty key", MMTLS_E_MALFORMED, 0x00, 0x33, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d,
        0x00, 0x00),
    /* early_data with a body */
    EXT("early_data body", MMTLS_E_MALFORMED, 0x00, 0x2a, 0x00, 0x01, 0x00),
    /* encrypt_then_mac with a body */
    EXT("etm body", MMTLS_E_MALFORMED, 0x00, 0x16, 0x00, 0x01, 0x00),
    /* extended_master_secret with a body */
    EXT("ems body", MMTLS_E_MALFORMED, 0x00, 0x17, 0x00, 0x01, 0x00),
    /* session_ticket with an opaque 3-byte ticket: valid */
    EXT("ticket", 0, 0x00, 0x23, 0x00, 0x03, 0xaa, 0xbb, 0xcc),
    /* renegotiation_info <0> */
    EXT("reneg", 0, 0xff, 0x01, 0x00, 0x01, 0x00),
    /* renegotiation_info with a trailing byte */
    EXT("reneg trailing", MMTLS_E_MALFORMED, 0xff, 0x01, 0x00, 0x02, 0x00, 0x00),
    /* unknown extension 0x7777 with garbage: skipped */
    EXT("unknown", 0, 0x77, 0x77, 0x00, 0x03, 0xff, 0xff, 0xff),
    /* pre_shared_key: identity "t" age 0, binder of 32 bytes */
    EXT("psk ok", 0, 0x00, 0x29, 0x00, 0x2c, 0x00, 0x07, 0x00, 0x01, 't', 0x00, 0x00, 0x00, 0x00,
        0x00, 0x21, 0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
        22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32),
    /* pre_shared_key: binder of 31 bytes */
    EXT("psk short binder", MMTLS_E_MALFORMED, 0x00, 0x29, 0x00, 0x2b, 0x00, 0x07, 0x00, 0x01, 't',
        0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x1f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31),
    /* pre_shared_key: one identity, no binder */
    EXT("psk no binder", MMTLS_E_MALFORMED, 0x00, 0x29, 0x00, 0x0b, 0x00, 0x07, 0x00, 0x01, 't',
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
    /* pre_shared_key: empty identity */
    EXT("psk empty identity", MMTLS_E_MALFORMED, 0x00, 0x29, 0x00, 0x2b, 0x00, 0x06, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32),
};

static void test_ch_ext_table(void **state)
{
    struct mmtls_tls_client_hello ch;
    uint8_t buf[256];

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(ch_ext_cases); i++) {
        const struct ext_case *t = &ch_ext_cases[i];
        size_t n = ch_build(buf, t->ext, t->len, true);

        print_message("ClientHello extension case: %s\n", t->what);
        assert_int_equal(mmtls_tls_client_hello_parse(buf, n, &ch), t->rc);
        if (t->rc == 0) {
            assert_int_equal(ch.n_ext, 1);
            assert_int_equal(ch.ext_types[0], mmtls_be16(t->ext));
        }
    }
    /* "sni other type first" picked the later host_name */
    {
        size_t n = ch_build(buf, ch_ext_cases[3].ext, ch_ext_cases[3].len, true);
        assert_int_equal(mmtls_tls_client_hello_parse(buf, n, &ch), 0);
        assert_true(ch.has_sni);
        assert_int_equal(ch.sni.len, 1);
        assert_int_equal(ch.sni.p[0], 'a');
    }
}

static void test_ch_psk_last(void **state)
{
    /* unknown extension 0x7777, empty */
    static const uint8_t unk[] = {0x77, 0x77, 0x00, 0x00};
    const uint8_t *body = ch13_psk + 4;
    size_t len = sizeof(ch13_psk) - 4, off = hello_ext_off(body, false), n;
    size_t blk = mmtls_be16(body + off);
    struct mmtls_tls_client_hello ch;

    (void)state;
    /* in front: fine */
    n = ext_insert(body, len, off, 0, unk, sizeof(unk));
    assert_int_equal(mmtls_tls_client_hello_parse(scratch, n, &ch), 0);
    assert_int_equal(ch.n_ext, 14);
    assert_true(ch.has_psk);
    /* after pre_shared_key: RFC 8446 §4.2.11 violation */
    n = ext_insert(body, len, off, blk, unk, sizeof(unk));
    assert_int_equal(mmtls_tls_client_hello_parse(scratch, n, &ch), MMTLS_E_MALFORMED);
    /* a second pre_shared_key at the end is a duplicate and not last either */
    {
        size_t psk = ext_find(body, len, off, MMTLS_EXT_PRE_SHARED_KEY);
        assert_true(psk != 0);
        n = ext_insert(body, len, off, blk, body + psk, len - psk);
        assert_int_equal(mmtls_tls_client_hello_parse(scratch, n, &ch), MMTLS_E_MALFORMED);
    }
}

static void test_ch_duplicates(void **state)
{
    /* extended_master_secret twice */
    static const uint8_t two_ems[] = {0x00, 0x17, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00};
    const uint8_t *body = ch13_openssl + 4;
    size_t len = sizeof(ch13_openssl) - 4, off = hello_ext_off(body, false);
    struct mmtls_tls_client_hello ch;
    uint8_t buf[64];
    size_t n;

    (void)state;
    n = ch_build(buf, two_ems, sizeof(two_ems), true);
    assert_int_equal(mmtls_tls_client_hello_parse(buf, n, &ch), MMTLS_E_MALFORMED);
    /* every extension of a real hello, duplicated at the end */
    for (size_t p = off + 2; p < len; p += 4 + mmtls_be16(body + p + 2)) {
        size_t e = 4 + mmtls_be16(body + p + 2);
        n = ext_insert(body, len, off, mmtls_be16(body + off), body + p, e);
        assert_int_equal(mmtls_tls_client_hello_parse(scratch, n, &ch), MMTLS_E_MALFORMED);
    }
}

/* SNI longer than any fixed buffer, and an extensions block of exactly 2^16-1 bytes. */
static void test_ch_long_sni(void **state)
{
    static uint8_t ext[65535], buf[65600];
    struct mmtls_tls_client_hello ch;
    size_t name_len, n;

    (void)state;
    for (name_len = 300; name_len <= 65535 - 9; name_len = name_len == 300 ? 65535 - 9 : 65535) {
        /* server_name, list {host_name, name} */
        mmtls_put_be16(ext, 0);
        mmtls_put_be16(ext + 2, (uint16_t)(name_len + 5));
        mmtls_put_be16(ext + 4, (uint16_t)(name_len + 3));
        ext[6] = 0;
        mmtls_put_be16(ext + 7, (uint16_t)name_len);
        memset(ext + 9, 'a', name_len);
        n = ch_build(buf, ext, 9 + name_len, true);
        assert_int_equal(mmtls_tls_client_hello_parse(buf, n, &ch), 0);
        assert_true(ch.has_sni);
        assert_int_equal(ch.sni.len, name_len);
        assert_ptr_equal(ch.sni.p, buf + n - name_len);
        assert_int_equal(ch.extensions.len, 9 + name_len);
        /* one byte short of the name */
        assert_int_equal(mmtls_tls_client_hello_parse(buf, n - 1, &ch), MMTLS_E_MALFORMED);
    }
}

static void test_ch_max_exts(void **state)
{
    static uint8_t ext[4 * 66], buf[512];
    struct mmtls_tls_client_hello ch;
    size_t n;

    (void)state;
    /* 64 distinct empty unknown extensions 0x7700.. then one more */
    for (unsigned i = 0; i < 65; i++) {
        mmtls_put_be16(ext + 4 * i, (uint16_t)(0x7700 + i));
        mmtls_put_be16(ext + 4 * i + 2, 0);
    }
    n = ch_build(buf, ext, 4 * MMTLS_TLS_MAX_EXTS, true);
    assert_int_equal(mmtls_tls_client_hello_parse(buf, n, &ch), 0);
    assert_int_equal(ch.n_ext, MMTLS_TLS_MAX_EXTS);
    assert_int_equal(ch.ext_types[63], 0x7700 + 63);
    n = ch_build(buf, ext, 4 * (MMTLS_TLS_MAX_EXTS + 1), true);
    assert_int_equal(mmtls_tls_client_hello_parse(buf, n, &ch), MMTLS_E_MALFORMED);
}

static void test_ch_versions_grease(void **state)
{
    /* supported_versions {GREASE 0x7a7a, 1.3, 1.2} */
    static const uint8_t sv[] = {0x00, 0x2b, 0x00, 0x07, 0x06, 0x7a, 0x7a, 0x03, 0x04, 0x03, 0x03};
    /* supported_versions {GREASE 0xfafa} only */
    static const uint8_t sv_grease[] = {0x00, 0x2b, 0x00, 0x03, 0x02, 0xfa, 0xfa};
    struct mmtls_tls_client_hello ch;
    uint8_t buf[128];
    size_t n;

    (void)state;
    n = ch_build(buf, sv, sizeof(sv), true);
    assert_int_equal(mmtls_tls_client_hello_parse(buf, n, &ch), 0);
    assert_int_equal(ch.max_version, MMTLS_TLS_V13);
    assert_int_equal(ch.supported_versions.len, 6);
    n = ch_build(buf, sv_grease, sizeof(sv_grease), true);
    assert_int_equal(mmtls_tls_client_hello_parse(buf, n, &ch), 0);
    assert_int_equal(ch.max_version, MMTLS_TLS_V12); /* falls back to legacy_version */
}

static void test_ch_many_key_shares(void **state)
{
    /* 40 key shares {group 0x0100+i, key <1>} = 40 * 5 bytes */
    static uint8_t ext[6 + 40 * 5], buf[512];
    struct mmtls_tls_client_hello ch;
    size_t n;

    (void)state;
    mmtls_put_be16(ext, MMTLS_EXT_KEY_SHARE);
    mmtls_put_be16(ext + 2, 2 + 40 * 5);
    mmtls_put_be16(ext + 4, 40 * 5);
    for (unsigned i = 0; i < 40; i++) {
        uint8_t *e = ext + 6 + 5 * i;
        mmtls_put_be16(e, (uint16_t)(0x0100 + i));
        mmtls_put_be16(e + 2, 1);
        e[4] = 0x42;
    }
    n = ch_build(buf, ext, sizeof(ext), true);
    assert_int_equal(mmtls_tls_client_hello_parse(buf, n, &ch), 0);
    assert_int_equal(ch.n_key_share, MMTLS_TLS_MAX_GROUPS);
    assert_int_equal(ch.key_share_groups[MMTLS_TLS_MAX_GROUPS - 1], 0x0100 + 31);
}

/* ------------------------------------------------------------------------------------------ */
/* ServerHello and HelloRetryRequest                                                           */

static void test_sh_real(void **state)
{
    struct mmtls_tls_server_hello sh;

    (void)state;
    assert_int_equal(mmtls_tls_server_hello_parse(BODY(sh13_openssl), &sh), 0);
    assert_false(sh.is_hrr);
    assert_int_equal(sh.legacy_version, 0x0303);
    assert_int_equal(sh.selected_version, MMTLS_TLS_V13);
    assert_int_equal(mmtls_tls_server_hello_version(&sh), MMTLS_TLS_V13);
    assert_int_equal(sh.cipher_suite, 0x1302);
    assert_int_equal(sh.compression, 0);
    assert_int_equal(sh.key_share_group, 0x001d);
    assert_int_equal(sh.session_id.len, 32);
    assert_memory_equal(sh.random, sh13_openssl + 6, 32);
    assert_int_equal(sh.n_ext, 2);
    assert_int_equal(sh.ext_types[0], MMTLS_EXT_SUPPORTED_VERSIONS);
    assert_int_equal(sh.ext_types[1], MMTLS_EXT_KEY_SHARE);
    assert_false(sh.psk_selected);

    assert_int_equal(mmtls_tls_server_hello_parse(BODY(sh13_hrr), &sh), 0);
    assert_true(sh.is_hrr);
    assert_int_equal(sh.key_share_group, 0x0017); /* P-256 requested */
    assert_int_equal(mmtls_tls_server_hello_version(&sh), MMTLS_TLS_V13);

    assert_int_equal(mmtls_tls_server_hello_parse(BODY(sh13_psk), &sh), 0);
    assert_true(sh.psk_selected);
    assert_int_equal(sh.n_ext, 3);

    assert_int_equal(mmtls_tls_server_hello_parse(BODY(sh12_openssl), &sh), 0);
    assert_int_equal(sh.selected_version, 0);
    assert_int_equal(mmtls_tls_server_hello_version(&sh), MMTLS_TLS_V12);
    assert_int_equal(sh.cipher_suite, 0xc02c);
    assert_int_equal(sh.alpn.len, 8);
    assert_memory_equal(sh.alpn.p, "http/1.1", 8);
    assert_true(sh.extended_master_secret);
    assert_false(sh.encrypt_then_mac);
    assert_true(sh.session_ticket);
    assert_int_equal(sh.session_id.len, 0);

    assert_int_equal(mmtls_tls_server_hello_parse(BODY(sh12_etm), &sh), 0);
    assert_true(sh.encrypt_then_mac);
    assert_true(sh.extended_master_secret);
    assert_int_equal(sh.cipher_suite, 0xc009);
    assert_int_equal(sh.alpn.len, 0);
}

static void test_sh_battery(void **state)
{
    static const struct {
        const uint8_t *m;
        size_t len;
    } msgs[] = {
        {sh13_openssl, sizeof(sh13_openssl)}, {sh13_hrr, sizeof(sh13_hrr)},
        {sh13_psk, sizeof(sh13_psk)},         {sh12_openssl, sizeof(sh12_openssl)},
        {sh12_etm, sizeof(sh12_etm)},
    };

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(msgs); i++) {
        const uint8_t *body = msgs[i].m + 4;
        size_t len = msgs[i].len - 4;
        battery(body, len, sh_parse, hello_ext_off(body, true), false);
    }
}

static const struct ext_case sh_ext_cases[] = {
    /* supported_versions with 2 versions (a ClientHello list) */
    EXT("versions list", MMTLS_E_MALFORMED, 0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04),
    /* key_share without key_exchange in a ServerHello */
    EXT("key_share group only", MMTLS_E_MALFORMED, 0x00, 0x33, 0x00, 0x02, 0x00, 0x1d),
    /* key_share with an empty key */
    EXT("key_share empty key", MMTLS_E_MALFORMED, 0x00, 0x33, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x00),
    /* pre_shared_key of 3 bytes */
    EXT("psk long", MMTLS_E_MALFORMED, 0x00, 0x29, 0x00, 0x03, 0x00, 0x00, 0x00),
    /* alpn with two names */
    EXT("alpn two", MMTLS_E_MALFORMED, 0x00, 0x10, 0x00, 0x07, 0x00, 0x05, 0x02, 'h', '2', 0x01,
        'x'),
    /* alpn "h2" */
    EXT("alpn one", 0, 0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, 'h', '2'),
    /* session_ticket with data */
    EXT("ticket body", MMTLS_E_MALFORMED, 0x00, 0x23, 0x00, 0x01, 0x00),
    /* cookie (HRR) with data: skipped */
    EXT("cookie", 0, 0x00, 0x2c, 0x00, 0x03, 0x00, 0x01, 0xab),
};

static void test_sh_ext_table(void **state)
{
    struct mmtls_tls_server_hello sh;
    uint8_t buf[128];
    /* legacy 1.2, random 0x22.., session_id <0>, suite 0x1301, compression 0 */
    size_t n;

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(sh_ext_cases); i++) {
        const struct ext_case *t = &sh_ext_cases[i];

        print_message("ServerHello extension case: %s\n", t->what);
        mmtls_put_be16(buf, 0x0303);
        memset(buf + 2, 0x22, 32);
        buf[34] = 0;
        mmtls_put_be16(buf + 35, 0x1301);
        buf[37] = 0;
        mmtls_put_be16(buf + 38, (uint16_t)t->len);
        memcpy(buf + 40, t->ext, t->len);
        n = 40 + t->len;
        assert_int_equal(mmtls_tls_server_hello_parse(buf, n, &sh), t->rc);
    }
    /* no extensions at all (TLS 1.0 style) */
    assert_int_equal(mmtls_tls_server_hello_parse(buf, 38, &sh), 0);
    assert_int_equal(mmtls_tls_server_hello_version(&sh), MMTLS_TLS_V12);
    assert_int_equal(sh.n_ext, 0);
    /* session_id of 33 */
    buf[34] = 33;
    assert_int_equal(mmtls_tls_server_hello_parse(buf, 38 + 33, &sh), MMTLS_E_MALFORMED);
}

/* ------------------------------------------------------------------------------------------ */
/* EncryptedExtensions                                                                         */

static const struct ext_case ee_cases[] = {
    /* alpn with two names */
    EXT("alpn two", MMTLS_E_MALFORMED, 0x00, 0x10, 0x00, 0x07, 0x00, 0x05, 0x02, 'h', '2', 0x01,
        'x'),
    /* early_data with a body (max_early_data belongs to NewSessionTicket) */
    EXT("early_data body", MMTLS_E_MALFORMED, 0x00, 0x2a, 0x00, 0x04, 0, 0, 0x40, 0),
    /* early_data twice */
    EXT("early_data dup", MMTLS_E_MALFORMED, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00),
    /* server_name (empty, RFC 6066 §3) and supported_groups: skipped */
    EXT("skipped", 0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d),
};

static void test_ee(void **state)
{
    struct mmtls_tls_encrypted_extensions ee;
    uint8_t buf[64];

    (void)state;
    assert_int_equal(mmtls_tls_encrypted_extensions_parse(BODY(ee_alpn), &ee), 0);
    assert_int_equal(ee.alpn.len, 2);
    assert_memory_equal(ee.alpn.p, "h2", 2);
    assert_false(ee.early_data);
    assert_int_equal(mmtls_tls_encrypted_extensions_parse(BODY(ee_alpn_early), &ee), 0);
    assert_int_equal(ee.alpn.len, 2);
    assert_true(ee.early_data);
    assert_int_equal(mmtls_tls_encrypted_extensions_parse(BODY(ee_empty), &ee), 0);
    assert_int_equal(ee.alpn.len, 0);
    assert_false(ee.early_data);

    battery(BODY(ee_alpn), ee_parse, 0, false);
    battery(BODY(ee_alpn_early), ee_parse, 0, false);
    battery(BODY(ee_empty), ee_parse, 0, false);

    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(ee_cases); i++) {
        print_message("EncryptedExtensions case: %s\n", ee_cases[i].what);
        mmtls_put_be16(buf, (uint16_t)ee_cases[i].len);
        memcpy(buf + 2, ee_cases[i].ext, ee_cases[i].len);
        assert_int_equal(mmtls_tls_encrypted_extensions_parse(buf, 2 + ee_cases[i].len, &ee),
                         ee_cases[i].rc);
    }
    /* empty body: the extensions vector is mandatory */
    assert_int_equal(mmtls_tls_encrypted_extensions_parse(buf, 0, &ee), MMTLS_E_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ch_real),
        cmocka_unit_test(test_ch_details),
        cmocka_unit_test(test_ch_no_extensions),
        cmocka_unit_test(test_ch_fixed_fields),
        cmocka_unit_test(test_ch_ext_table),
        cmocka_unit_test(test_ch_psk_last),
        cmocka_unit_test(test_ch_duplicates),
        cmocka_unit_test(test_ch_long_sni),
        cmocka_unit_test(test_ch_max_exts),
        cmocka_unit_test(test_ch_versions_grease),
        cmocka_unit_test(test_ch_many_key_shares),
        cmocka_unit_test(test_sh_real),
        cmocka_unit_test(test_sh_battery),
        cmocka_unit_test(test_sh_ext_table),
        cmocka_unit_test(test_ee),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
