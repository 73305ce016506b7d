/* decode — L2/L3/L4 header decoding.
 *
 * Every function here is pure: it reads borrowed bytes through explicit length checks written
 * as `need > len`, fills a struct mmtls_pkt and returns a decoder event.  Multi-byte fields are
 * read with byte loads (mmtls_be16/32), never through a cast pointer, so alignment of the frame
 * does not matter.  Every loop whose count comes from the packet is capped.
 */
#include "decode/decode.h"

#define ETH_HLEN 14
#define SLL_HLEN 16
#define SLL2_HLEN 20
#define NULL_HLEN 4
#define VLAN_TAG_LEN 4

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100     /* IEEE 802.1Q */
#define ETHERTYPE_QINQ 0x88a8     /* IEEE 802.1ad service tag */
#define ETHERTYPE_QINQ_OLD 0x9100 /* pre-standard QinQ */

#define IPV4_HLEN_MIN 20
#define IPV6_HLEN 40
#define TCP_HLEN_MIN 20

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_TCP_ 6
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_ESP_ 50
#define IPPROTO_AH_ 51
#define IPPROTO_NONE_ 59
#define IPPROTO_DSTOPTS_ 60

/* Address family values found in DLT_NULL / DLT_LOOP headers (BSD AF_INET, AF_INET6 of the
 * various BSDs: NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30). */
#define BSD_AF_INET 2
#define BSD_AF_INET6_BSD 24
#define BSD_AF_INET6_FREEBSD 28
#define BSD_AF_INET6_DARWIN 30

static const char *const event_names[MMTLS_DEC_EVENT_MAX] = {
    [MMTLS_DEC_OK] = "ok",
    [MMTLS_DEC_L2_TRUNCATED] = "l2_truncated",
    [MMTLS_DEC_L2_UNSUPPORTED] = "l2_unsupported",
    [MMTLS_DEC_VLAN_TOO_DEEP] = "vlan_too_deep",
    [MMTLS_DEC_IPV4_TRUNCATED] = "ipv4_truncated",
    [MMTLS_DEC_IPV4_BAD_HLEN] = "ipv4_bad_hlen",
    [MMTLS_DEC_IPV4_BAD_LEN] = "ipv4_bad_len",
    [MMTLS_DEC_IPV4_BAD_CSUM] = "ipv4_bad_csum",
    [MMTLS_DEC_IPV4_BAD_OPTIONS] = "ipv4_bad_options",
    [MMTLS_DEC_IPV6_TRUNCATED] = "ipv6_truncated",
    [MMTLS_DEC_IPV6_BAD_LEN] = "ipv6_bad_len",
    [MMTLS_DEC_IPV6_EXT_TOO_DEEP] = "ipv6_ext_too_deep",
    [MMTLS_DEC_IPV6_BAD_EXT] = "ipv6_bad_ext",
    [MMTLS_DEC_IP_FRAGMENT] = "ip_fragment",
    [MMTLS_DEC_NOT_TCP] = "not_tcp",
    [MMTLS_DEC_TCP_TRUNCATED] = "tcp_truncated",
    [MMTLS_DEC_TCP_BAD_HLEN] = "tcp_bad_hlen",
    [MMTLS_DEC_TCP_BAD_OPTIONS] = "tcp_bad_options",
    [MMTLS_DEC_TCP_BAD_CSUM] = "tcp_bad_csum",
};

const char *mmtls_decode_event_name(enum mmtls_decode_event ev)
{
    if ((unsigned)ev >= MMTLS_DEC_EVENT_MAX || event_names[ev] == NULL) {
        return "unknown";
    }
    return event_names[ev];
}

enum mmtls_decode_csum mmtls_decode_vnet_csum(const uint8_t *vnet, size_t len)
{
    if (vnet == NULL || MMTLS_VNET_HDR_LEN > len) {
        return MMTLS_CSUM_UNKNOWN;
    }
    /* NEEDS_CSUM wins over DATA_VALID (a forwarded GRO frame may carry both); GSO frames are
     * split (and their checksums computed) on the way out. */
    if ((vnet[0] & MMTLS_VNET_F_NEEDS_CSUM) || vnet[1] != 0) {
        return MMTLS_CSUM_PARTIAL;
    }
    if (vnet[0] & MMTLS_VNET_F_DATA_VALID) {
        return MMTLS_CSUM_VALID;
    }
    return MMTLS_CSUM_COMPLETE;
}

