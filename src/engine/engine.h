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
};

/* Fills *o with the documented defaults (docs/CONFIG.md). */
void mmtls_engine_opts_default(struct mmtls_engine_opts *o);

MMTLS_MUST_USE int mmtls_engine_new(struct mmtls_engine **out, const struct mmtls_engine_opts *o);
/* Ends every session (SESSION_END events), then frees; NULL is a no-op. */
void mmtls_engine_free(struct mmtls_engine *e);

enum mmtls_pkt_verdict {
    MMTLS_PKT_FORWARD = 0,
    MMTLS_PKT_DROP = 1,
};

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
    uint64_t flows_tls, flows_not_tls, flows_midstream;
    uint64_t sessions_started, sessions_ended;
    uint64_t records, records_decrypted, records_undecrypted, records_skipped;
    uint64_t plain_bytes;
    uint64_t tls_errors[MMTLS_TLSERR_MAX + 1]; /* by enum mmtls_tls_error */
    uint64_t blocked_sessions;
    uint64_t reasm_gaps, reasm_overlap_diff, reasm_memcap_drops;
    uint64_t flow_alloc_failures;
};

const struct mmtls_engine_stats *mmtls_engine_get_stats(const struct mmtls_engine *e);
const struct mmtls_flow_stats *mmtls_engine_flow_stats(const struct mmtls_engine *e);
const struct mmtls_defrag_stats *mmtls_engine_defrag_stats(const struct mmtls_engine *e);
const struct mmtls_memcap *mmtls_engine_reasm_memcap(const struct mmtls_engine *e);

/* Writes the stats as members of an open JSON object (eve "stats" event). */
void mmtls_engine_stats_json(const struct mmtls_engine *e, struct mmtls_json *j);

#endif
