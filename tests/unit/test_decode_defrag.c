/* Unit tests for the IP defragmenter: every arrival order, duplicates, identical and
 * conflicting overlaps, timeout, eviction, size limits, memory cap, bad fragments, IPv6, and
 * dead datagrams: given up (timeout, conflict, malformed) yet refusing their later fragments.
 * Every rebuilt datagram is decoded again with both checksums verified.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "decode/decode.h"

/* ------------------------------------------------------------------------------------------ */
/* Fragments made by scapy's fragment()/fragment6() (checksums real): a 40-byte TCP segment   */
/* (1234 > 443, payload "ABCDEFGHIJKLMNOPQRST") over IPv4 in 16+16+8 bytes, and a 52-byte one */
/* (payload "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345") over IPv6 in 24+24+4 bytes.                   */

/* f_v4_frag0 (36 bytes) */
static const char f_v4_frag0[] =
    /* IPv4 ihl 5 len 36 id 16962 flags MF off 0 ttl 64 proto 6 csum 0x0490 10.0.0.1 > 10.0.0.2 */
    "4500002442422000400604900a0000010a000002"
    /* fragment payload (16 bytes) */
    "04d201bb0000000100000002501803e8";

/* f_v4_frag1 (36 bytes) */
static const char f_v4_frag1[] =
    /* IPv4 ihl 5 len 36 id 16962 flags MF off 2 ttl 64 proto 6 csum 0x048e 10.0.0.1 > 10.0.0.2 */
    "45000024424220024006048e0a0000010a000002"
    /* fragment payload (16 bytes) */
    "aa4d00004142434445464748494a4b4c";

/* f_v4_frag2 (28 bytes) */
static const char f_v4_frag2[] =
    /* IPv4 ihl 5 len 28 id 16962 flags - off 4 ttl 64 proto 6 csum 0x2494 10.0.0.1 > 10.0.0.2 */
    "4500001c42420004400624940a0000010a000002"
    /* fragment payload (8 bytes) */
    "4d4e4f5051525354";

/* f_v6_frag0 (80 bytes) */
static const char f_v6_frag0[] =
    /* IPv6 plen 40 nh 60 hlim 64 2001:db8::1 > 2001:db8::2 */
    "6000000000283c4020010db800000000000000000000000120010db8000000000000000000000002"
    /* Destination Options nh 44 len 0 (8 bytes) */
    "2c00010400000000"
    /* Fragment nh 6 offset 0 M 1 id 0xabcdef01 */
    "06000001abcdef01"
    /* fragment payload (24 bytes) */
    "04d201bb0000000100000002501803e8c62c000041424344";

/* f_v6_frag1 (80 bytes) */
static const char f_v6_frag1[] =
    /* IPv6 plen 40 nh 60 hlim 64 2001:db8::1 > 2001:db8::2 */
    "6000000000283c4020010db800000000000000000000000120010db8000000000000000000000002"
    /* Destination Options nh 44 len 0 (8 bytes) */
    "2c00010400000000"
    /* Fragment nh 6 offset 3 M 1 id 0xabcdef01 */
    "06000019abcdef01"
    /* fragment payload (24 bytes) */
    "45464748494a4b4c4d4e4f505152535455565758595a3031";

/* f_v6_frag2 (60 bytes) */
static const char f_v6_frag2[] =
    /* IPv6 plen 20 nh 60 hlim 64 2001:db8::1 > 2001:db8::2 */
    "6000000000143c4020010db800000000000000000000000120010db8000000000000000000000002"
    /* Destination Options nh 44 len 0 (8 bytes) */
    "2c00010400000000"
    /* Fragment nh 6 offset 6 M 0 id 0xabcdef01 */
    "06000030abcdef01"
    /* fragment payload (4 bytes) */
    "32333435";

static const char *const v4_frags[] = {f_v4_frag0, f_v4_frag1, f_v4_frag2};
static const char *const v6_frags[] = {f_v6_frag0, f_v6_frag1, f_v6_frag2};

/* The whole TCP segments carried by the fragments above. */
static const char seg4_hex[] =
    /* TCP 1234 > 443 seq 1 ack 2 off 5 flags PA win 1000 csum 0xaa4d */
    "04d201bb0000000100000002501803e8aa4d0000"
    "4142434445464748494a4b4c4d4e4f5051525354";
