/* flow — bounded symmetric flow table: both directions of a TCP connection map to one entry.
 * Fixed capacity, idle and closed-flow timeouts driven by the caller's clock (packet timestamps
 * offline, the wall clock inline).  Knows nothing about TLS: the owner hangs its per-flow state
 * on `ud` and frees it in the release callback, and tells the table how much each flow is worth
 * keeping (its class) so that a full table evicts only what may go:
 *   closed flows first, then BARE flows (nothing under inspection), then HANDSHAKE flows idle
 *   for at least evict_idle_ms; PINNED flows (sessions being inspected) are never evicted by a
 *   new flow: the new flow is refused instead (MMTLS_E_LIMIT) and the owner applies its
 *   exception policy.  An attacker flooding the table cannot end the inspection of a session.
 */
#ifndef MMTLS_FLOW_H
#define MMTLS_FLOW_H

#include "decode/decode.h"
#include "util/util.h"

/* Normalised key: endpoint 0 is the lower (address, port) pair, so both directions match. */
struct mmtls_flow_key {
    uint8_t ip_version;
    uint8_t proto;
    uint16_t port[2];
    uint8_t addr[2][16];
};

enum mmtls_flow_state {
    MMTLS_FLOW_NEW = 0,     /* seen packets, no completed handshake observed */
    MMTLS_FLOW_ESTABLISHED, /* SYN-ACK seen, or data in both directions */
    MMTLS_FLOW_CLOSING,     /* one FIN seen */
    MMTLS_FLOW_CLOSED,      /* FIN both ways or RST: expires after the closed timeout */
};

enum mmtls_flow_end_reason {
    MMTLS_FLOW_END_IDLE = 0, /* idle timeout */
    MMTLS_FLOW_END_CLOSED,   /* closed timeout after FIN/RST */
    MMTLS_FLOW_END_EVICTED,  /* table full: least recently used flow evicted */
    MMTLS_FLOW_END_SHUTDOWN, /* end of input / table freed */
};

/* What a flow is worth keeping when the table is full (set by the owner). */
enum mmtls_flow_class {
    MMTLS_FLOW_CLASS_BARE = 0,  /* nothing inspected: no session, not TLS, bypassed (default) */
    MMTLS_FLOW_CLASS_HANDSHAKE, /* a session in its handshake: evictable once idle */
    MMTLS_FLOW_CLASS_PINNED,    /* a session under inspection: never evicted for a new flow */
    MMTLS_FLOW_CLASS_N,
};

struct mmtls_flow {
    struct mmtls_flow_key key;
    uint64_t id; /* 1, 2, ... in order of creation */
    uint64_t first_us, last_us;
    uint8_t client; /* endpoint index (0/1) of the client: SYN sender, else first sender */
    enum mmtls_flow_state state;
    bool fin[2]; /* FIN sent by endpoint i */
    bool rst;
    uint64_t pkts[2], bytes[2]; /* per endpoint index as sender */
    void *ud;                   /* owned by the table's owner; freed in the release callback */
    uint8_t cls;                /* enum mmtls_flow_class: change with mmtls_flow_set_class */
    /* private links */
    struct mmtls_flow *hnext;         /* hash chain */
    struct mmtls_flow *lprev, *lnext; /* LRU list (head = most recent) */
    bool in_closed_list;
};

struct mmtls_flow_table;

struct mmtls_flow_table_opts {
    uint32_t max_flows;
    uint32_t idle_timeout_ms;
    uint32_t closed_timeout_ms;
    /* A full table evicts a HANDSHAKE flow only once it has been idle this long (a half-open
     * session); 0 = at once. */
    uint32_t evict_idle_ms;
    /* Flow ids are id_offset + 1 + k * id_stride (k = 0, 1, ...): N workers with offsets
     * 0..N-1 and stride N give ids unique across the process.  0 stride counts as 1. */
    uint32_t id_offset, id_stride;
};

struct mmtls_flow_stats {
    uint64_t created, evicted, expired_idle, expired_closed, active, peak_active;
    uint64_t refused; /* new flows refused: table full of flows that may not be evicted */
};

/* Called once for every flow leaving the table, with the reason; must free f->ud. */
typedef void (*mmtls_flow_release_cb)(void *ctx, struct mmtls_flow *f,
                                      enum mmtls_flow_end_reason why);

MMTLS_MUST_USE int mmtls_flow_table_new(struct mmtls_flow_table **out,
                                        const struct mmtls_flow_table_opts *opts,
                                        mmtls_flow_release_cb release, void *ctx);
/* Releases every flow (reason SHUTDOWN) and frees the table; NULL is a no-op. */
void mmtls_flow_table_free(struct mmtls_flow_table *t);

/* Finds the flow of a decoded TCP packet, creating it when absent.  A full table evicts, least
 * recently used first, a closed flow, else a BARE flow, else a HANDSHAKE flow idle for
 * evict_idle_ms; when none may go, the new flow is refused: MMTLS_E_LIMIT (counted in
 * `refused`, *f NULL, *sender set).  *sender is the endpoint index (0/1) that sent pkt.
 * Updates timestamps, LRU position, counters and the TCP state from the packet's flags.
 * MMTLS_E_NOMEM when a flow cannot be allocated. */
MMTLS_MUST_USE int mmtls_flow_get(struct mmtls_flow_table *t, const struct mmtls_pkt *pkt,
                                  uint64_t now_us, struct mmtls_flow **f, int *sender);

/* Moves f's TCP state with flags of a packet from sender that mmtls_flow_get was given without
 * them (an owner that first checks a FIN or RST is one the endpoint will accept). */
void mmtls_flow_note_flags(struct mmtls_flow_table *t, struct mmtls_flow *f, int sender,
                           uint8_t tcp_flags);

/* Evicts the least recently used open flow whatever its class (a closed one first): what an
 * owner with no policy to apply (offline analysis) does after MMTLS_E_LIMIT.  false if empty. */
bool mmtls_flow_evict_lru(struct mmtls_flow_table *t);

/* Moves f to class c (enum mmtls_flow_class).  Call it while handling a packet of f (its LRU
 * position is then the most recent). */
void mmtls_flow_set_class(struct mmtls_flow_table *t, struct mmtls_flow *f, int c);

/* Flows of class c currently open (not closed). */
uint32_t mmtls_flow_class_count(const struct mmtls_flow_table *t, int c);

/* Releases flows whose timeout has passed at now_us.  Returns how many were released. */
uint32_t mmtls_flow_expire(struct mmtls_flow_table *t, uint64_t now_us);

/* Releases one flow now (reason given). */
void mmtls_flow_release(struct mmtls_flow_table *t, struct mmtls_flow *f,
                        enum mmtls_flow_end_reason why);

const struct mmtls_flow_stats *mmtls_flow_table_stats(const struct mmtls_flow_table *t);

/* Direction of a packet relative to the client: 0 = to server, 1 = to client. */
static inline int mmtls_flow_dir(const struct mmtls_flow *f, int sender)
{
    return sender == f->client ? 0 : 1;
}

#endif
