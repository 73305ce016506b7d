/* Unit tests for detect: transactions and multi-buffer rules, pass and action order, header
 * checks, window and memory limits, tls.sni, random rule sets. */
#include "detect_test_env.h"

#define TS MMTLS_DETECT_TO_SERVER
#define TC MMTLS_DETECT_TO_CLIENT

static void buf_str(struct env *e, unsigned dir, uint64_t tx, unsigned buf, const char *s,
                    size_t chunk)
{
    env_buf(e, dir, tx, buf, s, strlen(s), chunk);
}

/* http_method + http_uri in one rule; buffers complete in any order; interleaved HTTP/2
 * transactions; an absent buffer fails the rule. */
static void test_multi_buffer(void **state)
{
    static const char rules[] =
        /* Suricata: both buffers of the request; fp "/login" */
        "alert http any any -> any any (msg:\"m+u\"; http.method; content:\"POST\"; "
        "http.uri; content:\"/login\"; fast_pattern; sid:1;)\n"
        /* Snort 3: sticky buffers before content, comma modifiers, service */
        "alert tcp any any -> any any (msg:\"s3\"; flow:to_server,established; http_method; "
        "content:\"GET\"; http_uri; content:\"/ADMIN\",nocase; service:http; sid:2;)\n"
        /* header in either direction, fires once per transaction */
        "alert http any any -> any any (msg:\"hdr\"; http.header; content:\"X-Evil\"; sid:3;)\n"
        /* Snort 3 file_data in a to_server rule is the request body */
        "alert tcp any any -> any any (msg:\"body\"; flow:to_server; file_data; "
        "content:\"upload-body\"; service:http; sid:4;)\n"
        /* Snort 3 community style: pkt_data after an HTTP buffer sees the raw request */
        "alert tcp $EXTERNAL_NET any -> $HTTP_SERVERS $HTTP_PORTS (msg:\"pkt\"; "
        "flow:to_server,established; http_uri; content:\"/whois_raw.cgi?\"; pkt_data; "
        "content:\"|0A|\"; service:http; sid:6;)\n"
        /* response: stat code and body */
        "alert http any any -> any any (msg:\"resp\"; http.stat_code; content:\"500\"; "
        "file.data; content:\"stack trace\"; sid:5;)\n";
    struct env e;

    (void)state;
    env_init(&e, rules);
    /* uri first (fp hit, method missing: waits), then the method completes it */
    buf_str(&e, TS, 1, MMTLS_RULES_BUF_HTTP_URI, "/login?u=1", 0);
    assert_string_equal(env_sids(&e), "");
    buf_str(&e, TS, 1, MMTLS_RULES_BUF_HTTP_METHOD, "POST", 1);
    assert_string_equal(env_sids(&e), "1");
    assert_int_equal(e.hit[0].tx, 1);
    assert_int_equal(e.hit[0].buf, MMTLS_RULES_BUF_HTTP_URI);
    assert_int_equal(mmtls_detect_tx_end(e.f, 1), 0);
    e.nhit = 0;
    /* GET /login: no */
    buf_str(&e, TS, 2, MMTLS_RULES_BUF_HTTP_METHOD, "GET", 0);
    buf_str(&e, TS, 2, MMTLS_RULES_BUF_HTTP_URI, "/login", 0);
    assert_int_equal(mmtls_detect_tx_end(e.f, 2), 0);
    assert_string_equal(env_sids(&e), "");
    /* the uri alone, then the transaction ends: the method never came */
    buf_str(&e, TS, 3, MMTLS_RULES_BUF_HTTP_URI, "/login", 0);
    assert_int_equal(mmtls_detect_tx_end(e.f, 3), 0);
    assert_string_equal(env_sids(&e), "");
    /* interleaved transactions 5 and 7 (HTTP/2 streams) */
    assert_int_equal(mmtls_detect_buf(e.f, TS, 5, MMTLS_RULES_BUF_HTTP_URI, MMTLS_DETECT_FIRST,
                                      (const uint8_t *)"/adm", 4),
                     0);
    buf_str(&e, TS, 7, MMTLS_RULES_BUF_HTTP_URI, "/admin", 0);
    buf_str(&e, TS, 7, MMTLS_RULES_BUF_HTTP_METHOD, "POST", 0);
    buf_str(&e, TS, 5, MMTLS_RULES_BUF_HTTP_METHOD, "GET", 0);
    assert_string_equal(env_sids(&e), ""); /* 5's uri is not complete yet */
    assert_int_equal(mmtls_detect_buf(e.f, TS, 5, MMTLS_RULES_BUF_HTTP_URI, MMTLS_DETECT_LAST,
                                      (const uint8_t *)"in/x", 4),
                     0);
    assert_string_equal(env_sids(&e), "2");
    assert_int_equal(e.hit[0].tx, 5);
    assert_int_equal(mmtls_detect_tx_end(e.f, 5), 0);
    assert_int_equal(mmtls_detect_tx_end(e.f, 7), 0);
    e.nhit = 0;
    /* header: request and response of one transaction -> once; another transaction -> again */
    buf_str(&e, TS, 9, MMTLS_RULES_BUF_HTTP_HEADER, "Host: a\r\nX-Evil: 1\r\n", 3);
    buf_str(&e, TC, 9, MMTLS_RULES_BUF_HTTP_HEADER, "X-Evil: 2\r\n", 0);
    assert_int_equal(mmtls_detect_tx_end(e.f, 9), 0);
    buf_str(&e, TC, 10, MMTLS_RULES_BUF_HTTP_HEADER, "X-Evil: 2\r\n", 0);
    assert_int_equal(mmtls_detect_tx_end(e.f, 10), 0);
    assert_string_equal(env_sids(&e), "3,3");
    assert_int_equal(e.hit[0].dir, TS);
    assert_int_equal(e.hit[1].dir, TC);
    e.nhit = 0;
    /* request body through file_data to_server; the same bytes as a response body do not */
    buf_str(&e, TS, 11, MMTLS_RULES_BUF_HTTP_CLIENT_BODY, "..upload-body..", 4);
    buf_str(&e, TC, 12, MMTLS_RULES_BUF_HTTP_SERVER_BODY, "..upload-body..", 4);
    assert_string_equal(env_sids(&e), "4");
    e.nhit = 0;
    /* pkt_data + http_uri: the raw stream (fed first, as the engine does) has the newline */
    mmtls_detect_flow_set_services(e.f, MMTLS_RULES_SVC_HTTP);
    env_stream(&e, TS, "GET /whois_raw.cgi?x HTTP/1.1\r\n\r\n", 33, 0);
    buf_str(&e, TS, 14, MMTLS_RULES_BUF_HTTP_URI, "/whois_raw.cgi?x", 0);
    assert_string_equal(env_sids(&e), "6");
    assert_int_equal(e.hit[0].buf, MMTLS_RULES_BUF_HTTP_URI);
    e.nhit = 0;
    env_reflow(&e, NULL);
    env_stream(&e, TS, "GET /whois_raw.cgi?x HTTP/1.1 ", 30, 0); /* no newline */
    buf_str(&e, TS, 14, MMTLS_RULES_BUF_HTTP_URI, "/whois_raw.cgi?x", 0);
    assert_string_equal(env_sids(&e), "");
    /* response buffers; the body is incomplete until the transaction ends */
    buf_str(&e, TC, 13, MMTLS_RULES_BUF_HTTP_STAT_CODE, "500", 0);
    assert_int_equal(mmtls_detect_buf(e.f, TC, 13, MMTLS_RULES_BUF_HTTP_SERVER_BODY,
                                      MMTLS_DETECT_FIRST, (const uint8_t *)"a stack trace", 13),
                     0);
    assert_string_equal(env_sids(&e), "");
    assert_int_equal(mmtls_detect_flow_end(e.f), 0);
    assert_string_equal(env_sids(&e), "5");
    assert_int_equal(e.hit[0].tx, 13);
    env_fini(&e);
}

