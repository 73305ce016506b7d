/* crypto — record protection: opening (and, for tests and the endpoint library, sealing) TLS
 * records under one direction's keys.
 *
 * As picotls's aead_do_decrypt does, the EVP cipher context is keyed once, when the key is
 * installed; per record only the nonce (AEAD) or IV (CBC) is set again.  Schemes:
 *   TLS 1.3 AEAD           RFC 8446 §5.2-5.4: nonce = iv XOR seq, AAD = record header
 *   TLS 1.2 AES-GCM/CCM    RFC 5288 §3, RFC 6655 §3: nonce = salt(4) || explicit(8)
 *   TLS 1.2 ChaCha20       RFC 7905 §2: nonce = iv XOR seq
 *   TLS 1.0-1.2 CBC+HMAC   RFC 2246/4346/5246 §6.2.3.2 MAC-then-encrypt, RFC 7366 encrypt-then-MAC
 * An object is not thread-safe: it belongs to one direction of one flow, hence one worker.
 */
#include "crypto/crypto.h"

#include <limits.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

/* RFC 5246 §6.2.3: TLSCiphertext.length <= 2^14 + 2048 (TLS 1.3 allows less, RFC 8446 §5.2).
 * Larger fragments are refused outright, which also keeps every length an int for EVP. */
#define RPROT_FRAG_MAX (16384 + 2048)
/* RFC 8446 §5.1 / RFC 5246 §6.2.1: TLSPlaintext.length <= 2^14. */
#define RPROT_PLAIN_MAX 16384
#define RPROT_HDR_LEN 5
#define RPROT_BLOCK_MAX 16 /* AES block; 3DES has 8 */
#define RPROT_MAC_MAX 48   /* HMAC-SHA384 */
#define RPROT_NONCE_LEN 12 /* every AEAD nonce used by TLS */

enum rprot_scheme {
    RPROT_TLS13,     /* TLS 1.3 AEAD */
    RPROT_AEAD_EXPL, /* TLS 1.2 GCM/CCM: 8-byte explicit nonce in the record */
    RPROT_AEAD_XOR,  /* TLS 1.2 ChaCha20-Poly1305: nonce = iv XOR seq */
    RPROT_CBC,       /* TLS 1.0-1.2 CBC with HMAC */
};

struct mmtls_rprot {
    const struct mmtls_suite *suite; /* borrowed: static suite table */
    enum rprot_scheme scheme;
    uint16_t version;
    bool etm;                    /* RFC 7366 encrypt-then-MAC (CBC only) */
    bool ccm;                    /* AES-CCM: tag and length go in before the AAD */
    uint8_t block_len;           /* CBC block size */
    uint8_t explicit_len;        /* bytes before the ciphertext: AEAD explicit nonce or CBC IV */
    uint8_t tag_len;             /* AEAD tag or HMAC length */
    const EVP_CIPHER *cipher;    /* borrowed: process-wide fetched cipher */
    EVP_CIPHER_CTX *dec;         /* owned: keyed at _new, only the IV changes per record */
    EVP_CIPHER_CTX *enc;         /* owned: created on the first seal */
    EVP_MAC_CTX *mac;            /* owned: HMAC keyed at _new (CBC only) */
    uint8_t key[32];             /* kept to key `enc` lazily; wiped in _free */
    uint8_t iv[RPROT_NONCE_LEN]; /* TLS 1.3 / ChaCha static IV, GCM/CCM salt (first 4) */
    uint8_t open_iv[RPROT_BLOCK_MAX]; /* TLS 1.0: CBC residue for the next record opened */
    uint8_t seal_iv[RPROT_BLOCK_MAX]; /* TLS 1.0: CBC residue for the next record sealed */
};

/* ------------------------------------------------------------------------------------------ */
/* Fetched algorithms, cached for the life of the process (CRYPTO_THREAD_run_once).             */

enum rprot_alg {
    ALG_AES128_GCM,
    ALG_AES256_GCM,
    ALG_AES128_CCM,
    ALG_AES256_CCM,
    ALG_CHACHA20_POLY1305,
    ALG_AES128_CBC,
    ALG_AES256_CBC,
    ALG_DES_EDE3_CBC,
    ALG_COUNT,
};

static const char *const alg_names[ALG_COUNT] = {
    "AES-128-GCM",       "AES-256-GCM", "AES-128-CCM", "AES-256-CCM",
    "ChaCha20-Poly1305", "AES-128-CBC", "AES-256-CBC", "DES-EDE3-CBC",
};

static CRYPTO_ONCE rprot_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_CIPHER *rprot_ciphers[ALG_COUNT]; /* owned by the process; NULL if not provided */
static EVP_MAC *rprot_hmac;                  /* owned by the process */

