/* engine_keys — keys from key channels on the worker side.
 *
 * Hand-off.  The key server thread turns each accepted KEYS/BYPASS message into an
 * mmtls_engine_keymsg and pushes the pointer into the worker's SPSC ring (util: mmtls_ring);
 * the worker pops them before each packet.  Neither side takes a lock, and the packet path
 * never touches the shared key store for these keys: everything after the pop is worker-local.
 *
 * Matching.  Sessions are mapped by client random when their ClientHello is parsed.  A key
 * message for a mapped session is applied at once; otherwise it waits in a bounded table
 * (key_pending_max entries, key_pending_ms of engine time) for its ClientHello.  Applying checks
 * ownership — the channel's peer address must be the session's client address unless the peer
 * was allowed to speak for others (owner_any) — and "first wins": the first accepted keys are
 * kept, an identical later message is a duplicate, a different one is rejected and logged.
 *
 * Holding.  While a session has no keys and key_wait_ms > 0, its protected records (and every
 * later record of the same direction, to keep order) are copied and held, bounded by
 * key_hold_max per session and key_hold_total per worker.  Keys arriving replay them in order
 * through the normal record path; when the wait expires or a cap is hit they are replayed
 * without keys (counted undecrypted), and inline their frames go as the policy says: a wait
 * that expired by --on-missing-keys, a cap that was hit by the hold exception policy.
 */
#include "engine/engine_int.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>

struct eng_pend {
    struct eng_pend *hnext, *hprev; /* bucket list, in arrival order */
    struct eng_pend *older, *newer; /* arrival order, for expiry */
    uint64_t t_us;                  /* engine clock at arrival */
    struct mmtls_engine_keymsg *m;  /* owned */
};

static uint32_t cr_bucket(const struct mmtls_engine *e, const uint8_t cr[32])
{
    /* Keyed hash: key channel peers are authenticated, but one could still choose randoms that
     * collide; with a per-engine random seed they cannot aim at a bucket. */
    return (uint32_t)(mmtls_hash64(cr, 32, e->cr_seed) % ENG_CRMAP_BUCKETS);
}

int eng_keys_init(struct mmtls_engine *e)
{
    if (getrandom(&e->cr_seed, sizeof(e->cr_seed), 0) != (ssize_t)sizeof(e->cr_seed))
        e->cr_seed = (uint64_t)(uintptr_t)e ^ 0x6b657973ull;
    return mmtls_ring_init(&e->key_ring, 4096);
}

static void pend_unlink(struct mmtls_engine *e, struct eng_pend *p)
{
    uint32_t b = cr_bucket(e, p->m->client_random);

    if (p->hprev != NULL)
        p->hprev->hnext = p->hnext;
    else
        e->pend[b] = p->hnext;
    if (p->hnext != NULL)
        p->hnext->hprev = p->hprev;
    else
        e->pend_tail[b] = p->hprev;
    if (p->older != NULL)
        p->older->newer = p->newer;
    else
        e->pend_old = p->newer;
    if (p->newer != NULL)
        p->newer->older = p->older;
    else
        e->pend_new = p->older;
    e->npend--;
}

static void pend_free(struct mmtls_engine *e, struct eng_pend *p)
{
    pend_unlink(e, p);
    mmtls_engine_keymsg_free(p->m);
    free(p);
}

void eng_keys_fini(struct mmtls_engine *e)
{
    void *m;

    while ((m = mmtls_ring_pop(&e->key_ring)) != NULL)
        mmtls_engine_keymsg_free(m);
    while (e->pend_old != NULL)
        pend_free(e, e->pend_old);
    mmtls_ring_fini(&e->key_ring);
}

struct mmtls_ring *mmtls_engine_key_ring(struct mmtls_engine *e)
{
    return &e->key_ring;
}

struct mmtls_engine_keymsg *mmtls_engine_keymsg_new(const struct mmtls_key_delivery *d)
{
    /* keys in flight: secret memory (out of core dumps, wiped when freed) */
    struct mmtls_engine_keymsg *m = mmtls_secmem_calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    m->type = d->type;
    memcpy(m->client_random, d->client_random, 32);
    if (d->ks != NULL)
        m->ks = *d->ks;
    if (d->sni != NULL)
        snprintf(m->sni, sizeof(m->sni), "%s", d->sni);
    m->recv_ns = d->recv_ns;
    return m;
}

