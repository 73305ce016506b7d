/* dump — writes each connection's decrypted application data, one file per direction: the
 * bytes the receiving application read, in order.  0-RTT data is held back until the server's
 * EncryptedExtensions says whether it accepted it (RFC 8446 §4.2.10): rejected early data was
 * never read by the server and is left out; when acceptance cannot be seen (no handshake
 * secrets) it is written.
 */
#include "apps/apps.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#define DUMP_EARLY_MAX (1u << 20)

struct dump_sess {
    FILE *fp[2];            /* owned */
    struct mmtls_buf early; /* owned: early data awaiting the server's decision */
    bool early_decided;
    bool failed;
};

struct mmtls_dump {
    char dir[512];
    int app_id;
    uint64_t files, bytes, write_errors;
};

static FILE *open_file(struct mmtls_dump *d, struct mmtls_session *s, int dir)
{
    const struct mmtls_session_info *in = mmtls_session_info(s);
    char cip[64], sip[64], path[1024];
    FILE *fp;

    mmtls_apps_fmt_ip(in->ip_version, in->client_ip, cip, sizeof(cip));
    mmtls_apps_fmt_ip(in->ip_version, in->server_ip, sip, sizeof(sip));
    snprintf(path, sizeof(path), "%s/f%llu-%s_%u-%s_%u.%s", d->dir, (unsigned long long)in->flow_id,
             cip, in->client_port, sip, in->server_port, dir == 0 ? "c2s" : "s2c");
    fp = fopen(path, "wb");
    if (fp == NULL) {
        d->write_errors++;
        mmtls_log(MMTLS_LOG_WARN, "cannot create %s: %s", path, strerror(errno));
        return NULL;
    }
    d->files++;
    return fp;
}

static void put(struct mmtls_dump *d, struct dump_sess *ds, int dir, const uint8_t *p, size_t n)
{
    if (ds->fp[dir] == NULL || n == 0)
        return;
    if (fwrite(p, 1, n, ds->fp[dir]) != n)
        d->write_errors++;
    else
        d->bytes += n;
}

static void decide_early(struct mmtls_dump *d, struct mmtls_session *s, struct dump_sess *ds)
{
    const struct mmtls_session_info *in = mmtls_session_info(s);

    if (ds->early_decided)
        return;
    ds->early_decided = true;
    if (in->early_data_accepted != 0)
        put(d, ds, 0, ds->early.p, ds->early.len);
    mmtls_buf_fini(&ds->early, true);
}

static int dump_on_event(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct mmtls_dump *d = arg;
    struct dump_sess *ds = mmtls_session_ctx_get(s, d->app_id);
    const uint8_t *p;
    size_t n;

    switch (ev->ev) {
    case MMTLS_EV_SESSION_START:
        ds = calloc(1, sizeof(*ds));
        if (ds == NULL)
            break;
        ds->early.max = DUMP_EARLY_MAX;
        ds->fp[0] = open_file(d, s, 0);
        ds->fp[1] = open_file(d, s, 1);
        mmtls_session_ctx_set(s, d->app_id, ds);
        break;
    case MMTLS_EV_NEW_RECORD:
        if (ds == NULL || ev->rec->outer_type != MMTLS_CT_APPLICATION_DATA)
            break;
        if (mmtls_record_plaintext(s, &p, &n) != 0)
            break; /* undecryptable or failed verification: nothing unverified is written */
        if (ev->rec->type != MMTLS_CT_APPLICATION_DATA)
            break; /* TLS 1.3 handshake or alert inside an application_data record */
        if (ev->rec->early) {
            if (mmtls_buf_append(&ds->early, p, n) != 0)
                d->write_errors++;
            break;
        }
        if (ev->rec->dir == MMTLS_DIR_TO_SERVER)
            decide_early(d, s, ds);
        put(d, ds, ev->rec->dir, p, n);
        break;
    case MMTLS_EV_SESSION_END:
        if (ds == NULL)
            break;
        decide_early(d, s, ds);
        for (int i = 0; i < 2; i++) {
            if (ds->fp[i] != NULL && fclose(ds->fp[i]) != 0)
                d->write_errors++;
        }
        free(ds);
        mmtls_session_ctx_set(s, d->app_id, NULL);
        break;
    default: break;
    }
    return MMTLS_VERDICT_CONTINUE;
}

int mmtls_dump_new(struct mmtls_dump **out, const char *dir, char *err, size_t err_cap)
{
    struct mmtls_dump *d;

    if (strlen(dir) >= sizeof(d->dir)) {
        snprintf(err, err_cap, "%s: path too long", dir);
        return MMTLS_E_INVAL;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, err_cap, "cannot create %s: %s", dir, strerror(errno));
        return MMTLS_E_IO;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return MMTLS_E_NOMEM;
    snprintf(d->dir, sizeof(d->dir), "%s", dir);
    *out = d;
    return 0;
}

int mmtls_dump_register(struct mmtls_dump *d, struct mmtls_engine *e)
{
    struct mmtls_app app = {
        .sz = sizeof(app),
        .name = "dump",
        .events = MMTLS_EV_SESSION_START | MMTLS_EV_NEW_RECORD | MMTLS_EV_SESSION_END,
        .on_event = dump_on_event,
        .arg = d,
    };

    return mmtls_engine_app_register(e, &app, &d->app_id);
}

void mmtls_dump_free(struct mmtls_dump *d)
{
    free(d);
}
