/* endpoint_tag2.c — the private tag, tag2 (docs/PRIVTAG.md), computed per record from a state
 * set up once per direction and key generation.
 *
 * tag2 = AEAD-Seal(k2, nonce, plaintext "", aad = header(5) || tag1(16)): with an empty
 * plaintext only the authenticator is left, so the full AEAD machinery of an EVP context (about
 * 260 ns per call) is mostly overhead.  Three paths give the same bytes:
 *
 *  - AES-GCM with AES-NI and PCLMULQDQ (x86, checked at run time): GMAC of the 21-byte aad,
 *    tag = GHASH_H(A1, A2, L) XOR E(k2, J0) (NIST SP 800-38D §7.1), H = E(k2, 0^128),
 *    J0 = nonce || 0^31 || 1.  L (the lengths block) is the same for every record, so with
 *    H^2, H^3 and L*H computed at set-up GHASH = A1*H^3 + A2*H^2 + L*H: two carry-less products
 *    and one reduction per record, in parallel with one AES block.
 *  - ChaCha20-Poly1305 in portable C: one ChaCha20 block (RFC 8439 §2.3) for the Poly1305
 *    one-time key (§2.6), Poly1305 (§2.5) over pad16(aad) || le64(21) || le64(0) (§2.8).
 *    The one-time key depends only on k2 and the nonce (write_iv XOR pad(seq)), so on x86-64
 *    the record path (mmtls_ep_t2_calc_seq) computes the keys of the next MMTLS_EP_T2_BATCH
 *    records in one vectorized batch (AVX2: 8 blocks at once; SSE2: 4) and caches them in the
 *    state: per record Poly1305 plus 1/8 of a batch.  A record out of order (or a nonce of
 *    another write IV) costs one scalar block.
 *  - OpenSSL EVP, keyed once (AES-GCM on a CPU without AES-NI / PCLMULQDQ, or forced by
 *    MMTLS_EP_T2_F_EVP for tests and benchmarks).
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "keyshare_int.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define T2_HAVE_X86 1
#define T2_TARGET __attribute__((target("aes,pclmul,sse4.1")))
#else
#define T2_HAVE_X86 0
#endif
/* ChaCha20 one-time keys in batches: SSE2 (always there on x86-64), AVX2 when the CPU has it */
#if defined(__x86_64__)
#define T2_HAVE_BATCH 1
#else
#define T2_HAVE_BATCH 0
#endif

#define T2_HDR 5
#define T2_TAG 16
#define T2_NONCE 12
#define T2_AAD (T2_HDR + T2_TAG) /* 21 bytes */

enum t2_path {
    T2_PATH_NONE = 0,
    T2_PATH_EVP,
    T2_PATH_AESNI,
    T2_PATH_CHACHA,
};

/* ------------------------------------------------------------------------------------------ */
/* AES-GCM with AES-NI and PCLMULQDQ                                                            */

#if T2_HAVE_X86

/* GHASH works on bit-reflected blocks (SP 800-38D §6.3: bit 0 of a block is the coefficient of
 * x^0 and the most significant bit of byte 0).  Byte-swapping a block gives a 128-bit integer
 * whose bit 127 - k is the coefficient of x^k ("reflected"); the product of two reflected
 * values by PCLMULQDQ holds the coefficient of x^k of the polynomial product at bit 254 - k. */

T2_TARGET static inline __m128i t2_bswap(__m128i x)
{
    return _mm_shuffle_epi8(x, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

/* 256-bit carry-less product a*b (schoolbook, four 64x64 products) as *hi:*lo. */
T2_TARGET static inline void t2_clmul(__m128i a, __m128i b, __m128i *hi, __m128i *lo)
{
    __m128i l = _mm_clmulepi64_si128(a, b, 0x00);
    __m128i h = _mm_clmulepi64_si128(a, b, 0x11);
    __m128i m = _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x01), _mm_clmulepi64_si128(a, b, 0x10));

    *lo = _mm_xor_si128(l, _mm_slli_si128(m, 8));
    *hi = _mm_xor_si128(h, _mm_srli_si128(m, 8));
}

/* Reduces hi:lo, the reflected form of a polynomial P of degree <= 255 (bit 255 - k holds the
 * coefficient of x^k), modulo g = x^128 + x^7 + x^2 + x + 1; returns P mod g, reflected.
 * P = P_lo + P_hi x^128 with hi = refl(P_lo) and lo = refl(P_hi); x^128 = 1 + x + x^2 + x^7
 * (mod g), and multiplying by x^j is a right shift by j of a reflected value.  The bits that
 * P_hi x^j (j = 1, 2, 7) pushes past x^127 (T, degree <= 6) are first folded into P_hi:
 * with D = P_hi + T, (D (1 + x + x^2 + x^7)) mod x^128 = P_hi (1 + x + x^2 + x^7) mod g. */
