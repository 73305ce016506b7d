/* crypto — the cipher-suite table: the suites whose records the engine can open, with the
 * parameters record protection and the key schedules need.  Names are the IANA registry names
 * ("TLS Cipher Suites", https://www.iana.org/assignments/tls-parameters).
 */
#include "crypto/crypto.h"

#include <mmtls/mmtls.h>

size_t mmtls_md_size(enum mmtls_md md)
{
    switch (md) {
    case MMTLS_MD_MD5: return 16;
    case MMTLS_MD_SHA1: return 20;
    case MMTLS_MD_SHA256: return 32;
    case MMTLS_MD_SHA384: return 48;
    case MMTLS_MD_NONE: break;
    }
    return 0;
}

/* Row builders, one per protection scheme, so each row states only what differs. */

/* clang-format off */
/* RFC 8446 §5.3: 12-byte static IV, nonce = iv XOR seq; no explicit nonce. */
#define TLS13(id_, name_, kind_, key_, tag_, prf_) \
    {(id_), (name_), (kind_), true, (key_), 12, 0, (tag_), MMTLS_MD_NONE, (prf_)}
/* RFC 5288 §3, RFC 6655 §3: 4-byte salt from the key block || 8-byte explicit nonce. */
#define GCM12(id_, name_, key_, prf_) \
    {(id_), (name_), MMTLS_CIPHER_AES_GCM, false, (key_), 4, 8, 16, MMTLS_MD_NONE, (prf_)}
#define CCM12(id_, name_, key_) \
    {(id_), (name_), MMTLS_CIPHER_AES_CCM, false, (key_), 4, 8, 16, MMTLS_MD_NONE, MMTLS_MD_SHA256}
#define CCM8_12(id_, name_, key_) \
    {(id_), (name_), MMTLS_CIPHER_AES_CCM8, false, (key_), 4, 8, 8, MMTLS_MD_NONE, MMTLS_MD_SHA256}
/* RFC 7905 §2: 12-byte IV from the key block, nonce = iv XOR padded seq. */
#define CHACHA12(id_, name_) \
    {(id_), (name_), MMTLS_CIPHER_CHACHA20_POLY1305, false, 32, 12, 0, 16, MMTLS_MD_NONE, \
     MMTLS_MD_SHA256}
/* RFC 5246 §6.2.3.2: block cipher with HMAC; explicit IV of one block for TLS >= 1.1.  The
 * TLS 1.2 PRF is SHA-256 unless the suite names SHA-384 (RFC 5246 §5, RFC 5289 §3.2). */
#define AESCBC(id_, name_, key_, mac_, prf_) \
    {(id_), (name_), MMTLS_CIPHER_AES_CBC, false, (key_), 16, 16, 0, (mac_), (prf_)}
#define DES3CBC(id_, name_) \
    {(id_), (name_), MMTLS_CIPHER_3DES_CBC, false, 24, 8, 8, 0, MMTLS_MD_SHA1, MMTLS_MD_SHA256}
/* clang-format on */

#define MD_SHA1 MMTLS_MD_SHA1
#define MD_SHA256 MMTLS_MD_SHA256
#define MD_SHA384 MMTLS_MD_SHA384

