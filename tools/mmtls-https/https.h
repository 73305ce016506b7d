/* mmtls-https — shared parts of mmtls-httpsd and mmtls-https-get: a pure HTTP/1.x head parser
 * (RFC 9112) and small helpers around the endpoint library (include/mmtls/endpoint.h).
 */
#ifndef MMTLS_HTTPS_H
#define MMTLS_HTTPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mmtls/endpoint.h>
#include <mmtls/error.h>

#include "util/util.h"

/* Longest request or response head (start line + header fields + blank line) either tool
 * accepts; a longer one is refused (431 by the server, an error by the client). */
#define MMTLS_HTTPS_HEAD_MAX 16384
/* Header fields in one head; more is malformed (a peer-controlled loop, capped). */
#define MMTLS_HTTPS_FIELDS_MAX 128

/* A parsed request or response head.  Slices point into the parsed buffer (borrowed: valid
 * while that buffer is unchanged). */
struct mmtls_https_head {
    size_t head_len;           /* bytes of the head, blank line included */
    struct mmtls_slice method; /* request only */
    struct mmtls_slice target; /* request only */
    struct mmtls_slice reason; /* response only */
    unsigned status;           /* response only: 100..999 */
    unsigned minor;            /* HTTP/1.minor (0 or 1) */
    int64_t content_length;    /* -1: no Content-Length field */
    bool conn_close;           /* Connection: close */
    bool conn_keep_alive;      /* Connection: keep-alive */
    bool chunked;              /* Transfer-Encoding present (only "chunked" is legal) */
    struct mmtls_slice host;   /* request: the Host field, empty if absent */
};

/* Parses one HTTP/1.0 or 1.1 head at the start of p[0..len) (RFC 9112 §2.1: start line,
 * field lines, empty line; bare LF accepted as a line end, §2.2).  Pure.  Returns 0 (m filled,
 * m->head_len <= len), MMTLS_AGAIN (no complete head yet: read more, unless len already reached
 * MMTLS_HTTPS_HEAD_MAX) or MMTLS_E_MALFORMED (bad start line, field syntax, conflicting or
 * overlong Content-Length, too many fields). */
MMTLS_MUST_USE int mmtls_https_head_parse(const uint8_t *p, size_t len, bool response,
                                          struct mmtls_https_head *m);

/* Whether the connection stays open after this message (RFC 9112 §9.3). */
bool mmtls_https_keep_alive(const struct mmtls_https_head *m);

/* Prints "prog: what: err" and then drains the OpenSSL error queue onto stderr. */
void mmtls_https_perror(const char *prog, const char *what, int err);

/* Splits "HOST:PORT" or "[V6]:PORT" into host (cap bytes with the NUL) and port.  0 or
 * MMTLS_E_INVAL. */
MMTLS_MUST_USE int mmtls_https_split_hostport(const char *s, char *host, size_t cap, char *port,
                                              size_t port_cap);

#endif
