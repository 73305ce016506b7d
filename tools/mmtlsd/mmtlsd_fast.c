/* mmtlsd --io fast: the inline mode over the kernel fast path (docs/FASTPATH.md).  TC programs
 * on both interfaces forward frames in the kernel; this worker gets, on the divert interface,
 * copies (frames the kernel forwarded already: inspected, never sent) and diverted frames
 * (frames only it has: the engine's verdict applies, and forwarded frames leave straight out of
 * the other port: sendmmsg on the divert socket's ring-less send socket, addressed by interface
 * index, one veth hop fewer than back through the divert pair).  The engine tells it
 * (on_flow_state) what the kernel may do with each flow; it writes that into the kernel's maps.
 * Several workers share the programs and maps (worker 0 owns them) and each reads the divert
 * interface with its own AF_PACKET socket in one PACKET_FANOUT_HASH group: the symmetric flow hash
 * gives a flow's copies and diverted frames, both directions, to one worker, which alone writes its
 * entry. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>

#include "mmtlsd.h"

#define BURST 64
#define META_VNET 10 /* sizeof(struct virtio_net_hdr) */

/* Per-frame metadata the engine carries with held frames. */
struct meta {
    uint8_t vnet[META_VNET];
    uint8_t vlan_valid; /* always 0: an original tag stays inside the frame */
    uint8_t tci[2];
    uint8_t copy; /* the kernel forwarded it already */
};

struct mmtlsd_fast {
    struct mmtls_fast *k; /* programs and maps: owned by worker 0, borrowed by the others */
    bool owner;
    struct mmtls_afp *port; /* owned: AF_PACKET on the divert interface */
    char names[2][64];
    uint64_t copies, diverts, resumes, unmarked, late, late_release, set_fail, rst_fixed;
    uint64_t copies_lost; /* the engine's count, taken when the loop ends */
    uint64_t late_drop;
    uint64_t polls, bursts; /* sleeps in poll(), non-empty receive bursts */
    uint32_t rearm_gen;
};

struct mmtlsd_fast *mmtlsd_fast_new(void)
{
    return calloc(1, sizeof(struct mmtlsd_fast));
}

static void key_from_flow(const struct mmtls_flow_key *fk, struct mmtls_fast_flowkey *k)
{
    memset(k, 0, sizeof(*k));
    k->ip_version = fk->ip_version;
    memcpy(k->addr, fk->addr, sizeof(k->addr));
    k->port[0] = fk->port[0];
    k->port[1] = fk->port[1];
}

/* The flow key and sender endpoint of a decoded frame (as src/flow/flow.c orders them). */
static void key_from_pkt(const struct mmtls_pkt *p, struct mmtls_fast_flowkey *k, int *side)
{
    size_t alen = p->ip_version == 4 ? 4 : 16;
    int c = memcmp(p->src, p->dst, alen);

    memset(k, 0, sizeof(*k));
    k->ip_version = p->ip_version;
    *side = c < 0 || (c == 0 && p->sport <= p->dport) ? 0 : 1;
    memcpy(k->addr[*side], p->src, alen);
    memcpy(k->addr[!*side], p->dst, alen);
    k->port[*side] = p->sport;
    k->port[!*side] = p->dport;
}

void mmtlsd_fast_flow_state(void *ud, const struct mmtls_flow_key *key, const uint8_t mode[2],
                            const uint32_t gen[2], const uint32_t budget[2],
                            const struct mmtls_engine_fast_sync *sync, bool ended)
{
    struct mmtlsd_fast *fp = ud;
    struct mmtls_fast_flowkey k;
    struct mmtls_fast_rearm ra[2];
    bool any = false;

    if (fp->k == NULL || key->proto != 6)
        return;
    key_from_flow(key, &k);
    if (ended) {
        mmtls_fast_del(fp->k, &k);
        return;
    }
    memset(ra, 0, sizeof(ra));
    for (int i = 0; i < 2 && sync != NULL; i++) {
        if (!sync[i].valid)
            continue;
        if (++fp->rearm_gen == 0)
            fp->rearm_gen = 1;
        ra[i].gen = fp->rearm_gen;
        ra[i].end_seq = sync[i].end_seq;
        ra[i].hdr_seq = sync[i].hdr_seq;
        any = true;
    }
    if (mmtls_fast_set(fp->k, &k, mode, gen, budget, any ? ra : NULL) != 0)
        fp->set_fail++; /* the kernel keeps diverting the flow: slower, never unsafe */
}

/* An RST the engine built (a session is blocked): the kernel drops the flow from now on, and
 * the RST carries the next sequence number the receiver expects, which includes what the
 * kernel forwarded (RFC 5961 §3.2). */
