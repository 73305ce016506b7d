/* Unit tests for http: HTTP/2 (RFC 9113).  Header blocks are made with libnghttp2's HPACK
 * deflater, frames are written by hand (9-byte header, padding, priority, CONTINUATION), and the
 * two directions are replayed at every split point. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <nghttp2/nghttp2.h>
#include <zlib.h>

#include "http_test_collect.h"

#define S(x) (const uint8_t *)(x), sizeof(x) - 1

/* RFC 9113 §6 */
enum {
    DATA = 0,
    HEADERS = 1,
    PRIORITY = 2,
    RST = 3,
    SETTINGS = 4,
    PUSH = 5,
    PING = 6,
    GOAWAY = 7,
    WINUPD = 8,
    CONT = 9
};
enum { END_STREAM = 1, ACK = 1, END_HEADERS = 4, PADDED = 8, PRIO = 0x20 };

struct wbuf {
    uint8_t *p;
    size_t len, cap;
};

static void wput(struct wbuf *w, const void *p, size_t n)
{
    if (w->len + n > w->cap) {
        w->cap = (w->len + n) * 2 + 64;
        w->p = realloc(w->p, w->cap);
    }
    if (n > 0)
        memcpy(w->p + w->len, p, n);
    w->len += n;
}

/* frame header: length (24) type (8) flags (8) R|stream id (32) */
static void frame(struct wbuf *w, uint8_t type, uint8_t flags, uint32_t sid, const void *pl,
                  size_t n)
{
    uint8_t h[9] = {
        (uint8_t)(n >> 16),   (uint8_t)(n >> 8),    (uint8_t)n,          type,        flags,
        (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid};
    wput(w, h, 9);
    wput(w, pl, n);
}

/* DATA with optional padding (pad > 0: PADDED flag, pad length byte, pad zeros) */
static void data(struct wbuf *w, uint32_t sid, uint8_t flags, const void *p, size_t n, uint8_t pad)
{
    uint8_t tmp[70000];

    if (pad == 0) {
        frame(w, DATA, flags, sid, p, n);
        return;
    }
    tmp[0] = pad;
    memcpy(tmp + 1, p, n);
    memset(tmp + 1 + n, 0, pad);
    frame(w, DATA, flags | PADDED, sid, tmp, 1 + n + pad);
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE         \
    }

static size_t hpack(nghttp2_hd_deflater *d, const nghttp2_nv *nv, size_t n, uint8_t *out,
                    size_t cap)
{
    ssize_t r = nghttp2_hd_deflate_hd(d, out, cap, (nghttp2_nv *)(uintptr_t)nv, n);
    assert_true(r >= 0);
    return (size_t)r;
}

/* HEADERS [+ CONTINUATION...] carrying the block, cut in `parts` fragments; the HEADERS frame
 * gets padding and a priority field when `fancy`. */
static void headers(struct wbuf *w, nghttp2_hd_deflater *d, uint32_t sid, bool end_stream,
                    const nghttp2_nv *nv, size_t n, int parts, bool fancy)
{
    uint8_t blk[8192], tmp[8300];
    size_t bl = hpack(d, nv, n, blk, sizeof(blk)), off = 0, step = bl / (size_t)parts + 1;

    for (int i = 0; i < parts || off < bl; i++) {
        size_t c = MMTLS_MIN(step, bl - off);
        bool last = off + c == bl;
        uint8_t fl = last ? END_HEADERS : 0;

        if (i == 0) {
            size_t t = 0;
            fl |= end_stream ? END_STREAM : 0;
            if (fancy) {
                fl |= PADDED | PRIO;
                tmp[t++] = 3;                               /* pad length */
                memcpy(tmp + t, "\x80\x00\x00\x00\x10", 5); /* E=1, dep 0, weight 16 */
                t += 5;
            }
            memcpy(tmp + t, blk + off, c);
            t += c;
            if (fancy) {
                memset(tmp + t, 0, 3);
                t += 3;
            }
            frame(w, HEADERS, fl, sid, tmp, t);
        } else {
            frame(w, CONT, fl, sid, blk + off, c);
        }
        off += c;
        if (last)
            break;
    }
}

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
static const char page[] = "<html>h2 body, gzip, split over two padded DATA frames</html>";

/* A browsing session: client streams 1 (GET), 3 (POST with body), 5 (cookies), 7 (reset by the
 * server); the server answers interleaved. */
static void build_session(struct wbuf *c, struct wbuf *s)
{
    nghttp2_hd_deflater *dc, *ds;
    uint8_t z[512];
    z_stream zs = {0};
    size_t zl;

    assert_int_equal(nghttp2_hd_deflate_new(&dc, 4096), 0);
    assert_int_equal(nghttp2_hd_deflate_new(&ds, 4096), 0);
    /* client: preface, SETTINGS (ENABLE_PUSH=0, INITIAL_WINDOW_SIZE), WINDOW_UPDATE */
    wput(c, preface, sizeof(preface) - 1);
    frame(c, SETTINGS, 0, 0, "\x00\x02\x00\x00\x00\x00\x00\x04\x00\x60\x00\x00", 12);
    frame(c, WINUPD, 0, 0, "\x00\xef\x00\x01", 4);
    {
        const nghttp2_nv nv[] = {NV(":method", "GET"),
                                 NV(":scheme", "https"),
                                 NV(":authority", "Example.org:443"),
                                 NV(":path", "/a/../index.html"),
                                 NV("user-agent", "curl/8.0"),
                                 NV("accept", "*/*")};
        headers(c, dc, 1, true, nv, 6, 1, true);
    }
    {
        const nghttp2_nv nv[] = {NV(":method", "POST"),
                                 NV(":scheme", "https"),
                                 NV(":authority", "example.org"),
                                 NV(":path", "/upload"),
                                 NV("content-type", "text/plain"),
                                 NV("user-agent", "curl/8.0")};
        headers(c, dc, 3, false, nv, 6, 3, false);
    }
    data(c, 3, 0, "hello ", 6, 4);
    frame(c, PRIORITY, 0, 3, "\x00\x00\x00\x01\x20", 5);
    frame(c, PING, 0, 0, "12345678", 8);
    data(c, 3, END_STREAM, "world", 5, 0);
    {
        const nghttp2_nv nv[] = {
            NV(":method", "GET"),    NV(":scheme", "https"), NV(":authority", "example.org"),
            NV(":path", "/c?x=%41"), NV("cookie", "a=1"),    NV("cookie", "b=2")};
        headers(c, dc, 5, true, nv, 6, 2, true);
    }
    {
        const nghttp2_nv nv[] = {NV(":method", "GET"), NV(":scheme", "https"),
                                 NV(":authority", "example.org"), NV(":path", "/reset")};
        headers(c, dc, 7, true, nv, 4, 1, false);
    }
    frame(c, SETTINGS, ACK, 0, NULL, 0);

    /* server: SETTINGS, ACK, responses */
    frame(s, SETTINGS, 0, 0, "\x00\x03\x00\x00\x00\x64", 6);
    frame(s, SETTINGS, ACK, 0, NULL, 0);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)page;
    zs.avail_in = sizeof(page) - 1;
    zs.next_out = z;
    zs.avail_out = sizeof(z);
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    zl = sizeof(z) - zs.avail_out;
    deflateEnd(&zs);
    {
        const nghttp2_nv nv[] = {NV(":status", "100")};
        headers(s, ds, 3, false, nv, 1, 1, false);
    }
    {
        const nghttp2_nv nv[] = {NV(":status", "200"), NV("server", "nginx/1.22.1"),
                                 NV("content-encoding", "gzip"), NV("set-cookie", "sid=9")};
        headers(s, ds, 1, false, nv, 4, 2, true);
    }
    data(s, 1, 0, z, zl / 2, 7);
    {
        const nghttp2_nv nv[] = {NV(":status", "201"), NV("server", "nginx/1.22.1")};
        headers(s, ds, 3, false, nv, 2, 1, false);
    }
    frame(s, RST, 0, 7, "\x00\x00\x00\x08", 4); /* CANCEL */
    data(s, 1, END_STREAM, z + zl / 2, zl - zl / 2, 200);
    data(s, 3, 0, "crea", 4, 0);
    data(s, 3, 0, "", 0, 0);
    data(s, 3, END_STREAM, "ted", 3, 1);
    {
        const nghttp2_nv nv[] = {NV(":status", "404"), NV("server", "nginx/1.22.1")};
        headers(s, ds, 5, true, nv, 2, 1, false);
    }
    frame(s, GOAWAY, 0, 0, "\x00\x00\x00\x07\x00\x00\x00\x00", 8);
    nghttp2_hd_deflate_del(dc);
    nghttp2_hd_deflate_del(ds);
}

