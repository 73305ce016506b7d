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
#define MMTLS_KEYSHARE_SYNC_DEFAULT_MS 50 /* MMTLS_KEYSHARE_SYNC_MS */

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

/* Secrets of one session, collected line by line: TLS 1.3 traffic secrets, or the TLS <= 1.2
 * master secret (CLIENT_RANDOM) while the cipher suite is not known yet. */
struct mmtls_keyshare_tls13 {
    uint32_t have; /* bit (1 << label) */
    struct mmtls_secret early, chs, shs, cts0, sts0;
    struct mmtls_secret master;
    bool tag2; /* the session negotiated the private tag (KEYS flag TAG2, docs/PRIVTAG.md) */
};

#define MMTLS_KEYSHARE_TLS13_COMPLETE                                                              \
    ((1u << MMTLS_KEYSHARE_L_CHS) | (1u << MMTLS_KEYSHARE_L_SHS) | (1u << MMTLS_KEYSHARE_L_CTS0) | \
     (1u << MMTLS_KEYSHARE_L_STS0))

/* Encodes a KEYS message for a complete TLS 1.3 session into out (MMTLS_KP_MAX_MSG bytes) —
 * or, when t has the server handshake secret but not all of the others, one with the
 * handshake secrets it has (and the early secret if there is one): clients send the server's
 * as soon as they have it, at the ServerHello, so that an inline middlebox can release the
 * server's flight (docs/keyproto.md).  Without the server handshake secret: MMTLS_E_INVAL.
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

/* The label named by the len bytes at name (no terminator needed), 0 when not one of ours. */
enum mmtls_keyshare_label mmtls_keyshare_label_of(const char *name, size_t len);

/* The IANA value of the suite with that IANA name (GnuTLS's gnutls_ciphersuite_get), 0 when the
 * crypto table does not know it. */
uint16_t mmtls_keyshare_suite_by_name(const char *name);

/* The 4-tuple as the client's socket fd sees it; false when fd is not a connected socket.  An
 * IPv4-mapped IPv6 socket goes on the wire as IPv4, so it is reported as such. */
bool mmtls_keyshare_fd_tuple(int fd, struct mmtls_kp_tuple *t);

/* ------------------------------------------------------------------------------------------ */
/* TLS-library neutral collection: the OpenSSL key log callback and the GnuTLS key log hook of
 * the preload shim both feed one mmtls_keyshare_sess per client connection.                  */

/* What has been seen of the current handshake of one connection. */
struct mmtls_keyshare_sess {
    uint8_t cr[32];
    bool started, done;
    bool hs_sent;   /* TLS 1.3: the handshake secrets went ahead in a message of their own */
    bool has_tuple; /* taken at the first secret: the socket may be gone by the last one */
    struct mmtls_kp_tuple tuple;
    struct mmtls_keyshare_tls13 t13;
};

/* Questions about the connection conn (the TLS library's own object, borrowed), asked while a
 * secret is being handled. */
struct mmtls_keyshare_conn_ops {
    bool (*tuple)(const void *conn, struct mmtls_kp_tuple *t);
    bool (*server_random)(const void *conn, uint8_t sr[32]);
    uint16_t (*version)(const void *conn); /* 0x0301 .. 0x0304; 0 unknown */
    uint16_t (*suite)(const void *conn);   /* IANA value; 0 unknown */
    /* The SNI the client sent (NUL-terminated, in buf or the library's memory), or NULL. */
    const char *(*sni)(const void *conn, char *buf, size_t cap);
    /* true when the connection negotiated the private tag (docs/PRIVTAG.md); may be NULL. */
    bool (*tag2)(const void *conn);
    /* true: suite() may say 0 until the handshake is over (GnuTLS), so a complete session
     * waits for mmtls_keyshare_sess_finish; false: 0 is final (OpenSSL). */
    bool suite_late;
};

/* Adds one secret of the client connection conn to s (a new client random restarts s).  When the
 * session is complete (and, with ops->suite_late, the suite is known), encodes its message into out
 * (MMTLS_KP_MAX_MSG bytes): BYPASS when the SNI matches bypass (may be NULL), KEYS with the
 * TLS 1.3 secrets, or for CLIENT_RANDOM the TLS <= 1.2 record keys.  Returns the message length,
 * 0 while nothing is to be sent, or a negative code for a finished session that cannot be
 * encoded (unknown suite...).  secret is copied; the caller wipes its own copy and out. */
