/* The SPSC ring: order, full/empty, and a two-thread run that checks every pointer arrives
 * exactly once, in order (run under TSan by hand: -fsanitize=thread). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>

#include "util/util.h"

static void test_basic(void **state)
{
    struct mmtls_ring r;
    int v[8];

    (void)state;
    assert_int_equal(mmtls_ring_init(&r, 3), 0); /* rounded up to 4 */
    assert_null(mmtls_ring_pop(&r));
    for (int i = 0; i < 4; i++)
        assert_true(mmtls_ring_push(&r, &v[i]));
    assert_false(mmtls_ring_push(&r, &v[4]));
    for (int i = 0; i < 4; i++)
        assert_ptr_equal(mmtls_ring_pop(&r), &v[i]);
    assert_null(mmtls_ring_pop(&r));
    /* wrap around many times */
    for (int i = 0; i < 1000; i++) {
        assert_true(mmtls_ring_push(&r, &v[i % 8]));
        assert_ptr_equal(mmtls_ring_pop(&r), &v[i % 8]);
    }
    mmtls_ring_fini(&r);
}

#define N_ITEMS 200000

static void *producer(void *arg)
{
    struct mmtls_ring *r = arg;

    for (uintptr_t i = 1; i <= N_ITEMS; i++) {
        while (!mmtls_ring_push(r, (void *)i)) {
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct mmtls_ring r;
    pthread_t t;
    uintptr_t expect = 1;

    (void)state;
    assert_int_equal(mmtls_ring_init(&r, 64), 0);
    assert_int_equal(pthread_create(&t, NULL, producer, &r), 0);
    while (expect <= N_ITEMS) {
        void *p = mmtls_ring_pop(&r);
        if (p == NULL)
            continue;
        assert_int_equal((uintptr_t)p, expect);
        expect++;
    }
    pthread_join(t, NULL);
    assert_null(mmtls_ring_pop(&r));
    mmtls_ring_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
