/* endpoint.c — the endpoint side of the private tag (docs/PRIVTAG.md, include/mmtls/endpoint.h).
 *
 * OpenSSL runs the TLS 1.3 handshake; a custom extension (0xFFCE) negotiates the private tag and
 * a chained key log callback keeps the two application traffic secrets in the SSL's ex_data.
 * After the handshake mmtls_ep_new takes over the socket: every record under the application
 * keys is sealed and opened here (RFC 8446 §5.2 record protection, one EVP context per key,
 * only the nonce changes per record) and carries a second tag, tag2, keyed with a TLS exporter
 * value that never leaves the two endpoints.  A connection without the private tag forwards to
 * SSL_read / SSL_write.
 *
 * Buffers are fixed and bounded: one input buffer of two maximum records, one decrypted
 * record, a handshake reassembly buffer (KeyUpdate, NewSessionTicket) and an output queue of a
 * few records with room kept for one KeyUpdate and one alert.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <mmtls/endpoint.h>

#include "crypto/crypto.h"
#include "keyshare_int.h"

#define EP_HDR 5
#define EP_TAG 16
#define EP_NONCE 12
#define EP_PLAIN_MAX 16384u                             /* RFC 8446 §5.1: 2^14 */
#define EP_FRAG_MAX (16384u + 256u)                     /* RFC 8446 §5.2, tag2 included */
#define EP_FRAG_MIN (1u + 2u * EP_TAG)                  /* inner type + tag1 + tag2 */
#define EP_INNER_MAX (EP_PLAIN_MAX + 1u)                /* RFC 8446 §5.4 TLSInnerPlaintext */
#define EP_REC_MAX (EP_HDR + EP_FRAG_MAX)               /* largest record accepted */
#define EP_REC_LEN(n) (EP_HDR + (n) + 1u + 2u * EP_TAG) /* record sealed from n bytes */
#define EP_KU_REC EP_REC_LEN(5u)
#define EP_ALERT_REC EP_REC_LEN(2u)
#define EP_RESERVE (EP_KU_REC + EP_ALERT_REC)
#define EP_OUT_CAP (4u * EP_REC_LEN(EP_PLAIN_MAX) + EP_RESERVE)
#define EP_IN_CAP (2u * EP_REC_MAX)
#define EP_HS_CAP 65536u /* post-handshake message reassembly */
#define EP_IDLE_MAX 128u /* records in a row without application data (cf. OpenSSL's 32 empty) */

#define EP_CT_ALERT 21
#define EP_CT_HANDSHAKE 22
#define EP_CT_APPDATA 23
#define EP_HS_NST 4
#define EP_HS_KEY_UPDATE 24

/* RFC 8446 §6 AlertDescription */
#define EP_AD_CLOSE_NOTIFY 0
#define EP_AD_UNEXPECTED_MESSAGE 10
#define EP_AD_BAD_RECORD_MAC 20
#define EP_AD_RECORD_OVERFLOW 22
#define EP_AD_ILLEGAL_PARAMETER 47
#define EP_AD_DECODE_ERROR 50
#define EP_AD_INTERNAL_ERROR 80
#define EP_AD_USER_CANCELED 90

#define EP_AEAD_GCM 0
#define EP_AEAD_CHACHA 1

#define EP_EXPORTER_LABEL "EXPORTER-mmtls-private-tag"
#define EP_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/* ------------------------------------------------------------------------------------------ */
/* State                                                                                       */

/* One direction at one key generation. */
struct ep_dir {
    const struct mmtls_suite *suite; /* borrowed: static suite table */
    struct mmtls_secret secret;      /* application traffic secret of generation gen */
    uint8_t iv[EP_NONCE];            /* RFC 8446 §7.3 write IV */
    uint64_t seq;                    /* RFC 8446 §5.3: per key, from 0 */
    uint32_t gen;                    /* docs/PRIVTAG.md: 0, +1 at each KeyUpdate */
    uint8_t dir;                     /* 'c' or 's': the side that sends */
    bool enc;
    EVP_CIPHER_CTX *aead;  /* owned: keyed with the traffic key */
    struct mmtls_ep_t2 t2; /* owned: k2[dir][gen] expanded once (endpoint_tag2.c) */
};

struct mmtls_ep {
    SSL *ssl; /* borrowed; NULL for a raw endpoint (tests) */
    bool tag2;
    bool is_server;
    int rfd, wfd;
    struct mmtls_ep_stats st;
    int (*k2_fn)(void *arg, uint8_t dir, uint32_t gen, uint8_t *out, size_t len);
    void *k2_arg; /* borrowed */
    struct ep_dir tx, rx;

    bool failed; /* a fatal error: every later call returns fail_rc */
    int fail_rc;
    int w_err;       /* the socket refused our output (MMTLS_E_IO): writes fail */
    bool got_close;  /* the peer's close_notify */
    bool close_sent; /* our close_notify is queued */
    bool ku_owed;    /* RFC 8446 §4.6.3: answer an update_requested before more data */
    bool ku_call;    /* mmtls_ep_key_update queued a KeyUpdate not yet flushed */
    size_t w_pos;    /* bytes of the current mmtls_ep_write already sealed */
    unsigned idle;   /* records in a row without application data */

    size_t out_off, out_len;
    size_t in_off, in_len;
    size_t plain_off, plain_len;
    size_t hs_len;
    uint8_t out[EP_OUT_CAP];
    uint8_t in[EP_IN_CAP];
    uint8_t plain[EP_FRAG_MAX];
    uint8_t hs[EP_HS_CAP];
};

/* Per SSL (ex_data): negotiation state and the two secrets until mmtls_ep_new takes them. */
struct ep_ssl {
    bool offered; /* server: the ClientHello offered version 1 */
    bool tag2;    /* negotiated: client saw the answer, server sent it */
    uint8_t have; /* bit 0 client secret, bit 1 server secret */
    struct mmtls_secret cts0, sts0;
};

/* Per SSL_CTX (ex_data): the key log callback that was set before ours, called first. */
struct ep_ctx {
    SSL_CTX_keylog_cb_func prev;
};

