/* Unit tests for the rules parser: table-driven rule lines with their expected parse (rendered
 * as a compact text form), unsupported and malformed lines with their reasons, truncation of
 * every valid line at every offset, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include <arpa/inet.h>

#include "rules/rules_int.h"

/* ------------------------------------------------------------------------------------------ */
/* Rendering a parsed rule as text, so that the expectations read like the rules               */

struct out {
    char b[8192];
    size_t n;
};

static void outf(struct out *o, const char *fmt, ...) MMTLS_PRINTF(2, 3);
static void outf(struct out *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int k = vsnprintf(o->b + o->n, sizeof(o->b) - o->n, fmt, ap);
    va_end(ap);
    if (k > 0) {
        o->n = MMTLS_MIN(o->n + (size_t)k, sizeof(o->b) - 1);
    }
}

static void out_bytes(struct out *o, struct mmtls_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        uint8_t ch = s.p[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
            outf(o, "\\x%02x", ch);
        } else {
            outf(o, "%c", ch);
        }
    }
}

static void out_addr(struct out *o, const struct mmtls_rules_addr *a)
{
    const char *sep = "";

    if (a->any) {
        outf(o, "any");
        sep = ",";
    }
    for (unsigned i = 0; i < a->n; i++) {
        char txt[64];

        inet_ntop(a->net[i].family == 4 ? AF_INET : AF_INET6, a->net[i].addr, txt, sizeof(txt));
        outf(o, "%s%s%s/%u", sep, a->net[i].negated ? "!" : "", txt, a->net[i].prefix);
        sep = ",";
    }
}

static void out_ports(struct out *o, const struct mmtls_rules_ports *p)
{
    const char *sep = "";

    if (p->any) {
        outf(o, "any");
        sep = ",";
    }
    for (unsigned i = 0; i < p->n; i++) {
        const struct mmtls_rules_portrange *r = &p->r[i];
        if (r->lo == r->hi) {
            outf(o, "%s%s%u", sep, r->negated ? "!" : "", r->lo);
        } else {
            outf(o, "%s%s%u:%u", sep, r->negated ? "!" : "", r->lo, r->hi);
        }
        sep = ",";
    }
}

/* "ACTION PROTO SRC SPORT DIR DST DPORT | gid:sid:rev | flow=.. | fp=I | items..." */
static const char *render(const struct mmtls_rule *r)
{
    static struct out o;
    static const char *const act[] = {"?", "alert", "drop", "reject", "pass"};

    o.n = 0;
    o.b[0] = '\0';
    outf(&o, "%s %s%s ", act[r->action], r->proto_name, r->proto_ok ? "" : "(x)");
    out_addr(&o, &r->src);
    outf(&o, " ");
    out_ports(&o, &r->sport);
    outf(&o, " %s ", r->bidir ? "<>" : "->");
    out_addr(&o, &r->dst);
    outf(&o, " ");
    out_ports(&o, &r->dport);
    outf(&o, " | %u:%u:%u", r->gid, r->sid, r->rev);
    if (r->flow != 0) {
        outf(&o, " | flow=%s%s%s%s%s", (r->flow & MMTLS_RULES_FLOW_TO_SERVER) ? "S" : "",
             (r->flow & MMTLS_RULES_FLOW_TO_CLIENT) ? "C" : "",
             (r->flow & MMTLS_RULES_FLOW_ESTABLISHED) ? "E" : "",
             (r->flow & MMTLS_RULES_FLOW_NOT_ESTABLISHED) ? "N" : "",
             (r->flow & MMTLS_RULES_FLOW_STATELESS) ? "L" : "");
    }
    if (r->services != 0) {
        outf(&o, " | svc=%x", r->services);
    }
    outf(&o, " | fp=%d", r->fp);
    if (r->fp >= 0) {
        outf(&o, "/%s", mmtls_rules_buf_name(r->fp_buf));
    }
    for (unsigned i = 0; i < r->nitems; i++) {
        const struct mmtls_rules_item *it = &r->item[i];

        outf(&o, " | %s%s %s ", it->kind == MMTLS_RULES_CONTENT ? "content" : "pcre",
             (it->flags & MMTLS_RULES_I_NEGATED) ? "!" : "", mmtls_rules_buf_name(it->buf));
        outf(&o, it->kind == MMTLS_RULES_CONTENT ? "\"" : "/");
        out_bytes(&o, mmtls_rules_str(r, it->pat));
        outf(&o, it->kind == MMTLS_RULES_CONTENT ? "\"" : "/");
        if (it->kind == MMTLS_RULES_PCRE) {
            static const char fl[] = "ismxAEGO";
            for (unsigned b = 0; b < 8; b++) {
                if (it->pcre_flags & (1u << b)) {
                    outf(&o, "%c", fl[b]);
                }
            }
            if (it->flags & MMTLS_RULES_I_RELATIVE) {
                outf(&o, " R");
            }
        } else if (it->flags & MMTLS_RULES_I_NOCASE) {
            outf(&o, " nocase");
        }
        if (it->flags & MMTLS_RULES_I_OFFSET) {
            outf(&o, " offset %d", it->offset);
        }
        if (it->flags & MMTLS_RULES_I_DEPTH) {
            outf(&o, " depth %d", it->depth);
        }
        if (it->flags & MMTLS_RULES_I_DISTANCE) {
            outf(&o, " distance %d", it->distance);
        }
        if (it->flags & MMTLS_RULES_I_WITHIN) {
            outf(&o, " within %d", it->within);
        }
        if (it->flags & MMTLS_RULES_I_FAST_PATTERN) {
            outf(&o, " fast_pattern");
        }
        if (it->flags & MMTLS_RULES_I_FP_ONLY) {
            outf(&o, " only");
        }
        if (it->flags & MMTLS_RULES_I_FP_PART) {
            outf(&o, " part %u,%u", it->fp_off, it->fp_len);
        }
    }
    return o.b;
}

