/* Unit tests for the kernel fast path's TC program (bpf/mmtls_fast.bpf.c) as loaded by
 * src/io/io_fast.c: frames are run through the real program with BPF_PROG_TEST_RUN, one at a
 * time, so that what the kernel decides for each frame (forward, copy, divert, drop; a skip
 * it starts itself, a resume) is checked exactly, with no timing between the kernel and user
 * space (tests/integration/test_fast.sh runs the same program under real traffic, where which
 * of the two starts a skip first is a race).
 *
 * Needs root (a private network namespace, BPF): the test moves into a new namespace, makes a
 * veth pair to serve as the two bridged ports and opens the fast path on it.  Without root, or
 * in a build without the fast path, the tests are skipped; as root a setup failure fails.
 *
 * Covered: frames truncated at every offset of their Ethernet, IP and TCP headers (diverted,
 * never forwarded); copies and diversions by where records end; a byte stream of records cut
 * into two frames at every offset, record headers split included; random segmentations against
 * a model of which frames complete a record; the wire budget (the kernel starts the skip at the
 * first frame after the record that spends it; a SKIP user space publishes first starts it
 * instead, at the same frame); resumes at record boundaries with the count of records skipped;
 * lost framing (a header that is not TLS, a hole) diverting everything after; retransmissions;
 * BYPASS and BLOCK. */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "io/io.h"

#if MMTLS_TEST_FAST

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <net/if.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static struct mmtls_fast *fp;
static int prog_fd = -1;
static int port_ifx[2];

/* What the program did with one frame, read from its counters. */
enum act { A_NONE, A_FWD, A_COPY, A_DIVERT, A_DROP, A_OTHER };

struct res {
    enum act act;
    int retval;
    uint64_t kskip, resume, lost;
};

static void no_ipv6(const char *conf)
{
    char path[96];
    FILE *fh;

    snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", conf);
    fh = fopen(path, "w");
    if (fh != NULL) { /* (absent: no IPv6 in this kernel) */
        fputs("1\n", fh);
        fclose(fh);
    }
}

static int setup(void **state)
{
    struct mmtls_fast_opts o = {
        .sz = sizeof(o), .ifname = {"mmtp0", "mmtp1"}, .divert_name = "mmtd"};
    LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, q, .handle = 0x6d6d, .priority = 1);
    char err[256];
    int rc;

    (void)state;
    if (geteuid() != 0)
        return 0; /* the tests skip */
    if (unshare(CLONE_NEWNET) != 0) {
        fprintf(stderr, "test_io_fast: unshare: %s\n", strerror(errno));
        return -1;
    }
    /* no IPv6 on the ports: the kernel's own neighbour discovery would cross them */
    no_ipv6("all");
    no_ipv6("default");
    if (system("ip link set lo up && ip link add mmtp0 type veth peer name mmtp1 && "
               "ip link set mmtp0 up && ip link set mmtp1 up") != 0) {
        fprintf(stderr, "test_io_fast: cannot make the ports with ip(8)\n");
        return -1;
    }
    rc = mmtls_fast_open(&fp, &o, err, sizeof(err));
    if (rc == MMTLS_E_UNSUPPORTED)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "test_io_fast: %s\n", err);
        return -1;
    }
    port_ifx[0] = (int)if_nametoindex("mmtp0");
    port_ifx[1] = (int)if_nametoindex("mmtp1");
    hook.ifindex = port_ifx[0];
    if (bpf_tc_query(&hook, &q) != 0 || (prog_fd = bpf_prog_get_fd_by_id(q.prog_id)) < 0) {
        fprintf(stderr, "test_io_fast: the port program is not attached\n");
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (prog_fd >= 0)
        close(prog_fd);
    mmtls_fast_close(fp);
    return 0;
}

#define NEED_FAST()                                                                                \
    do {                                                                                           \
        if (fp == NULL)                                                                            \
            skip();                                                                                \
    } while (0)

/* ------------------------------------------------------------------------------------------ */
/* Frames                                                                                      */

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10
#define MAX_FRAME 3000

