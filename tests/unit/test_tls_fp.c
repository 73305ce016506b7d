/* Unit tests for the JA3 / JA4 client fingerprints (src/tls/tls_fp.c).
 *
 * Vectors: the ClientHellos captured from OpenSSL, GnuTLS and curl (copied from
 * test_tls_hello.c), ClientHellos rebuilt from published fingerprints (browserleaks.com's
 * Chrome 143 result, FoxIO's sigalg-grease.pcapng test output and the worked example of the JA4
 * specification), and edge cases.  The expected strings come from tests/unit/gen_fp_vectors.py,
 * an independent Python implementation (hashlib) that parses these same arrays and checks
 * itself against the published values first; regenerate the table with
 * `python3 tests/unit/gen_fp_vectors.py` and the rebuilt arrays with `--emit`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tls/tls.h"

/* ------------------------------------------------------------------------------------------ */
/* Captured ClientHellos (whole handshake messages), shared with test_tls_hello.c.            */

#include "tls_captures.h" /* the six captured ClientHellos of test_tls_hello.c */

/* ------------------------------------------------------------------------------------------ */
/* Rebuilt and edge-case ClientHellos (gen_fp_vectors.py --emit).  Random is 00..1f; bodies of */
/* extensions the fingerprints ignore are minimal but well-formed.                             */

/* Chrome 143 as published by browserleaks.com (rebuilt) */
/* clang-format off */
static const uint8_t ch_chrome143[] = {
    0x01, 0x00, 0x01, 0x25, /* handshake ClientHello, length 293 */
    0x03, 0x03, /* legacy_version 0x0303 */
    /* random */
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x00, /* session_id length 0 */
    /* cipher_suites length 32: 0a0a,1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8, */
    /* c013,c014,009c,009d,002f,0035 */
    0x00, 0x20,
    0x0a, 0x0a, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x2c, 0xc0, 0x30,
    0xcc, 0xa9, 0xcc, 0xa8, 0xc0, 0x13, 0xc0, 0x14, 0x00, 0x9c, 0x00, 0x9d, 0x00, 0x2f, 0x00, 0x35,
    0x01, 0x00, /* compression_methods */
    0x00, 0xdc, /* extensions length 220 */
    0x1a, 0x1a, 0x00, 0x00, /* GREASE (0x1a1a), length 0 */
    0x00, 0x2d, 0x00, 0x02, /* psk_key_exchange_modes psk_dhe_ke (0x002d), length 2 */
    0x01, 0x01,
    0x00, 0x33, 0x00, 0x2b, /* key_share GREASE(1),X25519(32) (0x0033), length 43 */
    0x00, 0x29, 0x3a, 0x3a, 0x00, 0x01, 0x00, 0x00, 0x1d, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x10, 0x00, 0x0e, /* alpn h2,http/1.1 (0x0010), length 14 */
    0x00, 0x0c, 0x02, 0x68, 0x32, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31,
    0xfe, 0x0d, 0x00, 0x0a, /* encrypted_client_hello outer (0xfe0d), length 10 */
    0x00, 0x00, 0x01, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x17, 0x00, 0x00, /* extended_master_secret (0x0017), length 0 */
    0x44, 0xcd, 0x00, 0x05, /* application_settings h2 (0x44cd), length 5 */
    0x00, 0x03, 0x02, 0x68, 0x32,
    0x00, 0x00, 0x00, 0x19, /* server_name "tls.browserleaks.com" (0x0000), length 25 */
    0x00, 0x17, 0x00, 0x00, 0x14, 0x74, 0x6c, 0x73, 0x2e, 0x62, 0x72, 0x6f, 0x77, 0x73, 0x65, 0x72,
    0x6c, 0x65, 0x61, 0x6b, 0x73, 0x2e, 0x63, 0x6f, 0x6d,
    0x00, 0x0b, 0x00, 0x02, /* ec_point_formats uncompressed (0x000b), length 2 */
    0x01, 0x00,
    0x00, 0x0a, 0x00, 0x0c, /* supported_groups GREASE,11ec,001d,0017,0018 (0x000a), length 12 */
    0x00, 0x0a, 0x3a, 0x3a, 0x11, 0xec, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18,
    0x00, 0x2b, 0x00, 0x07, /* supported_versions GREASE,1.3,1.2 (0x002b), length 7 */
    0x06, 0x4a, 0x4a, 0x03, 0x04, 0x03, 0x03,
    0xff, 0x01, 0x00, 0x01, /* renegotiation_info (0xff01), length 1 */
    0x00,
    0x00, 0x23, 0x00, 0x00, /* session_ticket (0x0023), length 0 */
    0x00, 0x12, 0x00, 0x00, /* signed_certificate_timestamp (0x0012), length 0 */
    0x00, 0x05, 0x00, 0x05, /* status_request ocsp (0x0005), length 5 */
    0x01, 0x00, 0x00, 0x00, 0x00,
    /* signature_algorithms 0403,0804,0401,0503,0805,0501,0806,0601 (0x000d), length 18 */
    0x00, 0x0d, 0x00, 0x12,
    0x00, 0x10, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03, 0x08, 0x05, 0x05, 0x01, 0x08, 0x06,
    0x06, 0x01,
    0x00, 0x1b, 0x00, 0x03, /* compress_certificate brotli (0x001b), length 3 */
    0x02, 0x00, 0x02,
    0x2a, 0x2a, 0x00, 0x01, /* GREASE (0x2a2a), length 1 */
    0x00,
};
/* clang-format on */

