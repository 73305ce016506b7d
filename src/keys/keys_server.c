/* keys — the key server (docs/keyproto.md): one thread running an epoll loop over a listening
 * socket and the key channels.  Each channel is a non-blocking TLS 1.3 connection whose client
 * presented a certificate issued by the operator's client CA; accepted KEYS / BYPASS messages are
 * handed to the delivery callback on this thread, then wiped.
 *
 * Timers: a coarse sweep every KSRV_SWEEP_MS walks the channel list (bounded by max_channels) and
 * closes handshakes and idle channels past their deadline, as nginx's lazy timers do at a coarser
 * grain.  Signals: the thread runs with every signal blocked, so a write to a reset peer (SIGPIPE
 * raised by OpenSSL's socket BIO, which uses write()) stays pending on this thread instead of
 * killing the process; the process-wide SIGPIPE disposition is left alone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "keys/keys.h"

#define KSRV_SWEEP_MS 100
#define KSRV_MAX_EVENTS 64
#define KSRV_ACCEPT_BURST 64 /* connections taken per wakeup of the listener */
#define KSRV_READ_BURST 32   /* SSL_reads per channel per turn before the others get theirs */
#define KSRV_MAX_NAT 64      /* allow_nat entries */
#define KSRV_CN_MAX 64       /* RFC 5280 Appendix A: ub-common-name */
#define KSRV_BACKLOG 128

#define KSRV_DEF_MAX_CHANNELS 4096
#define KSRV_DEF_HS_TIMEOUT_MS 5000
#define KSRV_DEF_IDLE_TIMEOUT_MS 120000

/* One --key-allow-nat entry: a certificate subject CN or a subnet of peer addresses. */
struct ksrv_nat {
    bool is_cn;
    char cn[KSRV_CN_MAX + 1];
    uint8_t ip_version; /* 4 or 6 */
    uint8_t prefix;     /* bits */
    uint8_t addr[16];
};

struct ksrv_chan {
    struct ksrv_chan *prev, *next; /* borrowed: links of the server's channel list */
    int fd;
    SSL *ssl; /* owned */
    bool established;
    bool more;       /* read burst cut short: serviced again without waiting for epoll */
    bool owner_any;  /* allowed by allow_nat to send keys for other client addresses */
    uint32_t events; /* epoll interest now */
    uint64_t deadline_ms;
    uint8_t ip_version; /* peer address, IPv4-mapped IPv6 normalised to IPv4 */
    uint8_t ip[16];
    char peer[INET6_ADDRSTRLEN + 8]; /* "addr:port" / "[addr]:port", for logs */
    size_t len;                      /* bytes in buf */
    uint8_t buf[MMTLS_KP_MAX_MSG];   /* at most one message: nothing more is ever buffered */
};

/* Counters are written by the server thread and read by any thread. */
struct ksrv_counters {
    _Atomic uint64_t accepted, rejected_tls, rejected_full, closed_idle, closed_malformed;
    _Atomic uint64_t keys, bypass, keepalive, rejected_owner, rejected_master, messages_malformed;
    _Atomic uint64_t channels;
};

struct mmtls_keyserver {
    SSL_CTX *ctx; /* owned */
    int lfd, efd, epfd;
    uint16_t port;
    pthread_t thread;
    bool listen_paused; /* accept hit a descriptor/memory limit: retried at the next sweep */
    bool full_logged;   /* one "full" line per sweep period */
    bool accept_master;
    uint32_t max_channels, hs_timeout_ms, idle_timeout_ms;
    mmtls_key_deliver_cb deliver;
    void *deliver_ud; /* borrowed: the caller's */
    struct ksrv_nat nat[KSRV_MAX_NAT];
    uint32_t n_nat;
    struct ksrv_chan *head; /* owned: every open channel */
    uint32_t nchan, nmore;
    struct ksrv_counters c;
};

/* Markers for the epoll data of the two descriptors that are not channels. */
static char ksrv_tag_listen, ksrv_tag_stop;

static void ctr_inc(_Atomic uint64_t *v)
{
    atomic_fetch_add_explicit(v, 1, memory_order_relaxed);
}

/* Drains OpenSSL's error queue; the first error's text goes to buf. */
static const char *ssl_errstr(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();

    if (e == 0) {
        snprintf(buf, cap, "unknown error");
    } else {
        ERR_error_string_n(e, buf, cap);
    }
    ERR_clear_error();
    return buf;
}

/* Why an SSL I/O call failed: OpenSSL's error queue, else errno for SSL_ERROR_SYSCALL. */
static const char *io_reason(int e, int saved_errno, char *buf, size_t cap)
{
    if (ERR_peek_error() != 0) {
        return ssl_errstr(buf, cap);
    }
    if (e == SSL_ERROR_SYSCALL && saved_errno != 0) {
        snprintf(buf, cap, "%s", strerror(saved_errno));
    } else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
        snprintf(buf, cap, "connection closed by peer");
    } else {
        snprintf(buf, cap, "SSL error %d", e);
    }
    return buf;
}

