/* mmtls-httpsd — a minimal HTTPS/1.1 file server on the endpoint library (include/mmtls/
 * endpoint.h, docs/PRIVTAG.md): TLS 1.3 with the private tag when the client offers it, plain
 * TLS otherwise (or always, with --no-private-tag: the baseline of bench/privtag/run.sh).
 *
 * GET only, keep-alive, Content-Length; one thread per connection (blocking sockets with
 * timeouts), optionally several forked worker processes sharing the listening socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "https.h"

#define PROG "mmtls-httpsd"
#define CONNS_MAX 512 /* concurrent connections per worker; more are closed at once */
#define WORKERS_MAX 64
#define IO_TIMEOUT_S 60        /* an idle or stuck peer is dropped after this */
#define BODY_CHUNK (64 * 1024) /* file bytes per mmtls_ep_write (4 records of 16 KB) */
#define PATH_MAX_LEN 4096

struct srv {
    SSL_CTX *ctx; /* owned */
    int root_fd;  /* owned: --root directory */
    bool tag, verbose, quiet;
};

struct conn {
    struct srv *srv; /* borrowed: lives as long as the process */
    int fd;          /* owned */
    char peer[64];
};

static atomic_int active_conns;

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " --listen ADDR:PORT --cert PEM --key PEM --root DIR\n"
               "       [--no-private-tag] [--ciphersuites LIST] [--workers N] [--port-file F]"
               " [-v] [-q]\n");
}

/* RFC 3986 §2.1 percent-decoding of the path part of target into out (NUL-terminated, relative
 * to the root: no leading '/').  Refuses NUL, bad escapes, ".." segments (no escape from the
 * root).  "/" and paths ending in "/" get index.html. */
static int target_to_path(struct mmtls_slice t, char *out, size_t cap)
{
    size_t o = 0;

    if (t.len == 0 || t.p[0] != '/') {
        return MMTLS_E_MALFORMED;
    }
    for (size_t i = 1; i < t.len && t.p[i] != '?' && t.p[i] != '#'; i++) {
        uint8_t c = t.p[i];
        if (c == '%') {
            char hex[3] = {0};
            uint8_t v;
            if (2 > t.len - i - 1) {
                return MMTLS_E_MALFORMED;
            }
            memcpy(hex, t.p + i + 1, 2);
            if (mmtls_hex_decode(hex, 2, &v, 1) != 0 || v == 0) {
                return MMTLS_E_MALFORMED;
            }
            c = v;
            i += 2;
        }
        if (o + 1 >= cap) {
            return MMTLS_E_LIMIT;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    if (o == 0 || out[o - 1] == '/') {
        static const char idx[] = "index.html";
        if (o + sizeof(idx) > cap) {
            return MMTLS_E_LIMIT;
        }
        memcpy(out + o, idx, sizeof(idx));
        o += sizeof(idx) - 1;
    }
    /* No segment may be "..": the path stays below the root (symbolic links placed inside
     * the root by its owner are followed). */
    for (const char *s = out; s != NULL && *s != '\0';) {
        const char *e = strchr(s, '/');
        size_t n = e != NULL ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            return MMTLS_E_MALFORMED;
        }
        s = e != NULL ? e + 1 : NULL;
    }
    return 0;
}

static int send_simple(struct mmtls_ep *ep, unsigned status, const char *reason, bool keep)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %u %s\r\nServer: " PROG "\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n%sConnection: %s\r\n\r\n%s\n",
                     status, reason, strlen(reason) + 1, status == 405 ? "Allow: GET\r\n" : "",
                     keep ? "keep-alive" : "close", reason);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        return MMTLS_E_INTERNAL;
    }
    int rc = mmtls_ep_write(ep, buf, (size_t)n);
    return rc < 0 ? rc : 0;
}

/* Sends the file at rel (or an error status).  *status gets the status sent, *sent the body
 * length.  A negative return means the connection must be dropped. */
