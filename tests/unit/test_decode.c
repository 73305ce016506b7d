/* Unit tests for decode: every link type, VLAN stacks, IPv4 options, IPv6 extension headers,
 * TCP options, checksums, truncation at every byte offset, bad lengths and trailing bytes.
 *
 * Frames are hex strings, one line per header with its decoding in the comment above it
 * (generated once, offline, with scapy; checksums are real).  Each test copies the frame into a
 * heap buffer of exactly the tested length so that AddressSanitizer sees any over-read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "decode/decode.h"

/* ------------------------------------------------------------------------------------------ */
/* Valid frames                                                                                 */

/* f_eth_v4_syn (66 bytes) */
static const char f_eth_v4_syn[] =
    /* Ethernet 66:77:88:99:aa:bb > 00:11:22:33:44:55 type 0x0800 */
    "00112233445566778899aabb0800"
    /* IPv4 ihl 5 len 52 id 1 flags DF off 0 ttl 64 proto 6 csum 0x26c1 10.0.0.1 > 10.0.0.2 */
    "4500003400014000400626c10a0000010a000002"
    /* TCP 40000 > 443 seq 1000 ack 0 off 8 flags S win 64240 csum 0xbf3b
     * opts MSS=1460,NOP,WScale=7,SAckOK,EOL */
    "9c4001bb000003e8000000008002faf0bf3b0000020405b40103030704020000";

/* f_eth_v4_data (59 bytes) */
static const char f_eth_v4_data[] =
    /* Ethernet 66:77:88:99:aa:bb > 00:11:22:33:44:55 type 0x0800 */
    "00112233445566778899aabb0800"
    /* IPv4 ihl 5 len 45 id 1 flags DF off 0 ttl 64 proto 6 csum 0x26c8 10.0.0.1 > 10.0.0.2 */
    "4500002d00014000400626c80a0000010a000002"
    /* TCP 443 > 40000 seq 5000 ack 1001 off 5 flags PA win 501 csum 0xa091 */
    "01bb9c4000001388000003e9501801f5a0910000"
    /* payload b'hello' */
    "68656c6c6f";

/* f_eth_v4_pad (60 bytes) */
static const char f_eth_v4_pad[] =
    /* Ethernet 66:77:88:99:aa:bb > 00:11:22:33:44:55 type 0x0800 */
    "00112233445566778899aabb0800"
    /* IPv4 ihl 5 len 40 id 1 flags DF off 0 ttl 64 proto 6 csum 0x26cd 10.0.0.1 > 10.0.0.2 */
    "4500002800014000400626cd0a0000010a000002"
    /* TCP 443 > 40000 seq 7 ack 9 off 5 flags A win 100 csum 0xfd62 */
    "01bb9c40000000070000000950100064fd620000"
    /* padding b'\x00\x00\x00\x00\x00\x00' */
    "000000000000";

/* f_eth_vlan_v4 (61 bytes) */
static const char f_eth_vlan_v4[] =
    /* Ethernet 66:77:88:99:aa:bb > 00:11:22:33:44:55 type 0x8100 */
    "00112233445566778899aabb8100"
    /* 802.1Q vlan 100 type 0x0800 */
    "00640800"
    /* IPv4 ihl 5 len 43 id 1 flags DF off 0 ttl 64 proto 6 csum 0x26ca 10.0.0.1 > 10.0.0.2 */
    "4500002b00014000400626ca0a0000010a000002"
    /* TCP 443 > 40000 seq 5000 ack 1001 off 5 flags PA win 501 csum 0x2003 */
    "01bb9c4000001388000003e9501801f520030000"
    /* payload b'abc' */
    "616263";

/* f_eth_qinq_v6 (84 bytes) */
static const char f_eth_qinq_v6[] =
    /* Ethernet 66:77:88:99:aa:bb > 00:11:22:33:44:55 type 0x88a8 */
    "00112233445566778899aabb88a8"
    /* 802.1ad vlan 10 type 0x8100 */
    "000a8100"
    /* 802.1Q vlan 20 type 0x86dd */
    "001486dd"
    /* IPv6 plen 22 nh 6 hlim 64 2001:db8::1 > 2001:db8::2 */
    "600000000016064020010db800000000000000000000000120010db8000000000000000000000002"
    /* TCP 443 > 40000 seq 5000 ack 1001 off 5 flags PA win 501 csum 0x247b */
    "01bb9c4000001388000003e9501801f5247b0000"
    /* payload b'xy' */
    "7879";

/* f_eth_9100_v4 (63 bytes) */
static const char f_eth_9100_v4[] =
    /* Ethernet 66:77:88:99:aa:bb > 00:11:22:33:44:55 type 0x9100 */
    "00112233445566778899aabb9100"
    /* 802.1Q vlan 7 type 0x8100 */
    "00078100"
    /* 802.1Q vlan 8 type 0x0800 */
    "00080800"
    /* IPv4 ihl 5 len 41 id 1 flags DF off 0 ttl 64 proto 6 csum 0x26cc 10.0.0.1 > 10.0.0.2 */
    "4500002900014000400626cc0a0000010a000002"
    /* TCP 443 > 40000 seq 5000 ack 1001 off 5 flags PA win 501 csum 0x7367 */
    "01bb9c4000001388000003e9501801f573670000"
    /* payload b'q' */
    "71";

/* f_sll_v4 (59 bytes) */
static const char f_sll_v4[] =
    /* Linux SLL pkttype 0 arphrd 1 addr len 6, protocol 0x0800 */
    "00000001000666778899aabb00000800"
    /* IPv4 ihl 5 len 43 id 1 flags DF off 0 ttl 64 proto 6 csum 0x26ca 10.0.0.1 > 10.0.0.2 */
    "4500002b00014000400626ca0a0000010a000002"
    /* TCP 443 > 40000 seq 5000 ack 1001 off 5 flags PA win 501 csum 0x04f9 */
    "01bb9c4000001388000003e9501801f504f90000"
    /* payload b'sll' */
    "736c6c";