static void rprot_fetch_all(void)
{
    for (size_t i = 0; i < ALG_COUNT; i++) {
        rprot_ciphers[i] = EVP_CIPHER_fetch(NULL, alg_names[i], NULL);
    }
    rprot_hmac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    /* A provider without DES-EDE3-CBC leaves an error behind; it only matters when asked for. */
    ERR_clear_error();
}

static int rprot_alg(const struct mmtls_suite *s, enum rprot_alg *alg)
{
    bool k128 = s->key_len == 16, k256 = s->key_len == 32;

    switch (s->kind) {
    case MMTLS_CIPHER_AES_GCM:
        if (!k128 && !k256) {
            return MMTLS_E_INVAL;
        }
        *alg = k128 ? ALG_AES128_GCM : ALG_AES256_GCM;
        return 0;
    case MMTLS_CIPHER_AES_CCM:
    case MMTLS_CIPHER_AES_CCM8:
        if (!k128 && !k256) {
            return MMTLS_E_INVAL;
        }
        *alg = k128 ? ALG_AES128_CCM : ALG_AES256_CCM;
        return 0;
    case MMTLS_CIPHER_CHACHA20_POLY1305:
        if (!k256) {
            return MMTLS_E_INVAL;
        }
        *alg = ALG_CHACHA20_POLY1305;
        return 0;
    case MMTLS_CIPHER_AES_CBC:
        if (!k128 && !k256) {
            return MMTLS_E_INVAL;
        }
        *alg = k128 ? ALG_AES128_CBC : ALG_AES256_CBC;
        return 0;
    case MMTLS_CIPHER_3DES_CBC:
        if (s->key_len != 24) {
            return MMTLS_E_INVAL;
        }
        *alg = ALG_DES_EDE3_CBC;
        return 0;
    }
    return MMTLS_E_INVAL;
}

/* An OpenSSL refusal that is not the peer's fault: logged at debug level, never per record
 * above it. */
static int rprot_crypto_err(const char *what)
{
    mmtls_log_openssl(MMTLS_LOG_DEBUG, what);
    return MMTLS_E_CRYPTO;
}

/* ------------------------------------------------------------------------------------------ */
/* Construction                                                                                */

/* Keys ctx for direction enc (1 encrypt, 0 decrypt), with the AEAD parameters that must be
 * set before the key. */
static int rprot_ctx_key(struct mmtls_rprot *rp, EVP_CIPHER_CTX *ctx, int enc)
{
    if (EVP_CipherInit_ex(ctx, rp->cipher, NULL, NULL, NULL, enc) != 1) {
        return rprot_crypto_err("cipher init");
    }
    if (rp->scheme == RPROT_CBC) {
        /* TLS padding is checked by hand (RFC 5246 §6.2.3.2), not PKCS#7. */
        if (EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
            return rprot_crypto_err("cipher padding");
        }
    } else {
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, RPROT_NONCE_LEN, NULL) != 1) {
            return rprot_crypto_err("cipher ivlen");
        }
        /* CCM fixes the tag length (M) before the key. */
        if (rp->ccm && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, rp->tag_len, NULL) != 1) {
            return rprot_crypto_err("cipher taglen");
        }
    }
    if (EVP_CipherInit_ex(ctx, NULL, NULL, rp->key, NULL, enc) != 1) {
        return rprot_crypto_err("cipher key");
    }
    return 0;
}

static int rprot_alloc(struct mmtls_rprot **out, const struct mmtls_suite *s)
{
    struct mmtls_rprot *rp;
    enum rprot_alg alg;
    int rc;

    rc = rprot_alg(s, &alg);
    if (rc != 0) {
        return rc;
    }
    if (CRYPTO_THREAD_run_once(&rprot_once, rprot_fetch_all) != 1) {
        return MMTLS_E_CRYPTO;
    }
    if (rprot_ciphers[alg] == NULL) {
        /* e.g. DES-EDE3-CBC missing from the configured providers */
        return MMTLS_E_UNSUPPORTED;
    }
    /* record keys and IVs: secret memory (out of core dumps, wiped when freed); the EVP
     * contexts are OpenSSL's and cleansed by EVP_CIPHER_CTX_free / EVP_MAC_CTX_free */
    rp = mmtls_secmem_calloc(1, sizeof(*rp));
    if (rp == NULL) {
        return MMTLS_E_NOMEM;
    }
    rp->suite = s;
    rp->cipher = rprot_ciphers[alg];
    rp->ccm = s->kind == MMTLS_CIPHER_AES_CCM || s->kind == MMTLS_CIPHER_AES_CCM8;
    *out = rp;
    return 0;
}

static int rprot_finish_new(struct mmtls_rprot *rp)
{
    rp->dec = EVP_CIPHER_CTX_new();
    if (rp->dec == NULL) {
        return MMTLS_E_NOMEM;
    }
    return rprot_ctx_key(rp, rp->dec, 0);
}

