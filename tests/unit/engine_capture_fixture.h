/* Shared fixture of the engine tests that replay a real capture (test_engine_keys.c,
 * test_engine_inline.c): a TLS 1.3 capture from the fuzz corpus (openssl s_server/s_client on
 * 127.0.0.1) loaded in memory, the secrets of its session from the corpus key log, key messages
 * built from them, and a result collected from the session's events.  Included by one test
 * source each; everything is static. */
#ifndef ENGINE_CAPTURE_FIXTURE_H
#define ENGINE_CAPTURE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/engine.h"
#include "io/io.h"
#include "keys/keys.h"

#define CAP "/fuzz/corpus/fuzz_engine_pcap/tls13-ccm8.pcap"
#define KEYLOG "/fuzz/corpus/fuzz_engine_pcap.keylog"

struct pkt {
    uint8_t *data;
    size_t len;
    uint64_t ts;
    int lt;
};

static struct pkt pkts[4096];
static size_t npkts;
static struct mmtls_keyset capture_keys; /* the TLS 1.3 secrets of the capture's session */
static uint8_t capture_cr[32];

struct result {
    /* inline verdicts and TX sink (test_engine_inline) */
    int fwd, drop, hold, sent, built, rst_to_client, rst_to_server;
    int blocked_app;
    int evasion_verdict; /* verdict of the differing retransmission (test_evasion_blocked) */
    /* what the sessions ended with */
    int sessions;
    enum mmtls_key_status status;
    uint64_t app_records, undecrypted;
    uint32_t errors;
    int rejected;
};

static int on_event(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct result *r = arg;
    const struct mmtls_session_info *in = mmtls_session_info(s);

    if (ev->ev == MMTLS_EV_ERROR && ev->err->code == MMTLS_TLSERR_KEY_REJECTED)
        r->rejected++;
    if (ev->ev == MMTLS_EV_SESSION_END) {
        r->sessions++;
        r->status = in->key_status;
        r->app_records = in->dir[0].app_records + in->dir[1].app_records;
        r->undecrypted = in->dir[0].undecrypted_records + in->dir[1].undecrypted_records;
        r->errors = in->errors;
    }
    return MMTLS_VERDICT_CONTINUE;
}

static const char *srcdir(void)
{
    const char *d = getenv("MMTLS_SRCDIR");
    return d != NULL ? d : ".";
}

static int setup(void **state)
{
    char path[1024], err[256];
    struct mmtls_pcap_reader *r;
    struct mmtls_io_pkt p;
    struct mmtls_keystore_opts ko = {.max_entries = 64};
    struct mmtls_keystore *ks;
    FILE *fp;
    char line[512];

    (void)state;
    snprintf(path, sizeof(path), "%s%s", srcdir(), CAP);
    if (mmtls_pcap_open(&r, path, NULL, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    while (npkts < 4096 && mmtls_pcap_next(r, &p, err, sizeof(err)) == 0) {
        pkts[npkts].data = malloc(p.caplen);
        memcpy(pkts[npkts].data, p.data, p.caplen);
        pkts[npkts].len = p.caplen;
        pkts[npkts].ts = p.ts_us;
        pkts[npkts].lt = p.linktype;
        npkts++;
    }
    mmtls_pcap_close(r);
    /* The key log holds several sessions; the capture's is the one whose client random the
     * capture's ClientHello carries: take the TLS 1.3 secrets of every entry and keep the one
     * that decrypts (first: find the random in the capture bytes). */
    snprintf(path, sizeof(path), "%s%s", srcdir(), KEYLOG);
    fp = fopen(path, "r");
    if (fp == NULL || mmtls_keystore_new(&ks, &ko) != 0)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL) {
        struct mmtls_keylog_entry e;
        if (mmtls_keylog_line_parse(line, strlen(line), &e) != 0)
            continue;
        for (size_t i = 0; i < npkts; i++) {
            for (size_t o = 0; o + 32 <= pkts[i].len; o++) {
                if (memcmp(pkts[i].data + o, e.client_random, 32) == 0) {
                    memcpy(capture_cr, e.client_random, 32);
                    i = npkts;
                    break;
                }
            }
        }
        if (mmtls_keystore_put(ks, &e, 0) < 0)
            fprintf(stderr, "key log line not stored\n");
        mmtls_secret_wipe(&e.secret);
    }
    fclose(fp);
    if (mmtls_keystore_lookup(ks, capture_cr, &capture_keys) != 0)
        return -1;
    mmtls_keystore_free(ks);
    return npkts > 10 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < npkts; i++)
        free(pkts[i].data);
    mmtls_keyset_wipe(&capture_keys);
    return 0;
}

static struct mmtls_engine_keymsg *keymsg(bool tamper, bool other_owner, bool any)
{
    /* the engine frees it with mmtls_engine_keymsg_free: secure-memory pool */
    struct mmtls_engine_keymsg *m = mmtls_secmem_calloc(1, sizeof(*m));

    m->type = MMTLS_KP_KEYS;
    memcpy(m->client_random, capture_cr, 32);
    m->ks.have = capture_keys.have & (MMTLS_KS_CHS | MMTLS_KS_SHS);
    m->ks.chs = capture_keys.chs;
    m->ks.shs = capture_keys.shs;
    m->ks.cts_have = 1;
    m->ks.sts_have = 1;
    m->ks.cts[0] = capture_keys.cts[0];
    m->ks.sts[0] = capture_keys.sts[0];
    if (tamper)
        m->ks.cts[0].b[0] ^= 1;
    m->ks.owner_ip_version = 4;
    m->ks.owner_ip[0] = 127;
    m->ks.owner_ip[3] = other_owner ? 2 : 1;
    m->ks.owner_any = any;
    return m;
}

#endif
