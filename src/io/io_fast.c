/* io_fast — the kernel fast path's user-space side (docs/FASTPATH.md): creates the divert veth
 * pair (rtnetlink, RTM_NEWLINK with IFLA_INFO_KIND "veth", include/uapi/linux/veth.h), loads the
 * BPF object built from bpf/mmtls_fast.bpf.c (embedded in the binary), attaches its program to
 * the TC ingress hook (clsact) of both ports, and updates its maps.
 */
#include "io/io.h"

#if MMTLS_HAVE_FAST

#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../../bpf/mmtls_fast_abi.h"

/* The object file, embedded (CMake builds it with clang -target bpf). */
__asm__(".section .rodata\n"
        ".balign 8\n"
        ".global mmtls_fast_bpf_obj\n"
        "mmtls_fast_bpf_obj:\n"
        ".incbin \"" MMTLS_FAST_BPF_OBJ "\"\n"
        ".global mmtls_fast_bpf_obj_end\n"
        "mmtls_fast_bpf_obj_end:\n"
        ".previous\n");
extern const unsigned char mmtls_fast_bpf_obj[], mmtls_fast_bpf_obj_end[];

_Static_assert((int)MMTLS_FASTM_INSPECT == (int)MMTLS_FAST_INSPECT &&
                   (int)MMTLS_FASTM_DIVERT == (int)MMTLS_FAST_DIVERT &&
                   (int)MMTLS_FASTM_SKIP == (int)MMTLS_FAST_SKIP &&
                   (int)MMTLS_FASTM_BYPASS == (int)MMTLS_FAST_BYPASS &&
                   (int)MMTLS_FASTM_BLOCK == (int)MMTLS_FAST_BLOCK,
               "modes shared with the BPF program");
_Static_assert((int)MMTLS_FASTK_COPY == (int)MMTLS_FAST_K_COPY &&
                   (int)MMTLS_FASTK_RESUME == (int)MMTLS_FAST_K_RESUME &&
                   (int)MMTLS_FASTK_RESUME_LOST == (int)MMTLS_FAST_K_RESUME_LOST &&
                   (int)MMTLS_FASTK_DIVERT == (int)MMTLS_FAST_K_DIVERT &&
                   (int)MMTLS_FASTK_DIVERT_INORDER == (int)MMTLS_FAST_K_DIVERT_INORDER &&
                   MMTLS_FAST_RX_VID(2, 1) == MMTLS_FAST_VID(2, 1),
               "marks shared with the BPF program");

struct fast_hook {
    int ifindex;
    bool created; /* we created the clsact qdisc (destroyed at close) */
    bool attached;
    struct bpf_tc_hook hook;
    struct bpf_tc_opts opts;
};

struct mmtls_fast {
    struct bpf_object *obj;
    int ctl_fd, state_fd, stats_fd;
    struct fast_hook hooks[2]; /* port 0, port 1 */
    char ifname[2][IF_NAMESIZE];
    char rps_saved[2][16][64]; /* rps_cpus of the ports' RX queues before ours ("": untouched) */
    char dname[IF_NAMESIZE - 1], pname[IF_NAMESIZE];
    bool veth;
};

/* ------------------------------------------------------------------------------------------ */
/* rtnetlink: the divert pair                                                                  */

struct nlreq {
    struct nlmsghdr nh;
    struct ifinfomsg ifi;
    char buf[512];
};

static struct rtattr *nl_add(struct nlreq *r, unsigned short type, const void *data, size_t len)
{
    struct rtattr *a = (struct rtattr *)((char *)r + NLMSG_ALIGN(r->nh.nlmsg_len));

    a->rta_type = type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    if (len > 0)
        memcpy(RTA_DATA(a), data, len);
    r->nh.nlmsg_len = NLMSG_ALIGN(r->nh.nlmsg_len) + RTA_ALIGN(a->rta_len);
    return a;
}

static void nl_end(struct nlreq *r, struct rtattr *a)
{
    a->rta_len = (unsigned short)((char *)r + r->nh.nlmsg_len - (char *)a);
}