/* Test variables. */
static int test_lookup(void *ctx, const char *name, size_t len, bool port, struct mmtls_slice *v)
{
    static const char *const vars[][2] = {
        {"HOME_NET", "[10.0.0.0/8,192.168.0.0/16]"},
        {"EXTERNAL_NET", "!$HOME_NET"},
        {"HTTP_SERVERS", "$HOME_NET"},
        {"HTTP_PORTS", "[80,8080]"},
        {"SNORT_PORTS", "80 81 8000:8010"}, /* Snort 3 style: blank separated */
        {"ANY", "any"},
        {"LOOP", "$LOOP"},
        {"V6", "2001:db8::/32"},
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

static const struct mmtls_rules_vars test_vars = {test_lookup, NULL};

static int parse(const char *line, size_t len, struct mmtls_rule *r, struct mmtls_rules_err *e)
{
    struct mmtls_rules_parse_opts opts = {sizeof(opts), MMTLS_RULES_DIALECT_AUTO, &test_vars};

    return mmtls_rules_parse(line, len, &opts, r, e);
}

/* ------------------------------------------------------------------------------------------ */
/* Valid rules                                                                                 */

#define H "alert tcp any any -> any any "

static const struct {
    const char *line;
    const char *want;
} good[] = {
    /* Snort 3: sticky buffer before, comma modifiers (community sid 105 style) */
    {"alert tcp $HOME_NET 2589 -> $EXTERNAL_NET any ( msg:\"MALWARE-BACKDOOR - Dagger_1.4.0\"; "
     "flow:to_client,established; content:\"2|00 00 00 06 00 00 00|Drives|24 00|\",depth 16; "
     "metadata:ruleset community; classtype:misc-activity; sid:105; rev:14; )",
     "alert tcp 10.0.0.0/8,192.168.0.0/16 2589 -> any,!10.0.0.0/8,!192.168.0.0/16 any | 1:105:14"
     " | flow=CE | fp=0/pkt_data | content pkt_data "
     "\"2\\x00\\x00\\x00\\x06\\x00\\x00\\x00Drives$\\x00\" depth 16"},
    {"alert tcp $EXTERNAL_NET any -> $HTTP_SERVERS $HTTP_PORTS ( msg:\"x\"; "
     "flow:to_server,established; http_uri; content:\"/swc\",nocase; "
     "content:\"ctr=\",distance 0,nocase; service:http; sid:1478; rev:18; )",
     "alert tcp any,!10.0.0.0/8,!192.168.0.0/16 any -> 10.0.0.0/8,192.168.0.0/16 80,8080 | "
     "1:1478:18 | flow=SE | svc=1 | fp=0/http_uri | content http_uri \"/swc\" nocase | "
     "content http_uri \"ctr=\" nocase distance 0"},
    /* Snort 3: several sticky buffers, back to the stream with pkt_data */
    {H "(http_method; content:\"POST\"; http_header; content:\"X-Evil\",fast_pattern,nocase; "
       "pkt_data; content:\"abc\",offset 4,within 10; sid:2;)",
     "alert tcp any any -> any any | 1:2:0 | fp=1/http_header | content http_method \"POST\" | "
     "content http_header \"X-Evil\" nocase fast_pattern | content pkt_data \"abc\" offset 4 "
     "within 10"},
    /* Suricata: dotted sticky buffers, stand-alone modifiers */
    {"alert http $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (msg:\"ET x\"; flow:established,"
     "to_server; http.method; content:\"GET\"; http.uri; content:\"/a.php?id=\"; depth:10; "
     "nocase; fast_pattern; http.user_agent; content:\"curl\"; sid:2000001; rev:3;)",
     "alert http 10.0.0.0/8,192.168.0.0/16 any -> any,!10.0.0.0/8,!192.168.0.0/16 80,8080 | "
     "1:2000001:3 | flow=SE | fp=1/http_uri | content http_method \"GET\" | content http_uri "
     "\"/a.php?id=\" nocase depth 10 fast_pattern | content http_user_agent \"curl\""},
    /* Suricata / Snort 2 legacy content modifiers after the content */
    {H "(content:\"GET\"; http_method; content:\"/x\"; http_uri; nocase; content:\"evil.com\"; "
       "http_host; content:\"a=b\"; http_cookie; content:\"200\"; http_stat_code; sid:3;)",
     "alert tcp any any -> any any | 1:3:0 | fp=2/http_host | content http_method \"GET\" | "
     "content http_uri \"/x\" nocase | content http_host \"evil.com\" | content http_cookie "
     "\"a=b\" | content http_stat_code \"200\""},
    {H "(content:\"q\"; http_raw_uri; content:\"hdr\"; http_raw_header; content:\"body\"; "
       "http_client_body; content:\"page\"; http_server_body; content:\"UA\"; "
       "http_user_agent; content:\"H\"; http_header; sid:4;)",
     "alert tcp any any -> any any | 1:4:0 | fp=2/http_client_body | content http_raw_uri "
     "\"q\" | content http_raw_header \"hdr\" | content http_client_body \"body\" | content "
     "file_data \"page\" | content http_user_agent \"UA\" | content http_header \"H\""},
    /* Suricata sticky names for bodies, TLS SNI, file.data */
    {"alert tls any any -> any 443 (tls.sni; content:\"bad.example\"; nocase; "
     "http.request_body; content:\"b1\"; http.response_body; content:\"b2\"; file.data; "
     "content:\"b3\"; http.stat_code; content:\"404\"; http.cookie; content:\"c\"; "
     "http.host; content:\"h\"; http.header; content:\"x\"; sid:5;)",
     "alert tls any any -> any 443 | 1:5:0 | fp=0/tls.sni | content tls.sni \"bad.example\" "
     "nocase | content http_client_body \"b1\" | content file_data \"b2\" | content file_data "
     "\"b3\" | content http_stat_code \"404\" | content http_cookie \"c\" | content http_host "
     "\"h\" | content http_header \"x\""},
    {H "(tls_sni; content:\"x.org\"; file_data; content:\"MZ\"; raw_data; content:\"y\"; "
       "sid:6;)",
     "alert tcp any any -> any any | 1:6:0 | fp=0/tls.sni | content tls.sni \"x.org\" | "
     "content file_data \"MZ\" | content pkt_data \"y\""},
    /* hex mixed with text, escapes, negation */
    {H "(content:\"a|3B 3a|b\\\"c\\;d\\\\e\"; content:!\"no\"; content:!\"longer-negated\"; "
       "sid:7;)",
     "alert tcp any any -> any any | 1:7:0 | fp=0/pkt_data | content pkt_data "
     "\"a;:b\\x22c;d\\x5ce\" | content! pkt_data \"no\" | content! pkt_data \"longer-negated\""},
    {H "(content:! \"x\"; sid:8;)",
     "alert tcp any any -> any any | 1:8:0 | fp=-1 | content! pkt_data \"x\""},
    {H "(content:\"|de ad be ef|\"; content:\"|00|\"; sid:9;)",
     "alert tcp any any -> any any | 1:9:0 | fp=0/pkt_data | content pkt_data "
     "\"\\xde\\xad\\xbe\\xef\" | content pkt_data \"\\x00\""},
    /* the longest content is the fast pattern unless one is marked */
    {H "(content:\"ab\"; content:\"abcd\"; content:\"wxyz\"; sid:10;)",
     "alert tcp any any -> any any | 1:10:0 | fp=1/pkt_data | content pkt_data \"ab\" | "
     "content pkt_data \"abcd\" | content pkt_data \"wxyz\""},
    {H "(content:\"ab\"; fast_pattern:only; content:\"abcd\"; sid:11;)",
     "alert tcp any any -> any any | 1:11:0 | fp=0/pkt_data | content pkt_data \"ab\" "
     "fast_pattern only | content pkt_data \"abcd\""},
    {H "(content:\"abcdef\"; fast_pattern:1,3; sid:12;)",
     "alert tcp any any -> any any | 1:12:0 | fp=0/pkt_data | content pkt_data \"abcdef\" "
     "fast_pattern part 1,3"},
    {H "(content:\"abcdef\",fast_pattern,fast_pattern_offset 2,fast_pattern_length 4; "
       "sid:13;)",
     "alert tcp any any -> any any | 1:13:0 | fp=0/pkt_data | content pkt_data \"abcdef\" "
     "fast_pattern part 2,4"},
    {H "(content:\"abcdef\",fast_pattern,fast_pattern_offset 2; sid:14;)",
     "alert tcp any any -> any any | 1:14:0 | fp=0/pkt_data | content pkt_data \"abcdef\" "
     "fast_pattern part 2,4"},
    /* Suricata offset/depth/distance/within, negative distance */
    {H "(content:\"a\"; offset:3; depth:5; content:\"b\"; distance:-2; within:7; sid:15;)",
     "alert tcp any any -> any any | 1:15:0 | fp=0/pkt_data | content pkt_data \"a\" offset 3 "
     "depth 5 | content pkt_data \"b\" distance -2 within 7"},
    /* pcre: flags, buffer flags, negation, sticky buffer, relative */
    {H "(content:\"x\"; pcre:\"/a;b\\/c/ismxAEGOR\"; sid:16;)",
     "alert tcp any any -> any any | 1:16:0 | fp=0/pkt_data | content pkt_data \"x\" | pcre "
     "pkt_data /a;b\\x5c/c/ismxAEGO R"},
    {H "(pcre:\"/\\/x\\.php/U\"; pcre:!\"/y/Hi\"; pcre:\"/z/P\"; pcre:\"/m/M\"; "
       "pcre:\"/c/C\"; pcre:\"/r/I\"; pcre:\"/d/D\"; pcre:\"/s/S\"; pcre:\"/v/V\"; "
       "pcre:\"/w/W\"; pcre:\"/q/Q\"; sid:17;)",
     "alert tcp any any -> any any | 1:17:0 | fp=-1 | pcre http_uri /\\x5c/x\\x5c.php/ | pcre! "
     "http_header /y/i | pcre http_client_body /z/ | pcre http_method /m/ | pcre http_cookie "
     "/c/ | pcre http_raw_uri /r/ | pcre http_raw_header /d/ | pcre http_stat_code /s/ | "
     "pcre http_user_agent /v/ | pcre http_host /w/ | pcre file_data /q/"},
    {H "(http_uri; content:\"/a\"; pcre:\"/b$/R\"; pcre:\"/c/U\"; sid:18;)",
     "alert tcp any any -> any any | 1:18:0 | fp=0/http_uri | content http_uri \"/a\" | pcre "
     "http_uri /b$/ R | pcre http_uri /c/"},
    /* header forms: port lists, ranges, negation, bidirectional, IPv6, netmask, variables */
    {"drop tcp [1.2.3.4,5.6.7.0/24,!5.6.7.8] [80,443,8000:8080] <> !10.0.0.0/255.0.0.0 !80 "
     "(sid:19;)",
     "drop tcp 1.2.3.4/32,5.6.7.0/24,!5.6.7.8/32 80,443,8000:8080 <> any,!10.0.0.0/8 any,!80 | "
     "1:19:0 | fp=-1"},
    {"reject ip [$HOME_NET,!192.168.1.0/24] 1024: -> $V6 :1023 (sid:20;)",
     "reject ip 10.0.0.0/8,192.168.0.0/16,!192.168.1.0/24 1024:65535 -> 2001:db8::/32 0:1023 |"
     " 1:20:0 | fp=-1"},
    {"pass tcp any [$HTTP_PORTS,![81:82]] -> 10.1.2.3/8 $SNORT_PORTS (sid:21; gid:3; rev:2; "
     "priority:1;)",
     "pass tcp any 80,8080,!81:82 -> 10.0.0.0/8 80,81,8000:8010 | 3:21:2 | fp=-1"},
    {"alert any [ 1.1.1.1 , 2.2.2.2 ] any -> $ANY any (sid:22;)",
     "alert any 1.1.1.1/32,2.2.2.2/32 any -> any any | 1:22:0 | fp=-1"},
    {"alert udp any any -> any 53 (sid:23;)", "alert udp(x) any any -> any 53 | 1:23:0 | fp=-1"},
    /* Snort 3 service rule header, services */
    {"alert http (msg:\"svc\"; http_uri; content:\"/x\"; service:http,smtp; sid:24;)",
     "alert http any any -> any any | 1:24:0 | svc=81 | fp=0/http_uri | content http_uri "
     "\"/x\""},
    {"alert ssl ( msg:\"s\"; flow:stateless; sid:25; )",
     "alert ssl any any -> any any | 1:25:0 | flow=L | fp=-1"},
    /* flow words */
    {H "(flow:from_client,not_established; sid:26;)",
     "alert tcp any any -> any any | 1:26:0 | flow=SN | fp=-1"},
    {H "(flow:from_server; sid:27;)", "alert tcp any any -> any any | 1:27:0 | flow=C | fp=-1"},
    /* odd spacing and tabs; options without a space; unquoted msg */
    {"  alert\ttcp any any -> any any(sid : 28 ;msg:no quotes;content:\"a\" , nocase ;)  ",
     "alert tcp any any -> any any | 1:28:0 | fp=0/pkt_data | content pkt_data \"a\" nocase"},
};

static void test_good(void **state)
{
    static struct mmtls_rule r;
    struct mmtls_rules_err e;

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(good); i++) {
        int rc = parse(good[i].line, strlen(good[i].line), &r, &e);

        if (rc != 0) {
            fail_msg("case %zu: rc %d (%s at %zu): %s", i, rc, e.reason, e.off, good[i].line);
        }
        if (strcmp(render(&r), good[i].want) != 0) {
            fail_msg("case %zu:\n got: %s\nwant: %s", i, render(&r), good[i].want);
        }
    }
}

/* Fields the compact form does not show. */
static void test_fields(void **state)
{
    static struct mmtls_rule r;
    static const char line[] =
        "alert tcp any any -> any any (msg:\"say \\\"hi\\\"\\; ok\"; reference:cve,2020-1; "
        "reference:url,x.org/a; classtype:trojan-activity; metadata:policy balanced-ips drop; "
        "metadata:created_at 2020; priority:2; service:ssl; sid:1; rev:9;)";
    struct mmtls_slice s;

    (void)state;
    assert_int_equal(parse(line, strlen(line), &r, NULL), 0);
    s = mmtls_rules_str(&r, r.msg);
    assert_int_equal(s.len, strlen("say \"hi\"; ok"));
    assert_memory_equal(s.p, "say \"hi\"; ok", s.len);
    assert_int_equal(r.nrefs, 2);
    s = mmtls_rules_str(&r, r.refs[1]);
    assert_memory_equal(s.p, "url,x.org/a", s.len);
    s = mmtls_rules_str(&r, r.classtype);
    assert_memory_equal(s.p, "trojan-activity", s.len);
    s = mmtls_rules_str(&r, r.metadata);
    assert_int_equal(s.len, strlen("policy balanced-ips drop, created_at 2020"));
    assert_memory_equal(s.p, "policy balanced-ips drop, created_at 2020", s.len);
    s = mmtls_rules_str(&r, r.src.text);
    assert_memory_equal(s.p, "any", 3);
    assert_int_equal(r.priority, 2);
    assert_int_equal(r.services, MMTLS_RULES_SVC_SSL);
    assert_int_equal(r.rev, 9);
    assert_int_equal(r.gid, 1);
    assert_int_equal(r.action, MMTLS_RULES_ALERT);
    assert_int_equal(r.proto, MMTLS_RULES_PROTO_TCP);
    assert_int_equal(mmtls_rules_check(&r, NULL), 0);
    /* variable text is kept as written */
    static const char l2[] = "alert tcp $HOME_NET any -> any $HTTP_PORTS (content:\"a\"; "
                             "http_uri; nocase; content:\"b\"; sid:2;)";
    assert_int_equal(parse(l2, strlen(l2), &r, NULL), 0);
    s = mmtls_rules_str(&r, r.src.text);
    assert_memory_equal(s.p, "$HOME_NET", s.len);
    s = mmtls_rules_str(&r, r.dport.text);
    assert_memory_equal(s.p, "$HTTP_PORTS", s.len);
    assert_int_equal(r.buffers, 1u << MMTLS_RULES_BUF_HTTP_URI | 1u << MMTLS_RULES_BUF_PKT);
}

/* ------------------------------------------------------------------------------------------ */
/* Refused rules                                                                               */

static const struct {
    const char *line;
    int rc;
    const char *reason; /* exact */
} bad[] = {
    {"", MMTLS_DECLINED, ""},
    {"   \t ", MMTLS_DECLINED, ""},
    {"# alert tcp any any -> any any (sid:1;)", MMTLS_DECLINED, ""},
    {"  #comment", MMTLS_DECLINED, ""},
    /* unsupported: actions, options, values, flags */
    {"log tcp any any -> any any (sid:1;)", MMTLS_E_UNSUPPORTED, "action log"},
    {"sdrop tcp any any -> any any (sid:1;)", MMTLS_E_UNSUPPORTED, "action sdrop"},
    {"block tcp any any -> any any (sid:1;)", MMTLS_E_UNSUPPORTED, "action block"},
    {"rewrite tcp any any -> any any (sid:1;)", MMTLS_E_UNSUPPORTED, "action rewrite"},
    {H "(flowbits:isset,x; sid:1;)", MMTLS_E_UNSUPPORTED, "option flowbits"},
    {H "(content:\"a\"; byte_test:4,>,1,0; sid:1;)", MMTLS_E_UNSUPPORTED, "option byte_test"},
    {H "(content:\"a\"; isdataat:1,relative; sid:1;)", MMTLS_E_UNSUPPORTED, "option isdataat"},
    {H "(detection_filter:track by_src,count 5,seconds 60; sid:1;)", MMTLS_E_UNSUPPORTED,
     "option detection_filter"},
    {H "(threshold:type limit,track by_src,count 1,seconds 60; sid:1;)", MMTLS_E_UNSUPPORTED,
     "option threshold"},
    {H "(app-layer-event:http.x; sid:1;)", MMTLS_E_UNSUPPORTED, "option app-layer-event"},
    {H "(dsize:>10; sid:1;)", MMTLS_E_UNSUPPORTED, "option dsize"},
    {H "(content:\"a\"; rawbytes; sid:1;)", MMTLS_E_UNSUPPORTED, "option rawbytes"},
    {H "(http_stat_msg; content:\"OK\"; sid:1;)", MMTLS_E_UNSUPPORTED, "option http_stat_msg"},
    {H "(http_header:field user-agent; content:\"x\"; sid:1;)", MMTLS_E_UNSUPPORTED,
     "option http_header with a value"},
    {H "(flow:to_server,only_stream; sid:1;)", MMTLS_E_UNSUPPORTED, "flow only_stream"},
    {H "(flow:no_stream; sid:1;)", MMTLS_E_UNSUPPORTED, "flow no_stream"},
    {H "(pcre:\"/a/K\"; sid:1;)", MMTLS_E_UNSUPPORTED, "pcre flag K"},
    {H "(pcre:\"/a/B\"; sid:1;)", MMTLS_E_UNSUPPORTED, "pcre flag B"},
    {H "(pcre:\"/a/Y\"; sid:1;)", MMTLS_E_UNSUPPORTED, "pcre flag Y"},
    {H "(pcre:\"/a/q\"; sid:1;)", MMTLS_E_UNSUPPORTED, "pcre flag q"},
    {H "(pcre:\"m{a}\"; sid:1;)", MMTLS_E_UNSUPPORTED, "pcre without '/' delimiters"},
    {H "(content:\"a\"; byte_extract:1,0,v; content:\"b\"; within:v; sid:1;)", MMTLS_E_UNSUPPORTED,
     "option byte_extract"},
    {H "(content:\"a\",within v; sid:1;)", MMTLS_E_UNSUPPORTED, "within with a variable"},
    {H "(content:\"a\",nocase,bogus; sid:1;)", MMTLS_E_UNSUPPORTED, "content modifier bogus"},
    {"alert tcp $NOPE any -> any any (sid:1;)", MMTLS_E_UNSUPPORTED, "undefined variable $NOPE"},
    {"alert tcp $LOOP any -> any any (sid:1;)", MMTLS_E_UNSUPPORTED, "variables nested too deep"},
    {"alert tcp !any any -> any any (sid:1;)", MMTLS_E_UNSUPPORTED, "negated any"},
    {"alert tcp !$ANY any -> any any (sid:1;)", MMTLS_E_UNSUPPORTED, "negated any"},
    {"alert tcp ![1.1.1.1,!2.2.2.2] any -> any any (sid:1;)", MMTLS_E_UNSUPPORTED,
     "nested negation"},
    {"alert tcp 1.1.1.1-1.1.1.9 any -> any any (sid:1;)", MMTLS_E_UNSUPPORTED, "address range"},
    {"alert tcp any any => any any (sid:1;)", MMTLS_E_UNSUPPORTED, "direction =>"},
    /* an underscore buffer with no evidence of dialect */
    {H "(content:\"a\"; http_uri; content:\"b\"; http_header; content:\"c\"; sid:1;)",
     MMTLS_E_UNSUPPORTED, "ambiguous buffer syntax"},
    /* malformed */
    {"alert", MMTLS_E_MALFORMED, "incomplete header"},
    {"hello world", MMTLS_E_MALFORMED, "incomplete header"},
    {"foo tcp any any -> any any (sid:1;)", MMTLS_E_MALFORMED, "unknown action"},
    {"alert tcp any any -> any (sid:1;)", MMTLS_E_MALFORMED, "incomplete header"},
    {"alert tcp any any <- any any (sid:1;)", MMTLS_E_MALFORMED, "bad direction"},
    {"alert tcp any any -> any any sid:1;", MMTLS_E_MALFORMED, "expected '('"},
    {"alert tcp any any -> any any x (sid:1;)", MMTLS_E_MALFORMED, "expected '('"},
    {H "(sid:1;", MMTLS_E_MALFORMED, "missing ')'"},
    {H "(sid:1)", MMTLS_E_MALFORMED, "option not terminated"},
    {H "(sid:1;) x", MMTLS_E_MALFORMED, "text after ')'"},
    {H "(msg:\"x\";)", MMTLS_E_MALFORMED, "missing sid"},
    {H "(sid:0;)", MMTLS_E_MALFORMED, "bad sid value"},
    {H "(sid:abc;)", MMTLS_E_MALFORMED, "bad sid value"},
    {H "(sid:1; sid:2;)", MMTLS_E_MALFORMED, "duplicate sid"},
    {H "(sid:1; rev:99999999999;)", MMTLS_E_MALFORMED, "bad rev value"},
    {H "(; sid:1;)", MMTLS_E_MALFORMED, "expected an option name"},
    {H "(sid:1 x:2;)", MMTLS_E_MALFORMED, "bad sid value"},
    {H "(sid;)", MMTLS_E_MALFORMED, "sid needs a value"},
    {H "(content:\"abc; sid:1;)", MMTLS_E_MALFORMED, "option not terminated"},
    {H "(content:abc; sid:1;)", MMTLS_E_MALFORMED, "content needs a quoted string"},
    {H "(content:\"\"; sid:1;)", MMTLS_E_MALFORMED, "empty content"},
    {H "(content:\"|4|\"; sid:1;)", MMTLS_E_MALFORMED, "odd number of hex digits"},
    {H "(content:\"|4 1|\"; sid:1;)", MMTLS_E_MALFORMED, "split hex byte"},
    {H "(content:\"|zz|\"; sid:1;)", MMTLS_E_MALFORMED, "bad hex digit"},
    {H "(content:\"|41\"; sid:1;)", MMTLS_E_MALFORMED, "unterminated hex run"},
    {H "(content:\"a\\nb\"; sid:1;)", MMTLS_E_MALFORMED, "bad escape in content"},
    {H "(content:\"a\" x; sid:1;)", MMTLS_E_MALFORMED, "text after content string"},
    {H "(content:\"a\",; sid:1;)", MMTLS_E_MALFORMED, "empty content modifier"},
    {H "(content:\"a\",nocase,nocase; sid:1;)", MMTLS_E_MALFORMED, "bad nocase"},
    {H "(content:\"a\"; depth:5; depth:6; sid:1;)", MMTLS_E_MALFORMED, "duplicate depth"},
    {H "(content:\"a\"; depth:0; sid:1;)", MMTLS_E_MALFORMED, "bad depth value"},
    {H "(content:\"a\"; within:70000; sid:1;)", MMTLS_E_MALFORMED, "bad within value"},
    {H "(content:\"a\"; depth; sid:1;)", MMTLS_E_MALFORMED, "depth needs a value"},
    {H "(nocase; content:\"a\"; sid:1;)", MMTLS_E_MALFORMED, "nocase needs a content"},
    {H "(content:\"a\"; nocase:1; sid:1;)", MMTLS_E_MALFORMED, "nocase takes no value"},
    {H "(pcre:\"/a/\"; depth:3; sid:1;)", MMTLS_E_MALFORMED, "depth needs a content"},
    {H "(content:\"a\"; fast_pattern; content:\"b\"; fast_pattern; sid:1;)", MMTLS_E_MALFORMED,
     "duplicate fast_pattern"},
    {H "(content:\"abc\"; fast_pattern:2,5; sid:1;)", MMTLS_E_MALFORMED,
     "fast_pattern part outside content"},
    {H "(content:\"abc\"; fast_pattern:x; sid:1;)", MMTLS_E_MALFORMED, "bad fast_pattern value"},
    {H "(http.uri; content:\"a\"; http_header; sid:1;)", MMTLS_E_MALFORMED,
     "content with two buffers"},
    {H "(content:\"a\"; http_uri; http_header; nocase; sid:1;)", MMTLS_E_MALFORMED,
     "content with two buffers"},
    {H "(http.uri; pcre:\"/a/H\"; sid:1;)", MMTLS_E_MALFORMED,
     "pcre flag conflicts with the buffer"},
    {H "(pcre:\"/a/UH\"; sid:1;)", MMTLS_E_MALFORMED, "pcre with two buffer flags"},
    {H "(pcre:\"/a\"; sid:1;)", MMTLS_E_MALFORMED, "pcre not closed by '/'"},
    {H "(pcre:\"//i\"; sid:1;)", MMTLS_E_MALFORMED, "empty pcre"},
    {H "(pcre:\"/a/\" x; sid:1;)", MMTLS_E_MALFORMED, "bad pcre string"},
    {H "(flow:to_server,to_client; sid:1;)", MMTLS_E_MALFORMED, "flow to both sides"},
    {H "(flow:established,not_established; sid:1;)", MMTLS_E_MALFORMED, "flow established and not"},
    {H "(flow:established,established; sid:1;)", MMTLS_E_MALFORMED, "duplicate flow word"},
    {H "(flow:,established; sid:1;)", MMTLS_E_MALFORMED, "empty flow word"},
    {H "(msg:\"a\"b\"c\"; sid:1;)", MMTLS_E_MALFORMED, "bad quoted string"},
    {H "(service:http,,ssl; sid:1;)", MMTLS_E_MALFORMED, "empty service name"},
    {"alert tcp [1.1.1.1 any -> any any (sid:1;)", MMTLS_E_MALFORMED, "incomplete header"},
    {"alert tcp [1.1.1.1,] any -> any any (sid:1;)", MMTLS_E_MALFORMED, "empty list element"},
    {"alert tcp [] any -> any any (sid:1;)", MMTLS_E_MALFORMED, "empty list"},
    {"alert tcp 1.1.1.1/33 any -> any any (sid:1;)", MMTLS_E_MALFORMED, "bad prefix length"},
    {"alert tcp 1.1.1.1/ any -> any any (sid:1;)", MMTLS_E_MALFORMED, "bad prefix length"},
    {"alert tcp 1.1.1.1/255.0.255.0 any -> any any (sid:1;)", MMTLS_E_MALFORMED, "bad netmask"},
    {"alert tcp 1.1.1 any -> any any (sid:1;)", MMTLS_E_MALFORMED, "bad address"},
    {"alert tcp foo any -> any any (sid:1;)", MMTLS_E_MALFORMED, "bad address"},
    {"alert tcp any 70000 -> any any (sid:1;)", MMTLS_E_MALFORMED, "bad port"},
    {"alert tcp any 90:80 -> any any (sid:1;)", MMTLS_E_MALFORMED, "bad port range"},
    {"alert tcp any : -> any any (sid:1;)", MMTLS_E_MALFORMED, "bad port range"},
    {"alert tcp any [80 443] -> any any (sid:1;)", MMTLS_E_MALFORMED, "expected ','"},
    {"alert tcp $ any -> any any (sid:1;)", MMTLS_E_MALFORMED, "bad variable name"},
    {"alert t(p any any -> any any (sid:1;)", MMTLS_E_MALFORMED, "expected ';'"},
    {"alert t/p any any -> any any (sid:1;)", MMTLS_E_MALFORMED, "bad protocol"},
};

static void test_bad(void **state)
{
    static struct mmtls_rule r;
    struct mmtls_rules_err e;

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(bad); i++) {
        int rc = parse(bad[i].line, strlen(bad[i].line), &r, &e);

        if (rc != bad[i].rc || strcmp(e.reason, bad[i].reason) != 0) {
            fail_msg("case %zu: rc %d want %d, reason '%s' want '%s': %s", i, rc, bad[i].rc,
                     e.reason, bad[i].reason, bad[i].line);
        }
        assert_true(e.off <= strlen(bad[i].line));
    }
}

