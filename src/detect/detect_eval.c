/* detect — full evaluation of one rule: header checks and the content/pcre item lists.
 *
 * Positions are 64-bit offsets in the buffer instance (the raw window starts at ebuf.base), so
 * offset/depth mean the same whatever the chunking.  Semantics follow Suricata's
 * detect-engine-content-inspection.c and the Snort 3 manual:
 *   content without distance/within: the match lies in [offset, offset + depth);
 *   content with distance/within: the match starts at or after prev_end + distance (a negative
 *     result is clamped to 0) and ends at or before prev_end + distance + within;
 *   both kinds on one content (Snort 2 style): both constraints;
 *   prev_end is the end of the previous matched item of the same buffer, 0 for the first;
 *   a negated content succeeds when the pattern does not occur in its region; it does not move
 *     prev_end;
 *   pcre: the subject is the buffer, or with R the buffer from prev_end on (^ anchors there,
 *     as Suricata shifts the buffer); the match end becomes prev_end;
 *   backtracking: when the items after a content/pcre fail and the next item is relative, the
 *     content/pcre is retried at its next occurrence (start + 1), bounded by opts.eval_steps.
 */
#include <string.h>

#include "detect/detect_int.h"

/* ------------------------------------------------------------------------------------------ */
/* Header                                                                                      */

static bool net_contains(const struct mmtls_rules_net *n, uint8_t family, const uint8_t *a)
{
    unsigned full, rem;

    if (n->family != family) {
        return false;
    }
    full = n->prefix / 8u;
    rem = n->prefix % 8u;
    if (memcmp(n->addr, a, full) != 0) {
        return false;
    }
    if (rem != 0) {
        uint8_t mask = (uint8_t)(0xffu << (8 - rem));

        return (a[full] & mask) == (n->addr[full] & mask);
    }
    return true;
}

/* rules.h: (any || inside a non-negated entry) && inside no negated entry */
bool mmtls_detect_addr_match(const struct mmtls_rules_addr *spec, uint8_t family, const uint8_t *a)
{
    bool pos = spec->any;

    for (unsigned i = 0; i < spec->n && i < MMTLS_RULES_MAX_NETS; i++) {
        bool in = net_contains(&spec->net[i], family, a);

        if (in && spec->net[i].negated) {
            return false;
        }
        pos = pos || (in && !spec->net[i].negated);
    }
    return pos;
}

bool mmtls_detect_port_match(const struct mmtls_rules_ports *spec, uint16_t p)
{
    bool pos = spec->any;

    for (unsigned i = 0; i < spec->n && i < MMTLS_RULES_MAX_PORTS; i++) {
        bool in = p >= spec->r[i].lo && p <= spec->r[i].hi;

        if (in && spec->r[i].negated) {
            return false;
        }
        pos = pos || (in && !spec->r[i].negated);
    }
    return pos;
}

static bool ends_match(const struct mmtls_rule *r, const struct mmtls_detect_tuple *t,
                       const uint8_t *sa, uint16_t sp, const uint8_t *da, uint16_t dp, bool ports)
{
    if (!mmtls_detect_addr_match(&r->src, t->family, sa) ||
        !mmtls_detect_addr_match(&r->dst, t->family, da)) {
        return false;
    }
    return !ports ||
           (mmtls_detect_port_match(&r->sport, sp) && mmtls_detect_port_match(&r->dport, dp));
}

bool mmtls_detect_hdr_ok(const struct mmtls_detect_rule *dr, const struct mmtls_detect_tuple *t,
                         unsigned dir, uint8_t ctx_svc)
{
    const struct mmtls_rule *r = dr->r;
    bool ports = true;
    const uint8_t *sa, *da;
    uint16_t sp, dp;

    if ((dr->dirs & MMTLS_DETECT_DIR_BIT(dir)) == 0) {
        return false;
    }
    if (dr->svc_need != 0) {
        if ((dr->svc_need & ctx_svc) == 0) {
            return false;
        }
        /* Snort 3: a rule whose service is identified on the flow ignores the header ports */
        ports = !dr->svc_opt;
    }
    if ((r->flow & MMTLS_RULES_FLOW_ESTABLISHED) && !t->established) {
        return false;
    }
    if ((r->flow & MMTLS_RULES_FLOW_NOT_ESTABLISHED) && t->established) {
        return false;
    }
    if (dir == MMTLS_DETECT_TO_SERVER) {
        sa = t->cli_addr, sp = t->cli_port, da = t->srv_addr, dp = t->srv_port;
    } else {
        sa = t->srv_addr, sp = t->srv_port, da = t->cli_addr, dp = t->cli_port;
    }
    if (ends_match(r, t, sa, sp, da, dp, ports)) {
        return true;
    }
    /* `<>`: the rule also matches with its two ends swapped */
    return r->bidir && ends_match(r, t, da, dp, sa, sp, ports);
}

