/* mmtlsd inline mode: a bump in the wire between two interfaces.  Every frame from one port
 * goes out of the other unless the engine holds or drops it (DESIGN §3); the engine's TX sink
 * sends released frames and RSTs.  Each worker owns one socket on each interface (a
 * PACKET_FANOUT_HASH group per interface when there are several workers: the kernel's hash is
 * symmetric, so both directions of a flow reach the same worker) and runs a run-to-completion
 * loop over its two ports: burst in, process, forward, flush (as DPDK's l3fwd does). */
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

struct mmtlsd_bridge {
    struct mmtls_afp *port[2];
    char names[2][64];
    bool vnet;
    uint64_t tx_full;
};

static void tx_frame(struct mmtlsd_bridge *b, int port, const uint8_t *data, size_t len,
                     const uint8_t *meta, size_t meta_len, bool built)
{
    struct meta m = {0};
    int rc;

    if (meta != NULL && meta_len == sizeof(m))
        memcpy(&m, meta, sizeof(m));
    if (built)
        memset(m.vnet, 0, sizeof(m.vnet)); /* a frame we built: no offload, checksums done */
    rc = mmtls_afp_tx(b->port[port], data, (uint32_t)len, b->vnet ? m.vnet : NULL,
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

int mmtlsd_bridge_open(struct mmtlsd_bridge **out, const char *ifpair, bool vnet, int fanout_group,
                       char *err, size_t err_cap)
{
    struct mmtlsd_bridge *b;
    const char *colon = strchr(ifpair, ':');
    int rc;

    if (colon == NULL || colon == ifpair || colon[1] == '\0' ||
        (size_t)(colon - ifpair) >= sizeof(b->names[0]) ||
        strlen(colon + 1) >= sizeof(b->names[1])) {
        snprintf(err, err_cap, "-i wants two interfaces: IF1:IF2 (got '%s')", ifpair);
        return MMTLS_E_INVAL;
    }
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return MMTLS_E_NOMEM;
    b->vnet = vnet;
    snprintf(b->names[0], sizeof(b->names[0]), "%.*s", (int)(colon - ifpair), ifpair);
    snprintf(b->names[1], sizeof(b->names[1]), "%s", colon + 1);
    for (int i = 0; i < 2; i++) {
        struct mmtls_afp_opts o = {
            .sz = sizeof(o), .ifname = b->names[i], .vnet_hdr = vnet, .fanout_group = fanout_group};
        rc = mmtls_afp_open(&b->port[i], &o, err, err_cap);
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
    for (int i = 0; i < 2 && worker >= 0; i++) {
        struct mmtls_afp_stats st;
        mmtls_afp_get_stats(b->port[i], &st);
        mmtls_log(MMTLS_LOG_INFO,
                  "worker %d %s: rx %llu frames %llu bytes (kernel drops %llu), tx %llu frames, "
                  "tx ring full %llu",
                  worker, b->names[i], (unsigned long long)st.rx_frames,
                  (unsigned long long)st.rx_bytes, (unsigned long long)st.rx_drops_kernel,
                  (unsigned long long)st.tx_frames, (unsigned long long)st.tx_ring_full);
    }
    mmtls_afp_close(b->port[0]);
    mmtls_afp_close(b->port[1]);
    free(b);
}

int mmtlsd_bridge_run(struct mmtlsd_bridge *b, struct mmtls_engine *e, int key_efd,
                      volatile sig_atomic_t *stop, char *err, size_t err_cap)
{
    struct mmtls_engine_tx tx = {.ud = b, .send = engine_send};
    struct mmtls_afp_frame f[BURST];
    int rc = 0;

    mmtls_engine_set_tx(e, &tx);
    while (!*stop) {
        struct pollfd pfd[3] = {{.fd = mmtls_afp_fd(b->port[0]), .events = POLLIN},
                                {.fd = mmtls_afp_fd(b->port[1]), .events = POLLIN},
                                {.fd = key_efd, .events = POLLIN}};
        int busy = 0;

        for (int p = 0; p < 2; p++) {
            int n = mmtls_afp_rx_burst(b->port[p], f, BURST);
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
                mmtls_afp_rx_done(b->port[p]);
            busy += n;
        }
        mmtls_afp_tx_flush(b->port[0]);
        mmtls_afp_tx_flush(b->port[1]);
        if (busy == 0) {
            /* Idle: let keys, key waits and flow timeouts progress on the wall clock. */
            mmtls_engine_poll_keys(e);
            mmtls_engine_tick(e, wall_us());
            mmtls_afp_tx_flush(b->port[0]);
            mmtls_afp_tx_flush(b->port[1]);
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
    mmtls_afp_tx_flush(b->port[0]);
    mmtls_afp_tx_flush(b->port[1]);
    return rc;
}
