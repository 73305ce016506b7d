#!/usr/bin/env python3
"""report.py RESULTS.json OUT.md [PLOT.png] - tables, the 16-core model and the plot of
bench/cycles (docs/BENCHMARKS.md, "Cycles per packet and per byte (issue 8)").

Every ratio is taken inside a round (against the baseline measured in the same round), then the
median over the rounds is reported.  Cycles are estimates: ns x the CPU's nominal frequency
("cpu MHz" of /proc/cpuinfo; the VM has no cycle counter available to perf).
"""
import json
import re
import statistics
import sys

NAMES = {
    "bridge": "Linux bridge (kernel router)",
    "bridge-rps": "Linux bridge with RPS on its ports (as --io fast sets it)",
    "bare-afp": "mmtls-bridge AF_PACKET (bare)",
    "mmtlsd-afp": "mmtlsd AF_PACKET",
    "mmtlsd-fast": "mmtlsd --io fast",
    "mmtlsd-fastw": "mmtlsd --io fast --depth-count wire (kernel depth)",
    "bridge-rps0": "Linux bridge with RPS on CPU 0",
    "mmtlsd-fastw-rps0": "mmtlsd --io fast --depth-count wire --fast-rps 0",
    "bare-xdp": "mmtls-bridge AF_XDP copy (bare)",
    "mmtlsd-xdp": "mmtlsd AF_XDP copy",
    "bare-dpdk": "mmtls-bridge DPDK net_af_packet (bare)",
    "mmtlsd-dpdk": "mmtlsd DPDK net_af_packet",
    "direct": "direct veth (reference)",
}
# mmtlsd back end -> the bare forwarder of the same back end (fast: the kernel's own forwarding)
BARE = {"mmtlsd-afp": "bare-afp", "mmtlsd-xdp": "bare-xdp", "mmtlsd-dpdk": "bare-dpdk",
        "mmtlsd-fast": "bridge"}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def rng(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else (None, None)


def f(x, p=2):
    return "n/a" if x is None else "%.*f" % (p, x)


# ---------------------------------------------------------------- forwarding


def fwd_table(res):
    """{(group, middle): {per-round lists}}: incremental ns/B and ns/frame over the direct link"""
    out = {}
    rounds = sorted({r["round"] for r in res["fwd"]})
    for g in ("A", "B"):
        for rnd in rounds:
            recs = {r["middle"]: r for r in res["fwd"]
                    if r["group"] == g and r["round"] == rnd and r["ok"]}
            d = recs.get("direct")
            if d is None:
                continue
            d_nspb = d["total"] * 1e9 / d["rx_bytes"]
            for m, r in recs.items():
                e = out.setdefault((g, m), {k: [] for k in (
                    "inc_nspb", "inc_nspf", "proc_nspb", "proc_nspf", "gbps", "frame_b",
                    "total_nspb", "ratio_inc", "ratio_proc")})
                nspb = r["total"] * 1e9 / r["rx_bytes"]
                fpb = r["frames_in"] / r["rx_bytes"]
                e["total_nspb"].append(nspb)
                e["gbps"].append(r["rx_bytes"] * 8e-9 / r["curl_secs"] if r["curl_secs"] else None)
                e["frame_b"].append(r["bytes_in"] / max(r["frames_in"], 1))
                if m == "direct":
                    continue
                inc = nspb - d_nspb
                e["inc_nspb"].append(inc)
                e["inc_nspf"].append(inc / fpb)
                if r["middle_proc"] > 0:
                    e["proc_nspb"].append(r["middle_proc"] * 1e9 / r["rx_bytes"])
                    e["proc_nspf"].append(r["middle_proc"] * 1e9 / r["frames_in"])
            # ratios inside the round
            for m, bare in BARE.items():
                if m in recs and bare in recs:
                    a, b = recs[m], recs[bare]
                    ia = a["total"] * 1e9 / a["rx_bytes"] - d_nspb
                    ib = b["total"] * 1e9 / b["rx_bytes"] - d_nspb
                    e = out[(g, m)]
                    e["ratio_inc"].append(ia / ib if ib > 0 else None)
                    if b["middle_proc"] > 0:
                        e["ratio_proc"].append((a["middle_proc"] / a["rx_bytes"]) /
                                               (b["middle_proc"] / b["rx_bytes"]))
    return out


def decrypt_table(res):
    """{back end: per-round lists}: perf samples of the middle in a window of the run (bench.py
    decrypt_run), per byte the server sent: under the engine's per-frame entry (no system call)
    and in libcrypto, inspected to 64 KB and decrypted whole in the same round.  Decrypting per
    byte = the engine's difference divided by the 15/16 of the bytes only the second run
    decrypts; against openssl speed aes-256-gcm of that round."""
    out = {}
    speed = {r["round"]: r["speed_aes-256-gcm"] for r in res.get("decrypt_speed", [])}
    for rnd in sorted({r["round"] for r in res["decrypt"]}):
        recs = {(r["middle"], r["depth"]): r for r in res["decrypt"]
                if r["round"] == rnd and r["ok"] and r.get("perf_win", {}).get("bytes")}
        for m in sorted({k[0] for k in recs}):
            e = out.setdefault(m, {k: [] for k in (
                "gbps64", "gbps0", "eng64", "eng0", "all64", "all0", "aead", "dec", "ratio",
                "ratio_aead", "ratio_eng0")})
            pw = {}
            for d, key in ((65536, "64"), (0, "0")):
                r = recs.get((m, d))
                if r is None:
                    continue
                w = pw[key] = r["perf_win"]
                e["gbps" + key].append(r["h2_bytes"] * 8e-9 / (r["h2_secs"] or 1))
                e["eng" + key].append(w["engine"] / w["bytes"])
                e["all" + key].append(w["all"] / w["bytes"])
                if key == "0":
                    e["aead"].append(w["crypto"] / w["bytes"])
            if len(pw) < 2:
                continue
            dec = (pw["0"]["engine"] / pw["0"]["bytes"] -
                   pw["64"]["engine"] / pw["64"]["bytes"])
            dec /= 1.0 - 65536.0 / (1 << 20)
            e["dec"].append(dec)
            if rnd in speed:
                e["ratio"].append(dec / speed[rnd])
                e["ratio_aead"].append(e["aead"][-1] / speed[rnd])
                e["ratio_eng0"].append(e["eng0"][-1] / speed[rnd])
    return out


def chain_cost(r, scale):
    """the middle's cost with interrupt/softirq samples charged by call chain instead of by task
    (bench.py IRQ): its processes' own work (schedstat scaled by the share of its samples
    outside interrupt context) + every sample under its receive hook wherever it ran; and the
    same plus the hook's share of the softirq samples with no call chain (upper estimate).
    None for runs recorded before bench.py split the samples."""
    if "attrib_irq" not in r:
        return None, None
    own = r["middle_proc"] * (1 - r["attrib_proc_irq"] / r["attrib_proc"]) \
        if r["attrib_proc"] > 0 else 0.0
    c = own + (r["attrib_hook"] + r["attrib_proc_irq_hook"]) * scale
    resolved = r["attrib_irq"] - r["attrib_irq_unres"]
    share = r["attrib_irq_hook"] / resolved if resolved > 0 else 0.0
    return c, c + r["attrib_irq_unres"] * share * scale


TLS_MIDDLES = ("bridge", "bridge-rps", "bridge-rps0", "mmtlsd-afp", "mmtlsd-fast", "mmtlsd-fastw",
               "mmtlsd-fastw-rps0")


def table_rows(L, tab, middles, cells, need=None):
    """one table row per middle present in tab (and with a non-empty tab[m][need]): its name,
    then cells(m, tab[m])"""
    for m in middles:
        e = tab.get(m)
        if e and (need is None or e[need]):
            L.append("| " + " | ".join([NAMES[m]] + cells(m, e)) + " |")


def tlsattrib_table(res):
    """TLS 1 MB objects inspected to 64 KB, attributed as attrib_table: the middle's processes
    (schedstat) + kernel samples under its receive hook, scaled by schedstat/sampled of
    mmtlsd AF_PACKET in the same round; ratio to the bridge's attributed cost per byte"""
    out = {}
    for rnd in sorted({r["round"] for r in res.get("tlsattrib", [])}):
        recs = {r["middle"]: r for r in res["tlsattrib"] if r["round"] == rnd and r["ok"]}
        sc = [r["middle_proc"] / r["attrib_proc"] for m, r in recs.items()
              if m == "mmtlsd-afp" and r["attrib_proc"] > 0]
        scale = statistics.mean(sc) if sc else 1.0
        per_b, chain_b, chain_hi_b = {}, {}, {}
        for m, r in recs.items():
            c = r["middle_proc"] + r["attrib_hook"] * scale
            per_b[m] = c * 1e9 / r["rx_bytes"]
            e = out.setdefault(m, {k: [] for k in ("nspb", "hook_nspb", "proc_nspb", "gbps",
                                                   "ratio", "chain_nspb", "chain_hi_nspb",
                                                   "irq_share", "chain_ratio",
                                                   "chain_hi_ratio")})
            e["nspb"].append(per_b[m])
            e["hook_nspb"].append(r["attrib_hook"] * scale * 1e9 / r["rx_bytes"])
            e["proc_nspb"].append(r["middle_proc"] * 1e9 / r["rx_bytes"])
            e["gbps"].append(r["h2_bytes"] * 8e-9 / r["h2_secs"] if r["h2_secs"] else None)
            ch, hi = chain_cost(r, scale)
            if ch is not None:
                chain_b[m], chain_hi_b[m] = ch * 1e9 / r["rx_bytes"], hi * 1e9 / r["rx_bytes"]
                e["chain_nspb"].append(chain_b[m])
                e["chain_hi_nspb"].append(chain_hi_b[m])
                if r["attrib_proc"] > 0:
                    e["irq_share"].append(r["attrib_proc_irq"] / r["attrib_proc"])
        for m in per_b:
            if m != "bridge" and per_b.get("bridge"):
                out[m]["ratio"].append(per_b[m] / per_b["bridge"])
            if m != "bridge" and chain_b.get("bridge") and m in chain_b:
                out[m]["chain_ratio"].append(chain_b[m] / chain_b["bridge"])
                out[m]["chain_hi_ratio"].append(chain_hi_b[m] / chain_hi_b["bridge"])
    return out


def attrib_table(res):
    """perf -a attribution: middle cost = its processes (schedstat) + kernel samples under its
    receive hook, the samples scaled by schedstat/sampled of the user-space forwarders of the
    same round (perf's cpu-clock sampling undercounts the forwarders, see the doc)"""
    out = {}
    for rnd in sorted({r["round"] for r in res.get("attrib", [])}):
        recs = {r["middle"]: r for r in res["attrib"] if r["round"] == rnd and r["ok"]}
        sc = [r["middle_proc"] / r["attrib_proc"] for m, r in recs.items()
              if m in ("bare-afp", "mmtlsd-afp") and r["attrib_proc"] > 0]
        scale = statistics.mean(sc) if sc else 1.0
        cost = {}
        for m, r in recs.items():
            c = r["middle_proc"] + r["attrib_hook"] * scale
            cost[m] = c
            e = out.setdefault(m, {k: [] for k in ("nspb", "nspf", "hook_nspb", "proc_nspb",
                                                   "scale", "ratio")})
            e["nspb"].append(c * 1e9 / r["rx_bytes"])
            e["nspf"].append(c * 1e9 / r["frames_in"])
            e["hook_nspb"].append(r["attrib_hook"] * scale * 1e9 / r["rx_bytes"])
            e["proc_nspb"].append(r["middle_proc"] * 1e9 / r["rx_bytes"])
            e["scale"].append(scale)
        for m, base in (("mmtlsd-afp", "bare-afp"), ("mmtlsd-fast", "bridge"),
                        ("bare-afp", "bridge")):
            if m in cost and base in cost and cost[base] > 0:
                out[m]["ratio"].append((cost[m] / recs[m]["rx_bytes"]) /
                                       (cost[base] / recs[base]["rx_bytes"]))
    return out


# ---------------------------------------------------------------- TLS 64 KB and scaling


def tls_table(res):
    out = {}
    for rnd in sorted({r["round"] for r in res["tls64k"]}):
        recs = {r["middle"]: r for r in res["tls64k"] if r["round"] == rnd and r["ok"]}
        d = recs.get("direct")
        if d is None:
            continue
        d_spg = d["total"] / d["rx_bytes"] * 1e9
        br = None
        for m, r in recs.items():
            e = out.setdefault(m, {k: [] for k in ("gbps", "total_spg", "inc_spg", "proc_spg",
                                                   "ratio_bridge", "ratio_bridge_proc")})
            spg = r["total"] / r["rx_bytes"] * 1e9
            e["gbps"].append(r["h2_bytes"] * 8e-9 / r["h2_secs"] if r["h2_secs"] else None)
            e["total_spg"].append(spg)
            if m != "direct":
                e["inc_spg"].append(spg - d_spg)
                e["proc_spg"].append(r["middle_proc"] / r["rx_bytes"] * 1e9)
            if m == "bridge":
                br = spg - d_spg
        for m, r in recs.items():
            if m not in ("direct", "bridge") and br:
                spg = r["total"] / r["rx_bytes"] * 1e9
                out[m]["ratio_bridge"].append((spg - d_spg) / br)
    return out


def scale_table(res):
    out = {}
    for rnd in sorted({r["round"] for r in res["scale"]}):
        recs = {(r["middle"], r["workers"]): r for r in res["scale"]
                if r["round"] == rnd and r["ok"]}
        for k, r in recs.items():
            w1 = recs.get((k[0], 1))  # the same back end with one worker
            e = out.setdefault(k, {x: [] for x in ("gbps", "proc_spg", "total_spg", "speedup",
                                                   "cpu_par")})
            g = r["h2_bytes"] * 8e-9 / r["h2_secs"] if r["h2_secs"] else None
            e["gbps"].append(g)
            e["proc_spg"].append(r["middle_proc"] / r["rx_bytes"] * 1e9)
            e["total_spg"].append(r["total"] / r["rx_bytes"] * 1e9)
            e["cpu_par"].append(r["middle_proc"] / r["wall"])
            if w1 and g and w1["h2_secs"]:
                e["speedup"].append(g / (w1["h2_bytes"] * 8e-9 / w1["h2_secs"]))
    return out


# ---------------------------------------------------------------- offline


def offline_table(res):
    o = res["offline"]
    t = {}
    for k in ("speed_aes-256-gcm", "speed_aes-128-gcm", "speed_chacha20-poly1305",
              "evp_aes-256-gcm", "evp_aes-128-gcm", "evp_chacha20-poly1305"):
        t[k] = [r[k] for r in o]
    for v in ("keys", "lean", "nokeys"):
        t["user_" + v] = [r["mmtlsd_" + v]["user_ns_per_byte"] for r in o]
        t["cpu_" + v] = [r["mmtlsd_" + v]["cpu_ns_per_byte"] for r in o]
    # ratios inside each round, against openssl speed aes-256-gcm (the capture's cipher)
    t["r_keys"] = [r["mmtlsd_keys"]["user_ns_per_byte"] / r["speed_aes-256-gcm"] for r in o]
    t["r_lean"] = [r["mmtlsd_lean"]["user_ns_per_byte"] / r["speed_aes-256-gcm"] for r in o]
    t["r_keys_cpu"] = [r["mmtlsd_keys"]["cpu_ns_per_byte"] / r["speed_aes-256-gcm"] for r in o]
    t["r_inc"] = [(r["mmtlsd_keys"]["user_ns_per_byte"] - r["mmtlsd_nokeys"]["user_ns_per_byte"])
                  / r["speed_aes-256-gcm"] for r in o]
    t["r_lean_evp"] = [r["mmtlsd_lean"]["user_ns_per_byte"] / r["evp_aes-256-gcm"] for r in o]
    t["inc_cpu"] = [r["mmtlsd_keys"]["cpu_ns_per_byte"] - r["mmtlsd_nokeys"]["cpu_ns_per_byte"]
                    for r in o]
    return t


# ---------------------------------------------------------------- profiles


CATS = [
    ("copies (memcpy/memmove, copies to/from user, skb copies)",
     r"memcpy|memmove|copy_user|copy_to_iter|copy_from_iter|rep_mov|copy_page|skb_copy|"
     r"__memcpy|memset|clear_page"),
    ("TLS record layer (mmtls rprot, record framing)", r"\[\.\] (mmtls_rprot|mmtls_tls|"
     r"mmtls_crypto|rprot|record)"),
    ("crypto (libcrypto: AES-GCM, GHASH; no symbols in Debian's build)", r"libcrypto"),
    ("TCP reassembly (mmtls reasm)", r"reasm"),
    ("engine, flows, apps, eve (mmtlsd)", r"^mmtlsd|\[\.\] mmtls_"),
    ("packet I/O in the kernel (AF_PACKET, veth, TCP/IP, skb)", r"\[k\].*(tpacket|packet_|veth|"
     r"tcp_|ip_|ipv4|dev_|netif|skb|__dev|br_|nf_|napi|xsk|xdp|net_rx|sock|inet|sk_|"
     r"softirq|kfree|alloc)"),
    ("syscalls, poll, scheduling", r"\[k\].*(poll|sys_|entry_|syscall|schedule|futex|ep_|"
     r"finish_task|raw_spin|_raw|rcu|hrtimer|switch|wake)"),
    ("page faults, mmap (the capture file)", r"\[k\].*(fault|folio|page|unmap|lru|memcg|mm_|"
     r"vma|pte|pmd)"),
    ("other kernel", r"\[k\]"),
    ("other user space (libc, loader)", r"."),
]


def categorize(lines):
    cats = {c: 0.0 for c, _ in CATS}
    for ln in lines:
        m = re.match(r"^\s+([0-9.]+)%\s+(.*)$", ln)
        if not m:
            continue
        pct, rest = float(m.group(1)), m.group(2)
        for c, rx in CATS:
            if re.search(rx, rest):
                cats[c] += pct
                break
    return cats


# ---------------------------------------------------------------- model


def model(fw, off, tls, cfg, at=None, depth=65536, obj=1 << 20, gbit=100.0, cores=16):
    """cores needed for `gbit` of 1 MB objects inspected to `depth`, per back end, from the
    measured per-core costs: forwarding cost per byte (incremental, this back end) for every
    byte + decryption increment per byte (offline keys - no keys) for the inspected fraction"""
    frac = depth / obj
    dec = med(off["inc_cpu"]) if off else None
    bps = gbit * 1e9 / 8
    rows = []
    for g, m in (("A", "bridge"), ("A", "bare-afp"), ("A", "mmtlsd-afp"), ("A", "mmtlsd-fast"),
                 ("B", "bridge"), ("B", "bare-xdp"), ("B", "mmtlsd-xdp")):
        e = fw.get((g, m))
        if not e or dec is None:
            continue
        fwd = med(e["inc_nspb"])
        if g == "A" and at and at.get(m):
            fwd = med(at[m]["nspb"])  # GSO frames: the perf attribution (the direct reference
            # is not neutral there, see the doc)
        inspect = 0.0 if m in ("bridge", "bare-afp", "bare-xdp") else frac * dec
        per_b = fwd + inspect
        rows.append({"group": g, "middle": m, "fwd_nspb": fwd, "dec_nspb": inspect,
                     "frame_b": med(e["frame_b"]), "nspb": per_b,
                     "core_gbps": 8 / per_b if per_b > 0 else None,
                     "cores": bps * per_b / 1e9})
    # the end-to-end TLS 64 KB measurement (incremental CPU per GB over the direct link)
    for m in ("bridge", "mmtlsd-afp", "mmtlsd-fast", "mmtlsd-fastw"):
        e = tls.get(m)
        if e and e["inc_spg"]:
            per_b = med(e["inc_spg"])  # s/GB == ns/B
            rows.append({"group": "TLS", "middle": m, "fwd_nspb": None, "dec_nspb": None,
                         "frame_b": None, "nspb": per_b,
                         "core_gbps": 8 / per_b if per_b > 0 else None,
                         "cores": bps * per_b / 1e9})
    return {"frac": frac, "dec_nspb": dec, "rows": rows, "gbit": gbit, "cores": cores}


# ---------------------------------------------------------------- report


def main():
    res = json.load(open(sys.argv[1]))
    outmd = sys.argv[2]
    plot = sys.argv[3] if len(sys.argv) > 3 else None
    cfg = res["config"]
    ghz = cfg["mhz"] / 1000.0
    L = []
    L.append("# Cycles per packet and per byte — %s\n" % cfg["date"])
    L.append("`bench/cycles/run.sh`: %d interleaved rounds, medians of per-round figures; "
             "kernel %s; cycles = ns x %.0f MHz (nominal, /proc/cpuinfo): **estimates**, the VM "
             "exposes no cycle counter. Forwarding: %d MiB (GSO, group A) / %d MiB (MTU frames, "
             "group B) plain-HTTP downloads; TLS: h2load %.0f s.\n" % (
                 cfg["rounds"], cfg["kernel"], cfg["mhz"], cfg["fwd_mb"],
                 cfg.get("fwd_mb_b", cfg["fwd_mb"]), cfg["tls_secs"]))
    fw = fwd_table(res) if res.get("fwd") else {}
    if fw:
        L.append("## Forwarding only (plain HTTP, non-TLS)\n")
        L.append("Incremental CPU = (all benchmark CPU per byte) - (the same over the direct veth "
                 "pair, same round). Per frame = per frame the end hosts sent into the middle "
                 "(data + ACKs).\n")
        L.append("| group | middle | Gbit/s | avg frame B | incremental ns/B | cycles/B | "
                 "incremental ns/frame | cycles/frame | middle process ns/B | process "
                 "ns/frame | vs own bare forwarder (incremental / process) |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for g in ("A", "B"):
            for m in ("direct", "bridge", "bare-afp", "mmtlsd-afp", "mmtlsd-fast", "bare-xdp",
                      "mmtlsd-xdp", "bare-dpdk", "mmtlsd-dpdk"):
                e = fw.get((g, m))
                if not e:
                    continue
                inc, incf = med(e["inc_nspb"]), med(e["inc_nspf"])
                ratio = ""
                if e["ratio_inc"]:
                    ratio = "%s / %s x %s" % (f(med(e["ratio_inc"])), f(med(e["ratio_proc"])),
                                              BARE[m])
                L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    g, NAMES[m], f(med(e["gbps"])), f(med(e["frame_b"]), 0), f(inc, 3),
                    f(inc * ghz if inc is not None else None, 2), f(incf, 0),
                    f(incf * ghz if incf is not None else None, 0),
                    f(med(e["proc_nspb"]), 3), f(med(e["proc_nspf"]), 0), ratio))
        L.append("")
        L.append("Per round (incremental ns/B):\n")
        L.append("```")
        for r in res["fwd"]:
            L.append("r%d %s %-12s ok=%s rx=%d frames=%d total=%.3fs mid=%.3fs srv=%.3fs "
                     "cli=%.3fs ksi=%.3fs soak=%.3fs load=%.1f" % (
                         r["round"], r["group"], r["middle"], r["ok"], r["rx_bytes"],
                         r["frames_in"], r["total"], r["middle_proc"], r["server_proc"],
                         r["client_proc"], r["ksoftirqd"], r["soak_sys"], r["loadavg"]))
        L.append("```\n")
    dt = decrypt_table(res) if res.get("decrypt") else {}
    if dt:
        sp = [r["speed_aes-256-gcm"] for r in res.get("decrypt_speed", [])]
        L.append("## Decrypting, per back end (TLS, 1 MB objects, h2load 8 connections)\n")
        L.append("Each back end runs the same load twice in a round: inspected to 64 KB and "
                 "decrypted whole, each under `perf record --call-graph dwarf -p MIDDLE` for a window of its "
                 "measured phase. *Engine* = samples whose call chain passes "
                 "`mmtls_engine_packet_inline` (every back end hands each frame to the engine "
                 "there) and no system call nor interrupt: decode, flows, reassembly, records, "
                 "AEAD, apps, not the I/O; so polling (AF_XDP, DPDK spin a core), the receive "
                 "work a send runs and interrupts taken while the engine ran (with the fast "
                 "path's RPS, the softirq of the frames the kernel forwards) are left out. Per "
                 "byte the server sent in the window. *Decrypting* = the engine's difference "
                 "between the two runs divided by the 15/16 of the bytes only the second "
                 "decrypts (on the fast path the kernel skips the rest of the 64 KB run, so the "
                 "difference is all the engine's work on those bytes, not only the AEAD). "
                 "*Engine, all* = the decrypt-all run's whole engine per byte. *AEAD* = samples "
                 "in libcrypto in the decrypt-all run. openssl speed -evp aes-256-gcm (16 KB blocks, same round): median %s "
                 "ns/B. AF_XDP and DPDK run with MTU frames (tx checksumming off at the end "
                 "hosts).\n" % f(med(sp), 3))
        L.append("| back end | Gbit/s (64 KB / all) | process ns/B (64 KB / all) | engine ns/B "
                 "(64 KB / all) | decrypting ns/B | cycles/B | vs openssl speed | engine, all, "
                 "vs openssl speed | AEAD ns/B | AEAD vs openssl speed |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for m in ("mmtlsd-afp", "mmtlsd-fast", "mmtlsd-xdp", "mmtlsd-dpdk"):
            e = dt.get(m)
            if not e:
                continue
            d = med(e["dec"])
            L.append("| %s | %s / %s | %s / %s | %s / %s | %s | %s | %s | %s | %s | %s |" % (
                NAMES[m], f(med(e["gbps64"])), f(med(e["gbps0"])), f(med(e["all64"]), 3),
                f(med(e["all0"]), 3), f(med(e["eng64"]), 3), f(med(e["eng0"]), 3), f(d, 3),
                f(d * ghz if d is not None else None, 2),
                ("%s (%s-%s)" % ((f(med(e["ratio"])),) + tuple(f(x) for x in rng(e["ratio"]))))
                if e["ratio"] else "n/a", f(med(e["ratio_eng0"])), f(med(e["aead"]), 3),
                f(med(e["ratio_aead"]))))
        L.append("\n```")
        for r in res["decrypt"]:
            w = r.get("perf_win", {})
            L.append("r%d %-12s depth=%-6d ok=%s Gbit/s=%.2f mid=%.3fs perf window %.2fs "
                     "bytes=%d samples=%d sampled=%.3fs engine=%.3fs (+irq %.3fs) libcrypto=%.3fs "
                     "keys=%s" % (
                         r["round"], r["middle"], r["depth"], r["ok"],
                         r["h2_bytes"] * 8e-9 / (r["h2_secs"] or 1), r["middle_proc"],
                         w.get("secs", 0), w.get("bytes", 0), w.get("samples", 0),
                         w.get("all", 0) * 1e-9, w.get("engine", 0) * 1e-9,
                         w.get("engine_irq", 0) * 1e-9, w.get("crypto", 0) * 1e-9,
                         r.get("eve", {}).get("key_status", "")))
        L.append("```\n")
    at = attrib_table(res) if res.get("attrib") else {}
    if at:
        L.append("## Forwarding only, attributed (perf record -a -g, GSO frames)\n")
        L.append("Middle cost = the middle's processes (schedstat) + kernel CPU whose call chain "
                 "passes its receive hook (br_handle_frame, tpacket_rcv/packet_rcv, TC ingress), "
                 "sampled with perf -a -g -F 999 and scaled by schedstat/sampled of the "
                 "user-space forwarders in the same round (median scale %s).\n" % f(
                     med([x for e in at.values() for x in e["scale"]])))
        L.append("| middle | ns/B | cycles/B | ns/frame | cycles/frame | of which kernel hook "
                 "ns/B | process ns/B | ratio |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---|")
        base = {"mmtlsd-afp": "bare-afp", "mmtlsd-fast": "bridge", "bare-afp": "bridge"}

        def fwd_cells(m, e):
            nb, nf = med(e["nspb"]), med(e["nspf"])
            return [f(nb, 3), f(nb * ghz, 2), f(nf, 0), f(nf * ghz, 0), f(med(e["hook_nspb"]), 3),
                    f(med(e["proc_nspb"]), 3),
                    ("%s x %s" % (f(med(e["ratio"])), base[m])) if e["ratio"] else ""]
        table_rows(L, at, ("bridge", "bare-afp", "mmtlsd-afp", "mmtlsd-fast"), fwd_cells)
        L.append("\n```")
        for r in res["attrib"]:
            L.append("r%d %-12s ok=%s rx=%d frames=%d mid(schedstat)=%.3fs sampled: proc=%.3fs "
                     "hook=%.3fs all=%.3fs" % (r["round"], r["middle"], r["ok"], r["rx_bytes"],
                                               r["frames_in"], r["middle_proc"],
                                               r["attrib_proc"], r["attrib_hook"],
                                               r["attrib_all"]))
        L.append("```\n")
    ta = tlsattrib_table(res) if res.get("tlsattrib") else {}
    if ta:
        L.append("## TLS, 1 MB objects inspected to 64 KB, attributed (perf record -a -g)\n")
        L.append("h2load, 8 connections. Middle cost = its processes (schedstat) + kernel CPU "
                 "whose call chain passes its receive hook (br_handle_frame, tpacket_rcv/"
                 "packet_rcv, TC ingress), as in the forwarding-only attribution; the end "
                 "hosts' own costs are left out.\n")
        L.append("| middle | Gbit/s | ns/B | of which kernel hook ns/B | process ns/B | "
                 "vs bridge |")
        L.append("|---|---:|---:|---:|---:|---:|")
        table_rows(L, ta, TLS_MIDDLES, lambda m, e: [
            f(med(e["gbps"])), f(med(e["nspb"]), 3), f(med(e["hook_nspb"]), 3),
            f(med(e["proc_nspb"]), 3), f(med(e["ratio"]), 2) if e["ratio"] else ""])
        if any(e["chain_nspb"] for e in ta.values()):
            L.append("\nThe same runs with interrupt and softirq samples charged by call chain "
                     "instead of by task: a middle that runs in process context has the end "
                     "hosts' receive work (the softirq its own sendmsg runs on re-enabling "
                     "bottom halves, and the RPS interrupts that land on its CPU) run on its "
                     "time, which the bridge's attribution never sees. Here the middle is its "
                     "processes' time outside interrupt context plus every sample under its "
                     "receive hook wherever it ran; \"+ unresolved\" adds the hook's share of "
                     "the softirq samples perf could not resolve (an upper estimate); each ratio "
                     "is to the bridge's figure in the same column.\n")
            L.append("| middle | ns/B | vs bridge | + unresolved ns/B | vs bridge | share of "
                     "process samples in interrupt context |")
            L.append("|---|---:|---:|---:|---:|---:|")
            table_rows(L, ta, TLS_MIDDLES, lambda m, e: [
                f(med(e["chain_nspb"]), 3), f(med(e["chain_ratio"]), 2) if e["chain_ratio"] else "",
                f(med(e["chain_hi_nspb"]), 3),
                f(med(e["chain_hi_ratio"]), 2) if e["chain_hi_ratio"] else "",
                f(med(e["irq_share"]) * 100, 0) + "%" if e["irq_share"] else ""], "chain_nspb")
        L.append("\n```")
        for r in res["tlsattrib"]:
            L.append("r%d %-12s ok=%s rx=%d mid(schedstat)=%.3fs sampled: proc=%.3fs "
                     "hook=%.3fs all=%.3fs" % (r["round"], r["middle"], r["ok"], r["rx_bytes"],
                                               r["middle_proc"], r["attrib_proc"],
                                               r["attrib_hook"], r["attrib_all"]) +
                     (" proc_irq=%.3fs proc_irq_hook=%.3fs irq=%.3fs irq_hook=%.3fs "
                      "irq_unres=%.3fs" % (r["attrib_proc_irq"], r["attrib_proc_irq_hook"],
                                           r["attrib_irq"], r["attrib_irq_hook"],
                                           r["attrib_irq_unres"]) if "attrib_irq" in r else ""))
        L.append("```\n")
    off = offline_table(res) if res.get("offline") else None
    if off:
        L.append("## Decrypting (offline, %s MB TLS 1.3 AES-256-GCM capture, 16 KB records)\n"
                 % cfg["cap_big"]["total_mb"])
        L.append("| measure | ns/B | cycles/B | vs openssl speed aes-256-gcm |")
        L.append("|---|---:|---:|---:|")
        rows = [("openssl speed -evp aes-256-gcm (16 KB, encrypt)", "speed_aes-256-gcm", None),
                ("openssl speed -evp aes-128-gcm", "speed_aes-128-gcm", None),
                ("openssl speed -evp chacha20-poly1305", "speed_chacha20-poly1305", None),
                ("evp_open aes-256-gcm (EVP decrypt + tag, 16 KB records)", "evp_aes-256-gcm",
                 None),
                ("evp_open aes-128-gcm", "evp_aes-128-gcm", None),
                ("evp_open chacha20-poly1305", "evp_chacha20-poly1305", None),
                ("mmtlsd -r, keys, defaults (user CPU)", "user_keys", "r_keys"),
                ("mmtlsd -r, keys, user + system", "cpu_keys", "r_keys_cpu"),
                ("mmtlsd -r, keys, lean: --reasm-keep 0, no eve (user)", "user_lean", "r_lean"),
                ("mmtlsd -r, no keys (framing only, user)", "user_nokeys", None),
                ("decryption increment: keys - no keys (user)", None, "r_inc")]
        for name, k, rk in rows:
            if k is None:
                v = med([a - b for a, b in zip(off["user_keys"], off["user_nokeys"])])
            else:
                v = med(off[k])
            L.append("| %s | %s | %s | %s |" % (name, f(v, 3), f(v * ghz, 2),
                                                 f(med(off[rk]), 2) + " x" if rk else ""))
        L.append("")
        L.append("lean / evp_open aes-256-gcm (per round, median): %s x\n" % f(
            med(off["r_lean_evp"])))
    cg = res.get("callgrind")
    if cg:
        pb = cg["plain_bytes"]
        L.append("## Instructions per decrypted byte (callgrind, %d MB capture)\n" % (pb // 10**6))
        L.append("| run | instructions | per plaintext byte |")
        L.append("|---|---:|---:|")
        for k, name in (("ir_keys", "mmtlsd -r, keys, defaults"),
                        ("ir_lean", "mmtlsd -r, keys, lean"),
                        ("ir_nokeys", "mmtlsd -r, no keys")):
            L.append("| %s | %d | %.3f |" % (name, cg[k], cg[k] / pb))
        L.append("| decryption increment (keys lean - no keys) | %d | %.3f |" % (
            cg["ir_lean"] - cg["ir_nokeys"], (cg["ir_lean"] - cg["ir_nokeys"]) / pb))
        for c in ("aes-256-gcm", "aes-128-gcm"):
            L.append("| evp_open %s (per byte, set-up subtracted) | | %.3f |" % (
                c, cg["evp_ir_per_byte_" + c]))
        L.append("\nmmtlsd lean / raw EVP AES-256-GCM: %.2f x instructions per byte\n" % (
            cg["ir_lean"] / pb / cg["evp_ir_per_byte_aes-256-gcm"]))
    tls = tls_table(res) if res.get("tls64k") else {}
    if tls:
        L.append("## TLS, 1 MB objects inspected to 64 KB (h2load, 8 connections)\n")
        L.append("| middle | Gbit/s | all benchmark CPU s/GB | incremental s/GB (= ns/B) | "
                 "middle process s/GB | incremental / bridge's |")
        L.append("|---|---:|---:|---:|---:|---:|")
        for m in ("direct", "bridge", "bridge-rps", "bridge-rps0", "mmtlsd-afp", "mmtlsd-fast",
                  "mmtlsd-fastw", "mmtlsd-fastw-rps0"):
            e = tls.get(m)
            if not e:
                continue
            L.append("| %s | %s | %s | %s | %s | %s |" % (
                NAMES[m] + ("" if m.startswith(("direct", "bridge")) else ", depth 64 KB"),
                f(med(e["gbps"])), f(med(e["total_spg"]), 3), f(med(e["inc_spg"]), 3),
                f(med(e["proc_spg"]), 3), f(med(e["ratio_bridge"]), 2)))
        L.append("")
        L.append("```")
        for r in res["tls64k"]:
            L.append("r%d %-12s ok=%s rx=%d total=%.3fs mid=%.3fs srv=%.3fs cli=%.3fs ksi=%.3fs "
                     "soak=%.3fs keys=%s" % (r["round"], r["middle"], r["ok"], r["rx_bytes"],
                                             r["total"], r["middle_proc"], r["server_proc"],
                                             r["client_proc"], r["ksoftirqd"], r["soak_sys"],
                                             r.get("eve", {}).get("key_status", "")))
        L.append("```\n")
    sc = scale_table(res) if res.get("scale") else {}
    if sc:
        L.append("## Scaling: mmtlsd decrypting everything, %d connections, 1 MB\n"
                 % cfg["scale_conns"])
        L.append("| middle | Gbit/s | vs 1 worker | middle CPU s/GB | middle CPUs busy | "
                 "all benchmark CPU s/GB |")
        L.append("|---|---:|---:|---:|---:|---:|")
        for k in (("bridge", 1), ("mmtlsd-afp", 1), ("mmtlsd-afp", 2), ("mmtlsd-fast", 1),
                  ("mmtlsd-fast", 2)):
            e = sc.get(k)
            if not e:
                continue
            name = NAMES[k[0]] + ("" if k[0] == "bridge" else ", --workers %d" % k[1])
            L.append("| %s | %s | %s | %s | %s | %s |" % (
                name, f(med(e["gbps"])), f(med(e["speedup"])) if k[0] != "bridge" else "",
                f(med(e["proc_spg"]), 3), f(med(e["cpu_par"])), f(med(e["total_spg"]), 3)))
        L.append("")
    mo = model(fw, off, tls, cfg, at) if fw else None
    if mo and mo["rows"]:
        L.append("## Model: %d cores at %.0f Gbit/s (1 MB objects, first 64 KB inspected)\n" % (
            mo["cores"], mo["gbit"]))
        L.append("Per byte = forwarding-only cost of the back end (all bytes; GSO rows: the "
                 "perf attribution, MTU rows: incremental over the direct link) + "
                 "%.2f %% x the decryption increment (%s ns/B, offline keys - no keys, AES-256-GCM "
                 "with AES-NI, no VAES). *TLS* rows: the measured end-to-end 64 KB run.\n" % (
                     mo["frac"] * 100, f(mo["dec_nspb"], 3)))
        L.append("| frames | back end | forward ns/B | inspect ns/B | total ns/B | Gbit/s per "
                 "core | cores for %.0f Gbit/s | fits %d cores |" % (mo["gbit"], mo["cores"]))
        L.append("|---|---|---:|---:|---:|---:|---:|---|")
        for r in mo["rows"]:
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                {"A": "GSO (avg %s B)" % f(r["frame_b"], 0), "B": "MTU (avg %s B)" % f(
                    r["frame_b"], 0), "TLS": "TLS run"}[r["group"]],
                NAMES[r["middle"]], f(r["fwd_nspb"], 3), f(r["dec_nspb"], 3), f(r["nspb"], 3),
                f(r["core_gbps"], 1), f(r["cores"], 1),
                "yes" if r["cores"] <= mo["cores"] else "no"))
        L.append("")
    prof = res.get("profile")
    if prof:
        for k, title in (("inline", "mmtlsd inline, AF_PACKET, decrypting everything, h2load "
                                    "%d connections" % cfg["scale_conns"]),
                         ("offline", "mmtlsd -r, decrypting the big capture")):
            p = prof[k]
            L.append("## Profile: %s (perf record -e cpu-clock -g)\n" % title)
            cats = categorize(p["sym"])
            L.append("| where | share of samples |")
            L.append("|---|---:|")
            for c, _ in CATS:
                if cats[c] > 0:
                    L.append("| %s | %.1f %% |" % (c, cats[c]))
            L.append("\nPer binary:\n```")
            L += p["dso"][:8]
            L.append("```\nTop symbols (self; libcrypto has no symbols: its addresses "
                     "are summed in the table above):\n```")
            L += [ln for ln in p["sym"] if "libcrypto" not in ln][:20]
            L.append("```\n")
    with open(outmd, "w") as fh:
        fh.write("\n".join(L) + "\n")
    res["_model"] = mo
    if plot and (fw or off):
        do_plot(plot, fw, off, ghz, at)
    print("\n".join(L))


def do_plot(path, fw, off, ghz, at=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    labels, vals = [], []
    for g, m in (("A", "bridge"), ("A", "bare-afp"), ("A", "mmtlsd-afp"), ("A", "mmtlsd-fast"),
                 ("B", "bridge"), ("B", "bare-xdp"), ("B", "mmtlsd-xdp")):
        e = fw.get((g, m))
        if g == "A" and at and at.get(m):  # GSO: the perf attribution (see the doc)
            labels.append("GSO " + m + " (attributed)")
            vals.append((med(at[m]["nspf"]) * ghz, med(at[m]["nspb"]) * ghz))
        elif e and e["inc_nspf"]:
            labels.append(("GSO " if g == "A" else "MTU ") + m + " (incremental)")
            vals.append((med(e["inc_nspf"]) * ghz, med(e["inc_nspb"]) * ghz))
    if vals:
        ax = axes[0]
        ax.barh(labels, [v[0] for v in vals], color="tab:blue")
        ax.set_xscale("log")
        ax.set_xlabel("cycles per frame (estimate, log)")
        ax.set_title("forwarding only: per frame")
        ax.invert_yaxis()
        ax = axes[1]
        ax.barh(labels, [v[1] for v in vals], color="tab:orange")
        ax.set_xlabel("cycles per byte (estimate)")
        ax.set_title("forwarding only: per byte")
        ax.invert_yaxis()
    if off:
        names = ["openssl speed\naes-256-gcm", "evp_open\naes-256-gcm", "mmtlsd -r\nlean",
                 "mmtlsd -r\ndefaults", "mmtlsd -r\nno keys"]
        v = [med(off["speed_aes-256-gcm"]), med(off["evp_aes-256-gcm"]), med(off["user_lean"]),
             med(off["user_keys"]), med(off["user_nokeys"])]
        ax = axes[2]
        ax.bar(names, [x * ghz for x in v],
               color=["grey", "grey", "tab:green", "tab:green", "tab:olive"])
        ax.axhline(med(off["speed_aes-256-gcm"]) * ghz * 1.5, color="red", ls="--",
                   label="1.5 x openssl (target)")
        ax.set_ylim(0, max(max(v), med(off["speed_aes-256-gcm"]) * 1.5) * ghz * 1.15)
        ax.set_ylabel("cycles per plaintext byte (user CPU, estimate)")
        ax.set_title("decrypting, TLS 1.3 AES-256-GCM")
        ax.legend(fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
