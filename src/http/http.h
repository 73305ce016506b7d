/* http — streaming HTTP/1.x and HTTP/2 parser for inspection apps (the IDS "sticky buffers").
 *
 * One parser object per connection.  The caller feeds each direction's application plaintext in
 * order, split anywhere (mmtls_http_feed); the parser detects HTTP/1.x or HTTP/2, follows
 * transactions and calls back with *buffer events*: for each transaction (an HTTP/1 request and
 * its response, or one HTTP/2 stream) the buffers Suricata/Snort rules match on (method, uri,
 * raw uri, headers, cookie, user agent, host, request body, status code, response headers,
 * response body), then a MMTLS_HTTP_TXN_END event.
 *
 * Memory is bounded per connection: header blocks are buffered up to opts.max_header_block bytes
 * per direction (more is counted and delivered truncated), bodies are streamed (never buffered),
 * at most opts.max_streams HTTP/2 streams and 32 pipelined HTTP/1 requests are tracked, each
 * decompressed body is capped, and at most 8 bodies per connection are decompressed at once
 * (zlib state ~45 KiB each; a ninth concurrent compressed body is counted in decomp_capped and
 * not delivered).  Malformed input never fails a call: it is counted in
 * struct mmtls_http_stats and parsing resynchronises or stops for that direction.  No threads,
 * no global state; the HTTP/2 header decoder is libnghttp2's standalone HPACK inflater (one per
 * direction), body decompression is zlib.
 *
 * Not delivered (by design): interim 1xx responses (counted; 101 ends parsing as a tunnel),
 * trailer fields (HTTP/1 chunked trailers, HTTP/2 trailing HEADERS: counted), server-pushed
 * streams (PUSH_PROMISE blocks are decoded to keep HPACK in step, then ignored), the bytes of a
 * CONNECT tunnel or an upgraded connection (the request direction stops at a CONNECT request).
 * After an HPACK error a direction's header blocks are no longer decoded (the dynamic table is
 * out of step), DATA of known streams still is.
 *
 * Transaction ids: HTTP/1 transactions are numbered 1, 2, 3... in request order on the
 * connection (the n-th response belongs to the n-th request, RFC 9112 §9.3.2); an HTTP/2
 * transaction's id is its stream identifier (RFC 9113 §5.1.1).
 *
 * Normalisation (what the normalised buffers contain, as Suricata's libhtp defaults):
 *  - uri: the request target with (1) absolute-form "scheme://authority" removed (RFC 9112
 *    §3.2.2), (2) percent-encoded *unreserved* characters decoded (RFC 3986 §2.3: ALPHA DIGIT
 *    "-" "." "_" "~"; every other %XX is kept as received, also invalid escapes), then in the
 *    path only (before '?'): (3) runs of '/' collapsed to one and (4) "." and ".." segments
 *    removed (RFC 3986 §5.2.4; ".." never climbs above the root).  The query is not otherwise
 *    changed; nothing is case-folded; '\\' and '+' are left alone.  raw_uri is the target as
 *    received (HTTP/2: the :path pseudo-header).
 *  - host: the Host header (HTTP/2: :authority, else Host; HTTP/1: Host, else the authority of
 *    an absolute-form target) with surrounding whitespace trimmed, userinfo ("user@") and
 *    ":port" removed (a bracketed IPv6 literal keeps its brackets), lower-cased.
 *  - request/response headers: "Name: value\r\n" for each header field in order, value with
 *    leading/trailing whitespace trimmed, names as received (HTTP/2: lower case, as on the wire),
 *    without the start line, without HTTP/2 pseudo-headers, without Cookie (requests) or
 *    Set-Cookie (responses); obsolete line folding (RFC 9112 §5.2) is joined with one space.
 *  - raw headers: HTTP/1: the header section exactly as received, from the first header line
 *    through the terminating empty line (start line excluded); HTTP/2: every decoded field,
 *    pseudo-headers included, as "name: value\r\n" in wire order.
 *  - cookie: the Cookie field value (request) or Set-Cookie value (response, dir TO_CLIENT);
 *    several fields are joined with "; " (RFC 9113 §8.2.3).
 *  - user_agent: the User-Agent value, trimmed.  method: as received.  stat_code: the 3 digits.
 *  - request body: de-chunked; response body (file_data): de-chunked and, when the single
 *    Content-Encoding is gzip, x-gzip or deflate (zlib-wrapped or raw), decompressed.
 */