/* ------------------------------------------------------------------------------------------ */
/* Addresses                                                                                   */

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Normalises an address to (4, a.b.c.d) when it is IPv4-mapped IPv6 (RFC 4291 §2.5.5.2). */
static void addr_norm(uint8_t *ver, uint8_t ip[16])
{
    if (*ver == 6 && memcmp(ip, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
        memmove(ip, ip + 12, 4);
        memset(ip + 4, 0, 12);
        *ver = 4;
    }
}

static bool addr_eq(uint8_t va, const uint8_t *a, uint8_t vb, const uint8_t *b)
{
    return va == vb && memcmp(a, b, va == 4 ? 4 : 16) == 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *net, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;

    if (memcmp(a, net, whole) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (net[whole] & mask);
}

static void addr_str(uint8_t ver, const uint8_t *ip, char *out, size_t cap)
{
    char a[INET6_ADDRSTRLEN];

    if (inet_ntop(ver == 4 ? AF_INET : AF_INET6, ip, a, sizeof(a)) == NULL) {
        snprintf(a, sizeof(a), "?");
    }
    snprintf(out, cap, "%s", a);
}

/* Fills the channel's peer fields from an accepted address. */
static void chan_set_peer(struct ksrv_chan *c, const struct sockaddr_storage *ss)
{
    char a[INET6_ADDRSTRLEN];
    unsigned port = 0;

    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        c->ip_version = 6;
        memcpy(c->ip, &s6->sin6_addr, 16);
        port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        c->ip_version = 4;
        memcpy(c->ip, &s4->sin_addr, 4);
        port = ntohs(s4->sin_port);
    }
    addr_norm(&c->ip_version, c->ip);
    addr_str(c->ip_version, c->ip, a, sizeof(a));
    snprintf(c->peer, sizeof(c->peer), c->ip_version == 4 ? "%s:%u" : "[%s]:%u", a, port);
}

/* "ADDR:PORT" or "[V6]:PORT", numeric only. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *sl)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_s, *h;
    size_t hlen;
    char *end;
    unsigned long port;

    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (close == NULL || close[1] != ':') {
            return MMTLS_E_INVAL;
        }
        h = spec + 1;
        hlen = (size_t)(close - h);
        port_s = close + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (colon == NULL) {
            return MMTLS_E_INVAL;
        }
        h = spec;
        hlen = (size_t)(colon - spec);
        port_s = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof(host) || *port_s < '0' || *port_s > '9') {
        return MMTLS_E_INVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    errno = 0;
    port = strtoul(port_s, &end, 10);
    if (errno != 0 || *end != '\0' || port > 65535) {
        return MMTLS_E_INVAL;
    }
    memset(ss, 0, sizeof(*ss));
    if (spec[0] != '[') {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
            return MMTLS_E_INVAL;
        }
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *sl = sizeof(*s4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) {
            return MMTLS_E_INVAL;
        }
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *sl = sizeof(*s6);
    }
    return 0;
}

/* "cn:NAME", or a CIDR "ADDR/BITS", or a plain address (a host: /32 or /128). */
static int parse_nat(const char *spec, struct ksrv_nat *n)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash;
    size_t hlen;

    memset(n, 0, sizeof(*n));
    if (strncmp(spec, "cn:", 3) == 0) {
        size_t len = strlen(spec + 3);
        if (len == 0 || len > KSRV_CN_MAX) {
            return MMTLS_E_INVAL;
        }
        n->is_cn = true;
        memcpy(n->cn, spec + 3, len + 1);
        return 0;
    }
    slash = strchr(spec, '/');
    hlen = slash != NULL ? (size_t)(slash - spec) : strlen(spec);
    if (hlen == 0 || hlen >= sizeof(host)) {
        return MMTLS_E_INVAL;
    }
    memcpy(host, spec, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, n->addr) == 1) {
        n->ip_version = 4;
    } else if (inet_pton(AF_INET6, host, n->addr) == 1) {
        n->ip_version = 6;
    } else {
        return MMTLS_E_INVAL;
    }
    unsigned long bits = n->ip_version == 4 ? 32 : 128;
    if (slash != NULL) {
        char *end;
        errno = 0;
        bits = strtoul(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || errno != 0 || *end != '\0' ||
            bits > (n->ip_version == 4 ? 32u : 128u)) {
            return MMTLS_E_INVAL;
        }
    }
    /* Peers are normalised to IPv4 (RFC 4291 §2.5.5.2), so is an IPv4-mapped subnet; one wider
     * than the mapped range would mix families and is refused. */
    if (n->ip_version == 6 && memcmp(n->addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
        if (bits < 96) {
            return MMTLS_E_INVAL;
        }
        addr_norm(&n->ip_version, n->addr);
        bits -= 96;
    }
    n->prefix = (uint8_t)bits;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Channels                                                                                    */

static void chan_interest(struct mmtls_keyserver *s, struct ksrv_chan *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};

    if (c->events == events) {
        return;
    }
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) {
        c->events = events;
    }
}

static void chan_set_more(struct mmtls_keyserver *s, struct ksrv_chan *c, bool more)
{
    if (c->more != more) {
        c->more = more;
        if (more) {
            s->nmore++;
        } else {
            s->nmore--;
        }
    }
}

