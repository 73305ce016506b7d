/* The TLS 1.3 server flight inline (--server-flight, issue 7), on the capture of
 * engine_capture_fixture.h.  Its server flight is one segment: ServerHello (127 bytes with its
 * header), ChangeCipherSpec (6), then encrypted EncryptedExtensions (20), Certificate (812),
 * CertificateVerify (278), Finished (50).  The test appends a 0.5-RTT record (RFC 8446 §2:
 * application data right after the server Finished) sealed under the server's application
 * secret, and checks, from what the engine sends towards the client:
 *  - hold: the ServerHello and ChangeCipherSpec go on at once (the frame is split), the
 *    encrypted records wait for the handshake secrets; with them the handshake records up to
 *    the Finished go on, the 0.5-RTT record waits for the application secrets and is inspected
 *    before it leaves (an app blocking it: dropped, both ends reset); handshake secrets that
 *    never come: --key-wait, then --on-missing-keys;
 *  - pass: the whole flight goes on at once (the old behaviour). */
#include "engine_capture_fixture.h"

#include "crypto/crypto.h"

#define SH_BYTES 133u  /* ServerHello + ChangeCipherSpec records */
#define HS_BYTES 1160u /* EncryptedExtensions .. Finished records */
#define HALF "half-rtt: EVIL"

static size_t half_len; /* the appended 0.5-RTT record, header included */

struct flight {
    struct result r;
    size_t to_client;    /* TCP payload bytes sent towards the client (released/split frames) */
    int half_seen;       /* the 0.5-RTT record reached the app, decrypted */
    int block_half;      /* the app blocks it */
    int hs_records_seen; /* server handshake records the app saw decrypted */
};

static void tx_send(void *ud, int port, const uint8_t *frame, size_t len, const uint8_t *meta,
                    size_t meta_len, bool built)
{
    struct flight *f = ud;
    size_t ihl, thl, plen;

    (void)meta;
    (void)meta_len;
    f->r.sent++;
    if (built) {
        f->r.built++;
        if (port == 1)
            f->r.rst_to_server++;
        else
            f->r.rst_to_client++;
        return;
    }
    /* Ethernet | IPv4 | TCP; the IPv4 total length says where the payload ends */
    assert_true(len >= 14 + 20 + 20);
    ihl = (size_t)(frame[14] & 0x0f) * 4;
    thl = (size_t)(frame[14 + ihl + 12] >> 4) * 4;
    plen = (size_t)(frame[16] << 8 | frame[17]) - ihl - thl;
    if (port == 0)
        f->to_client += plen;
    if (plen == SH_BYTES || plen == HS_BYTES || plen == half_len) {
        /* a frame the engine cut: IPv4 header and TCP checksums (RFC 791, RFC 793) hold */
        uint32_t sum = 0;
        const uint8_t *ip = frame + 14, *tcp = ip + ihl;
        for (size_t i = 0; i < ihl; i += 2)
            sum += (uint32_t)ip[i] << 8 | ip[i + 1];
        while (sum >> 16)
            sum = (sum & 0xffff) + (sum >> 16);
        assert_int_equal(sum, 0xffff);
        sum = 6 + (uint32_t)(thl + plen);
        for (size_t i = 12; i < 20; i += 2)
            sum += (uint32_t)ip[i] << 8 | ip[i + 1];
        for (size_t i = 0; i < thl + plen; i += 2)
            sum += (uint32_t)tcp[i] << 8 | (i + 1 < thl + plen ? tcp[i + 1] : 0);
        while (sum >> 16)
            sum = (sum & 0xffff) + (sum >> 16);
        assert_int_equal(sum, 0xffff);
    }
}

static int app(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct flight *f = arg;
    const uint8_t *p;
    size_t n;

    if (ev->ev == MMTLS_EV_NEW_RECORD && ev->rec->dir == MMTLS_DIR_TO_CLIENT &&
        ev->rec->encrypted && mmtls_record_plaintext(s, &p, &n) == 0) {
        if (ev->rec->type == MMTLS_CT_HANDSHAKE)
            f->hs_records_seen++;
        if (ev->rec->type == MMTLS_CT_APPLICATION_DATA && n == strlen(HALF) &&
            memcmp(p, HALF, n) == 0) {
            f->half_seen++;
            if (f->block_half)
                return MMTLS_VERDICT_BLOCK;
        }
    }
    return on_event(s, ev, &f->r);
}

