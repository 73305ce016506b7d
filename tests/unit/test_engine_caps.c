/* Exception policies on a real TLS 1.3 capture (engine_capture_fixture.h: 32 frames, client
 * 127.0.0.1:33444 -> server :4433; frame 3 ClientHello, 5 server flight, 7 client Finished,
 * 8..13 client application data, 15.. server application data).  A second flow is the same
 * capture with another client port.  Checked, inline fail closed / fail open / offline:
 *   flow table full of inspected sessions (the newcomer refused, never the session evicted),
 *   session cap, midstream pickup (grace period, remembered uninspected flows),
 *   reassembly memcap (the segment's packet dropped, or the flow bypassed), the window of the
 *   kept copy for the retransmission check,
 *   hold caps (the hold policy, not the missing-keys one), pending keys for unknown sessions,
 *   IP fragments (table full; conflicting and dead datagrams dropped whatever the policy),
 *   and the reports: at most one per resource per second, counts adding up. */
#include "engine_capture_fixture.h"

#include <sys/random.h>

#define CLIENT_PORT 33444

struct caps_run {
    struct mmtls_engine *e;
    struct result res;
    struct mmtls_engine_tx tx;
    int sent, built;
    int reports[MMTLS_EXC_N];
    uint64_t reported[MMTLS_EXC_N];
    char last_policy[16], last_action[16];
};

static void tx_send(void *ud, int port, const uint8_t *frame, size_t len, const uint8_t *meta,
                    size_t meta_len, bool built)
{
    struct caps_run *c = ud;

    (void)port, (void)frame, (void)len, (void)meta, (void)meta_len;
    c->sent++;
    if (built)
        c->built++;
}

static void on_exc(void *ud, const struct mmtls_engine_exception *x)
{
    struct caps_run *c = ud;

    c->reports[x->res]++;
    c->reported[x->res] += x->count;
    snprintf(c->last_policy, sizeof(c->last_policy), "%s", x->policy);
    snprintf(c->last_action, sizeof(c->last_action), "%s", x->action);
}

static void caps_start(struct caps_run *c, struct mmtls_engine_opts *o)
{
    struct mmtls_app app = {
        .sz = sizeof(app), .name = "t", .events = MMTLS_EV_ALL, .on_event = on_event};

    memset(c, 0, sizeof(*c));
    app.arg = &c->res;
    o->on_exception = on_exc;
    o->report_ud = c;
    assert_int_equal(mmtls_engine_new(&c->e, o), 0);
    assert_int_equal(mmtls_engine_app_register(c->e, &app, NULL), 0);
    c->tx = (struct mmtls_engine_tx){.ud = c, .send = tx_send};
    mmtls_engine_set_tx(c->e, &c->tx);
}

static struct mmtls_engine_stats caps_end(struct caps_run *c)
{
    struct mmtls_engine_stats st;

    mmtls_engine_flush(c->e);
    st = *mmtls_engine_get_stats(c->e);
    mmtls_engine_free(c->e);
    return st;
}

/* Frame i with the client port replaced (0: unchanged), at time ts (0: its own); inline (the
 * client's frames on port 0) or offline.  Returns the verdict. */
static int feed(struct caps_run *c, size_t i, uint16_t cport, uint64_t ts, bool inl)
{
    uint8_t *f = malloc(pkts[i].len);
    const uint8_t *ip = pkts[i].data + 14; /* Ethernet | IPv4 (20 bytes) | TCP */
    bool from_client = (ip[20] << 8 | ip[21]) == CLIENT_PORT;
    int v;

    assert_non_null(f);
    memcpy(f, pkts[i].data, pkts[i].len);
    if (cport != 0)
        mmtls_put_be16(f + 14 + (from_client ? 20 : 22), cport);
    if (ts == 0)
        ts = pkts[i].ts;
    v = inl ? mmtls_engine_packet_inline(c->e, from_client ? 0 : 1, f, pkts[i].len, ts, NULL, 0)
            : mmtls_engine_packet(c->e, pkts[i].lt, f, pkts[i].len, ts);
    free(f);
    return v;
}

