/* libFuzzer target: TLS record header framing.  Walks the input as a stream of records the way
 * the record layer does, checking each header against the fragment limits. */
#include <stdlib.h>

#include "tls/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;

    while (off < size) { /* >= 5 bytes per turn */
        struct mmtls_tls_hdr h;
        int rc = mmtls_tls_hdr_parse(data + off, size - off, &h);

        if (rc == MMTLS_AGAIN) {
            if (size - off >= MMTLS_TLS_HDR_LEN) {
                abort(); /* AGAIN only when the header is incomplete */
            }
            break;
        }
        if (rc != 0) {
            if (rc != MMTLS_E_MALFORMED) {
                abort();
            }
            break;
        }
        if (h.type < 20 || h.type > 24 || (h.version >> 8) != 3) { /* any 3.x: RFC 8446 §5.1 */
            abort();
        }
        if (mmtls_tls_max_fragment(h.version, h.type == 23) < MMTLS_TLS_MAX_PLAINTEXT) {
            abort();
        }
        off += MMTLS_TLS_HDR_LEN + h.len;
    }
    return 0;
}
