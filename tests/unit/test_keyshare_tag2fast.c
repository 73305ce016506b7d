/* Unit tests for the precomputed tag2 state (lib/keyshare/endpoint_tag2.c, docs/PRIVTAG.md):
 * the fast paths (AES-NI + PCLMULQDQ GMAC, portable ChaCha20 + Poly1305) against OpenSSL's EVP
 * path (MMTLS_EP_T2_F_EVP) for many random keys, nonces, headers and first tags (fixed seed);
 * the EVP fallback on the documented vectors; Poly1305 on its edge cases (RFC 8439 Appendix
 * A.3); argument checks and re-keying; the record path mmtls_ep_t2_calc_seq (ChaCha20 one-time
 * keys cached per batch, AVX2 and SSE2) against the EVP path: records in order, in random
 * order, at the batch boundaries, across key updates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <string.h>

#include <mmtls/endpoint.h>

#include "keyshare_int.h"

#define KEYS_PER_AEAD 256
#define RECS_PER_KEY 64

struct aead_kind {
    int aead;
    size_t k2_len;
    const char *name;
};

static const struct aead_kind kinds[] = {
    {MMTLS_EP_T2_GCM, 16, "AES-128-GCM"},
    {MMTLS_EP_T2_GCM, 32, "AES-256-GCM"},
    {MMTLS_EP_T2_CHACHA, 32, "ChaCha20-Poly1305"},
};

/* docs/PRIVTAG.md "Test vectors" (Python cryptography), one per AEAD */
struct tag2_vec {
    int aead;
    size_t k2_len;
    const char *k2, *nonce, *hdr, *tag1, *tag2;
};

static const struct tag2_vec tag2_vecs[] = {
    {
        /* AES-128-GCM, record length 33 */
        MMTLS_EP_T2_GCM,
        16,
        "\x56\x98\xf2\xfa\x2c\x5d\xda\x0c\xd9\x0d\x9b\xbf\x76\xcf\xc1\x40",
        "\x46\xca\xbd\xba\xc4\x61\x22\x40\x57\x68\x68\x7a",
        "\x17\x03\x03\x00\x21",
        "\xb0\x63\x16\x18\x9f\x77\x9a\x3d\x40\x1a\x64\x0a\xbe\x05\x36\xe0",
        "\x6f\x63\x4d\xd2\x69\xa6\xd3\xba\x42\x29\x3d\xd3\x84\xdc\x1f\x75",
    },
    {
        /* AES-256-GCM, record length 1200 */
        MMTLS_EP_T2_GCM,
        32,
        "\x89\x04\xed\xe7\x37\x75\xbc\xf4\xd8\x69\xc3\xc6\x78\xef\x38\xed"
        "\x46\xf7\x89\xb4\x22\xbd\xd9\xc7\xad\x68\xe6\x5e\x17\x3c\x18\x94",
        "\xd9\x43\xc1\x4b\x4b\xde\xbb\x8c\xff\xdd\x70\x63",
        "\x17\x03\x03\x04\xb0",
        "\xca\x5c\x72\xe4\x21\x12\xfc\x53\xc4\x05\x75\xdb\xb1\x4c\xce\x19",
        "\xfa\xe0\x94\x2c\xd1\x2b\x75\x3b\xe0\x98\xa8\xb5\x9c\xc1\xb0\x75",
    },
    {
        /* ChaCha20-Poly1305, record length 16417 */
        MMTLS_EP_T2_CHACHA,
        32,
        "\xc2\xd9\x11\x46\xd1\x13\x06\x8e\x3a\x76\x86\xf1\x5b\x9d\xd8\x66"
        "\xa2\x85\xf8\xb2\x49\x09\xa0\xa7\x9f\x95\x6f\x48\xb5\x46\x8f\xdf",
        "\xd6\x3e\x73\x76\x89\x0b\x08\xc0\xe3\xff\xdb\xbb",
        "\x17\x03\x03\x40\x21",
        "\xd1\xac\xea\x1b\xca\xd9\x41\x30\x66\xc8\x11\xe3\x47\x09\x67\x4e",
        "\xbe\xc0\xb0\x22\xa4\x85\x35\x97\x2a\x9d\x09\x24\x65\xbd\x38\x47",
    },
};

