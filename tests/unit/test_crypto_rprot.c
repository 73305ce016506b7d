/* Unit tests for crypto record protection: seal -> open round trips for every suite in the
 * table and every version it allows, tampering with every byte, truncation at every length,
 * TLS 1.3 padding, TLS 1.0 IV chaining across failures, in-place opening, argument checks.
 * (Known-answer tests against published and independently generated records are in
 * test_crypto.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "crypto/crypto.h"

#define REC_MAX (5 + 16384 + 2048)
#define FRAG_MAX (16384 + 2048) /* RFC 5246 §6.2.3: the largest TLSCiphertext fragment */

struct cfg {
    uint16_t id;
    uint16_t version; /* 0x0304 for TLS 1.3 suites */
    bool etm;
};

static bool is_cbc(const struct mmtls_suite *s)
{
    return s->kind == MMTLS_CIPHER_AES_CBC || s->kind == MMTLS_CIPHER_3DES_CBC;
}

/* Deterministic keys derived from the suite id, so that a second call yields a peer object
 * with the same keys (one seals, the other opens).  `half` picks the key-block half used. */
static int make_rprot_half(const struct cfg *c, int half, struct mmtls_rprot **rp)
{
    const struct mmtls_suite *s = mmtls_crypto_suite(c->id);
    struct mmtls_key_block kb;
    struct mmtls_secret sec;
    bool cbc;

    assert_non_null(s);
    if (s->tls13) {
        memset(&sec, 0, sizeof(sec));
        sec.len = (uint8_t)mmtls_md_size(s->prf_md);
        for (size_t i = 0; i < sec.len; i++) {
            sec.b[i] = (uint8_t)(c->id + 3 * i);
        }
        return mmtls_rprot_new_tls13(rp, s, &sec);
    }
    cbc = is_cbc(s);
    memset(&kb, 0, sizeof(kb));
    kb.key_len = s->key_len;
    kb.mac_len = cbc ? (uint8_t)mmtls_md_size(s->mac_md) : 0;
    kb.iv_len = (!cbc || c->version == 0x0301) ? s->fixed_iv_len : 0;
    for (int h = 0; h < 2; h++) {
        for (size_t i = 0; i < sizeof(kb.key[0]); i++) {
            kb.key[h][i] = (uint8_t)(c->id + 7 * i + 101 * h);
        }
        for (size_t i = 0; i < sizeof(kb.mac[0]); i++) {
            kb.mac[h][i] = (uint8_t)(c->id * 5 + i + 53 * h);
        }
        for (size_t i = 0; i < sizeof(kb.iv[0]); i++) {
            kb.iv[h][i] = (uint8_t)(0xA5 ^ (i + 31 * h));
        }
    }
    return mmtls_rprot_new_tls12(rp, s, c->version, c->etm, &kb, half);
}

static struct mmtls_rprot *make_rprot(const struct cfg *c)
{
    struct mmtls_rprot *rp = NULL;

    assert_int_equal(make_rprot_half(c, 1, &rp), 0);
    assert_non_null(rp);
    return rp;
}

static uint16_t rec_version(const struct cfg *c)
{
    return c->version == 0x0304 ? 0x0303 : c->version;
}

static void fill_plain(uint8_t *p, size_t len, unsigned salt)
{
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(i * 31 + salt);
    }
}

/* Seals plain into rec; returns the record length. */
static size_t seal(struct mmtls_rprot *rp, const struct cfg *c, uint64_t seq, uint8_t type,
                   const uint8_t *plain, size_t plen, size_t pad, uint8_t *rec, size_t cap)
{
    size_t n = 0;

    assert_int_equal(
        mmtls_rprot_seal(rp, seq, type, rec_version(c), plain, plen, pad, rec, cap, &n), 0);
    assert_true(n >= 5);
    assert_int_equal(mmtls_be16(rec + 3), n - 5);
    assert_int_equal(rec[0], c->version == 0x0304 ? 23 : type);
    assert_int_equal(mmtls_be16(rec + 1), rec_version(c));
    return n;
}

static int open_rec(struct mmtls_rprot *rp, uint64_t seq, const uint8_t *rec, size_t len,
                    uint8_t *out, size_t *olen, uint8_t *type)
{
    return mmtls_rprot_open(rp, seq, rec, rec + 5, len - 5, out, olen, type);
}

/* ------------------------------------------------------------------------------------------ */