static char *run(const struct mmtls_http_opts *o, const struct wbuf *c, size_t cl, size_t a,
                 const struct wbuf *s, size_t sl, size_t b, bool close, struct mmtls_http_stats *st)
{
    struct coll col = {0};
    struct mmtls_http *h = coll_parser(&col, o);
    char *out;

    assert_non_null(h);
    /* (an empty buffer has p == NULL: no pointer arithmetic on it) */
    coll_feed(h, MMTLS_HTTP_TO_SERVER, c->p, a);
    coll_feed(h, MMTLS_HTTP_TO_SERVER, c->p != NULL ? c->p + a : NULL, cl - a);
    coll_feed(h, MMTLS_HTTP_TO_CLIENT, s->p, b);
    coll_feed(h, MMTLS_HTTP_TO_CLIENT, s->p != NULL ? s->p + b : NULL, sl - b);
    if (close) {
        mmtls_http_close(h, MMTLS_HTTP_TO_SERVER);
        mmtls_http_close(h, MMTLS_HTTP_TO_CLIENT);
    }
    if (st != NULL)
        *st = *mmtls_http_stats(h);
    mmtls_http_free(h);
    assert_int_equal(col.errors, 0);
    out = strdup(col.out != NULL ? col.out : "");
    coll_reset(&col);
    return out;
}

