/* Unit tests for the rule set: variables, loading (continuations, comments, caps), duplicate
 * sids, the load summary, and the real Snort 3 community ruleset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "rules/rules.h"

#define COMMUNITY_DEFAULT "/work/shared/data/snort3-community-rules/snort3-community.rules"

static void test_vars(void **state)
{
    struct mmtls_rules_set *s;

    (void)state;
    assert_int_equal(mmtls_rules_set_new(&s), 0);
    assert_string_equal(mmtls_rules_var_get(s, "HOME_NET"), "any");
    assert_string_equal(mmtls_rules_var_get(s, "HTTP_PORTS"), "80");
    assert_string_equal(mmtls_rules_var_get(s, "FILE_DATA_PORTS"), "[$HTTP_PORTS,110,143]");
    assert_null(mmtls_rules_var_get(s, "NOPE"));
    assert_int_equal(mmtls_rules_var_set(s, "HOME_NET", "[10.0.0.0/8]"), 0);
    assert_int_equal(mmtls_rules_var_set(s, "MY_PORTS", "[443,8443]"), 0);
    assert_int_equal(mmtls_rules_var_set(s, "bad name", "x"), MMTLS_E_INVAL);
    assert_int_equal(mmtls_rules_var_set(s, "", "x"), MMTLS_E_INVAL);
    assert_string_equal(mmtls_rules_var_get(s, "HOME_NET"), "[10.0.0.0/8]");

    static const char l[] = "alert tcp $EXTERNAL_NET any -> $HTTP_SERVERS $MY_PORTS (sid:5;)";
    assert_int_equal(mmtls_rules_add_line(s, l, strlen(l), "t:1"), 0);
    const struct mmtls_rule *r = mmtls_rules_find(s, 1, 5);
    assert_non_null(r);
    assert_true(r->src.any);
    assert_false(r->dst.any);
    assert_int_equal(r->dst.n, 1);
    assert_int_equal(r->dst.net[0].prefix, 8);
    assert_int_equal(r->dport.n, 2);
    assert_int_equal(r->dport.r[1].lo, 8443);
    /* FILE_DATA_PORTS nests HTTP_PORTS */
    static const char l2[] = "alert tcp any $FILE_DATA_PORTS -> any any (sid:6;)";
    assert_int_equal(mmtls_rules_add_line(s, l2, strlen(l2), "t:2"), 0);
    r = mmtls_rules_find(s, 1, 6);
    assert_non_null(r);
    assert_int_equal(r->sport.n, 3);
    assert_int_equal(r->sport.r[0].lo, 80);
    mmtls_rules_set_free(s);
    mmtls_rules_set_free(NULL);
}