/* Which versions a suite is valid with (RFC 5246 §6.2.3.3, RFC 5289 §3). */
static bool version_allowed(const struct mmtls_suite *s, uint16_t v)
{
    if (is_cbc(s)) {
        return s->mac_md == MMTLS_MD_SHA1 || v == 0x0303;
    }
    return v == 0x0303;
}

static void roundtrip_cfg(const struct cfg *c, uint8_t *plain, uint8_t *rec, uint8_t *out)
{
    static const size_t sizes[] = {0, 1, 15, 16, 17, 100, 16384};
    const struct mmtls_suite *s = mmtls_crypto_suite(c->id);
    struct mmtls_rprot *tx = make_rprot(c), *rx = make_rprot(c);
    uint64_t seq = c->id % 3 == 0 ? 0 : 0xFFFFFFFFFFFFFF00ull; /* also near the top */
    uint8_t type;
    size_t n, olen;

    for (size_t k = 0; k < 2 * MMTLS_ARRAY_SIZE(sizes); k++, seq++) {
        size_t plen = sizes[k % MMTLS_ARRAY_SIZE(sizes)];
        size_t pad = (s->tls13 && k >= MMTLS_ARRAY_SIZE(sizes)) ? 7 : 0;
        uint8_t want_type = (uint8_t)(k % 2 ? 23 : 22);

        if (plen + pad > 16384) {
            pad = 0;
        }
        fill_plain(plain, plen, (unsigned)k);
        n = seal(tx, c, seq, want_type, plain, plen, pad, rec, REC_MAX);
        /* the overhead bound is exact for AEAD (no padding) and an upper bound for CBC */
        if (is_cbc(s)) {
            assert_true(mmtls_rprot_max_plain(rx, n - 5) >= plen);
            assert_true(mmtls_rprot_max_plain(rx, n - 5) < plen + 256);
        } else {
            assert_int_equal(mmtls_rprot_max_plain(rx, n - 5), plen + pad);
        }
        type = 0;
        olen = SIZE_MAX;
        if (k % 2 == 0) {
            /* out of place */
            assert_int_equal(open_rec(rx, seq, rec, n, out, &olen, &type), 0);
            assert_int_equal(olen, plen);
            assert_memory_equal(out, plain, plen);
        } else {
            /* in place: out == frag */
            assert_int_equal(mmtls_rprot_open(rx, seq, rec, rec + 5, n - 5, rec + 5, &olen, &type),
                             0);
            assert_int_equal(olen, plen);
            assert_memory_equal(rec + 5, plain, plen);
        }
        assert_int_equal(type, want_type);
    }
    mmtls_rprot_free(tx);
    mmtls_rprot_free(rx);
}

static void test_roundtrip_all(void **state)
{
    uint8_t *plain = malloc(16384), *rec = malloc(REC_MAX), *out = malloc(REC_MAX);
    unsigned suites = 0, combos = 0;

    (void)state;
    assert_non_null(plain);
    assert_non_null(rec);
    assert_non_null(out);
    for (uint32_t id = 0; id <= 0xFFFF; id++) {
        const struct mmtls_suite *s = mmtls_crypto_suite((uint16_t)id);

        if (s == NULL) {
            continue;
        }
        suites++;
        if (s->tls13) {
            struct cfg c = {(uint16_t)id, 0x0304, false};
            roundtrip_cfg(&c, plain, rec, out);
            combos++;
            continue;
        }
        for (uint16_t v = 0x0300; v <= 0x0304; v++) {
            for (int etm = 0; etm <= 1; etm++) {
                struct cfg c = {(uint16_t)id, v, etm != 0};
                struct mmtls_rprot *rp = NULL;
                bool ok = v >= 0x0301 && v <= 0x0303 && version_allowed(s, v);
                int rc = make_rprot_half(&c, 1, &rp);

                if (!ok) {
                    /* the key block is cut for the version; an impossible version is refused
                     * before it is looked at */
                    assert_int_equal(rc, MMTLS_E_UNSUPPORTED);
                    assert_null(rp);
                    continue;
                }
                assert_int_equal(rc, 0);
                mmtls_rprot_free(rp);
                if (etm && !is_cbc(s)) {
                    continue; /* RFC 7366 does not apply to AEAD: nothing new to test */
                }
                roundtrip_cfg(&c, plain, rec, out);
                combos++;
            }
        }
    }
    assert_int_equal(suites, 70);
    assert_true(combos > 100);
    free(plain);
    free(rec);
    free(out);
}

