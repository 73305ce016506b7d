/* mmtls-https-get — an HTTPS/1.1 GET client on the endpoint library (include/mmtls/endpoint.h):
 * offers the private tag (docs/PRIVTAG.md) unless --no-private-tag, falls back to plain TLS
 * when the server does not answer it.  -n N sends N requests on one connection (keep-alive).
 * With MMTLS_KEYSERVER set it shares its session keys with a middlebox (libmmtls-keyshare, the
 * KEYS message then says whether the session carries tag2); SSLKEYLOGFILE writes a key log.
 * Exit 0 when every response was a 200 with its full body.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <mmtls/keyshare.h>

#include "https.h"

#define PROG "mmtls-https-get"
#define IO_TIMEOUT_S 60
#define REQUESTS_MAX 100000000L
#define BODY_BUF (256 * 1024)

struct opts {
    bool tag, verbose, insecure;
    const char *cafile, *connect, *out, *suites;
    long requests;
    char host[256], port[16], path[2048];
};

struct rbuf {
    uint8_t b[BODY_BUF]; /* at least MMTLS_HTTPS_HEAD_MAX */
    size_t off, len;     /* unread bytes are b[off .. off+len) */
};

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " [--no-private-tag] [--cafile F] [-k|--insecure]"
               " [--connect HOST:PORT]\n"
               "       [--ciphersuites LIST] [-n N] [-o FILE] [-v] https://name[:port]/path\n");
}

/* https://host[:port][/path] (RFC 9110 §4.2.2); no userinfo. */
static int parse_url(const char *url, struct opts *o)
{
    const char *a, *slash;
    char auth[300];
    size_t alen;

    if (strncmp(url, "https://", 8) != 0) {
        return MMTLS_E_INVAL;
    }
    a = url + 8;
    slash = strchr(a, '/');
    alen = slash != NULL ? (size_t)(slash - a) : strlen(a);
    if (alen == 0 || alen >= sizeof(auth) || memchr(a, '@', alen) != NULL) {
        return MMTLS_E_INVAL;
    }
    memcpy(auth, a, alen);
    auth[alen] = '\0';
    const char *rb = auth[0] == '[' ? strchr(auth, ']') : NULL;
    const char *colon =
        auth[0] == '[' ? (rb != NULL && rb[1] == ':' ? rb + 1 : NULL) : strrchr(auth, ':');
    if (colon != NULL) {
        if (mmtls_https_split_hostport(auth, o->host, sizeof(o->host), o->port, sizeof(o->port)) !=
            0) {
            return MMTLS_E_INVAL;
        }
    } else {
        const char *h = auth;
        size_t hl = alen;
        if (auth[0] == '[') {
            if (rb == NULL || rb[1] != '\0') {
                return MMTLS_E_INVAL;
            }
            h = auth + 1;
            hl = (size_t)(rb - h);
        }
        if (hl == 0 || hl >= sizeof(o->host)) {
            return MMTLS_E_INVAL;
        }
        memcpy(o->host, h, hl);
        o->host[hl] = '\0';
        snprintf(o->port, sizeof(o->port), "443");
    }
    const char *path = slash != NULL ? slash : "/";
    size_t plen = strlen(path);
    if (plen >= sizeof(o->path)) {
        return MMTLS_E_INVAL;
    }
    for (size_t i = 0; i < plen; i++) {
        if ((uint8_t)path[i] <= 0x20 || (uint8_t)path[i] >= 0x7f) {
            return MMTLS_E_INVAL; /* RFC 3986: no raw spaces or controls in a target */
        }
    }
    memcpy(o->path, path, plen + 1);
    return 0;
}

static int tcp_connect(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai, *a;
    int fd = -1, err, one = 1;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};

    err = getaddrinfo(host, port, &hints, &ai);
    if (err != 0) {
        fprintf(stderr, PROG ": %s:%s: %s\n", host, port, gai_strerror(err));
        return -1;
    }
    for (a = ai; a != NULL; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            continue;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            break;
        }
        err = errno;
        close(fd);
        fd = -1;
        errno = err;
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        fprintf(stderr, PROG ": connect %s:%s: %s\n", host, port, strerror(errno));
        return -1;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Reads more into r (compacting first).  > 0 bytes, 0 at close_notify, or a negative code. */
