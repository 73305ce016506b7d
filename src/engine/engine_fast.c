/* engine_fast — the engine's side of the kernel fast path (docs/FASTPATH.md).
 *
 * After each inline frame the engine tells on_flow_state what the kernel may do with the
 * flow's frames (by direction, as the endpoint index of the sender):
 *  - INSPECT: the engine needs every byte, but only frames that complete a TLS record can
 *    change a verdict (DESIGN §3 rule 3): the kernel forwards the others and copies them;
 *  - DIVERT: the engine decides every frame (plain-stream sessions, framing being recovered,
 *    out-of-order bytes buffered, the test-only tamper mode);
 *  - SKIP: the direction is paused for good (inspection depth): forwarded uncopied, the kernel
 *    still follows the record framing so that inspection resumes at a record boundary;
 *  - BYPASS: not TLS, or a bypassed session: forwarded uncopied;
 *  - BLOCK: a blocked session, or a flow refused by policy: dropped.
 * When a skip ends the kernel diverts the frame that carries the next record header and
 * mmtls_engine_fast_resume says where it is and how many records went by: the reassembler and
 * the record layer jump there (the skipped records take their sequence numbers, as the
 * engine's own pause does) without raising a gap.
 */
#include "engine/engine_int.h"

#include "io/io.h"

void mmtls_engine_fast_resume(struct mmtls_engine *e, uint32_t seq, uint32_t nskip, bool lost)
{
    e->fast_resume.on = true;
    e->fast_resume.seq = seq;
    e->fast_resume.nskip = nskip;
    e->fast_resume.lost = lost;
}

void mmtls_engine_fast_inorder(struct mmtls_engine *e)
{
    e->fast_inorder = true;
}

uint64_t mmtls_engine_fast_copies_lost(const struct mmtls_engine *e)
{
    return e->fast_copies_lost;
}

void mmtls_engine_fast_sync_next(struct mmtls_engine *e)
{
    e->fast_want_sync = true;
}

/* Where the engine's framing of direction dir stands, if it can tell exactly. */
static void dir_sync(const struct eng_flow *ef, int dir, struct mmtls_engine_fast_sync *y)
{
    const struct mmtls_reasm *r = &ef->r[dir];
    const struct eng_session *s = ef->s;
    const struct eng_tdir *d;
    uint64_t hdr;

    memset(y, 0, sizeof(*y));
    if (s == NULL || !s->started || s->plain || s->not_tls || !r->started || r->ooo != NULL)
        return;
    d = &s->d[dir];
    if (d->dead || d->resync)
        return;
    if (d->rbuf.len == 0) {
        if (d->next_off != r->next_off)
            return;
        hdr = d->next_off;
    } else if (d->rbuf.len >= MMTLS_TLS_HDR_LEN && d->next_off + d->rbuf.len == r->next_off) {
        hdr = d->next_off + MMTLS_TLS_HDR_LEN + ((size_t)d->rbuf.p[3] << 8 | d->rbuf.p[4]);
    } else {
        return; /* a header split across frames */
    }
    y->valid = true;
    y->end_seq = (uint32_t)(r->base_seq + r->next_off);
    y->hdr_seq = (uint32_t)(r->base_seq + hdr);
}

static void skip_data(void *ud, uint64_t off, const uint8_t *p, size_t len)
{
    (void)ud, (void)off, (void)p, (void)len; /* nothing is buffered beyond the skip */
}

static void skip_event(void *ud, enum mmtls_reasm_event ev, uint64_t off, uint64_t len)
{
    (void)ud, (void)ev, (void)off, (void)len; /* the skipped bytes: not a capture gap */
}

/* A frame the kernel saw in order has a hole before it here: a copy was lost. */
static void check_inorder(struct mmtls_engine *e, struct eng_flow *ef, int dir, uint32_t seq)
{
    struct mmtls_reasm *r = &ef->r[dir];
    struct eng_session *s = ef->s;

    e->fast_inorder = false;
    if (!r->started || ef->stop || mmtls_reasm_seq_to_off(r, seq) <= r->next_off)
        return;
    if (s != NULL && s->started && !s->plain)
        e->verdict = MMTLS_PKT_DROP; /* the reassembler keeps its bytes; the sender resends */
}

