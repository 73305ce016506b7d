/* Unit tests for detect: content/pcre semantics, table-driven.  Every case runs on the raw
 * stream (to server) and on http_uri, fed whole, split in two at every offset, and in 1-byte
 * chunks.  The expectation is what Suricata 7 would do with the rule on that buffer; the
 * comment of each case says why.  Cases whose outcome depends on the chunking of a raw stream
 * (negations: a prefix can match where the whole does not, as per packet in Suricata) are
 * checked whole only on the raw stream. */
#include "detect_test_env.h"

struct sem_case {
    const char *opts; /* options between the msg and the sid, Suricata syntax */
    const char *data; /* buffer contents */
    size_t len;       /* 0: strlen(data) */
    bool match;
    bool raw_mono; /* the raw stream outcome does not depend on the chunking */
};

static const struct sem_case sem_cases[] = {
    /* plain content: anywhere in the buffer */
    {"content:\"abc\";", "xxabcxx", 0, true, true},
    {"content:\"abc\";", "xxabxcx", 0, false, true},
    /* case: exact bytes unless nocase */
    {"content:\"ABC\";", "xxabc", 0, false, true},
    {"content:\"ABC\"; nocase;", "xxabc", 0, true, true},
    {"content:\"aBc\"; nocase;", "XXABCXX", 0, true, true},
    /* offset 2 depth 3: the match must lie in [2, 5): "abc" at 2 ends at 5 */
    {"content:\"abc\"; offset:2; depth:3;", "xxabc", 0, true, true},
    {"content:\"abc\"; offset:2; depth:3;", "xxxabc", 0, false, true},
    {"content:\"abc\"; offset:2;", "xabcabc", 0, true, true}, /* second "abc" at 4 */
    {"content:\"abc\"; offset:2;", "xabcx", 0, false, true},
    /* depth counts from 0 without offset: "abc" at 1 ends at 4 <= 4 */
    {"content:\"abc\"; depth:4;", "xabc", 0, true, true},
    {"content:\"abc\"; depth:4;", "xxabc", 0, false, true},
    /* Snort 3 syntax of the same */
    {"content:\"abc\",offset 2,depth 3;", "xxabc", 0, true, true},
    /* distance 1 within 2 after "a" (ends at 1): "b" starts >= 2, ends <= 1 + 1 + 2 = 4 */
    {"content:\"a\"; content:\"b\"; distance:1; within:2;", "a-b", 0, true, true},
    {"content:\"a\"; content:\"b\"; distance:1; within:2;", "ab", 0, false, true},
    {"content:\"a\"; content:\"b\"; distance:1; within:2;", "a--b", 0, true, true},
    {"content:\"a\"; content:\"b\"; distance:1; within:2;", "a---b", 0, false, true},
    /* within alone: "b" must end within 1 byte of the "a" match */
    {"content:\"a\"; content:\"b\"; within:1;", "a-b", 0, false, true},
    /* backtracking: the first "a" is not followed by "b", the second is */
    {"content:\"a\"; content:\"b\"; within:1;", "a-ab", 0, true, true},
    {"content:\"xy\"; content:\"z\"; distance:0; within:1;", "xyqxyqxyz", 0, true, true},
    /* distance 0: anywhere after the previous match */
    {"content:\"GET\"; content:\"evil\"; distance:0;", "GET /x?evil", 0, true, true},
    {"content:\"GET\"; content:\"evil\"; distance:0;", "evil GET /", 0, false, true},
    /* negative distance: "a" may start 3 bytes before the end of "bc" (at 0) */
    {"content:\"bc\"; content:\"a\"; distance:-3; within:1;", "abc", 0, true, true},
    {"content:\"bc\"; content:\"a\"; distance:-2; within:1;", "abc", 0, false, true},
    /* negated relative content: "a" not followed by "b"; Suricata retries the next "a" */
    {"content:\"a\"; content:!\"b\"; distance:0; within:1;", "ab", 0, false, false},
    {"content:\"a\"; content:!\"b\"; distance:0; within:1;", "abac", 0, true, false},
    /* negated content alone (no fast pattern): the rule matches where it is absent */
    {"content:!\"evil\";", "good", 0, true, false},
    {"content:!\"evil\";", "is evil", 0, false, false},
    /* negated content limited by depth: "evil" beyond depth 4 does not count */
    {"content:\"x\"; content:!\"evil\"; depth:4;", "x...evil", 0, true, false},
    {"content:\"x\"; content:!\"evil\"; depth:4;", "evilx", 0, false, false},
    /* offset beyond the data */
    {"content:\"a\"; offset:5;", "aaaaa", 0, false, true},
    {"content:\"a\"; offset:5;", "aaaaaa", 0, true, true},
    /* hex with NUL bytes in the fast pattern */
    {"content:\"|00 01|ab|00|\";",
     "zz\x00\x01"
     "ab\x00zz",
     8, true, true},
    {"content:\"|00 01|ab|00|\";",
     "zz\x00\x01"
     "ab\x01zz",
     8, false, true},
    /* leading NULs are left out of the literal (Vectorscan refuses them); all-NUL: no-fp */
    {"content:\"|00 00|\";",
     "a\x00\x00"
     "b",
     4, true, true},
    {"content:\"|00 00|\";",
     "a\x00"
     "b\x00",
     4, false, true},
    /* fast_pattern part: "bcd" is the literal, the whole content must still match */
    {"content:\"abcdef\"; fast_pattern:1,3;", "--abcdef--", 0, true, true},
    {"content:\"abcdef\"; fast_pattern:1,3;", "--xbcdx--", 0, false, true},
    /* fast_pattern:only: matched anywhere */
    {"content:\"abc\"; fast_pattern:only;", "zzabc", 0, true, true},
    /* explicit fast_pattern on a negated content: no literal, evaluated as a no-fp rule */
    {"content:\"x\"; content:!\"evil\"; fast_pattern;", "x", 0, true, false},
    {"content:\"x\"; content:!\"evil\"; fast_pattern;", "x evil", 0, false, false},
    /* pcre: plain, caseless, anchored ^ */
    {"pcre:\"/a.c/\";", "xabcx", 0, true, true},
    {"pcre:\"/A.C/i\";", "xabcx", 0, true, true},
    {"pcre:\"/^abc/\";", "xabc", 0, false, true},
    {"pcre:\"/^abc/\";", "abcx", 0, true, true},
    /* s: dot matches newline */
    {"pcre:\"/a.b/s\";", "a\nb", 0, true, true},
    {"pcre:\"/a.b/\";", "a\nb", 0, false, true},
    /* m: ^ after a newline */
    {"pcre:\"/^b/m\";", "a\nb", 0, true, true},
    {"pcre:\"/^b/\";", "a\nb", 0, false, true},
    /* E: $ only at the very end (not before a final newline) */
    {"pcre:\"/b$/\";", "ab\n", 0, true, false},
    {"pcre:\"/b$/E\";", "ab\n", 0, false, false},
    /* x: whitespace in the pattern ignored */
    {"pcre:\"/a b c/x\";", "abc", 0, true, true},
    /* A: anchored at the start of the buffer */
    {"pcre:\"/bc/A\";", "abc", 0, false, true},
    {"pcre:\"/bc/A\";", "bcd", 0, true, true},
    /* R: ^ anchors at the end of the previous match (Suricata shifts the buffer) */
    {"content:\"GET\"; pcre:\"/^ \\/x/R\";", "GET /x", 0, true, true},
    {"content:\"GET\"; pcre:\"/^ \\/x/R\";", "GET  /x", 0, false, true},
    {"content:\"GET\"; pcre:\"/\\/x/R\";", "/x GET", 0, false, true},
    /* G (ungreedy) + relative content: greedy a.+b eats the last b and the retry from the
     * next start finds no 'a'; ungreedy stops at the first b and the next b follows */
    {"pcre:\"/a.+b/\"; content:\"b\"; distance:0;", "a1b2b", 0, false, true},
    {"pcre:\"/a.+b/G\"; content:\"b\"; distance:0;", "a1b2b", 0, true, true},
    /* negated pcre */
    {"content:\"ok\"; pcre:!\"/evil/\";", "ok", 0, true, false},
    {"content:\"ok\"; pcre:!\"/evil/\";", "ok evil", 0, false, false},
    /* content then relative pcre then relative content */
    {"content:\"id=\"; pcre:\"/^[0-9]+/R\"; content:\"&\"; within:1;", "x id=12&", 0, true, true},
    {"content:\"id=\"; pcre:\"/^[0-9]+/R\"; content:\"&\"; within:1;", "x id=1a&", 0, false, true},
};

