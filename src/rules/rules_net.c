/* rules — header address and port specs: lists, negation, ranges, CIDRs, variables.
 *
 * Grammar (Snort 3 manual "Rule Headers", Suricata "Rules Format: Source and destination"):
 *   spec := elem | '[' list ']'        list := elem (',' elem)*
 *   elem := '!'? ( '[' list ']' | '$' NAME | 'any' | leaf )
 *   leaf := IPv4 ['/' (len | netmask)] | IPv6 ['/' len]          (addresses)
 *         | port | port ':' | ':' port | port ':' port           (ports)
 * Variable values follow the same grammar, and may also separate elements with blanks.
 * Lists are flattened: the meaning is (any || in a positive entry) && in no negated entry.
 */
#include <arpa/inet.h>
#include <stdio.h>

#include "rules/rules_int.h"

struct spec {
    struct mmtls_rules_pctx *c;
    bool port;
    struct mmtls_rules_addr *a;   /* borrowed: when !port */
    struct mmtls_rules_ports *pp; /* borrowed: when port */
    bool positive;                /* a non-negated entry (or any) was seen */
};

static int list_parse(struct spec *sp, const char *s, size_t n, bool neg, unsigned depth,
                      size_t voff, bool blanks);

/* Offset in the line for an error at s[i]: inside a variable's value, the variable's offset. */
static size_t err_off(const struct spec *sp, const char *s, size_t i, size_t voff)
{
    if (voff != SIZE_MAX) {
        return voff;
    }
    return (size_t)(s - sp->c->line) + i;
}

static bool is_tok_end(char ch)
{
    return ch == ',' || ch == ']' || ch == '[' || mmtls_rules_is_space(ch);
}

static int addr_leaf(struct spec *sp, const char *t, size_t n, bool neg, size_t off)
{
    struct mmtls_rules_addr *a = sp->a;
    struct mmtls_rules_net net;
    char buf[64];
    size_t slash = n;
    unsigned maxlen;

    if (n == 0 || n >= sizeof(buf)) {
        return mmtls_rules_fail(sp->c, MMTLS_E_MALFORMED, off, "bad address");
    }
    memset(&net, 0, sizeof(net));
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '-') {
            return mmtls_rules_fail(sp->c, MMTLS_E_UNSUPPORTED, off, "address range");
        }
        if (t[i] == '/' && slash == n) {
            slash = i;
        }
    }
    memcpy(buf, t, slash);
    buf[slash] = '\0';
    if (memchr(buf, ':', slash) != NULL) {
        net.family = 6;
        maxlen = 128;
        if (inet_pton(AF_INET6, buf, net.addr) != 1) {
            return mmtls_rules_fail(sp->c, MMTLS_E_MALFORMED, off, "bad address");
        }
    } else {
        net.family = 4;
        maxlen = 32;
        if (inet_pton(AF_INET, buf, net.addr) != 1) {
            return mmtls_rules_fail(sp->c, MMTLS_E_MALFORMED, off, "bad address");
        }
    }
    net.prefix = (uint8_t)maxlen;
    if (slash < n) {
        const char *m = t + slash + 1;
        size_t mlen = n - slash - 1;
        uint32_t v = 0;

        if (mlen == 0) {
            return mmtls_rules_fail(sp->c, MMTLS_E_MALFORMED, off, "bad prefix length");
        }
        if (net.family == 4 && memchr(m, '.', mlen) != NULL) {
            /* Suricata accepts a dotted netmask; it must be contiguous ones */
            uint8_t mask[4];

            memcpy(buf, m, mlen);
            buf[mlen] = '\0';
            if (inet_pton(AF_INET, buf, mask) != 1) {
                return mmtls_rules_fail(sp->c, MMTLS_E_MALFORMED, off, "bad netmask");
            }
            uint32_t mv = mmtls_be32(mask);
            if ((uint32_t)(~mv & (~mv + 1)) != 0) {
                /* ~mask must be 2^k - 1: adding one gives a power of two sharing no bit */
                return mmtls_rules_fail(sp->c, MMTLS_E_MALFORMED, off, "bad netmask");
            }
            while (v < 32 && (mv & (0x80000000u >> v)) != 0) {
                v++;
            }
        } else {
            for (size_t i = 0; i < mlen; i++) {
                if (m[i] < '0' || m[i] > '9' || v > maxlen) {
                    return mmtls_rules_fail(sp->c, MMTLS_E_MALFORMED, off, "bad prefix length");
                }
                v = v * 10 + (uint32_t)(m[i] - '0');
            }
            if (v > maxlen) {
                return mmtls_rules_fail(sp->c, MMTLS_E_MALFORMED, off, "bad prefix length");
            }
        }
        net.prefix = (uint8_t)v;
    }
    /* clear the host bits, so that the matcher can compare networks directly */
    for (unsigned bit = net.prefix; bit < maxlen; bit++) {
        net.addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    }
    net.negated = neg;
    if (a->n >= MMTLS_RULES_MAX_NETS) {
        return mmtls_rules_fail(sp->c, MMTLS_E_UNSUPPORTED, off, "address list too long");
    }
    a->net[a->n++] = net;
    return 0;
}

