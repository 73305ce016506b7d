/* tls_hello — ClientHello, ServerHello (and HelloRetryRequest) and EncryptedExtensions
 * parsers (RFC 8446 §4.1.2, §4.1.3, §4.3.1; RFC 5246 §7.4.1.2, §7.4.1.3).
 *
 * Pure functions: the input is a handshake message body, the output borrows it.  Each vector
 * is opened with mmtls_cur_vec and checked to be consumed exactly (mmtls_cur_done).  Every loop
 * over peer data consumes at least one byte per turn of a vector of at most 2^16 bytes, and the
 * extension loops are also capped at MMTLS_TLS_MAX_EXTS.
 */
#include "tls/tls.h"

static const uint8_t no_bytes[1];

/* A cursor over a message body.  A NULL body reads as empty: offsetting NULL, even by 0, is
 * undefined behaviour. */
static struct mmtls_cur body_cur(const uint8_t *body, size_t len)
{
    if (body == NULL) {
        return mmtls_cur_make(no_bytes, 0);
    }
    return mmtls_cur_make(body, len);
}

#define TLS_RANDOM_LEN 32
#define TLS_SESSION_ID_MAX 32 /* RFC 5246 §7.4.1.2: opaque SessionID<0..32> */

/* RFC 8446 §4.1.3: a HelloRetryRequest is a ServerHello whose random is
 * SHA-256("HelloRetryRequest"). */