/* FoxIO ja4 test data sigalg-grease.pcapng (rebuilt) */
/* clang-format off */
static const uint8_t ch_foxio_sigalg[] = {
    0x01, 0x00, 0x01, 0x2b, /* handshake ClientHello, length 299 */
    0x03, 0x03, /* legacy_version 0x0303 */
    /* random */
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x00, /* session_id length 0 */
    /* cipher_suites length 32: 5a5a,1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8, */
    /* c013,c014,009c,009d,002f,0035 */
    0x00, 0x20,
    0x5a, 0x5a, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x2c, 0xc0, 0x30,
    0xcc, 0xa9, 0xcc, 0xa8, 0xc0, 0x13, 0xc0, 0x14, 0x00, 0x9c, 0x00, 0x9d, 0x00, 0x2f, 0x00, 0x35,
    0x01, 0x00, /* compression_methods */
    0x00, 0xe2, /* extensions length 226 */
    0xfe, 0x0d, 0x00, 0x0a, /* encrypted_client_hello outer (0xfe0d), length 10 */
    0x00, 0x00, 0x01, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x10, 0x00, 0x0e, /* alpn h2,http/1.1 (0x0010), length 14 */
    0x00, 0x0c, 0x02, 0x68, 0x32, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31,
    0x00, 0x17, 0x00, 0x00, /* extended_master_secret (0x0017), length 0 */
    0x00, 0x33, 0x00, 0x26, /* key_share X25519 (0x0033), length 38 */
    0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x44, 0xcd, 0x00, 0x05, /* application_settings h2 (0x44cd), length 5 */
    0x00, 0x03, 0x02, 0x68, 0x32,
    0xff, 0x01, 0x00, 0x01, /* renegotiation_info (0xff01), length 1 */
    0x00,
    0x00, 0x0a, 0x00, 0x08, /* supported_groups 001d,0017,0018 (0x000a), length 8 */
    0x00, 0x06, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18,
    /* signature_algorithms 0904,0905,0906,0403,0804,0401,0503,0805,0501,0806,0601 */
    /* (0x000d), length 24 */
    0x00, 0x0d, 0x00, 0x18,
    0x00, 0x16, 0x09, 0x04, 0x09, 0x05, 0x09, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03,
    0x08, 0x05, 0x05, 0x01, 0x08, 0x06, 0x06, 0x01,
    0x00, 0x23, 0x00, 0x00, /* session_ticket (0x0023), length 0 */
    0x00, 0x2b, 0x00, 0x05, /* supported_versions 1.3,1.2 (0x002b), length 5 */
    0x04, 0x03, 0x04, 0x03, 0x03,
    0x00, 0x0b, 0x00, 0x02, /* ec_point_formats uncompressed (0x000b), length 2 */
    0x01, 0x00,
    0xca, 0x34, 0x00, 0x01, /* unassigned 0xca34 (0xca34), length 1 */
    0x00,
    0x00, 0x2d, 0x00, 0x02, /* psk_key_exchange_modes psk_dhe_ke (0x002d), length 2 */
    0x01, 0x01,
    /* server_name "optimizationguide-pa.googleapis.com" (0x0000), length 40 */
    0x00, 0x00, 0x00, 0x28,
    0x00, 0x26, 0x00, 0x00, 0x23, 0x6f, 0x70, 0x74, 0x69, 0x6d, 0x69, 0x7a, 0x61, 0x74, 0x69, 0x6f,
    0x6e, 0x67, 0x75, 0x69, 0x64, 0x65, 0x2d, 0x70, 0x61, 0x2e, 0x67, 0x6f, 0x6f, 0x67, 0x6c, 0x65,
    0x61, 0x70, 0x69, 0x73, 0x2e, 0x63, 0x6f, 0x6d,
    0x00, 0x05, 0x00, 0x05, /* status_request ocsp (0x0005), length 5 */
    0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x1b, 0x00, 0x03, /* compress_certificate brotli (0x001b), length 3 */
    0x02, 0x00, 0x02,
    0x00, 0x12, 0x00, 0x00, /* signed_certificate_timestamp (0x0012), length 0 */
};
/* clang-format on */

