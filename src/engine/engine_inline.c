/* engine_inline — the packet rules of the inline middlebox (DESIGN §3):
 *
 *  1. Frames are forwarded at once, unchanged (MMTLS_PKT_FORWARD), except:
 *  2. a frame that completes a record of a session still waiting for its keys is held: the
 *     engine keeps a copy and releases it, in order, after the keys came and the apps saw the
 *     record — or, when the wait expires, as the missing-keys policy says;
 *  3. so a record's completing frame leaves only after the apps saw the record (records are
 *     processed inside mmtls_engine_packet_inline, before the caller forwards the frame);
 *  4. a blocked session: the completing frame is dropped, both ends get an RST with sequence
 *     numbers they accept, and every later frame of the flow is dropped.
 * Frames that complete nothing (out-of-order segments, a record's first parts) go out at once:
 * the receiver cannot use a record before it is whole.
 */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>

static uint8_t *tcp_header(const struct mmtls_pkt *pkt);

void mmtls_engine_set_tx(struct mmtls_engine *e, const struct mmtls_engine_tx *tx)
{
    e->tx = *tx;
}

void eng_inline_hold_frame(struct mmtls_engine *e, struct eng_session *s)
{
    struct eng_frame *f;
    size_t ml = MMTLS_MIN(e->cur_meta_len, (size_t)MMTLS_ENGINE_META_MAX);

    f = malloc(sizeof(*f) + e->cur_len);
    if (f == NULL) {
        /* Cannot keep it: never forward uninspected data, drop it (TCP retransmits). */
        e->verdict = MMTLS_PKT_DROP;
        e->st.frames_dropped++;
        return;
    }
    f->next = NULL;
    f->port = e->cur_port;
    f->dir = e->cur_ef != NULL ? e->cur_dir : -1;
    f->end_seq = e->cur_end_seq;
    f->seq = e->cur_seq;
    f->need = f->dir >= 0 ? s->held_id[f->dir] : 0;
    f->meta_len = (uint16_t)ml;
    if (ml > 0)
        memcpy(f->meta, e->cur_meta, ml);
    f->len = e->cur_len;
    memcpy(f->data, e->cur_data, e->cur_len);
    if (s->frame_hold_mono_ns == 0)
        s->frame_hold_mono_ns = mmtls_mono_ns();
    if (s->frames_tail != NULL)
        s->frames_tail->next = f;
    else
        s->frames_head = f;
    s->frames_tail = f;
    e->st.frames_held++;
}

void eng_inline_release_frames(struct eng_session *s, bool send)
{
    struct mmtls_engine *e = s->eng;
    struct eng_frame *f = s->frames_head;

    s->frames_head = s->frames_tail = NULL;
    while (f != NULL) {
        struct eng_frame *next = f->next;
        if (send && e->tx.send != NULL) {
            e->tx.send(e->tx.ud, f->port ^ 1, f->data, f->len, f->meta, f->meta_len, false);
            e->st.frames_released++;
            if (f->dir >= 0 && s->flow != NULL && s->flow->ud != NULL)
                eng_inline_sent(s->flow->ud, f->dir, f->end_seq);
        } else {
            e->st.frames_dropped++;
        }
        free(f);
        f = next;
    }
}

/* Writes the IP lengths and checksums of a TCP frame whose payload now has `plen` bytes: the
 * IPv4 header checksum (RFC 791 §3.1), and the TCP checksum over the pseudo-header and the
 * segment (RFC 793 §3.1, RFC 8200 §8.1) — or, for a frame whose checksum is finished on the
 * way out (virtio NEEDS_CSUM), only the pseudo-header sum the sender left there. */
