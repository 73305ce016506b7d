/* mmtls-bridge — a bare AF_PACKET forwarder between two interfaces: every frame received on one
 * port is sent out of the other, unchanged, in bursts.  It is the floor the inline middlebox is
 * measured against (same packet I/O, no inspection) and the test bed of src/io/io_afpacket.c.
 *
 *   mmtls-bridge IF1 IF2 [--no-vnet] [--burst N] [--qdisc-bypass] [--fanout G] [--tx-ring]
 *                [--frame-ring]
 *   mmtls-bridge IF1 IF2 --io xdp [--xdp-mode auto|copy|zerocopy] [--xdp-prog own|libxdp]
 *                [--queue Q] [--burst N] [--xdp-frames N]
 *   mmtls-bridge IF1 IF2 --io dpdk [--dpdk-args STR] [--busy-poll] [--burst N]
 *
 * --no-vnet   no PACKET_VNET_HDR: GSO/GRO super-frames and partial checksums cannot be carried,
 *             so offloads (tso gso gro, and tx checksumming) must be off on the links.
 * --burst N   frames per receive burst (1..256, default 64); TX is flushed after each burst.
 * --tx-ring   send through the TX ring (a copy into the slot); the default sends each frame by
 *             reference from the RX ring (mmtls_afp_tx_ref: one sendmmsg per burst, the kernel
 *             copies once), as mmtlsd does.
 * --frame-ring TPACKET_V2 rings (frame slots, handed over one by one) instead of V3 blocks, as
 *             mmtlsd's fast path reads its divert port.
 * --io xdp    AF_XDP sockets on queue Q (default 0) of both interfaces (src/io/io_xdp.c): frames
 *             of one UMEM frame (MTU-size), no vnet header; --xdp-prog own (default) attaches
 *             io_xdp's redirect program, libxdp lets libxdp load its default program.  The two
 *             sockets share one UMEM: frames are forwarded by descriptor, never copied; at exit
 *             a second line per UMEM gives its frames by place (free + fill + rx + tx).
 *             --xdp-frames N: UMEM frames per port (power of two >= 64, default 4096).
 * --io dpdk   DPDK (src/io/io_dpdk.c): IF1 and IF2 become net_af_packet devices (no hugepages;
 *             offloads off on the links, as --no-vnet), one queue; frames are forwarded in the
 *             mbuf they arrived in.  --dpdk-args STR: the EAL arguments as given (real NICs),
 *             IF1 IF2 are then DPDK port names or ids.  DPDK polls: a full core while frames
 *             flow (yielding after an empty pass); after 1 ms without any it naps up to 1 ms at
 *             a time (--busy-poll: neither yields nor naps).
 * SIGINT / SIGTERM: exit 0 after one stats line per port on stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "io/io.h"

#define BRIDGE_MAX_BURST 256
#define BRIDGE_POLL_MS 100

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

struct fwd_stats {
    uint64_t dropped; /* TX ring still full after a flush */
};

/* Moves one burst from `in` to `out` (by reference unless ring).  Returns the number of frames
 * received. */
static int forward(struct mmtls_afp *in, struct mmtls_afp *out, int burst, bool ring,
                   struct fwd_stats *fs)
{
    struct mmtls_afp_frame f[BRIDGE_MAX_BURST];
    int n = mmtls_afp_rx_burst(in, f, burst);

    for (int i = 0; i < n; i++) {
        /* By reference: borrowed from in's RX ring, sent by the flush below, before rx_done. */
        int rc =
            ring ? mmtls_afp_tx(out, f[i].data, f[i].len, f[i].vnet, f[i].vlan_tci, f[i].vlan_valid)
                 : mmtls_afp_tx_ref(out, f[i].data, f[i].len, f[i].vnet, f[i].vlan_tci,
                                    f[i].vlan_valid);

        if (ring && rc == MMTLS_E_LIMIT) {
            /* Ring full: hand the queued slots to the kernel (sent synchronously, most slots
             * come back at once) and try once more; then drop, never block. */
            mmtls_afp_tx_flush(out);
            rc = mmtls_afp_tx(out, f[i].data, f[i].len, f[i].vnet, f[i].vlan_tci, f[i].vlan_valid);
        }
        if (rc != 0) {
            fs->dropped++;
        }
    }
    if (n > 0) {
        mmtls_afp_tx_flush(out);
        mmtls_afp_rx_done(in);
    }
    return n;
}

