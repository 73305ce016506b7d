/* keyshare.c — the key log side of libmmtls-keyshare: mmtls_keyshare_attach(), the chained key
 * log callback, per-connection collection of TLS 1.3 secrets, TLS <= 1.2 record key derivation,
 * and the encoding of KEYS / BYPASS messages (docs/keyproto.md) handed to the queue.
 *
 * The callback runs on the application's thread inside its handshake: it parses one line,
 * touches only the SSL's own ex_data, encodes at most one message and copies it into the queue
 * under a short mutex.  It never does I/O on the channel and never fails the handshake.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "crypto/crypto.h"
#include "keyshare_int.h"

/* ------------------------------------------------------------------------------------------ */
/* Pure helpers                                                                                */

static const struct {
    const char *name;
    enum mmtls_keyshare_label label; /* 0: recognised but never sent */
} ks_labels[] = {
    {"CLIENT_RANDOM", MMTLS_KEYSHARE_L_CLIENT_RANDOM},
    {"CLIENT_EARLY_TRAFFIC_SECRET", MMTLS_KEYSHARE_L_EARLY},
    {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", MMTLS_KEYSHARE_L_CHS},
    {"SERVER_HANDSHAKE_TRAFFIC_SECRET", MMTLS_KEYSHARE_L_SHS},
    {"CLIENT_TRAFFIC_SECRET_0", MMTLS_KEYSHARE_L_CTS0},
    {"SERVER_TRAFFIC_SECRET_0", MMTLS_KEYSHARE_L_STS0},
};

enum mmtls_keyshare_label mmtls_keyshare_label_of(const char *name, size_t len)
{
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(ks_labels); i++) {
        if (strlen(ks_labels[i].name) == len && memcmp(ks_labels[i].name, name, len) == 0) {
            return ks_labels[i].label;
        }
    }
    return 0;
}

int mmtls_keyshare_line_parse(const char *line, size_t len, enum mmtls_keyshare_label *label,
                              uint8_t cr[32], struct mmtls_secret *secret)
{
    const char *sp1, *sp2, *end = line + len;
    size_t nlen, slen;

    /* Strip a trailing newline: OpenSSL passes none, other writers might. */
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
        len--;
        end = line + len;
    }
    sp1 = memchr(line, ' ', len);
    if (sp1 == NULL) {
        return MMTLS_E_MALFORMED;
    }
    nlen = (size_t)(sp1 - line);
    *label = mmtls_keyshare_label_of(line, nlen);
    /* RFC 9850 §2.1: unknown labels are skipped.  EXPORTER_SECRET, EARLY_EXPORTER_SECRET and
     * later traffic secrets (KeyUpdate) land here: the protocol has no kind for them. */
    if (*label == 0) {
        return MMTLS_DECLINED;
    }
    /* RFC 9850 §2: "<label> <client_random as 64 hex digits> <secret as hex>". */
    if (66 > (size_t)(end - sp1) || sp1[65] != ' ') {
        return MMTLS_E_MALFORMED;
    }
    if (mmtls_hex_decode(sp1 + 1, 64, cr, 32) != 0) {
        return MMTLS_E_MALFORMED;
    }
    sp2 = sp1 + 65;
    slen = (size_t)(end - sp2) - 1;
    if (slen == 0 || slen % 2 != 0 || slen / 2 > sizeof(secret->b)) {
        return MMTLS_E_MALFORMED;
    }
    if (mmtls_hex_decode(sp2 + 1, slen, secret->b, sizeof(secret->b)) != 0) {
        mmtls_wipe(secret->b, sizeof(secret->b));
        return MMTLS_E_MALFORMED;
    }
    secret->len = (uint8_t)(slen / 2);
    return 0;
}

