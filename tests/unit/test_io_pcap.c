/* Unit tests for the classic pcap reader: both byte orders, micro- and nanosecond files,
 * truncation at every byte offset, bad record lengths, open errors, stdin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "io/io.h"

/* clang-format off */
static const uint8_t le_us[] = {
    0xd4, 0xc3, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00, /* magic a1b2c3d4 LE, version 2.4 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* thiszone, sigfigs */
    0xff, 0xff, 0x00, 0x00,                         /* snaplen 65535 */
    0x01, 0x00, 0x00, 0x10,                         /* linktype 1, FCS bits 0x1 << 28 */
    /* record at 24 */
    0x00, 0xf1, 0x53, 0x65, 0x40, 0xe2, 0x01, 0x00, /* 1700000000 s, 123456 us */
    0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, /* caplen 4, origlen 4 */
    0xde, 0xad, 0xbe, 0xef,
    /* record at 44 */
    0x01, 0xf1, 0x53, 0x65, 0x3f, 0x42, 0x0f, 0x00, /* 1700000001 s, 999999 us */
    0x03, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x00, /* caplen 3, origlen 60 */
    0x01, 0x02, 0x03,
    /* record at 63: empty packet */
    0x02, 0xf1, 0x53, 0x65, 0x00, 0x00, 0x00, 0x00, /* 1700000002 s */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* caplen 0, origlen 0 */
};
/* clang-format on */
static const size_t le_us_bounds[] = {24, 44, 63, 79};

/* clang-format off */
static const uint8_t be_ns[] = {
    0xa1, 0xb2, 0x3c, 0x4d, 0x00, 0x02, 0x00, 0x04, /* magic a1b23c4d BE (ns), version 2.4 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0xff, 0xff,                         /* snaplen 65535 */
    0x00, 0x00, 0x00, 0x65,                         /* linktype 101 (raw IP) */
    /* record at 24 */
    0x00, 0x00, 0x00, 0x0a, 0x3b, 0x9a, 0xc9, 0xff, /* 10 s, 999999999 ns */
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, /* caplen 2, origlen 2 */
    0x45, 0x00,
};
/* clang-format on */
static const size_t be_ns_bounds[] = {24, 42};

/* clang-format off */
static const uint8_t be_us[] = {
    0xa1, 0xb2, 0xc3, 0xd4, 0x00, 0x02, 0x00, 0x04, /* magic a1b2c3d4 BE, version 2.4 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x04, 0x00, 0x00,                         /* snaplen 262144 */
    0x00, 0x00, 0x00, 0xe4,                         /* linktype 228 (IPv4) */
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, /* 1 s, 2 us */
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x05, 0xdc, /* caplen 1, origlen 1500 */
    0x45,
};
/* clang-format on */
static const size_t be_us_bounds[] = {24, 41};

/* clang-format off */
static const uint8_t le_ns[] = {
    0x4d, 0x3c, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00, /* magic a1b23c4d LE (ns), version 2.4 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,                         /* snaplen 0 */
    0x71, 0x00, 0x00, 0x00,                         /* linktype 113 (Linux SLL) */
    0x05, 0x00, 0x00, 0x00, 0xe8, 0x03, 0x00, 0x00, /* 5 s, 1000 ns */
    0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, /* caplen 1, origlen 1 */
    0x00,
};
/* clang-format on */
static const size_t le_ns_bounds[] = {24, 41};

struct want {
    uint64_t ts_us;
    uint32_t caplen, origlen;
    uint8_t first;
};

struct file_case {
    const char *what;
    const uint8_t *b;
    size_t len;
    const size_t *bounds; /* header end, then each record end */
    size_t nbounds;
    int linktype;
    struct want pkts[3];
};

/* clang-format off */
static const struct file_case files[] = {
    {"LE us",
     le_us,
     sizeof(le_us),
     le_us_bounds,
     4,
     1,
     {{1700000000123456ull, 4, 4, 0xde}, {1700000001999999ull, 3, 60, 0x01}, {1700000002000000ull, 0, 0, 0}}},
    {"BE ns", be_ns, sizeof(be_ns), be_ns_bounds, 2, 101, {{10999999ull, 2, 2, 0x45}}},
    {"BE us", be_us, sizeof(be_us), be_us_bounds, 2, 228, {{1000002ull, 1, 1500, 0x45}}},
    {"LE ns", le_ns, sizeof(le_ns), le_ns_bounds, 2, 113, {{5000001ull, 1, 1, 0x00}}},
};
/* clang-format on */

static int open_mem(struct mmtls_pcap_reader **r, const uint8_t *b, size_t n, char *err,
                    size_t err_cap)
{
    FILE *fp = tmpfile();
    int rc;

    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, n, fp), n);
    rewind(fp);
    rc = mmtls_pcap_open_fp(r, fp, "t.pcap", NULL, NULL, err, err_cap);
    if (rc != 0) {
        fclose(fp);
    }
    return rc;
}