/* ------------------------------------------------------------------------------------------ */
/* One record per kind of protection, for the adversarial tests.                               */

static const struct cfg kinds[] = {
    {0x1301, 0x0304, false}, /* TLS 1.3 AES-128-GCM */
    {0x1302, 0x0304, false}, /* TLS 1.3 AES-256-GCM */
    {0x1303, 0x0304, false}, /* TLS 1.3 ChaCha20-Poly1305 */
    {0x1304, 0x0304, false}, /* TLS 1.3 AES-128-CCM */
    {0x1305, 0x0304, false}, /* TLS 1.3 AES-128-CCM-8 */
    {0xC02F, 0x0303, false}, /* TLS 1.2 AES-128-GCM */
    {0xC09D, 0x0303, false}, /* TLS 1.2 AES-256-CCM */
    {0xC0AE, 0x0303, false}, /* TLS 1.2 AES-128-CCM-8 */
    {0xCCA8, 0x0303, false}, /* TLS 1.2 ChaCha20-Poly1305 */
    {0x002F, 0x0303, false}, /* TLS 1.2 CBC HMAC-SHA1, explicit IV */
    {0xC028, 0x0303, false}, /* TLS 1.2 CBC HMAC-SHA384 */
    {0x002F, 0x0302, false}, /* TLS 1.1 CBC */
    {0x002F, 0x0301, false}, /* TLS 1.0 CBC, implicit IV */
    {0xC027, 0x0303, true},  /* TLS 1.2 CBC encrypt-then-MAC */
    {0x0035, 0x0301, true},  /* TLS 1.0 CBC encrypt-then-MAC */
    {0x000A, 0x0301, false}, /* TLS 1.0 3DES */
    {0xC012, 0x0303, true},  /* TLS 1.2 3DES encrypt-then-MAC */
};

static void test_tamper_every_byte(void **state)
{
    uint8_t plain[40], rec[256], copy[256], out[256], type;
    size_t n, olen;

    (void)state;
    fill_plain(plain, sizeof(plain), 9);
    for (size_t k = 0; k < MMTLS_ARRAY_SIZE(kinds); k++) {
        const struct cfg *c = &kinds[k];
        struct mmtls_rprot *tx = make_rprot(c), *rx = make_rprot(c);
        uint64_t seq = 1;

        n = seal(tx, c, seq, 23, plain, sizeof(plain), 0, rec, sizeof(rec));
        for (size_t i = 0; i < n; i++) {
            for (int m = 0; m < 2; m++) {
                memcpy(copy, rec, n);
                copy[i] ^= (uint8_t)(m == 0 ? 0x01 : 0x80);
                if (i >= 3 && i < 5 && c->version != 0x0304) {
                    /* The TLS 1.2 MAC/AAD carries the plaintext length, not the header's: a
                     * changed header length is the framing layer's business.  On a fresh
                     * object, so that TLS 1.0 chaining state stays untouched in rx. */
                    struct mmtls_rprot *fresh = make_rprot(c);
                    assert_int_equal(open_rec(fresh, seq, copy, n, out, &olen, &type), 0);
                    mmtls_rprot_free(fresh);
                    continue;
                }
                assert_int_equal(open_rec(rx, seq, copy, n, out, &olen, &type), MMTLS_E_AUTH);
            }
        }
        /* wrong sequence number */
        assert_int_equal(open_rec(rx, seq + 1, rec, n, out, &olen, &type), MMTLS_E_AUTH);
        assert_int_equal(open_rec(rx, seq - 1, rec, n, out, &olen, &type), MMTLS_E_AUTH);
        /* all those failures left rx usable: the genuine record still opens */
        assert_int_equal(open_rec(rx, seq, rec, n, out, &olen, &type), 0);
        assert_int_equal(olen, sizeof(plain));
        assert_memory_equal(out, plain, sizeof(plain));
        mmtls_rprot_free(tx);
        mmtls_rprot_free(rx);
    }
}

