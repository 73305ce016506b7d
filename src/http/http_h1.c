/* http_h1 — HTTP/1.x (RFC 9112) message framing: start line and header section buffered (up to
 * the header cap), bodies streamed (Content-Length, chunked, until close), pipelined requests
 * matched to responses in order. */
#include "http/http_int.h"

#define CHUNK_EXT_MAX 4096u /* chunk extensions are skipped; longer than this is malformed */

/* Per-message framing facts gathered from the header section. */
struct h1_msg {
    uint64_t cl;
    bool has_cl, cl_bad;
    bool te, te_chunked;
    bool head, connect; /* requests */
    unsigned status;    /* responses */
};

static void h1_stop(struct mmtls_http *h, enum mmtls_http_dir dir)
{
    h->h1.d[dir].state = H1_STOP;
    h->stopped[dir] = true;
}

/* ------------------------------------------------------------------------------------------ */
/* Transactions                                                                                */

/* The ring keeps the flags of the last MMTLS_HTTP_MAX_PIPELINE transactions; txn_id[] says which
 * transaction owns a slot. */
static uint8_t *txn_flags(struct mmtls_http *h, uint64_t txn)
{
    size_t i = txn % MMTLS_HTTP_MAX_PIPELINE;

    if (h->h1.ring_txn[i] != txn)
        return NULL;
    return &h->h1.ring[i];
}

static void txn_end(struct mmtls_http *h, uint64_t txn, unsigned flags)
{
    uint8_t *fl = txn_flags(h, txn);

    if (fl == NULL || (*fl & H1T_ENDED))
        return;
    *fl |= H1T_ENDED;
    /* a body of this transaction still streaming ends first (cut) */
    for (int d = 0; d < 2; d++) {
        struct http_body *b = &h->h1.d[d].body;
        if (b->active && b->txn == txn)
            mmtls_http_body_end(h, (enum mmtls_http_dir)d, b, MMTLS_HTTP_F_TRUNCATED);
    }
    if (flags & MMTLS_HTTP_F_ABORTED)
        h->st.txns_aborted++;
    else
        h->st.txns_done++;
    mmtls_http_emit(h, txn, MMTLS_HTTP_TO_CLIENT, MMTLS_HTTP_TXN_END, NULL, 0, flags);
}

