/* tls — TLS record framing and handshake message parsers (RFC 8446, RFC 5246, RFC 4346,
 * RFC 2246).  Pure parsers over bounded input plus a bounded handshake-message reassembler.
 * Knows nothing about sockets, threads, flows or keys.
 */
#ifndef MMTLS_TLS_H
#define MMTLS_TLS_H

#include "util/util.h"

#define MMTLS_TLS_HDR_LEN 5
#define MMTLS_TLS_MAX_PLAINTEXT 16384u             /* 2^14, RFC 8446 §5.1 */
#define MMTLS_TLS13_MAX_CIPHERTEXT (16384u + 256u) /* RFC 8446 §5.2 */
#define MMTLS_PRIVATE_TAG_LEN 16u /* tag2 after tag1 (docs/PRIVTAG.md), counted in the length */
#define MMTLS_TLS12_MAX_CIPHERTEXT (16384u + 2048u) /* RFC 5246 §6.2.3 */
#define MMTLS_TLS_MAX_COMPRESSED (16384u + 1024u)   /* RFC 5246 §6.2.2 */

#define MMTLS_TLS_V10 0x0301
#define MMTLS_TLS_V11 0x0302
#define MMTLS_TLS_V12 0x0303
#define MMTLS_TLS_V13 0x0304

/* Handshake types (RFC 8446 §4, RFC 5246 §7.4). */
enum mmtls_tls_hs_type {
    MMTLS_HS_HELLO_REQUEST = 0,
    MMTLS_HS_CLIENT_HELLO = 1,
    MMTLS_HS_SERVER_HELLO = 2,
    MMTLS_HS_NEW_SESSION_TICKET = 4,
    MMTLS_HS_END_OF_EARLY_DATA = 5,
    MMTLS_HS_ENCRYPTED_EXTENSIONS = 8,
    MMTLS_HS_CERTIFICATE = 11,
    MMTLS_HS_SERVER_KEY_EXCHANGE = 12,
    MMTLS_HS_CERTIFICATE_REQUEST = 13,
    MMTLS_HS_SERVER_HELLO_DONE = 14,
    MMTLS_HS_CERTIFICATE_VERIFY = 15,
    MMTLS_HS_CLIENT_KEY_EXCHANGE = 16,
    MMTLS_HS_FINISHED = 20,
    MMTLS_HS_CERTIFICATE_URL = 21,
    MMTLS_HS_CERTIFICATE_STATUS = 22,
    MMTLS_HS_KEY_UPDATE = 24,
    MMTLS_HS_COMPRESSED_CERTIFICATE = 25,
    MMTLS_HS_MESSAGE_HASH = 254,
};

/* Extension types used by the parsers (IANA TLS ExtensionType registry). */
#define MMTLS_EXT_SERVER_NAME 0
#define MMTLS_EXT_SUPPORTED_GROUPS 10
#define MMTLS_EXT_EC_POINT_FORMATS 11
#define MMTLS_EXT_SIGNATURE_ALGORITHMS 13
#define MMTLS_EXT_ALPN 16
#define MMTLS_EXT_ENCRYPT_THEN_MAC 22
#define MMTLS_EXT_EXTENDED_MASTER_SECRET 23
#define MMTLS_EXT_SESSION_TICKET 35
#define MMTLS_EXT_PRE_SHARED_KEY 41
#define MMTLS_EXT_EARLY_DATA 42
#define MMTLS_EXT_SUPPORTED_VERSIONS 43
#define MMTLS_EXT_PSK_KEY_EXCHANGE_MODES 45
#define MMTLS_EXT_KEY_SHARE 51
#define MMTLS_EXT_RENEGOTIATION_INFO 0xff01

/* True for GREASE values (RFC 8701: 0x?A?A with equal bytes). */
bool mmtls_tls_is_grease(uint16_t v);

/* ------------------------------------------------------------------------------------------ */
/* Records                                                                                     */

struct mmtls_tls_hdr {
    uint8_t type;
    uint16_t version;
    uint16_t len; /* fragment length */
};

/* Parses a record header from p[0..avail).  MMTLS_AGAIN when avail < 5; MMTLS_E_MALFORMED when
 * the content type is not 20..24 or the version's major byte is not 3.  Length limits depend on
 * the protection state and are checked by the caller with mmtls_tls_max_fragment(). */
