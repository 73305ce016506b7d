/* engine — one worker's inspection engine: decode -> defrag -> flow table -> TCP reassembly ->
 * TLS record framing and handshake tracking -> key lookup and record decryption -> events to
 * apps.  The offline mode feeds it packets from a capture; the inline mode (later) from a ring.
 * Only this layer ties the others together.
 */
#ifndef MMTLS_ENGINE_H
#define MMTLS_ENGINE_H

#include <mmtls/mmtls.h>

#include "decode/decode.h"
#include "flow/flow.h"
#include "keys/keys.h"
#include "reasm/reasm.h"
#include "util/util.h"

/* Exception policies (docs/CONFIG.md, "Resources and exception policies"): what the inline
 * engine does when a resource cap is hit.  Offline the engine only inspects: it counts. */
enum mmtls_exc_policy {
    MMTLS_EXC_CLOSED = 0, /* fail closed: drop the packet / block the flow (default) */
    MMTLS_EXC_OPEN,       /* fail open: forward uninspected (the flow is bypassed) */
};

enum mmtls_exc_res {
    MMTLS_EXC_FLOW = 0,  /* flow table full of sessions under inspection: the new flow */
    MMTLS_EXC_SESSION,   /* max_sessions TLS sessions under inspection: the new session */
    MMTLS_EXC_REASM,     /* reassembly memcap or per-stream cap: the segment */
    MMTLS_EXC_HOLD,      /* records held for keys over key_hold_max / key_hold_total */
    MMTLS_EXC_KEYS,      /* keys waiting for their session over key_pending_max */
    MMTLS_EXC_MIDSTREAM, /* a flow picked up without its SYN (after midstream_grace_ms) */
    MMTLS_EXC_DEFRAG,    /* IP fragments: table full, fragments per datagram, memcap */
    MMTLS_EXC_N
};

/* What a hit did: the policy applied (index of mmtls_engine_stats.exc[res]). */
enum mmtls_exc_act {
    MMTLS_EXC_ACT_CLOSED = 0,
    MMTLS_EXC_ACT_OPEN = 1,
    MMTLS_EXC_ACT_OFFLINE = 2, /* offline analysis: counted, nothing to drop */
};

/* Names for logs and eve ("flow", "session", "reasm", "hold", "keys", "midstream", "defrag"). */
const char *mmtls_exc_res_name(int res);

/* One report of a resource's exceptions: at most one per resource per second (the first hit
 * is reported at once, later ones summed over the interval).  Borrowed for the call. */
struct mmtls_engine_exception {
    int res;              /* enum mmtls_exc_res */
    const char *resource; /* mmtls_exc_res_name(res) */
    const char *policy;   /* "closed", "open", or "offline" (counted only) */
    const char *action;   /* what was done: "drop", "block", "bypass", "pass", "evict"... */
    uint64_t count;       /* hits since the previous report of this resource */
    uint64_t total;       /* hits since the start */
    uint64_t interval_us; /* time covered by count (engine clock) */
    uint64_t ts_us;       /* engine clock */
    uint64_t used, cap;   /* the resource's usage now and its cap (units as in docs/EVE.md) */
};

/* Kernel fast path: where the engine's framing of a direction stands, for a kernel that lost it
 * (valid: every byte before end_seq was delivered and nothing is buffered beyond it; the next
 * record header starts at hdr_seq). */
struct mmtls_engine_fast_sync {
    bool valid;
    uint32_t end_seq, hdr_seq;
};

