/* Fuzz target for the key protocol v1 codec (docs/keyproto.md).  The input is a key channel
 * stream: messages are parsed one after another, advancing by *used, until the first error or
 * an incomplete message.  Invariants: a parsed message re-encodes to exactly the bytes it came
 * from (the encoding is canonical) and parses back to the same message; MMTLS_AGAIN asks for
 * more than is there but never more than one maximal message; a failed parse leaves no secret
 * in the message; mmtls_kp_to_keyset leaves the owner fields alone and, on failure, no secret.
 */
#include <stdlib.h>

#include "keys/keys.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool all_zero(const void *p, size_t len)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < len; i++) {
        if (b[i] != 0) {
            return false;
        }
    }
    return true;
}

static bool msg_eq(const struct mmtls_kp_msg *a, const struct mmtls_kp_msg *b)
{
    if (a->type != b->type || a->flags != b->flags || a->n != b->n ||
        a->tls_version != b->tls_version || a->cipher_suite != b->cipher_suite ||
        a->sni_len != b->sni_len || memcmp(a->client_random, b->client_random, 32) != 0 ||
        memcmp(a->kind, b->kind, sizeof(a->kind)) != 0 || memcmp(a->sni, b->sni, 256) != 0) {
        return false;
    }
    if (a->tuple.ip_version != b->tuple.ip_version ||
        memcmp(a->tuple.client_ip, b->tuple.client_ip, 16) != 0 ||
        memcmp(a->tuple.server_ip, b->tuple.server_ip, 16) != 0 ||
        a->tuple.client_port != b->tuple.client_port ||
        a->tuple.server_port != b->tuple.server_port) {
        return false;
    }
    for (size_t i = 0; i < MMTLS_KP_MAX_SECRETS; i++) {
        if (a->secret[i].len != b->secret[i].len ||
            memcmp(a->secret[i].b, b->secret[i].b, MMTLS_SECRET_MAX) != 0) {
            return false;
        }
    }
    return true;
}

static void check_keyset(const struct mmtls_kp_msg *m)
{
    struct mmtls_keyset ks;
    int rc;

    memset(&ks, 0xa5, sizeof(ks));
    ks.owner_any = true;
    ks.owner_ip_version = 4;
    rc = mmtls_kp_to_keyset(m, &ks);
    CHECK(ks.owner_any && ks.owner_ip_version == 4 && ks.owner_ip[15] == 0xa5);
    if (m->type != MMTLS_KP_KEYS) {
        CHECK(rc == MMTLS_E_INVAL);
    } else {
        CHECK(rc == 0 || rc == MMTLS_E_MALFORMED);
    }
    if (rc != 0) {
        CHECK(ks.have == 0 && ks.cts_have == 0 && ks.sts_have == 0);
        CHECK(all_zero(&ks.kb, sizeof(ks.kb)) && all_zero(&ks.chs, sizeof(ks.chs)) &&
              all_zero(&ks.master, sizeof(ks.master)) && all_zero(ks.cts, sizeof(ks.cts)));
    } else {
        CHECK(ks.tls_version == m->tls_version && ks.cipher_suite == m->cipher_suite);
        CHECK(ks.have != 0 || ks.cts_have != 0 || ks.sts_have != 0);
        CHECK((ks.cts_have & ~1u) == 0 && (ks.sts_have & ~1u) == 0);
        if ((ks.have & MMTLS_KS_KEY_BLOCK) != 0) {
            CHECK(ks.kb.key_len >= 1 && ks.kb.key_len <= 32);
            CHECK(ks.kb.mac_len <= 48 && ks.kb.iv_len <= 16);
        }
    }
    mmtls_keyset_wipe(&ks);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;

    /* every message is at least a header, so this loop ends after size / 4 rounds */
    while (off < size) {
        struct mmtls_kp_msg m, m2;
        uint8_t out[MMTLS_KP_MAX_MSG];
        size_t used = 0, used2 = 0;
        int rc = mmtls_kp_parse(data + off, size - off, &m, &used);
        int n;

        if (rc == MMTLS_AGAIN) {
            CHECK(used > size - off && used <= MMTLS_KP_MAX_MSG);
            CHECK(all_zero(&m.secret, sizeof(m.secret)));
            break;
        }
        if (rc != 0) {
            CHECK(rc == MMTLS_E_MALFORMED || rc == MMTLS_E_UNSUPPORTED);
            CHECK(used == 0 && all_zero(&m.secret, sizeof(m.secret)));
            break;
        }
        CHECK(used >= MMTLS_KP_HDR_LEN && used <= size - off && used <= MMTLS_KP_MAX_MSG);
        CHECK(m.n <= MMTLS_KP_MAX_SECRETS && m.sni[m.sni_len] == '\0');

        /* canonical: encode(parse(x)) == x, and parse(encode(m)) == m */
        n = mmtls_kp_encode(&m, out, sizeof(out));
        CHECK(n >= 0 && (size_t)n == used && memcmp(out, data + off, used) == 0);
        CHECK(mmtls_kp_encode(&m, out, used - 1) == MMTLS_E_LIMIT);
        CHECK(mmtls_kp_parse(out, (size_t)n, &m2, &used2) == 0 && used2 == used);
        CHECK(msg_eq(&m, &m2));

        check_keyset(&m);
        mmtls_kp_msg_wipe(&m);
        mmtls_kp_msg_wipe(&m2);
        CHECK(all_zero(&m, sizeof(m)));
        off += used;
    }
    return 0;
}
