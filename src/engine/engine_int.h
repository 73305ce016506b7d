/* engine internals shared by engine.c (packets, flows, apps) and engine_tls.c (the per-session
 * TLS state machine).  Not part of any public interface. */
#ifndef MMTLS_ENGINE_INT_H
#define MMTLS_ENGINE_INT_H

#include "engine/engine.h"

#include "crypto/crypto.h"
#include "tls/tls.h"

#define ENG_MAX_APPS 16
#define ENG_NAME_MAX 256 /* SNI, ALPN kept (longer values are truncated for the log) */
#define ENG_DN_MAX 512   /* certificate subject / issuer */
#define ENG_JA3_MAX 1024 /* JA3 string kept (longer ones are truncated; the hash covers all) */
#define ENG_REC_MAX (MMTLS_TLS_HDR_LEN + MMTLS_TLS12_MAX_CIPHERTEXT)
#define ENG_ACK_GAP_PKTS 32
#define ENG_ACK_GAP_US 1000000

/* TLS 1.3 key phases of one direction (RFC 8446 §7.1). */
enum { K_EARLY = 0, K_HS = 1, K_APP = 2, K_N = 3 };

struct eng_key {
    bool have;                  /* secret known */
    struct mmtls_secret secret; /* wiped once rp is built, except K_APP (needed for updates) */
    struct mmtls_rprot *rp;     /* owned, built on first use */
    uint64_t seq;
    uint32_t gen; /* K_APP: N of application_traffic_secret_N */
};

/* One direction of one TLS session. */
struct eng_tdir {
    struct mmtls_buf rbuf; /* owned: partial record (straddles segments) */
    uint64_t next_off;     /* stream offset of the next record header */
    bool dead;             /* framing lost for good: count, no more parsing */
    bool resync;           /* after a gap: looking for a record boundary */
    uint64_t gap_bytes;    /* bytes lost in the last gap (for seq estimation) */
    struct mmtls_tls_hs_reasm hs;
    bool hs_dead; /* handshake parsing stopped (error) */
    /* protection */
    bool protected_; /* records are protected (TLS 1.2 after CCS, TLS 1.3 phases) */
    uint32_t epoch;
    struct eng_key k[K_N];    /* TLS 1.3 */
    int cur;                  /* TLS 1.3 current phase index */
    struct mmtls_rprot *rp12; /* owned: TLS <= 1.2 current */
    uint64_t seq12;
    struct mmtls_rprot *pend12; /* owned: installed at the next CCS */
    uint32_t failed;            /* consecutive undecryptable records */
    bool crypto_dead;           /* gave up decrypting this direction */
    bool update_after;          /* KeyUpdate seen in the current record */
    bool finished;              /* Finished of the current handshake seen */
    uint64_t pause_left;        /* plaintext bytes still to skip */
    /* mmtls_session_pause_after_wire: the count (0: none), what is left of it, whether the
     * pause in force is the count's, and a new count not yet told to the fast path */
    uint64_t wire_budget, wire_left;
    bool wire_paused, wire_rearm;
    bool fast_consented; /* fast path: a skip was asked for since the last resume */
    uint64_t avg_rec;    /* running average of protected record sizes */
    bool err_once[MMTLS_TLSERR_MAX + 1];
};

/* A frame held inline until the records it completes are inspected. */
struct eng_frame {
    struct eng_frame *next;
    int port;         /* arrival port; it leaves by port ^ 1 */
    int dir;          /* flow direction, -1 if not a TCP frame of a known flow */
    uint32_t end_seq; /* sequence number after its payload (valid when dir >= 0) */
    uint32_t seq;     /* sequence number of its first byte (valid when dir >= 0) */
    uint64_t need;    /* id of the last held record of its direction it completes */
    uint16_t meta_len;
    uint8_t meta[MMTLS_ENGINE_META_MAX];
    size_t len;
    uint8_t data[]; /* owned */
};

