/* mmtlsd inline mode: a bump in the wire between two interfaces.  Every frame from one port
 * goes out of the other unless the engine holds or drops it (DESIGN §3); the engine's TX sink
 * sends released frames and RSTs.  Each worker owns one socket on each interface (a
 * PACKET_FANOUT_HASH group per interface when there are several workers: the kernel's hash is
 * symmetric, so both directions of a flow reach the same worker) and runs a run-to-completion
 * loop over its two ports: burst in, process, forward, flush (as DPDK's l3fwd does).
 *
 * Back ends (--io): AF_PACKET (src/io/io_afpacket.c) or AF_XDP (src/io/io_xdp.c: worker k owns
 * the socket on queue k of each interface; which worker sees a flow is the NIC's RSS, which
 * must be symmetric).  struct port hides the difference from the loop; AF_XDP frames come as
 * AF_PACKET frames without vnet header or VLAN tag (single MTU-size frames, complete
 * checksums, any VLAN tag inside the frame). */
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

/* Per-frame metadata the engine carries with held frames: virtio_net_hdr | vlan flag | tci. */
struct meta {
    uint8_t vnet[META_VNET];
    uint8_t vlan_valid;
    uint8_t tci[2];
};

/* One port of a worker.  A switch rather than a table of function pointers: two back ends,
 * and the calls stay direct in the loop. */
struct port {
    enum mmtlsd_io io;
    struct mmtls_afp *afp; /* owned (MMTLSD_IO_AFPACKET) */
    struct mmtls_xdp *xdp; /* owned (MMTLSD_IO_XDP) */
};

struct mmtlsd_bridge {
    struct port port[2];
    char names[2][64];
    bool vnet;
    uint64_t tx_full;
};

static int port_fd(const struct port *pt)
{
    return pt->io == MMTLSD_IO_XDP ? mmtls_xdp_fd(pt->xdp) : mmtls_afp_fd(pt->afp);
}

/* A burst of frames, borrowed until port_rx_done(). */
static int port_rx_burst(struct port *pt, struct mmtls_afp_frame *f, int max)
{
    struct mmtls_xdp_frame xf[BURST];
    int n;

    if (pt->io == MMTLSD_IO_AFPACKET)
        return mmtls_afp_rx_burst(pt->afp, f, max);
    n = mmtls_xdp_rx_burst(pt->xdp, xf, max < BURST ? max : BURST);
    for (int i = 0; i < n; i++)
        f[i] = (struct mmtls_afp_frame){.data = xf[i].data, .len = xf[i].len, .ts_us = xf[i].ts_us};
    return n;
}

static void port_rx_done(struct port *pt)
{
    if (pt->io == MMTLSD_IO_XDP)
        mmtls_xdp_rx_done(pt->xdp);
    else
        mmtls_afp_rx_done(pt->afp);
}

static int port_tx(struct port *pt, const uint8_t *data, uint32_t len, const uint8_t *vnet,
                   uint16_t vlan_tci, bool vlan_valid)
{
    int rc;

    if (pt->io == MMTLSD_IO_AFPACKET)
        return mmtls_afp_tx(pt->afp, data, len, vnet, vlan_tci, vlan_valid);
    rc = mmtls_xdp_tx(pt->xdp, data, len);
    if (rc == MMTLS_E_LIMIT) {
        /* No free UMEM frame: kick the kernel, reap its completions and try once more. */
        mmtls_xdp_tx_flush(pt->xdp);
        rc = mmtls_xdp_tx(pt->xdp, data, len);
    }
    return rc;
}

static void port_flush(struct port *pt)
{
    if (pt->io == MMTLSD_IO_XDP)
        mmtls_xdp_tx_flush(pt->xdp);
    else
        mmtls_afp_tx_flush(pt->afp);
}

