/* detect — workers and per-flow state: buffer instances, Vectorscan streams, candidates,
 * evaluation rounds and reporting. */
#include <stdlib.h>
#include <string.h>

#include "detect/detect_int.h"

#define JIT_STACK_MIN (32u * 1024u)
#define JIT_STACK_MAX (512u * 1024u)
/* Raw evaluations cost the window length each and are paid from a per-direction credit that
 * every piece refills, so tiny chunks cannot make the evaluator rescan a 64 KB window per byte
 * (an evaluation that cannot be paid waits for more data or the flow end). */
#define RAW_CREDIT_PIECE 4096u /* credit per piece */
#define RAW_CREDIT_BYTE 256u   /* credit per byte of the piece */
#define RAW_EVAL_BASE 64u      /* cost of one evaluation on top of the window length */

/* One buffer instance (detect.h: "Buffer instances"). */
struct inst {
    hs_stream_t *hs; /* owned; NULL when closed or when its kind has no database */
    uint8_t *p;      /* owned: retained bytes, cap <= retain_max */
    size_t len, cap;
    uint64_t base;  /* instance offset of p[0] (raw window) */
    uint64_t total; /* bytes fed */
    uint64_t gen;   /* worker-unique stamp, renewed when p changes (lower-case cache key) */
    uint8_t db;     /* database kind */
    bool open;      /* first chunk seen */
    bool complete;  /* last chunk seen */
};

struct pend {
    uint32_t rule;
    uint64_t hit_soff;  /* start of the piece that produced the hit */
    uint64_t eval_soff; /* window end at the last evaluation */
};

struct tx {
    uint64_t id;
    uint64_t seq; /* creation order, for eviction */
    bool used;
    uint16_t present[2], complete[2];          /* bit per buffer, per direction */
    struct inst *in[2][MMTLS_RULES_BUF_COUNT]; /* owned, allocated on first use */
    uint64_t *bits;                            /* owned: cand[0], cand[1], fired */
};

struct mmtls_detect_flow {
    struct mmtls_detect_worker *w; /* borrowed */
    const struct mmtls_detect *d;  /* borrowed */
    struct mmtls_detect_tuple t;
    mmtls_detect_cb cb;
    void *ctx; /* borrowed: for cb */
    uint8_t services;
    bool passed, stopped, ended;
    struct inst raw[2];
    uint64_t *raw_fired;  /* owned: 2 bitmaps */
    struct pend *pend[2]; /* owned: raw_pending_max entries each */
    uint32_t npend[2];
    uint64_t nofp_soff[2]; /* window end when the no-fp raw rules were last evaluated */
    bool nofp_done[2];     /* evaluated at least once */
    uint64_t credit[2];    /* raw evaluation credit (see RAW_CREDIT_PIECE) */
    struct inst sni;
    uint64_t *sni_bits; /* owned: cand, fired */
    uint8_t sni_dir;
    struct tx *tx; /* owned: max_tx slots */
    uint64_t tx_seq;
};

/* ------------------------------------------------------------------------------------------ */
/* Worker                                                                                      */

int mmtls_detect_worker_new(struct mmtls_detect_worker **out, const struct mmtls_detect *d)
{
    struct mmtls_detect_worker *w;

    *out = NULL;
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return MMTLS_E_NOMEM;
    }
    w->d = d;
    for (unsigned k = 0; k < MMTLS_DETECT_DB_COUNT; k++) {
        if (d->db[k].db != NULL && hs_alloc_scratch(d->db[k].db, &w->scratch) != HS_SUCCESS) {
            goto out_free;
        }
    }
    w->md = pcre2_match_data_create(1, NULL);
    w->mctx = pcre2_match_context_create(NULL);
    w->mctx_o = pcre2_match_context_create(NULL);
    w->lower = malloc(d->opts.retain_max);
    w->hits = calloc(d->max_pat + 1, sizeof(*w->hits));
    w->hit_seen = calloc(d->max_pat / 64 + 1, sizeof(uint64_t));
    w->round = calloc(d->nrules + 1, sizeof(*w->round));
    if (w->md == NULL || w->mctx == NULL || w->mctx_o == NULL || w->lower == NULL ||
        w->hits == NULL || w->hit_seen == NULL || w->round == NULL) {
        goto out_free;
    }
    if (pcre2_set_match_limit(w->mctx, d->opts.pcre_match_limit) != 0 ||
        pcre2_set_depth_limit(w->mctx, d->opts.pcre_depth_limit) != 0) {
        goto out_free;
    }
    if (!d->opts.no_jit) {
        w->jit = pcre2_jit_stack_create(JIT_STACK_MIN, JIT_STACK_MAX, NULL);
        if (w->jit != NULL) {
            pcre2_jit_stack_assign(w->mctx, NULL, w->jit);
            pcre2_jit_stack_assign(w->mctx_o, NULL, w->jit);
        }
    }
    *out = w;
    return 0;