static void opts(struct mmtls_engine_opts *o)
{
    mmtls_engine_opts_default(o);
    o->key_wait_ms = 0; /* no holding unless a test wants it */
}

/* ------------------------------------------------------------------------------------------ */

/* Table of 1 holding the session (pinned once the client went on after the server's flight):
 * a new flow's SYN is refused — dropped (closed) or passed (open) — and the session carries on
 * to its end with every frame forwarded.  Offline the newcomer evicts it (analysis only). */
static void flow_full(int policy, bool inl)
{
    struct caps_run c;
    struct mmtls_engine_opts o;
    struct mmtls_engine_stats st;
    int v, fwd = 0;

    opts(&o);
    o.flow.max_flows = 1;
    o.exc_policy[MMTLS_EXC_FLOW] = (uint8_t)policy;
    caps_start(&c, &o);
    for (size_t i = 0; i < 10; i++)
        fwd += feed(&c, i, 0, 0, inl) == MMTLS_PKT_FORWARD;
    v = feed(&c, 0, 40000, 0, inl); /* a new flow's SYN */
    for (size_t i = 10; i < npkts; i++)
        fwd += feed(&c, i, 0, 0, inl) == MMTLS_PKT_FORWARD;
    st = caps_end(&c);
    if (!inl) {
        assert_int_equal(st.exc[MMTLS_EXC_FLOW][MMTLS_EXC_ACT_OFFLINE], 1);
        assert_int_equal(v, MMTLS_PKT_FORWARD);
        assert_int_equal(c.res.sessions, 1); /* evicted: ended early, no second session */
        return;
    }
    assert_int_equal(fwd, (int)npkts); /* the session never noticed */
    assert_int_equal(c.res.sessions, 1);
    assert_int_equal(st.exc[MMTLS_EXC_FLOW][policy == MMTLS_EXC_OPEN ? 1 : 0], 1);
    assert_int_equal(v, policy == MMTLS_EXC_OPEN ? MMTLS_PKT_FORWARD : MMTLS_PKT_DROP);
    assert_int_equal(c.reports[MMTLS_EXC_FLOW], 1);
    assert_string_equal(c.last_action, policy == MMTLS_EXC_OPEN ? "pass" : "drop");
}

static void test_flow_full_closed(void **state)
{
    (void)state;
    flow_full(MMTLS_EXC_CLOSED, true);
}

static void test_flow_full_open(void **state)
{
    (void)state;
    flow_full(MMTLS_EXC_OPEN, true);
}

static void test_flow_full_offline(void **state)
{
    (void)state;
    flow_full(MMTLS_EXC_CLOSED, false);
}

/* A half-open session (ClientHello, server flight, then silence) goes once idle for
 * evict_idle_ms: a newcomer 0.5 s later is refused, 1.5 s later it takes the place. */
static void test_flow_half_open_evicted(void **state)
{
    struct caps_run c;
    struct mmtls_engine_opts o;
    struct mmtls_engine_stats st;
    uint64_t t5 = pkts[5].ts;

    (void)state;
    opts(&o);
    o.flow.max_flows = 1;
    caps_start(&c, &o);
    for (size_t i = 0; i < 7; i++) /* up to the server flight and the client's ACK */
        assert_int_equal(feed(&c, i, 0, 0, true), MMTLS_PKT_FORWARD);
    assert_int_equal(feed(&c, 0, 40000, t5 + 500000, true), MMTLS_PKT_DROP);
    assert_int_equal(feed(&c, 0, 40000, t5 + 1500000, true), MMTLS_PKT_FORWARD);
    st = caps_end(&c);
    assert_int_equal(st.exc[MMTLS_EXC_FLOW][MMTLS_EXC_ACT_CLOSED], 1);
    assert_int_equal(c.res.sessions, 1); /* the half-open one, ended by the eviction */
}