/* Suricata 7 pass: a matching pass rule wins in its round, the flow is passed afterwards. */
static void test_pass_and_order(void **state)
{
    static const char rules[] =
        "alert tcp any any -> any any (msg:\"a\"; content:\"attack\"; sid:10;)\n"
        "pass tcp 10.0.0.1 any -> any any (msg:\"p\"; content:\"attack\"; sid:11;)\n"
        "alert tcp any any -> any any (msg:\"later\"; content:\"later\"; sid:12;)\n"
        "alert tcp any any -> any any (msg:\"o-alert\"; content:\"order\"; sid:22;)\n"
        "reject tcp any any -> any any (msg:\"o-reject\"; content:\"order\"; sid:21;)\n"
        "drop tcp any any -> any any (msg:\"o-drop\"; content:\"order\"; sid:20;)\n"
        "alert http any any -> any any (msg:\"uri\"; http.uri; content:\"/x\"; sid:30;)\n"
        "pass http any any -> any any (msg:\"uri-pass\"; http.uri; content:\"/x/ok\"; sid:31;)\n";
    struct mmtls_detect_tuple t = env_tuple();
    struct mmtls_detect_counters c;
    struct env e;

    (void)state;
    env_init(&e, rules);
    env_stream(&e, TS, "an attack", 9, 0);
    assert_string_equal(env_sids(&e), "11"); /* alert 10 suppressed */
    assert_int_equal(e.hit[0].action, MMTLS_RULES_PASS);
    assert_false(mmtls_detect_flow_active(e.f));
    assert_int_equal(mmtls_detect_stream(e.f, TS, (const uint8_t *)"later", 5), MMTLS_DECLINED);
    assert_int_equal(
        mmtls_detect_buf(e.f, TS, 1, MMTLS_RULES_BUF_HTTP_URI, 3, (const uint8_t *)"/x", 2),
        MMTLS_DECLINED);
    assert_string_equal(env_sids(&e), "11");
    mmtls_detect_counters_get(e.w, &c);
    assert_int_equal(c.suppressed, 1);
    assert_int_equal(c.flows_passed, 1);

    /* another client: the pass rule's header does not hold */
    t.cli_addr[3] = 9;
    env_reflow(&e, &t);
    env_stream(&e, TS, "an attack", 9, 0);
    env_stream(&e, TS, "later", 5, 1);
    assert_string_equal(env_sids(&e), "10,12");

    /* action order within one round: drop, reject, alert (file order is the reverse) */
    env_reflow(&e, NULL);
    env_stream(&e, TC, "in order", 8, 0);
    assert_string_equal(env_sids(&e), "20,21,22");

    /* the callback stops the flow after the drop: the rest of the round is not reported */
    env_reflow(&e, NULL);
    e.stop_on_sid = 20;
    env_stream(&e, TC, "in order", 8, 3);
    assert_string_equal(env_sids(&e), "20");
    assert_false(mmtls_detect_flow_active(e.f));
    e.stop_on_sid = 0;

    /* HTTP: the pass rule of the transaction wins over the alert of the same round */
    env_reflow(&e, NULL);
    buf_str(&e, TS, 1, MMTLS_RULES_BUF_HTTP_URI, "/x/ok", 0);
    assert_string_equal(env_sids(&e), "31");
    env_reflow(&e, NULL);
    buf_str(&e, TS, 1, MMTLS_RULES_BUF_HTTP_URI, "/x/bad", 0);
    assert_string_equal(env_sids(&e), "30");
    env_fini(&e);
}

