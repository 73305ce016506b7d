/* Tests of the endpoint library (include/mmtls/endpoint.h) with real OpenSSL clients and
 * servers over socketpairs, the server in a thread: negotiation (both, one side, TLS 1.2),
 * data both ways in every suite, KeyUpdate both ways, close_notify, tampering by a relay that
 * flips one byte of tag2 or of the ciphertext, non-blocking sockets with poll(), key log
 * chaining with mmtls_keyshare_attach in both orders, and the TAG2 flag of the KEYS message.
 * Truncated and corrupted records are covered by test_keyshare_tag2.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <mmtls/endpoint.h>

#include "keyshare_int.h"

static EVP_PKEY *g_key;
static X509 *g_cert;

/* A self-signed P-256 certificate, made once. */
static int make_cert(void **state)
{
    X509_NAME *n;

    (void)state;
    g_key = EVP_EC_gen("P-256");
    g_cert = X509_new();
    if (g_key == NULL || g_cert == NULL) {
        return -1;
    }
    n = X509_get_subject_name(g_cert);
    if (ASN1_INTEGER_set(X509_get_serialNumber(g_cert), 1) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(g_cert), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(g_cert), 86400) == NULL ||
        X509_set_pubkey(g_cert, g_key) != 1 ||
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"mmtls.test", -1,
                                   -1, 0) != 1 ||
        X509_set_issuer_name(g_cert, n) != 1 || X509_sign(g_cert, g_key, EVP_sha256()) <= 0) {
        return -1;
    }
    return 0;
}

static int free_cert(void **state)
{
    (void)state;
    X509_free(g_cert);
    EVP_PKEY_free(g_key);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* One connection: client in the test thread, server in a thread, optional relay between.      */

struct conn;
typedef void (*srv_fn)(struct conn *k); /* the server's part after mmtls_ep_new */

struct opts {
    bool cli_ep, srv_ep;    /* mmtls_ep_ctx_enable on that side */
    const char *cli_suites; /* SSL_CTX_set_ciphersuites on the client after enable */
    int cli_max;            /* SSL_CTX_set_max_proto_version on the client, 0 none */
    int tamper;             /* relay: 0 none, 1 flip tag2, 2 flip ciphertext */
    srv_fn fn;
    SSL_CTX *cli_ctx; /* prepared client context (owned by the connection), or NULL */
};

struct conn {
    struct opts o;
    SSL_CTX *cctx, *sctx;
    SSL *c, *s;
    struct mmtls_ep *ce, *se;
    int cfd, sfd;
    int relay_a, relay_b; /* relay's ends: toward the client, toward the server */
    pthread_t th, relay;
    sem_t ready;
    atomic_int armed;
    /* what the server thread saw (no cmocka asserts off the test thread) */
    int srv_setup; /* 0, or the failing step */
    int srv_rc;
    struct mmtls_ep_stats srv_st;
    bool srv_tag2;
};

static void *srv_main(void *arg)
{
    struct conn *k = arg;

    if (SSL_accept(k->s) != 1) {
        k->srv_setup = 1;
    } else if (mmtls_ep_new(&k->se, k->s) != 0) {
        k->srv_setup = 2;
    } else {
        k->srv_tag2 = mmtls_ep_private_tag(k->se);
    }
    sem_post(&k->ready);
    if (k->srv_setup == 0 && k->o.fn != NULL) {
        k->o.fn(k);
    }
    if (k->se != NULL) {
        mmtls_ep_get_stats(k->se, &k->srv_st);
    }
    return NULL;
}

static bool read_full(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);

        if (r <= 0) {
            return false;
        }
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static bool write_full(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);

        if (r <= 0) {
            return false;
        }
        p += r;
        n -= (size_t)r;
    }
    return true;
}

/* Forwards both ways; client-to-server whole records, flipping one byte of the first record
 * after k->armed is set. */
