/* tls_record — record header framing (RFC 8446 §5.1, RFC 5246 §6.2) and GREASE values. */
#include "tls/tls.h"

/* Content types accepted on the wire (RFC 8446 §5.1, RFC 5246 §6.2.1, RFC 6520 heartbeat). */
#define TLS_CT_MIN 20 /* change_cipher_spec */
#define TLS_CT_MAX 24 /* heartbeat */

bool mmtls_tls_is_grease(uint16_t v)
{
    /* RFC 8701 §2: 0x0A0A, 0x1A1A, ... 0xFAFA: both bytes equal, low nibbles 0xA. */
    return (v & 0x0f0fu) == 0x0a0au && (v >> 8) == (v & 0xffu);
}

int mmtls_tls_hdr_parse(const uint8_t *p, size_t avail, struct mmtls_tls_hdr *h)
{
    if (MMTLS_TLS_HDR_LEN > avail) {
        return MMTLS_AGAIN;
    }
    /* An SSLv2-compatible hello starts with a byte that has the high bit set (RFC 5246 E.2),
     * so it fails this content-type check: we do not follow SSLv2 framing. */
    if (p[0] < TLS_CT_MIN || p[0] > TLS_CT_MAX) {
        return MMTLS_E_MALFORMED;
    }
    /* RFC 8446 §5.1: legacy_record_version "MUST be ignored for all purposes"; it is 0x0301
     * or 0x0303 in practice.  Any 3.x is framed: receivers check no more than the major
     * version on a first record (OpenSSL accepts a ClientHello in a 3.255 record), and a
     * record this layer refused would end inspection of a session its receiver goes on
     * with. */
    if (p[1] != 3) {
        return MMTLS_E_MALFORMED;
    }
    h->type = p[0];
    h->version = mmtls_be16(p + 1);
    h->len = mmtls_be16(p + 3);
    return 0;
}

size_t mmtls_tls_max_fragment(uint16_t negotiated_version, bool protected_record)
{
    if (!protected_record) {
        return MMTLS_TLS_MAX_PLAINTEXT; /* RFC 8446 §5.1, RFC 5246 §6.2.1 */
    }
    if (negotiated_version >= MMTLS_TLS_V13) {
        return MMTLS_TLS13_MAX_CIPHERTEXT; /* RFC 8446 §5.2 */
    }
    return MMTLS_TLS12_MAX_CIPHERTEXT; /* RFC 5246 §6.2.3, RFC 4346 §6.2.3 */
}
