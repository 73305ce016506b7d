/* Unit tests for the checksum state of inline frames (mmtls_decode_vnet_csum) and for the TCP
 * checksum verification the inline mode asks for when a frame's checksums are complete:
 *   - complete and good: decoded;
 *   - complete and bad: MMTLS_DEC_TCP_BAD_CSUM (the receiver drops it: never reassembled);
 *   - partial (offloaded, VIRTIO_NET_HDR_F_NEEDS_CSUM): the field holds only the pseudo-header
 *     sum, which verification would reject: such frames are classified PARTIAL and not verified.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "decode/decode.h"

/* virtio_net_hdr cases (10 bytes: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset) */
static const struct {
    const char *name;
    const char *hex;
    size_t len;
    enum mmtls_decode_csum want;
} vnet_cases[] = {
    /* flags 0, no GSO: the sender computed every checksum */
    {"none", "00000000000000000000", 10, MMTLS_CSUM_COMPLETE},
    /* flags NEEDS_CSUM, csum_start 34 csum_offset 16: a locally sent TCP segment */
    {"needs_csum", "01000000000022001000", 10, MMTLS_CSUM_PARTIAL},
    /* flags DATA_VALID: verified by the device or the kernel */
    {"data_valid", "02000000000000000000", 10, MMTLS_CSUM_VALID},
    /* flags NEEDS_CSUM|DATA_VALID: NEEDS_CSUM wins */
    {"both", "03000000000022001000", 10, MMTLS_CSUM_PARTIAL},
    /* flags 0, gso_type TCPV4 (1), hdr_len 66, gso_size 1448 (little-endian): a GSO frame is never
       complete */
    {"gso", "00014200a80500000000", 10, MMTLS_CSUM_PARTIAL},
    /* shorter than a virtio_net_hdr */
    {"short", "000000000000000000", 9, MMTLS_CSUM_UNKNOWN},
};

/* Ethernet + IPv4 + TCP 443 > 40000 seq 5000 ack 1001 flags PA win 501, payload "hello",
 * with the TCP checksum field given separately (offset 14 + 20 + 16 = 50). */
static const char frame_hex[] =
    /* Ethernet 66:77:88:99:aa:bb > 00:11:22:33:44:55 type 0x0800 */
    "00112233445566778899aabb0800"
    /* IPv4 ihl 5 len 45 id 1 flags DF ttl 64 proto 6 csum 0x26c8 10.0.0.1 > 10.0.0.2 */
    "4500002d00014000400626c80a0000010a000002"
    /* TCP 443 > 40000 seq 5000 ack 1001 off 5 flags PA win 501 csum (below) urg 0 */
    "01bb9c4000001388000003e9501801f500000000"
    /* payload b'hello' */
    "68656c6c6f";
#define CSUM_AT 50

static const struct {
    const char *name;
    uint16_t csum;
    bool verify;
    enum mmtls_decode_event want;
} csum_cases[] = {
    /* the full checksum (RFC 9293 §3.1), verified: decoded */
    {"complete good", 0xa091, true, MMTLS_DEC_OK},
    /* a wrong checksum, verified: rejected */
    {"complete bad", 0xa092, true, MMTLS_DEC_TCP_BAD_CSUM},
    /* an offloaded frame: the field holds the pseudo-header sum (0x1422), which verification
     * rejects; the engine does not verify PARTIAL frames, so it is decoded */
    {"partial verified", 0x1422, true, MMTLS_DEC_TCP_BAD_CSUM},
    {"partial skipped", 0x1422, false, MMTLS_DEC_OK},
    /* a bad checksum when verification is off (offline default): decoded */
    {"bad unverified", 0xdead, false, MMTLS_DEC_OK},
};

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = 0;

    for (; h[0] != '\0' && h[1] != '\0' && n < cap; h += 2) {
        char b[3] = {h[0], h[1], 0};
        out[n++] = (uint8_t)strtoul(b, NULL, 16);
    }
    return n;
}

static void test_vnet_csum(void **state)
{
    uint8_t v[16];

    (void)state;
    for (size_t i = 0; i < sizeof(vnet_cases) / sizeof(vnet_cases[0]); i++) {
        size_t n = unhex(vnet_cases[i].hex, v, sizeof(v));
        assert_int_equal(n, vnet_cases[i].len);
        if (mmtls_decode_vnet_csum(v, n) != vnet_cases[i].want) {
            fail_msg("case %s", vnet_cases[i].name);
        }
        /* every shorter prefix is UNKNOWN */
        for (size_t k = 0; k < n && k < MMTLS_VNET_HDR_LEN; k++) {
            assert_int_equal(mmtls_decode_vnet_csum(v, k), MMTLS_CSUM_UNKNOWN);
        }
    }
    assert_int_equal(mmtls_decode_vnet_csum(NULL, 10), MMTLS_CSUM_UNKNOWN);
}

static void test_tcp_csum(void **state)
{
    uint8_t buf[128];
    size_t n = unhex(frame_hex, buf, sizeof(buf));

    (void)state;
    for (size_t i = 0; i < sizeof(csum_cases) / sizeof(csum_cases[0]); i++) {
        struct mmtls_decode_opts o = {.verify_ip_csum = csum_cases[i].verify,
                                      .verify_tcp_csum = csum_cases[i].verify};
        struct mmtls_pkt pkt;
        uint8_t *f = malloc(n);
        enum mmtls_decode_event ev;

        assert_non_null(f);
        memcpy(f, buf, n);
        f[CSUM_AT] = (uint8_t)(csum_cases[i].csum >> 8);
        f[CSUM_AT + 1] = (uint8_t)csum_cases[i].csum;
        memset(&pkt, 0, sizeof(pkt));
        ev = mmtls_decode_frame(MMTLS_LINK_ETHERNET, f, n, &o, &pkt);
        if (ev != csum_cases[i].want) {
            fail_msg("case %s: %s", csum_cases[i].name, mmtls_decode_event_name(ev));
        }
        if (ev == MMTLS_DEC_OK) {
            assert_int_equal(pkt.payload_len, 5);
        }
        /* a flipped payload bit is caught only when verifying */
        if (csum_cases[i].csum == 0xa091) {
            f[n - 1] ^= 1;
            memset(&pkt, 0, sizeof(pkt));
            assert_int_equal(mmtls_decode_frame(MMTLS_LINK_ETHERNET, f, n, &o, &pkt),
                             MMTLS_DEC_TCP_BAD_CSUM);
        }
        free(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vnet_csum),
        cmocka_unit_test(test_tcp_csum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
