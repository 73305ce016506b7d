/* mmtls — the framework API for inspection apps.
 *
 * An app registers one callback and a bitmask of the events it wants.  The engine calls it on
 * the worker thread that owns the flow; callbacks must not block.  Everything handed to a
 * callback (record plaintext, session info strings) is borrowed: valid only until the callback
 * returns, unless documented otherwise.  Apps copy what they keep.
 *
 * See docs/API.md for a walk-through and examples/sni_log.c for a complete app.
 */
#ifndef MMTLS_MMTLS_H
#define MMTLS_MMTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mmtls/error.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mmtls_engine;  /* opaque: one per worker */
struct mmtls_session; /* opaque: one per TLS connection (one TCP flow) */

/* Events (bit values, OR them into mmtls_app.events). */
enum mmtls_event {
    MMTLS_EV_SESSION_START = 1u << 0,   /* a flow was recognised as TLS (first ClientHello) */
    MMTLS_EV_HANDSHAKE_START = 1u << 1, /* a ClientHello: the first, or a renegotiation */
    MMTLS_EV_HANDSHAKE_END = 1u << 2,   /* both Finished seen (or inferred, see docs/API.md) */
    MMTLS_EV_NEW_RECORD = 1u << 3,      /* a complete TLS record in either direction */
    MMTLS_EV_ERROR = 1u << 4,           /* something the engine could not follow or verify */
    MMTLS_EV_SESSION_END = 1u << 5,     /* the flow ended or expired; last event of a session */
};
#define MMTLS_EV_ALL 0x3fu

enum mmtls_dir {
    MMTLS_DIR_TO_SERVER = 0, /* client -> server */
    MMTLS_DIR_TO_CLIENT = 1, /* server -> client */
};

/* TLS content types (RFC 8446 §5.1). */
enum mmtls_content_type {
    MMTLS_CT_CHANGE_CIPHER_SPEC = 20,
    MMTLS_CT_ALERT = 21,
    MMTLS_CT_HANDSHAKE = 22,
    MMTLS_CT_APPLICATION_DATA = 23,
    MMTLS_CT_HEARTBEAT = 24,
};

/* A record as seen in MMTLS_EV_NEW_RECORD. */
struct mmtls_record {
    enum mmtls_dir dir;
    uint8_t outer_type;     /* content type in the record header */
    uint8_t type;           /* inner type for TLS 1.3 once decrypted, else outer_type */
    uint16_t version;       /* legacy_record_version from the header */
    uint32_t wire_len;      /* header + fragment */
    uint32_t max_plain_len; /* upper bound of the plaintext length without decrypting */
    uint64_t seq;           /* record sequence number within its key epoch */
    uint32_t epoch;         /* key epoch: 0 plaintext, then one per key change in this direction */
    uint64_t stream_off;    /* offset of the record header in the TCP byte stream of `dir` */
    bool encrypted;         /* protected under some key */
    bool decryptable;       /* keys are present: mmtls_record_plaintext can succeed */
    bool early;             /* TLS 1.3 0-RTT data (see mmtls_session_info.early_data_accepted) */
};

/* Error codes of MMTLS_EV_ERROR (stable: they appear in logs). */
enum mmtls_tls_error {
    MMTLS_TLSERR_BAD_RECORD_MAC = 1,  /* AEAD tag, MAC or CBC padding check failed */
    MMTLS_TLSERR_RECORD_OVERFLOW,     /* record longer than RFC 8446/5246 allow */
    MMTLS_TLSERR_MALFORMED_RECORD,    /* record header or inner plaintext breaks the grammar */
    MMTLS_TLSERR_MALFORMED_HANDSHAKE, /* a handshake message breaks the grammar */
    MMTLS_TLSERR_HANDSHAKE_TOO_LARGE, /* a handshake message exceeds the configured cap */
    MMTLS_TLSERR_UNSUPPORTED_SUITE,   /* cipher suite or version the engine cannot decrypt */
    MMTLS_TLSERR_NO_KEYS,             /* encrypted data and no secrets for the session */
    MMTLS_TLSERR_KEY_MISMATCH,        /* secrets present but no record verifies with them */
    MMTLS_TLSERR_GAP,                 /* bytes missing in the TCP stream (capture loss) */
    MMTLS_TLSERR_RESYNC_FAILED,       /* after a gap, no record boundary could be recovered */
    MMTLS_TLSERR_EVASION_OVERLAP,     /* retransmitted bytes differ from bytes already seen */
    MMTLS_TLSERR_MEMCAP,              /* a memory cap was hit for this flow */
    MMTLS_TLSERR_UNEXPECTED_MESSAGE,
    /* message out of order for the handshake state */
    MMTLS_TLSERR_EARLY_DATA_SKIPPED, /* 0-RTT records skipped: early secret missing */
    MMTLS_TLSERR_KEY_REJECTED,       /* keys from a key channel refused (owner, conflict) */
};

