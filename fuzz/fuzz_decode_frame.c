/* libFuzzer target for the decoder and the defragmenter.
 *
 * Input: one selector byte, then a frame.  Bits 0-3 of the selector pick the link type from
 * the list below (modulo its length), bit 4 asks for IPv4 header checksum verification and
 * bit 5 for TCP checksum verification.  With bit 6 set, the rest is a list of frames, each
 * after a 2-byte big-endian length (at most 16), so that one input can carry all the
 * fragments of a datagram in any order; bit 7 sets the defragmenter's fail_open policy (evict
 * the oldest, or refuse, when full).  A frame that decodes to a fragment is fed to a
 * defragmenter kept across inputs (small limits, a 20 ms timeout, a clock that advances 1 ms per
 * input), so fragments of different inputs combine; a rebuilt datagram is decoded again.  Every
 * borrowed pointer the decoder hands back is checked to lie inside the bytes it was given.
 */
#include <stdlib.h>
#include <string.h>

#include "decode/decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int linktypes[] = {
    MMTLS_LINK_ETHERNET, MMTLS_LINK_LINUX_SLL, MMTLS_LINK_LINUX_SLL2, MMTLS_LINK_RAW,  12, 14,
    MMTLS_LINK_IPV4,     MMTLS_LINK_IPV6,      MMTLS_LINK_NULL,       MMTLS_LINK_LOOP,
};

static struct mmtls_defrag *defrag;
static uint64_t now_us;

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

static bool inside(const uint8_t *p, size_t n, const uint8_t *base, size_t len)
{
    return p >= base && n <= len && (size_t)(p - base) <= len - n;
}

static void check_pkt(enum mmtls_decode_event ev, const struct mmtls_pkt *pkt, const uint8_t *b,
                      size_t len)
{
    CHECK((unsigned)ev < MMTLS_DEC_EVENT_MAX);
    CHECK(mmtls_decode_event_name(ev) != NULL);
    if (ev == MMTLS_DEC_OK) {
        CHECK(inside(pkt->l3, pkt->l3_len, b, len));
        CHECK(inside(pkt->payload, pkt->payload_len, b, len));
        CHECK(inside(pkt->payload, pkt->payload_len, pkt->l3, pkt->l3_len));
        CHECK(pkt->ip_version == 4 || pkt->ip_version == 6);
        CHECK(pkt->l4proto == 6);
        CHECK(pkt->vlan_count <= MMTLS_DECODE_MAX_VLAN);
    } else if (ev == MMTLS_DEC_IP_FRAGMENT) {
        CHECK(inside(pkt->l3, pkt->l3_len, b, len));
        CHECK(inside(pkt->frag_payload, pkt->frag_payload_len, pkt->l3, pkt->l3_len));
    }
}

/* Decodes one frame from an exact-size copy (so that any over-read is caught). */
static void one_frame(int linktype, const uint8_t *data, size_t size,
                      const struct mmtls_decode_opts *opts)
{
    struct mmtls_pkt pkt;
    enum mmtls_decode_event ev;
    const uint8_t *dg;
    size_t dg_len;
    uint8_t *frame, *copy;
    int rc;

    frame = malloc(size ? size : 1);
    CHECK(frame != NULL);
    memcpy(frame, data, size);
    memset(&pkt, 0, sizeof(pkt));
    pkt.ts_us = now_us;
    ev = mmtls_decode_frame(linktype, frame, size, opts, &pkt);
    check_pkt(ev, &pkt, frame, size);
    CHECK(pkt.ts_us == now_us);
    if (ev == MMTLS_DEC_IP_FRAGMENT) {
        rc = mmtls_defrag_feed(defrag, &pkt, now_us, &dg, &dg_len);
        CHECK(rc <= MMTLS_AGAIN);
        /* the caps hold whatever the policy (8 datagrams, 256 KiB) */
        CHECK(mmtls_defrag_stats(defrag)->datagrams <= 8);
        CHECK(mmtls_defrag_stats(defrag)->mem_used <= 256 * 1024);
        if (rc == 0) {
            CHECK(dg != NULL && dg_len > 0 && dg_len <= 65535 + 40);
            copy = malloc(dg_len);
            CHECK(copy != NULL);
            memcpy(copy, dg, dg_len);
            ev = mmtls_decode_ip(copy, dg_len, opts, &pkt);
            check_pkt(ev, &pkt, copy, dg_len);
            /* the rebuilt datagram is a complete IP datagram of exactly that length */
            if (ev == MMTLS_DEC_OK || ev == MMTLS_DEC_IP_FRAGMENT) {
                CHECK(pkt.l3_len == dg_len);
            }
            free(copy);
        }
    }
    free(frame);
    now_us++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mmtls_decode_opts opts;
    int linktype;

    if (size < 1) {
        return 0;
    }
    if (defrag == NULL) {
        /* small limits so that eviction, timeouts and the caps are reached */
        struct mmtls_defrag_opts o = {8, 16, 20, 256 * 1024, false};

        if (mmtls_defrag_new(&defrag, &o) != 0) {
            abort();
        }
    }
    now_us += 1000;
    mmtls_defrag_set_fail_open(defrag, (data[0] & 0x80) != 0);
    linktype = linktypes[(data[0] & 0x0f) % (sizeof(linktypes) / sizeof(linktypes[0]))];
    opts.verify_ip_csum = (data[0] & 0x10) != 0;
    opts.verify_tcp_csum = (data[0] & 0x20) != 0;
    if ((data[0] & 0x40) == 0) {
        one_frame(linktype, data + 1, size - 1, &opts);
        return 0;
    }
    data++;
    size--;
    for (unsigned n = 0; n < 16 && size >= 2; n++) {
        size_t len = MMTLS_MIN((size_t)mmtls_be16(data), size - 2);

        one_frame(linktype, data + 2, len, &opts);
        data += 2 + len;
        size -= 2 + len;
    }
    return 0;
}
