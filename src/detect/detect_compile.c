/* detect — compiling a rule set: classes, effective buffers, regexes, Vectorscan databases. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "detect/detect_int.h"

#define REQ_BUFS                                                                                   \
    ((1u << MMTLS_RULES_BUF_HTTP_URI) | (1u << MMTLS_RULES_BUF_HTTP_RAW_URI) |                     \
     (1u << MMTLS_RULES_BUF_HTTP_METHOD) | (1u << MMTLS_RULES_BUF_HTTP_USER_AGENT) |               \
     (1u << MMTLS_RULES_BUF_HTTP_HOST) | (1u << MMTLS_RULES_BUF_HTTP_CLIENT_BODY))
#define RESP_BUFS                                                                                  \
    ((1u << MMTLS_RULES_BUF_HTTP_STAT_CODE) | (1u << MMTLS_RULES_BUF_HTTP_SERVER_BODY))
#define FP_COMPILE_RETRIES 64 /* patterns dropped per database before giving up */

static const char *const skip_names[MMTLS_DETECT_SKIP_COUNT] = {
    "protocol or service",
    "mixed buffers",
    "http buffers of both directions",
    "flow direction contradicts buffers",
    "service never applies",
    "pcre compile",
    "fast pattern compile",
};

const char *mmtls_detect_skip_name(unsigned why)
{
    return why < MMTLS_DETECT_SKIP_COUNT ? skip_names[why] : "?";
}

const char *mmtls_detect_db_name(unsigned db)
{
    if (db == MMTLS_DETECT_DB_RAW_TS) {
        return "raw.to_server";
    }
    if (db == MMTLS_DETECT_DB_RAW_TC) {
        return "raw.to_client";
    }
    if (db < MMTLS_DETECT_DB_COUNT) {
        return mmtls_rules_buf_name(db - 1);
    }
    return "?";
}

static void skip(struct mmtls_detect *d, struct mmtls_detect_rule *dr, unsigned why)
{
    if (dr->cls == MMTLS_DETECT_CLS_DEAD) {
        return; /* counted once */
    }
    d->info.skipped[why]++;
    if (d->info.first_skipped_sid[why] == 0) {
        d->info.first_skipped_sid[why] = dr->r->sid;
    }
    dr->cls = MMTLS_DETECT_CLS_DEAD;
}

static uint8_t action_rank(uint8_t action)
{
    switch (action) {
    case MMTLS_RULES_PASS: return 0;
    case MMTLS_RULES_DROP: return 1;
    case MMTLS_RULES_REJECT: return 2;
    default: return 3;
    }
}