void eng_fast_gap(struct eng_session *s, int dir, uint64_t off)
{
    struct mmtls_engine *e = s->eng;

    if (e->fast_skipping || !s->started || s->plain || s->not_tls || s->info.blocked)
        return;
    e->fast_copies_lost++;
    eng_error(s, MMTLS_TLSERR_GAP, dir, off, "fast path: the copy of a forwarded frame was lost");
    mmtls_session_block((struct mmtls_session *)s, "fast path: copy lost");
}

void eng_fast_resume(struct mmtls_engine *e, struct eng_flow *ef, int dir, uint32_t pkt_seq,
                     const struct mmtls_reasm_sink *sink)
{
    struct mmtls_reasm *r = &ef->r[dir];
    struct mmtls_reasm_sink skip = {NULL, skip_data, skip_event};
    struct eng_session *s = ef->s;
    uint32_t seq = e->fast_resume.seq;
    uint64_t to, from;

    if (!e->fast_resume.on) {
        if (e->fast_inorder)
            check_inorder(e, ef, dir, pkt_seq);
        return;
    }
    e->fast_inorder = false;
    e->fast_resume.on = false;
    ef->fast_again[dir] = true; /* a new skip needs a new generation */
    if (!r->started || ef->stop)
        return;
    to = mmtls_reasm_seq_to_off(r, seq);
    from = r->next_off;
    if (to <= from)
        return; /* nothing was skipped before this frame */
    if (s != NULL && s->started && !s->plain && !s->not_tls) {
        bool asked = s->d[dir].fast_consented;
        s->d[dir].fast_consented = false;
        if (!asked && !s->info.blocked) {
            /* Cannot happen by design (engine_fast.c dir_budget): fail closed if it does. */
            e->fast_copies_lost++;
            eng_error(s, MMTLS_TLSERR_GAP, dir, from,
                      "fast path: the kernel skipped bytes the engine had not paused");
            mmtls_session_block((struct mmtls_session *)s, "fast path: skip not asked for");
            return;
        }
    }
    if (e->fast_resume.lost || s == NULL || r->ooo != NULL || s->plain || !s->started ||
        s->d[dir].dead || s->d[dir].resync) {
        /* No framing to resume with: the skipped bytes are a gap, resynchronised after. */
        e->fast_skipping = true;
        mmtls_reasm_ack(r, seq, sink);
        e->fast_skipping = false;
        return;
    }
    {
        struct eng_tdir *d = &s->d[dir];
        /* A record whose header the engine had read was skipped too (the kernel counts the
         * headers it read itself). */
        uint64_t n = (uint64_t)e->fast_resume.nskip + (d->rbuf.len >= MMTLS_TLS_HDR_LEN ? 1 : 0);

        mmtls_reasm_ack(r, seq, &skip);
        if (!ef->seen_any[dir] || ef->seen_end[dir] < to)
            ef->seen_end[dir] = to;
        ef->seen_any[dir] = true;
        d->rbuf.len = 0;
        d->next_off = to;
        if (s->tls13) {
            if (d->cur == K_APP)
                d->k[K_APP].seq += n;
        } else {
            d->seq12 += n;
        }
        s->info.dir[dir].skipped_bytes += to - from;
        e->st.records_skipped += n;
    }
}

/* What the kernel may do with direction dir's frames. */
static uint8_t dir_mode(const struct mmtls_engine *e, const struct eng_flow *ef, int dir)
{
    const struct eng_session *s = ef->s;
    const struct eng_tdir *d;

    if (ef->refused || (s != NULL && s->info.blocked))
        return MMTLS_FASTM_BLOCK;
    if (ef->stop || ef->bypassed) {
        if (e->o.block_non_tls && !ef->bypassed && (s == NULL || s->not_tls || s->plain))
            return MMTLS_FASTM_BLOCK;
        return MMTLS_FASTM_BYPASS;
    }
    if (e->o.tamper_len > 0 || ef->r[dir].ooo != NULL)
        return MMTLS_FASTM_DIVERT;
    if (s == NULL)
        return MMTLS_FASTM_INSPECT; /* the kernel frames the first bytes as the engine will */
    if (s->plain)
        return MMTLS_FASTM_DIVERT; /* plain streams are inspected per delivery, not per record */
    if (s->ks.have & MMTLS_KS_BYPASS)
        return MMTLS_FASTM_BYPASS;
    d = &s->d[dir];
    if (d->dead || d->resync)
        return MMTLS_FASTM_DIVERT;
    /* Paused for good (inspection depth), where the engine would skip records whole. */
    if (d->pause_left == UINT64_MAX && s->started && eng_dir_skippable(s, dir))
        return MMTLS_FASTM_SKIP;
    return MMTLS_FASTM_INSPECT;
}

