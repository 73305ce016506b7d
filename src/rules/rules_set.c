/* rules — the rule set: variables, file loading, duplicate sids and the load summary. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules_int.h"

struct var {
    char *name;  /* owned */
    char *value; /* owned */
};

struct reason {
    char *text; /* owned */
    uint64_t count;
    uint32_t gid, sid;
    char *where; /* owned */
};

struct sid_slot {
    uint64_t key; /* gid << 32 | sid; 0 = empty (sid is never 0) */
    size_t idx;   /* index in rules[] */
};

struct mmtls_rules_set {
    struct mmtls_rule **rules; /* owned array of owned, size-trimmed rules */
    size_t n, cap;
    struct var *vars; /* owned */
    size_t nvars;
    struct reason *reasons; /* owned; kept sorted by count (desc), then text */
    size_t nreasons;
    struct sid_slot *sids; /* owned; open addressing, power-of-two size */
    size_t sid_cap, sid_n;
    struct mmtls_rules_stats st;
    enum mmtls_rules_dialect dialect;
    struct mmtls_rule *scratch; /* owned: parse output before it is trimmed and stored */
};

/* Suricata's default suricata.yaml address-groups/port-groups (HOME_NET widened to any, as the
 * IDS sees decrypted flows from anywhere), plus Snort's SIP_* defaults. */
static const char *const default_vars[][2] = {
    {"HOME_NET", "any"},
    {"EXTERNAL_NET", "any"},
    {"HTTP_SERVERS", "$HOME_NET"},
    {"SMTP_SERVERS", "$HOME_NET"},
    {"SQL_SERVERS", "$HOME_NET"},
    {"DNS_SERVERS", "$HOME_NET"},
    {"TELNET_SERVERS", "$HOME_NET"},
    {"SIP_SERVERS", "$HOME_NET"},
    {"DC_SERVERS", "$HOME_NET"},
    {"AIM_SERVERS", "$EXTERNAL_NET"},
    {"HTTP_PORTS", "80"},
    {"SHELLCODE_PORTS", "!80"},
    {"ORACLE_PORTS", "1521"},
    {"SSH_PORTS", "22"},
    {"FTP_PORTS", "21"},
    {"SIP_PORTS", "[5060,5061,5600]"},
    {"FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"},
    {"DNP3_PORTS", "20000"},
    {"MODBUS_PORTS", "502"},
};

static struct var *var_find(const struct mmtls_rules_set *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->nvars; i++) {
        if (strlen(s->vars[i].name) == len && memcmp(s->vars[i].name, name, len) == 0) {
            return &s->vars[i];
        }
    }
    return NULL;
}

int mmtls_rules_var_set(struct mmtls_rules_set *s, const char *name, const char *value)
{
    struct var *v;
    char *nv;

    if (s == NULL || name == NULL || value == NULL || name[0] == '\0') {
        return MMTLS_E_INVAL;
    }
    for (const char *p = name; *p != '\0'; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_')) {
            return MMTLS_E_INVAL;
        }
    }
    nv = strdup(value);
    if (nv == NULL) {
        return MMTLS_E_NOMEM;
    }
    v = var_find(s, name, strlen(name));
    if (v != NULL) {
        free(v->value);
        v->value = nv;
        return 0;
    }
    v = realloc(s->vars, (s->nvars + 1) * sizeof(*v));
    if (v == NULL) {
        free(nv);
        return MMTLS_E_NOMEM;
    }
    s->vars = v;
    v = &s->vars[s->nvars];
    v->name = strdup(name);
    if (v->name == NULL) {
        free(nv);
        return MMTLS_E_NOMEM;
    }
    v->value = nv;
    s->nvars++;
    return 0;
}

const char *mmtls_rules_var_get(const struct mmtls_rules_set *s, const char *name)
{
    const struct var *v = name != NULL ? var_find(s, name, strlen(name)) : NULL;

    return v != NULL ? v->value : NULL;
}

static int var_lookup(void *ctx, const char *name, size_t len, bool port, struct mmtls_slice *value)
{
    const struct var *v = var_find(ctx, name, len);

    (void)port; /* one namespace: Snort and Suricata names do not collide in practice */
    if (v == NULL) {
        return MMTLS_E_NOTFOUND;
    }
    value->p = (const uint8_t *)v->value;
    value->len = strlen(v->value);
    return 0;
}