/* A record held while its session waits for keys (copy of header + fragment). */
struct eng_held {
    struct eng_held *next;
    int dir;
    uint64_t id; /* per direction, from 1, in arrival order */
    uint64_t off;
    size_t len;
    uint8_t data[]; /* owned */
};

struct eng_session {
    struct mmtls_engine *eng;   /* borrowed */
    struct eng_session *crnext; /* engine's client-random map */
    bool in_crmap;
    bool from_channel;                      /* keys came from a key channel */
    uint8_t keys_digest[32];                /* SHA-256 of the accepted secrets (first wins) */
    struct eng_held *held_head, *held_tail; /* owned: records waiting for keys, in order */
    size_t held_bytes;
    bool holding[2];   /* a direction's records are being held */
    bool wait_expired; /* gave up waiting for keys */
    bool replaying;
    bool hold_over_cap;  /* the hold caps were hit: exc_policy[MMTLS_EXC_HOLD] decides */
    bool c2s_protected;  /* the client sent a protected record (TLS 1.3) */
    uint64_t held_id[2]; /* id of the last record held, by direction */
    uint64_t done_id[2]; /* id of the last held record replayed, by direction */
    uint64_t wait_start_us;
    uint64_t frame_hold_mono_ns; /* CLOCK_MONOTONIC when its first frame was held (0: none) */
    struct eng_frame *frames_head, *frames_tail; /* owned: inline frames held with the records */
    struct eng_session *wnext, *wprev;           /* engine's list of sessions holding records */
    bool in_waitlist;
    struct mmtls_flow *flow; /* borrowed: the flow outlives the session */
    struct mmtls_session_info info;
    char sni[ENG_NAME_MAX], alpn[ENG_NAME_MAX], cipher[64];
    char ja3[ENG_JA3_MAX], ja3_hash[MMTLS_TLS_JA3_HASH_LEN + 1], ja4[MMTLS_TLS_JA4_LEN + 1];
    char subject[ENG_DN_MAX], issuer[ENG_DN_MAX];
    void *ctx[ENG_MAX_APPS];
    bool started;       /* recognised as TLS (or plain); SESSION_START raised or pending */
    bool start_pending; /* SESSION_START waits for the ClientHello (eng_tls_session_start) */
    bool not_tls;
    bool plain; /* a TCP flow that is not TLS, inspected as a plain stream (inspect_plain) */
    bool keys_looked_up, keys_found;
    struct mmtls_keyset ks; /* copy from the key store; wiped when keys are installed */
    const struct mmtls_suite *suite;
    uint16_t version; /* negotiated */
    bool tls13;
    bool sh_seen, hrr_pending;
    bool early_offered;
    bool server_full_hs; /* Certificate/ServerKeyExchange seen in this TLS<=1.2 handshake */
    uint8_t ch_session_id[32];
    uint8_t ch_session_id_len;
    bool hs_end_raised;
    bool renego;                    /* a renegotiation is in progress */
    uint8_t next_client_random[32]; /* renegotiation: random of the pending handshake */
    struct eng_tdir d[2];
    uint32_t err_count[MMTLS_TLSERR_MAX + 1];
    /* the record being dispatched (MMTLS_EV_NEW_RECORD) */
    struct {
        bool active;
        struct mmtls_record rec;
        const uint8_t *hdr;  /* borrowed: 5-byte header */
        const uint8_t *frag; /* borrowed */
        size_t frag_len;
        const uint8_t *plain; /* borrowed: engine scratch or frag */
        size_t plain_len;
        bool decrypted, failed;
        int tried_key; /* TLS 1.2 lazy decryption */
    } cur;
};

