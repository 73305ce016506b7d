/* keybench — the key-sharing benchmark (docs/BENCHMARKS.md, "Key sharing").
 *
 * One process holds what mmtlsd holds: the real key server (mmtls_keyserver_start, one epoll
 * thread) whose delivery callback copies each delivery into an mmtls_engine_keymsg and pushes it
 * into an mmtls_ring of 4096 slots, exactly as tools/mmtlsd/mmtlsd.c (on_key_delivery) does, and
 * a "worker" thread that pops the ring, timestamps each message and frees it.  A forked child is
 * the client side:
 *
 *   flood     N TLS 1.3 channels (client certificates) sending valid KEYS messages as fast as
 *             they can, BATCH messages per SSL_write, until KEYS keys or SECONDS seconds;
 *   paced     N channels sending RATE keys/s in all, one message per SSL_write, round robin;
 *   keyshare  real TLS 1.3 handshakes over loopback by a client whose SSL_CTX went through
 *             mmtls_keyshare_attach (libmmtls-keyshare); the delay is taken from the
 *             application key log callback (which the library calls first) to the worker.
 *
 * flood / paced messages carry their send time (CLOCK_MONOTONIC ns) in the first 8 bytes of the
 * client random, so the worker computes the delay without any table.
 *
 * CPUs: the key server thread is pinned to CPU 0 (it inherits the main thread's mask, set just
 * before mmtls_keyserver_start), the worker and the whole client process to CPU 1.  Key server
 * CPU time comes from /proc/self/task/TID/schedstat (ns on CPU) sampled at "go" and when the
 * last key has been popped.  Output: one JSON object on stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "engine/engine.h"
#include "keys/keys.h"
#include "util/util.h"

#ifdef KEYBENCH_KEYSHARE
#include <mmtls/keyshare.h>
#endif

#define KB_RING_CAP 4096  /* as the engine's key ring (src/engine/engine_keys.c) */
#define KB_HS_INFLIGHT 64 /* channel handshakes in flight at once (listen backlog 128) */
#define KB_MAX_CHANNELS 4096
#define KB_WARMUP_HS 20 /* keyshare: handshakes before "go" (channel connect, caches) */
#define KB_CDF_POINTS 201

enum kb_mode { KB_FLOOD, KB_PACED, KB_KEYSHARE };

struct kb_cfg {
    enum kb_mode mode;
    uint32_t channels;
    uint64_t keys;
    double seconds;
    uint32_t batch;
    uint64_t rate;
    uint32_t handshakes;
    const char *dir;
    bool spin; /* worker busy-polls instead of sleeping 10 us on an empty ring */
    bool rt;   /* key server thread SCHED_FIFO: as if it had its core to itself */
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "keybench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    ERR_print_errors_fp(stderr);
    exit(1);
}

static bool pin_self(int cpu)
{
    cpu_set_t set;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    CPU_ZERO(&set);
    if (cpu < 0) {
        for (long i = 0; i < ncpu && i < CPU_SETSIZE; i++) {
            CPU_SET((int)i, &set);
        }
    } else {
        if (cpu >= ncpu) {
            return false;
        }
        CPU_SET(cpu, &set);
    }
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

static void xwrite(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            die("pipe write: %s", strerror(errno));
        }
        b += w;
        n -= (size_t)w;
    }
}

