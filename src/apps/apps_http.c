/* http — the HTTP app: one HTTP/1.x or HTTP/2 parser (src/http) per session, fed with the
 * decrypted application data of both directions.  It logs every transaction as an eve "http"
 * event (Suricata's fields: hostname, url, http_user_agent, http_method, protocol, status,
 * length), hands every rule buffer to an optional sink (the IDS), and, with a depth, inspects
 * only the first `depth` bytes of each message body: the rest is skipped without decryption
 * (mmtls_session_pause for the bytes the parser says it does not need).
 *
 * Skipped bytes are counted by the engine with each skipped record's max_plain_len; a record
 * padded by its sender (TLS 1.3) makes that count larger than the plaintext it held, so the
 * parser is advanced by at most what it said could be skipped (a padded record inside a skip can
 * still make the parser lose its place; it then stops that direction and counts it). */
#include "apps/apps.h"

#include <stdlib.h>
#include <string.h>

#define HA_URL_MAX 1024  /* bytes of the url kept for the log line */
#define HA_FIELD_MAX 256 /* ... of the host and user agent */
#define HA_TXN_MAX 64    /* transactions of one session being logged at once */
#define HA_SKIP_MIN 4096 /* pause only for at least this many skippable bytes */

struct ha_field {
    uint16_t len;
    char b[HA_FIELD_MAX];
};

struct ha_txn {
    uint64_t id;
    struct ha_field method, host, ua;
    uint16_t url_len;
    char url[HA_URL_MAX];
    int status;
    uint64_t length;
};

struct ha_sess {
    struct mmtls_httpapp *app;
    struct mmtls_session *s;
    struct mmtls_http *h;
    bool stopped[2];
    bool paused[2];
    uint64_t skipped_at[2];         /* info.dir[d].skipped_bytes when the pause began */
    struct ha_txn *txn[HA_TXN_MAX]; /* owned; allocated per open transaction */
};

struct mmtls_httpapp {
    struct mmtls_httpapp_opts o;
    uint64_t req_depth; /* o.req_depth, or o.depth when 0 */
    int app_id;
};

static void field_set(struct ha_field *f, const uint8_t *p, size_t len)
{
    f->len = (uint16_t)MMTLS_MIN(len, sizeof(f->b));
    memcpy(f->b, p, f->len);
}

static struct ha_txn *txn_get(struct ha_sess *hs, uint64_t id, bool create, size_t *slot)
{
    size_t free_slot = HA_TXN_MAX;

    for (size_t i = 0; i < HA_TXN_MAX; i++) {
        if (hs->txn[i] != NULL && hs->txn[i]->id == id) {
            *slot = i;
            return hs->txn[i];
        }
        if (hs->txn[i] == NULL && free_slot == HA_TXN_MAX)
            free_slot = i;
    }
    if (!create || free_slot == HA_TXN_MAX)
        return NULL;
    hs->txn[free_slot] = calloc(1, sizeof(struct ha_txn));
    if (hs->txn[free_slot] == NULL)
        return NULL;
    hs->txn[free_slot]->id = id;
    *slot = free_slot;
    return hs->txn[free_slot];
}

static void txn_view(struct ha_sess *hs, const struct ha_txn *t, struct mmtls_eve_http *out)
{
    memset(out, 0, sizeof(*out));
    out->method = t->method.len > 0 ? t->method.b : NULL;
    out->method_len = t->method.len;
    out->url = t->url_len > 0 ? t->url : NULL;
    out->url_len = t->url_len;
    out->host = t->host.len > 0 ? t->host.b : NULL;
    out->host_len = t->host.len;
    out->user_agent = t->ua.len > 0 ? t->ua.b : NULL;
    out->user_agent_len = t->ua.len;
    out->protocol = mmtls_http_proto(hs->h) == MMTLS_HTTP_PROTO_H2 ? "HTTP/2" : NULL;
    out->status = t->status;
    out->length = t->length;
}

static void txn_log(struct ha_sess *hs, struct ha_txn *t)
{
    struct mmtls_httpapp *a = hs->app;
    struct mmtls_eve_http ev;

    /* HTTP/1 messages are logged without the version token (the parser does not keep it) */
    txn_view(hs, t, &ev);
    if (t->method.len > 0 || t->url_len > 0)
        mmtls_eve_write_http(a->o.eve, hs->s, &ev);
}

static void on_http_event(void *ud, const struct mmtls_http_event *ev)
{
    struct ha_sess *hs = ud;
    struct mmtls_httpapp *a = hs->app;
    struct ha_txn *t;
    size_t slot = 0;

    t = txn_get(hs, ev->txn, ev->buf != MMTLS_HTTP_TXN_END, &slot);
    if (t == NULL) { /* more than HA_TXN_MAX open at once: this one is not logged */
        if (a->o.on_buffer != NULL)
            a->o.on_buffer(a->o.ud, hs->s, ev);
        return;
    }
    switch (ev->buf) {
    case MMTLS_HTTP_BUF_METHOD: field_set(&t->method, ev->p, ev->len); break;
    case MMTLS_HTTP_BUF_URI:
        t->url_len = (uint16_t)MMTLS_MIN(ev->len, sizeof(t->url));
        memcpy(t->url, ev->p, t->url_len);
        break;
    case MMTLS_HTTP_BUF_HOST: field_set(&t->host, ev->p, ev->len); break;
    case MMTLS_HTTP_BUF_USER_AGENT: field_set(&t->ua, ev->p, ev->len); break;
    case MMTLS_HTTP_BUF_STAT_CODE:
        if (ev->len == 3)
            t->status = (ev->p[0] - '0') * 100 + (ev->p[1] - '0') * 10 + (ev->p[2] - '0');
        break;
    case MMTLS_HTTP_BUF_RESP_BODY: t->length += ev->len; break;
    default: break;
    }
    /* The sink sees the buffer with the transaction's fields already filled (its alerts carry
     * them); at the end, the transaction is logged after the sink's last evaluation. */
    if (a->o.on_buffer != NULL)
        a->o.on_buffer(a->o.ud, hs->s, ev);
    if (ev->buf == MMTLS_HTTP_TXN_END) {
        if (a->o.eve != NULL)
            txn_log(hs, t);
        free(t);
        hs->txn[slot] = NULL;
    }
}