static void *relay_main(void *arg)
{
    static uint8_t rec[5 + 65536];
    struct conn *k = arg;
    bool a_open = true, b_open = true, done = false;

    while (a_open || b_open) {
        struct pollfd p[2] = {{.fd = a_open ? k->relay_a : -1, .events = POLLIN},
                              {.fd = b_open ? k->relay_b : -1, .events = POLLIN}};

        if (poll(p, 2, 10000) <= 0) {
            break;
        }
        if (a_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            size_t len;

            if (!read_full(k->relay_a, rec, 5)) {
                a_open = false;
                shutdown(k->relay_b, SHUT_WR);
                continue;
            }
            len = ((size_t)rec[3] << 8) | rec[4];
            if (!read_full(k->relay_a, rec + 5, len)) {
                a_open = false;
                shutdown(k->relay_b, SHUT_WR);
                continue;
            }
            if (atomic_load(&k->armed) && !done) {
                done = true;
                rec[k->o.tamper == 1 ? 5 + len - 1 : 5] ^= 0x40;
            }
            (void)write_full(k->relay_b, rec, 5 + len);
        }
        if (b_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            uint8_t buf[4096];
            ssize_t r = read(k->relay_b, buf, sizeof(buf));

            if (r <= 0) {
                b_open = false;
                shutdown(k->relay_a, SHUT_WR);
                continue;
            }
            (void)write_full(k->relay_a, buf, (size_t)r);
        }
    }
    return NULL;
}

/* Handshake on both sides and mmtls_ep_new; the server thread then runs o->fn. */
static void conn_open(struct conn *k, const struct opts *o)
{
    int fd[2];

    memset(k, 0, sizeof(*k));
    k->o = *o;
    k->relay_a = k->relay_b = -1;
    k->cctx = o->cli_ctx != NULL ? o->cli_ctx : SSL_CTX_new(TLS_client_method());
    k->sctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(k->cctx);
    assert_non_null(k->sctx);
    assert_int_equal(SSL_CTX_use_certificate(k->sctx, g_cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(k->sctx, g_key), 1);
    if (o->cli_ep) {
        assert_int_equal(mmtls_ep_ctx_enable(k->cctx), 0);
        assert_int_equal(mmtls_ep_ctx_enable(k->cctx), 0); /* idempotent */
    }
    if (o->srv_ep) {
        assert_int_equal(mmtls_ep_ctx_enable(k->sctx), 0);
    }
    if (o->cli_suites != NULL) {
        assert_int_equal(SSL_CTX_set_ciphersuites(k->cctx, o->cli_suites), 1);
    }
    if (o->cli_max != 0) {
        assert_int_equal(SSL_CTX_set_max_proto_version(k->cctx, o->cli_max), 1);
    }
    k->c = SSL_new(k->cctx);
    k->s = SSL_new(k->sctx);
    assert_non_null(k->c);
    assert_non_null(k->s);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
    k->cfd = fd[0];
    k->sfd = fd[1];
    if (o->tamper != 0) {
        k->relay_a = fd[1];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
        k->relay_b = fd[0];
        k->sfd = fd[1];
        assert_int_equal(pthread_create(&k->relay, NULL, relay_main, k), 0);
    }
    assert_int_equal(SSL_set_fd(k->c, k->cfd), 1);
    assert_int_equal(SSL_set_fd(k->s, k->sfd), 1);
    assert_int_equal(sem_init(&k->ready, 0, 0), 0);
    assert_int_equal(pthread_create(&k->th, NULL, srv_main, k), 0);
    assert_int_equal(SSL_connect(k->c), 1);
    assert_int_equal(mmtls_ep_new(&k->ce, k->c), 0);
    assert_int_equal(sem_wait(&k->ready), 0);
    assert_int_equal(k->srv_setup, 0);
}

/* Joins the server (and relay), frees everything. */
static void conn_close(struct conn *k)
{
    assert_int_equal(pthread_join(k->th, NULL), 0);
    mmtls_ep_free(k->ce);
    mmtls_ep_free(k->se);
    SSL_free(k->c);
    SSL_free(k->s);
    SSL_CTX_free(k->cctx);
    SSL_CTX_free(k->sctx);
    close(k->cfd);
    close(k->sfd);
    if (k->o.tamper != 0) {
        assert_int_equal(pthread_join(k->relay, NULL), 0);
        close(k->relay_a);
        close(k->relay_b);
    }
    sem_destroy(&k->ready);
}

/* Server: echoes until close_notify (then answers it) or an error; "KU!" makes it send a
 * KeyUpdate(update_requested) before the echo. */
static void srv_echo(struct conn *k)
{
    static _Thread_local uint8_t buf[20000];
    int r, w;

    for (;;) {
        r = mmtls_ep_read(k->se, buf, sizeof(buf));
        if (r == 0) {
            k->srv_rc = mmtls_ep_shutdown(k->se);
            return;
        }
        if (r < 0) {
            k->srv_rc = r;
            return;
        }
        if (r == 3 && memcmp(buf, "KU!", 3) == 0) {
            w = mmtls_ep_key_update(k->se, true);
            if (w != 0) {
                k->srv_rc = w;
                return;
            }
        }
        w = mmtls_ep_write(k->se, buf, (size_t)r);
        if (w != r) {
            k->srv_rc = w < 0 ? w : -1000;
            return;
        }
    }
}

/* Server: one read, its result kept (the tamper tests). */
static void srv_read_once(struct conn *k)
{
    uint8_t buf[64];

    k->srv_rc = mmtls_ep_read(k->se, buf, sizeof(buf));
}

static void read_n(struct mmtls_ep *ep, uint8_t *p, size_t n)
{
    while (n > 0) {
        int r = mmtls_ep_read(ep, p, n);

        if (r <= 0) {
            fail_msg("read: %d", r);
        }
        p += r;
        n -= (size_t)r;
    }
}

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n);

    assert_non_null(p);
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)(i * 31 + seed + (i >> 8));
    }
    return p;
}