static void test_read(void **state)
{
    char err[256];

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(files); i++) {
        const struct file_case *c = &files[i];
        struct mmtls_pcap_reader *r;
        struct mmtls_io_pkt pkt;

        assert_int_equal(open_mem(&r, c->b, c->len, err, sizeof(err)), 0);
        for (size_t k = 0; k + 1 < c->nbounds; k++) {
            assert_int_equal(mmtls_pcap_next(r, &pkt, err, sizeof(err)), 0);
            assert_int_equal(pkt.ts_us, c->pkts[k].ts_us);
            assert_int_equal(pkt.caplen, c->pkts[k].caplen);
            assert_int_equal(pkt.origlen, c->pkts[k].origlen);
            assert_int_equal(pkt.linktype, c->linktype);
            assert_int_equal(pkt.ifidx, 0);
            if (pkt.caplen > 0) {
                assert_int_equal(pkt.data[0], c->pkts[k].first);
            }
        }
        assert_int_equal(mmtls_pcap_next(r, &pkt, err, sizeof(err)), MMTLS_DECLINED);
        assert_int_equal(mmtls_pcap_next(r, &pkt, err, sizeof(err)), MMTLS_DECLINED);
        mmtls_pcap_close(r);
    }
}

static void test_truncation(void **state)
{
    char err[256], want[128];

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(files); i++) {
        const struct file_case *c = &files[i];

        for (size_t n = 0; n < c->len; n++) {
            struct mmtls_pcap_reader *r;
            struct mmtls_io_pkt pkt;
            size_t done = 0, start = 0;
            unsigned npkts = 0;
            int rc;

            while (done < c->nbounds && c->bounds[done] <= n) {
                start = c->bounds[done++];
            }
            rc = open_mem(&r, c->b, n, err, sizeof(err));
            if (n < 24) {
                assert_int_equal(rc, MMTLS_E_MALFORMED);
                assert_string_equal(err, n == 0  ? "t.pcap: not a pcap or pcapng file (empty)"
                                         : n < 4 ? "t.pcap: not a pcap or pcapng file (too short)"
                                                 : "t.pcap: truncated pcap file header");
                continue;
            }
            assert_int_equal(rc, 0);
            while ((rc = mmtls_pcap_next(r, &pkt, err, sizeof(err))) == 0) {
                npkts++;
            }
            assert_int_equal(npkts, done - 1);
            if (n == start) {
                assert_int_equal(rc, MMTLS_DECLINED);
            } else {
                assert_int_equal(rc, MMTLS_E_MALFORMED);
                snprintf(want, sizeof(want), "t.pcap: truncated packet record at offset %zu",
                         start);
                assert_string_equal(err, want);
            }
            mmtls_pcap_close(r);
        }
    }
}

struct bad_case {
    const char *what;
    size_t off; /* byte patched in a copy of le_us */
    uint8_t val;
    int open_rc, next_rc;
    const char *msg;
};

/* clang-format off */
static const struct bad_case bad_cases[] = {
    {"bad magic", 0, 0xd5, MMTLS_E_UNSUPPORTED, 0, "t.pcap: not a pcap or pcapng file"},
    {"version 3.4", 4, 0x03, MMTLS_E_UNSUPPORTED, 0, "t.pcap: unsupported pcap version 3.4"},
    {"caplen 5 > origlen 4", 32, 0x05, 0, MMTLS_E_MALFORMED,
     "t.pcap: packet record at offset 24: captured length 5 exceeds original length 4"},
    {"caplen 0x01000004 > max", 35, 0x01, 0, MMTLS_E_MALFORMED,
     "t.pcap: packet record at offset 24: captured length 16777220 exceeds 262144"},
    {"caplen 0x04000004, origlen too", 35, 0x04, 0, MMTLS_E_MALFORMED,
     "t.pcap: packet record at offset 24: captured length 67108868 exceeds 262144"},
    {"second caplen 0x80000003", 55, 0x80, 0, MMTLS_E_MALFORMED,
     "t.pcap: packet record at offset 44: captured length 2147483651 exceeds 262144"},
    {"second caplen 4: runs into the third record, which then is cut", 52, 0x04, 0,
     MMTLS_E_MALFORMED, "t.pcap: truncated packet record at offset 64"},
};
/* clang-format on */