T2_TARGET static inline __m128i t2_reduce(__m128i hi, __m128i lo)
{
    /* refl(T) = lo << 127 ^ lo << 126 ^ lo << 121 (128-bit shifts: only the low qword moves) */
    __m128i t = _mm_xor_si128(_mm_xor_si128(_mm_slli_epi64(lo, 63), _mm_slli_epi64(lo, 62)),
                              _mm_slli_epi64(lo, 57));
    __m128i d = _mm_xor_si128(lo, _mm_slli_si128(t, 8));
    /* d >> 1 ^ d >> 2 ^ d >> 7 as 128-bit shifts: per qword, plus the carries of the high qword
     * into the low one */
    __m128i s = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(d, 1), _mm_srli_epi64(d, 2)),
                              _mm_srli_epi64(d, 7));
    __m128i c = _mm_xor_si128(_mm_xor_si128(_mm_slli_epi64(d, 63), _mm_slli_epi64(d, 62)),
                              _mm_slli_epi64(d, 57));

    s = _mm_xor_si128(s, _mm_srli_si128(c, 8));
    return _mm_xor_si128(hi, _mm_xor_si128(d, s));
}

/* a*b mod g, both reflected (set-up only).  The raw product holds x^k at bit 254 - k: a
 * 256-bit shift left by one puts it at 255 - k, the form t2_reduce takes. */
T2_TARGET static __m128i t2_gfmul(__m128i a, __m128i b)
{
    __m128i hi, lo, chi, clo;

    t2_clmul(a, b, &hi, &lo);
    clo = _mm_srli_epi64(lo, 63); /* top bit of each qword of lo */
    chi = _mm_srli_epi64(hi, 63);
    hi = _mm_or_si128(_mm_or_si128(_mm_slli_epi64(hi, 1), _mm_slli_si128(chi, 8)),
                      _mm_srli_si128(clo, 8));
    lo = _mm_or_si128(_mm_slli_epi64(lo, 1), _mm_slli_si128(clo, 8));
    return t2_reduce(hi, lo);
}

/* One AES-128 key schedule step (FIPS 197 §5.2): w[i..i+3] from w[i-4..i-1] = k and
 * kg = AESKEYGENASSIST(previous key, rcon). */
T2_TARGET static inline __m128i t2_expand(__m128i k, __m128i kg)
{
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    return _mm_xor_si128(k, kg);
}

/* AES-128: 11 round keys; the round constants must be immediates. */
#define T2_K128(i, rcon)                                                                           \
    rk[i] =                                                                                        \
        t2_expand(rk[(i)-1], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[(i)-1], rcon), 0xff))

/* AES-256 (FIPS 197 §5.2, Nk = 8): even round keys use RotWord + SubWord + Rcon of the
 * previous one (shuffle 0xff), odd ones SubWord only (shuffle 0xaa, rcon 0). */
#define T2_K256A(i, rcon)                                                                          \
    rk[i] =                                                                                        \
        t2_expand(rk[(i)-2], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[(i)-1], rcon), 0xff))
#define T2_K256B(i)                                                                                \
    rk[i] =                                                                                        \
        t2_expand(rk[(i)-2], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[(i)-1], 0x00), 0xaa))

T2_TARGET static inline __m128i t2_aes(const struct mmtls_ep_t2 *t, __m128i x)
{
    x = _mm_xor_si128(x, _mm_load_si128((const __m128i *)t->rk[0]));
    for (unsigned i = 1; i < t->rounds; i++) {
        x = _mm_aesenc_si128(x, _mm_load_si128((const __m128i *)t->rk[i]));
    }
    return _mm_aesenclast_si128(x, _mm_load_si128((const __m128i *)t->rk[t->rounds]));
}

