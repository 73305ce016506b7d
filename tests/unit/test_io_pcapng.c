/* Unit tests for the pcapng reader (draft-ietf-opsawg-pcapng): block framing parser, every
 * block type the reader knows, both byte orders, timestamp resolutions, Decryption Secrets
 * Blocks, truncation at every byte offset and bogus lengths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "io/io.h"

/* ------------------------------------------------------------------------------------------ */
/* mmtls_pcapng_block_parse                                                                    */

struct block_case {
    const char *what;
    uint8_t in[24];
    size_t len;
    bool swapped;
    int rc;
    size_t need;
    uint32_t type, body_len;
};

/* clang-format off */
static const struct block_case block_cases[] = {
    {"empty 12-byte block, LE", {0x04, 0, 0, 0, /* NRB */ 12, 0, 0, 0, 12, 0, 0, 0}, 12, false, 0,
     0, 4, 0},
    {"same, read swapped", {0, 0, 0, 0x04, 0, 0, 0, 12, 0, 0, 0, 12}, 12, true, 0, 0, 4, 0},
    {"4-byte body", {0x06, 0, 0, 0, 16, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd, 16, 0, 0, 0}, 16, false,
     0, 0, 6, 4},
    {"trailing garbage is not part of the block",
     {0x06, 0, 0, 0, 12, 0, 0, 0, 12, 0, 0, 0, 0xff, 0xff}, 14, false, 0, 0, 6, 0},
    {"7 bytes: need the minimum", {0x06, 0, 0, 0, 12, 0, 0}, 7, false, MMTLS_AGAIN, 12, 0, 0},
    {"0 bytes", {0}, 0, false, MMTLS_AGAIN, 12, 0, 0},
    {"length says 16, have 12", {0x06, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0}, 12, false, MMTLS_AGAIN,
     16, 0, 0},
    {"length 13: not a multiple of 4", {0x06, 0, 0, 0, 13, 0, 0, 0}, 8, false, MMTLS_E_MALFORMED,
     0, 0, 0},
    {"length 8: below 12", {0x06, 0, 0, 0, 8, 0, 0, 0}, 8, false, MMTLS_E_MALFORMED, 0, 0, 0},
    {"length 0", {0x06, 0, 0, 0, 0, 0, 0, 0}, 8, false, MMTLS_E_MALFORMED, 0, 0, 0},
    {"length 16 MiB + 4: above the maximum", {0x06, 0, 0, 0, 0x04, 0, 0, 0x01}, 8, false,
     MMTLS_E_MALFORMED, 0, 0, 0},
    {"length 0xfffffffc", {0x06, 0, 0, 0, 0xfc, 0xff, 0xff, 0xff}, 8, false, MMTLS_E_MALFORMED, 0,
     0, 0},
    {"trailing length differs", {0x06, 0, 0, 0, 12, 0, 0, 0, 16, 0, 0, 0}, 12, false,
     MMTLS_E_MALFORMED, 0, 0, 0},
    {"LE block read as BE: 0x0c000000 too big", {0x06, 0, 0, 0, 12, 0, 0, 0, 12, 0, 0, 0}, 12,
     true, MMTLS_E_MALFORMED, 0, 0, 0},
};
/* clang-format on */