static int nl_talk(struct nlreq *r)
{
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    char ans[1024];
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), rc = -EIO;
    ssize_t n;

    if (fd < 0)
        return -errno;
    r->nh.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    r->nh.nlmsg_seq = 1;
    if (sendto(fd, r, r->nh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = -errno;
    } else if ((n = recv(fd, ans, sizeof(ans), 0)) >= (ssize_t)NLMSG_HDRLEN) {
        const struct nlmsghdr *h = (const struct nlmsghdr *)ans;
        if (h->nlmsg_type == NLMSG_ERROR && (size_t)n >= NLMSG_HDRLEN + sizeof(struct nlmsgerr))
            rc = ((const struct nlmsgerr *)NLMSG_DATA(h))->error;
    }
    close(fd);
    return rc;
}

static int veth_create(const char *name, const char *peer)
{
    struct nlreq r;
    struct rtattr *li, *data, *pa;
    struct ifinfomsg pifi = {.ifi_family = AF_UNSPEC};

    memset(&r, 0, sizeof(r));
    r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    r.nh.nlmsg_type = RTM_NEWLINK;
    r.nh.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    r.ifi.ifi_family = AF_UNSPEC;
    nl_add(&r, IFLA_IFNAME, name, strlen(name) + 1);
    li = nl_add(&r, IFLA_LINKINFO, NULL, 0);
    nl_add(&r, IFLA_INFO_KIND, "veth", 4);
    data = nl_add(&r, IFLA_INFO_DATA, NULL, 0);
    pa = nl_add(&r, VETH_INFO_PEER, &pifi, sizeof(pifi));
    nl_add(&r, IFLA_IFNAME, peer, strlen(peer) + 1);
    nl_end(&r, pa);
    nl_end(&r, data);
    nl_end(&r, li);
    return nl_talk(&r);
}

static void link_delete(const char *name)
{
    struct nlreq r;

    memset(&r, 0, sizeof(r));
    r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    r.nh.nlmsg_type = RTM_DELLINK;
    r.ifi.ifi_family = AF_UNSPEC;
    nl_add(&r, IFLA_IFNAME, name, strlen(name) + 1);
    (void)nl_talk(&r);
}

static int link_up(const char *name)
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;
    char path[128];

    if (fd < 0)
        return -errno;
    /* No addresses, no neighbour discovery: only our frames cross the pair. */
    snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
    {
        int pf = open(path, O_WRONLY | O_CLOEXEC);
        if (pf >= 0) {
            (void)!write(pf, "1", 1);
            close(pf);
        }
    }
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
        rc = -errno;
    } else {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
            rc = -errno;
    }
    close(fd);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* RPS: the programs must see each flow's frames in the order they were sent.  A veth hands a
 * frame to the backlog of the CPU that sends it; a TCP sender transmits from several CPUs
 * (its process, softirqs of arriving ACKs), and two backlogs reorder.  With RPS every frame of
 * a flow goes to one CPU's backlog, enqueued in the order of transmission (Documentation/
 * networking/scaling.rst). */

