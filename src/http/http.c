/* http — parser object, protocol detection, delivery of buffers shared by HTTP/1 and HTTP/2,
 * streamed bodies with zlib decompression, URI and host normalisation. */
#include "http/http_int.h"

#include <stdlib.h>

/* RFC 9113 §3.4: the client connection preface. */
static const uint8_t h2_preface[24] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#define DECOMP_CHUNK 8192u

static const char *const buf_names[MMTLS_HTTP_BUF_COUNT] = {
    [MMTLS_HTTP_BUF_METHOD] = "http.method",
    [MMTLS_HTTP_BUF_URI] = "http.uri",
    [MMTLS_HTTP_BUF_RAW_URI] = "http.uri.raw",
    [MMTLS_HTTP_BUF_REQ_HEADERS] = "http.request_header",
    [MMTLS_HTTP_BUF_REQ_HEADERS_RAW] = "http.request_header.raw",
    [MMTLS_HTTP_BUF_COOKIE] = "http.cookie",
    [MMTLS_HTTP_BUF_USER_AGENT] = "http.user_agent",
    [MMTLS_HTTP_BUF_HOST] = "http.host",
    [MMTLS_HTTP_BUF_REQ_BODY] = "http.request_body",
    [MMTLS_HTTP_BUF_STAT_CODE] = "http.stat_code",
    [MMTLS_HTTP_BUF_RESP_HEADERS] = "http.response_header",
    [MMTLS_HTTP_BUF_RESP_HEADERS_RAW] = "http.response_header.raw",
    [MMTLS_HTTP_BUF_RESP_BODY] = "file_data",
    [MMTLS_HTTP_TXN_END] = "txn_end",
};

const char *mmtls_http_buf_name(enum mmtls_http_buf buf)
{
    if ((unsigned)buf >= MMTLS_HTTP_BUF_COUNT)
        return "?";
    return buf_names[buf];
}

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                               */

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

bool mmtls_http_ieq(const uint8_t *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);

    if (n != l)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (lower(p[i]) != (uint8_t)lit[i])
            return false;
    }
    return true;
}

