/* mmtls-keyagent — follows an NSS key log (RFC 9850) that a browser writes (SSLKEYLOGFILE) and
 * ships its secrets to the mmtls key server over a key channel (docs/keyproto.md).
 *
 * Three parts, one thread, one ppoll() loop:
 *   follower  reads complete lines appended to the key log, like `tail -F`: inotify on the file
 *             and its directory plus a 1 s stat() poll; rotation (another inode behind the path)
 *             reopens the new file from its start, truncation (size below our offset) restarts
 *             at 0, a FIFO is reopened at end of file.  The offset reached is kept in a state
 *             file so that a restart never re-sends what was already read.
 *   grouper   collects the TLS 1.3 secrets of one client random: the server handshake
 *             secret (and what came before it) goes at once in a KEYS message of its own (an
 *             inline middlebox holds the server's flight until it comes), the whole set when
 *             both *_TRAFFIC_SECRET_0 are there (or what there is after 2 s) in a second one,
 *             merged by the middlebox; a TLS <= 1.2 CLIENT_RANDOM line becomes a KEYS with
 *             MASTER_SECRET and the KEYLOG flag at once.
 *   channel   one persistent TLS 1.3 connection with a client certificate, non-blocking,
 *             reconnecting with exponential back-off, a bounded queue of encoded messages,
 *             KEEPALIVE when idle.
 *
 * Delivery is at most once: a line is consumed (and its offset persisted) when it is read; its
 * message is counted as sent once SSL_write() took it.  Messages still queued when the agent
 * stops or the queue overflows are counted as dropped.  The key log carries no cipher suite,
 * so KEYS messages carry cipher_suite 0 (unknown); the middlebox learns it from the ServerHello.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "keys/keys.h"

#define AGENT_LINE_MAX 1024 /* longer lines are skipped (and counted) */
#define AGENT_READ_CHUNK 65536
#define AGENT_READ_CHUNKS_MAX 64   /* per wake-up: 4 MiB, then the loop runs again */
#define AGENT_PENDING_MAX 4096     /* client randoms waiting for their secrets */
#define AGENT_PENDING_WAIT_MS 2000 /* then whatever is known is sent */
#define AGENT_QUEUE_MAX 1024       /* encoded messages waiting for the channel */
#define AGENT_POLL_MS 1000         /* stat() fallback when inotify misses something */
#define AGENT_BACKOFF_MIN_MS 100
#define AGENT_BACKOFF_MAX_MS 10000
#define AGENT_CONNECT_TIMEOUT_MS 5000 /* TCP connect + TLS handshake */
#define AGENT_KEEPALIVE_MS 30000      /* docs/keyproto.md: KEEPALIVE every 30 s when idle */
#define AGENT_EXIT_DRAIN_MS 1000      /* on SIGTERM, time given to the queue */
#define AGENT_OUT_CAP 16384           /* one TLS record's worth of messages per SSL_write */
#define AGENT_INOTIFY_BUF 4096

/* TLS 1.3 kinds collected per client random (docs/keyproto.md §KEYS), indexed by kind. */
#define PEND_KINDS 6
#define PEND_BIT(k) (1u << (k))

static const char *prog = "mmtls-keyagent";
static int verbose;

