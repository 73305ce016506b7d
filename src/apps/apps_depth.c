/* depth — inspection depth per HTTP response: after `depth` bytes of server-to-client plaintext
 * since the client's last request, the rest of the response is skipped without decryption
 * (mmtls_session_pause) until the client sends its next request (as the mmTLS paper inspects the
 * first 64 KB of each response).  Registered first, so the pause takes effect for every app.
 * A request is any client application-data record; with HTTP/2 multiplexing this is an
 * approximation (a new client frame resumes inspection).
 * With `wire` the engine counts and pauses itself (mmtls_session_pause_after_wire, armed at the
 * session start and again at each request), in record bytes on the wire. */
#include "apps/apps.h"

#include <stdlib.h>

struct depth_sess {
    uint64_t seen; /* response plaintext since the last request */
    bool paused;
};

struct mmtls_depth {
    uint64_t depth;
    bool wire;
    int app_id;
};

/* The plaintext a record delivers: its content length once decrypted, never the padding.
 * TLS 1.2 records are decrypted lazily, after the apps registered before the one asking: this
 * app is registered first and sees the bound (max_plain_len), which counts the CBC padding (up to
 * 255 bytes, RFC 5246 §6.2.3.2) and the MAC — a sender padding 1-byte records would use up the
 * depth and let what follows pass unseen.  Decrypting here costs nothing extra: the record is
 * decrypted once, for whichever app asks first (and verified anyway unless --no-verify-all).
 * A record that cannot be decrypted counts with its bound. */
static uint64_t delivered(struct mmtls_session *s, const struct mmtls_record *rec)
{
    const uint8_t *p;
    size_t n;

    if (rec->encrypted && rec->decryptable && mmtls_record_plaintext(s, &p, &n) == 0)
        return n;
    return rec->max_plain_len;
}

static int depth_on_event(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct mmtls_depth *d = arg;
    struct depth_sess *ds = mmtls_session_ctx_get(s, d->app_id);

    if (d->wire) {
        /* the engine counts; a new response starts a new count */
        if (ev->ev == MMTLS_EV_SESSION_START ||
            (ev->ev == MMTLS_EV_NEW_RECORD && ev->rec->dir == MMTLS_DIR_TO_SERVER &&
             ev->rec->outer_type == MMTLS_CT_APPLICATION_DATA))
            mmtls_session_pause_after_wire(s, MMTLS_DIR_TO_CLIENT, d->depth);
        return MMTLS_VERDICT_CONTINUE;
    }
    switch (ev->ev) {
    case MMTLS_EV_SESSION_START:
        mmtls_session_ctx_set(s, d->app_id, calloc(1, sizeof(struct depth_sess)));
        break;
    case MMTLS_EV_NEW_RECORD:
        if (ds == NULL || ev->rec->outer_type != MMTLS_CT_APPLICATION_DATA)
            break;
        if (ev->rec->dir == MMTLS_DIR_TO_SERVER) {
            /* a new request: inspect its response from the start */
            ds->seen = 0;
            if (ds->paused) {
                mmtls_session_resume(s, MMTLS_DIR_TO_CLIENT);
                ds->paused = false;
            }
        } else if (!ds->paused) {
            ds->seen += delivered(s, ev->rec);
            if (ds->seen >= d->depth) {
                mmtls_session_pause(s, MMTLS_DIR_TO_CLIENT, UINT64_MAX);
                ds->paused = true;
            }
        }
        break;
    case MMTLS_EV_SESSION_END:
        free(ds);
        mmtls_session_ctx_set(s, d->app_id, NULL);
        break;
    default: break;
    }
    return MMTLS_VERDICT_CONTINUE;
}

int mmtls_depth_register(struct mmtls_depth **out, struct mmtls_engine *e, uint64_t depth,
                         bool wire)
{
    struct mmtls_depth *d = calloc(1, sizeof(*d));
    struct mmtls_app app = {.sz = sizeof(app),
                            .name = "depth",
                            .events =
                                MMTLS_EV_SESSION_START | MMTLS_EV_NEW_RECORD | MMTLS_EV_SESSION_END,
                            .on_event = depth_on_event,
                            .arg = d};
    int rc;

    if (d == NULL)
        return MMTLS_E_NOMEM;
    d->depth = depth;
    d->wire = wire;
    rc = mmtls_engine_app_register(e, &app, &d->app_id);
    if (rc != 0) {
        free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void mmtls_depth_free(struct mmtls_depth *d)
{
    free(d);
}