static const uint8_t hrr_random[TLS_RANDOM_LEN] = {
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

/* Records an extension type in order.  RFC 8446 §4.2: "There MUST NOT be more than one
 * extension of the same type in a given extension block"; more than MMTLS_TLS_MAX_EXTS
 * extensions is treated as malformed too (it also caps the extension loops). */
MMTLS_MUST_USE static int ext_record(uint16_t *types, uint8_t *n, uint16_t type)
{
    for (uint8_t i = 0; i < *n; i++) {
        if (types[i] == type) {
            return MMTLS_E_MALFORMED;
        }
    }
    if (*n >= MMTLS_TLS_MAX_EXTS) {
        return MMTLS_E_MALFORMED;
    }
    types[(*n)++] = type;
    return 0;
}

/* Opens the session_id vector (<0..32>) shared by both hellos. */
MMTLS_MUST_USE static int session_id_parse(struct mmtls_cur *c, struct mmtls_slice *sid)
{
    struct mmtls_cur v;

    MMTLS_TRY(mmtls_cur_vec(c, 1, &v));
    if (mmtls_cur_left(&v) > TLS_SESSION_ID_MAX) {
        return MMTLS_E_MALFORMED;
    }
    *sid = mmtls_cur_rest(&v);
    return 0;
}

/* A vector of u16 values with an n-byte length: non-empty and of even length.  Used for
 * supported_groups (RFC 8446 §4.2.7), signature_algorithms (§4.2.3) and supported_versions
 * (§4.2.1).  Consumes all of ext. */
MMTLS_MUST_USE static int u16_list_parse(struct mmtls_cur ext, unsigned n, struct mmtls_slice *out)
{
    struct mmtls_cur v;

    MMTLS_TRY(mmtls_cur_vec(&ext, n, &v));
    MMTLS_TRY(mmtls_cur_done(&ext));
    if (mmtls_cur_left(&v) < 2 || mmtls_cur_left(&v) % 2 != 0) {
        return MMTLS_E_MALFORMED;
    }
    *out = mmtls_cur_rest(&v);
    return 0;
}

/* Extensions that must carry no data (early_data in hellos, encrypt_then_mac RFC 7366 §2,
 * extended_master_secret RFC 7627 §5.1). */
MMTLS_MUST_USE static int empty_parse(struct mmtls_cur ext)
{
    return mmtls_cur_done(&ext);
}

/* RFC 5746 §3.2: opaque renegotiated_connection<0..255>. */
MMTLS_MUST_USE static int reneg_parse(struct mmtls_cur ext)
{
    struct mmtls_cur v;

    MMTLS_TRY(mmtls_cur_vec(&ext, 1, &v));
    return mmtls_cur_done(&ext);
}

/* RFC 6066 §3: ServerNameList server_name_list<1..2^16-1>, entries {NameType u8,
 * HostName opaque<1..2^16-1>}.  Takes the first host_name.  Other name types were never
 * defined; they are read with the same u16 length, as every deployed implementation does. */
MMTLS_MUST_USE static int sni_parse(struct mmtls_cur ext, struct mmtls_tls_client_hello *ch)
{
    struct mmtls_cur list, name;
    uint8_t type;

    MMTLS_TRY(mmtls_cur_vec(&ext, 2, &list));
    MMTLS_TRY(mmtls_cur_done(&ext));
    if (mmtls_cur_left(&list) == 0) {
        return MMTLS_E_MALFORMED;
    }
    while (mmtls_cur_left(&list) > 0) { /* >= 3 bytes per turn */
        MMTLS_TRY(mmtls_cur_u8(&list, &type));
        MMTLS_TRY(mmtls_cur_vec(&list, 2, &name));
        if (mmtls_cur_left(&name) == 0) {
            return MMTLS_E_MALFORMED;
        }
        if (type == 0 && !ch->has_sni) {
            ch->has_sni = true;
            ch->sni = mmtls_cur_rest(&name); /* borrowed: any length up to 2^16-1 */
        }
    }
    return 0;
}

/* RFC 7301 §3.1: ProtocolNameList protocol_name_list<2..2^16-1>, each ProtocolName
 * opaque<1..2^8-1>.  Hands back the raw list contents. */
MMTLS_MUST_USE static int alpn_list_parse(struct mmtls_cur ext, struct mmtls_slice *raw,
                                          unsigned *count)
{
    struct mmtls_cur list, name;
    unsigned n = 0;

    MMTLS_TRY(mmtls_cur_vec(&ext, 2, &list));
    MMTLS_TRY(mmtls_cur_done(&ext));
    raw->p = list.p;
    raw->len = mmtls_cur_left(&list);
    if (raw->len == 0) {
        return MMTLS_E_MALFORMED;
    }
    while (mmtls_cur_left(&list) > 0) { /* >= 2 bytes per turn */
        MMTLS_TRY(mmtls_cur_vec(&list, 1, &name));
        if (mmtls_cur_left(&name) == 0) {
            return MMTLS_E_MALFORMED; /* empty names are prohibited */
        }
        n++;
    }
    *count = n;
    return 0;
}

/* RFC 7301 §3.1: the server's list "MUST contain exactly one ProtocolName".  Hands back the
 * name itself (without its length byte). */
MMTLS_MUST_USE static int alpn_selected_parse(struct mmtls_cur ext, struct mmtls_slice *name)
{
    struct mmtls_slice raw;
    unsigned n;

    MMTLS_TRY(alpn_list_parse(ext, &raw, &n));
    if (n != 1) {
        return MMTLS_E_MALFORMED;
    }
    name->p = raw.p + 1;
    name->len = raw.len - 1;
    return 0;
}

/* RFC 8446 §4.2.1: ProtocolVersion versions<2..254> in the ClientHello. */
MMTLS_MUST_USE static int ch_versions_parse(struct mmtls_cur ext, struct mmtls_tls_client_hello *ch)
{
    struct mmtls_cur v;
    uint16_t ver, best = 0;

    MMTLS_TRY(u16_list_parse(ext, 1, &ch->supported_versions));
    v = mmtls_cur_make(ch->supported_versions.p, ch->supported_versions.len);
    while (mmtls_cur_left(&v) > 0) { /* <= 127 turns */
        MMTLS_TRY(mmtls_cur_u16(&v, &ver));
        if (!mmtls_tls_is_grease(ver) && ver > best) {
            best = ver;
        }
    }
    if (best != 0) {
        ch->max_version = best;
    }
    return 0;
}

/* RFC 8446 §4.2.8: KeyShareEntry client_shares<0..2^16-1>, entries {NamedGroup u16,
 * key_exchange opaque<1..2^16-1>}.  An empty list is valid (the client asks for an HRR).
 * Groups past MMTLS_TLS_MAX_GROUPS are validated but not recorded. */
MMTLS_MUST_USE static int ch_key_share_parse(struct mmtls_cur ext,
                                             struct mmtls_tls_client_hello *ch)
{
    struct mmtls_cur list, kx;
    uint16_t group;

    MMTLS_TRY(mmtls_cur_vec(&ext, 2, &list));
    MMTLS_TRY(mmtls_cur_done(&ext));
    while (mmtls_cur_left(&list) > 0) { /* >= 5 bytes per turn */
        MMTLS_TRY(mmtls_cur_u16(&list, &group));
        MMTLS_TRY(mmtls_cur_vec(&list, 2, &kx));
        if (mmtls_cur_left(&kx) == 0) {
            return MMTLS_E_MALFORMED;
        }
        if (ch->n_key_share < MMTLS_TLS_MAX_GROUPS) {
            ch->key_share_groups[ch->n_key_share++] = group;
        }
    }
    return 0;
}

/* RFC 8446 §4.2.11: OfferedPsks { PskIdentity identities<7..2^16-1>;
 * PskBinderEntry binders<33..2^16-1>; }, PskIdentity {opaque identity<1..2^16-1>;
 * uint32 obfuscated_ticket_age;}, PskBinderEntry opaque<32..255>.  There must be one binder
 * per identity. */
MMTLS_MUST_USE static int ch_psk_parse(struct mmtls_cur ext, struct mmtls_tls_client_hello *ch)
{
    struct mmtls_cur ids, binders, v;
    uint32_t age;
    uint16_t n_ids = 0, n_binders = 0;

    MMTLS_TRY(mmtls_cur_vec(&ext, 2, &ids));
    MMTLS_TRY(mmtls_cur_vec(&ext, 2, &binders));
    MMTLS_TRY(mmtls_cur_done(&ext));
    if (mmtls_cur_left(&ids) == 0 || mmtls_cur_left(&binders) == 0) {
        return MMTLS_E_MALFORMED;
    }
    while (mmtls_cur_left(&ids) > 0) { /* >= 7 bytes per turn: n_ids stays < 2^16 */
        MMTLS_TRY(mmtls_cur_vec(&ids, 2, &v));
        if (mmtls_cur_left(&v) == 0) {
            return MMTLS_E_MALFORMED;
        }
        MMTLS_TRY(mmtls_cur_u32(&ids, &age));
        n_ids++;
    }
    while (mmtls_cur_left(&binders) > 0) { /* >= 33 bytes per turn */
        MMTLS_TRY(mmtls_cur_vec(&binders, 1, &v));
        if (mmtls_cur_left(&v) < 32) {
            return MMTLS_E_MALFORMED;
        }
        n_binders++;
    }
    if (n_ids != n_binders) {
        return MMTLS_E_MALFORMED;
    }
    ch->has_psk = true;
    ch->psk_identities = n_ids;
    return 0;
}

MMTLS_MUST_USE static int ch_ext_parse(struct mmtls_tls_client_hello *ch, uint16_t type,
                                       struct mmtls_cur ext)
{
    struct mmtls_cur v;
    unsigned n;

    switch (type) {
    case MMTLS_EXT_SERVER_NAME: return sni_parse(ext, ch);
    case MMTLS_EXT_ALPN: return alpn_list_parse(ext, &ch->alpn, &n);
    case MMTLS_EXT_SUPPORTED_VERSIONS: return ch_versions_parse(ext, ch);
    case MMTLS_EXT_SUPPORTED_GROUPS: /* RFC 8446 §4.2.7: named_group_list<2..2^16-1> */
        return u16_list_parse(ext, 2, &ch->supported_groups);
    case MMTLS_EXT_SIGNATURE_ALGORITHMS: /* RFC 8446 §4.2.3: <2..2^16-2> */
        return u16_list_parse(ext, 2, &ch->sig_algs);
    case MMTLS_EXT_EC_POINT_FORMATS: /* RFC 8422 §5.1.2: ec_point_format_list<1..2^8-1> */
        MMTLS_TRY(mmtls_cur_vec(&ext, 1, &v));
        MMTLS_TRY(mmtls_cur_done(&ext));
        if (mmtls_cur_left(&v) == 0) {
            return MMTLS_E_MALFORMED;
        }
        ch->ec_point_formats = mmtls_cur_rest(&v);
        return 0;
    case MMTLS_EXT_KEY_SHARE: return ch_key_share_parse(ext, ch);
    case MMTLS_EXT_PRE_SHARED_KEY: return ch_psk_parse(ext, ch);
    case MMTLS_EXT_EARLY_DATA: /* RFC 8446 §4.2.10: empty in the ClientHello */
        MMTLS_TRY(empty_parse(ext));
        ch->early_data = true;
        return 0;
    case MMTLS_EXT_ENCRYPT_THEN_MAC:
        MMTLS_TRY(empty_parse(ext));
        ch->encrypt_then_mac = true;
        return 0;
    case MMTLS_EXT_EXTENDED_MASTER_SECRET:
        MMTLS_TRY(empty_parse(ext));
        ch->extended_master_secret = true;
        return 0;
    case MMTLS_EXT_SESSION_TICKET: /* RFC 5077 §3.2: empty or an opaque ticket */
        ch->session_ticket = true;
        return 0;
    case MMTLS_EXT_RENEGOTIATION_INFO:
        MMTLS_TRY(reneg_parse(ext));
        ch->renegotiation_info = true;
        return 0;
    default: return 0; /* unknown and uninterpreted extensions are skipped */
    }
}

int mmtls_tls_client_hello_parse(const uint8_t *body, size_t len, struct mmtls_tls_client_hello *ch)
{
    struct mmtls_cur c = body_cur(body, len), v, exts, ext;
    struct mmtls_slice rnd;
    uint16_t type;

    memset(ch, 0, sizeof(*ch));
    MMTLS_TRY(mmtls_cur_u16(&c, &ch->legacy_version));
    MMTLS_TRY(mmtls_cur_bytes(&c, TLS_RANDOM_LEN, &rnd));
    memcpy(ch->random, rnd.p, TLS_RANDOM_LEN);
    MMTLS_TRY(session_id_parse(&c, &ch->session_id));
    /* CipherSuite cipher_suites<2..2^16-2> */
    MMTLS_TRY(mmtls_cur_vec(&c, 2, &v));
    if (mmtls_cur_left(&v) < 2 || mmtls_cur_left(&v) % 2 != 0) {
        return MMTLS_E_MALFORMED;
    }
    ch->cipher_suites = mmtls_cur_rest(&v);
    /* CompressionMethod compression_methods<1..2^8-1> */
    MMTLS_TRY(mmtls_cur_vec(&c, 1, &v));
    if (mmtls_cur_left(&v) == 0) {
        return MMTLS_E_MALFORMED;
    }
    ch->compression = mmtls_cur_rest(&v);
    ch->max_version = ch->legacy_version;
    /* RFC 5246 §7.4.1.2: the extensions block may be absent (old clients). */
    if (mmtls_cur_left(&c) == 0) {
        ch->extensions.p = c.p;
        return 0;
    }
    MMTLS_TRY(mmtls_cur_vec(&c, 2, &exts));
    MMTLS_TRY(mmtls_cur_done(&c));
    ch->extensions.p = exts.p;
    ch->extensions.len = mmtls_cur_left(&exts);
    while (mmtls_cur_left(&exts) > 0) { /* capped by ext_record at MMTLS_TLS_MAX_EXTS */
        /* RFC 8446 §4.2.11: pre_shared_key MUST be the last extension. */
        if (ch->has_psk) {
            return MMTLS_E_MALFORMED;
        }
        MMTLS_TRY(mmtls_cur_u16(&exts, &type));
        MMTLS_TRY(mmtls_cur_vec(&exts, 2, &ext));
        MMTLS_TRY(ext_record(ch->ext_types, &ch->n_ext, type));
        MMTLS_TRY(ch_ext_parse(ch, type, ext));
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */

MMTLS_MUST_USE static int sh_ext_parse(struct mmtls_tls_server_hello *sh, uint16_t type,
                                       struct mmtls_cur ext)
{
    struct mmtls_cur kx;
    uint16_t u;

    switch (type) {
    case MMTLS_EXT_SUPPORTED_VERSIONS: /* RFC 8446 §4.2.1: selected_version */
        MMTLS_TRY(mmtls_cur_u16(&ext, &sh->selected_version));
        return mmtls_cur_done(&ext);
    case MMTLS_EXT_KEY_SHARE:
        /* RFC 8446 §4.2.8: an HRR carries only selected_group; a ServerHello a
         * KeyShareEntry {group, key_exchange<1..2^16-1>}. */
        MMTLS_TRY(mmtls_cur_u16(&ext, &sh->key_share_group));
        if (!sh->is_hrr) {
            MMTLS_TRY(mmtls_cur_vec(&ext, 2, &kx));
            if (mmtls_cur_left(&kx) == 0) {
                return MMTLS_E_MALFORMED;
            }
        }
        return mmtls_cur_done(&ext);
    case MMTLS_EXT_PRE_SHARED_KEY: /* RFC 8446 §4.2.11: uint16 selected_identity */
        MMTLS_TRY(mmtls_cur_u16(&ext, &u));
        sh->psk_selected = true;
        return mmtls_cur_done(&ext);
    case MMTLS_EXT_ENCRYPT_THEN_MAC:
        MMTLS_TRY(empty_parse(ext));
        sh->encrypt_then_mac = true;
        return 0;
    case MMTLS_EXT_EXTENDED_MASTER_SECRET:
        MMTLS_TRY(empty_parse(ext));
        sh->extended_master_secret = true;
        return 0;
    case MMTLS_EXT_SESSION_TICKET: /* RFC 5077 §3.2: the server's extension is empty */
        MMTLS_TRY(empty_parse(ext));
        sh->session_ticket = true;
        return 0;
    case MMTLS_EXT_ALPN: return alpn_selected_parse(ext, &sh->alpn);
    case MMTLS_EXT_RENEGOTIATION_INFO: return reneg_parse(ext);
    default: return 0; /* cookie (HRR) and others: skipped */
    }
}

int mmtls_tls_server_hello_parse(const uint8_t *body, size_t len, struct mmtls_tls_server_hello *sh)
{
    struct mmtls_cur c = body_cur(body, len), exts, ext;
    struct mmtls_slice rnd;
    uint16_t type;

    memset(sh, 0, sizeof(*sh));
    MMTLS_TRY(mmtls_cur_u16(&c, &sh->legacy_version));
    MMTLS_TRY(mmtls_cur_bytes(&c, TLS_RANDOM_LEN, &rnd));
    memcpy(sh->random, rnd.p, TLS_RANDOM_LEN);
    sh->is_hrr = memcmp(sh->random, hrr_random, TLS_RANDOM_LEN) == 0;
    MMTLS_TRY(session_id_parse(&c, &sh->session_id));
    MMTLS_TRY(mmtls_cur_u16(&c, &sh->cipher_suite));
    MMTLS_TRY(mmtls_cur_u8(&c, &sh->compression));
    /* RFC 5246 §7.4.1.3: extensions may be absent. */
    if (mmtls_cur_left(&c) == 0) {
        return 0;
    }
    MMTLS_TRY(mmtls_cur_vec(&c, 2, &exts));
    MMTLS_TRY(mmtls_cur_done(&c));
    while (mmtls_cur_left(&exts) > 0) { /* capped by ext_record at MMTLS_TLS_MAX_EXTS */
        MMTLS_TRY(mmtls_cur_u16(&exts, &type));
        MMTLS_TRY(mmtls_cur_vec(&exts, 2, &ext));
        MMTLS_TRY(ext_record(sh->ext_types, &sh->n_ext, type));
        MMTLS_TRY(sh_ext_parse(sh, type, ext));
    }
    return 0;
}

uint16_t mmtls_tls_server_hello_version(const struct mmtls_tls_server_hello *sh)
{
    /* RFC 8446 §4.2.1: a TLS 1.3 server sets legacy_version 0x0303 and the real version in
     * supported_versions. */
    return sh->selected_version != 0 ? sh->selected_version : sh->legacy_version;
}

/* ------------------------------------------------------------------------------------------ */

int mmtls_tls_encrypted_extensions_parse(const uint8_t *body, size_t len,
                                         struct mmtls_tls_encrypted_extensions *ee)
{
    struct mmtls_cur c = body_cur(body, len), exts, ext;
    uint16_t types[MMTLS_TLS_MAX_EXTS];
    uint8_t n_ext = 0;
    uint16_t type;

    memset(ee, 0, sizeof(*ee));
    /* RFC 8446 §4.3.1: struct { Extension extensions<0..2^16-1>; } */
    MMTLS_TRY(mmtls_cur_vec(&c, 2, &exts));
    MMTLS_TRY(mmtls_cur_done(&c));
    while (mmtls_cur_left(&exts) > 0) { /* capped by ext_record at MMTLS_TLS_MAX_EXTS */
        MMTLS_TRY(mmtls_cur_u16(&exts, &type));
        MMTLS_TRY(mmtls_cur_vec(&exts, 2, &ext));
        MMTLS_TRY(ext_record(types, &n_ext, type));
        if (type == MMTLS_EXT_ALPN) {
            MMTLS_TRY(alpn_selected_parse(ext, &ee->alpn));
        } else if (type == MMTLS_EXT_EARLY_DATA) {
            MMTLS_TRY(empty_parse(ext)); /* RFC 8446 §4.2.10: empty in EncryptedExtensions */
            ee->early_data = true;
        }
    }
    return 0;
}