static bool xread(int fd, void *p, size_t n)
{
    uint8_t *b = p;

    while (n > 0) {
        ssize_t r = read(fd, b, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return false;
        }
        b += r;
        n -= (size_t)r;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Server side: key server + delivery glue (as mmtlsd) + worker                                 */

struct kb_rec {
    uint8_t cr[32];
    uint64_t t;
};

struct kb_srv {
    struct mmtls_ring ring;
    _Atomic uint64_t dropped; /* ring full or out of memory, as mmtlsd's dctx.dropped */
    struct mmtls_keyserver *ks;
    pid_t ktid;
    enum kb_mode mode;
    bool spin;
    atomic_bool stop;
    _Atomic uint64_t popped, last_pop_ns;
    uint64_t cap;
    uint64_t *lat_total; /* client stamp -> worker pop */
    uint64_t *lat_read;  /* client stamp -> key server read (recv_ns) */
    struct kb_rec *recs; /* keyshare: client random, pop time */
};

/* tools/mmtlsd/mmtlsd.c on_key_delivery, verbatim in substance. */
static void kb_deliver(void *ud, const struct mmtls_key_delivery *d)
{
    struct kb_srv *s = ud;
    struct mmtls_engine_keymsg *m = mmtls_engine_keymsg_new(d);

    if (m == NULL || !mmtls_ring_push(&s->ring, m)) {
        mmtls_engine_keymsg_free(m);
        atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
    }
}

static void *kb_worker(void *arg)
{
    struct kb_srv *s = arg;
    uint64_t n = 0;
    const struct timespec nap = {.tv_sec = 0, .tv_nsec = 10000};

    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    pin_self(1);

    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        struct mmtls_engine_keymsg *m = mmtls_ring_pop(&s->ring);
        if (m == NULL) {
            if (s->spin) {
                __builtin_ia32_pause();
            } else {
                nanosleep(&nap, NULL);
            }
            continue;
        }
        uint64_t t = now_ns();
        if (n < s->cap) {
            if (s->mode == KB_KEYSHARE) {
                memcpy(s->recs[n].cr, m->client_random, 32);
                s->recs[n].t = t;
            } else {
                uint64_t stamp;
                memcpy(&stamp, m->client_random, sizeof(stamp));
                s->lat_total[n] = t - stamp;
                s->lat_read[n] = m->recv_ns - stamp;
            }
        }
        mmtls_engine_keymsg_free(m);
        n++;
        atomic_store_explicit(&s->last_pop_ns, t, memory_order_relaxed);
        atomic_store_explicit(&s->popped, n, memory_order_release);
    }
    return NULL;
}

/* The key server's thread: the one task of this process that is neither main nor worker. */
static pid_t find_server_tid(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    pid_t self = getpid(), found = 0;

    if (d == NULL) {
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        pid_t t = (pid_t)atoi(de->d_name);
        if (t > 0 && t != self) {
            found = t;
        }
    }
    closedir(d);
    return found;
}

/* /proc/self/task/TID/schedstat: ns on CPU, ns waiting on a run queue (runnable, but another
 * task had the CPU). */
static uint64_t task_cpu_ns(pid_t tid, uint64_t *wait_ns)
{
    char path[64];
    unsigned long long ns = 0, wait = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", (int)tid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    if (fscanf(f, "%llu %llu", &ns, &wait) != 2) {
        ns = wait = 0;
    }
    fclose(f);
    *wait_ns = wait;
    return ns;
}