/* RFC 8439 Appendix A.3 Poly1305 vectors made of full blocks (they drive h to p, past 2^130,
 * and s past 2^128), plus all ones.  Tags computed with Python's cryptography Poly1305 (and a
 * big-integer Poly1305 in Python): they match A.3. */
struct poly_vec {
    const char *otk; /* r || s, 32 bytes */
    const char *msg;
    size_t nblocks;
    const char *tag;
};

static const struct poly_vec poly_vecs[] = {
    {
        /* A.3 #5: h reaches p */
        "\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        1,
        "\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    },
    {
        /* A.3 #6: s wraps */
        "\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        "\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        1,
        "\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    },
    {
        /* A.3 #7: carry into 2^130 */
        "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
        "\xf0\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
        "\x11\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        3,
        "\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    },
    {
        /* A.3 #8: h = p */
        "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
        "\xfb\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe"
        "\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01",
        3,
        "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    },
    {
        /* A.3 #9: h = 2^130 - 6 */
        "\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        "\xfd\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        1,
        "\xfa\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    },
    {
        /* A.3 #10: 5*H + L reduction */
        "\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00"
        "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        "\xe3\x35\x94\xd7\x50\x5e\x43\xb9\x00\x00\x00\x00\x00\x00\x00\x00"
        "\x33\x94\xd7\x50\x5e\x43\x79\xcd\x01\x00\x00\x00\x00\x00\x00\x00"
        "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        4,
        "\x14\x00\x00\x00\x00\x00\x00\x00\x55\x00\x00\x00\x00\x00\x00\x00",
    },
    {
        /* A.3 #11 */
        "\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00"
        "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        "\xe3\x35\x94\xd7\x50\x5e\x43\xb9\x00\x00\x00\x00\x00\x00\x00\x00"
        "\x33\x94\xd7\x50\x5e\x43\x79\xcd\x01\x00\x00\x00\x00\x00\x00\x00"
        "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        3,
        "\x13\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    },
    {
        /* all ones */
        "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
        "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
        "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
        "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        3,
        "\x5e\xfc\x6a\x6b\x51\xfc\xec\x4c\x78\x7c\x50\x75\x99\x7c\x95\xe4",
    },
};

/* splitmix64: a fixed, portable sequence (the test must not depend on rand()). */
static uint64_t rng_state = 0x6d6d746c73746167ull; /* "mmtlstag" */

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)(rng_next() >> 56);
    }
}

static bool cpu_has_aesni(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul") &&
           __builtin_cpu_supports("sse4.1");
#else
    return false;
#endif
}

/* A record header as the sender writes it (RFC 8446 §5.1, docs/PRIVTAG.md): random length,
 * sometimes random bytes throughout (tag2 is defined over any 5 bytes). */
static void rand_hdr(uint8_t hdr[5])
{
    rng_fill(hdr, 5);
    if (hdr[0] & 1) {
        hdr[0] = 0x17;
        hdr[1] = 0x03;
        hdr[2] = 0x03;
    }
}

/* The key used in the i-th round: a few fixed extremes, then random. */
static void pick_key(unsigned i, uint8_t *k2, size_t len)
{
    switch (i) {
    case 0: memset(k2, 0, len); break;
    case 1: memset(k2, 0xff, len); break;
    case 2:
        for (size_t j = 0; j < len; j++) {
            k2[j] = (uint8_t)j;
        }
        break;
    default: rng_fill(k2, len);
    }
}

static void test_fast_equals_evp(void **state)
{
    (void)state;
    for (size_t k = 0; k < MMTLS_ARRAY_SIZE(kinds); k++) {
        const struct aead_kind *ak = &kinds[k];
        bool want_fast = ak->aead == MMTLS_EP_T2_CHACHA || cpu_has_aesni();

        for (unsigned i = 0; i < KEYS_PER_AEAD; i++) {
            struct mmtls_ep_t2 fast, evp;
            uint8_t k2[32];

            pick_key(i, k2, ak->k2_len);
            assert_int_equal(mmtls_ep_t2_init(&fast, ak->aead, k2, ak->k2_len, 0), 0);
            assert_int_equal(mmtls_ep_t2_init(&evp, ak->aead, k2, ak->k2_len, MMTLS_EP_T2_F_EVP),
                             0);
            assert_true(mmtls_ep_t2_is_fast(&fast) == want_fast);
            assert_false(mmtls_ep_t2_is_fast(&evp));
            for (unsigned r = 0; r < RECS_PER_KEY; r++) {
                uint8_t nonce[12], hdr[5], tag1[16], a[16], b[16], c[16];

                rng_fill(nonce, sizeof(nonce));
                rand_hdr(hdr);
                rng_fill(tag1, sizeof(tag1));
                if (r == 0) { /* extremes of the aad and nonce */
                    memset(nonce, 0xff, sizeof(nonce));
                    memset(hdr, 0xff, sizeof(hdr));
                    memset(tag1, 0xff, sizeof(tag1));
                } else if (r == 1) {
                    memset(nonce, 0, sizeof(nonce));
                    memset(hdr, 0, sizeof(hdr));
                    memset(tag1, 0, sizeof(tag1));
                }
                assert_int_equal(mmtls_ep_t2_calc(&fast, nonce, hdr, tag1, a), 0);
                assert_int_equal(mmtls_ep_t2_calc(&evp, nonce, hdr, tag1, b), 0);
                if (memcmp(a, b, 16) != 0) {
                    print_error("%s: key %u record %u differs\n", ak->name, i, r);
                }
                assert_memory_equal(a, b, 16);
                /* the public stateless primitive gives the same */
                assert_int_equal(mmtls_ep_tag2(ak->aead, k2, ak->k2_len, nonce, hdr, tag1, c), 0);
                assert_memory_equal(a, c, 16);
            }
            mmtls_ep_t2_fini(&fast);
            mmtls_ep_t2_fini(&evp);
        }
    }
}

/* The EVP path (what a CPU without AES-NI / PCLMULQDQ gets for AES-GCM) on the documented
 * vectors, and the default path on the same. */
static void test_fallback_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(tag2_vecs); i++) {
        const struct tag2_vec *v = &tag2_vecs[i];
        static const unsigned flags[2] = {MMTLS_EP_T2_F_EVP, 0};

        for (size_t f = 0; f < 2; f++) {
            struct mmtls_ep_t2 t;
            uint8_t t2[16];

            assert_int_equal(
                mmtls_ep_t2_init(&t, v->aead, (const uint8_t *)v->k2, v->k2_len, flags[f]), 0);
            if (flags[f] == MMTLS_EP_T2_F_EVP) {
                assert_false(mmtls_ep_t2_is_fast(&t));
                assert_non_null(t.evp);
            } else {
                assert_true(mmtls_ep_t2_is_fast(&t) ==
                            (v->aead == MMTLS_EP_T2_CHACHA || cpu_has_aesni()));
                assert_true(mmtls_ep_t2_is_fast(&t) == (t.evp == NULL));
            }
            assert_int_equal(mmtls_ep_t2_calc(&t, (const uint8_t *)v->nonce,
                                              (const uint8_t *)v->hdr, (const uint8_t *)v->tag1,
                                              t2),
                             0);
            assert_memory_equal(t2, v->tag2, 16);
            mmtls_ep_t2_fini(&t);
        }
    }
}

static void test_poly1305_edges(void **state)
{
    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(poly_vecs); i++) {
        const struct poly_vec *v = &poly_vecs[i];
        uint8_t tag[16];

        assert_int_equal(
            mmtls_ep_t2_poly1305((const uint8_t *)v->otk, (const uint8_t *)v->msg, v->nblocks, tag),
            0);
        assert_memory_equal(tag, v->tag, 16);
    }
}

