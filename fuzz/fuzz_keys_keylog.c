/* Fuzz target for the key log parser and the key store.  The input is key log text: each line
 * is parsed, put into a small store (time advancing per line) and looked up again; a line
 * starting with '-' removes the client random of the last good line, one starting with '!'
 * expires.  Invariants: a parsed secret has a legal length; a put that returns 0 leaves exactly
 * that value findable; the entry count never exceeds the cap.  Finally the whole input goes
 * through mmtls_keylog_load_mem. */
#include <stdlib.h>

#include "keys/keys.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* OpenSSL's literal "_N" (MMTLS_KEYLOG_INDEX_NEXT) was stored as the highest generation. */
static uint32_t resolve(uint32_t index, uint32_t bits)
{
    if (index != MMTLS_KEYLOG_INDEX_NEXT)
        return index;
    return bits == 0 ? 0 : 31u - (uint32_t)__builtin_clz(bits);
}

static const struct mmtls_secret *slot_of(const struct mmtls_keyset *set,
                                          const struct mmtls_keylog_entry *e, bool *have)
{
    uint32_t idx;

    switch (e->label) {
    case MMTLS_KL_CLIENT_RANDOM: *have = set->have & MMTLS_KS_MASTER; return &set->master;
    case MMTLS_KL_CLIENT_EARLY_TRAFFIC_SECRET:
        *have = set->have & MMTLS_KS_EARLY;
        return &set->early;
    case MMTLS_KL_CLIENT_HANDSHAKE_TRAFFIC_SECRET:
        *have = set->have & MMTLS_KS_CHS;
        return &set->chs;
    case MMTLS_KL_SERVER_HANDSHAKE_TRAFFIC_SECRET:
        *have = set->have & MMTLS_KS_SHS;
        return &set->shs;
    case MMTLS_KL_CLIENT_TRAFFIC_SECRET:
        idx = resolve(e->index, set->cts_have);
        *have = set->cts_have >> idx & 1;
        return &set->cts[idx];
    case MMTLS_KL_SERVER_TRAFFIC_SECRET:
        idx = resolve(e->index, set->sts_have);
        *have = set->sts_have >> idx & 1;
        return &set->sts[idx];
    default: return NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mmtls_keystore_opts o = {.max_entries = 4, .ttl_ms = 50};
    struct mmtls_keystore *ks;
    struct mmtls_keystore_stats st;
    struct mmtls_keyset set;
    uint8_t last_cr[32] = {0};
    const char *s = (const char *)data;
    size_t off = 0;
    uint64_t now = 0;
    uint32_t bad = 0;

    if (mmtls_keystore_new(&ks, &o) != 0) {
        return 0;
    }
    while (off < size) {
        const char *nl = memchr(s + off, '\n', size - off);
        size_t len = nl != NULL ? (size_t)(nl - (s + off)) : size - off;
        struct mmtls_keylog_entry e;
        int rc = mmtls_keylog_line_parse(s + off, len, &e);

        now += 10;
        if (len > 0 && s[off] == '-') {
            mmtls_keystore_remove(ks, last_cr);
            CHECK(mmtls_keystore_lookup(ks, last_cr, &set) == MMTLS_E_NOTFOUND);
        } else if (len > 0 && s[off] == '!') {
            mmtls_keystore_expire(ks, now);
        }
        off += len + (nl != NULL);
        CHECK(rc == 0 || rc == MMTLS_DECLINED || rc == MMTLS_E_MALFORMED);
        if (rc != 0) {
            CHECK(e.secret.len == 0);
            continue;
        }
        CHECK(e.secret.len == 32 || e.secret.len == 48 || e.secret.len == 64);
        CHECK(e.label != MMTLS_KL_CLIENT_RANDOM || e.secret.len == 48);
        rc = mmtls_keystore_put(ks, &e, now);
        CHECK(rc == 0 || rc == MMTLS_DECLINED || rc == MMTLS_E_CONFLICT || rc == MMTLS_E_LIMIT);
        if (rc == 0) {
            const struct mmtls_secret *sl;
            bool have = false;

            memcpy(last_cr, e.client_random, 32);
            CHECK(mmtls_keystore_lookup(ks, e.client_random, &set) == 0);
            sl = slot_of(&set, &e, &have);
            CHECK(sl != NULL && have);
            CHECK(sl->len == e.secret.len && memcmp(sl->b, e.secret.b, sl->len) == 0);
            mmtls_keyset_wipe(&set);
        } else if (rc == MMTLS_DECLINED) {
            CHECK(e.label == MMTLS_KL_EXPORTER_SECRET ||
                  e.label == MMTLS_KL_EARLY_EXPORTER_SECRET || e.index >= MMTLS_KEYS_MAX_UPDATES);
            /* (an "_N" line beyond the kept generations is declined too) */
        }
        mmtls_keystore_get_stats(ks, &st);
        CHECK(st.entries <= o.max_entries);
    }
    mmtls_keystore_expire(ks, UINT64_MAX);
    mmtls_keystore_get_stats(ks, &st);
    CHECK(st.entries == 0);
    mmtls_keystore_free(ks);

    if (mmtls_keystore_new(&ks, &o) != 0) {
        return 0;
    }
    (void)mmtls_keylog_load_mem(ks, data, size, 1, &bad);
    mmtls_keystore_free(ks);
    return 0;
}
