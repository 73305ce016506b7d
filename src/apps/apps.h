/* apps — built-in inspection apps.  Each is an ordinary app on the public framework API
 * (include/mmtls/mmtls.h): the offline and inline modes get no special access.
 *   eve:  one JSON line per TLS session at its end and per error event (docs/EVE.md)
 *   dump: the decrypted application data of each connection and direction, one file each
 */
#ifndef MMTLS_APPS_H
#define MMTLS_APPS_H

#include <stdio.h>

#include <mmtls/mmtls.h>

#include "engine/engine.h"

struct mmtls_eve;

/* Opens `path` for appending JSON lines ("-" = stdout).  Message in err on failure. */
MMTLS_MUST_USE int mmtls_eve_new(struct mmtls_eve **out, const char *path, char *err,
                                 size_t err_cap);
MMTLS_MUST_USE int mmtls_eve_register(struct mmtls_eve *ev, struct mmtls_engine *e);
/* Writes an eve "stats" event with the engine's counters. */
void mmtls_eve_write_stats(struct mmtls_eve *ev, const struct mmtls_engine *e, uint64_t ts_us);
uint64_t mmtls_eve_lines(const struct mmtls_eve *ev);
/* Flushes and closes; NULL is a no-op. */
void mmtls_eve_free(struct mmtls_eve *ev);

struct mmtls_dump;

/* Writes files under dir (created if missing), named
 * f<flow_id>-<client_ip>_<client_port>-<server_ip>_<server_port>.<c2s|s2c>. */
MMTLS_MUST_USE int mmtls_dump_new(struct mmtls_dump **out, const char *dir, char *err,
                                  size_t err_cap);
MMTLS_MUST_USE int mmtls_dump_register(struct mmtls_dump *d, struct mmtls_engine *e);
void mmtls_dump_free(struct mmtls_dump *d);

/* Formats an address of the session (4 or 16 bytes) into buf (INET6_ADDRSTRLEN). */
void mmtls_apps_fmt_ip(uint8_t ip_version, const uint8_t *addr, char *buf, size_t cap);

#endif
