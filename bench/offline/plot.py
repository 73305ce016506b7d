#!/usr/bin/env python3
"""plot.py RESULTS_JSON OUT_PNG - bar chart of the offline benchmark's medians.

Gbit/s per core (application plaintext per CPU second): openssl speed (AES-256-GCM, 16 KB
blocks), mmtlsd decrypting, mmtlsd without keys, tshark decrypting; the single rounds as dots.
Needs matplotlib (Debian: python3-matplotlib; run with /usr/bin/python3).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        res = json.load(f)
    m = res["medians"]
    rounds = res["rounds"]
    bars = [
        ("openssl speed\naes-256-gcm 16 KB", m["openssl_gbps"],
         [r["openssl"]["gbps"] for r in rounds], "#888888"),
        ("mmtlsd -r\ndecrypting", m["mmtlsd_keys_gbps"],
         [r["mmtlsd_keys"]["gbps_plain"] for r in rounds], "#1f77b4"),
        ("mmtlsd -r\nno keys", m["mmtlsd_nokeys_gbps"],
         [r["mmtlsd_nokeys"]["gbps_plain"] for r in rounds], "#9ecae1"),
        ("tshark\ndecrypting", m["tshark_gbps"],
         [r["tshark"]["gbps_plain"] for r in rounds], "#d62728"),
    ]
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    xs = range(len(bars))
    ax.bar(xs, [b[1] for b in bars], color=[b[3] for b in bars], width=0.6)
    for x, b in zip(xs, bars):
        ax.scatter([x] * len(b[2]), b[2], color="black", s=10, zorder=3)
        ax.annotate("%.2f" % b[1], (x, b[1]), textcoords="offset points", xytext=(0, 4),
                    ha="center", fontsize=9)
    ax.axhline(0.6 * m["openssl_gbps"], color="#1f77b4", linestyle="--", linewidth=1)
    ax.annotate("target for mmtlsd decrypting: 0.6 x openssl", (-0.35, 0.6 * m["openssl_gbps"]),
                textcoords="offset points", xytext=(0, 3), ha="left", fontsize=8,
                color="#1f77b4", bbox=dict(fc="white", ec="none", alpha=0.8, pad=1))
    ax.annotate("%.2f x openssl\n%.1f x tshark" % (m["ratio_keys_openssl"],
                                                   m["ratio_keys_tshark"]),
                (1, m["mmtlsd_keys_gbps"] / 2), ha="center", fontsize=8, color="white")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([b[0] for b in bars], fontsize=9)
    ax.set_ylabel("Gbit/s of TLS plaintext per CPU core")
    cap = res["capture"]
    frames = ("GSO frames up to 64 KB" if cap.get("offloads") == "on"
              else "MTU-sized frames (offloads off)")
    ax.set_title("mmtlsd -r throughput: %.2f GB plaintext, %d TLS 1.3 connections, "
                 "AES-256-GCM, 16 KB records,\n%d packets (%s); median of %d interleaved "
                 "rounds (dots: single rounds); %s, %d cores"
                 % (cap["plain_bytes"] / 1e9, cap["connections"], cap["packets"], frames,
                    res["runs"], res["machine"]["cpu"], res["machine"]["nproc"]), fontsize=8)
    ax.set_ylim(0, max(max(b[2] + [b[1]]) for b in bars) * 1.15)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(argv[2])
    print("plot: wrote %s" % argv[2], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
