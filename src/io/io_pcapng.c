/* io_pcapng — the pure pcapng block framing parser (draft-ietf-opsawg-pcapng §3.1).
 *
 * Every block is `type u32 | total length u32 | body | total length u32`, both lengths equal,
 * a multiple of 4 and at least 12.  Integers are in the byte order of the section, which the
 * Section Header Block's byte-order magic tells; `swapped` means "not the host's".
 */
#include "io/io.h"

static uint32_t ng_u32(const uint8_t *p, bool swapped)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return swapped ? __builtin_bswap32(v) : v;
}

int mmtls_pcapng_block_parse(const uint8_t *p, size_t len, bool swapped,
                             struct mmtls_pcapng_block *b, size_t *need)
{
    uint32_t total;

    if (need != NULL) {
        *need = 0;
    }
    if (8 > len) {
        /* §3.1: the smallest block (type, two lengths, empty body) is 12 bytes */
        if (need != NULL) {
            *need = 12;
        }
        return MMTLS_AGAIN;
    }
    total = ng_u32(p + 4, swapped);
    /* §3.1: Block Total Length is a multiple of 4 and counts the whole block */
    if (total < 12 || total % 4 != 0 || total > MMTLS_PCAPNG_MAX_BLOCK) {
        return MMTLS_E_MALFORMED;
    }
    if (total > len) {
        if (need != NULL) {
            *need = total;
        }
        return MMTLS_AGAIN;
    }
    if (ng_u32(p + total - 4, swapped) != total) {
        return MMTLS_E_MALFORMED; /* trailing copy of the length disagrees */
    }
    b->type = ng_u32(p, swapped);
    b->total_len = total;
    b->body.p = p + 8;
    b->body.len = total - 12;
    return 0;
}
