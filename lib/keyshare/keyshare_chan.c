/* keyshare_chan.c — the bounded message queue and the background thread that owns the one key
 * channel of the process (docs/keyproto.md): a TLS 1.3 connection with a client certificate,
 * opened lazily on the first message, kept open with a KEEPALIVE every 30 s of idleness, and
 * reopened with exponential back-off (100 ms .. 10 s, with jitter) after any error.
 *
 * Locking: one mutex (g.mu) protects the queue, the counters and the thread state.  The key log
 * callback holds it only to copy one message; the thread holds it only to move messages into
 * its batch buffer.  No I/O ever happens under it.  The thread is woken through an eventfd and
 * waits for its socket and the eventfd in poll(), with non-blocking I/O everywhere, so
 * mmtls_keyshare_shutdown() can stop it within one poll round.
 *
 * fork(): pthread_atfork handlers take g.mu around fork(); the child forgets the parent's thread,
 * channel and eventfd (closing its copies of the descriptors, leaking the parent's OpenSSL
 * objects rather than touching state another thread may have held), wipes the queue and zeroes
 * its counters.  The child's first message starts a fresh thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "keyshare_int.h"

#define KS_KEEPALIVE_MS 30000
#define KS_BACKOFF_MIN_MS 100
#define KS_BACKOFF_MAX_MS 10000
#define KS_CONNECT_TIMEOUT_MS 5000
#define KS_IO_TIMEOUT_MS 10000
#define KS_BATCH_MAX 32 /* messages moved out of the queue per write */
#define KS_STOP_JOIN_MS 200
#define KS_BATCH_BYTES (KS_BATCH_MAX * MMTLS_KP_MAX_MSG)

struct ks_slot {
    uint16_t len;
    uint8_t b[MMTLS_KP_MAX_MSG];
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t drained; /* broadcast when the queue empties or a connect fails */
    struct mmtls_keyshare_cfg cfg;
    bool configured;
    /* The queue and the batch hold encoded KEYS messages (secrets): both live in the
     * secure-memory pool (pages left out of core dumps, mmtls_secmem) and are wiped after use. */
    struct ks_slot *q; /* owned (secmem); cfg.queue_max slots, wiped when emptied */
    uint32_t head, count;
    uint32_t inflight; /* messages in the thread's batch, not yet written */
    int efd;           /* eventfd waking the thread; -1 until the thread starts */
    bool eager;        /* connect at configuration (set before the thread starts) */
    bool connecting;   /* the thread is opening the channel (or is about to, when eager) */
    uint32_t sync_ms;  /* how long a handshake waits for its keys to be written; 0: never */
    bool running, stopping, stopped, atexit_done;
    pthread_t thr;
    int chan_fd; /* the thread's socket, for the fork child to close; -1 */
    bool connected;
    struct mmtls_keyshare_stats st;
    /* The thread's batch (owned by the thread while running; wiped after each write). */
    uint8_t *batch; /* owned (secmem): KS_BATCH_BYTES, allocated with q */
    size_t batch_len;
    uint32_t batch_n, batch_bypass;
} g = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .drained = PTHREAD_COND_INITIALIZER,
    .efd = -1,
    .chan_fd = -1,
};

static pthread_once_t chan_once = PTHREAD_ONCE_INIT;
_Thread_local bool mmtls_keyshare_on_chan_thread;
static bool ks_debug;