static void echo(struct conn *k, size_t n)
{
    uint8_t *out = pattern(n, (unsigned)n), *in = malloc(n);

    assert_non_null(in);
    assert_int_equal(mmtls_ep_write(k->ce, out, n), (int)n);
    read_n(k->ce, in, n);
    assert_memory_equal(in, out, n);
    free(out);
    free(in);
}

/* close_notify both ways: the server's read returns 0 and it answers; so does ours. */
static void close_both(struct conn *k)
{
    uint8_t b[8];

    assert_int_equal(mmtls_ep_shutdown(k->ce), 0);
    assert_int_equal(mmtls_ep_read(k->ce, b, sizeof(b)), 0);
    assert_int_equal(mmtls_ep_read(k->ce, b, sizeof(b)), 0); /* remembered */
    conn_close(k);
    assert_int_equal(k->srv_rc, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Tests                                                                                       */

/* (1) (2) (3) (6): both, client only, server only, neither; data 1, 16384, 100000 bytes. */
static void test_negotiation_and_data(void **state)
{
    static const struct {
        bool cli, srv, tag2;
    } cases[] = {
        {true, true, true}, {true, false, false}, {false, true, false}, {false, false, false}};

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(cases); i++) {
        struct opts o = {.cli_ep = cases[i].cli, .srv_ep = cases[i].srv, .fn = srv_echo};
        struct mmtls_ep_stats st;
        struct conn k;

        conn_open(&k, &o);
        assert_int_equal(mmtls_ep_private_tag(k.ce), cases[i].tag2);
        assert_int_equal(k.srv_tag2, cases[i].tag2);
        assert_int_equal(mmtls_ep_ssl_has_tag2(k.c), cases[i].tag2);
        assert_int_equal(SSL_version(k.c), TLS1_3_VERSION);
        echo(&k, 1);
        echo(&k, 16384);
        echo(&k, 100000);
        mmtls_ep_get_stats(k.ce, &st);
        if (cases[i].tag2) {
            /* 1 + 1 + 7 records each way (100000 = 6 * 16384 + 1696) */
            assert_int_equal(st.records_sent, 9);
            assert_int_equal(st.records_received, 9);
        } else {
            assert_int_equal(st.records_sent, 0);
        }
        close_both(&k);
    }
}

/* TLS 1.2 ignores the extension: plain TLS; KeyUpdate does not exist there. */
static void test_tls12(void **state)
{
    struct opts o = {.cli_ep = true, .srv_ep = true, .cli_max = TLS1_2_VERSION, .fn = srv_echo};
    struct conn k;

    (void)state;
    conn_open(&k, &o);
    assert_int_equal(SSL_version(k.c), TLS1_2_VERSION);
    assert_false(mmtls_ep_private_tag(k.ce));
    assert_false(k.srv_tag2);
    echo(&k, 5000);
    assert_int_equal(mmtls_ep_key_update(k.ce, false), MMTLS_E_UNSUPPORTED);
    close_both(&k);
}

/* (4) each suite */
static void test_suites(void **state)
{
    static const struct {
        const char *name;
        uint16_t id;
    } suites[] = {{"TLS_AES_128_GCM_SHA256", 0x1301},
                  {"TLS_AES_256_GCM_SHA384", 0x1302},
                  {"TLS_CHACHA20_POLY1305_SHA256", 0x1303}};

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(suites); i++) {
        struct opts o = {
            .cli_ep = true, .srv_ep = true, .cli_suites = suites[i].name, .fn = srv_echo};
        struct conn k;

        conn_open(&k, &o);
        assert_true(mmtls_ep_private_tag(k.ce));
        assert_int_equal(SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(k.c)), suites[i].id);
        echo(&k, 1);
        echo(&k, 16384);
        echo(&k, 100000);
        close_both(&k);
    }
}

