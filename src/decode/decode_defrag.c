/* decode_defrag — bounded IPv4 / IPv6 fragment reassembly (RFC 791 §3.2, RFC 8200 §4.5).
 *
 * A fixed table of datagrams in flight (preallocated slots, a hash index and an age list,
 * oldest first, as DPDK's ip_frag table), each with a list of fragments sorted by offset.
 * Limits: max_datagrams, max_frags_per_datagram, a timeout counted from the first fragment, a
 * memory cap on the fragment bytes held, and the 65535-byte maximum of the rebuilt datagram
 * (IPv6 jumbograms are not supported).
 *
 * Overlaps: a fragment whose bytes differ from bytes already held drops the whole datagram
 * (counted in `overlaps`; RFC 5722 §4 for IPv6, and the same rule for IPv4 so that no
 * first-or-last-wins ambiguity can be used for evasion).  Overlaps with identical bytes are
 * accepted; a fragment wholly covered by held fragments stores nothing.
 *
 * Inline, the fragments a middlebox keeps have been forwarded: the receiver holds them too.  A
 * datagram the middlebox gives up while the receiver may still complete it (a conflicting
 * overlap, a malformed or too long fragment, its timeout: receivers' timeouts differ) is not
 * forgotten but kept as a *dead* entry, without its fragments, for one more timeout: every
 * later fragment of it is refused (dead_drops), so the caller drops it and no receiver can
 * complete a datagram the middlebox did not see whole.  A full table refuses new datagrams
 * (table_full) unless fail_open, which evicts the oldest as DPDK's ip_frag table does; a
 * datagram over max_frags_per_datagram is made dead unless fail_open, which forgets it.
 */
#include <stdlib.h>
#include <sys/random.h>

#include "decode/decode.h"

#define DEFRAG_DEF_MAX_DATAGRAMS 1024
#define DEFRAG_DEF_MAX_FRAGS 64
#define DEFRAG_DEF_TIMEOUT_MS 30000 /* Linux ipfrag_time */
#define DEFRAG_DEF_MEMCAP (4u << 20)
#define DEFRAG_MAX_DATAGRAMS_CAP (1u << 20)
#define DEFRAG_MAX_FRAGS_CAP 8192 /* 65535 / 8: more cannot be useful */

#define IP_MAX_LEN 65535 /* IPv4 total length / IPv6 payload length maximum */
#define IPV4_HLEN_MIN 20
#define IPV6_HLEN 40
#define IPV6_FRAG_HLEN 8
#define NIL UINT32_MAX

struct defrag_frag {
    struct defrag_frag *next; /* owned: the next fragment by offset */
    uint32_t off, len;        /* payload bytes [off, off + len) of the datagram */
    uint8_t data[];
};

struct defrag_dgram {
    /* key: IP version, addresses, identification, and protocol (IPv4 only: RFC 791 §3.2; the
     * IPv6 key is addresses and identification, RFC 8200 §4.5) */
    uint8_t ver, proto;
    uint8_t src[16], dst[16];
    uint32_t id;

    bool used;
    bool dead; /* given up: fragments refused until first_us + timeout (no fragments held) */
    bool has_last;
    uint64_t first_us;
    uint32_t nfrags;
    uint32_t end_max; /* highest fragment end seen */
    uint32_t total;   /* payload length, valid when has_last */
    size_t bytes;     /* charged to the memory cap */
    uint8_t *hdr;     /* owned: header of the offset-0 fragment, patched for the rebuild */
    size_t hdr_len;
    struct defrag_frag *frags; /* owned: sorted by offset */
    uint32_t hnext;            /* hash chain, or free list when unused (slot index) */
    uint32_t prev, next;       /* age list, oldest first (slot index) */
};

struct mmtls_defrag {
    struct mmtls_defrag_opts o;
    struct mmtls_defrag_stats st;
    struct defrag_dgram *slots; /* owned: o.max_datagrams */
    uint32_t *buckets;          /* owned: nbuckets chain heads */
    uint32_t nbuckets;          /* power of two */
    uint32_t free_head;
    uint32_t oldest, newest;
    uint64_t seed;
    uint8_t *out; /* owned: the last rebuilt datagram */
    size_t out_cap;
};

struct defrag_key {
    uint8_t ver, proto;
    uint8_t src[16], dst[16];
    uint32_t id;
};

/* ------------------------------------------------------------------------------------------ */

