/* io — packet sources and sinks.  This issue: a reader for pcap and pcapng files (from a path
 * or standard input), including pcapng Decryption Secrets Blocks.  Knows nothing about TLS.
 */
#ifndef MMTLS_IO_H
#define MMTLS_IO_H

#include <stdio.h>

#include "util/util.h"

/* A packet as read from a source; data is borrowed until the next call into the source. */
struct mmtls_io_pkt {
    const uint8_t *data;
    uint32_t caplen, origlen;
    uint64_t ts_us;
    int linktype;   /* pcap LINKTYPE_* of the interface the packet came from */
    uint32_t ifidx; /* pcapng interface id (0 for pcap) */
};

struct mmtls_pcap_reader;

/* Called for each pcapng Decryption Secrets Block (RFC draft-ietf-opsawg-pcapng §4.7) before
 * the packets that follow it.  secrets_type 0x544c534b ("TLSK") carries NSS key log text. */
typedef void (*mmtls_pcap_dsb_cb)(void *ud, uint32_t secrets_type, const uint8_t *p, size_t len);

#define MMTLS_PCAPNG_SECRETS_TLS 0x544c534bu
#define MMTLS_PCAP_MAX_SNAPLEN (256u * 1024u) /* larger packet records are malformed */
#define MMTLS_PCAPNG_MAX_BLOCK (16u * 1024u * 1024u)

/* Opens a classic pcap (either byte order, micro- or nanosecond) or pcapng file; path "-" reads
 * standard input.  On failure returns a negative code and a one-line message in err. */
MMTLS_MUST_USE int mmtls_pcap_open(struct mmtls_pcap_reader **out, const char *path,
                                   mmtls_pcap_dsb_cb dsb_cb, void *dsb_ud, char *err,
                                   size_t err_cap);

/* Same over an open stream (read sequentially, never seeked: a pipe or fmemopen works).  On
 * success the reader owns fp and mmtls_pcap_close closes it; on failure the caller still owns
 * it.  `name` (may be NULL) prefixes error messages and must outlive the reader. */
MMTLS_MUST_USE int mmtls_pcap_open_fp(struct mmtls_pcap_reader **out, FILE *fp, const char *name,
                                      mmtls_pcap_dsb_cb dsb_cb, void *dsb_ud, char *err,
                                      size_t err_cap);

/* Next packet: 0 with *pkt filled; MMTLS_DECLINED at a clean end of file; a negative code for a
 * truncated or malformed file (message in err).  Unknown pcapng block types are skipped. */
MMTLS_MUST_USE int mmtls_pcap_next(struct mmtls_pcap_reader *r, struct mmtls_io_pkt *pkt, char *err,
                                   size_t err_cap);

void mmtls_pcap_close(struct mmtls_pcap_reader *r);

/* Pure parser of one pcapng block held in memory (used by the reader and the fuzz target). */
struct mmtls_pcapng_block {
    uint32_t type;
    uint32_t total_len;
    struct mmtls_slice body; /* between the length fields */
};

/* Parses the block at p (len bytes available), byte order given by `swapped` (true when the
 * section's byte order is not the host's, as told by its byte-order magic).  MMTLS_AGAIN with
 * *need when more bytes are needed, MMTLS_E_MALFORMED for a bad length (not a multiple of 4,
 * < 12, > MMTLS_PCAPNG_MAX_BLOCK, or trailing length mismatch). */
MMTLS_MUST_USE int mmtls_pcapng_block_parse(const uint8_t *p, size_t len, bool swapped,
                                            struct mmtls_pcapng_block *b, size_t *need);

/* ------------------------------------------------------------------------------------------ */
/* AF_PACKET port (inline mode): one interface of one worker, a memory-mapped RX ring (V3      */
/* blocks or V2 frames) and a TX ring (batched send).  With vnet_hdr, frames carry the kernel's */
/* struct virtio_net_hdr (GSO super-frames with unfinished checksums) in and out unchanged.     */

struct mmtls_afp;

