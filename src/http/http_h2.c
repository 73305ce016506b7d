/* http_h2 — HTTP/2 (RFC 9113) framing for inspection.  Frames are parsed as a byte stream (no
 * frame is buffered): the 9-byte header and the few fixed prefix fields (pad length, priority,
 * promised stream) are collected, then the payload is handed on as it arrives: DATA to the
 * stream's body, header block fragments to the direction's HPACK inflater (libnghttp2,
 * RFC 7541), SETTINGS entries to the peer direction's inflater limit.  Each stream is one
 * transaction (id = stream id). */
#include "http/http_int.h"

#include <stdlib.h>

/* RFC 9113 §6: frame types and flags */
#define F_DATA 0x0
#define F_HEADERS 0x1
#define F_PRIORITY 0x2
#define F_RST_STREAM 0x3
#define F_SETTINGS 0x4
#define F_PUSH_PROMISE 0x5
#define F_PING 0x6
#define F_GOAWAY 0x7
#define F_WINDOW_UPDATE 0x8
#define F_CONTINUATION 0x9

#define FL_END_STREAM 0x1
#define FL_ACK 0x1
#define FL_END_HEADERS 0x4
#define FL_PADDED 0x8
#define FL_PRIORITY 0x20

#define SETTINGS_HEADER_TABLE_SIZE 0x1
#define HPACK_TABLE_MAX 65536u /* largest decoder table we accept from SETTINGS */

static const uint8_t preface[24] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static struct h2_stream *stream_find(struct mmtls_http *h, uint32_t id)
{
    if (id == 0)
        return NULL;
    for (uint32_t i = 0; i < h->max_streams; i++) {
        if (h->h2.streams[i].id == id)
            return &h->h2.streams[i];
    }
    return NULL;
}

static struct h2_stream *stream_new(struct mmtls_http *h, uint32_t id)
{
    for (uint32_t i = 0; i < h->max_streams; i++) {
        struct h2_stream *s = &h->h2.streams[i];
        if (s->id == 0) {
            memset(s, 0, sizeof(*s));
            s->id = id;
            h->h2.nstreams++;
            return s;
        }
    }
    h->st.h2_streams_over_cap++;
    return NULL;
}

static void stream_free(struct mmtls_http *h, struct h2_stream *s)
{
    mmtls_http_body_fini(&s->body[0]);
    mmtls_http_body_fini(&s->body[1]);
    s->id = 0;
    h->h2.nstreams--;
}

static void stream_maybe_end(struct mmtls_http *h, struct h2_stream *s)
{
    if (!s->ended[0] || !s->ended[1])
        return;
    h->st.txns_done++;
    mmtls_http_emit(h, s->id, MMTLS_HTTP_TO_CLIENT, MMTLS_HTTP_TXN_END, NULL, 0, 0);
    stream_free(h, s);
}

static void stream_abort(struct mmtls_http *h, struct h2_stream *s)
{
    mmtls_http_body_end(h, MMTLS_HTTP_TO_SERVER, &s->body[0], MMTLS_HTTP_F_TRUNCATED);
    mmtls_http_body_end(h, MMTLS_HTTP_TO_CLIENT, &s->body[1], MMTLS_HTTP_F_TRUNCATED);
    h->st.txns_aborted++;
    mmtls_http_emit(h, s->id, MMTLS_HTTP_TO_CLIENT, MMTLS_HTTP_TXN_END, NULL, 0,
                    MMTLS_HTTP_F_ABORTED);
    stream_free(h, s);
}

/* END_STREAM from direction dir (RFC 9113 §5.1: half-closed). */
static void stream_dir_end(struct mmtls_http *h, struct h2_stream *s, enum mmtls_http_dir dir)
{
    mmtls_http_body_end(h, dir, &s->body[dir], 0);
    s->ended[dir] = true;
    stream_maybe_end(h, s);
}