static void rst_prepare(struct mmtlsd_fast *fp, uint8_t *fr, size_t len)
{
    struct mmtls_decode_opts dopts = {0};
    struct mmtls_pkt p;
    struct mmtls_fast_flowkey k;
    struct mmtls_fast_side_info si;
    const uint8_t block[2] = {MMTLS_FASTM_BLOCK, MMTLS_FASTM_BLOCK};
    const uint32_t gen[2] = {0, 0};
    uint8_t *tcp;
    uint32_t sum;
    int side;

    memset(&p, 0, sizeof(p));
    if (mmtls_decode_frame(MMTLS_LINK_ETHERNET, fr, len, &dopts, &p) != MMTLS_DEC_OK)
        return;
    key_from_pkt(&p, &k, &side);
    if (mmtls_fast_set(fp->k, &k, block, gen, NULL, NULL) != 0)
        fp->set_fail++;
    if (mmtls_fast_side_get(fp->k, &k, side, &si) != 0 || !si.fwd_valid)
        return;
    if ((int32_t)(si.fwd_end - p.seq) <= 0)
        return;
    tcp = fr + (p.payload - fr) - 20; /* built RSTs: 20-byte TCP header, no options */
    tcp[4] = (uint8_t)(si.fwd_end >> 24), tcp[5] = (uint8_t)(si.fwd_end >> 16);
    tcp[6] = (uint8_t)(si.fwd_end >> 8), tcp[7] = (uint8_t)si.fwd_end;
    tcp[16] = tcp[17] = 0;
    sum = mmtls_csum_add(0, p.ip_version == 4 ? p.l3 + 12 : p.l3 + 8, p.ip_version == 4 ? 8 : 32);
    sum += 6 + 20;
    sum = mmtls_csum_add(sum, tcp, 20);
    mmtls_put_be16(tcp + 16, mmtls_csum_finish(sum));
    fp->rst_fixed++;
}

static void engine_send(void *ud, int port, const uint8_t *frame, size_t len, const uint8_t *meta,
                        size_t meta_len, bool built)
{
    struct mmtlsd_fast *fp = ud;
    struct meta m = {0};
    uint8_t rst[128];

    if (meta != NULL && meta_len == sizeof(m))
        memcpy(&m, meta, sizeof(m));
    if (m.copy && !built) {
        fp->late_release++; /* the kernel forwarded it already */
        return;
    }
    /* A frame the engine built (an RST) carries the metadata of its direction's last frame,
     * which may have been a copy: it is sent all the same. */
    if (built) {
        memset(m.vnet, 0, sizeof(m.vnet)); /* a frame we built: no offload, checksums done */
        if (len <= sizeof(rst)) {
            memcpy(rst, frame, len);
            rst_prepare(fp, rst, len);
            frame = rst;
        }
    }
    /* a frame refused here is counted by the port (tx_errors, logged at exit) */
    if (mmtls_afp_tx_copy_dev(fp->port, mmtls_fast_port_ifindex(fp->k, port), frame, (uint32_t)len,
                              m.vnet, 0, false) != 0)
        return;
}

void mmtlsd_fast_engine_opts(struct mmtlsd_fast *fp, struct mmtls_engine_opts *eo)
{
    eo->on_flow_state = mmtlsd_fast_flow_state;
    eo->on_flow_state_ud = fp;
}

int mmtlsd_fast_open(struct mmtlsd_fast *fp, const char *ifpair, struct mmtlsd_fast *owner,
                     int fanout_group, uint32_t rps_cpus, char *err, size_t err_cap)
{
    const char *colon = strchr(ifpair, ':');
    struct mmtls_fast_opts fo = {.sz = sizeof(fo), .rps_cpus = rps_cpus};
    /* A deep ring: a copy lost to a full ring blocks its session (mmtls_engine_fast_inorder).
     * Frame slots (TPACKET_V2), not V3 blocks: a diverted frame waits in user space until it is
     * sent on, and in a V3 block that is not full it would wait for the block's retire timer
     * (4-8 ms here), while the kernel forwards the sender's later frames past it: the receiver
     * takes that reordering for loss and the sender retransmits (docs/FASTPATH.md). */
    struct mmtls_afp_opts ao = {.sz = sizeof(ao),
                                .vnet_hdr = true,
                                .block_nr = 128,
                                .fanout_group = fanout_group,
                                .frame_ring = true,
                                /* frames leave by sendmmsg (tx_ref_dev, tx_copy_dev), never
                                 * through the TX ring: its smallest size, one 1 MiB block */
                                .tx_frame_nr = 1};
    int rc;

    if (owner != NULL) {
        /* another worker: the same programs, maps and divert interface, its own socket */
        fp->k = owner->k;
        ao.ifname = mmtls_fast_divert_ifname(fp->k);
        rc = mmtls_afp_open(&fp->port, &ao, err, err_cap);
        if (rc != 0)
            fp->k = NULL;
        return rc;
    }
    fp->owner = true;
    if (colon == NULL || colon == ifpair || colon[1] == '\0' ||
        (size_t)(colon - ifpair) >= sizeof(fp->names[0]) ||
        strlen(colon + 1) >= sizeof(fp->names[1])) {
        snprintf(err, err_cap, "-i wants two interfaces: IF1:IF2 (got '%s')", ifpair);
        return MMTLS_E_INVAL;
    }
    snprintf(fp->names[0], sizeof(fp->names[0]), "%.*s", (int)(colon - ifpair), ifpair);
    snprintf(fp->names[1], sizeof(fp->names[1]), "%s", colon + 1);
    fo.ifname[0] = fp->names[0];
    fo.ifname[1] = fp->names[1];
    rc = mmtls_fast_open(&fp->k, &fo, err, err_cap);
    if (rc != 0)
        return rc;
    ao.ifname = mmtls_fast_divert_ifname(fp->k);
    rc = mmtls_afp_open(&fp->port, &ao, err, err_cap);
    if (rc != 0) {
        mmtls_fast_close(fp->k);
        fp->k = NULL;
    }
    return rc;
}