struct hdr_case {
    const char *hdr;  /* action proto src sport dir dst dport */
    const char *opts; /* extra options */
    unsigned dir;
    uint8_t services; /* flow services */
    bool established;
    bool v6;
    bool match;
};

static const struct hdr_case hdr_cases[] = {
    /* client 10.0.0.1:40000 -> server 192.168.1.2:80 (v6: 2001:db8::1 -> 2001:db8:1::2) */
    {"alert tcp 10.0.0.0/8 any -> 192.168.1.0/24 80", "", TS, 0, true, false, true},
    /* to client: the sender is the server, so src must match the server */
    {"alert tcp 10.0.0.0/8 any -> 192.168.1.0/24 80", "", TC, 0, true, false, false},
    /* <>: either orientation */
    {"alert tcp 10.0.0.0/8 any <> 192.168.1.0/24 80", "", TC, 0, true, false, true},
    {"alert tcp 192.168.1.2 80 -> 10.0.0.1 40000", "", TC, 0, true, false, true},
    {"alert tcp any any -> any 443", "", TS, 0, true, false, false},
    {"alert tcp any any -> any ![80,443]", "", TS, 0, true, false, false},
    {"alert tcp any any -> any [443,80]", "", TS, 0, true, false, true},
    {"alert tcp any any -> any 1:1024", "", TS, 0, true, false, true},
    {"alert tcp !10.0.0.1 any -> any any", "", TS, 0, true, false, false},
    {"alert tcp [10.0.0.0/8,!10.0.0.0/30] any -> any any", "", TS, 0, true, false, false},
    {"alert tcp [10.0.0.0/8,!10.0.0.4/30] any -> any any", "", TS, 0, true, false, true},
    /* Snort 3 service rule: ports ignored where the service applies, else not run */
    {"alert tcp any any -> any 443", "service:http;", TS, MMTLS_RULES_SVC_HTTP, true, false, true},
    {"alert tcp any any -> any 443", "service:http;", TS, 0, true, false, false},
    {"alert tcp any any -> any 443", "service:ssl;", TS, MMTLS_RULES_SVC_HTTP, true, false, false},
    /* without a service option the ports count even on an http flow */
    {"alert http any any -> any 443", "", TS, MMTLS_RULES_SVC_HTTP, true, false, false},
    {"alert http any any -> any any", "", TS, MMTLS_RULES_SVC_HTTP, true, false, true},
    {"alert http any any -> any any", "", TS, 0, true, false, false},
    /* flow */
    {"alert tcp any any -> any any", "flow:to_client;", TS, 0, true, false, false},
    {"alert tcp any any -> any any", "flow:to_client;", TC, 0, true, false, true},
    {"alert tcp any any -> any any", "flow:from_client;", TS, 0, true, false, true},
    {"alert tcp any any -> any any", "flow:established;", TS, 0, false, false, false},
    {"alert tcp any any -> any any", "flow:not_established;", TS, 0, true, false, false},
    {"alert tcp any any -> any any", "flow:not_established;", TS, 0, false, false, true},
    {"alert tcp any any -> any any", "flow:stateless;", TS, 0, false, false, true},
    /* IPv6 */
    {"alert tcp [2001:db8::/32] any -> any any", "", TS, 0, true, true, true},
    {"alert tcp [2001:db8::/48] any -> 2001:db8:1::/48 any", "", TS, 0, true, true, true},
    {"alert tcp [2001:db8:2::/48] any -> any any", "", TS, 0, true, true, false},
    {"alert tcp 10.0.0.0/8 any -> any any", "", TS, 0, true, true, false},
};