/* One TCP connection: the client (10.0.0.1 or fd00::1, port cport: endpoint 0, arrives by port
 * 0) and the server (10.0.0.2 or fd00::2, port 443: endpoint 1, port 1); each side's stream
 * starts after its SYN at isn + 1. */
struct conn {
    uint32_t isn[2];
    struct mmtls_fast_flowkey key;
};

static void conn_init(struct conn *c, uint16_t cport, int ipv)
{
    memset(c, 0, sizeof(*c));
    c->isn[0] = 1000u * cport;
    c->isn[1] = 0xfffff000u; /* the server's sequence numbers wrap inside the tests */
    c->key.ip_version = (uint8_t)ipv;
    if (ipv == 4) {
        memcpy(c->key.addr[0], (const uint8_t[]){10, 0, 0, 1}, 4);
        memcpy(c->key.addr[1], (const uint8_t[]){10, 0, 0, 2}, 4);
    } else {
        c->key.addr[0][0] = c->key.addr[1][0] = 0xfd;
        c->key.addr[0][15] = 1;
        c->key.addr[1][15] = 2;
    }
    c->key.port[0] = cport;
    c->key.port[1] = 443;
}

static size_t hdrs(const struct conn *c)
{
    return 14 + (c->key.ip_version == 4 ? 20 : 40) + 20;
}

static void put32(uint8_t *p, uint32_t v)
{
    mmtls_put_be16(p, (uint16_t)(v >> 16));
    mmtls_put_be16(p + 2, (uint16_t)v);
}

/* An Ethernet + IP + TCP frame of side `side` with sequence number seq. */
static size_t frame(uint8_t *b, const struct conn *c, int side, uint32_t seq, uint8_t flags,
                    const uint8_t *pl, size_t plen)
{
    uint8_t *ip = b + 14, *tcp = b + hdrs(c) - 20;

    assert_true(hdrs(c) + plen <= MAX_FRAME);
    memset(b, 0, hdrs(c));
    memcpy(
        b,
        (const uint8_t[]){2, 0, 0, 0, 0, (uint8_t)(2 - side), 2, 0, 0, 0, 0, (uint8_t)(side + 1)},
        12);
    if (c->key.ip_version == 4) {
        mmtls_put_be16(b + 12, 0x0800);
        ip[0] = 0x45;
        mmtls_put_be16(ip + 2, (uint16_t)(40 + plen));
        ip[6] = 0x40; /* DF */
        ip[8] = 64;
        ip[9] = 6;
        memcpy(ip + 12, c->key.addr[side], 4);
        memcpy(ip + 16, c->key.addr[!side], 4);
    } else {
        mmtls_put_be16(b + 12, 0x86dd);
        ip[0] = 0x60;
        mmtls_put_be16(ip + 4, (uint16_t)(20 + plen));
        ip[6] = 6;
        ip[7] = 64;
        memcpy(ip + 8, c->key.addr[side], 16);
        memcpy(ip + 24, c->key.addr[!side], 16);
    }
    mmtls_put_be16(tcp, c->key.port[side]);
    mmtls_put_be16(tcp + 2, c->key.port[!side]);
    put32(tcp + 4, seq);
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    mmtls_put_be16(tcp + 14, 65535);
    if (plen > 0)
        memcpy(tcp + 20, pl, plen);
    return hdrs(c) + plen;
}

static void stats(struct mmtls_fast_stats *st)
{
    mmtls_fast_get_stats(fp, st);
}

/* Runs one frame arriving by `port` through the program. */
static struct res run(int port, const uint8_t *f, size_t len)
{
    struct mmtls_fast_stats a, b;
    struct __sk_buff ctx = {.ifindex = (uint32_t)port_ifx[port]};
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f, .data_size_in = (uint32_t)len, .ctx_in = &ctx,
                .ctx_size_in = sizeof(ctx));
    struct res r = {0};
    int n = 0;

    stats(&a);
    assert_int_equal(bpf_prog_test_run_opts(prog_fd, &o), 0);
    stats(&b);
    r.retval = (int)o.retval;
    if (b.fwd != a.fwd)
        r.act = A_FWD, n++;
    if (b.copy != a.copy)
        r.act = A_COPY, n++;
    if (b.divert != a.divert)
        r.act = A_DIVERT, n++;
    if (b.drop != a.drop)
        r.act = A_DROP, n++;
    if (b.other != a.other)
        r.act = A_OTHER, n++;
    assert_true(n <= 1); /* one fate per frame */
    assert_int_equal(r.retval, r.act == A_DROP || r.act == A_NONE ? TC_ACT_SHOT : TC_ACT_REDIRECT);
    r.kskip = b.kskip - a.kskip;
    r.resume = b.resume - a.resume;
    r.lost = b.lost - a.lost;
    return r;
}