/* the worked example of the FoxIO JA4 specification (rebuilt) */
/* clang-format off */
static const uint8_t ch_foxio_spec[] = {
    0x01, 0x00, 0x01, 0x04, /* handshake ClientHello, length 260 */
    0x03, 0x03, /* legacy_version 0x0303 */
    /* random */
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x00, /* session_id length 0 */
    /* cipher_suites length 30: 1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013, */
    /* c014,009c,009d,002f,0035 */
    0x00, 0x1e,
    0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x2c, 0xc0, 0x30, 0xcc, 0xa9,
    0xcc, 0xa8, 0xc0, 0x13, 0xc0, 0x14, 0x00, 0x9c, 0x00, 0x9d, 0x00, 0x2f, 0x00, 0x35,
    0x01, 0x00, /* compression_methods */
    0x00, 0xbd, /* extensions length 189 */
    0x00, 0x1b, 0x00, 0x03, /* compress_certificate brotli (0x001b), length 3 */
    0x02, 0x00, 0x02,
    0x00, 0x00, 0x00, 0x10, /* server_name "example.com" (0x0000), length 16 */
    0x00, 0x0e, 0x00, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d,
    0x00, 0x33, 0x00, 0x26, /* key_share X25519 (0x0033), length 38 */
    0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x10, 0x00, 0x0e, /* alpn h2,http/1.1 (0x0010), length 14 */
    0x00, 0x0c, 0x02, 0x68, 0x32, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31,
    0x44, 0x69, 0x00, 0x05, /* application_settings (old) h2 (0x4469), length 5 */
    0x00, 0x03, 0x02, 0x68, 0x32,
    0x00, 0x17, 0x00, 0x00, /* extended_master_secret (0x0017), length 0 */
    0x00, 0x2d, 0x00, 0x02, /* psk_key_exchange_modes psk_dhe_ke (0x002d), length 2 */
    0x01, 0x01,
    /* signature_algorithms 0403,0804,0401,0503,0805,0501,0806,0601 (0x000d), length 18 */
    0x00, 0x0d, 0x00, 0x12,
    0x00, 0x10, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03, 0x08, 0x05, 0x05, 0x01, 0x08, 0x06,
    0x06, 0x01,
    0x00, 0x05, 0x00, 0x05, /* status_request ocsp (0x0005), length 5 */
    0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x23, 0x00, 0x00, /* session_ticket (0x0023), length 0 */
    0x00, 0x12, 0x00, 0x00, /* signed_certificate_timestamp (0x0012), length 0 */
    0x00, 0x2b, 0x00, 0x05, /* supported_versions 1.3,1.2 (0x002b), length 5 */
    0x04, 0x03, 0x04, 0x03, 0x03,
    0xff, 0x01, 0x00, 0x01, /* renegotiation_info (0xff01), length 1 */
    0x00,
    0x00, 0x0b, 0x00, 0x02, /* ec_point_formats uncompressed (0x000b), length 2 */
    0x01, 0x00,
    0x00, 0x0a, 0x00, 0x08, /* supported_groups 001d,0017,0018 (0x000a), length 8 */
    0x00, 0x06, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18,
    0x00, 0x15, 0x00, 0x08, /* padding (0x0015), length 8 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};
/* clang-format on */

/* TLS 1.0 ClientHello without an extensions block */
/* clang-format off */
static const uint8_t ch_noext[] = {
    0x01, 0x00, 0x00, 0x2d, /* handshake ClientHello, length 45 */
    0x03, 0x01, /* legacy_version 0x0301 */
    /* random */
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x00, /* session_id length 0 */
    0x00, 0x06, /* cipher_suites length 6: 002f,0035,000a */
    0x00, 0x2f, 0x00, 0x35, 0x00, 0x0a,
    0x01, 0x00, /* compression_methods */
};
/* clang-format on */

/* TLS 1.1 ClientHello with an empty extensions block */
/* clang-format off */
static const uint8_t ch_empty_exts[] = {
    0x01, 0x00, 0x00, 0x2b, /* handshake ClientHello, length 43 */
    0x03, 0x02, /* legacy_version 0x0302 */
    /* random */
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x00, /* session_id length 0 */
    0x00, 0x02, /* cipher_suites length 2: 002f */
    0x00, 0x2f,
    0x01, 0x00, /* compression_methods */
    0x00, 0x00, /* extensions length 0 */
};
/* clang-format on */

/* duplicate cipher, SNI and ALPN only, non-alphanumeric ALPN */
/* clang-format off */
static const uint8_t ch_alpn_hex[] = {
    0x01, 0x00, 0x00, 0x4f, /* handshake ClientHello, length 79 */
    0x03, 0x03, /* legacy_version 0x0303 */
    /* random */
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x00, /* session_id length 0 */
    0x00, 0x08, /* cipher_suites length 8: 1a1a,c02f,1301,c02f */
    0x1a, 0x1a, 0xc0, 0x2f, 0x13, 0x01, 0xc0, 0x2f,
    0x01, 0x00, /* compression_methods */
    0x00, 0x1e, /* extensions length 30 */
    0x00, 0x00, 0x00, 0x0e, /* server_name "a.example" (0x0000), length 14 */
    0x00, 0x0c, 0x00, 0x00, 0x09, 0x61, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,
    0x00, 0x10, 0x00, 0x08, /* alpn 0xabcd,h2 (0x0010), length 8 */
    0x00, 0x06, 0x02, 0xab, 0xcd, 0x02, 0x68, 0x32,
};
/* clang-format on */

/* ALPN 0x30ab, GREASE signature algorithm, draft version */
/* clang-format off */
static const uint8_t ch_alpn_mixed[] = {
    0x01, 0x00, 0x00, 0x47, /* handshake ClientHello, length 71 */
    0x03, 0x03, /* legacy_version 0x0303 */
    /* random */
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x00, /* session_id length 0 */
    0x00, 0x02, /* cipher_suites length 2: c02f */
    0xc0, 0x2f,
    0x01, 0x00, /* compression_methods */
    0x00, 0x1c, /* extensions length 28 */
    0x00, 0x10, 0x00, 0x05, /* alpn 0x30ab (0x0010), length 5 */
    0x00, 0x03, 0x02, 0x30, 0xab,
    0x00, 0x0d, 0x00, 0x06, /* signature_algorithms GREASE,0403 (0x000d), length 6 */
    0x00, 0x04, 0x0a, 0x0a, 0x04, 0x03,
    0x00, 0x2b, 0x00, 0x05, /* supported_versions draft-28,1.2 (0x002b), length 5 */
    0x04, 0x7f, 0x1c, 0x03, 0x03,
};
/* clang-format on */

/* GREASE-only ciphers, one-character ALPN, no sigalgs */
/* clang-format off */
static const uint8_t ch_grease_only[] = {
    0x01, 0x00, 0x00, 0x37, /* handshake ClientHello, length 55 */
    0x03, 0x03, /* legacy_version 0x0303 */
    /* random */
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x00, /* session_id length 0 */
    0x00, 0x02, /* cipher_suites length 2: 2a2a */
    0x2a, 0x2a,
    0x01, 0x00, /* compression_methods */
    0x00, 0x0c, /* extensions length 12 */
    0x00, 0x10, 0x00, 0x04, /* alpn "x" (0x0010), length 4 */
    0x00, 0x02, 0x01, 0x78,
    0x00, 0x17, 0x00, 0x00, /* extended_master_secret (0x0017), length 0 */
};
/* clang-format on */

/* ------------------------------------------------------------------------------------------ */
/* Expected fingerprints (gen_fp_vectors.py output).                                           */

struct fp_vector {
    const char *name;
    const uint8_t *msg; /* whole handshake message */
    size_t len;
    const char *ja3, *ja3_hash, *ja4, *ja4_r;
};

/* clang-format off */
static const struct fp_vector vectors[] = {
    {"ch13_openssl", ch13_openssl, sizeof(ch13_openssl),
     "771,4866-4867-4865-49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192"
     "-107-49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,0-11-"
     "10-35-16-22-23-13-43-45-51,29-23-30-25-24-256-257-258-259-260,0-1-2",
     "5a1edc7f170af1014fc65c994878e63c",
     "t13d3111h2_e8f1e7e78f70_1f22a2ca17c4",
     "t13d3111h2_002f,0033,0035,0039,003c,003d,0067,006b,009c,009d,009e,009f,00ff,1301"
     ",1302,1303,c009,c00a,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030,cca8,cca9"
     ",ccaa_000a,000b,000d,0016,0017,0023,002b,002d,0033_0403,0503,0603,0807,0808,0809"
     ",080a,080b,0804,0805,0806,0401,0501,0601,0303,0301,0302,0402,0502,0602"},
    {"ch12_openssl", ch12_openssl, sizeof(ch12_openssl),
     "771,49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192-107-49187-4919"
     "1-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,0-11-10-35-16-22-23-"
     "13,29-23-30-25-24,0-1-2",
     "22558766122974704364c9c75c5cce0a",
     "t12d2808h1_d943125447b4_e7e480e5a997",
     "t12d2808h1_002f,0033,0035,0039,003c,003d,0067,006b,009c,009d,009e,009f,00ff,c009"
     ",c00a,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030,cca8,cca9,ccaa_000a,000b"
     ",000d,0016,0017,0023_0403,0503,0603,0807,0808,0809,080a,080b,0804,0805,0806,0401"
     ",0501,0601,0303,0301,0302,0402,0502,0602"},
    {"ch13_psk", ch13_psk, sizeof(ch13_psk),
     "771,4866-4867-4865-49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192"
     "-107-49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,0-11-"
     "10-35-16-22-23-13-43-45-51-42-41,29-23-30-25-24-256-257-258-259-260,0-1-2",
     "27360ddf3dd2cb80a779a0af1b76ef84",
     "t13d3113h2_e8f1e7e78f70_87f12a3f655c",
     "t13d3113h2_002f,0033,0035,0039,003c,003d,0067,006b,009c,009d,009e,009f,00ff,1301"
     ",1302,1303,c009,c00a,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030,cca8,cca9"
     ",ccaa_000a,000b,000d,0016,0017,0023,0029,002a,002b,002d,0033_0403,0503,0603,0807"
     ",0808,0809,080a,080b,0804,0805,0806,0401,0501,0601,0303,0301,0302,0402,0502,0602"},
    {"ch13_gnutls", ch13_gnutls, sizeof(ch13_gnutls),
     "771,4866-4867-4865-4868-49196-52393-49325-49162-49195-49324-49161-49200-52392-49"
     "172-49199-49171-157-49309-53-156-49308-47-159-52394-49311-57-158-49310-51,5-10-1"
     "1-13-16-22-23-35-51-43-65281-0-45-28,23-24-25-29-30-256-257-258-259-260,0",
     "6af33c9e05452609f615c60bfdef7ce7",
     "t13d2914h2_723694b0fccc_2cc26d266019",
     "t13d2914h2_002f,0033,0035,0039,009c,009d,009e,009f,1301,1302,1303,1304,c009,c00a"
     ",c013,c014,c02b,c02c,c02f,c030,c09c,c09d,c09e,c09f,c0ac,c0ad,cca8,cca9,ccaa_0005"
     ",000a,000b,000d,0016,0017,001c,0023,002b,002d,0033,ff01_0401,0809,0804,0403,0807"
     ",0501,080a,0805,0503,0808,0601,080b,0806,0603,0201,0203"},
    {"ch13_curl", ch13_curl, sizeof(ch13_curl),
     "771,4866-4867-4865-49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192"
     "-107-49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,0-11-"
     "10-16-22-23-49-13-43-45-51-21,29-23-30-25-24-256-257-258-259-260,0-1-2",
     "0149f47eabf9a20d0893e2a44e5a6323",
     "t13d3112h2_e8f1e7e78f70_b26ce05bbdd6",
     "t13d3112h2_002f,0033,0035,0039,003c,003d,0067,006b,009c,009d,009e,009f,00ff,1301"
     ",1302,1303,c009,c00a,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030,cca8,cca9"
     ",ccaa_000a,000b,000d,0015,0016,0017,002b,002d,0031,0033_0403,0503,0603,0807,0808"
     ",0809,080a,080b,0804,0805,0806,0401,0501,0601,0303,0301,0302,0402,0502,0602"},
    {"ch13_after_hrr", ch13_after_hrr, sizeof(ch13_after_hrr),
     "771,4866-4867-4865-49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192"
     "-107-49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,0-11-"
     "10-35-22-23-13-43-45-51,29-23,0-1-2",
     "a766c0cb08b7143fcaf7ee210298ded8",
     "t13d311000_e8f1e7e78f70_1f22a2ca17c4",
     "t13d311000_002f,0033,0035,0039,003c,003d,0067,006b,009c,009d,009e,009f,00ff,1301"
     ",1302,1303,c009,c00a,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030,cca8,cca9"
     ",ccaa_000a,000b,000d,0016,0017,0023,002b,002d,0033_0403,0503,0603,0807,0808,0809"
     ",080a,080b,0804,0805,0806,0401,0501,0601,0303,0301,0302,0402,0502,0602"},
    {"ch_chrome143", ch_chrome143, sizeof(ch_chrome143),
     "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53"
     ",45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0",
     "98487aa16281980e7d1120d399efb6a4",
     "t13d1516h2_8daaf6152771_d8a2da3f94cd",
     "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8"
     ",cca9_0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,fe0d,ff01_0403"
     ",0804,0401,0503,0805,0501,0806,0601"},
    {"ch_foxio_sigalg", ch_foxio_sigalg, sizeof(ch_foxio_sigalg),
     "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53"
     ",65037-16-23-51-17613-65281-10-13-35-43-11-51764-45-0-5-27-18,29-23-24,0",
     "8121043632f3ad6fb9bd670cffd41439",
     "t13d1517h2_8daaf6152771_cb7bf5808d99",
     "t13d1517h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8"
     ",cca9_0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,ca34,fe0d,ff01"
     "_0904,0905,0906,0403,0804,0401,0503,0805,0501,0806,0601"},
    {"ch_foxio_spec", ch_foxio_spec, sizeof(ch_foxio_spec),
     "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53"
     ",27-0-51-16-17513-23-45-13-5-35-18-43-65281-11-10-21,29-23-24,0",
     "c000e2caf3a25423f9de6c8a4b12a975",
     "t13d1516h2_8daaf6152771_e5627efa2ab1",
     "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8"
     ",cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403"
     ",0804,0401,0503,0805,0501,0806,0601"},
    {"ch_noext", ch_noext, sizeof(ch_noext),
     "769,47-53-10,,,",
     "7bc4acc37e8095387bed8c0b30a6081a",
     "t10i030000_5704bdfc91c6_000000000000",
     "t10i030000_000a,002f,0035_"},
    {"ch_empty_exts", ch_empty_exts, sizeof(ch_empty_exts),
     "770,47,,,",
     "33479a0511979846bfb20381604283dd",
     "t11i010000_ba72b8082249_000000000000",
     "t11i010000_002f_"},
    {"ch_alpn_hex", ch_alpn_hex, sizeof(ch_alpn_hex),
     "771,49199-4865-49199,0-16,,",
     "4f100b71c48cb4977bff8d0d6c1b1cfa",
     "t12d0302ad_3bc0dce1e0e1_000000000000",
     "t12d0302ad_1301,c02f,c02f_"},
    {"ch_alpn_mixed", ch_alpn_mixed, sizeof(ch_alpn_mixed),
     "771,49199,16-13-43,,",
     "8306ee486383c55efabcb675aa842fe4",
     "t00i01033b_f06271c2b022_3953dc75acc4",
     "t00i01033b_c02f_000d,002b_0403"},
    {"ch_grease_only", ch_grease_only, sizeof(ch_grease_only),
     "771,,16-23,,",
     "30373f2dbceae26344c69790e486ec84",
     "t12i0002xx_000000000000_1ca028f07214",
     "t12i0002xx__0017"},
};
/* clang-format on */

/* Values published with the fingerprinted clients, checked against the table too. */
static void test_published(void **state)
{
    (void)state;
    /* browserleaks.com, Chrome 143: ja3_text, ja3_hash, ja4 */
    assert_string_equal(vectors[6].name, "ch_chrome143");
    assert_string_equal(vectors[6].ja3_hash, "98487aa16281980e7d1120d399efb6a4");
    assert_string_equal(vectors[6].ja4, "t13d1516h2_8daaf6152771_d8a2da3f94cd");
    /* FoxIO python/test/testdata/sigalg-grease.pcapng.json: JA4.1 */
    assert_string_equal(vectors[7].name, "ch_foxio_sigalg");
    assert_string_equal(vectors[7].ja4, "t13d1517h2_8daaf6152771_cb7bf5808d99");
    /* FoxIO technical_details/JA4.md, "Example" */
    assert_string_equal(vectors[8].name, "ch_foxio_spec");
    assert_string_equal(vectors[8].ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
}

static void parse_vector(const struct fp_vector *v, struct mmtls_tls_client_hello *ch)
{
    assert_true(v->len > 4);
    assert_int_equal(mmtls_tls_client_hello_parse(v->msg + 4, v->len - 4, ch), 0);
}

static void test_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const struct fp_vector *v = &vectors[i];
        struct mmtls_tls_client_hello ch;
        char str[2048], hash[MMTLS_TLS_JA3_HASH_LEN + 1], ja4[MMTLS_TLS_JA4_LEN + 1], raw[2048];
        size_t str_len = 0, raw_len = 0;

        print_message("%s\n", v->name);
        parse_vector(v, &ch);
        assert_int_equal(mmtls_tls_ja3(&ch, str, sizeof(str), &str_len, hash), 0);
        assert_string_equal(str, v->ja3);
        assert_int_equal(str_len, strlen(v->ja3));
        assert_string_equal(hash, v->ja3_hash);
        assert_int_equal(mmtls_tls_ja4(&ch, ja4, raw, sizeof(raw), &raw_len), 0);
        assert_string_equal(ja4, v->ja4);
        assert_int_equal(strlen(ja4), MMTLS_TLS_JA4_LEN);
        assert_string_equal(raw, v->ja4_r);
        assert_int_equal(raw_len, strlen(v->ja4_r));
        /* Without the optional outputs. */
        assert_int_equal(mmtls_tls_ja3(&ch, NULL, 0, NULL, hash), 0);
        assert_string_equal(hash, v->ja3_hash);
        assert_int_equal(mmtls_tls_ja4(&ch, ja4, NULL, 0, NULL), 0);
        assert_string_equal(ja4, v->ja4);
    }
}

