/* io_afpacket — inline packet port over AF_PACKET: an RX ring (TPACKET_V3 blocks, or TPACKET_V2
 * frame slots with frame_ring) and a TX ring of the same version (frame-batched send) sharing
 * one mmap, on one socket per interface.
 *
 * Kernel documentation: Documentation/networking/packet_mmap.rst; the socket options are in
 * linux/if_packet.h.  Layout of the mapping: the RX ring's blocks first, then the TX ring's
 * (packet_mmap.rst "Mapping and use of the circular buffer").
 *
 * RX (TPACKET_V3): the kernel fills a block with several frames and hands the whole block over by
 * setting block_status to TP_STATUS_USER; user space gives it back by writing TP_STATUS_KERNEL.
 * Blocks are consumed strictly in ring order.  A block is retired early when it has been open
 * for retire_blk_tov ms, which bounds the latency a half-full block adds -- in jiffies: 1 ms is
 * one jiffy, 4 ms at HZ=250, and the timer fires one to two jiffies late.
 *
 * RX with frame_ring (TPACKET_V2): fixed-size frame slots, each handed over on its own
 * (tp_status TP_STATUS_USER, and the reader is woken per frame), given back in order after the
 * burst.  The TX ring then uses struct tpacket2_hdr, whose data starts at its aligned end.
 *
 * TX: frames are fixed-size slots.  A slot whose tp_status is TP_STATUS_AVAILABLE is ours; we
 * write the frame after the tpacket3_hdr, set tp_len and hand it over with
 * TP_STATUS_SEND_REQUEST; sendto(MSG_DONTWAIT) asks the kernel to send every requested slot and
 * it writes TP_STATUS_AVAILABLE back once the skb built from the slot is released.  PACKET_LOSS
 * is on, so a slot the kernel refuses (malformed) is skipped instead of stalling the ring.
 *
 * TX by reference (mmtls_afp_tx_ref): a frame that is still in the RX ring (or other memory
 * that outlives the next flush) is queued as an iovec and sent with one sendmmsg() per flush:
 * packet_snd copies it once into the skb, where the TX ring costs a user-space copy into the
 * slot and, on veth, a second kernel copy (skb_copy_ubufs: a forwarded skb may not keep the
 * ring's pages).  A socket with a TX ring sends only from its ring (packet_sendmsg calls
 * tpacket_snd and ignores the iovec), so these go through a second socket, txfd: bound to the
 * interface with protocol 0 (it receives nothing), no rings.  The two queues keep their frames
 * in call order: queueing on one flushes the other first.  packet_snd charges txfd's send
 * buffer until the skb is released, so it asks for AFP_SNDBUF (SO_SNDBUFFORCE, needs
 * CAP_NET_ADMIN; SO_SNDBUF otherwise).  txfd also sends out of other interfaces: each message
 * of mmtls_afp_tx_ref_dev / mmtls_afp_tx_copy_dev is addressed by a struct sockaddr_ll with the
 * interface index (packet_snd takes the device from it); copies wait in staging slots until the
 * flush.
 *
 * vnet_hdr: with PACKET_VNET_HDR the kernel puts a struct virtio_net_hdr (10 bytes) in front of
 * every received frame and expects one in front of every sent frame.  It carries GSO (gso_type,
 * gso_size, hdr_len) and checksum offload (csum_start, csum_offset) state, so GRO/GSO
 * super-frames of up to 64 KiB with unfinished checksums are forwarded as they are and segmented
 * (or checksummed) by whoever transmits them last.  Its 16-bit fields are in the byte order of
 * the kernel's vio_le(): little endian on little-endian hosts, native on big-endian ones (legacy
 * virtio), hence host order in both cases.
 *
 * Fanout (PACKET_FANOUT_HASH): the kernel picks member reciprocal_scale(h, n) where
 * h = __skb_get_hash_symmetric(skb) (net/packet/af_packet.c fanout_demux_hash, symmetric since
 * Linux 4.7): a software flow-dissector hash that orders the two addresses and the two ports
 * before hashing, ignores any NIC RSS hash and the IPv6 flow label, and uses one boot-time seed
 * for every device.  So both directions of a flow get the same h even on two different
 * interfaces, and member i of the group on IF1 and member i of the group on IF2 see the same
 * flows — provided both groups have the same number of members, joined in the same order (the
 * member index is the join order), and that no member leaves (n changes, flows move).
 * FLAG_DEFRAG reassembles IPv4 fragments first so that all of them hash on the ports.
 * A fanout group receives through its own hook, which ignores the members' PACKET_IGNORE_OUTGOING:
 * without FLAG_IGNORE_OUTGOING (Linux 6.9) every frame a worker sends came back to the group as
 * received, and was forwarded again to the other side, and so on (a storm, and the engine took
 * the copy for a packet that entered on the wrong side).  Kernels without the flag refuse it; the
 * group is then joined without it, and rx_burst skips PACKET_OUTGOING frames itself.
 * Fanout groups are per device (the kernel refuses a member bound to another interface), so
 * the group id passed to the kernel is derived from opts->fanout_group and the interface index
 * (fanout_id()).
 */
