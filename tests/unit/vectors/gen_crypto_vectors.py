#!/usr/bin/env python3
"""Independent expected values for tests/unit/test_crypto.c.

Everything here is computed with Python's standard library (hmac, hashlib) and the
`cryptography` package (AES-GCM/CCM, ChaCha20-Poly1305, AES-CBC), not with mmtls or OpenSSL's
TLS code paths, so the C tests cross-check mmtls against a second implementation.  Run it
and redirect the output into tests/unit/vectors/crypto_vectors.h (the output is deterministic: every key, IV
and "random" value is fixed below).
"""
import hashlib
import hmac

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

try:  # cryptography >= 43 keeps 3DES under "decrepit"
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover
    TripleDES = algorithms.TripleDES


def p_hash(name, secret, seed, n):
    # RFC 5246 §5: P_hash(secret, seed) = HMAC(secret, A(1) + seed) + HMAC(secret, A(2) + seed) ...
    out, a = b"", seed
    while len(out) < n:
        a = hmac.new(secret, a, name).digest()
        out += hmac.new(secret, a + seed, name).digest()
    return out[:n]


def prf10(secret, label, seed, n):
    # RFC 2246 §5: S1 = first half, S2 = second half (sharing the middle byte if odd)
    half = (len(secret) + 1) // 2
    s1, s2 = secret[:half], secret[len(secret) - half:]
    a = p_hash("md5", s1, label + seed, n)
    b = p_hash("sha1", s2, label + seed, n)
    return bytes(x ^ y for x, y in zip(a, b))


def prf12(name, secret, label, seed, n):
    return p_hash(name, secret, label + seed, n)


def hkdf_expand_label(name, secret, label, ctx, n):
    # RFC 8446 §7.1 with RFC 5869 HKDF-Expand
    full = b"tls13 " + label
    info = n.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(ctx)]) + ctx
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(secret, t + info + bytes([i]), name).digest()
        out += t
        i += 1
    return out[:n]


def c_hex(name, b, comment=None):
    lines = []
    if comment:
        lines.append("/* %s */" % comment)
    lines.append('static const char %s[] =' % name)
    h = b.hex()
    for i in range(0, len(h), 64):
        lines.append('    "%s"' % h[i:i + 64])
    if not h:
        lines.append('    ""')
    lines[-1] += ";"
    return "\n".join(lines)


def xor_nonce(iv, seq):
    s = seq.to_bytes(12, "big")
    return bytes(a ^ b for a, b in zip(iv, s))


def aad12(seq, typ, ver, n):
    return seq.to_bytes(8, "big") + bytes([typ]) + ver.to_bytes(2, "big") + n.to_bytes(2, "big")


def hdr(typ, ver, n):
    return bytes([typ]) + ver.to_bytes(2, "big") + n.to_bytes(2, "big")


def cbc_enc(key, iv, data):
    alg = TripleDES(key) if len(key) == 24 else algorithms.AES(key)
    e = Cipher(alg, modes.CBC(iv)).encryptor()
    return e.update(data) + e.finalize()


def tls_pad(n, bs):
    # least padding: padding_length byte plus pad bytes, all equal to the pad length
    p = (bs - (n + 1) % bs) % bs
    return bytes([p]) * (p + 1)


out = []
# ---- PRFs ------------------------------------------------------------------------------
secret = bytes.fromhex("9bbe436ba940f017b17652849a71db35")
seed = bytes.fromhex("a0ba9f936cda311827a6f796ffd5198c")
out.append(c_hex("prf12_sha256_out", prf12("sha256", secret, b"test label", seed, 100),
                 "P_SHA256(9bbe..db35, \"test label\" || a0ba..198c), 100 bytes"))
secret384 = bytes.fromhex("b80b733d6ceefcdc71566ea48e5567df")
seed384 = bytes.fromhex("cd665cf6a8447dd6ff8b27555edb7465")
out.append(c_hex("prf12_sha384_out", prf12("sha384", secret384, b"test label", seed384, 148),
                 "P_SHA384(b80b..67df, \"test label\" || cd66..7465), 148 bytes"))