static pthread_once_t ep_once = PTHREAD_ONCE_INIT;
static int ep_ctx_idx = -1, ep_ssl_idx = -1;

static void ep_ctx_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    free(ptr);
}

static void ep_ssl_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    if (ptr != NULL) {
        OPENSSL_cleanse(ptr, sizeof(struct ep_ssl));
        free(ptr);
    }
}

static void ep_init_once(void)
{
    ep_ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ep_ctx_free);
    ep_ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, ep_ssl_free);
}

static struct ep_ssl *ep_ssl_get(const SSL *ssl)
{
    if (ep_ssl_idx < 0 || ssl == NULL) {
        return NULL;
    }
    return SSL_get_ex_data(ssl, ep_ssl_idx);
}

/* The SSL's state, created on first use.  The key log callback only has a const SSL; the
 * ex_data slot belongs to this library, so writing it is not a visible change. */
static struct ep_ssl *ep_ssl_make(const SSL *ssl)
{
    struct ep_ssl *st = ep_ssl_get(ssl);

    if (st != NULL || ep_ssl_idx < 0) {
        return st;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    if (SSL_set_ex_data((SSL *)ssl, ep_ssl_idx, st) != 1) {
        free(st);
        return NULL;
    }
    return st;
}

bool mmtls_ep_ssl_has_tag2(const SSL *ssl)
{
    const struct ep_ssl *st = ep_ssl_get(ssl);

    return st != NULL && st->tag2;
}

/* ------------------------------------------------------------------------------------------ */
/* AEAD and tag2                                                                               */

static const EVP_CIPHER *ep_cipher(int aead, size_t key_len)
{
    if (aead == EP_AEAD_GCM) {
        if (key_len == 16) {
            return EVP_aes_128_gcm();
        }
        return key_len == 32 ? EVP_aes_256_gcm() : NULL;
    }
    if (aead == EP_AEAD_CHACHA && key_len == 32) {
        return EVP_chacha20_poly1305();
    }
    return NULL;
}

static int ep_suite_aead(const struct mmtls_suite *s)
{
    if (s == NULL || !s->tls13 || s->tag_len != EP_TAG || s->fixed_iv_len != EP_NONCE) {
        return -1;
    }
    switch (s->kind) {
    case MMTLS_CIPHER_AES_GCM: return EP_AEAD_GCM;
    case MMTLS_CIPHER_CHACHA20_POLY1305: return EP_AEAD_CHACHA;
    default: return -1; /* docs/PRIVTAG.md: CCM suites are not offered with tag2 */
    }
}

MMTLS_KEYSHARE_API int mmtls_ep_tag2(int aead, const uint8_t *k2, size_t k2_len,
                                     const uint8_t nonce[12], const uint8_t hdr[5],
                                     const uint8_t tag1[16], uint8_t tag2[16])
{
    struct mmtls_ep_t2 t;
    int rc;

    if (ep_cipher(aead, k2_len) == NULL || k2 == NULL || nonce == NULL || hdr == NULL ||
        tag1 == NULL || tag2 == NULL) {
        return MMTLS_E_INVAL;
    }
    rc = mmtls_ep_t2_init(&t, aead, k2, k2_len, 0);
    if (rc == 0) {
        rc = mmtls_ep_t2_calc(&t, nonce, hdr, tag1, tag2);
    }
    mmtls_ep_t2_fini(&t);
    return rc;
}

/* RFC 8446 §5.3: nonce = write_iv XOR (seq left-padded to iv_length). */
static void ep_nonce(const struct ep_dir *d, uint8_t nonce[EP_NONCE])
{
    memcpy(nonce, d->iv, EP_NONCE);
    for (int i = 0; i < 8; i++) {
        nonce[EP_NONCE - 1 - i] ^= (uint8_t)(d->seq >> (8 * i));
    }
}

/* Keys the direction's contexts from d->secret (RFC 8446 §7.3) and k2[dir][gen]; seq 0. */
static int ep_dir_install(struct mmtls_ep *ep, struct ep_dir *d)
{
    uint8_t key[32], k2[32];
    const EVP_CIPHER *cipher;
    int rc;

    cipher = ep_cipher(ep_suite_aead(d->suite), d->suite->key_len);
    if (cipher == NULL) {
        return MMTLS_E_UNSUPPORTED;
    }
    if (d->aead == NULL) {
        d->aead = EVP_CIPHER_CTX_new();
    }
    if (d->aead == NULL) {
        return MMTLS_E_NOMEM;
    }
    rc = mmtls_crypto_tls13_traffic_keys(d->suite, &d->secret, key, d->iv);
    if (rc != 0) {
        goto out;
    }
    rc = ep->k2_fn(ep->k2_arg, d->dir, d->gen, k2, d->suite->key_len);
    if (rc != 0) {
        goto out;
    }
    mmtls_ep_t2_fini(&d->t2);
    rc = mmtls_ep_t2_init(&d->t2, ep_suite_aead(d->suite), k2, d->suite->key_len, 0);
    if (rc != 0) {
        goto out;
    }
    rc = MMTLS_E_CRYPTO;
    if (EVP_CIPHER_CTX_reset(d->aead) != 1 ||
        EVP_CipherInit_ex(d->aead, cipher, NULL, key, NULL, d->enc ? 1 : 0) != 1) {
        ERR_clear_error();
        goto out;
    }
    d->seq = 0;
    rc = 0;
out:
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(k2, sizeof(k2));
    return rc;
}

/* RFC 8446 §7.2: the next generation, application_traffic_secret_N+1. */
static int ep_dir_next(struct mmtls_ep *ep, struct ep_dir *d)
{
    struct mmtls_secret next;
    int rc;

    if (d->gen == UINT32_MAX) {
        return MMTLS_E_LIMIT;
    }
    rc = mmtls_crypto_tls13_next_secret(d->suite, &d->secret, &next);
    if (rc != 0) {
        return rc;
    }
    d->secret = next;
    OPENSSL_cleanse(&next, sizeof(next));
    d->gen++;
    return ep_dir_install(ep, d);
}

static void ep_dir_fini(struct ep_dir *d)
{
    EVP_CIPHER_CTX_free(d->aead);
    mmtls_ep_t2_fini(&d->t2);
    d->aead = NULL;
    OPENSSL_cleanse(&d->secret, sizeof(d->secret));
    OPENSSL_cleanse(d->iv, sizeof(d->iv));
}

/* Seals len bytes of content type `type` into out (EP_REC_LEN(len) bytes; p may not overlap
 * out).  docs/PRIVTAG.md: the header's length counts tag2; tag1 authenticates that header. */
static int ep_seal(struct ep_dir *d, uint8_t type, const uint8_t *p, size_t len, uint8_t *out)
{
    size_t inner = len + 1, frag = inner + 2 * EP_TAG;
    uint8_t nonce[EP_NONCE];
    uint8_t *body = out + EP_HDR;
    int outl;

    if (len > EP_PLAIN_MAX) {
        return MMTLS_E_INTERNAL;
    }
    if (d->seq == UINT64_MAX) {
        return MMTLS_E_LIMIT; /* RFC 8446 §5.3: the sequence number must not wrap */
    }
    /* RFC 8446 §5.1/§5.2: opaque_type application_data, legacy_record_version 0x0303 */
    out[0] = EP_CT_APPDATA;
    out[1] = 0x03;
    out[2] = 0x03;
    mmtls_put_be16(out + 3, (uint16_t)frag);
    if (len != 0) {
        memcpy(body, p, len);
    }
    body[len] = type; /* RFC 8446 §5.2 TLSInnerPlaintext, no padding */
    ep_nonce(d, nonce);
    if (EVP_EncryptInit_ex(d->aead, NULL, NULL, NULL, nonce) != 1 ||
        EVP_EncryptUpdate(d->aead, NULL, &outl, out, EP_HDR) != 1 ||
        EVP_EncryptUpdate(d->aead, body, &outl, body, (int)inner) != 1 ||
        EVP_EncryptFinal_ex(d->aead, body + inner, &outl) != 1 ||
        EVP_CIPHER_CTX_ctrl(d->aead, EVP_CTRL_AEAD_GET_TAG, EP_TAG, body + inner) != 1) {
        ERR_clear_error();
        return MMTLS_E_CRYPTO;
    }
    if (mmtls_ep_t2_calc_seq(&d->t2, d->seq, nonce, out, body + inner, body + inner + EP_TAG) !=
        0) {
        return MMTLS_E_CRYPTO;
    }
    d->seq++;
    return 0;
}

/* Opens the record rec (header + rec_len - 5 bytes) into plain; *inner_len is the length of
 * the TLSInnerPlaintext.  MMTLS_E_AUTH with *which = 1 (tag1) or 2 (tag2). */
static int ep_open(struct ep_dir *d, const uint8_t *rec, size_t rec_len, uint8_t *plain,
                   size_t *inner_len, int *which)
{
    size_t ct_len = rec_len - EP_HDR - 2 * EP_TAG;
    const uint8_t *ct = rec + EP_HDR;
    uint8_t nonce[EP_NONCE], tag1[EP_TAG], tag2[EP_TAG], fin[EP_TAG];
    int outl, fl;

    memcpy(tag1, ct + ct_len, EP_TAG);
    ep_nonce(d, nonce);
    /* RFC 8446 §5.2: additional_data = the record header as received (docs/PRIVTAG.md: its
     * length counts tag2). */
    if (EVP_DecryptInit_ex(d->aead, NULL, NULL, NULL, nonce) != 1 ||
        EVP_CIPHER_CTX_ctrl(d->aead, EVP_CTRL_AEAD_SET_TAG, EP_TAG, tag1) != 1 ||
        EVP_DecryptUpdate(d->aead, NULL, &outl, rec, EP_HDR) != 1 ||
        EVP_DecryptUpdate(d->aead, plain, &outl, ct, (int)ct_len) != 1) {
        ERR_clear_error();
        return MMTLS_E_CRYPTO;
    }
    fl = EVP_DecryptFinal_ex(d->aead, fin, &outl);
    ERR_clear_error();
    if (fl != 1) {
        OPENSSL_cleanse(plain, ct_len);
        *which = 1;
        return MMTLS_E_AUTH;
    }
    if (mmtls_ep_t2_calc_seq(&d->t2, d->seq, nonce, rec, tag1, tag2) != 0) {
        OPENSSL_cleanse(plain, ct_len);
        return MMTLS_E_CRYPTO;
    }
    if (CRYPTO_memcmp(tag2, ct + ct_len + EP_TAG, EP_TAG) != 0) {
        OPENSSL_cleanse(plain, ct_len);
        *which = 2;
        return MMTLS_E_AUTH;
    }
    d->seq++;
    *inner_len = ct_len;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Output queue                                                                                */

static size_t ep_room(struct mmtls_ep *ep)
{
    if (ep->out_off > 0) {
        memmove(ep->out, ep->out + ep->out_off, ep->out_len - ep->out_off);
        ep->out_len -= ep->out_off;
        ep->out_off = 0;
    }
    return EP_OUT_CAP - ep->out_len;
}

static int ep_queue(struct mmtls_ep *ep, uint8_t type, const uint8_t *p, size_t len)
{
    int rc;

    if (EP_REC_LEN(len) > ep_room(ep)) {
        return MMTLS_E_INTERNAL;
    }
    rc = ep_seal(&ep->tx, type, p, len, ep->out + ep->out_len);
    if (rc != 0) {
        return rc;
    }
    ep->out_len += EP_REC_LEN(len);
    ep->st.records_sent++;
    return 0;
}

/* Sends the queue: 0 when empty, MMTLS_EP_WANT_WRITE, or MMTLS_E_IO (then kept in w_err). */
static int ep_send(struct mmtls_ep *ep)
{
    ssize_t r;

    if (ep->w_err != 0) {
        return ep->w_err;
    }
    while (ep->out_off < ep->out_len) {
        r = send(ep->wfd, ep->out + ep->out_off, ep->out_len - ep->out_off, MSG_NOSIGNAL);
        if (r < 0 && errno == ENOTSOCK) {
            r = write(ep->wfd, ep->out + ep->out_off, ep->out_len - ep->out_off);
        }
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return MMTLS_EP_WANT_WRITE;
            }
            ep->w_err = MMTLS_E_IO;
            ep->out_off = ep->out_len = 0;
            return ep->w_err;
        }
        ep->out_off += (size_t)r;
    }
    ep->out_off = ep->out_len = 0;
    ep->ku_call = false;
    return 0;
}

