/* keys_proto — the key protocol v1 codec (docs/keyproto.md): framing, KEYS, BYPASS, KEEPALIVE.
 * The parser and the encoder share one set of rules (kind_ok, secret_len_ok, flags masks), so
 * whatever the encoder writes parses back to the same message and whatever parses re-encodes
 * to the same bytes (the encoding is canonical).  Pure: no allocation, no logging.
 */
#include "keys/keys.h"

#define KP_TLS_MIN 0x0301 /* TLS 1.0 */
#define KP_TLS13 0x0304

#define KP_KEYS_FLAGS (MMTLS_KP_F_TUPLE | MMTLS_KP_F_TAG2 | MMTLS_KP_F_EARLY | MMTLS_KP_F_KEYLOG)
#define KP_BYPASS_FLAGS MMTLS_KP_F_TUPLE

/* ------------------------------------------------------------------------------------------ */
/* Rules shared by the parser and the encoder                                                  */

/* docs/keyproto.md, KEYS table: may `kind` appear in a message with this version and flags?
 * 1-5 only with TLS 1.3 (1 only with EARLY); 16-21 only with TLS <= 1.2; 32 only with TLS <= 1.2
 * and KEYLOG.  Unknown kinds are never allowed. */
static bool kind_ok(uint8_t kind, uint16_t tls_version, uint8_t flags)
{
    bool tls13 = tls_version == KP_TLS13;

    switch (kind) {
    case MMTLS_KP_CLIENT_EARLY: return tls13 && (flags & MMTLS_KP_F_EARLY) != 0;
    case MMTLS_KP_CLIENT_HS:
    case MMTLS_KP_SERVER_HS:
    case MMTLS_KP_CLIENT_APP0:
    case MMTLS_KP_SERVER_APP0: return tls13;
    case MMTLS_KP_CLIENT_MAC:
    case MMTLS_KP_SERVER_MAC:
    case MMTLS_KP_CLIENT_KEY:
    case MMTLS_KP_SERVER_KEY:
    case MMTLS_KP_CLIENT_IV:
    case MMTLS_KP_SERVER_IV: return !tls13;
    case MMTLS_KP_MASTER: return !tls13 && (flags & MMTLS_KP_F_KEYLOG) != 0;
    default: return false;
    }
}

/* docs/keyproto.md, KEYS table: the lengths each kind may have.  `kind` passed kind_ok. */
static bool secret_len_ok(uint8_t kind, size_t len)
{
    switch (kind) {
    case MMTLS_KP_CLIENT_EARLY:
    case MMTLS_KP_CLIENT_HS:
    case MMTLS_KP_SERVER_HS:
    case MMTLS_KP_CLIENT_APP0:
    case MMTLS_KP_SERVER_APP0: return len == 32 || len == 48; /* SHA-256 or SHA-384 suites */
    case MMTLS_KP_CLIENT_MAC:
    case MMTLS_KP_SERVER_MAC: return len >= 1 && len <= 48;
    case MMTLS_KP_CLIENT_KEY:
    case MMTLS_KP_SERVER_KEY: return len >= 1 && len <= 32;
    case MMTLS_KP_CLIENT_IV:
    case MMTLS_KP_SERVER_IV: return len >= 1 && len <= 16;
    case MMTLS_KP_MASTER: return len == 48; /* RFC 5246 §8.1 */
    default: return false;
    }
}

static bool tls_version_ok(uint16_t v)
{
    return v >= KP_TLS_MIN && v <= KP_TLS13;
}

static size_t addr_len(uint8_t ip_version)
{
    return ip_version == 4 ? 4 : 16;
}

/* ------------------------------------------------------------------------------------------ */
/* Parser                                                                                      */

