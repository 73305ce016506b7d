/* rules — one Snort 3 / Suricata rule line -> struct mmtls_rule.
 *
 * References: Snort 3 manual §"Writing Rules" (rule header, content/pcre/sticky buffers);
 * Suricata user guide §"Rules Format", §"Payload Keywords", §"HTTP Keywords", §"Flow Keywords".
 *
 * The parse runs in two stages so that a truncated rule is always MALFORMED (never
 * UNSUPPORTED, never accepted): stage 1 checks the structure only (header tokens, options each
 * terminated by ';', the closing ')' and nothing after it); stage 2 gives the tokens meaning.
 */
#include <stdarg.h>
#include <stdio.h>

#include "rules/rules_int.h"

/* One option as found by stage 1: keyword and value as offsets into the line. */
struct opt {
    size_t kw, kwlen;   /* keyword */
    size_t val, vallen; /* value after ':', blanks trimmed (vallen 0 when none) */
    bool has_val;       /* a ':' was present */
};

/* Per-rule interpretation state of stage 2. */
struct st {
    uint8_t sticky; /* current sticky buffer (enum mmtls_rules_buf) */
    bool snort3;    /* underscore buffer names are sticky (else content modifiers) */
    bool legacy_buf[MMTLS_RULES_MAX_ITEMS]; /* item's buffer was set by a legacy modifier */
    bool have_sid, have_rev, have_gid, have_prio, have_msg, have_class, have_flow, have_svc;
    bool have_fp;
    uint32_t fp_len_set; /* bit per item: fast_pattern length given */
};

int mmtls_rules_fail(struct mmtls_rules_pctx *c, int rc, size_t off, const char *fmt, ...)
{
    if (c->err != NULL) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(c->err->reason, sizeof(c->err->reason), fmt, ap);
        va_end(ap);
        c->err->off = off;
    }
    return rc;
}

int mmtls_rules_arena_put(struct mmtls_rules_pctx *c, const void *p, size_t n, size_t off,
                          struct mmtls_rules_str *out)
{
    struct mmtls_rule *r = c->r;

    if (n > MMTLS_RULES_ARENA_MAX - r->arena_len) {
        return mmtls_rules_fail(c, MMTLS_E_UNSUPPORTED, off, "rule too large");
    }
    if (n > 0) {
        memcpy(r->arena + r->arena_len, p, n);
    }
    out->off = (uint16_t)r->arena_len;
    out->len = (uint16_t)n;
    r->arena_len += (uint32_t)n;
    return 0;
}

static const char *const buf_names[MMTLS_RULES_BUF_COUNT] = {
    [MMTLS_RULES_BUF_PKT] = "pkt_data",
    [MMTLS_RULES_BUF_HTTP_URI] = "http_uri",
    [MMTLS_RULES_BUF_HTTP_RAW_URI] = "http_raw_uri",
    [MMTLS_RULES_BUF_HTTP_METHOD] = "http_method",
    [MMTLS_RULES_BUF_HTTP_HEADER] = "http_header",
    [MMTLS_RULES_BUF_HTTP_RAW_HEADER] = "http_raw_header",
    [MMTLS_RULES_BUF_HTTP_COOKIE] = "http_cookie",
    [MMTLS_RULES_BUF_HTTP_USER_AGENT] = "http_user_agent",
    [MMTLS_RULES_BUF_HTTP_HOST] = "http_host",
    [MMTLS_RULES_BUF_HTTP_CLIENT_BODY] = "http_client_body",
    [MMTLS_RULES_BUF_HTTP_STAT_CODE] = "http_stat_code",
    [MMTLS_RULES_BUF_HTTP_SERVER_BODY] = "file_data",
    [MMTLS_RULES_BUF_TLS_SNI] = "tls.sni",
};

const char *mmtls_rules_buf_name(unsigned buf)
{
    return buf < MMTLS_RULES_BUF_COUNT ? buf_names[buf] : "?";
}

/* Buffer keywords.  `legacy`: Snort 3 sticky buffer, but a content modifier in Suricata and
 * Snort 2; the others are sticky in every dialect. */
static const struct {
    const char *name;
    uint8_t buf;
    bool legacy;
} buf_kws[] = {
    {"http_uri", MMTLS_RULES_BUF_HTTP_URI, true},
    {"http_raw_uri", MMTLS_RULES_BUF_HTTP_RAW_URI, true},
    {"http_method", MMTLS_RULES_BUF_HTTP_METHOD, true},
    {"http_header", MMTLS_RULES_BUF_HTTP_HEADER, true},
    {"http_raw_header", MMTLS_RULES_BUF_HTTP_RAW_HEADER, true},
    {"http_cookie", MMTLS_RULES_BUF_HTTP_COOKIE, true},
    {"http_user_agent", MMTLS_RULES_BUF_HTTP_USER_AGENT, true},
    {"http_host", MMTLS_RULES_BUF_HTTP_HOST, true},
    {"http_client_body", MMTLS_RULES_BUF_HTTP_CLIENT_BODY, true},
    {"http_stat_code", MMTLS_RULES_BUF_HTTP_STAT_CODE, true},
    {"http_server_body", MMTLS_RULES_BUF_HTTP_SERVER_BODY, true},
    {"http.uri", MMTLS_RULES_BUF_HTTP_URI, false},
    {"http.uri.raw", MMTLS_RULES_BUF_HTTP_RAW_URI, false},
    {"http.method", MMTLS_RULES_BUF_HTTP_METHOD, false},
    {"http.header", MMTLS_RULES_BUF_HTTP_HEADER, false},
    {"http.header.raw", MMTLS_RULES_BUF_HTTP_RAW_HEADER, false},
    {"http.cookie", MMTLS_RULES_BUF_HTTP_COOKIE, false},
    {"http.user_agent", MMTLS_RULES_BUF_HTTP_USER_AGENT, false},
    {"http.host", MMTLS_RULES_BUF_HTTP_HOST, false},
    {"http.request_body", MMTLS_RULES_BUF_HTTP_CLIENT_BODY, false},
    {"http.stat_code", MMTLS_RULES_BUF_HTTP_STAT_CODE, false},
    {"http.response_body", MMTLS_RULES_BUF_HTTP_SERVER_BODY, false},
    {"file_data", MMTLS_RULES_BUF_HTTP_SERVER_BODY, false},
    {"file.data", MMTLS_RULES_BUF_HTTP_SERVER_BODY, false},
    {"tls.sni", MMTLS_RULES_BUF_TLS_SNI, false},
    {"tls_sni", MMTLS_RULES_BUF_TLS_SNI, false},
    {"pkt_data", MMTLS_RULES_BUF_PKT, false},
    {"raw_data", MMTLS_RULES_BUF_PKT, false},
};