/* Protocols and services the IDS cannot evaluate. */
static void test_check(void **state)
{
    static struct mmtls_rule r;
    struct mmtls_rules_err e;
    static const struct {
        const char *line;
        int rc;
        const char *reason;
    } cases[] = {
        {"alert udp any any -> any 53 (sid:1;)", MMTLS_E_UNSUPPORTED, "protocol udp"},
        {"alert icmp any any -> any any (sid:1;)", MMTLS_E_UNSUPPORTED, "protocol icmp"},
        {"alert dns any any -> any any (sid:1;)", MMTLS_E_UNSUPPORTED, "protocol dns"},
        {H "(service:smtp; sid:1;)", MMTLS_E_UNSUPPORTED, "service smtp"},
        {H "(service:ftp-data,imap; sid:1;)", MMTLS_E_UNSUPPORTED, "service ftp-data,imap"},
        {H "(service:ftp-data,http,imap,pop3; sid:1;)", 0, ""},
        {"alert ip any any -> any any (sid:1;)", 0, ""},
        {"alert http any any -> any any (sid:1;)", 0, ""},
        {"alert tls any any -> any any (sid:1;)", 0, ""},
    };

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(cases); i++) {
        assert_int_equal(parse(cases[i].line, strlen(cases[i].line), &r, &e), 0);
        e.reason[0] = '\0';
        assert_int_equal(mmtls_rules_check(&r, &e), cases[i].rc);
        assert_string_equal(e.reason, cases[i].reason);
    }
}

