/* http — logs decrypted HTTP/1.x requests as eve "http" events (Suricata's event type: hostname,
 * url, http_method, protocol).  A request line is recognised at the start of a client record;
 * HTTP/2 (binary framing) and requests split across records are left to the rule engine app of
 * a later milestone. */
#include "apps/apps.h"

#include <ctype.h>
#include <string.h>

static bool is_token(const uint8_t *p, size_t n)
{
    if (n == 0 || n > 16)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isupper(p[i]))
            return false;
    }
    return true;
}

static int http_on_event(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct mmtls_eve *eve = arg; /* the worker's writer: no other state, nothing shared */
    const uint8_t *p, *sp1, *sp2, *eol, *host = NULL;
    size_t n, hostlen = 0;

    if (ev->ev != MMTLS_EV_NEW_RECORD || ev->rec->dir != MMTLS_DIR_TO_SERVER ||
        mmtls_record_plaintext(s, &p, &n) != 0 || ev->rec->type != MMTLS_CT_APPLICATION_DATA)
        return MMTLS_VERDICT_CONTINUE;
    /* RFC 9112 §3: method SP request-target SP HTTP-version CRLF */
    eol = memchr(p, '\n', MMTLS_MIN(n, (size_t)8192));
    sp1 = memchr(p, ' ', MMTLS_MIN(n, (size_t)17));
    if (eol == NULL || sp1 == NULL || !is_token(p, (size_t)(sp1 - p)))
        return MMTLS_VERDICT_CONTINUE;
    sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
    if (sp2 == NULL)
        return MMTLS_VERDICT_CONTINUE;
    /* RFC 9113 §3.4: the HTTP/2 connection preface looks like a request line; it is not one. */
    if (n >= 24 && memcmp(p, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24) == 0)
        return MMTLS_VERDICT_CONTINUE;
    /* Host header (RFC 9110 §7.2), case-insensitive name */
    for (const uint8_t *l = eol + 1; l < p + n;) {
        const uint8_t *le = memchr(l, '\n', (size_t)(p + n - l));
        size_t ll = le != NULL ? (size_t)(le - l) : (size_t)(p + n - l);
        if (ll <= 1)
            break; /* end of the header block */
        if (ll > 5 && strncasecmp((const char *)l, "host:", 5) == 0) {
            host = l + 5;
            hostlen = ll - 5;
            while (hostlen > 0 && (*host == ' ' || *host == '\t'))
                host++, hostlen--;
            while (hostlen > 0 && (host[hostlen - 1] == '\r' || host[hostlen - 1] == ' '))
                hostlen--;
            break;
        }
        if (le == NULL)
            break;
        l = le + 1;
    }
    mmtls_eve_write_http(eve, s, (const char *)p, (size_t)(sp1 - p), (const char *)sp1 + 1,
                         (size_t)(sp2 - sp1 - 1), (const char *)sp2 + 1,
                         (size_t)(eol - sp2 - 1 - (eol[-1] == '\r')), (const char *)host, hostlen);
    return MMTLS_VERDICT_CONTINUE;
}

int mmtls_http_log_register(struct mmtls_eve *eve, struct mmtls_engine *e)
{
    struct mmtls_app app = {.sz = sizeof(app),
                            .name = "http",
                            .events = MMTLS_EV_NEW_RECORD,
                            .on_event = http_on_event,
                            .arg = eve};

    return mmtls_engine_app_register(e, &app, NULL);
}