/* f_sll2_v6 (84 bytes) */
static const char f_sll2_v6[] =
    /* Linux SLL2 protocol 0x86dd ifindex 2 arphrd 1 pkttype 4 */
    "86dd0000000000020001040666778899aabb0000"
    /* IPv6 plen 24 nh 6 hlim 64 2001:db8::1 > 2001:db8::2 */
    "600000000018064020010db800000000000000000000000120010db8000000000000000000000002"
    /* TCP 443 > 40000 seq 5000 ack 1001 off 5 flags PA win 501 csum 0xbd53 */
    "01bb9c4000001388000003e9501801f5bd530000"
    /* payload b'sll2' */
    "736c6c32";

/* f_raw_v4 (44 bytes) */
static const char f_raw_v4[] =
    /* IPv4 ihl 5 len 44 id 1 flags DF off 0 ttl 64 proto 6 csum 0x26c9 10.0.0.1 > 10.0.0.2 */
    "4500002c00014000400626c90a0000010a000002"
    /* TCP 443 > 40000 seq 5000 ack 1001 off 5 flags PA win 501 csum 0xface */
    "01bb9c4000001388000003e9501801f5face0000"
    /* payload b'raw4' */
    "72617734";

/* f_raw_v6 (64 bytes) */
static const char f_raw_v6[] =
    /* IPv6 plen 24 nh 6 hlim 64 2001:db8::1 > 2001:db8::2 */
    "600000000018064020010db800000000000000000000000120010db8000000000000000000000002"
    /* TCP 443 > 40000 seq 5000 ack 1001 off 5 flags PA win 501 csum 0xb35a */
    "01bb9c4000001388000003e9501801f5b35a0000"
    /* payload b'raw6' */
    "72617736";

/* f_v4_opts (51 bytes) */
static const char f_v4_opts[] =
    /* IPv4 ihl 7 len 51 id 1 flags DF off 0 ttl 64 proto 6 csum 0x8ebc 10.0.0.1 > 10.0.0.2
     * opts Router_Alert(94 04 0000) NOP NOP NOP EOL */
    "470000330001400040068ebc0a0000010a0000029404000001010100"
    /* TCP 443 > 40000 seq 5000 ack 1001 off 5 flags PA win 501 csum 0x00f5 */
    "01bb9c4000001388000003e9501801f500f50000"
    /* payload b'opt' */
    "6f7074";

/* f_v6_ext (103 bytes) */
static const char f_v6_ext[] =
    /* IPv6 plen 63 nh 0 hlim 64 2001:db8::1 > 2001:db8::2 */
    "60000000003f004020010db800000000000000000000000120010db8000000000000000000000002"
    /* Hop-by-Hop nh 60 len 0 (8 bytes) */
    "3c00010400000000"
    /* Destination Options nh 43 len 0 (8 bytes) */
    "2b00010400000000"
    /* Routing type 0 nh 6 len 2 segleft 1 addrs 2001:db8::99 */
    "060200010000000020010db8000000000000000000000099"
    /* TCP 443 > 40000 seq 5000 ack 1001 off 5 flags PA win 501 csum 0xc2e3 */
    "01bb9c4000001388000003e9501801f5c2e30000"
    /* payload b'ext' */
    "657874";

/* f_v6_atomic (72 bytes) */
static const char f_v6_atomic[] =
    /* IPv6 plen 32 nh 44 hlim 64 2001:db8::1 > 2001:db8::2 */
    "6000000000202c4020010db800000000000000000000000120010db8000000000000000000000002"
    /* Fragment nh 6 offset 0 M 0 id 0x1234 */
    "0600000000001234"
    /* TCP 443 > 40000 seq 5000 ack 1001 off 5 flags PA win 501 csum 0xcc10 */
    "01bb9c4000001388000003e9501801f5cc100000"
    /* payload b'atom' */
    "61746f6d";

/* f_v4_udp (29 bytes) */
static const char f_v4_udp[] =
    /* IPv4 ihl 5 len 29 id 1 flags DF off 0 ttl 64 proto 17 csum 0x26cd 10.0.0.1 > 10.0.0.2 */
    "4500001d00014000401126cd0a0000010a000002"
    /* UDP 53 > 5353 len 9 */
    "003514e9000961bb"
    /* payload b'u' */
    "75";

/* IPv6 + Authentication Header (RFC 4302) + TCP (68 bytes) */
static const char f_v6_ah[] =
    /* IPv6 plen 44 nh 51 hlim 64 2001:db8::1 > 2001:db8::2 */
    "60000000002c334020010db800000000000000000000000120010db8000000000000000000000002"
    /* AH nh 6 len 4 ((4+2)*4 = 24 bytes) spi 0x100 seq 1 icv 12 bytes */
    "0604000000000100000000010000000000000000"
    "00000000"
    /* TCP 443 > 40000 seq 5000 ack 1001 off 5 flags PA win 501 csum (not checked) */
    "01bb9c4000001388000003e9501801f500000000";

/* Eight Destination Options headers (the maximum walked), then TCP (124 bytes) */
#define DO8 "3c00010400000000" /* Destination Options nh 60 len 0, PadN 4 */
#define DO6 "0600010400000000" /* Destination Options nh 6 len 0, PadN 4 */
static const char f_v6_ext8[] =
    /* IPv6 plen 84 nh 60 hlim 64 2001:db8::1 > 2001:db8::2 */
    "6000000000543c4020010db800000000000000000000000120010db8000000000000000000000002" DO8 DO8 DO8
        DO8 DO8 DO8 DO8 DO6
    /* TCP 443 > 40000 seq 5000 ack 1001 off 5 flags PA win 501 */
    "01bb9c4000001388000003e9501801f500000000";

/* Nine Destination Options headers: one too many (132 bytes) */
static const char f_v6_ext9[] =
    /* IPv6 plen 92 nh 60 hlim 64 2001:db8::1 > 2001:db8::2 */
    "60000000005c3c4020010db800000000000000000000000120010db8000000000000000000000002" DO8 DO8 DO8
        DO8 DO8 DO8 DO8 DO8 DO6
    /* TCP 443 > 40000 seq 5000 ack 1001 off 5 flags PA win 501 */
    "01bb9c4000001388000003e9501801f500000000";