/* Class, directions, services and effective buffers of one rule; -1 - reason when skipped. */
static int classify(struct mmtls_detect_rule *dr, uint8_t ibuf[MMTLS_RULES_MAX_ITEMS])
{
    const struct mmtls_rule *r = dr->r;
    uint32_t bufs = 0, http;
    unsigned ncls, flowdir = r->flow & (MMTLS_RULES_FLOW_TO_SERVER | MMTLS_RULES_FLOW_TO_CLIENT);
    uint8_t need;

    if (!r->proto_ok || mmtls_rules_check(r, NULL) != 0) {
        return -1 - MMTLS_DETECT_SKIP_PROTO;
    }
    if (flowdir == (MMTLS_RULES_FLOW_TO_SERVER | MMTLS_RULES_FLOW_TO_CLIENT)) {
        return -1 - MMTLS_DETECT_SKIP_FLOW_DIR;
    }
    for (unsigned k = 0; k < r->nitems; k++) {
        ibuf[k] = r->item[k].buf;
        bufs |= 1u << ibuf[k];
    }
    http = bufs & MMTLS_DETECT_HTTP_BUFS;
    /* pkt_data next to HTTP buffers (Snort 3 `http_uri; content:..; pkt_data; content:..`) is
     * an HTTP rule whose pkt items see the raw window of the direction (detect.h) */
    ncls = ((bufs & 1u) != 0 && http == 0) + (http != 0) +
           ((bufs & (1u << MMTLS_RULES_BUF_TLS_SNI)) != 0);
    if (ncls > 1) {
        return -1 - MMTLS_DETECT_SKIP_MIXED;
    }

    /* Services: the service option (Snort 3), narrowed by an http/tls protocol (Suricata
     * app-layer rule or Snort 3 service rule). */
    need = r->services & (MMTLS_RULES_SVC_HTTP | MMTLS_RULES_SVC_SSL);
    if (r->proto == MMTLS_RULES_PROTO_HTTP) {
        need = need != 0 ? (uint8_t)(need & MMTLS_RULES_SVC_HTTP) : MMTLS_RULES_SVC_HTTP;
    } else if (r->proto == MMTLS_RULES_PROTO_TLS) {
        need = need != 0 ? (uint8_t)(need & MMTLS_RULES_SVC_SSL) : MMTLS_RULES_SVC_SSL;
    }
    if (need == 0 && (r->services != 0 || r->proto == MMTLS_RULES_PROTO_HTTP ||
                      r->proto == MMTLS_RULES_PROTO_TLS)) {
        return -1 - MMTLS_DETECT_SKIP_SVC;
    }
    dr->svc_need = need;
    dr->svc_opt = r->services != 0;

    if (http != 0) {
        bool req = (http & REQ_BUFS) != 0, resp = (http & RESP_BUFS) != 0;

        /* file_data in a to_server rule (or next to request buffers) is the request body, as
         * Snort 3 and Suricata define it for HTTP; the parser maps it to the response body. */
        if (flowdir == MMTLS_RULES_FLOW_TO_SERVER || req) {
            for (unsigned k = 0; k < r->nitems; k++) {
                if (ibuf[k] == MMTLS_RULES_BUF_HTTP_SERVER_BODY) {
                    ibuf[k] = MMTLS_RULES_BUF_HTTP_CLIENT_BODY;
                }
            }
            http &= ~(1u << MMTLS_RULES_BUF_HTTP_SERVER_BODY);
            http |= (bufs & (1u << MMTLS_RULES_BUF_HTTP_SERVER_BODY)) != 0
                        ? 1u << MMTLS_RULES_BUF_HTTP_CLIENT_BODY
                        : 0;
            req = true;
            resp = (http & RESP_BUFS) != 0;
        }
        if (req && resp) {
            return -1 - MMTLS_DETECT_SKIP_HTTP_DIRS;
        }
        if (need != 0 && (need & MMTLS_RULES_SVC_HTTP) == 0) {
            return -1 - MMTLS_DETECT_SKIP_SVC;
        }
        if (flowdir != 0) {
            if ((req && flowdir != MMTLS_RULES_FLOW_TO_SERVER) ||
                (resp && flowdir != MMTLS_RULES_FLOW_TO_CLIENT)) {
                return -1 - MMTLS_DETECT_SKIP_FLOW_DIR;
            }
            dr->dirs = flowdir == MMTLS_RULES_FLOW_TO_SERVER ? 1 : 2;
        } else {
            dr->dirs = req ? 1 : resp ? 2 : 3;
        }
        dr->cls = MMTLS_DETECT_CLS_HTTP;
        dr->need = (uint16_t)(http | (bufs & 1u));
    } else if (bufs & (1u << MMTLS_RULES_BUF_TLS_SNI)) {
        /* RFC 6066 §3: the name travels in the ClientHello, client to server */
        if (flowdir == MMTLS_RULES_FLOW_TO_CLIENT) {
            return -1 - MMTLS_DETECT_SKIP_FLOW_DIR;
        }
        if (need != 0 && (need & MMTLS_RULES_SVC_SSL) == 0) {
            return -1 - MMTLS_DETECT_SKIP_SVC;
        }
        dr->cls = MMTLS_DETECT_CLS_SNI;
        dr->dirs = 1;
        dr->need = 1u << MMTLS_RULES_BUF_TLS_SNI;
    } else {
        dr->cls = MMTLS_DETECT_CLS_RAW;
        dr->dirs = flowdir == MMTLS_RULES_FLOW_TO_SERVER   ? 1
                   : flowdir == MMTLS_RULES_FLOW_TO_CLIENT ? 2
                                                           : 3;
        dr->need = r->nitems ? 1 : 0;
    }
    return 0;
}