static void split_fix(uint8_t *l3, bool v4, uint8_t *tcp, size_t plen, bool partial)
{
    size_t tcp_len = (size_t)(tcp[12] >> 4) * 4 + plen;
    uint32_t sum;

    if (v4) {
        size_t ihl = (size_t)(l3[0] & 0x0f) * 4;
        mmtls_put_be16(l3 + 2, (uint16_t)(ihl + tcp_len));
        l3[10] = l3[11] = 0;
        mmtls_put_be16(l3 + 10, mmtls_csum_finish(mmtls_csum_add(0, l3, ihl)));
    } else {
        mmtls_put_be16(l3 + 4, (uint16_t)tcp_len);
    }
    tcp[16] = tcp[17] = 0;
    sum = mmtls_csum_add(0, v4 ? l3 + 12 : l3 + 8, v4 ? 8 : 32) + 6 + (uint32_t)tcp_len;
    if (partial) {
        mmtls_put_be16(tcp + 16, mmtls_csum_fold(sum));
        return;
    }
    sum = mmtls_csum_add(sum, tcp, tcp_len);
    mmtls_put_be16(tcp + 16, mmtls_csum_finish(sum));
}

/* A held frame carries inspected records followed by the first record of its direction that
 * still waits (stream offset `at`): its head, up to `at`, is sent now as a frame of its own,
 * and the held frame keeps the rest (sequence number moved on, FIN kept for the tail).  Only
 * IPv4 and IPv6 without extension headers; anything else stays held whole. */
static void split_send(struct eng_session *s, struct eng_frame *f, uint64_t at)
{
    struct mmtls_engine *e = s->eng;
    struct eng_flow *ef = s->flow != NULL ? s->flow->ud : NULL;
    struct mmtls_pkt pkt;
    uint8_t *tcp, *head;
    size_t hdr, k, rest, tcp_off;
    uint64_t poff;
    bool partial;

    memset(&pkt, 0, sizeof(pkt));
    if (ef == NULL || f->dir < 0 || !ef->r[f->dir].started || e->tx.send == NULL ||
        mmtls_decode_frame(MMTLS_LINK_ETHERNET, f->data, f->len, &e->o.decode, &pkt) !=
            MMTLS_DEC_OK ||
        pkt.payload_len == 0 || (pkt.tcp_flags & (MMTLS_TCP_SYN | MMTLS_TCP_RST)) != 0)
        return;
    tcp = tcp_header(&pkt);
    if (tcp == NULL)
        return;
    poff = mmtls_reasm_seq_to_off(&ef->r[f->dir], pkt.seq);
    if (at <= poff || at - poff >= pkt.payload_len)
        return;
    k = (size_t)(at - poff);
    hdr = (size_t)(pkt.payload - f->data);
    tcp_off = (size_t)(tcp - f->data);
    rest = pkt.payload_len - k;
    partial = e->tx.meta_vnet && mmtls_decode_vnet_csum(f->meta, f->meta_len) == MMTLS_CSUM_PARTIAL;
    head = malloc(hdr + k);
    if (head == NULL)
        return; /* stays held whole */
    memcpy(head, f->data, hdr + k);
    head[tcp_off + 13] &= (uint8_t)~MMTLS_TCP_FIN; /* the FIN comes after the tail's bytes */
    split_fix(head + (pkt.l3 - f->data), pkt.ip_version == 4, head + tcp_off, k, partial);
    /* The tail: the same headers, the payload from `at`, the next sequence number. */
    memmove(f->data + hdr, f->data + hdr + k, rest);
    f->len = hdr + rest;
    f->seq = pkt.seq + (uint32_t)k;
    tcp[4] = (uint8_t)(f->seq >> 24), tcp[5] = (uint8_t)(f->seq >> 16);
    tcp[6] = (uint8_t)(f->seq >> 8), tcp[7] = (uint8_t)f->seq;
    split_fix((uint8_t *)(uintptr_t)pkt.l3, pkt.ip_version == 4, tcp, rest, partial);
    e->tx.send(e->tx.ud, f->port ^ 1, head, hdr + k, f->meta, f->meta_len, false);
    free(head);
    e->st.frames_split++;
    eng_inline_sent(ef, f->dir, f->seq);
}

