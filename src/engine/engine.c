/* engine — packet path, flows, reassembly glue, app registry and the session API.
 * The TLS state machine lives in engine_tls.c. */
#include "engine/engine_int.h"

#include <stdlib.h>

void mmtls_engine_opts_default(struct mmtls_engine_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->sz = sizeof(*o);
    o->flow.max_flows = 65536;
    o->flow.idle_timeout_ms = 600 * 1000;
    o->flow.closed_timeout_ms = 10 * 1000;
    o->reasm.max_ooo_bytes = 1u << 20;
    o->reasm.max_kept_bytes = 256u << 10;
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

    if (dir == MMTLS_DIR_TO_SERVER || dir == MMTLS_DIR_TO_CLIENT)
        s->d[dir].pause_left = nbytes;
}

void mmtls_session_resume(struct mmtls_session *ss, enum mmtls_dir dir)
{
    mmtls_session_pause(ss, dir, 0);
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

    (void)why;
    if (ef == NULL)
        return;
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
    }
    mmtls_reasm_fini(&ef->r[0]);
    mmtls_reasm_fini(&ef->r[1]);
    free(ef);
    f->ud = NULL;
    (void)e;
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
        ef->s = eng_session_new(ef->eng, ef->flow);
        if (ef->s == NULL) {
            ef->stop = true;
            ef->eng->st.flow_alloc_failures++;
            return;
        }
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
        if (ef->s != NULL && !ef->stop)
            eng_tls_gap(ef->s, c->dir, off, len);
        else if (ef->s == NULL && c->dir == 0 && off == 0)
            ef->midstream = true; /* the start of the client stream is missing */
        break;
    case MMTLS_REASM_EV_OVERLAP_DIFF:
        e->st.reasm_overlap_diff++;
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
    case MMTLS_REASM_EV_SEGMENT_LIMIT:
        e->st.reasm_memcap_drops++;
        if (ef->s != NULL && !ef->stop)
            eng_error(ef->s, MMTLS_TLSERR_MEMCAP, c->dir, off, "reassembly cap reached");
        break;
    case MMTLS_REASM_EV_FIN: break;
    }
}

