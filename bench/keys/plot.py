#!/usr/bin/env python3
"""plot.py RESULTS.json THROUGHPUT.png LATENCY.png - keys/s vs channels; latency CDFs."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

res = json.load(open(sys.argv[1]))
med = res["medians"]

flood = [m for m in med if m["mode"] == "flood"]
fig, ax = plt.subplots(figsize=(7, 4))
xs = range(len(flood))
w = 0.38
ax.bar([x - w / 2 for x in xs], [m["keys_per_s"] / 1e3 for m in flood], w,
       label="keys/s, wall clock (shared 2-core VM)")
ax.bar([x + w / 2 for x in xs], [m["keys_per_server_cpu_s"] / 1e3 for m in flood], w,
       label="keys per key-server CPU-second")
ax.axhline(300, color="red", linestyle="--", linewidth=1, label="target: 300,000 keys/s per core")
ax.set_xticks(list(xs))
ax.set_xticklabels([f"{m['channels']} channel{'s' if m['channels'] > 1 else ''}" for m in flood])
ax.set_ylabel("thousand keys / s")
ax.set_title(f"mmtls key server: KEYS accepted and handed to a worker ({res['meta']['date']})")
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)

fig, ax = plt.subplots(figsize=(7, 4))
lat = [m for m in med if m["mode"] in ("paced", "paced rt", "keyshare")]
for m in lat:
    cdf = m["cdf_us"]
    ys = [i / (len(cdf) - 1) for i in range(len(cdf))]
    label = (f"{m['mode']}, {m['channels']} channel{'s' if m['channels'] > 1 else ''}"
             if m["mode"].startswith("paced") else "libmmtls-keyshare, real handshakes")
    style = ":" if m["mode"].endswith("rt") else "-"
    ax.plot([max(v, 1.0) for v in cdf], ys, style, label=label)
ax.axvline(1000, color="red", linestyle="--", linewidth=1, label="target: p99 < 1 ms")
ax.set_xscale("log")
ax.set_xlabel("delay from client to worker (µs, log scale)")
ax.set_ylabel("fraction of keys")
ax.set_title("key delay on loopback (median round)")
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
fig.savefig(sys.argv[3], dpi=110)