int mmtls_http_h2_init(struct mmtls_http *h)
{
    h->h2.streams = calloc(h->max_streams, sizeof(*h->h2.streams));
    if (h->h2.streams == NULL)
        return MMTLS_E_NOMEM;
    for (int d = 0; d < 2; d++) {
        if (nghttp2_hd_inflate_new(&h->h2.d[d].inf) != 0)
            return MMTLS_E_NOMEM; /* the caller frees */
    }
    return 0;
}

void mmtls_http_h2_fini(struct mmtls_http *h)
{
    if (h->h2.streams != NULL) {
        for (uint32_t i = 0; i < h->max_streams; i++) {
            mmtls_http_body_fini(&h->h2.streams[i].body[0]);
            mmtls_http_body_fini(&h->h2.streams[i].body[1]);
        }
        free(h->h2.streams);
        h->h2.streams = NULL;
    }
    for (int d = 0; d < 2; d++) {
        if (h->h2.d[d].inf != NULL)
            nghttp2_hd_inflate_del(h->h2.d[d].inf);
        h->h2.d[d].inf = NULL;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Header blocks                                                                               */

/* One decoded field of the block in progress. */
static int h2_field(struct mmtls_http *h, enum mmtls_http_dir dir, const nghttp2_nv *nv)
{
    struct h2_dir *d = &h->h2.d[dir];
    struct http_fields *f = &h->f[dir];

    if (d->block_kind != H2B_REQUEST && d->block_kind != H2B_RESPONSE)
        return 0; /* decoded only to keep the dynamic table in step */
    MMTLS_TRY(mmtls_http_fields_put(f, &f->raw, nv->name, nv->namelen));
    MMTLS_TRY(mmtls_http_fields_put(f, &f->raw, ": ", 2));
    MMTLS_TRY(mmtls_http_fields_put(f, &f->raw, nv->value, nv->valuelen));
    MMTLS_TRY(mmtls_http_fields_put(f, &f->raw, "\r\n", 2));
    if (nv->namelen > 0 && nv->name[0] == ':') {
        /* RFC 9113 §8.3: pseudo-header fields (first occurrence kept) */
        struct mmtls_buf *b = NULL;
        bool *has = NULL;

        if (dir == MMTLS_HTTP_TO_SERVER && mmtls_http_ieq(nv->name, nv->namelen, ":method")) {
            b = &f->method;
            has = &f->has_method;
        } else if (dir == MMTLS_HTTP_TO_SERVER && mmtls_http_ieq(nv->name, nv->namelen, ":path")) {
            b = &f->target;
            has = &f->has_target;
        } else if (dir == MMTLS_HTTP_TO_SERVER &&
                   mmtls_http_ieq(nv->name, nv->namelen, ":authority")) {
            b = &f->authority;
            has = &f->has_authority;
        } else if (dir == MMTLS_HTTP_TO_CLIENT &&
                   mmtls_http_ieq(nv->name, nv->namelen, ":status")) {
            b = &f->status;
            has = &f->has_status;
        }
        if (b == NULL || *has)
            return 0;
        *has = true;
        return mmtls_http_fields_put(f, b, nv->value, nv->valuelen);
    }
    return mmtls_http_field(h, f, dir, nv->name, nv->namelen, nv->value, nv->valuelen);
}

static void hpack_broken(struct mmtls_http *h, struct h2_dir *d)
{
    if (!d->hpack_broken)
        h->st.h2_hpack_errors++;
    d->hpack_broken = true;
}

/* Feeds a header block fragment to the inflater; `final` on the block's last bytes. */
static int hpack_feed(struct mmtls_http *h, enum mmtls_http_dir dir, const uint8_t *p, size_t n,
                      bool final)
{
    static const uint8_t empty[1] = {0};
    struct h2_dir *d = &h->h2.d[dir];

    if (d->hpack_broken)
        return 0;
    if (n == 0)
        p = empty; /* never hand NULL to the library */
    /* each turn consumes input or emits a field; a field needs at least one input byte */
    for (size_t guard = 0, turns = n + 2; guard < turns; guard++) {
        nghttp2_nv nv;
        int fl = 0;
        ssize_t rv = nghttp2_hd_inflate_hd2(d->inf, &nv, &fl, p, n, final ? 1 : 0);

        if (rv < 0 || (size_t)rv > n) {
            hpack_broken(h, d);
            return 0;
        }
        p += rv;
        n -= (size_t)rv;
        if (fl & NGHTTP2_HD_INFLATE_EMIT)
            MMTLS_TRY(h2_field(h, dir, &nv));
        if (fl & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(d->inf);
            if (d->table_pending) {
                d->table_pending = false;
                if (nghttp2_hd_inflate_change_table_size(d->inf, d->table_size) != 0)
                    hpack_broken(h, d);
            }
            return 0;
        }
        if (!(fl & NGHTTP2_HD_INFLATE_EMIT) && n == 0)
            return 0;
    }
    hpack_broken(h, d); /* no progress: never expected from the library */
    return 0;
}

/* A HEADERS frame starts a block (RFC 9113 §6.2): decide what it is for. */
static void block_start(struct mmtls_http *h, enum mmtls_http_dir dir)
{
    struct h2_dir *d = &h->h2.d[dir];
    struct h2_stream *s = stream_find(h, d->sid);

    d->in_block = true;
    d->block_sid = d->sid;
    d->block_end_stream = (d->flags & FL_END_STREAM) != 0;
    d->block_kind = H2B_IGNORE;
    mmtls_http_fields_reset(&h->f[dir]);
    if (dir == MMTLS_HTTP_TO_SERVER) {
        if (s == NULL) {
            /* RFC 9113 §5.1.1: client streams are odd */
            if ((d->sid & 1) == 0) {
                h->st.h2_bad_frames++;
                return;
            }
            s = stream_new(h, d->sid);
            if (s != NULL)
                d->block_kind = H2B_REQUEST;
        } else {
            d->block_kind = s->blocks[0] > 0 ? H2B_TRAILER : H2B_REQUEST;
        }
        if (s != NULL)
            s->blocks[0]++;
    } else if (s != NULL) {
        d->block_kind = s->has_resp ? H2B_TRAILER : H2B_RESPONSE;
        s->blocks[1]++;
    }
}

/* END_HEADERS: the block is decoded; deliver it. */
static void block_end(struct mmtls_http *h, enum mmtls_http_dir dir)
{
    struct h2_dir *d = &h->h2.d[dir];
    struct http_fields *f = &h->f[dir];
    struct h2_stream *s = stream_find(h, d->block_sid);

    d->in_block = false;
    if (d->hpack_broken || s == NULL || d->block_kind == H2B_IGNORE)
        return;
    if (s->ended[dir]) {
        /* A header block after this side's END_STREAM (RFC 9113 §5.1: half-closed, a
         * STREAM_CLOSED error): a new message or body would outlive the transaction. */
        h->st.h2_bad_frames++;
        return;
    }
    switch (d->block_kind) {
    case H2B_REQUEST:
        mmtls_http_deliver_request(h, s->id, f, f->raw.p, f->raw.len);
        if (!d->block_end_stream)
            mmtls_http_body_begin(h, &s->body[0], s->id, HTTP_ENC_NONE);
        break;
    case H2B_RESPONSE:
        if (f->has_status && f->status.len == 3 && f->status.p[0] == '1') {
            /* RFC 9113 §8.1: 1xx, a final response follows */
            h->st.interim_responses++;
            return;
        }
        s->has_resp = true;
        mmtls_http_deliver_response(h, s->id, f, f->raw.p, f->raw.len);
        if (f->enc_other)
            h->st.unsupported_encoding++;
        if (!d->block_end_stream) {
            mmtls_http_body_begin(h, &s->body[1], s->id, f->enc_other ? HTTP_ENC_NONE : f->enc);
        }
        break;
    default: h->st.h2_trailers++; break;
    }
    if (d->block_end_stream)
        stream_dir_end(h, s, dir);
}

/* ------------------------------------------------------------------------------------------ */
/* Frames                                                                                      */

/* The 9-byte frame header is in d->fh (RFC 9113 §4.1). */
static void frame_start(struct mmtls_http *h, enum mmtls_http_dir dir)
{
    struct h2_dir *d = &h->h2.d[dir];
    uint32_t len = (uint32_t)d->fh[0] << 16 | (uint32_t)d->fh[1] << 8 | d->fh[2];

    d->type = d->fh[3];
    d->flags = d->fh[4];
    d->sid = mmtls_be32(d->fh + 5) & 0x7fffffffu; /* R bit ignored */
    d->prefix_need = d->prefix_have = 0;
    d->content_left = len;
    d->pad_left = 0;
    d->setting_have = 0;
    d->ignore = false;
    h->st.h2_frames++;

    /* RFC 9113 §6.10: a header block is only continued by CONTINUATION on its stream */
    if (d->in_block && (d->type != F_CONTINUATION || d->sid != d->block_sid)) {
        h->st.h2_bad_frames++;
        hpack_broken(h, d);
        d->in_block = false;
    }
    switch (d->type) {
    case F_DATA:
        d->prefix_need = (d->flags & FL_PADDED) ? 1 : 0;
        if (d->sid == 0) {
            h->st.h2_bad_frames++;
            d->ignore = true;
        }
        break;
    case F_HEADERS:
        d->prefix_need =
            (uint8_t)(((d->flags & FL_PADDED) ? 1 : 0) + ((d->flags & FL_PRIORITY) ? 5 : 0));
        if (d->sid == 0) {
            h->st.h2_bad_frames++;
            hpack_broken(h, d);
            d->ignore = true;
        }
        break;
    case F_PUSH_PROMISE:
        /* RFC 9113 §6.6: only servers push; the promised request is decoded but not followed */
        h->st.h2_push_promises++;
        d->prefix_need = (uint8_t)(((d->flags & FL_PADDED) ? 1 : 0) + 4);
        if (dir == MMTLS_HTTP_TO_SERVER || d->sid == 0) {
            h->st.h2_bad_frames++;
            hpack_broken(h, d);
            d->ignore = true;
        }
        break;
    case F_CONTINUATION:
        if (!d->in_block) {
            h->st.h2_bad_frames++;
            d->ignore = true;
        }
        break;
    case F_SETTINGS:
        h->st.h2_settings++;
        /* RFC 9113 §6.5: stream 0, a multiple of 6 octets, empty when ACK */
        if (d->sid != 0 || len % 6 != 0 || ((d->flags & FL_ACK) && len != 0)) {
            h->st.h2_bad_frames++;
            d->ignore = true;
        }
        break;
    case F_RST_STREAM:
        if (len != 4 || d->sid == 0) {
            h->st.h2_bad_frames++;
            d->ignore = true;
        } else {
            d->prefix_need = 4; /* the error code, read as a prefix */
        }
        break;
    case F_GOAWAY: h->st.h2_goaways++; break;
    default: break; /* PRIORITY, PING, WINDOW_UPDATE, unknown (RFC 9113 §5.5): skipped */
    }
    if (d->prefix_need > len) {
        h->st.h2_bad_frames++;
        if (d->type == F_HEADERS || d->type == F_PUSH_PROMISE)
            hpack_broken(h, d);
        d->ignore = true;
        d->prefix_need = 0;
    }
    if (d->ignore)
        d->prefix_need = 0;
    d->content_left = len - d->prefix_need;
    if (d->type == F_HEADERS && !d->ignore)
        block_start(h, dir);
    if (d->type == F_PUSH_PROMISE && !d->ignore) {
        d->in_block = true;
        d->block_sid = d->sid;
        d->block_end_stream = false;
        d->block_kind = H2B_IGNORE;
    }
    d->state = d->prefix_need > 0 ? H2_PREFIX : H2_CONTENT;
}

/* The prefix fields are in d->prefix. */
static void prefix_done(struct mmtls_http *h, enum mmtls_http_dir dir)
{
    struct h2_dir *d = &h->h2.d[dir];
    uint32_t pad;

    if (d->type == F_RST_STREAM) {
        struct h2_stream *s = stream_find(h, d->sid);
        h->st.h2_rst_streams++;
        if (s != NULL)
            stream_abort(h, s); /* RFC 9113 §6.4: the stream is closed */
        d->state = H2_CONTENT;
        return;
    }
    pad = (d->flags & FL_PADDED) ? d->prefix[0] : 0;
    if (pad > d->content_left) {
        /* RFC 9113 §6.1: padding longer than the payload is a connection error */
        h->st.h2_bad_frames++;
        if (d->type != F_DATA) {
            hpack_broken(h, d);
            d->in_block = false;
        }
        d->ignore = true;
        pad = 0;
    }
    d->content_left -= pad;
    d->pad_left = pad;
    d->state = H2_CONTENT;
}

static void settings_entry(struct mmtls_http *h, enum mmtls_http_dir dir)
{
    struct h2_dir *d = &h->h2.d[dir];
    struct h2_dir *peer = &h->h2.d[dir == MMTLS_HTTP_TO_SERVER ? 1 : 0];
    uint16_t id = mmtls_be16(d->setting);
    uint32_t v = mmtls_be32(d->setting + 2);

    if (id != SETTINGS_HEADER_TABLE_SIZE)
        return;
    /* RFC 9113 §6.5.2: the limit applies to the decoder of what the peer sends: the table of
     * the opposite direction. */
    if (v > HPACK_TABLE_MAX)
        v = HPACK_TABLE_MAX;
    peer->table_size = v;
    if (peer->in_block) {
        peer->table_pending = true;
    } else if (nghttp2_hd_inflate_change_table_size(peer->inf, v) != 0) {
        hpack_broken(h, peer);
    }
}

/* Payload bytes of the current frame (not prefix, not padding). */
static int frame_content(struct mmtls_http *h, enum mmtls_http_dir dir, const uint8_t *p, size_t n)
{
    struct h2_dir *d = &h->h2.d[dir];

    if (d->ignore)
        return 0;
    switch (d->type) {
    case F_DATA: {
        struct h2_stream *s = stream_find(h, d->sid);
        if (s != NULL) {
            mmtls_http_body_data(h, dir, &s->body[dir], p, n,
                                 (d->flags & FL_END_STREAM) && d->content_left == n);
        }
        return 0;
    }
    case F_HEADERS:
    case F_CONTINUATION:
    case F_PUSH_PROMISE: return hpack_feed(h, dir, p, n, false);
    case F_SETTINGS:
        for (size_t i = 0; i < n; i++) {
            d->setting[d->setting_have++] = p[i];
            if (d->setting_have == 6) {
                settings_entry(h, dir);
                d->setting_have = 0;
            }
        }
        return 0;
    default: return 0;
    }
}

/* The whole frame has been seen. */
static int frame_end(struct mmtls_http *h, enum mmtls_http_dir dir)
{
    struct h2_dir *d = &h->h2.d[dir];

    d->state = H2_FH;
    d->fh_have = 0;
    if (d->ignore)
        return 0;
    switch (d->type) {
    case F_DATA:
        if (d->flags & FL_END_STREAM) {
            struct h2_stream *s = stream_find(h, d->sid);
            if (s != NULL)
                stream_dir_end(h, s, dir);
        }
        return 0;
    case F_HEADERS:
    case F_CONTINUATION:
    case F_PUSH_PROMISE:
        if (!(d->flags & FL_END_HEADERS) || !d->in_block)
            return 0;
        MMTLS_TRY(hpack_feed(h, dir, NULL, 0, true));
        block_end(h, dir);
        return 0;
    default: return 0;
    }
}

int mmtls_http_h2_feed(struct mmtls_http *h, enum mmtls_http_dir dir, const uint8_t *p, size_t len)
{
    struct h2_dir *d = &h->h2.d[dir];
    size_t i = 0;

    if (dir == MMTLS_HTTP_TO_SERVER && !d->settled) {
        /* RFC 9113 §3.4: the client preface precedes the frames */
        while (i < len && d->preface_have < sizeof(preface) && p[i] == preface[d->preface_have]) {
            i++;
            d->preface_have++;
        }
        if (d->preface_have == sizeof(preface)) {
            d->settled = true;
        } else if (i < len) {
            h->st.h2_bad_preface++; /* parse the rest as frames anyway */
            d->settled = true;
        } else {
            return 0;
        }
    }
    while (i < len) {
        size_t left = len - i, take;

        switch (d->state) {
        case H2_FH:
            take = MMTLS_MIN(left, (size_t)(9 - d->fh_have));
            memcpy(d->fh + d->fh_have, p + i, take);
            d->fh_have = (uint8_t)(d->fh_have + take);
            i += take;
            if (d->fh_have == 9)
                frame_start(h, dir);
            break;
        case H2_PREFIX:
            take = MMTLS_MIN(left, (size_t)(d->prefix_need - d->prefix_have));
            memcpy(d->prefix + d->prefix_have, p + i, take);
            d->prefix_have = (uint8_t)(d->prefix_have + take);
            i += take;
            if (d->prefix_have == d->prefix_need)
                prefix_done(h, dir);
            break;
        case H2_CONTENT:
            take = MMTLS_MIN(left, (size_t)d->content_left);
            MMTLS_TRY(frame_content(h, dir, p + i, take));
            d->content_left -= (uint32_t)take;
            i += take;
            if (d->content_left == 0)
                d->state = H2_PAD;
            break;
        default: /* H2_PAD */
            take = MMTLS_MIN(left, (size_t)d->pad_left);
            d->pad_left -= (uint32_t)take;
            i += take;
            break;
        }
        /* zero-length stages complete without input */
        if (d->state == H2_CONTENT && d->content_left == 0)
            d->state = H2_PAD;
        if (d->state == H2_PAD && d->pad_left == 0)
            MMTLS_TRY(frame_end(h, dir));
    }
    return 0;
}

uint64_t mmtls_http_h2_skippable(const struct mmtls_http *h, enum mmtls_http_dir dir)
{
    const struct h2_dir *d = &h->h2.d[dir];
    struct h2_stream *s;

    if (d->state == H2_PAD)
        return d->pad_left;
    if (d->state != H2_CONTENT || d->type != F_DATA)
        return 0;
    s = stream_find((struct mmtls_http *)(uintptr_t)h, d->sid);
    if (d->ignore || s == NULL || !s->body[dir].active || s->body[dir].done)
        return (uint64_t)d->content_left + d->pad_left;
    return 0;
}

void mmtls_http_h2_skip(struct mmtls_http *h, enum mmtls_http_dir dir, uint64_t n)
{
    struct h2_dir *d = &h->h2.d[dir];
    uint64_t take;

    if (d->state == H2_CONTENT) {
        take = MMTLS_MIN(n, (uint64_t)d->content_left);
        d->content_left -= (uint32_t)take;
        h->st.body_depth_bytes += take;
        n -= take;
        if (d->content_left == 0)
            d->state = H2_PAD;
    }
    if (d->state == H2_PAD) {
        take = MMTLS_MIN(n, (uint64_t)d->pad_left);
        d->pad_left -= (uint32_t)take;
        if (d->pad_left == 0 && frame_end(h, dir) != 0)
            h->stopped[dir] = true;
    }
}

void mmtls_http_h2_close(struct mmtls_http *h, enum mmtls_http_dir dir)
{
    enum mmtls_http_dir o =
        dir == MMTLS_HTTP_TO_SERVER ? MMTLS_HTTP_TO_CLIENT : MMTLS_HTTP_TO_SERVER;

    if (h->h2.d[dir].state != H2_FH || h->h2.d[dir].fh_have != 0)
        h->st.truncated_messages++;
    if (!h->closed[o] || h->h2.streams == NULL)
        return;
    /* both directions are over: the open streams never complete */
    for (uint32_t i = 0; i < h->max_streams; i++) {
        if (h->h2.streams[i].id != 0)
            stream_abort(h, &h->h2.streams[i]);
    }
}