/* Every output capacity: the string is a NUL-terminated prefix, the full length and the
 * digests do not change. */
static void test_truncated_output(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const struct fp_vector *v = &vectors[i];
        struct mmtls_tls_client_hello ch;
        size_t ja3_len = strlen(v->ja3), raw_full = strlen(v->ja4_r);

        parse_vector(v, &ch);
        for (size_t cap = 1; cap <= ja3_len + 2; cap++) {
            char *str = malloc(cap + 1), hash[MMTLS_TLS_JA3_HASH_LEN + 1];
            size_t n = 0;

            assert_non_null(str);
            str[cap] = 'X'; /* canary past the capacity */
            assert_int_equal(mmtls_tls_ja3(&ch, str, cap, &n, hash), 0);
            assert_int_equal(n, ja3_len);
            assert_int_equal(strlen(str), cap - 1 < ja3_len ? cap - 1 : ja3_len);
            assert_memory_equal(str, v->ja3, strlen(str));
            assert_int_equal(str[cap], 'X');
            assert_string_equal(hash, v->ja3_hash);
            free(str);
        }
        for (size_t cap = 1; cap <= raw_full + 2; cap++) {
            char *raw = malloc(cap + 1), ja4[MMTLS_TLS_JA4_LEN + 1];
            size_t n = 0;

            assert_non_null(raw);
            raw[cap] = 'X';
            assert_int_equal(mmtls_tls_ja4(&ch, ja4, raw, cap, &n), 0);
            assert_int_equal(n, raw_full);
            assert_int_equal(strlen(raw), cap - 1 < raw_full ? cap - 1 : raw_full);
            assert_memory_equal(raw, v->ja4_r, strlen(raw));
            assert_int_equal(raw[cap], 'X');
            assert_string_equal(ja4, v->ja4);
            free(raw);
        }
    }
}