T2_TARGET static void t2_aesni_init(struct mmtls_ep_t2 *t, const uint8_t *k2, size_t k2_len)
{
    __m128i rk[15], h, h2, h3, xinv, len;
    uint8_t lb[16];

    rk[0] = _mm_loadu_si128((const __m128i *)k2);
    if (k2_len == 16) {
        T2_K128(1, 0x01);
        T2_K128(2, 0x02);
        T2_K128(3, 0x04);
        T2_K128(4, 0x08);
        T2_K128(5, 0x10);
        T2_K128(6, 0x20);
        T2_K128(7, 0x40);
        T2_K128(8, 0x80);
        T2_K128(9, 0x1b);
        T2_K128(10, 0x36);
        t->rounds = 10;
    } else {
        rk[1] = _mm_loadu_si128((const __m128i *)(k2 + 16));
        T2_K256A(2, 0x01);
        T2_K256B(3);
        T2_K256A(4, 0x02);
        T2_K256B(5);
        T2_K256A(6, 0x04);
        T2_K256B(7);
        T2_K256A(8, 0x08);
        T2_K256B(9);
        T2_K256A(10, 0x10);
        T2_K256B(11);
        T2_K256A(12, 0x20);
        T2_K256B(13);
        T2_K256A(14, 0x40);
        t->rounds = 14;
    }
    for (unsigned i = 0; i <= t->rounds; i++) {
        _mm_store_si128((__m128i *)t->rk[i], rk[i]);
    }
    /* SP 800-38D §7.1: H = E(K, 0^128) */
    h = t2_bswap(t2_aes(t, _mm_setzero_si128()));
    h2 = t2_gfmul(h, h);
    h3 = t2_gfmul(h2, h);
    /* Per record the raw product (x^k at bit 254 - k) is reduced without the shift by one:
     * with b' = b x^-1 it reads as refl(a b' x) = refl(a b).  x^-1 = x^127 + x^6 + x + 1
     * (x (x^127 + x^6 + x + 1) = g + 1), reflected: bits 0, 121, 126, 127. */
    xinv = _mm_set_epi64x((long long)0xc200000000000000ull, 1);
    _mm_store_si128((__m128i *)t->hk[0], t2_gfmul(h3, xinv));
    _mm_store_si128((__m128i *)t->hk[1], t2_gfmul(h2, xinv));
    /* SP 800-38D §7.1: the last block is len(A) || len(C) in bits, 64 bits each (big
     * endian): 168 || 0, the same for every record.  Reflected: the byte-swapped block. */
    memset(lb, 0, sizeof(lb));
    lb[7] = T2_AAD * 8;
    len = t2_bswap(_mm_loadu_si128((const __m128i *)lb));
    _mm_store_si128((__m128i *)t->hk[2], t2_gfmul(len, h));
    OPENSSL_cleanse(rk, sizeof(rk));
}

T2_TARGET static void t2_aesni_calc(const struct mmtls_ep_t2 *t, const uint8_t nonce[12],
                                    const uint8_t hdr[5], const uint8_t tag1[16], uint8_t tag2[16])
{
    uint32_t n2, h0;
    __m128i j0, tg, a1, a2, e, h1, l1, h2, l2, g;

    /* The blocks are assembled in registers: byte stores followed by a 16-byte load would
     * stall on store forwarding. */
    memcpy(&n2, nonce + 8, 4);
    memcpy(&h0, hdr, 4);
    /* J0 = nonce || 0^31 || 1 (SP 800-38D §7.1, a 96-bit IV) */
    j0 = _mm_loadl_epi64((const __m128i *)nonce);
    j0 = _mm_insert_epi32(j0, (int)n2, 2);
    j0 = _mm_insert_epi32(j0, 0x01000000, 3);
    e = t2_aes(t, j0);
    /* aad = hdr || tag1 in two blocks, the second zero-padded */
    tg = _mm_loadu_si128((const __m128i *)tag1);
    a1 = _mm_insert_epi8(_mm_cvtsi32_si128((int)h0), hdr[4], 4);
    a1 = _mm_or_si128(a1, _mm_slli_si128(tg, T2_HDR));
    a2 = _mm_srli_si128(tg, 16 - T2_HDR);
    t2_clmul(t2_bswap(a1), _mm_load_si128((const __m128i *)t->hk[0]), &h1, &l1);
    t2_clmul(t2_bswap(a2), _mm_load_si128((const __m128i *)t->hk[1]), &h2, &l2);
    /* GHASH = A1 H^3 + A2 H^2 + L H: one reduction of the sum */
    g = t2_reduce(_mm_xor_si128(h1, h2), _mm_xor_si128(l1, l2));
    g = _mm_xor_si128(g, _mm_load_si128((const __m128i *)t->hk[2]));
    _mm_storeu_si128((__m128i *)tag2, _mm_xor_si128(t2_bswap(g), e));
}

static bool t2_cpu_aesni(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul") &&
           __builtin_cpu_supports("sse4.1");
}