static void task_set_comm(pid_t tid, const char *name)
{
    char path[64];
    FILE *f;

    snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
    f = fopen(path, "w");
    if (f != NULL) {
        fputs(name, f);
        fclose(f);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Client side: channels                                                                        */

struct kb_chan {
    int fd;
    SSL *ssl;
    bool up, dead;
    uint8_t *pend; /* a batch SSL_write could not take yet: retried as is */
    size_t pend_len;
    uint32_t pend_keys;
};

struct kb_msg {
    uint8_t b[MMTLS_KP_MAX_MSG];
    size_t len;
};

/* A valid TLS 1.3 KEYS message (docs/keyproto.md): tuple 127.0.0.1 -> 127.0.0.1:443 (the
 * channel's peer address, so the ownership check passes), TLS_AES_256_GCM_SHA384, kinds 2..5
 * with 48-byte secrets.  The client random (bytes 4..35) is patched per message. */
static void make_template(struct kb_msg *t)
{
    struct mmtls_kp_msg m;
    int n;

    memset(&m, 0, sizeof(m));
    m.type = MMTLS_KP_KEYS;
    m.flags = MMTLS_KP_F_TUPLE;
    m.tuple.ip_version = 4;
    m.tuple.client_ip[0] = 127;
    m.tuple.client_ip[3] = 1;
    m.tuple.server_ip[0] = 127;
    m.tuple.server_ip[3] = 1;
    m.tuple.client_port = 40000;
    m.tuple.server_port = 443;
    m.tls_version = 0x0304;
    m.cipher_suite = 0x1302;
    m.n = 4;
    for (uint8_t i = 0; i < 4; i++) {
        m.kind[i] = (uint8_t)(MMTLS_KP_CLIENT_HS + i);
        m.secret[i].len = 48;
        for (uint8_t j = 0; j < 48; j++) {
            m.secret[i].b[j] = (uint8_t)(0x11 * (i + 1) + j);
        }
    }
    memset(m.client_random, 0xa5, sizeof(m.client_random));
    n = mmtls_kp_encode(&m, t->b, sizeof(t->b));
    if (n <= 0) {
        die("mmtls_kp_encode failed%s", "");
    }
    t->len = (size_t)n;
}

static uint64_t g_counter;

static void stamp(uint8_t *msg)
{
    uint64_t t = now_ns();

    g_counter++;
    memcpy(msg + MMTLS_KP_HDR_LEN, &t, sizeof(t));
    memcpy(msg + MMTLS_KP_HDR_LEN + 8, &g_counter, sizeof(g_counter));
}

static SSL_CTX *client_ctx(const char *dir)
{
    char ca[512], cert[512], key[512];
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());

    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(cert, sizeof(cert), "%s/client.pem", dir);
    snprintf(key, sizeof(key), "%s/client.key", dir);
    if (c == NULL || SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(c, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_locations(c, ca, NULL) != 1) {
        die("client context (%s)", dir);
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(c, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return c;
}

static int tcp_connect(uint16_t port, bool nonblock)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0) {
        die("socket: %s", strerror(errno));
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
        die("connect: %s", strerror(errno));
    }
    return fd;
}

/* Opens n channels, at most KB_HS_INFLIGHT handshakes at a time.  Returns how many are up. */
static uint32_t open_channels(SSL_CTX *ctx, uint16_t port, struct kb_chan *ch, uint32_t n, int ep)
{
    uint32_t started = 0, up = 0, failed = 0, inflight = 0;
    uint64_t deadline = now_ns() + 30ull * 1000000000u;
    struct epoll_event evs[256];

    while (up + failed < n && now_ns() < deadline) {
        while (started < n && inflight < KB_HS_INFLIGHT) {
            struct kb_chan *c = &ch[started];
            struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
            c->fd = tcp_connect(port, true);
            c->ssl = SSL_new(ctx);
            SSL_set_fd(c->ssl, c->fd);
            SSL_set_connect_state(c->ssl);
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            started++;
            inflight++;
        }
        int k = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < k; i++) {
            struct kb_chan *c = evs[i].data.ptr;
            if (c->up || c->dead) {
                continue;
            }
            int r = SSL_do_handshake(c->ssl);
            if (r == 1) {
                c->up = true;
                up++;
                inflight--;
                continue;
            }
            int e = SSL_get_error(c->ssl, r);
            struct epoll_event ev = {.data.ptr = c};
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                ev.events = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                continue;
            }
            fprintf(stderr, "keybench: channel handshake failed\n");
            ERR_print_errors_fp(stderr);
            c->dead = true;
            failed++;
            inflight--;
        }
    }
    /* From now on every live channel waits for writability. */
    for (uint32_t i = 0; i < started; i++) {
        struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = &ch[i]};
        if (ch[i].up) {
            epoll_ctl(ep, EPOLL_CTL_MOD, ch[i].fd, &ev);
        }
    }
    return up;
}

/* Writes the channel's pending batch.  Returns keys written, 0 when the socket is full, -1 when
 * the channel died. */
static int chan_flush(struct kb_chan *c)
{
    if (c->pend_len == 0) {
        return 0;
    }
    int r = SSL_write(c->ssl, c->pend, (int)c->pend_len);
    if (r > 0) {
        int k = (int)c->pend_keys;
        c->pend_len = 0;
        c->pend_keys = 0;
        return k;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        return 0;
    }
    c->dead = true;
    return -1;
}

struct kb_result {
    uint64_t sent;
    uint64_t t_start, t_end;
    uint32_t up;
    uint32_t nrec; /* keyshare: records following */
    uint64_t ks_dropped;
};