MMTLS_MUST_USE int mmtls_keyshare_sess_secret(struct mmtls_keyshare_sess *s,
                                              const struct mmtls_keyshare_conn_ops *ops,
                                              const void *conn, enum mmtls_keyshare_label label,
                                              const uint8_t cr[32],
                                              const struct mmtls_secret *secret, const char *bypass,
                                              uint8_t *out, size_t out_cap);

/* After the handshake: encodes a complete session that waited for its cipher suite (0 now
 * means unknown for good: TLS 1.3 goes with suite 0, TLS <= 1.2 fails).  Returns as above. */
MMTLS_MUST_USE int mmtls_keyshare_sess_finish(struct mmtls_keyshare_sess *s,
                                              const struct mmtls_keyshare_conn_ops *ops,
                                              const void *conn, uint8_t *out, size_t out_cap);

/* Hands the result of mmtls_keyshare_sess_secret over: counts the session (unless `partial`:
 * the handshake secrets sent ahead, the session's last message is still to come), queues the
 * message (len > 0) or counts the drop (len < 0), and wipes msg. */
void mmtls_keyshare_emit(int len, uint8_t *msg, bool partial);

/* Configures the process-wide channel from opts (NULL: environment only), as the first
 * mmtls_keyshare_attach does; idempotent for the same key server.  0, MMTLS_E_INVAL (no key
 * server), MMTLS_E_CONFLICT, MMTLS_E_NOMEM. */
MMTLS_MUST_USE int mmtls_keyshare_configure(const struct mmtls_keyshare_opts *opts);

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
/* Preload shim (preload.c, preload_gnutls.c)                                                   */

/* dlsym(RTLD_NEXT, name), or from the already loaded soname (a library dlopen'ed RTLD_LOCAL). */
void *mmtls_keyshare_preload_sym(const char *name, const char *soname);

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

/* ------------------------------------------------------------------------------------------ */
/* Endpoint with the private tag (endpoint.c, include/mmtls/endpoint.h)                         */

struct mmtls_ep;

/* true when the client saw the server's mmtls_private_tag answer in EncryptedExtensions, or the
 * server sent it (SSL ex_data set by the extension callbacks of mmtls_ep_ctx_enable). */
bool mmtls_ep_ssl_has_tag2(const SSL *ssl);

/* Tests and fuzzing: an endpoint with the private tag over fd without an SSL (no handshake,
 * no plain TLS fallback).  k2 gives k2[dir][gen] (dir 'c' or 's', len bytes): 0 or a code. */
struct mmtls_ep_raw {
    int fd; /* borrowed: read and written, never closed */
    bool is_server;
    uint16_t suite;                 /* IANA id: 0x1301, 0x1302 or 0x1303 */
    struct mmtls_secret cts0, sts0; /* application traffic secrets, generation 0 (copied) */
    int (*k2)(void *arg, uint8_t dir, uint32_t gen, uint8_t *out, size_t len);
    void *k2_arg; /* borrowed */
};

MMTLS_MUST_USE int mmtls_ep_new_raw(struct mmtls_ep **out, const struct mmtls_ep_raw *raw);

/* Tests and fuzzing: seals len bytes (<= 2^14) of inner content type `type` as one record under
 * the current sending keys and sends it (blocking).  No state change beyond the sequence
 * number: a handshake message sent this way does not rekey. */
MMTLS_MUST_USE int mmtls_ep_raw_send(struct mmtls_ep *ep, uint8_t type, const uint8_t *p,
                                     size_t len);

/* ------------------------------------------------------------------------------------------ */
/* tag2 state of one direction and key generation (endpoint_tag2.c)                             */

#define MMTLS_EP_T2_GCM 0       /* AES-GCM: k2 of 16 or 32 bytes */
#define MMTLS_EP_T2_CHACHA 1    /* ChaCha20-Poly1305: k2 of 32 bytes */
#define MMTLS_EP_T2_F_EVP 1u    /* flag: force the OpenSSL EVP path (tests, benchmarks) */
#define MMTLS_EP_T2_F_NOAVX2 2u /* flag: ChaCha20 batches without AVX2 (tests, benchmarks) */
#define MMTLS_EP_T2_BATCH 8     /* ChaCha20: one-time keys computed per batch */