/* ------------------------------------------------------------------------------------------ */
/* Small lexical helpers                                                                       */

static bool eq(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);

    return n == l && memcmp(s, lit, l) == 0;
}

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && mmtls_rules_is_space(s[i])) {
        i++;
    }
    return i;
}

static void trim(const char *s, size_t *off, size_t *n)
{
    while (*n > 0 && mmtls_rules_is_space(s[*off])) {
        (*off)++;
        (*n)--;
    }
    while (*n > 0 && mmtls_rules_is_space(s[*off + *n - 1])) {
        (*n)--;
    }
}

static bool is_kw_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == '-';
}

/* Decimal integer in [min, max] written in s[0, n); -1 on a non-number (caller decides). */
static int parse_int(const char *s, size_t n, int64_t min, int64_t max, int64_t *v)
{
    size_t i = 0;
    bool neg = false;
    int64_t x = 0;

    if (i < n && (s[i] == '-' || s[i] == '+')) {
        neg = s[i] == '-';
        i++;
    }
    if (i == n) {
        return -1;
    }
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        x = x * 10 + (s[i] - '0');
        if (x > 0xffffffffLL) {
            return -2;
        }
    }
    if (neg) {
        x = -x;
    }
    if (x < min || x > max) {
        return -2;
    }
    *v = x;
    return 0;
}

/* Finds the closing quote of a string starting at s[i] == '"' (backslash escapes skip one
 * character).  Returns the index of the closing quote, or n when there is none. */
static size_t quote_end(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\') {
            i++;
            continue;
        }
        if (s[i] == '"') {
            return i;
        }
    }
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Stage 1: structure                                                                          */

/* A header token: up to a blank at bracket level 0 (lists may contain blanks). */
static size_t header_token(const char *s, size_t i, size_t n)
{
    int level = 0;

    while (i < n) {
        if (s[i] == '[') {
            level++;
        } else if (s[i] == ']') {
            level--;
        } else if ((mmtls_rules_is_space(s[i]) || s[i] == '(') && level <= 0) {
            break;
        }
        i++;
    }
    return i;
}

/* Scans `(opt; opt: value; ... )` from s[i] (just after '('); fills opts. */
static int scan_options(struct mmtls_rules_pctx *c, size_t i, struct opt *opts, size_t *nopts)
{
    const char *s = c->line;
    size_t n = c->len, k = 0;

    for (;;) {
        struct opt *o;

        i = skip_ws(s, i, n);
        if (i == n) {
            return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "missing ')'");
        }
        if (s[i] == ')') {
            i = skip_ws(s, i + 1, n);
            if (i != n) {
                return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "text after ')'");
            }
            *nopts = k;
            return 0;
        }
        if (k == MMTLS_RULES_MAX_OPTIONS) {
            return mmtls_rules_fail(c, MMTLS_E_UNSUPPORTED, i, "too many options");
        }
        o = &opts[k];
        o->kw = i;
        while (i < n && is_kw_char(s[i])) {
            i++;
        }
        o->kwlen = i - o->kw;
        if (o->kwlen == 0) {
            return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "expected an option name");
        }
        i = skip_ws(s, i, n);
        o->has_val = false;
        o->val = i;
        o->vallen = 0;
        if (i < n && s[i] == ':') {
            bool inq = false;

            o->has_val = true;
            o->val = ++i;
            /* the value ends at the first ';' outside quotes not escaped by '\' */
            while (i < n && (inq || s[i] != ';')) {
                if (s[i] == '\\') {
                    i++;
                } else if (s[i] == '"') {
                    inq = !inq;
                }
                i++;
            }
            if (i >= n) {
                return mmtls_rules_fail(c, MMTLS_E_MALFORMED, o->kw, "option not terminated");
            }
            o->vallen = i - o->val;
            trim(s, &o->val, &o->vallen);
        }
        if (i >= n || s[i] != ';') {
            return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "expected ';'");
        }
        i++;
        k++;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Stage 2: options                                                                            */

static const char *kw_str(const struct mmtls_rules_pctx *c, const struct opt *o)
{
    return c->line + o->kw;
}

/* Reason naming an option the IDS does not evaluate. */
static int unsupported_opt(struct mmtls_rules_pctx *c, const struct opt *o)
{
    return mmtls_rules_fail(c, MMTLS_E_UNSUPPORTED, o->kw, "option %.*s",
                            (int)MMTLS_MIN(o->kwlen, 40), kw_str(c, o));
}

static int need_val(struct mmtls_rules_pctx *c, const struct opt *o)
{
    if (!o->has_val || o->vallen == 0) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, o->kw, "%.*s needs a value",
                                (int)MMTLS_MIN(o->kwlen, 40), kw_str(c, o));
    }
    return 0;
}

static int no_val(struct mmtls_rules_pctx *c, const struct opt *o)
{
    if (o->has_val) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, o->kw, "%.*s takes no value",
                                (int)MMTLS_MIN(o->kwlen, 40), kw_str(c, o));
    }
    return 0;
}

static int dup(struct mmtls_rules_pctx *c, const struct opt *o, bool *seen)
{
    if (*seen) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, o->kw, "duplicate %.*s",
                                (int)MMTLS_MIN(o->kwlen, 40), kw_str(c, o));
    }
    *seen = true;
    return 0;
}

static int u32_opt(struct mmtls_rules_pctx *c, const struct opt *o, uint32_t min, uint32_t *v)
{
    int64_t x;

    MMTLS_TRY(need_val(c, o));
    if (parse_int(c->line + o->val, o->vallen, min, 0xffffffffLL, &x) != 0) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, o->val, "bad %.*s value",
                                (int)MMTLS_MIN(o->kwlen, 40), kw_str(c, o));
    }
    *v = (uint32_t)x;
    return 0;
}