/* (5) KeyUpdate from the client with update_requested, then from the server; plain TLS too. */
static void test_key_update(void **state)
{
    (void)state;
    for (int tag2 = 1; tag2 >= 0; tag2--) {
        struct opts o = {.cli_ep = true, .srv_ep = tag2 != 0, .fn = srv_echo};
        uint8_t b[3];
        struct mmtls_ep_stats st;
        struct conn k;

        conn_open(&k, &o);
        assert_int_equal(mmtls_ep_private_tag(k.ce), tag2 != 0);
        echo(&k, 100);
        assert_int_equal(mmtls_ep_key_update(k.ce, true), 0);
        echo(&k, 20000); /* the server answered with its own KeyUpdate before this echo */
        assert_int_equal(mmtls_ep_write(k.ce, "KU!", 3), 3);
        read_n(k.ce, b, 3);
        assert_memory_equal(b, "KU!", 3);
        echo(&k, 30000); /* our answer went first */
        assert_int_equal(mmtls_ep_key_update(k.ce, false), 0);
        echo(&k, 1);
        mmtls_ep_get_stats(k.ce, &st);
        if (tag2) {
            assert_int_equal(st.key_updates_sent, 3);
            assert_int_equal(st.key_updates_received, 2);
        } else {
            assert_int_equal(st.key_updates_sent, 2);
        }
        close_both(&k);
        if (tag2) {
            assert_int_equal(k.srv_st.key_updates_sent, 2);
            assert_int_equal(k.srv_st.key_updates_received, 3);
            assert_int_equal(k.srv_st.tag1_failures + k.srv_st.tag2_failures, 0);
        }
    }
}

/* (7) a relay flips one byte of tag2, then of the ciphertext, of the first application
 * record: the server fails with MMTLS_E_AUTH and its alert reaches the client. */
static void test_tamper(void **state)
{
    (void)state;
    for (int t = 1; t <= 2; t++) {
        struct opts o = {.cli_ep = true, .srv_ep = true, .tamper = t, .fn = srv_read_once};
        uint8_t b[16];
        struct conn k;

        conn_open(&k, &o);
        assert_true(mmtls_ep_private_tag(k.ce));
        atomic_store(&k.armed, 1);
        assert_int_equal(mmtls_ep_write(k.ce, "hello", 5), 5);
        assert_int_equal(mmtls_ep_read(k.ce, b, sizeof(b)), MMTLS_E_PEER_ALERT);
        assert_int_equal(mmtls_ep_read(k.ce, b, sizeof(b)), MMTLS_E_PEER_ALERT);
        conn_close(&k);
        assert_int_equal(k.srv_rc, MMTLS_E_AUTH);
        assert_int_equal(k.srv_st.tag2_failures, t == 1 ? 1 : 0);
        assert_int_equal(k.srv_st.tag1_failures, t == 2 ? 1 : 0);
        assert_int_equal(k.srv_st.records_received, 0);
    }
}

