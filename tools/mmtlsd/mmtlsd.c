/* mmtlsd — the mmtls daemon.  Offline (-r) it reads a pcap or pcapng capture, matches session
 * secrets from NSS key logs (and pcapng Decryption Secrets Blocks), decrypts and inspects every
 * TLS session, and writes eve JSON events.  Inline (-i) it bridges two interfaces with N
 * share-nothing workers, gets keys from clients through its key server, and holds, releases or
 * blocks frames by the rules of DESIGN §3.  Options also come from a config file (-c).
 *
 * Exit status: 0 success; 1 the capture could not be read to its end (what was read is
 * processed and logged); 2 usage error, unreadable input, malformed key log.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <grp.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "mmtlsd.h"
#include "detect/detect.h"
#include "rules/rules.h"

#define MMTLSD_MAX_KEYLOGS 64
#define MMTLSD_MAX_NAT 64
#define MMTLSD_MAX_WORKERS 64
#define MMTLSD_MAX_RULEFILES 64
#define MMTLSD_MAX_CONFIG (1u << 20) /* config file bytes */

struct opts {
    const char *read;
    const char *iface; /* inline: "IF1:IF2" */
    bool no_vnet;
    bool afp_blocks;              /* --afp-ring blocks: TPACKET_V3 RX blocks, not V2 frames */
    enum mmtlsd_io io;            /* --io */
    enum mmtls_xdp_mode xdp_mode; /* --xdp-mode */
    const char *dpdk_args;        /* --dpdk-args */
    const char *keylogs[MMTLSD_MAX_KEYLOGS];
    int nkeylogs;
    const char *log_dir;
    const char *eve_path;
    const char *dump_dir;
    const char *pcap_out;
    uint16_t pcap_port_from, pcap_port_to; /* server port mapping in --pcap-out frames */
    bool stats_event;
    struct mmtls_engine_opts eng;
    /* key server */
    const char *key_listen, *cert, *key, *client_ca;
    const char *allow_nat[MMTLSD_MAX_NAT + 1];
    bool block_eicar;
    bool log_http;
    uint64_t inspect_depth;
    uint64_t inspect_depth_req;
    bool depth_wire;   /* --depth-count wire */
    uint32_t fast_rps; /* --fast-rps: CPUs (bit k: CPU k); 0: all */
    const char *bypass_allow[17];
    int nbypass;
    const char *block_content[8];
    int nblock;
    int nnat;
    bool no_master;
    int workers;
    int verbose, quiet;
    const char *rules[MMTLSD_MAX_RULEFILES];
    int nrules;
    bool test_rules;
    const struct mmtls_detect *detect; /* compiled --rules, shared by the workers */
    const char *user; /* --user: run as this user once sockets and files are open */
    /* exception policies: --exception-policy, and per resource (-1: not given) */
    int exc_global, exc_res[MMTLS_EXC_N];
    uint32_t key_store_max, key_max_channels, stats_interval_s;
    bool allow_core; /* --allow-core-dumps: stay dumpable (secrets are still left out) */
};

/* Per-run tallies, kept by a tiny app on the public API. */
struct tally {
    uint64_t sessions, by_status[4];
    uint64_t plain; /* plain TCP streams inspected (not TLS) */
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
            "  -i, --interfaces IF1:IF2 bridge these two interfaces (AF_PACKET rings)\n"
            "      --workers N          N share-nothing workers, flows spread by a symmetric\n"
            "                           hash (PACKET_FANOUT_HASH); default 1, at most 64\n"
            "      --no-vnet            no PACKET_VNET_HDR (then turn GRO/GSO/TSO off yourself)\n"
            "      --afp-ring frames|blocks  AF_PACKET receive rings: TPACKET_V2 frames, each\n"
            "                           handed over as it arrives (default), or TPACKET_V3\n"
            "                           blocks, a part-filled one after a 4-8 ms timer\n"
            "      --io afpacket|xdp|fast  packet I/O: AF_PACKET rings (default), AF_XDP sockets\n"
            "                           (one per worker and RX queue: --workers = queues; MTU-\n"
            "                           size frames; senders' checksums must be complete) or\n"
            "                           the kernel fast path (TC programs forward in the\n"
            "                           kernel, only what inspection needs reaches mmtlsd;\n"
            "                           docs/FASTPATH.md)\n"
            "      --xdp-mode M         AF_XDP: auto (default), copy or zerocopy\n"
            "      --io dpdk            DPDK: IF1 and IF2 become net_af_packet devices (no\n"
            "                           hugepages; offloads off on the path), worker k polls\n"
            "                           queue k (a full core while traffic flows)\n"
            "      --dpdk-args STR      DPDK: the EAL arguments (real NICs: hugepages, -a PCI);\n"
            "                           then -i names DPDK ports (ethdev names or ids: -i 0:1)\n"
            "      --test-tamper FROM=TO  TEST ONLY: act as a compromised middlebox that rewrites\n"
            "                           FROM to TO in decrypted records and re-seals them\n"
            "                           (needs --no-vnet or --io xdp|dpdk; the private tag's\n"
            "                           tamper test)\n"
            "      --on-missing-keys P  block (default), pass or alert when keys do not come\n"
            "                           within --key-wait (default 500 ms inline)\n"
            "      --server-flight M    TLS 1.3 server's first flight, inline: hold (default:\n"
            "                           its frames wait for the handshake secrets, 0.5-RTT data\n"
            "                           for the application secrets; one key-channel round trip\n"
            "                           per handshake) or pass (its frames go on at once: 0.5-RTT\n"
            "                           data reaches the client before it is inspected)\n"
            "      --block-non-tls      drop TCP flows that do not start with a ClientHello\n"
            "      --on-evasion P       retransmitted bytes that differ from those inspected:\n"
            "                           block the session (default) or alert only\n"
            "      --block-eicar        demo rule: block sessions carrying the EICAR test file\n"
            "      --log-http           eve 'http' events for decrypted HTTP/1.x and HTTP/2\n"
            "                           transactions (with --inspect-depth: per message body)\n"
            "      --bypass-allow PAT   server names (fnmatch, e.g. '*.bank.example') whose\n"
            "                           sessions clients may bypass; repeatable (16)\n"
            "      --inspect-depth N    decrypt only the first N bytes of each response (the\n"
            "                           rest is skipped without decryption); with --rules or\n"
            "                           --log-http per HTTP response body (default with\n"
            "                           --rules: 65536); otherwise default: all\n"
            "      --inspect-depth-request N  the same for HTTP request bodies (default: as\n"
            "                           --inspect-depth)\n"
            "      --depth-count C      what --inspect-depth counts (without --rules and\n"
            "                           --log-http): plaintext (default; padding never counts)\n"
            "                           or wire: record bytes as sent, padding included; with\n"
            "                           --io fast the kernel then applies the depth itself\n"
            "      --fast-rps CPUS      --io fast: the CPUs the kernel hands the two ports'\n"
            "                           frames to (RPS), as taskset -c lists them; default all\n"
            "      --block-content STR  block sessions whose decrypted data contains STR\n"
            "                           (repeatable, up to 8)\n"
            "  -r, --read FILE          capture to read (pcap or pcapng; '-' = standard input)\n"
            "  -k, --keylog FILE        NSS key log (SSLKEYLOGFILE format); repeatable\n"
            "  -l, --log-dir DIR        write DIR/eve.json (default: current directory)\n"
            "      --eve FILE           write eve JSON to FILE instead ('-' = stdout)\n"
            "      --dump-plaintext DIR write each connection's decrypted application data,\n"
            "                           one file per direction\n"
            "      --pcap-out FILE      write each decrypted session as a plaintext TCP flow\n"
            "                           (classic pcap, Ethernet); bytes not decrypted show as\n"
            "                           a TCP sequence gap; several workers share the file\n"
            "      --pcap-out-port FROM:TO  server port FROM becomes TO in --pcap-out frames\n"
            "                           (default 443:80, so tools dissect the plaintext as\n"
            "                           HTTP; 0:0 keeps every port)\n"
            "      --no-stats           do not write the final eve 'stats' event\n"
            "      --max-flows N        flow table capacity (default 65536)\n"
            "      --flow-timeout SEC   idle flow timeout (default 600)\n"
            "      --reasm-memcap BYTES reassembly memory cap (default 1 GiB)\n"
            "      --max-handshake BYTES cap on one handshake message (default 262144)\n"
            "      --no-verify-all      decrypt only the records an app asks for\n"
            "      --reasm-keep BYTES   delivered bytes kept per direction until acknowledged,\n"
            "                           to compare with retransmissions (evasion check;\n"
            "                           default 8388608, 0 = off; inline it is a window:\n"
            "                           docs/CONFIG.md)\n"
            "\n"
            "Resources and exception policies (caps are per worker; docs/CONFIG.md):\n"
            "      --exception-policy P closed (default: drop / block) or open (forward\n"
            "                           uninspected) when a cap is hit inline; offline: counted\n"
            "      --flow-policy P      ... when the flow table is full of inspected sessions\n"
            "      --session-policy P   ... when --max-sessions sessions are inspected\n"
            "      --reasm-policy P     ... when a reassembly cap is hit (closed: drops the\n"
            "                           packet)\n"
            "      --hold-policy P      ... when --key-hold-max/--key-hold-total is hit\n"
            "      --midstream-policy P ... for flows picked up without their SYN after\n"
            "                           --midstream-grace\n"
            "      --defrag-policy P    ... when the IP fragment table or its memory cap is\n"
            "                           full (closed: the fragment is dropped)\n"
            "      --defrag-max N       IP datagrams being reassembled (default 4096)\n"
            "      --defrag-timeout SEC ... kept this long, then refused as long again\n"
            "                           (default 30)\n"
            "      --defrag-memcap BYTES fragment bytes held (default 64 MiB)\n"
            "      --midstream-grace SEC  pass midstream flows this long after start\n"
            "                           (default: --flow-timeout; connections older than us)\n"
            "      --max-sessions N     TLS sessions inspected at once (default: --max-flows)\n"
            "      --flow-evict-idle MS a full table evicts a session still in its handshake\n"
            "                           once idle this long (default 1000)\n"
            "      --flow-closed-timeout SEC  closed flows kept (default 10)\n"
            "      --key-store-max N    client randoms in the key store (default 1048576)\n"
            "      --key-pending-max N  keys waiting for their session (default 65536)\n"
            "      --key-pending-wait MS  ... and for how long (default 10000)\n"
            "      --key-max-channels N key channels open at once (default 4096)\n"
            "      --stats-interval SEC eve 'stats' event every SEC seconds (default: at exit)\n"
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
            "                           (default 500 inline; offline 2000 with --key-listen)\n"
            "      --key-hold-max BYTES records held per session while waiting (default 1 MiB)\n"
            "      --key-hold-total BYTES  ... and per worker (default 256 MiB); over either\n"
            "                           cap the session is handled as without keys\n"
            "      --rules FILE         Snort 3 / Suricata rules to match on the decrypted\n"
            "                           streams, HTTP transactions and SNI (repeatable, 64)\n"
            "      --test-rules         load and compile the --rules files, print the\n"
            "                           summaries, exit (non-zero when a file cannot be read)\n"
            "      --user NAME          after opening its sockets and files, run as NAME\n"
            "                           (its groups, no way back to root)\n"
            "      --allow-core-dumps   debugging: stay dumpable (core files, ptrace by the\n"
            "                           same user); session secrets are still left out of\n"
            "                           core files (MADV_DONTDUMP)\n"
            "  -c, --config FILE        read options from FILE first: one per line, the long\n"
            "                           name without dashes, then its value ('name value' or\n"
            "                           'name = value'); '#' starts a comment; the command\n"
            "                           line overrides single-valued options\n"
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
    O_AFPRING,
    O_IO,
    O_XDPMODE,
    O_DPDKARGS,
    O_MISSING,
    O_SFLIGHT,
    O_BLOCKNONTLS,
    O_BEICAR,
    O_BCONTENT,
    O_LOGHTTP,
    O_DEPTH,
    O_BYPASS,
    O_WORKERS,
    O_TAMPER,
    O_RULES,
    O_TESTRULES,
    O_EVASION,
    O_KHOLDTOTAL,
    O_DEPTHREQ,
    O_DEPTHCOUNT,
    O_FASTRPS,
    O_USER,
    O_ALLOWCORE,
    O_PCAPOUT,
    O_PCAPPORT,
    O_EXCPOL,
    O_FLOWPOL,
    O_SESSPOL,
    O_REASMPOL,
    O_HOLDPOL,
    O_MIDPOL,
    O_DEFRAGPOL,
    O_DEFRAGMAX,
    O_DEFRAGTMO,
    O_DEFRAGMC,
    O_MIDGRACE,
    O_MAXSESS,
    O_EVICTIDLE,
    O_CLOSEDTO,
    O_KSTOREMAX,
    O_KPENDMAX,
    O_KPENDWAIT,
    O_KMAXCHAN,
    O_STATSINT
};