static int fill(struct mmtls_ep *ep, struct rbuf *r)
{
    if (r->off > 0) {
        memmove(r->b, r->b + r->off, r->len);
        r->off = 0;
    }
    if (r->len == sizeof(r->b)) {
        return MMTLS_E_LIMIT;
    }
    return mmtls_ep_read(ep, r->b + r->len, sizeof(r->b) - r->len);
}

static int emit(FILE *out, const uint8_t *p, size_t n)
{
    if (out != NULL && n > 0 && fwrite(p, 1, n, out) != n) {
        return MMTLS_E_IO;
    }
    return 0;
}

/* Reads one response (head and body) and writes the body to out.  *status gets the status;
 * *keep whether the connection may carry another request. */
static int get_response(struct mmtls_ep *ep, struct rbuf *r, FILE *out, unsigned *status,
                        bool *keep, int64_t *body_len)
{
    struct mmtls_https_head h;
    int rc;

    for (;;) { /* bounded: the head is at most MMTLS_HTTPS_HEAD_MAX bytes */
        size_t avail = MMTLS_MIN(r->len, (size_t)MMTLS_HTTPS_HEAD_MAX);
        rc = mmtls_https_head_parse(r->b + r->off, avail, true, &h);
        if (rc == 0) {
            break;
        }
        if (rc != MMTLS_AGAIN || avail == MMTLS_HTTPS_HEAD_MAX) {
            fprintf(stderr, PROG ": malformed or overlong response head\n");
            return MMTLS_E_MALFORMED;
        }
        rc = fill(ep, r);
        if (rc <= 0) {
            fprintf(stderr, PROG ": connection closed before the response head: %s\n",
                    rc == 0 ? "close_notify" : mmtls_strerror(rc));
            return rc == 0 ? MMTLS_E_IO : rc;
        }
        r->len += (size_t)rc;
    }
    *status = h.status;
    if (h.status < 200) {
        fprintf(stderr, PROG ": interim responses (%u) are not supported\n", h.status);
        return MMTLS_E_UNSUPPORTED;
    }
    if (h.chunked) {
        fprintf(stderr, PROG ": chunked transfer coding is not supported\n");
        return MMTLS_E_UNSUPPORTED;
    }
    r->off += h.head_len;
    r->len -= h.head_len;
    *keep = mmtls_https_keep_alive(&h) && h.content_length >= 0;
    *body_len = 0;
    if (h.content_length >= 0) {
        int64_t left = h.content_length;
        while (left > 0) { /* every round consumes >= 1 byte or fails */
            if (r->len == 0) {
                rc = fill(ep, r);
                if (rc <= 0) {
                    fprintf(stderr, PROG ": body truncated: %jd of %jd bytes (%s)\n",
                            (intmax_t)(h.content_length - left), (intmax_t)h.content_length,
                            rc == 0 ? "close_notify" : mmtls_strerror(rc));
                    return rc == 0 ? MMTLS_E_IO : rc;
                }
                r->len += (size_t)rc;
            }
            size_t n = (size_t)MMTLS_MIN((int64_t)r->len, left);
            rc = emit(out, r->b + r->off, n);
            if (rc != 0) {
                return rc;
            }
            r->off += n;
            r->len -= n;
            left -= (int64_t)n;
        }
        *body_len = h.content_length;
        return 0;
    }
    /* RFC 9112 §6.3 rule 8: no length: the body ends when the server closes.  Only a
     * close_notify ends it; a bare TCP close may be a truncation attack (RFC 8446 §6.1). */
    for (;;) {
        rc = emit(out, r->b + r->off, r->len);
        if (rc != 0) {
            return rc;
        }
        *body_len += (int64_t)r->len;
        r->off = 0;
        r->len = 0;
        rc = mmtls_ep_read(ep, r->b, sizeof(r->b));
        if (rc == 0) {
            return 0;
        }
        if (rc < 0) {
            fprintf(stderr, PROG ": body ended without close_notify: %s\n", mmtls_strerror(rc));
            return rc;
        }
        r->len = (size_t)rc;
    }
}

/* SSLKEYLOGFILE (NSS key log format): the secrets of this process's sessions, for
 * mmtls-keyagent or Wireshark.  The file is opened once, appended to, one line per write. */
static FILE *keylog_fp;

static void keylog_cb(const SSL *ssl, const char *line)
{
    (void)ssl;
    if (keylog_fp != NULL)
        fprintf(keylog_fp, "%s\n", line);
}

