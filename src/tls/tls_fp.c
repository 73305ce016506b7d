/* tls_fp — JA3 and JA4 client fingerprints of a parsed ClientHello.
 *
 * JA3 (https://github.com/salesforce/ja3): MD5 of
 * "SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats", decimal values joined
 * by '-', in ClientHello order, GREASE values (RFC 8701) removed.
 *
 * JA4 (FoxIO, technical_details/JA4.md): a_b_c where
 *   a = 't' (TLS over TCP), the version ('13', '12', ...: highest non-GREASE supported_versions
 *       entry, else legacy_version), 'd' when server_name is present else 'i', the counts of
 *       cipher suites and of extensions (two digits, GREASE excluded, capped at 99; the
 *       extension count includes server_name and ALPN), then the first and last character of
 *       the first ALPN protocol ("00" without ALPN);
 *   b = the first 12 hex digits of SHA-256 over the sorted cipher suites (4 lowercase hex
 *       digits each, ',' between), "000000000000" when there is none;
 *   c = the same over the sorted extension types without server_name (0x0000) and ALPN
 *       (0x0010), then '_' and the signature algorithms in ClientHello order when there are
 *       any, "000000000000" when no extension is left.
 * JA4_r is a_<b's list>_<c's list>, the strings that b and c hash.
 *
 * The text is produced in pieces and streamed both into the caller's buffer (truncated) and
 * into the digest, so the digests always cover the whole text however long the lists are.
 * Every loop runs over a slice the ClientHello parser has bounded (at most 2^16 bytes) or over
 * the MMTLS_TLS_MAX_EXTS recorded extension types.
 */
#include "tls/tls.h"

#include <stdlib.h>

#include <openssl/evp.h>

#define JA4_HASH_HEX 12

static const char hex_digits[] = "0123456789abcdef";

/* Text output: a caller buffer that keeps what fits, and the digest being computed. */
struct fp_out {
    char *buf;          /* borrowed: caller's buffer, NULL when cap is 0 */
    size_t cap;         /* bytes in buf, including the NUL */
    size_t len;         /* full length produced so far (may exceed cap - 1) */
    EVP_MD_CTX *md;     /* borrowed: digest fed with the text, NULL for none */
    uint8_t stage[256]; /* text not yet given to md */
    size_t staged;
    bool failed; /* a digest call failed */
};

static void fp_init(struct fp_out *o, char *buf, size_t cap)
{
    memset(o, 0, sizeof(*o));
    o->buf = cap > 0 ? buf : NULL;
    o->cap = o->buf != NULL ? cap : 0;
}

static void fp_flush(struct fp_out *o)
{
    if (o->staged > 0 && o->md != NULL && EVP_DigestUpdate(o->md, o->stage, o->staged) != 1) {
        o->failed = true;
    }
    o->staged = 0;
}

static void fp_put(struct fp_out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (o->len + 1 < o->cap) {
            o->buf[o->len] = s[i];
        }
        o->len++;
        if (o->md != NULL) {
            if (o->staged == sizeof(o->stage)) {
                fp_flush(o);
            }
            o->stage[o->staged++] = (uint8_t)s[i];
        }
    }
}

static void fp_char(struct fp_out *o, char c)
{
    fp_put(o, &c, 1);
}

