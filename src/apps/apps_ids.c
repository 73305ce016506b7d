/* ids — the rule engine app (issue 6): Snort 3 / Suricata rules (src/rules) compiled by
 * src/detect, matched on each session's decrypted streams (the raw stream of each direction),
 * its HTTP transactions (buffers from the HTTP app, src/http) and its server name.
 *
 * Actions: alert -> an eve "alert" (action "allowed"); drop and reject -> the session is blocked
 * through the framework (inline: the record's completing packet is dropped and both ends reset;
 * offline: the session is marked blocked) and the alert says "blocked"; pass -> the rest of the
 * flow is not inspected (Suricata 7) and nothing is logged.  The alert carries gid, sid, rev,
 * msg, classtype, priority (as severity), the direction, the SNI and, for HTTP rules, the
 * transaction's hostname, url, method and user agent.
 */
#include "apps/apps.h"

#include <stdlib.h>
#include <string.h>

struct ids_sess {
    struct mmtls_ids *ids;
    struct mmtls_session *s;
    struct mmtls_detect_flow *f;
    bool http_seen;
    bool sni_fed;
};

struct mmtls_ids {
    struct mmtls_ids_opts o;
    struct mmtls_detect_worker *w; /* owned */
    struct mmtls_httpapp *http;    /* owned: feeds the HTTP buffers */
    int app_id;
    uint64_t alerts, blocks, flows_failed, feed_errors;
};

/* A feed the detect layer could not take (memory): counted; the flow goes on. */
static void note(struct mmtls_ids *ids, int rc)
{
    if (rc < 0)
        ids->feed_errors++;
}

/* src/http buffer -> rule buffer (COOKIE of a response is Set-Cookie: http_cookie too). */
static int rules_buf(enum mmtls_http_buf b)
{
    switch (b) {
    case MMTLS_HTTP_BUF_METHOD: return MMTLS_RULES_BUF_HTTP_METHOD;
    case MMTLS_HTTP_BUF_URI: return MMTLS_RULES_BUF_HTTP_URI;
    case MMTLS_HTTP_BUF_RAW_URI: return MMTLS_RULES_BUF_HTTP_RAW_URI;
    case MMTLS_HTTP_BUF_REQ_HEADERS:
    case MMTLS_HTTP_BUF_RESP_HEADERS: return MMTLS_RULES_BUF_HTTP_HEADER;
    case MMTLS_HTTP_BUF_REQ_HEADERS_RAW:
    case MMTLS_HTTP_BUF_RESP_HEADERS_RAW: return MMTLS_RULES_BUF_HTTP_RAW_HEADER;
    case MMTLS_HTTP_BUF_COOKIE: return MMTLS_RULES_BUF_HTTP_COOKIE;
    case MMTLS_HTTP_BUF_USER_AGENT: return MMTLS_RULES_BUF_HTTP_USER_AGENT;
    case MMTLS_HTTP_BUF_HOST: return MMTLS_RULES_BUF_HTTP_HOST;
    case MMTLS_HTTP_BUF_REQ_BODY: return MMTLS_RULES_BUF_HTTP_CLIENT_BODY;
    case MMTLS_HTTP_BUF_STAT_CODE: return MMTLS_RULES_BUF_HTTP_STAT_CODE;
    case MMTLS_HTTP_BUF_RESP_BODY: return MMTLS_RULES_BUF_HTTP_SERVER_BODY;
    default: return -1;
    }
}