static void test_truncated_and_overlong(void **state)
{
    uint8_t plain[40], rec[REC_MAX], out[REC_MAX], type;
    size_t n, olen;
    int rc;

    (void)state;
    fill_plain(plain, sizeof(plain), 3);
    for (size_t k = 0; k < MMTLS_ARRAY_SIZE(kinds); k++) {
        const struct cfg *c = &kinds[k];
        struct mmtls_rprot *tx = make_rprot(c), *rx = make_rprot(c);

        n = seal(tx, c, 0, 23, plain, sizeof(plain), 0, rec, sizeof(rec));
        /* every shorter fragment, including empty; the header keeps its length, as a caller
         * handing a short buffer would */
        for (size_t len = 0; len < n - 5; len++) {
            rc = mmtls_rprot_open(rx, 0, rec, rec + 5, len, out, &olen, &type);
            assert_true(rc == MMTLS_E_MALFORMED || rc == MMTLS_E_AUTH);
            assert_int_equal(mmtls_rprot_max_plain(rx, len) <= len, true);
        }
        /* trailing garbage after the record */
        memset(rec + n, 0x5a, 64);
        for (size_t extra = 1; extra <= 64; extra++) {
            rc = mmtls_rprot_open(rx, 0, rec, rec + 5, n - 5 + extra, out, &olen, &type);
            assert_true(rc == MMTLS_E_MALFORMED || rc == MMTLS_E_AUTH);
        }
        /* above the protocol maximum */
        rc = mmtls_rprot_open(rx, 0, rec, rec + 5, FRAG_MAX + 1, out, &olen, &type);
        assert_int_equal(rc, MMTLS_E_MALFORMED);
        /* the minimum-size records of the suite still open */
        assert_int_equal(open_rec(rx, 0, rec, n, out, &olen, &type), 0);
        n = seal(tx, c, 1, 21, plain, 0, 0, rec, sizeof(rec));
        assert_int_equal(open_rec(rx, 1, rec, n, out, &olen, &type), 0);
        assert_int_equal(olen, 0);
        assert_int_equal(type, 21);
        mmtls_rprot_free(tx);
        mmtls_rprot_free(rx);
    }
}

/* The largest legal records open; the largest fragment length is accepted by open. */
static void test_max_sizes(void **state)
{
    uint8_t *plain = malloc(16384), *rec = malloc(REC_MAX), *out = malloc(REC_MAX), type;
    size_t n, olen;

    (void)state;
    assert_non_null(plain);
    assert_non_null(rec);
    assert_non_null(out);
    fill_plain(plain, 16384, 1);
    for (size_t k = 0; k < MMTLS_ARRAY_SIZE(kinds); k++) {
        const struct cfg *c = &kinds[k];
        struct mmtls_rprot *tx = make_rprot(c), *rx = make_rprot(c);

        n = seal(tx, c, 0, 23, plain, 16384, 0, rec, REC_MAX);
        assert_true(n - 5 <= FRAG_MAX);
        assert_int_equal(open_rec(rx, 0, rec, n, out, &olen, &type), 0);
        assert_int_equal(olen, 16384);
        assert_memory_equal(out, plain, 16384);
        /* over the maximum is refused by seal (caller error) */
        assert_int_equal(
            mmtls_rprot_seal(tx, 1, 23, rec_version(c), plain, 16385, 0, rec, REC_MAX, &n),
            MMTLS_E_INVAL);
        mmtls_rprot_free(tx);
        mmtls_rprot_free(rx);
    }
    free(plain);
    free(rec);
    free(out);
}

/* ------------------------------------------------------------------------------------------ */

