/* mmtls_fast — the kernel fast path of the inline middlebox (docs/FASTPATH.md).
 *
 * mmtls_fast_port: TC ingress (clsact) of both bridged ports.  Every frame leaves by the other
 * port (bpf_redirect keeps GSO super-frames whole) unless user space must see it first:
 *  - frames of TCP flows the kernel does not know, SYN/FIN/RST, retransmissions, reordered
 *    segments, IP fragments and frames of flows user space marked DIVERT are diverted: sent
 *    only to the divert interface, tagged, for mmtlsd to run the engine and send them on;
 *  - in INSPECT, a frame that completes a TLS record (some record's last byte is in it) is
 *    diverted; any other frame is forwarded and a clone is sent to user space (a copy);
 *  - in SKIP (past the inspection depth) frames are forwarded uncopied while the record
 *    framing is still followed, so that inspection can resume at a record boundary, with the
 *    number of records skipped (their AEAD sequence numbers);
 *  - in INSPECT with a wire budget the kernel counts the application-data records it reads and
 *    starts the skip itself once they reach the budget (the engine counts the same way and
 *    pauses no later, engine_fast.c), so that the sender's window past the inspection depth
 *    is not copied while user space catches up;
 *  - BYPASS forwards (copies of SYN/FIN/RST only), BLOCK drops.
 * The kernel walks record headers itself (5 bytes each, RFC 8446 §5.1 / RFC 5246 §6.2.1) on
 * in-order frames; any surprise (reordering, a header that is not TLS, too many records in a
 * frame) marks the side lost and everything of it is diverted from then on (fail closed).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "mmtls_fast_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct mmtls_fast_cfg);
} mmtls_cfg SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MMTLS_FAST_MAX_FLOWS);
    __uint(map_flags, BPF_F_NO_PREALLOC); /* updates replace entries under RCU: no torn reads */
    __type(key, struct mmtls_fast_key);
    __type(value, struct mmtls_fast_ctl);
} mmtls_ctl SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MMTLS_FAST_MAX_FLOWS);
    __type(key, struct mmtls_fast_key);
    __type(value, struct mmtls_fast_state);
} mmtls_state SEC(".maps");

/* Zero bytes to create a state entry from (a struct with a lock cannot live on the stack
 * here: the stack is 512 bytes). */
struct zero_state {
    unsigned char b[sizeof(struct mmtls_fast_state)];
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct zero_state);
} mmtls_zero SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, MMTLS_FAST_C_N);
    __type(key, __u32);
    __type(value, __u64);
} mmtls_stats SEC(".maps");

#define SEQ_LT(a, b) ((__s32)((__u32)(a) - (__u32)(b)) < 0)
#define SEQ_LEQ(a, b) ((__s32)((__u32)(a) - (__u32)(b)) <= 0)

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

static __always_inline void count(__u32 c, __u64 n)
{
    __u64 *v = bpf_map_lookup_elem(&mmtls_stats, &c);

    if (v != NULL)
        *v += n;
}

/* What the parser found in a frame. */
struct pinfo {
    struct mmtls_fast_key key;
    int side;    /* endpoint index of the sender */
    __u32 l7off; /* offset of the TCP payload in the frame */
    __u32 seq;
    __u32 plen;
    __u8 flags;
};

enum { P_TCP = 0, P_OTHER = 1, P_DIVERT = 2 };