static void test_header(void **state)
{
    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(hdr_cases); i++) {
        const struct hdr_case *c = &hdr_cases[i];
        struct mmtls_detect_tuple t = env_tuple();
        char rule[512];
        struct env e;

        snprintf(rule, sizeof(rule), "%s (msg:\"h\"; content:\"hdrtest\"; %s sid:1;)", c->hdr,
                 c->opts);
        if (c->v6) {
            t.family = 6;
            memcpy(t.cli_addr, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
            memcpy(t.srv_addr, "\x20\x01\x0d\xb8\0\x01\0\0\0\0\0\0\0\0\0\x02", 16);
        }
        t.established = c->established;
        env_init_opts(&e, rule, NULL, &t, false);
        mmtls_detect_flow_set_services(e.f, c->services);
        env_stream(&e, c->dir, "..hdrtest..", 11, 0);
        assert_int_equal(mmtls_detect_flow_end(e.f), 0);
        if ((e.nhit == 1) != c->match) {
            fail_msg("header case %zu: %s (%s) dir %u: got \"%s\"", i, c->hdr, c->opts, c->dir,
                     env_sids(&e));
        }
        env_fini(&e);
    }
}

/* n filler bytes ('.') on the raw stream of dir, in chunks of `chunk` (0: 4096). */
static void filler_stream(struct env *e, unsigned dir, size_t n, size_t chunk)
{
    static uint8_t filler[4096];

    memset(filler, '.', sizeof(filler));
    while (n > 0) {
        size_t c = MMTLS_MIN(n, chunk ? chunk : sizeof(filler));

        env_stream(e, dir, filler, c, 0);
        n -= c;
    }
}