/* Closes and frees one channel; wipes what its buffer held. */
static void chan_close(struct mmtls_keyserver *s, struct ksrv_chan *c)
{
    chan_set_more(s, c, false);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->head = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    /* SSL_OP_CLEANSE_PLAINTEXT makes SSL_free cleanse the record buffers too. */
    SSL_free(c->ssl);
    close(c->fd);         /* also drops it from the epoll set */
    mmtls_secmem_free(c); /* wipes what its buffer held */
    s->nchan--;
    atomic_store_explicit(&s->c.channels, s->nchan, memory_order_relaxed);
}

/* True when the subject of cert holds a CN equal to name (compared as UTF-8 bytes, so an
 * embedded NUL cannot make a longer CN match). */
static bool cert_has_cn(X509 *cert, const char *name)
{
    X509_NAME *subj = X509_get_subject_name(cert);
    int n = subj != NULL ? X509_NAME_entry_count(subj) : 0;
    size_t nlen = strlen(name);
    int idx = -1;

    for (int i = 0; i < n; i++) { /* capped by the entry count */
        idx = X509_NAME_get_index_by_NID(subj, NID_commonName, idx);
        if (idx < 0) {
            break;
        }
        ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
        unsigned char *u = NULL;
        int ulen = d != NULL ? ASN1_STRING_to_UTF8(&u, d) : -1;
        bool eq = ulen >= 0 && (size_t)ulen == nlen && memcmp(u, name, nlen) == 0;
        OPENSSL_free(u);
        if (eq) {
            return true;
        }
    }
    return false;
}

/* --key-allow-nat: may this peer send keys for client addresses other than its own? */
static bool chan_nat_allowed(const struct mmtls_keyserver *s, const struct ksrv_chan *c)
{
    X509 *cert = SSL_get0_peer_certificate(c->ssl); /* borrowed from the SSL */

    for (uint32_t i = 0; i < s->n_nat; i++) {
        const struct ksrv_nat *n = &s->nat[i];
        if (n->is_cn) {
            if (cert != NULL && cert_has_cn(cert, n->cn)) {
                return true;
            }
        } else if (n->ip_version == c->ip_version && prefix_match(c->ip, n->addr, n->prefix)) {
            return true;
        }
    }
    return false;
}

/* Why a handshake failed, in OpenSSL's words (docs/keyproto.md "What the server checks" 1). */
static const char *hs_reason(SSL *ssl, int e, int saved_errno, char *buf, size_t cap)
{
    long v = SSL_get_verify_result(ssl);
    unsigned long err;

    if (v != X509_V_OK) {
        ERR_clear_error();
        return X509_verify_cert_error_string(v);
    }
    err = ERR_peek_error();
    if (err != 0) {
        const char *r = ERR_reason_error_string(err);
        if (r != NULL) {
            snprintf(buf, cap, "%s", r);
            ERR_clear_error();
            return buf;
        }
        return ssl_errstr(buf, cap);
    }
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && saved_errno == 0)) {
        return "connection closed by peer";
    }
    if (e == SSL_ERROR_SYSCALL) {
        return strerror(saved_errno);
    }
    snprintf(buf, cap, "SSL error %d", e);
    return buf;
}

static void chan_read(struct mmtls_keyserver *s, struct ksrv_chan *c);

static void chan_established(struct mmtls_keyserver *s, struct ksrv_chan *c)
{
    c->established = true;
    c->owner_any = chan_nat_allowed(s, c);
    c->deadline_ms = mmtls_mono_ns() / 1000000u + s->idle_timeout_ms;
    ctr_inc(&s->c.accepted);
    mmtls_log(MMTLS_LOG_INFO, "key channel from %s: open%s", c->peer,
              c->owner_any ? " (allowed to send keys for other addresses)" : "");
    /* A client may send its first message right behind its Finished: OpenSSL may hold it
     * already, and epoll would not report it again. */
    chan_read(s, c);
}

static void chan_handshake(struct mmtls_keyserver *s, struct ksrv_chan *c)
{
    char buf[256];
    int r, e, saved_errno;

    ERR_clear_error();
    errno = 0;
    r = SSL_do_handshake(c->ssl);
    saved_errno = errno;
    if (r == 1) {
        chan_established(s, c);
        return;
    }
    e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        chan_interest(s, c, EPOLLIN);
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        chan_interest(s, c, EPOLLOUT);
        return;
    }
    mmtls_log(MMTLS_LOG_WARN, "key channel from %s: TLS handshake failed: %s", c->peer,
              hs_reason(c->ssl, e, saved_errno, buf, sizeof(buf)));
    ctr_inc(&s->c.rejected_tls);
    chan_close(s, c);
}

/* Answers a KEEPALIVE.  Never blocks: when the socket is full, OpenSSL keeps the record in its
 * write buffer and the next answer (the same four bytes, so a valid retry) pushes it out.
 * Returns -1 when the channel is dead. */
static int chan_keepalive(struct ksrv_chan *c)
{
    static const uint8_t ka[MMTLS_KP_HDR_LEN] = {MMTLS_KP_VERSION, MMTLS_KP_KEEPALIVE, 0, 0};
    char buf[256];
    int r, e, saved_errno;

    ERR_clear_error();
    errno = 0;
    r = SSL_write(c->ssl, ka, (int)sizeof(ka));
    saved_errno = errno;
    if (r > 0) {
        return 0;
    }
    e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        return 0;
    }
    mmtls_log(MMTLS_LOG_INFO, "key channel from %s: cannot answer KEEPALIVE: %s", c->peer,
              io_reason(e, saved_errno, buf, sizeof(buf)));
    ERR_clear_error();
    return -1;
}

