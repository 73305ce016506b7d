/* util_secmem — memory for session secrets: kept out of core dumps, optionally locked in RAM,
 * wiped when freed.
 *
 * Objects are carved from chunks of anonymous pages mapped with mmap and marked
 * MADV_DONTDUMP (madvise(2): the kernel leaves them out of core dumps, and so does gdb's gcore,
 * which reads the same VM_DONTDUMP flag from /proc/PID/smaps), so one mapping serves many keys:
 * a key store with a million entries must not cost a million mappings.  Each object starts
 * with a 16-byte header naming its size class; free lists are per class, under one mutex
 * (allocations happen at handshake time and on the key channel, never per packet).  A freed
 * object is wiped (explicit_bzero) before it goes back to its free list, so an allocation
 * always returns zeroed memory.  Requests larger than the largest class get their own mapping,
 * unmapped (after the wipe) when freed.  Chunks are kept for the life of the process: the pool
 * does not shrink, so its size is the peak of live secrets, and mmtls_secmem_wipe_all() can wipe
 * every byte of it on exit.
 *
 * Per-thread caches (the per-worker pools of docs/ARCHITECTURE.md "Memory"): each thread keeps
 * the small-class objects it frees on its own free lists, up to SM_TC_BYTES per class, and takes
 * from them first, so that workers allocating and freeing session keys at every connection do not
 * meet on the mutex.  A cached object is wiped like any free one.  A thread's cache goes back to
 * the shared lists when the thread exits (a pthread key destructor); mmtls_secmem_wipe_all()
 * moves a generation number on, and a cache of an older generation is dropped unused (its
 * objects are in wiped chunks, which the pool treats as used up).  Each thread also keeps its own
 * share of the live counters, which mmtls_secmem_stats_get sums: a counter shared by the
 * workers would bounce its cache line between their cores at every call.
 *
 * Locking (mlock) is best effort: RLIMIT_MEMLOCK is often small (8 MiB), so a refusal is logged
 * once and the pool goes on without it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/util.h"

#define SM_HDR 16u                /* header before each object; keeps 16-byte alignment */
#define SM_MAGIC 0x6d6d5345u      /* "mmSE" */
#define SM_MIN_SHIFT 6            /* smallest class: 64 bytes (header included) */
#define SM_CLASSES 11             /* 64 B .. 64 KiB */
#define SM_CHUNK (256u * 1024u)   /* bytes per chunk of the small classes */
#define SM_BIG_CLASS 0xffu        /* object with its own mapping */
#define SM_TC_BYTES (64u * 1024u) /* per class and thread: bytes of freed objects cached */

struct sm_hdr {
    uint32_t magic;
    uint32_t cls; /* class index, or SM_BIG_CLASS */
    uint64_t len; /* SM_BIG_CLASS: bytes mapped (header included) */
};

struct sm_free {
    struct sm_free *next; /* borrowed: next free object of the class */
};

struct sm_chunk {
    struct sm_chunk *next; /* borrowed: the chunk list lives inside the chunks */
    size_t len;
    size_t used; /* bytes carved so far (bump pointer) */
    uint32_t cls;
};

static struct {
    pthread_mutex_t mu;
    bool lock;                           /* mlock new mappings */
    bool lock_warned;                    /* a refused mlock was logged */
    bool wiped_all;                      /* mmtls_secmem_wipe_all ran: frees are no-ops */
    struct sm_chunk *chunks[SM_CLASSES]; /* owned: newest first */
    struct sm_free *free_list[SM_CLASSES];
    struct mmtls_secmem_stats st; /* live_* and cached_objects: plus each thread's own counts */
    struct sm_tcache *threads;    /* borrowed: the threads' caches (their TLS), while they run */
    uint64_t gen;                 /* atomic: moved on by mmtls_secmem_wipe_all */
    pthread_once_t tc_once;
    pthread_key_t tc_key; /* its destructor returns an exiting thread's cache */
    bool tc_key_ok;
} sm = {.mu = PTHREAD_MUTEX_INITIALIZER, .tc_once = PTHREAD_ONCE_INIT};

/* One thread's cache of freed small-class objects and its share of the live counters (see the
 * file comment).  Only the thread writes it, except under sm.mu once it has exited (or at a
 * wipe); the counters are relaxed atomics so that mmtls_secmem_stats_get can read them. */
struct sm_tcache {
    struct sm_free *head[SM_CLASSES]; /* borrowed: objects of the pool's chunks */
    uint32_t n[SM_CLASSES];
    uint64_t gen;           /* sm.gen the objects were cached under */
    int state;              /* 0 new, 1 registered (in sm.threads), -1 none: sm.st under sm.mu */
    struct sm_tcache *next; /* borrowed: sm.threads list, under sm.mu */
    int64_t live_bytes, live_objects, cached_objects; /* this thread's changes */
};

