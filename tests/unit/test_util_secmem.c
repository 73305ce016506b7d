/* Unit tests for the secure-memory pool (util_secmem.c): zeroed allocations, wiping on free,
 * reuse of freed objects, large objects, and the MADV_DONTDUMP flag as the kernel reports it in
 * /proc/self/smaps ("dd" in VmFlags). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/util.h"

static bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

/* The VmFlags line of the smaps entry whose range holds p; false when not found. */
static bool smaps_flags(const void *p, char *flags, size_t cap)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    bool in = false, found = false;
    uintptr_t a = (uintptr_t)p;

    if (f == NULL) {
        return false;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo, hi;

        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = a >= lo && a < hi;
        } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(flags, cap, "%s", line + 8);
            found = true;
            break;
        }
    }
    fclose(f);
    return found;
}

static void test_secmem_zero_and_wipe(void **state)
{
    /* sizes around the class boundaries (16-byte header + payload) */
    static const size_t sizes[] = {1, 47, 48, 49, 100, 2400, 16384, 65520, 65521, 200000};

    (void)state;
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(sizes); i++) {
        uint8_t *p = mmtls_secmem_alloc(sizes[i]);
        uint8_t *q;

        assert_non_null(p);
        assert_true(((uintptr_t)p & 15) == 0);
        assert_true(all_zero(p, sizes[i]));
        memset(p, 0xa5, sizes[i]);
        mmtls_secmem_free(p);
        /* same class: the freed object comes back first, and wiped */
        q = mmtls_secmem_alloc(sizes[i]);
        assert_non_null(q);
        if (sizes[i] <= 65520) {
            assert_ptr_equal(q, p);
            assert_true(mmtls_secmem_owns(q));
        }
        assert_true(all_zero(q, sizes[i]));
        mmtls_secmem_free(q);
    }
    mmtls_secmem_free(NULL);
    assert_null(mmtls_secmem_alloc(0));
    assert_null(mmtls_secmem_calloc(SIZE_MAX / 2, 4));
}

static void test_secmem_many(void **state)
{
    enum { N = 5000 };
    static void *p[N];
    struct mmtls_secmem_stats st0, st;

    (void)state;
    mmtls_secmem_stats_get(&st0);
    for (int i = 0; i < N; i++) {
        p[i] = mmtls_secmem_calloc(1, 2400); /* a key set */
        assert_non_null(p[i]);
        memset(p[i], i & 0xff, 2400);
    }
    mmtls_secmem_stats_get(&st);
    assert_int_equal(st.live_objects, st0.live_objects + N);
    /* pooled: 4096-byte class objects in 256 KiB chunks, not one mapping per key */
    assert_true(st.mappings - st0.mappings <= N / 60 + 2);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 2400; j += 599) {
            assert_int_equal(((uint8_t *)p[i])[j], i & 0xff); /* no overlap */
        }
    }
    for (int i = 0; i < N; i++) {
        mmtls_secmem_free(p[i]);
    }
    mmtls_secmem_stats_get(&st);
    assert_int_equal(st.live_objects, st0.live_objects);
    /* the pool does not grow when the same number is allocated again */
    for (int i = 0; i < N; i++) {
        p[i] = mmtls_secmem_alloc(2400);
        assert_true(all_zero(p[i], 2400));
    }
    {
        struct mmtls_secmem_stats st2;

        mmtls_secmem_stats_get(&st2);
        assert_int_equal(st2.mapped_bytes, st.mapped_bytes);
    }
    for (int i = 0; i < N; i++) {
        mmtls_secmem_free(p[i]);
    }
}

static void test_secmem_dontdump(void **state)
{
    char flags[512];
    void *small = mmtls_secmem_alloc(64);
    void *big = mmtls_secmem_alloc(1 << 20);
    void *heap = malloc(64);

    (void)state;
    assert_non_null(small);
    assert_non_null(big);
    assert_true(smaps_flags(small, flags, sizeof(flags)));
    assert_non_null(strstr(flags, " dd"));
    assert_true(smaps_flags(big, flags, sizeof(flags)));
    assert_non_null(strstr(flags, " dd"));
    /* the check can fail: ordinary heap memory is dumped */
    assert_true(smaps_flags(heap, flags, sizeof(flags)));
    assert_null(strstr(flags, " dd"));
    free(heap);
    mmtls_secmem_free(small);
    mmtls_secmem_free(big);
}

