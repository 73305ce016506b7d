/* Issue 7 (TLS- and key-level evasions), the engine fixes, on a real TLS 1.3 capture replayed
 * inline (client frames on port 0, server frames on port 1):
 *  - a TCP retransmission of a frame held for keys is dropped, never forwarded ahead of it;
 *  - a decrypted TLS 1.3 record reports its content length as max_plain_len (padding is not
 *    counted: --inspect-depth counts plaintext);
 *  - inline, a record of an unknown content type blocks the session (fail closed);
 *  - inline, records that do not verify with the keys the client shared block the session;
 *  - malformed TCP options are read as Linux reads them (inspected), malformed IP headers are
 *    dropped inline;
 *  - urgent data is cleared after IPv4 options and IPv6 extension headers;
 *  - a packet of one direction entering on the other direction's port is dropped.
 * The adversarial end-to-end tests are tests/adversarial/test_tls_evasion.py and
 * test_keys_evasion.py. */
#include "engine_capture_fixture.h"

struct ev_result {
    struct result r;
    int decrypted, len_mismatch;
};

static int count_plain(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct ev_result *er = arg;
    const uint8_t *p;
    size_t n;

    if (ev->ev == MMTLS_EV_NEW_RECORD && ev->rec->encrypted && ev->rec->decryptable &&
        mmtls_record_plaintext(s, &p, &n) == 0) {
        er->decrypted++;
        if (ev->rec->max_plain_len != n)
            er->len_mismatch++;
    }
    return on_event(s, ev, &er->r);
}

static void tx_none(void *ud, int port, const uint8_t *frame, size_t len, const uint8_t *meta,
                    size_t meta_len, bool built)
{
    struct ev_result *er = ud;

    (void)port;
    (void)frame;
    (void)len;
    (void)meta;
    (void)meta_len;
    if (built)
        er->r.built++;
}

static struct mmtls_engine *new_inline(struct ev_result *er, uint32_t wait_ms)
{
    struct mmtls_engine_opts o;
    struct mmtls_engine *e;
    struct mmtls_app app = {
        .sz = sizeof(app), .name = "t", .events = MMTLS_EV_ALL, .on_event = count_plain, .arg = er};
    struct mmtls_engine_tx tx = {.ud = er, .send = tx_none};

    memset(er, 0, sizeof(*er));
    mmtls_engine_opts_default(&o);
    o.key_wait_ms = wait_ms;
    o.on_missing_keys = MMTLS_MISSING_BLOCK;
    assert_int_equal(mmtls_engine_new(&e, &o), 0);
    assert_int_equal(mmtls_engine_app_register(e, &app, NULL), 0);
    mmtls_engine_set_tx(e, &tx);
    return e;
}

static int port_of(const struct pkt *p)
{
    const uint8_t *ip = p->data + 14;
    uint16_t sport = (uint16_t)(ip[20] << 8 | ip[21]);

    return sport == 4433 ? 1 : 0;
}

/* Offset of the TCP payload in an Ethernet/IPv4/TCP frame, or 0 if there is none. */
static size_t payload_off(const struct pkt *p)
{
    size_t ihl = (size_t)(p->data[14] & 0x0f) * 4;
    size_t thl = (size_t)(p->data[14 + ihl + 12] >> 4) * 4;
    size_t off = 14 + ihl + thl;

    return off < p->len ? off : 0;
}

static int feed(struct mmtls_engine *e, const struct pkt *p)
{
    return mmtls_engine_packet_inline(e, port_of(p), p->data, p->len, p->ts, NULL, 0);
}

static void test_retransmitted_held_frame_dropped(void **state)
{
    struct ev_result er;
    struct mmtls_engine *e = new_inline(&er, 60000);
    int held = 0, repeat_fwd = 0;

    (void)state;
    for (size_t i = 0; i < npkts; i++) {
        if (feed(e, &pkts[i]) != MMTLS_PKT_HOLD)
            continue;
        held++;
        /* the sender's retransmission of the same segment, before any key came */
        if (feed(e, &pkts[i]) == MMTLS_PKT_FORWARD)
            repeat_fwd++;
    }
    mmtls_engine_flush(e);
    mmtls_engine_free(e);
    assert_true(held > 0);
    assert_int_equal(repeat_fwd, 0);
}

