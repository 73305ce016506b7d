/* mmtls endpoint — TLS 1.3 with the private tag (docs/PRIVTAG.md), part of libmmtls-keyshare.
 *
 * OpenSSL 3 runs the handshake; the library negotiates the private tag with a TLS extension and,
 * once the handshake is done, protects application records itself with the traffic secrets,
 * appending tag2 (as kernel TLS takes over the record layer after a user-space handshake).
 * A peer without the extension gets plain TLS through the same calls (they then forward to
 * SSL_read / SSL_write).
 *
 * Use:
 *     SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());     (or TLS_server_method())
 *     mmtls_ep_ctx_enable(ctx);                            before any SSL_new
 *     SSL *ssl = SSL_new(ctx); SSL_set_fd(ssl, fd); ... SSL_connect(ssl) / SSL_accept(ssl)
 *     struct mmtls_ep *ep; mmtls_ep_new(&ep, ssl);          right after the handshake
 *     mmtls_ep_write(ep, buf, n); mmtls_ep_read(ep, buf, cap); mmtls_ep_shutdown(ep);
 *     mmtls_ep_free(ep); SSL_free(ssl);
 *
 * The SSL must use a socket BIO (SSL_set_fd) and no read-ahead.  After mmtls_ep_new the
 * application must not call SSL_read/SSL_write on it.  Non-blocking sockets work: read and
 * write then return MMTLS_EP_WANT_READ / MMTLS_EP_WANT_WRITE, and the same call with the same
 * arguments must be repeated when the socket is ready (as with OpenSSL).
 *
 * Threads: one mmtls_ep is used by one thread at a time.
 */
#ifndef MMTLS_ENDPOINT_H
#define MMTLS_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include <mmtls/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MMTLS_EP_EXT_TYPE 0xFFCE /* mmtls_private_tag, private-use range */
#define MMTLS_EP_EXT_VERSION 1

/* Return values of mmtls_ep_read / mmtls_ep_write besides byte counts. */
#define MMTLS_EP_WANT_READ (-100)  /* non-blocking: wait until the socket is readable */
#define MMTLS_EP_WANT_WRITE (-101) /* non-blocking: wait until the socket is writable */
/* Fatal errors are negative MMTLS_E_* codes: MMTLS_E_AUTH (tag1 or tag2 failed: a
 * bad_record_mac alert was sent), MMTLS_E_MALFORMED (a decode_error or unexpected_message alert
 * was sent), MMTLS_E_IO (the socket failed or the peer closed without close_notify),
 * MMTLS_E_PEER_ALERT (the peer sent a fatal alert). */

/* Adds the extension to ctx: a client context offers it, a server context answers it.  Also
 * chains a key log callback (to learn the traffic secrets; an application callback is still
 * called) and, on a server context, turns off session tickets (SSL_CTX_set_num_tickets 0:
 * tickets would be sent under the application keys before the library takes over).  Limits the
 * TLS 1.3 suites to the three AEADs tag2 is defined for.  0 or a negative MMTLS_E_* code. */
MMTLS_MUST_USE int mmtls_ep_ctx_enable(SSL_CTX *ctx);

struct mmtls_ep;

/* Takes over the record layer of `ssl` after a completed handshake.  If the private tag was
 * negotiated (TLS 1.3 and the peer answered), the library protects records itself from now on;
 * otherwise it forwards to SSL_read/SSL_write.  The SSL stays owned by the caller and must
 * outlive *out.  0, MMTLS_E_INVAL (handshake not done, no fd), MMTLS_E_NOMEM. */
MMTLS_MUST_USE int mmtls_ep_new(struct mmtls_ep **out, SSL *ssl);

/* Whether the connection carries the private tag (false: plain TLS). */
bool mmtls_ep_private_tag(const struct mmtls_ep *ep);

/* Reads application data: > 0 bytes, 0 at the peer's close_notify, MMTLS_EP_WANT_* or a
 * negative MMTLS_E_* code.  Handles KeyUpdate (answering update_requested), ignores
 * NewSessionTicket, and fails on any other post-handshake message. */
int mmtls_ep_read(struct mmtls_ep *ep, void *buf, size_t cap);

/* Writes all of buf (in records of at most 16 KB) or returns an error: n, MMTLS_EP_WANT_* (then
 * repeat the call with the same buf and n: what was already written is remembered) or a
 * negative MMTLS_E_* code. */
int mmtls_ep_write(struct mmtls_ep *ep, const void *buf, size_t n);

/* Sends a KeyUpdate (RFC 8446 §4.6.3) and switches to the next sending keys (and tag2 key);
 * request_peer asks the peer to update its sending keys too.  0 or as mmtls_ep_write. */
int mmtls_ep_key_update(struct mmtls_ep *ep, bool request_peer);

/* Sends close_notify.  0, MMTLS_EP_WANT_WRITE or a negative code.  Does not wait for the peer's. */
int mmtls_ep_shutdown(struct mmtls_ep *ep);

/* Counters, for tests and benchmarks. */
struct mmtls_ep_stats {
    uint64_t records_sent, records_received, key_updates_sent, key_updates_received;
    uint64_t tag1_failures, tag2_failures;
};
void mmtls_ep_get_stats(const struct mmtls_ep *ep, struct mmtls_ep_stats *st);

/* Wipes keys and frees; NULL is a no-op.  Does not free the SSL. */
void mmtls_ep_free(struct mmtls_ep *ep);

/* The tag2 primitive (docs/PRIVTAG.md), exposed for test vectors and benchmarks: tag2 of a
 * record with header hdr (5 bytes, length counting tag2) and first tag tag1, under k2 (16 or 32
 * bytes) and the record's 12-byte nonce; aead is 0 AES-GCM (key length picks 128/256), 1
 * ChaCha20-Poly1305.  0 or a negative code. */
MMTLS_MUST_USE int mmtls_ep_tag2(int aead, const uint8_t *k2, size_t k2_len,
                                 const uint8_t nonce[12], const uint8_t hdr[5],
                                 const uint8_t tag1[16], uint8_t tag2[16]);

#ifdef __cplusplus
}
#endif

#endif