struct mmtls_engine_opts {
    size_t sz; /* sizeof(struct mmtls_engine_opts) */
    struct mmtls_flow_table_opts flow;
    struct mmtls_reasm_opts reasm;
    size_t reasm_memcap; /* all reassembly buffers of the worker */
    struct mmtls_defrag_opts defrag;
    struct mmtls_decode_opts decode;
    size_t max_handshake_msg;    /* cap on one handshake message */
    uint32_t max_failed_records; /* consecutive undecryptable records before giving up */
    uint32_t max_resync_trials;  /* decryption attempts to recover framing after a gap */
    bool verify_all;             /* verify records no app asked to decrypt */
    struct mmtls_keystore *keys; /* borrowed: must outlive the engine */
    /* Keys from key channels (mmtls_engine_key_ring).  A session without keys has its
     * protected records held up to key_wait_ms (engine clock) and key_hold_max bytes, then
     * they are processed as undecryptable.  0 = no holding (key logs only). */
    uint32_t key_wait_ms;
    size_t key_hold_max;
    size_t key_hold_total;    /* all sessions' held records together (the worker's cap) */
    uint32_t key_pending_max; /* keys waiting for their session (count) */
    uint32_t key_pending_ms;  /* ... and how long they wait */
    /* Inline mode (mmtls_engine_packet_inline): what happens to a session whose keys did not
     * come within key_wait_ms (DESIGN §3 rule 2), and to flows that are not TLS. */
    int on_missing_keys; /* enum mmtls_missing_keys */
    /* Inline, TLS 1.3 (RFC 8446 §2): the server's encrypted first flight.  false (hold): its
     * frames wait for the handshake secrets, the records up to its Finished are released once
     * decrypted, and 0.5-RTT data after the Finished waits for the application secrets (one
     * key-channel round trip per handshake; clients must share handshake secrets at once).
     * true (pass): its frames go on at once, its records are inspected when the keys come. */
    bool server_flight_pass;
    bool block_non_tls;
    /* Retransmitted bytes that differ from those inspected (DESIGN §3 rule 5): inline, the
     * session is blocked (the frame dropped, both ends reset) unless this is set; the
     * evasion_overlap error is raised either way (offline only the error). */
    bool evasion_alert_only;
    /* TCP flows that are not TLS (the client's first byte is not a handshake record, or the
     * server speaks first) become plain sessions: SESSION_START, then their in-order bytes as
     * NEW_RECORD events of type application_data (not encrypted, at most 16 KB each), so the
     * apps (rules) see them too.  Off: such flows are only counted (and forwarded). */
    bool inspect_plain;
    /* Server names (fnmatch patterns, NULL-terminated; borrowed) whose sessions clients may
     * bypass (BYPASS message).  A BYPASS for another name counts as no keys (DESIGN §3 rule 6). */
    const char *const *bypass_allow;
    /* Several workers (mmtlsd --workers): told each new session's client random, so the key
     * server thread can steer that session's keys to this worker's ring.  Called on the worker's
     * thread; must not block.  NULL: not called. */
    void (*on_client_random)(void *ud, const uint8_t client_random[32]);
    void *on_client_random_ud;
    /* Kernel fast path (mmtlsd --io fast, docs/FASTPATH.md): told, on the worker's thread, what
     * the kernel may do with a TCP flow's frames whenever that changes: mode[i] (enum
     * mmtls_fast_mode, src/io/io.h) for the frames endpoint i sends, gen[i] counting the skips
     * and wire counts asked for, budget[i] the wire count (mmtls_session_pause_after_wire) the
     * kernel starts at generation gen[i] (0: none); sync (NULL: none), by endpoint too, after
     * mmtls_engine_fast_sync_next; ended once the flow is released.  NULL: not called. */
    void (*on_flow_state)(void *ud, const struct mmtls_flow_key *key, const uint8_t mode[2],
                          const uint32_t gen[2], const uint32_t budget[2],
                          const struct mmtls_engine_fast_sync *sync, bool ended);
    void *on_flow_state_ud;
    /* TEST ONLY (mmtlsd --test-tamper, the private tag's tamper test): act as a compromised
     * middlebox.  Inline, in decrypted TLS 1.3 application records that lie wholly inside the
     * current frame, replace tamper_from by tamper_to (same length, borrowed), re-seal the record
     * with the shared keys (tag1 valid again; tag2 left as it was) and fix the TCP checksum: the
     * engine then writes into the frame passed to mmtls_engine_packet_inline.  Needs frames
     * with complete checksums (no GSO / checksum offload: mmtlsd --no-vnet). */
    const uint8_t *tamper_from, *tamper_to;
    size_t tamper_len;
    /* Exception policies, by enum mmtls_exc_res (0 = MMTLS_EXC_CLOSED: fail closed).  The hold
     * policy applies when the hold caps are hit; a key wait that expires follows
     * on_missing_keys.  Refused keys leave a session without keys: on_missing_keys too. */
    uint8_t exc_policy[MMTLS_EXC_N];
    /* TLS sessions under inspection at once (0: no cap of its own, one per flow at most). */
    uint32_t max_sessions;
    /* Inline, flows picked up without their SYN pass uninspected during this long after the
     * engine's first packet (connections older than a restart); afterwards they follow
     * exc_policy[MMTLS_EXC_MIDSTREAM], except flows the engine itself evicted or expired
     * while uninspected (remembered in a bounded table): those pass as before. */
    uint32_t midstream_grace_ms;
    /* Reports: on_exception at most once per second per resource; on_stats every
     * stats_interval_ms of engine time (0: never).  Called on the worker's thread. */
    void (*on_exception)(void *ud, const struct mmtls_engine_exception *x);
    void (*on_stats)(void *ud, const struct mmtls_engine *e, uint64_t now_us);
    void *report_ud;
    uint32_t stats_interval_ms;
};

