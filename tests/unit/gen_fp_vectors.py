#!/usr/bin/env python3
"""Independent JA3 / JA4 reference for tests/unit/test_tls_fp.c.

Reads every `static const uint8_t NAME[] = {...};` array of test_tls_fp.c (whole handshake
messages: 4-byte header, then the ClientHello body), parses each ClientHello with its own small
parser (not the C one), and prints the expected JA3 string, JA3 MD5, JA4 and JA4_r as C
initialisers for the test's vector table.

    python3 tests/unit/gen_fp_vectors.py            # expected values for the C table
    python3 tests/unit/gen_fp_vectors.py --emit     # the synthetic ClientHellos, as C arrays
    python3 tests/unit/gen_fp_vectors.py --tshark   # also compare JA3 with tshark's

JA3: https://github.com/salesforce/ja3 (SSLVersion,Ciphers,Extensions,EllipticCurves,
EllipticCurvePointFormats; decimal, '-' joined, GREASE removed).
JA4: FoxIO "JA4: TLS Client Fingerprinting" (technical_details/JA4.md).

The synthetic ClientHellos rebuild published fingerprints from their published field lists;
main() checks that this script reproduces the published values before printing anything.
"""
import hashlib
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def is_grease(v):
    # RFC 8701: 0x?A?A with both bytes equal.
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


# --------------------------------------------------------------------------------------------
# C arrays

def c_arrays(path):
    text = open(path).read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = {}
    for m in re.finditer(r"^static const uint8_t (ch\w+)\[\]\s*=\s*\{(.*?)\};", text,
                         flags=re.S | re.M):
        out[m.group(1)] = bytes(int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]{2})", m.group(2)))
    return out


# --------------------------------------------------------------------------------------------
# ClientHello (RFC 8446 §4.1.2)

class Reader:
    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, n):
        if self.i + n > len(self.b):
            raise ValueError("truncated")
        v = self.b[self.i:self.i + n]
        self.i += n
        return v

    def u(self, n):
        return int.from_bytes(self.take(n), "big")

    def vec(self, n):
        return Reader(self.take(self.u(n)))

    def left(self):
        return len(self.b) - self.i


def u16s(b):
    return [int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2)]


def parse_client_hello(msg):
    r = Reader(msg)
    if r.u(1) != 1:
        raise ValueError("not a ClientHello")
    r = r.vec(3)
    ch = {"legacy_version": r.u(2), "exts": [], "groups": [], "formats": [], "sigalgs": [],
          "versions": [], "alpn": []}
    r.take(32)
    r.vec(1)
    ch["ciphers"] = u16s(bytes(r.vec(2).b))
    r.vec(1)
    if r.left() == 0:
        return ch
    exts = r.vec(2)
    while exts.left():
        t = exts.u(2)
        body = exts.vec(2)
        ch["exts"].append(t)
        if t == 10:
            ch["groups"] = u16s(bytes(body.vec(2).b))
        elif t == 11:
            ch["formats"] = list(body.vec(1).b)
        elif t == 13:
            ch["sigalgs"] = u16s(bytes(body.vec(2).b))
        elif t == 43:
            ch["versions"] = u16s(bytes(body.vec(1).b))
        elif t == 16:
            names = body.vec(2)
            while names.left():
                ch["alpn"].append(bytes(names.vec(1).b))
    return ch


# --------------------------------------------------------------------------------------------
# Fingerprints

def ja3(ch):
    def dash(vals):
        return "-".join(str(v) for v in vals if not is_grease(v))
    s = ",".join([str(ch["legacy_version"]), dash(ch["ciphers"]), dash(ch["exts"]),
                  dash(ch["groups"]), "-".join(str(v) for v in ch["formats"])])
    return s, hashlib.md5(s.encode()).hexdigest()


JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3",
                0x0002: "s2", 0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}


def alnum(c):
    return 0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A


