/* flow — symmetric flow table (see flow.h).
 *
 * Open hashing with a power-of-two bucket array sized for max_flows.  LRU lists ordered by last
 * activity: one per class of open flows (idle timeout) and one for closed flows (closed
 * timeout), so expiry only looks at list tails (as DPDK's ip_frag table does with its LRU), and
 * a full table finds its victim at a tail too: the closed list's, the BARE list's, or the
 * HANDSHAKE list's if that flow has been idle long enough.  PINNED flows are never victims.
 */
#include "flow/flow.h"

#include <stdlib.h>
#include <sys/random.h>

struct flow_list {
    struct mmtls_flow *head, *tail;
};

struct mmtls_flow_table {
    struct mmtls_flow_table_opts opts;
    struct mmtls_flow **buckets; /* owned */
    uint32_t nbuckets;           /* power of two */
    uint64_t seed;
    uint64_t next_id;
    struct flow_list open[MMTLS_FLOW_CLASS_N], closed;
    uint32_t nopen[MMTLS_FLOW_CLASS_N];
    mmtls_flow_release_cb release;
    void *ctx; /* borrowed */
    struct mmtls_flow_stats stats;
};

static void list_unlink(struct flow_list *l, struct mmtls_flow *f)
{
    if (f->lprev != NULL)
        f->lprev->lnext = f->lnext;
    else
        l->head = f->lnext;
    if (f->lnext != NULL)
        f->lnext->lprev = f->lprev;
    else
        l->tail = f->lprev;
    f->lprev = f->lnext = NULL;
}

static void list_push_head(struct flow_list *l, struct mmtls_flow *f)
{
    f->lprev = NULL;
    f->lnext = l->head;
    if (l->head != NULL)
        l->head->lprev = f;
    l->head = f;
    if (l->tail == NULL)
        l->tail = f;
}

static struct flow_list *list_of(struct mmtls_flow_table *t, struct mmtls_flow *f)
{
    return f->in_closed_list ? &t->closed : &t->open[f->cls];
}

static void flow_unlink(struct mmtls_flow_table *t, struct mmtls_flow *f)
{
    list_unlink(list_of(t, f), f);
    if (!f->in_closed_list)
        t->nopen[f->cls]--;
}

static void flow_push(struct mmtls_flow_table *t, struct mmtls_flow *f)
{
    list_push_head(list_of(t, f), f);
    if (!f->in_closed_list)
        t->nopen[f->cls]++;
}

int mmtls_flow_table_new(struct mmtls_flow_table **out, const struct mmtls_flow_table_opts *opts,
                         mmtls_flow_release_cb release, void *ctx)
{
    struct mmtls_flow_table *t;
    uint32_t n = 16;

    if (opts == NULL || opts->max_flows == 0 || release == NULL)
        return MMTLS_E_INVAL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return MMTLS_E_NOMEM;
    while (n < opts->max_flows && n < (1u << 30))
        n <<= 1;
    t->buckets = calloc(n, sizeof(*t->buckets));
    if (t->buckets == NULL) {
        free(t);
        return MMTLS_E_NOMEM;
    }
    t->nbuckets = n;
    t->opts = *opts;
    t->release = release;
    t->ctx = ctx;
    if (getrandom(&t->seed, sizeof(t->seed), 0) != (ssize_t)sizeof(t->seed))
        t->seed = (uint64_t)(uintptr_t)t ^ 0x6d6d746c73ull;
    *out = t;
    return 0;
}

static void key_from_pkt(const struct mmtls_pkt *p, struct mmtls_flow_key *k, int *sender)
{
    size_t alen = p->ip_version == 4 ? 4 : 16;
    int c = memcmp(p->src, p->dst, alen);

    memset(k, 0, sizeof(*k));
    k->ip_version = p->ip_version;
    k->proto = p->l4proto;
    /* endpoint 0 = the smaller (address, port) pair */
    if (c < 0 || (c == 0 && p->sport <= p->dport)) {
        memcpy(k->addr[0], p->src, alen);
        memcpy(k->addr[1], p->dst, alen);
        k->port[0] = p->sport;
        k->port[1] = p->dport;
        *sender = 0;
    } else {
        memcpy(k->addr[0], p->dst, alen);
        memcpy(k->addr[1], p->src, alen);
        k->port[0] = p->dport;
        k->port[1] = p->sport;
        *sender = 1;
    }
    /* A connection from a port to itself on the same address: both directions are endpoint 0;
     * such flows are degenerate (self-connect) and handled as one direction by the owner. */
}