static int ids_on_match(void *ctx, const struct mmtls_detect_match *m)
{
    struct ids_sess *is = ctx;
    struct mmtls_ids *ids = is->ids;
    const struct mmtls_rule *r = m->rule;
    struct mmtls_slice msg = mmtls_rules_str(r, r->msg), cls = mmtls_rules_str(r, r->classtype);
    struct mmtls_eve_http http;
    bool block = r->action == MMTLS_RULES_DROP || r->action == MMTLS_RULES_REJECT;
    struct mmtls_eve_alert al = {
        .dir = m->dir == MMTLS_DETECT_TO_SERVER ? MMTLS_DIR_TO_SERVER : MMTLS_DIR_TO_CLIENT,
        .action = block ? "blocked" : "allowed",
        .gid = r->gid,
        .sid = r->sid,
        .rev = r->rev,
        .severity = r->priority != 0 ? r->priority : 3,
        .msg = (const char *)msg.p,
        .msg_len = msg.len,
        .category = (const char *)cls.p,
        .category_len = cls.len,
    };

    if (r->action == MMTLS_RULES_PASS)
        return 0; /* detect stops inspecting the flow itself; nothing is logged */
    if (m->tx != MMTLS_DETECT_NO_TX && ids->http != NULL &&
        mmtls_httpapp_txn(ids->http, is->s, m->tx, &http))
        al.http = &http;
    if (ids->o.eve != NULL)
        mmtls_eve_write_rule_alert(ids->o.eve, is->s, &al);
    ids->alerts++;
    if (block) {
        ids->blocks++;
        mmtls_session_block(is->s, "rule match (drop/reject)");
        return 1; /* nothing more to inspect */
    }
    return 0;
}

static void ids_on_http(void *ud, struct mmtls_session *s, const struct mmtls_http_event *ev)
{
    struct mmtls_ids *ids = ud;
    struct ids_sess *is = mmtls_session_ctx_get(s, ids->app_id);
    int b;
    unsigned fl = 0;

    if (is == NULL || is->f == NULL)
        return;
    if (!is->http_seen) {
        is->http_seen = true;
        mmtls_detect_flow_set_services(is->f, MMTLS_RULES_SVC_HTTP);
    }
    if (ev->buf == MMTLS_HTTP_TXN_END) {
        note(ids, mmtls_detect_tx_end(is->f, ev->txn));
        return;
    }
    b = rules_buf(ev->buf);
    if (b < 0)
        return;
    if (ev->flags & MMTLS_HTTP_F_FIRST)
        fl |= MMTLS_DETECT_FIRST;
    if (ev->flags & MMTLS_HTTP_F_LAST)
        fl |= MMTLS_DETECT_LAST;
    note(ids, mmtls_detect_buf(is->f,
                               ev->dir == MMTLS_HTTP_TO_SERVER ? MMTLS_DETECT_TO_SERVER
                                                               : MMTLS_DETECT_TO_CLIENT,
                               ev->txn, (unsigned)b, fl, ev->p, ev->len));
}

static void sess_start(struct mmtls_ids *ids, struct mmtls_session *s)
{
    const struct mmtls_session_info *in = mmtls_session_info(s);
    struct mmtls_detect_tuple t = {.family = in->ip_version,
                                   .cli_port = in->client_port,
                                   .srv_port = in->server_port,
                                   .established = true};
    struct ids_sess *is = calloc(1, sizeof(*is));

    if (is == NULL) {
        ids->flows_failed++;
        return;
    }
    is->ids = ids;
    is->s = s;
    memcpy(t.cli_addr, in->client_ip, 16);
    memcpy(t.srv_addr, in->server_ip, 16);
    if (mmtls_detect_flow_new(&is->f, ids->w, &t, ids_on_match, is) != 0) {
        ids->flows_failed++;
        free(is);
        return;
    }
    mmtls_session_ctx_set(s, ids->app_id, is);
}

/* tls.sni, once.  SESSION_START comes once the ClientHello is parsed, but a ClientHello spread
 * over several records starts the session at its first record, before the name is known
 * (docs/API.md); the name is there by a later record event, so it is looked for on each. */