void mmtls_engine_keymsg_free(struct mmtls_engine_keymsg *m)
{
    if (m == NULL)
        return;
    mmtls_secmem_free(m); /* wipes */
}

/* SHA-256 over the secret material of a keyset, for "first wins" comparisons. */
static void keys_digest(const struct mmtls_keyset *ks, uint8_t out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n = 32;

    memset(out, 0, 32);
    if (c == NULL)
        return;
    if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(c, &ks->have, sizeof(ks->have)) == 1 &&
        EVP_DigestUpdate(c, &ks->master, sizeof(ks->master)) == 1 &&
        EVP_DigestUpdate(c, &ks->early, sizeof(ks->early)) == 1 &&
        EVP_DigestUpdate(c, &ks->chs, sizeof(ks->chs)) == 1 &&
        EVP_DigestUpdate(c, &ks->shs, sizeof(ks->shs)) == 1 &&
        EVP_DigestUpdate(c, &ks->cts[0], sizeof(ks->cts[0])) == 1 &&
        EVP_DigestUpdate(c, &ks->sts[0], sizeof(ks->sts[0])) == 1 &&
        EVP_DigestUpdate(c, &ks->kb, sizeof(ks->kb)) == 1)
        (void)EVP_DigestFinal_ex(c, out, &n);
    EVP_MD_CTX_free(c);
}

/* A later message from the same owner may add TLS 1.3 secrets the first lacked (a key log
 * follower sends what it has after a timeout); any secret present in both must be equal.
 * Returns 1 when something was added, 0 when nothing new, -1 on a conflict. */
static int merge_one(struct mmtls_keyset *have, uint32_t *hbits, uint32_t bit,
                     struct mmtls_secret *hs, const struct mmtls_secret *ns, uint32_t nbits)
{
    (void)have;
    if (!(nbits & bit))
        return 0;
    if (*hbits & bit)
        return hs->len == ns->len && mmtls_ct_eq(hs->b, ns->b, ns->len) ? 0 : -1;
    *hs = *ns;
    *hbits |= bit;
    return 1;
}

static int merge(struct eng_session *s, const struct mmtls_keyset *n)
{
    struct mmtls_keyset *h = &s->ks;
    int r[5], added = 0;

    if ((n->have & (MMTLS_KS_KEY_BLOCK | MMTLS_KS_MASTER)) ||
        (h->have & (MMTLS_KS_KEY_BLOCK | MMTLS_KS_MASTER)))
        return -1; /* TLS <= 1.2 keys come whole: a second, different message conflicts */
    r[0] = merge_one(h, &h->have, MMTLS_KS_EARLY, &h->early, &n->early, n->have);
    r[1] = merge_one(h, &h->have, MMTLS_KS_CHS, &h->chs, &n->chs, n->have);
    r[2] = merge_one(h, &h->have, MMTLS_KS_SHS, &h->shs, &n->shs, n->have);
    r[3] = merge_one(h, &h->cts_have, 1u, &h->cts[0], &n->cts[0], n->cts_have);
    r[4] = merge_one(h, &h->sts_have, 1u, &h->sts[0], &n->sts[0], n->sts_have);
    for (int i = 0; i < 5; i++) {
        if (r[i] < 0)
            return -1;
        added |= r[i];
    }
    return added;
}

static bool bypass_allowed(const struct mmtls_engine *e, const char *sni)
{
    /* Offline (no data plane to protect) every bypass is recorded as asked. */
    if (!e->inline_mode)
        return true;
    for (const char *const *p = e->o.bypass_allow; p != NULL && *p != NULL; p++) {
        if (sni[0] != '\0' && fnmatch(*p, sni, FNM_CASEFOLD) == 0)
            return true;
    }
    return false;
}

static bool owner_ok(const struct eng_session *s, const struct mmtls_keyset *ks)
{
    size_t alen = s->info.ip_version == 4 ? 4 : 16;

    if (ks->owner_any)
        return true;
    return ks->owner_ip_version == s->info.ip_version &&
           memcmp(ks->owner_ip, s->info.client_ip, alen) == 0;
}