out_free:
    mmtls_detect_worker_free(w);
    return MMTLS_E_NOMEM;
}

void mmtls_detect_worker_free(struct mmtls_detect_worker *w)
{
    if (w == NULL) {
        return;
    }
    hs_free_scratch(w->scratch);
    pcre2_match_data_free(w->md);
    pcre2_match_context_free(w->mctx);
    pcre2_match_context_free(w->mctx_o);
    pcre2_jit_stack_free(w->jit);
    free(w->lower);
    free(w->hits);
    free(w->hit_seen);
    free(w->round);
    free(w);
}

void mmtls_detect_counters_get(const struct mmtls_detect_worker *w, struct mmtls_detect_counters *c)
{
    *c = w->c;
}

/* ------------------------------------------------------------------------------------------ */
/* Instances                                                                                   */

static int on_hit(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                  void *ctx)
{
    struct mmtls_detect_worker *w = ctx;

    (void)from, (void)to, (void)flags;
    if (id <= w->d->max_pat && !mmtls_detect_bit(w->hit_seen, id)) {
        mmtls_detect_bit_set(w->hit_seen, id);
        w->hits[w->nhits++] = id;
    }
    return 0;
}

static void hits_clear(struct mmtls_detect_worker *w)
{
    for (uint32_t i = 0; i < w->nhits; i++) {
        mmtls_detect_bit_clr(w->hit_seen, w->hits[i]);
    }
    w->c.fp_hits += w->nhits;
    w->nhits = 0;
}

static void inst_close(struct mmtls_detect_worker *w, struct inst *in, bool flush)
{
    if (in->hs != NULL) {
        if (hs_close_stream(in->hs, w->scratch, flush ? on_hit : NULL, w) != HS_SUCCESS) {
            w->c.hs_errors++;
        }
        in->hs = NULL;
        w->c.streams_open--;
        w->c.stream_bytes -= w->d->info.db[in->db].stream_bytes;
    }
}

static void inst_fini(struct mmtls_detect_worker *w, struct inst *in)
{
    inst_close(w, in, false);
    w->retained -= in->cap;
    w->c.retained_bytes = w->retained;
    free(in->p);
    memset(in, 0, sizeof(*in));
}

static int inst_open(struct mmtls_detect_worker *w, struct inst *in, unsigned db)
{
    in->db = (uint8_t)db;
    in->open = true;
    if (w->d->db[db].db != NULL) {
        if (hs_open_stream(w->d->db[db].db, 0, &in->hs) != HS_SUCCESS) {
            in->hs = NULL;
            w->c.hs_errors++;
            return MMTLS_E_NOMEM;
        }
        w->c.streams_opened++;
        w->c.streams_open++;
        w->c.stream_bytes += w->d->info.db[db].stream_bytes;
    }
    return 0;
}

/* Makes room for `need` bytes in in->p (up to retain_max), charging the worker memcap.
 * Returns how many bytes fit. */
static size_t inst_room(struct mmtls_detect_worker *w, struct inst *in, size_t need)
{
    size_t want = in->len + need, ncap;
    uint8_t *np;

    if (want <= in->cap) {
        return need;
    }
    ncap = in->cap ? in->cap : 256;
    while (ncap < want) {
        ncap *= 2;
    }
    ncap = MMTLS_MIN(ncap, w->d->opts.retain_max);
    if (ncap - in->cap > w->d->opts.memcap - MMTLS_MIN(w->retained, w->d->opts.memcap)) {
        return in->cap - in->len;
    }
    np = realloc(in->p, ncap);
    if (np == NULL) {
        return in->cap - in->len;
    }
    w->retained += ncap - in->cap;
    w->c.retained_bytes = w->retained;
    if (w->retained > w->c.retained_peak) {
        w->c.retained_peak = w->retained;
    }
    in->p = np;
    in->cap = ncap;
    return MMTLS_MIN(need, ncap - in->len);
}

static void inst_scan(struct mmtls_detect_worker *w, struct inst *in, const uint8_t *p, size_t len)
{
    if (in->hs == NULL || len == 0) {
        return;
    }
    w->c.scanned_bytes += len;
    if (hs_scan_stream(in->hs, (const char *)p, (unsigned)len, 0, w->scratch, on_hit, w) !=
        HS_SUCCESS) {
        w->c.hs_errors++;
    }
}