static void test_h2_session(void **state)
{
    struct wbuf c = {0}, s = {0};
    struct mmtls_http_stats st;
    char *ref, want[256];
    static const char *const lines[] = {
        "1 http.method=GET\n",
        "1 http.uri.raw=/a/../index.html\n",
        "1 http.uri=/index.html\n",
        "1 http.host=example.org\n",
        "1 http.user_agent=curl/8.0\n",
        "1 http.request_header=user-agent: curl/8.0\\r\\naccept: */*\\r\\n\n",
        "1 http.request_header.raw=:method: GET\\r\\n:scheme: https\\r\\n:authority: "
        "Example.org:443\\r\\n:path: /a/../index.html\\r\\nuser-agent: curl/8.0\\r\\n"
        "accept: */*\\r\\n\n",
        "3 http.method=POST\n",
        "3 http.request_body=hello world\n",
        "5 http.uri=/c?x=A\n",
        "5 http.cookie=a=1; b=2\n",
        "1 http.stat_code=200\n",
        "1 http.cookie=sid=9\n",
        "1 http.response_header=server: nginx/1.22.1\\r\\ncontent-encoding: gzip\\r\\n\n",
        "3 http.stat_code=201\n",
        "7 end aborted\n",
        "3 file_data=created\n3 end\n",
        "5 http.stat_code=404\n5 http.response_header=server: nginx/1.22.1\\r\\n\n",
        NULL,
    };

    (void)state;
    build_session(&c, &s);
    ref = run(NULL, &c, c.len, c.len, &s, s.len, s.len, false, &st);
    snprintf(want, sizeof(want), "1 file_data=%s\n1 end\n", page);
    if (strstr(ref, want) == NULL)
        fail_msg("missing %s in\n%s", want, ref);
    for (size_t i = 0; lines[i] != NULL; i++) {
        if (strstr(ref, lines[i]) == NULL)
            fail_msg("missing\n  %s\nin\n%s", lines[i], ref);
    }
    assert_null(strstr(ref, "stat_code=100"));
    assert_null(strstr(ref, "5 http.request_header=cookie"));
    assert_int_equal(st.h2_bad_frames, 0);
    assert_int_equal(st.h2_hpack_errors, 0);
    assert_int_equal(st.h2_bad_preface, 0);
    assert_int_equal(st.requests, 4);
    assert_int_equal(st.responses, 3);
    assert_int_equal(st.interim_responses, 1);
    assert_int_equal(st.txns_done, 3);
    assert_int_equal(st.txns_aborted, 1);
    assert_int_equal(st.h2_rst_streams, 1);
    assert_int_equal(st.h2_goaways, 1);

    /* every split point of each direction, then byte by byte */
    for (size_t a = 0; a <= c.len; a++) {
        char *t = run(NULL, &c, c.len, a, &s, s.len, s.len, false, NULL);
        if (strcmp(t, ref) != 0)
            fail_msg("client split at %zu:\n%s\nvs\n%s", a, t, ref);
        free(t);
    }
    for (size_t b = 0; b <= s.len; b++) {
        char *t = run(NULL, &c, c.len, c.len, &s, s.len, b, false, NULL);
        if (strcmp(t, ref) != 0)
            fail_msg("server split at %zu:\n%s\nvs\n%s", b, t, ref);
        free(t);
    }
    {
        struct coll col = {0};
        struct mmtls_http *h = coll_parser(&col, NULL);
        for (size_t i = 0; i < c.len; i++)
            coll_feed(h, MMTLS_HTTP_TO_SERVER, c.p + i, 1);
        for (size_t i = 0; i < s.len; i++)
            coll_feed(h, MMTLS_HTTP_TO_CLIENT, s.p + i, 1);
        assert_string_equal(col.out, ref);
        assert_int_equal(col.errors, 0);
        mmtls_http_free(h);
        coll_reset(&col);
    }
    /* ALPN h2: same result */
    {
        struct mmtls_http_opts o = {.sz = sizeof(o), .alpn_h2 = true};
        char *t = run(&o, &c, c.len, 0, &s, s.len, 0, false, NULL);
        assert_string_equal(t, ref);
        free(t);
    }
    /* truncated at every offset and closed: no crash, open streams end aborted */
    for (size_t a = 0; a <= c.len; a++)
        free(run(NULL, &c, a, a, &s, 0, 0, true, NULL));
    for (size_t b = 0; b <= s.len; b++) {
        char *t = run(NULL, &c, c.len, c.len, &s, b, b, true, &st);
        assert_int_equal(st.txns_done + st.txns_aborted, 4);
        free(t);
    }
    free(ref);
    free(c.p);
    free(s.p);
}