#define NULL_V4_LE "02000000" /* DLT_NULL AF_INET (2), little-endian host */
#define NULL_V6_BE "0000001e" /* DLT_NULL AF_INET6 (Darwin 30), big-endian host */
#define NULL_V6_LE "1c000000" /* DLT_NULL AF_INET6 (FreeBSD 28), little-endian host */
#define LOOP_V4 "00000002"    /* DLT_LOOP AF_INET, network order */
#define LOOP_V6 "00000018"    /* DLT_LOOP AF_INET6 (OpenBSD 24), network order */

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                      */

/* Decodes prefix || hex into a heap buffer of exactly the decoded length. */
static uint8_t *load(const char *prefix, const char *hex, size_t *len)
{
    size_t pl = strlen(prefix) / 2, hl = strlen(hex) / 2;
    uint8_t *b = malloc(pl + hl + 1);

    assert_non_null(b);
    assert_int_equal(mmtls_hex_decode(prefix, pl * 2, b, pl), 0);
    assert_int_equal(mmtls_hex_decode(hex, hl * 2, b + pl, hl), 0);
    *len = pl + hl;
    return b;
}

/* A copy of the first n bytes in a heap block of exactly n bytes (at least 1 allocated). */
static uint8_t *dup_n(const uint8_t *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);

    assert_non_null(b);
    memcpy(b, p, n);
    return b;
}

static const struct mmtls_decode_opts no_verify = {false, false};
static const struct mmtls_decode_opts verify = {true, true};

/* ------------------------------------------------------------------------------------------ */
/* Valid frames: fields, checksums, truncation, trailing bytes                                 */

struct valid_case {
    const char *name;
    int linktype;
    const char *prefix;
    const char *hex;
    bool padded;  /* frame ends with L2 padding: truncating it may still decode */
    bool csum_ok; /* checksums in the frame are real */
    uint8_t ip_version;
    uint8_t vlan_count;
    uint16_t vlan0, vlan1;
    uint16_t sport, dport;
    uint8_t flags;
    uint16_t mss;
    uint8_t wscale;
    size_t l3_len;
    const char *payload;
};

static const struct valid_case valid_cases[] = {
    {"eth v4 syn", MMTLS_LINK_ETHERNET, "", f_eth_v4_syn, false, true, 4, 0, 0, 0, 40000, 443,
     MMTLS_TCP_SYN, 1460, 7, 52, ""},
    {"eth v4 data", MMTLS_LINK_ETHERNET, "", f_eth_v4_data, false, true, 4, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 45, "hello"},
    {"eth v4 padded", MMTLS_LINK_ETHERNET, "", f_eth_v4_pad, true, true, 4, 0, 0, 0, 443, 40000,
     MMTLS_TCP_ACK, 0, 0xff, 40, ""},
    {"eth vlan v4", MMTLS_LINK_ETHERNET, "", f_eth_vlan_v4, false, true, 4, 1, 100, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 43, "abc"},
    {"eth qinq v6", MMTLS_LINK_ETHERNET, "", f_eth_qinq_v6, false, true, 6, 2, 10, 20, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 62, "xy"},
    {"eth 9100 v4", MMTLS_LINK_ETHERNET, "", f_eth_9100_v4, false, true, 4, 2, 7, 8, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 41, "q"},
    {"sll v4", MMTLS_LINK_LINUX_SLL, "", f_sll_v4, false, true, 4, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 43, "sll"},
    {"sll2 v6", MMTLS_LINK_LINUX_SLL2, "", f_sll2_v6, false, true, 6, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 64, "sll2"},
    {"raw v4", MMTLS_LINK_RAW, "", f_raw_v4, false, true, 4, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 44, "raw4"},
    {"raw v6", MMTLS_LINK_RAW, "", f_raw_v6, false, true, 6, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 64, "raw6"},
    {"raw alias 12", 12, "", f_raw_v4, false, true, 4, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 44, "raw4"},
    {"raw alias 14", 14, "", f_raw_v6, false, true, 6, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 64, "raw6"},
    {"linktype ipv4", MMTLS_LINK_IPV4, "", f_raw_v4, false, true, 4, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 44, "raw4"},
    {"linktype ipv6", MMTLS_LINK_IPV6, "", f_raw_v6, false, true, 6, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 64, "raw6"},
    {"null le v4", MMTLS_LINK_NULL, NULL_V4_LE, f_raw_v4, false, true, 4, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 44, "raw4"},
    {"null be v6", MMTLS_LINK_NULL, NULL_V6_BE, f_raw_v6, false, true, 6, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 64, "raw6"},
    {"null le v6", MMTLS_LINK_NULL, NULL_V6_LE, f_raw_v6, false, true, 6, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 64, "raw6"},
    {"loop v4", MMTLS_LINK_LOOP, LOOP_V4, f_raw_v4, false, true, 4, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 44, "raw4"},
    {"loop v6", MMTLS_LINK_LOOP, LOOP_V6, f_raw_v6, false, true, 6, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 64, "raw6"},
    {"v4 options", MMTLS_LINK_RAW, "", f_v4_opts, false, true, 4, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 51, "opt"},
    {"v6 hbh+dst+rt", MMTLS_LINK_RAW, "", f_v6_ext, false, true, 6, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 103, "ext"},
    {"v6 atomic frag", MMTLS_LINK_RAW, "", f_v6_atomic, false, true, 6, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 72, "atom"},
    {"v6 ah", MMTLS_LINK_RAW, "", f_v6_ah, false, false, 6, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 84, ""},
    {"v6 8 ext", MMTLS_LINK_RAW, "", f_v6_ext8, false, false, 6, 0, 0, 0, 443, 40000,
     MMTLS_TCP_PSH | MMTLS_TCP_ACK, 0, 0xff, 124, ""},
};