static void ks_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ks_log(const char *fmt, ...)
{
    va_list ap;

    if (!ks_debug) {
        return;
    }
    va_start(ap, fmt);
    fputs("mmtls-keyshare: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* One line naming the OpenSSL reason (drains the thread's error queue). */
static void ks_log_ossl(const char *what)
{
    char buf[256] = "";
    unsigned long e, last = 0;

    while ((e = ERR_get_error()) != 0) {
        last = e;
    }
    if (last != 0) {
        ERR_error_string_n(last, buf, sizeof(buf));
    }
    ks_log("%s: %s", what, buf[0] != '\0' ? buf : strerror(errno));
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void stats_print(void)
{
    struct mmtls_keyshare_stats *s = &g.st;

    fprintf(stderr,
            "mmtls-keyshare: pid=%d sessions=%llu queued=%llu sent=%llu sent_bypass=%llu "
            "keepalives=%llu dropped_queue_full=%llu dropped_no_channel=%llu dropped_other=%llu "
            "connects=%llu connect_failures=%llu reconnects=%llu pending=%llu sync_timeouts=%llu\n",
            (int)getpid(), (unsigned long long)s->sessions, (unsigned long long)s->queued,
            (unsigned long long)s->sent, (unsigned long long)s->sent_bypass,
            (unsigned long long)s->keepalives, (unsigned long long)s->dropped_queue_full,
            (unsigned long long)s->dropped_no_channel, (unsigned long long)s->dropped_other,
            (unsigned long long)s->connects, (unsigned long long)s->connect_failures,
            (unsigned long long)s->reconnects, (unsigned long long)(g.count + g.inflight),
            (unsigned long long)s->sync_timeouts);
}

/* ------------------------------------------------------------------------------------------ */
/* fork and exit                                                                               */

static void fork_prepare(void)
{
    pthread_mutex_lock(&g.mu);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&g.mu);
}

static void fork_child(void)
{
    /* Only the forking thread exists here, and it holds g.mu (fork_prepare). */
    if (g.q != NULL) {
        OPENSSL_cleanse(g.q, sizeof(*g.q) * g.cfg.queue_max);
    }
    if (g.batch != NULL) {
        OPENSSL_cleanse(g.batch, KS_BATCH_BYTES);
    }
    g.head = g.count = g.inflight = 0;
    g.batch_len = g.batch_n = g.batch_bypass = 0;
    if (g.efd >= 0) {
        close(g.efd);
    }
    if (g.chan_fd >= 0) {
        close(g.chan_fd); /* the parent's connection stays open in the parent */
    }
    g.efd = g.chan_fd = -1;
    g.running = g.stopping = g.connected = false;
    memset(&g.st, 0, sizeof(g.st));
    pthread_cond_init(&g.drained, NULL);
    pthread_mutex_unlock(&g.mu);
}

static void at_exit(void)
{
    int rc = mmtls_keyshare_flush(MMTLS_KEYSHARE_EXIT_FLUSH_MS);

    if (rc != 0) {
        ks_log("exit: %s", mmtls_keyshare_strerror(rc));
    }
    mmtls_keyshare_shutdown();
    if (getenv("MMTLS_KEYSHARE_STATS") != NULL) {
        stats_print();
    }
}

static void chan_init_once(void)
{
    const char *d = getenv("MMTLS_KEYSHARE_DEBUG");

    ks_debug = d != NULL && d[0] != '\0' && d[0] != '0';
    (void)pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static int thread_start_locked(void);

int mmtls_keyshare_chan_configure(struct mmtls_keyshare_cfg *cfg)
{
    struct ks_slot *q = NULL;
    bool reg_exit = false;
    int rc = 0;

    pthread_once(&chan_once, chan_init_once);
    pthread_mutex_lock(&g.mu);
    if (g.configured) {
        if (strcmp(g.cfg.keyserver, cfg->keyserver) != 0) {
            rc = MMTLS_E_CONFLICT;
            goto out;
        }
        /* Same key server: the first configuration stays; the caller's copies are freed. */
        free(cfg->keyserver);
        free(cfg->ca);
        free(cfg->cert);
        free(cfg->key);
        free(cfg->bypass);
        memset(cfg, 0, sizeof(*cfg));
        goto out;
    }
    q = mmtls_secmem_calloc(cfg->queue_max, sizeof(*q));
    g.batch = mmtls_secmem_alloc(KS_BATCH_BYTES);
    if (q == NULL || g.batch == NULL) {
        mmtls_secmem_free(q);
        mmtls_secmem_free(g.batch);
        g.batch = NULL;
        rc = MMTLS_E_NOMEM;
        goto out;
    }
    g.q = q;
    g.cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    g.configured = true;
    /* Connect now, not at the first session's keys: the channel's own TLS handshake then runs
     * while the application makes its first connection, and that session's keys do not wait for
     * it (the middlebox holds the data until they come).  MMTLS_KEYSHARE_LAZY=1: connect only
     * when there is something to send. */
    {
        const char *lazy = getenv("MMTLS_KEYSHARE_LAZY");
        const char *sync = getenv("MMTLS_KEYSHARE_SYNC_MS");
        char *end;
        unsigned long v;

        g.eager = lazy == NULL || lazy[0] == '\0' || lazy[0] == '0';
        g.sync_ms = MMTLS_KEYSHARE_SYNC_DEFAULT_MS;
        if (sync != NULL && sync[0] != '\0') {
            v = strtoul(sync, &end, 10);
            g.sync_ms = *end == '\0' && v <= 1000 ? (uint32_t)v : g.sync_ms;
        }
    }
    g.connecting = g.eager;
    if (g.eager && !g.running && thread_start_locked() != 0) {
        g.eager = g.connecting = false; /* the first message tries again */
    }
    /* Registered after OpenSSL's own atexit handler (OpenSSL is initialised by the time a
     * context exists), so this one runs first, while OpenSSL still works. */
    reg_exit = (g.cfg.flags & MMTLS_KEYSHARE_F_NO_ATEXIT) == 0 && !g.atexit_done;
    g.atexit_done = g.atexit_done || reg_exit;
out:
    pthread_mutex_unlock(&g.mu);
    if (reg_exit) {
        (void)atexit(at_exit);
    }
    return rc;
}

const char *mmtls_keyshare_chan_bypass(void)
{
    /* Written once under g.mu before any context is attached with it; read-only afterwards. */
    return g.configured ? g.cfg.bypass : NULL;
}

void mmtls_keyshare_count_session(void)
{
    pthread_mutex_lock(&g.mu);
    g.st.sessions++;
    pthread_mutex_unlock(&g.mu);
}

void mmtls_keyshare_count_other_drop(void)
{
    pthread_mutex_lock(&g.mu);
    g.st.dropped_other++;
    pthread_mutex_unlock(&g.mu);
}

/* ------------------------------------------------------------------------------------------ */
/* Channel (thread only)                                                                       */

struct chan {
    SSL_CTX *ctx; /* owned */
    SSL *ssl;     /* owned */
    int fd;
    uint64_t last_tx_ms;
};

static void chan_close(struct chan *c)
{
    if (c->ssl != NULL) {
        /* One non-blocking close_notify attempt; the server does not need it. */
        if (SSL_is_init_finished(c->ssl)) {
            (void)SSL_shutdown(c->ssl);
        }
        SSL_free(c->ssl);
    }
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->ssl = NULL;
    c->ctx = NULL;
    c->fd = -1;
    pthread_mutex_lock(&g.mu);
    g.chan_fd = -1;
    g.connected = false;
    pthread_mutex_unlock(&g.mu);
    ERR_clear_error();
}

static bool stopping(void)
{
    bool s;

    pthread_mutex_lock(&g.mu);
    s = g.stopping;
    pthread_mutex_unlock(&g.mu);
    return s;
}

static void efd_drain(void)
{
    uint64_t v;

    (void)!read(g.efd, &v, sizeof(v));
}

/* Waits for fd to become ready for `events` or the eventfd to fire.  Returns 1 when fd is
 * ready, 0 on a wake-up (check for stop), -1 on timeout or error. */
static int wait_fd(int fd, short events, uint64_t deadline_ms)
{
    struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = g.efd, .events = POLLIN}};
    uint64_t now = now_ms();
    int n;

    if (now >= deadline_ms) {
        return -1;
    }
    n = poll(p, 2, (int)MMTLS_MIN(deadline_ms - now, (uint64_t)INT32_MAX));
    if (n < 0) {
        return errno == EINTR ? 0 : -1;
    }
    if (n == 0) {
        return -1;
    }
    if (p[1].revents & POLLIN) {
        efd_drain();
        return 0;
    }
    return (p[0].revents & (events | POLLERR | POLLHUP)) != 0 ? 1 : 0;
}

/* Splits "host:port" or "[v6]:port".  false on a bad string. */
static bool split_hostport(const char *s, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon, *hb = s, *he;

    if (s[0] == '[') {
        he = strchr(s, ']');
        if (he == NULL || he[1] != ':') {
            return false;
        }
        hb = s + 1;
        colon = he + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return false;
        }
        he = colon;
    }
    if (he == hb || (size_t)(he - hb) >= hcap || strlen(colon + 1) == 0 ||
        strlen(colon + 1) >= pcap) {
        return false;
    }
    memcpy(host, hb, (size_t)(he - hb));
    host[he - hb] = '\0';
    strcpy(port, colon + 1);
    return true;
}