/* Raw window and HTTP inspection depth with a small retain_max; memcap. */
static void test_limits(void **state)
{
    static const char rules[] =
        "alert tcp any any -> any any (msg:\"start\"; content:\"GET\"; depth:3; sid:1;)\n"
        "alert tcp any any -> any any (msg:\"far\"; content:\"late-token\"; sid:2;)\n"
        "alert tcp any any -> any any (msg:\"rel\"; content:\"AAAA\"; content:\"BBBB\"; "
        "distance:500; sid:3;)\n"
        "alert http any any -> any any (msg:\"deep\"; http.uri; content:\"needle\"; sid:4;)\n"
        "alert tcp any any -> any any (msg:\"near\"; content:\"CCCC\"; content:\"DDDD\"; "
        "distance:50; sid:5;)\n";
    struct mmtls_detect_opts o = {.sz = sizeof(o), .retain_max = 256, .memcap = 4096};
    struct mmtls_detect_counters c;
    uint8_t uri[1000];
    struct env e;

    (void)state;
    env_init_opts(&e, rules, &o, NULL, false);
    /* offset/depth are stream offsets: "GET" at offset 1000 is not at the start */
    filler_stream(&e, TS, 1000, 0);
    env_stream(&e, TS, "GET late-tok", 12, 5);
    filler_stream(&e, TS, 100000, 0); /* 100 KB: the window slides */
    env_stream(&e, TS, "en", 2, 0);
    assert_int_equal(mmtls_detect_flow_end(e.f), 0);
    /* "late-tok" + 100 KB + "en" is not "late-token": nothing fires */
    assert_string_equal(env_sids(&e), "");
    env_reflow(&e, NULL);
    env_stream(&e, TS, "GET x", 5, 1);
    filler_stream(&e, TS, 100000, 0);
    env_stream(&e, TS, "late-", 5, 1);
    env_stream(&e, TS, "token", 5, 0);
    /* AAAA, 600 bytes, BBBB: the first slid out of the 256-byte window (documented limit) */
    env_stream(&e, TS, "AAAA", 4, 0);
    filler_stream(&e, TS, 600, 7);
    env_stream(&e, TS, "BBBB", 4, 0);
    /* CCCC, 60 bytes, DDDD: inside the window */
    env_stream(&e, TS, "CCCC", 4, 0);
    filler_stream(&e, TS, 60, 0);
    env_stream(&e, TS, "DDDD", 4, 0);
    assert_int_equal(mmtls_detect_flow_end(e.f), 0);
    assert_string_equal(env_sids(&e), "1,2,5");
    mmtls_detect_counters_get(e.w, &c);
    assert_true(c.retained_peak <= 256 + 256); /* one window (+ the previous flow's, freed) */

    /* HTTP: only the first retain_max bytes of an instance are inspected */
    env_reflow(&e, NULL);
    memset(uri, 'u', sizeof(uri));
    memcpy(uri + 100, "needle", 6);
    env_buf(&e, TS, 1, MMTLS_RULES_BUF_HTTP_URI, uri, sizeof(uri), 64);
    memset(uri, 'u', sizeof(uri));
    memcpy(uri + 900, "needle", 6);
    env_buf(&e, TS, 2, MMTLS_RULES_BUF_HTTP_URI, uri, sizeof(uri), 0);
    assert_int_equal(mmtls_detect_flow_end(e.f), 0);
    assert_string_equal(env_sids(&e), "4");
    assert_int_equal(e.hit[0].tx, 1);
    mmtls_detect_counters_get(e.w, &c);
    assert_int_equal(c.truncated_bytes, 2 * (1000 - 256));

    /* memcap 4096: 32 open transactions of 256 bytes cannot all be retained */
    env_reflow(&e, NULL);
    for (uint64_t tx = 0; tx < 32; tx++) {
        assert_int_equal(
            mmtls_detect_buf(e.f, TS, tx, MMTLS_RULES_BUF_HTTP_URI, MMTLS_DETECT_FIRST, uri, 256),
            0);
    }
    mmtls_detect_counters_get(e.w, &c);
    assert_true(c.memcap_refused > 0);
    assert_true(c.retained_bytes <= 4096);
    assert_true(mmtls_detect_flow_mem(e.f) > 4096);
    assert_int_equal(mmtls_detect_flow_end(e.f), 0);
    env_reflow(&e, NULL);
    mmtls_detect_counters_get(e.w, &c);
    assert_int_equal(c.retained_bytes, 0);
    assert_int_equal(c.streams_open, 0);
    assert_int_equal(c.stream_bytes, 0);
    env_fini(&e);
}

