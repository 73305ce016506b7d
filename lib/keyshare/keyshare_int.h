/* keyshare_int.h — internals of libmmtls-keyshare shared by keyshare.c (key log callback and
 * message building), keyshare_chan.c (queue, background thread, channel), preload.c and the unit
 * test (tests/unit/test_keyshare.c).  Nothing here is exported from the shared objects: the
 * libraries build with -fvisibility=hidden and an explicit export map.
 */
#ifndef MMTLS_KEYSHARE_INT_H
#define MMTLS_KEYSHARE_INT_H

#include <mmtls/keyshare.h>

#include "keys/keys.h"
#include "util/util.h"

/* Marks the public entry points (everything else is hidden). */
#define MMTLS_KEYSHARE_API __attribute__((visibility("default")))

#define MMTLS_KEYSHARE_QUEUE_DEFAULT 4096u
#define MMTLS_KEYSHARE_QUEUE_LIMIT (1u << 20)
#define MMTLS_KEYSHARE_EXIT_FLUSH_MS 500

/* ------------------------------------------------------------------------------------------ */
/* Pure helpers (unit-tested)                                                                  */

/* Key log labels the library cares about (OpenSSL's SSL_CTX_set_keylog_callback lines,
 * RFC 9850 §2.1). */
enum mmtls_keyshare_label {
    MMTLS_KEYSHARE_L_CLIENT_RANDOM = 1,
    MMTLS_KEYSHARE_L_EARLY,
    MMTLS_KEYSHARE_L_CHS,
    MMTLS_KEYSHARE_L_SHS,
    MMTLS_KEYSHARE_L_CTS0,
    MMTLS_KEYSHARE_L_STS0,
};

/* Parses "LABEL <64 hex client random> <hex secret>".  Returns 0 with the fields filled,
 * MMTLS_DECLINED for labels never sent (EXPORTER_SECRET, EARLY_EXPORTER_SECRET, *_TRAFFIC_SECRET_N
 * for N > 0, unknown ones), MMTLS_E_MALFORMED otherwise.  Pure; secret must be wiped by the
 * caller. */
MMTLS_MUST_USE int mmtls_keyshare_line_parse(const char *line, size_t len,
                                             enum mmtls_keyshare_label *label, uint8_t cr[32],
                                             struct mmtls_secret *secret);

/* true when sni matches one of the comma-separated fnmatch(3) patterns (case-insensitive;
 * blanks around a pattern are ignored; patterns longer than 255 bytes never match). */
bool mmtls_keyshare_bypass_match(const char *patterns, const char *sni);

/* Secrets of one TLS 1.3 session, collected line by line. */
struct mmtls_keyshare_tls13 {
    uint32_t have; /* bit (1 << label) */
    struct mmtls_secret early, chs, shs, cts0, sts0;
};

#define MMTLS_KEYSHARE_TLS13_COMPLETE                                                              \
    ((1u << MMTLS_KEYSHARE_L_CHS) | (1u << MMTLS_KEYSHARE_L_SHS) | (1u << MMTLS_KEYSHARE_L_CTS0) | \
     (1u << MMTLS_KEYSHARE_L_STS0))

/* Encodes a KEYS message for a complete TLS 1.3 session into out (MMTLS_KP_MAX_MSG bytes).
 * tuple may be NULL.  Returns the length or a negative code.  Pure. */
MMTLS_MUST_USE int mmtls_keyshare_build_tls13(const struct mmtls_keyshare_tls13 *t,
                                              const uint8_t cr[32], uint16_t version,
                                              uint16_t suite, const struct mmtls_kp_tuple *tuple,
                                              uint8_t *out, size_t out_cap);

/* Derives the TLS <= 1.2 key block from the master secret (RFC 5246 §6.3) and encodes a KEYS
 * message with kinds 16..21 (never the master secret).  MMTLS_E_UNSUPPORTED for a suite the
 * crypto table does not know.  Pure apart from the PRF. */
MMTLS_MUST_USE int mmtls_keyshare_build_tls12(const struct mmtls_secret *master,
                                              const uint8_t cr[32], const uint8_t sr[32],
                                              uint16_t version, uint16_t suite,
                                              const struct mmtls_kp_tuple *tuple, uint8_t *out,
                                              size_t out_cap);

/* Encodes a BYPASS message (sni may be NULL: empty). */
MMTLS_MUST_USE int mmtls_keyshare_build_bypass(const uint8_t cr[32],
                                               const struct mmtls_kp_tuple *tuple, const char *sni,
                                               uint8_t *out, size_t out_cap);

/* ------------------------------------------------------------------------------------------ */
/* OpenSSL entry points used by the library.  Inside the preload shim the names SSL_CTX_new,
 * SSL_CTX_new_ex and SSL_CTX_{set,get}_keylog_callback are the shim's own interposers, so the
 * shim hands the real ones (dlsym RTLD_NEXT) over before anything else runs. */
struct mmtls_keyshare_ossl {
    SSL_CTX *(*ctx_new)(const SSL_METHOD *meth);
    void (*set_keylog)(SSL_CTX *ctx, SSL_CTX_keylog_cb_func cb);
    SSL_CTX_keylog_cb_func (*get_keylog)(const SSL_CTX *ctx);
};

void mmtls_keyshare_ossl_set(const struct mmtls_keyshare_ossl *fns);
extern struct mmtls_keyshare_ossl mmtls_keyshare_ossl;

/* true on the channel thread: the shim must not attach the channel's own SSL_CTX. */
extern _Thread_local bool mmtls_keyshare_on_chan_thread;

/* For the shim's SSL_CTX_{set,get}_keylog_callback: when ctx is attached, records cb as the
 * application's callback (chained from ours) and returns true; false means "not ours". */
bool mmtls_keyshare_chain_set(SSL_CTX *ctx, SSL_CTX_keylog_cb_func cb);
bool mmtls_keyshare_chain_get(const SSL_CTX *ctx, SSL_CTX_keylog_cb_func *cb);

/* ------------------------------------------------------------------------------------------ */
/* Queue and channel (keyshare_chan.c)                                                         */

/* The process-wide configuration; strings owned. */
struct mmtls_keyshare_cfg {
    char *keyserver; /* owned */
    char *ca;        /* owned; may be NULL (system default verify paths) */
    char *cert;      /* owned; may be NULL (the server will refuse the channel) */
    char *key;       /* owned; may be NULL */
    char *bypass;    /* owned; may be NULL */
    uint32_t queue_max;
    uint32_t flags;
};

/* Installs the configuration once (takes ownership of cfg's strings on success, else the caller
 * keeps them).  MMTLS_E_CONFLICT when another key server is already configured. */
MMTLS_MUST_USE int mmtls_keyshare_chan_configure(struct mmtls_keyshare_cfg *cfg);

/* The bypass patterns (borrowed: valid until exit), or NULL. */
const char *mmtls_keyshare_chan_bypass(void);

/* Copies one encoded message into the queue and wakes the thread (starting it on first use).
 * Never blocks beyond a short mutex; drops and counts when the queue is full.  The caller wipes
 * its copy. */
void mmtls_keyshare_chan_put(const uint8_t *msg, size_t len);

/* Counter helpers for keyshare.c. */
void mmtls_keyshare_count_session(void);
void mmtls_keyshare_count_other_drop(void);

#endif