/* Sends bytes [off, off + len) of side `side`'s stream (payload from s). */
static struct res seg(const struct conn *c, int side, uint32_t off, const uint8_t *s, size_t len)
{
    uint8_t f[MAX_FRAME];
    size_t n = frame(f, c, side, c->isn[side] + 1 + off, TCP_ACK, s + off, len);
    return run(side, f, n);
}

static struct res ctl_frame(const struct conn *c, int side, uint32_t off, uint8_t flags)
{
    uint8_t f[MAX_FRAME];
    size_t n = frame(f, c, side, c->isn[side] + (flags & TCP_SYN ? 0 : 1 + off), flags, NULL, 0);
    return run(side, f, n);
}

/* SYN and SYN-ACK (both diverted: the kernel learns each side's first sequence number). */
static void handshake(const struct conn *c)
{
    assert_int_equal(ctl_frame(c, 0, 0, TCP_SYN).act, A_DIVERT);
    assert_int_equal(ctl_frame(c, 1, 0, TCP_SYN | TCP_ACK).act, A_DIVERT);
}

static void set_modes(const struct conn *c, uint8_t m0, uint8_t m1, uint32_t gen1, uint32_t budget1)
{
    const uint8_t mode[2] = {m0, m1};
    const uint32_t gen[2] = {1, gen1}, budget[2] = {0, budget1};

    assert_int_equal(mmtls_fast_set(fp, &c->key, mode, gen, budget, NULL), 0);
}

/* A new IPv4 connection (conn_init) after its handshake, in modes m0 / m1. */
static void conn_open(struct conn *c, uint16_t cport, uint8_t m0, uint8_t m1, uint32_t gen1,
                      uint32_t budget1)
{
    conn_init(c, cport, 4);
    handshake(c);
    set_modes(c, m0, m1, gen1, budget1);
}

static struct mmtls_fast_side_info side_info(const struct conn *c, int side)
{
    struct mmtls_fast_side_info si;

    assert_int_equal(mmtls_fast_side_get(fp, &c->key, side, &si), 0);
    return si;
}

/* A stream of TLS records: nrec records of type types[i] and body lengths lens[i]; ends[i] is
 * where record i ends (stream offset of its last byte + 1). */
#define MAX_STREAM 60000

struct stream {
    uint8_t b[MAX_STREAM];
    uint32_t len;
    uint32_t ends[256], nrec;
};

static void stream_add(struct stream *s, uint8_t type, uint32_t body)
{
    assert_true(s->len + 5 + body <= MAX_STREAM && s->nrec < 256);
    s->b[s->len] = type;
    s->b[s->len + 1] = 3;
    s->b[s->len + 2] = 3;
    mmtls_put_be16(s->b + s->len + 3, (uint16_t)body);
    for (uint32_t i = 0; i < body; i++)
        s->b[s->len + 5 + i] = (uint8_t)(i * 7 + body);
    s->len += 5 + body;
    s->ends[s->nrec++] = s->len;
}

