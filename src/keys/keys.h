/* keys — session secrets: the NSS key log format (RFC 9850) and the key store that maps a
 * client random to the secrets known for it.  The store is the one structure shared between
 * the key sources (key log file, pcapng Decryption Secrets Blocks, later the key server thread)
 * and the workers; it sits behind a small interface (put, lookup, remove, expire) so that a
 * distributed store can replace the in-process table.
 */
#ifndef MMTLS_KEYS_H
#define MMTLS_KEYS_H

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

#endif
