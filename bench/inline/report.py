#!/usr/bin/env python3
"""report.py RESULTS.json OUT.md PLOTDIR - medians, ratios against the targets, PNG plots.

Figures per run (bench.py):
  Gbit/s       h2load's bytes / h2load's measured duration (after the warm-up)
  mid s/GB     the middle's processes' utime+stime / GB received by the client (veth0 rx over
               the whole h2load run, warm-up included); n/a for the kernel bridge
  cpu1 s/GB    CPU 1's busy time / GB (the middle is pinned there; includes other jobs' time
               and the client's TCP receive softirq that the middle's transmit triggers)
  softirq s/GB softirq time of both CPUs / GB
Ratios are taken inside each round, then the median over rounds (bench/README.md rule).
"""
import json
import os
import statistics
import sys

BRIDGES = ("e2e", "e2erps")  # middles without a process of their own
NAMES = {"e2e": "E2E (kernel bridge)", "e2erps": "E2E (kernel bridge, RPS on its ports)",
         "split": "split-TLS (nginx proxy)",
         "mmtls64k": "mmtls, first 64 KB", "mmtlsall": "mmtls, decrypt all",
         "mmtls64kv3": "mmtls, first 64 KB, TPACKET_V3 blocks (--afp-ring blocks)",
         "bare": "bare AF_PACKET forwarder (TPACKET_V2 frames, as mmtlsd)",
         "barev3": "bare AF_PACKET forwarder, TPACKET_V3 blocks",
         "mmtlsfast64k": "mmtls --io fast, first 64 KB",
         "mmtlsfastw64k": "mmtls --io fast, first 64 KB counted on the wire (kernel depth)",
         "mmtlsfastw64krps0": "mmtls --io fast, kernel depth, --fast-rps 0"}
SHORT = {"e2e": "E2E\n(kernel bridge)", "e2erps": "E2E + RPS\n(kernel bridge)",
         "split": "split-TLS\n(nginx)",
         "mmtls64k": "mmtls\nfirst 64 KB",
         "mmtls64kv3": "mmtls 64 KB\nV3 blocks",
         "mmtlsall": "mmtls\ndecrypt all", "bare": "bare\nAF_PACKET",
         "barev3": "bare\nV3 blocks",
         "mmtlsfast64k": "mmtls fast\nfirst 64 KB",
         "mmtlsfastw64k": "mmtls fast\nkernel depth",
         "mmtlsfastw64krps0": "mmtls fast\nkernel depth\nRPS CPU 0"}
SIZE_B = {"1k": 1024, "16k": 16384, "64k": 65536, "256k": 262144, "1m": 1048576, "4m": 4194304}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fig(r):
    gb = r["rx_bytes"] / 1e9 if r["rx_bytes"] > 0 else None
    secs = r["h2_secs"] or None
    d = {
        "gbps": r["h2_bytes"] * 8 / 1e9 / secs if secs and r["h2_bytes"] else None,
        "rps": r["ok"] / secs if secs else None,
        "mid": r["middle_proc"] / gb if gb and r["middle"] not in BRIDGES else None,
        "cpu1": r["cpu1"] / gb if gb else None,
        "si": r.get("softirq", 0) / gb if gb else None,
        "machine": r["machine"] / gb if gb else None,
    }
    if r["ephemeral"] and r["ok"]:
        d["mid_conn_ms"] = (r["middle_proc"] * 1000 / r["ok"]) if r["middle"] not in BRIDGES else None
        d["cpu1_conn_ms"] = r["cpu1"] * 1000 / r["ok"]
        d["si_conn_ms"] = r.get("softirq", 0) * 1000 / r["ok"]
    return d


def fmt(x, p=2):
    if x is None:
        return "n/a"
    return ("%." + str(p) + "f") % x