struct mmtls_afp_opts {
    size_t sz;
    const char *ifname;
    bool vnet_hdr;          /* PACKET_VNET_HDR on RX and TX (keeps GSO/GRO frames intact) */
    int fanout_group;       /* 0: none; else PACKET_FANOUT id shared by the workers */
    uint32_t block_size;    /* RX ring block size (default 1 MiB) */
    uint32_t block_nr;      /* RX ring blocks (default 64) */
    uint32_t tx_frame_size; /* TX ring frame size (default 64 KiB + headers, for GSO frames) */
    uint32_t tx_frame_nr;   /* TX ring frames (default 512) */
    /* TPACKET_V2 rings instead of V3: every frame is handed over (and the reader woken) as it
     * arrives, where V3 hands over whole blocks, a partly filled one only when its retire timer
     * fires (one jiffy or more: 4-8 ms at HZ=250).  Each frame then costs a wake-up, so V3
     * costs less CPU per byte under load.  mmtlsd uses frames by default (--afp-ring) and always
     * on the fast path's divert port; block_size / block_nr still size the RX ring. */
    bool frame_ring;
};

/* A received frame: data borrowed until mmtls_afp_rx_done(). */
struct mmtls_afp_frame {
    const uint8_t *data;
    uint32_t len;
    uint64_t ts_us;
    const uint8_t *vnet; /* 10-byte struct virtio_net_hdr when vnet_hdr, else NULL */
    uint16_t vlan_tci;   /* VLAN tag stripped by the kernel (TP_STATUS_VLAN_VALID), else 0 */
    bool vlan_valid;
};

struct mmtls_afp_stats {
    uint64_t rx_frames, rx_bytes, rx_drops_kernel, tx_frames, tx_bytes, tx_errors, tx_ring_full;
    uint64_t rx_outgoing; /* frames sent on the interface read back (skipped) */
};

MMTLS_MUST_USE int mmtls_afp_open(struct mmtls_afp **out, const struct mmtls_afp_opts *o, char *err,
                                  size_t err_cap);
void mmtls_afp_close(struct mmtls_afp *p);
/* The fd to poll for readability (it also sends the TX ring). */
int mmtls_afp_fd(const struct mmtls_afp *p);
/* The fd that sends the frames queued by reference (for socket options such as
 * PACKET_QDISC_BYPASS). */
int mmtls_afp_tx_fd(const struct mmtls_afp *p);
/* Up to max frames from the current RX block(s) or slots; 0 when none is ready (never
 * blocks). */
int mmtls_afp_rx_burst(struct mmtls_afp *p, struct mmtls_afp_frame *f, int max);
/* Gives the frames of the last burst back to the kernel. */
void mmtls_afp_rx_done(struct mmtls_afp *p);
/* Queues a frame for sending (copies it into the TX ring; vnet may be NULL, vlan re-inserted
 * when vlan_valid).  MMTLS_E_LIMIT when the ring is full (counted). */
MMTLS_MUST_USE int mmtls_afp_tx(struct mmtls_afp *p, const uint8_t *data, uint32_t len,
                                const uint8_t *vnet, uint16_t vlan_tci, bool vlan_valid);
/* Queues a frame for sending by reference: data must stay valid until mmtls_afp_tx_flush()
 * (e.g. a received frame, flushed before mmtls_afp_rx_done()); the kernel copies it once.
 * Frames queued with mmtls_afp_tx and mmtls_afp_tx_ref leave in call order. */
MMTLS_MUST_USE int mmtls_afp_tx_ref(struct mmtls_afp *p, const uint8_t *data, uint32_t len,
                                    const uint8_t *vnet, uint16_t vlan_tci, bool vlan_valid);
/* As mmtls_afp_tx_ref, out of another interface (ifindex; 0: the port's own).  The fast path
 * sends this way straight to its ports. */
MMTLS_MUST_USE int mmtls_afp_tx_ref_dev(struct mmtls_afp *p, int ifindex, const uint8_t *data,
                                        uint32_t len, const uint8_t *vnet, uint16_t vlan_tci,
                                        bool vlan_valid);
/* As mmtls_afp_tx_ref_dev for data that does not outlive the call: copied first into one of the
 * port's staging slots (allocated at first use), free again after the flush. */
MMTLS_MUST_USE int mmtls_afp_tx_copy_dev(struct mmtls_afp *p, int ifindex, const uint8_t *data,
                                         uint32_t len, const uint8_t *vnet, uint16_t vlan_tci,
                                         bool vlan_valid);
/* Kicks the kernel to send what is queued (both ways). */
void mmtls_afp_tx_flush(struct mmtls_afp *p);
void mmtls_afp_get_stats(const struct mmtls_afp *p, struct mmtls_afp_stats *st);

