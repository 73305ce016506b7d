/* tls_cert — Certificate message (RFC 8446 §4.4.2, RFC 5246 §7.4.2), certificate names through
 * OpenSSL, and KeyUpdate (RFC 8446 §4.6.3). */
#include "tls/tls.h"

static const uint8_t no_bytes[1];

/* A cursor over a message body.  A NULL body reads as empty: offsetting NULL, even by 0, is
 * undefined behaviour. */
static struct mmtls_cur body_cur(const uint8_t *body, size_t len)
{
    if (body == NULL) {
        return mmtls_cur_make(no_bytes, 0);
    }
    return mmtls_cur_make(body, len);
}

#include <limits.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>

int mmtls_tls_certificate_parse(const uint8_t *body, size_t len, bool tls13,
                                struct mmtls_tls_certificate *c)
{
    struct mmtls_cur cur = body_cur(body, len), ctx, list, cert, exts;

    memset(c, 0, sizeof(*c));
    if (tls13) {
        /* RFC 8446 §4.4.2: opaque certificate_request_context<0..2^8-1>; */
        MMTLS_TRY(mmtls_cur_vec(&cur, 1, &ctx));
    }
    /* CertificateEntry certificate_list<0..2^24-1> (1.3); ASN.1Cert certificate_list
     * <0..2^24-1> (RFC 5246 §7.4.2). */
    MMTLS_TRY(mmtls_cur_vec(&cur, 3, &list));
    MMTLS_TRY(mmtls_cur_done(&cur));
    while (mmtls_cur_left(&list) > 0) { /* >= 4 bytes per turn of a list < 2^24 bytes */
        /* opaque cert_data<1..2^24-1> / opaque ASN.1Cert<1..2^24-1> */
        MMTLS_TRY(mmtls_cur_vec(&list, 3, &cert));
        if (mmtls_cur_left(&cert) == 0) {
            return MMTLS_E_MALFORMED;
        }
        if (tls13) {
            /* Extension extensions<0..2^16-1>: not interpreted (OCSP, SCT), but each entry
             * must be well formed. */
            struct mmtls_cur ext;
            uint16_t type;

            MMTLS_TRY(mmtls_cur_vec(&list, 2, &exts));
            while (mmtls_cur_left(&exts) > 0) { /* >= 4 bytes per turn */
                MMTLS_TRY(mmtls_cur_u16(&exts, &type));
                MMTLS_TRY(mmtls_cur_vec(&exts, 2, &ext));
            }
        }
        if (c->count == 0) {
            c->leaf = mmtls_cur_rest(&cert);
        }
        c->count++;
    }
    return 0;
}

/* Prints an X509_NAME in RFC 2253 form into out (NUL-terminated, truncated to cap). */
MMTLS_MUST_USE static int name_print(const X509_NAME *name, char *out, size_t cap)
{
    BIO *bio;
    char *data = NULL;
    long n;
    size_t copy;
    int rc = 0;

    if (cap > 0) {
        out[0] = '\0';
    }
    if (name == NULL) {
        return MMTLS_E_MALFORMED;
    }
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return MMTLS_E_NOMEM;
    }
    /* XN_FLAG_RFC2253 escapes bytes >= 0x80 and control characters (ASN1_STRFLGS_ESC_*), so
     * the result is printable ASCII. */
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0) {
        rc = MMTLS_E_MALFORMED;
        goto out_free_bio;
    }
    n = BIO_get_mem_data(bio, &data);
    if (n < 0 || (n > 0 && data == NULL)) {
        rc = MMTLS_E_CRYPTO;
        goto out_free_bio;
    }
    if (cap > 0) {
        copy = MMTLS_MIN((size_t)n, cap - 1);
        if (copy > 0) {
            memcpy(out, data, copy);
        }
        out[copy] = '\0';
    }
out_free_bio:
    BIO_free(bio);
    return rc;
}

/* One DER TLV (X.690 §8.1.2-8.1.3): a low-tag-number identifier and a definite length (short
 * form, or long form of 1..4 bytes); *val is the contents, *whole the TLV itself. */
MMTLS_MUST_USE static int der_tlv(struct mmtls_cur *c, uint8_t *tag, struct mmtls_cur *val,
                                  struct mmtls_slice *whole)
{
    const uint8_t *start = c->p;
    uint8_t l, b;
    size_t len = 0;

