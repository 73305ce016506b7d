/* keys_keylog — the NSS key log format (RFC 9850): a pure line parser (loaders: keys_store.c).
 *
 * RFC 9850 §2: a key log is a sequence of lines, each `<label> <client_random> <secret>` with the
 * client random and the secret in hex.  Lines that start with '#' are comments; lines with an
 * unknown label are skipped so that new labels do not break old readers.  We are lenient on
 * separators (any run of spaces or tabs), on hex case and on a trailing "\r\n", and strict on
 * everything that decides which secret is used: field count, hex digits and secret lengths.
 */
#include "keys/keys.h"

#define KEYLOG_LINE_MAX 1024 /* longest real line is ~230 bytes (a SHA-512 secret) */
#define KEYLOG_MAX_FIELDS 3
#define CR_HEX_LEN 64 /* 32-byte client random */

struct label_def {
    const char *name;
    enum mmtls_keylog_label label;
    bool indexed; /* name is a prefix followed by a decimal N */
};

/* RFC 9850 §2.1 (and the TLS 1.3 labels of NSS, OpenSSL, GnuTLS, BoringSSL). */
static const struct label_def label_defs[] = {
    {"CLIENT_RANDOM", MMTLS_KL_CLIENT_RANDOM, false},
    {"CLIENT_EARLY_TRAFFIC_SECRET", MMTLS_KL_CLIENT_EARLY_TRAFFIC_SECRET, false},
    {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", MMTLS_KL_CLIENT_HANDSHAKE_TRAFFIC_SECRET, false},
    {"SERVER_HANDSHAKE_TRAFFIC_SECRET", MMTLS_KL_SERVER_HANDSHAKE_TRAFFIC_SECRET, false},
    {"CLIENT_TRAFFIC_SECRET_", MMTLS_KL_CLIENT_TRAFFIC_SECRET, true},
    {"SERVER_TRAFFIC_SECRET_", MMTLS_KL_SERVER_TRAFFIC_SECRET, true},
    {"EXPORTER_SECRET", MMTLS_KL_EXPORTER_SECRET, false},
    {"EARLY_EXPORTER_SECRET", MMTLS_KL_EARLY_EXPORTER_SECRET, false},
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* N of *_TRAFFIC_SECRET_N: 1..10 decimal digits, no sign, value < 2^32; or a literal 'N'. */
static int parse_index(const char *p, size_t len, uint32_t *out)
{
    uint64_t v = 0;

    if (len == 1 && p[0] == 'N') {
        *out = MMTLS_KEYLOG_INDEX_NEXT; /* OpenSSL's literal "_N" */
        return 0;
    }
    if (len == 0 || len > 10) {
        return MMTLS_E_MALFORMED;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return MMTLS_E_MALFORMED;
        }
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v > UINT32_MAX) {
        return MMTLS_E_MALFORMED;
    }
    *out = (uint32_t)v;
    return 0;
}

/* Maps a label field to its definition.  MMTLS_DECLINED for an unknown label. */
static int parse_label(const char *p, size_t len, struct mmtls_keylog_entry *e)
{
    for (size_t i = 0; i < MMTLS_ARRAY_SIZE(label_defs); i++) {
        const struct label_def *d = &label_defs[i];
        size_t n = strlen(d->name);

        if (!d->indexed) {
            if (len == n && memcmp(p, d->name, n) == 0) {
                e->label = d->label;
                e->index = 0;
                return 0;
            }
            continue;
        }
        if (len >= n && memcmp(p, d->name, n) == 0) {
            /* A known label family with a bad N is malformed, not unknown: skipping it would
             * silently lose an application secret. */
            e->label = d->label;
            return parse_index(p + n, len - n, &e->index);
        }
    }
    return MMTLS_DECLINED;
}

/* Secret lengths: the TLS <= 1.2 master secret is 48 bytes (RFC 5246 §8.1); TLS 1.3 secrets are
 * Hash.length (RFC 8446 §7.1): 32 (SHA-256), 48 (SHA-384) or 64 (SHA-512, not in any suite today
 * but allowed by the hash-agnostic schedule).  Anything else, a 31-byte prefix of a cut line
 * included, is malformed. */
static bool secret_len_ok(enum mmtls_keylog_label label, size_t len)
{
    if (label == MMTLS_KL_CLIENT_RANDOM) {
        return len == 48;
    }
    return len == 32 || len == 48 || len == 64;
}

int mmtls_keylog_line_parse(const char *line, size_t len, struct mmtls_keylog_entry *e)
{
    const char *f[KEYLOG_MAX_FIELDS];
    size_t flen[KEYLOG_MAX_FIELDS];
    size_t nf = 0, i = 0;
    int rc;

    memset(e, 0, sizeof(*e));
    /* strip the line terminator: "\n", "\r\n" (or a bare "\r") */
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
        len--;
    }
    while (i < len && is_blank(line[i])) {
        i++;
    }
    if (i == len) {
        return MMTLS_DECLINED; /* blank */
    }
    if (line[i] == '#') {
        return MMTLS_DECLINED; /* RFC 9850 §2: comment */
    }
    if (len > KEYLOG_LINE_MAX) {
        return MMTLS_E_MALFORMED;
    }

    /* Split on runs of blanks; at most KEYLOG_MAX_FIELDS fields, one more is an error
     * (reported only for a known label: an unknown label is skipped whatever follows). */
    bool extra = false;
    while (i < len) {
        size_t start = i;

        while (i < len && !is_blank(line[i])) {
            i++;
        }
        if (nf == KEYLOG_MAX_FIELDS) {
            extra = true;
            break;
        }
        f[nf] = line + start;
        flen[nf] = i - start;
        nf++;
        while (i < len && is_blank(line[i])) {
            i++;
        }
    }

    rc = parse_label(f[0], flen[0], e);
    if (rc != 0) {
        goto fail; /* DECLINED (unknown) or MALFORMED (bad N) */
    }
    rc = MMTLS_E_MALFORMED;
    if (extra || nf != KEYLOG_MAX_FIELDS) {
        goto fail;
    }
    if (flen[1] != CR_HEX_LEN ||
        mmtls_hex_decode(f[1], flen[1], e->client_random, sizeof(e->client_random)) != 0) {
        goto fail;
    }
    if (flen[2] % 2 != 0 || !secret_len_ok(e->label, flen[2] / 2) ||
        mmtls_hex_decode(f[2], flen[2], e->secret.b, sizeof(e->secret.b)) != 0) {
        goto fail;
    }
    e->secret.len = (uint8_t)(flen[2] / 2);
    return 0;

fail:
    mmtls_secret_wipe(&e->secret);
    return rc;
}