def ja4_alpn(ch):
    if not ch["alpn"] or len(ch["alpn"][0]) == 0:
        return "00"
    v = ch["alpn"][0]
    if alnum(v[0]) and alnum(v[-1]):
        return chr(v[0]) + chr(v[-1])
    h = v.hex()
    return h[0] + h[-1]


def hash12(s):
    return hashlib.sha256(s.encode()).hexdigest()[:12]


def ja4(ch):
    versions = [v for v in ch["versions"] if not is_grease(v)]
    ver = max(versions) if versions else ch["legacy_version"]
    ciphers = [c for c in ch["ciphers"] if not is_grease(c)]
    exts = [e for e in ch["exts"] if not is_grease(e)]
    sigs = [s for s in ch["sigalgs"] if not is_grease(s)]
    a = "t%s%s%02d%02d%s" % (JA4_VERSIONS.get(ver, "00"), "d" if 0 in exts else "i",
                             min(len(ciphers), 99), min(len(exts), 99), ja4_alpn(ch))
    b_raw = ",".join("%04x" % c for c in sorted(ciphers))
    hashed_exts = sorted(e for e in exts if e not in (0x0000, 0x0010))
    c_raw = ",".join("%04x" % e for e in hashed_exts)
    if sigs:
        c_raw += "_" + ",".join("%04x" % s for s in sigs)
    b = hash12(b_raw) if ciphers else "000000000000"
    c = hash12(c_raw) if hashed_exts else "000000000000"
    return "%s_%s_%s" % (a, b, c), "%s_%s_%s" % (a, b_raw, c_raw)


# --------------------------------------------------------------------------------------------
# Synthetic ClientHellos

def be(v, n):
    return v.to_bytes(n, "big")


def lv(n, b):
    return be(len(b), n) + b


def hexline(b):
    return ", ".join("0x%02x" % x for x in b)


def wrap(text, width):
    out = [""]
    for word in text.replace(",", ", ").split(" "):
        if out[-1] and len(out[-1]) + 1 + len(word) > width:
            out.append("")
        out[-1] += (" " if out[-1] else "") + word
    return [o.replace(", ", ",") for o in out]


class Hello:
    """Builds a ClientHello as annotated C lines."""

    def __init__(self, version=0x0303, ciphers=(), compression=b"\x00"):
        self.version, self.ciphers, self.compression = version, list(ciphers), compression
        self.exts = []  # (type, body, comment)

    def ext(self, t, body, comment):
        self.exts.append((t, body, comment))
        return self

    def lines(self):
        cs = b"".join(be(c, 2) for c in self.ciphers)
        exts = self.exts or []
        ext_block = b"".join(be(t, 2) + lv(2, b) for t, b, _ in exts)
        body_len = 2 + 32 + 1 + 2 + len(cs) + 1 + len(self.compression)
        if self.exts is not None:
            body_len += 2 + len(ext_block)
        out = [(b"\x01" + be(body_len, 3), "handshake ClientHello, length %d" % body_len),
               (be(self.version, 2), "legacy_version 0x%04x" % self.version),
               (bytes(range(32)), "random"),
               (b"\x00", "session_id length 0"),
               (be(len(cs), 2), "cipher_suites length %d: %s" % (
                   len(cs), ",".join("%04x" % c for c in self.ciphers))),
               (cs, None),
               (lv(1, self.compression), "compression_methods")]
        if self.exts is None:
            return out  # RFC 5246 §7.4.1.2: no extensions block at all
        out.append((be(len(ext_block), 2), "extensions length %d" % len(ext_block)))
        for t, b, comment in exts:
            out.append((be(t, 2) + be(len(b), 2), "%s (0x%04x), length %d" % (comment, t, len(b))))
            if b:
                out.append((b, None))
        return out

    def bytes(self):
        return b"".join(b for b, _ in self.lines())

    def c(self, name, title):
        res = ["/* %s */" % title, "/* clang-format off */",
               "static const uint8_t %s[] = {" % name]
        for b, comment in self.lines():
            for i in range(0, len(b), 16):
                line = "    " + hexline(b[i:i + 16]) + ","
                if i == 0 and comment:
                    if len(line) + len(comment) + 7 <= 100:
                        line += " /* %s */" % comment
                    else:
                        res += ["    /* %s */" % c for c in wrap(comment, 88)]
                res.append(line)
        res += ["};", "/* clang-format on */", ""]
        return "\n".join(res)