/* ------------------------------------------------------------------------------------------ */
/* AF_XDP port (inline mode): one AF_XDP socket on one queue of one interface, with its own     */
/* UMEM, or (mmtls_xdp_open_pair) one UMEM shared by the two ports of a worker, so that a frame */
/* can be forwarded by descriptor (mmtls_xdp_forward).  Frames are single buffers of at        */
/* most one UMEM frame (frame_size - 256 bytes of XDP headroom): no GSO super-frames, no       */
/* virtio_net_hdr, complete checksums; a larger frame is dropped by the kernel and counted     */
/* (rx_drops_kernel), never truncated.  Without libxdp at build time every call fails with     */
/* MMTLS_E_UNSUPPORTED.  Documentation/networking/af_xdp.rst describes the rings.              */

struct mmtls_xdp;
struct mmtls_xdp_prog;

enum mmtls_xdp_mode {
    MMTLS_XDP_MODE_AUTO = 0, /* zero-copy when the driver supports it, else copy */
    MMTLS_XDP_MODE_COPY,     /* XDP_COPY (veth, generic XDP) */
    MMTLS_XDP_MODE_ZEROCOPY, /* XDP_ZEROCOPY: fails when the driver cannot */
};

struct mmtls_xdp_opts {
    size_t sz;
    const char *ifname;
    uint32_t queue_id;
    enum mmtls_xdp_mode mode;
    uint32_t frame_size; /* UMEM frame: 2048 or 4096 (default 4096) */
    uint32_t frame_nr;   /* UMEM frames, a power of two >= 64 (default 4096): half RX, half TX;
                          * a pair's UMEM has the frames of both ports */
    /* NULL: libxdp loads its default program (redirect by RX queue into its xsks map) with the
     * first socket on the interface and removes it with the last.  Else the socket is put into
     * this program's map at queue_id (mmtls_xdp_prog_attach). */
    const struct mmtls_xdp_prog *prog; /* borrowed: must outlive the port */
};

/* A received frame: data borrowed (it points into the UMEM) until mmtls_xdp_rx_done() or
 * mmtls_xdp_forward(). */
struct mmtls_xdp_frame {
    const uint8_t *data;
    uint32_t len;
    uint64_t ts_us; /* wall clock when the burst was taken (AF_XDP carries no timestamp) */
    uint64_t addr;  /* for mmtls_xdp_forward: the frame's UMEM address */
    uint32_t slot;  /* for mmtls_xdp_forward: its place in the burst */
};

struct mmtls_xdp_stats {
    uint64_t rx_frames, rx_bytes;
    uint64_t rx_drops_kernel; /* XDP_STATISTICS rx_dropped (too large, ...) + rx_ring_full */
    uint64_t rx_fill_empty;   /* the kernel found the fill ring empty */
    uint64_t tx_frames, tx_bytes, tx_errors;
    uint64_t tx_ring_full;  /* no free UMEM frame or TX descriptor: frame not sent */
    uint64_t tx_kicks;      /* sendto() wake-ups */
    uint64_t tx_fwd_frames; /* of tx_frames: forwarded by descriptor (no copy) */
    bool zerocopy;          /* the socket runs in zero-copy mode */
    bool shared_umem;       /* the UMEM is shared with the other port of a pair */
    /* The UMEM's frames by place (a pair's ports report the same numbers): they add up to
     * umem_frames; frame_errors counts refused moves (a frame in two places: a bug). */
    uint32_t umem_frames, frames_free, frames_fill, frames_rx, frames_tx;
    uint64_t frame_errors;
};

/* The program that redirects an interface's frames into AF_XDP sockets by RX queue (own
 * program, loaded without bpffs; attached in native mode, else generic).  Frames of a queue
 * without a socket go to the kernel stack (XDP_PASS), as with libxdp's default program. */
MMTLS_MUST_USE int mmtls_xdp_prog_attach(struct mmtls_xdp_prog **out, const char *ifname, char *err,
                                         size_t err_cap);
/* Detaches the program (if still ours) and frees it; NULL is a no-op. */
void mmtls_xdp_prog_detach(struct mmtls_xdp_prog *prog);
/* Number of RX queues of ifname (ETHTOOL_GCHANNELS: rx + combined; 1 when not reported). */
MMTLS_MUST_USE int mmtls_xdp_queue_count(const char *ifname, uint32_t *n, char *err,
                                         size_t err_cap);

/* A queue still bound to another AF_XDP socket is retried for up to 3 s (the kernel unbinds a
 * closed socket's queue later, on a workqueue), then refused with MMTLS_E_CONFLICT. */
MMTLS_MUST_USE int mmtls_xdp_open(struct mmtls_xdp **out, const struct mmtls_xdp_opts *o, char *err,
                                  size_t err_cap);