/* RFC 8446 §4.6.3: sends KeyUpdate under the current keys, then switches to the next. */
static int ep_queue_key_update(struct mmtls_ep *ep, bool request)
{
    /* HandshakeType key_update(24), uint24 length 1, KeyUpdateRequest */
    uint8_t msg[5] = {EP_HS_KEY_UPDATE, 0, 0, 1, request ? 1 : 0};
    int rc;

    rc = ep_queue(ep, EP_CT_HANDSHAKE, msg, sizeof(msg));
    if (rc != 0) {
        return rc;
    }
    rc = ep_dir_next(ep, &ep->tx);
    if (rc != 0) {
        return rc;
    }
    ep->ku_owed = false;
    ep->st.key_updates_sent++;
    return 0;
}

/* A fatal error: queues the alert (room is always kept for one), tries to send it once, and
 * makes every later call return rc. */
static int ep_fatal(struct mmtls_ep *ep, uint8_t alert, int rc)
{
    /* AlertLevel fatal(2), AlertDescription */
    uint8_t a[2] = {2, alert};

    if (ep->failed) {
        return ep->fail_rc;
    }
    ep->failed = true;
    ep->fail_rc = rc;
    ep->plain_off = ep->plain_len = 0;
    OPENSSL_cleanse(ep->plain, sizeof(ep->plain));
    if (alert != 0 && !ep->close_sent && ep->w_err == 0 && ep->tx.aead != NULL) {
        ep->close_sent = true;
        if (ep_queue(ep, EP_CT_ALERT, a, sizeof(a)) == 0) {
            (void)ep_send(ep);
        }
    }
    return rc;
}

