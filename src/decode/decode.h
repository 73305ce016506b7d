/* decode — L2/L3/L4 header decoding (pure functions over bounded input) and IP fragment
 * reassembly.  Knows nothing about flows or TLS.
 */
#ifndef MMTLS_DECODE_H
#define MMTLS_DECODE_H

#include "util/util.h"

/* Link types: pcap LINKTYPE_* values (https://www.tcpdump.org/linktypes.html). */
enum mmtls_linktype {
    MMTLS_LINK_NULL = 0, /* BSD loopback: 4-byte host-order AF_ value */
    MMTLS_LINK_ETHERNET = 1,
    MMTLS_LINK_RAW = 101,  /* raw IPv4/IPv6, version from the first nibble */
    MMTLS_LINK_LOOP = 108, /* OpenBSD loopback: 4-byte network-order AF_ value */
    MMTLS_LINK_LINUX_SLL = 113,
    MMTLS_LINK_IPV4 = 228,
    MMTLS_LINK_IPV6 = 229,
    MMTLS_LINK_LINUX_SLL2 = 276,
};

#define MMTLS_DECODE_MAX_VLAN 2     /* 802.1Q + QinQ; deeper stacks are counted as malformed */
#define MMTLS_DECODE_MAX_IPV6_EXT 8 /* extension headers walked before giving up */

/* Decoder events: each is counted by the caller (engine stats) and never aborts anything. */
enum mmtls_decode_event {
    MMTLS_DEC_OK = 0,
    MMTLS_DEC_L2_TRUNCATED,
    MMTLS_DEC_L2_UNSUPPORTED, /* unknown link type or ethertype (not IP) */
    MMTLS_DEC_VLAN_TOO_DEEP,
    MMTLS_DEC_IPV4_TRUNCATED,
    MMTLS_DEC_IPV4_BAD_HLEN,
    MMTLS_DEC_IPV4_BAD_LEN,  /* total length smaller than header or larger than captured */
    MMTLS_DEC_IPV4_BAD_CSUM, /* only when checksum validation is asked for */
    MMTLS_DEC_IPV4_BAD_OPTIONS,
    MMTLS_DEC_IPV6_TRUNCATED,
    MMTLS_DEC_IPV6_BAD_LEN,
    MMTLS_DEC_IPV6_EXT_TOO_DEEP,
    MMTLS_DEC_IPV6_BAD_EXT,
    MMTLS_DEC_IP_FRAGMENT, /* not an error: a fragment to hand to the defragmenter */
    MMTLS_DEC_NOT_TCP,     /* valid IP carrying another protocol */
    MMTLS_DEC_TCP_TRUNCATED,
    MMTLS_DEC_TCP_BAD_HLEN,
    MMTLS_DEC_TCP_BAD_OPTIONS,
    MMTLS_DEC_TCP_BAD_CSUM, /* only when checksum validation is asked for */
    MMTLS_DEC_EVENT_MAX
};

/* Static name of a decoder event ("ipv4_truncated", ...). */
const char *mmtls_decode_event_name(enum mmtls_decode_event ev);

/* The decoded view of one packet.  All pointers borrow the packet bytes. */
struct mmtls_pkt {
    uint64_t ts_us;
    /* L2 */
    uint16_t vlan[MMTLS_DECODE_MAX_VLAN];
    uint8_t vlan_count;
    /* L3 */
    uint8_t ip_version;       /* 4 or 6 */
    uint8_t ttl;              /* TTL / hop limit */
    uint8_t l4proto;          /* after IPv6 extension headers */
    uint8_t src[16], dst[16]; /* IPv4 in the first 4 bytes, rest zero */
    const uint8_t *l3;        /* borrowed: start of the IP header */
    size_t l3_len;            /* IP datagram length (total length, trailing L2 padding excluded) */
    /* fragments (valid when the decoder returns MMTLS_DEC_IP_FRAGMENT) */
    uint32_t frag_id;            /* IPv4 id or IPv6 fragment identification */
    uint32_t frag_off;           /* byte offset of this fragment's payload */
    bool frag_more;              /* MF bit */
    const uint8_t *frag_payload; /* borrowed */
    size_t frag_payload_len;
    /* L4 (TCP) */
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t tcp_flags; /* MMTLS_TCP_* */
    uint16_t window;
    uint8_t wscale;         /* window-scale option value if present on SYN, else 0xff */
    uint16_t mss;           /* MSS option if present, else 0 */
    bool tcp_opt_bad;       /* a malformed option (skipped as Linux does; decode_tcp) */
    const uint8_t *l4;      /* borrowed: start of the TCP header */
    const uint8_t *payload; /* borrowed */
    size_t payload_len;
};

#define MMTLS_TCP_FIN 0x01
#define MMTLS_TCP_SYN 0x02
#define MMTLS_TCP_RST 0x04
#define MMTLS_TCP_PSH 0x08
#define MMTLS_TCP_ACK 0x10
#define MMTLS_TCP_URG 0x20

struct mmtls_decode_opts {
    bool verify_ip_csum;  /* count and reject IPv4 header checksum failures */
    bool verify_tcp_csum; /* count and reject TCP checksum failures */
};

/* How far a frame's checksums were computed when the kernel handed it over with
 * PACKET_VNET_HDR (struct virtio_net_hdr, include/uapi/linux/virtio_net.h: flags, gso_type,
 * hdr_len, gso_size, csum_start, csum_offset).  Locally sent TCP leaves the checksum to the
 * device (VIRTIO_NET_HDR_F_NEEDS_CSUM: the field holds only the pseudo-header sum); a frame
 * whose checksum a device verified says VIRTIO_NET_HDR_F_DATA_VALID; otherwise every checksum
 * is in the frame and can be verified, as the receiver will. */