/* One flow's engine state (flow->ud). */
struct eng_flow {
    struct mmtls_reasm r[2]; /* by direction: 0 client->server, 1 server->client */
    uint64_t seen_end[2];    /* highest stream offset seen from each direction */
    /* An acknowledgement beyond a hole is applied (as a gap) only once the hole has lasted
     * ENG_ACK_GAP_PKTS packets or ENG_ACK_GAP_US of capture time: captures reorder ACKs and
     * data, and a hole that is filled a few packets later is not a loss. */
    bool ack_pending[2];
    uint32_t ack_pending_seq[2];
    uint32_t ack_pending_pkts[2];
    uint64_t ack_pending_us[2];
    uint64_t ack_pending_next[2]; /* next_off when the count (re)started: progress restarts it */
    bool seen_any[2];
    bool midstream, stop;
    bool syn_first; /* the flow's first packet was a bare SYN (no ACK): a client opening it */
    /* exception policies: refused = every packet dropped (fail closed: session cap, midstream);
     * bypassed = no longer inspected, forwarded (fail open); bypass_pending = to be bypassed
     * once the current segment is handled (reassembly cap hit inside the reassembler) */
    bool refused, bypassed, bypass_pending;
    bool mid_pending;      /* picked up without a SYN: the midstream policy at its first non-RST */
    struct eng_session *s; /* owned, NULL until the flow looks like TLS */
    /* inline: what RSTs are built from */
    int port_in[2];       /* arrival port of each direction's frames, -1 unknown */
    uint32_t last_ack[2]; /* ACK number last sent in each direction */
    uint32_t snd_nxt[2];  /* end of the data forwarded so far in each direction */
    bool have_snd[2];
    bool have_ack[2];
    uint16_t l2_len[2]; /* link header of the direction's last frame (Ethernet + VLAN) */
    uint8_t l2[2][22];
    uint16_t meta_len[2];
    uint8_t meta[2][MMTLS_ENGINE_META_MAX];
    /* fast path (engine_fast.c): what on_flow_state was last told, by endpoint */
    uint8_t fast_mode[2];
    uint32_t fast_gen[2];
    uint32_t fast_budget[2];
    bool fast_told, fast_again[2];
    struct mmtls_engine *eng; /* borrowed */
    struct mmtls_flow *flow;  /* borrowed */
};

struct eng_app {
    struct mmtls_app app;
};

struct eng_pend; /* engine_keys.c */

/* Rate-limited reports of one resource's exceptions (engine.c: eng_exception). */
struct eng_excr {
    uint64_t since;     /* hits not reported yet */
    uint64_t last_us;   /* engine clock of the last report (or of the first hit) */
    int act;            /* what the last hit did (enum mmtls_exc_act) */
    bool reported_once; /* the first hit is reported at once */
};

#define ENG_MEMO_SIZE 16384u /* flows evicted/expired uninspected, remembered (a power of 2) */

#define ENG_CRMAP_BUCKETS 4096u