static int tcp_connect(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *res = NULL, *ai;
    int fd = -1, rc;

    /* getaddrinfo may block on DNS: acceptable here, this is the background thread. */
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        ks_log("%s:%s: %s", host, port, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        uint64_t deadline = now_ms() + KS_CONNECT_TIMEOUT_MS;
        int err = 0, w;
        socklen_t el = sizeof(err);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        /* Key messages are small and latency matters (records wait for them): no Nagle, or a
         * message written right after the handshake waits for a delayed ACK (~40-200 ms). */
        {
            int one = 1;
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        if (errno == EINPROGRESS) {
            do {
                w = wait_fd(fd, POLLOUT, deadline);
            } while (w == 0 && !stopping());
            if (w == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0) {
                break;
            }
            errno = err != 0 ? err : ETIMEDOUT;
        }
        ks_log("connect %s:%s: %s", host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Runs one non-blocking OpenSSL operation to completion.  Returns 0, or -1 on error, timeout or
 * stop. */
static int ssl_drive(struct chan *c, int (*op)(SSL *, const void *, int), const void *buf, int len,
                     uint64_t deadline_ms)
{
    for (;;) {
        int r = op(c->ssl, buf, len), e, w;

        if (r > 0) {
            return 0;
        }
        e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            w = wait_fd(c->fd, POLLIN, deadline_ms);
        } else if (e == SSL_ERROR_WANT_WRITE) {
            w = wait_fd(c->fd, POLLOUT, deadline_ms);
        } else {
            return -1;
        }
        if (w < 0 || stopping()) {
            return -1;
        }
    }
}

static int op_connect(SSL *ssl, const void *buf, int len)
{
    return SSL_connect(ssl);
}

static int op_write(SSL *ssl, const void *buf, int len)
{
    return SSL_write(ssl, buf, len);
}

static int chan_open(struct chan *c)
{
    const struct mmtls_keyshare_cfg *cfg = &g.cfg; /* immutable once configured */
    char host[256], port[16];
    struct in6_addr a6;
    bool is_ip;

    if (!split_hostport(cfg->keyserver, host, sizeof(host), port, sizeof(port))) {
        ks_log("bad key server address '%s' (want host:port)", cfg->keyserver);
        return -1;
    }
    ERR_clear_error();
    /* The real SSL_CTX_new: inside the preload shim the plain name is the interposer, and the
     * channel must not share its own keys. */
    c->ctx = mmtls_keyshare_ossl.ctx_new(TLS_client_method());
    if (c->ctx == NULL) {
        ks_log_ossl("SSL_CTX_new");
        return -1;
    }
    /* docs/keyproto.md: the key channel is TLS 1.3 only, both sides authenticated. */
    if (SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION) != 1) {
        ks_log_ossl("TLS 1.3");
        return -1;
    }
    if (cfg->ca != NULL ? SSL_CTX_load_verify_file(c->ctx, cfg->ca) != 1
                        : SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
        ks_log_ossl(cfg->ca != NULL ? cfg->ca : "default CA paths");
        return -1;
    }
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    if (cfg->cert != NULL) {
        if (SSL_CTX_use_certificate_chain_file(c->ctx, cfg->cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(c->ctx, cfg->key != NULL ? cfg->key : cfg->cert,
                                        SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(c->ctx) != 1) {
            ks_log_ossl(cfg->cert);
            return -1;
        }
    }
    c->fd = tcp_connect(host, port);
    if (c->fd < 0) {
        return -1;
    }
    pthread_mutex_lock(&g.mu);
    g.chan_fd = c->fd;
    pthread_mutex_unlock(&g.mu);
    c->ssl = SSL_new(c->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        ks_log_ossl("SSL_new");
        return -1;
    }
    /* Check the key server's name or address against its certificate (RFC 6125). */
    is_ip = inet_pton(AF_INET6, host, &a6) == 1 || inet_pton(AF_INET, host, &a6) == 1;
    if (is_ip) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) != 1) {
            return -1;
        }
    } else if (SSL_set_tlsext_host_name(c->ssl, host) != 1 || SSL_set1_host(c->ssl, host) != 1) {
        return -1;
    }
    if (ssl_drive(c, op_connect, NULL, 0, now_ms() + KS_CONNECT_TIMEOUT_MS) != 0) {
        ks_log_ossl("TLS handshake with the key server");
        return -1;
    }
    c->last_tx_ms = now_ms();
    return 0;
}

/* Reads and discards what the server sends (KEEPALIVE answers).  -1 when the channel is gone. */
static int chan_drain(struct chan *c)
{
    uint8_t buf[512];

    for (int i = 0; i < 64; i++) {
        int r = SSL_read(c->ssl, buf, sizeof(buf)), e;

        if (r > 0) {
            continue;
        }
        e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            return 0;
        }
        ks_log("key server closed the channel");
        return -1;
    }
    return 0;
}