#include <errno.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef PACKET_FANOUT_FLAG_IGNORE_OUTGOING
#define PACKET_FANOUT_FLAG_IGNORE_OUTGOING 0x4000 /* Linux 6.9, include/uapi/linux/if_packet.h */
#endif

#include "io/io.h"

#define AFP_DEF_BLOCK_SIZE (1u << 20)
#define AFP_DEF_BLOCK_NR 64u
#define AFP_DEF_TX_FRAME_NR 512u
#define AFP_RETIRE_TOV_MS 1u
#define AFP_VNET_LEN ((uint32_t)sizeof(struct virtio_net_hdr)) /* 10 */
#define AFP_ETH_ADDRS 12u                                      /* dst + src MAC */
#define AFP_VLAN_LEN 4u
#define AFP_MAX_BLOCK_NR 65536u
#define AFP_MAX_BLOCK_SIZE (64u << 20)
/* TX data starts at the aligned end of struct tpacket3_hdr (tpacket_parse_header without
 * PACKET_TX_HAS_OFF: frame + tp_hdrlen - sizeof(struct sockaddr_ll)). */
#define AFP_TX_DATA_OFF ((uint32_t)TPACKET_ALIGN(sizeof(struct tpacket3_hdr)))
#define AFP_TX_DATA_OFF_V2 ((uint32_t)TPACKET_ALIGN(sizeof(struct tpacket2_hdr)))
/* RX slot of a frame ring (V2): the header, the sockaddr_ll, a vnet header, a 64 KiB GSO frame
 * and a VLAN tag, rounded up; 15 slots per 1 MiB block. */
#define AFP_V2_FRAME_SIZE (65536u + 4096u)
/* Default TX slot: a 64 KiB GSO frame plus vnet header, a VLAN tag and the tpacket header,
 * rounded to 16 bytes: 4 KiB of headroom keeps 15 slots per 1 MiB block. */
#define AFP_DEF_TX_FRAME_SIZE (65536u + 4096u)
#define AFP_TX_BLOCK_SIZE (1u << 20)
#define AFP_TXQ_MAX 64u        /* frames queued by reference per sendmmsg() */
#define AFP_SNDBUF (16u << 20) /* 64 GSO frames of 64 KiB with room to spare */
/* vnet header + MAC addresses + 802.1Q tag: what is written in front of a frame's data */
#define AFP_TX_HDR_MAX (AFP_VNET_LEN + AFP_ETH_ADDRS + AFP_VLAN_LEN)

struct afp_txq_ent {
    uint8_t hdr[AFP_TX_HDR_MAX];
    struct iovec iov[2];
    struct sockaddr_ll to; /* the interface to leave by, when it is not the port's own */
};

struct mmtls_afp {
    int fd;
    int txfd; /* sends by reference (no rings, receives nothing) */
    int ifindex;
    char ifname[IF_NAMESIZE];
    bool vnet_hdr;
    uint8_t *map; /* owned: RX blocks then TX frames, one mmap */
    size_t map_len;

    /* RX ring */
    uint8_t *rx_ring; /* borrowed: inside map */
    uint32_t rx_block_size, rx_block_nr;
    uint32_t rx_tail;     /* oldest block not given back yet */
    uint32_t rx_nopen;    /* blocks taken from the kernel and not given back (from rx_tail on) */
    uint32_t rx_left;     /* frames not yet returned in the newest open block */
    uint32_t rx_next_off; /* offset in the newest open block of the next frame */
    bool v2;              /* frame_ring: TPACKET_V2 frame slots (rx_tail / rx_nopen count slots) */
    uint32_t rx_frame_nr, rx_per_block;

    /* TX ring */
    uint8_t *tx_ring; /* borrowed: inside map */
    uint32_t tx_frame_size, tx_frame_nr, tx_per_block, tx_data_off;
    uint32_t tx_head;    /* next slot to fill */
    uint32_t tx_pending; /* slots requested since the last flush */

    /* TX by reference: frames borrowed until the next flush */
    struct afp_txq_ent txq[AFP_TXQ_MAX];
    struct mmsghdr txq_msg[AFP_TXQ_MAX];
    uint32_t txq_n;
    uint8_t *txq_stage; /* owned, allocated at first use: AFP_TXQ_MAX copies of tx_frame_size */

    struct mmtls_afp_stats st;
};

static inline uint8_t *rx_block(const struct mmtls_afp *p, uint32_t i)
{
    return p->rx_ring + (size_t)i * p->rx_block_size;
}

/* RX slot i of a frame ring (V2); slots never straddle blocks. */
static inline struct tpacket2_hdr *rx_slot(const struct mmtls_afp *p, uint32_t i)
{
    uint32_t blk = i / p->rx_per_block, in = i % p->rx_per_block;

    return (struct tpacket2_hdr *)(void *)(p->rx_ring + (size_t)blk * p->rx_block_size +
                                           (size_t)in * AFP_V2_FRAME_SIZE);
}

/* TX slots never straddle blocks: slot i is in block i / per_block (packet_lookup_frame). */
static inline uint8_t *tx_slot(const struct mmtls_afp *p, uint32_t i)
{
    uint32_t blk = i / p->tx_per_block, in = i % p->tx_per_block;

    return p->tx_ring + (size_t)blk * AFP_TX_BLOCK_SIZE + (size_t)in * p->tx_frame_size;
}

