/* rules — Snort 3 and Suricata rule parser and rule set container for the IDS app.
 *
 * Two parts:
 *  - mmtls_rules_parse(): one rule line -> one fixed-size struct mmtls_rule, without
 *    allocation, logging or global state (so it is fuzzable).  Every option the IDS cannot honour
 *    exactly makes the parse fail with MMTLS_E_UNSUPPORTED and a short reason naming it: a rule
 *    is never loaded with a different meaning.
 *  - struct mmtls_rules_set: variables, file loading, duplicate (gid, sid) detection and a load
 *    summary (loaded, skipped by reason).
 *
 * No matching happens here.  The representation is shaped for a matcher that compiles the
 * fast pattern of each rule into a Vectorscan database per buffer (item[fp], fp_buf), and then
 * evaluates the remaining items only for rules whose fast pattern hit.
 *
 * Dialects.  Both syntaxes are accepted in one file:
 *   Snort 3:   http_uri; content:"/x",depth 16,nocase,fast_pattern;    (sticky buffer before)
 *   Suricata:  http.uri; content:"/x"; depth:16; nocase; fast_pattern;  (sticky, dotted name)
 *   legacy:    content:"/x"; http_uri; nocase;                          (modifier after content)
 * The underscore names (http_uri, ...) are sticky buffers in Snort 3 but content modifiers in
 * Suricata and Snort 2.  For a rule that uses them, the dialect is taken from
 * mmtls_rules_parse_opts.dialect, or in MMTLS_RULES_DIALECT_AUTO from evidence in the rule
 * itself.  Strong evidence (syntax only one dialect accepts): comma content modifiers => Snort 3;
 * stand-alone nocase/depth/offset/distance/within/fast_pattern/rawbytes => Suricata.  Without
 * strong evidence, weak evidence decides: `service`, a buffer name before any content =>
 * Snort 3; dotted names, a buffer name after the last content => Suricata.  A rule with both
 * strong kinds, or without strong evidence and with both or neither weak kind, is
 * MMTLS_E_UNSUPPORTED ("ambiguous buffer syntax").
 */
#ifndef MMTLS_RULES_H
#define MMTLS_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <mmtls/error.h>

#include "util/util.h"

/* ------------------------------------------------------------------------------------------ */
/* Limits (a rule exceeding one is MMTLS_E_UNSUPPORTED with a reason naming the limit)          */

#define MMTLS_RULES_MAX_ITEMS 32     /* content + pcre items per rule */
#define MMTLS_RULES_MAX_PATTERN 1024 /* decoded bytes of one content, chars of one regex */
#define MMTLS_RULES_MAX_NETS 32      /* CIDR entries in one address spec (after variables) */
#define MMTLS_RULES_MAX_PORTS 32     /* port ranges in one port spec (after variables) */
#define MMTLS_RULES_MAX_REFS 16      /* reference options kept per rule */
#define MMTLS_RULES_MAX_OPTIONS 256  /* options per rule */
#define MMTLS_RULES_ARENA_MAX 16384  /* inline bytes for all strings of one rule */
#define MMTLS_RULES_LINE_MAX 65536   /* one rule after joining `\` continuations */
#define MMTLS_RULES_VAR_DEPTH 8      /* nesting of variables inside variable values */
#define MMTLS_RULES_REASON_MAX 64    /* bytes of a reason, NUL included */
#define MMTLS_RULES_PROTO_MAX 16     /* bytes of the protocol keyword, NUL included */

/* ------------------------------------------------------------------------------------------ */
/* Parsed rule                                                                                 */

enum mmtls_rules_action {
    MMTLS_RULES_ALERT = 1,
    MMTLS_RULES_DROP = 2,
    MMTLS_RULES_REJECT = 3,
    MMTLS_RULES_PASS = 4,
};

/* Protocol keyword of the header, as far as the IDS distinguishes it.  Anything else is
 * MMTLS_RULES_PROTO_OTHER with the keyword kept in mmtls_rule.proto_name. */