static SSL_CTX *make_ctx(const struct opts *o)
{
    const char *klf = getenv("SSLKEYLOGFILE");
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int rc;

    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        mmtls_https_perror(PROG, "SSL_CTX_new", MMTLS_E_CRYPTO);
        goto out_free;
    }
    if (o->cafile != NULL ? SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1
                          : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        mmtls_https_perror(PROG, o->cafile != NULL ? o->cafile : "default CA paths", MMTLS_E_IO);
        goto out_free;
    }
    SSL_CTX_set_verify(ctx, o->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    if (klf != NULL && klf[0] != '\0') {
        keylog_fp = fopen(klf, "a");
        if (keylog_fp == NULL) {
            mmtls_https_perror(PROG, klf, MMTLS_E_IO);
            goto out_free;
        }
        setvbuf(keylog_fp, NULL, _IOLBF, 0);
        SSL_CTX_set_keylog_callback(ctx, keylog_cb); /* before the libraries chain theirs */
    }
    /* Key sharing with a middlebox (docs/DEPLOY.md): configured by MMTLS_KEYSERVER & co. */
    if (getenv("MMTLS_KEYSERVER") != NULL) {
        rc = mmtls_keyshare_attach(ctx, NULL);
        if (rc != 0) {
            mmtls_https_perror(PROG, "mmtls_keyshare_attach", rc);
            goto out_free;
        }
    }
    if (o->tag) {
        rc = mmtls_ep_ctx_enable(ctx);
        if (rc != 0) {
            mmtls_https_perror(PROG, "mmtls_ep_ctx_enable", rc);
            goto out_free;
        }
    }
    if (o->suites != NULL && SSL_CTX_set_ciphersuites(ctx, o->suites) != 1) {
        mmtls_https_perror(PROG, "--ciphersuites", MMTLS_E_INVAL);
        goto out_free;
    }
    return ctx;
out_free:
    SSL_CTX_free(ctx);
    return NULL;
}