static void say(const char *fmt, ...) MMTLS_PRINTF(1, 2);
static void say(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

#define DEBUG(...)                                                                                 \
    do {                                                                                           \
        if (verbose > 0) {                                                                         \
            say(__VA_ARGS__);                                                                      \
        }                                                                                          \
    } while (0)

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct counters {
    uint64_t lines;      /* complete lines read */
    uint64_t sent;       /* KEYS messages handed to the channel */
    uint64_t skipped;    /* lines that produce nothing: long, malformed, comments, exporters... */
    uint64_t long_lines; /* of which longer than AGENT_LINE_MAX */
    uint64_t malformed;  /* of which refused by the line parser or the encoder */
    uint64_t dropped;    /* secrets lost: pending table or queue full, or not delivered at exit */
    uint64_t keepalives;
    uint64_t connects;
};

struct pending {
    bool used;
    uint8_t cr[32];
    uint32_t have;                       /* PEND_BIT(kind) */
    struct mmtls_secret sec[PEND_KINDS]; /* owned, wiped when sent or dropped */
    uint64_t first_ms;
    uint64_t seq;  /* arrival order, for evicting the oldest */
    uint32_t sent; /* PEND_BIT(kind) already sent ahead (the handshake secrets) */
};

struct queue {
    uint8_t msg[AGENT_QUEUE_MAX][MMTLS_KP_MAX_MSG]; /* encoded messages (secrets: wiped) */
    uint16_t len[AGENT_QUEUE_MAX];
    bool keys[AGENT_QUEUE_MAX]; /* a KEYS message (counted as sent) */
    unsigned head, count;
};

enum chan_state { CH_IDLE, CH_CONNECTING, CH_HANDSHAKE, CH_UP };

struct channel {
    char host[256], port[8];
    SSL_CTX *ctx; /* owned */
    SSL *ssl;     /* owned; NULL unless HANDSHAKE or UP */
    int fd;
    enum chan_state st;
    uint64_t next_try_ms, backoff_ms, deadline_ms, last_send_ms;
    unsigned attempt;
    bool want_write;            /* the last SSL call asked for POLLOUT */
    bool warned;                /* an unreachable server is reported once, then only with -v */
    uint8_t out[AGENT_OUT_CAP]; /* bytes given to SSL_write (retried as is); wiped */
    size_t out_len;
    unsigned out_keys;
};

struct follower {
    const char *path;  /* borrowed: argv/environment */
    const char *state; /* owned copy in state_buf or borrowed argv */
    char state_buf[PATH_MAX];
    char dir[PATH_MAX], base[NAME_MAX + 1];
    int fd; /* -1 while the path does not exist */
    bool fifo;
    dev_t dev;
    ino_t ino;
    uint64_t off;                  /* next byte to read */
    uint64_t line_off;             /* offset where the current (partial) line starts */
    char line[AGENT_LINE_MAX + 1]; /* wiped after each line */
    size_t line_len;
    bool overlong;
    int ino_fd, wd_dir, wd_file;
    bool saved_valid; /* what the state file holds */
    dev_t saved_dev;
    ino_t saved_ino;
    uint64_t saved_off;
};

struct agent {
    struct follower f;
    struct channel ch;
    struct queue q;
    struct pending pend[AGENT_PENDING_MAX];
    unsigned npend;
    uint64_t pend_seq;
    struct counters c;
};

static volatile sig_atomic_t sig_term, sig_usr1;

static void on_signal(int sig)
{
    if (sig == SIGUSR1) {
        sig_usr1 = 1;
    } else {
        sig_term = 1;
    }
}

static void print_counters(const struct agent *a)
{
    say("lines %" PRIu64 ", sent %" PRIu64 ", skipped %" PRIu64 " (long %" PRIu64
        ", malformed %" PRIu64 "), dropped %" PRIu64 ", pending %u, queued %u, keepalives %" PRIu64
        ", connects %" PRIu64 ", channel %s",
        a->c.lines, a->c.sent, a->c.skipped, a->c.long_lines, a->c.malformed, a->c.dropped,
        a->npend, a->q.count, a->c.keepalives, a->c.connects, a->ch.st == CH_UP ? "up" : "down");
}

/* ------------------------------------------------------------------------------------------ */
/* Queue of encoded messages                                                                   */

static void queue_push(struct agent *a, const uint8_t *msg, size_t len, bool keys)
{
    struct queue *q = &a->q;
    unsigned slot;

    if (q->count == AGENT_QUEUE_MAX) {
        /* Bounded: the oldest message goes (the middlebox has likely given up on it). */
        mmtls_wipe(q->msg[q->head], q->len[q->head]);
        if (q->keys[q->head]) {
            a->c.dropped++;
        }
        q->head = (q->head + 1) % AGENT_QUEUE_MAX;
        q->count--;
    }
    slot = (q->head + q->count) % AGENT_QUEUE_MAX;
    memcpy(q->msg[slot], msg, len);
    q->len[slot] = (uint16_t)len;
    q->keys[slot] = keys;
    q->count++;
}

/* Encodes m and queues it; wipes m and the encoding. */
static void send_msg(struct agent *a, struct mmtls_kp_msg *m)
{
    uint8_t buf[MMTLS_KP_MAX_MSG];
    int n = mmtls_kp_encode(m, buf, sizeof(buf));

    if (n < 0) {
        /* e.g. a 64-byte secret (SHA-512), which the protocol cannot carry */
        DEBUG("cannot encode a message: %s", mmtls_strerror(n));
        a->c.malformed++;
        a->c.skipped++;
    } else {
        queue_push(a, buf, (size_t)n, m->type == MMTLS_KP_KEYS);
        mmtls_wipe(buf, (size_t)n);
    }
    mmtls_kp_msg_wipe(m);
}

/* ------------------------------------------------------------------------------------------ */
/* Grouping TLS 1.3 secrets by client random                                                   */

/* The kinds in `bits` as one KEYS message (KEYLOG flag: no suite in a key log). */
static void pending_send(struct agent *a, const struct pending *p, uint32_t bits)
{
    struct mmtls_kp_msg m;

    memset(&m, 0, sizeof(m));
    m.type = MMTLS_KP_KEYS;
    memcpy(m.client_random, p->cr, 32);
    m.flags = MMTLS_KP_F_KEYLOG;
    m.tls_version = 0x0304;
    m.cipher_suite = 0; /* unknown: the key log does not say (see the file comment) */
    for (unsigned k = 1; k < PEND_KINDS; k++) {
        if (bits & PEND_BIT(k)) {
            m.kind[m.n] = (uint8_t)k;
            m.secret[m.n] = p->sec[k];
            m.n++;
        }
    }
    if (bits & PEND_BIT(MMTLS_KP_CLIENT_EARLY)) {
        m.flags |= MMTLS_KP_F_EARLY; /* docs/keyproto.md: kind 1 only with EARLY */
    }
    send_msg(a, &m);
}

static void pending_emit(struct agent *a, struct pending *p)
{
    /* Everything the group has, unless only what went ahead already (the handshake secrets of a
     * session whose application secrets never came: the wait expired). */
    if ((p->have & ~p->sent) != 0) {
        pending_send(a, p, p->have);
    }
    for (unsigned k = 0; k < PEND_KINDS; k++) {
        mmtls_secret_wipe(&p->sec[k]);
    }
    memset(p, 0, sizeof(*p));
    a->npend--;
}

static struct pending *pending_get(struct agent *a, const uint8_t cr[32], uint64_t now)
{
    struct pending *free_slot = NULL, *oldest = NULL;

    for (unsigned i = 0; i < AGENT_PENDING_MAX; i++) {
        struct pending *p = &a->pend[i];

        if (!p->used) {
            if (free_slot == NULL) {
                free_slot = p;
            }
            continue;
        }
        if (memcmp(p->cr, cr, 32) == 0) {
            return p;
        }
        if (oldest == NULL || p->seq < oldest->seq) {
            oldest = p;
        }
    }
    if (free_slot == NULL) {
        /* Bounded: the oldest group is dropped, its secrets wiped. */
        for (unsigned k = 0; k < PEND_KINDS; k++) {
            mmtls_secret_wipe(&oldest->sec[k]);
        }
        memset(oldest, 0, sizeof(*oldest));
        a->npend--;
        a->c.dropped++;
        free_slot = oldest;
    }
    free_slot->used = true;
    memcpy(free_slot->cr, cr, 32);
    free_slot->first_ms = now;
    free_slot->seq = a->pend_seq++;
    a->npend++;
    return free_slot;
}

static void pending_add(struct agent *a, const struct mmtls_keylog_entry *e, unsigned kind,
                        uint64_t now)
{
    struct pending *p = pending_get(a, e->client_random, now);

    if (p->have & PEND_BIT(kind)) {
        a->c.skipped++; /* a repeated line: the first value is kept */
        return;
    }
    p->sec[kind] = e->secret;
    p->have |= PEND_BIT(kind);
    if ((p->have & PEND_BIT(MMTLS_KP_CLIENT_APP0)) && (p->have & PEND_BIT(MMTLS_KP_SERVER_APP0))) {
        pending_emit(a, p);
        return;
    }
    if (p->sent == 0 && (p->have & PEND_BIT(MMTLS_KP_SERVER_HS))) {
        /* The server handshake secret goes at once (with the client's, and the early one, if
         * written already): the browser wrote it at the ServerHello, and an inline middlebox
         * holds the server's TLS 1.3 flight until it comes (--server-flight hold); the rest
         * follows in a second message, merged there. */
        pending_send(a, p, p->have);
        p->sent = p->have;
    }
}

/* Sends the groups older than the wait (all of them when `all`).  Returns the next deadline. */
static uint64_t pending_expire(struct agent *a, uint64_t now, bool all)
{
    uint64_t next = UINT64_MAX;

    for (unsigned i = 0; i < AGENT_PENDING_MAX && a->npend > 0; i++) {
        struct pending *p = &a->pend[i];

        if (!p->used) {
            continue;
        }
        if (all || now - p->first_ms >= AGENT_PENDING_WAIT_MS) {
            pending_emit(a, p);
        } else if (p->first_ms + AGENT_PENDING_WAIT_MS < next) {
            next = p->first_ms + AGENT_PENDING_WAIT_MS;
        }
    }
    return next;
}

static void agent_line(struct agent *a, const char *line, size_t len, uint64_t now)
{
    struct mmtls_keylog_entry e;
    struct mmtls_kp_msg m;
    int rc;

    a->c.lines++;
    rc = mmtls_keylog_line_parse(line, len, &e);
    if (rc != 0) {
        a->c.skipped++; /* DECLINED: blank, comment, unknown label (RFC 9850 §2) */
        if (rc < 0) {
            a->c.malformed++;
            DEBUG("%s: malformed line skipped", a->f.path);
        }
        return;
    }
    switch (e.label) {
    case MMTLS_KL_CLIENT_RANDOM:
        /* TLS <= 1.2: the master secret is all a key log has (docs/keyproto.md, kind 32). */
        memset(&m, 0, sizeof(m));
        m.type = MMTLS_KP_KEYS;
        memcpy(m.client_random, e.client_random, 32);
        m.flags = MMTLS_KP_F_KEYLOG;
        m.tls_version = 0x0303; /* the line does not say which; <= 1.2 is what matters */
        m.cipher_suite = 0;
        m.n = 1;
        m.kind[0] = MMTLS_KP_MASTER;
        m.secret[0] = e.secret;
        send_msg(a, &m);
        break;
    case MMTLS_KL_CLIENT_EARLY_TRAFFIC_SECRET:
        pending_add(a, &e, MMTLS_KP_CLIENT_EARLY, now);
        break;
    case MMTLS_KL_CLIENT_HANDSHAKE_TRAFFIC_SECRET:
        pending_add(a, &e, MMTLS_KP_CLIENT_HS, now);
        break;
    case MMTLS_KL_SERVER_HANDSHAKE_TRAFFIC_SECRET:
        pending_add(a, &e, MMTLS_KP_SERVER_HS, now);
        break;
    case MMTLS_KL_CLIENT_TRAFFIC_SECRET:
    case MMTLS_KL_SERVER_TRAFFIC_SECRET:
        if (e.index != 0) {
            /* Later generations: the middlebox follows KeyUpdate itself (docs/keyproto.md). */
            a->c.skipped++;
            break;
        }
        pending_add(a, &e,
                    e.label == MMTLS_KL_CLIENT_TRAFFIC_SECRET ? MMTLS_KP_CLIENT_APP0
                                                              : MMTLS_KP_SERVER_APP0,
                    now);
        break;
    default:
        /* EXPORTER_SECRET, EARLY_EXPORTER_SECRET: the protocol has no kind for them. */
        a->c.skipped++;
        break;
    }
    mmtls_secret_wipe(&e.secret);
}

/* ------------------------------------------------------------------------------------------ */
/* State file: "mmtls-keyagent-state 1 <dev> <ino> <offset>\n", replaced atomically.            */

static int state_write(struct follower *f)
{
    char tmp[PATH_MAX + 8];
    char text[128];
    int fd, n;

    if (f->fifo || f->fd < 0) {
        return 0; /* a FIFO has no offsets to resume from */
    }
    if (f->saved_valid && f->saved_dev == f->dev && f->saved_ino == f->ino &&
        f->saved_off == f->line_off) {
        return 0;
    }
    n = snprintf(text, sizeof(text), "mmtls-keyagent-state 1 %ju %ju %" PRIu64 "\n",
                 (uintmax_t)f->dev, (uintmax_t)f->ino, f->line_off);
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", f->state) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return MMTLS_E_IO;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return MMTLS_E_IO;
    }
    if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
        int saved = errno;

        close(fd);
        unlink(tmp);
        errno = saved;
        return MMTLS_E_IO;
    }
    if (close(fd) != 0 || rename(tmp, f->state) != 0) {
        int saved = errno;

        unlink(tmp);
        errno = saved;
        return MMTLS_E_IO;
    }
    f->saved_valid = true;
    f->saved_dev = f->dev;
    f->saved_ino = f->ino;
    f->saved_off = f->line_off;
    return 0;
}

