/* mmtls-https — HTTP/1.x head parser and helpers shared by mmtls-httpsd and mmtls-https-get. */
#include "https.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

/* RFC 9110 §5.6.2: tchar. */
static bool is_tchar(uint8_t c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        return true;
    }
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

static bool slice_ieq(struct mmtls_slice s, const char *lit)
{
    size_t n = strlen(lit);

    if (s.len != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (lower(s.p[i]) != (uint8_t)lit[i]) {
            return false;
        }
    }
    return true;
}

/* The next line of c (without its LF, or CRLF) in *line; MMTLS_AGAIN without an LF. */
static int next_line(struct mmtls_cur *c, struct mmtls_slice *line)
{
    const uint8_t *lf = memchr(c->p, '\n', mmtls_cur_left(c));

    if (lf == NULL) {
        return MMTLS_AGAIN;
    }
    line->p = c->p;
    line->len = (size_t)(lf - c->p);
    if (line->len > 0 && line->p[line->len - 1] == '\r') {
        line->len--;
    }
    c->p = lf + 1;
    return 0;
}

/* "HTTP/1.x" at the start of *s (RFC 9112 §2.3); advances s. */
static int parse_version(struct mmtls_slice *s, unsigned *minor)
{
    if (s->len < 8 || memcmp(s->p, "HTTP/1.", 7) != 0 || (s->p[7] != '0' && s->p[7] != '1')) {
        return MMTLS_E_MALFORMED;
    }
    *minor = (unsigned)(s->p[7] - '0');
    s->p += 8;
    s->len -= 8;
    return 0;
}

/* RFC 9112 §3: request-line = method SP request-target SP HTTP-version */
static int parse_request_line(struct mmtls_slice l, struct mmtls_https_head *m)
{
    size_t i = 0;

    while (i < l.len && is_tchar(l.p[i])) {
        i++;
    }
    if (i == 0 || i >= l.len || l.p[i] != ' ') {
        return MMTLS_E_MALFORMED;
    }
    m->method = (struct mmtls_slice){l.p, i};
    i++;
    size_t t0 = i;
    while (i < l.len && l.p[i] > 0x20 && l.p[i] < 0x7f) {
        i++;
    }
    if (i == t0 || i >= l.len || l.p[i] != ' ') {
        return MMTLS_E_MALFORMED;
    }
    m->target = (struct mmtls_slice){l.p + t0, i - t0};
    struct mmtls_slice v = {l.p + i + 1, l.len - i - 1};
    MMTLS_TRY(parse_version(&v, &m->minor));
    return v.len == 0 ? 0 : MMTLS_E_MALFORMED;
}

/* RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
 * (a missing SP before an empty reason is tolerated, as most clients do). */
static int parse_status_line(struct mmtls_slice l, struct mmtls_https_head *m)
{
    MMTLS_TRY(parse_version(&l, &m->minor));
    if (l.len < 4 || l.p[0] != ' ') {
        return MMTLS_E_MALFORMED;
    }
    unsigned st = 0;
    for (size_t i = 1; i < 4; i++) {
        if (l.p[i] < '0' || l.p[i] > '9') {
            return MMTLS_E_MALFORMED;
        }
        st = st * 10 + (unsigned)(l.p[i] - '0');
    }
    if (st < 100) {
        return MMTLS_E_MALFORMED;
    }
    m->status = st;
    if (l.len > 4 && l.p[4] != ' ') {
        return MMTLS_E_MALFORMED;
    }
    m->reason =
        l.len > 5 ? (struct mmtls_slice){l.p + 5, l.len - 5} : (struct mmtls_slice){l.p + l.len, 0};
    return 0;
}

/* RFC 9110 §8.6: Content-Length = 1*DIGIT; a list or a second, different value is refused. */
static int parse_content_length(struct mmtls_slice v, int64_t *out)
{
    int64_t n = 0;

    if (v.len == 0 || v.len > 18) { /* 18 digits < 2^63 */
        return MMTLS_E_MALFORMED;
    }
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9') {
            return MMTLS_E_MALFORMED;
        }
        n = n * 10 + (v.p[i] - '0');
    }
    if (*out >= 0 && *out != n) {
        return MMTLS_E_MALFORMED;
    }
    *out = n;
    return 0;
}