/* Does [from, to) hold some record's last byte? */
static bool completes(const struct stream *s, uint32_t from, uint32_t to)
{
    for (uint32_t i = 0; i < s->nrec; i++)
        if (s->ends[i] > from && s->ends[i] <= to)
            return true;
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing                                                                                     */

/* A frame cut short anywhere in its headers, or whose IP length claims more than it has, is
 * diverted (the engine decodes it), never forwarded, also in a flow in INSPECT or BYPASS. */
static void truncated_headers(int ipv)
{
    uint8_t f[MAX_FRAME], pl[10] = {23, 3, 3, 0, 5};
    struct conn c;
    size_t n;

    conn_init(&c, 20001, ipv);
    handshake(&c);
    set_modes(&c, MMTLS_FASTM_BYPASS, MMTLS_FASTM_BYPASS, 1, 0);
    n = frame(f, &c, 1, c.isn[1] + 1, TCP_ACK, pl, sizeof(pl));
    assert_int_equal(run(1, f, n).act, A_FWD); /* whole: bypassed */
    /* from the end of the IP header: BPF_PROG_TEST_RUN refuses shorter IP frames itself */
    for (size_t len = 14 + (c.key.ip_version == 4 ? 20 : 40); len < n; len++) {
        struct res r = run(1, f, len);
        assert_int_equal(r.act, A_DIVERT);
    }
    if (ipv == 6) {
        /* UDP: forwarded; another next header (an extension header): diverted */
        f[14 + 6] = 17;
        assert_int_equal(run(1, f, n).act, A_OTHER);
        f[14 + 6] = 0;
        assert_int_equal(run(1, f, n).act, A_DIVERT);
        mmtls_fast_del(fp, &c.key);
        return;
    }
    /* Not TCP: forwarded as the kernel found it. */
    f[14 + 9] = 17;
    assert_int_equal(run(1, f, n).act, A_OTHER);
    f[14 + 9] = 6;
    /* An IP fragment, a header length below 20, a TCP header length below 20: diverted. */
    f[14 + 7] = 1;
    assert_int_equal(run(1, f, n).act, A_DIVERT);
    f[14 + 7] = 0;
    f[14] = 0x44;
    assert_int_equal(run(1, f, n).act, A_DIVERT);
    f[14] = 0x45;
    f[14 + 20 + 12] = 4 << 4;
    assert_int_equal(run(1, f, n).act, A_DIVERT);
    mmtls_fast_del(fp, &c.key);
}

static void test_truncated_headers(void **state)
{
    (void)state;
    NEED_FAST();
    truncated_headers(4);
    truncated_headers(6);
}

/* Without a ctl entry every frame of a flow is diverted; in INSPECT a frame is copied unless a
 * record ends in it, and then diverted. */
static void copy_and_divert(int ipv)
{
    static struct stream s;
    struct conn c;

    memset(&s, 0, sizeof(s));
    stream_add(&s, 23, 1000);
    stream_add(&s, 23, 10);
    conn_init(&c, 20002, ipv);
    handshake(&c);
    assert_int_equal(seg(&c, 1, 0, s.b, 500).act, A_DIVERT); /* no ctl yet: DIVERT */
    set_modes(&c, MMTLS_FASTM_INSPECT, MMTLS_FASTM_INSPECT, 1, 0);
    assert_int_equal(seg(&c, 1, 500, s.b, 400).act, A_COPY);
    assert_int_equal(seg(&c, 1, 900, s.b, 105).act, A_DIVERT); /* record 0 ends */
    assert_int_equal(seg(&c, 1, 1005, s.b, 15).act, A_DIVERT); /* record 1, whole */
    assert_false(side_info(&c, 1).lost);
    assert_int_equal(side_info(&c, 1).copied_bytes, 400);
    /* A pure ACK of the client: copied (the engine follows both directions). */
    assert_int_equal(ctl_frame(&c, 0, 0, TCP_ACK).act, A_COPY);
    mmtls_fast_del(fp, &c.key);
}

static void test_copy_and_divert(void **state)
{
    (void)state;
    NEED_FAST();
    copy_and_divert(4);
    copy_and_divert(6); /* the key of an IPv6 flow: endpoint 0 by address, as for IPv4 */
}

/* Records (a header in the middle of a frame, a header split across two frames, an empty
 * record, a large one) cut into two frames at every offset, then one more record: each frame is
 * diverted exactly when a record ends in it and the framing is never lost. */
static void test_split_every_offset(void **state)
{
    static struct stream s;

    (void)state;
    NEED_FAST();
    memset(&s, 0, sizeof(s));
    stream_add(&s, 22, 40);
    stream_add(&s, 23, 0);
    stream_add(&s, 23, 700);
    stream_add(&s, 21, 2);
    stream_add(&s, 23, 1100);
    stream_add(&s, 23, 30); /* the record after the cut pair */
    uint32_t total = s.ends[4];
    for (uint32_t k = 1; k < total; k++) {
        struct conn c;
        struct res r1, r2, r3;
        uint32_t l2 = total - k;

        conn_open(&c, (uint16_t)(21000 + k % 4000), MMTLS_FASTM_INSPECT, MMTLS_FASTM_INSPECT, 1, 0);
        /* frames are at most 1448 bytes of payload: cut long pieces once more */
        if (k > 1448) {
            assert_int_equal(seg(&c, 1, 0, s.b, 1000).act,
                             completes(&s, 0, 1000) ? A_DIVERT : A_COPY);
            r1 = seg(&c, 1, 1000, s.b, k - 1000);
            assert_int_equal(r1.act, completes(&s, 1000, k) ? A_DIVERT : A_COPY);
        } else {
            r1 = seg(&c, 1, 0, s.b, k);
            assert_int_equal(r1.act, completes(&s, 0, k) ? A_DIVERT : A_COPY);
        }
        if (l2 > 1448) {
            assert_int_equal(seg(&c, 1, k, s.b, 1000).act,
                             completes(&s, k, k + 1000) ? A_DIVERT : A_COPY);
            r2 = seg(&c, 1, k + 1000, s.b, l2 - 1000);
        } else {
            r2 = seg(&c, 1, k, s.b, l2);
        }
        assert_int_equal(r2.act, A_DIVERT);
        r3 = seg(&c, 1, total, s.b, s.len - total);
        assert_int_equal(r3.act, A_DIVERT);
        assert_int_equal(r1.lost + r2.lost + r3.lost, 0);
        assert_false(side_info(&c, 1).lost);
        mmtls_fast_del(fp, &c.key);
    }
}

/* Random record streams in random segmentations (a fixed seed: the same cases every run): each
 * frame's fate matches the model. */
static void test_random_segmentation(void **state)
{
    static struct stream s;
    uint32_t rnd = 12345;

    (void)state;
    NEED_FAST();
#define RND() (rnd = rnd * 1103515245u + 12345u, rnd >> 8)
    for (int iter = 0; iter < 300; iter++) {
        struct conn c;
        uint32_t off = 0;

        memset(&s, 0, sizeof(s));
        while (s.len < 20000) {
            uint32_t r = RND() % 100;
            uint32_t body = r < 30 ? RND() % 20 : r < 90 ? RND() % 2000 : RND() % 16400;
            stream_add(&s, (uint8_t)(RND() % 10 == 0 ? 22 : 23), body);
        }
        conn_open(&c, (uint16_t)(30000 + iter), MMTLS_FASTM_INSPECT, MMTLS_FASTM_INSPECT, 1, 0);
        while (off < s.len) {
            uint32_t r = RND() % 100, n = r < 20 ? 1 + RND() % 8 : 1 + RND() % 1448;
            struct res x;

            if (n > s.len - off)
                n = s.len - off;
            x = seg(&c, 1, off, s.b, n);
            assert_int_equal(x.act, completes(&s, off, off + n) ? A_DIVERT : A_COPY);
            assert_int_equal(x.lost, 0);
            /* now and then a retransmission of bytes already seen: diverted, framing kept */
            if (off > 0 && RND() % 10 == 0) {
                uint32_t back = 1 + RND() % (off < 500 ? off : 500);
                assert_int_equal(seg(&c, 1, off - back, s.b, back).act, A_DIVERT);
            }
            off += n;
        }
        assert_false(side_info(&c, 1).lost);
        mmtls_fast_del(fp, &c.key);
    }
#undef RND
}

/* ------------------------------------------------------------------------------------------ */
/* Skips                                                                                       */

/* Records of 1000 bytes (1005 on the wire) sent in 700-byte frames. */
static void stream_1005(struct stream *s, int nrec)
{
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < nrec; i++)
        stream_add(s, 23, 1000);
}