int mmtls_rprot_new_tls13(struct mmtls_rprot **out, const struct mmtls_suite *s,
                          const struct mmtls_secret *traffic_secret)
{
    struct mmtls_rprot *rp = NULL;
    int rc;

    if (out == NULL || s == NULL || traffic_secret == NULL || !s->tls13 ||
        s->fixed_iv_len != RPROT_NONCE_LEN || s->key_len > sizeof(rp->key) ||
        (s->tag_len != 16 && s->tag_len != 8)) {
        return MMTLS_E_INVAL;
    }
    *out = NULL;
    rc = rprot_alloc(&rp, s);
    if (rc != 0) {
        return rc;
    }
    rp->scheme = RPROT_TLS13;
    rp->version = 0x0304;
    rp->tag_len = s->tag_len;
    /* RFC 8446 §7.3 */
    rc = mmtls_crypto_tls13_traffic_keys(s, traffic_secret, rp->key, rp->iv);
    if (rc != 0) {
        goto out_free;
    }
    rc = rprot_finish_new(rp);
    if (rc != 0) {
        goto out_free;
    }
    *out = rp;
    return 0;

out_free:
    mmtls_rprot_free(rp);
    return rc;
}

/* Which versions a TLS 1.0-1.2 suite may be used with: AEAD suites and the SHA-256/SHA-384
 * HMAC suites are TLS 1.2 only (RFC 5246 §6.2.3.3, RFC 5289 §3); the SHA-1 CBC suites exist
 * since TLS 1.0 (RFC 2246, RFC 3268, RFC 4492). */
static bool rprot_version_ok(const struct mmtls_suite *s, uint16_t version)
{
    if (version < 0x0301 || version > 0x0303) {
        return false;
    }
    if (s->kind == MMTLS_CIPHER_AES_CBC || s->kind == MMTLS_CIPHER_3DES_CBC) {
        return s->mac_md == MMTLS_MD_SHA1 || version == 0x0303;
    }
    return version == 0x0303;
}

int mmtls_rprot_new_tls12(struct mmtls_rprot **out, const struct mmtls_suite *s, uint16_t version,
                          bool encrypt_then_mac, const struct mmtls_key_block *kb, int writer)
{
    struct mmtls_rprot *rp = NULL;
    bool cbc;
    int rc;

    if (out == NULL || s == NULL || kb == NULL || s->tls13 || (writer != 0 && writer != 1)) {
        return MMTLS_E_INVAL;
    }
    *out = NULL;
    if (!rprot_version_ok(s, version)) {
        return MMTLS_E_UNSUPPORTED;
    }
    cbc = s->kind == MMTLS_CIPHER_AES_CBC || s->kind == MMTLS_CIPHER_3DES_CBC;
    /* The key block must have been cut for this suite and version (mmtls_crypto_tls12_key_block).
     */
    if (kb->key_len != s->key_len || s->key_len > sizeof(rp->key) ||
        kb->mac_len != (cbc ? mmtls_md_size(s->mac_md) : 0) ||
        kb->iv_len != (!cbc || version == 0x0301 ? s->fixed_iv_len : 0) ||
        kb->iv_len > sizeof(kb->iv[0]) || kb->mac_len > sizeof(kb->mac[0])) {
        return MMTLS_E_INVAL;
    }
    if (cbc && (s->fixed_iv_len != 8 && s->fixed_iv_len != 16)) {
        return MMTLS_E_INVAL;
    }
    if (!cbc && (s->fixed_iv_len != (s->kind == MMTLS_CIPHER_CHACHA20_POLY1305 ? 12 : 4) ||
                 (s->tag_len != 16 && s->tag_len != 8))) {
        return MMTLS_E_INVAL;
    }
    rc = rprot_alloc(&rp, s);
    if (rc != 0) {
        return rc;
    }
    rp->version = version;
    memcpy(rp->key, kb->key[writer], s->key_len);
    if (cbc) {
        const char *md = mmtls_md_name(s->mac_md);
        OSSL_PARAM params[2];

        rp->scheme = RPROT_CBC;
        /* RFC 7366 §2: encrypt-then-MAC applies to block ciphers only. */
        rp->etm = encrypt_then_mac;
        rp->block_len = s->fixed_iv_len;
        rp->explicit_len = version >= 0x0302 ? rp->block_len : 0;
        rp->tag_len = kb->mac_len;
        if (version == 0x0301) {
            /* RFC 2246 §6.3: the first IV comes from the key block, then each record's last
             * ciphertext block is the next IV. */
            memcpy(rp->open_iv, kb->iv[writer], rp->block_len);
            memcpy(rp->seal_iv, kb->iv[writer], rp->block_len);
        }
        if (md == NULL) {
            rc = MMTLS_E_INVAL;
            goto out_free;
        }
        if (rprot_hmac == NULL) {
            rc = MMTLS_E_CRYPTO;
            goto out_free;
        }
        rp->mac = EVP_MAC_CTX_new(rprot_hmac);
        if (rp->mac == NULL) {
            rc = MMTLS_E_NOMEM;
            goto out_free;
        }
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)md, 0);
        params[1] = OSSL_PARAM_construct_end();
        if (EVP_MAC_init(rp->mac, kb->mac[writer], kb->mac_len, params) != 1) {
            rc = rprot_crypto_err("hmac init");
            goto out_free;
        }
    } else if (s->kind == MMTLS_CIPHER_CHACHA20_POLY1305) {
        rp->scheme = RPROT_AEAD_XOR;
        rp->tag_len = s->tag_len;
        memcpy(rp->iv, kb->iv[writer], RPROT_NONCE_LEN);
    } else {
        rp->scheme = RPROT_AEAD_EXPL;
        rp->tag_len = s->tag_len;
        rp->explicit_len = 8;
        memcpy(rp->iv, kb->iv[writer], 4);
    }
    rc = rprot_finish_new(rp);
    if (rc != 0) {
        goto out_free;
    }
    *out = rp;
    return 0;

