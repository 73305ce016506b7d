/* libFuzzer target for detect: a fixed rule set, the input as buffer contents.  Differential:
 * the same data fed whole and in small chunks must fire the same rules on the HTTP buffers
 * and tls.sni (evaluated whole once complete) and, for the plain-content raw rules (whose
 * outcome cannot depend on the chunking while the data fits in half the window), on the raw
 * stream too.  A second engine with a 128-byte window exercises sliding, unchecked.
 *
 * Input: byte 0 seeds the chunk sizes; the rest (at most 4096 bytes) is the data. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "detect/detect.h"

#define MAX_SID 64
#define MAX_DATA 4096

static const char rules_text[] =
    /* raw, plain content: compared (sids 1..19) */
    "alert tcp any any -> any any (msg:\"r1\"; content:\"abc\"; sid:1;)\n"
    "alert tcp any any -> any any (msg:\"r2\"; content:\"GET\"; depth:3; content:\"x\"; "
    "distance:0; sid:2;)\n"
    "alert tcp any any -> any any (msg:\"r3\"; content:\"a\"; content:\"b\"; within:2; "
    "content:\"c\"; distance:1; within:3; sid:3;)\n"
    "alert tcp any any -> any any (msg:\"r4\"; content:\"AB\"; nocase; offset:2; depth:10; "
    "sid:4;)\n"
    "alert tcp any any -> any any (msg:\"r5\"; content:\"|00 00|z\"; content:\"zz\"; "
    "distance:-2; within:3; sid:5;)\n"
    "alert tcp any any -> any any (msg:\"r6\"; content:\"ba\"; fast_pattern:1,1; "
    "content:\"ab\"; distance:3; sid:6;)\n"
    "alert tcp any any -> any any (msg:\"r7\"; flow:to_server; content:\"q\"; "
    "content:\"q\"; distance:0; content:\"q\"; distance:0; sid:7;)\n"
    /* raw, order dependent (negation, pcre): not compared (sids 20..29) */
    "alert tcp any any -> any any (msg:\"n1\"; content:\"a\"; content:!\"b\"; within:1; "
    "sid:20;)\n"
    "alert tcp any any -> any any (msg:\"n2\"; pcre:\"/a[bc]+d$/m\"; sid:21;)\n"
    "alert tcp any any -> any any (msg:\"n3\"; content:!\"zzz\"; sid:22;)\n"
    "drop tcp any any -> any any (msg:\"n4\"; content:\"x\"; pcre:\"/^.{2}y/R\"; sid:23;)\n"
    /* HTTP and tls.sni: compared (sids 30..) */
    "alert http any any -> any any (msg:\"h1\"; http.uri; content:\"abc\"; sid:30;)\n"
    "alert http any any -> any any (msg:\"h2\"; http.uri; content:\"a\"; content:!\"b\"; "
    "distance:0; within:1; sid:31;)\n"
    "alert http any any -> any any (msg:\"h3\"; http.uri; pcre:\"/^a.*z$/s\"; sid:32;)\n"
    "alert http any any -> any any (msg:\"h4\"; http.method; content:\"GE\"; http.uri; "
    "content:\"x\"; sid:33;)\n"
    "alert http any any -> any any (msg:\"h5\"; http.header; content:\"ab\"; nocase; "
    "content:!\"cd\"; sid:34;)\n"
    "alert http any any -> any any (msg:\"h6\"; http.header; pcre:!\"/q{3}/\"; sid:35;)\n"
    "alert tls any any -> any any (msg:\"s1\"; tls.sni; content:\"ab\"; depth:5; sid:36;)\n"
    "alert http any any -> any any (msg:\"h7\"; http.uri; content:\"b\"; "
    "pcre:\"/(a|b)+c/R\"; content:\"c\"; distance:0; sid:37;)\n";

struct fz {
    struct mmtls_rules_set *set;
    struct mmtls_detect *d[2];
    struct mmtls_detect_worker *w[2];
};

static struct fz *fz_get(void)
{
    static struct fz z;
    static int done;