/* SETTINGS_HEADER_TABLE_SIZE from the client lets the server's encoder use a larger table. */
static void test_h2_table_size(void **state)
{
    for (int with_settings = 0; with_settings < 2; with_settings++) {
        struct wbuf c = {0}, s = {0};
        nghttp2_hd_deflater *dc, *ds;
        struct mmtls_http_stats st;
        char big[3000], *t;
        const nghttp2_nv req[] = {NV(":method", "GET"), NV(":path", "/"), NV(":authority", "a")};

        (void)state;
        memset(big, 'v', sizeof(big));
        assert_int_equal(nghttp2_hd_deflate_new(&dc, 4096), 0);
        assert_int_equal(nghttp2_hd_deflate_new(&ds, 65536), 0);
        assert_int_equal(nghttp2_hd_deflate_change_table_size(ds, 65536), 0);
        wput(&c, preface, sizeof(preface) - 1);
        if (with_settings)
            frame(&c, SETTINGS, 0, 0, "\x00\x01\x00\x01\x00\x00", 6); /* 65536 */
        for (uint32_t id = 1; id <= 7; id += 2)
            headers(&c, dc, id, true, req, 3, 1, false);
        for (uint32_t id = 1; id <= 7; id += 2) {
            nghttp2_nv nv[] = {NV(":status", "200"), NV("x-big", "")};
            nv[1].value = (uint8_t *)big;
            nv[1].valuelen = sizeof(big) - id; /* distinct values fill the table past 4096 */
            headers(&s, ds, id, true, nv, 2, 1, false);
        }
        t = run(NULL, &c, c.len, c.len, &s, s.len, s.len, false, &st);
        if (with_settings) {
            assert_int_equal(st.h2_hpack_errors, 0);
            assert_int_equal(st.txns_done, 4);
        } else {
            assert_int_equal(st.h2_hpack_errors, 1); /* table size update above the limit */
            assert_int_equal(st.txns_done, 0);
        }
        free(t);
        nghttp2_hd_deflate_del(dc);
        nghttp2_hd_deflate_del(ds);
        free(c.p);
        free(s.p);
    }
}