static uint32_t key_bucket(const struct mmtls_defrag *d, const struct defrag_key *k)
{
    uint8_t b[2 + 32 + 4];

    b[0] = k->ver;
    b[1] = k->proto;
    memcpy(b + 2, k->src, 16);
    memcpy(b + 18, k->dst, 16);
    b[34] = (uint8_t)(k->id >> 24);
    b[35] = (uint8_t)(k->id >> 16);
    b[36] = (uint8_t)(k->id >> 8);
    b[37] = (uint8_t)k->id;
    return (uint32_t)mmtls_hash64(b, sizeof(b), d->seed) & (d->nbuckets - 1);
}

static bool key_eq(const struct defrag_dgram *g, const struct defrag_key *k)
{
    return g->ver == k->ver && g->proto == k->proto && g->id == k->id &&
           memcmp(g->src, k->src, 16) == 0 && memcmp(g->dst, k->dst, 16) == 0;
}

static uint32_t dgram_find(const struct mmtls_defrag *d, const struct defrag_key *k)
{
    /* The chain holds at most max_datagrams entries. */
    for (uint32_t i = d->buckets[key_bucket(d, k)]; i != NIL; i = d->slots[i].hnext) {
        if (key_eq(&d->slots[i], k)) {
            return i;
        }
    }
    return NIL;
}

static void age_unlink(struct mmtls_defrag *d, uint32_t idx)
{
    struct defrag_dgram *g = &d->slots[idx];

    if (g->prev != NIL) {
        d->slots[g->prev].next = g->next;
    } else {
        d->oldest = g->next;
    }
    if (g->next != NIL) {
        d->slots[g->next].prev = g->prev;
    } else {
        d->newest = g->prev;
    }
    g->prev = g->next = NIL;
}

static void age_append(struct mmtls_defrag *d, uint32_t idx)
{
    struct defrag_dgram *g = &d->slots[idx];

    g->next = NIL;
    g->prev = d->newest;
    if (d->newest != NIL) {
        d->slots[d->newest].next = idx;
    } else {
        d->oldest = idx;
    }
    d->newest = idx;
}

/* Frees the fragments and header a datagram holds and uncharges them. */
static void dgram_release(struct mmtls_defrag *d, struct defrag_dgram *g)
{
    struct defrag_frag *f, *fn;

    for (f = g->frags; f != NULL; f = fn) {
        fn = f->next;
        free(f);
    }
    g->frags = NULL;
    free(g->hdr);
    g->hdr = NULL;
    g->hdr_len = 0;
    MMTLS_DEBUG_ASSERT(d->st.mem_used >= g->bytes);
    d->st.mem_used -= g->bytes;
    g->bytes = 0;
}

/* Unlinks a datagram from the index and the age list, frees what it holds and returns its
 * slot to the free list. */
static void dgram_drop(struct mmtls_defrag *d, uint32_t idx)
{
    struct defrag_dgram *g = &d->slots[idx];
    struct defrag_key k;
    uint32_t *pp;

    memcpy(k.src, g->src, 16);
    memcpy(k.dst, g->dst, 16);
    k.ver = g->ver;
    k.proto = g->proto;
    k.id = g->id;
    for (pp = &d->buckets[key_bucket(d, &k)]; *pp != NIL; pp = &d->slots[*pp].hnext) {
        if (*pp == idx) {
            *pp = g->hnext;
            break;
        }
    }
    age_unlink(d, idx);
    dgram_release(d, g);
    d->st.datagrams--;
    memset(g, 0, sizeof(*g));
    g->hnext = d->free_head;
    g->prev = g->next = NIL;
    d->free_head = idx;
}

/* Gives datagram idx up: its fragments are freed and it stays, dead, for one more timeout
 * from now (moved to the young end of the age list, which stays ordered by first_us). */
static void dgram_kill(struct mmtls_defrag *d, uint32_t idx, uint64_t now_us)
{
    struct defrag_dgram *g = &d->slots[idx];

    dgram_release(d, g);
    g->dead = true;
    g->has_last = false;
    g->nfrags = 0;
    g->end_max = g->total = 0;
    if (now_us > g->first_us) {
        g->first_us = now_us;
    }
    age_unlink(d, idx);
    age_append(d, idx);
    d->st.killed++;
}

/* A new datagram's slot; NIL when the table is full and not fail_open (the oldest datagram is
 * evicted when it is: DPDK ip_frag's LRU). */