/* Forcing the dialect decides the meaning of underscore buffer names. */
static void test_dialect(void **state)
{
    static struct mmtls_rule r;
    static const char line[] = H "(content:\"a\"; http_uri; content:\"b\"; sid:1;)";
    struct mmtls_rules_parse_opts o = {sizeof(o), MMTLS_RULES_DIALECT_SNORT3, NULL};

    (void)state;
    assert_int_equal(mmtls_rules_parse(line, strlen(line), &o, &r, NULL), 0);
    assert_int_equal(r.item[0].buf, MMTLS_RULES_BUF_PKT);
    assert_int_equal(r.item[1].buf, MMTLS_RULES_BUF_HTTP_URI);
    o.dialect = MMTLS_RULES_DIALECT_SURICATA;
    assert_int_equal(mmtls_rules_parse(line, strlen(line), &o, &r, NULL), 0);
    assert_int_equal(r.item[0].buf, MMTLS_RULES_BUF_HTTP_URI);
    assert_int_equal(r.item[1].buf, MMTLS_RULES_BUF_PKT);
    /* AUTO: ambiguous; NULL options mean AUTO and no variables */
    assert_int_equal(mmtls_rules_parse(line, strlen(line), NULL, &r, NULL), MMTLS_E_UNSUPPORTED);
    static const char v[] = "alert tcp $HOME_NET any -> any any (sid:1;)";
    assert_int_equal(mmtls_rules_parse(v, strlen(v), NULL, &r, NULL), MMTLS_E_UNSUPPORTED);
    /* a trailing legacy name after the last content is a modifier (Suricata) */
    static const char t[] = H "(content:\"a\"; content:\"b\"; http_uri; sid:1;)";
    assert_int_equal(mmtls_rules_parse(t, strlen(t), NULL, &r, NULL), 0);
    assert_int_equal(r.item[0].buf, MMTLS_RULES_BUF_PKT);
    assert_int_equal(r.item[1].buf, MMTLS_RULES_BUF_HTTP_URI);
}

