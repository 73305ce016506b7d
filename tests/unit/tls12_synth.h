/* Shared by test_engine_reneg.c and test_apps_depth.c: a synthetic TLS 1.2 connection fed to an
 * offline engine as raw IPv4 frames (LINKTYPE_RAW; checksums are not verified offline), with
 * records sealed under a key block derived from a chosen master secret (RFC 5246 §6.3) — so a
 * test can send what no TLS library sends: renegotiations at chosen points, CBC records with
 * 255 bytes of padding (RFC 5246 §6.2.3.2).  The handshake messages are minimal but well
 * formed (the engine parses ClientHello and ServerHello; the rest is framed, not verified).
 * Everything is static: included by one test source each. */
#ifndef TLS12_SYNTH_H
#define TLS12_SYNTH_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "crypto/crypto.h"
#include "decode/decode.h"
#include "engine/engine.h"
#include "keys/keys.h"

struct synth {
    struct mmtls_engine *e; /* borrowed */
    uint32_t tcp_seq[2];    /* next TCP sequence number by direction (0 client, 1 server) */
    uint64_t ts_us;
    uint16_t suite_id;
    const struct mmtls_suite *suite;
    struct mmtls_secret master;
    uint8_t cr[32], sr[32];
    struct mmtls_key_block kb;
    struct mmtls_rprot *wr[2]; /* owned: each direction's current write protection */
    struct mmtls_rprot *pend[2];
    uint64_t rseq[2];    /* record sequence numbers (RFC 5246 §6.1) */
    uint8_t compression; /* the ServerHello's compression method (0: null) */
};

/* One TCP segment of direction dir, as a raw IPv4 frame (10.0.0.1:40000 <-> 10.0.0.2:443). */
static void synth_segment(struct synth *y, int dir, uint8_t flags, const uint8_t *p, size_t len)
{
    static uint8_t f[65536];
    size_t n = 40 + len;

    assert_true(n <= sizeof(f));
    memset(f, 0, 40);
    f[0] = 0x45;
    f[2] = (uint8_t)(n >> 8);
    f[3] = (uint8_t)n;
    f[6] = 0x40; /* DF */
    f[8] = 64;
    f[9] = 6;
    f[12] = 10;
    f[15] = dir == 0 ? 1 : 2;
    f[16] = 10;
    f[19] = dir == 0 ? 2 : 1;
    f[20 + (dir == 0 ? 0 : 2)] = 40000 >> 8;
    f[21 + (dir == 0 ? 0 : 2)] = 40000 & 0xff;
    f[20 + (dir == 0 ? 2 : 0)] = 443 >> 8;
    f[21 + (dir == 0 ? 2 : 0)] = 443 & 0xff;
    for (int i = 0; i < 4; i++) {
        f[24 + i] = (uint8_t)(y->tcp_seq[dir] >> (24 - 8 * i));
        f[28 + i] = (uint8_t)(y->tcp_seq[!dir] >> (24 - 8 * i));
    }
    f[32] = 5 << 4;
    f[33] = flags;
    f[34] = 0xff;
    f[35] = 0xff;
    if (len > 0)
        memcpy(f + 40, p, len);
    (void)mmtls_engine_packet(y->e, MMTLS_LINK_RAW, f, n, y->ts_us);
    y->ts_us += 1000;
    y->tcp_seq[dir] += (uint32_t)len + ((flags & 0x03) ? 1u : 0u); /* SYN, FIN take one */
}

/* Bytes of direction dir, in segments of at most 1400 bytes. */
static void synth_send(struct synth *y, int dir, const uint8_t *p, size_t len)
{
    while (len > 0) {
        size_t k = len < 1400 ? len : 1400;
        synth_segment(y, dir, 0x18, p, k); /* PSH ACK */
        p += k;
        len -= k;
    }
}

static size_t synth_hdr(uint8_t *out, uint8_t type, size_t len)
{
    out[0] = type;
    out[1] = 3;
    out[2] = 3;
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
    return 5;
}

/* A record of direction dir: in the clear before its ChangeCipherSpec, sealed after. */
static void synth_record(struct synth *y, int dir, uint8_t type, const uint8_t *p, size_t len)
{
    static uint8_t out[16384 + 2048 + 5];
    size_t n;

    if (y->wr[dir] == NULL) {
        n = synth_hdr(out, type, len);
        memcpy(out + n, p, len);
        n += len;
    } else {
        assert_int_equal(mmtls_rprot_seal(y->wr[dir], y->rseq[dir]++, type, 0x0303, p, len, 0, out,
                                          sizeof(out), &n),
                         0);
    }
    synth_send(y, dir, out, n);
}

/* Handshake message type || uint24 length || body, as one record. */
static void synth_hs(struct synth *y, int dir, uint8_t type, const uint8_t *body, size_t len)
{
    uint8_t m[512];

    assert_true(len + 4 <= sizeof(m));
    m[0] = type;
    m[1] = 0;
    m[2] = (uint8_t)(len >> 8);
    m[3] = (uint8_t)len;
    if (len > 0)
        memcpy(m + 4, body, len);
    synth_record(y, dir, 22, m, len + 4);
}

/* ClientHello { 0x0303, random, session_id <0>, cipher_suites <suite>, compression <null>,
 * extensions { server_name "server.test" } } (RFC 5246 §7.4.1.2, RFC 6066 §3). */