static void fp_dec(struct fp_out *o, unsigned v)
{
    char d[8];
    size_t n = sizeof(d);

    do {
        d[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 && n > 0);
    fp_put(o, d + n, sizeof(d) - n);
}

static void fp_hex4(struct fp_out *o, uint16_t v)
{
    char d[4] = {hex_digits[v >> 12], hex_digits[(v >> 8) & 15], hex_digits[(v >> 4) & 15],
                 hex_digits[v & 15]};

    fp_put(o, d, sizeof(d));
}

/* NUL-terminates the buffer (at the truncation point). */
static void fp_end(struct fp_out *o)
{
    if (o->cap > 0) {
        o->buf[MMTLS_MIN(o->len, o->cap - 1)] = '\0';
    }
}

/* Starts feeding the text that follows into a new digest of type md_type. */
static void fp_digest_begin(struct fp_out *o, EVP_MD_CTX *md, const EVP_MD *md_type)
{
    fp_flush(o);
    o->md = md;
    if (EVP_DigestInit_ex(md, md_type, NULL) != 1) {
        o->failed = true;
    }
}

/* Ends the current digest and writes its first nhex lowercase hex digits, NUL-terminated. */
static void fp_digest_end(struct fp_out *o, char *hex, size_t nhex)
{
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;

    fp_flush(o);
    if (EVP_DigestFinal_ex(o->md, d, &dlen) != 1 || (size_t)dlen * 2 < nhex) {
        o->failed = true;
        dlen = 0;
    }
    o->md = NULL;
    for (size_t i = 0; i < nhex && i < (size_t)dlen * 2; i++) {
        hex[i] = hex_digits[(d[i / 2] >> (i % 2 == 0 ? 4 : 0)) & 15];
    }
    hex[(size_t)dlen * 2 < nhex ? 0 : nhex] = '\0';
}

/* The u16 values of a raw list (even length, checked by the parser), GREASE removed, in
 * decimal or 4-digit hex, joined by sep. */
static void fp_u16_list(struct fp_out *o, struct mmtls_slice l, bool hex, char sep)
{
    bool first = true;

    for (size_t i = 0; i + 1 < l.len; i += 2) { /* <= 2^15 turns */
        uint16_t v = mmtls_be16(l.p + i);

        if (mmtls_tls_is_grease(v)) {
            continue;
        }
        if (!first) {
            fp_char(o, sep);
        }
        first = false;
        if (hex) {
            fp_hex4(o, v);
        } else {
            fp_dec(o, v);
        }
    }
}

static size_t count_u16_non_grease(struct mmtls_slice l)
{
    size_t n = 0;

    for (size_t i = 0; i + 1 < l.len; i += 2) {
        n += !mmtls_tls_is_grease(mmtls_be16(l.p + i));
    }
    return n;
}

/* ------------------------------------------------------------------------------------------ */

int mmtls_tls_ja3(const struct mmtls_tls_client_hello *ch, char *str, size_t str_cap,
                  size_t *str_len, char hash[MMTLS_TLS_JA3_HASH_LEN + 1])
{
    struct fp_out o;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool first = true;

    fp_init(&o, str, str_cap);
    hash[0] = '\0';
    if (md == NULL) {
        fp_end(&o);
        return MMTLS_E_CRYPTO;
    }
    fp_digest_begin(&o, md, EVP_md5());
    fp_dec(&o, ch->legacy_version);
    fp_char(&o, ',');
    fp_u16_list(&o, ch->cipher_suites, false, '-');
    fp_char(&o, ',');
    for (unsigned i = 0; i < ch->n_ext && i < MMTLS_TLS_MAX_EXTS; i++) {
        if (mmtls_tls_is_grease(ch->ext_types[i])) {
            continue;
        }
        if (!first) {
            fp_char(&o, '-');
        }
        first = false;
        fp_dec(&o, ch->ext_types[i]);
    }
    fp_char(&o, ',');
    fp_u16_list(&o, ch->supported_groups, false, '-');
    fp_char(&o, ',');
    for (size_t i = 0; i < ch->ec_point_formats.len; i++) { /* <= 255 turns */
        if (i > 0) {
            fp_char(&o, '-');
        }
        fp_dec(&o, ch->ec_point_formats.p[i]);
    }
    fp_digest_end(&o, hash, MMTLS_TLS_JA3_HASH_LEN);
    EVP_MD_CTX_free(md);
    if (o.failed) {
        hash[0] = '\0';
        o.len = 0;
    }
    fp_end(&o);
    if (str_len != NULL) {
        *str_len = o.len;
    }
    return o.failed ? MMTLS_E_CRYPTO : 0;
}

/* ------------------------------------------------------------------------------------------ */

/* JA4.md "TLS and DTLS Version". */
static const char *ja4_version(uint16_t v)
{
    switch (v) {
    case 0x0304: return "13";
    case 0x0303: return "12";
    case 0x0302: return "11";
    case 0x0301: return "10";
    case 0x0300: return "s3";
    case 0x0002: return "s2";
    case 0xfeff: return "d1";
    case 0xfefd: return "d2";
    case 0xfefc: return "d3";
    default: return "00";
    }
}

/* JA4.md "ALPN Extension Value": ASCII letters and digits only (no locale). */
static bool ja4_alnum(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* First and last character of the first ALPN protocol; when either end is not alphanumeric,
 * the first and last digit of the protocol's hex form (high nibble of the first byte, low
 * nibble of the last).  "00" without a (non-empty) first protocol. */
static void ja4_alpn(const struct mmtls_tls_client_hello *ch, char out[2])
{
    const uint8_t *name;
    size_t len;

    out[0] = out[1] = '0';
    if (ch->alpn.len < 2) {
        return;
    }
    len = ch->alpn.p[0]; /* RFC 7301 §3.1: opaque ProtocolName<1..2^8-1> */
    name = ch->alpn.p + 1;
    if (len == 0 || len > ch->alpn.len - 1) {
        return;
    }
    if (ja4_alnum(name[0]) && ja4_alnum(name[len - 1])) {
        out[0] = (char)name[0];
        out[1] = (char)name[len - 1];
    } else {
        out[0] = hex_digits[name[0] >> 4];
        out[1] = hex_digits[name[len - 1] & 15];
    }
}

static int cmp_u16(const void *a, const void *b)
{
    uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;

    return (x > y) - (x < y);
}

static void two_digits(char *out, size_t n)
{
    n = MMTLS_MIN(n, (size_t)99);
    out[0] = (char)('0' + n / 10);
    out[1] = (char)('0' + n % 10);
}

int mmtls_tls_ja4(const struct mmtls_tls_client_hello *ch, char ja4[MMTLS_TLS_JA4_LEN + 1],
                  char *raw, size_t raw_cap, size_t *raw_len)
{
    uint16_t ciphers[MMTLS_TLS_JA4_MAX_CIPHERS], exts[MMTLS_TLS_MAX_EXTS];
    size_t n_ciphers = 0, n_exts = 0, n_hashed = 0, n_sigs;
    bool sni = false;
    char a[11], b[JA4_HASH_HEX + 1], c[JA4_HASH_HEX + 1];
    struct fp_out o;
    EVP_MD_CTX *md = NULL;
    const char *ver;
    int rc = 0;

    fp_init(&o, raw, raw_cap);
    ja4[0] = '\0';
    for (size_t i = 0; i + 1 < ch->cipher_suites.len; i += 2) { /* <= 2^15 turns */
        uint16_t v = mmtls_be16(ch->cipher_suites.p + i);

        if (mmtls_tls_is_grease(v)) {
            continue;
        }
        if (n_ciphers == MMTLS_TLS_JA4_MAX_CIPHERS) {
            rc = MMTLS_E_LIMIT;
            goto out_free;
        }
        ciphers[n_ciphers++] = v;
    }
    for (unsigned i = 0; i < ch->n_ext && i < MMTLS_TLS_MAX_EXTS; i++) {
        uint16_t t = ch->ext_types[i];

        if (mmtls_tls_is_grease(t)) {
            continue;
        }
        n_exts++;
        if (t == MMTLS_EXT_SERVER_NAME) {
            sni = true;
        } else if (t != MMTLS_EXT_ALPN) {
            exts[n_hashed++] = t;
        }
    }
    n_sigs = count_u16_non_grease(ch->sig_algs);
    if (n_ciphers > 1) {
        qsort(ciphers, n_ciphers, sizeof(ciphers[0]), cmp_u16);
    }
    if (n_hashed > 1) {
        qsort(exts, n_hashed, sizeof(exts[0]), cmp_u16);
    }

    /* JA4_a */
    a[0] = 't';
    ver = ja4_version(ch->max_version);
    a[1] = ver[0];
    a[2] = ver[1];
    a[3] = sni ? 'd' : 'i';
    two_digits(a + 4, n_ciphers);
    two_digits(a + 6, n_exts);
    ja4_alpn(ch, a + 8);
    a[10] = '\0';
    fp_put(&o, a, 10);
    fp_char(&o, '_');

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        rc = MMTLS_E_CRYPTO;
        goto out_free;
    }
    /* JA4_b: "If there are no ciphers in the sorted cipher list, then the value of JA4_b is
     * set to 000000000000". */
    if (n_ciphers > 0) {
        fp_digest_begin(&o, md, EVP_sha256());
    }
    for (size_t i = 0; i < n_ciphers; i++) {
        if (i > 0) {
            fp_char(&o, ',');
        }
        fp_hex4(&o, ciphers[i]);
    }
    if (n_ciphers > 0) {
        fp_digest_end(&o, b, JA4_HASH_HEX);
    } else {
        memcpy(b, "000000000000", JA4_HASH_HEX + 1);
    }
    fp_char(&o, '_');

    /* JA4_c: "If there are no signature algorithms in the hello packet, then the string ends
     * without an underscore"; no extensions left gives 000000000000. */
    if (n_hashed > 0) {
        fp_digest_begin(&o, md, EVP_sha256());
    }
    for (size_t i = 0; i < n_hashed; i++) {
        if (i > 0) {
            fp_char(&o, ',');
        }
        fp_hex4(&o, exts[i]);
    }
    if (n_sigs > 0) {
        fp_char(&o, '_');
        fp_u16_list(&o, ch->sig_algs, true, ',');
    }
    if (n_hashed > 0) {
        fp_digest_end(&o, c, JA4_HASH_HEX);
    } else {
        memcpy(c, "000000000000", JA4_HASH_HEX + 1);
    }
    if (o.failed) {
        rc = MMTLS_E_CRYPTO;
        goto out_free;
    }
    memcpy(ja4, a, 10);
    ja4[10] = '_';
    memcpy(ja4 + 11, b, JA4_HASH_HEX);
    ja4[11 + JA4_HASH_HEX] = '_';
    memcpy(ja4 + 12 + JA4_HASH_HEX, c, JA4_HASH_HEX + 1);

out_free:
    EVP_MD_CTX_free(md);
    if (rc != 0) {
        o.len = 0;
    }
    fp_end(&o);
    if (raw_len != NULL) {
        *raw_len = o.len;
    }
    return rc;
}