/* The status word of a TX slot: tp_status of struct tpacket2_hdr or tpacket3_hdr. */
static inline uint32_t *tx_status(const struct mmtls_afp *p, uint8_t *slot)
{
    return p->v2 ? &((struct tpacket2_hdr *)(void *)slot)->tp_status
                 : &((struct tpacket3_hdr *)(void *)slot)->tp_status;
}

/* Per-device fanout id (the kernel matches groups by id in the netns and refuses a member bound
 * to another device): the caller's group number (1..255) in the high byte, the low byte of the
 * interface index below it.  Two interfaces whose indices differ by a multiple of 256 collide
 * (the second open then fails with EINVAL). */
static uint16_t fanout_id(int group, int ifindex)
{
    return (uint16_t)(((unsigned)group << 8) ^ ((unsigned)ifindex & 0xffu));
}

static int setopt_int(int fd, int level, int name, int v)
{
    return setsockopt(fd, level, name, &v, sizeof(v));
}

int mmtls_afp_open(struct mmtls_afp **out, const struct mmtls_afp_opts *o, char *err,
                   size_t err_cap)
{
    struct mmtls_afp *p;
    struct tpacket_req3 rx = {0}, tx = {0};
    struct sockaddr_ll sll = {0};
    struct packet_mreq mr = {0};
    uint32_t tx_frame_size, tx_frame_nr, tx_per_block;
    size_t rx_len, tx_len;
    const char *ifn;
    int e;

    *out = NULL;
    if (o == NULL || o->sz < sizeof(struct mmtls_afp_opts) || o->ifname == NULL) {
        mmtls_errf(err, err_cap, "AF_PACKET port: invalid options");
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
    p->fd = -1;
    p->txfd = -1;
    p->vnet_hdr = o->vnet_hdr;
    p->v2 = o->frame_ring;
    p->tx_data_off = p->v2 ? AFP_TX_DATA_OFF_V2 : AFP_TX_DATA_OFF;
    p->rx_block_size = o->block_size ? o->block_size : AFP_DEF_BLOCK_SIZE;
    p->rx_block_nr = o->block_nr ? o->block_nr : AFP_DEF_BLOCK_NR;
    tx_frame_size = o->tx_frame_size ? o->tx_frame_size : AFP_DEF_TX_FRAME_SIZE;
    tx_frame_nr = o->tx_frame_nr ? o->tx_frame_nr : AFP_DEF_TX_FRAME_NR;
    /* packet_mmap.rst: block size a multiple of the page size (we ask for a power of two, which
     * is also what the page allocator hands out), frame size a multiple of TPACKET_ALIGNMENT. */
    if (p->rx_block_size < 4096 || p->rx_block_size > AFP_MAX_BLOCK_SIZE ||
        (p->rx_block_size & (p->rx_block_size - 1)) != 0 || p->rx_block_nr > AFP_MAX_BLOCK_NR ||
        (p->v2 && p->rx_block_size < AFP_V2_FRAME_SIZE) || tx_frame_size < AFP_TX_DATA_OFF + 64 ||
        tx_frame_size > AFP_TX_BLOCK_SIZE || tx_frame_size % TPACKET_ALIGNMENT != 0 ||
        tx_frame_nr == 0 || tx_frame_nr > AFP_MAX_BLOCK_NR || o->fanout_group < 0 ||
        o->fanout_group > 255) {
        mmtls_errf(err, err_cap, "%s: invalid ring geometry or fanout group", ifn);
        e = MMTLS_E_INVAL;
        goto out_free;
    }

    p->ifindex = (int)if_nametoindex(ifn);
    if (p->ifindex == 0) {
        mmtls_errf(err, err_cap, "%s: no such interface: %s", ifn, strerror(errno));
        e = MMTLS_E_NOTFOUND;
        goto out_free;
    }
    p->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (p->fd < 0) {
        mmtls_errf(err, err_cap, "%s: cannot create AF_PACKET socket: %s", ifn, strerror(errno));
        e = MMTLS_E_IO;
        goto out_free;
    }
    /* Protocol 0 at socket(): the socket receives nothing until bind() names the interface and
     * ETH_P_ALL, so frames of other interfaces never queue on it. */
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = p->ifindex;
    if (bind(p->fd, (struct sockaddr *)&sll, sizeof(sll)) != 0) {
        mmtls_errf(err, err_cap, "%s: cannot bind AF_PACKET socket: %s", ifn, strerror(errno));
        e = MMTLS_E_IO;
        goto out_close_fd;
    }
    /* The socket for sends by reference: protocol 0, so it queues nothing it could receive. */
    p->txfd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    sll.sll_protocol = 0;
    if (p->txfd < 0 || bind(p->txfd, (struct sockaddr *)&sll, sizeof(sll)) != 0 ||
        (p->vnet_hdr && setopt_int(p->txfd, SOL_PACKET, PACKET_VNET_HDR, 1) != 0)) {
        mmtls_errf(err, err_cap, "%s: cannot set up the AF_PACKET send socket: %s", ifn,
                   strerror(errno));
        e = MMTLS_E_IO;
        goto out_close_fd;
    }
    /* Room for the frames sent by reference (not fatal: a full buffer drops and counts). */
    if (setopt_int(p->txfd, SOL_SOCKET, SO_SNDBUFFORCE, (int)AFP_SNDBUF) != 0) {
        (void)setopt_int(p->txfd, SOL_SOCKET, SO_SNDBUF, (int)AFP_SNDBUF);
    }
    /* PACKET_VNET_HDR is refused (EBUSY) once a ring exists: set it first. */
    if (p->vnet_hdr && setopt_int(p->fd, SOL_PACKET, PACKET_VNET_HDR, 1) != 0) {
        mmtls_errf(err, err_cap, "%s: PACKET_VNET_HDR: %s", ifn, strerror(errno));
        e = MMTLS_E_UNSUPPORTED;
        goto out_close_fd;
    }
    if (setopt_int(p->fd, SOL_PACKET, PACKET_VERSION, p->v2 ? TPACKET_V2 : TPACKET_V3) != 0) {
        mmtls_errf(err, err_cap, "%s: PACKET_VERSION TPACKET_V%d: %s", ifn, p->v2 ? 2 : 3,
                   strerror(errno));
        e = MMTLS_E_UNSUPPORTED;
        goto out_close_fd;
    }
    /* A slot the kernel cannot send (bad length, bad vnet header) is dropped and its slot made
     * available again, instead of stopping the ring with TP_STATUS_WRONG_FORMAT. */
    if (setopt_int(p->fd, SOL_PACKET, PACKET_LOSS, 1) != 0) {
        mmtls_errf(err, err_cap, "%s: PACKET_LOSS: %s", ifn, strerror(errno));
        e = MMTLS_E_UNSUPPORTED;
        goto out_close_fd;
    }

    /* RX ring: frame_size only matters to the kernel's sanity checks in V3 (frames are packed in
     * blocks); retire a partly filled block after AFP_RETIRE_TOV_MS. */
    rx.tp_block_size = p->rx_block_size;
    rx.tp_block_nr = p->rx_block_nr;
    if (p->v2) {
        /* V2: the first four fields are struct tpacket_req; the kernel reads only those */
        p->rx_per_block = p->rx_block_size / AFP_V2_FRAME_SIZE;
        p->rx_frame_nr = p->rx_per_block * p->rx_block_nr;
        rx.tp_frame_size = AFP_V2_FRAME_SIZE;
        rx.tp_frame_nr = p->rx_frame_nr;
    } else {
        rx.tp_frame_size = TPACKET_ALIGNMENT << 7; /* 2048: divides every allowed block size */
        rx.tp_frame_nr = (p->rx_block_size / rx.tp_frame_size) * p->rx_block_nr;
        rx.tp_retire_blk_tov = AFP_RETIRE_TOV_MS;
    }
    if (setsockopt(p->fd, SOL_PACKET, PACKET_RX_RING, &rx, sizeof(rx)) != 0) {
        mmtls_errf(err, err_cap, "%s: PACKET_RX_RING (%u x %u bytes): %s", ifn, rx.tp_block_nr,
                   rx.tp_block_size, strerror(errno));
        e = MMTLS_E_NOMEM;
        goto out_close_fd;
    }
    /* TX ring (TPACKET_V3 TX, Linux >= 4.11): the V3 TX ring is frame based like V2; the
     * block-retire fields must be zero.  Slots never straddle blocks, so blocks of 1 MiB hold
     * tx_per_block slots and the slot count is rounded up to whole blocks. */
    tx_per_block = AFP_TX_BLOCK_SIZE / tx_frame_size;
    tx.tp_block_size = AFP_TX_BLOCK_SIZE;
    tx.tp_block_nr = (tx_frame_nr + tx_per_block - 1) / tx_per_block;
    tx.tp_frame_size = tx_frame_size;
    tx.tp_frame_nr = tx.tp_block_nr * tx_per_block;
    if (setsockopt(p->fd, SOL_PACKET, PACKET_TX_RING, &tx, sizeof(tx)) != 0) {
        mmtls_errf(err, err_cap, "%s: PACKET_TX_RING (TPACKET_V%d, %u x %u bytes): %s", ifn,
                   p->v2 ? 2 : 3, tx.tp_frame_nr, tx.tp_frame_size, strerror(errno));
        e = MMTLS_E_NOMEM;
        goto out_close_fd;
    }
    rx_len = (size_t)rx.tp_block_size * rx.tp_block_nr;
    tx_len = (size_t)tx.tp_block_size * tx.tp_block_nr;
    p->map_len = rx_len + tx_len;
    p->map = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, p->fd, 0);
    if (p->map == MAP_FAILED) {
        p->map = NULL;
        mmtls_errf(err, err_cap, "%s: cannot map the packet rings (%zu bytes): %s", ifn, p->map_len,
                   strerror(errno));
        e = MMTLS_E_NOMEM;
        goto out_close_fd;
    }
    p->rx_ring = p->map;
    p->tx_ring = p->map + rx_len;
    p->tx_frame_size = tx.tp_frame_size;
    p->tx_frame_nr = tx.tp_frame_nr;
    p->tx_per_block = tx_per_block;

    /* A bridge port must not read back what it sends itself (nor what the host sends). */
    if (setopt_int(p->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1) != 0) {
        mmtls_errf(err, err_cap, "%s: PACKET_IGNORE_OUTGOING: %s", ifn, strerror(errno));
        e = MMTLS_E_UNSUPPORTED;
        goto out_unmap;
    }
    /* Promiscuous for as long as the socket lives (the kernel drops the membership on close). */
    mr.mr_ifindex = p->ifindex;
    mr.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(p->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) != 0) {
        mmtls_errf(err, err_cap, "%s: cannot set promiscuous mode: %s", ifn, strerror(errno));
        e = MMTLS_E_IO;
        goto out_unmap;
    }
    if (o->fanout_group != 0) {
        /* packet_mmap.rst: the low 16 bits are the group id, the high 16 the mode and flags. */
        uint32_t arg = fanout_id(o->fanout_group, p->ifindex) |
                       ((uint32_t)(PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG |
                                   PACKET_FANOUT_FLAG_IGNORE_OUTGOING)
                        << 16);
        int rc = setsockopt(p->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg));

        if (rc != 0 && errno == EINVAL) {
            /* a kernel older than the flag: rx_burst skips outgoing frames */
            arg &= ~((uint32_t)PACKET_FANOUT_FLAG_IGNORE_OUTGOING << 16);
            rc = setsockopt(p->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg));
        }
        if (rc != 0) {
            mmtls_errf(err, err_cap, "%s: PACKET_FANOUT group %d: %s", ifn, o->fanout_group,
                       strerror(errno));
            e = MMTLS_E_IO;
            goto out_unmap;
        }
    }
    *out = p;
    return 0;