static void state_save(struct follower *f)
{
    if (state_write(f) != 0) {
        say("cannot write state file %s: %s", f->state, strerror(errno));
    }
}

/* Reads the state file, if any, into saved_*.  A missing file is fine; a garbled one is
 * reported and ignored (the key log is then read from its start). */
static void state_read(struct follower *f)
{
    FILE *fp = fopen(f->state, "r");
    uintmax_t dev, ino;
    uint64_t off;

    f->saved_valid = false;
    if (fp == NULL) {
        return;
    }
    if (fscanf(fp, "mmtls-keyagent-state 1 %ju %ju %" SCNu64, &dev, &ino, &off) == 3) {
        f->saved_valid = true;
        f->saved_dev = (dev_t)dev;
        f->saved_ino = (ino_t)ino;
        f->saved_off = off;
    } else {
        say("%s: unreadable state ignored", f->state);
    }
    fclose(fp);
}

/* ------------------------------------------------------------------------------------------ */
/* Following the key log                                                                        */

static void follow_unwatch_file(struct follower *f)
{
    if (f->ino_fd >= 0 && f->wd_file >= 0) {
        (void)inotify_rm_watch(f->ino_fd, f->wd_file);
    }
    f->wd_file = -1;
}

static void follow_close(struct follower *f)
{
    follow_unwatch_file(f);
    if (f->fd >= 0) {
        close(f->fd);
    }
    f->fd = -1;
}