enum mmtls_missing_keys {
    MMTLS_MISSING_BLOCK = 0, /* drop what was held, reset both ends (default) */
    MMTLS_MISSING_PASS,      /* release what was held, uninspected */
    MMTLS_MISSING_ALERT,     /* release, and raise no_keys (as pass, logged) */
};

/* Fills *o with the documented defaults (docs/CONFIG.md). */
void mmtls_engine_opts_default(struct mmtls_engine_opts *o);

MMTLS_MUST_USE int mmtls_engine_new(struct mmtls_engine **out, const struct mmtls_engine_opts *o);
/* Ends every session (SESSION_END events), then frees; NULL is a no-op. */
void mmtls_engine_free(struct mmtls_engine *e);

enum mmtls_pkt_verdict {
    MMTLS_PKT_FORWARD = 0,
    MMTLS_PKT_DROP = 1,
    MMTLS_PKT_HOLD = 2, /* inline: the engine keeps a copy and sends it later */
};

/* Inline mode: where the engine sends frames it releases (held frames, in their order) and
 * frames it builds (RSTs).  `port` is the port the frame leaves by.  `meta` is the opaque
 * per-frame metadata given with the frame (e.g. the virtio_net_hdr and VLAN tag); for built
 * frames it is the metadata of a frame of the same direction, and `built` is true (the sink
 * must clear offload fields). */
struct mmtls_engine_tx {
    void *ud;
    void (*send)(void *ud, int port, const uint8_t *frame, size_t len, const uint8_t *meta,
                 size_t meta_len, bool built);
    /* meta starts with the frame's struct virtio_net_hdr (PACKET_VNET_HDR): frames whose
     * checksums are complete are verified, and a bad one is forwarded but never inspected
     * (the receiver drops it) */
    bool meta_vnet;
};

#define MMTLS_ENGINE_META_MAX 32

void mmtls_engine_set_tx(struct mmtls_engine *e, const struct mmtls_engine_tx *tx);

/* Inline: a frame that arrived on `port` (0 or 1) and leaves by the other one.  Returns
 * MMTLS_PKT_FORWARD (send it now), MMTLS_PKT_DROP, or MMTLS_PKT_HOLD (the engine copied it and
 * the tx sink will get it once the records it completes were inspected, or never if the session
 * is blocked).  meta (<= MMTLS_ENGINE_META_MAX bytes) travels with a held frame. */