out_unmap:
    munmap(p->map, p->map_len);
out_close_fd:
    if (p->txfd >= 0) {
        close(p->txfd);
    }
    close(p->fd);
out_free:
    free(p);
    return e;
}

void mmtls_afp_close(struct mmtls_afp *p)
{
    if (p == NULL) {
        return;
    }
    munmap(p->map, p->map_len);
    close(p->txfd);
    close(p->fd);
    free(p->txq_stage);
    free(p);
}

int mmtls_afp_fd(const struct mmtls_afp *p)
{
    return p->fd;
}

int mmtls_afp_tx_fd(const struct mmtls_afp *p)
{
    return p->txfd;
}

/* What both ring versions do with a received frame whose header (at hdr, hdr_al bytes long
 * when aligned; the sockaddr_ll follows it) passed the bounds checks: skip what must not be
 * forwarded, else describe it in *f.  Returns whether *f was filled. */
static bool rx_take(struct mmtls_afp *p, struct mmtls_afp_frame *f, const uint8_t *hdr,
                    uint32_t hdr_al, uint16_t mac, uint32_t snaplen, uint32_t len, uint32_t sec,
                    uint32_t nsec, uint32_t status, uint16_t tci)
{
    if (mac >= hdr_al + sizeof(struct sockaddr_ll)) {
        /* The sockaddr_ll right after the aligned header (packet_mmap.rst); the callers' bounds
         * checks keep it inside the block or slot. */
        const struct sockaddr_ll *sll = (const struct sockaddr_ll *)(const void *)(hdr + hdr_al);

        if (sll->sll_pkttype == PACKET_OUTGOING) {
            p->st.rx_outgoing++; /* a fanout group without FLAG_IGNORE_OUTGOING */
            return false;
        }
    }
    if (snaplen < len) {
        /* Larger than a ring block or slot: the kernel truncated it.  A bump in the wire must
         * not forward a cut frame; counted as a kernel-side drop. */
        p->st.rx_drops_kernel++;
        return false;
    }
    f->data = hdr + mac;
    f->len = snaplen;
    f->ts_us = (uint64_t)sec * 1000000u + nsec / 1000u;
    f->vnet = p->vnet_hdr ? f->data - AFP_VNET_LEN : NULL;
    f->vlan_valid = (status & TP_STATUS_VLAN_VALID) != 0;
    f->vlan_tci = f->vlan_valid ? tci : 0;
    p->st.rx_frames++;
    p->st.rx_bytes += snaplen;
    return true;
}

