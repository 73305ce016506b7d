/* preload_gnutls.c — the GnuTLS side of libmmtls-preload.so: key sharing for unmodified GnuTLS
 * programs (Debian's wget and gnutls-cli link libgnutls.so.30, not libssl).
 *
 * The shim interposes gnutls_init: for every client session (GNUTLS_CLIENT, not DTLS) made while
 * MMTLS_KEYSERVER is set it installs a key log hook with gnutls_session_set_keylog_function
 * (GnuTLS >= 3.6.13).  GnuTLS calls the hook with each secret and an NSS key log label; the
 * session's client and server randoms, version and cipher suite are asked from GnuTLS at that
 * point, and the secrets go through the same neutral collection as OpenSSL's key log lines
 * (mmtls_keyshare_sess_secret).  GnuTLS names the cipher suite only once the handshake is
 * over (gnutls_ciphersuite_get is NULL before), and a TLS 1.2 key block needs it: so the
 * message of a session is built when the interposed gnutls_handshake returns success.  The SNI
 * (for MMTLS_BYPASS) is what the client gave gnutls_server_name_set, also interposed: GnuTLS
 * does not return it to a client.  The hook replaces GnuTLS's default one, which is what writes
 * SSLKEYLOGFILE: the function installed before ours is kept per session and called first, so
 * SSLKEYLOGFILE keeps working; gnutls_session_{set,get}_keylog_function are interposed too, so
 * that an application's own hook is chained the same way and seen back from the getter.
 * gnutls_deinit drops the session's state.
 *
 * Nothing here links against GnuTLS: every GnuTLS function is found with dlsym once libgnutls
 * has called into us, so the shim loads into any process.  The few GnuTLS types and constants
 * used are restated below from GnuTLS 3.7's <gnutls/gnutls.h> (a stable ABI since 3.0).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyshare_int.h"

/* <gnutls/gnutls.h>: gnutls_datum_t, gnutls_init flags, gnutls_protocol_t, name types. */
struct gt_datum {
    unsigned char *data; /* borrowed */
    unsigned int size;
};

#define GT_CLIENT (1u << 1)
#define GT_DATAGRAM (1u << 2)
#define GT_TLS1_0 2 /* .. GT_TLS1_3 = 5, consecutive */
#define GT_TLS1_3 5
#define GT_NAME_DNS 1u
#define GT_E_INTERNAL_ERROR (-59)

#define GT_BUCKETS 256u

/* gnutls_keylog_func (GnuTLS >= 3.6.13): non-zero fails the handshake. */
typedef int gt_keylog_fn(void *session, const char *label, const struct gt_datum *secret);

/* The interposed functions, with GnuTLS's signatures (gnutls_session_t is a pointer). */
MMTLS_KEYSHARE_API int gnutls_init(void **session, unsigned int flags);
MMTLS_KEYSHARE_API void gnutls_deinit(void *session);
MMTLS_KEYSHARE_API int gnutls_handshake(void *session);
MMTLS_KEYSHARE_API int gnutls_server_name_set(void *session, unsigned int type, const void *name,
                                              size_t name_length);
MMTLS_KEYSHARE_API void gnutls_session_set_keylog_function(void *session, gt_keylog_fn *func);
MMTLS_KEYSHARE_API gt_keylog_fn *gnutls_session_get_keylog_function(const void *session);

static struct {
    int (*init)(void **session, unsigned int flags);
    void (*deinit)(void *session);
    int (*handshake)(void *session);
    int (*server_name_set)(void *session, unsigned int type, const void *name, size_t len);
    void (*set_keylog)(void *session, gt_keylog_fn *func);
    gt_keylog_fn *(*get_keylog)(const void *session);
    void (*get_random)(void *session, struct gt_datum *client, struct gt_datum *server);
    int (*get_version)(void *session);
    const char *(*suite_name)(void *session); /* gnutls_ciphersuite_get, GnuTLS >= 3.7.3 */
    void (*transport_fds)(void *session, int *recv_fd, int *send_fd);
} gt;