void mmtlsd_fast_close(struct mmtlsd_fast *fp)
{
    struct mmtls_fast_stats ks;
    struct mmtls_afp_stats as;

    if (fp == NULL)
        return;
    if (fp->k != NULL && fp->owner) {
        mmtls_fast_get_stats(fp->k, &ks);
        mmtls_log(MMTLS_LOG_INFO,
                  "fast path: kernel forwarded %llu frames %llu bytes uncopied, %llu frames "
                  "%llu bytes with a copy; diverted %llu frames %llu bytes; dropped %llu; "
                  "resumed %llu; skips started by the wire budget %llu; lost %llu; re-armed %llu; "
                  "races %llu; not TCP %llu",
                  (unsigned long long)ks.fwd, (unsigned long long)ks.fwd_bytes,
                  (unsigned long long)ks.copy, (unsigned long long)ks.copy_bytes,
                  (unsigned long long)ks.divert, (unsigned long long)ks.divert_bytes,
                  (unsigned long long)ks.drop, (unsigned long long)ks.resume,
                  (unsigned long long)ks.kskip, (unsigned long long)ks.lost,
                  (unsigned long long)ks.rearm, (unsigned long long)ks.race,
                  (unsigned long long)ks.other);
    }
    if (fp->k != NULL) {
        mmtls_afp_get_stats(fp->port, &as);
        mmtls_log(MMTLS_LOG_INFO,
                  "fast path: user space got %llu copies, %llu diverted, %llu resumes, %llu "
                  "unmarked; fast_late %llu (released %llu); copies of blocked flows %llu; copies "
                  "lost %llu; rx %llu frames %llu bytes (kernel "
                  "drops %llu) in %llu bursts, %llu polls; tx %llu, send buffer full %llu, "
                  "send errors %llu; map update failures %llu; RSTs moved forward %llu",
                  (unsigned long long)fp->copies, (unsigned long long)fp->diverts,
                  (unsigned long long)fp->resumes, (unsigned long long)fp->unmarked,
                  (unsigned long long)fp->late, (unsigned long long)fp->late_release,
                  (unsigned long long)fp->late_drop, (unsigned long long)fp->copies_lost,
                  (unsigned long long)as.rx_frames, (unsigned long long)as.rx_bytes,
                  (unsigned long long)as.rx_drops_kernel, (unsigned long long)fp->bursts,
                  (unsigned long long)fp->polls, (unsigned long long)as.tx_frames,
                  (unsigned long long)as.tx_ring_full, (unsigned long long)as.tx_errors,
                  (unsigned long long)fp->set_fail, (unsigned long long)fp->rst_fixed);
    }
    mmtls_afp_close(fp->port);
    if (fp->owner)
        mmtls_fast_close(fp->k); /* the other workers closed theirs first (run_inline) */
    free(fp);
}