out_free:
    mmtls_rprot_free(rp);
    return rc;
}

void mmtls_rprot_free(struct mmtls_rprot *rp)
{
    if (rp == NULL) {
        return;
    }
    EVP_CIPHER_CTX_free(rp->dec);
    EVP_CIPHER_CTX_free(rp->enc);
    EVP_MAC_CTX_free(rp->mac);
    mmtls_secmem_free(rp); /* wipes */
}

size_t mmtls_rprot_max_plain(const struct mmtls_rprot *rp, size_t frag_len)
{
    size_t overhead;

    if (rp == NULL) {
        return 0;
    }
    switch (rp->scheme) {
    case RPROT_TLS13:
        /* RFC 8446 §5.2: tag + the inner content type */
        overhead = (size_t)rp->tag_len + 1;
        break;
    case RPROT_CBC:
        /* explicit IV + MAC + at least the padding-length byte */
        overhead = (size_t)rp->explicit_len + rp->tag_len + 1;
        break;
    default: overhead = (size_t)rp->explicit_len + rp->tag_len; break;
    }
    return frag_len > overhead ? frag_len - overhead : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Per-record helpers                                                                          */

/* nonce = iv XOR seq left-padded to 12 bytes (RFC 8446 §5.3, RFC 7905 §2). */
static void rprot_xor_nonce(const struct mmtls_rprot *rp, uint64_t seq, uint8_t *nonce)
{
    memcpy(nonce, rp->iv, RPROT_NONCE_LEN);
    for (int i = 0; i < 8; i++) {
        nonce[RPROT_NONCE_LEN - 1 - i] ^= (uint8_t)(seq >> (8 * i));
    }
}

/* RFC 5246 §6.2.3.1/§6.2.3.3: seq_num(8) || type(1) || version(2) || length(2). */
static void rprot_pseudo_hdr(uint8_t *ph, uint64_t seq, uint8_t type, const uint8_t *ver,
                             size_t len)
{
    mmtls_put_be64(ph, seq);
    ph[8] = type;
    ph[9] = ver[0];
    ph[10] = ver[1];
    mmtls_put_be16(ph + 11, (uint16_t)len);
}

/* One AEAD pass over in[0..len) into out (in == out allowed).  Decrypt: verifies tag and
 * returns MMTLS_E_AUTH on mismatch.  Encrypt: writes the tag into tag. */
static int rprot_aead(struct mmtls_rprot *rp, EVP_CIPHER_CTX *ctx, int enc, const uint8_t *nonce,
                      const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                      uint8_t *out, uint8_t *tag)
{
    static const uint8_t empty[1];
    int outl = 0, finl = 0;

    /* A zero-length payload still needs a non-NULL input pointer: NULL input means
     * "length only" / "AAD" to OpenSSL. */
    if (len == 0) {
        in = empty;
    }
    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, enc) != 1) {
        return rprot_crypto_err("aead nonce");
    }
    if (rp->ccm) {
        /* OpenSSL CCM: the expected tag (decrypt) and the total length precede the AAD. */
        if (!enc &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, rp->tag_len, (void *)tag) != 1) {
            return rprot_crypto_err("ccm tag");
        }
        if (EVP_CipherUpdate(ctx, NULL, &outl, NULL, (int)len) != 1) {
            return rprot_crypto_err("ccm length");
        }
    }
    if (EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)aad_len) != 1) {
        return rprot_crypto_err("aead aad");
    }
    if (EVP_CipherUpdate(ctx, out, &outl, in, (int)len) != 1) {
        if (rp->ccm && !enc) {
            /* CCM verifies within the update: a mismatch is the peer's fault */
            ERR_clear_error();
            return MMTLS_E_AUTH;
        }
        return rprot_crypto_err("aead update");
    }
    if ((size_t)outl != len) {
        return MMTLS_E_INTERNAL;
    }
    if (rp->ccm) {
        if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, rp->tag_len, tag) != 1) {
            return rprot_crypto_err("ccm get tag");
        }
        return 0;
    }
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, rp->tag_len, (void *)tag) != 1) {
        return rprot_crypto_err("aead tag");
    }
    if (EVP_CipherFinal_ex(ctx, out + len, &finl) != 1) {
        if (!enc) {
            ERR_clear_error();
            return MMTLS_E_AUTH;
        }
        return rprot_crypto_err("aead final");
    }
    if (finl != 0) {
        return MMTLS_E_INTERNAL;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, rp->tag_len, tag) != 1) {
        return rprot_crypto_err("aead get tag");
    }
    return 0;
}