/* (8) non-blocking sockets: 1 MB each way at the same time, driven by poll(). */
#define NB_TOTAL (1u << 20)
#define NB_CHUNK 100000u

static int nb_loop(struct mmtls_ep *ep, int fd, unsigned seed_out, unsigned seed_in)
{
    static _Thread_local uint8_t buf[40000];
    uint8_t *out = malloc(NB_TOTAL);
    size_t sent = 0, got = 0;
    int rc = 0, r;

    if (out == NULL) {
        return -2000;
    }
    for (size_t i = 0; i < NB_TOTAL; i++) {
        out[i] = (uint8_t)(i * 13 + seed_out);
    }
    while (sent < NB_TOTAL || got < NB_TOTAL) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < NB_TOTAL ? POLLOUT : 0)};

        if (poll(&p, 1, 10000) <= 0) {
            rc = -3000;
            break;
        }
        if (sent < NB_TOTAL) {
            size_t n = MMTLS_MIN(NB_CHUNK, NB_TOTAL - sent);

            r = mmtls_ep_write(ep, out + sent, n);
            if (r > 0) {
                sent += (size_t)r;
            } else if (r != MMTLS_EP_WANT_WRITE && r != MMTLS_EP_WANT_READ) {
                rc = r;
                break;
            }
        }
        for (;;) {
            r = mmtls_ep_read(ep, buf, sizeof(buf));
            if (r == MMTLS_EP_WANT_READ || r == MMTLS_EP_WANT_WRITE) {
                break;
            }
            if (r <= 0 || (size_t)r > NB_TOTAL - got) {
                rc = r < 0 ? r : -4000;
                goto out;
            }
            for (int i = 0; i < r; i++) {
                if (buf[i] != (uint8_t)((got + (size_t)i) * 13 + seed_in)) {
                    rc = -5000;
                    goto out;
                }
            }
            got += (size_t)r;
        }
    }
out:
    free(out);
    return rc;
}

static void srv_nb(struct conn *k)
{
    int fl = fcntl(k->sfd, F_GETFL);

    if (fl < 0 || fcntl(k->sfd, F_SETFL, fl | O_NONBLOCK) != 0) {
        k->srv_rc = -6000;
        return;
    }
    k->srv_rc = nb_loop(k->se, k->sfd, 2, 1);
}

static void test_nonblocking(void **state)
{
    (void)state;
    for (int tag2 = 1; tag2 >= 0; tag2--) {
        struct opts o = {.cli_ep = true, .srv_ep = tag2 != 0, .fn = srv_nb};
        struct mmtls_ep_stats st;
        struct conn k;
        int fl;

        conn_open(&k, &o);
        assert_int_equal(mmtls_ep_private_tag(k.ce), tag2 != 0);
        fl = fcntl(k.cfd, F_GETFL);
        assert_int_equal(fcntl(k.cfd, F_SETFL, fl | O_NONBLOCK), 0);
        assert_int_equal(nb_loop(k.ce, k.cfd, 1, 2), 0);
        mmtls_ep_get_stats(k.ce, &st);
        conn_close(&k);
        assert_int_equal(k.srv_rc, 0);
        if (tag2) {
            assert_true(st.records_sent >= NB_TOTAL / 16384);
        }
    }
}

/* Key log chaining: the application's callback still sees every line, whichever of
 * mmtls_keyshare_attach and mmtls_ep_ctx_enable comes first; the KEYS message of a tag2
 * session carries the TAG2 flag. */
static atomic_int app_lines;

static void app_cb(const SSL *ssl, const char *line)
{
    (void)ssl;
    (void)line;
    atomic_fetch_add(&app_lines, 1);
}