/* More concurrent streams than max_streams: counted; HPACK state stays in step. */
static void test_h2_stream_cap(void **state)
{
    struct mmtls_http_opts o = {.sz = sizeof(o), .max_streams = 2};
    struct wbuf c = {0}, s = {0};
    nghttp2_hd_deflater *dc, *ds;
    struct mmtls_http_stats st;
    const nghttp2_nv req[] = {NV(":method", "GET"), NV(":path", "/x"), NV(":authority", "a")};
    const nghttp2_nv resp[] = {NV(":status", "200"), NV("x-a", "b")};
    char *t;

    (void)state;
    assert_int_equal(nghttp2_hd_deflate_new(&dc, 4096), 0);
    assert_int_equal(nghttp2_hd_deflate_new(&ds, 4096), 0);
    wput(&c, preface, sizeof(preface) - 1);
    for (uint32_t id = 1; id <= 5; id += 2)
        headers(&c, dc, id, true, req, 3, 1, false); /* 1, 3 tracked; 5 over the cap */
    for (uint32_t id = 1; id <= 5; id += 2)
        headers(&s, ds, id, true, resp, 2, 1, false);
    t = run(&o, &c, c.len, c.len, &s, s.len, s.len, false, &st);
    assert_int_equal(st.h2_streams_over_cap, 1);
    assert_int_equal(st.h2_hpack_errors, 0);
    assert_int_equal(st.txns_done, 2);
    free(t);
    /* after 1 and 3 completed, stream 9 fits again and decodes with the same tables */
    {
        struct coll col = {0};
        struct mmtls_http *h = coll_parser(&col, &o);
        struct wbuf c2 = {0}, s2 = {0};

        headers(&c2, dc, 9, true, req, 3, 1, false);
        headers(&s2, ds, 9, true, resp, 2, 1, false);
        coll_feed(h, MMTLS_HTTP_TO_SERVER, c.p, c.len);
        coll_feed(h, MMTLS_HTTP_TO_CLIENT, s.p, s.len);
        coll_feed(h, MMTLS_HTTP_TO_SERVER, c2.p, c2.len);
        coll_feed(h, MMTLS_HTTP_TO_CLIENT, s2.p, s2.len);
        assert_int_equal(mmtls_http_stats(h)->txns_done, 3);
        assert_int_equal(mmtls_http_stats(h)->h2_hpack_errors, 0);
        assert_non_null(strstr(col.out, "9 http.uri=/x\n"));
        assert_non_null(strstr(col.out, "9 http.response_header=x-a: b\\r\\n\n"));
        assert_non_null(strstr(col.out, "9 end\n"));
        assert_null(strstr(col.out, "5 "));
        mmtls_http_free(h);
        coll_reset(&col);
        free(c2.p);
        free(s2.p);
    }
    nghttp2_hd_deflate_del(dc);
    nghttp2_hd_deflate_del(ds);
    free(c.p);
    free(s.p);
}

/* Inspection depth over DATA frames and skipping through them. */
static void test_h2_depth_skip(void **state)
{
    struct mmtls_http_opts o = {.sz = sizeof(o), .resp_body_depth = 40000};
    struct wbuf c = {0}, s = {0}, f = {0};
    nghttp2_hd_deflater *dc, *ds;
    struct coll col = {0};
    struct mmtls_http *h;
    static uint8_t body[30000];
    const nghttp2_nv req[] = {NV(":method", "GET"), NV(":path", "/big"), NV(":authority", "a")};
    const nghttp2_nv resp[] = {NV(":status", "200")};
    size_t hl;

    (void)state;
    memset(body, 'b', sizeof(body));
    assert_int_equal(nghttp2_hd_deflate_new(&dc, 4096), 0);
    assert_int_equal(nghttp2_hd_deflate_new(&ds, 4096), 0);
    wput(&c, preface, sizeof(preface) - 1);
    headers(&c, dc, 1, true, req, 3, 1, false);
    headers(&s, ds, 1, false, resp, 1, 1, false);
    hl = s.len;
    data(&s, 1, 0, body, sizeof(body), 0);
    data(&s, 1, 0, body, sizeof(body), 10); /* 30000 + pad length byte + 10 */
    data(&f, 1, END_STREAM, body, sizeof(body), 0);

    h = coll_parser(&col, &o);
    coll_feed(h, MMTLS_HTTP_TO_SERVER, c.p, c.len);
    coll_feed(h, MMTLS_HTTP_TO_CLIENT, s.p, hl + 9 + 30000 + 9 + 1 + 10000);
    assert_int_equal(mmtls_http_skippable(h, MMTLS_HTTP_TO_CLIENT), 20000 + 10);
    assert_int_equal(mmtls_http_skip(h, MMTLS_HTTP_TO_CLIENT, 20010), 0);
    assert_int_equal(mmtls_http_skippable(h, MMTLS_HTTP_TO_CLIENT), 0); /* a frame header */
    coll_feed(h, MMTLS_HTTP_TO_CLIENT, f.p, 9);
    assert_int_equal(mmtls_http_skippable(h, MMTLS_HTTP_TO_CLIENT), 30000);
    assert_int_equal(mmtls_http_skip(h, MMTLS_HTTP_TO_CLIENT, 30000), 0);
    assert_non_null(strstr(col.out, "1 file_data T="));
    assert_non_null(strstr(col.out, "1 end\n"));
    assert_int_equal(col.errors, 0);
    mmtls_http_free(h);
    coll_reset(&col);
    nghttp2_hd_deflate_del(dc);
    nghttp2_hd_deflate_del(ds);
    free(c.p);
    free(s.p);
    free(f.p);
}