static uint32_t dgram_new(struct mmtls_defrag *d, const struct defrag_key *k, uint64_t now_us)
{
    struct defrag_dgram *g;
    uint32_t idx, b;

    if (d->free_head == NIL) {
        if (!d->o.fail_open) {
            d->st.table_full++;
            return NIL;
        }
        MMTLS_DEBUG_ASSERT(d->oldest != NIL);
        dgram_drop(d, d->oldest);
        d->st.evicted++;
    }
    idx = d->free_head;
    g = &d->slots[idx];
    d->free_head = g->hnext;

    memset(g, 0, sizeof(*g));
    g->used = true;
    g->ver = k->ver;
    g->proto = k->proto;
    g->id = k->id;
    memcpy(g->src, k->src, 16);
    memcpy(g->dst, k->dst, 16);
    g->first_us = now_us;
    b = key_bucket(d, k);
    g->hnext = d->buckets[b];
    d->buckets[b] = idx;
    age_append(d, idx);
    d->st.datagrams++;
    return idx;
}

/* ------------------------------------------------------------------------------------------ */

int mmtls_defrag_new(struct mmtls_defrag **out, const struct mmtls_defrag_opts *o)
{
    struct mmtls_defrag *d;
    uint32_t n;

    if (out == NULL) {
        return MMTLS_E_INVAL;
    }
    *out = NULL;
    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return MMTLS_E_NOMEM;
    }
    if (o != NULL) {
        d->o = *o;
    }
    /* A zero field (or no opts) takes the default. */
    if (d->o.max_datagrams == 0) {
        d->o.max_datagrams = DEFRAG_DEF_MAX_DATAGRAMS;
    }
    if (d->o.max_frags_per_datagram == 0) {
        d->o.max_frags_per_datagram = DEFRAG_DEF_MAX_FRAGS;
    }
    if (d->o.timeout_ms == 0) {
        d->o.timeout_ms = DEFRAG_DEF_TIMEOUT_MS;
    }
    if (d->o.memcap == 0) {
        d->o.memcap = DEFRAG_DEF_MEMCAP;
    }
    d->o.max_datagrams = MMTLS_MIN(d->o.max_datagrams, DEFRAG_MAX_DATAGRAMS_CAP);
    d->o.max_frags_per_datagram = MMTLS_MIN(d->o.max_frags_per_datagram, DEFRAG_MAX_FRAGS_CAP);

    for (d->nbuckets = 1; d->nbuckets < d->o.max_datagrams; d->nbuckets <<= 1) {
    }
    d->slots = calloc(d->o.max_datagrams, sizeof(*d->slots));
    if (d->slots == NULL) {
        goto out_free;
    }
    d->buckets = malloc(sizeof(*d->buckets) * d->nbuckets);
    if (d->buckets == NULL) {
        goto out_free_slots;
    }
    for (n = 0; n < d->nbuckets; n++) {
        d->buckets[n] = NIL;
    }
    for (n = 0; n < d->o.max_datagrams; n++) {
        d->slots[n].hnext = n + 1 < d->o.max_datagrams ? n + 1 : NIL;
        d->slots[n].prev = d->slots[n].next = NIL;
    }
    d->free_head = 0;
    d->oldest = d->newest = NIL;
    /* Keyed hash so that chains cannot be lengthened on purpose; any seed is correct. */
    if (getrandom(&d->seed, sizeof(d->seed), GRND_NONBLOCK) != (ssize_t)sizeof(d->seed)) {
        d->seed = (uint64_t)(uintptr_t)d ^ 0x9e3779b97f4a7c15ull;
    }
    *out = d;
    return 0;

out_free_slots:
    free(d->slots);
out_free:
    free(d);
    return MMTLS_E_NOMEM;
}

void mmtls_defrag_free(struct mmtls_defrag *d)
{
    if (d == NULL) {
        return;
    }
    while (d->oldest != NIL) {
        dgram_drop(d, d->oldest);
    }
    free(d->buckets);
    free(d->slots);
    free(d->out);
    free(d);
}