/* Static name of an mmtls_tls_error ("bad_record_mac", ...); never NULL. */
const char *mmtls_tls_error_name(int code);

struct mmtls_error_info {
    int code; /* enum mmtls_tls_error */
    enum mmtls_dir dir;
    uint64_t stream_off; /* where in the direction's byte stream, when meaningful */
    const char *detail;  /* borrowed, human readable, may be NULL */
};

struct mmtls_event_info {
    enum mmtls_event ev;
    const struct mmtls_record *rec;     /* MMTLS_EV_NEW_RECORD, else NULL */
    const struct mmtls_error_info *err; /* MMTLS_EV_ERROR, else NULL */
};

/* Key status of a session. */
enum mmtls_key_status {
    MMTLS_KEYS_NONE = 0,  /* no secrets matched the session */
    MMTLS_KEYS_PARTIAL,   /* some records could not be decrypted */
    MMTLS_KEYS_DECRYPTED, /* every protected record seen was decrypted and verified */
    MMTLS_KEYS_BYPASS,    /* the client asked for the session not to be inspected */
};

/* Session information.  Strings are NUL-terminated copies owned by the session and valid until
 * MMTLS_EV_SESSION_END returns; they may hold arbitrary bytes from the peer (escape on output).
 * Fields are filled as the handshake progresses; empty strings and zeros mean "not seen".
 * The client fingerprints ja3, ja3_hash and ja4 are those of the session's first ClientHello
 * (GREASE removed); they stay "" when they cannot be computed, and a JA3 string longer than
 * 1023 bytes is truncated (ja3_hash still covers all of it). */
struct mmtls_session_info {
    uint64_t flow_id;
    uint64_t start_ts_us;
    uint64_t last_ts_us;
    uint8_t ip_version;                   /* 4 or 6 */
    uint8_t client_ip[16], server_ip[16]; /* IPv4 in the first 4 bytes */
    uint16_t client_port, server_port;
    uint16_t version;         /* negotiated TLS version (0x0301..0x0304), 0 until known */
    uint16_t cipher_suite;    /* IANA value, 0 until known */
    const char *cipher_name;  /* IANA name or "" */
    const char *sni;          /* server_name from the ClientHello */
    const char *ja3;          /* JA3 string (github.com/salesforce/ja3), first ClientHello */
    const char *ja3_hash;     /* MD5 of the whole JA3 string, lowercase hex */
    const char *ja4;          /* FoxIO JA4 ("t13d1516h2_8daaf6152771_e5627efa2ab1") */
    const char *alpn;         /* negotiated protocol (ServerHello / EncryptedExtensions) */
    const char *cert_subject; /* server certificate, RFC 2253 form, when visible */
    const char *cert_issuer;
    uint8_t client_random[32];
    uint8_t server_random[32];
    bool have_client_random, have_server_random;
    bool resumed;               /* PSK (TLS 1.3) or session-ID/ticket (TLS 1.2) resumption */
    bool hello_retry;           /* a HelloRetryRequest was sent */
    bool early_data;            /* the client offered 0-RTT */
    int8_t early_data_accepted; /* -1 unknown (EncryptedExtensions not seen), 0 no, 1 yes */
    bool encrypt_then_mac;      /* RFC 7366 negotiated (CBC suites) */
    bool blocked;
    bool private_tag;    /* the endpoints use the private tag: tamper-evident end to end */
    bool plain;          /* not TLS: a plain TCP stream (the engine's inspect_plain option) */
    uint32_t handshakes; /* 1 + renegotiations */
    enum mmtls_key_status key_status;
    struct {
        uint64_t records, wire_bytes;      /* all TLS records of this direction */
        uint64_t app_records, plain_bytes; /* decrypted application data */
        uint64_t undecrypted_records;      /* protected records not decrypted */
        uint64_t skipped_bytes;            /* plaintext skipped by pause_monitor */
        uint32_t key_updates;
    } dir[2];
    uint32_t errors; /* MMTLS_EV_ERROR events raised on this session */
};

