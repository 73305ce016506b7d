/* The inspection depth app (apps_depth.c) counts the plaintext records deliver, not their
 * padding: a TLS 1.2 CBC record carries up to 255 bytes of padding and its MAC (RFC 5246
 * §6.2.3.2) that the record's bound (max_plain_len, known before decryption) counts.  A server
 * sending 1-byte records padded to the maximum must not use up --inspect-depth and slip what
 * follows past inspection.  A synthetic TLS 1.2 session (tls12_synth.h, TLS_RSA_WITH_AES_128_
 * CBC_SHA, MAC-then-encrypt) with records sealed here with chosen padding; the engine verifies
 * the padding and the MAC of each (a wrong seal would show as bad_record_mac). */
#include "tls12_synth.h"

#include "apps/apps.h"

#define CBC_SHA 0x002f /* TLS_RSA_WITH_AES_128_CBC_SHA */
#define DEPTH 1024

static const uint8_t cr[32] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                               7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0x77};
static const uint8_t sr[32] = {8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
                               8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 0x88};
static uint8_t ms[48];

struct seen {
    char plain[8192]; /* server application data the apps after the depth app saw */
    size_t plain_len;
    uint32_t max_plain_mismatch; /* decrypted records whose bound is not their length */
    int bad_mac;
};

static int on_ev(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct seen *z = arg;
    const uint8_t *p;
    size_t n;

    if (ev->ev == MMTLS_EV_ERROR && ev->err->code == MMTLS_TLSERR_BAD_RECORD_MAC)
        z->bad_mac++;
    if (ev->ev != MMTLS_EV_NEW_RECORD || ev->rec->dir != MMTLS_DIR_TO_CLIENT ||
        ev->rec->type != MMTLS_CT_APPLICATION_DATA || mmtls_record_plaintext(s, &p, &n) != 0)
        return MMTLS_VERDICT_CONTINUE;
    if (ev->rec->max_plain_len != n)
        z->max_plain_mismatch++;
    if (n < sizeof(z->plain) - z->plain_len - 1) {
        memcpy(z->plain + z->plain_len, p, n);
        z->plain_len += n;
    }
    return MMTLS_VERDICT_CONTINUE;
}

/* A server application-data record: content || HMAC-SHA1 || pad_len + 1 bytes of pad_len,
 * AES-128-CBC with an explicit IV (RFC 5246 §6.2.3.2); the MAC over seq || type || version ||
 * length || content (§6.2.3.1).  (content_len + 20 + pad_len + 1) must be a multiple of 16. */
static void server_cbc(struct synth *y, const uint8_t *content, size_t len, uint8_t pad_len)
{
    uint8_t mac_in[13 + 256], plain[512], rec[5 + 16 + 512];
    uint64_t seq = y->rseq[1]++;
    unsigned int ml = 0;
    size_t n = 0, body = len + 20 + (size_t)pad_len + 1;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0;

    assert_true(len <= 256 && body <= sizeof(plain) && body % 16 == 0);
    for (int i = 0; i < 8; i++)
        mac_in[i] = (uint8_t)(seq >> (56 - 8 * i));
    mac_in[8] = 23;
    mac_in[9] = 3;
    mac_in[10] = 3;
    mac_in[11] = (uint8_t)(len >> 8);
    mac_in[12] = (uint8_t)len;
    memcpy(mac_in + 13, content, len);
    memcpy(plain, content, len);
    assert_non_null(
        HMAC(EVP_sha1(), y->kb.mac[1], y->kb.mac_len, mac_in, 13 + len, plain + len, &ml));
    assert_int_equal(ml, 20);
    memset(plain + len + 20, pad_len, (size_t)pad_len + 1);
    n = synth_hdr(rec, 23, 16 + body);
    memset(rec + n, (int)(seq & 0xff), 16); /* explicit IV: any value */
    assert_non_null(c);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_128_cbc(), NULL, y->kb.key[1], rec + n), 1);
    assert_int_equal(EVP_CIPHER_CTX_set_padding(c, 0), 1);
    assert_int_equal(EVP_EncryptUpdate(c, rec + n + 16, &outl, plain, (int)body), 1);
    assert_int_equal((size_t)outl, body);
    EVP_CIPHER_CTX_free(c);
    synth_send(y, 1, rec, n + 16 + body);
}