/* Every valid rule cut at every offset is MALFORMED or DECLINED, never anything else. */
static void test_truncation(void **state)
{
    static struct mmtls_rule r;
    struct mmtls_rules_err e;

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(good); i++) {
        const char *line = good[i].line;
        size_t len = strlen(line);

        while (len > 0 && mmtls_rules_is_space(line[len - 1])) {
            len--;
        }
        for (size_t n = 0; n < len; n++) {
            /* copy, so ASan sees any read past n */
            char *cut = malloc(n + 1);
            int rc;

            assert_non_null(cut);
            memcpy(cut, line, n);
            rc = parse(cut, n, &r, &e);
            free(cut);
            if (rc != MMTLS_E_MALFORMED && rc != MMTLS_DECLINED) {
                fail_msg("case %zu cut at %zu: rc %d (%s)", i, n, rc, e.reason);
            }
        }
    }
}

/* Trailing garbage after a valid rule is refused. */
static void test_trailing(void **state)
{
    static struct mmtls_rule r;
    char buf[4096];

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(good); i++) {
        snprintf(buf, sizeof(buf), "%s x", good[i].line);
        assert_int_equal(parse(buf, strlen(buf), &r, NULL), MMTLS_E_MALFORMED);
        snprintf(buf, sizeof(buf), "%s)", good[i].line);
        assert_int_equal(parse(buf, strlen(buf), &r, NULL), MMTLS_E_MALFORMED);
    }
}