static void follow_reset_line(struct agent *a)
{
    struct follower *f = &a->f;

    if (f->line_len > 0 || f->overlong) {
        a->c.skipped++; /* an unfinished line of a file that went away */
    }
    mmtls_wipe(f->line, sizeof(f->line));
    f->line_len = 0;
    f->overlong = false;
}

/* Opens the path.  `resume`: the first open at start-up, where the state file decides the
 * offset; otherwise a file that appeared or replaced the old one is read from its start.
 * Returns 0, or MMTLS_E_NOTFOUND when the path does not exist, or MMTLS_E_IO (errno set). */
static int follow_open(struct agent *a, bool resume)
{
    struct follower *f = &a->f;
    struct stat st;
    int fd;

    fd = open(f->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? MMTLS_E_NOTFOUND : MMTLS_E_IO;
    }
    if (fstat(fd, &st) != 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        return MMTLS_E_IO;
    }
    if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return MMTLS_E_IO;
    }
    f->fd = fd;
    f->fifo = S_ISFIFO(st.st_mode);
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->off = 0;
    if (!f->fifo && resume && f->saved_valid && f->saved_dev == st.st_dev &&
        f->saved_ino == st.st_ino) {
        if (f->saved_off <= (uint64_t)st.st_size) {
            f->off = f->saved_off; /* the same file: go on where we stopped */
            DEBUG("%s: resuming at offset %" PRIu64, f->path, f->off);
        } else {
            DEBUG("%s: shorter than the saved offset, reading from the start", f->path);
        }
    } else if (!f->fifo) {
        DEBUG("%s: reading from the start", f->path);
    }
    f->line_off = f->off;
    if (f->ino_fd >= 0) {
        f->wd_file = inotify_add_watch(f->ino_fd, f->path,
                                       IN_MODIFY | IN_MOVE_SELF | IN_DELETE_SELF | IN_ATTRIB);
    }
    return 0;
}

/* Feeds bytes to the line splitter. */
static void follow_feed(struct agent *a, const char *p, size_t n, uint64_t now)
{
    struct follower *f = &a->f;

    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t seg = nl != NULL ? (size_t)(nl - p) : n;

        if (!f->overlong) {
            if (seg > AGENT_LINE_MAX - f->line_len) {
                f->overlong = true;
                mmtls_wipe(f->line, f->line_len);
                f->line_len = 0;
            } else {
                memcpy(f->line + f->line_len, p, seg);
                f->line_len += seg;
            }
        }
        if (nl == NULL) {
            f->off += seg;
            return; /* a partial line waits for its newline */
        }
        f->off += seg + 1;
        if (f->overlong) {
            a->c.lines++;
            a->c.skipped++;
            a->c.long_lines++;
        } else {
            agent_line(a, f->line, f->line_len, now);
        }
        mmtls_wipe(f->line, f->line_len);
        f->line_len = 0;
        f->overlong = false;
        f->line_off = f->off;
        p += seg + 1;
        n -= seg + 1;
    }
}

/* Reads what is there.  Returns true when a FIFO's writers all went away (reopen it). */
static bool follow_read(struct agent *a, uint64_t now)
{
    struct follower *f = &a->f;
    char buf[AGENT_READ_CHUNK];
    bool eof = false;

    if (f->fd < 0) {
        return false;
    }
    for (unsigned i = 0; i < AGENT_READ_CHUNKS_MAX; i++) {
        ssize_t n =
            f->fifo ? read(f->fd, buf, sizeof(buf)) : pread(f->fd, buf, sizeof(buf), (off_t)f->off);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                say("%s: read: %s", f->path, strerror(errno));
            }
            break;
        }
        if (n == 0) {
            eof = f->fifo;
            break;
        }
        follow_feed(a, buf, (size_t)n, now);
        mmtls_wipe(buf, (size_t)n);
    }
    if (!f->fifo) {
        state_save(f); /* once per batch, only when the offset moved */
    }
    return eof;
}

/* The periodic and inotify-driven check: read, then look for rotation and truncation. */
static void follow_check(struct agent *a, uint64_t now)
{
    struct follower *f = &a->f;
    struct stat st;
    int rc;

    if (f->fd < 0) {
        rc = follow_open(a, false);
        if (rc == MMTLS_E_NOTFOUND) {
            return;
        }
        if (rc != 0) {
            DEBUG("%s: cannot open: %s", f->path, strerror(errno));
            return;
        }
        DEBUG("%s: appeared", f->path);
    }
    if (f->fifo) {
        if (follow_read(a, now)) {
            /* Every writer closed: reopen for the next one (a partial line is lost).  The new
             * descriptor is opened before the old one is closed, so the pipe never loses its
             * last reader: a writer that opened in between keeps its bytes (they are in the
             * pipe, read through the new descriptor) and never sees EPIPE. */
            int old = f->fd;

            follow_unwatch_file(f);
            f->fd = -1;
            follow_reset_line(a);
            if (follow_open(a, false) != 0) {
                DEBUG("%s: cannot reopen: %s", f->path, strerror(errno));
            }
            close(old);
        }
        return;
    }
    (void)follow_read(a, now); /* what the old file still had */
    if (stat(f->path, &st) != 0) {
        return; /* moved away or deleted: keep the old file until a new one appears */
    }
    if (st.st_dev != f->dev || st.st_ino != f->ino) {
        /* rotation: another file behind the path, read from its beginning */
        DEBUG("%s: replaced, reading the new file from the start", f->path);
        follow_reset_line(a);
        follow_close(f);
        rc = follow_open(a, false);
        if (rc != 0) {
            DEBUG("%s: cannot open: %s", f->path, strerror(errno));
            return;
        }
        (void)follow_read(a, now);
        return;
    }
    if ((uint64_t)st.st_size < f->off) {
        DEBUG("%s: truncated, reading from the start", f->path);
        follow_reset_line(a);
        f->off = 0;
        f->line_off = 0;
        (void)follow_read(a, now);
    }
}