/* Copies a text value into the arena.  Quoted: the quotes are removed and `\x` becomes x. */
static int text_opt(struct mmtls_rules_pctx *c, const struct opt *o, struct mmtls_rules_str *out)
{
    const char *s = c->line;
    size_t i = o->val, end = o->val + o->vallen, w;

    MMTLS_TRY(need_val(c, o));
    if (s[i] != '"') {
        return mmtls_rules_arena_put(c, s + i, o->vallen, o->val, out);
    }
    if (quote_end(s, i, end) != end - 1) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, o->val, "bad quoted string");
    }
    /* decode in place at the arena tail (the result is never longer than the input) */
    if (o->vallen > MMTLS_RULES_ARENA_MAX - c->r->arena_len) {
        return mmtls_rules_fail(c, MMTLS_E_UNSUPPORTED, o->val, "rule too large");
    }
    w = c->r->arena_len;
    for (i++; i < end - 1; i++) {
        if (s[i] == '\\' && i + 1 < end - 1) {
            i++;
        }
        c->r->arena[w++] = (uint8_t)s[i];
    }
    out->off = (uint16_t)c->r->arena_len;
    out->len = (uint16_t)(w - c->r->arena_len);
    c->r->arena_len = (uint32_t)w;
    return 0;
}

/* Decodes a content string s[q0 + 1, q1) (q0/q1: the quotes): text with `\"` `\;` `\\` `\|`
 * `\:` escapes, and `|41 42|` hex runs. */
static int content_decode(struct mmtls_rules_pctx *c, size_t q0, size_t q1, uint8_t *out,
                          size_t *outlen)
{
    const char *s = c->line;
    size_t w = 0;
    bool hex = false;
    int hi = -1;

    for (size_t i = q0 + 1; i < q1; i++) {
        char ch = s[i];

        if (hex) {
            int v;

            if (ch == '|') {
                if (hi >= 0) {
                    return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "odd number of hex digits");
                }
                hex = false;
                continue;
            }
            if (ch == ' ' || ch == '\t') {
                if (hi >= 0) {
                    return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "split hex byte");
                }
                continue;
            }
            v = mmtls_hexval((unsigned char)ch);
            if (v < 0) {
                return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "bad hex digit");
            }
            if (hi < 0) {
                hi = v;
                continue;
            }
            if (w == MMTLS_RULES_MAX_PATTERN) {
                return mmtls_rules_fail(c, MMTLS_E_UNSUPPORTED, q0, "content too long");
            }
            out[w++] = (uint8_t)(hi << 4 | v);
            hi = -1;
            continue;
        }
        if (ch == '|') {
            hex = true;
            continue;
        }
        if (ch == '\\') {
            if (i + 1 >= q1 || strchr("\";\\|:", s[i + 1]) == NULL || s[i + 1] == '\0') {
                return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "bad escape in content");
            }
            ch = s[++i];
        } else if (ch == ';' || ch == '"') {
            /* Suricata requires these escaped; they can only come from a mis-quoted rule */
            return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "unescaped '%c' in content", ch);
        }
        if (w == MMTLS_RULES_MAX_PATTERN) {
            return mmtls_rules_fail(c, MMTLS_E_UNSUPPORTED, q0, "content too long");
        }
        out[w++] = (uint8_t)ch;
    }
    if (hex) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, q1, "unterminated hex run");
    }
    *outlen = w;
    return 0;
}

static struct mmtls_rules_item *last_item(struct mmtls_rules_pctx *c)
{
    return c->r->nitems > 0 ? &c->r->item[c->r->nitems - 1] : NULL;
}

/* Applies one content modifier (either dialect) to the last item.  name/arg: line offsets. */
static int apply_mod(struct mmtls_rules_pctx *c, struct st *st, size_t name, size_t namelen,
                     size_t arg, size_t arglen)
{
    const char *s = c->line;
    struct mmtls_rules_item *it = last_item(c);
    static const struct {
        const char *name;
        uint16_t flag;
        int64_t min, max;
    } nums[] = {
        {"offset", MMTLS_RULES_I_OFFSET, -65535, 65535},
        {"depth", MMTLS_RULES_I_DEPTH, 1, 65535},
        {"distance", MMTLS_RULES_I_DISTANCE, -65535, 65535},
        {"within", MMTLS_RULES_I_WITHIN, 1, 65535},
        {"fast_pattern_offset", MMTLS_RULES_I_FP_PART, 0, 65535},
        {"fast_pattern_length", MMTLS_RULES_I_FP_PART, 1, 65535},
    };

    if (it == NULL || it->kind != MMTLS_RULES_CONTENT) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, name, "%.*s needs a content",
                                (int)MMTLS_MIN(namelen, 40), s + name);
    }
    if (eq(s + name, namelen, "nocase")) {
        if (arglen != 0 || (it->flags & MMTLS_RULES_I_NOCASE) != 0) {
            return mmtls_rules_fail(c, MMTLS_E_MALFORMED, name, "bad nocase");
        }
        it->flags |= MMTLS_RULES_I_NOCASE;
        return 0;
    }
    if (eq(s + name, namelen, "fast_pattern")) {
        if (st->have_fp) {
            return mmtls_rules_fail(c, MMTLS_E_MALFORMED, name, "duplicate fast_pattern");
        }
        st->have_fp = true;
        it->flags |= MMTLS_RULES_I_FAST_PATTERN;
        if (arglen == 0) {
            return 0;
        }
        if (eq(s + arg, arglen, "only")) {
            it->flags |= MMTLS_RULES_I_FP_ONLY;
            return 0;
        }
        /* Suricata fast_pattern:<offset>,<length> */
        const char *comma = memchr(s + arg, ',', arglen);
        int64_t a, b;
        size_t ao = arg, al, bo, bl;

        if (comma == NULL) {
            return mmtls_rules_fail(c, MMTLS_E_MALFORMED, arg, "bad fast_pattern value");
        }
        al = (size_t)(comma - (s + arg));
        bo = ao + al + 1;
        bl = arglen - al - 1;
        trim(s, &ao, &al);
        trim(s, &bo, &bl);
        if (parse_int(s + ao, al, 0, 65535, &a) != 0 || parse_int(s + bo, bl, 1, 65535, &b) != 0) {
            return mmtls_rules_fail(c, MMTLS_E_MALFORMED, arg, "bad fast_pattern value");
        }
        it->flags |= MMTLS_RULES_I_FP_PART;
        it->fp_off = (uint16_t)a;
        it->fp_len = (uint16_t)b;
        st->fp_len_set |= 1u << (c->r->nitems - 1);
        return 0;
    }
    for (size_t k = 0; k < MMTLS_ARRAY_SIZE(nums); k++) {
        int64_t v;
        int rc;

        if (!eq(s + name, namelen, nums[k].name)) {
            continue;
        }
        if (arglen == 0) {
            return mmtls_rules_fail(c, MMTLS_E_MALFORMED, name, "%s needs a value", nums[k].name);
        }
        rc = parse_int(s + arg, arglen, nums[k].min, nums[k].max, &v);
        if (rc == -1 && (s[arg] == '_' || (s[arg] >= 'a' && s[arg] <= 'z') ||
                         (s[arg] >= 'A' && s[arg] <= 'Z'))) {
            /* a byte_extract variable: needs byte_extract, which is not evaluated */
            return mmtls_rules_fail(c, MMTLS_E_UNSUPPORTED, arg, "%s with a variable",
                                    nums[k].name);
        }
        if (rc != 0) {
            return mmtls_rules_fail(c, MMTLS_E_MALFORMED, arg, "bad %s value", nums[k].name);
        }
        if (k >= 4) {
            if (k == 4) {
                it->fp_off = (uint16_t)v;
            } else {
                it->fp_len = (uint16_t)v;
                st->fp_len_set |= 1u << (c->r->nitems - 1);
            }
            it->flags |= MMTLS_RULES_I_FP_PART;
            return 0;
        }
        if ((it->flags & nums[k].flag) != 0) {
            return mmtls_rules_fail(c, MMTLS_E_MALFORMED, name, "duplicate %s", nums[k].name);
        }
        it->flags |= nums[k].flag;
        switch (k) {
        case 0: it->offset = (int32_t)v; break;
        case 1: it->depth = (int32_t)v; break;
        case 2: it->distance = (int32_t)v; break;
        default: it->within = (int32_t)v; break;
        }
        return 0;
    }
    return mmtls_rules_fail(c, MMTLS_E_UNSUPPORTED, name, "content modifier %.*s",
                            (int)MMTLS_MIN(namelen, 40), s + name);
}