/* Two ports on one UMEM (XDP_SHARED_UMEM; the second takes the first's mode): both must be
 * used from one thread; either may be closed first.  When the second device cannot share it
 * (a zero-copy first port, a copy-only second), each port gets its own UMEM (stats:
 * shared_umem false) and mmtls_xdp_forward copies. */
MMTLS_MUST_USE int mmtls_xdp_open_pair(struct mmtls_xdp *out[2], const struct mmtls_xdp_opts o[2],
                                       char *err, size_t err_cap);
void mmtls_xdp_close(struct mmtls_xdp *p);
/* The fd to poll for readability. */
int mmtls_xdp_fd(const struct mmtls_xdp *p);
/* Up to max frames from the RX ring; 0 when none is ready (never blocks).  At most one burst
 * may be outstanding: call mmtls_xdp_rx_done() before the next. */
int mmtls_xdp_rx_burst(struct mmtls_xdp *p, struct mmtls_xdp_frame *f, int max);
/* Gives the frames of the last burst back to the kernel (fill ring). */
void mmtls_xdp_rx_done(struct mmtls_xdp *p);
/* Queues a frame for sending (copied into a free UMEM frame; completions reaped as needed).
 * MMTLS_E_LIMIT when no frame or descriptor is free or the frame does not fit (counted). */
MMTLS_MUST_USE int mmtls_xdp_tx(struct mmtls_xdp *p, const uint8_t *data, uint32_t len);
/* Queues frame f of from's current burst, unchanged (f->len bytes), for sending out of `to`
 * by its address: no copy when the ports share a UMEM (else as mmtls_xdp_tx).  The frame then
 * belongs to to's TX path (do not touch f->data any more) and returns to the free frames when
 * the kernel completes it.  MMTLS_E_LIMIT when to's tx ring is full (counted; the frame stays
 * lent: flush and retry, or leave it to mmtls_xdp_rx_done); MMTLS_E_INVAL when f is not a
 * frame of the burst or was forwarded already. */
MMTLS_MUST_USE int mmtls_xdp_forward(struct mmtls_xdp *from, struct mmtls_xdp *to,
                                     const struct mmtls_xdp_frame *f);
/* Publishes what is queued and wakes the kernel when it asks for it (XDP_USE_NEED_WAKEUP). */
void mmtls_xdp_tx_flush(struct mmtls_xdp *p);
void mmtls_xdp_get_stats(const struct mmtls_xdp *p, struct mmtls_xdp_stats *st);

/* ------------------------------------------------------------------------------------------ */
/* DPDK port (inline mode, mmtlsd --io dpdk): RX/TX queue q of a DPDK ethdev, used by worker q. */
/* The process sets DPDK up once (mmtls_dpdk_setup: EAL, devices started with one queue pair   */
/* per worker, an mbuf pool per worker shared by its queues on every device), each worker opens */
/* its queue of each device and polls it (no file descriptor to wait on).  Frames are single   */
/* mbufs: no scatter, no offloads, checksums complete; a frame longer than the mbuf is dropped */
/* and counted by the device (net_af_packet truncates it: its frame size follows the MTU).     */
/* Without libdpdk at build time every call fails with MMTLS_E_UNSUPPORTED.                     */

struct mmtls_dpdk;

#define MMTLS_DPDK_MAX_DEVS 8
#define MMTLS_DPDK_MAX_QUEUES 64

struct mmtls_dpdk_setup_opts {
    size_t sz;
    /* eal_args NULL: names are Linux interfaces, each becomes a net_af_packet vdev (qpairs =
     * nqueues, frame size from its MTU) in an EAL without hugepages or PCI.  Else eal_args
     * (whitespace-separated) are the EAL arguments, used as given, and names are ethdev names
     * or decimal port ids. */
    const char *const *names;
    int nnames;       /* 1..MMTLS_DPDK_MAX_DEVS */
    uint16_t nqueues; /* queue pairs per device = workers, 1..MMTLS_DPDK_MAX_QUEUES */
    const char *eal_args;
    const char *prog; /* argv[0] of the EAL (NULL: "mmtls") */
};

/* Initialises the EAL (once per process: MMTLS_E_CONFLICT after a successful call; the calling
 * thread's CPU affinity is kept; DPDK logs go to stderr), configures and starts the devices:
 * promiscuous, and with nqueues > 1 symmetric Toeplitz RSS (key 0x6d5a repeated: both
 * directions of a flow hash alike) when the device hashes, else its own spreading (e.g.
 * net_af_packet's PACKET_FANOUT_HASH, symmetric).  ports[i] receives names[i]'s port id. */
