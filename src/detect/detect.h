/* detect — rule matching for the IDS: Vectorscan fast patterns in streaming mode, then full
 * Snort/Suricata evaluation (content, pcre, header, flow, service) of the candidate rules.
 * docs/DETECT.md is the long form of this comment.
 *
 * Three objects, as Suricata splits its detect engine, thread context and flow state:
 *   struct mmtls_detect         compiled from a loaded rule set; immutable, shared by workers.
 *   struct mmtls_detect_worker  one per thread: Vectorscan scratch, PCRE2 match data and JIT
 *                               stack, evaluation scratch, counters, the retained-bytes memcap.
 *   struct mmtls_detect_flow    one per inspected connection, owned by one worker.
 *
 * Compile.  Each usable rule belongs to one class, from the buffers its items use:
 *   RAW   only pkt_data items, or none (header-only rules): the decrypted stream of a direction;
 *   HTTP  HTTP sticky buffers, possibly with pkt_data items (Snort 3 community rules write
 *         `http_uri; content:..; pkt_data; content:"|0A|"`): per transaction; the pkt_data
 *         items see the raw window of the direction when the transaction is evaluated (feed
 *         the raw bytes before the HTTP buffers parsed from them);
 *   SNI   only tls.sni: once per flow.
 * tls.sni with other buffers, HTTP buffers of both directions (uri + stat_code), a flow
 * direction contradicting the buffers, a service that never applies, or a pcre PCRE2 refuses:
 * the rule is skipped and counted by reason (never loaded with a different meaning).
 * file_data (http_server_body) in a to_server rule, or next to request buffers, is the request
 * body (http_client_body), as Snort 3 and Suricata define it.
 * The fast pattern (mmtls_rule.fp; the fast_pattern:<off>,<len> part of it when given; for an
 * HTTP rule whose fast pattern is a pkt_data content, its longest HTTP-buffer content instead)
 * of every rule whose fast pattern is a non-negated content goes, as a literal
 * (hs_compile_lit_multi: NUL bytes allowed; HS_FLAG_CASELESS for nocase), into one streaming
 * (HS_MODE_STREAM) database per kind: raw to-server, raw to-client (a raw rule without a flow
 * direction is in both), each HTTP buffer, tls.sni.  Identical literals are compiled once and
 * map to the list of their rules.  Leading NUL bytes are left out of a literal (Vectorscan's
 * literal API refuses a literal starting with NUL); an all-NUL fast pattern makes the rule
 * no-fp.  HTTP and SNI patterns use HS_FLAG_SINGLEMATCH (a hit only
 * makes the rule a candidate of a buffer that is evaluated whole once complete); raw patterns
 * report every hit, because the raw window slides and a later occurrence must re-trigger.
 * Rules without such a fast pattern (no content, only pcre, negated fast pattern) are
 * "no-fp" rules: always candidates where their class applies.  fast_pattern:only contents are
 * still evaluated in full (harmless: they carry no position modifier).
 *
 * Buffer instances.  Bytes are fed per instance: the raw stream of each direction (one instance
 * for the whole connection), each HTTP buffer of each transaction and direction (the caller
 * passes the transaction id and FIRST/LAST flags), tls.sni once.  Each instance has a
 * Vectorscan stream (opened at its first chunk, closed at its last), so a fast pattern split
 * across chunks, even 1-byte chunks, is found.  Its bytes are retained for full evaluation,
 * bounded by opts.retain_max (default 64 KB): an HTTP/SNI instance keeps its first retain_max
 * bytes (and scanning stops there: the inspection depth); the raw stream keeps a sliding window
 * of the last retain_max/2 .. retain_max bytes with 64-bit stream offsets (chunks are cut into
 * pieces of at most retain_max/2 so a hit is always inside the window).
 *
 * Evaluation (Snort/Suricata semantics; see docs/DETECT.md for each rule):
 *  - items are grouped by buffer (Suricata); within a buffer they are matched in rule order with
 *    content offset/depth (absolute), distance/within (relative to the end of the previous
 *    match in that buffer; the first item of a buffer is relative to its start), nocase,
 *    negation, pcre with i s m x A E G O R, and backtracking: when a later relative item fails,
 *    the previous content/pcre is retried at its next occurrence, bounded by opts.eval_steps;
 *  - raw stream: offsets are stream offsets (offset:0,depth:3 is the first 3 bytes of the
 *    connection direction, whatever the chunking); a candidate is evaluated against the window
 *    after the piece that produced its hit, and re-evaluated after later pieces while the hit
 *    is still in the window (so `A` then `B` in a later chunk matches); no-fp raw rules are
 *    evaluated after every piece.  Raw evaluations are paid from a credit each piece refills
 *    (4096 + 256 per byte; one evaluation costs the window length): with tiny chunks an
 *    evaluation may wait for more data, at the latest until mmtls_detect_flow_end;
 *  - HTTP: a candidate of direction d is evaluated once all the buffers it needs in d are
 *    complete (LAST seen), or at transaction end; a buffer the transaction never had fails the
 *    rule (even for a negated item, as Suricata does);
 *  - header: protocol/service, flow:to_server/to_client/established/not_established/stateless,
 *    addresses and ports against the flow's client/server tuple (`->`: src is the sender of
 *    the direction; `<>`: either orientation).  Service (Snort 3): a rule with a service option
 *    or an http/tls protocol runs only where its service applies: http for HTTP buffers,
 *    ssl for tls.sni, and the services the caller set on the flow for the raw stream; when its
 *    service applies, header ports are not checked (Snort 3 service rules ignore ports).
 *  - a rule fires at most once per transaction (HTTP), per direction (raw), per flow (SNI).
 *
 * Actions.  Matches of one evaluation round (one raw piece, one buffer completion, one
 * transaction end, the SNI) are reported in action order pass > drop > reject > alert, then
 * load order.  When a pass rule matches, only the pass rules of that round are reported, the
 * others are suppressed, and the whole flow is passed: no further inspection (Suricata 7: "if
 * the signature matches on a TCP connection, the entire flow will be passed").  The callback
 * returning non-zero also stops inspection of the flow (e.g. after a drop).
 *
 * Threads: mmtls_detect is read-only after mmtls_detect_new; each worker and its flows are used
 * by one thread at a time.
 */