bool mmtls_keyshare_bypass_match(const char *patterns, const char *sni)
{
    char pat[256];
    const char *p = patterns;
    unsigned n = 0;

    if (patterns == NULL || sni == NULL || sni[0] == '\0') {
        return false;
    }
    /* Capped: a pattern list is configuration, but keep every loop bounded anyway. */
    while (*p != '\0' && n++ < 1024) {
        const char *comma = strchr(p, ',');
        size_t plen = comma != NULL ? (size_t)(comma - p) : strlen(p);
        const char *b = p, *e = p + plen;

        while (b < e && (*b == ' ' || *b == '\t')) {
            b++;
        }
        while (e > b && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }
        if (e > b && (size_t)(e - b) < sizeof(pat)) {
            memcpy(pat, b, (size_t)(e - b));
            pat[e - b] = '\0';
            if (fnmatch(pat, sni, FNM_CASEFOLD) == 0) {
                return true;
            }
        }
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    return false;
}

static void msg_head(struct mmtls_kp_msg *m, enum mmtls_kp_type type, const uint8_t cr[32],
                     const struct mmtls_kp_tuple *tuple)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
    memcpy(m->client_random, cr, 32);
    if (tuple != NULL) {
        m->flags |= MMTLS_KP_F_TUPLE;
        m->tuple = *tuple;
    }
}

static void msg_add(struct mmtls_kp_msg *m, enum mmtls_kp_kind kind, const uint8_t *p, size_t len)
{
    if (m->n >= MMTLS_KP_MAX_SECRETS || len > sizeof(m->secret[0].b)) {
        return; /* cannot happen with the callers below; the encoder rejects the result */
    }
    m->kind[m->n] = (uint8_t)kind;
    m->secret[m->n].len = (uint8_t)len;
    memcpy(m->secret[m->n].b, p, len);
    m->n++;
}

int mmtls_keyshare_build_tls13(const struct mmtls_keyshare_tls13 *t, const uint8_t cr[32],
                               uint16_t version, uint16_t suite, const struct mmtls_kp_tuple *tuple,
                               uint8_t *out, size_t out_cap)
{
    bool complete = (t->have & MMTLS_KEYSHARE_TLS13_COMPLETE) == MMTLS_KEYSHARE_TLS13_COMPLETE;
    struct mmtls_kp_msg m;
    int rc;

    if ((t->have & (1u << MMTLS_KEYSHARE_L_SHS)) == 0) {
        return MMTLS_E_INVAL;
    }
    msg_head(&m, MMTLS_KP_KEYS, cr, tuple);
    m.tls_version = version;
    m.cipher_suite = suite;
    /* docs/keyproto.md: kind 1 only when the client sent 0-RTT data (EARLY flag). */
    if ((t->have & (1u << MMTLS_KEYSHARE_L_EARLY)) != 0) {
        m.flags |= MMTLS_KP_F_EARLY;
        msg_add(&m, MMTLS_KP_CLIENT_EARLY, t->early.b, t->early.len);
    }
    if (t->tag2) {
        m.flags |= MMTLS_KP_F_TAG2; /* docs/PRIVTAG.md: records carry tag2 */
    }
    if ((t->have & (1u << MMTLS_KEYSHARE_L_CHS)) != 0) {
        msg_add(&m, MMTLS_KP_CLIENT_HS, t->chs.b, t->chs.len);
    }
    msg_add(&m, MMTLS_KP_SERVER_HS, t->shs.b, t->shs.len);
    if (complete) {
        msg_add(&m, MMTLS_KP_CLIENT_APP0, t->cts0.b, t->cts0.len);
        msg_add(&m, MMTLS_KP_SERVER_APP0, t->sts0.b, t->sts0.len);
    }
    rc = mmtls_kp_encode(&m, out, out_cap);
    mmtls_kp_msg_wipe(&m);
    return rc;
}