/* The wire count the kernel applies itself (INSPECT only; 0: none).  The kernel counts the
 * application-data headers it reads from the first frame after it sees a new generation; the
 * engine counts from the call to mmtls_session_pause_after_wire, which comes earlier in the
 * stream (frames the kernel reads after this publish reach the engine after it), so the engine
 * always pauses at or before the record where the kernel stops copying. */
static uint32_t dir_budget(const struct eng_flow *ef, int dir, uint8_t mode)
{
    const struct eng_session *s = ef->s;
    const struct eng_tdir *d;

    if (mode != MMTLS_FASTM_INSPECT || s == NULL || !s->started || s->plain)
        return 0;
    d = &s->d[dir];
    if (d->wire_budget == 0 || d->wire_left == 0 || !eng_dir_skippable(s, dir))
        return 0;
    return (uint32_t)MMTLS_MIN(d->wire_left, (uint64_t)UINT32_MAX);
}

void eng_fast_publish(struct mmtls_engine *e, struct eng_flow *ef)
{
    struct mmtls_flow *f = ef->flow;
    uint8_t mode[2];
    uint32_t gen[2], budget[2];
    struct mmtls_engine_fast_sync sync[2];
    bool change = !ef->fast_told, want_sync = e->fast_want_sync;

    e->fast_want_sync = false;
    if (e->o.on_flow_state == NULL || f == NULL)
        return;
    for (int dir = 0; dir < 2; dir++) {
        /* endpoint index of the sender of direction dir */
        int ep = dir == 0 ? f->client : !f->client;
        uint8_t m = dir_mode(e, ef, dir);
        struct eng_tdir *d = ef->s != NULL ? &ef->s->d[dir] : NULL;
        bool wire_paused = d != NULL && d->wire_paused;
        uint32_t b = dir_budget(ef, dir, m);
        gen[ep] = ef->fast_gen[ep];
        /* the count left when the kernel is told a new generation; unchanged until the next */
        budget[ep] = b != 0 ? ef->fast_budget[ep] : 0;
        if (m == MMTLS_FASTM_SKIP) {
            /* A pause of the wire count keeps the count's generation: the kernel may be
             * skipping under it already, and a new one would end that skip. */
            if (wire_paused ? ef->fast_again[dir]
                            : (ef->fast_mode[ep] != MMTLS_FASTM_SKIP || ef->fast_again[dir] ||
                               !ef->fast_told))
                gen[ep]++;
            if (d != NULL)
                d->fast_consented = true;
        } else if (b != 0 && ((d != NULL && d->wire_rearm) || ef->fast_budget[ep] == 0)) {
            gen[ep]++; /* a new count: the kernel starts counting at its next frame */
            budget[ep] = b;
        }
        if (d != NULL && m != MMTLS_FASTM_SKIP)
            d->wire_rearm = false;
        if (gen[ep] != ef->fast_gen[ep] || budget[ep] != ef->fast_budget[ep])
            change = true;
        ef->fast_again[dir] = false;
        if (m != ef->fast_mode[ep])
            change = true;
        mode[ep] = m;
        memset(&sync[ep], 0, sizeof(sync[ep]));
        if (want_sync && m == MMTLS_FASTM_INSPECT) {
            dir_sync(ef, dir, &sync[ep]);
            change = change || sync[ep].valid;
        }
    }
    if (!change)
        return;
    e->o.on_flow_state(e->o.on_flow_state_ud, &f->key, mode, gen, budget, want_sync ? sync : NULL,
                       false);
    ef->fast_told = true;
    memcpy(ef->fast_mode, mode, sizeof(mode));
    memcpy(ef->fast_gen, gen, sizeof(gen));
    memcpy(ef->fast_budget, budget, sizeof(budget));
}

void eng_fast_flow_end(struct mmtls_engine *e, struct eng_flow *ef)
{
    if (e->o.on_flow_state == NULL || !ef->fast_told || ef->flow == NULL)
        return;
    e->o.on_flow_state(e->o.on_flow_state_ud, &ef->flow->key, ef->fast_mode, ef->fast_gen,
                       ef->fast_budget, NULL, true);
    ef->fast_told = false;
}