/* CBC pass (no padding handling) over len bytes, a multiple of the block size. */
static int rprot_cbc(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *iv, const uint8_t *in, size_t len,
                     uint8_t *out)
{
    int outl = 0;

    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, enc) != 1) {
        return rprot_crypto_err("cbc iv");
    }
    if (len != 0 && EVP_CipherUpdate(ctx, out, &outl, in, (int)len) != 1) {
        return rprot_crypto_err("cbc update");
    }
    if ((size_t)outl != len) {
        return MMTLS_E_INTERNAL;
    }
    return 0;
}

/* HMAC(mac_key, pseudo_hdr(13) || a || b) into mac (rp->tag_len bytes). */
static int rprot_hmac_calc(struct mmtls_rprot *rp, const uint8_t *ph, const uint8_t *a,
                           size_t a_len, const uint8_t *b, size_t b_len, uint8_t *mac)
{
    size_t outl = 0;

    /* NULL key: re-initialise with the key set in _new */
    if (EVP_MAC_init(rp->mac, NULL, 0, NULL) != 1 || EVP_MAC_update(rp->mac, ph, 13) != 1 ||
        (a_len != 0 && EVP_MAC_update(rp->mac, a, a_len) != 1) ||
        (b_len != 0 && EVP_MAC_update(rp->mac, b, b_len) != 1) ||
        EVP_MAC_final(rp->mac, mac, &outl, RPROT_MAC_MAX) != 1) {
        return rprot_crypto_err("hmac");
    }
    if (outl != rp->tag_len) {
        return MMTLS_E_INTERNAL;
    }
    return 0;
}

/* RFC 5246 §6.2.3.2: every padding byte, and the length byte, equal the padding length.
 * Checks the last pad+1 bytes of p[0..len) in time independent of where a mismatch lies;
 * returns the padding length + 1 or 0 if the padding is invalid or leaves < min_left bytes. */