/* --max-sessions 1: flows A and B interleaved frame by frame; B's ClientHello meets the cap. */
static void session_cap(int policy)
{
    struct caps_run c;
    struct mmtls_engine_opts o;
    struct mmtls_engine_stats st;
    int afwd = 0, bfwd = 0, bdrop = 0;

    opts(&o);
    o.max_sessions = 1;
    o.exc_policy[MMTLS_EXC_SESSION] = (uint8_t)policy;
    caps_start(&c, &o);
    for (size_t i = 0; i < npkts; i++) {
        int v;
        afwd += feed(&c, i, 0, 0, true) == MMTLS_PKT_FORWARD;
        v = feed(&c, i, 40000, 0, true);
        bfwd += v == MMTLS_PKT_FORWARD;
        bdrop += v == MMTLS_PKT_DROP;
    }
    st = caps_end(&c);
    assert_int_equal(afwd, (int)npkts);
    assert_int_equal(c.res.sessions, 1); /* B was never inspected */
    assert_int_equal(st.sessions_peak, 1);
    assert_int_equal(st.sessions_active, 0);
    if (policy == MMTLS_EXC_OPEN) {
        assert_int_equal(bfwd, (int)npkts);
        assert_int_equal(st.exc[MMTLS_EXC_SESSION][MMTLS_EXC_ACT_OPEN], 1);
    } else {
        assert_int_equal(bfwd, 3); /* SYN, SYN-ACK, ACK; from the ClientHello on: dropped */
        assert_int_equal(bdrop, (int)npkts - 3);
        assert_int_equal(st.exc[MMTLS_EXC_SESSION][MMTLS_EXC_ACT_CLOSED], 1);
    }
}

static void test_session_cap_closed(void **state)
{
    (void)state;
    session_cap(MMTLS_EXC_CLOSED);
}

static void test_session_cap_open(void **state)
{
    (void)state;
    session_cap(MMTLS_EXC_OPEN);
}

/* The session picked up at its application data (frame 8: no SYN seen). */
static void midstream(int policy, uint32_t grace_ms, int want_fwd, uint64_t want_exc)
{
    struct caps_run c;
    struct mmtls_engine_opts o;
    struct mmtls_engine_stats st;
    int fwd = 0;

    opts(&o);
    o.midstream_grace_ms = grace_ms;
    o.exc_policy[MMTLS_EXC_MIDSTREAM] = (uint8_t)policy;
    caps_start(&c, &o);
    for (size_t i = 8; i < npkts; i++)
        fwd += feed(&c, i, 0, 0, true) == MMTLS_PKT_FORWARD;
    st = caps_end(&c);
    assert_int_equal(fwd, want_fwd);
    assert_int_equal(st.exc[MMTLS_EXC_MIDSTREAM][policy == MMTLS_EXC_OPEN ? 1 : 0], want_exc);
    assert_int_equal(st.midstream_passed, grace_ms > 0 ? 1 : 0);
}

static void test_midstream_closed(void **state)
{
    (void)state;
    midstream(MMTLS_EXC_CLOSED, 0, 0, 1);
}

static void test_midstream_open(void **state)
{
    (void)state;
    midstream(MMTLS_EXC_OPEN, 0, (int)npkts - 8, 1);
}

static void test_midstream_grace(void **state)
{
    (void)state;
    midstream(MMTLS_EXC_CLOSED, 60000, (int)npkts - 8, 0);
}

/* A flow evicted while nothing of it was inspected (handshake done, no data yet) comes back
 * without its SYN: remembered, it passes (and its ClientHello is still inspected). */
static void test_midstream_remembered(void **state)
{
    struct caps_run c;
    struct mmtls_engine_opts o;
    struct mmtls_engine_stats st;
    int fwd = 0;

    (void)state;
    opts(&o);
    o.flow.max_flows = 1;
    o.midstream_grace_ms = 0;
    caps_start(&c, &o);
    for (size_t i = 0; i < 3; i++)
        fwd += feed(&c, i, 0, 0, true) == MMTLS_PKT_FORWARD;
    fwd += feed(&c, 0, 40000, 0, true) == MMTLS_PKT_FORWARD; /* evicts A (bare) */
    for (size_t i = 3; i < npkts; i++)
        fwd += feed(&c, i, 0, 0, true) == MMTLS_PKT_FORWARD; /* evicts B (bare) */
    st = caps_end(&c);
    assert_int_equal(fwd, (int)npkts + 1);
    assert_int_equal(st.midstream_remembered, 1);
    assert_int_equal(st.exc[MMTLS_EXC_MIDSTREAM][MMTLS_EXC_ACT_CLOSED], 0);
    assert_int_equal(c.res.sessions, 1); /* A inspected from its ClientHello */
}