static int tuple_parse(struct mmtls_cur *c, struct mmtls_kp_tuple *t)
{
    struct mmtls_slice a;
    size_t alen;

    MMTLS_TRY(mmtls_cur_u8(c, &t->ip_version));
    if (t->ip_version != 4 && t->ip_version != 6) {
        return MMTLS_E_MALFORMED;
    }
    alen = addr_len(t->ip_version);
    MMTLS_TRY(mmtls_cur_bytes(c, alen, &a));
    memcpy(t->client_ip, a.p, alen);
    MMTLS_TRY(mmtls_cur_bytes(c, alen, &a));
    memcpy(t->server_ip, a.p, alen);
    MMTLS_TRY(mmtls_cur_u16(c, &t->client_port));
    MMTLS_TRY(mmtls_cur_u16(c, &t->server_port));
    return 0;
}

/* client_random, flags and (when flagged) the tuple: the head of KEYS and BYPASS. */
static int head_parse(struct mmtls_cur *c, uint8_t allowed_flags, struct mmtls_kp_msg *m)
{
    struct mmtls_slice cr;

    MMTLS_TRY(mmtls_cur_bytes(c, sizeof(m->client_random), &cr));
    memcpy(m->client_random, cr.p, sizeof(m->client_random));
    MMTLS_TRY(mmtls_cur_u8(c, &m->flags));
    if ((m->flags & ~allowed_flags) != 0) { /* "other bits MUST be 0" */
        return MMTLS_E_MALFORMED;
    }
    if ((m->flags & MMTLS_KP_F_TUPLE) != 0) {
        MMTLS_TRY(tuple_parse(c, &m->tuple));
    }
    return 0;
}

static int keys_parse(struct mmtls_cur *c, struct mmtls_kp_msg *m)
{
    uint64_t seen = 0; /* bit per kind (kinds allowed are < 64) */

    MMTLS_TRY(head_parse(c, KP_KEYS_FLAGS, m));
    MMTLS_TRY(mmtls_cur_u16(c, &m->tls_version));
    if (!tls_version_ok(m->tls_version)) {
        return MMTLS_E_MALFORMED;
    }
    MMTLS_TRY(mmtls_cur_u16(c, &m->cipher_suite));
    MMTLS_TRY(mmtls_cur_u8(c, &m->n));
    if (m->n < 1 || m->n > MMTLS_KP_MAX_SECRETS) { /* the loop below is capped by this */
        return MMTLS_E_MALFORMED;
    }
    for (uint8_t i = 0; i < m->n; i++) {
        struct mmtls_slice v;
        uint8_t kind, len;

        MMTLS_TRY(mmtls_cur_u8(c, &kind));
        MMTLS_TRY(mmtls_cur_u8(c, &len));
        if (!kind_ok(kind, m->tls_version, m->flags) || !secret_len_ok(kind, len)) {
            return MMTLS_E_MALFORMED;
        }
        if ((seen >> kind & 1) != 0) { /* "Each kind appears at most once" */
            return MMTLS_E_MALFORMED;
        }
        seen |= (uint64_t)1 << kind;
        MMTLS_TRY(mmtls_cur_bytes(c, len, &v));
        m->kind[i] = kind;
        m->secret[i].len = len;
        memcpy(m->secret[i].b, v.p, len);
    }
    return 0;
}

static int bypass_parse(struct mmtls_cur *c, struct mmtls_kp_msg *m)
{
    struct mmtls_slice sni;

    MMTLS_TRY(head_parse(c, KP_BYPASS_FLAGS, m));
    MMTLS_TRY(mmtls_cur_u8(c, &m->sni_len));
    MMTLS_TRY(mmtls_cur_bytes(c, m->sni_len, &sni));
    memcpy(m->sni, sni.p, sni.len); /* sni_len <= 255 < sizeof(m->sni) */
    m->sni[sni.len] = '\0';
    return 0;
}

static int body_parse(struct mmtls_cur body, struct mmtls_kp_msg *m)
{
    switch (m->type) {
    case MMTLS_KP_KEYS: MMTLS_TRY(keys_parse(&body, m)); break;
    case MMTLS_KP_BYPASS: MMTLS_TRY(bypass_parse(&body, m)); break;
    case MMTLS_KP_KEEPALIVE: /* empty body */ break;
    default: return MMTLS_E_MALFORMED;
    }
    /* "a body that does not parse exactly": trailing bytes are malformed */
    return mmtls_cur_done(&body);
}

