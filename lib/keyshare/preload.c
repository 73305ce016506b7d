/* preload.c — libmmtls-preload.so: key sharing for unmodified OpenSSL 3 programs (and, in
 * preload_gnutls.c, GnuTLS programs such as Debian's wget and gnutls-cli).
 *
 *     MMTLS_KEYSERVER=10.0.0.1:4434 MMTLS_CA=ca.pem MMTLS_CERT=me.pem MMTLS_KEY=me.key \
 *         LD_PRELOAD=libmmtls-preload.so curl https://example.org/
 *
 * The shim interposes SSL_CTX_new and SSL_CTX_new_ex and attaches libmmtls-keyshare (configured
 * from the environment only) to every context the program creates.  It also interposes
 * SSL_CTX_set_keylog_callback / SSL_CTX_get_keylog_callback: a program that installs its own
 * key log callback later (curl and python do so for SSLKEYLOGFILE, openssl s_client for
 * -keylogfile) has it recorded and chained from ours, and sees it back from the getter.
 * Without MMTLS_KEYSERVER every interposed call just passes through.  At exit the library
 * flushes its queue for up to 500 ms so that short-lived programs deliver their keys
 * (MMTLS_KEYSHARE_STATS=1 prints the counters on stderr then, MMTLS_KEYSHARE_DEBUG=1 logs
 * channel errors).
 *
 * The real functions come from dlsym(RTLD_NEXT), or, for a libssl loaded by dlopen with
 * RTLD_LOCAL (Python extension modules), from the already loaded libssl.so.3.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/ssl.h>

#include "keyshare_int.h"

static struct {
    SSL_CTX *(*ctx_new)(const SSL_METHOD *meth);
    SSL_CTX *(*ctx_new_ex)(OSSL_LIB_CTX *libctx, const char *propq, const SSL_METHOD *meth);
    void (*set_keylog)(SSL_CTX *ctx, SSL_CTX_keylog_cb_func cb);
    SSL_CTX_keylog_cb_func (*get_keylog)(const SSL_CTX *ctx);
} real;

static pthread_once_t preload_once = PTHREAD_ONCE_INIT;
static bool preload_enabled;

void *mmtls_keyshare_preload_sym(const char *name, const char *soname)
{
    void *p = dlsym(RTLD_NEXT, name);

    if (p == NULL) {
        void *h = dlopen(soname, RTLD_NOW | RTLD_NOLOAD);

        if (h != NULL) {
            p = dlsym(h, name);
            dlclose(h); /* RTLD_NOLOAD took a reference; the library stays loaded */
        }
    }
    return p;
}

static void *real_sym(const char *name)
{
    return mmtls_keyshare_preload_sym(name, "libssl.so.3");
}

static void preload_resolve(void)
{
    struct mmtls_keyshare_ossl fns;
    const char *ks = getenv("MMTLS_KEYSERVER");

    /* POSIX dlsym: a function pointer is converted from the object pointer dlsym returns. */
    real.ctx_new = (SSL_CTX * (*)(const SSL_METHOD *)) real_sym("SSL_CTX_new");
    real.ctx_new_ex = (SSL_CTX * (*)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *))
        real_sym("SSL_CTX_new_ex");
    real.set_keylog =
        (void (*)(SSL_CTX *, SSL_CTX_keylog_cb_func))real_sym("SSL_CTX_set_keylog_callback");
    real.get_keylog =
        (SSL_CTX_keylog_cb_func(*)(const SSL_CTX *))real_sym("SSL_CTX_get_keylog_callback");
    if (real.ctx_new == NULL || real.set_keylog == NULL || real.get_keylog == NULL) {
        fprintf(stderr, "mmtls-preload: cannot find libssl's functions; key sharing is off\n");
        return;
    }
    fns.ctx_new = real.ctx_new;
    fns.set_keylog = real.set_keylog;
    fns.get_keylog = real.get_keylog;
    mmtls_keyshare_ossl_set(&fns);
    preload_enabled = ks != NULL && ks[0] != '\0';
}

__attribute__((constructor)) static void preload_init(void)
{
    pthread_once(&preload_once, preload_resolve);
}

static void preload_attach(SSL_CTX *ctx)
{
    int rc;

    if (ctx == NULL || !preload_enabled || mmtls_keyshare_on_chan_thread) {
        return;
    }
    rc = mmtls_keyshare_attach(ctx, NULL);
    if (rc != 0) {
        static bool said;

        if (!said) { /* once per process: never fail or flood the application */
            said = true;
            fprintf(stderr, "mmtls-preload: key sharing off for a context: %s\n",
                    mmtls_keyshare_strerror(rc));
        }
    }
}

MMTLS_KEYSHARE_API SSL_CTX *SSL_CTX_new(const SSL_METHOD *meth)
{
    SSL_CTX *ctx;

    pthread_once(&preload_once, preload_resolve);
    if (real.ctx_new == NULL) {
        return NULL;
    }
    ctx = real.ctx_new(meth);
    preload_attach(ctx);
    return ctx;
}

MMTLS_KEYSHARE_API SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *libctx, const char *propq,
                                           const SSL_METHOD *meth)
{
    SSL_CTX *ctx;

    pthread_once(&preload_once, preload_resolve);
    if (real.ctx_new_ex == NULL) {
        return NULL;
    }
    ctx = real.ctx_new_ex(libctx, propq, meth);
    preload_attach(ctx);
    return ctx;
}

MMTLS_KEYSHARE_API void SSL_CTX_set_keylog_callback(SSL_CTX *ctx, SSL_CTX_keylog_cb_func cb)
{
    pthread_once(&preload_once, preload_resolve);
    if (mmtls_keyshare_chain_set(ctx, cb)) {
        return; /* ours stays installed and calls cb first */
    }
    if (real.set_keylog != NULL) {
        real.set_keylog(ctx, cb);
    }
}

MMTLS_KEYSHARE_API SSL_CTX_keylog_cb_func SSL_CTX_get_keylog_callback(const SSL_CTX *ctx)
{
    SSL_CTX_keylog_cb_func cb = NULL;

    pthread_once(&preload_once, preload_resolve);
    if (mmtls_keyshare_chain_get(ctx, &cb)) {
        return cb;
    }
    return real.get_keylog != NULL ? real.get_keylog(ctx) : NULL;
}