/* Reassembly memcap 4 KB: frame 10 (8206 bytes) before frame 8 cannot be buffered.  No
 * retransmission check here (test_keep_window): its kept copy would share the 4 KB. */
static void reasm_cap(int policy)
{
    struct caps_run c;
    struct mmtls_engine_opts o;
    struct mmtls_engine_stats st;
    int v10, fwd = 0;

    opts(&o);
    o.reasm_memcap = 4096;
    o.reasm.max_kept_bytes = 0;
    o.exc_policy[MMTLS_EXC_REASM] = (uint8_t)policy;
    caps_start(&c, &o);
    for (size_t i = 0; i < 8; i++)
        fwd += feed(&c, i, 0, 0, true) == MMTLS_PKT_FORWARD;
    v10 = feed(&c, 10, 0, 0, true);    /* ahead of a hole */
    for (size_t i = 8; i < npkts; i++) /* 8, then 10 again (the sender retransmits it) */
        fwd += feed(&c, i, 0, 0, true) == MMTLS_PKT_FORWARD;
    st = caps_end(&c);
    assert_int_equal(fwd, (int)npkts);
    assert_true(st.reasm_memcap_drops >= 1);
    assert_int_equal(c.res.sessions, 1);
    if (policy == MMTLS_EXC_OPEN) {
        assert_int_equal(v10, MMTLS_PKT_FORWARD);
        assert_int_equal(st.exc[MMTLS_EXC_REASM][MMTLS_EXC_ACT_OPEN], 1);
        assert_int_equal(st.sessions_active, 0);
        assert_int_equal(c.res.app_records, 0); /* bypassed before any application data */
    } else {
        assert_int_equal(v10, MMTLS_PKT_DROP); /* not inspected: not forwarded */
        assert_int_equal(st.exc[MMTLS_EXC_REASM][MMTLS_EXC_ACT_CLOSED], 1);
        assert_true(c.res.undecrypted > 0); /* no keys here, but every record was seen */
    }
}

static void test_reasm_cap_closed(void **state)
{
    (void)state;
    reasm_cap(MMTLS_EXC_CLOSED);
}

static void test_reasm_cap_open(void **state)
{
    (void)state;
    reasm_cap(MMTLS_EXC_OPEN);
}

/* The kept copy for the retransmission check, 20,000 bytes: the server acknowledged up to frame
 * 9, frames 10-13 carry 8206, 8206, 8206 and 7773 bytes.  Closed (inline): 12 and 13 would
 * push unacknowledged bytes out of the copy and are dropped (a window).  Open, and offline: they
 * pass, and the oldest kept bytes are freed as before. */
