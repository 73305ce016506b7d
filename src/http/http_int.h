/* http internals shared by http.c, http_h1.c, http_h2.c (not part of the contract). */
#ifndef MMTLS_HTTP_INT_H
#define MMTLS_HTTP_INT_H

#include "http/http.h"

#include <nghttp2/nghttp2.h>
#include <zlib.h>

#define HTTP_MAX_STREAMS_CAP 1024u
#define HTTP_MAX_INFLATERS 8u /* zlib states alive per connection (~45 KiB each) */

/* Content codings we decompress (RFC 9110 §8.4.1). */
enum http_enc {
    HTTP_ENC_NONE = 0,
    HTTP_ENC_GZIP,
    HTTP_ENC_DEFLATE,
};

/* One message body being delivered (HTTP/1 message or one direction of an HTTP/2 stream). */
struct http_body {
    uint64_t txn;
    uint64_t seen;   /* body bytes on the wire (de-chunked) so far */
    uint64_t out;    /* decompressed bytes delivered */
    bool active;     /* a body is in progress */
    bool started;    /* FIRST delivered */
    bool done;       /* LAST delivered: the rest is skippable */
    uint8_t enc;     /* enum http_enc */
    z_stream *z;     /* owned, NULL until the first compressed byte */
    uint32_t *zlive; /* borrowed: the connection's count of live z states, set with z */
};

/* Header fields of the message being parsed in one direction, collected for delivery.
 * All are owned, capped at the header cap; len 0 with `has_*` false means absent. */
struct http_fields {
    struct mmtls_buf raw;    /* owned: HTTP/1 header block; HTTP/2 "name: value\r\n" lines */
    struct mmtls_buf norm;   /* owned: normalised "Name: value\r\n" lines */
    struct mmtls_buf cookie; /* owned */
    struct mmtls_buf method, target, authority, host, ua, status; /* owned */
    struct mmtls_buf scratch;                                     /* owned: normalisation output */
    bool has_cookie, has_method, has_target, has_authority, has_host, has_ua, has_status;
    bool truncated; /* some field did not fit */
    uint8_t enc;    /* Content-Encoding we decode */
    bool enc_other; /* some other (or several) content coding */
};

/* ---- HTTP/1 ---- */
enum h1_state {
    H1_START = 0,  /* before a message: skipping empty lines */
    H1_HEADERS,    /* accumulating the start line and header section */
    H1_BODY_CL,    /* Content-Length body: remain bytes */
    H1_CHUNK_SIZE, /* RFC 9112 §7.1: chunk-size [ chunk-ext ] CRLF */
    H1_CHUNK_EXT,
    H1_CHUNK_DATA, /* remain bytes of chunk data */
    H1_CHUNK_CRLF, /* the CRLF after chunk data */
    H1_TRAILER,    /* trailer section up to the empty line */
    H1_BODY_EOF,   /* body until the connection closes */
    H1_STOP,       /* not parsed any more */
};

struct h1_dir {
    uint8_t state;        /* enum h1_state */
    bool hdr_over;        /* header section went over the cap */
    bool saw_cr;          /* chunk parsing: CR seen */
    uint32_t line_len;    /* non-CR bytes in the current line */
    uint32_t lead;        /* empty lines skipped before a start line */
    uint32_t digits;      /* chunk-size digits */
    uint32_t trailer_len; /* bytes of the trailer section */
    uint64_t remain;      /* CL body or chunk bytes left */
    uint64_t txn;
    struct http_body body;
};

struct h1_conn {
    struct h1_dir d[2];
    uint64_t req_seq;                           /* last request txn id */
    uint64_t resp_seq;                          /* last response txn id */
    uint8_t ring[MMTLS_HTTP_MAX_PIPELINE];      /* per recent txn: H1T_* flags */
    uint64_t ring_txn[MMTLS_HTTP_MAX_PIPELINE]; /* which txn owns the slot (0: none) */
};

#define H1T_HEAD 0x01u
#define H1T_CONNECT 0x02u
#define H1T_REQ_DONE 0x04u
#define H1T_RESP_DONE 0x08u
#define H1T_ENDED 0x10u
#define H1T_LIVE 0x20u

/* ---- HTTP/2 ---- */
enum h2_fstate {
    H2_FH = 0,  /* frame header (9 bytes) */
    H2_PREFIX,  /* pad length / priority / promised id */
    H2_CONTENT, /* payload proper */
    H2_PAD,     /* padding */
};

struct h2_stream {
    uint32_t id;       /* 0 = free slot */
    uint8_t blocks[2]; /* header blocks seen per direction */
    bool ended[2];     /* END_STREAM seen per direction */
    bool has_resp;     /* final response headers seen */
    struct http_body body[2];
};