static void wait_unlink(struct mmtls_engine *e, struct eng_session *s)
{
    if (!s->in_waitlist)
        return;
    if (s->wprev != NULL)
        s->wprev->wnext = s->wnext;
    else
        e->wait_head = s->wnext;
    if (s->wnext != NULL)
        s->wnext->wprev = s->wprev;
    else
        e->wait_tail = s->wprev;
    s->wnext = s->wprev = NULL;
    s->in_waitlist = false;
}

/* Inline: after the held records were replayed, their frames go on — unless the session was
 * blocked, or its keys never came and the policy says block (DESIGN §3 rule 2).  Records that
 * still wait for secrets keep their frames (and the frames after them) held. */
static void release_frames_policy(struct eng_session *s)
{
    struct mmtls_engine *e = s->eng;

    if (s->held_head != NULL && !s->info.blocked) {
        eng_inline_release_ready(s);
        return;
    }
    if (!s->info.blocked && s->wait_expired && !s->keys_found && s->hold_over_cap) {
        /* The hold caps were hit (resource exhaustion): the hold exception policy. */
        if (e->o.exc_policy[MMTLS_EXC_HOLD] != MMTLS_EXC_OPEN) {
            e->st.blocked_missing_keys++;
            mmtls_session_block((struct mmtls_session *)s, "hold caps reached before the keys");
            return;
        }
    } else if (!s->info.blocked && s->wait_expired && !s->keys_found) {
        if (e->o.on_missing_keys == MMTLS_MISSING_BLOCK) {
            e->st.blocked_missing_keys++;
            mmtls_session_block((struct mmtls_session *)s, "keys did not arrive in time");
            return; /* block dropped the frames and reset both ends */
        }
        if (e->o.on_missing_keys == MMTLS_MISSING_ALERT)
            eng_error(s, MMTLS_TLSERR_NO_KEYS, 0, 0,
                      "keys did not arrive in time: released uninspected (policy alert)");
    }
    eng_inline_release_frames(s, !s->info.blocked);
}

static void wait_append(struct mmtls_engine *e, struct eng_session *s)
{
    s->wait_start_us = e->now_us;
    s->wprev = e->wait_tail;
    s->wnext = NULL;
    if (e->wait_tail != NULL)
        e->wait_tail->wnext = s;
    else
        e->wait_head = s;
    e->wait_tail = s;
    s->in_waitlist = true;
}

/* Replays the held records in arrival order (with keys now, or without after the wait).  A TLS
 * 1.3 record whose secrets are still missing (handshake secrets came, the application secrets
 * not yet: 0.5-RTT data after the server Finished) stays held with everything after it in its
 * direction, and waits again (a new --key-wait: keys made progress). */
void eng_keys_release(struct eng_session *s)
{
    struct mmtls_engine *e = s->eng;
    struct eng_held *h = s->held_head, *kept = NULL, *kept_tail = NULL;
    bool stuck[2] = {false, false};

    if (h != NULL && !s->wait_expired && s->frame_hold_mono_ns == 0) {
        e->st.key_waits_undelayed++; /* records waited, but no frame: nothing was delayed */
    } else if (h != NULL && !s->wait_expired) {
        /* Keys came: how long did the session's first held frame wait for them?  (Records
         * may have been held longer, e.g. the TLS 1.3 server flight before the client's keys
         * exist, but their frames went on: only held frames delay the endpoints.) */
        uint64_t us = (mmtls_mono_ns() - s->frame_hold_mono_ns) / 1000;
        unsigned b = 0;
        while (b < 31 && (1ull << b) <= us)
            b++;
        e->st.key_stall_hist[b]++;
        if (us > e->st.key_stall_max_us)
            e->st.key_stall_max_us = us;
    }
    s->frame_hold_mono_ns = 0;
    wait_unlink(e, s);
    s->held_head = s->held_tail = NULL;
    s->holding[0] = s->holding[1] = false;
    s->replaying = true;
    while (h != NULL) {
        struct eng_held *next = h->next;
        int dir = h->dir;
        if (!s->info.blocked && !s->wait_expired &&
            (stuck[dir] ||
             (eng_tls_rec_protected(s, dir, h->data) && eng_tls_keys_missing(s, dir)))) {
            stuck[dir] = true;
            h->next = NULL;
            if (kept_tail != NULL)
                kept_tail->next = h;
            else
                kept = h;
            kept_tail = h;
            h = next;
            continue;
        }
        e->st.records_released++;
        if (!s->info.blocked)
            eng_tls_replay(s, dir, h->data, h->len, h->off);
        s->done_id[dir] = h->id;
        e->held_total -= h->len;
        s->held_bytes -= h->len;
        mmtls_wipe(h->data, h->len);
        free(h);
        h = next;
    }
    s->replaying = false;
    if (kept != NULL && s->info.blocked) {
        /* Blocked during the replay: nothing more to inspect. */
        for (h = kept; h != NULL; h = kept) {
            kept = h->next;
            e->held_total -= h->len;
            s->held_bytes -= h->len;
            mmtls_wipe(h->data, h->len);
            free(h);
        }
        kept_tail = NULL;
    }
    if (kept != NULL) {
        /* Still waiting: records that came during the replay are not possible (the worker is
         * single-threaded), so the kept ones are the whole queue. */
        s->held_head = kept;
        s->held_tail = kept_tail;
        s->holding[0] = stuck[0];
        s->holding[1] = stuck[1];
        wait_append(e, s);
        e->st.key_waits_partial++;
    }
    if (e->inline_mode)
        release_frames_policy(s);
    if (s->held_head != NULL && s->frames_head != NULL)
        s->frame_hold_mono_ns = mmtls_mono_ns(); /* the next stall is measured from here */
}