/* Moves up to KS_BATCH_MAX messages from the queue into the batch (under g.mu). */
static void batch_fill_locked(void)
{
    uint32_t cap = g.cfg.queue_max;

    while (g.count > 0 && g.batch_n < KS_BATCH_MAX) {
        struct ks_slot *s = &g.q[g.head];

        memcpy(g.batch + g.batch_len, s->b, s->len);
        g.batch_len += s->len;
        g.batch_n++;
        g.batch_bypass += s->b[1] == MMTLS_KP_BYPASS;
        OPENSSL_cleanse(s->b, s->len);
        s->len = 0;
        g.head = (g.head + 1) % cap;
        g.count--;
        g.inflight++;
    }
}

static uint32_t backoff_next(uint32_t cur)
{
    uint32_t next = cur == 0 ? KS_BACKOFF_MIN_MS : MMTLS_MIN(cur * 2, KS_BACKOFF_MAX_MS);
    uint32_t r = 0;

    /* +-25 % jitter so that many clients do not reconnect in lockstep. */
    (void)RAND_bytes((unsigned char *)&r, sizeof(r));
    return next - next / 4 + r % (next / 2 + 1);
}

static void *chan_thread(void *arg)
{
    struct chan c = {.fd = -1};
    uint64_t retry_at = 0;
    uint32_t backoff = 0;
    bool ever = false, eager_tried = false;

    mmtls_keyshare_on_chan_thread = true;
    for (;;) {
        uint64_t now = now_ms(), deadline;
        bool have;

        pthread_mutex_lock(&g.mu);
        if (g.stopping) {
            pthread_mutex_unlock(&g.mu);
            break;
        }
        if (g.batch_n == 0) {
            batch_fill_locked();
        }
        have = g.batch_n > 0;
        pthread_mutex_unlock(&g.mu);

        if ((have || (g.eager && !eager_tried)) && c.ssl == NULL && now >= retry_at) {
            /* Connect when there is something to send, and once at start when eager.  A
             * failed eager attempt imposes no back-off on the first message. */
            bool eager_only = !have;
            eager_tried = true;
            pthread_mutex_lock(&g.mu);
            g.connecting = true;
            pthread_mutex_unlock(&g.mu);
            if (chan_open(&c) == 0) {
                pthread_mutex_lock(&g.mu);
                g.connecting = false;
                g.st.connects++;
                g.st.reconnects += ever;
                g.connected = true;
                pthread_mutex_unlock(&g.mu);
                ever = true;
                backoff = 0;
                ks_log("channel to %s up", g.cfg.keyserver);
                /* Messages put during the handshake woke an eventfd the handshake's own
                 * waits drained: look at the queue again before sleeping. */
                continue;
            } else {
                chan_close(&c);
                backoff = eager_only ? 0 : backoff_next(backoff);
                retry_at = eager_only ? 0 : now_ms() + backoff;
                pthread_mutex_lock(&g.mu);
                g.connecting = false;
                g.st.connect_failures++;
                pthread_cond_broadcast(&g.drained);
                pthread_mutex_unlock(&g.mu);
                continue;
            }
        }
        if (have && c.ssl != NULL) {
            if (ssl_drive(&c, op_write, g.batch, (int)g.batch_len, now_ms() + KS_IO_TIMEOUT_MS) !=
                0) {
                /* The batch stays and goes out first on the next channel; the key server
                 * counts an identical KEYS as a duplicate (docs/keyproto.md "First wins"). */
                ks_log_ossl("write to the key server");
                chan_close(&c);
                retry_at = now_ms() + (backoff = backoff_next(backoff));
                continue;
            }
            c.last_tx_ms = now_ms();
            pthread_mutex_lock(&g.mu);
            g.st.sent += g.batch_n;
            g.st.sent_bypass += g.batch_bypass;
            g.inflight -= g.batch_n;
            OPENSSL_cleanse(g.batch, g.batch_len);
            g.batch_len = g.batch_n = g.batch_bypass = 0;
            if (g.count == 0) {
                pthread_cond_broadcast(&g.drained);
            }
            pthread_mutex_unlock(&g.mu);
            continue;
        }
        /* Idle (or waiting for the back-off): sleep until a message, the keepalive time, the
         * retry time, or data/EOF from the server. */
        if (c.ssl != NULL) {
            deadline = c.last_tx_ms + KS_KEEPALIVE_MS;
            if (now >= deadline) {
                static const uint8_t ka[MMTLS_KP_HDR_LEN] = {MMTLS_KP_VERSION, MMTLS_KP_KEEPALIVE,
                                                             0, 0};

                if (ssl_drive(&c, op_write, ka, sizeof(ka), now + KS_IO_TIMEOUT_MS) != 0) {
                    chan_close(&c);
                    continue;
                }
                c.last_tx_ms = now_ms();
                pthread_mutex_lock(&g.mu);
                g.st.keepalives++;
                pthread_mutex_unlock(&g.mu);
                continue;
            }
            if (wait_fd(c.fd, POLLIN, deadline) == 1 && chan_drain(&c) != 0) {
                chan_close(&c); /* reconnect lazily, with the next message */
            }
        } else {
            struct pollfd p = {.fd = g.efd, .events = POLLIN};
            int timeout = -1;

            if (have) {
                timeout = retry_at > now ? (int)(retry_at - now) : 0;
            }
            if (poll(&p, 1, timeout) > 0) {
                efd_drain();
            }
        }
    }
    chan_close(&c);
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Queue (any thread)                                                                          */

/* Starts the thread with every signal blocked, so that the application's handlers never run on
 * it and a write to a dead socket gives EPIPE instead of SIGPIPE. */
static int thread_start_locked(void)
{
    sigset_t all, old;
    int rc;

    if (g.efd < 0) {
        g.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (g.efd < 0) {
            return -1;
        }
    }
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&g.thr, NULL, chan_thread, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        return -1;
    }
    g.running = true;
    return 0;
}

