/* io_xdp — inline packet port over AF_XDP: one XDP socket on one queue of one interface, with
 * its own UMEM or one shared with the other port of a pair, through libxdp's xsk API
 * (<xdp/xsk.h>; libbpf 1.x moved it to libxdp).
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
 * UMEM and frames: a port opened alone has its own UMEM; the two ports of a pair
 * (mmtls_xdp_open_pair: the two interfaces of an inline worker) share one (XDP_SHARED_UMEM
 * on another device, Linux 5.10: each (device, queue) has its own fill and completion rings),
 * so that a frame received on one port can be sent out of the other by its address
 * (mmtls_xdp_forward), without a copy.  Every frame of a UMEM is in exactly one place:
 *   free     on the free stack;
 *   fill k   in port k's fill ring or in the kernel, to receive into (at most fill_target);
 *   rx k     received on port k and lent to the caller until mmtls_xdp_rx_done();
 *   tx k     in port k's tx ring, in the kernel or in its completion ring (at most tx_cap,
 *            the completion ring's size, so that ring never overflows).
 * Moves: free -> fill k (refill), fill k -> rx k (rx burst), rx k -> fill k (rx done),
 * rx k -> tx j (forward), free -> tx j (copying tx), tx j -> free (completion).  A frame
 * forwarded out of port j leaves port k's fill ring short: rx done tops it up from the free
 * stack, where the completion puts the frame back.  A state byte per frame checks each move
 * (a completion or a received descriptor for a frame not in that place is refused and
 * counted), and mmtls_xdp_get_stats reports the count of each place.
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
#define XSK_BUSY_WAIT_MS 3000 /* how long a busy queue is retried on open (busy_retry) */
#define XSK_BUSY_STEP_MS 50
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

struct xdp_umem;

struct mmtls_xdp {
    char ifname[IF_NAMESIZE];
    uint32_t queue_id;
    struct xdp_umem *u;     /* owned, shared: a reference (the ports of a pair share one) */
    uint8_t idx;            /* this port's index in the UMEM (0, or 1 for a pair's second) */
    struct xsk_socket *xsk; /* owned */
    struct xsk_ring_prod fill, tx;
    struct xsk_ring_cons comp, rx;
    int fd;

    uint32_t fill_target; /* frames kept in the fill ring (half the port's frame_nr) */
    uint32_t fill_out;    /* frames given to the fill ring not yet received */

    /* RX: the burst lent to the caller (chunk addresses; XF_LENT_GONE once forwarded) */
    uint64_t *lent; /* owned: rx_cap entries */
    uint32_t rx_n, rx_cap;