void eng_keys_drop_held(struct eng_session *s)
{
    struct eng_held *h = s->held_head;

    eng_inline_release_frames(s, false);
    wait_unlink(s->eng, s);
    while (h != NULL) {
        struct eng_held *next = h->next;
        s->eng->held_total -= h->len;
        free(h);
        h = next;
    }
    s->held_head = s->held_tail = NULL;
    s->held_bytes = 0;
}

/* Applies one key message to a session.  Returns true if the message was used or rejected for
 * good, false if it does not belong to this session (owner mismatch: it may belong to a
 * session with the same random seen elsewhere). */
static void apply(struct eng_session *s, struct mmtls_engine_keymsg *m)
{
    struct mmtls_engine *e = s->eng;
    uint8_t dg[32];

    if (s->frame_hold_mono_ns != 0 && m->recv_ns != 0 && mmtls_log_get_level() >= MMTLS_LOG_DEBUG) {
        /* Where a stall goes: before the key server had the keys, or between it and here. */
        uint64_t now = mmtls_mono_ns();
        mmtls_log(MMTLS_LOG_DEBUG,
                  "flow %llu: keys read by the key server %lld us after the first held frame, "
                  "applied %llu us later",
                  (unsigned long long)s->info.flow_id,
                  (long long)((int64_t)(m->recv_ns - s->frame_hold_mono_ns) / 1000),
                  (unsigned long long)((now - m->recv_ns) / 1000));
    }
    if (!owner_ok(s, &m->ks)) {
        e->st.keys_rejected_owner++;
        eng_error(s, MMTLS_TLSERR_KEY_REJECTED, 0, 0,
                  "keys from a key channel whose peer is not this session's client");
        return;
    }
    if (m->type == MMTLS_KP_BYPASS) {
        e->st.bypass_received++;
        if (!bypass_allowed(e, s->info.sni)) {
            /* Not a name the operator lets clients bypass: as if no keys came. */
            e->st.bypass_refused++;
            eng_error(s, MMTLS_TLSERR_KEY_REJECTED, 0, 0,
                      "bypass requested for a server name not on the bypass allowlist");
            return;
        }
        s->ks.have |= MMTLS_KS_BYPASS;
        s->keys_found = true;
        eng_keys_release(s);
        return;
    }
    keys_digest(&m->ks, dg);
    if (s->from_channel) {
        int r = memcmp(dg, s->keys_digest, 32) == 0 ? 0 : merge(s, &m->ks);
        if (r == 0) {
            e->st.keys_duplicate++;
        } else if (r < 0) {
            e->st.keys_conflict++;
            eng_error(s, MMTLS_TLSERR_KEY_REJECTED, 0, 0,
                      "conflicting keys for a session that has keys already (first wins)");
        } else {
            e->st.keys_matched++; /* secrets the first message lacked (a key log follower) */
            keys_digest(&s->ks, s->keys_digest);
            eng_tls_keys_arrived(s);
            eng_keys_release(s);
        }
        return;
    }
    if (s->keys_found && (s->ks.have != 0 || s->sh_seen)) {
        /* Keys from a key log were there first: they win the same way. */
        e->st.keys_duplicate++;
        return;
    }
    e->st.keys_matched++;
    s->from_channel = true;
    memcpy(s->keys_digest, dg, 32);
    mmtls_keyset_wipe(&s->ks);
    s->ks = m->ks;
    s->keys_found = true;
    s->info.private_tag = m->ks.tag2;
    eng_tls_keys_arrived(s);
    eng_keys_release(s);
}