/* Drains the inotify queue; returns true if something concerns the key log. */
static bool follow_inotify(struct follower *f)
{
    char buf[AGENT_INOTIFY_BUF] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool hit = false;

    for (unsigned round = 0; round < 64; round++) {
        ssize_t n = read(f->ino_fd, buf, sizeof(buf));
        size_t off = 0;

        if (n <= 0) {
            break;
        }
        while ((size_t)n - off >= sizeof(struct inotify_event)) {
            const struct inotify_event *ev = (const struct inotify_event *)(buf + off);

            if (ev->len > (size_t)n - off - sizeof(*ev)) {
                break;
            }
            if (ev->wd == f->wd_file || (ev->mask & IN_Q_OVERFLOW) ||
                (ev->wd == f->wd_dir && ev->len > 0 && strcmp(ev->name, f->base) == 0)) {
                hit = true;
            }
            if (ev->wd == f->wd_file && (ev->mask & IN_IGNORED)) {
                f->wd_file = -1;
            }
            off += sizeof(*ev) + ev->len;
        }
    }
    return hit;
}

static int follow_init(struct agent *a, const char *path, const char *state)
{
    struct follower *f = &a->f;
    const char *slash;
    int rc;

    f->path = path;
    f->fd = -1;
    f->ino_fd = -1;
    f->wd_dir = -1;
    f->wd_file = -1;
    slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(f->dir, sizeof(f->dir), ".");
        snprintf(f->base, sizeof(f->base), "%s", path);
    } else {
        size_t dl = slash == path ? 1 : (size_t)(slash - path);

        if (dl >= sizeof(f->dir) || strlen(slash + 1) >= sizeof(f->base) || slash[1] == '\0') {
            say("--keylog %s: not a file name", path);
            return MMTLS_E_INVAL;
        }
        memcpy(f->dir, path, dl);
        f->dir[dl] = '\0';
        snprintf(f->base, sizeof(f->base), "%s", slash + 1);
    }
    if (state != NULL) {
        f->state = state;
    } else {
        if (snprintf(f->state_buf, sizeof(f->state_buf), "%s.mmtls-agent-state", path) >=
            (int)sizeof(f->state_buf)) {
            say("--keylog %s: name too long", path);
            return MMTLS_E_INVAL;
        }
        f->state = f->state_buf;
    }

    struct stat dst;
    if (stat(f->dir, &dst) != 0 || !S_ISDIR(dst.st_mode)) {
        say("--keylog %s: directory %s: %s", path, f->dir,
            errno != 0 ? strerror(errno) : "not a directory");
        return MMTLS_E_INVAL;
    }
    f->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (f->ino_fd >= 0) {
        f->wd_dir = inotify_add_watch(f->ino_fd, f->dir,
                                      IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                          IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB);
        if (f->wd_dir < 0) {
            DEBUG("inotify on %s: %s (polling every second)", f->dir, strerror(errno));
        }
    } else {
        DEBUG("inotify: %s (polling every second)", strerror(errno));
    }

    state_read(f);
    rc = follow_open(a, true);
    if (rc == MMTLS_E_NOTFOUND) {
        DEBUG("%s: does not exist yet, waiting for it", path);
        return 0;
    }
    if (rc != 0) {
        say("--keylog %s: %s", path,
            errno == EINVAL ? "not a regular file or FIFO" : strerror(errno));
        return MMTLS_E_IO;
    }
    if (!f->fifo) {
        /* The state file must be writable, or a restart would re-send everything. */
        f->saved_valid = false;
        if (state_write(f) != 0) {
            say("cannot write state file %s: %s", f->state, strerror(errno));
            return MMTLS_E_IO;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Key channel: TLS 1.3 client with a certificate, non-blocking                                */

static void ssl_err_string(char *out, size_t cap)
{
    unsigned long e = ERR_get_error();

    if (e == 0) {
        snprintf(out, cap, "%s", errno != 0 ? strerror(errno) : "unknown error");
    } else {
        ERR_error_string_n(e, out, cap);
    }
    ERR_clear_error();
}

static int chan_parse_addr(struct channel *ch, const char *s)
{
    const char *colon;
    size_t hl;
    char *end;
    unsigned long port;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');

        if (rb == NULL || rb[1] != ':') {
            return MMTLS_E_INVAL;
        }
        hl = (size_t)(rb - s - 1);
        s++;
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return MMTLS_E_INVAL;
        }
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= sizeof(ch->host)) {
        return MMTLS_E_INVAL;
    }
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port == 0 || port > 65535) {
        return MMTLS_E_INVAL;
    }
    memcpy(ch->host, s, hl);
    ch->host[hl] = '\0';
    snprintf(ch->port, sizeof(ch->port), "%lu", port);
    return 0;
}

static int check_readable(const char *what, const char *path)
{
    FILE *fp = fopen(path, "r");

    if (fp == NULL) {
        say("%s %s: %s", what, path, strerror(errno));
        return MMTLS_E_IO;
    }
    fclose(fp);
    return 0;
}

