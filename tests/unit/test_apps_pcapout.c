/* Unit tests for the pcapout frame builder (mmtls_pcapout_frame): whole frames compared with
 * frames built by scapy (the expected bytes below, checksums included), every too-small
 * buffer, the payload limit, and checksums of random segments verified by re-summing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "apps/apps.h"

static const uint8_t mac_c[6] = {0x02, 0x6d, 0x6d, 0x74, 0x00, 0x01};
static const uint8_t mac_s[6] = {0x02, 0x6d, 0x6d, 0x74, 0x00, 0x02};
static const uint8_t ip4_c[4] = {198, 18, 0, 1};
static const uint8_t ip4_s[4] = {198, 18, 0, 2};
static const uint8_t ip6_c[16] = {0xfd, 0x00, 0x6d, 0x6d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t ip6_s[16] = {0xfd, 0x00, 0x6d, 0x6d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

struct frame_case {
    const char *name;
    uint8_t ip_version;
    bool from_server;
    uint16_t cport, sport;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t mss;
    const char *payload;
    const char *hex; /* scapy: bytes(Ether(...)/IP(...)/TCP(...)/Raw(...)) */
};

static const struct frame_case cases[] = {
    /* Ether(02:6d:6d:74:00:01 > :02) / IP(198.18.0.1 > 198.18.0.2, DF, ttl 64, id 0)
     * / TCP(40000 > 80, S, seq 0x11223344, win 65535, MSS 1460) */
    {"v4 syn mss", 4, false, 40000, 80, 0x11223344, 0, MMTLS_PCAPOUT_F_SYN, 1460, "",
     "026d6d740002026d6d74000108004500002c000040004006aea4c6120001c61200029c4000501122334400000000"
     "6002ffff2b080000020405b4"},
    /* server -> client, PA, seq 0xfffffffe (wraps inside the payload), ack 0x11223345,
     * "hello" (odd length: the checksum pads with a zero byte) */
    {"v4 data odd", 4, true, 40000, 80, 0xfffffffeu, 0x11223345,
     MMTLS_PCAPOUT_F_PSH | MMTLS_PCAPOUT_F_ACK, 0, "hello",
     "026d6d740001026d6d74000208004500002d000040004006aea3c6120002c612000100509c40fffffffe11223345"
     "5018fffffed6000068656c6c6f"},
    /* Ether / IPv6(fd00:6d6d::1 > ::2, hlim 64) / TCP(51234 > 80, FA, seq 1000, ack 2000) */
    {"v6 fin", 6, false, 51234, 80, 1000, 2000, MMTLS_PCAPOUT_F_FIN | MMTLS_PCAPOUT_F_ACK, 0, "",
     "026d6d740002026d6d74000186dd6000000000140640fd006d6d000000000000000000000001fd006d6d000000"
     "000000000000000002c8220050000003e8000007d05011ffff06ca0000"},
    /* IPv6 server -> client, PA, seq 2000, ack 1001, "GET" */
    {"v6 data odd", 6, true, 51234, 80, 2000, 1001, MMTLS_PCAPOUT_F_PSH | MMTLS_PCAPOUT_F_ACK, 0,
     "GET",
     "026d6d740001026d6d74000286dd6000000000170640fd006d6d000000000000000000000002fd006d6d000000"
     "0000000000000000010050c822000007d0000003e95018ffff6b790000474554"},
};

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = strlen(h) / 2;

    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void seg_of(const struct frame_case *c, struct mmtls_pcapout_seg *sg)
{
    bool v4 = c->ip_version == 4;

    memset(sg, 0, sizeof(*sg));
    sg->ip_version = c->ip_version;
    memcpy(sg->src_mac, c->from_server ? mac_s : mac_c, 6);
    memcpy(sg->dst_mac, c->from_server ? mac_c : mac_s, 6);
    sg->src_ip = c->from_server ? (v4 ? ip4_s : ip6_s) : (v4 ? ip4_c : ip6_c);
    sg->dst_ip = c->from_server ? (v4 ? ip4_c : ip6_c) : (v4 ? ip4_s : ip6_s);
    sg->src_port = c->from_server ? c->sport : c->cport;
    sg->dst_port = c->from_server ? c->cport : c->sport;
    sg->seq = c->seq;
    sg->ack = c->ack;
    sg->flags = c->flags;
    sg->window = 65535;
    sg->mss = c->mss;
    sg->payload = (const uint8_t *)c->payload;
    sg->len = strlen(c->payload);
}