enum mmtls_rules_proto {
    MMTLS_RULES_PROTO_OTHER = 0,
    MMTLS_RULES_PROTO_TCP,
    MMTLS_RULES_PROTO_IP,
    MMTLS_RULES_PROTO_ANY,  /* Suricata `any`: every protocol */
    MMTLS_RULES_PROTO_HTTP, /* Snort 3 service rule / Suricata app-layer protocol `http` */
    MMTLS_RULES_PROTO_TLS,  /* `tls` (Suricata) or `ssl` (Snort 3 service rule) */
};

/* Buffers a match item inspects.  PKT is the reassembled (decrypted) stream of the direction;
 * the HTTP buffers are fields of the parsed HTTP message; TLS_SNI is the ClientHello name. */
enum mmtls_rules_buf {
    MMTLS_RULES_BUF_PKT = 0,          /* pkt_data / raw_data: the stream (the default) */
    MMTLS_RULES_BUF_HTTP_URI,         /* http_uri, http.uri, pcre /U: normalised request URI */
    MMTLS_RULES_BUF_HTTP_RAW_URI,     /* http_raw_uri, http.uri.raw, pcre /I */
    MMTLS_RULES_BUF_HTTP_METHOD,      /* http_method, http.method, pcre /M */
    MMTLS_RULES_BUF_HTTP_HEADER,      /* http_header, http.header, pcre /H: normalised headers */
    MMTLS_RULES_BUF_HTTP_RAW_HEADER,  /* http_raw_header, http.header.raw, pcre /D */
    MMTLS_RULES_BUF_HTTP_COOKIE,      /* http_cookie, http.cookie, pcre /C */
    MMTLS_RULES_BUF_HTTP_USER_AGENT,  /* http_user_agent, http.user_agent, pcre /V */
    MMTLS_RULES_BUF_HTTP_HOST,        /* http_host, http.host, pcre /W */
    MMTLS_RULES_BUF_HTTP_CLIENT_BODY, /* http_client_body, http.request_body, pcre /P */
    MMTLS_RULES_BUF_HTTP_STAT_CODE,   /* http_stat_code, http.stat_code, pcre /S */
    MMTLS_RULES_BUF_HTTP_SERVER_BODY, /* file_data, file.data, http_server_body,
                                       * http.response_body, pcre /Q: dechunked response body */
    MMTLS_RULES_BUF_TLS_SNI,          /* tls.sni, tls_sni */
    MMTLS_RULES_BUF_COUNT
};

/* Static name of a buffer ("pkt_data", "http_uri", ...); "?" when out of range. */
const char *mmtls_rules_buf_name(unsigned buf);

/* A string stored in the rule's arena: bytes [off, off + len) of mmtls_rule.arena.  Not
 * NUL-terminated; use mmtls_rules_str() to get a slice. */
struct mmtls_rules_str {
    uint16_t off;
    uint16_t len;
};

/* One CIDR of an address spec, host bits cleared. */
struct mmtls_rules_net {
    uint8_t family;   /* 4 or 6 */
    uint8_t prefix;   /* 0..32 or 0..128 */
    bool negated;     /* an exclusion (written under `!`) */
    uint8_t addr[16]; /* network address, big endian; IPv4 in the first 4 bytes */
};

/* An address spec (`any`, `$HOME_NET`, `[10.0.0.0/8,!10.1.0.0/16]`, ...), variables resolved.
 * Meaning (Snort/Suricata): an address matches when (any || it is inside a non-negated entry)
 * and it is inside no negated entry.  Nested lists are flattened; a negated entry inside a
 * negated list (double negation) is refused as unsupported. */
struct mmtls_rules_addr {
    struct mmtls_rules_str text; /* the spec as written in the rule */
    bool any;                    /* no positive restriction (`any`, or only exclusions) */
    uint8_t n;                   /* entries used in net[] */
    struct mmtls_rules_net net[MMTLS_RULES_MAX_NETS];
};

/* One port range of a port spec. */
struct mmtls_rules_portrange {
    uint16_t lo, hi; /* inclusive; `80` is 80..80, `1024:` is 1024..65535 */
    bool negated;
};

/* A port spec (`any`, `$HTTP_PORTS`, `[80,443,8000:8080]`, `!80`), same meaning as an address
 * spec: (any || inside a positive range) && inside no negated range. */