static int serve_file(struct conn *c, struct mmtls_ep *ep, const char *rel, bool keep,
                      unsigned *status, int64_t *sent)
{
    static _Thread_local uint8_t buf[BODY_CHUNK + 512];
    struct stat st;
    int fd, rc;

    *sent = 0;
    fd = openat(c->srv->root_fd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0) {
            close(fd);
        }
        *status = 404;
        return send_simple(ep, 404, "Not Found", keep);
    }
    *status = 200;
    int hl = snprintf((char *)buf, 512,
                      "HTTP/1.1 200 OK\r\nServer: " PROG "\r\n"
                      "Content-Type: application/octet-stream\r\nContent-Length: %jd\r\n"
                      "Connection: %s\r\n\r\n",
                      (intmax_t)st.st_size, keep ? "keep-alive" : "close");
    if (hl < 0 || hl >= 512) {
        close(fd);
        return MMTLS_E_INTERNAL;
    }
    /* The head goes out with the first chunk of the body: small responses are one record. */
    size_t have = (size_t)hl;
    int64_t left = (int64_t)st.st_size;
    rc = 0;
    while (rc == 0) {
        size_t want = (size_t)MMTLS_MIN((int64_t)(sizeof(buf) - have), left);
        while (want > 0) {
            ssize_t n = read(fd, buf + have, want);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                /* The file shrank under us: Content-Length can no longer be honoured. */
                rc = MMTLS_E_IO;
                break;
            }
            have += (size_t)n;
            want -= (size_t)n;
            left -= n;
            *sent += n;
        }
        if (rc != 0 || have == 0) {
            break;
        }
        int w = mmtls_ep_write(ep, buf, have);
        if (w < 0) {
            rc = w;
            break;
        }
        have = 0;
        if (left == 0) {
            break;
        }
    }
    close(fd);
    return rc;
}

static void log_req(const struct conn *c, const struct mmtls_ep *ep,
                    const struct mmtls_https_head *h, unsigned status, int64_t sent)
{
    if (!c->srv->verbose) {
        return;
    }
    int ml = (int)MMTLS_MIN(h->method.len, 16), tl = (int)MMTLS_MIN(h->target.len, 256);
    fprintf(stderr, PROG ": %s \"%.*s %.*s\" %u %jd private_tag=%s\n", c->peer, ml,
            (const char *)h->method.p, tl, (const char *)h->target.p, status, (intmax_t)sent,
            mmtls_ep_private_tag(ep) ? "yes" : "no");
}

/* Request loop of one connection (RFC 9112 §9.3 persistence): heads up to 16 KB, GET only,
 * no request bodies. */