static void test_frames_vs_scapy(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t want[MMTLS_PCAPOUT_FRAME_MAX], got[MMTLS_PCAPOUT_FRAME_MAX];
        struct mmtls_pcapout_seg sg;
        size_t wn = unhex(cases[i].hex, want, sizeof(want)), gn = 0;

        seg_of(&cases[i], &sg);
        assert_int_equal(mmtls_pcapout_frame(&sg, got, sizeof(got), &gn), 0);
        assert_int_equal(gn, wn);
        if (memcmp(got, want, wn) != 0) {
            for (size_t k = 0; k < wn; k++) {
                if (got[k] != want[k]) {
                    print_error("%s: byte %zu is %02x, scapy %02x\n", cases[i].name, k, got[k],
                                want[k]);
                    break;
                }
            }
            fail();
        }
        /* Every buffer one byte too small or less fails without writing past it. */
        for (size_t cap = 0; cap < wn; cap++) {
            uint8_t small[MMTLS_PCAPOUT_FRAME_MAX + 1];
            memset(small, 0xa5, sizeof(small));
            assert_int_equal(mmtls_pcapout_frame(&sg, small, cap, &gn), MMTLS_E_LIMIT);
            assert_int_equal(small[cap], 0xa5);
        }
    }
}

/* Ones' complement sum of a whole region (RFC 1071). */
static uint16_t fold(const uint8_t *p, size_t n, uint32_t sum)
{
    for (size_t i = 0; i < n; i += 2)
        sum += (uint32_t)(p[i] << 8 | (i + 1 < n ? p[i + 1] : 0));
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

static void test_limits_and_checksums(void **state)
{
    static uint8_t payload[1461];
    uint8_t buf[MMTLS_PCAPOUT_FRAME_MAX];
    struct mmtls_pcapout_seg sg;
    size_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    seg_of(&cases[1], &sg);
    sg.payload = payload;
    /* The largest payload, IPv4 and IPv6 with an MSS option: fits MMTLS_PCAPOUT_FRAME_MAX. */
    for (int v = 4; v <= 6; v += 2) {
        seg_of(&cases[v == 4 ? 1 : 3], &sg);
        sg.payload = payload;
        sg.mss = 1460;
        for (size_t len = 0; len <= 1460; len += (len < 64 ? 1 : 97)) {
            size_t iph = v == 4 ? 20u : 40u, al = v == 4 ? 4u : 16u;
            uint32_t ps;
            uint8_t p6[8] = {0};
            sg.len = len;
            assert_int_equal(mmtls_pcapout_frame(&sg, buf, sizeof(buf), &n), 0);
            assert_int_equal(n, 14 + iph + 24 + len);
            if (v == 4)
                assert_int_equal(fold(buf + 14, 20, 0), 0xffff); /* header checksum verifies */
            /* TCP checksum verifies: pseudo-header + segment sums to all ones. */
            ps = fold(sg.src_ip, al, 0);
            ps += fold(sg.dst_ip, al, 0);
            p6[2] = (uint8_t)((24 + len) >> 8);
            p6[3] = (uint8_t)(24 + len);
            p6[7] = 6;
            ps += fold(p6, 8, 0);
            assert_int_equal(fold(buf + 14 + iph, 24 + len, ps), 0xffff);
            assert_memory_equal(buf + 14 + iph + 24, payload, len);
        }
        sg.len = 1460;
        assert_int_equal(mmtls_pcapout_frame(&sg, buf, sizeof(buf), &n), 0);
        sg.len = 1461;
        assert_int_equal(mmtls_pcapout_frame(&sg, buf, sizeof(buf), &n), MMTLS_E_INVAL);
    }
    /* Bad IP version, NULL payload with a length. */
    seg_of(&cases[0], &sg);
    sg.ip_version = 5;
    assert_int_equal(mmtls_pcapout_frame(&sg, buf, sizeof(buf), &n), MMTLS_E_INVAL);
    seg_of(&cases[0], &sg);
    sg.payload = NULL;
    sg.len = 1;
    assert_int_equal(mmtls_pcapout_frame(&sg, buf, sizeof(buf), &n), MMTLS_E_INVAL);
    /* Without the ACK flag the acknowledgement field is zero (RFC 9293 §3.1). */
    seg_of(&cases[0], &sg);
    sg.ack = 0xdeadbeef;
    assert_int_equal(mmtls_pcapout_frame(&sg, buf, sizeof(buf), &n), 0);
    assert_int_equal(buf[14 + 20 + 8] | buf[14 + 20 + 9] | buf[14 + 20 + 10] | buf[14 + 20 + 11],
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_vs_scapy),
        cmocka_unit_test(test_limits_and_checksums),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