/* rx_burst of a frame ring (V2): slots from rx_tail + rx_nopen on, while the kernel has handed
 * them over. */
static int rx_burst_v2(struct mmtls_afp *p, struct mmtls_afp_frame *f, int max)
{
    int n = 0;

    while (n < max && p->rx_nopen < p->rx_frame_nr) {
        struct tpacket2_hdr *h = rx_slot(p, (p->rx_tail + p->rx_nopen) % p->rx_frame_nr);
        uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE); /* see rx_burst */

        if ((st & TP_STATUS_USER) == 0) {
            break;
        }
        p->rx_nopen++;
        /* tp_mac is 16 bits, less than the slot size */
        if (h->tp_snaplen > AFP_V2_FRAME_SIZE - h->tp_mac ||
            (p->vnet_hdr && h->tp_mac < AFP_VNET_LEN)) {
            MMTLS_DEBUG_ASSERT(0);
            continue; /* never hand out bytes outside the slot */
        }
        if (rx_take(p, f + n, (const uint8_t *)h, TPACKET_ALIGN(sizeof(*h)), h->tp_mac,
                    h->tp_snaplen, h->tp_len, h->tp_sec, h->tp_nsec, st, h->tp_vlan_tci)) {
            n++;
        }
    }
    return n;
}

int mmtls_afp_rx_burst(struct mmtls_afp *p, struct mmtls_afp_frame *f, int max)
{
    int n = 0;

    if (p->v2) {
        return rx_burst_v2(p, f, max);
    }

    while (n < max) {
        const struct tpacket3_hdr *h;
        uint8_t *blk;
        uint32_t off;

        if (p->rx_left == 0) {
            const struct tpacket_block_desc *bd;
            uint32_t idx;

            /* Every block is already ours: the caller has not called rx_done. */
            if (p->rx_nopen == p->rx_block_nr) {
                break;
            }
            idx = (p->rx_tail + p->rx_nopen) % p->rx_block_nr;
            bd = (const struct tpacket_block_desc *)(const void *)rx_block(p, idx);
            /* Acquire: pairs with the kernel's smp_wmb() before it sets TP_STATUS_USER
             * (prb_close_block / flush_dcache): the frames of the block are visible once
             * the status says the block is ours. */
            if ((__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) ==
                0) {
                break;
            }
            p->rx_nopen++;
            p->rx_left = bd->hdr.bh1.num_pkts;
            p->rx_next_off = bd->hdr.bh1.offset_to_first_pkt;
            continue; /* an empty block (never seen in practice) is simply released */
        }
        blk = rx_block(p, (p->rx_tail + p->rx_nopen - 1) % p->rx_block_nr);
        off = p->rx_next_off;
        h = (const struct tpacket3_hdr *)(const void *)(blk + off);
        /* The kernel wrote the block; still, never hand out bytes outside it. */
        if (off > p->rx_block_size - sizeof(*h) || h->tp_mac > p->rx_block_size - off ||
            h->tp_snaplen > p->rx_block_size - off - h->tp_mac ||
            (p->vnet_hdr && h->tp_mac < AFP_VNET_LEN)) {
            MMTLS_DEBUG_ASSERT(0);
            p->rx_left = 0; /* give up on the rest of this block */
            continue;
        }
        p->rx_left--;
        p->rx_next_off = off + h->tp_next_offset;
        if (p->rx_left != 0 && h->tp_next_offset == 0) {
            MMTLS_DEBUG_ASSERT(0);
            p->rx_left = 0;
        }
        if (rx_take(p, f + n, (const uint8_t *)h, TPACKET_ALIGN(sizeof(*h)), h->tp_mac,
                    h->tp_snaplen, h->tp_len, h->tp_sec, h->tp_nsec, h->tp_status,
                    h->hv1.tp_vlan_tci)) {
            n++;
        }
    }
    return n;
}