/* Groups the items by effective buffer, in order of first use (Suricata's per-buffer lists). */
static void group_items(struct mmtls_detect_rule *dr, const uint8_t *ibuf)
{
    const struct mmtls_rule *r = dr->r;
    unsigned n = 0;

    dr->nlists = 0;
    for (unsigned k = 0; k < r->nitems; k++) {
        bool seen = false;

        for (unsigned l = 0; l < dr->nlists; l++) {
            seen = seen || dr->lbuf[l] == ibuf[k];
        }
        if (seen) {
            continue;
        }
        dr->lbuf[dr->nlists] = ibuf[k];
        dr->lstart[dr->nlists] = (uint8_t)n;
        for (unsigned j = k; j < r->nitems; j++) {
            if (ibuf[j] == ibuf[k]) {
                dr->order[n++] = (uint8_t)j;
            }
        }
        dr->nlists++;
    }
    dr->lstart[dr->nlists] = (uint8_t)n;
}

static uint32_t pcre_options(uint16_t f)
{
    uint32_t o = 0;

    o |= (f & MMTLS_RULES_PCRE_I) ? PCRE2_CASELESS : 0;
    o |= (f & MMTLS_RULES_PCRE_S) ? PCRE2_DOTALL : 0;
    o |= (f & MMTLS_RULES_PCRE_M) ? PCRE2_MULTILINE : 0;
    o |= (f & MMTLS_RULES_PCRE_X) ? PCRE2_EXTENDED : 0;
    o |= (f & MMTLS_RULES_PCRE_A) ? PCRE2_ANCHORED : 0;
    o |= (f & MMTLS_RULES_PCRE_E) ? PCRE2_DOLLAR_ENDONLY : 0;
    o |= (f & MMTLS_RULES_PCRE_G) ? PCRE2_UNGREEDY : 0;
    return o;
}

/* Compiles the regexes of dr into d->pcre; false when PCRE2 refuses one (nothing kept). */
static int compile_pcres(struct mmtls_detect *d, struct mmtls_detect_rule *dr, uint32_t *cap,
                         bool *refused)
{
    const struct mmtls_rule *r = dr->r;
    uint32_t base = d->npcre;
    uint8_t n = 0;

    *refused = false;
    dr->pcre_base = base;
    for (unsigned k = 0; k < r->nitems; k++) {
        const struct mmtls_rules_item *it = &r->item[k];
        struct mmtls_slice pat;
        pcre2_code *code;
        int errcode;
        PCRE2_SIZE erroff;

        if (it->kind != MMTLS_RULES_PCRE) {
            continue;
        }
        if (d->npcre == *cap) {
            uint32_t ncap = *cap ? *cap * 2 : 64;
            pcre2_code **np = realloc(d->pcre, ncap * sizeof(*np));

            if (np == NULL) {
                return MMTLS_E_NOMEM;
            }
            d->pcre = np;
            *cap = ncap;
        }
        pat = mmtls_rules_str(r, it->pat);
        code = pcre2_compile(pat.p, pat.len, pcre_options(it->pcre_flags), &errcode, &erroff, NULL);
        if (code == NULL) {
            if (errcode == PCRE2_ERROR_NOMEMORY) {
                return MMTLS_E_NOMEM;
            }
            while (d->npcre > base) {
                pcre2_code_free(d->pcre[--d->npcre]);
            }
            *refused = true;
            return 0;
        }
        if (!d->opts.no_jit && pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0) {
            d->info.pcre_jit++;
        }
        dr->pslot[k] = n++;
        d->pcre[d->npcre++] = code;
    }
    d->info.pcre += n;
    return 0;
}

/* A fast pattern entry before deduplication. */
struct pent {
    const uint8_t *p; /* borrowed from the rule arena */
    uint32_t len;
    uint32_t rule;
    bool nocase;
    bool dead;
};