static size_t rprot_cbc_unpad(const uint8_t *p, size_t len, size_t min_left)
{
    uint8_t pad, diff = 0;

    if (len == 0) {
        return 0;
    }
    pad = p[len - 1];
    if ((size_t)pad + 1 + min_left > len) {
        return 0;
    }
    for (size_t i = 0; i <= pad; i++) {
        diff |= (uint8_t)(p[len - 1 - i] ^ pad);
    }
    return diff == 0 ? (size_t)pad + 1 : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Open                                                                                        */

static int rprot_open_tls13(struct mmtls_rprot *rp, uint64_t seq, const uint8_t *hdr,
                            const uint8_t *frag, size_t frag_len, uint8_t *out, size_t *out_len,
                            uint8_t *inner_type)
{
    uint8_t nonce[RPROT_NONCE_LEN], tag[16];
    size_t ct_len, i;
    int rc;

    /* RFC 8446 §5.2: at least the tag and the content type byte */
    if (frag_len < (size_t)rp->tag_len + 1) {
        return MMTLS_E_MALFORMED;
    }
    ct_len = frag_len - rp->tag_len;
    memcpy(tag, frag + ct_len, rp->tag_len);
    rprot_xor_nonce(rp, seq, nonce);
    /* RFC 8446 §5.2: additional_data = the record header as sent */
    rc = rprot_aead(rp, rp->dec, 0, nonce, hdr, RPROT_HDR_LEN, frag, ct_len, out, tag);
    if (rc != 0) {
        OPENSSL_cleanse(out, ct_len);
        return rc;
    }
    /* RFC 8446 §5.4: strip zero padding; the last non-zero byte is the real content type.
     * The scan is bounded by ct_len. */
    for (i = ct_len; i > 0 && out[i - 1] == 0; i--) {
    }
    if (i == 0) {
        /* all zeros: no content type (unexpected_message in RFC 8446 §5.4) */
        OPENSSL_cleanse(out, ct_len);
        return MMTLS_E_MALFORMED;
    }
    *inner_type = out[i - 1];
    *out_len = i - 1;
    return 0;
}

static int rprot_open_aead12(struct mmtls_rprot *rp, uint64_t seq, const uint8_t *hdr,
                             const uint8_t *frag, size_t frag_len, uint8_t *out, size_t *out_len)
{
    uint8_t nonce[RPROT_NONCE_LEN], tag[16], aad[13];
    size_t ex = rp->explicit_len, ct_len;
    int rc;

    if (frag_len < ex + rp->tag_len) {
        return MMTLS_E_MALFORMED;
    }
    ct_len = frag_len - ex - rp->tag_len;
    if (rp->scheme == RPROT_AEAD_EXPL) {
        /* RFC 5288 §3: nonce = salt (4, key block) || nonce_explicit (8, record) */
        memcpy(nonce, rp->iv, 4);
        memcpy(nonce + 4, frag, 8);
    } else {
        rprot_xor_nonce(rp, seq, nonce);
    }
    memcpy(tag, frag + ex + ct_len, rp->tag_len);
    /* RFC 5246 §6.2.3.3: additional_data = seq_num + type + version + length (plaintext) */
    rprot_pseudo_hdr(aad, seq, hdr[0], hdr + 1, ct_len);
    /* Decrypt to out + ex: exactly over the ciphertext when out == frag (OpenSSL allows only
     * exact overlap), then slide the plaintext to the front. */
    rc = rprot_aead(rp, rp->dec, 0, nonce, aad, sizeof(aad), frag + ex, ct_len, out + ex, tag);
    if (rc != 0) {
        OPENSSL_cleanse(out + ex, ct_len);
        return rc;
    }
    if (ex != 0) {
        memmove(out, out + ex, ct_len);
    }
    *out_len = ct_len;
    return 0;
}

static int rprot_open_cbc(struct mmtls_rprot *rp, uint64_t seq, const uint8_t *hdr,
                          const uint8_t *frag, size_t frag_len, uint8_t *out, size_t *out_len)
{
    uint8_t iv[RPROT_BLOCK_MAX], next_iv[RPROT_BLOCK_MAX], mac[RPROT_MAC_MAX],
        expect[RPROT_MAC_MAX], ph[13];
    size_t bs = rp->block_len, ex = rp->explicit_len, ml = rp->tag_len, ct_len, padl, plen;
    int rc;

    if (rp->etm) {
        /* RFC 7366 §3: IV || ENCRYPTED_CONTENT || MAC, content at least one block */
        if (frag_len < ex + bs + ml || (frag_len - ex - ml) % bs != 0) {
            return MMTLS_E_MALFORMED;
        }
        ct_len = frag_len - ex - ml;
        /* MAC(MAC_write_key, seq_num + type + version + length + IV + ENCRYPTED_CONTENT),
         * length counting IV and content; checked before anything is decrypted. */
        rprot_pseudo_hdr(ph, seq, hdr[0], hdr + 1, ex + ct_len);
        rc = rprot_hmac_calc(rp, ph, frag, ex + ct_len, NULL, 0, expect);
        if (rc != 0) {
            return rc;
        }
        if (!mmtls_ct_eq(expect, frag + ex + ct_len, ml)) {
            return MMTLS_E_AUTH;
        }
    } else {
        /* RFC 5246 §6.2.3.2: (IV) || ENC(content || MAC || padding || padding_length) */
        if (frag_len < ex + bs || (frag_len - ex) % bs != 0 ||
            frag_len - ex < ((ml + 1 + bs - 1) / bs) * bs) {
            return MMTLS_E_MALFORMED;
        }
        ct_len = frag_len - ex;
    }
    if (ex != 0) {
        memcpy(iv, frag, bs);
    } else {
        memcpy(iv, rp->open_iv, bs);
    }
    /* TLS 1.0: the last ciphertext block chains into the next record; taken before an in-place
     * decryption overwrites it, committed only on success. */
    memcpy(next_iv, frag + ex + ct_len - bs, bs);
    rc = rprot_cbc(rp->dec, 0, iv, frag + ex, ct_len, out + ex);
    if (rc != 0) {
        OPENSSL_cleanse(out + ex, ct_len);
        return rc;
    }
    if (ex != 0) {
        memmove(out, out + ex, ct_len);
    }
    if (rp->etm) {
        padl = rprot_cbc_unpad(out, ct_len, 0);
        if (padl == 0) {
            rc = MMTLS_E_AUTH;
            goto out_fail;
        }
        plen = ct_len - padl;
    } else {
        padl = rprot_cbc_unpad(out, ct_len, ml);
        /* On bad padding the MAC is still computed (over a zero-padding guess) so that the
         * work done does not tell padding failures from MAC failures. */
        plen = ct_len - (padl != 0 ? padl : 1) - ml;
        rprot_pseudo_hdr(ph, seq, hdr[0], hdr + 1, plen);
        rc = rprot_hmac_calc(rp, ph, out, plen, NULL, 0, expect);
        if (rc != 0) {
            goto out_fail;
        }
        memcpy(mac, out + plen, ml);
        if (!mmtls_ct_eq(expect, mac, ml) || padl == 0) {
            rc = MMTLS_E_AUTH;
            goto out_fail;
        }
    }
    if (ex == 0) {
        memcpy(rp->open_iv, next_iv, bs);
    }
    *out_len = plen;
    return 0;

out_fail:
    OPENSSL_cleanse(out, ct_len);
    return rc;
}

int mmtls_rprot_open(struct mmtls_rprot *rp, uint64_t seq, const uint8_t hdr[5],
                     const uint8_t *frag, size_t frag_len, uint8_t *out, size_t *out_len,
                     uint8_t *inner_type)
{
    int rc;

    if (rp == NULL || hdr == NULL || out == NULL || out_len == NULL || inner_type == NULL ||
        (frag == NULL && frag_len != 0)) {
        return MMTLS_E_INVAL;
    }
    if (frag_len > RPROT_FRAG_MAX) {
        return MMTLS_E_MALFORMED;
    }
    if (frag == NULL) {
        /* frag_len == 0: too short for every scheme */
        return MMTLS_E_MALFORMED;
    }
    switch (rp->scheme) {
    case RPROT_TLS13:
        return rprot_open_tls13(rp, seq, hdr, frag, frag_len, out, out_len, inner_type);
    case RPROT_AEAD_EXPL:
    case RPROT_AEAD_XOR: rc = rprot_open_aead12(rp, seq, hdr, frag, frag_len, out, out_len); break;
    case RPROT_CBC: rc = rprot_open_cbc(rp, seq, hdr, frag, frag_len, out, out_len); break;
    default: return MMTLS_E_INTERNAL;
    }
    if (rc == 0) {
        *inner_type = hdr[0];
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Seal                                                                                        */

static int rprot_enc_ctx(struct mmtls_rprot *rp)
{
    int rc;

    if (rp->enc != NULL) {
        return 0;
    }
    rp->enc = EVP_CIPHER_CTX_new();
    if (rp->enc == NULL) {
        return MMTLS_E_NOMEM;
    }
    rc = rprot_ctx_key(rp, rp->enc, 1);
    if (rc != 0) {
        EVP_CIPHER_CTX_free(rp->enc);
        rp->enc = NULL;
    }
    return rc;
}

int mmtls_rprot_seal_tls13_hdr(struct mmtls_rprot *rp, uint64_t seq, const uint8_t hdr[5],
                               const uint8_t *inner, size_t inner_len, uint8_t *out)
{
    uint8_t nonce[RPROT_NONCE_LEN];
    int rc;

    if (rp == NULL || rp->scheme != RPROT_TLS13 || inner == NULL || out == NULL || inner_len == 0 ||
        inner_len > RPROT_PLAIN_MAX + 256) {
        return MMTLS_E_INVAL;
    }
    rc = rprot_enc_ctx(rp);
    if (rc != 0) {
        return rc;
    }
    if (out != inner) {
        memmove(out, inner, inner_len);
    }
    rprot_xor_nonce(rp, seq, nonce);
    return rprot_aead(rp, rp->enc, 1, nonce, hdr, RPROT_HDR_LEN, out, inner_len, out,
                      out + inner_len);
}

int mmtls_rprot_seal(struct mmtls_rprot *rp, uint64_t seq, uint8_t type, uint16_t version,
                     const uint8_t *plain, size_t plain_len, size_t pad_len, uint8_t *out,
                     size_t out_cap, size_t *out_len)
{
    uint8_t ver[2], nonce[RPROT_NONCE_LEN], ph[13], iv[RPROT_BLOCK_MAX];
    size_t ex, bs, ml, frag_len, body, npad = 0;
    uint8_t *f;
    int rc;

    if (rp == NULL || out == NULL || out_len == NULL || (plain == NULL && plain_len != 0) ||
        plain_len > RPROT_PLAIN_MAX) {
        return MMTLS_E_INVAL;
    }
    if (rp->scheme == RPROT_TLS13) {
        /* RFC 8446 §5.4: TLSInnerPlaintext is at most 2^14 + 1 bytes */
        if (pad_len > RPROT_PLAIN_MAX - plain_len) {
            return MMTLS_E_INVAL;
        }
    } else if (pad_len != 0) {
        return MMTLS_E_INVAL;
    }
    ex = rp->explicit_len;
    bs = rp->block_len;
    ml = rp->tag_len;
    switch (rp->scheme) {
    case RPROT_TLS13: frag_len = plain_len + 1 + pad_len + ml; break;
    case RPROT_AEAD_EXPL:
    case RPROT_AEAD_XOR: frag_len = ex + plain_len + ml; break;
    case RPROT_CBC:
        /* RFC 5246 §6.2.3.2: pad content (|| MAC for MAC-then-encrypt) || padding_length to a
         * whole number of blocks with the least padding. */
        body = plain_len + (rp->etm ? 0 : ml) + 1;
        npad = (bs - body % bs) % bs;
        frag_len = ex + body + npad + (rp->etm ? ml : 0);
        break;
    default: return MMTLS_E_INTERNAL;
    }
    if (RPROT_HDR_LEN > out_cap || frag_len > out_cap - RPROT_HDR_LEN) {
        return MMTLS_E_LIMIT;
    }
    rc = rprot_enc_ctx(rp);
    if (rc != 0) {
        return rc;
    }
    ver[0] = (uint8_t)(version >> 8);
    ver[1] = (uint8_t)version;
    /* RFC 8446 §5.2: outer type application_data(23); the real type goes inside */
    out[0] = rp->scheme == RPROT_TLS13 ? 23 : type;
    out[1] = ver[0];
    out[2] = ver[1];
    mmtls_put_be16(out + 3, (uint16_t)frag_len);
    f = out + RPROT_HDR_LEN;

    switch (rp->scheme) {
    case RPROT_TLS13: {
        size_t inner = plain_len + 1 + pad_len;

        /* memmove: plain may already sit at f */
        if (plain_len != 0) {
            memmove(f, plain, plain_len);
        }
        f[plain_len] = type;
        memset(f + plain_len + 1, 0, pad_len);
        rprot_xor_nonce(rp, seq, nonce);
        rc = rprot_aead(rp, rp->enc, 1, nonce, out, RPROT_HDR_LEN, f, inner, f, f + inner);
        break;
    }
    case RPROT_AEAD_EXPL:
    case RPROT_AEAD_XOR:
        if (plain_len != 0) {
            memmove(f + ex, plain, plain_len);
        }
        if (rp->scheme == RPROT_AEAD_EXPL) {
            /* the sequence number as the explicit nonce, as OpenSSL does (RFC 5288 §3) */
            memcpy(nonce, rp->iv, 4);
            mmtls_put_be64(nonce + 4, seq);
            memcpy(f, nonce + 4, 8);
        } else {
            rprot_xor_nonce(rp, seq, nonce);
        }
        rprot_pseudo_hdr(ph, seq, type, ver, plain_len);
        rc = rprot_aead(rp, rp->enc, 1, nonce, ph, sizeof(ph), f + ex, plain_len, f + ex,
                        f + ex + plain_len);
        break;
    case RPROT_CBC: {
        uint8_t *c = f + ex;
        size_t ct_len = frag_len - ex - (rp->etm ? ml : 0), at;

        if (plain_len != 0) {
            memmove(c, plain, plain_len);
        }
        at = plain_len;
        if (!rp->etm) {
            rprot_pseudo_hdr(ph, seq, type, ver, plain_len);
            rc = rprot_hmac_calc(rp, ph, c, plain_len, NULL, 0, c + at);
            if (rc != 0) {
                break;
            }
            at += ml;
        }
        memset(c + at, (int)npad, npad + 1);
        if (ex != 0) {
            /* RFC 5246 §6.2.3.2: a fresh unpredictable IV per record */
            if (RAND_bytes(iv, (int)bs) != 1) {
                rc = rprot_crypto_err("cbc iv rand");
                break;
            }
            memcpy(f, iv, bs);
        } else {
            memcpy(iv, rp->seal_iv, bs);
        }
        rc = rprot_cbc(rp->enc, 1, iv, c, ct_len, c);
        if (rc != 0) {
            break;
        }
        if (rp->etm) {
            rprot_pseudo_hdr(ph, seq, type, ver, ex + ct_len);
            rc = rprot_hmac_calc(rp, ph, f, ex + ct_len, NULL, 0, c + ct_len);
            if (rc != 0) {
                break;
            }
        }
        if (ex == 0) {
            memcpy(rp->seal_iv, c + ct_len - bs, bs);
        }
        break;
    }
    default: rc = MMTLS_E_INTERNAL; break;
    }
    if (rc != 0) {
        OPENSSL_cleanse(out, RPROT_HDR_LEN + frag_len);
        return rc;
    }
    *out_len = RPROT_HDR_LEN + frag_len;
    return 0;
}