enum mmtls_decode_csum {
    MMTLS_CSUM_UNKNOWN = 0, /* no virtio_net_hdr: the frame may carry unfinished checksums */
    MMTLS_CSUM_COMPLETE,    /* computed by the sender: verify it */
    MMTLS_CSUM_PARTIAL,     /* NEEDS_CSUM: to be finished on the way out, cannot be verified */
    MMTLS_CSUM_VALID,       /* DATA_VALID: already verified below us */
};

#define MMTLS_VNET_HDR_LEN 10
#define MMTLS_VNET_F_NEEDS_CSUM 1
#define MMTLS_VNET_F_DATA_VALID 2

/* The checksum state of a frame from its virtio_net_hdr (len bytes at vnet; NULL or shorter
 * than MMTLS_VNET_HDR_LEN: UNKNOWN).  A GSO frame (gso_type != 0) is PARTIAL whatever its
 * flags: its segments' checksums do not exist yet.  Pure. */
enum mmtls_decode_csum mmtls_decode_vnet_csum(const uint8_t *vnet, size_t len);

/* Decodes a frame of the given link type down to TCP.  Returns MMTLS_DEC_OK with *pkt filled
 * for a TCP segment, MMTLS_DEC_IP_FRAGMENT for a fragment (frag_* fields valid), or the event
 * that stopped decoding.  Pure: no allocation, no global state. */
enum mmtls_decode_event mmtls_decode_frame(int linktype, const uint8_t *data, size_t len,
                                           const struct mmtls_decode_opts *opts,
                                           struct mmtls_pkt *pkt);

/* Decodes an IP datagram (version from the first nibble), e.g. one rebuilt by the
 * defragmenter.  Same contract as mmtls_decode_frame; L2 fields are left untouched. */
enum mmtls_decode_event mmtls_decode_ip(const uint8_t *data, size_t len,
                                        const struct mmtls_decode_opts *opts,
                                        struct mmtls_pkt *pkt);

/* ------------------------------------------------------------------------------------------ */
/* IP fragment reassembly (RFC 791, RFC 8200 §4.5), bounded: a fixed number of datagrams in     */
/* flight, a maximum datagram size, a timeout, and a memory cap.  Overlapping fragments whose   */
/* bytes differ are counted and the datagram is dropped (RFC 5722 for IPv6).                   */

struct mmtls_defrag;

struct mmtls_defrag_opts {
    uint32_t max_datagrams; /* in flight, dead ones included (decode_defrag.c) */
    uint32_t max_frags_per_datagram;
    uint32_t timeout_ms; /* from the first fragment; a dead datagram stays as long again */
    size_t memcap;       /* bytes of fragment data held */
    /* false (fail closed): a full table refuses new datagrams, a datagram over
     * max_frags_per_datagram is made dead.  true: the oldest is evicted, the datagram forgotten
     * (its later fragments start a new one). */
    bool fail_open;
};

struct mmtls_defrag_stats {
    uint64_t fragments, reassembled, timeouts, evicted, overlaps, too_big, memcap_drops,
        bad_fragments;
    uint64_t too_many_frags; /* datagrams over max_frags_per_datagram */
    uint64_t table_full;     /* new datagrams refused: the table was full (not fail_open) */
    uint64_t killed;         /* datagrams made dead (timeout, overlap, malformed, too big) */
    uint64_t dead_drops;     /* fragments refused because their datagram is dead */
    uint64_t datagrams;      /* gauge: datagrams in the table, dead ones included */
    uint64_t mem_used;       /* gauge: bytes charged to memcap */
};

MMTLS_MUST_USE int mmtls_defrag_new(struct mmtls_defrag **out, const struct mmtls_defrag_opts *o);
void mmtls_defrag_free(struct mmtls_defrag *d);

/* Feeds a fragment (pkt as returned with MMTLS_DEC_IP_FRAGMENT).  Returns 0 and sets *dgram and
 * *dgram_len to the rebuilt IP datagram (header included; borrowed until the next call into d)
 * when the datagram is complete; MMTLS_AGAIN when the fragment is kept and more are needed.
 * Otherwise the fragment was not kept (counted in stats), and inline the caller must not
 * forward it unless it fails open:
 *   MMTLS_E_MALFORMED  a peer fault: a bad fragment, a conflicting overlap, a datagram longer
 *                      than 65535 bytes, or a fragment of a dead datagram (always dropped);
 *   MMTLS_E_LIMIT, MMTLS_E_MEMCAP, MMTLS_E_NOMEM  a resource cap: table full,
 *                      max_frags_per_datagram, memcap (the exception policy applies). */
MMTLS_MUST_USE int mmtls_defrag_feed(struct mmtls_defrag *d, const struct mmtls_pkt *pkt,
                                     uint64_t now_us, const uint8_t **dgram, size_t *dgram_len);
/* Sets opts.fail_open (applies to the next new datagram). */
void mmtls_defrag_set_fail_open(struct mmtls_defrag *d, bool fail_open);
/* Datagrams older than the timeout become dead; dead ones older than it go. */
void mmtls_defrag_expire(struct mmtls_defrag *d, uint64_t now_us);
const struct mmtls_defrag_stats *mmtls_defrag_stats(const struct mmtls_defrag *d);

#endif