static const struct option lopts[] = {
    {"read", required_argument, NULL, 'r'},
    {"interfaces", required_argument, NULL, 'i'},
    {"workers", required_argument, NULL, O_WORKERS},
    {"test-tamper", required_argument, NULL, O_TAMPER},
    {"rules", required_argument, NULL, O_RULES},
    {"on-evasion", required_argument, NULL, O_EVASION},
    {"test-rules", no_argument, NULL, O_TESTRULES},
    {"no-vnet", no_argument, NULL, O_NOVNET},
    {"afp-ring", required_argument, NULL, O_AFPRING},
    {"io", required_argument, NULL, O_IO},
    {"xdp-mode", required_argument, NULL, O_XDPMODE},
    {"dpdk-args", required_argument, NULL, O_DPDKARGS},
    {"on-missing-keys", required_argument, NULL, O_MISSING},
    {"server-flight", required_argument, NULL, O_SFLIGHT},
    {"block-non-tls", no_argument, NULL, O_BLOCKNONTLS},
    {"block-eicar", no_argument, NULL, O_BEICAR},
    {"log-http", no_argument, NULL, O_LOGHTTP},
    {"inspect-depth", required_argument, NULL, O_DEPTH},
    {"inspect-depth-request", required_argument, NULL, O_DEPTHREQ},
    {"depth-count", required_argument, NULL, O_DEPTHCOUNT},
    {"fast-rps", required_argument, NULL, O_FASTRPS},
    {"user", required_argument, NULL, O_USER},
    {"allow-core-dumps", no_argument, NULL, O_ALLOWCORE},
    {"bypass-allow", required_argument, NULL, O_BYPASS},
    {"block-content", required_argument, NULL, O_BCONTENT},
    {"keylog", required_argument, NULL, 'k'},
    {"log-dir", required_argument, NULL, 'l'},
    {"eve", required_argument, NULL, O_EVE},
    {"dump-plaintext", required_argument, NULL, O_DUMP},
    {"pcap-out", required_argument, NULL, O_PCAPOUT},
    {"pcap-out-port", required_argument, NULL, O_PCAPPORT},
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
    {"key-hold-total", required_argument, NULL, O_KHOLDTOTAL},
    {"exception-policy", required_argument, NULL, O_EXCPOL},
    {"flow-policy", required_argument, NULL, O_FLOWPOL},
    {"session-policy", required_argument, NULL, O_SESSPOL},
    {"reasm-policy", required_argument, NULL, O_REASMPOL},
    {"hold-policy", required_argument, NULL, O_HOLDPOL},
    {"midstream-policy", required_argument, NULL, O_MIDPOL},
    {"defrag-policy", required_argument, NULL, O_DEFRAGPOL},
    {"defrag-max", required_argument, NULL, O_DEFRAGMAX},
    {"defrag-timeout", required_argument, NULL, O_DEFRAGTMO},
    {"defrag-memcap", required_argument, NULL, O_DEFRAGMC},
    {"midstream-grace", required_argument, NULL, O_MIDGRACE},
    {"max-sessions", required_argument, NULL, O_MAXSESS},
    {"flow-evict-idle", required_argument, NULL, O_EVICTIDLE},
    {"flow-closed-timeout", required_argument, NULL, O_CLOSEDTO},
    {"key-store-max", required_argument, NULL, O_KSTOREMAX},
    {"key-pending-max", required_argument, NULL, O_KPENDMAX},
    {"key-pending-wait", required_argument, NULL, O_KPENDWAIT},
    {"key-max-channels", required_argument, NULL, O_KMAXCHAN},
    {"stats-interval", required_argument, NULL, O_STATSINT},
    {"config", required_argument, NULL, 'c'},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* "closed" or "open" for --NAME-policy. */
static int parse_policy(const char *opt, const char *s, int *out)
{
    if (strcmp(s, "closed") == 0) {
        *out = MMTLS_EXC_CLOSED;
    } else if (strcmp(s, "open") == 0) {
        *out = MMTLS_EXC_OPEN;
    } else {
        fprintf(stderr, "mmtlsd: --%s takes closed or open\n", opt);
        return -1;
    }
    return 0;
}

/* "all" (0) or a CPU list as taskset -c takes it ("0,2-3"), CPUs 0-31, into a bit mask. */
static int parse_cpu_list(const char *s, uint32_t *mask)
{
    uint32_t m = 0;

    if (strcmp(s, "all") == 0) {
        *mask = 0;
        return 0;
    }
    while (*s != '\0') {
        char *end;
        unsigned long lo = strtoul(s, &end, 10), hi = lo;

        if (end == s || lo > 31)
            return -1;
        s = end;
        if (*s == '-') {
            hi = strtoul(s + 1, &end, 10);
            if (end == s + 1 || hi > 31 || hi < lo)
                return -1;
            s = end;
        }
        for (unsigned long c = lo; c <= hi; c++)
            m |= 1u << c;
        if (*s == ',' && s[1] != '\0')
            s++;
        else if (*s != '\0')
            return -1;
    }
    if (m == 0)
        return -1;
    *mask = m;
    return 0;
}

/* One pass over argv (the config file's words, then the command line's) into *o. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    int c;
    uint64_t v;

    opterr = 0;
    optind = 0; /* glibc: full re-initialisation (the config file is parsed first) */
    while ((c = getopt_long(argc, argv, ":r:i:k:l:c:vqhV", lopts, NULL)) != -1) {
        switch (c) {
        case 'r': o->read = optarg; break;
        case 'i': o->iface = optarg; break;
        case O_NOVNET: o->no_vnet = true; break;
        case O_AFPRING:
            if (strcmp(optarg, "frames") != 0 && strcmp(optarg, "blocks") != 0) {
                fprintf(stderr, "mmtlsd: --afp-ring wants frames or blocks (got '%s')\n", optarg);
                return -1;
            }
            o->afp_blocks = optarg[0] == 'b';
            break;
        case O_IO:
            if (strcmp(optarg, "afpacket") == 0) {
                o->io = MMTLSD_IO_AFPACKET;
            } else if (strcmp(optarg, "xdp") == 0) {
                o->io = MMTLSD_IO_XDP;
            } else if (strcmp(optarg, "fast") == 0) {
                o->io = MMTLSD_IO_FAST;
            } else if (strcmp(optarg, "dpdk") == 0) {
                o->io = MMTLSD_IO_DPDK;
            } else {
                fprintf(stderr, "mmtlsd: --io wants afpacket, xdp, fast or dpdk (got '%s')\n",
                        optarg);
                return -1;
            }
            break;
        case O_DPDKARGS: o->dpdk_args = optarg; break;
        case O_XDPMODE:
            if (strcmp(optarg, "auto") == 0) {
                o->xdp_mode = MMTLS_XDP_MODE_AUTO;
            } else if (strcmp(optarg, "copy") == 0) {
                o->xdp_mode = MMTLS_XDP_MODE_COPY;
            } else if (strcmp(optarg, "zerocopy") == 0) {
                o->xdp_mode = MMTLS_XDP_MODE_ZEROCOPY;
            } else {
                fprintf(stderr, "mmtlsd: --xdp-mode wants auto, copy or zerocopy (got '%s')\n",
                        optarg);
                return -1;
            }
            break;
        case O_WORKERS:
            if (parse_u64("workers", optarg, 1, MMTLSD_MAX_WORKERS, &v) != 0)
                return -1;
            o->workers = (int)v;
            break;
        case 'c': break; /* read before the command line (load_config) */
        case O_RULES:
            if (o->nrules >= MMTLSD_MAX_RULEFILES) {
                fprintf(stderr, "mmtlsd: at most %d --rules files\n", MMTLSD_MAX_RULEFILES);
                return -1;
            }
            o->rules[o->nrules++] = optarg;
            break;
        case O_TESTRULES: o->test_rules = true; break;
        case O_EVASION:
            if (strcmp(optarg, "block") == 0 || strcmp(optarg, "alert") == 0) {
                o->eng.evasion_alert_only = strcmp(optarg, "alert") == 0;
            } else {
                fprintf(stderr, "mmtlsd: --on-evasion takes block or alert\n");
                return -1;
            }
            break;
        case O_TAMPER: {
            const char *eq = strchr(optarg, '=');
            size_t fl = eq != NULL ? (size_t)(eq - optarg) : 0;
            if (eq == NULL || fl == 0 || fl != strlen(eq + 1) || fl > 256) {
                fprintf(stderr, "mmtlsd: --test-tamper wants FROM=TO of the same length\n");
                return -1;
            }
            o->eng.tamper_from = (const uint8_t *)optarg;
            o->eng.tamper_to = (const uint8_t *)eq + 1;
            o->eng.tamper_len = fl;
            break;
        }
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
        case O_USER: o->user = optarg; break;
        case O_ALLOWCORE: o->allow_core = true; break;
        case O_DEPTHREQ:
            if (parse_u64("inspect-depth-request", optarg, 1, UINT64_MAX / 2, &v) != 0)
                return -1;
            o->inspect_depth_req = v;
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
        case O_DEPTHCOUNT:
            if (strcmp(optarg, "plaintext") == 0)
                o->depth_wire = false;
            else if (strcmp(optarg, "wire") == 0)
                o->depth_wire = true;
            else {
                fprintf(stderr, "mmtlsd: --depth-count takes plaintext or wire\n");
                return -1;
            }
            break;
        case O_FASTRPS:
            if (parse_cpu_list(optarg, &o->fast_rps) != 0) {
                fprintf(stderr,
                        "mmtlsd: --fast-rps takes all or a list of CPUs below 32, like 0,2-3 "
                        "(got '%s')\n",
                        optarg);
                return -1;
            }
            break;
        case O_SFLIGHT:
            if (strcmp(optarg, "hold") == 0)
                o->eng.server_flight_pass = false;
            else if (strcmp(optarg, "pass") == 0)
                o->eng.server_flight_pass = true;
            else {
                fprintf(stderr, "mmtlsd: --server-flight takes hold or pass\n");
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
        case O_PCAPOUT: o->pcap_out = optarg; break;
        case O_PCAPPORT: {
            char from[8], *colon = strchr(optarg, ':');
            uint64_t f, t;
            if (colon == NULL || (size_t)(colon - optarg) >= sizeof(from)) {
                fprintf(stderr, "mmtlsd: --pcap-out-port wants FROM:TO (e.g. 443:80)\n");
                return -1;
            }
            memcpy(from, optarg, (size_t)(colon - optarg));
            from[colon - optarg] = '\0';
            if (parse_u64("pcap-out-port", from, 0, 65535, &f) != 0 ||
                parse_u64("pcap-out-port", colon + 1, 0, 65535, &t) != 0)
                return -1;
            if ((f == 0) != (t == 0)) {
                fprintf(stderr, "mmtlsd: --pcap-out-port: port 0 only as 0:0 (no mapping)\n");
                return -1;
            }
            o->pcap_port_from = (uint16_t)f;
            o->pcap_port_to = (uint16_t)t;
            break;
        }
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
        case O_KHOLDTOTAL:
            if (parse_u64("key-hold-total", optarg, 65536, (uint64_t)1 << 40, &v) != 0)
                return -1;
            o->eng.key_hold_total = (size_t)v;
            break;
        case O_KHOLD:
            if (parse_u64("key-hold-max", optarg, 0, 1u << 30, &v) != 0)
                return -1;
            o->eng.key_hold_max = (size_t)v;
            break;
        case O_EXCPOL:
            if (parse_policy("exception-policy", optarg, &o->exc_global) != 0)
                return -1;
            break;
        case O_FLOWPOL:
            if (parse_policy("flow-policy", optarg, &o->exc_res[MMTLS_EXC_FLOW]) != 0)
                return -1;
            break;
        case O_SESSPOL:
            if (parse_policy("session-policy", optarg, &o->exc_res[MMTLS_EXC_SESSION]) != 0)
                return -1;
            break;
        case O_REASMPOL:
            if (parse_policy("reasm-policy", optarg, &o->exc_res[MMTLS_EXC_REASM]) != 0)
                return -1;
            break;
        case O_HOLDPOL:
            if (parse_policy("hold-policy", optarg, &o->exc_res[MMTLS_EXC_HOLD]) != 0)
                return -1;
            break;
        case O_MIDPOL:
            if (parse_policy("midstream-policy", optarg, &o->exc_res[MMTLS_EXC_MIDSTREAM]) != 0)
                return -1;
            break;
        case O_DEFRAGPOL:
            if (parse_policy("defrag-policy", optarg, &o->exc_res[MMTLS_EXC_DEFRAG]) != 0)
                return -1;
            break;
        case O_DEFRAGMAX:
            if (parse_u64("defrag-max", optarg, 1, 1u << 20, &v) != 0)
                return -1;
            o->eng.defrag.max_datagrams = (uint32_t)v;
            break;
        case O_DEFRAGTMO:
            if (parse_u64("defrag-timeout", optarg, 1, 600, &v) != 0)
                return -1;
            o->eng.defrag.timeout_ms = (uint32_t)(v * 1000);
            break;
        case O_DEFRAGMC:
            if (parse_u64("defrag-memcap", optarg, 65536, (uint64_t)1 << 40, &v) != 0)
                return -1;
            o->eng.defrag.memcap = (size_t)v;
            break;
        case O_MIDGRACE:
            if (parse_u64("midstream-grace", optarg, 0, 86400, &v) != 0)
                return -1;
            o->eng.midstream_grace_ms = (uint32_t)(v * 1000);
            break;
        case O_MAXSESS:
            if (parse_u64("max-sessions", optarg, 1, 1u << 28, &v) != 0)
                return -1;
            o->eng.max_sessions = (uint32_t)v;
            break;
        case O_EVICTIDLE:
            if (parse_u64("flow-evict-idle", optarg, 0, 3600000, &v) != 0)
                return -1;
            o->eng.flow.evict_idle_ms = (uint32_t)v;
            break;
        case O_CLOSEDTO:
            if (parse_u64("flow-closed-timeout", optarg, 1, 3600, &v) != 0)
                return -1;
            o->eng.flow.closed_timeout_ms = (uint32_t)(v * 1000);
            break;
        case O_KSTOREMAX:
            if (parse_u64("key-store-max", optarg, 1, 1u << 26, &v) != 0)
                return -1;
            o->key_store_max = (uint32_t)v;
            break;
        case O_KPENDMAX:
            if (parse_u64("key-pending-max", optarg, 1, 1u << 24, &v) != 0)
                return -1;
            o->eng.key_pending_max = (uint32_t)v;
            break;
        case O_KPENDWAIT:
            if (parse_u64("key-pending-wait", optarg, 1, 600000, &v) != 0)
                return -1;
            o->eng.key_pending_ms = (uint32_t)v;
            break;
        case O_KMAXCHAN:
            if (parse_u64("key-max-channels", optarg, 1, 1u << 20, &v) != 0)
                return -1;
            o->key_max_channels = (uint32_t)v;
            break;
        case O_STATSINT:
            if (parse_u64("stats-interval", optarg, 1, 86400, &v) != 0)
                return -1;
            o->stats_interval_s = (uint32_t)v;
            break;
        case 'v': o->verbose++; break;
        case 'q': o->quiet = 1; break;
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
    return 0;
}

/* After the config file and the command line: what must hold of the whole. */
static int check_args(struct opts *o)
{
    if (o->test_rules) {
        if (o->nrules == 0) {
            fprintf(stderr, "mmtlsd: --test-rules needs --rules FILE\n");
            return -1;
        }
        return 0; /* nothing else is used */
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
    /* The tamper test rewrites whole frames: no GSO super-frames (AF_XDP, DPDK have none). */
    if (o->eng.tamper_len > 0 &&
        (o->iface == NULL || (!o->no_vnet && o->io != MMTLSD_IO_XDP && o->io != MMTLSD_IO_DPDK))) {
        fprintf(stderr,
                "mmtlsd: --test-tamper works inline with --no-vnet, --io xdp or dpdk only\n");
        return -1;
    }
    if (o->workers > 1 && o->iface == NULL) {
        fprintf(stderr, "mmtlsd: --workers applies to inline mode (-i); offline runs one\n");
        return -1;
    }
    if (o->dpdk_args != NULL && o->io != MMTLSD_IO_DPDK) {
        fprintf(stderr, "mmtlsd: --dpdk-args needs --io dpdk\n");
        return -1;
    }
    if (o->depth_wire && (o->inspect_depth == 0 || o->log_http || o->nrules > 0)) {
        fprintf(stderr, "mmtlsd: --depth-count wire needs --inspect-depth, without --rules and "
                        "--log-http (those count HTTP bodies)\n");
        return -1;
    }
    if (o->afp_blocks && o->io != MMTLSD_IO_AFPACKET) {
        fprintf(stderr, "mmtlsd: --afp-ring applies to --io afpacket\n");
        return -1;
    }
    if (o->fast_rps != 0 && o->io != MMTLSD_IO_FAST) {
        fprintf(stderr, "mmtlsd: --fast-rps applies to --io fast\n");
        return -1;
    }
    if (o->fast_rps != 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

        if (ncpu > 0 && ncpu < 32 && (o->fast_rps >> ncpu) != 0) {
            fprintf(stderr, "mmtlsd: --fast-rps names a CPU beyond the %ld online\n", ncpu);
            return -1;
        }
    }
    if (o->io == MMTLSD_IO_FAST && o->no_vnet) {
        fprintf(stderr, "mmtlsd: --io fast runs with vnet headers\n");
        return -1;
    }
    /* Exception policies: a resource's own option, else --exception-policy, else closed. */
    for (int r = 0; r < MMTLS_EXC_N; r++) {
        int p = o->exc_res[r] >= 0 ? o->exc_res[r] : o->exc_global >= 0 ? o->exc_global : 0;
        o->eng.exc_policy[r] = (uint8_t)p;
    }
    if (o->eng.midstream_grace_ms == UINT32_MAX)
        o->eng.midstream_grace_ms = o->eng.flow.idle_timeout_ms;
    mmtls_log_set_level(o->verbose >= 2   ? MMTLS_LOG_DEBUG
                        : o->verbose == 1 ? MMTLS_LOG_INFO
                                          : MMTLS_LOG_WARN);
    return 0;
}

/* The config file: each line "name value", "name = value" or "name" (a flag), name being a
 * long option; blank lines and '#' comments skipped.  The lines become "--name value" words for
 * the same parser as the command line, which comes after and so overrides single-valued options
 * (repeatable ones add up).  The file's text is kept in *text for the process's lifetime: the
 * options point into it. */
static int load_config(const char *path, struct opts *o, char **text)
{
    FILE *fp = fopen(path, "r");
    char **words = NULL, *p, *line;
    char *names = NULL; /* the "--name" words, one after the other (values stay in *text) */
    size_t len, nwords = 1, cap, nlen = 0;
    int rc = -1, lineno = 0;

    if (fp == NULL) {
        fprintf(stderr, "mmtlsd: cannot open config file %s: %s\n", path, strerror(errno));
        return -1;
    }
    {
        /* a regular file is read at its size; anything else (a pipe) up to the cap */
        struct stat stb;
        cap = fstat(fileno(fp), &stb) == 0 && S_ISREG(stb.st_mode) &&
                      stb.st_size <= (off_t)MMTLSD_MAX_CONFIG
                  ? (size_t)stb.st_size
                  : MMTLSD_MAX_CONFIG;
    }
    *text = malloc(cap + 2);
    if (*text == NULL)
        goto out;
    len = fread(*text, 1, cap + 1, fp);
    if (ferror(fp) || len > MMTLSD_MAX_CONFIG) {
        fprintf(stderr, "mmtlsd: %s: %s\n", path, ferror(fp) ? "read error" : "larger than 1 MiB");
        goto out;
    }
    (*text)[len] = '\0';
    cap = 2 * len + 2; /* at most "--name" and a value per line: never more than 2 per 2 bytes */
    words = calloc(cap + 1, sizeof(*words));
    names = malloc(4 * len + 4); /* each line's name + "--" + NUL: under 4 bytes per byte */
    if (words == NULL || names == NULL)
        goto out;
    words[0] = "mmtlsd";
    for (line = *text; line != NULL; line = p) {
        char *name, *val = NULL, *end;
        const struct option *lo;
        p = strchr(line, '\n');
        if (p != NULL)
            *p++ = '\0';
        lineno++;
        if ((end = strchr(line, '#')) != NULL)
            *end = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        end = line + strlen(line);
        while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            *--end = '\0';
        if (*line == '\0')
            continue;
        name = line;
        line += strcspn(line, " \t=");
        if (*line != '\0') {
            *line++ = '\0';
            line += strspn(line, " \t=");
            if (*line != '\0')
                val = line;
        }
        for (lo = lopts; lo->name != NULL && strcmp(lo->name, name) != 0; lo++) {
        }
        if (lo->name == NULL || strcmp(name, "config") == 0) {
            fprintf(stderr, "mmtlsd: %s:%d: unknown option '%s'\n", path, lineno, name);
            goto out;
        }
        if ((lo->has_arg == required_argument) != (val != NULL)) {
            fprintf(stderr, "mmtlsd: %s:%d: option '%s' %s\n", path, lineno, name,
                    val == NULL ? "needs a value" : "takes no value");
            goto out;
        }
        words[nwords++] = names + nlen;
        nlen += (size_t)sprintf(names + nlen, "--%s", name) + 1;
        if (val != NULL)
            words[nwords++] = val;
    }
    if (parse_args((int)nwords, words, o) != 0) {
        fprintf(stderr, "mmtlsd: (in config file %s)\n", path);
        goto out;
    }
    rc = 0;
out:
    free(words);
    free(names);
    if (rc != 0) {
        free(*text); /* on success the options point into it: the caller keeps it */
        *text = NULL;
    }
    fclose(fp);
    return rc;
}

static int tally_on_event(struct mmtls_session *s, const struct mmtls_event_info *ev, void *arg)
{
    struct tally *t = arg;
    const struct mmtls_session_info *in = mmtls_session_info(s);

    if (ev->ev == MMTLS_EV_SESSION_END && in->plain) {
        t->plain++;
    } else if (ev->ev == MMTLS_EV_SESSION_END) {
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

/* One worker: an engine with its own apps, flows and key ring (share-nothing).  Offline and
 * with one worker, worker 0 runs on the main thread. */
struct worker {
    int id;
    struct mmtls_engine *e;
    struct mmtls_eve *eve; /* worker 0: the stream's owner; others share it */
    struct mmtls_dump *dump;
    struct mmtls_pcapout *pcap; /* worker 0: the file's owner; others share it */
    struct mmtls_block *blk;
    struct mmtls_depth *depth;
    struct mmtls_httpapp *http;
    struct mmtls_ids *ids;
    struct tally tally;
    int nworkers; /* for the "worker" field of eve stats and exception events */
    struct mmtlsd_bridge *br;
    struct mmtlsd_fast *fast; /* --io fast (mmtlsd_fast.c) */
    int efd; /* eventfd that wakes an idle inline worker when keys come; -1 offline */
    pthread_t thr;
    bool thr_started;
    int rc;
    char err[256];
};

/* Key steering (docs/ARCHITECTURE.md, "Several workers"): a worker notes each new session's
 * client random here; the key server thread looks the random up and pushes the keys to that
 * worker's ring only.  An entry is (56-bit tag from the random) << 8 | (worker + 1); a miss
 * (the ClientHello not seen yet, or overwritten by another session) sends the keys to every
 * worker, and the ones without the session let them expire from their pending table. */
#define STEER_BITS 16
static _Atomic uint64_t steer_tab[1u << STEER_BITS];

static void steer_slot(const uint8_t cr[32], size_t *idx, uint64_t *tag)
{
    uint64_t a, b;

    memcpy(&a, cr + 16, 8);
    memcpy(&b, cr + 24, 8);
    *idx = (size_t)((a * 0x9e3779b97f4a7c15ull) >> (64 - STEER_BITS));
    *tag = b >> 8;
}

static void steer_note(void *ud, const uint8_t cr[32])
{
    const struct worker *w = ud;
    size_t idx;
    uint64_t tag;

    steer_slot(cr, &idx, &tag);
    atomic_store_explicit(&steer_tab[idx], tag << 8 | (uint64_t)(w->id + 1), memory_order_release);
}

/* Key server thread -> worker: copy the delivery and hand the pointer over the worker's SPSC
 * ring (docs/ARCHITECTURE.md, "Keys from key channels").  Never blocks: a full ring drops. */
struct deliver_ctx {
    struct worker *w;
    int nworkers;
    _Atomic unsigned long dropped, steered, broadcast;
};

static void deliver_to(struct deliver_ctx *c, struct worker *w, const struct mmtls_key_delivery *d)
{
    struct mmtls_engine_keymsg *m = mmtls_engine_keymsg_new(d);

    if (m == NULL || !mmtls_ring_push(mmtls_engine_key_ring(w->e), m)) {
        mmtls_engine_keymsg_free(m);
        c->dropped++;
        return;
    }
    if (w->efd >= 0 && eventfd_write(w->efd, 1) != 0)
        mmtls_log(MMTLS_LOG_DEBUG, "eventfd_write: %s", strerror(errno));
}

static void on_key_delivery(void *ud, const struct mmtls_key_delivery *d)
{
    struct deliver_ctx *c = ud;
    size_t idx;
    uint64_t tag, ent;

    if (c->nworkers == 1) {
        deliver_to(c, &c->w[0], d);
        return;
    }
    steer_slot(d->client_random, &idx, &tag);
    ent = atomic_load_explicit(&steer_tab[idx], memory_order_acquire);
    if (ent != 0 && ent >> 8 == tag && (int)(ent & 0xff) <= c->nworkers) {
        c->steered++;
        deliver_to(c, &c->w[(ent & 0xff) - 1], d);
        return;
    }
    c->broadcast++;
    for (int i = 0; i < c->nworkers; i++)
        deliver_to(c, &c->w[i], d);
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

static void summary(const struct opts *o, const struct worker *w, int n, const struct dsb_ctx *dsb,
                    double secs, const char *eve_path, uint64_t eve_lines)
{
    struct mmtls_engine_stats st = {0};
    struct tally t = {0};
    bool any = false;

    for (int k = 0; k < n; k++) {
        const struct mmtls_engine_stats *ws = mmtls_engine_get_stats(w[k].e);
        st.packets += ws->packets;
        st.bytes += ws->bytes;
        st.flows_not_tls += ws->flows_not_tls;
        st.records += ws->records;
        st.records_decrypted += ws->records_decrypted;
        st.records_undecrypted += ws->records_undecrypted;
        st.records_skipped += ws->records_skipped;
        st.plain_bytes += ws->plain_bytes;
        for (int i = 0; i <= MMTLS_TLSERR_MAX; i++)
            st.tls_errors[i] += ws->tls_errors[i];
        for (int i = 0; i < MMTLS_DEC_EVENT_MAX; i++)
            st.decode_events[i] += ws->decode_events[i];
        t.sessions += w[k].tally.sessions;
        t.plain += w[k].tally.plain;
        for (int i = 0; i < 4; i++)
            t.by_status[i] += w[k].tally.by_status[i];
    }
    fprintf(stderr, "mmtlsd: read %llu packets (%.1f MB) from %s in %.2f s%s\n",
            (unsigned long long)st.packets, (double)st.bytes / 1e6,
            o->iface != NULL            ? o->iface
            : strcmp(o->read, "-") == 0 ? "standard input"
                                        : o->read,
            secs, n > 1 ? " (all workers)" : "");
    fprintf(stderr,
            "mmtlsd: %llu TLS sessions: %llu decrypted, %llu partial, %llu without keys; "
            "%llu TCP flows not TLS%s\n",
            (unsigned long long)t.sessions, (unsigned long long)t.by_status[MMTLS_KEYS_DECRYPTED],
            (unsigned long long)t.by_status[MMTLS_KEYS_PARTIAL],
            (unsigned long long)t.by_status[MMTLS_KEYS_NONE],
            (unsigned long long)(st.flows_not_tls + t.plain),
            t.plain > 0 ? " (inspected as plain streams, as --rules does)" : "");
    fprintf(stderr,
            "mmtlsd: %llu records, %llu decrypted, %llu not decrypted, %llu skipped; "
            "%.1f MB plaintext\n",
            (unsigned long long)st.records, (unsigned long long)st.records_decrypted,
            (unsigned long long)st.records_undecrypted, (unsigned long long)st.records_skipped,
            (double)st.plain_bytes / 1e6);
    if (dsb->blocks > 0)
        fprintf(stderr, "mmtlsd: %llu decryption secrets blocks read (%llu bad lines)\n",
                (unsigned long long)dsb->blocks, (unsigned long long)dsb->bad_lines);
    fprintf(stderr, "mmtlsd: errors:");
    for (int i = 1; i <= MMTLS_TLSERR_MAX; i++) {
        if (st.tls_errors[i] != 0) {
            fprintf(stderr, " %s=%llu", mmtls_tls_error_name(i),
                    (unsigned long long)st.tls_errors[i]);
            any = true;
        }
    }
    for (int i = 1; i < MMTLS_DEC_EVENT_MAX; i++) {
        if (st.decode_events[i] != 0 && i != MMTLS_DEC_NOT_TCP && i != MMTLS_DEC_IP_FRAGMENT) {
            fprintf(stderr, " %s=%llu", mmtls_decode_event_name((enum mmtls_decode_event)i),
                    (unsigned long long)st.decode_events[i]);
            any = true;
        }
    }
    fprintf(stderr, "%s\n", any ? "" : " none");
    fprintf(stderr, "mmtlsd: wrote %llu events to %s\n", (unsigned long long)eve_lines, eve_path);
}

/* Engine reports (at most one per resource per second; stats every --stats-interval). */
static void report_exception(void *ud, const struct mmtls_engine_exception *x)
{
    struct worker *w = ud;

    mmtls_eve_write_exception(w->eve, x, w->nworkers > 1 ? w->id : -1);
}

static void report_stats(void *ud, const struct mmtls_engine *e, uint64_t now_us)
{
    struct worker *w = ud;

    mmtls_eve_write_stats(w->eve, e, now_us, w->nworkers > 1 ? w->id : -1);
}

/* Creates worker w's engine and apps.  root_eve NULL: w owns the eve stream at eve_path; and
 * root_pcap NULL: w owns the --pcap-out file (several workers write one file, under its lock). */
static int worker_setup(struct worker *w, const struct opts *o, int nworkers,
                        struct mmtls_eve *root_eve, const char *eve_path,
                        struct mmtls_pcapout *root_pcap)
{
    struct mmtls_engine_opts eo = o->eng;
    struct mmtls_app ta = {.sz = sizeof(ta),
                           .name = "tally",
                           .events = MMTLS_EV_SESSION_END,
                           .on_event = tally_on_event,
                           .arg = &w->tally};
    char err[512] = "";
    int rc;

    w->efd = -1;
    rc = root_eve == NULL ? mmtls_eve_new(&w->eve, eve_path, err, sizeof(err))
                          : mmtls_eve_new_shared(&w->eve, root_eve);
    if (rc != 0) {
        fprintf(stderr, "mmtlsd: %s\n", err[0] != '\0' ? err : "cannot allocate an eve writer");
        return -1;
    }
    if (o->dump_dir != NULL && mmtls_dump_new(&w->dump, o->dump_dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "mmtlsd: %s\n", err);
        return -1;
    }
    if (o->pcap_out != NULL) {
        rc = root_pcap == NULL ? mmtls_pcapout_new(&w->pcap, o->pcap_out, o->pcap_port_from,
                                                   o->pcap_port_to, err, sizeof(err))
                               : mmtls_pcapout_new_shared(&w->pcap, root_pcap);
        if (rc != 0) {
            fprintf(stderr, "mmtlsd: %s\n", err[0] != '\0' ? err : "cannot allocate --pcap-out");
            return -1;
        }
    }
    eo.flow.id_offset = (uint32_t)w->id; /* flow ids unique across workers */
    eo.flow.id_stride = (uint32_t)nworkers;
    if (nworkers > 1) {
        eo.on_client_random = steer_note;
        eo.on_client_random_ud = w;
    }
    w->nworkers = nworkers;
    if (o->io == MMTLSD_IO_FAST && o->iface != NULL) {
        w->fast = mmtlsd_fast_new();
        if (w->fast == NULL)
            return -1;
        mmtlsd_fast_engine_opts(w->fast, &eo);
    }
    eo.on_exception = report_exception;
    eo.report_ud = w;
    if (o->stats_interval_s > 0 && o->stats_event) {
        eo.on_stats = report_stats;
        eo.stats_interval_ms = o->stats_interval_s * 1000;
    }
    if (mmtls_engine_new(&w->e, &eo) != 0) {
        fprintf(stderr, "mmtlsd: cannot create the engine\n");
        return -1;
    }
    /* With the HTTP app, the depth applies per message body (it knows where bodies end);
     * otherwise per response, counted from each client record (the depth app). */
    if (o->inspect_depth > 0 && !o->log_http && o->detect == NULL &&
        mmtls_depth_register(&w->depth, w->e, o->inspect_depth, o->depth_wire) != 0) {
        fprintf(stderr, "mmtlsd: cannot register the depth app\n");
        return -1;
    }
    if (o->block_eicar || o->nblock > 0) {
        if (mmtls_block_new(&w->blk, w->eve) != 0 ||
            (o->block_eicar && mmtls_block_add_eicar(w->blk) != 0)) {
            fprintf(stderr, "mmtlsd: cannot set up the block rules\n");
            return -1;
        }
        for (int i = 0; i < o->nblock; i++) {
            if (mmtls_block_add(w->blk, o->block_content[i], o->block_content[i],
                                strlen(o->block_content[i]), 9000100u + (uint32_t)i) != 0) {
                fprintf(stderr, "mmtlsd: cannot add block rule %d\n", i + 1);
                return -1;
            }
        }
        if (mmtls_block_register(w->blk, w->e) != 0) {
            fprintf(stderr, "mmtlsd: cannot register the block app\n");
            return -1;
        }
    }
    if (o->detect != NULL) {
        struct mmtls_ids_opts io = {.sz = sizeof(io),
                                    .detect = o->detect,
                                    .eve = w->eve,
                                    .log_http = o->log_http,
                                    /* the paper's default: the first 64 KB of each body */
                                    .depth = o->inspect_depth != 0 ? o->inspect_depth : 65536,
                                    .req_depth = o->inspect_depth_req};
        if (mmtls_ids_new(&w->ids, &io) != 0 || mmtls_ids_register(w->ids, w->e) != 0) {
            fprintf(stderr, "mmtlsd: cannot register the rule engine\n");
            return -1;
        }
    } else if (o->log_http) {
        struct mmtls_httpapp_opts ho = {.sz = sizeof(ho),
                                        .eve = w->eve,
                                        .depth = o->inspect_depth,
                                        .req_depth = o->inspect_depth_req};
        if (mmtls_httpapp_new(&w->http, &ho) != 0 || mmtls_httpapp_register(w->http, w->e) != 0) {
            fprintf(stderr, "mmtlsd: cannot register the http app\n");
            return -1;
        }
    }
    if (mmtls_eve_register(w->eve, w->e) != 0 ||
        (w->dump != NULL && mmtls_dump_register(w->dump, w->e) != 0) ||
        (w->pcap != NULL && mmtls_pcapout_register(w->pcap, w->e) != 0) ||
        mmtls_engine_app_register(w->e, &ta, NULL) != 0) {
        fprintf(stderr, "mmtlsd: cannot register the apps\n");
        return -1;
    }
    if (o->iface != NULL && o->key_listen != NULL) {
        w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (w->efd < 0) {
            fprintf(stderr, "mmtlsd: eventfd: %s\n", strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Frees in dependency order: the engine (its apps run at SESSION_END) before the apps. */
static void worker_free(struct worker *w)
{
    mmtls_engine_free(w->e);
    mmtls_dump_free(w->dump);
    mmtls_block_free(w->blk);
    mmtls_depth_free(w->depth);
    mmtls_httpapp_free(w->http);
    mmtls_ids_free(w->ids);
    if (w->efd >= 0)
        close(w->efd);
    if (w->id != 0) {
        mmtls_eve_free(w->eve); /* worker 0's writer owns the stream: freed last */
        mmtls_pcapout_free(w->pcap);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    if (w->fast != NULL)
        w->rc = mmtlsd_fast_run(w->fast, w->e, w->efd, &stop_flag, w->err, sizeof(w->err));
    else
        w->rc = mmtlsd_bridge_run(w->br, w->e, w->efd, &stop_flag, w->err, sizeof(w->err));
    if (w->rc != 0)
        stop_flag = 1; /* one worker failing stops them all */
    return NULL;
}

/* --user: gives up root once everything privileged is open (AF_PACKET sockets, the key
 * server's listening socket, log files): the user's groups, gid, uid, then a check that root
 * cannot be taken back.  The process stays non-dumpable (secrets never land in a core file). */
static int drop_privileges(const char *user, bool allow_core)
{
    struct passwd *pw;

    if (user == NULL)
        return 0;
    errno = 0;
    pw = getpwnam(user);
    if (pw == NULL) {
        fprintf(stderr, "mmtlsd: --user %s: %s\n", user,
                errno != 0 ? strerror(errno) : "no such user");
        return -1;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0) {
        fprintf(stderr, "mmtlsd: --user %s: %s\n", user, strerror(errno));
        return -1;
    }
    if (pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        fprintf(stderr, "mmtlsd: --user %s: root could be taken back; stopping\n", user);
        return -1;
    }
    /* setuid resets the flag to fs.suid_dumpable: set ours again */
    (void)prctl(PR_SET_DUMPABLE, allow_core ? 1 : 0, 0, 0, 0);
    mmtls_log(MMTLS_LOG_INFO, "running as %s (uid %u, gid %u)", pw->pw_name, (unsigned)pw->pw_uid,
              (unsigned)pw->pw_gid);
    return 0;
}

/* Inline: opens every worker's ports (one worker after the other: see mmtlsd_bridge_open),
 * runs the workers on their own threads until a signal, and closes the ports. */
static int run_inline(const struct opts *o, struct worker *w, int n)
{
    struct sigaction sa = {.sa_handler = on_signal};
    struct mmtlsd_xdp xdp = {{NULL, NULL}};
    struct mmtlsd_dpdk dpdk = {{0, 0}, false};
    struct mmtlsd_io_opts io = {.io = o->io,
                                .vnet = !o->no_vnet,
                                .frame_ring = !o->afp_blocks,
                                .fanout_group = n > 1 ? 1 : 0,
                                .xdp_mode = o->xdp_mode,
                                .xdp = &xdp,
                                .dpdk = &dpdk};
    char err[512] = "";
    int status = 0;

    if (o->io == MMTLSD_IO_XDP && mmtlsd_xdp_setup(&xdp, o->iface, n, err, sizeof(err)) != 0) {
        fprintf(stderr, "mmtlsd: %s\n", err);
        return 2;
    }
    if (o->io == MMTLSD_IO_DPDK &&
        mmtlsd_dpdk_setup(&dpdk, o->iface, n, o->dpdk_args, err, sizeof(err)) != 0) {
        fprintf(stderr, "mmtlsd: %s\n", err);
        return 2;
    }
    for (int i = 0; i < n; i++) {
        if (w[i].fast != NULL
                ? mmtlsd_fast_open(w[i].fast, o->iface, i > 0 ? w[0].fast : NULL, io.fanout_group,
                                   o->fast_rps, err, sizeof(err)) != 0
                : mmtlsd_bridge_open(&w[i].br, o->iface, &io, i, err, sizeof(err)) != 0) {
            fprintf(stderr, "mmtlsd: %s\n", err);
            status = 2;
            goto out;
        }
    }
    if (drop_privileges(o->user, o->allow_core) != 0) {
        status = 2;
        goto out;
    }
    mmtls_log(MMTLS_LOG_INFO, "bridging %s with %d worker%s (%s%s)", o->iface, n, n > 1 ? "s" : "",
              o->io == MMTLSD_IO_XDP    ? "AF_XDP, one socket per worker and queue"
              : o->io == MMTLSD_IO_DPDK ? "DPDK, one queue per worker and device, polled"
              : o->io == MMTLSD_IO_FAST ? "kernel fast path: TC programs, divert interface"
              : o->afp_blocks           ? "TPACKET_V3 blocks, "
                                        : "TPACKET_V2 frames, ",
              o->io != MMTLSD_IO_AFPACKET ? ""
              : o->no_vnet                ? "no vnet header"
                                          : "PACKET_VNET_HDR: GSO frames kept");
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    for (int i = 0; i < n; i++) {
        int rc = pthread_create(&w[i].thr, NULL, worker_main, &w[i]);
        if (rc != 0) {
            fprintf(stderr, "mmtlsd: cannot start worker %d: %s\n", i, strerror(rc));
            stop_flag = 1;
            status = 2;
            break;
        }
        w[i].thr_started = true;
    }
    for (int i = 0; i < n; i++) {
        if (!w[i].thr_started)
            continue;
        pthread_join(w[i].thr, NULL);
        if (w[i].rc != 0) {
            fprintf(stderr, "mmtlsd: worker %d: %s\n", i, w[i].err);
            status = 2;
        }
    }
out:
    for (int i = n - 1; i >= 0; i--) { /* worker 0 last: it owns the fast path's programs */
        mmtlsd_bridge_close(w[i].br, i);
        w[i].br = NULL;
        mmtlsd_fast_close(w[i].fast);
        w[i].fast = NULL;
    }
    mmtlsd_xdp_teardown(&xdp);   /* after the sockets: the programs redirect into them */
    mmtlsd_dpdk_teardown(&dpdk); /* after the bridges: they hold its queues and mbufs */
    return status;
}

/* --rules: loads the rule files into *rs and compiles them into *det (shared, read-only, by
 * every worker).  The load summary and the compile summary go to `out` (NULL: not printed).
 * 0, or 2 when a file cannot be read or the rules cannot be compiled. */
static int load_rules(const struct opts *o, struct mmtls_rules_set **rs, struct mmtls_detect **det,
                      FILE *out)
{
    char err[512];
    int status = 0, rc;

    if (mmtls_rules_set_new(rs) != 0) {
        fprintf(stderr, "mmtlsd: cannot allocate the rule set\n");
        return 2;
    }
    for (int i = 0; i < o->nrules; i++) {
        rc = mmtls_rules_load_file(*rs, o->rules[i], err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "mmtlsd: rules: %s\n", rc == MMTLS_E_IO ? err : mmtls_strerror(rc));
            status = 2;
        }
    }
    if (out != NULL)
        mmtls_rules_summary_print(*rs, out);
    {
        /* detect keeps each HTTP buffer up to retain_max for evaluation: at least the depth */
        uint64_t depth = MMTLS_MAX(o->inspect_depth, o->inspect_depth_req);
        struct mmtls_detect_opts dopts = {
            .sz = sizeof(dopts),
            .retain_max = (size_t)MMTLS_MIN(MMTLS_MAX(depth, (uint64_t)65536), (uint64_t)64 << 20)};
        rc = mmtls_detect_new(det, *rs, &dopts);
    }
    if (rc != 0) {
        fprintf(stderr, "mmtlsd: rules: cannot compile the rules: %s\n", mmtls_strerror(rc));
        return 2;
    }
    if (out != NULL)
        mmtls_detect_info_print(*det, out);
    return status;
}

/* The allocator.  Flows' kept copies (reasm.c: up to about 1 MB a direction, freed whenever the
 * peer has acknowledged everything) and record buffers are freed and allocated again all the
 * time.  With glibc's defaults such blocks get mappings of their own or are trimmed off an
 * arena's top, and every reuse faults its pages in again (zeroed by the kernel): 0.1 ns/B of the
 * fast path's decrypt-all run (docs/BENCHMARKS.md "Eighth session").  Here blocks below 4 MB
 * come from the arenas, and up to 64 MB free at an arena's top stays mapped: memory the
 * engine's caps do not see, at most 64 MB per arena (one per worker and the main thread).  A
 * GLIBC_TUNABLES setting in the environment is left to rule instead. */
static void malloc_tune(void)
{
#if defined(__GLIBC__)
    if (getenv("GLIBC_TUNABLES") != NULL)
        return;
    (void)mallopt(M_MMAP_THRESHOLD, 4 << 20);
    (void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

int main(int argc, char **argv)
{
    struct opts o = {.stats_event = true, .workers = 1, .pcap_port_from = 443, .pcap_port_to = 80};
    struct mmtls_keystore_opts kso = {.max_entries = 1u << 20, .ttl_ms = 0};
    struct mmtls_keystore *ks = NULL;
    struct mmtls_pcap_reader *r = NULL;
    static struct worker w[MMTLSD_MAX_WORKERS];
    struct dsb_ctx dsb = {0};
    struct deliver_ctx dctx = {.w = w};
    struct mmtls_keyserver *ksrv = NULL;
    struct mmtls_io_pkt pkt;
    char err[512] = "", eve_path[PATH_MAX], *config_text = NULL;
    const char *config = NULL;
    struct mmtls_rules_set *rules = NULL;
    struct mmtls_detect *detect = NULL;
    int rc, status = 0, n = 0;
    uint64_t last_ts = 0;
    double t0;

    /* Session secrets live in this process: no core dumps, no ptrace by other processes of the
     * same user (prctl(2) PR_SET_DUMPABLE). */
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    malloc_tune();
    mmtls_engine_opts_default(&o.eng);
    o.eng.key_wait_ms = UINT32_MAX;        /* "not given": becomes 2000 with --key-listen, else 0 */
    o.eng.midstream_grace_ms = UINT32_MAX; /* "not given": the idle flow timeout */
    o.exc_global = -1;
    for (int res = 0; res < MMTLS_EXC_N; res++)
        o.exc_res[res] = -1;
    /* The config file first, so the command line overrides it. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            config = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config = argv[i] + 9;
        else if (strncmp(argv[i], "-c", 2) == 0 && argv[i][2] != '\0')
            config = argv[i] + 2;
    }
    if (config != NULL && load_config(config, &o, &config_text) != 0)
        return 2;
    if (parse_args(argc, argv, &o) != 0 || check_args(&o) != 0)
        return 2;
    if (o.allow_core) {
        /* debugging only; the secure-memory pool keeps secrets out of the core regardless */
        (void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        mmtls_log(MMTLS_LOG_WARN, "--allow-core-dumps: the process is dumpable");
    }
    if (o.nrules > 0) {
        rc = load_rules(&o, &rules, &detect, o.test_rules ? stdout : o.quiet ? NULL : stderr);
        if (rc != 0 || o.test_rules) {
            mmtls_detect_free(detect);
            mmtls_rules_set_free(rules);
            return rc;
        }
        o.detect = detect;
        o.eng.inspect_plain = true; /* rules see plain TCP streams too */
    }
    if (o.eng.key_wait_ms == UINT32_MAX)
        o.eng.key_wait_ms = o.iface != NULL ? 500 : o.key_listen != NULL ? 2000 : 0;

    if (o.key_store_max != 0)
        kso.max_entries = o.key_store_max;
    if (mmtls_keystore_new(&ks, &kso) != 0) {
        fprintf(stderr, "mmtlsd: cannot allocate the key store\n");
        status = 2;
        goto out;
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
    for (n = 0; n < o.workers;) {
        w[n].id = n;
        n++; /* counted before setup: worker_free cleans a half-made worker too */
        if (worker_setup(&w[n - 1], &o, o.workers, n == 1 ? NULL : w[0].eve, eve_path,
                         n == 1 ? NULL : w[0].pcap) != 0) {
            status = 2;
            goto out;
        }
    }
    dctx.nworkers = n;
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
            .max_channels = o.key_max_channels, /* 0: the key server's default */
        };
        if (mmtls_keyserver_start(&ksrv, &kopts, err, sizeof(err)) != 0) {
            fprintf(stderr, "mmtlsd: key server: %s\n", err);
            status = 2;
            goto out;
        }
        mmtls_log(MMTLS_LOG_INFO, "key server listening on %s (port %u)", o.key_listen,
                  mmtls_keyserver_port(ksrv));
    }
    t0 = now_s();
    /* inline: after the ports open (run_inline) */
    if (o.iface == NULL && drop_privileges(o.user, o.allow_core) != 0) {
        status = 2;
        goto out;
    }
    if (o.iface != NULL) {
        status = run_inline(&o, w, n);
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
        (void)mmtls_engine_packet(w[0].e, pkt.linktype, pkt.data, pkt.caplen, pkt.ts_us);
        last_ts = pkt.ts_us;
    }
    if (ksrv != NULL && o.iface == NULL) {
        /* Keys still on their way for the last sessions: give them the key wait once. */
        const struct mmtls_engine_stats *st = mmtls_engine_get_stats(w[0].e);
        struct timespec ts = {.tv_sec = o.eng.key_wait_ms / 1000,
                              .tv_nsec = (long)(o.eng.key_wait_ms % 1000) * 1000000L};
        if (st->records_held > st->records_released)
            nanosleep(&ts, NULL);
        mmtls_engine_poll_keys(w[0].e);
    }
    for (int i = 0; i < n; i++) {
        mmtls_engine_flush(w[i].e);
        if (o.stats_event)
            mmtls_eve_write_stats(w[i].eve, w[i].e, last_ts, n > 1 ? i : -1);
    }
    if (!o.quiet)
        summary(&o, w, n, &dsb, now_s() - t0, eve_path, mmtls_eve_lines(w[0].eve));
    if (w[0].pcap != NULL) {
        struct mmtls_pcapout_stats ps;
        mmtls_pcapout_get_stats(w[0].pcap, &ps);
        if (!o.quiet || ps.write_errors > 0)
            fprintf(stderr,
                    "mmtlsd: pcap-out %s: %llu sessions written (%llu frames, %.1f MB "
                    "plaintext, %llu gaps); not written: %llu without keys, %llu without "
                    "application data; %llu write errors\n",
                    o.pcap_out, (unsigned long long)ps.sessions, (unsigned long long)ps.frames,
                    (double)ps.plain_bytes / 1e6, (unsigned long long)ps.gaps,
                    (unsigned long long)ps.sessions_no_keys,
                    (unsigned long long)ps.sessions_no_data, (unsigned long long)ps.write_errors);
    }

out:
    mmtls_keyserver_stop(ksrv);
    if (dctx.dropped > 0)
        fprintf(stderr, "mmtlsd: %lu key messages dropped (worker ring full)\n",
                (unsigned long)dctx.dropped);
    if (n > 1)
        mmtls_log(MMTLS_LOG_INFO, "keys steered to one worker %lu times, to all %lu times",
                  (unsigned long)dctx.steered, (unsigned long)dctx.broadcast);
    for (int i = n - 1; i >= 0; i--)
        worker_free(&w[i]);
    if (n > 0) {
        mmtls_eve_free(w[0].eve);
        mmtls_pcapout_free(w[0].pcap);
    }
    mmtls_pcap_close(r);
    mmtls_keystore_free(ks);
    mmtls_detect_free(detect); /* after the workers (their IDS apps) */
    mmtls_rules_set_free(rules);
    free(config_text);
    /* Every owner wiped its secrets when freeing them; this catches anything left behind
     * (every thread has stopped: the key server and the workers were joined above). */
    mmtls_secmem_wipe_all();
    return status;
}