static void synth_client_hello(struct synth *y, const uint8_t cr[32])
{
    static const uint8_t sni[] = {0x00, 0x00, 0x00, 0x10, 0x00, 0x0e, 0x00, 0x00, 0x0b, 's',
                                  'e',  'r',  'v',  'e',  'r',  '.',  't',  'e',  's',  't'};
    uint8_t b[128];
    size_t n = 0;

    b[n++] = 3;
    b[n++] = 3;
    memcpy(b + n, cr, 32);
    n += 32;
    b[n++] = 0;
    b[n++] = 0;
    b[n++] = 2;
    b[n++] = (uint8_t)(y->suite_id >> 8);
    b[n++] = (uint8_t)y->suite_id;
    b[n++] = 1;
    b[n++] = 0;
    b[n++] = 0;
    b[n++] = sizeof(sni);
    memcpy(b + n, sni, sizeof(sni));
    n += sizeof(sni);
    synth_hs(y, 0, 1, b, n);
}

/* ServerHello { 0x0303, random, session_id <0>, suite, y->compression } then
 * ServerHelloDone. */
static void synth_server_hello(struct synth *y, const uint8_t sr[32])
{
    uint8_t b[40];
    size_t n = 0;

    b[n++] = 3;
    b[n++] = 3;
    memcpy(b + n, sr, 32);
    n += 32;
    b[n++] = 0;
    b[n++] = (uint8_t)(y->suite_id >> 8);
    b[n++] = (uint8_t)y->suite_id;
    b[n++] = y->compression;
    synth_hs(y, 1, 2, b, n);
    synth_hs(y, 1, 14, NULL, 0);
}

/* The key block of (master, cr, sr): the pending write protection of both directions. */
static void synth_keys(struct synth *y, const uint8_t master[48], const uint8_t cr[32],
                       const uint8_t sr[32])
{
    y->master.len = 48;
    memcpy(y->master.b, master, 48);
    memcpy(y->cr, cr, 32);
    memcpy(y->sr, sr, 32);
    assert_int_equal(mmtls_crypto_tls12_key_block(y->suite, 0x0303, &y->master, cr, sr, &y->kb), 0);
    for (int w = 0; w < 2; w++)
        assert_int_equal(mmtls_rprot_new_tls12(&y->pend[w], y->suite, 0x0303, false, &y->kb, w), 0);
}

/* ChangeCipherSpec then Finished (12 bytes of verify_data: not checked by the engine). */
static void synth_ccs_finished(struct synth *y, int dir)
{
    static const uint8_t one = 1, vd[12] = {0};

    synth_record(y, dir, 20, &one, 1);
    mmtls_rprot_free(y->wr[dir]);
    y->wr[dir] = y->pend[dir];
    y->pend[dir] = NULL;
    y->rseq[dir] = 0;
    synth_hs(y, dir, 20, vd, sizeof(vd));
}

/* A full handshake (the first, or a renegotiation under the current keys): ClientHello,
 * ServerHello + ServerHelloDone, ClientKeyExchange (opaque), then each side's ChangeCipherSpec
 * and Finished, the client's first (RFC 5246 §7.3). */
static void synth_handshake(struct synth *y, const uint8_t master[48], const uint8_t cr[32],
                            const uint8_t sr[32])
{
    static const uint8_t cke[3] = {0x00, 0x01, 0x42};

    synth_client_hello(y, cr);
    synth_server_hello(y, sr);
    synth_keys(y, master, cr, sr);
    synth_hs(y, 0, 16, cke, sizeof(cke));
    synth_ccs_finished(y, 0);
    synth_ccs_finished(y, 1);
}

static void synth_start(struct synth *y, struct mmtls_engine *e, uint16_t suite_id)
{
    memset(y, 0, sizeof(*y));
    y->e = e;
    y->ts_us = 1000000;
    y->tcp_seq[0] = 1000;
    y->tcp_seq[1] = 500000;
    y->suite_id = suite_id;
    y->suite = mmtls_crypto_suite(suite_id);
    assert_non_null(y->suite);
    synth_segment(y, 0, 0x02, NULL, 0); /* SYN */
    synth_segment(y, 1, 0x12, NULL, 0); /* SYN ACK */
    synth_segment(y, 0, 0x10, NULL, 0); /* ACK */
}

static void synth_end(struct synth *y)
{
    synth_segment(y, 0, 0x11, NULL, 0); /* FIN ACK */
    synth_segment(y, 1, 0x11, NULL, 0);
    for (int w = 0; w < 2; w++) {
        mmtls_rprot_free(y->wr[w]);
        mmtls_rprot_free(y->pend[w]);
    }
    mmtls_key_block_wipe(&y->kb);
}

/* A key message with the master secret of client random cr (any owner). */
static struct mmtls_engine_keymsg *synth_keymsg(const uint8_t master[48], const uint8_t cr[32])
{
    struct mmtls_engine_keymsg *m = mmtls_secmem_calloc(1, sizeof(*m));

    assert_non_null(m);
    m->type = MMTLS_KP_KEYS;
    memcpy(m->client_random, cr, 32);
    m->ks.have = MMTLS_KS_MASTER;
    m->ks.master.len = 48;
    memcpy(m->ks.master.b, master, 48);
    m->ks.owner_any = true;
    return m;
}

#endif