/* Frame 5 of the capture with a 0.5-RTT record appended (lengths and checksums fixed). */
static uint8_t *flight_frame(size_t *len)
{
    const struct mmtls_suite *su = mmtls_crypto_suite(0x1305); /* TLS_AES_128_CCM_8_SHA256 */
    struct mmtls_rprot *rp;
    uint8_t rec[64];
    size_t rlen, ihl, n = pkts[5].len;
    uint8_t *fr;
    uint32_t sum = 0;

    assert_non_null(su);
    assert_int_equal(mmtls_rprot_new_tls13(&rp, su, &capture_keys.sts[0]), 0);
    assert_int_equal(mmtls_rprot_seal(rp, 0, MMTLS_CT_APPLICATION_DATA, 0x0303,
                                      (const uint8_t *)HALF, strlen(HALF), 0, rec, sizeof(rec),
                                      &rlen),
                     0);
    mmtls_rprot_free(rp);
    fr = malloc(n + rlen);
    assert_non_null(fr);
    memcpy(fr, pkts[5].data, n);
    memcpy(fr + n, rec, rlen);
    ihl = (size_t)(fr[14] & 0x0f) * 4;
    fr[16] = (uint8_t)((n + rlen - 14) >> 8);
    fr[17] = (uint8_t)(n + rlen - 14);
    fr[24] = fr[25] = 0;
    for (size_t i = 0; i < ihl; i += 2)
        sum += (uint32_t)fr[14 + i] << 8 | fr[15 + i];
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    fr[24] = (uint8_t)(~sum >> 8);
    fr[25] = (uint8_t)~sum;
    *len = n + rlen;
    half_len = rlen;
    return fr;
}

static struct mmtls_engine_keymsg *hs_only(void)
{
    struct mmtls_engine_keymsg *m = keymsg(false, false, false);

    /* what an OpenSSL client has at the ServerHello: the server handshake secret only */
    m->ks.have &= ~MMTLS_KS_CHS;
    memset(&m->ks.chs, 0, sizeof(m->ks.chs));
    m->ks.cts_have = m->ks.sts_have = 0;
    memset(&m->ks.cts[0], 0, sizeof(m->ks.cts[0]));
    memset(&m->ks.sts[0], 0, sizeof(m->ks.sts[0]));
    return m;
}

static struct mmtls_engine *start(struct flight *f, bool pass, uint32_t wait_ms)
{
    static struct mmtls_app a;
    static struct mmtls_engine_tx tx;
    struct mmtls_engine_opts o;
    struct mmtls_engine *e;

    a = (struct mmtls_app){
        .sz = sizeof(a), .name = "t", .events = MMTLS_EV_ALL, .on_event = app, .arg = f};
    tx = (struct mmtls_engine_tx){.ud = f, .send = tx_send};
    mmtls_engine_opts_default(&o);
    o.key_wait_ms = wait_ms;
    o.on_missing_keys = MMTLS_MISSING_BLOCK;
    o.server_flight_pass = pass;
    assert_int_equal(mmtls_engine_new(&e, &o), 0);
    assert_int_equal(mmtls_engine_app_register(e, &a, NULL), 0);
    mmtls_engine_set_tx(e, &tx);
    return e;
}

/* Frames 0..4 (handshake start), then the flight: its verdict. */
static int to_flight(struct mmtls_engine *e, const uint8_t *fr, size_t len)
{
    for (size_t i = 0; i < 5; i++) {
        const uint8_t *ip = pkts[i].data + 14;
        int port = (ip[20] << 8 | ip[21]) == 4433 ? 1 : 0;
        assert_int_equal(
            mmtls_engine_packet_inline(e, port, pkts[i].data, pkts[i].len, pkts[i].ts, NULL, 0),
            MMTLS_PKT_FORWARD);
    }
    return mmtls_engine_packet_inline(e, 1, fr, len, pkts[5].ts, NULL, 0);
}

static void keys(struct mmtls_engine *e, struct mmtls_engine_keymsg *m)
{
    assert_true(mmtls_ring_push(mmtls_engine_key_ring(e), m));
    mmtls_engine_poll_keys(e);
}