static void test_tls13_padding(void **state)
{
    static const size_t pads[] = {0, 1, 100, 16384 - 5};
    static const uint8_t zeros_inside[] = {'a', 0, 'b', 0, 0}; /* content may end in zeros */
    uint8_t *rec = malloc(REC_MAX), out[REC_MAX], type;
    size_t n, olen;

    (void)state;
    assert_non_null(rec);
    for (size_t k = 0; k < 5; k++) { /* the five TLS 1.3 suites lead kinds[] */
        const struct cfg *c = &kinds[k];
        struct mmtls_rprot *tx = make_rprot(c), *rx = make_rprot(c);
        uint64_t seq = 0;

        assert_int_equal(c->version, 0x0304);
        for (size_t i = 0; i < MMTLS_ARRAY_SIZE(pads); i++, seq++) {
            n = seal(tx, c, seq, 22, zeros_inside, sizeof(zeros_inside), pads[i], rec, REC_MAX);
            assert_int_equal(n, 5 + sizeof(zeros_inside) + 1 + pads[i] +
                                    mmtls_crypto_suite(c->id)->tag_len);
            assert_int_equal(open_rec(rx, seq, rec, n, out, &olen, &type), 0);
            assert_int_equal(type, 22);
            assert_int_equal(olen, sizeof(zeros_inside));
            assert_memory_equal(out, zeros_inside, sizeof(zeros_inside));
        }
        /* an empty record of padding only */
        n = seal(tx, c, seq, 23, NULL, 0, 16384, rec, REC_MAX);
        assert_int_equal(open_rec(rx, seq, rec, n, out, &olen, &type), 0);
        assert_int_equal(olen, 0);
        assert_int_equal(type, 23);
        seq++;
        /* RFC 8446 §5.4: an inner plaintext of zeros only has no content type */
        for (size_t i = 0; i < 3; i++, seq++) {
            static const uint8_t z[4] = {0};
            n = seal(tx, c, seq, 0, z, i, i * 3, rec, REC_MAX);
            assert_int_equal(open_rec(rx, seq, rec, n, out, &olen, &type), MMTLS_E_MALFORMED);
        }
        /* inner plaintext over 2^14 + 1 is refused by seal */
        assert_int_equal(
            mmtls_rprot_seal(tx, seq, 23, 0x0303, zeros_inside, 5, 16380, rec, REC_MAX, &n),
            MMTLS_E_INVAL);
        mmtls_rprot_free(tx);
        mmtls_rprot_free(rx);
    }
    free(rec);
}

/* TLS 1.0: each record's IV is the previous record's last ciphertext block (RFC 2246 §6.2.3.2);
 * failed opens in the middle of the chain must not move it. */
static void test_tls10_chain(void **state)
{
    static const struct cfg chains[] = {
        {0x002F, 0x0301, false},
        {0x0035, 0x0301, true},
        {0x000A, 0x0301, false},
    };
    uint8_t plain[5][64], rec[5][256], copy[256], out[256], type;
    size_t n[5], olen;

    (void)state;
    for (size_t k = 0; k < MMTLS_ARRAY_SIZE(chains); k++) {
        const struct cfg *c = &chains[k];
        struct mmtls_rprot *tx = make_rprot(c), *rx = make_rprot(c), *rx2 = make_rprot(c);

        for (size_t i = 0; i < 5; i++) {
            fill_plain(plain[i], 10 + 11 * i, (unsigned)i);
            n[i] = seal(tx, c, i, 23, plain[i], 10 + 11 * i, 0, rec[i], sizeof(rec[i]));
        }
        /* with identical plaintexts CBC chaining still makes the ciphertexts differ */
        assert_memory_not_equal(rec[0] + 5, rec[1] + 5, 16);
        for (size_t i = 0; i < 5; i++) {
            if (i == 2) {
                /* a forged record, a truncated one, and the next record out of order */
                memcpy(copy, rec[2], n[2]);
                copy[n[2] - 1] ^= 1;
                assert_int_equal(open_rec(rx, 2, copy, n[2], out, &olen, &type), MMTLS_E_AUTH);
                memcpy(copy, rec[2], n[2]);
                assert_int_equal(mmtls_rprot_open(rx, 2, copy, copy + 5, 7, copy + 5, &olen, &type),
                                 MMTLS_E_MALFORMED);
                memcpy(copy, rec[3], n[3]);
                assert_int_equal(open_rec(rx, 2, copy, n[3], copy + 5, &olen, &type), MMTLS_E_AUTH);
                if (!c->etm) {
                    /* Even with its own sequence number, record 3 decrypts under the wrong
                     * IV (record 1's last block) and fails its MAC.  Not so with
                     * encrypt-then-MAC: TLS 1.0 has no IV in the record, so the MAC does not
                     * cover it (RFC 7366 §3) and only the first block would be garbled; the
                     * sequence number is what keeps the receiver in step there. */
                    memcpy(copy, rec[3], n[3]);
                    assert_int_equal(open_rec(rx, 3, copy, n[3], copy + 5, &olen, &type),
                                     MMTLS_E_AUTH);
                }
            }
            /* alternate in-place and out-of-place opening */
            memcpy(copy, rec[i], n[i]);
            if (i % 2) {
                assert_int_equal(open_rec(rx, i, copy, n[i], copy + 5, &olen, &type), 0);
                assert_memory_equal(copy + 5, plain[i], olen);
            } else {
                assert_int_equal(open_rec(rx, i, copy, n[i], out, &olen, &type), 0);
                assert_memory_equal(out, plain[i], olen);
            }
            assert_int_equal(olen, 10 + 11 * i);
        }
        /* starting the chain in the middle fails: the key-block IV is for record 0 */
        assert_int_equal(open_rec(rx2, 0, rec[1], n[1], out, &olen, &type), MMTLS_E_AUTH);
        if (!c->etm) {
            assert_int_equal(open_rec(rx2, 1, rec[1], n[1], out, &olen, &type), MMTLS_E_AUTH);
        }
        assert_int_equal(open_rec(rx2, 0, rec[0], n[0], out, &olen, &type), 0);
        mmtls_rprot_free(tx);
        mmtls_rprot_free(rx);
        mmtls_rprot_free(rx2);
    }
}

