/* pcapout — writes each decrypted TLS session as a plaintext TCP connection in a classic pcap
 * file (LINKTYPE_ETHERNET, microsecond timestamps), so that tools that know nothing of TLS
 * (Wireshark, Zeek, Suricata) see the application protocol.
 *
 * The connection is synthetic but consistent: the session's addresses and ports (the server
 * port mapped, by default 443 -> 80 so that the tools dissect HTTP), a three-way handshake,
 * data segments of at most one MSS (1460 bytes over IPv4, 1440 over IPv6: 1500-byte frames),
 * each record's segments followed by the receiver's ACK, and at the end FIN/ACK both ways (or,
 * for a blocked session, RST both ways: inline, both ends were reset).  Only decrypted
 * application data is carried: no TLS bytes, and 0-RTT data only when the server accepted it
 * (RFC 8446 §4.2.10; written when acceptance cannot be seen, as the dump app does).
 *
 * The handshake is written with the session's first decrypted application data, so sessions
 * without keys leave no trace in the file (they are counted).  Timestamps are those of the
 * packets that completed the records, raised where needed so that they never go backwards in
 * the file.
 *
 * Bytes that were not decrypted cannot be exported and are never invented: records skipped by
 * paused monitoring (--inspect-depth), records that could not be decrypted, and bytes lost from
 * the capture become a gap in the sender's TCP sequence numbers, which the tools report as
 * capture loss (Wireshark "previous segment not captured", Zeek missed_bytes, Suricata stream
 * gap).  The gap's length is an upper bound of the plaintext missing (a skipped record counts
 * with its largest possible plaintext, lost bytes with their TLS size).
 *
 * Several workers share one file: each event's frames are written under the file's lock.
 */
#include "apps/apps.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#define PCAPOUT_EARLY_MAX (1u << 20)
#define PCAPOUT_STDIO_BUF (256u * 1024)
#define PCAPOUT_WINDOW 65535
#define PCAPOUT_REC_HDR 16

/* Locally administered MAC addresses (IEEE 802 U/L bit set): client and server. */
static const uint8_t mac_of[2][6] = {{0x02, 0x6d, 0x6d, 0x74, 0x00, 0x01},
                                     {0x02, 0x6d, 0x6d, 0x74, 0x00, 0x02}};

struct po_sess {
    uint32_t nxt[2];        /* next sequence number sent by the client [0] and server [1] */
    bool started;           /* the three-way handshake is in the file */
    bool have_off[2];       /* a record of that direction was seen */
    uint64_t next_off[2];   /* TLS stream offset just after the last record seen */
    uint64_t skipped[2];    /* in->dir[d].skipped_bytes already accounted for */
    bool skip_seen[2];      /* a skip explains the next stream offset jump */
    struct mmtls_buf early; /* owned: 0-RTT plaintext awaiting the server's decision */
    bool early_decided;
};

struct mmtls_pcapout {
    FILE *fp;                   /* owned by the root; borrowed by shared writers */
    struct mmtls_pcapout *root; /* the writer that owns fp, lock and counters (or itself) */
    pthread_mutex_t lock;       /* root only: guards fp and everything below */
    char path[512];
    uint16_t port_from, port_to;
    int app_id;
    uint64_t last_ts_us;           /* root only: timestamps never go backwards in the file */
    bool failed;                   /* root only: a write failed, nothing more is written */
    struct mmtls_pcapout_stats st; /* root only */
};

