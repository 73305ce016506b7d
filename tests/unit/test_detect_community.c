/* The Snort 3 community ruleset through detect: load, compile every loaded rule, report the
 * compile time and database sizes, then run some HTTP traffic through it (skipped when the
 * file is missing; MMTLS_COMMUNITY_RULES overrides the path). */
#include <time.h>
#include <unistd.h>

#include "detect_test_env.h"

#define COMMUNITY_DEFAULT "/work/shared/data/snort3-community-rules/snort3-community.rules"

struct count {
    unsigned n;
    uint32_t last_sid;
};

static int count_cb(void *ctx, const struct mmtls_detect_match *m)
{
    struct count *c = ctx;

    c->n++;
    c->last_sid = m->rule->sid;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_community(void **state)
{
    const char *path = getenv("MMTLS_COMMUNITY_RULES");
    struct mmtls_rules_set *set;
    struct mmtls_rules_stats st;
    struct mmtls_detect *d;
    struct mmtls_detect_info info;
    struct mmtls_detect_worker *w;
    struct mmtls_detect_flow *f;
    struct mmtls_detect_counters c;
    struct mmtls_detect_tuple t = env_tuple();
    struct count cnt = {0, 0};
    char err[256];
    double t0, t1;
    size_t flow_mem_max = 0;
    static const char *const uris[] = {
        "/index.html",       "/cgi-bin/test.cgi?x=../../etc/passwd",
        "/wp-login.php",     "/shell.php?cmd=id",
        "/admin/config.php", "/.git/config",
    };
    static const char body[] =
        "<html><script>eval(unescape('%75%6e'))</script><iframe src=x></iframe></html>";

    (void)state;
    if (path == NULL) {
        path = COMMUNITY_DEFAULT;
    }
    if (access(path, R_OK) != 0) {
        skip();
    }
    assert_int_equal(mmtls_rules_set_new(&set), 0);
    t0 = now_s();
    assert_int_equal(mmtls_rules_load_file(set, path, err, sizeof(err)), 0);
    t1 = now_s();
    mmtls_rules_stats_get(set, &st);
    fprintf(stderr, "community: %llu loaded, %llu skipped, load %.1f ms\n",
            (unsigned long long)st.loaded, (unsigned long long)st.skipped, (t1 - t0) * 1e3);
    assert_true(st.loaded > 1000);

    assert_int_equal(mmtls_detect_new(&d, set, NULL), 0);
    mmtls_detect_info_get(d, &info);
    mmtls_detect_info_print(d, stderr);
    assert_int_equal(info.rules_in, st.loaded);
    assert_true(info.rules > info.rules_in * 8 / 10);
    assert_true(info.db_bytes_total > 0);
    assert_int_equal(info.skipped[MMTLS_DETECT_SKIP_FP_COMPILE], 0);

    /* some HTTP traffic: a few transactions, raw stream too */
    assert_int_equal(mmtls_detect_worker_new(&w, d), 0);
    t0 = now_s();
    for (unsigned k = 0; k < 200; k++) {
        assert_int_equal(mmtls_detect_flow_new(&f, w, &t, count_cb, &cnt), 0);
        mmtls_detect_flow_set_services(f, MMTLS_RULES_SVC_HTTP);
        for (uint64_t tx = 0; tx < MMTLS_ARRAY_SIZE(uris); tx++) {
            const char *u = uris[(k + tx) % MMTLS_ARRAY_SIZE(uris)];
            char req[512];
            int n =
                snprintf(req, sizeof(req),
                         "GET %s HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\n\r\n", u);
            int rc;

            rc = mmtls_detect_stream(f, MMTLS_DETECT_TO_SERVER, (const uint8_t *)req, (size_t)n);
            assert_true(rc >= 0);
            rc =
                mmtls_detect_buf(f, MMTLS_DETECT_TO_SERVER, tx, MMTLS_RULES_BUF_HTTP_METHOD,
                                 MMTLS_DETECT_FIRST | MMTLS_DETECT_LAST, (const uint8_t *)"GET", 3);
            assert_true(rc >= 0);
            rc = mmtls_detect_buf(f, MMTLS_DETECT_TO_SERVER, tx, MMTLS_RULES_BUF_HTTP_URI,
                                  MMTLS_DETECT_FIRST | MMTLS_DETECT_LAST, (const uint8_t *)u,
                                  strlen(u));
            assert_true(rc >= 0);
            rc = mmtls_detect_buf(f, MMTLS_DETECT_TO_SERVER, tx, MMTLS_RULES_BUF_HTTP_HEADER,
                                  MMTLS_DETECT_FIRST | MMTLS_DETECT_LAST,
                                  (const uint8_t *)req + 4 + strlen(u) + 11,
                                  (size_t)n - 4 - strlen(u) - 11);
            assert_true(rc >= 0);
            rc =
                mmtls_detect_buf(f, MMTLS_DETECT_TO_CLIENT, tx, MMTLS_RULES_BUF_HTTP_STAT_CODE,
                                 MMTLS_DETECT_FIRST | MMTLS_DETECT_LAST, (const uint8_t *)"200", 3);
            assert_true(rc >= 0);
            rc = mmtls_detect_buf(f, MMTLS_DETECT_TO_CLIENT, tx, MMTLS_RULES_BUF_HTTP_SERVER_BODY,
                                  MMTLS_DETECT_FIRST, (const uint8_t *)body, sizeof(body) - 1);
            assert_true(rc >= 0);
            rc = mmtls_detect_stream(f, MMTLS_DETECT_TO_CLIENT, (const uint8_t *)body,
                                     sizeof(body) - 1);
            assert_true(rc >= 0);
            flow_mem_max = MMTLS_MAX(flow_mem_max, mmtls_detect_flow_mem(f));
            assert_true(mmtls_detect_tx_end(f, tx) >= 0);
        }
        assert_true(mmtls_detect_flow_end(f) >= 0);
        mmtls_detect_flow_free(f);
    }
    t1 = now_s();
    mmtls_detect_counters_get(w, &c);
    fprintf(stderr,
            "community: 200 flows x 6 tx in %.1f ms: %llu candidates, %llu evaluations, "
            "%llu matches (%u reported, last sid %u), %llu pcre limits, %llu pcre errors, "
            "max flow state %zu bytes\n",
            (t1 - t0) * 1e3, (unsigned long long)c.candidates, (unsigned long long)c.evaluations,
            (unsigned long long)c.matches, cnt.n, cnt.last_sid, (unsigned long long)c.pcre_limits,
            (unsigned long long)c.pcre_errors, flow_mem_max);
    assert_true(c.evaluations > 0);
    assert_int_equal(c.streams_open, 0);
    assert_int_equal(c.retained_bytes, 0);
    mmtls_detect_worker_free(w);
    mmtls_detect_free(d);
    mmtls_rules_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_community),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