static void check_valid(const struct valid_case *vc, const uint8_t *b, size_t len,
                        const struct mmtls_pkt *pkt)
{
    size_t plen = strlen(vc->payload);

    assert_int_equal(pkt->ts_us, 0x1122334455667788ull); /* left untouched */
    assert_int_equal(pkt->ip_version, vc->ip_version);
    assert_int_equal(pkt->vlan_count, vc->vlan_count);
    if (vc->vlan_count > 0) {
        assert_int_equal(pkt->vlan[0], vc->vlan0);
    }
    if (vc->vlan_count > 1) {
        assert_int_equal(pkt->vlan[1], vc->vlan1);
    }
    assert_int_equal(pkt->l4proto, 6);
    assert_int_equal(pkt->ttl, 64);
    assert_int_equal(pkt->sport, vc->sport);
    assert_int_equal(pkt->dport, vc->dport);
    assert_int_equal(pkt->tcp_flags, vc->flags);
    assert_int_equal(pkt->mss, vc->mss);
    assert_int_equal(pkt->wscale, vc->wscale);
    assert_int_equal(pkt->l3_len, vc->l3_len);
    assert_true(pkt->l3 >= b && pkt->l3 + pkt->l3_len <= b + len);
    assert_int_equal(pkt->payload_len, plen);
    assert_true(pkt->payload + pkt->payload_len <= b + len);
    assert_memory_equal(pkt->payload, vc->payload, plen);
    if (vc->ip_version == 4) {
        static const uint8_t s4[16] = {10, 0, 0, 1}, d4[16] = {10, 0, 0, 2};
        assert_memory_equal(pkt->src, s4, 16);
        assert_memory_equal(pkt->dst, d4, 16);
    } else {
        static const uint8_t s6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
        static const uint8_t d6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 2};
        assert_memory_equal(pkt->src, s6, 16);
        assert_memory_equal(pkt->dst, d6, 16);
    }
}

static void test_valid_frames(void **state)
{
    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(valid_cases); i++) {
        const struct valid_case *vc = &valid_cases[i];
        struct mmtls_pkt pkt;
        size_t len;
        uint8_t *b = load(vc->prefix, vc->hex, &len);
        enum mmtls_decode_event ev;

        print_message("case %s\n", vc->name);
        memset(&pkt, 0xa5, sizeof(pkt));
        pkt.ts_us = 0x1122334455667788ull;
        ev = mmtls_decode_frame(vc->linktype, b, len, &no_verify, &pkt);
        assert_string_equal(mmtls_decode_event_name(ev), "ok");
        check_valid(vc, b, len, &pkt);
        /* NULL opts means no verification */
        assert_int_equal(mmtls_decode_frame(vc->linktype, b, len, NULL, &pkt), MMTLS_DEC_OK);
        if (vc->csum_ok) {
            assert_int_equal(mmtls_decode_frame(vc->linktype, b, len, &verify, &pkt), MMTLS_DEC_OK);
            check_valid(vc, b, len, &pkt);
        }
        free(b);
    }
}

/* Every prefix of every valid frame: never OK with bytes beyond the prefix, and (without L2
 * padding) never OK at all, since the IP length then exceeds what is captured. */
static void test_truncation(void **state)
{
    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(valid_cases); i++) {
        const struct valid_case *vc = &valid_cases[i];
        size_t len;
        uint8_t *full = load(vc->prefix, vc->hex, &len);

        for (size_t n = 0; n < len; n++) {
            uint8_t *b = dup_n(full, n);
            struct mmtls_pkt pkt;
            enum mmtls_decode_event ev;

            for (int v = 0; v < 2; v++) {
                ev = mmtls_decode_frame(vc->linktype, b, n, v ? &verify : &no_verify, &pkt);
                if (ev == MMTLS_DEC_OK) {
                    assert_true(vc->padded);
                    assert_true(pkt.payload >= b && pkt.payload + pkt.payload_len <= b + n);
                } else {
                    assert_true(ev > MMTLS_DEC_OK && ev < MMTLS_DEC_EVENT_MAX);
                    assert_int_not_equal(ev, MMTLS_DEC_IP_FRAGMENT);
                }
            }
            free(b);
        }
        free(full);
    }
}

/* Trailing bytes after the IP datagram (L2 padding, FCS) are ignored: IP lengths rule. */
static void test_trailing_bytes(void **state)
{
    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(valid_cases); i++) {
        const struct valid_case *vc = &valid_cases[i];
        size_t len;
        uint8_t *full = load(vc->prefix, vc->hex, &len);
        uint8_t *b = malloc(len + 7);
        struct mmtls_pkt pkt;

        assert_non_null(b);
        memcpy(b, full, len);
        memset(b + len, 0xee, 7);
        pkt.ts_us = 0x1122334455667788ull;
        assert_int_equal(mmtls_decode_frame(vc->linktype, b, len + 7, &no_verify, &pkt),
                         MMTLS_DEC_OK);
        check_valid(vc, b, len + 7, &pkt);
        if (vc->csum_ok) {
            assert_int_equal(mmtls_decode_frame(vc->linktype, b, len + 7, &verify, &pkt),
                             MMTLS_DEC_OK);
        }
        free(b);
        free(full);
    }
}

/* mmtls_decode_ip on the L3 part gives the same result and keeps the L2 fields. */
static void test_decode_ip(void **state)
{
    size_t len;
    uint8_t *b = load("", f_eth_vlan_v4, &len);
    struct mmtls_pkt pkt;

    (void)state;
    pkt.ts_us = 0x1122334455667788ull;
    assert_int_equal(mmtls_decode_frame(MMTLS_LINK_ETHERNET, b, len, &verify, &pkt), MMTLS_DEC_OK);
    assert_int_equal(mmtls_decode_ip(b + 18, len - 18, &verify, &pkt), MMTLS_DEC_OK);
    check_valid(&valid_cases[3], b, len, &pkt);
    assert_int_equal(mmtls_decode_ip(b, 0, &verify, &pkt), MMTLS_DEC_L2_TRUNCATED);
    assert_int_equal(mmtls_decode_ip(NULL, 0, &verify, &pkt), MMTLS_DEC_L2_TRUNCATED);
    /* version 5 */
    b[18] = 0x55;
    assert_int_equal(mmtls_decode_ip(b + 18, len - 18, &verify, &pkt), MMTLS_DEC_L2_UNSUPPORTED);
    assert_int_equal(pkt.vlan_count, 1);
    free(b);
}

