/* io_xdp — inline packet port over AF_XDP: one XDP socket on one queue of one interface, with
 * its own UMEM, through libxdp's xsk API (<xdp/xsk.h>; libbpf 1.x moved it to libxdp).
 *
 * Kernel documentation: Documentation/networking/af_xdp.rst.  Four single-producer
 * single-consumer rings share the UMEM (an array of equal frames in our memory):
 *   fill        we give the kernel empty frames to receive into;
 *   rx          the kernel hands us received frames (address, length);
 *   tx          we hand the kernel frames to send;
 *   completion  the kernel hands back the frames it has sent.
 * The ring helpers of xsk.h order the accesses (libbpf_smp_load_acquire of the other side's
 * index before reading entries, libbpf_smp_store_release of our index after writing them), as
 * the kernel's xsk_queue.h describes; this file never touches the ring indices directly.
 *
 * UMEM split: frames [0, nrx) receive, frames [nrx, 2 nrx) send.  RX frames are always either
 * in the fill ring, in the kernel, in the rx ring or lent to the caller for one burst, so the
 * fill ring (of nrx entries) always has room for the frames a burst gives back.  TX frames are
 * on a free stack, in the tx ring, in the kernel or in the completion ring; a frame leaves the
 * stack only together with a tx descriptor, so the tx ring (nrx entries) never overflows.
 *
 * Modes: XDP_ZEROCOPY lets the driver DMA into the UMEM; XDP_COPY (veth, generic XDP) copies
 * each frame between the skb/xdp_buff and the UMEM; neither flag lets the kernel try zero-copy
 * and fall back to copy.  XDP_USE_NEED_WAKEUP: the kernel says through a ring flag when it
 * needs a syscall to make progress (a sendto() for TX, a recvfrom() for an empty fill ring),
 * so the fast path makes none otherwise.
 *
 * Frames are single UMEM frames (no XDP_USE_SG): a frame longer than frame_size - 256
 * (XDP_PACKET_HEADROOM) is refused by the kernel (xsk_rcv: -ENOSPC) and counted in
 * XDP_STATISTICS rx_dropped; it is never truncated.  There is no virtio_net_hdr: the frame is
 * what the XDP program saw, with complete checksums.
 *
 * The redirecting program is either libxdp's default one (loaded with the first socket of the
 * interface) or ours (mmtls_xdp_prog_attach): six instructions, loaded from this file without
 * bpffs or an object file, attached through a bpf_link so that it goes away with the process.
 */
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io/io.h"

#ifdef MMTLS_HAVE_XDP

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <xdp/xsk.h>

#define XDP_DEF_FRAME_SIZE 4096u
#define XDP_DEF_FRAME_NR 4096u
#define XDP_MIN_FRAME_NR 64u
#define XDP_MAX_FRAME_NR (1u << 20)
/* Bound on wake-ups per flush: copy mode sends at most 32 frames per sendto() (TX_BATCH_SIZE
 * in net/xdp/xsk.c) and answers EAGAIN when more are queued. */
#define XDP_MAX_KICKS 64u

struct mmtls_xdp_prog {
    int ifindex;
    int map_fd;  /* owned: XSKMAP, key = RX queue */
    int prog_fd; /* owned */
    int link_fd; /* owned: the attachment; closing it detaches the program */
    bool native;
};

struct mmtls_xdp {
    char ifname[IF_NAMESIZE];
    uint32_t queue_id;
    uint8_t *area; /* owned: the UMEM, mmap'd */
    size_t area_len;
    uint32_t frame_size, nrx; /* nrx frames for RX, as many for TX */
    struct xsk_umem *umem;    /* owned */
    struct xsk_socket *xsk;   /* owned */
    struct xsk_ring_prod fill, tx;
    struct xsk_ring_cons comp, rx;
    int fd;

    /* RX: the burst lent to the caller */
    uint32_t rx_idx, rx_n;

    /* TX */
    uint64_t *tx_free; /* owned: stack of free TX frame addresses */
    uint32_t tx_nfree;
    uint32_t tx_pending; /* descriptors reserved and written, not yet submitted */

    struct mmtls_xdp_stats st;
};

/* ---- the redirect program ------------------------------------------------------------------ */