#endif /* T2_HAVE_X86 */

/* ------------------------------------------------------------------------------------------ */
/* ChaCha20-Poly1305, portable                                                                  */

static inline uint32_t t2_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t t2_le64(const uint8_t *p)
{
    return (uint64_t)t2_le32(p) | (uint64_t)t2_le32(p + 4) << 32;
}

static inline void t2_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint32_t t2_rotl(uint32_t v, int n)
{
    return v << n | v >> (32 - n);
}

/* RFC 8439 §2.1 quarter round on x[a], x[b], x[c], x[d]. */
static inline void t2_qr(uint32_t *x, int a, int b, int c, int d)
{
    x[a] += x[b];
    x[d] = t2_rotl(x[d] ^ x[a], 16);
    x[c] += x[d];
    x[b] = t2_rotl(x[b] ^ x[c], 12);
    x[a] += x[b];
    x[d] = t2_rotl(x[d] ^ x[a], 8);
    x[c] += x[d];
    x[b] = t2_rotl(x[b] ^ x[c], 7);
}

/* RFC 8439 §2.6: the Poly1305 one-time key, the first 32 bytes of the ChaCha20 block with
 * counter 0 (§2.3): r = words 0..3, s = words 4..7 of the serialized block. */
static void t2_chacha_otk(const uint8_t key[32], const uint8_t nonce[12], uint32_t otk[8])
{
    uint32_t in[16], x[16];

    /* §2.3: "expand 32-byte k", key, block counter, nonce */
    in[0] = 0x61707865;
    in[1] = 0x3320646e;
    in[2] = 0x79622d32;
    in[3] = 0x6b206574;
    for (int i = 0; i < 8; i++) {
        in[4 + i] = t2_le32(key + 4 * i);
    }
    in[12] = 0;
    in[13] = t2_le32(nonce);
    in[14] = t2_le32(nonce + 4);
    in[15] = t2_le32(nonce + 8);
    memcpy(x, in, sizeof(x));
    for (int i = 0; i < 10; i++) { /* 20 rounds: column, then diagonal */
        t2_qr(x, 0, 4, 8, 12);
        t2_qr(x, 1, 5, 9, 13);
        t2_qr(x, 2, 6, 10, 14);
        t2_qr(x, 3, 7, 11, 15);
        t2_qr(x, 0, 5, 10, 15);
        t2_qr(x, 1, 6, 11, 12);
        t2_qr(x, 2, 7, 8, 13);
        t2_qr(x, 3, 4, 9, 14);
    }
    for (int i = 0; i < 8; i++) {
        otk[i] = x[i] + in[i];
    }
    OPENSSL_cleanse(in, sizeof(in));
    OPENSSL_cleanse(x, sizeof(x));
}

/* RFC 8439 §2.5 Poly1305 over n full 16-byte blocks (each with the 2^128 bit), given as
 * little-endian 64-bit halves m[i][0] (bytes 0..7) and m[i][1] (bytes 8..15), with the one-time
 * key r || s as little-endian 64-bit halves k = {r0, r1, s0, s1} (r not yet clamped).  h = h0 + h1
 * 2^64 + h2 2^128 is kept below 5 * 2^128 between blocks.  With r = r0 + r1 2^64 clamped, r1 is a
 * multiple of 4, so 2^128 r1 = 2^130 (r1 / 4) = 5 (r1 / 4) = s1 (mod p = 2^130 - 5), s1 = r1 + (r1
 * >> 2). */
