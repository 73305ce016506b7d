/* keys — session secrets: the NSS key log format (RFC 9850) and the key store that maps a
 * client random to the secrets known for it.  The store is the one structure shared between
 * the key sources (key log file, pcapng Decryption Secrets Blocks, later the key server thread)
 * and the workers; it sits behind a small interface (put, lookup, remove, expire) so that a
 * distributed store can replace the in-process table.
 */
#ifndef MMTLS_KEYS_H
#define MMTLS_KEYS_H

#include "crypto/crypto.h"
#include "util/util.h"

/* Key log labels (RFC 9850 §2.1 and the labels NSS/OpenSSL/GnuTLS write). */
enum mmtls_keylog_label {
    MMTLS_KL_CLIENT_RANDOM = 1, /* TLS <= 1.2 master secret */
    MMTLS_KL_CLIENT_EARLY_TRAFFIC_SECRET,
    MMTLS_KL_CLIENT_HANDSHAKE_TRAFFIC_SECRET,
    MMTLS_KL_SERVER_HANDSHAKE_TRAFFIC_SECRET,
    MMTLS_KL_CLIENT_TRAFFIC_SECRET, /* _N: index in mmtls_keylog_entry.index */
    MMTLS_KL_SERVER_TRAFFIC_SECRET, /* _N */
    MMTLS_KL_EXPORTER_SECRET,       /* parsed, never stored */
    MMTLS_KL_EARLY_EXPORTER_SECRET, /* parsed, never stored */
};

/* OpenSSL 3 logs secrets after a KeyUpdate with the literal label CLIENT_TRAFFIC_SECRET_N (and
 * SERVER_...): each such line is the generation after those already known. */
#define MMTLS_KEYLOG_INDEX_NEXT UINT32_MAX

struct mmtls_keylog_entry {
    enum mmtls_keylog_label label;
    uint32_t index; /* N of *_TRAFFIC_SECRET_N, else 0; or MMTLS_KEYLOG_INDEX_NEXT */
    uint8_t client_random[32];
    struct mmtls_secret secret;
};

/* Parses one line (without or with its trailing newline / CR).  Returns 0 with *e filled,
 * MMTLS_DECLINED for a blank line, a comment ('#') or an unknown label (skipped, per RFC 9850),
 * MMTLS_E_MALFORMED for a known label with a bad client random or secret.  Pure. */
MMTLS_MUST_USE int mmtls_keylog_line_parse(const char *line, size_t len,
                                           struct mmtls_keylog_entry *e);

#define MMTLS_KEYS_MAX_UPDATES 16 /* *_TRAFFIC_SECRET_N kept for N < this */

/* Bits of mmtls_keyset.have. */
#define MMTLS_KS_MASTER (1u << 0)
#define MMTLS_KS_EARLY (1u << 1)
#define MMTLS_KS_CHS (1u << 2)
#define MMTLS_KS_SHS (1u << 3)
#define MMTLS_KS_KEY_BLOCK (1u << 4) /* TLS 1.2 record keys (from the key protocol) */
#define MMTLS_KS_BYPASS (1u << 5)
/* application secrets have a bit per N in cts_have / sts_have */

/* Everything known for one client random.  Copies handed out by lookup are owned by the
 * caller, who wipes them (mmtls_keyset_wipe) once traffic keys are derived. */
struct mmtls_keyset {
    uint32_t have;
    uint32_t cts_have, sts_have; /* bit N: CLIENT/SERVER_TRAFFIC_SECRET_N present */
    struct mmtls_secret master;
    struct mmtls_secret early;
    struct mmtls_secret chs, shs;
    struct mmtls_secret cts[MMTLS_KEYS_MAX_UPDATES];
    struct mmtls_secret sts[MMTLS_KEYS_MAX_UPDATES];
    struct mmtls_key_block kb; /* MMTLS_KS_KEY_BLOCK: TLS <= 1.2 record keys */
    uint16_t tls_version;      /* from the key protocol, 0 when unknown (key log) */
    uint16_t cipher_suite;
    bool tag2; /* the session carries the private tag */
    /* Who may use these keys: a session matches only if its client address equals owner_ip
     * (key channel peer), unless owner_any (key log, DSB, or a peer allowed to speak for NAT). */
    bool owner_any;
    uint8_t owner_ip_version;
    uint8_t owner_ip[16];
};

void mmtls_keyset_wipe(struct mmtls_keyset *ks);

struct mmtls_keystore;