/* r2 = ctx->rx_queue_index; r1 = &xsks_map; r3 = XDP_PASS;
 * return bpf_redirect_map(r1, r2, r3): the low bits of the flags are the action when the map
 * has no socket at that index (Linux 5.3), here XDP_PASS as in libxdp's default program. */
static int prog_load(int map_fd)
{
    struct bpf_insn insn[6];

    memset(insn, 0, sizeof(insn));
    insn[0].code = BPF_LDX | BPF_MEM | BPF_W;
    insn[0].dst_reg = BPF_REG_2;
    insn[0].src_reg = BPF_REG_1;
    insn[0].off = (int16_t)offsetof(struct xdp_md, rx_queue_index);
    insn[1].code = BPF_LD | BPF_DW | BPF_IMM; /* 16-byte load of a map reference */
    insn[1].dst_reg = BPF_REG_1;
    insn[1].src_reg = BPF_PSEUDO_MAP_FD;
    insn[1].imm = map_fd;
    /* insn[2]: the upper half of the 64-bit immediate, zero */
    insn[3].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insn[3].dst_reg = BPF_REG_3;
    insn[3].imm = XDP_PASS;
    insn[4].code = BPF_JMP | BPF_CALL;
    insn[4].imm = BPF_FUNC_redirect_map;
    insn[5].code = BPF_JMP | BPF_EXIT;
    return bpf_prog_load(BPF_PROG_TYPE_XDP, "mmtls_xsk", "MIT", insn, 6, NULL);
}

int mmtls_xdp_queue_count(const char *ifname, uint32_t *n, char *err, size_t err_cap)
{
    struct ethtool_channels ch = {.cmd = ETHTOOL_GCHANNELS};
    struct ifreq ifr = {0};
    int fd;

    *n = 1;
    if (strlen(ifname) >= sizeof(ifr.ifr_name)) {
        mmtls_errf(err, err_cap, "%s: interface name too long", ifname);
        return MMTLS_E_INVAL;
    }
    memcpy(ifr.ifr_name, ifname, strlen(ifname) + 1);
    ifr.ifr_data = (void *)&ch;
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        mmtls_errf(err, err_cap, "%s: socket: %s", ifname, strerror(errno));
        return MMTLS_E_IO;
    }
    if (ioctl(fd, SIOCETHTOOL, &ifr) == 0 && ch.rx_count + ch.combined_count > 0) {
        *n = ch.rx_count + ch.combined_count;
    }
    close(fd);
    return 0;
}

int mmtls_xdp_prog_attach(struct mmtls_xdp_prog **out, const char *ifname, char *err,
                          size_t err_cap)
{
    struct mmtls_xdp_prog *g;
    uint32_t nq;
    int e;

    *out = NULL;
    g = calloc(1, sizeof(*g));
    if (g == NULL) {
        mmtls_errf(err, err_cap, "%s: out of memory", ifname);
        return MMTLS_E_NOMEM;
    }
    g->map_fd = g->prog_fd = g->link_fd = -1;
    g->ifindex = (int)if_nametoindex(ifname);
    if (g->ifindex == 0) {
        mmtls_errf(err, err_cap, "%s: no such interface: %s", ifname, strerror(errno));
        e = MMTLS_E_NOTFOUND;
        goto out;
    }
    e = mmtls_xdp_queue_count(ifname, &nq, err, err_cap);
    if (e != 0) {
        goto out;
    }
    g->map_fd = bpf_map_create(BPF_MAP_TYPE_XSKMAP, "mmtls_xsks", sizeof(uint32_t),
                               sizeof(uint32_t), nq, NULL);
    if (g->map_fd < 0) {
        mmtls_errf(err, err_cap, "%s: cannot create the XSKMAP: %s", ifname, strerror(-g->map_fd));
        e = MMTLS_E_UNSUPPORTED;
        goto out;
    }
    g->prog_fd = prog_load(g->map_fd);
    if (g->prog_fd < 0) {
        mmtls_errf(err, err_cap, "%s: cannot load the XDP program: %s", ifname,
                   strerror(-g->prog_fd));
        e = MMTLS_E_UNSUPPORTED;
        goto out;
    }
    /* Native (driver) mode first; generic (skb) mode when the driver has no XDP.  A link is
     * refused (EBUSY) while another program is attached: never replace someone else's. */
    {
        LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = XDP_FLAGS_DRV_MODE);

        g->link_fd = bpf_link_create(g->prog_fd, g->ifindex, BPF_XDP, &lo);
        g->native = g->link_fd >= 0;
        if (g->link_fd < 0 && g->link_fd != -EBUSY && g->link_fd != -EEXIST) {
            lo.flags = XDP_FLAGS_SKB_MODE;
            g->link_fd = bpf_link_create(g->prog_fd, g->ifindex, BPF_XDP, &lo);
        }
    }
    if (g->link_fd < 0) {
        mmtls_errf(err, err_cap, "%s: cannot attach the XDP program: %s", ifname,
                   strerror(-g->link_fd));
        e = g->link_fd == -EBUSY || g->link_fd == -EEXIST ? MMTLS_E_CONFLICT : MMTLS_E_IO;
        goto out;
    }
    *out = g;
    return 0;