static void test_load_buf(void **state)
{
    static const char text[] =
        "# a comment\n"
        "\n"
        "alert tcp any any -> any any (msg:\"one\"; content:\"a\"; sid:1; rev:1;)\r\n"
        "alert tcp any any -> any any (msg:\"two\"; \\\n"
        "    content:\"b\"; \\\n"
        "    sid:2; rev:1;)\n"
        "alert tcp any any -> any any (msg:\"dup\"; sid:1; rev:2;)\n"
        "alert tcp any any -> any any (msg:\"gid\"; gid:3; sid:1;)\n"
        "alert tcp any any -> any any (flowbits:set,x; sid:10;)\n"
        "alert tcp any any -> any any (flowbits:isset,x; sid:11;)\n"
        "alert tcp any any -> any any (byte_test:1,>,1,0; sid:12;)\n"
        "alert udp any any -> any any (sid:13;)\n"
        "alert tcp any any -> any any (content:\"x\" sid:14;)\n"
        "log tcp any any -> any any (sid:15;)\n"
        "alert tcp any any -> any any (sid:16;)"; /* no final newline */
    struct mmtls_rules_set *s;
    struct mmtls_rules_stats st;
    struct mmtls_rules_reason rs;
    char *out = NULL;
    size_t outlen = 0;
    FILE *f;

    (void)state;
    assert_int_equal(mmtls_rules_set_new(&s), 0);
    assert_int_equal(mmtls_rules_load_buf(s, text, strlen(text), "t.rules"), 0);
    mmtls_rules_stats_get(s, &st);
    assert_int_equal(st.lines, 15);
    assert_int_equal(st.rules, 11);
    assert_int_equal(st.loaded, 4);
    assert_int_equal(st.skipped, 7);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.malformed, 1);
    assert_int_equal(st.unsupported, 5);
    assert_int_equal(mmtls_rules_count(s), 4);
    /* first wins */
    const struct mmtls_rule *r = mmtls_rules_find(s, 1, 1);
    assert_non_null(r);
    assert_int_equal(r->rev, 1);
    assert_non_null(mmtls_rules_find(s, 3, 1));
    assert_null(mmtls_rules_find(s, 1, 10));
    /* the continued rule */
    r = mmtls_rules_find(s, 1, 2);
    assert_non_null(r);
    assert_int_equal(r->nitems, 1);
    assert_ptr_equal(mmtls_rules_get(s, 1), r);
    assert_null(mmtls_rules_get(s, 4));
    /* reasons sorted by count, first sid and place kept */
    assert_int_equal(mmtls_rules_reason_count(s), 6);
    assert_int_equal(mmtls_rules_reason_get(s, 0, &rs), 0);
    assert_string_equal(rs.reason, "option flowbits");
    assert_int_equal(rs.count, 2);
    assert_int_equal(rs.first_sid, 10);
    assert_string_equal(rs.first_where, "t.rules:9");
    assert_int_equal(mmtls_rules_reason_get(s, 6, &rs), MMTLS_E_NOTFOUND);
    uint64_t sum = 0;
    for (size_t i = 0; i < mmtls_rules_reason_count(s); i++) {
        assert_int_equal(mmtls_rules_reason_get(s, i, &rs), 0);
        sum += rs.count;
        if (strcmp(rs.reason, "duplicate sid") == 0) {
            assert_string_equal(rs.first_where, "t.rules:7");
            assert_int_equal(rs.first_sid, 1);
        }
        if (strncmp(rs.reason, "malformed: ", 11) == 0) {
            assert_string_equal(rs.reason, "malformed: text after content string");
            assert_int_equal(rs.first_sid, 14);
        }
    }
    assert_int_equal(sum, st.skipped);
    /* the printed summary */
    f = open_memstream(&out, &outlen);
    assert_non_null(f);
    mmtls_rules_summary_print(s, f);
    fclose(f);
    assert_non_null(strstr(out, "rules: 4 loaded, 7 skipped\n"));
    assert_non_null(strstr(out, "rules: skipped 2: option flowbits (first sid 1:10 at "
                                "t.rules:9)\n"));
    assert_non_null(strstr(out, "rules: skipped 1: protocol udp (first sid 1:13 at "
                                "t.rules:12)\n"));
    assert_non_null(strstr(out, "rules: skipped 1: action log"));
    assert_true(strstr(out, "flowbits") < strstr(out, "byte_test"));
    free(out);
    mmtls_rules_set_free(s);
}

/* A rule over 64 KB (built with continuations) is skipped as malformed, and the next one loads. */
static void test_line_cap(void **state)
{
    size_t cap = 2 * MMTLS_RULES_LINE_MAX, n = 0;
    char *text = malloc(cap);
    struct mmtls_rules_set *s;
    struct mmtls_rules_stats st;

    (void)state;
    assert_non_null(text);
    n += (size_t)snprintf(text, cap, "alert tcp any any -> any any (msg:\"");
    while (n < MMTLS_RULES_LINE_MAX + MMTLS_RULES_LINE_MAX / 4) {
        n += (size_t)snprintf(text + n, cap - n, "xxxxxxxxxxxxxxx\\\n");
    }
    n +=
        (size_t)snprintf(text + n, cap - n, "\"; sid:1;)\nalert tcp any any -> any any (sid:2;)\n");
    assert_int_equal(mmtls_rules_set_new(&s), 0);
    assert_int_equal(mmtls_rules_load_buf(s, text, n, "big"), 0);
    mmtls_rules_stats_get(s, &st);
    assert_int_equal(st.loaded, 1);
    assert_int_equal(st.malformed, 1);
    assert_non_null(mmtls_rules_find(s, 1, 2));
    struct mmtls_rules_reason rs;
    assert_int_equal(mmtls_rules_reason_get(s, 0, &rs), 0);
    assert_string_equal(rs.reason, "malformed: rule longer than 64 KB");
    assert_string_equal(rs.first_where, "big:1");
    mmtls_rules_set_free(s);
    free(text);
}