static void log_malformed(struct mmtls_keyserver *s, const struct ksrv_chan *c, const uint8_t *p,
                          int rc)
{
    /* The header is there: the parser only fails once it has 4 bytes. */
    uint16_t blen = mmtls_be16(p + 2);

    if (rc == MMTLS_E_UNSUPPORTED || p[0] != MMTLS_KP_VERSION) {
        mmtls_log(MMTLS_LOG_WARN, "key channel from %s: unsupported version %u, closing", c->peer,
                  p[0]);
    } else if (p[1] < MMTLS_KP_KEYS || p[1] > MMTLS_KP_KEEPALIVE) {
        mmtls_log(MMTLS_LOG_WARN, "key channel from %s: unknown message type %u, closing", c->peer,
                  p[1]);
    } else if (blen > MMTLS_KP_MAX_BODY) {
        mmtls_log(MMTLS_LOG_WARN, "key channel from %s: message length %u over %u, closing",
                  c->peer, blen, MMTLS_KP_MAX_BODY);
    } else {
        mmtls_log(MMTLS_LOG_WARN,
                  "key channel from %s: malformed message (type %u, %u bytes), "
                  "closing",
                  c->peer, p[1], blen);
    }
    ctr_inc(&s->c.messages_malformed);
    ctr_inc(&s->c.closed_malformed);
}

/* Applies the server's checks to one KEYS / BYPASS and delivers it.  Returns -1 to close the
 * channel, 0 otherwise (a refused message is logged and counted, the channel stays). */
static int chan_deliver(struct mmtls_keyserver *s, struct ksrv_chan *c,
                        const struct mmtls_kp_msg *m, uint64_t recv_ns)
{
    struct mmtls_keyset ks;
    struct mmtls_key_delivery d;
    char a[INET6_ADDRSTRLEN];
    int rc;

    /* docs/keyproto.md "What the server checks" 3: a tuple naming another client address than
     * the peer is refused at once, unless the peer may speak for others (NAT). */
    if ((m->flags & MMTLS_KP_F_TUPLE) != 0 && !c->owner_any) {
        uint8_t tv = m->tuple.ip_version;
        uint8_t tip[16];
        memcpy(tip, m->tuple.client_ip, sizeof(tip));
        addr_norm(&tv, tip);
        if (!addr_eq(tv, tip, c->ip_version, c->ip)) {
            addr_str(tv, tip, a, sizeof(a));
            mmtls_log(MMTLS_LOG_WARN,
                      "key channel from %s: %s for client address %s refused "
                      "(not the peer)",
                      c->peer, m->type == MMTLS_KP_KEYS ? "KEYS" : "BYPASS", a);
            ctr_inc(&s->c.rejected_owner);
            return 0;
        }
    }
    memset(&ks, 0, sizeof(ks));
    if (m->type == MMTLS_KP_KEYS) {
        for (uint8_t i = 0; i < m->n && i < MMTLS_KP_MAX_SECRETS; i++) {
            if (m->kind[i] == MMTLS_KP_MASTER && !s->accept_master) {
                mmtls_log(MMTLS_LOG_WARN,
                          "key channel from %s: master secret refused "
                          "(--no-master-secrets)",
                          c->peer);
                ctr_inc(&s->c.rejected_master);
                return 0;
            }
        }
        rc = mmtls_kp_to_keyset(m, &ks);
        if (rc != 0) {
            mmtls_keyset_wipe(&ks);
            mmtls_log(MMTLS_LOG_WARN,
                      "key channel from %s: KEYS with inconsistent secrets (%s), "
                      "closing",
                      c->peer, mmtls_strerror(rc));
            ctr_inc(&s->c.messages_malformed);
            ctr_inc(&s->c.closed_malformed);
            return -1;
        }
    }
    ks.owner_any = c->owner_any;
    ks.owner_ip_version = c->ip_version;
    memcpy(ks.owner_ip, c->ip, sizeof(ks.owner_ip));

    memset(&d, 0, sizeof(d));
    d.type = m->type;
    memcpy(d.client_random, m->client_random, sizeof(d.client_random));
    d.ks = &ks;
    d.has_tuple = (m->flags & MMTLS_KP_F_TUPLE) != 0;
    if (d.has_tuple) {
        d.tuple = m->tuple;
    }
    d.sni = m->type == MMTLS_KP_BYPASS ? m->sni : NULL;
    d.recv_ns = recv_ns;
    s->deliver(s->deliver_ud, &d);
    mmtls_keyset_wipe(&ks);
    ctr_inc(m->type == MMTLS_KP_KEYS ? &s->c.keys : &s->c.bypass);
    return 0;
}

/* Parses and handles every complete message in the channel buffer; keeps a partial one.
 * Returns -1 when the channel must be closed. */