secret10 = bytes(range(1, 49))  # 48-byte "master secret" 01..30
seed10a, seed10b = bytes(range(0x40, 0x60)), bytes(range(0x80, 0xa0))
out.append(c_hex("prf10_out", prf10(secret10, b"key expansion", seed10a + seed10b, 104),
                 "TLS 1.0 PRF(01..30, \"key expansion\", 40..5f || 80..9f), 104 bytes"))
# odd-length secret: S1 and S2 share the middle byte (RFC 2246 §5)
secret10o = bytes(range(1, 8))
out.append(c_hex("prf10_odd_out", prf10(secret10o, b"label", seed10a, 40),
                 "TLS 1.0 PRF(01..07, \"label\", 40..5f), 40 bytes"))

# key block for TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256 (0xC02F) and TLS 1.0 AES128-SHA (0x002F)
master = bytes(range(0xa0, 0xd0))  # 48 bytes a0..cf
crand, srand = bytes(range(0x00, 0x20)), bytes(range(0x20, 0x40))
out.append(c_hex("kb_c02f", prf12("sha256", master, b"key expansion", srand + crand, 40),
                 "0xC02F key block: 2*16 key + 2*4 salt"))
out.append(c_hex("kb_002f_v10", prf10(master, b"key expansion", srand + crand, 104),
                 "0x002F TLS 1.0 key block: 2*20 mac + 2*16 key + 2*16 iv"))
out.append(c_hex("kb_c028", prf12("sha384", master, b"key expansion", srand + crand, 160),
                 "0xC028 TLS 1.2 key block: 2*48 mac + 2*32 key"))

# ---- TLS 1.3 records -------------------------------------------------------------------
plain = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
ts384 = bytes(range(0x10, 0x40))  # 48-byte traffic secret
k = hkdf_expand_label("sha384", ts384, b"key", b"", 32)
iv = hkdf_expand_label("sha384", ts384, b"iv", b"", 12)
inner = plain + b"\x17" + b"\x00" * 3
seq = 3
h = hdr(0x17, 0x0303, len(inner) + 16)
rec = h + AESGCM(k).encrypt(xor_nonce(iv, seq), inner, h)
out.append(c_hex("tls13_1302_rec", rec, "TLS 1.3 0x1302, secret 10..3f, seq 3, type 0x17, 3 pad"))

ts256 = bytes(range(0x50, 0x70))
k = hkdf_expand_label("sha256", ts256, b"key", b"", 32)
iv = hkdf_expand_label("sha256", ts256, b"iv", b"", 12)
inner = plain + b"\x16"
seq = 0x0102030405060708
h = hdr(0x17, 0x0303, len(inner) + 16)
rec = h + ChaCha20Poly1305(k).encrypt(xor_nonce(iv, seq), inner, h)
out.append(c_hex("tls13_1303_rec", rec, "TLS 1.3 0x1303, secret 50..6f, seq 0x0102030405060708, type 0x16"))

k = hkdf_expand_label("sha256", ts256, b"key", b"", 16)
iv = hkdf_expand_label("sha256", ts256, b"iv", b"", 12)
inner = plain + b"\x17"
seq = 1
h = hdr(0x17, 0x0303, len(inner) + 8)
rec = h + AESCCM(k, tag_length=8).encrypt(xor_nonce(iv, seq), inner, h)
out.append(c_hex("tls13_1305_rec", rec, "TLS 1.3 0x1305 (CCM-8), secret 50..6f, seq 1, type 0x17"))

# RFC 8446 §7.2 key update: next = HKDF-Expand-Label(cur, "traffic upd", "", Hash.length)
out.append(c_hex("tls13_upd_256", hkdf_expand_label("sha256", ts256, b"traffic upd", b"", 32),
                 "\"traffic upd\" from secret 50..6f (SHA-256)"))
out.append(c_hex("tls13_upd_384", hkdf_expand_label("sha384", ts384, b"traffic upd", b"", 48),
                 "\"traffic upd\" from secret 10..3f (SHA-384)"))

# ---- TLS 1.2 AEAD ----------------------------------------------------------------------
key16 = bytes(range(0x60, 0x70))
key32 = bytes(range(0x60, 0x80))
salt = bytes.fromhex("a1a2a3a4")
iv12 = bytes.fromhex("b0b1b2b3b4b5b6b7b8b9babb")
seq = 5
explicit = bytes.fromhex("0011223344556677")  # any value: the receiver takes it from the record
ct = AESGCM(key16).encrypt(salt + explicit, plain, aad12(seq, 0x17, 0x0303, len(plain)))
rec = hdr(0x17, 0x0303, 8 + len(ct)) + explicit + ct
out.append(c_hex("tls12_gcm_rec", rec, "TLS 1.2 0xC02F, key 60..6f, salt a1a2a3a4, seq 5"))