static void test_block_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(block_cases); i++) {
        const struct block_case *c = &block_cases[i];
        struct mmtls_pcapng_block b;
        size_t need = 99;
        int rc = mmtls_pcapng_block_parse(c->in, c->len, c->swapped, &b, &need);

        if (rc != c->rc) {
            print_error("case %s: rc %d\n", c->what, rc);
        }
        assert_int_equal(rc, c->rc);
        if (rc == MMTLS_AGAIN) {
            assert_int_equal(need, c->need);
        }
        if (rc == 0) {
            assert_int_equal(b.type, c->type);
            assert_int_equal(b.body.len, c->body_len);
            assert_ptr_equal(b.body.p, c->in + 8);
            assert_int_equal(b.total_len, c->body_len + 12);
            /* every truncation asks for more, never succeeds or fails */
            for (size_t n = 0; n < b.total_len; n++) {
                assert_int_equal(mmtls_pcapng_block_parse(c->in, n, c->swapped, &b, &need),
                                 MMTLS_AGAIN);
                assert_true(need > n);
                assert_true(need <= c->body_len + 12u);
            }
        }
    }
    /* the largest allowed length only asks for more bytes */
    {
        static const uint8_t big[8] = {0x06, 0, 0, 0, 0, 0, 0, 0x01}; /* 16 MiB */
        struct mmtls_pcapng_block b;
        size_t need;

        assert_int_equal(mmtls_pcapng_block_parse(big, 8, false, &b, &need), MMTLS_AGAIN);
        assert_int_equal(need, MMTLS_PCAPNG_MAX_BLOCK);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* A checked-in file: one little-endian section, then one big-endian section                  */

/* clang-format off */
static const uint8_t shb_le[] = {
    0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0x00, 0x00, 0x00, /* SHB, total length 28 */
    0x4d, 0x3c, 0x2b, 0x1a,                         /* byte-order magic 0x1a2b3c4d, LE */
    0x01, 0x00, 0x00, 0x00,                         /* version 1.0 */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* section length -1 (unknown) */
    0x1c, 0x00, 0x00, 0x00,
};
static const uint8_t idb0_le[] = {
    0x01, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, /* IDB, total length 32 */
    0x01, 0x00, 0x00, 0x00,                         /* linktype 1 (Ethernet), reserved */
    0xff, 0xff, 0x00, 0x00,                         /* snaplen 65535 */
    0x09, 0x00, 0x01, 0x00, 0x09, 0x00, 0x00, 0x00, /* if_tsresol = 9 (ns), padded */
    0x00, 0x00, 0x00, 0x00,                         /* opt_endofopt */
    0x20, 0x00, 0x00, 0x00,
};
static const uint8_t idb1_le[] = {
    0x01, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, /* IDB, total length 40 */
    0x65, 0x00, 0x00, 0x00,                         /* linktype 101 (raw IP) */
    0x00, 0x00, 0x00, 0x00,                         /* snaplen 0 (no limit) */
    0x09, 0x00, 0x01, 0x00, 0x94, 0x00, 0x00, 0x00, /* if_tsresol = 0x94: 2^-20 s */
    0x0e, 0x00, 0x08, 0x00,                         /* if_tsoffset, 8 bytes: */
    0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /*   +10 s (no opt_endofopt: tolerated) */
    0x28, 0x00, 0x00, 0x00,
};
static const uint8_t custom_le[] = {
    0xad, 0x0b, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, /* custom block 0x00000bad, length 20 */
    0x7b, 0x00, 0x00, 0x00,                         /* PEN 123 */
    0xde, 0xad, 0xbe, 0xef,                         /* custom data: skipped */
    0x14, 0x00, 0x00, 0x00,
};
/* clang-format on */
/* DSB built by dsb_le() below: type 0x0a, secrets type "TLSK", key log text, padding */
/* clang-format off */
static const uint8_t epb0_le[] = {
    0x06, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, /* EPB, total length 40 */
    0x00, 0x00, 0x00, 0x00,                         /* interface 0 */
    0xfe, 0x9c, 0x97, 0x17, 0x15, 0xcd, 0x85, 0x3d, /* ts 1700000000123456789 ns */
    0x05, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x00, /* caplen 5, origlen 60 */
    0x11, 0x22, 0x33, 0x44, 0x55, 0x00, 0x00, 0x00, /* data, 3 bytes padding */
    0x28, 0x00, 0x00, 0x00,
};
static const uint8_t epb1_le[] = {
    0x06, 0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, /* EPB, total length 36 */
    0x01, 0x00, 0x00, 0x00,                         /* interface 1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x88, 0x3e, /* ts 1000.5 * 2^20: 1000.5 s + 10 */
    0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, /* caplen 4, origlen 4 */
    0x45, 0x00, 0x00, 0x14,                         /* data */
    0x24, 0x00, 0x00, 0x00,
};
static const uint8_t spb_le[] = {
    0x03, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, /* SPB, total length 24 */
    0x06, 0x00, 0x00, 0x00,                         /* origlen 6 (interface 0) */
    0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0x00, 0x00, /* data, 2 bytes padding */
    0x18, 0x00, 0x00, 0x00,
};
static const uint8_t nrb_le[] = {
    0x04, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, /* NRB, length 16: skipped */
    0x00, 0x00, 0x00, 0x00,                         /* nrb_record_end */
    0x10, 0x00, 0x00, 0x00,
};
static const uint8_t isb_le[] = {
    0x05, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, /* ISB, length 24: skipped */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* interface 0, ts high */
    0x00, 0x00, 0x00, 0x00,                         /* ts low */
    0x18, 0x00, 0x00, 0x00,
};
static const uint8_t pb_le[] = {
    0x02, 0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, /* obsolete Packet Block, length 36 */
    0x01, 0x00, 0x00, 0x00,                         /* interface 1 (u16), drops 0 (u16) */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, /* ts 2^20 units = 1 s (+10 s) */
    0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, /* caplen 2, origlen 2 */
    0x60, 0x00, 0x00, 0x00,                         /* data, 2 bytes padding */
    0x24, 0x00, 0x00, 0x00,
};
static const uint8_t shb_be[] = {
    0x0a, 0x0d, 0x0d, 0x0a, 0x00, 0x00, 0x00, 0x1c, /* SHB, total length 28, big-endian */
    0x1a, 0x2b, 0x3c, 0x4d,                         /* byte-order magic */
    0x00, 0x01, 0x00, 0x00,                         /* version 1.0 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, /* section length 32 */
    0x00, 0x00, 0x00, 0x1c,
};
static const uint8_t idb0_be[] = {
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x14, /* IDB, length 20 */
    0x00, 0xe4, 0x00, 0x00,                         /* linktype 228 (IPv4) */
    0x00, 0x00, 0x00, 0x00,                         /* snaplen 0, no options: ts in us */
    0x00, 0x00, 0x00, 0x14,
};
static const uint8_t epb0_be[] = {
    0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x24, /* EPB, length 36 */
    0x00, 0x00, 0x00, 0x00,                         /* interface 0 (of the new section) */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x4c, 0x4b, 0x41, /* ts 5000001 us */
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, /* caplen 1, origlen 1 */
    0x45, 0x00, 0x00, 0x00,                         /* data, padding */
    0x00, 0x00, 0x00, 0x24,
};
/* clang-format on */

static const char dsb_text[] =
    "CLIENT_RANDOM 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20 "
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedee"
    "ef\n";

struct file {
    uint8_t b[8192];
    size_t len;
    size_t bounds[32]; /* offsets where a block ends */
    size_t nbounds;
};

static void put_bytes(struct file *f, const void *p, size_t len)
{
    assert_true(len <= sizeof(f->b) - f->len);
    memcpy(f->b + f->len, p, len);
    f->len += len;
    f->bounds[f->nbounds++] = f->len;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* A little-endian block of the given type around body. */
static void put_block_le(struct file *f, uint32_t type, const void *body, size_t len)
{
    uint8_t blk[1024] = {0};
    size_t total = 12 + ((len + 3) & ~(size_t)3);

    assert_true(total <= sizeof(blk));
    put_le32(blk, type);
    put_le32(blk + 4, (uint32_t)total);
    memcpy(blk + 8, body, len);
    put_le32(blk + total - 4, (uint32_t)total);
    put_bytes(f, blk, total);
}

/* pcapng §4.7: secrets type u32 | secrets length u32 | data, padded */
static void put_dsb_le(struct file *f, uint32_t stype, const char *text, size_t len)
{
    uint8_t body[512];

    assert_true(len + 8 <= sizeof(body));
    put_le32(body, stype);
    put_le32(body + 4, (uint32_t)len);
    memcpy(body + 8, text, len);
    put_block_le(f, 0x0000000a, body, 8 + len);
}

static void build_file(struct file *f)
{
    memset(f, 0, sizeof(*f));
    put_bytes(f, shb_le, sizeof(shb_le));
    put_bytes(f, idb0_le, sizeof(idb0_le));
    put_bytes(f, idb1_le, sizeof(idb1_le));
    put_bytes(f, custom_le, sizeof(custom_le));
    put_dsb_le(f, MMTLS_PCAPNG_SECRETS_TLS, dsb_text, sizeof(dsb_text) - 1);
    put_bytes(f, epb0_le, sizeof(epb0_le));
    put_bytes(f, epb1_le, sizeof(epb1_le));
    put_bytes(f, nrb_le, sizeof(nrb_le));
    put_bytes(f, spb_le, sizeof(spb_le));
    put_bytes(f, isb_le, sizeof(isb_le));
    put_bytes(f, pb_le, sizeof(pb_le));
    put_bytes(f, shb_be, sizeof(shb_be));
    put_bytes(f, idb0_be, sizeof(idb0_be));
    put_bytes(f, epb0_be, sizeof(epb0_be));
}

struct want_pkt {
    uint64_t ts_us;
    int linktype;
    uint32_t ifidx, caplen, origlen;
    uint8_t first;
    size_t end; /* index in bounds[] of the block that carries it */
};

/* clang-format off */
static const struct want_pkt want_pkts[] = {
    {1700000000123456ull, 1, 0, 5, 60, 0x11, 5},  /* EPB if 0, ns resolution */
    {1010500000ull, 101, 1, 4, 4, 0x45, 6},       /* EPB if 1, 2^-20 + 10 s */
    {1010500000ull, 1, 0, 6, 6, 0xa1, 8},         /* SPB: previous timestamp */
    {11000000ull, 101, 1, 2, 2, 0x60, 10},        /* obsolete PB */
    {5000001ull, 228, 0, 1, 1, 0x45, 13},         /* BE section */
};
/* clang-format on */

struct dsb_rec {
    unsigned calls;
    uint32_t type;
    uint8_t data[2048];
    size_t len;
    unsigned pkts_before; /* packets read when the DSB arrived */
    unsigned *pkts;       /* borrowed */
};

static void on_dsb(void *ud, uint32_t type, const uint8_t *p, size_t len)
{
    struct dsb_rec *d = ud;

    d->calls++;
    d->type = type;
    d->len = len;
    memcpy(d->data, p, MMTLS_MIN(len, sizeof(d->data)));
    d->pkts_before = *d->pkts;
}

/* Opens the first n bytes of f through a temporary file. */
static int open_mem(struct mmtls_pcap_reader **r, const uint8_t *b, size_t n, struct dsb_rec *d,
                    char *err, size_t err_cap)
{
    FILE *fp = tmpfile();
    int rc;

    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, n, fp), n);
    rewind(fp);
    rc = mmtls_pcap_open_fp(r, fp, "t.pcapng", d != NULL ? on_dsb : NULL, d, err, err_cap);
    if (rc != 0) {
        fclose(fp);
    }
    return rc;
}