int mmtls_engine_packet_inline(struct mmtls_engine *e, int port, const uint8_t *data, size_t len,
                               uint64_t ts_us, const uint8_t *meta, size_t meta_len);

/* Fast path: the next frame given to mmtls_engine_packet_inline ends a kernel skip of its
 * direction (on_flow_state asked for it): its stream resumes at sequence number seq, a record
 * header, after nskip whole records the kernel forwarded uninspected; lost: the kernel lost the
 * framing (the bytes before seq are then a gap the engine resynchronises after). */
void mmtls_engine_fast_resume(struct mmtls_engine *e, uint32_t seq, uint32_t nskip, bool lost);
/* Fast path: the next frame started, as the kernel saw it, where the bytes of its direction
 * before it ended (copies, in-order diverted frames).  A hole before it is a frame lost on the
 * way to user space (the divert ring overflowed): a diverted frame comes again, a copy never
 * does.  The frame is dropped (the sender sends it again) so that no record whose bytes the
 * engine lacks becomes whole at the receiver; if the hole turns into a gap (the receiver
 * acknowledged bytes beyond it: a lost copy), the session is blocked (fast_copies_lost). */
void mmtls_engine_fast_inorder(struct mmtls_engine *e);
uint64_t mmtls_engine_fast_copies_lost(const struct mmtls_engine *e);
/* Fast path: after the next frame, on_flow_state also gets the engine's framing (sync), for a
 * kernel that lost it (the frame came diverted without the in-order mark). */
void mmtls_engine_fast_sync_next(struct mmtls_engine *e);

/* Processes one frame.  Returns an mmtls_pkt_verdict.  Never fails: malformed input is counted. */
int mmtls_engine_packet(struct mmtls_engine *e, int linktype, const uint8_t *data, size_t len,
                        uint64_t ts_us);

/* Advances the engine clock: expires idle and closed flows and stale fragments. */
void mmtls_engine_tick(struct mmtls_engine *e, uint64_t now_us);

/* Ends every flow now (end of input): flushes reassembly gaps, raises SESSION_END. */
void mmtls_engine_flush(struct mmtls_engine *e);

#define MMTLS_TLSERR_MAX 16

struct mmtls_engine_stats {
    uint64_t packets, bytes;
    uint64_t decode_events[MMTLS_DEC_EVENT_MAX];
    uint64_t tcp_packets, fragments, reassembled_datagrams;
    uint64_t fragments_dropped; /* inline: fragments not kept by the defragmenter, dropped */
    uint64_t malformed_dropped; /* inline: IP/TCP frames the decoder could not read, dropped */
    uint64_t flows_tls, flows_not_tls, flows_midstream, flows_plain;
    uint64_t sessions_started, sessions_ended;
    uint64_t records, records_decrypted, records_undecrypted, records_skipped;
    uint64_t plain_bytes;
    uint64_t tls_errors[MMTLS_TLSERR_MAX + 1]; /* by enum mmtls_tls_error */
    uint64_t blocked_sessions;
    uint64_t reasm_gaps, reasm_overlap_diff, reasm_memcap_drops;
    uint64_t reasm_keep_drops;      /* inline: segments past the kept-copy window, dropped */
    uint64_t reasm_unchecked_bytes; /* retransmitted bytes no kept copy could be compared with */
    uint64_t flow_alloc_failures;
    uint64_t keys_received, keys_matched, keys_pending_expired, keys_pending_dropped;
    uint64_t keys_rejected_owner, keys_conflict, keys_duplicate, bypass_received, bypass_refused;
    uint64_t records_held, records_released, holds_expired, holds_over_cap;
    uint64_t frames_held, frames_released, frames_dropped, rst_sent, blocked_missing_keys;
    uint64_t non_tls_blocked;
    uint64_t evasion_blocked; /* sessions blocked for differing retransmissions */
    /* how long sessions' held frames waited for keys (µs), log2 buckets: [0] < 1 µs,
     * [i] < 2^i µs; sessions whose records waited but no frame had to: key_waits_undelayed */
    uint64_t key_stall_hist[32];
    uint64_t key_waits_undelayed;
    /* TLS 1.3 records still waiting for secrets after others were released (handshake secrets
     * came first); frames split so that their inspected head could go on (server flight) */
    uint64_t key_waits_partial, frames_split;
    uint64_t test_tampered; /* records rewritten by the test-only tamper mode */
    uint64_t key_stall_max_us;
    /* exception policies: hits by resource and by what was done (closed, open, offline) */
    uint64_t exc[MMTLS_EXC_N][3];            /* [enum mmtls_exc_res][enum mmtls_exc_act] */
    uint64_t sessions_active, sessions_peak; /* TLS sessions allocated now / at most */
    uint64_t held_peak, keys_pending_peak;   /* held record bytes, pending keys: at most */
    uint64_t midstream_passed, midstream_remembered;
    /* inline evasion defences: frames whose TCP checksum could not be verified (offloaded or
     * no virtio_net_hdr); URG flags cleared (urgent data delivered in band); RSTs ignored for
     * a sequence number the receiver would not accept (RFC 5961 §3.2); connections re-opened
     * on the 4-tuple of a closed one */
    uint64_t csum_unverified, urg_cleared, rst_ignored, flows_reopened;
    uint64_t urg_frag_dropped; /* inline: rebuilt segments with urgent data (header gone) */
    /* inline: packets of one direction that entered on the port of the other (forged as the
     * other end from this end's side), dropped */
    uint64_t wrong_side_dropped;
    /* inline: data of a flow that began with a SYN, sent before the other end's SYN (the
     * SYN-ACK) was seen: no real stack does that, a receiver still in an older connection on
     * the 4-tuple would read it */
    uint64_t data_before_synack_dropped;
};

