/* mmtls — error codes shared by every layer and by the public API.
 *
 * Convention (docs/ARCHITECTURE.md §Errors): fallible functions return int; 0 is success,
 * MMTLS_AGAIN (> 0) means "need more input", a negative value is one of the MMTLS_E_* codes.
 */
#ifndef MMTLS_ERROR_H
#define MMTLS_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MMTLS_MUST_USE __attribute__((warn_unused_result))
#define MMTLS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MMTLS_MUST_USE
#define MMTLS_PRINTF(f, a)
#endif

enum mmtls_err {
    MMTLS_OK = 0,
    MMTLS_AGAIN = 1,    /* more input is needed; not an error */
    MMTLS_DECLINED = 2, /* input understood and deliberately ignored (comment, unknown label) */
    /* (a) peer faults: counted, attached to the flow, never fatal */
    MMTLS_E_MALFORMED = -1,   /* bytes do not follow the grammar or exceed a protocol maximum */
    MMTLS_E_AUTH = -2,        /* AEAD tag, MAC or padding check failed */
    MMTLS_E_UNSUPPORTED = -3, /* well-formed but not handled (cipher suite, version, link type) */
    /* (b) resource limits: an exception policy applies */
    MMTLS_E_NOMEM = -4,
    MMTLS_E_MEMCAP = -5, /* a configured cap was hit */
    MMTLS_E_LIMIT = -6,  /* a fixed protocol or table limit was hit */
    /* (c) bugs and environment */
    MMTLS_E_INTERNAL = -7, /* broken invariant (asserted in debug builds) */
    MMTLS_E_IO = -8,       /* file or socket error; errno is kept by the caller */
    MMTLS_E_INVAL = -9,    /* caller passed an invalid argument */
    MMTLS_E_NOTFOUND = -10,
    MMTLS_E_CONFLICT = -11,   /* a second, different value for something that is set once */
    MMTLS_E_CRYPTO = -12,     /* the crypto library refused an operation */
    MMTLS_E_PEER_ALERT = -13, /* the TLS peer sent a fatal alert (endpoint library) */
};

/* Static string naming an error code; never NULL. */
const char *mmtls_strerror(int err);

/* Evaluates expr once; returns its value from the calling function if it is non-zero.
 * Only for functions that own nothing (parsers): others unwind through labels. */
#define MMTLS_TRY(expr)                                                                            \
    do {                                                                                           \
        int mmtls_try_rc_ = (expr);                                                                \
        if (mmtls_try_rc_ != 0)                                                                    \
            return mmtls_try_rc_;                                                                  \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