/* ------------------------------------------------------------------------------------------ */
/* Bad frames: a valid frame with bytes overwritten                                             */

struct bad_case {
    const char *name;
    int linktype;
    const char *prefix;
    const char *hex;
    size_t off;        /* where to write patch */
    const char *patch; /* hex bytes, "" for none */
    enum mmtls_decode_event ev;
};

/* Offsets: Ethernet frames have IPv4 at 14 and TCP at 34 (TCP options of f_eth_v4_syn at 54);
 * raw IPv4 frames have TCP at 20 (28 in f_v4_opts, whose options start at 20); raw IPv6
 * frames have the payload length at 4 and the next header at 6 (extensions from 40). */
static const struct bad_case bad_cases[] = {
    /* L2 */
    {"unknown linktype", 999, "", f_raw_v4, 0, "", MMTLS_DEC_L2_UNSUPPORTED},
    {"ethertype arp", MMTLS_LINK_ETHERNET, "", f_eth_v4_data, 12, "0806", MMTLS_DEC_L2_UNSUPPORTED},
    {"ethertype 802.3 length", MMTLS_LINK_ETHERNET, "", f_eth_v4_data, 12, "002d",
     MMTLS_DEC_L2_UNSUPPORTED},
    {"three vlan tags", MMTLS_LINK_ETHERNET, "", f_eth_9100_v4, 20, "8100",
     MMTLS_DEC_VLAN_TOO_DEEP},
    {"vlan to arp", MMTLS_LINK_ETHERNET, "", f_eth_vlan_v4, 16, "0806", MMTLS_DEC_L2_UNSUPPORTED},
    {"sll protocol arp", MMTLS_LINK_LINUX_SLL, "", f_sll_v4, 14, "0806", MMTLS_DEC_L2_UNSUPPORTED},
    {"sll2 protocol arp", MMTLS_LINK_LINUX_SLL2, "", f_sll2_v6, 0, "0806",
     MMTLS_DEC_L2_UNSUPPORTED},
    {"null af 7", MMTLS_LINK_NULL, "07000000", f_raw_v4, 0, "", MMTLS_DEC_L2_UNSUPPORTED},
    {"loop af little-endian", MMTLS_LINK_LOOP, "02000000", f_raw_v4, 0, "",
     MMTLS_DEC_L2_UNSUPPORTED},
    {"null af v4 with v6", MMTLS_LINK_NULL, NULL_V4_LE, f_raw_v6, 0, "", MMTLS_DEC_IPV4_BAD_HLEN},
    {"raw version 5", MMTLS_LINK_RAW, "", f_raw_v4, 0, "55", MMTLS_DEC_L2_UNSUPPORTED},
    /* IPv4 */
    {"ethertype v4, version 6", MMTLS_LINK_ETHERNET, "", f_eth_v4_data, 14, "65",
     MMTLS_DEC_IPV4_BAD_HLEN},
    {"linktype ipv4 with v6", MMTLS_LINK_IPV4, "", f_raw_v6, 0, "", MMTLS_DEC_IPV4_BAD_HLEN},
    {"ihl 4", MMTLS_LINK_ETHERNET, "", f_eth_v4_data, 14, "44", MMTLS_DEC_IPV4_BAD_HLEN},
    {"ihl 0", MMTLS_LINK_RAW, "", f_raw_v4, 0, "40", MMTLS_DEC_IPV4_BAD_HLEN},
    {"ihl 15 beyond frame", MMTLS_LINK_ETHERNET, "", f_eth_v4_data, 14, "4f",
     MMTLS_DEC_IPV4_TRUNCATED},
    {"total len beyond captured", MMTLS_LINK_ETHERNET, "", f_eth_v4_data, 16, "002e",
     MMTLS_DEC_IPV4_BAD_LEN},
    {"total len 65535", MMTLS_LINK_RAW, "", f_raw_v4, 2, "ffff", MMTLS_DEC_IPV4_BAD_LEN},
    {"total len < ihl", MMTLS_LINK_ETHERNET, "", f_eth_v4_data, 16, "0013", MMTLS_DEC_IPV4_BAD_LEN},
    {"total len 0", MMTLS_LINK_ETHERNET, "", f_eth_v4_data, 16, "0000", MMTLS_DEC_IPV4_BAD_LEN},
    {"option len 0", MMTLS_LINK_RAW, "", f_v4_opts, 21, "00", MMTLS_DEC_IPV4_BAD_OPTIONS},
    {"option len 1", MMTLS_LINK_RAW, "", f_v4_opts, 21, "01", MMTLS_DEC_IPV4_BAD_OPTIONS},
    {"option len past header", MMTLS_LINK_RAW, "", f_v4_opts, 21, "09", MMTLS_DEC_IPV4_BAD_OPTIONS},
    {"option type without len", MMTLS_LINK_RAW, "", f_v4_opts, 20, "0101010101010194",
     MMTLS_DEC_IPV4_BAD_OPTIONS},
    {"option len 8 fills area", MMTLS_LINK_RAW, "", f_v4_opts, 21, "08", MMTLS_DEC_OK},
    {"udp", MMTLS_LINK_RAW, "", f_v4_udp, 0, "", MMTLS_DEC_NOT_TCP},
    {"v4 MF", MMTLS_LINK_RAW, "", f_raw_v4, 6, "2000", MMTLS_DEC_IP_FRAGMENT},
    {"v4 offset", MMTLS_LINK_RAW, "", f_raw_v4, 6, "0001", MMTLS_DEC_IP_FRAGMENT},
    {"v4 DF only", MMTLS_LINK_RAW, "", f_raw_v4, 6, "4000", MMTLS_DEC_OK},
    /* IPv6 */
    {"linktype ipv6 with v4", MMTLS_LINK_IPV6, "", f_raw_v4, 0, "", MMTLS_DEC_IPV6_BAD_LEN},
    {"ethertype v6, version 4", MMTLS_LINK_LINUX_SLL2, "", f_sll2_v6, 20, "40",
     MMTLS_DEC_IPV6_BAD_LEN},
    {"v6 plen beyond captured", MMTLS_LINK_RAW, "", f_raw_v6, 4, "0019", MMTLS_DEC_IPV6_BAD_LEN},
    {"v6 plen 65535", MMTLS_LINK_RAW, "", f_raw_v6, 4, "ffff", MMTLS_DEC_IPV6_BAD_LEN},
    {"v6 no next header", MMTLS_LINK_RAW, "", f_raw_v6, 6, "3b", MMTLS_DEC_NOT_TCP},
    {"v6 esp", MMTLS_LINK_RAW, "", f_raw_v6, 6, "32", MMTLS_DEC_NOT_TCP},
    {"v6 udp", MMTLS_LINK_RAW, "", f_raw_v6, 6, "11", MMTLS_DEC_NOT_TCP},
    {"v6 9 ext", MMTLS_LINK_RAW, "", f_v6_ext9, 0, "", MMTLS_DEC_IPV6_EXT_TOO_DEEP},
    {"v6 hbh len past payload", MMTLS_LINK_RAW, "", f_v6_ext, 41, "20", MMTLS_DEC_IPV6_BAD_EXT},
    {"v6 hbh padn past header", MMTLS_LINK_RAW, "", f_v6_ext, 43, "05", MMTLS_DEC_IPV6_BAD_EXT},
    {"v6 hbh not first", MMTLS_LINK_RAW, "", f_v6_ext, 48, "00", MMTLS_DEC_IPV6_BAD_EXT},
    {"v6 routing len past payload", MMTLS_LINK_RAW, "", f_v6_ext, 57, "08", MMTLS_DEC_IPV6_BAD_EXT},
    {"v6 ah len past payload", MMTLS_LINK_RAW, "", f_v6_ah, 41, "0a", MMTLS_DEC_IPV6_BAD_EXT},
    {"v6 hbh with plen 0 (jumbo)", MMTLS_LINK_RAW, "", f_v6_ext, 4, "0000", MMTLS_DEC_IPV6_BAD_EXT},
    {"v6 ext ends at payload end", MMTLS_LINK_RAW, "", f_v6_ext, 4, "0028",
     MMTLS_DEC_TCP_TRUNCATED},
    {"v6 frag offset", MMTLS_LINK_RAW, "", f_v6_atomic, 42, "0008", MMTLS_DEC_IP_FRAGMENT},
    {"v6 frag M", MMTLS_LINK_RAW, "", f_v6_atomic, 42, "0001", MMTLS_DEC_IP_FRAGMENT},
    {"v6 frag header cut", MMTLS_LINK_RAW, "", f_v6_atomic, 4, "0004", MMTLS_DEC_IPV6_BAD_EXT},
    /* TCP */
    {"tcp doff 4", MMTLS_LINK_RAW, "", f_raw_v4, 32, "40", MMTLS_DEC_TCP_BAD_HLEN},
    {"tcp doff 0", MMTLS_LINK_RAW, "", f_raw_v4, 32, "00", MMTLS_DEC_TCP_BAD_HLEN},
    {"tcp doff 15 past segment", MMTLS_LINK_RAW, "", f_raw_v4, 32, "f0", MMTLS_DEC_TCP_BAD_HLEN},
    /* malformed options: read as Linux reads them, the segment accepted
       (test_tcp_options_malformed) */
    {"tcp doff 6 eats payload", MMTLS_LINK_RAW, "", f_raw_v4, 32, "60", MMTLS_DEC_OK},
    {"tcp 10 bytes", MMTLS_LINK_RAW, "", f_raw_v4, 2, "001e", MMTLS_DEC_TCP_TRUNCATED},
    {"tcp mss len 3", MMTLS_LINK_ETHERNET, "", f_eth_v4_syn, 55, "03", MMTLS_DEC_OK},
    {"tcp option len 0", MMTLS_LINK_ETHERNET, "", f_eth_v4_syn, 55, "00", MMTLS_DEC_OK},
    {"tcp option len 1", MMTLS_LINK_ETHERNET, "", f_eth_v4_syn, 55, "01", MMTLS_DEC_OK},
    {"tcp option len past header", MMTLS_LINK_ETHERNET, "", f_eth_v4_syn, 55, "20", MMTLS_DEC_OK},
    {"tcp wscale len 4", MMTLS_LINK_ETHERNET, "", f_eth_v4_syn, 60, "04", MMTLS_DEC_OK},
    {"tcp option kind without len", MMTLS_LINK_ETHERNET, "", f_eth_v4_syn, 62, "01010108",
     MMTLS_DEC_OK},
    {"tcp unknown option ok", MMTLS_LINK_ETHERNET, "", f_eth_v4_syn, 62, "fe020101", MMTLS_DEC_OK},
};

