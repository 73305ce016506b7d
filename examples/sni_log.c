/* sni_log — a complete, small inspection app on the mmtls framework API.
 *
 * For every TLS session of a capture it prints the server name, version and cipher suite, and
 * the first line of the client's first decrypted application data (an HTTP request line, say).
 *
 *   sni_log capture.pcapng keys.log
 *
 * The app itself is sni_on_event(): everything else is the few lines any embedder writes to
 * feed packets to an engine (see docs/API.md).
 */
#include <stdio.h>
#include <stdlib.h>

#include <mmtls/mmtls.h>

#include "engine/engine.h"
#include "io/io.h"
#include "keys/keys.h"

struct sni_ctx {
    int app_id;
};

static int sni_on_event(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct sni_ctx *c = arg;
    const struct mmtls_session_info *in = mmtls_session_info(s);
    const uint8_t *p;
    size_t n, i;

    switch (ev->ev) {
    case MMTLS_EV_HANDSHAKE_END:
        printf("flow %llu: sni=%s version=%s cipher=%s\n", (unsigned long long)in->flow_id,
               in->sni[0] ? in->sni : "-", mmtls_version_name(in->version), in->cipher_name);
        break;
    case MMTLS_EV_NEW_RECORD:
        /* The per-session context is just a flag here: "first request line printed". */
        if (ev->rec->dir != MMTLS_DIR_TO_SERVER || mmtls_session_ctx_get(s, c->app_id) != NULL)
            break;
        if (mmtls_record_plaintext(s, &p, &n) != 0 || ev->rec->type != MMTLS_CT_APPLICATION_DATA)
            break;
        for (i = 0; i < n && p[i] != '\r' && p[i] != '\n' && i < 200; i++) {
        }
        printf("flow %llu: first line: %.*s\n", (unsigned long long)in->flow_id, (int)i,
               (const char *)p);
        mmtls_session_ctx_set(s, c->app_id, (void *)1);
        break;
    default: break;
    }
    return MMTLS_VERDICT_CONTINUE;
}

int main(int argc, char **argv)
{
    struct mmtls_keystore_opts kso = {.max_entries = 1u << 20};
    struct mmtls_engine_opts eo;
    struct mmtls_keystore *ks;
    struct mmtls_engine *e;
    struct mmtls_pcap_reader *r;
    struct mmtls_io_pkt pkt;
    struct sni_ctx ctx;
    struct mmtls_app app = {.sz = sizeof(app),
                            .name = "sni_log",
                            .events = MMTLS_EV_HANDSHAKE_END | MMTLS_EV_NEW_RECORD,
                            .on_event = sni_on_event,
                            .arg = &ctx};
    char err[256];

    if (argc != 3) {
        fprintf(stderr, "usage: sni_log CAPTURE KEYLOG\n");
        return 2;
    }
    if (mmtls_keystore_new(&ks, &kso) != 0 ||
        mmtls_keylog_load_file(ks, argv[2], err, sizeof(err)) != 0) {
        fprintf(stderr, "sni_log: %s\n", err);
        return 2;
    }
    mmtls_engine_opts_default(&eo);
    eo.keys = ks;
    if (mmtls_engine_new(&e, &eo) != 0 || mmtls_engine_app_register(e, &app, &ctx.app_id) != 0)
        return 2;
    if (mmtls_pcap_open(&r, argv[1], NULL, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "sni_log: %s\n", err);
        return 2;
    }
    while (mmtls_pcap_next(r, &pkt, err, sizeof(err)) == 0)
        (void)mmtls_engine_packet(e, pkt.linktype, pkt.data, pkt.caplen, pkt.ts_us);
    mmtls_engine_free(e);
    mmtls_pcap_close(r);
    mmtls_keystore_free(ks);
    return 0;
}