struct mmtls_rules_ports {
    struct mmtls_rules_str text; /* the spec as written in the rule */
    bool any;
    uint8_t n; /* entries used in r[] */
    struct mmtls_rules_portrange r[MMTLS_RULES_MAX_PORTS];
};

/* flow: option bits. */
#define MMTLS_RULES_FLOW_TO_SERVER 0x01 /* to_server / from_client */
#define MMTLS_RULES_FLOW_TO_CLIENT 0x02 /* to_client / from_server */
#define MMTLS_RULES_FLOW_ESTABLISHED 0x04
#define MMTLS_RULES_FLOW_NOT_ESTABLISHED 0x08
#define MMTLS_RULES_FLOW_STATELESS 0x10

/* service: option bits (Snort 3).  OTHER is set for any service not listed. */
#define MMTLS_RULES_SVC_HTTP 0x01  /* http, http2 */
#define MMTLS_RULES_SVC_SSL 0x02   /* ssl, tls */
#define MMTLS_RULES_SVC_OTHER 0x80 /* smtp, ftp, dns, ... */

enum mmtls_rules_item_kind {
    MMTLS_RULES_CONTENT = 1,
    MMTLS_RULES_PCRE = 2,
};

/* Match item flags. */
#define MMTLS_RULES_I_NEGATED 0x0001      /* content:!"x" / pcre:!"/x/" */
#define MMTLS_RULES_I_NOCASE 0x0002       /* content nocase / pcre i */
#define MMTLS_RULES_I_OFFSET 0x0004       /* offset is set */
#define MMTLS_RULES_I_DEPTH 0x0008        /* depth is set */
#define MMTLS_RULES_I_DISTANCE 0x0010     /* distance is set */
#define MMTLS_RULES_I_WITHIN 0x0020       /* within is set */
#define MMTLS_RULES_I_FAST_PATTERN 0x0040 /* fast_pattern given explicitly on this content */
#define MMTLS_RULES_I_FP_ONLY 0x0080      /* fast_pattern:only (Suricata) */
#define MMTLS_RULES_I_FP_PART 0x0100      /* fast_pattern:off,len / fast_pattern_offset/_length */
#define MMTLS_RULES_I_RELATIVE 0x0200     /* pcre R: relative to the previous match */

/* pcre flag bits (as PCRE / Snort / Suricata define them; the buffer flags U I P Q H D M C V W S
 * are folded into mmtls_rules_item.buf instead). */
#define MMTLS_RULES_PCRE_I 0x0001 /* i: caseless (also sets MMTLS_RULES_I_NOCASE) */
#define MMTLS_RULES_PCRE_S 0x0002 /* s: dot matches newline */
#define MMTLS_RULES_PCRE_M 0x0004 /* m: multi-line ^ $ */
#define MMTLS_RULES_PCRE_X 0x0008 /* x: extended (whitespace ignored) */
#define MMTLS_RULES_PCRE_A 0x0010 /* A: anchored at the start of the buffer */
#define MMTLS_RULES_PCRE_E 0x0020 /* E: $ matches only at the very end */
#define MMTLS_RULES_PCRE_G 0x0040 /* G: ungreedy */
#define MMTLS_RULES_PCRE_O 0x0080 /* O: override the configured match limit */

/* One content or pcre match.  A content's pattern is the decoded bytes (hex and escapes
 * resolved).  A pcre's pattern is the regex text between the slashes, exactly as written (rule
 * escapes such as `\;` are valid regex escapes too, so nothing is rewritten). */
struct mmtls_rules_item {
    uint8_t kind;               /* enum mmtls_rules_item_kind */
    uint8_t buf;                /* enum mmtls_rules_buf */
    uint16_t flags;             /* MMTLS_RULES_I_* */
    uint16_t pcre_flags;        /* MMTLS_RULES_PCRE_* (pcre only) */
    int32_t offset;             /* valid with MMTLS_RULES_I_OFFSET (0..65535) */
    int32_t depth;              /* valid with MMTLS_RULES_I_DEPTH (1..65535) */
    int32_t distance;           /* valid with MMTLS_RULES_I_DISTANCE (-65535..65535) */
    int32_t within;             /* valid with MMTLS_RULES_I_WITHIN (1..65535) */
    uint16_t fp_off, fp_len;    /* valid with MMTLS_RULES_I_FP_PART: part of pattern used */
    struct mmtls_rules_str pat; /* content bytes or regex text (arena) */
};