static void conn_serve(struct conn *c, struct mmtls_ep *ep)
{
    static _Thread_local uint8_t req[MMTLS_HTTPS_HEAD_MAX];
    char path[PATH_MAX_LEN];
    size_t have = 0;
    bool clean = false;

    for (;;) { /* one request per round; ends on close, error or Connection: close */
        struct mmtls_https_head h;
        int rc = mmtls_https_head_parse(req, have, false, &h);
        if (rc == MMTLS_AGAIN) {
            if (have == sizeof(req)) {
                (void)send_simple(ep, 431, "Request Header Fields Too Large", false);
                break;
            }
            int n = mmtls_ep_read(ep, req + have, sizeof(req) - have);
            if (n == 0) {
                clean = true; /* close_notify */
                break;
            }
            if (n < 0) {
                if (c->srv->verbose) {
                    fprintf(stderr, PROG ": %s: read: %s\n", c->peer, mmtls_strerror(n));
                }
                break;
            }
            have += (size_t)n;
            continue;
        }
        if (rc != 0) {
            (void)send_simple(ep, 400, "Bad Request", false);
            break;
        }
        bool keep = mmtls_https_keep_alive(&h);
        unsigned status;
        int64_t sent = 0;
        if (h.chunked || h.content_length > 0) {
            /* No request bodies: without reading them the stream cannot be re-framed. */
            status = 400;
            keep = false;
            rc = send_simple(ep, 400, "Bad Request", false);
        } else if (h.method.len != 3 || memcmp(h.method.p, "GET", 3) != 0) {
            status = 405;
            rc = send_simple(ep, 405, "Method Not Allowed", keep);
        } else if (target_to_path(h.target, path, sizeof(path)) != 0) {
            status = 404;
            rc = send_simple(ep, 404, "Not Found", keep);
        } else {
            rc = serve_file(c, ep, path, keep, &status, &sent);
        }
        log_req(c, ep, &h, status, sent);
        if (rc != 0) {
            if (c->srv->verbose) {
                fprintf(stderr, PROG ": %s: write: %s\n", c->peer, mmtls_strerror(rc));
            }
            return; /* no close_notify after a failed write */
        }
        if (!keep) {
            clean = true;
            break;
        }
        /* Keep what follows the head (a pipelined request). */
        memmove(req, req + h.head_len, have - h.head_len);
        have -= h.head_len;
    }
    if (clean) {
        (void)mmtls_ep_shutdown(ep);
    }
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct mmtls_ep *ep = NULL;
    SSL *ssl;
    int rc;

    ssl = SSL_new(c->srv->ctx);
    if (ssl == NULL || SSL_set_fd(ssl, c->fd) != 1) {
        mmtls_https_perror(PROG, "SSL_new", MMTLS_E_NOMEM);
        goto out_free_ssl;
    }
    if (SSL_accept(ssl) != 1) {
        if (c->srv->verbose) {
            mmtls_https_perror(PROG, "handshake failed", MMTLS_E_CRYPTO);
        }
        ERR_clear_error();
        goto out_free_ssl;
    }
    rc = mmtls_ep_new(&ep, ssl);
    if (rc != 0) {
        mmtls_https_perror(PROG, "mmtls_ep_new", rc);
        goto out_free_ssl;
    }
    conn_serve(c, ep);
    mmtls_ep_free(ep);
out_free_ssl:
    SSL_free(ssl);
    ERR_clear_error();
    close(c->fd);
    free(c);
    atomic_fetch_sub(&active_conns, 1);
    return NULL;
}

static void accept_loop(struct srv *srv, int lfd)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
                if (errno == EMFILE || errno == ENFILE) {
                    usleep(10000);
                }
                continue;
            }
            perror(PROG ": accept");
            return;
        }
        if (atomic_fetch_add(&active_conns, 1) >= CONNS_MAX) {
            atomic_fetch_sub(&active_conns, 1);
            close(fd);
            continue;
        }
        int one = 1;
        struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        struct conn *c = calloc(1, sizeof(*c));
        pthread_t th;
        pthread_attr_t at;
        if (c == NULL) {
            goto drop;
        }
        c->srv = srv;
        c->fd = fd;
        char h[48], p[8];
        if (getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
                        NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
            snprintf(c->peer, sizeof(c->peer), "%s:%s", h, p);
        } else {
            snprintf(c->peer, sizeof(c->peer), "?");
        }
        if (pthread_attr_init(&at) != 0) {
            goto drop;
        }
        (void)pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        (void)pthread_attr_setstacksize(&at, 256 * 1024);
        int prc = pthread_create(&th, &at, conn_main, c);
        pthread_attr_destroy(&at);
        if (prc == 0) {
            continue;
        }
    drop:
        free(c);
        close(fd);
        atomic_fetch_sub(&active_conns, 1);
    }
}