static void port_close(struct port *pt, int worker, const char *name)
{
    if (pt->io == MMTLSD_IO_XDP) {
        struct mmtls_xdp_stats st;
        if (pt->xdp != NULL && worker >= 0) {
            mmtls_xdp_get_stats(pt->xdp, &st);
            mmtls_log(MMTLS_LOG_INFO,
                      "worker %d %s: rx %llu frames %llu bytes (kernel drops %llu, fill ring "
                      "empty %llu), tx %llu frames, tx ring full %llu, tx errors %llu (AF_XDP %s)",
                      worker, name, (unsigned long long)st.rx_frames,
                      (unsigned long long)st.rx_bytes, (unsigned long long)st.rx_drops_kernel,
                      (unsigned long long)st.rx_fill_empty, (unsigned long long)st.tx_frames,
                      (unsigned long long)st.tx_ring_full, (unsigned long long)st.tx_errors,
                      st.zerocopy ? "zero-copy" : "copy");
        }
        mmtls_xdp_close(pt->xdp);
        pt->xdp = NULL;
        return;
    }
    if (pt->afp != NULL && worker >= 0) {
        struct mmtls_afp_stats st;
        mmtls_afp_get_stats(pt->afp, &st);
        mmtls_log(MMTLS_LOG_INFO,
                  "worker %d %s: rx %llu frames %llu bytes (kernel drops %llu), tx %llu frames, "
                  "tx ring full %llu",
                  worker, name, (unsigned long long)st.rx_frames, (unsigned long long)st.rx_bytes,
                  (unsigned long long)st.rx_drops_kernel, (unsigned long long)st.tx_frames,
                  (unsigned long long)st.tx_ring_full);
    }
    mmtls_afp_close(pt->afp);
    pt->afp = NULL;
}

static void tx_frame(struct mmtlsd_bridge *b, int port, const uint8_t *data, size_t len,
                     const uint8_t *meta, size_t meta_len, bool built)
{
    struct meta m = {0};
    int rc;

    if (meta != NULL && meta_len == sizeof(m))
        memcpy(&m, meta, sizeof(m));
    if (built)
        memset(m.vnet, 0, sizeof(m.vnet)); /* a frame we built: no offload, checksums done */
    rc = port_tx(&b->port[port], data, (uint32_t)len, b->vnet ? m.vnet : NULL,
                 (uint16_t)(m.tci[0] << 8 | m.tci[1]), m.vlan_valid != 0);
    if (rc != 0)
        b->tx_full++;
}

static void engine_send(void *ud, int port, const uint8_t *frame, size_t len, const uint8_t *meta,
                        size_t meta_len, bool built)
{
    tx_frame(ud, port, frame, len, meta, meta_len, built);
}

static uint64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The two interface names of "IF1:IF2"; 0 or MMTLS_E_INVAL with a message. */
static int split_ifpair(const char *ifpair, char names[2][64], char *err, size_t err_cap)
{
    const char *colon = strchr(ifpair, ':');

    if (colon == NULL || colon == ifpair || colon[1] == '\0' || (size_t)(colon - ifpair) >= 64 ||
        strlen(colon + 1) >= 64) {
        snprintf(err, err_cap, "-i wants two interfaces: IF1:IF2 (got '%s')", ifpair);
        return MMTLS_E_INVAL;
    }
    snprintf(names[0], 64, "%.*s", (int)(colon - ifpair), ifpair);
    snprintf(names[1], 64, "%s", colon + 1);
    return 0;
}

int mmtlsd_xdp_setup(struct mmtlsd_xdp *x, const char *ifpair, int nworkers, char *err,
                     size_t err_cap)
{
    char names[2][64];
    int rc = split_ifpair(ifpair, names, err, err_cap);

    x->prog[0] = x->prog[1] = NULL;
    for (int i = 0; i < 2 && rc == 0; i++) {
        uint32_t nq = 1;
        /* Frames of a queue without a worker's socket would never be bridged: the queues and
         * the workers must match one to one. */
        rc = mmtls_xdp_queue_count(names[i], &nq, err, err_cap);
        if (rc == 0 && nq != (uint32_t)nworkers) {
            snprintf(err, err_cap,
                     "%s has %u RX queue%s: --io xdp needs one worker per queue (--workers %u)",
                     names[i], nq, nq == 1 ? "" : "s", nq);
            rc = MMTLS_E_INVAL;
        }
        if (rc == 0)
            rc = mmtls_xdp_prog_attach(&x->prog[i], names[i], err, err_cap);
    }
    if (rc == 0 && nworkers > 1)
        mmtls_log(MMTLS_LOG_WARN,
                  "--io xdp with %d workers: each worker is an RX queue, so both directions of a "
                  "flow reach the same worker only if the NICs' RSS hash is symmetric (veth's is "
                  "not); flows split between workers are seen as mid-stream (docs/CONFIG.md --io)",
                  nworkers);
    if (rc != 0)
        mmtlsd_xdp_teardown(x);
    return rc;
}

void mmtlsd_xdp_teardown(struct mmtlsd_xdp *x)
{
    mmtls_xdp_prog_detach(x->prog[0]);
    mmtls_xdp_prog_detach(x->prog[1]);
    x->prog[0] = x->prog[1] = NULL;
}

