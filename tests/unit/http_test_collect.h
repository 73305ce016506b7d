/* Test helper for the http layer: turns buffer events into a split-independent transcript.
 *
 * Each delivered buffer becomes one line "<txn> <buffer>[ T]=<data>\n" once its LAST chunk has
 * arrived (chunks concatenated; " T" when the buffer was truncated); TXN_END is "<txn> end" or
 * "<txn> end aborted".  CR and LF in data are written as \r and \n.  The collector also checks
 * the FIRST/LAST protocol: a chunk without FIRST continues an open buffer, nothing comes after
 * LAST, header buffers are whole. */
#ifndef HTTP_TEST_COLLECT_H
#define HTTP_TEST_COLLECT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

#define COLL_OPEN_MAX 64
#define COLL_ERR(c) ((c)->why = (c)->why ? (c)->why : __LINE__, (c)->errors++)

struct coll_open {
    uint64_t txn;
    int buf;
    bool used;
    char *data; /* owned */
    size_t len;
};

struct coll {
    char *out; /* owned transcript */
    size_t len, cap;
    struct coll_open open[COLL_OPEN_MAX];
    unsigned errors; /* protocol violations seen */
    int why;         /* line of the first violation */
    uint64_t events;
};

static inline void coll_put(struct coll *c, const char *p, size_t n)
{
    if (c->len + n + 1 > c->cap) {
        c->cap = (c->len + n + 1) * 2;
        c->out = realloc(c->out, c->cap);
    }
    memcpy(c->out + c->len, p, n);
    c->len += n;
    c->out[c->len] = 0;
}

static inline void coll_line(struct coll *c, uint64_t txn, int buf, const char *d, size_t n,
                             bool trunc)
{
    char hdr[96];
    int hl = snprintf(hdr, sizeof(hdr), "%llu %s%s=", (unsigned long long)txn,
                      mmtls_http_buf_name((enum mmtls_http_buf)buf), trunc ? " T" : "");

    coll_put(c, hdr, (size_t)hl);
    for (size_t i = 0; i < n; i++) {
        if (d[i] == '\r')
            coll_put(c, "\\r", 2);
        else if (d[i] == '\n')
            coll_put(c, "\\n", 2);
        else
            coll_put(c, d + i, 1);
    }
    coll_put(c, "\n", 1);
}

static inline struct coll_open *coll_find(struct coll *c, uint64_t txn, int buf)
{
    for (int i = 0; i < COLL_OPEN_MAX; i++) {
        if (c->open[i].used && c->open[i].txn == txn && c->open[i].buf == buf)
            return &c->open[i];
    }
    return NULL;
}

static inline void coll_on_event(void *ud, const struct mmtls_http_event *ev)
{
    struct coll *c = ud;
    struct coll_open *o;
    char line[64];

    c->events++;
    if ((ev->len > 0) != (ev->p != NULL))
        COLL_ERR(c);
    if (ev->buf == MMTLS_HTTP_TXN_END) {
        int n = snprintf(line, sizeof(line), "%llu end%s\n", (unsigned long long)ev->txn,
                         (ev->flags & MMTLS_HTTP_F_ABORTED) ? " aborted" : "");
        coll_put(c, line, (size_t)n);
        if (coll_find(c, ev->txn, MMTLS_HTTP_BUF_REQ_BODY) != NULL ||
            coll_find(c, ev->txn, MMTLS_HTTP_BUF_RESP_BODY) != NULL)
            COLL_ERR(c); /* a body still open at the end of its transaction */
        return;
    }
    o = coll_find(c, ev->txn, ev->buf);
    if (ev->flags & MMTLS_HTTP_F_FIRST) {
        if (o != NULL) {
            COLL_ERR(c);
            return;
        }
        if ((ev->flags & MMTLS_HTTP_F_LAST)) {
            coll_line(c, ev->txn, ev->buf, (const char *)ev->p, ev->len,
                      (ev->flags & MMTLS_HTTP_F_TRUNCATED) != 0);
            return;
        }
        if (ev->buf != MMTLS_HTTP_BUF_REQ_BODY && ev->buf != MMTLS_HTTP_BUF_RESP_BODY)
            COLL_ERR(c); /* only bodies are streamed */
        for (int i = 0; i < COLL_OPEN_MAX; i++) {
            if (!c->open[i].used) {
                o = &c->open[i];
                break;
            }
        }
        if (o == NULL) {
            COLL_ERR(c);
            return;
        }
        o->used = true;
        o->txn = ev->txn;
        o->buf = ev->buf;
        o->len = 0;
        o->data = NULL;
    } else if (o == NULL) {
        COLL_ERR(c);
        return;
    }
    if (ev->len > 0) {
        o->data = realloc(o->data, o->len + ev->len);
        memcpy(o->data + o->len, ev->p, ev->len);
        o->len += ev->len;
    }
    if (ev->flags & MMTLS_HTTP_F_LAST) {
        coll_line(c, o->txn, o->buf, o->data, o->len, (ev->flags & MMTLS_HTTP_F_TRUNCATED) != 0);
        free(o->data);
        memset(o, 0, sizeof(*o));
    }
}

static inline void coll_reset(struct coll *c)
{
    for (int i = 0; i < COLL_OPEN_MAX; i++)
        free(c->open[i].data);
    free(c->out);
    memset(c, 0, sizeof(*c));
}

static inline struct mmtls_http *coll_parser(struct coll *c, const struct mmtls_http_opts *o)
{
    struct mmtls_http_cb cb = {.ud = c, .on_event = coll_on_event};
    struct mmtls_http *h = NULL;

    if (mmtls_http_new(&h, o, &cb) != 0)
        return NULL;
    return h;
}

/* Feeds and checks the result: 0 or MMTLS_DECLINED, never an error on peer input. */
static inline void coll_feed(struct mmtls_http *h, enum mmtls_http_dir dir, const uint8_t *p,
                             size_t n)
{
    int rc = mmtls_http_feed(h, dir, p, n);

    if (rc != 0 && rc != MMTLS_DECLINED) {
        fprintf(stderr, "feed returned %d\n", rc);
        abort();
    }
}

#endif
