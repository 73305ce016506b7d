/* eve — the session logger.  Field names follow Suricata's eve.json where one exists
 * (timestamp, flow_id, event_type, src_ip, src_port, dest_ip, dest_port, proto, tls.sni,
 * tls.version, tls.subject, tls.issuerdn, anomaly); the rest is documented in docs/EVE.md.
 * The client is always src.
 */
#include "apps/apps.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define EVE_MAX_ERR_KINDS 16

struct eve_err {
    int code;
    uint32_t count;
    uint64_t first_off;
    int dir;
};

struct eve_sess {
    struct eve_err errs[EVE_MAX_ERR_KINDS];
    int nerrs;
};

struct mmtls_eve {
    FILE *fp; /* owned unless stdout or shared */
    bool own_fp;
    int app_id;
    struct mmtls_eve *root; /* the writer that owns fp, lock and line count (itself if none) */
    pthread_mutex_t lock;   /* used in root only */
    uint64_t lines;         /* in root only */
    struct mmtls_buf line;  /* owned: one JSON line */
};

void mmtls_apps_fmt_ip(uint8_t ip_version, const uint8_t *addr, char *buf, size_t cap)
{
    if (inet_ntop(ip_version == 6 ? AF_INET6 : AF_INET, addr, buf, (socklen_t)cap) == NULL)
        snprintf(buf, cap, "?");
}

static void eve_header(struct mmtls_json *j, const struct mmtls_session_info *in, uint64_t ts,
                       const char *type)
{
    char ip[64];

    mmtls_json_obj_open(j, NULL);
    mmtls_json_ts(j, "timestamp", ts);
    mmtls_json_u64(j, "flow_id", in->flow_id);
    mmtls_json_str(j, "event_type", type);
    mmtls_apps_fmt_ip(in->ip_version, in->client_ip, ip, sizeof(ip));
    mmtls_json_str(j, "src_ip", ip);
    mmtls_json_u64(j, "src_port", in->client_port);
    mmtls_apps_fmt_ip(in->ip_version, in->server_ip, ip, sizeof(ip));
    mmtls_json_str(j, "dest_ip", ip);
    mmtls_json_u64(j, "dest_port", in->server_port);
    mmtls_json_str(j, "proto", "TCP");
}

static void eve_emit(struct mmtls_eve *ev, struct mmtls_json *j)
{
    mmtls_json_obj_close(j);
    if (j->err != 0 || mmtls_buf_append(&ev->line, "\n", 1) != 0) {
        ev->line.len = 0;
        return;
    }
    pthread_mutex_lock(&ev->root->lock);
    if (fwrite(ev->line.p, 1, ev->line.len, ev->fp) == ev->line.len)
        ev->root->lines++;
    pthread_mutex_unlock(&ev->root->lock);
    ev->line.len = 0;
}

static const char *key_status_name(enum mmtls_key_status k)
{
    switch (k) {
    case MMTLS_KEYS_NONE: return "no_keys";
    case MMTLS_KEYS_PARTIAL: return "partial";
    case MMTLS_KEYS_DECRYPTED: return "decrypted";
    case MMTLS_KEYS_BYPASS: return "bypass";
    }
    return "unknown";
}

static void write_dir_u64(struct mmtls_json *j, const char *name, uint64_t c2s, uint64_t s2c)
{
    char key[64];

    snprintf(key, sizeof(key), "%s_toserver", name);
    mmtls_json_u64(j, key, c2s);
    snprintf(key, sizeof(key), "%s_toclient", name);
    mmtls_json_u64(j, key, s2c);
}