static void txn_mark(struct mmtls_http *h, uint64_t txn, uint8_t bit)
{
    uint8_t *fl = txn_flags(h, txn);

    if (fl == NULL)
        return;
    *fl |= bit;
    if ((*fl & (H1T_REQ_DONE | H1T_RESP_DONE)) == (H1T_REQ_DONE | H1T_RESP_DONE))
        txn_end(h, txn, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Header section                                                                              */

/* Next line of c without its CR LF; false at the end. */
static bool next_line(struct mmtls_cur *c, struct mmtls_slice *line)
{
    size_t left = mmtls_cur_left(c), n;
    const uint8_t *nl;

    if (left == 0)
        return false;
    nl = memchr(c->p, '\n', left);
    n = nl != NULL ? (size_t)(nl - c->p) : left;
    line->p = c->p;
    line->len = n;
    c->p += nl != NULL ? n + 1 : n;
    if (line->len > 0 && line->p[line->len - 1] == '\r')
        line->len--;
    return true;
}

/* RFC 9110 §5.6.2 tchar */
static bool tchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 9112 §3: method SP request-target SP HTTP-version */
static int request_line(struct mmtls_http *h, struct http_fields *f, struct mmtls_slice l,
                        struct h1_msg *m)
{
    const uint8_t *sp = memchr(l.p, ' ', l.len), *t, *e = l.p + l.len, *v = NULL;
    size_t sl;

    if (sp == NULL || sp == l.p || sp - l.p > 64)
        return MMTLS_E_MALFORMED;
    for (const uint8_t *q = l.p; q < sp; q++) {
        if (!tchar(*q))
            return MMTLS_E_MALFORMED;
    }
    t = sp;
    while (t < e && *t == ' ')
        t++;
    while (e > t && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    for (const uint8_t *q = e; q > t; q--) {
        if (q[-1] == ' ') {
            v = q;
            break;
        }
    }
    if (v != NULL && 5 <= (size_t)(e - v) && memcmp(v, "HTTP/", 5) == 0) {
        e = v - 1;
        while (e > t && e[-1] == ' ')
            e--;
    } else {
        h->st.bad_start_line++; /* HTTP/0.9 or junk after the target: keep the target */
    }
    if (e == t)
        return MMTLS_E_MALFORMED;
    m->head = mmtls_http_ieq(l.p, (size_t)(sp - l.p), "head");
    m->connect = mmtls_http_ieq(l.p, (size_t)(sp - l.p), "connect");
    f->has_method = f->has_target = true;
    MMTLS_TRY(mmtls_http_fields_put(f, &f->method, l.p, (size_t)(sp - l.p)));
    MMTLS_TRY(mmtls_http_fields_put(f, &f->target, t, (size_t)(e - t)));
    /* RFC 9112 §3.2.2: absolute-form carries the authority */
    sl = mmtls_http_scheme_len(t, (size_t)(e - t));
    if (sl > 0) {
        const uint8_t *a = t + sl, *ae = a;
        while (ae < e && *ae != '/' && *ae != '?' && *ae != '#')
            ae++;
        if (ae > a) {
            f->has_authority = true;
            MMTLS_TRY(mmtls_http_fields_put(f, &f->authority, a, (size_t)(ae - a)));
        }
    }
    return 0;
}

/* RFC 9112 §4: HTTP-version SP status-code SP [ reason-phrase ] */
static int status_line(struct mmtls_http *h, struct http_fields *f, struct mmtls_slice l,
                       struct h1_msg *m)
{
    const uint8_t *sp, *s;

    if (l.len < 5 || memcmp(l.p, "HTTP/", 5) != 0)
        return MMTLS_E_MALFORMED;
    sp = memchr(l.p, ' ', l.len);
    if (sp == NULL)
        return MMTLS_E_MALFORMED;
    s = sp;
    while (s < l.p + l.len && *s == ' ')
        s++;
    if (3 > (size_t)(l.p + l.len - s))
        return MMTLS_E_MALFORMED;
    for (int i = 0; i < 3; i++) {
        if (s[i] < '0' || s[i] > '9')
            return MMTLS_E_MALFORMED;
    }
    if ((size_t)(l.p + l.len - s) > 3 && s[3] != ' ' && s[3] != '\t')
        return MMTLS_E_MALFORMED;
    m->status = (unsigned)((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'));
    f->has_status = true;
    (void)h;
    return mmtls_http_fields_put(f, &f->status, s, 3);
}

/* RFC 9112 §6.1/§6.3: the framing fields */
static void framing_field(struct mmtls_http *h, struct h1_msg *m, struct mmtls_slice name,
                          const uint8_t *v, size_t vl)
{
    while (vl > 0 && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        vl--;
    }
    while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    if (mmtls_http_ieq(name.p, name.len, "content-length")) {
        uint64_t n = 0;
        bool ok = vl > 0 && vl <= 19;

        for (size_t i = 0; ok && i < vl; i++) {
            if (v[i] < '0' || v[i] > '9')
                ok = false;
            else
                n = n * 10 + (uint64_t)(v[i] - '0');
        }
        /* RFC 9110 §8.6: differing values, or not a number, is an unrecoverable error */
        if (!ok || (m->has_cl && m->cl != n)) {
            m->cl_bad = true;
            h->st.bad_content_length++;
        }
        m->has_cl = true;
        m->cl = n;
    } else if (mmtls_http_ieq(name.p, name.len, "transfer-encoding")) {
        /* RFC 9112 §6.3 rule 4: chunked must be the final coding */
        size_t s = vl;
        while (s > 0 && v[s - 1] != ',')
            s--;
        while (s < vl && (v[s] == ' ' || v[s] == '\t'))
            s++;
        m->te = true;
        m->te_chunked = mmtls_http_ieq(v + s, vl - s, "chunked");
    }
}

/* Parses the buffered header section of direction dir into h->f[dir] and m. */
static int parse_block(struct mmtls_http *h, enum mmtls_http_dir dir, struct h1_msg *m,
                       struct mmtls_slice *raw_hdrs)
{
    struct http_fields *f = &h->f[dir];
    struct mmtls_cur c = mmtls_cur_make(f->raw.p, f->raw.len);
    struct mmtls_slice l;
    bool folded_norm = false; /* the previous field went to the normalised block */
    unsigned guard = 0;

    if (!next_line(&c, &l))
        return MMTLS_E_MALFORMED;
    if (dir == MMTLS_HTTP_TO_SERVER)
        MMTLS_TRY(request_line(h, f, l, m));
    else
        MMTLS_TRY(status_line(h, f, l, m));
    raw_hdrs->p = c.p;
    raw_hdrs->len = mmtls_cur_left(&c);
    /* every line consumes at least one byte: the loop is bounded by the header cap */
    while (next_line(&c, &l) && l.len > 0 && guard++ < h->hdr_max) {
        const uint8_t *colon;
        struct mmtls_slice name;

        if (l.p[0] == ' ' || l.p[0] == '\t') {
            /* RFC 9112 §5.2: obs-fold, replaced by SP */
            h->st.obs_fold++;
            if (folded_norm && !f->truncated && f->norm.len >= 2) {
                size_t vl = l.len;
                const uint8_t *v = l.p;
                while (vl > 0 && (v[0] == ' ' || v[0] == '\t')) {
                    v++;
                    vl--;
                }
                f->norm.len -= 2;
                MMTLS_TRY(mmtls_http_fields_put(f, &f->norm, " ", 1));
                MMTLS_TRY(mmtls_http_fields_put(f, &f->norm, v, vl));
                MMTLS_TRY(mmtls_http_fields_put(f, &f->norm, "\r\n", 2));
            }
            continue;
        }
        colon = memchr(l.p, ':', l.len);
        if (colon == NULL || colon == l.p) {
            h->st.bad_header_line++;
            folded_norm = false;
            continue;
        }
        name.p = l.p;
        name.len = (size_t)(colon - l.p);
        if (name.p[name.len - 1] == ' ' || name.p[name.len - 1] == '\t') {
            /* RFC 9112 §5.1: no whitespace between name and colon */
            h->st.bad_header_line++;
            while (name.len > 0 && (name.p[name.len - 1] == ' ' || name.p[name.len - 1] == '\t'))
                name.len--;
            if (name.len == 0)
                continue;
        }
        framing_field(h, m, name, colon + 1, (size_t)(l.p + l.len - colon - 1));
        {
            size_t before = f->norm.len;
            MMTLS_TRY(mmtls_http_field(h, f, dir, name.p, name.len, colon + 1,
                                       (size_t)(l.p + l.len - colon - 1)));
            folded_norm = f->norm.len != before;
        }
    }
    return 0;
}

static void msg_done(struct mmtls_http *h, enum mmtls_http_dir dir)
{
    struct h1_dir *d = &h->h1.d[dir];

    mmtls_http_body_end(h, dir, &d->body, 0);
    d->state = H1_START;
    d->lead = 0;
    txn_mark(h, d->txn, dir == MMTLS_HTTP_TO_SERVER ? H1T_REQ_DONE : H1T_RESP_DONE);
}

static void tunnel(struct mmtls_http *h)
{
    h->st.tunnels++;
    h1_stop(h, MMTLS_HTTP_TO_SERVER);
    h1_stop(h, MMTLS_HTTP_TO_CLIENT);
}

/* The header section of dir is complete in h->f[dir].raw: deliver it and set up the body. */
static int headers_done(struct mmtls_http *h, enum mmtls_http_dir dir)
{
    struct h1_dir *d = &h->h1.d[dir];
    struct http_fields *f = &h->f[dir];
    struct h1_msg m = {0};
    struct mmtls_slice raw = {NULL, 0};
    int rc = parse_block(h, dir, &m, &raw);

    if (rc == MMTLS_E_NOMEM)
        return rc;
    if (rc != 0) {
        h->st.bad_start_line++;
        h1_stop(h, dir);
        return 0;
    }
    if (d->hdr_over)
        f->truncated = true;
    if (dir == MMTLS_HTTP_TO_SERVER) {
        struct h1_conn *c = &h->h1;
        size_t slot = (c->req_seq + 1) % MMTLS_HTTP_MAX_PIPELINE;

        if (c->ring_txn[slot] != 0 && !(c->ring[slot] & H1T_ENDED)) {
            h->st.pipeline_overflow++;
            h1_stop(h, dir);
            return 0;
        }
        d->txn = ++c->req_seq;
        c->ring_txn[slot] = d->txn;
        c->ring[slot] =
            (uint8_t)(H1T_LIVE | (m.head ? H1T_HEAD : 0) | (m.connect ? H1T_CONNECT : 0));
        mmtls_http_deliver_request(h, d->txn, f, raw.p, raw.len);
        if (m.connect) {
            /* RFC 9110 §9.3.6: what follows CONNECT is a tunnel (or a new request after a
             * refusal, which is not followed) */
            d->state = H1_START;
            txn_mark(h, d->txn, H1T_REQ_DONE);
            h1_stop(h, dir);
            return 0;
        }
        if (m.te) {
            if (m.has_cl)
                h->st.bad_transfer_encoding++;
            if (!m.te_chunked) {
                /* RFC 9112 §6.3 rule 4: a request body length cannot be determined */
                h->st.bad_transfer_encoding++;
                msg_done(h, dir);
                h1_stop(h, dir);
                return 0;
            }
            mmtls_http_body_begin(h, &d->body, d->txn, HTTP_ENC_NONE);
            d->state = H1_CHUNK_SIZE;
            d->digits = 0;
            d->remain = 0;
            return 0;
        }
        if (m.cl_bad) {
            msg_done(h, dir);
            h1_stop(h, dir);
            return 0;
        }
        if (m.has_cl && m.cl > 0) {
            mmtls_http_body_begin(h, &d->body, d->txn, HTTP_ENC_NONE);
            d->state = H1_BODY_CL;
            d->remain = m.cl;
            return 0;
        }
        msg_done(h, dir);
        return 0;
    }

    /* response */
    if (m.status >= 100 && m.status < 200 && m.status != 101) {
        h->st.interim_responses++; /* RFC 9110 §15.2: a final response follows */
        d->state = H1_START;
        d->lead = 0;
        return 0;
    }
    {
        struct h1_conn *c = &h->h1;
        uint8_t *fl;
        uint8_t rf;

        d->txn = ++c->resp_seq;
        if (c->resp_seq > c->req_seq) {
            size_t slot = d->txn % MMTLS_HTTP_MAX_PIPELINE;
            h->st.response_without_request++;
            c->req_seq = c->resp_seq;
            c->ring_txn[slot] = d->txn;
            c->ring[slot] = H1T_LIVE | H1T_REQ_DONE;
        }
        fl = txn_flags(h, d->txn);
        rf = fl != NULL ? *fl : 0;
        mmtls_http_deliver_response(h, d->txn, f, raw.p, raw.len);
        if (m.status == 101 || ((rf & H1T_CONNECT) && m.status >= 200 && m.status < 300)) {
            msg_done(h, dir);
            tunnel(h);
            return 0;
        }
        /* RFC 9112 §6.3 rule 1: no content */
        if ((rf & H1T_HEAD) || m.status == 204 || m.status == 304) {
            msg_done(h, dir);
            return 0;
        }
        mmtls_http_body_begin(h, &d->body, d->txn, f->enc_other ? HTTP_ENC_NONE : f->enc);
        if (f->enc_other)
            h->st.unsupported_encoding++;
        if (m.te) {
            if (m.has_cl)
                h->st.bad_transfer_encoding++;
            d->state = m.te_chunked ? H1_CHUNK_SIZE : H1_BODY_EOF; /* rule 4 */
            d->digits = 0;
            d->remain = 0;
            return 0;
        }
        if (m.has_cl && !m.cl_bad) {
            if (m.cl == 0) {
                msg_done(h, dir);
                return 0;
            }
            d->state = H1_BODY_CL;
            d->remain = m.cl;
            return 0;
        }
        d->state = H1_BODY_EOF; /* rule 8: until the connection closes */
        return 0;
    }
}

/* Accumulates header-section bytes; returns how many of p were consumed (all, or up to the end
 * of the section, after which *done is set). */
static size_t header_bytes(struct mmtls_http *h, struct h1_dir *d, struct http_fields *f,
                           const uint8_t *p, size_t n, bool *done, int *err)
{
    size_t i, room;

    *done = false;
    *err = 0;
    for (i = 0; i < n; i++) {
        if (p[i] == '\n') {
            if (d->line_len == 0) {
                *done = true;
                i++;
                break;
            }
            d->line_len = 0;
        } else if (p[i] != '\r') {
            d->line_len++;
        }
    }
    room = f->raw.max - f->raw.len;
    if (i > room && !d->hdr_over) {
        d->hdr_over = true;
        h->st.header_overflow++;
    }
    if (mmtls_buf_append(&f->raw, p, MMTLS_MIN(i, room)) != 0)
        *err = MMTLS_E_NOMEM;
    return i;
}

static bool chunk_line_end(struct mmtls_http *h, struct h1_dir *d)
{
    if (d->digits == 0)
        return false;
    if (d->remain == 0) {
        d->state = H1_TRAILER; /* RFC 9112 §7.1: last-chunk, then trailer section */
        d->line_len = 0;
        d->trailer_len = 0;
    } else {
        d->state = H1_CHUNK_DATA;
    }
    return true;
}

int mmtls_http_h1_feed(struct mmtls_http *h, enum mmtls_http_dir dir, const uint8_t *p, size_t len)
{
    struct h1_dir *d = &h->h1.d[dir];
    size_t i = 0;

    while (i < len) {
        size_t left = len - i, take;
        uint8_t c = p[i];
        int v;

        switch (d->state) {
        case H1_START:
            /* RFC 9112 §2.2: empty lines before a request line are ignored */
            if (c == '\r' || c == '\n') {
                i++;
                if (++d->lead > 1024) {
                    h->st.bad_start_line++;
                    h1_stop(h, dir);
                }
                break;
            }
            mmtls_http_fields_reset(&h->f[dir]);
            d->state = H1_HEADERS;
            d->line_len = 0;
            d->hdr_over = false;
            break;
        case H1_HEADERS: {
            bool done;
            int err;

            i += header_bytes(h, d, &h->f[dir], p + i, left, &done, &err);
            if (err != 0)
                return err;
            if (done)
                MMTLS_TRY(headers_done(h, dir));
            break;
        }
        case H1_BODY_CL:
        case H1_CHUNK_DATA:
            take = left < d->remain ? left : (size_t)d->remain;
            d->remain -= take;
            mmtls_http_body_data(h, dir, &d->body, p + i, take,
                                 d->state == H1_BODY_CL && d->remain == 0);
            i += take;
            if (d->remain == 0) {
                if (d->state == H1_BODY_CL) {
                    msg_done(h, dir);
                } else {
                    d->state = H1_CHUNK_CRLF;
                    d->saw_cr = false;
                }
            }
            break;
        case H1_BODY_EOF:
            mmtls_http_body_data(h, dir, &d->body, p + i, left, false);
            i = len;
            break;
        case H1_CHUNK_SIZE:
            /* RFC 9112 §7.1: chunk-size = 1*HEXDIG */
            i++;
            v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
            if (v >= 0 && !d->saw_cr) {
                if (++d->digits > 16) {
                    h->st.bad_chunk++;
                    msg_done(h, dir);
                    h1_stop(h, dir);
                    break;
                }
                d->remain = d->remain << 4 | (uint64_t)v;
            } else if ((c == ';' || c == ' ' || c == '\t') && !d->saw_cr) {
                d->state = H1_CHUNK_EXT;
                d->trailer_len = 0;
            } else if (c == '\r' && !d->saw_cr) {
                d->saw_cr = true;
            } else if (c != '\n' || !chunk_line_end(h, d)) {
                h->st.bad_chunk++;
                msg_done(h, dir);
                h1_stop(h, dir);
            } else {
                d->saw_cr = false;
            }
            break;
        case H1_CHUNK_EXT:
            i++;
            if (c == '\n') {
                if (!chunk_line_end(h, d)) {
                    h->st.bad_chunk++;
                    msg_done(h, dir);
                    h1_stop(h, dir);
                }
                d->saw_cr = false;
            } else if (++d->trailer_len > CHUNK_EXT_MAX) {
                h->st.bad_chunk++;
                msg_done(h, dir);
                h1_stop(h, dir);
            }
            break;
        case H1_CHUNK_CRLF:
            i++;
            if (c == '\r' && !d->saw_cr) {
                d->saw_cr = true;
            } else if (c == '\n') {
                d->state = H1_CHUNK_SIZE;
                d->digits = 0;
                d->remain = 0;
                d->saw_cr = false;
            } else {
                h->st.bad_chunk++;
                msg_done(h, dir);
                h1_stop(h, dir);
            }
            break;
        case H1_TRAILER:
            /* RFC 9112 §7.1.2: trailer fields are not delivered; the empty line ends the
             * message.  The section is bounded by the header cap. */
            i++;
            if (c == '\n') {
                if (d->line_len == 0) {
                    msg_done(h, dir);
                    break;
                }
                d->line_len = 0;
            } else if (c != '\r') {
                d->line_len++;
            }
            if (++d->trailer_len > h->hdr_max) {
                h->st.header_overflow++;
                msg_done(h, dir);
                h1_stop(h, dir);
            }
            break;
        default: /* H1_STOP */ return MMTLS_DECLINED;
        }
    }
    return d->state == H1_STOP ? MMTLS_DECLINED : 0;
}

uint64_t mmtls_http_h1_skippable(const struct mmtls_http *h, enum mmtls_http_dir dir)
{
    const struct h1_dir *d = &h->h1.d[dir];

    switch (d->state) {
    case H1_STOP: return UINT64_MAX;
    case H1_BODY_EOF: return d->body.done ? UINT64_MAX : 0;
    case H1_BODY_CL:
    case H1_CHUNK_DATA: return d->body.done ? d->remain : 0;
    default: return 0;
    }
}

void mmtls_http_h1_skip(struct mmtls_http *h, enum mmtls_http_dir dir, uint64_t n)
{
    struct h1_dir *d = &h->h1.d[dir];

    if (d->state != H1_BODY_CL && d->state != H1_CHUNK_DATA)
        return; /* EOF body or stopped: nothing to track */
    d->remain -= n;
    if (d->remain > 0)
        return;
    if (d->state == H1_BODY_CL) {
        msg_done(h, dir);
    } else {
        d->state = H1_CHUNK_CRLF;
        d->saw_cr = false;
    }
}

void mmtls_http_h1_close(struct mmtls_http *h, enum mmtls_http_dir dir)
{
    struct h1_dir *d = &h->h1.d[dir];
    enum mmtls_http_dir o =
        dir == MMTLS_HTTP_TO_SERVER ? MMTLS_HTTP_TO_CLIENT : MMTLS_HTTP_TO_SERVER;

    if (d->state == H1_BODY_EOF) {
        msg_done(h, dir); /* RFC 9112 §6.3 rule 8 */
    } else if (d->state == H1_HEADERS) {
        h->st.truncated_messages++;
    } else if (d->state != H1_START && d->state != H1_STOP) {
        h->st.truncated_messages++;
        mmtls_http_body_end(h, dir, &d->body, MMTLS_HTTP_F_TRUNCATED);
        uint8_t *fl = txn_flags(h, d->txn);
        if (dir == MMTLS_HTTP_TO_SERVER && fl != NULL && !(*fl & H1T_RESP_DONE))
            *fl |= H1T_REQ_DONE; /* its response may still come: it ends then, or aborted */
        else
            txn_end(h, d->txn, MMTLS_HTTP_F_ABORTED);
    }
    d->state = H1_STOP;
    if (dir == MMTLS_HTTP_TO_CLIENT || h->closed[o]) {
        /* no response can complete any more: the open transactions end, oldest first */
        uint64_t t = h->h1.req_seq >= MMTLS_HTTP_MAX_PIPELINE
                         ? h->h1.req_seq - MMTLS_HTTP_MAX_PIPELINE + 1
                         : 1;
        for (; t <= h->h1.req_seq; t++)
            txn_end(h, t, MMTLS_HTTP_F_ABORTED);
    }
}

void mmtls_http_h1_fini(struct mmtls_http *h)
{
    for (int d = 0; d < 2; d++)
        mmtls_http_body_fini(&h->h1.d[d].body);
}