static void run_flood(const struct kb_cfg *cf, struct kb_chan *ch, uint32_t nch, int ep,
                      const struct kb_msg *tpl, struct kb_result *res)
{
    struct epoll_event evs[256];
    uint64_t sent = 0, queued = 0;
    uint64_t deadline = now_ns() + (uint64_t)(cf->seconds * 1e9);

    res->t_start = now_ns();
    while (sent < cf->keys && now_ns() < deadline) {
        int k = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < k && sent < cf->keys; i++) {
            struct kb_chan *c = evs[i].data.ptr;
            if (c->dead) {
                continue;
            }
            for (int turn = 0; turn < 4; turn++) {
                if (c->pend_len == 0) {
                    uint64_t left = cf->keys - queued;
                    uint32_t b = left < cf->batch ? (uint32_t)left : cf->batch;
                    if (b == 0) {
                        break;
                    }
                    for (uint32_t j = 0; j < b; j++) {
                        memcpy(c->pend + j * tpl->len, tpl->b, tpl->len);
                        stamp(c->pend + j * tpl->len);
                    }
                    c->pend_len = b * tpl->len;
                    c->pend_keys = b;
                    queued += b;
                }
                int w = chan_flush(c);
                if (w <= 0) {
                    if (w < 0) {
                        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    }
                    break;
                }
                sent += (uint64_t)w;
            }
        }
    }
    (void)nch;
    res->t_end = now_ns();
    res->sent = sent;
}

static void run_paced(const struct kb_cfg *cf, struct kb_chan *ch, uint32_t nch,
                      const struct kb_msg *tpl, struct kb_result *res)
{
    uint64_t t0 = now_ns(), sent = 0, rr = 0;
    uint64_t end = t0 + (uint64_t)(cf->seconds * 1e9);
    struct timespec next;

    clock_gettime(CLOCK_MONOTONIC, &next);
    res->t_start = t0;
    for (;;) {
        uint64_t now = now_ns();
        if (now >= end || sent >= cf->keys) {
            break;
        }
        uint64_t due = (uint64_t)((double)(now - t0) * (double)cf->rate / 1e9);
        /* Messages of a channel still pending are retried first; a new one goes to the next
         * channel in turn. */
        for (uint32_t i = 0; i < nch && sent < due; i++) {
            struct kb_chan *c = &ch[rr++ % nch];
            if (!c->up || c->dead) {
                continue;
            }
            if (c->pend_len == 0) {
                memcpy(c->pend, tpl->b, tpl->len);
                stamp(c->pend);
                c->pend_len = tpl->len;
                c->pend_keys = 1;
            }
            int w = chan_flush(c);
            if (w > 0) {
                sent += (uint64_t)w;
                i = (uint32_t)-1; /* restart the scan: one more key may be due */
            }
        }
        next.tv_nsec += 1000000; /* 1 ms tick */
        if (next.tv_nsec >= 1000000000) {
            next.tv_nsec -= 1000000000;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    res->t_end = now_ns();
    res->sent = sent;
}

/* ------------------------------------------------------------------------------------------ */
/* Client side: libmmtls-keyshare                                                              */

#ifdef KEYBENCH_KEYSHARE
static struct kb_rec *g_hs_recs;
static uint32_t g_hs_cur;
static bool g_hs_measure;

/* The application's key log callback: the library calls it first, with the same line, then
 * encodes and queues the KEYS message once the session's four TLS 1.3 secrets are known (after
 * the later of CLIENT_/SERVER_TRAFFIC_SECRET_0).  The last such line's time is kept. */
static void app_keylog(const SSL *ssl, const char *line)
{
    if (!g_hs_measure) {
        return;
    }
    if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0 ||
        strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) == 0) {
        struct kb_rec *r = &g_hs_recs[g_hs_cur];
        r->t = now_ns();
        SSL_get_client_random(ssl, r->cr, sizeof(r->cr));
    }
}

struct hs_server {
    int lfd;
    SSL_CTX *ctx;
};

static void *hs_server_main(void *arg)
{
    struct hs_server *h = arg;

    for (;;) {
        int fd = accept(h->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) {
                continue;
            }
            return NULL;
        }
        SSL *ssl = SSL_new(h->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1) {
            char b[64];
            while (SSL_read(ssl, b, sizeof(b)) > 0) {
            }
        }
        SSL_free(ssl);
        close(fd);
    }
}