int mmtls_keyshare_build_tls12(const struct mmtls_secret *master, const uint8_t cr[32],
                               const uint8_t sr[32], uint16_t version, uint16_t suite,
                               const struct mmtls_kp_tuple *tuple, uint8_t *out, size_t out_cap)
{
    const struct mmtls_suite *s = mmtls_crypto_suite(suite);
    struct mmtls_key_block kb;
    struct mmtls_kp_msg m;
    int rc;

    if (s == NULL || s->tls13) {
        return MMTLS_E_UNSUPPORTED;
    }
    /* RFC 5246 §6.3: key_block = PRF(master_secret, "key expansion", server_random +
     * client_random), split into MAC keys, write keys and IVs (AEAD: the 4-byte implicit nonce
     * of RFC 5288 §3; ChaCha20-Poly1305: 12 bytes, RFC 7905 §2; CBC: IVs only for TLS 1.0). */
    rc = mmtls_crypto_tls12_key_block(s, version, master, cr, sr, &kb);
    if (rc != 0) {
        return rc;
    }
    msg_head(&m, MMTLS_KP_KEYS, cr, tuple);
    m.tls_version = version;
    m.cipher_suite = suite;
    if (kb.mac_len > 0) {
        msg_add(&m, MMTLS_KP_CLIENT_MAC, kb.mac[0], kb.mac_len);
        msg_add(&m, MMTLS_KP_SERVER_MAC, kb.mac[1], kb.mac_len);
    }
    msg_add(&m, MMTLS_KP_CLIENT_KEY, kb.key[0], kb.key_len);
    msg_add(&m, MMTLS_KP_SERVER_KEY, kb.key[1], kb.key_len);
    if (kb.iv_len > 0) {
        msg_add(&m, MMTLS_KP_CLIENT_IV, kb.iv[0], kb.iv_len);
        msg_add(&m, MMTLS_KP_SERVER_IV, kb.iv[1], kb.iv_len);
    }
    mmtls_key_block_wipe(&kb);
    rc = mmtls_kp_encode(&m, out, out_cap);
    mmtls_kp_msg_wipe(&m);
    return rc;
}

int mmtls_keyshare_build_bypass(const uint8_t cr[32], const struct mmtls_kp_tuple *tuple,
                                const char *sni, uint8_t *out, size_t out_cap)
{
    struct mmtls_kp_msg m;
    size_t n = sni != NULL ? strlen(sni) : 0;

    msg_head(&m, MMTLS_KP_BYPASS, cr, tuple);
    if (n > 255) {
        n = 255; /* docs/keyproto.md: sni_length is one byte; a DNS name fits (RFC 1035 §2.3.4) */
    }
    m.sni_len = (uint8_t)n;
    if (n > 0) {
        memcpy(m.sni, sni, n);
    }
    return mmtls_kp_encode(&m, out, out_cap);
}

/* ------------------------------------------------------------------------------------------ */
/* TLS-library neutral collection (OpenSSL's key log lines, GnuTLS's key log hook)            */

/* IANA name -> value for the suites the crypto table knows, built once from the table. */
static struct {
    const char *name; /* borrowed: the crypto table's static string */
    uint16_t id;
} ks_suite_names[256];
static size_t ks_suite_names_n;
static pthread_once_t ks_suite_once = PTHREAD_ONCE_INIT;

static void ks_suite_names_init(void)
{
    for (uint32_t id = 0; id <= 0xFFFF && ks_suite_names_n < MMTLS_ARRAY_SIZE(ks_suite_names);
         id++) {
        const struct mmtls_suite *s = mmtls_crypto_suite((uint16_t)id);

        if (s != NULL && s->name != NULL) {
            ks_suite_names[ks_suite_names_n].name = s->name;
            ks_suite_names[ks_suite_names_n].id = (uint16_t)id;
            ks_suite_names_n++;
        }
    }
}

uint16_t mmtls_keyshare_suite_by_name(const char *name)
{
    if (name == NULL || pthread_once(&ks_suite_once, ks_suite_names_init) != 0) {
        return 0;
    }
    for (size_t i = 0; i < ks_suite_names_n; i++) {
        if (strcmp(ks_suite_names[i].name, name) == 0) {
            return ks_suite_names[i].id;
        }
    }
    return 0;
}

bool mmtls_keyshare_fd_tuple(int fd, struct mmtls_kp_tuple *t)
{
    struct sockaddr_storage la, ra;
    socklen_t ll = sizeof(la), rl = sizeof(ra);

    if (fd < 0 || getsockname(fd, (struct sockaddr *)&la, &ll) != 0 ||
        getpeername(fd, (struct sockaddr *)&ra, &rl) != 0 || la.ss_family != ra.ss_family) {
        return false;
    }
    memset(t, 0, sizeof(*t));
    if (la.ss_family == AF_INET) {
        const struct sockaddr_in *l4 = (const struct sockaddr_in *)&la;
        const struct sockaddr_in *r4 = (const struct sockaddr_in *)&ra;

        t->ip_version = 4;
        memcpy(t->client_ip, &l4->sin_addr, 4);
        memcpy(t->server_ip, &r4->sin_addr, 4);
        t->client_port = ntohs(l4->sin_port);
        t->server_port = ntohs(r4->sin_port);
        return true;
    }
    if (la.ss_family == AF_INET6) {
        const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *)&la;
        const struct sockaddr_in6 *r6 = (const struct sockaddr_in6 *)&ra;

        if (IN6_IS_ADDR_V4MAPPED(&l6->sin6_addr) && IN6_IS_ADDR_V4MAPPED(&r6->sin6_addr)) {
            t->ip_version = 4;
            memcpy(t->client_ip, &l6->sin6_addr.s6_addr[12], 4);
            memcpy(t->server_ip, &r6->sin6_addr.s6_addr[12], 4);
        } else {
            t->ip_version = 6;
            memcpy(t->client_ip, &l6->sin6_addr, 16);
            memcpy(t->server_ip, &r6->sin6_addr, 16);
        }
        t->client_port = ntohs(l6->sin6_port);
        t->server_port = ntohs(r6->sin6_port);
        return true;
    }
    return false;
}

