/* util — the bottom layer: bounded byte cursor, owned buffer, secrets, logging, JSON writer,
 * memory-cap accounting and small helpers.  Depends on nothing but libc and libcrypto (for
 * OPENSSL_cleanse).
 */
#ifndef MMTLS_UTIL_H
#define MMTLS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <mmtls/error.h>

#if defined(MMTLS_DEBUG)
#include <assert.h>
#define MMTLS_DEBUG_ASSERT(x) assert(x)
#else
#define MMTLS_DEBUG_ASSERT(x) ((void)0)
#endif

#define MMTLS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MMTLS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MMTLS_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Wrap-safe TCP sequence comparisons (RFC 793 §3.3 modular arithmetic, as Suricata's SEQ_*). */
#define MMTLS_SEQ_DIFF(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)))
#define MMTLS_SEQ_LT(a, b) (MMTLS_SEQ_DIFF(a, b) < 0)
#define MMTLS_SEQ_LEQ(a, b) (MMTLS_SEQ_DIFF(a, b) <= 0)
#define MMTLS_SEQ_GT(a, b) (MMTLS_SEQ_DIFF(a, b) > 0)
#define MMTLS_SEQ_GEQ(a, b) (MMTLS_SEQ_DIFF(a, b) >= 0)

/* ------------------------------------------------------------------------------------------ */
/* Slices and the bounded cursor                                                               */

/* A borrowed view of bytes; never owns memory. */
struct mmtls_slice {
    const uint8_t *p; /* borrowed */
    size_t len;
};

/* A bounded read cursor over borrowed bytes [p, end).  Every read checks the remaining length
 * first, as `need > (size_t)(end - p)`, so no out-of-range pointer is ever formed. */
struct mmtls_cur {
    const uint8_t *p;   /* borrowed */
    const uint8_t *end; /* borrowed */
};

static inline struct mmtls_cur mmtls_cur_make(const void *p, size_t len)
{
    struct mmtls_cur c = {(const uint8_t *)p, (const uint8_t *)p};

    if (p != NULL) /* NULL + 0 is undefined behaviour in C */
        c.end += len;
    return c;
}

static inline size_t mmtls_cur_left(const struct mmtls_cur *c)
{
    return (size_t)(c->end - c->p);
}

MMTLS_MUST_USE static inline int mmtls_cur_u8(struct mmtls_cur *c, uint8_t *v)
{
    if (1 > mmtls_cur_left(c))
        return MMTLS_E_MALFORMED;
    *v = c->p[0];
    c->p += 1;
    return 0;
}

MMTLS_MUST_USE static inline int mmtls_cur_u16(struct mmtls_cur *c, uint16_t *v)
{
    if (2 > mmtls_cur_left(c))
        return MMTLS_E_MALFORMED;
    *v = (uint16_t)(c->p[0] << 8 | c->p[1]);
    c->p += 2;
    return 0;
}

MMTLS_MUST_USE static inline int mmtls_cur_u24(struct mmtls_cur *c, uint32_t *v)
{
    if (3 > mmtls_cur_left(c))
        return MMTLS_E_MALFORMED;
    *v = (uint32_t)c->p[0] << 16 | (uint32_t)c->p[1] << 8 | c->p[2];
    c->p += 3;
    return 0;
}

MMTLS_MUST_USE static inline int mmtls_cur_u32(struct mmtls_cur *c, uint32_t *v)
{
    if (4 > mmtls_cur_left(c))
        return MMTLS_E_MALFORMED;
    *v = (uint32_t)c->p[0] << 24 | (uint32_t)c->p[1] << 16 | (uint32_t)c->p[2] << 8 | c->p[3];
    c->p += 4;
    return 0;
}

/* Hands back the next n bytes as a borrowed slice and advances past them. */
MMTLS_MUST_USE static inline int mmtls_cur_bytes(struct mmtls_cur *c, size_t n,
                                                 struct mmtls_slice *s)
{
    if (n > mmtls_cur_left(c))
        return MMTLS_E_MALFORMED;
    s->p = c->p;
    s->len = n;
    c->p += n;
    return 0;
}

MMTLS_MUST_USE static inline int mmtls_cur_skip(struct mmtls_cur *c, size_t n)
{
    if (n > mmtls_cur_left(c))
        return MMTLS_E_MALFORMED;
    c->p += n;
    return 0;
}

/* Reads an n-byte (1..3) big-endian length, checks it fits, hands back exactly that many bytes
 * in *sub and advances c past them.  Callers must consume *sub completely (mmtls_cur_done). */
MMTLS_MUST_USE int mmtls_cur_vec(struct mmtls_cur *c, unsigned n, struct mmtls_cur *sub);

/* 0 when the cursor is fully consumed, MMTLS_E_MALFORMED when bytes are left over. */
MMTLS_MUST_USE static inline int mmtls_cur_done(const struct mmtls_cur *c)
{
    return c->p == c->end ? 0 : MMTLS_E_MALFORMED;
}