void mmtls_afp_rx_done(struct mmtls_afp *p)
{
    uint32_t n;

    if (p->v2) {
        for (uint32_t i = 0; i < p->rx_nopen; i++) {
            /* Release: as for a V3 block below. */
            __atomic_store_n(&rx_slot(p, p->rx_tail)->tp_status, TP_STATUS_KERNEL,
                             __ATOMIC_RELEASE);
            p->rx_tail = (p->rx_tail + 1) % p->rx_frame_nr;
        }
        p->rx_nopen = 0;
        return;
    }
    /* The newest open block stays ours while frames in it are still to be returned. */
    n = p->rx_left != 0 ? p->rx_nopen - 1 : p->rx_nopen;

    for (uint32_t i = 0; i < n; i++) {
        struct tpacket_block_desc *bd =
            (struct tpacket_block_desc *)(void *)rx_block(p, p->rx_tail);

        /* Release: our reads of the block's frames complete before the kernel may refill it
         * (the kernel reads the status without a barrier before writing into the block; the
         * store-release orders our loads of the frame bytes before it). */
        __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        p->rx_tail = (p->rx_tail + 1) % p->rx_block_nr;
        p->rx_nopen--;
    }
}

/* 16-bit virtio_net_hdr field in host order (see the header comment on vio_le). */
static uint16_t vnet_u16(const uint8_t *v, size_t off)
{
    uint16_t x;

    memcpy(&x, v + off, sizeof(x));
    return x;
}

static void vnet_put_u16(uint8_t *v, size_t off, uint16_t x)
{
    memcpy(v + off, &x, sizeof(x));
}

/* Writes what goes in front of a frame's data: the vnet header (when the port has one; offsets
 * moved by the tag when one is inserted) and, with a VLAN tag, the MAC addresses and the tag.
 * Returns its length; *skip is how many bytes of data it replaces (the MAC addresses). */