/* The same over AF_XDP ports: by descriptor (the two ports share one UMEM), no copy. */
static int forward_xdp(struct mmtls_xdp *in, struct mmtls_xdp *out, int burst, struct fwd_stats *fs)
{
    struct mmtls_xdp_frame f[BRIDGE_MAX_BURST];
    int n = mmtls_xdp_rx_burst(in, f, burst);

    for (int i = 0; i < n; i++) {
        int rc = mmtls_xdp_forward(in, out, &f[i]);

        if (rc == MMTLS_E_LIMIT) {
            mmtls_xdp_tx_flush(out); /* kicks the kernel and reaps completions */
            rc = mmtls_xdp_forward(in, out, &f[i]);
        }
        if (rc != 0) {
            fs->dropped++;
        }
    }
    if (n > 0) {
        mmtls_xdp_rx_done(in);
    }
    /* Also without new frames: copy mode sends 32 frames per kick, the rest waits for the
     * next one, and completions must be reaped. */
    mmtls_xdp_tx_flush(out);
    return n;
}

static void print_xdp_stats(const char *name, struct mmtls_xdp *p, const struct fwd_stats *fs)
{
    struct mmtls_xdp_stats st;

    mmtls_xdp_get_stats(p, &st);
    fprintf(stderr,
            "mmtls-bridge %s: rx %" PRIu64 " frames %" PRIu64 " bytes, kernel drops %" PRIu64
            ", fill ring empty %" PRIu64 ", tx %" PRIu64 " frames %" PRIu64
            " bytes, tx errors %" PRIu64 ", tx ring full %" PRIu64 ", tx kicks %" PRIu64
            ", dropped %" PRIu64 ", forwarded by descriptor %" PRIu64 " (%s)\n",
            name, st.rx_frames, st.rx_bytes, st.rx_drops_kernel, st.rx_fill_empty, st.tx_frames,
            st.tx_bytes, st.tx_errors, st.tx_ring_full, st.tx_kicks, fs->dropped, st.tx_fwd_frames,
            st.zerocopy ? "zero-copy" : "copy");
}

/* The UMEM's frames by place (free + fill + rx + tx = frames); "frames" once per UMEM. */
static void print_umem(const char *name, struct mmtls_xdp *p)
{
    struct mmtls_xdp_stats st;

    mmtls_xdp_get_stats(p, &st);
    fprintf(stderr,
            "mmtls-bridge %s umem: frames %u free %u fill %u rx %u tx %u errors %" PRIu64 " (%s)\n",
            name, st.umem_frames, st.frames_free, st.frames_fill, st.frames_rx, st.frames_tx,
            st.frame_errors, st.shared_umem ? "shared" : "own");
}

/* At exit: lets the kernel send what is queued (bounded) so that every frame is back. */
static void drain_xdp(struct mmtls_xdp *port[2])
{
    for (int k = 0; k < 200; k++) {
        struct mmtls_xdp_stats st[2];

        mmtls_xdp_tx_flush(port[0]);
        mmtls_xdp_tx_flush(port[1]);
        mmtls_xdp_get_stats(port[0], &st[0]);
        mmtls_xdp_get_stats(port[1], &st[1]);
        if (st[0].frames_tx == 0 && st[1].frames_tx == 0) {
            break;
        }
        poll(NULL, 0, 1);
    }
}