struct mmtls_engine {
    struct mmtls_engine_opts o;
    struct mmtls_ring key_ring;                   /* owned: key messages from the key server */
    struct eng_session *crmap[ENG_CRMAP_BUCKETS]; /* sessions by client random (borrowed) */
    struct eng_pend *pend[ENG_CRMAP_BUCKETS];     /* owned: keys waiting for their session */
    struct eng_pend *pend_tail[ENG_CRMAP_BUCKETS];
    uint64_t cr_seed;
    struct eng_pend *pend_old, *pend_new; /* arrival order, for expiry */
    uint32_t npend;
    struct eng_session *wait_head, *wait_tail; /* sessions holding records, oldest first */
    size_t held_total;
    struct mmtls_flow_table *flows; /* owned */
    struct mmtls_defrag *defrag;    /* owned */
    struct mmtls_memcap reasm_mc;
    struct eng_app apps[ENG_MAX_APPS];
    int napps;
    struct mmtls_engine_stats st;
    struct mmtls_flow_stats flow_base; /* totals of flow tables replaced by a flush */
    struct eng_excr excr[MMTLS_EXC_N];
    uint64_t *memo; /* owned: ENG_MEMO_SIZE tags of flow keys (midstream pickups) */
    uint64_t memo_seed;
    uint64_t first_us; /* engine clock of the first packet (midstream grace) */
    bool have_first;
    uint64_t last_stats_us; /* engine clock of the last on_stats report */
    uint64_t now_us, last_tick_us;
    uint8_t *scratch; /* owned: ENG_REC_MAX bytes of decrypted plaintext */
    int verdict;      /* for the packet being processed */
    bool inline_mode; /* set by mmtls_engine_packet_inline */
    struct mmtls_engine_tx tx;
    /* the frame being processed inline (borrowed for the call) */
    int cur_port;
    const uint8_t *cur_data;
    size_t cur_len;
    const uint8_t *cur_meta;
    size_t cur_meta_len;
    struct eng_session *cur_hold; /* session that held a record of the current frame */
    struct eng_flow *cur_ef;      /* flow and direction of the current frame (inline) */
    int cur_dir;
    uint32_t cur_end_seq;
    uint32_t cur_seq;                /* the current TCP frame's first sequence number */
    const struct mmtls_pkt *cur_pkt; /* the decoded current frame (inline, tamper mode) */
    uint64_t cur_payload_off;        /* stream offset of its TCP payload; UINT64_MAX unknown */
    bool cur_csum_verify; /* inline: the current frame's checksums are complete: verify them */
    struct {
        bool on, lost;
        uint32_t seq, nskip;
    } fast_resume;       /* mmtls_engine_fast_resume, for the next frame */
    bool fast_inorder;   /* mmtls_engine_fast_inorder, for the next frame */
    bool fast_skipping;  /* a skip the kernel lost the framing of: its gap is expected */
    bool fast_want_sync; /* mmtls_engine_fast_sync_next */
    uint64_t fast_copies_lost;
};

/* engine.c */
/* A resource cap was hit (res: enum mmtls_exc_res) and `act` (MMTLS_EXC_ACT_*) was done: counted,
 * reported at most once per second per resource (log line and on_exception). */
void eng_exception(struct mmtls_engine *e, int res, int act);
/* The policy that applies to res now: MMTLS_EXC_ACT_OFFLINE offline, else closed or open. */
int eng_exc_act(const struct mmtls_engine *e, int res);
int eng_dispatch(struct eng_session *s, enum mmtls_event ev, const struct mmtls_event_info *info);
void eng_error(struct eng_session *s, int code, int dir, uint64_t off, const char *detail);

/* engine_tls.c */
struct eng_session *eng_session_new(struct mmtls_engine *e, struct mmtls_flow *f);
void eng_session_free(struct eng_session *s);
/* In-order stream bytes of direction dir. */
void eng_tls_data(struct eng_session *s, int dir, uint64_t off, const uint8_t *p, size_t len);
/* Raises a pending SESSION_START (then the first HANDSHAKE_START): when the first ClientHello
 * is parsed, or before any other event of the session (eng_dispatch). */
void eng_tls_session_start(struct eng_session *s);
/* inspect_plain: turns s into a plain-stream session (SESSION_START raised now). */
void eng_plain_start(struct eng_session *s);
/* Bytes [off, off+len) of dir are lost. */
void eng_tls_gap(struct eng_session *s, int dir, uint64_t off, uint64_t len);
/* Computes the final key status before SESSION_END. */
void eng_session_finish(struct eng_session *s);
/* Processes a held record again (replay after keys arrived or the wait expired). */
void eng_tls_replay(struct eng_session *s, int dir, const uint8_t *rec, size_t len, uint64_t off);
/* Installs s->ks (keys just delivered) into the session's directions. */
void eng_tls_keys_arrived(struct eng_session *s);
/* Is the record at rec (header first) of direction dir protected, in the session's state? */
bool eng_tls_rec_protected(const struct eng_session *s, int dir, const uint8_t *rec);
/* Would a protected record of dir now lack the secrets it needs, which may still come (no keys
 * at all, or a TLS 1.3 key channel session without this phase's secret or a later one)? */
