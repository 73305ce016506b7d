/* io_pcap — offline packet source: classic pcap and pcapng files, from a path or stdin.
 *
 * The reader never seeks, so a pipe works ("tcpdump -w - | mmtlsd -r -").  Each call reads
 * exactly one record or block into an owned buffer with fread (stdio does the buffering), so
 * the packet handed out stays valid until the next call.  Lengths from the file are checked
 * before anything is read: a record is at most MMTLS_PCAP_MAX_SNAPLEN bytes of packet data and
 * a pcapng block at most MMTLS_PCAPNG_MAX_BLOCK, so the buffer never grows past that.
 *
 * Classic pcap: https://wiki.wireshark.org/Development/LibpcapFileFormat and
 * draft-ietf-opsawg-pcap.  pcapng: draft-ietf-opsawg-pcapng (cited as "pcapng §x").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "io/io.h"

#define PCAP_MAGIC_US 0xa1b2c3d4u
#define PCAP_MAGIC_NS 0xa1b23c4du
#define PCAP_FILE_HDR_LEN 24
#define PCAP_REC_HDR_LEN 16

#define PCAPNG_BOM 0x1a2b3c4du
#define PCAPNG_MAX_IFACES 256 /* an IDB beyond this is refused (E_LIMIT) */
#define PCAPNG_MAX_OPTIONS 256

/* pcapng §4 block types */
#define PCAPNG_SHB 0x0a0d0d0au
#define PCAPNG_IDB 0x00000001u
#define PCAPNG_PB 0x00000002u /* obsolete Packet Block, pcapng appendix */
#define PCAPNG_SPB 0x00000003u
#define PCAPNG_EPB 0x00000006u
#define PCAPNG_DSB 0x0000000au

/* pcapng §4.2 interface options */
#define PCAPNG_OPT_ENDOFOPT 0
#define PCAPNG_OPT_IF_TSRESOL 9
#define PCAPNG_OPT_IF_TSOFFSET 14

struct pcapng_iface {
    int linktype;
    uint32_t snaplen; /* 0 = no limit */
    uint8_t tsresol;  /* raw if_tsresol: bit 7 set = 2^-n, else 10^-n; n in the low 7 bits */
    int64_t tsoffset_s;
};

struct mmtls_pcap_reader {
    FILE *fp; /* owned when close_fp, else borrowed (stdin) */
    bool close_fp;
    const char *name; /* borrowed: path given to open (or a literal) */
    uint8_t *buf;     /* owned: the current record or block; or, when mapped, a view into map */
    uint8_t *map;     /* owned: the whole file mapped (regular files), NULL when read with stdio */
    size_t map_len;
    size_t released; /* map[0..released) handed back with MADV_DONTNEED */
    size_t cap;
    uint64_t off; /* file offset of the next unread byte */
    bool ng;
    bool swapped; /* file byte order is not the host's */
    bool nsec;    /* classic pcap with nanosecond timestamps */
    int linktype; /* classic pcap */
    uint32_t nif; /* pcapng: interfaces of the current section */
    struct pcapng_iface ifs[PCAPNG_MAX_IFACES];
    uint64_t last_ts_us; /* for Simple Packet Blocks, which carry no timestamp */
    int sticky;          /* first error returned by next(), returned again afterwards */
    mmtls_pcap_dsb_cb dsb_cb;
    void *dsb_ud; /* borrowed */
};

static uint16_t rd16(const uint8_t *p, bool swapped)
{
    uint16_t v;

    memcpy(&v, p, sizeof(v));
    return swapped ? __builtin_bswap16(v) : v;
}

static uint32_t rd32(const uint8_t *p, bool swapped)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return swapped ? __builtin_bswap32(v) : v;
}

static uint64_t rd64(const uint8_t *p, bool swapped)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return swapped ? __builtin_bswap64(v) : v;
}

/* Makes buf hold at least `need` bytes (need is bounded by the callers' length checks). */
static int buf_reserve(struct mmtls_pcap_reader *r, size_t need)
{
    size_t cap = r->cap != 0 ? r->cap : 4096;
    uint8_t *p;

    if (need <= r->cap) {
        return 0;
    }
    while (cap < need) {
        cap *= 2;
    }
    p = realloc(r->buf, cap);
    if (p == NULL) {
        return MMTLS_E_NOMEM;
    }
    r->buf = p;
    r->cap = cap;
    return 0;
}