static int chan_init(struct channel *ch, const char *addr, const char *ca, const char *cert,
                     const char *key)
{
    char err[256];

    ch->fd = -1;
    ch->backoff_ms = AGENT_BACKOFF_MIN_MS;
    if (chan_parse_addr(ch, addr) != 0) {
        say("--keyserver %s: expected HOST:PORT or [IPV6]:PORT", addr);
        return MMTLS_E_INVAL;
    }
    if (check_readable("--ca", ca) != 0 || check_readable("--cert", cert) != 0 ||
        check_readable("--key", key) != 0) {
        return MMTLS_E_IO;
    }
    ch->ctx = SSL_CTX_new(TLS_client_method());
    if (ch->ctx == NULL || !SSL_CTX_set_min_proto_version(ch->ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ch->ctx, TLS1_3_VERSION)) {
        ssl_err_string(err, sizeof(err));
        say("cannot create a TLS context: %s", err);
        return MMTLS_E_CRYPTO;
    }
    if (!SSL_CTX_load_verify_locations(ch->ctx, ca, NULL)) {
        ssl_err_string(err, sizeof(err));
        say("--ca %s: %s", ca, err);
        return MMTLS_E_CRYPTO;
    }
    if (!SSL_CTX_use_certificate_chain_file(ch->ctx, cert)) {
        ssl_err_string(err, sizeof(err));
        say("--cert %s: %s", cert, err);
        return MMTLS_E_CRYPTO;
    }
    if (!SSL_CTX_use_PrivateKey_file(ch->ctx, key, SSL_FILETYPE_PEM) ||
        !SSL_CTX_check_private_key(ch->ctx)) {
        ssl_err_string(err, sizeof(err));
        say("--key %s: %s", key, err);
        return MMTLS_E_CRYPTO;
    }
    /* docs/keyproto.md: the middlebox is authenticated by its certificate (chain to --ca and
     * the name or address of --keyserver, set per connection). */
    SSL_CTX_set_verify(ch->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(ch->ctx, SSL_SESS_CACHE_OFF);
    return 0;
}

static void chan_close(struct channel *ch)
{
    if (ch->ssl != NULL) {
        SSL_free(ch->ssl);
        ch->ssl = NULL;
    }
    if (ch->fd >= 0) {
        close(ch->fd);
        ch->fd = -1;
    }
    ch->st = CH_IDLE;
    ch->want_write = false;
}

/* Drops the connection and schedules the next attempt.  Bytes in `out` are kept and retried
 * on the next connection (SSL_write did not report them written). */
static void chan_fail(struct channel *ch, uint64_t now, const char *why)
{
    bool was_up = ch->st == CH_UP;

    chan_close(ch);
    if (was_up || !ch->warned || verbose > 0) {
        say("key server %s:%s: %s; retrying in %" PRIu64 " ms", ch->host, ch->port, why,
            ch->backoff_ms);
        ch->warned = true;
    }
    ch->next_try_ms = now + ch->backoff_ms;
    ch->backoff_ms = MMTLS_MIN(ch->backoff_ms * 2, (uint64_t)AGENT_BACKOFF_MAX_MS);
}

static void chan_connect(struct channel *ch, uint64_t now)
{
    struct addrinfo hints, *res = NULL, *ai;
    char why[300];
    unsigned n = 0, pick;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    /* A blocking lookup: the key server is configured by address or a local name. */
    rc = getaddrinfo(ch->host, ch->port, &hints, &res);
    if (rc != 0) {
        snprintf(why, sizeof(why), "%s", gai_strerror(rc));
        chan_fail(ch, now, why);
        return;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        n++;
    }
    pick = ch->attempt++ % n; /* several addresses: take turns */
    for (ai = res; pick > 0; ai = ai->ai_next) {
        pick--;
    }
    ch->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (ch->fd < 0) {
        snprintf(why, sizeof(why), "socket: %s", strerror(errno));
        freeaddrinfo(res);
        chan_fail(ch, now, why);
        return;
    }
    int one = 1;
    (void)setsockopt(ch->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    rc = connect(ch->fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(res);
    if (rc != 0 && errno != EINPROGRESS) {
        snprintf(why, sizeof(why), "connect: %s", strerror(errno));
        chan_fail(ch, now, why);
        return;
    }
    ch->st = CH_CONNECTING;
    ch->deadline_ms = now + AGENT_CONNECT_TIMEOUT_MS;
}

static void chan_handshake(struct channel *ch, uint64_t now)
{
    char why[300], err[256];
    int rc = SSL_connect(ch->ssl);

    if (rc == 1) {
        ch->st = CH_UP;
        ch->want_write = false;
        ch->backoff_ms = AGENT_BACKOFF_MIN_MS;
        ch->last_send_ms = now;
        if (ch->warned || verbose > 0) {
            say("connected to key server %s:%s", ch->host, ch->port);
        }
        ch->warned = false;
        return;
    }
    switch (SSL_get_error(ch->ssl, rc)) {
    case SSL_ERROR_WANT_READ: ch->want_write = false; return;
    case SSL_ERROR_WANT_WRITE: ch->want_write = true; return;
    default: break;
    }
    ssl_err_string(err, sizeof(err));
    long vr = SSL_get_verify_result(ch->ssl);
    if (vr != X509_V_OK) {
        snprintf(why, sizeof(why), "TLS handshake: %s (%s)", err,
                 X509_verify_cert_error_string(vr));
    } else {
        snprintf(why, sizeof(why), "TLS handshake: %s", err);
    }
    chan_fail(ch, now, why);
}

static void chan_connected(struct channel *ch, uint64_t now)
{
    struct in6_addr a6;
    char why[300];
    int soerr = 0;
    socklen_t sl = sizeof(soerr);

    if (getsockopt(ch->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
        soerr = errno;
    }
    if (soerr != 0) {
        snprintf(why, sizeof(why), "connect: %s", strerror(soerr));
        chan_fail(ch, now, why);
        return;
    }
    ch->ssl = SSL_new(ch->ctx);
    if (ch->ssl == NULL || !SSL_set_fd(ch->ssl, ch->fd)) {
        chan_fail(ch, now, "SSL_new failed");
        return;
    }
    if (inet_pton(AF_INET, ch->host, &a6) == 1 || inet_pton(AF_INET6, ch->host, &a6) == 1) {
        /* an address: the certificate must name it (subjectAltName iPAddress) */
        if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ch->ssl), ch->host)) {
            chan_fail(ch, now, "cannot set the expected address");
            return;
        }
    } else if (!SSL_set1_host(ch->ssl, ch->host) || !SSL_set_tlsext_host_name(ch->ssl, ch->host)) {
        chan_fail(ch, now, "cannot set the expected host name");
        return;
    }
    ch->st = CH_HANDSHAKE;
    chan_handshake(ch, now);
}

/* Reads and discards what the server sends (KEEPALIVE answers, session tickets); notices a
 * close. */
static void chan_read(struct channel *ch, uint64_t now)
{
    uint8_t buf[4096];
    char err[256], why[300];

    for (unsigned i = 0; i < 16; i++) {
        int rc = SSL_read(ch->ssl, buf, sizeof(buf));

        if (rc > 0) {
            continue;
        }
        switch (SSL_get_error(ch->ssl, rc)) {
        case SSL_ERROR_WANT_READ: return;
        case SSL_ERROR_WANT_WRITE: ch->want_write = true; return;
        case SSL_ERROR_ZERO_RETURN: chan_fail(ch, now, "closed by the server"); return;
        default:
            ssl_err_string(err, sizeof(err));
            snprintf(why, sizeof(why), "channel lost: %s", err);
            chan_fail(ch, now, why);
            return;
        }
    }
}

/* Writes queued messages, several per SSL_write (one TLS record). */
static void chan_flush(struct agent *a, uint64_t now)
{
    struct channel *ch = &a->ch;
    struct queue *q = &a->q;
    char err[256], why[300];

    while (ch->st == CH_UP) {
        if (ch->out_len == 0) {
            while (q->count > 0 && ch->out_len + q->len[q->head] <= sizeof(ch->out)) {
                memcpy(ch->out + ch->out_len, q->msg[q->head], q->len[q->head]);
                ch->out_len += q->len[q->head];
                ch->out_keys += q->keys[q->head] ? 1 : 0;
                mmtls_wipe(q->msg[q->head], q->len[q->head]);
                q->head = (q->head + 1) % AGENT_QUEUE_MAX;
                q->count--;
            }
            if (ch->out_len == 0) {
                return;
            }
        }
        ERR_clear_error();
        int rc = SSL_write(ch->ssl, ch->out, (int)ch->out_len);
        if (rc > 0) {
            a->c.sent += ch->out_keys;
            mmtls_wipe(ch->out, ch->out_len);
            ch->out_len = 0;
            ch->out_keys = 0;
            ch->last_send_ms = now;
            ch->want_write = false;
            continue;
        }
        switch (SSL_get_error(ch->ssl, rc)) {
        case SSL_ERROR_WANT_WRITE: ch->want_write = true; return;
        case SSL_ERROR_WANT_READ: return;
        default:
            ssl_err_string(err, sizeof(err));
            snprintf(why, sizeof(why), "write: %s", err);
            chan_fail(ch, now, why);
            return;
        }
    }
}

static void chan_keepalive(struct agent *a, uint64_t now)
{
    struct mmtls_kp_msg m;

    if (a->ch.st != CH_UP || a->q.count > 0 || a->ch.out_len > 0 ||
        now - a->ch.last_send_ms < AGENT_KEEPALIVE_MS) {
        return;
    }
    memset(&m, 0, sizeof(m));
    m.type = MMTLS_KP_KEEPALIVE;
    send_msg(a, &m);
    a->c.keepalives++;
    a->ch.last_send_ms = now;
}

/* Drives the channel after poll(): revents of its fd (0 when it had none). */
static void chan_step(struct agent *a, short revents, uint64_t now)
{
    struct channel *ch = &a->ch;

    switch (ch->st) {
    case CH_IDLE:
        if (now >= ch->next_try_ms) {
            a->c.connects++;
            chan_connect(ch, now);
        }
        break;
    case CH_CONNECTING:
        if (revents != 0) {
            chan_connected(ch, now);
        } else if (now >= ch->deadline_ms) {
            chan_fail(ch, now, "connect timed out");
        }
        break;
    case CH_HANDSHAKE:
        if (revents != 0) {
            chan_handshake(ch, now);
        } else if (now >= ch->deadline_ms) {
            chan_fail(ch, now, "TLS handshake timed out");
        }
        break;
    case CH_UP:
        if (revents & (POLLIN | POLLHUP | POLLERR)) {
            chan_read(ch, now);
        }
        break;
    }
    chan_keepalive(a, now);
    chan_flush(a, now);
}

static short chan_events(const struct channel *ch)
{
    switch (ch->st) {
    case CH_IDLE: return 0;
    case CH_CONNECTING: return POLLOUT;
    case CH_HANDSHAKE: return ch->want_write ? POLLOUT : POLLIN;
    case CH_UP: return (short)(POLLIN | (ch->want_write ? POLLOUT : 0));
    }
    return 0;
}

static uint64_t chan_deadline(const struct agent *a)
{
    const struct channel *ch = &a->ch;

    switch (ch->st) {
    case CH_IDLE: return ch->next_try_ms;
    case CH_CONNECTING:
    case CH_HANDSHAKE: return ch->deadline_ms;
    case CH_UP: return ch->last_send_ms + AGENT_KEEPALIVE_MS;
    }
    return UINT64_MAX;
}

/* ------------------------------------------------------------------------------------------ */
/* Main loop                                                                                   */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s --keylog PATH --keyserver HOST:PORT --ca CA.pem --cert CERT.pem\n"
            "       --key KEY.pem [--state FILE] [-v]\n"
            "Follows the NSS key log PATH (a file or a FIFO) and sends its secrets to the mmtls\n"
            "key server.  MMTLS_KEYSERVER, MMTLS_CA, MMTLS_CERT and MMTLS_KEY stand in for\n"
            "absent options.  The offset reached is kept in --state (default\n"
            "PATH.mmtls-agent-state).  SIGUSR1 prints counters; SIGTERM/SIGINT stop.\n",
            prog);
}