/* One client session being watched. */
struct gt_ent {
    const void *session; /* borrowed: the gnutls_session_t */
    /* The hook installed before ours (GnuTLS's SSLKEYLOGFILE writer, or the application's). */
    gt_keylog_fn *prev;
    struct mmtls_keyshare_sess ks;
    char sni[256];       /* the last DNS name given to gnutls_server_name_set, NUL-terminated */
    struct gt_ent *next; /* owned */
};

static pthread_once_t gt_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t gt_mu = PTHREAD_MUTEX_INITIALIZER;
static struct gt_ent *gt_tab[GT_BUCKETS]; /* owned chains, under gt_mu */
static bool gt_enabled;                   /* written once in gt_resolve */

static void gt_fork_prepare(void)
{
    pthread_mutex_lock(&gt_mu);
}

static void gt_fork_release(void)
{
    pthread_mutex_unlock(&gt_mu);
}

static void *gt_sym(const char *name)
{
    return mmtls_keyshare_preload_sym(name, "libgnutls.so.30");
}

static void gt_resolve(void)
{
    const char *ks = getenv("MMTLS_KEYSERVER");
    int rc;

    /* POSIX dlsym: a function pointer is converted from the object pointer dlsym returns. */
    gt.init = (int (*)(void **, unsigned int))gt_sym("gnutls_init");
    gt.deinit = (void (*)(void *))gt_sym("gnutls_deinit");
    gt.set_keylog = (void (*)(void *, gt_keylog_fn *))gt_sym("gnutls_session_set_keylog_function");
    gt.get_keylog = (gt_keylog_fn * (*)(const void *)) gt_sym("gnutls_session_get_keylog_function");
    gt.get_random =
        (void (*)(void *, struct gt_datum *, struct gt_datum *))gt_sym("gnutls_session_get_random");
    gt.get_version = (int (*)(void *))gt_sym("gnutls_protocol_get_version");
    gt.suite_name = (const char *(*)(void *))gt_sym("gnutls_ciphersuite_get");
    gt.transport_fds = (void (*)(void *, int *, int *))gt_sym("gnutls_transport_get_int2");
    gt.handshake = (int (*)(void *))gt_sym("gnutls_handshake");
    gt.server_name_set =
        (int (*)(void *, unsigned int, const void *, size_t))gt_sym("gnutls_server_name_set");
    if (ks == NULL || ks[0] == '\0') {
        return; /* pure pass-through */
    }
    if (gt.init == NULL || gt.deinit == NULL || gt.set_keylog == NULL || gt.get_keylog == NULL ||
        gt.get_random == NULL || gt.get_version == NULL || gt.transport_fds == NULL ||
        gt.handshake == NULL || gt.server_name_set == NULL) {
        fprintf(stderr, "mmtls-preload: GnuTLS lacks the key log hook (needs 3.6.13); key "
                        "sharing is off for GnuTLS sessions\n");
        return;
    }
    rc = mmtls_keyshare_configure(NULL);
    if (rc != 0) {
        fprintf(stderr, "mmtls-preload: key sharing off for GnuTLS sessions: %s\n",
                mmtls_keyshare_strerror(rc));
        return;
    }
    (void)pthread_atfork(gt_fork_prepare, gt_fork_release, gt_fork_release);
    gt_enabled = true;
}

static struct gt_ent **gt_find_locked(const void *session)
{
    struct gt_ent **pp = &gt_tab[((uintptr_t)session >> 4) % GT_BUCKETS];

    while (*pp != NULL && (*pp)->session != session) {
        pp = &(*pp)->next;
    }
    return pp;
}

/* ------------------------------------------------------------------------------------------ */
/* What the neutral collection asks about a session (conn is the gnutls_session_t).          */

static bool gt_tuple(const void *conn, struct mmtls_kp_tuple *t)
{
    int r = -1, s = -1;

    /* A program with its own push/pull functions may have stored a pointer as transport: it
     * then is no socket (getsockname fails) and the message goes without a tuple. */
    gt.transport_fds((void *)conn, &r, &s);
    return mmtls_keyshare_fd_tuple(s >= 0 ? s : r, t);
}

static bool gt_server_random(const void *conn, uint8_t sr[32])
{
    struct gt_datum c = {0}, s = {0};

    gt.get_random((void *)conn, &c, &s);
    if (s.data == NULL || s.size != 32) {
        return false;
    }
    memcpy(sr, s.data, 32);
    return true;
}

