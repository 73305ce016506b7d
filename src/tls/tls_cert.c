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

int mmtls_tls_cert_names(const uint8_t *der, size_t len, char *subject, size_t subject_cap,
                         char *issuer, size_t issuer_cap)
{
    const unsigned char *p = der;
    X509 *x;
    int rc;

    if (subject_cap > 0) {
        subject[0] = '\0';
    }
    if (issuer_cap > 0) {
        issuer[0] = '\0';
    }
    if (der == NULL || len == 0 || len > LONG_MAX) {
        return MMTLS_E_MALFORMED;
    }
    /* Keep OpenSSL's error queue as the caller left it: a peer's bad DER is not our error. */
    ERR_set_mark();
    x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL) {
        ERR_pop_to_mark();
        return MMTLS_E_MALFORMED;
    }
    rc = name_print(X509_get_subject_name(x), subject, subject_cap);
    if (rc == 0) {
        rc = name_print(X509_get_issuer_name(x), issuer, issuer_cap);
    }
    X509_free(x);
    ERR_pop_to_mark();
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