MMTLS_MUST_USE int mmtls_tls_hdr_parse(const uint8_t *p, size_t avail, struct mmtls_tls_hdr *h);

/* Largest fragment length allowed for a record of this version: 2^14 for plaintext records,
 * 2^14+256 for TLS 1.3 protected records, 2^14+2048 for TLS 1.0-1.2 protected records. */
size_t mmtls_tls_max_fragment(uint16_t negotiated_version, bool protected_record);

/* ------------------------------------------------------------------------------------------ */
/* Handshake message reassembly (messages may span records; records may hold several).         */

struct mmtls_tls_hs_reasm {
    struct mmtls_buf buf; /* owned: unparsed handshake bytes */
    size_t max_msg;       /* cap on one message body (configured) */
    size_t consumed;      /* bytes of buf already handed out */
};

void mmtls_tls_hs_reasm_init(struct mmtls_tls_hs_reasm *r, size_t max_msg);
void mmtls_tls_hs_reasm_fini(struct mmtls_tls_hs_reasm *r);
/* Appends handshake-record plaintext.  MMTLS_E_MEMCAP if it would exceed max_msg + 4 bytes
 * pending. */
MMTLS_MUST_USE int mmtls_tls_hs_reasm_feed(struct mmtls_tls_hs_reasm *r, const uint8_t *p,
                                           size_t len);
/* Next complete message: 0 with *type and *body (borrowed until the next feed/next call),
 * MMTLS_AGAIN when incomplete, MMTLS_E_LIMIT when the declared length exceeds max_msg (the
 * reassembler is then unusable: the caller reports and stops parsing this direction). */
MMTLS_MUST_USE int mmtls_tls_hs_reasm_next(struct mmtls_tls_hs_reasm *r, uint8_t *type,
                                           struct mmtls_slice *body);
/* True when no partial message is pending. */
bool mmtls_tls_hs_reasm_empty(const struct mmtls_tls_hs_reasm *r);

/* ------------------------------------------------------------------------------------------ */
/* Handshake message parsers.  Input is the message body (after the 4-byte header).  Output     */
/* slices borrow the input.  Every vector is checked to be consumed exactly; an extension type  */
/* appearing twice is malformed (RFC 8446 §4.2).                                               */

#define MMTLS_TLS_MAX_EXTS 64 /* extensions recorded in order (JA3/JA4); more is malformed */
#define MMTLS_TLS_MAX_GROUPS 32

struct mmtls_tls_client_hello {
    uint16_t legacy_version;
    uint8_t random[32];
    struct mmtls_slice session_id;
    struct mmtls_slice cipher_suites; /* raw u16 list */
    struct mmtls_slice compression;
    struct mmtls_slice extensions; /* raw extensions block */
    uint16_t ext_types[MMTLS_TLS_MAX_EXTS];
    uint8_t n_ext;
    bool has_sni;
    struct mmtls_slice sni;                /* host_name, raw bytes */
    struct mmtls_slice alpn;               /* raw ProtocolNameList contents */
    struct mmtls_slice supported_versions; /* raw u16 list */
    uint16_t max_version; /* highest non-GREASE supported_versions entry, or legacy */
    struct mmtls_slice supported_groups; /* raw u16 list */
    struct mmtls_slice sig_algs;         /* raw u16 list */
    struct mmtls_slice ec_point_formats; /* raw u8 list */
    uint16_t key_share_groups[MMTLS_TLS_MAX_GROUPS];
    uint8_t n_key_share;
    bool has_psk;
    uint16_t psk_identities;
    bool early_data;
    bool encrypt_then_mac;
    bool extended_master_secret;
    bool session_ticket;
    bool renegotiation_info;
};

MMTLS_MUST_USE int mmtls_tls_client_hello_parse(const uint8_t *body, size_t len,
                                                struct mmtls_tls_client_hello *ch);

struct mmtls_tls_server_hello {
    uint16_t legacy_version;
    uint8_t random[32];
    struct mmtls_slice session_id;
    uint16_t cipher_suite;
    uint8_t compression;
    bool is_hrr;               /* random equals SHA-256("HelloRetryRequest"), RFC 8446 §4.1.3 */
    uint16_t selected_version; /* supported_versions, 0 if absent */
    uint16_t key_share_group;  /* 0 if absent */
    bool psk_selected;
    bool encrypt_then_mac;
    bool extended_master_secret;
    bool session_ticket;
    struct mmtls_slice alpn; /* selected protocol (TLS <= 1.2), raw name */
    uint16_t ext_types[MMTLS_TLS_MAX_EXTS];
    uint8_t n_ext;
};

