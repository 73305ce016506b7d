/* Unit tests for the AF_PACKET port (src/io/io_afpacket.c).  Option checks run anywhere; the
 * ring tests need CAP_NET_RAW and CAP_SYS_ADMIN: they move into a private network namespace
 * (unshare) and pass frames between two ports on its loopback interface, which hands every
 * transmitted frame back as received.  Without the privileges they are skipped.
 * End-to-end forwarding over veth (GSO, offloads, VLAN) is tests/integration/test_afpacket.sh. */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "io/io.h"

#define ETHERTYPE_TEST 0x88b5 /* IEEE 802 local experimental */

static bool in_netns;

/* Private netns with loopback up; false when not permitted. */
static bool enter_netns(void)
{
    struct ifreq ifr = {0};
    int s;

    if (in_netns) {
        return true;
    }
    if (unshare(CLONE_NEWNET) != 0) {
        return false;
    }
    s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) {
        return false;
    }
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        in_netns = ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
    }
    close(s);
    return in_netns;
}

static struct mmtls_afp_opts small_opts(bool vnet)
{
    struct mmtls_afp_opts o = {
        .sz = sizeof(o),
        .ifname = "lo",
        .vnet_hdr = vnet,
        .block_size = 4096,
        .block_nr = 4,
        .tx_frame_size = 4096,
        .tx_frame_nr = 256,
    };
    return o;
}

/* A test frame: broadcast dst, src 02:00:00:00:00:01, ETHERTYPE_TEST, payload byte i+seq. */
static uint32_t make_frame(uint8_t *f, uint32_t len, uint8_t seq)
{
    memset(f, 0xff, 6);
    memcpy(f + 6, "\x02\x00\x00\x00\x00\x01", 6);
    f[12] = ETHERTYPE_TEST >> 8;
    f[13] = ETHERTYPE_TEST & 0xff;
    for (uint32_t i = 14; i < len; i++) {
        f[i] = (uint8_t)(i + seq);
    }
    return len;
}

static bool is_test_frame(const struct mmtls_afp_frame *f)
{
    return f->len >= 14 && f->data[12] == (ETHERTYPE_TEST >> 8) &&
           f->data[13] == (ETHERTYPE_TEST & 0xff);
}

/* Receives up to `want` test frames into copies (other traffic is skipped). */
static int rx_collect(struct mmtls_afp *p, uint8_t (*buf)[2048], uint32_t *len,
                      struct mmtls_afp_frame *meta, int want, int burst)
{
    struct mmtls_afp_frame f[64];
    int got = 0;

    for (int spins = 0; got < want && spins < 2000; spins++) {
        int n = mmtls_afp_rx_burst(p, f, burst);

        for (int i = 0; i < n; i++) {
            if (!is_test_frame(&f[i]) || got == want) {
                continue;
            }
            assert_true(f[i].len <= 2048);
            memcpy(buf[got], f[i].data, f[i].len);
            len[got] = f[i].len;
            meta[got] = f[i];
            meta[got].data = NULL;
            got++;
        }
        mmtls_afp_rx_done(p);
        if (n == 0) {
            usleep(1000); /* wait for the 1 ms block retire timer */
        }
    }
    return got;
}