static void test_decrypted_len_is_content(void **state)
{
    struct ev_result er;
    struct mmtls_engine *e = new_inline(&er, 500);

    (void)state;
    assert_true(mmtls_ring_push(mmtls_engine_key_ring(e), keymsg(false, false, false)));
    for (size_t i = 0; i < npkts; i++)
        (void)feed(e, &pkts[i]);
    mmtls_engine_flush(e);
    mmtls_engine_free(e);
    assert_int_equal(er.r.status, MMTLS_KEYS_DECRYPTED);
    assert_true(er.decrypted > 0);
    assert_int_equal(er.len_mismatch, 0);
}

/* The capture with its last client record's content type replaced by `type`. */
static void run_with_client_type(struct ev_result *er, uint8_t type, bool tamper_keys,
                                 bool *blocked)
{
    struct mmtls_engine *e = new_inline(er, 500);
    size_t last = npkts;
    uint8_t saved = 0;
    size_t off = 0;

    for (size_t i = 0; i < npkts; i++) {
        size_t o = payload_off(&pkts[i]);
        if (port_of(&pkts[i]) == 0 && o != 0 && pkts[i].data[o] == MMTLS_CT_APPLICATION_DATA) {
            last = i;
            off = o;
        }
    }
    assert_true(last < npkts);
    if (type != 0) {
        saved = pkts[last].data[off];
        pkts[last].data[off] = type;
    }
    assert_true(mmtls_ring_push(mmtls_engine_key_ring(e), keymsg(tamper_keys, false, false)));
    for (size_t i = 0; i < npkts; i++)
        (void)feed(e, &pkts[i]);
    *blocked = mmtls_engine_get_stats(e)->blocked_sessions > 0;
    mmtls_engine_flush(e);
    mmtls_engine_free(e);
    if (type != 0)
        pkts[last].data[off] = saved;
}

static void test_unknown_type_blocks(void **state)
{
    struct ev_result er;
    bool blocked;

    (void)state;
    run_with_client_type(&er, 0, false, &blocked);
    assert_false(blocked); /* the capture as it is */
    assert_int_equal(er.r.built, 0);
    run_with_client_type(&er, 0x50, false, &blocked);
    assert_true(blocked);
    assert_true(er.r.built >= 2); /* an RST to each end */
}

static void test_keys_that_do_not_verify_block(void **state)
{
    struct ev_result er;
    bool blocked;

    (void)state;
    run_with_client_type(&er, 0, true, &blocked); /* a wrong client application secret */
    assert_true(blocked);
    assert_true(er.r.built >= 2);
}

/* Malformed headers, inline.  A TCP option of length 0 ends Linux's option walk and the
 * segment is accepted, so every client segment carrying one is still inspected: the session is
 * decrypted as usual and the options are counted.  An IPv4 header length below 20 is dropped
 * (a receiver drops it; one that read it otherwise would take bytes never inspected), and
 * counted; offline it is only counted. */