MMTLS_MUST_USE int mmtls_tls_server_hello_parse(const uint8_t *body, size_t len,
                                                struct mmtls_tls_server_hello *sh);

/* The negotiated version: selected_version when present, else legacy_version. */
uint16_t mmtls_tls_server_hello_version(const struct mmtls_tls_server_hello *sh);

struct mmtls_tls_encrypted_extensions {
    struct mmtls_slice alpn; /* selected protocol, raw name */
    bool early_data;         /* server accepted 0-RTT */
};

MMTLS_MUST_USE int mmtls_tls_encrypted_extensions_parse(const uint8_t *body, size_t len,
                                                        struct mmtls_tls_encrypted_extensions *ee);

struct mmtls_tls_certificate {
    uint32_t count;          /* certificates in the chain */
    struct mmtls_slice leaf; /* first certificate, DER */
};

/* TLS 1.3 has a request context and per-entry extensions (RFC 8446 §4.4.2); TLS <= 1.2 not. */
MMTLS_MUST_USE int mmtls_tls_certificate_parse(const uint8_t *body, size_t len, bool tls13,
                                               struct mmtls_tls_certificate *c);

/* Subject and issuer of a DER certificate in RFC 2253 form, NUL-terminated and truncated to the
 * buffers.  MMTLS_E_MALFORMED when the DER does not parse. */
MMTLS_MUST_USE int mmtls_tls_cert_names(const uint8_t *der, size_t len, char *subject,
                                        size_t subject_cap, char *issuer, size_t issuer_cap);

/* RFC 8446 §4.6.3: request_update is 0 or 1. */
MMTLS_MUST_USE int mmtls_tls_key_update_parse(const uint8_t *body, size_t len, uint8_t *request);

/* ------------------------------------------------------------------------------------------ */
/* Client fingerprints of a parsed ClientHello (tls_fp.c).  Pure (no state; the only allocation  */
/* is the OpenSSL EVP digest context).  GREASE values (RFC 8701) are left out everywhere.        */

#define MMTLS_TLS_JA3_HASH_LEN 32      /* MD5, lowercase hex */
#define MMTLS_TLS_JA4_LEN 36           /* "t13d1516h2_8daaf6152771_e5627efa2ab1" */
#define MMTLS_TLS_JA4_MAX_CIPHERS 4096 /* cipher suites sorted for JA4_b (stack array) */

/* JA3 (salesforce/ja3): "SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats",
 * each field the decimal values joined by '-' in ClientHello order (legacy_version, cipher
 * suites, extension types, supported_groups, ec_point_formats).  The string goes to str
 * (NUL-terminated, truncated to str_cap - 1 bytes; str may be NULL when str_cap is 0) and
 * *str_len (when not NULL) receives its full length; hash receives the MD5 of the whole string
 * in lowercase hex.  MMTLS_E_CRYPTO when the digest fails (MD5 unavailable, e.g. FIPS); the
 * outputs are then empty strings. */
MMTLS_MUST_USE int mmtls_tls_ja3(const struct mmtls_tls_client_hello *ch, char *str, size_t str_cap,
                                 size_t *str_len, char hash[MMTLS_TLS_JA3_HASH_LEN + 1]);

/* JA4 (FoxIO "JA4: TLS Client Fingerprinting", TLS over TCP) into ja4, and when raw is not
 * NULL the raw sorted form JA4_r into raw (NUL-terminated, truncated to raw_cap - 1 bytes;
 * *raw_len, when not NULL, receives its full length).  MMTLS_E_LIMIT when the ClientHello
 * offers more than MMTLS_TLS_JA4_MAX_CIPHERS cipher suites, MMTLS_E_CRYPTO when SHA-256 fails;
 * the outputs are then empty strings. */
MMTLS_MUST_USE int mmtls_tls_ja4(const struct mmtls_tls_client_hello *ch,
                                 char ja4[MMTLS_TLS_JA4_LEN + 1], char *raw, size_t raw_cap,
                                 size_t *raw_len);

#endif
