/* io — packet sources and sinks.  This issue: a reader for pcap and pcapng files (from a path
 * or standard input), including pcapng Decryption Secrets Blocks.  Knows nothing about TLS.
 */
#ifndef MMTLS_IO_H
#define MMTLS_IO_H

#include <stdio.h>

#include "util/util.h"

/* A packet as read from a source; data is borrowed until the next call into the source. */
struct mmtls_io_pkt {
    const uint8_t *data;
    uint32_t caplen, origlen;
    uint64_t ts_us;
    int linktype;   /* pcap LINKTYPE_* of the interface the packet came from */
    uint32_t ifidx; /* pcapng interface id (0 for pcap) */
};

struct mmtls_pcap_reader;

/* Called for each pcapng Decryption Secrets Block (RFC draft-ietf-opsawg-pcapng §4.7) before
 * the packets that follow it.  secrets_type 0x544c534b ("TLSK") carries NSS key log text. */
typedef void (*mmtls_pcap_dsb_cb)(void *ud, uint32_t secrets_type, const uint8_t *p, size_t len);

#define MMTLS_PCAPNG_SECRETS_TLS 0x544c534bu
#define MMTLS_PCAP_MAX_SNAPLEN (256u * 1024u) /* larger packet records are malformed */
#define MMTLS_PCAPNG_MAX_BLOCK (16u * 1024u * 1024u)

/* Opens a classic pcap (either byte order, micro- or nanosecond) or pcapng file; path "-" reads
 * standard input.  On failure returns a negative code and a one-line message in err. */
MMTLS_MUST_USE int mmtls_pcap_open(struct mmtls_pcap_reader **out, const char *path,
                                   mmtls_pcap_dsb_cb dsb_cb, void *dsb_ud, char *err,
                                   size_t err_cap);

/* Same over an open stream (read sequentially, never seeked: a pipe or fmemopen works).  On
 * success the reader owns fp and mmtls_pcap_close closes it; on failure the caller still owns
 * it.  `name` (may be NULL) prefixes error messages and must outlive the reader. */
MMTLS_MUST_USE int mmtls_pcap_open_fp(struct mmtls_pcap_reader **out, FILE *fp, const char *name,
                                      mmtls_pcap_dsb_cb dsb_cb, void *dsb_ud, char *err,
                                      size_t err_cap);

/* Next packet: 0 with *pkt filled; MMTLS_DECLINED at a clean end of file; a negative code for a
 * truncated or malformed file (message in err).  Unknown pcapng block types are skipped. */
MMTLS_MUST_USE int mmtls_pcap_next(struct mmtls_pcap_reader *r, struct mmtls_io_pkt *pkt, char *err,
                                   size_t err_cap);

void mmtls_pcap_close(struct mmtls_pcap_reader *r);

/* Pure parser of one pcapng block held in memory (used by the reader and the fuzz target). */
struct mmtls_pcapng_block {
    uint32_t type;
    uint32_t total_len;
    struct mmtls_slice body; /* between the length fields */
};

/* Parses the block at p (len bytes available), byte order given by `swapped` (true when the
 * section's byte order is not the host's, as told by its byte-order magic).  MMTLS_AGAIN with
 * *need when more bytes are needed, MMTLS_E_MALFORMED for a bad length (not a multiple of 4,
 * < 12, > MMTLS_PCAPNG_MAX_BLOCK, or trailing length mismatch). */
MMTLS_MUST_USE int mmtls_pcapng_block_parse(const uint8_t *p, size_t len, bool swapped,
                                            struct mmtls_pcapng_block *b, size_t *need);

/* ------------------------------------------------------------------------------------------ */
/* AF_PACKET port (inline mode): one interface of one worker, TPACKET_V3 memory-mapped RX ring  */
/* (batched receive) and a TX ring (batched send).  With vnet_hdr, frames carry the kernel's    */
/* struct virtio_net_hdr (GSO super-frames with unfinished checksums) in and out unchanged.     */

struct mmtls_afp;

struct mmtls_afp_opts {
    size_t sz;
    const char *ifname;
    bool vnet_hdr;          /* PACKET_VNET_HDR on RX and TX (keeps GSO/GRO frames intact) */
    int fanout_group;       /* 0: none; else PACKET_FANOUT id shared by the workers */
    uint32_t block_size;    /* RX ring block size (default 1 MiB) */
    uint32_t block_nr;      /* RX ring blocks (default 64) */
    uint32_t tx_frame_size; /* TX ring frame size (default 64 KiB + headers, for GSO frames) */
    uint32_t tx_frame_nr;   /* TX ring frames (default 512) */
};

/* A received frame: data borrowed until mmtls_afp_rx_done(). */
struct mmtls_afp_frame {
    const uint8_t *data;
    uint32_t len;
    uint64_t ts_us;
    const uint8_t *vnet; /* 10-byte struct virtio_net_hdr when vnet_hdr, else NULL */
    uint16_t vlan_tci;   /* VLAN tag stripped by the kernel (TP_STATUS_VLAN_VALID), else 0 */
    bool vlan_valid;
};

struct mmtls_afp_stats {
    uint64_t rx_frames, rx_bytes, rx_drops_kernel, tx_frames, tx_bytes, tx_errors, tx_ring_full;
};

MMTLS_MUST_USE int mmtls_afp_open(struct mmtls_afp **out, const struct mmtls_afp_opts *o, char *err,
                                  size_t err_cap);
void mmtls_afp_close(struct mmtls_afp *p);
/* The fd to poll for readability. */
int mmtls_afp_fd(const struct mmtls_afp *p);
/* Up to max frames from the current RX block(s); 0 when none is ready (never blocks). */
int mmtls_afp_rx_burst(struct mmtls_afp *p, struct mmtls_afp_frame *f, int max);
/* Gives the frames of the last burst back to the kernel. */
void mmtls_afp_rx_done(struct mmtls_afp *p);
/* Queues a frame for sending (copies it into the TX ring; vnet may be NULL, vlan re-inserted
 * when vlan_valid).  MMTLS_E_LIMIT when the ring is full (counted). */
MMTLS_MUST_USE int mmtls_afp_tx(struct mmtls_afp *p, const uint8_t *data, uint32_t len,
                                const uint8_t *vnet, uint16_t vlan_tci, bool vlan_valid);
/* Kicks the kernel to send what is queued. */
void mmtls_afp_tx_flush(struct mmtls_afp *p);
void mmtls_afp_get_stats(const struct mmtls_afp *p, struct mmtls_afp_stats *st);

#endif