static int sysfs_rw(const char *path, char *buf, size_t cap, const char *write_val)
{
    int fd = open(path, (write_val != NULL ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -1;
    if (write_val != NULL)
        n = write(fd, write_val, strlen(write_val));
    else
        n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    if (write_val == NULL) {
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
    }
    return 0;
}

/* cpus: bit k for CPU k, 0 for every online CPU. */
static void rps_set(struct mmtls_fast *f, int port, uint32_t cpus)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    char mask[16], path[128];

    if (ncpu < 1 || ncpu > 32)
        return; /* larger masks have several comma-separated words: left alone */
    if (cpus == 0)
        cpus = ncpu == 32 ? 0xffffffffu : (1u << ncpu) - 1;
    snprintf(mask, sizeof(mask), "%x", (unsigned)cpus);
    for (int q = 0; q < 16; q++) {
        snprintf(path, sizeof(path), "/sys/class/net/%s/queues/rx-%d/rps_cpus", f->ifname[port], q);
        if (sysfs_rw(path, f->rps_saved[port][q], sizeof(f->rps_saved[port][q]), NULL) != 0)
            break;
        if (sysfs_rw(path, NULL, 0, mask) != 0)
            f->rps_saved[port][q][0] = '\0';
    }
}

static void rps_restore(struct mmtls_fast *f, int port)
{
    char path[128];

    for (int q = 0; q < 16; q++) {
        if (f->rps_saved[port][q][0] == '\0')
            continue;
        snprintf(path, sizeof(path), "/sys/class/net/%s/queues/rx-%d/rps_cpus", f->ifname[port], q);
        (void)sysfs_rw(path, NULL, 0, f->rps_saved[port][q]);
    }
}

static int hook_attach(struct fast_hook *h, int ifindex, int prog_fd)
{
    int rc;

    h->ifindex = ifindex;
    memset(&h->hook, 0, sizeof(h->hook));
    h->hook.sz = sizeof(h->hook);
    h->hook.ifindex = ifindex;
    h->hook.attach_point = BPF_TC_INGRESS;
    rc = bpf_tc_hook_create(&h->hook);
    if (rc == 0)
        h->created = true;
    else if (rc != -EEXIST)
        return rc;
    memset(&h->opts, 0, sizeof(h->opts));
    h->opts.sz = sizeof(h->opts);
    h->opts.handle = 0x6d6d; /* "mm" */
    h->opts.priority = 1;
    h->opts.prog_fd = prog_fd;
    h->opts.flags = BPF_TC_F_REPLACE;
    rc = bpf_tc_attach(&h->hook, &h->opts);
    if (rc == 0)
        h->attached = true;
    return rc;
}

static void hook_detach(struct fast_hook *h)
{
    if (h->attached) {
        h->opts.prog_fd = 0;
        h->opts.prog_id = 0;
        h->opts.flags = 0;
        (void)bpf_tc_detach(&h->hook, &h->opts);
        h->attached = false;
    }
    if (h->created) {
        h->hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
        (void)bpf_tc_hook_destroy(&h->hook);
        h->created = false;
    }
}

static void key_to_abi(const struct mmtls_fast_flowkey *k, struct mmtls_fast_key *a)
{
    memset(a, 0, sizeof(*a));
    memcpy(a->addr, k->addr, sizeof(a->addr));
    a->port[0] = k->port[0];
    a->port[1] = k->port[1];
    a->ip_version = k->ip_version;
}

int mmtls_fast_open(struct mmtls_fast **out, const struct mmtls_fast_opts *o, char *err,
                    size_t err_cap)
{
    struct mmtls_fast *f;
    struct bpf_program *pport;
    struct mmtls_fast_cfg cfg = {0};
    unsigned int pifx[2], dix;
    uint32_t zero = 0;
    int rc, cfg_fd;
    LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "mmtls_fast");

    if (o == NULL || o->sz < sizeof(*o) || o->ifname[0] == NULL || o->ifname[1] == NULL)
        return MMTLS_E_INVAL;
    for (int i = 0; i < 2; i++) {
        pifx[i] = if_nametoindex(o->ifname[i]);
        if (pifx[i] == 0) {
            snprintf(err, err_cap, "fast path: no interface %s", o->ifname[i]);
            return MMTLS_E_IO;
        }
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return MMTLS_E_NOMEM;
    f->ctl_fd = f->state_fd = f->stats_fd = -1;
    if (o->divert_name != NULL)
        snprintf(f->dname, sizeof(f->dname), "%s", o->divert_name);
    else
        snprintf(f->dname, sizeof(f->dname), "mmfd%d", (int)getpid() % 1000000);
    snprintf(f->pname, sizeof(f->pname), "%sp", f->dname);
    rc = veth_create(f->dname, f->pname);
    if (rc != 0) {
        snprintf(err, err_cap, "fast path: creating veth %s/%s: %s", f->dname, f->pname,
                 strerror(-rc));
        free(f);
        return MMTLS_E_IO;
    }
    f->veth = true;
    if (link_up(f->dname) != 0 || link_up(f->pname) != 0) {
        snprintf(err, err_cap, "fast path: cannot bring %s up", f->dname);
        goto fail;
    }
    dix = if_nametoindex(f->dname);
    libbpf_set_print(NULL);
    f->obj = bpf_object__open_mem(mmtls_fast_bpf_obj,
                                  (size_t)(mmtls_fast_bpf_obj_end - mmtls_fast_bpf_obj), &oo);
    if (f->obj == NULL) {
        snprintf(err, err_cap, "fast path: cannot open the BPF object: %s", strerror(errno));
        goto fail;
    }
    rc = bpf_object__load(f->obj);
    if (rc != 0) {
        snprintf(err, err_cap, "fast path: cannot load the BPF programs: %s", strerror(-rc));
        goto fail;
    }
    pport = bpf_object__find_program_by_name(f->obj, "mmtls_fast_port");
    cfg_fd = bpf_object__find_map_fd_by_name(f->obj, "mmtls_cfg");
    f->ctl_fd = bpf_object__find_map_fd_by_name(f->obj, "mmtls_ctl");
    f->state_fd = bpf_object__find_map_fd_by_name(f->obj, "mmtls_state");
    f->stats_fd = bpf_object__find_map_fd_by_name(f->obj, "mmtls_stats");
    if (pport == NULL || cfg_fd < 0 || f->ctl_fd < 0 || f->state_fd < 0 || f->stats_fd < 0) {
        snprintf(err, err_cap, "fast path: the BPF object lacks a program or map");
        goto fail;
    }
    cfg.ifindex[0] = pifx[0];
    cfg.ifindex[1] = pifx[1];
    cfg.divert_ifindex = dix;
    if (bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY) != 0) {
        snprintf(err, err_cap, "fast path: cannot configure: %s", strerror(errno));
        goto fail;
    }
    /* From then on frames flow through the program. */
    if ((rc = hook_attach(&f->hooks[0], (int)pifx[0], bpf_program__fd(pport))) != 0 ||
        (rc = hook_attach(&f->hooks[1], (int)pifx[1], bpf_program__fd(pport))) != 0) {
        snprintf(err, err_cap, "fast path: cannot attach to TC ingress: %s", strerror(-rc));
        goto fail;
    }
    for (int i = 0; i < 2; i++) {
        snprintf(f->ifname[i], sizeof(f->ifname[i]), "%s", o->ifname[i]);
        rps_set(f, i, o->rps_cpus);
    }
    *out = f;
    return 0;
fail:
    mmtls_fast_close(f);
    return MMTLS_E_IO;
}