/* Frames that break RFC 9113 rules: counted, never fatal. */
static void test_h2_malformed(void **state)
{
    static const struct {
        const char *name;
        const uint8_t *p;
        size_t n;
    } t[] = {
        /* DATA on stream 0 */
        {"data0", S("\x00\x00\x01\x00\x00\x00\x00\x00\x00x")},
        /* HEADERS pad length 9 > payload 2 */
        {"pad", S("\x00\x00\x02\x01\x0c\x00\x00\x00\x01\x09\x82")},
        /* CONTINUATION without HEADERS */
        {"cont", S("\x00\x00\x01\x09\x04\x00\x00\x00\x01\x82")},
        /* SETTINGS length 5 */
        {"settings", S("\x00\x00\x05\x04\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00")},
        /* HEADERS without END_HEADERS followed by DATA */
        {"interleave", S("\x00\x00\x01\x01\x00\x00\x00\x00\x01\x82"
                         "\x00\x00\x01\x00\x00\x00\x00\x00\x01x")},
        /* bad HPACK: index 127 not in the table */
        {"hpack", S("\x00\x00\x02\x01\x05\x00\x00\x00\x01\xff\x40")},
        /* RST_STREAM with 3 bytes; PUSH_PROMISE from the client; huge length */
        {"rst", S("\x00\x00\x03\x03\x00\x00\x00\x00\x01\x00\x00\x00")},
        {"push", S("\x00\x00\x04\x05\x04\x00\x00\x00\x01\x00\x00\x00\x02")},
        {"huge", S("\xff\xff\xff\x00\x00\x00\x00\x00\x01")},
        /* even stream from the client */
        {"even", S("\x00\x00\x01\x01\x05\x00\x00\x00\x02\x82")},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct wbuf c = {0}, s = {0};
        struct mmtls_http_stats st;

        wput(&c, preface, sizeof(preface) - 1);
        wput(&c, t[i].p, t[i].n);
        wput(&s, t[i].p, t[i].n);
        for (size_t a = 0; a <= c.len; a++)
            free(run(NULL, &c, c.len, a, &s, s.len, a < s.len ? a : s.len, true, &st));
        if (strcmp(t[i].name, "huge") != 0 && st.h2_bad_frames + st.h2_hpack_errors == 0)
            fail_msg("%s: not counted", t[i].name);
        free(c.p);
        free(s.p);
    }
    /* wrong preface with ALPN h2: counted, the rest parsed as frames */
    {
        struct mmtls_http_opts o = {.sz = sizeof(o), .alpn_h2 = true};
        struct wbuf c = {0}, s = {0};
        struct mmtls_http_stats st;
        wput(&c, "GET / HTTP/1.1\r\n\r\n", 18);
        free(run(&o, &c, c.len, 3, &s, 0, 0, true, &st));
        assert_int_equal(st.h2_bad_preface, 1);
        free(c.p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h2_session),    cmocka_unit_test(test_h2_table_size),
        cmocka_unit_test(test_h2_stream_cap), cmocka_unit_test(test_h2_depth_skip),
        cmocka_unit_test(test_h2_malformed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
