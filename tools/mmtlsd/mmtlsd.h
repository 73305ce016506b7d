/* mmtlsd internals shared by its source files. */
#ifndef MMTLSD_H
#define MMTLSD_H

#include <signal.h>
#include <stdbool.h>

#include "apps/apps.h"
#include "engine/engine.h"
#include "io/io.h"
#include "keys/keys.h"

/* Inline mode: bridges the two interfaces of ifpair ("IF1:IF2") through the engine until *stop
 * is set.  key_efd (or -1) is an eventfd the key server thread signals after each delivery. Returns
 * 0, or a negative code with a one-line message in err. */
int mmtlsd_run_inline(struct mmtls_engine *e, const char *ifpair, bool vnet, int key_efd,
                      volatile sig_atomic_t *stop, char *err, size_t err_cap);

#endif