void mmtls_defrag_expire(struct mmtls_defrag *d, uint64_t now_us)
{
    uint64_t tmo_us;

    if (d == NULL) {
        return;
    }
    tmo_us = (uint64_t)d->o.timeout_ms * 1000;
    /* The age list is ordered by first_us, so expiry stops at the first young entry.  An
     * expired datagram becomes dead (moved to the young end, first_us = now: the loop ends);
     * an expired dead one goes. */
    while (d->oldest != NIL && now_us >= d->slots[d->oldest].first_us &&
           now_us - d->slots[d->oldest].first_us >= tmo_us) {
        if (d->slots[d->oldest].dead) {
            dgram_drop(d, d->oldest);
        } else {
            d->st.timeouts++;
            dgram_kill(d, d->oldest, now_us);
        }
    }
}

void mmtls_defrag_set_fail_open(struct mmtls_defrag *d, bool fail_open)
{
    d->o.fail_open = fail_open;
}

const struct mmtls_defrag_stats *mmtls_defrag_stats(const struct mmtls_defrag *d)
{
    return &d->st;
}

/* ------------------------------------------------------------------------------------------ */

/* Builds the header that the rebuilt datagram will carry, from the offset-0 fragment.
 * IPv4: the header as is (fixed at rebuild time).  IPv6: the unfragmentable part (RFC 8200
 * §4.5), i.e. everything before the Fragment header, with the Next Header field that pointed
 * at the Fragment header changed to the Fragment header's own Next Header.
 * Returns the owned copy in *hdr, or NULL in *hdr and MMTLS_E_MALFORMED. */
static int first_hdr(const struct mmtls_pkt *pkt, uint8_t **hdr, size_t *hdr_len)
{
    const uint8_t *l3 = pkt->l3;
    size_t hlen, nh_idx;
    uint8_t *h;

    *hdr = NULL;
    if (l3 == NULL || pkt->frag_payload < l3 || pkt->l3_len < IPV4_HLEN_MIN) {
        return MMTLS_E_MALFORMED;
    }
    hlen = (size_t)(pkt->frag_payload - l3);
    if (pkt->ip_version == 4) {
        if (hlen != (size_t)(l3[0] & 0x0f) * 4 || hlen < IPV4_HLEN_MIN || hlen > pkt->l3_len) {
            return MMTLS_E_MALFORMED;
        }
    } else {
        size_t pos = IPV6_HLEN;
        uint8_t nh;

        if (hlen < IPV6_HLEN + IPV6_FRAG_HLEN || hlen > pkt->l3_len) {
            return MMTLS_E_MALFORMED;
        }
        hlen -= IPV6_FRAG_HLEN; /* the Fragment header itself is not kept */
        nh_idx = 6;
        nh = l3[6];
        /* The decoder walked this chain already; walk it again (capped the same way) to find
         * the byte naming the Fragment header. */
        for (unsigned n = 0; pos < hlen && n < MMTLS_DECODE_MAX_IPV6_EXT; n++) {
            size_t el;

            if (2 > hlen - pos) {
                return MMTLS_E_MALFORMED;
            }
            if (nh == 44) {
                el = IPV6_FRAG_HLEN; /* an atomic fragment before the real one */
            } else if (nh == 51) {
                el = ((size_t)l3[pos + 1] + 2) * 4;
            } else if (nh == 0 || nh == 43 || nh == 60) {
                el = ((size_t)l3[pos + 1] + 1) * 8;
            } else {
                return MMTLS_E_MALFORMED;
            }
            if (el > hlen - pos) {
                return MMTLS_E_MALFORMED;
            }
            nh_idx = pos;
            nh = l3[pos];
            pos += el;
        }
        if (pos != hlen || nh != 44) {
            return MMTLS_E_MALFORMED;
        }
        h = malloc(hlen);
        if (h == NULL) {
            return MMTLS_E_NOMEM;
        }
        memcpy(h, l3, hlen);
        h[nh_idx] = l3[hlen]; /* the Fragment header's Next Header */
        *hdr = h;
        *hdr_len = hlen;
        return 0;
    }
    h = malloc(hlen);
    if (h == NULL) {
        return MMTLS_E_NOMEM;
    }
    memcpy(h, l3, hlen);
    *hdr = h;
    *hdr_len = hlen;
    return 0;
}

/* Compares the new bytes with every held fragment they overlap.  Returns false on a byte that
 * differs; sets *covered when held fragments already hold all of [off, end). */