static void test_open_invalid(void **state)
{
    struct mmtls_afp_opts o = small_opts(false);
    struct mmtls_afp *p = (struct mmtls_afp *)&o;
    char err[128];

    (void)state;
    assert_int_equal(mmtls_afp_open(&p, NULL, err, sizeof(err)), MMTLS_E_INVAL);
    assert_null(p);
    o.sz = 4;
    assert_int_equal(mmtls_afp_open(&p, &o, err, sizeof(err)), MMTLS_E_INVAL);
    o = small_opts(false);
    o.ifname = "an-interface-name-too-long";
    assert_int_equal(mmtls_afp_open(&p, &o, err, sizeof(err)), MMTLS_E_INVAL);
    o = small_opts(false);
    o.block_size = 5000; /* not a power of two */
    assert_int_equal(mmtls_afp_open(&p, &o, err, sizeof(err)), MMTLS_E_INVAL);
    o = small_opts(false);
    o.tx_frame_size = 4100; /* not a multiple of TPACKET_ALIGNMENT */
    assert_int_equal(mmtls_afp_open(&p, &o, err, sizeof(err)), MMTLS_E_INVAL);
    o = small_opts(false);
    o.fanout_group = 256;
    assert_int_equal(mmtls_afp_open(&p, &o, err, sizeof(err)), MMTLS_E_INVAL);
    o = small_opts(false);
    o.ifname = "mmtlsnope0";
    assert_int_equal(mmtls_afp_open(&p, &o, err, sizeof(err)), MMTLS_E_NOTFOUND);
    assert_non_null(strstr(err, "mmtlsnope0: no such interface"));
    assert_null(p);
    mmtls_afp_close(NULL);
}

static void test_open_unprivileged(void **state)
{
    struct mmtls_afp_opts o = small_opts(false);
    struct mmtls_afp *p;
    char err[128];
    int s = socket(AF_PACKET, SOCK_RAW, 0);

    (void)state;
    if (s >= 0) {
        close(s);
        skip(); /* privileged: covered by the ring tests */
    }
    assert_int_equal(mmtls_afp_open(&p, &o, err, sizeof(err)), MMTLS_E_IO);
    assert_non_null(strstr(err, "lo: cannot create AF_PACKET socket: "));
}

/* Five frames out of one port, received in order and intact on another.  by_ref: frames 1, 2
 * and 4 are sent by reference, 0 and 3 through the TX ring, so the two queues alternate. */
static void roundtrip(bool vnet, bool by_ref)
{
    struct mmtls_afp_opts o = small_opts(vnet);
    struct mmtls_afp *tx, *rx;
    struct mmtls_afp_frame meta[8];
    struct mmtls_afp_stats st;
    static uint8_t got[8][2048];
    uint32_t got_len[8];
    static uint8_t out[5][2048]; /* sent by reference: borrowed until the flush */
    uint8_t f[2048], vh[10] = {0};
    const uint32_t lens[] = {60, 61, 1000, 1514, 64};
    char err[128];

    if (!enter_netns()) {
        skip();
    }
    assert_int_equal(mmtls_afp_open(&rx, &o, err, sizeof(err)), 0);
    o.fanout_group = 7; /* a one-member group on lo: joins, and does not change delivery */
    assert_int_equal(mmtls_afp_open(&tx, &o, err, sizeof(err)), 0);
    assert_true(mmtls_afp_fd(tx) >= 0);
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(lens); i++) {
        uint32_t n = make_frame(out[i], lens[i], (uint8_t)i);
        bool tagged = i == 4;

        /* The last one leaves with an 802.1Q tag (PCP 3, VID 42) re-inserted by the port. */
        if (by_ref && (i == 1 || i == 2 || i == 4)) {
            assert_int_equal(
                mmtls_afp_tx_ref(tx, out[i], n, vnet ? vh : NULL, tagged ? 0x602a : 0, tagged), 0);
        } else {
            assert_int_equal(
                mmtls_afp_tx(tx, out[i], n, vnet ? vh : NULL, tagged ? 0x602a : 0, tagged), 0);
        }
    }
    mmtls_afp_tx_flush(tx);
    assert_int_equal(rx_collect(rx, got, got_len, meta, 5, 64), 5);
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(lens); i++) {
        (void)make_frame(f, lens[i], (uint8_t)i);
        /* Received untagged: the kernel moves the tag into the ring header. */
        assert_int_equal(got_len[i], lens[i]);
        assert_memory_equal(got[i], f, lens[i]);
        assert_int_equal(meta[i].vlan_valid, i == 4);
        assert_int_equal(meta[i].vlan_tci, i == 4 ? 0x602a : 0);
        assert_int_equal(meta[i].vnet != NULL, vnet);
        assert_true(meta[i].ts_us > 0);
    }
    mmtls_afp_get_stats(tx, &st);
    assert_int_equal(st.tx_frames, 5);
    assert_int_equal(st.tx_bytes, 60 + 61 + 1000 + 1514 + 64 + 4);
    assert_int_equal(st.tx_errors, 0);
    mmtls_afp_get_stats(rx, &st);
    assert_true(st.rx_frames >= 5);
    assert_int_equal(st.rx_drops_kernel, 0);
    mmtls_afp_close(tx);
    mmtls_afp_close(rx);
}