int mmtls_rules_set_new(struct mmtls_rules_set **out)
{
    struct mmtls_rules_set *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (s == NULL) {
        return MMTLS_E_NOMEM;
    }
    s->scratch = malloc(sizeof(*s->scratch));
    if (s->scratch == NULL) {
        goto out_free;
    }
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(default_vars); i++) {
        if (mmtls_rules_var_set(s, default_vars[i][0], default_vars[i][1]) != 0) {
            goto out_free;
        }
    }
    *out = s;
    return 0;

out_free:
    mmtls_rules_set_free(s);
    return MMTLS_E_NOMEM;
}

void mmtls_rules_set_free(struct mmtls_rules_set *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        free(s->rules[i]);
    }
    free(s->rules);
    for (size_t i = 0; i < s->nvars; i++) {
        free(s->vars[i].name);
        free(s->vars[i].value);
    }
    free(s->vars);
    for (size_t i = 0; i < s->nreasons; i++) {
        free(s->reasons[i].text);
        free(s->reasons[i].where);
    }
    free(s->reasons);
    free(s->sids);
    free(s->scratch);
    free(s);
}

void mmtls_rules_set_dialect(struct mmtls_rules_set *s, enum mmtls_rules_dialect d)
{
    s->dialect = d;
}

/* ------------------------------------------------------------------------------------------ */
/* gid:sid index                                                                               */

static size_t sid_hash(uint64_t key, size_t mask)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & mask;
}

static struct sid_slot *sid_find(const struct mmtls_rules_set *s, uint64_t key)
{
    if (s->sid_cap == 0) {
        return NULL;
    }
    for (size_t i = sid_hash(key, s->sid_cap - 1), k = 0; k < s->sid_cap;
         i = (i + 1) & (s->sid_cap - 1), k++) {
        if (s->sids[i].key == key) {
            return &s->sids[i];
        }
        if (s->sids[i].key == 0) {
            return NULL;
        }
    }
    return NULL;
}

static void sid_put(struct sid_slot *tab, size_t cap, uint64_t key, size_t idx)
{
    size_t i = sid_hash(key, cap - 1);

    while (tab[i].key != 0) {
        i = (i + 1) & (cap - 1);
    }
    tab[i].key = key;
    tab[i].idx = idx;
}

