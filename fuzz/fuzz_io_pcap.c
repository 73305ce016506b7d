/* Fuzz target for the whole offline reader (classic pcap and pcapng, Suricata's
 * fuzz_decodepcapfile idea): the input is a capture file, read through fmemopen.  Every packet
 * handed out is touched end to end so that ASan sees any overread; Decryption Secrets Blocks go
 * to a callback that reads them too. */
#include <stdio.h>

#include "io/io.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

static void on_dsb(void *ud, uint32_t type, const uint8_t *p, size_t len)
{
    uint8_t x = (uint8_t)type;

    (void)ud;
    for (size_t i = 0; i < len; i++) {
        x ^= p[i];
    }
    sink = x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mmtls_pcap_reader *r;
    struct mmtls_io_pkt pkt;
    char err[256];
    FILE *fp;
    int rc;

    if (size == 0) {
        return 0;
    }
    fp = fmemopen((void *)data, size, "rb");
    if (fp == NULL) {
        return 0;
    }
    if (mmtls_pcap_open_fp(&r, fp, "fuzz", on_dsb, NULL, err, sizeof(err)) != 0) {
        CHECK(err[0] != '\0');
        fclose(fp);
        return 0;
    }
    /* each packet consumes at least 12 bytes of input */
    while ((rc = mmtls_pcap_next(r, &pkt, err, sizeof(err))) == 0) {
        uint8_t x = 0;

        CHECK(pkt.caplen <= pkt.origlen && pkt.caplen <= MMTLS_PCAP_MAX_SNAPLEN);
        for (uint32_t i = 0; i < pkt.caplen; i++) {
            x ^= pkt.data[i];
        }
        sink = x;
    }
    CHECK(rc == MMTLS_DECLINED || (rc < 0 && err[0] != '\0'));
    mmtls_pcap_close(r);
    return 0;
}
