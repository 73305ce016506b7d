/* crypto — key schedules: TLS 1.3 HKDF-Expand-Label (RFC 8446 §7.1-7.3) and the TLS PRF with
 * the TLS 1.0-1.2 key block (RFC 2246 §5/§6.3, RFC 5246 §5/§6.3), over OpenSSL 3 EVP_KDF.
 */
#include "crypto/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

/* The KDF implementations are fetched once per process and kept: fetching is a provider
 * lookup under a lock, too slow to repeat per session. */
static CRYPTO_ONCE kdf_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_KDF *kdf_hkdf;   /* owned by the process; never freed */
static EVP_KDF *kdf_tlsprf; /* owned by the process; never freed */

static void kdf_fetch_all(void)
{
    kdf_hkdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
    kdf_tlsprf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_TLS1_PRF, NULL);
}

const char *mmtls_md_name(enum mmtls_md md)
{
    switch (md) {
    case MMTLS_MD_MD5: return "MD5";
    case MMTLS_MD_SHA1: return "SHA1";
    case MMTLS_MD_SHA256: return "SHA256";
    case MMTLS_MD_SHA384: return "SHA384";
    case MMTLS_MD_NONE: break;
    }
    return NULL;
}

/* Runs one derivation of kdf with params into out; MMTLS_E_CRYPTO on any refusal. */
static int kdf_derive(EVP_KDF *kdf, const OSSL_PARAM *params, uint8_t *out, size_t out_len,
                      const char *what)
{
    EVP_KDF_CTX *kctx;
    int rc = 0;

    if (kdf == NULL) {
        mmtls_log(MMTLS_LOG_DEBUG, "%s: KDF not available", what);
        return MMTLS_E_CRYPTO;
    }
    kctx = EVP_KDF_CTX_new(kdf);
    if (kctx == NULL) {
        mmtls_log_openssl(MMTLS_LOG_DEBUG, what);
        return MMTLS_E_CRYPTO;
    }
    if (EVP_KDF_derive(kctx, out, out_len, params) != 1) {
        mmtls_log_openssl(MMTLS_LOG_DEBUG, what);
        OPENSSL_cleanse(out, out_len);
        rc = MMTLS_E_CRYPTO;
    }
    EVP_KDF_CTX_free(kctx);
    return rc;
}

static int kdf_init(void)
{
    if (CRYPTO_THREAD_run_once(&kdf_once, kdf_fetch_all) != 1) {
        return MMTLS_E_CRYPTO;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* TLS 1.3                                                                                     */

#define TLS13_LABEL_PREFIX "tls13 "

int mmtls_crypto_hkdf_expand_label(enum mmtls_md md, const uint8_t *secret, size_t secret_len,
                                   const char *label, const uint8_t *ctx, size_t ctx_len,
                                   uint8_t *out, size_t out_len)
{
    /* RFC 8446 §7.1: struct { uint16 length; opaque label<7..255> = "tls13 " + Label;
     * opaque context<0..255>; } HkdfLabel; */
    uint8_t info[2 + 1 + 255 + 1 + 255];
    size_t plen = sizeof(TLS13_LABEL_PREFIX) - 1, llen, n = 0;
    const char *name = mmtls_md_name(md);
    OSSL_PARAM params[5];
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    int rc;

    if (name == NULL || md == MMTLS_MD_MD5 || secret == NULL || label == NULL || out == NULL ||
        (ctx == NULL && ctx_len != 0)) {
        return MMTLS_E_INVAL;
    }
    llen = strlen(label);
    if (llen > 255 - plen || ctx_len > 255 || out_len == 0 || out_len > UINT16_MAX ||
        out_len > 255 * mmtls_md_size(md)) {
        return MMTLS_E_INVAL;
    }
    rc = kdf_init();
    if (rc != 0) {
        return rc;
    }
    mmtls_put_be16(info, (uint16_t)out_len);
    n = 2;
    info[n++] = (uint8_t)(plen + llen);
    memcpy(info + n, TLS13_LABEL_PREFIX, plen);
    n += plen;
    memcpy(info + n, label, llen);
    n += llen;
    info[n++] = (uint8_t)ctx_len;
    if (ctx_len != 0) {
        memcpy(info + n, ctx, ctx_len);
        n += ctx_len;
    }
    params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)name, 0);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
    params[4] = OSSL_PARAM_construct_end();
    return kdf_derive(kdf_hkdf, params, out, out_len, "HKDF-Expand-Label");
}