/* tls.sni, transaction eviction, late chunks, invalid arguments. */
static void test_sni_tx(void **state)
{
    static const char rules[] =
        "alert tls any any -> any any (msg:\"sni\"; tls.sni; content:\"evil.example\"; nocase; "
        "sid:40;)\n"
        "alert tcp any any -> any any (msg:\"sni3\"; ssl_state:client_hello; sid:41;)\n"
        "alert http any any -> any any (msg:\"a\"; http.uri; content:\"/a\"; sid:42;)\n"
        /* no fast pattern: a pcre on the method */
        "alert http any any -> any any (msg:\"pc\"; http.method; pcre:\"/^DEL/\"; sid:43;)\n";
    struct mmtls_detect_opts o = {.sz = sizeof(o), .max_tx = 2};
    struct mmtls_detect_counters c;
    struct env e;

    (void)state;
    env_init_opts(&e, rules, &o, NULL, true); /* ssl_state is not supported: skipped */
    buf_str(&e, TS, 0, MMTLS_RULES_BUF_TLS_SNI, "WWW.EVIL.EXAMPLE", 0);
    assert_string_equal(env_sids(&e), "40");
    assert_int_equal(e.hit[0].buf, MMTLS_RULES_BUF_TLS_SNI);
    assert_int_equal(e.hit[0].tx, MMTLS_DETECT_NO_TX);
    buf_str(&e, TS, 0, MMTLS_RULES_BUF_TLS_SNI, "evil.example", 0); /* late: ignored */
    assert_string_equal(env_sids(&e), "40");
    e.nhit = 0;
    /* three open transactions with max_tx 2: the oldest is ended (and evaluated) */
    assert_int_equal(mmtls_detect_buf(e.f, TS, 1, MMTLS_RULES_BUF_HTTP_URI, MMTLS_DETECT_FIRST,
                                      (const uint8_t *)"/a", 2),
                     0);
    assert_int_equal(mmtls_detect_buf(e.f, TS, 2, MMTLS_RULES_BUF_HTTP_URI, MMTLS_DETECT_FIRST,
                                      (const uint8_t *)"/b", 2),
                     0);
    assert_int_equal(mmtls_detect_buf(e.f, TS, 3, MMTLS_RULES_BUF_HTTP_METHOD,
                                      MMTLS_DETECT_FIRST | MMTLS_DETECT_LAST,
                                      (const uint8_t *)"DELETE", 6),
                     0);
    assert_string_equal(env_sids(&e), "42,43");
    assert_int_equal(e.hit[0].tx, 1);
    assert_int_equal(e.hit[1].tx, 3);
    mmtls_detect_counters_get(e.w, &c);
    assert_int_equal(c.tx_evicted, 1);
    /* invalid arguments */
    assert_int_equal(mmtls_detect_buf(e.f, TS, 1, MMTLS_RULES_BUF_PKT, 0, NULL, 0), MMTLS_E_INVAL);
    assert_int_equal(mmtls_detect_buf(e.f, TS, 1, MMTLS_RULES_BUF_COUNT, 0, NULL, 0),
                     MMTLS_E_INVAL);
    assert_int_equal(mmtls_detect_stream(e.f, (enum mmtls_detect_dir)2, NULL, 0), MMTLS_E_INVAL);
    assert_int_equal(mmtls_detect_tx_end(e.f, 12345), 0);
    assert_int_equal(mmtls_detect_flow_end(e.f), 0);
    assert_int_equal(mmtls_detect_flow_end(e.f), MMTLS_DECLINED);
    env_fini(&e);
}