/* Queues an owed KeyUpdate answer when there is room, then tries to send the queue.  Used on
 * the read side: the result of sending only matters to writers. */
static int ep_pump(struct mmtls_ep *ep)
{
    int rc;

    if (ep->ku_owed && !ep->close_sent && ep_room(ep) >= EP_RESERVE) {
        rc = ep_queue_key_update(ep, false);
        if (rc != 0) {
            return ep_fatal(ep, 0, rc);
        }
    }
    if (ep->out_len > ep->out_off) {
        (void)ep_send(ep);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Input                                                                                       */

/* Until the input buffer holds one whole record at in_off: 0 with *rec_len set, WANT_READ or a
 * negative code.  RFC 8446 §5.1/§5.2 checks on the header (docs/PRIVTAG.md "Receiving"). */
static int ep_get_record(struct mmtls_ep *ep, size_t *rec_len)
{
    ssize_t r;

    for (;;) {
        size_t have = ep->in_len - ep->in_off;

        if (have >= EP_HDR) {
            const uint8_t *h = ep->in + ep->in_off;
            size_t len = mmtls_be16(h + 3);

            if (h[0] != EP_CT_APPDATA) {
                /* RFC 8446 §5: only protected records after the handshake */
                return ep_fatal(ep, EP_AD_UNEXPECTED_MESSAGE, MMTLS_E_MALFORMED);
            }
            if (len > EP_FRAG_MAX) {
                return ep_fatal(ep, EP_AD_RECORD_OVERFLOW, MMTLS_E_MALFORMED);
            }
            if (len < EP_FRAG_MIN) {
                return ep_fatal(ep, EP_AD_DECODE_ERROR, MMTLS_E_MALFORMED);
            }
            if (EP_HDR + len <= have) {
                *rec_len = EP_HDR + len;
                return 0;
            }
        }
        /* Keep room for a whole record after the partial one. */
        if (ep->in_off > 0 && EP_IN_CAP - ep->in_off < EP_REC_MAX) {
            memmove(ep->in, ep->in + ep->in_off, have);
            ep->in_off = 0;
            ep->in_len = have;
        }
        r = recv(ep->rfd, ep->in + ep->in_len, EP_IN_CAP - ep->in_len, 0);
        if (r < 0 && errno == ENOTSOCK) {
            r = read(ep->rfd, ep->in + ep->in_len, EP_IN_CAP - ep->in_len);
        }
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return MMTLS_EP_WANT_READ;
            }
            return ep_fatal(ep, 0, MMTLS_E_IO);
        }
        if (r == 0) {
            return ep_fatal(ep, 0, MMTLS_E_IO); /* closed without close_notify */
        }
        ep->in_len += (size_t)r;
    }
}

/* Post-handshake messages in ep->hs (RFC 8446 §4.6), processed as they complete. */
static int ep_handshake(struct mmtls_ep *ep)
{
    size_t off = 0;
    int rc;

    while (ep->hs_len > off) { /* each pass consumes a whole message or stops */
        const uint8_t *m = ep->hs + off;
        size_t left = ep->hs_len - off, ml;

        if (m[0] != EP_HS_KEY_UPDATE && (m[0] != EP_HS_NST || ep->is_server)) {
            return ep_fatal(ep, EP_AD_UNEXPECTED_MESSAGE, MMTLS_E_MALFORMED);
        }
        if (left < 4) {
            break;
        }
        ml = ((size_t)m[1] << 16) | ((size_t)m[2] << 8) | m[3];
        if (ml > EP_HS_CAP - 4) {
            return ep_fatal(ep, EP_AD_DECODE_ERROR, MMTLS_E_MALFORMED);
        }
        if (4 + ml > left) {
            break;
        }
        off += 4 + ml;
        if (m[0] == EP_HS_NST) {
            continue; /* RFC 8446 §4.6.1: tickets are not used by this library */
        }
        /* RFC 8446 §4.6.3: struct { KeyUpdateRequest request_update; } */
        if (ml != 1) {
            return ep_fatal(ep, EP_AD_DECODE_ERROR, MMTLS_E_MALFORMED);
        }
        if (m[4] > 1) {
            return ep_fatal(ep, EP_AD_ILLEGAL_PARAMETER, MMTLS_E_MALFORMED);
        }
        /* RFC 8446 §5.1: a message before a key change must end at a record boundary */
        if (off != ep->hs_len) {
            return ep_fatal(ep, EP_AD_UNEXPECTED_MESSAGE, MMTLS_E_MALFORMED);
        }
        rc = ep_dir_next(ep, &ep->rx);
        if (rc != 0) {
            return ep_fatal(ep, EP_AD_INTERNAL_ERROR, rc);
        }
        ep->st.key_updates_received++;
        if (m[4] == 1) {
            ep->ku_owed = true;
        }
    }
    if (off > 0) {
        memmove(ep->hs, ep->hs + off, ep->hs_len - off);
        ep->hs_len -= off;
    }
    return 0;
}