static inline void t2_poly1305(const uint64_t k[4], const uint64_t (*m)[2], size_t n,
                               uint8_t tag[16])
{
    typedef unsigned __int128 u128;
    const uint64_t r0 = k[0] & 0x0ffffffc0fffffffull; /* §2.5.1 clamp */
    const uint64_t r1 = k[1] & 0x0ffffffc0ffffffcull;
    const uint64_t s1 = r1 + (r1 >> 2);
    uint64_t h0 = 0, h1 = 0, h2 = 0, c, g0, g1, g2, mask;
    u128 d0, d1, t;

    for (size_t i = 0; i < n; i++) {
        /* h += block + 2^128 */
        t = (u128)h0 + m[i][0];
        h0 = (uint64_t)t;
        t = (u128)h1 + m[i][1] + (uint64_t)(t >> 64);
        h1 = (uint64_t)t;
        h2 += (uint64_t)(t >> 64) + 1;
        /* h *= r (mod p), partially: h2 r1 2^192 = h2 s1 2^64 and h1 r1 2^128 = h1 s1 */
        d0 = (u128)h0 * r0 + (u128)h1 * s1;
        d1 = (u128)h0 * r1 + (u128)h1 * r0 + (u128)h2 * s1 + (uint64_t)(d0 >> 64);
        h2 = h2 * r0 + (uint64_t)(d1 >> 64); /* h2 <= 7, r0 < 2^60: no overflow */
        h0 = (uint64_t)d0;
        h1 = (uint64_t)d1;
        /* fold the bits from 2^130 up: c 2^130 = 5 c */
        c = (h2 >> 2) + (h2 & ~(uint64_t)3);
        h2 &= 3;
        t = (u128)h0 + c;
        h0 = (uint64_t)t;
        t = (u128)h1 + (uint64_t)(t >> 64);
        h1 = (uint64_t)t;
        h2 += (uint64_t)(t >> 64);
    }
    /* h < 2p: h mod p = h - p when h + 5 reaches 2^130 (constant time) */
    t = (u128)h0 + 5;
    g0 = (uint64_t)t;
    t = (u128)h1 + (uint64_t)(t >> 64);
    g1 = (uint64_t)t;
    g2 = h2 + (uint64_t)(t >> 64);
    mask = (uint64_t)0 - (g2 >> 2);
    h0 = (h0 & ~mask) | (g0 & mask);
    h1 = (h1 & ~mask) | (g1 & mask);
    /* tag = (h + s) mod 2^128 */
    t = (u128)h0 + k[2];
    h0 = (uint64_t)t;
    h1 += k[3] + (uint64_t)(t >> 64);
    t2_put_le64(tag, h0);
    t2_put_le64(tag + 8, h1);
}

int mmtls_ep_t2_poly1305(const uint8_t otk[32], const uint8_t *m, size_t nblocks, uint8_t tag[16])
{
    uint64_t b[4][2], w[4];

    if (nblocks > 4) {
        return MMTLS_E_INVAL;
    }
    for (int i = 0; i < 4; i++) {
        w[i] = t2_le64(otk + 8 * i);
    }
    for (size_t i = 0; i < nblocks; i++) {
        b[i][0] = t2_le64(m + 16 * i);
        b[i][1] = t2_le64(m + 16 * i + 8);
    }
    t2_poly1305(w, b, nblocks, tag);
    OPENSSL_cleanse(w, sizeof(w));
    return 0;
}

/* RFC 8439 §2.8: Poly1305 over pad16(aad) || pad16(ciphertext = "") || le64(21) || le64(0),
 * the blocks read straight into limbs: aad = hdr(5) || tag1(16). */
static inline void t2_chacha_tag(const uint64_t otk[4], const uint8_t hdr[5],
                                 const uint8_t tag1[16], uint8_t tag2[16])
{
    uint64_t b[3][2], t0 = t2_le64(tag1), t1 = t2_le64(tag1 + 8);

    b[0][0] = (uint64_t)t2_le32(hdr) | (uint64_t)hdr[4] << 32 | t0 << 40;
    b[0][1] = t0 >> 24 | t1 << 40;
    b[1][0] = t1 >> 24;
    b[1][1] = 0;
    b[2][0] = T2_AAD;
    b[2][1] = 0;
    t2_poly1305(otk, b, 3, tag2);
}

static void t2_chacha_calc(const struct mmtls_ep_t2 *t, const uint8_t nonce[12],
                           const uint8_t hdr[5], const uint8_t tag1[16], uint8_t tag2[16])
{
    uint32_t w[8];
    uint64_t otk[4];

    t2_chacha_otk((const uint8_t *)t->rk, nonce, w);
    for (int i = 0; i < 4; i++) {
        otk[i] = (uint64_t)w[2 * i] | (uint64_t)w[2 * i + 1] << 32;
    }
    t2_chacha_tag(otk, hdr, tag1, tag2);
    OPENSSL_cleanse(w, sizeof(w));
    OPENSSL_cleanse(otk, sizeof(otk));
}

/* ------------------------------------------------------------------------------------------ */
/* ChaCha20 one-time keys in batches (x86-64)                                                   */

#if T2_HAVE_BATCH

/* The 16 input words of MMTLS_EP_T2_BATCH ChaCha20 blocks (RFC 8439 §2.3) that differ only in
 * their nonce's last 8 bytes (RFC 8446 §5.3: write_iv XOR pad(seq), seq = base + lane): words
 * 14 and 15 per lane, the others shared. */