/* The server name: SNI and certificate name check (RFC 6066 §3: no SNI for an address). */
static int set_peer_name(SSL *ssl, const char *host)
{
    struct in6_addr a6;

    if (inet_pton(AF_INET, host, &a6) == 1 || inet_pton(AF_INET6, host, &a6) == 1) {
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 ? 0 : MMTLS_E_INVAL;
    }
    if (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1) {
        return MMTLS_E_INVAL;
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The request loop on an established endpoint.  0 when every response was a full 200. */
static int run_requests(const struct opts *o, struct mmtls_ep *ep, FILE *out, int64_t *bytes)
{
    static struct rbuf r;
    char req[2560];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\nUser-Agent: " PROG
                     "\r\nAccept: */*\r\n\r\n",
                     o->path, strchr(o->host, ':') != NULL ? "[" : "", o->host,
                     strchr(o->host, ':') != NULL ? "]" : "", strcmp(o->port, "443") ? ":" : "",
                     strcmp(o->port, "443") ? o->port : "");
    if (n < 0 || (size_t)n >= sizeof(req)) {
        return MMTLS_E_INTERNAL;
    }
    *bytes = 0;
    for (long i = 0; i < o->requests; i++) {
        unsigned status = 0;
        bool keep = false;
        int64_t blen = 0;
        int rc = mmtls_ep_write(ep, req, (size_t)n);
        if (rc < 0) {
            fprintf(stderr, PROG ": request %ld: write: %s\n", i + 1, mmtls_strerror(rc));
            return rc;
        }
        rc = get_response(ep, &r, out, &status, &keep, &blen);
        if (rc != 0) {
            fprintf(stderr, PROG ": request %ld failed\n", i + 1);
            return rc;
        }
        *bytes += blen;
        if (o->verbose && o->requests <= 10) {
            fprintf(stderr, PROG ": %s -> %u, %jd bytes\n", o->path, status, (intmax_t)blen);
        }
        if (status != 200) {
            fprintf(stderr, PROG ": %s: HTTP status %u\n", o->path, status);
            return MMTLS_E_NOTFOUND;
        }
        if (!keep && i + 1 < o->requests) {
            fprintf(stderr, PROG ": the server closed the connection after request %ld of %ld\n",
                    i + 1, o->requests);
            return MMTLS_E_IO;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"no-private-tag", no_argument, NULL, 'N'},
        {"cafile", required_argument, NULL, 'C'},
        {"insecure", no_argument, NULL, 'k'},
        {"connect", required_argument, NULL, 'c'},
        {"ciphersuites", required_argument, NULL, 'S'},
        {"requests", required_argument, NULL, 'n'},
        {"output", required_argument, NULL, 'o'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct opts o = {.tag = true, .requests = 1};
    struct mmtls_ep *ep = NULL;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    FILE *out = stdout;
    int fd = -1, opt, rc, ret = 1;
    char chost[256], cport[16];
    int64_t bytes = 0;
    double t0, t1, t2;

    while ((opt = getopt_long(argc, argv, "kn:o:vh", lopts, NULL)) != -1) {
        switch (opt) {
        case 'N': o.tag = false; break;
        case 'C': o.cafile = optarg; break;
        case 'k': o.insecure = true; break;
        case 'c': o.connect = optarg; break;
        case 'S': o.suites = optarg; break;
        case 'o': o.out = optarg; break;
        case 'v': o.verbose = true; break;
        case 'n': {
            char *end;
            o.requests = strtol(optarg, &end, 10);
            if (*end != '\0' || o.requests < 1 || o.requests > REQUESTS_MAX) {
                fprintf(stderr, PROG ": -n wants 1..%ld\n", REQUESTS_MAX);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return 2;
    }
    if (parse_url(argv[optind], &o) != 0) {
        fprintf(stderr, PROG ": bad URL '%s' (want https://name[:port]/path)\n", argv[optind]);
        return 2;
    }
    if (o.connect != NULL) {
        if (mmtls_https_split_hostport(o.connect, chost, sizeof(chost), cport, sizeof(cport)) !=
            0) {
            fprintf(stderr, PROG ": --connect wants HOST:PORT, not '%s'\n", o.connect);
            return 2;
        }
    } else {
        memcpy(chost, o.host, sizeof(chost));
        memcpy(cport, o.port, sizeof(cport));
    }
    signal(SIGPIPE, SIG_IGN);
    if (o.out != NULL) {
        out = fopen(o.out, "wb");
        if (out == NULL) {
            fprintf(stderr, PROG ": %s: %s\n", o.out, strerror(errno));
            return 1;
        }
    }
    ctx = make_ctx(&o);
    if (ctx == NULL) {
        goto out_close;
    }
    t0 = now_s();
    fd = tcp_connect(chost, cport);
    if (fd < 0) {
        goto out_close;
    }
    ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || set_peer_name(ssl, o.host) != 0) {
        mmtls_https_perror(PROG, "SSL_new", MMTLS_E_CRYPTO);
        goto out_close;
    }
    if (SSL_connect(ssl) != 1) {
        long vr = SSL_get_verify_result(ssl);
        mmtls_https_perror(PROG, "TLS handshake failed", MMTLS_E_CRYPTO);
        if (vr != X509_V_OK) {
            fprintf(stderr, PROG ": certificate: %s\n", X509_verify_cert_error_string(vr));
        }
        goto out_close;
    }
    rc = mmtls_ep_new(&ep, ssl);
    if (rc != 0) {
        mmtls_https_perror(PROG, "mmtls_ep_new", rc);
        goto out_close;
    }
    if (o.verbose) {
        fprintf(stderr, "private_tag=%s\n", mmtls_ep_private_tag(ep) ? "yes" : "no");
        fprintf(stderr, PROG ": %s %s\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
    }
    t1 = now_s();
    rc = run_requests(&o, ep, out, &bytes);
    t2 = now_s();
    if (rc == 0) {
        rc = mmtls_ep_shutdown(ep);
        if (rc != 0 && o.verbose) {
            fprintf(stderr, PROG ": close_notify: %s\n", mmtls_strerror(rc));
        }
        ret = 0;
    }
    if (o.verbose) {
        struct mmtls_ep_stats st;
        mmtls_ep_get_stats(ep, &st);
        fprintf(stderr,
                PROG ": requests=%ld bytes=%jd handshake_s=%.6f requests_s=%.6f "
                     "records_sent=%" PRIu64 " records_received=%" PRIu64 "\n",
                o.requests, (intmax_t)bytes, t1 - t0, t2 - t1, st.records_sent,
                st.records_received);
    }
out_close:
    mmtls_ep_free(ep);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0) {
        close(fd);
    }
    if (out != stdout && out != NULL && fclose(out) != 0) {
        fprintf(stderr, PROG ": %s: %s\n", o.out, strerror(errno));
        ret = 1;
    }
    if (out == stdout && fflush(stdout) != 0) {
        ret = 1;
    }
    return ret;
}
