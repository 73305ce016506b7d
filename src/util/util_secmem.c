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

#define SM_HDR 16u              /* header before each object; keeps 16-byte alignment */
#define SM_MAGIC 0x6d6d5345u    /* "mmSE" */
#define SM_MIN_SHIFT 6          /* smallest class: 64 bytes (header included) */
#define SM_CLASSES 11           /* 64 B .. 64 KiB */
#define SM_CHUNK (256u * 1024u) /* bytes per chunk of the small classes */
#define SM_BIG_CLASS 0xffu      /* object with its own mapping */

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
    struct mmtls_secmem_stats st;
} sm = {.mu = PTHREAD_MUTEX_INITIALIZER};

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

void *mmtls_secmem_alloc(size_t len)
{
    struct sm_hdr *h = NULL;
    unsigned cls = 0;

    if (len == 0 || len > SIZE_MAX / 2) {
        return NULL;
    }
    while (cls < SM_CLASSES && class_size(cls) < len + SM_HDR) {
        cls++;
    }
    pthread_mutex_lock(&sm.mu);
    if (cls < SM_CLASSES) {
        h = class_alloc(cls);
    } else {
        size_t mlen = page_round(len + SM_HDR);

        if (mlen != 0) {
            h = sm_map(mlen);
        }
        if (h != NULL) {
            h->len = mlen;
        }
    }
    if (h != NULL) {
        h->magic = SM_MAGIC;
        h->cls = cls < SM_CLASSES ? cls : SM_BIG_CLASS;
        sm.st.live_objects++;
        sm.st.live_bytes += cls < SM_CLASSES ? class_size(cls) : h->len;
    }
    pthread_mutex_unlock(&sm.mu);
    return h != NULL ? (uint8_t *)h + SM_HDR : NULL;
}

void mmtls_secmem_free(void *p)
{
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
        pthread_mutex_lock(&sm.mu);
        f->next = sm.free_list[cls];
        sm.free_list[cls] = f;
        sm.st.live_objects--;
        sm.st.live_bytes -= osz;
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
    pthread_mutex_lock(&sm.mu);
    *out = sm.st;
    pthread_mutex_unlock(&sm.mu);
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