static void test_read_file(void **state)
{
    static struct file f;
    struct mmtls_pcap_reader *r;
    struct mmtls_io_pkt pkt;
    struct dsb_rec d = {0};
    unsigned npkts = 0;
    char err[256] = "";

    (void)state;
    build_file(&f);
    d.pkts = &npkts;
    assert_int_equal(open_mem(&r, f.b, f.len, &d, err, sizeof(err)), 0);
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(want_pkts); i++) {
        const struct want_pkt *w = &want_pkts[i];

        assert_int_equal(mmtls_pcap_next(r, &pkt, err, sizeof(err)), 0);
        npkts++;
        assert_int_equal(pkt.ts_us, w->ts_us);
        assert_int_equal(pkt.linktype, w->linktype);
        assert_int_equal(pkt.ifidx, w->ifidx);
        assert_int_equal(pkt.caplen, w->caplen);
        assert_int_equal(pkt.origlen, w->origlen);
        assert_int_equal(pkt.data[0], w->first);
    }
    assert_int_equal(mmtls_pcap_next(r, &pkt, err, sizeof(err)), MMTLS_DECLINED);
    assert_int_equal(mmtls_pcap_next(r, &pkt, err, sizeof(err)), MMTLS_DECLINED);
    mmtls_pcap_close(r);

    assert_int_equal(d.calls, 1);
    assert_int_equal(d.pkts_before, 0);
    assert_int_equal(d.type, MMTLS_PCAPNG_SECRETS_TLS);
    assert_int_equal(d.len, sizeof(dsb_text) - 1);
    assert_memory_equal(d.data, dsb_text, d.len);

    /* no callback: the DSB is skipped */
    assert_int_equal(open_mem(&r, f.b, f.len, NULL, err, sizeof(err)), 0);
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(want_pkts); i++) {
        assert_int_equal(mmtls_pcap_next(r, &pkt, err, sizeof(err)), 0);
    }
    mmtls_pcap_close(r);
}