struct t2_lanes {
    uint32_t in[16];
    uint32_t n14[MMTLS_EP_T2_BATCH], n15[MMTLS_EP_T2_BATCH];
};

/* SSE2 (x86-64 baseline), 4 blocks at a time, word i of every block in x[i]. */
#define T2_ROTL4(v, n) _mm_or_si128(_mm_slli_epi32((v), (n)), _mm_srli_epi32((v), 32 - (n)))

static inline void t2_qr4(__m128i *x, int a, int b, int c, int d)
{
    x[a] = _mm_add_epi32(x[a], x[b]);
    x[d] = _mm_xor_si128(x[d], x[a]);
    x[d] = _mm_shufflehi_epi16(_mm_shufflelo_epi16(x[d], 0xb1), 0xb1); /* rotl 16 */
    x[c] = _mm_add_epi32(x[c], x[d]);
    x[b] = _mm_xor_si128(x[b], x[c]);
    x[b] = T2_ROTL4(x[b], 12);
    x[a] = _mm_add_epi32(x[a], x[b]);
    x[d] = _mm_xor_si128(x[d], x[a]);
    x[d] = T2_ROTL4(x[d], 8);
    x[c] = _mm_add_epi32(x[c], x[d]);
    x[b] = _mm_xor_si128(x[b], x[c]);
    x[b] = T2_ROTL4(x[b], 7);
}

static void t2_batch_sse2(const struct t2_lanes *l, uint32_t (*otk)[MMTLS_EP_T2_BATCH])
{
    __m128i x[16];

    for (int h = 0; h < MMTLS_EP_T2_BATCH; h += 4) {
        for (int i = 0; i < 14; i++) {
            x[i] = _mm_set1_epi32((int)l->in[i]);
        }
        x[14] = _mm_loadu_si128((const __m128i *)(l->n14 + h));
        x[15] = _mm_loadu_si128((const __m128i *)(l->n15 + h));
        for (int i = 0; i < 10; i++) { /* 20 rounds: column, then diagonal */
            t2_qr4(x, 0, 4, 8, 12);
            t2_qr4(x, 1, 5, 9, 13);
            t2_qr4(x, 2, 6, 10, 14);
            t2_qr4(x, 3, 7, 11, 15);
            t2_qr4(x, 0, 5, 10, 15);
            t2_qr4(x, 1, 6, 11, 12);
            t2_qr4(x, 2, 7, 8, 13);
            t2_qr4(x, 3, 4, 9, 14);
        }
        /* §2.3: add the input; only words 0..7 (r || s, §2.6) are kept */
        for (int i = 0; i < 8; i++) {
            _mm_storeu_si128((__m128i *)(otk[i] + h),
                             _mm_add_epi32(x[i], _mm_set1_epi32((int)l->in[i])));
        }
    }
    OPENSSL_cleanse(x, sizeof(x));
}

/* AVX2, 8 blocks at once; byte shuffles rotate by 16 and 8. */
#define T2_AVX2 __attribute__((target("avx2")))
#define T2_ROTL8(v, n)                                                                             \
    _mm256_or_si256(_mm256_slli_epi32((v), (n)), _mm256_srli_epi32((v), 32 - (n)))

T2_AVX2 static inline void t2_qr8(__m256i *x, int a, int b, int c, int d, __m256i r16, __m256i r8)
{
    x[a] = _mm256_add_epi32(x[a], x[b]);
    x[d] = _mm256_shuffle_epi8(_mm256_xor_si256(x[d], x[a]), r16);
    x[c] = _mm256_add_epi32(x[c], x[d]);
    x[b] = _mm256_xor_si256(x[b], x[c]);
    x[b] = T2_ROTL8(x[b], 12);
    x[a] = _mm256_add_epi32(x[a], x[b]);
    x[d] = _mm256_shuffle_epi8(_mm256_xor_si256(x[d], x[a]), r8);
    x[c] = _mm256_add_epi32(x[c], x[d]);
    x[b] = _mm256_xor_si256(x[b], x[c]);
    x[b] = T2_ROTL8(x[b], 7);
}