/* Lexicographic comparison of two addresses (network byte order words). */
static __always_inline int addr_cmp(const __u32 *a, const __u32 *b, int words)
{
    for (int i = 0; i < 4; i++) {
        __u32 x, y;
        if (i >= words)
            break;
        x = bpf_ntohl(a[i]);
        y = bpf_ntohl(b[i]);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

static __noinline int parse(struct __sk_buff *skb, struct pinfo *pi)
{
    __u32 src[4] = {0}, dst[4] = {0}, l4, iplen, hl;
    __u16 sport, dport;
    __u8 tcp[20];
    int words, c;

    if (skb->vlan_present)
        return P_DIVERT; /* tagged frames: the engine decodes them */
    if (skb->protocol == bpf_htons(ETH_P_IP)) {
        __u8 ip[20];
        if (bpf_skb_load_bytes(skb, ETH_HLEN, ip, sizeof(ip)) < 0)
            return P_DIVERT;
        hl = (__u32)(ip[0] & 0x0f) * 4;
        if ((ip[0] >> 4) != 4 || hl < 20)
            return P_DIVERT;
        if (((ip[6] & 0x3f) | ip[7]) != 0)
            return P_DIVERT; /* a fragment (MF or an offset): the engine reassembles it */
        if (ip[9] != IPPROTO_TCP)
            return P_OTHER;
        __builtin_memcpy(&src[0], ip + 12, 4);
        __builtin_memcpy(&dst[0], ip + 16, 4);
        iplen = (__u32)ip[2] << 8 | ip[3];
        if (iplen == 0) /* BIG TCP: the length is the frame's */
            iplen = skb->len - ETH_HLEN;
        if (iplen < hl)
            return P_DIVERT;
        l4 = ETH_HLEN + hl;
        iplen -= hl;
        words = 1;
        pi->key.ip_version = 4;
    } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
        __u8 ip6[40];
        if (bpf_skb_load_bytes(skb, ETH_HLEN, ip6, sizeof(ip6)) < 0)
            return P_DIVERT;
        if (ip6[6] != IPPROTO_TCP)
            return (ip6[6] == IPPROTO_UDP || ip6[6] == 58) ? P_OTHER : P_DIVERT;
        __builtin_memcpy(src, ip6 + 8, 16);
        __builtin_memcpy(dst, ip6 + 24, 16);
        iplen = (__u32)ip6[4] << 8 | ip6[5];
        if (iplen == 0)
            iplen = skb->len - ETH_HLEN - 40;
        l4 = ETH_HLEN + 40;
        words = 4;
        pi->key.ip_version = 6;
    } else {
        return P_OTHER;
    }
    if (bpf_skb_load_bytes(skb, l4, tcp, sizeof(tcp)) < 0)
        return P_DIVERT;
    hl = (__u32)(tcp[12] >> 4) * 4;
    if (hl < 20 || iplen < hl || l4 + iplen > skb->len)
        return P_DIVERT;
    sport = (__u16)tcp[0] << 8 | tcp[1];
    dport = (__u16)tcp[2] << 8 | tcp[3];
    pi->seq = (__u32)tcp[4] << 24 | (__u32)tcp[5] << 16 | (__u32)tcp[6] << 8 | tcp[7];
    pi->flags = tcp[13];
    pi->l7off = l4 + hl;
    pi->plen = iplen - hl;
    /* endpoint 0 = the smaller (address, port), as src/flow/flow.c keys flows */
    c = addr_cmp(src, dst, words);
    if (c < 0 || (c == 0 && sport <= dport)) {
        __builtin_memcpy(pi->key.addr[0], src, 16);
        __builtin_memcpy(pi->key.addr[1], dst, 16);
        pi->key.port[0] = sport;
        pi->key.port[1] = dport;
        pi->side = 0;
    } else {
        __builtin_memcpy(pi->key.addr[0], dst, 16);
        __builtin_memcpy(pi->key.addr[1], src, 16);
        pi->key.port[0] = dport;
        pi->key.port[1] = sport;
        pi->side = 1;
    }
    return P_TCP;
}

static __always_inline int divert(struct __sk_buff *skb, const struct mmtls_fast_cfg *cfg, int kind,
                                  int port)
{
    if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), MMTLS_FAST_VID(kind, port)) != 0)
        return TC_ACT_SHOT; /* cannot mark it: drop (TCP retransmits), never pass it */
    count(MMTLS_FAST_C_DIVERT, 1);
    count(MMTLS_FAST_C_DIVERT_BYTES, skb->len);
    return bpf_redirect(cfg->divert_ifindex, 0);
}

static __always_inline int fwd_copy(struct __sk_buff *skb, const struct mmtls_fast_cfg *cfg,
                                    int port)
{
    __u32 len = skb->len;

    if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), MMTLS_FAST_VID(MMTLS_FAST_K_COPY, port)) !=
        0)
        return TC_ACT_SHOT;
    if (bpf_clone_redirect(skb, cfg->divert_ifindex, 0) != 0) {
        /* No copy for user space: the frame must not pass uninspected. */
        return TC_ACT_SHOT;
    }
    if (bpf_skb_vlan_pop(skb) != 0)
        return TC_ACT_SHOT;
    count(MMTLS_FAST_C_COPY, 1);
    count(MMTLS_FAST_C_COPY_BYTES, len);
    return bpf_redirect(cfg->ifindex[port ^ 1], 0);
}

