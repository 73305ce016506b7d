/* apps — built-in inspection apps.  Each is an ordinary app on the public framework API
 * (include/mmtls/mmtls.h): the offline and inline modes get no special access.
 *   eve:  one JSON line per TLS session at its end and per error event (docs/EVE.md)
 *   dump: the decrypted application data of each connection and direction, one file each
 *   pcapout: the decrypted sessions as plaintext TCP flows in a pcap file
 */
#ifndef MMTLS_APPS_H
#define MMTLS_APPS_H

#include <stdio.h>

#include <mmtls/mmtls.h>

#include "engine/engine.h"
#include "detect/detect.h"
#include "http/http.h"

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
/* Writes an eve "exception" event (a resource cap hit, reported at most once per second per
 * resource by the engine: docs/EVE.md); `worker` as for the stats event. */
void mmtls_eve_write_exception(struct mmtls_eve *ev, const struct mmtls_engine_exception *x,
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

struct mmtls_eve_http;
/* A rule's alert (Suricata's alert object).  Strings are borrowed, not NUL-terminated. */
struct mmtls_eve_alert {
    enum mmtls_dir dir; /* direction of the data that matched: gives src/dest */
    const char *action; /* "allowed" or "blocked" */
    uint32_t gid, sid, rev, severity;
    const char *msg, *category; /* signature, classtype (category may be empty) */
    size_t msg_len, category_len;
    const struct mmtls_eve_http *http; /* the transaction's fields, or NULL */
};
void mmtls_eve_write_rule_alert(struct mmtls_eve *ev, struct mmtls_session *s,
                                const struct mmtls_eve_alert *a);

/* One HTTP transaction for an eve "http" event (Suricata's fields).  Strings are borrowed and
 * not NUL-terminated; NULL (or status 0) leaves the field out. */
struct mmtls_eve_http {
    const char *method, *url, *host, *user_agent;
    size_t method_len, url_len, host_len, user_agent_len;
    const char *protocol; /* NUL-terminated ("HTTP/2"), or NULL */
    int status;           /* response status, 0 if none */
    uint64_t length;      /* response body bytes seen (inspected) */
};
void mmtls_eve_write_http(struct mmtls_eve *ev, struct mmtls_session *s,
                          const struct mmtls_eve_http *h);

/* The HTTP app: an HTTP/1.x or HTTP/2 parser (src/http) per session over the decrypted data.
 * With eve it logs each transaction as an eve "http" event; every rule buffer event goes to
 * on_buffer (the IDS); with depth > 0 only the first depth bytes of each message body are
 * inspected and the rest is skipped without decryption.  One per engine (worker). */
struct mmtls_httpapp_opts {
    size_t sz;             /* sizeof(struct mmtls_httpapp_opts) */
    struct mmtls_eve *eve; /* borrowed; NULL: no http events */
    uint64_t depth;        /* response body bytes inspected per message; 0: the parser's default
                            * (64 KiB) and no skipping */
    uint64_t req_depth;    /* request body bytes; 0: as depth */
    void (*on_buffer)(void *ud, struct mmtls_session *s, const struct mmtls_http_event *ev);
    void *ud;
};
struct mmtls_httpapp;
MMTLS_MUST_USE int mmtls_httpapp_new(struct mmtls_httpapp **out,
                                     const struct mmtls_httpapp_opts *o);
MMTLS_MUST_USE int mmtls_httpapp_register(struct mmtls_httpapp *a, struct mmtls_engine *e);
/* The fields seen so far of open transaction txn of session s (borrowed strings, valid until
 * the app's next event); false when the transaction is not open. */
bool mmtls_httpapp_txn(const struct mmtls_httpapp *a, struct mmtls_session *s, uint64_t txn,
                       struct mmtls_eve_http *out);
/* After the engine; NULL is a no-op. */
void mmtls_httpapp_free(struct mmtls_httpapp *a);

/* Inspects only the first `depth` bytes of each response (server-to-client data after each
 * client request); the rest is skipped without decryption.  Register it before other apps.
 * Bytes are plaintext (padding never counts), or with `wire` the application-data records as
 * they are on the wire (mmtls_session_pause_after_wire: padding counts, and the kernel fast
 * path applies the depth itself).  *out (one per engine) is freed with mmtls_depth_free after
 * the engine. */
struct mmtls_depth;
MMTLS_MUST_USE int mmtls_depth_register(struct mmtls_depth **out, struct mmtls_engine *e,
                                        uint64_t depth, bool wire);
void mmtls_depth_free(struct mmtls_depth *d);

/* The IDS app: rules compiled by src/detect, matched on the decrypted raw streams, the HTTP
 * transactions (it runs its own HTTP app, which also logs http events when log_http) and the
 * server name; alert / drop / reject / pass as in Suricata.  One per engine (worker). */
struct mmtls_ids_opts {
    size_t sz;                         /* sizeof(struct mmtls_ids_opts) */
    const struct mmtls_detect *detect; /* borrowed: compiled rules, shared by the workers */
    struct mmtls_eve *eve;             /* borrowed: alerts (and http events with log_http) */
    bool log_http;
    uint64_t depth;     /* HTTP response body bytes inspected per message; 0: 64 KiB */
    uint64_t req_depth; /* HTTP request body bytes; 0: as depth */
};
struct mmtls_ids_stats {
    uint64_t alerts, blocks, flows_failed, feed_errors;
    struct mmtls_detect_counters detect;
};
struct mmtls_ids;
MMTLS_MUST_USE int mmtls_ids_new(struct mmtls_ids **out, const struct mmtls_ids_opts *o);
MMTLS_MUST_USE int mmtls_ids_register(struct mmtls_ids *ids, struct mmtls_engine *e);
void mmtls_ids_get_stats(const struct mmtls_ids *ids, struct mmtls_ids_stats *st);
/* After the engine; NULL is a no-op. */
void mmtls_ids_free(struct mmtls_ids *ids);

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

/* ------------------------------------------------------------------------------------------ */
/* pcapout: each decrypted session as a plaintext TCP flow in a classic pcap (docs/CONFIG.md,
 * --pcap-out).  Only decrypted application data is written, as a synthetic TCP connection with
 * the session's addresses: three-way handshake, data segments, ACKs, then FIN (RST when the
 * session was blocked).  Bytes that were not decrypted (paused monitoring, records that failed,
 * capture loss) appear as a TCP sequence gap, never as invented bytes.  Sessions with nothing
 * decrypted are not written (counted). */

struct mmtls_pcapout;

struct mmtls_pcapout_stats {
    uint64_t sessions;         /* sessions written */
    uint64_t sessions_no_keys; /* not written: no keys (or bypassed) */
    uint64_t sessions_no_data; /* not written: decrypted, but no application data */
    uint64_t frames;           /* frames written */
    uint64_t plain_bytes;      /* application bytes in them */
    uint64_t gaps;             /* sequence gaps for bytes that could not be exported */
    uint64_t write_errors;     /* failed writes (the first is logged; writing then stops) */
};

/* Creates (truncates) `path` and writes the pcap header (LINKTYPE_ETHERNET, microseconds).
 * The server port `port_from` becomes `port_to` in the frames (port_from 0: no mapping).
 * Message in err on failure. */
MMTLS_MUST_USE int mmtls_pcapout_new(struct mmtls_pcapout **out, const char *path,
                                     uint16_t port_from, uint16_t port_to, char *err,
                                     size_t err_cap);
/* Several workers, one file: a writer for another thread that appends to `parent`'s file under
 * its lock (each event's frames together; timestamps kept monotonic across writers).  The
 * parent must outlive it. */
MMTLS_MUST_USE int mmtls_pcapout_new_shared(struct mmtls_pcapout **out,
                                            struct mmtls_pcapout *parent);
MMTLS_MUST_USE int mmtls_pcapout_register(struct mmtls_pcapout *po, struct mmtls_engine *e);
/* Flushes the file's buffer (a write error then shows in the counters) and copies the counters
 * of the file (all writers sharing it). */
void mmtls_pcapout_get_stats(struct mmtls_pcapout *po, struct mmtls_pcapout_stats *st);
/* A shared writer: flushes.  The parent: flushes and closes the file (a failure is counted and
 * logged).  NULL is a no-op. */
void mmtls_pcapout_free(struct mmtls_pcapout *po);

/* One synthetic TCP segment, for mmtls_pcapout_frame. */
struct mmtls_pcapout_seg {
    uint8_t ip_version; /* 4 or 6 */
    uint8_t src_mac[6], dst_mac[6];
    const uint8_t *src_ip; /* borrowed: 4 or 16 bytes */
    const uint8_t *dst_ip; /* borrowed: 4 or 16 bytes */
    uint16_t src_port, dst_port;
    uint32_t seq, ack;
    uint8_t flags; /* MMTLS_PCAPOUT_F_* (TCP header flag bits) */
    uint16_t window;
    uint16_t mss;           /* non-zero: an MSS option (RFC 9293 §3.7.1), for SYNs */
    const uint8_t *payload; /* borrowed, may be NULL when len is 0 */
    size_t len;
};

#define MMTLS_PCAPOUT_F_FIN 0x01
#define MMTLS_PCAPOUT_F_SYN 0x02
#define MMTLS_PCAPOUT_F_RST 0x04
#define MMTLS_PCAPOUT_F_PSH 0x08
#define MMTLS_PCAPOUT_F_ACK 0x10
/* Ethernet + IPv6 + TCP with an MSS option + the largest payload written (1460). */
#define MMTLS_PCAPOUT_FRAME_MAX (14 + 40 + 24 + 1460)

/* Builds an Ethernet II frame holding the segment (IPv4 with DF, or IPv6; TTL/hop limit 64)
 * with correct IPv4 header and TCP checksums (RFC 791 §3.1, RFC 9293 §3.1, RFC 8200 §8.1) into
 * buf.  Pure.  Returns 0 and the frame length in *len; MMTLS_E_INVAL for a bad version or a
 * payload over 1460 bytes; MMTLS_E_LIMIT when cap is too small. */
MMTLS_MUST_USE int mmtls_pcapout_frame(const struct mmtls_pcapout_seg *sg, uint8_t *buf, size_t cap,
                                       size_t *len);

/* Formats an address of the session (4 or 16 bytes) into buf (INET6_ADDRSTRLEN). */
void mmtls_apps_fmt_ip(uint8_t ip_version, const uint8_t *addr, char *buf, size_t cap);

#endif