static int new_item(struct mmtls_rules_pctx *c, const struct st *st, size_t off,
                    struct mmtls_rules_item **out)
{
    struct mmtls_rules_item *it = NULL;

    if (c->r->nitems == MMTLS_RULES_MAX_ITEMS) {
        return mmtls_rules_fail(c, MMTLS_E_UNSUPPORTED, off, "too many content/pcre");
    }
    it = &c->r->item[c->r->nitems++];
    memset(it, 0, sizeof(*it));
    it->buf = st->sticky;
    *out = it;
    return 0;
}

static int content_opt(struct mmtls_rules_pctx *c, struct st *st, const struct opt *o)
{
    const char *s = c->line;
    size_t i = o->val, end = o->val + o->vallen, q1, plen = 0;
    uint8_t pat[MMTLS_RULES_MAX_PATTERN];
    struct mmtls_rules_item *it = NULL;
    bool neg = false;

    MMTLS_TRY(need_val(c, o));
    if (s[i] == '!') {
        neg = true;
        i = skip_ws(s, i + 1, end);
    }
    if (i >= end || s[i] != '"') {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "content needs a quoted string");
    }
    q1 = quote_end(s, i, end);
    if (q1 >= end) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "unterminated string");
    }
    MMTLS_TRY(content_decode(c, i, q1, pat, &plen));
    if (plen == 0) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "empty content");
    }
    MMTLS_TRY(new_item(c, st, o->kw, &it));
    it->kind = MMTLS_RULES_CONTENT;
    if (neg) {
        it->flags |= MMTLS_RULES_I_NEGATED;
    }
    MMTLS_TRY(mmtls_rules_arena_put(c, pat, plen, i, &it->pat));
    /* Snort 3: content:"x", depth 16, nocase; the modifiers follow, comma separated */
    i = skip_ws(s, q1 + 1, end);
    if (i == end) {
        return 0;
    }
    if (s[i] != ',') {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "text after content string");
    }
    while (i < end) { /* s[i] == ','; each pass consumes it and what follows */
        size_t e = i + 1, name, namelen = 0, arg, arglen;

        while (e < end && s[e] != ',') {
            e++;
        }
        name = skip_ws(s, i + 1, e);
        while (name + namelen < e && is_kw_char(s[name + namelen])) {
            namelen++;
        }
        if (namelen == 0) {
            return mmtls_rules_fail(c, MMTLS_E_MALFORMED, name, "empty content modifier");
        }
        arg = name + namelen;
        arglen = e - arg;
        trim(s, &arg, &arglen);
        MMTLS_TRY(apply_mod(c, st, name, namelen, arg, arglen));
        i = e;
    }
    return 0;
}

/* pcre flags other than the buffer ones (PCRE / Snort 2 / Suricata "pcre" documentation). */
static int pcre_flag(char f, uint16_t *bits, uint16_t *iflags, int *buf)
{
    static const char flag_ch[] = "ismxAEGO";
    static const char buf_ch[] = "UIMHDCVWPSQ";
    static const uint8_t buf_of[] = {
        MMTLS_RULES_BUF_HTTP_URI,         MMTLS_RULES_BUF_HTTP_RAW_URI,
        MMTLS_RULES_BUF_HTTP_METHOD,      MMTLS_RULES_BUF_HTTP_HEADER,
        MMTLS_RULES_BUF_HTTP_RAW_HEADER,  MMTLS_RULES_BUF_HTTP_COOKIE,
        MMTLS_RULES_BUF_HTTP_USER_AGENT,  MMTLS_RULES_BUF_HTTP_HOST,
        MMTLS_RULES_BUF_HTTP_CLIENT_BODY, MMTLS_RULES_BUF_HTTP_STAT_CODE,
        MMTLS_RULES_BUF_HTTP_SERVER_BODY,
    };
    const char *p;

    if (f == '\0') {
        return MMTLS_E_UNSUPPORTED;
    }
    if (f == 'R') {
        *iflags |= MMTLS_RULES_I_RELATIVE;
        return 0;
    }
    p = strchr(flag_ch, f);
    if (p != NULL) {
        *bits |= (uint16_t)(1u << (p - flag_ch));
        if (f == 'i') {
            *iflags |= MMTLS_RULES_I_NOCASE;
        }
        return 0;
    }
    p = strchr(buf_ch, f);
    if (p != NULL) {
        int b = buf_of[p - buf_ch];

        if (*buf >= 0 && *buf != b) {
            return MMTLS_E_MALFORMED;
        }
        *buf = b;
        return 0;
    }
    /* K (raw cookie), Y (stat msg), B (raw bytes), Z (raw host), ...: no such buffer here */
    return MMTLS_E_UNSUPPORTED;
}