static inline struct mmtls_slice mmtls_cur_rest(struct mmtls_cur *c)
{
    struct mmtls_slice s = {c->p, mmtls_cur_left(c)};
    c->p = c->end;
    return s;
}

static inline uint16_t mmtls_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t mmtls_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void mmtls_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void mmtls_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Owned growable buffer                                                                       */

/* An owned byte buffer.  `cap` bounds growth when `max` is non-zero (then growth beyond `max`
 * fails with MMTLS_E_MEMCAP).  Zero-initialised storage is a valid empty buffer. */
struct mmtls_buf {
    uint8_t *p; /* owned (heap) */
    size_t len;
    size_t cap;
    size_t max; /* 0 = unbounded */
};

MMTLS_MUST_USE int mmtls_buf_reserve(struct mmtls_buf *b, size_t extra);
MMTLS_MUST_USE int mmtls_buf_append(struct mmtls_buf *b, const void *p, size_t len);
/* Removes the first n bytes (n <= len). */
void mmtls_buf_consume(struct mmtls_buf *b, size_t n);
/* Frees the storage; the buffer is empty and reusable afterwards.  If `wipe`, cleanses first. */
void mmtls_buf_fini(struct mmtls_buf *b, bool wipe);

/* ------------------------------------------------------------------------------------------ */
/* Secrets                                                                                     */

#define MMTLS_SECRET_MAX 64 /* largest TLS secret: SHA-512 output (SHA-384 in practice) */

/* A fixed-size secret.  Wipe with mmtls_secret_wipe; never log or copy into app memory. */
struct mmtls_secret {
    uint8_t len;
    uint8_t b[MMTLS_SECRET_MAX];
};

void mmtls_secret_wipe(struct mmtls_secret *s);
void mmtls_wipe(void *p, size_t len);
/* Constant-time comparison; returns true when equal. */
bool mmtls_ct_eq(const void *a, const void *b, size_t len);

/* Secure memory for session secrets (util_secmem.c): objects carved from mmap'ed pages marked
 * MADV_DONTDUMP (never in a core dump, even with dumping allowed), locked in RAM when
 * mmtls_secmem_set_lock(true) was called (best effort), returned zeroed, and wiped when freed.
 * Small objects share pages (size classes up to 64 KiB), so it is fit for many small keys.
 * Thread-safe: each thread caches the small objects it frees (up to 64 KiB per size class) and
 * reuses them without the pool's mutex; handshake-time allocations, not the packet path. */
struct mmtls_secmem_stats {
    size_t mapped_bytes; /* pages mapped (chunks and large objects) */
    size_t locked_bytes; /* of which mlock'ed */
    size_t live_bytes;   /* bytes handed out and not freed (rounded to the size class) */
    uint64_t live_objects;
    uint64_t mappings;
    uint64_t cached_objects; /* freed, held in threads' caches for reuse */
};

/* len bytes, zeroed; NULL when len is 0 or out of memory.  Free with mmtls_secmem_free. */
void *mmtls_secmem_alloc(size_t len);
void *mmtls_secmem_calloc(size_t n, size_t size);
/* Wipes the object and returns it to the pool; NULL is a no-op.  Aborts on a pointer the pool
 * did not hand out. */
void mmtls_secmem_free(void *p);
/* Lock pages mapped from now on (mlock); a refusal is logged once and ignored. */
void mmtls_secmem_set_lock(bool lock);
/* Exit path: wipes every pooled byte, live objects included; later frees are no-ops and no
 * pooled memory is reused.  Call only when no thread uses pooled memory any more. */
void mmtls_secmem_wipe_all(void);
void mmtls_secmem_stats_get(struct mmtls_secmem_stats *out);
/* True when p points into a pooled chunk (tests). */
bool mmtls_secmem_owns(const void *p);

/* ------------------------------------------------------------------------------------------ */
/* Hex                                                                                         */

/* Decodes exactly `hexlen` hex digits (either case) into out (hexlen/2 bytes).
 * MMTLS_E_MALFORMED on an odd length or a non-hex character. */
/* Value of one hex digit (0-9, a-f, A-F), or -1. */
int mmtls_hexval(int c);

MMTLS_MUST_USE int mmtls_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t outcap);
/* Writes 2*len lowercase hex digits and a NUL into out (which must hold 2*len+1). */
void mmtls_hex_encode(const uint8_t *p, size_t len, char *out);

/* ------------------------------------------------------------------------------------------ */
/* Logging (stderr).  Never log secrets or per-packet lines above debug.                        */

enum mmtls_log_level { MMTLS_LOG_ERR = 0, MMTLS_LOG_WARN, MMTLS_LOG_INFO, MMTLS_LOG_DEBUG };
void mmtls_log_set_level(enum mmtls_log_level lvl);
enum mmtls_log_level mmtls_log_get_level(void);

/* CLOCK_MONOTONIC in nanoseconds (durations, timeouts). */
uint64_t mmtls_mono_ns(void);