static const char seg6_hex[] =
    /* TCP 1234 > 443 seq 1 ack 2 off 5 flags PA win 1000 csum 0xc62c */
    "04d201bb0000000100000002501803e8c62c0000"
    "4142434445464748494a4b4c4d4e4f505152535455565758595a303132333435";

static const struct mmtls_decode_opts verify = {true, true};

static uint8_t *load(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    uint8_t *b = malloc(n + 1);

    assert_non_null(b);
    assert_int_equal(mmtls_hex_decode(hex, n * 2, b, n), 0);
    *len = n;
    return b;
}

static struct mmtls_defrag *defrag_make_policy(uint32_t max_dgrams, uint32_t max_frags,
                                               uint32_t timeout_ms, size_t memcap, bool fail_open)
{
    struct mmtls_defrag_opts o = {max_dgrams, max_frags, timeout_ms, memcap, fail_open};
    struct mmtls_defrag *d = NULL;

    assert_int_equal(mmtls_defrag_new(&d, &o), 0);
    assert_non_null(d);
    return d;
}

/* Fail closed (the default policy). */
static struct mmtls_defrag *defrag_make(uint32_t max_dgrams, uint32_t max_frags,
                                        uint32_t timeout_ms, size_t memcap)
{
    return defrag_make_policy(max_dgrams, max_frags, timeout_ms, memcap, false);
}

/* Decodes a hex fragment and feeds it. */
static int feed_hex(struct mmtls_defrag *d, const char *hex, uint64_t now_us, const uint8_t **out,
                    size_t *out_len)
{
    struct mmtls_pkt pkt;
    size_t len;
    uint8_t *b = load(hex, &len);
    int rc;

    assert_int_equal(mmtls_decode_frame(MMTLS_LINK_RAW, b, len, &verify, &pkt),
                     MMTLS_DEC_IP_FRAGMENT);
    rc = mmtls_defrag_feed(d, &pkt, now_us, out, out_len);
    memset(b, 0xdd, len); /* the defragmenter must have copied what it keeps */
    free(b);
    return rc;
}

/* Builds an IPv4 fragment 10.0.0.1 > 10.0.0.2 with header length ihl*4 (options: NOPs),
 * carrying p[0, len) at byte offset off, decodes it and feeds it. */
static int feed_v4(struct mmtls_defrag *d, uint8_t ihl, uint8_t proto, uint16_t id, uint32_t off,
                   const uint8_t *p, size_t len, bool mf, uint64_t now_us, const uint8_t **out,
                   size_t *out_len)
{
    size_t hlen = (size_t)ihl * 4;
    uint8_t *b = malloc(hlen + len);
    uint16_t frag = (uint16_t)((mf ? 0x2000 : 0) | (off / 8));
    struct mmtls_pkt pkt;
    int rc;

    assert_non_null(b);
    memset(b, 0x01, hlen);
    b[0] = (uint8_t)(0x40 | ihl);
    b[1] = 0;
    mmtls_put_be16(b + 2, (uint16_t)(hlen + len));
    mmtls_put_be16(b + 4, id);
    mmtls_put_be16(b + 6, frag);
    b[8] = 64;
    b[9] = proto;
    b[10] = b[11] = 0; /* checksum not checked below */
    memcpy(b + 12, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
    memcpy(b + hlen, p, len);
    assert_int_equal(mmtls_decode_frame(MMTLS_LINK_RAW, b, hlen + len, NULL, &pkt),
                     MMTLS_DEC_IP_FRAGMENT);
    rc = mmtls_defrag_feed(d, &pkt, now_us, out, out_len);
    free(b);
    return rc;
}

/* Builds an IPv6 fragment 2001:db8::1 > 2001:db8::2 with one Destination Options header before
 * the Fragment header (nh 6), carrying p[0, len) at offset off, decodes it and feeds it. */
static int feed_v6(struct mmtls_defrag *d, uint32_t id, uint32_t off, const uint8_t *p, size_t len,
                   bool mf, uint64_t now_us, const uint8_t **out, size_t *out_len)
{
    static const uint8_t hdr[56] = {
        0x60, 0,    0,    0,    0, 0, 60, 64,                         /* plen set below, nh 60 */
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,  0,  0, 0, 0, 0, 0, 0, 0, 1, /* src */
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,  0,  0, 0, 0, 0, 0, 0, 0, 2, /* dst */
        44,   0,    1,    4,    0, 0, 0,  0,                          /* Dest Opts nh 44, PadN */
        6,    0,    0,    0,    0, 0, 0,  0,                          /* Fragment nh 6 */
    };
    uint8_t *b = malloc(sizeof(hdr) + len);
    struct mmtls_pkt pkt;
    int rc;

    assert_non_null(b);
    memcpy(b, hdr, sizeof(hdr));
    mmtls_put_be16(b + 4, (uint16_t)(16 + len));
    mmtls_put_be16(b + 50, (uint16_t)(off | (mf ? 1 : 0)));
    b[52] = (uint8_t)(id >> 24);
    b[53] = (uint8_t)(id >> 16);
    b[54] = (uint8_t)(id >> 8);
    b[55] = (uint8_t)id;
    memcpy(b + sizeof(hdr), p, len);
    assert_int_equal(mmtls_decode_frame(MMTLS_LINK_RAW, b, sizeof(hdr) + len, NULL, &pkt),
                     MMTLS_DEC_IP_FRAGMENT);
    rc = mmtls_defrag_feed(d, &pkt, now_us, out, out_len);
    free(b);
    return rc;
}

/* Decodes a rebuilt datagram with checksums verified and checks the TCP payload. */
static void check_dgram(const uint8_t *dg, size_t len, const char *payload)
{
    struct mmtls_pkt pkt;
    uint8_t *copy = malloc(len);

    assert_non_null(dg);
    assert_non_null(copy);
    memcpy(copy, dg, len); /* exact-size copy: ASan checks the decoder stays inside */
    assert_int_equal(mmtls_decode_ip(copy, len, &verify, &pkt), MMTLS_DEC_OK);
    assert_int_equal(pkt.l3_len, len);
    assert_int_equal(pkt.sport, 1234);
    assert_int_equal(pkt.dport, 443);
    assert_int_equal(pkt.payload_len, strlen(payload));
    assert_memory_equal(pkt.payload, payload, strlen(payload));
    free(copy);
}

static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};

