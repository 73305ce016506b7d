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
 * checksums, any VLAN tag inside the frame).  DPDK (src/io/io_dpdk.c: worker k polls queue k
 * of both devices) gives frames of the same kind; a frame forwarded unchanged leaves in the
 * mbuf it arrived in (no copy), and with no descriptor to sleep on the loop polls without
 * pause while traffic flows (a full core per worker) and naps once idle (dpdk_idle). */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>

#include "mmtlsd.h"

#define BURST 64
/* --io dpdk: busy polling (yielding the CPU after an empty pass) while a frame came within
 * DPDK_SPIN_US, then naps of at most DPDK_NAP_US (woken early by keys); the engine's clock
 * ticks every DPDK_TICK_US. */
#define DPDK_SPIN_US 1000u
#define DPDK_NAP_US 1000u
#define DPDK_TICK_US 1000u
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
    struct mmtls_afp *afp;            /* owned (MMTLSD_IO_AFPACKET) */
    struct mmtls_xdp *xdp;            /* owned (MMTLSD_IO_XDP); a worker's two share one UMEM */
    struct mmtls_xdp_frame xf[BURST]; /* AF_XDP: the current burst (for port_forward) */
    struct mmtls_dpdk *dpdk;          /* owned (MMTLSD_IO_DPDK) */
};

struct mmtlsd_bridge {
    struct port port[2];
    char names[2][64];
    bool vnet;
    uint64_t tx_full;
};

static int port_fd(const struct port *pt)
{
    if (pt->io == MMTLSD_IO_DPDK)
        return -1; /* polled: poll() ignores it */
    return pt->io == MMTLSD_IO_XDP ? mmtls_xdp_fd(pt->xdp) : mmtls_afp_fd(pt->afp);
}

/* A burst of frames, borrowed until port_rx_done(). */
static int port_rx_burst(struct port *pt, struct mmtls_afp_frame *f, int max)
{
    struct mmtls_xdp_frame *xf = pt->xf;
    int n;

    if (pt->io == MMTLSD_IO_AFPACKET)
        return mmtls_afp_rx_burst(pt->afp, f, max);
    if (pt->io == MMTLSD_IO_DPDK) {
        struct mmtls_dpdk_frame df[BURST];
        n = mmtls_dpdk_rx_burst(pt->dpdk, df, max < BURST ? max : BURST);
        for (int i = 0; i < n; i++)
            f[i] = (struct mmtls_afp_frame){
                .data = df[i].data, .len = df[i].len, .ts_us = df[i].ts_us};
        return n;
    }
    n = mmtls_xdp_rx_burst(pt->xdp, xf, max < BURST ? max : BURST);
    for (int i = 0; i < n; i++)
        f[i] = (struct mmtls_afp_frame){.data = xf[i].data, .len = xf[i].len, .ts_us = xf[i].ts_us};
    return n;
}

static void port_rx_done(struct port *pt)
{
    if (pt->io == MMTLSD_IO_XDP)
        mmtls_xdp_rx_done(pt->xdp);
    else if (pt->io == MMTLSD_IO_DPDK)
        mmtls_dpdk_rx_done(pt->dpdk);
    else
        mmtls_afp_rx_done(pt->afp);
}

/* by_ref (AF_PACKET): data stays valid until the port's next flush, so it is sent by reference
 * (mmtls_afp_tx_ref) instead of copied into the TX ring. */
static int port_tx(struct port *pt, const uint8_t *data, uint32_t len, const uint8_t *vnet,
                   uint16_t vlan_tci, bool vlan_valid, bool by_ref)
{
    int rc;

    if (pt->io == MMTLSD_IO_AFPACKET)
        return by_ref ? mmtls_afp_tx_ref(pt->afp, data, len, vnet, vlan_tci, vlan_valid)
                      : mmtls_afp_tx(pt->afp, data, len, vnet, vlan_tci, vlan_valid);
    if (pt->io == MMTLSD_IO_DPDK)
        return mmtls_dpdk_tx(pt->dpdk, data, len); /* VLAN tags are inline */
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
    else if (pt->io == MMTLSD_IO_DPDK)
        mmtls_dpdk_tx_flush(pt->dpdk);
    else
        mmtls_afp_tx_flush(pt->afp);
}

