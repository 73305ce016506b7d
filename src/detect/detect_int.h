/* detect — internals shared by the detect sources and their unit tests (not part of the API). */
#ifndef MMTLS_DETECT_INT_H
#define MMTLS_DETECT_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <hs.h>
#include <pcre2.h>

#include "detect/detect.h"

/* Rule classes (detect.h: "Compile"). */
enum {
    MMTLS_DETECT_CLS_RAW = 0,
    MMTLS_DETECT_CLS_HTTP = 1,
    MMTLS_DETECT_CLS_SNI = 2,
    MMTLS_DETECT_CLS_DEAD = 3, /* dropped after its fast pattern was refused */
};

#define MMTLS_DETECT_DIR_BIT(d) (1u << (d))
#define MMTLS_DETECT_HTTP_BUFS 0x0ffeu /* bits of MMTLS_RULES_BUF_HTTP_URI .. _SERVER_BODY */

/* One compiled rule. */
struct mmtls_detect_rule {
    const struct mmtls_rule *r;          /* borrowed: valid while the rule set is */
    uint8_t cls;                         /* MMTLS_DETECT_CLS_* */
    uint8_t dirs;                        /* MMTLS_DETECT_DIR_BIT of the directions it applies to */
    uint8_t rank;                        /* 0 pass, 1 drop, 2 reject, 3 alert: report order */
    uint8_t svc_need;                    /* MMTLS_RULES_SVC_HTTP/SSL a context must have; 0: any */
    bool svc_opt;                        /* has a service option: ports ignored where it applies */
    bool has_fp;                         /* its fast pattern is in a database */
    int8_t fp;                           /* item of the fast pattern (see fp_pick); -1: none */
    uint8_t fp_buf;                      /* effective buffer of the fast pattern */
    uint16_t need;                       /* bit per effective buffer the items use (PKT: bit 0) */
    uint8_t nlists;                      /* buffer groups */
    uint8_t lbuf[MMTLS_RULES_BUF_COUNT]; /* effective buffer of group l */
    uint8_t lstart[MMTLS_RULES_BUF_COUNT + 1]; /* group l is order[lstart[l] .. lstart[l+1]) */
    uint8_t order[MMTLS_RULES_MAX_ITEMS];      /* item indices grouped by buffer */
    uint32_t pcre_base;                        /* index in mmtls_detect.pcre of the 1st regex */
    uint8_t pslot[MMTLS_RULES_MAX_ITEMS];      /* regex of item k: pcre[pcre_base + pslot[k]] */
};

/* One database kind: literals and the rules behind each. */
struct mmtls_detect_dbk {
    hs_database_t *db;   /* owned; NULL when there is no pattern */
    uint32_t npat;       /* distinct literals (Vectorscan ids 0 .. npat-1) */
    uint32_t *pat_first; /* owned: npat + 1 offsets into pat_rules */
    uint32_t *pat_rules; /* owned: rule indices, grouped by literal */
    uint32_t *nofp;      /* owned: rules of this kind without a fast pattern */
    uint32_t nnofp;
};

struct mmtls_detect {
    struct mmtls_detect_opts opts;   /* defaults filled in */
    struct mmtls_detect_rule *rules; /* owned: nrules */
    uint32_t nrules;
    uint32_t words;    /* uint64_t words of a bitmap over the rules */
    pcre2_code **pcre; /* owned: npcre compiled regexes */
    uint32_t npcre;
    uint32_t max_pat;      /* largest npat of any kind */
    uint16_t used_bufs[2]; /* per direction: buffers some HTTP/SNI rule needs */
    bool raw_used[2];      /* per direction: some raw rule applies */
    struct mmtls_detect_dbk db[MMTLS_DETECT_DB_COUNT];
    struct mmtls_detect_info info;
};

/* A buffer as the evaluator sees it: bytes p[0 .. len) at stream offset base. */
struct mmtls_detect_ebuf {
    const uint8_t *p; /* borrowed */
    size_t len;
    uint64_t base;   /* offset of p[0] in the instance (raw window); 0 otherwise */
    const void *key; /* identity of the instance, for the lower-case cache */
    uint64_t gen;    /* unique per worker for given bytes (instances are reallocated at the
                      * same address, so the key alone does not identify the bytes) */
};

struct mmtls_detect_worker {
    const struct mmtls_detect *d; /* borrowed */
    hs_scratch_t *scratch;        /* owned */
    pcre2_match_data *md;         /* owned */
    pcre2_match_context *mctx;    /* owned: configured limits */
    pcre2_match_context *mctx_o;  /* owned: pcre O flag (PCRE2 default limits) */
    pcre2_jit_stack *jit;         /* owned; NULL without JIT */
    uint8_t *lower;               /* owned: lower-cased copy of one buffer, retain_max bytes */
    const void *lower_key;        /* borrowed identity of the buffer in lower (never deref'd) */
    uint64_t lower_gen;
    size_t lower_len;
    uint32_t *hits; /* owned: distinct literal ids of the current scan */
    uint32_t nhits;
    uint64_t *hit_seen; /* owned: bitmap over literal ids */
    uint32_t *round;    /* owned: rules matched in the current round */
    uint32_t nround;
    size_t retained; /* bytes charged against opts.memcap */
    uint64_t gen;    /* last instance generation stamp handed out */
    struct mmtls_detect_counters c;
};

/* Evaluates the items of rule dr against the buffers in eb (indexed by effective buffer; NULL
 * entries are absent buffers).  True when every group matches.  Header checks are not done. */
bool mmtls_detect_eval_items(struct mmtls_detect_worker *w, const struct mmtls_detect_rule *dr,
                             const struct mmtls_detect_ebuf *const eb[MMTLS_RULES_BUF_COUNT]);

/* Whether the header of dr (protocol/service, flow, addresses, ports) admits data of direction
 * dir on a flow with tuple t, in a context offering services ctx_svc. */
bool mmtls_detect_hdr_ok(const struct mmtls_detect_rule *dr, const struct mmtls_detect_tuple *t,
                         unsigned dir, uint8_t ctx_svc);

/* Whether address a (family 4/6) matches the spec, and port p the port spec. */
bool mmtls_detect_addr_match(const struct mmtls_rules_addr *spec, uint8_t family, const uint8_t *a);
bool mmtls_detect_port_match(const struct mmtls_rules_ports *spec, uint16_t p);

static inline bool mmtls_detect_bit(const uint64_t *bm, uint32_t i)
{
    return (bm[i >> 6] >> (i & 63)) & 1u;
}

static inline void mmtls_detect_bit_set(uint64_t *bm, uint32_t i)
{
    bm[i >> 6] |= (uint64_t)1 << (i & 63);
}

static inline void mmtls_detect_bit_clr(uint64_t *bm, uint32_t i)
{
    bm[i >> 6] &= ~((uint64_t)1 << (i & 63));
}

#endif