/* The Internet checksum (RFC 1071): mmtls_csum_add accumulates 16-bit big-endian words (an odd
 * last byte padded with zero) into a 32-bit sum, which holds 64 KiB + headers without
 * overflow; mmtls_csum_fold folds it to the 16-bit ones' complement sum (0xffff over data that
 * includes a correct checksum); mmtls_csum_finish is the value a checksum field gets. */
uint32_t mmtls_csum_add(uint32_t sum, const uint8_t *p, size_t len);
uint16_t mmtls_csum_fold(uint32_t sum);
uint16_t mmtls_csum_finish(uint32_t sum);
void mmtls_log(enum mmtls_log_level lvl, const char *fmt, ...) MMTLS_PRINTF(2, 3);
/* Formats a one-line error message into err (cap bytes, always NUL-terminated); err NULL or cap
 * 0: nothing.  Used by functions that report "file:line: what" to their caller. */
void mmtls_errf(char *err, size_t cap, const char *fmt, ...) MMTLS_PRINTF(3, 4);
/* Drains OpenSSL's error queue into one log line prefixed with `what`. */
void mmtls_log_openssl(enum mmtls_log_level lvl, const char *what);

/* ------------------------------------------------------------------------------------------ */
/* JSON writer (appends to an mmtls_buf; strings are escaped per RFC 8259 §7).                  */

struct mmtls_json {
    struct mmtls_buf *out; /* borrowed */
    uint32_t depth;
    uint64_t need_comma; /* bit per depth level */
    int err;             /* first error, sticky */
};

void mmtls_json_init(struct mmtls_json *j, struct mmtls_buf *out);
void mmtls_json_obj_open(struct mmtls_json *j, const char *key); /* key NULL at top/in arrays */
void mmtls_json_obj_close(struct mmtls_json *j);
void mmtls_json_arr_open(struct mmtls_json *j, const char *key);
void mmtls_json_arr_close(struct mmtls_json *j);
void mmtls_json_str(struct mmtls_json *j, const char *key, const char *v);
void mmtls_json_strn(struct mmtls_json *j, const char *key, const void *v, size_t len);
void mmtls_json_u64(struct mmtls_json *j, const char *key, uint64_t v);
void mmtls_json_i64(struct mmtls_json *j, const char *key, int64_t v);
void mmtls_json_bool(struct mmtls_json *j, const char *key, bool v);
void mmtls_json_hex(struct mmtls_json *j, const char *key, const uint8_t *p, size_t len);
/* Appends "YYYY-MM-DDTHH:MM:SS.uuuuuu+0000" for a UNIX time in microseconds. */
void mmtls_json_ts(struct mmtls_json *j, const char *key, uint64_t ts_us);

/* ------------------------------------------------------------------------------------------ */
/* Memory-cap accounting.  A memcap is shared by the structures of one worker; it is not        */
/* thread-safe on purpose (workers share nothing).                                             */

struct mmtls_memcap {
    size_t limit; /* 0 = unlimited */
    size_t used;
    size_t peak;
    uint64_t refused; /* allocations refused because of the cap */
};

/* Accounts `len` bytes; MMTLS_E_MEMCAP (and refused++) if that would exceed the limit. */
MMTLS_MUST_USE int mmtls_memcap_charge(struct mmtls_memcap *m, size_t len);
/* Whether `len` more bytes would be within the limit now (nothing is charged or counted). */
bool mmtls_memcap_fits(const struct mmtls_memcap *m, size_t len);
void mmtls_memcap_release(struct mmtls_memcap *m, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* Misc                                                                                        */

/* 64-bit FNV-1a-style mix used by hash tables (keyed with a per-process random seed). */
uint64_t mmtls_hash64(const void *p, size_t len, uint64_t seed);

/* ------------------------------------------------------------------------------------------ */
/* Single-producer single-consumer ring of pointers (the key server thread -> one worker).     */
/* Lock-free: the producer owns `head`, the consumer owns `tail`; each publishes its index with */
/* a release store and reads the other's with an acquire load, so a slot's contents are visible */
/* to the consumer before it sees the slot counted (as xsk.h's producer/consumer rings).        */

struct mmtls_ring {
    void **slot;                     /* owned: cap entries */
    uint32_t mask;                   /* cap - 1; cap is a power of two */
    _Alignas(64) unsigned long head; /* written by the producer only (atomic) */
    _Alignas(64) unsigned long tail; /* written by the consumer only (atomic) */
};

/* cap is rounded up to a power of two (at least 2). */
MMTLS_MUST_USE int mmtls_ring_init(struct mmtls_ring *r, uint32_t cap);
void mmtls_ring_fini(struct mmtls_ring *r);
/* Producer: false when the ring is full (the caller keeps ownership of p). */
bool mmtls_ring_push(struct mmtls_ring *r, void *p);
/* Consumer: NULL when empty. */
void *mmtls_ring_pop(struct mmtls_ring *r);

#endif