static int fold(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int pent_cmp_key(const struct pent *a, const struct pent *b)
{
    if (a->nocase != b->nocase) {
        return a->nocase ? 1 : -1;
    }
    if (a->len != b->len) {
        return a->len < b->len ? -1 : 1;
    }
    for (uint32_t i = 0; i < a->len; i++) {
        int x = a->nocase ? fold(a->p[i]) : a->p[i], y = b->nocase ? fold(b->p[i]) : b->p[i];

        if (x != y) {
            return x < y ? -1 : 1;
        }
    }
    return 0;
}

static int pent_cmp(const void *x, const void *y)
{
    const struct pent *a = x, *b = y;
    int c = pent_cmp_key(a, b);

    if (c != 0) {
        return c;
    }
    return a->rule < b->rule ? -1 : a->rule > b->rule;
}

/* Builds database kind k from entries e[0..n) (sorted). */
static int build_db(struct mmtls_detect *d, unsigned k, struct pent *e, uint32_t n)
{
    struct mmtls_detect_dbk *db = &d->db[k];
    const char **exprs = NULL;
    unsigned *flags = NULL, *ids = NULL;
    size_t *lens = NULL;
    uint32_t *grp = NULL; /* first entry of each distinct literal */
    unsigned base_flags = k <= MMTLS_DETECT_DB_RAW_TC ? 0 : HS_FLAG_SINGLEMATCH;
    int rc = MMTLS_E_NOMEM;

    if (n == 0) {
        return 0;
    }
    exprs = calloc(n, sizeof(*exprs));
    flags = calloc(n, sizeof(*flags));
    ids = calloc(n, sizeof(*ids));
    lens = calloc(n, sizeof(*lens));
    grp = calloc(n + 1, sizeof(*grp));
    if (exprs == NULL || flags == NULL || ids == NULL || lens == NULL || grp == NULL) {
        goto out_free;
    }
    for (unsigned attempt = 0;; attempt++) {
        hs_compile_error_t *err = NULL;
        uint32_t npat = 0;
        hs_error_t hrc;

        for (uint32_t i = 0; i < n; i++) {
            if (e[i].dead) {
                continue;
            }
            if (npat > 0 && pent_cmp_key(&e[grp[npat - 1]], &e[i]) == 0) {
                continue;
            }
            grp[npat] = i;
            exprs[npat] = (const char *)e[i].p;
            lens[npat] = e[i].len;
            flags[npat] = base_flags | (e[i].nocase ? HS_FLAG_CASELESS : 0);
            ids[npat] = npat;
            npat++;
        }
        if (npat == 0) {
            rc = 0;
            goto out_free;
        }
        hrc = hs_compile_lit_multi(exprs, flags, ids, lens, npat, HS_MODE_STREAM, NULL, &db->db,
                                   &err);
        if (hrc == HS_SUCCESS) {
            db->npat = npat;
            break;
        }
        if (err == NULL || err->expression < 0 || (uint32_t)err->expression >= npat ||
            attempt == FP_COMPILE_RETRIES) {
            mmtls_log(MMTLS_LOG_ERR, "detect: cannot compile %s database: %s",
                      mmtls_detect_db_name(k), err != NULL ? err->message : "?");
            hs_free_compile_error(err);
            rc = hrc == HS_NOMEM ? MMTLS_E_NOMEM : MMTLS_E_INTERNAL;
            goto out_free;
        }
        /* drop every rule behind the refused literal and try again */
        for (uint32_t i = grp[err->expression]; i < n; i++) {
            if (!e[i].dead && pent_cmp_key(&e[grp[err->expression]], &e[i]) != 0) {
                break;
            }
            if (!e[i].dead) {
                struct mmtls_detect_rule *dr = &d->rules[e[i].rule];

                skip(d, dr, MMTLS_DETECT_SKIP_FP_COMPILE);
                e[i].dead = true;
            }
        }
        hs_free_compile_error(err);
    }

    /* literal -> rules */
    db->pat_first = calloc(db->npat + 1, sizeof(uint32_t));
    db->pat_rules = calloc(n, sizeof(uint32_t));
    if (db->pat_first == NULL || db->pat_rules == NULL) {
        goto out_free;
    }
    {
        uint32_t out = 0, pat = 0;

        for (uint32_t i = 0; i < n; i++) {
            if (e[i].dead) {
                continue;
            }
            if (out > 0 && pent_cmp_key(&e[grp[pat]], &e[i]) != 0) {
                pat++;
                db->pat_first[pat] = out;
            }
            db->pat_rules[out++] = e[i].rule;
            d->info.db[k].rules++;
        }
        db->pat_first[db->npat] = out;
    }
    d->info.db[k].patterns = db->npat;
    if (hs_database_size(db->db, &d->info.db[k].db_bytes) != HS_SUCCESS ||
        hs_stream_size(db->db, &d->info.db[k].stream_bytes) != HS_SUCCESS) {
        rc = MMTLS_E_INTERNAL;
        goto out_free;
    }
    d->info.db_bytes_total += d->info.db[k].db_bytes;
    if (db->npat > d->max_pat) {
        d->max_pat = db->npat;
    }
    rc = 0;
out_free:
    free(grp);
    free(lens);
    free(ids);
    free(flags);
    free(exprs);
    return rc;
}

/* The literal of dr's fast pattern: the fast_pattern part, without leading NUL bytes
 * (Vectorscan's literal API refuses a literal that starts with NUL: it tests for an empty C
 * string); a shorter literal is still a correct prefilter, the full evaluation checks the
 * content.  False when nothing is left (an all-NUL fast pattern: the rule becomes no-fp). */
static bool fp_literal(const struct mmtls_rule *r, int fp, const uint8_t **p, uint32_t *len)
{
    const struct mmtls_rules_item *it = &r->item[fp];
    struct mmtls_slice pat = mmtls_rules_str(r, it->pat);
    const uint8_t *q = pat.p;
    uint32_t n = (uint32_t)pat.len;

    if (it->flags & MMTLS_RULES_I_FP_PART) {
        q += it->fp_off;
        n = it->fp_len;
    }
    while (n > 0 && q[0] == 0) {
        q++;
        n--;
    }
    *p = q;
    *len = n;
    return n > 0;
}

/* The fast pattern item of dr: the rule's (mmtls_rule.fp) when it is a non-negated content;
 * for an HTTP rule whose fast pattern is a pkt_data content, the longest non-negated content of
 * an HTTP buffer instead (a fast pattern is only a prefilter: any content that must match will
 * do).  -1: none. */
static int fp_pick(const struct mmtls_detect_rule *dr, const uint8_t *ibuf)
{
    const struct mmtls_rule *r = dr->r;
    int best = -1;

    if (r->fp >= 0 && r->item[r->fp].kind == MMTLS_RULES_CONTENT &&
        (r->item[r->fp].flags & MMTLS_RULES_I_NEGATED) == 0 &&
        !(dr->cls == MMTLS_DETECT_CLS_HTTP && ibuf[r->fp] == MMTLS_RULES_BUF_PKT)) {
        return r->fp;
    }
    if (dr->cls != MMTLS_DETECT_CLS_HTTP) {
        return -1;
    }
    for (unsigned k = 0; k < r->nitems; k++) {
        const struct mmtls_rules_item *it = &r->item[k];

        if (it->kind == MMTLS_RULES_CONTENT && (it->flags & MMTLS_RULES_I_NEGATED) == 0 &&
            ibuf[k] != MMTLS_RULES_BUF_PKT && (best < 0 || it->pat.len > r->item[best].pat.len)) {
            best = (int)k;
        }
    }
    return best;
}

/* Database kind of the fast pattern of dr in direction dir (raw) or of its buffer. */
static unsigned fp_db(const struct mmtls_detect_rule *dr, unsigned dir)
{
    if (dr->cls == MMTLS_DETECT_CLS_RAW) {
        return dir;
    }
    return (unsigned)dr->fp_buf + 1;
}

static int build_dbs(struct mmtls_detect *d)
{
    struct pent *e = calloc((size_t)d->nrules * 2 + 1, sizeof(*e));
    int rc = 0;

    if (e == NULL) {
        return MMTLS_E_NOMEM;
    }
    for (unsigned k = 0; k < MMTLS_DETECT_DB_COUNT && rc == 0; k++) {
        uint32_t n = 0;

        for (uint32_t i = 0; i < d->nrules; i++) {
            const struct mmtls_detect_rule *dr = &d->rules[i];
            bool in = false;

            if (dr->cls == MMTLS_DETECT_CLS_DEAD || !dr->has_fp) {
                continue;
            }
            for (unsigned dir = 0; dir < 2; dir++) {
                in = in || ((dr->dirs & MMTLS_DETECT_DIR_BIT(dir)) && fp_db(dr, dir) == k);
            }
            if (!in) {
                continue;
            }
            (void)fp_literal(dr->r, dr->fp, &e[n].p, &e[n].len);
            e[n].rule = i;
            e[n].nocase = (dr->r->item[dr->fp].flags & MMTLS_RULES_I_NOCASE) != 0;
            e[n].dead = false;
            n++;
        }
        qsort(e, n, sizeof(*e), pent_cmp);
        rc = build_db(d, k, e, n);
    }
    free(e);
    return rc;
}

static int build_nofp(struct mmtls_detect *d)
{
    for (unsigned k = 0; k < MMTLS_DETECT_DB_COUNT; k++) {
        struct mmtls_detect_dbk *db = &d->db[k];

        db->nofp = calloc(d->nrules + 1, sizeof(uint32_t));
        if (db->nofp == NULL) {
            return MMTLS_E_NOMEM;
        }
        for (uint32_t i = 0; i < d->nrules; i++) {
            const struct mmtls_detect_rule *dr = &d->rules[i];
            bool in = false;

            if (dr->cls == MMTLS_DETECT_CLS_DEAD || dr->has_fp) {
                continue;
            }
            if (dr->cls == MMTLS_DETECT_CLS_RAW) {
                in = k <= MMTLS_DETECT_DB_RAW_TC && (dr->dirs & MMTLS_DETECT_DIR_BIT(k));
            } else {
                /* an HTTP/SNI no-fp rule becomes a candidate when any buffer it needs opens */
                in = k > MMTLS_DETECT_DB_RAW_TC && (dr->need & (1u << (k - 1)));
            }
            if (in) {
                db->nofp[db->nnofp++] = i;
            }
        }
    }
    return 0;
}

static void opts_fill(struct mmtls_detect_opts *o, const struct mmtls_detect_opts *in)
{
    memset(o, 0, sizeof(*o));
    if (in != NULL) {
        memcpy(o, in, MMTLS_MIN(in->sz, sizeof(*o)));
    }
    o->sz = sizeof(*o);
    if (o->retain_max == 0) {
        o->retain_max = 65536;
    }
    o->retain_max = MMTLS_MIN(MMTLS_MAX(o->retain_max, (size_t)64), (size_t)64 << 20);
    if (o->max_tx == 0) {
        o->max_tx = 32;
    }
    if (o->memcap == 0) {
        o->memcap = (size_t)256 << 20;
    }
    if (o->eval_steps == 0) {
        o->eval_steps = 3000;
    }
    if (o->pcre_match_limit == 0) {
        o->pcre_match_limit = 3500;
    }
    if (o->pcre_depth_limit == 0) {
        o->pcre_depth_limit = 1500;
    }
    if (o->raw_pending_max == 0) {
        o->raw_pending_max = 64;
    }
}

int mmtls_detect_new(struct mmtls_detect **out, const struct mmtls_rules_set *rules,
                     const struct mmtls_detect_opts *opts)
{
    struct mmtls_detect *d = NULL;
    uint8_t(*ibufs)[MMTLS_RULES_MAX_ITEMS] = NULL;
    uint64_t t0 = (mmtls_mono_ns() / 1000u);
    uint32_t pcap = 0;
    size_t n;
    int rc = MMTLS_E_NOMEM;

    *out = NULL;
    if (rules == NULL) {
        return MMTLS_E_INVAL;
    }
    if (hs_valid_platform() != HS_SUCCESS) {
        return MMTLS_E_UNSUPPORTED;
    }
    n = mmtls_rules_count(rules);
    if (n > UINT32_MAX / 4) {
        return MMTLS_E_LIMIT;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return MMTLS_E_NOMEM;
    }
    opts_fill(&d->opts, opts);
    d->rules = calloc(n + 1, sizeof(*d->rules));
    ibufs = calloc(n + 1, sizeof(*ibufs));
    if (d->rules == NULL || ibufs == NULL) {
        goto out_free;
    }
    d->nrules = (uint32_t)n;
    d->words = (uint32_t)((n + 63) / 64);
    d->info.rules_in = n;
    for (uint32_t i = 0; i < d->nrules; i++) {
        struct mmtls_detect_rule *dr = &d->rules[i];
        const struct mmtls_rule *r = mmtls_rules_get(rules, i);
        bool refused;
        int c;

        dr->r = r;
        dr->rank = action_rank(r->action);
        c = classify(dr, ibufs[i]);
        if (c < 0) {
            skip(d, dr, (unsigned)(-1 - c));
            continue;
        }
        group_items(dr, ibufs[i]);
        rc = compile_pcres(d, dr, &pcap, &refused);
        if (rc != 0) {
            goto out_free;
        }
        if (refused) {
            skip(d, dr, MMTLS_DETECT_SKIP_PCRE);
            continue;
        }
        dr->fp = fp_pick(dr, ibufs[i]);
        if (dr->fp >= 0) {
            const uint8_t *lp;
            uint32_t ll;

            if (!fp_literal(r, dr->fp, &lp, &ll)) {
                continue; /* all NUL: no-fp */
            }
            dr->has_fp = true;
            dr->fp_buf = ibufs[i][dr->fp];
        }
    }
    rc = build_dbs(d);
    if (rc != 0) {
        goto out_free;
    }
    rc = build_nofp(d);
    if (rc != 0) {
        goto out_free;
    }
    for (uint32_t i = 0; i < d->nrules; i++) {
        const struct mmtls_detect_rule *dr = &d->rules[i];

        if (dr->cls == MMTLS_DETECT_CLS_DEAD) {
            continue;
        }
        d->info.rules++;
        for (unsigned dir = 0; dir < 2; dir++) {
            if ((dr->dirs & MMTLS_DETECT_DIR_BIT(dir)) == 0) {
                continue;
            }
            if (dr->cls == MMTLS_DETECT_CLS_RAW || (dr->need & 1u) != 0) {
                d->raw_used[dir] = true; /* raw rules, and HTTP rules with pkt_data items */
            }
            if (dr->cls != MMTLS_DETECT_CLS_RAW) {
                d->used_bufs[dir] |= (uint16_t)(dr->need & ~1u);
            }
        }
        d->info.raw += dr->cls == MMTLS_DETECT_CLS_RAW;
        d->info.http += dr->cls == MMTLS_DETECT_CLS_HTTP;
        d->info.sni += dr->cls == MMTLS_DETECT_CLS_SNI;
        d->info.nofp += !dr->has_fp;
    }
    free(ibufs);
    d->info.compile_us = (mmtls_mono_ns() / 1000u) - t0;
    *out = d;
    return 0;
out_free:
    free(ibufs);
    mmtls_detect_free(d);
    return rc;
}

void mmtls_detect_free(struct mmtls_detect *d)
{
    if (d == NULL) {
        return;
    }
    for (unsigned k = 0; k < MMTLS_DETECT_DB_COUNT; k++) {
        hs_free_database(d->db[k].db);
        free(d->db[k].pat_first);
        free(d->db[k].pat_rules);
        free(d->db[k].nofp);
    }
    for (uint32_t i = 0; i < d->npcre; i++) {
        pcre2_code_free(d->pcre[i]);
    }
    free(d->pcre);
    free(d->rules);
    free(d);
}

void mmtls_detect_info_get(const struct mmtls_detect *d, struct mmtls_detect_info *info)
{
    *info = d->info;
}

void mmtls_detect_info_print(const struct mmtls_detect *d, FILE *f)
{
    const struct mmtls_detect_info *in = &d->info;

    fprintf(f,
            "detect: %llu of %llu rules compiled (raw %llu, http %llu, tls.sni %llu; "
            "%llu without fast pattern; %llu pcre, %llu jit) in %.1f ms, %zu bytes of "
            "databases\n",
            (unsigned long long)in->rules, (unsigned long long)in->rules_in,
            (unsigned long long)in->raw, (unsigned long long)in->http, (unsigned long long)in->sni,
            (unsigned long long)in->nofp, (unsigned long long)in->pcre,
            (unsigned long long)in->pcre_jit, (double)in->compile_us / 1000.0, in->db_bytes_total);
    for (unsigned k = 0; k < MMTLS_DETECT_SKIP_COUNT; k++) {
        if (in->skipped[k] != 0) {
            fprintf(f, "detect: skipped %llu: %s (first sid %u)\n",
                    (unsigned long long)in->skipped[k], skip_names[k], in->first_skipped_sid[k]);
        }
    }
    for (unsigned k = 0; k < MMTLS_DETECT_DB_COUNT; k++) {
        if (in->db[k].patterns != 0) {
            fprintf(f, "detect: db %-18s %5u rules %5u literals %8zu bytes, stream %zu bytes\n",
                    mmtls_detect_db_name(k), in->db[k].rules, in->db[k].patterns,
                    in->db[k].db_bytes, in->db[k].stream_bytes);
        }
    }
}