#ifndef MMTLS_HTTP_H
#define MMTLS_HTTP_H

#include "util/util.h"

/* Direction of plaintext, as the engine's MMTLS_DIR_* (0 = client to server). */
enum mmtls_http_dir {
    MMTLS_HTTP_TO_SERVER = 0,
    MMTLS_HTTP_TO_CLIENT = 1,
};

/* Buffer ids of buffer events.  Request buffers come with dir TO_SERVER, response buffers with
 * TO_CLIENT (COOKIE comes from both sides).  Per transaction the order is: METHOD, RAW_URI, URI,
 * HOST, USER_AGENT, COOKIE, REQ_HEADERS, REQ_HEADERS_RAW, REQ_BODY chunks; and STAT_CODE,
 * COOKIE, RESP_HEADERS, RESP_HEADERS_RAW, RESP_BODY chunks; finally TXN_END.  Request and
 * response events of one transaction may interleave (e.g. an early response to an upload), and
 * events of different transactions interleave freely with HTTP/2 and with pipelining.  A
 * buffer whose source is absent (no User-Agent, no :status...) is not delivered. */
enum mmtls_http_buf {
    MMTLS_HTTP_BUF_METHOD = 0,       /* http.method */
    MMTLS_HTTP_BUF_URI,              /* http.uri (normalised, see above) */
    MMTLS_HTTP_BUF_RAW_URI,          /* http.uri.raw */
    MMTLS_HTTP_BUF_REQ_HEADERS,      /* http.header (request) */
    MMTLS_HTTP_BUF_REQ_HEADERS_RAW,  /* http.header.raw (request) */
    MMTLS_HTTP_BUF_COOKIE,           /* http.cookie (Cookie or Set-Cookie) */
    MMTLS_HTTP_BUF_USER_AGENT,       /* http.user_agent */
    MMTLS_HTTP_BUF_HOST,             /* http.host (normalised) */
    MMTLS_HTTP_BUF_REQ_BODY,         /* http.request_body / http_client_body (streamed) */
    MMTLS_HTTP_BUF_STAT_CODE,        /* http.stat_code */
    MMTLS_HTTP_BUF_RESP_HEADERS,     /* http.header (response) */
    MMTLS_HTTP_BUF_RESP_HEADERS_RAW, /* http.header.raw (response) */
    MMTLS_HTTP_BUF_RESP_BODY,        /* file_data / http.response_body (streamed) */
    MMTLS_HTTP_TXN_END,              /* not a buffer: the transaction is over (len 0, dir
                                      * TO_CLIENT) */
    MMTLS_HTTP_BUF_COUNT
};

/* Event flags.  Header-like buffers are always delivered whole: FIRST|LAST in one event.  A body
 * comes as chunks: the first has FIRST, the last has LAST (the last may be empty: len 0).  A
 * body that is empty on the wire produces no event. */
#define MMTLS_HTTP_F_FIRST 0x01u
#define MMTLS_HTTP_F_LAST 0x02u
/* Buffer cut: header cap, inspection depth, decompression cap or error (a chunked body that
 * ends exactly at the depth may carry it too). */
#define MMTLS_HTTP_F_TRUNCATED 0x04u
/* TXN_END only: the transaction did not complete (stream reset, connection closed mid-message,
 * parsing stopped). */
#define MMTLS_HTTP_F_ABORTED 0x08u

/* One buffer event.  p is borrowed: valid only during the callback (copy what you keep). */
struct mmtls_http_event {
    uint64_t txn;
    enum mmtls_http_dir dir;
    enum mmtls_http_buf buf;
    const uint8_t *p; /* borrowed: valid during the callback; NULL when len is 0 */
    size_t len;
    unsigned flags; /* MMTLS_HTTP_F_* */
};