/* --io xdp: the AF_XDP ports and the loop.  Returns the exit status. */
static int run_xdp(const char *ifn[2], struct mmtls_xdp_opts *xo, bool own_prog, int burst)
{
    struct mmtls_xdp_prog *prog[2] = {NULL, NULL};
    struct mmtls_xdp *port[2] = {NULL, NULL};
    struct fwd_stats fs[2] = {{0}, {0}};
    struct mmtls_xdp_stats st = {0};
    char err[256];
    int rc = 1;

    struct mmtls_xdp_opts o[2] = {*xo, *xo};

    for (int i = 0; i < 2; i++) {
        if (own_prog && mmtls_xdp_prog_attach(&prog[i], ifn[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "mmtls-bridge: %s\n", err);
            goto out;
        }
        o[i].ifname = ifn[i];
        o[i].prog = prog[i];
    }
    /* One UMEM for both ports: every frame is forwarded by descriptor. */
    if (mmtls_xdp_open_pair(port, o, err, sizeof(err)) != 0) {
        fprintf(stderr, "mmtls-bridge: %s\n", err);
        goto out;
    }
    mmtls_xdp_get_stats(port[0], &st);
    fprintf(stderr,
            "mmtls-bridge: %s <-> %s (AF_XDP queue %u, %s, %s program, burst %d, %s UMEM)\n",
            ifn[0], ifn[1], xo->queue_id, st.zerocopy ? "zero-copy" : "copy",
            own_prog ? "own" : "libxdp", burst, st.shared_umem ? "shared" : "one per port");
    while (!stop) {
        struct pollfd pfd[2] = {
            {.fd = mmtls_xdp_fd(port[0]), .events = POLLIN},
            {.fd = mmtls_xdp_fd(port[1]), .events = POLLIN},
        };
        int got = forward_xdp(port[0], port[1], burst, &fs[1]);

        got += forward_xdp(port[1], port[0], burst, &fs[0]);
        /* A short timeout: frames may still wait in a TX ring for their kick. */
        if (got == 0 && poll(pfd, 2, 1) < 0 && errno != EINTR) {
            perror("mmtls-bridge: poll");
            goto out;
        }
    }
    rc = 0;
    drain_xdp(port);
out:
    for (int i = 0; i < 2; i++) {
        if (port[i] != NULL) {
            print_xdp_stats(ifn[i], port[i], &fs[i]);
            if (i == 0 || !st.shared_umem) {
                print_umem(ifn[i], port[i]);
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        mmtls_xdp_close(port[i]);
        mmtls_xdp_prog_detach(prog[i]);
    }
    return rc;
}

/* The same over DPDK ports: the received mbufs themselves go out. */
static int forward_dpdk(struct mmtls_dpdk *in, struct mmtls_dpdk *out, int burst,
                        struct fwd_stats *fs)
{
    struct mmtls_dpdk_frame f[BRIDGE_MAX_BURST];
    int n = mmtls_dpdk_rx_burst(in, f, burst);

    for (int i = 0; i < n; i++) {
        if (mmtls_dpdk_fwd(in, i, out) != 0) {
            fs->dropped++;
        }
    }
    if (n > 0) {
        mmtls_dpdk_rx_done(in);
        mmtls_dpdk_tx_flush(out);
    }
    return n;
}

/* --io dpdk: the devices, the ports and the loop.  Returns the exit status. */
static int run_dpdk(const char *ifn[2], const char *eal_args, int burst, bool busy_poll)
{
    struct mmtls_dpdk_setup_opts so = {.sz = sizeof(so),
                                       .names = ifn,
                                       .nnames = 2,
                                       .nqueues = 1,
                                       .eal_args = eal_args,
                                       .prog = "mmtls-bridge"};
    struct mmtls_dpdk *port[2] = {NULL, NULL};
    struct fwd_stats fs[2] = {{0}, {0}};
    uint64_t last_busy = 0;
    uint16_t pid[2];
    char err[512];
    int rc = 1;

    if (mmtls_dpdk_setup(&so, pid, err, sizeof(err)) != 0) {
        fprintf(stderr, "mmtls-bridge: %s\n", err);
        return 1;
    }
    for (int i = 0; i < 2; i++) {
        struct mmtls_dpdk_opts o = {.sz = sizeof(o), .port = pid[i], .queue = 0, .name = ifn[i]};
        if (mmtls_dpdk_open(&port[i], &o, err, sizeof(err)) != 0) {
            fprintf(stderr, "mmtls-bridge: %s\n", err);
            goto out;
        }
    }
    fprintf(stderr, "mmtls-bridge: %s <-> %s (DPDK ports %u and %u, %s, burst %d)\n", ifn[0],
            ifn[1], (unsigned)pid[0], (unsigned)pid[1], busy_poll ? "busy poll" : "adaptive poll",
            burst);
    while (!stop) {
        int got = forward_dpdk(port[0], port[1], burst, &fs[1]);
        uint64_t now = mmtls_mono_ns() / 1000u;

        got += forward_dpdk(port[1], port[0], burst, &fs[0]);
        if (got > 0) {
            last_busy = now;
        } else if (!busy_poll && now - last_busy >= 1000u) {
            struct timespec nap = {.tv_sec = 0, .tv_nsec = 1000000};
            nanosleep(&nap, NULL);
        } else if (!busy_poll) {
            sched_yield(); /* a shared core: let others run, back at once if none waits */
        }
    }
    rc = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (port[i] != NULL) {
            struct mmtls_dpdk_stats st;
            mmtls_dpdk_get_stats(port[i], &st);
            fprintf(stderr,
                    "mmtls-bridge %s: rx %" PRIu64 " frames %" PRIu64 " bytes, tx %" PRIu64
                    " frames %" PRIu64 " bytes (%" PRIu64 " without copy), tx dropped %" PRIu64
                    ", device missed %" PRIu64 " no mbuf %" PRIu64 ", dropped %" PRIu64 "\n",
                    ifn[i], st.rx_frames, st.rx_bytes, st.tx_frames, st.tx_bytes, st.tx_zero_copy,
                    st.tx_dropped, st.dev_imissed, st.dev_rx_nombuf, fs[i].dropped);
        }
        mmtls_dpdk_close(port[i]);
    }
    mmtls_dpdk_teardown();
    return rc;
}

static void print_stats(const char *name, struct mmtls_afp *p, const struct fwd_stats *fs)
{
    struct mmtls_afp_stats st;

    mmtls_afp_get_stats(p, &st);
    fprintf(stderr,
            "mmtls-bridge %s: rx %" PRIu64 " frames %" PRIu64 " bytes, kernel drops %" PRIu64
            ", tx %" PRIu64 " frames %" PRIu64 " bytes, tx errors %" PRIu64
            ", tx ring full %" PRIu64 ", dropped %" PRIu64 "\n",
            name, st.rx_frames, st.rx_bytes, st.rx_drops_kernel, st.tx_frames, st.tx_bytes,
            st.tx_errors, st.tx_ring_full, fs->dropped);
}

static void usage(void)
{
    fprintf(stderr, "usage: mmtls-bridge IF1 IF2 [--no-vnet] [--burst N] [--qdisc-bypass] "
                    "[--fanout G] [--tx-ring] [--frame-ring]\n"
                    "       mmtls-bridge IF1 IF2 --io xdp [--xdp-mode auto|copy|zerocopy] "
                    "[--xdp-prog own|libxdp] [--queue Q] [--burst N] [--xdp-frames N]\n"
                    "       mmtls-bridge IF1 IF2 --io dpdk [--dpdk-args STR] [--busy-poll] "
                    "[--burst N]\n");
}

int main(int argc, char **argv)
{
    struct mmtls_afp_opts o = {.sz = sizeof(o), .vnet_hdr = true};
    struct mmtls_xdp_opts xo = {.sz = sizeof(xo)};
    bool xdp = false, own_prog = true, dpdk = false, busy_poll = false;
    const char *dpdk_args = NULL;
    struct mmtls_afp *port[2] = {NULL, NULL};
    struct fwd_stats fs[2] = {{0}, {0}}; /* fs[i]: frames dropped on the way out of port i */
    const char *ifn[2] = {NULL, NULL};
    struct sigaction sa = {0};
    char err[256];
    int burst = 64, nif = 0, rc = 1;
    bool bypass = false, tx_ring = false;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-vnet") == 0) {
            o.vnet_hdr = false;
        } else if (strcmp(argv[i], "--qdisc-bypass") == 0) {
            bypass = true;
        } else if (strcmp(argv[i], "--tx-ring") == 0) {
            tx_ring = true;
        } else if (strcmp(argv[i], "--frame-ring") == 0) {
            o.frame_ring = true;
        } else if (strcmp(argv[i], "--burst") == 0 && i + 1 < argc) {
            burst = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--fanout") == 0 && i + 1 < argc) {
            o.fanout_group = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--io") == 0 && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "xdp") == 0) {
                xdp = true;
            } else if (strcmp(argv[i], "dpdk") == 0) {
                dpdk = true;
            } else if (strcmp(argv[i], "afpacket") != 0) {
                usage();
                return 2;
            }
        } else if (strcmp(argv[i], "--xdp-mode") == 0 && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "copy") == 0) {
                xo.mode = MMTLS_XDP_MODE_COPY;
            } else if (strcmp(argv[i], "zerocopy") == 0) {
                xo.mode = MMTLS_XDP_MODE_ZEROCOPY;
            } else if (strcmp(argv[i], "auto") != 0) {
                usage();
                return 2;
            }
        } else if (strcmp(argv[i], "--xdp-prog") == 0 && i + 1 < argc) {
            i++;
            own_prog = strcmp(argv[i], "libxdp") != 0;
        } else if (strcmp(argv[i], "--xdp-frames") == 0 && i + 1 < argc) {
            xo.frame_nr = (uint32_t)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--dpdk-args") == 0 && i + 1 < argc) {
            dpdk_args = argv[++i];
        } else if (strcmp(argv[i], "--busy-poll") == 0) {
            busy_poll = true;
        } else if (strcmp(argv[i], "--queue") == 0 && i + 1 < argc) {
            xo.queue_id = (uint32_t)atoi(argv[++i]);
        } else if (argv[i][0] != '-' && nif < 2) {
            ifn[nif++] = argv[i];
        } else {
            usage();
            return 2;
        }
    }
    if (nif != 2 || burst < 1 || burst > BRIDGE_MAX_BURST) {
        usage();
        return 2;
    }
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (xdp) {
        return run_xdp(ifn, &xo, own_prog, burst);
    }
    if (dpdk) {
        return run_dpdk(ifn, dpdk_args, burst, busy_poll);
    }
    for (int i = 0; i < 2; i++) {
        o.ifname = ifn[i];
        if (mmtls_afp_open(&port[i], &o, err, sizeof(err)) != 0) {
            fprintf(stderr, "mmtls-bridge: %s\n", err);
            goto out;
        }
        if (bypass) {
            int one = 1;

            /* Straight to the driver, skipping the qdisc layer (packet_direct_xmit), from
             * both sending sockets (the ring's and the one for sends by reference). */
            if (setsockopt(mmtls_afp_fd(port[i]), SOL_PACKET, PACKET_QDISC_BYPASS, &one,
                           sizeof(one)) != 0 ||
                setsockopt(mmtls_afp_tx_fd(port[i]), SOL_PACKET, PACKET_QDISC_BYPASS, &one,
                           sizeof(one)) != 0) {
                fprintf(stderr, "mmtls-bridge: %s: PACKET_QDISC_BYPASS: %s\n", ifn[i],
                        strerror(errno));
                goto out;
            }
        }
    }
    fprintf(stderr, "mmtls-bridge: %s <-> %s (%s, burst %d, tx %s)\n", ifn[0], ifn[1],
            o.vnet_hdr ? "vnet_hdr" : "no vnet_hdr", burst, tx_ring ? "ring" : "by reference");

    while (!stop) {
        struct pollfd pfd[2] = {
            {.fd = mmtls_afp_fd(port[0]), .events = POLLIN},
            {.fd = mmtls_afp_fd(port[1]), .events = POLLIN},
        };
        int got = forward(port[0], port[1], burst, tx_ring, &fs[1]);

        got += forward(port[1], port[0], burst, tx_ring, &fs[0]);
        if (got == 0 && poll(pfd, 2, BRIDGE_POLL_MS) < 0 && errno != EINTR) {
            perror("mmtls-bridge: poll");
            goto out;
        }
    }
    rc = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (port[i] != NULL) {
            print_stats(ifn[i], port[i], &fs[i]);
        }
        mmtls_afp_close(port[i]);
    }
    return rc;
}