/* Whatever prefix of a ClientHello still parses gets fingerprinted without fault (run under
 * ASan in the sanitizer build). */
static void test_truncated_input(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const struct fp_vector *v = &vectors[i];

        for (size_t cut = 0; cut <= v->len - 4; cut++) {
            struct mmtls_tls_client_hello ch;
            uint8_t *copy = malloc(cut + 1);
            char str[64], hash[MMTLS_TLS_JA3_HASH_LEN + 1], ja4[MMTLS_TLS_JA4_LEN + 1];

            assert_non_null(copy);
            memcpy(copy, v->msg + 4, cut);
            if (mmtls_tls_client_hello_parse(copy, cut, &ch) == 0) {
                assert_int_equal(mmtls_tls_ja3(&ch, str, sizeof(str), NULL, hash), 0);
                assert_int_equal(strlen(hash), MMTLS_TLS_JA3_HASH_LEN);
                assert_int_equal(mmtls_tls_ja4(&ch, ja4, str, sizeof(str), NULL), 0);
                assert_int_equal(strlen(ja4), MMTLS_TLS_JA4_LEN);
            }
            free(copy);
        }
    }
}

/* A ClientHello struct with only the fields the fingerprints read. */
static void hello_init(struct mmtls_tls_client_hello *ch, const uint8_t *ciphers, size_t n)
{
    memset(ch, 0, sizeof(*ch));
    ch->legacy_version = MMTLS_TLS_V12;
    ch->max_version = MMTLS_TLS_V12;
    ch->cipher_suites.p = ciphers;
    ch->cipher_suites.len = n;
}