/* ------------------------------------------------------------------------------------------ */

static void test_v4_all_orders(void **state)
{
    (void)state;
    for (int p = 0; p < 6; p++) {
        struct mmtls_defrag *d = defrag_make(0, 0, 0, 0);
        const uint8_t *dg;
        size_t len;

        assert_int_equal(feed_hex(d, v4_frags[perms[p][0]], 1, &dg, &len), MMTLS_AGAIN);
        assert_null(dg);
        assert_int_equal(feed_hex(d, v4_frags[perms[p][1]], 2, &dg, &len), MMTLS_AGAIN);
        assert_int_equal(feed_hex(d, v4_frags[perms[p][2]], 3, &dg, &len), 0);
        assert_int_equal(len, 60);
        /* RFC 791: total length fixed, MF and offset cleared, id and addresses kept */
        assert_int_equal(mmtls_be16(dg + 2), 60);
        assert_int_equal(mmtls_be16(dg + 4), 0x4242);
        assert_int_equal(mmtls_be16(dg + 6), 0);
        check_dgram(dg, len, "ABCDEFGHIJKLMNOPQRST");
        assert_int_equal(mmtls_defrag_stats(d)->fragments, 3);
        assert_int_equal(mmtls_defrag_stats(d)->reassembled, 1);
        /* the datagram is gone: the same fragment starts a new one */
        assert_int_equal(feed_hex(d, v4_frags[0], 4, &dg, &len), MMTLS_AGAIN);
        mmtls_defrag_free(d);
    }
}