/* ------------------------------------------------------------------------------------------ */
/* Frame builder                                                                               */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int mmtls_pcapout_frame(const struct mmtls_pcapout_seg *sg, uint8_t *buf, size_t cap, size_t *len)
{
    size_t iplen = sg->ip_version == 4 ? 20 : 40;
    size_t alen = sg->ip_version == 4 ? 4 : 16;
    size_t thl = sg->mss != 0 ? 24 : 20;
    size_t tcplen = thl + sg->len;
    size_t need = 14 + iplen + tcplen;
    uint8_t *ip = buf + 14, *tcp;
    uint8_t pseudo[4];
    uint32_t sum;

    if ((sg->ip_version != 4 && sg->ip_version != 6) || sg->len > 1460 ||
        (sg->len > 0 && sg->payload == NULL)) {
        return MMTLS_E_INVAL;
    }
    if (need > cap)
        return MMTLS_E_LIMIT;
    memcpy(buf, sg->dst_mac, 6);
    memcpy(buf + 6, sg->src_mac, 6);
    put16(buf + 12, sg->ip_version == 4 ? 0x0800 : 0x86dd);
    if (sg->ip_version == 4) {
        /* RFC 791 §3.1; DF set, so the identification may be zero (RFC 6864 §4.1). */
        ip[0] = 0x45;
        ip[1] = 0;
        put16(ip + 2, (uint16_t)(iplen + tcplen));
        put16(ip + 4, 0);
        put16(ip + 6, 0x4000);
        ip[8] = 64;
        ip[9] = 6;
        put16(ip + 10, 0);
        memcpy(ip + 12, sg->src_ip, 4);
        memcpy(ip + 16, sg->dst_ip, 4);
        put16(ip + 10, mmtls_csum_finish(mmtls_csum_add(0, ip, 20)));
    } else {
        /* RFC 8200 §3: version 6, traffic class and flow label 0. */
        put32(ip, 0x60000000u);
        put16(ip + 4, (uint16_t)tcplen);
        ip[6] = 6;
        ip[7] = 64;
        memcpy(ip + 8, sg->src_ip, 16);
        memcpy(ip + 24, sg->dst_ip, 16);
    }
    tcp = ip + iplen;
    /* RFC 9293 §3.1 header; the data offset counts 32-bit words. */
    put16(tcp, sg->src_port);
    put16(tcp + 2, sg->dst_port);
    put32(tcp + 4, sg->seq);
    put32(tcp + 8, (sg->flags & MMTLS_PCAPOUT_F_ACK) ? sg->ack : 0);
    tcp[12] = (uint8_t)((thl / 4) << 4);
    tcp[13] = sg->flags;
    put16(tcp + 14, sg->window);
    put16(tcp + 16, 0);
    put16(tcp + 18, 0);
    if (sg->mss != 0) {
        tcp[20] = 2; /* RFC 9293 §3.2: Maximum Segment Size, length 4 */
        tcp[21] = 4;
        put16(tcp + 22, sg->mss);
    }
    if (sg->len > 0)
        memcpy(tcp + thl, sg->payload, sg->len);
    /* Checksum over the pseudo-header (RFC 9293 §3.1 for IPv4, RFC 8200 §8.1 for IPv6: both
     * addresses, the protocol and the TCP length) and the segment. */
    sum = mmtls_csum_add(0, sg->src_ip, alen);
    sum = mmtls_csum_add(sum, sg->dst_ip, alen);
    put16(pseudo, 6);
    put16(pseudo + 2, (uint16_t)tcplen);
    if (sg->ip_version == 6) {
        uint8_t p6[8] = {0, 0, (uint8_t)(tcplen >> 8), (uint8_t)tcplen, 0, 0, 0, 6};
        sum = mmtls_csum_add(sum, p6, sizeof(p6));
    } else {
        sum = mmtls_csum_add(sum, pseudo, sizeof(pseudo));
    }
    sum = mmtls_csum_add(sum, tcp, tcplen);
    put16(tcp + 16, mmtls_csum_finish(sum));
    *len = need;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Writing (the root's lock held)                                                              */

static void write_fail(struct mmtls_pcapout *r, int err)
{
    r->st.write_errors++;
    if (!r->failed) {
        r->failed = true;
        mmtls_log(MMTLS_LOG_WARN, "pcap-out %s: write failed: %s; nothing more is written", r->path,
                  strerror(err));
    }
}

static uint64_t clamp_ts(struct mmtls_pcapout *r, uint64_t ts)
{
    if (ts < r->last_ts_us)
        return r->last_ts_us;
    r->last_ts_us = ts;
    return ts;
}

/* One segment from side `from` (0 client, 1 server) of session `in`. */
static void emit(struct mmtls_pcapout *po, const struct mmtls_session_info *in, int from,
                 uint32_t seq, uint32_t ack, uint8_t flags, uint16_t mss, const uint8_t *p,
                 size_t n, uint64_t ts)
{
    struct mmtls_pcapout *r = po->root;
    uint8_t rec[PCAPOUT_REC_HDR + MMTLS_PCAPOUT_FRAME_MAX];
    uint16_t sport = in->server_port;
    struct mmtls_pcapout_seg sg = {
        .ip_version = in->ip_version,
        .src_ip = from == 0 ? in->client_ip : in->server_ip,
        .dst_ip = from == 0 ? in->server_ip : in->client_ip,
        .seq = seq,
        .ack = ack,
        .flags = flags,
        .window = PCAPOUT_WINDOW,
        .mss = mss,
        .payload = p,
        .len = n,
    };
    uint32_t tsec = (uint32_t)(ts / 1000000u), tusec = (uint32_t)(ts % 1000000u), flen32;
    size_t flen;

    if (po->port_from != 0 && sport == po->port_from)
        sport = po->port_to;
    memcpy(sg.src_mac, mac_of[from], 6);
    memcpy(sg.dst_mac, mac_of[!from], 6);
    sg.src_port = from == 0 ? in->client_port : sport;
    sg.dst_port = from == 0 ? sport : in->client_port;
    if (r->failed) {
        r->st.write_errors++;
        return;
    }
    if (mmtls_pcapout_frame(&sg, rec + PCAPOUT_REC_HDR, sizeof(rec) - PCAPOUT_REC_HDR, &flen) !=
        0) {
        MMTLS_DEBUG_ASSERT(0);
        return;
    }
    /* pcap record header, in the writer's byte order like the file header */
    flen32 = (uint32_t)flen;
    memcpy(rec, &tsec, 4);
    memcpy(rec + 4, &tusec, 4);
    memcpy(rec + 8, &flen32, 4);
    memcpy(rec + 12, &flen32, 4);
    if (fwrite(rec, 1, PCAPOUT_REC_HDR + flen, r->fp) != PCAPOUT_REC_HDR + flen) {
        write_fail(r, errno);
        return;
    }
    r->st.frames++;
    r->st.plain_bytes += n;
}

static uint32_t isn_of(uint64_t flow_id, int side)
{
    /* Deterministic initial sequence numbers (splitmix64 finaliser): the same capture gives the
     * same file. */
    uint64_t z = flow_id * 2 + (uint64_t)side + 0x9e3779b97f4a7c15ull;

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)(z ^ (z >> 31));
}

static uint16_t mss_of(const struct mmtls_session_info *in)
{
    return in->ip_version == 4 ? 1460 : 1440; /* 1500-byte IP packets */
}

/* The three-way handshake, once, before the session's first frame (RFC 9293 §3.5). */
static void start(struct mmtls_pcapout *po, const struct mmtls_session_info *in, struct po_sess *ps)
{
    struct mmtls_pcapout *r = po->root;
    uint32_t c = isn_of(in->flow_id, 0), s = isn_of(in->flow_id, 1);
    uint64_t ts = clamp_ts(r, in->start_ts_us);

    if (ps->started)
        return;
    ps->started = true;
    emit(po, in, 0, c, 0, MMTLS_PCAPOUT_F_SYN, mss_of(in), NULL, 0, ts);
    emit(po, in, 1, s, c + 1, MMTLS_PCAPOUT_F_SYN | MMTLS_PCAPOUT_F_ACK, mss_of(in), NULL, 0, ts);
    emit(po, in, 0, c + 1, s + 1, MMTLS_PCAPOUT_F_ACK, 0, NULL, 0, ts);
    ps->nxt[0] = c + 1;
    ps->nxt[1] = s + 1;
    r->st.sessions++;
}

/* Application data from side d: MSS-sized segments, PSH on the last, then the peer's ACK. */
static void send_data(struct mmtls_pcapout *po, const struct mmtls_session_info *in,
                      struct po_sess *ps, int d, const uint8_t *p, size_t n)
{
    size_t mss = mss_of(in);
    uint64_t ts;

    if (n == 0)
        return;
    start(po, in, ps); /* first: its frames carry the session's first timestamp */
    ts = clamp_ts(po->root, in->last_ts_us);
    for (size_t off = 0; off < n;) {
        size_t k = n - off < mss ? n - off : mss;
        uint8_t fl = MMTLS_PCAPOUT_F_ACK | (off + k == n ? MMTLS_PCAPOUT_F_PSH : 0);
        emit(po, in, d, ps->nxt[d], ps->nxt[!d], fl, 0, p + off, k, ts);
        ps->nxt[d] += (uint32_t)k;
        off += k;
    }
    emit(po, in, !d, ps->nxt[!d], ps->nxt[d], MMTLS_PCAPOUT_F_ACK, 0, NULL, 0, ts);
}

/* n bytes of side d that cannot be exported: a hole in d's sequence space. */
static void gap(struct mmtls_pcapout *po, struct po_sess *ps, int d, uint64_t n)
{
    if (!ps->started || n == 0)
        return;
    /* TCP sequence space is modulo 2^32 (RFC 9293 §3.4); a hole must stay below 2^31 to be
     * read as one by the tools. */
    if (n > 0x40000000u)
        n = 0x40000000u;
    ps->nxt[d] += (uint32_t)n;
    po->root->st.gaps++;
}

/* Paused monitoring: plaintext skipped since the last event becomes a gap at once, so that
 * the peer's next acknowledgement already covers it, as the real peer's did. */
static void note_skips(struct mmtls_pcapout *po, const struct mmtls_session_info *in,
                       struct po_sess *ps)
{
    for (int d = 0; d < 2; d++) {
        uint64_t now = in->dir[d].skipped_bytes;
        if (now > ps->skipped[d]) {
            gap(po, ps, d, now - ps->skipped[d]);
            ps->skipped[d] = now;
            ps->skip_seen[d] = true;
        }
    }
}

/* Writes or drops the held 0-RTT data once the server's decision is known, or when `force`
 * (the data can wait no longer without reordering the flow). */
static void early_settle(struct mmtls_pcapout *po, const struct mmtls_session_info *in,
                         struct po_sess *ps, bool force)
{
    if (ps->early_decided || (in->early_data_accepted < 0 && !force))
        return;
    ps->early_decided = true;
    if (in->early_data_accepted != 0)
        send_data(po, in, ps, MMTLS_DIR_TO_SERVER, ps->early.p, ps->early.len);
    mmtls_buf_fini(&ps->early, true);
}

static void on_record(struct mmtls_pcapout *po, struct mmtls_session *s, struct po_sess *ps,
                      const struct mmtls_record *rec)
{
    const struct mmtls_session_info *in = mmtls_session_info(s);
    int d = rec->dir == MMTLS_DIR_TO_SERVER ? 0 : 1;
    const uint8_t *p;
    size_t n;

    note_skips(po, in, ps);
    /* Records the engine did not dispatch (capture loss) leave a jump in the stream offsets. */
    if (ps->have_off[d] && rec->stream_off > ps->next_off[d] && !ps->skip_seen[d])
        gap(po, ps, d, rec->stream_off - ps->next_off[d]);
    ps->have_off[d] = true;
    ps->next_off[d] = rec->stream_off + rec->wire_len;
    ps->skip_seen[d] = false;
    early_settle(po, in, ps, false);
    if (rec->outer_type != MMTLS_CT_APPLICATION_DATA)
        return;
    if (mmtls_record_plaintext(s, &p, &n) != 0) {
        /* Not decrypted or failed verification: nothing unverified is written. */
        if (!rec->early)
            gap(po, ps, d, rec->max_plain_len);
        return;
    }
    if (rec->type != MMTLS_CT_APPLICATION_DATA)
        return; /* TLS 1.3 handshake or alert inside an application_data record */
    if (rec->early) {
        if (!ps->early_decided && mmtls_buf_append(&ps->early, p, n) != 0)
            mmtls_log(MMTLS_LOG_DEBUG, "pcap-out: 0-RTT data over %u bytes left out",
                      PCAPOUT_EARLY_MAX);
        return;
    }
    early_settle(po, in, ps, true);
    send_data(po, in, ps, d, p, n);
}

static void on_end(struct mmtls_pcapout *po, const struct mmtls_session_info *in,
                   struct po_sess *ps)
{
    struct mmtls_pcapout *r = po->root;
    uint64_t ts;

    note_skips(po, in, ps);
    early_settle(po, in, ps, true);
    /* A session blocked on its first decrypted record still shows as a reset connection. */
    if (!ps->started && in->blocked && in->dir[0].app_records + in->dir[1].app_records > 0)
        start(po, in, ps);
    if (!ps->started) {
        if (in->key_status == MMTLS_KEYS_NONE || in->key_status == MMTLS_KEYS_BYPASS)
            r->st.sessions_no_keys++;
        else
            r->st.sessions_no_data++;
        return;
    }
    ts = clamp_ts(r, in->last_ts_us);
    if (in->blocked) {
        /* Inline, the middlebox reset both ends. */
        emit(po, in, 1, ps->nxt[1], ps->nxt[0], MMTLS_PCAPOUT_F_RST | MMTLS_PCAPOUT_F_ACK, 0, NULL,
             0, ts);
        emit(po, in, 0, ps->nxt[0], ps->nxt[1], MMTLS_PCAPOUT_F_RST | MMTLS_PCAPOUT_F_ACK, 0, NULL,
             0, ts);
        return;
    }
    /* RFC 9293 §3.6: the client closes, the server answers with its FIN, the client ACKs. */
    emit(po, in, 0, ps->nxt[0], ps->nxt[1], MMTLS_PCAPOUT_F_FIN | MMTLS_PCAPOUT_F_ACK, 0, NULL, 0,
         ts);
    ps->nxt[0]++;
    emit(po, in, 1, ps->nxt[1], ps->nxt[0], MMTLS_PCAPOUT_F_FIN | MMTLS_PCAPOUT_F_ACK, 0, NULL, 0,
         ts);
    ps->nxt[1]++;
    emit(po, in, 0, ps->nxt[0], ps->nxt[1], MMTLS_PCAPOUT_F_ACK, 0, NULL, 0, ts);
}

static int pcapout_on_event(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct mmtls_pcapout *po = arg;
    struct po_sess *ps = mmtls_session_ctx_get(s, po->app_id);

    if (ev->ev == MMTLS_EV_SESSION_START) {
        ps = calloc(1, sizeof(*ps));
        if (ps == NULL)
            return MMTLS_VERDICT_CONTINUE; /* not exported */
        ps->early.max = PCAPOUT_EARLY_MAX;
        mmtls_session_ctx_set(s, po->app_id, ps);
        return MMTLS_VERDICT_CONTINUE;
    }
    if (ps == NULL)
        return MMTLS_VERDICT_CONTINUE;
    pthread_mutex_lock(&po->root->lock);
    if (ev->ev == MMTLS_EV_NEW_RECORD)
        on_record(po, s, ps, ev->rec);
    else if (ev->ev == MMTLS_EV_SESSION_END)
        on_end(po, mmtls_session_info(s), ps);
    pthread_mutex_unlock(&po->root->lock);
    if (ev->ev == MMTLS_EV_SESSION_END) {
        mmtls_buf_fini(&ps->early, true);
        free(ps);
        mmtls_session_ctx_set(s, po->app_id, NULL);
    }
    return MMTLS_VERDICT_CONTINUE;
}

/* ------------------------------------------------------------------------------------------ */
/* Life cycle                                                                                  */

int mmtls_pcapout_new(struct mmtls_pcapout **out, const char *path, uint16_t port_from,
                      uint16_t port_to, char *err, size_t err_cap)
{
    struct mmtls_pcapout *po;
    /* Classic pcap file header: magic (microseconds), version 2.4, zone, sigfigs, snaplen,
     * LINKTYPE_ETHERNET (1), in the writer's byte order as the magic tells readers. */
    uint32_t hdr32[6] = {0xa1b2c3d4u, 0, 0, 0, 65535, 1};
    uint16_t ver[2] = {2, 4};
    uint8_t hdr[24];

    if (strlen(path) >= sizeof(po->path)) {
        snprintf(err, err_cap, "%s: path too long", path);
        return MMTLS_E_INVAL;
    }
    po = calloc(1, sizeof(*po));
    if (po == NULL)
        return MMTLS_E_NOMEM;
    snprintf(po->path, sizeof(po->path), "%s", path);
    po->fp = fopen(path, "wb");
    if (po->fp == NULL) {
        snprintf(err, err_cap, "cannot create %s: %s", path, strerror(errno));
        free(po);
        return MMTLS_E_IO;
    }
    /* A bounded stdio buffer: frames reach the file in 256 KiB writes. */
    setvbuf(po->fp, NULL, _IOFBF, PCAPOUT_STDIO_BUF);
    memcpy(hdr, &hdr32[0], 4);
    memcpy(hdr + 4, &ver[0], 2);
    memcpy(hdr + 6, &ver[1], 2);
    memcpy(hdr + 8, &hdr32[2], 16);
    if (fwrite(hdr, 1, sizeof(hdr), po->fp) != sizeof(hdr)) {
        snprintf(err, err_cap, "cannot write %s: %s", path, strerror(errno));
        fclose(po->fp);
        free(po);
        return MMTLS_E_IO;
    }
    pthread_mutex_init(&po->lock, NULL);
    po->root = po;
    po->port_from = port_from;
    po->port_to = port_to;
    *out = po;
    return 0;
}

int mmtls_pcapout_new_shared(struct mmtls_pcapout **out, struct mmtls_pcapout *parent)
{
    struct mmtls_pcapout *po = calloc(1, sizeof(*po));

    if (po == NULL)
        return MMTLS_E_NOMEM;
    po->fp = parent->root->fp;
    po->root = parent->root;
    po->port_from = parent->port_from;
    po->port_to = parent->port_to;
    snprintf(po->path, sizeof(po->path), "%s", parent->path);
    *out = po;
    return 0;
}

int mmtls_pcapout_register(struct mmtls_pcapout *po, struct mmtls_engine *e)
{
    struct mmtls_app app = {
        .sz = sizeof(app),
        .name = "pcap-out",
        .events = MMTLS_EV_SESSION_START | MMTLS_EV_NEW_RECORD | MMTLS_EV_SESSION_END,
        .on_event = pcapout_on_event,
        .arg = po,
    };

    return mmtls_engine_app_register(e, &app, &po->app_id);
}

void mmtls_pcapout_get_stats(struct mmtls_pcapout *po, struct mmtls_pcapout_stats *st)
{
    struct mmtls_pcapout *r = po->root;

    pthread_mutex_lock(&r->lock);
    /* Buffered frames reach the file now, so that a full disk is counted. */
    if (!r->failed && fflush(r->fp) != 0)
        write_fail(r, errno);
    *st = r->st;
    pthread_mutex_unlock(&r->lock);
}

void mmtls_pcapout_free(struct mmtls_pcapout *po)
{
    if (po == NULL)
        return;
    if (po->root != po) {
        pthread_mutex_lock(&po->root->lock);
        if (!po->root->failed && fflush(po->fp) != 0)
            write_fail(po->root, errno);
        pthread_mutex_unlock(&po->root->lock);
        free(po);
        return;
    }
    if (!po->failed && (fflush(po->fp) != 0 || ferror(po->fp)))
        write_fail(po, errno);
    if (fclose(po->fp) != 0 && !po->failed)
        write_fail(po, errno);
    pthread_mutex_destroy(&po->lock);
    free(po);
}