void eng_inline_release_ready(struct eng_session *s)
{
    struct mmtls_engine *e = s->eng;
    struct eng_frame *f = s->frames_head, *prev = NULL;
    uint64_t first[2] = {UINT64_MAX, UINT64_MAX}; /* first record still held, by direction */
    bool stop[2] = {false, false};

    for (const struct eng_held *h = s->held_head; h != NULL; h = h->next) {
        if (first[h->dir] == UINT64_MAX)
            first[h->dir] = h->off;
    }
    while (f != NULL) {
        struct eng_frame *next = f->next;
        bool ready =
            f->dir >= 0 ? !stop[f->dir] && f->need <= s->done_id[f->dir] : s->held_head == NULL;
        if (!ready) {
            /* The first frame of its direction still waiting may carry inspected records
             * before the held one: the server's TLS 1.3 flight (hold mode), where the client
             * needs them (ServerHello, Finished) to derive the secrets that release the rest. */
            if (f->dir == 1 && !stop[1] && s->tls13 && !e->o.server_flight_pass &&
                first[1] != UINT64_MAX)
                split_send(s, f, first[1]);
            if (f->dir >= 0)
                stop[f->dir] = true;
            prev = f;
            f = next;
            continue;
        }
        if (prev != NULL)
            prev->next = next;
        else
            s->frames_head = next;
        if (s->frames_tail == f)
            s->frames_tail = prev;
        if (e->tx.send != NULL) {
            e->tx.send(e->tx.ud, f->port ^ 1, f->data, f->len, f->meta, f->meta_len, false);
            e->st.frames_released++;
            if (f->dir >= 0 && s->flow != NULL && s->flow->ud != NULL)
                eng_inline_sent(s->flow->ud, f->dir, f->end_seq);
        } else {
            e->st.frames_dropped++;
        }
        free(f);
        f = next;
    }
}

void eng_inline_sent(struct eng_flow *ef, int dir, uint32_t end_seq)
{
    if (!ef->have_snd[dir] || MMTLS_SEQ_GT(end_seq, ef->snd_nxt[dir])) {
        ef->snd_nxt[dir] = end_seq;
        ef->have_snd[dir] = true;
    }
}

static void clear_urgent(struct mmtls_engine *e, const struct mmtls_pkt *pkt);

void eng_inline_note(struct mmtls_engine *e, struct eng_flow *ef, int dir,
                     const struct mmtls_pkt *pkt)
{
    size_t l2 = (size_t)(pkt->l3 - e->cur_data);

    /* SYN and FIN take a sequence number each (RFC 793 §3.3). */
    e->cur_ef = ef;
    e->cur_dir = dir;
    e->cur_seq = pkt->seq;
    e->cur_end_seq = pkt->seq + (uint32_t)pkt->payload_len +
                     ((pkt->tcp_flags & MMTLS_TCP_SYN) ? 1u : 0u) +
                     ((pkt->tcp_flags & MMTLS_TCP_FIN) ? 1u : 0u);
    if (ef->port_in[dir] < 0)
        ef->port_in[dir] = e->cur_port; /* the first packet's port: a later one cannot move it */
    if (pkt->tcp_flags & MMTLS_TCP_ACK) {
        ef->last_ack[dir] = pkt->ack;
        ef->have_ack[dir] = true;
    }
    if (pkt->l3 >= e->cur_data && l2 <= sizeof(ef->l2[dir])) {
        memcpy(ef->l2[dir], e->cur_data, l2);
        ef->l2_len[dir] = (uint16_t)l2;
    }
    ef->meta_len[dir] = (uint16_t)MMTLS_MIN(e->cur_meta_len, (size_t)MMTLS_ENGINE_META_MAX);
    if (ef->meta_len[dir] > 0)
        memcpy(ef->meta[dir], e->cur_meta, ef->meta_len[dir]);
    if (pkt->tcp_flags & MMTLS_TCP_URG)
        clear_urgent(e, pkt);
}

