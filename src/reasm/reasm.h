/* reasm — TCP reassembly of one direction of a flow.
 *
 * Positions are 64-bit stream offsets (offset 0 = first byte after the SYN, or the first byte
 * seen when the capture starts mid-flow); 32-bit sequence numbers are mapped to offsets relative
 * to the next expected byte, so wrap-around is invisible above this layer.  In-order bytes are
 * handed to a sink as soon as they are contiguous (zero-copy from the packet when possible).
 * Out-of-order bytes are buffered, bounded per stream and by a shared memcap.  Bytes already
 * delivered are kept until the peer acknowledges them (bounded) so that a retransmission with
 * different content can be detected.  Overlaps: the first copy of a byte wins, everywhere.
 */
#ifndef MMTLS_REASM_H
#define MMTLS_REASM_H

#include "util/util.h"

enum mmtls_reasm_event {
    MMTLS_REASM_EV_GAP = 1,       /* [off, off+len) will never be delivered (capture loss) */
    MMTLS_REASM_EV_OVERLAP_DIFF,  /* retransmitted bytes differ from the first copy, or a FIN
                                   * contradicts the stream (data beyond it, another end) */
    MMTLS_REASM_EV_MEMCAP,        /* a segment was dropped: per-stream or shared cap hit */
    MMTLS_REASM_EV_FIN,           /* the stream ended at off (all bytes before it delivered) */
    MMTLS_REASM_EV_SEGMENT_LIMIT, /* too many buffered segments; segment dropped */
    MMTLS_REASM_EV_KEEP_FULL,     /* keep_until_acked: the segment would push unacknowledged
                                   * bytes out of the kept copy; segment dropped */
};

/* Where reassembled bytes go.  Callbacks run synchronously inside mmtls_reasm_* calls. */
struct mmtls_reasm_sink {
    void *ud; /* borrowed, passed back verbatim */
    /* In-order bytes starting at stream offset `off` (always the previous off + len).
     * p is borrowed for the call only. */
    void (*data)(void *ud, uint64_t off, const uint8_t *p, size_t len);
    void (*event)(void *ud, enum mmtls_reasm_event ev, uint64_t off, uint64_t len);
};

struct mmtls_reasm_opts {
    size_t max_ooo_bytes;  /* out-of-order bytes buffered per stream */
    size_t max_kept_bytes; /* delivered-but-unacknowledged bytes kept for overlap checks */
    uint32_t max_segments; /* buffered out-of-order segments per stream */
    /* false: when max_kept_bytes (or the memcap) is reached the oldest kept bytes are freed and
     * a later retransmission of them is counted (old_unchecked_bytes), not compared.
     * true: a delivered byte stays kept until the peer acknowledges it; a segment with new bytes
     * max_kept_bytes or more past the oldest unacknowledged one, or for which the memcap has no
     * room, is refused whole (KEEP_FULL, MMTLS_E_LIMIT) before any of its bytes or its FIN is
     * taken (it may still start a midstream stream and is counted in stats): the sender sees a
     * window of max_kept_bytes.  For callers that can drop the segment's packet. */
    bool keep_until_acked;
};

struct mmtls_reasm_seg; /* private */

struct mmtls_reasm_stats {
    uint64_t segments, bytes_delivered, retransmissions, overlaps_diff, gaps, gap_bytes,
        memcap_drops, ooo_segments, old_unchecked_bytes, keep_refused;
    uint64_t malformed; /* segments with bytes beyond the FIN, out of window, or a bogus FIN */
};

/* One direction of a TCP connection.  Caller storage: init/fini. */
struct mmtls_reasm {
    const struct mmtls_reasm_opts *opts; /* borrowed: valid for the stream's lifetime */
    struct mmtls_memcap *memcap;         /* borrowed, may be NULL; shared by the worker */
    bool started;                        /* base sequence known */
    bool midstream;                      /* started without a SYN */
    bool fin_seen;
    uint32_t base_seq;           /* sequence number of stream offset 0 (mod 2^32) */
    uint64_t next_off;           /* next offset to deliver */
    uint64_t fin_off;            /* valid when fin_seen */
    uint64_t acked_off;          /* highest offset acknowledged by the peer */
    struct mmtls_reasm_seg *ooo; /* owned: sorted list of buffered out-of-order segments */
    uint32_t ooo_count;
    size_t ooo_bytes;
    struct mmtls_buf kept; /* owned: delivered bytes [kept_off, next_off) */
    uint64_t kept_off;
    size_t kept_regrow; /* room for the next response's kept bytes: set when the kept buffer is
                         * freed idle, taken (charged to the memcap) when bytes are kept again */
    size_t kept_resv;   /* memcap charge for room reserved and not filled yet */
    size_t kept_peak;   /* most live kept bytes since the kept buffer was allocated */
    struct mmtls_reasm_stats stats;
};

void mmtls_reasm_init(struct mmtls_reasm *r, const struct mmtls_reasm_opts *opts,
                      struct mmtls_memcap *memcap);
void mmtls_reasm_fini(struct mmtls_reasm *r);

/* A SYN (or SYN-ACK) with sequence number isn: stream offset 0 is isn+1.  A SYN after data has
 * started (or after a midstream start) is ignored; before, the latest SYN sets the ISN. */
void mmtls_reasm_syn(struct mmtls_reasm *r, uint32_t isn);

/* A data segment (len may be 0 with fin).  Delivers whatever became contiguous and raises
 * events through sink.  Returns 0, or a negative code when the segment was (partly) dropped for
 * a cap (MMTLS_E_MEMCAP, MMTLS_E_LIMIT, MMTLS_E_NOMEM) or as bogus (MMTLS_E_MALFORMED: more
 * than 2^30 bytes ahead); the stream stays usable either way.  sink may be NULL (everywhere).
 * Sink callbacks must not call back into the same stream. */
int mmtls_reasm_segment(struct mmtls_reasm *r, uint32_t seq, const uint8_t *p, size_t len, bool fin,
                        const struct mmtls_reasm_sink *sink);

/* The peer acknowledged everything before `ack`.  Frees kept bytes below it.  If the peer
 * acknowledged bytes that were never seen, they were lost by the capture: a GAP event is raised,
 * delivery skips to the acknowledged offset (or the next buffered segment), and continues. */
void mmtls_reasm_ack(struct mmtls_reasm *r, uint32_t ack, const struct mmtls_reasm_sink *sink);

/* Declares everything missing before the first buffered segment lost (GAP event) and delivers
 * what follows; used at flow end and when buffers are full.  Returns true if it skipped. */
bool mmtls_reasm_flush_gap(struct mmtls_reasm *r, const struct mmtls_reasm_sink *sink);

/* Sequence number -> stream offset, relative to the next expected byte (valid once started). */
uint64_t mmtls_reasm_seq_to_off(const struct mmtls_reasm *r, uint32_t seq);

#endif