/* RFC 3986 §2.3 */
static bool unreserved(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* ------------------------------------------------------------------------------------------ */
/* Normalisation                                                                               */

/* Length of "scheme://" at the start of in, 0 when in is not in absolute form (RFC 3986 §3.1:
 * scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )). */
size_t mmtls_http_scheme_len(const uint8_t *in, size_t n)
{
    size_t i = 0;

    if (n == 0 || !((in[0] | 0x20) >= 'a' && (in[0] | 0x20) <= 'z'))
        return 0;
    while (i < n && i < 32 && (unreserved(in[i]) || in[i] == '+') && in[i] != '_' && in[i] != '~') {
        i++;
    }
    if (3 > n - i || in[i] != ':' || in[i + 1] != '/' || in[i + 2] != '/')
        return 0;
    return i + 3;
}

int mmtls_http_uri_normalize(const uint8_t *in, size_t inlen, uint8_t *out, size_t outcap,
                             size_t *outlen)
{
    size_t i = 0, w = 0, pe, o = 0, r, q;
    bool trailing = false;

    if (outcap < inlen || outlen == NULL || (inlen > 0 && (in == NULL || out == NULL)))
        return MMTLS_E_INVAL;
    *outlen = 0;
    if (inlen == 0)
        return 0;
    /* RFC 9112 §3.2.2: absolute-form; keep only the path and query */
    q = mmtls_http_scheme_len(in, inlen);
    if (q > 0) {
        i = q;
        while (i < inlen && in[i] != '/' && in[i] != '?' && in[i] != '#')
            i++;
        if (i == inlen || in[i] != '/')
            out[w++] = '/'; /* scheme and "://" freed at least 4 bytes */
    }
    /* RFC 3986 §2.3/§6.2.2.2: decode percent-encoded unreserved characters only */
    for (; i < inlen; i++) {
        if (in[i] == '%' && 2 <= inlen - i - 1 && mmtls_hexval(in[i + 1]) >= 0 &&
            mmtls_hexval(in[i + 2]) >= 0) {
            uint8_t c = (uint8_t)(mmtls_hexval(in[i + 1]) << 4 | mmtls_hexval(in[i + 2]));
            if (unreserved(c)) {
                out[w++] = c;
                i += 2;
                continue;
            }
        }
        out[w++] = in[i];
    }
    for (pe = 0; pe < w && out[pe] != '?' && out[pe] != '#'; pe++) {
    }
    if (pe == 0 || out[0] != '/') {
        *outlen = w; /* origin-form only: "*" and authority-form are left alone */
        return 0;
    }
    /* RFC 3986 §5.2.4 remove_dot_segments, plus "//" collapsing, in place: every "/seg" written
     * was read as at least "/seg", so the write position never passes the read position. */
    for (r = 0; r < pe;) {
        size_t s, sl;

        if (out[r] == '/') {
            r++;
            trailing = true;
            continue;
        }
        s = r;
        while (r < pe && out[r] != '/')
            r++;
        sl = r - s;
        trailing = false;
        if (sl == 1 && out[s] == '.') {
            trailing = true;
            continue;
        }
        if (sl == 2 && out[s] == '.' && out[s + 1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* drop the segment's '/' too */
            trailing = true;
            continue;
        }
        out[o++] = '/';
        memmove(out + o, out + s, sl);
        o += sl;
    }
    if (trailing || o == 0)
        out[o++] = '/';
    memmove(out + o, out + pe, w - pe);
    *outlen = o + (w - pe);
    return 0;
}

int mmtls_http_host_normalize(const uint8_t *in, size_t inlen, uint8_t *out, size_t outcap,
                              size_t *outlen)
{
    size_t s = 0, e = inlen, n;

    if (outcap < inlen || outlen == NULL || (inlen > 0 && (in == NULL || out == NULL)))
        return MMTLS_E_INVAL;
    while (s < e && is_ws(in[s]))
        s++;
    while (e > s && is_ws(in[e - 1]))
        e--;
    /* RFC 3986 §3.2.1: drop userinfo */
    for (size_t i = e; i > s; i--) {
        if (in[i - 1] == '@') {
            s = i;
            break;
        }
    }
    if (s < e && in[s] == '[') {
        const uint8_t *rb = memchr(in + s, ']', e - s);
        if (rb != NULL)
            e = (size_t)(rb - in) + 1; /* RFC 3986 §3.2.2: IP-literal keeps its brackets */
    } else {
        const uint8_t *c = s < e ? memchr(in + s, ':', e - s) : NULL;
        if (c != NULL && memchr(c + 1, ':', (size_t)(in + e - c - 1)) == NULL)
            e = (size_t)(c - in); /* one ':' only: a port */
    }
    n = e - s;
    for (size_t i = 0; i < n; i++)
        out[i] = lower(in[s + i]);
    *outlen = n;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Events and fields                                                                           */

void mmtls_http_emit(struct mmtls_http *h, uint64_t txn, enum mmtls_http_dir dir,
                     enum mmtls_http_buf buf, const uint8_t *p, size_t len, unsigned flags)
{
    struct mmtls_http_event ev = {
        .txn = txn, .dir = dir, .buf = buf, .p = len > 0 ? p : NULL, .len = len, .flags = flags};

    h->cb.on_event(h->cb.ud, &ev);
}

void mmtls_http_fields_reset(struct http_fields *f)
{
    f->raw.len = f->norm.len = f->cookie.len = 0;
    f->method.len = f->target.len = f->authority.len = f->host.len = f->ua.len = 0;
    f->status.len = f->scratch.len = 0;
    f->has_cookie = f->has_method = f->has_target = f->has_authority = f->has_host = false;
    f->has_ua = f->has_status = false;
    f->truncated = false;
    f->enc = HTTP_ENC_NONE;
    f->enc_other = false;
}

static void fields_fini(struct http_fields *f)
{
    mmtls_buf_fini(&f->raw, false);
    mmtls_buf_fini(&f->norm, false);
    mmtls_buf_fini(&f->cookie, false);
    mmtls_buf_fini(&f->method, false);
    mmtls_buf_fini(&f->target, false);
    mmtls_buf_fini(&f->authority, false);
    mmtls_buf_fini(&f->host, false);
    mmtls_buf_fini(&f->ua, false);
    mmtls_buf_fini(&f->status, false);
    mmtls_buf_fini(&f->scratch, false);
}

/* Appends to one field buffer, cut at the buffer's max (then f->truncated).  Only
 * MMTLS_E_NOMEM is returned. */
int mmtls_http_fields_put(struct http_fields *f, struct mmtls_buf *b, const void *p, size_t n)
{
    size_t room = b->max > b->len ? b->max - b->len : 0;

    if (n > room) {
        n = room;
        f->truncated = true;
    }
    if (n == 0)
        return 0;
    return mmtls_buf_append(b, p, n) == 0 ? 0 : MMTLS_E_NOMEM;
}

int mmtls_http_field(struct mmtls_http *h, struct http_fields *f, enum mmtls_http_dir dir,
                     const uint8_t *name, size_t nlen, const uint8_t *val, size_t vlen)
{
    bool cookie;

    while (vlen > 0 && is_ws(val[0])) {
        val++;
        vlen--;
    }
    while (vlen > 0 && is_ws(val[vlen - 1]))
        vlen--;
    cookie = dir == MMTLS_HTTP_TO_SERVER ? mmtls_http_ieq(name, nlen, "cookie")
                                         : mmtls_http_ieq(name, nlen, "set-cookie");
    if (cookie) {
        /* RFC 9113 §8.2.3: several cookie fields are joined with "; " */
        if (f->has_cookie)
            MMTLS_TRY(mmtls_http_fields_put(f, &f->cookie, "; ", 2));
        f->has_cookie = true;
        return mmtls_http_fields_put(f, &f->cookie, val, vlen);
    }
    MMTLS_TRY(mmtls_http_fields_put(f, &f->norm, name, nlen));
    MMTLS_TRY(mmtls_http_fields_put(f, &f->norm, ": ", 2));
    MMTLS_TRY(mmtls_http_fields_put(f, &f->norm, val, vlen));
    MMTLS_TRY(mmtls_http_fields_put(f, &f->norm, "\r\n", 2));
    if (dir == MMTLS_HTTP_TO_SERVER) {
        if (!f->has_host && mmtls_http_ieq(name, nlen, "host")) {
            f->has_host = true;
            return mmtls_http_fields_put(f, &f->host, val, vlen);
        }
        if (!f->has_ua && mmtls_http_ieq(name, nlen, "user-agent")) {
            f->has_ua = true;
            return mmtls_http_fields_put(f, &f->ua, val, vlen);
        }
        return 0;
    }
    if (mmtls_http_ieq(name, nlen, "content-encoding")) {
        /* RFC 9110 §8.4: only a single gzip or deflate coding is decoded */
        if (f->enc != HTTP_ENC_NONE || f->enc_other)
            f->enc_other = true;
        else if (mmtls_http_ieq(val, vlen, "gzip") || mmtls_http_ieq(val, vlen, "x-gzip"))
            f->enc = HTTP_ENC_GZIP;
        else if (mmtls_http_ieq(val, vlen, "deflate"))
            f->enc = HTTP_ENC_DEFLATE;
        else if (!mmtls_http_ieq(val, vlen, "identity"))
            f->enc_other = true;
    }
    (void)h;
    return 0;
}

static void emit_whole(struct mmtls_http *h, uint64_t txn, enum mmtls_http_dir dir,
                       enum mmtls_http_buf buf, const struct mmtls_buf *b, unsigned extra)
{
    mmtls_http_emit(h, txn, dir, buf, b->p, b->len, MMTLS_HTTP_F_FIRST | MMTLS_HTTP_F_LAST | extra);
}

void mmtls_http_deliver_request(struct mmtls_http *h, uint64_t txn, struct http_fields *f,
                                const uint8_t *raw, size_t rawlen)
{
    const enum mmtls_http_dir d = MMTLS_HTTP_TO_SERVER;
    unsigned tr = f->truncated ? MMTLS_HTTP_F_TRUNCATED : 0;
    const struct mmtls_buf *hs = NULL;
    size_t n;

    h->st.requests++;
    if (f->has_method)
        emit_whole(h, txn, d, MMTLS_HTTP_BUF_METHOD, &f->method, 0);
    if (f->has_target) {
        emit_whole(h, txn, d, MMTLS_HTTP_BUF_RAW_URI, &f->target, 0);
        f->scratch.len = 0;
        if (mmtls_buf_reserve(&f->scratch, f->target.len + 1) == 0 &&
            mmtls_http_uri_normalize(f->target.p, f->target.len, f->scratch.p, f->scratch.cap,
                                     &n) == 0) {
            mmtls_http_emit(h, txn, d, MMTLS_HTTP_BUF_URI, f->scratch.p, n,
                            MMTLS_HTTP_F_FIRST | MMTLS_HTTP_F_LAST);
        } else {
            h->st.nomem++;
        }
    }
    /* RFC 9112 §3.2.2 / RFC 9113 §8.3.1: the target's authority wins over Host */
    if (f->has_authority)
        hs = &f->authority;
    else if (f->has_host)
        hs = &f->host;
    if (hs != NULL) {
        f->scratch.len = 0;
        if (mmtls_buf_reserve(&f->scratch, hs->len + 1) == 0 &&
            mmtls_http_host_normalize(hs->p, hs->len, f->scratch.p, f->scratch.cap, &n) == 0) {
            mmtls_http_emit(h, txn, d, MMTLS_HTTP_BUF_HOST, f->scratch.p, n,
                            MMTLS_HTTP_F_FIRST | MMTLS_HTTP_F_LAST);
        } else {
            h->st.nomem++;
        }
    }
    if (f->has_ua)
        emit_whole(h, txn, d, MMTLS_HTTP_BUF_USER_AGENT, &f->ua, 0);
    if (f->has_cookie)
        emit_whole(h, txn, d, MMTLS_HTTP_BUF_COOKIE, &f->cookie, 0);
    emit_whole(h, txn, d, MMTLS_HTTP_BUF_REQ_HEADERS, &f->norm, tr);
    mmtls_http_emit(h, txn, d, MMTLS_HTTP_BUF_REQ_HEADERS_RAW, raw, rawlen,
                    MMTLS_HTTP_F_FIRST | MMTLS_HTTP_F_LAST | tr);
}

void mmtls_http_deliver_response(struct mmtls_http *h, uint64_t txn, struct http_fields *f,
                                 const uint8_t *raw, size_t rawlen)
{
    const enum mmtls_http_dir d = MMTLS_HTTP_TO_CLIENT;
    unsigned tr = f->truncated ? MMTLS_HTTP_F_TRUNCATED : 0;

    h->st.responses++;
    if (f->has_status)
        emit_whole(h, txn, d, MMTLS_HTTP_BUF_STAT_CODE, &f->status, 0);
    if (f->has_cookie)
        emit_whole(h, txn, d, MMTLS_HTTP_BUF_COOKIE, &f->cookie, 0);
    emit_whole(h, txn, d, MMTLS_HTTP_BUF_RESP_HEADERS, &f->norm, tr);
    mmtls_http_emit(h, txn, d, MMTLS_HTTP_BUF_RESP_HEADERS_RAW, raw, rawlen,
                    MMTLS_HTTP_F_FIRST | MMTLS_HTTP_F_LAST | tr);
}

/* ------------------------------------------------------------------------------------------ */
/* Bodies                                                                                      */

void mmtls_http_body_fini(struct http_body *b)
{
    if (b->z != NULL) {
        inflateEnd(b->z);
        free(b->z);
        b->z = NULL;
        (*b->zlive)--;
    }
    b->active = false;
}

void mmtls_http_body_begin(struct mmtls_http *h, struct http_body *b, uint64_t txn, uint8_t enc)
{
    mmtls_http_body_fini(b);
    memset(b, 0, sizeof(*b));
    b->txn = txn;
    b->active = true;
    b->enc = enc;
}

static enum mmtls_http_buf body_buf(enum mmtls_http_dir dir)
{
    return dir == MMTLS_HTTP_TO_SERVER ? MMTLS_HTTP_BUF_REQ_BODY : MMTLS_HTTP_BUF_RESP_BODY;
}

/* Emits one chunk of (decoded) body; LAST in flags finishes delivery. */
static void body_emit(struct mmtls_http *h, enum mmtls_http_dir dir, struct http_body *b,
                      const uint8_t *p, size_t n, unsigned flags)
{
    if (b->done)
        return;
    if (!b->started) {
        if (n == 0 && (flags & MMTLS_HTTP_F_LAST)) {
            b->done = true; /* nothing was ever delivered: no event for an empty body */
            return;
        }
        flags |= MMTLS_HTTP_F_FIRST;
        b->started = true;
    }
    if (flags & MMTLS_HTTP_F_LAST)
        b->done = true;
    mmtls_http_emit(h, b->txn, dir, body_buf(dir), p, n, flags);
}

/* Emits decompressed output, bounded by decomp_max. */
static void body_emit_decoded(struct mmtls_http *h, enum mmtls_http_dir dir, struct http_body *b,
                              const uint8_t *p, size_t n)
{
    uint64_t room = h->decomp_max - b->out;

    if (n > room) {
        body_emit(h, dir, b, p, (size_t)room, 0);
        b->out += room;
        h->st.decomp_capped++;
        body_emit(h, dir, b, NULL, 0, MMTLS_HTTP_F_LAST | MMTLS_HTTP_F_TRUNCATED);
        return;
    }
    b->out += n;
    body_emit(h, dir, b, p, n, 0);
    if (b->out == h->decomp_max && n > 0) {
        h->st.decomp_capped++;
        body_emit(h, dir, b, NULL, 0, MMTLS_HTTP_F_LAST | MMTLS_HTTP_F_TRUNCATED);
    }
}

/* RFC 9110 §8.4.1.2 "deflate" is the zlib format (RFC 1950) but some servers send raw
 * deflate (RFC 1951): a zlib header has CM = 8 and CINFO <= 7 in its first byte. */
static int body_z_init(struct mmtls_http *h, struct http_body *b, uint8_t first)
{
    int wbits;

    if (h->zlive >= HTTP_MAX_INFLATERS)
        return MMTLS_E_LIMIT;
    b->z = calloc(1, sizeof(*b->z));
    if (b->z == NULL)
        return MMTLS_E_NOMEM;
    if (b->enc == HTTP_ENC_GZIP)
        wbits = 15 + 32; /* gzip or zlib, auto-detected */
    else
        wbits = ((first & 0x0f) == 8 && (first >> 4) <= 7) ? 15 : -15;
    if (inflateInit2(b->z, wbits) != Z_OK) {
        free(b->z);
        b->z = NULL;
        return MMTLS_E_NOMEM;
    }
    h->zlive++;
    b->zlive = &h->zlive;
    return 0;
}

static void body_inflate(struct mmtls_http *h, enum mmtls_http_dir dir, struct http_body *b,
                         const uint8_t *p, size_t n)
{
    uint8_t out[DECOMP_CHUNK];

    if (b->z == NULL) {
        int rc = body_z_init(h, b, p[0]);
        if (rc != 0) {
            if (rc == MMTLS_E_LIMIT)
                h->st.decomp_capped++; /* too many compressed bodies at once */
            else
                h->st.nomem++;
            body_emit(h, dir, b, NULL, 0, MMTLS_HTTP_F_LAST | MMTLS_HTTP_F_TRUNCATED);
            return;
        }
    }
    b->z->next_in = (Bytef *)(uintptr_t)p; /* zlib does not write through next_in */
    b->z->avail_in = (uInt)n;
    /* Each turn consumes input or fills `out`; output is capped by decomp_max. */
    while (!b->done) {
        size_t got;
        int zr;

        b->z->next_out = out;
        b->z->avail_out = sizeof(out);
        zr = inflate(b->z, Z_NO_FLUSH);
        got = sizeof(out) - b->z->avail_out;
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            h->st.decomp_errors++;
            body_emit_decoded(h, dir, b, out, got);
            body_emit(h, dir, b, NULL, 0, MMTLS_HTTP_F_LAST | MMTLS_HTTP_F_TRUNCATED);
            break;
        }
        body_emit_decoded(h, dir, b, out, got);
        if (zr == Z_STREAM_END) {
            /* anything after the end of the compressed data is not delivered */
            body_emit(h, dir, b, NULL, 0, MMTLS_HTTP_F_LAST);
            break;
        }
        if (got == 0 && (b->z->avail_in == 0 || zr == Z_BUF_ERROR))
            break;
        if (b->z->avail_in == 0 && got < sizeof(out))
            break;
    }
}

void mmtls_http_body_data(struct mmtls_http *h, enum mmtls_http_dir dir, struct http_body *b,
                          const uint8_t *p, size_t n, bool last)
{
    uint64_t room;
    size_t take;

    if (!b->active)
        return;
    if (b->done) {
        h->st.body_depth_bytes += n;
        return;
    }
    room = h->depth[dir] - b->seen;
    take = n > room ? (size_t)room : n;
    b->seen += take;
    if (n > take)
        h->st.body_depth_bytes += n - take;
    if (take > 0) {
        if (b->enc != HTTP_ENC_NONE)
            body_inflate(h, dir, b, p, take);
        else
            body_emit(h, dir, b, p, take, 0);
    }
    if (b->done)
        return;
    if (last && n == take) {
        body_emit(h, dir, b, NULL, 0, MMTLS_HTTP_F_LAST);
    } else if (b->seen >= h->depth[dir]) {
        /* inspection depth: the rest of this body is not delivered */
        body_emit(h, dir, b, NULL, 0, MMTLS_HTTP_F_LAST | MMTLS_HTTP_F_TRUNCATED);
    }
}

void mmtls_http_body_end(struct mmtls_http *h, enum mmtls_http_dir dir, struct http_body *b,
                         unsigned flags)
{
    if (b->active && !b->done) {
        if (b->z != NULL && !(flags & MMTLS_HTTP_F_TRUNCATED)) {
            h->st.decomp_errors++; /* the compressed data stopped before its end */
            flags |= MMTLS_HTTP_F_TRUNCATED;
        }
        body_emit(h, dir, b, NULL, 0, MMTLS_HTTP_F_LAST | flags);
    }
    mmtls_http_body_fini(b);
}

/* ------------------------------------------------------------------------------------------ */
/* The parser object                                                                           */

int mmtls_http_new(struct mmtls_http **out, const struct mmtls_http_opts *opts,
                   const struct mmtls_http_cb *cb)
{
    struct mmtls_http *h;
    struct mmtls_http_opts o = {0};

    if (out == NULL || cb == NULL || cb->on_event == NULL)
        return MMTLS_E_INVAL;
    if (opts != NULL) {
        if (opts->sz < sizeof(size_t))
            return MMTLS_E_INVAL;
        memcpy(&o, opts, MMTLS_MIN(opts->sz, sizeof(o)));
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return MMTLS_E_NOMEM;
    h->cb = *cb;
    h->depth[MMTLS_HTTP_TO_SERVER] = o.req_body_depth ? o.req_body_depth : MMTLS_HTTP_DEFAULT_DEPTH;
    h->depth[MMTLS_HTTP_TO_CLIENT] =
        o.resp_body_depth ? o.resp_body_depth : MMTLS_HTTP_DEFAULT_DEPTH;
    h->hdr_max = o.max_header_block ? o.max_header_block : MMTLS_HTTP_DEFAULT_HEADER_MAX;
    h->decomp_max = o.max_decompressed ? o.max_decompressed : MMTLS_HTTP_DEFAULT_DECOMP_MAX;
    h->max_streams = o.max_streams ? o.max_streams : MMTLS_HTTP_DEFAULT_STREAMS;
    if (h->max_streams > HTTP_MAX_STREAMS_CAP)
        h->max_streams = HTTP_MAX_STREAMS_CAP;
    h->alpn_h2 = o.alpn_h2;
    for (int d = 0; d < 2; d++) {
        struct http_fields *f = &h->f[d];
        f->raw.max = f->norm.max = f->cookie.max = h->hdr_max;
        f->method.max = f->target.max = f->authority.max = h->hdr_max;
        f->host.max = f->ua.max = f->status.max = h->hdr_max;
        h->pend[d].max = h->hdr_max;
    }
    if (o.alpn_h2) {
        h->proto = MMTLS_HTTP_PROTO_H2;
        if (mmtls_http_h2_init(h) != 0) {
            mmtls_http_free(h);
            return MMTLS_E_NOMEM;
        }
    }
    *out = h;
    return 0;
}

void mmtls_http_free(struct mmtls_http *h)
{
    if (h == NULL)
        return;
    mmtls_http_h1_fini(h);
    mmtls_http_h2_fini(h);
    for (int d = 0; d < 2; d++) {
        fields_fini(&h->f[d]);
        mmtls_buf_fini(&h->pend[d], false);
    }
    free(h);
}

static int feed_proto(struct mmtls_http *h, enum mmtls_http_dir dir, const uint8_t *p, size_t len)
{
    int rc;

    if (len == 0)
        return h->stopped[dir] ? MMTLS_DECLINED : 0;
    if (h->proto == MMTLS_HTTP_PROTO_H2)
        rc = mmtls_http_h2_feed(h, dir, p, len);
    else
        rc = mmtls_http_h1_feed(h, dir, p, len);
    if (rc == MMTLS_E_NOMEM) {
        h->st.nomem++;
        h->stopped[dir] = true;
    }
    if (h->stopped[dir] && rc == 0)
        rc = MMTLS_DECLINED;
    return rc;
}

/* The protocol is known: replay what was held back, in order per direction. */
static int decided(struct mmtls_http *h, enum mmtls_http_proto proto)
{
    int rc = 0;

    h->proto = (uint8_t)proto;
    if (proto == MMTLS_HTTP_PROTO_H2 && mmtls_http_h2_init(h) != 0) {
        h->st.nomem++;
        h->stopped[0] = h->stopped[1] = true;
        return MMTLS_E_NOMEM;
    }
    for (int d = 0; d < 2; d++) {
        struct mmtls_buf pb = h->pend[d];

        memset(&h->pend[d], 0, sizeof(h->pend[d]));
        if (pb.len > 0) {
            int r = feed_proto(h, (enum mmtls_http_dir)d, pb.p, pb.len);
            if (r < 0)
                rc = r;
        }
        mmtls_buf_fini(&pb, false);
    }
    return rc;
}

int mmtls_http_feed(struct mmtls_http *h, enum mmtls_http_dir dir, const uint8_t *p, size_t len)
{
    if (h == NULL || (unsigned)dir > 1 || (len > 0 && p == NULL))
        return MMTLS_E_INVAL;
    if (h->closed[dir] || h->stopped[dir])
        return MMTLS_DECLINED;
    if (len == 0)
        return 0;
    if (h->proto == MMTLS_HTTP_PROTO_UNKNOWN) {
        if (dir == MMTLS_HTTP_TO_SERVER) {
            /* RFC 9113 §3.4 (prior knowledge) vs an HTTP/1 request line: 24 bytes decide */
            uint8_t tmp[24];
            size_t have = h->pend[0].len, take = MMTLS_MIN(sizeof(tmp) - have, len);
            int rc;

            if (have > 0)
                memcpy(tmp, h->pend[0].p, have);
            memcpy(tmp + have, p, take);
            if (memcmp(tmp, h2_preface, have + take) == 0 && have + take < sizeof(tmp)) {
                if (mmtls_buf_append(&h->pend[0], p, len) != 0) {
                    h->st.nomem++;
                    return MMTLS_E_NOMEM;
                }
                return 0;
            }
            rc = decided(h, memcmp(tmp, h2_preface, have + take) == 0 ? MMTLS_HTTP_PROTO_H2
                                                                      : MMTLS_HTTP_PROTO_H1);
            if (rc < 0)
                return rc;
        } else {
            /* the server spoke first: hold its bytes until the client's decide (bounded) */
            if (len <= h->pend[1].max - h->pend[1].len) {
                if (mmtls_buf_append(&h->pend[1], p, len) != 0) {
                    h->st.nomem++;
                    return MMTLS_E_NOMEM;
                }
                return 0;
            }
            if (decided(h, MMTLS_HTTP_PROTO_H1) < 0)
                return MMTLS_E_NOMEM;
        }
    }
    return feed_proto(h, dir, p, len);
}

uint64_t mmtls_http_skippable(const struct mmtls_http *h, enum mmtls_http_dir dir)
{
    if (h == NULL || (unsigned)dir > 1)
        return 0;
    if (h->stopped[dir] || h->closed[dir])
        return UINT64_MAX;
    switch (h->proto) {
    case MMTLS_HTTP_PROTO_H1: return mmtls_http_h1_skippable(h, dir);
    case MMTLS_HTTP_PROTO_H2: return mmtls_http_h2_skippable(h, dir);
    default: return 0;
    }
}

int mmtls_http_skip(struct mmtls_http *h, enum mmtls_http_dir dir, uint64_t n)
{
    if (h == NULL || (unsigned)dir > 1 || n > mmtls_http_skippable(h, dir))
        return MMTLS_E_INVAL;
    h->st.skipped_bytes += n;
    if (n == 0 || h->stopped[dir] || h->closed[dir])
        return 0;
    if (h->proto == MMTLS_HTTP_PROTO_H1)
        mmtls_http_h1_skip(h, dir, n);
    else if (h->proto == MMTLS_HTTP_PROTO_H2)
        mmtls_http_h2_skip(h, dir, n);
    return 0;
}

void mmtls_http_close(struct mmtls_http *h, enum mmtls_http_dir dir)
{
    if (h == NULL || (unsigned)dir > 1 || h->closed[dir])
        return;
    if (h->proto == MMTLS_HTTP_PROTO_UNKNOWN &&
        (dir == MMTLS_HTTP_TO_SERVER || h->pend[0].len > 0)) {
        /* a client that sent less than 24 bytes and closed: whatever it was, it was not h2 */
        if (decided(h, MMTLS_HTTP_PROTO_H1) < 0)
            h->st.nomem++;
    }
    if (h->proto == MMTLS_HTTP_PROTO_H1)
        mmtls_http_h1_close(h, dir);
    else if (h->proto == MMTLS_HTTP_PROTO_H2)
        mmtls_http_h2_close(h, dir);
    h->closed[dir] = true;
}

enum mmtls_http_proto mmtls_http_proto(const struct mmtls_http *h)
{
    return (enum mmtls_http_proto)h->proto;
}

const struct mmtls_http_stats *mmtls_http_stats(const struct mmtls_http *h)
{
    return &h->st;
}