#ifndef MMTLS_DETECT_H
#define MMTLS_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mmtls/error.h>

#include "rules/rules.h"

/* ------------------------------------------------------------------------------------------ */
/* Compile                                                                                     */

/* Database kinds: the raw stream per direction, then one per non-PKT buffer (buf + 1). */
enum mmtls_detect_db {
    MMTLS_DETECT_DB_RAW_TS = 0, /* pkt_data, to server */
    MMTLS_DETECT_DB_RAW_TC = 1, /* pkt_data, to client */
    /* 2 .. 13: MMTLS_RULES_BUF_HTTP_URI .. MMTLS_RULES_BUF_TLS_SNI, at index buf + 1 */
    MMTLS_DETECT_DB_COUNT = MMTLS_RULES_BUF_COUNT + 1,
};

/* Static name of a database kind ("raw.to_server", "http_uri", "tls.sni"); "?" if out of range. */
const char *mmtls_detect_db_name(unsigned db);

/* Options of mmtls_detect_new (libbpf style: sz first; zero fields take the default). */
struct mmtls_detect_opts {
    size_t sz;                 /* sizeof(struct mmtls_detect_opts) */
    size_t retain_max;         /* bytes kept per buffer instance; default 65536, 64..64 MiB */
    uint32_t max_tx;           /* open transactions per flow; default 32 (the oldest is ended) */
    size_t memcap;             /* retained bytes per worker (all its flows); default 256 MiB */
    uint32_t eval_steps;       /* content/pcre attempts per rule evaluation; default 3000 */
    uint32_t pcre_match_limit; /* PCRE2 match limit; default 3500 (as Suricata) */
    uint32_t pcre_depth_limit; /* PCRE2 depth limit; default 1500 (Suricata's recursion) */
    uint32_t raw_pending_max;  /* raw candidates kept for re-evaluation per direction; def. 64 */
    bool no_jit;               /* do not JIT-compile the regexes */
};