static void test_bad_frames(void **state)
{
    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(bad_cases); i++) {
        const struct bad_case *bc = &bad_cases[i];
        struct mmtls_pkt pkt;
        size_t len, plen = strlen(bc->patch) / 2;
        uint8_t *b = load(bc->prefix, bc->hex, &len);
        enum mmtls_decode_event ev;

        print_message("case %s\n", bc->name);
        assert_true(bc->off + plen <= len);
        assert_int_equal(mmtls_hex_decode(bc->patch, plen * 2, b + bc->off, plen), 0);
        ev = mmtls_decode_frame(bc->linktype, b, len, &no_verify, &pkt);
        assert_string_equal(mmtls_decode_event_name(ev), mmtls_decode_event_name(bc->ev));
        if (ev == MMTLS_DEC_OK) {
            assert_true(pkt.payload + pkt.payload_len <= b + len);
        }
        /* and every prefix of the patched frame stays in bounds */
        for (size_t n = 0; n < len; n++) {
            uint8_t *t = dup_n(b, n);

            ev = mmtls_decode_frame(bc->linktype, t, n, &no_verify, &pkt);
            if (ev == MMTLS_DEC_OK) {
                assert_true(pkt.payload + pkt.payload_len <= t + n);
            } else if (ev == MMTLS_DEC_IP_FRAGMENT) {
                assert_true(pkt.frag_payload + pkt.frag_payload_len <= t + n);
            }
            free(t);
        }
        free(b);
    }
}

