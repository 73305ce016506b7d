/* libFuzzer target for crypto record protection (mmtls_rprot_open, and seal as an oracle).
 *
 * Input:  [0..1] configuration index (big-endian, modulo the number of valid (suite, version,
 *                encrypt-then-MAC) combinations found in the suite table)
 *         [2]    flags: bit 0 open in place, bit 1 seal mode, bits 2-7 TLS 1.3 padding / 3
 *         [3]    low byte of the first sequence number
 *         [4..5] seal mode: byte position to corrupt (modulo the record length)
 *         [6]    seal mode: XOR mask for that byte (0: leave the record intact)
 *         [7..]  open mode: up to 8 records, header + fragment (the header's length, cut to
 *                what is left); seal mode: the plaintext.
 * Keys are fixed (TLS 1.3 secret of 0x42 bytes; TLS 1.2 key 0x11.., MAC key 0x22.., IV 0x33..)
 * so that seed records sealed with them reach the MAC and padding checks.
 * Seal mode checks a property: an intact record opens to its plaintext, and a record with one
 * byte changed never opens (except the TLS 1.0-1.2 header length, which the MAC does not
 * cover and which open does not read).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

#define CFG_MAX 512
#define RECORDS_MAX 8

struct cfg {
    const struct mmtls_suite *s;
    uint16_t version;
    bool etm;
};

static struct cfg cfgs[CFG_MAX];
static size_t ncfg;

static int make(const struct cfg *c, struct mmtls_rprot **rp)
{
    if (c->s->tls13) {
        struct mmtls_secret sec;

        memset(&sec, 0x42, sizeof(sec));
        sec.len = (uint8_t)mmtls_md_size(c->s->prf_md);
        return mmtls_rprot_new_tls13(rp, c->s, &sec);
    }
    bool cbc = c->s->kind == MMTLS_CIPHER_AES_CBC || c->s->kind == MMTLS_CIPHER_3DES_CBC;
    struct mmtls_key_block kb;

    memset(&kb, 0, sizeof(kb));
    memset(kb.key, 0x11, sizeof(kb.key));
    memset(kb.mac, 0x22, sizeof(kb.mac));
    memset(kb.iv, 0x33, sizeof(kb.iv));
    kb.key_len = c->s->key_len;
    kb.mac_len = cbc ? (uint8_t)mmtls_md_size(c->s->mac_md) : 0;
    kb.iv_len = (!cbc || c->version == 0x0301) ? c->s->fixed_iv_len : 0;
    return mmtls_rprot_new_tls12(rp, c->s, c->version, c->etm, &kb, 0);
}

static void init_cfgs(void)
{
    for (uint32_t id = 0; id <= 0xFFFF; id++) {
        const struct mmtls_suite *s = mmtls_crypto_suite((uint16_t)id);

        if (s == NULL) {
            continue;
        }
        for (uint16_t v = 0x0301; v <= 0x0304; v++) {
            for (int etm = 0; etm <= 1 && ncfg < CFG_MAX; etm++) {
                struct cfg c = {s, v, etm != 0};
                struct mmtls_rprot *rp = NULL;

                if (s->tls13 != (v == 0x0304) || (s->tls13 && etm)) {
                    continue;
                }
                if (make(&c, &rp) == 0) {
                    cfgs[ncfg++] = c;
                }
                mmtls_rprot_free(rp);
            }
        }
    }
}

static void open_records(struct mmtls_rprot *rp, uint64_t seq, bool in_place, const uint8_t *p,
                         size_t len)
{
    for (int r = 0; r < RECORDS_MAX && len >= 5; r++, seq++) {
        const uint8_t *hdr = p;
        size_t flen = mmtls_be16(p + 3), olen = 0;
        uint8_t type = 0, *buf;
        int rc;

        if (flen > len - 5) {
            flen = len - 5;
        }
        /* exactly frag_len bytes, so that ASan sees any write past what open may use */
        buf = malloc(flen != 0 ? flen : 1);
        if (buf == NULL) {
            return;
        }
        if (in_place) {
            memcpy(buf, p + 5, flen);
            rc = mmtls_rprot_open(rp, seq, hdr, buf, flen, buf, &olen, &type);
        } else {
            rc = mmtls_rprot_open(rp, seq, hdr, p + 5, flen, buf, &olen, &type);
        }
        if (rc == 0 && (olen > flen || olen > mmtls_rprot_max_plain(rp, flen))) {
            __builtin_trap();
        }
        if (rc > 0) {
            __builtin_trap();
        }
        free(buf);
        p += 5 + flen;
        len -= 5 + flen;
    }
}

static void seal_check(struct mmtls_rprot *tx, struct mmtls_rprot *rx, const struct cfg *c,
                       uint64_t seq, uint8_t flags, size_t pos, uint8_t mask, const uint8_t *plain,
                       size_t plen)
{
    size_t pad = c->s->tls13 ? (size_t)(flags >> 2) * 3 : 0, cap, n = 0, olen = 0;
    uint16_t ver = c->s->tls13 ? 0x0303 : c->version;
    uint8_t *rec, *out, type = 0;
    int rc;

    if (plen > 16384) {
        plen = 16384;
    }
    cap = 5 + plen + pad + 512;
    rec = malloc(cap);
    if (rec == NULL) {
        return;
    }
    if (mmtls_rprot_seal(tx, seq, 23, ver, plain, plen, pad, rec, cap, &n) != 0) {
        __builtin_trap();
    }
    if (n < 5 || mmtls_be16(rec + 3) != n - 5) {
        __builtin_trap();
    }
    pos %= n;
    rec[pos] ^= mask;
    out = malloc(n - 5);
    if (out == NULL) {
        free(rec);
        return;
    }
    if (flags & 1) {
        rc = mmtls_rprot_open(rx, seq, rec, rec + 5, n - 5, rec + 5, &olen, &type);
        memcpy(out, rec + 5, olen <= n - 5 ? olen : 0);
    } else {
        rc = mmtls_rprot_open(rx, seq, rec, rec + 5, n - 5, out, &olen, &type);
    }
    if (mask == 0 || (!c->s->tls13 && (pos == 3 || pos == 4))) {
        if (rc != 0 || olen != plen || type != 23 || (plen != 0 && memcmp(out, plain, plen))) {
            __builtin_trap();
        }
    } else if (rc != MMTLS_E_AUTH) {
        __builtin_trap();
    }
    free(out);
    free(rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    struct mmtls_rprot *tx = NULL, *rx = NULL;
    const struct cfg *c;
    uint64_t seq;
    uint8_t flags;

    if (!inited) {
        init_cfgs();
        inited = true;
    }
    if (size < 7 || ncfg == 0) {
        return 0;
    }
    c = &cfgs[mmtls_be16(data) % ncfg];
    flags = data[2];
    seq = data[3];
    if (make(c, &rx) != 0) {
        __builtin_trap();
    }
    if (flags & 2) {
        if (make(c, &tx) != 0) {
            __builtin_trap();
        }
        seal_check(tx, rx, c, seq, flags, mmtls_be16(data + 4), data[6], data + 7, size - 7);
    } else {
        open_records(rx, seq, flags & 1, data + 7, size - 7);
    }
    mmtls_rprot_free(tx);
    mmtls_rprot_free(rx);
    return 0;
}