/* The TCP header of a decoded frame (pkt->l4) for the callers that rewrite the segment and fix
 * the IP header up: IPv4 with options, IPv6 without extension headers only; else NULL. */
static uint8_t *tcp_header(const struct mmtls_pkt *pkt)
{
    if (pkt->ip_version == 6 && pkt->l3[6] != 6)
        return NULL;
    return (uint8_t *)(uintptr_t)pkt->l4;
}

/* Urgent data (Ptacek & Newsham §5.4, RFC 6093): with the BSD semantics every stack uses, the
 * receiver takes the byte before the urgent pointer out of the stream (unless SO_OOBINLINE),
 * so the application reads other bytes than the stream the middlebox inspects.  RFC 6093 §6
 * says new applications should not use it; as firewalls do ("clear urgent"), the URG flag and
 * the pointer are cleared in the forwarded frame: the byte stays in band, where it was
 * inspected.  The checksum is updated (RFC 1624 eqn. 3) unless the frame's checksum is still
 * to be computed on the way out (it then covers the new header). */
static void clear_urgent(struct mmtls_engine *e, const struct mmtls_pkt *pkt)
{
    /* The TCP header wherever it is (after IPv6 extension headers too).  A segment rebuilt
     * from fragments never gets here (its header left with the first fragment: engine.c). */
    uint8_t *tcp = (uint8_t *)(uintptr_t)pkt->l4;
    uint16_t old_w6, old_w9, hc;
    uint32_t sum;

    if (tcp == NULL || tcp < e->cur_data || tcp + 20 > e->cur_data + e->cur_len)
        return;
    old_w6 = mmtls_be16(tcp + 12);
    old_w9 = mmtls_be16(tcp + 18);
    /* The frame is the caller's receive buffer: the inline mode forwards it modified. */
    tcp[13] &= (uint8_t)~MMTLS_TCP_URG;
    tcp[18] = tcp[19] = 0;
    e->st.urg_cleared++;
    if (e->tx.meta_vnet &&
        mmtls_decode_vnet_csum(e->cur_meta, e->cur_meta_len) == MMTLS_CSUM_PARTIAL)
        return;
    hc = mmtls_be16(tcp + 16);
    sum = (uint16_t)~hc;
    sum += (uint16_t)~old_w6 + (uint32_t)mmtls_be16(tcp + 12);
    sum += (uint16_t)~old_w9 + 0u;
    mmtls_put_be16(tcp + 16, mmtls_csum_finish(sum));
}

/* Builds and sends an RST from endpoint `from_dir`'s side to the other end: the frame looks as
 * if sent by the sender of direction from_dir (its link header, addresses and ports), with the
 * sequence number the receiver expects next (RFC 793 §3.4; RFC 5961 §3.2: an RST is accepted
 * only when its sequence number is exactly the next expected).  That is the end of what was
 * forwarded in this direction — the RST leaves after it on the same path — or, before anything
 * was forwarded, the receiver's own last ACK. */
