/* evp_open.c - the raw cost of opening (decrypting and verifying) TLS records with OpenSSL's
 * EVP AEAD interface, the floor under mmtlsd's decryption (bench/cycles, docs/BENCHMARKS.md
 * "Cycles per packet and per byte").
 *
 * usage: evp_open CIPHER RECORD_BYTES COUNT
 *   CIPHER: aes-128-gcm, aes-256-gcm or chacha20-poly1305
 * Seals one record of RECORD_BYTES random bytes (12-byte nonce, 5-byte additional data as in
 * TLS 1.3, RFC 8446 section 5.2), then opens it COUNT times, each time with a fresh nonce set-up
 * (EVP_DecryptInit_ex with the key schedule kept, as a per-session context does), the tag
 * check included. Prints one line: cipher, bytes opened, CPU ns, ns per byte.
 * COUNT = 0 runs the set-up only: under callgrind the difference between two COUNTs gives a
 * repeatable instruction count per byte.
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    const EVP_CIPHER *c;
    EVP_CIPHER_CTX *seal, *open;
    unsigned char key[32], iv[12], aad[5], tag[16];
    unsigned char *pt, *ct, *out;
    size_t len;
    long count, i;
    int n, fin;
    double t0, t1;

    if (argc != 4) {
        fprintf(stderr, "usage: %s aes-128-gcm|aes-256-gcm|chacha20-poly1305 BYTES COUNT\n",
                argv[0]);
        return 2;
    }
    c = EVP_get_cipherbyname(argv[1]);
    len = strtoul(argv[2], NULL, 10);
    count = strtol(argv[3], NULL, 10);
    if (c == NULL || len == 0 || len > (1u << 20) || count < 0) {
        fprintf(stderr, "evp_open: bad arguments\n");
        return 2;
    }
    pt = malloc(len);
    ct = malloc(len);
    out = malloc(len);
    seal = EVP_CIPHER_CTX_new();
    open = EVP_CIPHER_CTX_new();
    if (pt == NULL || ct == NULL || out == NULL || seal == NULL || open == NULL) {
        return 1;
    }
    if (RAND_bytes(key, sizeof(key)) != 1 || RAND_bytes(iv, sizeof(iv)) != 1 ||
        RAND_bytes(pt, (int)len) != 1) {
        return 1;
    }
    aad[0] = 23; /* TLSCiphertext header: application_data, legacy version 0x0303, length */
    aad[1] = 3;
    aad[2] = 3;
    aad[3] = (unsigned char)((len + 16) >> 8);
    aad[4] = (unsigned char)(len + 16);
    if (EVP_EncryptInit_ex(seal, c, NULL, key, iv) != 1 ||
        EVP_EncryptUpdate(seal, NULL, &n, aad, sizeof(aad)) != 1 ||
        EVP_EncryptUpdate(seal, ct, &n, pt, (int)len) != 1 ||
        EVP_EncryptFinal_ex(seal, ct + n, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(seal, EVP_CTRL_AEAD_GET_TAG, 16, tag) != 1) {
        fprintf(stderr, "evp_open: seal failed\n");
        return 1;
    }
    if (EVP_DecryptInit_ex(open, c, NULL, key, NULL) != 1) {
        return 1;
    }
    t0 = cpu_ns();
    for (i = 0; i < count; i++) {
        if (EVP_DecryptInit_ex(open, NULL, NULL, NULL, iv) != 1 ||
            EVP_DecryptUpdate(open, NULL, &n, aad, sizeof(aad)) != 1 ||
            EVP_DecryptUpdate(open, out, &n, ct, (int)len) != 1 ||
            EVP_CIPHER_CTX_ctrl(open, EVP_CTRL_AEAD_SET_TAG, 16, tag) != 1 ||
            EVP_DecryptFinal_ex(open, out + n, &fin) != 1) {
            fprintf(stderr, "evp_open: open failed at record %ld\n", i);
            return 1;
        }
    }
    t1 = cpu_ns();
    if (count > 0 && memcmp(out, pt, len) != 0) {
        fprintf(stderr, "evp_open: plaintext differs\n");
        return 1;
    }
    printf("%s %lu %.0f %.4f\n", argv[1], (unsigned long)len * (unsigned long)count, t1 - t0,
           count > 0 ? (t1 - t0) / ((double)len * (double)count) : 0.0);
    EVP_CIPHER_CTX_free(seal);
    EVP_CIPHER_CTX_free(open);
    free(pt);
    free(ct);
    free(out);
    return 0;
}
