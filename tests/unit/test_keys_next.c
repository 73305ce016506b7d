/* OpenSSL 3 logs secrets after a KeyUpdate as CLIENT_TRAFFIC_SECRET_N with a literal N: each such
 * line is the next generation after those already stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "keys/keys.h"

#define CR "7ec5a855995c710f333c335aeb8a9bc0cc7b0a353d064ac315eda74ee8ad2053"

static void put_line(struct mmtls_keystore *ks, const char *line, int expect)
{
    struct mmtls_keylog_entry e;

    assert_int_equal(mmtls_keylog_line_parse(line, strlen(line), &e), 0);
    assert_int_equal(mmtls_keystore_put(ks, &e, 0), expect);
    mmtls_secret_wipe(&e.secret);
}

static void test_literal_n(void **state)
{
    struct mmtls_keystore_opts o = {.max_entries = 4};
    struct mmtls_keystore *ks;
    struct mmtls_keylog_entry e;
    struct mmtls_keyset set;
    uint8_t cr[32];
    char line[256];

    (void)state;
    {
        static const char cut[] = "CLIENT_TRAFFIC_SECRET_N " CR " 00112233";
        /* cut inside the secret: too short for a TLS 1.3 secret */
        assert_int_equal(mmtls_keylog_line_parse(cut, strlen(cut), &e), MMTLS_E_MALFORMED);
    }
    assert_int_equal(mmtls_keystore_new(&ks, &o), 0);
    for (int g = 0; g < 3; g++) {
        /* generation g has the secret bytes all equal to g+1 */
        snprintf(line, sizeof(line), "CLIENT_TRAFFIC_SECRET_%s " CR " ", g == 0 ? "0" : "N");
        for (int i = 0; i < 32; i++)
            snprintf(line + strlen(line), 3, "%02x", g + 1);
        put_line(ks, line, 0);
    }
    assert_int_equal(mmtls_hex_decode(CR, 64, cr, sizeof(cr)), 0);
    assert_int_equal(mmtls_keystore_lookup(ks, cr, &set), 0);
    assert_int_equal(set.cts_have, 0x7);
    for (int g = 0; g < 3; g++) {
        assert_int_equal(set.cts[g].len, 32);
        assert_int_equal(set.cts[g].b[0], g + 1);
        assert_int_equal(set.cts[g].b[31], g + 1);
    }
    mmtls_keyset_wipe(&set);
    mmtls_keystore_free(ks);
}

static void test_literal_n_limit(void **state)
{
    struct mmtls_keystore_opts o = {.max_entries = 4};
    struct mmtls_keystore *ks;
    char line[256];
    int declined = 0;

    (void)state;
    assert_int_equal(mmtls_keystore_new(&ks, &o), 0);
    for (int g = 0; g < MMTLS_KEYS_MAX_UPDATES + 3; g++) {
        struct mmtls_keylog_entry e;
        snprintf(line, sizeof(line), "SERVER_TRAFFIC_SECRET_%s " CR " ", g == 0 ? "0" : "N");
        for (int i = 0; i < 48; i++)
            snprintf(line + strlen(line), 3, "%02x", g);
        assert_int_equal(mmtls_keylog_line_parse(line, strlen(line), &e), 0);
        if (mmtls_keystore_put(ks, &e, 0) == MMTLS_DECLINED)
            declined++;
        mmtls_secret_wipe(&e.secret);
    }
    assert_int_equal(declined, 3); /* generations beyond the kept window are dropped */
    mmtls_keystore_free(ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_n),
        cmocka_unit_test(test_literal_n_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