void mmtls_fast_close(struct mmtls_fast *f)
{
    if (f == NULL)
        return;
    rps_restore(f, 0);
    rps_restore(f, 1);
    hook_detach(&f->hooks[0]);
    hook_detach(&f->hooks[1]);
    bpf_object__close(f->obj);
    if (f->veth)
        link_delete(f->dname); /* the peer goes with it */
    free(f);
}

const char *mmtls_fast_divert_ifname(const struct mmtls_fast *f)
{
    return f->pname;
}

int mmtls_fast_port_ifindex(const struct mmtls_fast *f, int port)
{
    return f->hooks[port & 1].ifindex; /* set by hook_attach, which open ran for both */
}

int mmtls_fast_set(struct mmtls_fast *f, const struct mmtls_fast_flowkey *k, const uint8_t mode[2],
                   const uint32_t gen[2], const uint32_t budget[2],
                   const struct mmtls_fast_rearm *rearm)
{
    struct mmtls_fast_key a;
    struct mmtls_fast_ctl c;

    memset(&c, 0, sizeof(c));
    for (int i = 0; i < 2; i++) {
        c.mode[i] = mode[i];
        c.gen[i] = gen[i];
        c.budget[i] = budget != NULL ? budget[i] : 0;
        if (rearm != NULL) {
            c.rearm_gen[i] = rearm[i].gen;
            c.rearm_end[i] = rearm[i].end_seq;
            c.rearm_hdr[i] = rearm[i].hdr_seq;
        }
    }
    key_to_abi(k, &a);
    if (bpf_map_update_elem(f->ctl_fd, &a, &c, BPF_ANY) != 0)
        return errno == E2BIG || errno == ENOMEM ? MMTLS_E_LIMIT : MMTLS_E_IO;
    return 0;
}

void mmtls_fast_del(struct mmtls_fast *f, const struct mmtls_fast_flowkey *k)
{
    struct mmtls_fast_key a;

    key_to_abi(k, &a);
    (void)bpf_map_delete_elem(f->ctl_fd, &a);
    (void)bpf_map_delete_elem(f->state_fd, &a);
}

int mmtls_fast_side_get(struct mmtls_fast *f, const struct mmtls_fast_flowkey *k, int side,
                        struct mmtls_fast_side_info *out)
{
    struct mmtls_fast_key a;
    struct mmtls_fast_state st;
    const struct mmtls_fast_side *s;