static bool overlaps_agree(const struct defrag_dgram *g, uint32_t off, uint32_t len,
                           const uint8_t *p, bool *covered)
{
    uint32_t end = off + len, reach = off;

    for (const struct defrag_frag *f = g->frags; f != NULL; f = f->next) {
        uint32_t fend = f->off + f->len, lo, hi;

        if (f->off >= end) {
            break;
        }
        if (fend <= off) {
            continue;
        }
        lo = MMTLS_MAX(off, f->off);
        hi = MMTLS_MIN(end, fend);
        if (memcmp(p + (lo - off), f->data + (lo - f->off), hi - lo) != 0) {
            return false;
        }
        /* sorted by offset: reach grows through contiguous held bytes */
        if (f->off <= reach && fend > reach) {
            reach = fend;
        }
    }
    *covered = reach >= end;
    return true;
}

static bool dgram_complete(const struct defrag_dgram *g)
{
    uint32_t reach = 0;

    if (!g->has_last || g->hdr == NULL) {
        return false;
    }
    for (const struct defrag_frag *f = g->frags; f != NULL; f = f->next) {
        if (f->off > reach) {
            return false;
        }
        reach = MMTLS_MAX(reach, f->off + f->len);
    }
    return reach >= g->total;
}

static int ensure_out(struct mmtls_defrag *d, size_t need)
{
    uint8_t *p;

    if (need <= d->out_cap) {
        return 0;
    }
    p = realloc(d->out, need);
    if (p == NULL) {
        return MMTLS_E_NOMEM;
    }
    d->out = p;
    d->out_cap = need;
    return 0;
}

/* Writes the rebuilt datagram into d->out and its length into *len.  MMTLS_E_LIMIT when it
 * would exceed the 16-bit length field. */