static int run(struct agent *a)
{
    sigset_t empty;
    uint64_t last_check = 0;

    sigemptyset(&empty);
    while (!sig_term) {
        struct pollfd pfd[3];
        int nfd = 0, i_ino = -1, i_log = -1, i_ch = -1;
        uint64_t now = now_ms(), next, pend_next;

        if (now - last_check >= AGENT_POLL_MS) {
            follow_check(a, now); /* the polling fallback */
            last_check = now;
        }
        pend_next = a->npend > 0 ? pending_expire(a, now, false) : UINT64_MAX;
        chan_step(a, 0, now);

        next = MMTLS_MIN(last_check + AGENT_POLL_MS, pend_next);
        next = MMTLS_MIN(next, chan_deadline(a));
        if (a->f.ino_fd >= 0) {
            i_ino = nfd;
            pfd[nfd++] = (struct pollfd){.fd = a->f.ino_fd, .events = POLLIN};
        }
        if (a->f.fd >= 0 && a->f.fifo) {
            i_log = nfd;
            pfd[nfd++] = (struct pollfd){.fd = a->f.fd, .events = POLLIN};
        }
        if (a->ch.fd >= 0 && chan_events(&a->ch) != 0) {
            i_ch = nfd;
            pfd[nfd++] = (struct pollfd){.fd = a->ch.fd, .events = chan_events(&a->ch)};
        }
        now = now_ms();
        uint64_t wait = next > now ? next - now : 0;
        struct timespec ts = {.tv_sec = (time_t)(wait / 1000),
                              .tv_nsec = (long)(wait % 1000) * 1000000L};
        /* Signals are blocked outside ppoll, so none is lost between the checks and the wait. */
        int rc = ppoll(pfd, (nfds_t)nfd, &ts, &empty);
        if (rc < 0 && errno != EINTR) {
            say("poll: %s", strerror(errno));
            return 1;
        }
        now = now_ms();
        if (sig_usr1) {
            sig_usr1 = 0;
            print_counters(a);
        }
        if (rc <= 0) {
            continue;
        }
        if ((i_ino >= 0 && pfd[i_ino].revents != 0 && follow_inotify(&a->f)) ||
            (i_log >= 0 && pfd[i_log].revents != 0)) {
            follow_check(a, now);
            last_check = now;
        }
        if (i_ch >= 0 && pfd[i_ch].revents != 0) {
            chan_step(a, pfd[i_ch].revents, now);
        }
    }
    return 0;
}

