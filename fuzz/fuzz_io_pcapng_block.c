/* Fuzz target for the pure pcapng block framing parser: the input is a sequence of blocks,
 * parsed in both byte orders until the first error.  Invariants: a parsed block lies within the
 * input, its body is total_len - 12 bytes at p + 8; MMTLS_AGAIN asks for more than is there. */
#include "io/io.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int swapped = 0; swapped < 2; swapped++) {
        size_t off = 0;

        /* each round consumes at least 12 bytes */
        while (off < size) {
            struct mmtls_pcapng_block b;
            size_t need = 0, left = size - off;
            int rc = mmtls_pcapng_block_parse(data + off, left, swapped, &b, &need);

            if (rc == MMTLS_AGAIN) {
                CHECK(need > left && need >= 12 && need <= MMTLS_PCAPNG_MAX_BLOCK);
                break;
            }
            if (rc != 0) {
                CHECK(rc == MMTLS_E_MALFORMED);
                break;
            }
            CHECK(b.total_len >= 12 && b.total_len % 4 == 0 && b.total_len <= left);
            CHECK(b.body.p == data + off + 8 && b.body.len == b.total_len - 12);
            off += b.total_len;
        }
    }
    return 0;
}
