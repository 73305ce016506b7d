/* Fuzz target: the record reader of the private tag endpoint (lib/keyshare/endpoint.c).
 *
 * Input byte 0: bits 0-1 pick the suite (0x1301..0x1303), bit 7 the mode.
 *   raw (bit 7 clear): the rest goes to the reader's socket as is (framing, header limits,
 *     authentication failures);
 *   scripted (bit 7 set): the rest is a list of operations of a raw client endpoint, so that
 *     the reader sees authentic records with any content:
 *       0 T L <L bytes>   one record of inner content type T
 *       1 R               mmtls_ep_key_update (R & 1: update_requested)
 *       2 L <L bytes>     mmtls_ep_write
 *       3 L <L bytes>     L bytes straight to the socket
 * Then the client's write side is closed, the server reads to the end, and the client reads
 * what the server sent back (KeyUpdate answers, alerts).
 *
 * Built by the fuzz build (MMTLS_FUZZ adds lib/keyshare) against mmtls_keyshare.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mmtls/endpoint.h>

#include "keyshare_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fz_k2(void *arg, uint8_t dir, uint32_t gen, uint8_t *out, size_t len)
{
    (void)arg;
    for (size_t i = 0; i < len; i++) {
        out[i] = (uint8_t)(dir + 7 * gen + 3 * i);
    }
    return 0;
}

static int fz_ep(struct mmtls_ep **ep, int fd, bool server, uint16_t suite)
{
    struct mmtls_ep_raw r;
    uint8_t hl = suite == 0x1302 ? 48 : 32;

    memset(&r, 0, sizeof(r));
    r.fd = fd;
    r.is_server = server;
    r.suite = suite;
    r.k2 = fz_k2;
    r.cts0.len = r.sts0.len = hl;
    for (uint8_t i = 0; i < hl; i++) {
        r.cts0.b[i] = (uint8_t)(0x10 + i);
        r.sts0.b[i] = (uint8_t)(0xa0 + i);
    }
    return mmtls_ep_new_raw(ep, &r);
}

static void fz_script(struct mmtls_ep *c, int fd, const uint8_t *p, size_t n)
{
    size_t off = 0;

    for (int ops = 0; ops < 64 && off < n; ops++) {
        uint8_t op = p[off++] & 3;
        size_t len;
        int rc;

        if (op == 1) {
            if (off >= n) {
                return;
            }
            rc = mmtls_ep_key_update(c, (p[off++] & 1) != 0);
        } else {
            uint8_t type = 0;

            if (op == 0) {
                if (off >= n) {
                    return;
                }
                type = p[off++];
            }
            if (off >= n) {
                return;
            }
            len = p[off++];
            len = MMTLS_MIN(len, n - off);
            if (op == 0) {
                rc = mmtls_ep_raw_send(c, type, p + off, len);
            } else if (op == 2) {
                rc = len > 0 ? mmtls_ep_write(c, p + off, len) : 0;
                rc = rc > 0 ? 0 : rc;
            } else {
                rc = send(fd, p + off, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
            }
            off += len;
        }
        if (rc != 0) {
            return;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint16_t suites[4] = {0x1301, 0x1302, 0x1303, 0x1301};
    struct mmtls_ep *c = NULL, *s = NULL;
    uint8_t buf[1024];
    uint16_t suite;
    int fd[2];

    if (size < 1 || size > 16384) {
        return 0;
    }
    suite = suites[data[0] & 3];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fd) != 0) {
        return 0;
    }
    /* non-blocking: nothing in here may wait for a peer that never reads */
    (void)fcntl(fd[0], F_SETFL, O_NONBLOCK);
    (void)fcntl(fd[1], F_SETFL, O_NONBLOCK);
    if (fz_ep(&c, fd[0], false, suite) != 0 || fz_ep(&s, fd[1], true, suite) != 0) {
        goto out;
    }
    if ((data[0] & 0x80) != 0) {
        fz_script(c, fd[0], data + 1, size - 1);
    } else if (size > 1) {
        (void)!send(fd[0], data + 1, size - 1, MSG_NOSIGNAL);
    }
    shutdown(fd[0], SHUT_WR);
    for (int i = 0; i < 4096; i++) {
        if (mmtls_ep_read(s, buf, (size_t)1 + (i * 37) % sizeof(buf)) <= 0) {
            break;
        }
    }
    (void)mmtls_ep_write(s, "x", 1);
    for (int i = 0; i < 4096; i++) {
        if (mmtls_ep_read(c, buf, sizeof(buf)) <= 0) {
            break;
        }
    }
out:
    mmtls_ep_free(c);
    mmtls_ep_free(s);
    close(fd[0]);
    close(fd[1]);
    return 0;
}