/* CBC: every plaintext length 0..64 round-trips with every CBC kind, so that every padding
 * length and every position of the MAC across a block boundary is exercised. */
static void test_cbc_lengths(void **state)
{
    uint8_t plain[64], rec[256], out[256], type;
    size_t n, olen;

    (void)state;
    fill_plain(plain, sizeof(plain), 77);
    for (size_t k = 0; k < MMTLS_ARRAY_SIZE(kinds); k++) {
        const struct cfg *c = &kinds[k];
        const struct mmtls_suite *s = mmtls_crypto_suite(c->id);
        struct mmtls_rprot *tx, *rx;

        if (!is_cbc(s)) {
            continue;
        }
        tx = make_rprot(c);
        rx = make_rprot(c);
        for (size_t len = 0; len <= sizeof(plain); len++) {
            n = seal(tx, c, len, 23, plain, len, 0, rec, sizeof(rec));
            assert_int_equal((n - 5 - (c->version >= 0x0302 ? s->record_iv_len : 0) -
                              (c->etm ? mmtls_md_size(s->mac_md) : 0)) %
                                 s->fixed_iv_len,
                             0);
            assert_int_equal(open_rec(rx, len, rec, n, out, &olen, &type), 0);
            assert_int_equal(olen, len);
            assert_memory_equal(out, plain, len);
        }
        mmtls_rprot_free(tx);
        mmtls_rprot_free(rx);
    }
}

/* Hand-built TLS 1.2 MAC-then-encrypt records (0x002F) with a correct MAC and chosen padding,
 * made with OpenSSL's AES-CBC and HMAC directly under the keys make_rprot() installs. */
static size_t cbc_build(uint64_t seq, const uint8_t *plain, size_t plen, const uint8_t *padding,
                        size_t padlen, uint8_t *rec)
{
    const struct cfg c = {0x002F, 0x0303, false};
    uint8_t key[16], mac_key[20], body[512], ph[13], iv[16];
    unsigned int ml = 0;
    int outl = 0;
    size_t blen;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

    for (size_t i = 0; i < 16; i++) {
        key[i] = (uint8_t)(c.id + 7 * i + 101);
        iv[i] = (uint8_t)(0x3c + i);
    }
    for (size_t i = 0; i < 20; i++) {
        mac_key[i] = (uint8_t)(c.id * 5 + i + 53);
    }
    /* RFC 5246 §6.2.3.1: MAC(seq || type || version || length || content) */
    mmtls_put_be64(ph, seq);
    ph[8] = 23;
    ph[9] = 3;
    ph[10] = 3;
    mmtls_put_be16(ph + 11, (uint16_t)plen);
    memcpy(body, ph, 13);
    memcpy(body + 13, plain, plen);
    assert_non_null(HMAC(EVP_sha1(), mac_key, 20, body, 13 + plen, body + plen, &ml));
    assert_int_equal(ml, 20);
    memcpy(body, plain, plen);
    memcpy(body + plen + 20, padding, padlen);
    blen = plen + 20 + padlen;
    assert_int_equal(blen % 16, 0);
    assert_non_null(ctx);
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, iv), 1);
    assert_int_equal(EVP_CIPHER_CTX_set_padding(ctx, 0), 1);
    assert_int_equal(EVP_EncryptUpdate(ctx, rec + 5 + 16, &outl, body, (int)blen), 1);
    assert_int_equal((size_t)outl, blen);
    EVP_CIPHER_CTX_free(ctx);
    memcpy(rec + 5, iv, 16);
    rec[0] = 23;
    rec[1] = 3;
    rec[2] = 3;
    mmtls_put_be16(rec + 3, (uint16_t)(16 + blen));
    return 5 + 16 + blen;
}