int mmtls_crypto_tls13_next_secret(const struct mmtls_suite *s, const struct mmtls_secret *cur,
                                   struct mmtls_secret *next)
{
    size_t hlen;
    int rc;

    if (s == NULL || cur == NULL || next == NULL || !s->tls13) {
        return MMTLS_E_INVAL;
    }
    hlen = mmtls_md_size(s->prf_md);
    if (cur->len != hlen || hlen > sizeof(next->b)) {
        return MMTLS_E_INVAL;
    }
    /* RFC 8446 §7.2: application_traffic_secret_N+1 =
     *     HKDF-Expand-Label(application_traffic_secret_N, "traffic upd", "", Hash.length) */
    rc = mmtls_crypto_hkdf_expand_label(s->prf_md, cur->b, cur->len, "traffic upd", NULL, 0,
                                        next->b, hlen);
    if (rc != 0) {
        mmtls_secret_wipe(next);
        return rc;
    }
    next->len = (uint8_t)hlen;
    return 0;
}

int mmtls_crypto_tls13_traffic_keys(const struct mmtls_suite *s, const struct mmtls_secret *secret,
                                    uint8_t *key, uint8_t *iv)
{
    int rc;

    if (s == NULL || secret == NULL || key == NULL || iv == NULL || !s->tls13) {
        return MMTLS_E_INVAL;
    }
    if (secret->len != mmtls_md_size(s->prf_md)) {
        return MMTLS_E_INVAL;
    }
    /* RFC 8446 §7.3: [sender]_write_key = HKDF-Expand-Label(Secret, "key", "", key_length)
     *                [sender]_write_iv  = HKDF-Expand-Label(Secret, "iv", "", iv_length) */
    rc = mmtls_crypto_hkdf_expand_label(s->prf_md, secret->b, secret->len, "key", NULL, 0, key,
                                        s->key_len);
    if (rc == 0) {
        rc = mmtls_crypto_hkdf_expand_label(s->prf_md, secret->b, secret->len, "iv", NULL, 0, iv,
                                            s->fixed_iv_len);
    }
    if (rc != 0) {
        OPENSSL_cleanse(key, s->key_len);
        OPENSSL_cleanse(iv, s->fixed_iv_len);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* TLS 1.0-1.2                                                                                 */

/* label || seed1 || seed2 is the PRF seed; labels are short ASCII and seeds are randoms or a
 * session hash, so a fixed bound keeps the buffer on the stack. */
#define PRF_SEED_MAX 512

int mmtls_crypto_tls_prf(uint16_t version, enum mmtls_md md, const uint8_t *secret,
                         size_t secret_len, const char *label, const uint8_t *seed1,
                         size_t seed1_len, const uint8_t *seed2, size_t seed2_len, uint8_t *out,
                         size_t out_len)
{
    uint8_t seed[PRF_SEED_MAX];
    const char *name;
    size_t llen, n;
    OSSL_PARAM params[4];
    int rc;

    if (secret == NULL || label == NULL || out == NULL || out_len == 0 ||
        (seed1 == NULL && seed1_len != 0) || (seed2 == NULL && seed2_len != 0)) {
        return MMTLS_E_INVAL;
    }
    if (version < 0x0301 || version > 0x0303) {
        return MMTLS_E_UNSUPPORTED;
    }
    if (version < 0x0303) {
        /* RFC 2246 §5: PRF = P_MD5(S1, ...) XOR P_SHA-1(S2, ...), which OpenSSL's TLS1-PRF
         * computes when given the MD5-SHA1 digest. */
        name = "MD5-SHA1";
    } else {
        /* RFC 5246 §5: P_<hash> with the suite's PRF hash (SHA-256 at least). */
        if (md != MMTLS_MD_SHA256 && md != MMTLS_MD_SHA384) {
            return MMTLS_E_INVAL;
        }
        name = mmtls_md_name(md);
    }
    llen = strlen(label);
    if (llen > PRF_SEED_MAX || seed1_len > PRF_SEED_MAX - llen ||
        seed2_len > PRF_SEED_MAX - llen - seed1_len) {
        return MMTLS_E_INVAL;
    }
    rc = kdf_init();
    if (rc != 0) {
        return rc;
    }
    memcpy(seed, label, llen);
    n = llen;
    if (seed1_len != 0) {
        memcpy(seed + n, seed1, seed1_len);
        n += seed1_len;
    }
    if (seed2_len != 0) {
        memcpy(seed + n, seed2, seed2_len);
        n += seed2_len;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)name, 0);
    params[1] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)secret, secret_len);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, n);
    params[3] = OSSL_PARAM_construct_end();
    return kdf_derive(kdf_tlsprf, params, out, out_len, "TLS PRF");
}

