/* bench_tag2 — per-record cost of the private tag (docs/PRIVTAG.md, issue 5).
 *
 * For each TLS 1.3 suite tag2 is defined for and each record size, measures ns per record of
 *   seal        mmtls_rprot_seal (ordinary TLS 1.3 record protection, src/crypto)
 *   seal+tag2   the same, then the header length patched (+16) and tag2 appended
 *   open        mmtls_rprot_open (tag1 verify + decrypt)
 *   open+tag2   the same, then tag2 recomputed over header || tag1 and compared (CRYPTO_memcmp)
 * and tag2 alone, with tag2 computed two ways:
 *   api  mmtls_ep_tag2, the public stateless primitive (sets k2 up anew per call);
 *   ctx  the endpoint library's per-direction state (struct mmtls_ep_t2, keyshare_int.h), set
 *        up once with k2, per record mmtls_ep_t2_calc_seq with the nonce and sequence number
 *        (ChaCha20: one-time keys cached per batch): what the record layer does per
 *        direction and key generation.  Its output is checked against mmtls_ep_tag2 on every
 *        set-up record.
 * After one warm-up pass, the variants are interleaved within every run (their order
 * alternates from run to run), each measurement runs for at least --min-ms milliseconds,
 * and the figure reported is the median of --runs runs (default 5).  Overhead: the median over
 * the runs of with / without - 1, the two measured back to back.
 *
 * One simplification: mmtls_rprot_seal computes tag1 with the header it writes, whose length
 * does not count tag2, so the +tag2 records are opened with that header as tag1's AAD.  The
 * AAD is 5 bytes either way, so the cost is the same as with the header as sent.
 *
 * Output: a markdown table on stdout, and with --json FILE one JSON object per (suite, size).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <mmtls/endpoint.h>

#include "crypto/crypto.h"

#include "../../lib/keyshare/keyshare_int.h" /* struct mmtls_ep_t2: linked from the archive */

#define RUNS_MAX 21
#define NREC 64 /* distinct records opened in turn (seq 0..63) */
#define REC_CAP (5 + 16384 + 256 + 16)
#define BATCH 64
#define ITERS_MAX 50000000L /* per measurement: a bound besides the time */

enum t2mode { T2_NONE, T2_CTX, T2_API };

enum variant {
    V_SEAL,
    V_SEAL_CTX,
    V_SEAL_API,
    V_OPEN,
    V_OPEN_CTX,
    V_OPEN_API,
    V_TAG2_CTX,
    V_TAG2_API,
    V_COUNT
};

static const char *const vnames[V_COUNT] = {"seal",     "seal+tag2/ctx", "seal+tag2/api",
                                            "open",     "open+tag2/ctx", "open+tag2/api",
                                            "tag2/ctx", "tag2/api"};

struct bsuite {
    uint16_t id;
    const char *name;
    int aead; /* for mmtls_ep_tag2: 0 AES-GCM, 1 ChaCha20-Poly1305 */
};

static const struct bsuite suites[] = {
    {0x1301, "AES-128-GCM", 0},
    {0x1302, "AES-256-GCM", 0},
    {0x1303, "ChaCha20-Poly1305", 1},
};

static const size_t sizes[] = {16, 256, 1024, 4096, 16384};

