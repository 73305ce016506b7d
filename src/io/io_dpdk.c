/* io_dpdk — inline packet port over DPDK: RX/TX queue q of an ethdev, polled by worker q.
 *
 * Set-up (mmtls_dpdk_setup, once per process, from the main thread):
 *   - EAL.  By default for net_af_packet vdevs over Linux interfaces, without hugepages
 *     (--no-huge: anonymous memory; IOVA as VA, fine for a vdev that copies), without PCI,
 *     telemetry or shared files (--no-shconf: no multi-process; instances run side by side).
 *     For real NICs the caller gives the EAL arguments (hugepages, -a PCI, -l ...).
 *   - one mbuf pool per worker ("share nothing"): worker q's RX queues on every device fill
 *     from pool q, and the frames it sends come from it, so an mbuf received on one device
 *     can be sent on the other without a copy and freed back to the same pool.
 *   - per device, nqueues RX/TX queue pairs, promiscuous.  Several queues: a flow's worker is
 *     its RX queue, so both directions of a flow must reach the same queue.  A NIC that hashes
 *     (RSS) gets Toeplitz with the key 0x6d5a repeated: the key is periodic in 16 bits, so
 *     swapping source and destination (addresses, then ports) leaves the hash unchanged (Woo
 *     and Park, "Scalable TCP Session Monitoring with Symmetric Receive-side Scaling", 2012).
 *     net_af_packet does not hash: its queues are the members of a PACKET_FANOUT_HASH group
 *     (the kernel's flow hash is symmetric, and queue k is member k on both interfaces).
 *
 * net_af_packet (DPDK 22.11) copies each frame between its TPACKET_V2 rings and mbufs, with no
 * virtio_net_hdr: GRO, GSO/TSO and checksum offload must be off on the path (a GSO frame would
 * be truncated to the ring's frame size, a CHECKSUM_PARTIAL one sent with an unfinished
 * checksum).  A frame longer than the ring's frame is truncated by the kernel (tp_snaplen), so
 * the frame size is chosen from the interface's MTU (+ 2 VLAN tags).  VLAN tags the kernel
 * strips are put back by the driver (no VLAN_STRIP offload): frames carry their tags inline.
 * Its fanout group sets PACKET_FANOUT_FLAG_ROLLOVER: a full ring spills frames to another
 * queue (worker) — overload only.
 *
 * The EAL is process-wide state, so is this file's (the devices, the pools): set up once by
 * the main thread before the workers start, torn down after they end.
 */
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io/io.h"

#ifdef MMTLS_HAVE_DPDK

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#define DPDK_MAX_ARGS 64
#define DPDK_ARGS_CAP 4096
#define DPDK_BURST_MAX 256
#define DPDK_TX_BATCH 512
#define DPDK_TX_RETRIES 16
#define DPDK_RX_DESC 1024
#define DPDK_TX_DESC 1024
#define DPDK_POOL_CACHE 256
#define DPDK_POOL_MBUFS 8191u   /* 2^n - 1: the pool's ring is 2^n */
#define DPDK_MBUF_OVERHEAD 320u /* struct rte_mbuf + headroom + mempool header, rounded up */
#define DPDK_RSS_KEY_MAX 64
/* net_af_packet: bytes of each queue's RX ring (and as much for TX: one tpacket_req for both).
 * Large, as io_afpacket's: a worker descheduled on a busy host must not let it fill, or the
 * fanout's ROLLOVER flag sends frames of its flows to another worker. */
#define DPDK_AFP_RING_BYTES (32u << 20)
#define DPDK_AFP_HDR 80u  /* TPACKET_V2 header + sockaddr_ll, aligned (tp_net) */
#define DPDK_AFP_VLANS 8u /* two VLAN tags */

/* The devices and pools of the process (see the file comment). */
static struct {
    bool eal;                                        /* rte_eal_init succeeded */
    int ndev;                                        /* started devices */
    uint16_t dev[MMTLS_DPDK_MAX_DEVS];               /* their port ids */
    bool promisc[MMTLS_DPDK_MAX_DEVS];               /* we switched promiscuous mode on */
    char dev_name[MMTLS_DPDK_MAX_DEVS][64];          /* for the counters' log line */
    struct rte_mempool *pool[MMTLS_DPDK_MAX_QUEUES]; /* owned: worker q's mbufs */
} g;