static void run_keyshare(const struct kb_cfg *cf, uint16_t kport, int rfd, int wfd)
{
    char ca[512], cert[512], key[512], srvc[512], srvk[512], ksrv[64];
    struct hs_server h;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    pthread_t th;
    struct kb_result res;
    uint8_t go;
    int rc;

    snprintf(ca, sizeof(ca), "%s/ca.pem", cf->dir);
    snprintf(cert, sizeof(cert), "%s/client.pem", cf->dir);
    snprintf(key, sizeof(key), "%s/client.key", cf->dir);
    snprintf(srvc, sizeof(srvc), "%s/server.pem", cf->dir);
    snprintf(srvk, sizeof(srvk), "%s/server.key", cf->dir);
    snprintf(ksrv, sizeof(ksrv), "127.0.0.1:%u", kport);

    /* An ordinary TLS server for the handshakes (ECDSA P-256, no tickets). */
    h.ctx = SSL_CTX_new(TLS_server_method());
    if (h.ctx == NULL || SSL_CTX_use_certificate_chain_file(h.ctx, srvc) != 1 ||
        SSL_CTX_use_PrivateKey_file(h.ctx, srvk, SSL_FILETYPE_PEM) != 1) {
        die("handshake server context%s", "");
    }
    SSL_CTX_set_num_tickets(h.ctx, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h.lfd < 0 || bind(h.lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(h.lfd, 128) != 0 || getsockname(h.lfd, (struct sockaddr *)&a, &al) != 0) {
        die("handshake server socket: %s", strerror(errno));
    }
    pthread_create(&th, NULL, hs_server_main, &h);

    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_keylog_callback(cctx, app_keylog); /* before attach: the library chains it */
    MMTLS_KEYSHARE_OPTS(o, .keyserver = ksrv, .ca = ca, .cert = cert, .key = key,
                        .flags = MMTLS_KEYSHARE_F_NO_ENV | MMTLS_KEYSHARE_F_NO_ATEXIT);
    rc = mmtls_keyshare_attach(cctx, &o);
    if (rc != 0) {
        die("mmtls_keyshare_attach: %s", mmtls_keyshare_strerror(rc));
    }
    g_hs_recs = calloc(cf->handshakes + 1, sizeof(*g_hs_recs));

    for (uint32_t i = 0; i < KB_WARMUP_HS + cf->handshakes; i++) {
        if (i == KB_WARMUP_HS) {
            uint32_t up = 1;
            rc = mmtls_keyshare_flush(5000);
            if (rc != 0) {
                die("warm-up flush: %s", mmtls_keyshare_strerror(rc));
            }
            xwrite(wfd, &up, sizeof(up));
            if (!xread(rfd, &go, 1)) {
                exit(1);
            }
            g_hs_measure = true;
            res.t_start = now_ns();
        }
        int fd = tcp_connect(ntohs(a.sin_port), false);
        SSL *ssl = SSL_new(cctx);
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) != 1) {
            die("handshake %s failed", "client");
        }
        if (g_hs_measure) {
            g_hs_cur++;
        }
        SSL_free(ssl);
        close(fd);
    }
    rc = mmtls_keyshare_flush(5000);
    res.t_end = now_ns();
    struct mmtls_keyshare_stats st = {.sz = sizeof(st)};
    mmtls_keyshare_stats(&st);
    res.sent = st.sent;
    res.up = 1;
    res.nrec = g_hs_cur;
    res.ks_dropped = st.dropped_queue_full + st.dropped_other;
    xwrite(wfd, &res, sizeof(res));
    xwrite(wfd, g_hs_recs, sizeof(*g_hs_recs) * res.nrec);
    mmtls_keyshare_shutdown();
    exit(0);
}
#endif

static void client_main(const struct kb_cfg *cf, int rfd, int wfd)
{
    uint16_t port;
    struct kb_result res;
    struct kb_msg tpl;
    uint8_t go;

    memset(&res, 0, sizeof(res));
    pin_self(1);
    if (!xread(rfd, &port, sizeof(port))) {
        exit(1);
    }
    if (cf->mode == KB_KEYSHARE) {
#ifdef KEYBENCH_KEYSHARE
        run_keyshare(cf, port, rfd, wfd);
#endif
        exit(1);
    }
    make_template(&tpl);
    SSL_CTX *ctx = client_ctx(cf->dir);
    struct kb_chan *ch = calloc(cf->channels, sizeof(*ch));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    uint32_t per = cf->mode == KB_FLOOD ? cf->batch : 1;
    for (uint32_t i = 0; i < cf->channels; i++) {
        ch[i].pend = malloc(per * tpl.len);
    }
    res.up = open_channels(ctx, port, ch, cf->channels, ep);
    xwrite(wfd, &res.up, sizeof(res.up));
    if (!xread(rfd, &go, 1)) {
        exit(1);
    }
    if (cf->mode == KB_FLOOD) {
        run_flood(cf, ch, cf->channels, ep, &tpl, &res);
    } else {
        run_paced(cf, ch, cf->channels, &tpl, &res);
    }
    xwrite(wfd, &res, sizeof(res));
    /* Keep the channels open until the server side has counted everything. */
    (void)xread(rfd, &go, 1);
    exit(0);
}