static int port_num(const char *t, size_t n, uint16_t *v)
{
    uint32_t x = 0;

    if (n == 0 || n > 5) {
        return MMTLS_E_MALFORMED;
    }
    for (size_t i = 0; i < n; i++) {
        if (t[i] < '0' || t[i] > '9') {
            return MMTLS_E_MALFORMED;
        }
        x = x * 10 + (uint32_t)(t[i] - '0');
    }
    if (x > 65535) {
        return MMTLS_E_MALFORMED;
    }
    *v = (uint16_t)x;
    return 0;
}

static int port_leaf(struct spec *sp, const char *t, size_t n, bool neg, size_t off)
{
    struct mmtls_rules_portrange pr = {0, 65535, neg};
    const char *colon = memchr(t, ':', n);

    if (colon == NULL) {
        if (port_num(t, n, &pr.lo) != 0) {
            return mmtls_rules_fail(sp->c, MMTLS_E_MALFORMED, off, "bad port");
        }
        pr.hi = pr.lo;
    } else {
        size_t l = (size_t)(colon - t), r = n - l - 1;

        if ((l == 0 && r == 0) || (l > 0 && port_num(t, l, &pr.lo) != 0) ||
            (r > 0 && port_num(colon + 1, r, &pr.hi) != 0) || pr.lo > pr.hi) {
            return mmtls_rules_fail(sp->c, MMTLS_E_MALFORMED, off, "bad port range");
        }
    }
    if (sp->pp->n >= MMTLS_RULES_MAX_PORTS) {
        return mmtls_rules_fail(sp->c, MMTLS_E_UNSUPPORTED, off, "port list too long");
    }
    sp->pp->r[sp->pp->n++] = pr;
    return 0;
}

static int var_lookup(struct spec *sp, const char *name, size_t len, struct mmtls_slice *v)
{
    const struct mmtls_rules_vars *vars = sp->c->vars;

    if (vars == NULL || vars->lookup == NULL) {
        return MMTLS_E_NOTFOUND;
    }
    if (vars->lookup(vars->ctx, name, len, sp->port, v) != 0 || (v->p == NULL && v->len != 0)) {
        return MMTLS_E_NOTFOUND;
    }
    return 0;
}