/* Compile-time classification: what is skipped and why. */
static void test_compile_skips(void **state)
{
    static const char rules[] =
        "alert tcp any any -> any any (msg:\"mixed\"; content:\"a\"; tls.sni; content:\"b\"; "
        "sid:1;)\n"
        "alert http any any -> any any (msg:\"dirs\"; http.uri; content:\"a\"; "
        "http.stat_code; content:\"200\"; sid:2;)\n"
        "alert http any any -> any any (msg:\"flowdir\"; flow:to_client; http.uri; "
        "content:\"a\"; sid:3;)\n"
        "alert tls any any -> any any (msg:\"svc\"; http.uri; content:\"a\"; sid:4;)\n"
        "alert tcp any any -> any any (msg:\"pcre\"; pcre:\"/a(/\"; sid:5;)\n"
        "alert tcp any any -> any any (msg:\"ok\"; content:\"fine\"; sid:6;)\n";
    struct mmtls_detect_info info;
    struct env e;

    (void)state;
    env_init_opts(&e, rules, NULL, NULL, true);
    mmtls_detect_info_get(e.d, &info);
    assert_int_equal(info.rules_in, 6);
    assert_int_equal(info.rules, 1);
    assert_int_equal(info.skipped[MMTLS_DETECT_SKIP_MIXED], 1);
    assert_int_equal(info.skipped[MMTLS_DETECT_SKIP_HTTP_DIRS], 1);
    assert_int_equal(info.skipped[MMTLS_DETECT_SKIP_FLOW_DIR], 1);
    assert_int_equal(info.skipped[MMTLS_DETECT_SKIP_SVC], 1);
    assert_int_equal(info.skipped[MMTLS_DETECT_SKIP_PCRE], 1);
    assert_int_equal(info.first_skipped_sid[MMTLS_DETECT_SKIP_PCRE], 5);
    assert_int_equal(info.db[MMTLS_DETECT_DB_RAW_TS].patterns, 1);
    assert_int_equal(info.db[MMTLS_DETECT_DB_RAW_TC].patterns, 1);
    assert_true(info.db[MMTLS_DETECT_DB_RAW_TS].stream_bytes > 0);
    assert_string_equal(mmtls_detect_db_name(MMTLS_DETECT_DB_RAW_TS), "raw.to_server");
    assert_string_equal(mmtls_detect_db_name(MMTLS_RULES_BUF_TLS_SNI + 1), "tls.sni");
    assert_string_equal(mmtls_detect_db_name(99), "?");
    assert_string_equal(mmtls_detect_skip_name(99), "?");
    env_fini(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* Random rules                                                                                */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static const char *const rnd_bufs[] = {
    "",         "http.uri; ", "http.method; ", "http.header; ", "http.cookie; ", "file.data; ",
    "tls.sni; "};
static const unsigned rnd_buf_ids[] = {
    MMTLS_RULES_BUF_PKT,         MMTLS_RULES_BUF_HTTP_URI,    MMTLS_RULES_BUF_HTTP_METHOD,
    MMTLS_RULES_BUF_HTTP_HEADER, MMTLS_RULES_BUF_HTTP_COOKIE, MMTLS_RULES_BUF_HTTP_SERVER_BODY,
    MMTLS_RULES_BUF_TLS_SNI};
static const char *const rnd_pcres[] = {"/a[bc]+d/", "/^x/m", "/[0-9]{2,}/", "/e.f/s",
                                        "/(?:ab|ba)c/i"};

/* Alphabet small enough that random contents occur in random data. */
static char rnd_ch(void)
{
    return "abcdefx0|"[rnd(8)];
}

static void rnd_rule(char *out, size_t cap, unsigned sid, unsigned buf)
{
    size_t n = (size_t)snprintf(out, cap, "%s tcp any any -> any any (msg:\"r\"; %s",
                                rnd(10) == 0   ? "drop"
                                : rnd(20) == 0 ? "pass"
                                               : "alert",
                                rnd_bufs[buf]);
    unsigned items = 1 + rnd(3);

    for (unsigned k = 0; k < items; k++) {
        if (rnd(6) == 0) {
            n += (size_t)snprintf(out + n, cap - n, "pcre:\"%s%s\"; ", rnd_pcres[rnd(5)],
                                  k > 0 && rnd(2) ? "R" : "");
            continue;
        }
        n += (size_t)snprintf(out + n, cap - n, "content:%s\"", rnd(8) == 0 ? "!" : "");
        for (unsigned j = 1 + rnd(4); j > 0; j--) {
            char ch = rnd_ch();

            n += (size_t)snprintf(out + n, cap - n, ch == '|' ? "|00|" : "%c", ch);
        }
        n += (size_t)snprintf(out + n, cap - n, "\"; ");
        if (rnd(4) == 0) {
            n += (size_t)snprintf(out + n, cap - n, "nocase; ");
        }
        if (k > 0 && rnd(2)) {
            n += (size_t)snprintf(out + n, cap - n, "distance:%d; ", (int)rnd(6) - 2);
            if (rnd(2)) {
                n += (size_t)snprintf(out + n, cap - n, "within:%u; ", 4 + rnd(8));
            }
        } else if (rnd(3) == 0) {
            n += (size_t)snprintf(out + n, cap - n, "offset:%u; depth:%u; ", rnd(4), 4 + rnd(20));
        }
    }
    snprintf(out + n, cap - n, "sid:%u;)\n", sid);
}

/* Fired sids as a bitmap, through a callback that keeps them all. */
struct sidset {
    uint8_t bit[1001];
};

static int sidset_cb(void *ctx, const struct mmtls_detect_match *m)
{
    struct sidset *s = ctx;

    if (m->rule->sid <= 1000) {
        s->bit[m->rule->sid] = 1;
    }
    return 0;
}

static void test_random_rules(void **state)
{
    static char text[1000 * 400];
    size_t n = 0;
    struct mmtls_rules_set *set;
    struct mmtls_detect *d;
    struct mmtls_detect_worker *w;
    struct mmtls_detect_info info;
    struct mmtls_detect_tuple t = env_tuple();
    struct mmtls_rules_stats st;
    uint8_t data[4096];
    unsigned fired_total = 0;
    unsigned buf_of_sid[1001];

    (void)state;
    for (unsigned sid = 1; sid <= 1000; sid++) {
        unsigned b = rnd(MMTLS_ARRAY_SIZE(rnd_bufs));

        buf_of_sid[sid] = rnd_buf_ids[b];
        rnd_rule(text + n, sizeof(text) - n, sid, b);
        n += strlen(text + n);
    }
    assert_int_equal(mmtls_rules_set_new(&set), 0);
    assert_int_equal(mmtls_rules_load_buf(set, text, n, "random"), 0);
    mmtls_rules_stats_get(set, &st);
    assert_true(st.loaded > 900);
    assert_int_equal(mmtls_detect_new(&d, set, NULL), 0);
    mmtls_detect_info_get(d, &info);
    mmtls_detect_info_print(d, stderr);
    assert_int_equal(info.rules_in, st.loaded);
    assert_true(info.rules > 800);
    assert_int_equal(mmtls_detect_worker_new(&w, d), 0);

    /* The same data, as HTTP buffers and tls.sni, whole and in 1..7-byte chunks: HTTP
     * instances are evaluated whole, so the fired sets must be equal. */
    for (unsigned round = 0; round < 20; round++) {
        struct sidset whole, chunked;
        size_t len = 1 + rnd(600);

        for (size_t i = 0; i < len; i++) {
            data[i] = (uint8_t)(rnd(10) == 0 ? 0 : rnd_ch());
        }
        for (int pass = 0; pass < 2; pass++) {
            struct sidset *s = pass ? &chunked : &whole;
            struct mmtls_detect_flow *f;

            memset(s, 0, sizeof(*s));
            assert_int_equal(mmtls_detect_flow_new(&f, w, &t, sidset_cb, s), 0);
            mmtls_detect_flow_set_services(f, MMTLS_RULES_SVC_HTTP);
            for (unsigned b = 1; b < MMTLS_RULES_BUF_COUNT; b++) {
                unsigned dir = b == MMTLS_RULES_BUF_HTTP_SERVER_BODY ? TC : TS;
                size_t off = 0;

                do {
                    size_t r = 1 + rnd(7); /* not inside MMTLS_MIN: evaluated twice */
                    size_t c = pass ? MMTLS_MIN(len - off, r) : len;
                    unsigned fl = (off == 0 ? MMTLS_DETECT_FIRST : 0) |
                                  (off + c == len ? MMTLS_DETECT_LAST : 0);
                    int rc =
                        mmtls_detect_buf(f, (enum mmtls_detect_dir)dir, 1, b, fl, data + off, c);

                    assert_true(rc == 0 || rc == MMTLS_DECLINED);
                    off += c;
                } while (off < len);
            }
            assert_true(mmtls_detect_tx_end(f, 1) >= 0);
            /* and the raw stream, to exercise it (not compared: chunking matters there) */
            assert_true(mmtls_detect_stream(f, TS, data, len) >= 0);
            assert_true(mmtls_detect_flow_end(f) >= 0);
            mmtls_detect_flow_free(f);
        }
        for (unsigned sid = 1; sid <= 1000; sid++) {
            if (buf_of_sid[sid] != MMTLS_RULES_BUF_PKT && whole.bit[sid] != chunked.bit[sid]) {
                char key[32];
                const char *at, *bol;

                snprintf(key, sizeof(key), "sid:%u;", sid);
                at = strstr(text, key);
                for (bol = at; bol > text && bol[-1] != '\n'; bol--) {
                }
                fail_msg("round %u sid %u: whole %d chunked %d: %.*s", round, sid, whole.bit[sid],
                         chunked.bit[sid], (int)(at - bol + 12), bol);
            }
            fired_total += whole.bit[sid];
        }
    }
    assert_true(fired_total > 0);
    mmtls_detect_worker_free(w);
    mmtls_detect_free(d);
    mmtls_rules_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multi_buffer), cmocka_unit_test(test_pass_and_order),
        cmocka_unit_test(test_header),       cmocka_unit_test(test_limits),
        cmocka_unit_test(test_sni_tx),       cmocka_unit_test(test_compile_skips),
        cmocka_unit_test(test_random_rules),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