/* One parsed rule.  Fixed size; every string lives in the inline arena.  `arena` must stay the
 * last member: struct mmtls_rules_set stores only offsetof(arena) + arena_len bytes of each
 * rule, so a rule obtained from a set must not be copied by value (use memcpy of
 * mmtls_rules_rule_size() bytes, or the pointer). */
struct mmtls_rule {
    uint8_t action;                         /* enum mmtls_rules_action */
    uint8_t proto;                          /* enum mmtls_rules_proto */
    bool proto_ok;                          /* the IDS can evaluate it (tcp ip any http tls) */
    char proto_name[MMTLS_RULES_PROTO_MAX]; /* keyword as written, lower case, NUL-ended */
    bool bidir;                             /* `<>` rather than `->` */
    struct mmtls_rules_addr src, dst;       /* header addresses */
    struct mmtls_rules_ports sport, dport;  /* header ports */
    uint32_t gid;                           /* gid option; 1 when absent */
    uint32_t sid;                           /* sid option; required, > 0 */
    uint32_t rev;                           /* rev option; 0 when absent */
    uint32_t priority;                      /* priority option; 0 when absent */
    struct mmtls_rules_str msg;             /* msg, escapes resolved */
    struct mmtls_rules_str classtype;       /* classtype name */
    struct mmtls_rules_str metadata;        /* metadata text (several options: joined ", ") */
    struct mmtls_rules_str service;         /* service list as written ("http,ssl") */
    uint8_t services;                       /* MMTLS_RULES_SVC_*; 0 when no service option */
    uint8_t flow;                           /* MMTLS_RULES_FLOW_* */
    uint8_t nrefs;                          /* references kept in refs[] */
    struct mmtls_rules_str refs[MMTLS_RULES_MAX_REFS]; /* "type,value" of each reference */
    uint8_t nitems;                                    /* match items used in item[] */
    int8_t fp;        /* index in item[] of the fast pattern; -1: none */
    uint8_t fp_buf;   /* buffer of the fast pattern (PKT when fp < 0) */
    uint32_t buffers; /* bit (1 << buf) for every buffer items use */
    struct mmtls_rules_item item[MMTLS_RULES_MAX_ITEMS]; /* in rule order */
    uint32_t arena_len;                                  /* bytes of arena in use */
    uint8_t arena[MMTLS_RULES_ARENA_MAX];                /* string storage; must stay last */
};

/* The bytes of an arena string of r (borrowed: valid while r is). */
static inline struct mmtls_slice mmtls_rules_str(const struct mmtls_rule *r,
                                                 struct mmtls_rules_str s)
{
    struct mmtls_slice v = {r->arena + s.off, s.len};
    return v;
}

/* Bytes of r that are meaningful (header + used part of the arena). */
static inline size_t mmtls_rules_rule_size(const struct mmtls_rule *r)
{
    return offsetof(struct mmtls_rule, arena) + r->arena_len;
}

/* ------------------------------------------------------------------------------------------ */
/* Parser                                                                                      */

enum mmtls_rules_dialect {
    MMTLS_RULES_DIALECT_AUTO = 0, /* decide per rule from evidence (see the top of this file) */
    MMTLS_RULES_DIALECT_SNORT3,   /* http_uri & co. are sticky buffers */
    MMTLS_RULES_DIALECT_SURICATA, /* http_uri & co. modify the previous content (also Snort 2) */
};

/* Where a variable used in a header ($HOME_NET, $HTTP_PORTS) comes from.  Returns 0 and sets
 * *value (borrowed: must stay valid until mmtls_rules_parse returns) when `name` (name_len
 * bytes, without the `$`) is defined; any other value means undefined.  `port` tells which
 * kind of spec is being resolved. */
struct mmtls_rules_vars {
    int (*lookup)(void *ctx, const char *name, size_t name_len, bool port,
                  struct mmtls_slice *value);
    void *ctx; /* borrowed: passed to lookup */
};