    /* TX */
    uint32_t tx_cap;     /* frames in flight at most: the completion ring's size */
    uint32_t tx_out;     /* frames in flight (tx ring, kernel, completion ring) */
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

/* ---- the UMEM and its frames ---------------------------------------------------------------- */

/* Where a frame is (state byte: owner in the low two bits, port index above).  Every move
 * checks the state it leaves, so a frame can never be in two places (double use) and a frame
 * the kernel returns must be one it was given; a failed check is counted (frame_errors) and
 * the frame left where it was. */
enum xdp_fstate {
    XF_FREE = 0, /* on the free stack */
    XF_FILL = 1, /* in port k's fill ring or in the kernel, to receive into */
    XF_RX = 2,   /* received on port k, lent to the caller until mmtls_xdp_rx_done() */
    XF_TX = 3,   /* in port k's tx ring, in the kernel or in its completion ring */
};
#define XF(st, port) ((uint8_t)((st) | ((port) << 2)))
#define XF_LENT_GONE UINT64_MAX /* a lent slot whose frame was forwarded */

struct xdp_umem {
    uint8_t *area; /* owned: mmap'd */
    size_t area_len;
    uint32_t frame_size, frame_shift, nframes;
    uint32_t ring;         /* fill, completion and tx ring entries of each port */
    struct xsk_umem *umem; /* owned */
    uint64_t *free;        /* owned: stack of free frame addresses (chunk starts) */
    uint32_t nfree;
    uint8_t *state; /* owned: one XF() byte per frame */
    uint32_t cnt[4];
    uint64_t errors;
    struct mmtls_xdp *port[2]; /* borrowed: the open ports on this UMEM */
    int refs;
    bool shared;
};

static bool frame_move(struct xdp_umem *u, uint64_t addr, uint8_t from, uint8_t to)
{
    uint64_t i = addr >> u->frame_shift;

    if (i >= u->nframes || u->state[i] != from) {
        u->errors++;
        return false;
    }
    u->cnt[from & 3]--;
    u->cnt[to & 3]++;
    u->state[i] = to;
    return true;
}

static void umem_unref(struct xdp_umem *u)
{
    if (u == NULL || --u->refs > 0) {
        return;
    }
    if (u->umem != NULL) {
        xsk_umem__delete(u->umem);
    }
    if (u->area != NULL) {
        munmap(u->area, u->area_len);
    }
    free(u->free);
    free(u->state);
    free(u);
}

/* A UMEM of nframes frames of frame_size bytes, all free; rings of `ring` entries. */
static int umem_new(struct xdp_umem **out, uint32_t frame_size, uint32_t nframes, uint32_t ring,
                    struct xsk_ring_prod *fill, struct xsk_ring_cons *comp, const char *ifn,
                    char *err, size_t err_cap)
{
    struct xsk_umem_config uc = {0};
    struct xdp_umem *u;
    int rc;

    *out = NULL;
    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        mmtls_errf(err, err_cap, "%s: out of memory", ifn);
        return MMTLS_E_NOMEM;
    }
    u->refs = 1;
    u->frame_size = frame_size;
    u->frame_shift = frame_size == 4096 ? 12 : 11;
    u->nframes = nframes;
    u->ring = ring;
    u->area_len = (size_t)nframes * frame_size;
    u->area = mmap(NULL, u->area_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (u->area == MAP_FAILED) {
        u->area = NULL;
        mmtls_errf(err, err_cap, "%s: cannot map the UMEM (%zu bytes): %s", ifn, u->area_len,
                   strerror(errno));
        umem_unref(u);
        return MMTLS_E_NOMEM;
    }
    u->free = calloc(nframes, sizeof(*u->free));
    u->state = calloc(nframes, 1);
    if (u->free == NULL || u->state == NULL) {
        mmtls_errf(err, err_cap, "%s: out of memory", ifn);
        umem_unref(u);
        return MMTLS_E_NOMEM;
    }
    /* Pushed so that the lowest addresses are taken first. */
    for (uint32_t i = 0; i < nframes; i++) {
        u->free[i] = (uint64_t)(nframes - 1 - i) << u->frame_shift;
    }
    u->nfree = nframes;
    u->cnt[XF_FREE] = nframes;
    uc.fill_size = ring;
    uc.comp_size = ring;
    uc.frame_size = frame_size;
    uc.frame_headroom = 0;
    uc.flags = 0;
    rc = xsk_umem__create(&u->umem, u->area, u->area_len, fill, comp, &uc);
    if (rc != 0) {
        u->umem = NULL;
        mmtls_errf(err, err_cap, "%s: cannot register the UMEM: %s", ifn, strerror(-rc));
        umem_unref(u);
        return rc == -ENOMEM ? MMTLS_E_NOMEM : MMTLS_E_UNSUPPORTED;
    }
    *out = u;
    return 0;
}

/* Takes the frames port p has sent back (its completion ring) onto the free stack. */
static void reap(struct mmtls_xdp *p)
{
    struct xdp_umem *u = p->u;
    uint32_t idx, n;

    if (p->tx_out == 0) {
        return;
    }
    n = xsk_ring_cons__peek(&p->comp, u->ring, &idx);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t addr = *xsk_ring_cons__comp_addr(&p->comp, idx + i);

        addr &= ~(uint64_t)(u->frame_size - 1);
        /* A completion for a frame not in flight on this port would put it on the stack a
         * second time: refused and counted (frame_move). */
        if (frame_move(u, addr, XF(XF_TX, p->idx), XF(XF_FREE, 0))) {
            u->free[u->nfree++] = addr;
            p->tx_out--;
        }
    }
    if (n != 0) {
        xsk_ring_cons__release(&p->comp, n);
    }
}

static void reap_all(struct xdp_umem *u)
{
    for (int k = 0; k < 2; k++) {
        if (u->port[k] != NULL) {
            reap(u->port[k]);
        }
    }
}