T2_AVX2 static void t2_batch_avx2(const struct t2_lanes *l, uint32_t (*otk)[MMTLS_EP_T2_BATCH])
{
    const __m256i r16 = _mm256_set_epi8(13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2, 13,
                                        12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2);
    const __m256i r8 = _mm256_set_epi8(14, 13, 12, 15, 10, 9, 8, 11, 6, 5, 4, 7, 2, 1, 0, 3, 14, 13,
                                       12, 15, 10, 9, 8, 11, 6, 5, 4, 7, 2, 1, 0, 3);
    __m256i x[16];

    for (int i = 0; i < 14; i++) {
        x[i] = _mm256_set1_epi32((int)l->in[i]);
    }
    x[14] = _mm256_loadu_si256((const __m256i *)l->n14);
    x[15] = _mm256_loadu_si256((const __m256i *)l->n15);
    for (int i = 0; i < 10; i++) {
        t2_qr8(x, 0, 4, 8, 12, r16, r8);
        t2_qr8(x, 1, 5, 9, 13, r16, r8);
        t2_qr8(x, 2, 6, 10, 14, r16, r8);
        t2_qr8(x, 3, 7, 11, 15, r16, r8);
        t2_qr8(x, 0, 5, 10, 15, r16, r8);
        t2_qr8(x, 1, 6, 11, 12, r16, r8);
        t2_qr8(x, 2, 7, 8, 13, r16, r8);
        t2_qr8(x, 3, 4, 9, 14, r16, r8);
    }
    for (int i = 0; i < 8; i++) {
        _mm256_storeu_si256((__m256i *)otk[i],
                            _mm256_add_epi32(x[i], _mm256_set1_epi32((int)l->in[i])));
    }
    OPENSSL_cleanse(x, sizeof(x));
    _mm256_zeroupper();
}

static bool t2_cpu_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

/* Fills t's cache with the one-time keys of records seq .. seq + MMTLS_EP_T2_BATCH - 1 under
 * the write IV iv (a wrapping seq only computes keys no record will use). */
static void t2_chacha_fill(struct mmtls_ep_t2 *t, uint64_t seq, const uint8_t iv[12])
{
    const uint8_t *key = (const uint8_t *)t->rk;
    struct t2_lanes l;

    /* §2.3: "expand 32-byte k", key, block counter 0, nonce */
    l.in[0] = 0x61707865;
    l.in[1] = 0x3320646e;
    l.in[2] = 0x79622d32;
    l.in[3] = 0x6b206574;
    for (int i = 0; i < 8; i++) {
        l.in[4 + i] = t2_le32(key + 4 * i);
    }
    l.in[12] = 0;
    l.in[13] = t2_le32(iv);
    l.in[14] = t2_le32(iv + 4);
    l.in[15] = t2_le32(iv + 8);
    for (unsigned i = 0; i < MMTLS_EP_T2_BATCH; i++) {
        uint64_t s = seq + i;
        /* nonce bytes 4..11 XOR big-endian s, read as two little-endian words */
        l.n14[i] = l.in[14] ^ __builtin_bswap32((uint32_t)(s >> 32));
        l.n15[i] = l.in[15] ^ __builtin_bswap32((uint32_t)s);
    }
    if (t->otk_avx2) {
        t2_batch_avx2(&l, t->otk);
    } else {
        t2_batch_sse2(&l, t->otk);
    }
    OPENSSL_cleanse(&l, sizeof(l));
    memcpy(t->otk_iv, iv, sizeof(t->otk_iv));
    t->otk_seq = seq;
    t->otk_n = MMTLS_EP_T2_BATCH;
}

static void t2_chacha_calc_seq(struct mmtls_ep_t2 *t, uint64_t seq, const uint8_t nonce[12],
                               const uint8_t hdr[5], const uint8_t tag1[16], uint8_t tag2[16])
{
    uint8_t iv[12];
    uint64_t otk[4];
    uint64_t i = seq - t->otk_seq;

    /* RFC 8446 §5.3: write_iv = nonce XOR pad(seq) */
    memcpy(iv, nonce, sizeof(iv));
    for (int k = 0; k < 8; k++) {
        iv[11 - k] ^= (uint8_t)(seq >> (8 * k));
    }
    if (i >= t->otk_n || memcmp(iv, t->otk_iv, sizeof(iv)) != 0) {
        if (seq != t->otk_next) { /* out of order: one block, the cache is kept */
            t->otk_next = seq + 1;
            t2_chacha_calc(t, nonce, hdr, tag1, tag2);
            return;
        }
        t2_chacha_fill(t, seq, iv);
        i = 0;
    }
    t->otk_next = seq + 1;
    /* No copy to wipe: otk stays in registers (the key itself stays in the cache until _fini) */
    for (int j = 0; j < 4; j++) {
        otk[j] = (uint64_t)t->otk[2 * j][i] | (uint64_t)t->otk[2 * j + 1][i] << 32;
    }
    t2_chacha_tag(otk, hdr, tag1, tag2);
}