static void keep_window(int policy, bool inl)
{
    struct caps_run c;
    struct mmtls_engine_opts o;
    struct mmtls_engine_stats st;
    int v[14], fwd = 0;

    opts(&o);
    o.reasm.max_kept_bytes = 20000;
    o.exc_policy[MMTLS_EXC_REASM] = (uint8_t)policy;
    caps_start(&c, &o);
    for (size_t i = 0; i < 14; i++)
        fwd += (v[i] = feed(&c, i, 0, 0, inl)) == MMTLS_PKT_FORWARD;
    st = caps_end(&c);
    assert_int_equal(v[10], MMTLS_PKT_FORWARD);
    assert_int_equal(v[11], MMTLS_PKT_FORWARD);
    if (inl && policy == MMTLS_EXC_CLOSED) {
        assert_int_equal(fwd, 12);
        assert_int_equal(v[12], MMTLS_PKT_DROP);
        assert_int_equal(v[13], MMTLS_PKT_DROP);
        assert_int_equal(st.reasm_keep_drops, 2);
        assert_int_equal(st.exc[MMTLS_EXC_REASM][MMTLS_EXC_ACT_CLOSED], 2);
        assert_int_equal(c.reports[MMTLS_EXC_REASM], 1); /* one report a second */
    } else {
        assert_int_equal(fwd, 14);
        assert_int_equal(st.reasm_keep_drops, 0);
        assert_int_equal(st.exc[MMTLS_EXC_REASM][0] + st.exc[MMTLS_EXC_REASM][1] +
                             st.exc[MMTLS_EXC_REASM][2],
                         0);
    }
    assert_int_equal(st.reasm_unchecked_bytes, 0); /* nothing was retransmitted */
    assert_int_equal(c.res.sessions, 1);
}

static void test_keep_window_closed(void **state)
{
    (void)state;
    keep_window(MMTLS_EXC_CLOSED, true);
}

static void test_keep_window_open(void **state)
{
    (void)state;
    keep_window(MMTLS_EXC_OPEN, true);
    keep_window(MMTLS_EXC_CLOSED, false); /* offline: never dropped */
}

/* Hold caps: the hold policy decides, whatever --on-missing-keys says. */
static void hold_cap(int policy, int missing)
{
    struct caps_run c;
    struct mmtls_engine_opts o;
    struct mmtls_engine_stats st;

    opts(&o);
    o.key_wait_ms = 60000;
    o.key_hold_total = 100;
    o.on_missing_keys = missing;
    o.exc_policy[MMTLS_EXC_HOLD] = (uint8_t)policy;
    caps_start(&c, &o);
    for (size_t i = 0; i < npkts; i++)
        (void)feed(&c, i, 0, 0, true);
    st = caps_end(&c);
    assert_true(st.holds_over_cap >= 1);
    assert_true(st.exc[MMTLS_EXC_HOLD][policy == MMTLS_EXC_OPEN ? 1 : 0] >= 1);
    if (policy == MMTLS_EXC_OPEN) {
        assert_int_equal(st.blocked_missing_keys, 0);
        assert_int_equal(c.built, 0);
    } else {
        assert_int_equal(st.blocked_missing_keys, 1);
        assert_int_equal(c.built, 2); /* RST both ways */
    }
}

static void test_hold_cap_open_despite_block(void **state)
{
    (void)state;
    hold_cap(MMTLS_EXC_OPEN, MMTLS_MISSING_BLOCK);
}

static void test_hold_cap_closed_despite_pass(void **state)
{
    (void)state;
    hold_cap(MMTLS_EXC_CLOSED, MMTLS_MISSING_PASS);
}

/* 10 key messages for unknown sessions through a pending table of 4: 6 dropped (oldest
 * first), counted; the session's own keys, sent last, still decrypt it. */
static void test_pending_keys_flood(void **state)
{
    struct caps_run c;
    struct mmtls_engine_opts o;
    struct mmtls_engine_stats st;

    (void)state;
    opts(&o);
    o.key_pending_max = 4;
    o.key_wait_ms = 60000;
    caps_start(&c, &o);
    for (int k = 0; k < 10; k++) {
        struct mmtls_engine_keymsg *m = keymsg(false, false, false);
        assert_int_equal(getrandom(m->client_random, 32, 0), 32);
        assert_true(mmtls_ring_push(mmtls_engine_key_ring(c.e), m));
    }
    for (size_t i = 0; i < npkts; i++) {
        if (i == 8)
            assert_true(mmtls_ring_push(mmtls_engine_key_ring(c.e), keymsg(false, false, false)));
        (void)feed(&c, i, 0, 0, true);
    }
    mmtls_engine_poll_keys(c.e);
    st = caps_end(&c);
    assert_int_equal(st.keys_pending_dropped, 6);
    assert_int_equal(st.exc[MMTLS_EXC_KEYS][MMTLS_EXC_ACT_CLOSED], 6);
    assert_int_equal(st.keys_pending_peak, 4);
    assert_int_equal(c.res.status, MMTLS_KEYS_DECRYPTED);
}

