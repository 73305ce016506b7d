/* libFuzzer target: TLS handshake message parsers and the handshake reassembler.
 *
 * Input: selector byte, then the message body.
 *   0 ClientHello, 1 ServerHello, 2 EncryptedExtensions, 3 Certificate (TLS <= 1.2),
 *   4 Certificate (TLS 1.3) and the leaf's names, 5 KeyUpdate,
 *   6 reassembler: byte 1 = chunk size, byte 2 = max_msg / 16, then a handshake stream; every
 *     complete message is checked against the input and handed to its parser.
 * Every output slice must lie inside the input (abort otherwise).
 */
#include <stdlib.h>

#include "tls/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *in_lo, *in_hi; /* bounds of the current body, for slice checks */

static void check_slice(struct mmtls_slice s)
{
    if (s.len == 0) {
        return;
    }
    if (s.p < in_lo || s.p > in_hi || s.len > (size_t)(in_hi - s.p)) {
        abort();
    }
}

/* JA3 / JA4 of a parsed ClientHello: fixed-length digests, NUL-terminated outputs, a
 * truncated string is a prefix of the whole one, and JA4_r starts with JA4_a. */
static void fingerprints(const struct mmtls_tls_client_hello *ch)
{
    static char big[1 << 19]; /* > any JA3 string: two lists of 2^15 values, 6 chars each */
    char small[40], hash[MMTLS_TLS_JA3_HASH_LEN + 1], ja4[MMTLS_TLS_JA4_LEN + 1];
    size_t n_big = 0, n_small = 0;
    int rc;

    if (mmtls_tls_ja3(ch, big, sizeof(big), &n_big, hash) != 0 ||
        strlen(hash) != MMTLS_TLS_JA3_HASH_LEN || n_big >= sizeof(big) || strlen(big) != n_big ||
        mmtls_tls_ja3(ch, small, sizeof(small), &n_small, hash) != 0 || n_small != n_big ||
        strlen(small) != MMTLS_MIN(n_big, sizeof(small) - 1) ||
        memcmp(small, big, strlen(small)) != 0) {
        abort();
    }
    rc = mmtls_tls_ja4(ch, ja4, big, sizeof(big), &n_big);
    if (rc == MMTLS_E_LIMIT) {
        if (ja4[0] != '\0' || big[0] != '\0' || n_big != 0) {
            abort();
        }
        return;
    }
    if (rc != 0 || strlen(ja4) != MMTLS_TLS_JA4_LEN || n_big >= sizeof(big) ||
        strlen(big) != n_big || memcmp(ja4, big, 11) != 0 || ja4[10] != '_' || ja4[23] != '_') {
        abort();
    }
}

static void parse_ch(const uint8_t *b, size_t len)
{
    struct mmtls_tls_client_hello ch;

    if (mmtls_tls_client_hello_parse(b, len, &ch) != 0) {
        return;
    }
    check_slice(ch.session_id);
    check_slice(ch.cipher_suites);
    check_slice(ch.compression);
    check_slice(ch.extensions);
    check_slice(ch.sni);
    check_slice(ch.alpn);
    check_slice(ch.supported_versions);
    check_slice(ch.supported_groups);
    check_slice(ch.sig_algs);
    check_slice(ch.ec_point_formats);
    if (ch.n_ext > MMTLS_TLS_MAX_EXTS || ch.n_key_share > MMTLS_TLS_MAX_GROUPS ||
        ch.session_id.len > 32 || ch.cipher_suites.len % 2 != 0 || ch.compression.len == 0 ||
        (ch.has_sni && ch.sni.len == 0)) {
        abort();
    }
    /* no duplicate extension types */
    for (unsigned i = 0; i < ch.n_ext; i++) {
        for (unsigned j = i + 1; j < ch.n_ext; j++) {
            if (ch.ext_types[i] == ch.ext_types[j]) {
                abort();
            }
        }
    }
    /* pre_shared_key, when present, is last */
    if (ch.has_psk && ch.ext_types[ch.n_ext - 1] != MMTLS_EXT_PRE_SHARED_KEY) {
        abort();
    }
    fingerprints(&ch);
}

static void parse_sh(const uint8_t *b, size_t len)
{
    struct mmtls_tls_server_hello sh;

    if (mmtls_tls_server_hello_parse(b, len, &sh) != 0) {
        return;
    }
    check_slice(sh.session_id);
    check_slice(sh.alpn);
    if (sh.n_ext > MMTLS_TLS_MAX_EXTS || sh.session_id.len > 32) {
        abort();
    }
    (void)mmtls_tls_server_hello_version(&sh);
}

