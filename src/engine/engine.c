/* engine — packet path, flows, reassembly glue, app registry and the session API.
 * The TLS state machine lives in engine_tls.c. */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <sys/random.h>

void mmtls_engine_opts_default(struct mmtls_engine_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->sz = sizeof(*o);
    o->flow.max_flows = 65536;
    o->flow.idle_timeout_ms = 600 * 1000;
    o->flow.closed_timeout_ms = 10 * 1000;
    o->flow.evict_idle_ms = 1000;
    o->reasm.max_ooo_bytes = 1u << 20;
    o->reasm.max_kept_bytes = 8u << 20;
    o->reasm.max_segments = 2048;
    o->reasm_memcap = (size_t)1 << 30;
    o->defrag.max_datagrams = 4096;
    o->defrag.max_frags_per_datagram = 64;
    o->defrag.timeout_ms = 30 * 1000;
    o->defrag.memcap = 64u << 20;
    o->max_handshake_msg = 256u << 10;
    o->max_failed_records = 32;
    o->max_resync_trials = 8192;
    o->verify_all = true;
    o->key_wait_ms = 0;
    o->key_hold_max = 1u << 20;
    o->key_hold_total = (size_t)256 << 20;
    o->key_pending_max = 65536;
    o->key_pending_ms = 10 * 1000;
    o->midstream_grace_ms = 600 * 1000; /* the default idle timeout */
}

/* ------------------------------------------------------------------------------------------ */
/* Exception policies (docs/CONFIG.md, "Resources and exception policies")                     */

const char *mmtls_exc_res_name(int res)
{
    switch (res) {
    case MMTLS_EXC_FLOW: return "flow";
    case MMTLS_EXC_SESSION: return "session";
    case MMTLS_EXC_REASM: return "reasm";
    case MMTLS_EXC_HOLD: return "hold";
    case MMTLS_EXC_KEYS: return "keys";
    case MMTLS_EXC_MIDSTREAM: return "midstream";
    case MMTLS_EXC_DEFRAG: return "defrag";
    }
    return "unknown";
}

int eng_exc_act(const struct mmtls_engine *e, int res)
{
    if (!e->inline_mode)
        return MMTLS_EXC_ACT_OFFLINE;
    return e->o.exc_policy[res] == MMTLS_EXC_OPEN ? MMTLS_EXC_ACT_OPEN : MMTLS_EXC_ACT_CLOSED;
}

/* What a hit of res did, by action (closed, open, offline). */
static const char *exc_action_name(int res, int act)
{
    static const char *const names[MMTLS_EXC_N][3] = {
        [MMTLS_EXC_FLOW] = {"drop", "pass", "evict"},
        [MMTLS_EXC_SESSION] = {"block", "bypass", "skip"},
        [MMTLS_EXC_REASM] = {"drop", "bypass", "count"},
        [MMTLS_EXC_HOLD] = {"block", "pass", "release"},
        [MMTLS_EXC_KEYS] = {"drop_oldest", "drop_oldest", "drop_oldest"},
        [MMTLS_EXC_MIDSTREAM] = {"drop", "pass", "pass"},
        [MMTLS_EXC_DEFRAG] = {"drop", "pass", "count"},
    };
    return names[res][act];
}

static void exc_usage(const struct mmtls_engine *e, int res, uint64_t *used, uint64_t *cap)
{
    const struct mmtls_flow_stats *fs = e->flows != NULL ? mmtls_flow_table_stats(e->flows) : NULL;

    *used = *cap = 0;
    switch (res) {
    case MMTLS_EXC_FLOW:
        *used = fs != NULL ? fs->active : 0;
        *cap = e->o.flow.max_flows;
        break;
    case MMTLS_EXC_SESSION:
        *used = e->st.sessions_active;
        *cap = e->o.max_sessions != 0 ? e->o.max_sessions : e->o.flow.max_flows;
        break;
    case MMTLS_EXC_REASM:
        *used = e->reasm_mc.used;
        *cap = e->reasm_mc.limit;
        break;
    case MMTLS_EXC_HOLD:
        *used = e->held_total;
        *cap = e->o.key_hold_total;
        break;
    case MMTLS_EXC_KEYS:
        *used = e->npend;
        *cap = e->o.key_pending_max;
        break;
    case MMTLS_EXC_DEFRAG:
        *used = mmtls_defrag_stats(e->defrag)->datagrams;
        *cap = e->o.defrag.max_datagrams;
        break;
    }
}

static void exc_report(struct mmtls_engine *e, int res)
{
    struct eng_excr *r = &e->excr[res];
    struct mmtls_engine_exception x = {
        .res = res,
        .resource = mmtls_exc_res_name(res),
        .policy = r->act == MMTLS_EXC_ACT_OFFLINE ? "offline"
                  : r->act == MMTLS_EXC_ACT_OPEN  ? "open"
                                                  : "closed",
        .action = exc_action_name(res, r->act),
        .count = r->since,
        .total = e->st.exc[res][0] + e->st.exc[res][1] + e->st.exc[res][2],
        .interval_us = e->now_us - r->last_us,
        .ts_us = e->now_us,
    };

    exc_usage(e, res, &x.used, &x.cap);
    mmtls_log(MMTLS_LOG_WARN,
              "exception %s: cap hit %llu times in %.1f s (%llu in all), policy %s: %s; usage "
              "%llu of %llu",
              x.resource, (unsigned long long)x.count, (double)x.interval_us / 1e6,
              (unsigned long long)x.total, x.policy, x.action, (unsigned long long)x.used,
              (unsigned long long)x.cap);
    if (e->o.on_exception != NULL)
        e->o.on_exception(e->o.report_ud, &x);
    r->since = 0;
    r->last_us = e->now_us;
    r->reported_once = true;
}

void eng_exception(struct mmtls_engine *e, int res, int act)
{
    struct eng_excr *r;

    if (res < 0 || res >= MMTLS_EXC_N || act < 0 || act > MMTLS_EXC_ACT_OFFLINE)
        return;
    r = &e->excr[res];
    if (!r->reported_once)
        r->last_us = e->now_us; /* the first report covers no interval */
    e->st.exc[res][act]++;
    r->since++;
    r->act = act;
    /* Never per packet: the first hit at once, then at most one report a second. */
    if (!r->reported_once || e->now_us >= r->last_us + 1000000)
        exc_report(e, res);
}

/* From the tick: hits of the last second not reported yet (a flood that stopped). */
static void exc_flush(struct mmtls_engine *e)
{
    for (int res = 0; res < MMTLS_EXC_N; res++) {
        if (e->excr[res].since > 0 && e->now_us >= e->excr[res].last_us + 1000000)
            exc_report(e, res);
    }
}

/* Flows the engine itself evicted or expired while they were not inspected (not TLS, bypassed,
 * nothing seen yet): their later packets are a midstream pickup that must pass as before, not
 * the resumption of an inspected session (which fails closed).  A direct-mapped table of keyed
 * hashes of flow keys: bounded; a lost entry only means fail closed. */
static uint64_t memo_hash(const struct mmtls_engine *e, const struct mmtls_flow_key *k)
{
    return mmtls_hash64(k, sizeof(*k), e->memo_seed) | 1;
}

static void memo_put(struct mmtls_engine *e, const struct mmtls_flow_key *k)
{
    uint64_t h = memo_hash(e, k);

    if (e->memo != NULL)
        e->memo[h & (ENG_MEMO_SIZE - 1)] = h;
}