/* Why a loaded rule was not compiled. */
enum mmtls_detect_skip {
    MMTLS_DETECT_SKIP_PROTO = 0,  /* protocol/service the IDS cannot evaluate */
    MMTLS_DETECT_SKIP_MIXED,      /* tls.sni with pkt_data or HTTP buffers */
    MMTLS_DETECT_SKIP_HTTP_DIRS,  /* HTTP buffers of both directions (uri + stat_code) */
    MMTLS_DETECT_SKIP_FLOW_DIR,   /* flow direction contradicts the buffers */
    MMTLS_DETECT_SKIP_SVC,        /* service/protocol never applies to its buffers */
    MMTLS_DETECT_SKIP_PCRE,       /* PCRE2 refused the regex */
    MMTLS_DETECT_SKIP_FP_COMPILE, /* Vectorscan refused the fast pattern */
    MMTLS_DETECT_SKIP_COUNT
};

/* Static text of a skip reason ("mixed buffers", ...). */
const char *mmtls_detect_skip_name(unsigned why);

/* Compile statistics. */
struct mmtls_detect_info {
    uint64_t rules_in;                                   /* rules in the set */
    uint64_t rules;                                      /* compiled (usable) */
    uint64_t raw, http, sni;                             /* by class */
    uint64_t nofp;                                       /* without a usable fast pattern */
    uint64_t pcre;                                       /* regexes compiled */
    uint64_t pcre_jit;                                   /* of which JIT-compiled */
    uint64_t skipped[MMTLS_DETECT_SKIP_COUNT];           /* by reason */
    uint32_t first_skipped_sid[MMTLS_DETECT_SKIP_COUNT]; /* first sid per reason (0: none) */
    uint64_t compile_us;                                 /* wall time of mmtls_detect_new */
    struct {
        uint32_t rules;      /* rules with their fast pattern here */
        uint32_t patterns;   /* distinct literals compiled */
        size_t db_bytes;     /* hs_database_size; 0 when there is no database */
        size_t stream_bytes; /* hs_stream_size: state of one open stream */
    } db[MMTLS_DETECT_DB_COUNT];
    size_t db_bytes_total;
};

/* Compiled rules (opaque). */
struct mmtls_detect;

/* Compiles every rule of `rules`.  The rules are borrowed: `rules` must outlive *out (matches
 * report pointers into it).  opts may be NULL.  Skipped rules are counted (info), not errors.
 * Returns 0; MMTLS_E_NOMEM; MMTLS_E_UNSUPPORTED when Vectorscan is unusable on this CPU;
 * MMTLS_E_INTERNAL when a database cannot be compiled after dropping refused patterns.
 * Release with mmtls_detect_free. */
MMTLS_MUST_USE int mmtls_detect_new(struct mmtls_detect **out, const struct mmtls_rules_set *rules,
                                    const struct mmtls_detect_opts *opts);
/* NULL does nothing.  Every worker of d must be freed first. */
void mmtls_detect_free(struct mmtls_detect *d);
void mmtls_detect_info_get(const struct mmtls_detect *d, struct mmtls_detect_info *info);
/* Prints the compile summary (rules by class, skipped by reason, databases) to f. */
void mmtls_detect_info_print(const struct mmtls_detect *d, FILE *f);

/* ------------------------------------------------------------------------------------------ */
/* Worker                                                                                      */