static __thread struct sm_tcache sm_tc;

static size_t class_size(unsigned cls)
{
    return (size_t)1 << (cls + SM_MIN_SHIFT);
}

/* Maps len bytes of secret memory (len a multiple of the page size).  NULL on failure. */
static void *sm_map(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        return NULL;
    }
    /* The point of this pool: no core dump carries these pages.  A kernel without
     * MADV_DONTDUMP (before 3.4) would dump them; refuse rather than pretend. */
    if (madvise(p, len, MADV_DONTDUMP) != 0) {
        munmap(p, len);
        return NULL;
    }
    if (sm.lock) {
        if (mlock(p, len) == 0) {
            sm.st.locked_bytes += len;
        } else if (!sm.lock_warned) {
            sm.lock_warned = true;
            mmtls_log(MMTLS_LOG_WARN, "secmem: mlock refused (%s); secrets may be swapped out",
                      strerror(errno));
        }
    }
    sm.st.mapped_bytes += len;
    sm.st.mappings++;
    return p;
}

static size_t page_round(size_t len)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t ps = pg > 0 ? (size_t)pg : 4096u;

    if (len > SIZE_MAX - ps) {
        return 0;
    }
    return (len + ps - 1) / ps * ps;
}

static void tc_count(int64_t *c, int64_t d)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + d, __ATOMIC_RELAXED);
}

/* Caller holds sm.mu.  An exiting thread: its cached objects go back on the shared free lists
 * (unless a wipe made them stale), its counts into sm.st, and it leaves sm.threads. */
static void tc_return(struct sm_tcache *tc)
{
    bool current = tc->gen == __atomic_load_n(&sm.gen, __ATOMIC_RELAXED);

    for (unsigned cls = 0; cls < SM_CLASSES; cls++) {
        while (current && tc->head[cls] != NULL) {
            struct sm_free *f = tc->head[cls];

            tc->head[cls] = f->next;
            f->next = sm.free_list[cls];
            sm.free_list[cls] = f;
        }
        tc->head[cls] = NULL; /* an older generation: wiped memory, dropped */
        tc->n[cls] = 0;
    }
    sm.st.live_bytes += (size_t)tc->live_bytes;
    sm.st.live_objects += (uint64_t)tc->live_objects;
    tc->live_bytes = tc->live_objects = tc->cached_objects = 0;
    for (struct sm_tcache **l = &sm.threads; *l != NULL; l = &(*l)->next) {
        if (*l == tc) {
            *l = tc->next;
            break;
        }
    }
    tc->state = -1; /* a later call in this thread (another destructor) takes the mutex */
}

static void tc_destructor(void *arg)
{
    pthread_mutex_lock(&sm.mu);
    tc_return(arg);
    pthread_mutex_unlock(&sm.mu);
}

/* fork(): the child has only the forking thread.  The others' caches (their TLS, copied) are
 * dropped from the registry, their counts folded into sm.st and their cached objects left
 * unused; the mutex, held across the fork, is released in both processes. */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&sm.mu);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&sm.mu);
}

static void atfork_child(void)
{
    struct sm_tcache *self = sm_tc.state == 1 ? &sm_tc : NULL;

    for (struct sm_tcache *t = sm.threads; t != NULL; t = t->next) {
        if (t != self) {
            sm.st.live_bytes += (size_t)t->live_bytes;
            sm.st.live_objects += (uint64_t)t->live_objects;
        }
    }
    sm.threads = self;
    if (self != NULL) {
        self->next = NULL;
    }
    pthread_mutex_unlock(&sm.mu);
}

static void tc_key_create(void)
{
    sm.tc_key_ok = pthread_key_create(&sm.tc_key, tc_destructor) == 0 &&
                   pthread_atfork(atfork_prepare, atfork_parent, atfork_child) == 0;
}

/* This thread's cache, registered on first use and emptied if a wipe made it stale; NULL when
 * it cannot be registered (no pthread key): the caller counts in sm.st under sm.mu.  A thread
 * whose first call comes from another key's destructor after glibc's last destructor round
 * would stay registered after it exits; no thread of ours does that. */
static struct sm_tcache *tc_get(void)
{
    struct sm_tcache *tc = &sm_tc;

    if (tc->state == 0) {
        pthread_once(&sm.tc_once, tc_key_create);
        tc->state = -1;
        if (sm.tc_key_ok && pthread_setspecific(sm.tc_key, tc) == 0) {
            pthread_mutex_lock(&sm.mu);
            tc->gen = __atomic_load_n(&sm.gen, __ATOMIC_RELAXED);
            tc->next = sm.threads;
            sm.threads = tc;
            tc->state = 1;
            pthread_mutex_unlock(&sm.mu);
        }
    }
    if (tc->state < 0) {
        return NULL;
    }
    if (tc->gen != __atomic_load_n(&sm.gen, __ATOMIC_RELAXED)) {
        memset(tc->head, 0, sizeof(tc->head));
        memset(tc->n, 0, sizeof(tc->n));
        __atomic_store_n(&tc->cached_objects, 0, __ATOMIC_RELAXED);
        tc->gen = __atomic_load_n(&sm.gen, __ATOMIC_RELAXED);
    }
    return tc;
}