static void test_malformed_headers(void **state)
{
    struct ev_result er;
    struct mmtls_engine *e = new_inline(&er, 500);
    const struct mmtls_engine_stats *st;
    uint8_t *f = malloc(65536 + 64);
    int patched = 0;

    (void)state;
    assert_non_null(f);
    assert_true(mmtls_ring_push(mmtls_engine_key_ring(e), keymsg(false, false, false)));
    for (size_t i = 0; i < npkts; i++) {
        size_t ihl = (size_t)(pkts[i].data[14] & 0x0f) * 4;
        size_t thl = (size_t)(pkts[i].data[14 + ihl + 12] >> 4) * 4;

        assert_true(pkts[i].len <= 65536 + 64);
        memcpy(f, pkts[i].data, pkts[i].len);
        if (port_of(&pkts[i]) == 0 && thl > 20 && f[14 + ihl + 20] > 1) {
            f[14 + ihl + 21] = 0; /* the first option that is not a NOP or EOL: length 0 */
            patched++;
        } else if (port_of(&pkts[i]) == 0 && thl > 20 && f[14 + ihl + 20] == 1 &&
                   f[14 + ihl + 22] > 1) {
            f[14 + ihl + 23] = 0; /* after one NOP */
            patched++;
        }
        (void)mmtls_engine_packet_inline(e, port_of(&pkts[i]), f, pkts[i].len, pkts[i].ts, NULL, 0);
    }
    st = mmtls_engine_get_stats(e);
    assert_true(patched > 3);
    assert_int_equal(st->decode_events[MMTLS_DEC_TCP_BAD_OPTIONS], patched);
    assert_int_equal(st->malformed_dropped, 0);
    /* a header length of 16 */
    memcpy(f, pkts[npkts - 1].data, pkts[npkts - 1].len);
    f[14] = 0x44;
    assert_int_equal(mmtls_engine_packet_inline(e, port_of(&pkts[npkts - 1]), f,
                                                pkts[npkts - 1].len, pkts[npkts - 1].ts, NULL, 0),
                     MMTLS_PKT_DROP);
    assert_int_equal(st->malformed_dropped, 1);
    assert_int_equal(st->decode_events[MMTLS_DEC_IPV4_BAD_HLEN], 1);
    mmtls_engine_flush(e);
    mmtls_engine_free(e);
    assert_int_equal(er.r.status, MMTLS_KEYS_DECRYPTED);
    assert_true(er.decrypted > 0);

    /* offline: counted, nothing to drop */
    e = new_inline(&er, 500);
    assert_int_equal(
        mmtls_engine_packet(e, pkts[npkts - 1].lt, f, pkts[npkts - 1].len, pkts[npkts - 1].ts),
        MMTLS_PKT_FORWARD);
    assert_int_equal(mmtls_engine_get_stats(e)->malformed_dropped, 0);
    mmtls_engine_free(e);
    free(f);
}

/* Every server frame is first sent again on the client's port (forged as the server from the
 * client's side, the SYN-ACK before the real one): each copy is dropped and counted, and the
 * session, fed its real frames, decrypts as before. */
static void test_wrong_side_dropped(void **state)
{
    struct ev_result er;
    struct mmtls_engine *e = new_inline(&er, 500);
    const struct mmtls_engine_stats *st = mmtls_engine_get_stats(e);
    uint64_t forged = 0;

    (void)state;
    assert_true(mmtls_ring_push(mmtls_engine_key_ring(e), keymsg(false, false, false)));
    for (size_t i = 0; i < npkts; i++) {
        if (port_of(&pkts[i]) == 1) {
            assert_int_equal(
                mmtls_engine_packet_inline(e, 0, pkts[i].data, pkts[i].len, pkts[i].ts, NULL, 0),
                MMTLS_PKT_DROP);
            forged++;
        }
        (void)feed(e, &pkts[i]);
    }
    assert_true(forged > 3);
    assert_int_equal(st->wrong_side_dropped, forged);
    mmtls_engine_flush(e);
    mmtls_engine_free(e);
    assert_int_equal(er.r.status, MMTLS_KEYS_DECRYPTED);
    assert_true(er.decrypted > 0);
}

/* Data of a flow opened by a SYN, before the server's SYN-ACK: dropped (no stack sends it; a
 * receiver still in an older connection on the 4-tuple would read it).  Once the SYN-ACK has
 * passed, the same frames go through and the session decrypts. */