static int chan_messages(struct mmtls_keyserver *s, struct ksrv_chan *c, uint64_t recv_ns)
{
    struct mmtls_kp_msg m;
    size_t off = 0, used;
    int rc = 0, r;

    /* Each message is at least MMTLS_KP_HDR_LEN bytes: at most MAX_MSG / HDR_LEN turns. */
    while (off < c->len) {
        r = mmtls_kp_parse(c->buf + off, c->len - off, &m, &used);
        if (r == MMTLS_AGAIN) {
            if (used > sizeof(c->buf)) { /* the parser caps the length; never reached */
                MMTLS_DEBUG_ASSERT(0);
                log_malformed(s, c, c->buf + off, MMTLS_E_MALFORMED);
                rc = -1;
            }
            break;
        }
        if (r != 0 || used < MMTLS_KP_HDR_LEN || used > c->len - off) {
            log_malformed(s, c, c->buf + off, r);
            mmtls_kp_msg_wipe(&m);
            rc = -1;
            break;
        }
        off += used;
        /* A complete message restarts the idle clock; a trickle of partial bytes does not. */
        c->deadline_ms = recv_ns / 1000000u + s->idle_timeout_ms;
        if (m.type == MMTLS_KP_KEEPALIVE) {
            ctr_inc(&s->c.keepalive);
            r = chan_keepalive(c);
        } else {
            r = chan_deliver(s, c, &m, recv_ns);
        }
        mmtls_kp_msg_wipe(&m);
        if (r != 0) {
            rc = -1;
            break;
        }
    }
    if (off > 0) {
        memmove(c->buf, c->buf + off, c->len - off);
        mmtls_wipe(c->buf + (c->len - off), off);
        c->len -= off;
    }
    return rc;
}

/* Reads what the channel has, up to a burst; leaves the channel marked for another turn when the
 * burst is used up. */
static void chan_read(struct mmtls_keyserver *s, struct ksrv_chan *c)
{
    char buf[256];
    int r, e, saved_errno;

    for (int i = 0; i < KSRV_READ_BURST; i++) {
        if (c->len >= sizeof(c->buf)) { /* a whole message always parses or fails */
            MMTLS_DEBUG_ASSERT(0);
            chan_close(s, c);
            return;
        }
        ERR_clear_error();
        errno = 0;
        r = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
        saved_errno = errno;
        if (r > 0) {
            c->len += (size_t)r;
            if (chan_messages(s, c, mmtls_mono_ns()) != 0) {
                chan_close(s, c);
                return;
            }
            continue;
        }
        e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            chan_set_more(s, c, false);
            chan_interest(s, c, EPOLLIN);
            return;
        }
        if (e == SSL_ERROR_WANT_WRITE) { /* e.g. answering a KeyUpdate */
            chan_set_more(s, c, false);
            chan_interest(s, c, EPOLLOUT);
            return;
        }
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 &&
                                           (saved_errno == 0 || saved_errno == ECONNRESET))) {
            if (c->len > 0) {
                mmtls_log(MMTLS_LOG_WARN,
                          "key channel from %s: closed by peer in the middle "
                          "of a message (%zu bytes dropped)",
                          c->peer, c->len);
            } else {
                mmtls_log(MMTLS_LOG_INFO, "key channel from %s: closed by peer", c->peer);
            }
        } else {
            mmtls_log(MMTLS_LOG_WARN, "key channel from %s: read failed: %s", c->peer,
                      io_reason(e, saved_errno, buf, sizeof(buf)));
        }
        ERR_clear_error();
        chan_close(s, c);
        return;
    }
    chan_set_more(s, c, true);
}

static void chan_event(struct mmtls_keyserver *s, struct ksrv_chan *c)
{
    if (!c->established) {
        chan_handshake(s, c);
    } else {
        chan_read(s, c);
    }
}

static void chan_open(struct mmtls_keyserver *s, int fd, const struct sockaddr_storage *ss,
                      uint64_t now_ms)
{
    /* the channel buffers a message with secrets: secret memory (out of core dumps) */
    struct ksrv_chan *c = mmtls_secmem_calloc(1, sizeof(*c));
    struct epoll_event ev = {.events = EPOLLIN};
    char buf[256];

    if (c == NULL) {
        mmtls_log(MMTLS_LOG_WARN, "key server: out of memory, connection dropped");
        close(fd);
        return;
    }
    c->fd = fd;
    chan_set_peer(c, ss);
    ERR_clear_error();
    c->ssl = SSL_new(s->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
        mmtls_log(MMTLS_LOG_WARN, "key channel from %s: %s", c->peer, ssl_errstr(buf, sizeof(buf)));
        goto out_free;
    }
    SSL_set_accept_state(c->ssl);
    ev.data.ptr = c;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        mmtls_log(MMTLS_LOG_WARN, "key channel from %s: epoll: %s", c->peer, strerror(errno));
        goto out_free;
    }
    c->events = EPOLLIN;
    c->deadline_ms = now_ms + s->hs_timeout_ms;
    c->next = s->head;
    if (s->head != NULL) {
        s->head->prev = c;
    }
    s->head = c;
    s->nchan++;
    atomic_store_explicit(&s->c.channels, s->nchan, memory_order_relaxed);
    return;