/* Opens and handles the record of rec_len bytes at in_off. */
static int ep_process(struct mmtls_ep *ep, size_t rec_len)
{
    const uint8_t *rec = ep->in + ep->in_off;
    size_t inner = 0, clen;
    uint8_t type;
    int which = 0, rc;

    rc = ep_open(&ep->rx, rec, rec_len, ep->plain, &inner, &which);
    ep->in_off += rec_len;
    if (ep->in_off == ep->in_len) {
        ep->in_off = ep->in_len = 0;
    }
    if (rc == MMTLS_E_AUTH) {
        if (which == 1) {
            ep->st.tag1_failures++;
        } else {
            ep->st.tag2_failures++;
        }
        return ep_fatal(ep, EP_AD_BAD_RECORD_MAC, MMTLS_E_AUTH);
    }
    if (rc != 0) {
        return ep_fatal(ep, EP_AD_INTERNAL_ERROR, rc);
    }
    ep->st.records_received++;
    if (inner > EP_INNER_MAX) {
        return ep_fatal(ep, EP_AD_RECORD_OVERFLOW, MMTLS_E_MALFORMED); /* RFC 8446 §5.4 */
    }
    /* RFC 8446 §5.4: the content type is the last non-zero byte */
    clen = inner;
    while (clen > 0 && ep->plain[clen - 1] == 0) {
        clen--;
    }
    if (clen == 0) {
        return ep_fatal(ep, EP_AD_UNEXPECTED_MESSAGE, MMTLS_E_MALFORMED);
    }
    type = ep->plain[--clen];
    /* RFC 8446 §5.1: handshake messages are not interleaved with other record types */
    if (type != EP_CT_HANDSHAKE && ep->hs_len > 0) {
        return ep_fatal(ep, EP_AD_UNEXPECTED_MESSAGE, MMTLS_E_MALFORMED);
    }
    switch (type) {
    case EP_CT_APPDATA:
        ep->plain_off = 0;
        ep->plain_len = clen; /* zero-length application data is allowed (§5.4) */
        return 0;
    case EP_CT_HANDSHAKE:
        /* RFC 8446 §5.1: no zero-length handshake fragments */
        if (clen == 0) {
            return ep_fatal(ep, EP_AD_UNEXPECTED_MESSAGE, MMTLS_E_MALFORMED);
        }
        if (clen > EP_HS_CAP - ep->hs_len) {
            return ep_fatal(ep, EP_AD_DECODE_ERROR, MMTLS_E_MALFORMED);
        }
        memcpy(ep->hs + ep->hs_len, ep->plain, clen);
        ep->hs_len += clen;
        return ep_handshake(ep);
    case EP_CT_ALERT:
        /* RFC 8446 §6: struct { AlertLevel level; AlertDescription description; } */
        if (clen != 2) {
            return ep_fatal(ep, EP_AD_DECODE_ERROR, MMTLS_E_MALFORMED);
        }
        if (ep->plain[1] == EP_AD_CLOSE_NOTIFY) {
            ep->got_close = true;
            return 0;
        }
        if (ep->plain[1] == EP_AD_USER_CANCELED) {
            return 0; /* RFC 8446 §6.1: followed by close_notify */
        }
        /* RFC 8446 §6.2: any other alert closes the connection; no answer */
        return ep_fatal(ep, 0, MMTLS_E_PEER_ALERT);
    default: return ep_fatal(ep, EP_AD_UNEXPECTED_MESSAGE, MMTLS_E_MALFORMED);
    }
}