static void port_close(struct port *pt, int worker, const char *name)
{
    if (pt->io == MMTLSD_IO_DPDK) {
        struct mmtls_dpdk_stats st;
        if (pt->dpdk != NULL && worker >= 0) {
            mmtls_dpdk_get_stats(pt->dpdk, &st);
            mmtls_log(MMTLS_LOG_INFO,
                      "worker %d %s: rx %llu frames %llu bytes, tx %llu frames (%llu without "
                      "copy) %llu bytes, tx dropped %llu (DPDK; device: missed %llu, no mbuf "
                      "%llu, errors %llu/%llu)",
                      worker, name, (unsigned long long)st.rx_frames,
                      (unsigned long long)st.rx_bytes, (unsigned long long)st.tx_frames,
                      (unsigned long long)st.tx_zero_copy, (unsigned long long)st.tx_bytes,
                      (unsigned long long)st.tx_dropped, (unsigned long long)st.dev_imissed,
                      (unsigned long long)st.dev_rx_nombuf, (unsigned long long)st.dev_ierrors,
                      (unsigned long long)st.dev_oerrors);
        }
        mmtls_dpdk_close(pt->dpdk);
        pt->dpdk = NULL;
        return;
    }
    if (pt->io == MMTLSD_IO_XDP) {
        struct mmtls_xdp_stats st;
        if (pt->xdp != NULL && worker >= 0) {
            mmtls_xdp_get_stats(pt->xdp, &st);
            mmtls_log(MMTLS_LOG_INFO,
                      "worker %d %s: rx %llu frames %llu bytes (kernel drops %llu, fill ring "
                      "empty %llu), tx %llu frames (by descriptor %llu), tx ring full %llu, tx "
                      "errors %llu (AF_XDP %s)",
                      worker, name, (unsigned long long)st.rx_frames,
                      (unsigned long long)st.rx_bytes, (unsigned long long)st.rx_drops_kernel,
                      (unsigned long long)st.rx_fill_empty, (unsigned long long)st.tx_frames,
                      (unsigned long long)st.tx_fwd_frames, (unsigned long long)st.tx_ring_full,
                      (unsigned long long)st.tx_errors, st.zerocopy ? "zero-copy" : "copy");
            /* Frame accounting (io_xdp.c): free + fill + rx + tx = frames, no errors. */
            mmtls_log(st.frame_errors != 0 ? MMTLS_LOG_WARN : MMTLS_LOG_INFO,
                      "worker %d %s umem: frames %u free %u fill %u rx %u tx %u errors %llu (%s)",
                      worker, name, st.umem_frames, st.frames_free, st.frames_fill, st.frames_rx,
                      st.frames_tx, (unsigned long long)st.frame_errors,
                      st.shared_umem ? "shared" : "own");
        }
        mmtls_xdp_close(pt->xdp);
        pt->xdp = NULL;
        return;
    }
    if (pt->afp != NULL && worker >= 0) {
        struct mmtls_afp_stats st;
        mmtls_afp_get_stats(pt->afp, &st);
        mmtls_log(MMTLS_LOG_INFO,
                  "worker %d %s: rx %llu frames %llu bytes (kernel drops %llu, outgoing "
                  "skipped %llu), tx %llu frames, tx ring full %llu",
                  worker, name, (unsigned long long)st.rx_frames, (unsigned long long)st.rx_bytes,
                  (unsigned long long)st.rx_drops_kernel, (unsigned long long)st.rx_outgoing,
                  (unsigned long long)st.tx_frames, (unsigned long long)st.tx_ring_full);
    }
    mmtls_afp_close(pt->afp);
    pt->afp = NULL;
}

static void tx_frame(struct mmtlsd_bridge *b, int port, const uint8_t *data, size_t len,
                     const uint8_t *meta, size_t meta_len, bool built, bool by_ref)
{
    struct meta m = {0};
    int rc;

    if (meta != NULL && meta_len == sizeof(m))
        memcpy(&m, meta, sizeof(m));
    if (built)
        memset(m.vnet, 0, sizeof(m.vnet)); /* a frame we built: no offload, checksums done */
    rc = port_tx(&b->port[port], data, (uint32_t)len, b->vnet ? m.vnet : NULL,
                 (uint16_t)(m.tci[0] << 8 | m.tci[1]), m.vlan_valid != 0, by_ref);
    if (rc != 0)
        b->tx_full++;
}