static int pcre_opt(struct mmtls_rules_pctx *c, struct st *st, const struct opt *o)
{
    const char *s = c->line;
    size_t i = o->val, end = o->val + o->vallen, q1, slash;
    struct mmtls_rules_item *it = NULL;
    uint16_t bits = 0, iflags = 0;
    int buf = -1;

    MMTLS_TRY(need_val(c, o));
    if (s[i] == '!') {
        iflags |= MMTLS_RULES_I_NEGATED;
        i = skip_ws(s, i + 1, end);
    }
    if (i >= end || s[i] != '"') {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "pcre needs a quoted string");
    }
    q1 = quote_end(s, i, end);
    if (q1 != end - 1) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "bad pcre string");
    }
    if (q1 - i < 2 || s[i + 1] != '/') {
        return mmtls_rules_fail(c, MMTLS_E_UNSUPPORTED, i, "pcre without '/' delimiters");
    }
    slash = q1 - 1; /* find the last '/' */
    while (slash > i + 1 && s[slash] != '/') {
        slash--;
    }
    if (slash <= i + 1) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "pcre not closed by '/'");
    }
    if (slash == i + 2) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "empty pcre");
    }
    if (slash - i - 2 > MMTLS_RULES_MAX_PATTERN) {
        return mmtls_rules_fail(c, MMTLS_E_UNSUPPORTED, i, "pcre too long");
    }
    for (size_t k = slash + 1; k < q1; k++) {
        int rc = pcre_flag(s[k], &bits, &iflags, &buf);

        if (rc == MMTLS_E_MALFORMED) {
            return mmtls_rules_fail(c, rc, k, "pcre with two buffer flags");
        }
        if (rc != 0) {
            return mmtls_rules_fail(c, rc, k, "pcre flag %c", s[k]);
        }
    }
    if (buf >= 0 && st->sticky != MMTLS_RULES_BUF_PKT && st->sticky != buf) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, i, "pcre flag conflicts with the buffer");
    }
    MMTLS_TRY(new_item(c, st, o->kw, &it));
    it->kind = MMTLS_RULES_PCRE;
    it->flags = iflags;
    it->pcre_flags = bits;
    if (buf >= 0) {
        it->buf = (uint8_t)buf;
        st->legacy_buf[c->r->nitems - 1] = true;
    }
    return mmtls_rules_arena_put(c, s + i + 2, slash - i - 2, i, &it->pat);
}

/* A legacy (Suricata / Snort 2) buffer modifier: applies to the previous content or pcre. */
static int legacy_buf(struct mmtls_rules_pctx *c, struct st *st, const struct opt *o, uint8_t buf)
{
    struct mmtls_rules_item *it = last_item(c);

    if (it == NULL) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, o->kw, "%.*s needs a content",
                                (int)MMTLS_MIN(o->kwlen, 40), kw_str(c, o));
    }
    if (st->legacy_buf[c->r->nitems - 1] || (it->buf != MMTLS_RULES_BUF_PKT && it->buf != buf)) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, o->kw, "content with two buffers");
    }
    it->buf = buf;
    st->legacy_buf[c->r->nitems - 1] = true;
    return 0;
}

static int flow_opt(struct mmtls_rules_pctx *c, const struct opt *o)
{
    static const struct {
        const char *name;
        uint8_t bit;
    } words[] = {
        {"to_server", MMTLS_RULES_FLOW_TO_SERVER},
        {"from_client", MMTLS_RULES_FLOW_TO_SERVER},
        {"to_client", MMTLS_RULES_FLOW_TO_CLIENT},
        {"from_server", MMTLS_RULES_FLOW_TO_CLIENT},
        {"established", MMTLS_RULES_FLOW_ESTABLISHED},
        {"not_established", MMTLS_RULES_FLOW_NOT_ESTABLISHED},
        {"stateless", MMTLS_RULES_FLOW_STATELESS},
    };
    const char *s = c->line;
    size_t i = o->val, end = o->val + o->vallen;
    uint8_t f = 0;

    MMTLS_TRY(need_val(c, o));
    while (i <= end) { /* each pass consumes a word and its ',' */
        size_t t = i, e = i, tl;
        uint8_t bit = 0;

        while (e < end && s[e] != ',') {
            e++;
        }
        tl = e - t;
        trim(s, &t, &tl);
        for (size_t k = 0; k < MMTLS_ARRAY_SIZE(words); k++) {
            if (eq(s + t, tl, words[k].name)) {
                bit = words[k].bit;
            }
        }
        if (tl == 0) {
            return mmtls_rules_fail(c, MMTLS_E_MALFORMED, t, "empty flow word");
        }
        if (bit == 0) {
            /* only_stream, no_stream, only_frag, no_frag, ... */
            return mmtls_rules_fail(c, MMTLS_E_UNSUPPORTED, t, "flow %.*s", (int)MMTLS_MIN(tl, 32),
                                    s + t);
        }
        if ((f & bit) != 0) {
            return mmtls_rules_fail(c, MMTLS_E_MALFORMED, t, "duplicate flow word");
        }
        f |= bit;
        i = e + 1;
    }
    if ((f & MMTLS_RULES_FLOW_TO_SERVER) != 0 && (f & MMTLS_RULES_FLOW_TO_CLIENT) != 0) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, o->val, "flow to both sides");
    }
    if ((f & MMTLS_RULES_FLOW_ESTABLISHED) != 0 && (f & MMTLS_RULES_FLOW_NOT_ESTABLISHED) != 0) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, o->val, "flow established and not");
    }
    c->r->flow = f;
    return 0;
}