static void ebuf_of(const struct inst *in, struct mmtls_detect_ebuf *e)
{
    e->p = in->p;
    e->len = in->len;
    e->base = in->base;
    e->key = in;
    e->gen = in->gen;
}

/* ------------------------------------------------------------------------------------------ */
/* Rounds                                                                                      */

static int round_cmp(const void *x, const void *y, const struct mmtls_detect *d)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    uint8_t ra = d->rules[a].rank, rb = d->rules[b].rank;

    if (ra != rb) {
        return ra < rb ? -1 : 1;
    }
    return a < b ? -1 : a > b;
}

static void round_sort(struct mmtls_detect_worker *w)
{
    /* insertion sort: rounds are short */
    for (uint32_t i = 1; i < w->nround; i++) {
        uint32_t v = w->round[i], j = i;

        while (j > 0 && round_cmp(&w->round[j - 1], &v, w->d) > 0) {
            w->round[j] = w->round[j - 1];
            j--;
        }
        w->round[j] = v;
    }
}

/* Reports the matches of the round in action order; a pass rule passes the flow. */
static void round_report(struct mmtls_detect_flow *f, unsigned dir, uint64_t tx, unsigned buf,
                         uint64_t soff)
{
    struct mmtls_detect_worker *w = f->w;
    bool pass;

    if (w->nround == 0) {
        return;
    }
    round_sort(w);
    pass = f->d->rules[w->round[0]].rank == 0;
    for (uint32_t i = 0; i < w->nround; i++) {
        const struct mmtls_detect_rule *dr = &f->d->rules[w->round[i]];
        struct mmtls_detect_match m;

        if ((pass && dr->rank != 0) || f->stopped) {
            w->c.suppressed++;
            continue;
        }
        m.rule = dr->r;
        m.dir = (enum mmtls_detect_dir)dir;
        m.buf = dr->cls == MMTLS_DETECT_CLS_RAW ? MMTLS_RULES_BUF_PKT
                : dr->has_fp                    ? dr->fp_buf
                : buf < MMTLS_RULES_BUF_COUNT   ? buf
                                                : dr->lbuf[0];
        m.tx = tx;
        m.soff = soff;
        w->c.reported++;
        if (f->cb != NULL && f->cb(f->ctx, &m) != 0) {
            f->stopped = true;
        }
    }
    if (pass && !f->passed) {
        f->passed = true;
        w->c.flows_passed++;
    }
    w->nround = 0;
}

/* Full evaluation of rule i on data of direction dir; adds it to the round on a match. */
static bool eval_rule(struct mmtls_detect_flow *f, uint32_t i, unsigned dir, uint8_t ctx_svc,
                      const struct mmtls_detect_ebuf *const eb[MMTLS_RULES_BUF_COUNT])
{
    struct mmtls_detect_worker *w = f->w;
    const struct mmtls_detect_rule *dr = &f->d->rules[i];

    if (dr->cls == MMTLS_DETECT_CLS_DEAD || !mmtls_detect_hdr_ok(dr, &f->t, dir, ctx_svc)) {
        return false;
    }
    w->c.evaluations++;
    if (!mmtls_detect_eval_items(w, dr, eb)) {
        return false;
    }
    w->c.matches++;
    w->round[w->nround++] = i;
    return true;
}

static bool active(const struct mmtls_detect_flow *f)
{
    return !f->passed && !f->stopped && !f->ended;
}

/* ------------------------------------------------------------------------------------------ */
/* Raw stream                                                                                  */

static void pend_add(struct mmtls_detect_flow *f, unsigned dir, uint32_t rule, uint64_t soff)
{
    struct pend *p = f->pend[dir];
    uint32_t n = f->npend[dir];

    for (uint32_t i = 0; i < n; i++) {
        if (p[i].rule == rule) {
            p[i].hit_soff = soff;
            p[i].eval_soff = 0; /* a new hit: evaluate now */
            return;
        }
    }
    if (n == f->d->opts.raw_pending_max) {
        /* drop the oldest hit */
        memmove(p, p + 1, (n - 1) * sizeof(*p));
        n--;
        f->w->c.pending_dropped++;
    }
    p[n].rule = rule;
    p[n].hit_soff = soff;
    p[n].eval_soff = 0;
    f->npend[dir] = n + 1;
    f->w->c.candidates++;
}

/* Evaluates the pending and no-fp raw rules of dir against the window: a pending rule when it
 * had a new hit or new bytes arrived since its last evaluation, the no-fp rules when new bytes
 * arrived; every evaluation is paid from the credit, except at the end (final). */