    MMTLS_TRY(mmtls_cur_u8(c, tag));
    if ((*tag & 0x1f) == 0x1f) {
        return MMTLS_E_MALFORMED; /* high tag numbers do not occur in the fields we walk */
    }
    MMTLS_TRY(mmtls_cur_u8(c, &l));
    if (l & 0x80) {
        unsigned n = l & 0x7f;
        if (n == 0 || n > 4) {
            return MMTLS_E_MALFORMED; /* indefinite or absurd lengths: not DER */
        }
        for (unsigned i = 0; i < n; i++) {
            MMTLS_TRY(mmtls_cur_u8(c, &b));
            len = len << 8 | b;
        }
    } else {
        len = l;
    }
    if (len > mmtls_cur_left(c)) {
        return MMTLS_E_MALFORMED;
    }
    val->p = c->p;
    val->end = c->p + len;
    c->p += len;
    whole->p = start;
    whole->len = (size_t)(c->p - start);
    return 0;
}

/* Finds issuer and subject in a Certificate (RFC 5280 §4.1):
 *   Certificate ::= SEQUENCE { tbsCertificate TBSCertificate, ... }
 *   TBSCertificate ::= SEQUENCE { version [0] EXPLICIT OPTIONAL, serialNumber INTEGER,
 *       signature AlgorithmIdentifier, issuer Name, validity Validity, subject Name, ... }
 * Walking the DER is much cheaper than d2i_X509, which also decodes the public key. */
MMTLS_MUST_USE static int cert_name_slices(const uint8_t *der, size_t len,
                                           struct mmtls_slice *issuer, struct mmtls_slice *subject)
{
    struct mmtls_cur c = body_cur(der, len), cert, tbs, v;
    struct mmtls_slice w;
    uint8_t tag;

    MMTLS_TRY(der_tlv(&c, &tag, &cert, &w));
    if (tag != 0x30) {
        return MMTLS_E_MALFORMED;
    }
    MMTLS_TRY(der_tlv(&cert, &tag, &tbs, &w));
    if (tag != 0x30) {
        return MMTLS_E_MALFORMED;
    }
    MMTLS_TRY(der_tlv(&tbs, &tag, &v, &w));
    if (tag == 0xa0) { /* [0] version */
        MMTLS_TRY(der_tlv(&tbs, &tag, &v, &w));
    }
    if (tag != 0x02) { /* serialNumber */
        return MMTLS_E_MALFORMED;
    }
    MMTLS_TRY(der_tlv(&tbs, &tag, &v, &w)); /* signature */
    if (tag != 0x30) {
        return MMTLS_E_MALFORMED;
    }
    MMTLS_TRY(der_tlv(&tbs, &tag, &v, issuer));
    if (tag != 0x30) {
        return MMTLS_E_MALFORMED;
    }
    MMTLS_TRY(der_tlv(&tbs, &tag, &v, &w)); /* validity */
    if (tag != 0x30) {
        return MMTLS_E_MALFORMED;
    }
    MMTLS_TRY(der_tlv(&tbs, &tag, &v, subject));
    return tag == 0x30 ? 0 : MMTLS_E_MALFORMED;
}

/* Decodes one Name (its whole DER) and prints it. */
MMTLS_MUST_USE static int name_from_der(struct mmtls_slice der, char *out, size_t cap)
{
    const unsigned char *p = der.p;
    X509_NAME *n;
    int rc;

    if (der.len > LONG_MAX) {
        return MMTLS_E_MALFORMED;
    }
    n = d2i_X509_NAME(NULL, &p, (long)der.len);
    if (n == NULL) {
        return MMTLS_E_MALFORMED;
    }
    rc = name_print(n, out, cap);
    X509_NAME_free(n);
    return rc;
}

int mmtls_tls_cert_names(const uint8_t *der, size_t len, char *subject, size_t subject_cap,
                         char *issuer, size_t issuer_cap)
{
    struct mmtls_slice is, su;
    int rc;

    if (subject_cap > 0) {
        subject[0] = '\0';
    }
    if (issuer_cap > 0) {
        issuer[0] = '\0';
    }
    if (der == NULL || len == 0) {
        return MMTLS_E_MALFORMED;
    }
    rc = cert_name_slices(der, len, &is, &su);
    if (rc != 0) {
        return rc;
    }
    /* Keep OpenSSL's error queue as the caller left it: a peer's bad DER is not our error. */
    ERR_set_mark();
    rc = name_from_der(su, subject, subject_cap);
    if (rc == 0) {
        rc = name_from_der(is, issuer, issuer_cap);
    }
    ERR_pop_to_mark();
    if (rc != 0 && subject_cap > 0) {
        subject[0] = '\0';
    }
    return rc;
}

int mmtls_tls_key_update_parse(const uint8_t *body, size_t len, uint8_t *request)
{
    struct mmtls_cur c = body_cur(body, len);
    uint8_t v;

    /* RFC 8446 §4.6.3: enum { update_not_requested(0), update_requested(1) } */
    MMTLS_TRY(mmtls_cur_u8(&c, &v));
    MMTLS_TRY(mmtls_cur_done(&c));
    if (v > 1) {
        return MMTLS_E_MALFORMED;
    }
    *request = v;
    return 0;
}