/* A cached object of class cls (wiped when it was freed), or NULL. */
static struct sm_hdr *tc_pop(struct sm_tcache *tc, unsigned cls)
{
    struct sm_free *f = tc->head[cls];

    if (f == NULL) {
        return NULL;
    }
    tc->head[cls] = f->next;
    tc->n[cls]--;
    tc_count(&tc->cached_objects, -1);
    f->next = NULL;
    return (struct sm_hdr *)(void *)f;
}

/* Caches the wiped object f of class cls; false when the cache is full. */
static bool tc_push(struct sm_tcache *tc, struct sm_free *f, unsigned cls)
{
    if ((size_t)(tc->n[cls] + 1) * class_size(cls) > SM_TC_BYTES) {
        return false;
    }
    f->next = tc->head[cls];
    tc->head[cls] = f;
    tc->n[cls]++;
    tc_count(&tc->cached_objects, 1);
    return true;
}

void mmtls_secmem_set_lock(bool lock)
{
    pthread_mutex_lock(&sm.mu);
    sm.lock = lock;
    pthread_mutex_unlock(&sm.mu);
}

/* Caller holds sm.mu.  A fresh object of class cls, NULL when out of memory. */
static struct sm_hdr *class_alloc(unsigned cls)
{
    size_t osz = class_size(cls);
    struct sm_chunk *c = sm.chunks[cls];
    struct sm_hdr *h;

    if (sm.free_list[cls] != NULL) {
        struct sm_free *f = sm.free_list[cls];

        sm.free_list[cls] = f->next;
        f->next = NULL; /* the rest of the object was wiped when it was freed */
        return (struct sm_hdr *)(void *)f;
    }
    if (c == NULL || osz > c->len - c->used) {
        size_t clen = MMTLS_MAX((size_t)SM_CHUNK, page_round(osz + 64));

        c = sm_map(clen);
        if (c == NULL) {
            return NULL;
        }
        c->len = clen;
        c->used = 64; /* the chunk header (a cache line, keeps objects 64-aligned) */
        c->cls = cls;
        c->next = sm.chunks[cls];
        sm.chunks[cls] = c;
    }
    h = (struct sm_hdr *)(void *)((uint8_t *)c + c->used);
    c->used += osz;
    return h;
}

/* An object with its own mapping (larger than the largest class). */
static void *big_alloc(size_t len)
{
    size_t mlen = page_round(len + SM_HDR);
    struct sm_hdr *h = NULL;

    if (mlen == 0) {
        return NULL;
    }
    pthread_mutex_lock(&sm.mu);
    h = sm_map(mlen);
    if (h != NULL) {
        h->len = mlen;
        h->magic = SM_MAGIC;
        h->cls = SM_BIG_CLASS;
        sm.st.live_objects++;
        sm.st.live_bytes += mlen;
    }
    pthread_mutex_unlock(&sm.mu);
    return h != NULL ? (uint8_t *)h + SM_HDR : NULL;
}

void *mmtls_secmem_alloc(size_t len)
{
    struct sm_tcache *tc;
    struct sm_hdr *h;
    unsigned cls = 0;

    if (len == 0 || len > SIZE_MAX / 2) {
        return NULL;
    }
    while (cls < SM_CLASSES && class_size(cls) < len + SM_HDR) {
        cls++;
    }
    if (cls >= SM_CLASSES) {
        return big_alloc(len);
    }
    tc = tc_get();
    h = tc != NULL ? tc_pop(tc, cls) : NULL;
    if (h == NULL) {
        pthread_mutex_lock(&sm.mu);
        h = class_alloc(cls);
        if (h != NULL && tc == NULL) {
            sm.st.live_objects++;
            sm.st.live_bytes += class_size(cls);
        }
        pthread_mutex_unlock(&sm.mu);
        if (h == NULL) {
            return NULL;
        }
    }
    if (tc != NULL) {
        tc_count(&tc->live_objects, 1);
        tc_count(&tc->live_bytes, (int64_t)class_size(cls));
    }
    h->magic = SM_MAGIC;
    h->cls = cls;
    return (uint8_t *)h + SM_HDR;
}