static void send_rst(struct mmtls_engine *e, struct eng_flow *ef, int from_dir)
{
    struct mmtls_flow *fl = ef->flow;
    int to = !from_dir;
    int sender = from_dir == 0 ? fl->client : !fl->client; /* endpoint index of the sender */
    uint8_t fr[22 + 40 + 20];
    size_t l2 = ef->l2_len[from_dir], off, ipl;
    uint8_t *ip, *tcp;
    uint32_t seq = ef->have_snd[from_dir] ? ef->snd_nxt[from_dir]
                   : ef->have_ack[to]     ? ef->last_ack[to]
                                          : 0;
    uint32_t ack = ef->have_ack[from_dir] ? ef->last_ack[from_dir] : 0;
    uint32_t sum;
    bool v4 = fl->key.ip_version == 4;

    int out_port = ef->port_in[from_dir] ^ 1;
    const uint8_t *meta = ef->meta[from_dir];
    size_t meta_len = ef->meta_len[from_dir];

    if (e->tx.send == NULL)
        return;
    if (ef->port_in[from_dir] >= 0 && l2 >= 14) {
        memcpy(fr, ef->l2[from_dir], l2);
    } else if (ef->port_in[to] >= 0 && ef->l2_len[to] >= 14) {
        /* Nothing seen from this side yet (e.g. a flow picked up midstream): the other
         * side's link header with the Ethernet addresses swapped. */
        l2 = ef->l2_len[to];
        memcpy(fr, ef->l2[to], l2);
        memcpy(fr, ef->l2[to] + 6, 6);
        memcpy(fr + 6, ef->l2[to], 6);
        out_port = ef->port_in[to];
        meta = ef->meta[to];
        meta_len = ef->meta_len[to];
    } else {
        return;
    }
    off = l2;
    ip = fr + off;
    ipl = v4 ? 20 : 40;
    tcp = ip + ipl;
    memset(ip, 0, ipl + 20);
    if (v4) {
        ip[0] = 0x45;
        mmtls_put_be16(ip + 2, (uint16_t)(ipl + 20));
        ip[8] = 64;
        ip[9] = 6;
        memcpy(ip + 12, fl->key.addr[sender], 4);
        memcpy(ip + 16, fl->key.addr[!sender], 4);
        mmtls_put_be16(ip + 10, mmtls_csum_finish(mmtls_csum_add(0, ip, 20)));
    } else {
        ip[0] = 0x60;
        mmtls_put_be16(ip + 4, 20);
        ip[6] = 6;
        ip[7] = 64;
        memcpy(ip + 8, fl->key.addr[sender], 16);
        memcpy(ip + 24, fl->key.addr[!sender], 16);
    }
    mmtls_put_be16(tcp, fl->key.port[sender]);
    mmtls_put_be16(tcp + 2, fl->key.port[!sender]);
    tcp[4] = (uint8_t)(seq >> 24), tcp[5] = (uint8_t)(seq >> 16);
    tcp[6] = (uint8_t)(seq >> 8), tcp[7] = (uint8_t)seq;
    tcp[8] = (uint8_t)(ack >> 24), tcp[9] = (uint8_t)(ack >> 16);
    tcp[10] = (uint8_t)(ack >> 8), tcp[11] = (uint8_t)ack;
    tcp[12] = 5 << 4;
    tcp[13] = MMTLS_TCP_RST | (ef->have_ack[from_dir] ? MMTLS_TCP_ACK : 0);
    /* pseudo-header (RFC 793 §3.1, RFC 8200 §8.1) */
    sum = mmtls_csum_add(0, v4 ? ip + 12 : ip + 8, v4 ? 8 : 32);
    sum += 6 + 20;
    sum = mmtls_csum_add(sum, tcp, 20);
    mmtls_put_be16(tcp + 16, mmtls_csum_finish(sum));
    /* It leaves by the port the direction's frames leave by. */
    e->tx.send(e->tx.ud, out_port, fr, off + ipl + 20, meta, meta_len, true);
    e->st.rst_sent++;
}

/* Writes the re-sealed fragment `c` (clen bytes, stream offset coff) into a frame whose TCP
 * payload (decoded in pkt) starts at stream offset poff, and recomputes the TCP checksum over
 * the pseudo-header and the whole segment (RFC 793 §3.1, RFC 8200 §8.1).  false when the
 * fragment is not wholly in this frame. */