static void test_secmem_lock(void **state)
{
    struct mmtls_secmem_stats st;
    void *p;

    (void)state;
    /* best effort: with a small RLIMIT_MEMLOCK the allocation still succeeds */
    mmtls_secmem_set_lock(true);
    p = mmtls_secmem_alloc(100000);
    assert_non_null(p);
    mmtls_secmem_stats_get(&st);
    mmtls_secmem_free(p);
    mmtls_secmem_set_lock(false);
}

/* Per-thread caches: a thread reuses what it freed without the mutex, objects freed by a thread
 * other than the one that allocated them are fine, and a thread's cache goes back to the shared
 * lists when it exits. */
enum { TC_OBJS = 64, TC_ROUNDS = 200 };

struct tc_arg {
    void **objs; /* freed by the thread (allocated by another), may be NULL */
    size_t nobjs;
    uint8_t seed;
    bool ok;
};

static void *tc_thread(void *varg)
{
    static const size_t sizes[] = {40, 100, 300, 2400, 5000};
    struct tc_arg *a = varg;
    void *p[TC_OBJS];

    a->ok = true;
    for (size_t i = 0; i < a->nobjs; i++) {
        mmtls_secmem_free(a->objs[i]);
    }
    for (int r = 0; r < TC_ROUNDS; r++) {
        for (int i = 0; i < TC_OBJS; i++) {
            size_t n = sizes[(size_t)(i + r) % MMTLS_ARRAY_SIZE(sizes)];

            p[i] = mmtls_secmem_alloc(n);
            if (p[i] == NULL || !all_zero(p[i], n)) {
                a->ok = false;
                return NULL;
            }
            memset(p[i], (uint8_t)(a->seed + i), n);
        }
        for (int i = 0; i < TC_OBJS; i++) {
            size_t n = sizes[(size_t)(i + r) % MMTLS_ARRAY_SIZE(sizes)];

            for (size_t j = 0; j < n; j += 37) {
                if (((uint8_t *)p[i])[j] != (uint8_t)(a->seed + i)) {
                    a->ok = false; /* another thread wrote into it */
                }
            }
            mmtls_secmem_free(p[i]);
        }
    }
    return NULL;
}

static void test_secmem_thread_caches(void **state)
{
    enum { NT = 3, CROSS = 40 };
    pthread_t t[NT];
    struct tc_arg a[NT];
    void *cross[CROSS];
    struct mmtls_secmem_stats st0, st;

    (void)state;
    for (int i = 0; i < CROSS; i++) {
        cross[i] = mmtls_secmem_alloc(2400);
        assert_non_null(cross[i]);
    }
    mmtls_secmem_stats_get(&st0);
    for (int k = 0; k < NT; k++) {
        a[k] = (struct tc_arg){
            .objs = k == 0 ? cross : NULL, .nobjs = k == 0 ? CROSS : 0, .seed = (uint8_t)(k * 50)};
        assert_int_equal(pthread_create(&t[k], NULL, tc_thread, &a[k]), 0);
    }
    for (int k = 0; k < NT; k++) {
        assert_int_equal(pthread_join(t[k], NULL), 0);
        assert_true(a[k].ok);
    }
    mmtls_secmem_stats_get(&st);
    assert_int_equal(st.live_objects, st0.live_objects - CROSS); /* thread 0 freed them */
    assert_int_equal(st.live_bytes, st0.live_bytes - CROSS * 4096);
    /* the exited threads' caches went back: only this thread's remain */
    assert_int_equal(st.cached_objects, st0.cached_objects);

    /* this thread: a freed object is cached and comes back first, wiped */
    {
        uint8_t *p = mmtls_secmem_alloc(700), *q;

        assert_non_null(p);
        memset(p, 0x77, 700);
        mmtls_secmem_stats_get(&st0);
        mmtls_secmem_free(p);
        mmtls_secmem_stats_get(&st);
        assert_int_equal(st.cached_objects, st0.cached_objects + 1);
        q = mmtls_secmem_alloc(700);
        assert_ptr_equal(q, p);
        assert_true(all_zero(q, 700));
        mmtls_secmem_stats_get(&st);
        assert_int_equal(st.cached_objects, st0.cached_objects);
        mmtls_secmem_free(q);
    }
    /* the cache is bounded: 64 KiB per class (16 objects of the 4 KiB class) */
    {
        void *p[40];

        mmtls_secmem_stats_get(&st0);
        for (int i = 0; i < 40; i++) {
            p[i] = mmtls_secmem_alloc(3000);
            assert_non_null(p[i]);
        }
        for (int i = 0; i < 40; i++) {
            mmtls_secmem_free(p[i]);
        }
        mmtls_secmem_stats_get(&st);
        assert_true(st.cached_objects <= st0.cached_objects + 16);
        assert_true(st.cached_objects >= 16);
    }
}