/* One state re-keyed as at a KeyUpdate (fini, init with the next k2) equals a fresh one. */
static void test_rekey(void **state)
{
    (void)state;
    for (size_t k = 0; k < MMTLS_ARRAY_SIZE(kinds); k++) {
        const struct aead_kind *ak = &kinds[k];
        struct mmtls_ep_t2 t, fresh;
        uint8_t k2[32], nonce[12], hdr[5], tag1[16], a[16], b[16], prev[16];

        memset(&t, 0, sizeof(t));
        for (unsigned gen = 0; gen < 4; gen++) {
            rng_fill(k2, ak->k2_len);
            rng_fill(nonce, sizeof(nonce));
            rand_hdr(hdr);
            rng_fill(tag1, sizeof(tag1));
            mmtls_ep_t2_fini(&t);
            assert_int_equal(mmtls_ep_t2_init(&t, ak->aead, k2, ak->k2_len, gen & 1), 0);
            assert_int_equal(mmtls_ep_t2_init(&fresh, ak->aead, k2, ak->k2_len, 0), 0);
            assert_int_equal(mmtls_ep_t2_calc(&t, nonce, hdr, tag1, a), 0);
            assert_int_equal(mmtls_ep_t2_calc(&fresh, nonce, hdr, tag1, b), 0);
            assert_memory_equal(a, b, 16);
            /* the same inputs under the previous key give another tag */
            assert_true(gen == 0 || memcmp(a, prev, 16) != 0);
            memcpy(prev, a, 16);
            /* one changed nonce, header or tag1 byte changes tag2 */
            nonce[11] ^= 1;
            assert_int_equal(mmtls_ep_t2_calc(&t, nonce, hdr, tag1, b), 0);
            assert_memory_not_equal(a, b, 16);
            nonce[11] ^= 1;
            hdr[4] ^= 0x80;
            assert_int_equal(mmtls_ep_t2_calc(&t, nonce, hdr, tag1, b), 0);
            assert_memory_not_equal(a, b, 16);
            hdr[4] ^= 0x80;
            tag1[15] ^= 1;
            assert_int_equal(mmtls_ep_t2_calc(&t, nonce, hdr, tag1, b), 0);
            assert_memory_not_equal(a, b, 16);
            mmtls_ep_t2_fini(&fresh);
        }
        mmtls_ep_t2_fini(&t);
    }
}