/* ------------------------------------------------------------------------------------------ */
/* Items                                                                                       */

struct ectx {
    struct mmtls_detect_worker *w;      /* borrowed */
    const struct mmtls_detect_rule *dr; /* borrowed */
    const struct mmtls_detect_ebuf *b;  /* borrowed: the buffer of the group */
    const uint8_t *order;               /* borrowed: item indices of the group */
    unsigned n;
    uint32_t steps;
};

static uint8_t lc(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* The lower-cased bytes of e->b (cached per instance and generation). */
static const uint8_t *lowered(struct ectx *e)
{
    struct mmtls_detect_worker *w = e->w;
    const struct mmtls_detect_ebuf *b = e->b;

    if (w->lower_key != b->key || w->lower_gen != b->gen || w->lower_len != b->len) {
        for (size_t i = 0; i < b->len; i++) {
            w->lower[i] = lc(b->p[i]);
        }
        w->lower_key = b->key;
        w->lower_gen = b->gen;
        w->lower_len = b->len;
    }
    return w->lower;
}

/* First occurrence of pat (m bytes) fully inside buffer positions [lo, hi) (relative); -1. */
static int64_t find(struct ectx *e, const uint8_t *pat, size_t m, bool nocase, size_t lo, size_t hi)
{
    const uint8_t *hay = e->b->p, *hit;
    uint8_t lpat[MMTLS_RULES_MAX_PATTERN];

    if (hi > e->b->len) {
        hi = e->b->len;
    }
    if (lo >= hi || m > hi - lo || m > sizeof(lpat)) {
        return -1;
    }
    if (nocase) {
        for (size_t i = 0; i < m; i++) {
            lpat[i] = lc(pat[i]);
        }
        hay = lowered(e);
        pat = lpat;
    }
    hit = memmem(hay + lo, hi - lo, pat, m);
    return hit == NULL ? -1 : (int64_t)(hit - hay);
}

static bool item_relative(const struct mmtls_rules_item *it)
{
    if (it->kind == MMTLS_RULES_PCRE) {
        return (it->flags & MMTLS_RULES_I_RELATIVE) != 0;
    }
    return (it->flags & (MMTLS_RULES_I_DISTANCE | MMTLS_RULES_I_WITHIN)) != 0;
}

/* Region [*lo, *hi) of content it, in instance offsets; false when it is empty. */
static bool content_region(const struct mmtls_rules_item *it, int64_t prev_end, int64_t *lo,
                           int64_t *hi)
{
    int64_t l = 0, h = INT64_MAX;

    if (it->flags & MMTLS_RULES_I_OFFSET) {
        l = it->offset;
    }
    if (it->flags & MMTLS_RULES_I_DEPTH) {
        h = l + it->depth; /* depth counts from offset */
    }
    if (item_relative(it)) {
        int64_t dist = (it->flags & MMTLS_RULES_I_DISTANCE) ? it->distance : 0;
        int64_t start = prev_end + dist;

        if (start > l) {
            l = start;
        }
        if (it->flags & MMTLS_RULES_I_WITHIN) {
            int64_t wend = prev_end + dist + it->within;

            if (wend < h) {
                h = wend;
            }
        }
    }
    *lo = l;
    *hi = h;
    return l < h;
}

static int items_match(struct ectx *e, unsigned k, int64_t prev_end);

/* Retries/continuations of a content: returns 1, 0, or -1 (limit). */
static int content_match(struct ectx *e, unsigned k, const struct mmtls_rules_item *it,
                         int64_t prev_end)
{
    const struct mmtls_detect_ebuf *b = e->b;
    struct mmtls_slice pat = mmtls_rules_str(e->dr->r, it->pat);
    bool nocase = (it->flags & MMTLS_RULES_I_NOCASE) != 0;
    bool relnext = k + 1 < e->n && item_relative(&e->dr->r->item[e->order[k + 1]]);
    int64_t lo, hi, rlo, rhi, base = (int64_t)b->base, pos;

    if (!content_region(it, prev_end, &lo, &hi)) {
        return (it->flags & MMTLS_RULES_I_NEGATED) ? items_match(e, k + 1, prev_end) : 0;
    }
    /* to buffer positions; what slid out of the raw window is unknown and not searched */
    rlo = lo - base;
    rhi = hi == INT64_MAX ? (int64_t)b->len : hi - base;
    if (rlo < 0) {
        rlo = 0;
    }
    if (rhi > (int64_t)b->len) {
        rhi = (int64_t)b->len;
    }
    if (it->flags & MMTLS_RULES_I_NEGATED) {
        if (rhi > rlo && find(e, pat.p, pat.len, nocase, (size_t)rlo, (size_t)rhi) >= 0) {
            return 0;
        }
        return items_match(e, k + 1, prev_end);
    }
    pos = rlo;
    while (rhi > pos) {
        int64_t s = find(e, pat.p, pat.len, nocase, (size_t)pos, (size_t)rhi);
        int rc;

        if (s < 0) {
            return 0;
        }
        rc = items_match(e, k + 1, base + s + (int64_t)pat.len);
        if (rc != 0 || !relnext) {
            return rc;
        }
        if (++e->steps > e->w->d->opts.eval_steps) {
            return -1;
        }
        pos = s + 1;
    }
    return 0;
}

/* pcre: the subject starts at prev_end with R (Suricata shifts the buffer, so ^ and A anchor
 * at the end of the previous match), else at the start of the buffer. */
static int pcre_match(struct ectx *e, unsigned k, unsigned idx, const struct mmtls_rules_item *it,
                      int64_t prev_end)
{
    struct mmtls_detect_worker *w = e->w;
    const struct mmtls_detect_ebuf *b = e->b;
    const pcre2_code *code = w->d->pcre[e->dr->pcre_base + e->dr->pslot[idx]];
    pcre2_match_context *mctx = (it->pcre_flags & MMTLS_RULES_PCRE_O) ? w->mctx_o : w->mctx;
    bool rel = (it->flags & MMTLS_RULES_I_RELATIVE) != 0;
    bool neg = (it->flags & MMTLS_RULES_I_NEGATED) != 0;
    bool relnext = k + 1 < e->n && item_relative(&e->dr->r->item[e->order[k + 1]]);
    uint32_t mopts = 0;
    int64_t shift = 0, start = 0, len;
    static const uint8_t empty[1] = {0};
    const uint8_t *subj;

    if (rel) {
        shift = prev_end - (int64_t)b->base;
        if (shift < 0 || shift > (int64_t)b->len) {
            /* the previous match slid out of the raw window: nothing to anchor on */
            return neg ? items_match(e, k + 1, prev_end) : 0;
        }
    } else if (b->base > 0) {
        /* the window does not start the stream: ^ and A cannot match at its start */
        mopts |= PCRE2_NOTBOL;
        if (it->pcre_flags & MMTLS_RULES_PCRE_A) {
            return neg ? items_match(e, k + 1, prev_end) : 0;
        }
    }
    len = (int64_t)b->len - shift;
    subj = len > 0 ? b->p + shift : empty;
    for (;;) {
        int rc = pcre2_match(code, subj, (PCRE2_SIZE)len, (PCRE2_SIZE)start, mopts, w->md, mctx);
        PCRE2_SIZE *ov;

        if (rc == PCRE2_ERROR_NOMATCH) {
            return neg ? items_match(e, k + 1, prev_end) : 0;
        }
        if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
            rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT) {
            w->c.pcre_limits++;
            return -1;
        }
        if (rc < 0) {
            w->c.pcre_errors++;
            return -1;
        }
        if (neg) {
            return 0;
        }
        ov = pcre2_get_ovector_pointer(w->md);
        rc = items_match(e, k + 1, (int64_t)b->base + shift + (int64_t)ov[1]);
        if (rc != 0 || !relnext) {
            return rc;
        }
        if (++e->steps > w->d->opts.eval_steps) {
            return -1;
        }
        start = (int64_t)ov[0] + 1;
        if (start > len) {
            return 0;
        }
    }
}