/* The handshake that logged the secrets waits (on its own thread, at most sync_ms) until the
 * channel has written them: its next flight -- the client's Finished and first application
 * data -- then leaves after its keys, and the middlebox rarely has to hold it.  Only while the
 * channel is up or being opened: an unreachable key server never slows the application. */
static void sync_wait(void)
{
    struct timespec ts;

    if (g.sync_ms == 0 || mmtls_keyshare_on_chan_thread) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += g.sync_ms / 1000;
    ts.tv_nsec += (long)(g.sync_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g.mu);
    while (g.count + g.inflight > 0 && (g.connected || g.connecting) && !g.stopping) {
        if (pthread_cond_timedwait(&g.drained, &g.mu, &ts) == ETIMEDOUT) {
            g.st.sync_timeouts++;
            break;
        }
    }
    pthread_mutex_unlock(&g.mu);
}

void mmtls_keyshare_chan_put(const uint8_t *msg, size_t len)
{
    uint64_t one = 1;
    int efd = -1;

    if (len == 0 || len > MMTLS_KP_MAX_MSG) {
        return;
    }
    pthread_mutex_lock(&g.mu);
    if (!g.configured || g.stopped) {
        g.st.dropped_no_channel++;
        goto out;
    }
    if (!g.running && thread_start_locked() != 0) {
        g.st.dropped_no_channel++;
        goto out;
    }
    if (g.count >= g.cfg.queue_max) {
        g.st.dropped_queue_full++;
        goto out;
    }
    {
        struct ks_slot *s = &g.q[(g.head + g.count) % g.cfg.queue_max];

        memcpy(s->b, msg, len);
        s->len = (uint16_t)len;
    }
    g.count++;
    g.st.queued++;
    efd = g.efd;
out:
    pthread_mutex_unlock(&g.mu);
    if (efd >= 0) {
        (void)!write(efd, &one, sizeof(one)); /* non-blocking; a full counter still wakes */
        sync_wait();
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Public                                                                                      */

MMTLS_KEYSHARE_API void mmtls_keyshare_stats(struct mmtls_keyshare_stats *st)
{
    struct mmtls_keyshare_stats cur;
    size_t n;

    if (st == NULL || st->sz < sizeof(size_t)) {
        return;
    }
    pthread_mutex_lock(&g.mu);
    cur = g.st;
    cur.pending = g.count + g.inflight;
    pthread_mutex_unlock(&g.mu);
    n = MMTLS_MIN(st->sz, sizeof(cur));
    cur.sz = st->sz;
    memcpy(st, &cur, n);
}

MMTLS_KEYSHARE_API int mmtls_keyshare_flush(int timeout_ms)
{
    struct timespec ts;
    uint64_t fails0;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (timeout_ms > 0) {
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&g.mu);
    fails0 = g.st.connect_failures;
    while (g.running && g.count + g.inflight > 0) {
        if (g.st.connect_failures > fails0 && !g.connected) {
            rc = MMTLS_E_IO; /* the key server is unreachable: do not wait any longer */
            break;
        }
        if (timeout_ms <= 0 || pthread_cond_timedwait(&g.drained, &g.mu, &ts) == ETIMEDOUT) {
            rc = g.count + g.inflight > 0 ? MMTLS_AGAIN : 0;
            break;
        }
    }
    pthread_mutex_unlock(&g.mu);
    return rc;
}

MMTLS_KEYSHARE_API void mmtls_keyshare_shutdown(void)
{
    uint64_t one = 1;
    bool join;
    pthread_t thr;

    pthread_mutex_lock(&g.mu);
    join = g.running;
    thr = g.thr;
    g.stopping = true;
    g.stopped = true;
    if (g.efd >= 0) {
        (void)!write(g.efd, &one, sizeof(one));
    }
    pthread_mutex_unlock(&g.mu);
    if (join) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += KS_STOP_JOIN_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (pthread_timedjoin_np(thr, NULL, &ts) != 0) {
            /* Stuck in DNS: leave it; it exits at its next stop check. */
            pthread_detach(thr);
            ks_log("the channel thread did not stop in %d ms", KS_STOP_JOIN_MS);
            return;
        }
    }
    pthread_mutex_lock(&g.mu);
    g.running = false;
    g.st.dropped_no_channel += g.count + g.inflight;
    if (g.q != NULL) {
        OPENSSL_cleanse(g.q, sizeof(*g.q) * g.cfg.queue_max);
    }
    if (g.batch != NULL) {
        OPENSSL_cleanse(g.batch, KS_BATCH_BYTES);
    }
    g.head = g.count = g.inflight = 0;
    g.batch_len = g.batch_n = g.batch_bypass = 0;
    pthread_cond_broadcast(&g.drained);
    pthread_mutex_unlock(&g.mu);
}