static uint16_t gt_version(const void *conn)
{
    int v = gt.get_version((void *)conn);

    /* gnutls_protocol_t: GNUTLS_TLS1_0 = 2 .. GNUTLS_TLS1_3 = 5 -> 0x0301 .. 0x0304. */
    return v >= GT_TLS1_0 && v <= GT_TLS1_3 ? (uint16_t)(0x0301 + (v - GT_TLS1_0)) : 0;
}

static uint16_t gt_suite(const void *conn)
{
    /* gnutls_ciphersuite_get gives the IANA name ("TLS_AES_128_GCM_SHA256") once the handshake
     * is over, NULL before.  GnuTLS before 3.7.3 lacks it: TLS 1.3 keys then go with suite 0
     * (the middlebox reads it from the ServerHello), TLS 1.2 sessions are counted as dropped. */
    return gt.suite_name != NULL ? mmtls_keyshare_suite_by_name(gt.suite_name((void *)conn)) : 0;
}

/* Called with gt_mu held (from mmtls_keyshare_sess_secret). */
static const char *gt_sni(const void *conn, char *buf, size_t cap)
{
    const struct gt_ent *e = *gt_find_locked(conn);

    return e != NULL && e->sni[0] != '\0' ? e->sni : NULL;
}

static const struct mmtls_keyshare_conn_ops gt_ops = {
    .tuple = gt_tuple,
    .server_random = gt_server_random,
    .version = gt_version,
    .suite = gt_suite,
    .sni = gt_sni,
    .suite_late = true,
};

/* ------------------------------------------------------------------------------------------ */
/* The hook and the interposers                                                               */

static int gt_keylog(void *session, const char *label, const struct gt_datum *secret)
{
    gt_keylog_fn *prev = NULL;
    enum mmtls_keyshare_label l;
    struct mmtls_secret sec;
    struct gt_datum c = {0}, s = {0};
    uint8_t msg[MMTLS_KP_MAX_MSG];
    struct gt_ent *e;
    bool ours;
    int rc = 0, len = 0;
    bool partial = false;

    pthread_mutex_lock(&gt_mu);
    e = *gt_find_locked(session);
    ours = e != NULL;
    if (ours) {
        prev = e->prev;
    }
    pthread_mutex_unlock(&gt_mu);
    /* The previous hook first, outside the lock (it may call back into GnuTLS and us); its
     * result is GnuTLS's business, ours never fails the handshake. */
    if (prev != NULL) {
        rc = prev(session, label, secret);
    }
    if (!ours || label == NULL || secret == NULL || secret->data == NULL) {
        return rc;
    }
    l = mmtls_keyshare_label_of(label, strlen(label));
    if (l == 0 || secret->size == 0 || secret->size > sizeof(sec.b)) {
        return rc; /* EXPORTER_SECRET and friends: never sent */
    }
    gt.get_random(session, &c, &s);
    if (c.data == NULL || c.size != 32) {
        return rc;
    }
    memcpy(sec.b, secret->data, secret->size);
    sec.len = (uint8_t)secret->size;
    pthread_mutex_lock(&gt_mu);
    e = *gt_find_locked(session);
    if (e != NULL) {
        len = mmtls_keyshare_sess_secret(&e->ks, &gt_ops, session, l, c.data, &sec,
                                         mmtls_keyshare_chan_bypass(), msg, sizeof(msg));
        partial = !e->ks.done;
    }
    pthread_mutex_unlock(&gt_mu);
    mmtls_keyshare_emit(len, msg, partial);
    mmtls_wipe(&sec, sizeof(sec));
    return rc;
}