static void test_roundtrip(void **state)
{
    (void)state;
    roundtrip(false, false);
}

static void test_roundtrip_vnet(void **state)
{
    (void)state;
    roundtrip(true, false);
}

static void test_roundtrip_by_ref(void **state)
{
    (void)state;
    roundtrip(false, true);
    roundtrip(true, true);
}

/* Many more frames than the RX ring's 4 blocks of 4 KiB hold, received in bursts of 3 so
 * that bursts end inside blocks and span blocks: the ring keeps cycling only if every block is
 * given back. */
static void test_rx_blocks_cycle(void **state)
{
    struct mmtls_afp_opts o = small_opts(false);
    struct mmtls_afp *tx, *rx;
    struct mmtls_afp_frame meta[8];
    static uint8_t got[8][2048];
    uint32_t got_len[8];
    uint8_t f[2048];
    char err[128];

    (void)state;
    if (!enter_netns()) {
        skip();
    }
    assert_int_equal(mmtls_afp_open(&rx, &o, err, sizeof(err)), 0);
    assert_int_equal(mmtls_afp_open(&tx, &o, err, sizeof(err)), 0);
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < 8; i++) {
            uint32_t n = make_frame(f, 700, (uint8_t)(round * 8 + i));

            assert_int_equal(mmtls_afp_tx(tx, f, n, NULL, 0, false), 0);
        }
        mmtls_afp_tx_flush(tx);
        assert_int_equal(rx_collect(rx, got, got_len, meta, 8, 3), 8);
        for (int i = 0; i < 8; i++) {
            (void)make_frame(f, 700, (uint8_t)(round * 8 + i));
            assert_memory_equal(got[i], f, 700);
        }
    }
    mmtls_afp_close(tx);
    mmtls_afp_close(rx);
}

/* A full TX ring refuses (MMTLS_E_LIMIT, counted) instead of blocking; a flush frees it.  An
 * oversized frame is refused as well, by the ring and by reference. */
static void test_tx_ring_full(void **state)
{
    struct mmtls_afp_opts o = small_opts(false);
    struct mmtls_afp *tx;
    struct mmtls_afp_stats st;
    static uint8_t big[4096];
    uint8_t f[64];
    char err[128];
    int i;

    (void)state;
    if (!enter_netns()) {
        skip();
    }
    assert_int_equal(mmtls_afp_open(&tx, &o, err, sizeof(err)), 0);
    (void)make_frame(f, sizeof(f), 0);
    for (i = 0; i < 100000; i++) {
        if (mmtls_afp_tx(tx, f, sizeof(f), NULL, 0, false) != 0) {
            break;
        }
    }
    assert_int_equal(i, 256); /* 256 slots of 4 KiB: exactly one 1 MiB block */
    assert_int_equal(mmtls_afp_tx(tx, f, sizeof(f), NULL, 0, false), MMTLS_E_LIMIT);
    mmtls_afp_get_stats(tx, &st);
    assert_int_equal(st.tx_ring_full, 2);
    mmtls_afp_tx_flush(tx);
    assert_int_equal(mmtls_afp_tx(tx, f, sizeof(f), NULL, 0, false), 0);
    assert_int_equal(mmtls_afp_tx(tx, big, sizeof(big), NULL, 0, false), MMTLS_E_LIMIT);
    assert_int_equal(mmtls_afp_tx(tx, f, 8, NULL, 1, true), MMTLS_E_INVAL);
    mmtls_afp_tx_flush(tx);
    mmtls_afp_get_stats(tx, &st);
    assert_int_equal(st.tx_frames, 257);
    assert_int_equal(st.tx_errors, 2);
    /* By reference: no ring to fill (the queue sends itself every 64 frames); the same checks
     * refuse the same frames. */
    for (i = 0; i < 200; i++) {
        assert_int_equal(mmtls_afp_tx_ref(tx, f, sizeof(f), NULL, 0, false), 0);
    }
    assert_int_equal(mmtls_afp_tx_ref(tx, big, sizeof(big), NULL, 0, false), MMTLS_E_LIMIT);
    assert_int_equal(mmtls_afp_tx_ref(tx, f, 8, NULL, 1, true), MMTLS_E_INVAL);
    mmtls_afp_tx_flush(tx);
    mmtls_afp_get_stats(tx, &st);
    assert_int_equal(st.tx_frames, 457);
    assert_int_equal(st.tx_errors, 4);
    assert_int_equal(st.tx_ring_full, 2);
    mmtls_afp_close(tx);
}