bool eng_tls_keys_missing(const struct eng_session *s, int dir);

/* engine_keys.c */
int eng_keys_init(struct mmtls_engine *e);
void eng_keys_fini(struct mmtls_engine *e);
/* The session's client random is known: map it, and apply keys already waiting for it. */
void eng_keys_session_add(struct eng_session *s);
void eng_keys_session_del(struct eng_session *s);
/* A renegotiation's ClientHello: re-maps the session under the new client random and forgets
 * the previous handshake's keys (the new ones are looked up or waited for). */
void eng_keys_session_renego(struct eng_session *s, const uint8_t cr[32]);
/* Holds a record if the session waits for keys; true when held (the caller stops). */
bool eng_keys_hold(struct eng_session *s, int dir, const uint8_t *rec, size_t len, uint64_t off,
                   bool protected_rec);
/* Expires waiting keys and sessions that waited too long for theirs. */
void eng_keys_tick(struct mmtls_engine *e);
/* Frees the session's held records (session end). */
void eng_keys_drop_held(struct eng_session *s);
/* Replays the session's held records now (with whatever keys it has). */
void eng_keys_release(struct eng_session *s);

/* engine_inline.c */
/* Keeps a copy of the current frame with session s (verdict HOLD). */
void eng_inline_hold_frame(struct mmtls_engine *e, struct eng_session *s);
/* Sends s's held frames on (records inspected, session not blocked) or drops them. */
void eng_inline_release_frames(struct eng_session *s, bool send);
/* Some of s's held records were replayed, others still wait: sends the held frames whose
 * records were all inspected, and (server TLS 1.3 flight, hold mode) the head of a frame up to
 * its direction's first record still held; the rest stays held. */
void eng_inline_release_ready(struct eng_session *s);
/* Resets both ends of a blocked session's flow (RST with the right sequence numbers). */
void eng_inline_reset(struct mmtls_engine *e, struct eng_flow *ef);
/* Test-only tamper mode (mmtls_engine_opts.tamper_from): rewrites a decrypted TLS 1.3
 * application record in the current frame.  rec is the record as received (header first),
 * frag_len its fragment length (tag2 included), plain/n/type what it decrypted to, seq its
 * sequence number under rp. */
void eng_inline_tamper(struct eng_session *s, int dir, struct mmtls_rprot *rp, uint64_t seq,
                       const uint8_t *rec, uint64_t off, size_t frag_len, const uint8_t *plain,
                       size_t n, uint8_t type);
/* Records what RSTs of this flow are built from (link header, ports, ACKs). */
void eng_inline_note(struct mmtls_engine *e, struct eng_flow *ef, int dir,
                     const struct mmtls_pkt *pkt);
/* A frame of direction dir ending at end_seq went out: the receiver's next expected sequence. */
void eng_inline_sent(struct eng_flow *ef, int dir, uint32_t end_seq);

/* Direction dir is where a pause can skip application-data records whole (engine_tls.c). */
bool eng_dir_skippable(const struct eng_session *s, int dir);

/* engine_fast.c (kernel fast path) */
/* Before the current frame's segment (seq: its sequence number): applies a pending kernel
 * skip to direction dir, checks that an in-order frame has no hole before it. */
void eng_fast_resume(struct mmtls_engine *e, struct eng_flow *ef, int dir, uint32_t seq,
                     const struct mmtls_reasm_sink *sink);
/* After a frame: tells on_flow_state what the kernel may do with the flow now, if that changed. */
void eng_fast_publish(struct mmtls_engine *e, struct eng_flow *ef);
/* The flow is released. */
void eng_fast_flow_end(struct mmtls_engine *e, struct eng_flow *ef);
/* A gap in direction dir at offset off (inline, fast path): bytes passed uninspected. */
void eng_fast_gap(struct eng_session *s, int dir, uint64_t off);

#endif