out_free:
    SSL_free(c->ssl);
    close(fd);
    mmtls_secmem_free(c);
}

static void listen_pause(struct mmtls_keyserver *s, bool pause)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &ksrv_tag_listen};

    if (pause == s->listen_paused) {
        return;
    }
    if (epoll_ctl(s->epfd, pause ? EPOLL_CTL_DEL : EPOLL_CTL_ADD, s->lfd, &ev) == 0) {
        s->listen_paused = pause;
    }
}

static void ksrv_accept(struct mmtls_keyserver *s, uint64_t now_ms)
{
    for (int i = 0; i < KSRV_ACCEPT_BURST; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        int one = 1;

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) {
                continue;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Level-triggered: without a pause the loop would spin on the backlog. */
                mmtls_log(MMTLS_LOG_WARN, "key server: accept: %s", strerror(errno));
                listen_pause(s, true);
            }
            return;
        }
        /* small messages both ways (KEEPALIVE answers): no Nagle */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (s->nchan >= s->max_channels) {
            /* Full: the oldest channel still in its TLS handshake (an unauthenticated peer)
             * makes room, so that a flood of idle connections cannot lock authenticated
             * clients out; established channels are never closed for a newcomer. */
            struct ksrv_chan *old = NULL;
            for (struct ksrv_chan *c = s->head; c != NULL; c = c->next) {
                if (!c->established)
                    old = c; /* the list is newest first: the last one is the oldest */
            }
            if (old != NULL) {
                ctr_inc(&s->c.rejected_tls);
                chan_close(s, old);
            }
        }
        if (s->nchan >= s->max_channels) {
            close(fd);
            ctr_inc(&s->c.rejected_full);
            if (!s->full_logged) {
                mmtls_log(MMTLS_LOG_WARN, "key server: %u channels open, connection refused",
                          s->nchan);
                s->full_logged = true;
            }
            continue;
        }
        chan_open(s, fd, &ss, now_ms);
    }
}

/* Closes handshakes and idle channels past their deadline.  O(channels) every KSRV_SWEEP_MS. */
static void ksrv_sweep(struct mmtls_keyserver *s, uint64_t now_ms)
{
    struct ksrv_chan *c = s->head, *next;

    for (; c != NULL; c = next) {
        next = c->next;
        if (now_ms < c->deadline_ms) {
            continue;
        }
        if (!c->established) {
            mmtls_log(MMTLS_LOG_WARN, "key channel from %s: TLS handshake failed: timeout",
                      c->peer);
            ctr_inc(&s->c.rejected_tls);
        } else {
            mmtls_log(MMTLS_LOG_INFO, "key channel from %s: idle, closing", c->peer);
            ctr_inc(&s->c.closed_idle);
        }
        chan_close(s, c);
    }
    s->full_logged = false;
    listen_pause(s, false);
}