/* The engine's FORWARD verdict for frame i of port p's burst: unchanged out of the other port.
 * AF_XDP: by descriptor (the worker's two ports share one UMEM), no copy; DPDK: the mbuf;
 * AF_PACKET: by reference from p's RX ring (the loop flushes the other port before giving the
 * ring back; the kernel copies once). */
static void port_forward(struct mmtlsd_bridge *b, int p, int i, const struct mmtls_afp_frame *f,
                         const struct meta *m)
{
    if (b->port[p].io == MMTLSD_IO_XDP) {
        struct mmtls_xdp *to = b->port[p ^ 1].xdp;
        int rc = mmtls_xdp_forward(b->port[p].xdp, to, &b->port[p].xf[i]);
        if (rc == MMTLS_E_LIMIT) {
            mmtls_xdp_tx_flush(to); /* kicks the kernel, reaps completions */
            rc = mmtls_xdp_forward(b->port[p].xdp, to, &b->port[p].xf[i]);
        }
        if (rc != 0)
            b->tx_full++;
        return;
    }
    if (b->port[p].io == MMTLSD_IO_DPDK) {
        /* the mbuf itself goes out (a worker's queues share one pool) */
        if (mmtls_dpdk_fwd(b->port[p].dpdk, i, b->port[p ^ 1].dpdk) != 0)
            b->tx_full++;
        return;
    }
    tx_frame(b, p ^ 1, f->data, f->len, (const uint8_t *)m, sizeof(*m), false, true);
}