static uint32_t bucket_of(const struct mmtls_flow_table *t, const struct mmtls_flow_key *k)
{
    return (uint32_t)(mmtls_hash64(k, sizeof(*k), t->seed) & (t->nbuckets - 1));
}

static void hash_unlink(struct mmtls_flow_table *t, struct mmtls_flow *f)
{
    struct mmtls_flow **pp = &t->buckets[bucket_of(t, &f->key)];

    while (*pp != NULL && *pp != f)
        pp = &(*pp)->hnext;
    if (*pp == f)
        *pp = f->hnext;
    f->hnext = NULL;
}

void mmtls_flow_release(struct mmtls_flow_table *t, struct mmtls_flow *f,
                        enum mmtls_flow_end_reason why)
{
    hash_unlink(t, f);
    flow_unlink(t, f);
    switch (why) {
    case MMTLS_FLOW_END_IDLE: t->stats.expired_idle++; break;
    case MMTLS_FLOW_END_CLOSED: t->stats.expired_closed++; break;
    case MMTLS_FLOW_END_EVICTED: t->stats.evicted++; break;
    case MMTLS_FLOW_END_SHUTDOWN: break;
    }
    t->stats.active--;
    t->release(t->ctx, f, why);
    free(f);
}

/* A full table's victim: the least recently used closed flow, else BARE flow, else HANDSHAKE
 * flow idle for evict_idle_ms.  NULL when every flow is to be kept. */
static struct mmtls_flow *victim_of(struct mmtls_flow_table *t, uint64_t now_us)
{
    struct mmtls_flow *hs = t->open[MMTLS_FLOW_CLASS_HANDSHAKE].tail;

    if (t->closed.tail != NULL)
        return t->closed.tail;
    if (t->open[MMTLS_FLOW_CLASS_BARE].tail != NULL)
        return t->open[MMTLS_FLOW_CLASS_BARE].tail;
    if (hs != NULL && hs->last_us + (uint64_t)t->opts.evict_idle_ms * 1000 <= now_us)
        return hs;
    return NULL;
}

static void update_state(struct mmtls_flow_table *t, struct mmtls_flow *f, uint8_t fl, int sender)
{
    if ((fl & (MMTLS_TCP_SYN | MMTLS_TCP_ACK)) == (MMTLS_TCP_SYN | MMTLS_TCP_ACK) &&
        f->state == MMTLS_FLOW_NEW)
        f->state = MMTLS_FLOW_ESTABLISHED;
    if (f->state == MMTLS_FLOW_NEW && f->pkts[0] > 0 && f->pkts[1] > 0)
        f->state = MMTLS_FLOW_ESTABLISHED;
    if (fl & MMTLS_TCP_FIN)
        f->fin[sender] = true;
    if (fl & MMTLS_TCP_RST)
        f->rst = true;
    if (f->rst || (f->fin[0] && f->fin[1]))
        f->state = MMTLS_FLOW_CLOSED;
    else if (f->fin[0] || f->fin[1])
        f->state = MMTLS_FLOW_CLOSING;
    if (f->state == MMTLS_FLOW_CLOSED && !f->in_closed_list) {
        flow_unlink(t, f);
        f->in_closed_list = true;
        flow_push(t, f);
    }
}

int mmtls_flow_get(struct mmtls_flow_table *t, const struct mmtls_pkt *pkt, uint64_t now_us,
                   struct mmtls_flow **out, int *sender)
{
    struct mmtls_flow_key k;
    struct mmtls_flow *f;
    uint32_t b;

