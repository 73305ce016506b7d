/* Fuzz target: mmtls_rules_parse on one line (with variables, every dialect) and
 * mmtls_rules_load_buf on the whole input as a rule file.  Checks the invariants of an
 * accepted rule: every arena string and item lies inside the used arena, fp is valid. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules.h"

static int lookup(void *ctx, const char *name, size_t len, bool port, struct mmtls_slice *v)
{
    static const char *const vars[][2] = {
        {"HOME_NET", "[10.0.0.0/8,!10.1.0.0/16,2001:db8::/32]"},
        {"EXTERNAL_NET", "!$HOME_NET"},
        {"HTTP_PORTS", "80 8080 [8000:8100,!8050]"},
        {"LOOP", "[$LOOP]"},
    };

    (void)ctx;
    (void)port;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(vars); i++) {
        if (strlen(vars[i][0]) == len && memcmp(vars[i][0], name, len) == 0) {
            v->p = (const uint8_t *)vars[i][1];
            v->len = strlen(vars[i][1]);
            return 0;
        }
    }
    return -1;
}

static void check_str(const struct mmtls_rule *r, struct mmtls_rules_str s)
{
    if ((uint32_t)s.off + s.len > r->arena_len) {
        abort();
    }
}

static void check(const struct mmtls_rule *r)
{
    check_str(r, r->msg);
    check_str(r, r->classtype);
    check_str(r, r->metadata);
    check_str(r, r->service);
    check_str(r, r->src.text);
    check_str(r, r->dst.text);
    check_str(r, r->sport.text);
    check_str(r, r->dport.text);
    if (r->nrefs > MMTLS_RULES_MAX_REFS || r->nitems > MMTLS_RULES_MAX_ITEMS ||
        r->src.n > MMTLS_RULES_MAX_NETS || r->dst.n > MMTLS_RULES_MAX_NETS ||
        r->sport.n > MMTLS_RULES_MAX_PORTS || r->dport.n > MMTLS_RULES_MAX_PORTS || r->sid == 0 ||
        r->arena_len > MMTLS_RULES_ARENA_MAX) {
        abort();
    }
    for (unsigned i = 0; i < r->nrefs; i++) {
        check_str(r, r->refs[i]);
    }
    for (unsigned i = 0; i < r->nitems; i++) {
        const struct mmtls_rules_item *it = &r->item[i];

        check_str(r, it->pat);
        if (it->buf >= MMTLS_RULES_BUF_COUNT || it->pat.len == 0 ||
            it->pat.len > MMTLS_RULES_MAX_PATTERN) {
            abort();
        }
        if ((it->flags & MMTLS_RULES_I_FP_PART) != 0 &&
            (it->fp_len == 0 || (size_t)it->fp_off + it->fp_len > it->pat.len)) {
            abort();
        }
    }
    if (r->fp >= (int)r->nitems || (r->fp >= 0 && r->item[r->fp].kind != MMTLS_RULES_CONTENT)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mmtls_rule r;
    static const struct mmtls_rules_vars vars = {lookup, NULL};
    struct mmtls_rules_parse_opts opts = {sizeof(opts), MMTLS_RULES_DIALECT_AUTO, &vars};
    struct mmtls_rules_err err;
    struct mmtls_rules_set *s;
    /* a private copy of exactly `size` bytes, so ASan catches any read past the end */
    char *line = malloc(size ? size : 1);

    if (line == NULL) {
        return 0;
    }
    memcpy(line, data, size);
    for (int d = MMTLS_RULES_DIALECT_AUTO; d <= MMTLS_RULES_DIALECT_SURICATA; d++) {
        opts.dialect = (enum mmtls_rules_dialect)d;
        int rc = mmtls_rules_parse(line, size, &opts, &r, &err);

        if (rc == 0) {
            check(&r);
            (void)mmtls_rules_check(&r, &err);
        } else if (rc != MMTLS_DECLINED && rc != MMTLS_E_MALFORMED && rc != MMTLS_E_UNSUPPORTED) {
            abort();
        } else if (rc < 0 && (err.reason[0] == '\0' || err.off > size)) {
            abort();
        }
    }
    if (size < 4096 && mmtls_rules_set_new(&s) == 0) {
        if (mmtls_rules_load_buf(s, line, size, "fuzz") == 0) {
            struct mmtls_rules_stats st;

            mmtls_rules_stats_get(s, &st);
            if (st.loaded + st.skipped != st.rules || st.loaded != mmtls_rules_count(s)) {
                abort();
            }
            for (size_t i = 0; i < mmtls_rules_count(s); i++) {
                check(mmtls_rules_get(s, i));
            }
        }
        mmtls_rules_set_free(s);
    }
    free(line);
    return 0;
}
