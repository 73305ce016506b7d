/* libFuzzer target: the HTTP/2 framer and HPACK decoding (ALPN h2 selectable by the first
 * byte, else detected from the client preface); see http_fuzz_driver.h for the input format. */
#include "http_fuzz_driver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return http_fuzz_run(data, size, true);
}