/* ------------------------------------------------------------------------------------------ */
/* TCP (RFC 9293 §3.1)                                                                          */

/* Walks the TCP options (RFC 9293 §3.1 "Options"): kind 0 ends the list, kind 1 is one byte of
 * padding, every other kind carries a length byte that counts kind and length.  Malformed
 * options are read the way the receivers read them, since the middlebox must inspect every
 * segment they accept: Linux (tcp_parse_options) stops at a length below 2 or past the option
 * area and ignores MSS or window scale of the wrong length, and accepts the segment either
 * way; so do we, and tcp_opt_bad says so (counted as tcp_bad_options).  The walk is bounded by
 * the option area (at most 40 bytes). */
static void tcp_options(const uint8_t *p, size_t len, struct mmtls_pkt *pkt)
{
    size_t off = 0;

    while (off < len) {
        uint8_t kind = p[off];
        uint8_t olen;

        if (kind == 0) {
            break; /* End of Option List: the rest is padding */
        }
        if (kind == 1) {
            off++;
            continue;
        }
        if (2 > len - off) {
            pkt->tcp_opt_bad = true;
            return;
        }
        olen = p[off + 1];
        if (olen < 2 || olen > len - off) {
            pkt->tcp_opt_bad = true;
            return;
        }
        if (kind == 2) {
            /* RFC 9293 §3.7.1: MSS is kind 2, length 4 */
            if (olen == 4) {
                pkt->mss = mmtls_be16(p + off + 2);
            } else {
                pkt->tcp_opt_bad = true;
            }
        } else if (kind == 3) {
            /* RFC 7323 §2.2: window scale is kind 3, length 3, meaningful on SYN only */
            if (olen != 3) {
                pkt->tcp_opt_bad = true;
            } else if (pkt->tcp_flags & MMTLS_TCP_SYN) {
                /* RFC 7323 §2.3: a shift above 14 is treated as 14 */
                pkt->wscale = MMTLS_MIN(p[off + 2], 14);
            }
        }
        off += olen;
    }
}

/* Verifies the TCP checksum over the pseudo-header (RFC 9293 §3.1 for IPv4, RFC 8200 §8.1 for
 * IPv6, whose destination is the final one when a routing header is present). */
static bool tcp_csum_ok(const struct mmtls_pkt *pkt, const uint8_t *final_dst, const uint8_t *seg,
                        size_t len)
{
    uint32_t sum = 0;
    size_t alen = pkt->ip_version == 4 ? 4 : 16;

    sum = mmtls_csum_add(sum, pkt->src, alen);
    sum = mmtls_csum_add(sum, final_dst, alen);
    sum += IPPROTO_TCP_;
    sum += (uint32_t)(len >> 16) + (uint32_t)(len & 0xffff);
    sum = mmtls_csum_add(sum, seg, len);
    return mmtls_csum_fold(sum) == 0xffff;
}

