#!/usr/bin/python3
"""Sums fuzz/campaign.tsv (scripts/fuzz-campaign.sh's ledger) per target into a markdown table:
CPU time so far against the goal, executions, the last turn's edges and features, the kept
corpus, crashes.   scripts/fuzz-report.py [LEDGER] [GOAL_SECONDS]"""
import csv
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
ledger = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "fuzz", "campaign.tsv")
goal = int(sys.argv[2]) if len(sys.argv) > 2 else 3600
rows = {}
with open(ledger, newline="") as f:
    for r in csv.DictReader(f, delimiter="\t"):
        t = rows.setdefault(r["target"], {"cpu": 0, "execs": 0, "turns": 0, "crashes": 0})
        t["cpu"] += int(r["cpu_s"])
        t["execs"] += int(r["execs"])
        t["turns"] += 1
        t["crashes"] += int(r["crashes"])
        t.update(cov=r["cov"], ft=r["ft"], files=r["corpus_files"], last=r["date"])
print("| target | CPU time | of goal | turns | executions | edges | features | corpus files | crashes |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
tot = 0
for name in sorted(rows):
    t = rows[name]
    tot += t["cpu"]
    print("| %s | %d min | %d%% | %d | %s | %s | %s | %s | %d |" % (
        name, t["cpu"] // 60, 100 * t["cpu"] // goal, t["turns"], format(t["execs"], ","),
        t["cov"], t["ft"], t["files"], t["crashes"]))
print("\nTotal: %.1f CPU-hours over %d targets (goal %.1f each)." % (
    tot / 3600, len(rows), goal / 3600))