void mmtls_secmem_free(void *p)
{
    struct sm_tcache *tc;
    struct sm_hdr *h;

    if (p == NULL) {
        return;
    }
    h = (struct sm_hdr *)(void *)((uint8_t *)p - SM_HDR);
    if (h->magic == 0 && sm.wiped_all) {
        return; /* a late free after the exit wipe: the bytes are already zero */
    }
    if (h->magic != SM_MAGIC || (h->cls >= SM_CLASSES && h->cls != SM_BIG_CLASS)) {
        /* not ours (or a double free): never put a foreign pointer on a free list */
        mmtls_log(MMTLS_LOG_ERR, "secmem: free of a pointer it did not allocate");
        abort();
    }
    if (h->cls == SM_BIG_CLASS) {
        size_t mlen = (size_t)h->len;

        explicit_bzero(h, mlen);
        pthread_mutex_lock(&sm.mu);
        if (sm.lock) {
            /* munmap unlocks too; keep the count right */
            sm.st.locked_bytes = sm.st.locked_bytes >= mlen ? sm.st.locked_bytes - mlen : 0;
        }
        sm.st.mapped_bytes -= mlen;
        sm.st.mappings--;
        sm.st.live_objects--;
        sm.st.live_bytes -= mlen;
        pthread_mutex_unlock(&sm.mu);
        munmap(h, mlen);
        return;
    }
    {
        unsigned cls = h->cls;
        size_t osz = class_size(cls);
        struct sm_free *f = (struct sm_free *)(void *)h;

        /* wipe everything, header included (a stale header would let a double free pass) */
        explicit_bzero(h, osz);
        tc = tc_get();
        if (tc != NULL) {
            tc_count(&tc->live_objects, -1);
            tc_count(&tc->live_bytes, -(int64_t)osz);
            if (tc_push(tc, f, cls)) {
                return;
            }
        }
        pthread_mutex_lock(&sm.mu);
        f->next = sm.free_list[cls];
        sm.free_list[cls] = f;
        if (tc == NULL) {
            sm.st.live_objects--;
            sm.st.live_bytes -= osz;
        }
        pthread_mutex_unlock(&sm.mu);
    }
}

void *mmtls_secmem_calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    return mmtls_secmem_alloc(n * size); /* always zeroed */
}

void mmtls_secmem_wipe_all(void)
{
    pthread_mutex_lock(&sm.mu);
    sm.wiped_all = true;
    __atomic_add_fetch(&sm.gen, 1, __ATOMIC_RELAXED); /* every thread's cache is stale */
    for (struct sm_tcache *t = sm.threads; t != NULL; t = t->next) {
        __atomic_store_n(&t->cached_objects, 0, __ATOMIC_RELAXED); /* dropped at its next call */
    }
    for (unsigned cls = 0; cls < SM_CLASSES; cls++) {
        for (struct sm_chunk *c = sm.chunks[cls]; c != NULL; c = c->next) {
            /* everything after the chunk header: live objects too (this is the exit path) */
            explicit_bzero((uint8_t *)c + 64, c->len - 64);
        }
        sm.free_list[cls] = NULL;
        /* the chunks stay mapped but are treated as used up: nothing is handed out again
         * from wiped memory whose free-list links are gone */
        for (struct sm_chunk *c = sm.chunks[cls]; c != NULL; c = c->next) {
            c->used = c->len;
        }
    }
    pthread_mutex_unlock(&sm.mu);
}

void mmtls_secmem_stats_get(struct mmtls_secmem_stats *out)
{
    int64_t bytes = 0, objects = 0, cached = 0;

    pthread_mutex_lock(&sm.mu);
    *out = sm.st;
    for (const struct sm_tcache *t = sm.threads; t != NULL; t = t->next) {
        bytes += __atomic_load_n(&t->live_bytes, __ATOMIC_RELAXED);
        objects += __atomic_load_n(&t->live_objects, __ATOMIC_RELAXED);
        cached += __atomic_load_n(&t->cached_objects, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&sm.mu);
    /* The threads' counts are read one after the other while they run: an object freed by
     * another thread than the one that allocated it can be seen freed and not yet allocated.
     * Exact when the threads are quiet; never below zero. */
    bytes += (int64_t)out->live_bytes;
    objects += (int64_t)out->live_objects;
    out->live_bytes = bytes > 0 ? (size_t)bytes : 0;
    out->live_objects = objects > 0 ? (uint64_t)objects : 0;
    out->cached_objects = cached > 0 ? (uint64_t)cached : 0;
}

bool mmtls_secmem_owns(const void *p)
{
    bool found = false;

    pthread_mutex_lock(&sm.mu);
    for (unsigned cls = 0; cls < SM_CLASSES && !found; cls++) {
        for (struct sm_chunk *c = sm.chunks[cls]; c != NULL; c = c->next) {
            if ((const uint8_t *)p >= (const uint8_t *)c &&
                (const uint8_t *)p < (const uint8_t *)c + c->len) {
                found = true;
                break;
            }
        }
    }
    pthread_mutex_unlock(&sm.mu);
    return found;
}