static void parse_ee(const uint8_t *b, size_t len)
{
    struct mmtls_tls_encrypted_extensions ee;

    if (mmtls_tls_encrypted_extensions_parse(b, len, &ee) == 0) {
        check_slice(ee.alpn);
    }
}

static void parse_cert(const uint8_t *b, size_t len, bool tls13)
{
    struct mmtls_tls_certificate c;
    char subject[64], issuer[256];

    if (mmtls_tls_certificate_parse(b, len, tls13, &c) != 0) {
        return;
    }
    check_slice(c.leaf);
    if ((c.count == 0) != (c.leaf.len == 0)) {
        abort();
    }
    if (c.count > 0 && mmtls_tls_cert_names(c.leaf.p, c.leaf.len, subject, sizeof(subject), issuer,
                                            sizeof(issuer)) == 0) {
        if (memchr(subject, 0, sizeof(subject)) == NULL ||
            memchr(issuer, 0, sizeof(issuer)) == NULL) {
            abort();
        }
    }
}

static void parse_key_update(const uint8_t *b, size_t len)
{
    uint8_t req;

    if (mmtls_tls_key_update_parse(b, len, &req) == 0 && req > 1) {
        abort();
    }
}

static void parse_by_type(uint8_t type, const uint8_t *b, size_t len)
{
    const uint8_t *lo = in_lo, *hi = in_hi;

    in_lo = b;
    in_hi = b + len;
    switch (type) {
    case MMTLS_HS_CLIENT_HELLO: parse_ch(b, len); break;
    case MMTLS_HS_SERVER_HELLO: parse_sh(b, len); break;
    case MMTLS_HS_ENCRYPTED_EXTENSIONS: parse_ee(b, len); break;
    case MMTLS_HS_CERTIFICATE:
        parse_cert(b, len, true);
        parse_cert(b, len, false);
        break;
    case MMTLS_HS_KEY_UPDATE: parse_key_update(b, len); break;
    default: break;
    }
    in_lo = lo;
    in_hi = hi;
}

/* Feeds the stream in chunks, draining after each feed, and checks every message against the
 * input: the reassembler must hand back exactly the input's framing. */
static void reasm(const uint8_t *s, size_t len, size_t chunk, size_t max_msg)
{
    struct mmtls_tls_hs_reasm r;
    size_t off = 0, expect = 0; /* next message's offset in s */
    int rc;

    mmtls_tls_hs_reasm_init(&r, max_msg);
    while (off < len) {
        size_t c = MMTLS_MIN(chunk, len - off);
        struct mmtls_slice body;
        uint8_t type;

        rc = mmtls_tls_hs_reasm_feed(&r, s + off, c);
        off += c;
        if (rc == 0) {
            while ((rc = mmtls_tls_hs_reasm_next(&r, &type, &body)) == 0) {
                size_t mlen;

                if (expect + 4 > off) {
                    abort();
                }
                mlen = (size_t)s[expect + 1] << 16 | (size_t)s[expect + 2] << 8 | s[expect + 3];
                if (type != s[expect] || body.len != mlen || mlen > max_msg ||
                    mlen > off - expect - 4 || memcmp(body.p, s + expect + 4, mlen) != 0) {
                    abort();
                }
                parse_by_type(type, body.p, body.len);
                expect += 4 + mlen;
            }
        }
        if (rc == MMTLS_E_LIMIT) {
            /* only for a header that really declares too much */
            size_t mlen;

            if (expect + 4 > off) {
                abort();
            }
            mlen = (size_t)s[expect + 1] << 16 | (size_t)s[expect + 2] << 8 | s[expect + 3];
            if (mlen <= max_msg) {
                abort();
            }
            break;
        }
        if (rc != MMTLS_AGAIN) {
            abort(); /* MEMCAP cannot happen: we always drain */
        }
        if (mmtls_tls_hs_reasm_empty(&r) != (expect == off)) {
            abort();
        }
    }
    mmtls_tls_hs_reasm_fini(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *b;
    size_t len;

    if (size < 1) {
        return 0;
    }
    b = data + 1;
    len = size - 1;
    in_lo = b;
    in_hi = b + len;
    switch (data[0] % 7) {
    case 0: parse_ch(b, len); break;
    case 1: parse_sh(b, len); break;
    case 2: parse_ee(b, len); break;
    case 3: parse_cert(b, len, false); break;
    case 4: parse_cert(b, len, true); break;
    case 5: parse_key_update(b, len); break;
    case 6:
        if (len >= 2) {
            reasm(b + 2, len - 2, (size_t)b[0] + 1, (size_t)b[1] * 16);
        }
        break;
    }
    return 0;
}