static struct mmtls_secret *t13_slot(struct mmtls_keyshare_tls13 *t, enum mmtls_keyshare_label l)
{
    switch (l) {
    case MMTLS_KEYSHARE_L_CLIENT_RANDOM: return &t->master;
    case MMTLS_KEYSHARE_L_EARLY: return &t->early;
    case MMTLS_KEYSHARE_L_CHS: return &t->chs;
    case MMTLS_KEYSHARE_L_SHS: return &t->shs;
    case MMTLS_KEYSHARE_L_CTS0: return &t->cts0;
    case MMTLS_KEYSHARE_L_STS0: return &t->sts0;
    default: return NULL;
    }
}

/* Encodes the session's message once it has all its secrets and, for a TLS library that tells
 * the cipher suite only when the handshake is over (GnuTLS), the suite or final. */
static int sess_try(struct mmtls_keyshare_sess *s, const struct mmtls_keyshare_conn_ops *ops,
                    const void *conn, bool final, uint8_t *out, size_t out_cap)
{
    const struct mmtls_kp_tuple *tp = s->has_tuple ? &s->tuple : NULL;
    uint16_t suite;
    uint8_t sr[32];
    int len;

    if (!s->started || s->done) {
        return 0;
    }
    if ((s->t13.have & (1u << MMTLS_KEYSHARE_L_CLIENT_RANDOM)) == 0 &&
        (s->t13.have & MMTLS_KEYSHARE_TLS13_COMPLETE) != MMTLS_KEYSHARE_TLS13_COMPLETE) {
        if ((s->t13.have & (1u << MMTLS_KEYSHARE_L_SHS)) == 0 || s->hs_sent) {
            return 0;
        }
        /* TLS 1.3: the server handshake secret goes at once (the client derives it from the
         * ServerHello; OpenSSL derives its own handshake write secret only after the server's
         * Finished, GnuTLS both at once): an inline middlebox holds the server's flight until it
         * comes (--server-flight hold).  The suite may still be unknown (GnuTLS): 0, the
         * middlebox reads the ServerHello. */
        s->hs_sent = true;
        s->t13.tag2 = ops->tag2 != NULL && ops->tag2(conn);
        return mmtls_keyshare_build_tls13(&s->t13, s->cr, ops->version(conn), ops->suite(conn), tp,
                                          out, out_cap);
    }
    suite = ops->suite(conn);
    if (suite == 0 && ops->suite_late && !final) {
        return 0;
    }
    s->done = true;
    if ((s->t13.have & (1u << MMTLS_KEYSHARE_L_CLIENT_RANDOM)) != 0) {
        /* TLS <= 1.2: the master secret is logged once it is computed, after ServerHello, so
         * the server random is known. */
        len = MMTLS_E_INTERNAL;
        if (ops->server_random(conn, sr)) {
            len = mmtls_keyshare_build_tls12(&s->t13.master, s->cr, sr, ops->version(conn), suite,
                                             tp, out, out_cap);
            mmtls_wipe(sr, sizeof(sr));
        }
    } else {
        s->t13.tag2 = ops->tag2 != NULL && ops->tag2(conn);
        len =
            mmtls_keyshare_build_tls13(&s->t13, s->cr, ops->version(conn), suite, tp, out, out_cap);
    }
    mmtls_wipe(&s->t13, sizeof(s->t13));
    return len;
}