struct mmtls_detect_counters {
    uint64_t scanned_bytes;  /* bytes given to Vectorscan */
    uint64_t fp_hits;        /* distinct fast pattern hits (per piece / instance) */
    uint64_t candidates;     /* rules made candidates by a hit (and no-fp rules) */
    uint64_t evaluations;    /* full rule evaluations */
    uint64_t matches;        /* rules that matched (reported or suppressed) */
    uint64_t reported;       /* callback invocations */
    uint64_t suppressed;     /* matches not reported because a pass rule matched */
    uint64_t flows_passed;   /* flows stopped by a pass rule */
    uint64_t streams_opened; /* Vectorscan streams opened */
    uint64_t streams_open;   /* currently open */
    uint64_t stream_bytes;   /* current Vectorscan stream state bytes */
    uint64_t retained_bytes; /* current retained bytes (charged to the memcap) */
    uint64_t retained_peak;
    uint64_t truncated_bytes; /* bytes not inspected: past retain_max of an HTTP/SNI instance */
    uint64_t memcap_refused;  /* bytes not retained/inspected because of the memcap */
    uint64_t pcre_errors;     /* pcre2_match errors other than no-match and limits */
    uint64_t pcre_limits;     /* match or depth limit hit (counted as no match) */
    uint64_t step_limits;     /* evaluations cut by eval_steps (counted as no match) */
    uint64_t pending_dropped; /* raw candidates dropped because the pending list was full */
    uint64_t raw_deferred;    /* raw evaluations postponed for lack of credit (tiny chunks) */
    uint64_t tx_evicted;      /* transactions ended early because max_tx were open */
    uint64_t late_chunks;     /* chunks for a complete instance or a passed/stopped flow */
    uint64_t hs_errors;       /* Vectorscan runtime errors */
};

/* Per-thread matching context (opaque). */
struct mmtls_detect_worker;

/* Creates a worker for d (borrowed: must outlive the worker).  0, MMTLS_E_NOMEM. */
MMTLS_MUST_USE int mmtls_detect_worker_new(struct mmtls_detect_worker **out,
                                           const struct mmtls_detect *d);
/* NULL does nothing.  Every flow of w must be freed first. */
void mmtls_detect_worker_free(struct mmtls_detect_worker *w);
void mmtls_detect_counters_get(const struct mmtls_detect_worker *w,
                               struct mmtls_detect_counters *c);

/* ------------------------------------------------------------------------------------------ */
/* Flow                                                                                        */

enum mmtls_detect_dir {
    MMTLS_DETECT_TO_SERVER = 0,
    MMTLS_DETECT_TO_CLIENT = 1,
};

#define MMTLS_DETECT_NO_TX UINT64_MAX /* mmtls_detect_match.tx for raw and tls.sni matches */

/* The connection as the rule headers see it. */
struct mmtls_detect_tuple {
    uint8_t family;       /* 4 or 6 */
    uint8_t cli_addr[16]; /* client (initiator) address, big endian; IPv4 in the first 4 bytes */
    uint8_t srv_addr[16];
    uint16_t cli_port, srv_port;
    bool established; /* flow:established holds (the handshake completed) */
};

/* One match, valid during the callback only. */
struct mmtls_detect_match {
    const struct mmtls_rule *rule; /* borrowed: valid while the rule set is */
    enum mmtls_detect_dir dir;     /* direction of the inspected data */
    unsigned buf;                  /* enum mmtls_rules_buf of the rule's fast pattern (PKT for
                                    * raw rules) */
    uint64_t tx;                   /* transaction id, or MMTLS_DETECT_NO_TX */
    uint64_t soff;                 /* raw: stream offset of the end of the inspected data
                                    * (the window end); 0 otherwise */
};

/* Called for each reported match.  Return 0 to continue, non-zero to stop inspecting the flow
 * (every later feed returns MMTLS_DECLINED). */
typedef int (*mmtls_detect_cb)(void *ctx, const struct mmtls_detect_match *m);

