/* engine_tls — the per-session TLS state machine: record framing over the reassembled stream
 * (zero-copy when a record is contiguous, a per-direction record buffer when it straddles
 * segments), handshake tracking, key installation, record decryption and event dispatch.
 *
 * Key phases.  TLS <= 1.2 switches keys at ChangeCipherSpec (RFC 5246 §7.1).  TLS 1.3 has no
 * visible switch, so each direction keeps its candidate keys in order (early, handshake,
 * application; RFC 8446 §7.1) and a record is opened with the current key or a later one: the
 * AEAD tag tells which key a record belongs to.  This finds the end of the handshake by content
 * even without handshake secrets, skips 0-RTT records whose secret is missing, and follows a
 * KeyUpdate hidden in a record that was not decrypted (paused monitoring) by trying the next
 * generation of the application secret (RFC 8446 §7.2).  Attempts are bounded per record.
 */
#include "engine/engine_int.h"

#include <stdio.h>
#include <stdlib.h>

/* Shortest protected TLS 1.3 fragment: 1 byte of inner type + the tag (8 bytes for CCM_8). */
#define MIN_PROTECTED_FRAG 9

static size_t min_frag(const struct eng_session *s)
{
    return s->suite != NULL && s->suite->tls13 ? (size_t)s->suite->tag_len + 1
                                               : (size_t)MIN_PROTECTED_FRAG;
}

static bool err_once(struct eng_session *s, int dir, int code)
{
    if (s->d[dir].err_once[code])
        return false;
    s->d[dir].err_once[code] = true;
    return true;
}

/* Inline (DESIGN §3): a started session that can no longer be inspected — framing lost, a
 * record the endpoints' TLS stacks must reject (RFC 8446 §5: unexpected record types end the
 * connection), records that do not verify with the keys the client shared — is blocked, never
 * left to pass uninspected.  `cannot_decrypt` failures follow --on-missing-keys (the same
 * situation as keys that never came); protocol violations follow --on-evasion. */
static void fail_closed(struct eng_session *s, bool cannot_decrypt, const char *why)
{
    struct mmtls_engine *e = s->eng;

    if (!e->inline_mode || s->info.blocked || !s->started || s->plain ||
        (s->ks.have & MMTLS_KS_BYPASS))
        return;
    if (cannot_decrypt ? e->o.on_missing_keys != MMTLS_MISSING_BLOCK : e->o.evasion_alert_only)
        return;
    e->st.evasion_blocked++;
    mmtls_session_block((struct mmtls_session *)s, why);
}

/* ------------------------------------------------------------------------------------------ */
/* Session lifetime                                                                            */

struct eng_session *eng_session_new(struct mmtls_engine *e, struct mmtls_flow *f)
{
    /* The session holds secrets (its key set copy, TLS 1.3 application secrets kept for
     * KeyUpdate): secret memory, out of core dumps and wiped when freed. */
    struct eng_session *s = mmtls_secmem_calloc(1, sizeof(*s));
    int c = f->client;

    if (s == NULL)
        return NULL;
    s->eng = e;
    s->flow = f;
    s->info.flow_id = f->id;
    s->info.start_ts_us = f->first_us;
    s->info.last_ts_us = f->last_us;
    s->info.ip_version = f->key.ip_version;
    memcpy(s->info.client_ip, f->key.addr[c], 16);
    memcpy(s->info.server_ip, f->key.addr[!c], 16);
    s->info.client_port = f->key.port[c];
    s->info.server_port = f->key.port[!c];
    s->info.cipher_name = s->cipher;
    s->info.sni = s->sni;
    s->info.ja3 = s->ja3;
    s->info.ja3_hash = s->ja3_hash;
    s->info.ja4 = s->ja4;
    s->info.alpn = s->alpn;
    s->info.cert_subject = s->subject;
    s->info.cert_issuer = s->issuer;
    s->info.early_data_accepted = -1;
    for (int i = 0; i < 2; i++) {
        mmtls_tls_hs_reasm_init(&s->d[i].hs, e->o.max_handshake_msg);
        s->d[i].rbuf.max = 2 * ENG_REC_MAX;
    }
    return s;
}

static void key_free(struct eng_key *k)
{
    mmtls_rprot_free(k->rp);
    k->rp = NULL;
    mmtls_secret_wipe(&k->secret);
    k->have = false;
}

void eng_session_free(struct eng_session *s)
{
    if (s == NULL)
        return;
    eng_keys_session_del(s);
    for (int i = 0; i < 2; i++) {
        struct eng_tdir *d = &s->d[i];
        mmtls_buf_fini(&d->rbuf, true);
        mmtls_tls_hs_reasm_fini(&d->hs);
        for (int k = 0; k < K_N; k++)
            key_free(&d->k[k]);
        mmtls_rprot_free(d->rp12);
        mmtls_rprot_free(d->pend12);
    }
    mmtls_keyset_wipe(&s->ks);
    /* The session is over: its secrets go from the store too. */
    if (s->keys_found && s->eng->o.keys != NULL && s->info.have_client_random)
        mmtls_keystore_remove(s->eng->o.keys, s->info.client_random);
    mmtls_secmem_free(s); /* wipes */
}