def sni(host):
    return lv(2, b"\x00" + lv(2, host.encode()))


def alpn(*names):
    return lv(2, b"".join(lv(1, n) for n in names))


def u16_list(n, vals):
    return lv(n, b"".join(be(v, 2) for v in vals))


CHROME_CIPHERS = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
                  0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035]
CHROME_SIGALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]


def chrome_ext(h, t, host, groups=(0x001d, 0x0017, 0x0018), sigalgs=CHROME_SIGALGS):
    """Appends extension t with the body Chrome sends."""
    bodies = {
        0x0000: (sni(host), "server_name \"%s\"" % host),
        0x0005: (b"\x01\x00\x00\x00\x00", "status_request ocsp"),
        0x000a: (u16_list(2, groups), "supported_groups " +
                 ",".join("%04x" % g for g in groups)),
        0x000b: (lv(1, b"\x00"), "ec_point_formats uncompressed"),
        0x000d: (u16_list(2, sigalgs), "signature_algorithms " +
                 ",".join("%04x" % s for s in sigalgs)),
        0x0010: (alpn(b"h2", b"http/1.1"), "alpn h2,http/1.1"),
        0x0012: (b"", "signed_certificate_timestamp"),
        0x0015: (b"\x00" * 8, "padding"),
        0x0017: (b"", "extended_master_secret"),
        0x001b: (lv(1, b"\x00\x02"), "compress_certificate brotli"),
        0x0023: (b"", "session_ticket"),
        0x002b: (u16_list(1, [0x0304, 0x0303]), "supported_versions 1.3,1.2"),
        0x002d: (lv(1, b"\x01"), "psk_key_exchange_modes psk_dhe_ke"),
        0x0033: (lv(2, be(0x001d, 2) + lv(2, bytes(32))), "key_share X25519"),
        0x4469: (alpn(b"h2"), "application_settings (old) h2"),
        0x44cd: (alpn(b"h2"), "application_settings h2"),
        0xca34: (b"\x00", "unassigned 0xca34"),
        0xfe0d: (b"\x00\x00\x01\x00\x01\x01\x00\x00\x00\x00", "encrypted_client_hello outer"),
        0xff01: (b"\x00", "renegotiation_info"),
    }
    body, comment = bodies[t]
    return h.ext(t, body, comment)