out:
    mmtls_xdp_prog_detach(g);
    return e;
}

void mmtls_xdp_prog_detach(struct mmtls_xdp_prog *g)
{
    if (g == NULL) {
        return;
    }
    if (g->link_fd >= 0) {
        close(g->link_fd);
    }
    if (g->prog_fd >= 0) {
        close(g->prog_fd);
    }
    if (g->map_fd >= 0) {
        close(g->map_fd);
    }
    free(g);
}

/* ---- the port ------------------------------------------------------------------------------ */

static bool pow2(uint32_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* Gives every RX frame to the kernel: the fill ring has exactly nrx entries. */
static int fill_all(struct mmtls_xdp *p)
{
    uint32_t idx;

    if (xsk_ring_prod__reserve(&p->fill, p->nrx, &idx) != p->nrx) {
        return MMTLS_E_INTERNAL;
    }
    for (uint32_t i = 0; i < p->nrx; i++) {
        *xsk_ring_prod__fill_addr(&p->fill, idx + i) = (uint64_t)i * p->frame_size;
    }
    xsk_ring_prod__submit(&p->fill, p->nrx);
    return 0;
}

int mmtls_xdp_open(struct mmtls_xdp **out, const struct mmtls_xdp_opts *o, char *err,
                   size_t err_cap)
{
    struct xsk_umem_config uc = {0};
    struct xsk_socket_config sc = {0};
    struct xdp_options xo = {0};
    socklen_t xol = sizeof(xo);
    struct mmtls_xdp *p;
    uint32_t frame_nr;
    const char *ifn;
    int e, rc;

    *out = NULL;
    if (o == NULL || o->sz < sizeof(struct mmtls_xdp_opts) || o->ifname == NULL ||
        o->mode > MMTLS_XDP_MODE_ZEROCOPY) {
        mmtls_errf(err, err_cap, "AF_XDP port: invalid options");
        return MMTLS_E_INVAL;
    }
    ifn = o->ifname;
    if (strlen(ifn) >= IF_NAMESIZE) {
        mmtls_errf(err, err_cap, "%s: interface name too long", ifn);
        return MMTLS_E_INVAL;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        mmtls_errf(err, err_cap, "%s: out of memory", ifn);
        return MMTLS_E_NOMEM;
    }
    memcpy(p->ifname, ifn, strlen(ifn) + 1);
    p->queue_id = o->queue_id;
    p->fd = -1;
    p->frame_size = o->frame_size ? o->frame_size : XDP_DEF_FRAME_SIZE;
    frame_nr = o->frame_nr ? o->frame_nr : XDP_DEF_FRAME_NR;
    /* Aligned chunk mode: a power-of-two frame between 2 KiB and the page size
     * (xdp_umem_reg); the ring sizes must be powers of two. */
    if ((p->frame_size != 2048 && p->frame_size != 4096) || !pow2(frame_nr) ||
        frame_nr < XDP_MIN_FRAME_NR || frame_nr > XDP_MAX_FRAME_NR) {
        mmtls_errf(err, err_cap, "%s: invalid UMEM geometry (%u frames of %u bytes)", ifn, frame_nr,
                   p->frame_size);
        e = MMTLS_E_INVAL;
        goto out_free;
    }
    p->nrx = frame_nr / 2;
    p->area_len = (size_t)frame_nr * p->frame_size;
    p->area = mmap(NULL, p->area_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p->area == MAP_FAILED) {
        p->area = NULL;
        mmtls_errf(err, err_cap, "%s: cannot map the UMEM (%zu bytes): %s", ifn, p->area_len,
                   strerror(errno));
        e = MMTLS_E_NOMEM;
        goto out_free;
    }
    p->tx_free = calloc(p->nrx, sizeof(*p->tx_free));
    if (p->tx_free == NULL) {
        mmtls_errf(err, err_cap, "%s: out of memory", ifn);
        e = MMTLS_E_NOMEM;
        goto out_unmap;
    }
    for (uint32_t i = 0; i < p->nrx; i++) {
        p->tx_free[i] = (uint64_t)(p->nrx + i) * p->frame_size;
    }
    p->tx_nfree = p->nrx;

    uc.fill_size = p->nrx;
    uc.comp_size = p->nrx;
    uc.frame_size = p->frame_size;
    uc.frame_headroom = 0;
    uc.flags = 0;
    rc = xsk_umem__create(&p->umem, p->area, p->area_len, &p->fill, &p->comp, &uc);
    if (rc != 0) {
        mmtls_errf(err, err_cap, "%s: cannot register the UMEM: %s", ifn, strerror(-rc));
        e = rc == -ENOMEM ? MMTLS_E_NOMEM : MMTLS_E_UNSUPPORTED;
        goto out_tx_free;
    }
    /* Frames in the fill ring before the socket is bound (and visible to the program). */
    e = fill_all(p);
    if (e != 0) {
        mmtls_errf(err, err_cap, "%s: cannot fill the fill ring", ifn);
        goto out_umem;
    }
    sc.rx_size = p->nrx;
    sc.tx_size = p->nrx;
    sc.libxdp_flags = o->prog != NULL ? XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD : 0;
    sc.xdp_flags = 0; /* libxdp's program: native when the driver has it, else generic */
    sc.bind_flags = XDP_USE_NEED_WAKEUP;
    if (o->mode == MMTLS_XDP_MODE_COPY) {
        sc.bind_flags |= XDP_COPY;
    } else if (o->mode == MMTLS_XDP_MODE_ZEROCOPY) {
        sc.bind_flags |= XDP_ZEROCOPY;
    }
    rc = xsk_socket__create(&p->xsk, ifn, o->queue_id, p->umem, &p->rx, &p->tx, &sc);
    if (rc != 0) {
        mmtls_errf(err, err_cap, "%s: cannot create the AF_XDP socket on queue %u (%s mode): %s",
                   ifn, o->queue_id,
                   o->mode == MMTLS_XDP_MODE_COPY       ? "copy"
                   : o->mode == MMTLS_XDP_MODE_ZEROCOPY ? "zero-copy"
                                                        : "auto",
                   strerror(-rc));
        e = rc == -EBUSY ? MMTLS_E_CONFLICT : MMTLS_E_UNSUPPORTED;
        goto out_umem;
    }
    p->fd = xsk_socket__fd(p->xsk);
    if (o->prog != NULL) {
        rc = xsk_socket__update_xskmap(p->xsk, o->prog->map_fd);
        if (rc != 0) {
            mmtls_errf(err, err_cap, "%s: cannot put the socket of queue %u in the XSKMAP: %s", ifn,
                       o->queue_id, strerror(-rc));
            e = MMTLS_E_LIMIT;
            goto out_xsk;
        }
    }
    if (getsockopt(p->fd, SOL_XDP, XDP_OPTIONS, &xo, &xol) == 0) {
        p->st.zerocopy = (xo.flags & XDP_OPTIONS_ZEROCOPY) != 0;
    }
    *out = p;
    return 0;

out_xsk:
    xsk_socket__delete(p->xsk);
out_umem:
    xsk_umem__delete(p->umem);
out_tx_free:
    free(p->tx_free);
out_unmap:
    munmap(p->area, p->area_len);
out_free:
    free(p);
    return e;
}

void mmtls_xdp_close(struct mmtls_xdp *p)
{
    if (p == NULL) {
        return;
    }
    /* The socket first: it holds a reference on the UMEM (xsk_umem__delete says EBUSY). */
    xsk_socket__delete(p->xsk);
    xsk_umem__delete(p->umem);
    free(p->tx_free);
    munmap(p->area, p->area_len);
    free(p);
}

int mmtls_xdp_fd(const struct mmtls_xdp *p)
{
    return p->fd;
}

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int mmtls_xdp_rx_burst(struct mmtls_xdp *p, struct mmtls_xdp_frame *f, int max)
{
    uint32_t n, idx, j = 0;
    uint64_t ts;

    if (p->rx_n != 0 || max <= 0) {
        MMTLS_DEBUG_ASSERT(p->rx_n == 0); /* the previous burst was not given back */
        return 0;
    }
    n = xsk_ring_cons__peek(&p->rx, (uint32_t)max, &idx);
    if (n == 0) {
        /* Zero-copy drivers stop receiving when the fill ring ran dry and ask to be woken up
         * once it has frames again (af_xdp.rst, XDP_USE_NEED_WAKEUP). */
        if (xsk_ring_prod__needs_wakeup(&p->fill)) {
            (void)recvfrom(p->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
        }
        return 0;
    }
    p->rx_idx = idx;
    p->rx_n = n;
    ts = now_us();
    for (uint32_t i = 0; i < n; i++) {
        const struct xdp_desc *d = xsk_ring_cons__rx_desc(&p->rx, idx + i);
        uint64_t addr = d->addr;

        /* The kernel wrote the descriptor; still, never hand out bytes outside the frame. */
        if (addr >= (uint64_t)p->nrx * p->frame_size ||
            d->len > p->frame_size - addr % p->frame_size) {
            MMTLS_DEBUG_ASSERT(0);
            p->st.rx_drops_kernel++;
            continue;
        }
        f[j].data = xsk_umem__get_data(p->area, addr);
        f[j].len = d->len;
        f[j].ts_us = ts;
        p->st.rx_frames++;
        p->st.rx_bytes += d->len;
        j++;
    }
    if (j == 0) {
        mmtls_xdp_rx_done(p); /* nothing to lend: recycle the frames at once */
    }
    return (int)j;
}

void mmtls_xdp_rx_done(struct mmtls_xdp *p)
{
    uint32_t idx;

    if (p->rx_n == 0) {
        return;
    }
    /* Always succeeds: the frames out of the fill ring are at least the rx_n lent ones. */
    if (xsk_ring_prod__reserve(&p->fill, p->rx_n, &idx) != p->rx_n) {
        MMTLS_DEBUG_ASSERT(0);
        return;
    }
    for (uint32_t i = 0; i < p->rx_n; i++) {
        uint64_t addr = xsk_ring_cons__rx_desc(&p->rx, p->rx_idx + i)->addr;

        /* Aligned mode: the kernel accepts any address inside a chunk; give its start. */
        *xsk_ring_prod__fill_addr(&p->fill, idx + i) = addr - addr % p->frame_size;
    }
    xsk_ring_prod__submit(&p->fill, p->rx_n);
    xsk_ring_cons__release(&p->rx, p->rx_n);
    p->rx_n = 0;
}

/* Takes the frames the kernel has sent back onto the free stack. */
static void reap(struct mmtls_xdp *p)
{
    uint32_t idx, n = xsk_ring_cons__peek(&p->comp, p->nrx, &idx);

    for (uint32_t i = 0; i < n; i++) {
        uint64_t addr = *xsk_ring_cons__comp_addr(&p->comp, idx + i);

        if (p->tx_nfree >= p->nrx) {
            MMTLS_DEBUG_ASSERT(0); /* more completions than frames sent */
            break;
        }
        p->tx_free[p->tx_nfree++] = addr - addr % p->frame_size;
    }
    if (n != 0) {
        xsk_ring_cons__release(&p->comp, n);
    }
}

int mmtls_xdp_tx(struct mmtls_xdp *p, const uint8_t *data, uint32_t len)
{
    struct xdp_desc *d;
    uint32_t idx;
    uint64_t addr;

    if (len == 0 || len > p->frame_size) {
        p->st.tx_errors++;
        return MMTLS_E_LIMIT;
    }
    if (p->tx_nfree == 0) {
        reap(p);
        if (p->tx_nfree == 0) {
            p->st.tx_ring_full++;
            return MMTLS_E_LIMIT;
        }
    }
    if (xsk_ring_prod__reserve(&p->tx, 1, &idx) != 1) {
        p->st.tx_ring_full++;
        return MMTLS_E_LIMIT;
    }
    addr = p->tx_free[--p->tx_nfree];
    memcpy(xsk_umem__get_data(p->area, addr), data, len);
    d = xsk_ring_prod__tx_desc(&p->tx, idx);
    d->addr = addr;
    d->len = len;
    d->options = 0;
    p->tx_pending++;
    p->st.tx_frames++;
    p->st.tx_bytes += len;
    return 0;
}

void mmtls_xdp_tx_flush(struct mmtls_xdp *p)
{
    if (p->tx_pending != 0) {
        /* Release store of the producer index: the descriptors and frame bytes are visible
         * before the kernel sees them (xsk_ring_prod__submit). */
        xsk_ring_prod__submit(&p->tx, p->tx_pending);
        p->tx_pending = 0;
    }
    /* Kick while the kernel has not taken everything and says it needs a syscall.  Copy mode
     * sends a batch of 32 per call and answers EAGAIN when more wait; EBUSY/EAGAIN also mean
     * a busy device queue: the frames stay in the ring for the next flush. */
    for (uint32_t k = 0; k < XDP_MAX_KICKS; k++) {
        if (xsk_prod_nb_free(&p->tx, p->nrx) == p->nrx || !xsk_ring_prod__needs_wakeup(&p->tx)) {
            break;
        }
        p->st.tx_kicks++;
        if (sendto(p->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0) {
            continue;
        }
        if (errno == EAGAIN || errno == EBUSY || errno == EINTR) {
            continue;
        }
        p->st.tx_errors++; /* ENOBUFS, ENETDOWN, ...: frames stay queued; counted */
        break;
    }
    reap(p);
}

void mmtls_xdp_get_stats(const struct mmtls_xdp *p, struct mmtls_xdp_stats *st)
{
    struct xdp_statistics ks = {0};
    socklen_t kl = sizeof(ks);

    *st = p->st;
    /* XDP_STATISTICS counters are cumulative for the socket's life (not reset on read). */
    if (getsockopt(p->fd, SOL_XDP, XDP_STATISTICS, &ks, &kl) == 0) {
        st->rx_drops_kernel += ks.rx_dropped + ks.rx_ring_full;
        st->rx_fill_empty = ks.rx_fill_ring_empty_descs;
        st->tx_errors += ks.tx_invalid_descs;
    }
}

#else /* !MMTLS_HAVE_XDP: built without libxdp */

int mmtls_xdp_queue_count(const char *ifname, uint32_t *n, char *err, size_t err_cap)
{
    *n = 1;
    mmtls_errf(err, err_cap, "%s: built without AF_XDP (libxdp not found)", ifname);
    return MMTLS_E_UNSUPPORTED;
}

int mmtls_xdp_prog_attach(struct mmtls_xdp_prog **out, const char *ifname, char *err,
                          size_t err_cap)
{
    *out = NULL;
    mmtls_errf(err, err_cap, "%s: built without AF_XDP (libxdp not found)", ifname);
    return MMTLS_E_UNSUPPORTED;
}

void mmtls_xdp_prog_detach(struct mmtls_xdp_prog *prog)
{
    (void)prog;
}

int mmtls_xdp_open(struct mmtls_xdp **out, const struct mmtls_xdp_opts *o, char *err,
                   size_t err_cap)
{
    *out = NULL;
    mmtls_errf(err, err_cap, "%s: built without AF_XDP (libxdp not found)",
               o != NULL && o->ifname != NULL ? o->ifname : "AF_XDP port");
    return MMTLS_E_UNSUPPORTED;
}

void mmtls_xdp_close(struct mmtls_xdp *p)
{
    (void)p;
}

int mmtls_xdp_fd(const struct mmtls_xdp *p)
{
    (void)p;
    return -1;
}

int mmtls_xdp_rx_burst(struct mmtls_xdp *p, struct mmtls_xdp_frame *f, int max)
{
    (void)p;
    (void)f;
    (void)max;
    return 0;
}

void mmtls_xdp_rx_done(struct mmtls_xdp *p)
{
    (void)p;
}

int mmtls_xdp_tx(struct mmtls_xdp *p, const uint8_t *data, uint32_t len)
{
    (void)p;
    (void)data;
    (void)len;
    return MMTLS_E_UNSUPPORTED;
}

void mmtls_xdp_tx_flush(struct mmtls_xdp *p)
{
    (void)p;
}

void mmtls_xdp_get_stats(const struct mmtls_xdp *p, struct mmtls_xdp_stats *st)
{
    (void)p;
    memset(st, 0, sizeof(*st));
}

#endif /* MMTLS_HAVE_XDP */