/* 1000 refused SYNs in 0.1 s: one report at once (count 1), the other 999 in one report after
 * a second (from the tick), never one per packet; the counts add up. */
static void test_reports_rate_limited(void **state)
{
    struct caps_run c;
    struct mmtls_engine_opts o;
    struct mmtls_engine_stats st;
    uint64_t t = pkts[9].ts;

    (void)state;
    opts(&o);
    o.flow.max_flows = 1;
    caps_start(&c, &o);
    for (size_t i = 0; i < 10; i++)
        (void)feed(&c, i, 0, 0, true);
    for (uint16_t k = 0; k < 1000; k++)
        assert_int_equal(feed(&c, 0, (uint16_t)(40000 + k), t + 100u * k, true), MMTLS_PKT_DROP);
    assert_int_equal(c.reports[MMTLS_EXC_FLOW], 1);
    assert_int_equal(c.reported[MMTLS_EXC_FLOW], 1);
    mmtls_engine_tick(c.e, t + 500000); /* not a second yet */
    assert_int_equal(c.reports[MMTLS_EXC_FLOW], 1);
    mmtls_engine_tick(c.e, t + 1100000);
    assert_int_equal(c.reports[MMTLS_EXC_FLOW], 2);
    assert_int_equal(c.reported[MMTLS_EXC_FLOW], 1000);
    assert_string_equal(c.last_policy, "closed");
    mmtls_engine_tick(c.e, t + 5000000); /* nothing new: no report */
    assert_int_equal(c.reports[MMTLS_EXC_FLOW], 2);
    st = caps_end(&c);
    assert_int_equal(st.exc[MMTLS_EXC_FLOW][MMTLS_EXC_ACT_CLOSED], 1000);
    for (int r = 0; r < MMTLS_EXC_N; r++) {
        if (r != MMTLS_EXC_FLOW)
            assert_int_equal(c.reports[r], 0);
    }
}

/* An Ethernet + IPv4 fragment of datagram `id` (client 127.0.0.1 -> :4433's server address,
 * protocol TCP) carrying 16 bytes of `fill` at byte offset off; fed inline from the client side
 * or offline.  Returns the verdict. */
static int feed_frag(struct caps_run *c, uint16_t id, uint16_t off, bool mf, uint8_t fill,
                     uint64_t ts, bool inl)
{
    uint8_t f[14 + 20 + 16];
    uint32_t sum = 0;

    memcpy(f, pkts[0].data, 14 + 20); /* the capture's first frame: its link and IP header */
    mmtls_put_be16(f + 14 + 2, 20 + 16);
    mmtls_put_be16(f + 14 + 4, id);
    mmtls_put_be16(f + 14 + 6, (uint16_t)((mf ? 0x2000 : 0) | off / 8));
    f[14 + 10] = f[14 + 11] = 0;
    for (size_t i = 0; i < 20; i += 2)
        sum += mmtls_be16(f + 14 + i);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    mmtls_put_be16(f + 14 + 10, (uint16_t)~sum);
    memset(f + 14 + 20, fill, 16);
    return inl ? mmtls_engine_packet_inline(c->e, 0, f, sizeof(f), ts, NULL, 0)
               : mmtls_engine_packet(c->e, MMTLS_LINK_ETHERNET, f, sizeof(f), ts);
}

/* IP fragments, a table of 2 datagrams: a fragment kept is forwarded; a third datagram is
 * refused by the cap — dropped (closed: the two held ones stay) or forwarded while the oldest
 * is evicted (open); a conflicting overlap and every later fragment of that datagram (dead)
 * are dropped whatever the policy.  Offline nothing is dropped and the oldest is evicted. */