MMTLS_MUST_USE int mmtls_dpdk_setup(const struct mmtls_dpdk_setup_opts *o, uint16_t *ports,
                                    char *err, size_t err_cap);
/* After every port is closed: logs the devices' counters, stops and closes them, frees the
 * pools, releases the EAL.  A no-op without a setup. */
void mmtls_dpdk_teardown(void);
/* A thread that uses ports registers with the EAL (an lcore id: mempool caches); 0 or
 * MMTLS_E_LIMIT. */
MMTLS_MUST_USE int mmtls_dpdk_thread_register(void);
void mmtls_dpdk_thread_unregister(void);

struct mmtls_dpdk_opts {
    size_t sz;
    uint16_t port;    /* from mmtls_dpdk_setup */
    uint16_t queue;   /* the worker */
    const char *name; /* for messages (may be NULL) */
};

/* A received frame: data borrowed (it points into an mbuf) until mmtls_dpdk_rx_done(). */
struct mmtls_dpdk_frame {
    const uint8_t *data;
    uint32_t len;
    uint64_t ts_us; /* wall clock when the burst was taken */
};

struct mmtls_dpdk_stats {
    uint64_t rx_frames, rx_bytes;
    uint64_t rx_multiseg; /* chained mbufs (never with our setup): dropped */
    uint64_t tx_frames, tx_bytes;
    uint64_t tx_zero_copy; /* of tx_frames: received mbufs sent on unchanged */
    uint64_t tx_dropped;   /* the device took no more after retries, or no mbuf was free */
    /* the device's counters (all its queues): rte_eth_stats */
    uint64_t dev_imissed, dev_ierrors, dev_rx_nombuf, dev_oerrors;
};

MMTLS_MUST_USE int mmtls_dpdk_open(struct mmtls_dpdk **out, const struct mmtls_dpdk_opts *o,
                                   char *err, size_t err_cap);
/* Frees what is still queued or borrowed; NULL is a no-op. */
void mmtls_dpdk_close(struct mmtls_dpdk *p);
/* Up to max frames (<= 256); 0 when none is ready (never blocks).  At most one burst may be
 * outstanding: call mmtls_dpdk_rx_done() before the next. */
int mmtls_dpdk_rx_burst(struct mmtls_dpdk *p, struct mmtls_dpdk_frame *f, int max);
/* Frees the frames of the last burst that were not forwarded. */
void mmtls_dpdk_rx_done(struct mmtls_dpdk *p);
/* Sends frame i of in's outstanding burst out of `out` unchanged, without copying (the mbuf
 * moves to out's TX batch; same worker, so the same pool).  MMTLS_E_LIMIT when out's batch
 * stays full (counted; the frame is freed with the burst), MMTLS_E_INVAL for a bad i. */
MMTLS_MUST_USE int mmtls_dpdk_fwd(struct mmtls_dpdk *in, int i, struct mmtls_dpdk *out);
/* Queues a copy of a frame for sending.  MMTLS_E_LIMIT when no mbuf is free, the frame does
 * not fit one, or the batch stays full (counted). */
MMTLS_MUST_USE int mmtls_dpdk_tx(struct mmtls_dpdk *p, const uint8_t *data, uint32_t len);
/* Hands the batch to the device (bounded retries; what it refuses is dropped and counted). */
void mmtls_dpdk_tx_flush(struct mmtls_dpdk *p);
void mmtls_dpdk_get_stats(const struct mmtls_dpdk *p, struct mmtls_dpdk_stats *st);

/* ------------------------------------------------------------------------------------------ */
/* Kernel fast path (inline mode, mmtlsd --io fast; docs/FASTPATH.md): TC programs on both      */
/* bridged ports forward frames in the kernel and hand user space, through a divert veth pair, */
/* only the frames inspection needs.  User space reads the divert interface with an AF_PACKET */
/* port (vnet_hdr; frames carry a VLAN tag saying what they are) and sends out of the ports    */
/* themselves.  Without libbpf and clang at build time every call fails with                  */
/* MMTLS_E_UNSUPPORTED.                                                                        */

struct mmtls_fast;

/* What the kernel does with one side's frames (values shared with bpf/mmtls_fast_abi.h). */
enum mmtls_fast_mode {
    MMTLS_FASTM_INSPECT = 0, /* forward + copy; divert frames that complete a TLS record */
    MMTLS_FASTM_DIVERT = 1,  /* divert every frame */
    MMTLS_FASTM_SKIP = 2,    /* forward uncopied, follow the framing (resumable) */
    MMTLS_FASTM_BYPASS = 3,  /* forward uncopied (SYN/FIN/RST copied) */
    MMTLS_FASTM_BLOCK = 4,   /* drop */
};