static void raw_round(struct mmtls_detect_flow *f, unsigned dir, bool final)
{
    struct mmtls_detect_worker *w = f->w;
    const struct mmtls_detect_dbk *db = &f->d->db[dir];
    struct inst *in = &f->raw[dir];
    uint64_t *fired = f->raw_fired + (size_t)dir * f->d->words;
    struct mmtls_detect_ebuf win;
    const struct mmtls_detect_ebuf *eb[MMTLS_RULES_BUF_COUNT] = {0};
    uint64_t end = in->base + in->len, cost = in->len + RAW_EVAL_BASE;
    struct pend *p = f->pend[dir];
    uint32_t n = 0;

    ebuf_of(in, &win);
    eb[MMTLS_RULES_BUF_PKT] = &win;
    for (uint32_t i = 0; i < f->npend[dir]; i++) {
        struct pend pe = p[i];
        bool keep = true;

        if (mmtls_detect_bit(fired, pe.rule) || pe.hit_soff < in->base) {
            keep = false; /* fired, or the hit slid out of the window */
        } else if (pe.eval_soff == 0 || end > pe.eval_soff || final) {
            if (!final && f->credit[dir] < cost) {
                w->c.raw_deferred++;
            } else {
                f->credit[dir] -= final ? MMTLS_MIN(cost, f->credit[dir]) : cost;
                pe.eval_soff = end;
                if (eval_rule(f, pe.rule, dir, f->services, eb)) {
                    mmtls_detect_bit_set(fired, pe.rule);
                    keep = false;
                } else if (!mmtls_detect_hdr_ok(&f->d->rules[pe.rule], &f->t, dir, f->services)) {
                    keep = false;
                }
            }
        }
        if (keep) {
            p[n++] = pe;
        }
    }
    f->npend[dir] = n;
    if (db->nnofp != 0 && (!f->nofp_done[dir] || end > f->nofp_soff[dir] || final)) {
        uint64_t all = cost * db->nnofp;

        if (!final && f->credit[dir] < all) {
            w->c.raw_deferred++;
        } else {
            f->credit[dir] -= final ? MMTLS_MIN(all, f->credit[dir]) : all;
            f->nofp_done[dir] = true;
            f->nofp_soff[dir] = end;
            for (uint32_t k = 0; k < db->nnofp; k++) {
                uint32_t i = db->nofp[k];

                if (!mmtls_detect_bit(fired, i)) {
                    w->c.candidates++;
                    if (eval_rule(f, i, dir, f->services, eb)) {
                        mmtls_detect_bit_set(fired, i);
                    }
                }
            }
        }
    }
    round_report(f, dir, MMTLS_DETECT_NO_TX, MMTLS_RULES_BUF_PKT, end);
}

static void raw_hits(struct mmtls_detect_flow *f, unsigned dir, uint64_t piece_soff)
{
    struct mmtls_detect_worker *w = f->w;
    const struct mmtls_detect_dbk *db = &f->d->db[dir];
    const uint64_t *fired = f->raw_fired + (size_t)dir * f->d->words;

    for (uint32_t h = 0; h < w->nhits; h++) {
        uint32_t id = w->hits[h];

        for (uint32_t j = db->pat_first[id]; j < db->pat_first[id + 1]; j++) {
            if (!mmtls_detect_bit(fired, db->pat_rules[j])) {
                pend_add(f, dir, db->pat_rules[j], piece_soff);
            }
        }
    }
    hits_clear(w);
}

/* One piece (<= retain_max / 2 bytes) of the raw stream. */
static void raw_piece(struct mmtls_detect_flow *f, unsigned dir, const uint8_t *p, size_t len)
{
    struct mmtls_detect_worker *w = f->w;
    struct inst *in = &f->raw[dir];
    size_t half = f->d->opts.retain_max / 2, fit;
    uint64_t soff = in->total;

    if (in->len + len > f->d->opts.retain_max) {
        /* slide: keep the last retain_max/2 bytes (amortised O(1) per byte) */
        size_t keep = MMTLS_MIN(in->len, half), drop = in->len - keep;

        memmove(in->p, in->p + drop, keep);
        in->len = keep;
        in->base += drop;
        in->gen = ++w->gen;
    }
    fit = inst_room(w, in, len);
    in->total += len;
    if (fit < len) {
        /* memcap: the piece is neither retained nor scanned; the window restarts after it */
        w->c.memcap_refused += len;
        in->base = in->total;
        in->len = 0;
        in->gen = ++w->gen;
        return;
    }
    memcpy(in->p + in->len, p, len);
    in->len += len;
    in->gen = ++w->gen;
    f->credit[dir] += RAW_CREDIT_PIECE + (uint64_t)RAW_CREDIT_BYTE * len;
    f->credit[dir] = MMTLS_MIN(f->credit[dir], (uint64_t)64 * f->d->opts.retain_max);
    inst_scan(w, in, p, len);
    raw_hits(f, dir, soff);
    raw_round(f, dir, false);
}