/* One suite's state for one record size. */
struct bench {
    const struct mmtls_suite *suite; /* borrowed: static table */
    int aead;
    struct mmtls_rprot *rp; /* owned */
    struct mmtls_ep_t2 t2;  /* owned: set up with k2 once */
    uint8_t iv[12], k2[32];
    size_t k2_len, size;
    uint8_t plain[16384];
    uint8_t rec[NREC][REC_CAP]; /* plain TLS 1.3 records, seq = index */
    size_t rec_len[NREC];
    uint8_t trec[NREC][REC_CAP]; /* the same with tag2 appended */
    uint8_t thdr_tag1[NREC][5];  /* the header tag1 was computed with (see above) */
    uint8_t out[REC_CAP];
    volatile uint64_t sink;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* RFC 8446 §5.3: nonce = write_iv XOR pad_left(seq, 12). */
static void make_nonce(const uint8_t iv[12], uint64_t seq, uint8_t nonce[12])
{
    memcpy(nonce, iv, 12);
    for (int i = 0; i < 8; i++) {
        nonce[11 - i] ^= (uint8_t)(seq >> (8 * i));
    }
}

/* docs/PRIVTAG.md: tag2 = AEAD-Seal(k2, nonce, "", aad = header || tag1). */
static int tag2_calc(struct bench *b, enum t2mode m, uint64_t seq, const uint8_t nonce[12],
                     const uint8_t hdr[5], const uint8_t tag1[16], uint8_t tag2[16])
{
    if (m == T2_API) {
        return mmtls_ep_tag2(b->aead, b->k2, b->k2_len, nonce, hdr, tag1, tag2);
    }
    return mmtls_ep_t2_calc_seq(&b->t2, seq, nonce, hdr, tag1, tag2);
}

/* Seals plain as record seq into out; with tag2, patches the length and appends tag2. */
static int seal_one(struct bench *b, uint64_t seq, enum t2mode m, uint8_t *out, size_t *len)
{
    int rc = mmtls_rprot_seal(b->rp, seq, 0x17, 0x0303, b->plain, b->size, 0, out, REC_CAP, len);
    if (rc != 0 || m == T2_NONE) {
        return rc;
    }
    uint8_t nonce[12];
    size_t flen = *len - 5 + 16;
    out[3] = (uint8_t)(flen >> 8);
    out[4] = (uint8_t)flen;
    make_nonce(b->iv, seq, nonce);
    rc = tag2_calc(b, m, seq, nonce, out, out + *len - 16, out + *len);
    *len += 16;
    return rc;
}

static int open_one(struct bench *b, unsigned i, enum t2mode m)
{
    size_t plen = 0;
    uint8_t type = 0;
    int rc;

    if (m == T2_NONE) {
        rc = mmtls_rprot_open(b->rp, i, b->rec[i], b->rec[i] + 5, b->rec_len[i] - 5, b->out, &plen,
                              &type);
        b->sink += plen;
        return rc;
    }
    const uint8_t *r = b->trec[i];
    size_t flen = b->rec_len[i] + 16 - 5; /* as received: tag2 included */
    uint8_t nonce[12], t2[16];
    rc = mmtls_rprot_open(b->rp, i, b->thdr_tag1[i], r + 5, flen - 16, b->out, &plen, &type);
    if (rc != 0) {
        return rc;
    }
    make_nonce(b->iv, i, nonce);
    rc = tag2_calc(b, m, i, nonce, r, r + 5 + flen - 32, t2);
    if (rc != 0) {
        return rc;
    }
    b->sink += plen;
    return CRYPTO_memcmp(t2, r + 5 + flen - 16, 16) == 0 ? 0 : MMTLS_E_AUTH;
}

static int run_variant(struct bench *b, enum variant v, uint64_t *iters)
{
    uint8_t nonce[12], t2[16];
    size_t len;
    int rc = 0;

    for (unsigned k = 0; k < BATCH && rc == 0; k++) {
        uint64_t seq = *iters + k;
        unsigned i = (unsigned)(seq % NREC);
        switch (v) {
        case V_SEAL: rc = seal_one(b, seq, T2_NONE, b->out, &len); break;
        case V_SEAL_CTX: rc = seal_one(b, seq, T2_CTX, b->out, &len); break;
        case V_SEAL_API: rc = seal_one(b, seq, T2_API, b->out, &len); break;
        case V_OPEN: rc = open_one(b, i, T2_NONE); break;
        case V_OPEN_CTX: rc = open_one(b, i, T2_CTX); break;
        case V_OPEN_API: rc = open_one(b, i, T2_API); break;
        case V_TAG2_CTX:
        case V_TAG2_API:
            make_nonce(b->iv, seq, nonce);
            rc = tag2_calc(b, v == V_TAG2_CTX ? T2_CTX : T2_API, seq, nonce, b->trec[i],
                           b->trec[i] + b->rec_len[i] - 16, t2);
            b->sink += t2[0];
            break;
        default: rc = MMTLS_E_INTERNAL;
        }
    }
    *iters += BATCH;
    return rc;
}

/* ns per record of variant v, measured for at least min_ns. */
static int measure(struct bench *b, enum variant v, uint64_t min_ns, double *ns)
{
    uint64_t iters = 0, t0 = now_ns(), t;
    int rc;

    do { /* bounded by time and by ITERS_MAX */
        rc = run_variant(b, v, &iters);
        if (rc != 0) {
            return rc;
        }
        t = now_ns();
    } while (t - t0 < min_ns && iters < (uint64_t)ITERS_MAX);
    *ns = (double)(t - t0) / (double)iters;
    return 0;
}

static int bench_init(struct bench *b, const struct bsuite *bs, size_t size)
{
    struct mmtls_secret sec;
    uint8_t key[32];
    int rc;

    memset(b, 0, sizeof(*b));
    b->suite = mmtls_crypto_suite(bs->id);
    if (b->suite == NULL) {
        return MMTLS_E_UNSUPPORTED;
    }
    b->aead = bs->aead;
    b->size = size;
    b->k2_len = b->suite->key_len;
    memset(&sec, 0, sizeof(sec));
    sec.len = (uint8_t)mmtls_md_size(b->suite->prf_md);
    if (RAND_bytes(sec.b, (int)sec.len) != 1 || RAND_bytes(b->k2, (int)b->k2_len) != 1 ||
        RAND_bytes(b->plain, (int)sizeof(b->plain)) != 1) {
        return MMTLS_E_CRYPTO;
    }
    rc = mmtls_crypto_tls13_traffic_keys(b->suite, &sec, key, b->iv);
    if (rc == 0) {
        rc = mmtls_rprot_new_tls13(&b->rp, b->suite, &sec);
    }
    mmtls_secret_wipe(&sec);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc == 0) {
        rc = mmtls_ep_t2_init(&b->t2, b->aead, b->k2, b->k2_len, 0);
    }
    for (unsigned i = 0; i < NREC && rc == 0; i++) {
        size_t tl;
        rc = seal_one(b, i, T2_NONE, b->rec[i], &b->rec_len[i]);
        if (rc == 0) {
            rc = seal_one(b, i, T2_API, b->trec[i], &tl);
        }
        memcpy(b->thdr_tag1[i], b->rec[i], 5);
    }
    /* Self-check: every variant works on these records, so the keyed-context tag2 equals
     * mmtls_ep_tag2's. */
    for (unsigned i = 0; i < NREC && rc == 0; i++) {
        rc = open_one(b, i, T2_NONE);
        if (rc == 0) {
            rc = open_one(b, i, T2_CTX);
        }
        if (rc == 0) {
            rc = open_one(b, i, T2_API);
        }
    }
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    static struct bench b;
    int runs = 5;
    long min_ms = 30;
    const char *json = NULL;
    FILE *jf = NULL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--min-ms") == 0 && i + 1 < argc) {
            min_ms = atol(argv[++i]);
        } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
            json = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_tag2 [--runs N (1..%d)] [--min-ms MS] [--json FILE]\n",
                    RUNS_MAX);
            return 2;
        }
    }
    if (runs < 1 || runs > RUNS_MAX || min_ms < 1 || min_ms > 10000) {
        fprintf(stderr, "bench_tag2: --runs 1..%d, --min-ms 1..10000\n", RUNS_MAX);
        return 2;
    }
    if (json != NULL && (jf = fopen(json, "w")) == NULL) {
        fprintf(stderr, "bench_tag2: %s: %s\n", json, strerror(errno));
        return 1;
    }
    printf("| suite | record | seal | +tag2 ctx | ovh | +tag2 api | ovh | open | +tag2 ctx | ovh |"
           " +tag2 api | ovh | tag2 ctx | tag2 api |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t s = 0; s < MMTLS_ARRAY_SIZE(suites); s++) {
        for (size_t z = 0; z < MMTLS_ARRAY_SIZE(sizes); z++) {
            double ns[V_COUNT][RUNS_MAX], med[V_COUNT];
            int rc = bench_init(&b, &suites[s], sizes[z]);
            if (rc != 0) {
                fprintf(stderr, "bench_tag2: %s %zu: setup: %s\n", suites[s].name, sizes[z],
                        mmtls_strerror(rc));
                return 1;
            }
            for (int v = 0; v < V_COUNT && rc == 0; v++) { /* warm-up, not counted */
                rc = measure(&b, (enum variant)v, (uint64_t)min_ms * 250000u, &ns[v][0]);
            }
            if (rc != 0) {
                fprintf(stderr, "bench_tag2: warm-up: %s\n", mmtls_strerror(rc));
                return 1;
            }
            for (int r = 0; r < runs; r++) {
                for (int k = 0; k < V_COUNT; k++) {
                    /* Alternate the order from run to run: no variant always goes first. */
                    int v = r % 2 ? V_COUNT - 1 - k : k;
                    rc = measure(&b, (enum variant)v, (uint64_t)min_ms * 1000000u, &ns[v][r]);
                    if (rc != 0) {
                        fprintf(stderr, "bench_tag2: %s %zu %s: %s\n", suites[s].name, sizes[z],
                                vnames[v], mmtls_strerror(rc));
                        return 1;
                    }
                }
            }
            /* Overheads: the median of the per-run ratios, each pair measured back to back
             * (robust to the machine's speed drifting between runs). */
            double ovh[4], ratio[RUNS_MAX];
            static const int with[4] = {V_SEAL_CTX, V_SEAL_API, V_OPEN_CTX, V_OPEN_API};
            for (int k = 0; k < 4; k++) {
                int base = k < 2 ? V_SEAL : V_OPEN;
                for (int r = 0; r < runs; r++) {
                    ratio[r] = ns[with[k]][r] / ns[base][r];
                }
                ovh[k] = 100 * (median(ratio, runs) - 1);
            }
            for (int v = 0; v < V_COUNT; v++) {
                med[v] = median(ns[v], runs); /* sorts ns[v]: after the ratios */
            }
            printf("| %s | %zu | %.0f | %.0f | %+.1f%% | %.0f | %+.1f%% | %.0f | %.0f | %+.1f%% |"
                   " %.0f | %+.1f%% | %.0f | %.0f |\n",
                   suites[s].name, sizes[z], med[V_SEAL], med[V_SEAL_CTX], ovh[0], med[V_SEAL_API],
                   ovh[1], med[V_OPEN], med[V_OPEN_CTX], ovh[2], med[V_OPEN_API], ovh[3],
                   med[V_TAG2_CTX], med[V_TAG2_API]);
            fflush(stdout);
            if (jf != NULL) {
                fprintf(jf,
                        "{\"suite\":\"%s\",\"size\":%zu,\"runs\":%d,\"seal_ns\":%.1f,"
                        "\"seal_ctx_ns\":%.1f,\"seal_api_ns\":%.1f,\"open_ns\":%.1f,"
                        "\"open_ctx_ns\":%.1f,\"open_api_ns\":%.1f,\"tag2_ctx_ns\":%.1f,"
                        "\"tag2_api_ns\":%.1f,\"seal_ctx_pct\":%.2f,\"seal_api_pct\":%.2f,"
                        "\"open_ctx_pct\":%.2f,\"open_api_pct\":%.2f}\n",
                        suites[s].name, sizes[z], runs, med[V_SEAL], med[V_SEAL_CTX],
                        med[V_SEAL_API], med[V_OPEN], med[V_OPEN_CTX], med[V_OPEN_API],
                        med[V_TAG2_CTX], med[V_TAG2_API], ovh[0], ovh[1], ovh[2], ovh[3]);
            }
            mmtls_rprot_free(b.rp);
            b.rp = NULL;
            mmtls_ep_t2_fini(&b.t2);
        }
    }
    if (jf != NULL && fclose(jf) != 0) {
        return 1;
    }
    return b.sink == 42 ? 3 : 0; /* keeps the sink alive */
}
