/* reasm internals shared only with the module's own tests and fuzz targets. */
#ifndef MMTLS_REASM_INT_H
#define MMTLS_REASM_INT_H

#include "reasm/reasm.h"

/* Memcap bytes charged per buffered segment on top of its data. */
size_t mmtls_reasm_seg_overhead(void);

/* Bytes this stream currently has charged to its memcap. */
size_t mmtls_reasm_charged(const struct mmtls_reasm *r);

/* Checks the stream's invariants (sorted disjoint segments after next_off, counters, kept
 * bound, FIN bound).  0 or MMTLS_E_INTERNAL. */
MMTLS_MUST_USE int mmtls_reasm_check(const struct mmtls_reasm *r);

#endif