static int service_opt(struct mmtls_rules_pctx *c, const struct opt *o)
{
    const char *s = c->line;
    size_t i = o->val, end = o->val + o->vallen;

    MMTLS_TRY(need_val(c, o));
    MMTLS_TRY(mmtls_rules_arena_put(c, s + o->val, o->vallen, o->val, &c->r->service));
    while (i <= end) {
        size_t t = i, e = i, tl;

        while (e < end && s[e] != ',') {
            e++;
        }
        tl = e - t;
        trim(s, &t, &tl);
        if (tl == 0) {
            return mmtls_rules_fail(c, MMTLS_E_MALFORMED, t, "empty service name");
        }
        if (eq(s + t, tl, "http") || eq(s + t, tl, "http2")) {
            c->r->services |= MMTLS_RULES_SVC_HTTP;
        } else if (eq(s + t, tl, "ssl") || eq(s + t, tl, "tls")) {
            c->r->services |= MMTLS_RULES_SVC_SSL;
        } else {
            c->r->services |= MMTLS_RULES_SVC_OTHER;
        }
        i = e + 1;
    }
    return 0;
}

static int metadata_opt(struct mmtls_rules_pctx *c, const struct opt *o)
{
    struct mmtls_rule *r = c->r;
    struct mmtls_rules_str add, old = r->metadata;

    MMTLS_TRY(need_val(c, o));
    if (old.len == 0) {
        return mmtls_rules_arena_put(c, c->line + o->val, o->vallen, o->val, &r->metadata);
    }
    /* a second metadata option: store "old, new" (Suricata allows several) */
    MMTLS_TRY(mmtls_rules_arena_put(c, r->arena + old.off, old.len, o->val, &r->metadata));
    MMTLS_TRY(mmtls_rules_arena_put(c, ", ", 2, o->val, &add));
    MMTLS_TRY(mmtls_rules_arena_put(c, c->line + o->val, o->vallen, o->val, &add));
    r->metadata.len = (uint16_t)(r->metadata.len + 2 + o->vallen);
    return 0;
}

/* Decides whether the underscore buffer names are sticky (Snort 3) or modifiers. */
static int dialect_pick(struct mmtls_rules_pctx *c, const struct mmtls_rules_parse_opts *opts,
                        const struct opt *opts_v, size_t n, struct st *st)
{
    const char *s = c->line;
    size_t first_match = SIZE_MAX, last_match = SIZE_MAX, legacy_at = SIZE_MAX;
    bool s3 = false, suri = false, s3_strong = false, suri_strong = false, legacy = false;

    for (size_t k = 0; k < n; k++) {
        const struct opt *o = &opts_v[k];
        const char *kw = s + o->kw;

        if (eq(kw, o->kwlen, "content") || eq(kw, o->kwlen, "pcre")) {
            if (first_match == SIZE_MAX) {
                first_match = k;
            }
            last_match = k;
            if (eq(kw, o->kwlen, "content") && o->has_val) {
                size_t i = o->val, end = o->val + o->vallen;

                if (i < end && s[i] == '!') {
                    i = skip_ws(s, i + 1, end);
                }
                if (i < end && s[i] == '"') {
                    size_t q = quote_end(s, i, end);

                    if (q < end && skip_ws(s, q + 1, end) < end) {
                        s3_strong = true; /* comma modifiers: Snort 3 only */
                    }
                }
            }
            continue;
        }
        if (eq(kw, o->kwlen, "service") || eq(kw, o->kwlen, "fast_pattern_offset")) {
            s3 = true;
        }
        if (eq(kw, o->kwlen, "nocase") || eq(kw, o->kwlen, "depth") || eq(kw, o->kwlen, "offset") ||
            eq(kw, o->kwlen, "distance") || eq(kw, o->kwlen, "within") ||
            eq(kw, o->kwlen, "fast_pattern") || eq(kw, o->kwlen, "rawbytes")) {
            suri_strong = true; /* stand-alone modifiers: not Snort 3 */
        }
        for (size_t b = 0; b < MMTLS_ARRAY_SIZE(buf_kws); b++) {
            if (eq(kw, o->kwlen, buf_kws[b].name)) {
                if (buf_kws[b].legacy) {
                    legacy = true;
                    if (legacy_at == SIZE_MAX) {
                        legacy_at = k;
                    }
                    if (first_match == SIZE_MAX) {
                        s3 = true; /* a modifier cannot come before every content */
                    }
                } else if (memchr(kw, '.', o->kwlen) != NULL) {
                    suri = true;
                }
            }
        }
    }
    if (!legacy) {
        st->snort3 = false;
        return 0;
    }
    /* a buffer name after the last content/pcre is pointless as a sticky buffer */
    for (size_t k = (last_match == SIZE_MAX ? 0 : last_match + 1); k < n; k++) {
        for (size_t b = 0; b < MMTLS_ARRAY_SIZE(buf_kws); b++) {
            if (buf_kws[b].legacy && eq(s + opts_v[k].kw, opts_v[k].kwlen, buf_kws[b].name) &&
                last_match != SIZE_MAX) {
                suri = true;
            }
        }
    }
    if (opts != NULL && opts->dialect == MMTLS_RULES_DIALECT_SNORT3) {
        st->snort3 = true;
        return 0;
    }
    if (opts != NULL && opts->dialect == MMTLS_RULES_DIALECT_SURICATA) {
        st->snort3 = false;
        return 0;
    }
    if (s3_strong != suri_strong) {
        st->snort3 = s3_strong;
        return 0;
    }
    if (s3_strong || s3 == suri) {
        return mmtls_rules_fail(c, MMTLS_E_UNSUPPORTED, opts_v[legacy_at].kw,
                                "ambiguous buffer syntax");
    }
    st->snort3 = s3;
    return 0;
}