/* Tops port p's fill ring up to its target from the free stack (frames sent by either port
 * come back there).  The ring has room: it never holds more than fill_target <= ring. */
static void refill(struct mmtls_xdp *p)
{
    struct xdp_umem *u = p->u;
    uint32_t need = p->fill_target - p->fill_out, idx;

    if (need > u->nfree) {
        reap_all(u);
    }
    need = MMTLS_MIN(need, u->nfree);
    if (need == 0) {
        return;
    }
    if (xsk_ring_prod__reserve(&p->fill, need, &idx) != need) {
        MMTLS_DEBUG_ASSERT(0);
        u->errors++;
        return;
    }
    for (uint32_t i = 0; i < need; i++) {
        uint64_t addr = u->free[--u->nfree];

        (void)frame_move(u, addr, XF(XF_FREE, 0), XF(XF_FILL, p->idx)); /* from the stack */
        *xsk_ring_prod__fill_addr(&p->fill, idx + i) = addr;
    }
    xsk_ring_prod__submit(&p->fill, need);
    p->fill_out += need;
}

/* ---- the port ------------------------------------------------------------------------------ */

static bool pow2(uint32_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

static const char *mode_name(enum mmtls_xdp_mode m)
{
    return m == MMTLS_XDP_MODE_COPY ? "copy" : m == MMTLS_XDP_MODE_ZEROCOPY ? "zero-copy" : "auto";
}

/* Validates o; fills the geometry (defaults applied). */
static int check_opts(const struct mmtls_xdp_opts *o, uint32_t *frame_size, uint32_t *frame_nr,
                      char *err, size_t err_cap)
{
    if (o == NULL || o->sz < sizeof(struct mmtls_xdp_opts) || o->ifname == NULL ||
        o->mode > MMTLS_XDP_MODE_ZEROCOPY) {
        mmtls_errf(err, err_cap, "AF_XDP port: invalid options");
        return MMTLS_E_INVAL;
    }
    if (strlen(o->ifname) >= IF_NAMESIZE) {
        mmtls_errf(err, err_cap, "%s: interface name too long", o->ifname);
        return MMTLS_E_INVAL;
    }
    *frame_size = o->frame_size ? o->frame_size : XDP_DEF_FRAME_SIZE;
    *frame_nr = o->frame_nr ? o->frame_nr : XDP_DEF_FRAME_NR;
    /* Aligned chunk mode: a power-of-two frame between 2 KiB and the page size
     * (xdp_umem_reg); the ring sizes must be powers of two. */
    if ((*frame_size != 2048 && *frame_size != 4096) || !pow2(*frame_nr) ||
        *frame_nr < XDP_MIN_FRAME_NR || *frame_nr > XDP_MAX_FRAME_NR) {
        mmtls_errf(err, err_cap, "%s: invalid UMEM geometry (%u frames of %u bytes)", o->ifname,
                   *frame_nr, *frame_size);
        return MMTLS_E_INVAL;
    }
    return 0;
}

static void port_free(struct mmtls_xdp *p)
{
    if (p == NULL) {
        return;
    }
    /* The socket first: it holds a reference on the UMEM (xsk_umem__delete says EBUSY). */
    if (p->xsk != NULL) {
        xsk_socket__delete(p->xsk);
    }
    if (p->u != NULL) {
        p->u->port[p->idx] = NULL;
        umem_unref(p->u);
    }
    free(p->lent);
    free(p);
}

/* Socket of port index k on UMEM u (taking a reference): the first socket of a UMEM uses the
 * fill and completion rings made with it; a second one gets its own pair (a shared UMEM on
 * another device or queue: XDP_SHARED_UMEM, Linux 5.10). */
static int port_new(struct mmtls_xdp **out, struct xdp_umem *u, int k, struct mmtls_xdp *p,
                    const struct mmtls_xdp_opts *o, uint32_t frame_nr, char *err, size_t err_cap)
{
    struct xsk_socket_config sc = {0};
    struct xdp_options xo = {0};
    socklen_t xol = sizeof(xo);
    const char *ifn = o->ifname;
    int rc;

    *out = NULL;
    memcpy(p->ifname, ifn, strlen(ifn) + 1);
    p->queue_id = o->queue_id;
    p->fd = -1;
    p->u = u;
    p->idx = (uint8_t)k;
    u->refs++;
    u->port[k] = p;
    p->fill_target = frame_nr / 2;
    p->tx_cap = u->ring;
    p->rx_cap = frame_nr / 2;
    p->lent = calloc(p->rx_cap, sizeof(*p->lent));
    if (p->lent == NULL) {
        mmtls_errf(err, err_cap, "%s: out of memory", ifn);
        port_free(p);
        return MMTLS_E_NOMEM;
    }
    sc.rx_size = p->rx_cap;
    sc.tx_size = u->ring;
    sc.libxdp_flags = o->prog != NULL ? XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD : 0;
    sc.xdp_flags = 0; /* libxdp's program: native when the driver has it, else generic */
    /* A socket sharing the UMEM of another takes its mode and wake-up flag (the kernel
     * refuses bind flags with XDP_SHARED_UMEM; xp_assign_dev_shared). */
    sc.bind_flags = XDP_USE_NEED_WAKEUP;
    if (o->mode == MMTLS_XDP_MODE_COPY) {
        sc.bind_flags |= XDP_COPY;
    } else if (o->mode == MMTLS_XDP_MODE_ZEROCOPY) {
        sc.bind_flags |= XDP_ZEROCOPY;
    }
    rc = xsk_socket__create_shared(&p->xsk, ifn, o->queue_id, u->umem, &p->rx, &p->tx, &p->fill,
                                   &p->comp, &sc);
    if (rc != 0) {
        p->xsk = NULL;
        mmtls_errf(err, err_cap,
                   "%s: cannot create the AF_XDP socket on queue %u (%s mode%s): %s%s", ifn,
                   o->queue_id, mode_name(o->mode), k == 1 ? ", shared UMEM" : "", strerror(-rc),
                   rc == -EBUSY ? " (another socket holds the queue)" : "");
        port_free(p);
        return rc == -EBUSY ? MMTLS_E_CONFLICT : MMTLS_E_UNSUPPORTED;
    }
    p->fd = xsk_socket__fd(p->xsk);
    refill(p);
    if (o->prog != NULL) {
        rc = xsk_socket__update_xskmap(p->xsk, o->prog->map_fd);
        if (rc != 0) {
            mmtls_errf(err, err_cap, "%s: cannot put the socket of queue %u in the XSKMAP: %s", ifn,
                       o->queue_id, strerror(-rc));
            port_free(p);
            return MMTLS_E_LIMIT;
        }
    }
    if (getsockopt(p->fd, SOL_XDP, XDP_OPTIONS, &xo, &xol) == 0) {
        p->st.zerocopy = (xo.flags & XDP_OPTIONS_ZEROCOPY) != 0;
    }
    *out = p;
    return 0;
}

static int open_once(struct mmtls_xdp **out, const struct mmtls_xdp_opts *o, char *err,
                     size_t err_cap)
{
    struct xdp_umem *u;
    struct mmtls_xdp *p;
    uint32_t frame_size, frame_nr;
    int e;

    *out = NULL;
    e = check_opts(o, &frame_size, &frame_nr, err, err_cap);
    if (e != 0) {
        return e;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        mmtls_errf(err, err_cap, "%s: out of memory", o->ifname);
        return MMTLS_E_NOMEM;
    }
    e = umem_new(&u, frame_size, frame_nr, frame_nr / 2, &p->fill, &p->comp, o->ifname, err,
                 err_cap);
    if (e != 0) {
        free(p);
        return e;
    }
    e = port_new(out, u, 0, p, o, frame_nr, err, err_cap);
    umem_unref(u); /* the port holds its own reference */
    return e;
}

static int open_pair_once(struct mmtls_xdp *out[2], const struct mmtls_xdp_opts o[2], char *err,
                          size_t err_cap)
{
    uint32_t frame_size[2], frame_nr[2], ring;
    struct mmtls_xdp *p[2] = {NULL, NULL};
    struct xdp_umem *u = NULL;
    int e;

    out[0] = out[1] = NULL;
    for (int k = 0; k < 2; k++) {
        e = check_opts(&o[k], &frame_size[k], &frame_nr[k], err, err_cap);
        if (e != 0) {
            return e;
        }
    }
    if (frame_size[0] != frame_size[1]) {
        mmtls_errf(err, err_cap, "%s, %s: a shared UMEM needs one frame size (%u, %u)", o[0].ifname,
                   o[1].ifname, frame_size[0], frame_size[1]);
        return MMTLS_E_INVAL;
    }
    ring = (frame_nr[0] > frame_nr[1] ? frame_nr[0] : frame_nr[1]) / 2;
    for (int k = 0; k < 2; k++) {
        p[k] = calloc(1, sizeof(*p[k]));
        if (p[k] == NULL) {
            free(p[0]);
            mmtls_errf(err, err_cap, "%s: out of memory", o[k].ifname);
            return MMTLS_E_NOMEM;
        }
    }
    e = umem_new(&u, frame_size[0], frame_nr[0] + frame_nr[1], ring, &p[0]->fill, &p[0]->comp,
                 o[0].ifname, err, err_cap);
    if (e != 0) {
        free(p[0]);
        free(p[1]);
        return e;
    }
    u->shared = true;
    e = port_new(&out[0], u, 0, p[0], &o[0], frame_nr[0], err, err_cap);
    if (e != 0) {
        free(p[1]);
        umem_unref(u);
        return e;
    }
    e = port_new(&out[1], u, 1, p[1], &o[1], frame_nr[1], err, err_cap);
    umem_unref(u);
    if (e == 0 || e == MMTLS_E_CONFLICT) {
        if (e != 0) {
            mmtls_xdp_close(out[0]);
            out[0] = NULL;
        }
        return e;
    }
    /* The second device cannot share the UMEM (say, the first runs zero-copy and the second
     * has no zero-copy driver): a UMEM per port, forwarding copies.  The second open reports
     * its own error (a zero-copy request on a device without it still fails). */
    mmtls_xdp_close(out[0]);
    out[0] = NULL;
    e = open_once(&out[0], &o[0], err, err_cap);
    if (e == 0) {
        e = open_once(&out[1], &o[1], err, err_cap);
    }
    if (e != 0) {
        mmtls_xdp_close(out[0]);
        out[0] = NULL;
    }
    return e;
}

/* A closed AF_XDP socket unbinds its queue later, on a workqueue under the RTNL lock
 * (xp_put_pool -> xp_release_deferred -> xp_clear_dev): a port reopened right after the
 * previous process exited can find the queue busy (bind: EBUSY) for a while, longer when other
 * work holds the RTNL.  The whole open is retried, with a new UMEM (libxdp's failed create
 * leaves the first socket's rings set up, so a second bind on it cannot be tried), for up to
 * XSK_BUSY_WAIT_MS; a queue held by a live socket is still refused after that. */
static bool busy_retry(int e, uint64_t *deadline_ms)
{
    const struct timespec step = {0, XSK_BUSY_STEP_MS * 1000000L};
    struct timespec ts;
    uint64_t now_ms;

    if (e != MMTLS_E_CONFLICT) {
        return false;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    if (*deadline_ms == 0) {
        *deadline_ms = now_ms + XSK_BUSY_WAIT_MS;
    }
    if (now_ms >= *deadline_ms) {
        return false;
    }
    nanosleep(&step, NULL);
    return true;
}

int mmtls_xdp_open(struct mmtls_xdp **out, const struct mmtls_xdp_opts *o, char *err,
                   size_t err_cap)
{
    uint64_t deadline_ms = 0;
    int e;

    do {
        e = open_once(out, o, err, err_cap);
    } while (busy_retry(e, &deadline_ms));
    return e;
}

int mmtls_xdp_open_pair(struct mmtls_xdp *out[2], const struct mmtls_xdp_opts o[2], char *err,
                        size_t err_cap)
{
    uint64_t deadline_ms = 0;
    int e;

    do {
        e = open_pair_once(out, o, err, err_cap);
    } while (busy_retry(e, &deadline_ms));
    return e;
}

void mmtls_xdp_close(struct mmtls_xdp *p)
{
    port_free(p);
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
    struct xdp_umem *u = p->u;
    uint32_t n, idx, j = 0;
    uint64_t ts;

    if (p->rx_n != 0 || max <= 0) {
        MMTLS_DEBUG_ASSERT(p->rx_n == 0); /* the previous burst was not given back */
        return 0;
    }
    n = xsk_ring_cons__peek(&p->rx, MMTLS_MIN((uint32_t)max, p->rx_cap), &idx);
    if (n == 0) {
        /* Frames forwarded out of the other port come back to the free stack: keep this
         * port's fill ring full.  Zero-copy drivers stop receiving when the fill ring ran dry
         * and ask to be woken up once it has frames again (af_xdp.rst, XDP_USE_NEED_WAKEUP). */
        if (p->fill_out < p->fill_target) {
            refill(p);
        }
        if (xsk_ring_prod__needs_wakeup(&p->fill)) {
            (void)recvfrom(p->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
        }
        return 0;
    }
    ts = now_us();
    for (uint32_t i = 0; i < n; i++) {
        const struct xdp_desc *d = xsk_ring_cons__rx_desc(&p->rx, idx + i);
        uint64_t addr = d->addr, chunk = addr & ~(uint64_t)(u->frame_size - 1);

        /* The kernel wrote the descriptor; still, never hand out a frame it did not own or
         * bytes outside the frame. */
        if (!frame_move(u, chunk, XF(XF_FILL, p->idx), XF(XF_RX, p->idx))) {
            MMTLS_DEBUG_ASSERT(0);
            continue;
        }
        p->fill_out--;
        p->lent[p->rx_n++] = chunk;
        if (d->len == 0 || d->len > u->frame_size - (addr - chunk)) {
            MMTLS_DEBUG_ASSERT(0);
            p->st.rx_drops_kernel++; /* lent to nobody: back to the fill ring at rx_done */
            continue;
        }
        f[j].data = xsk_umem__get_data(u->area, addr);
        f[j].len = d->len;
        f[j].ts_us = ts;
        f[j].addr = addr;
        f[j].slot = p->rx_n - 1;
        p->st.rx_frames++;
        p->st.rx_bytes += d->len;
        j++;
    }
    /* The descriptors are copied (lent[]): the ring slots go back to the kernel now. */
    xsk_ring_cons__release(&p->rx, n);
    if (j == 0) {
        mmtls_xdp_rx_done(p); /* nothing to lend: recycle the frames at once */
    }
    return (int)j;
}

void mmtls_xdp_rx_done(struct mmtls_xdp *p)
{
    struct xdp_umem *u = p->u;
    uint32_t idx, m = 0;

    if (p->rx_n == 0) {
        return;
    }
    for (uint32_t i = 0; i < p->rx_n; i++) {
        if (p->lent[i] == XF_LENT_GONE) {
            continue;
        }
        if (u->state[p->lent[i] >> u->frame_shift] != XF(XF_RX, p->idx)) {
            /* Not ours any more (a bug): never give the kernel a frame that is elsewhere. */
            MMTLS_DEBUG_ASSERT(0);
            u->errors++;
            p->lent[i] = XF_LENT_GONE;
            continue;
        }
        m++;
    }
    /* Always succeeds: the fill ring holds at most fill_target frames and the lent ones were
     * taken out of that count. */
    if (m != 0 && xsk_ring_prod__reserve(&p->fill, m, &idx) == m) {
        for (uint32_t i = 0, w = 0; i < p->rx_n; i++) {
            if (p->lent[i] == XF_LENT_GONE) {
                continue;
            }
            (void)frame_move(u, p->lent[i], XF(XF_RX, p->idx), XF(XF_FILL, p->idx));
            *xsk_ring_prod__fill_addr(&p->fill, idx + w++) = p->lent[i];
        }
        xsk_ring_prod__submit(&p->fill, m);
        p->fill_out += m;
    } else if (m != 0) {
        MMTLS_DEBUG_ASSERT(0);
        u->errors++;
    }
    p->rx_n = 0;
    /* Forwarded frames left this port: replace them from the free stack. */
    if (p->fill_out < p->fill_target) {
        refill(p);
    }
}

/* A tx descriptor of p for frame addr (len bytes at addr, within its chunk), or MMTLS_E_LIMIT
 * when the ring or the completion ring could not take one more (counted). */
static int tx_reserve(struct mmtls_xdp *p, struct xdp_desc **d)
{
    uint32_t idx;

    if (p->tx_out >= p->tx_cap) {
        reap(p);
    }
    if (p->tx_out >= p->tx_cap || xsk_ring_prod__reserve(&p->tx, 1, &idx) != 1) {
        p->st.tx_ring_full++;
        return MMTLS_E_LIMIT;
    }
    *d = xsk_ring_prod__tx_desc(&p->tx, idx);
    return 0;
}

int mmtls_xdp_tx(struct mmtls_xdp *p, const uint8_t *data, uint32_t len)
{
    struct xdp_umem *u = p->u;
    struct xdp_desc *d;
    uint64_t addr;

    if (len == 0 || len > u->frame_size) {
        p->st.tx_errors++;
        return MMTLS_E_LIMIT;
    }
    if (u->nfree == 0) {
        reap_all(u);
        if (u->nfree == 0) {
            p->st.tx_ring_full++;
            return MMTLS_E_LIMIT;
        }
    }
    if (tx_reserve(p, &d) != 0) {
        return MMTLS_E_LIMIT;
    }
    addr = u->free[--u->nfree];
    (void)frame_move(u, addr, XF(XF_FREE, 0), XF(XF_TX, p->idx));
    memcpy(xsk_umem__get_data(u->area, addr), data, len);
    d->addr = addr;
    d->len = len;
    d->options = 0;
    p->tx_out++;
    p->tx_pending++;
    p->st.tx_frames++;
    p->st.tx_bytes += len;
    return 0;
}

int mmtls_xdp_forward(struct mmtls_xdp *from, struct mmtls_xdp *to, const struct mmtls_xdp_frame *f)
{
    struct xdp_umem *u = from->u;
    uint64_t chunk = f->addr & ~(uint64_t)(u->frame_size - 1);
    struct xdp_desc *d;

    if (to->u != u) {
        return mmtls_xdp_tx(to, f->data, f->len); /* a UMEM per port: copy */
    }
    if (f->slot >= from->rx_n || from->lent[f->slot] != chunk || f->len == 0 ||
        f->len > u->frame_size - (f->addr - chunk)) {
        MMTLS_DEBUG_ASSERT(0); /* not a frame of the current burst, or forwarded already */
        to->st.tx_errors++;
        return MMTLS_E_INVAL;
    }
    if (u->state[chunk >> u->frame_shift] != XF(XF_RX, from->idx)) {
        MMTLS_DEBUG_ASSERT(0);
        u->errors++;
        return MMTLS_E_INTERNAL;
    }
    if (tx_reserve(to, &d) != 0) {
        return MMTLS_E_LIMIT;
    }
    (void)frame_move(u, chunk, XF(XF_RX, from->idx), XF(XF_TX, to->idx)); /* checked above */
    from->lent[f->slot] = XF_LENT_GONE;
    d->addr = f->addr;
    d->len = f->len;
    d->options = 0;
    to->tx_out++;
    to->tx_pending++;
    to->st.tx_frames++;
    to->st.tx_fwd_frames++;
    to->st.tx_bytes += f->len;
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
        if (xsk_prod_nb_free(&p->tx, p->u->ring) == p->u->ring ||
            !xsk_ring_prod__needs_wakeup(&p->tx)) {
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
    const struct xdp_umem *u = p->u;
    struct xdp_statistics ks = {0};
    socklen_t kl = sizeof(ks);

    *st = p->st;
    st->shared_umem = u->shared;
    st->umem_frames = u->nframes;
    st->frames_free = u->cnt[XF_FREE];
    st->frames_fill = u->cnt[XF_FILL];
    st->frames_rx = u->cnt[XF_RX];
    st->frames_tx = u->cnt[XF_TX];
    st->frame_errors = u->errors;
    /* The counters above come from the state bytes; the stack must agree with them. */
    if (u->nfree != u->cnt[XF_FREE]) {
        st->frame_errors++;
    }
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

int mmtls_xdp_open_pair(struct mmtls_xdp *out[2], const struct mmtls_xdp_opts o[2], char *err,
                        size_t err_cap)
{
    out[0] = out[1] = NULL;
    mmtls_errf(err, err_cap, "%s: built without AF_XDP (libxdp not found)",
               o != NULL && o[0].ifname != NULL ? o[0].ifname : "AF_XDP port");
    return MMTLS_E_UNSUPPORTED;
}

int mmtls_xdp_forward(struct mmtls_xdp *from, struct mmtls_xdp *to, const struct mmtls_xdp_frame *f)
{
    (void)from;
    (void)to;
    (void)f;
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