seq = 7
ct = ChaCha20Poly1305(key32).encrypt(xor_nonce(iv12, seq), plain, aad12(seq, 0x17, 0x0303, len(plain)))
rec = hdr(0x17, 0x0303, len(ct)) + ct
out.append(c_hex("tls12_chacha_rec", rec, "TLS 1.2 0xCCA8, key 60..7f, iv b0..bb, seq 7"))

seq = 3
ct = AESCCM(key32, tag_length=8).encrypt(salt + explicit, plain, aad12(seq, 0x17, 0x0303, len(plain)))
rec = hdr(0x17, 0x0303, 8 + len(ct)) + explicit + ct
out.append(c_hex("tls12_ccm8_rec", rec, "TLS 1.2 0xC0AF (AES-256-CCM-8), key 60..7f, salt a1a2a3a4, seq 3"))

# ---- CBC -------------------------------------------------------------------------------
mac20 = bytes(range(0xc0, 0xd4))
cbc_iv = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
seq = 2
m = hmac.new(mac20, aad12(seq, 0x17, 0x0303, len(plain)) + plain, "sha1").digest()
body = plain + m
body += tls_pad(len(body), 16)
rec = cbc_iv + cbc_enc(key16, cbc_iv, body)
rec = hdr(0x17, 0x0303, len(rec)) + rec
out.append(c_hex("tls12_cbc_rec", rec, "TLS 1.2 0x002F MAC-then-encrypt, key 60..6f, mac c0..d3, IV f0..ff, seq 2"))

# TLS 1.0: two chained records, implicit IV from the key block, then the last ciphertext block
key_iv = bytes.fromhex("0f0e0d0c0b0a09080706050403020100")
chain = key_iv
recs = b""
for seq, p in ((0, plain), (1, b"second record, 31 bytes long..!")):
    m = hmac.new(mac20, aad12(seq, 0x17, 0x0301, len(p)) + p, "sha1").digest()
    body = p + m
    body += tls_pad(len(body), 16)
    c = cbc_enc(key16, chain, body)
    chain = c[-16:]
    recs += hdr(0x17, 0x0301, len(c)) + c
out.append(c_hex("tls10_cbc_recs", recs, "TLS 1.0 0x002F, key 60..6f, mac c0..d3, key-block IV 0f..00, seq 0 and 1"))

# TLS 1.2 encrypt-then-MAC (RFC 7366), ECDHE-RSA-AES128-SHA256 (0xC027)
mac32 = bytes(range(0xd0, 0xf0))
seq = 9
body = plain + tls_pad(len(plain), 16)
c = cbc_iv + cbc_enc(key16, cbc_iv, body)
m = hmac.new(mac32, aad12(seq, 0x17, 0x0303, len(c)) + c, "sha256").digest()
rec = hdr(0x17, 0x0303, len(c) + len(m)) + c + m
out.append(c_hex("tls12_etm_rec", rec, "TLS 1.2 0xC027 encrypt-then-MAC, key 60..6f, mac d0..ef, IV f0..ff, seq 9"))

# TLS 1.0 3DES (0x000A), MAC-then-encrypt, 8-byte blocks
key24 = bytes(range(0x31, 0x49))
iv8 = bytes.fromhex("1122334455667788")
seq = 4
m = hmac.new(mac20, aad12(seq, 0x17, 0x0301, len(plain)) + plain, "sha1").digest()
body = plain + m
body += tls_pad(len(body), 8)
c = cbc_enc(key24, iv8, body)
rec = hdr(0x17, 0x0301, len(c)) + c
out.append(c_hex("tls10_3des_rec", rec, "TLS 1.0 0x000A, key 31..48, mac c0..d3, key-block IV 1122..88, seq 4"))

print("/* Generated by tests/unit/vectors/gen_crypto_vectors.py: do not edit by hand. */")
print("\n\n".join(out))