struct h2_dir {
    uint8_t state; /* enum h2_fstate */
    uint8_t fh[9];
    uint8_t fh_have;
    uint8_t type, flags;
    uint32_t sid;
    uint8_t prefix[6];
    uint8_t prefix_need, prefix_have;
    uint32_t content_left, pad_left;
    uint8_t setting[6];
    uint8_t setting_have;
    bool ignore; /* the current frame's payload is skipped */
    /* header block in progress (HEADERS/PUSH_PROMISE + CONTINUATION, RFC 9113 §6.10) */
    bool in_block;
    bool block_end_stream;
    uint8_t block_kind; /* H2B_* */
    uint32_t block_sid;
    bool hpack_broken;
    nghttp2_hd_inflater *inf; /* owned */
    bool table_pending;
    uint32_t table_size;  /* the peer's SETTINGS_HEADER_TABLE_SIZE for this decoder */
    uint8_t preface_have; /* client direction: bytes of the preface matched */
    bool settled;         /* preface handled */
};

#define H2B_IGNORE 0
#define H2B_REQUEST 1
#define H2B_RESPONSE 2
#define H2B_TRAILER 3

struct h2_conn {
    struct h2_dir d[2];
    struct h2_stream *streams; /* owned: max_streams slots */
    uint32_t nstreams;
};

struct mmtls_http {
    struct mmtls_http_cb cb;
    uint64_t depth[2];
    size_t hdr_max;
    size_t decomp_max;
    uint32_t max_streams;
    uint8_t proto;  /* enum mmtls_http_proto */
    uint32_t zlive; /* live zlib inflaters (at most HTTP_MAX_INFLATERS) */
    bool closed[2];
    bool stopped[2];
    bool alpn_h2;
    struct mmtls_buf pend[2]; /* owned: bytes held while the protocol is undecided */
    struct http_fields f[2];
    struct h1_conn h1;
    struct h2_conn h2;
    struct mmtls_http_stats st;
};

/* http.c: delivery shared by both versions */
void mmtls_http_emit(struct mmtls_http *h, uint64_t txn, enum mmtls_http_dir dir,
                     enum mmtls_http_buf buf, const uint8_t *p, size_t len, unsigned flags);
void mmtls_http_fields_reset(struct http_fields *f);
MMTLS_MUST_USE int mmtls_http_fields_put(struct http_fields *f, struct mmtls_buf *b, const void *p,
                                         size_t n);
void mmtls_http_deliver_request(struct mmtls_http *h, uint64_t txn, struct http_fields *f,
                                const uint8_t *raw, size_t rawlen);
void mmtls_http_deliver_response(struct mmtls_http *h, uint64_t txn, struct http_fields *f,
                                 const uint8_t *raw, size_t rawlen);
void mmtls_http_body_begin(struct mmtls_http *h, struct http_body *b, uint64_t txn, uint8_t enc);
/* Body bytes on the wire; `last`: they end the body. */
void mmtls_http_body_data(struct mmtls_http *h, enum mmtls_http_dir dir, struct http_body *b,
                          const uint8_t *p, size_t n, bool last);
void mmtls_http_body_end(struct mmtls_http *h, enum mmtls_http_dir dir, struct http_body *b,
                         unsigned flags);
void mmtls_http_body_fini(struct http_body *b);
/* One header field: cookie, host, user agent, content coding and the normalised block.
 * Returns 0 or MMTLS_E_NOMEM. */
MMTLS_MUST_USE int mmtls_http_field(struct mmtls_http *h, struct http_fields *f,
                                    enum mmtls_http_dir dir, const uint8_t *name, size_t nlen,
                                    const uint8_t *val, size_t vlen);
/* Length of a leading "scheme://" (absolute-form target), else 0. */
size_t mmtls_http_scheme_len(const uint8_t *in, size_t n);
bool mmtls_http_ieq(const uint8_t *p, size_t n, const char *lit);

/* http_h1.c */
int mmtls_http_h1_feed(struct mmtls_http *h, enum mmtls_http_dir dir, const uint8_t *p, size_t len);
uint64_t mmtls_http_h1_skippable(const struct mmtls_http *h, enum mmtls_http_dir dir);
void mmtls_http_h1_skip(struct mmtls_http *h, enum mmtls_http_dir dir, uint64_t n);
void mmtls_http_h1_close(struct mmtls_http *h, enum mmtls_http_dir dir);
void mmtls_http_h1_fini(struct mmtls_http *h);

/* http_h2.c */
MMTLS_MUST_USE int mmtls_http_h2_init(struct mmtls_http *h);
int mmtls_http_h2_feed(struct mmtls_http *h, enum mmtls_http_dir dir, const uint8_t *p, size_t len);
uint64_t mmtls_http_h2_skippable(const struct mmtls_http *h, enum mmtls_http_dir dir);
void mmtls_http_h2_skip(struct mmtls_http *h, enum mmtls_http_dir dir, uint64_t n);
void mmtls_http_h2_close(struct mmtls_http *h, enum mmtls_http_dir dir);
void mmtls_http_h2_fini(struct mmtls_http *h);

#endif /* MMTLS_HTTP_INT_H */
