/* libmmtls-keyshare — the client side of the mmtls key protocol (docs/keyproto.md).
 *
 * A TLS client built on OpenSSL 3 calls mmtls_keyshare_attach() on each SSL_CTX it creates.  The
 * library then installs a key log callback on the context (chaining the application's own), and
 * for every client connection made from it sends the session's secrets to the middlebox's key
 * server: the TLS 1.3 handshake and application traffic secrets (never exporter or resumption
 * secrets), or for TLS <= 1.2 the record keys derived from the master secret (never the master
 * secret itself).  Sessions whose server name matches a bypass pattern are announced with BYPASS
 * instead, and no secret leaves the process.
 *
 * Delivery is asynchronous: the callback only encodes a message into a bounded in-memory queue;
 * one background thread per process keeps one TLS 1.3 channel (client certificate) to the key
 * server, connects lazily on the first message, reconnects with exponential back-off, and sends
 * a KEEPALIVE every 30 s when idle.  Nothing here ever blocks or fails the application's
 * handshake: when the queue is full or the key server is down, messages are dropped and counted.
 *
 * Threads: every function is thread-safe.  fork(): the child starts with an empty queue and no
 * thread or channel (messages queued by the parent stay the parent's); the first session the
 * child makes starts its own thread and channel.
 *
 * Server-side SSL objects (SSL_is_server) are ignored: the library only speaks for connections
 * its process makes as a client, which is what the key server's ownership check expects.
 */
#ifndef MMTLS_KEYSHARE_H
#define MMTLS_KEYSHARE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include <mmtls/error.h> /* return codes: 0, MMTLS_AGAIN, MMTLS_E_* */

#ifdef __cplusplus
extern "C" {
#endif

/* Bits of mmtls_keyshare_opts.flags. */
#define MMTLS_KEYSHARE_F_NO_ENV 0x1u    /* do not fill NULL fields from the environment */
#define MMTLS_KEYSHARE_F_NO_ATEXIT 0x2u /* do not flush (500 ms) and stop at exit() */

/* Options (libbpf style: the caller sets sz = sizeof(struct); fields beyond sz are taken as
 * zero, so later versions can add fields at the end).  Every string is borrowed: it is copied
 * during mmtls_keyshare_attach() and need not outlive the call.  A NULL string field is read from
 * the environment variable named next to it unless MMTLS_KEYSHARE_F_NO_ENV is set. */
struct mmtls_keyshare_opts {
    size_t sz;
    const char *keyserver; /* borrowed; "host:port" or "[v6]:port"; MMTLS_KEYSERVER */
    const char *ca;        /* borrowed; PEM file verifying the key server; MMTLS_CA */
    const char *cert;      /* borrowed; PEM client certificate (chain); MMTLS_CERT */
    const char *key;       /* borrowed; PEM private key of cert; MMTLS_KEY */
    const char *bypass;    /* borrowed; comma-separated fnmatch(3) globs matched (case-
                            * insensitively) against the SNI; MMTLS_BYPASS */
    uint32_t queue_max;    /* messages held while the channel is slow or down; 0 = 4096 */
    uint32_t flags;        /* MMTLS_KEYSHARE_F_* */
};

#define MMTLS_KEYSHARE_OPTS(name, ...)                                                             \
    struct mmtls_keyshare_opts name = {.sz = sizeof(struct mmtls_keyshare_opts), __VA_ARGS__}

/* Counters since the process (or, after fork, the child) started.  The caller sets sz; fields
 * beyond it are not written. */
struct mmtls_keyshare_stats {
    size_t sz;
    uint64_t sessions;           /* client sessions whose secrets were seen */
    uint64_t queued;             /* messages put into the queue (KEYS + BYPASS) */
    uint64_t sent;               /* messages written to a channel (KEYS + BYPASS) */
    uint64_t sent_bypass;        /* of which BYPASS */
    uint64_t keepalives;         /* KEEPALIVE messages written */
    uint64_t dropped_queue_full; /* dropped because the queue held queue_max messages */
    uint64_t dropped_no_channel; /* discarded at shutdown/exit without ever reaching a channel */
    uint64_t dropped_other;      /* sessions that could not be encoded (unknown cipher suite...) */
    uint64_t connects;           /* channels established */
    uint64_t connect_failures;   /* failed connects or TLS handshakes */
    uint64_t reconnects;         /* channels established after a previous one was lost */
    uint64_t pending;            /* messages waiting now (queue + in flight) */
    uint64_t sync_timeouts;      /* handshakes that stopped waiting for their keys to be written
                                  * (MMTLS_KEYSHARE_SYNC_MS) */
};

/* Attaches key sharing to ctx: installs the key log callback (the one the application had set
 * is kept and still called first, with the same line) and remembers the configuration.  The
 * configuration is per process: the first successful attach fixes the key server, the
 * certificates, the bypass patterns and queue_max; a later attach naming another key server
 * fails with MMTLS_E_CONFLICT.  Attaching the same ctx twice is a no-op.  opts may be NULL (all
 * from the environment).  Does no I/O: certificate files are read by the background thread when
 * it first connects (a failure there is counted in connect_failures and retried).
 * Returns 0, MMTLS_E_INVAL (no key server configured, bad opts), MMTLS_E_CONFLICT, or
 * MMTLS_E_NOMEM; on failure ctx is left unchanged. */
int mmtls_keyshare_attach(SSL_CTX *ctx, const struct mmtls_keyshare_opts *opts);

/* Copies the counters into *st (up to st->sz bytes). */
void mmtls_keyshare_stats(struct mmtls_keyshare_stats *st);

/* Waits until every queued message has been written to the channel, for at most timeout_ms.
 * Returns 0 when the queue is empty, MMTLS_AGAIN on timeout, MMTLS_E_IO when the channel could
 * not be (re)established during the wait (it returns early then).  For tests and short-lived
 * programs; never call it from a key log callback. */
int mmtls_keyshare_flush(int timeout_ms);

/* Stops the background thread (after at most ~200 ms), closes the channel and wipes the queue;
 * messages still queued are counted in dropped_no_channel.  Attached contexts keep working for
 * the application (their callback chains to the application's and queues nothing more).
 * Called automatically at exit() after a 500 ms flush unless MMTLS_KEYSHARE_F_NO_ATEXIT. */
void mmtls_keyshare_shutdown(void);

/* A static string naming a return code of this library; never NULL. */
const char *mmtls_keyshare_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