static __always_inline int fwd(struct __sk_buff *skb, const struct mmtls_fast_cfg *cfg, int port)
{
    count(MMTLS_FAST_C_FWD, 1);
    count(MMTLS_FAST_C_FWD_BYTES, skb->len);
    return bpf_redirect(cfg->ifindex[port ^ 1], 0);
}

/* What the walk is asked (in) and decided (out) for a frame. */
struct walk {
    __u8 want_skip;   /* in: user space asks for a skip (generation gen) */
    __u8 want_resume; /* in: the skip in progress must end at the next record boundary */
    __u8 fin;         /* in: the stream ends (FIN or RST) */
    __u32 gen;
    __u8 completes; /* a record ends in the frame */
    __u8 retrans;   /* the frame starts before the in-order point */
    __u8 resume;    /* 1: a skip ends at resume_at; 2: it ends without framing */
    __u8 entered;   /* a skip starts with this frame */
    __u8 rearmed;   /* the side's framing was taken from user space at this frame */
    __u8 kentered;  /* the kernel's own skip (wire budget) starts with this frame */
    __u32 resume_at;
};

/* One step of the walk over an in-order frame [s, e): reads the next record header (or the
 * rest of one split across frames).  0: go on; 1: no more headers in this frame; 2: lost.  A
 * global function: the verifier checks it once, not once per iteration of the caller's loop. */
__noinline int mmtls_fast_hdr_step(struct __sk_buff *skb, struct mmtls_fast_side *w,
                                   const struct pinfo *pi, struct walk *out)
{
    __u32 s, e, hs, from, n, avail, len, nre;
    __u8 tmp[5] = {0};
    __u8 type, major;
    int in_frame;

    if (skb == NULL || w == NULL || pi == NULL || out == NULL)
        return 2;
    s = pi->seq;
    e = pi->seq + pi->plen;
    hs = w->rec_end;
    if (w->nhb == 0) {
        if (!SEQ_LT(w->rec_end, e))
            return 1; /* the next header is beyond this frame */
        from = w->rec_end;
        n = 5;
    } else {
        from = w->pos;
        n = 5 - (__u32)w->nhb;
    }
    avail = e - from;
    if (n > avail)
        n = avail;
    if (n == 5) {
        if (bpf_skb_load_bytes(skb, pi->l7off + (from - s), tmp, 5) < 0)
            return 2;
        for (int j = 0; j < 5; j++)
            w->hacc = (w->hacc << 8) | tmp[j];
    } else {
        /* a header split across frames: byte by byte (constant sizes for the verifier) */
        for (int j = 0; j < 4; j++) {
            __u8 b;
            if (j >= (int)n)
                break;
            if (bpf_skb_load_bytes(skb, pi->l7off + (from - s) + (__u32)j, &b, 1) < 0)
                return 2;
            w->hacc = (w->hacc << 8) | b;
        }
    }
    w->nhb += (__u8)n;
    w->pos = from + n;
    if (w->nhb < 5)
        return 1; /* the header continues in the next frame */
    type = (__u8)(w->hacc >> 32);
    major = (__u8)(w->hacc >> 24);
    len = (__u32)(w->hacc & 0xffff);
    w->hacc = 0;
    w->nhb = 0;
    if (type < 20 || type > 24 || major != 3 || len > MMTLS_FAST_MAX_REC)
        return 2; /* not a TLS record header: the engine decides about this flow */
    in_frame = !SEQ_LT(hs, s);
    if (w->skipping && !out->resume && !out->entered) {
        if (in_frame && (out->want_resume || out->fin || type != 23)) {
            out->resume = 1;
            out->resume_at = hs;
        } else if (type != 23) {
            /* Not application data, begun in a frame that left uncopied. */
            out->resume = 2;
            out->resume_at = hs;
        } else {
            w->nskip++;
        }
    } else if (w->skipping && out->entered) {
        if (type != 23 && in_frame) {
            /* Not application data: the skip cannot start before it. */
            w->skipping = 0;
            out->entered = 0;
            if (w->kself) {
                /* the kernel's own skip: try again from the next frame */
                w->kself = 0;
                w->kpend = 1;
                w->kfrom = e;
                out->kentered = 0;
            }
        } else {
            w->nskip++;
        }
    }
    nre = hs + 5 + len;
    /* The wire budget: application-data records read (not skipped), 5 + length each. */
    if (w->bon && type == 23 && (!w->skipping || out->resume == 1)) {
        if (w->bleft > 5 + len) {
            w->bleft -= 5 + len;
        } else {
            w->bleft = 0;
            w->bon = 0;
            w->kpend = 1;
            w->kfrom = nre;
        }
    }
    if (SEQ_LEQ(nre, e))
        out->completes = 1;
    w->rec_end = nre;
    w->pos = SEQ_LT(nre, e) ? nre : e;
    return 0;
}