/* Caller callbacks.  They run synchronously inside mmtls_http_feed/skip/close and must not call
 * feed, skip, close or free on the same parser (the query functions are fine). */
struct mmtls_http_cb {
    void *ud; /* borrowed: passed back verbatim */
    void (*on_event)(void *ud, const struct mmtls_http_event *ev);
};

/* Options; a NULL opts or a zero field means the default.  Starts with sz (libbpf style). */
struct mmtls_http_opts {
    size_t sz;                /* sizeof(struct mmtls_http_opts) */
    bool alpn_h2;             /* ALPN selected "h2": HTTP/2 from the first byte (RFC 9113 §3.2) */
    uint64_t req_body_depth;  /* request body bytes delivered per message (default 64 KiB) */
    uint64_t resp_body_depth; /* response body bytes delivered per message (default 64 KiB) */
    size_t max_header_block;  /* header section bytes kept per message (default 64 KiB) */
    size_t max_decompressed;  /* decompressed response body bytes per message (default 256 KiB) */
    uint32_t max_streams;     /* HTTP/2 streams tracked at once (default 128, max 1024) */
};

#define MMTLS_HTTP_DEFAULT_DEPTH (64u * 1024u)
#define MMTLS_HTTP_DEFAULT_HEADER_MAX (64u * 1024u)
#define MMTLS_HTTP_DEFAULT_DECOMP_MAX (256u * 1024u)
#define MMTLS_HTTP_DEFAULT_STREAMS 128u
#define MMTLS_HTTP_MAX_PIPELINE 32u /* HTTP/1 requests awaiting their response */

enum mmtls_http_proto {
    MMTLS_HTTP_PROTO_UNKNOWN = 0, /* nothing decided yet (fewer than 24 client bytes seen) */
    MMTLS_HTTP_PROTO_H1,
    MMTLS_HTTP_PROTO_H2,
};

/* Anomaly and activity counters of one connection (peer faults are counted, never fatal). */
struct mmtls_http_stats {
    uint64_t requests, responses, txns_done, txns_aborted;
    uint64_t interim_responses;     /* 1xx other than 101: skipped */
    uint64_t tunnels;               /* CONNECT or 101 upgrade: parsing stopped (RFC 9110 §9.3.6) */
    uint64_t header_overflow;       /* header section over max_header_block: delivered truncated */
    uint64_t bad_start_line;        /* unparseable request/status line: the direction is stopped */
    uint64_t bad_header_line;       /* field line without ':' or with whitespace before it */
    uint64_t obs_fold;              /* obsolete line folding */
    uint64_t bad_content_length;    /* invalid or conflicting Content-Length */
    uint64_t bad_transfer_encoding; /* TE other than chunked, or TE together with CL */
    uint64_t bad_chunk;             /* malformed chunk size/CRLF: the direction is stopped */
    uint64_t pipeline_overflow;     /* more than MMTLS_HTTP_MAX_PIPELINE requests outstanding */
    uint64_t response_without_request;
    uint64_t truncated_messages; /* connection closed mid-message */
    uint64_t body_depth_bytes;   /* body bytes not delivered: beyond the inspection depth */
    uint64_t skipped_bytes;      /* bytes the caller skipped through mmtls_http_skip */
    uint64_t decomp_errors, decomp_capped, unsupported_encoding;
    /* HTTP/2 */
    uint64_t h2_frames, h2_bad_frames; /* bad: length/padding/stream-id rule broken */
    uint64_t h2_bad_preface;
    uint64_t h2_hpack_errors;     /* the direction's header decoding stops (table out of sync) */
    uint64_t h2_streams_over_cap; /* streams ignored: more than max_streams open */
    uint64_t h2_rst_streams, h2_goaways, h2_push_promises, h2_settings, h2_trailers;
    uint64_t nomem; /* allocation failures (the affected direction stops) */
};

struct mmtls_http; /* opaque */