/* docs/PRIVTAG.md: tag2 = AEAD-Seal(k2, nonce, "", aad = header || tag1).  k2 is expanded
 * once: AES round keys, and GHASH powers of H = E(k2, 0^128) with AES-NI and PCLMULQDQ (when
 * the CPU has them), or the ChaCha20 key (portable C); otherwise an EVP context keyed once.
 * Caller storage: _init overwrites it (_fini it first when set up); _fini wipes it. */
struct mmtls_ep_t2 {
    int aead;                        /* MMTLS_EP_T2_GCM or MMTLS_EP_T2_CHACHA */
    int path;                        /* 0 not set up; see endpoint_tag2.c */
    unsigned rounds;                 /* AES: 10 or 14 */
    EVP_CIPHER_CTX *evp;             /* owned: the EVP path only, else NULL */
    _Alignas(16) uint8_t rk[15][16]; /* AES round keys; ChaCha20: the key in rk[0..1] */
    _Alignas(16) uint8_t hk[3][16];  /* GCM: H^3 x^-1, H^2 x^-1, length block * H (reflected) */
    /* ChaCha20 (x86-64): the Poly1305 one-time keys (RFC 8439 §2.6) of the records otk_seq ..
     * otk_seq + otk_n - 1 under the write IV otk_iv, word j of record otk_seq + i in otk[j][i]:
     * one vectorized batch of ChaCha20 blocks serves MMTLS_EP_T2_BATCH records. */
    _Alignas(16) uint32_t otk[8][MMTLS_EP_T2_BATCH];
    uint8_t otk_iv[12];
    unsigned otk_n;    /* 0: empty */
    bool otk_avx2;     /* batches with AVX2 (checked at _init) */
    uint64_t otk_seq;  /* sequence number of otk[.][0] */
    uint64_t otk_next; /* the sequence number expected next: a miss there fills a batch */
};

/* Sets t up for k2 (k2_len bytes).  0, MMTLS_E_INVAL (aead / length), MMTLS_E_NOMEM or
 * MMTLS_E_CRYPTO (EVP path). */
MMTLS_MUST_USE int mmtls_ep_t2_init(struct mmtls_ep_t2 *t, int aead, const uint8_t *k2,
                                    size_t k2_len, unsigned flags);

/* tag2 of the record with header hdr (length counting tag2), first tag tag1 and nonce.
 * 0 or MMTLS_E_CRYPTO (EVP path only). */
MMTLS_MUST_USE int mmtls_ep_t2_calc(struct mmtls_ep_t2 *t, const uint8_t nonce[12],
                                    const uint8_t hdr[5], const uint8_t tag1[16], uint8_t tag2[16]);

/* The same as mmtls_ep_t2_calc, for the record with sequence number seq (RFC 8446 §5.3: nonce =
 * write_iv XOR pad(seq)).  ChaCha20 on x86-64: the one-time key comes from a batch computed for
 * seq .. seq + MMTLS_EP_T2_BATCH - 1 when seq follows the previous call's; a record out of
 * order costs one ChaCha20 block.  The output depends on nonce only (a nonce that is not
 * write_iv XOR pad(seq) for the cached write_iv is a cache miss). */
MMTLS_MUST_USE int mmtls_ep_t2_calc_seq(struct mmtls_ep_t2 *t, uint64_t seq,
                                        const uint8_t nonce[12], const uint8_t hdr[5],
                                        const uint8_t tag1[16], uint8_t tag2[16]);

/* true when t computes tag2 without OpenSSL (AES-NI + PCLMULQDQ, or portable ChaCha20). */
bool mmtls_ep_t2_is_fast(const struct mmtls_ep_t2 *t);

/* Wipes the key material and frees the EVP context; t may then be set up again. */
void mmtls_ep_t2_fini(struct mmtls_ep_t2 *t);

/* Tests: RFC 8439 §2.5 Poly1305 of nblocks (<= 4, else MMTLS_E_INVAL) full 16-byte blocks
 * (each with the 2^128 bit) under the one-time key otk = r || s, as tag2 uses it. */
MMTLS_MUST_USE int mmtls_ep_t2_poly1305(const uint8_t otk[32], const uint8_t *m, size_t nblocks,
                                        uint8_t tag[16]);

#endif