static void test_bad(void **state)
{
    uint8_t b[sizeof(le_us)];
    char err[256];

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        struct mmtls_pcap_reader *r;
        struct mmtls_io_pkt pkt;
        int rc;

        memcpy(b, le_us, sizeof(b));
        b[c->off] = c->val;
        rc = open_mem(&r, b, sizeof(b), err, sizeof(err));
        if (rc != c->open_rc) {
            print_error("case %s: open rc %d (%s)\n", c->what, rc, err);
        }
        assert_int_equal(rc, c->open_rc);
        if (rc != 0) {
            assert_string_equal(err, c->msg);
            continue;
        }
        while ((rc = mmtls_pcap_next(r, &pkt, err, sizeof(err))) == 0) {
        }
        if (rc != c->next_rc || strcmp(err, c->msg) != 0) {
            print_error("case %s: rc %d (%s)\n", c->what, rc, err);
        }
        assert_int_equal(rc, c->next_rc);
        assert_string_equal(err, c->msg);
        /* sticky */
        assert_int_equal(mmtls_pcap_next(r, &pkt, err, sizeof(err)), c->next_rc);
        assert_string_equal(err, "t.pcap: reader stopped after an earlier error");
        mmtls_pcap_close(r);
    }
}

/* Records of the maximum size, back to back; one byte more is refused. */
static void test_max_size(void **state)
{
    size_t len = 24 + 2 * (16 + MMTLS_PCAP_MAX_SNAPLEN);
    uint8_t *b = calloc(1, len + 16 + MMTLS_PCAP_MAX_SNAPLEN + 1);
    struct mmtls_pcap_reader *r;
    struct mmtls_io_pkt pkt;
    char err[256];

    (void)state;
    assert_non_null(b);
    memcpy(b, le_us, 24);
    for (int k = 0; k < 3; k++) {
        uint8_t *rec = b + 24 + (size_t)k * (16 + MMTLS_PCAP_MAX_SNAPLEN);
        uint32_t cap = MMTLS_PCAP_MAX_SNAPLEN + (k == 2);

        for (int j = 0; j < 4; j++) { /* caplen and origlen, LE */
            rec[8 + j] = rec[12 + j] = (uint8_t)(cap >> (8 * j));
        }
        rec[16] = (uint8_t)(0xa0 + k);
        rec[16 + MMTLS_PCAP_MAX_SNAPLEN - 1] = 0x5a;
    }
    assert_int_equal(open_mem(&r, b, len + 16 + MMTLS_PCAP_MAX_SNAPLEN + 1, err, sizeof(err)), 0);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(mmtls_pcap_next(r, &pkt, err, sizeof(err)), 0);
        assert_int_equal(pkt.caplen, MMTLS_PCAP_MAX_SNAPLEN);
        assert_int_equal(pkt.data[0], 0xa0 + k);
        assert_int_equal(pkt.data[MMTLS_PCAP_MAX_SNAPLEN - 1], 0x5a);
    }
    assert_int_equal(mmtls_pcap_next(r, &pkt, err, sizeof(err)), MMTLS_E_MALFORMED);
    mmtls_pcap_close(r);
    free(b);
}

static void test_open_path(void **state)
{
    char path[] = "/tmp/test_io_pcap_XXXXXX", err[256];
    struct mmtls_pcap_reader *r = NULL;
    struct mmtls_io_pkt pkt;
    int fd;

    (void)state;
    assert_int_equal(mmtls_pcap_open(&r, "/nonexistent/x.pcap", NULL, NULL, err, sizeof(err)),
                     MMTLS_E_IO);
    assert_string_equal(err, "cannot open /nonexistent/x.pcap: No such file or directory");
    assert_null(r);
    assert_int_equal(mmtls_pcap_open(NULL, "x", NULL, NULL, err, sizeof(err)), MMTLS_E_INVAL);
    mmtls_pcap_close(NULL);

    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, be_ns, sizeof(be_ns)), (ssize_t)sizeof(be_ns));
    close(fd);
    assert_int_equal(mmtls_pcap_open(&r, path, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(mmtls_pcap_next(r, &pkt, err, sizeof(err)), 0);
    assert_int_equal(pkt.ts_us, 10999999ull);
    assert_int_equal(mmtls_pcap_next(r, &pkt, err, sizeof(err)), MMTLS_DECLINED);
    mmtls_pcap_close(r);

    /* "-" is standard input (not closed by the reader) */
    assert_non_null(freopen(path, "rb", stdin));
    assert_int_equal(mmtls_pcap_open(&r, "-", NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(mmtls_pcap_next(r, &pkt, err, sizeof(err)), 0);
    assert_int_equal(pkt.caplen, 2);
    assert_int_equal(mmtls_pcap_next(r, &pkt, err, sizeof(err)), MMTLS_DECLINED);
    mmtls_pcap_close(r);
    assert_int_equal(fileno(stdin), 0); /* still open */

    /* an empty file */
    assert_int_equal(truncate(path, 0), 0);
    assert_int_equal(mmtls_pcap_open(&r, path, NULL, NULL, err, sizeof(err)), MMTLS_E_MALFORMED);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read),      cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_bad),       cmocka_unit_test(test_max_size),
        cmocka_unit_test(test_open_path),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