#endif /* T2_HAVE_BATCH */

/* ------------------------------------------------------------------------------------------ */
/* EVP                                                                                          */

static int t2_evp_calc(EVP_CIPHER_CTX *c, const uint8_t nonce[12], const uint8_t hdr[5],
                       const uint8_t tag1[16], uint8_t tag2[16])
{
    uint8_t none[T2_TAG];
    int outl;

    if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, nonce) != 1 ||
        EVP_EncryptUpdate(c, NULL, &outl, hdr, T2_HDR) != 1 ||
        EVP_EncryptUpdate(c, NULL, &outl, tag1, T2_TAG) != 1 ||
        EVP_EncryptFinal_ex(c, none, &outl) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, T2_TAG, tag2) != 1) {
        ERR_clear_error();
        return MMTLS_E_CRYPTO;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* State                                                                                        */

int mmtls_ep_t2_init(struct mmtls_ep_t2 *t, int aead, const uint8_t *k2, size_t k2_len,
                     unsigned flags)
{
    const EVP_CIPHER *cipher;

    if (t == NULL) {
        return MMTLS_E_INVAL;
    }
    memset(t, 0, sizeof(*t)); /* path 0: calc fails until set up */
    if (k2 == NULL) {
        return MMTLS_E_INVAL;
    }
    if (aead == MMTLS_EP_T2_GCM && (k2_len == 16 || k2_len == 32)) {
        cipher = k2_len == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
    } else if (aead == MMTLS_EP_T2_CHACHA && k2_len == 32) {
        cipher = EVP_chacha20_poly1305();
    } else {
        return MMTLS_E_INVAL;
    }
    t->aead = aead;
    if ((flags & MMTLS_EP_T2_F_EVP) == 0) {
        if (aead == MMTLS_EP_T2_CHACHA) {
            memcpy((uint8_t *)t->rk, k2, 32);
#if T2_HAVE_BATCH
            t->otk_avx2 = (flags & MMTLS_EP_T2_F_NOAVX2) == 0 && t2_cpu_avx2();
#endif
            t->path = T2_PATH_CHACHA;
            return 0;
        }
#if T2_HAVE_X86
        if (t2_cpu_aesni()) {
            t2_aesni_init(t, k2, k2_len);
            t->path = T2_PATH_AESNI;
            return 0;
        }
#endif
    }
    t->evp = EVP_CIPHER_CTX_new();
    if (t->evp == NULL) {
        return MMTLS_E_NOMEM;
    }
    if (EVP_EncryptInit_ex(t->evp, cipher, NULL, k2, NULL) != 1) {
        ERR_clear_error();
        mmtls_ep_t2_fini(t);
        return MMTLS_E_CRYPTO;
    }
    t->path = T2_PATH_EVP;
    return 0;
}

int mmtls_ep_t2_calc(struct mmtls_ep_t2 *t, const uint8_t nonce[12], const uint8_t hdr[5],
                     const uint8_t tag1[16], uint8_t tag2[16])
{
    switch (t->path) {
#if T2_HAVE_X86
    case T2_PATH_AESNI: t2_aesni_calc(t, nonce, hdr, tag1, tag2); return 0;
#endif
    case T2_PATH_CHACHA: t2_chacha_calc(t, nonce, hdr, tag1, tag2); return 0;
    case T2_PATH_EVP: return t2_evp_calc(t->evp, nonce, hdr, tag1, tag2);
    default: return MMTLS_E_CRYPTO; /* not set up */
    }
}

int mmtls_ep_t2_calc_seq(struct mmtls_ep_t2 *t, uint64_t seq, const uint8_t nonce[12],
                         const uint8_t hdr[5], const uint8_t tag1[16], uint8_t tag2[16])
{
#if T2_HAVE_BATCH
    if (t->path == T2_PATH_CHACHA) {
        t2_chacha_calc_seq(t, seq, nonce, hdr, tag1, tag2);
        return 0;
    }
#endif
    (void)seq;
    return mmtls_ep_t2_calc(t, nonce, hdr, tag1, tag2);
}

bool mmtls_ep_t2_is_fast(const struct mmtls_ep_t2 *t)
{
    return t->path == T2_PATH_AESNI || t->path == T2_PATH_CHACHA;
}

void mmtls_ep_t2_fini(struct mmtls_ep_t2 *t)
{
    if (t == NULL) {
        return;
    }
    EVP_CIPHER_CTX_free(t->evp); /* wipes its key schedule */
    OPENSSL_cleanse(t, sizeof(*t));
}