static int rebuild(struct mmtls_defrag *d, const struct defrag_dgram *g, size_t *len)
{
    size_t n = g->hdr_len + g->total;
    uint8_t *o;
    int rc;

    /* RFC 791 §3.1 total length, RFC 8200 §3 payload length: both 16 bits. */
    if ((g->ver == 4 && n > IP_MAX_LEN) || (g->ver == 6 && n - IPV6_HLEN > IP_MAX_LEN)) {
        return MMTLS_E_LIMIT;
    }
    rc = ensure_out(d, n);
    if (rc != 0) {
        return rc;
    }
    o = d->out;
    memcpy(o, g->hdr, g->hdr_len);
    for (const struct defrag_frag *f = g->frags; f != NULL; f = f->next) {
        /* identical overlaps were checked equal, so copying them again is harmless */
        memcpy(o + g->hdr_len + f->off, f->data, f->len);
    }
    if (g->ver == 4) {
        uint32_t sum = 0;

        mmtls_put_be16(o + 2, (uint16_t)n);
        o[6] &= 0xc0; /* keep reserved and DF; clear MF and the offset */
        o[7] = 0;
        o[10] = o[11] = 0;
        for (size_t i = 0; i < g->hdr_len; i += 2) {
            sum += mmtls_be16(o + i);
        }
        while (sum >> 16) {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        mmtls_put_be16(o + 10, (uint16_t)~sum);
    } else {
        mmtls_put_be16(o + 4, (uint16_t)(n - IPV6_HLEN));
    }
    *len = n;
    return 0;
}

int mmtls_defrag_feed(struct mmtls_defrag *d, const struct mmtls_pkt *pkt, uint64_t now_us,
                      const uint8_t **dgram, size_t *dgram_len)
{
    struct defrag_key k;
    struct defrag_dgram *g;
    struct defrag_frag *f, **pp;
    uint32_t idx, off, len, end;
    uint8_t *hdr = NULL;
    size_t hdr_len = 0, charge;
    bool covered = false;
    int rc;

    if (d == NULL || pkt == NULL || dgram == NULL || dgram_len == NULL) {
        return MMTLS_E_INVAL;
    }
    *dgram = NULL;
    *dgram_len = 0;
    d->st.fragments++;
    mmtls_defrag_expire(d, now_us);

    if ((pkt->ip_version != 4 && pkt->ip_version != 6) || pkt->frag_payload == NULL ||
        pkt->frag_payload_len == 0 || pkt->frag_payload_len > IP_MAX_LEN ||
        pkt->frag_off > IP_MAX_LEN) {
        d->st.bad_fragments++;
        return MMTLS_E_MALFORMED;
    }
    off = pkt->frag_off;
    len = (uint32_t)pkt->frag_payload_len;
    end = off + len;
    /* RFC 791 §3.2, RFC 8200 §4.5: every fragment but the last carries a multiple of 8. */
    if (pkt->frag_more && (len & 7) != 0) {
        d->st.bad_fragments++;
        return MMTLS_E_MALFORMED;
    }

    memset(&k, 0, sizeof(k));
    k.ver = pkt->ip_version;
    k.proto = pkt->ip_version == 4 ? pkt->l4proto : 0;
    k.id = pkt->frag_id;
    memcpy(k.src, pkt->src, 16);
    memcpy(k.dst, pkt->dst, 16);
    idx = dgram_find(d, &k);
    if (idx != NIL && d->slots[idx].dead) {
        d->st.dead_drops++;
        return MMTLS_E_MALFORMED;
    }

    /* The smallest header makes the bound a necessary one; the exact one is checked when the
     * datagram is rebuilt (the header length of the offset-0 fragment is known then). */
    if ((k.ver == 4 && end > IP_MAX_LEN - IPV4_HLEN_MIN) || (k.ver == 6 && end > IP_MAX_LEN)) {
        d->st.too_big++;
        if (idx != NIL) {
            dgram_kill(d, idx, now_us);
        }
        return MMTLS_E_MALFORMED;
    }

    if (idx != NIL) {
        g = &d->slots[idx];
        if (g->nfrags >= d->o.max_frags_per_datagram) {
            d->st.too_many_frags++;
            if (d->o.fail_open) {
                dgram_drop(d, idx);
            } else {
                dgram_kill(d, idx, now_us);
            }
            return MMTLS_E_LIMIT;
        }
        /* RFC 791 §3.2: the last fragment fixes the length; nothing may end beyond it, and
         * two last fragments must agree. */
        if ((!pkt->frag_more && ((g->has_last && end != g->total) || end < g->end_max)) ||
            (pkt->frag_more && g->has_last && end > g->total)) {
            d->st.bad_fragments++;
            dgram_kill(d, idx, now_us);
            return MMTLS_E_MALFORMED;
        }
        if (!overlaps_agree(g, off, len, pkt->frag_payload, &covered)) {
            d->st.overlaps++;
            dgram_kill(d, idx, now_us);
            return MMTLS_E_MALFORMED;
        }
    }

    if (off == 0 && (idx == NIL || d->slots[idx].hdr == NULL)) {
        rc = first_hdr(pkt, &hdr, &hdr_len);
        if (rc != 0) {
            d->st.bad_fragments++;
            return rc;
        }
    }
    charge = hdr_len + (covered ? 0 : sizeof(*f) + len);
    if (charge > d->o.memcap - d->st.mem_used) {
        d->st.memcap_drops++;
        free(hdr);
        return MMTLS_E_MEMCAP;
    }
    f = NULL;
    if (!covered) {
        f = malloc(sizeof(*f) + len);
        if (f == NULL) {
            free(hdr);
            return MMTLS_E_NOMEM;
        }
        f->off = off;
        f->len = len;
        memcpy(f->data, pkt->frag_payload, len);
    }

    if (idx == NIL) {
        /* may evict the oldest datagram: nothing above refers to it any more */
        idx = dgram_new(d, &k, now_us);
        if (idx == NIL) {
            free(f);
            free(hdr);
            return MMTLS_E_LIMIT;
        }
    }
    g = &d->slots[idx];
    g->nfrags++;
    g->bytes += charge;
    d->st.mem_used += charge;
    if (hdr != NULL) {
        g->hdr = hdr;
        g->hdr_len = hdr_len;
    }
    if (!pkt->frag_more) {
        g->has_last = true;
        g->total = end;
    }
    g->end_max = MMTLS_MAX(g->end_max, end);
    if (f != NULL) {
        for (pp = &g->frags; *pp != NULL && (*pp)->off <= off; pp = &(*pp)->next) {
        }
        f->next = *pp;
        *pp = f;
    }

    if (!dgram_complete(g)) {
        return MMTLS_AGAIN;
    }
    rc = rebuild(d, g, dgram_len);
    if (rc == MMTLS_E_LIMIT) {
        d->st.too_big++;
        dgram_kill(d, idx, now_us);
        return MMTLS_E_MALFORMED;
    }
    dgram_drop(d, idx);
    if (rc != 0) {
        return rc;
    }
    d->st.reassembled++;
    *dgram = d->out;
    return 0;
}