static bool tamper_write(const struct mmtls_pkt *pkt, uint64_t poff, uint64_t coff,
                         const uint8_t *c, size_t clen)
{
    bool v4 = pkt->ip_version == 4;
    uint8_t *tcp;
    size_t seg_len;
    uint32_t sum;

    if (poff == UINT64_MAX || coff < poff || coff + clen > poff + pkt->payload_len)
        return false;
    tcp = tcp_header(pkt);
    if (tcp == NULL)
        return false;
    /* The frame is the caller's receive buffer or a held copy: this test mode writes into it. */
    memcpy((uint8_t *)(uintptr_t)pkt->payload + (coff - poff), c, clen);
    seg_len = (size_t)(pkt->payload + pkt->payload_len - tcp);
    tcp[16] = tcp[17] = 0;
    sum = mmtls_csum_add(0, v4 ? pkt->l3 + 12 : pkt->l3 + 8, v4 ? 8 : 32);
    sum += 6 + (uint32_t)seg_len;
    sum = mmtls_csum_add(sum, tcp, seg_len);
    mmtls_put_be16(tcp + 16, mmtls_csum_finish(sum));
    return true;
}

void eng_inline_tamper(struct eng_session *s, int dir, struct mmtls_rprot *rp, uint64_t seq,
                       const uint8_t *rec, uint64_t off, size_t frag_len, const uint8_t *plain,
                       size_t n, uint8_t type)
{
    struct mmtls_engine *e = s->eng;
    struct eng_flow *ef = s->flow != NULL ? s->flow->ud : NULL;
    size_t tag = s->suite != NULL ? s->suite->tag_len : 16, sealed, inner_len;
    uint64_t coff = off + MMTLS_TLS_HDR_LEN;
    const uint8_t *hit;
    uint8_t *inner;
    bool done = false;

    if (!e->inline_mode || ef == NULL || n < e->o.tamper_len)
        return;
    hit = memmem(plain, n, e->o.tamper_from, e->o.tamper_len);
    if (hit == NULL)
        return;
    sealed = frag_len - (s->info.private_tag ? MMTLS_PRIVATE_TAG_LEN : 0); /* ciphertext + tag1 */
    if (sealed < tag + n + 1)
        return;
    inner_len = sealed - tag; /* content, type, padding: the same length as before */
    inner = malloc(sealed);
    if (inner == NULL)
        return;
    memcpy(inner, plain, n);
    memcpy(inner + (hit - plain), e->o.tamper_to, e->o.tamper_len);
    inner[n] = type;
    memset(inner + n + 1, 0, inner_len - n - 1);
    if (mmtls_rprot_seal_tls13_hdr(rp, seq, rec, inner, inner_len, inner) != 0) {
        free(inner);
        return;
    }
    /* The frame being processed, or (records replayed after their keys came) a held copy.  The
     * fragment must lie wholly in one frame: earlier parts of a record have left already. */
    if (e->cur_pkt != NULL && e->cur_dir == dir)
        done = tamper_write(e->cur_pkt, e->cur_payload_off, coff, inner, sealed);
    for (struct eng_frame *f = s->frames_head; f != NULL && !done; f = f->next) {
        struct mmtls_pkt pkt;
        memset(&pkt, 0, sizeof(pkt));
        if (f->dir != dir ||
            mmtls_decode_frame(MMTLS_LINK_ETHERNET, f->data, f->len, &e->o.decode, &pkt) !=
                MMTLS_DEC_OK ||
            !ef->r[dir].started)
            continue;
        done =
            tamper_write(&pkt, mmtls_reasm_seq_to_off(&ef->r[dir], pkt.seq), coff, inner, sealed);
    }
    free(inner);
    if (!done)
        return;
    e->st.test_tampered++;
    mmtls_log(MMTLS_LOG_WARN, "TEST TAMPER: rewrote a record of flow %llu (direction %d)",
              (unsigned long long)s->info.flow_id, dir);
}

/* Does the current frame carry bytes of a frame held for its session (a TCP retransmission of
 * it)?  Then it must not overtake the held copy: the receiver would get a record the apps have
 * not seen (issue 7: held packets released before inspection).  The held copy leaves once
 * inspected; the sender's next retransmission, or the held copy, delivers the bytes. */