/* Limits: pattern size, item count, option count, arena, list sizes. */
static void test_limits(void **state)
{
    static struct mmtls_rule r;
    static char line[200000];
    struct mmtls_rules_err e;
    size_t n;

    (void)state;
    /* 1024-byte content is fine, 1025 is refused */
    for (int extra = 0; extra < 2; extra++) {
        n = (size_t)snprintf(line, sizeof(line), H "(content:\"");
        memset(line + n, 'a', MMTLS_RULES_MAX_PATTERN + (size_t)extra);
        n += MMTLS_RULES_MAX_PATTERN + (size_t)extra;
        n += (size_t)snprintf(line + n, sizeof(line) - n, "\"; sid:1;)");
        assert_int_equal(parse(line, n, &r, &e), extra ? MMTLS_E_UNSUPPORTED : 0);
        if (extra) {
            assert_string_equal(e.reason, "content too long");
        } else {
            assert_int_equal(r.item[0].pat.len, MMTLS_RULES_MAX_PATTERN);
        }
    }
    /* the same in hex: 1024 bytes as |61 61 ...| */
    n = (size_t)snprintf(line, sizeof(line), H "(content:\"|");
    for (int k = 0; k < MMTLS_RULES_MAX_PATTERN; k++) {
        n += (size_t)snprintf(line + n, sizeof(line) - n, "61 ");
    }
    n += (size_t)snprintf(line + n, sizeof(line) - n, "|\"; sid:1;)");
    assert_int_equal(parse(line, n, &r, &e), 0);
    /* 32 items are fine, 33 are refused */
    for (int extra = 0; extra < 2; extra++) {
        n = (size_t)snprintf(line, sizeof(line), H "(");
        for (int k = 0; k < MMTLS_RULES_MAX_ITEMS + extra; k++) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, "content:\"c%d\"; ", k);
        }
        n += (size_t)snprintf(line + n, sizeof(line) - n, "sid:1;)");
        assert_int_equal(parse(line, n, &r, &e), extra ? MMTLS_E_UNSUPPORTED : 0);
        if (!extra) {
            assert_int_equal(r.nitems, MMTLS_RULES_MAX_ITEMS);
            assert_int_equal(r.fp, 10); /* c10 is the first 3-byte content */
        }
    }
    /* 257 options */
    n = (size_t)snprintf(line, sizeof(line), H "(");
    for (int k = 0; k < MMTLS_RULES_MAX_OPTIONS; k++) {
        n += (size_t)snprintf(line + n, sizeof(line) - n, "reference:url,x; ");
    }
    n += (size_t)snprintf(line + n, sizeof(line) - n, "sid:1;)");
    assert_int_equal(parse(line, n, &r, &e), MMTLS_E_UNSUPPORTED);
    assert_string_equal(e.reason, "too many options");
    /* the arena: a huge msg */
    n = (size_t)snprintf(line, sizeof(line), H "(msg:\"");
    memset(line + n, 'm', MMTLS_RULES_ARENA_MAX);
    n += MMTLS_RULES_ARENA_MAX;
    n += (size_t)snprintf(line + n, sizeof(line) - n, "\"; sid:1;)");
    assert_int_equal(parse(line, n, &r, &e), MMTLS_E_UNSUPPORTED);
    assert_string_equal(e.reason, "rule too large");
    /* 32 ports are fine, 33 are refused */
    for (int extra = 0; extra < 2; extra++) {
        n = (size_t)snprintf(line, sizeof(line), "alert tcp any [");
        for (int k = 0; k < MMTLS_RULES_MAX_PORTS + extra; k++) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%d", k ? "," : "", k + 1);
        }
        n += (size_t)snprintf(line + n, sizeof(line) - n, "] -> any any (sid:1;)");
        assert_int_equal(parse(line, n, &r, &e), extra ? MMTLS_E_UNSUPPORTED : 0);
    }
    /* deeply nested brackets */
    n = (size_t)snprintf(line, sizeof(line), "alert tcp ");
    for (int k = 0; k < 20; k++) {
        line[n++] = '[';
    }
    n += (size_t)snprintf(line + n, sizeof(line) - n, "1.1.1.1");
    for (int k = 0; k < 20; k++) {
        line[n++] = ']';
    }
    n += (size_t)snprintf(line + n, sizeof(line) - n, " any -> any any (sid:1;)");
    assert_int_equal(parse(line, n, &r, &e), MMTLS_E_UNSUPPORTED);
    assert_string_equal(e.reason, "lists nested too deep");
    /* more than MMTLS_RULES_MAX_REFS references: extra ones dropped, rule kept */
    n = (size_t)snprintf(line, sizeof(line), H "(");
    for (int k = 0; k < MMTLS_RULES_MAX_REFS + 3; k++) {
        n += (size_t)snprintf(line + n, sizeof(line) - n, "reference:url,r%d; ", k);
    }
    n += (size_t)snprintf(line + n, sizeof(line) - n, "sid:1;)");
    assert_int_equal(parse(line, n, &r, &e), 0);
    assert_int_equal(r.nrefs, MMTLS_RULES_MAX_REFS);
}

/* Bad arguments and the size of a stored rule. */
static void test_api(void **state)
{
    static struct mmtls_rule r;
    static const char line[] = H "(content:\"abc\"; sid:1;)";

    (void)state;
    assert_int_equal(mmtls_rules_parse(NULL, 1, NULL, &r, NULL), MMTLS_E_INVAL);
    assert_int_equal(mmtls_rules_parse(line, strlen(line), NULL, NULL, NULL), MMTLS_E_INVAL);
    assert_int_equal(mmtls_rules_parse(NULL, 0, NULL, &r, NULL), MMTLS_DECLINED);
    assert_int_equal(mmtls_rules_parse(line, strlen(line), NULL, &r, NULL), 0);
    assert_true(mmtls_rules_rule_size(&r) < offsetof(struct mmtls_rule, arena) + 64);
    assert_string_equal(mmtls_rules_buf_name(MMTLS_RULES_BUF_COUNT), "?");
    assert_string_equal(mmtls_rules_buf_name(MMTLS_RULES_BUF_HTTP_SERVER_BODY), "file_data");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),     cmocka_unit_test(test_fields),
        cmocka_unit_test(test_bad),      cmocka_unit_test(test_check),
        cmocka_unit_test(test_dialect),  cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_trailing), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_api),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