static void handle_tcp(struct mmtls_engine *e, const struct mmtls_pkt *pkt)
{
    struct mmtls_flow *f;
    struct eng_flow *ef;
    int sender, dir, rc;

    rc = mmtls_flow_get(e->flows, pkt, e->now_us, &f, &sender);
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
        /* Without a SYN from the client, the capture started mid-flow. */
        if (!(pkt->tcp_flags & MMTLS_TCP_SYN))
            ef->midstream = true;
    }
    dir = mmtls_flow_dir(f, sender);
    if (e->inline_mode)
        eng_inline_note(e, ef, dir, pkt);
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

    if (pkt->tcp_flags & MMTLS_TCP_SYN) {
        mmtls_reasm_syn(r, pkt->seq);
    } else if (pkt->payload_len > 0 || (pkt->tcp_flags & MMTLS_TCP_FIN)) {
        /* Track the highest offset seen in this direction: acknowledgements beyond it are
         * capture loss; below it, reordering that reassembly resolves. */
        if (e->inline_mode && e->o.tamper_len > 0) {
            e->cur_pkt = pkt;
            e->cur_payload_off = r->started ? mmtls_reasm_seq_to_off(r, pkt->seq) : UINT64_MAX;
        }
        (void)mmtls_reasm_segment(r, pkt->seq, pkt->payload, pkt->payload_len,
                                  (pkt->tcp_flags & MMTLS_TCP_FIN) != 0, &sink);
        e->cur_pkt = NULL;
        if (r->started) {
            uint64_t end = mmtls_reasm_seq_to_off(r, pkt->seq) + pkt->payload_len;
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
    if (e->inline_mode && e->o.block_non_tls &&
        ((ef->stop && !(ef->s != NULL && ef->s->started)) || (ef->s != NULL && ef->s->plain))) {
        e->st.non_tls_blocked++;
        e->verdict = MMTLS_PKT_DROP;
    }
}

int mmtls_engine_packet(struct mmtls_engine *e, int linktype, const uint8_t *data, size_t len,
                        uint64_t ts_us)
{
    struct mmtls_pkt pkt;
    enum mmtls_decode_event dev;

    e->verdict = MMTLS_PKT_FORWARD;
    e->st.packets++;
    e->st.bytes += len;
    if (ts_us > e->now_us)
        e->now_us = ts_us;
    mmtls_engine_poll_keys(e); /* after the clock: waiting keys are stamped with engine time */
    if (e->now_us >= e->last_tick_us + 1000000) {
        mmtls_engine_tick(e, e->now_us);
        e->last_tick_us = e->now_us;
    }
    if (e->wait_head != NULL || e->pend_old != NULL)
        eng_keys_tick(e); /* key waits are shorter than the flow tick */
    memset(&pkt, 0, sizeof(pkt));
    pkt.ts_us = ts_us;
    dev = mmtls_decode_frame(linktype, data, len, &e->o.decode, &pkt);
    if (dev == MMTLS_DEC_IP_FRAGMENT) {
        const uint8_t *dg;
        size_t dglen;
        e->st.fragments++;
        e->st.decode_events[dev]++;
        if (mmtls_defrag_feed(e->defrag, &pkt, e->now_us, &dg, &dglen) != 0)
            return e->verdict;
        e->st.reassembled_datagrams++;
        dev = mmtls_decode_ip(dg, dglen, &e->o.decode, &pkt);
        if (dev == MMTLS_DEC_IP_FRAGMENT)
            dev = MMTLS_DEC_IPV4_BAD_LEN; /* a rebuilt datagram must not be a fragment */
    }
    if (dev != MMTLS_DEC_OK) {
        e->st.decode_events[dev]++;
        return e->verdict;
    }
    e->st.tcp_packets++;
    handle_tcp(e, &pkt);
    return e->verdict;
}

void mmtls_engine_tick(struct mmtls_engine *e, uint64_t now_us)
{
    if (now_us > e->now_us)
        e->now_us = now_us;
    (void)mmtls_flow_expire(e->flows, e->now_us);
    mmtls_defrag_expire(e->defrag, e->now_us);
    eng_keys_tick(e);
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
    struct mmtls_engine *e;
    int rc;

    if (o == NULL || o->sz < sizeof(*o))
        return MMTLS_E_INVAL;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return MMTLS_E_NOMEM;
    e->o = *o;
    e->reasm_mc.limit = o->reasm_memcap;
    e->scratch = malloc(ENG_REC_MAX);
    if (e->scratch == NULL) {
        rc = MMTLS_E_NOMEM;
        goto out_free;
    }
    rc = mmtls_flow_table_new(&e->flows, &o->flow, flow_release, e);
    if (rc != 0)
        goto out_free_scratch;
    rc = mmtls_defrag_new(&e->defrag, &o->defrag);
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
    }
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
    mmtls_json_u64(j, "memuse_peak", e->reasm_mc.peak);
    mmtls_json_obj_close(j);
    mmtls_json_obj_open(j, "tls");
    mmtls_json_u64(j, "sessions", st->sessions_started);
    mmtls_json_u64(j, "records", st->records);
    mmtls_json_u64(j, "records_decrypted", st->records_decrypted);
    mmtls_json_u64(j, "records_undecrypted", st->records_undecrypted);
    mmtls_json_u64(j, "records_skipped", st->records_skipped);
    mmtls_json_u64(j, "plain_bytes", st->plain_bytes);
    mmtls_json_u64(j, "blocked", st->blocked_sessions);
    mmtls_json_obj_open(j, "inline");
    mmtls_json_u64(j, "frames_held", st->frames_held);
    mmtls_json_u64(j, "frames_released", st->frames_released);
    mmtls_json_u64(j, "frames_dropped", st->frames_dropped);
    mmtls_json_u64(j, "rst_sent", st->rst_sent);
    mmtls_json_u64(j, "blocked_missing_keys", st->blocked_missing_keys);
    mmtls_json_u64(j, "non_tls_blocked", st->non_tls_blocked);
    mmtls_json_u64(j, "evasion_blocked", st->evasion_blocked);
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
    mmtls_json_obj_close(j);
    mmtls_json_obj_open(j, "errors");
    for (int i = 1; i <= MMTLS_TLSERR_MAX; i++) {
        if (st->tls_errors[i] != 0)
            mmtls_json_u64(j, mmtls_tls_error_name(i), st->tls_errors[i]);
    }
    mmtls_json_obj_close(j);
    mmtls_json_obj_close(j);
}