void eng_session_finish(struct eng_session *s)
{
    struct mmtls_session_info *in = &s->info;
    uint64_t dec = 0, und = 0;
    struct mmtls_event_info ev = {.ev = MMTLS_EV_SESSION_END};

    if (s->held_head != NULL) {
        /* The session ends while waiting for keys: what was held is processed without them. */
        s->wait_expired = true;
        eng_keys_release(s);
    }
    for (int i = 0; i < 2; i++) {
        dec += in->dir[i].app_records;
        und += in->dir[i].undecrypted_records;
    }
    if (s->ks.have & MMTLS_KS_BYPASS)
        in->key_status = MMTLS_KEYS_BYPASS;
    else if (dec == 0 && (und > 0 || !s->keys_found))
        in->key_status = MMTLS_KEYS_NONE;
    else if (und > 0 || s->err_count[MMTLS_TLSERR_GAP] > 0 ||
             s->err_count[MMTLS_TLSERR_RESYNC_FAILED] > 0)
        in->key_status = MMTLS_KEYS_PARTIAL; /* something was not seen or not decrypted */
    else
        in->key_status = MMTLS_KEYS_DECRYPTED;
    if (s->started) {
        s->eng->st.sessions_ended++;
        (void)eng_dispatch(s, MMTLS_EV_SESSION_END, &ev);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Keys                                                                                        */

static bool keys_lookup(struct eng_session *s, const uint8_t cr[32])
{
    struct mmtls_keystore *ks = s->eng->o.keys;

    if (ks == NULL)
        return false;
    mmtls_keyset_wipe(&s->ks);
    if (mmtls_keystore_lookup(ks, cr, &s->ks) != 0)
        return false;
    s->keys_found = true;
    return true;
}

/* TLS 1.3: fills the candidate keys of both directions from s->ks (RFC 8446 §7.1). */
static void tls13_install(struct eng_session *s)
{
    struct mmtls_keyset *ks = &s->ks;
    struct eng_tdir *c = &s->d[0], *v = &s->d[1];

    if ((ks->have & MMTLS_KS_CHS) && !c->k[K_HS].have) {
        c->k[K_HS].secret = ks->chs;
        c->k[K_HS].have = true;
    }
    if ((ks->have & MMTLS_KS_SHS) && !v->k[K_HS].have) {
        v->k[K_HS].secret = ks->shs;
        v->k[K_HS].have = true;
    }
    if ((ks->cts_have & 1u) && !c->k[K_APP].have) {
        c->k[K_APP].secret = ks->cts[0];
        c->k[K_APP].have = true;
    }
    if ((ks->sts_have & 1u) && !v->k[K_APP].have) {
        v->k[K_APP].secret = ks->sts[0];
        v->k[K_APP].have = true;
    }
    if ((ks->have & MMTLS_KS_EARLY) && !c->k[K_EARLY].have) {
        c->k[K_EARLY].secret = ks->early;
        c->k[K_EARLY].have = true;
    }
}

/* TLS <= 1.2: derives the key block (RFC 5246 §6.3) and prepares both directions' pending
 * record protection, installed at each side's ChangeCipherSpec. */
static void tls12_prepare(struct eng_session *s)
{
    struct mmtls_key_block kb;
    const uint8_t *cr = s->renego ? s->next_client_random : s->info.client_random;

    if (s->suite == NULL || s->d[0].pend12 != NULL)
        return;
    /* Keys delivered by a key channel are in s->ks already; otherwise ask the key store. */
    if (!(s->ks.have & (MMTLS_KS_MASTER | MMTLS_KS_KEY_BLOCK)) &&
        (!keys_lookup(s, cr) || !(s->ks.have & (MMTLS_KS_MASTER | MMTLS_KS_KEY_BLOCK))))
        return;
    if (s->ks.have & MMTLS_KS_KEY_BLOCK)
        kb = s->ks.kb; /* the client sent record keys (docs/keyproto.md), not the master */
    else if (mmtls_crypto_tls12_key_block(s->suite, s->version, &s->ks.master, cr,
                                          s->info.server_random, &kb) != 0)
        goto out;
    for (int w = 0; w < 2; w++) {
        if (mmtls_rprot_new_tls12(&s->d[w].pend12, s->suite, s->version, s->info.encrypt_then_mac,
                                  &kb, w) != 0)
            s->d[w].pend12 = NULL;
    }
out:
    mmtls_key_block_wipe(&kb);
    mmtls_keyset_wipe(&s->ks);
}

static struct mmtls_rprot *key_rp(struct eng_session *s, struct eng_key *k, int idx,
                                  const struct mmtls_suite *suite)
{
    if (k->rp == NULL && k->have && suite != NULL) {
        if (mmtls_rprot_new_tls13(&k->rp, suite, &k->secret) != 0) {
            k->rp = NULL;
            return NULL;
        }
        /* Only the application secret is kept (for KeyUpdate, RFC 8446 §7.2). */
        if (idx != K_APP)
            mmtls_secret_wipe(&k->secret);
    }
    (void)s;
    return k->rp;
}

/* ------------------------------------------------------------------------------------------ */
/* Handshake messages                                                                          */

static void copy_str(char *dst, size_t cap, const uint8_t *p, size_t len)
{
    size_t n = MMTLS_MIN(len, cap - 1);

    memcpy(dst, p, n);
    dst[n] = '\0';
}

static void raise_hs_start(struct eng_session *s)
{
    struct mmtls_event_info ev = {.ev = MMTLS_EV_HANDSHAKE_START};

    s->info.handshakes++;
    s->hs_end_raised = false;
    s->d[0].finished = s->d[1].finished = false;
    (void)eng_dispatch(s, MMTLS_EV_HANDSHAKE_START, &ev);
}

static void raise_hs_end(struct eng_session *s)
{
    struct mmtls_event_info ev = {.ev = MMTLS_EV_HANDSHAKE_END};

    if (s->hs_end_raised)
        return;
    s->hs_end_raised = true;
    s->renego = false;
    (void)eng_dispatch(s, MMTLS_EV_HANDSHAKE_END, &ev);
}

/* JA3 and JA4 of the first ClientHello (a second one after a HelloRetryRequest or for a
 * renegotiation keeps them).  A fingerprint that cannot be computed (MD5 refused in FIPS mode,
 * more cipher suites than JA4 sorts) is left "": it says nothing about the peer. */
static void client_fingerprints(struct eng_session *s, const struct mmtls_tls_client_hello *ch)
{
    if (mmtls_tls_ja3(ch, s->ja3, sizeof(s->ja3), NULL, s->ja3_hash) != 0) {
        s->ja3[0] = '\0';
    }
    if (mmtls_tls_ja4(ch, s->ja4, NULL, 0, NULL) != 0) {
        s->ja4[0] = '\0';
    }
}

static void on_client_hello(struct eng_session *s, const uint8_t *body, size_t len)
{
    struct mmtls_tls_client_hello ch;

    if (mmtls_tls_client_hello_parse(body, len, &ch) != 0) {
        eng_error(s, MMTLS_TLSERR_MALFORMED_HANDSHAKE, 0, s->d[0].next_off,
                  "malformed ClientHello");
        s->d[0].hs_dead = true;
        return;
    }
    if (!s->info.have_client_random) {
        memcpy(s->info.client_random, ch.random, 32);
        s->info.have_client_random = true;
        if (ch.has_sni)
            copy_str(s->sni, sizeof(s->sni), ch.sni.p, ch.sni.len);
        client_fingerprints(s, &ch);
        s->early_offered = ch.early_data;
        s->info.early_data = ch.early_data;
        s->ch_session_id_len = (uint8_t)MMTLS_MIN(ch.session_id.len, (size_t)32);
        memcpy(s->ch_session_id, ch.session_id.p, s->ch_session_id_len);
        /* 0-RTT records follow the ClientHello before any ServerHello: install the early
         * secret now (RFC 8446 §7.1 client_early_traffic_secret). */
        if (keys_lookup(s, ch.random) && (s->ks.have & MMTLS_KS_EARLY) && ch.early_data) {
            s->d[0].k[K_EARLY].secret = s->ks.early;
            s->d[0].k[K_EARLY].have = true;
        }
        if (s->eng->o.on_client_random != NULL)
            s->eng->o.on_client_random(s->eng->o.on_client_random_ud, ch.random);
        /* The session's first event: what the ClientHello says is valid from here. */
        eng_tls_session_start(s);
        /* Keys from key channels may be waiting for this session already. */
        eng_keys_session_add(s);
        return;
    }
    if (s->hrr_pending) {
        /* RFC 8446 §4.1.2: the second ClientHello keeps the random; no 0-RTT after HRR. */
        s->hrr_pending = false;
        s->early_offered = false;
        return;
    }
    /* A ClientHello on an established TLS <= 1.2 session: renegotiation (RFC 5746).  A new
     * handshake: its master secret is the new client random's, from the key store at its
     * ServerHello or from a key channel; until it comes, the records under the new keys are
     * held like a first handshake's (and --on-missing-keys applies when it does not come). */
    memcpy(s->next_client_random, ch.random, 32);
    if (s->eng->o.on_client_random != NULL)
        s->eng->o.on_client_random(s->eng->o.on_client_random_ud, ch.random);
    s->renego = true;
    s->sh_seen = false;
    s->server_full_hs = false;
    s->ch_session_id_len = (uint8_t)MMTLS_MIN(ch.session_id.len, (size_t)32);
    memcpy(s->ch_session_id, ch.session_id.p, s->ch_session_id_len);
    mmtls_rprot_free(s->d[0].pend12);
    mmtls_rprot_free(s->d[1].pend12);
    s->d[0].pend12 = s->d[1].pend12 = NULL;
    if (s->keys_found && s->eng->o.keys != NULL && s->info.have_client_random)
        mmtls_keystore_remove(s->eng->o.keys, s->info.client_random); /* as at session end */
    eng_keys_session_renego(s, ch.random);
    raise_hs_start(s);
}

static void on_server_hello(struct eng_session *s, const uint8_t *body, size_t len)
{
    struct mmtls_tls_server_hello sh;
    const char *name;

    if (mmtls_tls_server_hello_parse(body, len, &sh) != 0) {
        eng_error(s, MMTLS_TLSERR_MALFORMED_HANDSHAKE, 1, s->d[1].next_off,
                  "malformed ServerHello");
        s->d[1].hs_dead = true;
        return;
    }
    if (sh.is_hrr) {
        /* HelloRetryRequest exists only in TLS 1.3 (RFC 8446 §4.1.4): from here on a
         * ChangeCipherSpec is the compatibility no-op, never a TLS 1.2 key switch. */
        s->info.hello_retry = true;
        s->hrr_pending = true;
        s->tls13 = true;
        return;
    }
    s->sh_seen = true;
    s->version = mmtls_tls_server_hello_version(&sh);
    s->info.version = s->version;
    s->info.cipher_suite = sh.cipher_suite;
    name = mmtls_cipher_suite_name(sh.cipher_suite);
    if (name != NULL)
        snprintf(s->cipher, sizeof(s->cipher), "%s", name);
    else
        snprintf(s->cipher, sizeof(s->cipher), "0x%04X", sh.cipher_suite);
    memcpy(s->info.server_random, sh.random, 32);
    s->info.have_server_random = true;
    s->suite = mmtls_crypto_suite(sh.cipher_suite);
    /* A compression method other than null (RFC 3749; 0 in TLS 1.3, RFC 8446 §4.1.3): the
     * records would decrypt to compressed bytes, which inspection cannot read as they are. */
    if (s->suite == NULL || (s->suite->tls13 != (s->version == MMTLS_TLS_V13)) ||
        s->version < MMTLS_TLS_V10 || s->version > MMTLS_TLS_V13 || sh.compression != 0) {
        if (err_once(s, 1, MMTLS_TLSERR_UNSUPPORTED_SUITE))
            eng_error(s, MMTLS_TLSERR_UNSUPPORTED_SUITE, 1, s->d[1].next_off,
                      "cipher suite, version or compression not decryptable");
        s->suite = NULL;
    }
    if (s->version == MMTLS_TLS_V13) {
        s->tls13 = true;
        s->info.resumed = sh.psk_selected;
        s->d[1].cur = K_HS;
        s->d[0].cur = s->early_offered ? K_EARLY : K_HS;
        if (!s->keys_found)
            (void)keys_lookup(s, s->info.client_random);
        tls13_install(s);
    } else {
        s->info.encrypt_then_mac = sh.encrypt_then_mac;
        if (sh.alpn.len > 0)
            copy_str(s->alpn, sizeof(s->alpn), sh.alpn.p, sh.alpn.len);
        /* Session-ID resumption: the server echoes a non-empty session id (RFC 5246 §7.4.1.3);
         * confirmed at the server's ChangeCipherSpec (abbreviated handshake). */
        if (s->renego)
            memcpy(s->info.client_random, s->next_client_random, 32);
        tls12_prepare(s);
    }
}

static void on_certificate(struct eng_session *s, const uint8_t *body, size_t len)
{
    struct mmtls_tls_certificate c;

    if (mmtls_tls_certificate_parse(body, len, s->tls13, &c) != 0) {
        eng_error(s, MMTLS_TLSERR_MALFORMED_HANDSHAKE, 1, s->d[1].next_off,
                  "malformed Certificate");
        return;
    }
    if (c.count > 0 && c.leaf.len > 0 &&
        mmtls_tls_cert_names(c.leaf.p, c.leaf.len, s->subject, sizeof(s->subject), s->issuer,
                             sizeof(s->issuer)) != 0)
        s->subject[0] = s->issuer[0] = '\0'; /* not a certificate we can read: not logged */
}

static void on_hs_message(struct eng_session *s, int dir, uint8_t type, const uint8_t *body,
                          size_t len)
{
    struct eng_tdir *d = &s->d[dir];

    switch (type) {
    case MMTLS_HS_CLIENT_HELLO:
        if (dir == 0)
            on_client_hello(s, body, len);
        break;
    case MMTLS_HS_SERVER_HELLO:
        if (dir == 1)
            on_server_hello(s, body, len);
        break;
    case MMTLS_HS_ENCRYPTED_EXTENSIONS:
        if (dir == 1 && s->tls13) {
            struct mmtls_tls_encrypted_extensions ee;
            if (mmtls_tls_encrypted_extensions_parse(body, len, &ee) != 0) {
                eng_error(s, MMTLS_TLSERR_MALFORMED_HANDSHAKE, 1, d->next_off,
                          "malformed EncryptedExtensions");
                break;
            }
            if (ee.alpn.len > 0)
                copy_str(s->alpn, sizeof(s->alpn), ee.alpn.p, ee.alpn.len);
            if (s->early_offered)
                s->info.early_data_accepted = ee.early_data ? 1 : 0;
        }
        break;
    case MMTLS_HS_CERTIFICATE:
        if (dir == 1) {
            s->server_full_hs = true;
            on_certificate(s, body, len);
        }
        break;
    case MMTLS_HS_SERVER_KEY_EXCHANGE:
    case MMTLS_HS_SERVER_HELLO_DONE:
        if (dir == 1)
            s->server_full_hs = true;
        break;
    case MMTLS_HS_FINISHED:
        d->finished = true;
        if (s->tls13)
            d->cur = K_APP; /* applied after this record: it was the last handshake record */
        if (s->d[0].finished && s->d[1].finished)
            raise_hs_end(s);
        break;
    case MMTLS_HS_END_OF_EARLY_DATA:
        if (dir == 0 && s->tls13)
            d->cur = K_HS;
        break;
    case MMTLS_HS_KEY_UPDATE:
        if (s->tls13) {
            uint8_t req;
            if (mmtls_tls_key_update_parse(body, len, &req) != 0) {
                eng_error(s, MMTLS_TLSERR_MALFORMED_HANDSHAKE, dir, d->next_off,
                          "malformed KeyUpdate");
                break;
            }
            d->update_after = true;
        }
        break;
    default: break;
    }
}

static void feed_handshake(struct eng_session *s, int dir, const uint8_t *p, size_t len)
{
    struct eng_tdir *d = &s->d[dir];
    uint8_t type;
    struct mmtls_slice body;
    int rc;

    if (d->hs_dead)
        return;
    if (mmtls_tls_hs_reasm_feed(&d->hs, p, len) != 0) {
        eng_error(s, MMTLS_TLSERR_HANDSHAKE_TOO_LARGE, dir, d->next_off,
                  "handshake data over the configured cap");
        d->hs_dead = true;
        return;
    }
    for (int n = 0; n < 4096; n++) {
        rc = mmtls_tls_hs_reasm_next(&d->hs, &type, &body);
        if (rc == MMTLS_AGAIN)
            return;
        if (rc != 0) {
            eng_error(s,
                      rc == MMTLS_E_LIMIT ? MMTLS_TLSERR_HANDSHAKE_TOO_LARGE
                                          : MMTLS_TLSERR_MALFORMED_HANDSHAKE,
                      dir, d->next_off, "handshake message over the configured cap");
            d->hs_dead = true;
            return;
        }
        on_hs_message(s, dir, type, body.p, body.len);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Decryption                                                                                  */

enum { DEC_OK = 0, DEC_FAIL, DEC_NOKEY, DEC_EARLY_SKIP, DEC_HS_SKIP, DEC_DEFER };

/* TLS 1.3 early data: the suite is the PSK's, not known from the ClientHello alone; the first
 * record is tried with each offered TLS 1.3 suite of the secret's hash length. */
static int tls13_open_early(struct eng_session *s, const uint8_t *hdr, const uint8_t *frag,
                            size_t frag_len, uint8_t *out, size_t *out_len, uint8_t *type)
{
    struct eng_key *k = &s->d[0].k[K_EARLY];
    static const uint16_t suites[] = {0x1301, 0x1302, 0x1303, 0x1304, 0x1305};

    if (k->rp != NULL)
        return mmtls_rprot_open(k->rp, k->seq, hdr, frag, frag_len, out, out_len, type);
    if (s->suite != NULL && key_rp(s, k, K_EARLY, s->suite) != NULL)
        return mmtls_rprot_open(k->rp, k->seq, hdr, frag, frag_len, out, out_len, type);
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(suites); i++) {
        const struct mmtls_suite *su = mmtls_crypto_suite(suites[i]);
        struct mmtls_rprot *rp;
        if (su == NULL || mmtls_md_size(su->prf_md) != k->secret.len)
            continue;
        if (mmtls_rprot_new_tls13(&rp, su, &k->secret) != 0)
            continue;
        if (mmtls_rprot_open(rp, k->seq, hdr, frag, frag_len, out, out_len, type) == 0) {
            k->rp = rp;
            mmtls_secret_wipe(&k->secret);
            return 0;
        }
        mmtls_rprot_free(rp);
    }
    return MMTLS_E_AUTH;
}

/* Opens a record under application traffic keys.  A session with the private tag
 * (docs/PRIVTAG.md) carries tag2 after tag1 on exactly these records: it is cut off, and tag1 is
 * verified over the rest with the header as received (its length still counting tag2).  tag2
 * itself only the endpoints can check. */
static int tls13_open_app(struct eng_session *s, struct mmtls_rprot *rp, uint64_t seq,
                          const uint8_t *hdr, const uint8_t *frag, size_t frag_len, uint8_t *out,
                          size_t *out_len, uint8_t *type)
{
    int rc;

    if (s->info.private_tag) {
        if (frag_len < MMTLS_PRIVATE_TAG_LEN + 16 + 1)
            return MMTLS_E_MALFORMED;
        frag_len -= MMTLS_PRIVATE_TAG_LEN;
    }
    rc = mmtls_rprot_open(rp, seq, hdr, frag, frag_len, out, out_len, type);
    /* Keys from key logs do not say whether the session carries tag2: learn it from the first
     * record that verifies only without its last 16 bytes (either way tag1 was verified). */
    if (rc == MMTLS_E_AUTH && !s->info.private_tag && frag_len >= MMTLS_PRIVATE_TAG_LEN + 16 + 1 &&
        mmtls_rprot_open(rp, seq, hdr, frag, frag_len - MMTLS_PRIVATE_TAG_LEN, out, out_len,
                         type) == 0) {
        s->info.private_tag = true;
        return 0;
    }
    return rc;
}

static int tls13_decrypt(struct eng_session *s, int dir, const uint8_t *hdr, const uint8_t *frag,
                         size_t frag_len, uint8_t *out, size_t *out_len, uint8_t *type, int *used)
{
    struct eng_tdir *d = &s->d[dir];
    bool any_key = false;

    for (int k = d->cur; k < K_N; k++) {
        struct eng_key *key = &d->k[k];
        int rc;
        if (!key->have && key->rp == NULL)
            continue;
        any_key = true;
        if (k == K_EARLY)
            rc = tls13_open_early(s, hdr, frag, frag_len, out, out_len, type);
        else if (key_rp(s, key, k, s->suite) == NULL)
            continue;
        else if (k == K_APP)
            rc = tls13_open_app(s, key->rp, key->seq, hdr, frag, frag_len, out, out_len, type);
        else
            rc = mmtls_rprot_open(key->rp, key->seq, hdr, frag, frag_len, out, out_len, type);
        if (rc == 0) {
            if (k != d->cur) {
                d->cur = k;
                d->epoch++;
            }
            *used = k;
            key->seq++;
            return DEC_OK;
        }
    }
    /* A KeyUpdate we did not see (its record was skipped): try the next generation. */
    if (d->k[K_APP].have && s->suite != NULL && d->k[K_APP].rp != NULL) {
        struct mmtls_secret next;
        struct mmtls_rprot *rp;
        if (mmtls_crypto_tls13_next_secret(s->suite, &d->k[K_APP].secret, &next) == 0 &&
            mmtls_rprot_new_tls13(&rp, s->suite, &next) == 0) {
            if (tls13_open_app(s, rp, 0, hdr, frag, frag_len, out, out_len, type) == 0) {
                mmtls_rprot_free(d->k[K_APP].rp);
                d->k[K_APP].rp = rp;
                d->k[K_APP].secret = next;
                d->k[K_APP].gen++;
                d->k[K_APP].seq = 1;
                d->cur = K_APP;
                d->epoch++;
                s->info.dir[dir].key_updates++;
                *used = K_APP;
                mmtls_secret_wipe(&next);
                return DEC_OK;
            }
            mmtls_rprot_free(rp);
        }
        mmtls_secret_wipe(&next);
    }
    if (!any_key) {
        if (dir == 0 && !s->sh_seen)
            return DEC_EARLY_SKIP; /* protected client data before ServerHello: 0-RTT */
        if (dir == 0 && d->cur == K_EARLY)
            return DEC_EARLY_SKIP;
        return DEC_NOKEY;
    }
    if (dir == 0 && d->cur == K_EARLY && !d->k[K_EARLY].have)
        return DEC_EARLY_SKIP;
    if (d->cur < K_APP && !d->k[d->cur].have && d->k[K_APP].have)
        return DEC_HS_SKIP; /* handshake record without handshake secrets */
    return DEC_FAIL;
}

static void tls13_after_record(struct eng_session *s, int dir)
{
    struct eng_tdir *d = &s->d[dir];
    struct eng_key *k = &d->k[K_APP];
    struct mmtls_secret next;

    if (!d->update_after)
        return;
    d->update_after = false;
    s->info.dir[dir].key_updates++;
    /* RFC 8446 §7.2: the sender's next application traffic secret. */
    if (!k->have || s->suite == NULL ||
        mmtls_crypto_tls13_next_secret(s->suite, &k->secret, &next) != 0)
        return;
    mmtls_rprot_free(k->rp);
    k->rp = NULL;
    k->secret = next;
    k->gen++;
    k->seq = 0;
    d->epoch++;
    mmtls_secret_wipe(&next);
}

/* Opens the current TLS <= 1.2 record (lazily for application data). */
static int tls12_open_current(struct eng_session *s)
{
    struct eng_tdir *d = &s->d[s->cur.rec.dir];
    uint8_t type;
    size_t n;
    int rc;

    if (s->cur.decrypted)
        return 0;
    if (s->cur.failed)
        return MMTLS_E_AUTH;
    if (d->rp12 == NULL)
        return MMTLS_E_NOTFOUND;
    rc = mmtls_rprot_open(d->rp12, s->cur.rec.seq, s->cur.hdr, s->cur.frag, s->cur.frag_len,
                          s->eng->scratch, &n, &type);
    if (rc != 0) {
        s->cur.failed = true;
        return MMTLS_E_AUTH;
    }
    s->cur.decrypted = true;
    s->cur.plain = s->eng->scratch;
    s->cur.plain_len = n;
    /* As for TLS 1.3: once decrypted the bound is the content length, without the CBC padding
     * (up to 255 bytes, RFC 5246 §6.2.3.2) and MAC counted before (--inspect-depth counts
     * plaintext).  Apps dispatched before the decryption saw the bound. */
    s->cur.rec.max_plain_len = (uint32_t)n;
    return 0;
}

static void count_plain(struct eng_session *s, int dir, size_t n)
{
    s->info.dir[dir].app_records++;
    s->info.dir[dir].plain_bytes += n;
    s->eng->st.plain_bytes += n;
}

int mmtls_record_plaintext(struct mmtls_session *ss, const uint8_t **p, size_t *len)
{
    struct eng_session *s = (struct eng_session *)ss;
    int rc;

    if (!s->cur.active)
        return MMTLS_E_INVAL;
    if (!s->cur.rec.encrypted || s->cur.decrypted) {
        *p = s->cur.plain;
        *len = s->cur.plain_len;
        return 0;
    }
    if (s->tls13)
        return s->cur.failed ? MMTLS_E_AUTH : MMTLS_E_NOTFOUND;
    rc = tls12_open_current(s);
    if (rc != 0)
        return rc;
    *p = s->cur.plain;
    *len = s->cur.plain_len;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Records                                                                                     */

static void dispatch_record(struct eng_session *s)
{
    struct mmtls_event_info ev = {.ev = MMTLS_EV_NEW_RECORD, .rec = &s->cur.rec};

    if (s->started && !s->info.blocked)
        (void)eng_dispatch(s, MMTLS_EV_NEW_RECORD, &ev);
}

static void record_failed(struct eng_session *s, int dir, int why)
{
    struct eng_tdir *d = &s->d[dir];
    struct mmtls_engine *e = s->eng;

    if (s->ks.have & MMTLS_KS_BYPASS) {
        /* The client asked not to be inspected and the operator allowed it: not a failure. */
        s->info.dir[dir].skipped_bytes += s->cur.rec.max_plain_len;
        e->st.records_skipped++;
        return;
    }
    s->info.dir[dir].undecrypted_records++;
    e->st.records_undecrypted++;
    switch (why) {
    case DEC_EARLY_SKIP:
        /* Offline, expected when the early secret is missing: reported once, not a failure.
         * Inline, the server may accept the 0-RTT data (it decides in EncryptedExtensions,
         * after these records have reached it): uninspected bytes it would read, so the
         * session follows --on-missing-keys. */
        if (err_once(s, dir, MMTLS_TLSERR_EARLY_DATA_SKIPPED))
            eng_error(s, MMTLS_TLSERR_EARLY_DATA_SKIPPED, dir, d->next_off,
                      "0-RTT records skipped: no early traffic secret");
        s->info.dir[dir].undecrypted_records--; /* counted as skipped, not undecrypted */
        e->st.records_undecrypted--;
        e->st.records_skipped++;
        fail_closed(s, true, "0-RTT records without the early traffic secret");
        return;
    case DEC_HS_SKIP:
        s->info.dir[dir].undecrypted_records--;
        e->st.records_undecrypted--;
        e->st.records_skipped++;
        break;
    case DEC_NOKEY:
        if (err_once(s, dir, MMTLS_TLSERR_NO_KEYS))
            eng_error(s, MMTLS_TLSERR_NO_KEYS, dir, d->next_off, "no secrets for this session");
        /* Keys came but not the ones this record needs (e.g. handshake secrets only); keys
         * that never came are the key wait's business (--on-missing-keys). */
        if (s->keys_found)
            fail_closed(s, true, "protected records without the secrets to decrypt them");
        return;
    default:
        eng_error(s, MMTLS_TLSERR_BAD_RECORD_MAC, dir, d->next_off, "record failed verification");
        fail_closed(s, true, "a record failed verification with the secrets the client shared");
        break;
    }
    if (++d->failed > s->eng->o.max_failed_records && !d->crypto_dead) {
        d->crypto_dead = true;
        eng_error(s, MMTLS_TLSERR_KEY_MISMATCH, dir, d->next_off,
                  "too many records fail verification with the known secrets");
    }
}

/* RFC 5246 §7.1: after a ChangeCipherSpec the sender's records use the pending keys. */
static void tls12_ccs(struct eng_session *s, int dir)
{
    struct eng_tdir *d = &s->d[dir];

    if (dir == 1 && !s->server_full_hs)
        s->info.resumed = true; /* abbreviated handshake: session ID or ticket */
    if (d->pend12 == NULL)
        tls12_prepare(s);
    mmtls_rprot_free(d->rp12);
    d->rp12 = d->pend12;
    d->pend12 = NULL;
    d->seq12 = 0;
    d->protected_ = true;
    d->epoch++;
    d->failed = 0;
}

bool eng_dir_skippable(const struct eng_session *s, int dir)
{
    const struct eng_tdir *d = &s->d[dir];

    /* application phase; TLS 1.0 CBC chains each record's IV to the previous one */
    return (s->tls13 ? d->cur == K_APP : d->rp12 != NULL) &&
           !(s->version == MMTLS_TLS_V10 && s->suite != NULL &&
             s->suite->kind == MMTLS_CIPHER_AES_CBC);
}

/* Handles one complete record of direction dir: rec points at the header, reclen bytes. */
static void process_record(struct eng_session *s, int dir, const uint8_t *rec, size_t reclen,
                           uint64_t off)
{
    struct eng_tdir *d = &s->d[dir];
    struct mmtls_engine *e = s->eng;
    struct mmtls_tls_hdr h;
    const uint8_t *frag = rec + MMTLS_TLS_HDR_LEN;
    size_t frag_len = reclen - MMTLS_TLS_HDR_LEN;
    bool prot, t13, wire_last = false;
    int used = -1;

    if (mmtls_tls_hdr_parse(rec, reclen, &h) != 0)
        return; /* cannot happen: the caller checked the header */
    t13 = s->tls13 || (dir == 0 && !s->sh_seen && s->early_offered);
    prot = eng_tls_rec_protected(s, dir, rec);
    /* Without keys yet (key channels): hold it until they come or the wait ends.  A TLS 1.2
     * record under keys already installed needs none (a renegotiation's handshake under the
     * previous keys: holding it would stall the handshake whose keys are awaited). */
    if (eng_keys_hold(s, dir, rec, reclen, off, prot && (t13 || d->rp12 == NULL)))
        return;
    s->info.dir[dir].records++;
    s->info.dir[dir].wire_bytes += reclen;
    e->st.records++;

    memset(&s->cur, 0, sizeof(s->cur));
    s->cur.rec.dir = (enum mmtls_dir)dir;
    s->cur.rec.outer_type = h.type;
    s->cur.rec.type = h.type;
    s->cur.rec.version = h.version;
    s->cur.rec.wire_len = (uint32_t)reclen;
    s->cur.rec.max_plain_len = (uint32_t)frag_len;
    s->cur.rec.stream_off = off;
    s->cur.hdr = rec;
    s->cur.frag = frag;
    s->cur.frag_len = frag_len;
    s->cur.plain = frag;
    s->cur.plain_len = frag_len;
    if (!prot) {
        s->cur.active = true;
        switch (h.type) {
        case MMTLS_CT_HANDSHAKE: feed_handshake(s, dir, frag, frag_len); break;
        case MMTLS_CT_CHANGE_CIPHER_SPEC:
            /* RFC 5246 §7.1; in TLS 1.3 only a middlebox-compatibility no-op (§D.4). */
            if (frag_len != 1 || frag[0] != 1) {
                eng_error(s, MMTLS_TLSERR_MALFORMED_RECORD, dir, off, "malformed ChangeCipherSpec");
                break;
            }
            /* Before a ServerHello the version is not settled: a TLS <= 1.2 ChangeCipherSpec
             * always follows the ServerHello, so an earlier one is a TLS 1.3 compatibility
             * record (RFC 8446 §D.4) and changes nothing. */
            if (!s->tls13 && s->sh_seen)
                tls12_ccs(s, dir);
            break;
        case MMTLS_CT_APPLICATION_DATA:
            /* Application data in the clear before keys are in use: nothing to decrypt. */
            count_plain(s, dir, frag_len);
            break;
        case MMTLS_CT_ALERT: break;
        case MMTLS_CT_HEARTBEAT:
            if (!s->tls13)
                break; /* RFC 6520, TLS <= 1.2 only */
            /* fall through */
        default:
            /* RFC 8446 §5, RFC 5246 §6: an unexpected record type ends the connection. */
            eng_error(s, MMTLS_TLSERR_MALFORMED_RECORD, dir, off, "unknown record content type");
            fail_closed(s, false, "unknown record content type");
            break;
        }
        dispatch_record(s);
        s->cur.active = false;
        return;
    }

    /* Protected record. */
    s->cur.rec.encrypted = true;
    s->cur.rec.epoch = d->epoch;
    if (t13) {
        int k = d->cur;
        struct eng_key *key = &d->k[k];
        s->cur.rec.seq = key->seq;
        if (key->rp != NULL)
            s->cur.rec.max_plain_len = (uint32_t)mmtls_rprot_max_plain(key->rp, frag_len);
        else if (frag_len >= min_frag(s))
            s->cur.rec.max_plain_len = (uint32_t)(frag_len - (min_frag(s) - 1));
    } else {
        s->cur.rec.seq = d->seq12;
        if (d->rp12 != NULL)
            s->cur.rec.max_plain_len = (uint32_t)mmtls_rprot_max_plain(d->rp12, frag_len);
    }

    /* The wire count (mmtls_session_pause_after_wire) counts every application-data record the
     * pause could skip, skipped or not, as the kernel fast path counts the headers it reads. */
    if (h.type == MMTLS_CT_APPLICATION_DATA && d->wire_left > 0 && eng_dir_skippable(s, dir)) {
        uint64_t w = MMTLS_TLS_HDR_LEN + frag_len;
        d->wire_left -= MMTLS_MIN(d->wire_left, w);
        if (d->wire_left == 0) {
            /* This record is inspected (unless a pause is in force), the next ones are not: a
             * pause for good, whatever pause was in force, as the kernel fast path skips. */
            wire_last = d->pause_left == 0;
            d->pause_left = UINT64_MAX;
            d->wire_paused = true;
        }
    }

    /* Paused monitoring: whole application-data records inside the window are skipped without
     * decryption.  max_plain_len over-estimates, so padding can only end the pause early. */
    if (d->pause_left > 0 && !wire_last && h.type == MMTLS_CT_APPLICATION_DATA &&
        eng_dir_skippable(s, dir)) {
        uint64_t est = s->cur.rec.max_plain_len;
        if (d->pause_left >= est) {
            if (d->pause_left != UINT64_MAX)
                d->pause_left -= est;
            if (t13)
                d->k[K_APP].seq++;
            else
                d->seq12++;
            s->info.dir[dir].skipped_bytes += est;
            e->st.records_skipped++;
            return;
        }
        d->pause_left = 0;
    }

    if (d->crypto_dead) {
        s->info.dir[dir].undecrypted_records++;
        e->st.records_undecrypted++;
        if (!t13)
            d->seq12++;
        return;
    }

    if (frag_len < (t13 ? min_frag(s) : (size_t)1)) {
        eng_error(s, MMTLS_TLSERR_MALFORMED_RECORD, dir, off,
                  "protected record shorter than its tag");
        fail_closed(s, false, "protected record shorter than its tag");
        s->info.dir[dir].undecrypted_records++;
        e->st.records_undecrypted++;
        if (!t13)
            d->seq12++;
        return;
    }

    if (t13) {
        size_t n;
        uint8_t type;
        int rc = tls13_decrypt(s, dir, rec, frag, frag_len, e->scratch, &n, &type, &used);
        if (rc != DEC_OK) {
            if (rc == DEC_FAIL && d->cur == K_APP)
                d->k[K_APP].seq++; /* the record took a sequence number, valid or not */
            record_failed(s, dir, rc);
            if (rc != DEC_HS_SKIP && rc != DEC_EARLY_SKIP) {
                /* Apps see the record's length; its plaintext is refused. */
                s->cur.active = true;
                s->cur.failed = true;
                dispatch_record(s);
                s->cur.active = false;
            }
            return;
        }
        d->failed = 0;
        e->st.records_decrypted++;
        s->cur.active = true;
        s->cur.decrypted = true;
        s->cur.plain = e->scratch;
        s->cur.plain_len = n;
        /* Decrypted: the bound is the content length, without the padding (RFC 8446 §5.4).
         * Apps that count inspected bytes (--inspect-depth) must count plaintext: a sender
         * padding records to 2^14 with one byte of content would use up the depth at once. */
        s->cur.rec.max_plain_len = (uint32_t)n;
        s->cur.rec.type = type;
        s->cur.rec.decryptable = true;
        s->cur.rec.seq = d->k[used].seq - 1;
        s->cur.rec.epoch = d->epoch;
        s->cur.rec.early = used == K_EARLY;
        if (dir == 0 && used == K_APP && !s->hs_end_raised && s->sh_seen)
            raise_hs_end(s); /* the client's first 1-RTT record ends the handshake */
        switch (type) {
        case MMTLS_CT_HANDSHAKE: feed_handshake(s, dir, e->scratch, n); break;
        case MMTLS_CT_APPLICATION_DATA:
            count_plain(s, dir, n);
            if (e->o.tamper_len > 0 && used == K_APP)
                eng_inline_tamper(s, dir, d->k[K_APP].rp, d->k[K_APP].seq - 1, rec, off, frag_len,
                                  e->scratch, n, type);
            break;
        case MMTLS_CT_ALERT: break;
        default:
            eng_error(s, MMTLS_TLSERR_MALFORMED_RECORD, dir, off, "unexpected inner content type");
            fail_closed(s, false, "unexpected inner content type");
            break;
        }
        /* Handshake processing may have moved the phase (Finished, EndOfEarlyData). */
        dispatch_record(s);
        s->cur.active = false;
        tls13_after_record(s, dir);
        return;
    }

    /* TLS <= 1.2 */
    s->cur.rec.decryptable = d->rp12 != NULL;
    if (d->rp12 == NULL) {
        if (s->suite == NULL && s->info.cipher_suite != 0) {
            s->info.dir[dir].undecrypted_records++;
            e->st.records_undecrypted++;
            fail_closed(s, true, "a cipher suite the middlebox cannot decrypt");
        } else {
            record_failed(s, dir, DEC_NOKEY);
        }
        d->seq12++;
        s->cur.active = true;
        dispatch_record(s);
        s->cur.active = false;
        return;
    }
    s->cur.active = true;
    if (h.type < MMTLS_CT_CHANGE_CIPHER_SPEC || h.type > MMTLS_CT_HEARTBEAT) {
        eng_error(s, MMTLS_TLSERR_MALFORMED_RECORD, dir, off, "unknown record content type");
        fail_closed(s, false, "unknown record content type");
    }
    if (h.type != MMTLS_CT_APPLICATION_DATA) {
        if (tls12_open_current(s) == 0) {
            e->st.records_decrypted++;
            d->failed = 0;
            if (h.type == MMTLS_CT_HANDSHAKE)
                feed_handshake(s, dir, s->cur.plain, s->cur.plain_len);
        }
    }
    dispatch_record(s);
    /* Verify what no app asked to see (and keep the TLS 1.0 CBC IV chain intact). */
    if (!s->cur.decrypted && !s->cur.failed && (e->o.verify_all || s->version == MMTLS_TLS_V10))
        (void)tls12_open_current(s);
    if (s->cur.decrypted && h.type == MMTLS_CT_APPLICATION_DATA) {
        e->st.records_decrypted++;
        d->failed = 0;
        count_plain(s, dir, s->cur.plain_len);
    }
    if (s->cur.failed)
        record_failed(s, dir, DEC_FAIL);
    s->cur.active = false;
    d->seq12++;
    /* In a renegotiation the ChangeCipherSpec itself is protected by the current keys. */
    if (h.type == MMTLS_CT_CHANGE_CIPHER_SPEC && s->cur.decrypted) {
        if (s->cur.plain_len == 1 && s->cur.plain[0] == 1 && s->sh_seen)
            tls12_ccs(s, dir);
        else
            eng_error(s, MMTLS_TLSERR_MALFORMED_RECORD, dir, off, "malformed ChangeCipherSpec");
    }
}

bool eng_tls_rec_protected(const struct eng_session *s, int dir, const uint8_t *rec)
{
    /* TLS 1.3 protects every application_data record, including 0-RTT data sent before the
     * ServerHello (RFC 8446 §5.1, §2.3); TLS <= 1.2 everything after ChangeCipherSpec. */
    bool t13 = s->tls13 || (dir == 0 && !s->sh_seen && s->early_offered);

    return t13 ? rec[0] == MMTLS_CT_APPLICATION_DATA : s->d[dir].protected_;
}

bool eng_tls_keys_missing(const struct eng_session *s, int dir)
{
    const struct eng_tdir *d = &s->d[dir];

    if (!s->keys_found)
        return true;
    /* Only key channels deliver TLS 1.3 secrets in parts (the early secret with the
     * ClientHello, handshake secrets at the ServerHello, application secrets after the server
     * Finished); keys from a key log are all there is. */
    if ((s->ks.have & MMTLS_KS_BYPASS) || !s->from_channel)
        return false;
    /* Before the ServerHello only 0-RTT records are protected: they wait for the early
     * secret, not for just any key message (a client could send one without it). */
    if (!s->sh_seen)
        return dir == 0 && s->early_offered && !(s->ks.have & MMTLS_KS_EARLY) &&
               !d->k[K_EARLY].have;
    if (!s->tls13)
        return false;
    /* The record opens under the current phase's key or a later one (RFC 8446 §7.1). */
    for (int k = d->cur; k < K_N; k++) {
        if (d->k[k].have || d->k[k].rp != NULL)
            return false;
    }
    return true;
}

void eng_tls_replay(struct eng_session *s, int dir, const uint8_t *rec, size_t len, uint64_t off)
{
    if (!s->d[dir].dead)
        process_record(s, dir, rec, len, off);
}

void eng_tls_keys_arrived(struct eng_session *s)
{
    if (s->ks.have & MMTLS_KS_BYPASS)
        return;
    if (!s->sh_seen) {
        /* Before the ServerHello only 0-RTT can use keys; the rest waits in s->ks. */
        if ((s->ks.have & MMTLS_KS_EARLY) && s->early_offered && !s->d[0].k[K_EARLY].have) {
            s->d[0].k[K_EARLY].secret = s->ks.early;
            s->d[0].k[K_EARLY].have = true;
        }
        return;
    }
    if (s->tls13) {
        tls13_install(s);
        return;
    }
    tls12_prepare(s);
    /* A ChangeCipherSpec may have passed already (its records were held): install now. */
    for (int dir = 0; dir < 2; dir++) {
        struct eng_tdir *d = &s->d[dir];
        if (d->protected_ && d->rp12 == NULL && d->pend12 != NULL) {
            d->rp12 = d->pend12;
            d->pend12 = NULL;
        }
    }
}

/* The client's first record is a handshake record: a TLS session from here on (SESSION_START
 * waits for the ClientHello, eng_tls_session_start). */
static void session_begin(struct eng_session *s)
{
    s->started = true;
    s->start_pending = true;
    s->eng->st.flows_tls++;
    s->eng->st.sessions_started++;
}

/* Validates a record header for the session's state; false stops this direction.  Once the
 * client's first record header says handshake, a record that cannot be framed (too long,
 * empty) is a TLS session that cannot be inspected, not a flow that is not TLS: its receiver
 * may take it (OpenSSL skips an empty handshake record before the ClientHello), so inline it
 * is blocked like any other. */
static bool header_ok(struct eng_session *s, int dir, const uint8_t *p, struct mmtls_tls_hdr *h,
                      uint64_t off)
{
    struct eng_tdir *d = &s->d[dir];
    bool prot;
    size_t max;

    if (mmtls_tls_hdr_parse(p, MMTLS_TLS_HDR_LEN, h) != 0) {
        if (!s->started) {
            s->not_tls = true;
            return false;
        }
        eng_error(s, MMTLS_TLSERR_MALFORMED_RECORD, dir, off, "malformed record header");
        d->dead = true;
        fail_closed(s, false, "malformed record header: framing lost");
        return false;
    }
    if (!s->started && dir == 0 && h->type != MMTLS_CT_HANDSHAKE) {
        s->not_tls = true;
        return false;
    }
    prot = d->protected_ || h->type == MMTLS_CT_APPLICATION_DATA;
    max = mmtls_tls_max_fragment(s->version != 0 ? s->version : MMTLS_TLS_V12, prot);
    if (!s->started && (h->len > max || h->len == 0))
        session_begin(s);
    if (h->len > max) {
        eng_error(s, MMTLS_TLSERR_RECORD_OVERFLOW, dir, off,
                  "record longer than the protocol allows");
        d->dead = true;
        fail_closed(s, false, "record longer than the protocol allows");
        return false;
    }
    if (h->len == 0 && (h->type == MMTLS_CT_HANDSHAKE || h->type == MMTLS_CT_ALERT ||
                        h->type == MMTLS_CT_CHANGE_CIPHER_SPEC || s->tls13)) {
        eng_error(s, MMTLS_TLSERR_MALFORMED_RECORD, dir, off, "zero-length record");
        d->dead = true;
        fail_closed(s, false, "zero-length record");
        return false;
    }
    return true;
}

/* The first client record must carry a ClientHello: start the session.  SESSION_START itself
 * is raised once the ClientHello is parsed (its server name, fingerprints and client random are
 * then valid), or before the session's first other event when the ClientHello spans several
 * records or cannot be parsed (docs/API.md). */
static void maybe_start(struct eng_session *s, int dir, const uint8_t *rec, size_t reclen)
{
    if (s->started || dir != 0)
        return;
    if (reclen <= MMTLS_TLS_HDR_LEN || rec[MMTLS_TLS_HDR_LEN] != MMTLS_HS_CLIENT_HELLO) {
        s->not_tls = true;
        return;
    }
    session_begin(s);
}

void eng_tls_session_start(struct eng_session *s)
{
    struct mmtls_event_info ev = {.ev = MMTLS_EV_SESSION_START};

    if (!s->start_pending)
        return;
    s->start_pending = false;
    (void)eng_dispatch(s, MMTLS_EV_SESSION_START, &ev);
    raise_hs_start(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Resynchronisation after a gap                                                               */

static bool resync_try(struct eng_session *s, int dir, const uint8_t *rec, size_t reclen,
                       uint32_t *trials)
{
    struct eng_tdir *d = &s->d[dir];
    struct mmtls_rprot *rp = s->tls13 ? d->k[K_APP].rp : d->rp12;
    uint64_t base = s->tls13 ? d->k[K_APP].seq : d->seq12;
    uint64_t avg = d->avg_rec > 21 ? d->avg_rec : 16406;
    uint64_t est = d->gap_bytes / avg;
    size_t n;
    uint8_t type;

    if (rp == NULL)
        return false;
    /* Try the estimated sequence number first, then alternate around it. */
    for (uint64_t i = 0; i < 2 * est + 64 && *trials < s->eng->o.max_resync_trials; i++) {
        uint64_t delta = (i % 2 == 0) ? i / 2 : (uint64_t) - (int64_t)((i + 1) / 2);
        uint64_t seq = base + est + delta;
        if (seq < base)
            continue;
        (*trials)++;
        if ((s->tls13
                 ? tls13_open_app(s, rp, seq, rec, rec + MMTLS_TLS_HDR_LEN,
                                  reclen - MMTLS_TLS_HDR_LEN, s->eng->scratch, &n, &type)
                 : mmtls_rprot_open(rp, seq, rec, rec + MMTLS_TLS_HDR_LEN,
                                    reclen - MMTLS_TLS_HDR_LEN, s->eng->scratch, &n, &type)) == 0) {
            if (s->tls13)
                d->k[K_APP].seq = seq;
            else
                d->seq12 = seq;
            return true;
        }
    }
    return false;
}

/* Scans the resync buffer for a record boundary.  Returns true once resynchronised (the buffer
 * then starts at a record header). */
static bool resync_scan(struct eng_session *s, int dir)
{
    struct eng_tdir *d = &s->d[dir];
    uint32_t trials = 0;
    struct mmtls_buf *b = &d->rbuf;

    for (size_t i = 0; i + MMTLS_TLS_HDR_LEN <= b->len; i++) {
        struct mmtls_tls_hdr h;
        if (mmtls_tls_hdr_parse(b->p + i, b->len - i, &h) != 0)
            continue;
        /* TLS 1.3 records carry legacy_record_version 0x0303 (RFC 8446 §5.1). */
        if (h.type != MMTLS_CT_APPLICATION_DATA ||
            h.version != (s->tls13 ? MMTLS_TLS_V12 : s->version))
            continue;
        if (h.len < min_frag(s) || h.len > mmtls_tls_max_fragment(s->version, true))
            continue;
        if (i + MMTLS_TLS_HDR_LEN + h.len > b->len) {
            if (i + MMTLS_TLS_HDR_LEN + h.len <= b->max)
                return false; /* wait for the whole candidate record */
            continue;         /* cannot be completed in the buffer: not a boundary we can use */
        }
        if (resync_try(s, dir, b->p + i, MMTLS_TLS_HDR_LEN + h.len, &trials)) {
            d->next_off += i;
            mmtls_buf_consume(b, i);
            return true;
        }
        if (trials >= s->eng->o.max_resync_trials)
            break;
    }
    if (trials >= s->eng->o.max_resync_trials || b->len >= b->max - ENG_REC_MAX) {
        eng_error(s, MMTLS_TLSERR_RESYNC_FAILED, dir, d->next_off,
                  "no record boundary recovered after a gap");
        d->dead = true;
        mmtls_buf_fini(b, true);
    }
    return false;
}

void eng_tls_gap(struct eng_session *s, int dir, uint64_t off, uint64_t len)
{
    struct eng_tdir *d = &s->d[dir];

    if (s->not_tls || d->dead)
        return;
    eng_error(s, MMTLS_TLSERR_GAP, dir, off, "bytes missing from the TCP stream");
    d->rbuf.len = 0;
    d->next_off = off + len;
    /* Within the handshake, or without decryption keys, framing cannot be verified again. */
    if (!d->protected_ && !s->tls13) {
        d->dead = true;
        return;
    }
    if (s->tls13 && d->k[K_APP].rp == NULL) {
        d->dead = true;
        return;
    }
    /* TLS 1.0 CBC chains IVs across records: no recovery after a loss. */
    if (!s->tls13 && (d->rp12 == NULL || s->version == MMTLS_TLS_V10)) {
        d->dead = true;
        return;
    }
    d->resync = true;
    d->gap_bytes = len;
}

/* ------------------------------------------------------------------------------------------ */
/* Stream input                                                                                */

static void frame(struct eng_session *s, int dir, uint64_t off, const uint8_t *p, size_t len)
{
    struct eng_tdir *d = &s->d[dir];
    struct mmtls_tls_hdr h;

    while (len > 0 && !d->dead && !s->not_tls && !s->info.blocked) {
        if (d->rbuf.len == 0) {
            size_t need;
            if (len < MMTLS_TLS_HDR_LEN)
                goto stash;
            if (!header_ok(s, dir, p, &h, off))
                return;
            need = MMTLS_TLS_HDR_LEN + (size_t)h.len;
            if (len < need)
                goto stash;
            maybe_start(s, dir, p, need);
            if (s->not_tls)
                return;
            d->next_off = off;
            process_record(s, dir, p, need, off);
            d->avg_rec = (d->avg_rec * 7 + need) / 8;
            d->next_off = off + need;
            p += need;
            off += need;
            len -= need;
            continue;
        }
        /* Slow path: complete the buffered record. */
        if (d->rbuf.len < MMTLS_TLS_HDR_LEN) {
            size_t take = MMTLS_MIN(MMTLS_TLS_HDR_LEN - d->rbuf.len, len);
            if (mmtls_buf_append(&d->rbuf, p, take) != 0)
                goto nomem;
            p += take;
            off += take;
            len -= take;
            if (d->rbuf.len < MMTLS_TLS_HDR_LEN)
                return;
        }
        if (!header_ok(s, dir, d->rbuf.p, &h, d->next_off))
            return;
        {
            size_t need = MMTLS_TLS_HDR_LEN + (size_t)h.len;
            size_t take = MMTLS_MIN(need - d->rbuf.len, len);
            if (mmtls_buf_append(&d->rbuf, p, take) != 0)
                goto nomem;
            p += take;
            off += take;
            len -= take;
            if (d->rbuf.len == need) {
                uint64_t roff = d->next_off;
                maybe_start(s, dir, d->rbuf.p, need);
                if (s->not_tls)
                    return;
                process_record(s, dir, d->rbuf.p, need, roff);
                d->avg_rec = (d->avg_rec * 7 + need) / 8;
                d->next_off = roff + need;
                d->rbuf.len = 0;
            }
        }
    }
    return;
stash:
    d->next_off = off;
    if (mmtls_buf_append(&d->rbuf, p, len) != 0)
        goto nomem;
    return;
nomem:
    eng_error(s, MMTLS_TLSERR_MEMCAP, dir, off, "record buffer allocation failed");
    d->dead = true;
}

void eng_plain_start(struct eng_session *s)
{
    struct mmtls_event_info ev = {.ev = MMTLS_EV_SESSION_START};

    s->plain = true;
    s->info.plain = true;
    s->started = true;
    s->eng->st.flows_plain++;
    (void)eng_dispatch(s, MMTLS_EV_SESSION_START, &ev);
}

/* A plain session's bytes: records of at most 16 KB, not encrypted (apps read them with
 * mmtls_record_plaintext as any other); pause_monitor skips them by length. */
static void plain_data(struct eng_session *s, int dir, uint64_t off, const uint8_t *p, size_t len)
{
    struct eng_tdir *d = &s->d[dir];

    while (len > 0 && !s->info.blocked) {
        size_t n = MMTLS_MIN(len, (size_t)MMTLS_TLS_MAX_PLAINTEXT);
        if (d->pause_left >= n) {
            if (d->pause_left != UINT64_MAX)
                d->pause_left -= n;
            s->info.dir[dir].skipped_bytes += n;
            s->eng->st.records_skipped++;
        } else {
            d->pause_left = 0;
            memset(&s->cur, 0, sizeof(s->cur));
            s->cur.rec.dir = (enum mmtls_dir)dir;
            s->cur.rec.outer_type = MMTLS_CT_APPLICATION_DATA;
            s->cur.rec.type = MMTLS_CT_APPLICATION_DATA;
            s->cur.rec.wire_len = (uint32_t)n;
            s->cur.rec.max_plain_len = (uint32_t)n;
            s->cur.rec.stream_off = off;
            s->cur.rec.decryptable = true;
            s->cur.frag = p;
            s->cur.frag_len = n;
            s->cur.plain = p;
            s->cur.plain_len = n;
            s->cur.active = true;
            s->info.dir[dir].records++;
            s->info.dir[dir].wire_bytes += n;
            s->info.dir[dir].app_records++;
            s->info.dir[dir].plain_bytes += n;
            s->eng->st.plain_bytes += n;
            dispatch_record(s);
            s->cur.active = false;
        }
        p += n;
        off += n;
        len -= n;
    }
}

void eng_tls_data(struct eng_session *s, int dir, uint64_t off, const uint8_t *p, size_t len)
{
    struct eng_tdir *d = &s->d[dir];

    if (s->plain) {
        plain_data(s, dir, off, p, len);
        return;
    }
    /* inspect_plain: a client whose first byte cannot start a TLS handshake record (RFC 8446
     * §5.1: content type 22) is a plain stream, decided before any byte is consumed. */
    if (!s->started && dir == 0 && off == 0 && len > 0 && p[0] != MMTLS_CT_HANDSHAKE &&
        s->eng->o.inspect_plain) {
        eng_plain_start(s);
        plain_data(s, dir, off, p, len);
        return;
    }
    if (s->not_tls || d->dead || s->info.blocked)
        return;
    if (!s->started && dir == 1) {
        s->not_tls = true; /* the server spoke before any ClientHello */
        return;
    }
    if (!d->resync) {
        frame(s, dir, off, p, len);
        return;
    }
    /* Resynchronising: collect bytes until a record boundary verifies, then frame from there
     * (the buffered bytes first, then whatever of this delivery did not fit). */
    while (len > 0 && d->resync && !d->dead) {
        size_t take = MMTLS_MIN(len, d->rbuf.max - d->rbuf.len);
        if (take == 0 || mmtls_buf_append(&d->rbuf, p, take) != 0) {
            eng_error(s, MMTLS_TLSERR_RESYNC_FAILED, dir, d->next_off,
                      "no record boundary recovered after a gap");
            d->dead = true;
            mmtls_buf_fini(&d->rbuf, true);
            return;
        }
        p += take;
        off += take;
        len -= take;
        if (resync_scan(s, dir)) {
            struct mmtls_buf tmp = d->rbuf;
            uint64_t start = d->next_off;
            d->resync = false;
            d->rbuf = (struct mmtls_buf){.max = tmp.max};
            frame(s, dir, start, tmp.p, tmp.len);
            mmtls_buf_fini(&tmp, true);
        }
    }
    if (len > 0 && !d->resync && !d->dead)
        frame(s, dir, off, p, len);
}