static uint64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* One frame from the divert interface. */
static void fast_frame(struct mmtlsd_fast *fp, struct mmtls_engine *e,
                       const struct mmtls_afp_frame *f)
{
    struct meta m = {0};
    unsigned vid = f->vlan_tci & 0x0fffu, kind, port;
    int v;

    if (!f->vlan_valid || (vid & 0xf00u) != 0xf00u) {
        fp->unmarked++; /* the divert interface's own chatter */
        return;
    }
    kind = (vid >> 1) & 0x7fu;
    port = vid & 1u;
    if (kind < MMTLS_FASTK_COPY || kind > MMTLS_FASTK_DIVERT_INORDER) {
        fp->unmarked++;
        return;
    }
    if (f->vnet != NULL)
        memcpy(m.vnet, f->vnet, META_VNET);
    m.copy = kind == MMTLS_FASTK_COPY;
    if (kind == MMTLS_FASTK_RESUME || kind == MMTLS_FASTK_RESUME_LOST) {
        struct mmtls_decode_opts dopts = {0};
        struct mmtls_fast_flowkey k;
        struct mmtls_fast_side_info si;
        struct mmtls_pkt p;
        int side;
        memset(&p, 0, sizeof(p));
        if (mmtls_decode_frame(MMTLS_LINK_ETHERNET, f->data, f->len, &dopts, &p) == MMTLS_DEC_OK) {
            key_from_pkt(&p, &k, &side);
            if (mmtls_fast_side_get(fp->k, &k, side, &si) == 0) {
                mmtls_engine_fast_resume(e, si.resume_seq, si.resume_nskip,
                                         si.resume_lost || kind == MMTLS_FASTK_RESUME_LOST);
                fp->resumes++;
            }
        }
    }
    if (kind == MMTLS_FASTK_COPY || kind == MMTLS_FASTK_DIVERT_INORDER)
        mmtls_engine_fast_inorder(e);
    else if (kind == MMTLS_FASTK_DIVERT)
        mmtls_engine_fast_sync_next(e); /* the kernel may have lost the framing: re-arm it */
    if (m.copy)
        fp->copies++;
    else
        fp->diverts++;
    v = mmtls_engine_packet_inline(e, (int)port, f->data, f->len, f->ts_us, (const uint8_t *)&m,
                                   sizeof(m));
    if (m.copy) {
        if (v == MMTLS_PKT_HOLD)
            fp->late++; /* the engine wanted to hold a frame that has left */
        else if (v == MMTLS_PKT_DROP)
            fp->late_drop++; /* left before the kernel knew the flow was blocked */
        return;
    }
    /* By reference: the frame stays in the RX ring until the burst is flushed (the loop flushes
     * before giving the ring back), and the kernel copies it once. */
    if (v == MMTLS_PKT_FORWARD &&
        mmtls_afp_tx_ref_dev(fp->port, mmtls_fast_port_ifindex(fp->k, (int)port ^ 1), f->data,
                             f->len, f->vnet, 0, false) != 0)
        return; /* counted by the port (tx_errors) */
}

int mmtlsd_fast_run(struct mmtlsd_fast *fp, struct mmtls_engine *e, int key_efd,
                    volatile sig_atomic_t *stop, char *err, size_t err_cap)
{
    /* meta starts with the frame's virtio_net_hdr (the divert socket has PACKET_VNET_HDR):
     * the engine verifies the checksums that are complete (a segment the receiver will drop
     * is not inspected) and leaves offloaded ones alone when it edits a frame (URG) */
    struct mmtls_engine_tx tx = {.ud = fp, .send = engine_send, .meta_vnet = true};
    struct mmtls_afp_frame f[BURST];
    int rc = 0;

    mmtls_engine_set_tx(e, &tx);
    while (!*stop) {
        struct pollfd pfd[2] = {{.fd = mmtls_afp_fd(fp->port), .events = POLLIN},
                                {.fd = key_efd, .events = POLLIN}};
        int n = mmtls_afp_rx_burst(fp->port, f, BURST);

        for (int i = 0; i < n; i++)
            fast_frame(fp, e, &f[i]);
        mmtls_afp_tx_flush(fp->port); /* before rx_done: frames are sent from the RX ring */
        if (n > 0) {
            mmtls_afp_rx_done(fp->port);
            fp->bursts++;
        }
        if (n == 0) {
            /* Idle: let keys, key waits and flow timeouts progress on the wall clock. */
            mmtls_engine_poll_keys(e);
            mmtls_engine_tick(e, wall_us());
            mmtls_afp_tx_flush(fp->port);
            fp->polls++;
            if (poll(pfd, key_efd >= 0 ? 2 : 1, 10) < 0 && errno != EINTR) {
                snprintf(err, err_cap, "poll: %s", strerror(errno));
                rc = MMTLS_E_IO;
                break;
            }
            if (key_efd >= 0 && (pfd[1].revents & POLLIN)) {
                eventfd_t v;
                if (eventfd_read(key_efd, &v) == 0 || errno == EAGAIN)
                    mmtls_engine_poll_keys(e);
            }
        }
    }
    fp->copies_lost = mmtls_engine_fast_copies_lost(e);
    mmtls_engine_flush(e);
    mmtls_afp_tx_flush(fp->port);
    return rc;
}