int mmtls_kp_parse(const uint8_t *p, size_t len, struct mmtls_kp_msg *m, size_t *used)
{
    struct mmtls_cur c = mmtls_cur_make(p, len);
    struct mmtls_cur body;
    uint8_t version, type;
    uint16_t blen;
    int rc;

    memset(m, 0, sizeof(*m));
    *used = 0;
    if (MMTLS_KP_HDR_LEN > mmtls_cur_left(&c)) {
        *used = MMTLS_KP_HDR_LEN;
        return MMTLS_AGAIN;
    }
    /* The header is judged as soon as it is there, so a channel never waits for the body of a
     * message it is going to reject. */
    MMTLS_TRY(mmtls_cur_u8(&c, &version));
    MMTLS_TRY(mmtls_cur_u8(&c, &type));
    MMTLS_TRY(mmtls_cur_u16(&c, &blen));
    if (version != MMTLS_KP_VERSION) {
        return MMTLS_E_UNSUPPORTED;
    }
    if (type != MMTLS_KP_KEYS && type != MMTLS_KP_BYPASS && type != MMTLS_KP_KEEPALIVE) {
        return MMTLS_E_MALFORMED;
    }
    if (blen > MMTLS_KP_MAX_BODY) {
        return MMTLS_E_MALFORMED;
    }
    if (blen > mmtls_cur_left(&c)) {
        *used = MMTLS_KP_HDR_LEN + (size_t)blen;
        return MMTLS_AGAIN;
    }
    body = mmtls_cur_make(c.p, blen);
    m->type = (enum mmtls_kp_type)type;
    rc = body_parse(body, m);
    if (rc != 0) {
        mmtls_kp_msg_wipe(m); /* secrets copied before the failure */
        return rc < 0 ? rc : MMTLS_E_MALFORMED;
    }
    *used = MMTLS_KP_HDR_LEN + (size_t)blen;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Encoder                                                                                     */

/* Checks *m against the same rules as the parser and returns its body length, or
 * MMTLS_E_INVAL. */
static int body_len(const struct mmtls_kp_msg *m, size_t *blen)
{
    size_t n = 0;

    if (m->type == MMTLS_KP_KEEPALIVE) {
        *blen = 0;
        return 0;
    }
    if (m->type != MMTLS_KP_KEYS && m->type != MMTLS_KP_BYPASS) {
        return MMTLS_E_INVAL;
    }
    if ((m->flags & ~(m->type == MMTLS_KP_KEYS ? KP_KEYS_FLAGS : KP_BYPASS_FLAGS)) != 0) {
        return MMTLS_E_INVAL;
    }
    n += sizeof(m->client_random) + 1;
    if ((m->flags & MMTLS_KP_F_TUPLE) != 0) {
        if (m->tuple.ip_version != 4 && m->tuple.ip_version != 6) {
            return MMTLS_E_INVAL;
        }
        n += 1 + 2 * addr_len(m->tuple.ip_version) + 4;
    }
    if (m->type == MMTLS_KP_BYPASS) {
        n += 1 + (size_t)m->sni_len;
    } else {
        uint64_t seen = 0;

        if (!tls_version_ok(m->tls_version) || m->n < 1 || m->n > MMTLS_KP_MAX_SECRETS) {
            return MMTLS_E_INVAL;
        }
        n += 2 + 2 + 1;
        for (uint8_t i = 0; i < m->n; i++) {
            uint8_t kind = m->kind[i];

            if (!kind_ok(kind, m->tls_version, m->flags) ||
                !secret_len_ok(kind, m->secret[i].len) || (seen >> kind & 1) != 0) {
                return MMTLS_E_INVAL;
            }
            seen |= (uint64_t)1 << kind;
            n += 2 + (size_t)m->secret[i].len;
        }
    }
    if (n > MMTLS_KP_MAX_BODY) { /* cannot happen with the rules above; kept as the limit */
        return MMTLS_E_INVAL;
    }
    *blen = n;
    return 0;
}

static uint8_t *put_bytes(uint8_t *w, const void *p, size_t n)
{
    memcpy(w, p, n);
    return w + n;
}

static uint8_t *put_u16(uint8_t *w, uint16_t v)
{
    mmtls_put_be16(w, v);
    return w + 2;
}

int mmtls_kp_encode(const struct mmtls_kp_msg *m, uint8_t *out, size_t out_cap)
{
    size_t blen = 0;
    uint8_t *w = out;
    int rc;

    rc = body_len(m, &blen);
    if (rc != 0) {
        return rc;
    }
    if (MMTLS_KP_HDR_LEN + blen > out_cap) {
        return MMTLS_E_LIMIT;
    }
    *w++ = MMTLS_KP_VERSION;
    *w++ = (uint8_t)m->type;
    w = put_u16(w, (uint16_t)blen);
    if (m->type == MMTLS_KP_KEEPALIVE) {
        return MMTLS_KP_HDR_LEN;
    }
    w = put_bytes(w, m->client_random, sizeof(m->client_random));
    *w++ = m->flags;
    if ((m->flags & MMTLS_KP_F_TUPLE) != 0) {
        size_t alen = addr_len(m->tuple.ip_version);

        *w++ = m->tuple.ip_version;
        w = put_bytes(w, m->tuple.client_ip, alen);
        w = put_bytes(w, m->tuple.server_ip, alen);
        w = put_u16(w, m->tuple.client_port);
        w = put_u16(w, m->tuple.server_port);
    }
    if (m->type == MMTLS_KP_BYPASS) {
        *w++ = m->sni_len;
        w = put_bytes(w, m->sni, m->sni_len);
    } else {
        w = put_u16(w, m->tls_version);
        w = put_u16(w, m->cipher_suite);
        *w++ = m->n;
        for (uint8_t i = 0; i < m->n; i++) {
            *w++ = m->kind[i];
            *w++ = m->secret[i].len;
            w = put_bytes(w, m->secret[i].b, m->secret[i].len);
        }
    }
    if ((size_t)(w - out) != MMTLS_KP_HDR_LEN + blen) {
        MMTLS_DEBUG_ASSERT(0);
        mmtls_wipe(out, (size_t)(w - out));
        return MMTLS_E_INTERNAL;
    }
    return (int)(w - out);
}

void mmtls_kp_msg_wipe(struct mmtls_kp_msg *m)
{
    mmtls_wipe(m, sizeof(*m));
}

/* ------------------------------------------------------------------------------------------ */
/* KEYS -> keyset                                                                              */

/* Clears every field of ks that this module fills; the owner fields stay as the caller set
 * them. */
static void keyset_clear(struct mmtls_keyset *ks)
{
    ks->have = 0;
    ks->cts_have = 0;
    ks->sts_have = 0;
    mmtls_secret_wipe(&ks->master);
    mmtls_secret_wipe(&ks->early);
    mmtls_secret_wipe(&ks->chs);
    mmtls_secret_wipe(&ks->shs);
    mmtls_wipe(ks->cts, sizeof(ks->cts));
    mmtls_wipe(ks->sts, sizeof(ks->sts));
    mmtls_wipe(&ks->kb, sizeof(ks->kb));
    ks->tls_version = 0;
    ks->cipher_suite = 0;
    ks->tag2 = false;
}

static void secret_set(struct mmtls_secret *dst, const struct mmtls_secret *src)
{
    dst->len = src->len;
    memcpy(dst->b, src->b, src->len);
}

/* One part of the key block: both directions present with the same length, or neither.
 * `max` is the size of the slots. */
static int kb_part(const struct mmtls_secret *cl, const struct mmtls_secret *sv, uint8_t *len,
                   uint8_t *dst0, uint8_t *dst1, size_t max)
{
    if (cl == NULL && sv == NULL) {
        *len = 0;
        return 0;
    }
    if (cl == NULL || sv == NULL || cl->len != sv->len || cl->len > max) {
        return MMTLS_E_MALFORMED;
    }
    *len = cl->len;
    memcpy(dst0, cl->b, cl->len);
    memcpy(dst1, sv->b, sv->len);
    return 0;
}

static int keys_to_keyset(const struct mmtls_kp_msg *m, struct mmtls_keyset *ks)
{
    const struct mmtls_secret *tls12[6] = {NULL}; /* kinds 16 .. 21 */
    bool any12 = false;
    uint8_t tls13_len = 0;
    struct mmtls_key_block *kb = &ks->kb;

    for (uint8_t i = 0; i < m->n; i++) {
        const struct mmtls_secret *s = &m->secret[i];
        uint8_t kind = m->kind[i];

        /* RFC 8446 §7.1: every secret of a session has the length of the suite's hash. */
        if (kind >= MMTLS_KP_CLIENT_EARLY && kind <= MMTLS_KP_SERVER_APP0) {
            if (tls13_len != 0 && s->len != tls13_len) {
                return MMTLS_E_MALFORMED;
            }
            tls13_len = s->len;
        }
        switch (kind) {
        case MMTLS_KP_CLIENT_EARLY:
            secret_set(&ks->early, s);
            ks->have |= MMTLS_KS_EARLY;
            break;
        case MMTLS_KP_CLIENT_HS:
            secret_set(&ks->chs, s);
            ks->have |= MMTLS_KS_CHS;
            break;
        case MMTLS_KP_SERVER_HS:
            secret_set(&ks->shs, s);
            ks->have |= MMTLS_KS_SHS;
            break;
        case MMTLS_KP_CLIENT_APP0:
            secret_set(&ks->cts[0], s);
            ks->cts_have |= 1u;
            break;
        case MMTLS_KP_SERVER_APP0:
            secret_set(&ks->sts[0], s);
            ks->sts_have |= 1u;
            break;
        case MMTLS_KP_MASTER:
            secret_set(&ks->master, s);
            ks->have |= MMTLS_KS_MASTER;
            break;
        case MMTLS_KP_CLIENT_MAC:
        case MMTLS_KP_SERVER_MAC:
        case MMTLS_KP_CLIENT_KEY:
        case MMTLS_KP_SERVER_KEY:
        case MMTLS_KP_CLIENT_IV:
        case MMTLS_KP_SERVER_IV:
            tls12[kind - MMTLS_KP_CLIENT_MAC] = s;
            any12 = true;
            break;
        default: return MMTLS_E_MALFORMED;
        }
    }
    if (!any12) {
        return 0; /* TLS 1.3 secrets or a master secret only */
    }
    /* RFC 5246 §6.3: the key block has a client and a server write part of each length; the
     * write keys are always there (MAC keys are absent for AEAD suites, IVs for TLS 1.1+ CBC). */
    if (tls12[MMTLS_KP_CLIENT_KEY - MMTLS_KP_CLIENT_MAC] == NULL) {
        return MMTLS_E_MALFORMED;
    }
    MMTLS_TRY(
        kb_part(tls12[0], tls12[1], &kb->mac_len, kb->mac[0], kb->mac[1], sizeof(kb->mac[0])));
    MMTLS_TRY(
        kb_part(tls12[2], tls12[3], &kb->key_len, kb->key[0], kb->key[1], sizeof(kb->key[0])));
    MMTLS_TRY(kb_part(tls12[4], tls12[5], &kb->iv_len, kb->iv[0], kb->iv[1], sizeof(kb->iv[0])));
    ks->have |= MMTLS_KS_KEY_BLOCK;
    return 0;
}

int mmtls_kp_to_keyset(const struct mmtls_kp_msg *m, struct mmtls_keyset *ks)
{
    size_t blen;
    int rc;

    keyset_clear(ks);
    /* A message built by hand gets the parser's checks too. */
    if (m->type != MMTLS_KP_KEYS || body_len(m, &blen) != 0) {
        return MMTLS_E_INVAL;
    }
    rc = keys_to_keyset(m, ks);
    if (rc != 0) {
        keyset_clear(ks);
        return rc;
    }
    ks->tls_version = m->tls_version;
    ks->cipher_suite = m->cipher_suite;
    ks->tag2 = (m->flags & MMTLS_KP_F_TAG2) != 0;
    return 0;
}
