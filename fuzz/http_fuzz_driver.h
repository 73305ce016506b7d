/* Shared driver of fuzz_http_h1 and fuzz_http_h2.  The input is a script:
 *   byte 0: options (bit 0: ALPN h2 when the target allows it; bits 1-3: small inspection
 *           depth and header cap, to reach the caps quickly)
 *   then ops: b = next byte; b >> 6 == 0: client data, 1: server data, with length
 *   ((b & 0x3f) << 8 | next byte) bytes following (clamped); 2: skip what is skippable in
 *   direction b & 1 (bounded); 3: close direction b & 1.
 * Events go through the unit tests' collector, which checks the FIRST/LAST protocol. */
#ifndef HTTP_FUZZ_DRIVER_H
#define HTTP_FUZZ_DRIVER_H

#include "../tests/unit/http_test_collect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int http_fuzz_run(const uint8_t *data, size_t size, bool allow_alpn)
{
    struct mmtls_http_opts o = {.sz = sizeof(o)};
    struct coll col = {0};
    struct mmtls_http *h;
    size_t i = 1;

    if (size < 1)
        return 0;
    o.alpn_h2 = allow_alpn && (data[0] & 1);
    if (data[0] & 2) {
        o.req_body_depth = 7;
        o.resp_body_depth = 100;
    }
    if (data[0] & 4)
        o.max_header_block = 64;
    if (data[0] & 8) {
        o.max_decompressed = 50;
        o.max_streams = 2;
    }
    h = coll_parser(&col, &o);
    if (h == NULL)
        abort();
    while (i < size) {
        uint8_t b = data[i++];
        enum mmtls_http_dir dir = (enum mmtls_http_dir)(b & 1);

        switch (b >> 6) {
        case 0:
        case 1: {
            size_t n = (size_t)(b & 0x3f) << 8;
            if (i < size)
                n |= data[i++];
            if (n > size - i)
                n = size - i;
            (void)mmtls_http_feed(h, (enum mmtls_http_dir)(b >> 6), data + i, n);
            i += n;
            break;
        }
        case 2: {
            uint64_t n = mmtls_http_skippable(h, dir);
            if (n > 100000)
                n = 100000;
            if (mmtls_http_skip(h, dir, n) != 0)
                abort();
            break;
        }
        default: mmtls_http_close(h, dir); break;
        }
        (void)mmtls_http_stats(h);
    }
    mmtls_http_close(h, MMTLS_HTTP_TO_SERVER);
    mmtls_http_close(h, MMTLS_HTTP_TO_CLIENT);
    mmtls_http_free(h);
    if (col.errors != 0) {
        fprintf(stderr,
                "event protocol broken: first at tests/unit/http_test_collect.h:%d\n"
                "events so far:\n%.4000s\n",
                col.why, col.out != NULL ? col.out : "");
        abort();
    }
    coll_reset(&col);
    return 0;
}

#endif