static void test_hold_flight(void **state)
{
    struct flight f;
    size_t len;
    uint8_t *fr = flight_frame(&len);
    struct mmtls_engine *e;

    (void)state;
    memset(&f, 0, sizeof(f));
    e = start(&f, false, 60000);
    assert_int_equal(to_flight(e, fr, len), MMTLS_PKT_HOLD);
    /* Only the ServerHello and ChangeCipherSpec went on: the client derives its secrets. */
    assert_int_equal(f.to_client, SH_BYTES);
    assert_int_equal(mmtls_engine_get_stats(e)->frames_split, 1);
    assert_int_equal(f.hs_records_seen, 0);
    /* The server handshake secret: the flight up to its Finished, inspected, goes on; 0.5-RTT
     * waits for the application secrets. */
    keys(e, hs_only());
    assert_int_equal(f.hs_records_seen, 4);
    assert_int_equal(f.to_client, SH_BYTES + HS_BYTES);
    assert_int_equal(f.half_seen, 0);
    assert_int_equal(mmtls_engine_get_stats(e)->key_waits_partial, 1);
    /* Application secrets: the 0.5-RTT record is inspected, then released. */
    keys(e, keymsg(false, false, false));
    assert_int_equal(f.half_seen, 1);
    assert_int_equal(f.to_client, 1293 + half_len);
    assert_int_equal(f.r.built, 0);
    mmtls_engine_flush(e);
    mmtls_engine_free(e);
    free(fr);
}

static void test_hold_flight_block(void **state)
{
    struct flight f;
    size_t len;
    uint8_t *fr = flight_frame(&len);
    struct mmtls_engine *e;

    (void)state;
    memset(&f, 0, sizeof(f));
    f.block_half = 1;
    e = start(&f, false, 60000);
    assert_int_equal(to_flight(e, fr, len), MMTLS_PKT_HOLD);
    keys(e, hs_only());
    keys(e, keymsg(false, false, false));
    /* The app blocked the 0.5-RTT record: it never reached the client; both ends reset. */
    assert_int_equal(f.half_seen, 1);
    assert_int_equal(f.to_client, SH_BYTES + HS_BYTES);
    assert_int_equal(f.r.rst_to_client, 1);
    assert_int_equal(f.r.rst_to_server, 1);
    mmtls_engine_flush(e);
    mmtls_engine_free(e);
    free(fr);
}

/* All keys at once (a client that shares them only after its handshake cannot finish it: this
 * is the order a prompt client cannot produce, but the engine must handle it). */
static void test_hold_flight_all_keys(void **state)
{
    struct flight f;
    size_t len;
    uint8_t *fr = flight_frame(&len);
    struct mmtls_engine *e;

    (void)state;
    memset(&f, 0, sizeof(f));
    e = start(&f, false, 60000);
    assert_int_equal(to_flight(e, fr, len), MMTLS_PKT_HOLD);
    keys(e, keymsg(false, false, false));
    assert_int_equal(f.half_seen, 1);
    assert_int_equal(f.to_client, 1293 + half_len);
    mmtls_engine_flush(e);
    mmtls_engine_free(e);
    free(fr);
}

static void test_hold_flight_no_keys(void **state)
{
    struct flight f;
    size_t len;
    uint8_t *fr = flight_frame(&len);
    struct mmtls_engine *e;

    (void)state;
    memset(&f, 0, sizeof(f));
    e = start(&f, false, 100);
    assert_int_equal(to_flight(e, fr, len), MMTLS_PKT_HOLD);
    mmtls_engine_tick(e, pkts[5].ts + 200000);
    /* --key-wait passed without handshake secrets: --on-missing-keys block. */
    assert_int_equal(mmtls_engine_get_stats(e)->blocked_missing_keys, 1);
    assert_int_equal(f.to_client, SH_BYTES);
    assert_int_equal(f.half_seen, 0);
    assert_int_equal(f.r.rst_to_client, 1);
    mmtls_engine_flush(e);
    mmtls_engine_free(e);
    free(fr);
}

static void test_pass_flight(void **state)
{
    struct flight f;
    size_t len;
    uint8_t *fr = flight_frame(&len);
    struct mmtls_engine *e;

    (void)state;
    memset(&f, 0, sizeof(f));
    e = start(&f, true, 60000);
    /* The old behaviour: the flight goes on at once, 0.5-RTT data included, inspected later. */
    assert_int_equal(to_flight(e, fr, len), MMTLS_PKT_FORWARD);
    assert_int_equal(mmtls_engine_get_stats(e)->frames_split, 0);
    keys(e, keymsg(false, false, false));
    assert_int_equal(f.half_seen, 1);
    assert_int_equal(f.r.sent, 0);
    mmtls_engine_flush(e);
    mmtls_engine_free(e);
    free(fr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hold_flight),          cmocka_unit_test(test_hold_flight_block),
        cmocka_unit_test(test_hold_flight_all_keys), cmocka_unit_test(test_hold_flight_no_keys),
        cmocka_unit_test(test_pass_flight),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
