/* mmtls_fast_abi — what the kernel fast path (bpf/mmtls_fast.bpf.c) and user space
 * (src/io/io_fast.c) share: map layouts, modes and the VLAN marks on diverted frames
 * (docs/FASTPATH.md).  Included by the BPF program and by io_fast.c; plain C, fixed sizes. */
#ifndef MMTLS_FAST_ABI_H
#define MMTLS_FAST_ABI_H

/* The flow key, as the engine's flow table keys flows (src/flow/flow.c): endpoint 0 is the
 * smaller (address, port) pair, addresses compared as bytes (IPv4 in the first 4 bytes, the
 * rest zero), then ports in host order.  A frame's "side" is the endpoint index of its sender. */
struct mmtls_fast_key {
    unsigned char addr[2][16];
    unsigned short port[2]; /* host byte order */
    unsigned char ip_version;
    unsigned char pad[3];
};

/* What the kernel does with a side's frames (written by user space in the ctl map). */
enum {
    MMTLS_FAST_INSPECT = 0, /* forward + copy, divert frames that complete a record */
    MMTLS_FAST_DIVERT = 1,  /* every frame to user space only */
    MMTLS_FAST_SKIP = 2,    /* past the inspection depth: forward, no copy, keep framing */
    MMTLS_FAST_BYPASS = 3,  /* forward, no copy (copies of SYN/FIN/RST only) */
    MMTLS_FAST_BLOCK = 4,   /* drop */
};

struct mmtls_fast_ctl {
    unsigned char mode[2]; /* by side */
    unsigned char pad[2];
    unsigned int gen[2]; /* bumped by user space at each SKIP request */
    /* Re-arming a side whose framing the kernel lost (reordering): user space had every byte
     * up to rearm_end and the next record header starts at rearm_hdr.  The kernel adopts it
     * once (rearm_gen, 0: none) if nothing it saw of the side ends beyond rearm_end. */
    unsigned int rearm_gen[2], rearm_end[2], rearm_hdr[2];
    /* In INSPECT: from the first frame after a new generation, the kernel counts the bytes of
     * the application-data records whose headers it reads (5 + length); once they reach
     * budget, it skips by itself from the first frame that starts after the record that
     * reached it, as if user space had asked for SKIP under that generation (0: no count). */
    unsigned int budget[2];
};

/* The kernel's view of one side's TCP stream (its record framing), kernel-written. */
struct mmtls_fast_side {
    unsigned int pos;     /* sequence number after the last in-order byte seen */
    unsigned int rec_end; /* where the next record header starts */
    unsigned int acted_gen;
    unsigned int nskip;        /* records skipped since the skip started */
    unsigned int resume_seq;   /* the last resume: where framing restarts ... */
    unsigned int resume_nskip; /* ... and how many records were skipped before it */
    unsigned int ver;          /* bumped at every commit (optimistic concurrency) */
    unsigned int fwd_end;      /* end of what the kernel forwarded (valid: fwd_valid) */
    unsigned long long hacc;   /* the bytes of a record header split across frames ... */
    unsigned char nhb;         /* ... and how many there are */
    unsigned char valid;       /* a SYN was seen: pos / rec_end are known */
    unsigned char lost;        /* framing lost (reordering, not TLS): divert everything */
    unsigned char skipping;    /* in a skip */
    unsigned char resume_lost;
    unsigned char fwd_valid;
    unsigned char hi_valid;
    unsigned char pad;
    unsigned int hi;         /* end of the furthest frame of the side seen (valid: hi_valid) */
    unsigned int rearm_seen; /* the last rearm_gen adopted */
    unsigned long long skipped_bytes, copied_bytes;
    /* The wire budget (ctl.budget): counted since generation barm_gen (bon: counting), bleft
     * left; kpend: spent, the kernel skips from the first frame starting at or after kfrom (the
     * end of the record that spent it); kself: the skip in progress is the kernel's own. */
    unsigned int barm_gen, bleft, kfrom;
    unsigned char bvalid, bon, kpend, kself;
};

struct mmtls_fast_state {
    struct bpf_spin_lock lock;
    unsigned int pad;
    struct mmtls_fast_side side[2];
};

struct mmtls_fast_cfg {
    unsigned int ifindex[2]; /* the bridged ports */
    unsigned int divert_ifindex;
    unsigned int pad;
};

/* Diverted frames reach user space with a VLAN tag (802.1Q, hardware-accelerated on the divert
 * interface) whose VID says what they are and which port they came in by.  User space sends
 * frames straight out of the ports (AF_PACKET, by interface index). */
#define MMTLS_FAST_VID_BASE 0xf00
#define MMTLS_FAST_VID(kind, port) (MMTLS_FAST_VID_BASE | ((kind) << 1) | (port))
enum {
    MMTLS_FAST_K_COPY = 1,           /* forwarded already: inspect only */
    MMTLS_FAST_K_DIVERT = 2,         /* only user space has it: verdict applies */
    MMTLS_FAST_K_RESUME = 3,         /* divert; a skip ended: state.side[].resume_* tell where */
    MMTLS_FAST_K_RESUME_LOST = 4,    /* divert; a skip ended without framing (gap) */
    MMTLS_FAST_K_DIVERT_INORDER = 5, /* divert; the kernel saw it start where its side's
                                      * previous bytes ended (so did copies: a hole before it
                                      * in user space means a copy was lost) */
};

/* Counters (per-CPU array, summed by user space). */
enum {
    MMTLS_FAST_C_FWD = 0,    /* frames forwarded in the kernel, not copied */
    MMTLS_FAST_C_FWD_BYTES,  /* ... their bytes */
    MMTLS_FAST_C_COPY,       /* frames forwarded and copied */
    MMTLS_FAST_C_COPY_BYTES, /* ... their bytes */
    MMTLS_FAST_C_DIVERT,     /* frames diverted */
    MMTLS_FAST_C_DIVERT_BYTES,
    MMTLS_FAST_C_DROP, /* frames of blocked flows dropped */
    MMTLS_FAST_C_RESUME,
    MMTLS_FAST_C_LOST,  /* sides whose framing was lost */
    MMTLS_FAST_C_OTHER, /* not TCP: forwarded */
    MMTLS_FAST_C_RACE,  /* concurrent updates of one side: diverted */
    MMTLS_FAST_C_REARM, /* lost sides re-armed from user space */
    MMTLS_FAST_C_KSKIP, /* skips the kernel started itself (wire budget spent) */
    MMTLS_FAST_C_N
};

#define MMTLS_FAST_MAX_FLOWS 65536
#define MMTLS_FAST_MAX_HDRS 48 /* record headers walked per frame; more: framing lost */
#define MMTLS_FAST_MAX_REC (16384 + 2048)

#endif