static void test_args(void **state)
{
    static const uint8_t k[32], n[12], h[5], t1[16];
    static const uint8_t zero[sizeof(struct mmtls_ep_t2)];
    struct mmtls_ep_t2 t;
    uint8_t t2[16];

    (void)state;
    assert_int_equal(mmtls_ep_t2_init(NULL, MMTLS_EP_T2_GCM, k, 16, 0), MMTLS_E_INVAL);
    assert_int_equal(mmtls_ep_t2_init(&t, MMTLS_EP_T2_GCM, NULL, 16, 0), MMTLS_E_INVAL);
    assert_int_equal(mmtls_ep_t2_init(&t, MMTLS_EP_T2_GCM, k, 24, 0), MMTLS_E_INVAL); /* 192 */
    assert_int_equal(mmtls_ep_t2_init(&t, MMTLS_EP_T2_GCM, k, 0, 0), MMTLS_E_INVAL);
    assert_int_equal(mmtls_ep_t2_init(&t, MMTLS_EP_T2_CHACHA, k, 16, 0), MMTLS_E_INVAL);
    assert_int_equal(mmtls_ep_t2_init(&t, 2, k, 32, MMTLS_EP_T2_F_EVP), MMTLS_E_INVAL);
    assert_int_equal(mmtls_ep_t2_init(&t, -1, k, 32, 0), MMTLS_E_INVAL);
    /* a failed set-up leaves a state that refuses to compute */
    assert_false(mmtls_ep_t2_is_fast(&t));
    assert_int_equal(mmtls_ep_t2_calc(&t, n, h, t1, t2), MMTLS_E_CRYPTO);
    mmtls_ep_t2_fini(&t);
    mmtls_ep_t2_fini(NULL);
    /* fini wipes everything (key schedule, GHASH powers) and is idempotent */
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(kinds); i++) {
        for (unsigned f = 0; f < 2; f++) {
            assert_int_equal(mmtls_ep_t2_init(&t, kinds[i].aead,
                                              (const uint8_t *)"0123456789abcdef"
                                                               "0123456789abcdef",
                                              kinds[i].k2_len, f),
                             0);
            mmtls_ep_t2_fini(&t);
            assert_memory_equal(&t, zero, sizeof(t));
            mmtls_ep_t2_fini(&t);
            assert_int_equal(mmtls_ep_t2_calc(&t, n, h, t1, t2), MMTLS_E_CRYPTO);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* mmtls_ep_t2_calc_seq: the record path (ChaCha20 one-time keys cached per batch)             */

#define SEQ_RECORDS 10000

static const unsigned seq_flags[] = {0, MMTLS_EP_T2_F_NOAVX2, MMTLS_EP_T2_F_EVP};

/* RFC 8446 §5.3: nonce = write_iv XOR pad_left(seq, 12). */
static void seq_nonce(const uint8_t iv[12], uint64_t seq, uint8_t nonce[12])
{
    memcpy(nonce, iv, 12);
    for (int i = 0; i < 8; i++) {
        nonce[11 - i] ^= (uint8_t)(seq >> (8 * i));
    }
}

/* One record: t (calc_seq) against ref (the EVP path, _calc) for seq under iv. */
static void seq_check(struct mmtls_ep_t2 *t, struct mmtls_ep_t2 *ref, const uint8_t iv[12],
                      uint64_t seq, const char *what)
{
    uint8_t nonce[12], hdr[5], tag1[16], a[16], b[16];

    seq_nonce(iv, seq, nonce);
    rand_hdr(hdr);
    rng_fill(tag1, sizeof(tag1));
    assert_int_equal(mmtls_ep_t2_calc_seq(t, seq, nonce, hdr, tag1, a), 0);
    assert_int_equal(mmtls_ep_t2_calc(ref, nonce, hdr, tag1, b), 0);
    if (memcmp(a, b, 16) != 0) {
        print_error("%s: seq %llu differs\n", what, (unsigned long long)seq);
    }
    assert_memory_equal(a, b, 16);
}

static void seq_init(struct mmtls_ep_t2 *t, struct mmtls_ep_t2 *ref, const struct aead_kind *ak,
                     const uint8_t *k2, unsigned flags)
{
    assert_int_equal(mmtls_ep_t2_init(t, ak->aead, k2, ak->k2_len, flags), 0);
    assert_int_equal(mmtls_ep_t2_init(ref, ak->aead, k2, ak->k2_len, MMTLS_EP_T2_F_EVP), 0);
}

/* 10,000 records in order, as a connection sends them, from several starting points: 0 (a
 * fresh direction), not a multiple of the batch, and just before the sequence number wraps
 * (the last batch then also covers wrapped numbers). */
static void test_seq_sequential(void **state)
{
    static const uint64_t starts[] = {0, 5, MMTLS_EP_T2_BATCH - 1, UINT64_MAX - 20};

    (void)state;
    for (size_t k = 0; k < MMTLS_ARRAY_SIZE(kinds); k++) {
        for (size_t f = 0; f < MMTLS_ARRAY_SIZE(seq_flags); f++) {
            for (size_t s = 0; s < MMTLS_ARRAY_SIZE(starts); s++) {
                struct mmtls_ep_t2 t, ref;
                uint8_t k2[32], iv[12];
                uint64_t n = starts[s] == 0 ? SEQ_RECORDS : 300;

                pick_key((unsigned)(k + f + s), k2, kinds[k].k2_len);
                rng_fill(iv, sizeof(iv));
                seq_init(&t, &ref, &kinds[k], k2, seq_flags[f]);
                for (uint64_t i = 0; i < n && starts[s] + i >= starts[s]; i++) {
                    seq_check(&t, &ref, iv, starts[s] + i, kinds[k].name);
                }
                mmtls_ep_t2_fini(&t);
                mmtls_ep_t2_fini(&ref);
            }
        }
    }
}

/* Records in random order and with repeats (a cache hit, a miss out of order, a refill when
 * the order resumes), and the same sequence number under another write IV (the cache is
 * keyed by it: the tag follows the nonce). */
static void test_seq_random_order(void **state)
{
    (void)state;
    for (size_t k = 0; k < MMTLS_ARRAY_SIZE(kinds); k++) {
        for (size_t f = 0; f < MMTLS_ARRAY_SIZE(seq_flags); f++) {
            struct mmtls_ep_t2 t, ref;
            uint8_t k2[32], iv[12], iv2[12];
            uint64_t seq = 0;

            rng_fill(k2, sizeof(k2));
            rng_fill(iv, sizeof(iv));
            seq_init(&t, &ref, &kinds[k], k2, seq_flags[f]);
            for (unsigned i = 0; i < SEQ_RECORDS; i++) {
                uint64_t r = rng_next();

                switch (r % 8) {
                case 0: seq = rng_next(); break;     /* anywhere */
                case 1: seq = r >> 60; break;        /* near 0 */
                case 2: seq -= (r >> 8) % 20; break; /* back a little */
                case 3: seq += (r >> 8) % 20; break; /* ahead a little */
                case 4: break;                       /* the same again */
                default: seq++; break;               /* in order */
                }
                seq_check(&t, &ref, iv, seq, kinds[k].name);
                if (r % 97 == 0) { /* another write IV, same sequence number */
                    memcpy(iv2, iv, sizeof(iv2));
                    iv2[(r >> 16) % 12] ^= (uint8_t)(1 + (r >> 24) % 255);
                    seq_check(&t, &ref, iv2, seq, kinds[k].name);
                    seq_check(&t, &ref, iv, seq, kinds[k].name);
                }
            }
            mmtls_ep_t2_fini(&t);
            mmtls_ep_t2_fini(&ref);
        }
    }
}

/* The batch boundaries one by one, for ChaCha20: what is cached after each step. */
static void test_seq_cache_boundaries(void **state)
{
    const struct aead_kind *ak = &kinds[2];
    const unsigned batch = MMTLS_EP_T2_BATCH;

    (void)state;
    assert_int_equal(ak->aead, MMTLS_EP_T2_CHACHA);
    for (size_t f = 0; f < 2; f++) {
        struct mmtls_ep_t2 t, ref;
        uint8_t k2[32], iv[12];

        rng_fill(k2, sizeof(k2));
        rng_fill(iv, sizeof(iv));
        seq_init(&t, &ref, ak, k2, seq_flags[f]);
        assert_int_equal(t.otk_n, 0);
#if defined(__x86_64__)
        __builtin_cpu_init();
        assert_true(t.otk_avx2 == (f == 0 && __builtin_cpu_supports("avx2")));
        /* seq 0 on a fresh state fills 0 .. batch - 1 */
        seq_check(&t, &ref, iv, 0, "fill at 0");
        assert_int_equal(t.otk_n, batch);
        assert_true(t.otk_seq == 0);
        for (unsigned i = 1; i < batch; i++) {
            seq_check(&t, &ref, iv, i, "inside");
            assert_true(t.otk_seq == 0);
        }
        /* the first after the batch fills the next one */
        seq_check(&t, &ref, iv, batch, "next batch");
        assert_true(t.otk_seq == batch);
        /* out of order, before the cache: one block, the cache stays */
        seq_check(&t, &ref, iv, 3, "before");
        assert_true(t.otk_seq == batch);
        /* a hit out of order (the last of the cache) */
        seq_check(&t, &ref, iv, 2 * batch - 1, "last");
        assert_true(t.otk_seq == batch);
        /* in order after it: the next batch starts there */
        seq_check(&t, &ref, iv, 2 * batch, "after last");
        assert_true(t.otk_seq == 2 * batch);
        /* a jump ahead: one block; then in order from there: a batch at the jump + 1 */
        seq_check(&t, &ref, iv, 1000, "jump");
        assert_true(t.otk_seq == 2 * batch);
        seq_check(&t, &ref, iv, 1001, "after jump");
        assert_true(t.otk_seq == 1001);
        /* the same again (a receiver retrying a record): a hit */
        seq_check(&t, &ref, iv, 1001, "again");
        assert_true(t.otk_seq == 1001);
        /* another write IV with a cached sequence number: recomputed, then cached */
        iv[0] ^= 0x80;
        seq_check(&t, &ref, iv, 1002, "new iv");
        assert_true(t.otk_seq == 1002);
        seq_check(&t, &ref, iv, 1003, "new iv, next");
        /* the last numbers before the wrap: one batch holds UINT64_MAX and 0 .. */
        seq_check(&t, &ref, iv, UINT64_MAX - 2, "before wrap");
        seq_check(&t, &ref, iv, UINT64_MAX - 1, "before wrap, next");
        assert_true(t.otk_seq == UINT64_MAX - 1);
        seq_check(&t, &ref, iv, UINT64_MAX, "last seq");
        seq_check(&t, &ref, iv, 0, "wrapped");
        assert_true(t.otk_seq == UINT64_MAX - 1);
#endif
        mmtls_ep_t2_fini(&t);
        mmtls_ep_t2_fini(&ref);
    }
}

/* A KeyUpdate in the middle (RFC 8446 §4.6.3; docs/PRIVTAG.md: a new k2 per generation, seq
 * from 0): _fini then _init drops the cached keys of the old generation; _fini wipes them. */
static void test_seq_rekey(void **state)
{
    static const uint8_t zero[sizeof(struct mmtls_ep_t2)];

    (void)state;
    for (size_t k = 0; k < MMTLS_ARRAY_SIZE(kinds); k++) {
        for (size_t f = 0; f < MMTLS_ARRAY_SIZE(seq_flags); f++) {
            struct mmtls_ep_t2 t, ref;
            uint8_t k2[32], iv[12];

            memset(&t, 0, sizeof(t));
            memset(&ref, 0, sizeof(ref));
            for (unsigned gen = 0; gen < 6; gen++) {
                /* the stop inside a batch, at its end, or past it */
                uint64_t n = 3 + gen * 5;

                rng_fill(k2, sizeof(k2));
                rng_fill(iv, sizeof(iv));
                mmtls_ep_t2_fini(&t);
                assert_memory_equal(&t, zero, sizeof(t));
                mmtls_ep_t2_fini(&ref);
                seq_init(&t, &ref, &kinds[k], k2, seq_flags[f]);
                for (uint64_t s = 0; s < n; s++) {
                    seq_check(&t, &ref, iv, s, kinds[k].name);
                }
                if (gen == 3) { /* the same IV under the new key: nothing cached is reused */
                    for (unsigned j = 0; j < 2; j++) {
                        rng_fill(k2, sizeof(k2));
                        mmtls_ep_t2_fini(&t);
                        mmtls_ep_t2_fini(&ref);
                        seq_init(&t, &ref, &kinds[k], k2, seq_flags[f]);
                        for (uint64_t s = 0; s < n; s++) {
                            seq_check(&t, &ref, iv, s, kinds[k].name);
                        }
                    }
                }
            }
            mmtls_ep_t2_fini(&t);
            mmtls_ep_t2_fini(&ref);
            assert_memory_equal(&t, zero, sizeof(t));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_equals_evp),
        cmocka_unit_test(test_fallback_vectors),
        cmocka_unit_test(test_poly1305_edges),
        cmocka_unit_test(test_rekey),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_seq_sequential),
        cmocka_unit_test(test_seq_random_order),
        cmocka_unit_test(test_seq_cache_boundaries),
        cmocka_unit_test(test_seq_rekey),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