const struct mmtls_engine_stats *mmtls_engine_get_stats(const struct mmtls_engine *e);
const struct mmtls_flow_stats *mmtls_engine_flow_stats(const struct mmtls_engine *e);
const struct mmtls_defrag_stats *mmtls_engine_defrag_stats(const struct mmtls_engine *e);
const struct mmtls_memcap *mmtls_engine_reasm_memcap(const struct mmtls_engine *e);

/* A key message from a key channel, as a worker receives it (docs/ARCHITECTURE.md, "Keys from
 * key channels").  Whoever holds the pointer owns it; mmtls_engine_keymsg_free wipes it.  It
 * lives in the secure-memory pool (mmtls_secmem, out of core dumps): allocate it with
 * mmtls_engine_keymsg_new or mmtls_secmem_calloc, never malloc. */
struct mmtls_engine_keymsg {
    int type; /* MMTLS_KP_KEYS or MMTLS_KP_BYPASS */
    uint8_t client_random[32];
    struct mmtls_keyset ks;
    char sni[256];
    uint64_t recv_ns; /* CLOCK_MONOTONIC when the key server read it */
};

/* Copies a key server delivery into a new message; NULL when out of memory. */
struct mmtls_engine_keymsg *mmtls_engine_keymsg_new(const struct mmtls_key_delivery *d);
void mmtls_engine_keymsg_free(struct mmtls_engine_keymsg *m);

/* The ring through which key messages reach this engine: one producer (the key server thread)
 * pushes mmtls_engine_keymsg pointers, transferring ownership; the worker pops them.  No lock
 * is taken on either side. */
struct mmtls_ring *mmtls_engine_key_ring(struct mmtls_engine *e);

/* Worker: consumes the key messages waiting in the ring; done before every packet too.  Keys
 * for a session in progress are installed at once (and its held records replayed); others
 * wait in a bounded table for their ClientHello. */
void mmtls_engine_poll_keys(struct mmtls_engine *e);

/* Writes the stats as members of an open JSON object (eve "stats" event). */
void mmtls_engine_stats_json(const struct mmtls_engine *e, struct mmtls_json *j);

#endif
