/* mmtlsd internals shared by its source files. */
#ifndef MMTLSD_H
#define MMTLSD_H

#include <signal.h>
#include <stdbool.h>

#include "apps/apps.h"
#include "engine/engine.h"
#include "io/io.h"
#include "keys/keys.h"

/* Inline mode: one worker's two AF_PACKET ports on the interfaces of ifpair ("IF1:IF2").
 * fanout_group 0 for a single worker; else the same group (1..255) for every worker, whose
 * ports must be opened one worker after the other (the kernel numbers fanout members in join
 * order, and a flow's worker is its hash modulo that order on both interfaces). */
struct mmtlsd_bridge;

MMTLS_MUST_USE int mmtlsd_bridge_open(struct mmtlsd_bridge **out, const char *ifpair, bool vnet,
                                      int fanout_group, char *err, size_t err_cap);
/* Bridges through the engine until *stop is set.  key_efd (or -1) is an eventfd the key server
 * thread signals after each delivery to this worker.  Returns 0, or a negative code with a
 * one-line message in err. */
int mmtlsd_bridge_run(struct mmtlsd_bridge *b, struct mmtls_engine *e, int key_efd,
                      volatile sig_atomic_t *stop, char *err, size_t err_cap);
/* Logs the ports' counters (worker >= 0) and closes them; NULL is a no-op. */
void mmtlsd_bridge_close(struct mmtlsd_bridge *b, int worker);

#endif