/* 700-byte frames of side 1 from `from` up to `to` in INSPECT: copied, or diverted where a
 * record ends; no skip. */
static void inspect_frames(const struct conn *c, const struct stream *s, uint32_t from, uint32_t to)
{
    for (uint32_t off = from; off < to; off += 700) {
        struct res r = seg(c, 1, off, s->b, 700);
        assert_int_equal(r.act, completes(s, off, off + 700) ? A_DIVERT : A_COPY);
        assert_int_equal(r.kskip, 0);
    }
}

/* The 700-byte frame at `at` is forwarded uncopied, by a skip the kernel started (kself) or
 * not. */
static void skipped_frame(const struct conn *c, const struct stream *s, uint32_t at, bool kself)
{
    struct res r = seg(c, 1, at, s->b, 700);

    assert_int_equal(r.act, A_FWD);
    assert_int_equal(r.kskip, kself ? 1 : 0);
}

/* Checks a frame that ended a skip: diverted, a resume at stream offset `at` after nskip
 * records, without framing (lost) or with it. */
static void check_resume(const struct conn *c, struct res r, uint32_t at, uint32_t nskip, bool lost)
{
    struct mmtls_fast_side_info si = side_info(c, 1);

    assert_int_equal(r.act, A_DIVERT);
    assert_int_equal(r.resume, 1);
    assert_int_equal(si.resume_seq, c->isn[1] + 1 + at);
    assert_int_equal(si.resume_nskip, nskip);
    assert_int_equal(si.resume_lost, lost);
}