static int sid_insert(struct mmtls_rules_set *s, uint64_t key, size_t idx)
{
    if ((s->sid_n + 1) * 2 > s->sid_cap) {
        size_t ncap = s->sid_cap != 0 ? s->sid_cap * 2 : 1024;
        struct sid_slot *t = calloc(ncap, sizeof(*t));

        if (t == NULL) {
            return MMTLS_E_NOMEM;
        }
        for (size_t i = 0; i < s->sid_cap; i++) {
            if (s->sids[i].key != 0) {
                sid_put(t, ncap, s->sids[i].key, s->sids[i].idx);
            }
        }
        free(s->sids);
        s->sids = t;
        s->sid_cap = ncap;
    }
    sid_put(s->sids, s->sid_cap, key, idx);
    s->sid_n++;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Skip reasons                                                                                */

static bool reason_before(const struct reason *a, const struct reason *b)
{
    return a->count > b->count || (a->count == b->count && strcmp(a->text, b->text) < 0);
}

static int reason_count(struct mmtls_rules_set *s, const char *text, uint32_t gid, uint32_t sid,
                        const char *where)
{
    size_t i;

    for (i = 0; i < s->nreasons; i++) {
        if (strcmp(s->reasons[i].text, text) == 0) {
            break;
        }
    }
    if (i == s->nreasons) {
        struct reason *r = realloc(s->reasons, (s->nreasons + 1) * sizeof(*r));

        if (r == NULL) {
            return MMTLS_E_NOMEM;
        }
        s->reasons = r;
        r = &s->reasons[i];
        memset(r, 0, sizeof(*r));
        r->text = strdup(text);
        r->where = strdup(where != NULL ? where : "");
        if (r->text == NULL || r->where == NULL) {
            free(r->text);
            free(r->where);
            return MMTLS_E_NOMEM;
        }
        r->gid = gid;
        r->sid = sid;
        s->nreasons++;
    }
    s->reasons[i].count++;
    /* keep the array sorted: the entry only moves towards the front */
    while (i > 0 && reason_before(&s->reasons[i], &s->reasons[i - 1])) {
        struct reason t = s->reasons[i - 1];

        s->reasons[i - 1] = s->reasons[i];
        s->reasons[i] = t;
        i--;
    }
    return 0;
}

/* gid and sid of a rule that did not parse, for the warning: the first `sid:N` / `gid:N`
 * after '(' (0 when absent).  Reads at most len bytes. */
static uint32_t guess_num(const char *line, size_t len, const char *kw)
{
    size_t kl = strlen(kw);
    const char *open = memchr(line, '(', len);

    if (open == NULL) {
        return 0;
    }
    for (size_t i = (size_t)(open - line); i + kl < len; i++) {
        if (memcmp(line + i, kw, kl) == 0 &&
            (line[i - 1] == ';' || line[i - 1] == '(' || mmtls_rules_is_space(line[i - 1]))) {
            uint64_t v = 0;

            i += kl;
            while (i < len && mmtls_rules_is_space(line[i])) {
                i++;
            }
            while (i < len && line[i] >= '0' && line[i] <= '9' && v <= 0xffffffffULL) {
                v = v * 10 + (uint64_t)(line[i++] - '0');
            }
            return v <= 0xffffffffULL ? (uint32_t)v : 0;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Loading                                                                                     */

static int skip(struct mmtls_rules_set *s, int rc, const char *reason, const char *line, size_t len,
                const char *where)
{
    char text[MMTLS_RULES_REASON_MAX + 16];
    uint32_t gid = guess_num(line, len, "gid:"), sid = guess_num(line, len, "sid:");
    int err;

    if (rc == MMTLS_E_MALFORMED) {
        s->st.malformed++;
        snprintf(text, sizeof(text), "malformed: %s", reason);
    } else if (rc == MMTLS_E_CONFLICT) {
        s->st.duplicates++;
        snprintf(text, sizeof(text), "%s", reason);
    } else {
        s->st.unsupported++;
        snprintf(text, sizeof(text), "%s", reason);
    }
    s->st.skipped++;
    err = reason_count(s, text, gid != 0 ? gid : 1, sid, where);
    return err != 0 ? err : rc;
}

int mmtls_rules_add_line(struct mmtls_rules_set *s, const char *line, size_t len, const char *where)
{
    struct mmtls_rules_vars vars = {var_lookup, s};
    struct mmtls_rules_parse_opts opts = {sizeof(opts), s->dialect, &vars};
    struct mmtls_rules_err err;
    struct mmtls_rule *r = s->scratch, *copy;
    uint64_t key;
    int rc;

    rc = mmtls_rules_parse(line, len, &opts, r, &err);
    if (rc == MMTLS_DECLINED) {
        return rc;
    }
    s->st.rules++;
    if (rc == 0) {
        rc = mmtls_rules_check(r, &err);
    }
    if (rc == MMTLS_E_INVAL) {
        return rc;
    }
    if (rc != 0) {
        return skip(s, rc == MMTLS_E_MALFORMED ? rc : MMTLS_E_UNSUPPORTED, err.reason, line, len,
                    where);
    }
    key = (uint64_t)r->gid << 32 | r->sid;
    if (sid_find(s, key) != NULL) {
        return skip(s, MMTLS_E_CONFLICT, "duplicate sid", line, len, where);
    }
    if (s->n == s->cap) {
        size_t ncap = s->cap != 0 ? s->cap * 2 : 256;
        struct mmtls_rule **nr = realloc(s->rules, ncap * sizeof(*nr));

        if (nr == NULL) {
            return MMTLS_E_NOMEM;
        }
        s->rules = nr;
        s->cap = ncap;
    }
    /* store only the used part of the arena (see struct mmtls_rule) */
    copy = malloc(mmtls_rules_rule_size(r));
    if (copy == NULL) {
        return MMTLS_E_NOMEM;
    }
    memcpy(copy, r, mmtls_rules_rule_size(r));
    if (sid_insert(s, key, s->n) != 0) {
        free(copy);
        return MMTLS_E_NOMEM;
    }
    s->rules[s->n++] = copy;
    s->st.loaded++;
    return 0;
}

int mmtls_rules_load_buf(struct mmtls_rules_set *s, const char *text, size_t len, const char *name)
{
    struct mmtls_buf logical = {0};
    char where[256];
    size_t i = 0, lineno = 0, first = 0;
    bool too_long = false;
    int rc = 0;

    logical.max = MMTLS_RULES_LINE_MAX;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t e = nl != NULL ? (size_t)(nl - text) : len, l = e - i;
        bool cont;

        lineno++;
        s->st.lines++;
        if (logical.len == 0 && !too_long) {
            first = lineno;
        }
        if (l > 0 && text[i + l - 1] == '\r') {
            l--;
        }
        cont = l > 0 && text[i + l - 1] == '\\';
        if (cont) {
            l--;
        }
        if (!too_long) {
            rc = mmtls_buf_append(&logical, text + i, l);
            if (rc == MMTLS_E_MEMCAP) {
                too_long = true;
                rc = 0;
            } else if (rc != 0) {
                break;
            }
        }
        i = nl != NULL ? e + 1 : len;
        if (cont && i < len) {
            continue;
        }
        snprintf(where, sizeof(where), "%s:%zu", name != NULL ? name : "", first);
        if (too_long) {
            s->st.rules++;
            rc = skip(s, MMTLS_E_MALFORMED, "rule longer than 64 KB", (const char *)logical.p,
                      logical.len, where);
            too_long = false;
        } else {
            rc = mmtls_rules_add_line(s, (const char *)logical.p, logical.len, where);
        }
        logical.len = 0;
        if (rc == MMTLS_E_NOMEM) {
            break;
        }
        rc = 0;
    }
    mmtls_buf_fini(&logical, false);
    return rc == MMTLS_E_NOMEM || rc == MMTLS_E_MEMCAP ? MMTLS_E_NOMEM : 0;
}

int mmtls_rules_load_file(struct mmtls_rules_set *s, const char *path, char *err, size_t errcap)
{
    struct mmtls_buf b = {0};
    char chunk[65536];
    FILE *f;
    size_t n;
    int rc, saved;

    f = fopen(path, "rb");
    if (f == NULL) {
        saved = errno;
        mmtls_errf(err, errcap, "%s: %s", path, strerror(saved));
        errno = saved;
        return MMTLS_E_IO;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = mmtls_buf_append(&b, chunk, n);
        if (rc != 0) {
            mmtls_errf(err, errcap, "%s: out of memory", path);
            goto out_close;
        }
    }
    if (ferror(f)) {
        saved = errno;
        mmtls_errf(err, errcap, "%s: %s", path, strerror(saved));
        errno = saved;
        rc = MMTLS_E_IO;
        goto out_close;
    }
    rc = mmtls_rules_load_buf(s, (const char *)b.p, b.len, path);
    if (rc != 0) {
        mmtls_errf(err, errcap, "%s: out of memory", path);
    }

out_close:
    fclose(f);
    mmtls_buf_fini(&b, false);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Access and summary                                                                          */

size_t mmtls_rules_count(const struct mmtls_rules_set *s)
{
    return s->n;
}

const struct mmtls_rule *mmtls_rules_get(const struct mmtls_rules_set *s, size_t i)
{
    return i < s->n ? s->rules[i] : NULL;
}

const struct mmtls_rule *mmtls_rules_find(const struct mmtls_rules_set *s, uint32_t gid,
                                          uint32_t sid)
{
    const struct sid_slot *slot = sid_find(s, (uint64_t)gid << 32 | sid);

    return slot != NULL ? s->rules[slot->idx] : NULL;
}

void mmtls_rules_stats_get(const struct mmtls_rules_set *s, struct mmtls_rules_stats *st)
{
    *st = s->st;
}

size_t mmtls_rules_reason_count(const struct mmtls_rules_set *s)
{
    return s->nreasons;
}

int mmtls_rules_reason_get(const struct mmtls_rules_set *s, size_t i,
                           struct mmtls_rules_reason *out)
{
    const struct reason *r;

    if (i >= s->nreasons) {
        return MMTLS_E_NOTFOUND;
    }
    r = &s->reasons[i];
    out->reason = r->text;
    out->count = r->count;
    out->first_gid = r->gid;
    out->first_sid = r->sid;
    out->first_where = r->where;
    return 0;
}

void mmtls_rules_summary_print(const struct mmtls_rules_set *s, FILE *f)
{
    fprintf(f, "rules: %" PRIu64 " loaded, %" PRIu64 " skipped\n", s->st.loaded, s->st.skipped);
    for (size_t i = 0; i < s->nreasons; i++) {
        const struct reason *r = &s->reasons[i];

        fprintf(f, "rules: skipped %" PRIu64 ": %s (first sid %" PRIu32 ":%" PRIu32 "%s%s)\n",
                r->count, r->text, r->gid, r->sid, r->where[0] != '\0' ? " at " : "", r->where);
    }
}