/* Whether items order[k..n) match after a previous match ending at prev_end: 1, 0, -1. */
static int items_match(struct ectx *e, unsigned k, int64_t prev_end)
{
    const struct mmtls_rules_item *it;

    if (k == e->n) {
        return 1;
    }
    if (++e->steps > e->w->d->opts.eval_steps) {
        return -1;
    }
    it = &e->dr->r->item[e->order[k]];
    if (it->kind == MMTLS_RULES_PCRE) {
        return pcre_match(e, k, e->order[k], it, prev_end);
    }
    return content_match(e, k, it, prev_end);
}

bool mmtls_detect_eval_items(struct mmtls_detect_worker *w, const struct mmtls_detect_rule *dr,
                             const struct mmtls_detect_ebuf *const eb[MMTLS_RULES_BUF_COUNT])
{
    struct ectx e = {w, dr, NULL, NULL, 0, 0};

    for (unsigned l = 0; l < dr->nlists; l++) {
        int rc;

        e.b = eb[dr->lbuf[l]];
        if (e.b == NULL) {
            return false; /* Suricata: an absent buffer fails the rule, negated items too */
        }
        e.order = &dr->order[dr->lstart[l]];
        e.n = (unsigned)(dr->lstart[l + 1] - dr->lstart[l]);
        rc = items_match(&e, 0, 0);
        if (rc < 0 && e.steps > w->d->opts.eval_steps) {
            w->c.step_limits++;
        }
        if (rc != 1) {
            return false;
        }
    }
    return true;
}