static bool memo_take(struct mmtls_engine *e, const struct mmtls_flow_key *k)
{
    uint64_t h = memo_hash(e, k);

    if (e->memo == NULL || e->memo[h & (ENG_MEMO_SIZE - 1)] != h)
        return false;
    e->memo[h & (ENG_MEMO_SIZE - 1)] = 0;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Apps and events                                                                             */

int mmtls_engine_app_register(struct mmtls_engine *e, const struct mmtls_app *app, int *app_id)
{
    if (e == NULL || app == NULL || app->on_event == NULL || app->sz < sizeof(struct mmtls_app))
        return MMTLS_E_INVAL;
    if (e->napps >= ENG_MAX_APPS)
        return MMTLS_E_LIMIT;
    memcpy(&e->apps[e->napps].app, app, sizeof(*app));
    if (app_id != NULL)
        *app_id = e->napps;
    e->napps++;
    return 0;
}

int eng_dispatch(struct eng_session *s, enum mmtls_event ev, const struct mmtls_event_info *info)
{
    struct mmtls_engine *e = s->eng;
    int verdict = MMTLS_VERDICT_CONTINUE;

    /* SESSION_START is always a session's first event (it waits for the ClientHello). */
    if (s->start_pending && ev != MMTLS_EV_SESSION_START)
        eng_tls_session_start(s);
    for (int i = 0; i < e->napps; i++) {
        const struct mmtls_app *a = &e->apps[i].app;
        int v;
        if (!(a->events & (uint32_t)ev))
            continue;
        /* A blocked session gets no more events, except its end. */
        if (s->info.blocked && ev != MMTLS_EV_SESSION_END)
            break;
        v = a->on_event((struct mmtls_session *)s, info, a->arg);
        if (v == MMTLS_VERDICT_BLOCK) {
            mmtls_session_block((struct mmtls_session *)s, a->name);
            verdict = MMTLS_VERDICT_BLOCK;
        }
    }
    return verdict;
}

void eng_error(struct eng_session *s, int code, int dir, uint64_t off, const char *detail)
{
    struct mmtls_error_info ei = {
        .code = code, .dir = (enum mmtls_dir)dir, .stream_off = off, .detail = detail};
    struct mmtls_event_info info = {.ev = MMTLS_EV_ERROR, .err = &ei};

    if (code > 0 && code <= MMTLS_TLSERR_MAX) {
        s->eng->st.tls_errors[code]++;
        s->err_count[code]++;
    }
    s->info.errors++;
    (void)eng_dispatch(s, MMTLS_EV_ERROR, &info);
}

const char *mmtls_tls_error_name(int code)
{
    switch (code) {
    case MMTLS_TLSERR_BAD_RECORD_MAC: return "bad_record_mac";
    case MMTLS_TLSERR_RECORD_OVERFLOW: return "record_overflow";
    case MMTLS_TLSERR_MALFORMED_RECORD: return "malformed_record";
    case MMTLS_TLSERR_MALFORMED_HANDSHAKE: return "malformed_handshake";
    case MMTLS_TLSERR_HANDSHAKE_TOO_LARGE: return "handshake_too_large";
    case MMTLS_TLSERR_UNSUPPORTED_SUITE: return "unsupported_suite";
    case MMTLS_TLSERR_NO_KEYS: return "no_keys";
    case MMTLS_TLSERR_KEY_MISMATCH: return "key_mismatch";
    case MMTLS_TLSERR_GAP: return "stream_gap";
    case MMTLS_TLSERR_RESYNC_FAILED: return "resync_failed";
    case MMTLS_TLSERR_EVASION_OVERLAP: return "evasion_overlap";
    case MMTLS_TLSERR_MEMCAP: return "memcap";
    case MMTLS_TLSERR_UNEXPECTED_MESSAGE: return "unexpected_message";
    case MMTLS_TLSERR_EARLY_DATA_SKIPPED: return "early_data_skipped";
    case MMTLS_TLSERR_KEY_REJECTED: return "key_rejected";
    }
    return "unknown";
}

/* ------------------------------------------------------------------------------------------ */
/* Session API (include/mmtls/mmtls.h)                                                         */

const struct mmtls_session_info *mmtls_session_info(const struct mmtls_session *ss)
{
    return &((const struct eng_session *)ss)->info;
}

void *mmtls_session_ctx_get(const struct mmtls_session *ss, int app_id)
{
    const struct eng_session *s = (const struct eng_session *)ss;

    if (app_id < 0 || app_id >= ENG_MAX_APPS)
        return NULL;
    return s->ctx[app_id];
}

void mmtls_session_ctx_set(struct mmtls_session *ss, int app_id, void *ctx)
{
    struct eng_session *s = (struct eng_session *)ss;

    if (app_id >= 0 && app_id < ENG_MAX_APPS)
        s->ctx[app_id] = ctx;
}

void mmtls_session_pause(struct mmtls_session *ss, enum mmtls_dir dir, uint64_t nbytes)
{
    struct eng_session *s = (struct eng_session *)ss;

    if (dir == MMTLS_DIR_TO_SERVER || dir == MMTLS_DIR_TO_CLIENT) {
        s->d[dir].pause_left = nbytes;
        s->d[dir].wire_paused = false;
    }
}

void mmtls_session_resume(struct mmtls_session *ss, enum mmtls_dir dir)
{
    mmtls_session_pause(ss, dir, 0);
}

void mmtls_session_pause_after_wire(struct mmtls_session *ss, enum mmtls_dir dir, uint64_t nbytes)
{
    struct eng_session *s = (struct eng_session *)ss;
    struct eng_tdir *d;

    if (dir != MMTLS_DIR_TO_SERVER && dir != MMTLS_DIR_TO_CLIENT)
        return;
    d = &s->d[dir];
    if (d->wire_paused) {
        d->pause_left = 0;
        d->wire_paused = false;
    }
    d->wire_budget = nbytes;
    d->wire_left = nbytes;
    d->wire_rearm = true;
}

void mmtls_session_block(struct mmtls_session *ss, const char *reason)
{
    struct eng_session *s = (struct eng_session *)ss;
    (void)reason;
    if (!s->info.blocked) {
        s->info.blocked = true;
        s->eng->st.blocked_sessions++;
        if (s->eng->inline_mode) {
            /* DESIGN §3 rule 4: what was held is dropped and both ends are reset. */
            eng_inline_release_frames(s, false);
            eng_inline_reset(s->eng, s->flow->ud);
        }
    }
    s->eng->verdict = MMTLS_PKT_DROP;
}

/* ------------------------------------------------------------------------------------------ */
/* Flows                                                                                       */

static void sink_data(void *ud, uint64_t off, const uint8_t *p, size_t len);
static void sink_event(void *ud, enum mmtls_reasm_event ev, uint64_t off, uint64_t len);

struct sink_ctx {
    struct eng_flow *ef;
    int dir;
};

static void flow_release(void *ctx, struct mmtls_flow *f, enum mmtls_flow_end_reason why)
{
    struct mmtls_engine *e = ctx;
    struct eng_flow *ef = f->ud;

    /* Evicted or expired while not inspected: remembered, so that its later packets (a
     * midstream pickup) pass as before rather than fail closed. */
    if ((why == MMTLS_FLOW_END_EVICTED || why == MMTLS_FLOW_END_IDLE) &&
        (ef == NULL || (!ef->refused && (ef->s == NULL || ef->s->not_tls || ef->bypassed))))
        memo_put(e, &f->key);
    if (ef == NULL)
        return;
    eng_fast_flow_end(e, ef);
    /* Deliver what is buffered behind holes the capture never filled (each hole is a gap). */
    for (int dir = 0; dir < 2 && !ef->stop; dir++) {
        struct sink_ctx sc = {ef, dir};
        struct mmtls_reasm_sink sink = {&sc, sink_data, sink_event};
        for (int n = 0; n < 4096 && !ef->stop && mmtls_reasm_flush_gap(&ef->r[dir], &sink); n++) {
        }
    }
    if (ef->s != NULL) {
        eng_session_finish(ef->s);
        eng_session_free(ef->s);
        e->st.sessions_active--;
    }
    mmtls_reasm_fini(&ef->r[0]);
    mmtls_reasm_fini(&ef->r[1]);
    free(ef);
    f->ud = NULL;
}

/* A new session under the session cap?  Otherwise the exception policy: fail closed drops
 * the flow (this packet and every later one); fail open and offline leave it uninspected. */
static bool session_admit(struct eng_flow *ef)
{
    struct mmtls_engine *e = ef->eng;
    uint32_t cap = e->o.max_sessions;
    int act;

    if (cap == 0 || e->st.sessions_active < cap)
        return true;
    act = eng_exc_act(e, MMTLS_EXC_SESSION);
    eng_exception(e, MMTLS_EXC_SESSION, act);
    ef->stop = true;
    if (act == MMTLS_EXC_ACT_CLOSED) {
        ef->refused = true;
        e->verdict = MMTLS_PKT_DROP;
    } else {
        ef->bypassed = true;
    }
    return false;
}

static void sink_data(void *ud, uint64_t off, const uint8_t *p, size_t len)
{
    struct sink_ctx *c = ud;
    struct eng_flow *ef = c->ef;

    if (ef->stop)
        return;
    if (ef->s == NULL) {
        /* TLS clients speak first: a flow whose first bytes come from the server is not TLS
         * (any port).  Whether the client's bytes start a ClientHello is decided by the session
         * once the first record header and handshake header are in. */
        bool server_first = c->dir == 1 && off == 0 && !ef->midstream;
        if (c->dir != 0 || off != 0) {
            if (!(server_first && ef->eng->o.inspect_plain)) {
                ef->stop = true;
                ef->eng->st.flows_not_tls++;
                if (ef->midstream)
                    ef->eng->st.flows_midstream++;
                return;
            }
        }
        if (!session_admit(ef))
            return;
        ef->s = eng_session_new(ef->eng, ef->flow);
        if (ef->s == NULL) {
            ef->stop = true;
            ef->eng->st.flow_alloc_failures++;
            return;
        }
        if (++ef->eng->st.sessions_active > ef->eng->st.sessions_peak)
            ef->eng->st.sessions_peak = ef->eng->st.sessions_active;
        if (server_first)
            eng_plain_start(ef->s); /* the server speaks first (SMTP, FTP...): not TLS */
    }
    eng_tls_data(ef->s, c->dir, off, p, len);
    if (ef->s->not_tls && !ef->stop) {
        ef->stop = true;
        ef->eng->st.flows_not_tls++;
    }
}

static void sink_event(void *ud, enum mmtls_reasm_event ev, uint64_t off, uint64_t len)
{
    struct sink_ctx *c = ud;
    struct eng_flow *ef = c->ef;
    struct mmtls_engine *e = ef->eng;

    switch (ev) {
    case MMTLS_REASM_EV_GAP:
        e->st.reasm_gaps++;
        if (ef->s != NULL && !ef->stop && e->inline_mode && e->o.on_flow_state != NULL)
            eng_fast_gap(ef->s, c->dir, off); /* fast path: a lost copy (engine_fast.c) */
        if (ef->s != NULL && !ef->stop)
            eng_tls_gap(ef->s, c->dir, off, len);
        else if (ef->s == NULL && c->dir == 0 && off == 0)
            ef->midstream = true; /* the start of the client stream is missing */
        break;
    case MMTLS_REASM_EV_OVERLAP_DIFF:
        e->st.reasm_overlap_diff++;
        if (ef->s == NULL && !ef->stop) {
            /* Conflicting copies before any byte was delivered (out-of-order segments over a
             * hole at the start): the session that will follow is the one to judge. */
            if (!session_admit(ef))
                break;
            ef->s = eng_session_new(e, ef->flow);
            if (ef->s == NULL) {
                ef->stop = true;
                e->st.flow_alloc_failures++;
                break;
            }
            if (++e->st.sessions_active > e->st.sessions_peak)
                e->st.sessions_peak = e->st.sessions_active;
        }
        if (ef->s != NULL && !ef->stop) {
            eng_error(ef->s, MMTLS_TLSERR_EVASION_OVERLAP, c->dir, off,
                      "retransmitted bytes differ from the first copy");
            /* DESIGN §3 rule 5: inline, an evasion attempt is blocked (fail closed) unless
             * configured to alert only: the frame carrying the differing bytes is dropped and
             * both ends are reset.  Offline the first copy stays the one inspected and the
             * session goes on (an analysis of what happened, not a verdict). */
            if (e->inline_mode && !e->o.evasion_alert_only && !ef->s->info.blocked) {
                e->st.evasion_blocked++;
                mmtls_session_block((struct mmtls_session *)ef->s,
                                    "evasion: retransmitted bytes differ from the first copy");
            }
        }
        break;
    case MMTLS_REASM_EV_MEMCAP:
    case MMTLS_REASM_EV_SEGMENT_LIMIT: {
        /* The segment was not buffered, so not inspected.  Fail closed: its packet is dropped
         * (the sender retransmits it; nothing uninspected reaches the receiver, and a flood
         * filling the shared memcap does not end other sessions).  Fail open: the flow is
         * bypassed once the segment is handled.  Offline: counted. */
        int act = eng_exc_act(e, MMTLS_EXC_REASM);
        e->st.reasm_memcap_drops++;
        if (ef->s != NULL && !ef->stop)
            eng_error(ef->s, MMTLS_TLSERR_MEMCAP, c->dir, off, "reassembly cap reached");
        eng_exception(e, MMTLS_EXC_REASM, act);
        if (act == MMTLS_EXC_ACT_CLOSED)
            e->verdict = MMTLS_PKT_DROP;
        else if (act == MMTLS_EXC_ACT_OPEN)
            ef->bypass_pending = true;
        break;
    }
    case MMTLS_REASM_EV_KEEP_FULL:
        /* Inline with the closed reassembly policy (keep_until_acked): the segment would have
         * pushed bytes the receiver has not acknowledged out of the copy kept to judge
         * retransmissions, so a differing retransmission of them could no longer be caught.
         * Its packet is dropped; the sender sends it again once the receiver acknowledged
         * more, so --reasm-keep acts as a window.  Counted like a cap hit, not a session
         * error (a fast sender reaches it in normal operation). */
        e->st.reasm_keep_drops++;
        eng_exception(e, MMTLS_EXC_REASM, MMTLS_EXC_ACT_CLOSED);
        e->verdict = MMTLS_PKT_DROP;
        break;
    case MMTLS_REASM_EV_FIN: break;
    }
}

/* The flow key of a packet as the flow table builds it (endpoint 0 = lower address/port). */
static void flow_key_of(const struct mmtls_pkt *p, struct mmtls_flow_key *k)
{
    size_t alen = p->ip_version == 4 ? 4 : 16;
    int c = memcmp(p->src, p->dst, alen);
    int lo = c < 0 || (c == 0 && p->sport <= p->dport) ? 0 : 1;

    memset(k, 0, sizeof(*k));
    k->ip_version = p->ip_version;
    k->proto = p->l4proto;
    memcpy(k->addr[lo], p->src, alen);
    memcpy(k->addr[!lo], p->dst, alen);
    k->port[lo] = p->sport;
    k->port[!lo] = p->dport;
}

/* What the flow is worth keeping when the table is full (flow.h). */
static int flow_class(const struct eng_flow *ef)
{
    const struct eng_session *s = ef->s;

    if (ef->refused || (s != NULL && s->info.blocked))
        return MMTLS_FLOW_CLASS_HANDSHAKE; /* dropped anyway: goes once idle */
    if (ef->stop || ef->bypassed || s == NULL || s->not_tls)
        return MMTLS_FLOW_CLASS_BARE; /* nothing under inspection */
    if (s->plain)
        return MMTLS_FLOW_CLASS_PINNED;
    /* The server answered and the client went on (its Finished, CCS or data): an inspected
     * session.  A ClientHello alone and silence after it is a half-open one. */
    if (s->info.dir[0].records >= 2 && s->info.dir[1].records >= 1)
        return MMTLS_FLOW_CLASS_PINNED;
    return MMTLS_FLOW_CLASS_HANDSHAKE;
}

/* Inline, a flow whose first packet is not a SYN: a connection older than this engine (grace
 * period), one the engine evicted or expired while uninspected (remembered), or else the
 * resumption of a session whose state is gone — an attacker's way to end inspection by
 * flooding the table or idling: the midstream policy (fail closed: dropped). */
static void midstream_pickup(struct mmtls_engine *e, struct eng_flow *ef)
{
    int act;

    if (memo_take(e, &ef->flow->key)) {
        e->st.midstream_remembered++;
        return;
    }
    if (e->now_us < e->first_us + (uint64_t)e->o.midstream_grace_ms * 1000) {
        e->st.midstream_passed++;
        return;
    }
    act = eng_exc_act(e, MMTLS_EXC_MIDSTREAM);
    eng_exception(e, MMTLS_EXC_MIDSTREAM, act);
    if (act == MMTLS_EXC_ACT_CLOSED) {
        ef->refused = true;
        ef->stop = true;
    }
}

/* Fail open after a reassembly cap: the flow is no longer inspected; its buffers, held records
 * and session are freed (SESSION_END now), held frames are sent on. */
static void flow_bypass(struct mmtls_engine *e, struct eng_flow *ef)
{
    ef->bypass_pending = false;
    ef->bypassed = true;
    ef->stop = true;
    if (ef->s != NULL) {
        if (e->cur_hold == ef->s)
            e->cur_hold = NULL;
        if (e->verdict == MMTLS_PKT_HOLD)
            e->verdict = MMTLS_PKT_FORWARD;
        eng_inline_release_frames(ef->s, true);
        eng_session_finish(ef->s);
        eng_session_free(ef->s);
        ef->s = NULL;
        e->st.sessions_active--;
    }
    mmtls_reasm_fini(&ef->r[0]);
    mmtls_reasm_fini(&ef->r[1]);
    mmtls_flow_set_class(e->flows, ef->flow, MMTLS_FLOW_CLASS_BARE);
}

/* RFC 5961 §3.2: a receiver accepts an RST only when its sequence number is exactly the next
 * one it expects (RCV.NXT; Linux also takes RCV.NXT - 1 after a FIN).  The middlebox knows that
 * number to lie between the receiver's last ACK and the end of what it forwarded in the
 * direction.  Another RST (a blind injection, or a forgery meant to make the middlebox drop the
 * flow while the receiver goes on) does not end the flow.  Nothing known of the direction yet
 * (an answer to a SYN): accepted. */
static bool rst_acceptable(const struct eng_flow *ef, int dir, uint32_t seq)
{
    const struct mmtls_reasm *r = &ef->r[dir];
    uint32_t lo, hi;

    if (!r->started)
        return true;
    lo = hi = r->base_seq + (uint32_t)r->next_off;
    if (r->fin_seen && r->next_off >= r->fin_off)
        hi++; /* the FIN's sequence number */
    if (ef->have_ack[!dir]) {
        if (MMTLS_SEQ_LT(ef->last_ack[!dir], lo))
            lo = ef->last_ack[!dir];
        if (MMTLS_SEQ_GT(ef->last_ack[!dir], hi))
            hi = ef->last_ack[!dir];
    }
    return !MMTLS_SEQ_LT(seq, lo - 1) && !MMTLS_SEQ_GT(seq, hi);
}

/* A flow whose session this engine blocked inline: both ends got RSTs, the connection is over
 * for them even though no FIN or RST of theirs closed the flow. */
static bool flow_reset_by_us(const struct eng_flow *ef)
{
    return ef->eng->inline_mode && ef->s != NULL && ef->s->info.blocked;
}

static void handle_tcp(struct mmtls_engine *e, const struct mmtls_pkt *pkt)
{
    struct mmtls_flow *f;
    struct eng_flow *ef;
    struct mmtls_pkt norst;
    const struct mmtls_pkt *fpkt = pkt;
    int sender, dir, rc;

    /* The flow table closes a flow on any RST, and on a FIN from each side: it sees them
     * only once the packet is known to come from the right side, and the RST to be
     * acceptable (below). */
    if (pkt->tcp_flags & (MMTLS_TCP_RST | MMTLS_TCP_FIN)) {
        norst = *pkt;
        norst.tcp_flags &= (uint8_t) ~(MMTLS_TCP_RST | MMTLS_TCP_FIN);
        fpkt = &norst;
    }
    rc = mmtls_flow_get(e->flows, fpkt, e->now_us, &f, &sender);
    if (rc == MMTLS_E_LIMIT) {
        /* Full of sessions under inspection: none is evicted for a newcomer. */
        int act = eng_exc_act(e, MMTLS_EXC_FLOW);
        eng_exception(e, MMTLS_EXC_FLOW, act);
        if (act == MMTLS_EXC_ACT_CLOSED) {
            e->verdict = MMTLS_PKT_DROP; /* the new flow's packets, until there is room */
            return;
        }
        if (act == MMTLS_EXC_ACT_OPEN) {
            /* Forwarded uninspected; remembered so that when it gets an entry later, its
             * packets (a midstream pickup) still pass. */
            struct mmtls_flow_key k;
            flow_key_of(pkt, &k);
            memo_put(e, &k);
            return;
        }
        /* Offline: analysis only, the least recently used flow goes. */
        if (!mmtls_flow_evict_lru(e->flows))
            return;
        rc = mmtls_flow_get(e->flows, fpkt, e->now_us, &f, &sender);
    }
    if (rc == 0 && (pkt->tcp_flags & (MMTLS_TCP_SYN | MMTLS_TCP_ACK)) == MMTLS_TCP_SYN &&
        f->ud != NULL && (f->state == MMTLS_FLOW_CLOSED || flow_reset_by_us(f->ud))) {
        /* A new connection on the 4-tuple of a closed one (RFC 9293 §3.10.7.4 TIME-WAIT
         * reuse), or of one this engine blocked (both ends were reset, so the client may
         * reuse its port at once): inspected from its own SYN, not as a continuation of the
         * old stream, and not dropped as part of the blocked one. */
        mmtls_flow_release(e->flows, f, MMTLS_FLOW_END_CLOSED);
        e->st.flows_reopened++;
        rc = mmtls_flow_get(e->flows, fpkt, e->now_us, &f, &sender);
    }
    if (rc != 0) {
        e->st.flow_alloc_failures++;
        return;
    }
    ef = f->ud;
    if (ef == NULL) {
        ef = calloc(1, sizeof(*ef));
        if (ef == NULL) {
            e->st.flow_alloc_failures++;
            mmtls_flow_release(e->flows, f, MMTLS_FLOW_END_EVICTED);
            return;
        }
        ef->eng = e;
        ef->flow = f;
        ef->port_in[0] = ef->port_in[1] = -1;
        mmtls_reasm_init(&ef->r[0], &e->o.reasm, &e->reasm_mc);
        mmtls_reasm_init(&ef->r[1], &e->o.reasm, &e->reasm_mc);
        f->ud = ef;
        ef->syn_first = (pkt->tcp_flags & (MMTLS_TCP_SYN | MMTLS_TCP_ACK)) == MMTLS_TCP_SYN;
        /* Without a SYN from the client, the capture started mid-flow. */
        if (!(pkt->tcp_flags & MMTLS_TCP_SYN)) {
            ef->midstream = true;
            ef->mid_pending = e->inline_mode;
        }
    }
    /* A bare RST of a flow the table no longer has (it was closed, evicted) is not counted
     * as a pickup; the flow's first other packet decides. */
    if (ef->mid_pending && !(pkt->tcp_flags & MMTLS_TCP_RST)) {
        ef->mid_pending = false;
        midstream_pickup(e, ef);
    }
    dir = mmtls_flow_dir(f, sender);
    if (e->inline_mode && ef->port_in[!dir] >= 0 && e->cur_port == ef->port_in[!dir] &&
        ef->port_in[dir] != e->cur_port) {
        /* Inline, a packet of this direction entering where the other end's packets enter:
         * forged as the other end by someone on this side (that end's own stack would drop a
         * datagram with its own address as source).  Believed, a forged ACK would free the
         * bytes kept to compare retransmissions, a forged FIN or RST end inspection. */
        e->st.wrong_side_dropped++;
        e->verdict = MMTLS_PKT_DROP;
        return;
    }
    if (pkt->tcp_flags & (MMTLS_TCP_FIN | MMTLS_TCP_RST)) {
        /* From the right side: the flow table sees the FIN, and the RST when the receiver
         * would accept it (else the receiver drops the segment, FIN and all). */
        if ((pkt->tcp_flags & MMTLS_TCP_RST) && !rst_acceptable(ef, dir, pkt->seq))
            e->st.rst_ignored++;
        else
            mmtls_flow_note_flags(e->flows, f, sender, pkt->tcp_flags);
    }
    if (e->inline_mode)
        eng_inline_note(e, ef, dir, pkt);
    if (ef->refused) {
        /* Fail closed (session cap, midstream): every packet of the flow is dropped; a bare
         * RST still passes (it carries nothing and ends the connection). */
        if (!((pkt->tcp_flags & MMTLS_TCP_RST) && pkt->payload_len == 0))
            e->verdict = MMTLS_PKT_DROP;
        return;
    }
    if (ef->stop) {
        if (ef->s != NULL && ef->s->info.blocked)
            e->verdict = MMTLS_PKT_DROP;
        else if (e->inline_mode && e->o.block_non_tls &&
                 (ef->s == NULL || ef->s->not_tls || ef->s->plain))
            e->verdict = MMTLS_PKT_DROP; /* operator policy: only TLS passes */
        return;
    }
    if (ef->s != NULL)
        ef->s->info.last_ts_us = e->now_us;

    struct sink_ctx sc = {ef, dir};
    struct mmtls_reasm_sink sink = {&sc, sink_data, sink_event};
    struct mmtls_reasm *r = &ef->r[dir];

    if (e->fast_resume.on || e->fast_inorder)
        eng_fast_resume(e, ef, dir, pkt->seq, &sink); /* kernel fast path (engine_fast.c) */
    if (pkt->tcp_flags & MMTLS_TCP_SYN) {
        /* Once the peer's SYN-ACK fixed this side's ISN, another SYN is ignored (RFC 9293
         * §3.10.7.3: the receiver answers it with an ACK) */
        if ((pkt->tcp_flags & MMTLS_TCP_ACK) || !ef->r[!dir].started || ef->r[!dir].midstream)
            mmtls_reasm_syn(r, pkt->seq);
        /* The SYN-ACK names the client ISN the server took: an earlier SYN with another ISN
         * (a decoy the server never accepted) must not define the client's stream. */
        if ((pkt->tcp_flags & MMTLS_TCP_ACK) && ef->r[!dir].started && !ef->r[!dir].midstream)
            mmtls_reasm_syn(&ef->r[!dir], pkt->ack - 1);
    }
    if ((pkt->payload_len > 0 ||
         (pkt->tcp_flags & (MMTLS_TCP_FIN | MMTLS_TCP_SYN)) == MMTLS_TCP_FIN) &&
        !(pkt->tcp_flags & MMTLS_TCP_RST)) {
        /* The bytes of an RST are never delivered (RFC 9293 §3.10.7.4 ends the connection
         * or drops the segment).  Data on a SYN (TCP Fast Open, RFC 7413) starts at ISN + 1 and is
         * inspected: a server that does not take it gets it again, and a different copy then
         * conflicts. */
        uint32_t seq = pkt->seq + ((pkt->tcp_flags & MMTLS_TCP_SYN) ? 1u : 0u);

        if (e->inline_mode && ef->syn_first && !(pkt->tcp_flags & MMTLS_TCP_SYN) &&
            !ef->r[!dir].started) {
            /* Data (or a FIN) before the peer's SYN: the connection does not exist yet, so no
             * TCP stack sends it (data on the SYN itself, TCP Fast Open, is inspected).  It is
             * what an older connection on this 4-tuple looks like when the middlebox believed
             * an RST the receiver dropped (an insertion) and a new SYN reopened the flow: the
             * receiver, still in the old connection, answers the SYN with a challenge ACK
             * (RFC 5961 §4), never a SYN-ACK, and would read these bytes uninspected. */
            e->st.data_before_synack_dropped++;
            e->verdict = MMTLS_PKT_DROP;
            return;
        }

        /* Track the highest offset seen in this direction: acknowledgements beyond it are
         * capture loss; below it, reordering that reassembly resolves. */
        if (e->inline_mode && e->o.tamper_len > 0 && pkt->payload_len > 0 && r->started &&
            ef->seen_any[dir] &&
            mmtls_reasm_seq_to_off(r, seq) + pkt->payload_len <= ef->seen_end[dir]) {
            /* TEST ONLY (the compromised middlebox): a retransmission of bytes that already
             * went through, possibly rewritten, would reach the next hop as the original; a
             * box that rewrites a stream must not let that happen, so it is dropped (the
             * receiver has the first copy). */
            e->verdict = MMTLS_PKT_DROP;
            return;
        }
        if (e->inline_mode && e->o.tamper_len > 0) {
            e->cur_pkt = pkt;
            e->cur_payload_off = r->started ? mmtls_reasm_seq_to_off(r, seq) : UINT64_MAX;
        }
        uint64_t unchecked = r->stats.old_unchecked_bytes;
        (void)mmtls_reasm_segment(r, seq, pkt->payload, pkt->payload_len,
                                  (pkt->tcp_flags & MMTLS_TCP_FIN) != 0, &sink);
        e->st.reasm_unchecked_bytes += r->stats.old_unchecked_bytes - unchecked;
        e->cur_pkt = NULL;
        if (ef->bypass_pending) {
            flow_bypass(e, ef);
            return;
        }
        if (r->started) {
            uint64_t end = mmtls_reasm_seq_to_off(r, seq) + pkt->payload_len;
            if (!ef->seen_any[dir] || end > ef->seen_end[dir])
                ef->seen_end[dir] = end;
            ef->seen_any[dir] = true;
        }
    }
    if ((pkt->tcp_flags & MMTLS_TCP_ACK) && !ef->stop) {
        struct mmtls_reasm *rr = &ef->r[!dir];
        struct sink_ctx rsc = {ef, !dir};
        struct mmtls_reasm_sink rsink = {&rsc, sink_data, sink_event};
        if (rr->started && ef->seen_any[!dir]) {
            /* Clamp to what we have seen of the other direction (see above). */
            uint64_t aoff = mmtls_reasm_seq_to_off(rr, pkt->ack);
            uint32_t ack = pkt->ack;
            if (aoff > ef->seen_end[!dir]) {
                aoff = ef->seen_end[!dir];
                ack = (uint32_t)(rr->base_seq + aoff);
            }
            if (aoff <= rr->next_off) {
                mmtls_reasm_ack(rr, ack, &rsink); /* frees kept bytes; no hole involved */
            } else {
                /* Beyond a hole: free what is below it now, decide about the hole later. */
                mmtls_reasm_ack(rr, (uint32_t)(rr->base_seq + rr->next_off), &rsink);
                if (!ef->ack_pending[!dir]) {
                    ef->ack_pending[!dir] = true;
                    ef->ack_pending_pkts[!dir] = 0;
                    ef->ack_pending_us[!dir] = e->now_us;
                    ef->ack_pending_next[!dir] = rr->next_off;
                }
                ef->ack_pending_seq[!dir] = ack;
            }
        }
    }
    for (int d = 0; d < 2 && !ef->stop; d++) {
        struct mmtls_reasm *rd = &ef->r[d];
        struct sink_ctx dsc = {ef, d};
        struct mmtls_reasm_sink dsink = {&dsc, sink_data, sink_event};
        if (!ef->ack_pending[d])
            continue;
        if (mmtls_reasm_seq_to_off(rd, ef->ack_pending_seq[d]) <= rd->next_off) {
            ef->ack_pending[d] = false; /* the hole was filled: it was reordering */
        } else if (rd->next_off != ef->ack_pending_next[d]) {
            /* Still filling in: late segments are arriving, not lost. */
            ef->ack_pending_next[d] = rd->next_off;
            ef->ack_pending_pkts[d] = 0;
            ef->ack_pending_us[d] = e->now_us;
        } else if (++ef->ack_pending_pkts[d] > ENG_ACK_GAP_PKTS ||
                   e->now_us - ef->ack_pending_us[d] > ENG_ACK_GAP_US) {
            ef->ack_pending[d] = false;
            mmtls_reasm_ack(rd, ef->ack_pending_seq[d], &dsink); /* lost: a gap */
        }
    }
    if (ef->s != NULL && ef->s->info.blocked)
        e->verdict = MMTLS_PKT_DROP;
    if (e->inline_mode && e->o.block_non_tls && !ef->bypassed &&
        ((ef->stop && !(ef->s != NULL && ef->s->started)) || (ef->s != NULL && ef->s->plain))) {
        e->st.non_tls_blocked++;
        e->verdict = MMTLS_PKT_DROP;
    }
    mmtls_flow_set_class(e->flows, f, flow_class(ef));
}

/* Inline, an IP or TCP frame the decoder cannot read is dropped: a receiver that reads it
 * otherwise (more extension headers than the decoder walks, a header it judges differently)
 * would take bytes the middlebox never inspected, and one that agrees drops it anyway.  Frames
 * of other protocols (not_tcp, l2_unsupported) and fragments (decode_defrag) are not here. */
static bool dec_malformed(enum mmtls_decode_event dev)
{
    switch (dev) {
    case MMTLS_DEC_VLAN_TOO_DEEP:
    case MMTLS_DEC_IPV4_TRUNCATED:
    case MMTLS_DEC_IPV4_BAD_HLEN:
    case MMTLS_DEC_IPV4_BAD_LEN:
    case MMTLS_DEC_IPV4_BAD_CSUM:
    case MMTLS_DEC_IPV4_BAD_OPTIONS:
    case MMTLS_DEC_IPV6_TRUNCATED:
    case MMTLS_DEC_IPV6_BAD_LEN:
    case MMTLS_DEC_IPV6_EXT_TOO_DEEP:
    case MMTLS_DEC_IPV6_BAD_EXT:
    case MMTLS_DEC_TCP_TRUNCATED:
    case MMTLS_DEC_TCP_BAD_HLEN:
    case MMTLS_DEC_TCP_BAD_CSUM: return true;
    default: return false;
    }
}

/* A fragment the defragmenter did not keep must not reach the receiver: it could complete,
 * there, a datagram the engine never sees whole (decode_defrag.c).  A peer fault (malformed,
 * conflicting, of a datagram given up) is dropped; a resource cap follows the defrag exception
 * policy (open: forwarded uninspected). */
static void frag_refused(struct mmtls_engine *e, int rc)
{
    int act;

    if (rc == MMTLS_E_LIMIT || rc == MMTLS_E_MEMCAP || rc == MMTLS_E_NOMEM) {
        act = eng_exc_act(e, MMTLS_EXC_DEFRAG);
        eng_exception(e, MMTLS_EXC_DEFRAG, act);
        if (act != MMTLS_EXC_ACT_CLOSED)
            return;
    }
    if (e->inline_mode) {
        e->st.fragments_dropped++;
        e->verdict = MMTLS_PKT_DROP;
    }
}

int mmtls_engine_packet(struct mmtls_engine *e, int linktype, const uint8_t *data, size_t len,
                        uint64_t ts_us)
{
    struct mmtls_pkt pkt;
    struct mmtls_decode_opts dopts;
    enum mmtls_decode_event dev;
    int rc;

    e->verdict = MMTLS_PKT_FORWARD;
    e->st.packets++;
    e->st.bytes += len;
    if (ts_us > e->now_us)
        e->now_us = ts_us;
    if (!e->have_first) {
        e->have_first = true;
        e->first_us = e->now_us;
        e->last_stats_us = e->now_us;
    }
    mmtls_engine_poll_keys(e); /* after the clock: waiting keys are stamped with engine time */
    if (e->now_us >= e->last_tick_us + 1000000) {
        mmtls_engine_tick(e, e->now_us);
        e->last_tick_us = e->now_us;
    }
    if (e->wait_head != NULL || e->pend_old != NULL)
        eng_keys_tick(e); /* key waits are shorter than the flow tick */
    memset(&pkt, 0, sizeof(pkt));
    pkt.ts_us = ts_us;
    dopts = e->o.decode;
    if (e->cur_csum_verify) {
        /* Inline, checksums complete: a segment the receiver will drop for its checksum is
         * dropped and never reassembled (an insertion, Ptacek & Newsham §4.1; dec_malformed). */
        dopts.verify_ip_csum = true;
        dopts.verify_tcp_csum = true;
    }
    dev = mmtls_decode_frame(linktype, data, len, &dopts, &pkt);
    if (dev == MMTLS_DEC_IP_FRAGMENT) {
        const uint8_t *dg;
        size_t dglen;
        e->st.fragments++;
        e->st.decode_events[dev]++;
        rc = mmtls_defrag_feed(e->defrag, &pkt, e->now_us, &dg, &dglen);
        if (rc != 0) {
            if (rc != MMTLS_AGAIN)
                frag_refused(e, rc);
            return e->verdict; /* a kept fragment goes on: the receiver reassembles it too */
        }
        e->st.reassembled_datagrams++;
        dev = mmtls_decode_ip(dg, dglen, &dopts, &pkt);
        if (dev == MMTLS_DEC_IP_FRAGMENT)
            dev = MMTLS_DEC_IPV4_BAD_LEN; /* a rebuilt datagram must not be a fragment */
        if (dev == MMTLS_DEC_OK && e->inline_mode && (pkt.tcp_flags & MMTLS_TCP_URG) &&
            pkt.payload_len > 0) {
            /* Urgent data is cleared in the forwarded header (engine_inline.c), but this
             * header left with the first fragment: the receiver would take the byte before
             * the urgent pointer out of the stream inspected here.  The fragment that
             * completes the datagram is dropped, unprocessed, as if lost on the way. */
            e->st.urg_frag_dropped++;
            e->verdict = MMTLS_PKT_DROP;
            return e->verdict;
        }
    }
    if (dev != MMTLS_DEC_OK) {
        e->st.decode_events[dev]++;
        if (e->inline_mode && dec_malformed(dev)) {
            e->st.malformed_dropped++;
            e->verdict = MMTLS_PKT_DROP;
        }
        return e->verdict;
    }
    if (pkt.tcp_opt_bad)
        e->st.decode_events[MMTLS_DEC_TCP_BAD_OPTIONS]++; /* read as Linux reads it, inspected */
    e->st.tcp_packets++;
    handle_tcp(e, &pkt);
    return e->verdict;
}

void mmtls_engine_tick(struct mmtls_engine *e, uint64_t now_us)
{
    if (now_us > e->now_us)
        e->now_us = now_us;
    if (e->flows != NULL)
        (void)mmtls_flow_expire(e->flows, e->now_us);
    mmtls_defrag_expire(e->defrag, e->now_us);
    eng_keys_tick(e);
    exc_flush(e);
    if (e->o.on_stats != NULL && e->o.stats_interval_ms != 0 && e->have_first &&
        e->now_us >= e->last_stats_us + (uint64_t)e->o.stats_interval_ms * 1000) {
        e->last_stats_us = e->now_us;
        e->o.on_stats(e->o.report_ud, e, e->now_us);
    }
}

void mmtls_engine_flush(struct mmtls_engine *e)
{
    /* Freeing the table releases every flow; rebuild an empty one for further use. */
    struct mmtls_flow_table *nt;
    struct mmtls_flow_table_opts fo = e->o.flow;

    if (e->flows != NULL) {
        const struct mmtls_flow_stats *fs = mmtls_flow_table_stats(e->flows);
        e->flow_base.created += fs->created;
        e->flow_base.evicted += fs->evicted;
        e->flow_base.expired_idle += fs->expired_idle;
        e->flow_base.expired_closed += fs->expired_closed;
        e->flow_base.refused += fs->refused;
        if (fs->peak_active > e->flow_base.peak_active)
            e->flow_base.peak_active = fs->peak_active;
    }
    mmtls_flow_table_free(e->flows);
    e->flows = NULL;
    if (mmtls_flow_table_new(&nt, &fo, flow_release, e) == 0)
        e->flows = nt;
}

/* ------------------------------------------------------------------------------------------ */

int mmtls_engine_new(struct mmtls_engine **out, const struct mmtls_engine_opts *o)
{
    struct mmtls_defrag_opts dfo;
    struct mmtls_engine *e;
    int rc;

    if (o == NULL || o->sz < sizeof(*o))
        return MMTLS_E_INVAL;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return MMTLS_E_NOMEM;
    e->o = *o;
    e->reasm_mc.limit = o->reasm_memcap;
    e->memo = calloc(ENG_MEMO_SIZE, sizeof(*e->memo));
    if (e->memo == NULL) {
        free(e);
        return MMTLS_E_NOMEM;
    }
    if (getrandom(&e->memo_seed, sizeof(e->memo_seed), 0) != (ssize_t)sizeof(e->memo_seed))
        e->memo_seed = (uint64_t)(uintptr_t)e ^ 0x6d656d6full;
    e->scratch = malloc(ENG_REC_MAX);
    if (e->scratch == NULL) {
        rc = MMTLS_E_NOMEM;
        goto out_free;
    }
    rc = mmtls_flow_table_new(&e->flows, &o->flow, flow_release, e);
    if (rc != 0)
        goto out_free_scratch;
    /* Offline the oldest datagram makes room; inline mode sets the defrag policy. */
    dfo = o->defrag;
    dfo.fail_open = true;
    rc = mmtls_defrag_new(&e->defrag, &dfo);
    if (rc != 0)
        goto out_free_flows;
    rc = eng_keys_init(e);
    if (rc != 0)
        goto out_free_defrag;
    *out = e;
    return 0;

out_free_defrag:
    mmtls_defrag_free(e->defrag);
out_free_flows:
    mmtls_flow_table_free(e->flows);
out_free_scratch:
    free(e->scratch);
out_free:
    free(e->memo);
    free(e);
    return rc;
}

void mmtls_engine_free(struct mmtls_engine *e)
{
    if (e == NULL)
        return;
    mmtls_flow_table_free(e->flows);
    mmtls_defrag_free(e->defrag);
    eng_keys_fini(e);
    mmtls_wipe(e->scratch, ENG_REC_MAX);
    free(e->scratch);
    free(e->memo);
    free(e);
}

const struct mmtls_engine_stats *mmtls_engine_get_stats(const struct mmtls_engine *e)
{
    return &e->st;
}

const struct mmtls_flow_stats *mmtls_engine_flow_stats(const struct mmtls_engine *e)
{
    static const struct mmtls_flow_stats none;

    return e->flows != NULL ? mmtls_flow_table_stats(e->flows) : &none;
}

const struct mmtls_defrag_stats *mmtls_engine_defrag_stats(const struct mmtls_engine *e)
{
    return mmtls_defrag_stats(e->defrag);
}

const struct mmtls_memcap *mmtls_engine_reasm_memcap(const struct mmtls_engine *e)
{
    return &e->reasm_mc;
}

void mmtls_engine_stats_json(const struct mmtls_engine *e, struct mmtls_json *j)
{
    const struct mmtls_engine_stats *st = &e->st;
    const struct mmtls_defrag_stats *ds = mmtls_defrag_stats(e->defrag);

    mmtls_json_obj_open(j, "decoder");
    mmtls_json_u64(j, "pkts", st->packets);
    mmtls_json_u64(j, "bytes", st->bytes);
    mmtls_json_u64(j, "tcp", st->tcp_packets);
    mmtls_json_u64(j, "malformed_dropped", st->malformed_dropped);
    mmtls_json_obj_open(j, "event");
    for (int i = 1; i < MMTLS_DEC_EVENT_MAX; i++) {
        if (st->decode_events[i] != 0)
            mmtls_json_u64(j, mmtls_decode_event_name((enum mmtls_decode_event)i),
                           st->decode_events[i]);
    }
    mmtls_json_obj_close(j);
    mmtls_json_obj_close(j);
    mmtls_json_obj_open(j, "defrag");
    mmtls_json_u64(j, "fragments", ds->fragments);
    mmtls_json_u64(j, "reassembled", ds->reassembled);
    mmtls_json_u64(j, "timeouts", ds->timeouts);
    mmtls_json_u64(j, "evicted", ds->evicted);
    mmtls_json_u64(j, "overlaps", ds->overlaps);
    mmtls_json_u64(j, "memcap_drops", ds->memcap_drops);
    mmtls_json_u64(j, "too_big", ds->too_big);
    mmtls_json_u64(j, "too_many_frags", ds->too_many_frags);
    mmtls_json_u64(j, "bad_fragments", ds->bad_fragments);
    mmtls_json_u64(j, "table_full", ds->table_full);
    mmtls_json_u64(j, "dead", ds->killed);
    mmtls_json_u64(j, "dead_drops", ds->dead_drops);
    mmtls_json_u64(j, "dropped", st->fragments_dropped);
    mmtls_json_u64(j, "datagrams", ds->datagrams);
    mmtls_json_u64(j, "memuse", ds->mem_used);
    mmtls_json_obj_close(j);
    mmtls_json_obj_open(j, "flow");
    {
        static const struct mmtls_flow_stats none;
        const struct mmtls_flow_stats *fs =
            e->flows != NULL ? mmtls_flow_table_stats(e->flows) : &none;
        const struct mmtls_flow_stats *b = &e->flow_base;
        mmtls_json_u64(j, "created", b->created + fs->created);
        mmtls_json_u64(j, "active", fs->active);
        mmtls_json_u64(j, "peak_active", MMTLS_MAX(b->peak_active, fs->peak_active));
        mmtls_json_u64(j, "evicted", b->evicted + fs->evicted);
        mmtls_json_u64(j, "expired_idle", b->expired_idle + fs->expired_idle);
        mmtls_json_u64(j, "expired_closed", b->expired_closed + fs->expired_closed);
        mmtls_json_u64(j, "refused", b->refused + fs->refused);
        if (e->flows != NULL) {
            mmtls_json_u64(j, "pinned", mmtls_flow_class_count(e->flows, MMTLS_FLOW_CLASS_PINNED));
            mmtls_json_u64(j, "handshake",
                           mmtls_flow_class_count(e->flows, MMTLS_FLOW_CLASS_HANDSHAKE));
        }
    }
    mmtls_json_u64(j, "midstream_passed", st->midstream_passed);
    mmtls_json_u64(j, "midstream_remembered", st->midstream_remembered);
    mmtls_json_u64(j, "tls", st->flows_tls);
    mmtls_json_u64(j, "not_tls", st->flows_not_tls);
    mmtls_json_u64(j, "midstream", st->flows_midstream);
    mmtls_json_u64(j, "plain", st->flows_plain);
    mmtls_json_u64(j, "alloc_failures", st->flow_alloc_failures);
    mmtls_json_obj_close(j);
    mmtls_json_obj_open(j, "stream");
    mmtls_json_u64(j, "gaps", st->reasm_gaps);
    mmtls_json_u64(j, "overlap_diff", st->reasm_overlap_diff);
    mmtls_json_u64(j, "memcap_drops", st->reasm_memcap_drops);
    mmtls_json_u64(j, "keep_window_drops", st->reasm_keep_drops);
    mmtls_json_u64(j, "unchecked_bytes", st->reasm_unchecked_bytes);
    mmtls_json_u64(j, "memuse", e->reasm_mc.used);
    mmtls_json_u64(j, "memuse_peak", e->reasm_mc.peak);
    mmtls_json_obj_close(j);
    mmtls_json_obj_open(j, "tls");
    mmtls_json_u64(j, "sessions", st->sessions_started);
    mmtls_json_u64(j, "sessions_active", st->sessions_active);
    mmtls_json_u64(j, "sessions_peak", st->sessions_peak);
    mmtls_json_u64(j, "records", st->records);
    mmtls_json_u64(j, "records_decrypted", st->records_decrypted);
    mmtls_json_u64(j, "records_undecrypted", st->records_undecrypted);
    mmtls_json_u64(j, "records_skipped", st->records_skipped);
    mmtls_json_u64(j, "plain_bytes", st->plain_bytes);
    mmtls_json_u64(j, "blocked", st->blocked_sessions);
    mmtls_json_obj_open(j, "inline");
    mmtls_json_u64(j, "frames_held", st->frames_held);
    mmtls_json_u64(j, "frames_released", st->frames_released);
    mmtls_json_u64(j, "frames_split", st->frames_split);
    mmtls_json_u64(j, "key_waits_partial", st->key_waits_partial);
    mmtls_json_u64(j, "frames_dropped", st->frames_dropped);
    mmtls_json_u64(j, "rst_sent", st->rst_sent);
    mmtls_json_u64(j, "blocked_missing_keys", st->blocked_missing_keys);
    mmtls_json_u64(j, "non_tls_blocked", st->non_tls_blocked);
    mmtls_json_u64(j, "evasion_blocked", st->evasion_blocked);
    mmtls_json_u64(j, "csum_unverified", st->csum_unverified);
    mmtls_json_u64(j, "urg_cleared", st->urg_cleared);
    mmtls_json_u64(j, "urg_frag_dropped", st->urg_frag_dropped);
    mmtls_json_u64(j, "wrong_side_dropped", st->wrong_side_dropped);
    mmtls_json_u64(j, "data_before_synack_dropped", st->data_before_synack_dropped);
    mmtls_json_u64(j, "rst_ignored", st->rst_ignored);
    mmtls_json_u64(j, "flows_reopened", st->flows_reopened);
    if (st->test_tampered != 0)
        mmtls_json_u64(j, "test_tampered", st->test_tampered);
    {
        /* key stall percentiles from the log2 histogram (upper bucket bounds, µs) */
        uint64_t n = 0, acc = 0;
        static const struct {
            const char *name;
            unsigned pct;
        } q[] = {{"p50", 50}, {"p90", 90}, {"p99", 99}};
        for (int i = 0; i < 32; i++)
            n += st->key_stall_hist[i];
        mmtls_json_obj_open(j, "key_stall_us");
        mmtls_json_u64(j, "count", n);
        for (size_t k = 0; k < MMTLS_ARRAY_SIZE(q); k++) {
            uint64_t want = (n * q[k].pct + 99) / 100;
            acc = 0;
            for (int i = 0; i < 32 && n > 0; i++) {
                acc += st->key_stall_hist[i];
                if (acc >= want) {
                    mmtls_json_u64(j, q[k].name, i == 0 ? 1 : 1ull << i);
                    break;
                }
            }
        }
        mmtls_json_u64(j, "max", st->key_stall_max_us);
        mmtls_json_u64(j, "undelayed", st->key_waits_undelayed);
        mmtls_json_obj_close(j);
    }
    mmtls_json_obj_close(j);
    mmtls_json_obj_open(j, "keys");
    mmtls_json_u64(j, "received", st->keys_received);
    mmtls_json_u64(j, "matched", st->keys_matched);
    mmtls_json_u64(j, "bypass", st->bypass_received);
    mmtls_json_u64(j, "bypass_refused", st->bypass_refused);
    mmtls_json_u64(j, "duplicate", st->keys_duplicate);
    mmtls_json_u64(j, "conflict", st->keys_conflict);
    mmtls_json_u64(j, "rejected_owner", st->keys_rejected_owner);
    mmtls_json_u64(j, "pending_expired", st->keys_pending_expired);
    mmtls_json_u64(j, "pending_dropped", st->keys_pending_dropped);
    mmtls_json_u64(j, "records_held", st->records_held);
    mmtls_json_u64(j, "records_released", st->records_released);
    mmtls_json_u64(j, "holds_expired", st->holds_expired);
    mmtls_json_u64(j, "holds_over_cap", st->holds_over_cap);
    mmtls_json_u64(j, "held_bytes", e->held_total);
    mmtls_json_u64(j, "held_peak", st->held_peak);
    mmtls_json_u64(j, "pending", e->npend);
    mmtls_json_u64(j, "pending_peak", st->keys_pending_peak);
    if (e->o.keys != NULL) {
        struct mmtls_keystore_stats ks;
        mmtls_keystore_get_stats(e->o.keys, &ks);
        mmtls_json_u64(j, "store_entries", ks.entries);
        mmtls_json_u64(j, "store_full", ks.full);
    }
    mmtls_json_obj_close(j);
    mmtls_json_obj_open(j, "errors");
    for (int i = 1; i <= MMTLS_TLSERR_MAX; i++) {
        if (st->tls_errors[i] != 0)
            mmtls_json_u64(j, mmtls_tls_error_name(i), st->tls_errors[i]);
    }
    mmtls_json_obj_close(j);
    mmtls_json_obj_close(j);
    mmtls_json_obj_open(j, "exception");
    for (int res = 0; res < MMTLS_EXC_N; res++) {
        mmtls_json_obj_open(j, mmtls_exc_res_name(res));
        mmtls_json_str(j, "policy", e->o.exc_policy[res] == MMTLS_EXC_OPEN ? "open" : "closed");
        mmtls_json_u64(j, "closed", st->exc[res][MMTLS_EXC_ACT_CLOSED]);
        mmtls_json_u64(j, "open", st->exc[res][MMTLS_EXC_ACT_OPEN]);
        mmtls_json_u64(j, "offline", st->exc[res][MMTLS_EXC_ACT_OFFLINE]);
        mmtls_json_obj_close(j);
    }
    mmtls_json_obj_close(j);
}
