#!/usr/bin/env python3
"""summarize.py RAW.jsonl RESULTS.json RESULTS.md - medians over the rounds of keybench runs."""
import datetime
import json
import platform
import statistics
import sys

raw, out_json, out_md = sys.argv[1:4]
runs = [json.loads(line) for line in open(raw) if line.strip()]


def key(r):
    return (r["mode"] + (" rt" if r.get("rt") else ""), r["channels"])


def med(vals):
    return statistics.median(vals) if vals else 0.0


groups = {}
for r in runs:
    groups.setdefault(key(r), []).append(r)

RANK = {"flood": 0, "paced": 1, "paced rt": 2, "keyshare": 3, "keyshare rt": 4}
order = sorted(groups, key=lambda k: (RANK.get(k[0], 9), k[1]))
medians = []
for k in order:
    g = groups[k]
    m = {
        "mode": k[0],
        "channels": k[1],
        "rounds": len(g),
        "keys_per_s": med([r["keys_per_s"] for r in g]),
        "keys_per_server_cpu_s": med([r["keys_per_server_cpu_s"] for r in g]),
        "server_cpu_share": med([r["server_cpu_share"] for r in g]),
        "keys_popped": med([r["keys_popped"] for r in g]),
        "ring_dropped": med([r["ring_dropped"] for r in g]),
        "ring_dropped_max": max(r["ring_dropped"] for r in g),
        "load1": med([r["load1"] for r in g]),
        "server_runq_wait_ms": med([1e3 * r.get("server_runq_wait_s", 0) for r in g]),
    }
    for p in ("p50", "p90", "p99", "p999", "max"):
        m["lat_" + p + "_us"] = med([r["lat_us"][p] for r in g])
    if "lat_read_us" in g[0]:
        for p in ("p50", "p99"):
            m["lat_read_" + p + "_us"] = med([r["lat_read_us"][p] for r in g])
    # CDF of the round with the median p99 (for the plot)
    g_sorted = sorted(g, key=lambda r: r["lat_us"]["p99"])
    m["cdf_us"] = g_sorted[len(g_sorted) // 2]["lat_us"]["cdf"]
    medians.append(m)

meta = {
    "date": datetime.date.today().isoformat(),
    "host": platform.node(),
    "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                 if l.startswith("model name")), "?"),
    "cores": sum(1 for l in open("/proc/cpuinfo") if l.startswith("processor")),
    "openssl": runs[0].get("openssl", ""),
}
json.dump({"meta": meta, "medians": medians, "runs": runs}, open(out_json, "w"), indent=1)


def f0(x):
    return f"{x:,.0f}"


lines = []
lines.append("| mode | channels | keys/s (wall) | keys per key-server CPU-second | server CPU share "
             "| ring drops | p50 µs | p99 µs | p99.9 µs | p99 µs to key server read | server run-queue wait ms "
             "| load |")
lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for m in medians:
    lines.append(
        f"| {m['mode']} | {m['channels']} | {f0(m['keys_per_s'])} | "
        f"{f0(m['keys_per_server_cpu_s'])} | {m['server_cpu_share']:.2f} | "
        f"{f0(m['ring_dropped'])} | {m['lat_p50_us']:,.0f} | {m['lat_p99_us']:,.0f} | "
        f"{m['lat_p999_us']:,.0f} | "
        + (f"{m['lat_read_p99_us']:,.0f}" if "lat_read_p99_us" in m else "-")
        + f" | {m['server_runq_wait_ms']:.1f} | {m['load1']:.1f} |")
lines.append("")
lines.append(f"medians of {max(m['rounds'] for m in medians)} rounds, {meta['date']}, "
             f"{meta['cores']} x {meta['cpu']}")
text = "\n".join(lines) + "\n"
open(out_md, "w").write(text)
print(text)