/* Cut at every offset: a clean end of file exactly at block boundaries (after the packets of
 * the blocks before it), otherwise a "truncated block at offset <block start>" error. */
static void test_truncation(void **state)
{
    static struct file f;
    char err[256], want[128];

    (void)state;
    build_file(&f);
    for (size_t n = 0; n < f.len; n++) {
        struct mmtls_pcap_reader *r;
        struct mmtls_io_pkt pkt;
        size_t blk = 0, start = 0;
        unsigned npkts = 0, want_n = 0;
        int rc;

        while (blk < f.nbounds && f.bounds[blk] <= n) {
            start = f.bounds[blk++];
        }
        /* blk: index of the block cut (or nbounds), start: its offset */
        rc = open_mem(&r, f.b, n, NULL, err, sizeof(err));
        if (n < sizeof(shb_le)) {
            assert_true(rc < 0);
            continue;
        }
        assert_int_equal(rc, 0);
        while ((rc = mmtls_pcap_next(r, &pkt, err, sizeof(err))) == 0) {
            npkts++;
            assert_true(npkts <= MMTLS_ARRAY_SIZE(want_pkts));
        }
        for (size_t i = 0; i < MMTLS_ARRAY_SIZE(want_pkts); i++) {
            want_n += want_pkts[i].end < blk;
        }
        assert_int_equal(npkts, want_n);
        if (n == start) {
            assert_int_equal(rc, MMTLS_DECLINED);
        } else {
            assert_int_equal(rc, MMTLS_E_MALFORMED);
            snprintf(want, sizeof(want), "t.pcapng: truncated block at offset %zu", start);
            assert_string_equal(err, want);
            /* sticky */
            assert_int_equal(mmtls_pcap_next(r, &pkt, err, sizeof(err)), MMTLS_E_MALFORMED);
        }
        mmtls_pcap_close(r);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Bogus files                                                                                 */

struct bad_case {
    const char *what;
    void (*build)(struct file *f);
    int open_rc;
    int next_rc;
    const char *msg;
};

static void b_len13(struct file *f)
{
    /* NRB header claiming 13 bytes */
    static const uint8_t blk[] = {0x04, 0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0, 13, 0, 0, 0};

    put_bytes(f, blk, sizeof(blk));
}

static void b_len8(struct file *f)
{
    static const uint8_t blk[] = {0x04, 0, 0, 0, 8, 0, 0, 0};

    put_bytes(f, blk, sizeof(blk));
}

static void b_len_huge(struct file *f)
{
    /* 0x7ffffffc bytes claimed, none present: refused before any allocation */
    static const uint8_t blk[] = {0x06, 0, 0, 0, 0xfc, 0xff, 0xff, 0x7f};

    put_bytes(f, blk, sizeof(blk));
}

static void b_trailer(struct file *f)
{
    static const uint8_t blk[] = {0x04, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0};

    put_bytes(f, blk, sizeof(blk));
}

static void b_epb_noif(struct file *f)
{
    put_bytes(f, epb0_le, sizeof(epb0_le));
}

static void b_spb_noif(struct file *f)
{
    put_bytes(f, spb_le, sizeof(spb_le));
}

static void b_epb_if1_new_section(struct file *f)
{
    /* interface 1 was declared in the first section only */
    put_bytes(f, idb0_le, sizeof(idb0_le));
    put_bytes(f, idb1_le, sizeof(idb1_le));
    put_bytes(f, shb_le, sizeof(shb_le));
    put_bytes(f, idb0_le, sizeof(idb0_le));
    put_bytes(f, epb1_le, sizeof(epb1_le));
}

static void b_epb_caplen(struct file *f)
{
    uint8_t epb[sizeof(epb0_le)];

    put_bytes(f, idb0_le, sizeof(idb0_le));
    memcpy(epb, epb0_le, sizeof(epb));
    epb[20] = 9; /* caplen 9 > 8 bytes of room */
    put_bytes(f, epb, sizeof(epb));
}

static void b_epb_cap_gt_orig(struct file *f)
{
    uint8_t epb[sizeof(epb0_le)];

    put_bytes(f, idb0_le, sizeof(idb0_le));
    memcpy(epb, epb0_le, sizeof(epb));
    epb[24] = 4; /* origlen 4 < caplen 5 */
    put_bytes(f, epb, sizeof(epb));
}

static void b_epb_short(struct file *f)
{
    put_bytes(f, idb0_le, sizeof(idb0_le));
    put_block_le(f, 6, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
}

static void b_dsb_len(struct file *f)
{
    uint8_t body[12] = {0x4b, 0x53, 0x4c, 0x54, 5, 0, 0, 0, 'a', 'b', 'c', 'd'};

    put_block_le(f, 0x0a, body, sizeof(body)); /* says 5 bytes, has 4 */
}

static void b_bom(struct file *f)
{
    uint8_t shb[sizeof(shb_le)];

    memcpy(shb, shb_le, sizeof(shb));
    shb[8] = 0x4e;
    put_bytes(f, shb, sizeof(shb));
}

static void b_version(struct file *f)
{
    uint8_t shb[sizeof(shb_le)];

    memcpy(shb, shb_le, sizeof(shb));
    shb[12] = 2; /* version 2.0 */
    put_bytes(f, shb, sizeof(shb));
}

static void b_idb_opt(struct file *f)
{
    /* if_tsresol claiming 8 bytes of value with 4 left */
    static const uint8_t body[] = {1, 0, 0, 0, 0, 0, 0, 0, 0x09, 0, 0x08, 0, 0x06, 0, 0, 0};

    put_block_le(f, 1, body, sizeof(body));
}

static void b_idb_tsresol_len(struct file *f)
{
    static const uint8_t body[] = {1, 0, 0, 0, 0, 0, 0, 0, 0x09, 0, 0x02, 0, 0x06, 0x06, 0, 0};

    put_block_le(f, 1, body, sizeof(body));
}

static void b_idb_short(struct file *f)
{
    put_block_le(f, 1, "\1\0\0\0", 4);
}

static void b_many_ifaces(struct file *f)
{
    static const uint8_t body[] = {1, 0, 0, 0, 0, 0, 0, 0};
    uint8_t blk[20];

    put_le32(blk, 1);
    put_le32(blk + 4, 20);
    memcpy(blk + 8, body, 8);
    put_le32(blk + 16, 20);
    for (int i = 0; i < 257; i++) {
        memcpy(f->b + f->len, blk, 20);
        f->len += 20;
    }
}

/* clang-format off */
static const struct bad_case bad_cases[] = {
    {"length 13", b_len13, 0, MMTLS_E_MALFORMED, "t.pcapng: bad block length 13 at offset 28"},
    {"length 8", b_len8, 0, MMTLS_E_MALFORMED, "t.pcapng: bad block length 8 at offset 28"},
    {"huge length", b_len_huge, 0, MMTLS_E_MALFORMED,
     "t.pcapng: bad block length 2147483644 at offset 28"},
    {"trailer", b_trailer, 0, MMTLS_E_MALFORMED, "t.pcapng: bad block length 16 at offset 28"},
    {"EPB before IDB", b_epb_noif, 0, MMTLS_E_MALFORMED,
     "t.pcapng: packet block at offset 28: unknown interface 0"},
    {"SPB before IDB", b_spb_noif, 0, MMTLS_E_MALFORMED,
     "t.pcapng: packet block at offset 28: unknown interface 0"},
    {"interfaces reset by SHB", b_epb_if1_new_section, 0, MMTLS_E_MALFORMED,
     "t.pcapng: packet block at offset 160: unknown interface 1"},
    {"EPB caplen beyond block", b_epb_caplen, 0, MMTLS_E_MALFORMED,
     "t.pcapng: packet block at offset 60: captured length 9 exceeds the block"},
    {"EPB caplen > origlen", b_epb_cap_gt_orig, 0, MMTLS_E_MALFORMED,
     "t.pcapng: packet block at offset 60: captured length 5 exceeds original length 4"},
    {"EPB short", b_epb_short, 0, MMTLS_E_MALFORMED,
     "t.pcapng: short packet block at offset 60"},
    {"DSB length", b_dsb_len, 0, MMTLS_E_MALFORMED,
     "t.pcapng: decryption secrets block at offset 28: length 5 exceeds the block"},
    {"bad BOM", b_bom, 0, MMTLS_E_MALFORMED,
     "t.pcapng: bad byte-order magic in section header at offset 28"},
    {"version 2", b_version, 0, MMTLS_E_UNSUPPORTED,
     "t.pcapng: unsupported pcapng version 2.0 at offset 28"},
    {"IDB option overruns", b_idb_opt, 0, MMTLS_E_MALFORMED,
     "t.pcapng: bad interface option at offset 28"},
    {"if_tsresol length 2", b_idb_tsresol_len, 0, MMTLS_E_MALFORMED,
     "t.pcapng: bad interface option at offset 28"},
    {"IDB short", b_idb_short, 0, MMTLS_E_MALFORMED,
     "t.pcapng: short interface description block at offset 28"},
    {"257 interfaces", b_many_ifaces, 0, MMTLS_E_LIMIT,
     "t.pcapng: too many interfaces (max 256) at offset 5148"},
};
/* clang-format on */

static void test_bad_files(void **state)
{
    static struct file f;
    char err[256];

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        struct mmtls_pcap_reader *r;
        struct mmtls_io_pkt pkt;
        int rc;

        memset(&f, 0, sizeof(f));
        put_bytes(&f, shb_le, sizeof(shb_le));
        c->build(&f);
        err[0] = '\0';
        rc = open_mem(&r, f.b, f.len, NULL, err, sizeof(err));
        assert_int_equal(rc, c->open_rc);
        if (rc != 0) {
            continue;
        }
        do {
            rc = mmtls_pcap_next(r, &pkt, err, sizeof(err));
        } while (rc == 0);
        if (rc != c->next_rc || strcmp(err, c->msg) != 0) {
            print_error("case %s: rc %d, err \"%s\"\n", c->what, rc, err);
        }
        assert_int_equal(rc, c->next_rc);
        assert_string_equal(err, c->msg);
        mmtls_pcap_close(r);
    }
}

/* pcapng §4.2 if_tsresol and if_tsoffset: timestamp units to microseconds */
struct ts_case {
    uint8_t tsresol;
    int64_t tsoffset_s;
    uint64_t ts;
    uint64_t us;
};

/* clang-format off */
static const struct ts_case ts_cases[] = {
    {6, 0, 123, 123},                          /* default: microseconds */
    {0, 0, 5, 5000000},                        /* seconds */
    {3, 0, 7, 7000},                           /* milliseconds */
    {9, 0, 1999, 1},                           /* nanoseconds, truncated */
    {25, 0, UINT64_MAX, 1},                    /* 10^-25: divisor 10^19 */
    {26, 0, UINT64_MAX, 0},                    /* 10^-26: below any representable us */
    {127, 0, UINT64_MAX, 0},
    {0x80, 0, 3, 3000000},                     /* 2^0 = seconds */
    {0x8a, 0, 1024, 1000000},                  /* 2^-10 */
    {0xa0, 0, 1ull << 32, 1000000},            /* 2^-32 */
    {0xff, 0, UINT64_MAX, 0},                  /* 2^-127 */
    {6, -2, 3000000, 1000000},                 /* negative offset */
    {6, 1, 0, 1000000},
};
/* clang-format on */

static void test_tsresol(void **state)
{
    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(ts_cases); i++) {
        const struct ts_case *c = &ts_cases[i];
        static struct file f;
        struct mmtls_pcap_reader *r;
        struct mmtls_io_pkt pkt;
        uint8_t idb[28] = {1,  0, 0, 0, 0,          0, 0, 0, /* Ethernet, snaplen 0 */
                           9,  0, 1, 0, c->tsresol, 0, 0, 0, /* if_tsresol */
                           14, 0, 8, 0};                     /* if_tsoffset: */
        uint8_t epb[24] = {0};                               /* if 0 */
        char err[256];

        for (int k = 0; k < 8; k++) {
            idb[20 + k] = (uint8_t)((uint64_t)c->tsoffset_s >> (8 * k));
        }
        put_le32(epb + 4, (uint32_t)(c->ts >> 32));
        put_le32(epb + 8, (uint32_t)c->ts);
        put_le32(epb + 12, 4); /* caplen */
        put_le32(epb + 16, 4); /* origlen */
        memset(&f, 0, sizeof(f));
        put_bytes(&f, shb_le, sizeof(shb_le));
        put_block_le(&f, 1, idb, sizeof(idb));
        put_block_le(&f, 6, epb, sizeof(epb));
        assert_int_equal(open_mem(&r, f.b, f.len, NULL, err, sizeof(err)), 0);
        assert_int_equal(mmtls_pcap_next(r, &pkt, err, sizeof(err)), 0);
        if (pkt.ts_us != c->us) {
            print_error("case %zu: %" PRIu64 "\n", i, pkt.ts_us);
        }
        assert_int_equal(pkt.ts_us, c->us);
        mmtls_pcap_close(r);
    }
}

/* A real capture: openssl s_client/s_server TLS 1.3 over loopback, captured by dumpcap, with
 * the client's key log injected by `editcap --inject-secrets tls,keys.log` (tests/unit/data). */
static void test_real_dsb(void **state)
{
    const char *dir = getenv("MMTLS_SRCDIR");
    char path[1024], err[256];
    struct mmtls_pcap_reader *r;
    struct mmtls_io_pkt pkt;
    struct dsb_rec d = {0};
    unsigned npkts = 0;
    int rc;

    (void)state;
    snprintf(path, sizeof(path), "%s/tests/unit/data/tls13_dsb.pcapng", dir != NULL ? dir : ".");
    d.pkts = &npkts;
    rc = mmtls_pcap_open(&r, path, on_dsb, &d, err, sizeof(err));
    if (rc == MMTLS_E_IO && dir == NULL) {
        skip(); /* run outside ctest without MMTLS_SRCDIR */
    }
    assert_int_equal(rc, 0);
    while ((rc = mmtls_pcap_next(r, &pkt, err, sizeof(err))) == 0) {
        npkts++;
        assert_true(pkt.caplen > 0);
        assert_true(pkt.ts_us > 1600000000000000ull);
    }
    assert_int_equal(rc, MMTLS_DECLINED);
    assert_int_equal(npkts, 16);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.pkts_before, 0);
    assert_int_equal(d.type, MMTLS_PCAPNG_SECRETS_TLS);
    assert_int_equal(d.len, 987); /* the key log file as OpenSSL wrote it */
    assert_memory_equal(d.data, "# SSL/TLS secrets log file", 26);
    assert_non_null(memmem(d.data, d.len, "\nCLIENT_HANDSHAKE_TRAFFIC_SECRET ", 33));
    assert_non_null(memmem(d.data, d.len, "\nSERVER_TRAFFIC_SECRET_0 ", 25));
    mmtls_pcap_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_parse), cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_truncation),  cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_tsresol),     cmocka_unit_test(test_real_dsb),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