static uint32_t tx_header(const struct mmtls_afp *p, uint8_t *dst, const uint8_t *data,
                          const uint8_t *vnet, uint16_t vlan_tci, bool vlan_valid, uint32_t *skip)
{
    uint32_t n = 0;

    if (p->vnet_hdr) {
        if (vnet != NULL) {
            memcpy(dst, vnet, AFP_VNET_LEN);
        } else {
            memset(dst, 0, AFP_VNET_LEN); /* VIRTIO_NET_HDR_GSO_NONE, no checksum request */
        }
        if (vlan_valid && vnet != NULL) {
            /* The tag goes in front of the L3 header: offsets counted from the frame start
             * move by 4 bytes. */
            struct virtio_net_hdr *vh = (struct virtio_net_hdr *)(void *)dst;
            size_t o_csum = offsetof(struct virtio_net_hdr, csum_start);
            size_t o_hlen = offsetof(struct virtio_net_hdr, hdr_len);

            if (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
                vnet_put_u16(dst, o_csum, (uint16_t)(vnet_u16(dst, o_csum) + AFP_VLAN_LEN));
            }
            if (vnet_u16(dst, o_hlen) != 0) {
                vnet_put_u16(dst, o_hlen, (uint16_t)(vnet_u16(dst, o_hlen) + AFP_VLAN_LEN));
            }
        }
        n = AFP_VNET_LEN;
    }
    *skip = 0;
    if (vlan_valid) {
        /* IEEE 802.1Q §9: TPID 0x8100 and the TCI go right after the two MAC addresses.  The
         * kernel does not report the original TPID here, so an 802.1ad (0x88a8) outer tag is
         * re-inserted as 0x8100. */
        memcpy(dst + n, data, AFP_ETH_ADDRS);
        dst[n + 12] = 0x81;
        dst[n + 13] = 0x00;
        dst[n + 14] = (uint8_t)(vlan_tci >> 8);
        dst[n + 15] = (uint8_t)vlan_tci;
        n += AFP_ETH_ADDRS + AFP_VLAN_LEN;
        *skip = AFP_ETH_ADDRS;
    }
    return n;
}

/* Checks a frame to send: MMTLS_E_INVAL / MMTLS_E_LIMIT (counted) or 0. */
static int tx_check(struct mmtls_afp *p, uint32_t len, bool vlan_valid)
{
    uint32_t need = (p->vnet_hdr ? AFP_VNET_LEN : 0) + (vlan_valid ? AFP_VLAN_LEN : 0);

    if (vlan_valid && len < AFP_ETH_ADDRS) {
        p->st.tx_errors++;
        return MMTLS_E_INVAL;
    }
    if (len > p->tx_frame_size - p->tx_data_off - need) {
        p->st.tx_errors++;
        return MMTLS_E_LIMIT;
    }
    return 0;
}

static void ring_flush(struct mmtls_afp *p);
static void txq_flush(struct mmtls_afp *p);