bool mmtls_httpapp_txn(const struct mmtls_httpapp *a, struct mmtls_session *s, uint64_t txn,
                       struct mmtls_eve_http *out)
{
    struct ha_sess *hs = mmtls_session_ctx_get(s, a->app_id);

    size_t slot;
    const struct ha_txn *t = hs != NULL ? txn_get(hs, txn, false, &slot) : NULL;

    if (t != NULL)
        txn_view(hs, t, out);
    return t != NULL;
}

/* After feeding direction d: pause over what the parser says it does not need. */
static void maybe_pause(struct ha_sess *hs, int d)
{
    uint64_t n;

    if ((d == 0 ? hs->app->req_depth : hs->app->o.depth) == 0 || hs->paused[d])
        return;
    n = mmtls_http_skippable(hs->h, (enum mmtls_http_dir)d);
    if (n < HA_SKIP_MIN)
        return;
    mmtls_session_pause(hs->s, (enum mmtls_dir)d, n);
    hs->paused[d] = true;
    hs->skipped_at[d] = mmtls_session_info(hs->s)->dir[d].skipped_bytes;
}

/* A record of direction d arrives: monitoring resumed; tell the parser what it did not see. */
static void after_pause(struct ha_sess *hs, int d)
{
    uint64_t skipped, can;

    if (!hs->paused[d])
        return;
    hs->paused[d] = false;
    skipped = mmtls_session_info(hs->s)->dir[d].skipped_bytes - hs->skipped_at[d];
    can = mmtls_http_skippable(hs->h, (enum mmtls_http_dir)d);
    if (skipped > 0 && mmtls_http_skip(hs->h, (enum mmtls_http_dir)d, MMTLS_MIN(skipped, can)) != 0)
        hs->stopped[d] = true;
}

static int httpapp_on_event(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct mmtls_httpapp *a = arg;
    struct ha_sess *hs = mmtls_session_ctx_get(s, a->app_id);
    const uint8_t *p;
    size_t n;
    int d;

    switch (ev->ev) {
    case MMTLS_EV_SESSION_START: {
        struct mmtls_http_opts ho = {
            .sz = sizeof(ho), .req_body_depth = a->req_depth, .resp_body_depth = a->o.depth};
        struct mmtls_http_cb cb = {.on_event = on_http_event};
        hs = calloc(1, sizeof(*hs));
        if (hs == NULL)
            break;
        hs->app = a;
        hs->s = s;
        cb.ud = hs;
        if (mmtls_http_new(&hs->h, &ho, &cb) != 0) {
            free(hs);
            break;
        }
        mmtls_session_ctx_set(s, a->app_id, hs);
        break;
    }
    case MMTLS_EV_NEW_RECORD:
        if (hs == NULL || ev->rec->outer_type != MMTLS_CT_APPLICATION_DATA)
            break;
        d = ev->rec->dir == MMTLS_DIR_TO_SERVER ? 0 : 1;
        after_pause(hs, d);
        if (hs->stopped[d] || mmtls_record_plaintext(s, &p, &n) != 0 ||
            ev->rec->type != MMTLS_CT_APPLICATION_DATA)
            break;
        if (mmtls_http_feed(hs->h, (enum mmtls_http_dir)d, p, n) != 0)
            hs->stopped[d] = true; /* tunnel, framing error: this direction is done */
        else
            maybe_pause(hs, d);
        break;
    case MMTLS_EV_SESSION_END:
        if (hs == NULL)
            break;
        mmtls_http_close(hs->h, MMTLS_HTTP_TO_SERVER);
        mmtls_http_close(hs->h, MMTLS_HTTP_TO_CLIENT);
        mmtls_http_free(hs->h);
        for (size_t i = 0; i < HA_TXN_MAX; i++)
            free(hs->txn[i]);
        free(hs);
        mmtls_session_ctx_set(s, a->app_id, NULL);
        break;
    default: break;
    }
    return MMTLS_VERDICT_CONTINUE;
}

int mmtls_httpapp_new(struct mmtls_httpapp **out, const struct mmtls_httpapp_opts *o)
{
    struct mmtls_httpapp *a;

    if (o == NULL || o->sz < sizeof(*o))
        return MMTLS_E_INVAL;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return MMTLS_E_NOMEM;
    a->o = *o;
    a->req_depth = o->req_depth != 0 ? o->req_depth : o->depth;
    *out = a;
    return 0;
}

int mmtls_httpapp_register(struct mmtls_httpapp *a, struct mmtls_engine *e)
{
    struct mmtls_app app = {
        .sz = sizeof(app),
        .name = "http",
        .events = MMTLS_EV_SESSION_START | MMTLS_EV_NEW_RECORD | MMTLS_EV_SESSION_END,
        .on_event = httpapp_on_event,
        .arg = a,
    };

    return mmtls_engine_app_register(e, &app, &a->app_id);
}

void mmtls_httpapp_free(struct mmtls_httpapp *a)
{
    free(a);
}