void eng_keys_session_add(struct eng_session *s)
{
    struct mmtls_engine *e = s->eng;
    uint32_t b = cr_bucket(e, s->info.client_random);
    struct eng_pend *p, *next;

    if (s->in_crmap)
        return;
    s->crnext = e->crmap[b];
    e->crmap[b] = s;
    s->in_crmap = true;
    for (p = e->pend[b]; p != NULL; p = next) {
        next = p->hnext;
        if (memcmp(p->m->client_random, s->info.client_random, 32) != 0)
            continue;
        apply(s, p->m);
        pend_free(e, p);
    }
}

static void crmap_unlink(struct eng_session *s)
{
    struct eng_session **pp;

    if (!s->in_crmap)
        return;
    pp = &s->eng->crmap[cr_bucket(s->eng, s->info.client_random)];
    while (*pp != NULL && *pp != s)
        pp = &(*pp)->crnext;
    if (*pp == s)
        *pp = s->crnext;
    s->in_crmap = false;
}

void eng_keys_session_del(struct eng_session *s)
{
    eng_keys_drop_held(s);
    crmap_unlink(s);
}

/* A renegotiation (RFC 5746) is a new handshake with its own client random and master secret:
 * the session is re-mapped under the new random (the map is keyed by info.client_random, which
 * must not change under it) and waits for the new keys as a first handshake does — "first wins"
 * applies per handshake, the previous handshake's keys are no longer the session's. */
void eng_keys_session_renego(struct eng_session *s, const uint8_t cr[32])
{
    bool mapped = s->in_crmap;

    crmap_unlink(s);
    memcpy(s->info.client_random, cr, 32);
    /* A bypass (the client asked not to be inspected) covers the whole connection. */
    if (!(s->ks.have & MMTLS_KS_BYPASS)) {
        s->from_channel = false;
        s->keys_found = false;
        memset(s->keys_digest, 0, sizeof(s->keys_digest));
        mmtls_keyset_wipe(&s->ks);
    }
    /* Keys already waiting for the new random are applied now (kept until its ServerHello). */
    if (mapped)
        eng_keys_session_add(s);
}

static void pend_add(struct mmtls_engine *e, struct mmtls_engine_keymsg *m)
{
    struct eng_pend *p;
    uint32_t b = cr_bucket(e, m->client_random);

    if (e->npend >= e->o.key_pending_max && e->pend_old != NULL) {
        /* Full (keys for sessions this worker never saw: a flood, or broadcast keys of
         * another worker's sessions): the oldest waiting key goes.  A session whose keys
         * were dropped goes by the missing-keys policy. */
        e->st.keys_pending_dropped++;
        eng_exception(e, MMTLS_EXC_KEYS, eng_exc_act(e, MMTLS_EXC_KEYS));
        pend_free(e, e->pend_old);
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        e->st.keys_pending_dropped++;
        mmtls_engine_keymsg_free(m);
        return;
    }
    p->m = m;
    p->t_us = e->now_us;
    /* Append: a session applies its waiting keys in arrival order (first wins). */
    p->hprev = e->pend_tail[b];
    if (e->pend_tail[b] != NULL)
        e->pend_tail[b]->hnext = p;
    else
        e->pend[b] = p;
    e->pend_tail[b] = p;
    p->older = e->pend_new;
    if (e->pend_new != NULL)
        e->pend_new->newer = p;
    else
        e->pend_old = p;
    e->pend_new = p;
    e->npend++;
    if (e->npend > e->st.keys_pending_peak)
        e->st.keys_pending_peak = e->npend;
}