/* Malformed TCP options are read the way Linux's tcp_parse_options reads them, because the
 * receiver accepts the segment: a length below 2 or past the option area ends the walk (the
 * options before it count), an MSS or window scale of the wrong length is skipped.  Before,
 * such a segment was not decoded at all, and its bytes reached the receiver uninspected. */
static void test_tcp_options_malformed(void **state)
{
    static const struct {
        size_t off;
        const char *patch;
        bool bad;
        uint16_t mss;
        uint8_t wscale;
    } cases[] = {
        {54, "", false, 1460, 7},        /* MSS=1460,NOP,WScale=7,SAckOK,EOL */
        {55, "03", true, 0, 0xff},       /* MSS of length 3: skipped, then a length of 1 */
        {55, "00", true, 0, 0xff},       /* length 0: the walk ends */
        {55, "01", true, 0, 0xff},       /* length 1 */
        {55, "20", true, 0, 0xff},       /* past the option area */
        {60, "04", true, 1460, 0xff},    /* window scale of length 4: skipped */
        {62, "01010108", true, 1460, 7}, /* a kind without its length byte at the end */
        {54, "01010101", false, 0, 7},   /* NOPs instead of the MSS */
        {59, "030320", false, 1460, 14}, /* shift 32 read as 14 (RFC 7323 §2.3) */
    };

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(cases); i++) {
        struct mmtls_pkt pkt;
        size_t len, plen = strlen(cases[i].patch) / 2;
        uint8_t *b = load("", f_eth_v4_syn, &len);

        print_message("case %zu\n", i);
        assert_int_equal(mmtls_hex_decode(cases[i].patch, plen * 2, b + cases[i].off, plen), 0);
        assert_int_equal(mmtls_decode_frame(MMTLS_LINK_ETHERNET, b, len, &no_verify, &pkt),
                         MMTLS_DEC_OK);
        assert_int_equal(pkt.tcp_opt_bad, cases[i].bad);
        assert_int_equal(pkt.mss, cases[i].mss);
        assert_int_equal(pkt.wscale, cases[i].wscale);
        assert_int_equal(pkt.payload_len, 0);
        assert_int_equal(pkt.sport, 40000);
        free(b);
    }
}

/* ------------------------------------------------------------------------------------------ */

static void test_fragment_fields(void **state)
{
    struct mmtls_pkt pkt;
    size_t len;
    uint8_t *b;

    (void)state;
    /* IPv4: MF, offset 2 (16 bytes), id 0x4242 */
    b = load("",
             "45000024424220024006048e0a0000010a000002"
             "aa4d00004142434445464748494a4b4c",
             &len);
    assert_int_equal(mmtls_decode_frame(MMTLS_LINK_RAW, b, len, &verify, &pkt),
                     MMTLS_DEC_IP_FRAGMENT);
    assert_int_equal(pkt.frag_id, 0x4242);
    assert_int_equal(pkt.frag_off, 16);
    assert_true(pkt.frag_more);
    assert_ptr_equal(pkt.frag_payload, b + 20);
    assert_int_equal(pkt.frag_payload_len, 16);
    assert_int_equal(pkt.l4proto, 6);
    free(b);

    /* IPv6: Destination Options, then Fragment nh 6 offset 3 (24 bytes) M 1 id 0xabcdef01 */
    b = load("",
             "6000000000283c4020010db800000000000000000000000120010db8000000000000000000000002"
             "2c00010400000000"
             "06000019abcdef01"
             "45464748494a4b4c4d4e4f505152535455565758595a3031",
             &len);
    assert_int_equal(mmtls_decode_frame(MMTLS_LINK_RAW, b, len, &verify, &pkt),
                     MMTLS_DEC_IP_FRAGMENT);
    assert_int_equal(pkt.frag_id, 0xabcdef01);
    assert_int_equal(pkt.frag_off, 24);
    assert_true(pkt.frag_more);
    assert_ptr_equal(pkt.frag_payload, b + 56);
    assert_int_equal(pkt.frag_payload_len, 24);
    assert_int_equal(pkt.l4proto, 6);
    assert_int_equal(pkt.ip_version, 6);
    free(b);
}

static void test_tcp_options(void **state)
{
    struct mmtls_pkt pkt;
    size_t len;
    uint8_t *b = load("", f_eth_v4_syn, &len);

    (void)state;
    /* window scale 32 is clamped to 14 (RFC 7323 §2.3) */
    b[61] = 32;
    assert_int_equal(mmtls_decode_frame(MMTLS_LINK_ETHERNET, b, len, NULL, &pkt), MMTLS_DEC_OK);
    assert_int_equal(pkt.wscale, 14);
    /* window scale on a non-SYN segment is ignored; MSS is still reported */
    b[47] = MMTLS_TCP_ACK;
    assert_int_equal(mmtls_decode_frame(MMTLS_LINK_ETHERNET, b, len, NULL, &pkt), MMTLS_DEC_OK);
    assert_int_equal(pkt.wscale, 0xff);
    assert_int_equal(pkt.mss, 1460);
    assert_int_equal(pkt.tcp_flags, MMTLS_TCP_ACK);
    assert_int_equal(pkt.seq, 1000);
    assert_int_equal(pkt.ack, 0);
    assert_int_equal(pkt.window, 64240);
    /* the ECE/CWR bits are not reported in tcp_flags */
    b[47] = 0xc2;
    assert_int_equal(mmtls_decode_frame(MMTLS_LINK_ETHERNET, b, len, NULL, &pkt), MMTLS_DEC_OK);
    assert_int_equal(pkt.tcp_flags, MMTLS_TCP_SYN);
    free(b);
}