static void test_v6_all_orders(void **state)
{
    (void)state;
    for (int p = 0; p < 6; p++) {
        struct mmtls_defrag *d = defrag_make(4, 4, 1000, 4096);
        const uint8_t *dg;
        size_t len;

        assert_int_equal(feed_hex(d, v6_frags[perms[p][0]], 1, &dg, &len), MMTLS_AGAIN);
        assert_int_equal(feed_hex(d, v6_frags[perms[p][1]], 2, &dg, &len), MMTLS_AGAIN);
        assert_int_equal(feed_hex(d, v6_frags[perms[p][2]], 3, &dg, &len), 0);
        /* RFC 8200 §4.5: unfragmentable part (40 + 8), then the 52 reassembled bytes; the
         * Fragment header is gone and the Destination Options header now names TCP. */
        assert_int_equal(len, 100);
        assert_int_equal(mmtls_be16(dg + 4), 60);
        assert_int_equal(dg[6], 60);
        assert_int_equal(dg[40], 6);
        check_dgram(dg, len, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
        assert_int_equal(mmtls_defrag_stats(d)->reassembled, 1);
        mmtls_defrag_free(d);
    }
}

/* IPv6 with the Fragment header straight after the fixed header. */
static void test_v6_no_ext(void **state)
{
    size_t slen;
    uint8_t *seg = load(seg6_hex, &slen);
    uint8_t b[48 + 32];
    struct mmtls_defrag *d = defrag_make(0, 0, 0, 0);
    struct mmtls_pkt pkt;
    const uint8_t *dg;
    size_t len;

    (void)state;
    for (int i = 0; i < 2; i++) {
        static const uint8_t h[48] = {
            0x60, 0, 0, 0, 0, 0, 44, 64,   0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0,
            0,    0, 0, 0, 0, 0, 1,  0x20, 0x01, 0x0d, 0xb8, 0,    0, 0, 0, 0, 0,
            0,    0, 0, 0, 0, 2, 6,  0,    0,    0,    0,    0,    0, 9, /* Fragment nh 6, id 9 */
        };
        size_t off = i ? 32 : 0, n = i ? slen - 32 : 32;

        memcpy(b, h, 48);
        mmtls_put_be16(b + 4, (uint16_t)(8 + n));
        mmtls_put_be16(b + 42, (uint16_t)(off | (i ? 0 : 1)));
        memcpy(b + 48, seg + off, n);
        assert_int_equal(mmtls_decode_frame(MMTLS_LINK_RAW, b, 48 + n, &verify, &pkt),
                         MMTLS_DEC_IP_FRAGMENT);
        assert_int_equal(mmtls_defrag_feed(d, &pkt, 0, &dg, &len), i ? 0 : MMTLS_AGAIN);
    }
    assert_int_equal(len, 40 + slen);
    assert_int_equal(dg[6], 6);
    check_dgram(dg, len, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
    mmtls_defrag_free(d);
    free(seg);
}

static void test_duplicates(void **state)
{
    struct mmtls_defrag *d = defrag_make(0, 0, 0, 0);
    const uint8_t *dg;
    size_t len;

    (void)state;
    assert_int_equal(feed_hex(d, v4_frags[0], 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_hex(d, v4_frags[0], 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_hex(d, v4_frags[2], 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_hex(d, v4_frags[2], 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_hex(d, v4_frags[0], 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_hex(d, v4_frags[1], 0, &dg, &len), 0);
    check_dgram(dg, len, "ABCDEFGHIJKLMNOPQRST");
    assert_int_equal(mmtls_defrag_stats(d)->overlaps, 0);
    assert_int_equal(mmtls_defrag_stats(d)->fragments, 6);
    mmtls_defrag_free(d);
}

static void test_overlap_identical(void **state)
{
    size_t slen;
    uint8_t *seg = load(seg4_hex, &slen);
    struct mmtls_defrag *d = defrag_make(0, 0, 0, 0);
    const uint8_t *dg;
    size_t len;

    (void)state;
    /* [0,16) [8,32) [16,40): each overlaps its neighbour with the same bytes */
    assert_int_equal(feed_v4(d, 5, 6, 7, 0, seg, 16, true, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 7, 8, seg + 8, 24, true, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 7, 16, seg + 16, 24, false, 0, &dg, &len), 0);
    check_dgram(dg, len, "ABCDEFGHIJKLMNOPQRST");

    /* [0,24), then [8,16) wholly covered, then [24,40) */
    assert_int_equal(feed_v4(d, 5, 6, 8, 0, seg, 24, true, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 8, 8, seg + 8, 8, true, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 8, 24, seg + 24, 16, false, 0, &dg, &len), 0);
    check_dgram(dg, len, "ABCDEFGHIJKLMNOPQRST");

    /* last first, then one covering everything before it and overlapping it */
    assert_int_equal(feed_v4(d, 5, 6, 9, 24, seg + 24, 16, false, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 9, 0, seg, 32, true, 0, &dg, &len), 0);
    check_dgram(dg, len, "ABCDEFGHIJKLMNOPQRST");
    assert_int_equal(mmtls_defrag_stats(d)->overlaps, 0);
    assert_int_equal(mmtls_defrag_stats(d)->reassembled, 3);
    mmtls_defrag_free(d);
    free(seg);
}

static void test_overlap_different(void **state)
{
    size_t slen;
    uint8_t *seg = load(seg4_hex, &slen), evil[24];
    struct mmtls_defrag *d = defrag_make(0, 0, 0, 0);
    const uint8_t *dg;
    size_t len;

    (void)state;
    memcpy(evil, seg + 8, 24);
    evil[12] ^= 0x20; /* 'E' -> 'e' at offset 20 */
    evil[20] ^= 0x20; /* 'M' -> 'm' at offset 28 */
    assert_int_equal(feed_v4(d, 5, 6, 7, 0, seg, 24, true, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 7, 8, evil, 24, true, 0, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->overlaps, 1);
    /* the whole datagram was given up, and is dead: the rest, which a receiver holding the
     * first fragment could complete, is refused */
    assert_int_equal(feed_v4(d, 5, 6, 7, 24, seg + 24, 16, false, 0, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(feed_v4(d, 5, 6, 7, 0, seg, 24, true, 0, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->dead_drops, 2);
    assert_int_equal(mmtls_defrag_stats(d)->reassembled, 0);
    assert_int_equal(mmtls_defrag_stats(d)->mem_used, 0); /* a dead datagram holds nothing */

    /* a differing overlap with the last fragment, arriving after it */
    assert_int_equal(feed_v4(d, 5, 6, 8, 24, seg + 24, 16, false, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 8, 8, evil, 24, true, 0, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->overlaps, 2);
    assert_int_equal(mmtls_defrag_stats(d)->killed, 2);
    /* dead for one timeout (30 s by default) from the conflict, then forgotten */
    mmtls_defrag_expire(d, 29999999);
    assert_int_equal(mmtls_defrag_stats(d)->datagrams, 2);
    mmtls_defrag_expire(d, 30000000);
    assert_int_equal(mmtls_defrag_stats(d)->datagrams, 0);
    assert_int_equal(feed_v4(d, 5, 6, 7, 0, seg, 24, true, 30000001, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 7, 24, seg + 24, 16, false, 30000002, &dg, &len), 0);
    check_dgram(dg, len, "ABCDEFGHIJKLMNOPQRST");
    mmtls_defrag_free(d);
    free(seg);

    /* IPv6 (RFC 5722) */
    seg = load(seg6_hex, &slen);
    d = defrag_make(0, 0, 0, 0);
    memcpy(evil, seg + 16, 24);
    evil[0] ^= 1;
    assert_int_equal(feed_v6(d, 1, 0, seg, 24, true, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v6(d, 1, 16, evil, 24, true, 0, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->overlaps, 1);
    /* the same, with identical bytes, is fine */
    assert_int_equal(feed_v6(d, 2, 0, seg, 24, true, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v6(d, 2, 16, seg + 16, 24, true, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v6(d, 2, 40, seg + 40, slen - 40, false, 0, &dg, &len), 0);
    check_dgram(dg, len, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
    mmtls_defrag_free(d);
    free(seg);
}

static void test_timeout(void **state)
{
    struct mmtls_defrag *d = defrag_make(0, 0, 1000, 0);
    const uint8_t *dg;
    size_t len;

    (void)state;
    assert_int_equal(feed_hex(d, v4_frags[0], 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_hex(d, v4_frags[1], 999999, &dg, &len), MMTLS_AGAIN);
    /* one second after the first fragment the datagram has expired: it is dead, and the last
     * fragment, which a receiver with a longer timeout would complete it with, is refused */
    assert_int_equal(feed_hex(d, v4_frags[2], 1000000, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->timeouts, 1);
    assert_int_equal(mmtls_defrag_stats(d)->dead_drops, 1);
    assert_int_equal(mmtls_defrag_stats(d)->mem_used, 0);
    /* dead for one more timeout, from its expiry */
    mmtls_defrag_expire(d, 1999999);
    assert_int_equal(feed_hex(d, v4_frags[0], 1999999, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->datagrams, 1);
    mmtls_defrag_expire(d, 2000000);
    assert_int_equal(mmtls_defrag_stats(d)->datagrams, 0);
    assert_int_equal(mmtls_defrag_stats(d)->timeouts, 1);
    /* a new datagram with that key, expired by mmtls_defrag_expire alone */
    assert_int_equal(feed_hex(d, v4_frags[0], 2000001, &dg, &len), MMTLS_AGAIN);
    mmtls_defrag_expire(d, 3000001);
    assert_int_equal(mmtls_defrag_stats(d)->timeouts, 2);
    mmtls_defrag_expire(d, 4000001);
    assert_int_equal(mmtls_defrag_stats(d)->datagrams, 0);
    /* a clock that goes backwards expires nothing */
    assert_int_equal(feed_hex(d, v4_frags[0], 5000000, &dg, &len), MMTLS_AGAIN);
    mmtls_defrag_expire(d, 10);
    assert_int_equal(mmtls_defrag_stats(d)->timeouts, 2);
    /* within the timeout the datagram completes */
    assert_int_equal(feed_hex(d, v4_frags[1], 5000100, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_hex(d, v4_frags[2], 5999999, &dg, &len), 0);
    check_dgram(dg, len, "ABCDEFGHIJKLMNOPQRST");
    mmtls_defrag_expire(NULL, 0);
    mmtls_defrag_free(d);
}

static void test_eviction(void **state)
{
    size_t slen;
    uint8_t *seg = load(seg4_hex, &slen);
    struct mmtls_defrag *d = defrag_make_policy(2, 0, 0, 0, true);
    const uint8_t *dg;
    size_t len;

    (void)state;
    for (uint16_t id = 1; id <= 3; id++) {
        assert_int_equal(feed_v4(d, 5, 6, id, 0, seg, 16, true, id, &dg, &len), MMTLS_AGAIN);
    }
    assert_int_equal(mmtls_defrag_stats(d)->evicted, 1);
    /* id 1, the oldest, was evicted */
    assert_int_equal(feed_v4(d, 5, 6, 1, 16, seg + 16, 24, false, 4, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(mmtls_defrag_stats(d)->evicted, 2); /* id 2 made room for it */
    assert_int_equal(feed_v4(d, 5, 6, 3, 16, seg + 16, 24, false, 5, &dg, &len), 0);
    check_dgram(dg, len, "ABCDEFGHIJKLMNOPQRST");
    mmtls_defrag_free(d);

    /* many more datagrams than slots */
    d = defrag_make_policy(16, 0, 0, 0, true);
    for (uint32_t id = 0; id < 5000; id++) {
        assert_int_equal(feed_v4(d, 5, 6, (uint16_t)id, 0, seg, 16, true, id, &dg, &len),
                         MMTLS_AGAIN);
    }
    assert_int_equal(mmtls_defrag_stats(d)->evicted, 5000 - 16);
    assert_int_equal(feed_v4(d, 5, 6, 4999, 16, seg + 16, 24, false, 5000, &dg, &len), 0);
    check_dgram(dg, len, "ABCDEFGHIJKLMNOPQRST");
    mmtls_defrag_free(d);
    free(seg);
}

/* Fail closed, a full table refuses new datagrams and keeps the ones it has: a flood of first
 * fragments cannot push a datagram out so that its last fragment passes unseen. */
static void test_table_full_closed(void **state)
{
    size_t slen;
    uint8_t *seg = load(seg4_hex, &slen);
    struct mmtls_defrag *d = defrag_make(16, 0, 1000, 0);
    const uint8_t *dg;
    size_t len;

    (void)state;
    assert_int_equal(feed_v4(d, 5, 6, 1, 0, seg, 16, true, 0, &dg, &len), MMTLS_AGAIN);
    for (uint32_t id = 2; id < 5000; id++) {
        int rc = feed_v4(d, 5, 6, (uint16_t)id, 0, seg, 16, true, id, &dg, &len);

        assert_int_equal(rc, id <= 16 ? MMTLS_AGAIN : MMTLS_E_LIMIT);
    }
    assert_int_equal(mmtls_defrag_stats(d)->table_full, 5000 - 17);
    assert_int_equal(mmtls_defrag_stats(d)->evicted, 0);
    assert_int_equal(mmtls_defrag_stats(d)->datagrams, 16);
    /* the first datagram is still there and completes */
    assert_int_equal(feed_v4(d, 5, 6, 1, 16, seg + 16, 24, false, 5000, &dg, &len), 0);
    check_dgram(dg, len, "ABCDEFGHIJKLMNOPQRST");
    /* its slot is free again */
    assert_int_equal(feed_v4(d, 5, 6, 9999, 0, seg, 16, true, 5001, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 9998, 0, seg, 16, true, 5002, &dg, &len), MMTLS_E_LIMIT);
    /* switched to fail open: the oldest goes */
    mmtls_defrag_set_fail_open(d, true);
    assert_int_equal(feed_v4(d, 5, 6, 9998, 0, seg, 16, true, 5003, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(mmtls_defrag_stats(d)->evicted, 1);
    mmtls_defrag_free(d);
    free(seg);
}

/* The key: same id, different protocol or addresses, are different datagrams. */
static void test_keys(void **state)
{
    size_t slen;
    uint8_t *seg = load(seg4_hex, &slen);
    struct mmtls_defrag *d = defrag_make(0, 0, 0, 0);
    const uint8_t *dg;
    size_t len;

    (void)state;
    assert_int_equal(feed_v4(d, 5, 6, 7, 0, seg, 16, true, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 17, 7, 16, seg + 16, 24, false, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 7, 16, seg + 16, 24, false, 0, &dg, &len), 0);
    check_dgram(dg, len, "ABCDEFGHIJKLMNOPQRST");
    mmtls_defrag_free(d);
    free(seg);
}

/* Builds a datagram of `total` payload bytes (a TCP header then filler) in 8192-byte
 * fragments with the given IPv4 header length; returns the last feed result. */
static int feed_big_v4(struct mmtls_defrag *d, uint8_t ihl, uint16_t id, uint32_t total,
                       const uint8_t **dg, size_t *len)
{
    uint8_t *p = malloc(total);
    int rc = MMTLS_AGAIN;

    assert_non_null(p);
    memset(p, 'x', total);
    memcpy(p, "\x04\xd2\x01\xbb\0\0\0\1\0\0\0\2\x50\x18\x03\xe8\0\0\0\0", 20);
    for (uint32_t off = 0; off < total; off += 8192) {
        uint32_t n = MMTLS_MIN(8192, total - off);

        rc = feed_v4(d, ihl, 6, id, off, p + off, n, off + n < total, 0, dg, len);
        if (off + n < total) {
            assert_int_equal(rc, MMTLS_AGAIN);
        }
    }
    free(p);
    return rc;
}

static void test_too_big(void **state)
{
    struct mmtls_defrag *d = defrag_make(0, 0, 0, 1u << 20);
    uint8_t pl[16] = {0};
    const uint8_t *dg;
    size_t len;
    struct mmtls_pkt pkt;

    (void)state;
    /* offset 65528 + 16 bytes: beyond any IPv4 datagram */
    assert_int_equal(feed_v4(d, 5, 6, 1, 65528, pl, 16, true, 0, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->too_big, 1);
    /* same for IPv6 (no jumbograms) */
    assert_int_equal(feed_v6(d, 1, 65528, pl, 16, false, 0, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->too_big, 2);
    /* a datagram whose pieces fit but whose 60-byte header pushes it past 65535: dead */
    assert_int_equal(feed_big_v4(d, 15, 77, 65512, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->too_big, 3);
    assert_int_equal(mmtls_defrag_stats(d)->killed, 1);
    assert_int_equal(mmtls_defrag_stats(d)->mem_used, 0);
    assert_int_equal(feed_v4(d, 15, 6, 77, 0, pl, 16, true, 0, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->dead_drops, 1);
    /* exactly 65535 bytes is fine */
    assert_int_equal(feed_big_v4(d, 5, 78, 65515, &dg, &len), 0);
    assert_int_equal(len, 65535);
    assert_int_equal(mmtls_decode_ip(dg, len, NULL, &pkt), MMTLS_DEC_OK);
    assert_int_equal(pkt.payload_len, 65495);
    assert_int_equal(mmtls_defrag_stats(d)->reassembled, 1);
    mmtls_defrag_free(d);
}

static void test_limits(void **state)
{
    size_t slen;
    uint8_t *seg = load(seg4_hex, &slen);
    struct mmtls_defrag *d = defrag_make(0, 2, 0, 0);
    const uint8_t *dg;
    size_t len;

    (void)state;
    /* max 2 fragments per datagram */
    assert_int_equal(feed_v4(d, 5, 6, 1, 0, seg, 8, true, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 1, 8, seg + 8, 8, true, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 1, 16, seg + 16, 24, false, 0, &dg, &len), MMTLS_E_LIMIT);
    assert_int_equal(mmtls_defrag_stats(d)->too_many_frags, 1);
    /* fail closed the datagram is dead: the receiver has two of its fragments */
    assert_int_equal(feed_v4(d, 5, 6, 1, 16, seg + 16, 24, false, 0, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->dead_drops, 1);
    mmtls_defrag_free(d);
    /* fail open it is forgotten: its fragments start a new datagram */
    d = defrag_make_policy(0, 2, 0, 0, true);
    assert_int_equal(feed_v4(d, 5, 6, 1, 0, seg, 8, true, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 1, 8, seg + 8, 8, true, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 1, 16, seg + 16, 24, false, 0, &dg, &len), MMTLS_E_LIMIT);
    assert_int_equal(feed_v4(d, 5, 6, 1, 16, seg + 16, 24, false, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(mmtls_defrag_stats(d)->killed, 0);
    mmtls_defrag_free(d);

    /* memory cap: the first fragment (header copy + 16 bytes + bookkeeping) fits, the second
     * does not, and is counted */
    d = defrag_make(0, 0, 0, 80);
    assert_int_equal(feed_v4(d, 5, 6, 1, 0, seg, 16, true, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 1, 16, seg + 16, 24, false, 0, &dg, &len), MMTLS_E_MEMCAP);
    assert_int_equal(mmtls_defrag_stats(d)->memcap_drops, 1);
    mmtls_defrag_free(d);
    free(seg);
}

static void test_bad_fragments(void **state)
{
    size_t slen;
    uint8_t *seg = load(seg4_hex, &slen);
    struct mmtls_defrag *d = defrag_make(0, 0, 0, 0);
    const uint8_t *dg;
    size_t len;
    struct mmtls_pkt pkt;
    uint64_t bad = 0;

    (void)state;
    /* RFC 791: a fragment other than the last carries a multiple of 8 bytes */
    assert_int_equal(feed_v4(d, 5, 6, 1, 0, seg, 12, true, 0, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->bad_fragments, ++bad);
    /* two last fragments that disagree */
    assert_int_equal(feed_v4(d, 5, 6, 2, 24, seg + 24, 16, false, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 2, 16, seg + 16, 16, false, 0, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->bad_fragments, ++bad);
    /* a fragment that ends past the last one */
    assert_int_equal(feed_v4(d, 5, 6, 3, 16, seg + 16, 8, false, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 3, 16, seg + 16, 16, true, 0, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->bad_fragments, ++bad);
    /* a last fragment that ends before data already seen */
    assert_int_equal(feed_v4(d, 5, 6, 4, 16, seg + 16, 16, true, 0, &dg, &len), MMTLS_AGAIN);
    assert_int_equal(feed_v4(d, 5, 6, 4, 8, seg + 8, 8, false, 0, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->bad_fragments, ++bad);
    /* an empty fragment */
    assert_int_equal(feed_v4(d, 5, 6, 5, 8, seg, 0, false, 0, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->bad_fragments, ++bad);
    /* a hand-made packet that is not a fragment of any IP version */
    memset(&pkt, 0, sizeof(pkt));
    assert_int_equal(mmtls_defrag_feed(d, &pkt, 0, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->bad_fragments, ++bad);
    /* an offset-0 fragment whose header does not match its payload pointer */
    assert_int_equal(feed_v4(d, 5, 6, 6, 0, seg, 16, true, 0, &dg, &len), MMTLS_AGAIN);
    pkt.ip_version = 4;
    pkt.l3 = seg;
    pkt.l3_len = slen;
    pkt.frag_payload = seg + 4;
    pkt.frag_payload_len = 8;
    pkt.frag_more = true;
    assert_int_equal(mmtls_defrag_feed(d, &pkt, 0, &dg, &len), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_defrag_stats(d)->bad_fragments, ++bad);
    /* arguments */
    assert_int_equal(mmtls_defrag_feed(NULL, &pkt, 0, &dg, &len), MMTLS_E_INVAL);
    assert_int_equal(mmtls_defrag_feed(d, NULL, 0, &dg, &len), MMTLS_E_INVAL);
    assert_int_equal(mmtls_defrag_feed(d, &pkt, 0, NULL, &len), MMTLS_E_INVAL);
    assert_int_equal(mmtls_defrag_new(NULL, NULL), MMTLS_E_INVAL);
    mmtls_defrag_free(d);
    mmtls_defrag_free(NULL);
    /* no opts: defaults */
    assert_int_equal(mmtls_defrag_new(&d, NULL), 0);
    mmtls_defrag_free(d);
    free(seg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_all_orders),     cmocka_unit_test(test_v6_all_orders),
        cmocka_unit_test(test_v6_no_ext),         cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_overlap_identical), cmocka_unit_test(test_overlap_different),
        cmocka_unit_test(test_timeout),           cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_table_full_closed), cmocka_unit_test(test_keys),
        cmocka_unit_test(test_too_big),           cmocka_unit_test(test_limits),
        cmocka_unit_test(test_bad_fragments),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