static void test_data_before_synack_dropped(void **state)
{
    struct ev_result er;
    struct mmtls_engine *e = new_inline(&er, 500);
    const struct mmtls_engine_stats *st = mmtls_engine_get_stats(e);

    (void)state;
    assert_true(mmtls_ring_push(mmtls_engine_key_ring(e), keymsg(false, false, false)));
    assert_int_equal(feed(e, &pkts[0]), MMTLS_PKT_FORWARD); /* SYN */
    assert_int_equal(feed(e, &pkts[2]), MMTLS_PKT_FORWARD); /* the client's ACK: nothing in it */
    assert_int_equal(feed(e, &pkts[3]), MMTLS_PKT_DROP);    /* its ClientHello */
    assert_int_equal(st->data_before_synack_dropped, 1);    /* the pure ACK carries nothing */
    for (size_t i = 1; i < npkts; i++)
        (void)feed(e, &pkts[i]);
    assert_int_equal(st->data_before_synack_dropped, 1);
    mmtls_engine_flush(e);
    mmtls_engine_free(e);
    assert_int_equal(er.r.status, MMTLS_KEYS_DECRYPTED);
    assert_true(er.decrypted > 0);
}

/* Urgent data is cleared in the forwarded frame wherever its TCP header is: after IPv4 options
 * and after IPv6 extension headers (before, only IPv6 without extension headers was cleared).
 * A hand-made frame of a flow picked up midstream (within the grace period). */
static void urgent_cleared(bool v6)
{
    static const uint8_t eth[14] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00};
    static const uint8_t v4[24] = {0x46, 0, 0, 49, 0,  1, 0x40, 0, 64, 6, 0, 0,
                                   10,   0, 0, 1,  10, 0, 0,    2, 1,  1, 1, 0};
    static const uint8_t
        v6h[48] = {0x60, 0, 0,    0,    0,    33,   60, 64, /* plen, nh DestOpts */
                   0x20, 1, 0x0d, 0xb8, 0,    0,    0,  0,  0, 0, 0, 0, 0, 0,
                   0,    1, 0x20, 1,    0x0d, 0xb8, 0,  0,  0, 0, 0, 0, 0, 0,
                   0,    0, 0,    2,    6,    0,    1,  4,  0, 0, 0, 0}; /* DestOpts nh TCP, PadN */
    static const uint8_t tcp[20] = {0x9c, 0x40, 0x01, 0xbb, 0,    0, 0x10, 0, 0, 0, 0x20,
                                    0,    0x50, 0x38, 0xff, 0xff, 0, 0,    0, 3}; /* PA|URG, up 3 */
    struct ev_result er;
    struct mmtls_engine *e = new_inline(&er, 500);
    uint8_t f[128];
    size_t n = 0, th;

    memcpy(f, eth, sizeof(eth));
    n = sizeof(eth);
    if (v6) {
        f[12] = 0x86, f[13] = 0xdd;
        memcpy(f + n, v6h, sizeof(v6h));
        n += sizeof(v6h);
    } else {
        memcpy(f + n, v4, sizeof(v4)); /* a 4-byte option list (NOPs and EOL) */
        n += sizeof(v4);
    }
    th = n;
    memcpy(f + n, tcp, sizeof(tcp));
    n += sizeof(tcp);
    memcpy(f + n, "hello", 5);
    n += 5;
    assert_int_equal(mmtls_engine_packet_inline(e, 0, f, n, 1000000, NULL, 0), MMTLS_PKT_FORWARD);
    assert_int_equal(f[th + 13] & MMTLS_TCP_URG, 0);
    assert_int_equal(f[th + 18] | f[th + 19], 0);
    assert_int_equal(mmtls_engine_get_stats(e)->urg_cleared, 1);
    mmtls_engine_free(e);
}

static void test_urgent_cleared_v4_options(void **state)
{
    (void)state;
    urgent_cleared(false);
}

static void test_urgent_cleared_v6_ext(void **state)
{
    (void)state;
    urgent_cleared(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retransmitted_held_frame_dropped),
        cmocka_unit_test(test_decrypted_len_is_content),
        cmocka_unit_test(test_unknown_type_blocks),
        cmocka_unit_test(test_keys_that_do_not_verify_block),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_urgent_cleared_v4_options),
        cmocka_unit_test(test_urgent_cleared_v6_ext),
        cmocka_unit_test(test_wrong_side_dropped),
        cmocka_unit_test(test_data_before_synack_dropped),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