/* ------------------------------------------------------------------------------------------ */
/* Checksums: correct ones pass, broken ones are reported only when verification is asked for. */

struct csum_case {
    const char *name;
    int linktype;
    const char *hex;
    size_t off;
    uint8_t xor ;
    enum mmtls_decode_event ev;
};

static const struct csum_case csum_cases[] = {
    {"v4 header: ttl changed", MMTLS_LINK_ETHERNET, f_eth_v4_data, 22, 0x01,
     MMTLS_DEC_IPV4_BAD_CSUM},
    {"v4 header: checksum field", MMTLS_LINK_RAW, f_v4_opts, 10, 0x80, MMTLS_DEC_IPV4_BAD_CSUM},
    {"v4 header: option byte", MMTLS_LINK_RAW, f_v4_opts, 22, 0x01, MMTLS_DEC_IPV4_BAD_CSUM},
    {"v4 tcp: payload byte", MMTLS_LINK_ETHERNET, f_eth_v4_data, 58, 0x20, MMTLS_DEC_TCP_BAD_CSUM},
    {"v4 tcp: odd-length last byte", MMTLS_LINK_RAW, f_v4_opts, 50, 0x01, MMTLS_DEC_TCP_BAD_CSUM},
    {"v4 tcp: checksum field", MMTLS_LINK_RAW, f_raw_v4, 36, 0x01, MMTLS_DEC_TCP_BAD_CSUM},
    {"v6 tcp: payload byte", MMTLS_LINK_RAW, f_raw_v6, 63, 0x01, MMTLS_DEC_TCP_BAD_CSUM},
    {"v6 tcp: source address", MMTLS_LINK_RAW, f_raw_v6, 8, 0x01, MMTLS_DEC_TCP_BAD_CSUM},
    {"v6 tcp: routing final dst", MMTLS_LINK_RAW, f_v6_ext, 79, 0x01, MMTLS_DEC_TCP_BAD_CSUM},
    {"v6 tcp: ip dst ignored with routing", MMTLS_LINK_RAW, f_v6_ext, 39, 0x01, MMTLS_DEC_OK},
};

static void test_checksums(void **state)
{
    struct mmtls_decode_opts ip_only = {true, false}, tcp_only = {false, true};

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(csum_cases); i++) {
        const struct csum_case *cc = &csum_cases[i];
        struct mmtls_pkt pkt;
        size_t len;
        uint8_t *b = load("", cc->hex, &len);

        print_message("case %s\n", cc->name);
        assert_int_equal(mmtls_decode_frame(cc->linktype, b, len, &verify, &pkt), MMTLS_DEC_OK);
        b[cc->off] ^= cc->xor ;
        assert_int_equal(mmtls_decode_frame(cc->linktype, b, len, &verify, &pkt), cc->ev);
        assert_int_equal(mmtls_decode_frame(cc->linktype, b, len, &no_verify, &pkt), MMTLS_DEC_OK);
        if (cc->ev == MMTLS_DEC_IPV4_BAD_CSUM) {
            assert_int_equal(mmtls_decode_frame(cc->linktype, b, len, &tcp_only, &pkt),
                             MMTLS_DEC_OK);
            assert_int_equal(mmtls_decode_frame(cc->linktype, b, len, &ip_only, &pkt), cc->ev);
        } else if (cc->ev == MMTLS_DEC_TCP_BAD_CSUM) {
            assert_int_equal(mmtls_decode_frame(cc->linktype, b, len, &ip_only, &pkt),
                             MMTLS_DEC_OK);
            assert_int_equal(mmtls_decode_frame(cc->linktype, b, len, &tcp_only, &pkt), cc->ev);
        }
        free(b);
    }
}

/* ------------------------------------------------------------------------------------------ */

static void test_event_names(void **state)
{
    (void)state;
    for (int i = 0; i < MMTLS_DEC_EVENT_MAX; i++) {
        const char *n = mmtls_decode_event_name((enum mmtls_decode_event)i);

        assert_non_null(n);
        assert_string_not_equal(n, "unknown");
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(n, mmtls_decode_event_name((enum mmtls_decode_event)j));
        }
    }
    assert_string_equal(mmtls_decode_event_name(MMTLS_DEC_EVENT_MAX), "unknown");
    assert_string_equal(mmtls_decode_event_name((enum mmtls_decode_event) - 1), "unknown");
    assert_string_equal(mmtls_decode_event_name(MMTLS_DEC_IPV4_TRUNCATED), "ipv4_truncated");
}

/* Misaligned frames decode the same (no pointer casts of multi-byte fields). */
static void test_misaligned(void **state)
{
    size_t len;
    uint8_t *src = load("", f_eth_qinq_v6, &len);
    uint8_t *b = malloc(len + 8);

    (void)state;
    assert_non_null(b);
    for (size_t a = 0; a < 8; a++) {
        struct mmtls_pkt pkt;

        memcpy(b + a, src, len);
        assert_int_equal(mmtls_decode_frame(MMTLS_LINK_ETHERNET, b + a, len, &verify, &pkt),
                         MMTLS_DEC_OK);
        assert_int_equal(pkt.payload_len, 2);
        assert_int_equal(pkt.vlan[1], 20);
    }
    free(b);
    free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_frames),    cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_trailing_bytes),  cmocka_unit_test(test_decode_ip),
        cmocka_unit_test(test_bad_frames),      cmocka_unit_test(test_tcp_options_malformed),
        cmocka_unit_test(test_fragment_fields), cmocka_unit_test(test_tcp_options),
        cmocka_unit_test(test_checksums),       cmocka_unit_test(test_event_names),
        cmocka_unit_test(test_misaligned),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