/* fork() while another thread has a cache: the child's registry holds only the forking thread,
 * so a new thread in the child (which may get the exited thread's stack and TLS) registers
 * cleanly, and the counts stay right. */
static int fork_ready[2], fork_go[2]; /* holder -> main, main -> holder */

static void *fork_holder(void *arg)
{
    char c;
    void *p = mmtls_secmem_alloc(700);

    (void)arg;
    mmtls_secmem_free(p); /* this thread is registered, with a cached object */
    if (write(fork_ready[1], "r", 1) != 1 || read(fork_go[0], &c, 1) != 1) {
        return NULL;
    }
    return NULL;
}

static void *fork_child_thread(void *arg)
{
    void *p = mmtls_secmem_alloc(700);

    mmtls_secmem_free(p);
    *(bool *)arg = p != NULL;
    return NULL;
}

static void test_secmem_fork(void **state)
{
    struct mmtls_secmem_stats before;
    pthread_t t;
    pid_t pid;
    char c;
    int status;

    (void)state;
    assert_int_equal(pipe(fork_ready), 0);
    assert_int_equal(pipe(fork_go), 0);
    assert_int_equal(pthread_create(&t, NULL, fork_holder, NULL), 0);
    assert_int_equal(read(fork_ready[0], &c, 1), 1);
    mmtls_secmem_stats_get(&before);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct mmtls_secmem_stats st0, st;
        bool ok = false;

        alarm(10); /* a cycle in the registry would hang here */
        mmtls_secmem_stats_get(&st0);
        if (st0.cached_objects != before.cached_objects - 1) {
            _exit(4); /* the holder's cache (one object) left the child's registry */
        }
        for (int i = 0; i < 3; i++) {
            pthread_t ct;

            if (pthread_create(&ct, NULL, fork_child_thread, &ok) != 0 ||
                pthread_join(ct, NULL) != 0 || !ok) {
                _exit(2);
            }
        }
        mmtls_secmem_stats_get(&st);
        _exit(st.live_objects == st0.live_objects ? 0 : 3);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(write(fork_go[1], "x", 1), 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    for (int i = 0; i < 2; i++) {
        close(fork_ready[i]);
        close(fork_go[i]);
    }
}

/* Runs last: after the exit wipe every pooled byte is zero and frees are no-ops. */
static void test_secmem_wipe_all(void **state)
{
    uint8_t *p = mmtls_secmem_alloc(300), *r = mmtls_secmem_alloc(300);
    struct mmtls_secmem_stats st0;

    (void)state;
    assert_non_null(p);
    assert_non_null(r);
    mmtls_secmem_free(r); /* in this thread's cache now */
    mmtls_secmem_stats_get(&st0);
    memset(p, 0x5a, 300);
    mmtls_secmem_wipe_all();
    assert_true(all_zero(p - 16, 316));
    mmtls_secmem_free(p);
    /* the caches were dropped with the wipe: nothing comes from wiped memory again */
    {
        struct mmtls_secmem_stats st;
        uint8_t *q = mmtls_secmem_alloc(300);

        mmtls_secmem_stats_get(&st);
        assert_int_equal(st.cached_objects, 0);
        assert_non_null(q);
        assert_ptr_not_equal(q, p);
        assert_ptr_not_equal(q, r);                      /* not from the (wiped) cache */
        assert_true(st.mapped_bytes > st0.mapped_bytes); /* a fresh chunk */
        mmtls_secmem_free(q);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secmem_zero_and_wipe), cmocka_unit_test(test_secmem_many),
        cmocka_unit_test(test_secmem_dontdump),      cmocka_unit_test(test_secmem_lock),
        cmocka_unit_test(test_secmem_thread_caches), cmocka_unit_test(test_secmem_fork),
        cmocka_unit_test(test_secmem_wipe_all),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
