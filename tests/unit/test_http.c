/* Unit tests for http: HTTP/1.x framing, buffers, normalisation, depth and skipping.
 * Messages are written the way curl sends and nginx answers; every case is replayed at every
 * split point of each direction and must give the same transcript as the unsplit run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <zlib.h>

#include "http_test_collect.h"

#define S(x) (const uint8_t *)(x), sizeof(x) - 1

/* ------------------------------------------------------------------------------------------ */
/* Normalisation tables                                                                        */

static void test_uri_normalize(void **state)
{
    static const struct {
        const char *in, *out;
    } t[] = {
        {"/", "/"},
        {"/a/b/c", "/a/b/c"},
        {"/a/./b", "/a/b"},
        {"/a/../b", "/b"},
        {"/a/b/..", "/a/"},
        {"/a/b/.", "/a/b/"},
        {"/../../x", "/x"},                     /* ".." never climbs above the root */
        {"//a///b//", "/a/b/"},                 /* runs of '/' collapse */
        {"/%7euser/%41%42", "/~user/AB"},       /* unreserved decoded */
        {"/a%2fb%20c%2541", "/a%2fb%20c%2541"}, /* reserved and '%' kept */
        {"/%2e%2e/%2E/x", "/x"},                /* decoded dots are dot segments */
        {"/a?x=/../y&b=%41", "/a?x=/../y&b=A"}, /* query: only %XX of unreserved */
        {"/a/..?q", "/?q"},
        {"http://Example.com:80/a/../b?c", "/b?c"}, /* absolute-form */
        {"https://h", "/"},
        {"http://h?q=1", "/?q=1"},
        {"*", "*"},
        {"example.com:443", "example.com:443"}, /* authority-form left alone */
        {"/%", "/%"},
        {"/%4", "/%4"},
        {"/%zz", "/%zz"},
        {"/.", "/"},
        {"/..", "/"},
        {"/...", "/..."},
        {"/a#frag/../x", "/a#frag/../x"},
    };
    uint8_t out[128];
    size_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t l = strlen(t[i].in);
        assert_int_equal(mmtls_http_uri_normalize((const uint8_t *)t[i].in, l, out, l, &n), 0);
        out[n] = 0;
        if (strcmp((char *)out, t[i].out) != 0)
            fail_msg("uri %s -> %s, want %s", t[i].in, out, t[i].out);
    }
    assert_int_equal(mmtls_http_uri_normalize((const uint8_t *)"/ab", 3, out, 2, &n),
                     MMTLS_E_INVAL);
    assert_int_equal(mmtls_http_uri_normalize(NULL, 0, NULL, 0, &n), 0);
    assert_int_equal(n, 0);
}