void mmtls_engine_poll_keys(struct mmtls_engine *e)
{
    struct mmtls_engine_keymsg *m;
    int budget = 4096; /* bounded work per call; the rest waits for the next packet */

    while (budget-- > 0 && (m = mmtls_ring_pop(&e->key_ring)) != NULL) {
        struct eng_session *s;
        e->st.keys_received++;
        for (s = e->crmap[cr_bucket(e, m->client_random)]; s != NULL; s = s->crnext) {
            if (memcmp(s->info.client_random, m->client_random, 32) == 0)
                break;
        }
        if (s != NULL) {
            apply(s, m);
            mmtls_engine_keymsg_free(m);
        } else {
            pend_add(e, m);
        }
    }
}

bool eng_keys_hold(struct eng_session *s, int dir, const uint8_t *rec, size_t len, uint64_t off,
                   bool protected_rec)
{
    struct mmtls_engine *e = s->eng;
    struct eng_held *h;

    if (s->replaying || e->o.key_wait_ms == 0 || s->wait_expired)
        return false;
    if (!s->holding[dir]) {
        if (!protected_rec || !eng_tls_keys_missing(s, dir))
            return false;
        s->holding[dir] = true;
        if (!s->in_waitlist)
            wait_append(e, s);
    }
    if (s->held_bytes + len > e->o.key_hold_max ||
        (e->o.key_hold_total != 0 && e->held_total + len > e->o.key_hold_total)) {
        /* Over the session's or the worker's cap: stop waiting; what was held is handled as
         * without keys, inline by the hold exception policy (fail closed: blocked). */
        e->st.holds_over_cap++;
        eng_exception(e, MMTLS_EXC_HOLD, eng_exc_act(e, MMTLS_EXC_HOLD));
        s->wait_expired = true;
        s->hold_over_cap = true;
        eng_keys_release(s);
        return false;
    }
    h = malloc(sizeof(*h) + len);
    if (h == NULL) {
        s->wait_expired = true;
        eng_keys_release(s);
        return false;
    }
    if (dir == 0 && protected_rec)
        s->c2s_protected = true;
    /* The current frame completes a held record: it is held with it (DESIGN §3 rule 3).  With
     * --server-flight pass, the server's TLS 1.3 flight (its records before the client's first
     * protected record) is the exception: its records wait here, its frames go on.  With hold
     * (the default) they wait too: the client derives its handshake secrets from the
     * ServerHello (forwarded: a frame is split before the first held record) and shares them;
     * the flight is released up to its Finished, 0.5-RTT data after it waits for the
     * application secrets (RFC 8446 §2; eng_keys_release, eng_inline_release_ready). */
    if (e->inline_mode && e->cur_data != NULL &&
        !(e->o.server_flight_pass && s->tls13 && dir == 1 && !s->c2s_protected)) {
        e->cur_hold = s;
        if (e->verdict != MMTLS_PKT_DROP)
            e->verdict = MMTLS_PKT_HOLD;
    }
    h->next = NULL;
    h->dir = dir;
    h->id = ++s->held_id[dir];
    h->off = off;
    h->len = len;
    memcpy(h->data, rec, len);
    if (s->held_tail != NULL)
        s->held_tail->next = h;
    else
        s->held_head = h;
    s->held_tail = h;
    s->held_bytes += len;
    e->held_total += len;
    if (e->held_total > e->st.held_peak)
        e->st.held_peak = e->held_total;
    e->st.records_held++;
    return true;
}

void eng_keys_tick(struct mmtls_engine *e)
{
    uint64_t wait_us = (uint64_t)e->o.key_wait_ms * 1000;
    uint64_t pend_us = (uint64_t)e->o.key_pending_ms * 1000;

    while (e->pend_old != NULL && e->pend_old->t_us + pend_us <= e->now_us) {
        e->st.keys_pending_expired++;
        pend_free(e, e->pend_old);
    }
    while (e->wait_head != NULL && e->wait_head->wait_start_us + wait_us <= e->now_us) {
        struct eng_session *s = e->wait_head;
        e->st.holds_expired++;
        s->wait_expired = true;
        eng_keys_release(s);
    }
}