struct mmtls_dpdk {
    uint16_t port, queue;
    struct rte_mempool *pool;            /* borrowed: the worker's (g.pool) */
    struct rte_mbuf *rx[DPDK_BURST_MAX]; /* the outstanding burst; NULL once forwarded */
    int nrx;
    struct rte_mbuf *tx[DPDK_TX_BATCH]; /* owned until handed to the device */
    int ntx;
    struct mmtls_dpdk_stats st;
    char name[64];
};

static uint64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* net_af_packet's ring frame for an interface: the MTU plus Ethernet and two VLAN headers
 * plus the TPACKET_V2 header, as a power of two >= 2048 (so frames tile the blocks). */
static int afp_frame_size(const char *ifname, uint32_t *framesz, char *err, size_t err_cap)
{
    struct ifreq ifr = {0};
    uint32_t need, f = 2048;
    int fd, rc;

    if (strlen(ifname) >= sizeof(ifr.ifr_name) || strpbrk(ifname, ",= \t") != NULL) {
        mmtls_errf(err, err_cap, "--io dpdk: bad interface name '%s'", ifname);
        return MMTLS_E_INVAL;
    }
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        mmtls_errf(err, err_cap, "socket: %s", strerror(errno));
        return MMTLS_E_IO;
    }
    memcpy(ifr.ifr_name, ifname, strlen(ifname));
    rc = ioctl(fd, SIOCGIFMTU, &ifr);
    close(fd);
    if (rc != 0) {
        mmtls_errf(err, err_cap, "%s: %s", ifname, strerror(errno));
        return MMTLS_E_IO;
    }
    need = (uint32_t)ifr.ifr_mtu + 14u + DPDK_AFP_VLANS + DPDK_AFP_HDR;
    while (f < need && f < 65536u)
        f <<= 1;
    if (f < need || f + RTE_PKTMBUF_HEADROOM > UINT16_MAX) {
        mmtls_errf(err, err_cap, "%s: MTU %d too large for net_af_packet", ifname, ifr.ifr_mtu);
        return MMTLS_E_LIMIT;
    }
    *framesz = f;
    return 0;
}

/* Splits s (copied into buf) on blanks into argv after the argv[0] already there. */
static int split_args(const char *s, char *buf, size_t cap, char **argv, int *argc, char *err,
                      size_t err_cap)
{
    char *save = NULL, *t;

    if (strlen(s) >= cap) {
        mmtls_errf(err, err_cap, "--dpdk-args: longer than %zu bytes", cap - 1);
        return MMTLS_E_LIMIT;
    }
    memcpy(buf, s, strlen(s) + 1);
    for (t = strtok_r(buf, " \t\n", &save); t != NULL; t = strtok_r(NULL, " \t\n", &save)) {
        if (*argc >= DPDK_MAX_ARGS - 1) {
            mmtls_errf(err, err_cap, "--dpdk-args: more than %d words", DPDK_MAX_ARGS - 2);
            return MMTLS_E_LIMIT;
        }
        argv[(*argc)++] = t;
    }
    return 0;
}

/* Appends a formatted argument (stored in buf at *used) to argv. */
static int add_arg(char *buf, size_t *used, char **argv, int *argc, const char *fmt, ...)
    MMTLS_PRINTF(5, 6);

static int add_arg(char *buf, size_t *used, char **argv, int *argc, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*argc >= DPDK_MAX_ARGS - 1 || *used >= DPDK_ARGS_CAP)
        return MMTLS_E_LIMIT;
    va_start(ap, fmt);
    n = vsnprintf(buf + *used, DPDK_ARGS_CAP - *used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= DPDK_ARGS_CAP - *used)
        return MMTLS_E_LIMIT;
    argv[(*argc)++] = buf + *used;
    *used += (size_t)n + 1;
    return 0;
}

static const char *dpdk_log_level(void)
{
    switch (mmtls_log_get_level()) {
    case MMTLS_LOG_ERR: return "--log-level=error";
    case MMTLS_LOG_DEBUG: return "--log-level=info";
    default: return "--log-level=warning";
    }
}