def synthetic():
    """(name, title, Hello) for each synthetic ClientHello."""
    out = []

    # browserleaks.com result for Chrome 143 (published ja3_text / ja3_hash / ja4 / ja4_r /
    # ja4_ro): GREASE cipher, extensions, group and version added as Chrome sends them.
    h = Hello(ciphers=[0x0a0a] + CHROME_CIPHERS)
    h.ext(0x1a1a, b"", "GREASE")
    for t in [0x002d, 0x0033, 0x0010, 0xfe0d, 0x0017, 0x44cd, 0x0000, 0x000b, 0x000a, 0x002b,
              0xff01, 0x0023, 0x0012, 0x0005, 0x000d, 0x001b]:
        if t == 0x000a:
            h.ext(t, u16_list(2, [0x3a3a, 0x11ec, 0x001d, 0x0017, 0x0018]),
                  "supported_groups GREASE,11ec,001d,0017,0018")
        elif t == 0x002b:
            h.ext(t, u16_list(1, [0x4a4a, 0x0304, 0x0303]), "supported_versions GREASE,1.3,1.2")
        elif t == 0x0033:
            h.ext(t, lv(2, be(0x3a3a, 2) + lv(2, b"\x00") + be(0x001d, 2) + lv(2, bytes(32))),
                  "key_share GREASE(1),X25519(32)")
        else:
            chrome_ext(h, t, "tls.browserleaks.com")
    h.ext(0x2a2a, b"\x00", "GREASE")
    out.append(("ch_chrome143", "Chrome 143 as published by browserleaks.com (rebuilt)", h))

    # FoxIO ja4 test data sigalg-grease.pcapng (published JA4 / JA4_r / JA4_ro).
    h = Hello(ciphers=[0x5a5a] + CHROME_CIPHERS)
    sig = [0x0904, 0x0905, 0x0906] + CHROME_SIGALGS
    for t in [0xfe0d, 0x0010, 0x0017, 0x0033, 0x44cd, 0xff01, 0x000a, 0x000d, 0x0023, 0x002b,
              0x000b, 0xca34, 0x002d, 0x0000, 0x0005, 0x001b, 0x0012]:
        chrome_ext(h, t, "optimizationguide-pa.googleapis.com", sigalgs=sig)
    out.append(("ch_foxio_sigalg", "FoxIO ja4 test data sigalg-grease.pcapng (rebuilt)", h))

    # The worked example of the JA4 specification (JA4.md "Example", JA4_r and JA4_ro).
    h = Hello(ciphers=CHROME_CIPHERS)
    for t in [0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023,
              0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015]:
        chrome_ext(h, t, "example.com")
    out.append(("ch_foxio_spec", "the worked example of the FoxIO JA4 specification (rebuilt)", h))

    # Edge cases (values from this script only).
    h = Hello(version=0x0301, ciphers=[0x002f, 0x0035, 0x000a])
    h.exts = None
    out.append(("ch_noext", "TLS 1.0 ClientHello without an extensions block", h))

    h = Hello(version=0x0302, ciphers=[0x002f])
    out.append(("ch_empty_exts", "TLS 1.1 ClientHello with an empty extensions block", h))

    h = Hello(ciphers=[0x1a1a, 0xc02f, 0x1301, 0xc02f])
    h.ext(0x0000, sni("a.example"), "server_name \"a.example\"")
    h.ext(0x0010, alpn(b"\xab\xcd", b"h2"), "alpn 0xabcd,h2")
    out.append(("ch_alpn_hex", "duplicate cipher, SNI and ALPN only, non-alphanumeric ALPN", h))

    h = Hello(version=0x0303, ciphers=[0xc02f])
    h.ext(0x0010, alpn(b"0\xab"), "alpn 0x30ab")
    h.ext(0x000d, u16_list(2, [0x0a0a, 0x0403]), "signature_algorithms GREASE,0403")
    h.ext(0x002b, u16_list(1, [0x7f1c, 0x0303]), "supported_versions draft-28,1.2")
    out.append(("ch_alpn_mixed", "ALPN 0x30ab, GREASE signature algorithm, draft version", h))

    h = Hello(version=0x0303, ciphers=[0x2a2a])
    h.ext(0x0010, alpn(b"x"), "alpn \"x\"")
    h.ext(0x0017, b"", "extended_master_secret")
    out.append(("ch_grease_only", "GREASE-only ciphers, one-character ALPN, no sigalgs", h))
    return out