static void test_cbc_padding(void **state)
{
    const struct cfg c = {0x002F, 0x0303, false};
    struct mmtls_rprot *rx = make_rprot(&c);
    uint8_t plain[11], pad[256], rec[512], out[512], type;
    size_t n, olen;

    (void)state;
    fill_plain(plain, sizeof(plain), 5);
    /* 11 + 20 = 31 bytes: padding_length 0 is minimal; 16 and 32 more are legal too */
    for (size_t extra = 0; extra <= 32; extra += 16) {
        memset(pad, (int)extra, extra + 1);
        n = cbc_build(4, plain, sizeof(plain), pad, extra + 1, rec);
        assert_int_equal(open_rec(rx, 4, rec, n, out, &olen, &type), 0);
        assert_int_equal(olen, sizeof(plain));
        assert_memory_equal(out, plain, sizeof(plain));
    }
    /* one padding byte differs from the length: bad_record_mac, though the MAC is right */
    for (size_t pos = 0; pos < 16; pos++) {
        memset(pad, 16, 17);
        pad[pos] = 15;
        n = cbc_build(4, plain, sizeof(plain), pad, 17, rec);
        assert_int_equal(open_rec(rx, 4, rec, n, out, &olen, &type), MMTLS_E_AUTH);
    }
    /* a padding length reaching into the MAC or beyond the record */
    memset(pad, 0, 1);
    pad[0] = 0xff;
    n = cbc_build(4, plain, sizeof(plain), pad, 1, rec);
    assert_int_equal(open_rec(rx, 4, rec, n, out, &olen, &type), MMTLS_E_AUTH);
    memset(pad, 16, 17);
    pad[16] = 40;
    n = cbc_build(4, plain, sizeof(plain), pad, 17, rec);
    assert_int_equal(open_rec(rx, 4, rec, n, out, &olen, &type), MMTLS_E_AUTH);
    mmtls_rprot_free(rx);
}

/* ------------------------------------------------------------------------------------------ */