/* The EAL arguments for net_af_packet vdevs over the interfaces o->names. */
static int afp_eal_args(const struct mmtls_dpdk_setup_opts *o, char *buf, char **argv, int *argc,
                        char *err, size_t err_cap)
{
    size_t used = 0;
    uint64_t pool_bytes = 0;
    uint32_t fmax = 2048;
    cpu_set_t cpus;
    int cpu = 0, rc = 0;

    CPU_ZERO(&cpus);
    if (pthread_getaffinity_np(pthread_self(), sizeof(cpus), &cpus) == 0) {
        while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &cpus))
            cpu++;
    }
    for (int i = 0; i < o->nnames && rc == 0; i++) {
        uint32_t f, blocksz, framecnt;
        rc = afp_frame_size(o->names[i], &f, err, err_cap);
        if (rc != 0)
            return rc;
        fmax = f > fmax ? f : fmax;
        blocksz = f > 4096u ? f : 4096u;
        framecnt = DPDK_AFP_RING_BYTES / f;
        rc = add_arg(buf, &used, argv, argc,
                     "--vdev=net_af_packet%d,iface=%s,qpairs=%u,framesz=%u,blocksz=%u,"
                     "framecnt=%u",
                     i, o->names[i], (unsigned)o->nqueues, f, blocksz, framecnt);
    }
    /* Memory: the pools (mmtls_dpdk_setup sizes them alike) and 64 MiB for the EAL. */
    pool_bytes = (uint64_t)DPDK_POOL_MBUFS * (fmax + DPDK_MBUF_OVERHEAD) * 5 / 4;
    if (rc == 0)
        rc = add_arg(buf, &used, argv, argc, "-m");
    if (rc == 0)
        rc = add_arg(buf, &used, argv, argc, "%llu",
                     (unsigned long long)(64u + o->nqueues * (pool_bytes >> 20) + o->nqueues));
    if (rc == 0)
        rc = add_arg(buf, &used, argv, argc, "-l");
    if (rc == 0)
        rc = add_arg(buf, &used, argv, argc, "%d", cpu);
    for (int i = 0; i < 4 && rc == 0; i++) {
        static const char *const fixed[] = {"--no-huge", "--no-shconf", "--no-pci",
                                            "--no-telemetry"};
        rc = add_arg(buf, &used, argv, argc, "%s", fixed[i]);
    }
    if (rc == 0)
        rc = add_arg(buf, &used, argv, argc, "%s", dpdk_log_level());
    if (rc != 0)
        mmtls_errf(err, err_cap, "--io dpdk: EAL arguments too long");
    return rc;
}