/* ------------------------------------------------------------------------------------------ */
/* Report                                                                                       */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, uint64_t n, double p)
{
    if (n == 0) {
        return 0;
    }
    uint64_t i = (uint64_t)(p * (double)(n - 1) + 0.5);
    return (double)v[i] / 1000.0;
}

static void print_lat(const char *name, uint64_t *v, uint64_t n, bool cdf)
{
    double sum = 0;

    qsort(v, n, sizeof(*v), cmp_u64);
    for (uint64_t i = 0; i < n; i++) {
        sum += (double)v[i];
    }
    printf(",\"%s\":{\"n\":%llu,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
           "\"max\":%.1f,\"mean\":%.1f",
           name, (unsigned long long)n, pct(v, n, 0.5), pct(v, n, 0.9), pct(v, n, 0.99),
           pct(v, n, 0.999), n ? (double)v[n - 1] / 1000.0 : 0.0,
           n ? sum / (double)n / 1000.0 : 0.0);
    if (cdf) {
        printf(",\"cdf\":[");
        for (int i = 0; i < KB_CDF_POINTS; i++) {
            printf("%s%.1f", i ? "," : "", pct(v, n, (double)i / (KB_CDF_POINTS - 1)));
        }
        printf("]");
    }
    printf("}");
}

static int cmp_rec(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static void usage(void)
{
    fprintf(stderr, "usage: keybench flood|paced|keyshare --dir CERTDIR [--channels N] [--keys K]\n"
                    "       [--seconds S] [--batch B] [--rate R] [--handshakes H] [--spin]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct kb_cfg cf = {.channels = 1,
                        .keys = 2000000,
                        .seconds = 8,
                        .batch = 64,
                        .rate = 10000,
                        .handshakes = 2000};
    static const struct option lo[] = {{"dir", required_argument, NULL, 'd'},
                                       {"channels", required_argument, NULL, 'n'},
                                       {"keys", required_argument, NULL, 'k'},
                                       {"seconds", required_argument, NULL, 's'},
                                       {"batch", required_argument, NULL, 'b'},
                                       {"rate", required_argument, NULL, 'r'},
                                       {"handshakes", required_argument, NULL, 'h'},
                                       {"spin", no_argument, NULL, 'S'},
                                       {"rt", no_argument, NULL, 'R'},
                                       {NULL, 0, NULL, 0}};
    int opt;

    if (argc < 2) {
        usage();
    }
    if (strcmp(argv[1], "flood") == 0) {
        cf.mode = KB_FLOOD;
    } else if (strcmp(argv[1], "paced") == 0) {
        cf.mode = KB_PACED;
    } else if (strcmp(argv[1], "keyshare") == 0) {
        cf.mode = KB_KEYSHARE;
#ifndef KEYBENCH_KEYSHARE
        die("built without libmmtls-keyshare (-DKEYBENCH_KEYSHARE)%s", "");
#endif
    } else {
        usage();
    }
    optind = 2;
    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (opt) {
        case 'd': cf.dir = optarg; break;
        case 'n': cf.channels = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'k': cf.keys = strtoull(optarg, NULL, 10); break;
        case 's': cf.seconds = strtod(optarg, NULL); break;
        case 'b': cf.batch = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'r': cf.rate = strtoull(optarg, NULL, 10); break;
        case 'h': cf.handshakes = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'S': cf.spin = true; break;
        case 'R': cf.rt = true; break;
        default: usage();
        }
    }
    if (cf.dir == NULL || cf.channels == 0 || cf.channels > KB_MAX_CHANNELS || cf.batch == 0 ||
        cf.batch > 64 || cf.rate == 0 || cf.keys == 0) {
        usage();
    }
    if (cf.mode == KB_PACED && cf.keys > cf.rate * (uint64_t)(cf.seconds + 1)) {
        cf.keys = cf.rate * (uint64_t)(cf.seconds + 1);
    }

    struct rlimit rl = {.rlim_cur = 2 * KB_MAX_CHANNELS + 64, .rlim_max = 2 * KB_MAX_CHANNELS + 64};
    struct rlimit cur;
    getrlimit(RLIMIT_NOFILE, &cur);
    if (cur.rlim_max > rl.rlim_max || cur.rlim_max == RLIM_INFINITY) {
        rl.rlim_max = cur.rlim_max;
    }
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        die("setrlimit(RLIMIT_NOFILE): %s", strerror(errno));
    }
    signal(SIGPIPE, SIG_IGN);
    mmtls_log_set_level(MMTLS_LOG_WARN);

    /* The client process is forked before any thread exists. */
    int p2c[2], c2p[2];
    if (pipe(p2c) != 0 || pipe(c2p) != 0) {
        die("pipe: %s", strerror(errno));
    }
    pid_t child = fork();
    if (child < 0) {
        die("fork: %s", strerror(errno));
    }
    if (child == 0) {
        close(p2c[1]);
        close(c2p[0]);
        client_main(&cf, p2c[0], c2p[1]);
    }
    close(p2c[0]);
    close(c2p[1]);

    static struct kb_srv s;
    char err[512], cert[512], key[512], ca[512];
    s.mode = cf.mode;
    s.spin = cf.spin;
    s.cap = cf.mode == KB_KEYSHARE ? cf.handshakes + KB_WARMUP_HS + 1024 : cf.keys;
    if (mmtls_ring_init(&s.ring, KB_RING_CAP) != 0) {
        die("ring%s", "");
    }
    if (cf.mode == KB_KEYSHARE) {
        s.recs = calloc(s.cap, sizeof(*s.recs));
    } else {
        s.lat_total = calloc(s.cap, sizeof(uint64_t));
        s.lat_read = calloc(s.cap, sizeof(uint64_t));
    }
    snprintf(cert, sizeof(cert), "%s/server.pem", cf.dir);
    snprintf(key, sizeof(key), "%s/server.key", cf.dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", cf.dir);
    struct mmtls_keyserver_opts ko = {
        .sz = sizeof(ko),
        .listen = "127.0.0.1:0",
        .cert = cert,
        .key = key,
        .client_ca = ca,
        .max_channels = KB_MAX_CHANNELS,
        .deliver = kb_deliver,
        .deliver_ud = &s,
    };
    bool pinned = pin_self(0); /* inherited by the key server thread */
    if (mmtls_keyserver_start(&s.ks, &ko, err, sizeof(err)) != 0) {
        die("%s", err);
    }
    pin_self(-1);
    s.ktid = find_server_tid();
    task_set_comm(s.ktid, "mmtls-keysrv");
    if (cf.rt) {
        struct sched_param sp = {.sched_priority = 10};
        if (sched_setscheduler(s.ktid, SCHED_FIFO, &sp) != 0) {
            fprintf(stderr, "keybench: key server: SCHED_FIFO: %s\n", strerror(errno));
        }
    }
    pthread_t wt;
    pthread_create(&wt, NULL, kb_worker, &s);
    pthread_setname_np(wt, "kb-worker");

    uint16_t port = mmtls_keyserver_port(s.ks);
    xwrite(p2c[1], &port, sizeof(port));
    uint32_t up;
    if (!xread(c2p[0], &up, sizeof(up))) {
        die("client failed before go%s", "");
    }
    uint64_t pop0 = atomic_load(&s.popped);
    uint64_t wait0, wait1;
    uint64_t cpu0 = task_cpu_ns(s.ktid, &wait0);
    uint64_t t0 = now_ns();
    uint8_t go = 1;
    xwrite(p2c[1], &go, 1);

    struct kb_result res;
    if (!xread(c2p[0], &res, sizeof(res))) {
        die("client failed%s", "");
    }
    struct kb_rec *crecs = NULL;
    if (cf.mode == KB_KEYSHARE) {
        crecs = calloc(res.nrec + 1, sizeof(*crecs));
        if (!xread(c2p[0], crecs, sizeof(*crecs) * res.nrec)) {
            die("client records%s", "");
        }
    }
    /* Wait until every key the client wrote has been delivered and popped (or dropped). */
    uint64_t expect = cf.mode == KB_KEYSHARE ? res.sent : pop0 + res.sent;
    uint64_t wait_end = now_ns() + 10ull * 1000000000u;
    while (now_ns() < wait_end && atomic_load(&s.popped) + atomic_load(&s.dropped) < expect) {
        usleep(200);
    }
    uint64_t cpu1 = task_cpu_ns(s.ktid, &wait1);
    uint64_t popped = atomic_load(&s.popped) - pop0;
    uint64_t t1 = atomic_load(&s.last_pop_ns);
    xwrite(p2c[1], &go, 1);

    struct mmtls_keyserver_stats ks;
    mmtls_keyserver_get_stats(s.ks, &ks);
    double wall = (double)(t1 - t0) / 1e9;
    double scpu = (double)(cpu1 - cpu0) / 1e9;
    printf("{\"mode\":\"%s\",\"channels\":%u,\"channels_up\":%u,\"batch\":%u,\"rate\":%llu,"
           "\"pinned\":%s,\"rt\":%s,\"worker_poll\":\"%s\",\"keys_sent\":%llu,\"keys_popped\":%llu,"
           "\"ring_dropped\":%llu,\"server_keys\":%llu,\"server_rejected_owner\":%llu,"
           "\"server_malformed\":%llu,\"client_s\":%.4f,\"wall_s\":%.4f,\"keys_per_s\":%.0f,"
           "\"server_cpu_s\":%.4f,\"server_cpu_share\":%.3f,\"keys_per_server_cpu_s\":%.0f,"
           "\"server_runq_wait_s\":%.4f,\"openssl\":\"%s\"",
           cf.mode == KB_FLOOD   ? "flood"
           : cf.mode == KB_PACED ? "paced"
                                 : "keyshare",
           cf.channels, up, cf.mode == KB_FLOOD ? cf.batch : 1,
           (unsigned long long)(cf.mode == KB_PACED ? cf.rate : 0), pinned ? "true" : "false",
           cf.rt ? "true" : "false", cf.spin ? "spin" : "sleep10us", (unsigned long long)res.sent,
           (unsigned long long)popped, (unsigned long long)atomic_load(&s.dropped),
           (unsigned long long)ks.keys, (unsigned long long)ks.rejected_owner,
           (unsigned long long)ks.messages_malformed, (double)(res.t_end - res.t_start) / 1e9, wall,
           wall > 0 ? (double)popped / wall : 0.0, scpu, wall > 0 ? scpu / wall : 0.0,
           scpu > 0 ? (double)popped / scpu : 0.0, (double)(wait1 - wait0) / 1e9,
           OpenSSL_version(OPENSSL_VERSION));
    if (cf.mode == KB_KEYSHARE) {
        /* Match the worker's pops to the callback times by client random. */
        uint64_t n = atomic_load(&s.popped);
        uint64_t *lat = calloc(res.nrec + 1, sizeof(uint64_t));
        uint64_t m = 0;
        if (n > s.cap) {
            n = s.cap;
        }
        qsort(crecs, res.nrec, sizeof(*crecs), cmp_rec);
        for (uint64_t i = 0; i < n; i++) {
            struct kb_rec *c = bsearch(&s.recs[i], crecs, res.nrec, sizeof(*crecs), cmp_rec);
            if (c != NULL && c->t != 0 && m < res.nrec) {
                lat[m++] = s.recs[i].t - c->t;
            }
        }
        printf(",\"handshakes\":%u,\"client_dropped\":%llu", res.nrec,
               (unsigned long long)res.ks_dropped);
        print_lat("lat_us", lat, m, true);
    } else {
        uint64_t n = popped < s.cap ? popped : s.cap;
        print_lat("lat_us", s.lat_total, n, true);
        print_lat("lat_read_us", s.lat_read, n, false);
    }
    printf("}\n");
    fflush(stdout);

    int status;
    struct rusage ru;
    wait4(child, &status, 0, &ru);
    atomic_store(&s.stop, true);
    pthread_join(wt, NULL);
    mmtls_keyserver_stop(s.ks);
    for (struct mmtls_engine_keymsg *m; (m = mmtls_ring_pop(&s.ring)) != NULL;) {
        mmtls_engine_keymsg_free(m);
    }
    mmtls_ring_fini(&s.ring);
    return 0;
}