/* With a wire budget of 2500 bytes the third record (ending at 3015) spends it; the frame it
 * ends in is diverted, and the first frame that starts at or after 3015 is forwarded uncopied:
 * a skip the kernel started itself.  It goes on while user space publishes SKIP under the
 * same generation (the engine's own pause), and ends at the first record header in a frame
 * after a new generation, with the number of records whose headers it skipped. */
static void test_wire_budget_kernel_skip(void **state)
{
    static struct stream s;
    struct mmtls_fast_side_info si;
    struct conn c;

    (void)state;
    NEED_FAST();
    stream_1005(&s, 14);
    conn_open(&c, 20003, MMTLS_FASTM_INSPECT, MMTLS_FASTM_INSPECT, 2, 2500);
    inspect_frames(&c, &s, 0, 3500);
    skipped_frame(&c, &s, 3500, true);
    /* the engine pauses too: SKIP under the same generation keeps the kernel's skip */
    set_modes(&c, MMTLS_FASTM_INSPECT, MMTLS_FASTM_SKIP, 2, 0);
    for (uint32_t off = 4200; off < 7000; off += 700)
        skipped_frame(&c, &s, off, false); /* (no resume either: checked by A_FWD) */
    si = side_info(&c, 1);
    assert_int_equal(si.skipped_bytes, 3500);
    /* The next request: a new generation with a new budget.  Headers at 4020, 5025, 6030 were
     * skipped; the next, at 7035, is in [7000, 7700): inspection resumes there. */
    set_modes(&c, MMTLS_FASTM_INSPECT, MMTLS_FASTM_INSPECT, 3, 2500);
    check_resume(&c, seg(&c, 1, 7000, s.b, 700), 7035, 3, false);
    /* and the new count runs from there: records at 7035, 8040 and 9045 spend it (9045 + 1005 =
     * 10050); the first frame from 10050 on is skipped by the kernel again */
    inspect_frames(&c, &s, 7700, 10500);
    skipped_frame(&c, &s, 10500, true);
    mmtls_fast_del(fp, &c.key);
}

/* The race test_fast.sh cannot pin down, both ways round: when user space publishes SKIP (the
 * budget's generation, no new one) before the kernel reaches the first frame after the record
 * that spends the budget, the skip starts at that same frame but is user space's (no kernel
 * skip counted); when user space pauses earlier than the kernel's count (its count started
 * earlier), the skip starts at the next frame. */