/* Options of mmtls_rules_parse (libbpf style: sz first, so fields can be added). */
struct mmtls_rules_parse_opts {
    size_t sz; /* sizeof(struct mmtls_rules_parse_opts) */
    enum mmtls_rules_dialect dialect;
    const struct mmtls_rules_vars *vars; /* borrowed; NULL: every variable is undefined */
};

/* Why a rule was refused. */
struct mmtls_rules_err {
    char reason[MMTLS_RULES_REASON_MAX]; /* short, stable text (grouping key): "option
                                          * flowbits", "unterminated string", ... */
    size_t off;                          /* byte offset in the line where it was found */
};

/* Parses one rule line of `len` bytes (no NUL needed; continuations already joined; no newline
 * inside) into *out.  Pure: no allocation, no logging, no global state; `out` is caller storage
 * and is fully overwritten.
 *   0                    a rule; *out is complete (out->fp chosen, see below)
 *   MMTLS_DECLINED       blank line or comment (`#`)
 *   MMTLS_E_UNSUPPORTED  well formed but uses something the IDS cannot honour exactly (an action
 *                        other than alert/drop/reject/pass, an option, flag or value not listed
 *                        in this header, an undefined variable, a limit above); err says what
 *   MMTLS_E_MALFORMED    not a rule; err says what and where
 * The protocol is not judged here: check out->proto_ok (mmtls_rules_check does it).
 * Fast pattern: the content marked fast_pattern, else the longest non-negated content (the
 * first of equal lengths), as Snort and Suricata default; fp = -1 when there is none.
 * opts may be NULL (AUTO dialect, no variables); err may be NULL. */
MMTLS_MUST_USE int mmtls_rules_parse(const char *line, size_t len,
                                     const struct mmtls_rules_parse_opts *opts,
                                     struct mmtls_rule *out, struct mmtls_rules_err *err);

/* Whether the IDS can evaluate a parsed rule: its protocol is one of tcp ip any http tls, and
 * when it has a service option at least one listed service is http or ssl/tls (the IDS only
 * identifies those).  0, or MMTLS_E_UNSUPPORTED with err ("protocol udp", "service smtp"). */