/* Per-connection state (opaque). */
struct mmtls_detect_flow;

/* Creates the state of one connection on worker w (borrowed: must outlive it).  tuple is
 * copied.  cb/ctx (ctx borrowed) receive the matches.  0, MMTLS_E_NOMEM, MMTLS_E_INVAL. */
MMTLS_MUST_USE int mmtls_detect_flow_new(struct mmtls_detect_flow **out,
                                         struct mmtls_detect_worker *w,
                                         const struct mmtls_detect_tuple *tuple, mmtls_detect_cb cb,
                                         void *ctx);
/* Services of the decrypted stream (MMTLS_RULES_SVC_* bits; default 0, unknown): which raw
 * rules with a service option or an http/tls protocol apply to the raw stream.  Set it before
 * feeding (e.g. MMTLS_RULES_SVC_HTTP once ALPN or the first request says HTTP). */
void mmtls_detect_flow_set_services(struct mmtls_detect_flow *f, uint8_t services);
/* Updates flow:established (e.g. false for data seen before the handshake completed). */
void mmtls_detect_flow_set_established(struct mmtls_detect_flow *f, bool established);

/* Feeds `len` bytes of the raw (decrypted, reassembled, in order) stream of direction dir.
 * The bytes are borrowed for the call.  0; MMTLS_DECLINED when the flow is no longer inspected
 * (passed or stopped); MMTLS_E_INVAL; MMTLS_E_NOMEM (a stream could not be opened: the chunk is
 * not inspected, the flow can continue). */
MMTLS_MUST_USE int mmtls_detect_stream(struct mmtls_detect_flow *f, enum mmtls_detect_dir dir,
                                       const uint8_t *p, size_t len);

#define MMTLS_DETECT_FIRST 0x1 /* first chunk of this buffer instance */
#define MMTLS_DETECT_LAST 0x2  /* last chunk: the instance is complete */

/* Feeds a chunk of buffer `buf` (an HTTP buffer or MMTLS_RULES_BUF_TLS_SNI) of transaction
 * `tx` (any id chosen by the caller, e.g. the HTTP/2 stream id; ignored for tls.sni) in
 * direction dir.  FIRST opens the instance (a chunk without FIRST for an instance never seen
 * opens it too); LAST completes it and evaluates the candidates that became ready.  A chunk
 * for a complete instance is ignored (late_chunks).  Returns as mmtls_detect_stream; also
 * MMTLS_E_INVAL for buf PKT or out of range. */
MMTLS_MUST_USE int mmtls_detect_buf(struct mmtls_detect_flow *f, enum mmtls_detect_dir dir,
                                    uint64_t tx, unsigned buf, unsigned flags, const uint8_t *p,
                                    size_t len);

/* Ends transaction tx: completes its open instances, evaluates the remaining candidates and
 * frees its state.  0 (also for an unknown tx), MMTLS_DECLINED. */
MMTLS_MUST_USE int mmtls_detect_tx_end(struct mmtls_detect_flow *f, uint64_t tx);

/* Ends the flow: ends every open transaction and the tls.sni instance (evaluating them) and
 * closes the raw streams.  Feeds afterwards return MMTLS_DECLINED.  0 or MMTLS_DECLINED. */
MMTLS_MUST_USE int mmtls_detect_flow_end(struct mmtls_detect_flow *f);

/* Whether the flow is still inspected (not passed, not stopped by the callback). */
bool mmtls_detect_flow_active(const struct mmtls_detect_flow *f);

/* Bytes held by the flow now: Vectorscan stream state + retained bytes + bookkeeping. */
size_t mmtls_detect_flow_mem(const struct mmtls_detect_flow *f);

/* Frees the flow without evaluating anything; NULL does nothing. */
void mmtls_detect_flow_free(struct mmtls_detect_flow *f);

#endif /* MMTLS_DETECT_H */