/* JA4.md "ALPN Extension Value", including its hex examples. */
static void test_ja4_alpn(void **state)
{
    static const uint8_t cs[] = {0xc0, 0x2f};
    static const struct {
        const uint8_t *list; /* ProtocolNameList contents */
        size_t len;
        const char *want;
    } cases[] = {
        {(const uint8_t *)"\x02h2", 3, "h2"},
        {(const uint8_t *)"\x08http/1.1\x02h2", 12, "h1"},
        {(const uint8_t *)"\x01h", 2, "hh"},        /* one character: first and last */
        {(const uint8_t *)"\x01\xab", 2, "ab"},     /* 0xAB -> "ab" */
        {(const uint8_t *)"\x02\xab\xcd", 3, "ad"}, /* 0xAB 0xCD -> "ad" */
        {(const uint8_t *)"\x02\x30\xab", 3, "3b"}, /* 0x30 0xAB -> "3b" */
        {(const uint8_t *)"\x04\x30\x31\xab\xcd", 5, "3d"},
        {(const uint8_t *)"\x04\x30\xab\xcd\x31", 5, "01"},
        {(const uint8_t *)"\x03\x41Z9", 4, "A9"},
        {(const uint8_t *)"\x02h-", 3, "6d"},     /* '-' is not alphanumeric */
        {(const uint8_t *)"", 0, "00"},           /* no ALPN */
        {(const uint8_t *)"\x00\x02h2", 4, "00"}, /* empty first name (not parsed) */
        {(const uint8_t *)"\x05h2", 3, "00"},     /* overlong (not parsed) */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mmtls_tls_client_hello ch;
        char ja4[MMTLS_TLS_JA4_LEN + 1];

        hello_init(&ch, cs, sizeof(cs));
        ch.alpn.p = cases[i].list;
        ch.alpn.len = cases[i].len;
        assert_int_equal(mmtls_tls_ja4(&ch, ja4, NULL, 0, NULL), 0);
        assert_memory_equal(ja4 + 8, cases[i].want, 2);
    }
}