static size_t case_len(const struct sem_case *c)
{
    return c->len != 0 ? c->len : strlen(c->data);
}

static void run_raw(const struct sem_case *c, size_t idx)
{
    char rule[1024];
    struct env e;
    size_t len = case_len(c);
    size_t chunks[2] = {0, 1};

    snprintf(rule, sizeof(rule), "alert tcp any any -> any any (msg:\"t\"; %s sid:1;)", c->opts);
    env_init(&e, rule);
    for (size_t k = 0; k < 2; k++) {
        if (k > 0 && !c->raw_mono) {
            break;
        }
        env_stream(&e, MMTLS_DETECT_TO_SERVER, c->data, len, chunks[k]);
        assert_int_equal(mmtls_detect_flow_end(e.f), 0);
        if ((e.nhit == 1) != c->match) {
            fail_msg("raw case %zu chunk %zu: %s on \"%s\": got \"%s\"", idx, chunks[k], c->opts,
                     c->data, env_sids(&e));
        }
        env_reflow(&e, NULL);
    }
    /* every split point in two chunks */
    for (size_t cut = 1; c->raw_mono && cut < len; cut++) {
        env_stream(&e, MMTLS_DETECT_TO_SERVER, c->data, cut, 0);
        env_stream(&e, MMTLS_DETECT_TO_SERVER, c->data + cut, len - cut, 0);
        assert_int_equal(mmtls_detect_flow_end(e.f), 0);
        if ((e.nhit == 1) != c->match) {
            fail_msg("raw case %zu cut %zu: %s: got \"%s\"", idx, cut, c->opts, env_sids(&e));
        }
        env_reflow(&e, NULL);
    }
    env_fini(&e);
}

