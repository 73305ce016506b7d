/* block — a small built-in inspection app: blocks a session whose decrypted application data
 * contains one of a few byte patterns (by default the EICAR anti-virus test signature), and
 * writes a Suricata-style "alert" event.  Patterns are matched across record and segment
 * boundaries: each direction keeps the last (longest pattern - 1) bytes it saw.  The full rule
 * engine (Snort/Suricata rules on Vectorscan) is a later app; this one serves the demo and the
 * tests of the blocking path.
 */
#include "apps/apps.h"

#include <stdlib.h>
#include <string.h>

#define BLOCK_MAX_PATTERNS 16
#define BLOCK_MAX_LEN 128

struct block_pattern {
    char name[64];
    uint8_t bytes[BLOCK_MAX_LEN];
    size_t len;
    uint32_t sid;
};

struct block_sess {
    uint8_t tail[2][BLOCK_MAX_LEN]; /* last bytes of each direction */
    size_t tail_len[2];
};

struct mmtls_block {
    struct block_pattern pat[BLOCK_MAX_PATTERNS];
    int npat;
    size_t maxlen;
    int app_id;
    struct mmtls_eve *eve; /* borrowed, may be NULL */
    uint64_t blocked;
};

/* The EICAR test file's signature part (eicar.org): harmless, recognised by every scanner. */
static const char eicar[] = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE";

int mmtls_block_new(struct mmtls_block **out, struct mmtls_eve *eve)
{
    struct mmtls_block *b = calloc(1, sizeof(*b));

    if (b == NULL)
        return MMTLS_E_NOMEM;
    b->eve = eve;
    *out = b;
    return 0;
}

int mmtls_block_add(struct mmtls_block *b, const char *name, const void *bytes, size_t len,
                    uint32_t sid)
{
    struct block_pattern *p;

    if (len == 0 || len > BLOCK_MAX_LEN)
        return MMTLS_E_INVAL;
    if (b->npat >= BLOCK_MAX_PATTERNS)
        return MMTLS_E_LIMIT;
    p = &b->pat[b->npat++];
    snprintf(p->name, sizeof(p->name), "%s", name);
    memcpy(p->bytes, bytes, len);
    p->len = len;
    p->sid = sid;
    if (len > b->maxlen)
        b->maxlen = len;
    return 0;
}

int mmtls_block_add_eicar(struct mmtls_block *b)
{
    return mmtls_block_add(b, "MMTLS DEMO EICAR test file in decrypted TLS", eicar,
                           sizeof(eicar) - 1, 9000001);
}

/* A pattern inside this record, or straddling the previous bytes of the direction (the tail kept
 * from earlier records) and this one; then keeps the new tail. */
static const struct block_pattern *scan(const struct mmtls_block *b, struct block_sess *bs, int dir,
                                        const uint8_t *p, size_t n)
{
    uint8_t joint[2 * BLOCK_MAX_LEN];
    size_t t = bs->tail_len[dir], jl;

    for (int i = 0; i < b->npat; i++) {
        const struct block_pattern *pt = &b->pat[i];
        if (memmem(p, n, pt->bytes, pt->len) != NULL)
            return pt;
    }
    /* a match straddling the previous data and this record */
    jl = t + MMTLS_MIN(n, b->maxlen - 1);
    memcpy(joint, bs->tail[dir], t);
    memcpy(joint + t, p, jl - t);
    for (int i = 0; i < b->npat; i++) {
        const struct block_pattern *pt = &b->pat[i];
        if (memmem(joint, jl, pt->bytes, pt->len) != NULL)
            return pt;
    }
    /* keep the last maxlen - 1 bytes */
    if (b->maxlen > 1) {
        size_t keep = b->maxlen - 1;
        if (n >= keep) {
            memcpy(bs->tail[dir], p + n - keep, keep);
            bs->tail_len[dir] = keep;
        } else {
            size_t from_tail = MMTLS_MIN(t, keep - n);
            memmove(bs->tail[dir], bs->tail[dir] + t - from_tail, from_tail);
            memcpy(bs->tail[dir] + from_tail, p, n);
            bs->tail_len[dir] = from_tail + n;
        }
    }
    return NULL;
}

static int block_on_event(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct mmtls_block *b = arg;
    struct block_sess *bs = mmtls_session_ctx_get(s, b->app_id);
    const struct block_pattern *hit;
    const uint8_t *p;
    size_t n;

    switch (ev->ev) {
    case MMTLS_EV_SESSION_START:
        mmtls_session_ctx_set(s, b->app_id, calloc(1, sizeof(struct block_sess)));
        break;
    case MMTLS_EV_NEW_RECORD:
        if (bs == NULL || mmtls_record_plaintext(s, &p, &n) != 0 ||
            ev->rec->type != MMTLS_CT_APPLICATION_DATA)
            break;
        hit = scan(b, bs, ev->rec->dir, p, n);
        if (hit != NULL) {
            b->blocked++;
            if (b->eve != NULL)
                mmtls_eve_write_alert(b->eve, s, ev->rec->dir, hit->sid, hit->name, "blocked");
            return MMTLS_VERDICT_BLOCK;
        }
        break;
    case MMTLS_EV_SESSION_END:
        free(bs);
        mmtls_session_ctx_set(s, b->app_id, NULL);
        break;
    default: break;
    }
    return MMTLS_VERDICT_CONTINUE;
}

int mmtls_block_register(struct mmtls_block *b, struct mmtls_engine *e)
{
    struct mmtls_app app = {
        .sz = sizeof(app),
        .name = "block",
        .events = MMTLS_EV_SESSION_START | MMTLS_EV_NEW_RECORD | MMTLS_EV_SESSION_END,
        .on_event = block_on_event,
        .arg = b,
    };

    return mmtls_engine_app_register(e, &app, &b->app_id);
}

uint64_t mmtls_block_count(const struct mmtls_block *b)
{
    return b->blocked;
}

void mmtls_block_free(struct mmtls_block *b)
{
    free(b);
}