static void test_api_errors(void **state)
{
    const struct cfg c12 = {0xC02F, 0x0303, false}, c13 = {0x1301, 0x0304, false};
    const struct mmtls_suite *s12 = mmtls_crypto_suite(0xC02F), *s13 = mmtls_crypto_suite(0x1301);
    struct mmtls_rprot *rp = NULL, *tx, *rx;
    struct mmtls_key_block kb;
    struct mmtls_secret sec;
    uint8_t plain[32] = {0}, rec[128], out[128], type;
    size_t n, olen;

    (void)state;
    mmtls_rprot_free(NULL);
    assert_int_equal(mmtls_rprot_max_plain(NULL, 100), 0);

    /* constructors */
    memset(&sec, 0x11, sizeof(sec));
    sec.len = 32;
    assert_int_equal(mmtls_rprot_new_tls13(&rp, s12, &sec), MMTLS_E_INVAL);
    assert_int_equal(mmtls_rprot_new_tls13(NULL, s13, &sec), MMTLS_E_INVAL);
    sec.len = 48; /* SHA-256 suite wants a 32-byte secret */
    assert_int_equal(mmtls_rprot_new_tls13(&rp, s13, &sec), MMTLS_E_INVAL);
    assert_null(rp);
    memset(&kb, 0, sizeof(kb));
    kb.key_len = 16;
    kb.iv_len = 4;
    assert_int_equal(mmtls_rprot_new_tls12(&rp, s13, 0x0303, false, &kb, 0), MMTLS_E_INVAL);
    assert_int_equal(mmtls_rprot_new_tls12(&rp, s12, 0x0303, false, &kb, 2), MMTLS_E_INVAL);
    assert_int_equal(mmtls_rprot_new_tls12(&rp, s12, 0x0302, false, &kb, 0), MMTLS_E_UNSUPPORTED);
    assert_int_equal(mmtls_rprot_new_tls12(&rp, s12, 0x0300, false, &kb, 0), MMTLS_E_UNSUPPORTED);
    kb.iv_len = 12; /* a key block cut for another suite */
    assert_int_equal(mmtls_rprot_new_tls12(&rp, s12, 0x0303, false, &kb, 0), MMTLS_E_INVAL);
    kb.iv_len = 4;
    kb.key_len = 32;
    assert_int_equal(mmtls_rprot_new_tls12(&rp, s12, 0x0303, false, &kb, 0), MMTLS_E_INVAL);
    assert_null(rp);
    /* the SHA-256 HMAC suites are TLS 1.2 only */
    {
        struct cfg c = {0x003C, 0x0301, false};
        assert_int_equal(make_rprot_half(&c, 1, &rp), MMTLS_E_UNSUPPORTED);
    }
    /* the two halves of the key block are different keys */
    {
        struct mmtls_rprot *other = NULL;
        tx = make_rprot(&c12);
        assert_int_equal(make_rprot_half(&c12, 0, &other), 0);
        n = seal(tx, &c12, 0, 23, plain, 10, 0, rec, sizeof(rec));
        assert_int_equal(open_rec(other, 0, rec, n, out, &olen, &type), MMTLS_E_AUTH);
        mmtls_rprot_free(other);
        mmtls_rprot_free(tx);
    }

    /* seal: capacity, padding outside TLS 1.3, oversize */
    tx = make_rprot(&c12);
    rx = make_rprot(&c12);
    n = seal(tx, &c12, 0, 23, plain, 10, 0, rec, sizeof(rec));
    assert_int_equal(n, 5 + 8 + 10 + 16);
    assert_int_equal(mmtls_rprot_seal(tx, 1, 23, 0x0303, plain, 10, 0, rec, n - 1, &olen),
                     MMTLS_E_LIMIT);
    assert_int_equal(mmtls_rprot_seal(tx, 1, 23, 0x0303, plain, 10, 0, rec, 4, &olen),
                     MMTLS_E_LIMIT);
    assert_int_equal(mmtls_rprot_seal(tx, 1, 23, 0x0303, plain, 10, 0, rec, n, &olen), 0);
    assert_int_equal(olen, n);
    assert_int_equal(mmtls_rprot_seal(tx, 1, 23, 0x0303, plain, 10, 1, rec, sizeof(rec), &olen),
                     MMTLS_E_INVAL);
    assert_int_equal(mmtls_rprot_seal(tx, 1, 23, 0x0303, NULL, 10, 0, rec, sizeof(rec), &olen),
                     MMTLS_E_INVAL);
    assert_int_equal(mmtls_rprot_seal(NULL, 1, 23, 0x0303, plain, 10, 0, rec, sizeof(rec), &olen),
                     MMTLS_E_INVAL);
    /* open: argument checks */
    assert_int_equal(mmtls_rprot_open(NULL, 1, rec, rec + 5, n - 5, out, &olen, &type),
                     MMTLS_E_INVAL);
    assert_int_equal(mmtls_rprot_open(rx, 1, rec, NULL, 3, out, &olen, &type), MMTLS_E_INVAL);
    assert_int_equal(mmtls_rprot_open(rx, 1, rec, NULL, 0, out, &olen, &type), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_rprot_open(rx, 1, rec, rec + 5, n - 5, NULL, &olen, &type),
                     MMTLS_E_INVAL);
    assert_int_equal(mmtls_rprot_open(rx, 1, rec, rec + 5, n - 5, out, &olen, &type), 0);
    mmtls_rprot_free(tx);
    mmtls_rprot_free(rx);

    /* TLS 1.3 seal writes the outer type 23 and the inner type inside */
    tx = make_rprot(&c13);
    rx = make_rprot(&c13);
    n = seal(tx, &c13, 5, 21, plain, 2, 0, rec, sizeof(rec));
    assert_int_equal(rec[0], 23);
    assert_int_equal(open_rec(rx, 5, rec, n, out, &olen, &type), 0);
    assert_int_equal(type, 21);
    assert_int_equal(mmtls_rprot_max_plain(rx, 17), 0);
    assert_int_equal(mmtls_rprot_max_plain(rx, 18), 1);
    mmtls_rprot_free(tx);
    mmtls_rprot_free(rx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all),
        cmocka_unit_test(test_tamper_every_byte),
        cmocka_unit_test(test_truncated_and_overlong),
        cmocka_unit_test(test_max_sizes),
        cmocka_unit_test(test_tls13_padding),
        cmocka_unit_test(test_tls10_chain),
        cmocka_unit_test(test_cbc_lengths),
        cmocka_unit_test(test_cbc_padding),
        cmocka_unit_test(test_api_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