static void run(struct seen *z, bool padded, bool wire)
{
    struct mmtls_engine_opts o;
    struct mmtls_engine *e;
    struct mmtls_depth *d;
    struct synth y;
    struct mmtls_app app = {
        .sz = sizeof(app), .name = "t", .events = MMTLS_EV_ALL, .on_event = on_ev, .arg = z};
    static const char req[] = "GET / HTTP/1.1\r\n\r\n";
    uint8_t fill[235];

    memset(z, 0, sizeof(*z));
    mmtls_engine_opts_default(&o);
    o.key_wait_ms = 2000;
    assert_int_equal(mmtls_engine_new(&e, &o), 0);
    assert_int_equal(mmtls_depth_register(&d, e, DEPTH, wire), 0); /* first, as mmtlsd does */
    assert_int_equal(mmtls_engine_app_register(e, &app, NULL), 0);
    assert_true(mmtls_ring_push(mmtls_engine_key_ring(e), synth_keymsg(ms, cr)));
    synth_start(&y, e, CBC_SHA);
    synth_handshake(&y, ms, cr, sr);
    synth_record(&y, 0, 23, (const uint8_t *)req, sizeof(req) - 1);
    memset(fill, 'a', sizeof(fill));
    for (int i = 0; i < 40; i++) {
        if (padded)
            server_cbc(&y, (const uint8_t *)"a", 1, 250); /* 1 + 20 + 251 = 272 = 17 blocks */
        else
            server_cbc(&y, fill, sizeof(fill), 0); /* 235 + 20 + 1 = 256 = 16 blocks */
    }
    server_cbc(&y, (const uint8_t *)"EVIL", 4, 7); /* 4 + 20 + 8 = 32 */
    if (wire) {
        /* a second request: its response is inspected from its start again */
        synth_record(&y, 0, 23, (const uint8_t *)req, sizeof(req) - 1);
        server_cbc(&y, (const uint8_t *)"AGAIN", 5, 6); /* 5 + 20 + 7 = 32 */
    }
    synth_end(&y);
    mmtls_engine_flush(e);
    mmtls_engine_free(e);
    mmtls_depth_free(d);
    z->plain[z->plain_len] = '\0';
}

/* 40 records of 1 byte of content padded with 251 bytes: 40 bytes delivered, far below the
 * depth (each record's bound is 251 bytes: counted by bounds, the depth is used up after five
 * records and EVIL is skipped). */
static void test_cbc_padding_does_not_use_up_depth(void **state)
{
    struct seen z;

    (void)state;
    run(&z, true, false);
    assert_int_equal(z.bad_mac, 0);
    assert_int_equal(z.plain_len, 40 + 4);
    assert_non_null(strstr(z.plain, "EVIL"));
    assert_int_equal(z.max_plain_mismatch, 0); /* decrypted: the bound is the content length */
}

/* Control: 40 records of 235 bytes of content: the depth (1024) is reached after five, the rest
 * of the response (EVIL included) is skipped — the depth still counts real plaintext. */
static void test_cbc_content_reaches_depth(void **state)
{
    struct seen z;

    (void)state;
    run(&z, false, false);
    assert_int_equal(z.bad_mac, 0);
    assert_int_equal(z.plain_len, 5 * 235);
    assert_null(strstr(z.plain, "EVIL"));
}

/* --depth-count wire (mmtls_session_pause_after_wire): records count as sent, 5 + 16 (IV) + 256
 * = 277 bytes each; the fourth reaches 1024 and is inspected whole, the rest of the response is
 * skipped; the next request starts a new count, so its response is inspected. */
static void test_wire_count(void **state)
{
    struct seen z;

    (void)state;
    run(&z, false, true);
    assert_int_equal(z.bad_mac, 0);
    assert_int_equal(z.plain_len, 4 * 235 + 5);
    assert_null(strstr(z.plain, "EVIL"));
    assert_non_null(strstr(z.plain, "AGAIN"));
}

/* With the wire count, padding counts as data (the documented cost of letting the kernel fast
 * path apply the depth): four padded records (4 x 293 bytes) use up 1024, EVIL is skipped. */
static void test_wire_count_padding_counts(void **state)
{
    struct seen z;

    (void)state;
    run(&z, true, true);
    assert_int_equal(z.bad_mac, 0);
    assert_int_equal(z.plain_len, 4 + 5);
    assert_null(strstr(z.plain, "EVIL"));
    assert_non_null(strstr(z.plain, "AGAIN"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cbc_padding_does_not_use_up_depth),
        cmocka_unit_test(test_cbc_content_reaches_depth),
        cmocka_unit_test(test_wire_count),
        cmocka_unit_test(test_wire_count_padding_counts),
    };

    for (int i = 0; i < 48; i++)
        ms[i] = (uint8_t)(0x30 + i);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