static void run_http(const struct sem_case *c, size_t idx)
{
    char rule[1024];
    struct env e;
    size_t len = case_len(c);

    snprintf(rule, sizeof(rule), "alert http any any -> any any (msg:\"t\"; http.uri; %s sid:1;)",
             c->opts);
    env_init(&e, rule);
    for (size_t chunk = 0; chunk <= len; chunk++) {
        if (chunk == 2) {
            chunk = len; /* 0 (whole), 1 (bytes), len */
        }
        env_buf(&e, MMTLS_DETECT_TO_SERVER, 7, MMTLS_RULES_BUF_HTTP_URI, c->data, len, chunk);
        assert_int_equal(mmtls_detect_tx_end(e.f, 7), 0);
        if ((e.nhit == 1) != c->match) {
            fail_msg("http case %zu chunk %zu: %s on \"%s\": got \"%s\"", idx, chunk, c->opts,
                     c->data, env_sids(&e));
        }
        if (c->match) {
            assert_int_equal(e.hit[0].tx, 7);
            assert_int_equal(e.hit[0].dir, MMTLS_DETECT_TO_SERVER);
        }
        env_reflow(&e, NULL);
    }
    /* every split point: HTTP buffers are evaluated whole, so negations too */
    for (size_t cut = 1; cut < len; cut++) {
        assert_int_equal(mmtls_detect_buf(e.f, MMTLS_DETECT_TO_SERVER, 1, MMTLS_RULES_BUF_HTTP_URI,
                                          MMTLS_DETECT_FIRST, (const uint8_t *)c->data, cut),
                         0);
        assert_int_equal(mmtls_detect_buf(e.f, MMTLS_DETECT_TO_SERVER, 1, MMTLS_RULES_BUF_HTTP_URI,
                                          MMTLS_DETECT_LAST, (const uint8_t *)c->data + cut,
                                          len - cut),
                         0);
        if ((e.nhit == 1) != c->match) {
            fail_msg("http case %zu cut %zu: %s: got \"%s\"", idx, cut, c->opts, env_sids(&e));
        }
        env_reflow(&e, NULL);
    }
    env_fini(&e);
}