def main():
    res = json.load(open(sys.argv[1]))
    out_md, plotdir = sys.argv[2], sys.argv[3]
    os.makedirs(plotdir, exist_ok=True)
    cfg = res["config"]
    middles = cfg["middles"]
    sizes = cfg["sizes"]
    runs = res["runs"]
    by = {}
    for r in runs:
        by.setdefault((r["middle"], r["object"], r["ephemeral"], r["round"]), fig(r))
    rounds = sorted({r["round"] for r in runs})

    def m(mid, obj, eph, key):
        return med([by.get((mid, obj, eph, k), {}).get(key) for k in rounds])

    def ratio(a, b, obj, eph, key):
        xs = []
        for k in rounds:
            x = by.get((a, obj, eph, k), {}).get(key)
            y = by.get((b, obj, eph, k), {}).get(key)
            if x is not None and y:
                xs.append(x / y)
        return med(xs)

    L = []
    L.append("# Inline middlebox benchmark - %s\n" % cfg["date"])
    L.append("`bench/inline/run.sh`: %d interleaved rounds, persistent runs h2load --h1 -c %d "
             "-D %gs after %gs warm-up, ephemeral runs -c %d -n %d (one request per TLS "
             "connection). Kernel %s. Medians over rounds.\n" % (
                 cfg["rounds"], cfg["clients"], cfg["secs"], cfg.get("warm", 0),
                 cfg["eph_clients"], cfg.get("eph_n", 0), cfg["kernel"]))
    L.append("## Persistent connections\n")
    L.append("| object | middle | req/s | Gbit/s | middle proc CPU s/GB | CPU 1 busy s/GB "
             "| softirq s/GB |")
    L.append("|---|---|---:|---:|---:|---:|---:|")
    for obj in sizes:
        for mid in middles:
            L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                obj, NAMES[mid], fmt(m(mid, obj, False, "rps"), 0),
                fmt(m(mid, obj, False, "gbps")), fmt(m(mid, obj, False, "mid"), 3),
                fmt(m(mid, obj, False, "cpu1"), 3), fmt(m(mid, obj, False, "si"), 3)))
    L.append("")
    L.append("## Ratios (per round, then median) and targets, objects >= 64 KB\n")
    L.append("| object | mmtls64k/split CPU (<= 0.33) | mmtlsall/split CPU (<= 0.5) | "
             "mmtls64k/bare CPU (<= 1.3) | mmtls64k/E2E Gbit/s (>= 0.9) | "
             "mmtlsall/E2E Gbit/s | split/E2E Gbit/s | bare/E2E Gbit/s |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for obj in sizes:
        if SIZE_B[obj] < 65536:
            continue
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            obj, fmt(ratio("mmtls64k", "split", obj, False, "mid")),
            fmt(ratio("mmtlsall", "split", obj, False, "mid")),
            fmt(ratio("mmtls64k", "bare", obj, False, "mid")),
            fmt(ratio("mmtls64k", "e2e", obj, False, "gbps")),
            fmt(ratio("mmtlsall", "e2e", obj, False, "gbps")),
            fmt(ratio("split", "e2e", obj, False, "gbps")),
            fmt(ratio("bare", "e2e", obj, False, "gbps"))))
    L.append("")
    L.append("## Ephemeral connections (1 KB, new TLS connection per request)\n")
    L.append("| middle | conn/s | middle proc CPU ms/conn | CPU 1 busy ms/conn | "
             "softirq ms/conn | failed |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for mid in middles:
        fails = sum(r["failed"] for r in runs if r["middle"] == mid and r["ephemeral"])
        L.append("| %s | %s | %s | %s | %s | %d |" % (
            NAMES[mid], fmt(m(mid, "1k", True, "rps"), 0),
            fmt(m(mid, "1k", True, "mid_conn_ms"), 3), fmt(m(mid, "1k", True, "cpu1_conn_ms"), 3),
            fmt(m(mid, "1k", True, "si_conn_ms"), 3), fails))
    L.append("")
    L.append("mmtls64k/split CPU per connection: %s (target <= 0.1); mmtlsall/split: %s; "
             "mmtls64k/E2E conn/s: %s\n" % (
                 fmt(ratio("mmtls64k", "split", "1k", True, "mid_conn_ms"), 3),
                 fmt(ratio("mmtlsall", "split", "1k", True, "mid_conn_ms"), 3),
                 fmt(ratio("mmtls64k", "e2e", "1k", True, "rps"), 3)))
    L.append("## Key stalls (mmtlsd stats.tls.inline.key_stall_us; log2 buckets, upper bounds)\n")
    L.append("| instance | sessions (key_status) | stalled | p50 us | p90 us | p99 us | max us |")
    L.append("|---|---|---:|---:|---:|---:|---:|")
    for s in res["mmtls"]:
        ks = (((s.get("stats") or {}).get("tls") or {}).get("inline") or {}).get(
            "key_stall_us", {})
        L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            s["tag"], ", ".join("%s %d" % kv for kv in sorted(s["key_status"].items())),
            ks.get("count", "-"), ks.get("p50", "-"), ks.get("p90", "-"), ks.get("p99", "-"),
            ks.get("max", "-")))
    L.append("")
    L.append("## Raw runs\n")
    L.append("```")
    L.append("round middle obj eph req/s Gbit/s mid-s/GB cpu1-s/GB softirq-s/GB load failed")
    for r in runs:
        f = fig(r)
        L.append("%d %s %s %d %s %s %s %s %s %.1f %d" % (
            r["round"], r["middle"], r["object"], r["ephemeral"], fmt(f["rps"], 0),
            fmt(f["gbps"]), fmt(f["mid"], 3), fmt(f["cpu1"], 3), fmt(f["si"], 3),
            r["loadavg"], r["failed"]))
    L.append("```")
    open(out_md, "w").write("\n".join(L) + "\n")
    print("\n".join(L[:60]))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    xs = [SIZE_B[s] / 1024 for s in sizes]
    style = {"e2e": "k-o", "split": "r-s", "mmtls64k": "b-^", "mmtlsall": "c-v", "bare": "g-d",
             "mmtlsfast64k": "m-x", "mmtlsfastw64k": "y-*", "mmtlsfastw64krps0": "c-*", "mmtls64kv3": "b--", "barev3": "g--"}
    fig1, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    for mid in middles:
        ax[0].plot(xs, [m(mid, s, False, "gbps") or float("nan") for s in sizes], style[mid],
                   label=NAMES[mid])
        if mid != "e2e":
            ax[1].plot(xs, [m(mid, s, False, "mid") or float("nan") for s in sizes], style[mid],
                       label=NAMES[mid])
    ax[0].set_title("end-to-end throughput (persistent, 8 conns)")
    ax[0].set_ylabel("Gbit/s")
    ax[1].set_title("middle CPU per GB (process utime+stime)")
    ax[1].set_ylabel("CPU s / GB")
    ax[1].set_yscale("log")
    for a in ax:
        a.set_xscale("log", base=2)
        a.set_xlabel("object size (KB)")
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=8)
    fig1.tight_layout()
    fig1.savefig(plotdir + "/inline-persistent.png", dpi=110)

    fig2, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    labels = [SHORT[mm] for mm in middles]
    ax[0].bar(range(len(middles)), [m(mm, "1k", True, "rps") or 0 for mm in middles],
              color=["k", "r", "b", "c", "g"][:len(middles)])
    ax[0].set_title("ephemeral connections (1 KB each)")
    ax[0].set_ylabel("connections / s")
    ax[1].bar(range(len(middles)), [m(mm, "1k", True, "mid_conn_ms") or 0 for mm in middles],
              color=["k", "r", "b", "c", "g"][:len(middles)])
    ax[1].set_title("middle CPU per connection (process; E2E n/a)")
    ax[1].set_ylabel("CPU ms / connection")
    for a in ax:
        a.set_xticks(range(len(middles)))
        a.set_xticklabels(labels, fontsize=8)
        a.grid(True, axis="y", alpha=0.3)
    fig2.tight_layout()
    fig2.savefig(plotdir + "/inline-ephemeral.png", dpi=110)


if __name__ == "__main__":
    main()
