/* bench_secmem — the secret-memory pool's cost per connection, with 1 and 2 threads
 * (docs/BENCHMARKS.md "Per-worker memory"; issue 8: per-worker memory pools).
 *
 * Each thread does what an inline worker does with secret memory at every TLS 1.3 connection:
 * a session (eng_session, ~2.5 KB), four record-protection states (handshake and application
 * keys of both directions, ~600 B each) and a key message (~300 B) allocated, written and freed
 * again, with a few connections live at once.  Output: one JSON line with the wall time of the
 * same number of connections per thread, with 1 thread and with 2 threads at once; with no
 * shared state the 2-thread run takes as long as the 1-thread run (ratio 1.0) on 2 free CPUs.
 *
 *   bench_secmem [CONNS_PER_THREAD]   (default 2000000)
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

enum { LIVE = 8, OBJS = 6 };
static const size_t obj_size[OBJS] = {2500, 600, 600, 600, 600, 300};

struct arg {
    long conns;
    int fail;
};

static void *run(void *varg)
{
    struct arg *a = varg;
    void *live[LIVE][OBJS] = {{NULL}};

    for (long c = 0; c < a->conns; c++) {
        void **slot = live[c % LIVE];

        for (int i = 0; i < OBJS; i++) {
            mmtls_secmem_free(slot[i]); /* the connection LIVE ago closes */
            slot[i] = mmtls_secmem_alloc(obj_size[i]);
            if (slot[i] == NULL) {
                a->fail = 1;
                return NULL;
            }
            memset(slot[i], (int)(c & 0xff), 64);
        }
    }
    for (int k = 0; k < LIVE; k++) {
        for (int i = 0; i < OBJS; i++) {
            mmtls_secmem_free(live[k][i]);
        }
    }
    return NULL;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wall seconds for n threads doing `conns` connections each; <0 on failure. */
static double timed(int n, long conns)
{
    pthread_t t[2];
    struct arg a[2];
    double t0 = now();

    for (int k = 0; k < n; k++) {
        a[k] = (struct arg){.conns = conns};
        if (pthread_create(&t[k], NULL, run, &a[k]) != 0) {
            return -1;
        }
    }
    for (int k = 0; k < n; k++) {
        pthread_join(t[k], NULL);
        if (a[k].fail) {
            return -1;
        }
    }
    return now() - t0;
}

int main(int argc, char **argv)
{
    long conns = argc > 1 ? atol(argv[1]) : 2000000;
    double t1, t2;
    struct mmtls_secmem_stats st;

    if (conns <= 0 || conns > 100000000) {
        fprintf(stderr, "usage: bench_secmem [CONNS_PER_THREAD]\n");
        return 2;
    }
    (void)timed(1, conns / 10); /* warm the pool */
    t1 = timed(1, conns);
    t2 = timed(2, conns);
    if (t1 < 0 || t2 < 0) {
        fprintf(stderr, "bench_secmem: allocation failed\n");
        return 1;
    }
    mmtls_secmem_stats_get(&st);
    printf("{\"conns_per_thread\": %ld, \"one_thread_s\": %.4f, \"two_threads_s\": %.4f, "
           "\"ns_per_conn_1\": %.1f, \"ns_per_conn_2\": %.1f, \"ratio_2_to_1\": %.3f, "
           "\"live_objects_after\": %llu}\n",
           conns, t1, t2, t1 * 1e9 / (double)conns, t2 * 1e9 / (double)conns, t2 / t1,
           (unsigned long long)st.live_objects);
    return st.live_objects == 0 ? 0 : 1;
}
