/* crypto — cipher-suite table, TLS key schedules (TLS 1.0-1.2 PRF, TLS 1.3 HKDF) and record
 * protection (AEAD and CBC+HMAC) behind a small interface over OpenSSL 3 EVP.  One cipher
 * context per direction per key epoch, created when the key is installed; per record only the
 * nonce changes.
 */
#ifndef MMTLS_CRYPTO_H
#define MMTLS_CRYPTO_H

#include "util/util.h"

enum mmtls_md {
    MMTLS_MD_NONE = 0,
    MMTLS_MD_MD5,
    MMTLS_MD_SHA1,
    MMTLS_MD_SHA256,
    MMTLS_MD_SHA384,
};

/* OpenSSL's name of a digest ("SHA256"), NULL for NONE. */
const char *mmtls_md_name(enum mmtls_md md);
/* Size in bytes of a digest (0 for NONE). */
size_t mmtls_md_size(enum mmtls_md md);

enum mmtls_cipher_kind {
    MMTLS_CIPHER_AES_GCM = 1,
    MMTLS_CIPHER_AES_CCM,  /* 16-byte tag */
    MMTLS_CIPHER_AES_CCM8, /* 8-byte tag */
    MMTLS_CIPHER_CHACHA20_POLY1305,
    MMTLS_CIPHER_AES_CBC,  /* with HMAC (mac_md) */
    MMTLS_CIPHER_3DES_CBC, /* with HMAC; decrypt only where OpenSSL still provides it */
};

struct mmtls_suite {
    uint16_t id;
    const char *name; /* IANA name */
    enum mmtls_cipher_kind kind;
    bool tls13; /* a TLS 1.3 suite (only valid with TLS 1.3) */
    uint8_t key_len;
    uint8_t fixed_iv_len;  /* TLS 1.3: 12; TLS 1.2 GCM/CCM: 4 (salt); ChaCha: 12; CBC: block */
    uint8_t record_iv_len; /* explicit per-record IV: GCM/CCM 8; CBC (TLS >= 1.1) block */
    uint8_t tag_len;       /* AEAD tag length; 0 for CBC */
    enum mmtls_md mac_md;  /* CBC HMAC digest */
    enum mmtls_md prf_md;  /* TLS 1.2 PRF / TLS 1.3 HKDF digest */
};

/* The suite with IANA value id, or NULL when the engine cannot decrypt it. */
const struct mmtls_suite *mmtls_crypto_suite(uint16_t id);

/* ------------------------------------------------------------------------------------------ */
/* Key schedules                                                                               */

/* RFC 8446 §7.1 HKDF-Expand-Label(secret, "tls13 " + label, context, outlen). */
MMTLS_MUST_USE int mmtls_crypto_hkdf_expand_label(enum mmtls_md md, const uint8_t *secret,
                                                  size_t secret_len, const char *label,
                                                  const uint8_t *ctx, size_t ctx_len, uint8_t *out,
                                                  size_t out_len);

/* RFC 8446 §7.2: application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd",
 * "", Hash.length). */
MMTLS_MUST_USE int mmtls_crypto_tls13_next_secret(const struct mmtls_suite *s,
                                                  const struct mmtls_secret *cur,
                                                  struct mmtls_secret *next);

/* RFC 8446 §7.3: write key and IV from a traffic secret. */
MMTLS_MUST_USE int mmtls_crypto_tls13_traffic_keys(const struct mmtls_suite *s,
                                                   const struct mmtls_secret *secret, uint8_t *key,
                                                   uint8_t *iv);

/* TLS PRF: RFC 5246 §5 P_<md> for TLS 1.2; RFC 2246 §5 MD5/SHA-1 split for TLS 1.0/1.1
 * (version < 0x0303, md ignored).  seed = seed1 || seed2. */
MMTLS_MUST_USE int mmtls_crypto_tls_prf(uint16_t version, enum mmtls_md md, const uint8_t *secret,
                                        size_t secret_len, const char *label, const uint8_t *seed1,
                                        size_t seed1_len, const uint8_t *seed2, size_t seed2_len,
                                        uint8_t *out, size_t out_len);

