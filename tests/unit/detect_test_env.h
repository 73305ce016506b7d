/* Shared harness of the detect unit tests: a rule set loaded from text, compiled, one worker,
 * one flow, and a callback that records the sids it is given. */
#ifndef MMTLS_DETECT_TEST_ENV_H
#define MMTLS_DETECT_TEST_ENV_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "detect/detect.h"

#define ENV_MAX_HITS 256

struct env_hit {
    uint32_t sid;
    uint8_t action;
    unsigned dir;
    uint64_t tx;
    unsigned buf;
};

struct env {
    struct mmtls_rules_set *set;
    struct mmtls_detect *d;
    struct mmtls_detect_worker *w;
    struct mmtls_detect_flow *f;
    struct env_hit hit[ENV_MAX_HITS];
    unsigned nhit;
    int stop_on_sid; /* callback returns 1 for this sid */
};

static int env_cb(void *ctx, const struct mmtls_detect_match *m)
{
    struct env *e = ctx;

    if (e->nhit < ENV_MAX_HITS) {
        struct env_hit *h = &e->hit[e->nhit++];

        h->sid = m->rule->sid;
        h->action = m->rule->action;
        h->dir = m->dir;
        h->tx = m->tx;
        h->buf = m->buf;
    }
    return e->stop_on_sid != 0 && (uint32_t)e->stop_on_sid == m->rule->sid;
}

static inline struct mmtls_detect_tuple env_tuple(void)
{
    /* client 10.0.0.1:40000 -> server 192.168.1.2:80, established */
    struct mmtls_detect_tuple t;

    memset(&t, 0, sizeof(t));
    t.family = 4;
    memcpy(t.cli_addr, "\x0a\x00\x00\x01", 4);
    memcpy(t.srv_addr, "\xc0\xa8\x01\x02", 4);
    t.cli_port = 40000;
    t.srv_port = 80;
    t.established = true;
    return t;
}

/* Loads `rules` (every rule must load and compile unless allow_skip), makes a worker and a
 * flow with tuple t (NULL: env_tuple()). */
static inline void env_init_opts(struct env *e, const char *rules,
                                 const struct mmtls_detect_opts *o,
                                 const struct mmtls_detect_tuple *t, bool allow_skip)
{
    struct mmtls_rules_stats st;
    struct mmtls_detect_info info;
    struct mmtls_detect_tuple dt = env_tuple();

    memset(e, 0, sizeof(*e));
    assert_int_equal(mmtls_rules_set_new(&e->set), 0);
    assert_int_equal(mmtls_rules_load_buf(e->set, rules, strlen(rules), "test"), 0);
    mmtls_rules_stats_get(e->set, &st);
    if (!allow_skip && st.skipped != 0) {
        mmtls_rules_summary_print(e->set, stderr);
        fail_msg("rules skipped: %s", rules);
    }
    assert_int_equal(mmtls_detect_new(&e->d, e->set, o), 0);
    mmtls_detect_info_get(e->d, &info);
    if (!allow_skip && info.rules != info.rules_in) {
        mmtls_detect_info_print(e->d, stderr);
        fail_msg("rules not compiled: %s", rules);
    }
    assert_int_equal(mmtls_detect_worker_new(&e->w, e->d), 0);
    assert_int_equal(mmtls_detect_flow_new(&e->f, e->w, t != NULL ? t : &dt, env_cb, e), 0);
}

static inline void env_init(struct env *e, const char *rules)
{
    env_init_opts(e, rules, NULL, NULL, false);
}

/* A new flow on the same compiled rules (hits cleared). */
static inline void env_reflow(struct env *e, const struct mmtls_detect_tuple *t)
{
    struct mmtls_detect_tuple dt = env_tuple();

    mmtls_detect_flow_free(e->f);
    e->nhit = 0;
    assert_int_equal(mmtls_detect_flow_new(&e->f, e->w, t != NULL ? t : &dt, env_cb, e), 0);
}

static inline void env_fini(struct env *e)
{
    mmtls_detect_flow_free(e->f);
    mmtls_detect_worker_free(e->w);
    mmtls_detect_free(e->d);
    mmtls_rules_set_free(e->set);
}

/* The recorded sids in report order, "1,2,3" ("" when none). */
static inline const char *env_sids(const struct env *e)
{
    static char s[2048];
    size_t n = 0;

    s[0] = '\0';
    for (unsigned i = 0; i < e->nhit && n + 16 < sizeof(s); i++) {
        n += (size_t)snprintf(s + n, sizeof(s) - n, "%s%u", i ? "," : "", e->hit[i].sid);
    }
    return s;
}

/* Feeds p to the raw stream of dir in chunks of `chunk` bytes (0: one chunk). */
static inline void env_stream(struct env *e, unsigned dir, const void *p, size_t len, size_t chunk)
{
    const uint8_t *b = p;

    if (chunk == 0) {
        chunk = len ? len : 1;
    }
    for (size_t off = 0; off < len; off += chunk) {
        int rc = mmtls_detect_stream(e->f, (enum mmtls_detect_dir)dir, b + off,
                                     MMTLS_MIN(chunk, len - off));

        assert_true(rc == 0 || rc == MMTLS_DECLINED);
    }
}

/* Feeds a whole buffer instance of tx in chunks of `chunk` bytes (0: one chunk). */
static inline void env_buf(struct env *e, unsigned dir, uint64_t tx, unsigned buf, const void *p,
                           size_t len, size_t chunk)
{
    const uint8_t *b = p;
    size_t off = 0;

    if (chunk == 0) {
        chunk = len ? len : 1;
    }
    do {
        size_t n = MMTLS_MIN(chunk, len - off);
        unsigned fl =
            (off == 0 ? MMTLS_DETECT_FIRST : 0) | (off + n == len ? MMTLS_DETECT_LAST : 0);
        int rc = mmtls_detect_buf(e->f, (enum mmtls_detect_dir)dir, tx, buf, fl, b + off, n);

        assert_true(rc == 0 || rc == MMTLS_DECLINED);
        off += n;
    } while (off < len);
}

#endif
