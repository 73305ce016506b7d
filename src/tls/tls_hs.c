/* tls_hs — handshake message reassembly (RFC 8446 §5.1, RFC 5246 §6.2.1: handshake messages
 * may be coalesced into one record or fragmented across several).
 *
 * Layout of the buffer: [0, consumed) holds messages already handed out (their bodies stay
 * valid until the next feed or next call), [consumed, len) holds bytes not yet handed out.
 * Compaction happens only in feed, and moves only the not-yet-handed-out tail: a byte is moved
 * at most once before it is handed out, so the cost stays linear in the input.
 */
#include "tls/tls.h"

#include <stdlib.h>

#define HS_HDR_LEN 4 /* msg_type u8, length u24 (RFC 8446 §4) */

/* `consumed` takes this value once a message over the cap was seen: the direction is then
 * unusable and every later call reports MMTLS_E_LIMIT without buffering anything. */
#define HS_BROKEN SIZE_MAX

void mmtls_tls_hs_reasm_init(struct mmtls_tls_hs_reasm *r, size_t max_msg)
{
    memset(r, 0, sizeof(*r));
    r->max_msg = max_msg;
}

void mmtls_tls_hs_reasm_fini(struct mmtls_tls_hs_reasm *r)
{
    /* Handshake plaintext of TLS 1.3 is sensitive (tickets, certificates): wipe it. */
    mmtls_buf_fini(&r->buf, true);
    r->consumed = 0;
}

/* Enters the sticky failure state and drops the buffered bytes. */
static int hs_reasm_break(struct mmtls_tls_hs_reasm *r)
{
    mmtls_buf_fini(&r->buf, true);
    r->consumed = HS_BROKEN;
    return MMTLS_E_LIMIT;
}

/* True when the pending bytes start with a header declaring a body over the cap. */
static bool hs_reasm_over_limit(const struct mmtls_tls_hs_reasm *r)
{
    const uint8_t *h;
    size_t msg_len;

    if (HS_HDR_LEN > r->buf.len - r->consumed) {
        return false; /* also keeps us from offsetting a NULL buffer */
    }
    h = r->buf.p + r->consumed;
    msg_len = (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    return msg_len > r->max_msg;
}

int mmtls_tls_hs_reasm_feed(struct mmtls_tls_hs_reasm *r, const uint8_t *p, size_t len)
{
    size_t pending;
    int rc;

    if (r->consumed == HS_BROKEN) {
        return MMTLS_E_LIMIT;
    }
    pending = r->buf.len - r->consumed;
    /* The caller drains with _next until MMTLS_AGAIN before feeding again, which leaves at
     * most one partial message (<= max_msg + 4 bytes).  More than that means the caller is
     * piling up input without draining: refuse instead of growing without bound. */
    if (pending > HS_HDR_LEN && pending - HS_HDR_LEN > r->max_msg) {
        return MMTLS_E_MEMCAP;
    }
    /* A pending header that already declares too large a body: fail before buffering more. */
    if (hs_reasm_over_limit(r)) {
        return hs_reasm_break(r);
    }
    if (len == 0) {
        return 0;
    }
    /* Compact: drop what was handed out (previously returned bodies become invalid here, as
     * documented).  Only the short unread tail moves. */
    if (r->consumed > 0) {
        if (pending > 0) {
            memmove(r->buf.p, r->buf.p + r->consumed, pending);
        }
        r->buf.len = pending;
        r->consumed = 0;
    }
    /* Do not buffer past the header of an over-limit message: peek at the header formed by
     * pending + new bytes before appending everything. */
    if (pending < HS_HDR_LEN && pending + len >= HS_HDR_LEN) {
        uint8_t hdr[HS_HDR_LEN];
        size_t msg_len;

        if (pending > 0) {
            memcpy(hdr, r->buf.p, pending);
        }
        memcpy(hdr + pending, p, HS_HDR_LEN - pending);
        msg_len = (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
        if (msg_len > r->max_msg) {
            return hs_reasm_break(r);
        }
    }
    rc = mmtls_buf_append(&r->buf, p, len);
    if (rc != 0) {
        return rc;
    }
    return 0;
}

int mmtls_tls_hs_reasm_next(struct mmtls_tls_hs_reasm *r, uint8_t *type, struct mmtls_slice *body)
{
    const uint8_t *h;
    size_t avail, msg_len;

    if (r->consumed == HS_BROKEN) {
        return MMTLS_E_LIMIT;
    }
    avail = r->buf.len - r->consumed;
    if (HS_HDR_LEN > avail) {
        return MMTLS_AGAIN;
    }
    h = r->buf.p + r->consumed;
    msg_len = (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    /* Checked on the header alone, before the body is buffered. */
    if (msg_len > r->max_msg) {
        return hs_reasm_break(r);
    }
    if (msg_len > avail - HS_HDR_LEN) {
        return MMTLS_AGAIN;
    }
    *type = h[0];
    body->p = h + HS_HDR_LEN;
    body->len = msg_len;
    r->consumed += HS_HDR_LEN + msg_len;
    return 0;
}

bool mmtls_tls_hs_reasm_empty(const struct mmtls_tls_hs_reasm *r)
{
    if (r->consumed == HS_BROKEN) {
        return false;
    }
    return r->buf.len == r->consumed;
}