    key_from_pkt(pkt, &k, sender);
    b = bucket_of(t, &k);
    for (f = t->buckets[b]; f != NULL; f = f->hnext) {
        if (memcmp(&f->key, &k, sizeof(k)) == 0)
            break;
    }
    if (f == NULL) {
        if (t->stats.active >= t->opts.max_flows) {
            struct mmtls_flow *victim = victim_of(t, now_us);
            if (victim == NULL) {
                /* Full of sessions under inspection: the new flow is refused, never one of
                 * them evicted (the owner applies its exception policy). */
                t->stats.refused++;
                *out = NULL;
                return MMTLS_E_LIMIT;
            }
            mmtls_flow_release(t, victim, MMTLS_FLOW_END_EVICTED);
        }
        f = calloc(1, sizeof(*f));
        if (f == NULL)
            return MMTLS_E_NOMEM;
        f->key = k;
        f->id =
            t->next_id++ * (t->opts.id_stride != 0 ? t->opts.id_stride : 1) + t->opts.id_offset + 1;
        f->first_us = now_us;
        /* The client is the SYN sender (without ACK); otherwise, the first sender. */
        f->client = (uint8_t)*sender;
        if ((pkt->tcp_flags & (MMTLS_TCP_SYN | MMTLS_TCP_ACK)) == (MMTLS_TCP_SYN | MMTLS_TCP_ACK))
            f->client = (uint8_t) !*sender;
        f->hnext = t->buckets[b];
        t->buckets[b] = f;
        f->cls = MMTLS_FLOW_CLASS_BARE;
        flow_push(t, f);
        t->stats.created++;
        t->stats.active++;
        if (t->stats.active > t->stats.peak_active)
            t->stats.peak_active = t->stats.active;
    } else {
        flow_unlink(t, f);
        flow_push(t, f);
    }
    if (now_us > f->last_us)
        f->last_us = now_us;
    f->pkts[*sender]++;
    f->bytes[*sender] += pkt->payload_len;
    update_state(t, f, pkt->tcp_flags, *sender);
    *out = f;
    return 0;
}

void mmtls_flow_note_flags(struct mmtls_flow_table *t, struct mmtls_flow *f, int sender,
                           uint8_t tcp_flags)
{
    update_state(t, f, tcp_flags, sender);
}

bool mmtls_flow_evict_lru(struct mmtls_flow_table *t)
{
    struct mmtls_flow *victim = t->closed.tail;

    for (int c = 0; c < MMTLS_FLOW_CLASS_N && victim == NULL; c++)
        victim = t->open[c].tail;
    /* The least recently used of the open tails (each list is ordered, so one of them). */
    for (int c = 0; c < MMTLS_FLOW_CLASS_N && t->closed.tail == NULL; c++) {
        if (t->open[c].tail != NULL && t->open[c].tail->last_us < victim->last_us)
            victim = t->open[c].tail;
    }
    if (victim == NULL)
        return false;
    mmtls_flow_release(t, victim, MMTLS_FLOW_END_EVICTED);
    return true;
}

void mmtls_flow_set_class(struct mmtls_flow_table *t, struct mmtls_flow *f, int c)
{
    if (c < 0 || c >= MMTLS_FLOW_CLASS_N || f->cls == (uint8_t)c)
        return;
    flow_unlink(t, f);
    f->cls = (uint8_t)c;
    flow_push(t, f);
}

uint32_t mmtls_flow_class_count(const struct mmtls_flow_table *t, int c)
{
    return c >= 0 && c < MMTLS_FLOW_CLASS_N ? t->nopen[c] : 0;
}

uint32_t mmtls_flow_expire(struct mmtls_flow_table *t, uint64_t now_us)
{
    uint64_t idle_us = (uint64_t)t->opts.idle_timeout_ms * 1000;
    uint64_t closed_us = (uint64_t)t->opts.closed_timeout_ms * 1000;
    uint32_t n = 0;

    while (t->closed.tail != NULL && t->closed.tail->last_us + closed_us <= now_us) {
        mmtls_flow_release(t, t->closed.tail, MMTLS_FLOW_END_CLOSED);
        n++;
    }
    for (int c = 0; c < MMTLS_FLOW_CLASS_N; c++) {
        while (t->open[c].tail != NULL && t->open[c].tail->last_us + idle_us <= now_us) {
            mmtls_flow_release(t, t->open[c].tail, MMTLS_FLOW_END_IDLE);
            n++;
        }
    }
    return n;
}

void mmtls_flow_table_free(struct mmtls_flow_table *t)
{
    if (t == NULL)
        return;
    /* Oldest first, so that end events come out in a stable order. */
    for (;;) {
        struct mmtls_flow *f = t->closed.tail;
        for (int c = 0; c < MMTLS_FLOW_CLASS_N; c++) {
            if (t->open[c].tail != NULL && (f == NULL || t->open[c].tail->id < f->id))
                f = t->open[c].tail;
        }
        if (f == NULL)
            break;
        mmtls_flow_release(t, f, MMTLS_FLOW_END_SHUTDOWN);
    }
    free(t->buckets);
    free(t);
}

const struct mmtls_flow_stats *mmtls_flow_table_stats(const struct mmtls_flow_table *t)
{
    return &t->stats;
}
