/* mmtlsd — the mmtls daemon.  This version runs the offline mode: it reads a pcap or pcapng
 * capture, matches session secrets from NSS key logs (and pcapng Decryption Secrets Blocks),
 * decrypts and inspects every TLS session, and writes eve JSON events.
 *
 * Exit status: 0 success; 1 the capture could not be read to its end (what was read is
 * processed and logged); 2 usage error, unreadable input, malformed key log.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "mmtlsd.h"

#define MMTLSD_MAX_KEYLOGS 64
#define MMTLSD_MAX_NAT 64

struct opts {
    const char *read;
    const char *iface; /* inline: "IF1:IF2" */
    bool no_vnet;
    const char *keylogs[MMTLSD_MAX_KEYLOGS];
    int nkeylogs;
    const char *log_dir;
    const char *eve_path;
    const char *dump_dir;
    bool stats_event;
    struct mmtls_engine_opts eng;
    /* key server */
    const char *key_listen, *cert, *key, *client_ca;
    const char *allow_nat[MMTLSD_MAX_NAT + 1];
    bool block_eicar;
    bool log_http;
    uint64_t inspect_depth;
    const char *bypass_allow[17];
    int nbypass;
    const char *block_content[8];
    int nblock;
    int nnat;
    bool no_master;
};

/* Per-run tallies, kept by a tiny app on the public API. */
struct tally {
    uint64_t sessions, by_status[4];
};

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: mmtlsd -r CAPTURE [--keylog FILE]... [-l DIR] [options]     (offline)\n"
            "       mmtlsd -i IF1:IF2 --key-listen ADDR:PORT ... [-l DIR] [options] (inline)\n"
            "\n"
            "Offline mode: decrypt and inspect the TLS sessions of a pcap/pcapng capture.\n"
            "Inline mode: bridge two interfaces, inspect TLS with the keys clients share, and\n"
            "block sessions (DESIGN §3 packet rules).\n"
            "\n"
            "  -i, --interfaces IF1:IF2 bridge these two interfaces (AF_PACKET, TPACKET_V3)\n"
            "      --no-vnet            no PACKET_VNET_HDR (then turn GRO/GSO/TSO off yourself)\n"
            "      --on-missing-keys P  block (default), pass or alert when keys do not come\n"
            "                           within --key-wait (default 500 ms inline)\n"
            "      --block-non-tls      drop TCP flows that do not start with a ClientHello\n"
            "      --block-eicar        demo rule: block sessions carrying the EICAR test file\n"
            "      --log-http           eve 'http' events for decrypted HTTP/1.x requests\n"
            "      --bypass-allow PAT   server names (fnmatch, e.g. '*.bank.example') whose\n"
            "                           sessions clients may bypass; repeatable (16)\n"
            "      --inspect-depth N    decrypt only the first N bytes of each response (the\n"
            "                           rest is skipped without decryption); default: all\n"
            "      --block-content STR  block sessions whose decrypted data contains STR\n"
            "                           (repeatable, up to 8)\n"
            "  -r, --read FILE          capture to read (pcap or pcapng; '-' = standard input)\n"
            "  -k, --keylog FILE        NSS key log (SSLKEYLOGFILE format); repeatable\n"
            "  -l, --log-dir DIR        write DIR/eve.json (default: current directory)\n"
            "      --eve FILE           write eve JSON to FILE instead ('-' = stdout)\n"
            "      --dump-plaintext DIR write each connection's decrypted application data,\n"
            "                           one file per direction\n"
            "      --no-stats           do not write the final eve 'stats' event\n"
            "      --max-flows N        flow table capacity (default 65536)\n"
            "      --flow-timeout SEC   idle flow timeout (default 600)\n"
            "      --reasm-memcap BYTES reassembly memory cap (default 1 GiB)\n"
            "      --max-handshake BYTES cap on one handshake message (default 262144)\n"
            "      --no-verify-all      decrypt only the records an app asks for\n"
            "      --reasm-keep BYTES   delivered bytes kept per direction to compare with\n"
            "                           retransmissions (evasion check; default 262144, 0 = off)\n"
            "\n"
            "Key server (clients share their session secrets, docs/keyproto.md):\n"
            "      --key-listen ADDR:PORT  accept key channels (TLS 1.3, client certificates)\n"
            "      --cert FILE          the middlebox certificate (PEM)\n"
            "      --key FILE           its private key (PEM)\n"
            "      --client-ca FILE     CA that issues client certificates (PEM)\n"
            "      --key-allow-nat X    let peers speak for other addresses: cn:NAME or a CIDR;\n"
            "                           repeatable\n"
            "      --no-master-secrets  refuse TLS 1.2 master secrets from key log followers\n"
            "      --key-wait MS        hold a session's records up to MS waiting for its keys\n"
            "                           (default 2000 with --key-listen)\n"
            "      --key-hold-max BYTES records held per session while waiting (default 1 MiB)\n"
            "  -v, --verbose            more log output (repeat for debug)\n"
            "  -q, --quiet              no summary on stderr\n"
            "  -h, --help               this help\n"
            "  -V, --version            print the version\n"
            "\n"
            "See docs/CONFIG.md and mmtlsd(8).\n");
}

