#!/usr/bin/env python3
"""Report of the rules benchmark (issue 6): bench.py run with
MIDDLES="split depth16k rules16k depth64k rules64k depth128k rules128k" SIZES=1m EPH=0.

Usage: rules_report.py RESULTS.json OUT.md [TEST_RULES_OUTPUT]
Per middle: medians over the rounds of Gbit/s and of the middle process's CPU seconds per GB
received by the client; ratios taken inside each round, then the median: rulesN / depthN (the
cost of the ruleset at the same inspection depth) and split / rulesN (how much cheaper than a
split-TLS proxy without DPI); peak resident memory of the middle.
"""
import json
import statistics
import sys


def main():
    res = json.load(open(sys.argv[1]))
    runs = [r for r in res["runs"] if r["object"] == "1m" and not r["ephemeral"]]
    rounds = sorted({r["round"] for r in runs})
    by = {(r["middle"], r["round"]): r for r in runs}
    middles = []
    for r in runs:
        if r["middle"] not in middles:
            middles.append(r["middle"])

    def gbps(r):
        return r["h2_bytes"] * 8 / 1e9 / (r["h2_secs"] or 1)

    def cpu_gb(r):
        return r["middle_proc"] / max(r["rx_bytes"] / 1e9, 1e-9)

    def med(vals):
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None

    rss = {}
    for m in res.get("mmtls", []):
        rss.setdefault(m["middle"], []).append(m.get("peak_rss_kb", 0) / 1024)
    out = ["# Rules benchmark (issue 6), %s" % res["config"]["date"], "",
           "1 MB objects, h2load --h1 -c %d, %d rounds of %.0f s; the middle on CPU 1. "
           "`rulesN`: mmtlsd with the Snort 3 community ruleset and `--inspect-depth N` "
           "(HTTP bodies: the first N bytes of each); `depthN`: the same depth without rules "
           "(responses cut after N bytes); `split`: nginx TLS proxy without DPI." % (
               res["config"]["clients"], len(rounds), res["config"]["secs"]), "",
           "| middle | Gbit/s | middle CPU s/GB | peak RSS MB |", "|---|---:|---:|---:|"]
    for m in middles:
        rs = [by[(m, k)] for k in rounds if (m, k) in by]
        out.append("| %s | %.2f | %.3f | %s |" % (
            m, med([gbps(r) for r in rs]), med([cpu_gb(r) for r in rs]),
            "%.0f" % med(rss[m]) if m in rss else "n/a"))
    out += ["", "| depth | rules / no rules CPU | rules / no rules Gbit/s | split / rules CPU "
            "(x cheaper) |", "|---|---:|---:|---:|"]
    for n in ("16k", "64k", "128k"):
        a, b = "rules" + n, "depth" + n
        rc, rg, sc = [], [], []
        for k in rounds:
            if (a, k) in by and (b, k) in by:
                rc.append(cpu_gb(by[(a, k)]) / cpu_gb(by[(b, k)]))
                rg.append(gbps(by[(a, k)]) / max(gbps(by[(b, k)]), 1e-9))
            if (a, k) in by and ("split", k) in by:
                sc.append(cpu_gb(by[("split", k)]) / cpu_gb(by[(a, k)]))
        if rc:
            out.append("| %s | %.2f | %.2f | %.2f |" % (n, med(rc), med(rg), med(sc)))
    if len(sys.argv) > 3:
        out += ["", "Rule load (`mmtlsd --rules snort3-community.rules --test-rules`):", "",
                "```", open(sys.argv[3]).read().strip(), "```"]
    open(sys.argv[2], "w").write("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