static void test_semantics(void **state)
{
    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(sem_cases); i++) {
        run_raw(&sem_cases[i], i);
        run_http(&sem_cases[i], i);
    }
}

/* A fast pattern split across chunks (records, segments) and a rule spanning chunks. */
static void test_split(void **state)
{
    static const char rules[] =
        "alert tcp any any -> any any (msg:\"eicar\"; content:\"EICAR-STANDARD-ANTIVIRUS\"; "
        "sid:1;)\n"
        /* fast pattern "evil-payload" in chunk 2, "GET" in chunk 1: re-evaluated later */
        "alert tcp any any -> any any (msg:\"late\"; content:\"GET\"; depth:3; "
        "content:\"evil-payload\"; distance:0; sid:2;)\n"
        /* fast pattern "POST /upload" hits in chunk 1, "secret" arrives after: pending */
        "alert tcp any any -> any any (msg:\"pend\"; content:\"POST /upload\"; depth:12; "
        "content:\"secret\"; distance:0; sid:3;)\n";
    static const char eicar[] = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!";
    struct env e;
    size_t len = strlen(eicar);

    (void)state;
    env_init(&e, rules);
    /* two chunks, at every cut */
    for (size_t cut = 1; cut < len; cut++) {
        env_stream(&e, MMTLS_DETECT_TO_CLIENT, eicar, cut, 0);
        env_stream(&e, MMTLS_DETECT_TO_CLIENT, eicar + cut, len - cut, 0);
        assert_string_equal(env_sids(&e), "1");
        assert_int_equal(e.hit[0].dir, MMTLS_DETECT_TO_CLIENT);
        assert_int_equal(e.hit[0].tx, MMTLS_DETECT_NO_TX);
        env_reflow(&e, NULL);
    }
    /* 1-byte chunks: reported without waiting for the flow end */
    env_stream(&e, MMTLS_DETECT_TO_CLIENT, eicar, len, 1);
    assert_string_equal(env_sids(&e), "1");
    env_reflow(&e, NULL);

    /* "GET" in one record, the fast pattern in a later one */
    env_stream(&e, MMTLS_DETECT_TO_SERVER, "GET /index", 10, 0);
    env_stream(&e, MMTLS_DETECT_TO_SERVER, "?q=evil-payload", 15, 0);
    assert_string_equal(env_sids(&e), "2");
    env_reflow(&e, NULL);

    /* the fast pattern first, the rest in a later record */
    env_stream(&e, MMTLS_DETECT_TO_SERVER, "POST /upload HTTP/1.1\r\n", 23, 0);
    assert_string_equal(env_sids(&e), "");
    /* 300 filler bytes then "secret": the pending rule is re-evaluated */
    for (int i = 0; i < 30; i++) {
        env_stream(&e, MMTLS_DETECT_TO_SERVER, "0123456789", 10, 0);
    }
    env_stream(&e, MMTLS_DETECT_TO_SERVER, "secret", 6, 0);
    assert_string_equal(env_sids(&e), "3");
    env_reflow(&e, NULL);

    /* ... and with few bytes after the hit: found at the flow end at the latest */
    env_stream(&e, MMTLS_DETECT_TO_SERVER, "POST /upload ", 13, 1);
    env_stream(&e, MMTLS_DETECT_TO_SERVER, "secret", 6, 1);
    assert_int_equal(mmtls_detect_flow_end(e.f), 0);
    assert_string_equal(env_sids(&e), "3");
    /* fires once per direction */
    assert_int_equal(mmtls_detect_stream(e.f, MMTLS_DETECT_TO_SERVER, (const uint8_t *)"x", 1),
                     MMTLS_DECLINED);
    env_fini(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_semantics),
        cmocka_unit_test(test_split),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