static void engine_send(void *ud, int port, const uint8_t *frame, size_t len, const uint8_t *meta,
                        size_t meta_len, bool built)
{
    tx_frame(ud, port, frame, len, meta, meta_len, built, false); /* engine memory: copied */
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

int mmtlsd_dpdk_setup(struct mmtlsd_dpdk *d, const char *ifpair, int nworkers, const char *eal_args,
                      char *err, size_t err_cap)
{
    char names[2][64];
    const char *np[2] = {names[0], names[1]};
    struct mmtls_dpdk_setup_opts o = {.sz = sizeof(o),
                                      .names = np,
                                      .nnames = 2,
                                      .nqueues = (uint16_t)nworkers,
                                      .eal_args = eal_args,
                                      .prog = "mmtlsd"};
    int rc = split_ifpair(ifpair, names, err, err_cap);

    if (rc == 0)
        rc = mmtls_dpdk_setup(&o, d->port, err, err_cap);
    if (rc == 0 && nworkers > 1 && eal_args == NULL)
        mmtls_log(MMTLS_LOG_WARN,
                  "--io dpdk with %d workers on net_af_packet: DPDK 22.11's fanout has the "
                  "ROLLOVER flag, so an overloaded worker's frames go to another one and a flow "
                  "can be split (its session then has gaps); use one worker, or NICs with "
                  "symmetric RSS (--dpdk-args)",
                  nworkers);
    d->up = rc == 0;
    return rc;
}

void mmtlsd_dpdk_teardown(struct mmtlsd_dpdk *d)
{
    if (d->up)
        mmtls_dpdk_teardown();
    d->up = false;
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
    if (io->io == MMTLSD_IO_XDP) {
        /* One UMEM for the worker's two sockets: FORWARD verdicts go out by descriptor. */
        struct mmtls_xdp *xp[2];
        struct mmtls_xdp_opts o[2];
        for (int i = 0; i < 2; i++) {
            b->port[i].io = io->io;
            o[i] = (struct mmtls_xdp_opts){.sz = sizeof(o[i]),
                                           .ifname = b->names[i],
                                           .queue_id = (uint32_t)worker,
                                           .mode = io->xdp_mode,
                                           .prog = io->xdp != NULL ? io->xdp->prog[i] : NULL};
        }
        rc = mmtls_xdp_open_pair(xp, o, err, err_cap);
        if (rc != 0) {
            mmtlsd_bridge_close(b, -1);
            return rc;
        }
        b->port[0].xdp = xp[0];
        b->port[1].xdp = xp[1];
        *out = b;
        return 0;
    }
    for (int i = 0; i < 2 && io->io == MMTLSD_IO_DPDK; i++) {
        struct mmtls_dpdk_opts o = {.sz = sizeof(o),
                                    .port = io->dpdk->port[i],
                                    .queue = (uint16_t)worker,
                                    .name = b->names[i]};
        b->port[i].io = io->io;
        rc = mmtls_dpdk_open(&b->port[i].dpdk, &o, err, err_cap);
        if (rc != 0) {
            mmtlsd_bridge_close(b, -1);
            return rc;
        }
    }
    for (int i = 0; i < 2 && io->io != MMTLSD_IO_DPDK; i++) {
        struct mmtls_afp_opts o = {.sz = sizeof(o),
                                   .ifname = b->names[i],
                                   .vnet_hdr = io->vnet,
                                   .fanout_group = io->fanout_group,
                                   .frame_ring = io->frame_ring};
        b->port[i].io = io->io;
        rc = mmtls_afp_open(&b->port[i].afp, &o, err, err_cap);
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

/* --io dpdk, after each pass over the ports: keys every pass, the engine's clock every
 * DPDK_TICK_US; busy polling while frames came within DPDK_SPIN_US (sched_yield after an empty
 * pass), else a nap of up to DPDK_NAP_US that keys cut short. */
static int dpdk_idle(struct mmtlsd_bridge *b, struct mmtls_engine *e, int key_efd, bool busy,
                     uint64_t *last_busy, uint64_t *last_tick, char *err, size_t err_cap)
{
    uint64_t now = mmtls_mono_ns() / 1000u;
    struct pollfd pfd = {.fd = key_efd, .events = POLLIN};
    struct timespec nap = {.tv_sec = 0, .tv_nsec = (long)DPDK_NAP_US * 1000};

    if (busy)
        *last_busy = now;
    mmtls_engine_poll_keys(e);
    if (now - *last_tick >= DPDK_TICK_US) {
        *last_tick = now;
        mmtls_engine_tick(e, wall_us());
        port_flush(&b->port[0]);
        port_flush(&b->port[1]);
    }
    if (now - *last_busy < DPDK_SPIN_US) {
        if (!busy)
            sched_yield(); /* a shared core: let others run, back at once if none waits */
        return 0;
    }
    if (ppoll(&pfd, key_efd >= 0 ? 1 : 0, &nap, NULL) < 0 && errno != EINTR) {
        snprintf(err, err_cap, "ppoll: %s", strerror(errno));
        return MMTLS_E_IO;
    }
    if (key_efd >= 0 && (pfd.revents & POLLIN)) {
        eventfd_t v;
        if (eventfd_read(key_efd, &v) == 0 || errno == EAGAIN)
            mmtls_engine_poll_keys(e);
    }
    return 0;
}

int mmtlsd_bridge_run(struct mmtlsd_bridge *b, struct mmtls_engine *e, int key_efd,
                      volatile sig_atomic_t *stop, char *err, size_t err_cap)
{
    /* meta starts with a virtio_net_hdr: the kernel's (AF_PACKET with vnet headers) or zeroes
     * (AF_XDP: complete checksums); the engine verifies the checksums that are complete */
    struct mmtls_engine_tx tx = {.ud = b,
                                 .send = engine_send,
                                 .meta_vnet = b->vnet || b->port[0].io == MMTLSD_IO_XDP ||
                                              b->port[0].io == MMTLSD_IO_DPDK};
    struct mmtls_afp_frame f[BURST];
    bool dpdk = b->port[0].io == MMTLSD_IO_DPDK;
    uint64_t last_busy = 0, last_tick = 0;
    int rc = 0;

    if (dpdk && mmtls_dpdk_thread_register() != 0)
        mmtls_log(MMTLS_LOG_WARN, "dpdk: worker thread not registered (no mempool cache)");
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
                    port_forward(b, p, i, &f[i], &m);
            }
            if (n > 0) {
                if (b->port[p].io == MMTLSD_IO_AFPACKET)
                    port_flush(&b->port[p ^ 1]); /* frames sent by reference from p's ring */
                port_rx_done(&b->port[p]);
            }
            busy += n;
        }
        port_flush(&b->port[0]);
        port_flush(&b->port[1]);
        if (dpdk) {
            rc = dpdk_idle(b, e, key_efd, busy > 0, &last_busy, &last_tick, err, err_cap);
            if (rc != 0)
                break;
            continue;
        }
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
    if (dpdk)
        mmtls_dpdk_thread_unregister();
    return rc;
}