static void write_session(struct mmtls_eve *ev, struct mmtls_session *s, struct eve_sess *es)
{
    const struct mmtls_session_info *in = mmtls_session_info(s);
    struct mmtls_json j;

    mmtls_json_init(&j, &ev->line);
    eve_header(&j, in, in->start_ts_us, "tls");
    mmtls_json_obj_open(&j, "tls");
    if (in->sni[0] != '\0')
        mmtls_json_str(&j, "sni", in->sni);
    if (in->version != 0)
        mmtls_json_str(&j, "version", mmtls_version_name(in->version));
    if (in->cipher_suite != 0)
        mmtls_json_str(&j, "cipher_suite", in->cipher_name);
    if (in->alpn[0] != '\0')
        mmtls_json_str(&j, "alpn", in->alpn);
    if (in->cert_subject[0] != '\0')
        mmtls_json_str(&j, "subject", in->cert_subject);
    if (in->cert_issuer[0] != '\0')
        mmtls_json_str(&j, "issuerdn", in->cert_issuer);
    if (in->ja3_hash[0] != '\0') { /* Suricata's names: ja3.hash, ja3.string, ja4 */
        mmtls_json_obj_open(&j, "ja3");
        mmtls_json_str(&j, "hash", in->ja3_hash);
        mmtls_json_str(&j, "string", in->ja3);
        mmtls_json_obj_close(&j);
    }
    if (in->ja4[0] != '\0')
        mmtls_json_str(&j, "ja4", in->ja4);
    if (in->have_client_random)
        mmtls_json_hex(&j, "client_random", in->client_random, 32);
    mmtls_json_str(&j, "key_status", key_status_name(in->key_status));
    mmtls_json_bool(&j, "resumed", in->resumed);
    mmtls_json_bool(&j, "hello_retry", in->hello_retry);
    mmtls_json_bool(&j, "early_data", in->early_data);
    if (in->early_data && in->early_data_accepted >= 0)
        mmtls_json_bool(&j, "early_data_accepted", in->early_data_accepted == 1);
    if (in->encrypt_then_mac)
        mmtls_json_bool(&j, "encrypt_then_mac", true);
    if (in->private_tag)
        mmtls_json_bool(&j, "private_tag", true); /* tamper-evident end to end (PRIVTAG.md) */
    mmtls_json_u64(&j, "handshakes", in->handshakes);
    mmtls_json_bool(&j, "blocked", in->blocked);
    write_dir_u64(&j, "records", in->dir[0].records, in->dir[1].records);
    write_dir_u64(&j, "bytes", in->dir[0].wire_bytes, in->dir[1].wire_bytes);
    write_dir_u64(&j, "app_records", in->dir[0].app_records, in->dir[1].app_records);
    write_dir_u64(&j, "plain_bytes", in->dir[0].plain_bytes, in->dir[1].plain_bytes);
    write_dir_u64(&j, "undecrypted_records", in->dir[0].undecrypted_records,
                  in->dir[1].undecrypted_records);
    write_dir_u64(&j, "skipped_bytes", in->dir[0].skipped_bytes, in->dir[1].skipped_bytes);
    write_dir_u64(&j, "key_updates", in->dir[0].key_updates, in->dir[1].key_updates);
    mmtls_json_arr_open(&j, "errors");
    for (int i = 0; es != NULL && i < es->nerrs; i++) {
        mmtls_json_obj_open(&j, NULL);
        mmtls_json_str(&j, "code", mmtls_tls_error_name(es->errs[i].code));
        mmtls_json_u64(&j, "count", es->errs[i].count);
        mmtls_json_str(&j, "direction", es->errs[i].dir == 0 ? "toserver" : "toclient");
        mmtls_json_u64(&j, "first_stream_offset", es->errs[i].first_off);
        mmtls_json_obj_close(&j);
    }
    mmtls_json_arr_close(&j);
    mmtls_json_obj_close(&j);
    mmtls_json_obj_open(&j, "flow");
    mmtls_json_ts(&j, "start", in->start_ts_us);
    mmtls_json_ts(&j, "end", in->last_ts_us);
    mmtls_json_obj_close(&j);
    eve_emit(ev, &j);
}

static void write_anomaly(struct mmtls_eve *ev, struct mmtls_session *s,
                          const struct mmtls_error_info *ei)
{
    const struct mmtls_session_info *in = mmtls_session_info(s);
    struct mmtls_json j;

    mmtls_json_init(&j, &ev->line);
    eve_header(&j, in, in->last_ts_us, "anomaly");
    mmtls_json_obj_open(&j, "anomaly");
    mmtls_json_str(&j, "type", "tls");
    mmtls_json_str(&j, "event", mmtls_tls_error_name(ei->code));
    mmtls_json_str(&j, "direction", ei->dir == 0 ? "toserver" : "toclient");
    mmtls_json_u64(&j, "stream_offset", ei->stream_off);
    if (ei->detail != NULL)
        mmtls_json_str(&j, "detail", ei->detail);
    if (in->sni[0] != '\0')
        mmtls_json_str(&j, "sni", in->sni);
    mmtls_json_obj_close(&j);
    eve_emit(ev, &j);
}

static void eve_http_obj(struct mmtls_json *j, const struct mmtls_eve_http *h)
{
    mmtls_json_obj_open(j, "http");
    if (h->host != NULL)
        mmtls_json_strn(j, "hostname", h->host, h->host_len);
    if (h->url != NULL)
        mmtls_json_strn(j, "url", h->url, h->url_len);
    if (h->user_agent != NULL)
        mmtls_json_strn(j, "http_user_agent", h->user_agent, h->user_agent_len);
    if (h->method != NULL)
        mmtls_json_strn(j, "http_method", h->method, h->method_len);
    if (h->protocol != NULL)
        mmtls_json_str(j, "protocol", h->protocol);
    if (h->status != 0)
        mmtls_json_u64(j, "status", (uint64_t)h->status);
    mmtls_json_u64(j, "length", h->length);
    mmtls_json_obj_close(j);
}