int mmtls_keyshare_sess_secret(struct mmtls_keyshare_sess *s,
                               const struct mmtls_keyshare_conn_ops *ops, const void *conn,
                               enum mmtls_keyshare_label label, const uint8_t cr[32],
                               const struct mmtls_secret *secret, const char *bypass, uint8_t *out,
                               size_t out_cap)
{
    struct mmtls_secret *slot;
    char sni_buf[256];
    const char *sni;

    if (!s->started || memcmp(s->cr, cr, 32) != 0) {
        /* A new handshake on this connection (renegotiation, or reuse after SSL_clear). */
        mmtls_wipe(s, sizeof(*s));
        memcpy(s->cr, cr, 32);
        s->started = true;
        /* With 0-RTT the client's last secret may be logged only when the application next
         * reads, writes or shuts down, possibly after the peer closed: take the tuple now.
         * Programs with their own BIO (curl) have no descriptor: the message goes without. */
        s->has_tuple = ops->tuple(conn, &s->tuple);
    }
    if (s->done) {
        return 0;
    }
    sni = ops->sni(conn, sni_buf, sizeof(sni_buf));
    if (mmtls_keyshare_bypass_match(bypass, sni)) {
        /* docs/keyproto.md BYPASS: ask for the session not to be inspected; no secret leaves
         * the process. */
        s->done = true;
        mmtls_wipe(&s->t13, sizeof(s->t13));
        return mmtls_keyshare_build_bypass(cr, s->has_tuple ? &s->tuple : NULL, sni, out, out_cap);
    }
    slot = t13_slot(&s->t13, label);
    if (slot == NULL) {
        return 0;
    }
    *slot = *secret;
    s->t13.have |= 1u << label;
    /* OpenSSL logs SERVER_TRAFFIC_SECRET_0 before CLIENT_TRAFFIC_SECRET_0, GnuTLS the other
     * way round; either order works. */
    return sess_try(s, ops, conn, false, out, out_cap);
}

int mmtls_keyshare_sess_finish(struct mmtls_keyshare_sess *s,
                               const struct mmtls_keyshare_conn_ops *ops, const void *conn,
                               uint8_t *out, size_t out_cap)
{
    return sess_try(s, ops, conn, true, out, out_cap);
}

void mmtls_keyshare_emit(int len, uint8_t *msg, bool partial)
{
    if (len == 0) {
        return;
    }
    if (!partial || len < 0) {
        mmtls_keyshare_count_session();
    }
    if (len < 0) {
        mmtls_keyshare_count_other_drop();
        return;
    }
    mmtls_keyshare_chan_put(msg, (size_t)len);
    mmtls_wipe(msg, (size_t)len);
}

/* ------------------------------------------------------------------------------------------ */
/* OpenSSL glue                                                                                */

struct mmtls_keyshare_ossl mmtls_keyshare_ossl = {
    .ctx_new = SSL_CTX_new,
    .set_keylog = SSL_CTX_set_keylog_callback,
    .get_keylog = SSL_CTX_get_keylog_callback,
};

void mmtls_keyshare_ossl_set(const struct mmtls_keyshare_ossl *fns)
{
    mmtls_keyshare_ossl = *fns;
}

/* Per SSL_CTX (ex_data): the application's own key log callback, called first. */
struct ks_ctx {
    SSL_CTX_keylog_cb_func app_cb;
};

static pthread_once_t ks_once = PTHREAD_ONCE_INIT;
static int ks_ctx_idx = -1, ks_ssl_idx = -1;

static void ks_ctx_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    free(ptr);
}

static void ks_sess_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
    mmtls_secmem_free(ptr); /* wipes; NULL is a no-op */
}

static void ks_init_once(void)
{
    ks_ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ks_ctx_free);
    ks_ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, ks_sess_free);
}

static struct ks_ctx *ctx_state(const SSL_CTX *ctx)
{
    if (ks_ctx_idx < 0 || ctx == NULL) {
        return NULL;
    }
    return SSL_CTX_get_ex_data(ctx, ks_ctx_idx);
}

static bool ssl_tuple(const void *conn, struct mmtls_kp_tuple *t)
{
    return mmtls_keyshare_fd_tuple(SSL_get_fd(conn), t);
}

static bool ssl_server_random(const void *conn, uint8_t sr[32])
{
    return SSL_get_server_random(conn, sr, 32) == 32;
}

