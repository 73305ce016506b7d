/* keys_store — the in-process key store: client random -> secrets, plus the key log loaders.
 *
 * This file is the first (in-process) implementation of the key store interface of keys.h
 * (put, lookup, remove, expire); a distributed store (Redis/Valkey keyed by client random, see
 * DESIGN.md §8) can replace it behind the same calls.  Workers call lookup only when a
 * handshake needs secrets (ClientHello seen, or keys awaited), never per packet, so a mutex per
 * shard is enough: 16 shards chosen by the top bits of a seeded hash keep the key server thread
 * and the workers off each other's locks.
 *
 * Layout: each shard holds a chained hash table (bucket count fixed at creation) and a list of
 * its entries in insertion order, so expire() walks only the entries that are due.  The number
 * of entries is capped globally (opts.max_entries); entries are allocated when first put, since
 * a preallocated table of max_entries keysets (2.4 KB each) would be too large.  Entries live in
 * the secure-memory pool (mmtls_secmem: pages excluded from core dumps) and are wiped whenever
 * an entry dies.
 *
 * Entries put by the key log file loader are "pinned": the file has no time base (keys.h gives
 * mmtls_keylog_load_file no now_ms) and an operator who loads a file wants its keys kept, so
 * they are exempt from TTL expiry; remove() still drops them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "keys/keys.h"

#define KS_SHARD_BITS 4
#define KS_SHARDS (1u << KS_SHARD_BITS)
#define KS_MAX_BUCKETS (1u << 18) /* per shard: 32 MB of chains at most */
#define KEYLOG_LINE_MAX 1024      /* same cap as the parser (keys_keylog.c) */

struct ks_entry {
    struct ks_entry *next;     /* borrowed: next in the bucket chain */
    struct ks_entry *age_prev; /* borrowed: insertion-order list (unpinned entries only) */
    struct ks_entry *age_next; /* borrowed */
    uint64_t t_ms;             /* insertion time */
    bool pinned;               /* never expired by TTL (loaded from a key log file) */
    uint8_t client_random[32];
    struct mmtls_keyset keys;
};

struct ks_shard {
    pthread_mutex_t mu;
    struct ks_entry **buckets; /* owned: array of mask+1 chains; the entries are owned too */
    uint32_t mask;
    struct ks_entry *age_head;      /* borrowed: oldest unpinned entry */
    struct ks_entry *age_tail;      /* borrowed: newest */
    struct mmtls_keystore_stats st; /* .entries unused here */
} __attribute__((aligned(64)));     /* one cache line per lock: no false sharing */

struct mmtls_keystore {
    uint64_t seed;
    uint32_t max_entries;
    uint32_t ttl_ms;
    atomic_uint_fast32_t entries;
    struct ks_shard shards[KS_SHARDS];
};

static uint64_t ks_seed(void)
{
    uint64_t seed = 0;

#if defined(MMTLS_FUZZING)
    /* reproducible runs */
    return 0x6d6d746c73ull;
#endif
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
        /* no entropy source: fall back to clock and address, still unpredictable enough to
         * spread the buckets; the seed only defends against hash flooding */
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)&seed;
    }
    return seed;
}

int mmtls_keystore_new(struct mmtls_keystore **out, const struct mmtls_keystore_opts *opts)
{
    struct mmtls_keystore *ks;
    uint32_t nb = 1, want;
    unsigned i;
    int rc = MMTLS_E_NOMEM;

    if (out == NULL || opts == NULL || opts->max_entries == 0) {
        return MMTLS_E_INVAL;
    }
    *out = NULL;
    ks = calloc(1, sizeof(*ks));
    if (ks == NULL) {
        return MMTLS_E_NOMEM;
    }
    ks->seed = ks_seed();
    ks->max_entries = opts->max_entries;
    ks->ttl_ms = opts->ttl_ms;
    atomic_init(&ks->entries, 0);

    /* about one entry per bucket when full */
    want = opts->max_entries / KS_SHARDS + 1;
    while (nb < want && nb < KS_MAX_BUCKETS) {
        nb <<= 1;
    }
    for (i = 0; i < KS_SHARDS; i++) {
        struct ks_shard *s = &ks->shards[i];

        s->buckets = calloc(nb, sizeof(*s->buckets));
        if (s->buckets == NULL) {
            goto out_free_shards;
        }
        s->mask = nb - 1;
        if (pthread_mutex_init(&s->mu, NULL) != 0) {
            free(s->buckets);
            rc = MMTLS_E_INTERNAL;
            goto out_free_shards;
        }
    }
    *out = ks;
    return 0;

out_free_shards:
    while (i-- > 0) {
        pthread_mutex_destroy(&ks->shards[i].mu);
        free(ks->shards[i].buckets);
    }
    free(ks);
    return rc;
}