void mmtls_eve_write_rule_alert(struct mmtls_eve *ev, struct mmtls_session *s,
                                const struct mmtls_eve_alert *a)
{
    const struct mmtls_session_info *in = mmtls_session_info(s);
    struct mmtls_json j;
    char ip[64];
    bool to_client = a->dir == MMTLS_DIR_TO_CLIENT;

    mmtls_json_init(&j, &ev->line);
    mmtls_json_obj_open(&j, NULL);
    mmtls_json_ts(&j, "timestamp", in->last_ts_us);
    mmtls_json_u64(&j, "flow_id", in->flow_id);
    mmtls_json_str(&j, "event_type", "alert");
    /* As in Suricata, src/dest are those of the packet that triggered the alert. */
    mmtls_apps_fmt_ip(in->ip_version, to_client ? in->server_ip : in->client_ip, ip, sizeof(ip));
    mmtls_json_str(&j, "src_ip", ip);
    mmtls_json_u64(&j, "src_port", to_client ? in->server_port : in->client_port);
    mmtls_apps_fmt_ip(in->ip_version, to_client ? in->client_ip : in->server_ip, ip, sizeof(ip));
    mmtls_json_str(&j, "dest_ip", ip);
    mmtls_json_u64(&j, "dest_port", to_client ? in->client_port : in->server_port);
    mmtls_json_str(&j, "proto", "TCP");
    mmtls_json_str(&j, "direction", to_client ? "to_client" : "to_server");
    mmtls_json_obj_open(&j, "alert");
    mmtls_json_str(&j, "action", a->action);
    mmtls_json_u64(&j, "gid", a->gid);
    mmtls_json_u64(&j, "signature_id", a->sid);
    mmtls_json_u64(&j, "rev", a->rev);
    mmtls_json_strn(&j, "signature", a->msg, a->msg_len);
    if (a->category_len > 0)
        mmtls_json_strn(&j, "category", a->category, a->category_len);
    mmtls_json_u64(&j, "severity", a->severity);
    mmtls_json_obj_close(&j);
    if (a->http != NULL)
        eve_http_obj(&j, a->http);
    mmtls_json_obj_open(&j, "tls");
    if (in->sni[0] != '\0')
        mmtls_json_str(&j, "sni", in->sni);
    if (in->version != 0)
        mmtls_json_str(&j, "version", mmtls_version_name(in->version));
    mmtls_json_obj_close(&j);
    eve_emit(ev, &j);
}

void mmtls_eve_write_alert(struct mmtls_eve *ev, struct mmtls_session *s, enum mmtls_dir dir,
                           uint32_t sid, const char *msg, const char *action)
{
    struct mmtls_eve_alert a = {.dir = dir,
                                .action = action,
                                .gid = 1,
                                .sid = sid,
                                .rev = 1,
                                .severity = 1,
                                .msg = msg,
                                .msg_len = strlen(msg)};

    mmtls_eve_write_rule_alert(ev, s, &a);
}

void mmtls_eve_write_http(struct mmtls_eve *ev, struct mmtls_session *s,
                          const struct mmtls_eve_http *h)
{
    const struct mmtls_session_info *in = mmtls_session_info(s);
    struct mmtls_json j;

    mmtls_json_init(&j, &ev->line);
    eve_header(&j, in, in->last_ts_us, "http");
    eve_http_obj(&j, h);
    if (in->sni[0] != '\0') {
        mmtls_json_obj_open(&j, "tls");
        mmtls_json_str(&j, "sni", in->sni);
        mmtls_json_obj_close(&j);
    }
    eve_emit(ev, &j);
}

static int eve_on_event(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct mmtls_eve *eve = arg;
    struct eve_sess *es = mmtls_session_ctx_get(s, eve->app_id);

    switch (ev->ev) {
    case MMTLS_EV_SESSION_START:
        es = calloc(1, sizeof(*es));
        mmtls_session_ctx_set(s, eve->app_id, es); /* NULL tolerated: errors just not listed */
        break;
    case MMTLS_EV_ERROR: {
        const struct mmtls_error_info *ei = ev->err;
        bool known = false;
        /* One anomaly line per distinct error kind and direction; counts go in the tls line. */
        for (int i = 0; es != NULL && i < es->nerrs; i++) {
            if (es->errs[i].code == ei->code && es->errs[i].dir == (int)ei->dir) {
                es->errs[i].count++;
                known = true;
            }
        }
        if (!known) {
            if (es != NULL && es->nerrs < EVE_MAX_ERR_KINDS)
                es->errs[es->nerrs++] = (struct eve_err){ei->code, 1, ei->stream_off, ei->dir};
            write_anomaly(eve, s, ei);
        }
        break;
    }
    case MMTLS_EV_SESSION_END:
        if (!mmtls_session_info(s)->plain) /* plain TCP streams have no tls event */
            write_session(eve, s, es);
        free(es);
        mmtls_session_ctx_set(s, eve->app_id, NULL);
        break;
    default: break;
    }
    return MMTLS_VERDICT_CONTINUE;
}