int mmtls_detect_stream(struct mmtls_detect_flow *f, enum mmtls_detect_dir dir, const uint8_t *p,
                        size_t len)
{
    unsigned d = (unsigned)dir;
    size_t half;
    int rc;

    if (f == NULL || d > 1 || (p == NULL && len > 0)) {
        return MMTLS_E_INVAL;
    }
    if (!active(f)) {
        f->w->c.late_chunks++;
        return MMTLS_DECLINED;
    }
    if (!f->d->raw_used[d] || len == 0) {
        return 0;
    }
    if (!f->raw[d].open) {
        rc = inst_open(f->w, &f->raw[d], d);
        if (rc != 0) {
            f->raw[d].open = false;
            return rc;
        }
    }
    half = f->d->opts.retain_max / 2;
    while (len > 0 && active(f)) {
        size_t n = MMTLS_MIN(len, half);

        raw_piece(f, d, p, n);
        p += n;
        len -= n;
    }
    return active(f) ? 0 : MMTLS_DECLINED;
}

static void raw_end(struct mmtls_detect_flow *f, unsigned dir)
{
    struct inst *in = &f->raw[dir];

    if (!in->open) {
        return;
    }
    inst_close(f->w, in, true);
    raw_hits(f, dir, in->base);
    if (active(f)) {
        raw_round(f, dir, true);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP transactions and tls.sni                                                               */

static uint64_t *tx_cand(struct mmtls_detect_flow *f, struct tx *t, unsigned dir)
{
    return t->bits + (size_t)dir * f->d->words;
}

static uint64_t *tx_fired(struct mmtls_detect_flow *f, struct tx *t)
{
    return t->bits + (size_t)2 * f->d->words;
}

/* Marks the rules behind the collected hits of kind db as candidates of dir. */
static void app_hits(struct mmtls_detect_flow *f, unsigned db, unsigned dir, uint64_t *cand,
                     const uint64_t *fired)
{
    struct mmtls_detect_worker *w = f->w;
    const struct mmtls_detect_dbk *k = &f->d->db[db];

    for (uint32_t h = 0; h < w->nhits; h++) {
        uint32_t id = w->hits[h];

        for (uint32_t j = k->pat_first[id]; j < k->pat_first[id + 1]; j++) {
            uint32_t i = k->pat_rules[j];

            if ((f->d->rules[i].dirs & MMTLS_DETECT_DIR_BIT(dir)) && !mmtls_detect_bit(fired, i) &&
                !mmtls_detect_bit(cand, i)) {
                mmtls_detect_bit_set(cand, i);
                w->c.candidates++;
            }
        }
    }
    hits_clear(w);
}

/* Candidates of a new instance of kind db: the no-fp rules that need it. */
static void app_nofp(struct mmtls_detect_flow *f, unsigned db, unsigned dir, uint64_t *cand,
                     const uint64_t *fired)
{
    const struct mmtls_detect_dbk *k = &f->d->db[db];

    for (uint32_t j = 0; j < k->nnofp; j++) {
        uint32_t i = k->nofp[j];

        if ((f->d->rules[i].dirs & MMTLS_DETECT_DIR_BIT(dir)) && !mmtls_detect_bit(fired, i) &&
            !mmtls_detect_bit(cand, i)) {
            mmtls_detect_bit_set(cand, i);
            f->w->c.candidates++;
        }
    }
}

/* Feeds a chunk into an app instance (first retain_max bytes inspected). */
static void app_feed(struct mmtls_detect_worker *w, struct inst *in, const uint8_t *p, size_t len)
{
    size_t room = w->d->opts.retain_max - in->len, take = MMTLS_MIN(len, room), fit;

    in->total += len;
    w->c.truncated_bytes += len - take;
    fit = inst_room(w, in, take);
    if (fit < take) {
        w->c.memcap_refused += take - fit;
        take = fit;
    }
    if (take == 0) {
        return;
    }
    memcpy(in->p + in->len, p, take);
    in->len += take;
    in->gen = ++w->gen;
    inst_scan(w, in, p, take);
}

/* Evaluates the candidates of dir whose buffers are all complete (all present if final). */
static void tx_round(struct mmtls_detect_flow *f, struct tx *t, unsigned dir, unsigned buf)
{
    const struct mmtls_detect *d = f->d;
    uint64_t *cand = tx_cand(f, t, dir), *fired = tx_fired(f, t);
    struct mmtls_detect_ebuf ebs[MMTLS_RULES_BUF_COUNT];
    const struct mmtls_detect_ebuf *eb[MMTLS_RULES_BUF_COUNT] = {0};

    for (unsigned b = 0; b < MMTLS_RULES_BUF_COUNT; b++) {
        if (t->in[dir][b] != NULL && (t->complete[dir] & (1u << b))) {
            ebuf_of(t->in[dir][b], &ebs[b]);
            eb[b] = &ebs[b];
        }
    }
    /* pkt_data items of HTTP rules: the raw window of the direction as it is now */
    if (f->raw[dir].open) {
        ebuf_of(&f->raw[dir], &ebs[MMTLS_RULES_BUF_PKT]);
        eb[MMTLS_RULES_BUF_PKT] = &ebs[MMTLS_RULES_BUF_PKT];
    }
    for (uint32_t wd = 0; wd < d->words; wd++) {
        uint64_t m = cand[wd];

        while (m != 0) {
            uint32_t i = wd * 64 + (uint32_t)__builtin_ctzll(m);
            const struct mmtls_detect_rule *dr = &d->rules[i];

            m &= m - 1;
            if ((dr->need & ~(t->complete[dir] | 1u)) != 0) {
                continue; /* waits for more buffers */
            }
            mmtls_detect_bit_clr(cand, i);
            if (mmtls_detect_bit(fired, i)) {
                continue;
            }
            if (eval_rule(f, i, dir, MMTLS_RULES_SVC_HTTP, eb)) {
                mmtls_detect_bit_set(fired, i);
            }
        }
    }
    round_report(f, dir, t->id, buf, 0);
}

static void tx_free(struct mmtls_detect_flow *f, struct tx *t)
{
    for (unsigned dir = 0; dir < 2; dir++) {
        for (unsigned b = 0; b < MMTLS_RULES_BUF_COUNT; b++) {
            if (t->in[dir][b] != NULL) {
                inst_fini(f->w, t->in[dir][b]);
                free(t->in[dir][b]);
            }
        }
    }
    free(t->bits);
    memset(t, 0, sizeof(*t));
}

/* Completes every instance of t, evaluates what is left, frees t. */
static void tx_finish(struct mmtls_detect_flow *f, struct tx *t)
{
    for (unsigned dir = 0; dir < 2; dir++) {
        for (unsigned b = 0; b < MMTLS_RULES_BUF_COUNT; b++) {
            struct inst *in = t->in[dir][b];

            if (in == NULL || in->complete) {
                continue;
            }
            inst_close(f->w, in, true);
            app_hits(f, in->db, dir, tx_cand(f, t, dir), tx_fired(f, t));
            in->complete = true;
            t->complete[dir] |= (uint16_t)(1u << b);
        }
        /* buffers the transaction never had stay incomplete: rules needing them fail */
        if (active(f)) {
            tx_round(f, t, dir, MMTLS_RULES_BUF_COUNT);
        }
    }
    tx_free(f, t);
}

static struct tx *tx_get(struct mmtls_detect_flow *f, uint64_t id, bool create)
{
    struct tx *slot = NULL, *oldest = NULL;

    for (uint32_t i = 0; i < f->d->opts.max_tx; i++) {
        struct tx *t = &f->tx[i];

        if (t->used && t->id == id) {
            return t;
        }
        if (!t->used && slot == NULL) {
            slot = t;
        }
        if (t->used && (oldest == NULL || t->seq < oldest->seq)) {
            oldest = t;
        }
    }
    if (!create) {
        return NULL;
    }
    if (slot == NULL) {
        f->w->c.tx_evicted++;
        tx_finish(f, oldest);
        slot = oldest;
    }
    slot->bits = calloc((size_t)3 * f->d->words + 1, sizeof(uint64_t));
    if (slot->bits == NULL) {
        return NULL;
    }
    slot->used = true;
    slot->id = id;
    slot->seq = f->tx_seq++;
    return slot;
}

static int sni_feed(struct mmtls_detect_flow *f, unsigned dir, unsigned flags, const uint8_t *p,
                    size_t len)
{
    struct inst *in = &f->sni;
    uint64_t *cand = f->sni_bits, *fired = f->sni_bits + f->d->words;
    const unsigned db = MMTLS_RULES_BUF_TLS_SNI + 1;

    if (in->complete) {
        f->w->c.late_chunks++;
        return 0;
    }
    if (!in->open) {
        int rc = inst_open(f->w, in, db);

        if (rc != 0) {
            in->open = false;
            return rc;
        }
        f->sni_dir = (uint8_t)dir;
        app_nofp(f, db, dir, cand, fired);
    }
    app_feed(f->w, in, p, len);
    app_hits(f, db, dir, cand, fired);
    if (flags & MMTLS_DETECT_LAST) {
        struct mmtls_detect_ebuf e;
        const struct mmtls_detect_ebuf *eb[MMTLS_RULES_BUF_COUNT] = {0};

        inst_close(f->w, in, true);
        app_hits(f, db, dir, cand, fired);
        in->complete = true;
        ebuf_of(in, &e);
        eb[MMTLS_RULES_BUF_TLS_SNI] = &e;
        for (uint32_t wd = 0; wd < f->d->words; wd++) {
            uint64_t m = cand[wd];

            while (m != 0) {
                uint32_t i = wd * 64 + (uint32_t)__builtin_ctzll(m);

                m &= m - 1;
                mmtls_detect_bit_clr(cand, i);
                /* the evaluation context is tls.sni: service ssl */
                if (!mmtls_detect_bit(fired, i) &&
                    eval_rule(f, i, f->sni_dir, MMTLS_RULES_SVC_SSL, eb)) {
                    mmtls_detect_bit_set(fired, i);
                }
            }
        }
        round_report(f, f->sni_dir, MMTLS_DETECT_NO_TX, MMTLS_RULES_BUF_TLS_SNI, 0);
    }
    return 0;
}

int mmtls_detect_buf(struct mmtls_detect_flow *f, enum mmtls_detect_dir dir, uint64_t tx,
                     unsigned buf, unsigned flags, const uint8_t *p, size_t len)
{
    unsigned d = (unsigned)dir, db = buf + 1;
    struct tx *t;
    struct inst *in;

    if (f == NULL || d > 1 || buf == MMTLS_RULES_BUF_PKT || buf >= MMTLS_RULES_BUF_COUNT ||
        (p == NULL && len > 0)) {
        return MMTLS_E_INVAL;
    }
    if (!active(f)) {
        f->w->c.late_chunks++;
        return MMTLS_DECLINED;
    }
    if ((f->d->used_bufs[d] & (1u << buf)) == 0) {
        return 0; /* no rule needs it */
    }
    if (buf == MMTLS_RULES_BUF_TLS_SNI) {
        int rc = sni_feed(f, d, flags, p, len);

        return rc != 0 ? rc : active(f) ? 0 : MMTLS_DECLINED;
    }
    t = tx_get(f, tx, true);
    if (t == NULL) {
        return MMTLS_E_NOMEM;
    }
    if (!active(f)) {
        return MMTLS_DECLINED; /* an evicted transaction passed the flow */
    }
    in = t->in[d][buf];
    if (in == NULL) {
        int rc;

        in = calloc(1, sizeof(*in));
        if (in == NULL) {
            return MMTLS_E_NOMEM;
        }
        rc = inst_open(f->w, in, db);
        if (rc != 0) {
            free(in);
            return rc;
        }
        t->in[d][buf] = in;
        t->present[d] |= (uint16_t)(1u << buf);
        app_nofp(f, db, d, tx_cand(f, t, d), tx_fired(f, t));
    } else if (in->complete) {
        f->w->c.late_chunks++;
        return 0;
    }
    app_feed(f->w, in, p, len);
    app_hits(f, db, d, tx_cand(f, t, d), tx_fired(f, t));
    if (flags & MMTLS_DETECT_LAST) {
        inst_close(f->w, in, true);
        app_hits(f, db, d, tx_cand(f, t, d), tx_fired(f, t));
        in->complete = true;
        t->complete[d] |= (uint16_t)(1u << buf);
        tx_round(f, t, d, buf);
    }
    return active(f) ? 0 : MMTLS_DECLINED;
}

int mmtls_detect_tx_end(struct mmtls_detect_flow *f, uint64_t tx)
{
    struct tx *t;

    if (f == NULL) {
        return MMTLS_E_INVAL;
    }
    t = tx_get(f, tx, false);
    if (t != NULL) {
        if (active(f)) {
            tx_finish(f, t);
        } else {
            tx_free(f, t);
        }
    }
    return active(f) ? 0 : MMTLS_DECLINED;
}

/* ------------------------------------------------------------------------------------------ */
/* Flow                                                                                        */

int mmtls_detect_flow_new(struct mmtls_detect_flow **out, struct mmtls_detect_worker *w,
                          const struct mmtls_detect_tuple *tuple, mmtls_detect_cb cb, void *ctx)
{
    struct mmtls_detect_flow *f;
    const struct mmtls_detect *d;

    *out = NULL;
    if (w == NULL || tuple == NULL || (tuple->family != 4 && tuple->family != 6)) {
        return MMTLS_E_INVAL;
    }
    d = w->d;
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return MMTLS_E_NOMEM;
    }
    f->w = w;
    f->d = d;
    f->t = *tuple;
    f->cb = cb;
    f->ctx = ctx;
    f->raw_fired = calloc((size_t)2 * d->words + 1, sizeof(uint64_t));
    f->sni_bits = calloc((size_t)2 * d->words + 1, sizeof(uint64_t));
    f->pend[0] = calloc(d->opts.raw_pending_max, sizeof(struct pend));
    f->pend[1] = calloc(d->opts.raw_pending_max, sizeof(struct pend));
    f->tx = calloc(d->opts.max_tx, sizeof(struct tx));
    if (f->raw_fired == NULL || f->sni_bits == NULL || f->pend[0] == NULL || f->pend[1] == NULL ||
        f->tx == NULL) {
        mmtls_detect_flow_free(f);
        return MMTLS_E_NOMEM;
    }
    *out = f;
    return 0;
}

void mmtls_detect_flow_set_services(struct mmtls_detect_flow *f, uint8_t services)
{
    f->services = services;
}

void mmtls_detect_flow_set_established(struct mmtls_detect_flow *f, bool established)
{
    f->t.established = established;
}

bool mmtls_detect_flow_active(const struct mmtls_detect_flow *f)
{
    return active(f);
}

int mmtls_detect_flow_end(struct mmtls_detect_flow *f)
{
    if (f == NULL) {
        return MMTLS_E_INVAL;
    }
    if (!active(f)) {
        return MMTLS_DECLINED;
    }
    for (uint32_t i = 0; i < f->d->opts.max_tx && active(f); i++) {
        if (f->tx[i].used) {
            tx_finish(f, &f->tx[i]);
        }
    }
    if (active(f) && f->sni.open && !f->sni.complete) {
        int rc = sni_feed(f, f->sni_dir, MMTLS_DETECT_LAST, NULL, 0);

        (void)rc; /* a close cannot fail */
    }
    for (unsigned dir = 0; dir < 2 && active(f); dir++) {
        raw_end(f, dir);
    }
    f->ended = true;
    return 0;
}

size_t mmtls_detect_flow_mem(const struct mmtls_detect_flow *f)
{
    const struct mmtls_detect *d = f->d;
    size_t n = sizeof(*f) + (size_t)4 * d->words * sizeof(uint64_t) +
               (size_t)2 * d->opts.raw_pending_max * sizeof(struct pend) +
               (size_t)d->opts.max_tx * sizeof(struct tx);
    const struct inst *ins[3] = {&f->raw[0], &f->raw[1], &f->sni};

    for (unsigned k = 0; k < 3; k++) {
        n += ins[k]->cap + (ins[k]->hs != NULL ? d->info.db[ins[k]->db].stream_bytes : 0);
    }
    for (uint32_t i = 0; i < d->opts.max_tx; i++) {
        const struct tx *t = &f->tx[i];

        if (!t->used) {
            continue;
        }
        n += (size_t)3 * d->words * sizeof(uint64_t);
        for (unsigned dir = 0; dir < 2; dir++) {
            for (unsigned b = 0; b < MMTLS_RULES_BUF_COUNT; b++) {
                const struct inst *in = t->in[dir][b];

                if (in != NULL) {
                    n += sizeof(*in) + in->cap +
                         (in->hs != NULL ? d->info.db[in->db].stream_bytes : 0);
                }
            }
        }
    }
    return n;
}

void mmtls_detect_flow_free(struct mmtls_detect_flow *f)
{
    if (f == NULL) {
        return;
    }
    if (f->tx != NULL) {
        for (uint32_t i = 0; i < f->d->opts.max_tx; i++) {
            if (f->tx[i].used) {
                tx_free(f, &f->tx[i]);
            }
        }
    }
    inst_fini(f->w, &f->raw[0]);
    inst_fini(f->w, &f->raw[1]);
    inst_fini(f->w, &f->sni);
    free(f->tx);
    free(f->pend[0]);
    free(f->pend[1]);
    free(f->raw_fired);
    free(f->sni_bits);
    free(f);
}