int mmtls_crypto_tls12_key_block(const struct mmtls_suite *s, uint16_t version,
                                 const struct mmtls_secret *master, const uint8_t client_random[32],
                                 const uint8_t server_random[32], struct mmtls_key_block *kb)
{
    /* Largest block: 2 * 48 (HMAC-SHA384) + 2 * 32 + 2 * 16. */
    uint8_t block[2 * 48 + 2 * 32 + 2 * 16];
    size_t mac_len = 0, iv_len = 0, total, off = 0;
    bool aead;
    int rc;

    if (s == NULL || master == NULL || client_random == NULL || server_random == NULL ||
        kb == NULL || s->tls13) {
        return MMTLS_E_INVAL;
    }
    if (version < 0x0301 || version > 0x0303) {
        return MMTLS_E_UNSUPPORTED;
    }
    aead = s->kind != MMTLS_CIPHER_AES_CBC && s->kind != MMTLS_CIPHER_3DES_CBC;
    if (aead) {
        /* AEAD suites exist only from TLS 1.2 on (RFC 5246 §6.2.3.3). RFC 5246 §6.3: the
         * fixed (implicit) part of the nonce comes from the key block. */
        if (version < 0x0303) {
            return MMTLS_E_UNSUPPORTED;
        }
        iv_len = s->fixed_iv_len;
    } else {
        mac_len = mmtls_md_size(s->mac_md);
        /* RFC 2246 §6.3: TLS 1.0 takes the first CBC IV from the key block; from TLS 1.1 on
         * (RFC 4346 §6.2.3.2, RFC 5246 §6.2.3.2) every record carries an explicit IV. */
        if (version == 0x0301) {
            iv_len = s->fixed_iv_len;
        }
    }
    if (mac_len > sizeof(kb->mac[0]) || s->key_len > sizeof(kb->key[0]) ||
        iv_len > sizeof(kb->iv[0]) || master->len == 0 || master->len > sizeof(master->b)) {
        return MMTLS_E_INVAL;
    }
    total = 2 * (mac_len + s->key_len + iv_len);
    /* RFC 5246 §6.3: key_block = PRF(SecurityParameters.master_secret, "key expansion",
     *     SecurityParameters.server_random + SecurityParameters.client_random); */
    rc = mmtls_crypto_tls_prf(version, s->prf_md, master->b, master->len, "key expansion",
                              server_random, 32, client_random, 32, block, total);
    if (rc != 0) {
        OPENSSL_cleanse(block, sizeof(block));
        return rc;
    }
    memset(kb, 0, sizeof(*kb));
    kb->mac_len = (uint8_t)mac_len;
    kb->key_len = s->key_len;
    kb->iv_len = (uint8_t)iv_len;
    /* client_write_MAC_key, server_write_MAC_key, client_write_key, server_write_key,
     * client_write_IV, server_write_IV */
    for (int i = 0; i < 2; i++) {
        memcpy(kb->mac[i], block + off, mac_len);
        off += mac_len;
    }
    for (int i = 0; i < 2; i++) {
        memcpy(kb->key[i], block + off, s->key_len);
        off += s->key_len;
    }
    for (int i = 0; i < 2; i++) {
        memcpy(kb->iv[i], block + off, iv_len);
        off += iv_len;
    }
    OPENSSL_cleanse(block, sizeof(block));
    return 0;
}

void mmtls_key_block_wipe(struct mmtls_key_block *kb)
{
    if (kb != NULL) {
        OPENSSL_cleanse(kb, sizeof(*kb));
    }
}