static int listen_on(const char *hostport, const char *port_file, bool quiet)
{
    char host[256], port[16];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai, *a;
    int fd = -1, one = 1, err;

    if (mmtls_https_split_hostport(hostport, host, sizeof(host), port, sizeof(port)) != 0) {
        fprintf(stderr, PROG ": --listen wants ADDR:PORT, not '%s'\n", hostport);
        return -1;
    }
    err = getaddrinfo(host, port, &hints, &ai);
    if (err != 0) {
        fprintf(stderr, PROG ": %s: %s\n", hostport, gai_strerror(err));
        return -1;
    }
    for (a = ai; a != NULL; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            continue;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 511) == 0) {
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        fprintf(stderr, PROG ": cannot listen on %s: %s\n", hostport, strerror(errno));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char h[64], p[8];
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
        getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        perror(PROG ": getsockname");
        close(fd);
        return -1;
    }
    if (port_file != NULL) {
        /* Written whole to a temporary name and renamed: a reader never sees half a port. */
        char tmp[4096];
        FILE *f;
        snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
        f = fopen(tmp, "w");
        if (f == NULL || fprintf(f, "%s\n", p) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            fprintf(stderr, PROG ": cannot write %s\n", port_file);
            close(fd);
            return -1;
        }
    }
    if (!quiet) {
        fprintf(stderr, PROG ": listening on %s:%s\n", h, p);
    }
    return fd;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},   {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},      {"root", required_argument, NULL, 'r'},
        {"no-private-tag", no_argument, NULL, 'N'}, {"ciphersuites", required_argument, NULL, 'S'},
        {"workers", required_argument, NULL, 'w'},  {"port-file", required_argument, NULL, 'P'},
        {"verbose", no_argument, NULL, 'v'},        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *listen_s = NULL, *cert = NULL, *key = NULL, *root = NULL, *suites = NULL;
    const char *port_file = NULL;
    struct srv srv = {.tag = true, .root_fd = -1};
    long workers = 1;
    int o, rc, lfd;

    while ((o = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        switch (o) {
        case 'l': listen_s = optarg; break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'r': root = optarg; break;
        case 'N': srv.tag = false; break;
        case 'S': suites = optarg; break;
        case 'P': port_file = optarg; break;
        case 'v': srv.verbose = true; break;
        case 'q': srv.quiet = true; break;
        case 'w': {
            char *end;
            workers = strtol(optarg, &end, 10);
            if (*end != '\0' || workers < 1 || workers > WORKERS_MAX) {
                fprintf(stderr, PROG ": --workers wants 1..%d\n", WORKERS_MAX);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (listen_s == NULL || cert == NULL || key == NULL || root == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    srv.root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (srv.root_fd < 0) {
        fprintf(stderr, PROG ": --root %s: %s\n", root, strerror(errno));
        return 1;
    }
    srv.ctx = SSL_CTX_new(TLS_server_method());
    if (srv.ctx == NULL || SSL_CTX_set_min_proto_version(srv.ctx, TLS1_2_VERSION) != 1) {
        mmtls_https_perror(PROG, "SSL_CTX_new", MMTLS_E_CRYPTO);
        return 1;
    }
    if (SSL_CTX_use_certificate_chain_file(srv.ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(srv.ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(srv.ctx) != 1) {
        mmtls_https_perror(PROG, "certificate or key", MMTLS_E_CRYPTO);
        return 1;
    }
    if (srv.tag) {
        rc = mmtls_ep_ctx_enable(srv.ctx);
        if (rc != 0) {
            mmtls_https_perror(PROG, "mmtls_ep_ctx_enable", rc);
            return 1;
        }
    } else {
        /* The same as mmtls_ep_ctx_enable does, so that baseline runs differ only by tag2. */
        (void)SSL_CTX_set_num_tickets(srv.ctx, 0);
    }
    if (suites != NULL && SSL_CTX_set_ciphersuites(srv.ctx, suites) != 1) {
        mmtls_https_perror(PROG, "--ciphersuites", MMTLS_E_INVAL);
        return 1;
    }
    lfd = listen_on(listen_s, port_file, srv.quiet);
    if (lfd < 0) {
        return 1;
    }
    if (workers > 1) {
        /* Forked workers share the listening socket; they die with the parent. */
        for (long i = 0; i < workers; i++) {
            pid_t pid = fork();
            if (pid < 0) {
                perror(PROG ": fork");
                return 1;
            }
            if (pid == 0) {
                (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() == 1) {
                    _exit(1);
                }
                accept_loop(&srv, lfd);
                _exit(1);
            }
        }
        while (wait(NULL) > 0 || errno == EINTR) {
        }
        return 1;
    }
    accept_loop(&srv, lfd);
    return 1;
}
