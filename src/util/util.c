/* util — implementation of the helpers declared in util.h. */
#include "util/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

const char *mmtls_strerror(int err)
{
    switch (err) {
    case MMTLS_OK: return "ok";
    case MMTLS_AGAIN: return "need more input";
    case MMTLS_DECLINED: return "declined";
    case MMTLS_E_MALFORMED: return "malformed input";
    case MMTLS_E_AUTH: return "authentication failed";
    case MMTLS_E_UNSUPPORTED: return "unsupported";
    case MMTLS_E_NOMEM: return "out of memory";
    case MMTLS_E_MEMCAP: return "memory cap reached";
    case MMTLS_E_LIMIT: return "limit reached";
    case MMTLS_E_INTERNAL: return "internal error";
    case MMTLS_E_IO: return "I/O error";
    case MMTLS_E_INVAL: return "invalid argument";
    case MMTLS_E_NOTFOUND: return "not found";
    case MMTLS_E_CONFLICT: return "conflicting value";
    case MMTLS_E_CRYPTO: return "crypto library error";
    case MMTLS_E_PEER_ALERT: return "the peer sent a fatal alert";
    }
    return "unknown error";
}

int mmtls_cur_vec(struct mmtls_cur *c, unsigned n, struct mmtls_cur *sub)
{
    size_t len = 0;

    if (n < 1 || n > 3)
        return MMTLS_E_INTERNAL;
    if (n > mmtls_cur_left(c))
        return MMTLS_E_MALFORMED;
    for (unsigned i = 0; i < n; i++)
        len = len << 8 | c->p[i];
    if (len > mmtls_cur_left(c) - n)
        return MMTLS_E_MALFORMED;
    c->p += n;
    sub->p = c->p;
    sub->end = c->p + len;
    c->p += len;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */

int mmtls_buf_reserve(struct mmtls_buf *b, size_t extra)
{
    size_t need, ncap;
    uint8_t *np;

    if (extra > SIZE_MAX - b->len)
        return MMTLS_E_NOMEM;
    need = b->len + extra;
    if (need <= b->cap)
        return 0;
    if (b->max != 0 && need > b->max)
        return MMTLS_E_MEMCAP;
    ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (b->max != 0 && ncap > b->max)
        ncap = b->max;
    np = realloc(b->p, ncap);
    if (np == NULL)
        return MMTLS_E_NOMEM;
    b->p = np;
    b->cap = ncap;
    return 0;
}

int mmtls_buf_append(struct mmtls_buf *b, const void *p, size_t len)
{
    int rc;

    if (len == 0)
        return 0;
    rc = mmtls_buf_reserve(b, len);
    if (rc != 0)
        return rc;
    memcpy(b->p + b->len, p, len);
    b->len += len;
    return 0;
}

void mmtls_buf_consume(struct mmtls_buf *b, size_t n)
{
    MMTLS_DEBUG_ASSERT(n <= b->len);
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

void mmtls_buf_fini(struct mmtls_buf *b, bool wipe)
{
    if (b->p != NULL && wipe)
        OPENSSL_cleanse(b->p, b->cap);
    free(b->p);
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

/* ------------------------------------------------------------------------------------------ */

void mmtls_wipe(void *p, size_t len)
{
    if (p != NULL && len != 0)
        OPENSSL_cleanse(p, len);
}

void mmtls_secret_wipe(struct mmtls_secret *s)
{
    OPENSSL_cleanse(s, sizeof(*s));
}

bool mmtls_ct_eq(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

int mmtls_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int mmtls_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t outcap)
{
    if (hexlen % 2 != 0 || hexlen / 2 > outcap)
        return MMTLS_E_MALFORMED;
    for (size_t i = 0; i < hexlen / 2; i++) {
        int hi = mmtls_hexval((unsigned char)hex[2 * i]),
            lo = mmtls_hexval((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return MMTLS_E_MALFORMED;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void mmtls_hex_encode(const uint8_t *p, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * len] = '\0';
}

/* ------------------------------------------------------------------------------------------ */

static enum mmtls_log_level log_level = MMTLS_LOG_WARN;

void mmtls_log_set_level(enum mmtls_log_level lvl)
{
    log_level = lvl;
}

enum mmtls_log_level mmtls_log_get_level(void)
{
    return log_level;
}

void mmtls_log(enum mmtls_log_level lvl, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    va_list ap;

    if (lvl > log_level)
        return;
    fprintf(stderr, "mmtls: %s: ", names[lvl]);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void mmtls_errf(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || cap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

void mmtls_log_openssl(enum mmtls_log_level lvl, const char *what)
{
    char line[256] = "";
    unsigned long e = ERR_get_error();

    if (e != 0)
        ERR_error_string_n(e, line, sizeof(line));
    while (ERR_get_error() != 0) {
    }
    mmtls_log(lvl, "%s: %s", what, e != 0 ? line : "(no detail)");
}

/* ------------------------------------------------------------------------------------------ */

void mmtls_json_init(struct mmtls_json *j, struct mmtls_buf *out)
{
    memset(j, 0, sizeof(*j));
    j->out = out;
}

static void json_raw(struct mmtls_json *j, const char *s, size_t len)
{
    if (j->err == 0)
        j->err = mmtls_buf_append(j->out, s, len);
}

static void json_escaped(struct mmtls_json *j, const uint8_t *s, size_t len)
{
    static const char digits[] = "0123456789abcdef";

    json_raw(j, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        char esc[7];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            json_raw(j, esc, 2);
        } else if (c < 0x20 || c >= 0x7f) {
            /* Non-ASCII bytes are escaped one by one: the output stays valid JSON whatever the
             * peer sent (the input is not trusted to be UTF-8). */
            memcpy(esc, "\\u00", 4);
            esc[4] = digits[c >> 4];
            esc[5] = digits[c & 15];
            json_raw(j, esc, 6);
        } else {
            json_raw(j, (const char *)&c, 1);
        }
    }
    json_raw(j, "\"", 1);
}

static void json_key(struct mmtls_json *j, const char *key)
{
    uint64_t bit = 1ull << (j->depth & 63);

    if (j->need_comma & bit)
        json_raw(j, ",", 1);
    j->need_comma |= bit;
    if (key != NULL) {
        json_escaped(j, (const uint8_t *)key, strlen(key));
        json_raw(j, ":", 1);
    }
}

void mmtls_json_obj_open(struct mmtls_json *j, const char *key)
{
    json_key(j, key);
    json_raw(j, "{", 1);
    j->depth++;
    j->need_comma &= ~(1ull << (j->depth & 63));
}

void mmtls_json_obj_close(struct mmtls_json *j)
{
    j->depth--;
    json_raw(j, "}", 1);
}

void mmtls_json_arr_open(struct mmtls_json *j, const char *key)
{
    json_key(j, key);
    json_raw(j, "[", 1);
    j->depth++;
    j->need_comma &= ~(1ull << (j->depth & 63));
}

void mmtls_json_arr_close(struct mmtls_json *j)
{
    j->depth--;
    json_raw(j, "]", 1);
}

void mmtls_json_strn(struct mmtls_json *j, const char *key, const void *v, size_t len)
{
    json_key(j, key);
    json_escaped(j, v, len);
}

void mmtls_json_str(struct mmtls_json *j, const char *key, const char *v)
{
    mmtls_json_strn(j, key, v, strlen(v));
}

void mmtls_json_u64(struct mmtls_json *j, const char *key, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);

    json_key(j, key);
    json_raw(j, tmp, (size_t)n);
}

void mmtls_json_i64(struct mmtls_json *j, const char *key, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);

    json_key(j, key);
    json_raw(j, tmp, (size_t)n);
}

void mmtls_json_bool(struct mmtls_json *j, const char *key, bool v)
{
    json_key(j, key);
    json_raw(j, v ? "true" : "false", v ? 4 : 5);
}

void mmtls_json_hex(struct mmtls_json *j, const char *key, const uint8_t *p, size_t len)
{
    char tmp[2 * 64 + 1];

    json_key(j, key);
    json_raw(j, "\"", 1);
    while (len > 0) {
        size_t n = MMTLS_MIN(len, (size_t)64);
        mmtls_hex_encode(p, n, tmp);
        json_raw(j, tmp, 2 * n);
        p += n;
        len -= n;
    }
    json_raw(j, "\"", 1);
}

void mmtls_json_ts(struct mmtls_json *j, const char *key, uint64_t ts_us)
{
    char tmp[64];
    time_t secs = (time_t)(ts_us / 1000000);
    struct tm tm;
    int n;

    gmtime_r(&secs, &tm);
    n = snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%06u+0000", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (unsigned)(ts_us % 1000000));
    mmtls_json_strn(j, key, tmp, (size_t)n);
}

/* ------------------------------------------------------------------------------------------ */

bool mmtls_memcap_fits(const struct mmtls_memcap *m, size_t len)
{
    return m == NULL || m->limit == 0 || (len <= m->limit && m->used <= m->limit - len);
}

int mmtls_memcap_charge(struct mmtls_memcap *m, size_t len)
{
    if (m == NULL)
        return 0;
    if (!mmtls_memcap_fits(m, len)) {
        m->refused++;
        return MMTLS_E_MEMCAP;
    }
    m->used += len;
    if (m->used > m->peak)
        m->peak = m->used;
    return 0;
}

void mmtls_memcap_release(struct mmtls_memcap *m, size_t len)
{
    if (m == NULL)
        return;
    MMTLS_DEBUG_ASSERT(len <= m->used);
    m->used = len > m->used ? 0 : m->used - len;
}

uint64_t mmtls_hash64(const void *p, size_t len, uint64_t seed)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;

    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    /* final avalanche (splitmix64) so that low bits are usable as a bucket index */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

/* ------------------------------------------------------------------------------------------ */

int mmtls_ring_init(struct mmtls_ring *r, uint32_t cap)
{
    uint32_t n = 2;

    memset(r, 0, sizeof(*r));
    while (n < cap && n < (1u << 30))
        n <<= 1;
    r->slot = calloc(n, sizeof(*r->slot));
    if (r->slot == NULL)
        return MMTLS_E_NOMEM;
    r->mask = n - 1;
    return 0;
}

void mmtls_ring_fini(struct mmtls_ring *r)
{
    free(r->slot);
    r->slot = NULL;
}

bool mmtls_ring_push(struct mmtls_ring *r, void *p)
{
    unsigned long head = __atomic_load_n(&r->head, __ATOMIC_RELAXED); /* ours */
    unsigned long tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE); /* pairs with pop */

    if (head - tail > r->mask)
        return false;
    r->slot[head & r->mask] = p;
    /* Publish the slot before the new head: the consumer's acquire load of head sees it. */
    __atomic_store_n(&r->head, head + 1, __ATOMIC_RELEASE);
    return true;
}

void *mmtls_ring_pop(struct mmtls_ring *r)
{
    unsigned long tail = __atomic_load_n(&r->tail, __ATOMIC_RELAXED); /* ours */
    unsigned long head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE); /* pairs with push */
    void *p;

    if (tail == head)
        return NULL;
    p = r->slot[tail & r->mask];
    /* Release the slot only after reading it: the producer may reuse it after this store. */
    __atomic_store_n(&r->tail, tail + 1, __ATOMIC_RELEASE);
    return p;
}

uint32_t mmtls_csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
    for (; len >= 2; p += 2, len -= 2)
        sum += (uint32_t)p[0] << 8 | p[1];
    if (len == 1)
        sum += (uint32_t)p[0] << 8;
    return sum;
}

uint16_t mmtls_csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

uint16_t mmtls_csum_finish(uint32_t sum)
{
    return (uint16_t)~mmtls_csum_fold(sum);
}

uint64_t mmtls_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
