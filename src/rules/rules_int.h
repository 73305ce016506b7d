/* rules — internals shared by the parser files and the unit tests (not part of the API). */
#ifndef MMTLS_RULES_INT_H
#define MMTLS_RULES_INT_H

#include "rules/rules.h"

/* State of one mmtls_rules_parse call. */
struct mmtls_rules_pctx {
    const char *line;                    /* borrowed: the rule line */
    size_t len;                          /* bytes of line */
    struct mmtls_rule *r;                /* borrowed: the rule being filled */
    struct mmtls_rules_err *err;         /* borrowed, may be NULL */
    const struct mmtls_rules_vars *vars; /* borrowed, may be NULL */
};

/* Records the reason (printf-style) and offset in ctx->err and returns rc. */
int mmtls_rules_fail(struct mmtls_rules_pctx *c, int rc, size_t off, const char *fmt, ...)
    MMTLS_PRINTF(4, 5);

/* Copies n bytes into the rule's arena; MMTLS_E_UNSUPPORTED ("rule too large") when full. */
MMTLS_MUST_USE int mmtls_rules_arena_put(struct mmtls_rules_pctx *c, const void *p, size_t n,
                                         size_t off, struct mmtls_rules_str *out);

/* Parses the header address spec at line[off, off + n) into *a (text kept in the arena). */
MMTLS_MUST_USE int mmtls_rules_addr_parse(struct mmtls_rules_pctx *c, size_t off, size_t n,
                                          struct mmtls_rules_addr *a);
/* Parses the header port spec at line[off, off + n) into *p (text kept in the arena). */
MMTLS_MUST_USE int mmtls_rules_ports_parse(struct mmtls_rules_pctx *c, size_t off, size_t n,
                                           struct mmtls_rules_ports *p);

static inline bool mmtls_rules_is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

#endif