static int parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max) {
        fprintf(stderr, "mmtlsd: invalid value for --%s: '%s' (expected %llu..%llu)\n", opt, s,
                (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o, int *quiet)
{
    enum {
        O_EVE = 256,
        O_DUMP,
        O_NOSTATS,
        O_MAXFLOWS,
        O_FLOWTO,
        O_MEMCAP,
        O_MAXHS,
        O_NOVERIFY,
        O_KEEP,
        O_KLISTEN,
        O_CERT,
        O_KEY,
        O_CLIENTCA,
        O_NAT,
        O_NOMASTER,
        O_KWAIT,
        O_KHOLD,
        O_NOVNET,
        O_MISSING,
        O_BLOCKNONTLS,
        O_BEICAR,
        O_BCONTENT,
        O_LOGHTTP,
        O_DEPTH,
        O_BYPASS
    };
    static const struct option lopts[] = {
        {"read", required_argument, NULL, 'r'},
        {"interfaces", required_argument, NULL, 'i'},
        {"no-vnet", no_argument, NULL, O_NOVNET},
        {"on-missing-keys", required_argument, NULL, O_MISSING},
        {"block-non-tls", no_argument, NULL, O_BLOCKNONTLS},
        {"block-eicar", no_argument, NULL, O_BEICAR},
        {"log-http", no_argument, NULL, O_LOGHTTP},
        {"inspect-depth", required_argument, NULL, O_DEPTH},
        {"bypass-allow", required_argument, NULL, O_BYPASS},
        {"block-content", required_argument, NULL, O_BCONTENT},
        {"keylog", required_argument, NULL, 'k'},
        {"log-dir", required_argument, NULL, 'l'},
        {"eve", required_argument, NULL, O_EVE},
        {"dump-plaintext", required_argument, NULL, O_DUMP},
        {"no-stats", no_argument, NULL, O_NOSTATS},
        {"max-flows", required_argument, NULL, O_MAXFLOWS},
        {"flow-timeout", required_argument, NULL, O_FLOWTO},
        {"reasm-memcap", required_argument, NULL, O_MEMCAP},
        {"max-handshake", required_argument, NULL, O_MAXHS},
        {"no-verify-all", no_argument, NULL, O_NOVERIFY},
        {"reasm-keep", required_argument, NULL, O_KEEP},
        {"key-listen", required_argument, NULL, O_KLISTEN},
        {"cert", required_argument, NULL, O_CERT},
        {"key", required_argument, NULL, O_KEY},
        {"client-ca", required_argument, NULL, O_CLIENTCA},
        {"key-allow-nat", required_argument, NULL, O_NAT},
        {"no-master-secrets", no_argument, NULL, O_NOMASTER},
        {"key-wait", required_argument, NULL, O_KWAIT},
        {"key-hold-max", required_argument, NULL, O_KHOLD},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c, verbose = 0;
    uint64_t v;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":r:i:k:l:vqhV", lopts, NULL)) != -1) {
        switch (c) {
        case 'r': o->read = optarg; break;
        case 'i': o->iface = optarg; break;
        case O_NOVNET: o->no_vnet = true; break;
        case O_BLOCKNONTLS: o->eng.block_non_tls = true; break;
        case O_BEICAR: o->block_eicar = true; break;
        case O_LOGHTTP: o->log_http = true; break;
        case O_BYPASS:
            if (o->nbypass >= 16) {
                fprintf(stderr, "mmtlsd: at most 16 --bypass-allow patterns\n");
                return -1;
            }
            o->bypass_allow[o->nbypass++] = optarg;
            o->eng.bypass_allow = o->bypass_allow;
            break;
        case O_DEPTH:
            if (parse_u64("inspect-depth", optarg, 1, UINT64_MAX / 2, &v) != 0)
                return -1;
            o->inspect_depth = v;
            break;
        case O_BCONTENT:
            if (o->nblock >= 8 || strlen(optarg) == 0 || strlen(optarg) > 128) {
                fprintf(stderr, "mmtlsd: --block-content: 1..128 bytes, at most 8 times\n");
                return -1;
            }
            o->block_content[o->nblock++] = optarg;
            break;
        case O_MISSING:
            if (strcmp(optarg, "block") == 0)
                o->eng.on_missing_keys = MMTLS_MISSING_BLOCK;
            else if (strcmp(optarg, "pass") == 0)
                o->eng.on_missing_keys = MMTLS_MISSING_PASS;
            else if (strcmp(optarg, "alert") == 0)
                o->eng.on_missing_keys = MMTLS_MISSING_ALERT;
            else {
                fprintf(stderr, "mmtlsd: --on-missing-keys takes block, pass or alert\n");
                return -1;
            }
            break;
        case 'k':
            if (o->nkeylogs >= MMTLSD_MAX_KEYLOGS) {
                fprintf(stderr, "mmtlsd: too many --keylog options (max %d)\n", MMTLSD_MAX_KEYLOGS);
                return -1;
            }
            o->keylogs[o->nkeylogs++] = optarg;
            break;
        case 'l': o->log_dir = optarg; break;
        case O_EVE: o->eve_path = optarg; break;
        case O_DUMP: o->dump_dir = optarg; break;
        case O_NOSTATS: o->stats_event = false; break;
        case O_MAXFLOWS:
            if (parse_u64("max-flows", optarg, 1, 1u << 28, &v) != 0)
                return -1;
            o->eng.flow.max_flows = (uint32_t)v;
            break;
        case O_FLOWTO:
            if (parse_u64("flow-timeout", optarg, 1, 86400, &v) != 0)
                return -1;
            o->eng.flow.idle_timeout_ms = (uint32_t)(v * 1000);
            break;
        case O_MEMCAP:
            if (parse_u64("reasm-memcap", optarg, 65536, (uint64_t)1 << 40, &v) != 0)
                return -1;
            o->eng.reasm_memcap = (size_t)v;
            break;
        case O_MAXHS:
            if (parse_u64("max-handshake", optarg, 1024, 16u << 20, &v) != 0)
                return -1;
            o->eng.max_handshake_msg = (size_t)v;
            break;
        case O_NOVERIFY: o->eng.verify_all = false; break;
        case O_KEEP:
            if (parse_u64("reasm-keep", optarg, 0, 64u << 20, &v) != 0)
                return -1;
            o->eng.reasm.max_kept_bytes = (size_t)v;
            break;
        case O_KLISTEN: o->key_listen = optarg; break;
        case O_CERT: o->cert = optarg; break;
        case O_KEY: o->key = optarg; break;
        case O_CLIENTCA: o->client_ca = optarg; break;
        case O_NAT:
            if (o->nnat >= MMTLSD_MAX_NAT) {
                fprintf(stderr, "mmtlsd: too many --key-allow-nat options (max %d)\n",
                        MMTLSD_MAX_NAT);
                return -1;
            }
            o->allow_nat[o->nnat++] = optarg;
            break;
        case O_NOMASTER: o->no_master = true; break;
        case O_KWAIT:
            if (parse_u64("key-wait", optarg, 0, 600000, &v) != 0)
                return -1;
            o->eng.key_wait_ms = (uint32_t)v;
            break;
        case O_KHOLD:
            if (parse_u64("key-hold-max", optarg, 0, 1u << 30, &v) != 0)
                return -1;
            o->eng.key_hold_max = (size_t)v;
            break;
        case 'v': verbose++; break;
        case 'q': *quiet = 1; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf("mmtlsd 0.1.0\n"); exit(0);
        case ':':
            fprintf(stderr, "mmtlsd: option '%s' needs a value (see --help)\n", argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "mmtlsd: unknown option '%s' (see --help)\n", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mmtlsd: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    if ((o->read == NULL) == (o->iface == NULL)) {
        fprintf(stderr, "mmtlsd: give either a capture (-r) or two interfaces (-i) (see --help)\n");
        return -1;
    }
    if (o->key_listen != NULL && (o->cert == NULL || o->key == NULL || o->client_ca == NULL)) {
        fprintf(stderr, "mmtlsd: --key-listen needs --cert, --key and --client-ca\n");
        return -1;
    }
    if (o->key_listen == NULL && (o->cert != NULL || o->client_ca != NULL || o->nnat > 0)) {
        fprintf(stderr, "mmtlsd: --cert/--key/--client-ca/--key-allow-nat need --key-listen\n");
        return -1;
    }
    mmtls_log_set_level(verbose >= 2   ? MMTLS_LOG_DEBUG
                        : verbose == 1 ? MMTLS_LOG_INFO
                                       : MMTLS_LOG_WARN);
    return 0;
}

static int tally_on_event(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct tally *t = arg;
    const struct mmtls_session_info *in = mmtls_session_info(s);

    if (ev->ev == MMTLS_EV_SESSION_END) {
        t->sessions++;
        if ((unsigned)in->key_status < 4)
            t->by_status[in->key_status]++;
    }
    return MMTLS_VERDICT_CONTINUE;
}

struct dsb_ctx {
    struct mmtls_keystore *ks;
    uint64_t blocks, bad_lines;
};

static void on_dsb(void *ud, uint32_t type, const uint8_t *p, size_t len)
{
    struct dsb_ctx *c = ud;
    uint32_t bad = 0;

    if (type != MMTLS_PCAPNG_SECRETS_TLS)
        return;
    c->blocks++;
    if (mmtls_keylog_load_mem(c->ks, p, len, 0, &bad) != 0)
        mmtls_log(MMTLS_LOG_WARN, "decryption secrets block could not be loaded");
    c->bad_lines += bad;
}

/* Key server thread -> worker: copy the delivery and hand the pointer over the engine's SPSC
 * ring (docs/ARCHITECTURE.md, "Keys from key channels").  Never blocks: a full ring drops. */
struct deliver_ctx {
    struct mmtls_ring *ring;
    int efd; /* eventfd that wakes an idle inline worker, -1 offline */
    _Atomic unsigned long dropped;
};

static void on_key_delivery(void *ud, const struct mmtls_key_delivery *d)
{
    struct deliver_ctx *c = ud;
    struct mmtls_engine_keymsg *m = mmtls_engine_keymsg_new(d);

    if (m == NULL || !mmtls_ring_push(c->ring, m)) {
        mmtls_engine_keymsg_free(m);
        c->dropped++;
        return;
    }
    if (c->efd >= 0)
        (void)eventfd_write(c->efd, 1);
}

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void summary(const struct opts *o, const struct mmtls_engine *e, const struct tally *t,
                    const struct dsb_ctx *dsb, double secs, const char *eve_path,
                    uint64_t eve_lines)
{
    const struct mmtls_engine_stats *st = mmtls_engine_get_stats(e);
    bool any = false;

    fprintf(stderr, "mmtlsd: read %llu packets (%.1f MB) from %s in %.2f s\n",
            (unsigned long long)st->packets, (double)st->bytes / 1e6,
            o->iface != NULL            ? o->iface
            : strcmp(o->read, "-") == 0 ? "standard input"
                                        : o->read,
            secs);
    fprintf(stderr,
            "mmtlsd: %llu TLS sessions: %llu decrypted, %llu partial, %llu without keys; "
            "%llu TCP flows not TLS\n",
            (unsigned long long)t->sessions, (unsigned long long)t->by_status[MMTLS_KEYS_DECRYPTED],
            (unsigned long long)t->by_status[MMTLS_KEYS_PARTIAL],
            (unsigned long long)t->by_status[MMTLS_KEYS_NONE],
            (unsigned long long)st->flows_not_tls);
    fprintf(stderr,
            "mmtlsd: %llu records, %llu decrypted, %llu not decrypted, %llu skipped; "
            "%.1f MB plaintext\n",
            (unsigned long long)st->records, (unsigned long long)st->records_decrypted,
            (unsigned long long)st->records_undecrypted, (unsigned long long)st->records_skipped,
            (double)st->plain_bytes / 1e6);
    if (dsb->blocks > 0)
        fprintf(stderr, "mmtlsd: %llu decryption secrets blocks read (%llu bad lines)\n",
                (unsigned long long)dsb->blocks, (unsigned long long)dsb->bad_lines);
    fprintf(stderr, "mmtlsd: errors:");
    for (int i = 1; i <= MMTLS_TLSERR_MAX; i++) {
        if (st->tls_errors[i] != 0) {
            fprintf(stderr, " %s=%llu", mmtls_tls_error_name(i),
                    (unsigned long long)st->tls_errors[i]);
            any = true;
        }
    }
    for (int i = 1; i < MMTLS_DEC_EVENT_MAX; i++) {
        if (st->decode_events[i] != 0 && i != MMTLS_DEC_NOT_TCP && i != MMTLS_DEC_IP_FRAGMENT) {
            fprintf(stderr, " %s=%llu", mmtls_decode_event_name((enum mmtls_decode_event)i),
                    (unsigned long long)st->decode_events[i]);
            any = true;
        }
    }
    fprintf(stderr, "%s\n", any ? "" : " none");
    fprintf(stderr, "mmtlsd: wrote %llu events to %s\n", (unsigned long long)eve_lines, eve_path);
}

int main(int argc, char **argv)
{
    struct opts o = {.stats_event = true};
    struct mmtls_keystore_opts kso = {.max_entries = 1u << 20, .ttl_ms = 0};
    struct mmtls_keystore *ks = NULL;
    struct mmtls_engine *e = NULL;
    struct mmtls_pcap_reader *r = NULL;
    struct mmtls_eve *eve = NULL;
    struct mmtls_dump *dump = NULL;
    struct tally tally = {0};
    struct dsb_ctx dsb = {0};
    struct deliver_ctx dctx = {.efd = -1};
    struct mmtls_keyserver *ksrv = NULL;
    struct mmtls_block *blk = NULL;
    struct mmtls_io_pkt pkt;
    char err[512] = "", eve_path[PATH_MAX];
    int quiet = 0, rc, status = 0;
    uint64_t last_ts = 0;
    double t0;

    mmtls_engine_opts_default(&o.eng);
    o.eng.key_wait_ms = UINT32_MAX; /* "not given": becomes 2000 with --key-listen, else 0 */
    if (parse_args(argc, argv, &o, &quiet) != 0)
        return 2;
    if (o.eng.key_wait_ms == UINT32_MAX)
        o.eng.key_wait_ms = o.iface != NULL ? 500 : o.key_listen != NULL ? 2000 : 0;

    if (mmtls_keystore_new(&ks, &kso) != 0) {
        fprintf(stderr, "mmtlsd: cannot allocate the key store\n");
        return 2;
    }
    for (int i = 0; i < o.nkeylogs; i++) {
        if (mmtls_keylog_load_file(ks, o.keylogs[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "mmtlsd: %s\n", err);
            status = 2;
            goto out;
        }
    }
    o.eng.keys = ks;
    dsb.ks = ks;

    rc = o.read != NULL ? mmtls_pcap_open(&r, o.read, on_dsb, &dsb, err, sizeof(err)) : 0;
    if (rc != 0) {
        fprintf(stderr, "mmtlsd: %s\n", err);
        status = 2;
        goto out;
    }
    if (o.eve_path != NULL) {
        snprintf(eve_path, sizeof(eve_path), "%s", o.eve_path);
    } else {
        const char *dir = o.log_dir != NULL ? o.log_dir : ".";
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "mmtlsd: cannot create log directory %s: %s\n", dir, strerror(errno));
            status = 2;
            goto out;
        }
        snprintf(eve_path, sizeof(eve_path), "%s/eve.json", dir);
    }
    if (mmtls_eve_new(&eve, eve_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "mmtlsd: %s\n", err);
        status = 2;
        goto out;
    }
    if (o.dump_dir != NULL && mmtls_dump_new(&dump, o.dump_dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "mmtlsd: %s\n", err);
        status = 2;
        goto out;
    }
    if (mmtls_engine_new(&e, &o.eng) != 0) {
        fprintf(stderr, "mmtlsd: cannot create the engine\n");
        status = 2;
        goto out;
    }
    {
        struct mmtls_app ta = {.sz = sizeof(ta),
                               .name = "tally",
                               .events = MMTLS_EV_SESSION_END,
                               .on_event = tally_on_event,
                               .arg = &tally};
        if (o.inspect_depth > 0 && mmtls_depth_register(e, o.inspect_depth) != 0) {
            fprintf(stderr, "mmtlsd: cannot register the depth app\n");
            status = 2;
            goto out;
        }
        if (o.block_eicar || o.nblock > 0) {
            if (mmtls_block_new(&blk, eve) != 0 ||
                (o.block_eicar && mmtls_block_add_eicar(blk) != 0)) {
                fprintf(stderr, "mmtlsd: cannot set up the block rules\n");
                status = 2;
                goto out;
            }
            for (int i = 0; i < o.nblock; i++) {
                if (mmtls_block_add(blk, o.block_content[i], o.block_content[i],
                                    strlen(o.block_content[i]), 9000100u + (uint32_t)i) != 0) {
                    fprintf(stderr, "mmtlsd: cannot add block rule %d\n", i + 1);
                    status = 2;
                    goto out;
                }
            }
            if (mmtls_block_register(blk, e) != 0) {
                fprintf(stderr, "mmtlsd: cannot register the block app\n");
                status = 2;
                goto out;
            }
        }
        if (o.log_http && mmtls_http_log_register(eve, e) != 0) {
            fprintf(stderr, "mmtlsd: cannot register the http logger\n");
            status = 2;
            goto out;
        }
        if (mmtls_eve_register(eve, e) != 0 ||
            (dump != NULL && mmtls_dump_register(dump, e) != 0) ||
            mmtls_engine_app_register(e, &ta, NULL) != 0) {
            fprintf(stderr, "mmtlsd: cannot register the apps\n");
            status = 2;
            goto out;
        }
    }
    if (o.key_listen != NULL) {
        struct mmtls_keyserver_opts kopts = {
            .sz = sizeof(kopts),
            .listen = o.key_listen,
            .cert = o.cert,
            .key = o.key,
            .client_ca = o.client_ca,
            .allow_nat = o.allow_nat,
            .accept_master = !o.no_master,
            .deliver = on_key_delivery,
            .deliver_ud = &dctx,
        };
        dctx.ring = mmtls_engine_key_ring(e);
        if (o.iface != NULL)
            dctx.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (mmtls_keyserver_start(&ksrv, &kopts, err, sizeof(err)) != 0) {
            fprintf(stderr, "mmtlsd: key server: %s\n", err);
            status = 2;
            goto out;
        }
        mmtls_log(MMTLS_LOG_INFO, "key server listening on %s (port %u)", o.key_listen,
                  mmtls_keyserver_port(ksrv));
    }
    t0 = now_s();
    if (o.iface != NULL) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        rc = mmtlsd_run_inline(e, o.iface, !o.no_vnet, dctx.efd, &stop_flag, err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "mmtlsd: %s\n", err);
            status = 2;
        }
        last_ts = (uint64_t)time(NULL) * 1000000u;
    }
    for (; r != NULL;) {
        rc = mmtls_pcap_next(r, &pkt, err, sizeof(err));
        if (rc == MMTLS_DECLINED)
            break;
        if (rc != 0) {
            fprintf(stderr, "mmtlsd: %s\n", err);
            status = 1;
            break;
        }
        (void)mmtls_engine_packet(e, pkt.linktype, pkt.data, pkt.caplen, pkt.ts_us);
        last_ts = pkt.ts_us;
    }
    if (ksrv != NULL) {
        /* Keys still on their way for the last sessions: give them the key wait once. */
        struct timespec ts = {.tv_sec = o.eng.key_wait_ms / 1000,
                              .tv_nsec = (long)(o.eng.key_wait_ms % 1000) * 1000000L};
        if (mmtls_engine_get_stats(e)->records_held > mmtls_engine_get_stats(e)->records_released)
            nanosleep(&ts, NULL);
        mmtls_engine_poll_keys(e);
    }
    mmtls_engine_flush(e);
    if (o.stats_event)
        mmtls_eve_write_stats(eve, e, last_ts);
    if (!quiet)
        summary(&o, e, &tally, &dsb, now_s() - t0, eve_path, mmtls_eve_lines(eve));

out:
    mmtls_keyserver_stop(ksrv);
    if (dctx.efd >= 0)
        close(dctx.efd);
    if (dctx.dropped > 0)
        fprintf(stderr, "mmtlsd: %lu key messages dropped (worker ring full)\n",
                (unsigned long)dctx.dropped);
    mmtls_engine_free(e);
    mmtls_pcap_close(r);
    mmtls_eve_free(eve);
    mmtls_dump_free(dump);
    mmtls_block_free(blk);
    mmtls_keystore_free(ks);
    return status;
}