static bool retransmits_held(const struct mmtls_engine *e)
{
    const struct eng_flow *ef = e->cur_ef;

    if (ef == NULL || ef->s == NULL || !MMTLS_SEQ_LT(e->cur_seq, e->cur_end_seq))
        return false;
    for (const struct eng_frame *f = ef->s->frames_head; f != NULL; f = f->next) {
        if (f->dir == e->cur_dir && MMTLS_SEQ_LT(e->cur_seq, f->end_seq) &&
            MMTLS_SEQ_LT(f->seq, e->cur_end_seq))
            return true;
    }
    return false;
}

void eng_inline_reset(struct mmtls_engine *e, struct eng_flow *ef)
{
    if (!e->inline_mode || ef == NULL)
        return;
    send_rst(e, ef, 0); /* to the server, as the client */
    send_rst(e, ef, 1); /* to the client, as the server */
}

int mmtls_engine_packet_inline(struct mmtls_engine *e, int port, const uint8_t *data, size_t len,
                               uint64_t ts_us, const uint8_t *meta, size_t meta_len)
{
    int v;

    if (!e->inline_mode) {
        mmtls_defrag_set_fail_open(e->defrag, e->o.exc_policy[MMTLS_EXC_DEFRAG] == MMTLS_EXC_OPEN);
        /* Fail closed: a delivered byte stays kept until the receiver acknowledges it, so
         * every retransmission the receiver could still take is compared (a segment that
         * would need more is dropped: KEEP_FULL).  Not on the kernel fast path, which
         * forwards copies before the engine sees them (docs/HARDENING.md).  The flows'
         * reassemblers borrow e->o.reasm; there are none before the first inline frame. */
        e->o.reasm.keep_until_acked =
            e->o.exc_policy[MMTLS_EXC_REASM] != MMTLS_EXC_OPEN && e->o.on_flow_state == NULL;
    }
    e->inline_mode = true;
    e->cur_port = port;
    e->cur_data = data;
    e->cur_len = len;
    e->cur_meta = meta;
    e->cur_meta_len = meta_len;
    e->cur_hold = NULL;
    e->cur_ef = NULL;
    /* Checksums are verified only where they are complete (PACKET_VNET_HDR tells); offloaded
     * ones are finished on the way out and cannot be. */
    e->cur_csum_verify =
        e->tx.meta_vnet && mmtls_decode_vnet_csum(meta, meta_len) == MMTLS_CSUM_COMPLETE;
    if (!e->cur_csum_verify)
        e->st.csum_unverified++;
    v = mmtls_engine_packet(e, MMTLS_LINK_ETHERNET, data, len, ts_us);
    e->cur_csum_verify = false;
    if (v == MMTLS_PKT_HOLD && e->cur_hold != NULL) {
        eng_inline_hold_frame(e, e->cur_hold);
        /* Hold mode, TLS 1.3 server flight: the inspected records before the first held one
         * (the ServerHello) go on now. */
        if (e->cur_hold->tls13 && !e->o.server_flight_pass && e->cur_dir == 1)
            eng_inline_release_ready(e->cur_hold);
    }
    v = e->verdict;
    if (v == MMTLS_PKT_FORWARD && retransmits_held(e)) {
        e->st.frames_dropped++;
        v = e->verdict = MMTLS_PKT_DROP;
    }
    /* The caller forwards it now: its end is what the receiver will expect next. */
    if (v == MMTLS_PKT_FORWARD && e->cur_ef != NULL) /* flows are freed only between calls */
        eng_inline_sent(e->cur_ef, e->cur_dir, e->cur_end_seq);
    if (e->cur_ef != NULL && e->o.on_flow_state != NULL)
        eng_fast_publish(e, e->cur_ef); /* kernel fast path (engine_fast.c) */
    e->fast_resume.on = false;
    e->fast_inorder = false;
    e->cur_data = NULL;
    e->cur_hold = NULL;
    e->cur_ef = NULL;
    return v;
}