/* TLS 1.0-1.2 key block split into its parts ([0] client write, [1] server write). */
struct mmtls_key_block {
    uint8_t mac_len, key_len, iv_len;
    uint8_t mac[2][48];
    uint8_t key[2][32];
    uint8_t iv[2][16];
};

/* RFC 5246 §6.3: key_block = PRF(master, "key expansion", server_random + client_random). */
MMTLS_MUST_USE int mmtls_crypto_tls12_key_block(const struct mmtls_suite *s, uint16_t version,
                                                const struct mmtls_secret *master,
                                                const uint8_t client_random[32],
                                                const uint8_t server_random[32],
                                                struct mmtls_key_block *kb);

void mmtls_key_block_wipe(struct mmtls_key_block *kb);

/* ------------------------------------------------------------------------------------------ */
/* Record protection: one object per direction per key epoch.                                  */

struct mmtls_rprot; /* opaque; holds the EVP contexts and the static IV / MAC key */

/* TLS 1.3: key and IV derived from the traffic secret (RFC 8446 §7.3). */
MMTLS_MUST_USE int mmtls_rprot_new_tls13(struct mmtls_rprot **out, const struct mmtls_suite *s,
                                         const struct mmtls_secret *traffic_secret);

/* TLS 1.0-1.2: `writer` 0 uses the client-write half of kb, 1 the server-write half. */
MMTLS_MUST_USE int mmtls_rprot_new_tls12(struct mmtls_rprot **out, const struct mmtls_suite *s,
                                         uint16_t version, bool encrypt_then_mac,
                                         const struct mmtls_key_block *kb, int writer);

/* Wipes keys and frees; NULL is a no-op. */
void mmtls_rprot_free(struct mmtls_rprot *rp);

/* Opens one record.  hdr is the 5-byte record header as received; frag/frag_len the fragment.
 * out must hold frag_len bytes (out == frag is allowed: in-place).  On success: *out_len is the
 * plaintext length and *inner_type the content type (TLS 1.3: from the inner plaintext, zero
 * padding removed per RFC 8446 §5.4; otherwise hdr[0]).  State (TLS 1.0 implicit CBC IV) changes
 * only on success, so failed trial decryptions leave the object usable.
 * Returns MMTLS_E_AUTH on tag, MAC or padding failure (nothing in *out may be used),
 * MMTLS_E_MALFORMED when the fragment is too short for the suite's overhead or a TLS 1.3 inner
 * plaintext is all zeros. */
MMTLS_MUST_USE int mmtls_rprot_open(struct mmtls_rprot *rp, uint64_t seq, const uint8_t hdr[5],
                                    const uint8_t *frag, size_t frag_len, uint8_t *out,
                                    size_t *out_len, uint8_t *inner_type);

/* Seals one record into out (header included): the inverse of open, used by tests and by the
 * endpoint library.  TLS 1.3: adds the inner type and pad_len zero bytes.  Returns
 * MMTLS_E_LIMIT if out_cap is too small. */
MMTLS_MUST_USE int mmtls_rprot_seal(struct mmtls_rprot *rp, uint64_t seq, uint8_t type,
                                    uint16_t version, const uint8_t *plain, size_t plain_len,
                                    size_t pad_len, uint8_t *out, size_t out_cap, size_t *out_len);

/* TLS 1.3 only: encrypts an inner plaintext (content, type byte and padding already in place,
 * inner_len bytes) with the additional data `hdr` exactly as given — for records whose header
 * length counts more than tag1 (the private tag, docs/PRIVTAG.md).  Writes inner_len + tag bytes
 * to out (out == inner allowed).  MMTLS_E_INVAL on a TLS <= 1.2 object or a bad length. */
MMTLS_MUST_USE int mmtls_rprot_seal_tls13_hdr(struct mmtls_rprot *rp, uint64_t seq,
                                              const uint8_t hdr[5], const uint8_t *inner,
                                              size_t inner_len, uint8_t *out);

/* Upper bound of the plaintext length of a fragment of frag_len bytes (0 if too short). */
size_t mmtls_rprot_max_plain(const struct mmtls_rprot *rp, size_t frag_len);

#endif