/* Sorted by id for the binary search below (test_crypto finds every row by its id). */
static const struct mmtls_suite suites[] = {
    DES3CBC(0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    DES3CBC(0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    AESCBC(0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA", 16, MD_SHA1, MD_SHA256),
    AESCBC(0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", 16, MD_SHA1, MD_SHA256),
    AESCBC(0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", 32, MD_SHA1, MD_SHA256),
    AESCBC(0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", 32, MD_SHA1, MD_SHA256),
    AESCBC(0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256", 16, MD_SHA256, MD_SHA256),
    AESCBC(0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256", 32, MD_SHA256, MD_SHA256),
    AESCBC(0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", 16, MD_SHA256, MD_SHA256),
    AESCBC(0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", 32, MD_SHA256, MD_SHA256),
    AESCBC(0x008C, "TLS_PSK_WITH_AES_128_CBC_SHA", 16, MD_SHA1, MD_SHA256),
    AESCBC(0x008D, "TLS_PSK_WITH_AES_256_CBC_SHA", 32, MD_SHA1, MD_SHA256),
    GCM12(0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256", 16, MD_SHA256),
    GCM12(0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384", 32, MD_SHA384),
    GCM12(0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", 16, MD_SHA256),
    GCM12(0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", 32, MD_SHA384),
    GCM12(0x00A8, "TLS_PSK_WITH_AES_128_GCM_SHA256", 16, MD_SHA256),
    GCM12(0x00A9, "TLS_PSK_WITH_AES_256_GCM_SHA384", 32, MD_SHA384),
    GCM12(0x00AA, "TLS_DHE_PSK_WITH_AES_128_GCM_SHA256", 16, MD_SHA256),
    GCM12(0x00AB, "TLS_DHE_PSK_WITH_AES_256_GCM_SHA384", 32, MD_SHA384),
    AESCBC(0x00AE, "TLS_PSK_WITH_AES_128_CBC_SHA256", 16, MD_SHA256, MD_SHA256),
    AESCBC(0x00AF, "TLS_PSK_WITH_AES_256_CBC_SHA384", 32, MD_SHA384, MD_SHA384),
    TLS13(0x1301, "TLS_AES_128_GCM_SHA256", MMTLS_CIPHER_AES_GCM, 16, 16, MD_SHA256),
    TLS13(0x1302, "TLS_AES_256_GCM_SHA384", MMTLS_CIPHER_AES_GCM, 32, 16, MD_SHA384),
    TLS13(0x1303, "TLS_CHACHA20_POLY1305_SHA256", MMTLS_CIPHER_CHACHA20_POLY1305, 32, 16,
          MD_SHA256),
    TLS13(0x1304, "TLS_AES_128_CCM_SHA256", MMTLS_CIPHER_AES_CCM, 16, 16, MD_SHA256),
    TLS13(0x1305, "TLS_AES_128_CCM_8_SHA256", MMTLS_CIPHER_AES_CCM8, 16, 8, MD_SHA256),
    DES3CBC(0xC008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA"),
    AESCBC(0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 16, MD_SHA1, MD_SHA256),
    AESCBC(0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", 32, MD_SHA1, MD_SHA256),
    DES3CBC(0xC012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    AESCBC(0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 16, MD_SHA1, MD_SHA256),
    AESCBC(0xC014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", 32, MD_SHA1, MD_SHA256),
    AESCBC(0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", 16, MD_SHA256, MD_SHA256),
    AESCBC(0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", 32, MD_SHA384, MD_SHA384),
    AESCBC(0xC027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", 16, MD_SHA256, MD_SHA256),
    AESCBC(0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", 32, MD_SHA384, MD_SHA384),
    GCM12(0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 16, MD_SHA256),
    GCM12(0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 32, MD_SHA384),
    GCM12(0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 16, MD_SHA256),
    GCM12(0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 32, MD_SHA384),
    AESCBC(0xC035, "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA", 16, MD_SHA1, MD_SHA256),
    AESCBC(0xC036, "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA", 32, MD_SHA1, MD_SHA256),
    CCM12(0xC09C, "TLS_RSA_WITH_AES_128_CCM", 16),
    CCM12(0xC09D, "TLS_RSA_WITH_AES_256_CCM", 32),
    CCM12(0xC09E, "TLS_DHE_RSA_WITH_AES_128_CCM", 16),
    CCM12(0xC09F, "TLS_DHE_RSA_WITH_AES_256_CCM", 32),
    CCM8_12(0xC0A0, "TLS_RSA_WITH_AES_128_CCM_8", 16),
    CCM8_12(0xC0A1, "TLS_RSA_WITH_AES_256_CCM_8", 32),
    CCM8_12(0xC0A2, "TLS_DHE_RSA_WITH_AES_128_CCM_8", 16),
    CCM8_12(0xC0A3, "TLS_DHE_RSA_WITH_AES_256_CCM_8", 32),
    CCM12(0xC0A4, "TLS_PSK_WITH_AES_128_CCM", 16),
    CCM12(0xC0A5, "TLS_PSK_WITH_AES_256_CCM", 32),
    CCM12(0xC0A6, "TLS_DHE_PSK_WITH_AES_128_CCM", 16),
    CCM12(0xC0A7, "TLS_DHE_PSK_WITH_AES_256_CCM", 32),
    CCM8_12(0xC0A8, "TLS_PSK_WITH_AES_128_CCM_8", 16),
    CCM8_12(0xC0A9, "TLS_PSK_WITH_AES_256_CCM_8", 32),
    CCM8_12(0xC0AA, "TLS_PSK_DHE_WITH_AES_128_CCM_8", 16),
    CCM8_12(0xC0AB, "TLS_PSK_DHE_WITH_AES_256_CCM_8", 32),
    CCM12(0xC0AC, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", 16),
    CCM12(0xC0AD, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM", 32),
    CCM8_12(0xC0AE, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8", 16),
    CCM8_12(0xC0AF, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8", 32),
    CHACHA12(0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    CHACHA12(0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    CHACHA12(0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    CHACHA12(0xCCAB, "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256"),
    CHACHA12(0xCCAC, "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256"),
    CHACHA12(0xCCAD, "TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256"),
    CHACHA12(0xCCAE, "TLS_RSA_PSK_WITH_CHACHA20_POLY1305_SHA256"),
};

const struct mmtls_suite *mmtls_crypto_suite(uint16_t id)
{
    size_t lo = 0, hi = MMTLS_ARRAY_SIZE(suites);

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (suites[mid].id == id) {
            return &suites[mid];
        }
        if (suites[mid].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

const char *mmtls_cipher_suite_name(uint16_t id)
{
    const struct mmtls_suite *s = mmtls_crypto_suite(id);

    return s != NULL ? s->name : NULL;
}

const char *mmtls_version_name(uint16_t version)
{
    switch (version) {
    case 0x0300: return "SSL 3.0";
    case 0x0301: return "TLS 1.0";
    case 0x0302: return "TLS 1.1";
    case 0x0303: return "TLS 1.2";
    case 0x0304: return "TLS 1.3";
    default: break;
    }
    return "unknown";
}