static void feed_sni(struct ids_sess *is)
{
    const struct mmtls_session_info *in = mmtls_session_info(is->s);

    if (is->sni_fed || in->sni[0] == '\0')
        return;
    is->sni_fed = true;
    note(is->ids, mmtls_detect_buf(is->f, MMTLS_DETECT_TO_SERVER, 0, MMTLS_RULES_BUF_TLS_SNI,
                                   MMTLS_DETECT_FIRST | MMTLS_DETECT_LAST, (const uint8_t *)in->sni,
                                   strlen(in->sni)));
}

static int ids_on_event(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct mmtls_ids *ids = arg;
    struct ids_sess *is = mmtls_session_ctx_get(s, ids->app_id);
    const uint8_t *p;
    size_t n;

    switch (ev->ev) {
    case MMTLS_EV_SESSION_START: sess_start(ids, s); break;
    case MMTLS_EV_NEW_RECORD:
        if (is != NULL)
            feed_sni(is);
        if (is == NULL || ev->rec->outer_type != MMTLS_CT_APPLICATION_DATA ||
            !mmtls_detect_flow_active(is->f) || mmtls_record_plaintext(s, &p, &n) != 0 ||
            ev->rec->type != MMTLS_CT_APPLICATION_DATA)
            break;
        note(ids, mmtls_detect_stream(is->f,
                                      ev->rec->dir == MMTLS_DIR_TO_SERVER ? MMTLS_DETECT_TO_SERVER
                                                                          : MMTLS_DETECT_TO_CLIENT,
                                      p, n));
        break;
    case MMTLS_EV_SESSION_END:
        if (is == NULL)
            break;
        feed_sni(is);
        note(ids, mmtls_detect_flow_end(is->f));
        mmtls_detect_flow_free(is->f);
        free(is);
        mmtls_session_ctx_set(s, ids->app_id, NULL);
        break;
    default: break;
    }
    return MMTLS_VERDICT_CONTINUE;
}

int mmtls_ids_new(struct mmtls_ids **out, const struct mmtls_ids_opts *o)
{
    struct mmtls_ids *ids;
    int rc;

    if (o == NULL || o->sz < sizeof(*o) || o->detect == NULL)
        return MMTLS_E_INVAL;
    ids = calloc(1, sizeof(*ids));
    if (ids == NULL)
        return MMTLS_E_NOMEM;
    ids->o = *o;
    rc = mmtls_detect_worker_new(&ids->w, o->detect);
    if (rc != 0) {
        free(ids);
        return rc;
    }
    *out = ids;
    return 0;
}

int mmtls_ids_register(struct mmtls_ids *ids, struct mmtls_engine *e)
{
    struct mmtls_app app = {
        .sz = sizeof(app),
        .name = "ids",
        .events = MMTLS_EV_SESSION_START | MMTLS_EV_NEW_RECORD | MMTLS_EV_SESSION_END,
        .on_event = ids_on_event,
        .arg = ids,
    };
    struct mmtls_httpapp_opts ho = {.sz = sizeof(ho),
                                    .eve = ids->o.log_http ? ids->o.eve : NULL,
                                    .depth = ids->o.depth,
                                    .req_depth = ids->o.req_depth,
                                    .on_buffer = ids_on_http,
                                    .ud = ids};
    int rc;

    /* The raw stream first, then the HTTP buffers of the same record. */
    rc = mmtls_engine_app_register(e, &app, &ids->app_id);
    if (rc == 0)
        rc = mmtls_httpapp_new(&ids->http, &ho);
    if (rc == 0)
        rc = mmtls_httpapp_register(ids->http, e);
    return rc;
}

void mmtls_ids_get_stats(const struct mmtls_ids *ids, struct mmtls_ids_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->alerts = ids->alerts;
    st->blocks = ids->blocks;
    st->flows_failed = ids->flows_failed;
    st->feed_errors = ids->feed_errors;
    mmtls_detect_counters_get(ids->w, &st->detect);
}

void mmtls_ids_free(struct mmtls_ids *ids)
{
    if (ids == NULL)
        return;
    mmtls_httpapp_free(ids->http);
    mmtls_detect_worker_free(ids->w);
    free(ids);
}