/* Reads up to n bytes into buf[at..at+n); *got is the count read, less than n only at the end
 * of the file.  Negative on an I/O error or when out of memory. */
static int rd_bytes(struct mmtls_pcap_reader *r, size_t at, size_t n, size_t *got, char *err,
                    size_t err_cap)
{
    *got = 0;
    if (r->map != NULL) {
        /* Mapped file: records are read in place, no copy.  Reads are sequential and a unit
         * (record or block) starts with at == 0, so buf + at is always map + off. */
        if (at == 0) {
            r->buf = r->map + r->off;
            /* Earlier records are no longer borrowed by anyone: give their pages back every
             * 64 MiB, so the resident size stays small whatever the file size. */
            if (r->off - r->released >= (64u << 20)) {
                size_t upto = (size_t)(r->off & ~(uint64_t)0xfffff);
                (void)madvise(r->map + r->released, upto - r->released, MADV_DONTNEED);
                r->released = upto;
            }
        }
        *got = (size_t)MMTLS_MIN((uint64_t)n, r->map_len - r->off);
        r->off += *got;
        return 0;
    }
    if (buf_reserve(r, at + n) != 0) {
        mmtls_errf(err, err_cap, "%s: out of memory", r->name);
        return MMTLS_E_NOMEM;
    }
    *got = fread(r->buf + at, 1, n, r->fp);
    r->off += *got;
    if (*got < n && ferror(r->fp)) {
        mmtls_errf(err, err_cap, "%s: read error at offset %" PRIu64 ": %s", r->name, r->off,
                   strerror(errno));
        return MMTLS_E_IO;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Classic pcap                                                                                */

/* The 24-byte file header; its magic (4 bytes) is already in buf. */
static int pcap_open_hdr(struct mmtls_pcap_reader *r, char *err, size_t err_cap)
{
    uint32_t magic;
    uint16_t major, minor;
    size_t got;
    int rc;

    memcpy(&magic, r->buf, 4);
    if (magic == PCAP_MAGIC_US || magic == PCAP_MAGIC_NS) {
        r->swapped = false;
    } else if (__builtin_bswap32(magic) == PCAP_MAGIC_US ||
               __builtin_bswap32(magic) == PCAP_MAGIC_NS) {
        r->swapped = true;
    } else {
        mmtls_errf(err, err_cap, "%s: not a pcap or pcapng file", r->name);
        return MMTLS_E_UNSUPPORTED;
    }
    r->nsec = rd32(r->buf, r->swapped) == PCAP_MAGIC_NS;
    rc = rd_bytes(r, 4, PCAP_FILE_HDR_LEN - 4, &got, err, err_cap);
    if (rc != 0) {
        return rc;
    }
    if (got < PCAP_FILE_HDR_LEN - 4) {
        mmtls_errf(err, err_cap, "%s: truncated pcap file header", r->name);
        return MMTLS_E_MALFORMED;
    }
    /* magic u32 | version_major u16 | version_minor u16 | thiszone i32 | sigfigs u32 |
     * snaplen u32 | linktype u32 (the upper 4 bits carry FCS information) */
    major = rd16(r->buf + 4, r->swapped);
    minor = rd16(r->buf + 6, r->swapped);
    if (major != 2) {
        mmtls_errf(err, err_cap, "%s: unsupported pcap version %u.%u", r->name, major, minor);
        return MMTLS_E_UNSUPPORTED;
    }
    r->linktype = (int)(rd32(r->buf + 20, r->swapped) & 0x0fffffffu);
    return 0;
}

static int pcap_next_rec(struct mmtls_pcap_reader *r, struct mmtls_io_pkt *pkt, char *err,
                         size_t err_cap)
{
    uint64_t roff = r->off;
    uint32_t sec, frac, caplen, origlen;
    size_t got;
    int rc;

    rc = rd_bytes(r, 0, PCAP_REC_HDR_LEN, &got, err, err_cap);
    if (rc != 0) {
        return rc;
    }
    if (got == 0) {
        return MMTLS_DECLINED; /* clean end of file, at a record boundary */
    }
    if (got < PCAP_REC_HDR_LEN) {
        goto truncated;
    }
    /* ts_sec u32 | ts_usec (or ts_nsec) u32 | incl_len u32 | orig_len u32 */
    sec = rd32(r->buf, r->swapped);
    frac = rd32(r->buf + 4, r->swapped);
    caplen = rd32(r->buf + 8, r->swapped);
    origlen = rd32(r->buf + 12, r->swapped);
    if (caplen > MMTLS_PCAP_MAX_SNAPLEN) {
        mmtls_errf(err, err_cap,
                   "%s: packet record at offset %" PRIu64 ": captured length %u exceeds %u",
                   r->name, roff, caplen, MMTLS_PCAP_MAX_SNAPLEN);
        return MMTLS_E_MALFORMED;
    }
    if (caplen > origlen) {
        mmtls_errf(err, err_cap,
                   "%s: packet record at offset %" PRIu64
                   ": captured length %u exceeds original length %u",
                   r->name, roff, caplen, origlen);
        return MMTLS_E_MALFORMED;
    }
    rc = rd_bytes(r, PCAP_REC_HDR_LEN, caplen, &got, err, err_cap);
    if (rc != 0) {
        return rc;
    }
    if (got < caplen) {
        goto truncated;
    }
    pkt->data = r->buf + PCAP_REC_HDR_LEN;
    pkt->caplen = caplen;
    pkt->origlen = origlen;
    pkt->ts_us = (uint64_t)sec * 1000000u + (r->nsec ? frac / 1000u : frac);
    pkt->linktype = r->linktype;
    pkt->ifidx = 0;
    r->last_ts_us = pkt->ts_us;
    return 0;

truncated:
    mmtls_errf(err, err_cap, "%s: truncated packet record at offset %" PRIu64, r->name, roff);
    return MMTLS_E_MALFORMED;
}

/* ------------------------------------------------------------------------------------------ */
/* pcapng                                                                                      */

/* Converts a timestamp in interface units to microseconds since the epoch (pcapng §4.2
 * if_tsresol: 10^-n, or 2^-n when the top bit is set; if_tsoffset: seconds added). */
static uint64_t ng_ts_us(uint64_t ts, const struct pcapng_iface *ifc)
{
    unsigned n = ifc->tsresol & 0x7fu;
    uint64_t us;

    if (ifc->tsresol & 0x80u) {
        us = (uint64_t)(((unsigned __int128)ts * 1000000u) >> n); /* n <= 127 */
    } else if (n <= 6) {
        us = ts;
        for (unsigned i = n; i < 6; i++) {
            us *= 10u; /* coarser than 1 us: wraps only for absurd files */
        }
    } else {
        uint64_t div = 1;
        unsigned i;

        for (i = 6; i < n && div <= UINT64_MAX / 10u; i++) {
            div *= 10u;
        }
        us = i < n ? 0 : ts / div;
    }
    /* modular on purpose: a negative offset subtracts */
    return us + (uint64_t)ifc->tsoffset_s * 1000000u;
}

/* Interface Description Block options (pcapng §4.2, option layout §3.5).  Pure. */
static int ng_idb_opts(struct mmtls_cur c, bool swapped, struct pcapng_iface *ifc)
{
    for (unsigned i = 0; i < PCAPNG_MAX_OPTIONS && mmtls_cur_left(&c) >= 4; i++) {
        uint16_t code = rd16(c.p, swapped), len = rd16(c.p + 2, swapped);
        size_t padded = ((size_t)len + 3u) & ~(size_t)3u;
        const uint8_t *v = c.p + 4;

        c.p += 4;
        if (code == PCAPNG_OPT_ENDOFOPT) {
            break;
        }
        if (padded > mmtls_cur_left(&c)) {
            return MMTLS_E_MALFORMED;
        }
        if (code == PCAPNG_OPT_IF_TSRESOL) {
            if (len != 1) {
                return MMTLS_E_MALFORMED;
            }
            ifc->tsresol = v[0];
        } else if (code == PCAPNG_OPT_IF_TSOFFSET) {
            if (len != 8) {
                return MMTLS_E_MALFORMED;
            }
            ifc->tsoffset_s = (int64_t)rd64(v, swapped);
        }
        c.p += padded;
    }
    return 0;
}

/* Reads one whole block into buf.  `have` bytes of it are already there (open's magic).
 * MMTLS_DECLINED at a clean end of file. */
static int ng_read_block(struct mmtls_pcap_reader *r, size_t have, struct mmtls_pcapng_block *b,
                         uint64_t *boff, char *err, size_t err_cap)
{
    size_t got, need;
    uint32_t bom;
    int rc;

    *boff = r->off - have;
    if (have < 8) {
        rc = rd_bytes(r, have, 8 - have, &got, err, err_cap);
        if (rc != 0) {
            return rc;
        }
        if (have == 0 && got == 0) {
            return MMTLS_DECLINED;
        }
        have += got;
        if (have < 8) {
            goto truncated;
        }
    }
    /* pcapng §4.1: the SHB type reads the same in both byte orders; the byte-order magic
     * right after the length says how to read everything in the section, the length too. */
    if (rd32(r->buf, false) == PCAPNG_SHB) {
        rc = rd_bytes(r, 8, 4, &got, err, err_cap);
        if (rc != 0) {
            return rc;
        }
        if (got < 4) {
            goto truncated;
        }
        have = 12;
        bom = rd32(r->buf + 8, false);
        if (bom == PCAPNG_BOM) {
            r->swapped = false;
        } else if (bom == __builtin_bswap32(PCAPNG_BOM)) {
            r->swapped = true;
        } else {
            mmtls_errf(err, err_cap,
                       "%s: bad byte-order magic in section header at offset %" PRIu64, r->name,
                       *boff);
            return MMTLS_E_MALFORMED;
        }
    }
    rc = mmtls_pcapng_block_parse(r->buf, have, r->swapped, b, &need);
    if (rc == MMTLS_AGAIN) {
        rc = rd_bytes(r, have, need - have, &got, err, err_cap);
        if (rc != 0) {
            return rc;
        }
        if (got < need - have) {
            goto truncated;
        }
        rc = mmtls_pcapng_block_parse(r->buf, need, r->swapped, b, &need);
    }
    if (rc != 0) {
        mmtls_errf(err, err_cap, "%s: bad block length %u at offset %" PRIu64, r->name,
                   rd32(r->buf + 4, r->swapped), *boff);
        return MMTLS_E_MALFORMED;
    }
    return 0;

truncated:
    mmtls_errf(err, err_cap, "%s: truncated block at offset %" PRIu64, r->name, *boff);
    return MMTLS_E_MALFORMED;
}

/* pcapng §4.1: byte-order magic u32 | major u16 | minor u16 | section length i64 | options */
static int ng_shb(struct mmtls_pcap_reader *r, const struct mmtls_pcapng_block *b, uint64_t boff,
                  char *err, size_t err_cap)
{
    uint16_t major, minor;

    if (b->body.len < 16) {
        mmtls_errf(err, err_cap, "%s: short section header block at offset %" PRIu64, r->name,
                   boff);
        return MMTLS_E_MALFORMED;
    }
    major = rd16(b->body.p + 4, r->swapped);
    minor = rd16(b->body.p + 6, r->swapped);
    if (major != 1) {
        mmtls_errf(err, err_cap, "%s: unsupported pcapng version %u.%u at offset %" PRIu64, r->name,
                   major, minor, boff);
        return MMTLS_E_UNSUPPORTED;
    }
    r->nif = 0; /* §4.2: interface ids are per section */
    return 0;
}

/* pcapng §4.2: linktype u16 | reserved u16 | snaplen u32 | options */
static int ng_idb(struct mmtls_pcap_reader *r, const struct mmtls_pcapng_block *b, uint64_t boff,
                  char *err, size_t err_cap)
{
    struct pcapng_iface ifc = {.tsresol = 6};

    if (b->body.len < 8) {
        mmtls_errf(err, err_cap, "%s: short interface description block at offset %" PRIu64,
                   r->name, boff);
        return MMTLS_E_MALFORMED;
    }
    if (r->nif >= PCAPNG_MAX_IFACES) {
        mmtls_errf(err, err_cap, "%s: too many interfaces (max %u) at offset %" PRIu64, r->name,
                   PCAPNG_MAX_IFACES, boff);
        return MMTLS_E_LIMIT;
    }
    ifc.linktype = rd16(b->body.p, r->swapped);
    ifc.snaplen = rd32(b->body.p + 4, r->swapped);
    if (ng_idb_opts(mmtls_cur_make(b->body.p + 8, b->body.len - 8), r->swapped, &ifc) != 0) {
        mmtls_errf(err, err_cap, "%s: bad interface option at offset %" PRIu64, r->name, boff);
        return MMTLS_E_MALFORMED;
    }
    r->ifs[r->nif++] = ifc;
    return 0;
}

static int ng_pkt_check(struct mmtls_pcap_reader *r, uint32_t ifidx, uint32_t caplen,
                        uint32_t origlen, size_t room, uint64_t boff, char *err, size_t err_cap)
{
    if (ifidx >= r->nif) {
        mmtls_errf(err, err_cap, "%s: packet block at offset %" PRIu64 ": unknown interface %u",
                   r->name, boff, ifidx);
        return MMTLS_E_MALFORMED;
    }
    if (caplen > room) {
        mmtls_errf(err, err_cap,
                   "%s: packet block at offset %" PRIu64 ": captured length %u exceeds the block",
                   r->name, boff, caplen);
        return MMTLS_E_MALFORMED;
    }
    if (caplen > MMTLS_PCAP_MAX_SNAPLEN) {
        mmtls_errf(err, err_cap,
                   "%s: packet block at offset %" PRIu64 ": captured length %u exceeds %u", r->name,
                   boff, caplen, MMTLS_PCAP_MAX_SNAPLEN);
        return MMTLS_E_MALFORMED;
    }
    if (caplen > origlen) {
        mmtls_errf(err, err_cap,
                   "%s: packet block at offset %" PRIu64
                   ": captured length %u exceeds original length %u",
                   r->name, boff, caplen, origlen);
        return MMTLS_E_MALFORMED;
    }
    return 0;
}

/* Enhanced (pcapng §4.3) and obsolete (appendix) Packet Blocks:
 *   EPB: interface id u32 | ts high u32 | ts low u32 | caplen u32 | origlen u32 | data | opts
 *   PB:  interface id u16 | drops u16  | ts high u32 | ts low u32 | caplen u32 | origlen u32 | ..
 * Both have a 20-byte fixed part. */
static int ng_epb(struct mmtls_pcap_reader *r, const struct mmtls_pcapng_block *b, uint64_t boff,
                  struct mmtls_io_pkt *pkt, char *err, size_t err_cap)
{
    const uint8_t *p = b->body.p;
    uint32_t ifidx, caplen, origlen;
    uint64_t ts;
    int rc;

    if (b->body.len < 20) {
        mmtls_errf(err, err_cap, "%s: short packet block at offset %" PRIu64, r->name, boff);
        return MMTLS_E_MALFORMED;
    }
    ifidx = b->type == PCAPNG_EPB ? rd32(p, r->swapped) : rd16(p, r->swapped);
    ts = (uint64_t)rd32(p + 4, r->swapped) << 32 | rd32(p + 8, r->swapped);
    caplen = rd32(p + 12, r->swapped);
    origlen = rd32(p + 16, r->swapped);
    rc = ng_pkt_check(r, ifidx, caplen, origlen, b->body.len - 20, boff, err, err_cap);
    if (rc != 0) {
        return rc;
    }
    pkt->data = p + 20;
    pkt->caplen = caplen;
    pkt->origlen = origlen;
    pkt->ts_us = ng_ts_us(ts, &r->ifs[ifidx]);
    pkt->linktype = r->ifs[ifidx].linktype;
    pkt->ifidx = ifidx;
    r->last_ts_us = pkt->ts_us;
    return 0;
}

/* pcapng §4.4: original length u32 | data.  Interface 0; captured length is what fits, bounded
 * by the interface snaplen; no timestamp (we repeat the previous packet's). */
static int ng_spb(struct mmtls_pcap_reader *r, const struct mmtls_pcapng_block *b, uint64_t boff,
                  struct mmtls_io_pkt *pkt, char *err, size_t err_cap)
{
    uint32_t origlen, caplen;
    int rc;

    if (b->body.len < 4) {
        mmtls_errf(err, err_cap, "%s: short simple packet block at offset %" PRIu64, r->name, boff);
        return MMTLS_E_MALFORMED;
    }
    origlen = rd32(b->body.p, r->swapped);
    caplen = (uint32_t)MMTLS_MIN((size_t)origlen, b->body.len - 4);
    if (r->nif > 0 && r->ifs[0].snaplen != 0) {
        caplen = MMTLS_MIN(caplen, r->ifs[0].snaplen);
    }
    rc = ng_pkt_check(r, 0, caplen, origlen, b->body.len - 4, boff, err, err_cap);
    if (rc != 0) {
        return rc;
    }
    pkt->data = b->body.p + 4;
    pkt->caplen = caplen;
    pkt->origlen = origlen;
    pkt->ts_us = r->last_ts_us;
    pkt->linktype = r->ifs[0].linktype;
    pkt->ifidx = 0;
    return 0;
}

/* pcapng §4.7: secrets type u32 | secrets length u32 | data (padded) | options */
static int ng_dsb(struct mmtls_pcap_reader *r, const struct mmtls_pcapng_block *b, uint64_t boff,
                  char *err, size_t err_cap)
{
    uint32_t type, len;

    if (b->body.len < 8) {
        mmtls_errf(err, err_cap, "%s: short decryption secrets block at offset %" PRIu64, r->name,
                   boff);
        return MMTLS_E_MALFORMED;
    }
    type = rd32(b->body.p, r->swapped);
    len = rd32(b->body.p + 4, r->swapped);
    if (len > b->body.len - 8) {
        mmtls_errf(err, err_cap,
                   "%s: decryption secrets block at offset %" PRIu64
                   ": length %u exceeds the block",
                   r->name, boff, len);
        return MMTLS_E_MALFORMED;
    }
    if (r->dsb_cb != NULL) {
        r->dsb_cb(r->dsb_ud, type, b->body.p + 8, len);
    }
    /* the block held session secrets: do not leave them in the buffer */
    mmtls_wipe((uint8_t *)b->body.p, b->body.len);
    return 0;
}

static int ng_next(struct mmtls_pcap_reader *r, struct mmtls_io_pkt *pkt, char *err, size_t err_cap)
{
    /* Each iteration consumes one block (at least 12 bytes of input), so the loop ends with
     * the input; it returns at the first packet. */
    for (;;) {
        struct mmtls_pcapng_block b;
        uint64_t boff;
        int rc;

        rc = ng_read_block(r, 0, &b, &boff, err, err_cap);
        if (rc != 0) {
            return rc;
        }
        switch (b.type) {
        case PCAPNG_SHB: rc = ng_shb(r, &b, boff, err, err_cap); break;
        case PCAPNG_IDB: rc = ng_idb(r, &b, boff, err, err_cap); break;
        case PCAPNG_EPB:
        case PCAPNG_PB:
            rc = ng_epb(r, &b, boff, pkt, err, err_cap);
            if (rc == 0) {
                return 0;
            }
            break;
        case PCAPNG_SPB:
            rc = ng_spb(r, &b, boff, pkt, err, err_cap);
            if (rc == 0) {
                return 0;
            }
            break;
        case PCAPNG_DSB: rc = ng_dsb(r, &b, boff, err, err_cap); break;
        default:
            /* Name Resolution, Interface Statistics, custom (0x00000bad / 0x40000bad) and
             * unknown blocks: pcapng §3.1 says skip what you do not understand */
            rc = 0;
            break;
        }
        if (rc != 0) {
            return rc;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */

static void reader_free(struct mmtls_pcap_reader *r)
{
    if (r->map != NULL) {
        munmap(r->map, r->map_len);
    } else {
        free(r->buf);
    }
    free(r);
}

/* Maps a regular file privately (copy-on-write: the DSB wipe writes into the view).  Pipes,
 * standard input and anything mmap refuses are read with stdio instead. */
static void try_map(struct mmtls_pcap_reader *r, FILE *fp)
{
    struct stat st;
    void *m;

    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uint64_t)st.st_size > (uint64_t)SIZE_MAX || ftell(fp) != 0) {
        return;
    }
    m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fileno(fp), 0);
    if (m == MAP_FAILED) {
        return;
    }
    (void)madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
    r->map = m;
    r->map_len = (size_t)st.st_size;
}

static int open_common(struct mmtls_pcap_reader **out, FILE *fp, bool close_fp, const char *name,
                       mmtls_pcap_dsb_cb dsb_cb, void *dsb_ud, char *err, size_t err_cap)
{
    struct mmtls_pcap_reader *r;
    struct mmtls_pcapng_block b;
    uint64_t boff;
    size_t got;
    int rc;

    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        mmtls_errf(err, err_cap, "%s: out of memory", name);
        return MMTLS_E_NOMEM;
    }
    r->fp = fp;
    r->close_fp = close_fp;
    r->name = name;
    try_map(r, fp);
    r->dsb_cb = dsb_cb;
    r->dsb_ud = dsb_ud;

    rc = rd_bytes(r, 0, 4, &got, err, err_cap);
    if (rc != 0) {
        goto out_free;
    }
    if (got < 4) {
        mmtls_errf(err, err_cap, "%s: not a pcap or pcapng file (%s)", name,
                   got == 0 ? "empty" : "too short");
        rc = MMTLS_E_MALFORMED;
        goto out_free;
    }
    if (rd32(r->buf, false) == PCAPNG_SHB) {
        /* pcapng §4.1: a file starts with a Section Header Block; read it now so that a
         * broken header fails at open */
        r->ng = true;
        rc = ng_read_block(r, 4, &b, &boff, err, err_cap);
        if (rc == 0) {
            rc = ng_shb(r, &b, boff, err, err_cap);
        }
    } else {
        rc = pcap_open_hdr(r, err, err_cap);
    }
    if (rc != 0) {
        goto out_free;
    }
    *out = r;
    return 0;

out_free:
    reader_free(r);
    return rc;
}

int mmtls_pcap_open_fp(struct mmtls_pcap_reader **out, FILE *fp, const char *name,
                       mmtls_pcap_dsb_cb dsb_cb, void *dsb_ud, char *err, size_t err_cap)
{
    if (out == NULL || fp == NULL) {
        mmtls_errf(err, err_cap, "invalid argument");
        return MMTLS_E_INVAL;
    }
    *out = NULL;
    return open_common(out, fp, true, name != NULL ? name : "capture", dsb_cb, dsb_ud, err,
                       err_cap);
}

int mmtls_pcap_open(struct mmtls_pcap_reader **out, const char *path, mmtls_pcap_dsb_cb dsb_cb,
                    void *dsb_ud, char *err, size_t err_cap)
{
    FILE *fp;
    int rc;

    if (out == NULL || path == NULL) {
        mmtls_errf(err, err_cap, "invalid argument");
        return MMTLS_E_INVAL;
    }
    *out = NULL;
    if (strcmp(path, "-") == 0) {
        return open_common(out, stdin, false, "stdin", dsb_cb, dsb_ud, err, err_cap);
    }
    fp = fopen(path, "rb");
    if (fp == NULL) {
        mmtls_errf(err, err_cap, "cannot open %s: %s", path, strerror(errno));
        return MMTLS_E_IO;
    }
    rc = open_common(out, fp, true, path, dsb_cb, dsb_ud, err, err_cap);
    if (rc != 0) {
        fclose(fp);
    }
    return rc;
}

int mmtls_pcap_next(struct mmtls_pcap_reader *r, struct mmtls_io_pkt *pkt, char *err,
                    size_t err_cap)
{
    int rc;

    if (r == NULL || pkt == NULL) {
        mmtls_errf(err, err_cap, "invalid argument");
        return MMTLS_E_INVAL;
    }
    if (r->sticky != 0) {
        mmtls_errf(err, err_cap, "%s: reader stopped after an earlier error", r->name);
        return r->sticky;
    }
    rc = r->ng ? ng_next(r, pkt, err, err_cap) : pcap_next_rec(r, pkt, err, err_cap);
    if (rc < 0) {
        r->sticky = rc;
    }
    return rc;
}

void mmtls_pcap_close(struct mmtls_pcap_reader *r)
{
    if (r == NULL) {
        return;
    }
    if (r->close_fp) {
        fclose(r->fp);
    }
    reader_free(r);
}