static int ep_read_tag2(struct mmtls_ep *ep, uint8_t *buf, size_t cap)
{
    size_t rec_len = 0, n;
    int rc;

    for (;;) { /* each pass delivers, returns, or consumes one record (capped by idle) */
        if (ep->failed) {
            return ep->fail_rc;
        }
        if (ep->plain_off < ep->plain_len) {
            n = MMTLS_MIN(cap, ep->plain_len - ep->plain_off);
            memcpy(buf, ep->plain + ep->plain_off, n);
            ep->plain_off += n;
            ep->idle = 0;
            return (int)n;
        }
        if (ep->got_close) {
            return 0;
        }
        rc = ep_pump(ep);
        if (rc != 0) {
            return rc;
        }
        rc = ep_get_record(ep, &rec_len);
        if (rc != 0) {
            return rc;
        }
        rc = ep_process(ep, rec_len);
        if (rc != 0) {
            return rc;
        }
        if (ep->plain_len == 0 && !ep->got_close && ++ep->idle > EP_IDLE_MAX) {
            return ep_fatal(ep, EP_AD_UNEXPECTED_MESSAGE, MMTLS_E_MALFORMED);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Plain TLS: forward to OpenSSL                                                               */

static int ep_ssl_err(SSL *ssl, int r)
{
    unsigned long e;
    int reason;

    switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ: return MMTLS_EP_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return MMTLS_EP_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: return 0;
    case SSL_ERROR_SYSCALL: ERR_clear_error(); return MMTLS_E_IO;
    case SSL_ERROR_SSL:
        e = ERR_peek_error();
        ERR_clear_error();
        if (ERR_GET_LIB(e) != ERR_LIB_SSL) {
            return MMTLS_E_CRYPTO;
        }
        reason = ERR_GET_REASON(e);
        /* OpenSSL reports a received alert as SSL_AD_REASON_OFFSET + its description */
        if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
            return MMTLS_E_PEER_ALERT;
        }
        if (reason == SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC) {
            return MMTLS_E_AUTH;
        }
        if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            return MMTLS_E_IO;
        }
        return MMTLS_E_MALFORMED;
    default: ERR_clear_error(); return MMTLS_E_IO;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Public API                                                                                  */

static void ep_keylog_cb(const SSL *ssl, const char *line)
{
    const struct ep_ctx *ec = NULL;
    enum mmtls_keyshare_label label;
    struct mmtls_secret secret;
    struct ep_ssl *st;
    uint8_t cr[32];

    if (ep_ctx_idx >= 0) {
        ec = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ep_ctx_idx);
    }
    if (ec != NULL && ec->prev != NULL) {
        ec->prev(ssl, line); /* the callback set before ours sees every line first */
    }
    if (line == NULL || mmtls_keyshare_line_parse(line, strlen(line), &label, cr, &secret) != 0) {
        return;
    }
    if (label == MMTLS_KEYSHARE_L_CTS0 || label == MMTLS_KEYSHARE_L_STS0) {
        st = ep_ssl_make(ssl);
        if (st != NULL) {
            if (label == MMTLS_KEYSHARE_L_CTS0) {
                st->cts0 = secret;
                st->have |= 1;
            } else {
                st->sts0 = secret;
                st->have |= 2;
            }
        }
    }
    OPENSSL_cleanse(&secret, sizeof(secret));
}

static const unsigned char ep_ext_body[1] = {MMTLS_EP_EXT_VERSION};

static int ep_ext_add(SSL *ssl, unsigned int ext_type, unsigned int context,
                      const unsigned char **out, size_t *outlen, X509 *x, size_t chainidx, int *al,
                      void *add_arg)
{
    struct ep_ssl *st;

    if ((context & SSL_EXT_CLIENT_HELLO) != 0) {
        st = ep_ssl_make(ssl);
        if (st == NULL) {
            *al = SSL_AD_INTERNAL_ERROR;
            return -1;
        }
        st->tag2 = false; /* a new handshake (or the second ClientHello after HRR) */
        *out = ep_ext_body;
        *outlen = sizeof(ep_ext_body);
        return 1;
    }
    if ((context & SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS) != 0) {
        st = ep_ssl_get(ssl);
        /* docs/PRIVTAG.md: answer only a ClientHello that offered version 1 */
        if (st == NULL || !st->offered) {
            return 0;
        }
        st->tag2 = true;
        *out = ep_ext_body;
        *outlen = sizeof(ep_ext_body);
        return 1;
    }
    return 0;
}

static int ep_ext_parse(SSL *ssl, unsigned int ext_type, unsigned int context,
                        const unsigned char *in, size_t inlen, X509 *x, size_t chainidx, int *al,
                        void *parse_arg)
{
    bool v1 = inlen == 1 && in[0] == MMTLS_EP_EXT_VERSION;
    struct ep_ssl *st;

    if ((context & SSL_EXT_CLIENT_HELLO) != 0) {
        st = ep_ssl_make(ssl);
        if (st == NULL) {
            *al = SSL_AD_INTERNAL_ERROR;
            return 0;
        }
        st->offered = v1; /* another version: no answer, plain TLS */
        st->tag2 = false;
        return 1;
    }
    if ((context & SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS) != 0) {
        if (!v1) {
            *al = SSL_AD_ILLEGAL_PARAMETER; /* we offered version 1 only */
            return 0;
        }
        st = ep_ssl_make(ssl);
        if (st == NULL) {
            *al = SSL_AD_INTERNAL_ERROR;
            return 0;
        }
        st->tag2 = true;
        return 1;
    }
    return 1;
}

MMTLS_KEYSHARE_API int mmtls_ep_ctx_enable(SSL_CTX *ctx)
{
    struct ep_ctx *ec;
    int rc;

    if (ctx == NULL) {
        return MMTLS_E_INVAL;
    }
    if (pthread_once(&ep_once, ep_init_once) != 0 || ep_ctx_idx < 0 || ep_ssl_idx < 0) {
        return MMTLS_E_NOMEM;
    }
    if (SSL_CTX_get_ex_data(ctx, ep_ctx_idx) != NULL) {
        return 0; /* already enabled */
    }
    ec = calloc(1, sizeof(*ec));
    if (ec == NULL) {
        return MMTLS_E_NOMEM;
    }
    ec->prev = SSL_CTX_get_keylog_callback(ctx);
    if (ec->prev == ep_keylog_cb) {
        ec->prev = NULL;
    }
    if (SSL_CTX_set_ex_data(ctx, ep_ctx_idx, ec) != 1) {
        free(ec);
        return MMTLS_E_NOMEM;
    }
    /* docs/PRIVTAG.md Scope: the three AEAD suites tag2 is defined for */
    if (SSL_CTX_set_ciphersuites(ctx, EP_SUITES) != 1) {
        rc = MMTLS_E_CRYPTO;
        goto fail;
    }
    if (SSL_CTX_add_custom_ext(ctx, MMTLS_EP_EXT_TYPE,
                               SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS |
                                   SSL_EXT_TLS1_3_ONLY,
                               ep_ext_add, NULL, NULL, ep_ext_parse, NULL) != 1) {
        rc = MMTLS_E_CONFLICT; /* another handler owns the extension type */
        goto fail;
    }
    /* Tickets would go out under the application keys before mmtls_ep_new takes over.  Only
     * servers send them, so the setting is harmless on a client context. */
    if (SSL_CTX_set_num_tickets(ctx, 0) != 1) {
        rc = MMTLS_E_CRYPTO;
        goto fail;
    }
    SSL_CTX_set_keylog_callback(ctx, ep_keylog_cb);
    return 0;

fail:
    ERR_clear_error();
    (void)SSL_CTX_set_ex_data(ctx, ep_ctx_idx, NULL);
    free(ec);
    return rc;
}

static int ep_k2_ssl(void *arg, uint8_t dir, uint32_t gen, uint8_t *out, size_t len)
{
    /* docs/PRIVTAG.md: context = dir || uint32(gen); RFC 8446 §7.5 TLS-Exporter */
    uint8_t c[5] = {dir, (uint8_t)(gen >> 24), (uint8_t)(gen >> 16), (uint8_t)(gen >> 8),
                    (uint8_t)gen};

    if (SSL_export_keying_material(arg, out, len, EP_EXPORTER_LABEL, sizeof(EP_EXPORTER_LABEL) - 1,
                                   c, sizeof(c), 1) != 1) {
        ERR_clear_error();
        return MMTLS_E_CRYPTO;
    }
    return 0;
}

/* Sets up the tag2 record layer from the generation 0 secrets. */
static int ep_setup(struct mmtls_ep *ep, uint16_t suite, const struct mmtls_secret *cts0,
                    const struct mmtls_secret *sts0)
{
    const struct mmtls_suite *s = mmtls_crypto_suite(suite);
    int rc;

    if (ep_suite_aead(s) < 0) {
        return MMTLS_E_UNSUPPORTED;
    }
    if (cts0->len != mmtls_md_size(s->prf_md) || sts0->len != cts0->len) {
        return MMTLS_E_INVAL;
    }
    ep->tag2 = true;
    ep->tx.suite = ep->rx.suite = s;
    ep->tx.enc = true;
    ep->tx.dir = ep->is_server ? 's' : 'c';
    ep->rx.dir = ep->is_server ? 'c' : 's';
    ep->tx.secret = ep->is_server ? *sts0 : *cts0;
    ep->rx.secret = ep->is_server ? *cts0 : *sts0;
    rc = ep_dir_install(ep, &ep->tx);
    if (rc == 0) {
        rc = ep_dir_install(ep, &ep->rx);
    }
    return rc;
}

MMTLS_KEYSHARE_API int mmtls_ep_new(struct mmtls_ep **out, SSL *ssl)
{
    const SSL_CIPHER *c;
    struct mmtls_ep *ep;
    struct ep_ssl *st;
    int rc;

    if (out == NULL) {
        return MMTLS_E_INVAL;
    }
    *out = NULL;
    if (ssl == NULL || !SSL_is_init_finished(ssl)) {
        return MMTLS_E_INVAL;
    }
    st = ep_ssl_get(ssl);
    if (st == NULL || !st->tag2 || SSL_version(ssl) != TLS1_3_VERSION) {
        ep = calloc(1, sizeof(*ep));
        if (ep == NULL) {
            return MMTLS_E_NOMEM;
        }
        ep->ssl = ssl;
        ep->rfd = ep->wfd = -1;
        if (st != NULL) {
            OPENSSL_cleanse(&st->cts0, sizeof(st->cts0));
            OPENSSL_cleanse(&st->sts0, sizeof(st->sts0));
            st->have = 0;
        }
        *out = ep;
        return 0;
    }
    c = SSL_get_current_cipher(ssl);
    /* Records OpenSSL has buffered, or tickets it sent, would be out of step with ours. */
    if ((st->have & 3) != 3 || c == NULL || SSL_has_pending(ssl) ||
        (SSL_is_server(ssl) && SSL_get_num_tickets(ssl) != 0) || SSL_get_rfd(ssl) < 0 ||
        SSL_get_wfd(ssl) < 0) {
        return MMTLS_E_INVAL;
    }
    ep = calloc(1, sizeof(*ep));
    if (ep == NULL) {
        return MMTLS_E_NOMEM;
    }
    ep->ssl = ssl;
    ep->is_server = SSL_is_server(ssl) != 0;
    ep->rfd = SSL_get_rfd(ssl);
    ep->wfd = SSL_get_wfd(ssl);
    ep->k2_fn = ep_k2_ssl;
    ep->k2_arg = ssl;
    rc = ep_setup(ep, SSL_CIPHER_get_protocol_id(c), &st->cts0, &st->sts0);
    OPENSSL_cleanse(&st->cts0, sizeof(st->cts0));
    OPENSSL_cleanse(&st->sts0, sizeof(st->sts0));
    st->have = 0;
    if (rc != 0) {
        mmtls_ep_free(ep);
        return rc;
    }
    *out = ep;
    return 0;
}

int mmtls_ep_new_raw(struct mmtls_ep **out, const struct mmtls_ep_raw *raw)
{
    struct mmtls_ep *ep;
    int rc;

    if (out == NULL) {
        return MMTLS_E_INVAL;
    }
    *out = NULL;
    if (raw == NULL || raw->fd < 0 || raw->k2 == NULL) {
        return MMTLS_E_INVAL;
    }
    ep = calloc(1, sizeof(*ep));
    if (ep == NULL) {
        return MMTLS_E_NOMEM;
    }
    ep->is_server = raw->is_server;
    ep->rfd = ep->wfd = raw->fd;
    ep->k2_fn = raw->k2;
    ep->k2_arg = raw->k2_arg;
    rc = ep_setup(ep, raw->suite, &raw->cts0, &raw->sts0);
    if (rc != 0) {
        mmtls_ep_free(ep);
        return rc;
    }
    *out = ep;
    return 0;
}

int mmtls_ep_raw_send(struct mmtls_ep *ep, uint8_t type, const uint8_t *p, size_t len)
{
    int rc;

    if (ep == NULL || !ep->tag2 || (p == NULL && len != 0) || len > EP_PLAIN_MAX) {
        return MMTLS_E_INVAL;
    }
    rc = ep_send(ep);
    if (rc != 0) {
        return rc;
    }
    rc = ep_queue(ep, type, p, len);
    if (rc != 0) {
        return rc;
    }
    return ep_send(ep);
}

MMTLS_KEYSHARE_API bool mmtls_ep_private_tag(const struct mmtls_ep *ep)
{
    return ep != NULL && ep->tag2;
}

MMTLS_KEYSHARE_API int mmtls_ep_read(struct mmtls_ep *ep, void *buf, size_t cap)
{
    int r;

    if (ep == NULL || buf == NULL || cap == 0) {
        return MMTLS_E_INVAL;
    }
    if (cap > INT_MAX) {
        cap = INT_MAX;
    }
    if (ep->tag2) {
        return ep_read_tag2(ep, buf, cap);
    }
    ERR_clear_error();
    r = SSL_read(ep->ssl, buf, (int)cap);
    if (r > 0) {
        return r;
    }
    return ep_ssl_err(ep->ssl, r);
}

MMTLS_KEYSHARE_API int mmtls_ep_write(struct mmtls_ep *ep, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    size_t chunk;
    int r, rc;

    if (ep == NULL || (buf == NULL && n != 0) || n > INT_MAX) {
        return MMTLS_E_INVAL;
    }
    if (!ep->tag2) {
        if (n == 0) {
            return 0;
        }
        ERR_clear_error();
        r = SSL_write(ep->ssl, buf, (int)n);
        if (r > 0) {
            return r;
        }
        r = ep_ssl_err(ep->ssl, r);
        return r == 0 ? MMTLS_E_IO : r;
    }
    if (ep->failed) {
        (void)ep_send(ep); /* the alert, if it could not go out at once */
        return ep->fail_rc;
    }
    if (ep->w_err != 0) {
        return ep->w_err;
    }
    if (ep->close_sent) {
        return MMTLS_E_INVAL;
    }
    for (;;) { /* each pass seals, or sends the whole queue, or returns */
        if (ep->ku_owed && ep_room(ep) >= EP_RESERVE) {
            rc = ep_queue_key_update(ep, false);
            if (rc != 0) {
                return ep_fatal(ep, 0, rc);
            }
        }
        while (!ep->ku_owed && ep->w_pos < n) {
            chunk = MMTLS_MIN(n - ep->w_pos, (size_t)EP_PLAIN_MAX);
            if (ep_room(ep) < EP_REC_LEN(chunk) + EP_RESERVE) {
                break;
            }
            rc = ep_queue(ep, EP_CT_APPDATA, p + ep->w_pos, chunk);
            if (rc != 0) {
                return ep_fatal(ep, 0, rc);
            }
            ep->w_pos += chunk;
        }
        if (ep->w_pos == n && ep->out_off == ep->out_len) {
            ep->w_pos = 0;
            return (int)n;
        }
        rc = ep_send(ep);
        if (rc != 0) {
            return rc;
        }
    }
}

MMTLS_KEYSHARE_API int mmtls_ep_key_update(struct mmtls_ep *ep, bool request_peer)
{
    int r, rc;

    if (ep == NULL) {
        return MMTLS_E_INVAL;
    }
    if (!ep->tag2) {
        ERR_clear_error();
        if (SSL_version(ep->ssl) != TLS1_3_VERSION ||
            SSL_key_update(ep->ssl, request_peer ? SSL_KEY_UPDATE_REQUESTED
                                                 : SSL_KEY_UPDATE_NOT_REQUESTED) != 1) {
            ERR_clear_error();
            return MMTLS_E_UNSUPPORTED;
        }
        /* OpenSSL only schedules the update; SSL_do_handshake sends it now. */
        r = SSL_do_handshake(ep->ssl);
        if (r != 1) {
            r = ep_ssl_err(ep->ssl, r);
            return r == 0 ? MMTLS_E_IO : r;
        }
        ep->st.key_updates_sent++;
        return 0;
    }
    if (ep->failed) {
        (void)ep_send(ep);
        return ep->fail_rc;
    }
    if (ep->w_err != 0) {
        return ep->w_err;
    }
    if (ep->close_sent) {
        return MMTLS_E_INVAL;
    }
    if (!ep->ku_call) {
        if (ep_room(ep) < EP_RESERVE) {
            rc = ep_send(ep);
            if (rc != 0) {
                return rc;
            }
        }
        rc = ep_queue_key_update(ep, request_peer);
        if (rc != 0) {
            return ep_fatal(ep, 0, rc);
        }
        ep->ku_call = true;
    }
    return ep_send(ep); /* clears ku_call once everything is out */
}

MMTLS_KEYSHARE_API int mmtls_ep_shutdown(struct mmtls_ep *ep)
{
    /* AlertLevel warning(1), close_notify(0) (RFC 8446 §6.1) */
    static const uint8_t cn[2] = {1, EP_AD_CLOSE_NOTIFY};
    int r, rc;

    if (ep == NULL) {
        return MMTLS_E_INVAL;
    }
    if (!ep->tag2) {
        ERR_clear_error();
        r = SSL_shutdown(ep->ssl);
        if (r >= 0) {
            return 0; /* 0: sent, the peer's not seen yet (not waited for) */
        }
        r = ep_ssl_err(ep->ssl, r);
        return r == 0 ? MMTLS_E_IO : r;
    }
    if (ep->failed) {
        (void)ep_send(ep);
        return ep->fail_rc;
    }
    if (!ep->close_sent) {
        if (ep->w_err != 0) {
            return ep->w_err;
        }
        /* the reserve always has room for the one alert this connection sends */
        rc = ep_queue(ep, EP_CT_ALERT, cn, sizeof(cn));
        if (rc != 0) {
            return ep_fatal(ep, 0, rc);
        }
        ep->close_sent = true;
    }
    return ep_send(ep);
}

MMTLS_KEYSHARE_API void mmtls_ep_get_stats(const struct mmtls_ep *ep, struct mmtls_ep_stats *st)
{
    if (st == NULL) {
        return;
    }
    if (ep == NULL) {
        memset(st, 0, sizeof(*st));
        return;
    }
    *st = ep->st;
}

MMTLS_KEYSHARE_API void mmtls_ep_free(struct mmtls_ep *ep)
{
    if (ep == NULL) {
        return;
    }
    ep_dir_fini(&ep->tx);
    ep_dir_fini(&ep->rx);
    OPENSSL_cleanse(ep, sizeof(*ep));
    free(ep);
}
