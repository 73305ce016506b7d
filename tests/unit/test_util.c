/* Unit tests for util: cursor, buffer, hex, JSON writer, memcap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/util.h"

static void test_cur_vec(void **state)
{
    /* u16 length 3 then "abc", then 1 trailing byte */
    static const uint8_t in[] = {0x00, 0x03, 'a', 'b', 'c', 0x7f};
    struct mmtls_cur c = mmtls_cur_make(in, sizeof(in)), sub;
    uint8_t v;

    (void)state;
    assert_int_equal(mmtls_cur_vec(&c, 2, &sub), 0);
    assert_int_equal(mmtls_cur_left(&sub), 3);
    assert_int_equal(mmtls_cur_u8(&c, &v), 0);
    assert_int_equal(v, 0x7f);
    assert_int_equal(mmtls_cur_done(&c), 0);
    /* truncated at every offset: never succeeds with the full vector */
    for (size_t n = 0; n < 5; n++) {
        c = mmtls_cur_make(in, n);
        assert_int_equal(mmtls_cur_vec(&c, 2, &sub), MMTLS_E_MALFORMED);
        assert_ptr_equal(c.p, in); /* cursor not advanced on failure */
    }
    c = mmtls_cur_make(in, sizeof(in));
    assert_int_equal(mmtls_cur_vec(&c, 4, &sub), MMTLS_E_INTERNAL);
}

static void test_cur_ints(void **state)
{
    static const uint8_t in[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    struct mmtls_cur c = mmtls_cur_make(in, sizeof(in));
    uint16_t a;
    uint32_t b, d;

    (void)state;
    assert_int_equal(mmtls_cur_u16(&c, &a), 0);
    assert_int_equal(a, 0x0102);
    assert_int_equal(mmtls_cur_u24(&c, &b), 0);
    assert_int_equal(b, 0x030405);
    assert_int_equal(mmtls_cur_u32(&c, &d), 0);
    assert_int_equal(d, 0x06070809);
    assert_int_equal(mmtls_cur_u8(&c, (uint8_t *)&a), MMTLS_E_MALFORMED);
}

static void test_hex(void **state)
{
    uint8_t out[4];
    char txt[9];

    (void)state;
    assert_int_equal(mmtls_hex_decode("DEADbeef", 8, out, sizeof(out)), 0);
    mmtls_hex_encode(out, 4, txt);
    assert_string_equal(txt, "deadbeef");
    assert_int_equal(mmtls_hex_decode("abc", 3, out, sizeof(out)), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_hex_decode("zz", 2, out, sizeof(out)), MMTLS_E_MALFORMED);
    assert_int_equal(mmtls_hex_decode("0011223344", 10, out, sizeof(out)), MMTLS_E_MALFORMED);
}

static void test_json(void **state)
{
    struct mmtls_buf b = {0};
    struct mmtls_json j;

    (void)state;
    mmtls_json_init(&j, &b);
    mmtls_json_obj_open(&j, NULL);
    mmtls_json_str(&j, "a", "x\"y\n");
    mmtls_json_u64(&j, "n", 42);
    mmtls_json_arr_open(&j, "l");
    mmtls_json_bool(&j, NULL, true);
    mmtls_json_strn(&j, NULL, "\xff", 1);
    mmtls_json_arr_close(&j);
    mmtls_json_obj_open(&j, "o");
    mmtls_json_obj_close(&j);
    mmtls_json_obj_close(&j);
    assert_int_equal(j.err, 0);
    assert_int_equal(mmtls_buf_append(&b, "", 1), 0);
    assert_string_equal((char *)b.p,
                        "{\"a\":\"x\\\"y\\u000a\",\"n\":42,\"l\":[true,\"\\u00ff\"],\"o\":{}}");
    mmtls_buf_fini(&b, false);
}

static void test_buf_max(void **state)
{
    struct mmtls_buf b = {.max = 300};
    uint8_t chunk[200] = {0};

    (void)state;
    assert_int_equal(mmtls_buf_append(&b, chunk, 200), 0);
    assert_int_equal(mmtls_buf_append(&b, chunk, 200), MMTLS_E_MEMCAP);
    assert_int_equal(b.len, 200);
    mmtls_buf_consume(&b, 150);
    assert_int_equal(b.len, 50);
    mmtls_buf_fini(&b, true);
}

static void test_memcap(void **state)
{
    struct mmtls_memcap m = {.limit = 100};

    (void)state;
    assert_int_equal(mmtls_memcap_charge(&m, 60), 0);
    assert_int_equal(mmtls_memcap_charge(&m, 60), MMTLS_E_MEMCAP);
    assert_int_equal(m.refused, 1);
    mmtls_memcap_release(&m, 60);
    assert_int_equal(mmtls_memcap_charge(&m, (size_t)-1), MMTLS_E_MEMCAP);
    assert_int_equal(m.used, 0);
}

static void test_seq(void **state)
{
    (void)state;
    assert_true(MMTLS_SEQ_LT(0xfffffff0u, 0x10u));
    assert_true(MMTLS_SEQ_GT(0x10u, 0xfffffff0u));
    assert_int_equal(MMTLS_SEQ_DIFF(0x10u, 0xfffffff0u), 0x20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cur_vec), cmocka_unit_test(test_cur_ints),
        cmocka_unit_test(test_hex),     cmocka_unit_test(test_json),
        cmocka_unit_test(test_buf_max), cmocka_unit_test(test_memcap),
        cmocka_unit_test(test_seq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