static void defrag_caps(int policy, bool inl)
{
    struct caps_run c;
    struct mmtls_engine_opts o;
    struct mmtls_engine_stats st;
    const struct mmtls_defrag_stats *ds;
    uint64_t t = pkts[0].ts;
    int want_cap = !inl                       ? MMTLS_PKT_FORWARD
                   : policy == MMTLS_EXC_OPEN ? MMTLS_PKT_FORWARD
                                              : MMTLS_PKT_DROP;
    int want_bad = inl ? MMTLS_PKT_DROP : MMTLS_PKT_FORWARD;

    opts(&o);
    o.defrag.max_datagrams = 2;
    o.exc_policy[MMTLS_EXC_DEFRAG] = (uint8_t)policy;
    caps_start(&c, &o);
    assert_int_equal(feed_frag(&c, 1, 0, true, 'a', t, inl), MMTLS_PKT_FORWARD);
    assert_int_equal(feed_frag(&c, 2, 0, true, 'a', t + 1, inl), MMTLS_PKT_FORWARD);
    assert_int_equal(feed_frag(&c, 3, 0, true, 'a', t + 2, inl), want_cap);
    ds = mmtls_engine_defrag_stats(c.e);
    assert_int_equal(ds->table_full, inl && policy == MMTLS_EXC_CLOSED ? 1 : 0);
    assert_int_equal(ds->evicted, inl && policy == MMTLS_EXC_CLOSED ? 0 : 1);
    /* datagram 2 is held in every mode: a conflicting copy of its bytes kills it */
    assert_int_equal(feed_frag(&c, 2, 0, true, 'b', t + 3, inl), want_bad);
    assert_int_equal(feed_frag(&c, 2, 16, false, 'a', t + 4, inl), want_bad);
    assert_int_equal(ds->overlaps, 1);
    assert_int_equal(ds->dead_drops, 1);
    st = caps_end(&c);
    assert_int_equal(st.exc[MMTLS_EXC_DEFRAG][!inl                       ? MMTLS_EXC_ACT_OFFLINE
                                              : policy == MMTLS_EXC_OPEN ? MMTLS_EXC_ACT_OPEN
                                                                         : MMTLS_EXC_ACT_CLOSED],
                     inl && policy == MMTLS_EXC_CLOSED ? 1 : 0);
    assert_int_equal(st.fragments_dropped, inl ? (policy == MMTLS_EXC_CLOSED ? 3 : 2) : 0);
    if (inl && policy == MMTLS_EXC_CLOSED) {
        assert_int_equal(c.reports[MMTLS_EXC_DEFRAG], 1);
        assert_string_equal(c.last_action, "drop");
    }
}

static void test_defrag_closed(void **state)
{
    (void)state;
    defrag_caps(MMTLS_EXC_CLOSED, true);
}

static void test_defrag_open(void **state)
{
    (void)state;
    defrag_caps(MMTLS_EXC_OPEN, true);
}

static void test_defrag_offline(void **state)
{
    (void)state;
    defrag_caps(MMTLS_EXC_CLOSED, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defrag_closed),
        cmocka_unit_test(test_defrag_open),
        cmocka_unit_test(test_defrag_offline),
        cmocka_unit_test(test_flow_full_closed),
        cmocka_unit_test(test_flow_full_open),
        cmocka_unit_test(test_flow_full_offline),
        cmocka_unit_test(test_flow_half_open_evicted),
        cmocka_unit_test(test_session_cap_closed),
        cmocka_unit_test(test_session_cap_open),
        cmocka_unit_test(test_midstream_closed),
        cmocka_unit_test(test_midstream_open),
        cmocka_unit_test(test_midstream_grace),
        cmocka_unit_test(test_midstream_remembered),
        cmocka_unit_test(test_reasm_cap_closed),
        cmocka_unit_test(test_reasm_cap_open),
        cmocka_unit_test(test_keep_window_closed),
        cmocka_unit_test(test_keep_window_open),
        cmocka_unit_test(test_hold_cap_open_despite_block),
        cmocka_unit_test(test_hold_cap_closed_despite_pass),
        cmocka_unit_test(test_pending_keys_flood),
        cmocka_unit_test(test_reports_rate_limited),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