static uint16_t ssl_version(const void *conn)
{
    return (uint16_t)SSL_version(conn);
}

static uint16_t ssl_suite(const void *conn)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(conn);

    if (c == NULL) {
        c = SSL_get_pending_cipher(conn);
    }
    return c != NULL ? SSL_CIPHER_get_protocol_id(c) : 0;
}

static const char *ssl_sni(const void *conn, char *buf, size_t cap)
{
    return SSL_get_servername(conn, TLSEXT_NAMETYPE_host_name);
}

static bool ssl_tag2(const void *conn)
{
    return mmtls_ep_ssl_has_tag2(conn);
}

static const struct mmtls_keyshare_conn_ops ssl_ops = {
    .tuple = ssl_tuple,
    .server_random = ssl_server_random,
    .version = ssl_version,
    .suite = ssl_suite,
    .sni = ssl_sni,
    .tag2 = ssl_tag2,
};

static void handle_line(const SSL *ssl, const char *line)
{
    enum mmtls_keyshare_label label;
    struct mmtls_secret secret;
    struct mmtls_keyshare_sess *s;
    uint8_t cr[32], msg[MMTLS_KP_MAX_MSG];
    int len;

    if (mmtls_keyshare_line_parse(line, strlen(line), &label, cr, &secret) != 0) {
        return;
    }
    s = SSL_get_ex_data(ssl, ks_ssl_idx);
    if (s == NULL) {
        /* the session collects TLS 1.3 secrets: secret memory (out of core dumps) */
        s = mmtls_secmem_calloc(1, sizeof(*s));
        /* SSL_set_ex_data takes a non-const SSL; the key log callback only gets a const one.
         * The ex_data slot belongs to this library, so writing it is not a visible change. */
        if (s == NULL || SSL_set_ex_data((SSL *)ssl, ks_ssl_idx, s) != 1) {
            mmtls_secmem_free(s);
            mmtls_keyshare_count_other_drop();
            OPENSSL_cleanse(&secret, sizeof(secret));
            return;
        }
    }
    len = mmtls_keyshare_sess_secret(s, &ssl_ops, ssl, label, cr, &secret,
                                     mmtls_keyshare_chan_bypass(), msg, sizeof(msg));
    mmtls_keyshare_emit(len, msg, !s->done);
    OPENSSL_cleanse(&secret, sizeof(secret));
}

static void ks_keylog_cb(const SSL *ssl, const char *line)
{
    struct ks_ctx *kc = ctx_state(SSL_get_SSL_CTX(ssl));

    if (kc != NULL && kc->app_cb != NULL) {
        kc->app_cb(ssl, line);
    }
    if (line == NULL || SSL_is_server(ssl)) {
        return; /* only the client side of a connection speaks for it */
    }
    handle_line(ssl, line);
}

bool mmtls_keyshare_chain_set(SSL_CTX *ctx, SSL_CTX_keylog_cb_func cb)
{
    struct ks_ctx *kc = ctx_state(ctx);

    if (kc == NULL) {
        return false;
    }
    kc->app_cb = cb == ks_keylog_cb ? NULL : cb;
    return true;
}