static void test_keylog_chaining(void **state)
{
    MMTLS_KEYSHARE_OPTS(ko, .keyserver = "127.0.0.1:1",
                        .flags = MMTLS_KEYSHARE_F_NO_ENV | MMTLS_KEYSHARE_F_NO_ATEXIT);
    struct mmtls_keyshare_stats ks = {.sz = sizeof(ks)};
    uint64_t sessions0;

    (void)state;
    mmtls_keyshare_stats(&ks);
    sessions0 = ks.sessions;
    for (int order = 0; order < 2; order++) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        struct opts o = {.srv_ep = true, .fn = srv_echo, .cli_ctx = ctx};
        struct conn k;

        assert_non_null(ctx);
        SSL_CTX_set_keylog_callback(ctx, app_cb);
        if (order == 0) {
            assert_int_equal(mmtls_keyshare_attach(ctx, &ko), 0);
            assert_int_equal(mmtls_ep_ctx_enable(ctx), 0);
        } else {
            assert_int_equal(mmtls_ep_ctx_enable(ctx), 0);
            assert_int_equal(mmtls_keyshare_attach(ctx, &ko), 0);
        }
        atomic_store(&app_lines, 0);
        conn_open(&k, &o);
        assert_true(mmtls_ep_private_tag(k.ce));
        assert_true(mmtls_ep_ssl_has_tag2(k.c));
        /* CLIENT/SERVER_HANDSHAKE_TRAFFIC_SECRET, CLIENT/SERVER_TRAFFIC_SECRET_0, EXPORTER */
        assert_int_equal(atomic_load(&app_lines), 5);
        echo(&k, 4000);
        close_both(&k);
        mmtls_keyshare_stats(&ks);
        assert_int_equal(ks.sessions, sessions0 + (uint64_t)order + 1);
        assert_int_equal(ks.dropped_other, 0);
    }
    mmtls_keyshare_shutdown();
}

/* The KEYS message says TAG2 exactly when the session negotiated it. */
static void test_keys_flag(void **state)
{
    struct mmtls_keyshare_tls13 t;
    uint8_t cr[32] = {1}, out[MMTLS_KP_MAX_MSG];
    struct mmtls_kp_msg m;
    size_t used;
    int len;

    (void)state;
    for (int tag2 = 0; tag2 <= 1; tag2++) {
        struct mmtls_secret *all[] = {&t.chs, &t.shs, &t.cts0, &t.sts0};

        memset(&t, 0, sizeof(t));
        for (size_t i = 0; i < MMTLS_ARRAY_SIZE(all); i++) {
            all[i]->len = 32;
            memset(all[i]->b, (int)(i + 1), 32);
        }
        t.have = MMTLS_KEYSHARE_TLS13_COMPLETE;
        t.tag2 = tag2 != 0;
        len = mmtls_keyshare_build_tls13(&t, cr, 0x0304, 0x1301, NULL, out, sizeof(out));
        assert_true(len > 0);
        assert_int_equal(mmtls_kp_parse(out, (size_t)len, &m, &used), 0);
        assert_int_equal((m.flags & MMTLS_KP_F_TAG2) != 0, tag2 != 0);
        mmtls_kp_msg_wipe(&m);
    }
}

/* mmtls_ep_new before the handshake. */
static void test_new_errors(void **state)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    struct mmtls_ep *ep = (struct mmtls_ep *)ctx;
    SSL *ssl;

    (void)state;
    assert_non_null(ctx);
    assert_int_equal(mmtls_ep_ctx_enable(ctx), 0);
    ssl = SSL_new(ctx);
    assert_non_null(ssl);
    assert_int_equal(mmtls_ep_new(&ep, ssl), MMTLS_E_INVAL);
    assert_null(ep);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiation_and_data),
        cmocka_unit_test(test_tls12),
        cmocka_unit_test(test_suites),
        cmocka_unit_test(test_key_update),
        cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_nonblocking),
        cmocka_unit_test(test_keylog_chaining),
        cmocka_unit_test(test_keys_flag),
        cmocka_unit_test(test_new_errors),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, make_cert, free_cert);
}