/* JA4.md "TLS and DTLS Version". */
static void test_ja4_version(void **state)
{
    static const uint8_t cs[] = {0xc0, 0x2f};
    static const struct {
        uint16_t v;
        const char *want;
    } cases[] = {
        {0x0304, "13"}, {0x0303, "12"}, {0x0302, "11"}, {0x0301, "10"},
        {0x0300, "s3"}, {0x0002, "s2"}, {0xfeff, "d1"}, {0xfefd, "d2"},
        {0xfefc, "d3"}, {0x7f1c, "00"}, {0x0305, "00"}, {0x0000, "00"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mmtls_tls_client_hello ch;
        char ja4[MMTLS_TLS_JA4_LEN + 1];

        hello_init(&ch, cs, sizeof(cs));
        ch.max_version = cases[i].v;
        assert_int_equal(mmtls_tls_ja4(&ch, ja4, NULL, 0, NULL), 0);
        assert_memory_equal(ja4 + 1, cases[i].want, 2);
    }
}

/* Counts are capped at 99; more than MMTLS_TLS_JA4_MAX_CIPHERS is refused; every possible
 * cipher value is accepted by JA3 (the hash covers the whole string). */
static void test_limits(void **state)
{
    size_t max = 32767; /* RFC 5246 §7.4.1.2: CipherSuite cipher_suites<2..2^16-2> */
    uint8_t *cs = malloc(2 * max);
    struct mmtls_tls_client_hello ch;
    char ja4[MMTLS_TLS_JA4_LEN + 1], raw[64], str[64], hash[MMTLS_TLS_JA3_HASH_LEN + 1];
    size_t n = 0;

    (void)state;
    assert_non_null(cs);
    for (size_t i = 0; i < max; i++) {
        mmtls_put_be16(cs + 2 * i, (uint16_t)(i + 1));
    }
    /* 150 ciphers (0x0001..0x0096, no GREASE among them) and 64 extensions. */
    hello_init(&ch, cs, 2 * 150);
    for (unsigned i = 0; i < MMTLS_TLS_MAX_EXTS; i++) {
        ch.ext_types[ch.n_ext++] = (uint16_t)(0x100 + i);
    }
    assert_int_equal(mmtls_tls_ja4(&ch, ja4, NULL, 0, NULL), 0);
    assert_memory_equal(ja4, "t12i996400_", 11);

    /* Exactly MMTLS_TLS_JA4_MAX_CIPHERS non-GREASE values (0x0a0a is GREASE: one more). */
    hello_init(&ch, cs, 2 * (MMTLS_TLS_JA4_MAX_CIPHERS + 1));
    assert_int_equal(mmtls_tls_ja4(&ch, ja4, raw, sizeof(raw), &n), 0);
    assert_memory_equal(ja4, "t12i9900", 8);
    assert_int_equal(n, 10 + 1 + 5 * MMTLS_TLS_JA4_MAX_CIPHERS - 1 + 1);
    hello_init(&ch, cs, 2 * (MMTLS_TLS_JA4_MAX_CIPHERS + 2));
    assert_int_equal(mmtls_tls_ja4(&ch, ja4, raw, sizeof(raw), &n), MMTLS_E_LIMIT);
    assert_string_equal(ja4, "");
    assert_string_equal(raw, "");
    assert_int_equal(n, 0);

    /* JA3 over the largest list: "771," then 32767 values minus 16 GREASE. */
    hello_init(&ch, cs, 2 * max);
    assert_int_equal(mmtls_tls_ja3(&ch, str, sizeof(str), &n, hash), 0);
    assert_memory_equal(str, "771,1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16-17", 45);
    assert_int_equal(strlen(str), sizeof(str) - 1);
    assert_true(n > 32767 * 2);
    assert_int_equal(strlen(hash), MMTLS_TLS_JA3_HASH_LEN);
    free(cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published),        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_truncated_output), cmocka_unit_test(test_truncated_input),
        cmocka_unit_test(test_ja4_alpn),         cmocka_unit_test(test_ja4_version),
        cmocka_unit_test(test_limits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