static int option(struct mmtls_rules_pctx *c, struct st *st, const struct opt *o)
{
    struct mmtls_rule *r = c->r;
    const char *kw = c->line + o->kw;
    size_t n = o->kwlen;

    if (eq(kw, n, "msg")) {
        MMTLS_TRY(dup(c, o, &st->have_msg));
        return text_opt(c, o, &r->msg);
    }
    if (eq(kw, n, "sid")) {
        MMTLS_TRY(dup(c, o, &st->have_sid));
        return u32_opt(c, o, 1, &r->sid);
    }
    if (eq(kw, n, "rev")) {
        MMTLS_TRY(dup(c, o, &st->have_rev));
        return u32_opt(c, o, 0, &r->rev);
    }
    if (eq(kw, n, "gid")) {
        MMTLS_TRY(dup(c, o, &st->have_gid));
        return u32_opt(c, o, 1, &r->gid);
    }
    if (eq(kw, n, "priority")) {
        MMTLS_TRY(dup(c, o, &st->have_prio));
        return u32_opt(c, o, 1, &r->priority);
    }
    if (eq(kw, n, "classtype")) {
        MMTLS_TRY(dup(c, o, &st->have_class));
        return text_opt(c, o, &r->classtype);
    }
    if (eq(kw, n, "reference")) {
        struct mmtls_rules_str tmp;

        if (r->nrefs == MMTLS_RULES_MAX_REFS) {
            /* extra references only cost log space; they do not change matching */
            MMTLS_TRY(need_val(c, o));
            return 0;
        }
        MMTLS_TRY(text_opt(c, o, &tmp));
        r->refs[r->nrefs++] = tmp;
        return 0;
    }
    if (eq(kw, n, "metadata")) {
        return metadata_opt(c, o);
    }
    if (eq(kw, n, "flow")) {
        MMTLS_TRY(dup(c, o, &st->have_flow));
        return flow_opt(c, o);
    }
    if (eq(kw, n, "service")) {
        MMTLS_TRY(dup(c, o, &st->have_svc));
        return service_opt(c, o);
    }
    if (eq(kw, n, "content")) {
        return content_opt(c, st, o);
    }
    if (eq(kw, n, "pcre")) {
        return pcre_opt(c, st, o);
    }
    if (eq(kw, n, "nocase") || eq(kw, n, "depth") || eq(kw, n, "offset") || eq(kw, n, "distance") ||
        eq(kw, n, "within") || eq(kw, n, "fast_pattern")) {
        if (!eq(kw, n, "nocase") && !eq(kw, n, "fast_pattern")) {
            MMTLS_TRY(need_val(c, o));
        }
        if (eq(kw, n, "nocase")) {
            MMTLS_TRY(no_val(c, o));
        }
        return apply_mod(c, st, o->kw, n, o->val, o->vallen);
    }
    for (size_t b = 0; b < MMTLS_ARRAY_SIZE(buf_kws); b++) {
        if (!eq(kw, n, buf_kws[b].name)) {
            continue;
        }
        if (o->has_val) {
            /* Snort 3 http_header:field x, http_uri:path, ...: sub-buffers are not kept */
            return mmtls_rules_fail(c, MMTLS_E_UNSUPPORTED, o->kw, "option %.*s with a value",
                                    (int)MMTLS_MIN(n, 40), kw);
        }
        if (buf_kws[b].legacy && !st->snort3) {
            return legacy_buf(c, st, o, buf_kws[b].buf);
        }
        st->sticky = buf_kws[b].buf;
        return 0;
    }
    return unsupported_opt(c, o);
}

/* ------------------------------------------------------------------------------------------ */
/* Header                                                                                      */

static int action_parse(struct mmtls_rules_pctx *c, size_t off, size_t n)
{
    static const char *const ok[] = {"alert", "drop", "reject", "pass"};
    static const char *const other[] = {"log",       "sdrop",      "block",   "rewrite",
                                        "react",     "activate",   "dynamic", "rejectsrc",
                                        "rejectdst", "rejectboth", "config"};
    const char *s = c->line + off;

    for (size_t k = 0; k < MMTLS_ARRAY_SIZE(ok); k++) {
        if (eq(s, n, ok[k])) {
            c->r->action = (uint8_t)(MMTLS_RULES_ALERT + k);
            return 0;
        }
    }
    for (size_t k = 0; k < MMTLS_ARRAY_SIZE(other); k++) {
        if (eq(s, n, other[k])) {
            return mmtls_rules_fail(c, MMTLS_E_UNSUPPORTED, off, "action %s", other[k]);
        }
    }
    return mmtls_rules_fail(c, MMTLS_E_MALFORMED, off, "unknown action");
}

static int proto_parse(struct mmtls_rules_pctx *c, size_t off, size_t n)
{
    static const struct {
        const char *name;
        uint8_t proto;
    } protos[] = {
        {"tcp", MMTLS_RULES_PROTO_TCP},    {"ip", MMTLS_RULES_PROTO_IP},
        {"any", MMTLS_RULES_PROTO_ANY},    {"http", MMTLS_RULES_PROTO_HTTP},
        {"http1", MMTLS_RULES_PROTO_HTTP}, {"tls", MMTLS_RULES_PROTO_TLS},
        {"ssl", MMTLS_RULES_PROTO_TLS},
    };
    struct mmtls_rule *r = c->r;

    if (n == 0 || n >= MMTLS_RULES_PROTO_MAX) {
        return mmtls_rules_fail(c, MMTLS_E_MALFORMED, off, "bad protocol");
    }
    for (size_t k = 0; k < n; k++) {
        char ch = c->line[off + k];

        if (ch >= 'A' && ch <= 'Z') {
            ch = (char)(ch - 'A' + 'a');
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_')) {
            return mmtls_rules_fail(c, MMTLS_E_MALFORMED, off, "bad protocol");
        }
        r->proto_name[k] = ch;
    }
    r->proto_name[n] = '\0';
    r->proto = MMTLS_RULES_PROTO_OTHER;
    for (size_t k = 0; k < MMTLS_ARRAY_SIZE(protos); k++) {
        if (eq(r->proto_name, n, protos[k].name)) {
            r->proto = protos[k].proto;
        }
    }
    r->proto_ok = r->proto != MMTLS_RULES_PROTO_OTHER;
    return 0;
}

static int any_spec(struct mmtls_rules_pctx *c, struct mmtls_rules_addr *a,
                    struct mmtls_rules_ports *p)
{
    if (a != NULL) {
        memset(a, 0, sizeof(*a));
        a->any = true;
        return mmtls_rules_arena_put(c, "any", 3, 0, &a->text);
    }
    memset(p, 0, sizeof(*p));
    p->any = true;
    return mmtls_rules_arena_put(c, "any", 3, 0, &p->text);
}