struct mmtls_keystore_opts {
    uint32_t max_entries; /* client randoms held; put beyond it fails with MMTLS_E_LIMIT */
    uint32_t ttl_ms;      /* entries older than this are expired (0 = never) */
};

struct mmtls_keystore_stats {
    uint64_t puts, duplicates, conflicts, full, lookups, hits, expired, removed;
    uint64_t entries; /* current */
};

MMTLS_MUST_USE int mmtls_keystore_new(struct mmtls_keystore **out,
                                      const struct mmtls_keystore_opts *opts);
/* Wipes every secret and frees; NULL is a no-op. */
void mmtls_keystore_free(struct mmtls_keystore *ks);

/* Adds one secret.  The same value twice is a counted duplicate (0).  A different value for a
 * label already set returns MMTLS_E_CONFLICT and keeps the first one.  EXPORTER labels are
 * dropped (MMTLS_DECLINED).  Thread-safe. */
MMTLS_MUST_USE int mmtls_keystore_put(struct mmtls_keystore *ks, const struct mmtls_keylog_entry *e,
                                      uint64_t now_ms);

/* Copies the secrets known for client_random into *out.  MMTLS_E_NOTFOUND if none.
 * Thread-safe. */
MMTLS_MUST_USE int mmtls_keystore_lookup(struct mmtls_keystore *ks, const uint8_t client_random[32],
                                         struct mmtls_keyset *out);

/* Wipes and removes the entry (session ended). */
void mmtls_keystore_remove(struct mmtls_keystore *ks, const uint8_t client_random[32]);
/* Removes entries older than the TTL. */
void mmtls_keystore_expire(struct mmtls_keystore *ks, uint64_t now_ms);
void mmtls_keystore_get_stats(struct mmtls_keystore *ks, struct mmtls_keystore_stats *st);

/* Loads a key log file into the store.  Returns 0, or a negative code with a one-line message
 * naming the file and line ("keys.log:12: malformed secret") in err. */
MMTLS_MUST_USE int mmtls_keylog_load_file(struct mmtls_keystore *ks, const char *path, char *err,
                                          size_t err_cap);

/* Loads key log text held in memory (a pcapng Decryption Secrets Block).  `what` names the source
 * in error messages.  Malformed lines are counted in *bad_lines and skipped. */
MMTLS_MUST_USE int mmtls_keylog_load_mem(struct mmtls_keystore *ks, const uint8_t *p, size_t len,
                                         uint64_t now_ms, uint32_t *bad_lines);

/* ------------------------------------------------------------------------------------------ */
/* Key protocol v1 (docs/keyproto.md): codec.  Pure: no allocation, no logging.                */

#define MMTLS_KP_VERSION 1
#define MMTLS_KP_HDR_LEN 4
#define MMTLS_KP_MAX_BODY 512
#define MMTLS_KP_MAX_MSG (MMTLS_KP_HDR_LEN + MMTLS_KP_MAX_BODY)
#define MMTLS_KP_MAX_SECRETS 8

enum mmtls_kp_type {
    MMTLS_KP_KEYS = 1,
    MMTLS_KP_BYPASS = 2,
    MMTLS_KP_KEEPALIVE = 3,
};

#define MMTLS_KP_F_TUPLE 0x01
#define MMTLS_KP_F_TAG2 0x02
#define MMTLS_KP_F_EARLY 0x04
#define MMTLS_KP_F_KEYLOG 0x08

enum mmtls_kp_kind {
    MMTLS_KP_CLIENT_EARLY = 1,
    MMTLS_KP_CLIENT_HS = 2,
    MMTLS_KP_SERVER_HS = 3,
    MMTLS_KP_CLIENT_APP0 = 4,
    MMTLS_KP_SERVER_APP0 = 5,
    MMTLS_KP_CLIENT_MAC = 16,
    MMTLS_KP_SERVER_MAC = 17,
    MMTLS_KP_CLIENT_KEY = 18,
    MMTLS_KP_SERVER_KEY = 19,
    MMTLS_KP_CLIENT_IV = 20,
    MMTLS_KP_SERVER_IV = 21,
    MMTLS_KP_MASTER = 32,
};

struct mmtls_kp_tuple {
    uint8_t ip_version;                   /* 4 or 6 */
    uint8_t client_ip[16], server_ip[16]; /* IPv4 in the first 4 bytes */
    uint16_t client_port, server_port;
};

/* A decoded message.  For KEYS the secrets are copied into `secret` (wipe with
 * mmtls_kp_msg_wipe); everything else is plain data. */