bool mmtls_keyshare_chain_get(const SSL_CTX *ctx, SSL_CTX_keylog_cb_func *cb)
{
    struct ks_ctx *kc = ctx_state(ctx);

    if (kc == NULL) {
        return false;
    }
    *cb = kc->app_cb;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Configuration and attach                                                                    */

static int cfg_str(char **dst, const char *v, const char *env, uint32_t flags)
{
    if (v == NULL && (flags & MMTLS_KEYSHARE_F_NO_ENV) == 0) {
        v = getenv(env);
    }
    *dst = NULL;
    if (v == NULL || v[0] == '\0') {
        return 0;
    }
    *dst = strdup(v);
    return *dst != NULL ? 0 : MMTLS_E_NOMEM;
}

static void cfg_free(struct mmtls_keyshare_cfg *c)
{
    free(c->keyserver);
    free(c->ca);
    free(c->cert);
    free(c->key);
    free(c->bypass);
    memset(c, 0, sizeof(*c));
}

/* Reads field f of opts only when the caller's struct is large enough to hold it. */
#define OPT(o, f, def)                                                                             \
    ((o) != NULL && (o)->sz >= offsetof(struct mmtls_keyshare_opts, f) + sizeof((o)->f) ? (o)->f   \
                                                                                        : (def))

int mmtls_keyshare_configure(const struct mmtls_keyshare_opts *opts)
{
    struct mmtls_keyshare_cfg cfg = {0};
    int rc;

    if (opts != NULL && opts->sz < sizeof(size_t)) {
        return MMTLS_E_INVAL;
    }
    /* The exit flush needs OpenSSL: initialise it before chan_configure registers the flush, so
     * that OpenSSL's own atexit cleanup (registered at its initialisation) runs after ours.  In
     * a GnuTLS program nothing else has initialised OpenSSL yet. */
    if (OPENSSL_init_ssl(0, NULL) != 1) {
        return MMTLS_E_NOMEM;
    }
    cfg.flags = OPT(opts, flags, 0u);
    cfg.queue_max = OPT(opts, queue_max, 0u);
    if (cfg.queue_max == 0) {
        cfg.queue_max = MMTLS_KEYSHARE_QUEUE_DEFAULT;
    }
    if (cfg.queue_max > MMTLS_KEYSHARE_QUEUE_LIMIT) {
        cfg.queue_max = MMTLS_KEYSHARE_QUEUE_LIMIT;
    }
    if (cfg_str(&cfg.keyserver, OPT(opts, keyserver, NULL), "MMTLS_KEYSERVER", cfg.flags) != 0 ||
        cfg_str(&cfg.ca, OPT(opts, ca, NULL), "MMTLS_CA", cfg.flags) != 0 ||
        cfg_str(&cfg.cert, OPT(opts, cert, NULL), "MMTLS_CERT", cfg.flags) != 0 ||
        cfg_str(&cfg.key, OPT(opts, key, NULL), "MMTLS_KEY", cfg.flags) != 0 ||
        cfg_str(&cfg.bypass, OPT(opts, bypass, NULL), "MMTLS_BYPASS", cfg.flags) != 0) {
        rc = MMTLS_E_NOMEM;
        goto out;
    }
    if (cfg.keyserver == NULL) {
        rc = MMTLS_E_INVAL;
        goto out;
    }
    rc = mmtls_keyshare_chan_configure(&cfg); /* takes the strings on success */
out:
    cfg_free(&cfg);
    return rc;
}

MMTLS_KEYSHARE_API int mmtls_keyshare_attach(SSL_CTX *ctx, const struct mmtls_keyshare_opts *opts)
{
    struct ks_ctx *kc;
    int rc;

    if (ctx == NULL || (opts != NULL && opts->sz < sizeof(size_t))) {
        return MMTLS_E_INVAL;
    }
    if (pthread_once(&ks_once, ks_init_once) != 0 || ks_ctx_idx < 0 || ks_ssl_idx < 0) {
        return MMTLS_E_NOMEM;
    }
    if (ctx_state(ctx) != NULL) {
        return 0; /* already attached (SSL_CTX_new may call SSL_CTX_new_ex internally) */
    }
    kc = calloc(1, sizeof(*kc));
    if (kc == NULL) {
        return MMTLS_E_NOMEM;
    }
    rc = mmtls_keyshare_configure(opts);
    if (rc != 0) {
        goto out_kc;
    }
    kc->app_cb = mmtls_keyshare_ossl.get_keylog(ctx);
    if (kc->app_cb == ks_keylog_cb) {
        kc->app_cb = NULL;
    }
    if (SSL_CTX_set_ex_data(ctx, ks_ctx_idx, kc) != 1) {
        rc = MMTLS_E_NOMEM;
        goto out_kc;
    }
    mmtls_keyshare_ossl.set_keylog(ctx, ks_keylog_cb);
    return 0;

out_kc:
    free(kc);
    return rc;
}

MMTLS_KEYSHARE_API const char *mmtls_keyshare_strerror(int err)
{
    switch (err) {
    case MMTLS_OK: return "ok";
    case MMTLS_AGAIN: return "timed out";
    case MMTLS_E_INVAL: return "invalid argument (is MMTLS_KEYSERVER set?)";
    case MMTLS_E_CONFLICT: return "another key server is already configured in this process";
    case MMTLS_E_NOMEM: return "out of memory";
    case MMTLS_E_IO: return "the key channel could not be established";
    default: return "unknown error";
    }
}