int mmtls_rules_parse(const char *line, size_t len, const struct mmtls_rules_parse_opts *opts,
                      struct mmtls_rule *out, struct mmtls_rules_err *err)
{
    struct mmtls_rules_pctx c = {line, len, out, err, NULL};
    struct opt opts_v[MMTLS_RULES_MAX_OPTIONS];
    size_t tok[7][2], nopts = 0, i, ntok = 0;
    struct st st;
    bool short_hdr;

    if (err != NULL) {
        err->reason[0] = '\0';
        err->off = 0;
    }
    if (out == NULL || (line == NULL && len > 0)) {
        return MMTLS_E_INVAL;
    }
    if (opts != NULL &&
        opts->sz >= offsetof(struct mmtls_rules_parse_opts, vars) + sizeof(opts->vars)) {
        c.vars = opts->vars;
    }
    memset(out, 0, offsetof(struct mmtls_rule, arena));
    out->fp = -1;
    out->gid = 1;
    i = skip_ws(line, 0, len);
    if (i == len || line[i] == '#') {
        return MMTLS_DECLINED;
    }

    /* stage 1: action proto [src sport dir dst dport] ( options ) */
    while (ntok < 7) {
        i = skip_ws(line, i, len);
        if (i == len) {
            return mmtls_rules_fail(&c, MMTLS_E_MALFORMED, i, "incomplete header");
        }
        if (line[i] == '(') {
            break;
        }
        tok[ntok][0] = i;
        i = header_token(line, i, len);
        tok[ntok][1] = i - tok[ntok][0];
        ntok++;
    }
    i = skip_ws(line, i, len);
    if (ntok != 2 && ntok != 7) {
        return mmtls_rules_fail(&c, MMTLS_E_MALFORMED, i, "incomplete header");
    }
    if (i == len || line[i] != '(') {
        return mmtls_rules_fail(&c, MMTLS_E_MALFORMED, i, "expected '('");
    }
    MMTLS_TRY(scan_options(&c, i + 1, opts_v, &nopts));
    short_hdr = ntok == 2;

    /* stage 2: meaning */
    MMTLS_TRY(action_parse(&c, tok[0][0], tok[0][1]));
    MMTLS_TRY(proto_parse(&c, tok[1][0], tok[1][1]));
    if (short_hdr) {
        /* Snort 3 service rule `alert http ( ... )`: any any -> any any */
        MMTLS_TRY(any_spec(&c, &out->src, NULL));
        MMTLS_TRY(any_spec(&c, NULL, &out->sport));
        MMTLS_TRY(any_spec(&c, &out->dst, NULL));
        MMTLS_TRY(any_spec(&c, NULL, &out->dport));
    } else {
        const char *d = line + tok[4][0];

        if (eq(d, tok[4][1], "<>")) {
            out->bidir = true;
        } else if (eq(d, tok[4][1], "=>")) {
            return mmtls_rules_fail(&c, MMTLS_E_UNSUPPORTED, tok[4][0], "direction =>");
        } else if (!eq(d, tok[4][1], "->")) {
            return mmtls_rules_fail(&c, MMTLS_E_MALFORMED, tok[4][0], "bad direction");
        }
        MMTLS_TRY(mmtls_rules_addr_parse(&c, tok[2][0], tok[2][1], &out->src));
        MMTLS_TRY(mmtls_rules_ports_parse(&c, tok[3][0], tok[3][1], &out->sport));
        MMTLS_TRY(mmtls_rules_addr_parse(&c, tok[5][0], tok[5][1], &out->dst));
        MMTLS_TRY(mmtls_rules_ports_parse(&c, tok[6][0], tok[6][1], &out->dport));
    }

    memset(&st, 0, sizeof(st));
    st.sticky = MMTLS_RULES_BUF_PKT;
    MMTLS_TRY(dialect_pick(&c, opts, opts_v, nopts, &st));
    for (size_t k = 0; k < nopts; k++) {
        MMTLS_TRY(option(&c, &st, &opts_v[k]));
    }
    if (!st.have_sid) {
        return mmtls_rules_fail(&c, MMTLS_E_MALFORMED, len, "missing sid");
    }

    /* fast pattern parts, and the fast pattern itself */
    for (unsigned k = 0; k < out->nitems; k++) {
        struct mmtls_rules_item *it = &out->item[k];

        out->buffers |= 1u << it->buf;
        if ((it->flags & MMTLS_RULES_I_FP_PART) == 0) {
            continue;
        }
        if ((st.fp_len_set & (1u << k)) == 0) {
            it->fp_len = (uint16_t)(it->fp_off < it->pat.len ? it->pat.len - it->fp_off : 0);
        }
        if (it->fp_len == 0 || (size_t)it->fp_off + it->fp_len > it->pat.len) {
            return mmtls_rules_fail(&c, MMTLS_E_MALFORMED, len,
                                    "fast_pattern part outside content");
        }
    }
    for (unsigned k = 0; k < out->nitems; k++) {
        const struct mmtls_rules_item *it = &out->item[k];

        if ((it->flags & MMTLS_RULES_I_FAST_PATTERN) != 0) {
            out->fp = (int8_t)k;
            break;
        }
        if (it->kind == MMTLS_RULES_CONTENT && (it->flags & MMTLS_RULES_I_NEGATED) == 0 &&
            (out->fp < 0 || it->pat.len > out->item[out->fp].pat.len)) {
            out->fp = (int8_t)k;
        }
    }
    out->fp_buf = out->fp >= 0 ? out->item[out->fp].buf : MMTLS_RULES_BUF_PKT;
    return 0;
}

int mmtls_rules_check(const struct mmtls_rule *r, struct mmtls_rules_err *err)
{
    struct mmtls_rules_pctx c = {NULL, 0, NULL, err, NULL};

    if (!r->proto_ok) {
        return mmtls_rules_fail(&c, MMTLS_E_UNSUPPORTED, 0, "protocol %s", r->proto_name);
    }
    if (r->services != 0 && (r->services & (MMTLS_RULES_SVC_HTTP | MMTLS_RULES_SVC_SSL)) == 0) {
        struct mmtls_slice sv = mmtls_rules_str(r, r->service);

        return mmtls_rules_fail(&c, MMTLS_E_UNSUPPORTED, 0, "service %.*s",
                                (int)MMTLS_MIN(sv.len, 40), (const char *)sv.p);
    }
    return 0;
}