struct mmtls_kp_msg {
    enum mmtls_kp_type type;
    uint8_t client_random[32];
    uint8_t flags;
    struct mmtls_kp_tuple tuple; /* valid when flags & MMTLS_KP_F_TUPLE */
    uint16_t tls_version, cipher_suite;
    uint8_t n;
    uint8_t kind[MMTLS_KP_MAX_SECRETS];
    struct mmtls_secret secret[MMTLS_KP_MAX_SECRETS];
    uint8_t sni_len; /* BYPASS */
    char sni[256];   /* BYPASS, NUL-terminated (may contain any byte; escape on output) */
};

/* Parses one message from p[0..len).  Returns 0 with *m filled and *used = bytes consumed;
 * MMTLS_AGAIN with *used = bytes needed in total when incomplete; MMTLS_E_UNSUPPORTED for another
 * version; MMTLS_E_MALFORMED for anything else that breaks docs/keyproto.md. */
MMTLS_MUST_USE int mmtls_kp_parse(const uint8_t *p, size_t len, struct mmtls_kp_msg *m,
                                  size_t *used);

/* Encodes *m (its type, flags, fields) into out.  Returns the length written, or a negative
 * code when m breaks the rules (the encoder enforces what the parser checks) or out_cap is too
 * small. */
MMTLS_MUST_USE int mmtls_kp_encode(const struct mmtls_kp_msg *m, uint8_t *out, size_t out_cap);

void mmtls_kp_msg_wipe(struct mmtls_kp_msg *m);

/* Converts a parsed KEYS message into a keyset (TLS 1.3 secrets, TLS <= 1.2 key block or
 * master secret).  The owner fields are left to the caller. */
MMTLS_MUST_USE int mmtls_kp_to_keyset(const struct mmtls_kp_msg *m, struct mmtls_keyset *ks);

/* ------------------------------------------------------------------------------------------ */
/* Key server: a thread that accepts key channels (TLS 1.3, client certificates) and hands      */
/* each accepted KEYS / BYPASS to a delivery callback, on the key server thread.               */

struct mmtls_keyserver;

/* One accepted message.  `ks` is valid for the callback only (the server wipes it after). */
struct mmtls_key_delivery {
    enum mmtls_kp_type type; /* KEYS or BYPASS */
    uint8_t client_random[32];
    struct mmtls_keyset *ks; /* KEYS: secrets + owner; BYPASS: only the owner fields */
    bool has_tuple;
    struct mmtls_kp_tuple tuple;
    const char *sni;  /* BYPASS */
    uint64_t recv_ns; /* CLOCK_MONOTONIC when the message was read */
};

typedef void (*mmtls_key_deliver_cb)(void *ud, const struct mmtls_key_delivery *d);

struct mmtls_keyserver_opts {
    size_t sz;
    const char *listen;            /* "ADDR:PORT" or "[V6]:PORT" */
    const char *cert, *key;        /* PEM: the middlebox's certificate and key */
    const char *client_ca;         /* PEM: CA that issues client certificates */
    const char *const *allow_nat;  /* NULL-terminated: "cn:NAME" or CIDR; may be NULL */
    bool accept_master;            /* accept MASTER_SECRET from key log followers (default true) */
    uint32_t max_channels;         /* default 4096 */
    uint32_t handshake_timeout_ms; /* default 5000 */
    uint32_t idle_timeout_ms;      /* default 120000 */
    mmtls_key_deliver_cb deliver;
    void *deliver_ud;
};

struct mmtls_keyserver_stats {
    uint64_t accepted, rejected_tls, rejected_full, closed_idle, closed_malformed;
    uint64_t keys, bypass, keepalive, rejected_owner, rejected_master, messages_malformed;
    uint64_t channels; /* open now */
};

/* Creates the listening socket and the TLS context (errors in err: "cannot load cert.pem: ..."),
 * and starts the thread. */
MMTLS_MUST_USE int mmtls_keyserver_start(struct mmtls_keyserver **out,
                                         const struct mmtls_keyserver_opts *o, char *err,
                                         size_t err_cap);
/* The bound port (useful with port 0). */
uint16_t mmtls_keyserver_port(const struct mmtls_keyserver *s);
void mmtls_keyserver_get_stats(struct mmtls_keyserver *s, struct mmtls_keyserver_stats *st);
/* Stops the thread, closes every channel, wipes buffers, frees; NULL is a no-op. */
void mmtls_keyserver_stop(struct mmtls_keyserver *s);

#endif