PUBLISHED = {
    "ch_chrome143": {
        "ja3": "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-"
               "53,45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0",
        "ja3_hash": "98487aa16281980e7d1120d399efb6a4",
        "ja4": "t13d1516h2_8daaf6152771_d8a2da3f94cd",
        "ja4_r": "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,"
                 "cca8,cca9_0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,fe0d,"
                 "ff01_0403,0804,0401,0503,0805,0501,0806,0601",
    },
    "ch_foxio_sigalg": {
        "ja4": "t13d1517h2_8daaf6152771_cb7bf5808d99",
        "ja4_r": "t13d1517h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,"
                 "cca8,cca9_0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,ca34,"
                 "fe0d,ff01_0904,0905,0906,0403,0804,0401,0503,0805,0501,0806,0601",
    },
    "ch_foxio_spec": {
        "ja4": "t13d1516h2_8daaf6152771_e5627efa2ab1",
        "ja4_r": "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,"
                 "cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,"
                 "ff01_0403,0804,0401,0503,0805,0501,0806,0601",
    },
}


def fingerprints(msg):
    ch = parse_client_hello(msg)
    s, h = ja3(ch)
    j, r = ja4(ch)
    return {"ja3": s, "ja3_hash": h, "ja4": j, "ja4_r": r}


def check_published():
    for name, _, h in synthetic():
        fp = fingerprints(h.bytes())
        for k, v in PUBLISHED.get(name, {}).items():
            if fp[k] != v:
                sys.exit("%s: %s is %s, published %s" % (name, k, fp[k], v))


def c_str(s, indent):
    # Split long strings into 88-column pieces.
    parts = [s[i:i + 80] for i in range(0, len(s), 80)] or [""]
    return ("\n" + " " * indent).join('"%s"' % p for p in parts)


def tshark_ja3(arrays):
    """JA3 of each array as Wireshark computes it (tls.handshake.ja3_full / ja3): one TCP
    segment to port 443 per ClientHello in a temporary pcap."""
    import struct
    import subprocess
    import tempfile

    def csum(b):
        if len(b) % 2:
            b += b"\0"
        s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        return ~s & 0xFFFF

    pcap = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, msg in enumerate(arrays.values()):
        payload = b"\x16\x03\x01" + len(msg).to_bytes(2, "big") + msg
        tcp = struct.pack("!HHIIBBHHH", 40000 + i, 443, 1, 0, 5 << 4, 0x18, 65535, 0, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), i, 0, 64, 6, 0,
                         bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp + payload
        pcap += struct.pack("<IIII", i, 0, len(frame), len(frame)) + frame
    with tempfile.NamedTemporaryFile(suffix=".pcap") as f:
        f.write(pcap)
        f.flush()
        out = subprocess.run(["tshark", "-r", f.name, "-Y", "tls.handshake.type == 1", "-T",
                              "fields", "-e", "tcp.srcport", "-e", "tls.handshake.ja3_full",
                              "-e", "tls.handshake.ja3"], capture_output=True, text=True,
                             check=True).stdout
    names = list(arrays)
    res = {}
    for line in out.splitlines():
        port, full, h = line.split("\t")
        res[names[int(port) - 40000]] = (full, h)
    return res


def main():
    check_published()
    if "--emit" in sys.argv:
        for name, title, h in synthetic():
            print(h.c(name, title))
        return
    arrays = {**c_arrays(os.path.join(HERE, "tls_captures.h")),
              **c_arrays(os.path.join(HERE, "test_tls_fp.c"))}
    if "--tshark" in sys.argv:
        ts = tshark_ja3(arrays)
        for name, msg in arrays.items():
            fp = fingerprints(msg)
            ok = ts.get(name) == (fp["ja3"], fp["ja3_hash"])
            print("%-16s tshark JA3 %s"
                  % (name, "agrees" if ok else "DIFFERS: %r" % (ts.get(name),)))
        return
    for name, msg in arrays.items():
        fp = fingerprints(msg)
        print("    {\"%s\", %s, sizeof(%s)," % (name, name, name))
        print("     %s," % c_str(fp["ja3"], 5))
        print("     \"%s\"," % fp["ja3_hash"])
        print("     \"%s\"," % fp["ja4"])
        print("     %s}," % c_str(fp["ja4_r"], 5))


if __name__ == "__main__":
    main()