static void entry_free(struct ks_entry *en)
{
    mmtls_secmem_free(en); /* wipes */
}

void mmtls_keystore_free(struct mmtls_keystore *ks)
{
    if (ks == NULL) {
        return;
    }
    for (unsigned i = 0; i < KS_SHARDS; i++) {
        struct ks_shard *s = &ks->shards[i];

        for (uint32_t b = 0; b <= s->mask; b++) {
            struct ks_entry *en = s->buckets[b];

            while (en != NULL) {
                struct ks_entry *next = en->next;

                entry_free(en);
                en = next;
            }
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    free(ks);
}

void mmtls_keyset_wipe(struct mmtls_keyset *ks)
{
    mmtls_wipe(ks, sizeof(*ks));
}

/* ------------------------------------------------------------------------------------------ */

static struct ks_shard *shard_of(struct mmtls_keystore *ks, const uint8_t cr[32], uint32_t *bucket)
{
    uint64_t h = mmtls_hash64(cr, 32, ks->seed);
    struct ks_shard *s = &ks->shards[h >> (64 - KS_SHARD_BITS)];

    *bucket = (uint32_t)h & s->mask;
    return s;
}

/* Caller holds s->mu. */
static struct ks_entry *bucket_find(struct ks_shard *s, uint32_t b, const uint8_t cr[32])
{
    for (struct ks_entry *en = s->buckets[b]; en != NULL; en = en->next) {
        if (memcmp(en->client_random, cr, 32) == 0) {
            return en;
        }
    }
    return NULL;
}

static void age_unlink(struct ks_shard *s, struct ks_entry *en)
{
    if (en->age_prev != NULL) {
        en->age_prev->age_next = en->age_next;
    } else if (s->age_head == en) {
        s->age_head = en->age_next;
    }
    if (en->age_next != NULL) {
        en->age_next->age_prev = en->age_prev;
    } else if (s->age_tail == en) {
        s->age_tail = en->age_prev;
    }
    en->age_prev = NULL;
    en->age_next = NULL;
}

static void age_append(struct ks_shard *s, struct ks_entry *en)
{
    en->age_prev = s->age_tail;
    en->age_next = NULL;
    if (s->age_tail != NULL) {
        s->age_tail->age_next = en;
    } else {
        s->age_head = en;
    }
    s->age_tail = en;
}

/* Unlinks en from its bucket and the age list, wipes and frees it.  Caller holds s->mu. */
static void entry_drop(struct mmtls_keystore *ks, struct ks_shard *s, struct ks_entry *en)
{
    uint32_t b = (uint32_t)mmtls_hash64(en->client_random, 32, ks->seed) & s->mask;
    struct ks_entry **pp = &s->buckets[b];

    while (*pp != NULL && *pp != en) {
        pp = &(*pp)->next;
    }
    MMTLS_DEBUG_ASSERT(*pp == en);
    if (*pp == en) {
        *pp = en->next;
    }
    if (!en->pinned) {
        age_unlink(s, en);
    }
    entry_free(en);
    atomic_fetch_sub(&ks->entries, 1);
}

/* The keyset slot for a label, and the have-bit that marks it. */
static struct mmtls_secret *keyset_slot(struct mmtls_keyset *k, const struct mmtls_keylog_entry *e,
                                        uint32_t idx, uint32_t **bits, uint32_t *bit)
{
    switch (e->label) {
    case MMTLS_KL_CLIENT_RANDOM:
        *bits = &k->have;
        *bit = MMTLS_KS_MASTER;
        return &k->master;
    case MMTLS_KL_CLIENT_EARLY_TRAFFIC_SECRET:
        *bits = &k->have;
        *bit = MMTLS_KS_EARLY;
        return &k->early;
    case MMTLS_KL_CLIENT_HANDSHAKE_TRAFFIC_SECRET:
        *bits = &k->have;
        *bit = MMTLS_KS_CHS;
        return &k->chs;
    case MMTLS_KL_SERVER_HANDSHAKE_TRAFFIC_SECRET:
        *bits = &k->have;
        *bit = MMTLS_KS_SHS;
        return &k->shs;
    case MMTLS_KL_CLIENT_TRAFFIC_SECRET:
        *bits = &k->cts_have;
        *bit = 1u << idx;
        return &k->cts[idx];
    case MMTLS_KL_SERVER_TRAFFIC_SECRET:
        *bits = &k->sts_have;
        *bit = 1u << idx;
        return &k->sts[idx];
    default: return NULL;
    }
}

static int store_put(struct mmtls_keystore *ks, const struct mmtls_keylog_entry *e, uint64_t now_ms,
                     bool pinned)
{
    struct ks_shard *s;
    struct ks_entry *en;
    struct mmtls_secret *slot;
    uint32_t b, *bits, bit, idx;
    int rc = 0;

    if (ks == NULL || e == NULL) {
        return MMTLS_E_INVAL;
    }
    /* DESIGN §4 least privilege: exporter secrets are never kept. */
    if (e->label == MMTLS_KL_EXPORTER_SECRET || e->label == MMTLS_KL_EARLY_EXPORTER_SECRET) {
        return MMTLS_DECLINED;
    }
    if ((e->label == MMTLS_KL_CLIENT_TRAFFIC_SECRET ||
         e->label == MMTLS_KL_SERVER_TRAFFIC_SECRET) &&
        e->index >= MMTLS_KEYS_MAX_UPDATES && e->index != MMTLS_KEYLOG_INDEX_NEXT) {
        return MMTLS_DECLINED;
    }
    if (e->label < MMTLS_KL_CLIENT_RANDOM || e->label > MMTLS_KL_SERVER_TRAFFIC_SECRET ||
        e->secret.len == 0 || e->secret.len > MMTLS_SECRET_MAX) {
        return MMTLS_E_INVAL;
    }

    s = shard_of(ks, e->client_random, &b);
    pthread_mutex_lock(&s->mu);
    en = bucket_find(s, b, e->client_random);
    if (en == NULL) {
        if (atomic_fetch_add(&ks->entries, 1) >= ks->max_entries) {
            atomic_fetch_sub(&ks->entries, 1);
            s->st.full++;
            rc = MMTLS_E_LIMIT;
            goto out_unlock;
        }
        /* secret memory: out of core dumps, wiped when freed (util_secmem.c) */
        en = mmtls_secmem_calloc(1, sizeof(*en));
        if (en == NULL) {
            atomic_fetch_sub(&ks->entries, 1);
            rc = MMTLS_E_NOMEM;
            goto out_unlock;
        }
        memcpy(en->client_random, e->client_random, 32);
        en->t_ms = now_ms;
        en->pinned = pinned;
        en->next = s->buckets[b];
        s->buckets[b] = en;
        if (!pinned) {
            age_append(s, en);
        }
    } else if (pinned && !en->pinned) {
        age_unlink(s, en);
        en->pinned = true;
    }

    idx = e->index;
    if (idx == MMTLS_KEYLOG_INDEX_NEXT) {
        /* The generation after the highest one known. */
        uint32_t have =
            e->label == MMTLS_KL_CLIENT_TRAFFIC_SECRET ? en->keys.cts_have : en->keys.sts_have;
        idx = have == 0 ? 0 : 32u - (uint32_t)__builtin_clz(have);
        if (idx >= MMTLS_KEYS_MAX_UPDATES) {
            rc = MMTLS_DECLINED;
            goto out_unlock;
        }
    }
    slot = keyset_slot(&en->keys, e, idx, &bits, &bit);
    if (slot == NULL) {
        rc = MMTLS_E_INTERNAL; /* labels were checked above */
        goto out_unlock;
    }
    if (*bits & bit) {
        /* DESIGN §4: the first key for a session wins. */
        if (slot->len == e->secret.len && mmtls_ct_eq(slot->b, e->secret.b, slot->len)) {
            s->st.duplicates++;
            rc = 0;
        } else {
            s->st.conflicts++;
            rc = MMTLS_E_CONFLICT;
        }
        goto out_unlock;
    }
    *slot = e->secret;
    *bits |= bit;
    s->st.puts++;

out_unlock:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int mmtls_keystore_put(struct mmtls_keystore *ks, const struct mmtls_keylog_entry *e,
                       uint64_t now_ms)
{
    return store_put(ks, e, now_ms, false);
}

int mmtls_keystore_lookup(struct mmtls_keystore *ks, const uint8_t client_random[32],
                          struct mmtls_keyset *out)
{
    struct ks_shard *s;
    struct ks_entry *en;
    uint32_t b;
    int rc = 0;

    if (ks == NULL || client_random == NULL || out == NULL) {
        return MMTLS_E_INVAL;
    }
    s = shard_of(ks, client_random, &b);
    pthread_mutex_lock(&s->mu);
    s->st.lookups++;
    en = bucket_find(s, b, client_random);
    if (en != NULL) {
        s->st.hits++;
        *out = en->keys;
    } else {
        memset(out, 0, sizeof(*out));
        rc = MMTLS_E_NOTFOUND;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void mmtls_keystore_remove(struct mmtls_keystore *ks, const uint8_t client_random[32])
{
    struct ks_shard *s;
    struct ks_entry *en;
    uint32_t b;

    if (ks == NULL || client_random == NULL) {
        return;
    }
    s = shard_of(ks, client_random, &b);
    pthread_mutex_lock(&s->mu);
    en = bucket_find(s, b, client_random);
    if (en != NULL) {
        entry_drop(ks, s, en);
        s->st.removed++;
    }
    pthread_mutex_unlock(&s->mu);
}

void mmtls_keystore_expire(struct mmtls_keystore *ks, uint64_t now_ms)
{
    if (ks == NULL || ks->ttl_ms == 0) {
        return;
    }
    for (unsigned i = 0; i < KS_SHARDS; i++) {
        struct ks_shard *s = &ks->shards[i];

        pthread_mutex_lock(&s->mu);
        /* Insertion order is age order as long as callers' clocks do not go back; an entry
         * stamped in the future only delays the ones behind it.  Bounded by the entry count. */
        while (s->age_head != NULL && now_ms > s->age_head->t_ms &&
               now_ms - s->age_head->t_ms > ks->ttl_ms) {
            entry_drop(ks, s, s->age_head);
            s->st.expired++;
        }
        pthread_mutex_unlock(&s->mu);
    }
}

void mmtls_keystore_get_stats(struct mmtls_keystore *ks, struct mmtls_keystore_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (ks == NULL) {
        return;
    }
    for (unsigned i = 0; i < KS_SHARDS; i++) {
        struct ks_shard *s = &ks->shards[i];

        pthread_mutex_lock(&s->mu);
        st->puts += s->st.puts;
        st->duplicates += s->st.duplicates;
        st->conflicts += s->st.conflicts;
        st->full += s->st.full;
        st->lookups += s->st.lookups;
        st->hits += s->st.hits;
        st->expired += s->st.expired;
        st->removed += s->st.removed;
        pthread_mutex_unlock(&s->mu);
    }
    st->entries = atomic_load(&ks->entries);
}

/* ------------------------------------------------------------------------------------------ */
/* Loaders                                                                                     */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_fatal(int rc)
{
    /* Resource limits and bugs stop a load; a conflict or a declined label does not
     * (the store counts them). */
    return rc < 0 && rc != MMTLS_E_CONFLICT;
}

int mmtls_keylog_load_mem(struct mmtls_keystore *ks, const uint8_t *p, size_t len, uint64_t now_ms,
                          uint32_t *bad_lines)
{
    const char *s = (const char *)p;
    size_t off = 0;
    int rc;

    if (ks == NULL || (p == NULL && len != 0)) {
        return MMTLS_E_INVAL;
    }
    /* Each iteration consumes at least one byte, so the loop is bounded by len. */
    while (off < len) {
        const char *nl = memchr(s + off, '\n', len - off);
        size_t line_len = nl != NULL ? (size_t)(nl - (s + off)) : len - off;
        struct mmtls_keylog_entry e;
        int prc = mmtls_keylog_line_parse(s + off, line_len, &e);

        off += line_len + (nl != NULL ? 1 : 0);
        if (prc == MMTLS_E_MALFORMED) {
            if (bad_lines != NULL && *bad_lines < UINT32_MAX) {
                (*bad_lines)++;
            }
            continue;
        }
        if (prc != 0) {
            continue;
        }
        rc = mmtls_keystore_put(ks, &e, now_ms);
        mmtls_secret_wipe(&e.secret);
        if (is_fatal(rc)) {
            return rc;
        }
    }
    return 0;
}

/* Reads one line into buf (at most cap bytes kept).  Returns the byte count kept; *overflow is
 * set when the line was longer than cap (the rest is consumed), *eof when the line ended at
 * end of file rather than at '\n'.  Embedded NUL bytes are kept (they make the line
 * malformed instead of silently shortening it). */
static size_t read_line(FILE *fp, char *buf, size_t cap, bool *overflow, bool *eof)
{
    size_t n = 0;
    int c;

    *overflow = false;
    *eof = false;
    for (;;) {
        c = getc(fp);
        if (c == EOF) {
            *eof = true;
            break;
        }
        if (c == '\n') {
            break;
        }
        if (n < cap) {
            buf[n++] = (char)c;
        } else {
            *overflow = true;
        }
    }
    return n;
}

int mmtls_keylog_load_file(struct mmtls_keystore *ks, const char *path, char *err, size_t err_cap)
{
    char line[KEYLOG_LINE_MAX + 2];
    char iobuf[BUFSIZ]; /* our own stdio buffer, so that it can be wiped */
    uint64_t lineno = 0;
    FILE *fp;
    int rc = 0;

    if (ks == NULL || path == NULL) {
        return MMTLS_E_INVAL;
    }
    fp = fopen(path, "r");
    if (fp == NULL) {
        snprintf(err, err_cap, "cannot open %s: %s", path, strerror(errno));
        return MMTLS_E_IO;
    }
    setvbuf(fp, iobuf, _IOFBF, sizeof(iobuf));

    /* A line is consumed per iteration and each iteration reads at least one byte or stops. */
    for (;;) {
        struct mmtls_keylog_entry e;
        bool overflow, eof;
        size_t n = read_line(fp, line, sizeof(line), &overflow, &eof);
        int prc;

        if (eof && n == 0 && !overflow) {
            break;
        }
        lineno++;
        if (overflow) {
            size_t i = 0;

            while (i < n && is_blank(line[i])) {
                i++;
            }
            if (i < n && line[i] == '#') {
                continue; /* an overlong comment is still a comment */
            }
            snprintf(err, err_cap, "%s:%llu: key log line too long (max %d bytes)", path,
                     (unsigned long long)lineno, KEYLOG_LINE_MAX);
            rc = MMTLS_E_MALFORMED;
            break;
        }
        prc = mmtls_keylog_line_parse(line, n, &e);
        if (prc == MMTLS_E_MALFORMED) {
            snprintf(err, err_cap, "%s:%llu: malformed key log line", path,
                     (unsigned long long)lineno);
            rc = prc;
            break;
        }
        if (prc == 0) {
            prc = store_put(ks, &e, 0, true);
            mmtls_secret_wipe(&e.secret);
            if (is_fatal(prc)) {
                snprintf(err, err_cap, "%s:%llu: cannot store secret: %s", path,
                         (unsigned long long)lineno,
                         prc == MMTLS_E_LIMIT ? "key store full" : mmtls_strerror(prc));
                rc = prc;
                break;
            }
        }
        if (eof) {
            break;
        }
    }
    if (rc == 0 && ferror(fp)) {
        snprintf(err, err_cap, "%s:%llu: read error: %s", path, (unsigned long long)lineno,
                 strerror(errno));
        rc = MMTLS_E_IO;
    }
    fclose(fp);
    mmtls_wipe(line, sizeof(line));
    mmtls_wipe(iobuf, sizeof(iobuf));
    return rc;
}