/* Follows the record headers of one in-order frame [s, e) of a side (w: a private copy of the
 * side's state).  A global function, like the step: the verifier checks it once, not once for
 * every path of the caller that reaches it (107k instead of 492k instructions processed). */
__noinline int mmtls_fast_walk(struct __sk_buff *skb, struct mmtls_fast_side *w,
                               const struct pinfo *pi, struct walk *out)
{
    __u32 s, e;
    int rc = 2;

    if (skb == NULL || w == NULL || pi == NULL || out == NULL)
        return 0;
    s = pi->seq;
    e = pi->seq + pi->plen;
    if (!w->valid || w->lost || pi->plen == 0)
        return 0;
    if (SEQ_LT(w->pos, s)) {
        w->lost = 1; /* a hole: the framing cannot be followed (the engine buffers it) */
        count(MMTLS_FAST_C_LOST, 1);
        return 0;
    }
    if (SEQ_LEQ(e, w->pos)) {
        out->retrans = 1;
        return 0;
    }
    out->retrans = SEQ_LT(s, w->pos);
    if (!w->skipping && out->want_skip && !out->retrans && w->acted_gen != out->gen) {
        w->skipping = 1;
        w->acted_gen = out->gen;
        w->nskip = 0;
        w->kself = 0;
        w->kpend = 0;
        out->entered = 1;
        out->want_resume = 0;
    } else if (!w->skipping && w->kpend && !out->retrans && SEQ_LEQ(w->kfrom, s)) {
        /* The wire budget was spent by a record that ended before this frame: skip as if user
         * space had asked for it under the budget's generation (it pauses there itself). */
        w->skipping = 1;
        w->kself = 1;
        w->kpend = 0;
        w->acted_gen = w->barm_gen;
        w->nskip = 0;
        out->entered = 1;
        out->kentered = 1;
        out->want_resume = 0;
    }
    /* The record in progress ends in this frame. */
    if (w->nhb == 0 && SEQ_LT(w->pos, w->rec_end) && SEQ_LEQ(w->rec_end, e))
        out->completes = 1;
    for (int i = 0; i < MMTLS_FAST_MAX_HDRS; i++) {
        rc = mmtls_fast_hdr_step(skb, w, pi, out);
        if (rc != 0)
            break;
    }
    if (rc == 1) {
        w->pos = e;
        return 0;
    }
    /* Not TLS, or more headers than we follow in one frame. */
    w->lost = 1;
    count(MMTLS_FAST_C_LOST, 1);
    return 0;
}