static void user_skip_at(uint16_t cport, uint32_t at)
{
    static struct stream s;
    struct conn c;

    stream_1005(&s, 8);
    conn_open(&c, cport, MMTLS_FASTM_INSPECT, MMTLS_FASTM_INSPECT, 2, 2500);
    inspect_frames(&c, &s, 0, at);
    set_modes(&c, MMTLS_FASTM_INSPECT, MMTLS_FASTM_SKIP, 2, 0);
    skipped_frame(&c, &s, at, false);
    mmtls_fast_del(fp, &c.key);
}

static void test_wire_budget_user_first(void **state)
{
    (void)state;
    NEED_FAST();
    user_skip_at(20004, 3500); /* the budget is spent at 3015: where the kernel would start */
    user_skip_at(20005, 1400); /* before it is spent: from the next frame on */
}

/* A wire budget counts application data only: handshake records in INSPECT leave it whole. */
static void test_wire_budget_counts_appdata(void **state)
{
    static struct stream s;
    struct conn c;

    (void)state;
    NEED_FAST();
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 6; i++)
        stream_add(&s, 22, 1000);
    for (int i = 0; i < 4; i++)
        stream_add(&s, 23, 1000);
    conn_open(&c, 20006, MMTLS_FASTM_INSPECT, MMTLS_FASTM_INSPECT, 2, 1500);
    /* 6030 bytes of handshake records, then application data: 6030 + 2010 = 8040 spends it */
    inspect_frames(&c, &s, 0, 8400);
    skipped_frame(&c, &s, 8400, true);
    mmtls_fast_del(fp, &c.key);
}

/* Three records of application data and an alert (at 3015); a skip from 1005 on, its frame
 * ending at `cut`, then the rest in one frame. */
static void skip_to_alert(uint16_t cport, uint32_t cut)
{
    static struct stream s;
    struct conn c;

    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 3; i++)
        stream_add(&s, 23, 1000);
    stream_add(&s, 21, 20);
    conn_open(&c, cport, MMTLS_FASTM_INSPECT, MMTLS_FASTM_INSPECT, 1, 0);
    assert_int_equal(seg(&c, 1, 0, s.b, 1005).act, A_DIVERT);
    set_modes(&c, MMTLS_FASTM_INSPECT, MMTLS_FASTM_SKIP, 2, 0);
    assert_int_equal(seg(&c, 1, 1005, s.b, cut - 1005).act, A_FWD);
    check_resume(&c, seg(&c, 1, cut, s.b, s.len - cut), 3015, 2, cut > 3015);
    mmtls_fast_del(fp, &c.key);
}

/* A skip user space asks for ends at a non-application record whose header is in a frame (the
 * engine must see the alert): that frame is diverted.  When the header began in a frame that
 * left uncopied (2 of its 5 bytes), the skip ends there without framing (resume_lost). */
static void test_skip_ends_at_alert(void **state)
{
    (void)state;
    NEED_FAST();
    skip_to_alert(20007, 2010);
    skip_to_alert(20012, 3017);
}

/* ------------------------------------------------------------------------------------------ */
/* Failing closed                                                                              */

/* A header that is not TLS, or a hole in the stream, loses the side's framing: that frame and
 * every later one is diverted (the engine decides), with the loss counted once. */
static void test_lost_framing(void **state)
{
    static struct stream s;
    struct conn c;
    struct res r;

    (void)state;
    NEED_FAST();
    stream_1005(&s, 4);
    s.b[2010] = 0x99; /* record 2's header */
    conn_open(&c, 20008, MMTLS_FASTM_INSPECT, MMTLS_FASTM_SKIP, 2, 0);
    assert_int_equal(seg(&c, 1, 0, s.b, 700).act, A_FWD);
    r = seg(&c, 1, 700, s.b, 1400);
    assert_int_equal(r.act, A_DIVERT); /* lost inside a skip: resume without framing */
    assert_int_equal(r.lost, 1);
    assert_true(side_info(&c, 1).lost);
    r = seg(&c, 1, 2100, s.b, 700);
    assert_int_equal(r.act, A_DIVERT);
    assert_int_equal(r.lost, 0);
    mmtls_fast_del(fp, &c.key);

    /* a hole: bytes [700, 1400) never arrive */
    stream_1005(&s, 4);
    conn_open(&c, 20009, MMTLS_FASTM_INSPECT, MMTLS_FASTM_INSPECT, 1, 0);
    assert_int_equal(seg(&c, 1, 0, s.b, 700).act, A_COPY);
    r = seg(&c, 1, 1400, s.b, 700);
    assert_int_equal(r.act, A_DIVERT);
    assert_int_equal(r.lost, 1);
    assert_int_equal(seg(&c, 1, 2100, s.b, 700).act, A_DIVERT);
    mmtls_fast_del(fp, &c.key);
}