int mmtlsd_bridge_open(struct mmtlsd_bridge **out, const char *ifpair,
                       const struct mmtlsd_io_opts *io, int worker, char *err, size_t err_cap)
{
    struct mmtlsd_bridge *b;
    int rc;

    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return MMTLS_E_NOMEM;
    rc = split_ifpair(ifpair, b->names, err, err_cap);
    if (rc != 0) {
        free(b);
        return rc;
    }
    b->vnet = io->io == MMTLSD_IO_AFPACKET && io->vnet;
    for (int i = 0; i < 2; i++) {
        b->port[i].io = io->io;
        if (io->io == MMTLSD_IO_XDP) {
            struct mmtls_xdp_opts o = {.sz = sizeof(o),
                                       .ifname = b->names[i],
                                       .queue_id = (uint32_t)worker,
                                       .mode = io->xdp_mode,
                                       .prog = io->xdp != NULL ? io->xdp->prog[i] : NULL};
            rc = mmtls_xdp_open(&b->port[i].xdp, &o, err, err_cap);
        } else {
            struct mmtls_afp_opts o = {.sz = sizeof(o),
                                       .ifname = b->names[i],
                                       .vnet_hdr = io->vnet,
                                       .fanout_group = io->fanout_group};
            rc = mmtls_afp_open(&b->port[i].afp, &o, err, err_cap);
        }
        if (rc != 0) {
            mmtlsd_bridge_close(b, -1);
            return rc;
        }
    }
    *out = b;
    return 0;
}

void mmtlsd_bridge_close(struct mmtlsd_bridge *b, int worker)
{
    if (b == NULL)
        return;
    port_close(&b->port[0], worker, b->names[0]);
    port_close(&b->port[1], worker, b->names[1]);
    free(b);
}

int mmtlsd_bridge_run(struct mmtlsd_bridge *b, struct mmtls_engine *e, int key_efd,
                      volatile sig_atomic_t *stop, char *err, size_t err_cap)
{
    /* meta starts with a virtio_net_hdr: the kernel's (AF_PACKET with vnet headers) or zeroes
     * (AF_XDP: complete checksums); the engine verifies the checksums that are complete */
    struct mmtls_engine_tx tx = {
        .ud = b, .send = engine_send, .meta_vnet = b->vnet || b->port[0].io == MMTLSD_IO_XDP};
    struct mmtls_afp_frame f[BURST];
    int rc = 0;

    mmtls_engine_set_tx(e, &tx);
    while (!*stop) {
        struct pollfd pfd[3] = {{.fd = port_fd(&b->port[0]), .events = POLLIN},
                                {.fd = port_fd(&b->port[1]), .events = POLLIN},
                                {.fd = key_efd, .events = POLLIN}};
        int busy = 0;

        for (int p = 0; p < 2; p++) {
            int n = port_rx_burst(&b->port[p], f, BURST);
            for (int i = 0; i < n; i++) {
                struct meta m = {0};
                int v;
                if (f[i].vnet != NULL)
                    memcpy(m.vnet, f[i].vnet, META_VNET);
                m.vlan_valid = f[i].vlan_valid;
                m.tci[0] = (uint8_t)(f[i].vlan_tci >> 8);
                m.tci[1] = (uint8_t)f[i].vlan_tci;
                v = mmtls_engine_packet_inline(e, p, f[i].data, f[i].len, f[i].ts_us,
                                               (const uint8_t *)&m, sizeof(m));
                if (v == MMTLS_PKT_FORWARD)
                    tx_frame(b, p ^ 1, f[i].data, f[i].len, (const uint8_t *)&m, sizeof(m), false);
            }
            if (n > 0)
                port_rx_done(&b->port[p]);
            busy += n;
        }
        port_flush(&b->port[0]);
        port_flush(&b->port[1]);
        if (busy == 0) {
            /* Idle: let keys, key waits and flow timeouts progress on the wall clock. */
            mmtls_engine_poll_keys(e);
            mmtls_engine_tick(e, wall_us());
            port_flush(&b->port[0]);
            port_flush(&b->port[1]);
            if (poll(pfd, key_efd >= 0 ? 3 : 2, 10) < 0 && errno != EINTR) {
                snprintf(err, err_cap, "poll: %s", strerror(errno));
                rc = MMTLS_E_IO;
                break;
            }
            if (key_efd >= 0 && (pfd[2].revents & POLLIN)) {
                /* Keys arrived while idle: take them now, not at the next packet. */
                eventfd_t v;
                if (eventfd_read(key_efd, &v) == 0 || errno == EAGAIN)
                    mmtls_engine_poll_keys(e);
            }
        }
    }
    mmtls_engine_flush(e);
    port_flush(&b->port[0]);
    port_flush(&b->port[1]);
    return rc;
}