static int eal_init(const struct mmtls_dpdk_setup_opts *o, char *err, size_t err_cap)
{
    static char buf[DPDK_ARGS_CAP]; /* the EAL keeps pointers into argv */
    static char *argv[DPDK_MAX_ARGS];
    char line[1024];
    size_t used = 0;
    cpu_set_t cpus;
    bool have_cpus;
    int argc = 1, rc;

    argv[0] = (char *)(o->prog != NULL ? o->prog : "mmtls");
    if (o->eal_args != NULL)
        rc = split_args(o->eal_args, buf, sizeof(buf), argv, &argc, err, err_cap);
    else
        rc = afp_eal_args(o, buf, argv, &argc, err, err_cap);
    if (rc != 0)
        return rc;
    argv[argc] = NULL;
    for (int i = 1; i < argc && used < sizeof(line); i++) {
        int n = snprintf(line + used, sizeof(line) - used, " %s", argv[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    mmtls_log(MMTLS_LOG_INFO, "dpdk: EAL arguments:%s", line);
    /* The EAL pins the calling thread to its main lcore; threads started later inherit the
     * mask, so the workers would share one CPU.  Keep ours. */
    have_cpus = pthread_getaffinity_np(pthread_self(), sizeof(cpus), &cpus) == 0;
    (void)rte_openlog_stream(stderr); /* not stdout and syslog */
    rc = rte_eal_init(argc, argv);
    if (have_cpus)
        (void)pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
    if (rc < 0) {
        mmtls_errf(err, err_cap, "DPDK EAL initialisation failed: %s (arguments:%s)",
                   rte_strerror(rte_errno), line);
        return MMTLS_E_IO;
    }
    g.eal = true;
    return 0;
}

/* The port id of name: an ethdev name or a decimal port id. */
static int port_by_name(const char *name, uint16_t *port, char *err, size_t err_cap)
{
    char *end = NULL;
    unsigned long v;

    if (rte_eth_dev_get_port_by_name(name, port) == 0)
        return 0;
    errno = 0;
    v = strtoul(name, &end, 10);
    if (errno == 0 && end != name && *end == '\0' && v < RTE_MAX_ETHPORTS &&
        rte_eth_dev_is_valid_port((uint16_t)v)) {
        *port = (uint16_t)v;
        return 0;
    }
    mmtls_errf(err, err_cap, "dpdk: no port '%s' (%u ports probed)", name,
               (unsigned)rte_eth_dev_count_avail());
    return MMTLS_E_NOTFOUND;
}

static int pools_create(uint16_t nq, uint32_t frame, char *err, size_t err_cap)
{
    uint32_t room = frame > RTE_MBUF_DEFAULT_DATAROOM ? frame : RTE_MBUF_DEFAULT_DATAROOM;

    for (uint16_t q = 0; q < nq; q++) {
        char name[RTE_MEMPOOL_NAMESIZE];
        if (g.pool[q] != NULL)
            continue;
        snprintf(name, sizeof(name), "mmtls_w%u", (unsigned)q);
        g.pool[q] =
            rte_pktmbuf_pool_create(name, DPDK_POOL_MBUFS, DPDK_POOL_CACHE, 0,
                                    (uint16_t)(room + RTE_PKTMBUF_HEADROOM), (int)rte_socket_id());
        if (g.pool[q] == NULL) {
            mmtls_errf(err, err_cap, "dpdk: mbuf pool of worker %u: %s (EAL memory: -m)",
                       (unsigned)q, rte_strerror(rte_errno));
            return MMTLS_E_NOMEM;
        }
    }
    return 0;
}

/* Configures and starts one device with nq queue pairs (see the file comment). */
static int dev_start(const char *name, uint16_t port, uint16_t nq, char *err, size_t err_cap)
{
    static const uint8_t pat[2] = {0x6d, 0x5a};
    uint8_t key[DPDK_RSS_KEY_MAX];
    struct rte_eth_dev_info info;
    struct rte_eth_conf conf;
    uint16_t rxd = DPDK_RX_DESC, txd = DPDK_TX_DESC;
    int sock = rte_eth_dev_socket_id(port);
    int rc;

    memset(&conf, 0, sizeof(conf));
    rc = rte_eth_dev_info_get(port, &info);
    if (rc != 0) {
        mmtls_errf(err, err_cap, "dpdk %s: device info: %s", name, rte_strerror(-rc));
        return MMTLS_E_IO;
    }
    if (info.max_rx_queues < nq || info.max_tx_queues < nq) {
        mmtls_errf(err, err_cap, "dpdk %s: %u RX / %u TX queues, %u workers need as many", name,
                   (unsigned)info.max_rx_queues, (unsigned)info.max_tx_queues, (unsigned)nq);
        return MMTLS_E_LIMIT;
    }
    if (nq > 1 && info.flow_type_rss_offloads != 0) {
        uint8_t klen = info.hash_key_size != 0 ? info.hash_key_size : 40;
        if (klen > sizeof(key)) {
            mmtls_errf(err, err_cap, "dpdk %s: RSS key of %u bytes", name, (unsigned)klen);
            return MMTLS_E_UNSUPPORTED;
        }
        for (size_t i = 0; i < klen; i++)
            key[i] = pat[i & 1];
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = key;
        conf.rx_adv_conf.rss_conf.rss_key_len = klen;
        conf.rx_adv_conf.rss_conf.rss_hf =
            info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
        mmtls_log(MMTLS_LOG_INFO, "dpdk %s: %u queues, symmetric RSS (Toeplitz, key 0x6d5a x %u)",
                  name, (unsigned)nq, (unsigned)klen / 2);
    } else if (nq > 1) {
        mmtls_log(MMTLS_LOG_INFO, "dpdk %s: %u queues spread by the device (no RSS: %s)", name,
                  (unsigned)nq, info.driver_name);
    }
    rc = rte_eth_dev_configure(port, nq, nq, &conf);
    if (rc == 0)
        rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd);
    for (uint16_t q = 0; q < nq && rc == 0; q++) {
        rc = rte_eth_rx_queue_setup(port, q, rxd, (unsigned)sock, NULL, g.pool[q]);
        if (rc == 0)
            rc = rte_eth_tx_queue_setup(port, q, txd, (unsigned)sock, NULL);
    }
    if (rc == 0)
        rc = rte_eth_dev_start(port);
    if (rc != 0) {
        mmtls_errf(err, err_cap, "dpdk %s: configuring %u queues: %s", name, (unsigned)nq,
                   rte_strerror(-rc));
        return MMTLS_E_IO;
    }
    snprintf(g.dev_name[g.ndev], sizeof(g.dev_name[0]), "%s", name);
    g.dev[g.ndev] = port;
    g.promisc[g.ndev] = rte_eth_promiscuous_get(port) == 0 && rte_eth_promiscuous_enable(port) == 0;
    g.ndev++;
    return 0;
}

int mmtls_dpdk_setup(const struct mmtls_dpdk_setup_opts *o, uint16_t *ports, char *err,
                     size_t err_cap)
{
    uint32_t frame = RTE_MBUF_DEFAULT_DATAROOM;
    int rc;

    if (o == NULL || o->sz < sizeof(*o) || o->nnames < 1 || o->nnames > MMTLS_DPDK_MAX_DEVS ||
        o->nqueues < 1 || o->nqueues > MMTLS_DPDK_MAX_QUEUES) {
        mmtls_errf(err, err_cap, "dpdk: bad options");
        return MMTLS_E_INVAL;
    }
    if (g.eal) {
        mmtls_errf(err, err_cap, "dpdk: set up already (once per process)");
        return MMTLS_E_CONFLICT;
    }
    if (o->eal_args == NULL) {
        for (int i = 0; i < o->nnames; i++) {
            uint32_t f;
            rc = afp_frame_size(o->names[i], &f, err, err_cap);
            if (rc != 0)
                return rc;
            frame = f > frame ? f : frame;
        }
    }
    rc = eal_init(o, err, err_cap);
    if (rc == 0)
        rc = pools_create(o->nqueues, frame, err, err_cap);
    for (int i = 0; i < o->nnames && rc == 0; i++) {
        char vdev[32];
        const char *name = o->names[i];
        if (o->eal_args == NULL) {
            snprintf(vdev, sizeof(vdev), "net_af_packet%d", i);
            name = vdev;
        }
        rc = port_by_name(name, &ports[i], err, err_cap);
        for (int j = 0; j < g.ndev && rc == 0; j++) {
            if (g.dev[j] == ports[i]) {
                mmtls_errf(err, err_cap, "dpdk: %s named twice", o->names[i]);
                rc = MMTLS_E_INVAL;
            }
        }
        if (rc == 0)
            rc = dev_start(o->names[i], ports[i], o->nqueues, err, err_cap);
    }
    if (rc != 0)
        mmtls_dpdk_teardown();
    return rc;
}

void mmtls_dpdk_teardown(void)
{
    for (int i = 0; i < g.ndev; i++) {
        struct rte_eth_stats es;
        if (rte_eth_stats_get(g.dev[i], &es) == 0)
            mmtls_log(MMTLS_LOG_INFO,
                      "dpdk %s: rx %llu frames %llu bytes (missed %llu, errors %llu, no mbuf "
                      "%llu), tx %llu frames %llu bytes (errors %llu)",
                      g.dev_name[i], (unsigned long long)es.ipackets, (unsigned long long)es.ibytes,
                      (unsigned long long)es.imissed, (unsigned long long)es.ierrors,
                      (unsigned long long)es.rx_nombuf, (unsigned long long)es.opackets,
                      (unsigned long long)es.obytes, (unsigned long long)es.oerrors);
        if (g.promisc[i])
            (void)rte_eth_promiscuous_disable(g.dev[i]);
        (void)rte_eth_dev_stop(g.dev[i]);
        (void)rte_eth_dev_close(g.dev[i]);
    }
    g.ndev = 0;
    for (int q = 0; q < MMTLS_DPDK_MAX_QUEUES; q++) {
        rte_mempool_free(g.pool[q]);
        g.pool[q] = NULL;
    }
    /* The EAL cannot be initialised twice in a process, released or not: g.eal stays set. */
    if (g.eal)
        (void)rte_eal_cleanup();
}

int mmtls_dpdk_thread_register(void)
{
    if (!g.eal || rte_thread_register() != 0)
        return MMTLS_E_LIMIT;
    return 0;
}

void mmtls_dpdk_thread_unregister(void)
{
    if (g.eal && rte_lcore_id() != LCORE_ID_ANY && rte_lcore_id() != rte_get_main_lcore())
        rte_thread_unregister();
}

int mmtls_dpdk_open(struct mmtls_dpdk **out, const struct mmtls_dpdk_opts *o, char *err,
                    size_t err_cap)
{
    struct mmtls_dpdk *p;

    *out = NULL;
    if (o == NULL || o->sz < sizeof(*o) || o->queue >= MMTLS_DPDK_MAX_QUEUES ||
        g.pool[o->queue] == NULL || !rte_eth_dev_is_valid_port(o->port)) {
        mmtls_errf(err, err_cap, "dpdk: port %u queue %u not set up", o != NULL ? o->port : 0,
                   o != NULL ? o->queue : 0);
        return MMTLS_E_INVAL;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return MMTLS_E_NOMEM;
    p->port = o->port;
    p->queue = o->queue;
    p->pool = g.pool[o->queue];
    snprintf(p->name, sizeof(p->name), "%s", o->name != NULL ? o->name : "dpdk");
    *out = p;
    return 0;
}

void mmtls_dpdk_close(struct mmtls_dpdk *p)
{
    if (p == NULL)
        return;
    mmtls_dpdk_rx_done(p);
    rte_pktmbuf_free_bulk(p->tx, (unsigned)p->ntx);
    free(p);
}

int mmtls_dpdk_rx_burst(struct mmtls_dpdk *p, struct mmtls_dpdk_frame *f, int max)
{
    struct rte_mbuf *m[DPDK_BURST_MAX];
    uint64_t ts;
    uint16_t n;
    int k = 0;

    if (p->nrx > 0)
        mmtls_dpdk_rx_done(p); /* the caller forgot: never leak */
    if (max > DPDK_BURST_MAX)
        max = DPDK_BURST_MAX;
    if (max <= 0)
        return 0;
    n = rte_eth_rx_burst(p->port, p->queue, m, (uint16_t)max);
    if (n == 0)
        return 0;
    ts = wall_us();
    for (uint16_t i = 0; i < n; i++) {
        if (m[i]->nb_segs != 1) {
            p->st.rx_multiseg++;
            rte_pktmbuf_free(m[i]);
            continue;
        }
        p->rx[k] = m[i];
        f[k] = (struct mmtls_dpdk_frame){.data = rte_pktmbuf_mtod(m[i], const uint8_t *),
                                         .len = rte_pktmbuf_data_len(m[i]),
                                         .ts_us = ts};
        p->st.rx_bytes += f[k].len;
        k++;
    }
    p->nrx = k;
    p->st.rx_frames += (uint64_t)k;
    return k;
}

void mmtls_dpdk_rx_done(struct mmtls_dpdk *p)
{
    for (int i = 0; i < p->nrx; i++) {
        rte_pktmbuf_free(p->rx[i]); /* NULL (forwarded) is a no-op */
        p->rx[i] = NULL;
    }
    p->nrx = 0;
}

/* Room for one more frame in p's batch: flushes a full batch. */
static bool tx_room(struct mmtls_dpdk *p)
{
    if (p->ntx == DPDK_TX_BATCH)
        mmtls_dpdk_tx_flush(p);
    return p->ntx < DPDK_TX_BATCH;
}

int mmtls_dpdk_fwd(struct mmtls_dpdk *in, int i, struct mmtls_dpdk *out)
{
    if (i < 0 || i >= in->nrx || in->rx[i] == NULL)
        return MMTLS_E_INVAL;
    if (!tx_room(out)) {
        out->st.tx_dropped++;
        return MMTLS_E_LIMIT;
    }
    out->tx[out->ntx++] = in->rx[i];
    in->rx[i] = NULL;
    out->st.tx_zero_copy++;
    return 0;
}

int mmtls_dpdk_tx(struct mmtls_dpdk *p, const uint8_t *data, uint32_t len)
{
    struct rte_mbuf *m;
    char *d;

    if (!tx_room(p)) {
        p->st.tx_dropped++;
        return MMTLS_E_LIMIT;
    }
    m = rte_pktmbuf_alloc(p->pool);
    if (m == NULL) {
        p->st.tx_dropped++;
        return MMTLS_E_LIMIT;
    }
    d = len <= UINT16_MAX ? rte_pktmbuf_append(m, (uint16_t)len) : NULL;
    if (d == NULL) {
        rte_pktmbuf_free(m);
        p->st.tx_dropped++;
        return MMTLS_E_LIMIT;
    }
    memcpy(d, data, len);
    p->tx[p->ntx++] = m;
    return 0;
}

void mmtls_dpdk_tx_flush(struct mmtls_dpdk *p)
{
    uint64_t bytes = 0;
    int sent = 0;

    if (p->ntx == 0)
        return;
    for (int i = 0; i < p->ntx; i++)
        bytes += rte_pktmbuf_pkt_len(p->tx[i]);
    /* The device may take part of the batch (a full ring); retry a bounded number of times,
     * then drop the rest rather than block the worker. */
    for (int t = 0; t < DPDK_TX_RETRIES && sent < p->ntx; t++)
        sent += rte_eth_tx_burst(p->port, p->queue, p->tx + sent, (uint16_t)(p->ntx - sent));
    for (int i = sent; i < p->ntx; i++)
        bytes -= rte_pktmbuf_pkt_len(p->tx[i]);
    if (sent < p->ntx) {
        rte_pktmbuf_free_bulk(p->tx + sent, (unsigned)(p->ntx - sent));
        p->st.tx_dropped += (uint64_t)(p->ntx - sent);
    }
    p->st.tx_frames += (uint64_t)sent;
    p->st.tx_bytes += bytes;
    p->ntx = 0;
}

void mmtls_dpdk_get_stats(const struct mmtls_dpdk *p, struct mmtls_dpdk_stats *st)
{
    struct rte_eth_stats es;

    *st = p->st;
    if (rte_eth_stats_get(p->port, &es) == 0) {
        st->dev_imissed = es.imissed;
        st->dev_ierrors = es.ierrors;
        st->dev_rx_nombuf = es.rx_nombuf;
        st->dev_oerrors = es.oerrors;
    }
}

#else /* !MMTLS_HAVE_DPDK: built without libdpdk */

int mmtls_dpdk_setup(const struct mmtls_dpdk_setup_opts *o, uint16_t *ports, char *err,
                     size_t err_cap)
{
    (void)o;
    (void)ports;
    mmtls_errf(err, err_cap, "built without DPDK (libdpdk not found)");
    return MMTLS_E_UNSUPPORTED;
}

void mmtls_dpdk_teardown(void)
{
}

int mmtls_dpdk_thread_register(void)
{
    return MMTLS_E_UNSUPPORTED;
}

void mmtls_dpdk_thread_unregister(void)
{
}

int mmtls_dpdk_open(struct mmtls_dpdk **out, const struct mmtls_dpdk_opts *o, char *err,
                    size_t err_cap)
{
    (void)o;
    *out = NULL;
    mmtls_errf(err, err_cap, "built without DPDK (libdpdk not found)");
    return MMTLS_E_UNSUPPORTED;
}

void mmtls_dpdk_close(struct mmtls_dpdk *p)
{
    (void)p;
}

int mmtls_dpdk_rx_burst(struct mmtls_dpdk *p, struct mmtls_dpdk_frame *f, int max)
{
    (void)p;
    (void)f;
    (void)max;
    return 0;
}

void mmtls_dpdk_rx_done(struct mmtls_dpdk *p)
{
    (void)p;
}

int mmtls_dpdk_fwd(struct mmtls_dpdk *in, int i, struct mmtls_dpdk *out)
{
    (void)in;
    (void)i;
    (void)out;
    return MMTLS_E_UNSUPPORTED;
}

int mmtls_dpdk_tx(struct mmtls_dpdk *p, const uint8_t *data, uint32_t len)
{
    (void)p;
    (void)data;
    (void)len;
    return MMTLS_E_UNSUPPORTED;
}

void mmtls_dpdk_tx_flush(struct mmtls_dpdk *p)
{
    (void)p;
}

void mmtls_dpdk_get_stats(const struct mmtls_dpdk *p, struct mmtls_dpdk_stats *st)
{
    (void)p;
    memset(st, 0, sizeof(*st));
}

#endif /* MMTLS_HAVE_DPDK */