/* A record longer than TLS allows (2^14 + 2048) is not followed: framing lost. */
static void test_overlong_record(void **state)
{
    uint8_t b[40] = {23, 3, 3, 0x48, 0x01};
    struct conn c;
    struct res r;

    (void)state;
    NEED_FAST();
    conn_open(&c, 20010, MMTLS_FASTM_INSPECT, MMTLS_FASTM_INSPECT, 1, 0);
    r = seg(&c, 1, 0, b, sizeof(b));
    assert_int_equal(r.act, A_DIVERT);
    assert_int_equal(r.lost, 1);
    mmtls_fast_del(fp, &c.key);
}

/* BYPASS forwards data uncopied and copies SYN/FIN/RST; BLOCK drops everything but a bare SYN
 * (a new connection on the 4-tuple), which is diverted like every SYN. */
static void test_bypass_and_block(void **state)
{
    uint8_t pl[100] = {0};
    struct conn c;

    (void)state;
    NEED_FAST();
    conn_open(&c, 20011, MMTLS_FASTM_BYPASS, MMTLS_FASTM_BYPASS, 1, 0);
    assert_int_equal(seg(&c, 1, 0, pl, sizeof(pl)).act, A_FWD);
    assert_int_equal(seg(&c, 0, 0, pl, sizeof(pl)).act, A_FWD);
    assert_int_equal(ctl_frame(&c, 1, 100, TCP_FIN | TCP_ACK).act, A_COPY);
    set_modes(&c, MMTLS_FASTM_BLOCK, MMTLS_FASTM_BLOCK, 1, 0);
    assert_int_equal(seg(&c, 1, 0, pl, sizeof(pl)).act, A_DROP);
    assert_int_equal(ctl_frame(&c, 0, 100, TCP_RST).act, A_DROP);
    assert_int_equal(ctl_frame(&c, 1, 0, TCP_SYN | TCP_ACK).act, A_DROP);
    assert_int_equal(ctl_frame(&c, 0, 0, TCP_SYN).act, A_DIVERT);
    mmtls_fast_del(fp, &c.key);
}

#else /* !MMTLS_TEST_FAST */

static int setup(void **state)
{
    (void)state;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return 0;
}

#define SKIPPED(name)                                                                              \
    static void name(void **state)                                                                 \
    {                                                                                              \
        (void)state;                                                                               \
        skip();                                                                                    \
    }
SKIPPED(test_truncated_headers)
SKIPPED(test_copy_and_divert)
SKIPPED(test_split_every_offset)
SKIPPED(test_random_segmentation)
SKIPPED(test_wire_budget_kernel_skip)
SKIPPED(test_wire_budget_user_first)
SKIPPED(test_wire_budget_counts_appdata)
SKIPPED(test_skip_ends_at_alert)
SKIPPED(test_lost_framing)
SKIPPED(test_overlong_record)
SKIPPED(test_bypass_and_block)

#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated_headers),
        cmocka_unit_test(test_copy_and_divert),
        cmocka_unit_test(test_split_every_offset),
        cmocka_unit_test(test_random_segmentation),
        cmocka_unit_test(test_wire_budget_kernel_skip),
        cmocka_unit_test(test_wire_budget_user_first),
        cmocka_unit_test(test_wire_budget_counts_appdata),
        cmocka_unit_test(test_skip_ends_at_alert),
        cmocka_unit_test(test_lost_framing),
        cmocka_unit_test(test_overlong_record),
        cmocka_unit_test(test_bypass_and_block),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