int mmtls_eve_new(struct mmtls_eve **out, const char *path, char *err, size_t err_cap)
{
    struct mmtls_eve *ev = calloc(1, sizeof(*ev));

    if (ev == NULL)
        return MMTLS_E_NOMEM;
    if (strcmp(path, "-") == 0) {
        ev->fp = stdout;
    } else {
        ev->fp = fopen(path, "a");
        if (ev->fp == NULL) {
            snprintf(err, err_cap, "cannot open %s: %s", path, strerror(errno));
            free(ev);
            return MMTLS_E_IO;
        }
        ev->own_fp = true;
    }
    /* One line per event, flushed as written: `tail -f eve.json` and log shippers see events
     * as they happen (a handful of lines per session: cheap). */
    setvbuf(ev->fp, NULL, _IOLBF, 0);
    pthread_mutex_init(&ev->lock, NULL);
    ev->root = ev;
    *out = ev;
    return 0;
}

int mmtls_eve_new_shared(struct mmtls_eve **out, struct mmtls_eve *parent)
{
    struct mmtls_eve *ev = calloc(1, sizeof(*ev));

    if (ev == NULL)
        return MMTLS_E_NOMEM;
    ev->fp = parent->fp;
    ev->root = parent->root;
    *out = ev;
    return 0;
}

int mmtls_eve_register(struct mmtls_eve *ev, struct mmtls_engine *e)
{
    struct mmtls_app app = {
        .sz = sizeof(app),
        .name = "eve",
        .events = MMTLS_EV_SESSION_START | MMTLS_EV_ERROR | MMTLS_EV_SESSION_END,
        .on_event = eve_on_event,
        .arg = ev,
    };

    return mmtls_engine_app_register(e, &app, &ev->app_id);
}

void mmtls_eve_write_stats(struct mmtls_eve *ev, const struct mmtls_engine *e, uint64_t ts_us,
                           int worker)
{
    struct mmtls_json j;

    mmtls_json_init(&j, &ev->line);
    mmtls_json_obj_open(&j, NULL);
    mmtls_json_ts(&j, "timestamp", ts_us);
    mmtls_json_str(&j, "event_type", "stats");
    if (worker >= 0)
        mmtls_json_u64(&j, "worker", (uint64_t)worker);
    mmtls_json_obj_open(&j, "stats");
    mmtls_engine_stats_json(e, &j);
    mmtls_json_obj_close(&j);
    eve_emit(ev, &j);
}

void mmtls_eve_write_exception(struct mmtls_eve *ev, const struct mmtls_engine_exception *x,
                               int worker)
{
    struct mmtls_json j;

    mmtls_json_init(&j, &ev->line);
    mmtls_json_obj_open(&j, NULL);
    mmtls_json_ts(&j, "timestamp", x->ts_us);
    mmtls_json_str(&j, "event_type", "exception");
    if (worker >= 0)
        mmtls_json_u64(&j, "worker", (uint64_t)worker);
    mmtls_json_obj_open(&j, "exception");
    mmtls_json_str(&j, "resource", x->resource);
    mmtls_json_str(&j, "policy", x->policy);
    mmtls_json_str(&j, "action", x->action);
    mmtls_json_u64(&j, "count", x->count);
    mmtls_json_u64(&j, "total", x->total);
    mmtls_json_u64(&j, "interval_ms", x->interval_us / 1000);
    mmtls_json_u64(&j, "used", x->used);
    mmtls_json_u64(&j, "cap", x->cap);
    mmtls_json_obj_close(&j);
    eve_emit(ev, &j);
}

uint64_t mmtls_eve_lines(const struct mmtls_eve *ev)
{
    return ev->root->lines;
}

void mmtls_eve_free(struct mmtls_eve *ev)
{
    if (ev == NULL)
        return;
    if (ev->root != ev) {
        pthread_mutex_lock(&ev->root->lock);
        fflush(ev->fp);
        pthread_mutex_unlock(&ev->root->lock);
    } else {
        if (ev->own_fp)
            fclose(ev->fp);
        else
            fflush(ev->fp);
        pthread_mutex_destroy(&ev->lock);
    }
    mmtls_buf_fini(&ev->line, false);
    free(ev);
}
