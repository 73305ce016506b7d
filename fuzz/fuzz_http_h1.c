/* libFuzzer target: the HTTP/1.x parser (protocol detection included) fed a script of client
 * and server writes, skips and closes; see http_fuzz_driver.h for the input format. */
#include "http_fuzz_driver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return http_fuzz_run(data, size, false);
}