/* Parses one element at s[*i]; advances *i past it. */
static int elem_parse(struct spec *sp, const char *s, size_t n, size_t *i, bool neg, unsigned depth,
                      size_t voff)
{
    size_t at = *i;

    if (at < n && s[at] == '!') {
        if (neg) {
            /* ![a,!b] cannot be flattened into include/exclude lists faithfully */
            return mmtls_rules_fail(sp->c, MMTLS_E_UNSUPPORTED, err_off(sp, s, at, voff),
                                    "nested negation");
        }
        neg = true;
        at++;
    }
    if (at >= n || (is_tok_end(s[at]) && s[at] != '[')) {
        return mmtls_rules_fail(sp->c, MMTLS_E_MALFORMED, err_off(sp, s, at, voff),
                                "empty list element");
    }
    if (s[at] == '[') {
        size_t j = at + 1;
        unsigned level = 1;

        for (; j < n; j++) {
            if (s[j] == '[') {
                level++;
            } else if (s[j] == ']' && --level == 0) {
                break;
            }
        }
        if (j >= n) {
            return mmtls_rules_fail(sp->c, MMTLS_E_MALFORMED, err_off(sp, s, at, voff),
                                    "unbalanced '['");
        }
        if (depth >= MMTLS_RULES_VAR_DEPTH) {
            return mmtls_rules_fail(sp->c, MMTLS_E_UNSUPPORTED, err_off(sp, s, at, voff),
                                    "lists nested too deep");
        }
        MMTLS_TRY(list_parse(sp, s + at + 1, j - at - 1, neg, depth + 1, voff, false));
        *i = j + 1;
        return 0;
    }
    size_t e = at;
    while (e < n && !is_tok_end(s[e])) {
        e++;
    }
    if (s[at] == '$') {
        struct mmtls_slice v;
        size_t vo = voff != SIZE_MAX ? voff : err_off(sp, s, at, voff);

        if (e - at < 2) {
            return mmtls_rules_fail(sp->c, MMTLS_E_MALFORMED, vo, "bad variable name");
        }
        for (size_t k = at + 1; k < e; k++) {
            char ch = s[k];
            if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '_')) {
                return mmtls_rules_fail(sp->c, MMTLS_E_MALFORMED, vo, "bad variable name");
            }
        }
        if (var_lookup(sp, s + at + 1, e - at - 1, &v) != 0) {
            return mmtls_rules_fail(sp->c, MMTLS_E_UNSUPPORTED, vo, "undefined variable $%.*s",
                                    (int)MMTLS_MIN(e - at - 1, 32), s + at + 1);
        }
        if (depth >= MMTLS_RULES_VAR_DEPTH) {
            return mmtls_rules_fail(sp->c, MMTLS_E_UNSUPPORTED, vo, "variables nested too deep");
        }
        MMTLS_TRY(list_parse(sp, (const char *)v.p, v.len, neg, depth + 1, vo, true));
        *i = e;
        return 0;
    }
    if (e - at == 3 && memcmp(s + at, "any", 3) == 0) {
        if (neg) {
            return mmtls_rules_fail(sp->c, MMTLS_E_UNSUPPORTED, err_off(sp, s, at, voff),
                                    "negated any");
        }
        if (sp->port) {
            sp->pp->any = true;
        } else {
            sp->a->any = true;
        }
        sp->positive = true;
        *i = e;
        return 0;
    }
    if (sp->port) {
        MMTLS_TRY(port_leaf(sp, s + at, e - at, neg, err_off(sp, s, at, voff)));
    } else {
        MMTLS_TRY(addr_leaf(sp, s + at, e - at, neg, err_off(sp, s, at, voff)));
    }
    if (!neg) {
        sp->positive = true;
    }
    *i = e;
    return 0;
}

/* list := elem (',' elem)*; with `blanks` (variable values) blanks also separate elements. */
static int list_parse(struct spec *sp, const char *s, size_t n, bool neg, unsigned depth,
                      size_t voff, bool blanks)
{
    size_t i = 0;

    while (i < n && mmtls_rules_is_space(s[i])) {
        i++;
    }
    if (i == n) {
        return mmtls_rules_fail(sp->c, MMTLS_E_MALFORMED, err_off(sp, s, i, voff), "empty list");
    }
    /* every iteration consumes at least one byte of s, so the loop is bounded by n */
    for (;;) {
        bool blank = false;

        MMTLS_TRY(elem_parse(sp, s, n, &i, neg, depth, voff));
        while (i < n && mmtls_rules_is_space(s[i])) {
            i++;
            blank = true;
        }
        if (i == n) {
            return 0;
        }
        if (s[i] == ',') {
            i++;
            while (i < n && mmtls_rules_is_space(s[i])) {
                i++;
            }
            continue;
        }
        if (!(blank && blanks)) {
            return mmtls_rules_fail(sp->c, MMTLS_E_MALFORMED, err_off(sp, s, i, voff),
                                    "expected ','");
        }
    }
}

static int spec_parse(struct spec *sp, size_t off, size_t n, struct mmtls_rules_str *text)
{
    MMTLS_TRY(mmtls_rules_arena_put(sp->c, sp->c->line + off, n, off, text));
    MMTLS_TRY(list_parse(sp, sp->c->line + off, n, false, 0, SIZE_MAX, false));
    if (!sp->positive) {
        /* only exclusions: everything else matches (`!80`, `!$HOME_NET`) */
        if (sp->port) {
            sp->pp->any = true;
        } else {
            sp->a->any = true;
        }
    }
    return 0;
}

int mmtls_rules_addr_parse(struct mmtls_rules_pctx *c, size_t off, size_t n,
                           struct mmtls_rules_addr *a)
{
    struct spec sp = {c, false, a, NULL, false};

    memset(a, 0, sizeof(*a));
    return spec_parse(&sp, off, n, &a->text);
}

int mmtls_rules_ports_parse(struct mmtls_rules_pctx *c, size_t off, size_t n,
                            struct mmtls_rules_ports *p)
{
    struct spec sp = {c, true, NULL, p, false};

    memset(p, 0, sizeof(*p));
    return spec_parse(&sp, off, n, &p->text);
}