SEC("tc")
int mmtls_fast_port(struct __sk_buff *skb)
{
    __u32 zero = 0, gen = 0;
    struct mmtls_fast_cfg *cfg = bpf_map_lookup_elem(&mmtls_cfg, &zero);
    struct mmtls_fast_state *st;
    struct mmtls_fast_ctl *ctl;
    struct mmtls_fast_side w;
    struct walk wk = {0};
    struct pinfo pi = {0};
    int port, rc, mode, fin, want_resume, want_skip, kind, oskip;
    __u32 ver, budget = 0;

    if (cfg == NULL)
        return TC_ACT_OK;
    if (skb->ifindex == cfg->ifindex[0])
        port = 0;
    else if (skb->ifindex == cfg->ifindex[1])
        port = 1;
    else
        return TC_ACT_OK;
    rc = parse(skb, &pi);
    if (rc == P_OTHER) {
        count(MMTLS_FAST_C_OTHER, 1);
        return bpf_redirect(cfg->ifindex[port ^ 1], 0);
    }
    if (rc != P_TCP)
        return divert(skb, cfg, MMTLS_FAST_K_DIVERT, port);

    ctl = bpf_map_lookup_elem(&mmtls_ctl, &pi.key);
    mode = ctl != NULL ? ctl->mode[pi.side & 1] : MMTLS_FAST_DIVERT;
    if (ctl != NULL) {
        gen = ctl->gen[pi.side & 1];
        budget = ctl->budget[pi.side & 1];
    }
    /* Blocked: dropped, except a bare SYN (a new connection on the 4-tuple: both ends were
     * reset, so the client may reuse its port at once), which goes up like every SYN; the
     * engine reopens the flow (engine.c) or drops it (a refused flow). */
    if (mode == MMTLS_FAST_BLOCK && (pi.flags & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN) {
        count(MMTLS_FAST_C_DROP, 1);
        return TC_ACT_SHOT;
    }
    fin = (pi.flags & (TCP_FIN | TCP_RST)) != 0;
    if (mode == MMTLS_FAST_BYPASS) {
        if (pi.flags & (TCP_SYN | TCP_FIN | TCP_RST))
            return fwd_copy(skb, cfg, port);
        return fwd(skb, cfg, port);
    }

    if ((pi.flags & (TCP_SYN | TCP_RST)) == TCP_SYN) {
        /* The stream starts after the SYN (RFC 9293 §3.4): framing starts there. */
        struct zero_state *z = bpf_map_lookup_elem(&mmtls_zero, &zero);
        st = bpf_map_lookup_elem(&mmtls_state, &pi.key);
        if (st == NULL && z != NULL) {
            bpf_map_update_elem(&mmtls_state, &pi.key, z, BPF_NOEXIST);
            st = bpf_map_lookup_elem(&mmtls_state, &pi.key);
        }
        if (st != NULL) {
            bpf_spin_lock(&st->lock);
            st->side[pi.side & 1].pos = pi.seq + 1;
            st->side[pi.side & 1].rec_end = pi.seq + 1;
            st->side[pi.side & 1].nhb = 0;
            st->side[pi.side & 1].hacc = 0;
            st->side[pi.side & 1].lost = 0;
            st->side[pi.side & 1].skipping = 0;
            st->side[pi.side & 1].bon = 0;
            st->side[pi.side & 1].kpend = 0;
            st->side[pi.side & 1].kself = 0;
            st->side[pi.side & 1].valid = 1;
            st->side[pi.side & 1].ver++;
            bpf_spin_unlock(&st->lock);
        }
        return divert(skb, cfg, MMTLS_FAST_K_DIVERT, port);
    }

    st = bpf_map_lookup_elem(&mmtls_state, &pi.key);
    if (st == NULL)
        return divert(skb, cfg, MMTLS_FAST_K_DIVERT, port);
    /* Optimistic: walk a private copy, commit it if no other CPU committed meanwhile (frames of
     * one side on two CPUs at once), else walk again from the new state. */
    rc = 0;
    kind = MMTLS_FAST_K_DIVERT;
    for (int attempt = 0; attempt < 3 && !rc; attempt++) {
        bpf_spin_lock(&st->lock);
        w = st->side[pi.side & 1];
        oskip = st->side[(pi.side & 1) ^ 1].skipping;
        bpf_spin_unlock(&st->lock);
        ver = w.ver;
        __builtin_memset(&wk, 0, sizeof(wk));
        if (ctl != NULL && w.valid && w.lost && !w.skipping && w.hi_valid &&
            ctl->rearm_gen[pi.side & 1] != 0 && ctl->rearm_gen[pi.side & 1] != w.rearm_seen &&
            w.hi == ctl->rearm_end[pi.side & 1] &&
            SEQ_LEQ(ctl->rearm_end[pi.side & 1], ctl->rearm_hdr[pi.side & 1])) {
            /* User space has every byte the kernel saw: take its framing again. */
            w.rearm_seen = ctl->rearm_gen[pi.side & 1];
            w.lost = 0;
            w.pos = ctl->rearm_end[pi.side & 1];
            w.rec_end = ctl->rearm_hdr[pi.side & 1];
            w.nhb = 0;
            w.hacc = 0;
            wk.rearmed = 1;
        }
        if (mode == MMTLS_FAST_INSPECT && budget != 0) {
            if (!w.bvalid || w.barm_gen != gen) {
                /* a new count (a new response): from this frame's headers on */
                w.bvalid = 1;
                w.barm_gen = gen;
                w.bleft = budget;
                w.bon = 1;
                w.kpend = 0;
            }
        } else if (mode != MMTLS_FAST_SKIP) {
            w.bon = 0;
            w.kpend = 0;
        }
        want_skip = mode == MMTLS_FAST_SKIP;
        /* A skip ends when user space asks (no SKIP any more, or a new generation); the
         * kernel's own skip goes on in INSPECT, with a budget, until the generation changes. */
        want_resume =
            w.skipping && (gen != w.acted_gen ||
                           (!want_skip && !(w.kself && mode == MMTLS_FAST_INSPECT && budget != 0)));
        wk.want_skip = (__u8)want_skip;
        wk.want_resume = (__u8)want_resume;
        wk.fin = (__u8)fin;
        wk.gen = gen;
        mmtls_fast_walk(skb, &w, &pi, &wk);
        if (w.skipping && !wk.resume && (fin || w.lost)) {
            /* The stream ends inside a skip, or the framing was lost: inspection resumes now
             * (without framing when lost: the engine sees a gap and resynchronises). */
            wk.resume = w.lost ? 2 : 1;
            wk.resume_at = w.lost ? pi.seq : pi.seq + pi.plen;
        }
        if (wk.resume) {
            w.skipping = 0;
            w.kself = 0;
            w.resume_seq = wk.resume_at;
            w.resume_nskip = w.nskip;
            w.resume_lost = wk.resume == 2;
            kind = wk.resume == 2 ? MMTLS_FAST_K_RESUME_LOST : MMTLS_FAST_K_RESUME;
        } else if (w.skipping) {
            kind = 0; /* forward, no copy */
            w.skipped_bytes += pi.plen;
        } else if (mode == MMTLS_FAST_DIVERT || !w.valid || w.lost || wk.retrans ||
                   (pi.flags & (TCP_SYN | TCP_FIN | TCP_RST)) || wk.completes) {
            kind = w.valid && !w.lost && !wk.retrans && pi.plen > 0 ? MMTLS_FAST_K_DIVERT_INORDER
                                                                    : MMTLS_FAST_K_DIVERT;
        } else {
            kind = MMTLS_FAST_K_COPY;
            w.copied_bytes += pi.plen;
        }
        if (pi.plen == 0 && kind == 0)
            kind = MMTLS_FAST_K_COPY; /* acknowledgements: the engine follows both directions */
        if (pi.plen == 0 && kind == MMTLS_FAST_K_COPY && oskip &&
            !(pi.flags & (TCP_SYN | TCP_FIN | TCP_RST))) {
            /* A pure ACK of bytes the other side is skipping: the engine has nothing of that
             * stream to free or to judge (a lost copy before the skip shows at the diverted
             * frame that completes its record, by the in-order mark). */
            kind = 0;
        }
        if ((kind == 0 || kind == MMTLS_FAST_K_COPY) && pi.plen > 0 &&
            (!w.fwd_valid || SEQ_LT(w.fwd_end, pi.seq + pi.plen))) {
            w.fwd_end = pi.seq + pi.plen; /* what an RST must start after */
            w.fwd_valid = 1;
        }
        if (pi.plen > 0 && (!w.hi_valid || SEQ_LT(w.hi, pi.seq + pi.plen))) {
            w.hi = pi.seq + pi.plen;
            w.hi_valid = 1;
        }
        w.ver = ver + 1;
        bpf_spin_lock(&st->lock);
        if (st->side[pi.side & 1].ver == ver) {
            st->side[pi.side & 1] = w;
            rc = 1;
        }
        bpf_spin_unlock(&st->lock);
    }
    if (!rc) {
        bpf_spin_lock(&st->lock);
        st->side[pi.side & 1].lost = 1; /* still racing: stop trusting the framing */
        bpf_spin_unlock(&st->lock);
    }
    if (!rc) {
        count(MMTLS_FAST_C_RACE, 1);
        return divert(skb, cfg, MMTLS_FAST_K_DIVERT, port);
    }
    if (wk.resume)
        count(MMTLS_FAST_C_RESUME, 1);
    if (wk.rearmed)
        count(MMTLS_FAST_C_REARM, 1);
    if (wk.kentered)
        count(MMTLS_FAST_C_KSKIP, 1);
    if (kind == 0)
        return fwd(skb, cfg, port);
    if (kind == MMTLS_FAST_K_COPY)
        return fwd_copy(skb, cfg, port);
    return divert(skb, cfg, kind, port);
}