static void test_load_file_errors(void **state)
{
    struct mmtls_rules_set *s;
    char err[256];

    (void)state;
    assert_int_equal(mmtls_rules_set_new(&s), 0);
    assert_int_equal(mmtls_rules_load_file(s, "/nonexistent/x.rules", err, sizeof(err)),
                     MMTLS_E_IO);
    assert_non_null(strstr(err, "/nonexistent/x.rules: "));
    assert_int_equal(mmtls_rules_load_file(s, "/", err, sizeof(err)), MMTLS_E_IO);
    mmtls_rules_set_free(s);
}

/* The Snort 3 community ruleset (4000+ rules). */
static void test_community(void **state)
{
    const char *path = getenv("MMTLS_COMMUNITY_RULES");
    struct mmtls_rules_set *s;
    struct mmtls_rules_stats st;
    struct mmtls_rules_reason rs;
    char err[256];
    uint64_t sum = 0;

    (void)state;
    if (path == NULL) {
        path = COMMUNITY_DEFAULT;
    }
    if (access(path, R_OK) != 0) {
        skip();
    }
    assert_int_equal(mmtls_rules_set_new(&s), 0);
    assert_int_equal(mmtls_rules_load_file(s, path, err, sizeof(err)), 0);
    mmtls_rules_summary_print(s, stdout);
    mmtls_rules_stats_get(s, &st);
    assert_true(st.rules > 4000);
    assert_true(st.loaded > 1000);
    assert_int_equal(st.loaded + st.skipped, st.rules);
    assert_int_equal(st.loaded, mmtls_rules_count(s));
    /* Snort accepts every rule of this file: none may be malformed here */
    assert_int_equal(st.malformed, 0);
    assert_int_equal(st.duplicates, 0);
    for (size_t i = 0; i < mmtls_rules_reason_count(s); i++) {
        assert_int_equal(mmtls_rules_reason_get(s, i, &rs), 0);
        assert_true(rs.reason[0] != '\0');
        assert_true(rs.count > 0);
        assert_true(rs.first_sid > 0);
        sum += rs.count;
    }
    assert_int_equal(sum, st.skipped);

    /* spot checks against the text of the file */
    const struct mmtls_rule *r = mmtls_rules_find(s, 1, 105); /* Dagger, depth 16 */
    assert_non_null(r);
    assert_int_equal(r->nitems, 1);
    assert_int_equal(r->item[0].depth, 16);
    assert_int_equal(r->item[0].pat.len, 16); /* 1 + 7 + 6 + 2 */
    assert_int_equal(r->flow, MMTLS_RULES_FLOW_TO_CLIENT | MMTLS_RULES_FLOW_ESTABLISHED);
    size_t http = 0, fp = 0;
    for (size_t i = 0; i < mmtls_rules_count(s); i++) {
        r = mmtls_rules_get(s, i);
        assert_true(r->sid > 0);
        assert_true(r->proto_ok);
        if (r->fp >= 0) {
            fp++;
            assert_true((r->item[r->fp].flags & MMTLS_RULES_I_NEGATED) == 0 ||
                        (r->item[r->fp].flags & MMTLS_RULES_I_FAST_PATTERN) != 0);
            assert_int_equal(r->fp_buf, r->item[r->fp].buf);
        }
        if (r->fp_buf != MMTLS_RULES_BUF_PKT) {
            http++;
        }
    }
    printf("rules: %zu with a fast pattern, %zu of them in an HTTP/TLS buffer\n", fp, http);
    assert_true(http > 500);
    mmtls_rules_set_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vars),      cmocka_unit_test(test_load_buf),
        cmocka_unit_test(test_line_cap),  cmocka_unit_test(test_load_file_errors),
        cmocka_unit_test(test_community),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
