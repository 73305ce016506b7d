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
/* Several workers, one file: a writer for another thread that appends to `parent`'s stream.
 * Lines are written whole under the parent's lock, never interleaved.  The parent must outlive
 * it. */
MMTLS_MUST_USE int mmtls_eve_new_shared(struct mmtls_eve **out, struct mmtls_eve *parent);
MMTLS_MUST_USE int mmtls_eve_register(struct mmtls_eve *ev, struct mmtls_engine *e);
/* Writes an eve "stats" event with the engine's counters; `worker` >= 0 adds that field (one
 * stats event per worker when there are several), -1 omits it. */
void mmtls_eve_write_stats(struct mmtls_eve *ev, const struct mmtls_engine *e, uint64_t ts_us,
                           int worker);
/* Lines written to the stream (by every writer sharing it). */
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

/* Writes a Suricata-style "alert" event (action "blocked" or "allowed") for session s, the
 * packet direction dir giving src/dest. */
void mmtls_eve_write_alert(struct mmtls_eve *ev, struct mmtls_session *s, enum mmtls_dir dir,
                           uint32_t sid, const char *msg, const char *action);

/* Writes an eve "http" event (Suricata fields: http_method, url, protocol, hostname). */
void mmtls_eve_write_http(struct mmtls_eve *ev, struct mmtls_session *s, const char *method,
                          size_t mlen, const char *url, size_t ulen, const char *proto, size_t plen,
                          const char *host, size_t hlen);

/* Logs decrypted HTTP/1.x request lines through eve (the worker's writer; no other state). */
MMTLS_MUST_USE int mmtls_http_log_register(struct mmtls_eve *eve, struct mmtls_engine *e);

/* Inspects only the first `depth` bytes of each response (server-to-client data after each
 * client request); the rest is skipped without decryption.  Register it before other apps.
 * *out (one per engine) is freed with mmtls_depth_free after the engine. */
struct mmtls_depth;
MMTLS_MUST_USE int mmtls_depth_register(struct mmtls_depth **out, struct mmtls_engine *e,
                                        uint64_t depth);
void mmtls_depth_free(struct mmtls_depth *d);

struct mmtls_block;

/* A built-in app that blocks sessions whose decrypted application data contains a pattern
 * (matched across record boundaries) and logs an alert through eve (may be NULL). */
MMTLS_MUST_USE int mmtls_block_new(struct mmtls_block **out, struct mmtls_eve *eve);
/* Adds a pattern (1..128 bytes); sid names it in alerts. */
MMTLS_MUST_USE int mmtls_block_add(struct mmtls_block *b, const char *name, const void *bytes,
                                   size_t len, uint32_t sid);
/* The demo rule: the EICAR anti-virus test signature (sid 9000001). */
MMTLS_MUST_USE int mmtls_block_add_eicar(struct mmtls_block *b);
MMTLS_MUST_USE int mmtls_block_register(struct mmtls_block *b, struct mmtls_engine *e);
uint64_t mmtls_block_count(const struct mmtls_block *b);
void mmtls_block_free(struct mmtls_block *b);

/* Formats an address of the session (4 or 16 bytes) into buf (INET6_ADDRSTRLEN). */
void mmtls_apps_fmt_ip(uint8_t ip_version, const uint8_t *addr, char *buf, size_t cap);

#endif