/* Sends out of another interface (tx_ref_dev, tx_copy_dev: what the fast path does from its
 * divert socket): a port on lo sends to a veth whose peer another port reads.  Frames sent on
 * the port's own interface (ring, by reference, ifindex 0) reach lo and not the peer, also from
 * a queue slot that carried an address before; copies are taken at the call (the caller's
 * buffer is overwritten before the flush), and 150 copies in a row wrap the staging slots (the
 * queue sends itself every 64).  Refusals as for tx_ref. */
static void test_tx_other_interface(void **state)
{
    struct mmtls_afp_opts o = small_opts(true);
    struct mmtls_afp *tx, *rx, *rxlo;
    struct mmtls_afp_frame meta[160];
    struct mmtls_afp_stats st;
    static uint8_t got[160][2048];
    static uint32_t got_len[160];
    static uint8_t ref[3][2048], big[4096];
    uint8_t f[2048], vh[10] = {0};
    char err[128];
    int ifx;

    (void)state;
    if (!enter_netns()) {
        skip();
    }
    /* The receiving end first: the sending end then gets its carrier (and its qdisc) at once. */
    if (system("ip link add afpta type veth peer name afptb 2>/dev/null && "
               "sysctl -qw net.ipv6.conf.afpta.disable_ipv6=1 net.ipv6.conf.afptb.disable_ipv6=1 "
               "&& ip link set afptb up && ip link set afpta up") != 0) {
        skip(); /* no veth here */
    }
    for (int i = 0; i < 200 && system("grep -qx up /sys/class/net/afpta/operstate") != 0; i++) {
        usleep(10000);
    }
    ifx = (int)if_nametoindex("afpta");
    assert_true(ifx > 0);
    o.ifname = "afptb";
    o.block_nr = 256; /* 150 frames of 100 bytes in 1 MiB of V3 blocks */
    assert_int_equal(mmtls_afp_open(&rx, &o, err, sizeof(err)), 0);
    o.ifname = "lo";
    assert_int_equal(mmtls_afp_open(&rxlo, &o, err, sizeof(err)), 0);
    assert_int_equal(mmtls_afp_open(&tx, &o, err, sizeof(err)), 0);

    /* interleaved: own interface (ring, by reference) and the veth (by reference, copied) */
    (void)make_frame(ref[0], 60, 200);
    assert_int_equal(mmtls_afp_tx(tx, ref[0], 60, vh, 0, false), 0);
    (void)make_frame(ref[1], 1000, 1);
    assert_int_equal(mmtls_afp_tx_ref_dev(tx, ifx, ref[1], 1000, vh, 0, false), 0);
    (void)make_frame(f, 300, 2);
    assert_int_equal(mmtls_afp_tx_copy_dev(tx, ifx, f, 300, NULL, 0, false), 0);
    memset(f, 0, sizeof(f)); /* the copy was taken at the call */
    (void)make_frame(ref[2], 70, 201);
    assert_int_equal(mmtls_afp_tx_ref_dev(tx, 0, ref[2], 70, vh, 0, false), 0);
    (void)make_frame(f, 64, 3);
    assert_int_equal(mmtls_afp_tx_copy_dev(tx, ifx, f, 64, vh, 0x602a, true), 0);
    assert_int_equal(mmtls_afp_tx_copy_dev(tx, ifx, big, sizeof(big), NULL, 0, false),
                     MMTLS_E_LIMIT);
    assert_int_equal(mmtls_afp_tx_copy_dev(tx, ifx, f, 8, NULL, 1, true), MMTLS_E_INVAL);
    mmtls_afp_tx_flush(tx);
    assert_int_equal(rx_collect(rx, got, got_len, meta, 3, 64), 3);
    (void)make_frame(f, 1000, 1);
    assert_int_equal(got_len[0], 1000);
    assert_memory_equal(got[0], f, 1000);
    (void)make_frame(f, 300, 2);
    assert_int_equal(got_len[1], 300);
    assert_memory_equal(got[1], f, 300);
    (void)make_frame(f, 64, 3);
    assert_int_equal(got_len[2], 64);
    assert_memory_equal(got[2], f, 64);
    assert_true(meta[2].vlan_valid);
    assert_int_equal(meta[2].vlan_tci, 0x602a);
    /* the frames for lo came out on lo, and only there */
    assert_int_equal(rx_collect(rxlo, got, got_len, meta, 2, 64), 2);
    assert_int_equal(got_len[0], 60);
    assert_memory_equal(got[0], ref[0], 60);
    assert_int_equal(got_len[1], 70);
    assert_memory_equal(got[1], ref[2], 70);
    assert_int_equal(rx_collect(rx, got, got_len, meta, 1, 64), 0);

    for (int i = 0; i < 150; i++) {
        (void)make_frame(f, 100, (uint8_t)i);
        assert_int_equal(mmtls_afp_tx_copy_dev(tx, ifx, f, 100, NULL, 0, false), 0);
    }
    mmtls_afp_tx_flush(tx);
    assert_int_equal(rx_collect(rx, got, got_len, meta, 150, 64), 150);
    for (int i = 0; i < 150; i++) {
        (void)make_frame(f, 100, (uint8_t)i);
        assert_int_equal(got_len[i], 100);
        assert_memory_equal(got[i], f, 100);
    }
    /* every queue slot has carried an address now: one for lo must go to lo all the same */
    (void)make_frame(ref[2], 80, 202);
    assert_int_equal(mmtls_afp_tx_ref_dev(tx, 0, ref[2], 80, NULL, 0, false), 0);
    mmtls_afp_tx_flush(tx);
    assert_int_equal(rx_collect(rxlo, got, got_len, meta, 1, 64), 1);
    assert_int_equal(got_len[0], 80);
    assert_memory_equal(got[0], ref[2], 80);
    assert_int_equal(rx_collect(rx, got, got_len, meta, 1, 64), 0);
    mmtls_afp_get_stats(tx, &st);
    assert_int_equal(st.tx_frames, 156);
    assert_int_equal(st.tx_errors, 2);
    mmtls_afp_get_stats(rx, &st);
    assert_int_equal(st.rx_drops_kernel, 0);
    mmtls_afp_close(tx);
    mmtls_afp_close(rxlo);
    mmtls_afp_close(rx);
    assert_int_equal(system("ip link del afpta"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_invalid),     cmocka_unit_test(test_open_unprivileged),
        cmocka_unit_test(test_roundtrip),        cmocka_unit_test(test_roundtrip_vnet),
        cmocka_unit_test(test_rx_blocks_cycle),  cmocka_unit_test(test_tx_ring_full),
        cmocka_unit_test(test_roundtrip_by_ref), cmocka_unit_test(test_tx_other_interface),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
