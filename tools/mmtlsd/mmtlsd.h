/* mmtlsd internals shared by its source files. */
#ifndef MMTLSD_H
#define MMTLSD_H

#include <signal.h>
#include <stdbool.h>

#include "apps/apps.h"
#include "engine/engine.h"
#include "io/io.h"
#include "keys/keys.h"

/* Inline mode's packet I/O back end (--io). */
enum mmtlsd_io {
    MMTLSD_IO_AFPACKET = 0,
    MMTLSD_IO_XDP,
    MMTLSD_IO_FAST, /* kernel fast path (mmtlsd_fast.c, docs/FASTPATH.md) */
    MMTLSD_IO_DPDK, /* DPDK ethdevs (src/io/io_dpdk.c): worker k polls queue k */
};

/* --io xdp: the redirect programs of the two interfaces, shared by the workers. */
struct mmtlsd_xdp {
    struct mmtls_xdp_prog *prog[2]; /* owned */
};

/* --io dpdk: the two devices, started for every worker (mmtls_dpdk_setup). */
struct mmtlsd_dpdk {
    uint16_t port[2];
    bool up;
};

struct mmtlsd_io_opts {
    enum mmtlsd_io io;
    bool vnet;        /* AF_PACKET: PACKET_VNET_HDR */
    bool frame_ring;  /* AF_PACKET: TPACKET_V2 frame rings (else V3 blocks) */
    int fanout_group; /* AF_PACKET: 0 for one worker, else 1..255 */
    enum mmtls_xdp_mode xdp_mode;
    const struct mmtlsd_xdp *xdp;   /* AF_XDP: borrowed; NULL: libxdp's default program */
    const struct mmtlsd_dpdk *dpdk; /* DPDK: borrowed */
};

/* --io xdp: checks that both interfaces of ifpair have exactly nworkers RX queues and attaches
 * the redirect programs.  0, or a negative code with a one-line message in err. */
MMTLS_MUST_USE int mmtlsd_xdp_setup(struct mmtlsd_xdp *x, const char *ifpair, int nworkers,
                                    char *err, size_t err_cap);
void mmtlsd_xdp_teardown(struct mmtlsd_xdp *x);
/* --io dpdk: EAL and devices for nworkers workers over the interfaces of ifpair (net_af_packet
 * vdevs), or with eal_args (non-NULL: the EAL arguments as given) over the DPDK ports named in
 * ifpair (ethdev names or port ids, e.g. "0:1").  0, or a negative code with a message. */
MMTLS_MUST_USE int mmtlsd_dpdk_setup(struct mmtlsd_dpdk *d, const char *ifpair, int nworkers,
                                     const char *eal_args, char *err, size_t err_cap);
/* After the bridges are closed. */
void mmtlsd_dpdk_teardown(struct mmtlsd_dpdk *d);

/* Inline mode: one worker's two ports on the interfaces of ifpair ("IF1:IF2").  AF_PACKET:
 * fanout_group 0 for a single worker; else the same group (1..255) for every worker, whose
 * ports must be opened one worker after the other (the kernel numbers fanout members in join
 * order, and a flow's worker is its hash modulo that order on both interfaces).  AF_XDP:
 * worker k opens queue k of each interface. */
struct mmtlsd_bridge;

MMTLS_MUST_USE int mmtlsd_bridge_open(struct mmtlsd_bridge **out, const char *ifpair,
                                      const struct mmtlsd_io_opts *io, int worker, char *err,
                                      size_t err_cap);
/* Bridges through the engine until *stop is set.  key_efd (or -1) is an eventfd the key server
 * thread signals after each delivery to this worker.  Returns 0, or a negative code with a
 * one-line message in err. */
int mmtlsd_bridge_run(struct mmtlsd_bridge *b, struct mmtls_engine *e, int key_efd,
                      volatile sig_atomic_t *stop, char *err, size_t err_cap);
/* Logs the ports' counters (worker >= 0) and closes them; NULL is a no-op. */
void mmtlsd_bridge_close(struct mmtlsd_bridge *b, int worker);

/* --io fast (mmtlsd_fast.c).  mmtlsd_fast_new before the engine is made (its options get the
 * on_flow_state hook from mmtlsd_fast_engine_opts); mmtlsd_fast_open attaches the programs;
 * mmtlsd_fast_run is the worker loop; mmtlsd_fast_close logs the counters, detaches, frees. */
struct mmtlsd_fast;
struct mmtlsd_fast *mmtlsd_fast_new(void);
void mmtlsd_fast_engine_opts(struct mmtlsd_fast *fp, struct mmtls_engine_opts *eo);
/* Worker 0 (owner NULL) loads the programs and makes the divert interface; the others (owner:
 * worker 0's) share them.  fanout_group != 0 when there are several workers.  rps_cpus: the CPUs
 * for the ports' RPS (bit k: CPU k; 0: all), --fast-rps. */
MMTLS_MUST_USE int mmtlsd_fast_open(struct mmtlsd_fast *fp, const char *ifpair,
                                    struct mmtlsd_fast *owner, int fanout_group, uint32_t rps_cpus,
                                    char *err, size_t err_cap);
int mmtlsd_fast_run(struct mmtlsd_fast *fp, struct mmtls_engine *e, int key_efd,
                    volatile sig_atomic_t *stop, char *err, size_t err_cap);
void mmtlsd_fast_close(struct mmtlsd_fast *fp);
void mmtlsd_fast_flow_state(void *ud, const struct mmtls_flow_key *key, const uint8_t mode[2],
                            const uint32_t gen[2], const uint32_t budget[2],
                            const struct mmtls_engine_fast_sync *sync, bool ended);

#endif