int mmtls_afp_tx(struct mmtls_afp *p, const uint8_t *data, uint32_t len, const uint8_t *vnet,
                 uint16_t vlan_tci, bool vlan_valid)
{
    uint8_t *slot = tx_slot(p, p->tx_head);
    uint32_t *stp = tx_status(p, slot);
    uint32_t status, hl, skip;
    uint8_t *dst;
    int rc = tx_check(p, len, vlan_valid);

    if (rc != 0) {
        return rc;
    }
    txq_flush(p); /* frames queued by reference go first */
    /* Acquire: pairs with the kernel's smp_wmb() in __packet_set_status(AVAILABLE) from the skb
     * destructor: the slot is no longer read by the kernel once we see it available. */
    status = __atomic_load_n(stp, __ATOMIC_ACQUIRE);
    if (status & TP_STATUS_WRONG_FORMAT) {
        /* Only without PACKET_LOSS; kept for safety: count it and reuse the slot. */
        p->st.tx_errors++;
    } else if (status != TP_STATUS_AVAILABLE) {
        p->st.tx_ring_full++;
        return MMTLS_E_LIMIT;
    }
    dst = slot + p->tx_data_off;
    hl = tx_header(p, dst, data, vnet, vlan_tci, vlan_valid, &skip);
    memcpy(dst + hl, data + skip, len - skip);
    /* tp_len counts the vnet header (tpacket_snd strips it) */
    if (p->v2) {
        struct tpacket2_hdr *h = (struct tpacket2_hdr *)(void *)slot;

        h->tp_len = hl + len - skip;
        h->tp_snaplen = 0;
    } else {
        struct tpacket3_hdr *h = (struct tpacket3_hdr *)(void *)slot;

        h->tp_len = hl + len - skip;
        h->tp_snaplen = 0;
        h->tp_next_offset = 0; /* V3 TX: variable sized slots are refused */
    }
    /* Release: the frame bytes and tp_len are visible before the kernel sees the request
     * (tpacket_snd reads the status, then the slot). */
    __atomic_store_n(stp, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
    p->tx_head = (p->tx_head + 1) % p->tx_frame_nr;
    p->tx_pending++;
    p->st.tx_frames++;
    p->st.tx_bytes += len + (vlan_valid ? AFP_VLAN_LEN : 0);
    return 0;
}

/* Queues data (borrowed until the flush) for the next sendmmsg(), out of ifindex (0: the port's
 * own interface). */
static void txq_put(struct mmtls_afp *p, int ifindex, const uint8_t *data, uint32_t len,
                    const uint8_t *vnet, uint16_t vlan_tci, bool vlan_valid)
{
    struct afp_txq_ent *q = &p->txq[p->txq_n];
    struct msghdr *mh = &p->txq_msg[p->txq_n].msg_hdr;
    uint32_t skip, hl = tx_header(p, q->hdr, data, vnet, vlan_tci, vlan_valid, &skip);

    q->iov[0].iov_base = q->hdr;
    q->iov[0].iov_len = hl;
    q->iov[1].iov_base = (void *)(uintptr_t)(data + skip); /* sent, never written */
    q->iov[1].iov_len = len - skip;
    memset(mh, 0, sizeof(*mh));
    mh->msg_iov = hl != 0 ? q->iov : q->iov + 1;
    mh->msg_iovlen = hl != 0 ? 2 : 1;
    if (ifindex != 0) {
        /* packet_snd takes the device from sll_ifindex and, with sll_protocol 0 on a SOCK_RAW
         * socket, the protocol from the frame's Ethernet header */
        memset(&q->to, 0, sizeof(q->to));
        q->to.sll_family = AF_PACKET;
        q->to.sll_ifindex = ifindex;
        mh->msg_name = &q->to;
        mh->msg_namelen = sizeof(q->to);
    }
    p->txq_n++;
    p->st.tx_frames++;
    p->st.tx_bytes += len + (vlan_valid ? AFP_VLAN_LEN : 0);
}

/* Checks a frame for the by-reference queue and makes room for it: 0, or the refusal. */
static int txq_prepare(struct mmtls_afp *p, uint32_t len, bool vlan_valid)
{
    int rc = tx_check(p, len, vlan_valid);

    if (rc != 0) {
        return rc;
    }
    ring_flush(p); /* frames already in the TX ring go first */
    if (p->txq_n == AFP_TXQ_MAX) {
        txq_flush(p);
    }
    return 0;
}

int mmtls_afp_tx_ref_dev(struct mmtls_afp *p, int ifindex, const uint8_t *data, uint32_t len,
                         const uint8_t *vnet, uint16_t vlan_tci, bool vlan_valid)
{
    int rc = txq_prepare(p, len, vlan_valid);

    if (rc != 0) {
        return rc;
    }
    txq_put(p, ifindex, data, len, vnet, vlan_tci, vlan_valid);
    return 0;
}

int mmtls_afp_tx_ref(struct mmtls_afp *p, const uint8_t *data, uint32_t len, const uint8_t *vnet,
                     uint16_t vlan_tci, bool vlan_valid)
{
    return mmtls_afp_tx_ref_dev(p, 0, data, len, vnet, vlan_tci, vlan_valid);
}

int mmtls_afp_tx_copy_dev(struct mmtls_afp *p, int ifindex, const uint8_t *data, uint32_t len,
                          const uint8_t *vnet, uint16_t vlan_tci, bool vlan_valid)
{
    int rc = txq_prepare(p, len, vlan_valid);
    uint8_t *dst;

    if (rc != 0) {
        return rc;
    }
    if (p->txq_stage == NULL) {
        p->txq_stage = malloc((size_t)AFP_TXQ_MAX * p->tx_frame_size);
        if (p->txq_stage == NULL) {
            p->st.tx_errors++;
            return MMTLS_E_NOMEM;
        }
    }
    dst = p->txq_stage + (size_t)p->txq_n * p->tx_frame_size; /* free again after the flush */
    memcpy(dst, data, len);
    txq_put(p, ifindex, dst, len, vnet, vlan_tci, vlan_valid);
    return 0;
}

static void ring_flush(struct mmtls_afp *p)
{
    if (p->tx_pending == 0) {
        return;
    }
    p->tx_pending = 0;
    /* MSG_DONTWAIT: tpacket_snd sends every TP_STATUS_SEND_REQUEST slot and returns without
     * waiting for the skbs to be freed.  ENOBUFS (qdisc drop) and EAGAIN are counted, never
     * retried: the frames are lost, as on a congested wire. */
    if (sendto(p->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno != EAGAIN) {
        p->st.tx_errors++;
    }
}

/* One sendmmsg() for the queued frames.  A frame the kernel refuses is counted and skipped (a
 * full send buffer as ring full, anything else as an error), never retried: lost as on a
 * congested wire.  At most txq_n calls. */
static void txq_flush(struct mmtls_afp *p)
{
    uint32_t done = 0;

    while (done < p->txq_n) {
        int r = sendmmsg(p->txfd, p->txq_msg + done, p->txq_n - done, MSG_DONTWAIT);

        if (r > 0) {
            done += (uint32_t)r;
            continue;
        }
        if (errno == EAGAIN || errno == ENOBUFS) {
            p->st.tx_ring_full++;
        } else {
            p->st.tx_errors++;
        }
        done++; /* the frame that failed */
    }
    p->txq_n = 0;
}

void mmtls_afp_tx_flush(struct mmtls_afp *p)
{
    ring_flush(p);
    txq_flush(p);
}

void mmtls_afp_get_stats(const struct mmtls_afp *p, struct mmtls_afp_stats *st)
{
    struct tpacket_stats_v3 ks = {0};
    socklen_t kl = sizeof(ks);
    /* PACKET_STATISTICS reads and resets the kernel counters, so they are accumulated in the
     * port; the port is never const-qualified storage (mmtls_afp_open allocates it). */
    struct mmtls_afp *mp = (struct mmtls_afp *)(uintptr_t)p;

    if (getsockopt(p->fd, SOL_PACKET, PACKET_STATISTICS, &ks, &kl) == 0) {
        mp->st.rx_drops_kernel += ks.tp_drops;
    }
    *st = p->st;
}