/* RFC 9110 §7.6.1: Connection = #connection-option; only close and keep-alive matter here. */
static void parse_connection(struct mmtls_slice v, struct mmtls_https_head *m)
{
    size_t i = 0;

    while (i < v.len) { /* bounded by v.len: i grows every round */
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ',')) {
            i++;
        }
        size_t t0 = i;
        while (i < v.len && v.p[i] != ',' && v.p[i] != ' ' && v.p[i] != '\t') {
            i++;
        }
        struct mmtls_slice tok = {v.p + t0, i - t0};
        if (slice_ieq(tok, "close")) {
            m->conn_close = true;
        } else if (slice_ieq(tok, "keep-alive")) {
            m->conn_keep_alive = true;
        }
    }
}

/* RFC 9112 §5.1: field-line = field-name ":" OWS field-value OWS */
static int parse_field(struct mmtls_slice l, struct mmtls_https_head *m)
{
    size_t i = 0;

    while (i < l.len && is_tchar(l.p[i])) {
        i++;
    }
    /* §5.1: no whitespace between name and colon; §5.2: obs-fold (leading SP/HT) refused. */
    if (i == 0 || i >= l.len || l.p[i] != ':') {
        return MMTLS_E_MALFORMED;
    }
    struct mmtls_slice name = {l.p, i};
    size_t v0 = i + 1, v1 = l.len;
    while (v0 < v1 && (l.p[v0] == ' ' || l.p[v0] == '\t')) {
        v0++;
    }
    while (v1 > v0 && (l.p[v1 - 1] == ' ' || l.p[v1 - 1] == '\t')) {
        v1--;
    }
    struct mmtls_slice v = {l.p + v0, v1 - v0};
    for (size_t k = 0; k < v.len; k++) {
        if (v.p[k] == 0 || (v.p[k] < 0x20 && v.p[k] != '\t') || v.p[k] == 0x7f) {
            return MMTLS_E_MALFORMED; /* §5.5: no CTLs (CR, NUL) inside a value */
        }
    }
    if (slice_ieq(name, "content-length")) {
        return parse_content_length(v, &m->content_length);
    }
    if (slice_ieq(name, "transfer-encoding")) {
        m->chunked = true;
    } else if (slice_ieq(name, "connection")) {
        parse_connection(v, m);
    } else if (slice_ieq(name, "host")) {
        m->host = v;
    }
    return 0;
}

int mmtls_https_head_parse(const uint8_t *p, size_t len, bool response, struct mmtls_https_head *m)
{
    struct mmtls_cur c = mmtls_cur_make(p, len);
    struct mmtls_slice line;
    int rc;

    memset(m, 0, sizeof(*m));
    m->content_length = -1;
    MMTLS_TRY(next_line(&c, &line));
    rc = response ? parse_status_line(line, m) : parse_request_line(line, m);
    if (rc != 0) {
        return rc;
    }
    for (unsigned n = 0;; n++) {
        MMTLS_TRY(next_line(&c, &line));
        if (line.len == 0) {
            break;
        }
        if (n >= MMTLS_HTTPS_FIELDS_MAX) {
            return MMTLS_E_MALFORMED;
        }
        MMTLS_TRY(parse_field(line, m));
    }
    /* RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; both is a smuggling vector. */
    if (m->chunked && m->content_length >= 0) {
        return MMTLS_E_MALFORMED;
    }
    m->head_len = (size_t)(c.p - p);
    return 0;
}

bool mmtls_https_keep_alive(const struct mmtls_https_head *m)
{
    if (m->conn_close) {
        return false;
    }
    return m->minor >= 1 || m->conn_keep_alive;
}

void mmtls_https_perror(const char *prog, const char *what, int err)
{
    unsigned long e;
    char buf[256];

    fprintf(stderr, "%s: %s: %s\n", prog, what, mmtls_strerror(err));
    for (int i = 0; i < 16 && (e = ERR_get_error()) != 0; i++) {
        ERR_error_string_n(e, buf, sizeof(buf));
        fprintf(stderr, "%s:   %s\n", prog, buf);
    }
    ERR_clear_error();
}

int mmtls_https_split_hostport(const char *s, char *host, size_t cap, char *port, size_t port_cap)
{
    const char *h = s, *colon;
    size_t hlen;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':') {
            return MMTLS_E_INVAL;
        }
        h = s + 1;
        hlen = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return MMTLS_E_INVAL;
        }
        hlen = (size_t)(colon - s);
    }
    size_t plen = strlen(colon + 1);
    if (hlen == 0 || hlen >= cap || plen == 0 || plen >= port_cap ||
        strspn(colon + 1, "0123456789") != plen) {
        return MMTLS_E_INVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, colon + 1, plen + 1);
    return 0;
}