    if (side < 0 || side > 1)
        return MMTLS_E_INVAL;
    key_to_abi(k, &a);
    if (bpf_map_lookup_elem_flags(f->state_fd, &a, &st, BPF_F_LOCK) != 0)
        return MMTLS_E_NOTFOUND;
    s = &st.side[side];
    out->resume_seq = s->resume_seq;
    out->resume_nskip = s->resume_nskip;
    out->fwd_end = s->fwd_end;
    out->fwd_valid = s->fwd_valid != 0;
    out->resume_lost = s->resume_lost != 0;
    out->valid = s->valid != 0;
    out->lost = s->lost != 0;
    out->skipped_bytes = s->skipped_bytes;
    out->copied_bytes = s->copied_bytes;
    return 0;
}

void mmtls_fast_get_stats(const struct mmtls_fast *f, struct mmtls_fast_stats *st)
{
    uint64_t c[MMTLS_FAST_C_N] = {0};
    int ncpu = libbpf_num_possible_cpus();

    memset(st, 0, sizeof(*st));
    if (ncpu <= 0 || ncpu > 4096)
        return;
    for (uint32_t i = 0; i < MMTLS_FAST_C_N; i++) {
        uint64_t *v = calloc((size_t)ncpu, sizeof(*v));
        if (v == NULL)
            return;
        if (bpf_map_lookup_elem(f->stats_fd, &i, v) == 0) {
            for (int cpu = 0; cpu < ncpu; cpu++)
                c[i] += v[cpu];
        }
        free(v);
    }
    st->fwd = c[MMTLS_FAST_C_FWD];
    st->fwd_bytes = c[MMTLS_FAST_C_FWD_BYTES];
    st->copy = c[MMTLS_FAST_C_COPY];
    st->copy_bytes = c[MMTLS_FAST_C_COPY_BYTES];
    st->divert = c[MMTLS_FAST_C_DIVERT];
    st->divert_bytes = c[MMTLS_FAST_C_DIVERT_BYTES];
    st->drop = c[MMTLS_FAST_C_DROP];
    st->resume = c[MMTLS_FAST_C_RESUME];
    st->lost = c[MMTLS_FAST_C_LOST];
    st->other = c[MMTLS_FAST_C_OTHER];
    st->race = c[MMTLS_FAST_C_RACE];
    st->rearm = c[MMTLS_FAST_C_REARM];
    st->kskip = c[MMTLS_FAST_C_KSKIP];
}

#else /* !MMTLS_HAVE_FAST */

int mmtls_fast_open(struct mmtls_fast **out, const struct mmtls_fast_opts *o, char *err,
                    size_t err_cap)
{
    (void)out;
    (void)o;
    snprintf(err, err_cap, "built without the kernel fast path (libbpf and clang needed)");
    return MMTLS_E_UNSUPPORTED;
}

void mmtls_fast_close(struct mmtls_fast *f)
{
    (void)f;
}

const char *mmtls_fast_divert_ifname(const struct mmtls_fast *f)
{
    (void)f;
    return "";
}

int mmtls_fast_port_ifindex(const struct mmtls_fast *f, int port)
{
    (void)f;
    (void)port;
    return -1; /* no such interface (0 would mean the sending port's own) */
}

int mmtls_fast_set(struct mmtls_fast *f, const struct mmtls_fast_flowkey *k, const uint8_t mode[2],
                   const uint32_t gen[2], const uint32_t budget[2],
                   const struct mmtls_fast_rearm *rearm)
{
    (void)f, (void)k, (void)mode, (void)gen, (void)budget, (void)rearm;
    return MMTLS_E_UNSUPPORTED;
}

void mmtls_fast_del(struct mmtls_fast *f, const struct mmtls_fast_flowkey *k)
{
    (void)f, (void)k;
}

int mmtls_fast_side_get(struct mmtls_fast *f, const struct mmtls_fast_flowkey *k, int side,
                        struct mmtls_fast_side_info *out)
{
    (void)f, (void)k, (void)side, (void)out;
    return MMTLS_E_UNSUPPORTED;
}

void mmtls_fast_get_stats(const struct mmtls_fast *f, struct mmtls_fast_stats *st)
{
    (void)f;
    memset(st, 0, sizeof(*st));
}

#endif