static enum mmtls_decode_event decode_tcp(const uint8_t *p, size_t len,
                                          const struct mmtls_decode_opts *opts,
                                          const uint8_t *final_dst, struct mmtls_pkt *pkt)
{
    size_t hlen;

    if (TCP_HLEN_MIN > len) {
        return MMTLS_DEC_TCP_TRUNCATED;
    }
    hlen = (size_t)(p[12] >> 4) * 4;
    /* RFC 9293 §3.1: the data offset counts 32-bit words, at least 5; the header cannot run
     * past the IP payload (whose length was already checked against the captured bytes). */
    if (hlen < TCP_HLEN_MIN || hlen > len) {
        return MMTLS_DEC_TCP_BAD_HLEN;
    }
    pkt->l4 = p;
    pkt->sport = mmtls_be16(p);
    pkt->dport = mmtls_be16(p + 2);
    pkt->seq = mmtls_be32(p + 4);
    pkt->ack = mmtls_be32(p + 8);
    pkt->tcp_flags = p[13] & 0x3f;
    pkt->window = mmtls_be16(p + 14);
    tcp_options(p + TCP_HLEN_MIN, hlen - TCP_HLEN_MIN, pkt);
    if (opts != NULL && opts->verify_tcp_csum && !tcp_csum_ok(pkt, final_dst, p, len)) {
        return MMTLS_DEC_TCP_BAD_CSUM;
    }
    pkt->payload = p + hlen;
    pkt->payload_len = len - hlen;
    return MMTLS_DEC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* IPv4 (RFC 791)                                                                              */

/* RFC 791 §3.1 "Options": type 0 (End of Option List) ends the list, type 1 (No Operation) is
 * one byte, every other option has a length octet counting type and length, at least 2, that
 * must stay inside the header.  Bounded by the option area (at most 40 bytes). */
static bool ipv4_options_ok(const uint8_t *p, size_t len)
{
    size_t off = 0;

    while (off < len) {
        uint8_t type = p[off];
        uint8_t olen;

        if (type == 0) {
            return true;
        }
        if (type == 1) {
            off++;
            continue;
        }
        if (2 > len - off) {
            return false;
        }
        olen = p[off + 1];
        if (olen < 2 || olen > len - off) {
            return false;
        }
        off += olen;
    }
    return true;
}

static enum mmtls_decode_event decode_ipv4(const uint8_t *p, size_t len,
                                           const struct mmtls_decode_opts *opts,
                                           struct mmtls_pkt *pkt)
{
    size_t hlen, tot;
    uint16_t frag;

    if (IPV4_HLEN_MIN > len) {
        return MMTLS_DEC_IPV4_TRUNCATED;
    }
    /* A version other than 4 where IPv4 was announced (ethertype, link type) makes the header
     * unusable: counted with the header-length errors. */
    if ((p[0] >> 4) != 4) {
        return MMTLS_DEC_IPV4_BAD_HLEN;
    }
    hlen = (size_t)(p[0] & 0x0f) * 4;
    if (hlen < IPV4_HLEN_MIN) {
        return MMTLS_DEC_IPV4_BAD_HLEN;
    }
    if (hlen > len) {
        return MMTLS_DEC_IPV4_TRUNCATED;
    }
    /* RFC 791 §3.1: total length counts header and data.  Bytes past it (Ethernet padding of
     * short frames) are ignored; a total length past the captured bytes is an error. */
    tot = mmtls_be16(p + 2);
    if (tot < hlen || tot > len) {
        return MMTLS_DEC_IPV4_BAD_LEN;
    }
    if (!ipv4_options_ok(p + IPV4_HLEN_MIN, hlen - IPV4_HLEN_MIN)) {
        return MMTLS_DEC_IPV4_BAD_OPTIONS;
    }
    if (opts != NULL && opts->verify_ip_csum &&
        mmtls_csum_fold(mmtls_csum_add(0, p, hlen)) != 0xffff) {
        return MMTLS_DEC_IPV4_BAD_CSUM;
    }

    pkt->ip_version = 4;
    pkt->ttl = p[8];
    pkt->l4proto = p[9];
    memset(pkt->src, 0, sizeof(pkt->src));
    memset(pkt->dst, 0, sizeof(pkt->dst));
    memcpy(pkt->src, p + 12, 4);
    memcpy(pkt->dst, p + 16, 4);
    pkt->l3 = p;
    pkt->l3_len = tot;

    /* RFC 791 §3.2: a fragment has MF set or a non-zero offset (in 8-byte units). */
    frag = mmtls_be16(p + 6);
    if ((frag & 0x2000) != 0 || (frag & 0x1fff) != 0) {
        pkt->frag_id = mmtls_be16(p + 4);
        pkt->frag_off = (uint32_t)(frag & 0x1fff) * 8;
        pkt->frag_more = (frag & 0x2000) != 0;
        pkt->frag_payload = p + hlen;
        pkt->frag_payload_len = tot - hlen;
        return MMTLS_DEC_IP_FRAGMENT;
    }
    if (pkt->l4proto != IPPROTO_TCP_) {
        return MMTLS_DEC_NOT_TCP;
    }
    return decode_tcp(p + hlen, tot - hlen, opts, pkt->dst, pkt);
}

/* ------------------------------------------------------------------------------------------ */
/* IPv6 (RFC 8200)                                                                             */

/* RFC 8200 §4.2: Hop-by-Hop and Destination Options carry TLV options; Pad1 (type 0) is one
 * byte, every other option is type, length, data and must stay inside the header. */
static bool ipv6_tlv_ok(const uint8_t *p, size_t len)
{
    size_t off = 0;

    while (off < len) {
        if (p[off] == 0) {
            off++;
            continue;
        }
        if (2 > len - off || p[off + 1] > len - off - 2) {
            return false;
        }
        off += 2 + (size_t)p[off + 1];
    }
    return true;
}

/* RFC 8200 §8.1: with a Routing header the pseudo-header holds the final destination.  Type 0
 * (deprecated by RFC 5095) lists it last; type 2 (RFC 6275 §6.4) carries exactly one address;
 * type 4 (SRH, RFC 8754 §2) keeps it as Segment List[0].  Other types: the IPv6 destination. */
static const uint8_t *routing_final_dst(const uint8_t *rh, size_t rlen, const uint8_t *dst)
{
    uint8_t type = rh[2], segs_left = rh[3];

    if (segs_left == 0 || rlen < 8 + 16) {
        return dst;
    }
    if (type == 0) {
        size_t n = (rlen - 8) / 16;
        return rh + 8 + (n - 1) * 16;
    }
    if (type == 2 || type == 4) {
        return rh + 8;
    }
    return dst;
}

static enum mmtls_decode_event decode_ipv6(const uint8_t *p, size_t len,
                                           const struct mmtls_decode_opts *opts,
                                           struct mmtls_pkt *pkt)
{
    size_t tot, off;
    uint8_t nh;
    const uint8_t *final_dst;

    if (IPV6_HLEN > len) {
        return MMTLS_DEC_IPV6_TRUNCATED;
    }
    /* A version other than 6 where IPv6 was announced: counted as a bad length (the header is
     * not an IPv6 header at all). */
    if ((p[0] >> 4) != 6) {
        return MMTLS_DEC_IPV6_BAD_LEN;
    }
    /* RFC 8200 §3: payload length counts everything after the fixed header.  Jumbograms
     * (RFC 2675, payload length 0 with a Jumbo option) are not supported: such a packet is
     * decoded as a 40-byte datagram and its Hop-by-Hop header is found to overrun it. */
    tot = IPV6_HLEN + (size_t)mmtls_be16(p + 4);
    if (tot > len) {
        return MMTLS_DEC_IPV6_BAD_LEN;
    }
    pkt->ip_version = 6;
    pkt->ttl = p[7];
    memcpy(pkt->src, p + 8, 16);
    memcpy(pkt->dst, p + 24, 16);
    pkt->l3 = p;
    pkt->l3_len = tot;
    final_dst = pkt->dst;

    nh = p[6];
    off = IPV6_HLEN;
    for (unsigned n = 0;; n++) {
        const uint8_t *h = p + off;
        size_t left = tot - off, hlen;

        pkt->l4proto = nh;
        switch (nh) {
        case IPPROTO_HOPOPTS_:
        case IPPROTO_ROUTING_:
        case IPPROTO_DSTOPTS_:
        case IPPROTO_AH_:
        case IPPROTO_FRAGMENT_: break;
        case IPPROTO_TCP_: return decode_tcp(h, left, opts, final_dst, pkt);
        /* ESP (RFC 4303): the rest is encrypted.  No Next Header (RFC 8200 §4.7). */
        case IPPROTO_ESP_:
        case IPPROTO_NONE_: return MMTLS_DEC_NOT_TCP;
        default:
            /* Any other upper layer, or an extension we do not walk (Mobility, HIP, Shim6). */
            return MMTLS_DEC_NOT_TCP;
        }
        if (n >= MMTLS_DECODE_MAX_IPV6_EXT) {
            return MMTLS_DEC_IPV6_EXT_TOO_DEEP;
        }
        /* RFC 8200 §4.1: Hop-by-Hop Options only immediately after the IPv6 header. */
        if (nh == IPPROTO_HOPOPTS_ && off != IPV6_HLEN) {
            return MMTLS_DEC_IPV6_BAD_EXT;
        }
        if (2 > left) {
            return MMTLS_DEC_IPV6_BAD_EXT;
        }
        if (nh == IPPROTO_FRAGMENT_) {
            uint16_t offm;

            /* RFC 8200 §4.5: next header, reserved, offset (13 bits, 8-byte units), res, M,
             * identification (32 bits). */
            if (8 > left) {
                return MMTLS_DEC_IPV6_BAD_EXT;
            }
            offm = mmtls_be16(h + 2);
            if ((offm & 0xfff8) == 0 && (offm & 1) == 0) {
                /* RFC 6946 §4: an atomic fragment is processed as a whole datagram. */
                nh = h[0];
                off += 8;
                continue;
            }
            pkt->l4proto = h[0];
            pkt->frag_id = mmtls_be32(h + 4);
            pkt->frag_off = offm & 0xfff8;
            pkt->frag_more = (offm & 1) != 0;
            pkt->frag_payload = h + 8;
            pkt->frag_payload_len = left - 8;
            return MMTLS_DEC_IP_FRAGMENT;
        }
        if (nh == IPPROTO_AH_) {
            /* RFC 4302 §2.2: AH length is in 4-byte units minus 2. */
            hlen = ((size_t)h[1] + 2) * 4;
        } else {
            /* RFC 8200 §4.3-4.6: length in 8-byte units, not counting the first 8 bytes. */
            hlen = ((size_t)h[1] + 1) * 8;
        }
        if (hlen > left) {
            return MMTLS_DEC_IPV6_BAD_EXT;
        }
        if ((nh == IPPROTO_HOPOPTS_ || nh == IPPROTO_DSTOPTS_) && !ipv6_tlv_ok(h + 2, hlen - 2)) {
            return MMTLS_DEC_IPV6_BAD_EXT;
        }
        if (nh == IPPROTO_ROUTING_) {
            final_dst = routing_final_dst(h, hlen, pkt->dst);
        }
        nh = h[0];
        off += hlen;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Link layers                                                                                  */

static enum mmtls_decode_event
decode_l3(const uint8_t *p, size_t len, const struct mmtls_decode_opts *opts, struct mmtls_pkt *pkt)
{
    if (1 > len) {
        return MMTLS_DEC_L2_TRUNCATED;
    }
    switch (p[0] >> 4) {
    case 4: return decode_ipv4(p, len, opts, pkt);
    case 6: return decode_ipv6(p, len, opts, pkt);
    default: return MMTLS_DEC_L2_UNSUPPORTED;
    }
}

/* Decodes from an ethertype on: 802.1Q / 802.1ad / 0x9100 tags (at most
 * MMTLS_DECODE_MAX_VLAN), then IPv4 or IPv6. */
static enum mmtls_decode_event decode_ethertype(uint16_t type, const uint8_t *p, size_t len,
                                                const struct mmtls_decode_opts *opts,
                                                struct mmtls_pkt *pkt)
{
    while (type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ || type == ETHERTYPE_QINQ_OLD) {
        if (pkt->vlan_count >= MMTLS_DECODE_MAX_VLAN) {
            return MMTLS_DEC_VLAN_TOO_DEEP;
        }
        if (VLAN_TAG_LEN > len) {
            return MMTLS_DEC_L2_TRUNCATED;
        }
        /* IEEE 802.1Q §9.6: TCI = PCP(3) DEI(1) VID(12), then the encapsulated type. */
        pkt->vlan[pkt->vlan_count++] = mmtls_be16(p) & 0x0fff;
        type = mmtls_be16(p + 2);
        p += VLAN_TAG_LEN;
        len -= VLAN_TAG_LEN;
    }
    switch (type) {
    case ETHERTYPE_IPV4: return decode_ipv4(p, len, opts, pkt);
    case ETHERTYPE_IPV6: return decode_ipv6(p, len, opts, pkt);
    default: return MMTLS_DEC_L2_UNSUPPORTED;
    }
}

static enum mmtls_decode_event decode_af(uint32_t af, const uint8_t *p, size_t len,
                                         const struct mmtls_decode_opts *opts,
                                         struct mmtls_pkt *pkt)
{
    switch (af) {
    case BSD_AF_INET: return decode_ipv4(p, len, opts, pkt);
    case BSD_AF_INET6_BSD:
    case BSD_AF_INET6_FREEBSD:
    case BSD_AF_INET6_DARWIN: return decode_ipv6(p, len, opts, pkt);
    default: return MMTLS_DEC_L2_UNSUPPORTED;
    }
}

static void pkt_reset_l3(struct mmtls_pkt *pkt)
{
    uint64_t ts = pkt->ts_us;
    uint16_t vlan[MMTLS_DECODE_MAX_VLAN];
    uint8_t vlan_count = pkt->vlan_count;

    memcpy(vlan, pkt->vlan, sizeof(vlan));
    memset(pkt, 0, sizeof(*pkt));
    pkt->ts_us = ts;
    memcpy(pkt->vlan, vlan, sizeof(vlan));
    pkt->vlan_count = vlan_count;
    pkt->wscale = 0xff;
}

enum mmtls_decode_event mmtls_decode_frame(int linktype, const uint8_t *data, size_t len,
                                           const struct mmtls_decode_opts *opts,
                                           struct mmtls_pkt *pkt)
{
    pkt->vlan_count = 0;
    memset(pkt->vlan, 0, sizeof(pkt->vlan));
    pkt_reset_l3(pkt);
    if (data == NULL) {
        return MMTLS_DEC_L2_TRUNCATED;
    }

    switch (linktype) {
    case MMTLS_LINK_ETHERNET:
        /* IEEE 802.3: destination, source, ethertype (values below 0x0600 are 802.3 lengths,
         * i.e. LLC frames, which fall in the unsupported default). */
        if (ETH_HLEN > len) {
            return MMTLS_DEC_L2_TRUNCATED;
        }
        return decode_ethertype(mmtls_be16(data + 12), data + ETH_HLEN, len - ETH_HLEN, opts, pkt);
    case MMTLS_LINK_LINUX_SLL:
        /* LINKTYPE_LINUX_SLL: packet type, ARPHRD, addr len, addr[8], protocol (offset 14). */
        if (SLL_HLEN > len) {
            return MMTLS_DEC_L2_TRUNCATED;
        }
        return decode_ethertype(mmtls_be16(data + 14), data + SLL_HLEN, len - SLL_HLEN, opts, pkt);
    case MMTLS_LINK_LINUX_SLL2:
        /* LINKTYPE_LINUX_SLL2: protocol (offset 0), reserved, ifindex, ARPHRD, type, addr. */
        if (SLL2_HLEN > len) {
            return MMTLS_DEC_L2_TRUNCATED;
        }
        return decode_ethertype(mmtls_be16(data), data + SLL2_HLEN, len - SLL2_HLEN, opts, pkt);
    /* DLT_RAW is 12 on most BSDs and in old libpcap, 14 on OpenBSD */
    case MMTLS_LINK_RAW:
    case 12:
    case 14: return decode_l3(data, len, opts, pkt);
    case MMTLS_LINK_IPV4: return decode_ipv4(data, len, opts, pkt);
    case MMTLS_LINK_IPV6: return decode_ipv6(data, len, opts, pkt);
    case MMTLS_LINK_NULL: {
        /* The AF value is in the capturing host's byte order, which the file does not record:
         * accept it in either order (as Wireshark does); the values overlap nowhere. */
        uint32_t le, be;

        if (NULL_HLEN > len) {
            return MMTLS_DEC_L2_TRUNCATED;
        }
        be = mmtls_be32(data);
        le = (uint32_t)data[3] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[1] << 8 | data[0];
        return decode_af(le <= 0xffff ? le : be, data + NULL_HLEN, len - NULL_HLEN, opts, pkt);
    }
    case MMTLS_LINK_LOOP:
        if (NULL_HLEN > len) {
            return MMTLS_DEC_L2_TRUNCATED;
        }
        return decode_af(mmtls_be32(data), data + NULL_HLEN, len - NULL_HLEN, opts, pkt);
    default: return MMTLS_DEC_L2_UNSUPPORTED;
    }
}

enum mmtls_decode_event mmtls_decode_ip(const uint8_t *data, size_t len,
                                        const struct mmtls_decode_opts *opts, struct mmtls_pkt *pkt)
{
    pkt_reset_l3(pkt);
    if (data == NULL) {
        return MMTLS_DEC_L2_TRUNCATED;
    }
    return decode_l3(data, len, opts, pkt);
}