static void test_host_normalize(void **state)
{
    static const struct {
        const char *in, *out;
    } t[] = {
        {"Example.COM", "example.com"},
        {"example.com:443", "example.com"},
        {"  a.b  ", "a.b"},
        {"user:pw@Host:8080", "host"},
        {"[::1]:8443", "[::1]"},
        {"[FE80::1]", "[fe80::1]"},
        {"::1", "::1"},
        {"", ""},
        {"h:", "h"},
    };
    uint8_t out[64];
    size_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t l = strlen(t[i].in);
        assert_int_equal(mmtls_http_host_normalize((const uint8_t *)t[i].in, l, out, l, &n), 0);
        out[n] = 0;
        if (strcmp((char *)out, t[i].out) != 0)
            fail_msg("host '%s' -> '%s', want '%s'", t[i].in, out, t[i].out);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Replay harness                                                                              */

struct h1_case {
    const char *name;
    const uint8_t *req;
    size_t reqlen;
    const uint8_t *resp;
    size_t resplen;
    bool close;                /* close both directions at the end (client first) */
    const char *const *want;   /* lines that must be in the transcript (NULL-terminated) */
    const char *const *absent; /* substrings that must not be */
};

/* Feeds req split at a (and b) and resp split at c (and d); returns the transcript (owned). */
static char *replay(const struct mmtls_http_opts *o, const uint8_t *req, size_t reqlen, size_t a,
                    const uint8_t *resp, size_t resplen, size_t c, bool close,
                    struct mmtls_http_stats *st)
{
    struct coll col = {0};
    struct mmtls_http *h = coll_parser(&col, o);
    char *out;

    assert_non_null(h);
    coll_feed(h, MMTLS_HTTP_TO_SERVER, req, a);
    coll_feed(h, MMTLS_HTTP_TO_SERVER, req + a, reqlen - a);
    coll_feed(h, MMTLS_HTTP_TO_CLIENT, resp, c);
    coll_feed(h, MMTLS_HTTP_TO_CLIENT, resp + c, resplen - c);
    if (close) {
        mmtls_http_close(h, MMTLS_HTTP_TO_SERVER);
        mmtls_http_close(h, MMTLS_HTTP_TO_CLIENT);
    }
    if (st != NULL)
        *st = *mmtls_http_stats(h);
    mmtls_http_free(h);
    assert_int_equal(col.errors, 0);
    out = col.out != NULL ? strdup(col.out) : strdup("");
    coll_reset(&col);
    return out;
}

/* One byte at a time in both directions. */
static char *replay_bytewise(const uint8_t *req, size_t reqlen, const uint8_t *resp, size_t resplen,
                             bool close)
{
    struct coll col = {0};
    struct mmtls_http *h = coll_parser(&col, NULL);
    char *out;

    assert_non_null(h);
    for (size_t i = 0; i < reqlen; i++)
        coll_feed(h, MMTLS_HTTP_TO_SERVER, req + i, 1);
    for (size_t i = 0; i < resplen; i++)
        coll_feed(h, MMTLS_HTTP_TO_CLIENT, resp + i, 1);
    if (close) {
        mmtls_http_close(h, MMTLS_HTTP_TO_SERVER);
        mmtls_http_close(h, MMTLS_HTTP_TO_CLIENT);
    }
    mmtls_http_free(h);
    assert_int_equal(col.errors, 0);
    out = strdup(col.out != NULL ? col.out : "");
    coll_reset(&col);
    return out;
}

static void check_case(const struct h1_case *tc)
{
    char *ref = replay(NULL, tc->req, tc->reqlen, tc->reqlen, tc->resp, tc->resplen, tc->resplen,
                       tc->close, NULL);

    for (const char *const *w = tc->want; w != NULL && *w != NULL; w++) {
        if (strstr(ref, *w) == NULL)
            fail_msg("%s: missing line\n  %s\nin transcript:\n%s", tc->name, *w, ref);
    }
    for (const char *const *w = tc->absent; w != NULL && *w != NULL; w++) {
        if (strstr(ref, *w) != NULL)
            fail_msg("%s: unexpected '%s' in transcript:\n%s", tc->name, *w, ref);
    }
    /* RFC 9112 puts no constraint on segment boundaries: every split gives the same result */
    for (size_t a = 0; a <= tc->reqlen; a++) {
        char *t = replay(NULL, tc->req, tc->reqlen, a, tc->resp, tc->resplen, tc->resplen,
                         tc->close, NULL);
        if (strcmp(t, ref) != 0)
            fail_msg("%s: request split at %zu differs:\n%s\nvs\n%s", tc->name, a, t, ref);
        free(t);
    }
    for (size_t c = 0; c <= tc->resplen; c++) {
        char *t = replay(NULL, tc->req, tc->reqlen, tc->reqlen, tc->resp, tc->resplen, c, tc->close,
                         NULL);
        if (strcmp(t, ref) != 0)
            fail_msg("%s: response split at %zu differs:\n%s\nvs\n%s", tc->name, c, t, ref);
        free(t);
    }
    {
        char *t = replay_bytewise(tc->req, tc->reqlen, tc->resp, tc->resplen, tc->close);
        if (strcmp(t, ref) != 0)
            fail_msg("%s: bytewise differs:\n%s\nvs\n%s", tc->name, t, ref);
        free(t);
    }
    /* truncated at every offset, then closed: no crash, FIRST/LAST kept (checked by replay) */
    for (size_t a = 0; a <= tc->reqlen; a += 1 + tc->reqlen / 64)
        free(replay(NULL, tc->req, a, a, tc->resp, 0, 0, true, NULL));
    for (size_t c = 0; c <= tc->resplen; c++)
        free(replay(NULL, tc->req, tc->reqlen, tc->reqlen, tc->resp, c, c, true, NULL));
    free(ref);
}

/* ------------------------------------------------------------------------------------------ */
/* Cases                                                                                       */

/* curl 7.88 GET; nginx 1.22 200 with Content-Length */
static const char get_req[] = "GET /a/./b/../c//d%7euser?q=%41 HTTP/1.1\r\n"
                              "Host: Example.COM:443\r\n"
                              "User-Agent: curl/7.88.1\r\n"
                              "Accept: */*\r\n"
                              "Cookie: a=1\r\n"
                              "\r\n";
static const char get_resp[] = "HTTP/1.1 200 OK\r\n"
                               "Server: nginx/1.22.1\r\n"
                               "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 13\r\n"
                               "Connection: keep-alive\r\n"
                               "\r\n"
                               "Hello, world!";
static const char *const get_want[] = {
    "1 http.method=GET\n",
    "1 http.uri.raw=/a/./b/../c//d%7euser?q=%41\n",
    "1 http.uri=/a/c/d~user?q=A\n",
    "1 http.host=example.com\n",
    "1 http.user_agent=curl/7.88.1\n",
    "1 http.cookie=a=1\n",
    "1 http.request_header=Host: Example.COM:443\\r\\nUser-Agent: curl/7.88.1\\r\\n"
    "Accept: */*\\r\\n\n",
    "1 http.request_header.raw=Host: Example.COM:443\\r\\nUser-Agent: curl/7.88.1\\r\\n"
    "Accept: */*\\r\\nCookie: a=1\\r\\n\\r\\n\n",
    "1 http.stat_code=200\n",
    "1 http.response_header=Server: nginx/1.22.1\\r\\nDate: Mon, 01 Jan 2024 00:00:00 GMT\\r\\n"
    "Content-Type: text/plain\\r\\nContent-Length: 13\\r\\nConnection: keep-alive\\r\\n\n",
    "1 file_data=Hello, world!\n1 end\n",
    NULL,
};

/* keep-alive with pipelining: GET, HEAD, POST (Content-Length), PUT (chunked); the server
 * answers 100-continue first, then 200, 200 to HEAD (no body), 204, 304 */
static const char pipe_req[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                               "HEAD /2 HTTP/1.1\r\nHost: a\r\n\r\n"
                               "POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                               "\r\n" /* stray CRLF between messages (RFC 9112 §2.2) */
                               "PUT /4 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-T: 1\r\n\r\n";
static const char pipe_resp[] = "HTTP/1.1 100 Continue\r\n\r\n"
                                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                                "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
                                "HTTP/1.1 204 No Content\r\n\r\n"
                                "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n";
static const char *const pipe_want[] = {
    "1 http.uri=/1\n",
    "1 file_data=ok\n1 end\n",
    "2 http.method=HEAD\n",
    "2 http.stat_code=200\n",
    "2 end\n",
    "3 http.request_body=hello\n",
    "3 end\n",
    "4 http.request_body=abcde\n",
    "4 http.stat_code=304\n",
    "4 end\n",
    NULL,
};
static const char *const pipe_absent[] = {"2 file_data", "stat_code=100", "3 file_data", "aborted",
                                          NULL};

/* HTTP/1.0 response delimited by the connection close */
static const char eof_req[] = "GET /old HTTP/1.0\r\nHost: a\r\n\r\n";
static const char eof_resp[] = "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody until close";
static const char *const eof_want[] = {"1 file_data=body until close\n1 end\n", NULL};

/* absolute-form, userinfo, obs-fold, two Cookie fields, Set-Cookie, bad header line */
static const char misc_req[] = "GET http://User@Host.Example:8080/x/%2e%2e/y HTTP/1.1\r\n"
                               "Host: other\r\n"
                               "X-Fold: a\r\n"
                               "  b\r\n"
                               "Cookie: a=1\r\n"
                               "NoColonHere\r\n"
                               "Cookie: b=2\r\n"
                               "\r\n";
static const char misc_resp[] = "HTTP/1.1 302 Found\r\n"
                                "Set-Cookie: s=1\r\n"
                                "Location: /\r\n"
                                "Content-Length: 0\r\n"
                                "\r\n";
static const char *const misc_want[] = {
    "1 http.uri=/y\n",
    "1 http.host=host.example\n",
    "1 http.cookie=a=1; b=2\n",
    "1 http.request_header=Host: other\\r\\nX-Fold: a b\\r\\n\n",
    "1 http.cookie=s=1\n",
    "1 http.response_header=Location: /\\r\\nContent-Length: 0\\r\\n\n",
    "1 end\n",
    NULL,
};
static const char *const misc_absent[] = {"1 file_data", "response_header=Set-Cookie", NULL};

/* CONNECT: the tunnel is not parsed */
static const char connect_req[] = "CONNECT example.com:443 HTTP/1.1\r\n"
                                  "Host: example.com:443\r\n\r\n"
                                  "\x16\x03\x01\x00\x05hello";
static const char connect_resp[] = "HTTP/1.1 200 Connection established\r\n\r\n"
                                   "\x16\x03\x03\x00\x05world";
static const char *const connect_want[] = {"1 http.uri=example.com:443\n",
                                           "1 http.host=example.com\n", "1 end\n", NULL};
static const char *const connect_absent[] = {"2 ", "file_data", NULL};

/* 101 upgrade to websocket */
static const char ws_req[] = "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\n\r\n\x81\x85garbage";
static const char ws_resp[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
                              "\x81\x05hello";
static const char *const ws_want[] = {"1 http.stat_code=101\n", "1 end\n", NULL};
static const char *const ws_absent[] = {"file_data", "2 ", NULL};

static void test_h1_cases(void **state)
{
    const struct h1_case cases[] = {
        {"get", S(get_req), S(get_resp), false, get_want, NULL},
        {"pipeline", S(pipe_req), S(pipe_resp), false, pipe_want, pipe_absent},
        {"eof", S(eof_req), S(eof_resp), true, eof_want, NULL},
        {"misc", S(misc_req), S(misc_resp), false, misc_want, misc_absent},
        {"connect", S(connect_req), S(connect_resp), false, connect_want, connect_absent},
        {"upgrade", S(ws_req), S(ws_resp), false, ws_want, ws_absent},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_case(&cases[i]);
}

static void test_h1_counters(void **state)
{
    struct mmtls_http_stats st;
    char *t;

    (void)state;
    t = replay(NULL, S(connect_req), sizeof(connect_req) - 1, S(connect_resp),
               sizeof(connect_resp) - 1, false, &st);
    assert_int_equal(st.tunnels, 1);
    assert_int_equal(st.txns_done, 1);
    free(t);
    t = replay(NULL, S(pipe_req), sizeof(pipe_req) - 1, S(pipe_resp), sizeof(pipe_resp) - 1, false,
               &st);
    assert_int_equal(st.requests, 4);
    assert_int_equal(st.responses, 4);
    assert_int_equal(st.interim_responses, 1);
    assert_int_equal(st.txns_done, 4);
    free(t);
    t = replay(NULL, S(misc_req), sizeof(misc_req) - 1, S(misc_resp), sizeof(misc_resp) - 1, false,
               &st);
    assert_int_equal(st.obs_fold, 1);
    assert_int_equal(st.bad_header_line, 1);
    free(t);
}

/* ------------------------------------------------------------------------------------------ */
/* Compressed, chunked bodies                                                                  */

static size_t compress_buf(int wbits, const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    z_stream z = {0};
    size_t len;

    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    len = cap - z.avail_out;
    deflateEnd(&z);
    return len;
}

/* Writes "HTTP/1.1 200 OK\r\nContent-Encoding: <enc>\r\nTransfer-Encoding: chunked\r\n\r\n"
 * followed by body in chunks of 1, 2, 3... bytes, one chunk extension, and a trailer. */
static size_t chunked_response(const char *enc, const uint8_t *body, size_t n, uint8_t *out)
{
    size_t o = (size_t)sprintf((char *)out,
                               "HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n",
                               enc);
    size_t step = 1;

    for (size_t i = 0; i < n; i += step, step++) {
        size_t c = MMTLS_MIN(step, n - i);
        o += (size_t)sprintf((char *)out + o, i == 0 ? "%zx;name=\"v\"\r\n" : "%zX\r\n", c);
        memcpy(out + o, body + i, c);
        o += c;
        memcpy(out + o, "\r\n", 2);
        o += 2;
    }
    memcpy(out + o, "0\r\nX-Checksum: 1\r\n\r\n", 20);
    return o + 20;
}

static void test_h1_gzip_chunked(void **state)
{
    static const char text[] = "<html><body>EICAR-STANDARD-ANTIVIRUS-TEST-FILE "
                               "compressed and chunked, split everywhere</body></html>";
    static const struct {
        const char *enc;
        int wbits;
    } encs[] = {{"gzip", 15 + 16}, {"x-gzip", 15 + 16}, {"deflate", 15}, {"deflate", -15}};
    static const char req[] = "GET /gz HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n";
    char want[256];

    (void)state;
    snprintf(want, sizeof(want), "1 file_data=%s\n1 end\n", text);
    for (size_t e = 0; e < sizeof(encs) / sizeof(encs[0]); e++) {
        uint8_t z[512], resp[2048];
        size_t zl =
            compress_buf(encs[e].wbits, (const uint8_t *)text, sizeof(text) - 1, z, sizeof(z));
        size_t rl = chunked_response(encs[e].enc, z, zl, resp);
        const char *const w[] = {want, NULL};
        const struct h1_case tc = {encs[e].enc, S(req), resp, rl, false, w, NULL};

        check_case(&tc);
    }
    /* unknown coding: delivered as is, counted */
    {
        struct mmtls_http_stats st;
        uint8_t resp[512];
        size_t rl = chunked_response("br", (const uint8_t *)"xyz", 3, resp);
        char *t = replay(NULL, S(req), sizeof(req) - 1, resp, rl, rl, false, &st);
        assert_non_null(strstr(t, "1 file_data=xyz\n"));
        assert_int_equal(st.unsupported_encoding, 1);
        free(t);
    }
    /* corrupt gzip: counted, body ends truncated, the transaction still completes */
    {
        struct mmtls_http_stats st;
        uint8_t resp[512];
        size_t rl =
            chunked_response("gzip", (const uint8_t *)"\x1f\x8b\x08\x00garbage!!", 12, resp);
        char *t = replay(NULL, S(req), sizeof(req) - 1, resp, rl, rl, false, &st);
        assert_int_equal(st.decomp_errors, 1);
        assert_non_null(strstr(t, "1 end\n"));
        free(t);
    }
}

/* A gzip bomb stops at max_decompressed. */
static void test_h1_decomp_cap(void **state)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    uint8_t *zeros = memset(malloc(1 << 20), 'A', 1 << 20), z[8192], resp[9000];
    size_t zl = compress_buf(15 + 16, zeros, 1 << 20, z, sizeof(z));
    size_t rl = (size_t)sprintf((char *)resp,
                                "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                                "Content-Length: %zu\r\n\r\n",
                                zl);
    struct mmtls_http_opts o = {.sz = sizeof(o), .max_decompressed = 100000};
    struct mmtls_http_stats st;
    char *t;

    (void)state;
    memcpy(resp + rl, z, zl);
    rl += zl;
    t = replay(&o, S(req), sizeof(req) - 1, resp, rl, rl, false, &st);
    assert_int_equal(st.decomp_capped, 1);
    assert_non_null(strstr(t, "1 file_data T="));
    assert_non_null(strstr(t, "1 end\n"));
    free(t);
    free(zeros);
}

/* ------------------------------------------------------------------------------------------ */
/* Inspection depth and skipping                                                               */

struct body_count {
    size_t bytes;
    unsigned last, truncated, ends;
};

static void count_cb(void *ud, const struct mmtls_http_event *ev)
{
    struct body_count *bc = ud;

    if (ev->buf == MMTLS_HTTP_BUF_RESP_BODY) {
        bc->bytes += ev->len;
        bc->last += (ev->flags & MMTLS_HTTP_F_LAST) != 0;
        bc->truncated += (ev->flags & MMTLS_HTTP_F_TRUNCATED) != 0;
    }
    bc->ends += ev->buf == MMTLS_HTTP_TXN_END;
}

static void test_h1_depth_skip(void **state)
{
    static const char req[] =
        "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    static const char hdr_cl[] = "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n";
    static const char hdr_ch[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "30d40\r\n"; /* one 200000-byte chunk */
    static const char next[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop";
    uint8_t *body = malloc(200000);
    struct body_count bc;
    struct mmtls_http_cb cb = {.ud = &bc, .on_event = count_cb};
    struct mmtls_http *h;

    (void)state;
    memset(body, 'x', 200000);
    for (int chunked = 0; chunked < 2; chunked++) {
        const char *hd = chunked ? hdr_ch : hdr_cl;
        uint64_t n;

        memset(&bc, 0, sizeof(bc));
        assert_int_equal(mmtls_http_new(&h, NULL, &cb), 0);
        assert_int_equal(mmtls_http_feed(h, MMTLS_HTTP_TO_SERVER, S(req)), 0);
        assert_int_equal(mmtls_http_feed(h, MMTLS_HTTP_TO_CLIENT, (const uint8_t *)hd, strlen(hd)),
                         0);
        assert_int_equal(mmtls_http_skippable(h, MMTLS_HTTP_TO_CLIENT), 0);
        /* 70000 bytes fed: 65536 delivered, the rest of the body can be skipped */
        assert_int_equal(mmtls_http_feed(h, MMTLS_HTTP_TO_CLIENT, body, 70000), 0);
        assert_int_equal(bc.bytes, MMTLS_HTTP_DEFAULT_DEPTH);
        assert_int_equal(bc.last, 1);
        assert_int_equal(bc.truncated, 1);
        n = mmtls_http_skippable(h, MMTLS_HTTP_TO_CLIENT);
        assert_int_equal(n, 130000);
        assert_int_equal(mmtls_http_skip(h, MMTLS_HTTP_TO_CLIENT, n + 1), MMTLS_E_INVAL);
        assert_int_equal(mmtls_http_skip(h, MMTLS_HTTP_TO_CLIENT, 1000), 0);
        assert_int_equal(mmtls_http_skippable(h, MMTLS_HTTP_TO_CLIENT), 129000);
        /* records partly in the window are still fed */
        assert_int_equal(mmtls_http_feed(h, MMTLS_HTTP_TO_CLIENT, body, 9000), 0);
        assert_int_equal(mmtls_http_skip(h, MMTLS_HTTP_TO_CLIENT, 120000), 0);
        if (chunked) {
            assert_int_equal(bc.ends, 0);
            assert_int_equal(mmtls_http_feed(h, MMTLS_HTTP_TO_CLIENT, S("\r\n0\r\n\r\n")), 0);
        }
        assert_int_equal(bc.ends, 1);
        assert_int_equal(mmtls_http_skippable(h, MMTLS_HTTP_TO_CLIENT), 0);
        assert_int_equal(mmtls_http_feed(h, MMTLS_HTTP_TO_CLIENT, S(next)), 0);
        assert_int_equal(bc.ends, 2);
        assert_int_equal(bc.bytes, MMTLS_HTTP_DEFAULT_DEPTH + 3);
        assert_int_equal(mmtls_http_stats(h)->skipped_bytes, 121000);
        mmtls_http_free(h);
    }
    /* a configured depth, EOF-delimited body: everything after the depth is skippable */
    {
        struct mmtls_http_opts o = {.sz = sizeof(o), .resp_body_depth = 10};
        memset(&bc, 0, sizeof(bc));
        assert_int_equal(mmtls_http_new(&h, &o, &cb), 0);
        assert_int_equal(mmtls_http_feed(h, MMTLS_HTTP_TO_SERVER, S(req)), 0);
        assert_int_equal(mmtls_http_feed(h, MMTLS_HTTP_TO_CLIENT, S("HTTP/1.0 200 OK\r\n\r\n")), 0);
        assert_int_equal(mmtls_http_feed(h, MMTLS_HTTP_TO_CLIENT, body, 9), 0);
        assert_int_equal(mmtls_http_skippable(h, MMTLS_HTTP_TO_CLIENT), 0);
        assert_int_equal(mmtls_http_feed(h, MMTLS_HTTP_TO_CLIENT, body, 1), 0);
        assert_int_equal(mmtls_http_skippable(h, MMTLS_HTTP_TO_CLIENT), UINT64_MAX);
        assert_int_equal(bc.bytes, 10);
        mmtls_http_close(h, MMTLS_HTTP_TO_CLIENT);
        assert_int_equal(bc.ends, 2); /* txn 1 done, txn 2 aborted (no response) */
        assert_int_equal(mmtls_http_stats(h)->txns_aborted, 1);
        mmtls_http_free(h);
    }
    free(body);
}

/* ------------------------------------------------------------------------------------------ */
/* Limits and malformed input                                                                  */

static void test_h1_header_cap(void **state)
{
    struct mmtls_http_opts o = {.sz = sizeof(o), .max_header_block = 128};
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET /big HTTP/1.1\r\nHost: a\r\nX-Long: %0300d\r\nUser-Agent: late\r\n\r\n"
                     "GET /next HTTP/1.1\r\nHost: b\r\n\r\n",
                     0);
    struct mmtls_http_stats st;
    char *t;

    (void)state;
    t = replay(&o, (const uint8_t *)req, (size_t)n, (size_t)n, (const uint8_t *)"", 0, 0, false,
               &st);
    assert_int_equal(st.header_overflow, 1);
    assert_non_null(strstr(t, "1 http.request_header T=Host: a\\r\\nX-Long: 000"));
    assert_null(strstr(t, "late"));
    assert_non_null(strstr(t, "2 http.uri=/next\n"));
    free(t);
}

static void test_h1_pipeline_overflow(void **state)
{
    char req[64 * 40];
    size_t n = 0;
    struct mmtls_http_stats st;
    char *t;

    (void)state;
    for (int i = 0; i < 40; i++)
        n += (size_t)sprintf(req + n, "GET /%d HTTP/1.1\r\n\r\n", i);
    t = replay(NULL, (const uint8_t *)req, n, n, (const uint8_t *)"", 0, 0, true, &st);
    assert_int_equal(st.requests, MMTLS_HTTP_MAX_PIPELINE);
    assert_int_equal(st.pipeline_overflow, 1);
    assert_int_equal(st.txns_aborted, MMTLS_HTTP_MAX_PIPELINE);
    free(t);
}

static void test_h1_malformed(void **state)
{
    /* each: (request bytes, response bytes); none may crash or break FIRST/LAST */
    static const struct {
        const char *req, *resp;
    } t[] = {
        {"\x01\x02\x03 garbage\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n"},
        {"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\nGET / HTTP/1.1\r\n\r\n", ""},
        {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", ""},
        {"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", ""},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ""},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n", ""},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n", ""},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nxxxx", ""},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", ""},
        {"GET /\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n"},
        {"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nabc"},
        {"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   "ffffffffffffffff\r\nabc"},
        {"", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n"},
        {"GET / HTTP/1.1\r\n\r\n", "SSH-2.0-OpenSSH\r\n\r\n"},
        {"G\r\n\r\n", "HTTP/1.1\r\n\r\n"},
        {"\r\n\r\n\r\n", "\r\n"},
        {" / HTTP/1.1\r\n\r\n", "HTTP/1.1 200\r\n\r\n"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t rl = strlen(t[i].req), pl = strlen(t[i].resp);
        for (size_t a = 0; a <= rl; a++) {
            free(replay(NULL, (const uint8_t *)t[i].req, rl, a, (const uint8_t *)t[i].resp, pl, pl,
                        true, NULL));
        }
        for (size_t c = 0; c <= pl; c++) {
            free(replay(NULL, (const uint8_t *)t[i].req, rl, rl, (const uint8_t *)t[i].resp, pl, c,
                        true, NULL));
        }
    }
    {
        struct mmtls_http_stats st;
        free(replay(NULL, (const uint8_t *)t[0].req, strlen(t[0].req), strlen(t[0].req),
                    (const uint8_t *)t[0].resp, strlen(t[0].resp), strlen(t[0].resp), true, &st));
        assert_int_equal(st.bad_start_line, 1);
        free(replay(NULL, (const uint8_t *)t[4].req, strlen(t[4].req), strlen(t[4].req),
                    (const uint8_t *)"", 0, 0, true, &st));
        assert_int_equal(st.bad_chunk, 1);
        free(replay(NULL, (const uint8_t *)t[2].req, strlen(t[2].req), strlen(t[2].req),
                    (const uint8_t *)"", 0, 0, true, &st));
        assert_int_equal(st.bad_content_length, 1);
    }
}

static void test_api(void **state)
{
    struct coll col = {0};
    struct mmtls_http_cb cb = {.ud = &col, .on_event = NULL};
    struct mmtls_http_opts o = {.sz = 1};
    struct mmtls_http *h = NULL;

    (void)state;
    assert_int_equal(mmtls_http_new(&h, NULL, &cb), MMTLS_E_INVAL);
    cb.on_event = coll_on_event;
    assert_int_equal(mmtls_http_new(&h, &o, &cb), MMTLS_E_INVAL);
    assert_int_equal(mmtls_http_new(&h, NULL, &cb), 0);
    assert_int_equal(mmtls_http_proto(h), MMTLS_HTTP_PROTO_UNKNOWN);
    assert_int_equal(mmtls_http_feed(h, (enum mmtls_http_dir)2, (const uint8_t *)"x", 1),
                     MMTLS_E_INVAL);
    assert_int_equal(mmtls_http_feed(h, MMTLS_HTTP_TO_SERVER, NULL, 1), MMTLS_E_INVAL);
    assert_int_equal(mmtls_http_feed(h, MMTLS_HTTP_TO_SERVER, NULL, 0), 0);
    /* the server speaks first: held until the client decides */
    assert_int_equal(mmtls_http_feed(h, MMTLS_HTTP_TO_CLIENT, S("HTTP/1.1 200 OK\r\n")), 0);
    assert_int_equal(mmtls_http_feed(h, MMTLS_HTTP_TO_SERVER, S("PRI * HTTP/1.1")), 0);
    assert_int_equal(mmtls_http_proto(h), MMTLS_HTTP_PROTO_H1);
    mmtls_http_close(h, MMTLS_HTTP_TO_SERVER);
    assert_int_equal(mmtls_http_feed(h, MMTLS_HTTP_TO_SERVER, S("x")), MMTLS_DECLINED);
    assert_string_equal(mmtls_http_buf_name(MMTLS_HTTP_BUF_RESP_BODY), "file_data");
    assert_string_equal(mmtls_http_buf_name(MMTLS_HTTP_BUF_COUNT), "?");
    mmtls_http_free(h);
    mmtls_http_free(NULL);
    coll_reset(&col);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_normalize),
        cmocka_unit_test(test_host_normalize),
        cmocka_unit_test(test_h1_cases),
        cmocka_unit_test(test_h1_counters),
        cmocka_unit_test(test_h1_gzip_chunked),
        cmocka_unit_test(test_h1_decomp_cap),
        cmocka_unit_test(test_h1_depth_skip),
        cmocka_unit_test(test_h1_header_cap),
        cmocka_unit_test(test_h1_pipeline_overflow),
        cmocka_unit_test(test_h1_malformed),
        cmocka_unit_test(test_api),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