static void *ksrv_main(void *arg)
{
    struct mmtls_keyserver *s = arg;
    struct epoll_event evs[KSRV_MAX_EVENTS];
    uint64_t now = mmtls_mono_ns() / 1000000u;
    uint64_t next_sweep = now + KSRV_SWEEP_MS;
    bool stop = false;

    while (!stop) {
        int timeout = 0;
        if (s->nmore == 0) {
            timeout = next_sweep > now ? (int)(next_sweep - now) : 0;
        }
        int n = epoll_wait(s->epfd, evs, KSRV_MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            mmtls_log(MMTLS_LOG_ERR, "key server: epoll_wait: %s", strerror(errno));
            break;
        }
        now = mmtls_mono_ns() / 1000000u;
        /* Only the channel an event names is closed while handling it, so the pointers of the
         * later events of this batch stay valid. */
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &ksrv_tag_stop) {
                stop = true;
            } else if (p == &ksrv_tag_listen) {
                ksrv_accept(s, now);
            } else {
                chan_event(s, p);
            }
        }
        if (stop) {
            break;
        }
        if (s->nmore > 0) {
            struct ksrv_chan *c, *next;
            for (c = s->head; c != NULL; c = next) {
                next = c->next;
                if (c->more) {
                    chan_read(s, c);
                }
            }
        }
        now = mmtls_mono_ns() / 1000000u;
        if (now >= next_sweep) {
            ksrv_sweep(s, now);
            next_sweep = now + KSRV_SWEEP_MS;
        }
    }
    while (s->head != NULL) {
        chan_close(s, s->head);
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Setup                                                                                       */

static int ctx_setup(struct mmtls_keyserver *s, const struct mmtls_keyserver_opts *o, char *err,
                     size_t cap)
{
    char buf[256];
    STACK_OF(X509_NAME) * names;

    ERR_clear_error();
    s->ctx = SSL_CTX_new(TLS_server_method());
    if (s->ctx == NULL) {
        mmtls_errf(err, cap, "key server: SSL_CTX_new: %s", ssl_errstr(buf, sizeof(buf)));
        return MMTLS_E_CRYPTO;
    }
    /* docs/keyproto.md: the key channel is TLS 1.3 only. */
    if (SSL_CTX_set_min_proto_version(s->ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(s->ctx, TLS1_3_VERSION) != 1) {
        mmtls_errf(err, cap, "key server: cannot restrict to TLS 1.3: %s",
                   ssl_errstr(buf, sizeof(buf)));
        return MMTLS_E_CRYPTO;
    }
    if (SSL_CTX_use_certificate_chain_file(s->ctx, o->cert) != 1) {
        mmtls_errf(err, cap, "cannot load %s: %s", o->cert, ssl_errstr(buf, sizeof(buf)));
        return MMTLS_E_IO;
    }
    if (SSL_CTX_use_PrivateKey_file(s->ctx, o->key, SSL_FILETYPE_PEM) != 1) {
        mmtls_errf(err, cap, "cannot load %s: %s", o->key, ssl_errstr(buf, sizeof(buf)));
        return MMTLS_E_IO;
    }
    if (SSL_CTX_check_private_key(s->ctx) != 1) {
        mmtls_errf(err, cap, "%s does not match %s: %s", o->key, o->cert,
                   ssl_errstr(buf, sizeof(buf)));
        return MMTLS_E_INVAL;
    }
    /* The client CA is the only trust anchor: the default paths are never loaded. */
    if (SSL_CTX_load_verify_locations(s->ctx, o->client_ca, NULL) != 1) {
        mmtls_errf(err, cap, "cannot load %s: %s", o->client_ca, ssl_errstr(buf, sizeof(buf)));
        return MMTLS_E_IO;
    }
    names = SSL_load_client_CA_file(o->client_ca);
    if (names == NULL) {
        mmtls_errf(err, cap, "cannot load %s: %s", o->client_ca, ssl_errstr(buf, sizeof(buf)));
        return MMTLS_E_IO;
    }
    SSL_CTX_set_client_CA_list(s->ctx, names); /* takes ownership */
    SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    /* One connection per client process, never resumed: no tickets, no cache (a resumed session
     * would skip the certificate check's freshness). */
    SSL_CTX_set_session_cache_mode(s->ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_set_num_tickets(s->ctx, 0) != 1) {
        mmtls_errf(err, cap, "key server: SSL_CTX_set_num_tickets: %s",
                   ssl_errstr(buf, sizeof(buf)));
        return MMTLS_E_CRYPTO;
    }
    /* Plaintext (secrets) is cleansed from OpenSSL's buffers once handed over; idle channels
     * keep no buffers; the KEEPALIVE answer is a static buffer that may be retried. */
    SSL_CTX_set_options(s->ctx, SSL_OP_CLEANSE_PLAINTEXT | SSL_OP_NO_RENEGOTIATION);
    /* A client process that exits closes its channel without close_notify; messages are
     * framed, so a truncation cannot cut one short unnoticed (a partial one is dropped). */
    SSL_CTX_set_options(s->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(s->ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return 0;
}

static int sock_setup(struct mmtls_keyserver *s, const char *listen_spec, char *err, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    int one = 1, zero = 0;

    if (parse_listen(listen_spec, &ss, &sl) != 0) {
        mmtls_errf(err, cap, "key server: bad listen address '%s' (ADDR:PORT or [V6]:PORT)",
                   listen_spec);
        return MMTLS_E_INVAL;
    }
    s->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->lfd < 0) {
        mmtls_errf(err, cap, "key server: socket: %s", strerror(errno));
        return MMTLS_E_IO;
    }
    if (setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
        mmtls_errf(err, cap, "key server: SO_REUSEADDR: %s", strerror(errno));
        return MMTLS_E_IO;
    }
    /* [::] also takes IPv4 clients (as IPv4-mapped peers, normalised in chan_set_peer). */
    if (ss.ss_family == AF_INET6 &&
        setsockopt(s->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0) {
        mmtls_errf(err, cap, "key server: IPV6_V6ONLY: %s", strerror(errno));
        return MMTLS_E_IO;
    }
    if (bind(s->lfd, (struct sockaddr *)&ss, sl) != 0) {
        mmtls_errf(err, cap, "key server: cannot listen on %s: %s", listen_spec, strerror(errno));
        return MMTLS_E_IO;
    }
    if (listen(s->lfd, KSRV_BACKLOG) != 0) {
        mmtls_errf(err, cap, "key server: listen %s: %s", listen_spec, strerror(errno));
        return MMTLS_E_IO;
    }
    sl = sizeof(ss);
    if (getsockname(s->lfd, (struct sockaddr *)&ss, &sl) != 0) {
        mmtls_errf(err, cap, "key server: getsockname: %s", strerror(errno));
        return MMTLS_E_IO;
    }
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

static int loop_setup(struct mmtls_keyserver *s, char *err, size_t cap)
{
    struct epoll_event ev = {.events = EPOLLIN};

    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->epfd < 0 || s->efd < 0) {
        mmtls_errf(err, cap, "key server: epoll/eventfd: %s", strerror(errno));
        return MMTLS_E_IO;
    }
    ev.data.ptr = &ksrv_tag_listen;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev) != 0) {
        mmtls_errf(err, cap, "key server: epoll_ctl: %s", strerror(errno));
        return MMTLS_E_IO;
    }
    ev.data.ptr = &ksrv_tag_stop;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->efd, &ev) != 0) {
        mmtls_errf(err, cap, "key server: epoll_ctl: %s", strerror(errno));
        return MMTLS_E_IO;
    }
    return 0;
}

