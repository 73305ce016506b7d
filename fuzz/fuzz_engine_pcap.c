/* Whole-pipeline fuzz target: the input is a capture file (pcap or pcapng, as mmtlsd -r reads
 * it); every packet goes through decode, defrag, flows, reassembly, TLS framing, handshake
 * parsing and decryption, with the eve logger and an app that asks for every record's plaintext.
 * A fixed key log is loaded so that sessions of the seed captures decrypt and the decryption
 * paths are reached.  Suricata's fuzz_decodepcapfile is the model. */
#include <stdio.h>
#include <stdlib.h>

#include "apps/apps.h"
#include "engine/engine.h"
#include "io/io.h"
#include "keys/keys.h"

static int reader_app(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    const uint8_t *p;
    size_t n;
    volatile uint8_t sink = 0;

    (void)arg;
    if (ev->ev == MMTLS_EV_NEW_RECORD && mmtls_record_plaintext(s, &p, &n) == 0) {
        for (size_t i = 0; i < n; i += 64)
            sink ^= p[i]; /* touch the plaintext: ASan checks the bounds */
        if (n > 0 && p[0] == 'P')
            mmtls_session_pause(s, ev->rec->dir, n * 2);
        if (n > 0 && p[0] == 'W')
            mmtls_session_pause_after_wire(s, ev->rec->dir, n * 4);
        if (n > 0 && p[0] == 'B')
            mmtls_session_block(s, "fuzz");
    }
    (void)sink;
    (void)mmtls_session_info(s);
    return MMTLS_VERDICT_CONTINUE;
}

/* The inline path's TX sink: touches every byte it is given (ASan checks the bounds). */
static void tx_sink(void *ud, int port, const uint8_t *frame, size_t len, const uint8_t *meta,
                    size_t meta_len, bool built)
{
    volatile uint8_t x = 0;

    (void)ud;
    (void)built;
    if (port != 0 && port != 1)
        abort();
    for (size_t i = 0; i < len; i++)
        x ^= frame[i];
    for (size_t i = 0; i < meta_len; i++)
        x ^= meta[i];
    (void)x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mmtls_keystore *ks;
    struct mmtls_engine_opts eo;
    struct mmtls_engine *e, *ie;
    struct mmtls_engine_tx tx = {.send = tx_sink};
    struct mmtls_pcap_reader *r;
    struct mmtls_eve *eve;
    struct mmtls_io_pkt pkt;
    char err[256];
    FILE *fp;
    struct mmtls_app app = {
        .sz = sizeof(app), .name = "reader", .events = MMTLS_EV_ALL, .on_event = reader_app};

    if (ks == NULL) {
        struct mmtls_keystore_opts ko = {.max_entries = 1024};
        const char *path = getenv("MMTLS_FUZZ_KEYLOG");
        if (path == NULL)
            path = MMTLS_FUZZ_KEYLOG_DEFAULT;
        if (mmtls_keystore_new(&ks, &ko) != 0)
            abort();
        if (path != NULL && mmtls_keylog_load_file(ks, path, err, sizeof(err)) != 0)
            abort();
    }
    fp = fmemopen((void *)data, size, "rb");
    if (fp == NULL)
        return 0;
    if (mmtls_pcap_open_fp(&r, fp, "fuzz", NULL, NULL, err, sizeof(err)) != 0) {
        fclose(fp);
        return 0;
    }
    mmtls_engine_opts_default(&eo);
    eo.keys = ks;
    eo.flow.max_flows = 64;
    eo.reasm_memcap = 8u << 20;
    eo.max_handshake_msg = 64u << 10;
    if (mmtls_engine_new(&e, &eo) != 0)
        abort();
    /* A second engine runs the same Ethernet frames inline (ports by TCP direction parity),
     * holding frames of keyless sessions for a short wait, then blocking them (RSTs); it also
     * inspects non-TLS flows as plain streams (the --rules configuration). */
    eo.key_wait_ms = 50;
    eo.inspect_plain = true;
    if (mmtls_engine_new(&ie, &eo) != 0 || mmtls_engine_app_register(ie, &app, NULL) != 0)
        abort();
    mmtls_engine_set_tx(ie, &tx);
    if (mmtls_eve_new(&eve, "/dev/null", err, sizeof(err)) != 0 ||
        mmtls_eve_register(eve, e) != 0 || mmtls_engine_app_register(e, &app, NULL) != 0)
        abort();
    for (int i = 0; i < 100000 && mmtls_pcap_next(r, &pkt, err, sizeof(err)) == 0; i++) {
        (void)mmtls_engine_packet(e, pkt.linktype, pkt.data, pkt.caplen, pkt.ts_us);
        if (pkt.linktype == 1 && pkt.caplen > 0)
            (void)mmtls_engine_packet_inline(ie, pkt.data[pkt.caplen - 1] & 1, pkt.data, pkt.caplen,
                                             pkt.ts_us, pkt.data,
                                             MMTLS_MIN((size_t)pkt.caplen, (size_t)13));
    }
    mmtls_engine_flush(ie);
    mmtls_engine_free(ie);
    mmtls_engine_flush(e);
    mmtls_eve_write_stats(eve, e, 0, -1);
    mmtls_engine_free(e);
    mmtls_eve_free(eve);
    mmtls_pcap_close(r);
    return 0;
}