/* SIGTERM: send what is pending, give the queue a moment, keep the offset. */
static void shutdown_agent(struct agent *a)
{
    uint64_t now = now_ms(), end = now + AGENT_EXIT_DRAIN_MS;

    (void)pending_expire(a, now, true);
    while ((a->q.count > 0 || a->ch.out_len > 0) && a->ch.st != CH_IDLE && now < end) {
        struct pollfd pfd = {.fd = a->ch.fd, .events = chan_events(&a->ch)};

        if (poll(&pfd, 1, (int)(end - now)) < 0 && errno != EINTR) {
            break;
        }
        now = now_ms();
        chan_step(a, pfd.revents, now);
    }
    for (unsigned i = 0; i < a->q.count; i++) {
        unsigned slot = (a->q.head + i) % AGENT_QUEUE_MAX;

        a->c.dropped += a->q.keys[slot] ? 1 : 0;
        mmtls_wipe(a->q.msg[slot], a->q.len[slot]);
    }
    a->q.count = 0;
    a->c.dropped += a->ch.out_keys;
    mmtls_wipe(a->ch.out, sizeof(a->ch.out));
    state_save(&a->f);
    if (a->ch.ssl != NULL && a->ch.st == CH_UP) {
        (void)SSL_shutdown(a->ch.ssl);
    }
    chan_close(&a->ch);
    SSL_CTX_free(a->ch.ctx);
    follow_close(&a->f);
    if (a->f.ino_fd >= 0) {
        close(a->f.ino_fd);
    }
}

static const char *opt_or_env(const char *opt, const char *env)
{
    const char *v = opt != NULL ? opt : getenv(env);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"keylog", required_argument, NULL, 'l'}, {"keyserver", required_argument, NULL, 's'},
        {"ca", required_argument, NULL, 'a'},     {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},    {"state", required_argument, NULL, 'S'},
        {"bypass", required_argument, NULL, 'b'}, {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *keylog = NULL, *server = NULL, *ca = NULL, *cert = NULL, *key = NULL;
    const char *state = NULL;
    /* Large (pending table, queue), and it holds the secrets: in the secure-memory pool (pages
     * left out of core dumps, wiped when freed), not on the stack or in .bss. */
    struct agent *a = NULL;
    struct sigaction sa;
    sigset_t block;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l': keylog = optarg; break;
        case 's': server = optarg; break;
        case 'a': ca = optarg; break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'S': state = optarg; break;
        case 'b':
            /* A key log names no server, so the agent cannot tell which sessions to bypass. */
            say("--bypass: not supported: a key log does not carry the server name");
            return 2;
        case 'v': verbose++; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        say("unexpected argument: %s", argv[optind]);
        return 2;
    }
    server = opt_or_env(server, "MMTLS_KEYSERVER");
    ca = opt_or_env(ca, "MMTLS_CA");
    cert = opt_or_env(cert, "MMTLS_CERT");
    key = opt_or_env(key, "MMTLS_KEY");
    if (keylog == NULL || server == NULL || ca == NULL || cert == NULL || key == NULL) {
        say("missing %s", keylog == NULL   ? "--keylog"
                          : server == NULL ? "--keyserver (or MMTLS_KEYSERVER)"
                          : ca == NULL     ? "--ca (or MMTLS_CA)"
                          : cert == NULL   ? "--cert (or MMTLS_CERT)"
                                           : "--key (or MMTLS_KEY)");
        return 2;
    }

    a = mmtls_secmem_calloc(1, sizeof(*a));
    if (a == NULL) {
        say("out of memory");
        return 1;
    }
    /* Signals are handled only inside ppoll(). */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed channel is seen as an error from SSL_write */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);

    if (chan_init(&a->ch, server, ca, cert, key) != 0 || follow_init(a, keylog, state) != 0) {
        SSL_CTX_free(a->ch.ctx);
        mmtls_secmem_free(a);
        return 1;
    }
    DEBUG("following %s (state %s), key server %s:%s", a->f.path, a->f.state, a->ch.host,
          a->ch.port);
    rc = run(a);
    shutdown_agent(a);
    if (verbose > 0) {
        print_counters(a);
    }
    mmtls_secmem_free(a); /* wipes the pending secrets, the queue, the line buffer */
    return rc;
}