MMTLS_MUST_USE int mmtls_rules_check(const struct mmtls_rule *r, struct mmtls_rules_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Rule set                                                                                    */

/* Owned collection of loaded rules plus variables and load statistics.  Not thread-safe: load
 * once, then read from any thread. */
struct mmtls_rules_set;

/* Load counters (totals over every load call). */
struct mmtls_rules_stats {
    uint64_t lines;       /* physical lines read */
    uint64_t rules;       /* logical lines that were not blank/comments */
    uint64_t loaded;      /* rules in the set */
    uint64_t skipped;     /* unsupported + malformed + duplicates */
    uint64_t unsupported; /* MMTLS_E_UNSUPPORTED (incl. protocol/service from mmtls_rules_check) */
    uint64_t malformed;   /* MMTLS_E_MALFORMED, incl. rules over MMTLS_RULES_LINE_MAX */
    uint64_t duplicates;  /* same gid:sid as an earlier loaded rule (the first one wins) */
};

/* Creates an empty set with the default variables:
 *   addresses: HOME_NET any, EXTERNAL_NET any, HTTP_SERVERS SMTP_SERVERS SQL_SERVERS DNS_SERVERS
 *              TELNET_SERVERS SIP_SERVERS DC_SERVERS $HOME_NET, AIM_SERVERS $EXTERNAL_NET
 *   ports:     HTTP_PORTS 80, SHELLCODE_PORTS !80, ORACLE_PORTS 1521, SSH_PORTS 22,
 *              FTP_PORTS 21, SIP_PORTS [5060,5061,5600], FILE_DATA_PORTS [$HTTP_PORTS,110,143],
 *              DNP3_PORTS 20000, MODBUS_PORTS 502
 * (Suricata's default suricata.yaml, HOME_NET widened to any; SIP_* from Snort's defaults).
 * *out is owned by the caller: release with mmtls_rules_set_free. */
MMTLS_MUST_USE int mmtls_rules_set_new(struct mmtls_rules_set **out);
/* Frees the set and every rule; NULL does nothing. */
void mmtls_rules_set_free(struct mmtls_rules_set *s);

/* Sets (or replaces) variable `name` (without `$`) to `value` (copied).  Affects rules loaded
 * afterwards.  MMTLS_E_INVAL on an empty/invalid name, MMTLS_E_NOMEM. */
MMTLS_MUST_USE int mmtls_rules_var_set(struct mmtls_rules_set *s, const char *name,
                                       const char *value);
/* Value of variable `name` (borrowed: valid until it is set again or the set is freed), or NULL. */
const char *mmtls_rules_var_get(const struct mmtls_rules_set *s, const char *name);

/* Dialect used for rules loaded afterwards (default AUTO). */
void mmtls_rules_set_dialect(struct mmtls_rules_set *s, enum mmtls_rules_dialect d);

/* Parses one logical rule line and adds it.  Returns the parse result: 0 loaded, MMTLS_DECLINED
 * for a comment/blank line, MMTLS_E_UNSUPPORTED / MMTLS_E_MALFORMED (counted, reason recorded
 * under `where`, which may be NULL), MMTLS_E_CONFLICT for a duplicate gid:sid (counted; the
 * earlier rule stays), MMTLS_E_NOMEM.  Only MMTLS_E_NOMEM is a failure of the set itself. */
MMTLS_MUST_USE int mmtls_rules_add_line(struct mmtls_rules_set *s, const char *line, size_t len,
                                        const char *where);

/* Loads a text buffer (rule file contents): `#` comments, blank lines, `\` at the end of a line
 * joins the next one; a logical line over MMTLS_RULES_LINE_MAX is skipped as malformed.
 * `name` labels warnings (e.g. the file name).  Rules that do not parse are counted, not
 * errors: returns 0, or MMTLS_E_NOMEM. */
MMTLS_MUST_USE int mmtls_rules_load_buf(struct mmtls_rules_set *s, const char *text, size_t len,
                                        const char *name);

/* Loads a rule file.  MMTLS_E_IO when it cannot be opened or read (errno kept; err gets
 * "path: strerror"), else as mmtls_rules_load_buf.  err may be NULL. */
MMTLS_MUST_USE int mmtls_rules_load_file(struct mmtls_rules_set *s, const char *path, char *err,
                                         size_t errcap);

/* Number of loaded rules, and rule i (0 <= i < count) in load order (borrowed: valid until the
 * set is freed; do not copy by value, see struct mmtls_rule). */
size_t mmtls_rules_count(const struct mmtls_rules_set *s);
const struct mmtls_rule *mmtls_rules_get(const struct mmtls_rules_set *s, size_t i);
/* The loaded rule with gid:sid, or NULL. */
const struct mmtls_rule *mmtls_rules_find(const struct mmtls_rules_set *s, uint32_t gid,
                                          uint32_t sid);

void mmtls_rules_stats_get(const struct mmtls_rules_set *s, struct mmtls_rules_stats *st);

/* One skip reason of the summary. */
struct mmtls_rules_reason {
    const char *reason;            /* borrowed: valid until the set is freed; "option flowbits",
                                    * "malformed: unterminated string", "duplicate sid", ... */
    uint64_t count;                /* rules skipped for it */
    uint32_t first_gid, first_sid; /* first rule it hit (0:0 when the sid was not parsed) */
    const char *first_where;       /* borrowed, "file:line" of that rule, or "" */
};

/* Number of distinct skip reasons, and reason i, sorted by count (descending), then name. */
size_t mmtls_rules_reason_count(const struct mmtls_rules_set *s);
MMTLS_MUST_USE int mmtls_rules_reason_get(const struct mmtls_rules_set *s, size_t i,
                                          struct mmtls_rules_reason *out);

/* Prints the load summary to f:
 *   rules: N loaded, M skipped
 *   rules: skipped C: REASON (first sid G:S at FILE:LINE)      one line per reason, by count
 */
void mmtls_rules_summary_print(const struct mmtls_rules_set *s, FILE *f);

#endif /* MMTLS_RULES_H */