MMTLS_KEYSHARE_API int gnutls_init(void **session, unsigned int flags)
{
    struct gt_ent *e, **pp;
    int rc;

    pthread_once(&gt_once, gt_resolve);
    if (gt.init == NULL) {
        return GT_E_INTERNAL_ERROR;
    }
    rc = gt.init(session, flags);
    /* Only the client side of a connection speaks for it; DTLS is not followed. */
    if (rc != 0 || !gt_enabled || (flags & GT_CLIENT) == 0 || (flags & GT_DATAGRAM) != 0 ||
        mmtls_keyshare_on_chan_thread) {
        return rc;
    }
    e = mmtls_secmem_calloc(1, sizeof(*e)); /* holds secrets (e->ks): out of core dumps */
    if (e == NULL) {
        mmtls_keyshare_count_other_drop();
        return rc;
    }
    e->session = *session;
    e->prev = gt.get_keylog(*session);
    pthread_mutex_lock(&gt_mu);
    pp = gt_find_locked(*session);
    if (*pp == NULL) {
        *pp = e;
        e = NULL;
    }
    pthread_mutex_unlock(&gt_mu);
    mmtls_secmem_free(e); /* a stale entry for the same address (never deinit'ed): keep that one */
    gt.set_keylog(*session, gt_keylog);
    return rc;
}

MMTLS_KEYSHARE_API int gnutls_handshake(void *session)
{
    uint8_t msg[MMTLS_KP_MAX_MSG];
    struct gt_ent *e;
    int rc, len = 0;
    bool partial = false;

    pthread_once(&gt_once, gt_resolve);
    if (gt.handshake == NULL) {
        return GT_E_INTERNAL_ERROR;
    }
    rc = gt.handshake(session);
    if (rc != 0 || !gt_enabled) {
        return rc; /* GNUTLS_E_AGAIN and friends: the application calls again */
    }
    pthread_mutex_lock(&gt_mu);
    e = *gt_find_locked(session);
    if (e != NULL) {
        len = mmtls_keyshare_sess_finish(&e->ks, &gt_ops, session, msg, sizeof(msg));
        partial = !e->ks.done;
    }
    pthread_mutex_unlock(&gt_mu);
    mmtls_keyshare_emit(len, msg, partial);
    return rc;
}

MMTLS_KEYSHARE_API int gnutls_server_name_set(void *session, unsigned int type, const void *name,
                                              size_t name_length)
{
    struct gt_ent *e;
    int rc;

    pthread_once(&gt_once, gt_resolve);
    if (gt.server_name_set == NULL) {
        return GT_E_INTERNAL_ERROR;
    }
    rc = gt.server_name_set(session, type, name, name_length);
    if (rc != 0 || !gt_enabled || type != GT_NAME_DNS || name == NULL) {
        return rc;
    }
    pthread_mutex_lock(&gt_mu);
    e = *gt_find_locked(session);
    if (e != NULL && name_length < sizeof(e->sni) && memchr(name, '\0', name_length) == NULL) {
        memcpy(e->sni, name, name_length);
        e->sni[name_length] = '\0';
    }
    pthread_mutex_unlock(&gt_mu);
    return rc;
}

MMTLS_KEYSHARE_API void gnutls_deinit(void *session)
{
    struct gt_ent *e, **pp;

    pthread_once(&gt_once, gt_resolve);
    pthread_mutex_lock(&gt_mu);
    pp = gt_find_locked(session);
    e = *pp;
    if (e != NULL) {
        *pp = e->next;
    }
    pthread_mutex_unlock(&gt_mu);
    mmtls_secmem_free(e); /* wipes; NULL is a no-op */
    if (gt.deinit != NULL) {
        gt.deinit(session);
    }
}

MMTLS_KEYSHARE_API void gnutls_session_set_keylog_function(void *session, gt_keylog_fn *func)
{
    struct gt_ent *e;

    pthread_once(&gt_once, gt_resolve);
    pthread_mutex_lock(&gt_mu);
    e = *gt_find_locked(session);
    if (e != NULL) {
        e->prev = func == gt_keylog ? NULL : func; /* ours stays installed and calls func */
    }
    pthread_mutex_unlock(&gt_mu);
    if (e == NULL && gt.set_keylog != NULL) {
        gt.set_keylog(session, func);
    }
}

MMTLS_KEYSHARE_API gt_keylog_fn *gnutls_session_get_keylog_function(const void *session)
{
    gt_keylog_fn *func = NULL;
    struct gt_ent *e;

    pthread_once(&gt_once, gt_resolve);
    pthread_mutex_lock(&gt_mu);
    e = *gt_find_locked(session);
    if (e != NULL) {
        func = e->prev;
    }
    pthread_mutex_unlock(&gt_mu);
    if (e == NULL && gt.get_keylog != NULL) {
        func = gt.get_keylog(session);
    }
    return func;
}