/* Verdicts returned by a callback. */
enum mmtls_verdict {
    MMTLS_VERDICT_CONTINUE = 0,
    MMTLS_VERDICT_BLOCK = 1, /* same as calling mmtls_session_block() */
};

struct mmtls_app {
    size_t sz; /* sizeof(struct mmtls_app): lets fields be added without breaking the ABI */
    const char *name;
    uint32_t events; /* mask of enum mmtls_event */
    /* Called for each subscribed event.  Returns an mmtls_verdict. */
    int (*on_event)(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg);
    void *arg; /* passed back verbatim */
};

/* Registers an app with an engine before the first packet.  Apps run in registration order.
 * *app_id receives the slot used for per-session contexts.  The app struct is copied. */
MMTLS_MUST_USE int mmtls_engine_app_register(struct mmtls_engine *e, const struct mmtls_app *app,
                                             int *app_id);

/* In MMTLS_EV_NEW_RECORD only: decrypts and verifies the current record (once; later calls
 * return the same bytes) and hands back its plaintext, TLS 1.3 padding and inner type removed.
 * *p is borrowed until the callback returns.  Returns 0; MMTLS_E_AUTH when verification fails
 * (an MMTLS_EV_ERROR is raised and nothing unverified is returned); MMTLS_E_NOTFOUND when the
 * record cannot be decrypted (no keys, not encrypted under a known key). */
MMTLS_MUST_USE int mmtls_record_plaintext(struct mmtls_session *s, const uint8_t **p, size_t *len);

/* Stops monitoring direction `dir` for the next `nbytes` bytes of application plaintext: whole
 * records inside that window are neither decrypted nor dispatched (MMTLS_EV_NEW_RECORD is not
 * raised for them).  The window is measured with each record's max_plain_len, so padding can only
 * make monitoring resume earlier, never later.  nbytes UINT64_MAX pauses until resumed. */
void mmtls_session_pause(struct mmtls_session *s, enum mmtls_dir dir, uint64_t nbytes);
/* Resumes monitoring now. */
void mmtls_session_resume(struct mmtls_session *s, enum mmtls_dir dir);
/* Pauses direction `dir` for good (as mmtls_session_pause(s, dir, UINT64_MAX)) once its
 * application-data records counted from now, as they are on the wire (5-byte header, tag and
 * padding included), reach `nbytes`: the record that reaches it is inspected whole, what follows
 * is not.  Calling it again starts a new count and ends a pause this count caused (a new
 * response); nbytes 0 disarms it.  Unlike the plaintext window of mmtls_session_pause, the kernel
 * fast path (mmtlsd --io fast) applies this count itself, so that the skipped bytes are never
 * copied to user space; a sender's padding uses it up as data does (docs/FASTPATH.md). */
void mmtls_session_pause_after_wire(struct mmtls_session *s, enum mmtls_dir dir, uint64_t nbytes);

/* Blocks the session: inline, the current record's completing packet is dropped and both ends
 * are reset; offline, the session is marked blocked and no further records are dispatched. */
void mmtls_session_block(struct mmtls_session *s, const char *reason);

/* Read-only view of the session; valid for the session's lifetime. */
const struct mmtls_session_info *mmtls_session_info(const struct mmtls_session *s);

/* Per-app session context, NULL until set.  The app frees it in MMTLS_EV_SESSION_END. */
void *mmtls_session_ctx_get(const struct mmtls_session *s, int app_id);
void mmtls_session_ctx_set(struct mmtls_session *s, int app_id, void *ctx);

/* Static name for a cipher suite ("TLS_AES_128_GCM_SHA256") or NULL if unknown. */
const char *mmtls_cipher_suite_name(uint16_t id);
/* "TLS 1.3", "TLS 1.2", ... or "unknown". */
const char *mmtls_version_name(uint16_t version);

#ifdef __cplusplus
}
#endif
#endif