    if (!done) {
        struct mmtls_detect_opts o = {.sz = sizeof(o), .retain_max = 128};

        done = 1;
        if (mmtls_rules_set_new(&z.set) != 0 ||
            mmtls_rules_load_buf(z.set, rules_text, strlen(rules_text), "fuzz") != 0 ||
            mmtls_detect_new(&z.d[0], z.set, NULL) != 0 ||
            mmtls_detect_new(&z.d[1], z.set, &o) != 0 ||
            mmtls_detect_worker_new(&z.w[0], z.d[0]) != 0 ||
            mmtls_detect_worker_new(&z.w[1], z.d[1]) != 0) {
            abort();
        }
    }
    return &z;
}

static int on_match(void *ctx, const struct mmtls_detect_match *m)
{
    uint8_t *fired = ctx;

    if (m->rule->sid < MAX_SID) {
        fired[m->rule->sid] = 1;
    }
    return 0;
}

static uint32_t next(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

static void feed_buf(struct mmtls_detect_flow *f, unsigned dir, unsigned buf, const uint8_t *p,
                     size_t len, uint32_t *seed)
{
    size_t off = 0;

    do {
        size_t c = len - off;

        if (seed != NULL) {
            size_t r = 1 + next(seed) % 16;

            c = c < r ? c : r;
        }
        unsigned fl =
            (off == 0 ? MMTLS_DETECT_FIRST : 0) | (off + c == len ? MMTLS_DETECT_LAST : 0);
        if (mmtls_detect_buf(f, (enum mmtls_detect_dir)dir, 1, buf, fl, p + off, c) < 0) {
            abort();
        }
        off += c;
    } while (off < len);
}

static void run(struct mmtls_detect_worker *w, const uint8_t *p, size_t len, uint32_t *seed,
                uint8_t fired[MAX_SID])
{
    struct mmtls_detect_tuple t;
    struct mmtls_detect_flow *f;
    size_t off;

    memset(&t, 0, sizeof(t));
    t.family = 4;
    t.established = true;
    t.srv_port = 443;
    memset(fired, 0, MAX_SID);
    if (mmtls_detect_flow_new(&f, w, &t, on_match, fired) != 0) {
        abort();
    }
    feed_buf(f, MMTLS_DETECT_TO_SERVER, MMTLS_RULES_BUF_HTTP_METHOD, p, len < 8 ? len : 8, seed);
    feed_buf(f, MMTLS_DETECT_TO_SERVER, MMTLS_RULES_BUF_HTTP_URI, p, len, seed);
    feed_buf(f, MMTLS_DETECT_TO_SERVER, MMTLS_RULES_BUF_HTTP_HEADER, p, len, seed);
    feed_buf(f, MMTLS_DETECT_TO_SERVER, MMTLS_RULES_BUF_TLS_SNI, p, len < 255 ? len : 255, seed);
    if (mmtls_detect_tx_end(f, 1) < 0) {
        abort();
    }
    for (off = 0; off < len;) {
        size_t c = len - off;

        if (seed != NULL) {
            size_t r = 1 + next(seed) % 16;

            c = c < r ? c : r;
        }
        if (mmtls_detect_stream(f, MMTLS_DETECT_TO_SERVER, p + off, c) < 0) {
            abort();
        }
        off += c;
    }
    if (mmtls_detect_flow_end(f) < 0) {
        abort();
    }
    mmtls_detect_flow_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz *z = fz_get();
    uint8_t whole[MAX_SID], chunked[MAX_SID], small[MAX_SID];
    uint32_t seed;

    if (size < 1) {
        return 0;
    }
    seed = data[0];
    data++;
    size--;
    if (size > MAX_DATA) {
        size = MAX_DATA;
    }
    run(z->w[0], data, size, NULL, whole);
    run(z->w[0], data, size, &seed, chunked);
    for (unsigned sid = 1; sid < MAX_SID; sid++) {
        if (sid >= 20 && sid < 30) {
            continue; /* raw, order dependent */
        }
        if (whole[sid] != chunked[sid]) {
            abort();
        }
    }
    seed = (uint32_t)size ^ 0x5a;
    run(z->w[1], data, size, &seed, small);
    return 0;
}