/* The VLAN tag of frames on the divert interface: MMTLS_FAST_RX_VID(kind, arrival port). */
enum mmtls_fast_kind {
    MMTLS_FASTK_COPY = 1,           /* forwarded by the kernel already: inspect, never send */
    MMTLS_FASTK_DIVERT = 2,         /* only user space has it */
    MMTLS_FASTK_RESUME = 3,         /* diverted; a skip of its side ended (mmtls_fast_side_get) */
    MMTLS_FASTK_RESUME_LOST = 4,    /* diverted; a skip ended where the kernel lost the framing */
    MMTLS_FASTK_DIVERT_INORDER = 5, /* diverted; in order as the kernel saw it (as copies are) */
};
#define MMTLS_FAST_RX_VID(kind, port) (0xf00u | ((unsigned)(kind) << 1) | (unsigned)(port))

/* A flow as the engine's flow table keys it: endpoint 0 is the smaller (address, port). */
struct mmtls_fast_flowkey {
    uint8_t ip_version;
    uint8_t addr[2][16];
    uint16_t port[2];
};

struct mmtls_fast_opts {
    size_t sz;
    const char *ifname[2];   /* the bridged ports */
    const char *divert_name; /* divert veth to create (its peer is NAME + "p"); NULL: mmfdPID */
    uint32_t rps_cpus;       /* CPUs (bit k: CPU k) for the ports' RPS; 0: every online CPU */
};

/* The kernel's framing of one side (endpoint as sender) of a flow. */
struct mmtls_fast_side_info {
    uint32_t resume_seq;   /* the last skip ended here (a record header, or the stream end) */
    uint32_t resume_nskip; /* records skipped whole before it */
    uint32_t fwd_end;      /* end of the data the kernel forwarded (valid: fwd_valid) */
    bool fwd_valid;
    bool resume_lost;
    bool valid, lost;
    uint64_t skipped_bytes, copied_bytes;
};

struct mmtls_fast_stats {
    uint64_t fwd, fwd_bytes, copy, copy_bytes, divert, divert_bytes, drop, resume, lost, other,
        race, rearm, kskip;
};

/* Creates the divert veth pair, loads and attaches the program (TC ingress of both ports). */
MMTLS_MUST_USE int mmtls_fast_open(struct mmtls_fast **out, const struct mmtls_fast_opts *o,
                                   char *err, size_t err_cap);
/* Detaches, deletes the divert pair, frees; NULL is a no-op. */
void mmtls_fast_close(struct mmtls_fast *f);
/* The interface user space reads diverted frames from (it sends out of the ports themselves:
 * mmtls_fast_port_ifindex). */
const char *mmtls_fast_divert_ifname(const struct mmtls_fast *f);
/* The interface index of port 0 or 1 (what user space sends its frames out of). */
int mmtls_fast_port_ifindex(const struct mmtls_fast *f, int port);
/* Re-arming a side whose framing the kernel lost: user space has every byte before end_seq
 * and the next record header starts at hdr_seq; gen != 0 (a new value for each re-arm). */
struct mmtls_fast_rearm {
    uint32_t gen, end_seq, hdr_seq;
};

/* Sets a flow's modes (by endpoint index of the sender), generations and wire budgets (bytes of
 * application-data records the kernel copies from the first frame of a new generation before
 * it skips by itself; 0: none); rearm (NULL: none) by endpoint too. */
MMTLS_MUST_USE int mmtls_fast_set(struct mmtls_fast *f, const struct mmtls_fast_flowkey *k,
                                  const uint8_t mode[2], const uint32_t gen[2],
                                  const uint32_t budget[2], const struct mmtls_fast_rearm *rearm);
/* Forgets a flow (both maps). */
void mmtls_fast_del(struct mmtls_fast *f, const struct mmtls_fast_flowkey *k);
/* The kernel's framing state of endpoint `side`'s stream; MMTLS_E_NOTFOUND when unknown. */
MMTLS_MUST_USE int mmtls_fast_side_get(struct mmtls_fast *f, const struct mmtls_fast_flowkey *k,
                                       int side, struct mmtls_fast_side_info *out);
void mmtls_fast_get_stats(const struct mmtls_fast *f, struct mmtls_fast_stats *st);

#endif