static void ksrv_free(struct mmtls_keyserver *s)
{
    if (s->epfd >= 0) {
        close(s->epfd);
    }
    if (s->efd >= 0) {
        close(s->efd);
    }
    if (s->lfd >= 0) {
        close(s->lfd);
    }
    SSL_CTX_free(s->ctx);
    free(s);
}

int mmtls_keyserver_start(struct mmtls_keyserver **out, const struct mmtls_keyserver_opts *o,
                          char *err, size_t err_cap)
{
    struct mmtls_keyserver_opts opts;
    struct mmtls_keyserver *s;
    sigset_t all, old;
    int rc;

    if (err != NULL && err_cap > 0) {
        err[0] = '\0';
    }
    if (out == NULL || o == NULL || o->sz == 0) {
        mmtls_errf(err, err_cap, "key server: no options");
        return MMTLS_E_INVAL;
    }
    *out = NULL;
    /* Options structs start with their size (libbpf's OPTS): fields past it take defaults. */
    memset(&opts, 0, sizeof(opts));
    opts.accept_master = true;
    memcpy(&opts, o, MMTLS_MIN(o->sz, sizeof(opts)));
    if (opts.listen == NULL || opts.cert == NULL || opts.key == NULL || opts.client_ca == NULL ||
        opts.deliver == NULL) {
        mmtls_errf(err, err_cap,
                   "key server: listen, cert, key, client_ca and deliver are required");
        return MMTLS_E_INVAL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        mmtls_errf(err, err_cap, "key server: out of memory");
        return MMTLS_E_NOMEM;
    }
    s->lfd = s->efd = s->epfd = -1;
    s->accept_master = opts.accept_master;
    s->max_channels = opts.max_channels != 0 ? opts.max_channels : KSRV_DEF_MAX_CHANNELS;
    s->hs_timeout_ms =
        opts.handshake_timeout_ms != 0 ? opts.handshake_timeout_ms : KSRV_DEF_HS_TIMEOUT_MS;
    s->idle_timeout_ms =
        opts.idle_timeout_ms != 0 ? opts.idle_timeout_ms : KSRV_DEF_IDLE_TIMEOUT_MS;
    s->deliver = opts.deliver;
    s->deliver_ud = opts.deliver_ud;
    for (size_t i = 0; opts.allow_nat != NULL && opts.allow_nat[i] != NULL; i++) {
        if (i >= KSRV_MAX_NAT) {
            mmtls_errf(err, err_cap, "key server: more than %u allow-nat entries", KSRV_MAX_NAT);
            rc = MMTLS_E_LIMIT;
            goto out_free;
        }
        if (parse_nat(opts.allow_nat[i], &s->nat[i]) != 0) {
            mmtls_errf(err, err_cap, "key server: bad allow-nat entry '%s' (cn:NAME or ADDR/BITS)",
                       opts.allow_nat[i]);
            rc = MMTLS_E_INVAL;
            goto out_free;
        }
        s->n_nat = (uint32_t)i + 1;
    }
    rc = ctx_setup(s, &opts, err, err_cap);
    if (rc != 0) {
        goto out_free;
    }
    rc = sock_setup(s, opts.listen, err, err_cap);
    if (rc != 0) {
        goto out_free;
    }
    rc = loop_setup(s, err, err_cap);
    if (rc != 0) {
        goto out_free;
    }
    /* The thread starts with every signal blocked (see the file comment: SIGPIPE). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&s->thread, NULL, ksrv_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        mmtls_errf(err, err_cap, "key server: pthread_create: %s", strerror(rc));
        rc = MMTLS_E_NOMEM;
        goto out_free;
    }
    mmtls_log(MMTLS_LOG_INFO, "key server listening on %s (port %u)", opts.listen, s->port);
    *out = s;
    return 0;

out_free:
    ksrv_free(s);
    return rc;
}

uint16_t mmtls_keyserver_port(const struct mmtls_keyserver *s)
{
    return s != NULL ? s->port : 0;
}

void mmtls_keyserver_get_stats(struct mmtls_keyserver *s, struct mmtls_keyserver_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (s == NULL) {
        return;
    }
#define KSRV_LOAD(f) st->f = atomic_load_explicit(&s->c.f, memory_order_relaxed)
    KSRV_LOAD(accepted);
    KSRV_LOAD(rejected_tls);
    KSRV_LOAD(rejected_full);
    KSRV_LOAD(closed_idle);
    KSRV_LOAD(closed_malformed);
    KSRV_LOAD(keys);
    KSRV_LOAD(bypass);
    KSRV_LOAD(keepalive);
    KSRV_LOAD(rejected_owner);
    KSRV_LOAD(rejected_master);
    KSRV_LOAD(messages_malformed);
    KSRV_LOAD(channels);
#undef KSRV_LOAD
}

void mmtls_keyserver_stop(struct mmtls_keyserver *s)
{
    uint64_t one = 1;
    ssize_t w;

    if (s == NULL) {
        return;
    }
    do {
        w = write(s->efd, &one, sizeof(one));
    } while (w < 0 && errno == EINTR);
    pthread_join(s->thread, NULL);
    ksrv_free(s);
}