/* Creates a parser.  opts and cb are copied.  Returns 0, MMTLS_E_INVAL (cb->on_event NULL or
 * opts->sz too small), MMTLS_E_NOMEM. */
MMTLS_MUST_USE int mmtls_http_new(struct mmtls_http **out, const struct mmtls_http_opts *opts,
                                  const struct mmtls_http_cb *cb);
/* Frees the parser and everything it owns.  No events are raised.  NULL does nothing. */
void mmtls_http_free(struct mmtls_http *h);

/* Feeds the next len bytes of direction dir (any split points).  Events are raised before it
 * returns.  Returns 0; MMTLS_DECLINED when this direction is no longer parsed (tunnel, upgrade,
 * unrecoverable framing error: the caller may stop feeding it, e.g. pause it for good);
 * MMTLS_E_NOMEM when an allocation failed (counted; the direction stops). */
MMTLS_MUST_USE int mmtls_http_feed(struct mmtls_http *h, enum mmtls_http_dir dir, const uint8_t *p,
                                   size_t len);

/* Inspection depth and skipping.  Body bytes beyond the depth (or after a decompression cap or
 * error) are never delivered, and the parser does not need to see them.  mmtls_http_skippable()
 * tells how many of the *next* bytes of dir are such bytes: the rest of a Content-Length body,
 * the rest of the current chunk's data, the rest of the current HTTP/2 DATA frame (payload and
 * padding), or UINT64_MAX for a body delimited by the connection close or a stopped direction.
 * It is 0 while the parser needs the bytes.  Typical use, after each feed of that direction:
 *
 *     uint64_t n = mmtls_http_skippable(h, MMTLS_HTTP_TO_CLIENT);
 *     if (n >= MIN_WORTH_SKIPPING)
 *         mmtls_session_pause(s, MMTLS_DIR_TO_CLIENT, n);   (whole records in the window are
 *                                                             neither decrypted nor dispatched)
 *
 * and when monitoring resumes, report the plaintext bytes that were not fed
 * (mmtls_http_skip(h, dir, skipped)) before feeding the next record.  Records only partly inside
 * the window are still fed: feeding skippable bytes is always allowed (they are dropped). */
uint64_t mmtls_http_skippable(const struct mmtls_http *h, enum mmtls_http_dir dir);

/* Advances dir by n bytes that were not fed.  n must be <= mmtls_http_skippable(h, dir); else
 * MMTLS_E_INVAL and nothing changes.  May raise events (a body or transaction that ends). */
MMTLS_MUST_USE int mmtls_http_skip(struct mmtls_http *h, enum mmtls_http_dir dir, uint64_t n);

/* The direction ended (TCP FIN or TLS close_notify).  Completes a response body delimited by
 * the connection close (RFC 9112 §6.3 rule 8); a message cut in the middle is counted in
 * truncated_messages and its transaction ends with MMTLS_HTTP_F_ABORTED.  When both directions
 * have closed, every transaction still open ends (ABORTED).  Further feeds of dir are ignored. */
void mmtls_http_close(struct mmtls_http *h, enum mmtls_http_dir dir);

enum mmtls_http_proto mmtls_http_proto(const struct mmtls_http *h);
/* Counters; the pointer is valid for the parser's lifetime. */
const struct mmtls_http_stats *mmtls_http_stats(const struct mmtls_http *h);

/* Static name of a buffer id ("http.uri", "file_data"...); "?" when out of range. */
const char *mmtls_http_buf_name(enum mmtls_http_buf buf);

/* Pure normalisation helpers (used by the parser; exported for rule tooling and tests).
 * They write at most inlen bytes to out (outcap must be >= inlen) and set *outlen. */
MMTLS_MUST_USE int mmtls_http_uri_normalize(const uint8_t *in, size_t inlen, uint8_t *out,
                                            size_t outcap, size_t *outlen);
MMTLS_MUST_USE int mmtls_http_host_normalize(const uint8_t *in, size_t inlen, uint8_t *out,
                                             size_t outcap, size_t *outlen);

#endif /* MMTLS_HTTP_H */
